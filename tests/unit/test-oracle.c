/* Daemon tests of the Oracle: a real Oracle and two real nodes (rm1 production, ch1 chamber)
 * of vmatrix-test on the fake VMM driver, driven through the HTTP API (daemons.c). Covers a
 * VM's whole lifecycle and an Oracle killed with SIGKILL in the middle of an operation. */
#include "base/macro.h"
#include "daemons.h"
#include "tap.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A state a VM may rest in (not a transition; model/lifecycle.c). */
/* create, boot, suspend, resume, hibernate, activate, suspend, resume, stop, delete: each op
 * ends done in the state README gives; the guest survives hibernate and activate. */
static void test_lifecycle(daemons_t *d) {
        CHECK(daemons_vm_create(d, "life") == 0);
        char st[32], rm[32];
        daemons_vm_state(d, "life", st, NULL);
        CHECK_STREQ(st, "stored");
        CHECK(daemons_vm_do(d, "life", "boot", "loading"));
        daemons_vm_state(d, "life", st, rm);
        CHECK_STREQ(rm, "ch1");
        char boot_id[32], after[32];
        daemons_boot_id(&d->nodes[1], "life", boot_id);
        CHECK(*boot_id);
        CHECK(daemons_vm_do(d, "life", "suspend", "suspended"));
        CHECK(daemons_vm_do(d, "life", "resume", "loading"));
        CHECK(daemons_vm_do(d, "life", "hibernate", "stored"));
        CHECK(daemons_vm_do(d, "life", "activate", "active"));
        daemons_vm_state(d, "life", st, rm);
        CHECK_STREQ(rm, "rm1");
        daemons_boot_id(&d->nodes[0], "life", after);
        CHECK_STREQ(after, boot_id); /* restored, not booted afresh */
        /* a VM on a mapped snapshot is saved by writing its memory back (node-save.c) */
        CHECK(daemons_vm_do(d, "life", "suspend", "suspended"));
        CHECK(daemons_vm_do(d, "life", "resume", "active"));
        daemons_boot_id(&d->nodes[0], "life", after);
        CHECK_STREQ(after, boot_id);
        /* suspended on the only production RM, an activation resumes it there (the VM does
         * not count against its own RM) */
        CHECK(daemons_vm_do(d, "life", "suspend", "suspended"));
        CHECK(daemons_vm_do(d, "life", "activate", "active"));
        daemons_vm_state(d, "life", st, rm);
        CHECK_STREQ(rm, "rm1");
        daemons_boot_id(&d->nodes[0], "life", after);
        CHECK_STREQ(after, boot_id);
        /* an illegal transition is refused, not queued */
        char op[64];
        CHECK(daemons_vm_action(d, "life", "delete", NULL, op) == 409);
        CHECK(daemons_vm_do(d, "life", "stop", "stored"));
        CHECK(daemons_vm_do(d, "life", "delete", NULL));
        char url[256];
        snprintf(url, sizeof url, "%s/v1/vms/life", d->oracle.url);
        int64_t deadline = daemons_now_ms() + 10000;
        long status = 0;
        while ((status = daemons_call("GET", url, NULL, NULL)) != 404 && daemons_now_ms() < deadline)
                daemons_sleep_ms(100);
        CHECK(status == 404);
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
        snprintf(url, sizeof url, "%s/v1/ops/%s/heartbeat", d->oracle.url, op);
        _cleanup_(json_decrefp) json_t *beat = json_pack("{s:i,s:i}", "done", 5, "total", 10);
        CHECK(daemons_call("POST", url, beat, NULL) == 409);
        snprintf(url, sizeof url, "%s/v1/ops/%s", d->oracle.url, op);
        _cleanup_(json_decrefp) json_t *got = NULL;
        CHECK(daemons_call("GET", url, NULL, &got) == 200);
        CHECK_STREQ(json_string_value(json_object_get(got, "state")), "done");
        CHECK(daemons_vm_do(d, "late", "stop", "stored"));
}

/* A stop whose upload fails leaves the VM failed on its RM (the node has shut it down), not
 * running where nothing answers; stopping it again once the upload works stores it. The disk
 * is made unreadable by putting a directory in its place. */
static void test_stop_upload_fails(daemons_t *d) {
        CHECK(daemons_vm_create(d, "upl") == 0);
        CHECK(daemons_vm_do(d, "upl", "activate", "active"));
        char disk[700], aside[720];
        snprintf(disk, sizeof disk, "%s/vms/upl/disk.qcow2", d->nodes[0].data);
        snprintf(aside, sizeof aside, "%s.aside", disk);
        CHECK(rename(disk, aside) == 0 && mkdir(disk, 0755) == 0);
        char op[64], st[32], rm[32];
        CHECK(daemons_vm_action(d, "upl", "stop", NULL, op) == 202);
        daemons_op_wait(d, op, daemons_now_ms() + 20000, st);
        CHECK_STREQ(st, "failed");
        daemons_vm_state(d, "upl", st, rm);
        CHECK_STREQ(st, "failed");
        CHECK_STREQ(rm, "rm1");
        CHECK(rmdir(disk) == 0 && rename(aside, disk) == 0);
        CHECK(daemons_vm_do(d, "upl", "stop", "stored"));
        CHECK(daemons_vm_do(d, "upl", "delete", NULL));
}

/* SIGKILL of the Oracle just after it accepted an operation, then a restart on the same data:
 * the op ends (done or failed), never stays running; the VM rests in a legal state; the next
 * operation works and the guest is still the same one. */
static void test_oracle_killed(daemons_t *d) {
        const char *actions[] = { "hibernate", "activate", "suspend" };
        CHECK(daemons_vm_create(d, "k9") == 0);
        CHECK(daemons_vm_do(d, "k9", "boot", "loading"));
        char boot_id[32];
        daemons_boot_id(&d->nodes[1], "k9", boot_id);
        for (size_t i = 0; i < sizeof actions / sizeof *actions; i++) {
                char op[64], st[16], vs[32];
                CHECK(daemons_vm_action(d, "k9", actions[i], NULL, op) == 202 && *op);
                daemons_sleep_ms(30 * (int)i); /* a little further into the op each time */
                daemons_stop(&d->oracle, SIGKILL);
                CHECK(daemons_restart(d, &d->oracle, NULL) == 0);
                daemons_op_wait(d, op, daemons_now_ms() + 30000, st);
                CHECK(strcmp(st, "done") == 0 || strcmp(st, "failed") == 0);
                CHECK(daemons_vm_wait_stable(d, "k9", daemons_now_ms() + 20000, vs));
                if (strcmp(st, "done") != 0) {
                        fprintf(stderr, "%s after an Oracle kill: op %s, vm %s; retrying\n", actions[i], st, vs);
                        CHECK(daemons_vm_do(d, "k9", actions[i], NULL));
                }
        }
        char vs[32], rm[32], after[32];
        daemons_vm_state(d, "k9", vs, rm);
        CHECK_STREQ(vs, "suspended");
        daemons_boot_id(strcmp(rm, "rm1") == 0 ? &d->nodes[0] : &d->nodes[1], "k9", after);
        CHECK(daemons_vm_do(d, "k9", "resume", "active"));
        daemons_boot_id(strcmp(rm, "rm1") == 0 ? &d->nodes[0] : &d->nodes[1], "k9", after);
        CHECK_STREQ(after, boot_id);
}

int main(void) {
        daemons_t d;
        daemons_init(&d, NULL);
        int64_t t0 = daemons_now_ms();
        CHECK(daemons_start_cluster(&d) == 0);
        if (tap_failed == 0)
                test_lifecycle(&d);
        if (tap_failed == 0)
                test_late_op_heartbeat(&d);
        if (tap_failed == 0)
                test_stop_upload_fails(&d);
        if (tap_failed == 0)
                test_oracle_killed(&d);
        fprintf(stderr, "test-oracle: %lld ms\n", (long long)(daemons_now_ms() - t0));
        daemons_done(&d, tap_failed > 0);
        return tap_finish();
}
