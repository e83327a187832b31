/* The entry points of cluster.h: checking options, describing the cluster (spec.c), creating
 * its network (netns.c, the only privileged file), starting its processes (process.c) and
 * waiting until they are ready (probe.c). Stopping is teardown.c. Concurrent commands on one
 * directory are serialised by a lock file, DIR/.cluster.lock. */
#include "cluster/cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "base/log.h"
#include "base/util.h"
#include "cluster/netns.h"
#include "cluster/probe.h"
#include "cluster/process.h"
#include "cluster/spec.h"
#include "cluster/teardown.h"
#include "cluster/cluster-tls.h"

#define CLUSTER_TIMEOUT_S 60
#define CLUSTER_POLL_MS 200

static int64_t ready_timeout_ms(void) {
        const char *env = getenv("VMATRIX_CLUSTER_TIMEOUT");
        int64_t v;
        if (env && parse_int64(env, 1, 3600, &v) >= 0)
                return v * 1000;
        return CLUSTER_TIMEOUT_S * 1000;
}

/* Canonical absolute form of dir; works for a dir that does not exist (any more). */
static char *dir_canonical(const char *dir) {
        char *r = realpath(dir, NULL);
        if (r)
                return r;
        char *abs;
        if (dir[0] == '/') {
                abs = xstrdup(dir);
        } else {
                _cleanup_free_ char *cwd = getcwd(NULL, 0);
                abs = xasprintf("%s/%s", cwd ? cwd : "", dir);
        }
        size_t len = strlen(abs);
        while (len > 1 && abs[len - 1] == '/')
                abs[--len] = 0;
        return abs;
}

/* Takes DIR/.cluster.lock; returns its descriptor (close to release). */
static int dir_lock(const char *dir) {
        _cleanup_free_ char *path = xasprintf("%s/.cluster.lock", dir);
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK)
                        return negative_errno();
                log_info("waiting for another cluster command on %s to finish", dir);
                while (flock(fd, LOCK_EX) < 0)
                        if (errno != EINTR)
                                return negative_errno();
        }
        return TAKE_FD(fd);
}

/* The last non-empty line of a log file (at most 200 bytes), or NULL. */
static char *log_tail(const char *path) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (file_read(path, &text, &len) < 0)
                return NULL;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
                text[--len] = 0;
        if (len == 0)
                return NULL;
        char *nl = strrchr(text, '\n');
        const char *line = nl ? nl + 1 : text;
        return strndup(line, 200);
}

/* " (last line: ...)" for an error message, or "". */
static char *log_hint(const char *path) {
        _cleanup_free_ char *tail = log_tail(path);
        return tail ? xasprintf("; its last line: %s", tail) : xstrdup("");
}

static int start_member(const spec_t *s, const spec_member_t *m, pid_t *ret_pid) {
        _cleanup_strv_free_ char **argv = spec_member_argv(s, m);
        /* an RM's first start enrols it with a join token made for it */
        if (m->role != SPEC_ROLE_ORACLE && !s->plain && !cluster_tls_enrolled(s, m)) {
                char *token = NULL;
                int k = cluster_tls_join_token(s, m, &token);
                if (k < 0)
                        return k;
                size_t n = 0;
                while (argv[n])
                        n++;
                argv[n++] = xstrdup("--join");
                argv[n++] = token;
                argv[n] = NULL;
        }
        _cleanup_free_ char *log_path = spec_member_log_path(s, m);
        _cleanup_free_ char *pid_path = spec_member_pid_path(s, m);
        _cleanup_free_ char *data = spec_member_data_dir(s, m);
        int r = mkdir_p(data, 0755);
        if (r < 0) {
                log_error("cannot create %s: %s", data, strerror(-r));
                return r;
        }
        _cleanup_close_ int nsfd = -1;
        if (m->netns) {
                nsfd = netns_open(m->netns);
                if (nsfd < 0) {
                        log_error("cannot open network namespace %s of %s: %s", m->netns, m->name, strerror(-nsfd));
                        return nsfd;
                }
        }
        pid_t pid;
        const char *step = "start";
        r = process_spawn(argv, nsfd, log_path, &pid, &step);
        if (r < 0) {
                log_error("cannot start %s (%s %s): %s: %s", m->name, argv[0], argv[1], step, strerror(-r));
                return r;
        }
        r = process_pidfile_write(pid_path, pid);
        if (r < 0) {
                (void)kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                log_error("cannot write %s: %s", pid_path, strerror(-r));
                return r;
        }
        log_debug("started %s (pid %d)", m->name, (int)pid);
        *ret_pid = pid;
        return 0;
}

/* -ECHILD (logged) if our child pid, member m, has exited; 0 while it runs. */
static int check_exited(const spec_t *s, const spec_member_t *m, pid_t pid) {
        int status;
        if (process_reap(pid, &status) <= 0)
                return 0;
        _cleanup_free_ char *log_path = spec_member_log_path(s, m);
        _cleanup_free_ char *hint = log_hint(log_path);
        if (WIFSIGNALED(status))
                log_error("%s was killed by signal %d (%s) during startup; see %s%s", m->name, WTERMSIG(status),
                          strsignal(WTERMSIG(status)), log_path, hint);
        else
                log_error("%s exited with status %d during startup; see %s%s", m->name, WEXITSTATUS(status),
                          log_path, hint);
        return -ECHILD;
}

static int wait_oracle(const spec_t *s, pid_t pid, int64_t deadline, int64_t timeout_ms) {
        _cleanup_free_ char *url = spec_oracle_url(s);
        for (;;) {
                int r = check_exited(s, &s->oracle, pid);
                if (r < 0)
                        return r;
                /* its CA is made before it listens: trust it, then ask its health */
                if ((s->plain || cluster_tls_trust(s) >= 0) && probe_health(url) == 0)
                        return 0;
                if (time_now_ms() >= deadline) {
                        _cleanup_free_ char *log_path = spec_member_log_path(s, &s->oracle);
                        _cleanup_free_ char *hint = log_hint(log_path);
                        log_error("the oracle did not answer %s/v1/health within %lld s; see %s%s", url,
                                  (long long)timeout_ms / 1000, log_path, hint);
                        return -ETIMEDOUT;
                }
                time_sleep_ms(CLUSTER_POLL_MS);
        }
}

/* Waits until each of the n nodes ms[i] (pids[i], our children) listens on its address and the
 * Oracle lists it "up". The listen check matters after a restart, when the Oracle may still
 * show the old process "up" until its heartbeat times out. */
static int wait_nodes(const spec_t *s, const spec_member_t *const *ms, const pid_t *pids, size_t n,
                      int64_t deadline, int64_t timeout_ms) {
        _cleanup_free_ char *url = spec_oracle_url(s);
        _cleanup_free_ char *token = cluster_admin_token(s->dir);
        _cleanup_free_ char **names = xcalloc(n + 1, sizeof *names);
        _cleanup_free_ bool *up = xcalloc(n, sizeof *up);
        _cleanup_free_ bool *listening = xcalloc(n, sizeof *listening);
        for (size_t i = 0; i < n; i++)
                names[i] = ms[i]->name;
        /* a restart of RMs alone has not asked for the Oracle's health, where the trust is made */
        int rms_err = s->plain ? 0 : cluster_tls_trust(s);
        if (rms_err < 0) {
                log_error("cannot trust the Oracle's CA of %s: %s", s->dir, strerror(-rms_err));
                return rms_err;
        }
        for (;;) {
                for (size_t i = 0; i < n; i++) {
                        int r = check_exited(s, ms[i], pids[i]);
                        if (r < 0)
                                return r;
                }
                for (size_t i = 0; i < n; i++)
                        if (!listening[i])
                                listening[i] = probe_tcp(ms[i]->address, ms[i]->port) == 0;
                rms_err = probe_rms(url, token, names, n, up);
                bool all = rms_err >= 0;
                for (size_t i = 0; all && i < n; i++)
                        all = up[i] && listening[i];
                if (all)
                        return 0;
                if (time_now_ms() >= deadline)
                        break;
                time_sleep_ms(CLUSTER_POLL_MS);
        }

        /* one line naming every RM that is not ready, why, and where its log is */
        _cleanup_free_ char *msg = xstrdup("");
        for (size_t i = 0; i < n; i++) {
                if (rms_err >= 0 && up[i] && listening[i])
                        continue;
                _cleanup_free_ char *log_path = spec_member_log_path(s, ms[i]);
                const char *why = !listening[i] ? "not listening on its address" :
                                  rms_err < 0   ? "the Oracle's /v1/rms did not answer" :
                                                  "the Oracle does not show it up";
                char *m = xasprintf("%s%s%s (%s:%u, %s; see %s)", msg, *msg ? ", " : "", ms[i]->name,
                                    ms[i]->address, ms[i]->port, why, log_path);
                free(msg);
                msg = m;
        }
        log_error("RM %s did not come up within %lld s", msg, (long long)timeout_ms / 1000);
        return -ETIMEDOUT;
}

/* The Oracle writes its first admin's token into its data directory on its first start; the
 * cluster directory keeps a copy (0600) for the CLI (DESIGN.md §10). An Oracle that wrote none
 * (a stub in tests, or a data directory of an older vmatrix) leaves any copy as it is. */
static int copy_admin_token(const spec_t *s) {
        _cleanup_free_ char *odir = spec_member_data_dir(s, &s->oracle);
        _cleanup_free_ char *from = xasprintf("%s/admin.token", odir);
        _cleanup_free_ char *to = xasprintf("%s/admin.token", s->dir);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (file_size(from) > 4096 || file_read(from, &text, &len) < 0)
                return 0;
        int r = file_write_atomic_mode(to, text, len, 0600);
        if (r < 0)
                log_error("cannot write %s: %s", to, strerror(-r));
        return r;
}

char *cluster_admin_token(const char *dir) {
        _cleanup_free_ char *path = xasprintf("%s/admin.token", dir);
        _cleanup_free_ char *text = NULL;
        if (file_size(path) > 4096 || file_read(path, &text, NULL) < 0)
                return NULL;
        text[strcspn(text, "\r\n")] = 0;
        return *text ? xstrdup(text) : NULL;
}

static int write_oracle_url(const spec_t *s) {
        _cleanup_free_ char *url = spec_oracle_url(s);
        _cleanup_free_ char *path = xasprintf("%s/oracle.url", s->dir);
        int r = file_write_atomic(path, url, strlen(url));
        if (r < 0)
                log_error("cannot write %s: %s", path, strerror(-r));
        return r;
}

static int pick_subnet(const char *dir, uint32_t *ret) {
        _cleanup_free_ spec_prefix_t *used = NULL;
        size_t n = 0;
        int r = netns_used_prefixes(&used, &n);
        if (r < 0) {
                log_error("cannot list this machine's addresses and routes: %s", strerror(-r));
                return r;
        }
        r = spec_subnet_pick(dir, used, n, ret);
        if (r < 0)
                log_error("no free /24 in 10.0.0.0/8 for cluster %s: every candidate overlaps an address or route "
                          "of this machine (set VMATRIX_CLUSTER_NETNS=0 for a loopback cluster)", dir);
        return r;
}

/* Distinct free ports on the loopback address: bound all at once, so they differ. */
static int pick_ports(spec_t *s) {
        size_t n = s->n_rms + 2; /* the Oracle's two listeners and one per RM */
        _cleanup_free_ int *fds = xcalloc(n, sizeof *fds);
        int r = 0;
        for (size_t i = 0; i < n; i++)
                fds[i] = -1;
        for (size_t i = 0; i < n && r >= 0; i++) {
                struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                socklen_t len = sizeof sa;
                fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof sa) < 0 ||
                    getsockname(fds[i], (struct sockaddr *)&sa, &len) < 0) {
                        r = negative_errno();
                        break;
                }
                if (i == 1)
                        s->oracle.node_port = ntohs(sa.sin_port);
                else
                        (i == 0 ? &s->oracle : &s->rms[i - 2])->port = ntohs(sa.sin_port);
        }
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        if (r < 0)
                log_error("cannot find free loopback ports: %s", strerror(-r));
        return r;
}

static int make_dirs(const spec_t *s) {
        const char *subs[] = { "logs", "pids", "oracle", "nodes" };
        for (size_t i = 0; i < ELEMENTSOF(subs); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", s->dir, subs[i]);
                int r = mkdir_p(p, 0755);
                if (r < 0) {
                        log_error("cannot create %s: %s", p, strerror(-r));
                        return r;
                }
        }
        return 0;
}

/* The first of s's bridge, veths and namespaces that already exists, or NULL. */
static const char *network_name_taken(const spec_t *s) {
        if (netns_link_exists(s->bridge))
                return s->bridge;
        for (size_t i = 0; i < s->n_rms; i++) {
                if (netns_link_exists(s->rms[i].veth))
                        return s->rms[i].veth;
                if (netns_exists(s->rms[i].netns))
                        return s->rms[i].netns;
        }
        return NULL;
}

static int network_create(const spec_t *s) {
        _cleanup_free_ char *bridge_cidr = xasprintf("%s/24", s->oracle.address);
        int r = netns_bridge_add(s->bridge, bridge_cidr);
        if (r < 0) {
                log_error("cannot create bridge %s (%s) for cluster %s: %s", s->bridge, bridge_cidr, s->dir,
                          strerror(-r));
                return r;
        }
        for (size_t i = 0; i < s->n_rms; i++) {
                const spec_member_t *m = &s->rms[i];
                _cleanup_free_ char *cidr = xasprintf("%s/24", m->address);
                r = netns_rm_add(m->netns, m->veth, s->bridge, cidr);
                if (r < 0) {
                        log_error("cannot create network namespace %s (%s) for %s: %s", m->netns, cidr, m->name,
                                  strerror(-r));
                        return r;
                }
        }
        return 0;
}

static int start_all(const spec_t *s) {
        int r = 0;
        if (s->netns)
                r = network_create(s);
        if (r < 0)
                return r;
        int64_t timeout = ready_timeout_ms(), deadline = time_now_ms() + timeout;
        pid_t oracle;
        r = start_member(s, &s->oracle, &oracle);
        if (r >= 0)
                r = wait_oracle(s, oracle, deadline, timeout);
        if (r >= 0)
                r = write_oracle_url(s);
        if (r >= 0)
                r = copy_admin_token(s);
        if (r < 0)
                return r;

        _cleanup_free_ pid_t *pids = xcalloc(s->n_rms, sizeof *pids);
        _cleanup_free_ const spec_member_t **ms = xcalloc(s->n_rms, sizeof *ms);
        for (size_t i = 0; i < s->n_rms; i++) {
                ms[i] = &s->rms[i];
                r = start_member(s, ms[i], &pids[i]);
                if (r < 0)
                        return r;
        }
        return wait_nodes(s, ms, pids, s->n_rms, deadline, timeout);
}

int cluster_up(const cluster_options_t *o) {
        if (!o || !o->dir || !*o->dir) {
                log_error("cluster up: no cluster directory given");
                return -EINVAL;
        }
        if (o->production > SPEC_MAX_RMS || o->chambers > SPEC_MAX_RMS || o->production + o->chambers < 1 ||
            o->production + o->chambers > SPEC_MAX_RMS) {
                log_error("cluster up: %u production and %u chamber RMs requested; a local cluster has 1 to %d RMs",
                          o->production, o->chambers, SPEC_MAX_RMS);
                return -ERANGE;
        }
        _cleanup_free_ char *exe = o->vmatrix_exe ? realpath(o->vmatrix_exe, NULL) : exe_path();
        if (!exe || access(exe, X_OK) < 0) {
                int r = negative_errno();
                log_error("cannot run vmatrix executable %s: %s", o->vmatrix_exe ? o->vmatrix_exe : "(this program)",
                          strerror(-r));
                return r;
        }
        int r = mkdir_p(o->dir, 0755);
        if (r < 0) {
                log_error("cannot create cluster directory %s: %s", o->dir, strerror(-r));
                return r;
        }
        _cleanup_free_ char *dir = dir_canonical(o->dir);
        _cleanup_close_ int lock = dir_lock(dir);
        if (lock < 0) {
                log_error("cannot lock cluster directory %s: %s", dir, strerror(-lock));
                return lock;
        }

        _cleanup_free_ char *running = NULL;
        pid_t running_pid = 0;
        r = teardown_find_running(dir, &running, &running_pid);
        if (r > 0) {
                log_error("cluster in %s is already up (%s runs as pid %d); "
                          "stop it with `vmatrix cluster down --dir %s`",
                          dir, running, (int)running_pid, dir);
                return -EBUSY;
        }
        r = teardown_run(dir, 0);
        if (r < 0)
                return r;
        if (r > 0)
                log_info("cleaned up %d leftover(s) of an earlier run in %s", r, dir);

        bool use_netns = netns_wanted();
        uint32_t subnet = 0;
        if (use_netns) {
                r = pick_subnet(dir, &subnet);
                if (r < 0)
                        return r;
        }
        _cleanup_(spec_freep) spec_t *s = NULL;
        r = spec_new(dir, exe, o->accel, o->production, o->chambers, use_netns, subnet, &s);
        if (r < 0) {
                log_error("cluster up: cannot describe a cluster in %s: %s", dir, strerror(-r));
                return r;
        }
        s->plain = o->plain;
        s->open_signup = o->open_signup;
        const char *taken = s->netns ? network_name_taken(s) : NULL;
        if (taken) {
                /* our own leftovers are gone by now, so another cluster's tag collides with ours */
                log_error("cluster up: network name %s is in use by something else; remove it or use another "
                          "cluster directory", taken);
                return -EADDRINUSE;
        }
        if (!use_netns) {
                r = pick_ports(s);
                if (r < 0)
                        return r;
        }
        r = make_dirs(s);
        if (r < 0)
                return r;
        /* written before anything is created, so a crash from here on can be cleaned up */
        _cleanup_free_ char *json_path = xasprintf("%s/cluster.json", dir);
        r = spec_save(s, json_path);
        if (r < 0) {
                log_error("cannot write %s: %s", json_path, strerror(-r));
                return r;
        }

        r = start_all(s);
        if (r < 0) {
                (void)teardown_run(dir, 0);
                return r;
        }
        _cleanup_free_ char *url = spec_oracle_url(s);
        if (s->netns) {
                _cleanup_free_ char *net = spec_address_format(s->subnet);
                log_info("cluster in %s is up: oracle %s, %zu RMs in network namespaces on bridge %s (%s/24)", dir,
                         url, s->n_rms, s->bridge, net);
        } else {
                log_info("cluster in %s is up: oracle %s, %zu RMs on loopback ports", dir, url, s->n_rms);
        }
        return 0;
}

int cluster_down(const char *dir) {
        if (!dir || !*dir) {
                log_error("cluster down: no cluster directory given");
                return -EINVAL;
        }
        _cleanup_free_ char *cdir = dir_canonical(dir);
        _cleanup_close_ int lock = -1;
        struct stat st;
        /* a removed dir may still have processes and namespaces: tear down without the lock */
        if (stat(cdir, &st) == 0 && S_ISDIR(st.st_mode)) {
                lock = dir_lock(cdir);
                if (lock < 0) {
                        log_error("cannot lock cluster directory %s: %s", cdir, strerror(-lock));
                        return lock;
                }
        }
        int r = teardown_run(cdir, TEARDOWN_VERBOSE);
        if (r < 0)
                return r;
        if (r > 0)
                log_info("cluster in %s is down", cdir);
        else
                log_info("nothing of a cluster was running in %s", cdir);
        return 0;
}

int cluster_restart(const char *dir, const char *name) {
        if (!dir || !*dir || !name || !*name) {
                log_error("cluster restart: a cluster directory and a node name are needed");
                return -EINVAL;
        }
        _cleanup_free_ char *cdir = dir_canonical(dir);
        _cleanup_free_ char *json_path = xasprintf("%s/cluster.json", cdir);
        _cleanup_free_ char *url_path = xasprintf("%s/oracle.url", cdir);
        if (!file_exists(json_path) || !file_exists(url_path)) {
                log_error("no cluster is up in %s", cdir);
                return -ENOENT;
        }
        _cleanup_close_ int lock = dir_lock(cdir);
        if (lock < 0) {
                log_error("cannot lock cluster directory %s: %s", cdir, strerror(-lock));
                return lock;
        }
        _cleanup_(spec_freep) spec_t *s = NULL;
        int r = spec_load(json_path, &s);
        if (r < 0) {
                log_error("cannot read %s: %s", json_path, r == -EBADMSG ? "damaged file" : strerror(-r));
                return r;
        }
        const spec_member_t *m = spec_member_find(s, name);
        if (!m) {
                _cleanup_free_ char *known = xstrdup("oracle");
                for (size_t i = 0; i < s->n_rms; i++) {
                        char *k = xasprintf("%s, %s", known, s->rms[i].name);
                        free(known);
                        known = k;
                }
                log_error("no node named %s in cluster %s (it has: %s)", name, cdir, known);
                return -ENOENT;
        }
        if (s->netns && geteuid() != 0) {
                log_error("cluster in %s uses network namespaces; restarting %s needs root", cdir, name);
                return -EPERM;
        }
        if (m->netns && !netns_exists(m->netns)) {
                log_error("network namespace %s of %s is gone; run `vmatrix cluster down --dir %s` and up again",
                          m->netns, name, cdir);
                return -ENOENT;
        }

        r = teardown_member(s, m);
        if (r < 0) {
                log_error("cannot stop %s in cluster %s: %s", name, cdir, strerror(-r));
                return r;
        }
        int64_t timeout = ready_timeout_ms(), deadline = time_now_ms() + timeout;
        pid_t pid;
        r = start_member(s, m, &pid);
        if (r < 0)
                return r;
        if (m->role == SPEC_ROLE_ORACLE) {
                r = wait_oracle(s, pid, deadline, timeout);
                if (r >= 0)
                        r = write_oracle_url(s);
        } else {
                r = wait_nodes(s, &m, &pid, 1, deadline, timeout);
        }
        if (r < 0)
                return r;
        log_info("restarted %s in cluster %s (pid %d)", name, cdir, (int)pid);
        return 0;
}

int cluster_oracle_url(const char *dir, char **ret) {
        if (!dir || !ret)
                return -EINVAL;
        _cleanup_free_ char *path = xasprintf("%s/oracle.url", dir);
        _cleanup_free_ char *text = NULL;
        int r = file_read(path, &text, NULL);
        if (r < 0)
                return r;
        char *start = text;
        while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
                start++;
        size_t len = strlen(start);
        while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t' || start[len - 1] == '\n' ||
                           start[len - 1] == '\r'))
                start[--len] = 0;
        if (len == 0)
                return -EBADMSG;
        *ret = xstrdup(start);
        return 0;
}
