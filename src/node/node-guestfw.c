/* The guest firewall of one node (node-guestfw.h): learns what to refuse, installs the table,
 * opens a live migration's ports, removes the table on a clean exit.
 *
 * Why the nft program and not libnftables: the firewall is optional at run time (a node that is
 * not root, or has no nftables, runs without it and says so), and a link-time dependency on
 * libnftables would make it mandatory for every build and every node. The program takes the
 * same text libnftables would: a script from node_guestfw_ruleset, loaded with `nft -f FILE` in
 * one transaction, so a table is never half made. The script is written to DATA/guestfw.nft
 * (kept: it is what this node installed, for an operator to read) and nft is run with an argv
 * from a fixed system path, never through a shell or $PATH. */
#include "node/node-guestfw.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"
#include "node/node-internal.h"
#include "node/node-registry.h"
#include "vmm/qemu/guest-uid.h"

/* nft loads a table of a few dozen rules in milliseconds; 10 s means it hangs (a stuck
 * netlink), and the node should say so rather than wait. */
#define NFT_TIMEOUT_MS 10000
#define RESOLV_CONF "/etc/resolv.conf"
#define RESOLVERS_MAX 16

int node_guestfw_mode_parse(const char *s, node_guestfw_mode_t *ret) {
        static const char *const names[] = {
                [NODE_GUESTFW_AUTO] = "auto",
                [NODE_GUESTFW_REQUIRE] = "require",
                [NODE_GUESTFW_OFF] = "off",
        };
        for (size_t i = 0; s && i < ELEMENTSOF(names); i++)
                if (streq(s, names[i])) {
                        *ret = (node_guestfw_mode_t)i;
                        return 0;
                }
        return -EINVAL;
}

static const char *nft_find(void) {
        static const char *const paths[] = { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft" };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                if (access(paths[i], X_OK) == 0)
                        return paths[i];
        return NULL;
}

/* Runs nft ARGS (words after the program). 0, or -errno and *ret_msg with nft's own words. */
static int nft_run(const char *nft, char *const *args, char **ret_msg) {
        size_t n = 0;
        while (args[n])
                n++;
        _cleanup_free_ char **argv = xcalloc(n + 2, sizeof *argv);
        argv[0] = (char *)nft;
        memcpy(argv + 1, args, n * sizeof *argv);
        _cleanup_free_ char *out = NULL;
        int r = proc_run(argv, NFT_TIMEOUT_MS, &out);
        if (r < 0) {
                if (out) {
                        size_t len = strlen(out);
                        while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
                                out[--len] = 0;
                }
                *ret_msg = r == -ETIMEDOUT ? xasprintf("nft did not finish in %d s", NFT_TIMEOUT_MS / 1000)
                           : out && *out  ? xasprintf("nft: %s", out)
                                          : xasprintf("nft: %s", strerror(-r));
        }
        return r;
}

/* Loads script with `nft -f DATA/guestfw.nft`. */
static int nft_load(node_t *n, const char *script, char **ret_msg) {
        _cleanup_free_ char *path = xasprintf("%s/guestfw.nft", n->data);
        int r = file_write_atomic(path, script, strlen(script));
        if (r < 0) {
                *ret_msg = xasprintf("cannot write %s: %s", path, strerror(-r));
                return r;
        }
        char *args[] = { "-f", path, NULL };
        return nft_run(n->guestfw.nft, args, ret_msg);
}

/* The addresses of the Oracle's URL host ("http://HOST:PORT/...", or "https://NAME@HOST:PORT/..."
 * where NAME is the peer its certificate must name), each a host prefix. */
static int oracle_addresses(const char *url, node_guestfw_prefix_t **v, size_t *n) {
        const char *p = strstr(url, "://");
        p = p ? p + 3 : url;
        const char *at = strchr(p, '@');
        if (at && at < p + strcspn(p, "/?#"))
                p = at + 1;
        _cleanup_free_ char *host = NULL;
        if (*p == '[') { /* [IPv6]:port */
                const char *end = strchr(p, ']');
                if (!end)
                        return -EINVAL;
                host = strndup(p + 1, (size_t)(end - p - 1));
        } else {
                host = strndup(p, strcspn(p, ":/?#"));
        }
        if (!host || !*host)
                return -EINVAL;
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
        int r = getaddrinfo(host, NULL, &hints, &res);
        if (r != 0)
                return r == EAI_SYSTEM ? negative_errno() : -EHOSTUNREACH;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                char buf[INET6_ADDRSTRLEN];
                const void *a = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                                         : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
                node_guestfw_prefix_t pfx;
                if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
                    inet_ntop(ai->ai_family, a, buf, sizeof buf) && node_guestfw_prefix_parse(buf, &pfx) >= 0)
                        node_guestfw_prefixes_add(v, n, &pfx);
        }
        freeaddrinfo(res);
        return 0;
}

static unsigned mask_len(const struct sockaddr *m) {
        const unsigned char *b = m->sa_family == AF_INET ? (const unsigned char *)&((struct sockaddr_in *)m)->sin_addr
                                                         : (const unsigned char *)&((struct sockaddr_in6 *)m)->sin6_addr;
        unsigned bytes = m->sa_family == AF_INET ? 4 : 16, len = 0;
        for (unsigned i = 0; i < bytes; i++)
                len += (unsigned)__builtin_popcount(b[i]);
        return len;
}

/* The subnet of each interface address: of the one that is host, or of every one (but loopback)
 * when host is the wildcard. The listen address itself when no interface holds it. */
static int listen_subnets(const char *host, node_guestfw_prefix_t **v, size_t *n) {
        bool wildcard = streq(host, "0.0.0.0");
        struct in_addr want = { 0 };
        if (!wildcard && inet_pton(AF_INET, host, &want) != 1)
                return -EINVAL;
        struct ifaddrs *ifa = NULL;
        if (getifaddrs(&ifa) < 0)
                return negative_errno();
        bool found = false;
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                if (!i->ifa_addr || !i->ifa_netmask ||
                    (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
                        continue;
                if (wildcard ? (i->ifa_flags & IFF_LOOPBACK) != 0
                             : (i->ifa_addr->sa_family != AF_INET ||
                                ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr != want.s_addr))
                        continue;
                char buf[INET6_ADDRSTRLEN + 4];
                const void *a = i->ifa_addr->sa_family == AF_INET
                                        ? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                                        : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
                char addr[INET6_ADDRSTRLEN];
                if (!inet_ntop(i->ifa_addr->sa_family, a, addr, sizeof addr))
                        continue;
                snprintf(buf, sizeof buf, "%s/%u", addr, mask_len(i->ifa_netmask));
                node_guestfw_prefix_t p;
                if (node_guestfw_prefix_parse(buf, &p) >= 0) {
                        node_guestfw_prefixes_add(v, n, &p);
                        found = true;
                }
        }
        freeifaddrs(ifa);
        if (!found && !wildcard) {
                node_guestfw_prefix_t p;
                if (node_guestfw_prefix_parse(host, &p) >= 0)
                        node_guestfw_prefixes_add(v, n, &p);
        }
        return 0;
}

/* The nameservers of /etc/resolv.conf: where slirp sends a guest's DNS (10.0.2.3). */
static void resolvers(node_guestfw_prefix_t **v, size_t *n) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (file_read(RESOLV_CONF, &text, &len) < 0)
                return;
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line && *n < RESOLVERS_MAX; line = strtok_r(NULL, "\n", &save)) {
                char addr[64];
                node_guestfw_prefix_t p;
                /* "nameserver ADDR": a scoped address (fe80::1%eth0) does not parse and is left out */
                if (sscanf(line, " nameserver %63s", addr) == 1 && node_guestfw_prefix_parse(addr, &p) >= 0 &&
                    !strchr(addr, '/'))
                        node_guestfw_prefixes_add(v, n, &p);
        }
}

static void not_firewalled(const char *why) {
        log_warn("guests are NOT firewalled (%s): a guest can open connections to the Oracle, to every node "
                 "and to this host; see docs/guest-isolation.md",
                 why);
}

int node_guestfw_start(node_t *n) {
        node_guestfw_t *fw = &n->guestfw;
        _cleanup_free_ char *why = NULL;
        if (fw->mode == NODE_GUESTFW_OFF) {
                not_firewalled("--guest-firewall off");
                return 0;
        }
        if (n->driver != &vmm_qemu) {
                /* the fake driver of the daemon tests: no guest, no socket, no table to leave behind */
                not_firewalled("the VMM driver runs no guests");
                return 0;
        }
        if (geteuid() != 0)
                why = xstrdup("the node is not root: it cannot install nftables rules, and its QEMUs run under "
                              "its own uid, not a guest uid");
        const char *nft = why ? NULL : nft_find();
        if (!why && !nft)
                why = xstrdup("no nft program in /usr/sbin, /sbin, /usr/bin or /bin: install Debian's nftables");

        _cleanup_free_ char *table = NULL, *abs = realpath(n->data, NULL);
        if (!why && (!abs || node_guestfw_table_name(n->name, abs, &table) < 0))
                why = xasprintf("no table name for RM \"%s\" with data directory %s", n->name, n->data);

        _cleanup_free_ node_guestfw_prefix_t *refused = NULL, *dns = NULL;
        size_t n_refused = 0, n_dns = 0;
        if (!why) {
                node_guestfw_prefixes_add_fixed(&refused, &n_refused);
                int r = oracle_addresses(n->oracle, &refused, &n_refused);
                if (r < 0)
                        log_warn("guest firewall: cannot resolve the Oracle's host in %s (%s); only the control "
                                 "network is refused",
                                 n->oracle, strerror(-r));
                if (fw->control)
                        for (size_t i = 0; i < fw->n_control; i++)
                                node_guestfw_prefixes_add(&refused, &n_refused, &fw->control[i]);
                else if ((r = listen_subnets(n->host, &refused, &n_refused)) < 0)
                        why = xasprintf("cannot read this host's interface addresses: %s", strerror(-r));
                resolvers(&dns, &n_dns);
        }
        _cleanup_free_ char *script = NULL, *msg = NULL;
        if (!why) {
                node_guestfw_spec_t spec = { .table = table, .uid_first = GUEST_UID_FIRST, .uid_last = GUEST_UID_LAST,
                                             .refused = refused, .n_refused = n_refused, .dns = dns, .n_dns = n_dns };
                if (node_guestfw_ruleset(&spec, &script) < 0)
                        why = xstrdup("the ruleset could not be built");
        }
        if (!why) {
                fw->nft = xstrdup(nft);
                if (nft_load(n, script, &msg) < 0)
                        why = xasprintf("nft refused the rules: %s", msg);
        }
        if (why) {
                if (fw->mode == NODE_GUESTFW_REQUIRE) {
                        log_error("--guest-firewall require: cannot firewall guests: %s", why);
                        return -EPERM;
                }
                not_firewalled(why);
                return 0;
        }
        fw->table = TAKE_PTR(table);
        _cleanup_free_ char *list = node_guestfw_prefixes_join(refused, n_refused);
        _cleanup_free_ char *dns_list = node_guestfw_prefixes_join(dns, n_dns);
        log_info("guest firewall: table inet %s: sockets of uids %u-%u (confined QEMUs) may not open "
                 "connections to this host's addresses or to %s; DNS stays open to %s",
                 fw->table, GUEST_UID_FIRST, GUEST_UID_LAST, list, n_dns ? dns_list : "no resolver");
        return 0;
}

void node_guestfw_stop(node_t *n) {
        node_guestfw_t *fw = &n->guestfw;
        if (fw->table) {
                if (node_registry_has_vmm(n)) {
                        /* the agent stops, its VMs run on: they stay firewalled until the next
                         * start replaces the table */
                        log_info("guest firewall: table inet %s kept: VMs still run here", fw->table);
                } else {
                        _cleanup_free_ char *script = NULL, *msg = NULL;
                        if (node_guestfw_ruleset_remove(fw->table, &script) >= 0 && nft_load(n, script, &msg) < 0)
                                log_warn("guest firewall: cannot remove table inet %s: %s", fw->table, msg);
                }
        }
        free(fw->table);
        free(fw->nft);
        free(fw->control);
        *fw = (node_guestfw_t){ 0 };
}

bool node_guestfw_active(const node_t *n) { return n->guestfw.table != NULL; }

/* The uid that owns the sockets pid opens: its filesystem uid (the fourth of "Uid:"). */
static int process_fsuid(int64_t pid, uint32_t *ret) {
        _cleanup_free_ char *path = xasprintf("/proc/%lld/status", (long long)pid), *text = NULL;
        size_t len = 0;
        int r = file_read(path, &text, &len);
        if (r < 0)
                return r;
        const char *line = strstr(text, "\nUid:");
        unsigned long u[4];
        if (!line || sscanf(line + 5, "%lu %lu %lu %lu", &u[0], &u[1], &u[2], &u[3]) != 4 || u[3] > UINT32_MAX)
                return -EBADMSG;
        *ret = (uint32_t)u[3];
        return 0;
}

/* Adds (or deletes) the element of uid and ep's port. */
static int live_element(node_t *n, bool add, uint32_t uid, const char *host, int port, int timeout_s, char **ret_msg) {
        _cleanup_strv_free_ char **args = NULL;
        int r = node_guestfw_live_argv(n->guestfw.table, add, uid, host, port, timeout_s, &args);
        if (r < 0) {
                *ret_msg = xasprintf("bad live-migration endpoint %s:%d", host, port);
                return r;
        }
        return nft_run(n->guestfw.nft, args, ret_msg);
}

int node_guestfw_live_open(node_t *n, int64_t pid, const vmm_live_endpoint_t *ep, int64_t timeout_ms,
                           uint32_t *ret_uid, char **ret_msg) {
        *ret_uid = 0;
        uint32_t uid = 0;
        if (!node_guestfw_active(n) || pid <= 0 || process_fsuid(pid, &uid) < 0 || uid < GUEST_UID_FIRST ||
            uid > GUEST_UID_LAST)
                return 0;
        /* the element outlives a node that dies mid-migration by its timeout only */
        int timeout_s = (int)MIN(timeout_ms / 1000 + 60, 24 * 3600);
        _cleanup_free_ char *msg = NULL;
        int r = live_element(n, true, uid, ep->host, ep->migrate_port, timeout_s, &msg);
        if (r >= 0)
                r = live_element(n, true, uid, ep->host, ep->nbd_port, timeout_s, &msg);
        if (r < 0) {
                node_guestfw_live_close(n, uid, ep);
                *ret_msg = xasprintf("the guest firewall cannot open %s ports %d and %d to the VM's QEMU (uid %u): %s",
                                     ep->host, ep->migrate_port, ep->nbd_port, uid, msg);
                return r;
        }
        log_info("guest firewall: %s ports %d and %d open to uid %u for a live migration", ep->host, ep->migrate_port,
                 ep->nbd_port, uid);
        *ret_uid = uid;
        return 0;
}

void node_guestfw_live_close(node_t *n, uint32_t uid, const vmm_live_endpoint_t *ep) {
        if (uid == 0 || !node_guestfw_active(n))
                return;
        const int ports[] = { ep->migrate_port, ep->nbd_port };
        for (size_t i = 0; i < ELEMENTSOF(ports); i++) {
                _cleanup_free_ char *msg = NULL;
                /* absent (never added, or timed out) is fine; anything else is only logged: the
                 * element's timeout closes it anyway */
                if (live_element(n, false, uid, ep->host, ports[i], 0, &msg) < 0 && msg && !strstr(msg, "No such file"))
                        log_warn("guest firewall: cannot close %s:%d to uid %u: %s", ep->host, ports[i], uid, msg);
        }
}
