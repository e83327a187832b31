/* Segment files: how a node's chunk cache (nest_cache_open) keeps its chunks, instead of one
 * file per chunk. Chunks are appended, as records, to DIR/segments/NNNNNNNN.seg; an index in
 * memory maps a chunk id to its record. A segment is sealed when it passes its size cap, and its
 * index is then written beside it (NNNNNNNN.idx) so the next open need not read it; the newest
 * segment is the active one, the only one appended to.
 *
 *   record = "VXR1" | id[32] | enc_len u32 LE | crc32c(id | enc_len | enc) u32 LE | enc
 *   enc    = the chunk as the store encodes it (store-internal.h: "VXC" header + payload)
 *   .idx   = "VXI1" | count u32 | count x (id[32], off u64, len u32) | SHA-256 of what precedes
 *
 * Acknowledged = indexed: an append returns once the record is written (to the page cache: a
 * cache never syncs) and in the index, so a process killed at any point keeps every chunk whose
 * append returned. At open, a segment without a valid .idx is scanned and cut (ftruncate) at its
 * first invalid record, which no append ever acknowledged. Power loss may lose more or tear
 * sealed data: every read verifies the chunk's SHA-256 (chunk-store.c), a chunk that fails is
 * marked dead (absent from then on) and the next pull appends a good copy.
 *
 * Eviction is by segment: the least recently used segments go whole, after the records that a
 * kept manifest needs were copied forward into the active segment.
 * Thread-safe (one lock); one process at a time (DIR/segments/lock, LOCK_EX). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nest/chunk-id.h"

typedef struct nest_seg nest_seg_t;

/* A segment is sealed once it holds at least this many bytes (a test may set less). */
#define NEST_SEG_MAX_DEFAULT (256ull << 20)

/* Opens (creating) the segments under dirfd's "segments" directory, loading the sealed indexes
 * and scanning the rest. -EBUSY when another process has them open. */
int nest_seg_open(int dirfd, uint64_t seg_max, nest_seg_t **ret);
nest_seg_t *nest_seg_free(nest_seg_t *g);

/* Whether a live (not dead) record of id is indexed. */
bool nest_seg_has(nest_seg_t *g, const nest_chunk_id_t *id);
/* The record's encoded chunk (malloc'd), not yet verified (the caller decodes and hashes it).
 * -ENOENT absent or dead. */
int nest_seg_read(nest_seg_t *g, const nest_chunk_id_t *id, void **ret_enc, size_t *ret_len);
/* Appends a record of enc (verified by the caller to be id) unless a live one is indexed:
 * 1 appended, 0 present. */
int nest_seg_append(nest_seg_t *g, const nest_chunk_id_t *id, const void *enc, size_t len);
/* Marks id's record dead (it failed verification): absent from now on, until appended again. */
void nest_seg_kill(nest_seg_t *g, const nest_chunk_id_t *id);

/* Whether keep(userdata, id) wants a chunk kept. */
typedef bool (*nest_seg_keep_fn)(void *userdata, const nest_chunk_id_t *id);

typedef struct nest_seg_evict_stats {
        uint64_t segments_removed;
        uint64_t chunks_removed;  /* records dropped (dead or not kept) */
        uint64_t chunks_copied;   /* kept records copied forward */
        uint64_t bytes_removed;   /* segment bytes given back (net of the copies) */
} nest_seg_evict_stats_t;

/* Drops least recently used segments until the segments hold at most target bytes or none is
 * left to drop, copying forward first the live records keep wants. The active segment is
 * sealed first when it is the only candidate left. The caller holds off writers that rely on
 * chunks keep does not know about (gc.c: the store lock, exclusively). */
int nest_seg_evict(nest_seg_t *g, uint64_t target, nest_seg_keep_fn keep, void *userdata,
                   nest_seg_evict_stats_t *ret_stats);

typedef struct nest_seg_stats {
        uint64_t chunks;     /* live records */
        uint64_t bytes;      /* bytes of every segment file */
        uint64_t segments;
        uint64_t dead;       /* records marked dead since open */
        uint64_t truncated;  /* bytes cut from torn tails at open */
} nest_seg_stats_t;

void nest_seg_stats(nest_seg_t *g, nest_seg_stats_t *ret);
