/* The node's side of the Nest: its local chunk cache (DATA/cache), filled from the Oracle's Nest
 * or another node with only the chunks it lacks, and the files of a VM's bundle moved in and
 * out of it. A bundle file is named by its manifest's digest (SHA-256 of the manifest's
 * canonical text), and every chunk is verified when it arrives and again when it is read, so a
 * file rebuilt here is byte for byte the one that was saved. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "nest/import.h"
#include "nest/transfer.h"
#include "node/node-internal.h"

#define NODE_TRANSFER_STREAMS 4

char *node_nest_memory_dir(node_t *n) { return xasprintf("%s/memory", n->data); }

int node_nest_open(node_t *n) {
        /* memory files are rebuilt unsynced (see node_nest_memory_file), so a crash may have
         * left one torn: start afresh. A QEMU that maps one keeps its mapping. */
        _cleanup_free_ char *mem = node_nest_memory_dir(n);
        (void)rm_rf(mem);
        /* root's only: a snapshot mapped by a confined QEMU is writable to it (qemu-confine.h) */
        int r = mkdir_p(mem, 0700);
        if (r < 0)
                return r;
        /* disks kept from saves here (node_disk_keep): not trusted across a restart */
        _cleanup_free_ char *staged = xasprintf("%s/staged", n->data);
        (void)rm_rf(staged);
        _cleanup_free_ char *dir = xasprintf("%s/cache", n->data);
        /* segment files, unsynced: the Nest holds the durable copy */
        return nest_cache_open(dir, 0, &n->cache);
}

/* Adds one transfer's figures to a running total. */
static void stats_add(nest_transfer_stats_t *acc, const nest_transfer_stats_t *st) {
        acc->bytes_total += st->bytes_total;
        acc->bytes_transferred += st->bytes_transferred;
        acc->chunks_total += st->chunks_total;
        acc->chunks_transferred += st->chunks_transferred;
}


/* Builds the file of (vm, version, file) in fd in one pass (nest_pull_into): its manifest is the
 * cache's when that one has the digest info names, else base's (checked against it); what the
 * cache lacks comes from base. */
static int pull_into_fd(node_t *n, const char *base, const char *vm, int64_t version, const char *file,
                        const json_t *info, int fd, uint64_t max_bps, nest_transfer_stats_t *acc,
                        nest_progress_fn progress, void *userdata, char **ret_msg) {
        const char *digest = json_string_value(json_object_get(info, "digest"));
        if (!digest) {
                *ret_msg = xasprintf("%s of %s names no manifest digest", file, vm);
                return -EINVAL;
        }
        _cleanup_(nest_manifest_freep) nest_manifest_t *m = NULL;
        if (nest_manifest_get(n->cache, vm, version, file, &m) >= 0) {
                char have[65];
                nest_manifest_digest(m, have);
                if (!streq(have, digest))
                        m = nest_manifest_free(m);
        }
        int r = m ? 0 : nest_remote_manifest_get(base, vm, version, file, digest, &m, ret_msg);
        if (r < 0)
                return r;
        nest_file_ref_t ref = { vm, version, file, m };
        nest_transfer_stats_t st = { 0 };
        r = nest_pull_into(n->cache, base, &ref, fd, NODE_TRANSFER_STREAMS, max_bps, progress, userdata, &st, ret_msg);
        if (r < 0)
                return r;
        stats_add(acc, &st);
        return 0;
}

int node_nest_pull_to_path(node_t *n, const char *base, const char *vm, int64_t version, const char *file,
                           const json_t *info, const char *dest, nest_transfer_stats_t *acc, nest_progress_fn progress,
                           void *userdata, char **ret_msg) {
        return node_nest_pull_to_path_paced(n, base, vm, version, file, info, dest, 0, acc, progress, userdata, ret_msg);
}

int node_nest_pull_to_path_paced(node_t *n, const char *base, const char *vm, int64_t version, const char *file,
                                 const json_t *info, const char *dest, uint64_t max_bps, nest_transfer_stats_t *acc,
                                 nest_progress_fn progress, void *userdata, char **ret_msg) {
        static atomic_int seq;
        _cleanup_free_ char *tmp = xasprintf("%s.nest-tmp.%d", dest, atomic_fetch_add(&seq, 1));
        int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
                int r = negative_errno();
                *ret_msg = xasprintf("cannot create %s: %s", tmp, strerror(-r));
                return r;
        }
        int r = pull_into_fd(n, base, vm, version, file, info, fd, max_bps, acc, progress, userdata, ret_msg);
        /* durable: a VM's disk (or an image) is not rebuilt from the cache after a power loss */
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        close(fd);
        if (r >= 0 && rename(tmp, dest) < 0)
                r = negative_errno();
        if (r >= 0)
                r = fsync_dir_of(dest);
        if (r < 0) {
                unlink(tmp);
                if (!*ret_msg)
                        *ret_msg = xasprintf("rebuilding %s of %s: %s", file, vm, strerror(-r));
        }
        return r;
}

static int memory_file_build(node_t *n, const char *base, const char *vm, int64_t version, const json_t *info,
                             const char *path, uint64_t max_bps, nest_transfer_stats_t *acc, nest_progress_fn progress,
                             void *userdata, char **ret_msg);

int node_nest_memory_file(node_t *n, const char *base, const char *vm, int64_t version, const json_t *info,
                          nest_transfer_stats_t *acc, nest_progress_fn progress, void *userdata, char **ret_path,
                          char **ret_msg) {
        return node_nest_memory_file_paced(n, base, vm, version, info, 0, acc, progress, userdata, ret_path, ret_msg);
}

int node_nest_memory_file_paced(node_t *n, const char *base, const char *vm, int64_t version, const json_t *info,
                                uint64_t max_bps, nest_transfer_stats_t *acc, nest_progress_fn progress, void *userdata,
                                char **ret_path, char **ret_msg) {
        const char *digest = json_string_value(json_object_get(info, "digest"));
        if (!bundle_sha256_is_valid(digest)) {
                *ret_msg = xasprintf("memory of %s names no valid manifest digest", vm);
                return -EINVAL;
        }
        _cleanup_free_ char *dir = node_nest_memory_dir(n);
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, digest);
        if (file_exists(path)) {
                (void)utimensat(AT_FDCWD, path, NULL, 0); /* recently used: pruned last */
                acc->bytes_total += (uint64_t)MAX(file_size(path), 0);
                *ret_path = TAKE_PTR(path);
                return 0;
        }
        /* one builder at a time: the clones of one snapshot start together and all need it */
        pthread_mutex_lock(&n->memory_lock);
        int r = memory_file_build(n, base, vm, version, info, path, max_bps, acc, progress, userdata, ret_msg);
        pthread_mutex_unlock(&n->memory_lock);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}

static int memory_file_build(node_t *n, const char *base, const char *vm, int64_t version, const json_t *info,
                             const char *path, uint64_t max_bps, nest_transfer_stats_t *acc, nest_progress_fn progress,
                             void *userdata, char **ret_msg) {
        if (file_exists(path))
                return 0; /* built by another VM while this one waited */
        /* unique name: a crash leaves only a temporary file behind */
        static atomic_int seq;
        _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, atomic_fetch_add(&seq, 1));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
        int r = fd < 0 ? negative_errno() : 0;
        if (r < 0)
                *ret_msg = xasprintf("cannot create %s: %s", tmp, strerror(-r));
        if (r >= 0)
                r = pull_into_fd(n, base, vm, version, BUNDLE_FILE_MEMORY, info, fd, max_bps, acc, progress, userdata,
                                 ret_msg);
        if (fd >= 0)
                close(fd);
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0) {
                unlink(tmp);
                if (!*ret_msg)
                        *ret_msg = xasprintf("rebuilding the memory of %s: %s", vm, strerror(-r));
                return r;
        }
        return 0;
}

int node_nest_pull_chunks(node_t *n, const char *base, const char *vm, int64_t version, const char *file,
                          const json_t *info, uint64_t max_bps, nest_transfer_stats_t *acc, char **ret_msg) {
        const char *digest = json_string_value(json_object_get(info, "digest"));
        if (!digest) {
                *ret_msg = xasprintf("%s of %s names no manifest digest", file, vm);
                return -EINVAL;
        }
        _cleanup_(nest_manifest_freep) nest_manifest_t *m = NULL;
        int r = nest_remote_manifest_get(base, vm, version, file, digest, &m, ret_msg);
        if (r < 0)
                return r;
        nest_file_ref_t ref = { vm, version, file, m };
        nest_transfer_stats_t st = { 0 };
        r = nest_pull_paced(n->cache, base, &ref, 1, NODE_TRANSFER_STREAMS, max_bps, NULL, NULL, &st, ret_msg);
        if (r < 0)
                return r;
        stats_add(acc, &st);
        return 0;
}

/* A pull running beside a reader (see node_nest_pull_to_fd). */
typedef struct background_pull {
        nest_store_t *cache;
        const char *base;
        nest_file_ref_t ref;
        nest_progress_fn progress;
        void *userdata;
        nest_transfer_stats_t stats;
        int result;
        char *msg;
        atomic_int done;
} background_pull_t;

static void *background_pull_thread(void *arg) {
        background_pull_t *b = arg;
        b->result = nest_pull(b->cache, b->base, &b->ref, 1, NODE_TRANSFER_STREAMS, b->progress, b->userdata, &b->stats,
                              &b->msg);
        atomic_store(&b->done, 1);
        return NULL;
}

/* Writes the file of m to fd in order while a background pull brings its chunks: each chunk is
 * read (and verified) as soon as it is in the cache, so the reader (QEMU loading a saved state)
 * works while the rest is still on the way. */
static int stream_while_pulling(node_t *n, const nest_manifest_t *m, int fd, background_pull_t *b) {
        static const char zeros[65536];
        size_t cap = NEST_STORE_CHUNK_MAX;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_refs; i++) {
                const nest_chunk_ref_t *ref = &m->refs[i];
                if (ref->zero) {
                        for (uint64_t left = ref->len; left > 0;) {
                                size_t k = (size_t)MIN(left, (uint64_t)sizeof zeros);
                                if (fd_write_all(fd, zeros, k) < 0)
                                        return -EPIPE;
                                left -= k;
                        }
                        continue;
                }
                while (!nest_chunk_has(n->cache, &ref->id)) {
                        if (atomic_load(&b->done))
                                return nest_chunk_has(n->cache, &ref->id) ? 0 : b->result < 0 ? b->result : -ENOENT;
                        time_sleep_ms(1);
                }
                size_t len = 0;
                int r = nest_chunk_read(n->cache, &ref->id, buf, cap, &len);
                if (r < 0)
                        return r;
                if (len != ref->len)
                        return -EBADMSG;
                if (fd_write_all(fd, buf, len) < 0)
                        return -EPIPE;
        }
        return 0;
}

int node_nest_pull_to_fd(node_t *n, const char *base, const char *vm, int64_t version, const char *file,
                         const json_t *info, int fd, nest_transfer_stats_t *acc, nest_progress_fn progress,
                         void *userdata, char **ret_msg) {
        const char *digest = json_string_value(json_object_get(info, "digest"));
        nest_manifest_t *m = NULL;
        int r = 0;
        bool cached = false;
        if (digest && nest_manifest_get(n->cache, vm, version, file, &m) >= 0) {
                char have[65];
                nest_manifest_digest(m, have);
                cached = streq(have, digest);
                if (!cached)
                        m = nest_manifest_free(m);
        }
        if (!cached) {
                if (!digest) {
                        *ret_msg = xasprintf("%s of %s names no manifest digest", file, vm);
                        return -EINVAL;
                }
                r = nest_remote_manifest_get(base, vm, version, file, digest, &m, ret_msg);
                if (r < 0)
                        return r;
        }
        background_pull_t b = { .cache = n->cache, .base = base, .ref = { vm, version, file, m }, .progress = progress,
                                .userdata = userdata };
        pthread_t t;
        bool started = !cached && pthread_create(&t, NULL, background_pull_thread, &b) == 0;
        if (!cached && !started) {
                b.result = nest_pull(n->cache, base, &b.ref, 1, NODE_TRANSFER_STREAMS, progress, userdata, &b.stats, &b.msg);
                atomic_store(&b.done, 1);
        }
        if (cached)
                atomic_store(&b.done, 1);
        r = b.result < 0 ? b.result : stream_while_pulling(n, m, fd, &b);
        if (started)
                pthread_join(t, NULL);
        if (r >= 0 && b.result < 0)
                r = b.result;
        acc->bytes_total += m->size;
        acc->bytes_transferred += b.stats.bytes_transferred;
        acc->chunks_total += b.stats.chunks_total;
        acc->chunks_transferred += b.stats.chunks_transferred;
        nest_manifest_free(m);
        if (r < 0) {
                if (b.msg)
                        *ret_msg = TAKE_PTR(b.msg);
                else
                        *ret_msg = xasprintf("streaming %s of %s: %s", file, vm,
                                             r == -EBADMSG ? "a chunk is corrupt (quarantined)" : strerror(-r));
        }
        free(b.msg);
        return r;
}

int node_nest_stage(node_t *n, const char *vm, int64_t version, const char *const *files, const char *const *paths,
                    size_t count, json_t **ret_files, char **ret_msg) {
        nest_txn_t *t = NULL;
        int r = nest_txn_begin(n->cache, NEST_TXN_BATCH, &t);
        if (r < 0) {
                *ret_msg = xasprintf("local chunk cache: %s", strerror(-r));
                return r;
        }
        json_t *out = json_object();
        for (size_t i = 0; i < count && r >= 0; i++) {
                nest_manifest_t *m = NULL;
                r = nest_file_import(t, paths[i], &m, NULL);
                if (r >= 0) {
                        r = nest_manifest_put(t, vm, version, files[i], m);
                        if (r == -EEXIST)
                                r = 0; /* staged before: same version, same content */
                }
                if (r >= 0) {
                        char digest[65];
                        nest_manifest_digest(m, digest);
                        json_object_set_new(out, files[i],
                                            json_pack("{s:s,s:I,s:I}", "digest", digest, "size", (json_int_t)m->size,
                                                      "chunks", (json_int_t)m->n_refs));
                } else {
                        *ret_msg = xasprintf("putting %s of %s into the chunk cache: %s", files[i], vm, strerror(-r));
                }
                nest_manifest_free(m);
        }
        if (r >= 0)
                r = nest_txn_commit(t);
        nest_txn_free(t);
        if (r < 0) {
                json_decref(out);
                if (!*ret_msg)
                        *ret_msg = xasprintf("chunk cache: %s", strerror(-r));
                return r;
        }
        *ret_files = out;
        return 0;
}

int node_nest_push(node_t *n, const char *base, const char *vm, int64_t version, const json_t *files,
                   nest_transfer_stats_t *ret_stats, char **ret_msg) {
        size_t count = json_object_size(files), k = 0;
        nest_file_ref_t *refs = xcalloc(count ? count : 1, sizeof *refs);
        int r = 0;
        const char *file;
        const json_t *info;
        json_object_foreach((json_t *)files, file, info) {
                nest_manifest_t *m = NULL;
                r = nest_manifest_get(n->cache, vm, version, file, &m);
                if (r < 0) {
                        *ret_msg = xasprintf("%s of %s at version %lld is not staged", file, vm, (long long)version);
                        break;
                }
                refs[k++] = (nest_file_ref_t){ vm, version, file, m };
        }
        if (r >= 0)
                r = nest_push(n->cache, base, refs, k, NODE_TRANSFER_STREAMS, NULL, NULL, ret_stats, ret_msg);
        for (size_t i = 0; i < k; i++)
                nest_manifest_free((nest_manifest_t *)refs[i].manifest);
        free(refs);
        return r;
}

int node_nest_restage(node_t *n, const char *vm, int64_t from, int64_t to, const json_t *files, char **ret_msg) {
        nest_txn_t *t = NULL;
        int r = nest_txn_begin(n->cache, 0, &t);
        const char *file;
        const json_t *info;
        json_object_foreach((json_t *)files, file, info) {
                if (r < 0)
                        break;
                nest_manifest_t *m = NULL;
                r = nest_manifest_get(n->cache, vm, from, file, &m);
                char digest[65] = "";
                if (r >= 0)
                        nest_manifest_digest(m, digest);
                const char *want = json_string_value(json_object_get(info, "digest"));
                nest_chunk_id_t *missing = NULL;
                size_t n_missing = 0;
                if (r >= 0 && (!want || !streq(digest, want)))
                        r = -EBADMSG;
                /* pins every chunk for this session, so GC cannot take them before the put */
                if (r >= 0)
                        r = nest_manifest_missing(t, m, &missing, &n_missing, NULL);
                free(missing);
                if (r >= 0 && n_missing > 0)
                        r = -ENOENT;
                if (r >= 0)
                        r = nest_manifest_put(t, vm, to, file, m);
                nest_manifest_free(m);
        }
        if (r >= 0)
                r = nest_txn_commit(t);
        nest_txn_free(t);
        if (r < 0)
                *ret_msg = xasprintf("the cached manifests of %s at version %lld do not match", vm, (long long)from);
        return r;
}
