/* Pre-staging a VM's snapshot on this RM ahead of its activation (node-prestage.c). */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "node/node-internal.h"

typedef struct node_prestage {
        node_cmd_t cmd;          /* the run command it prepares (mode restore, the VM's own bundle) */
        uint64_t memory_bytes, disk_bytes, state_bytes;
        uint64_t max_bps;        /* fetch rate bound, 0: unbounded */
} node_prestage_t;

/* The body of POST /v1/vms/NAME/prestage: a run body of mode restore ({version, mode, config,
 * image, bundle}) and max_bps. Every field bounded; -EINVAL with a message otherwise. The body
 * must outlive ret. */
int node_prestage_parse(const json_t *body, const char *name, const char *oracle, node_prestage_t *ret,
                        char **ret_msg);
/* Stages what p names that is not here yet. -ENOSPC (507) when it does not fit under the cache
 * cap even after pruning what no held VM needs. Answer {present, memory_ms, disk_ms, state_ms,
 * bytes_transferred, chunks_transferred}. */
int node_prestage(node_t *n, const char *name, const node_prestage_t *p, json_t **ret, char **ret_msg);
