/* The processes a local cluster starts and stops: spawning detached with a log file, pid files,
 * recognising a process as ours from /proc/PID/cmdline (so a reused pid is never killed), and
 * stopping with TERM, then KILL. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Starts argv[0] with argv in a new session (setsid), stdin from /dev/null, stdout and stderr
 * appended to log_path, every other descriptor closed (proc_spawn_daemon). netns_fd >= 0: join
 * that network namespace first (netns_enter, in a forked child). Returns once exec succeeded; a failure before exec (bad exe,
 * setns) comes back as its -errno, with *ret_step naming the step ("exec", "setns", ...). The
 * child stays our child: reap it with process_reap. */
int process_spawn(char *const argv[], int netns_fd, const char *log_path, pid_t *ret_pid,
                  const char **ret_step);

/* "PID\n", written atomically (temporary file + rename). */
int process_pidfile_write(const char *path, pid_t pid);
/* -ENOENT if missing, -EBADMSG unless it holds one decimal pid > 1. */
int process_pidfile_read(const char *path, pid_t *ret);

/* The argv of pid from /proc/PID/cmdline (NULL-terminated, malloc'd). -ESRCH if gone. */
int process_cmdline(pid_t pid, char ***ret);
/* The --data argument of argv if it is `EXE oracle|node ... --data DIR ...` (EXE must equal exe
 * unless exe is NULL, e.g. when cluster.json is lost), else NULL. Points into argv. */
const char *process_argv_data_dir(char *const *argv, const char *exe);
/* Whether argv is a process the cluster started with data_dir (see process_argv_data_dir). */
bool process_argv_is_member(char *const *argv, const char *exe, const char *data_dir);
bool process_is_member(pid_t pid, const char *exe, const char *data_dir);
/* Whether argv[0] is a QEMU system emulator (basename qemu-system-*). */
bool process_argv_is_qemu(char *const *argv);

/* The session id of pid (field 6 of /proc/PID/stat); -ESRCH if gone. */
int process_sid(pid_t pid, pid_t *ret);

/* Alive and not a zombie. */
bool process_alive(pid_t pid);
/* If pid is our child and has exited, reaps it: 1 and its wait status; 0 if it runs or is not
 * our child. */
int process_reap(pid_t pid, int *ret_status);

/* Sends TERM to every pid, waits up to timeout_ms for all to go, then KILLs the rest and waits
 * up to 5 s more. Returns the number that needed KILL, or -EBUSY if some survived even that. */
int process_stop(const pid_t *pids, size_t n, int64_t timeout_ms);

/* Every process for which match returns true (pid, argv). */
int process_scan(bool (*match)(pid_t pid, char *const *argv, void *userdata), void *userdata, pid_t **ret,
                 size_t *ret_n);
