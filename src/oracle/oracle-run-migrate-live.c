/* Live migration of a running VM (vm migrate NAME --to RM --live): QEMU's own precopy over TLS
 * between the RMs, with the disk mirrored over NBD over TLS (see vmm.h live_*); each side's QEMU
 * holds its RM's migration certificate and is told the other RM's name (docs/tls.md
 * "Migration streams"). Steps, each a node call:
 *   1. live-receive on the destination: a QEMU waiting for RAM and disk from the origin RM only
 *      (endpoint back);
 *   2. live-send on the origin: mirror the disk, migrate RAM to the destination RM; on success the origin's QEMU is
 *      paused for good, on failure it runs on as before;
 *   3. live-finish on the destination: the guest continues there.
 * The VM's record (RM, address) changes only at the commit after step 3, so clients see the
 * new address only once the switch completed. Rollback: the destination's copy is removed
 * (node_forget); if the origin had already handed over (after step 2), it continues only when
 * the destination is known not to run the guest (it answered the removal), so the VM never runs
 * twice. An Oracle restarted in the middle rolls the migration back the same way. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "oracle/oracle-internal.h"

#define LIVE_PREPARE_TIMEOUT_MS 60000
#define LIVE_SEND_TIMEOUT_MS (10L * 60 * 1000)
#define LIVE_FINISH_TIMEOUT_MS 60000


/* Removes the destination's copy; true when the destination confirmed it. */
static bool forget_confirmed(oracle_t *o, const char *rm, const char *vm, int64_t version) {
        json_t *res = NULL;
        _cleanup_free_ char *msg = NULL;
        int r = oracle_node_cmd(o, rm, vm, "delete", oracle_proto_version(version), 30000, &res, &msg);
        json_decref(res);
        if (r < 0)
                log_warn("vm %s: RM %s did not confirm removing its copy: %s", vm, rm, msg ? msg : strerror(-r));
        return r >= 0;
}

/* Rolls back. handed_over: the origin's QEMU may be paused after a completed send. */
static void live_fail(oracle_t *o, op_record_t *op, vm_record_t *vm, const char *origin, const char *target,
                      bool handed_over, char *msg) {
        int64_t committed = vm->version + 1;
        bool dest_gone = !*target || forget_confirmed(o, target, vm->name, committed);
        if (handed_over && dest_gone) {
                json_t *res = NULL;
                _cleanup_free_ char *why = NULL;
                if (oracle_node_cmd(o, origin, vm->name, "live-abort", oracle_proto_version(vm->version), 30000, &res,
                                    &why) < 0)
                        log_error("vm %s: the origin %s could not continue it: %s", vm->name, origin, why);
                json_decref(res);
        } else if (handed_over) {
                _cleanup_free_ char *m = msg;
                msg = xasprintf("%s; the destination %s is unreachable, so vm \"%s\" is not continued on %s (it must "
                                "not run twice): it stays paused there until the destination is fenced",
                                m ? m : "live migration failed", target, vm->name, origin);
        }
        oracle_vm_restore_prev(op, vm);
        oracle_op_finish(o, op, vm, false, msg ? msg : "live migration failed", NULL, false);
        free(msg);
}

void oracle_run_migrate_live(oracle_t *o, op_record_t *op, vm_record_t *vm) {
        const char *target = json_string_value(json_object_get(op->args, "rm"));
        _cleanup_free_ char *origin = xstrdup(vm->rm);
        int64_t t0 = time_now_ms();
        char *msg = NULL;
        if (!target || !*origin) {
                live_fail(o, op, vm, origin, target ? target : "", false,
                          xstrdup("a live migration needs an origin and a destination RM"));
                return;
        }
        const char *phase = json_string_value(json_object_get(op->progress, "phase"));
        if (phase && !streq(phase, "queued")) {
                /* re-driven after an Oracle restart: whatever was under way is undone */
                live_fail(o, op, vm, origin, target, true,
                          xstrdup("the Oracle restarted during the live migration: rolled back"));
                return;
        }
        rm_record_t target_rm = { 0 };
        store_rm_get(o->store, target, &target_rm);
        json_t *image = oracle_image_for_node(o, vm->image);
        if (!image) {
                live_fail(o, op, vm, origin, target, false, xasprintf("image \"%s\" of vm \"%s\" is gone", vm->image, vm->name));
                return;
        }
        /* 1. the destination waits for RAM and disk */
        oracle_op_progress(o, op, "preparing");
        json_t *ep = NULL;
        int r = oracle_node_cmd(o, target, vm->name, "live-receive", oracle_proto_live_receive(vm, image, op->id),
                                LIVE_PREPARE_TIMEOUT_MS, &ep, &msg);
        if (r < 0) {
                live_fail(o, op, vm, origin, target, false, msg);
                return;
        }
        /* 2. the origin sends */
        oracle_op_progress(o, op, "migrating");
        json_t *sent = NULL;
        r = oracle_node_cmd(o, origin, vm->name, "live-send",
                            oracle_proto_live_send(vm->version, json_object_get(ep, "endpoint"), target, op->id),
                            LIVE_SEND_TIMEOUT_MS, &sent, &msg);
        json_decref(ep);
        if (r < 0) {
                /* the origin ran on (or its QEMU died, which its heartbeat reports) */
                live_fail(o, op, vm, origin, target, false, msg);
                return;
        }
        /* 3. the destination continues the guest */
        oracle_op_progress(o, op, "switching");
        json_t *started = NULL;
        r = oracle_node_cmd(o, target, vm->name, "live-finish", oracle_proto_version(vm->version),
                            LIVE_FINISH_TIMEOUT_MS, &started, &msg);
        if (r < 0) {
                json_decref(sent);
                live_fail(o, op, vm, origin, target, true, msg);
                return;
        }
        json_t *result = json_pack("{s:s,s:O,s:O,s:f,s:O,s:O,s:s,s:s}", "method", "live", "bytes_transferred",
                                   json_object_get(sent, "bytes_transferred"), "bytes_total",
                                   json_object_get(sent, "bytes_total"), "seconds",
                                   (double)(time_now_ms() - t0) / 1000.0, "downtime_ms",
                                   json_object_get(sent, "downtime_ms"), "total_ms", json_object_get(sent, "total_ms"),
                                   "from", origin, "to", target);
        SET(vm->state, streq(target_rm.role, "production") ? "active" : "loading");
        SET(vm->rm, target);
        oracle_market_migrate_commit(op, vm); /* a buyer's machine: at its new offer's prices from now */
        oracle_run_take_address(vm, started);
        json_decref(started);
        json_decref(sent);
        int64_t committed = vm->version + 1;
        if (oracle_op_finish(o, op, vm, true, NULL, result, false) >= 0) {
                oracle_market_migrated(o, op, vm);
                oracle_node_forget(o, origin, vm->name, committed);
        }
}
