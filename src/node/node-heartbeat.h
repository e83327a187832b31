/* The heartbeat to the Oracle: every second, or at once after node_heartbeat_wake. */
#pragma once

#include "node/node-internal.h"

/* Threads that ask VMs for their stats at once in one heartbeat. */
#define NODE_HEARTBEAT_WORKERS 8

void *node_heartbeat_thread(void *arg);
void node_heartbeat_wake(node_t *n);
/* The heartbeat's "vms": every VM but new and deleted ones, busy ones by name only. Their
 * stats are asked concurrently, and only during the first part of a budget of about 450 ms;
 * a VM not asked in time shows the stats it gave last. */
json_t *node_heartbeat_vms(node_t *n);
