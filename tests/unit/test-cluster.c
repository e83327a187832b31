/* Unit tests for src/cluster: name and subnet derivation from a directory, argv construction,
 * cluster.json round trips and damage, pid files, command-line identity checks, the /v1/rms
 * readiness parser and spawning with a log file. Nothing here needs root or a network. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "base/util.h"
#include "cluster/cluster.h"
#include "cluster/probe.h"
#include "cluster/process.h"
#include "cluster/spec.h"
#include "tap.h"

static char tmpdir[] = "/tmp/vmx-test-cluster-XXXXXX";

static bool is_hex6(const char *s) {
        if (strlen(s) != 6)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

static void test_names(void) {
        char a[7], b[7], a2[7];
        spec_dir_tag("/srv/cluster-a", a);
        spec_dir_tag("/srv/cluster-b", b);
        spec_dir_tag("/srv/cluster-a", a2);
        CHECK(is_hex6(a));
        CHECK(is_hex6(b));
        CHECK_STREQ(a, a2);
        CHECK(strcmp(a, b) != 0);

        _cleanup_free_ char *br = spec_bridge_name("/srv/cluster-a");
        _cleanup_free_ char *prefix = spec_netns_prefix("/srv/cluster-a");
        _cleanup_free_ char *want_br = xasprintf("vmx%s", a);
        _cleanup_free_ char *want_prefix = xasprintf("vmx%s-", a);
        CHECK_STREQ(br, want_br);
        CHECK_STREQ(prefix, want_prefix);
        CHECK(strlen(br) <= 15);
}

static void test_subnets(void) {
        /* candidates are 10.B.C.0 with B in 1..254, deterministic per dir */
        for (unsigned i = 0; i < 300; i++) {
                uint32_t s = spec_subnet_candidate("/srv/cluster-a", i);
                CHECK((s >> 24) == 10 && ((s >> 16) & 0xff) >= 1 && ((s >> 16) & 0xff) <= 254 && (s & 0xff) == 0);
        }
        CHECK(spec_subnet_candidate("/srv/cluster-a", 0) == spec_subnet_candidate("/srv/cluster-a", 0));
        CHECK(spec_subnet_candidate("/srv/cluster-a", 0) != spec_subnet_candidate("/srv/cluster-b", 0));
        CHECK(spec_subnet_candidate("/srv/cluster-a", 0) != spec_subnet_candidate("/srv/cluster-a", 1));

        uint32_t net = (10u << 24) | (20u << 16) | (30u << 8);
        spec_prefix_t inside = { net | 5, 32 }, same = { net, 24 }, wide = { 10u << 24, 8 },
                      other = { (10u << 24) | (20u << 16) | (31u << 8), 24 }, dflt = { 0, 0 },
                      half = { net | 128, 25 }, lan = { (192u << 24) | (168u << 16), 16 };
        CHECK(spec_subnet_overlaps(net, &inside, 1));
        CHECK(spec_subnet_overlaps(net, &same, 1));
        CHECK(spec_subnet_overlaps(net, &wide, 1));
        CHECK(spec_subnet_overlaps(net, &half, 1));
        CHECK(!spec_subnet_overlaps(net, &other, 1));
        CHECK(!spec_subnet_overlaps(net, &dflt, 1)); /* a default route uses nothing */
        CHECK(!spec_subnet_overlaps(net, &lan, 1));

        /* the first candidate is skipped when something uses it */
        uint32_t first = spec_subnet_candidate("/srv/x", 0), got = 0;
        spec_prefix_t used[] = { { first | 1, 32 }, dflt, lan };
        CHECK(spec_subnet_pick("/srv/x", used, 1, &got) == 0 && got != first && !spec_subnet_overlaps(got, used, 1));
        CHECK(spec_subnet_pick("/srv/x", used + 1, 2, &got) == 0 && got == first);
        CHECK(spec_subnet_pick("/srv/x", &wide, 1, &got) == -EADDRNOTAVAIL);

        _cleanup_free_ char *s = spec_address_format(net | 254);
        CHECK_STREQ(s, "10.20.30.254");
}

static void test_spec_netns(void) {
        uint32_t net = (10u << 24) | (7u << 16) | (9u << 8);
        _cleanup_(spec_freep) spec_t *s = NULL;
        CHECK(spec_new("/srv/c", "/usr/bin/vmatrix", "tcg", 2, 1, true, net, &s) == 0);
        if (!s)
                return;
        char tag[7];
        spec_dir_tag("/srv/c", tag);
        CHECK(s->netns && s->n_rms == 3);
        CHECK_STREQ(s->oracle.address, "10.7.9.1");
        CHECK(s->oracle.port == SPEC_ORACLE_PORT && !s->oracle.netns);
        CHECK_STREQ(s->rms[0].name, "prod1");
        CHECK_STREQ(s->rms[1].name, "prod2");
        CHECK_STREQ(s->rms[2].name, "chamber1");
        CHECK(s->rms[0].role == SPEC_ROLE_PRODUCTION && s->rms[2].role == SPEC_ROLE_CHAMBER);
        CHECK_STREQ(s->rms[0].address, "10.7.9.2");
        CHECK_STREQ(s->rms[2].address, "10.7.9.4");
        CHECK(s->rms[2].port == SPEC_NODE_PORT);
        _cleanup_free_ char *ns = xasprintf("vmx%s-chamber1", tag);
        _cleanup_free_ char *veth = xasprintf("vmx%s-3", tag);
        CHECK_STREQ(s->rms[2].netns, ns);
        CHECK_STREQ(s->rms[2].veth, veth);
        _cleanup_free_ char *url = spec_oracle_url(s);
        CHECK_STREQ(url, "https://10.7.9.1:7000");
        _cleanup_free_ char *node_url = spec_oracle_node_url(s);
        CHECK_STREQ(node_url, "https://10.7.9.1:7001");
        CHECK(spec_member_find(s, "oracle") == &s->oracle);
        CHECK(spec_member_find(s, "prod2") == &s->rms[1]);
        CHECK(spec_member_find(s, "prod3") == NULL);

        _cleanup_strv_free_ char **oa = spec_member_argv(s, &s->oracle);
        const char *want_oracle[] = { "/usr/bin/vmatrix", "oracle", "--node-listen", "10.7.9.1:7001", "--tls-auto",
                                      "--data", "/srv/c/oracle", "--listen", "10.7.9.1:7000", NULL };
        for (size_t i = 0; i < ELEMENTSOF(want_oracle); i++)
                CHECK((!oa[i] && !want_oracle[i]) || (oa[i] && want_oracle[i] && streq(oa[i], want_oracle[i])));

        _cleanup_strv_free_ char **na = spec_member_argv(s, &s->rms[2]);
        const char *want_node[] = { "/usr/bin/vmatrix", "node", "--oracle", "https://10.7.9.1:7001", "--name",
                                    "chamber1", "--role", "chamber", "--data", "/srv/c/nodes/chamber1", "--listen",
                                    "10.7.9.4:7070", "--accel", "tcg", NULL };
        for (size_t i = 0; i < ELEMENTSOF(want_node); i++)
                CHECK((!na[i] && !want_node[i]) || (na[i] && want_node[i] && streq(na[i], want_node[i])));

        _cleanup_free_ char *log = spec_member_log_path(s, &s->rms[0]);
        _cleanup_free_ char *pid = spec_member_pid_path(s, &s->oracle);
        CHECK_STREQ(log, "/srv/c/logs/prod1.log");
        CHECK_STREQ(pid, "/srv/c/pids/oracle.pid");

        /* the largest cluster still has interface names the kernel accepts */
        _cleanup_(spec_freep) spec_t *big = NULL;
        CHECK(spec_new("/a/very/long/directory/name/for/a/cluster", "/x", NULL, 200, SPEC_MAX_RMS - 200, true, net,
                       &big) == 0);
        if (big) {
                CHECK_STREQ(big->rms[SPEC_MAX_RMS - 1].address, "10.7.9.254");
                for (size_t i = 0; i < big->n_rms; i++)
                        CHECK(strlen(big->rms[i].veth) <= 15);
        }
}

static void test_spec_limits(void) {
        spec_t *s = NULL;
        CHECK(spec_new("/srv/c", "/x", NULL, 0, 0, false, 0, &s) == -ERANGE);
        CHECK(spec_new("/srv/c", "/x", NULL, 200, 54, false, 0, &s) == -ERANGE);
        CHECK(spec_new("relative", "/x", NULL, 1, 0, false, 0, &s) == -EINVAL);
        CHECK(spec_new("/srv/c", "x", NULL, 1, 0, false, 0, &s) == -EINVAL);
        CHECK(spec_new("/srv/c", "/x", NULL, 1, 0, true, 0xc0a80000, &s) == -EINVAL);
        CHECK(s == NULL);
}

static void test_spec_json(void) {
        uint32_t net = (10u << 24) | (7u << 16) | (9u << 8);
        _cleanup_(spec_freep) spec_t *s = NULL, *back = NULL, *lo = NULL, *lo_back = NULL;
        CHECK(spec_new("/srv/c", "/usr/bin/vmatrix", NULL, 1, 2, true, net, &s) == 0);
        _cleanup_(json_decrefp) json_t *j = spec_to_json(s);
        CHECK(j != NULL);
        CHECK(spec_from_json(j, &back) == 0);
        if (back) {
                CHECK_STREQ(back->dir, "/srv/c");
                CHECK(back->accel == NULL);
                CHECK(back->netns && back->subnet == net);
                CHECK_STREQ(back->bridge, s->bridge);
                CHECK(back->n_rms == 3);
                CHECK_STREQ(back->rms[2].name, "chamber2");
                CHECK_STREQ(back->rms[2].netns, s->rms[2].netns);
                CHECK_STREQ(back->rms[2].veth, s->rms[2].veth);
                CHECK(back->rms[2].role == SPEC_ROLE_CHAMBER && back->rms[2].port == 7070);
        }

        /* loopback: ports as picked, no namespaces */
        CHECK(spec_new("/srv/d", "/x", "kvm", 1, 0, false, 0, &lo) == 0);
        if (lo) {
                CHECK_STREQ(lo->oracle.address, "127.0.0.1");
                CHECK(!lo->bridge && !lo->rms[0].netns);
                lo->oracle.port = 40001;
                lo->rms[0].port = 40002;
                _cleanup_(json_decrefp) json_t *lj = spec_to_json(lo);
                CHECK(spec_from_json(lj, &lo_back) == 0);
                CHECK(lo_back && !lo_back->netns && lo_back->rms[0].port == 40002);
                CHECK(lo_back && lo_back->accel && streq(lo_back->accel, "kvm"));
                CHECK(lo_back && !lo_back->open_signup);
        }

        /* --open-signup: kept in cluster.json, so a restarted Oracle takes signups too */
        s->open_signup = true;
        _cleanup_(json_decrefp) json_t *sj = spec_to_json(s);
        _cleanup_(spec_freep) spec_t *signup_back = NULL;
        CHECK(spec_from_json(sj, &signup_back) == 0 && signup_back && signup_back->open_signup);
        if (signup_back) {
                _cleanup_strv_free_ char **oa = spec_member_argv(signup_back, &signup_back->oracle);
                bool found = false;
                for (size_t i = 0; oa[i]; i++)
                        found |= streq(oa[i], "--open-signup");
                CHECK(found);
                _cleanup_strv_free_ char **na = spec_member_argv(signup_back, &signup_back->rms[0]);
                for (size_t i = 0; na[i]; i++)
                        CHECK(!streq(na[i], "--open-signup"));
        }

        /* damage: everything that would reach argv or `ip` is checked */
        static const char *const bad[] = {
                "{}",
                "[]",
                "{\"version\":2,\"dir\":\"/c\",\"exe\":\"/x\",\"netns\":false,\"oracle\":{},\"rms\":[]}",
                "{\"version\":1,\"dir\":\"/c\",\"exe\":\"/x\",\"netns\":false,"
                "\"oracle\":{\"name\":\"oracle\",\"role\":\"oracle\",\"address\":\"127.0.0.1\",\"port\":1},\"rms\":[]}",
                "{\"version\":1,\"dir\":\"/c\",\"exe\":\"/x\",\"netns\":false,"
                "\"oracle\":{\"name\":\"oracle\",\"role\":\"oracle\",\"address\":\"127.0.0.1\",\"port\":1},"
                "\"rms\":[{\"name\":\"a;rm -rf\",\"role\":\"chamber\",\"address\":\"127.0.0.1\",\"port\":2}]}",
                "{\"version\":1,\"dir\":\"/c\",\"exe\":\"/x\",\"netns\":false,"
                "\"oracle\":{\"name\":\"oracle\",\"role\":\"oracle\",\"address\":\"127.0.0.1\",\"port\":1},"
                "\"rms\":[{\"name\":\"a\",\"role\":\"boss\",\"address\":\"127.0.0.1\",\"port\":2}]}",
                "{\"version\":1,\"dir\":\"/c\",\"exe\":\"/x\",\"netns\":false,"
                "\"oracle\":{\"name\":\"oracle\",\"role\":\"oracle\",\"address\":\"127.0.0.1\",\"port\":1},"
                "\"rms\":[{\"name\":\"a\",\"role\":\"chamber\",\"address\":\"127.0.0.1\",\"port\":2},"
                "{\"name\":\"a\",\"role\":\"chamber\",\"address\":\"127.0.0.1\",\"port\":3}]}",
                "{\"version\":1,\"dir\":\"/c\",\"exe\":\"/x\",\"netns\":true,\"bridge\":\"vmx-with-a-long-name\","
                "\"subnet\":\"10.1.2.0/24\","
                "\"oracle\":{\"name\":\"oracle\",\"role\":\"oracle\",\"address\":\"10.1.2.1\",\"port\":1},"
                "\"rms\":[{\"name\":\"a\",\"role\":\"chamber\",\"address\":\"10.1.2.2\",\"port\":2,"
                "\"netns\":\"vmx1-a\",\"veth\":\"vmx1-1\"}]}",
                "{\"version\":1,\"dir\":\"/c\",\"exe\":\"/x\",\"netns\":true,\"bridge\":\"vmx1\","
                "\"subnet\":\"10.1.2.0/24\","
                "\"oracle\":{\"name\":\"oracle\",\"role\":\"oracle\",\"address\":\"10.1.2.1\",\"port\":1},"
                "\"rms\":[{\"name\":\"a\",\"role\":\"chamber\",\"address\":\"10.1.2.2\",\"port\":2,"
                "\"netns\":\"../../etc\",\"veth\":\"vmx1-1\"}]}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(json_decrefp) json_t *bj = json_loads(bad[i], 0, NULL);
                spec_t *x = NULL;
                int r = spec_from_json(bj, &x);
                CHECK(r == -EBADMSG);
                if (r != -EBADMSG)
                        fprintf(stderr, "  accepted bad cluster.json #%zu\n", i);
                spec_free(x);
        }

        /* files: saved whole, a truncated file is reported as damaged, a missing one as such */
        _cleanup_free_ char *path = xasprintf("%s/cluster.json", tmpdir);
        _cleanup_(spec_freep) spec_t *loaded = NULL, *none = NULL, *half = NULL;
        CHECK(spec_save(s, path) == 0);
        CHECK(spec_load(path, &loaded) == 0 && loaded && loaded->n_rms == 3);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        CHECK(file_read(path, &text, &len) == 0);
        CHECK(file_write_atomic(path, text, len / 2) == 0);
        CHECK(spec_load(path, &half) == -EBADMSG);
        _cleanup_free_ char *missing = xasprintf("%s/none.json", tmpdir);
        CHECK(spec_load(missing, &none) == -ENOENT);
}

static void test_pidfiles(void) {
        _cleanup_free_ char *path = xasprintf("%s/x.pid", tmpdir);
        pid_t pid = 0;
        CHECK(process_pidfile_read(path, &pid) == -ENOENT);
        CHECK(process_pidfile_write(path, 4242) == 0);
        CHECK(process_pidfile_read(path, &pid) == 0 && pid == 4242);
        _cleanup_free_ char *text = NULL;
        CHECK(file_read(path, &text, NULL) == 0 && text && streq(text, "4242\n"));
        CHECK(process_pidfile_write(path, 0) == -EINVAL);
        CHECK(process_pidfile_write(path, 1) == -EINVAL);

        static const char *const bad[] = { "", "\n", "abc\n", "12 13\n", "-5\n", "0\n", "1\n", "99999999999\n" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                CHECK(file_write_atomic(path, bad[i], strlen(bad[i])) == 0);
                CHECK(process_pidfile_read(path, &pid) == -EBADMSG);
        }
        CHECK(file_write_atomic(path, "77", 2) == 0);
        CHECK(process_pidfile_read(path, &pid) == 0 && pid == 77);

        /* atomic writes leave no temporary files behind */
        _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
        CHECK(!file_exists(tmp));
}

static void test_identity(void) {
        char *member[] = { "/usr/bin/vmatrix", "node", "--oracle", "http://x", "--name", "prod1", "--data",
                           "/srv/c/nodes/prod1", "--listen", "10.1.1.2:7070", NULL };
        char *oracle[] = { "/usr/bin/vmatrix", "oracle", "--data", "/srv/c/oracle", NULL };
        char *cli[] = { "/usr/bin/vmatrix", "vm", "list", "--data", "/srv/c/oracle", NULL };
        char *other_dir[] = { "/usr/bin/vmatrix", "oracle", "--data", "/srv/c2/oracle", NULL };
        char *dangling[] = { "/usr/bin/vmatrix", "oracle", "--data", NULL };
        char *empty[] = { NULL };
        CHECK(process_argv_is_member(member, "/usr/bin/vmatrix", "/srv/c/nodes/prod1"));
        CHECK(process_argv_is_member(member, NULL, "/srv/c/nodes/prod1"));
        CHECK(!process_argv_is_member(member, "/opt/vmatrix", "/srv/c/nodes/prod1"));
        CHECK(!process_argv_is_member(member, NULL, "/srv/c/nodes/prod2"));
        CHECK(process_argv_is_member(oracle, "/usr/bin/vmatrix", "/srv/c/oracle"));
        CHECK(!process_argv_is_member(cli, "/usr/bin/vmatrix", "/srv/c/oracle"));
        CHECK(!process_argv_is_member(other_dir, NULL, "/srv/c/oracle"));
        CHECK(!process_argv_is_member(dangling, NULL, "/srv/c/oracle"));
        CHECK(!process_argv_is_member(empty, NULL, "/srv/c/oracle"));
        CHECK_STREQ(process_argv_data_dir(member, NULL), "/srv/c/nodes/prod1");

        char *q1[] = { "/usr/bin/qemu-system-x86_64", "-pidfile", "q.pid", NULL };
        char *q2[] = { "qemu-system-aarch64", NULL };
        char *q3[] = { "/usr/bin/qemu-img", "info", NULL };
        char *q4[] = { "/tmp/qemu-system-x86_64/sh", NULL };
        CHECK(process_argv_is_qemu(q1));
        CHECK(process_argv_is_qemu(q2));
        CHECK(!process_argv_is_qemu(q3));
        CHECK(!process_argv_is_qemu(q4));
        CHECK(!process_argv_is_qemu(empty));

        /* this very process is alive but no cluster member; a reaped child is not alive */
        CHECK(process_alive(getpid()));
        CHECK(!process_is_member(getpid(), NULL, "/srv/c/oracle"));
        pid_t sid = 0;
        CHECK(process_sid(getpid(), &sid) == 0 && sid == getsid(0));
        pid_t child = fork();
        if (child == 0)
                _exit(0);
        CHECK(child > 0);
        time_sleep_ms(50);
        CHECK(!process_alive(child)); /* a zombie counts as dead */
        int status = -1;
        CHECK(process_reap(child, &status) == 1 && WIFEXITED(status));
        CHECK(!process_alive(child));
}

static void test_rms_parse(void) {
        char *names[] = { "prod1", "prod2", "chamber1" };
        bool up[3];
        _cleanup_(json_decrefp) json_t *all = json_loads(
                "[{\"name\":\"prod1\",\"role\":\"production\",\"state\":\"up\",\"address\":\"a\"},"
                "{\"name\":\"chamber1\",\"role\":\"chamber\",\"state\":\"up\",\"address\":\"c\"},"
                "{\"name\":\"prod2\",\"role\":\"production\",\"state\":\"up\",\"address\":\"b\"},"
                "{\"name\":\"extra\",\"role\":\"production\",\"state\":\"down\",\"address\":\"d\"}]",
                0, NULL);
        CHECK(probe_rms_parse(all, names, 3, up) == 0 && up[0] && up[1] && up[2]);

        _cleanup_(json_decrefp) json_t *some = json_loads(
                "{\"rms\":[{\"name\":\"prod1\",\"state\":\"down\"},{\"name\":\"chamber1\",\"state\":\"up\"},"
                "{\"name\":\"prod2\"}]}",
                0, NULL);
        CHECK(probe_rms_parse(some, names, 3, up) == 0 && !up[0] && !up[1] && up[2]);

        _cleanup_(json_decrefp) json_t *empty = json_array();
        CHECK(probe_rms_parse(empty, names, 3, up) == 0 && !up[0] && !up[1] && !up[2]);
        _cleanup_(json_decrefp) json_t *str = json_string("up");
        CHECK(probe_rms_parse(str, names, 3, up) == -EBADMSG);
        CHECK(probe_rms_parse(NULL, names, 3, up) == -EBADMSG);
}

static void test_spawn(void) {
        _cleanup_free_ char *log = xasprintf("%s/spawn.log", tmpdir);
        char *argv[] = { "/bin/sh", "-c", "echo out; echo err >&2; exec sleep 30", NULL };
        pid_t pid = 0, sid = 0;
        const char *step = NULL;
        CHECK(process_spawn(argv, -1, log, &pid, &step) == 0 && pid > 0);
        time_sleep_ms(200);
        CHECK(process_alive(pid));
        CHECK(process_sid(pid, &sid) == 0 && sid == pid); /* detached in its own session */
        CHECK(process_stop(&pid, 1, 2000) == 0);
        CHECK(!process_alive(pid));
        _cleanup_free_ char *text = NULL;
        CHECK(file_read(log, &text, NULL) == 0 && strstr(text, "\nout\n") && strstr(text, "\nerr\n") &&
              strstr(text, "starting /bin/sh -c"));

        /* TERM ignored: KILL after the timeout */
        char *stubborn[] = { "/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.05; done", NULL };
        CHECK(process_spawn(stubborn, -1, log, &pid, &step) == 0);
        time_sleep_ms(200);
        CHECK(process_stop(&pid, 1, 300) == 1);
        CHECK(!process_alive(pid));

        /* a failure before exec comes back as -errno with the step */
        char *missing[] = { "/nonexistent/vmatrix", "oracle", NULL };
        CHECK(process_spawn(missing, -1, log, &pid, &step) == -ENOENT && step && streq(step, "exec"));
        char *relative[] = { "vmatrix", NULL };
        CHECK(process_spawn(relative, -1, log, &pid, &step) == -EINVAL);
}

static void test_oracle_url(void) {
        _cleanup_free_ char *path = xasprintf("%s/oracle.url", tmpdir);
        _cleanup_free_ char *url = NULL, *none = NULL;
        CHECK(file_write_atomic(path, " http://10.1.2.1:7000\n", 22) == 0);
        CHECK(cluster_oracle_url(tmpdir, &url) == 0);
        CHECK_STREQ(url, "http://10.1.2.1:7000");
        CHECK(file_write_atomic(path, "\n", 1) == 0);
        CHECK(cluster_oracle_url(tmpdir, &none) == -EBADMSG);
        unlink(path);
        CHECK(cluster_oracle_url(tmpdir, &none) == -ENOENT);
        CHECK(none == NULL);
}

int main(void) {
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        test_names();
        test_subnets();
        test_spec_netns();
        test_spec_limits();
        test_spec_json();
        test_pidfiles();
        test_identity();
        test_rms_parse();
        test_spawn();
        test_oracle_url();
        rm_rf(tmpdir);
        return tap_finish();
}
