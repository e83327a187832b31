/* The chunk store's layout, chunk encoding, and verified reads (writes are in txn.c). Every
 * read decodes and hashes the chunk: DESIGN.md §8, "bundle data is verified whenever it is read
 * from storage". A chunk that fails is renamed into quarantine/ (only if the file we read is
 * still the one under the name, so a good copy written meanwhile is not moved), which makes it
 * absent: the next put of that content stores a good copy, and transfer fetches one. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "nest/store-internal.h"

static const char chunk_magic[3] = { 'V', 'X', 'C' };

void store_chunk_relpath(const nest_chunk_id_t *id, char ret[CHUNK_RELPATH_SIZE]) {
        char hex[NEST_CHUNK_ID_HEX_SIZE];
        nest_chunk_id_to_hex(id, hex);
        memcpy(ret, "chunks/", 7);
        ret[7] = hex[0];
        ret[8] = hex[1];
        ret[9] = '/';
        memcpy(ret + 10, hex + 2, 63); /* 62 digits and the NUL */
}

void store_shard_relpath(unsigned shard, char ret[16]) { snprintf(ret, 16, "chunks/%02x", shard & 0xffu); }


static int read_all(int fd, void *buf, size_t len, size_t *ret_len) {
        size_t got = 0;
        while (got < len) {
                ssize_t n = read(fd, (char *)buf + got, len - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        *ret_len = got;
        return 0;
}

int store_tmp_create(nest_store_t *s, const char *tag, int *ret_fd, char **ret_relpath) {
        for (int attempt = 0; attempt < 16; attempt++) {
                uint64_t n = atomic_fetch_add(&s->tmp_counter, 1);
                _cleanup_free_ char *rel = xasprintf("tmp/%.70s.%d.%llu", tag, (int)getpid(), (unsigned long long)n);
                int fd = openat(s->dirfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        *ret_fd = fd;
                        *ret_relpath = TAKE_PTR(rel);
                        return 0;
                }
                if (errno != EEXIST) /* EEXIST: left over by a crashed process with our pid */
                        return negative_errno();
        }
        return -EEXIST;
}

void nest_store_set_cache(nest_store_t *s, bool cache) { s->cache = cache; }
bool nest_store_is_cache(const nest_store_t *s) { return s->cache; }

int store_fsync(nest_store_t *s, int fd) {
        if (s->cache)
                return 0;
        atomic_fetch_add(&s->syncs, 1);
        return fsync(fd) < 0 ? negative_errno() : 0;
}

int store_fsync_dirat(nest_store_t *s, const char *reldir) {
        _cleanup_close_ int fd = openat(s->dirfd, reldir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return store_fsync(s, fd);
}

int store_syncfs(nest_store_t *s) {
        if (s->cache)
                return 0;
        atomic_fetch_add(&s->syncs, 1);
        return syncfs(s->dirfd) < 0 ? negative_errno() : 0;
}

int store_flock(nest_store_t *s, const char *relpath, int op, int *ret_fd) {
        _cleanup_close_ int fd = openat(s->dirfd, relpath, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        while (flock(fd, op) < 0) {
                if (errno == EINTR)
                        continue;
                return negative_errno(); /* -EWOULDBLOCK with LOCK_NB */
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int store_shard_lock(nest_store_t *s, const nest_chunk_id_t *id, int op, int *ret_fd) {
        char rel[16];
        store_shard_relpath(id->bytes[0], rel);
        return store_flock(s, rel, op, ret_fd);
}

/* zstd contexts are expensive to make and not thread-safe: keep a few for reuse. */
static ZSTD_CCtx *cctx_take(nest_store_t *s) {
        ZSTD_CCtx *c = NULL;
        pthread_mutex_lock(&s->pool_lock);
        if (s->n_cctx > 0)
                c = s->cctx[--s->n_cctx];
        pthread_mutex_unlock(&s->pool_lock);
        if (!c && !(c = ZSTD_createCCtx()))
                abort();
        return c;
}

static void cctx_give(nest_store_t *s, ZSTD_CCtx *c) {
        pthread_mutex_lock(&s->pool_lock);
        if (s->n_cctx < CTX_POOL) {
                s->cctx[s->n_cctx++] = c;
                c = NULL;
        }
        pthread_mutex_unlock(&s->pool_lock);
        ZSTD_freeCCtx(c);
}

static ZSTD_DCtx *dctx_take(nest_store_t *s) {
        ZSTD_DCtx *d = NULL;
        pthread_mutex_lock(&s->pool_lock);
        if (s->n_dctx > 0)
                d = s->dctx[--s->n_dctx];
        pthread_mutex_unlock(&s->pool_lock);
        if (!d && !(d = ZSTD_createDCtx()))
                abort();
        return d;
}

static void dctx_give(nest_store_t *s, ZSTD_DCtx *d) {
        pthread_mutex_lock(&s->pool_lock);
        if (s->n_dctx < CTX_POOL) {
                s->dctx[s->n_dctx++] = d;
                d = NULL;
        }
        pthread_mutex_unlock(&s->pool_lock);
        ZSTD_freeDCtx(d);
}

int store_chunk_encode(nest_store_t *s, const void *data, size_t len, void **ret_enc, size_t *ret_enc_len) {
        if (len == 0 || len > NEST_STORE_CHUNK_MAX)
                return -EINVAL;
        size_t bound = ZSTD_compressBound(len);
        _cleanup_free_ uint8_t *enc = malloc(CHUNK_HEADER_SIZE + MAX(bound, len));
        if (!enc)
                return -ENOMEM;
        ZSTD_CCtx *c = cctx_take(s);
        size_t csize = ZSTD_compressCCtx(c, enc + CHUNK_HEADER_SIZE, bound, data, len, CHUNK_ZSTD_LEVEL);
        cctx_give(s, c);
        /* Compression must save at least 1/32 to be worth a decompression on every read. */
        bool zstd = !ZSTD_isError(csize) && csize < len - len / 32;
        if (!zstd) {
                memcpy(enc + CHUNK_HEADER_SIZE, data, len);
                csize = len;
        }
        memcpy(enc, chunk_magic, sizeof chunk_magic);
        enc[3] = zstd ? CHUNK_ENC_ZSTD : CHUNK_ENC_RAW;
        for (int i = 0; i < 4; i++)
                enc[4 + i] = (uint8_t)(len >> (8 * i));
        *ret_enc_len = CHUNK_HEADER_SIZE + csize;
        *ret_enc = TAKE_PTR(enc);
        return 0;
}

int64_t store_chunk_declared_len(const void *enc, size_t enc_len) {
        const uint8_t *e = enc;
        if (enc_len < CHUNK_HEADER_SIZE || memcmp(e, chunk_magic, sizeof chunk_magic) != 0 ||
            (e[3] != CHUNK_ENC_RAW && e[3] != CHUNK_ENC_ZSTD))
                return -EBADMSG;
        uint32_t len = (uint32_t)e[4] | (uint32_t)e[5] << 8 | (uint32_t)e[6] << 16 | (uint32_t)e[7] << 24;
        if (len == 0 || len > NEST_STORE_CHUNK_MAX)
                return -EBADMSG;
        return len;
}

int store_chunk_decode(nest_store_t *s, const nest_chunk_id_t *id, const void *enc, size_t enc_len, void *out,
                       size_t out_size, size_t *ret_len) {
        int64_t declared = store_chunk_declared_len(enc, enc_len);
        if (declared < 0)
                return (int)declared;
        size_t len = (size_t)declared;
        if (len > out_size)
                return -ENOBUFS;
        const uint8_t *payload = (const uint8_t *)enc + CHUNK_HEADER_SIZE;
        size_t plen = enc_len - CHUNK_HEADER_SIZE;
        if (((const uint8_t *)enc)[3] == CHUNK_ENC_RAW) {
                if (plen != len)
                        return -EBADMSG;
                memcpy(out, payload, len);
        } else {
                if (ZSTD_getFrameContentSize(payload, plen) != len)
                        return -EBADMSG;
                ZSTD_DCtx *d = dctx_take(s);
                size_t n = ZSTD_decompressDCtx(d, out, len, payload, plen);
                dctx_give(s, d);
                if (ZSTD_isError(n) || n != len)
                        return -EBADMSG;
        }
        nest_chunk_id_t got;
        nest_chunk_id_hash(out, len, &got);
        if (!nest_chunk_id_equal(&got, id))
                return -EBADMSG;
        *ret_len = len;
        return 0;
}

/* Moves the chunk file aside if it is still the inode we read (st). Best effort: failing to
 * move it changes nothing for the caller, who gets -EBADMSG either way. */
static void quarantine(nest_store_t *s, const nest_chunk_id_t *id, const char *rel, const struct stat *st) {
        struct stat now;
        if (fstatat(s->dirfd, rel, &now, AT_SYMLINK_NOFOLLOW) < 0 || now.st_dev != st->st_dev ||
            now.st_ino != st->st_ino)
                return;
        char hex[NEST_CHUNK_ID_HEX_SIZE];
        nest_chunk_id_to_hex(id, hex);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        _cleanup_free_ char *to = xasprintf("quarantine/%s.%lld%09ld", hex, (long long)ts.tv_sec, ts.tv_nsec);
        if (renameat(s->dirfd, rel, s->dirfd, to) == 0)
                atomic_fetch_add(&s->quarantined, 1);
}

/* Reads the chunk file whole (bounded by CHUNK_FILE_MAX). -EBADMSG (after quarantine) when the
 * file cannot be a chunk: not a regular file, or too large. */
static int chunk_file_load(nest_store_t *s, const nest_chunk_id_t *id, char rel[CHUNK_RELPATH_SIZE],
                           struct stat *ret_st, void **ret_enc, size_t *ret_enc_len) {
        store_chunk_relpath(id, rel);
        _cleanup_close_ int fd = openat(s->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ELOOP ? -EBADMSG : negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size > (off_t)CHUNK_FILE_MAX) {
                quarantine(s, id, rel, &st);
                return -EBADMSG;
        }
        /* One byte more than the size, so a file that grew meanwhile is seen as such. */
        size_t cap = (size_t)st.st_size + 1, len = 0;
        _cleanup_free_ void *enc = malloc(cap);
        if (!enc)
                return -ENOMEM;
        int r = read_all(fd, enc, cap, &len);
        if (r < 0)
                return r;
        *ret_st = st;
        *ret_enc = TAKE_PTR(enc);
        *ret_enc_len = len;
        return 0;
}

/* Loads and verifies; decodes into out when out_size allows, else into a scratch buffer just to
 * verify (then -ENOBUFS for a valid chunk that does not fit). */
static int chunk_load_verified(nest_store_t *s, const nest_chunk_id_t *id, void *out, size_t out_size,
                               size_t *ret_len, void **ret_enc, size_t *ret_enc_len) {
        char rel[CHUNK_RELPATH_SIZE];
        struct stat st;
        _cleanup_free_ void *enc = NULL;
        size_t enc_len = 0, len = 0;
        int r = s->seg ? nest_seg_read(s->seg, id, &enc, &enc_len) : chunk_file_load(s, id, rel, &st, &enc, &enc_len);
        if (r < 0)
                return r;
        r = store_chunk_decode(s, id, enc, enc_len, out, out_size, &len);
        if (r == -ENOBUFS) {
                size_t need = (size_t)store_chunk_declared_len(enc, enc_len);
                _cleanup_free_ void *scratch = malloc(need);
                if (!scratch)
                        return -ENOMEM;
                r = store_chunk_decode(s, id, enc, enc_len, scratch, need, &len);
                if (r >= 0)
                        r = -ENOBUFS;
        }
        if (r == -EBADMSG && s->seg) {
                nest_seg_kill(s->seg, id); /* absent from now on: the next pull appends a good copy */
                atomic_fetch_add(&s->quarantined, 1);
        } else if (r == -EBADMSG) {
                quarantine(s, id, rel, &st);
        }
        if (r < 0)
                return r;
        if (ret_len)
                *ret_len = len;
        if (ret_enc) {
                *ret_enc = TAKE_PTR(enc);
                *ret_enc_len = enc_len;
        }
        return 0;
}

int nest_chunk_read(nest_store_t *s, const nest_chunk_id_t *id, void *buf, size_t buf_size, size_t *ret_len) {
        return chunk_load_verified(s, id, buf, buf_size, ret_len, NULL, NULL);
}

int nest_chunk_get(nest_store_t *s, const nest_chunk_id_t *id, void **ret_data, size_t *ret_len) {
        /* Decode into a maximal buffer and shrink it: learning the size from the header first
         * would cost a second read. */
        _cleanup_free_ void *buf = malloc(NEST_STORE_CHUNK_MAX);
        if (!buf)
                return -ENOMEM;
        size_t len = 0;
        int r = nest_chunk_read(s, id, buf, NEST_STORE_CHUNK_MAX, &len);
        if (r < 0)
                return r;
        void *shrunk = realloc(buf, len);
        if (shrunk)
                buf = shrunk;
        *ret_data = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int nest_chunk_get_encoded(nest_store_t *s, const nest_chunk_id_t *id, void **ret_data, size_t *ret_len) {
        _cleanup_free_ void *scratch = malloc(NEST_STORE_CHUNK_MAX);
        if (!scratch)
                return -ENOMEM;
        return chunk_load_verified(s, id, scratch, NEST_STORE_CHUNK_MAX, NULL, ret_data, ret_len);
}

bool nest_chunk_has(nest_store_t *s, const nest_chunk_id_t *id) {
        if (s->seg)
                return nest_seg_has(s->seg, id);
        char rel[CHUNK_RELPATH_SIZE];
        store_chunk_relpath(id, rel);
        struct stat st;
        return fstatat(s->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Makes whatever part of the layout is missing (all of it for a new store), durably. */
static int store_layout_create(nest_store_t *s) {
        static const char *const dirs[] = { "chunks", "tmp", "quarantine", "manifests" };
        static const char *const locks[] = { STORE_LOCK, STORE_GC_LOCK, STORE_GC_TURNSTILE, STORE_GC_STAMP };
        bool made = false;
        for (size_t i = 0; i < ELEMENTSOF(dirs) + 256; i++) {
                char shard[16];
                const char *rel = shard;
                if (i < ELEMENTSOF(dirs))
                        rel = dirs[i];
                else
                        store_shard_relpath((unsigned)(i - ELEMENTSOF(dirs)), shard);
                if (mkdirat(s->dirfd, rel, 0755) == 0)
                        made = true;
                else if (errno != EEXIST)
                        return negative_errno();
        }
        for (size_t i = 0; i < ELEMENTSOF(locks); i++) {
                int fd = openat(s->dirfd, locks[i], O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
                if (fd >= 0) {
                        made = true;
                        close(fd);
                } else if (errno != EEXIST) {
                        return negative_errno();
                }
        }
        /* A chunk's put fsyncs its shard directory, not chunks/ or DIR: make those entries
         * durable once, here. */
        return made ? store_syncfs(s) : 0;
}

static int store_format_check(nest_store_t *s) {
        _cleanup_free_ char *path = xasprintf("%s/format", s->dir);
        _cleanup_free_ char *content = NULL;
        int r = file_read(path, &content, NULL);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0 && !streq(content, STORE_FORMAT))
                return -EPROTONOSUPPORT;
        r = store_layout_create(s); /* also repairs a missing directory of an existing store */
        if (r < 0 || content)
                return r;
        /* Written last: a store with a format file is complete. */
        return file_write_atomic(path, STORE_FORMAT, strlen(STORE_FORMAT));
}

int nest_store_open(const char *dir, nest_store_t **ret) {
        if (!dir || !*dir)
                return -EINVAL;
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        nest_store_t *s = xcalloc(1, sizeof *s);
        s->dir = xstrdup(dir);
        pthread_mutex_init(&s->pool_lock, NULL);
        s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dirfd < 0) {
                r = negative_errno();
                nest_store_free(s);
                return r;
        }
        r = store_format_check(s);
        if (r < 0) {
                nest_store_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

/* Appends every chunk file of the per-file layout that verifies to the segments and removes
 * it. Idempotent: a crash midway leaves the format file as it was, and the next open goes on. */
static int cache_import_files(nest_store_t *s, uint64_t *ret_n) {
        uint64_t n = 0;
        for (unsigned i = 0; i < 256; i++) {
                char rel[16];
                store_shard_relpath(i, rel);
                int fd = openat(s->dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                DIR *d = fdopendir(fd);
                if (!d) {
                        close(fd);
                        continue;
                }
                struct dirent *de;
                while ((de = readdir(d))) {
                        nest_chunk_id_t id;
                        if (store_chunk_name_parse(i, de->d_name, &id) < 0)
                                continue;
                        char crel[CHUNK_RELPATH_SIZE];
                        struct stat st;
                        _cleanup_free_ void *enc = NULL, *scratch = malloc(NEST_STORE_CHUNK_MAX);
                        size_t enc_len = 0, len = 0;
                        if (scratch && chunk_file_load(s, &id, crel, &st, &enc, &enc_len) >= 0 &&
                            store_chunk_decode(s, &id, enc, enc_len, scratch, NEST_STORE_CHUNK_MAX, &len) >= 0) {
                                int r = nest_seg_append(s->seg, &id, enc, enc_len);
                                if (r < 0) {
                                        closedir(d);
                                        return r;
                                }
                                n++;
                        }
                        unlinkat(dirfd(d), de->d_name, 0);
                }
                closedir(d);
        }
        *ret_n = n;
        return 0;
}

int nest_cache_open(const char *dir, uint64_t seg_max, nest_store_t **ret) {
        if (!dir || !*dir)
                return -EINVAL;
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        nest_store_t *s = xcalloc(1, sizeof *s);
        s->dir = xstrdup(dir);
        s->cache = true;
        pthread_mutex_init(&s->pool_lock, NULL);
        _cleanup_free_ char *path = xasprintf("%s/format", dir);
        _cleanup_free_ char *content = NULL;
        s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        r = s->dirfd < 0 ? negative_errno() : file_read(path, &content, NULL);
        if (r == -ENOENT)
                r = 0;
        bool old = content && streq(content, STORE_FORMAT);
        if (r >= 0 && content && !old && !streq(content, CACHE_FORMAT))
                r = -EPROTONOSUPPORT;
        if (r >= 0)
                r = store_layout_create(s);
        if (r >= 0)
                r = nest_seg_open(s->dirfd, seg_max, &s->seg);
        uint64_t imported = 0;
        if (r >= 0 && old)
                r = cache_import_files(s, &imported);
        if (r >= 0 && (!content || old))
                r = file_write_atomic(path, CACHE_FORMAT, strlen(CACHE_FORMAT));
        if (r < 0) {
                nest_store_free(s);
                return r;
        }
        if (old)
                log_info("chunk cache %s: %llu chunks moved from chunk files into segment files", dir,
                         (unsigned long long)imported);
        *ret = s;
        return 0;
}

nest_store_t *nest_store_free(nest_store_t *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_cctx; i++)
                ZSTD_freeCCtx(s->cctx[i]);
        for (size_t i = 0; i < s->n_dctx; i++)
                ZSTD_freeDCtx(s->dctx[i]);
        pthread_mutex_destroy(&s->pool_lock);
        nest_seg_free(s->seg);
        if (s->dirfd >= 0)
                close(s->dirfd);
        free(s->dir);
        free(s);
        return NULL;
}

const char *nest_store_dir(const nest_store_t *s) { return s->dir; }

int store_chunk_name_parse(unsigned shard, const char *name, nest_chunk_id_t *ret) {
        if (shard > 0xff || strlen(name) != 2 * NEST_CHUNK_ID_SIZE - 2)
                return -EINVAL;
        char hex[NEST_CHUNK_ID_HEX_SIZE];
        snprintf(hex, sizeof hex, "%02x%s", shard, name);
        return nest_chunk_id_from_hex(hex, ret);
}

int nest_store_stats(nest_store_t *s, nest_store_stats_t *ret) {
        nest_store_stats_t st = { 0 };
        if (s->seg) {
                nest_seg_stats_t gs;
                nest_seg_stats(s->seg, &gs);
                *ret = (nest_store_stats_t){ .chunks = gs.chunks, .stored_bytes = gs.bytes };
                return 0;
        }
        for (unsigned i = 0; i < 256; i++) {
                char rel[16];
                store_shard_relpath(i, rel);
                int fd = openat(s->dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return negative_errno();
                DIR *d = fdopendir(fd);
                if (!d) {
                        int r = negative_errno();
                        close(fd);
                        return r;
                }
                struct dirent *de;
                while ((de = readdir(d))) {
                        struct stat fst;
                        nest_chunk_id_t id;
                        if (store_chunk_name_parse(i, de->d_name, &id) < 0 || fstatat(dirfd(d), de->d_name, &fst, AT_SYMLINK_NOFOLLOW) < 0 ||
                            !S_ISREG(fst.st_mode))
                                continue; /* vanished (GC, quarantine) or not ours */
                        st.chunks++;
                        st.stored_bytes += (uint64_t)fst.st_size;
                }
                closedir(d);
        }
        *ret = st;
        return 0;
}

void nest_store_counters(nest_store_t *s, nest_store_counters_t *ret) {
        *ret = (nest_store_counters_t){
                .syncs = atomic_load(&s->syncs),
                .quarantined = atomic_load(&s->quarantined),
        };
}
