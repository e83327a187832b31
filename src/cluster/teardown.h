/* Stopping what a local cluster started: `cluster down`, the cleanup of a crashed or failed
 * `cluster up`, and the stop half of `cluster restart`. Private to src/cluster. */
#pragma once

#include <sys/types.h>

#include "cluster/spec.h"

#define TEARDOWN_STOP_TIMEOUT_MS 10000 /* TERM -> KILL for the Oracle and nodes */
#define TEARDOWN_QEMU_TIMEOUT_MS 5000  /* TERM -> KILL for QEMU and other strays */
#define TEARDOWN_CLAIMS_WAIT_MS 3000   /* for killed QEMUs to let go of their uids */

/* Logs "stopped NAME (pid N)" and friends at info level instead of debug. */
#define TEARDOWN_VERBOSE (1u << 0)

/* Stops and removes everything the cluster in dir (canonical, absolute; need not exist)
 * started, in this order: the Oracle and nodes from DIR/pids, any other process running
 * `EXE oracle|node --data DIR/...` and the members of their sessions (TERM, then KILL after
 * 10 s); every QEMU named by a qemu.pid below dir or whose command line or working directory is
 * in dir; every process left in the cluster's namespaces; then the namespaces, veths and
 * bridge; then the uids and cgroups of the nodes' confined QEMUs; then the pid files and
 * oracle.url (logs, data and cluster.json stay). Names come from
 * cluster.json, or are derived from dir when it is missing or damaged.
 * Logs what it cannot do. Returns how many processes and network objects it found, or -errno
 * (-EBUSY: a process survived SIGKILL; -EPERM: namespaces left but not root). */
int teardown_run(const char *dir, unsigned flags);

/* A live process in dir per its pid file (name "oracle" or an RM): 1 and its name (malloc'd)
 * and pid, or 0 if none lives. */
int teardown_find_running(const char *dir, char **ret_name, pid_t *ret_pid);

/* Stops the process of member m of s (the one in its pid file and any other with its --data),
 * TERM then KILL; its session and its QEMUs are left alone. Returns how many it stopped. */
int teardown_member(const spec_t *s, const spec_member_t *m);
