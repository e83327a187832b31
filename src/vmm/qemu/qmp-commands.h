/* The QMP commands vMatrix uses, as C functions over C structs. This file (with
 * qmp-commands.c) is the only place that builds or reads the JSON of a command; the driver
 * above never touches JSON, the transport below never looks inside a command.
 *
 * Every function takes the connection, a timeout in ms and an optional qmp_error_t filled on
 * failure (see qmp.h), and returns 0 or -errno. Replies are untrusted: a field of the wrong
 * type gives -EBADMSG, never a crash; unknown enum strings map to *_UNKNOWN. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "vmm/qemu/qmp.h"

/* QAPI RunState; keep in sync with qmp_run_state_names in qmp-commands.c. */
typedef enum qmp_run_state {
        QMP_RUN_STATE_UNKNOWN,
        QMP_RUN_STATE_DEBUG,
        QMP_RUN_STATE_INMIGRATE,
        QMP_RUN_STATE_INTERNAL_ERROR,
        QMP_RUN_STATE_IO_ERROR,
        QMP_RUN_STATE_PAUSED,
        QMP_RUN_STATE_POSTMIGRATE,
        QMP_RUN_STATE_PRELAUNCH,
        QMP_RUN_STATE_FINISH_MIGRATE,
        QMP_RUN_STATE_RESTORE_VM,
        QMP_RUN_STATE_RUNNING,
        QMP_RUN_STATE_SAVE_VM,
        QMP_RUN_STATE_SHUTDOWN,
        QMP_RUN_STATE_SUSPENDED,
        QMP_RUN_STATE_WATCHDOG,
        QMP_RUN_STATE_GUEST_PANICKED,
        QMP_RUN_STATE_COLO,
} qmp_run_state_t;

typedef struct qmp_status {
        bool running;
        qmp_run_state_t state;
} qmp_status_t;

/* QAPI MigrationStatus; keep in sync with qmp_migrate_status_names in qmp-commands.c. */
typedef enum qmp_migrate_status {
        QMP_MIGRATE_UNKNOWN,
        QMP_MIGRATE_NONE, /* no migration ever started (query-migrate returns {}) */
        QMP_MIGRATE_SETUP,
        QMP_MIGRATE_CANCELLING,
        QMP_MIGRATE_CANCELLED,
        QMP_MIGRATE_ACTIVE,
        QMP_MIGRATE_POSTCOPY_ACTIVE,
        QMP_MIGRATE_POSTCOPY_PAUSED,
        QMP_MIGRATE_POSTCOPY_RECOVER,
        QMP_MIGRATE_COMPLETED,
        QMP_MIGRATE_FAILED,
        QMP_MIGRATE_COLO,
        QMP_MIGRATE_PRE_SWITCHOVER,
        QMP_MIGRATE_DEVICE,
        QMP_MIGRATE_WAIT_UNPLUG,
} qmp_migrate_status_t;

typedef struct qmp_migrate_info {
        qmp_migrate_status_t status;
        uint64_t transferred_bytes; /* ram.transferred: bytes sent so far */
        uint64_t total_bytes;       /* ram.total: guest RAM size */
        uint64_t remaining_bytes;   /* ram.remaining */
        char error_desc[256];       /* "error-desc" when status is failed, else "" */
} qmp_migrate_info_t;

typedef struct qmp_blockstats {
        uint64_t rd_bytes, wr_bytes; /* summed over all block devices */
} qmp_blockstats_t;

const char *qmp_run_state_to_string(qmp_run_state_t s);
const char *qmp_migrate_status_to_string(qmp_migrate_status_t s);
bool qmp_migrate_status_is_final(qmp_migrate_status_t s); /* completed, failed, cancelled */

int qmp_cmd_query_status(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_status_t *ret);
int qmp_cmd_stop(qmp_t *q, int timeout_ms, qmp_error_t *err);
int qmp_cmd_cont(qmp_t *q, int timeout_ms, qmp_error_t *err);
int qmp_cmd_system_powerdown(qmp_t *q, int timeout_ms, qmp_error_t *err);
/* QEMU may close the socket before replying to quit; that counts as success. */
int qmp_cmd_quit(qmp_t *q, int timeout_ms, qmp_error_t *err);

/* Hand fd (the caller keeps its copy) to QEMU under name, for a later "fd:name" URI. */
int qmp_cmd_getfd(qmp_t *q, int fd, const char *name, int timeout_ms, qmp_error_t *err);
int qmp_cmd_closefd(qmp_t *q, const char *name, int timeout_ms, qmp_error_t *err);

/* Start an outgoing migration to uri (we use "fd:NAME"); returns once it has started. */
int qmp_cmd_migrate(qmp_t *q, const char *uri, int timeout_ms, qmp_error_t *err);
/* Start loading an incoming migration from uri into a QEMU started with -incoming defer. */
int qmp_cmd_migrate_incoming(qmp_t *q, const char *uri, int timeout_ms, qmp_error_t *err);
int qmp_cmd_query_migrate(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_migrate_info_t *ret);
int qmp_cmd_migrate_set_capability(qmp_t *q, const char *capability, bool state, int timeout_ms, qmp_error_t *err);
/* migrate-set-parameters max-bandwidth, in bytes per second. */
int qmp_cmd_migrate_set_max_bandwidth(qmp_t *q, uint64_t bytes_per_s, int timeout_ms, qmp_error_t *err);

int qmp_cmd_query_blockstats(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_blockstats_t *ret);

/* Reply parsers, exposed for unit tests: value is the "return" member of the reply. */
int qmp_parse_status(json_t *value, qmp_status_t *ret);
int qmp_parse_migrate_info(json_t *value, qmp_migrate_info_t *ret);
int qmp_parse_blockstats(json_t *value, qmp_blockstats_t *ret);

/* ---- Live migration with non-shared storage (qemu-live.c): NBD, block jobs, migration
 * tuning. Schemas as in QEMU 7.2 (qapi/block-core.json, block-export.json, migration.json). */

/* A block job as query-block-jobs shows it. */
typedef struct qmp_block_job {
        bool found;      /* false: no job of that id (never started, or ended and dismissed) */
        bool ready;      /* a mirror in sync with its target (BLOCK_JOB_READY was sent) */
        char status[32]; /* JobStatus: "running", "ready", "standby", "waiting", ... */
        uint64_t offset; /* progress: bytes copied so far */
        uint64_t len;    /* progress: bytes to copy (grows while the guest writes) */
} qmp_block_job_t;

/* The data of a BLOCK_JOB_COMPLETED event. */
typedef struct qmp_block_job_end {
        uint64_t offset, len;
        char error[256]; /* why the job failed, or "" */
} qmp_block_job_end_t;

/* Times of a migration from query-migrate, 0 while not yet known. */
typedef struct qmp_migrate_times {
        uint64_t total_ms;    /* "total-time": migrate to completion */
        uint64_t downtime_ms; /* "downtime": source stopped to completion (completed only) */
        uint64_t setup_ms;    /* "setup-time" */
} qmp_migrate_times_t;

/* nbd-server-start listening on host:port (IPv4 or name, as a legacy SocketAddress). With
 * tls_creds (the id of a tls-creds-x509 server object) clients must speak TLS before any
 * export is opened; tls_authz (an authz object's id) also names the client certificates'
 * subjects allowed. Either may be NULL: none. */
int qmp_cmd_nbd_server_start(qmp_t *q, const char *host, int port, const char *tls_creds, const char *tls_authz,
                             int timeout_ms, qmp_error_t *err);
/* nbd-server-stop; also removes every NBD export and drops its clients. */
int qmp_cmd_nbd_server_stop(qmp_t *q, int timeout_ms, qmp_error_t *err);
/* block-export-add of type nbd: node_name exported under its own name, with export id id. */
int qmp_cmd_block_export_add_nbd(qmp_t *q, const char *id, const char *node_name, bool writable, int timeout_ms,
                                 qmp_error_t *err);

/* blockdev-add of an NBD client node: export on host:port as node_name. With tls_creds (a
 * tls-creds-x509 client object's id) over TLS, the server's certificate checked for
 * tls_hostname (NULL: host). Both NULL: plain TCP. */
int qmp_cmd_blockdev_add_nbd(qmp_t *q, const char *node_name, const char *host, int port, const char *export,
                             const char *tls_creds, const char *tls_hostname, int timeout_ms, qmp_error_t *err);
int qmp_cmd_blockdev_del(qmp_t *q, const char *node_name, int timeout_ms, qmp_error_t *err);
/* blockdev-mirror job_id: copy device (a root node) into the node target, sync "top",
 * "full" or "none"; the job then keeps target in sync until it is cancelled or completed. */
int qmp_cmd_blockdev_mirror(qmp_t *q, const char *job_id, const char *device, const char *target, const char *sync,
                            int timeout_ms, qmp_error_t *err);
/* block-job-cancel. Without force a ready mirror finishes copying and ends as completed
 * (BLOCK_JOB_COMPLETED) without switching to its target; with force it stops at once. */
int qmp_cmd_block_job_cancel(qmp_t *q, const char *job_id, bool force, int timeout_ms, qmp_error_t *err);
/* The job job_id from query-block-jobs; ret->found is false when there is none. */
int qmp_cmd_query_block_job(qmp_t *q, const char *job_id, int timeout_ms, qmp_error_t *err, qmp_block_job_t *ret);
/* Wait for a BLOCK_JOB_COMPLETED event (queued or arriving; of any job) and return its data. */
int qmp_event_block_job_completed(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_block_job_end_t *ret);

/* migrate-set-parameters downtime-limit, in ms. */
int qmp_cmd_migrate_set_downtime_limit(qmp_t *q, uint64_t ms, int timeout_ms, qmp_error_t *err);
/* migrate-continue from the paused status state (with pause-before-switchover: "pre-switchover"). */
int qmp_cmd_migrate_continue(qmp_t *q, qmp_migrate_status_t state, int timeout_ms, qmp_error_t *err);
int qmp_cmd_migrate_cancel(qmp_t *q, int timeout_ms, qmp_error_t *err);
int qmp_cmd_query_migrate_times(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_migrate_times_t *ret);

/* Reply and event parsers, exposed for unit tests. */
int qmp_parse_block_jobs(json_t *value, const char *job_id, qmp_block_job_t *ret);
int qmp_parse_block_job_end(json_t *event, qmp_block_job_end_t *ret);
int qmp_parse_migrate_times(json_t *value, qmp_migrate_times_t *ret);

/* QEMU's version from query-version ("qemu" member). */
typedef struct qmp_version {
        int major, minor, micro;
} qmp_version_t;

int qmp_cmd_query_version(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_version_t *ret);
/* Whether the VM runs under KVM (query-kvm "enabled"); false means TCG here. */
int qmp_cmd_query_kvm(qmp_t *q, int timeout_ms, qmp_error_t *err, bool *ret_enabled);
int qmp_parse_version(json_t *value, qmp_version_t *ret);
int qmp_parse_kvm(json_t *value, bool *ret_enabled);

/* ---- TLS of the live migration streams (qemu-live-tls.c). Schemas as in QEMU 7.2
 * (qapi/crypto.json TlsCredsX509Properties, qapi/authz.json, qapi/migration.json). */

/* object-add tls-creds-x509 id from the files in dir, QEMU's names: ca-cert.pem and
 * server-cert.pem + server-key.pem (server) or client-cert.pem + client-key.pem (client),
 * verify-peer on: a server asks for the client's certificate and checks it against the CA, a
 * client checks the server's. QEMU reads the files here, once, and keeps them in memory. */
int qmp_cmd_object_add_tls_creds(qmp_t *q, const char *id, bool server, const char *dir, int timeout_ms,
                                 qmp_error_t *err);
/* object-add authz-simple id allowing exactly the identity given (for TLS: the client
 * certificate's subject as QEMU prints it, see tls_migration_authz_id). */
int qmp_cmd_object_add_authz_simple(qmp_t *q, const char *id, const char *identity, int timeout_ms,
                                    qmp_error_t *err);
int qmp_cmd_object_del(qmp_t *q, const char *id, int timeout_ms, qmp_error_t *err);

/* The TLS parameters of QEMU's migrations (migrate-set-parameters, query-migrate-parameters);
 * "" is none, and tls-creds "" is plain TCP. */
typedef struct qmp_migrate_tls {
        char creds[64];     /* tls-creds: a tls-creds-x509 object's id */
        char hostname[256]; /* tls-hostname: the name the destination's certificate must carry */
        char authz[64];     /* tls-authz: the object that allows the source's certificate */
} qmp_migrate_tls_t;

/* Sets all three parameters as tls says. */
int qmp_cmd_migrate_set_tls(qmp_t *q, const qmp_migrate_tls_t *tls, int timeout_ms, qmp_error_t *err);
/* The three parameters as QEMU has them now (absent: ""). */
int qmp_cmd_query_migrate_tls(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_migrate_tls_t *ret);
int qmp_parse_migrate_tls(json_t *value, qmp_migrate_tls_t *ret);
