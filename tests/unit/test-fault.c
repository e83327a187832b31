/* Fault injection under real daemons (vmatrix-test, fake VMM driver; daemons.c), as SQLite's I/O
 * tests do it. For each site and daemon, for N = 1, 2, ...: a fresh VM is booted on ch1 with a
 * RAM and a disk mark; the daemon is restarted with VMATRIX_FAULT=SITE:N (src/base/fault.h) and
 * the case's operations run (hibernate and activate; or stop, boot and hibernate, where the
 * stop's clean-up overlaps the next operations); then, right away and again once the daemon runs
 * without the fault,
 *   - the operations have ended (done or failed, never left running),
 *   - the cluster agrees on the VM (daemons_vm_consistent: a legal state, one RM runs it, the
 *     Nest holds its bundle, versions),
 *   - a retry brings it to active, with its disk mark, and (hibernate and activate) with its
 *     boot id and RAM mark: one failed call never costs the guest.
 * The loop ends when the N-th call no longer happens in the run (no "fault injected" in the
 * daemon's log), or at VMATRIX_FAULT_MAX (default 40). VMATRIX_FAULT_ONLY=DAEMON:SITE[:N] runs
 * the loops of one daemon and site (from N), to reproduce a failure; VMATRIX_TEST_KEEP=1 keeps the
 * daemons' files; VMATRIX_FAULT_GO_ON=1 goes on after a failure. */
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

/* Runs action; false when its op is still running after 30 s. A refusal (the VM is not in a
 * state for it, or the store failed to take the intent) has ended too. */
static bool action_ends(daemons_t *d, const char *vm, const char *action) {
        char op[64], st[16];
        long status = daemons_vm_action(d, vm, action, NULL, op);
        if (status != 202 || !*op)
                return true;
        daemons_op_wait(d, op, daemons_now_ms() + 30000, st);
        if (strcmp(st, "running") == 0)
                fprintf(stderr, "%s %s: op %s still running after 30 s\n", action, vm, op);
        return strcmp(st, "running") != 0;
}

/* What a loop runs: the daemon and site of the fault, the operations (comma-separated), and
 * whether the guest must stay warm through them (no stop among them). */
typedef struct fault_case {
        daemon_t *victim;
        const char *site;
        const char *ops;
        bool warm;
} fault_case_t;

/* One run with SITE:n on the case's victim. Returns whether the fault fired. */
static bool fault_run(daemons_t *d, const fault_case_t *c, int n) {
        daemon_t *victim = c->victim;
        const char *site = c->site;
        daemon_t *ch1 = daemons_node(d, "ch1"), *rm1 = daemons_node(d, "rm1");
        char vm[32], boot_id[32];
        snprintf(vm, sizeof vm, "f%d", n);
        if (daemons_vm_create(d, vm) < 0 || !daemons_vm_do_on(d, vm, "boot", "ch1", "loading")) {
                CHECK(!"the VM of the run starts");
                return false;
        }
        daemons_boot_id(ch1, vm, boot_id);
        CHECK(daemons_ram_mark_set(ch1, vm, "m") == 0);
        CHECK(daemons_disk_mark_set(ch1, vm, "m") == 0);

        char env[64];
        snprintf(env, sizeof env, "VMATRIX_FAULT=%s:%d", site, n);
        const char *fault_env[] = { env, NULL };
        long from = file_len(victim->log);
        if (daemons_restart(d, victim, fault_env) == 0) {
                char ops[128];
                snprintf(ops, sizeof ops, "%s", c->ops);
                for (char *save = NULL, *a = strtok_r(ops, ",", &save); a; a = strtok_r(NULL, ",", &save))
                        CHECK(action_ends(d, vm, a));
        } else {
                fprintf(stderr, "%s: %s did not start (or its RMs did not report)\n", env, victim->name);
        }
        bool hit = log_has_fault(victim->log, from);
        /* the fault is spent (it fails one call): the daemons that lived through it agree on
         * the VM by themselves, without a restart */
        char vs[32];
        if (!daemons_vm_consistent(d, vm, daemons_now_ms() + 10000, vs)) {
                fprintf(stderr, "%s on %s: inconsistent after the fault, before any restart\n", env, victim->name);
                CHECK(!"consistent after the fault");
        }

        /* without the fault: the cluster agrees, and a retry works with the same guest */
        CHECK(daemons_restart(d, victim, NULL) == 0);
        CHECK(daemons_vm_consistent(d, vm, daemons_now_ms() + 10000, vs));
        bool cold = false;
        CHECK(daemons_vm_to_active(d, vm, &cold));
        CHECK(daemons_vm_consistent(d, vm, daemons_now_ms() + 10000, NULL));
        char now[32], ram[32], disk[32];
        daemons_boot_id(rm1, vm, now);
        daemons_ram_mark(rm1, vm, ram);
        daemons_disk_mark(rm1, vm, disk);
        CHECK_STREQ(disk, "m");
        /* one failed call must not cost the guest: the VM is where it was or where it went */
        CHECK(!c->warm || !cold);
        if (c->warm && !cold) {
                CHECK_STREQ(now, boot_id);
                CHECK_STREQ(ram, "m");
        }
        if (tap_failed > 0 || cold)
                fprintf(stderr, "%s on %s: %s after the fault (%s)%s\n", env, victim->name, vs,
                        hit ? "fired" : "not reached", cold ? ", started cold from its disk" : "");
        /* rm1 free for the next run */
        CHECK(daemons_vm_do(d, vm, "stop", "stored"));
        CHECK(daemons_vm_do(d, vm, "delete", NULL));
        return hit;
}

/* VMATRIX_FAULT_GO_ON=1: the loops go on after a failed check, to see every failing case. */
static bool go_on(void) { return tap_failed == 0 || getenv("VMATRIX_FAULT_GO_ON"); }

/* The loop over N from first for a case; returns the number of runs the fault fired in. */
static int fault_site(daemons_t *d, const fault_case_t *c, int first, int max) {
        int64_t t0 = daemons_now_ms();
        int fired = 0;
        for (int n = first; n <= max && go_on(); n++) {
                if (!fault_run(d, c, n))
                        break;
                fired++;
        }
        fprintf(stderr, "%s on %s (%s): the fault fired in %d runs (%lld ms)\n", c->site, c->victim->name, c->ops,
                fired, (long long)(daemons_now_ms() - t0));
        return fired;
}

int main(void) {
        daemons_t d;
        daemons_init(&d, NULL);
        int64_t t0 = daemons_now_ms();
        const char *env_max = getenv("VMATRIX_FAULT_MAX");
        int max = env_max ? atoi(env_max) : 40;
        CHECK(daemons_start_cluster(&d) == 0);
        /* the Oracle's store, its calls to the nodes and its files (the Nest's vm.json); the
         * chamber's files and calls while it saves into the Nest; the production RM's while it
         * starts the VM from there; and the Oracle's calls while a stop's clean-up (the node's
         * delete, then the Nest's prune) is delayed into the next operations */
        const char *warm = "hibernate,activate", *after_stop = "stop,boot,hibernate";
        const fault_case_t cases[] = {
                { &d.oracle, "store-write", warm, true },      { &d.oracle, "http-call", warm, true },
                { &d.oracle, "http-reply", warm, true },       { &d.oracle, "file-write", warm, true },
                { &d.nodes[1], "file-write", warm, true },     { &d.nodes[1], "http-call", warm, true },
                { &d.nodes[1], "http-reply", warm, true },     { &d.nodes[0], "file-write", warm, true },
                { &d.nodes[0], "http-call", warm, true },      { &d.nodes[0], "http-reply", warm, true },
                { &d.oracle, "http-call", after_stop, false }, { &d.oracle, "http-reply", after_stop, false },
        };
        const char *only = getenv("VMATRIX_FAULT_ONLY");
        for (size_t i = 0; i < sizeof cases / sizeof *cases && go_on(); i++) {
                char name[64];
                snprintf(name, sizeof name, "%s:%s", cases[i].victim->name, cases[i].site);
                size_t len = strlen(name);
                if (only && (strncmp(only, name, len) != 0 || (only[len] != 0 && only[len] != ':')))
                        continue;
                int first = only && only[len] == ':' ? atoi(only + len + 1) : 1;
                CHECK(fault_site(&d, &cases[i], first > 0 ? first : 1, max) > 0);
        }
        fprintf(stderr, "test-fault: %lld ms\n", (long long)(daemons_now_ms() - t0));
        const char *keep = getenv("VMATRIX_TEST_KEEP");
        daemons_done(&d, tap_failed > 0 || (keep && strcmp(keep, "1") == 0));
        return tap_finish();
}
