/* Progress of a transfer, reported to the Oracle's heartbeat URL of an operation. */
#pragma once

#include "node/node-internal.h"

typedef struct node_progress {
        node_t *n;
        char *url;      /* the Oracle's heartbeat URL for the operation, NULL: no reports */
        int64_t last_ms;
        uint64_t base;  /* bytes of files already done */
} node_progress_t;

/* Reports for the Oracle's operation op (NULL: none); node_progress_clear frees it. */
node_progress_t node_progress_for(node_t *n, const char *op);
void node_progress_clear(node_progress_t *p);
/* A nest_progress_fn: tells the Oracle how far it is, at most every 250 ms (and at the end). */
void node_progress_report(void *userdata, uint64_t done, uint64_t total);
