/* Crash points under real daemons (vmatrix-test, fake VMM driver; daemons.c): a daemon started
 * with VMATRIX_CRASH_AT=NAME kills itself there during an operation; restarted without it, the
 * operation ends (done or rolled back), the VM rests in a legal state, a retry succeeds and the
 * guest is the one that was saved. The other crash points are exercised by tests/system and
 * test-nest; tests/unit/crash-points.sh checks that every one is named by some test. */
#include "daemons.h"
#include "tap.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* vm booted on ch1; victim (the Oracle or a node) restarted with the crash point at, then
 * action (hibernate) run: the victim must die there. */
static void crash_case(daemons_t *d, const char *vm, daemon_t *victim, const char *at) {
        fprintf(stderr, "crash point %s (%s)\n", at, victim->name);
        CHECK(daemons_vm_create(d, vm) == 0);
        CHECK(daemons_vm_do(d, vm, "boot", "loading"));
        char boot_id[32], after[32];
        daemons_boot_id(&d->nodes[1], vm, boot_id);
        char env[96];
        snprintf(env, sizeof env, "VMATRIX_CRASH_AT=%s", at);
        const char *crash_env[] = { env, NULL };
        CHECK(daemons_restart(d, victim, crash_env) == 0);
        char op[64], st[16], vs[32];
        CHECK(daemons_vm_action(d, vm, "hibernate", NULL, op) == 202 && *op);
        bool crashed = daemons_exited(victim, 30000);
        CHECK(crashed);
        if (!crashed)
                fprintf(stderr, "%s never reached crash point %s\n", victim->name, at);
        CHECK(daemons_restart(d, victim, NULL) == 0);
        daemons_op_wait(d, op, daemons_now_ms() + 40000, st);
        CHECK(strcmp(st, "done") == 0 || strcmp(st, "failed") == 0);
        CHECK(daemons_vm_wait_stable(d, vm, daemons_now_ms() + 20000, vs));
        fprintf(stderr, "  op %s, vm %s\n", st, vs);
        bool was_failed = strcmp(vs, "failed") == 0;
        /* the retry: hibernate again where it is still legal, then activate */
        if (strcmp(vs, "loading") == 0 || strcmp(vs, "suspended") == 0)
                CHECK(daemons_vm_do(d, vm, "hibernate", "stored"));
        CHECK(daemons_vm_do(d, vm, "activate", "active"));
        daemons_boot_id(&d->nodes[0], vm, after);
        if (!was_failed)
                CHECK_STREQ(after, boot_id);
        CHECK(daemons_vm_do(d, vm, "stop", "stored"));
}

int main(void) {
        daemons_t d;
        daemons_init(&d, NULL);
        int64_t t0 = daemons_now_ms();
        CHECK(daemons_start_cluster(&d) == 0);
        if (tap_failed == 0)
                crash_case(&d, "c1", &d.oracle, "oracle-after-save");
        if (tap_failed == 0)
                crash_case(&d, "c2", &d.nodes[1], "node-save-after-save");
        if (tap_failed == 0)
                crash_case(&d, "c3", &d.nodes[1], "node-save-after-upload");
        /* the node's chunk cache publishes the staged files of the hibernate in one batch */
        if (tap_failed == 0)
                crash_case(&d, "c4", &d.nodes[1], "nest-batch-files");
        fprintf(stderr, "test-crash: %lld ms\n", (long long)(daemons_now_ms() - t0));
        daemons_done(&d, tap_failed > 0);
        return tap_finish();
}
