/* The chunk-transfer protocol, client side: move the chunks of some manifests between a local
 * chunk store and a peer (the Nest on the Oracle, or another node's cache) over HTTP, moving
 * only what the destination lacks, in parallel streams, verifying every chunk on arrival.
 * The server side is nest-http.h. */
#pragma once

#include "nest/chunk-store.h"
#include "nest/manifest.h"

typedef struct nest_transfer_stats {
        uint64_t bytes_total;        /* logical bytes of the files moved */
        uint64_t bytes_transferred;  /* bytes that crossed the network (encoded chunks) */
        uint64_t chunks_total;       /* data chunks the files name */
        uint64_t chunks_transferred;
} nest_transfer_stats_t;

/* done and total are bytes of chunks fetched or sent, as they go. May be called from any of the
 * transfer's threads, one at a time. */
typedef void (*nest_progress_fn)(void *userdata, uint64_t done, uint64_t total);

/* One file of a bundle: where its manifest is kept, and the manifest. */
typedef struct nest_file_ref {
        const char *vm;
        int64_t version;
        const char *file;
        const nest_manifest_t *manifest;
} nest_file_ref_t;

/* SHA-256 of the manifest's canonical text: how a manifest is named by those who trust it. */
void nest_manifest_digest(const nest_manifest_t *m, char ret_hex[65]);

/* GETs a manifest from a peer; when digest is given, refuses (-EBADMSG) one that differs. */
int nest_remote_manifest_get(const char *base_url, const char *vm, int64_t version, const char *file,
                             const char *digest, nest_manifest_t **ret, char **ret_msg);

/* Fetches from base_url every chunk of files[] that local lacks, then records the manifests in
 * local (so the chunks are kept). -EBADMSG when a peer sent a chunk that does not match its id
 * (nothing of it is stored), -ENOENT when the peer lacks a chunk, -EHOSTUNREACH when it is gone. */
int nest_pull(nest_store_t *local, const char *base_url, const nest_file_ref_t *files, size_t n, unsigned streams,
              nest_progress_fn progress, void *userdata, nest_transfer_stats_t *ret_stats, char **ret_msg);

/* As nest_pull, fetching at most max_bps bytes per second over all streams (0: unbounded). */
int nest_pull_paced(nest_store_t *local, const char *base_url, const nest_file_ref_t *files, size_t n,
                    unsigned streams, uint64_t max_bps, nest_progress_fn progress, void *userdata,
                    nest_transfer_stats_t *ret_stats, char **ret_msg);

/* Builds file's content in fd (a regular file, cut to the file's size; zero chunks stay holes) in
 * one pass: every chunk the cache lacks is fetched from base_url, verified, appended to the cache
 * and written at each offset where the file has it; every chunk the cache has is read (verified)
 * and written the same way. A cached chunk that fails verification is fetched again. No chunk
 * is decoded or hashed twice, no file is made per chunk. Then records the manifest in local.
 * max_bps (0: unbounded) bounds the rate of what is fetched, over all streams together.
 * Errors as nest_pull; on error fd holds a partial file. */
int nest_pull_into(nest_store_t *local, const char *base_url, const nest_file_ref_t *file, int fd, unsigned streams,
                   uint64_t max_bps, nest_progress_fn progress, void *userdata, nest_transfer_stats_t *ret_stats,
                   char **ret_msg);

/* Sends to base_url every chunk of files[] the peer lacks, then the manifests. */
int nest_push(nest_store_t *local, const char *base_url, const nest_file_ref_t *files, size_t n, unsigned streams,
              nest_progress_fn progress, void *userdata, nest_transfer_stats_t *ret_stats, char **ret_msg);
