/* The content-addressed chunk store: the Nest's storage on the Oracle and every node's local
 * chunk cache. A chunk lives in DIR/chunks/ab/cdef... named by the SHA-256 of its uncompressed
 * bytes, zstd-compressed when that helps, and is verified on every read; a chunk that fails
 * verification is moved to DIR/quarantine/ and never returned.
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
typedef struct nest_txn nest_txn_t;

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
        uint64_t quarantined; /* chunk files moved aside */
} nest_store_counters_t;

void nest_store_counters(nest_store_t *s, nest_store_counters_t *ret);

/* Write sessions. */
enum {
        /* Defer durability to nest_txn_commit: chunks and files are written to DIR/tmp and made
         * visible at commit with a handful of syncfs calls instead of two fsyncs per chunk. They
         * are invisible to other readers until then (a crash leaves only tmp files, which GC
         * removes). Large batches flush themselves every NEST_TXN_BATCH_MAX chunks. */
        NEST_TXN_BATCH = 1 << 0,
};
#define NEST_TXN_BATCH_MAX 4096

/* Begins a write session: takes the store lock shared (waits while a GC marks; a GC's sweep
 * does not block). A thread must not begin a second session while it holds one: a GC waiting
 * between the two would deadlock them. */
int nest_txn_begin(nest_store_t *s, unsigned flags, nest_txn_t **ret);
/* Makes everything put in the session durable and visible (batch mode), then ends the session.
 * After a failure, nothing is promised about what became visible; _free cleans up the rest.
 * Either way, only _free may follow. */
int nest_txn_commit(nest_txn_t *t);
/* Ends the session; a batch not committed is discarded (its tmp files removed). */
nest_txn_t *nest_txn_free(nest_txn_t *t);
static inline void nest_txn_freep(nest_txn_t **t) { nest_txn_free(*t); }
nest_store_t *nest_txn_store(nest_txn_t *t);

/* Stores data[0..len) (1 <= len <= NEST_STORE_CHUNK_MAX, else -EINVAL) unless present.
 * Idempotent: returns 1 when it wrote the chunk, 0 when it was present (no write). ret_id
 * (optional) gets the id, ret_stored (optional) the bytes written to disk (0 when present).
 * Atomic: the final name only ever holds a complete, durable chunk. */
int nest_chunk_put(nest_txn_t *t, const void *data, size_t len, nest_chunk_id_t *ret_id, size_t *ret_stored);
/* As nest_chunk_put for data that a peer said has id: -EBADMSG (nothing stored) when it has not. */
int nest_chunk_put_expect(nest_txn_t *t, const nest_chunk_id_t *id, const void *data, size_t len,
                          size_t *ret_stored);
/* Stores a chunk in the form nest_chunk_get_encoded returns, after decoding and verifying it
 * against id (-EBADMSG when it does not decode to content with that hash). */
int nest_chunk_put_encoded(nest_txn_t *t, const nest_chunk_id_t *id, const void *enc, size_t enc_len,
                           size_t *ret_stored);
/* Whether the chunk is present (or put earlier in this batch): 1 yes, 0 no. A "yes" is a promise:
 * GC keeps the chunk at least until this session ends. */
int nest_chunk_pin(nest_txn_t *t, const nest_chunk_id_t *id);
