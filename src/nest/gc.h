/* Garbage collection of the chunk store: removes the chunks that no manifest references, safely
 * against write sessions running at the same time (the argument is at the top of gc.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "nest/chunk-store.h"
#include "nest/segment.h"

typedef struct nest_gc_options {
        /* Unreferenced chunks modified less than grace_s seconds before the GC began are kept:
         * a margin against wall-clock steps, and a chance for a failed transfer's retry to find
         * its chunks. 0 is allowed (tests). */
        int64_t grace_s;
        /* How long to wait for open write sessions to end (new ones wait meanwhile) before
         * giving up with -EBUSY. */
        int64_t lock_wait_ms;
        bool dry_run; /* count what would be removed, remove nothing */
        /* Test hook: runs after the mark, with the store lock released (sessions may begin)
         * and before the sweep. */
        void (*after_mark)(void *userdata);
        void *userdata;
} nest_gc_options_t;

#define NEST_GC_OPTIONS_DEFAULT ((nest_gc_options_t){ .grace_s = 600, .lock_wait_ms = 30000 })

typedef struct nest_gc_stats {
        uint64_t manifests;      /* live manifests read in the mark */
        uint64_t chunks_live;    /* distinct chunks they reference */
        uint64_t chunks_kept;    /* unreferenced but recent (grace, or relied on by a session) */
        uint64_t chunks_removed; /* (or that would be, with dry_run) */
        uint64_t bytes_removed;
        uint64_t tmp_removed;    /* files a crashed writer left in DIR/tmp */
        int64_t mark_ms;         /* how long sessions were held off */
        int64_t sweep_ms;
} nest_gc_stats_t;

/* Runs one GC (opts NULL: NEST_GC_OPTIONS_DEFAULT). -EBUSY: another GC is running, or sessions
 * did not end within lock_wait_ms. -EBADMSG: a manifest could not be read, so its chunks are
 * unknown and nothing was removed. -ESTALE: the wall clock stepped back during the sweep, which
 * stopped (what it had removed was garbage). May block for the mark; does not block readers. */
int nest_gc(nest_store_t *s, const nest_gc_options_t *opts, nest_gc_stats_t *ret_stats);

/* Eviction in a segment cache (nest_cache_open): with the store lock held exclusively (no write
 * session is open, new ones wait), reads every manifest and drops least recently used segments
 * until the segments hold at most target bytes, copying forward first every chunk a manifest
 * names: a kept manifest's chunks stay present. -EINVAL for a store without segments; -EBUSY
 * when sessions did not end within lock_wait_ms; -EBADMSG when a manifest cannot be read
 * (nothing is removed). nest_gc on a segment cache is this with target 0. */
int nest_cache_evict(nest_store_t *s, uint64_t target, int64_t lock_wait_ms, nest_seg_evict_stats_t *ret_stats);
