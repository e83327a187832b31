/* The Hibernation Nest on the Oracle's host: images (DATA/nest/images/NAME/FILE) and VM bundles
 * (DATA/nest/vms/VM/VERSION/FILE). Bundles are immutable: a file is written once, after its
 * SHA-256 was checked against the one the sender named; a second upload of the same content
 * is accepted (idempotent retries) and different content at the same version is refused.
 * (The deduplicating chunk store replaces this layout in a later issue.) */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"

char *oracle_nest_vm_dir(oracle_t *o, const char *vm) { return xasprintf("%s/vms/%s", o->nest, vm); }

char *oracle_nest_bundle_dir(oracle_t *o, const char *vm, int64_t version) {
        return xasprintf("%s/vms/%s/%lld", o->nest, vm, (long long)version);
}

int oracle_nest_write_config(oracle_t *o, const char *vm, int64_t version, const json_t *config) {
        _cleanup_free_ char *dir = oracle_nest_bundle_dir(o, vm, version);
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, BUNDLE_FILE_CONFIG);
        _cleanup_free_ char *s = json_dumps(config, JSON_INDENT(2) | JSON_SORT_KEYS);
        return file_write_atomic(path, s, strlen(s));
}

static bool bundle_file_name_ok(const char *f) { return streq(f, BUNDLE_FILE_STATE) || streq(f, BUNDLE_FILE_DISK); }

static void h_get_image_file(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *image = req->params[0], *file = req->params[1];
        if (!name_is_valid(image) || (!streq(file, "vmlinuz") && !streq(file, "initrd.img") && !streq(file, "disk"))) {
                http_reply_error(reply, 400, "invalid", "invalid image file %s/%s", image, file);
                return;
        }
        _cleanup_free_ char *path = xasprintf("%s/images/%s/%s", o->nest, image, file);
        if (!file_exists(path)) {
                http_reply_error(reply, 404, "not_found", "image %s has no file %s", image, file);
                return;
        }
        http_reply_file(reply, path);
}

/* A version in a path: canonical decimal only ("1", not "+1", " 1" or "01"), so that one
 * bundle has one URL. */
static int parse_version(const char *s, int64_t *ret) {
        if (!s || *s < '1' || *s > '9' || strspn(s, "0123456789") != strlen(s))
                return -EINVAL;
        return parse_int64(s, 1, BUNDLE_VERSION_MAX, ret);
}

static void h_get_bundle_file(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        int64_t version = 0;
        if (!name_is_valid(req->params[0]) || parse_version(req->params[1], &version) < 0 ||
            !bundle_file_name_ok(req->params[2])) {
                http_reply_error(reply, 400, "invalid", "invalid bundle file path");
                return;
        }
        _cleanup_free_ char *dir = oracle_nest_bundle_dir(o, req->params[0], version);
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, req->params[2]);
        if (!file_exists(path)) {
                http_reply_error(reply, 404, "not_found", "the Nest has no %s of vm %s at version %lld", req->params[2],
                                 req->params[0], (long long)version);
                return;
        }
        http_reply_file(reply, path);
}

static void h_put_bundle_file(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *vm = req->params[0], *file = req->params[2];
        const char *want = http_request_query(req, "sha256");
        int64_t version = 0;
        if (!name_is_valid(vm) || parse_version(req->params[1], &version) < 0 || !bundle_file_name_ok(file)) {
                http_reply_error(reply, 400, "invalid", "invalid bundle file path");
                return;
        }
        if (!bundle_sha256_is_valid(want)) {
                http_reply_error(reply, 400, "invalid", "an upload must name its sha256");
                return;
        }
        vm_record_t v = { 0 };
        if (store_vm_get(o->store, vm, &v) < 0) {
                http_reply_error(reply, 404, "not_found", "no vm named \"%s\"", vm);
                return;
        }
        /* bundles are written only by the operation that saves the VM, at the version it will
         * commit (the VM's version + 1); any other version would be a bundle nothing refers to */
        bool busy = *v.op_id, expected = busy && version == v.version + 1;
        int64_t at = v.version;
        vm_record_clear(&v);
        if (!expected) {
                http_reply_errno(reply, -ESTALE, "vm \"%s\" is at version %lld%s: no upload for version %lld is expected",
                                 vm, (long long)at, busy ? "" : " with no operation running", (long long)version);
                return;
        }
        char got[65];
        int r = file_sha256(req->upload_path, got);
        if (r < 0 || !streq(got, want)) {
                http_reply_error(reply, 400, "corrupt", "%s of vm %s arrived damaged (sha256 mismatch)", file, vm);
                return;
        }
        _cleanup_free_ char *dir = oracle_nest_bundle_dir(o, vm, version);
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
        /* link(2), not rename(2): it fails when the file exists, so of two uploads racing for
         * the same file exactly one is stored and the other is compared with it */
        r = mkdir_p(dir, 0755);
        if (r >= 0 && link(req->upload_path, path) < 0)
                r = negative_errno();
        if (r == -EEXIST) {
                char have[65];
                if (file_sha256(path, have) >= 0 && streq(have, got)) {
                        http_reply_json(reply, 201, json_pack("{s:s}", "sha256", got));
                        return;
                }
                http_reply_error(reply, 409, "immutable", "bundle %s/%lld already has a different %s", vm,
                                 (long long)version, file);
                return;
        }
        if (r >= 0)
                r = fsync_dir_of(path);
        if (r < 0) {
                http_reply_errno(reply, r == -ENOSPC ? r : -EIO, "cannot store %s of vm %s: %s", file, vm, strerror(-r));
                return;
        }
        http_reply_json(reply, 201, json_pack("{s:s}", "sha256", got));
}

static void du(const char *path, uint64_t *logical, uint64_t *stored, uint64_t *files) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return;
        if (S_ISREG(st.st_mode)) {
                *logical += (uint64_t)st.st_size;
                *stored += (uint64_t)st.st_blocks * 512;
                (*files)++;
                return;
        }
        if (!S_ISDIR(st.st_mode))
                return;
        DIR *d = opendir(path);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *child = xasprintf("%s/%s", path, de->d_name);
                du(child, logical, stored, files);
        }
        closedir(d);
}

static void h_nest_stats(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        uint64_t logical = 0, stored = 0, files = 0;
        du(o->nest, &logical, &stored, &files);
        http_reply_json(reply, 200, json_pack("{s:I,s:I,s:I,s:I}", "logical_bytes", (json_int_t)logical, "stored_bytes",
                                              (json_int_t)stored, "files", (json_int_t)files, "chunks", (json_int_t)files));
}

/* Copies a file into the image directory and returns its {sha256,size}. */
static int image_add_file(const char *src, const char *dir, const char *file, json_t *files, char **ret_msg) {
        _cleanup_free_ char *dst = xasprintf("%s/%s", dir, file);
        int r = file_copy(src, dst);
        json_t *info = NULL;
        if (r >= 0)
                r = bundle_file_info(dst, &info);
        if (r < 0) {
                *ret_msg = xasprintf("cannot store %s in the Nest: %s", src, strerror(-r));
                return r;
        }
        json_object_set_new(files, file, info);
        return 0;
}

/* Runs the guest recipe (guest/tiny-http/build.sh, beside the source tree the binary was built
 * in, or $VMATRIX_GUEST_RECIPE) into the guest directory. The recipe skips work when its
 * outputs are up to date, so this is cheap when `make` already built the guest. No recipe
 * (an installed vmatrix) is not an error: the prebuilt guest directory is used as it is. */
static int guest_build(oracle_t *o, char **ret_msg) {
        const char *env = getenv("VMATRIX_GUEST_RECIPE");
        _cleanup_free_ char *exe = exe_dir();
        _cleanup_free_ char *recipe = env ? xstrdup(env) : xasprintf("%s/../guest/tiny-http/build.sh", exe ? exe : ".");
        if (access(recipe, X_OK) < 0)
                return 0;
        char *argv[] = { recipe, o->guest_dir, NULL };
        _cleanup_free_ char *out = NULL;
        int r = proc_run(argv, &out);
        if (r < 0) {
                size_t len = out ? strlen(out) : 0;
                while (len > 0 && out[len - 1] == '\n')
                        out[--len] = 0;
                const char *last = out ? strrchr(out, '\n') : NULL;
                *ret_msg = xasprintf("building the tiny-http guest failed: %s", last ? last + 1 : out && *out ? out : "no output");
                return -EIO;
        }
        return 0;
}

int oracle_image_register_builtin(oracle_t *o, const char *name, const char *builtin, json_t **ret, char **ret_msg) {
        if (!streq(builtin, "tiny-http")) {
                *ret_msg = xasprintf("unknown built-in image \"%s\" (known: tiny-http)", builtin);
                return -ENOENT;
        }
        _cleanup_free_ char *kernel = xasprintf("%s/vmlinuz", o->guest_dir);
        _cleanup_free_ char *initrd = xasprintf("%s/initrd.img", o->guest_dir);
        int r = guest_build(o, ret_msg);
        if (r < 0)
                return r;
        if (!file_exists(kernel) || !file_exists(initrd)) {
                *ret_msg = xasprintf("the tiny-http guest is not built in %s: run `make guest`", o->guest_dir);
                return -ENOENT;
        }
        _cleanup_free_ char *dir = xasprintf("%s/images/%s", o->nest, name);
        _cleanup_free_ char *tmpdir = xasprintf("%s/images/.%s.new", o->nest, name);
        rm_rf(tmpdir);
        r = mkdir_p(tmpdir, 0755);
        if (r < 0) {
                *ret_msg = xasprintf("cannot create %s: %s", tmpdir, strerror(-r));
                return r;
        }
        json_t *files = json_object();
        r = image_add_file(kernel, tmpdir, "vmlinuz", files, ret_msg);
        if (r >= 0)
                r = image_add_file(initrd, tmpdir, "initrd.img", files, ret_msg);
        image_record_t old = { 0 };
        bool exists = store_image_get(o->store, name, &old) >= 0;
        if (r >= 0 && exists && !json_equal(json_object_get(old.meta, "files"), files)) {
                /* VMs made from the old files would no longer boot the same: keep the old ones */
                *ret_msg = xasprintf("image \"%s\" exists with other contents; delete it first", name);
                r = -EEXIST;
        }
        image_record_clear(&old);
        if (r >= 0 && !exists) {
                rm_rf(dir);
                if (rename(tmpdir, dir) < 0)
                        r = negative_errno();
        }
        rm_rf(tmpdir);
        if (r < 0) {
                json_decref(files);
                return r;
        }
        /* The guest build recommends its kernel parameters (guest/tiny-http/build.sh). We add
         * init_on_free=1: freed guest pages are zeroed, and zero pages cost nothing in a saved
         * state, so pre-booted bundles are ~40% smaller and activate faster (a cold boot pays
         * ~0.8 s under TCG for it, once per VM). */
        _cleanup_free_ char *cmdline_path = xasprintf("%s/cmdline", o->guest_dir);
        _cleanup_free_ char *recommended = NULL;
        if (file_read(cmdline_path, &recommended, NULL) < 0)
                recommended = xstrdup("console=ttyS0");
        recommended[strcspn(recommended, "\n")] = 0;
        _cleanup_free_ char *cmdline = xasprintf("%s quiet init_on_free=1", recommended);
        image_record_t img = { .created_ms = time_wall_ms() };
        snprintf(img.name, sizeof img.name, "%s", name);
        snprintf(img.kind, sizeof img.kind, "kernel");
        img.meta = json_pack("{s:s,s:o,s:s,s:i}", "boot", "kernel", "files", files, "cmdline", cmdline,
                             "disk_size_mib", 1024);
        r = store_image_put(o->store, &img);
        if (r >= 0)
                *ret = json_pack("{s:s,s:s,s:O,s:I}", "name", img.name, "kind", img.kind, "meta", img.meta, "created_ms",
                                 (json_int_t)img.created_ms);
        else
                *ret_msg = xstrdup("cannot record the image");
        image_record_clear(&img);
        return r;
}

/* Reads qemu-img's view of a user's disk image; -EINVAL when it is not a usable image of format. */
static int image_probe(const char *path, const char *format, json_t **ret, char **ret_msg) {
        char *argv[] = { "qemu-img", "info", "--output=json", "-f", (char *)format, (char *)path, NULL };
        _cleanup_free_ char *out = NULL;
        int r = proc_run(argv, &out);
        json_t *info = r >= 0 ? json_loads(out, 0, NULL) : NULL;
        if (!info) {
                *ret_msg = xasprintf("not a %s disk image", format);
                return -EINVAL;
        }
        if (json_object_get(info, "backing-filename")) {
                json_decref(info);
                *ret_msg = xstrdup("the image has a backing file; import a standalone image (qemu-img convert)");
                return -EINVAL;
        }
        json_int_t size = json_integer_value(json_object_get(info, "virtual-size"));
        if (size <= 0) {
                json_decref(info);
                *ret_msg = xasprintf("the %s image is empty", format);
                return -EINVAL;
        }
        /* a qcow2 may keep its data in another file named inside it: a node would open that
         * path on its own host as the guest's disk */
        if (json_object_get(json_object_get(json_object_get(info, "format-specific"), "data"), "data-file")) {
                json_decref(info);
                *ret_msg = xstrdup("the image has an external data file; import a standalone image (qemu-img convert)");
                return -EINVAL;
        }
        *ret = info;
        return 0;
}

static void h_put_image(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *name = req->params[0];
        const char *format = http_request_query(req, "format");
        if (!format)
                format = "qcow2";
        if (!name_is_valid(name)) {
                http_reply_error(reply, 400, "invalid", "invalid image name \"%s\" (use a-z, 0-9 and -)", name);
                return;
        }
        if (!streq(format, "qcow2") && !streq(format, "raw")) {
                http_reply_error(reply, 400, "invalid", "format must be qcow2 or raw, not \"%s\"", format);
                return;
        }
        json_t *info = NULL;
        _cleanup_free_ char *msg = NULL;
        if (image_probe(req->upload_path, format, &info, &msg) < 0) {
                http_reply_error(reply, 400, "invalid", "%s", msg);
                return;
        }
        json_t *file_info = NULL;
        int r = bundle_file_info(req->upload_path, &file_info);
        if (r < 0) {
                json_decref(info);
                http_reply_errno(reply, -EIO, "cannot read the uploaded image: %s", strerror(-r));
                return;
        }
        image_record_t img = { .created_ms = time_wall_ms() };
        snprintf(img.name, sizeof img.name, "%s", name);
        snprintf(img.kind, sizeof img.kind, "disk");
        img.meta = json_pack("{s:s,s:s,s:{s:o},s:O?}", "boot", "disk", "format", format, "files", "disk", file_info,
                             "virtual_size", json_object_get(info, "virtual-size"));
        json_decref(info);
        /* the name check, the move into the Nest and the record are one step under the store's
         * transaction, so two imports of one name cannot both win */
        _cleanup_free_ char *dir = xasprintf("%s/images/%s", o->nest, name);
        _cleanup_free_ char *dst = xasprintf("%s/disk", dir);
        image_record_t old = { 0 };
        r = store_tx_begin(o->store);
        bool in_tx = r >= 0;
        if (r >= 0 && store_image_get(o->store, name, &old) >= 0) {
                image_record_clear(&old);
                store_tx_rollback(o->store);
                image_record_clear(&img);
                http_reply_error(reply, 409, "exists", "image \"%s\" exists already", name);
                return;
        }
        if (r >= 0)
                r = mkdir_p(dir, 0755);
        if (r >= 0 && rename(req->upload_path, dst) < 0)
                r = negative_errno();
        if (r >= 0)
                r = store_image_put(o->store, &img);
        if (r >= 0)
                r = store_tx_commit(o->store);
        else if (in_tx)
                store_tx_rollback(o->store);
        if (r < 0) {
                rm_rf(dir);
                image_record_clear(&img);
                http_reply_errno(reply, r == -ENOSPC ? r : -EIO, "cannot store image \"%s\": %s", name, strerror(-r));
                return;
        }
        store_event_add(o->store, "image-imported", NULL, NULL, NULL, name);
        http_reply_json(reply, 201, json_pack("{s:s,s:s,s:O,s:I}", "name", img.name, "kind", img.kind, "meta", img.meta,
                                              "created_ms", (json_int_t)img.created_ms));
        image_record_clear(&img);
}

const http_route_t oracle_nest_routes[] = {
        { "GET", "/v1/nest/images/:image/:file", h_get_image_file },
        { "GET", "/v1/nest/vms/:vm/:version/:file", h_get_bundle_file },
        { "PUT", "/v1/nest/vms/:vm/:version/:file", h_put_bundle_file, .upload = true },
        { "GET", "/v1/nest/stats", h_nest_stats },
        { "PUT", "/v1/images/:name", h_put_image, .upload = true },
        { NULL },
};
