/* The content-addressed chunk store: the Nest's storage on the Oracle and every node's local
 * chunk cache. In the Nest a chunk lives in DIR/chunks/ab/cdef... named by the SHA-256 of its
 * uncompressed bytes, zstd-compressed when that helps, and is verified on every read; a chunk
 * that fails verification is moved to DIR/quarantine/ and never returned. A node's cache
 * (nest_cache_open) appends the same encoded chunks to segment files instead (segment.h): a
 * chunk that fails there is marked dead.
 *
 * Reads go through the store (nest_store_t, thread-safe). Writes go through a write session
 * (nest_txn_t): a session holds the store's lock shared, so garbage collection (gc.h) can never
 * delete a chunk that a session has written or relied on before that session's manifests are
 * in place. Rule: put a manifest in the same session that put (or found, via put or pin) its
 * chunks. Layout and locking: store-internal.h; the GC argument: gc.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nest/chunk-id.h"

/* The largest chunk the store accepts (the chunker makes at most NEST_CHUNK_MAX = 256 KiB; the
 * margin lets the chunker be retuned without a new store format). */
#define NEST_STORE_CHUNK_MAX (4u * 1024 * 1024)

typedef struct nest_store nest_store_t;

/* Opens (creating if needed) the store in dir: DIR/chunks/00..ff, tmp, quarantine, manifests,
 * lock files and a format marker. -EPROTONOSUPPORT when dir holds a store of another format.
 * The store may be shared by threads and by processes. */
int nest_store_open(const char *dir, nest_store_t **ret);
nest_store_t *nest_store_free(nest_store_t *s);
static inline void nest_store_freep(nest_store_t **s) { nest_store_free(*s); }
const char *nest_store_dir(const nest_store_t *s);

/* Marks the store as a cache of chunks kept elsewhere (a node's copy of the Nest): writes skip
 * fsync and syncfs. A crash may then lose or tear recent chunk files, which is safe only
 * because every read verifies: a torn chunk is quarantined and fetched again from the Nest.
 * Never for the Nest itself. */
void nest_store_set_cache(nest_store_t *s, bool cache);
/* Opens (creating) a node's chunk cache in dir: a cache store (as nest_store_set_cache) whose
 * chunks are appended to segment files (segment.h) instead of one file per chunk; manifests as
 * in any store. seg_max: the segment size cap (0: NEST_SEG_MAX_DEFAULT). A per-file cache found
 * in dir (the store format before segments) is imported at the first open: every chunk that
 * verifies is appended, its file removed (what fails is dropped: the Nest has it). One process
 * at a time (-EBUSY); -EPROTONOSUPPORT for a directory of another format. */
int nest_cache_open(const char *dir, uint64_t seg_max, nest_store_t **ret);
bool nest_store_is_cache(const nest_store_t *s);

/* Whether the chunk file exists (no verification). Advisory: inside a write session use
 * nest_chunk_pin, whose answer GC honours. */
bool nest_chunk_has(nest_store_t *s, const nest_chunk_id_t *id);

/* Reads, decompresses and verifies a chunk into buf (buf_size bytes). Returns 0 and its length;
 * -ENOENT absent; -EBADMSG corrupt or truncated (the file is moved to DIR/quarantine/, so a
 * later put stores a good copy again); -ENOBUFS the (valid) chunk is longer than buf_size;
 * -EIO and friends for I/O errors. Thread-safe. */
int nest_chunk_read(nest_store_t *s, const nest_chunk_id_t *id, void *buf, size_t buf_size, size_t *ret_len);
/* As nest_chunk_read, into a malloc'd buffer the caller frees. */
int nest_chunk_get(nest_store_t *s, const nest_chunk_id_t *id, void **ret_data, size_t *ret_len);
/* The chunk as stored (header + compressed bytes: what transfer sends, so it is compressed once),
 * verified before it is returned (same errors as nest_chunk_read). Malloc'd. */
int nest_chunk_get_encoded(nest_store_t *s, const nest_chunk_id_t *id, void **ret_data, size_t *ret_len);

typedef struct nest_store_stats {
        uint64_t chunks;       /* chunk files */
        uint64_t stored_bytes; /* their total size on disk (headers included) */
} nest_store_stats_t;

/* Walks DIR/chunks (O(chunks) stats: for `nest stats`, not for a hot path). */
int nest_store_stats(nest_store_t *s, nest_store_stats_t *ret);

typedef struct nest_store_counters {
        uint64_t syncs;       /* fsync + syncfs calls made by this store object */
        uint64_t quarantined; /* chunk files moved aside (in a segment cache: records marked dead) */
} nest_store_counters_t;

void nest_store_counters(nest_store_t *s, nest_store_counters_t *ret);
