/* Control groups for the VMM processes of a node: where the memory, cpu and pids controllers
 * are on this host, one group per process below DIR/vmatrix/NODE/NAME in every hierarchy that
 * carries one of them, and the limit files written there. Knows nothing of VMs.
 *
 * Hosts differ: a pure cgroup v2 host has every controller in /sys/fs/cgroup; a hybrid host
 * (systemd's "hybrid" mode, or this project's test machines) has cgroup v1 hierarchies for
 * memory, cpu and pids and a cgroup v2 tree (/sys/fs/cgroup/unified) without them. Each
 * controller is taken from v2 when v2 has it and from its v1 hierarchy otherwise; the v2 tree
 * is used even without controllers, for the process's CPU time (cpu.stat usage_usec).
 *
 * Where the groups go: in a v2 tree at its root (DIR/vmatrix), because v2 lets a group with
 * processes (the node's own) have no controller-enabled children; in a v1 hierarchy below the
 * group the node itself runs in (v1 has no such rule), so that whatever accounts for the node's
 * own group (a supervisor, a session manager) still accounts for its VMs.
 *
 * Everything here that touches files returns -errno; the computation of limits and of the file
 * contents is pure, for unit tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum cgroup_controller {
        CGROUP_MEMORY,
        CGROUP_CPU,
        CGROUP_PIDS,
        _CGROUP_CONTROLLER_MAX,
} cgroup_controller_t;

#define CGROUP_HIERARCHY_MAX 4 /* one v2 tree and one v1 hierarchy per controller */
#define CGROUP_CPU_PERIOD_US 100000

/* The limits of one group. 0 means no limit of that kind. */
typedef struct cgroup_limits {
        uint64_t memory_bytes;
        uint64_t cpu_quota_us;  /* per CGROUP_CPU_PERIOD_US */
        uint64_t pids;
} cgroup_limits_t;

typedef struct cgroup_hierarchy {
        char *base;           /* absolute directory holding vmatrix's groups: .../vmatrix */
        bool v2;
        unsigned controllers; /* (1u << cgroup_controller_t) this hierarchy limits for us */
} cgroup_hierarchy_t;

typedef struct cgroup_layout {
        cgroup_hierarchy_t h[CGROUP_HIERARCHY_MAX];
        size_t n;
        unsigned missing; /* controllers found nowhere: no limit of that kind */
} cgroup_layout_t;

const char *cgroup_controller_name(cgroup_controller_t c);

/* The layout from the text of /proc/self/mountinfo and /proc/self/cgroup, and the contents of
 * cgroup.controllers at the root of the v2 tree (NULL when there is none or it cannot be read).
 * -ENOENT when there is no cgroup mount at all. Pure. */
int cgroup_layout_parse(const char *mountinfo, const char *self_cgroup, const char *v2_controllers,
                        cgroup_layout_t *ret);
/* The same from this process's files. */
int cgroup_layout_detect(cgroup_layout_t *ret);
void cgroup_layout_clear(cgroup_layout_t *l);
/* "memory,pids" for a mask of controllers, into buf (returned). */
char *cgroup_controllers_format(unsigned mask, char *buf, size_t size);

/* The limits of a VMM process: memory_mib of guest RAM plus overhead_mib for the VMM itself,
 * cpu_percent of one CPU (100 per vCPU when 0), and pids tasks. Pure. */
cgroup_limits_t cgroup_limits_for(uint64_t memory_mib, uint64_t overhead_mib, unsigned vcpus, unsigned cpu_percent,
                                  uint64_t pids);

/* The files that hold lim for controller c in a v1 or v2 hierarchy, and their contents, in the
 * order to write them: up to 2 pairs into files[] and values[] (values are written into
 * caller's 32-byte buffers). Returns the number of pairs. Pure. */
size_t cgroup_limit_files(bool v2, cgroup_controller_t c, const cgroup_limits_t *lim, const char *files[2],
                          char values[2][32]);

/* The directories of group NODE/NAME, one per hierarchy of l (in its order), malloc'd,
 * NULL-terminated. node and name must be single path components. */
char **cgroup_group_dirs(const cgroup_layout_t *l, const char *node, const char *name);

/* Creates group NODE/NAME in every hierarchy (parents as needed, controllers enabled in the
 * parents' cgroup.subtree_control in v2) and writes lim. An existing group is reused: its limits
 * are rewritten. On failure whatever it created is removed again. */
int cgroup_group_create(const cgroup_layout_t *l, const char *node, const char *name, const cgroup_limits_t *lim);
/* Rewrites the limits of an existing group. */
int cgroup_group_limits_set(const cgroup_layout_t *l, const char *node, const char *name, const cgroup_limits_t *lim);
/* Moves process pid (all its threads) from group NODE/FROM into NODE/TO, created with lim,
 * and removes FROM (cgroup v2 cannot rename a group). Memory the process was charged for stays
 * charged where it was until it is freed. */
int cgroup_group_move(const cgroup_layout_t *l, const char *node, const char *from, const char *to, pid_t pid,
                      const cgroup_limits_t *lim);

/* Removes the group directories dirs (NULL-terminated), then their parent (the node's
 * directory) when it is empty. Missing ones are fine; -EBUSY when a group still has processes
 * (it is then left in place). */
int cgroup_dirs_remove(char *const *dirs);
