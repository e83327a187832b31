/* Write sessions of the chunk store (chunk-store.h): what a session puts is durable and safe
 * from garbage collection once its manifests are in place (the rule in chunk-store.h). */
#pragma once

#include "nest/chunk-store.h"

typedef struct nest_txn nest_txn_t;

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
/* As nest_chunk_put_encoded, and gives the decoded content too: out (out_size bytes, at least
 * the chunk's length, else -EBADMSG) and *ret_len, so the caller uses the chunk without decoding
 * it a second time. 1 stored, 0 was present. */
int nest_chunk_put_encoded_into(nest_txn_t *t, const nest_chunk_id_t *id, const void *enc, size_t enc_len, void *out,
                                size_t out_size, size_t *ret_len);
/* Whether the chunk is present (or put earlier in this batch): 1 yes, 0 no. A "yes" is a promise:
 * GC keeps the chunk at least until this session ends. */
int nest_chunk_pin(nest_txn_t *t, const nest_chunk_id_t *id);
