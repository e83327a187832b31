/* Supervision of the node's VMs: at start the QEMU processes a previous agent left are
 * re-attached; while the agent runs, node_supervise_check (the loop in node.c) notices a QEMU
 * that died or a guest that powered off; the heartbeat fences VMs the Oracle no longer places
 * here and describes the others. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-launch.h"
#include "node/node-registry.h"
#include "node/node-supervise.h"
#include "node/node-vm.h"

/* Longer than QEMU_STATUS_TIMEOUT_MS, well under the Oracle's 5 s to declare an RM down. */
#define FENCE_LOCK_WAIT_MS 2500

bool node_supervise_fence(node_t *n, node_vm_t *vm, int64_t since_ms, const char *why) {
        /* judged and killed under one hold of the lock: a command that takes the VM meanwhile
         * (a run whose lease the Oracle wrote after answering) must not be killed for it */
        /* a short wait: the supervisor may hold the lock for one status query of a QEMU whose
         * monitor hangs (the very case a fence is for); a command holds it longer and is judged
         * again at the next heartbeat */
        _cleanup_(node_vm_unlockp) node_vm_t *locked = node_vm_timedlock(vm, FENCE_LOCK_WAIT_MS);
        if (!locked)
                return false;
        bool fence = !streq(vm->state, "deleted") && !streq(vm->state, "new") && vm->cmd_time_ms < since_ms;
        if (fence) {
                log_warn("vm %s v%lld: %s: killing and removing the local copy", vm->name, (long long)vm->version, why);
                node_registry_forget(n, vm);
        }
        return fence;
}

json_t *node_supervise_describe(node_t *n, node_vm_t *vm, bool query) {
        bool stats = vm->vmm && (query ? vmm_stats(vm->vmm, &vm->stats) >= 0 : vm->stats_valid);
        if (query)
                vm->stats_valid = stats;
        return node_proto_describe(vm->name, vm->version, vm->state, vm->pid, vm->address, stats ? &vm->stats : NULL);
}

/* Re-attaches one adopted VM to its QEMU, if it had one. vm->lock held. */
static void adopt_one(node_t *n, node_vm_t *vm) {
        /* the two ends of a live migration: re-attached, but never continued here (only
         * the Oracle decides where the guest runs on) */
        bool live_end = streq(vm->state, "incoming") || streq(vm->state, "migrated");
        if (live_end) {
                node_launch_t l = { 0 };
                _cleanup_free_ char *msg = NULL;
                if (node_launch_prepare(n, vm, &l, &msg) < 0 || vmm_attach(n->driver, &l.vc, 0, &vm->vmm) < 0)
                        node_vm_state_set(vm, "crashed");
                node_launch_clear(&l);
                node_registry_persist(n, vm);
        } else if (streq(vm->state, "running") || streq(vm->state, "paused")) {
                node_launch_t l = { 0 };
                _cleanup_free_ char *msg = NULL;
                int r = node_launch_prepare(n, vm, &l, &msg);
                if (r >= 0)
                        r = vmm_attach(n->driver, &l.vc, 0, &vm->vmm);
                node_launch_clear(&l);
                vmm_status_t st = { 0 };
                if (r >= 0 && vmm_status(vm->vmm, &st) >= 0 && st.state == VMM_RUN_PAUSED) {
                        /* the agent died between saving and finishing the command: the
                         * Oracle rolled that back, so the VM runs on where it was */
                        log_info("vm %s: found paused after an interrupted command: continuing it", vm->name);
                        vmm_cont(vm->vmm, 0);
                }
                if (r >= 0) {
                        json_decref(node_vm_started(n, vm));
                        log_info("vm %s v%lld: re-attached to pid %lld", vm->name, (long long)vm->version,
                                 (long long)vm->pid);
                } else {
                        node_vm_state_set(vm, "crashed");
                        log_warn("vm %s v%lld: its QEMU is gone (%s)", vm->name, (long long)vm->version,
                                 msg ? msg : strerror(-r));
                }
                node_registry_persist(n, vm);
        }
}

void node_supervise_adopt(node_t *n) {
        node_registry_load(n);
        size_t count = 0;
        _cleanup_(node_registry_snapshot_freep) node_vm_t **vms = node_registry_snapshot(n, &count);
        for (size_t i = 0; i < count; i++) {
                _cleanup_(node_vm_unlockp) node_vm_t *vm = node_vm_lock(vms[i]);
                adopt_one(n, vm);
        }
}

bool node_supervise_check(node_t *n) {
        bool changed = false;
        size_t count = 0;
        _cleanup_(node_registry_snapshot_freep) node_vm_t **vms = node_registry_snapshot(n, &count);
        for (size_t i = 0; i < count; i++) {
                _cleanup_(node_vm_unlockp) node_vm_t *vm = node_vm_trylock(vms[i]);
                if (!vm)
                        continue;
                vmm_status_t st;
                int r = vm->vmm ? vmm_status(vm->vmm, &st) : -ENOENT;
                if (r >= 0 && st.state == VMM_RUN_GONE) {
                        log_warn("vm %s v%lld: QEMU pid %lld exited unexpectedly", vm->name, (long long)vm->version,
                                 (long long)vm->pid);
                        node_vm_vmm_release(vm, false);
                        node_vm_state_set(vm, "crashed");
                        node_registry_persist(n, vm);
                        changed = true;
                } else if (r >= 0 && st.state == VMM_RUN_SHUTDOWN) {
                        /* the guest powered itself off: the process is of no further use */
                        log_warn("vm %s v%lld: guest powered off", vm->name, (long long)vm->version);
                        node_vm_vmm_release(vm, true);
                        node_vm_state_set(vm, "crashed");
                        node_registry_persist(n, vm);
                        changed = true;
                }
        }
        return changed;
}
