/* Supervision of the node's VMs: their QEMU processes re-attached at start, checked while they
 * run, fenced when the Oracle no longer places them here, and described for the Oracle. */
#pragma once

#include "node/node-internal.h"

/* Loads the persisted entries and re-attaches the VMs a previous run of the agent left. */
void node_supervise_adopt(node_t *n);
/* Checks every running VM's process; marks crashed ones. Returns true if any changed. */
bool node_supervise_check(node_t *n);
/* Kills and forgets vm, which holds no lease in an answer the Oracle gave to a heartbeat sent at
 * since_ms, unless a command has taken it since or holds it now. True if it was fenced. */
bool node_supervise_fence(node_t *n, node_vm_t *vm, int64_t since_ms, const char *why);
/* {name, version, state, pid, address, stats?} of vm: its VMM's stats asked now (query, and
 * kept), or those it gave last. vm->lock held. */
json_t *node_supervise_describe(node_t *n, node_vm_t *vm, bool query);
