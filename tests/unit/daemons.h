/* Helpers for the daemon tests (test-oracle.c, test-node.c): a real Oracle and real nodes of
 * vmatrix-test (fake VMM driver) as processes on loopback, in a fresh temporary directory,
 * driven over HTTP. Every process started is killed at exit, also when the test fails or is
 * interrupted (atexit and a signal handler that only calls kill()). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct daemon {
        pid_t pid;          /* 0 when not running */
        char name[32];      /* "oracle" or the RM's name */
        char data[512];     /* its data directory */
        char log[512];      /* its stdout and stderr */
        char url[96];       /* the Oracle's user API: http://127.0.0.1:PORT; a node's:
                               https://NAME@127.0.0.1:PORT (its certificate must name it) */
        char node_url[96];  /* the Oracle's node channel: https://oracle@127.0.0.1:PORT */
        char oracle[96];    /* a node's Oracle (its node channel) */
        char role[16];      /* a node's role */
        int port;
        int node_port;      /* the Oracle's node channel */
        const char *const *args; /* a node's further options, NULL-terminated (NULL: none); set
                                    before its start, kept for its restarts; not copied */
} daemon_t;

#define DAEMONS_NODES_MAX 3

/* The test's context: its directory and the daemons in it. */
typedef struct daemons {
        char dir[256];
        char exe[512];      /* vmatrix-test */
        daemon_t oracle;
        daemon_t nodes[DAEMONS_NODES_MAX]; /* those started have a name */
} daemons_t;

/* A check that fails because of a known bug, reported and not fixed here: it prints
 * "KNOWN BUG: what" and counts as a failure only with VMATRIX_TEST_STRICT=1, so the suite stays
 * green until the bug is fixed and the check then simply passes. */
#define CHECK_KNOWN_BUG(cond, what)                                                               \
        do {                                                                                      \
                if (cond) {                                                                       \
                        tap_passed++;                                                             \
                } else if (daemons_strict()) {                                                    \
                        tap_failed++;                                                             \
                        fprintf(stderr, "FAIL %s:%d: %s (KNOWN BUG: %s)\n", __FILE__, __LINE__, #cond, \
                                what);                                                            \
                } else {                                                                          \
                        fprintf(stderr, "KNOWN BUG: %s (%s:%d: %s)\n", what, __FILE__, __LINE__, #cond); \
                }                                                                                 \
        } while (0)
bool daemons_strict(void);

/* Makes a fresh temporary directory, the fake guest image files and the cleanup hooks.
 * exe is vmatrix-test's path ($VMATRIX_TEST_EXE when NULL). Exits the test when it cannot. */
void daemons_init(daemons_t *d, const char *exe);
/* Kills every daemon and removes the directory (kept when keep, for a failed run's logs). */
void daemons_done(daemons_t *d, bool keep);

/* Starts the Oracle on data (its default in d->dir when NULL) and waits until it answers.
 * env: NULL-terminated "NAME=VALUE" set in the daemon only (may be NULL). Returns 0 or -1. */
int daemons_oracle_start(daemons_t *d, const char *const *env);
/* Starts node i (0 .. DAEMONS_NODES_MAX-1) named name with role and waits until the Oracle lists
 * it up. The node runs on the fake driver with its default warm slots, and d->nodes[i].args. */
int daemons_node_start(daemons_t *d, int i, const char *name, const char *role, const char *const *env);
/* Starts a daemon again on its data and port after a stop (restart); a restarted Oracle is
 * ready once the running nodes are up at it again. */
int daemons_restart(daemons_t *d, daemon_t *dm, const char *const *env);
/* Sends sig and reaps the process (waits at most 10 s; then SIGKILL). */
void daemons_stop(daemon_t *dm, int sig);
/* Whether dm exited by itself (a crash point); reaps it. */
bool daemons_exited(daemon_t *dm, int timeout_ms);
/* Prints the tail of every daemon's log (for a failed check). */
void daemons_dump_logs(const daemons_t *d);

/* One HTTP call with a JSON body (may be NULL); *ret_json (may be NULL) gets the answer's JSON.
 * Returns the HTTP status, 0 when no answer came. https:// calls present the Oracle's
 * certificate (the test speaks to nodes as the Oracle does), once the Oracle has started. */
long daemons_call(const char *method, const char *url, json_t *body, json_t **ret_json);
/* daemons_call with token (NULL: none) instead of the Oracle's admin token. */
long daemons_call_token(const char *token, const char *method, const char *url, json_t *body, json_t **ret_json);
/* The admin token of the Oracle last started ("" before one). */
const char *daemons_admin_token(void);
/* The same, presenting node dm's certificate instead (a node's calls to the Oracle's node
 * channel, or to another node). */
long daemons_call_as(const daemon_t *dm, const char *method, const char *url, json_t *body, json_t **ret_json);
/* POST ORACLE/v1/vms/NAME/ACTION with body (stolen; NULL: {}); the op's id into ret_op (64
 * bytes). Returns the status. */
long daemons_vm_action(daemons_t *d, const char *vm, const char *action, json_t *body, char *ret_op);
/* Waits for op to end (deadline_ms); its final state ("done", "failed", or "running" at the
 * deadline, "" when unknown) into ret_state (16 bytes). */
void daemons_op_wait(daemons_t *d, const char *op, int64_t deadline_ms, char *ret_state);
/* The VM's state at the Oracle into ret_state (32 bytes), "" when unknown; its RM into
 * ret_rm (32 bytes, may be NULL). */
void daemons_vm_state(daemons_t *d, const char *vm, char *ret_state, char *ret_rm);
/* Polls until the VM's state is want or deadline_ms passes; true when it is. */
bool daemons_vm_wait_state(daemons_t *d, const char *vm, const char *want, int64_t deadline_ms);
/* Runs action and waits for its op; true when it is done and the VM is then in want. */
bool daemons_vm_do(daemons_t *d, const char *vm, const char *action, const char *want);
/* The same, asking for rm (boot, activate, migrate). */
bool daemons_vm_do_on(daemons_t *d, const char *vm, const char *action, const char *rm, const char *want);
/* Polls until the VM rests in a stable state (not an operation's transit state) or deadline_ms
 * passes; its last state into ret_state (32 bytes). True when it is stable. */
bool daemons_vm_wait_stable(daemons_t *d, const char *vm, int64_t deadline_ms, char *ret_state);
/* Starts the Oracle, production RM rm1 (nodes[0]) and chamber RM ch1 (nodes[1]). 0 or -1. */
int daemons_start_cluster(daemons_t *d);
/* Registers the tiny-http image (once) and creates vm (32 MiB). Returns 0 or -1. */
int daemons_vm_create(daemons_t *d, const char *vm);
/* The RM's state at the Oracle ("up", "down", "" unknown) into ret (16 bytes). */
void daemons_rm_state(daemons_t *d, const char *rm, char *ret);
/* The fake guest's boot id of vm on node dm ("" when none): it survives a save and restore. */
void daemons_boot_id(const daemon_t *dm, const char *vm, char *ret /* 32 bytes */);
/* The running fake guest of vm on dm writes a mark into its RAM (0, or -errno of the hook), and
 * the mark it holds ("" when none; 32 bytes). RAM survives suspend, hibernate, activate and
 * migration, not a cold boot. */
int daemons_ram_mark_set(const daemon_t *dm, const char *vm, const char *mark);
void daemons_ram_mark(const daemon_t *dm, const char *vm, char *ret);
/* A mark in vm's disk on dm (its first bytes, written and read with qemu-io as the guest would):
 * it survives everything but a delete. mark is at most 31 of [a-z0-9-]. 0 or -1; "" when none. */
int daemons_disk_mark_set(const daemon_t *dm, const char *vm, const char *mark);
void daemons_disk_mark(const daemon_t *dm, const char *vm, char *ret /* 32 bytes */);
/* The VM's fake VMM crashes on dm (as a killed QEMU would), or its guest powers itself off.
 * 0 or -errno. */
int daemons_vm_crash(const daemon_t *dm, const char *vm);
int daemons_vm_poweroff(const daemon_t *dm, const char *vm);

/* The node called name, NULL if none was started. */
daemon_t *daemons_node(daemons_t *d, const char *name);
/* The node's own view of vm: its version (-1 when it does not hold it) and state (32 bytes). */
int64_t daemons_node_vm(const daemon_t *dm, const char *vm, char *ret_state);
/* The VM's version at the Oracle, -1 when unknown. */
int64_t daemons_vm_version(daemons_t *d, const char *vm);
/* Waits (until deadline_ms) for the cluster to agree on vm, as DESIGN.md's invariants want: the
 * Oracle has it in a state it may rest in with no operation; the RM it names runs it (loading,
 * active), holds it suspended (suspended) or has no running copy (failed); no other live RM runs
 * a copy; the node's version is not ahead of the Oracle's; a stored VM's bundle is in the Nest.
 * ret_state (32 bytes, may be NULL) gets the Oracle's state. On a timeout prints what did not
 * agree and returns false. */
bool daemons_vm_consistent(daemons_t *d, const char *vm, int64_t deadline_ms, char *ret_state);
/* The node the Oracle places vm on, NULL when none (or not one of ours). */
daemon_t *daemons_vm_node(daemons_t *d, const char *vm);
/* Brings a consistent vm to active by legal operations from wherever it rests (resume on a
 * production RM, hibernate from a chamber, stop a failed VM first, then activate); true when it
 * ends active. *ret_cold (may be NULL) tells whether the way there booted it afresh. */
bool daemons_vm_to_active(daemons_t *d, const char *vm, bool *ret_cold);

int64_t daemons_now_ms(void);
void daemons_sleep_ms(int ms);
