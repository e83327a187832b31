/* The operation engine, at the bottom of the Oracle: every VM operation is
 *   intent   one transaction: the VM enters its transitional state, its version is bumped, the
 *            target RM is written (that is the lease the node is checked against) and the op
 *            row records what was asked and the VM as it was before;
 *   action   node commands keyed by (VM, version), so repeating them is harmless;
 *   commit   one transaction: the VM's final state at version+1 and the op marked done; or
 *   rollback one transaction: the VM as it was before, at version+1, and the op marked failed.
 * A killed Oracle finds the op still "running" at start and re-drives it from the beginning
 * (oracle_ops_recover); the idempotent node commands make that finish or undo it.
 * The engine owns intents, dispatch, progress, commit and rollback, and recovery; the runners
 * (oracle-run-*.c) do the action part of each kind and reach the Oracle only through it. They
 * come as a table indexed by the lifecycle rule's action (oracle-runners.c), handed over at
 * start. Whatever must follow an operation (the switching loop's wake, its failure records, a
 * drain) is a hook the switching loop registers (oracle_hooks_t), never a call by name.
 * Keep the runners in sync with the lifecycle table in src/model/lifecycle.c. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "model/lifecycle.h"
#include "oracle/oracle-figures.h"
#include "oracle/oracle-internal.h"

#define NODE_CMD_TIMEOUT_MS (5 * 60 * 1000)

typedef struct op_ctx {
        oracle_t *o;
        char op_id[40];
} op_ctx_t;

void oracle_engine_wake(oracle_t *o) {
        if (o->hooks.wake)
                o->hooks.wake(o);
}

void oracle_engine_failure_note(oracle_t *o, const char *vm, const char *service, bool replace) {
        if (o->hooks.failure_note)
                o->hooks.failure_note(o, vm, service, replace);
}

int oracle_engine_drain_wait(oracle_t *o, const char *service, const char *vm, int64_t timeout_ms) {
        return o->hooks.drain_wait ? o->hooks.drain_wait(o, service, vm, timeout_ms) : 0;
}

/* Wakes the GET /v1/ops/:id requests that wait for a change. */
static void ops_changed(oracle_t *o) {
        pthread_mutex_lock(&o->ops_lock);
        pthread_cond_broadcast(&o->ops_changed);
        pthread_mutex_unlock(&o->ops_lock);
}

void oracle_op_progress(oracle_t *o, op_record_t *op, const char *phase) {
        json_decref(op->progress);
        op->progress = json_pack("{s:s}", "phase", phase);
        op->updated_ms = time_wall_ms();
        store_op_progress(o->store, op->id, op->progress, op->updated_ms);
        ops_changed(o);
}

int oracle_op_wait(oracle_t *o, const char *id, int64_t wait_ms, op_record_t *ret) {
        int r = store_op_get(o->store, id, ret);
        if (r < 0)
                return r;
        int64_t deadline = time_now_ms() + wait_ms;
        while (streq(ret->state, "running") && !o->stopping) {
                int64_t left = deadline - time_now_ms();
                if (left <= 0)
                        break;
                struct timespec ts = time_realtime_after_ms(MIN(left, 1000));
                pthread_mutex_lock(&o->ops_lock);
                pthread_cond_timedwait(&o->ops_changed, &o->ops_lock, &ts);
                pthread_mutex_unlock(&o->ops_lock);
                op_record_t now = { 0 };
                if (store_op_get(o->store, id, &now) < 0)
                        break;
                bool changed = !streq(now.state, ret->state) || now.updated_ms != ret->updated_ms;
                op_record_clear(ret);
                *ret = now;
                if (changed)
                        break;
        }
        return 0;
}

/* Writes the op's end in one transaction: vm at version+1 (or its deletion), the op's state and
 * the event. */
static int op_finish_commit(oracle_t *o, const op_record_t *op, const vm_record_t *vm, int64_t expected, bool ok,
                            const char *error, bool delete_vm) {
        int r = store_tx_begin(o->store);
        if (r < 0)
                return r;
        r = delete_vm ? store_vm_delete(o->store, vm->name) : store_vm_update(o->store, vm, expected);
        if (r >= 0)
                r = store_op_update(o->store, op);
        if (r >= 0) {
                _cleanup_free_ char *reason =
                        ok ? xasprintf("%s done (version %lld)", op->kind, (long long)vm->version)
                           : xasprintf("%s failed: %s", op->kind, error ? error : "unknown error");
                r = store_event_add(o->store, ok ? op->kind : "op-failed", vm->name, *vm->service ? vm->service : NULL,
                                    *vm->rm ? vm->rm : oracle_op_arg(op, "rm"), reason);
        }
        if (r >= 0)
                r = store_tx_commit(o->store);
        if (r < 0)
                store_tx_rollback(o->store);
        return r;
}

/* Finishes the op: writes vm (already holding its final fields) at version+1 and the op's
 * state, in one transaction. The node has already done its part, so a store that fails to
 * write (disk full, I/O error) is waited out: the transaction is tried again, backing off up
 * to 5 s, until it lands or the Oracle stops (then recovery re-drives the op at the next
 * start). Only a VM changed meanwhile (-ESTALE) or gone (-ENOENT) ends it unrecorded. */
int oracle_op_finish(oracle_t *o, op_record_t *op, vm_record_t *vm, bool ok, const char *error, json_t *result,
                      bool delete_vm) {
        int64_t expected = vm->version;
        vm->version++;
        SET(vm->op_id, "");
        SET(op->state, ok ? "done" : "failed");
        SET(op->error, error);
        utf8_sanitize(op->error); /* SET may have cut a character; the op is served as JSON */
        json_decref(op->result);
        op->result = result ? result : json_object();
        json_decref(op->progress);
        op->progress = json_pack("{s:s}", "phase", ok ? "done" : "failed");
        op->updated_ms = time_wall_ms();
        int r;
        for (int64_t backoff_ms = 50;; backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2) {
                r = op_finish_commit(o, op, vm, expected, ok, error, delete_vm);
                if (r >= 0 || r == -ESTALE || r == -ENOENT || o->stopping)
                        break;
                log_error("op %s: cannot record its end (%s); trying again in %lld ms", op->id, strerror(-r),
                          (long long)backoff_ms);
                time_sleep_ms(backoff_ms);
        }
        if (r < 0) {
                log_error("op %s: its end is not recorded: %s", op->id, strerror(-r));
                return r;
        }
        oracle_figures_op_done(o, op, vm, ok);
        ops_changed(o);
        oracle_engine_wake(o); /* HAProxy and the services follow the new state at once */
        if (delete_vm || !*vm->address)
                oracle_metrics_vm_forget(o->metrics, vm->name); /* it does not run (any more) */
        if (ok)
                log_info("op %s: %s %s done, version %lld", op->id, op->kind, vm->name, (long long)vm->version);
        else
                log_warn("op %s: %s %s failed: %s", op->id, op->kind, vm->name, error);
        return r;
}

/* Puts vm back to the row recorded at intent time (keeping the current version). */
void oracle_vm_restore_prev(const op_record_t *op, vm_record_t *vm) {
        vm_record_t prev = { 0 };
        if (vm_record_from_json(op->prev, &prev) < 0)
                return;
        prev.version = vm->version;
        vm_record_clear(vm);
        *vm = prev;
}

void oracle_node_forget(oracle_t *o, const char *rm, const char *vm, int64_t version) {
        if (!rm || !*rm)
                return;
        json_t *res = NULL;
        _cleanup_free_ char *msg = NULL;
        if (oracle_node_cmd(o, rm, vm, "delete", oracle_proto_version(version), 30000, &res, &msg) < 0)
                log_warn("could not remove %s from RM %s (%s); its lease is gone, so the node fences it", vm, rm, msg);
        json_decref(res);
}

/* A command whose answer did not come (or said the node failed) is asked again, the same: node
 * commands are idempotent by (VM, version), and a repeat of one the node completed is answered
 * from its record. Without this, a connection broken after the node saved a VM into the Nest
 * (or a node that did the work but could not record it yet) would make the op roll the VM back
 * to "running where it was" while the node had let it go. 3 repeats, 250 ms apart and doubling:
 * a node that is really gone costs the op under 2 s more. */
#define NODE_CMD_REPEATS 3
#define NODE_CMD_REPEAT_MS 250

int oracle_node_cmd(oracle_t *o, const char *rm, const char *vm, const char *cmd, json_t *body /* stolen */,
                    long timeout_ms, json_t **ret, char **ret_msg) {
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/%s", vm, cmd);
        int r;
        for (int attempt = 0, wait_ms = NODE_CMD_REPEAT_MS;; attempt++, wait_ms *= 2) {
                r = oracle_node_call(o, rm, "POST", path, body, timeout_ms > 0 ? timeout_ms : NODE_CMD_TIMEOUT_MS,
                                     ret, ret_msg);
                if ((r != -EHOSTUNREACH && r != -EREMOTEIO) || attempt == NODE_CMD_REPEATS || o->stopping)
                        break;
                log_warn("%s of vm %s: %s; asking again in %d ms", cmd, vm, *ret_msg, wait_ms);
                free(*ret_msg);
                *ret_msg = NULL;
                time_sleep_ms(wait_ms);
        }
        json_decref(body);
        return r;
}

static void *op_thread(void *arg) {
        op_ctx_t *ctx = arg;
        oracle_t *o = ctx->o;
        op_record_t op = { 0 };
        vm_record_t vm = { 0 };
        if (store_op_get(o->store, ctx->op_id, &op) < 0 || store_vm_get(o->store, op.vm, &vm) < 0) {
                log_error("op %s: its record or its VM is gone", ctx->op_id);
                goto out;
        }
        if (!streq(vm.op_id, op.id)) {
                log_error("op %s: vm %s is held by op %s; marking this one failed", op.id, vm.name, vm.op_id);
                SET(op.state, "failed");
                SET(op.error, "superseded");
                store_op_update(o->store, &op);
                goto out;
        }
        const lifecycle_rule_t *rule = lifecycle_rule_by_name(op.kind);
        oracle_runner_fn run = rule && o->runners ? o->runners[rule->action] : NULL;
        if (run) {
                run(o, &op, &vm);
        } else {
                oracle_vm_restore_prev(&op, &vm);
                oracle_op_finish(o, &op, &vm, false, "no runner for this operation kind", NULL, false);
        }
out:
        op_record_clear(&op);
        vm_record_clear(&vm);
        free(ctx);
        pthread_mutex_lock(&o->ops_lock);
        o->ops_running--;
        pthread_mutex_unlock(&o->ops_lock);
        return NULL;
}

static void op_spawn(oracle_t *o, const char *op_id) {
        op_ctx_t *ctx = xcalloc(1, sizeof *ctx);
        ctx->o = o;
        SET(ctx->op_id, op_id);
        pthread_mutex_lock(&o->ops_lock);
        o->ops_running++;
        pthread_mutex_unlock(&o->ops_lock);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, op_thread, ctx) != 0) {
                log_error("cannot start a thread for op %s", op_id);
                op_thread(ctx); /* run inline rather than lose it */
        }
        pthread_attr_destroy(&attr);
}

/* Chooses where the VM goes for actions that place it. A buyer's machine goes only to the RM
 * of its offer, or (a migration) to another offer. */
static int choose_rm(oracle_t *o, const vm_record_t *vm, vm_action_t action, const char *wanted, char *ret,
                     size_t size, char **ret_msg) {
        if (action == VM_ACTION_BOOT || action == VM_ACTION_ACTIVATE) {
                int r = oracle_market_placement(vm, wanted, &wanted, ret_msg);
                if (r < 0)
                        return r;
                return oracle_rm_pick(o, action == VM_ACTION_BOOT ? "chamber" : "production", wanted, vm->name, ret,
                                      size, ret_msg);
        }
        if (action == VM_ACTION_MIGRATE || action == VM_ACTION_MIGRATE_LIVE) {
                rm_record_t rm = { 0 };
                if (!wanted) {
                        *ret_msg = xasprintf("migrating vm \"%s\" needs a destination RM (--to RM)", vm->name);
                        return -EINVAL;
                }
                if (store_rm_get(o->store, wanted, &rm) < 0) {
                        *ret_msg = xasprintf("no RM named \"%s\"", wanted);
                        return -ENOENT;
                }
                if (streq(wanted, vm->rm)) {
                        *ret_msg = xasprintf("vm \"%s\" is on RM \"%s\" already", vm->name, wanted);
                        return -EPERM;
                }
                /* a buyer's stored machine runs nowhere: it moves to another offer, whatever runs there */
                if (!*vm->rm) {
                        if (!streq(rm.state, "up")) {
                                *ret_msg = xasprintf("RM \"%s\" is down", wanted);
                                return -EAGAIN;
                        }
                        snprintf(ret, size, "%s", wanted);
                        return 0;
                }
                /* a running VM stays what it is: active on production, loading on a chamber */
                const char *role = action == VM_ACTION_MIGRATE ? rm.role
                                   : streq(vm->state, "active")  ? "production"
                                                                 : "chamber";
                return oracle_rm_pick(o, role, wanted, vm->name, ret, size, ret_msg);
        }
        return 0;
}

int oracle_op_start(oracle_t *o, const char *name, const op_request_t *req, json_t **ret_op, char **ret_msg) {
        const lifecycle_rule_t *rule = lifecycle_rule_by_name(req->action);
        if (!rule) {
                *ret_msg = xasprintf("unknown action \"%s\"", req->action);
                return -ENOENT;
        }
        if (rule->sync) {
                *ret_msg = xasprintf("%s is not an operation: POST /v1/vms/%s/%s does it at once", rule->name, name,
                                     rule->name);
                return -EINVAL;
        }
        const char *method = req->method ? req->method : "chunks";
        if (rule->action == VM_ACTION_MIGRATE && !streq(method, "chunks") && !streq(method, "full")) {
                *ret_msg = xasprintf("unknown migration method \"%s\" (chunks or full)", method);
                return -EINVAL;
        }
        int r = store_tx_begin(o->store);
        if (r < 0) {
                *ret_msg = xstrdup("the store is unavailable");
                return r;
        }
        vm_record_t vm = { 0 };
        op_record_t op = { 0 };
        r = store_vm_get(o->store, name, &vm);
        if (r < 0) {
                *ret_msg = xasprintf("no vm named \"%s\"", name);
                goto fail;
        }
        bool forced = false;
        r = lifecycle_check(rule->action, vm.state, oracle_vm_flags(&vm));
        if (r == -EPERM && rule->action == VM_ACTION_DELETE && req->force && lifecycle_state_is_stable(vm.state)) {
                forced = true; /* delete --force: stop it first (the node kills it) */
                r = 0;
        }
        if (r == -EBUSY) {
                *ret_msg = xasprintf("vm \"%s\" is %s: another operation (%s) is running; wait for it", name, vm.state,
                                     vm.op_id);
                goto fail;
        }
        if (r < 0) {
                *ret_msg = xasprintf("vm \"%s\" is %s: cannot %s it%s", name, vm.state, rule->name,
                                     rule->action == VM_ACTION_DELETE ? " (use --force to stop and delete)" : "");
                goto fail;
        }
        /* a buyer with no money left starts nothing (billing suspended what ran) */
        if (rule->action == VM_ACTION_BOOT || rule->action == VM_ACTION_ACTIVATE || rule->action == VM_ACTION_RESUME) {
                r = oracle_market_can_run(o, &vm, ret_msg);
                if (r < 0)
                        goto fail;
        }
        char target[64] = "";
        r = choose_rm(o, &vm, rule->action, req->rm, target, sizeof target, ret_msg);
        if (r < 0)
                goto fail;
        SET(op.vm, name);
        SET(op.kind, rule->name);
        SET(op.state, "running");
        op.created_ms = op.updated_ms = time_wall_ms();
        op.args = json_pack("{s:s?,s:s?,s:b,s:s?}", "rm", *target ? target : NULL, "origin",
                            *target && *vm.rm ? vm.rm : NULL, "force", forced, "method",
                            rule->action == VM_ACTION_MIGRATE        ? method
                            : rule->action == VM_ACTION_MIGRATE_LIVE ? "live"
                                                                     : NULL);
        op.prev = vm_record_to_json(&vm);
        if (rule->action == VM_ACTION_MIGRATE || rule->action == VM_ACTION_MIGRATE_LIVE) {
                r = oracle_market_migrate_intent(o, &vm, target, op.args, ret_msg);
                if (r < 0)
                        goto fail;
        }
        op.progress = json_pack("{s:s}", "phase", "queued");
        op.result = json_object();
        r = store_op_insert(o->store, &op);
        if (r < 0) {
                *ret_msg = xstrdup("cannot record the operation");
                goto fail;
        }
        int64_t expected = vm.version;
        vm.version++;
        SET(vm.state, forced ? "deleting" : rule->transit);
        SET(vm.op_id, op.id);
        /* the lease: the target RM may now run this version (a migration moves the VM only at
         * its commit; meanwhile both RMs hold it, see leases_for) */
        if (*target && rule->action != VM_ACTION_MIGRATE && rule->action != VM_ACTION_MIGRATE_LIVE)
                SET(vm.rm, target);
        r = store_vm_update(o->store, &vm, expected);
        if (r < 0) {
                *ret_msg = xasprintf("vm \"%s\" changed meanwhile; try again", name);
                goto fail;
        }
        r = store_tx_commit(o->store);
        if (r < 0) {
                *ret_msg = xstrdup("cannot commit the operation's intent");
                goto out;
        }
        log_info("op %s: %s %s (version %lld)%s%s", op.id, rule->name, name, (long long)vm.version,
                 *target ? " on " : "", target);
        *ret_op = op_record_to_json(&op);
        op_spawn(o, op.id);
        goto out;
fail:
        store_tx_rollback(o->store);
out:
        vm_record_clear(&vm);
        op_record_clear(&op);
        return r;
}

void oracle_ops_recover(oracle_t *o) {
        op_record_t *ops = NULL;
        size_t n = 0;
        if (store_op_list_running(o->store, &ops, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                log_info("op %s: %s %s was running when the Oracle stopped: re-driving it", ops[i].id, ops[i].kind,
                         ops[i].vm);
                store_event_add(o->store, "op-recovered", ops[i].vm, NULL, NULL, ops[i].kind);
                op_spawn(o, ops[i].id);
        }
        store_op_list_free(ops, n);
}


/* POST /v1/ops/:id/heartbeat from a node transferring for an operation: progress and liveness. */
void oracle_op_heartbeat(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        op_record_t op = { 0 };
        int r = store_op_get(o->store, req->params[0], &op);
        if (r < 0) {
                http_reply_errno(reply, r, "no operation %s", req->params[0]);
                return;
        }
        int64_t done = 0, total = 0;
        if (oracle_proto_op_progress_parse(req->body, &done, &total) < 0) {
                op_record_clear(&op);
                http_reply_error(reply, 400, "invalid", "a heartbeat carries done and total, non-negative integers");
                return;
        }
        if (!streq(op.state, "running")) {
                http_reply_error(reply, 409, "stale_version", "operation %s is not running", op.id);
                op_record_clear(&op);
                return;
        }
        /* only the progress, and only while the op runs: a heartbeat that lands after the op's
         * end must not write the running row back over the finished one */
        json_t *progress = json_pack("{s:s,s:I,s:I}", "phase", "transferring", "done", (json_int_t)done, "total",
                                     (json_int_t)total);
        r = store_op_progress(o->store, op.id, progress, time_wall_ms());
        json_decref(progress);
        op_record_clear(&op);
        if (r == -ESTALE) {
                http_reply_error(reply, 409, "stale_version", "operation %s is not running", req->params[0]);
                return;
        }
        ops_changed(o);
        http_reply_json(reply, 200, json_object());
}

void oracle_vm_mark_failed(oracle_t *o, vm_record_t *vm, const char *rm, bool fence, const char *reason) {
        int64_t expected = vm->version;
        bool was_serving = streq(vm->state, "active"); /* a pre-boot in a chamber is not replaced */
        vm->version++;
        SET(vm->state, "failed");
        SET(vm->address, "");
        vm->pid = 0;
        if (fence)
                SET(vm->rm, ""); /* no lease anywhere: the node kills any copy it still has */
        if (store_vm_update(o->store, vm, expected) >= 0) {
                store_event_add(o->store, "failed", vm->name, *vm->service ? vm->service : NULL, rm, reason);
                log_warn("vm %s failed on RM %s: %s", vm->name, rm, reason);
                oracle_metrics_vm_forget(o->metrics, vm->name);
                oracle_engine_failure_note(o, vm->name, vm->service, was_serving);
                oracle_engine_wake(o); /* a service's VM is replaced at once */
        }
}
