/* Memory reclaim with the balloon (docs/memory.md, "overcommit"): a VM whose QEMU has used
 * under IDLE_CPU_PERCENT of a CPU for the node's --reclaim-idle seconds gets its balloon
 * inflated so that it keeps a quarter of its RAM (at least RECLAIM_FLOOR_MIB); the pages it
 * gives up are discarded on the host (holes in its memory file). As soon as it uses more
 * than BUSY_CPU_PERCENT again it gets all its RAM back. A target set through the API
 * (POST /v1/vms/NAME/balloon) takes precedence until it is set back to the full size.
 *
 * Only VMs that own their memory file are ballooned: QEMU 7.2 discards ballooned pages of a
 * private file mapping by punching holes into the file itself, which for an activated VM or a
 * clone is the snapshot other VMs map. Those VMs own their RAM after their next save. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-registry.h"
#include "node/node-vm.h"

#define IDLE_CPU_PERCENT 10 /* an idle guest under TCG still uses 3-8% (timer ticks, the agent) */
#define BUSY_CPU_PERCENT 40
#define RECLAIM_FLOOR_MIB 64

static int64_t memory_mib_of(const node_vm_t *vm) {
        bundle_config_t bc;
        return bundle_config_from_json(vm->config, &bc) < 0 ? 0 : bc.memory_mib;
}

static int balloon_to(node_vm_t *vm, int64_t mib, const char *why) {
        int r = vmm_balloon_set(vm->vmm, (uint64_t)mib << 20);
        if (r < 0)
                log_warn("vm %s: balloon to %lld MiB failed: %s", vm->name, (long long)mib, strerror(-r));
        else {
                vm->balloon_target_mib = mib;
                log_info("vm %s: balloon target %lld MiB (%s)", vm->name, (long long)mib, why);
        }
        return r;
}

/* One VM, its lock held: sample its CPU and move its balloon if it became idle or busy. */
static void reclaim_one(node_t *n, node_vm_t *vm, int64_t now) {
        vmm_stats_t st;
        int64_t full = memory_mib_of(vm);
        if (!vm->vmm || !streq(vm->state, "running") || vm->memory_base || full <= 0 ||
            vmm_stats(vm->vmm, &st) < 0)
                return;
        int64_t prev_ns = vm->cpu_sample_ns, prev_ms = vm->cpu_sample_ms;
        vm->cpu_sample_ns = (int64_t)st.cpu_ns;
        vm->cpu_sample_ms = now;
        if (prev_ms <= 0 || now <= prev_ms)
                return;
        int64_t percent = ((int64_t)st.cpu_ns - prev_ns) / 10000 / (now - prev_ms);
        log_debug("vm %s: %lld%% CPU", vm->name, (long long)percent);
        if (percent >= IDLE_CPU_PERCENT || vm->idle_since_ms <= 0)
                vm->idle_since_ms = percent >= IDLE_CPU_PERCENT ? 0 : now;
        if (vm->balloon_manual)
                return;
        bool reclaimed = vm->balloon_target_mib > 0 && vm->balloon_target_mib < full;
        int64_t keep = MAX(full / 4, (int64_t)RECLAIM_FLOOR_MIB);
        if (!reclaimed && keep < full && vm->idle_since_ms > 0 && now - vm->idle_since_ms >= n->reclaim_idle_ms)
                balloon_to(vm, keep, "idle");
        else if (reclaimed && percent > BUSY_CPU_PERCENT)
                balloon_to(vm, full, "busy again");
}

static void balloon_tick(node_t *n) {
        if (n->reclaim_idle_ms <= 0)
                return;
        int64_t now = time_now_ms();
        size_t count = 0;
        _cleanup_(node_registry_snapshot_freep) node_vm_t **vms = node_registry_snapshot(n, &count);
        for (size_t i = 0; i < count; i++) {
                _cleanup_(node_vm_unlockp) node_vm_t *vm = node_vm_trylock(vms[i]);
                if (vm) /* else busy with a command */
                        reclaim_one(n, vm, now);
        }
}

int node_balloon_command(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg) {
        bool t = cmd->balloon.has_target;
        int64_t mib = cmd->balloon.target_mib;
        _cleanup_(node_registry_releasep) node_vm_t *vm = node_registry_find(n, name);
        if (!vm) {
                *ret_msg = xasprintf("vm \"%s\" is not on this RM", name);
                return -ENOENT;
        }
        _cleanup_(node_vm_unlockp) _unused_ node_vm_t *locked = node_vm_lock(vm);
        int64_t full = memory_mib_of(vm);
        int r = 0;
        if (t && (mib < RECLAIM_FLOOR_MIB || mib > full)) {
                *ret_msg = xasprintf("target_mib must be an integer from %d to %lld (the VM's RAM)", RECLAIM_FLOOR_MIB,
                                     (long long)full);
                r = -ERANGE;
        } else if (!vm->vmm || !streq(vm->state, "running")) {
                *ret_msg = xasprintf("vm \"%s\" is %s on this RM: only a running VM has a balloon", name, vm->state);
                r = -EPERM;
        } else if (t && vm->memory_base) {
                *ret_msg = xasprintf("vm \"%s\" runs on a snapshot mapped copy-on-write: it can be ballooned once its "
                                     "next save gave it a memory file of its own",
                                     name);
                r = -EPERM;
        }
        if (r >= 0 && t) {
                r = balloon_to(vm, mib, "asked for");
                vm->balloon_manual = r >= 0 && mib < full;
                if (r < 0)
                        *ret_msg = xasprintf("vm \"%s\": the balloon did not take the target: %s", name, strerror(-r));
        }
        uint64_t actual = 0;
        if (r >= 0 && (r = vmm_balloon_get(vm->vmm, &actual)) < 0)
                *ret_msg = xasprintf("vm \"%s\": cannot read its balloon: %s", name, strerror(-r));
        if (r >= 0)
                *ret = node_proto_balloon_answer(full, vm->balloon_target_mib > 0 ? vm->balloon_target_mib : full,
                                                 (int64_t)(actual >> 20), vm->memory_base == NULL);
        return r;
}

void *node_balloon_thread(void *arg) {
        node_t *n = arg;
        while (!n->stopping) {
                balloon_tick(n);
                time_sleep_ms(1000);
        }
        return NULL;
}
