/* Files in and out of the chunk store: import chunks a file, a pipe or a stream of buffers into
 * a store and returns its manifest; export writes a manifest's file back, verifying every chunk
 * and leaving holes for zero extents. Both stream: memory stays O(NEST_CHUNK_MAX) whatever the
 * file size. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "nest/chunk-store.h"
#include "nest/txn.h"
#include "nest/manifest.h"

typedef struct nest_import_stats {
        uint64_t bytes_total;      /* bytes imported (the file's size) */
        uint64_t bytes_new;        /* in chunks the store did not have */
        uint64_t bytes_new_stored; /* written to disk for those (compressed, with headers) */
        uint64_t chunks_total;     /* chunks cut, zero chunks included */
        uint64_t chunks_new;       /* chunks written */
        uint64_t zero_chunks;      /* all-zero chunks (recorded, not stored) */
        uint64_t zero_bytes;
} nest_import_stats_t;

typedef struct nest_import nest_import_t;

/* An import into session t (which must outlive it). Feed the file's bytes in order, then finish. */
nest_import_t *nest_import_new(nest_txn_t *t);
nest_import_t *nest_import_free(nest_import_t *imp);
static inline void nest_import_freep(nest_import_t **imp) { nest_import_free(*imp); }
/* Chunks and stores what is complete. After an error every later call returns it. */
int nest_import_feed(nest_import_t *imp, const void *data, size_t len);
/* Ends the stream and hands over the manifest (owned by the caller) and, optionally, stats.
 * Chunks are durable only when the session commits (batch) — put the manifest in it too. */
int nest_import_finish(nest_import_t *imp, nest_manifest_t **ret_manifest, nest_import_stats_t *ret_stats);

/* Imports everything readable from fd (a file from its current offset, or a pipe). */
int nest_file_import_fd(nest_txn_t *t, int fd, nest_manifest_t **ret_manifest, nest_import_stats_t *ret_stats);
int nest_file_import(nest_txn_t *t, const char *path, nest_manifest_t **ret_manifest, nest_import_stats_t *ret_stats);

/* Writes m's file to fd with sequential writes, reading and verifying every chunk. For a regular
 * file, the file is first cut at its current offset, zero extents become holes (lseek) and the
 * size is set at the end; for a pipe or socket zeros are written. -EBADMSG when a chunk is corrupt
 * (it is quarantined) or not the length the manifest says; -ENOENT when one is missing. On error
 * fd holds a partial file: the caller discards it (nest_file_export_path does). */
int nest_file_export(nest_store_t *s, const nest_manifest_t *m, int fd);
/* Exports to path atomically (tmp file, fsync, rename): path holds the whole file or is unchanged. */
int nest_file_export_path(nest_store_t *s, const nest_manifest_t *m, const char *path);
