/* Daemon tests of the Oracle: a real Oracle and two real nodes (rm1 production, ch1 chamber) of
 * vmatrix-test on the fake VMM driver, driven through the HTTP API (daemons.c).
 *   - a VM's whole lifecycle (create, boot, suspend, resume, hibernate, activate, suspend on a
 *     mapped snapshot, deactivate, stop, boot, delete): each op ends in the state README gives,
 *     the cluster agrees after each (one RM runs it, the Nest holds its bundle), versions only
 *     grow, and the guest's RAM and disk marks survive what they must survive; an activation of
 *     a VM suspended on the only production RM resumes it there;
 *   - a node's op heartbeat after the op's end is refused; a stop whose upload fails leaves the
 *     VM failed on its RM, and a second stop stores it;
 *   - the Oracle killed with SIGKILL in the middle of operations: at its crash points
 *     (oracle-before-run, oracle-after-run, oracle-after-save) and at random moments after an
 *     accept; restarted on the same data it finishes or rolls back the op, the VM rests in a
 *     legal state, nothing is lost, the next operation works on the same guest;
 *   - each RM's size (capacity) in GET /v1/rms as its node measured it (this machine's CPUs and
 *     the filesystem of its data directory), lowered by --capacity-memory and --capacity-vcpus;
 *     a node started with more than the machine has exits with 2 and says why;
 *   - paging of GET /v1/vms while VMs are created and deleted: every VM that exists throughout a
 *     walk appears in it exactly once, names strictly increasing; GET /v1/rms pages alike, and
 *     a limit out of 1..1000 or a bad cursor is a 400;
 *   - heartbeats are soft state: five that change nothing leave the store's file untouched
 *     (PRAGMA data_version of a second connection), one with another address is written;
 *   - soft-state restart: the Oracle killed with SIGKILL while a VM is active on rm1 and one
 *     loading on ch1 comes back with both RMs up, no VM failed and no RM declared down; a node
 *     then stopped (SIGSTOP) past the liveness timeout is declared down and its VM failed; let
 *     go again (SIGCONT), the node kills its copy (no lease), and no VM runs on two RMs. */
#include "base/macro.h"
#include "daemons.h"
#include "tap.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

static daemon_t *rm1, *ch1;

/* The version at the Oracle only grows (DESIGN.md §8). */
static int64_t last_version;

static void version_grows(daemons_t *d, const char *vm) {
        int64_t v = daemons_vm_version(d, vm);
        CHECK(v > last_version);
        if (v <= last_version)
                fprintf(stderr, "vm %s: version %lld after %lld\n", vm, (long long)v, (long long)last_version);
        last_version = v;
}

/* One op through the API, then the cluster's agreement on the VM. */
static bool step(daemons_t *d, const char *vm, const char *action, const char *want) {
        bool ok = daemons_vm_do(d, vm, action, want);
        CHECK(ok);
        CHECK(daemons_vm_consistent(d, vm, daemons_now_ms() + 10000, NULL));
        version_grows(d, vm);
        return ok;
}

/* The samples GET /v1/figures counts for kind ("activation_s", ...) of tiny-http on rm. */
static long figure_n(daemons_t *d, const char *kind, const char *rm) {
        char url[256];
        snprintf(url, sizeof url, "%s/v1/figures", d->oracle.url);
        json_t *j = NULL;
        CHECK(daemons_call("GET", url, NULL, &j) == 200);
        json_t *img = json_object_get(json_object_get(j, kind), "tiny-http");
        long n = (long)json_integer_value(json_object_get(json_object_get(json_object_get(img, "by_rm"), rm), "n"));
        if (n > 0)
                CHECK(json_real_value(json_object_get(img, "median")) > 0);
        json_decref(j);
        return n;
}

/* `vmatrix sim --from-cluster --image tiny-http --json` against the Oracle: the figures it used. */
static void sim_from_cluster(daemons_t *d) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "VMATRIX_TOKEN='%s' '%s' sim --trace builtin:flash-crowd --from-cluster --image tiny-http "
                 "--oracle %s --json 2>&1",
                 daemons_admin_token(), d->exe, d->oracle.url);
        FILE *p = popen(cmd, "r");
        CHECK(p != NULL);
        if (!p)
                return;
        char out[8192];
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = 0;
        CHECK(pclose(p) == 0);
        json_t *j = json_loads(out, 0, NULL);
        if (!j)
                fprintf(stderr, "sim --from-cluster: %s\n", out);
        CHECK(json_real_value(json_object_get(j, "activation_s")) > 0);
        const char *from = json_string_value(json_object_get(j, "figures"));
        CHECK(from && strstr(from, "image tiny-http: activation") && strstr(from, "from its activations"));
        json_decref(j);
}

static void test_lifecycle(daemons_t *d) {
        const char *vm = "life";
        last_version = 0;
        CHECK(daemons_vm_create(d, vm) == 0);
        char st[32], rm[32], ram[32], disk[32], boot_id[32], now[32];
        daemons_vm_state(d, vm, st, NULL);
        CHECK_STREQ(st, "stored");
        CHECK(daemons_vm_consistent(d, vm, daemons_now_ms() + 5000, NULL));
        version_grows(d, vm);
        if (!step(d, vm, "boot", "loading"))
                return;
        daemons_vm_state(d, vm, st, rm);
        CHECK_STREQ(rm, "ch1");
        daemons_boot_id(ch1, vm, boot_id);
        CHECK(*boot_id);
        CHECK(daemons_ram_mark_set(ch1, vm, "r1") == 0);
        CHECK(daemons_disk_mark_set(ch1, vm, "d1") == 0);

        /* suspended on its RM, resumed there: the same guest, RAM intact */
        step(d, vm, "suspend", "suspended");
        step(d, vm, "resume", "loading");
        daemons_boot_id(ch1, vm, now);
        CHECK_STREQ(now, boot_id);
        daemons_ram_mark(ch1, vm, ram);
        CHECK_STREQ(ram, "r1");

        /* through the Nest to a production RM: RAM and disk travel, it resumes, not reboots; the
         * activation is a figure of tiny-http on rm1 (GET /v1/figures) */
        step(d, vm, "hibernate", "stored");
        long activations = figure_n(d, "activation_s", "rm1");
        step(d, vm, "activate", "active");
        CHECK(figure_n(d, "activation_s", "rm1") == activations + 1);
        sim_from_cluster(d);
        daemons_vm_state(d, vm, st, rm);
        CHECK_STREQ(rm, "rm1");
        daemons_boot_id(rm1, vm, now);
        CHECK_STREQ(now, boot_id);
        daemons_ram_mark(rm1, vm, ram);
        CHECK_STREQ(ram, "r1");
        daemons_disk_mark(rm1, vm, disk);
        CHECK_STREQ(disk, "d1");
        char ns[32];
        CHECK(daemons_node_vm(ch1, vm, ns) < 0); /* the chamber let it go */

        /* it runs on a snapshot mapped copy-on-write: a change in RAM is written back at the save
         * (node-save.c, memory_write_back) and found again at the resume */
        CHECK(daemons_ram_mark_set(rm1, vm, "r2") == 0);
        step(d, vm, "suspend", "suspended");
        step(d, vm, "resume", "active");
        daemons_ram_mark(rm1, vm, ram);
        CHECK_STREQ(ram, "r2");

        /* suspended on the only production RM, an activation resumes it there (the VM does not
         * count against its own RM) */
        step(d, vm, "suspend", "suspended");
        step(d, vm, "activate", "active");
        daemons_vm_state(d, vm, st, rm);
        CHECK_STREQ(rm, "rm1");
        daemons_boot_id(rm1, vm, now);
        CHECK_STREQ(now, boot_id);
        daemons_ram_mark(rm1, vm, ram);
        CHECK_STREQ(ram, "r2");

        /* deactivated (a drain figure) and activated again: this time rm1 has a warm slot of its
         * shape */
        long drains = figure_n(d, "drain_s", "rm1");
        step(d, vm, "deactivate", "stored");
        CHECK(figure_n(d, "drain_s", "rm1") == drains + 1);
        step(d, vm, "activate", "active");
        daemons_boot_id(rm1, vm, now);
        CHECK_STREQ(now, boot_id);
        daemons_ram_mark(rm1, vm, ram);
        CHECK_STREQ(ram, "r2");

        /* an illegal transition is refused, not queued, and changes nothing */
        char op[64];
        int64_t v = daemons_vm_version(d, vm);
        CHECK(daemons_vm_action(d, vm, "delete", NULL, op) == 409);
        CHECK(daemons_vm_action(d, vm, "resume", NULL, op) == 409);
        CHECK(daemons_vm_version(d, vm) == v);

        /* a stop keeps the disk, not the RAM: the next boot is cold */
        CHECK(daemons_disk_mark_set(rm1, vm, "d2") == 0);
        step(d, vm, "stop", "stored");
        step(d, vm, "boot", "loading");
        daemons_boot_id(ch1, vm, now);
        CHECK(*now && strcmp(now, boot_id) != 0);
        daemons_ram_mark(ch1, vm, ram);
        CHECK_STREQ(ram, "");
        daemons_disk_mark(ch1, vm, disk);
        CHECK_STREQ(disk, "d2");
        step(d, vm, "stop", "stored");

        CHECK(daemons_vm_do(d, vm, "delete", NULL));
        char url[256];
        snprintf(url, sizeof url, "%s/v1/vms/%s", d->oracle.url, vm);
        CHECK(daemons_call("GET", url, NULL, NULL) == 404);
        CHECK(daemons_node_vm(ch1, vm, ns) < 0 && daemons_node_vm(rm1, vm, ns) < 0);
}

/* A node's op heartbeat that lands after the op's end is refused (409) and leaves the op as it
 * ended: it used to write the running row back over the finished one. */
static void test_late_op_heartbeat(daemons_t *d) {
        CHECK(daemons_vm_create(d, "late") == 0);
        char op[64], st[16];
        CHECK(daemons_vm_action(d, "late", "boot", NULL, op) == 202);
        daemons_op_wait(d, op, daemons_now_ms() + 20000, st);
        CHECK_STREQ(st, "done");
        char url[256];
        snprintf(url, sizeof url, "%s/v1/ops/%s/heartbeat", d->oracle.node_url, op);
        _cleanup_(json_decrefp) json_t *beat = json_pack("{s:i,s:i}", "done", 5, "total", 10);
        CHECK(daemons_call_as(daemons_node(d, "ch1"), "POST", url, beat, NULL) == 409);
        snprintf(url, sizeof url, "%s/v1/ops/%s", d->oracle.url, op);
        _cleanup_(json_decrefp) json_t *got = NULL;
        CHECK(daemons_call("GET", url, NULL, &got) == 200);
        CHECK_STREQ(json_string_value(json_object_get(got, "state")), "done");
        CHECK(daemons_vm_do(d, "late", "stop", "stored"));
        CHECK(daemons_vm_do(d, "late", "delete", NULL));
}

/* A stop whose upload fails leaves the VM failed on its RM (the node has shut it down), not
 * running where nothing answers; stopping it again once the upload works stores it. The disk
 * is made unreadable by putting a directory in its place. */
static void test_stop_upload_fails(daemons_t *d) {
        CHECK(daemons_vm_create(d, "upl") == 0);
        CHECK(daemons_vm_do(d, "upl", "activate", "active"));
        char disk[700], aside[720];
        snprintf(disk, sizeof disk, "%s/vms/upl/disk.qcow2", rm1->data);
        snprintf(aside, sizeof aside, "%s.aside", disk);
        CHECK(rename(disk, aside) == 0 && mkdir(disk, 0755) == 0);
        char op[64], st[32], rm[32];
        CHECK(daemons_vm_action(d, "upl", "stop", NULL, op) == 202);
        daemons_op_wait(d, op, daemons_now_ms() + 20000, st);
        CHECK_STREQ(st, "failed");
        daemons_vm_state(d, "upl", st, rm);
        CHECK_STREQ(st, "failed");
        CHECK_STREQ(rm, "rm1");
        CHECK(daemons_vm_consistent(d, "upl", daemons_now_ms() + 5000, NULL));
        CHECK(rmdir(disk) == 0 && rename(aside, disk) == 0);
        CHECK(daemons_vm_do(d, "upl", "stop", "stored"));
        CHECK(daemons_vm_do(d, "upl", "delete", NULL));
}

/* After an Oracle restart that interrupted an op: the op has ended, the cluster agrees, and the
 * VM reaches active with its guest (same boot id and RAM unless it had to boot cold) and disk. */
static void after_kill(daemons_t *d, const char *vm, const char *op, const char *boot_id, const char *what) {
        char st[16] = "none", vs[32];
        if (*op) {
                daemons_op_wait(d, op, daemons_now_ms() + 30000, st);
                CHECK(strcmp(st, "done") == 0 || strcmp(st, "failed") == 0);
        }
        CHECK(daemons_vm_consistent(d, vm, daemons_now_ms() + 10000, vs));
        fprintf(stderr, "  %s: op %s, vm %s\n", what, st, vs);
        bool cold = false;
        CHECK(daemons_vm_to_active(d, vm, &cold));
        CHECK(daemons_vm_consistent(d, vm, daemons_now_ms() + 10000, NULL));
        char now[32], ram[32], disk[32];
        daemons_boot_id(rm1, vm, now);
        daemons_ram_mark(rm1, vm, ram);
        daemons_disk_mark(rm1, vm, disk);
        CHECK_STREQ(disk, "k9");
        if (!cold) {
                CHECK_STREQ(now, boot_id);
                CHECK_STREQ(ram, "k9");
        }
}

/* A fresh VM booted on ch1 with its marks; its boot id into boot_id (32 bytes). */
static bool vm_loading(daemons_t *d, const char *vm, char *boot_id) {
        if (daemons_vm_create(d, vm) < 0 || !daemons_vm_do(d, vm, "boot", "loading"))
                return false;
        daemons_boot_id(ch1, vm, boot_id);
        return daemons_ram_mark_set(ch1, vm, "k9") == 0 && daemons_disk_mark_set(ch1, vm, "k9") == 0;
}

/* The Oracle dies at a crash point during action (run on a VM loading on ch1, or with stored,
 * activated first through the Nest); restarted without it, it recovers the op. */
static void oracle_crash_point(daemons_t *d, const char *vm, const char *at, const char *action) {
        char boot_id[32], op[64], env[96];
        CHECK(vm_loading(d, vm, boot_id));
        snprintf(env, sizeof env, "VMATRIX_CRASH_AT=%s", at);
        const char *crash_env[] = { env, NULL };
        CHECK(daemons_restart(d, &d->oracle, crash_env) == 0);
        CHECK(daemons_vm_action(d, vm, action, NULL, op) == 202 && *op);
        bool crashed = daemons_exited(&d->oracle, 30000);
        CHECK(crashed);
        if (!crashed)
                fprintf(stderr, "the Oracle never reached crash point %s\n", at);
        CHECK(daemons_restart(d, &d->oracle, NULL) == 0);
        after_kill(d, vm, op, boot_id, at);
        CHECK(daemons_vm_do(d, vm, "stop", "stored"));
        CHECK(daemons_vm_do(d, vm, "delete", NULL)); /* rm1 is free for the next case */
}

/* SIGKILL at moments after an accept that move a little further into the op each time. */
static void oracle_killed_anywhere(daemons_t *d) {
        const char *actions[] = { "hibernate", "activate", "suspend", "resume", "deactivate" };
        char boot_id[32];
        const char *vm = "k9";
        CHECK(vm_loading(d, vm, boot_id));
        for (size_t i = 0; i < sizeof actions / sizeof *actions && tap_failed == 0; i++) {
                char op[64], vs[32], what[64];
                daemons_vm_state(d, vm, vs, NULL);
                if (daemons_vm_action(d, vm, actions[i], NULL, op) != 202 || !*op) {
                        fprintf(stderr, "  %s refused in state %s\n", actions[i], vs);
                        continue;
                }
                daemons_sleep_ms(15 * (int)i);
                daemons_stop(&d->oracle, SIGKILL);
                CHECK(daemons_restart(d, &d->oracle, NULL) == 0);
                snprintf(what, sizeof what, "SIGKILL %d ms into %s", 15 * (int)i, actions[i]);
                char st[16];
                daemons_op_wait(d, op, daemons_now_ms() + 30000, st);
                CHECK(strcmp(st, "done") == 0 || strcmp(st, "failed") == 0);
                CHECK(daemons_vm_consistent(d, vm, daemons_now_ms() + 10000, vs));
                fprintf(stderr, "  %s: op %s, vm %s\n", what, st, vs);
        }
        char op[64] = "";
        after_kill(d, vm, op, boot_id, "after the kills");
        CHECK(daemons_vm_do(d, vm, "stop", "stored"));
        CHECK(daemons_vm_do(d, vm, "delete", NULL));
}

/* The events of kind so far. */
static size_t events_of(daemons_t *d, const char *kind) {
        char url[256];
        snprintf(url, sizeof url, "%s/v1/events?kind=%s&limit=1000", d->oracle.url, kind);
        _cleanup_(json_decrefp) json_t *j = NULL;
        return daemons_call("GET", url, NULL, &j) == 200 ? json_array_size(j) : (size_t)-1;
}

/* Polls until vm's state at the Oracle is want (deadline_ms); its last state into st (32). */
static bool vm_state_wait(daemons_t *d, const char *vm, const char *want, int64_t deadline_ms, char *st) {
        char rm[64];
        do {
                daemons_vm_state(d, vm, st, rm);
                if (strcmp(st, want) == 0)
                        return true;
                daemons_sleep_ms(100);
        } while (daemons_now_ms() < deadline_ms);
        return false;
}

/* The soft-state Oracle (heartbeats write nothing, leases from the store view) after a kill -9
 * with VMs running, and against a silent RM. */
static void test_soft_state_restart(daemons_t *d) {
        char st[32], rm[64];
        CHECK(daemons_vm_create(d, "ss1") == 0 && daemons_vm_create(d, "ss2") == 0);
        CHECK(daemons_vm_do(d, "ss1", "activate", "active"));
        daemons_vm_state(d, "ss1", st, rm);
        CHECK_STREQ(rm, "rm1");
        CHECK(daemons_vm_do(d, "ss2", "boot", "loading"));
        size_t downs = events_of(d, "rm-down"), fails = events_of(d, "failed");
        CHECK(downs != (size_t)-1 && fails != (size_t)-1);

        /* kill -9 and restart (daemons_restart waits for both RMs to be up again): nothing is
         * failed or fenced, over longer than the liveness timeout */
        daemons_stop(&d->oracle, SIGKILL);
        CHECK(daemons_restart(d, &d->oracle, NULL) == 0);
        char s1[16], s2[16];
        daemons_rm_state(d, "rm1", s1);
        daemons_rm_state(d, "ch1", s2);
        CHECK_STREQ(s1, "up");
        CHECK_STREQ(s2, "up");
        daemons_sleep_ms(6000);
        daemons_vm_state(d, "ss1", st, rm);
        CHECK_STREQ(st, "active");
        daemons_vm_state(d, "ss2", st, rm);
        CHECK_STREQ(st, "loading");
        CHECK(daemons_vm_consistent(d, "ss1", daemons_now_ms() + 10000, NULL));
        CHECK(daemons_vm_consistent(d, "ss2", daemons_now_ms() + 10000, NULL));
        CHECK(events_of(d, "rm-down") == downs && events_of(d, "failed") == fails);
        char node_state[32];
        CHECK(daemons_node_vm(rm1, "ss1", node_state) > 0 && strcmp(node_state, "running") == 0);

        /* rm1's node silent past the liveness timeout: rm1 goes down, ss1 fails */
        CHECK(kill(rm1->pid, SIGSTOP) == 0);
        bool failed = vm_state_wait(d, "ss1", "failed", daemons_now_ms() + 20000, st);
        daemons_rm_state(d, "rm1", s1);
        CHECK(failed);
        CHECK_STREQ(s1, "down");
        CHECK(kill(rm1->pid, SIGCONT) == 0);
        /* heard again: up, told it holds no lease for ss1, it kills its copy; ss1 runs nowhere
         * (daemons_vm_consistent: a failed VM has no running copy, no other RM runs one) */
        int64_t deadline = daemons_now_ms() + 15000;
        do {
                daemons_rm_state(d, "rm1", s1);
                daemons_node_vm(rm1, "ss1", node_state);
                if (strcmp(s1, "up") == 0 && strcmp(node_state, "running") != 0)
                        break;
                daemons_sleep_ms(100);
        } while (daemons_now_ms() < deadline);
        CHECK_STREQ(s1, "up");
        CHECK(strcmp(node_state, "running") != 0);
        CHECK(daemons_vm_consistent(d, "ss1", daemons_now_ms() + 10000, st));
        CHECK_STREQ(st, "failed");
        CHECK(daemons_vm_consistent(d, "ss2", daemons_now_ms() + 10000, NULL));
        CHECK(daemons_node_vm(ch1, "ss1", node_state) < 0);
        CHECK(daemons_vm_do(d, "ss1", "stop", "stored"));
        CHECK(daemons_vm_do(d, "ss1", "delete", NULL));
        CHECK(daemons_vm_do(d, "ss2", "stop", "stored"));
        CHECK(daemons_vm_do(d, "ss2", "delete", NULL));
}

/* The capacity of rm in GET /v1/rms: 0 and the figures, or -1 when it has none (null). */
static int rm_capacity(daemons_t *d, const char *rm, int64_t *ret_memory, int64_t *ret_vcpus, int64_t *ret_disk) {
        char url[128];
        snprintf(url, sizeof url, "%s/v1/rms", d->oracle.url);
        json_t *j = NULL;
        int r = -1;
        if (daemons_call("GET", url, NULL, &j) == 200) {
                size_t i;
                json_t *e;
                json_array_foreach(j, i, e) {
                        const char *name = json_string_value(json_object_get(e, "name"));
                        const json_t *c = json_object_get(e, "capacity");
                        if (!name || strcmp(name, rm) != 0 || !json_is_object(c))
                                continue;
                        *ret_memory = json_integer_value(json_object_get(c, "memory_mib"));
                        *ret_vcpus = json_integer_value(json_object_get(c, "vcpus"));
                        *ret_disk = json_integer_value(json_object_get(c, "disk_gib"));
                        r = 0;
                }
        }
        json_decref(j);
        return r;
}

/* rm_capacity once rm has said it: the Oracle keeps it in memory, so a restarted Oracle (as the
 * tests before left it) knows it from the RM's next heartbeat on, within a second. */
static int rm_capacity_wait(daemons_t *d, const char *rm, int64_t *ret_memory, int64_t *ret_vcpus, int64_t *ret_disk) {
        int64_t deadline = daemons_now_ms() + 5000;
        while (rm_capacity(d, rm, ret_memory, ret_vcpus, ret_disk) < 0) {
                if (daemons_now_ms() > deadline)
                        return -1;
                daemons_sleep_ms(100);
        }
        return 0;
}

/* The size of the filesystem holding dir, GiB rounded down, as the node measures it. */
static int64_t disk_gib(const char *dir) {
        struct statvfs st;
        return statvfs(dir, &st) == 0 ? (int64_t)(((uint64_t)st.f_blocks * st.f_frsize) >> 30) : -1;
}

static void test_capacity(daemons_t *d) {
        int64_t memory = 0, vcpus = 0, disk = 0;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        /* as measured: this machine's RAM and CPUs, the data directory's filesystem */
        CHECK(rm_capacity_wait(d, "rm1", &memory, &vcpus, &disk) == 0);
        CHECK(memory >= 64);
        CHECK(vcpus > 0 && vcpus == cpus);
        CHECK(disk > 0 && disk == disk_gib(rm1->data));
        int64_t machine_memory = memory;
        CHECK(rm_capacity_wait(d, "ch1", &memory, &vcpus, &disk) == 0);
        CHECK(memory == machine_memory && vcpus == cpus && disk == disk_gib(ch1->data));

        /* declared lower: the declared figures, from the first heartbeat on; the disk measured */
        static const char *const declared[] = { "--capacity-memory", "512", "--capacity-vcpus", "1", NULL };
        daemon_t *cap1 = &d->nodes[2];
        cap1->args = declared;
        CHECK(daemons_node_start(d, 2, "cap1", "chamber", NULL) == 0);
        CHECK(rm_capacity_wait(d, "cap1", &memory, &vcpus, &disk) == 0);
        CHECK(memory == 512 && vcpus == 1 && disk == disk_gib(cap1->data));
        daemons_stop(cap1, SIGTERM);

        /* declared above the machine: refused at start, exit 2, with a message naming the option;
         * with a good join token, so that only the capacity stops it */
        char url[160], token[256] = "";
        snprintf(url, sizeof url, "%s/v1/rms/join-tokens", d->oracle.url);
        json_t *answer = NULL, *body = json_pack("{s:s,s:i}", "role", "chamber", "ttl_s", 600);
        daemons_call("POST", url, body, &answer);
        snprintf(token, sizeof token, "%s", json_string_value(json_object_get(answer, "token")) ?: "");
        json_decref(body);
        json_decref(answer);
        CHECK(*token);
        char data[600], log[600], vcpus_arg[32];
        snprintf(data, sizeof data, "%s/cap2", d->dir);
        snprintf(log, sizeof log, "%s/cap2.log", d->dir);
        snprintf(vcpus_arg, sizeof vcpus_arg, "%ld", cpus + 1);
        pid_t pid = fork();
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd >= 0)
                        dup2(fd, 2);
                execl(d->exe, d->exe, "node", "--oracle", d->nodes[0].oracle, "--name", "cap2", "--role", "chamber",
                      "--data", data, "--driver", "fake", "--join", token, "--capacity-vcpus", vcpus_arg, (char *)NULL);
                _exit(127);
        }
        int status = 0;
        pid_t reaped = 0;
        for (int64_t deadline = daemons_now_ms() + 20000; pid > 0 && reaped == 0 && daemons_now_ms() < deadline;)
                if ((reaped = waitpid(pid, &status, WNOHANG)) == 0)
                        daemons_sleep_ms(20);
        if (pid > 0 && reaped != pid) { /* it did not refuse: it runs */
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
        CHECK(pid > 0 && reaped == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
        char text[1024] = "";
        FILE *f = fopen(log, "re");
        if (f) {
                size_t n = fread(text, 1, sizeof text - 1, f);
                text[n] = 0;
                fclose(f);
        }
        CHECK(strstr(text, "--capacity-vcpus") && strstr(text, "is more than this machine has online"));
        /* refused before it enrolled: the Oracle never heard of it */
        CHECK(rm_capacity(d, "cap2", &memory, &vcpus, &disk) == -1);
        char st[16];
        daemons_rm_state(d, "cap2", st);
        CHECK_STREQ(st, "");
}

#define PAGING_VMS 150

typedef struct churn {
        daemons_t *d;
        int stop; /* atomic */
        int created, deleted;
} churn_t;

/* Creates a-K and z-K (before and after every initial VM) and deletes the even-numbered initial
 * VMs, one of each every few ms, until told to stop. */
static void *churn_run(void *arg) {
        churn_t *c = arg;
        char url[256], name[32];
        for (int k = 0; !__atomic_load_n(&c->stop, __ATOMIC_SEQ_CST); k++) {
                snprintf(name, sizeof name, "%c-%d", k % 2 ? 'z' : 'a', k);
                c->created += daemons_vm_create(c->d, name) == 0;
                if (2 * k < PAGING_VMS) {
                        snprintf(url, sizeof url, "%s/v1/vms/pg-%03d", c->d->oracle.url, 2 * k);
                        c->deleted += daemons_call("DELETE", url, NULL, NULL) == 202;
                }
                usleep(10000);
        }
        return NULL;
}

/* One walk of GET /v1/vms?limit=7: the names in order into names (at most max); false when a
 * page was not an array of at most 7, or the walk did not end. */
static bool paging_walk(daemons_t *d, char (*names)[32], size_t max, size_t *ret_n) {
        char after[64] = "", url[256];
        size_t n = 0;
        for (int pages = 0; pages < 200; pages++) {
                snprintf(url, sizeof url, "%s/v1/vms?limit=7&after=%s", d->oracle.url, after);
                json_t *arr = NULL;
                if (daemons_call("GET", url, NULL, &arr) != 200 || !json_is_array(arr) || json_array_size(arr) > 7) {
                        json_decref(arr);
                        return false;
                }
                size_t i, got = json_array_size(arr);
                json_t *vm;
                json_array_foreach(arr, i, vm) {
                        const char *name = json_string_value(json_object_get(vm, "name"));
                        if (n < max)
                                snprintf(names[n++], 32, "%s", name ? name : "");
                        snprintf(after, sizeof after, "%s", name ? name : "");
                }
                json_decref(arr);
                if (got < 7) {
                        *ret_n = n;
                        return true;
                }
        }
        return false;
}

static void test_paging(daemons_t *d) {
        char name[32], url[256];
        int made = 0;
        for (int i = 0; i < PAGING_VMS; i++) {
                snprintf(name, sizeof name, "pg-%03d", i);
                made += daemons_vm_create(d, name) == 0;
        }
        CHECK(made == PAGING_VMS);
        churn_t c = { .d = d };
        pthread_t t;
        CHECK(pthread_create(&t, NULL, churn_run, &c) == 0);
        static char names[1024][32];
        int walks_ok = 0, ordered = 0, kept_once = 0;
        for (int w = 0; w < 5; w++) {
                size_t n = 0;
                if (!paging_walk(d, names, 1024, &n))
                        continue;
                walks_ok++;
                bool inc = true;
                for (size_t i = 1; i < n; i++)
                        inc = inc && strcmp(names[i - 1], names[i]) < 0;
                ordered += inc;
                /* the odd-numbered initial VMs are never deleted: each exactly once */
                bool once = true;
                for (int k = 1; k < PAGING_VMS; k += 2) {
                        snprintf(name, sizeof name, "pg-%03d", k);
                        int count = 0;
                        for (size_t i = 0; i < n; i++)
                                count += streq(names[i], name);
                        once = once && count == 1;
                }
                kept_once += once;
        }
        __atomic_store_n(&c.stop, 1, __ATOMIC_SEQ_CST);
        pthread_join(t, NULL);
        CHECK(walks_ok == 5);
        CHECK(ordered == 5);
        CHECK(kept_once == 5);
        CHECK(c.created > 0 && c.deleted > 0);
        fprintf(stderr, "paging: 5 walks while %d VMs were created and %d deleted\n", c.created, c.deleted);

        /* /v1/rms: ch1, then rm1, then the end; bad limits and cursors */
        json_t *arr = NULL;
        snprintf(url, sizeof url, "%s/v1/rms?limit=1", d->oracle.url);
        CHECK(daemons_call("GET", url, NULL, &arr) == 200 && json_array_size(arr) == 1 &&
              streq(json_string_value(json_object_get(json_array_get(arr, 0), "name")) ?: "", "ch1"));
        json_decref(arr);
        arr = NULL;
        snprintf(url, sizeof url, "%s/v1/rms?limit=1&after=ch1", d->oracle.url);
        CHECK(daemons_call("GET", url, NULL, &arr) == 200 && json_array_size(arr) == 1 &&
              streq(json_string_value(json_object_get(json_array_get(arr, 0), "name")) ?: "", "rm1"));
        json_decref(arr);
        arr = NULL;
        snprintf(url, sizeof url, "%s/v1/rms?limit=5&after=rm1", d->oracle.url);
        CHECK(daemons_call("GET", url, NULL, &arr) == 200 && json_is_array(arr) && json_array_size(arr) == 0);
        json_decref(arr);
        const char *bad[] = { "/v1/vms?limit=0", "/v1/vms?limit=1001", "/v1/rms?limit=x", "/v1/vms?after=pg-001",
                              "/v1/rms?limit=3&after=NOT%20A%20NAME" };
        const char *code[] = { "out_of_range", "out_of_range", "out_of_range", "invalid", "invalid" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_t *err = NULL;
                snprintf(url, sizeof url, "%s%s", d->oracle.url, bad[i]);
                CHECK(daemons_call("GET", url, NULL, &err) == 400);
                CHECK_STREQ(json_string_value(json_object_get(json_object_get(err, "error"), "code")), code[i]);
                json_decref(err);
        }
        /* without limit: the whole list, as before */
        arr = NULL;
        snprintf(url, sizeof url, "%s/v1/vms", d->oracle.url);
        CHECK(daemons_call("GET", url, NULL, &arr) == 200 && json_array_size(arr) >= PAGING_VMS / 2);
        json_decref(arr);
}

static int64_t prestaged(daemons_t *d, int64_t bps) {
        char url[256];
        snprintf(url, sizeof url, "%s/v1/settings/prestage", d->oracle.url);
        json_t *res = NULL;
        json_t *body = bps >= 0 ? json_pack("{s:I}", "prestage_bps", (json_int_t)bps) : NULL;
        long st = daemons_call(bps >= 0 ? "PUT" : "GET", url, body, &res);
        json_decref(body);
        int64_t staged = st == 200 ? json_integer_value(json_object_get(res, "staged")) : -1;
        json_decref(res);
        return staged;
}

/* Pre-staging: once prestage_bps is set, a VM hibernated on the chamber has its snapshot staged
 * on the idle production RM (memory file, disk, state chunks) with no registry entry there, and
 * its activation then moves no chunk at all. A malformed prestage command is refused and makes
 * nothing. */
static void test_prestage(daemons_t *d) {
        char boot_id[32], ns[32], op[64], st[16], ram[32];
        CHECK(vm_loading(d, "ps", boot_id));
        /* RAM and disk of its own: no other VM's snapshot on rm1 has its digests */
        CHECK(daemons_ram_mark_set(ch1, "ps", "ps7") == 0 && daemons_disk_mark_set(ch1, "ps", "ps7") == 0);
        CHECK(daemons_vm_do(d, "ps", "hibernate", "stored"));
        int64_t before = prestaged(d, -1);
        CHECK(before >= 0);
        CHECK(prestaged(d, 100 * 1000 * 1000) == before);
        int64_t deadline = daemons_now_ms() + 20000;
        while (prestaged(d, -1) <= before && daemons_now_ms() < deadline)
                daemons_sleep_ms(100);
        CHECK(prestaged(d, -1) == before + 1);
        CHECK(prestaged(d, 0) == before + 1);
        CHECK(daemons_node_vm(rm1, "ps", ns) < 0); /* no entry, no lease on rm1 */
        char url[256];
        snprintf(url, sizeof url, "%s/v1/vms/ps/prestage", rm1->url);
        json_t *bad = json_pack("{s:i,s:s}", "version", 1, "mode", "boot");
        CHECK(daemons_call("POST", url, bad, NULL) == 400);
        json_decref(bad);
        CHECK(daemons_node_vm(rm1, "ps", ns) < 0);
        CHECK(daemons_vm_action(d, "ps", "activate", NULL, op) == 202);
        daemons_op_wait(d, op, daemons_now_ms() + 20000, st);
        CHECK_STREQ(st, "done");
        snprintf(url, sizeof url, "%s/v1/ops/%s", d->oracle.url, op);
        json_t *res = NULL;
        CHECK(daemons_call("GET", url, NULL, &res) == 200);
        const json_t *result = json_object_get(res, "result");
        CHECK(json_integer_value(json_object_get(json_object_get(result, "transfer"), "chunks_transferred")) == 0);
        CHECK(json_integer_value(json_object_get(json_object_get(result, "transfer"), "bytes_total")) > 0);
        CHECK(json_is_integer(json_object_get(json_object_get(result, "steps"), "memory_ms")));
        CHECK(json_is_integer(json_object_get(json_object_get(result, "steps"), "disk_ms")));
        json_decref(res);
        CHECK(daemons_vm_consistent(d, "ps", daemons_now_ms() + 5000, NULL));
        daemons_ram_mark(rm1, "ps", ram);
        CHECK_STREQ(ram, "ps7");
        char disk[32];
        daemons_disk_mark(rm1, "ps", disk);
        CHECK_STREQ(disk, "ps7");
        CHECK(daemons_vm_do(d, "ps", "deactivate", "stored"));
        CHECK(daemons_vm_do(d, "ps", "delete", NULL));
}

/* PRAGMA data_version of db: it moves whenever another connection committed to the file. */
static int64_t data_version(sqlite3 *db) {
        sqlite3_stmt *st = NULL;
        int64_t v = -1;
        if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

/* rm's node address at the Oracle into ret (64 bytes), "" when unknown. */
static void rm_address(daemons_t *d, const char *rm, char *ret) {
        char url[128];
        snprintf(url, sizeof url, "%s/v1/rms", d->oracle.url);
        _cleanup_(json_decrefp) json_t *j = NULL;
        *ret = 0;
        if (daemons_call("GET", url, NULL, &j) != 200)
                return;
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e)
                if (strcmp(json_string_value(json_object_get(e, "name")) ?: "", rm) == 0)
                        snprintf(ret, 64, "%s", json_string_value(json_object_get(e, "address")) ?: "");
}

/* Heartbeats are soft state: five that say what the Oracle knows (rm1 up, its role and
 * address, no VMs) commit nothing to the store; one with another address commits. Sent as rm1
 * (its certificate) beside its node's own heartbeats, which say the same. Run while no VM
 * exists: a running VM's figures are samples, written once a second. */
static void test_quiet_heartbeats(daemons_t *d) {
        char path[600], address[64], url[256];
        snprintf(path, sizeof path, "%s/state.db", d->oracle.data);
        rm_address(d, "rm1", address);
        CHECK(*address);
        sqlite3 *db = NULL;
        CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
        snprintf(url, sizeof url, "%s/v1/rms/rm1/heartbeat", d->oracle.node_url);
        _cleanup_(json_decrefp) json_t *beat =
                json_pack("{s:s,s:s,s:[],s:[]}", "role", "production", "address", address, "vms", "snapshots");
        int64_t before = data_version(db);
        CHECK(before >= 0);
        int answered = 0;
        for (int i = 0; i < 5; i++) {
                _cleanup_(json_decrefp) json_t *answer = NULL;
                answered += daemons_call_as(rm1, "POST", url, beat, &answer) == 200 &&
                            json_is_object(json_object_get(answer, "leases"));
        }
        CHECK(answered == 5);
        int64_t after = data_version(db);
        CHECK(after == before);
        if (after != before)
                fprintf(stderr, "  the store changed over 5 unchanged heartbeats (data_version %lld -> %lld)\n",
                        (long long)before, (long long)after);
        /* a change is written: the counter can move (the node's next heartbeat puts the address back) */
        _cleanup_(json_decrefp) json_t *moved =
                json_pack("{s:s,s:s,s:[],s:[]}", "role", "production", "address", "127.0.0.1:9", "vms", "snapshots");
        CHECK(daemons_call_as(rm1, "POST", url, moved, NULL) == 200);
        CHECK(data_version(db) != after);
        CHECK(daemons_call_as(rm1, "POST", url, beat, NULL) == 200);
        sqlite3_close(db);
        rm_address(d, "rm1", address);
        CHECK(strcmp(address, "127.0.0.1:9") != 0);
}

int main(void) {
        daemons_t d;
        daemons_init(&d, NULL);
        int64_t t0 = daemons_now_ms();
        CHECK(daemons_start_cluster(&d) == 0);
        rm1 = &d.nodes[0];
        ch1 = &d.nodes[1];
        /* first: no VM exists yet */
        if (tap_failed == 0)
                test_quiet_heartbeats(&d);
        if (tap_failed == 0)
                test_lifecycle(&d);
        if (tap_failed == 0)
                test_late_op_heartbeat(&d);
        if (tap_failed == 0)
                test_stop_upload_fails(&d);
        /* kill -9 of the Oracle at its crash points: before and after it asks the node to run a
         * VM (activate from the chamber, through the Nest), after a save into the Nest */
        if (tap_failed == 0)
                oracle_crash_point(&d, "c1", "oracle-before-run", "activate");
        if (tap_failed == 0)
                oracle_crash_point(&d, "c2", "oracle-after-run", "activate");
        if (tap_failed == 0)
                oracle_crash_point(&d, "c3", "oracle-after-save", "hibernate");
        if (tap_failed == 0)
                oracle_killed_anywhere(&d);
        if (tap_failed == 0)
                test_paging(&d);
        if (tap_failed == 0)
                test_prestage(&d);
        if (tap_failed == 0)
                test_soft_state_restart(&d);
        /* last: the RM it adds must not take the others' placements */
        if (tap_failed == 0)
                test_capacity(&d);
        fprintf(stderr, "test-oracle: %lld ms\n", (long long)(daemons_now_ms() - t0));
        daemons_done(&d, tap_failed > 0);
        return tap_finish();
}
