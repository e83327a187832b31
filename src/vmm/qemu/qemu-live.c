/* Live migration between two hosts (vmm.h: live_receive, live_send, live_finish), done the
 * way libvirt migrates a VM whose disk is not shared: the disk goes through an NBD export of
 * the destination's disk, RAM and device state through QEMU's own migration stream.
 *
 *   destination: live_receive             source: live_send
 *   QEMU -incoming defer -S
 *   TLS server creds, authz of the source
 *   migrate-set-parameters tls-creds, tls-authz
 *   nbd-server-start HOST:P1 tls-creds tls-authz
 *   block-export-add nbd disk0 writable
 *   migrate-incoming tcp:HOST:P2
 *                                         TLS client creds
 *                                         migrate-set-parameters tls-creds, tls-hostname
 *                                         blockdev-add nbd client "live-target" -> HOST:P1 disk0,
 *                                         tls-creds, tls-hostname
 *                                         blockdev-mirror disk0 -> live-target, sync "top"
 *                                         (the overlay's own clusters: the destination's empty
 *                                         overlay has the same backing image), until ready
 *                                         migrate tcp:HOST:P2, pause-before-switchover on
 *                                         ... RAM copied while the guest runs (see RAM) ...
 *                                         pre-switchover (CPUs stopped, disk still active):
 *                                         block-job-cancel: a ready mirror copies what is left
 *                                         and ends without pivoting (BLOCK_JOB_COMPLETED)
 *                                         migrate-continue -> completed; blockdev-del live-target
 *                                         TLS parameters off, creds deleted
 *   live_finish: wait for completed,
 *   nbd-server-stop, TLS off, cont
 *
 * Both streams are TLS (qemu-live-tls.c), and only TLS: there is no plain TCP live migration.
 * Why pause before switchover rather than cancel the mirror once the migration completed:
 * at completion the source has already sent the device state and inactivated its disk, so the
 * guest's last writes would have to reach the destination after the stream declared the
 * migration done, through a node QEMU considers inactive. Paused before switchover the mirror ends while
 * both sides are consistent; it costs no extra downtime (the same steps run with the CPUs
 * stopped either way, only now QEMU's "downtime" figure includes them). libvirt does the same
 * whenever QEMU offers the capability.
 *
 * RAM: all of it travels, also when the source's RAM is a shared file (x-ignore-shared off on
 * both sides; a save may have left it on at the source). It is copied while the guest runs
 * only where QEMU's dirty page tracking can be trusted (see live_ram_tracking_ok): under TCG
 * with QEMU before 9.0 the CPUs are stopped first and the downtime is the whole RAM copy.
 *
 * Errors are returned as -errno and logged once (qemu_op_fail / qemu_log_failure); what undoing
 * a failed send cannot do is logged as a warning. Waits use QMP events (MIGRATION,
 * JOB_STATUS_CHANGE) only as wake-ups and read the state with query-* commands, so a missed or
 * stale event costs at most LIVE_WAKE_MS. Assumes no other block job on the source emits
 * BLOCK_JOB_COMPLETED while a live migration runs. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/qemu/qemu-argv.h"
#include "vmm/qemu/qemu-internal.h"

#define LIVE_EXPORT QEMU_DISK_ID    /* the destination's NBD export: its disk node, by that name */
#define LIVE_TARGET "live-target"   /* the source's NBD client node, the mirror's target */
#define LIVE_JOB "live-mirror"
#define LIVE_DOWNTIME_LIMIT_MS 50
#define LIVE_BANDWIDTH (UINT64_C(1) << 40) /* no limit (QEMU 7.2 defaults to 32 MiB/s) */
#define LIVE_WAKE_MS 50             /* longest nap between two looks at a job or migration */
#define LIVE_LISTEN_TRIES 3         /* a picked port may be taken before QEMU binds it */
#define LIVE_CONNECT_TIMEOUT_MS 3000
#define LIVE_UNDO_TIMEOUT_MS 10000  /* undoing a failed send, on top of the caller's timeout */
#define LIVE_FINISH_RUN_MS 5000     /* cont to running on the destination */
#define LIVE_CMD_MIN_MS 1000
#define LIVE_EVENT_LATE_MS 1000     /* an event expected to be queued already */

/* What live_send has set up on the source so far, so that a failure undoes exactly that. A
 * command that timed out counts as done: QEMU may have carried it out after all. */
typedef struct live_send {
        qemu_vm_t *vm;
        bool was_running;  /* CPUs ran when live_send began: they must run again on failure */
        bool caps_set;     /* pause-before-switchover is on */
        bool target_added; /* the NBD client node exists */
        bool mirroring;    /* the mirror job may still exist */
        bool migrating;    /* migrate was issued and has not completed */
        bool tls_set;      /* the TLS creds and parameters may be set */
} live_send_t;

/* The timeout for one monitor command: what is left until deadline, but at least
 * LIVE_CMD_MIN_MS (a command QEMU may still carry out after we gave up on it is hard to undo)
 * and at most QEMU_CMD_TIMEOUT_MS. */
static int cmd_timeout(int64_t deadline) {
        int64_t left = deadline - time_now_ms();
        return (int)MAX(MIN(left, (int64_t)QEMU_CMD_TIMEOUT_MS), (int64_t)LIVE_CMD_MIN_MS);
}

/* Sleep until QEMU sends event, LIVE_WAKE_MS pass or deadline comes. The event only wakes us:
 * the caller looks at the state again. Fails only when the monitor does. */
static int live_nap(qemu_vm_t *vm, const char *event, int64_t deadline, qmp_error_t *err) {
        int64_t ms = MIN(deadline - time_now_ms(), (int64_t)LIVE_WAKE_MS);
        if (ms <= 0)
                return 0;
        qmp_error_t e = { 0 };
        int r = qmp_event_wait(vm->qmp, event, (int)ms, &e, NULL);
        if (r < 0 && r != -ETIMEDOUT) {
                if (err)
                        *err = e;
                return r;
        }
        return 0;
}

/* Wait until the migration (outgoing or incoming) reaches a final status, or, with
 * pre_switchover, stops before switchover. 0 and the info, or -ETIMEDOUT at deadline. */
static int live_migration_wait(qemu_vm_t *vm, bool pre_switchover, int64_t deadline, qmp_error_t *err,
                               qmp_migrate_info_t *ret) {
        for (;;) {
                qmp_migrate_info_t info;
                int r = qmp_cmd_query_migrate(vm->qmp, cmd_timeout(deadline), err, &info);
                if (r < 0)
                        return r;
                if (qmp_migrate_status_is_final(info.status) ||
                    (pre_switchover && info.status == QMP_MIGRATE_PRE_SWITCHOVER)) {
                        *ret = info;
                        return 0;
                }
                if (time_now_ms() >= deadline) {
                        qmp_error_set(err, "",
                                      "migration still %s at the deadline (%" PRIu64 " bytes of RAM sent, %" PRIu64
                                      " of %" PRIu64 " left)",
                                      qmp_migrate_status_to_string(info.status), info.transferred_bytes,
                                      info.remaining_bytes, info.total_bytes);
                        return -ETIMEDOUT;
                }
                r = live_nap(vm, "MIGRATION", deadline, err);
                if (r < 0)
                        return r;
        }
}

/* A free TCP port on host: bind port 0 and close (QEMU binds it a moment later; a race with
 * another process is retried by the caller). */
static int live_port_pick(const char *host) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        struct sockaddr_in a = { .sin_family = AF_INET };
        if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
                return -EINVAL;
        socklen_t len = sizeof a;
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0)
                return negative_errno();
        return ntohs(a.sin_port);
}

/* Make the destination listen on host: for the disk (nbd: NBD server and writable export of
 * its disk node) or for the migration stream. Returns the port in *ret_port. */
static int live_listen(qemu_vm_t *vm, const char *host, bool nbd, qmp_error_t *err, int *ret_port) {
        int r = 0;
        for (int i = 0; i < LIVE_LISTEN_TRIES; i++) {
                int port = live_port_pick(host);
                if (port < 0) {
                        qmp_error_set(err, "", "no free TCP port on %s: %s", host, strerror(-port));
                        return port;
                }
                if (nbd)
                        r = qmp_cmd_nbd_server_start(vm->qmp, host, port, QEMU_LIVE_TLS_CREDS, QEMU_LIVE_TLS_AUTHZ,
                                                     QEMU_CMD_TIMEOUT_MS, err);
                else {
                        _cleanup_free_ char *uri = xasprintf("tcp:%s:%d", host, port);
                        r = qmp_cmd_migrate_incoming(vm->qmp, uri, QEMU_CMD_TIMEOUT_MS, err);
                }
                if (r >= 0) {
                        *ret_port = port;
                        break;
                }
                if (r != -EIO) /* not a QEMU refusal (port taken): the monitor failed */
                        return r;
        }
        if (r >= 0 && nbd)
                r = qmp_cmd_block_export_add_nbd(vm->qmp, LIVE_EXPORT, QEMU_DISK_ID, true, QEMU_CMD_TIMEOUT_MS, err);
        return r;
}

int qemu_live_receive(const vmm_config_t *cfg, const char *host, const vmm_live_tls_t *tls, unsigned flags,
                      vmm_live_endpoint_t *ret_ep, vmm_vm_t **ret) {
        if (!cfg || !cfg->name || !host || !ret_ep || !ret)
                return -EINVAL;
        if (!qemu_live_tls_valid(tls, true)) {
                log_error("vm %s: live receive: no TLS credentials or no source to allow (there is no live migration "
                          "over plain TCP)",
                          cfg->name);
                return -EINVAL;
        }
        struct in_addr a;
        if (inet_pton(AF_INET, host, &a) != 1 || strlen(host) >= sizeof ret_ep->host) {
                log_error("vm %s: live receive: \"%s\" is not an IPv4 address", cfg->name, host);
                return -EINVAL;
        }
        if (!cfg->disk) { /* the source mirrors its disk into ours: vmm.h requires one */
                log_error("vm %s: live receive: the config has no disk to receive into", cfg->name);
                return -EINVAL;
        }
        _cleanup_(qemu_vm_abandonp) qemu_vm_t *vm = NULL;
        int r = qemu_start(cfg, QEMU_ARGV_INCOMING, "live receive", &vm);
        if (r < 0)
                return r;
        vmm_live_endpoint_t ep = { 0 };
        snprintf(ep.host, sizeof ep.host, "%s", host);
        qmp_error_t err = { 0 };
        /* all RAM must come over the wire: the memory file here is new */
        r = qmp_cmd_migrate_set_capability(vm->qmp, "x-ignore-shared", false, QEMU_CMD_TIMEOUT_MS, &err);
        if (r >= 0) /* MIGRATION events wake live_finish */
                r = qmp_cmd_migrate_set_capability(vm->qmp, "events", true, QEMU_CMD_TIMEOUT_MS, &err);
        if (r >= 0) /* before anything listens: nothing is ever served without TLS */
                r = qemu_live_tls_setup(vm, tls, true, QEMU_CMD_TIMEOUT_MS, &err);
        if (r >= 0)
                r = live_listen(vm, host, true, &err, &ep.nbd_port);
        if (r >= 0)
                r = live_listen(vm, host, false, &err, &ep.migrate_port);
        if (r < 0) {
                qemu_log_failure(vm, "live receive", r, &err);
                return r; /* vm is killed on the way out */
        }
        log_info("vm %s: waiting for a live migration on %s (QEMU pid %d, migration port %d, disk port %d)",
                 vm->name, host, (int)qemu_process_pid(vm->proc), ep.migrate_port, ep.nbd_port);
        *ret_ep = ep;
        *ret = &TAKE_PTR(vm)->header;
        return 0;
}

/* Check that host:port accepts TCP connections before QEMU is asked to connect there:
 * blockdev-add connects synchronously in QEMU's main loop, which an unreachable host would
 * block (guest I/O included) for the kernel's whole SYN timeout. */
static int live_tcp_probe(const char *host, int port, qmp_error_t *err) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
                qmp_error_set(err, "", "\"%s\" is not an IPv4 address", host);
                return -EINVAL;
        }
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        int r = 0;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                if (errno != EINPROGRESS)
                        r = negative_errno();
                else {
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        int n = poll(&p, 1, LIVE_CONNECT_TIMEOUT_MS);
                        int e = 0;
                        socklen_t len = sizeof e;
                        if (n < 0)
                                r = negative_errno();
                        else if (n == 0)
                                r = -ETIMEDOUT;
                        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                                r = negative_errno();
                        else
                                r = -e;
                }
        }
        if (r < 0)
                qmp_error_set(err, "", "cannot connect to the destination's disk export %s:%d: %s", host, port,
                              strerror(-r));
        return r;
}

/* Wait until the mirror is in sync with the destination. A job that ended before is an
 * error with QEMU's reason. */
static int live_mirror_wait_ready(qemu_vm_t *vm, int64_t deadline, qmp_error_t *err) {
        for (;;) {
                qmp_block_job_t job;
                int r = qmp_cmd_query_block_job(vm->qmp, LIVE_JOB, cmd_timeout(deadline), err, &job);
                if (r < 0)
                        return r;
                if (job.ready)
                        return 0;
                if (!job.found) {
                        qmp_block_job_end_t end = { 0 };
                        (void)qmp_event_block_job_completed(vm->qmp, 0, NULL, &end);
                        qmp_error_set(err, "", "disk mirror to the destination ended before it was in sync%s%s",
                                      *end.error ? ": " : "", end.error);
                        return -EIO;
                }
                if (time_now_ms() >= deadline) {
                        qmp_error_set(err, "", "disk mirror still %s at the deadline (%" PRIu64 " of %" PRIu64
                                      " bytes)", job.status, job.offset, job.len);
                        return -ETIMEDOUT;
                }
                r = live_nap(vm, "JOB_STATUS_CHANGE", deadline, err);
                if (r < 0)
                        return r;
        }
}

/* Wait until the mirror job is gone (dismissed). */
static int live_mirror_wait_gone(qemu_vm_t *vm, int64_t deadline, qmp_error_t *err) {
        for (;;) {
                qmp_block_job_t job;
                int r = qmp_cmd_query_block_job(vm->qmp, LIVE_JOB, cmd_timeout(deadline), err, &job);
                if (r < 0)
                        return r;
                if (!job.found)
                        return 0;
                if (time_now_ms() >= deadline) {
                        qmp_error_set(err, "", "disk mirror still %s at the deadline", job.status);
                        return -ETIMEDOUT;
                }
                r = live_nap(vm, "JOB_STATUS_CHANGE", deadline, err);
                if (r < 0)
                        return r;
        }
}

/* With the CPUs stopped before switchover: let the ready mirror copy what is left and end
 * without pivoting. It must end as completed: a cancelled or failed mirror left the
 * destination's disk behind. *ret_bytes: what it copied in all. */
static int live_mirror_finish(live_send_t *s, int64_t deadline, qmp_error_t *err, uint64_t *ret_bytes) {
        qemu_vm_t *vm = s->vm;
        int r = qmp_cmd_block_job_cancel(vm->qmp, LIVE_JOB, false, cmd_timeout(deadline), err);
        if (r >= 0)
                r = live_mirror_wait_gone(vm, deadline, err);
        if (r < 0)
                return r;
        s->mirroring = false;
        /* QEMU sends the event before it drops the job, so it is normally queued by now; a job
         * that was cancelled instead sends BLOCK_JOB_CANCELLED and this waits in vain */
        qmp_block_job_end_t end;
        r = qmp_event_block_job_completed(vm->qmp, (int)MIN(MAX(deadline - time_now_ms(), (int64_t)0),
                                                            (int64_t)LIVE_EVENT_LATE_MS),
                                          NULL, &end);
        if (r < 0) {
                qmp_error_set(err, "", "disk mirror was cancelled instead of completing");
                return -EIO;
        }
        if (*end.error) {
                qmp_error_set(err, "", "disk mirror failed: %s", end.error);
                return -EIO;
        }
        *ret_bytes = end.offset;
        return 0;
}

/* Whether guest RAM can be copied while the guest runs, i.e. whether QEMU's dirty page
 * tracking sees every write. KVM tracks writes itself. Under TCG, QEMU before 9.0 clears dirty
 * bits in the fast path of its bitmap sync (cpu_physical_memory_sync_dirty_bitmap) without
 * resetting the vCPUs' TLB write entries, so a write after a sync can go unrecorded and never
 * reach the destination: with QEMU 7.2 a busy tiny-http guest panicked after about half of its
 * live migrations, with or without our disk mirror. QEMU 9.0 fixed it (Nicholas Piggin,
 * "physmem: Fix migration dirty bitmap coherency with TCG memory access"). */
static int live_ram_tracking_ok(qemu_vm_t *vm, int64_t deadline, qmp_error_t *err, bool *ret) {
        bool kvm = false;
        qmp_version_t v = { 0 };
        int r = qmp_cmd_query_kvm(vm->qmp, cmd_timeout(deadline), err, &kvm);
        if (r >= 0 && !kvm)
                r = qmp_cmd_query_version(vm->qmp, cmd_timeout(deadline), err, &v);
        if (r < 0)
                return r;
        *ret = kvm || v.major >= 9;
        if (!*ret)
                log_info("vm %s: TCG on QEMU %d.%d loses dirty pages in a live RAM copy; the CPUs stop for the "
                         "whole RAM copy instead",
                         vm->name, v.major, v.minor);
        return 0;
}

/* The part of live_send that can fail; s records what to undo. */
static int live_send_run(live_send_t *s, const vmm_live_endpoint_t *ep, const vmm_live_tls_t *tls, int64_t deadline,
                         qmp_error_t *err, vmm_live_stats_t *ret) {
        qemu_vm_t *vm = s->vm;
        qmp_t *q = vm->qmp;
        int64_t t0 = time_now_ms();
        qmp_event_discard(q, "MIGRATION");
        qmp_event_discard(q, "JOB_STATUS_CHANGE");
        qmp_event_discard(q, "BLOCK_JOB_COMPLETED");

        /* capabilities can only change while no migration runs: set them all first */
        int r = qmp_cmd_migrate_set_capability(q, "x-ignore-shared", false, cmd_timeout(deadline), err);
        if (r >= 0)
                r = qmp_cmd_migrate_set_capability(q, "events", true, cmd_timeout(deadline), err);
        if (r >= 0) {
                r = qmp_cmd_migrate_set_capability(q, "pause-before-switchover", true, cmd_timeout(deadline), err);
                s->caps_set = r >= 0 || r == -ETIMEDOUT;
        }
        if (r >= 0)
                r = qmp_cmd_migrate_set_max_bandwidth(q, LIVE_BANDWIDTH, cmd_timeout(deadline), err);
        if (r >= 0)
                r = qmp_cmd_migrate_set_downtime_limit(q, LIVE_DOWNTIME_LIMIT_MS, cmd_timeout(deadline), err);
        if (r >= 0) {
                s->tls_set = true;
                r = qemu_live_tls_setup(vm, tls, false, cmd_timeout(deadline), err);
        }

        /* the disk first: the mirror stays in sync while RAM is copied */
        if (r >= 0)
                r = live_tcp_probe(ep->host, ep->nbd_port, err);
        if (r >= 0) {
                r = qmp_cmd_blockdev_add_nbd(q, LIVE_TARGET, ep->host, ep->nbd_port, LIVE_EXPORT, QEMU_LIVE_TLS_CREDS,
                                             tls->peer_hostname, cmd_timeout(deadline), err);
                s->target_added = r >= 0 || r == -ETIMEDOUT;
                if (r == -EIO) { /* QEMU's words say what failed, not where: a refused certificate is here */
                        _cleanup_free_ char *why = xstrdup(err->desc), *klass = xstrdup(err->klass);
                        qmp_error_set(err, klass, "connecting over TLS to the destination's disk export, which must be "
                                      "%s's and take this RM's certificate: %s",
                                      tls->peer_hostname, why);
                }
        }
        if (r >= 0) {
                r = qmp_cmd_blockdev_mirror(q, LIVE_JOB, QEMU_DISK_ID, LIVE_TARGET, "top", cmd_timeout(deadline), err);
                s->mirroring = r >= 0 || r == -ETIMEDOUT;
        }
        if (r >= 0)
                r = live_mirror_wait_ready(vm, deadline, err);
        int64_t t_ready = time_now_ms(), t_stop = 0;
        bool live = true;
        if (r >= 0)
                r = live_ram_tracking_ok(vm, deadline, err, &live);
        if (r >= 0 && !live && s->was_running) {
                r = qmp_cmd_stop(q, cmd_timeout(deadline), err);
                t_stop = time_now_ms(); /* QEMU's downtime figure starts only at its own stop */
        }

        if (r >= 0) {
                _cleanup_free_ char *uri = xasprintf("tcp:%s:%d", ep->host, ep->migrate_port);
                r = qmp_cmd_migrate(q, uri, cmd_timeout(deadline), err);
                s->migrating = r >= 0 || r == -ETIMEDOUT;
        }
        qmp_migrate_info_t info = { 0 };
        if (r >= 0)
                r = live_migration_wait(vm, true, deadline, err, &info);
        if (r >= 0 && info.status != QMP_MIGRATE_PRE_SWITCHOVER) {
                qmp_error_set(err, "", "migration %s%s%s", qmp_migrate_status_to_string(info.status),
                              *info.error_desc ? ": " : "", info.error_desc);
                r = -EIO;
        }
        /* CPUs stopped from here on */
        int64_t t_paused = time_now_ms();
        uint64_t disk_bytes = 0;
        if (r >= 0)
                r = live_mirror_finish(s, deadline, err, &disk_bytes);
        if (r >= 0)
                r = qmp_cmd_migrate_continue(q, QMP_MIGRATE_PRE_SWITCHOVER, cmd_timeout(deadline), err);
        if (r >= 0)
                r = live_migration_wait(vm, false, deadline, err, &info);
        if (r >= 0 && info.status != QMP_MIGRATE_COMPLETED) {
                qmp_error_set(err, "", "migration %s%s%s", qmp_migrate_status_to_string(info.status),
                              *info.error_desc ? ": " : "", info.error_desc);
                r = -EIO;
        }
        if (r < 0)
                return r;
        s->migrating = false;
        int64_t t_done = time_now_ms();

        qmp_migrate_times_t times = { 0 };
        if (qmp_cmd_query_migrate_times(q, QEMU_CMD_TIMEOUT_MS, NULL, &times) < 0)
                log_warn("vm %s: live migration: cannot read QEMU's downtime", vm->name);
        *ret = (vmm_live_stats_t){
                .total_ms = (uint64_t)(t_done - t0),
                .downtime_ms = t_stop ? (uint64_t)(t_done - t_stop) : times.downtime_ms,
                .ram_bytes = info.transferred_bytes,
                .disk_bytes = disk_bytes,
        };
        log_info("vm %s: live migrated to %s:%d in %" PRId64 " ms (disk in sync after %" PRId64
                 " ms, RAM copied %s in %" PRId64 " ms, final step %" PRId64 " ms; downtime %" PRIu64
                 " ms; %.1f MiB RAM, %.1f MiB disk)",
                 vm->name, ep->host, ep->migrate_port, t_done - t0, t_ready - t0,
                 live ? "live" : "with the CPUs stopped", t_paused - t_ready, t_done - t_paused, ret->downtime_ms,
                 info.transferred_bytes / 1048576.0, disk_bytes / 1048576.0);
        return 0;
}

static void live_warn(qemu_vm_t *vm, const char *what, int r, const qmp_error_t *err) {
        log_warn("vm %s: live migration: %s failed: %s", vm->name, what,
                 err && *err->desc ? err->desc : strerror(-r));
}

/* Drop the NBD client node, the TLS of the migration and the capability that would stop a
 * later save before switchover. Warnings only: the migration itself is decided by then. */
static void live_send_release(live_send_t *s, int64_t deadline) {
        qemu_vm_t *vm = s->vm;
        qmp_error_t err = { 0 };
        int r;
        if (s->target_added) {
                r = qmp_cmd_blockdev_del(vm->qmp, LIVE_TARGET, cmd_timeout(deadline), &err);
                if (r < 0)
                        live_warn(vm, "removing the disk mirror's target node " LIVE_TARGET, r, &err);
                s->target_added = false;
        }
        if (s->tls_set) { /* after the NBD node, which holds the creds */
                qemu_live_tls_teardown(vm, false, cmd_timeout(deadline));
                s->tls_set = false;
        }
        if (s->caps_set) {
                r = qmp_cmd_migrate_set_capability(vm->qmp, "pause-before-switchover", false, cmd_timeout(deadline),
                                                   &err);
                if (r < 0)
                        live_warn(vm, "turning pause-before-switchover off", r, &err);
                s->caps_set = false;
        }
}

/* After a failure: stop whatever live_send started and let the source run as before. */
static void live_send_undo(live_send_t *s) {
        qemu_vm_t *vm = s->vm;
        int64_t deadline = time_now_ms() + LIVE_UNDO_TIMEOUT_MS;
        qmp_error_t err = { 0 };
        int r;
        if (s->migrating) {
                /* also from pre-switchover; QEMU then restarts the CPUs it stopped */
                qmp_migrate_info_t info;
                r = qmp_cmd_migrate_cancel(vm->qmp, cmd_timeout(deadline), &err);
                if (r >= 0)
                        r = live_migration_wait(vm, false, deadline, &err, &info);
                if (r < 0)
                        live_warn(vm, "cancelling the migration", r, &err);
        }
        if (s->mirroring) {
                r = qmp_cmd_block_job_cancel(vm->qmp, LIVE_JOB, true, cmd_timeout(deadline), &err);
                if (r >= 0 || r == -ENXIO || r == -ENODEV) /* or it had ended already */
                        r = live_mirror_wait_gone(vm, deadline, &err);
                if (r < 0)
                        live_warn(vm, "cancelling the disk mirror", r, &err);
        }
        live_send_release(s, deadline);
        qmp_status_t st;
        r = qmp_cmd_query_status(vm->qmp, cmd_timeout(deadline), &err, &st);
        if (r >= 0 && s->was_running && !st.running)
                r = qmp_cmd_cont(vm->qmp, cmd_timeout(deadline), &err);
        if (r < 0)
                live_warn(vm, "resuming the source", r, &err);
}

int qemu_live_send(vmm_vm_t *v, const vmm_live_endpoint_t *ep, const vmm_live_tls_t *tls, int timeout_ms,
                   vmm_live_stats_t *ret_stats) {
        qemu_vm_t *vm = qemu_vm_from(v);
        if (!ep || !*ep->host || ep->migrate_port < 1 || ep->migrate_port > 65535 || ep->nbd_port < 1 ||
            ep->nbd_port > 65535 || timeout_ms <= 0)
                return -EINVAL;
        if (!qemu_live_tls_valid(tls, false)) {
                log_error("vm %s: live send: no TLS credentials or no destination name (there is no live migration "
                          "over plain TCP)",
                          vm->name);
                return -EINVAL;
        }
        int64_t deadline = time_now_ms() + timeout_ms;
        _cleanup_free_ char *what = xasprintf("live migration to %s:%d", ep->host, ep->migrate_port);
        qmp_error_t err = { 0 };
        qmp_status_t st;
        int r = qmp_cmd_query_status(vm->qmp, cmd_timeout(deadline), &err, &st);
        if (r < 0)
                return qemu_op_fail(vm, what, r, &err);
        if (st.state == QMP_RUN_STATE_POSTMIGRATE) {
                /* QEMU refuses another migration until the VM has run again (see qemu_save) */
                log_error("vm %s: %s: the VM was already migrated or saved (QEMU state postmigrate); resume it first",
                          vm->name, what);
                return -EALREADY;
        }
        live_send_t s = { .vm = vm, .was_running = st.running };
        vmm_live_stats_t stats;
        r = live_send_run(&s, ep, tls, deadline, &err, &stats);
        if (r < 0) {
                r = qemu_op_fail(vm, what, r, &err);
                if (r != -ESRCH) /* QEMU is gone: nothing to undo */
                        live_send_undo(&s);
                return r;
        }
        live_send_release(&s, time_now_ms() + LIVE_UNDO_TIMEOUT_MS);
        if (ret_stats)
                *ret_stats = stats;
        return 0;
}

int qemu_live_finish(vmm_vm_t *v, int timeout_ms) {
        qemu_vm_t *vm = qemu_vm_from(v);
        if (timeout_ms <= 0)
                return -EINVAL;
        int64_t t0 = time_now_ms(), deadline = t0 + timeout_ms;
        qmp_error_t err = { 0 };
        const char *what = "finishing the incoming live migration";
        qmp_migrate_info_t info = { 0 };
        int r = live_migration_wait(vm, false, deadline, &err, &info);
        if (r >= 0 && info.status != QMP_MIGRATE_COMPLETED) {
                qmp_error_set(&err, "", "incoming migration %s%s%s", qmp_migrate_status_to_string(info.status),
                              *info.error_desc ? ": " : "", info.error_desc);
                r = -EIO;
        }
        int64_t t_loaded = time_now_ms();
        /* closes the export and drops the source's connection, if it is still there */
        if (r >= 0)
                r = qmp_cmd_nbd_server_stop(vm->qmp, cmd_timeout(deadline), &err);
        if (r >= 0) /* a later save of this VM must not try TLS on its file */
                qemu_live_tls_teardown(vm, true, cmd_timeout(deadline));
        if (r >= 0)
                r = qmp_cmd_cont(vm->qmp, cmd_timeout(deadline), &err);
        /* cont right after the load may only arm autostart: wait for the CPUs to run */
        int64_t run_deadline = MIN(deadline, time_now_ms() + LIVE_FINISH_RUN_MS);
        qmp_status_t st = { 0 };
        while (r >= 0) {
                r = qmp_cmd_query_status(vm->qmp, cmd_timeout(run_deadline), &err, &st);
                if (r < 0 || st.running)
                        break;
                if (time_now_ms() >= run_deadline) {
                        qmp_error_set(&err, "", "VM is %s after cont, not running", qmp_run_state_to_string(st.state));
                        r = -EIO;
                        break;
                }
                r = live_nap(vm, "RESUME", run_deadline, &err);
        }
        if (r < 0)
                return qemu_op_fail(vm, what, r, &err);
        log_info("vm %s: live migration received, running (state loaded %" PRId64 " ms after live_finish began, "
                 "running after %" PRId64 " ms)",
                 vm->name, t_loaded - t0, time_now_ms() - t0);
        return 0;
}
