/* The node's side of live migration (oracle-migrate-live.c runs the protocol): live-receive
 * starts a QEMU that waits for the VM's RAM and disk, live-send hands a running VM over to it,
 * live-finish continues the guest on the destination, and live-abort continues it again on the
 * origin after a hand-over the Oracle rolled back. Both streams are TLS: each QEMU gets the RM's
 * migration identity (node_tls_migration, never the node's own key) and the other RM's name,
 * from the command (docs/tls.md "Migration streams"). Node states: "incoming" (destination,
 * waiting) and "migrated" (origin, paused for good after a completed send: it must never be
 * continued behind the Oracle's back, so an agent restart does not continue it either). */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-command.h"
#include "node/node-launch.h"
#include "node/node-registry.h"
#include "node/node-vm.h"
#include "tls/tls-identity.h"

#define LIVE_SEND_TIMEOUT_MS (9 * 60 * 1000)
#define LIVE_FINISH_TIMEOUT_MS 30000

/* The RM's migration identity for vm name's migration (node_tls_migration), or why not. */
static int live_identity(node_t *n, const char *name, node_migration_id_t *ret, char **ret_msg) {
        _cleanup_free_ char *why = NULL;
        int r = node_tls_migration(n, ret, &why);
        if (r < 0)
                *ret_msg = xasprintf("vm \"%s\": cannot migrate live without TLS: %s", name, why);
        return r;
}

int node_live_receive(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg) {
        int64_t version = cmd->version;
        _cleanup_(node_command_unlockp) node_vm_t *vm = NULL;
        int r = node_command_lock(n, name, cmd, NODE_COMMAND_CREATE, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        node_command_lease(vm, version);
        node_disk_mark_drop(n, name); /* its disk is replaced */
        node_vm_vmm_release(vm, true);
        node_vm_stale_kill(n, name);
        node_vm_run_dir_reset(n, vm);
        node_vm_config_set(vm, cmd->live_receive.config);
        node_vm_disk_base_set(vm, NULL);
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *mem = node_vm_file(n, name, "memory");
        (void)mkdir_p(dir, 0755);
        unlink(mem); /* RAM arrives from the origin into a file of its own */
        node_launch_t l = { 0 };
        nest_transfer_stats_t moved = { 0 };
        /* only the origin RM's QEMU may connect: its migration certificate's subject */
        node_migration_id_t id = { 0 };
        _cleanup_free_ char *origin = tls_migration_authz_id(cmd->live_receive.origin_rm);
        r = live_identity(n, name, &id, ret_msg);
        if (r >= 0)
                r = node_cache_image(n, cmd->live_receive.image, ret_msg);
        if (r >= 0)
                r = node_launch_prepare(n, vm, &l, ret_msg);
        /* an empty overlay over the same backing as the origin's: the mirror fills it */
        if (r >= 0)
                r = node_launch_disk(n, vm, &l, NULL, &moved, NULL, ret_msg);
        if (r >= 0)
                r = node_launch_confine(n, &l, name, ret_msg);
        vmm_live_endpoint_t ep = { 0 };
        vmm_live_tls_t tls = { .ca_pem = id.ca_pem, .cert_pem = id.cert_pem, .key_pem = id.key_pem,
                               .peer_subject = origin };
        if (r >= 0 && (r = vmm_live_receive(n->driver, &l.vc, n->host, &tls, 0, &ep, &vm->vmm)) < 0)
                *ret_msg = xasprintf("vm \"%s\": cannot start the incoming QEMU: %s (see %s/qemu.log)", name,
                                     node_vm_strerror(r), l.run_dir);
        node_migration_id_clear(&id);
        node_launch_confine_end(n, &l, r >= 0);
        node_launch_clear(&l);
        crash_point("node-live-receive-started");
        if (r < 0) {
                node_vm_state_set(vm, "stopped");
                node_registry_persist(n, vm);
                return r;
        }
        node_vm_state_set(vm, "incoming");
        json_t *result = node_proto_live_receive_answer(&ep);
        if ((r = node_command_record(n, vm, cmd, result, ret_msg)) < 0)
                return r;
        log_info("vm %s v%lld: waiting for a live migration from %s on %s (RAM :%d, disk :%d, TLS only)", name,
                 (long long)version, cmd->live_receive.origin_rm, ep.host, ep.migrate_port, ep.nbd_port);
        *ret = result;
        return 0;
}

int node_live_send(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg) {
        int64_t version = cmd->version;
        const vmm_live_endpoint_t ep = cmd->live_send.endpoint;
        _cleanup_(node_command_unlockp) node_vm_t *vm = NULL;
        int r = node_command_lock(n, name, cmd, 0, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        if (!vm->vmm || !streq(vm->state, "running")) {
                *ret_msg = xasprintf("vm \"%s\" is %s on this RM: only a running VM migrates live", name, vm->state);
                return -EPERM;
        }
        node_command_lease(vm, version);
        crash_point("node-live-send-before");
        /* the destination RM's QEMU must be there: its migration certificate's name */
        node_migration_id_t id = { 0 };
        if ((r = live_identity(n, name, &id, ret_msg)) < 0)
                return r;
        _cleanup_free_ char *target = tls_migration_dns_name(cmd->live_send.target_rm);
        vmm_live_tls_t tls = { .ca_pem = id.ca_pem, .cert_pem = id.cert_pem, .key_pem = id.key_pem,
                               .peer_hostname = target };
        /* the source QEMU itself connects to the destination's ports (node-guestfw.h) */
        uint32_t fw_uid = 0;
        if ((r = node_guestfw_live_open(n, vm->pid, &ep, LIVE_SEND_TIMEOUT_MS, &fw_uid, ret_msg)) < 0) {
                node_migration_id_clear(&id);
                return r;
        }
        vmm_live_stats_t st = { 0 };
        r = vmm_live_send(vm->vmm, &ep, &tls, LIVE_SEND_TIMEOUT_MS, &st);
        node_migration_id_clear(&id);
        node_guestfw_live_close(n, fw_uid, &ep);
        if (r < 0) {
                *ret_msg = xasprintf("vm \"%s\": live migration to %s failed: %s; it runs on here", name, ep.host,
                                     node_vm_strerror(r));
                return r;
        }
        /* handed over: paused for good unless the Oracle rolls back (live-abort) */
        node_vm_state_set(vm, "migrated");
        json_t *result = node_proto_live_send_answer(&st);
        if ((r = node_command_record(n, vm, cmd, result, ret_msg)) < 0)
                return r;
        log_info("vm %s v%lld: handed over live to %s (%s, over TLS) in %llu ms (downtime %llu ms, %llu bytes of RAM, "
                 "%llu of disk)",
                 name, (long long)version, cmd->live_send.target_rm, ep.host, (unsigned long long)st.total_ms,
                 (unsigned long long)st.downtime_ms, (unsigned long long)st.ram_bytes,
                 (unsigned long long)st.disk_bytes);
        *ret = result;
        return 0;
}

/* finish (destination, "incoming") or abort (origin, "migrated"): the guest runs here again. */
static int live_continue(node_t *n, const char *name, const node_cmd_t *cmd, const char *from_state, json_t **ret,
                         char **ret_msg) {
        int64_t version = cmd->version;
        _cleanup_(node_command_unlockp) node_vm_t *vm = NULL;
        int r = node_command_lock(n, name, cmd, 0, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        if (!vm->vmm || !streq(vm->state, from_state)) {
                *ret_msg = xasprintf("vm \"%s\" is %s on this RM, not %s", name, vm->state, from_state);
                return -EPERM;
        }
        node_command_lease(vm, version);
        bool finish = cmd->kind == NODE_CMD_LIVE_FINISH;
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
        if ((r = node_command_record(n, vm, cmd, result, ret_msg)) < 0)
                return r;
        log_info("vm %s v%lld: %s", name, (long long)version,
                 finish ? "took over after a live migration" : "continues here: the live migration was rolled back");
        *ret = result;
        return 0;
}

int node_live_finish(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg) {
        return live_continue(n, name, cmd, "incoming", ret, ret_msg);
}

int node_live_abort(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg) {
        return live_continue(n, name, cmd, "migrated", ret, ret_msg);
}
