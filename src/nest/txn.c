/* Write sessions: every chunk and manifest write of the store goes through one, for two reasons.
 *
 * Atomicity and durability. A chunk is written to DIR/tmp, fsynced, renamed to its final name,
 * and its shard directory fsynced: the final name only ever holds a complete chunk. In a batch
 * session (NEST_TXN_BATCH) the per-chunk fsyncs are replaced by a flush at commit:
 *     syncfs  (every tmp file's bytes are on disk)
 *     rename the chunks into place, syncfs  (their names are on disk)
 *     link the manifests into place, syncfs
 * so a batch costs three syncfs calls per NEST_TXN_BATCH_MAX (4096) chunks — 10,000 chunks, eight
 * calls instead of 20,000 fsyncs — a crash at any point leaves complete chunks or tmp files
 * (which GC removes), and no manifest is ever durable before the chunks it names. syncfs flushes the whole filesystem: on a busy shared filesystem that is
 * dearer than on the Nest's own, but it is still one call per batch.
 *
 * Safety against GC. A session holds DIR/lock shared for its whole life, so a GC cannot mark
 * while a session is open (it waits). If a GC's sweep is already under way when the session
 * begins (DIR/gc.lock is held), the session "touches" every existing chunk it relies on (sets
 * its mtime to now, under the shard directory's lock) and the sweep spares chunks touched after
 * it began. The full argument is at the top of gc.c. */
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "base/util.h"
#include "nest/store-internal.h"

struct pending_chunk {
        nest_chunk_id_t id;
        char *tmp;
};

struct pending_file {
        char *tmp;
        char *final;
};

struct nest_txn {
        nest_store_t *s;
        unsigned flags;
        int lock_fd;  /* DIR/lock, LOCK_SH */
        bool touch;   /* a GC sweep was running when the session began */
        bool ended;   /* committed (or commit failed): only _free may follow */
        struct pending_chunk *chunks;
        size_t n_chunks, cap_chunks;
        nest_idset_t *pending; /* ids of chunks */
        struct pending_file *files;
        size_t n_files, cap_files;
};

int nest_txn_begin(nest_store_t *s, unsigned flags, nest_txn_t **ret) {
        if (flags & ~(unsigned)NEST_TXN_BATCH)
                return -EINVAL;
        _cleanup_close_ int turnstile = -1, lock = -1, probe = -1;
        int r = store_flock(s, STORE_GC_TURNSTILE, LOCK_SH, &turnstile);
        if (r < 0)
                return r;
        r = store_flock(s, STORE_LOCK, LOCK_SH, &lock);
        if (r < 0)
                return r;
        /* Holding `lock` shared, no GC can be marking now or start marking until we end. Is
         * one sweeping? (It holds gc.lock from before its mark until its sweep ends.) */
        bool touch = false;
        r = store_flock(s, STORE_GC_LOCK, LOCK_SH | LOCK_NB, &probe);
        if (r == -EWOULDBLOCK)
                touch = true;
        else if (r < 0)
                return r;
        nest_txn_t *t = xcalloc(1, sizeof *t);
        t->s = s;
        t->flags = flags;
        t->lock_fd = TAKE_FD(lock);
        t->touch = touch;
        if (flags & NEST_TXN_BATCH)
                t->pending = nest_idset_new();
        *ret = t;
        return 0;
}

nest_store_t *nest_txn_store(nest_txn_t *t) { return t->s; }

static void pending_discard(nest_txn_t *t) {
        for (size_t i = 0; i < t->n_chunks; i++) {
                unlinkat(t->s->dirfd, t->chunks[i].tmp, 0);
                free(t->chunks[i].tmp);
        }
        t->n_chunks = 0;
        for (size_t i = 0; i < t->n_files; i++) {
                unlinkat(t->s->dirfd, t->files[i].tmp, 0);
                free(t->files[i].tmp);
                free(t->files[i].final);
        }
        t->n_files = 0;
}

nest_txn_t *nest_txn_free(nest_txn_t *t) {
        if (!t)
                return NULL;
        pending_discard(t);
        free(t->chunks);
        free(t->files);
        nest_idset_free(t->pending);
        if (t->lock_fd >= 0)
                close(t->lock_fd);
        free(t);
        return NULL;
}

/* 1 when the chunk is present (and, during a GC sweep, touched so the sweep keeps it), 0 not. */
static int chunk_present(nest_txn_t *t, const nest_chunk_id_t *id) {
        if (t->s->seg) /* eviction holds the store lock exclusively: no touch needed */
                return nest_seg_has(t->s->seg, id) ? 1 : 0;
        if (t->pending && nest_idset_contains(t->pending, id))
                return 1;
        char rel[CHUNK_RELPATH_SIZE];
        store_chunk_relpath(id, rel);
        if (!t->touch) {
                struct stat st;
                if (fstatat(t->s->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0)
                        return 1;
                return errno == ENOENT ? 0 : negative_errno();
        }
        /* The shard lock makes "touch" and the sweep's "check mtime, unlink" exclusive: either
         * we touch first and the sweep sees a fresh mtime, or it unlinks first and we see ENOENT. */
        _cleanup_close_ int shard = -1;
        int r = store_shard_lock(t->s, id, LOCK_SH, &shard);
        if (r < 0)
                return r;
        if (utimensat(t->s->dirfd, rel, NULL, AT_SYMLINK_NOFOLLOW) == 0)
                return 1;
        return errno == ENOENT ? 0 : negative_errno();
}

int nest_chunk_pin(nest_txn_t *t, const nest_chunk_id_t *id) {
        if (t->ended)
                return -EINVAL;
        return chunk_present(t, id);
}

/* Renames a complete tmp file to the chunk's name. Under the shard lock during a sweep, so the
 * sweep never decides about a name while we replace what is under it. */
static int chunk_publish(nest_txn_t *t, const nest_chunk_id_t *id, const char *tmp) {
        char rel[CHUNK_RELPATH_SIZE];
        store_chunk_relpath(id, rel);
        _cleanup_close_ int shard = -1;
        if (t->touch) {
                int r = store_shard_lock(t->s, id, LOCK_SH, &shard);
                if (r < 0)
                        return r;
        }
        crash_point("nest-chunk-rename");
        if (renameat(t->s->dirfd, tmp, t->s->dirfd, rel) < 0)
                return negative_errno();
        return 0;
}

/* 1 when DIR/rel holds exactly data, 0 when it does not exist, -EEXIST when it holds other bytes. */
static int file_compare(nest_txn_t *t, const char *rel, const void *data, size_t len) {
        _cleanup_free_ char *path = xasprintf("%s/%s", t->s->dir, rel);
        _cleanup_free_ char *have = NULL;
        size_t have_len = 0;
        int r = file_read(path, &have, &have_len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return have_len == len && memcmp(have, data, len) == 0 ? 1 : -EEXIST;
}

static int parents_create(nest_txn_t *t, const char *rel);

/* Links a complete tmp file to its final name (never replacing one), then drops the tmp name. */
static int file_publish(nest_txn_t *t, const char *tmp, const char *final) {
        int r = 0;
        if (linkat(t->s->dirfd, tmp, t->s->dirfd, final, 0) < 0) {
                r = negative_errno();
                /* A delete may have removed the parents it emptied since we made them. */
                if (r == -ENOENT && parents_create(t, final) >= 0)
                        r = linkat(t->s->dirfd, tmp, t->s->dirfd, final, 0) < 0 ? negative_errno() : 0;
        }
        if (r == -EEXIST) {
                _cleanup_free_ char *path = xasprintf("%s/%s", t->s->dir, tmp);
                _cleanup_free_ char *data = NULL;
                size_t len = 0;
                r = file_read(path, &data, &len);
                if (r >= 0)
                        r = file_compare(t, final, data, len) == 1 ? 0 : -EEXIST;
        }
        unlinkat(t->s->dirfd, tmp, 0);
        return r;
}

static int txn_flush(nest_txn_t *t) {
        if (t->n_chunks == 0 && t->n_files == 0)
                return 0;
        int r = store_syncfs(t->s);
        if (r < 0)
                return r;
        size_t i = 0;
        for (; i < t->n_chunks && r >= 0; i++) {
                r = chunk_publish(t, &t->chunks[i].id, t->chunks[i].tmp);
                if (r >= 0)
                        free(t->chunks[i].tmp);
        }
        if (r < 0) {
                i--; /* the failed one stays pending, for _free to remove */
                memmove(t->chunks, t->chunks + i, (t->n_chunks - i) * sizeof *t->chunks);
                t->n_chunks -= i;
                return r;
        }
        t->n_chunks = 0;
        nest_idset_free(t->pending);
        t->pending = nest_idset_new();
        r = store_syncfs(t->s);
        if (r < 0 || t->n_files == 0)
                return r;
        crash_point("nest-batch-files");
        /* Every file is published (and its tmp removed) even after one fails: they are
         * independent, and the first error is reported. */
        for (i = 0; i < t->n_files; i++) {
                int k = file_publish(t, t->files[i].tmp, t->files[i].final);
                if (k < 0 && r >= 0)
                        r = k;
                free(t->files[i].tmp);
                free(t->files[i].final);
        }
        t->n_files = 0;
        int k = store_syncfs(t->s);
        return r < 0 ? r : k;
}

int nest_txn_commit(nest_txn_t *t) {
        if (t->ended)
                return -EINVAL;
        t->ended = true;
        int r = txn_flush(t);
        if (r >= 0) {
                close(t->lock_fd);
                t->lock_fd = -1;
        }
        return r;
}

/* Stores an encoded chunk already verified to be id. */
static int chunk_store(nest_txn_t *t, const nest_chunk_id_t *id, const void *enc, size_t enc_len) {
        if (t->s->seg) { /* appended and indexed: acknowledged at return, batch or not */
                int r = nest_seg_append(t->s->seg, id, enc, enc_len);
                return r < 0 ? r : 0;
        }
        char hex[NEST_CHUNK_ID_HEX_SIZE];
        nest_chunk_id_to_hex(id, hex);
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r = store_tmp_create(t->s, hex, &fd, &tmp);
        if (r < 0)
                return r;
        r = fd_write_all(fd, enc, enc_len);
        if (r >= 0 && t->pending) {
                if (t->n_chunks == t->cap_chunks) {
                        t->cap_chunks = MAX(t->cap_chunks * 2, (size_t)64);
                        t->chunks = realloc(t->chunks, t->cap_chunks * sizeof *t->chunks);
                        if (!t->chunks)
                                abort();
                }
                t->chunks[t->n_chunks++] = (struct pending_chunk){ .id = *id, .tmp = TAKE_PTR(tmp) };
                nest_idset_add(t->pending, id);
                return t->n_chunks >= NEST_TXN_BATCH_MAX ? txn_flush(t) : 0;
        }
        if (r >= 0)
                r = store_fsync(t->s, fd);
        if (r >= 0)
                r = chunk_publish(t, id, tmp);
        if (r < 0) {
                unlinkat(t->s->dirfd, tmp, 0);
                return r;
        }
        char shard[16];
        store_shard_relpath(id->bytes[0], shard);
        return store_fsync_dirat(t->s, shard);
}

static int put_encoded_verified(nest_txn_t *t, const nest_chunk_id_t *id, const void *enc, size_t enc_len,
                                size_t *ret_stored) {
        int r = chunk_present(t, id);
        if (r < 0)
                return r;
        if (r > 0) {
                if (ret_stored)
                        *ret_stored = 0;
                return 0;
        }
        r = chunk_store(t, id, enc, enc_len);
        if (r < 0)
                return r;
        if (ret_stored)
                *ret_stored = enc_len;
        return 1;
}

static int put_hashed(nest_txn_t *t, const nest_chunk_id_t *id, const void *data, size_t len, size_t *ret_stored) {
        /* Checked before encoding: a present chunk costs no compression. */
        int r = chunk_present(t, id);
        if (r < 0)
                return r;
        if (r > 0) {
                if (ret_stored)
                        *ret_stored = 0;
                return 0;
        }
        _cleanup_free_ void *enc = NULL;
        size_t enc_len = 0;
        r = store_chunk_encode(t->s, data, len, &enc, &enc_len);
        if (r < 0)
                return r;
        r = chunk_store(t, id, enc, enc_len);
        if (r < 0)
                return r;
        if (ret_stored)
                *ret_stored = enc_len;
        return 1;
}

int nest_chunk_put(nest_txn_t *t, const void *data, size_t len, nest_chunk_id_t *ret_id, size_t *ret_stored) {
        if (t->ended)
                return -EINVAL;
        if (!data || len == 0 || len > NEST_STORE_CHUNK_MAX)
                return -EINVAL;
        nest_chunk_id_t id;
        nest_chunk_id_hash(data, len, &id);
        int r = put_hashed(t, &id, data, len, ret_stored);
        if (r >= 0 && ret_id)
                *ret_id = id;
        return r;
}

int nest_chunk_put_expect(nest_txn_t *t, const nest_chunk_id_t *id, const void *data, size_t len,
                          size_t *ret_stored) {
        if (t->ended)
                return -EINVAL;
        if (!data || len == 0 || len > NEST_STORE_CHUNK_MAX)
                return -EINVAL;
        nest_chunk_id_t got;
        nest_chunk_id_hash(data, len, &got);
        if (!nest_chunk_id_equal(&got, id))
                return -EBADMSG;
        return put_hashed(t, id, data, len, ret_stored);
}

int nest_chunk_put_encoded(nest_txn_t *t, const nest_chunk_id_t *id, const void *enc, size_t enc_len,
                           size_t *ret_stored) {
        if (t->ended)
                return -EINVAL;
        if (!enc || enc_len > CHUNK_FILE_MAX)
                return -EBADMSG;
        _cleanup_free_ void *scratch = malloc(NEST_STORE_CHUNK_MAX);
        if (!scratch)
                return -ENOMEM;
        size_t len = 0;
        int r = store_chunk_decode(t->s, id, enc, enc_len, scratch, NEST_STORE_CHUNK_MAX, &len);
        if (r < 0)
                return r == -ENOBUFS ? -EBADMSG : r;
        return put_encoded_verified(t, id, enc, enc_len, ret_stored);
}

int nest_chunk_put_encoded_into(nest_txn_t *t, const nest_chunk_id_t *id, const void *enc, size_t enc_len, void *out,
                                size_t out_size, size_t *ret_len) {
        if (t->ended)
                return -EINVAL;
        if (!enc || enc_len > CHUNK_FILE_MAX)
                return -EBADMSG;
        size_t len = 0;
        int r = store_chunk_decode(t->s, id, enc, enc_len, out, out_size, &len);
        if (r < 0)
                return r == -ENOBUFS ? -EBADMSG : r;
        r = put_encoded_verified(t, id, enc, enc_len, NULL);
        if (r >= 0)
                *ret_len = len;
        return r;
}

/* mkdir of every missing parent of rel (relative to the store). */
static int parents_create(nest_txn_t *t, const char *rel) {
        _cleanup_free_ char *p = xstrdup(rel);
        for (char *slash = strchr(p, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = 0;
                if (mkdirat(t->s->dirfd, p, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                *slash = '/';
        }
        return 0;
}

/* fsync of every parent directory of rel below the store's top level (made at open), deepest
 * first: each holds a new entry, or may. */
static int parents_fsync(nest_txn_t *t, const char *rel) {
        _cleanup_free_ char *p = xstrdup(rel);
        for (char *slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
                *slash = 0;
                int r = store_fsync_dirat(t->s, p);
                if (r < 0)
                        return r;
        }
        return 0;
}

int store_txn_write_file(nest_txn_t *t, const char *final_rel, const void *data, size_t len) {
        if (t->ended)
                return -EINVAL;
        int r = file_compare(t, final_rel, data, len);
        if (r != 0)
                return r < 0 ? r : 0;
        r = parents_create(t, final_rel);
        if (r < 0)
                return r;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        r = store_tmp_create(t->s, "file", &fd, &tmp);
        if (r < 0)
                return r;
        r = fd_write_all(fd, data, len);
        if (r >= 0 && t->pending) {
                if (t->n_files == t->cap_files) {
                        t->cap_files = MAX(t->cap_files * 2, (size_t)8);
                        t->files = realloc(t->files, t->cap_files * sizeof *t->files);
                        if (!t->files)
                                abort();
                }
                t->files[t->n_files++] = (struct pending_file){ .tmp = TAKE_PTR(tmp), .final = xstrdup(final_rel) };
                return 0;
        }
        if (r >= 0)
                r = store_fsync(t->s, fd);
        if (r < 0) {
                unlinkat(t->s->dirfd, tmp, 0);
                return r;
        }
        r = file_publish(t, tmp, final_rel);
        if (r < 0)
                return r;
        return parents_fsync(t, final_rel);
}
