/* Implementation of proc.h: one posix_spawn set-up for both entry points, and proc_run's wait,
 * which polls the output pipe and the child (a pidfd) against one deadline. */
#include "base/proc.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "base/util.h"

extern char **environ;

/* How long a killed helper's process group gets to let go of the output pipe. */
#define PROC_KILL_DRAIN_MS 1000
/* Poll period when the kernel has no pidfd (Linux < 5.3): the child's exit is checked this often. */
#define PROC_POLL_TICK_MS 50

/* posix_spawnp with stdin from /dev/null, stdout on out_fd (-1: /dev/null), stderr on err_fd
 * (-1: /dev/null; -2: left as ours), every other descriptor closed, clean signal state, in its
 * own process group or (new_session) its own session. Returns 0 or exec's -errno. */
static int spawn(char *const argv[], int out_fd, int err_fd, bool new_session, pid_t *ret_pid) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        int r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&at);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        /* stdout and stderr first: out_fd may itself be 0 when our caller runs without stdin */
        if (out_fd >= 0)
                r = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
        else
                r = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        if (r == 0 && err_fd != -2)
                r = posix_spawn_file_actions_adddup2(&fa, err_fd >= 0 ? err_fd : STDOUT_FILENO, STDERR_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        /* also descriptors another thread opened without O_CLOEXEC */
        if (r == 0)
                r = posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);

        /* nothing our threads blocked or ignored reaches the child; its own group (or session)
         * keeps a ^C at our terminal away from it and lets proc_run kill all it started */
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
        flags |= new_session ? POSIX_SPAWN_SETSID : POSIX_SPAWN_SETPGROUP;
        if (r == 0)
                r = posix_spawnattr_setflags(&at, flags);
        if (r == 0)
                r = posix_spawnattr_setpgroup(&at, 0);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&at, &none);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&at, &all);
        /* glibc runs the child on a vfork-style clone and returns exec's errno from it */
        if (r == 0)
                r = posix_spawnp(ret_pid, argv[0], &fa, &at, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        return -r;
}

int proc_spawn_daemon(char *const argv[], const proc_spawn_opts_t *opts, pid_t *ret_pid) {
        if (!argv || !argv[0] || !opts || !ret_pid)
                return -EINVAL;
        return spawn(argv, opts->out_fd, opts->out_fd, opts->new_session, ret_pid);
}

int proc_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
        return (int)syscall(SYS_pidfd_open, pid, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

/* The output of a helper, kept up to cap bytes. */
typedef struct output {
        char *buf;
        size_t len, cap;
} output_t;

/* Reads once from fd into o (dropping what is beyond its cap). 0 at EOF, 1 when it read or
 * was interrupted, -errno on error. */
static int output_read(output_t *o, int fd) {
        char chunk[16384];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 1 : negative_errno();
        if (n == 0)
                return 0;
        size_t take = MIN((size_t)n, o->cap - o->len);
        memcpy(o->buf + o->len, chunk, take);
        o->len += take;
        return 1;
}

/* After the child exited: what it wrote is already in the pipe. Read that much, but do not wait
 * for EOF, which a grandchild that inherited the pipe could hold off for ever. The pipe holds at
 * most 64 KiB by default, so a few reads empty it. */
static void output_drain_ready(output_t *o, int fd) {
        for (int i = 0; i < 64; i++) {
                struct pollfd pf = { .fd = fd, .events = POLLIN };
                if (poll(&pf, 1, 0) <= 0 || output_read(o, fd) <= 0)
                        return;
        }
}

/* After the kill: read to EOF, that is until every process that held the pipe has exited, so
 * that none of them outlives the call. Bounded, for one that left our process group. */
static void output_drain_eof(output_t *o, int fd) {
        int64_t deadline = time_now_ms() + PROC_KILL_DRAIN_MS;
        for (;;) {
                int64_t left = deadline - time_now_ms();
                struct pollfd pf = { .fd = fd, .events = POLLIN };
                if (left <= 0 || (poll(&pf, 1, (int)left) < 0 && errno != EINTR))
                        return;
                if (pf.revents && output_read(o, fd) <= 0)
                        return;
        }
}

static int wait_blocking(pid_t pid, int *ret_status) {
        while (waitpid(pid, ret_status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return 0;
}

int proc_run_full(char *const argv[], const proc_run_opts_t *opts, char **ret_output) {
        if (!argv || !argv[0] || !opts || opts->timeout_ms <= 0)
                return -EINVAL;
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        _cleanup_close_ int rd = pipefd[0];
        pid_t pid;
        int r = spawn(argv, pipefd[1], opts->stderr_inherit ? -2 : pipefd[1], false, &pid);
        close(pipefd[1]);
        if (r < 0)
                return r;

        int64_t deadline = time_now_ms() + opts->timeout_ms;
        _cleanup_close_ int pidfd = proc_pidfd_open(pid);
        output_t o = { .cap = opts->output_max ? opts->output_max : PROC_OUTPUT_MAX };
        o.buf = xcalloc(1, o.cap + 1);
        bool eof = false, exited = false;
        int status = 0;
        while (!exited) {
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid) {
                        exited = true;
                        if (!eof)
                                output_drain_ready(&o, rd);
                        break;
                }
                if (w < 0 && errno != EINTR) {
                        /* reaped elsewhere (SIGCHLD ignored?): its pid is no longer ours to signal */
                        r = negative_errno();
                        break;
                }
                int64_t left = deadline - time_now_ms();
                if (left <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                /* [0] the output until its EOF, [1] the child's exit when there is a pidfd */
                struct pollfd pf[2] = { { .fd = eof ? -1 : rd, .events = POLLIN },
                                        { .fd = pidfd, .events = POLLIN } };
                int wait_ms = (int)MIN(left, pidfd >= 0 ? (int64_t)INT32_MAX : (int64_t)PROC_POLL_TICK_MS);
                if (poll(pf, 2, wait_ms) < 0 && errno != EINTR) {
                        r = negative_errno();
                        break;
                }
                if (!eof && pf[0].revents)
                        eof = output_read(&o, rd) <= 0;
        }
        if (!exited && r != -ECHILD) {
                /* the child is not reaped yet, so its pid (and group id) cannot have been reused */
                (void)kill(-pid, SIGKILL);
                (void)kill(pid, SIGKILL);
                (void)wait_blocking(pid, &status);
                output_drain_eof(&o, rd);
        }
        o.buf[o.len] = 0;
        if (ret_output)
                *ret_output = o.buf;
        else
                free(o.buf);
        if (!exited)
                return r;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPROTO;
}

int proc_run(char *const argv[], int timeout_ms, char **ret_output) {
        proc_run_opts_t opts = { .timeout_ms = timeout_ms };
        return proc_run_full(argv, &opts, ret_output);
}
