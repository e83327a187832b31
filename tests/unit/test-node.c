/* Daemon tests of the node: a real Oracle and real nodes (rm1 production, ch1 and ch2 chambers)
 * of vmatrix-test on the fake VMM driver (daemons.c).
 *   - the command protocol over HTTP: commands older than the lease are refused and change
 *     nothing; a repeat of the last command (same version) is answered from its record and not
 *     done twice; a refused command leaves the lease version as it was;
 *   - a node killed with SIGKILL and restarted adopts its running and suspended VMs and
 *     reports them again, guests intact;
 *   - a node killed at each of its crash points (node-save-after-save, node-save-after-upload,
 *     nest-batch-files in a hibernate, node-run-before-start in an activation, node-receive-mid
 *     in a migration): restarted, the op has ended, the cluster agrees on the VM, a retry works
 *     and the guest's RAM and disk are the ones it had;
 *   - a VM whose VMM crashes, a guest that powers off: failed, then stopped and started again
 *     with its disk;
 *   - a node that lost a VM's record, a node that stays dead (its RM goes down after the
 *     liveness window and its VM fails) and comes back. */
#include "daemons.h"
#include "tap.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static daemon_t *rm1, *ch1, *ch2;

/* POST a command to the node; the error code of a refusal into ret_code (32 bytes). body is
 * stolen. */
static long node_cmd(const daemon_t *dm, const char *vm, const char *kind, json_t *body, json_t **ret, char *ret_code) {
        char url[256];
        snprintf(url, sizeof url, "%s/v1/vms/%s/%s", dm->url, vm, kind);
        json_t *j = NULL;
        long status = daemons_call("POST", url, body, &j);
        json_decref(body);
        const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
        snprintf(ret_code, 32, "%s", code ? code : "");
        if (ret)
                *ret = j;
        else
                json_decref(j);
        return status;
}

static json_t *version_body(int64_t v) { return json_pack("{s:I}", "version", (json_int_t)v); }

/* A fresh VM loading on ch1, with RAM and disk marks "m"; its boot id into boot_id. */
static bool vm_loading(daemons_t *d, const char *vm, char *boot_id) {
        if (daemons_vm_create(d, vm) < 0 || !daemons_vm_do_on(d, vm, "boot", "ch1", "loading"))
                return false;
        daemons_boot_id(ch1, vm, boot_id);
        return daemons_ram_mark_set(ch1, vm, "m") == 0 && daemons_disk_mark_set(ch1, vm, "m") == 0;
}

/* The guest of vm where the Oracle places it: same boot id, RAM mark "m" and disk mark "m". */
static void same_guest(daemons_t *d, const char *vm, const char *boot_id) {
        const daemon_t *dm = daemons_vm_node(d, vm);
        CHECK(dm != NULL);
        if (!dm)
                return;
        char now[32], ram[32], disk[32];
        daemons_boot_id(dm, vm, now);
        daemons_ram_mark(dm, vm, ram);
        daemons_disk_mark(dm, vm, disk);
        CHECK_STREQ(now, boot_id);
        CHECK_STREQ(ram, "m");
        CHECK_STREQ(disk, "m");
}

static void test_protocol(daemons_t *d) {
        const char *vm = "proto";
        char st[32], code[32], boot_id[32], now[32];
        CHECK(vm_loading(d, vm, boot_id));
        CHECK(daemons_vm_do(d, vm, "suspend", "suspended"));
        CHECK(daemons_vm_do(d, vm, "resume", "loading"));
        int64_t v = daemons_node_vm(ch1, vm, st);
        CHECK(v > 0);
        CHECK_STREQ(st, "running");

        /* the resume the Oracle completed, sent again: its recorded answer, no second restore */
        json_t *a = NULL, *b = NULL;
        CHECK(node_cmd(ch1, vm, "resume", version_body(v), &a, code) == 200);
        CHECK(node_cmd(ch1, vm, "resume", version_body(v), &b, code) == 200);
        CHECK(a && b && json_equal(a, b));
        json_decref(a);
        json_decref(b);
        daemons_boot_id(ch1, vm, now);
        CHECK_STREQ(now, boot_id);

        /* a newer resume is not a repeat: refused (the VM runs), and the lease stays at v */
        CHECK(node_cmd(ch1, vm, "resume", version_body(v + 5), NULL, code) == 409);
        CHECK(daemons_node_vm(ch1, vm, st) == v);

        /* older than the lease: refused as stale, whatever the command, and nothing changes */
        CHECK(node_cmd(ch1, vm, "save", json_pack("{s:I,s:b,s:I}", "version", (json_int_t)(v - 1), "upload", 0,
                                                  "new_version", (json_int_t)v),
                       NULL, code) == 409);
        CHECK_STREQ(code, "stale_version");
        CHECK(node_cmd(ch1, vm, "stop", json_pack("{s:I,s:I}", "version", (json_int_t)(v - 2), "new_version",
                                                  (json_int_t)(v - 1)),
                       NULL, code) == 409);
        CHECK_STREQ(code, "stale_version");
        CHECK(node_cmd(ch1, vm, "delete", version_body(v - 1), NULL, code) == 409);
        CHECK_STREQ(code, "stale_version");
        CHECK(daemons_node_vm(ch1, vm, st) == v);
        CHECK_STREQ(st, "running");
        CHECK(daemons_vm_consistent(d, vm, daemons_now_ms() + 5000, NULL));

        /* the suspend's save, repeated: the recorded answer, the VM stays saved once */
        CHECK(daemons_vm_do(d, vm, "suspend", "suspended"));
        int64_t s = daemons_node_vm(ch1, vm, st);
        json_t *save = json_pack("{s:I,s:b,s:I}", "version", (json_int_t)s, "upload", 0, "new_version", (json_int_t)(s + 1));
        json_t *save2 = json_deep_copy(save);
        CHECK(node_cmd(ch1, vm, "save", save, &a, code) == 200);
        CHECK(node_cmd(ch1, vm, "save", save2, &b, code) == 200);
        CHECK(a && b && json_equal(a, b));
        json_decref(a);
        json_decref(b);
        CHECK(daemons_node_vm(ch1, vm, st) == s);
        CHECK_STREQ(st, "suspended");
        CHECK(daemons_vm_do(d, vm, "resume", "loading"));
        same_guest(d, vm, boot_id);

        /* delete: its tombstone answers a repeat from the record and refuses older commands */
        CHECK(daemons_vm_do(d, vm, "stop", "stored"));
        CHECK(daemons_vm_do(d, vm, "delete", NULL));
        CHECK(daemons_node_vm(ch1, vm, st) < 0);
}

/* kill -9 of a node and a restart: it adopts a running and a suspended VM and reports both. */
static void test_node_killed(daemons_t *d) {
        char run_id[32], sus_id[32], st[32];
        CHECK(vm_loading(d, "k-run", run_id));
        CHECK(vm_loading(d, "k-sus", sus_id));
        CHECK(daemons_vm_do(d, "k-sus", "suspend", "suspended"));
        daemons_stop(ch1, SIGKILL);
        CHECK(daemons_restart(d, ch1, NULL) == 0);
        CHECK(daemons_node_vm(ch1, "k-run", st) > 0);
        CHECK_STREQ(st, "running");
        CHECK(daemons_node_vm(ch1, "k-sus", st) > 0);
        CHECK_STREQ(st, "suspended");
        CHECK(daemons_vm_consistent(d, "k-run", daemons_now_ms() + 5000, st));
        CHECK_STREQ(st, "loading");
        CHECK(daemons_vm_consistent(d, "k-sus", daemons_now_ms() + 5000, st));
        CHECK_STREQ(st, "suspended");
        same_guest(d, "k-run", run_id);
        CHECK(daemons_vm_do(d, "k-sus", "resume", "loading"));
        same_guest(d, "k-sus", sus_id);
        const char *vms[] = { "k-run", "k-sus" };
        for (size_t i = 0; i < 2; i++) {
                CHECK(daemons_vm_do(d, vms[i], "stop", "stored"));
                CHECK(daemons_vm_do(d, vms[i], "delete", NULL));
        }
}

/* victim dies at crash point at during action on vm (prepared by the caller); restarted, the
 * op has ended, the cluster agrees, and to_active brings the same guest to rm1. */
static void node_crash_point(daemons_t *d, daemon_t *victim, const char *vm, const char *at, const char *action,
                             json_t *body, const char *boot_id) {
        char env[96], op[64], st[16], vs[32];
        snprintf(env, sizeof env, "VMATRIX_CRASH_AT=%s", at);
        const char *crash_env[] = { env, NULL };
        CHECK(daemons_restart(d, victim, crash_env) == 0);
        CHECK(daemons_vm_action(d, vm, action, body, op) == 202 && *op);
        bool crashed = daemons_exited(victim, 30000);
        CHECK(crashed);
        if (!crashed)
                fprintf(stderr, "%s never reached crash point %s\n", victim->name, at);
        CHECK(daemons_restart(d, victim, NULL) == 0);
        daemons_op_wait(d, op, daemons_now_ms() + 40000, st);
        CHECK(strcmp(st, "done") == 0 || strcmp(st, "failed") == 0);
        CHECK(daemons_vm_consistent(d, vm, daemons_now_ms() + 10000, vs));
        fprintf(stderr, "  %s (%s): op %s, vm %s\n", at, victim->name, st, vs);
        /* the retry: where it rests, the same guest, then through the Nest to rm1 */
        const daemon_t *dm = daemons_vm_node(d, vm);
        if (dm && strcmp(vs, "loading") == 0)
                same_guest(d, vm, boot_id);
        bool cold = false;
        CHECK(daemons_vm_to_active(d, vm, &cold));
        CHECK(!cold);
        CHECK(daemons_vm_consistent(d, vm, daemons_now_ms() + 10000, NULL));
        same_guest(d, vm, boot_id);
        CHECK(daemons_vm_do(d, vm, "stop", "stored"));
        CHECK(daemons_vm_do(d, vm, "delete", NULL));
}

static void test_crash_points(daemons_t *d) {
        /* a hibernate on ch1: killed after QEMU saved, after the upload into the Nest, and while
         * its chunk cache publishes the staged files (src/nest/txn.c) */
        const char *save_points[] = { "node-save-after-save", "node-save-after-upload", "nest-batch-files" };
        char boot_id[32], vm[32];
        for (size_t i = 0; i < 3 && tap_failed == 0; i++) {
                snprintf(vm, sizeof vm, "c%zu", i);
                CHECK(vm_loading(d, vm, boot_id));
                node_crash_point(d, ch1, vm, save_points[i], "hibernate", NULL, boot_id);
        }
        /* an activation on rm1, killed before it starts the VMM */
        if (tap_failed == 0) {
                CHECK(vm_loading(d, "c-run", boot_id));
                CHECK(daemons_vm_do(d, "c-run", "hibernate", "stored"));
                node_crash_point(d, rm1, "c-run", "node-run-before-start", "activate", NULL, boot_id);
        }
        /* a migration from ch1 to ch2, the destination killed in the middle of receiving */
        if (tap_failed == 0) {
                CHECK(vm_loading(d, "c-mig", boot_id));
                CHECK(daemons_vm_do(d, "c-mig", "suspend", "suspended"));
                node_crash_point(d, ch2, "c-mig", "node-receive-mid", "migrate", json_pack("{s:s}", "rm", "ch2"),
                                 boot_id);
        }
}

/* A migration that works: the suspended VM moves from ch1 to ch2 whole. */
static void test_migrate(daemons_t *d) {
        char boot_id[32], st[32], rm[32];
        CHECK(vm_loading(d, "mig", boot_id));
        CHECK(daemons_vm_do(d, "mig", "suspend", "suspended"));
        char op[64], ost[16];
        CHECK(daemons_vm_action(d, "mig", "migrate", json_pack("{s:s}", "rm", "ch2"), op) == 202);
        daemons_op_wait(d, op, daemons_now_ms() + 30000, ost);
        CHECK_STREQ(ost, "done");
        CHECK(daemons_vm_consistent(d, "mig", daemons_now_ms() + 10000, st));
        daemons_vm_state(d, "mig", st, rm);
        CHECK_STREQ(st, "suspended");
        CHECK_STREQ(rm, "ch2");
        CHECK(daemons_vm_do(d, "mig", "resume", "loading"));
        same_guest(d, "mig", boot_id);
        CHECK(daemons_vm_do(d, "mig", "stop", "stored"));
        CHECK(daemons_vm_do(d, "mig", "delete", NULL));
}

/* A VM whose VMM dies, and one whose guest powers off: both fail; a stop saves their disks and
 * they start again cold with them. */
static void test_vm_crash(daemons_t *d) {
        char boot_id[32], st[32];
        CHECK(vm_loading(d, "dies", boot_id));
        CHECK(daemons_vm_do(d, "dies", "activate", "active"));
        CHECK(daemons_vm_crash(rm1, "dies") == 0);
        CHECK(daemons_vm_wait_state(d, "dies", "failed", daemons_now_ms() + 10000));
        CHECK(daemons_vm_consistent(d, "dies", daemons_now_ms() + 5000, st));
        CHECK_STREQ(st, "failed");
        bool cold = false;
        CHECK(daemons_vm_to_active(d, "dies", &cold));
        CHECK(cold);
        char disk[32], now[32];
        daemons_disk_mark(rm1, "dies", disk);
        CHECK_STREQ(disk, "m");
        daemons_boot_id(rm1, "dies", now);
        CHECK(*now && strcmp(now, boot_id) != 0);

        CHECK(daemons_vm_poweroff(rm1, "dies") == 0);
        CHECK(daemons_vm_wait_state(d, "dies", "failed", daemons_now_ms() + 10000));
        CHECK(daemons_vm_consistent(d, "dies", daemons_now_ms() + 5000, NULL));
        CHECK(daemons_vm_do(d, "dies", "stop", "stored"));
        CHECK(daemons_vm_do(d, "dies", "delete", NULL));
}

/* A node stopped, its record of a VM deleted, restarted: the VM is missing from its heartbeats,
 * and the Oracle marks it failed (oracle-rms.c, heartbeat_missing); it activates again. */
static void test_lost_record(daemons_t *d) {
        CHECK(daemons_vm_create(d, "lost") == 0);
        CHECK(daemons_vm_do(d, "lost", "activate", "active"));
        daemons_stop(rm1, SIGTERM);
        char path[700];
        snprintf(path, sizeof path, "%s/vms/lost/node-vm.json", rm1->data);
        CHECK(unlink(path) == 0);
        CHECK(daemons_restart(d, rm1, NULL) == 0);
        CHECK(daemons_vm_wait_state(d, "lost", "failed", daemons_now_ms() + 20000));
        CHECK(daemons_vm_consistent(d, "lost", daemons_now_ms() + 5000, NULL));
        CHECK(daemons_vm_do(d, "lost", "activate", "active"));
}

static ino_t disk_inode(const daemon_t *dm, const char *vm) {
        char path[700];
        snprintf(path, sizeof path, "%s/vms/%s/disk.qcow2", dm->data, vm);
        struct stat st;
        return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* Same-RM disk reuse: a deactivate leaves the disk marked with its manifest's digest; the next
 * activation of that bundle on the same RM takes the mark and uses the very file (same inode,
 * content kept), removing the mark before the VM can write the disk. A disk written after the
 * mark (here by qemu-io) is not trusted: it is rebuilt from the Nest (a new file, the saved
 * content). */
static void test_disk_reuse(daemons_t *d) {
        char boot_id[32], disk[32];
        CHECK(vm_loading(d, "reuse", boot_id));
        CHECK(daemons_vm_do_on(d, "reuse", "activate", "rm1", "active"));
        ino_t before = disk_inode(rm1, "reuse");
        CHECK(daemons_vm_do(d, "reuse", "deactivate", "stored"));
        CHECK(daemons_vm_do_on(d, "reuse", "activate", "rm1", "active"));
        CHECK(before != 0 && disk_inode(rm1, "reuse") == before);
        daemons_disk_mark(rm1, "reuse", disk);
        CHECK_STREQ(disk, "m");
        /* suspended, written (the mark is dropped), saved again: the new disk is the one kept */
        CHECK(daemons_vm_do(d, "reuse", "suspend", "suspended"));
        CHECK(daemons_disk_mark_set(rm1, "reuse", "x") == 0);
        CHECK(daemons_vm_do(d, "reuse", "resume", "active"));
        CHECK(daemons_vm_do(d, "reuse", "deactivate", "stored"));
        CHECK(daemons_vm_do_on(d, "reuse", "activate", "rm1", "active"));
        daemons_disk_mark(rm1, "reuse", disk);
        CHECK_STREQ(disk, "x");
        CHECK(daemons_vm_do(d, "reuse", "stop", "stored"));
        CHECK(daemons_vm_do(d, "reuse", "delete", NULL));
}

/* Hibernates vm (loading on ch1) and makes the prestage command the Oracle would send for it
 * from what the test can see: its vm.json on ch1, the hibernate op's answer (the bundle's files)
 * and its record (versions); its image's files are left out (a kernel-booted image needs none
 * to stage). NULL when something failed. */
static json_t *hibernate_for_prestage(daemons_t *d, const char *vm, char *ret_digest /* 65 */) {
        char path[700], url[256], op[64], st[16];
        snprintf(path, sizeof path, "%s/vms/%s/node-vm.json", ch1->data, vm);
        json_t *rec = json_load_file(path, 0, NULL), *opj = NULL, *vj = NULL, *body = NULL;
        if (daemons_vm_action(d, vm, "hibernate", NULL, op) == 202) {
                daemons_op_wait(d, op, daemons_now_ms() + 20000, st);
                snprintf(url, sizeof url, "%s/v1/ops/%s", d->oracle.url, op);
                if (strcmp(st, "done") == 0 && daemons_call("GET", url, NULL, &opj) == 200) {
                        snprintf(url, sizeof url, "%s/v1/vms/%s", d->oracle.url, vm);
                        if (daemons_call("GET", url, NULL, &vj) == 200) {
                                const json_t *files = json_object_get(json_object_get(opj, "result"), "files");
                                body = json_pack("{s:O,s:s,s:O?,s:{s:O,s:{}},s:{s:O,s:O?}}", "version",
                                                 json_object_get(vj, "version"), "mode", "restore", "config",
                                                 json_object_get(rec, "config"), "image", "name",
                                                 json_object_get(vj, "image"), "files", "bundle", "version",
                                                 json_object_get(vj, "nest_version"), "files", files);
                                const char *dg = json_string_value(
                                        json_object_get(json_object_get(files, "memory"), "digest"));
                                snprintf(ret_digest, 65, "%s", dg ? dg : "none");
                        }
                }
        }
        json_decref(rec);
        json_decref(opj);
        json_decref(vj);
        return body;
}

static bool file_there(const daemon_t *dm, const char *dir, const char *name) {
        char path[800];
        snprintf(path, sizeof path, "%s/%s/%s", dm->data, dir, name);
        return access(path, F_OK) == 0;
}

/* Pre-staging at a node under its cache cap (ch2 with --cache-max 64M): a snapshot that fits is
 * staged (memory file, no registry entry); one that cannot fit is refused with 507; what a VM the
 * node holds needs (the snapshot it runs from, suspended) is never evicted, and it resumes. */
static void test_prestage_cap(daemons_t *d) {
        static const char *const cap[] = { "--cache-max", "64M", NULL };
        ch2->args = cap;
        CHECK(daemons_restart(d, ch2, NULL) == 0);
        char boot_id[32], ram[32], ns[32], da[65] = "none", db[65] = "none", dc[65] = "none", url[256];
        /* A runs on ch2 from its snapshot, then is suspended there: held */
        CHECK(vm_loading(d, "ka", boot_id) && daemons_ram_mark_set(ch1, "ka", "a1") == 0);
        json_t *body = hibernate_for_prestage(d, "ka", da);
        json_decref(body);
        CHECK(daemons_vm_do_on(d, "ka", "boot", "ch2", "loading"));
        CHECK(daemons_vm_do(d, "ka", "suspend", "suspended"));
        CHECK(file_there(ch2, "memory", da));
        /* B fits */
        CHECK(vm_loading(d, "kb", boot_id) && daemons_ram_mark_set(ch1, "kb", "b1") == 0);
        body = hibernate_for_prestage(d, "kb", db);
        snprintf(url, sizeof url, "%s/v1/vms/kb/prestage", ch2->url);
        json_t *res = NULL;
        CHECK(body && daemons_call("POST", url, body, &res) == 200);
        CHECK(json_is_boolean(json_object_get(res, "present")) && !json_is_true(json_object_get(res, "present")));
        json_decref(res);
        json_decref(body);
        CHECK(file_there(ch2, "memory", db));
        CHECK(daemons_node_vm(ch2, "kb", ns) < 0);
        /* C (128 MiB of RAM) cannot fit under 64M: refused, nothing evicted */
        snprintf(url, sizeof url, "%s/v1/vms", d->oracle.url);
        body = json_pack("{s:s,s:s,s:i}", "name", "kc", "image", "tiny-http", "memory_mib", 128);
        CHECK(daemons_call("POST", url, body, NULL) == 201);
        json_decref(body);
        CHECK(daemons_vm_do_on(d, "kc", "boot", "ch1", "loading"));
        CHECK(daemons_ram_mark_set(ch1, "kc", "c1") == 0);
        body = hibernate_for_prestage(d, "kc", dc);
        snprintf(url, sizeof url, "%s/v1/vms/kc/prestage", ch2->url);
        CHECK(body && daemons_call("POST", url, body, NULL) == 507);
        json_decref(body);
        CHECK(!file_there(ch2, "memory", dc));
        CHECK(file_there(ch2, "memory", da));
        CHECK(file_there(ch2, "memory", db));
        CHECK(daemons_node_vm(ch2, "kc", ns) < 0);
        /* A's snapshot survived: it resumes with its RAM */
        CHECK(daemons_vm_do(d, "ka", "resume", "loading"));
        daemons_ram_mark(ch2, "ka", ram);
        CHECK_STREQ(ram, "a1");
        const char *const vms[] = { "ka", "kb", "kc" };
        for (size_t i = 0; i < 3; i++) {
                char st[32];
                daemons_vm_state(d, vms[i], st, NULL);
                if (strcmp(st, "stored") != 0)
                        CHECK(daemons_vm_do(d, vms[i], "stop", "stored"));
                CHECK(daemons_vm_do(d, vms[i], "delete", NULL));
        }
}

/* A node that stays dead: its RM is declared down after the liveness window and its VM fails;
 * back, the RM is up again and the VM starts there anew. */
static void test_node_dead(daemons_t *d) {
        char st[16];
        daemons_rm_state(d, "rm1", st);
        CHECK_STREQ(st, "up");
        daemons_stop(rm1, SIGKILL);
        int64_t deadline = daemons_now_ms() + 30000;
        do {
                daemons_rm_state(d, "rm1", st);
                if (strcmp(st, "down") == 0)
                        break;
                daemons_sleep_ms(200);
        } while (daemons_now_ms() < deadline);
        CHECK_STREQ(st, "down");
        CHECK(daemons_vm_wait_state(d, "lost", "failed", daemons_now_ms() + 10000));
        daemons_rm_state(d, "ch1", st);
        CHECK_STREQ(st, "up");
        CHECK(daemons_restart(d, rm1, NULL) == 0);
        daemons_rm_state(d, "rm1", st);
        CHECK_STREQ(st, "up");
        /* its old copy holds no lease: fenced, and the VM runs there again only when started */
        CHECK(daemons_vm_consistent(d, "lost", daemons_now_ms() + 10000, NULL));
        CHECK(daemons_vm_to_active(d, "lost", NULL));
        CHECK(daemons_vm_consistent(d, "lost", daemons_now_ms() + 10000, NULL));
}

int main(void) {
        daemons_t d;
        daemons_init(&d, NULL);
        int64_t t0 = daemons_now_ms();
        CHECK(daemons_start_cluster(&d) == 0);
        CHECK(daemons_node_start(&d, 2, "ch2", "chamber", NULL) == 0);
        rm1 = &d.nodes[0];
        ch1 = &d.nodes[1];
        ch2 = &d.nodes[2];
        if (tap_failed == 0)
                test_protocol(&d);
        if (tap_failed == 0)
                test_node_killed(&d);
        if (tap_failed == 0)
                test_migrate(&d);
        if (tap_failed == 0)
                test_crash_points(&d);
        if (tap_failed == 0)
                test_vm_crash(&d);
        if (tap_failed == 0)
                test_disk_reuse(&d);
        if (tap_failed == 0)
                test_lost_record(&d);
        if (tap_failed == 0)
                test_node_dead(&d);
        if (tap_failed == 0)
                test_prestage_cap(&d);
        fprintf(stderr, "test-node: %lld ms\n", (long long)(daemons_now_ms() - t0));
        daemons_done(&d, tap_failed > 0);
        return tap_finish();
}
