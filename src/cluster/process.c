/* Implementation of process.h. */
#include "cluster/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "base/proc.h"
#include "base/util.h"
#include "cluster/netns.h"

/* What a child reports through the CLOEXEC pipe when it fails before exec. */
struct spawn_error {
        int step;
        int err;
};

static const char *const spawn_steps[] = { "exec", "setsid", "setns", "dup2" };
enum { STEP_EXEC, STEP_SETSID, STEP_SETNS, STEP_DUP2 };

_noreturn_ static void child_fail(int fd, int step, int err) {
        struct spawn_error e = { step, err };
        ssize_t w = write(fd, &e, sizeof e);
        (void)w;
        _exit(127);
}

/* The one start that cannot be a posix_spawn: joining a network namespace (setns, and a
 * private mount of its /sys) must happen in the child between fork and exec, and posix_spawn
 * has no action for it. Only `cluster up` as root comes here. */
static int spawn_in_netns(char *const argv[], int netns_fd, int log_fd, pid_t *ret_pid, const char **ret_step) {
        _cleanup_close_ int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0)
                return negative_errno();
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        _cleanup_close_ int rd = pipefd[0];
        pid_t pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                /* child: async-signal-safe calls only from here on */
                int wr = pipefd[1];
                sigset_t all;
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                struct sigaction dfl = { .sa_handler = SIG_DFL };
                for (int sig = 1; sig < NSIG; sig++)
                        (void)sigaction(sig, &dfl, NULL);
                if (setsid() < 0)
                        child_fail(wr, STEP_SETSID, errno);
                int r = netns_enter(netns_fd);
                if (r < 0)
                        child_fail(wr, STEP_SETNS, -r);
                if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
                    dup2(log_fd, STDERR_FILENO) < 0)
                        child_fail(wr, STEP_DUP2, errno);
                /* nothing else leaks into the child: every other descriptor closes on exec */
                (void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
                execv(argv[0], argv);
                child_fail(wr, STEP_EXEC, errno);
        }
        close(pipefd[1]);

        struct spawn_error e;
        ssize_t n;
        do
                n = read(rd, &e, sizeof e);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof e) {
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                bool known = e.step >= 0 && (size_t)e.step < ELEMENTSOF(spawn_steps);
                if (ret_step)
                        *ret_step = known ? spawn_steps[e.step] : "spawn";
                return e.err > 0 ? -e.err : -EIO;
        }
        *ret_pid = pid;
        return 0;
}

int process_spawn(char *const argv[], int netns_fd, const char *log_path, pid_t *ret_pid,
                  const char **ret_step) {
        if (!argv || !argv[0] || argv[0][0] != '/')
                return -EINVAL;
        _cleanup_close_ int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0)
                return negative_errno();

        /* one header line per start, so a log appended across restarts stays readable */
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", gmtime_r(&now, &tm));
        _cleanup_free_ char *header = xasprintf("--- %s UTC: starting", stamp);
        for (char *const *a = argv; *a; a++) {
                char *h = xasprintf("%s %s", header, *a);
                free(header);
                header = h;
        }
        dprintf(log_fd, "%s\n", header);

        if (netns_fd >= 0)
                return spawn_in_netns(argv, netns_fd, log_fd, ret_pid, ret_step);
        proc_spawn_opts_t opts = { .out_fd = log_fd, .new_session = true };
        int r = proc_spawn_daemon(argv, &opts, ret_pid);
        if (r < 0 && ret_step)
                *ret_step = "exec";
        return r;
}

int process_pidfile_write(const char *path, pid_t pid) {
        if (pid <= 1)
                return -EINVAL;
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d\n", (int)pid);
        return file_write_atomic(path, buf, (size_t)n);
}

int process_pidfile_read(const char *path, pid_t *ret) {
        _cleanup_free_ char *text = NULL;
        int r = file_read(path, &text, NULL);
        if (r < 0)
                return r;
        size_t len = strlen(text);
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                text[--len] = 0;
        int64_t v;
        if (parse_int64(text, 2, INT32_MAX, &v) < 0)
                return -EBADMSG;
        *ret = (pid_t)v;
        return 0;
}

int process_cmdline(pid_t pid, char ***ret) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = file_read(path, &data, &len);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        size_t count = 0;
        for (size_t i = 0; i < len; i++)
                if (data[i] == 0)
                        count++;
        if (len > 0 && data[len - 1] != 0)
                count++; /* a process may rewrite its cmdline without the final NUL */
        char **v = xcalloc(count + 1, sizeof *v);
        size_t k = 0;
        for (size_t i = 0; i < len && k < count; i += strlen(data + i) + 1)
                v[k++] = xstrdup(data + i);
        *ret = v;
        return 0;
}

const char *process_argv_data_dir(char *const *argv, const char *exe) {
        if (!argv || !argv[0] || !argv[1])
                return NULL;
        if (exe && !streq(argv[0], exe))
                return NULL;
        if (!streq(argv[1], "oracle") && !streq(argv[1], "node"))
                return NULL;
        for (size_t i = 2; argv[i] && argv[i + 1]; i++)
                if (streq(argv[i], "--data"))
                        return argv[i + 1];
        return NULL;
}

bool process_argv_is_member(char *const *argv, const char *exe, const char *data_dir) {
        const char *d = process_argv_data_dir(argv, exe);
        return d && data_dir && streq(d, data_dir);
}

bool process_is_member(pid_t pid, const char *exe, const char *data_dir) {
        _cleanup_strv_free_ char **argv = NULL;
        if (!process_alive(pid) || process_cmdline(pid, &argv) < 0)
                return false;
        return process_argv_is_member(argv, exe, data_dir);
}

bool process_argv_is_qemu(char *const *argv) {
        if (!argv || !argv[0])
                return false;
        const char *base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];
        return str_startswith(base, "qemu-system-");
}

/* The fields after "PID (comm) " of /proc/PID/stat (comm may hold anything, even ") "). */
static int stat_fields(pid_t pid, char **ret_stat, const char **ret_fields) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        _cleanup_free_ char *stat = NULL;
        int r = file_read(path, &stat, NULL);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        const char *p = strrchr(stat, ')');
        if (!p || p[1] != ' ')
                return -EBADMSG;
        *ret_fields = p + 2;
        *ret_stat = TAKE_PTR(stat);
        return 0;
}

int process_sid(pid_t pid, pid_t *ret) {
        _cleanup_free_ char *stat = NULL;
        const char *f;
        int r = stat_fields(pid, &stat, &f);
        if (r < 0)
                return r;
        int ppid, pgrp, sid;
        char state;
        if (sscanf(f, "%c %d %d %d", &state, &ppid, &pgrp, &sid) != 4)
                return -EBADMSG;
        *ret = (pid_t)sid;
        return 0;
}

bool process_alive(pid_t pid) {
        if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
                return false;
        _cleanup_free_ char *stat = NULL;
        const char *f;
        int r = stat_fields(pid, &stat, &f);
        if (r == -ESRCH)
                return false;
        if (r < 0)
                return true; /* it exists; we just cannot tell its state */
        return f[0] != 'Z' && f[0] != 'X';
}

int process_reap(pid_t pid, int *ret_status) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r != pid)
                return 0;
        if (ret_status)
                *ret_status = status;
        return 1;
}

/* Waits until no pid is alive or the deadline passes; true if all are gone. */
static bool wait_gone(const pid_t *pids, size_t n, int64_t timeout_ms) {
        int64_t deadline = time_now_ms() + timeout_ms;
        for (;;) {
                bool any = false;
                for (size_t i = 0; i < n; i++) {
                        process_reap(pids[i], NULL);
                        if (process_alive(pids[i]))
                                any = true;
                }
                if (!any)
                        return true;
                if (time_now_ms() >= deadline)
                        return false;
                time_sleep_ms(50);
        }
}

int process_stop(const pid_t *pids, size_t n, int64_t timeout_ms) {
        for (size_t i = 0; i < n; i++)
                if (process_alive(pids[i]))
                        (void)kill(pids[i], SIGTERM);
        if (wait_gone(pids, n, timeout_ms))
                return 0;
        int killed = 0;
        for (size_t i = 0; i < n; i++)
                if (process_alive(pids[i]) && kill(pids[i], SIGKILL) == 0)
                        killed++;
        if (!wait_gone(pids, n, 5000))
                return -EBUSY;
        return killed;
}

int process_scan(bool (*match)(pid_t pid, char *const *argv, void *userdata), void *userdata, pid_t **ret,
                 size_t *ret_n) {
        DIR *d = opendir("/proc");
        if (!d)
                return negative_errno();
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                int64_t v;
                if (parse_int64(de->d_name, 1, INT32_MAX, &v) < 0 || v == getpid())
                        continue;
                _cleanup_strv_free_ char **argv = NULL;
                if (process_cmdline((pid_t)v, &argv) < 0 || !argv[0] || !process_alive((pid_t)v))
                        continue;
                if (!match((pid_t)v, argv, userdata))
                        continue;
                pid_t *np = realloc(pids, (n + 1) * sizeof *pids);
                if (!np)
                        abort();
                pids = np;
                pids[n++] = (pid_t)v;
        }
        closedir(d);
        *ret = TAKE_PTR(pids);
        *ret_n = n;
        return 0;
}
