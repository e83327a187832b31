/* The Hibernation Nest on the Oracle's host: a content-addressed chunk store (src/nest/) in
 * DATA/nest/store holding every image (manifests at version 0 of the image's name) and every VM
 * bundle (manifests at VM/VERSION/{state,disk}), so all VMs of one image share their common
 * chunks. A bundle file is named by its manifest's digest; the Oracle commits a bundle only
 * after checking that its manifests are here, match the digests the node reported and name no
 * missing chunk. vm.json of each version is kept beside, in DATA/nest/vms/VM/VERSION/.
 * Bundles are immutable: a manifest is written once. */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/roles.h"
#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "nest/gc.h"
#include "nest/import.h"
#include "nest/nest-http.h"
#include "nest/transfer.h"
#include "oracle/oracle-internal.h"

/* Bounds on the helpers this file runs, so that none holds a request (and its temporary files)
 * for ever. qemu-img info reads only an image's headers, but the image is a user's upload: one
 * made to keep qemu-img busy is refused after 30 s. A convert copies the whole disk, so its time
 * grows with the disk; 30 minutes covers tens of GiB on a slow disk. The guest recipe downloads
 * Debian packages, which on a slow mirror takes minutes. */
#define NEST_QEMU_IMG_INFO_MS (30 * 1000)
#define NEST_QEMU_IMG_REBASE_MS (30 * 1000) /* rebase -u: metadata only */
#define NEST_QEMU_IMG_CONVERT_MS (30 * 60 * 1000)
#define NEST_GUEST_BUILD_MS (30 * 60 * 1000)

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

/* Imports the file at path into the store as (key, version, file); *ret_info is its
 * {"digest","size","chunks"}. */
static int nest_import_path(oracle_t *o, const char *key, int64_t version, const char *file, const char *path,
                            json_t **ret_info, char **ret_msg) {
        nest_txn_t *t = NULL;
        nest_manifest_t *m = NULL;
        int r = nest_txn_begin(o->nest_store, NEST_TXN_BATCH, &t);
        if (r >= 0)
                r = nest_file_import(t, path, &m, NULL);
        if (r >= 0)
                r = nest_manifest_put(t, key, version, file, m);
        if (r >= 0)
                r = nest_txn_commit(t);
        nest_txn_free(t);
        if (r < 0) {
                nest_manifest_free(m);
                *ret_msg = r == -EEXIST ? xasprintf("%s of %s exists in the Nest with other contents", file, key)
                                        : xasprintf("cannot store %s in the Nest: %s", path, strerror(-r));
                return r;
        }
        char digest[65];
        nest_manifest_digest(m, digest);
        *ret_info = json_pack("{s:s,s:I,s:I}", "digest", digest, "size", (json_int_t)m->size, "chunks",
                              (json_int_t)m->n_refs);
        nest_manifest_free(m);
        return 0;
}

int oracle_nest_check_files(oracle_t *o, const char *vm, int64_t version, const json_t *files, char **ret_msg) {
        if (!json_is_object(files) || json_object_size(files) == 0) {
                *ret_msg = xasprintf("the bundle of %s at version %lld names no files", vm, (long long)version);
                return -EINVAL;
        }
        const char *file;
        const json_t *info;
        json_object_foreach((json_t *)files, file, info) {
                const char *digest = json_string_value(json_object_get(info, "digest"));
                nest_manifest_t *m = NULL;
                int r = nest_manifest_get(o->nest_store, vm, version, file, &m);
                if (r < 0) {
                        *ret_msg = xasprintf("the Nest has no %s of %s at version %lld", file, vm, (long long)version);
                        return -ENOENT;
                }
                char have[65];
                nest_manifest_digest(m, have);
                r = digest && streq(have, digest) ? nest_manifest_verify(o->nest_store, m, 0) : -EBADMSG;
                nest_manifest_free(m);
                if (r < 0) {
                        *ret_msg = xasprintf("%s of %s at version %lld in the Nest %s", file, vm, (long long)version,
                                             r == -EBADMSG ? "is not what the RM reported" : "names missing chunks");
                        return r == -EBADMSG ? -EBADMSG : -ENOENT;
                }
        }
        return 0;
}

/* Is version of vm the snapshot an unsaved clone still starts from (its bundle's "source")? */
static bool version_held_by_clone(const vm_record_t *vms, size_t n, const char *vm, int64_t version) {
        for (size_t i = 0; i < n; i++) {
                const char *source = json_string_value(json_object_get(vms[i].bundle, "source"));
                if (source && streq(source, vm) && vms[i].nest_version == version)
                        return true;
        }
        return false;
}

void oracle_nest_prune(oracle_t *o, const char *vm, int64_t keep_version) {
        nest_manifest_key_t *keys = NULL;
        size_t n = 0;
        vm_record_t *vms = NULL;
        size_t nv = 0;
        /* without the list of VMs, nothing can be proven unneeded: keep everything */
        if (store_vm_list(o->store, &vms, &nv) < 0)
                return;
        if (nest_manifest_list(o->nest_store, vm, &keys, &n) < 0) {
                store_vm_list_free(vms, nv);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                /* version 0 holds an image of the same name, never a VM's bundle; a version that
                 * a clone maps until its first save stays (the clone would have nothing to run).
                 * A version above keep_version is never dropped: a prune runs after its op has
                 * ended, when the next op may already be saving the VM at a higher version. */
                if (keys[i].version < 1 || (keep_version > 0 && keys[i].version >= keep_version) ||
                    version_held_by_clone(vms, nv, vm, keys[i].version))
                        continue;
                nest_manifest_delete(o->nest_store, vm, keys[i].version, NULL);
                _cleanup_free_ char *dir = oracle_nest_bundle_dir(o, vm, keys[i].version);
                rm_rf(dir);
        }
        free(keys);
        store_vm_list_free(vms, nv);
}

/* The chunk-transfer protocol over the Nest (src/nest/nest-http.h). */
static void h_chunk(const http_request_t *q, http_reply_t *r) {
        nest_http_chunk_get(((oracle_t *)q->userdata)->nest_store, q, r);
}
static void h_chunks_missing(const http_request_t *q, http_reply_t *r) {
        nest_http_chunks_missing(((oracle_t *)q->userdata)->nest_store, q, r);
}
static void h_chunks_fetch(const http_request_t *q, http_reply_t *r) {
        nest_http_chunks_fetch(((oracle_t *)q->userdata)->nest_store, q, r);
}
static void h_chunks_upload(const http_request_t *q, http_reply_t *r) {
        nest_http_chunks_upload(((oracle_t *)q->userdata)->nest_store, q, r);
}
static void h_manifest_get(const http_request_t *q, http_reply_t *r) {
        nest_http_manifest_get(((oracle_t *)q->userdata)->nest_store, q, r);
}

/* Nodes store a bundle's manifests only for the version an operation is saving right now. */
static void h_manifest_put(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        int64_t version = 0;
        vm_record_t v = { 0 };
        if (!name_is_valid(req->params[0]) || parse_int64(req->params[1], 1, INT64_MAX, &version) < 0) {
                http_reply_error(reply, 400, "invalid", "invalid manifest path");
                return;
        }
        if (store_vm_get(o->store, req->params[0], &v) < 0) {
                http_reply_error(reply, 404, "not_found", "no vm named \"%s\"", req->params[0]);
                return;
        }
        bool expected = *v.op_id && version == v.version + 1;
        vm_record_clear(&v);
        if (!expected) {
                http_reply_error(reply, 409, "stale_version", "vm \"%s\" is not being saved at version %lld",
                                 req->params[0], (long long)version);
                return;
        }
        nest_http_manifest_put(o->nest_store, req, reply);
}

static void h_nest_stats(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        nest_stats_t st = { 0 };
        int r = nest_stats(o->nest_store, &st);
        if (r < 0) {
                http_reply_errno(reply, r, "cannot read the Nest: %s", strerror(-r));
                return;
        }
        http_reply_json(reply, 200, json_pack("{s:I,s:I,s:I,s:I}", "logical_bytes", (json_int_t)st.logical_bytes,
                                              "stored_bytes", (json_int_t)st.stored_bytes, "chunks",
                                              (json_int_t)st.chunks, "manifests", (json_int_t)st.manifests));
}

/* POST /v1/nest/gc[?grace_s=N]: removes chunks no manifest references (also run periodically). */
static void h_nest_gc(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        nest_gc_options_t opts = NEST_GC_OPTIONS_DEFAULT;
        const char *g = http_request_query(req, "grace_s");
        if (g && parse_int64(g, 0, 86400 * 365, &opts.grace_s) < 0) {
                http_reply_error(reply, 400, "invalid", "grace_s must be a number of seconds");
                return;
        }
        nest_gc_stats_t st = { 0 };
        int r = nest_gc(o->nest_store, &opts, &st);
        if (r < 0) {
                http_reply_errno(reply, r, "garbage collection failed: %s", strerror(-r));
                return;
        }
        http_reply_json(reply, 200, json_pack("{s:I,s:I,s:I,s:I}", "chunks_live", (json_int_t)st.chunks_live,
                                              "chunks_removed", (json_int_t)st.chunks_removed, "bytes_removed",
                                              (json_int_t)st.bytes_removed, "chunks_kept", (json_int_t)st.chunks_kept));
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
        int r = proc_run(argv, NEST_GUEST_BUILD_MS, &out);
        if (r == -ETIMEDOUT) {
                *ret_msg = xasprintf("building the tiny-http guest did not finish in %d minutes", NEST_GUEST_BUILD_MS / 60000);
                return r;
        }
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
        json_t *files = json_object(), *info = NULL;
        r = nest_import_path(o, name, 0, "vmlinuz", kernel, &info, ret_msg);
        if (r >= 0) {
                json_object_set_new(files, "vmlinuz", info);
                r = nest_import_path(o, name, 0, "initrd.img", initrd, &info, ret_msg);
        }
        if (r >= 0)
                json_object_set_new(files, "initrd.img", info);
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
        int r = proc_run(argv, NEST_QEMU_IMG_INFO_MS, &out);
        if (r == -ETIMEDOUT) {
                *ret_msg = xasprintf("qemu-img info did not finish in %d s on this %s image", NEST_QEMU_IMG_INFO_MS / 1000,
                                     format);
                return -EINVAL;
        }
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

/* Names of images being imported right now (in memory: an import that dies with the Oracle
 * leaves no record, only chunks that the next garbage collection removes). */
static bool name_reserve(oracle_t *o, const char *name) {
        pthread_mutex_lock(&o->imports_lock);
        if (!o->imports)
                o->imports = json_object();
        bool free_name = !json_object_get(o->imports, name);
        if (free_name)
                json_object_set_new(o->imports, name, json_true());
        pthread_mutex_unlock(&o->imports_lock);
        return free_name;
}

static void name_release(oracle_t *o, const char *name) {
        pthread_mutex_lock(&o->imports_lock);
        json_object_del(o->imports, name);
        pthread_mutex_unlock(&o->imports_lock);
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
        int r = 0;
        image_record_t img = { .created_ms = time_wall_ms() };
        snprintf(img.name, sizeof img.name, "%s", name);
        snprintf(img.kind, sizeof img.kind, "disk");
        img.meta = json_pack("{s:s,s:s,s:{},s:O?}", "boot", "disk", "format", format, "files", "virtual_size",
                             json_object_get(info, "virtual-size"));
        json_decref(info);
        /* The import (chunking and hashing a disk of gigabytes: seconds) runs outside the store's
         * lock, so heartbeats and the API never wait behind it. The name is reserved in memory
         * meanwhile, so two imports of one name cannot both win, and the record is then written
         * in one short transaction that checks the name again. */
        image_record_t old = { 0 };
        if (store_image_get(o->store, name, &old) >= 0) {
                image_record_clear(&old);
                image_record_clear(&img);
                http_reply_error(reply, 409, "exists", "image \"%s\" exists already", name);
                return;
        }
        if (!name_reserve(o, name)) {
                image_record_clear(&img);
                http_reply_error(reply, 409, "exists", "image \"%s\" is being imported already", name);
                return;
        }
        _cleanup_free_ char *msg2 = NULL;
        /* an earlier image of this name that was deleted may have left its manifest */
        nest_manifest_delete(o->nest_store, name, 0, "disk");
        r = nest_import_path(o, name, 0, "disk", req->upload_path, &file_info, &msg2);
        if (r >= 0) {
                json_object_set_new(json_object_get(img.meta, "files"), "disk", file_info);
                r = store_tx_begin(o->store);
                if (r >= 0) {
                        if (store_image_get(o->store, name, &old) >= 0) {
                                image_record_clear(&old);
                                r = -EEXIST;
                        } else {
                                r = store_image_put(o->store, &img);
                        }
                        if (r >= 0)
                                r = store_tx_commit(o->store);
                        else
                                store_tx_rollback(o->store);
                }
        }
        name_release(o, name);
        if (r < 0) {
                if (r != -EEXIST)
                        nest_manifest_delete(o->nest_store, name, 0, "disk");
                image_record_clear(&img);
                if (r == -EEXIST)
                        http_reply_error(reply, 409, "exists", "image \"%s\" exists already", name);
                else
                        http_reply_errno(reply, r == -ENOSPC ? r : -EIO, "cannot store image \"%s\": %s", name,
                                         msg2 ? msg2 : strerror(-r));
                return;
        }
        store_event_add(o->store, "image-imported", NULL, NULL, NULL, name);
        http_reply_json(reply, 201, json_pack("{s:s,s:s,s:O,s:I}", "name", img.name, "kind", img.kind, "meta", img.meta,
                                              "created_ms", (json_int_t)img.created_ms));
        image_record_clear(&img);
}

/* DELETE /v1/images/:name: refused (409) while a VM or a service is made from it, since their
 * disks are overlays on it and a pool boots new VMs from it. The check and the delete are one
 * transaction; the image's chunks go with the next garbage collection. */
static void h_delete_image(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *name = req->params[0];
        if (!name_is_valid(name)) {
                http_reply_error(reply, 400, "invalid", "invalid image name \"%s\"", name);
                return;
        }
        int r = store_tx_begin(o->store);
        if (r < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        image_record_t img = { 0 };
        vm_record_t *vms = NULL;
        service_record_t *svs = NULL;
        size_t nv = 0, ns = 0;
        r = store_image_get(o->store, name, &img);
        if (r < 0) {
                store_tx_rollback(o->store);
                http_reply_errno(reply, r == -ENOENT ? r : -EIO, "no image named \"%s\"", name);
                return;
        }
        if (store_vm_list(o->store, &vms, &nv) < 0 || store_service_list(o->store, &svs, &ns) < 0) {
                store_tx_rollback(o->store);
                store_vm_list_free(vms, nv);
                image_record_clear(&img);
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        const char *user = NULL, *what = NULL;
        for (size_t i = 0; i < nv && !user; i++)
                if (streq(vms[i].image, name))
                        user = vms[i].name, what = "vm";
        for (size_t i = 0; i < ns && !user; i++)
                if (streq(svs[i].image, name))
                        user = svs[i].name, what = "service";
        if (user) {
                http_reply_errno(reply, -EBUSY, "image \"%s\" is used by %s \"%s\"; delete that first", name, what, user);
                store_tx_rollback(o->store);
        } else {
                r = store_image_delete(o->store, name);
                if (r >= 0)
                        r = store_tx_commit(o->store);
                else
                        store_tx_rollback(o->store);
                if (r < 0) {
                        http_reply_errno(reply, -EIO, "cannot delete image \"%s\": %s", name, strerror(-r));
                } else {
                        /* its manifests go now, its chunks with the next collection */
                        const char *file;
                        const json_t *info;
                        json_object_foreach(json_object_get(img.meta, "files"), file, info)
                                nest_manifest_delete(o->nest_store, name, 0, file);
                        store_event_add(o->store, "image-deleted", NULL, NULL, NULL, name);
                        http_reply_json(reply, 200, json_pack("{s:s}", "name", name));
                }
        }
        store_vm_list_free(vms, nv);
        free(svs);
        image_record_clear(&img);
}

/* GET /v1/vms/:name/export: the VM's disk from its Nest bundle as one standalone qcow2 (its
 * overlay and, for disk images, the image beneath, flattened by qemu-img convert). */
static void h_vm_export(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        vm_record_t v = { 0 };
        int r = store_vm_get(o->store, req->params[0], &v);
        if (r < 0) {
                http_reply_errno(reply, r, "no vm named \"%s\"", req->params[0]);
                return;
        }
        bool has_disk = json_object_get(json_object_get(v.bundle, "files"), BUNDLE_FILE_DISK) != NULL;
        int64_t version = v.nest_version;
        _cleanup_free_ char *image = xstrdup(v.image);
        vm_record_clear(&v);
        if (version <= 0 || !has_disk) {
                http_reply_error(reply, 409, "illegal_transition",
                                 "vm \"%s\" has no disk in the Nest yet (boot it and hibernate or stop it first)",
                                 req->params[0]);
                return;
        }
        _cleanup_free_ char *dir = xasprintf("%s/tmp/export.XXXXXX", o->nest);
        if (!mkdtemp(dir)) {
                http_reply_errno(reply, -EIO, "cannot make a temporary directory: %m");
                return;
        }
        _cleanup_free_ char *overlay = xasprintf("%s/disk.qcow2", dir), *base = xasprintf("%s/image", dir);
        _cleanup_free_ char *out = xasprintf("%s/export.qcow2", dir);
        nest_manifest_t *m = NULL;
        r = nest_manifest_get(o->nest_store, req->params[0], version, BUNDLE_FILE_DISK, &m);
        if (r >= 0)
                r = nest_file_export_path(o->nest_store, m, overlay);
        nest_manifest_free(m);
        m = NULL;
        image_record_t img = { 0 };
        _cleanup_free_ char *msg = NULL;
        if (r >= 0 && store_image_get(o->store, image, &img) >= 0 && streq(img.kind, "disk")) {
                /* rebuild the image the overlay is backed by and point the overlay at it */
                const char *format = json_string_value(json_object_get(img.meta, "format")) ?: "raw";
                r = nest_manifest_get(o->nest_store, image, 0, "disk", &m);
                if (r >= 0)
                        r = nest_file_export_path(o->nest_store, m, base);
                nest_manifest_free(m);
                char *argv[] = { "qemu-img", "rebase", "-u", "-F", (char *)format, "-b", base, "-f", "qcow2", overlay, NULL };
                if (r >= 0 && (r = proc_run(argv, NEST_QEMU_IMG_REBASE_MS, &msg)) < 0) {
                        if (r == -ETIMEDOUT) {
                                free(msg);
                                msg = xasprintf("qemu-img rebase did not finish in %d s", NEST_QEMU_IMG_REBASE_MS / 1000);
                        }
                        r = -EIO;
                }
        }
        image_record_clear(&img);
        if (r >= 0) {
                char *argv[] = { "qemu-img", "convert", "-O", "qcow2", "-f", "qcow2", overlay, out, NULL };
                free(msg);
                msg = NULL;
                if ((r = proc_run(argv, NEST_QEMU_IMG_CONVERT_MS, &msg)) < 0) {
                        if (r == -ETIMEDOUT) {
                                free(msg);
                                msg = xasprintf("qemu-img convert did not finish in %d minutes",
                                                NEST_QEMU_IMG_CONVERT_MS / 60000);
                        }
                        r = -EIO;
                }
        }
        unlink(overlay);
        unlink(base);
        if (r < 0) {
                unlink(out);
                rmdir(dir);
                http_reply_errno(reply, r == -EBADMSG ? -EIO : r, "cannot export the disk of vm \"%s\": %s",
                                 req->params[0], r == -EBADMSG ? "a chunk in the Nest is corrupt" : msg ? msg : strerror(-r));
                return;
        }
        /* out leaves the directory, which goes now; out itself goes once the answer has it open */
        _cleanup_free_ char *served = xasprintf("%s.qcow2", dir);
        if (rename(out, served) < 0) {
                unlink(out);
                rmdir(dir);
                http_reply_errno(reply, -EIO, "cannot export the disk of vm \"%s\": %m", req->params[0]);
                return;
        }
        rmdir(dir);
        http_reply_file_temp(reply, served);
}

const http_route_t oracle_nest_routes[] = {
        { "GET", "/v1/vms/:name/export", h_vm_export, PERM_VM_ACT, OWNER_VM },
        { "GET", "/v1/chunks/:id", h_chunk, PERM_NEST_READ, OWNER_NONE },
        { "POST", "/v1/chunks/missing", h_chunks_missing, PERM_NEST_READ, OWNER_NONE },
        { "POST", "/v1/chunks/fetch", h_chunks_fetch, PERM_NEST_READ, OWNER_NONE },
        { "POST", "/v1/chunks/upload", h_chunks_upload, PERM_NEST_WRITE, OWNER_NONE, .upload = true, .upload_max = 320ull << 20 },
        { "GET", "/v1/manifests/:vm/:version/:file", h_manifest_get, PERM_NEST_READ, OWNER_NONE },
        { "PUT", "/v1/manifests/:vm/:version/:file", h_manifest_put, PERM_NEST_WRITE, OWNER_NONE },
        { "GET", "/v1/nest/stats", h_nest_stats, PERM_NEST_READ, OWNER_NONE },
        { "POST", "/v1/nest/gc", h_nest_gc, PERM_NEST_WRITE, OWNER_NONE },
        { "PUT", "/v1/images/:name", h_put_image, PERM_IMAGE_ACT, OWNER_NONE, .upload = true },
        { "DELETE", "/v1/images/:name", h_delete_image, PERM_IMAGE_ACT, OWNER_NONE },
        { NULL },
};
