/* Unit tests for confinement (docs/confinement.md): the cgroup layout of hybrid and pure v2
 * hosts and the limit files (base/cgroup.c), host-wide uid claims (base/idclaim.c), the plan of a
 * jail and, as root, a process started in one (base/jail.c), and what a QEMU config puts in its
 * jail: backing chains from qcow2 headers, binds, ownership (vmm/qemu/qemu-confine.c). */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "base/cgroup.h"
#include "base/idclaim.h"
#include "base/jail.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "node/node-confine.h"
#include "tap.h"
#include "vmm/qemu/guest-uid.h"
#include "vmm/qemu/qemu-confine.h"

/* ---- cgroup layout ---- */

/* This project's test machines: v1 memory, cpu, pids (and others), v2 without controllers; the
 * agent's own memory group is a supervisor's. */
static const char hybrid_mountinfo[] =
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
        "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
static const char hybrid_self[] = "9:name=systemd:/\n8:pids:/\n4:memory:/sup/session1\n2:cpuacct:/\n1:cpu:/\n0::/\n";

static const char v2_mountinfo[] = "25 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec - cgroup2 cgroup2 rw,nsdelegate\n";
static const char v2_self[] = "0::/system.slice/vmatrix-node.service\n";

/* systemd's older layout: cpu and cpuacct co-mounted, a mount point with a space. */
static const char comount_mountinfo[] =
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "35 31 0:32 / /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n";

static const cgroup_hierarchy_t *layout_with(const cgroup_layout_t *l, cgroup_controller_t c) {
        for (size_t i = 0; i < l->n; i++)
                if (l->h[i].controllers & (1u << c))
                        return &l->h[i];
        return NULL;
}

static void test_cgroup_layout(void) {
        cgroup_layout_t l = { 0 };
        CHECK(cgroup_layout_parse(hybrid_mountinfo, hybrid_self, "hugetlb\n", &l) == 0);
        CHECK(l.n == 4);
        CHECK(l.n > 0 && l.h[0].v2 && l.h[0].controllers == 0);
        CHECK_STREQ(l.n > 0 ? l.h[0].base : NULL, "/sys/fs/cgroup/unified/vmatrix");
        const cgroup_hierarchy_t *mem = layout_with(&l, CGROUP_MEMORY), *cpu = layout_with(&l, CGROUP_CPU);
        const cgroup_hierarchy_t *pids = layout_with(&l, CGROUP_PIDS);
        CHECK(mem && !mem->v2 && cpu && !cpu->v2 && pids && !pids->v2);
        /* below the agent's own group in v1 */
        CHECK_STREQ(mem ? mem->base : NULL, "/sys/fs/cgroup/memory/sup/session1/vmatrix");
        CHECK_STREQ(cpu ? cpu->base : NULL, "/sys/fs/cgroup/cpu/vmatrix");
        CHECK(l.missing == 0);
        _cleanup_strv_free_ char **dirs = cgroup_group_dirs(&l, "rm1-0a1b2c3d", "web");
        CHECK_STREQ(dirs[1], cpu == &l.h[1] ? "/sys/fs/cgroup/cpu/vmatrix/rm1-0a1b2c3d/web" : dirs[1]);
        CHECK(dirs[4] == NULL);
        cgroup_layout_clear(&l);

        /* a pure v2 host: everything in one tree, at its root */
        CHECK(cgroup_layout_parse(v2_mountinfo, v2_self, "cpuset cpu io memory hugetlb pids rdma misc\n", &l) == 0);
        CHECK(l.n == 1 && l.h[0].v2);
        CHECK(l.n == 1 && l.h[0].controllers == ((1u << CGROUP_MEMORY) | (1u << CGROUP_CPU) | (1u << CGROUP_PIDS)));
        CHECK_STREQ(l.n ? l.h[0].base : NULL, "/sys/fs/cgroup/vmatrix");
        char names[64];
        CHECK_STREQ(cgroup_controllers_format(l.h[0].controllers, names, sizeof names), "memory,cpu,pids");
        cgroup_layout_clear(&l);

        /* v2 lacking pids, and no v1 of it: pids is missing */
        CHECK(cgroup_layout_parse(v2_mountinfo, v2_self, "cpu memory\n", &l) == 0);
        CHECK(l.missing == 1u << CGROUP_PIDS);
        cgroup_layout_clear(&l);

        /* co-mounted cpu,cpuacct is one hierarchy; escaped mount points are read back; no v2 */
        CHECK(cgroup_layout_parse(comount_mountinfo, "3:cpu,cpuacct:/\n2:memory:/\n", NULL, &l) == 0);
        CHECK(l.n == 2);
        CHECK_STREQ(l.n == 2 ? l.h[0].base : NULL, "/sys/fs/cgroup/mem ory/vmatrix");
        CHECK_STREQ(l.n == 2 ? l.h[1].base : NULL, "/sys/fs/cgroup/cpu,cpuacct/vmatrix");
        CHECK(l.missing == 1u << CGROUP_PIDS);
        cgroup_layout_clear(&l);

        /* cpuset and cpuacct are not cpu */
        CHECK(cgroup_layout_parse("1 0 0:1 / /c rw - cgroup cgroup rw,cpuset,cpuacct\n", "", NULL, &l) == 0);
        CHECK(l.n == 0 && l.missing == 7);
        cgroup_layout_clear(&l);

        CHECK(cgroup_layout_parse("1 0 8:1 / / rw - ext4 /dev/vda rw\n", "", NULL, &l) == -ENOENT);
        CHECK(cgroup_layout_parse("garbage\n\n- - -\n", "", NULL, &l) == -ENOENT);
}

static void test_cgroup_limits(void) {
        /* 100% per vCPU by default, the given percent otherwise */
        cgroup_limits_t l = cgroup_limits_for(128, 256, 2, 0, 130);
        CHECK(l.memory_bytes == (uint64_t)384 << 20);
        CHECK(l.cpu_quota_us == 200000);
        CHECK(l.pids == 130);
        l = cgroup_limits_for(128, 256, 2, 50, 130);
        CHECK(l.cpu_quota_us == 50000);
        l = cgroup_limits_for(128, 256, 1, 1, 130);
        CHECK(l.cpu_quota_us == 1000); /* the kernel's minimum quota: 1 ms */

        const char *files[2];
        char values[2][32];
        l = cgroup_limits_for(128, 256, 2, 50, 130);
        CHECK(cgroup_limit_files(true, CGROUP_CPU, &l, files, values) == 1);
        CHECK_STREQ(files[0], "cpu.max");
        CHECK_STREQ(values[0], "50000 100000");
        CHECK(cgroup_limit_files(false, CGROUP_CPU, &l, files, values) == 2);
        CHECK_STREQ(files[0], "cpu.cfs_period_us");
        CHECK_STREQ(values[0], "100000");
        CHECK_STREQ(files[1], "cpu.cfs_quota_us");
        CHECK_STREQ(values[1], "50000");
        CHECK(cgroup_limit_files(true, CGROUP_MEMORY, &l, files, values) == 1);
        CHECK_STREQ(files[0], "memory.max");
        CHECK_STREQ(values[0], "402653184");
        CHECK(cgroup_limit_files(false, CGROUP_MEMORY, &l, files, values) == 1);
        CHECK_STREQ(files[0], "memory.limit_in_bytes");
        CHECK(cgroup_limit_files(false, CGROUP_PIDS, &l, files, values) == 1);
        CHECK_STREQ(files[0], "pids.max");
        CHECK_STREQ(values[0], "130");
        /* no limit */
        cgroup_limits_t none = { 0 };
        CHECK(cgroup_limit_files(true, CGROUP_CPU, &none, files, values) == 1);
        CHECK_STREQ(values[0], "max 100000");
        CHECK(cgroup_limit_files(false, CGROUP_CPU, &none, files, values) == 2);
        CHECK_STREQ(values[1], "-1");
        CHECK(cgroup_limit_files(true, CGROUP_MEMORY, &none, files, values) == 1);
        CHECK_STREQ(values[0], "max");
        CHECK(cgroup_limit_files(true, CGROUP_PIDS, &none, files, values) == 1);
        CHECK_STREQ(values[0], "max");
}

/* Real groups in the cgroup tree of this host (as root): create with limits, rename, remove. */
static void test_cgroup_real(void) {
        cgroup_layout_t l = { 0 };
        if (geteuid() != 0 || cgroup_layout_detect(&l) < 0 || l.n == 0) {
                printf("cgroup: skipped (not root, or no cgroup tree)\n");
                cgroup_layout_clear(&l);
                return;
        }
        char node[32];
        snprintf(node, sizeof node, "unit-%d", (int)getpid());
        cgroup_limits_t lim = cgroup_limits_for(64, 64, 1, 50, 64);
        CHECK(cgroup_group_create(&l, node, "a", &lim) == 0);
        _cleanup_strv_free_ char **a = cgroup_group_dirs(&l, node, "a");
        for (size_t i = 0; i < l.n; i++) {
                struct stat st;
                CHECK(stat(a[i], &st) == 0 && S_ISDIR(st.st_mode));
                if (l.h[i].controllers & (1u << CGROUP_PIDS)) {
                        _cleanup_free_ char *p = xasprintf("%s/pids.max", a[i]), *v = NULL;
                        CHECK(file_read(p, &v, NULL) == 0 && str_startswith(v, "64"));
                }
        }
        CHECK(cgroup_group_create(&l, node, "a", &lim) == 0); /* reused */
        CHECK(cgroup_group_create(&l, node, "b/c", &lim) == -EINVAL);
        /* a process moves into a new group and the old one goes */
        pid_t child = fork();
        if (child == 0) {
                pause();
                _exit(0);
        }
        for (size_t i = 0; i < l.n; i++) {
                _cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", a[i]);
                char text[32];
                snprintf(text, sizeof text, "%d", (int)child);
                        int fd = open(procs, O_WRONLY);
                CHECK(fd >= 0 && write(fd, text, strlen(text)) > 0);
                if (fd >= 0)
                        close(fd);
        }
        CHECK(cgroup_dirs_remove(a) == -EBUSY); /* it has a process */
        CHECK(cgroup_group_move(&l, node, "a", "b", child, &lim) == 0);
        _cleanup_strv_free_ char **b = cgroup_group_dirs(&l, node, "b");
        CHECK(access(b[0], F_OK) == 0 && access(a[0], F_OK) < 0);
        _cleanup_free_ char *procs_b = xasprintf("%s/cgroup.procs", b[l.n - 1]), *in_b = NULL;
        CHECK(file_read(procs_b, &in_b, NULL) == 0 && atoi(in_b) == child);
        CHECK(cgroup_dirs_remove(b) == -EBUSY);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        CHECK(cgroup_dirs_remove(b) == 0);
        CHECK(access(b[0], F_OK) < 0);
        /* the node's directory went with its last group */
        _cleanup_free_ char *nodedir = xasprintf("%s/%s", l.h[0].base, node);
        CHECK(access(nodedir, F_OK) < 0);
        CHECK(cgroup_dirs_remove(b) == 0); /* gone already: fine */
        cgroup_layout_clear(&l);
}

/* ---- uid claims ---- */

/* A child that runs as uid until killed (as root). */
static pid_t uid_holder(uid_t uid) {
        pid_t pid = fork();
        if (pid == 0) {
                if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(1);
                pause();
                _exit(0);
        }
        for (int i = 0; i < 200 && !idclaim_uid_in_use(uid); i++)
                time_sleep_ms(5);
        return pid;
}

static void child_stop(pid_t pid) {
        if (pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
}

static void test_idclaim(void) {
        char dir[] = "/tmp/vmx-test-claims-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *claims = xasprintf("%s/uids", dir);
        /* a small range at the top of the guest range, so a real node's claims are never hit */
        idclaim_space_t s = { .dir = claims, .first = GUEST_UID_LAST - 2, .count = 3 };
        uint32_t a = 0, b = 0, c = 0, d = 0;
        CHECK(idclaim_take(&s, "/data/rm1/web", NULL, &a) == 0 && a == s.first);
        CHECK(idclaim_take(&s, "/data/rm1/db", NULL, &b) == 0 && b == s.first + 1);
        /* the same key again: the same id (its QEMU is gone) */
        CHECK(idclaim_take(&s, "/data/rm1/web", NULL, &c) == 0 && c == a);
        CHECK(idclaim_take(&s, "bad\nkey", NULL, &c) == -EINVAL);
        CHECK(idclaim_take(&s, "", NULL, &c) == -EINVAL);
        char *rel[] = { "relative/dir", NULL };
        CHECK(idclaim_take(&s, "/data/rm1/x", rel, &c) == -EINVAL);
        CHECK(idclaim_take(&s, "/data/rm2/web", NULL, &c) == 0 && c == s.first + 2);
        /* full, and every owner (this process) alive */
        CHECK(idclaim_take(&s, "/data/rm3/web", NULL, &d) == -EUSERS);

        idclaim_t *v = NULL;
        size_t n = 0;
        CHECK(idclaim_list(&s, "/data/rm1/", &v, &n) == 0 && n == 2);
        CHECK(n == 2 && streq(v[0].key, "/data/rm1/web") && v[0].owner == getpid());
        idclaim_list_free(v, n);

        /* a stale claim (owner gone, id unused) is taken over when nothing is free */
        pid_t dead = fork();
        if (dead == 0)
                _exit(0);
        waitpid(dead, NULL, 0);
        _cleanup_free_ char *stale = xasprintf("%s/%u", claims, (unsigned)b);
        _cleanup_free_ char *text = xasprintf("key /data/old/vm\nowner %d 12345\n", (int)dead);
        CHECK(file_write_atomic(stale, text, strlen(text)) == 0);
        CHECK(idclaim_take(&s, "/data/rm3/web", NULL, &d) == 0 && d == b);
        CHECK(idclaim_list(&s, "/data/old/", &v, &n) == 0 && n == 0);
        idclaim_list_free(v, n);
        /* garbage among the claims is skipped, a torn claim counts as stale */
        _cleanup_free_ char *junk = xasprintf("%s/not-a-uid", claims);
        CHECK(file_write_atomic(junk, "x", 1) == 0);
        CHECK(file_write_atomic(stale, "", 0) == 0);
        CHECK(idclaim_take(&s, "/data/rm4/web", NULL, &d) == 0 && d == b);

        /* release, rename, sweep */
        CHECK(idclaim_release(&s, "/data/rm4/web") == 0);
        CHECK(idclaim_release(&s, "/data/nosuch") == 0);
        CHECK(idclaim_take(&s, "/data/rm1/db", NULL, &d) == 0 && d == b);
        CHECK(idclaim_rename(&s, "/data/rm1/db", "/data/rm1/db2", NULL, &c) == 0 && c == b);
        CHECK(idclaim_rename(&s, "/data/rm1/db", "/data/rm1/db3", NULL, NULL) == -ENOENT);
        CHECK(idclaim_rename(&s, "/data/rm1/db2", "/data/rm1/web", NULL, NULL) == -EEXIST);
        CHECK(idclaim_sweep(&s, "/data/rm1/", NULL, NULL) == 2);
        CHECK(idclaim_list(&s, "", &v, &n) == 0 && n == 1 && streq(v[0].key, "/data/rm2/web"));
        idclaim_list_free(v, n);

        if (geteuid() == 0) {
                /* a claim whose id a process runs with is neither taken over, released nor swept */
                pid_t holder = uid_holder(s.first + 2);
                CHECK(idclaim_uid_in_use(s.first + 2));
                CHECK(idclaim_take(&s, "/data/rm2/web", NULL, &d) == -EBUSY);
                CHECK(idclaim_release(&s, "/data/rm2/web") == -EBUSY);
                CHECK(idclaim_sweep(&s, "/data/", NULL, NULL) == 0);
                child_stop(holder);
                CHECK(!idclaim_uid_in_use(s.first + 2));
                CHECK(idclaim_sweep(&s, "/data/", NULL, NULL) == 1);
        }
        CHECK(rm_rf(dir) == 0);
}

/* ---- qcow2 backing chains ---- */

/* A qcow2 header naming backing (NULL: none) at offset 512. */
static void qcow2_write(const char *path, const char *backing) {
        uint8_t h[1024] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };
        if (backing) {
                size_t len = strlen(backing);
                h[14] = 0x02; /* offset 512 (big-endian u64 at 8) */
                h[16] = (uint8_t)(len >> 24);
                h[17] = (uint8_t)(len >> 16);
                h[18] = (uint8_t)(len >> 8);
                h[19] = (uint8_t)len;
                memcpy(h + 512, backing, len);
        }
        CHECK(file_write_atomic(path, h, sizeof h) == 0);
}

static void test_backing_chain(void) {
        char dir[] = "/tmp/vmx-test-chain-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *img = xasprintf("%s/images", dir), *bases = xasprintf("%s/bases", dir);
        CHECK(mkdir_p(img, 0755) == 0 && mkdir_p(bases, 0755) == 0);
        _cleanup_free_ char *raw = xasprintf("%s/disk", img), *base = xasprintf("%s/base1", bases);
        _cleanup_free_ char *top = xasprintf("%s/top.qcow2", dir);
        CHECK(file_write_atomic(raw, "raw disk", 8) == 0);
        qcow2_write(base, raw);                 /* absolute */
        qcow2_write(top, "bases/base1");        /* relative to its own directory */
        char **chain = NULL;
        CHECK(qemu_confine_backing_chain(top, &chain) == 0);
        _cleanup_free_ char *want = xasprintf("%s/bases/base1", dir);
        CHECK(chain && chain[0] && streq(chain[0], want));
        CHECK(chain && chain[0] && chain[1] && streq(chain[1], raw) && !chain[2]);
        strv_free(chain);
        CHECK(qemu_confine_backing_chain(raw, &chain) == 0 && chain && !chain[0]);
        strv_free(chain);

        char *allowed[] = { img, bases, NULL };
        CHECK(qemu_confine_backing_check(top, allowed, NULL) == 0);
        char *only_img[] = { img, NULL };
        char *bad = NULL;
        CHECK(qemu_confine_backing_check(top, only_img, &bad) == -EPERM);
        CHECK(bad && str_endswith(bad, "/bases/base1"));
        free(bad);
        /* a disk whose header names a file elsewhere (its VM wrote it): refused */
        _cleanup_free_ char *evil = xasprintf("%s/evil.qcow2", dir);
        qcow2_write(evil, "/etc/passwd");
        CHECK(qemu_confine_backing_check(evil, allowed, NULL) == -EPERM);
        qcow2_write(evil, "json:{\"file\":{\"driver\":\"file\",\"filename\":\"/etc/passwd\"}}");
        CHECK(qemu_confine_backing_chain(evil, &chain) == -EINVAL);
        qcow2_write(evil, "nbd:127.0.0.1:10809");
        CHECK(qemu_confine_backing_chain(evil, &chain) == -EINVAL);
        qcow2_write(evil, "evil.qcow2"); /* itself */
        CHECK(qemu_confine_backing_chain(evil, &chain) == -ELOOP);
        CHECK(qemu_confine_backing_chain("/nonexistent/disk", &chain) == -ENOENT);
        CHECK(rm_rf(dir) == 0);
}

/* ---- the jail ---- */

static void test_jail_plan(void) {
        char dir[] = "/tmp/vmx-test-plan-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *real = xasprintf("%s/real", dir), *link = xasprintf("%s/link", dir);
        _cleanup_free_ char *file = xasprintf("%s/real/file", dir), *via = xasprintf("%s/link/file", dir);
        CHECK(mkdir_p(real, 0755) == 0 && file_write_atomic(file, "x", 1) == 0 && symlink("real", link) == 0);
        _cleanup_(jail_freep) jail_t *j = jail_new("/run/x");
        unsigned flags = 0;
        CHECK(jail_bind(j, "relative", 0) == -EINVAL);
        CHECK(jail_bind(j, "/nonexistent/x", 0) == -ENOENT);
        CHECK(jail_bind(j, "/nonexistent/x", JAIL_OPTIONAL) == 0 && jail_size(j) == 0);
        /* through a link: the link is reproduced and the real file bound */
        CHECK(jail_bind(j, via, JAIL_RW) == 0);
        CHECK(jail_binds(j, file, &flags) && flags == JAIL_RW);
        CHECK(!jail_binds(j, via, NULL));
        size_t size = jail_size(j);
        CHECK(jail_bind(j, file, JAIL_RW) == 0 && jail_size(j) == size); /* once */
        /* below a directory bound read-only, a read-only bind adds nothing */
        CHECK(jail_bind(j, "/usr", JAIL_EXEC) == 0);
        size = jail_size(j);
        CHECK(jail_bind(j, "/usr/bin", JAIL_EXEC) == 0 && jail_size(j) == size);
        CHECK(jail_bind(j, "/usr/bin", JAIL_EXEC | JAIL_OPTIONAL) == 0 && jail_size(j) == size);
        CHECK(jail_credentials(j, 0, 1000, NULL, 0) == -EINVAL);
        CHECK(jail_credentials(j, 1000, 0, NULL, 0) == -EINVAL);
        CHECK(rm_rf(dir) == 0);
}

/* Starts argv in j with its output into a new temporary file (*ret_out, malloc'd). */
static pid_t jail_start(jail_t *j, char *const argv[], char **ret_out) {
        char out[] = "/tmp/vmx-test-jail-out-XXXXXX";
        int fd = mkstemp(out);
        CHECK(fd >= 0);
        pid_t pid = 0;
        const char *step = NULL;
        int r = jail_spawn(j, argv, fd, &pid, &step);
        if (r < 0)
                fprintf(stderr, "jail_spawn: %s: %s\n", step, strerror(-r));
        CHECK(r == 0);
        close(fd);
        *ret_out = xstrdup(out);
        return r == 0 ? pid : -1;
}

/* Waits for pid, returns what it wrote to out (removed then, malloc'd) and its exit status. */
__attribute__((noinline)) static char *jail_collect(pid_t pid, char *out, int *ret_status) {
        int status = -1;
        if (pid > 0)
                waitpid(pid, &status, 0);
        char *text = NULL;
        CHECK(file_read(out, &text, NULL) == 0);
        unlink(out);
        free(out);
        *ret_status = status;
        return text;
}

static const char *status_field(const char *status, const char *field) {
        static char value[128];
        const char *p = strstr(status, field);
        if (!p)
                return "";
        p += strlen(field);
        p += strspn(p, " \t");
        snprintf(value, sizeof value, "%.*s", (int)strcspn(p, "\n"), p);
        return value;
}

static jail_t *jail_basic(const char *root, uid_t uid) {
        jail_t *j = jail_new(root);
        static const char *const sys[] = { "/usr", "/lib", "/lib64", "/bin", "/sbin" };
        for (size_t i = 0; i < ELEMENTSOF(sys); i++)
                CHECK(jail_bind(j, sys[i], JAIL_EXEC | JAIL_OPTIONAL) == 0);
        CHECK(jail_bind(j, "/etc", 0) == 0);
        CHECK(jail_bind(j, "/dev/null", JAIL_RW | JAIL_DEVICE) == 0);
        jail_proc(j);
        CHECK(jail_credentials(j, uid, uid, NULL, 0) == 0);
        return j;
}

static void test_jail_spawn(void) {
        if (geteuid() != 0) {
                printf("jail: skipped (not root)\n");
                return;
        }
        char dir[] = "/tmp/vmx-test-jail-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *root = xasprintf("%s/root", dir), *mine = xasprintf("%s/mine", dir);
        _cleanup_free_ char *secret = xasprintf("%s/secret", dir), *ro = xasprintf("%s/ro", dir);
        CHECK(mkdir_p(root, 0755) == 0 && mkdir_p(mine, 0700) == 0);
        CHECK(file_write_atomic(secret, "s3cret", 6) == 0 && file_write_atomic(ro, "readonly", 8) == 0);
        CHECK(chmod(ro, 0666) == 0);
        uid_t uid = GUEST_UID_LAST;
        CHECK(chown(mine, uid, uid) == 0);

        _cleanup_(jail_freep) jail_t *j = jail_basic(root, uid);
        CHECK(jail_bind(j, mine, JAIL_RW) == 0);
        CHECK(jail_bind(j, ro, 0) == 0);
        _cleanup_free_ char *script =
                xasprintf("cat /proc/self/status; "
                          "test -e %s && echo SECRET-REACHABLE; "
                          "echo hi > %s/w && echo WROTE-MINE; "
                          "echo x >> %s || echo RO-REFUSED; "
                          "ls /proc | grep -c '^[0-9]' | sed 's/^/PIDS=/'; "
                          "ls /tmp | wc -l | sed 's/^/TMP=/'; "
                          "true",
                          secret, mine, ro);
        char *argv[] = { "sh", "-c", script, NULL };
        int status = -1;
        char *path = NULL;
        pid_t spawned = jail_start(j, argv, &path);
        _cleanup_free_ char *out = jail_collect(spawned, path, &status);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (!out)
                return;
        char want_uid[64];
        snprintf(want_uid, sizeof want_uid, "%u\t%u\t%u\t%u", uid, uid, uid, uid);
        CHECK_STREQ(status_field(out, "Uid:"), want_uid);
        CHECK_STREQ(status_field(out, "CapEff:"), "0000000000000000");
        CHECK_STREQ(status_field(out, "CapPrm:"), "0000000000000000");
        CHECK_STREQ(status_field(out, "CapBnd:"), "0000000000000000");
        CHECK_STREQ(status_field(out, "CapAmb:"), "0000000000000000");
        CHECK_STREQ(status_field(out, "NoNewPrivs:"), "1");
        CHECK_STREQ(status_field(out, "Groups:"), "");
        CHECK(!strstr(out, "SECRET-REACHABLE"));
        CHECK(strstr(out, "WROTE-MINE"));
        CHECK(strstr(out, "RO-REFUSED"));
        /* /tmp holds only the way to what is bound below it */
        CHECK(strstr(out, "TMP=1\n"));
        /* its /proc shows its own processes only (sh, and a pipeline's few) */
        CHECK(strstr(out, "PIDS=") && atoi(strstr(out, "PIDS=") + 5) < 8);
        _cleanup_free_ char *w = xasprintf("%s/w", mine);
        struct stat st;
        CHECK(stat(w, &st) == 0 && st.st_uid == uid);

        /* a failure before exec names its step and leaves nothing running */
        _cleanup_(jail_freep) jail_t *bad = jail_basic(root, uid);
        char *missing[] = { "/nonexistent/program", NULL };
        pid_t pid = 0;
        const char *step = NULL;
        CHECK(jail_spawn(bad, missing, STDERR_FILENO, &pid, &step) == -ENOENT);
        CHECK(step && streq(step, "exec"));
        jail_cgroup(bad, "/nonexistent/cgroup");
        char *sh[] = { "sh", "-c", "true", NULL };
        CHECK(jail_spawn(bad, sh, STDERR_FILENO, &pid, &step) == -ENOENT);
        CHECK(step && streq(step, "open cgroup.procs"));

        /* jail_expose: a file shown later to a process that runs already */
        _cleanup_free_ char *later = xasprintf("%s/later", dir);
        CHECK(file_write_atomic(later, "exposed", 7) == 0);
        _cleanup_(jail_freep) jail_t *k = jail_basic(root, uid);
        _cleanup_free_ char *wait_script =
                xasprintf("for i in $(seq 100); do test -e %s && break; sleep 0.05; done; cat %s", later, later);
        char *argv2[] = { "sh", "-c", wait_script, NULL };
        pid = jail_start(k, argv2, &path);
        _cleanup_(jail_freep) jail_t *e = jail_new(NULL);
        CHECK(jail_bind(e, later, 0) == 0);
        int r = pid > 0 ? jail_expose(e, pid, &step) : -ESRCH;
        if (r < 0)
                fprintf(stderr, "jail_expose: %s: %s\n", step, strerror(-r));
        CHECK(r == 0);
        _cleanup_free_ char *got = jail_collect(pid, path, &status);
        CHECK(got && strstr(got, "exposed"));
        CHECK(rm_rf(dir) == 0);
}

/* ---- a QEMU config's jail and files ---- */

static void test_qemu_jail(void) {
        char dir[] = "/tmp/vmx-test-qjail-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *images = xasprintf("%s/images", dir), *bases = xasprintf("%s/bases", dir);
        _cleanup_free_ char *run = xasprintf("%s/vms/web/run", dir), *disk = xasprintf("%s/vms/web/disk.qcow2", dir);
        _cleanup_free_ char *mem = xasprintf("%s/vms/web/memory", dir), *kernel = xasprintf("%s/vmlinuz", images);
        _cleanup_free_ char *base = xasprintf("%s/base1", bases), *log = xasprintf("%s/console.log", run);
        CHECK(mkdir_p(images, 0755) == 0 && mkdir_p(bases, 0755) == 0 && mkdir_p(run, 0700) == 0);
        CHECK(file_write_atomic(kernel, "k", 1) == 0 && file_write_atomic(log, "old", 3) == 0);
        qcow2_write(base, NULL);
        qcow2_write(disk, base);
        char *backing_dirs[] = { images, bases, NULL };
        char *cgroups[] = { NULL };
        vmm_confine_t c = { .uid = GUEST_UID_LAST, .gid = GUEST_UID_LAST, .jail_dir = dir, .cgroups = cgroups,
                            .backing_dirs = backing_dirs };
        vmm_config_t cfg = { .name = "web", .run_dir = run, .memory_mib = 128, .vcpus = 1, .kernel = kernel,
                             .disk = disk, .disk_format = "qcow2", .accel = "tcg", .memory_path = mem, .confine = &c };
        jail_t *j = NULL;
        const char *bad = NULL;
        CHECK(file_write_atomic(mem, "", 0) == 0);
        int r = qemu_confine_jail(&cfg, &j, &bad);
        if (r < 0)
                fprintf(stderr, "qemu_confine_jail: %s: %s\n", bad, strerror(-r));
        CHECK(r == 0);
        unsigned f = 99;
        CHECK(j && jail_binds(j, run, &f) && f == JAIL_RW);
        CHECK(j && jail_binds(j, disk, &f) && f == JAIL_RW);
        CHECK(j && jail_binds(j, base, &f) && f == 0);
        CHECK(j && jail_binds(j, kernel, &f) && f == 0);
        CHECK(j && jail_binds(j, "/usr", &f) && (f & JAIL_EXEC) && !(f & JAIL_RW));
        CHECK(j && jail_binds(j, "/dev/urandom", &f) && (f & JAIL_DEVICE));
        /* /etc/resolv.conf comes with /etc (here a file, not a link elsewhere: no bind of its own) */
        struct stat rst;
        if (lstat("/etc/resolv.conf", &rst) == 0 && S_ISREG(rst.st_mode))
                CHECK(j && !jail_binds(j, "/etc/resolv.conf", NULL));
        CHECK(j && !jail_binds(j, "/dev/kvm", NULL));
        CHECK(j && !jail_binds(j, dir, NULL) && !jail_binds(j, images, NULL));
        CHECK(j && jail_binds(j, mem, &f) && f == JAIL_RW);
        j = jail_free(j);
        unlink(mem); /* created again, for the uid, below */
        if (geteuid() == 0) {
                CHECK(qemu_confine_files(&cfg, c.uid, c.gid, false, &bad) == 0);
                struct stat st;
                CHECK(stat(run, &st) == 0 && st.st_uid == c.uid && (st.st_mode & 0777) == 0700);
                CHECK(stat(log, &st) == 0 && st.st_uid == c.uid);
                CHECK(stat(disk, &st) == 0 && st.st_uid == c.uid);
                CHECK(stat(mem, &st) == 0 && st.st_uid == c.uid && st.st_size == 0);
                CHECK(stat(base, &st) == 0 && st.st_uid == 0);
                CHECK(qemu_confine_jail(&cfg, &j, &bad) == 0 && j && jail_binds(j, mem, &f) && f == JAIL_RW);
                j = jail_free(j);
                /* a snapshot mapped copy-on-write stays root's (see qemu-confine.h) */
                vmm_config_t snap = cfg;
                snap.memory_path = base;
                snap.memory_private = true;
                CHECK(qemu_confine_files(&snap, c.uid, c.gid, true, &bad) == 0);
                CHECK(stat(base, &st) == 0 && st.st_uid == 0 && (st.st_mode & 0777) == 0666);
        }
        /* a backing file outside the node's images and bases is refused, never bound */
        qcow2_write(disk, "/etc/passwd");
        CHECK(qemu_confine_jail(&cfg, &j, &bad) == -EPERM && !j);
        CHECK(qemu_confine_slot_jail(&cfg, &j, &bad) == -EPERM && !j);
        vmm_config_t none = cfg;
        none.confine = NULL;
        CHECK(qemu_confine_jail(&none, &j, &bad) == -EINVAL);
        CHECK(rm_rf(dir) == 0);
}

/* ---- vm.json's cpu_limit and the limits of a VM ---- */

static int config_with(const char *extra, bundle_config_t *ret) {
        _cleanup_free_ char *text = xasprintf("{\"name\": \"web\", \"memory_mib\": 256, \"vcpus\": 2, \"mac\": "
                                              "\"52:54:00:00:00:01\", \"image\": \"tiny-http\", \"boot\": \"kernel\", "
                                              "\"disk_size_mib\": 64%s}",
                                              extra);
        json_t *j = json_loads(text, 0, NULL);
        CHECK(j != NULL);
        int r = bundle_config_from_json(j, ret);
        json_decref(j);
        return r;
}

static void test_cpu_limit(void) {
        bundle_config_t bc;
        CHECK(config_with("", &bc) == 0 && bc.cpu_limit == 0);
        CHECK(config_with(", \"cpu_limit\": null", &bc) == 0 && bc.cpu_limit == 0);
        CHECK(config_with(", \"cpu_limit\": 50", &bc) == 0 && bc.cpu_limit == 50);
        CHECK(config_with(", \"cpu_limit\": 200", &bc) == 0 && bc.cpu_limit == 200); /* 2 vCPUs */
        CHECK(config_with(", \"cpu_limit\": 201", &bc) == -EINVAL);
        CHECK(config_with(", \"cpu_limit\": 0", &bc) == -EINVAL);
        CHECK(config_with(", \"cpu_limit\": -1", &bc) == -EINVAL);
        CHECK(config_with(", \"cpu_limit\": \"50\"", &bc) == -EINVAL);
        CHECK(config_with(", \"cpu_limit\": 50.5", &bc) == -EINVAL);
        /* carried through vm.json */
        CHECK(config_with(", \"cpu_limit\": 50", &bc) == 0);
        json_t *j = bundle_config_to_json(&bc);
        CHECK(json_integer_value(json_object_get(j, "cpu_limit")) == 50);
        bundle_config_t back;
        CHECK(bundle_config_from_json(j, &back) == 0 && back.cpu_limit == 50);
        json_decref(j);
        CHECK(config_with("", &bc) == 0);
        j = bundle_config_to_json(&bc);
        CHECK(json_object_get(j, "cpu_limit") == NULL);
        json_decref(j);

        /* the limits of its QEMU: RAM + overhead, the quota, the threads */
        CHECK(config_with(", \"cpu_limit\": 50", &bc) == 0);
        cgroup_limits_t l = node_confine_limits(&bc);
        CHECK(l.memory_bytes == (uint64_t)(256 + NODE_CONFINE_MEMORY_OVERHEAD_MIB) << 20);
        CHECK(l.cpu_quota_us == 50000);
        CHECK(l.pids == NODE_CONFINE_PIDS_BASE + 2);
        CHECK(config_with("", &bc) == 0);
        l = node_confine_limits(&bc);
        CHECK(l.cpu_quota_us == 200000);
}

int main(void) {
        test_cpu_limit();
        test_cgroup_layout();
        test_cgroup_limits();
        test_cgroup_real();
        test_idclaim();
        test_backing_chain();
        test_jail_plan();
        test_jail_spawn();
        test_qemu_jail();
        return tap_finish();
}
