/* The guest firewall's pure half (node-guestfw-rules.c): table names, prefixes, the ruleset
 * text, the live-migration element; bad input of each kind refused. Where nft is installed and
 * we are root, `nft -c` (check only, nothing changes) also reads the ruleset. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "base/proc.h"
#include "base/util.h"
#include "node/node-guestfw.h"
#include "tap.h"
#include "vmm/qemu/guest-uid.h"

static void test_table_name(void) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
        CHECK(node_guestfw_table_name("prod1", "/srv/vmx/prod1", &a) == 0);
        CHECK(a && str_startswith(a, "vmatrix-guests-prod1-") && strlen(a) == strlen("vmatrix-guests-prod1-") + 8);
        CHECK(a && strspn(a + strlen(a) - 8, "0123456789abcdef") == 8);
        /* the same node again: the same table (a restart replaces it) */
        CHECK(node_guestfw_table_name("prod1", "/srv/vmx/prod1", &b) == 0);
        CHECK_STREQ(a, b);
        /* one name, another data directory (another cluster in the same namespace): another table */
        CHECK(node_guestfw_table_name("prod1", "/srv/other/prod1", &c) == 0);
        CHECK(a && c && !streq(a, c));
        CHECK(node_guestfw_table_name("a-b-9", "/d", &d) == 0);
        CHECK(d && str_startswith(d, "vmatrix-guests-a-b-9-"));

        /* names with odd characters: nothing of them reaches nft */
        static const char *const bad[] = { "", "Prod1", "a b", "a;b", "-x", "rm\n1", "a}", "a\"b", "../x", "a_b",
                                           "a.b", "ü", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *t = NULL;
                CHECK(node_guestfw_table_name(bad[i], "/d", &t) == -EINVAL && !t);
        }
        char *t = NULL;
        CHECK(node_guestfw_table_name(NULL, "/d", &t) == -EINVAL);
        CHECK(node_guestfw_table_name("prod1", "relative/dir", &t) == -EINVAL);
        CHECK(node_guestfw_table_name("prod1", NULL, &t) == -EINVAL);
        CHECK(node_guestfw_table_name("prod1", "", &t) == -EINVAL && !t);
}

static void check_prefix(const char *in, const char *want) {
        node_guestfw_prefix_t p;
        char buf[64] = "";
        int r = node_guestfw_prefix_parse(in, &p);
        if (r >= 0)
                node_guestfw_prefix_format(&p, buf, sizeof buf);
        CHECK(r == 0);
        CHECK_STREQ(buf, want);
}

static void test_prefixes(void) {
        check_prefix("10.1.2.0/24", "10.1.2.0/24");
        check_prefix("10.1.2.3/24", "10.1.2.0/24"); /* host bits cleared */
        check_prefix("10.1.2.3", "10.1.2.3");
        check_prefix("10.1.2.3/32", "10.1.2.3");
        check_prefix("0.0.0.0/0", "0.0.0.0/0");
        check_prefix("10.1.2.3/9", "10.0.0.0/9");
        check_prefix("fd00::1/8", "fd00::/8");
        check_prefix("::1", "::1");
        check_prefix("2001:db8::/32", "2001:db8::/32");
        check_prefix("2001:db8:0:0:0:0:0:1/128", "2001:db8::1");

        static const char *const bad[] = { "", "10.0.0.0/33", "10.0.0/24", "10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/ 8",
                                           "10.0.0.0/8/8", "10.0.0.0/-1", "::1/129", "abc", "10.0.0.256",
                                           "10.0.0.0/24;flush ruleset", "10.0.0.0/24 }", " 10.0.0.1", "10.0.0.1 ",
                                           "fe80::1%eth0", "10.0.0.0/0008",
                                           "1111:2222:3333:4444:5555:6666:7777:8888/128xxxxxxxxxxxxxxxxxxx" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                node_guestfw_prefix_t p;
                CHECK(node_guestfw_prefix_parse(bad[i], &p) == -EINVAL);
        }
        node_guestfw_prefix_t p;
        CHECK(node_guestfw_prefix_parse(NULL, &p) == -EINVAL);

        node_guestfw_prefix_t a, b;
        CHECK(node_guestfw_prefix_parse("10.77.0.1", &a) == 0 && node_guestfw_prefix_parse("10.77.0.0/24", &b) == 0);
        CHECK(node_guestfw_prefix_within(&a, &b) && !node_guestfw_prefix_within(&b, &a));
        CHECK(node_guestfw_prefix_parse("::1", &b) == 0 && !node_guestfw_prefix_within(&a, &b));

        /* --control-net lists */
        _cleanup_free_ node_guestfw_prefix_t *v = NULL;
        size_t n = 0;
        char *msg = NULL;
        CHECK(node_guestfw_prefixes_parse("10.1.0.0/16,fd00::/8", &v, &n, &msg) == 0 && n == 2 && !msg);
        _cleanup_free_ char *joined = node_guestfw_prefixes_join(v, n);
        CHECK_STREQ(joined, "10.1.0.0/16, fd00::/8");
        /* nested prefixes: only the widest is kept (nft refuses overlapping intervals) */
        CHECK(node_guestfw_prefixes_parse("10.1.2.3,10.0.0.0/8,10.1.0.0/16", &v, &n, &msg) == 0 && n == 2);
        _cleanup_free_ char *merged = node_guestfw_prefixes_join(v, n);
        CHECK_STREQ(merged, "fd00::/8, 10.0.0.0/8");

        static const char *const bad_lists[] = { "", "10.0.0.0/8,", ",10.0.0.0/8", "10.0.0.0/8,,10.1.0.0/16",
                                                 "10.0.0.0/8,nonsense", "10.0.0.0/33", "10.0.0.0/8 10.1.0.0/16" };
        for (size_t i = 0; i < ELEMENTSOF(bad_lists); i++) {
                size_t before = n;
                msg = NULL;
                CHECK(node_guestfw_prefixes_parse(bad_lists[i], &v, &n, &msg) == -EINVAL && msg && n == before);
                CHECK(msg && strstr(msg, "--control-net"));
                free(msg);
        }
        msg = NULL;
        CHECK(node_guestfw_prefixes_parse("10.0.0.0/8,nonsense", &v, &n, &msg) == -EINVAL);
        CHECK(msg && strstr(msg, "\"nonsense\" is not an IPv4 or IPv6 address or prefix"));
        free(msg);
        msg = NULL;
        CHECK(node_guestfw_prefixes_parse(NULL, &v, &n, &msg) == -EINVAL);
        free(msg);

        /* the fixed ones, and a control network inside one of them adds nothing */
        _cleanup_free_ node_guestfw_prefix_t *f = NULL;
        size_t nf = 0;
        node_guestfw_prefixes_add_fixed(&f, &nf);
        _cleanup_free_ char *fixed = node_guestfw_prefixes_join(f, nf);
        CHECK_STREQ(fixed, "0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 255.255.255.255, ::, ::1, fe80::/10");
        CHECK(node_guestfw_prefix_parse("127.0.0.1", &p) == 0);
        node_guestfw_prefixes_add(&f, &nf, &p);
        CHECK(nf == 7);
}

static const char want_ruleset[] =
        "# generated by vmatrix node (src/node/node-guestfw-rules.c): guests off the control plane\n"
        "table inet vmatrix-guests-prod1-0badcafe\n"
        "delete table inet vmatrix-guests-prod1-0badcafe\n"
        "table inet vmatrix-guests-prod1-0badcafe {\n"
        "\tset refused_v4 {\n"
        "\t\ttype ipv4_addr\n"
        "\t\tflags interval\n"
        "\t\telements = {\n"
        "\t\t\t127.0.0.0/8,\n"
        "\t\t\t10.77.0.0/24,\n"
        "\t\t\t192.0.2.7\n"
        "\t\t}\n"
        "\t}\n"
        "\tset refused_v6 {\n"
        "\t\ttype ipv6_addr\n"
        "\t\tflags interval\n"
        "\t\telements = {\n"
        "\t\t\t::1\n"
        "\t\t}\n"
        "\t}\n"
        "\tset dns_v4 {\n"
        "\t\ttype ipv4_addr\n"
        "\t\telements = {\n"
        "\t\t\t192.0.2.53\n"
        "\t\t}\n"
        "\t}\n"
        "\tset dns_v6 {\n"
        "\t\ttype ipv6_addr\n"
        "\t}\n"
        "\tset live {\n"
        "\t\ttypeof meta skuid . ip daddr . tcp dport\n"
        "\t\tflags timeout\n"
        "\t}\n"
        "\tchain output {\n"
        "\t\ttype filter hook output priority filter; policy accept;\n"
        "\t\tmeta skuid 1610612736-1610678271 jump guest\n"
        "\t}\n"
        "\tchain guest {\n"
        "\t\tct state established,related accept\n"
        "\t\tmeta skuid . ip daddr . tcp dport @live accept\n"
        "\t\tmeta l4proto { tcp, udp } th dport 53 ip daddr @dns_v4 accept\n"
        "\t\tmeta l4proto { tcp, udp } th dport 53 ip6 daddr @dns_v6 accept\n"
        "\t\toifname \"lo\" jump refuse\n"
        "\t\tfib daddr type local jump refuse\n"
        "\t\tip daddr @refused_v4 jump refuse\n"
        "\t\tip6 daddr @refused_v6 jump refuse\n"
        "\t}\n"
        "\tchain refuse {\n"
        "\t\tmeta l4proto tcp reject with tcp reset\n"
        "\t\treject with icmpx admin-prohibited\n"
        "\t}\n"
        "}\n";

static void prefixes_of(const char *const *texts, size_t n, node_guestfw_prefix_t *out) {
        for (size_t i = 0; i < n; i++)
                if (node_guestfw_prefix_parse(texts[i], &out[i]) < 0)
                        abort();
}

/* `nft -c -f FILE`: nft parses the script and the kernel validates it, nothing is applied.
 * Skipped (counted as neither) where nft is missing or we are not root. */
static void nft_check(const char *script) {
        if (geteuid() != 0 || access("/usr/sbin/nft", X_OK) != 0) {
                fprintf(stderr, "skip: nft -c (needs root and /usr/sbin/nft)\n");
                return;
        }
        char path[] = "/tmp/test-node-guestfw-XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        if (fd < 0)
                return;
        CHECK(fd_write_all(fd, script, strlen(script)) == 0);
        close(fd);
        char *argv[] = { "/usr/sbin/nft", "-c", "-f", path, NULL };
        _cleanup_free_ char *out = NULL;
        int r = proc_run(argv, 10000, &out);
        if (r < 0)
                fprintf(stderr, "nft -c: %s\n", out ? out : strerror(-r));
        CHECK(r == 0);
        unlink(path);
}

static void test_ruleset(void) {
        static const char *const refused_text[] = { "127.0.0.0/8", "10.77.0.0/24", "192.0.2.7", "::1" };
        static const char *const dns_text[] = { "192.0.2.53" };
        node_guestfw_prefix_t refused[ELEMENTSOF(refused_text)], dns[ELEMENTSOF(dns_text)];
        prefixes_of(refused_text, ELEMENTSOF(refused_text), refused);
        prefixes_of(dns_text, ELEMENTSOF(dns_text), dns);
        node_guestfw_spec_t spec = { .table = "vmatrix-guests-prod1-0badcafe", .uid_first = GUEST_UID_FIRST,
                                     .uid_last = GUEST_UID_LAST, .refused = refused,
                                     .n_refused = ELEMENTSOF(refused), .dns = dns, .n_dns = ELEMENTSOF(dns) };
        _cleanup_free_ char *text = NULL;
        CHECK(node_guestfw_ruleset(&spec, &text) == 0);
        CHECK_STREQ(text, want_ruleset);
        if (text)
                nft_check(text);

        /* with every fixed prefix and no resolver: still a script nft takes */
        _cleanup_free_ node_guestfw_prefix_t *f = NULL;
        size_t nf = 0;
        node_guestfw_prefixes_add_fixed(&f, &nf);
        node_guestfw_spec_t fixed = { .table = spec.table, .uid_first = 1, .uid_last = 1, .refused = f, .n_refused = nf };
        _cleanup_free_ char *text2 = NULL;
        CHECK(node_guestfw_ruleset(&fixed, &text2) == 0);
        CHECK(text2 && strstr(text2, "\t\t\tfe80::/10\n") && strstr(text2, "meta skuid 1-1 jump guest"));
        if (text2)
                nft_check(text2);

        /* bad specs: refused, nothing built */
        node_guestfw_spec_t s;
        char *out = NULL;
        CHECK(node_guestfw_ruleset(NULL, &out) == -EINVAL);
        static const char *const bad_tables[] = { "", "x", "vmatrix-guests-", "vmatrix-guests-prod1",
                                                  "vmatrix-guests-prod1-0badcafg", "vmatrix-guests-Prod1-0badcafe",
                                                  "vmatrix-guests-p;flush ruleset-0badcafe", "vmatrix-guests--0badcafe",
                                                  "vmatrix-guests-prod1-0badcafe\ndelete table inet x" };
        for (size_t i = 0; i < ELEMENTSOF(bad_tables); i++) {
                s = spec;
                s.table = bad_tables[i];
                CHECK(node_guestfw_ruleset(&s, &out) == -EINVAL && !out);
                CHECK(node_guestfw_ruleset_remove(bad_tables[i], &out) == -EINVAL && !out);
        }
        s = spec;
        s.table = NULL;
        CHECK(node_guestfw_ruleset(&s, &out) == -EINVAL);
        s = spec;
        s.uid_first = 0; /* root's sockets: the node's own */
        CHECK(node_guestfw_ruleset(&s, &out) == -EINVAL);
        s = spec;
        s.uid_first = s.uid_last + 1;
        CHECK(node_guestfw_ruleset(&s, &out) == -EINVAL);
        node_guestfw_prefix_t odd[2];
        prefixes_of((const char *const[]){ "10.0.0.0/8", "10.1.0.0/16" }, 2, odd);
        s = spec;
        s.refused = odd; /* overlapping */
        s.n_refused = 2;
        CHECK(node_guestfw_ruleset(&s, &out) == -EINVAL);
        odd[0].addr[3] = 1; /* host bits past the length */
        s.n_refused = 1;
        CHECK(node_guestfw_ruleset(&s, &out) == -EINVAL);
        odd[0].family = AF_UNIX;
        CHECK(node_guestfw_ruleset(&s, &out) == -EINVAL);
        s = spec;
        s.dns = odd + 1; /* a resolver is a host, not a /16 */
        CHECK(node_guestfw_ruleset(&s, &out) == -EINVAL);
        s = spec;
        s.refused = NULL;
        CHECK(node_guestfw_ruleset(&s, &out) == -EINVAL);
        CHECK(!out);

        _cleanup_free_ char *rm = NULL;
        CHECK(node_guestfw_ruleset_remove(spec.table, &rm) == 0);
        CHECK_STREQ(rm, "table inet vmatrix-guests-prod1-0badcafe\ndelete table inet vmatrix-guests-prod1-0badcafe\n");
}

static void test_live(void) {
        const char *t = "vmatrix-guests-prod1-0badcafe";
        _cleanup_strv_free_ char **add = NULL, **del = NULL;
        CHECK(node_guestfw_live_argv(t, true, GUEST_UID_FIRST + 1, "10.77.0.3", 45678, 600, &add) == 0);
        CHECK(add && streq(add[0], "add") && streq(add[1], "element") && streq(add[2], "inet") && streq(add[3], t) &&
              streq(add[4], "live") && add[6] == NULL);
        CHECK_STREQ(add ? add[5] : NULL, "{ 1610612737 . 10.77.0.3 . 45678 timeout 600s }");
        CHECK(node_guestfw_live_argv(t, false, GUEST_UID_FIRST + 1, "10.77.0.3", 45678, 0, &del) == 0);
        CHECK(del && streq(del[0], "delete"));
        CHECK_STREQ(del ? del[5] : NULL, "{ 1610612737 . 10.77.0.3 . 45678 }");

        char **v = NULL;
        CHECK(node_guestfw_live_argv(t, true, 5, "10.77.0.3 }; flush ruleset; {", 1, 1, &v) == -EINVAL);
        CHECK(node_guestfw_live_argv(t, true, 5, "::1", 1, 1, &v) == -EINVAL);
        CHECK(node_guestfw_live_argv(t, true, 5, "10.77.0.3", 0, 1, &v) == -EINVAL);
        CHECK(node_guestfw_live_argv(t, true, 5, "10.77.0.3", 65536, 1, &v) == -EINVAL);
        CHECK(node_guestfw_live_argv(t, true, 5, "10.77.0.3", 80, 0, &v) == -EINVAL);
        CHECK(node_guestfw_live_argv(t, true, 0, "10.77.0.3", 80, 1, &v) == -EINVAL);
        CHECK(node_guestfw_live_argv(t, true, 5, NULL, 80, 1, &v) == -EINVAL);
        CHECK(node_guestfw_live_argv("inet filter", true, 5, "10.77.0.3", 80, 1, &v) == -EINVAL);
        CHECK(!v);
}

static void test_mode(void) {
        node_guestfw_mode_t m = NODE_GUESTFW_OFF;
        CHECK(node_guestfw_mode_parse("auto", &m) == 0 && m == NODE_GUESTFW_AUTO);
        CHECK(node_guestfw_mode_parse("require", &m) == 0 && m == NODE_GUESTFW_REQUIRE);
        CHECK(node_guestfw_mode_parse("off", &m) == 0 && m == NODE_GUESTFW_OFF);
        CHECK(node_guestfw_mode_parse("on", &m) == -EINVAL && m == NODE_GUESTFW_OFF);
        CHECK(node_guestfw_mode_parse("", &m) == -EINVAL);
        CHECK(node_guestfw_mode_parse(NULL, &m) == -EINVAL);
}

int main(void) {
        test_table_name();
        test_prefixes();
        test_ruleset();
        test_live();
        test_mode();
        return tap_finish();
}
