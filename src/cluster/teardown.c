/* Implementation of teardown.h. Every process is identified before it is signalled: by its
 * command line (`EXE oracle|node ... --data DIR/...`, or qemu-system-* tied to DIR), by its
 * session (a member's helpers, collected while the member still lives, since Linux does not
 * reuse a pid that is still some live process's session id), or by its network namespace
 * (anything inside the cluster's namespaces is the cluster's). A pid read from a file is
 * never trusted alone. */
#include "cluster/teardown.h"

#include <dirent.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "base/idclaim.h"
#include "base/log.h"
#include "base/util.h"
#include "cluster/netns.h"
#include "cluster/process.h"
#include "vmm/qemu/guest-uid.h"

typedef struct pidset {
        pid_t *v;
        size_t n;
} pidset_t;

static bool pidset_has(const pidset_t *s, pid_t p) {
        for (size_t i = 0; i < s->n; i++)
                if (s->v[i] == p)
                        return true;
        return false;
}

static void pidset_add(pidset_t *s, pid_t p) {
        if (pidset_has(s, p))
                return;
        pid_t *v = realloc(s->v, (s->n + 1) * sizeof *v);
        if (!v)
                abort();
        s->v = v;
        s->v[s->n++] = p;
}

static void pidset_add_all(pidset_t *s, const pid_t *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                pidset_add(s, v[i]);
}

static void pidset_clear(pidset_t *s) {
        free(s->v);
        *s = (pidset_t){ 0 };
}

/* NAME of every DIR/pids/NAME.pid with a valid NAME. */
static int pidfile_names(const char *dir, char ***ret) {
        _cleanup_free_ char *pids = xasprintf("%s/pids", dir);
        char **v = xcalloc(1, sizeof *v);
        size_t n = 0;
        DIR *d = opendir(pids);
        if (!d) {
                if (errno == ENOENT || errno == ENOTDIR) {
                        *ret = v;
                        return 0;
                }
                int r = negative_errno();
                strv_free(v);
                return r;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!str_endswith(de->d_name, ".pid"))
                        continue;
                _cleanup_free_ char *name = strndup(de->d_name, strlen(de->d_name) - 4);
                if (!name || !name_is_valid(name))
                        continue;
                char **nv = realloc(v, (n + 2) * sizeof *v);
                if (!nv)
                        abort();
                v = nv;
                v[n++] = TAKE_PTR(name);
                v[n] = NULL;
        }
        closedir(d);
        *ret = v;
        return 0;
}

static char *pidfile_path(const char *dir, const char *name) { return xasprintf("%s/pids/%s.pid", dir, name); }

/* The pid in DIR/pids/NAME.pid if that process is the cluster's NAME, else 0. */
static pid_t member_pid(const char *dir, const char *exe, const char *name) {
        _cleanup_free_ char *path = pidfile_path(dir, name);
        _cleanup_free_ char *data = spec_data_dir_of(dir, name);
        pid_t pid;
        if (process_pidfile_read(path, &pid) < 0 || !process_is_member(pid, exe, data))
                return 0;
        return pid;
}

struct member_match {
        const char *dir;
        const char *exe;
        const char *data_dir; /* one member only, or NULL for any of dir */
};

static bool match_member(pid_t pid, char *const *argv, void *userdata) {
        const struct member_match *m = userdata;
        const char *data = process_argv_data_dir(argv, m->exe);
        if (!data)
                return false;
        if (m->data_dir)
                return streq(data, m->data_dir);
        size_t len = strlen(m->dir);
        if (strncmp(data, m->dir, len) != 0)
                return false;
        data += len;
        if (streq(data, "/oracle"))
                return true;
        return str_startswith(data, "/nodes/") && name_is_valid(data + strlen("/nodes/"));
}

static bool match_session(pid_t pid, char *const *argv, void *userdata) {
        const pidset_t *sids = userdata;
        pid_t sid;
        return process_sid(pid, &sid) >= 0 && sid != pid && pidset_has(sids, sid);
}

static bool path_in_dir(const char *path, const char *dir) {
        size_t len = strlen(dir);
        return strncmp(path, dir, len) == 0 && (path[len] == '/' || path[len] == 0);
}

static bool match_qemu(pid_t pid, char *const *argv, void *userdata) {
        const char *dir = userdata;
        if (!process_argv_is_qemu(argv))
                return false;
        for (char *const *a = argv; *a; a++) {
                const char *p = strstr(*a, dir);
                if (p && path_in_dir(p, dir))
                        return true;
        }
        char link[64], cwd[PATH_MAX];
        snprintf(link, sizeof link, "/proc/%d/cwd", (int)pid);
        ssize_t n = readlink(link, cwd, sizeof cwd - 1);
        if (n <= 0)
                return false;
        cwd[n] = 0;
        return path_in_dir(cwd, dir);
}

/* Pids of live QEMUs named by qemu.pid files below path (no symlinks followed). */
static void qemu_pidfiles(const char *path, unsigned depth, pidset_t *out) {
        if (depth > 12)
                return;
        DIR *d = opendir(path);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *child = xasprintf("%s/%s", path, de->d_name);
                struct stat st;
                if (lstat(child, &st) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        qemu_pidfiles(child, depth + 1, out);
                        continue;
                }
                pid_t pid;
                _cleanup_strv_free_ char **argv = NULL;
                if (!S_ISREG(st.st_mode) || !streq(de->d_name, "qemu.pid") ||
                    process_pidfile_read(child, &pid) < 0 || !process_alive(pid) ||
                    process_cmdline(pid, &argv) < 0 || !process_argv_is_qemu(argv))
                        continue;
                pidset_add(out, pid);
        }
        closedir(d);
}

static void scan_into(pidset_t *set, bool (*match)(pid_t, char *const *, void *), void *userdata) {
        _cleanup_free_ pid_t *v = NULL;
        size_t n = 0;
        if (process_scan(match, userdata, &v, &n) >= 0)
                pidset_add_all(set, v, n);
}

/* Stops set; logs the survivors of SIGKILL. */
static int stop_set(const char *dir, const pidset_t *set, int64_t timeout_ms, const char *what) {
        if (set->n == 0)
                return 0;
        int r = process_stop(set->v, set->n, timeout_ms);
        if (r > 0)
                log_warn("cluster in %s: %d %s did not stop on SIGTERM within %lld s; killed", dir, r, what,
                         (long long)timeout_ms / 1000);
        if (r == -EBUSY)
                for (size_t i = 0; i < set->n; i++)
                        if (process_alive(set->v[i]))
                                log_error("cluster in %s: %s pid %d survived SIGKILL", dir, what, (int)set->v[i]);
        return r < 0 ? r : 0;
}

/* Step 1: the Oracle, the nodes, strays with their command line, and their sessions. */
static int stop_members(const char *dir, const char *exe, enum log_level lvl, char **names, unsigned *found) {
        pidset_t set = { 0 }, sids = { 0 };
        for (char **n = names; *n; n++) {
                pid_t pid = member_pid(dir, exe, *n);
                if (pid > 0) {
                        log_emit(lvl, "stopping %s (pid %d)", *n, (int)pid);
                        pidset_add(&set, pid);
                }
        }
        struct member_match mm = { .dir = dir, .exe = exe };
        size_t known = set.n;
        scan_into(&set, match_member, &mm);
        if (set.n > known)
                log_emit(lvl, "stopping %zu more process(es) running with data in %s", set.n - known, dir);
        for (size_t i = 0; i < set.n; i++) {
                pid_t sid;
                if (process_sid(set.v[i], &sid) >= 0 && sid == set.v[i])
                        pidset_add(&sids, sid);
        }
        if (sids.n > 0)
                scan_into(&set, match_session, &sids);
        *found += (unsigned)set.n;
        int r = stop_set(dir, &set, TEARDOWN_STOP_TIMEOUT_MS, "process");
        pidset_clear(&set);
        pidset_clear(&sids);
        return r;
}

/* Step 2: QEMU processes of the cluster's nodes. */
static int stop_qemus(const char *dir, enum log_level lvl, unsigned *found) {
        pidset_t set = { 0 };
        qemu_pidfiles(dir, 0, &set);
        scan_into(&set, match_qemu, (void *)dir);
        if (set.n > 0)
                log_emit(lvl, "stopping %zu QEMU process(es) of %s", set.n, dir);
        *found += (unsigned)set.n;
        int r = stop_set(dir, &set, TEARDOWN_QEMU_TIMEOUT_MS, "QEMU process");
        pidset_clear(&set);
        return r;
}

static void strv_add(char ***v, const char *s) {
        if (!s)
                return;
        size_t n = 0;
        while ((*v)[n])
                n++;
        for (size_t i = 0; i < n; i++)
                if (streq((*v)[i], s))
                        return;
        char **nv = realloc(*v, (n + 2) * sizeof **v);
        if (!nv)
                abort();
        nv[n] = xstrdup(s);
        nv[n + 1] = NULL;
        *v = nv;
}

/* Step 3: whatever still runs in the namespaces, then the namespaces, veths and bridge. */
static int remove_network(const char *dir, const spec_t *s, enum log_level lvl, unsigned *found) {
        _cleanup_strv_free_ char **nss = xcalloc(1, sizeof(char *));
        _cleanup_strv_free_ char **veths = xcalloc(1, sizeof(char *));
        _cleanup_free_ char *bridge = NULL;
        if (s) {
                for (size_t i = 0; s->netns && i < s->n_rms; i++) {
                        if (netns_exists(s->rms[i].netns))
                                strv_add(&nss, s->rms[i].netns);
                        if (netns_link_exists(s->rms[i].veth))
                                strv_add(&veths, s->rms[i].veth);
                }
                if (s->netns && netns_link_exists(s->bridge))
                        bridge = xstrdup(s->bridge);
        } else {
                /* cluster.json is lost: fall back to the names derived from dir */
                _cleanup_free_ char *prefix = spec_netns_prefix(dir);
                _cleanup_free_ char *br = spec_bridge_name(dir);
                char **v = NULL;
                if (netns_list(prefix, &v) >= 0) {
                        for (char **p = v; *p; p++)
                                strv_add(&nss, *p);
                        strv_free(v);
                }
                if (netns_links(prefix, &v) >= 0) {
                        for (char **p = v; *p; p++)
                                strv_add(&veths, *p);
                        strv_free(v);
                }
                if (netns_link_exists(br))
                        bridge = TAKE_PTR(br);
        }
        if (!nss[0] && !veths[0] && !bridge)
                return 0;
        if (geteuid() != 0) {
                log_error("cluster in %s has network namespaces or links left (%s); only root can remove them", dir,
                          nss[0] ? nss[0] : veths[0] ? veths[0] : bridge);
                return -EPERM;
        }

        int ret = 0;
        for (char **ns = nss; *ns; ns++) {
                (*found)++;
                _cleanup_free_ pid_t *pids = NULL;
                size_t n = 0;
                if (netns_pids(*ns, &pids, &n) >= 0 && n > 0) {
                        log_emit(lvl, "stopping %zu process(es) left in network namespace %s", n, *ns);
                        pidset_t set = { .v = TAKE_PTR(pids), .n = n };
                        int r = stop_set(dir, &set, TEARDOWN_QEMU_TIMEOUT_MS, "process");
                        pidset_clear(&set);
                        if (r < 0 && ret == 0)
                                ret = r;
                }
                log_emit(lvl, "removing network namespace %s", *ns);
                int r = netns_rm_del(*ns, NULL);
                if (r < 0) {
                        log_error("cannot remove network namespace %s of cluster %s: %s", *ns, dir, strerror(-r));
                        if (ret == 0)
                                ret = r;
                }
        }
        /* The kernel destroys a deleted namespace, and the veth pairs in it, asynchronously:
         * wait for the host ends to go, so a following `up` can create them again. */
        int64_t deadline = time_now_ms() + 3000;
        for (char **v = veths; *v; v++)
                while (netns_link_exists(*v) && time_now_ms() < deadline)
                        time_sleep_ms(20);
        for (char **v = veths; *v; v++) {
                if (!netns_link_exists(*v))
                        continue; /* went with its namespace */
                (*found)++;
                int r = netns_rm_del(NULL, *v);
                if (r < 0) {
                        log_error("cannot remove link %s of cluster %s: %s", *v, dir, strerror(-r));
                        if (ret == 0)
                                ret = r;
                }
        }
        if (bridge) {
                (*found)++;
                log_emit(lvl, "removing bridge %s", bridge);
                int r = netns_bridge_del(bridge);
                if (r < 0) {
                        log_error("cannot remove bridge %s of cluster %s: %s", bridge, dir, strerror(-r));
                        if (ret == 0)
                                ret = r;
                }
        }
        return ret;
}

/* Step 4: the uids and cgroups of the nodes' confined QEMUs, which are gone now: claims whose
 * key (a node's data directory) is below dir (node-confine.c). */
static void release_claims(const char *dir, enum log_level lvl) {
        if (geteuid() != 0 || access(GUEST_UID_CLAIM_DIR, F_OK) < 0)
                return;
        const idclaim_space_t claims = { .dir = GUEST_UID_CLAIM_DIR, .first = GUEST_UID_FIRST,
                                         .count = GUEST_UID_COUNT };
        _cleanup_free_ char *prefix = xasprintf("%s/", dir);
        /* a QEMU killed a moment ago may still be a zombie that holds its uid */
        int64_t deadline = time_now_ms() + TEARDOWN_CLAIMS_WAIT_MS;
        int released = 0;
        for (;;) {
                int r = idclaim_sweep(&claims, prefix, NULL, NULL);
                idclaim_t *left = NULL;
                size_t n = 0;
                if (r < 0 || idclaim_list(&claims, prefix, &left, &n) < 0) {
                        log_warn("cannot release the uids of the cluster's QEMUs in %s: %s", GUEST_UID_CLAIM_DIR,
                                 strerror(r < 0 ? -r : EIO));
                        return;
                }
                idclaim_list_free(left, n);
                released += r;
                if (n == 0 || time_now_ms() >= deadline) {
                        if (n > 0)
                                log_warn("%zu uid claim(s) of the cluster's QEMUs are still in use", n);
                        break;
                }
                time_sleep_ms(50);
        }
        if (released > 0)
                log_emit(lvl, "released the uids and cgroups of %d confined QEMU(s)", released);
}

int teardown_run(const char *dir, unsigned flags) {
        enum log_level lvl = flags & TEARDOWN_VERBOSE ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG;
        _cleanup_free_ char *json_path = xasprintf("%s/cluster.json", dir);
        _cleanup_(spec_freep) spec_t *s = NULL;
        int r = spec_load(json_path, &s);
        if (r < 0 && r != -ENOENT && r != -ENOTDIR)
                log_warn("%s is unreadable (%s); cleaning up by pid files and derived names", json_path,
                         strerror(-r));
        const char *exe = s ? s->exe : NULL;

        _cleanup_strv_free_ char **names = NULL;
        r = pidfile_names(dir, &names);
        if (r < 0) {
                log_error("cannot read %s/pids: %s", dir, strerror(-r));
                return r;
        }

        unsigned found = 0;
        int ret = stop_members(dir, exe, lvl, names, &found);
        r = stop_qemus(dir, lvl, &found);
        if (r < 0 && ret == 0)
                ret = r;
        r = remove_network(dir, s, lvl, &found);
        if (r < 0 && ret == 0)
                ret = r;
        release_claims(dir, lvl);

        /* pid files of processes that are gone; oracle.url once no Oracle answers there */
        for (char **n = names; *n; n++) {
                if (member_pid(dir, exe, *n) > 0)
                        continue;
                _cleanup_free_ char *path = pidfile_path(dir, *n);
                if (unlink(path) < 0 && errno != ENOENT)
                        log_warn("cannot remove %s: %m", path);
        }
        if (member_pid(dir, exe, "oracle") == 0) {
                _cleanup_free_ char *url = xasprintf("%s/oracle.url", dir);
                (void)unlink(url);
        }
        return ret < 0 ? ret : (int)found;
}

int teardown_find_running(const char *dir, char **ret_name, pid_t *ret_pid) {
        _cleanup_free_ char *json_path = xasprintf("%s/cluster.json", dir);
        _cleanup_(spec_freep) spec_t *s = NULL;
        (void)spec_load(json_path, &s);
        _cleanup_strv_free_ char **names = NULL;
        int r = pidfile_names(dir, &names);
        if (r < 0)
                return r;
        /* the Oracle first: "already up (oracle runs as ...)" is the clearest message */
        pid_t oracle = member_pid(dir, s ? s->exe : NULL, "oracle");
        if (oracle > 0) {
                *ret_name = xstrdup("oracle");
                *ret_pid = oracle;
                return 1;
        }
        for (char **n = names; *n; n++) {
                pid_t pid = member_pid(dir, s ? s->exe : NULL, *n);
                if (pid > 0) {
                        *ret_name = xstrdup(*n);
                        *ret_pid = pid;
                        return 1;
                }
        }
        return 0;
}

int teardown_member(const spec_t *s, const spec_member_t *m) {
        pidset_t set = { 0 };
        pid_t pid = member_pid(s->dir, s->exe, m->name);
        if (pid > 0)
                pidset_add(&set, pid);
        _cleanup_free_ char *data = spec_member_data_dir(s, m);
        struct member_match mm = { .dir = s->dir, .exe = s->exe, .data_dir = data };
        scan_into(&set, match_member, &mm);
        int n = (int)set.n;
        int r = stop_set(s->dir, &set, TEARDOWN_STOP_TIMEOUT_MS, "process");
        pidset_clear(&set);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = spec_member_pid_path(s, m);
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        return n;
}
