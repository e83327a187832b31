/* The guest firewall's pure half (node-guestfw.h): the table's name, prefixes, and the nft
 * script of the table. No I/O, so tests/unit/test-node-guestfw.c checks the text itself.
 *
 * Nothing reaches the script that was not checked or formatted here: the table name is built
 * from a valid RM name and a hash, prefixes are printed from their bytes by inet_ntop, uids and
 * ports are integers. So no input can add a rule, a comment or a second command to it.
 *
 * The table (keep in sync with docs/guest-isolation.md, "The rules"):
 *
 *   table inet vmatrix-guests-NAME-HASH {
 *     set refused_v4, refused_v6   interval sets: loopback, link-local, the Oracle, the control net
 *     set dns_v4, dns_v6           the host's resolvers
 *     set live                     uid . IPv4 . port, with timeouts: a live migration's own ports
 *     chain output   hook output, policy accept: sockets owned by a guest uid -> guest
 *     chain guest    established/related accept; live accept; DNS to a resolver accept;
 *                    to lo, to a local address (fib), to refused -> refuse; else return (accept)
 *     chain refuse   tcp: reset; anything else: icmp(v6) admin-prohibited
 *   }
 *
 * A guest that tries the control plane gets a reset at once rather than a timeout. A table of
 * its own per node (and hook priority filter): another node's table in the same namespace, or
 * the host's own firewall, are other tables, so each refuses on its own and none can let
 * through what another refuses. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"
#include "node/node-guestfw.h"

#define TABLE_PREFIX "vmatrix-guests-"

int node_guestfw_table_name(const char *node_name, const char *data_dir, char **ret) {
        if (!name_is_valid(node_name) || !data_dir || data_dir[0] != '/')
                return -EINVAL;
        /* the data directory tells RMs of one name apart (the operator picks the directories) */
        *ret = xasprintf(TABLE_PREFIX "%s-%08x", node_name, str_fnv1a32(data_dir));
        return 0;
}

/* The table names this file makes, and no others, reach a script. */
static bool table_name_ok(const char *t) {
        if (!t || !str_startswith(t, TABLE_PREFIX))
                return false;
        size_t n = strlen(t), p = strlen(TABLE_PREFIX);
        if (n < p + 1 + 9 || t[n - 9] != '-')
                return false;
        for (size_t i = n - 8; i < n; i++)
                if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
                        return false;
        _cleanup_free_ char *name = strndup(t + p, n - 9 - p);
        return name && name_is_valid(name);
}

static unsigned family_bits(int family) { return family == AF_INET ? 32 : 128; }

static void prefix_mask(node_guestfw_prefix_t *p) {
        unsigned bytes = family_bits(p->family) / 8;
        for (unsigned i = 0; i < bytes; i++) {
                unsigned keep = p->len > i * 8 ? MIN(p->len - i * 8, 8u) : 0;
                p->addr[i] &= (unsigned char)(0xff00u >> keep);
        }
        for (unsigned i = bytes; i < sizeof p->addr; i++)
                p->addr[i] = 0;
}

int node_guestfw_prefix_parse(const char *text, node_guestfw_prefix_t *ret) {
        /* the longest: an IPv6 literal (45) and "/128" */
        if (!text || !*text || strlen(text) > 49)
                return -EINVAL;
        char buf[50];
        snprintf(buf, sizeof buf, "%s", text);
        char *slash = strchr(buf, '/');
        if (slash)
                *slash = 0;
        node_guestfw_prefix_t p = { 0 };
        if (inet_pton(AF_INET, buf, p.addr) == 1)
                p.family = AF_INET;
        else if (inet_pton(AF_INET6, buf, p.addr) == 1)
                p.family = AF_INET6;
        else
                return -EINVAL;
        p.len = family_bits(p.family);
        if (slash) {
                const char *l = slash + 1;
                int64_t len;
                /* digits only: parse_int64 would take "+8" or " 8" */
                if (!*l || strspn(l, "0123456789") != strlen(l) || strlen(l) > 3 ||
                    parse_int64(l, 0, family_bits(p.family), &len) < 0)
                        return -EINVAL;
                p.len = (unsigned)len;
        }
        prefix_mask(&p);
        *ret = p;
        return 0;
}

void node_guestfw_prefix_format(const node_guestfw_prefix_t *p, char *buf, size_t size) {
        char a[INET6_ADDRSTRLEN] = "?";
        inet_ntop(p->family, p->addr, a, sizeof a);
        if (p->len == family_bits(p->family))
                snprintf(buf, size, "%s", a);
        else
                snprintf(buf, size, "%s/%u", a, p->len);
}

bool node_guestfw_prefix_within(const node_guestfw_prefix_t *a, const node_guestfw_prefix_t *b) {
        if (a->family != b->family || a->len < b->len)
                return false;
        node_guestfw_prefix_t m = *a;
        m.len = b->len;
        prefix_mask(&m);
        return memcmp(m.addr, b->addr, sizeof m.addr) == 0;
}

void node_guestfw_prefixes_add(node_guestfw_prefix_t **v, size_t *n, const node_guestfw_prefix_t *p) {
        for (size_t i = 0; i < *n; i++)
                if (node_guestfw_prefix_within(p, &(*v)[i]))
                        return;
        /* nft refuses overlapping intervals: keep only the widest of nested prefixes */
        size_t k = 0;
        for (size_t i = 0; i < *n; i++)
                if (!node_guestfw_prefix_within(&(*v)[i], p))
                        (*v)[k++] = (*v)[i];
        *n = k;
        *(node_guestfw_prefix_t *)array_append(v, n, sizeof **v) = *p;
}

int node_guestfw_prefixes_parse(const char *list, node_guestfw_prefix_t **v, size_t *n, char **ret_msg) {
        if (!list || !*list) {
                *ret_msg = xstrdup("--control-net needs at least one prefix (CIDR[,CIDR...])");
                return -EINVAL;
        }
        _cleanup_free_ node_guestfw_prefix_t *got = NULL;
        size_t count = 0;
        _cleanup_free_ char *copy = xstrdup(list);
        char *save = NULL;
        /* strtok_r skips empty fields: "a,,b" or a trailing comma would pass unseen */
        if (list[0] == ',' || list[strlen(list) - 1] == ',' || strstr(list, ",,")) {
                *ret_msg = xasprintf("--control-net \"%.80s\" has an empty entry", list);
                return -EINVAL;
        }
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                node_guestfw_prefix_t p;
                if (node_guestfw_prefix_parse(tok, &p) < 0) {
                        *ret_msg = xasprintf("--control-net: \"%.60s\" is not an IPv4 or IPv6 address or prefix "
                                             "(ADDR or ADDR/LEN, e.g. 10.1.0.0/16 or fd00::/8)",
                                             tok);
                        return -EINVAL;
                }
                *(node_guestfw_prefix_t *)array_append(&got, &count, sizeof *got) = p;
        }
        for (size_t i = 0; i < count; i++)
                node_guestfw_prefixes_add(v, n, &got[i]);
        return 0;
}

void node_guestfw_prefixes_add_fixed(node_guestfw_prefix_t **v, size_t *n) {
        static const char *const fixed[] = {
                "0.0.0.0/8",      /* "this network": connect() takes 0.0.0.0 for loopback */
                "127.0.0.0/8",    /* loopback: slirp's 10.0.2.2 is the host's 127.0.0.1 */
                "169.254.0.0/16", /* link-local: a cloud's metadata service, neighbours by autoconf */
                "255.255.255.255",
                "::",
                "::1",
                "fe80::/10", /* link-local: every host on the segment, the control net's RMs too */
        };
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++) {
                node_guestfw_prefix_t p;
                if (node_guestfw_prefix_parse(fixed[i], &p) < 0)
                        abort(); /* a typo above */
                node_guestfw_prefixes_add(v, n, &p);
        }
}

char *node_guestfw_prefixes_join(const node_guestfw_prefix_t *v, size_t n) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                abort();
        for (size_t i = 0; i < n; i++) {
                char buf[64];
                node_guestfw_prefix_format(&v[i], buf, sizeof buf);
                fprintf(f, "%s%s", i ? ", " : "", buf);
        }
        fclose(f);
        return text;
}

/* "set NAME { type T; [flags interval;] [elements = { ... }] }" of the prefixes of one family. */
static void set_print(FILE *f, const char *name, int family, bool interval, const node_guestfw_prefix_t *v, size_t n) {
        fprintf(f, "\tset %s {\n\t\ttype %s\n", name, family == AF_INET ? "ipv4_addr" : "ipv6_addr");
        if (interval)
                fprintf(f, "\t\tflags interval\n");
        bool any = false;
        for (size_t i = 0; i < n; i++) {
                if (v[i].family != family)
                        continue;
                char buf[64];
                node_guestfw_prefix_format(&v[i], buf, sizeof buf);
                fprintf(f, "%s%s", any ? ",\n\t\t\t" : "\t\telements = {\n\t\t\t", buf);
                any = true;
        }
        if (any)
                fprintf(f, "\n\t\t}\n");
        fprintf(f, "\t}\n");
}

static bool prefixes_ok(const node_guestfw_prefix_t *v, size_t n, bool hosts_only) {
        for (size_t i = 0; i < n; i++) {
                if (v[i].family != AF_INET && v[i].family != AF_INET6)
                        return false;
                if (v[i].len > family_bits(v[i].family) || (hosts_only && v[i].len != family_bits(v[i].family)))
                        return false;
                node_guestfw_prefix_t m = v[i];
                prefix_mask(&m);
                if (memcmp(m.addr, v[i].addr, sizeof m.addr) != 0)
                        return false;
                for (size_t k = 0; k < i && !hosts_only; k++)
                        if (node_guestfw_prefix_within(&v[i], &v[k]) || node_guestfw_prefix_within(&v[k], &v[i]))
                                return false; /* overlapping intervals: nft would refuse the set */
        }
        return true;
}

int node_guestfw_ruleset(const node_guestfw_spec_t *spec, char **ret) {
        if (!spec || !table_name_ok(spec->table) || spec->uid_first == 0 || spec->uid_first > spec->uid_last ||
            (spec->n_refused && !spec->refused) || (spec->n_dns && !spec->dns) ||
            !prefixes_ok(spec->refused, spec->n_refused, false) || !prefixes_ok(spec->dns, spec->n_dns, true))
                return -EINVAL;
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                abort();
        const char *t = spec->table;
        fprintf(f, "# generated by vmatrix node (src/node/node-guestfw-rules.c): guests off the control plane\n");
        /* add, delete, add: one transaction that replaces the table whether or not it exists */
        fprintf(f, "table inet %s\ndelete table inet %s\n", t, t);
        fprintf(f, "table inet %s {\n", t);
        set_print(f, "refused_v4", AF_INET, true, spec->refused, spec->n_refused);
        set_print(f, "refused_v6", AF_INET6, true, spec->refused, spec->n_refused);
        set_print(f, "dns_v4", AF_INET, false, spec->dns, spec->n_dns);
        set_print(f, "dns_v6", AF_INET6, false, spec->dns, spec->n_dns);
        fprintf(f, "\tset live {\n"
                   "\t\ttypeof meta skuid . ip daddr . tcp dport\n"
                   "\t\tflags timeout\n"
                   "\t}\n");
        fprintf(f, "\tchain output {\n"
                   "\t\ttype filter hook output priority filter; policy accept;\n"
                   "\t\tmeta skuid %u-%u jump guest\n"
                   "\t}\n",
                spec->uid_first, spec->uid_last);
        fprintf(f, "\tchain guest {\n"
                   "\t\tct state established,related accept\n"
                   "\t\tmeta skuid . ip daddr . tcp dport @live accept\n"
                   "\t\tmeta l4proto { tcp, udp } th dport 53 ip daddr @dns_v4 accept\n"
                   "\t\tmeta l4proto { tcp, udp } th dport 53 ip6 daddr @dns_v6 accept\n"
                   "\t\toifname \"lo\" jump refuse\n"
                   "\t\tfib daddr type local jump refuse\n"
                   "\t\tip daddr @refused_v4 jump refuse\n"
                   "\t\tip6 daddr @refused_v6 jump refuse\n"
                   "\t}\n");
        fprintf(f, "\tchain refuse {\n"
                   "\t\tmeta l4proto tcp reject with tcp reset\n"
                   "\t\treject with icmpx admin-prohibited\n"
                   "\t}\n"
                   "}\n");
        fclose(f);
        *ret = text;
        return 0;
}

int node_guestfw_ruleset_remove(const char *table, char **ret) {
        if (!table_name_ok(table))
                return -EINVAL;
        *ret = xasprintf("table inet %s\ndelete table inet %s\n", table, table);
        return 0;
}

int node_guestfw_live_argv(const char *table, bool add, uint32_t uid, const char *host, int port, int timeout_s,
                           char ***ret) {
        struct in_addr a;
        char canon[INET_ADDRSTRLEN];
        if (!table_name_ok(table) || uid == 0 || !host || strlen(host) >= sizeof canon ||
            inet_pton(AF_INET, host, &a) != 1 || port < 1 || port > 65535 || (add && timeout_s <= 0))
                return -EINVAL;
        inet_ntop(AF_INET, &a, canon, sizeof canon);
        /* the element is one word of nft's command line; nft joins its arguments and parses them */
        _cleanup_free_ char *element = add ? xasprintf("{ %u . %s . %d timeout %ds }", uid, canon, port, timeout_s)
                                           : xasprintf("{ %u . %s . %d }", uid, canon, port);
        const char *words[] = { add ? "add" : "delete", "element", "inet", table, "live", element };
        char **v = xcalloc(ELEMENTSOF(words) + 1, sizeof *v);
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                v[i] = xstrdup(words[i]);
        *ret = v;
        return 0;
}
