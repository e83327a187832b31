/* Internals shared by chunk-store.c, txn.c, manifest-store.c and gc.c (not for other modules).
 *
 * Layout of a store directory:
 *   format             "vmatrix-nest 1": refuses to open a store of another format
 *   chunks/ab/cdef...  one file per chunk, named by the hex SHA-256 (first byte = shard dir);
 *                      the 256 shard dirs are made at open, so writers never mkdir there
 *   manifests/VM/VERSION/FILE.json
 *   tmp/               every file is written here first, then renamed (or linked) into place
 *   quarantine/HEX.NS  chunk files that failed verification, kept for inspection
 *   lock               write sessions hold it LOCK_SH; GC holds it LOCK_EX while it marks
 *   gc.lock            GC holds it LOCK_EX for its whole run; sessions probe it to learn
 *                      whether a sweep is under way (then they "touch" chunks they rely on)
 *   gc.turnstile       GC holds it LOCK_EX while it waits for `lock`, so a stream of new
 *                      sessions cannot starve it; sessions pass it (LOCK_SH) before `lock`
 *   gc.stamp           GC touches it to read "now" from the filesystem's own clock
 *   segments/          a node's cache only (CACHE_FORMAT): the chunks, in segment files
 * Chunk file: 8-byte header "VXC", encoding (0 raw, 1 zstd), uncompressed length (u32 LE), then
 * the payload. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <zstd.h>

#include "nest/chunk-store.h"
#include "nest/segment.h"
#include "nest/txn.h"

#define STORE_FORMAT "vmatrix-nest 1\n"
/* A node's cache (nest_cache_open): chunks in segments/ (segment.h), chunks/ unused */
#define CACHE_FORMAT "vmatrix-nest-cache 2\n"
#define STORE_LOCK "lock"
#define STORE_GC_LOCK "gc.lock"
#define STORE_GC_TURNSTILE "gc.turnstile"
#define STORE_GC_STAMP "gc.stamp"

#define CHUNK_HEADER_SIZE 8
#define CHUNK_ENC_RAW 0
#define CHUNK_ENC_ZSTD 1
#define CHUNK_ZSTD_LEVEL 3
/* Compressed only when that saves bytes, so a chunk file is never larger than this. */
#define CHUNK_FILE_MAX (CHUNK_HEADER_SIZE + NEST_STORE_CHUNK_MAX)
/* "chunks/ab/" + 62 hex digits + NUL */
#define CHUNK_RELPATH_SIZE (7 + 3 + 62 + 1)

#define CTX_POOL 8

struct nest_store {
        char *dir;
        int dirfd;
        pthread_mutex_t pool_lock; /* guards the zstd context pools below */
        ZSTD_CCtx *cctx[CTX_POOL];
        size_t n_cctx;
        ZSTD_DCtx *dctx[CTX_POOL];
        size_t n_dctx;
        atomic_uint_fast64_t tmp_counter;
        atomic_uint_fast64_t syncs;
        atomic_uint_fast64_t quarantined;
        bool cache; /* no fsync/syncfs: see nest_store_set_cache */
        nest_seg_t *seg; /* a segment cache (nest_cache_open): chunks live there, not in chunks/ */
};

/* A chunk file name inside shard dir `shard`: 62 lowercase hex digits -> its id. */
int store_chunk_name_parse(unsigned shard, const char *name, nest_chunk_id_t *ret);
void store_chunk_relpath(const nest_chunk_id_t *id, char ret[CHUNK_RELPATH_SIZE]);
/* "chunks/ab" for shard ab. */
void store_shard_relpath(unsigned shard, char ret[16]);

/* Creates DIR/tmp/<tag>.<pid>.<n> exclusively for writing. Returns the fd and the relative path. */
int store_tmp_create(nest_store_t *s, const char *tag, int *ret_fd, char **ret_relpath);
int store_fsync(nest_store_t *s, int fd);
int store_fsync_dirat(nest_store_t *s, const char *reldir);
int store_syncfs(nest_store_t *s);

/* flock(op) on a fresh open file description of DIR/relpath (a file or directory), so that two
 * threads of one process exclude each other as two processes would. */
int store_flock(nest_store_t *s, const char *relpath, int op, int *ret_fd);
int store_shard_lock(nest_store_t *s, const nest_chunk_id_t *id, int op, int *ret_fd);

/* Writes an immutable file (a manifest) at DIR/final_rel through DIR/tmp, creating missing parent
 * directories: durable at return, or at commit in a batch session. 0 also when final_rel already
 * holds exactly these bytes; -EEXIST when it holds others (now or when the batch publishes). */
int store_txn_write_file(nest_txn_t *t, const char *final_rel, const void *data, size_t len);

/* Chunk encoding. encode: malloc'd header + payload (zstd when it saves at least 1/32). */
int store_chunk_encode(nest_store_t *s, const void *data, size_t len, void **ret_enc, size_t *ret_enc_len);
/* Decodes enc into out (out_size bytes) and checks the SHA-256 against id. -EBADMSG when enc is
 * malformed or does not hash to id; -ENOBUFS when its declared length exceeds out_size. */
int store_chunk_decode(nest_store_t *s, const nest_chunk_id_t *id, const void *enc, size_t enc_len, void *out,
                       size_t out_size, size_t *ret_len);
/* The declared uncompressed length of an encoded chunk, or -EBADMSG. */
int64_t store_chunk_declared_len(const void *enc, size_t enc_len);
