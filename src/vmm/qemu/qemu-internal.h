/* Inside the QEMU driver: the handle and the helpers that qemu.c shares with the files that
 * implement the rest of vmm_qemu (qemu-slot.c warm slots, qemu-agent.c guest agent and
 * balloon, qemu-live.c live migration). Not for use outside src/vmm/qemu. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "vmm/qemu/qemu-process.h"
#include "vmm/qemu/qmp-commands.h"
#include "vmm/qemu/qmp.h"
#include "vmm/vmm.h"

#define QEMU_START_TIMEOUT_MS 30000     /* from exec to a working monitor */
#define QEMU_ATTACH_TIMEOUT_MS 5000
#define QEMU_CMD_TIMEOUT_MS 10000       /* ordinary monitor commands */
/* Stats feed the node's heartbeat every second: a QEMU that cannot answer this fast (stopped,
 * hung, or busy with a save) keeps its last block counters rather than hold the heartbeat up
 * long enough for the Oracle to declare the whole RM down. */
#define QEMU_STATS_TIMEOUT_MS 300
/* The supervisor asks every VM's status five times a second, holding the VM: a monitor that
 * hangs must not hold it for long (a fence waits for it, node-vm.c). */
#define QEMU_STATUS_TIMEOUT_MS 2000
#define QEMU_MIGRATE_TIMEOUT_MS 600000  /* a whole save or restore */
#define QEMU_KILL_TIMEOUT_MS 10000      /* SIGKILL to the process being gone */
#define QEMU_DEATH_GRACE_MS 1000        /* monitor closed: time for the process to finish exiting */
#define QEMU_LOG_MAX_BYTES (4 << 20)    /* qemu.log is truncated at start beyond this */
#define QEMU_LOG_TAIL_BYTES 1500
#define QEMU_SAVE_FDNAME "vmx-save"
#define QEMU_RESTORE_FDNAME "vmx-restore"

typedef struct qemu_vm {
        vmm_vm_t header; /* first, as vmm.h requires */
        char *name;
        char *qmp_path, *log_path, *console_path, *agent_path;
        char *run_dir;
        bool memory_file; /* RAM in a file (shared or private): migrate with x-ignore-shared */
        qemu_process_t *proc;
        qmp_t *qmp;
        off_t log_offset; /* where this process's output starts in qemu.log */
        char *slot_shape; /* a warm slot not yet used: the command line it was started with */
        uint64_t block_rd_bytes, block_wr_bytes; /* the last block counters QEMU gave (stats) */
        bool confined;    /* started in a jail (qemu-confine.c) as uid:gid, by this handle */
        uid_t uid;
        gid_t gid;
} qemu_vm_t;

static inline qemu_vm_t *qemu_vm_from(vmm_vm_t *vm) { return (qemu_vm_t *)vm; }

qemu_vm_t *qemu_vm_new(const vmm_config_t *cfg);
void qemu_free(vmm_vm_t *v);
/* For a VM still being set up: a failure kills the process we started. */
void qemu_vm_abandonp(qemu_vm_t **p);

int qemu_kill(vmm_vm_t *v, unsigned flags);

/* Start QEMU for cfg (argv flags as qemu_argv_build) and connect to its monitor. what names
 * the operation in messages. On failure nothing is left running and the error is logged. */
int qemu_start(const vmm_config_t *cfg, unsigned argv_flags, const char *what, qemu_vm_t **ret);

/* The one place that logs a failed operation (QEMU's desc, or the tail of its log when it
 * died). Returns whether QEMU is gone. */
bool qemu_log_failure(qemu_vm_t *vm, const char *what, int r, const qmp_error_t *err);
/* Log a failed operation on a running VM; a VM whose QEMU has died is -ESRCH. */
int qemu_op_fail(qemu_vm_t *vm, const char *what, int r, const qmp_error_t *err);

/* Poll query-migrate until the migration reaches a final status. */
int qemu_migration_wait(qemu_vm_t *vm, int timeout_ms, qmp_error_t *err, qmp_migrate_info_t *ret);

/* Load state_path into vm, a QEMU waiting with -incoming defer -S, and continue it unless
 * VMM_RESTORE_PAUSED (t0: start of the whole restore, for the log). The caller kills vm on
 * failure; -EINVAL means the state does not fit the config. */
int qemu_incoming_load(qemu_vm_t *vm, const char *state_path, unsigned flags, int64_t t0);

/* The operations implemented in the other files (see vmm.h). */
int qemu_slot_start(const vmm_config_t *shape, unsigned flags, vmm_vm_t **ret);
int qemu_slot_restore(vmm_vm_t *slot, const vmm_config_t *cfg, const char *state_path, unsigned flags);
int qemu_agent_call(vmm_vm_t *vm, const char *request, int timeout_ms, char **ret_reply);
int qemu_balloon_set(vmm_vm_t *vm, uint64_t target_bytes);
int qemu_balloon_get(vmm_vm_t *vm, uint64_t *ret_actual_bytes);
int qemu_live_receive(const vmm_config_t *cfg, const char *host, const vmm_live_tls_t *tls, unsigned flags,
                      vmm_live_endpoint_t *ret_ep, vmm_vm_t **ret);
int qemu_live_send(vmm_vm_t *vm, const vmm_live_endpoint_t *ep, const vmm_live_tls_t *tls, int timeout_ms,
                   vmm_live_stats_t *ret_stats);

/* qemu-live-tls.c: the TLS of live migration (see there). */
#define QEMU_LIVE_TLS_DIR "tls-migrate"     /* RUN/tls-migrate, while QEMU reads it */
#define QEMU_LIVE_TLS_CREDS "vmx-live-tls"  /* the tls-creds-x509 object */
#define QEMU_LIVE_TLS_AUTHZ "vmx-live-authz" /* the destination's authz-simple object */
/* Whether tls has what a destination (server) or a source needs. */
bool qemu_live_tls_valid(const vmm_live_tls_t *tls, bool server);
/* Loads tls into vm's QEMU: the creds object (server: the destination's, with the authz
 * object allowing tls->peer_subject), then the migration parameters (tls-creds, and tls-authz
 * or tls-hostname), read back to be sure QEMU took them. The files QEMU reads are gone again on
 * return, either way. -errno with err. */
int qemu_live_tls_setup(qemu_vm_t *vm, const vmm_live_tls_t *tls, bool server, int timeout_ms, qmp_error_t *err);
/* Undoes qemu_live_tls_setup: the migration parameters back to plain (a later save must not try
 * TLS on its file) and the objects deleted. Warnings only. */
void qemu_live_tls_teardown(qemu_vm_t *vm, bool server, int timeout_ms);
int qemu_live_finish(vmm_vm_t *vm, int timeout_ms);
