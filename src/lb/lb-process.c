/* The HAProxy processes of the load balancer: start, hand-over, reaping, stop.
 *
 * HAProxy runs in the foreground (-db: no daemon, no master process) as our plain child, so its
 * pid is the one we waitpid and kill. It gets its own process group, a clean signal state, and
 * only stdin (/dev/null) and stdout/stderr (DIR/haproxy.log) open: the Oracle's sockets and
 * sqlite descriptors stay out. Each process has its own admin socket, DIR/haproxy-N.sock; the
 * current one is named in DIR/haproxy.pid ("PID\nSOCKET\n").
 *
 * A reload starts the new process with "-x OLD.sock -sf OLDPID": it fetches the listening
 * sockets from the old one over its admin socket (expose-fd listeners), so no connection is
 * refused in between, then sends it SIGUSR1 (finish your sessions, then exit). In 2.6 a failed
 * "-x" is fatal, so when the old process cannot hand its listeners over the start is tried again
 * without it (binding beside the old one, SO_REUSEPORT). Old processes are kept in lb->retiring
 * until reaped; hard-stop-after bounds their life. A start that fails (the process exits, or its
 * socket stays silent LB_START_TIMEOUT_MS) leaves the old process in place, and the next
 * attempts are backed off. */
#include "lb/lb-internal.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"
#include "lb/lb-runtime.h"

#define LB_START_TIMEOUT_MS 10000
#define LB_STOP_TIMEOUT_MS 3000
#define LB_BACKOFF_FIRST_MS 500
#define LB_BACKOFF_MAX_MS 10000

/* Whether p has exited; reaps it when it is our child. */
static bool proc_gone(const lb_proc_t *p) {
        if (p->child) {
                pid_t r = waitpid(p->pid, NULL, WNOHANG);
                if (r == p->pid)
                        return true;
                if (r == 0 || errno != ECHILD)
                        return false;
                /* ECHILD: someone reaped it for us (SIGCHLD ignored?): ask the kernel */
        }
        return kill(p->pid, 0) < 0 && errno == ESRCH;
}

void lb_process_kill(lb_proc_t *p) {
        if (p->pid > 0 && !proc_gone(p)) {
                (void)kill(p->pid, SIGTERM); /* HAProxy's hard stop */
                int64_t deadline = time_now_ms() + LB_STOP_TIMEOUT_MS;
                bool gone;
                while (!(gone = proc_gone(p)) && time_now_ms() < deadline)
                        time_sleep_ms(5);
                if (!gone) {
                        (void)kill(p->pid, SIGKILL);
                        while (p->child && waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
                                ;
                }
        }
        if (p->sock)
                (void)unlink(p->sock);
        free(p->sock);
        *p = (lb_proc_t){ 0 };
}

/* Moves lb->cur to the retiring ones; with soft, tells it to finish its sessions and exit. */
static void proc_retire(lb_t *lb, bool soft) {
        if (!lb->cur.pid)
                return;
        if (soft)
                (void)kill(lb->cur.pid, SIGUSR1);
        lb_proc_t *v = realloc(lb->retiring, (lb->n_retiring + 1) * sizeof *v);
        if (!v)
                abort();
        lb->retiring = v;
        lb->retiring[lb->n_retiring++] = lb->cur;
        lb->cur = (lb_proc_t){ 0 };
}

/* Removes the pid file if it names the current process (not one of another lb_t). */
static void pidfile_remove(const lb_t *lb) {
        _cleanup_free_ char *text = NULL;
        int64_t pid;
        if (!lb->cur.pid || file_read(lb->pid_path, &text, NULL) < 0)
                return;
        text[strcspn(text, "\n")] = 0;
        if (parse_int64(text, 1, INT32_MAX, &pid) >= 0 && pid == lb->cur.pid)
                (void)unlink(lb->pid_path);
}

void lb_process_stop(lb_t *lb) {
        pidfile_remove(lb);
        proc_retire(lb, true);
}

void lb_process_free(lb_t *lb) {
        pidfile_remove(lb);
        lb_process_kill(&lb->cur);
        for (size_t i = 0; i < lb->n_retiring; i++)
                lb_process_kill(&lb->retiring[i]);
        free(lb->retiring);
        lb->retiring = NULL;
        lb->n_retiring = 0;
}

void lb_process_reap(lb_t *lb) {
        for (size_t i = 0; i < lb->n_retiring;) {
                if (!proc_gone(&lb->retiring[i])) {
                        i++;
                        continue;
                }
                lb->retiring[i].pid = 0;
                lb_process_kill(&lb->retiring[i]); /* its socket file and memory */
                lb->retiring[i] = lb->retiring[--lb->n_retiring];
        }
        if (lb->cur.pid && proc_gone(&lb->cur)) {
                if (lb->n_svcs > 0) {
                        lb->restarts++;
                        log_warn("haproxy %d died; it will be started again", (int)lb->cur.pid);
                }
                pidfile_remove(lb);
                lb->cur.pid = 0;
                lb_process_kill(&lb->cur);
        }
}

/* Runs haproxy -db -f CFG [-x OLD.sock] [-sf OLDPID]. */
static int proc_spawn(const lb_t *lb, const lb_proc_t *old, bool take_listeners, pid_t *ret_pid) {
        char old_pid[16];
        snprintf(old_pid, sizeof old_pid, "%d", old ? (int)old->pid : 0);
        char *argv[10] = { lb->haproxy, (char *)"-db", (char *)"-f", lb->cfg_path };
        size_t n = 4;
        if (old && take_listeners) {
                argv[n++] = (char *)"-x";
                argv[n++] = old->sock;
        }
        if (old) {
                argv[n++] = (char *)"-sf"; /* last: it takes every argument after it as a pid */
                argv[n++] = old_pid;
        }
        _cleanup_close_ int log_fd = open(lb->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (log_fd < 0)
                return negative_errno();

        /* own process group (a ^C at the Oracle's terminal is not for HAProxy); no blocked or
         * ignored signal inherited from the caller's threads */
        proc_spawn_opts_t opts = { .out_fd = log_fd };
        return proc_spawn_daemon(argv, &opts, ret_pid);
}

/* The "[ALERT]" lines process pid logged from offset on, as one message (malloc'd). */
static char *log_alerts(const lb_t *lb, pid_t pid, int64_t offset) {
        char buf[8192], tag[24];
        snprintf(tag, sizeof tag, "(%d)", (int)pid); /* old processes write to the same log */
        ssize_t n = -1;
        _cleanup_close_ int fd = open(lb->log_path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
                n = pread(fd, buf, sizeof buf - 1, offset);
        buf[MAX(n, 0)] = 0;
        _cleanup_free_ char *msg = NULL;
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *text = strstr(line, " : ");
                if (!strstr(line, "[ALERT]") || !strstr(line, tag) || !text)
                        continue;
                char *joined = msg ? xasprintf("%s; %s", msg, text + 3) : xstrdup(text + 3);
                free(msg);
                msg = joined;
        }
        return msg ? xasprintf("%.400s", msg) : xasprintf("haproxy exited at start; see %s", lb->log_path);
}

/* Spawns np (its socket chosen) and waits until it answers on its socket: by then it has its
 * listeners and has sent -sf. */
static int proc_launch(lb_t *lb, lb_proc_t *np, bool take_listeners, char **ret_error) {
        (void)unlink(np->sock); /* left by a process of an earlier run */
        int64_t log_from = MAX(file_size(lb->log_path), 0);
        int r = proc_spawn(lb, lb->cur.pid ? &lb->cur : NULL, take_listeners, &np->pid);
        if (r < 0) {
                *ret_error = xasprintf("cannot run %s: %s", lb->haproxy, strerror(-r));
                return r;
        }
        int64_t deadline = time_now_ms() + LB_START_TIMEOUT_MS;
        for (;;) {
                _cleanup_free_ char *reply = NULL;
                if ((r = lb_runtime_command(np->sock, "show info", &reply)) >= 0)
                        return 0;
                if (proc_gone(np)) {
                        *ret_error = log_alerts(lb, np->pid, log_from);
                        np->pid = 0;
                        return strstr(*ret_error, "cannot bind") ? -EADDRINUSE : -EIO;
                }
                if (time_now_ms() >= deadline) {
                        *ret_error = xasprintf("haproxy did not answer on %s: %s", np->sock, strerror(-r));
                        lb_process_kill(np);
                        return -ETIMEDOUT;
                }
                time_sleep_ms(10);
        }
}

static int proc_start(lb_t *lb, const lb_svc_t *want, size_t n, char **ret_error) {
        _cleanup_(lb_process_kill) lb_proc_t np = { .child = true };
        do {
                free(np.sock);
                np.sock = xasprintf("%s/haproxy-%u.sock", lb->dir, ++lb->gen);
        } while (lb->cur.sock && streq(np.sock, lb->cur.sock));
        _cleanup_free_ char *cfg = lb_config_build(lb, np.sock, want, n);
        int r = file_write_atomic(lb->cfg_path, cfg, strlen(cfg));
        if (r < 0) {
                *ret_error = xasprintf("cannot write %s: %s", lb->cfg_path, strerror(-r));
                return r;
        }
        r = proc_launch(lb, &np, true, ret_error);
        if (r == -EIO && lb->cur.pid && strstr(*ret_error, "sockets from the old process")) {
                /* 2.6 gives up when the old process does not hand its listeners over (its socket
                 * gone, or it hangs): bind anew beside it (SO_REUSEPORT) and stop it with -sf; a
                 * connection waiting in its accept queue at that moment may be reset */
                free(*ret_error);
                *ret_error = NULL;
                r = proc_launch(lb, &np, false, ret_error);
        }
        if (r < 0)
                return r;

        proc_retire(lb, false); /* -sf already told it */
        lb->cur = np;
        np = (lb_proc_t){ 0 };
        _cleanup_free_ char *pid_text = xasprintf("%d\n%s\n", (int)lb->cur.pid, lb->cur.sock);
        (void)file_write_atomic(lb->pid_path, pid_text, strlen(pid_text));
        lb_svc_t *svcs = xcalloc(MAX(n, 1), sizeof *svcs);
        for (size_t i = 0; i < n; i++) {
                memcpy(svcs[i].name, want[i].name, sizeof svcs[i].name);
                memcpy(svcs[i].bind, want[i].bind, sizeof svcs[i].bind);
                svcs[i].health = want[i].health;
                memcpy(svcs[i].health_path, want[i].health_path, sizeof svcs[i].health_path);
        }
        lb_svcs_free(lb->svcs, lb->n_svcs);
        lb->svcs = svcs;
        lb->n_svcs = n;
        lb->resync = true;
        log_info("haproxy %d serves %zu service(s); admin socket %s", (int)lb->cur.pid, n, lb->cur.sock);
        return 0;
}

void lb_process_start(lb_t *lb, const lb_svc_t *want, size_t n, lb_errs_t *e) {
        int64_t now = time_now_ms();
        if (now < lb->start_after) {
                lb_errs_add(e, lb->start_r, "haproxy failed to start (%s); next attempt in %lld ms", lb->start_error,
                            (long long)(lb->start_after - now));
                return;
        }
        char *error = NULL;
        int r = proc_start(lb, want, n, &error);
        if (r >= 0) {
                lb->backoff_ms = 0;
                lb->start_after = 0;
                return;
        }
        lb->backoff_ms = lb->backoff_ms ? MIN(lb->backoff_ms * 2, LB_BACKOFF_MAX_MS) : LB_BACKOFF_FIRST_MS;
        lb->start_after = time_now_ms() + lb->backoff_ms;
        lb->start_r = r;
        free(lb->start_error);
        lb->start_error = error;
        lb_errs_add(e, r, "haproxy: %s", error);
}

void lb_process_adopt(lb_t *lb) {
        _cleanup_free_ char *text = NULL, *cmdline = NULL, *proc_path = NULL;
        size_t len = 0;
        if (file_read(lb->pid_path, &text, NULL) < 0)
                return;
        char *nl = strchr(text, '\n'), *sock = nl ? nl + 1 : NULL;
        int64_t pid;
        if (!nl || (*nl = 0, parse_int64(text, 2, INT32_MAX, &pid)) < 0 || !*sock)
                return;
        sock[strcspn(sock, "\n")] = 0;
        proc_path = xasprintf("/proc/%d/cmdline", (int)pid);
        /* pids are reused: only a process running our configuration is ours */
        if (file_read(proc_path, &cmdline, &len) < 0 || !memmem(cmdline, len, lb->cfg_path, strlen(lb->cfg_path) + 1))
                return;
        lb->cur = (lb_proc_t){ .pid = (pid_t)pid, .child = false, .sock = xstrdup(sock) };
        log_info("haproxy %d left by an earlier run: taking its listeners over at the first sync", (int)pid);
}
