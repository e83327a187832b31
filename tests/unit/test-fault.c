/* Fault injection under real daemons (vmatrix-test, fake VMM driver; daemons.c), as SQLite's
 * I/O tests do it: for N = 1, 2, ... a daemon runs with VMATRIX_FAULT=SITE:N (src/base/fault.h)
 * while a VM is hibernated and activated; each time the operations end (never stuck running),
 * the VM rests in a legal state, and once the daemon runs without the fault the VM activates and
 * is the same guest. The loop stops when the N-th call no longer happens (no "fault injected"
 * in the daemon's log) or at VMATRIX_FAULT_MAX (default 40) per site. */
#include "daemons.h"
#include "tap.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static long file_len(const char *path) {
        struct stat st;
        return stat(path, &st) < 0 ? 0 : (long)st.st_size;
}

/* Whether "fault injected" appears in path after byte from. */
static bool log_has_fault(const char *path, long from) {
        FILE *f = fopen(path, "r");
        if (!f)
                return false;
        fseek(f, from, SEEK_SET);
        char line[1024];
        bool hit = false;
        while (!hit && fgets(line, sizeof line, f))
                hit = strstr(line, "fault injected") != NULL;
        fclose(f);
        return hit;
}

/* Runs action (no check of its outcome beyond: it ends); false when the op stayed running. */
static bool action_ends(daemons_t *d, const char *vm, const char *action) {
        char op[64], st[16];
        long status = daemons_vm_action(d, vm, action, NULL, op);
        if (status != 202 || !*op)
                return true; /* refused (the VM is not in a state for it, or the store failed): ended */
        daemons_op_wait(d, op, daemons_now_ms() + 30000, st);
        return strcmp(st, "running") != 0;
}

/* One site on one daemon: returns the number of runs in which the fault fired. */
static int fault_site(daemons_t *d, daemon_t *victim, const char *site, const char *vm, int max) {
        CHECK(daemons_vm_create(d, vm) == 0);
        CHECK(daemons_vm_do(d, vm, "boot", "loading"));
        char boot_id[32];
        daemons_boot_id(&d->nodes[1], vm, boot_id);
        int fired = 0;
        for (int n = 1; n <= max && tap_failed == 0; n++) {
                char env[64];
                snprintf(env, sizeof env, "VMATRIX_FAULT=%s:%d", site, n);
                const char *fault_env[] = { env, NULL };
                long from = file_len(victim->log);
                if (daemons_restart(d, victim, fault_env) == 0) {
                        CHECK(action_ends(d, vm, "hibernate"));
                        CHECK(action_ends(d, vm, "activate"));
                }
                bool hit = log_has_fault(victim->log, from);
                /* without the fault: the VM is legal, activates, and is the same guest */
                CHECK(daemons_restart(d, victim, NULL) == 0);
                char vs[32];
                CHECK(daemons_vm_wait_stable(d, vm, daemons_now_ms() + 20000, vs));
                /* suspended on rm1 resumes there (an activate would look for another idle
                 * production RM); suspended or loading on ch1 goes through the Nest */
                if (strcmp(vs, "suspended") == 0) {
                        CHECK(daemons_vm_do(d, vm, "resume", NULL));
                        daemons_vm_state(d, vm, vs, NULL);
                }
                if (strcmp(vs, "loading") == 0) {
                        CHECK(daemons_vm_do(d, vm, "hibernate", "stored"));
                        strcpy(vs, "stored");
                }
                if (strcmp(vs, "active") != 0)
                        CHECK(daemons_vm_do(d, vm, "activate", "active"));
                char after[32];
                daemons_boot_id(&d->nodes[0], vm, after);
                CHECK_STREQ(after, boot_id);
                /* ready for the next run: suspended, where hibernate applies */
                CHECK(daemons_vm_do(d, vm, "suspend", "suspended"));
                if (tap_failed > 0)
                        fprintf(stderr, "FAIL with %s (%s)\n", env, victim->name);
                if (!hit)
                        break;
                fired++;
        }
        CHECK(daemons_vm_do(d, vm, "stop", "stored")); /* rm1 free for the next site */
        fprintf(stderr, "%s on %s: the fault fired in %d runs\n", site, victim->name, fired);
        return fired;
}

int main(void) {
        daemons_t d;
        daemons_init(&d, NULL);
        int64_t t0 = daemons_now_ms();
        const char *env_max = getenv("VMATRIX_FAULT_MAX");
        int max = env_max ? atoi(env_max) : 40;
        CHECK(daemons_start_cluster(&d) == 0);
        if (tap_failed == 0)
                CHECK(fault_site(&d, &d.oracle, "store-write", "f1", max) > 0);
        if (tap_failed == 0)
                CHECK(fault_site(&d, &d.oracle, "http-call", "f2", max) > 0);
        if (tap_failed == 0)
                CHECK(fault_site(&d, &d.nodes[1], "file-write", "f3", max) > 0);
        if (tap_failed == 0)
                CHECK(fault_site(&d, &d.nodes[0], "http-call", "f4", max) > 0);
        fprintf(stderr, "test-fault: %lld ms\n", (long long)(daemons_now_ms() - t0));
        daemons_done(&d, tap_failed > 0);
        return tap_finish();
}
