/* Migration of a suspended VM between RMs, with the semantics of Virtuoso's VM migration
 * protocol carried over our API (Virtuoso report §4, §7):
 *   QUERY/RESULTS  GET  destination /v1/migrate/methods: does it speak the method asked for?
 *   (stage)        POST origin /v1/vms/VM/stage: the VM's files into the origin's chunk cache
 *   REQ            POST destination /v1/vms/VM/receive {version, origin, method, files, ...}
 *   HEARTBEAT      POST Oracle /v1/ops/ID/heartbeat {done, total}, from the destination while it
 *                  copies; if none arrives for MIGRATE_SILENCE_MS the Oracle gives up
 *   RESP           the answer to REQ: the destination holds the VM at the new version
 * Atomicity: the VM stays on its origin, untouched, until the commit moves it (one store
 * transaction, version+1); a failure or a silent destination rolls it back to where it was at
 * version+1 and the destination's partial copy is removed (it holds no lease afterwards). */
#include <pthread.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "oracle/oracle-internal.h"

#define MIGRATE_SILENCE_MS 10000
#define MIGRATE_CMD_TIMEOUT_MS (30L * 60 * 1000)

/* The REQ call runs in a thread of its own so the op can watch the heartbeats meanwhile. The
 * context is shared by the two threads; the last one out frees it. */
typedef struct req_call {
        oracle_t *o;
        char rm[64];
        char path[160];
        json_t *body;
        pthread_mutex_t lock;
        bool done;
        int refs;
        int result;
        json_t *answer;
        char *msg;
} req_call_t;

static void req_call_unref(req_call_t *c) {
        pthread_mutex_lock(&c->lock);
        bool last = --c->refs == 0;
        pthread_mutex_unlock(&c->lock);
        if (!last)
                return;
        json_decref(c->body);
        json_decref(c->answer);
        free(c->msg);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

static void *req_call_thread(void *arg) {
        req_call_t *c = arg;
        json_t *answer = NULL;
        char *msg = NULL;
        int r = oracle_node_call(c->o, c->rm, "POST", c->path, c->body, MIGRATE_CMD_TIMEOUT_MS, &answer, &msg);
        pthread_mutex_lock(&c->lock);
        c->result = r;
        c->answer = answer;
        c->msg = msg;
        c->done = true;
        pthread_mutex_unlock(&c->lock);
        req_call_unref(c);
        return NULL;
}

/* The op's last sign of life: its last heartbeat, or its start. */
static int64_t last_heartbeat_ms(oracle_t *o, const char *op_id, int64_t started) {
        op_record_t op = { 0 };
        int64_t t = started;
        if (store_op_get(o->store, op_id, &op) >= 0)
                t = MAX(t, op.updated_ms);
        op_record_clear(&op);
        return t;
}

static bool method_offered(oracle_t *o, const char *rm, const char *method, char **ret_msg) {
        json_t *answer = NULL;
        int r = oracle_node_call(o, rm, "GET", "/v1/migrate/methods", NULL, 10000, &answer, ret_msg);
        if (r < 0)
                return false;
        bool ok = oracle_proto_methods_has(answer, method);
        json_decref(answer);
        if (!ok)
                *ret_msg = xasprintf("RM \"%s\" cannot receive by method \"%s\"", rm, method);
        return ok;
}

/* Rolls back first and then asks the destination to drop its partial copy: a hung destination
 * must not hold the rollback (it holds no lease afterwards, so the node fences the copy anyway). */
static void fail(oracle_t *o, op_record_t *op, vm_record_t *vm, const char *target, char *msg) {
        int64_t committed = vm->version + 1;
        oracle_vm_restore_prev(op, vm);
        oracle_op_finish(o, op, vm, false, msg ? msg : "migration failed", NULL, false);
        oracle_node_forget(o, target, vm->name, committed);
        free(msg);
}

/* A buyer's stored machine moving to another offer (the report's economic migration of a
 * machine in storage): its bundle is in the Nest, which every RM reads, so no byte moves; the
 * destination is still asked whether it speaks the method (QUERY), and the commit moves the
 * machine to the new offer and its prices at once, at version+1. */
static void migrate_stored(oracle_t *o, op_record_t *op, vm_record_t *vm, const char *target, const char *method) {
        int64_t t0 = time_now_ms();
        char *msg = NULL;
        oracle_op_progress(o, op, "query");
        if (!method_offered(o, target, method, &msg)) {
                fail(o, op, vm, target, msg);
                return;
        }
        _cleanup_free_ char *from = xstrdup(vm->market.offer);
        json_t *result = json_pack("{s:s,s:I,s:I,s:f,s:s,s:s,s:s}", "method", method, "bytes_transferred",
                                   (json_int_t)0, "bytes_total", (json_int_t)0, "seconds",
                                   (double)(time_now_ms() - t0) / 1000.0, "from", from, "to", target, "note",
                                   "a stored machine's bundle is in the Nest: only its offer and prices move");
        SET(vm->state, "stored");
        oracle_market_migrate_commit(op, vm);
        if (oracle_op_finish(o, op, vm, true, NULL, result, false) >= 0)
                oracle_market_migrated(o, op, vm);
}

void oracle_run_migrate(oracle_t *o, op_record_t *op, vm_record_t *vm) {
        const char *target = json_string_value(json_object_get(op->args, "rm"));
        const char *method = json_string_value(json_object_get(op->args, "method")) ?: "chunks";
        _cleanup_free_ char *origin = xstrdup(vm->rm);
        char *msg = NULL;
        int64_t t0 = time_now_ms();
        if (target && !*origin && vm->market.machine) {
                migrate_stored(o, op, vm, target, method);
                return;
        }
        if (!target || !*origin) {
                fail(o, op, vm, target, xstrdup("a migration needs an origin and a destination RM"));
                return;
        }
        /* QUERY / RESULTS */
        oracle_op_progress(o, op, "query");
        if (!method_offered(o, target, method, &msg)) {
                fail(o, op, vm, target, msg);
                return;
        }
        /* the origin's files, named by their digests */
        oracle_op_progress(o, op, "staging");
        json_t *staged = NULL;
        int r = oracle_node_cmd(o, origin, vm->name, "stage", oracle_proto_version(vm->version), MIGRATE_CMD_TIMEOUT_MS,
                                &staged, &msg);
        if (r < 0) {
                fail(o, op, vm, target, msg);
                return;
        }
        rm_record_t origin_rm = { 0 };
        store_rm_get(o->store, origin, &origin_rm);
        json_t *image = oracle_image_for_node(o, vm->image);
        if (!image) {
                json_decref(staged);
                fail(o, op, vm, target, xasprintf("image \"%s\" of vm \"%s\" is gone", vm->image, vm->name));
                return;
        }
        /* REQ, watched by HEARTBEATs */
        req_call_t *c = xcalloc(1, sizeof *c);
        pthread_mutex_init(&c->lock, NULL);
        c->o = o;
        c->refs = 2;
        SET(c->rm, target);
        snprintf(c->path, sizeof c->path, "/v1/vms/%s/receive", vm->name);
        c->body = oracle_proto_receive(vm, origin_rm.address, method, json_object_get(staged, "files"), image, op->id);
        json_decref(staged);
        oracle_op_progress(o, op, "transferring");
        int64_t started = time_wall_ms();
        pthread_t t;
        if (pthread_create(&t, NULL, req_call_thread, c) != 0) {
                c->refs = 1;
                req_call_unref(c);
                fail(o, op, vm, target, xstrdup("cannot start the transfer"));
                return;
        }
        pthread_detach(t);
        bool done = false, silent = false;
        while (!done && !silent) {
                time_sleep_ms(100);
                pthread_mutex_lock(&c->lock);
                done = c->done;
                pthread_mutex_unlock(&c->lock);
                silent = !done && time_wall_ms() - last_heartbeat_ms(o, op->id, started) > MIGRATE_SILENCE_MS;
        }
        if (silent) {
                req_call_unref(c);
                fail(o, op, vm, target,
                     xasprintf("RM \"%s\" sent no heartbeat for %d s: migration abandoned, vm \"%s\" stays on \"%s\"",
                               target, MIGRATE_SILENCE_MS / 1000, vm->name, origin));
                return;
        }
        r = c->result;
        json_t *answer = json_incref(c->answer);
        msg = c->msg ? xstrdup(c->msg) : NULL;
        req_call_unref(c);
        /* RESP: the destination holds the VM at the version it was asked for */
        oracle_received_t got = { 0 };
        if (r >= 0 && oracle_proto_received_parse(answer, vm->version, &got) < 0) {
                r = -EPROTO;
                free(msg);
                msg = xasprintf("RM \"%s\" answered for another version", target);
        }
        if (r < 0) {
                json_decref(answer);
                fail(o, op, vm, target, msg);
                return;
        }
        free(msg);
        json_t *result = json_pack("{s:s,s:I,s:I,s:f,s:s,s:s}", "method", method, "bytes_transferred",
                                   (json_int_t)got.bytes_transferred, "bytes_total", (json_int_t)got.bytes_total,
                                   "seconds", (double)(time_now_ms() - t0) / 1000.0, "from", origin, "to", target);
        json_decref(answer);
        SET(vm->state, "suspended");
        SET(vm->rm, target);
        oracle_market_migrate_commit(op, vm); /* a buyer's machine: at its new offer's prices from now */
        SET(vm->address, "");
        vm->pid = 0;
        int64_t committed = vm->version + 1;
        if (oracle_op_finish(o, op, vm, true, NULL, result, false) >= 0) {
                oracle_market_migrated(o, op, vm);
                oracle_node_forget(o, origin, vm->name, committed);
        }
}

