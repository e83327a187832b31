/* The QEMU driver: vmm_qemu implements vmm.h with one QEMU process per VM.
 *
 * Layers: qemu-argv.c turns the config into a command line, qemu-process.c starts, watches
 * and kills the process, qmp.c/qmp-commands.c talk to its monitor. This file is the logic in
 * between and touches no JSON.
 *
 * Save and restore use QEMU migration to a file descriptor: save stops the CPUs, hands QEMU an
 * fd of a new file with getfd and migrates to "fd:NAME"; restore starts QEMU with
 * "-incoming defer -S", hands it the state file and runs migrate-incoming. With a file-backed
 * RAM (memory_path) the x-ignore-shared capability keeps RAM out of the state file, on both
 * sides.
 *
 * Errors: every failure is returned as -errno and logged here once with what QEMU said (its
 * QMP desc, or the tail of RUN/qemu.log when it died), since vmm.h carries no message.
 * A handle is safe to use from several threads: its monitor connection and process record
 * lock themselves and everything else in it is immutable. A monitor connection that broke
 * while QEMU lives on (-ENOTCONN: garbage or a cut socket) is not re-opened behind the
 * callers' backs; the node frees the handle and attaches again. */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/qemu/qemu-argv.h"
#include "vmm/qemu/qemu-confine.h"
#include "vmm/qemu/qemu-internal.h"
#include "vmm/qemu/qemu-process.h"
#include "vmm/qemu/qmp-commands.h"
#include "vmm/vmm.h"

void qemu_free(vmm_vm_t *v) {
        qemu_vm_t *vm = qemu_vm_from(v);
        if (!vm)
                return;
        qmp_free(vm->qmp);
        qemu_process_free(vm->proc);
        free(vm->name);
        free(vm->qmp_path);
        free(vm->log_path);
        free(vm->console_path);
        free(vm->agent_path);
        free(vm->run_dir);
        free(vm->slot_shape);
        free(vm);
}

/* For a VM still being set up: a failure kills the process we started. */
void qemu_vm_abandonp(qemu_vm_t **p) {
        if (!*p)
                return;
        if ((*p)->proc)
                (void)qemu_process_kill((*p)->proc, QEMU_KILL_TIMEOUT_MS);
        qemu_free(&(*p)->header);
}

qemu_vm_t *qemu_vm_new(const vmm_config_t *cfg) {
        qemu_vm_t *vm = xcalloc(1, sizeof *vm);
        vm->header.driver = &vmm_qemu;
        vm->name = xstrdup(cfg->name);
        vm->qmp_path = qemu_run_path(cfg->run_dir, QEMU_RUN_QMP);
        vm->log_path = qemu_run_path(cfg->run_dir, QEMU_RUN_LOG);
        vm->console_path = qemu_run_path(cfg->run_dir, QEMU_RUN_CONSOLE);
        vm->agent_path = qemu_run_path(cfg->run_dir, QEMU_RUN_AGENT);
        vm->run_dir = xstrdup(cfg->run_dir);
        vm->memory_file = cfg->memory_path != NULL;
        return vm;
}

static const char *qemu_binary(void) {
        const char *b = getenv("VMATRIX_QEMU");
        return b && *b ? b : QEMU_DEFAULT_BINARY;
}

static void exit_describe(int status, char *buf, size_t size) {
        if (status < 0)
                snprintf(buf, size, "exited");
        else if (WIFEXITED(status))
                snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, size, "was killed by signal %d", WTERMSIG(status));
        else
                snprintf(buf, size, "exited");
}

/* The one place that logs a failed operation: if QEMU has died (or dies within a short grace,
 * since it closes the monitor before it exits) the message is the tail of its log, else
 * QEMU's desc from err. Returns whether QEMU is gone. */
bool qemu_log_failure(qemu_vm_t *vm, const char *what, int r, const qmp_error_t *err) {
        bool gone = !qemu_process_alive(vm->proc);
        if (!gone && (r == -ECONNRESET || r == -ENOTCONN))
                gone = qemu_process_wait(vm->proc, QEMU_DEATH_GRACE_MS) >= 0;
        if (gone) {
                char how[64];
                exit_describe(qemu_process_exit_status(vm->proc), how, sizeof how);
                _cleanup_free_ char *tail = qemu_log_tail(vm->log_path, vm->log_offset, QEMU_LOG_TAIL_BYTES);
                log_error("vm %s: %s failed: QEMU %s%s%s", vm->name, what, how, *tail ? ": " : "", tail);
        } else
                log_error("vm %s: %s failed: %s", vm->name, what, err && *err->desc ? err->desc : strerror(-r));
        return gone;
}

/* Log a failed operation on a running VM; a VM whose QEMU has died is -ESRCH. */
int qemu_op_fail(qemu_vm_t *vm, const char *what, int r, const qmp_error_t *err) {
        return qemu_log_failure(vm, what, r, err) ? -ESRCH : r;
}

static int qemu_alive_cb(void *userdata) { return qemu_process_alive(userdata) ? 0 : -ECHILD; }

/* Whether the monitor we reached by path is this VM's QEMU's: a confined QEMU owns its run
 * directory and could leave a link to another VM's socket there. -EPERM, described in err. */
static int qemu_monitor_check(qemu_vm_t *vm, qmp_error_t *err) {
        pid_t peer = 0;
        int r = qmp_peer_pid(vm->qmp, &peer);
        if (r < 0)
                return r;
        if (peer != qemu_process_pid(vm->proc)) {
                qmp_error_set(err, "", "%s is the monitor of pid %d, not of its QEMU (pid %d)", vm->qmp_path, (int)peer,
                              (int)qemu_process_pid(vm->proc));
                return -EPERM;
        }
        return 0;
}

/* Refuse to start a second QEMU on a run directory whose QEMU is still running. */
static int qemu_run_dir_check_free(const vmm_config_t *cfg, const char *qmp_path) {
        _cleanup_free_ char *pidfile = qemu_run_path(cfg->run_dir, QEMU_RUN_PIDFILE);
        pid_t pid;
        if (qemu_pidfile_read(pidfile, &pid) < 0)
                return 0;
        if (!qemu_process_matches(pid, qmp_path))
                return 0;
        log_error("vm %s: QEMU pid %d is still running in %s; attach to it or kill it first", cfg->name, (int)pid,
                  cfg->run_dir);
        return -EBUSY;
}

/* Open RUN/qemu.log for appending (truncated when large), write a header for this start and
 * return the fd and the offset where QEMU's own output will begin. */
static int qemu_log_open(const qemu_vm_t *vm, const char *what, int *ret_fd, off_t *ret_offset) {
        /* the run directory may be a confined QEMU's: a link or a FIFO there is refused */
        _cleanup_close_ int fd = file_open_safe(vm->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0)
                return fd;
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size > QEMU_LOG_MAX_BYTES && ftruncate(fd, 0) < 0)
                return negative_errno();
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        char header[256];
        int n = snprintf(header, sizeof header, "---- vmatrix: %s of vm %s at %04d-%02d-%02dT%02d:%02d:%02dZ ----\n",
                         what, vm->name, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec);
        if (write(fd, header, (size_t)MIN(n, (int)sizeof header - 1)) < 0)
                return negative_errno();
        off_t off = lseek(fd, 0, SEEK_END);
        if (off < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        *ret_offset = off;
        return 0;
}

/* Starts argv in the jail of cfg (qemu-confine.c), after giving the VM's uid its files.
 * Logs a failure. */
static int qemu_spawn_confined(qemu_vm_t *vm, const vmm_config_t *cfg, char *const *argv, int log_fd) {
        const vmm_confine_t *c = cfg->confine;
        const char *bad = NULL, *step = NULL;
        int r = qemu_confine_files(cfg, c->uid, c->gid, false, &bad);
        if (r < 0) {
                log_error("vm %s: cannot give uid %u its file %s: %s", vm->name, (unsigned)c->uid, bad, strerror(-r));
                return r;
        }
        _cleanup_(jail_freep) jail_t *j = NULL;
        r = qemu_confine_jail(cfg, &j, &bad);
        if (r < 0) {
                log_error("vm %s: cannot confine QEMU: %s: %s", vm->name, bad ? bad : "?", strerror(-r));
                return r;
        }
        r = qemu_process_spawn_jailed(j, argv, log_fd, &vm->proc, &step);
        if (r < 0) {
                log_error("vm %s: cannot run %s confined as uid %u (%s): %s", vm->name, argv[0], (unsigned)c->uid,
                          step ? step : "?", strerror(-r));
                return r;
        }
        vm->confined = true;
        vm->uid = c->uid;
        vm->gid = c->gid;
        return 0;
}

/* Start QEMU for cfg and connect to its monitor. what is "boot" or "restore" for messages.
 * On failure nothing is left running and the error is logged. */
int qemu_start(const vmm_config_t *cfg, unsigned argv_flags, const char *what, qemu_vm_t **ret) {
        const char *bad = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        int r = qemu_argv_build(cfg, qemu_binary(), argv_flags, &bad, &argv);
        if (r < 0) {
                log_error("vm %s: %s: invalid config field %s: %s", cfg && cfg->name ? cfg->name : "?", what,
                          bad ? bad : "?", strerror(-r));
                return r;
        }
        _cleanup_(qemu_vm_abandonp) qemu_vm_t *vm = qemu_vm_new(cfg);

        r = mkdir_p(cfg->run_dir, 0700);
        if (r < 0) {
                log_error("vm %s: cannot create run directory %s: %s", vm->name, cfg->run_dir, strerror(-r));
                return r;
        }
        r = qemu_run_dir_check_free(cfg, vm->qmp_path);
        if (r < 0)
                return r;
        _cleanup_free_ char *pidfile = qemu_run_path(cfg->run_dir, QEMU_RUN_PIDFILE);
        (void)unlink(pidfile); /* so that attach never trusts a stale one */
        (void)unlink(vm->qmp_path);

        _cleanup_close_ int log_fd = -1;
        r = qemu_log_open(vm, what, &log_fd, &vm->log_offset);
        if (r < 0) {
                log_error("vm %s: cannot open %s: %s", vm->name, vm->log_path, strerror(-r));
                return r;
        }
        int64_t t0 = time_now_ms();
        r = cfg->confine ? qemu_spawn_confined(vm, cfg, argv, log_fd) : qemu_process_spawn(argv, log_fd, &vm->proc);
        if (r < 0) {
                if (!cfg->confine)
                        log_error("vm %s: cannot run %s: %s", vm->name, argv[0], strerror(-r));
                return r;
        }
        qmp_error_t err = { 0 };
        r = qmp_connect(vm->qmp_path, QEMU_START_TIMEOUT_MS, qemu_alive_cb, vm->proc, &err, &vm->qmp);
        if (r >= 0)
                r = qemu_monitor_check(vm, &err);
        if (r < 0) {
                bool gone = qemu_log_failure(vm, what, r, &err);
                return gone ? -EIO : r;
        }
        log_debug("vm %s: QEMU pid %d monitor ready after %" PRId64 " ms", vm->name, (int)qemu_process_pid(vm->proc),
                  time_now_ms() - t0);
        *ret = TAKE_PTR(vm);
        return 0;
}

static int qemu_boot(const vmm_config_t *cfg, unsigned flags, vmm_vm_t **ret) {
        int64_t t0 = time_now_ms();
        _cleanup_(qemu_vm_abandonp) qemu_vm_t *vm = NULL;
        int r = qemu_start(cfg, 0, "boot", &vm);
        if (r < 0)
                return r;
        qmp_error_t err = { 0 };
        qmp_status_t st;
        r = qmp_cmd_query_status(vm->qmp, QEMU_CMD_TIMEOUT_MS, &err, &st);
        if (r >= 0 && !st.running) {
                qmp_error_set(&err, "", "VM is %s after start, not running", qmp_run_state_to_string(st.state));
                r = -EIO;
        }
        if (r < 0) {
                qemu_log_failure(vm, "boot", r, &err);
                return r;
        }
        log_info("vm %s: booted (QEMU pid %d) in %" PRId64 " ms", vm->name, (int)qemu_process_pid(vm->proc),
                 time_now_ms() - t0);
        *ret = &TAKE_PTR(vm)->header;
        return 0;
}

/* Poll query-migrate until the migration reaches a final status, backing off from 1 to 50 ms
 * between polls. Returns 0 with the final info, or the monitor error / -ETIMEDOUT in err. */
int qemu_migration_wait(qemu_vm_t *vm, int timeout_ms, qmp_error_t *err, qmp_migrate_info_t *ret) {
        int64_t deadline = time_now_ms() + timeout_ms, pause = 1;
        for (;;) {
                qmp_migrate_info_t info;
                int r = qmp_cmd_query_migrate(vm->qmp, QEMU_CMD_TIMEOUT_MS, err, &info);
                if (r < 0)
                        return r;
                if (qmp_migrate_status_is_final(info.status)) {
                        *ret = info;
                        return 0;
                }
                if (time_now_ms() >= deadline) {
                        qmp_error_set(err, "", "migration still %s after %d ms (%" PRIu64 " of %" PRIu64 " bytes)",
                                      qmp_migrate_status_to_string(info.status), timeout_ms, info.transferred_bytes,
                                      info.total_bytes);
                        return -ETIMEDOUT;
                }
                time_sleep_ms(pause);
                pause = MIN(pause * 2, (int64_t)50);
        }
}

/* Load state_path into vm, a QEMU waiting with -incoming defer -S, and continue it unless
 * VMM_RESTORE_PAUSED. t0 is when the whole restore began, for the log. On failure the caller
 * kills vm; -EINVAL means the state does not fit the config. */
int qemu_incoming_load(qemu_vm_t *vm, const char *state_path, unsigned flags, int64_t t0) {
        _cleanup_close_ int fd = open(state_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int r = negative_errno();
                log_error("vm %s: cannot open state file %s: %s", vm->name, state_path, strerror(-r));
                return r;
        }
        qmp_error_t err = { 0 };
        const char *what = "restore";
        int r = 0;
        /* set whenever RAM is a file, shared or private (unless VMM_ALL_RAM), so that the stream's
         * layout is the same on both sides; private RAM is not skipped by it and travels in the
         * stream */
        if (vm->memory_file)
                r = qmp_cmd_migrate_set_capability(vm->qmp, "x-ignore-shared", !(flags & VMM_ALL_RAM),
                                                   QEMU_CMD_TIMEOUT_MS, &err);
        if (r >= 0)
                r = qmp_cmd_getfd(vm->qmp, fd, QEMU_RESTORE_FDNAME, QEMU_CMD_TIMEOUT_MS, &err);
        if (r >= 0)
                r = qmp_cmd_migrate_incoming(vm->qmp, "fd:" QEMU_RESTORE_FDNAME, QEMU_CMD_TIMEOUT_MS, &err);
        close(TAKE_FD(fd)); /* QEMU has its own copy now */
        qmp_migrate_info_t info = { 0 };
        if (r >= 0)
                r = qemu_migration_wait(vm, QEMU_MIGRATE_TIMEOUT_MS, &err, &info);
        if (r >= 0 && info.status != QMP_MIGRATE_COMPLETED) {
                qmp_error_set(&err, "", "loading %s: migration %s%s%s", state_path,
                              qmp_migrate_status_to_string(info.status), *info.error_desc ? ": " : "",
                              info.error_desc);
                r = -EINVAL;
        }
        int64_t t_loaded = time_now_ms();
        if (r >= 0 && !(flags & VMM_RESTORE_PAUSED)) {
                what = "resume after restore";
                r = qmp_cmd_cont(vm->qmp, QEMU_CMD_TIMEOUT_MS, &err);
        }
        if (r < 0) {
                if (r == -EINVAL) /* QEMU exits right after a failed load: let its words reach the log */
                        (void)qemu_process_wait(vm->proc, QEMU_DEATH_GRACE_MS);
                _cleanup_free_ char *msg = xasprintf("%s from %s", what, state_path);
                /* QEMU exits when it cannot load a state (e.g. written with another device set):
                 * the state file does not fit this config */
                if (qemu_log_failure(vm, msg, r, &err) || r == -EINVAL)
                        return -EINVAL;
                return r;
        }
        log_info("vm %s: restored from %s in %" PRId64 " ms (state loaded after %" PRId64 " ms)%s", vm->name,
                 state_path, time_now_ms() - t0, t_loaded - t0, flags & VMM_RESTORE_PAUSED ? ", paused" : "");
        return 0;
}

static int qemu_restore(const vmm_config_t *cfg, const char *state_path, unsigned flags, vmm_vm_t **ret) {
        int64_t t0 = time_now_ms();
        if (!cfg || !state_path)
                return -EINVAL;
        if (access(state_path, R_OK) < 0) {
                int r = negative_errno();
                log_error("vm %s: cannot open state file %s: %s", cfg->name ? cfg->name : "?", state_path, strerror(-r));
                return r;
        }
        _cleanup_(qemu_vm_abandonp) qemu_vm_t *vm = NULL;
        int r = qemu_start(cfg, QEMU_ARGV_INCOMING, "restore", &vm);
        if (r < 0)
                return r;
        r = qemu_incoming_load(vm, state_path, flags, t0);
        if (r < 0)
                return r;
        *ret = &TAKE_PTR(vm)->header;
        return 0;
}

static int qemu_attach(const vmm_config_t *cfg, unsigned flags, vmm_vm_t **ret) {
        if (!cfg || !cfg->name || !cfg->run_dir)
                return -EINVAL;
        _cleanup_(qemu_vm_abandonp) qemu_vm_t *vm = NULL;
        _cleanup_free_ char *pidfile = qemu_run_path(cfg->run_dir, QEMU_RUN_PIDFILE);
        pid_t pid;
        int r = qemu_pidfile_read(pidfile, &pid);
        if (r < 0)
                return -ESRCH; /* no pidfile, or garbage in it: no QEMU we can trust there */
        /* the run directory may be a link to where the QEMU was started (a warm slot's): its
         * command line names the real path */
        _cleanup_free_ char *real_run = realpath(cfg->run_dir, NULL);
        _cleanup_free_ char *qmp_path = qemu_run_path(real_run ? real_run : cfg->run_dir, QEMU_RUN_QMP);
        qemu_process_t *proc = NULL;
        r = qemu_process_open(pid, &proc);
        if (r < 0)
                return -ESRCH;
        /* checked after the pidfd pinned the process, so a recycled pid cannot slip through */
        if (!qemu_process_matches(pid, qmp_path)) {
                qemu_process_free(proc);
                log_info("vm %s: pid %d from %s is not this VM's QEMU", cfg->name, (int)pid, pidfile);
                return -ESRCH;
        }
        vm = qemu_vm_new(cfg);
        vm->proc = proc;
        int64_t size = file_size(vm->log_path);
        vm->log_offset = size > 0 ? size : 0;
        qmp_error_t err = { 0 };
        r = qmp_connect(vm->qmp_path, QEMU_ATTACH_TIMEOUT_MS, qemu_alive_cb, vm->proc, &err, &vm->qmp);
        if (r >= 0)
                r = qemu_monitor_check(vm, &err);
        if (r < 0) {
                qemu_log_failure(vm, "attach", r, &err);
                /* not ours to kill: it was running before we came */
                vm->proc = qemu_process_free(vm->proc);
                return r;
        }
        log_info("vm %s: attached to QEMU pid %d", vm->name, (int)pid);
        *ret = &TAKE_PTR(vm)->header;
        return 0;
}

/* -errno of a failed file call, described in err. */
static int file_error(qmp_error_t *err, const char *op, const char *path) {
        int r = negative_errno();
        qmp_error_set(err, "", "%s %s: %s", op, path, strerror(-r));
        return r;
}

static int qemu_save(vmm_vm_t *v, const char *state_path, unsigned flags) {
        qemu_vm_t *vm = qemu_vm_from(v);
        if (!state_path)
                return -EINVAL;
        int64_t t0 = time_now_ms();
        qmp_error_t err = { 0 };
        qmp_status_t st;
        int r = qmp_cmd_query_status(vm->qmp, QEMU_CMD_TIMEOUT_MS, &err, &st);
        if (r >= 0 && st.state == QMP_RUN_STATE_POSTMIGRATE) {
                /* QEMU refuses a second migration until the VM has run again; resuming it
                 * behind the caller's back would move the guest past the state it saved */
                log_error("vm %s: save to %s: the VM is already saved (QEMU state postmigrate); resume it before "
                          "saving again",
                          vm->name, state_path);
                return -EALREADY;
        }
        if (r >= 0 && vm->memory_file)
                r = qmp_cmd_migrate_set_capability(vm->qmp, "x-ignore-shared", !(flags & VMM_ALL_RAM),
                                                   QEMU_CMD_TIMEOUT_MS, &err);
        /* the default limit (32 MiB/s in QEMU 7.2) is meant for live migration over a network */
        if (r >= 0)
                r = qmp_cmd_migrate_set_max_bandwidth(vm->qmp, UINT64_C(1) << 40, QEMU_CMD_TIMEOUT_MS, &err);
        if (r >= 0)
                r = qmp_cmd_stop(vm->qmp, QEMU_CMD_TIMEOUT_MS, &err);
        if (r < 0)
                return qemu_op_fail(vm, "save", r, &err);

        /* written under a temporary name and renamed once complete and synced, so a crash
         * never leaves a truncated state file under state_path; a stream is written as it is */
        bool stream = flags & VMM_SAVE_STREAM;
        _cleanup_free_ char *tmp = stream ? xstrdup(state_path) : xasprintf("%s.tmp", state_path);
        _cleanup_close_ int fd = stream ? open(tmp, O_WRONLY | O_CLOEXEC)
                                        : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = negative_errno();
                log_error("vm %s: save: cannot create %s: %s", vm->name, tmp, strerror(-r));
                return r;
        }
        r = qmp_cmd_getfd(vm->qmp, fd, QEMU_SAVE_FDNAME, QEMU_CMD_TIMEOUT_MS, &err);
        if (r >= 0) {
                r = qmp_cmd_migrate(vm->qmp, "fd:" QEMU_SAVE_FDNAME, QEMU_CMD_TIMEOUT_MS, &err);
                if (r < 0) /* migrate did not take the fd: do not leave it open in QEMU */
                        (void)qmp_cmd_closefd(vm->qmp, QEMU_SAVE_FDNAME, QEMU_CMD_TIMEOUT_MS, NULL);
        }
        qmp_migrate_info_t info = { 0 };
        if (r >= 0)
                r = qemu_migration_wait(vm, QEMU_MIGRATE_TIMEOUT_MS, &err, &info);
        if (r >= 0 && info.status != QMP_MIGRATE_COMPLETED) {
                qmp_error_set(&err, "", "migration %s%s%s", qmp_migrate_status_to_string(info.status),
                              *info.error_desc ? ": " : "", info.error_desc);
                r = -EIO;
        }
        if (r >= 0 && !stream && fsync(fd) < 0)
                r = file_error(&err, "fsync", tmp);
        if (r >= 0 && !stream && rename(tmp, state_path) < 0)
                r = file_error(&err, "rename to", state_path);
        if (r >= 0 && !stream)
                (void)fsync_dir_of(state_path);
        if (r < 0) {
                if (!stream)
                        (void)unlink(tmp);
                _cleanup_free_ char *msg = xasprintf("save to %s", state_path);
                return qemu_op_fail(vm, msg, r, &err);
        }
        struct stat fst;
        log_info("vm %s: saved to %s (%lld bytes) in %" PRId64 " ms", vm->name, state_path,
                 fstat(fd, &fst) == 0 ? (long long)fst.st_size : -1LL, time_now_ms() - t0);
        return 0;
}

static int qemu_pause(vmm_vm_t *v, unsigned flags) {
        qemu_vm_t *vm = qemu_vm_from(v);
        qmp_error_t err = { 0 };
        int r = qmp_cmd_stop(vm->qmp, QEMU_CMD_TIMEOUT_MS, &err);
        return r < 0 ? qemu_op_fail(vm, "pause", r, &err) : 0;
}

static int qemu_cont(vmm_vm_t *v, unsigned flags) {
        qemu_vm_t *vm = qemu_vm_from(v);
        qmp_error_t err = { 0 };
        int r = qmp_cmd_cont(vm->qmp, QEMU_CMD_TIMEOUT_MS, &err);
        return r < 0 ? qemu_op_fail(vm, "resume", r, &err) : 0;
}

int qemu_kill(vmm_vm_t *v, unsigned flags) {
        qemu_vm_t *vm = qemu_vm_from(v);
        int r = qemu_process_kill(vm->proc, QEMU_KILL_TIMEOUT_MS);
        if (r < 0)
                log_error("vm %s: QEMU pid %d still there %d ms after SIGKILL: %s", vm->name,
                          (int)qemu_process_pid(vm->proc), QEMU_KILL_TIMEOUT_MS, strerror(-r));
        return r;
}

/* A guest with stopped CPUs cannot act on the power button, so a paused VM is killed at once
 * instead of after timeout_ms. */
static int qemu_shutdown(vmm_vm_t *v, int timeout_ms, unsigned flags) {
        qemu_vm_t *vm = qemu_vm_from(v);
        if (!qemu_process_alive(vm->proc))
                return 0;
        qmp_status_t st;
        qmp_error_t err = { 0 };
        int r = qmp_cmd_query_status(vm->qmp, QEMU_CMD_TIMEOUT_MS, &err, &st);
        if (r >= 0 && st.running)
                r = qmp_cmd_system_powerdown(vm->qmp, QEMU_CMD_TIMEOUT_MS, &err);
        else if (r >= 0)
                r = -EAGAIN;
        if (r >= 0 && qemu_process_wait(vm->proc, MAX(timeout_ms, 0)) >= 0) {
                log_info("vm %s: powered off", vm->name);
                return 0;
        }
        if (!qemu_process_alive(vm->proc))
                return 0;
        if (r == -EAGAIN)
                log_info("vm %s: is %s, cannot power off; killing QEMU", vm->name, qmp_run_state_to_string(st.state));
        else if (r < 0)
                log_warn("vm %s: power-off request failed (%s); killing QEMU", vm->name,
                         *err.desc ? err.desc : strerror(-r));
        else
                log_info("vm %s: did not power off within %d ms; killing QEMU", vm->name, timeout_ms);
        return qemu_kill(v, 0);
}

static vmm_run_state_t run_state_from_qmp(qmp_run_state_t s) {
        switch (s) {
        case QMP_RUN_STATE_RUNNING:
                return VMM_RUN_RUNNING;
        case QMP_RUN_STATE_INMIGRATE:
                return VMM_RUN_INMIGRATE;
        case QMP_RUN_STATE_SHUTDOWN:
                return VMM_RUN_SHUTDOWN;
        default:
                /* paused, postmigrate (saved), finish-migrate, prelaunch, io-error,
                 * guest-panicked, ...: the CPUs are not running */
                return VMM_RUN_PAUSED;
        }
}

static int qemu_status(vmm_vm_t *v, vmm_status_t *ret) {
        qemu_vm_t *vm = qemu_vm_from(v);
        pid_t pid = qemu_process_pid(vm->proc);
        if (!qemu_process_alive(vm->proc)) {
                *ret = (vmm_status_t){ .state = VMM_RUN_GONE, .pid = pid };
                return 0;
        }
        qmp_status_t st;
        qmp_error_t err = { 0 };
        int r = qmp_cmd_query_status(vm->qmp, QEMU_STATUS_TIMEOUT_MS, &err, &st);
        if (r < 0) {
                /* a monitor that fails because QEMU is exiting is not an error: it is gone */
                if (qemu_log_failure(vm, "status", r, &err)) {
                        *ret = (vmm_status_t){ .state = VMM_RUN_GONE, .pid = pid };
                        return 0;
                }
                return r;
        }
        *ret = (vmm_status_t){ .state = run_state_from_qmp(st.state), .pid = pid };
        return 0;
}

/* Network counters stay 0: QEMU offers none for -netdev user (see qmp-commands.c). */
static int qemu_stats(vmm_vm_t *v, vmm_stats_t *ret) {
        qemu_vm_t *vm = qemu_vm_from(v);
        vmm_stats_t s = { 0 };
        int r = qemu_process_usage(vm->proc, &s.cpu_ns, &s.rss_bytes);
        if (r < 0)
                return r;
        qmp_blockstats_t bs;
        qmp_error_t err = { 0 };
        r = qmp_cmd_query_blockstats(vm->qmp, QEMU_STATS_TIMEOUT_MS, &err, &bs);
        if (r == -ETIMEDOUT) {
                bs = (qmp_blockstats_t){ .rd_bytes = vm->block_rd_bytes, .wr_bytes = vm->block_wr_bytes };
        } else if (r < 0) {
                return qemu_op_fail(vm, "stats", r, &err);
        }
        s.block_rd_bytes = vm->block_rd_bytes = bs.rd_bytes;
        s.block_wr_bytes = vm->block_wr_bytes = bs.wr_bytes;
        *ret = s;
        return 0;
}

static int qemu_console_path(vmm_vm_t *v, char **ret) {
        *ret = xstrdup(qemu_vm_from(v)->console_path);
        return 0;
}

const vmm_driver_t vmm_qemu = {
        .name = "qemu",
        .boot = qemu_boot,
        .restore = qemu_restore,
        .attach = qemu_attach,
        .save = qemu_save,
        .pause = qemu_pause,
        .cont = qemu_cont,
        .shutdown = qemu_shutdown,
        .kill = qemu_kill,
        .status = qemu_status,
        .stats = qemu_stats,
        .console_path = qemu_console_path,
        .free = qemu_free,
        .slot_start = qemu_slot_start,
        .slot_restore = qemu_slot_restore,
        .agent_call = qemu_agent_call,
        .balloon_set = qemu_balloon_set,
        .balloon_get = qemu_balloon_get,
        .live_receive = qemu_live_receive,
        .live_send = qemu_live_send,
        .live_finish = qemu_live_finish,
};
