/* Starting programs from an argv array, never through a shell: the one way the project runs
 * helpers (qemu-img, ip, the guest recipe) and starts long-running children (QEMU, HAProxy, the
 * daemons of a local cluster). Built on posix_spawn, which is safe in a multithreaded process
 * (no allocation or lock between fork and exec in our code) and reports exec's errno itself. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* What proc_run keeps of a helper's output; more is read and dropped, so it never blocks. */
#define PROC_OUTPUT_MAX 65536

/* Runs argv[0] (searched in $PATH when it has no '/') with argv, stdin from /dev/null, stdout
 * and stderr into one pipe, in its own process group, with a clean signal mask and default
 * signal dispositions. Waits at most timeout_ms (> 0) in all, output or not.
 *
 * Returns 0 when it exited 0; the -errno of exec when it cannot be started (-ENOENT: no such
 * program); -EPROTO when it exited non-zero or was killed by a signal; -ETIMEDOUT when the
 * timeout passed: its whole process group was then killed with SIGKILL and the child reaped.
 * -EINVAL for a bad argument.
 *
 * *ret_output (when non-NULL) gets its output, NUL-terminated, at most PROC_OUTPUT_MAX bytes,
 * malloc'd, whenever it ran: also on -EPROTO and -ETIMEDOUT, where it explains the failure. */
int proc_run(char *const argv[], int timeout_ms, char **ret_output);

typedef struct proc_run_opts {
        int timeout_ms;      /* > 0 */
        size_t output_max;   /* bytes of output kept; 0 means PROC_OUTPUT_MAX */
        bool stderr_inherit; /* stderr stays ours (its messages go to our log); only stdout is captured */
} proc_run_opts_t;

/* proc_run with options, for callers that parse the output (keep stderr out of it) or expect
 * more than PROC_OUTPUT_MAX of it. Output beyond output_max is dropped (the caller's parser
 * then fails on it). */
int proc_run_full(char *const argv[], const proc_run_opts_t *opts, char **ret_output);

typedef struct proc_spawn_opts {
        int out_fd;       /* the child's stdout and stderr (a log file); -1 means /dev/null */
        bool new_session; /* setsid: own session and group, no controlling terminal; else own group */
} proc_spawn_opts_t;

/* Starts a long-running child: argv[0] (searched in $PATH when it has no '/') with argv and our
 * environment, stdin from /dev/null, stdout and stderr on opts->out_fd, no other descriptor
 * inherited (close-on-exec or not), clean signal mask and default dispositions, in its own
 * process group or session. Returns 0 and the pid once exec has succeeded; the -errno of exec
 * (-ENOENT, -EACCES, -ENOEXEC, ...) when it failed, with nothing left to reap. The child is
 * ours: the caller reaps it (waitpid). */
int proc_spawn_daemon(char *const argv[], const proc_spawn_opts_t *opts, pid_t *ret_pid);
/* A pidfd for pid (pidfd_open(2), called as a syscall so that libcs without the wrapper build),
 * -1 with errno when the kernel has none. */
int proc_pidfd_open(pid_t pid);
