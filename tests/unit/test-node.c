/* Daemon tests of the node: a real Oracle and real nodes of vmatrix-test on the fake VMM
 * driver (daemons.c). The node's command protocol over HTTP (stale versions refused, repeats
 * answered from the record), a node killed and restarted, a node that stays dead, and a node
 * that lost a VM's record. */
#include "daemons.h"
#include "tap.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The node's view of vm: its version (-1 when unknown) and state (32 bytes). */
static int64_t node_vm(const daemon_t *dm, const char *vm, char *ret_state) {
        char url[256];
        snprintf(url, sizeof url, "%s/v1/vms/%s", dm->url, vm);
        json_t *j = NULL;
        int64_t version = -1;
        *ret_state = 0;
        if (daemons_call("GET", url, NULL, &j) == 200) {
                version = json_integer_value(json_object_get(j, "version"));
                const char *st = json_string_value(json_object_get(j, "state"));
                snprintf(ret_state, 32, "%s", st ? st : "");
        }
        json_decref(j);
        return version;
}

/* POST a command to the node; the error code of a refusal into ret_code (32 bytes). */
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

/* A resume the Oracle completed, sent again with its version, is answered from the record
 * (a second real resume would be refused: the VM runs); an older version is stale. */
static void test_protocol(daemons_t *d) {
        daemon_t *ch = &d->nodes[1];
        CHECK(daemons_vm_create(d, "proto") == 0);
        CHECK(daemons_vm_do(d, "proto", "boot", "loading"));
        CHECK(daemons_vm_do(d, "proto", "suspend", "suspended"));
        CHECK(daemons_vm_do(d, "proto", "resume", "loading"));
        char st[32], code[32], boot_id[32], after[32];
        int64_t v = node_vm(ch, "proto", st);
        CHECK(v > 0);
        CHECK_STREQ(st, "running");
        daemons_boot_id(ch, "proto", boot_id);
        json_t *a = NULL, *b = NULL;
        CHECK(node_cmd(ch, "proto", "resume", json_pack("{s:I}", "version", (json_int_t)v), &a, code) == 200);
        CHECK(node_cmd(ch, "proto", "resume", json_pack("{s:I}", "version", (json_int_t)v), &b, code) == 200);
        CHECK(a && b && json_equal(a, b));
        json_decref(a);
        json_decref(b);
        daemons_boot_id(ch, "proto", after);
        CHECK_STREQ(after, boot_id);
        /* older than the lease: refused, and nothing changes */
        CHECK(node_cmd(ch, "proto", "save", json_pack("{s:I,s:b,s:I}", "version", (json_int_t)(v - 1), "upload", 0,
                                                      "new_version", (json_int_t)v),
                       NULL, code) == 409);
        CHECK_STREQ(code, "stale_version");
        CHECK(node_cmd(ch, "proto", "stop", json_pack("{s:I,s:I}", "version", (json_int_t)(v - 2), "new_version",
                                                      (json_int_t)(v - 1)),
                       NULL, code) == 409);
        CHECK_STREQ(code, "stale_version");
        CHECK(node_vm(ch, "proto", st) == v);
        CHECK_STREQ(st, "running");
        char vs[32];
        daemons_vm_state(d, "proto", vs, NULL);
        CHECK_STREQ(vs, "loading");
}

/* kill -9 of a node and a restart: it adopts its VMs and reports them again. */
static void test_node_killed(daemons_t *d) {
        daemon_t *ch = &d->nodes[1];
        char st[32], boot_id[32], after[32];
        daemons_boot_id(ch, "proto", boot_id);
        daemons_stop(ch, SIGKILL);
        CHECK(daemons_restart(d, ch, NULL) == 0);
        CHECK(node_vm(ch, "proto", st) > 0);
        CHECK_STREQ(st, "running");
        daemons_boot_id(ch, "proto", after);
        CHECK_STREQ(after, boot_id);
        /* the Oracle counts it on ch1 again and keeps it as it was */
        char url[256];
        snprintf(url, sizeof url, "%s/v1/rms", d->oracle.url);
        int64_t deadline = daemons_now_ms() + 10000;
        json_int_t vms = -1;
        do {
                json_t *j = NULL;
                if (daemons_call("GET", url, NULL, &j) == 200) {
                        size_t i;
                        json_t *r;
                        json_array_foreach(j, i, r)
                                if (strcmp(json_string_value(json_object_get(r, "name")) ?: "", "ch1") == 0)
                                        vms = json_integer_value(json_object_get(r, "vms"));
                }
                json_decref(j);
                if (vms >= 1)
                        break;
                daemons_sleep_ms(100);
        } while (daemons_now_ms() < deadline);
        CHECK(vms >= 1);
        char vs[32];
        daemons_vm_state(d, "proto", vs, NULL);
        CHECK_STREQ(vs, "loading");
        CHECK(daemons_vm_do(d, "proto", "suspend", "suspended"));
}

/* A node stopped, its record of a VM deleted, restarted: the VM is missing from its
 * heartbeats, and the Oracle marks it failed (oracle-rms.c, heartbeat_missing). */
static void test_lost_record(daemons_t *d) {
        daemon_t *rm = &d->nodes[0];
        CHECK(daemons_vm_create(d, "lost") == 0);
        CHECK(daemons_vm_do(d, "lost", "activate", "active"));
        daemons_stop(rm, SIGTERM);
        char path[700];
        snprintf(path, sizeof path, "%s/vms/lost/node-vm.json", rm->data);
        CHECK(unlink(path) == 0);
        CHECK(daemons_restart(d, rm, NULL) == 0);
        CHECK(daemons_vm_wait_state(d, "lost", "failed", daemons_now_ms() + 20000));
        /* failed is not the end: it activates again */
        CHECK(daemons_vm_do(d, "lost", "activate", "active"));
}

/* A node that stays dead: its RM is declared down after the liveness window. */
static void test_node_dead(daemons_t *d) {
        char st[16];
        daemons_rm_state(d, "rm1", st);
        CHECK_STREQ(st, "up");
        daemons_stop(&d->nodes[0], SIGKILL);
        int64_t deadline = daemons_now_ms() + 30000;
        do {
                daemons_rm_state(d, "rm1", st);
                if (strcmp(st, "down") == 0)
                        break;
                daemons_sleep_ms(200);
        } while (daemons_now_ms() < deadline);
        CHECK_STREQ(st, "down");
        /* its running VM is failed with it */
        CHECK(daemons_vm_wait_state(d, "lost", "failed", daemons_now_ms() + 10000));
        /* the other RM stays up */
        daemons_rm_state(d, "ch1", st);
        CHECK_STREQ(st, "up");
}

int main(void) {
        daemons_t d;
        daemons_init(&d, NULL);
        int64_t t0 = daemons_now_ms();
        CHECK(daemons_start_cluster(&d) == 0);
        if (tap_failed == 0)
                test_protocol(&d);
        if (tap_failed == 0)
                test_node_killed(&d);
        if (tap_failed == 0)
                test_lost_record(&d);
        if (tap_failed == 0)
                test_node_dead(&d);
        fprintf(stderr, "test-node: %lld ms\n", (long long)(daemons_now_ms() - t0));
        daemons_done(&d, tap_failed > 0);
        return tap_finish();
}
