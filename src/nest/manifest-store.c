/* Manifests in a store: DIR/manifests/VM/VERSION/FILE.json. Writes go through a session
 * (store_txn_write_file: tmp, fsync, link — never replacing a manifest, as bundles at a version
 * are immutable); reads parse untrusted JSON (manifest.c); listing walks the tree and skips
 * whatever is not a valid key, so a stray file cannot break GC or stats. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "nest/manifest.h"
#include "nest/store-internal.h"

#define JSON_SUFFIX ".json"

bool nest_manifest_file_name_is_valid(const char *file) {
        if (!file || !*file || *file == '.' || strlen(file) > 63)
                return false;
        for (const char *p = file; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
                      *p == '_' || *p == '-'))
                        return false;
        return true;
}

static bool key_is_valid(const char *vm, int64_t version, const char *file) {
        return name_is_valid(vm) && version >= 0 && nest_manifest_file_name_is_valid(file);
}

static char *manifest_relpath(const char *vm, int64_t version, const char *file) {
        return xasprintf("manifests/%s/%lld/%s" JSON_SUFFIX, vm, (long long)version, file);
}

int nest_manifest_put(nest_txn_t *t, const char *vm, int64_t version, const char *file, const nest_manifest_t *m) {
        if (!key_is_valid(vm, version, file) || !m)
                return -EINVAL;
        _cleanup_free_ char *rel = manifest_relpath(vm, version, file);
        _cleanup_free_ char *text = nest_manifest_format(m);
        return store_txn_write_file(t, rel, text, strlen(text));
}

static int manifest_load(nest_store_t *s, const char *rel, nest_manifest_t **ret) {
        _cleanup_close_ int fd = openat(s->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ELOOP ? -EINVAL : negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t)st.st_size > NEST_MANIFEST_JSON_MAX)
                return -EFBIG;
        size_t cap = (size_t)st.st_size + 1, len = 0;
        _cleanup_free_ char *text = malloc(cap);
        if (!text)
                return -ENOMEM;
        while (len < cap) {
                ssize_t n = read(fd, text + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        if (len == cap) /* grew while we read: manifests are written once, so this is not one */
                return -EINVAL;
        return nest_manifest_parse(text, len, ret);
}

int nest_manifest_get(nest_store_t *s, const char *vm, int64_t version, const char *file, nest_manifest_t **ret) {
        if (!key_is_valid(vm, version, file))
                return -EINVAL;
        _cleanup_free_ char *rel = manifest_relpath(vm, version, file);
        return manifest_load(s, rel, ret);
}

/* Opens DIR/rel as a directory stream; NULL with errno set. */
static DIR *dir_open(nest_store_t *s, const char *rel) {
        int fd = openat(s->dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return NULL;
        DIR *d = fdopendir(fd);
        if (!d) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return d;
}

/* Listing skips what is not a directory where one belongs (a stray file or symlink), so that
 * junk in the tree cannot stop GC or stats. */
static bool dir_open_skippable(int err) { return err == ENOENT || err == ENOTDIR || err == ELOOP; }

static void dir_closep(DIR **d) {
        if (*d)
                closedir(*d);
}

/* A version directory name: the canonical decimal of a version >= 0 ("007" is not one). */
static bool version_parse(const char *name, int64_t *ret) {
        int64_t v = 0;
        if (parse_int64(name, 0, INT64_MAX, &v) < 0)
                return false;
        char canon[24];
        snprintf(canon, sizeof canon, "%lld", (long long)v);
        if (!streq(canon, name))
                return false;
        *ret = v;
        return true;
}

struct key_list {
        nest_manifest_key_t *keys;
        size_t n, cap;
};

static void key_list_add(struct key_list *l, const char *vm, int64_t version, const char *file) {
        if (l->n == l->cap) {
                l->cap = MAX(l->cap * 2, (size_t)16);
                l->keys = realloc(l->keys, l->cap * sizeof *l->keys);
                if (!l->keys)
                        abort();
        }
        nest_manifest_key_t *k = &l->keys[l->n++];
        *k = (nest_manifest_key_t){ .version = version };
        snprintf(k->vm, sizeof k->vm, "%s", vm);
        snprintf(k->file, sizeof k->file, "%s", file);
}

static int list_version(nest_store_t *s, const char *vm, int64_t version, struct key_list *l) {
        _cleanup_free_ char *rel = xasprintf("manifests/%s/%lld", vm, (long long)version);
        _cleanup_(dir_closep) DIR *d = dir_open(s, rel);
        if (!d)
                return dir_open_skippable(errno) ? 0 : negative_errno();
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);
                if (n <= strlen(JSON_SUFFIX) || !str_endswith(de->d_name, JSON_SUFFIX))
                        continue;
                char file[64];
                if (n - strlen(JSON_SUFFIX) >= sizeof file)
                        continue;
                memcpy(file, de->d_name, n - strlen(JSON_SUFFIX));
                file[n - strlen(JSON_SUFFIX)] = 0;
                if (nest_manifest_file_name_is_valid(file))
                        key_list_add(l, vm, version, file);
        }
        return 0;
}

static int list_vm(nest_store_t *s, const char *vm, struct key_list *l) {
        _cleanup_free_ char *rel = xasprintf("manifests/%s", vm);
        _cleanup_(dir_closep) DIR *d = dir_open(s, rel);
        if (!d)
                return dir_open_skippable(errno) ? 0 : negative_errno();
        struct dirent *de;
        while ((de = readdir(d))) {
                int64_t version;
                if (!version_parse(de->d_name, &version))
                        continue;
                int r = list_version(s, vm, version, l);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int key_compare(const void *a, const void *b) {
        const nest_manifest_key_t *x = a, *y = b;
        int c = strcmp(x->vm, y->vm);
        if (c)
                return c;
        if (x->version != y->version)
                return x->version < y->version ? -1 : 1;
        return strcmp(x->file, y->file);
}

int nest_manifest_list(nest_store_t *s, const char *vm, nest_manifest_key_t **ret, size_t *ret_n) {
        if (vm && !name_is_valid(vm))
                return -EINVAL;
        struct key_list l = { 0 };
        int r = 0;
        if (vm)
                r = list_vm(s, vm, &l);
        else {
                DIR *d = dir_open(s, "manifests");
                if (!d)
                        return negative_errno();
                struct dirent *de;
                while (r >= 0 && (de = readdir(d)))
                        if (name_is_valid(de->d_name))
                                r = list_vm(s, de->d_name, &l);
                closedir(d);
        }
        if (r < 0) {
                free(l.keys);
                return r;
        }
        if (l.n > 0)
                qsort(l.keys, l.n, sizeof *l.keys, key_compare);
        *ret = l.keys;
        *ret_n = l.n;
        return 0;
}

/* rmdir that ignores "not empty" and "already gone". */
static int rmdir_if_empty(nest_store_t *s, const char *rel) {
        if (unlinkat(s->dirfd, rel, AT_REMOVEDIR) < 0 && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT)
                return negative_errno();
        return 0;
}

int nest_manifest_delete(nest_store_t *s, const char *vm, int64_t version, const char *file) {
        if (!name_is_valid(vm) || version < -1 || (file && (version < 0 || !nest_manifest_file_name_is_valid(file))))
                return -EINVAL;
        _cleanup_free_ nest_manifest_key_t *keys = NULL;
        size_t n = 0;
        int r = nest_manifest_list(s, vm, &keys, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if ((version >= 0 && keys[i].version != version) || (file && !streq(keys[i].file, file)))
                        continue;
                _cleanup_free_ char *rel = manifest_relpath(vm, keys[i].version, keys[i].file);
                if (unlinkat(s->dirfd, rel, 0) < 0 && errno != ENOENT)
                        return negative_errno();
                _cleanup_free_ char *vdir = xasprintf("manifests/%s/%lld", vm, (long long)keys[i].version);
                r = rmdir_if_empty(s, vdir);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ char *vmdir = xasprintf("manifests/%s", vm);
        return rmdir_if_empty(s, vmdir);
}

int nest_manifest_verify(nest_store_t *s, const nest_manifest_t *m, unsigned flags) {
        if (flags & ~(unsigned)NEST_VERIFY_DEEP)
                return -EINVAL;
        _cleanup_(nest_idset_freep) nest_idset_t *seen = nest_idset_new();
        _cleanup_free_ void *buf = NULL;
        if (flags & NEST_VERIFY_DEEP && !(buf = malloc(NEST_STORE_CHUNK_MAX)))
                return -ENOMEM;
        int verdict = 0;
        for (size_t i = 0; i < m->n_refs; i++) {
                const nest_chunk_ref_t *ref = &m->refs[i];
                if (ref->zero || !nest_idset_add(seen, &ref->id))
                        continue;
                if (!(flags & NEST_VERIFY_DEEP)) {
                        if (!nest_chunk_has(s, &ref->id))
                                return -ENOENT;
                        continue;
                }
                /* Deep: go on after a bad chunk, so every corrupt one is quarantined in one pass. */
                size_t len = 0;
                int r = nest_chunk_read(s, &ref->id, buf, NEST_STORE_CHUNK_MAX, &len);
                if (r >= 0 && len != ref->len)
                        r = -EBADMSG; /* a valid chunk, but not what the manifest says */
                if (r == -EBADMSG)
                        verdict = -EBADMSG;
                else if (r == -ENOENT && verdict == 0)
                        verdict = -ENOENT;
                else if (r < 0)
                        return r;
        }
        return verdict;
}

int nest_manifest_missing(nest_txn_t *t, const nest_manifest_t *m, nest_chunk_id_t **ret_ids, size_t *ret_n,
                          uint64_t *ret_bytes) {
        _cleanup_(nest_idset_freep) nest_idset_t *seen = nest_idset_new();
        _cleanup_free_ nest_chunk_id_t *ids = NULL;
        size_t n = 0, cap = 0;
        uint64_t bytes = 0;
        for (size_t i = 0; i < m->n_refs; i++) {
                const nest_chunk_ref_t *ref = &m->refs[i];
                if (ref->zero || !nest_idset_add(seen, &ref->id))
                        continue;
                int r = nest_chunk_pin(t, &ref->id);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (n == cap) {
                        cap = MAX(cap * 2, (size_t)64);
                        ids = realloc(ids, cap * sizeof *ids);
                        if (!ids)
                                abort();
                }
                ids[n++] = ref->id;
                bytes += ref->len;
        }
        *ret_ids = TAKE_PTR(ids);
        *ret_n = n;
        if (ret_bytes)
                *ret_bytes = bytes;
        return 0;
}

int nest_stats(nest_store_t *s, nest_stats_t *ret) {
        nest_store_stats_t cs;
        int r = nest_store_stats(s, &cs);
        if (r < 0)
                return r;
        _cleanup_free_ nest_manifest_key_t *keys = NULL;
        size_t n = 0;
        r = nest_manifest_list(s, NULL, &keys, &n);
        if (r < 0)
                return r;
        nest_stats_t st = { .stored_bytes = cs.stored_bytes, .chunks = cs.chunks };
        for (size_t i = 0; i < n; i++) {
                _cleanup_(nest_manifest_freep) nest_manifest_t *m = NULL;
                r = nest_manifest_get(s, keys[i].vm, keys[i].version, keys[i].file, &m);
                if (r == -ENOENT)
                        continue; /* deleted since the listing */
                if (r == -EINVAL || r == -EFBIG || r == -EPROTONOSUPPORT) {
                        st.bad_manifests++; /* counted, not fatal: stats must not hide the rest */
                        continue;
                }
                if (r < 0)
                        return r;
                st.logical_bytes += m->size;
                st.manifests++;
        }
        *ret = st;
        return 0;
}
