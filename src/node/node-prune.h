/* The node's disk use, bounded (node --cache-max SIZE): what a node keeps only to be fast next
 * time is evicted, least recently used first, once it passes the cap. */
#pragma once

#include <stdint.h>

#include "node/node-internal.h"

typedef struct node_prune_stats {
        uint64_t used_before, used_after;  /* bytes of DATA/cache, memory, bases, images and staged */
        uint64_t files_removed, bytes_removed;
        uint64_t manifests_removed, chunks_removed;
} node_prune_stats_t;

/* One pass: when the node's cache use is above max_bytes, removes unused memory snapshots,
 * clone bases and images, oldest use first, until it is under 90% of it, and then, if still
 * above, the cached manifests of VMs this node does not hold and the chunks nothing refers to
 * any more. Never what a VM the node holds (running, suspended, stopped with files here) maps
 * or is backed by, and nothing while a launch is under way (-EBUSY, try later). */
int node_prune(node_t *n, uint64_t max_bytes, node_prune_stats_t *ret);
/* Bytes the caches use now (DATA/cache, memory, bases, images, staged): a walk of the trees. */
uint64_t node_prune_usage(node_t *n);
/* The pruning loop (every 30 s) when n->cache_max > 0. */
void *node_prune_thread(void *arg);
