/* Chunk identity: a chunk is named by the SHA-256 of its uncompressed bytes. This file owns the
 * id type, its canonical text form (64 lowercase hex digits, the only form accepted from
 * manifests and peers) and a hash set of ids, which GC (mark set), batches (pending chunks) and
 * missing-chunk listing (distinct ids) all need. No I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NEST_CHUNK_ID_SIZE 32
#define NEST_CHUNK_ID_HEX_SIZE 65 /* 64 digits and the NUL */

typedef struct nest_chunk_id {
        uint8_t bytes[NEST_CHUNK_ID_SIZE];
} nest_chunk_id_t;

/* SHA-256 of data[0..len). Cannot fail short of OOM, which aborts (see xcalloc). */
void nest_chunk_id_hash(const void *data, size_t len, nest_chunk_id_t *ret);
bool nest_chunk_id_equal(const nest_chunk_id_t *a, const nest_chunk_id_t *b);
void nest_chunk_id_to_hex(const nest_chunk_id_t *id, char ret[NEST_CHUNK_ID_HEX_SIZE]);
/* Exactly 64 lowercase hex digits -> 0; anything else (NULL, short, long, uppercase) -> -EINVAL.
 * Untrusted input is fine. */
int nest_chunk_id_from_hex(const char *hex, nest_chunk_id_t *ret);

/* A set of chunk ids (open addressing; ids are uniformly random already, so their first bytes
 * are the hash). Not thread-safe: one owner at a time. Grows as needed; OOM aborts. */
typedef struct nest_idset nest_idset_t;

nest_idset_t *nest_idset_new(void);
nest_idset_t *nest_idset_free(nest_idset_t *s);
static inline void nest_idset_freep(nest_idset_t **s) { nest_idset_free(*s); }
/* true when id was added, false when it was already in the set. */
bool nest_idset_add(nest_idset_t *s, const nest_chunk_id_t *id);
bool nest_idset_contains(const nest_idset_t *s, const nest_chunk_id_t *id);
size_t nest_idset_size(const nest_idset_t *s);
