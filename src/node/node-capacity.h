/* The RM's physical size as its heartbeats report it (docs/api.md, "capacity"): the machine's
 * total RAM, its online CPUs and the size of the filesystem that holds the node's data
 * directory, or less where the operator declared less (--capacity-memory, --capacity-vcpus,
 * --capacity-disk). The Oracle's marketplace refuses an offer larger than its RM by it.
 *
 * Pure measuring and arithmetic: no node state, so tests/unit/test-node-capacity.c runs it
 * on the machine it runs on. */
#pragma once

#include <stdint.h>

/* The largest figure either side takes: far above any machine (a ZiB of disk), well inside
 * int64 arithmetic; keep in sync with ORACLE_CAPACITY_MAX (oracle/oracle-proto.h). */
#define NODE_CAPACITY_MAX (INT64_C(1) << 40)

typedef struct node_capacity {
        int64_t memory_mib; /* total RAM, MiB rounded down */
        int64_t vcpus;      /* online CPUs */
        int64_t disk_gib;   /* the data directory's filesystem, GiB rounded down */
} node_capacity_t;

/* What this machine has, for a node whose data directory is dir (which must exist). 0 and
 * *ret, or -errno (the directory's filesystem cannot be asked). */
int node_capacity_measure(const char *dir, node_capacity_t *ret);
/* Only the disk: statvfs of dir, cheap enough to repeat now and then. 0 and *ret, or -errno. */
int node_capacity_disk_gib(const char *dir, int64_t *ret);
/* What the RM reports: machine, with each figure declared (> 0; 0: not declared) in its
 * place. 0 and *ret, or -ERANGE and *ret_msg (malloc'd, naming the option and what the machine
 * has) when a declared figure is above the machine's. */
int node_capacity_declare(const node_capacity_t *machine, const node_capacity_t *declared, node_capacity_t *ret,
                          char **ret_msg);
