/* The node's side of live migration (oracle-migrate-live.c runs the protocol): live-receive
 * starts a QEMU that waits for the VM's RAM and disk, live-send hands a running VM over to it,
 * live-finish continues the guest on the destination, and live-abort continues it again on the
 * origin after a hand-over the Oracle rolled back. Node states: "incoming" (destination,
 * waiting) and "migrated" (origin, paused for good after a completed send: it must never be
 * continued behind the Oracle's back, so an agent restart does not continue it either). */
#include <arpa/inet.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-command.h"
#include "node/node-launch.h"
#include "node/node-registry.h"
#include "node/node-vm.h"

#define LIVE_SEND_TIMEOUT_MS (9 * 60 * 1000)
#define LIVE_FINISH_TIMEOUT_MS 30000

int node_live_receive(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg) {
        int64_t version = 0;
        const json_t *config = json_object_get(cmd, "config"), *image = json_object_get(cmd, "image");
        bundle_config_t bc;
        int r = node_command_version(cmd, "version", "live-receive", &version, ret_msg);
        if (r >= 0 && (bundle_config_from_json(config, &bc) < 0 || !streq(bc.name, name) || !json_is_object(image))) {
                *ret_msg = xstrdup("live-receive needs version, config (the VM's vm.json) and image");
                r = -EINVAL;
        }
        if (r < 0)
                return r;
        _cleanup_(node_vm_unlockp) node_vm_t *vm = NULL;
        r = node_command_lock(n, name, "live-receive", version, NODE_COMMAND_CREATE, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        node_command_lease(vm, version);
        node_vm_vmm_release(vm, true);
        node_vm_stale_kill(n, name);
        node_vm_run_dir_reset(n, vm);
        json_decref(vm->config);
        vm->config = json_deep_copy(config);
        vm->fwd_port = 0;
        node_vm_memory_base_set(vm, NULL);
        node_vm_disk_base_set(vm, NULL);
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *mem = xasprintf("%s/memory", dir);
        (void)mkdir_p(dir, 0755);
        unlink(mem); /* RAM arrives from the origin into a file of its own */
        node_launch_t l = { 0 };
        nest_transfer_stats_t moved = { 0 };
        r = node_cache_image(n, image, ret_msg);
        if (r >= 0)
                r = node_launch_prepare(n, vm, &l, ret_msg);
        /* an empty overlay over the same backing as the origin's: the mirror fills it */
        if (r >= 0)
                r = node_launch_disk(n, vm, &l, NULL, &moved, NULL, ret_msg);
        vmm_live_endpoint_t ep = { 0 };
        if (r >= 0 && (r = vmm_live_receive(n->driver, &l.vc, n->host, 0, &ep, &vm->vmm)) < 0)
                *ret_msg = xasprintf("vm \"%s\": cannot start the incoming QEMU: %s (see %s/qemu.log)", name,
                                     node_vm_strerror(r), l.run_dir);
        node_launch_clear(&l);
        crash_point("node-live-receive-started");
        if (r < 0) {
                node_vm_state_set(vm, "stopped");
                node_registry_persist(n, vm);
                return r;
        }
        node_vm_state_set(vm, "incoming");
        json_t *result = json_pack("{s:{s:s,s:i,s:i}}", "endpoint", "host", ep.host, "migrate_port", ep.migrate_port,
                                   "nbd_port", ep.nbd_port);
        node_command_record(n, vm, "live-receive", version, result);
        log_info("vm %s v%lld: waiting for a live migration on %s (RAM :%d, disk :%d)", name, (long long)version,
                 ep.host, ep.migrate_port, ep.nbd_port);
        *ret = result;
        return 0;
}

static int endpoint_from_json(const json_t *j, vmm_live_endpoint_t *ep) {
        const char *host = json_string_value(json_object_get(j, "host"));
        json_int_t mp = json_integer_value(json_object_get(j, "migrate_port"));
        json_int_t np = json_integer_value(json_object_get(j, "nbd_port"));
        struct in_addr a;
        if (!host || strlen(host) >= sizeof ep->host || inet_pton(AF_INET, host, &a) != 1 || mp < 1 || mp > 65535 ||
            np < 1 || np > 65535)
                return -EINVAL;
        *ep = (vmm_live_endpoint_t){ .migrate_port = (int)mp, .nbd_port = (int)np };
        snprintf(ep->host, sizeof ep->host, "%s", host);
        return 0;
}

int node_live_send(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg) {
        int64_t version = 0;
        vmm_live_endpoint_t ep;
        int r = node_command_version(cmd, "version", "live-send", &version, ret_msg);
        if (r >= 0 && endpoint_from_json(json_object_get(cmd, "endpoint"), &ep) < 0) {
                *ret_msg = xstrdup("live-send needs version and endpoint {host (IPv4), migrate_port, nbd_port}");
                r = -EINVAL;
        }
        if (r < 0)
                return r;
        _cleanup_(node_vm_unlockp) node_vm_t *vm = NULL;
        r = node_command_lock(n, name, "live-send", version, 0, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        if (!vm->vmm || !streq(vm->state, "running")) {
                *ret_msg = xasprintf("vm \"%s\" is %s on this RM: only a running VM migrates live", name, vm->state);
                return -EPERM;
        }
        node_command_lease(vm, version);
        crash_point("node-live-send-before");
        vmm_live_stats_t st = { 0 };
        r = vmm_live_send(vm->vmm, &ep, LIVE_SEND_TIMEOUT_MS, &st);
        if (r < 0) {
                *ret_msg = xasprintf("vm \"%s\": live migration to %s failed: %s; it runs on here", name, ep.host,
                                     node_vm_strerror(r));
                return r;
        }
        /* handed over: paused for good unless the Oracle rolls back (live-abort) */
        node_vm_state_set(vm, "migrated");
        json_t *result = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "bytes_transferred",
                                   (json_int_t)(st.ram_bytes + st.disk_bytes), "bytes_total",
                                   (json_int_t)(st.ram_bytes + st.disk_bytes), "ram_bytes", (json_int_t)st.ram_bytes,
                                   "disk_bytes", (json_int_t)st.disk_bytes, "downtime_ms", (json_int_t)st.downtime_ms,
                                   "total_ms", (json_int_t)st.total_ms);
        node_command_record(n, vm, "live-send", version, result);
        log_info("vm %s v%lld: handed over live to %s in %llu ms (downtime %llu ms, %llu bytes of RAM, %llu of disk)",
                 name, (long long)version, ep.host, (unsigned long long)st.total_ms,
                 (unsigned long long)st.downtime_ms, (unsigned long long)st.ram_bytes,
                 (unsigned long long)st.disk_bytes);
        *ret = result;
        return 0;
}

/* finish (destination, "incoming") or abort (origin, "migrated"): the guest runs here again. */
static int live_continue(node_t *n, const char *name, const json_t *cmd, const char *kind, const char *from_state,
                         json_t **ret, char **ret_msg) {
        int64_t version = 0;
        int r = node_command_version(cmd, "version", kind, &version, ret_msg);
        if (r < 0)
                return r;
        _cleanup_(node_vm_unlockp) node_vm_t *vm = NULL;
        r = node_command_lock(n, name, kind, version, 0, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        if (!vm->vmm || !streq(vm->state, from_state)) {
                *ret_msg = xasprintf("vm \"%s\" is %s on this RM, not %s", name, vm->state, from_state);
                return -EPERM;
        }
        node_command_lease(vm, version);
        bool finish = streq(kind, "live-finish");
        r = finish ? vmm_live_finish(vm->vmm, LIVE_FINISH_TIMEOUT_MS) : vmm_cont(vm->vmm, 0);
        if (r < 0) {
                *ret_msg = xasprintf("vm \"%s\": %s failed: %s", name, finish ? "taking over" : "continuing",
                                     node_vm_strerror(r));
                if (finish) {
                        /* it never ran here: gone, so the origin can safely continue */
                        node_vm_vmm_release(vm, true);
                        node_vm_state_set(vm, "stopped");
                        node_registry_persist(n, vm);
                }
                return r;
        }
        json_t *result = node_vm_started(n, vm);
        node_command_record(n, vm, kind, version, result);
        log_info("vm %s v%lld: %s", name, (long long)version,
                 finish ? "took over after a live migration" : "continues here: the live migration was rolled back");
        *ret = result;
        return 0;
}

int node_live_finish(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg) {
        return live_continue(n, name, cmd, "live-finish", "incoming", ret, ret_msg);
}

int node_live_abort(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg) {
        return live_continue(n, name, cmd, "live-abort", "migrated", ret, ret_msg);
}
