/* The QEMU process, apart from its monitor: spawn it detached from us (own session, log file,
 * no inherited fds), find it again after an agent restart, tell whether it is still there,
 * kill it and reap it, read its CPU time and memory from /proc.
 *
 * A pidfd (Linux >= 5.3) pins the process, so signals and liveness checks never hit a recycled
 * pid; without pidfd support we fall back to kill(pid, 0). A process we spawned is our child
 * and is reaped with waitpid(); after an agent restart it is not, and we only watch it.
 *
 * Thread safety: every function may be called from several threads on one handle. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/jail.h"
#include "base/macro.h"

typedef struct qemu_process qemu_process_t;

/* Start argv (argv[0] is searched in PATH when it has no '/') in a new session, with stdin
 * from /dev/null, stdout and stderr on out_fd and no other inherited fds, signal mask and
 * dispositions reset. Returns 0 once exec has succeeded, -ENOENT/-EACCES/... when it failed. */
int qemu_process_spawn(char *const *argv, int out_fd, qemu_process_t **ret);
/* The same in jail j (base/jail.h: its session, mount namespace, uid, cgroups); *ret_step names
 * the step of the jail's set-up that failed. */
int qemu_process_spawn_jailed(const jail_t *j, char *const *argv, int out_fd, qemu_process_t **ret,
                              const char **ret_step);

/* Watch a running process that may or may not be our child. -ESRCH if it is gone. */
int qemu_process_open(pid_t pid, qemu_process_t **ret);

/* Closes the pidfd; never signals the process. Accepts NULL, returns NULL. */
qemu_process_t *qemu_process_free(qemu_process_t *p);
static inline void qemu_process_freep(qemu_process_t **p) { qemu_process_free(*p); }

pid_t qemu_process_pid(qemu_process_t *p);
/* false once the process has exited; reaps it when it is our child. */
bool qemu_process_alive(qemu_process_t *p);
/* 0 once the process has exited, -ETIMEDOUT after timeout_ms. */
int qemu_process_wait(qemu_process_t *p, int timeout_ms);
/* SIGKILL, then wait up to timeout_ms for it to be gone (and reaped if our child). */
int qemu_process_kill(qemu_process_t *p, int timeout_ms);
/* Exit status as from waitpid() when we reaped it, else -1. */
int qemu_process_exit_status(qemu_process_t *p);

/* CPU time (user+system) and resident set size from /proc/PID. -ESRCH when gone. */
int qemu_process_usage(qemu_process_t *p, uint64_t *ret_cpu_ns, uint64_t *ret_rss_bytes);

/* Whether pid runs a qemu-system-* binary with an argument containing needle (we pass the QMP
 * socket path, which names the VM's run directory). */
bool qemu_process_matches(pid_t pid, const char *needle);

/* Read a pidfile: 0 and the pid, -ENOENT when absent, -EINVAL when not a pid. */
int qemu_pidfile_read(const char *path, pid_t *ret);

/* The end of a log file from offset from on, at most max bytes, lines joined with "; ", for
 * error messages (malloc'd; "" when there is nothing). Never fails. */
char *qemu_log_tail(const char *path, off_t from, size_t max);
