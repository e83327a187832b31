/* Implementation of netns.h. This is the one place of the launcher that needs root; keep
 * every privileged operation here, and check every argument before it reaches `ip`:
 * namespace names are [a-z0-9-]{1,63}, interface names at most 15 of those, addresses
 * 10.B.C.D/24. `ip` is run from fixed system paths, not looked up in $PATH. */
#include "cluster/netns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"

#define NETNS_RUN_DIR "/run/netns"

bool netns_wanted(void) {
        const char *env = getenv("VMATRIX_CLUSTER_NETNS");
        if (env && streq(env, "0"))
                return false;
        return geteuid() == 0;
}

static bool ns_name_ok(const char *s) { return name_is_valid(s); }
static bool ifname_ok(const char *s) { return s && strlen(s) <= 15 && name_is_valid(s); }

static bool cidr_ok(const char *s) {
        if (!s || strlen(s) > 18)
                return false;
        char buf[19];
        strcpy(buf, s);
        char *slash = strchr(buf, '/');
        if (!slash || !streq(slash, "/24"))
                return false;
        *slash = 0;
        struct in_addr a;
        return inet_pton(AF_INET, buf, &a) == 1 && (ntohl(a.s_addr) >> 24) == 10;
}

static const char *ip_path(void) {
        static const char *const paths[] = { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip" };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                if (access(paths[i], X_OK) == 0)
                        return paths[i];
        return NULL;
}

/* `ip` changes a link or a namespace in well under a second; 10 s means it hangs (a stuck
 * netlink or a namespace being torn down), and the cluster command should say so. */
#define NETNS_IP_TIMEOUT_MS 10000
/* `ip -j route show table all` on a host with a big routing table is long: keep plenty. */
#define NETNS_IP_OUTPUT_MAX (16u << 20)

/* Runs `ip ARGS...` (NULL-terminated). Its stderr goes to ours, so its own message explains a
 * failure. With ret_out, its stdout is collected (malloc'd). -EIO if it exits non-zero,
 * -ETIMEDOUT (logged) if it hangs. */
static int ip_run(char **ret_out, const char *arg, ...) {
        const char *argv[24] = { "ip" };
        size_t n = 1;
        va_list ap;
        va_start(ap, arg);
        for (const char *a = arg; a && n < ELEMENTSOF(argv) - 1; a = va_arg(ap, const char *))
                argv[n++] = a;
        va_end(ap);
        argv[n] = NULL;

        const char *path = ip_path();
        if (!path) {
                log_error("cannot find the `ip` command (iproute2) in /usr/sbin, /sbin, /usr/bin or /bin");
                return -ENOENT;
        }
        argv[0] = path;
        proc_run_opts_t opts = { .timeout_ms = NETNS_IP_TIMEOUT_MS, .output_max = NETNS_IP_OUTPUT_MAX,
                                 .stderr_inherit = true };
        _cleanup_free_ char *out = NULL;
        int r = proc_run_full((char *const *)argv, &opts, &out);
        if (r == -ETIMEDOUT)
                log_error("`ip %s %s` did not finish in %d s and was killed", argv[1], argv[2] ? argv[2] : "",
                          NETNS_IP_TIMEOUT_MS / 1000);
        if (r == -EPROTO)
                return -EIO;
        if (r < 0)
                return r;
        if (ret_out)
                *ret_out = TAKE_PTR(out);
        return 0;
}

bool netns_exists(const char *ns) {
        if (!ns_name_ok(ns))
                return false;
        _cleanup_free_ char *p = xasprintf(NETNS_RUN_DIR "/%s", ns);
        return access(p, F_OK) == 0;
}

bool netns_link_exists(const char *ifname) {
        if (!ifname_ok(ifname))
                return false;
        _cleanup_free_ char *p = xasprintf("/sys/class/net/%s", ifname);
        return access(p, F_OK) == 0;
}

/* Writes "0" to /proc/sys/net/FAMILY/conf/IFNAME/forwarding. */
static int forwarding_off(const char *family, const char *ifname) {
        _cleanup_free_ char *p = xasprintf("/proc/sys/net/%s/conf/%s/forwarding", family, ifname);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return write(fd, "0\n", 2) == 2 ? 0 : negative_errno();
}

int netns_bridge_add(const char *bridge, const char *cidr) {
        if (!ifname_ok(bridge) || !cidr_ok(cidr))
                return -EINVAL;
        int r = ip_run(NULL, "link", "add", bridge, "type", "bridge", NULL);
        /* Traffic stays on this machine even where the host forwards (ip_forward=1): nothing
         * that arrives on the bridge is routed on, whatever routes a node adds in its namespace. */
        if (r >= 0)
                r = forwarding_off("ipv4", bridge);
        if (r >= 0)
                (void)forwarding_off("ipv6", bridge); /* absent when IPv6 is disabled */
        if (r >= 0)
                r = ip_run(NULL, "addr", "add", cidr, "dev", bridge, NULL);
        if (r >= 0)
                r = ip_run(NULL, "link", "set", bridge, "up", NULL);
        return r;
}

int netns_bridge_del(const char *bridge) {
        if (!ifname_ok(bridge))
                return -EINVAL;
        if (!netns_link_exists(bridge))
                return 0;
        return ip_run(NULL, "link", "del", bridge, NULL);
}

int netns_rm_add(const char *ns, const char *veth, const char *bridge, const char *cidr) {
        if (!ns_name_ok(ns) || !ifname_ok(veth) || !ifname_ok(bridge) || !cidr_ok(cidr))
                return -EINVAL;
        int r = ip_run(NULL, "netns", "add", ns, NULL);
        if (r >= 0)
                r = ip_run(NULL, "-n", ns, "link", "set", "lo", "up", NULL);
        /* the peer is created inside ns, so "eth0" never clashes in the root namespace */
        if (r >= 0)
                r = ip_run(NULL, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns, NULL);
        if (r >= 0)
                r = ip_run(NULL, "link", "set", veth, "master", bridge, "up", NULL);
        if (r >= 0)
                r = ip_run(NULL, "-n", ns, "addr", "add", cidr, "dev", "eth0", NULL);
        if (r >= 0)
                r = ip_run(NULL, "-n", ns, "link", "set", "eth0", "up", NULL);
        return r;
}

int netns_rm_del(const char *ns, const char *veth) {
        if ((ns && !ns_name_ok(ns)) || (veth && !ifname_ok(veth)))
                return -EINVAL;
        int r = 0;
        /* deleting the namespace destroys eth0 and with it the host side of the pair */
        if (ns && netns_exists(ns))
                r = ip_run(NULL, "netns", "del", ns, NULL);
        if (veth && netns_link_exists(veth)) {
                int k = ip_run(NULL, "link", "del", veth, NULL);
                if (k < 0 && netns_link_exists(veth) && r >= 0)
                        r = k;
        }
        return r;
}

static int names_with_prefix(const char *dir, const char *prefix, char ***ret) {
        size_t n = 0;
        char **v = xcalloc(1, sizeof *v);
        DIR *d = opendir(dir);
        if (!d) {
                if (errno != ENOENT) {
                        int r = negative_errno();
                        strv_free(v);
                        return r;
                }
                *ret = v;
                return 0;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || !str_startswith(de->d_name, prefix))
                        continue;
                char **nv = realloc(v, (n + 2) * sizeof *v);
                if (!nv)
                        abort();
                v = nv;
                v[n++] = xstrdup(de->d_name);
                v[n] = NULL;
        }
        closedir(d);
        *ret = v;
        return 0;
}

int netns_list(const char *prefix, char ***ret) { return names_with_prefix(NETNS_RUN_DIR, prefix, ret); }

int netns_links(const char *prefix, char ***ret) { return names_with_prefix("/sys/class/net", prefix, ret); }

int netns_pids(const char *ns, pid_t **ret, size_t *ret_n) {
        if (!ns_name_ok(ns))
                return -EINVAL;
        _cleanup_free_ char *p = xasprintf(NETNS_RUN_DIR "/%s", ns);
        struct stat want;
        if (stat(p, &want) < 0)
                return negative_errno();
        DIR *d = opendir("/proc");
        if (!d)
                return negative_errno();
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                int64_t v;
                if (parse_int64(de->d_name, 1, INT32_MAX, &v) < 0)
                        continue;
                char path[64];
                snprintf(path, sizeof path, "/proc/%d/ns/net", (int)v);
                struct stat st;
                if (stat(path, &st) < 0 || st.st_dev != want.st_dev || st.st_ino != want.st_ino)
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

int netns_open(const char *ns) {
        if (!ns_name_ok(ns))
                return -EINVAL;
        _cleanup_free_ char *p = xasprintf(NETNS_RUN_DIR "/%s", ns);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

int netns_enter(int fd) {
        if (setns(fd, CLONE_NEWNET) < 0)
                return -errno;
        /* Best effort, like `ip netns exec`: a private mount namespace whose /sys belongs to the
         * new network namespace. Mounting over /sys (rather than unmounting first) leaves the
         * old /sys in place if the new mount is refused. The cgroup trees mounted below the old
         * /sys/fs/cgroup are carried over onto the new one (a detached copy taken first), as a
         * node confines its QEMUs in them (node-confine.c). */
        if (unshare(CLONE_NEWNS) == 0 && mount("", "/", NULL, MS_SLAVE | MS_REC, NULL) == 0) {
                int cg = (int)syscall(SYS_open_tree, AT_FDCWD, "/sys/fs/cgroup",
                                      1 /* OPEN_TREE_CLONE */ | O_CLOEXEC | 0x8000 /* AT_RECURSIVE */);
                if (mount("sysfs", "/sys", "sysfs", 0, NULL) == 0 && cg >= 0)
                        (void)syscall(SYS_move_mount, cg, "", AT_FDCWD, "/sys/fs/cgroup", 4 /* MOVE_MOUNT_F_EMPTY_PATH */);
                if (cg >= 0)
                        close(cg);
        }
        return 0;
}

static void prefixes_add(spec_prefix_t **v, size_t *n, uint32_t addr, unsigned len) {
        spec_prefix_t *nv = realloc(*v, (*n + 1) * sizeof **v);
        if (!nv)
                abort();
        *v = nv;
        nv[(*n)++] = (spec_prefix_t){ .addr = addr, .len = len };
}

int netns_used_prefixes(spec_prefix_t **ret, size_t *ret_n) {
        _cleanup_free_ spec_prefix_t *v = NULL;
        size_t n = 0;

        struct ifaddrs *ifa = NULL;
        if (getifaddrs(&ifa) < 0)
                return negative_errno();
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask)
                        continue;
                uint32_t a = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
                uint32_t m = ntohl(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
                prefixes_add(&v, &n, a & m, (unsigned)__builtin_popcount(m));
        }
        freeifaddrs(ifa);

        _cleanup_free_ char *out = NULL;
        int r = ip_run(&out, "-j", "-4", "route", "show", "table", "all", NULL);
        if (r < 0)
                return r;
        _cleanup_(json_decrefp) json_t *routes = json_loads(out, 0, NULL);
        if (!json_is_array(routes))
                return -EBADMSG;
        size_t i;
        json_t *route;
        json_array_foreach(routes, i, route) {
                const char *dst = json_string_value(json_object_get(route, "dst"));
                if (!dst || streq(dst, "default"))
                        continue;
                char buf[32];
                snprintf(buf, sizeof buf, "%s", dst);
                unsigned len = 32;
                char *slash = strchr(buf, '/');
                if (slash) {
                        int64_t l;
                        if (parse_int64(slash + 1, 0, 32, &l) < 0)
                                continue;
                        len = (unsigned)l;
                        *slash = 0;
                }
                struct in_addr a;
                if (inet_pton(AF_INET, buf, &a) != 1)
                        continue;
                prefixes_add(&v, &n, ntohl(a.s_addr), len);
        }
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}
