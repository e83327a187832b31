/* The local-cluster launcher behind `vmatrix cluster up|down|restart` (DESIGN.md §4): one
 * Oracle and N+M RMs on this machine, each RM a separate "host" — as root its own network
 * namespace with its own address on a private bridge, otherwise a loopback port.
 *
 * Layout of a cluster directory DIR (the files marked * are a contract):
 *   DIR/oracle.url *        URL of the Oracle, e.g. http://10.23.5.1:7000 (no trailing newline)
 *   DIR/pids/NAME.pid *     pid of "oracle" and of each RM's node ("PID\n", written atomically)
 *   DIR/cluster.json        everything down/restart need (names, addresses, namespaces, exe, ...)
 *   DIR/logs/NAME.log       stdout+stderr of each process (appended across restarts)
 *   DIR/oracle/             the Oracle's --data
 *   DIR/nodes/NAME/         each node's --data (QEMU run directories live below it)
 *
 * The entry points log one clear error line (naming the cluster, the RM, the log file) and
 * return -errno, so the CLI only has to turn a negative return into a non-zero exit status. */
#pragma once

#include <stdbool.h>

typedef struct cluster_options {
        const char *dir;         /* cluster directory, created if missing */
        unsigned production;     /* production RMs prod1..prodN (taken literally: 0 means none) */
        unsigned chambers;       /* chamber RMs chamber1..chamberM */
        const char *vmatrix_exe; /* path of the vmatrix binary to run; NULL: the running binary */
        const char *accel;       /* passed to nodes as --accel, may be NULL */
        bool plain;              /* the launcher's own tests with stub daemons only: no TLS, no enrolment */
        bool open_signup;        /* the Oracle runs with --open-signup (POST /v1/signup, DESIGN.md §10) */
} cluster_options_t;

#define CLUSTER_DEFAULT_PRODUCTION 2
#define CLUSTER_DEFAULT_CHAMBERS 1
/* Start from this so unset options get the defaults of DESIGN.md §4. */
#define CLUSTER_OPTIONS_INIT \
        { .production = CLUSTER_DEFAULT_PRODUCTION, .chambers = CLUSTER_DEFAULT_CHAMBERS }

/* Starts the Oracle and every RM's node and returns once the Oracle answers /v1/health and
 * lists every RM with state "up". A DIR whose cluster still runs is refused (-EBUSY); leftovers
 * of a crashed run in DIR are cleaned up first. On any failure everything started so far is
 * stopped and removed again (logs stay). The readiness timeout is 60 s, or
 * VMATRIX_CLUSTER_TIMEOUT seconds. VMATRIX_CLUSTER_NETNS=0 forces loopback mode as root. */
int cluster_up(const cluster_options_t *o);

/* Stops every process the cluster in dir started (TERM, after 10 s KILL), every QEMU left below
 * dir, and removes its namespaces, veths and bridge. Idempotent: a missing or damaged
 * cluster.json, dead processes or an absent dir are fine. */
int cluster_down(const char *dir);

/* Stops "oracle" or the node of RM name (TERM, after 10 s KILL) and starts it again with the
 * same arguments, data, address and namespace; returns once it is ready again (Oracle: health
 * answers; node: it listens and the Oracle shows it "up"). -ENOENT for an unknown name. */
int cluster_restart(const char *dir, const char *name);

/* The Oracle URL of the cluster in dir (from DIR/oracle.url, whitespace stripped), malloc'd.
 * Does not log: -ENOENT simply means no cluster is up in dir. */
int cluster_oracle_url(const char *dir, char **ret);
/* The admin token of the cluster in dir (DIR/admin.token, its first line; malloc'd), or NULL. */
char *cluster_admin_token(const char *dir);
