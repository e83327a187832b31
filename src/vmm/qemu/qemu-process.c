/* QEMU process management (see qemu-process.h): spawn, watch, kill, reap, /proc usage. */
#include "vmm/qemu/qemu-process.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "base/proc.h"
#include "base/util.h"

struct qemu_process {
        pthread_mutex_t lock;
        pid_t pid;
        int pidfd;     /* -1 without kernel support */
        bool is_child; /* ours to reap */
        bool gone;
        int exit_status; /* waitpid() status when we reaped it, else -1 */
};

/* glibc 2.36 has a wrapper, but calling the syscall keeps older libcs building. */
static int pidfd_send_signal_(int pidfd, int sig) {
#ifdef SYS_pidfd_send_signal
        return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

static qemu_process_t *process_new(pid_t pid, bool is_child) {
        qemu_process_t *p = xcalloc(1, sizeof *p);
        pthread_mutex_init(&p->lock, NULL);
        p->pid = pid;
        p->is_child = is_child;
        p->exit_status = -1;
        p->pidfd = proc_pidfd_open(pid);
        return p;
}

int qemu_process_spawn(char *const *argv, int out_fd, qemu_process_t **ret) {
        if (!argv || !argv[0] || out_fd < 0)
                return -EINVAL;
        /* its own session: a ^C at the agent's terminal, or the agent's death, leaves it running */
        proc_spawn_opts_t opts = { .out_fd = out_fd, .new_session = true };
        pid_t pid;
        int r = proc_spawn_daemon(argv, &opts, &pid);
        if (r < 0)
                return r;
        *ret = process_new(pid, true);
        return 0;
}

int qemu_process_spawn_jailed(const jail_t *j, char *const *argv, int out_fd, qemu_process_t **ret,
                              const char **ret_step) {
        if (!j || !argv || !argv[0] || out_fd < 0)
                return -EINVAL;
        pid_t pid;
        int r = jail_spawn(j, argv, out_fd, &pid, ret_step);
        if (r < 0)
                return r;
        *ret = process_new(pid, true);
        return 0;
}

/* ppid field of /proc/PID/stat, or -1. */
static pid_t proc_ppid(pid_t pid) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        _cleanup_free_ char *s = NULL;
        if (file_read(path, &s, NULL) < 0)
                return -1;
        char *p = strrchr(s, ')');
        char state;
        int ppid;
        if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
                return -1;
        return ppid;
}

int qemu_process_open(pid_t pid, qemu_process_t **ret) {
        if (pid <= 0)
                return -EINVAL;
        if (kill(pid, 0) < 0 && errno == ESRCH)
                return -ESRCH;
        qemu_process_t *p = process_new(pid, proc_ppid(pid) == getpid());
        if (p->pidfd < 0 && errno == ESRCH) {
                qemu_process_free(p);
                return -ESRCH;
        }
        if (!qemu_process_alive(p)) {
                qemu_process_free(p);
                return -ESRCH;
        }
        *ret = p;
        return 0;
}

qemu_process_t *qemu_process_free(qemu_process_t *p) {
        if (!p)
                return NULL;
        if (p->pidfd >= 0)
                close(p->pidfd);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
}

pid_t qemu_process_pid(qemu_process_t *p) { return p->pid; }

int qemu_process_exit_status(qemu_process_t *p) {
        pthread_mutex_lock(&p->lock);
        int s = p->exit_status;
        pthread_mutex_unlock(&p->lock);
        return s;
}

/* Whether a process that is not ours to reap has exited (a zombie counts as exited). */
static bool foreign_exited(qemu_process_t *p) {
        if (p->pidfd >= 0) {
                struct pollfd pf = { .fd = p->pidfd, .events = POLLIN };
                return poll(&pf, 1, 0) > 0;
        }
        if (kill(p->pid, 0) < 0 && errno == ESRCH)
                return true;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)p->pid);
        _cleanup_free_ char *s = NULL;
        if (file_read(path, &s, NULL) < 0)
                return true;
        char *paren = strrchr(s, ')');
        return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

bool qemu_process_alive(qemu_process_t *p) {
        pthread_mutex_lock(&p->lock);
        if (!p->gone) {
                if (p->is_child) {
                        int status;
                        pid_t w = waitpid(p->pid, &status, WNOHANG);
                        if (w == p->pid) {
                                p->gone = true;
                                p->exit_status = status;
                        } else if (w < 0 && errno == ECHILD)
                                /* reaped elsewhere (or SIGCHLD ignored): just watch it */
                                p->is_child = false;
                }
                if (!p->is_child && foreign_exited(p))
                        p->gone = true;
        }
        bool alive = !p->gone;
        pthread_mutex_unlock(&p->lock);
        return alive;
}

int qemu_process_wait(qemu_process_t *p, int timeout_ms) {
        int64_t deadline = time_now_ms() + MAX(timeout_ms, 0);
        for (;;) {
                if (!qemu_process_alive(p))
                        return 0;
                int64_t left = deadline - time_now_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                if (p->pidfd >= 0) {
                        struct pollfd pf = { .fd = p->pidfd, .events = POLLIN };
                        (void)poll(&pf, 1, (int)MIN(left, (int64_t)100));
                } else
                        time_sleep_ms(MIN(left, (int64_t)10));
        }
}

int qemu_process_kill(qemu_process_t *p, int timeout_ms) {
        if (!qemu_process_alive(p))
                return 0;
        int k = p->pidfd >= 0 ? pidfd_send_signal_(p->pidfd, SIGKILL) : kill(p->pid, SIGKILL);
        if (k < 0 && errno != ESRCH)
                return negative_errno();
        return qemu_process_wait(p, timeout_ms);
}

int qemu_process_usage(qemu_process_t *p, uint64_t *ret_cpu_ns, uint64_t *ret_rss_bytes) {
        if (!qemu_process_alive(p))
                return -ESRCH;
        char path[64];
        _cleanup_free_ char *stat = NULL, *statm = NULL;
        snprintf(path, sizeof path, "/proc/%d/stat", (int)p->pid);
        if (file_read(path, &stat, NULL) < 0)
                return -ESRCH;
        snprintf(path, sizeof path, "/proc/%d/statm", (int)p->pid);
        if (file_read(path, &statm, NULL) < 0)
                return -ESRCH;
        /* after "(comm)": field 3 is the state, utime and stime are fields 14 and 15 */
        char *s = strrchr(stat, ')');
        unsigned long long utime, stime, size, resident;
        if (!s || sscanf(s + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
                return -EBADMSG;
        if (sscanf(statm, "%llu %llu", &size, &resident) != 2)
                return -EBADMSG;
        long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        *ret_cpu_ns = (uint64_t)(utime + stime) * (UINT64_C(1000000000) / (uint64_t)(hz > 0 ? hz : 100));
        *ret_rss_bytes = (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
        return 0;
}

bool qemu_process_matches(pid_t pid, const char *needle) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        _cleanup_free_ char *cmd = NULL;
        size_t len = 0;
        if (file_read(path, &cmd, &len) < 0 || len == 0)
                return false;
        const char *base = strrchr(cmd, '/');
        if (!str_startswith(base ? base + 1 : cmd, "qemu-system-"))
                return false;
        for (size_t off = 0; off < len; off += strlen(cmd + off) + 1)
                if (strstr(cmd + off, needle))
                        return true;
        return false;
}

int qemu_pidfile_read(const char *path, pid_t *ret) {
        _cleanup_free_ char *s = NULL;
        /* the run directory is a confined QEMU's to write: never follow a link there */
        int r = file_read_tail_safe(path, 64, &s, NULL);
        if (r < 0)
                return r;
        s[strcspn(s, " \t\r\n")] = 0;
        int64_t v;
        r = parse_int64(s, 1, INT_MAX, &v);
        if (r < 0)
                return -EINVAL;
        *ret = (pid_t)v;
        return 0;
}

char *qemu_log_tail(const char *path, off_t from, size_t max) {
        _cleanup_close_ int fd = file_open_safe(path, O_RDONLY, 0);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= from)
                return xstrdup("");
        off_t start = MAX(from, st.st_size - (off_t)max);
        size_t n = (size_t)(st.st_size - start);
        _cleanup_free_ char *buf = xcalloc(n + 1, 1);
        ssize_t got = pread(fd, buf, n, start);
        if (got <= 0)
                return xstrdup("");
        buf[got] = 0;
        /* join lines with "; ", dropping blank ones and control characters */
        char *out = xcalloc((size_t)got * 2 + 1, 1), *o = out;
        char *save = NULL;
        for (char *line = strtok_r(buf, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
                if (!*line)
                        continue;
                if (o != out) {
                        *o++ = ';';
                        *o++ = ' ';
                }
                for (char *c = line; *c; c++)
                        *o++ = (unsigned char)*c < 0x20 ? ' ' : *c;
        }
        *o = 0;
        return out;
}
