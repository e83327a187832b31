/* Content-defined chunking (FastCDC-style gear hash with normalized chunking). Boundaries depend
 * only on the bytes near them, so an edit in one place changes the chunks around it and leaves
 * every later boundary where it was: that is what lets twenty VMs of one image share chunks.
 * The chunker streams: feed buffers of any size, get each chunk through a callback, so a 1 GiB
 * file or a pipe is chunked in O(NEST_CHUNK_MAX) memory. See chunker.c for the parameters. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keep in sync with the parameter justification at the top of chunker.c. Changing any of these
 * (or the gear table) changes every chunk id: old stores stay readable, they just stop
 * deduplicating against new imports. */
#define NEST_CHUNK_MIN (16u * 1024)
#define NEST_CHUNK_AVG (64u * 1024)
#define NEST_CHUNK_MAX (256u * 1024)
#define NEST_CHUNKER_NAME "gear-fastcdc-v1/16k/64k/256k" /* recorded in manifests */

/* Called once per chunk, in stream order. data is valid only during the call. zero: every byte
 * of the chunk is 0 (such chunks are recorded, not stored). A negative return stops the chunker
 * and is returned by the feed/finish call that made this call. */
typedef int (*nest_chunk_cb_t)(const void *data, size_t len, bool zero, void *userdata);

typedef struct nest_chunker nest_chunker_t;

nest_chunker_t *nest_chunker_new(nest_chunk_cb_t cb, void *userdata);
nest_chunker_t *nest_chunker_free(nest_chunker_t *c);
static inline void nest_chunker_freep(nest_chunker_t **c) { nest_chunker_free(*c); }

/* Appends data[0..len) to the stream and calls cb for every chunk that is now complete. Returns
 * 0 or the callback's negative value; after a failure the chunker only accepts _free (every
 * later call returns the same error). */
int nest_chunker_feed(nest_chunker_t *c, const void *data, size_t len);
/* Ends the stream: calls cb for the remaining chunks (the last may be shorter than MIN). The
 * chunker is then reset and can chunk a new stream. An empty stream makes no call. */
int nest_chunker_finish(nest_chunker_t *c);
/* Bytes fed since the stream began. */
uint64_t nest_chunker_offset(const nest_chunker_t *c);

/* The pure core: the length of the chunk that starts at data[0], given len bytes of lookahead.
 * When len < NEST_CHUNK_MAX and no boundary is found this returns len — right only when len is
 * the rest of the stream, which is why callers buffer NEST_CHUNK_MAX bytes first. */
size_t nest_chunker_cut(const uint8_t *data, size_t len);

/* true when every byte of data[0..len) is zero (true for len 0). Stops at the first non-zero
 * byte, so data chunks cost a few bytes of scanning. */
bool nest_buffer_is_zero(const void *data, size_t len);
