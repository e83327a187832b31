/* The operation coordinator. Every VM operation is
 *   intent   one transaction: the VM enters its transitional state, its version is bumped, the
 *            target RM is written (that is the lease the node is checked against) and the op
 *            row records what was asked and the VM as it was before;
 *   action   node commands keyed by (VM, version), so repeating them is harmless;
 *   commit   one transaction: the VM's final state at version+1 and the op marked done; or
 *   rollback one transaction: the VM as it was before, at version+1, and the op marked failed.
 * A killed Oracle finds the op still "running" at start and re-drives it from the beginning
 * (oracle_ops_recover); the idempotent node commands make that finish or undo it.
 * Keep the runners in sync with the lifecycle table in src/model/lifecycle.c. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "model/lifecycle.h"
#include "oracle/oracle-internal.h"

#define NODE_CMD_TIMEOUT_MS (5 * 60 * 1000)
/* How long a deactivation waits for a service VM's sessions to end before it saves anyway. */
#define DRAIN_TIMEOUT_MS 30000

typedef struct op_ctx {
        oracle_t *o;
        char op_id[40];
} op_ctx_t;


static void op_progress(oracle_t *o, op_record_t *op, const char *phase) {
        json_decref(op->progress);
        op->progress = json_pack("{s:s}", "phase", phase);
        op->updated_ms = time_wall_ms();
        store_op_update(o->store, op);
}

static const char *args_str(const op_record_t *op, const char *key) {
        return json_string_value(json_object_get(op->args, key));
}

/* The image description a node needs to cache the image's files. */
static json_t *image_for_node(oracle_t *o, const char *image) {
        image_record_t img = { 0 };
        if (store_image_get(o->store, image, &img) < 0)
                return NULL;
        json_t *j = json_pack("{s:s,s:O}", "name", img.name, "files", json_object_get(img.meta, "files"));
        image_record_clear(&img);
        return j;
}

static json_t *bundle_for_node(const vm_record_t *v) {
        if (v->nest_version <= 0)
                return json_null();
        /* a clone that has not saved yet runs from its parent's snapshot */
        return json_pack("{s:I,s:O,s:s*}", "version", (json_int_t)v->nest_version, "files",
                         json_object_get(v->bundle, "files"), "vm",
                         json_string_value(json_object_get(v->bundle, "source")));
}

/* Finishes the op: writes vm (already holding its final fields) at version+1 and the op's
 * state, in one transaction. */
static int op_finish(oracle_t *o, op_record_t *op, vm_record_t *vm, bool ok, const char *error, json_t *result,
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
                                    *vm->rm ? vm->rm : args_str(op, "rm"), reason);
        }
        if (r < 0) {
                store_tx_rollback(o->store);
                log_error("op %s: cannot record its end: %s", op->id, strerror(-r));
                return r;
        }
        r = store_tx_commit(o->store);
        oracle_switch_wake(o); /* HAProxy and the services follow the new state at once */
        if (delete_vm || !*vm->address)
                oracle_metrics_vm_forget(o->metrics, vm->name); /* it does not run (any more) */
        if (ok)
                log_info("op %s: %s %s done, version %lld", op->id, op->kind, vm->name, (long long)vm->version);
        else
                log_warn("op %s: %s %s failed: %s", op->id, op->kind, vm->name, error);
        return r;
}

/* Puts vm back to the row recorded at intent time (keeping the current version). */
static void vm_restore_prev(const op_record_t *op, vm_record_t *vm) {
        vm_record_t prev = { 0 };
        if (vm_record_from_json(op->prev, &prev) < 0)
                return;
        prev.version = vm->version;
        vm_record_clear(vm);
        *vm = prev;
}

static void node_forget(oracle_t *o, const char *rm, const char *vm, int64_t version) {
        if (!rm || !*rm)
                return;
        json_t *body = json_pack("{s:I}", "version", (json_int_t)version), *res = NULL;
        _cleanup_free_ char *msg = NULL;
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/delete", vm);
        if (oracle_node_call(o, rm, "POST", path, body, 30000, &res, &msg) < 0)
                log_warn("could not remove %s from RM %s (%s); its lease is gone, so the node fences it", vm, rm, msg);
        json_decref(res);
        json_decref(body);
}

static int node_cmd(oracle_t *o, const char *rm, const char *vm, const char *cmd, json_t *body /* stolen */,
                    json_t **ret, char **ret_msg) {
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/%s", vm, cmd);
        int r = oracle_node_call(o, rm, "POST", path, body, NODE_CMD_TIMEOUT_MS, ret, ret_msg);
        json_decref(body);
        return r;
}

/* Starts the VM on rm from its Nest bundle (restore when pre-booted, else cold boot). */
static int run_on(oracle_t *o, op_record_t *op, vm_record_t *vm, const char *rm, json_t **ret, char **ret_msg) {
        json_t *image = image_for_node(o, vm->image);
        if (!image) {
                *ret_msg = xasprintf("image \"%s\" of vm \"%s\" is gone", vm->image, vm->name);
                return -ENOENT;
        }
        op_progress(o, op, vm->prebooted ? "restoring" : "booting");
        json_t *body = json_pack("{s:I,s:s,s:O,s:o,s:o,s:s}", "version", (json_int_t)vm->version, "mode",
                                 vm->prebooted ? "restore" : "boot", "config", json_object_get(vm->bundle, "config"),
                                 "image", image, "bundle", bundle_for_node(vm), "op", op->id);
        crash_point("oracle-before-run");
        int r = node_cmd(o, rm, vm->name, "run", body, ret, ret_msg);
        crash_point("oracle-after-run");
        return r;
}

/* The node's answer to run/resume: where the guest answers. An address that is not IPv4:PORT
 * (a confused or hostile node) is not recorded: it would reach every client of the API. */
static void take_address(vm_record_t *vm, const json_t *res) {
        const char *address = json_string_value(json_object_get(res, "address"));
        SET(vm->address, oracle_address_is_valid(address) ? address : "");
        json_int_t pid = json_integer_value(json_object_get(res, "pid"));
        vm->pid = pid > 0 && pid <= INT32_MAX ? pid : 0;
}

/* The node's answer to a save into the Nest must name both files of the bundle it uploaded;
 * anything else would record a bundle that cannot be read back. */
/* A node's word that it saved a bundle into the Nest is checked against the Nest itself: every
 * file there, with the digest reported, and no chunk missing. */
static int saved_files_check(oracle_t *o, const char *rm, const vm_record_t *vm, int64_t version, const json_t *res,
                             bool need_state, char **ret_msg) {
        const json_t *files = json_object_get(res, "files");
        free(*ret_msg);
        *ret_msg = NULL;
        if ((need_state && (!json_is_object(json_object_get(files, BUNDLE_FILE_STATE)) ||
                            !json_is_object(json_object_get(files, BUNDLE_FILE_MEMORY)))) ||
            !json_is_object(json_object_get(files, BUNDLE_FILE_DISK))) {
                *ret_msg = xasprintf("RM \"%s\" answered the save without the files of the bundle", rm);
                return -EPROTO;
        }
        return oracle_nest_check_files(o, vm->name, version, files, ret_msg);
}

static void set_nest_bundle(oracle_t *o, vm_record_t *vm, int64_t version, const json_t *files, bool prebooted) {
        vm->nest_version = version;
        vm->prebooted = prebooted;
        json_object_set(vm->bundle, "files", (json_t *)files);
        json_object_del(vm->bundle, "source"); /* a clone's own bundle from now on */
        oracle_nest_write_config(o, vm->name, version, json_object_get(vm->bundle, "config"));
}

static void clear_placement(vm_record_t *vm) {
        SET(vm->rm, "");
        SET(vm->address, "");
        vm->pid = 0;
}

/* boot and activate: [save on the origin RM into the Nest,] then run on the target RM. */
static void op_run_start(oracle_t *o, op_record_t *op, vm_record_t *vm, const char *final_state) {
        const char *target = args_str(op, "rm");
        const char *origin = args_str(op, "origin");
        _cleanup_free_ char *msg = NULL;
        json_t *res = NULL;
        int r = 0;
        const json_t *saved = json_object_get(op->args, "saved");
        if (origin && *origin && !saved) {
                /* the VM runs (or is suspended) elsewhere: it passes through the Nest at version+1 */
                op_progress(o, op, "saving");
                json_t *body = json_pack("{s:I,s:b,s:I}", "version", (json_int_t)vm->version, "upload", 1,
                                         "new_version", (json_int_t)vm->version + 1);
                r = node_cmd(o, origin, vm->name, "save", body, &res, &msg);
                if (r >= 0 && (r = saved_files_check(o, origin, vm, vm->version + 1, res, true, &msg)) < 0)
                        json_decref(res);
                if (r < 0) {
                        vm_restore_prev(op, vm);
                        op_finish(o, op, vm, false, msg, NULL, false);
                        return;
                }
                /* remember the step before the origin forgets the VM, so a re-driven op skips it */
                json_object_set(op->args, "saved", json_object_get(res, "files"));
                store_op_update(o->store, op);
                saved = json_object_get(op->args, "saved");
                json_decref(res);
                res = NULL;
                node_forget(o, origin, vm->name, vm->version + 1);
        }
        if (origin && *origin) {
                /* from here the Nest holds the VM: a failure below leaves it stored there */
                set_nest_bundle(o, vm, vm->version + 1, saved, true);
        }
        r = run_on(o, op, vm, target, &res, &msg);
        if (r < 0) {
                if (origin && *origin) {
                        SET(vm->state, "stored");
                        clear_placement(vm);
                } else {
                        vm_restore_prev(op, vm);
                }
                int64_t committed = vm->version + 1;
                op_finish(o, op, vm, false, msg, NULL, false);
                node_forget(o, target, vm->name, committed);
                return;
        }
        SET(vm->state, final_state);
        SET(vm->rm, target);
        take_address(vm, res);
        op_finish(o, op, vm, true, NULL, res, false);
}

/* suspend (keep on the RM), hibernate and deactivate (into the Nest). */
static void op_save(oracle_t *o, op_record_t *op, vm_record_t *vm, bool upload) {
        _cleanup_free_ char *msg = NULL;
        _cleanup_free_ char *rm = xstrdup(vm->rm);
        json_t *res = NULL;
        if (streq(op->kind, "deactivate") && *vm->service) {
                /* the paper's graceful deactivation: out of rotation, sessions to zero, then save */
                op_progress(o, op, "draining");
                if (oracle_switch_drain_wait(o, vm->service, vm->name, DRAIN_TIMEOUT_MS) == -ETIMEDOUT)
                        log_warn("op %s: vm %s still had sessions after %d s of draining; saving it anyway", op->id,
                                 vm->name, DRAIN_TIMEOUT_MS / 1000);
        }
        op_progress(o, op, upload ? "saving into the Nest" : "saving");
        json_t *body = json_pack("{s:I,s:b,s:I}", "version", (json_int_t)vm->version, "upload", upload, "new_version",
                                 (json_int_t)vm->version + 1);
        int r = node_cmd(o, rm, vm->name, "save", body, &res, &msg);
        crash_point("oracle-after-save");
        if (r >= 0 && upload && (r = saved_files_check(o, rm, vm, vm->version + 1, res, true, &msg)) < 0)
                json_decref(res);
        if (r < 0) {
                vm_restore_prev(op, vm);
                op_finish(o, op, vm, false, msg, NULL, false);
                return;
        }
        if (upload) {
                SET(vm->state, "stored");
                set_nest_bundle(o, vm, vm->version + 1, json_object_get(res, "files"), true);
                clear_placement(vm);
        } else {
                SET(vm->state, "suspended");
                SET(vm->address, "");
                vm->pid = 0;
        }
        int64_t committed = vm->version + 1, bundle = vm->nest_version;
        if (op_finish(o, op, vm, true, NULL, res, false) >= 0 && upload) {
                node_forget(o, rm, vm->name, committed);
                oracle_nest_prune(o, vm->name, bundle);
        }
}

static void op_resume(oracle_t *o, op_record_t *op, vm_record_t *vm) {
        _cleanup_free_ char *msg = NULL;
        json_t *res = NULL;
        rm_record_t rm = { 0 };
        store_rm_get(o->store, vm->rm, &rm);
        op_progress(o, op, "resuming");
        int r = node_cmd(o, vm->rm, vm->name, "resume", json_pack("{s:I}", "version", (json_int_t)vm->version), &res,
                         &msg);
        if (r < 0) {
                vm_restore_prev(op, vm);
                op_finish(o, op, vm, false, msg, NULL, false);
                return;
        }
        SET(vm->state, streq(rm.role, "production") ? "active" : "loading");
        take_address(vm, res);
        op_finish(o, op, vm, true, NULL, res, false);
}

static void op_stop(oracle_t *o, op_record_t *op, vm_record_t *vm) {
        _cleanup_free_ char *msg = NULL;
        _cleanup_free_ char *rm = xstrdup(vm->rm);
        json_t *res = NULL;
        op_progress(o, op, "stopping");
        int r = -ENOENT;
        if (*rm) {
                json_t *body = json_pack("{s:I,s:I}", "version", (json_int_t)vm->version, "new_version",
                                         (json_int_t)vm->version + 1);
                r = node_cmd(o, rm, vm->name, "stop", body, &res, &msg);
        }
        if (r >= 0 && json_object_size(json_object_get(res, "files")) > 0 &&
            (r = saved_files_check(o, rm, vm, vm->version + 1, res, false, &msg)) < 0) {
                json_decref(res);
                res = NULL;
        }
        bool was_failed = streq(json_string_value(json_object_get(op->prev, "state")) ?: "", "failed");
        if (r < 0 && !was_failed) {
                vm_restore_prev(op, vm);
                op_finish(o, op, vm, false, msg, NULL, false);
                return;
        }
        if (r >= 0 && json_object_get(json_object_get(res, "files"), BUNDLE_FILE_DISK)) {
                set_nest_bundle(o, vm, vm->version + 1, json_object_get(res, "files"), false);
        } else {
                /* a failed VM whose RM has nothing: it goes back to its last Nest bundle, cold */
                json_object_del(json_object_get(vm->bundle, "files"), BUNDLE_FILE_STATE);
                json_object_del(json_object_get(vm->bundle, "files"), BUNDLE_FILE_MEMORY);
                vm->prebooted = false;
                if (r < 0)
                        log_warn("vm %s: disk on RM %s unavailable (%s); using Nest version %lld", vm->name, rm,
                                 msg ? msg : "no RM", (long long)vm->nest_version);
        }
        SET(vm->state, "stored");
        clear_placement(vm);
        int64_t committed = vm->version + 1, bundle = vm->nest_version;
        if (op_finish(o, op, vm, true, NULL, res, false) >= 0) {
                node_forget(o, rm, vm->name, committed);
                oracle_nest_prune(o, vm->name, bundle);
        }
}

static void op_delete(oracle_t *o, op_record_t *op, vm_record_t *vm) {
        if (*vm->rm) {
                _cleanup_free_ char *msg = NULL;
                json_t *res = NULL;
                int r = node_cmd(o, vm->rm, vm->name, "delete", json_pack("{s:I}", "version", (json_int_t)vm->version),
                                 &res, &msg);
                json_decref(res);
                if (r < 0 && r != -EHOSTUNREACH) {
                        vm_restore_prev(op, vm);
                        op_finish(o, op, vm, false, msg, NULL, false);
                        return;
                }
        }
        _cleanup_free_ char *dir = oracle_nest_vm_dir(o, vm->name);
        if (op_finish(o, op, vm, true, NULL, NULL, true) >= 0) {
                /* its chunks go with the next garbage collection */
                oracle_nest_prune(o, vm->name, 0);
                rm_rf(dir);
        }
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
        if (streq(op.kind, "boot"))
                op_run_start(o, &op, &vm, "loading");
        else if (streq(op.kind, "activate"))
                op_run_start(o, &op, &vm, "active");
        else if (streq(op.kind, "suspend"))
                op_save(o, &op, &vm, false);
        else if (streq(op.kind, "hibernate") || streq(op.kind, "deactivate"))
                op_save(o, &op, &vm, true);
        else if (streq(op.kind, "resume"))
                op_resume(o, &op, &vm);
        else if (streq(op.kind, "stop"))
                op_stop(o, &op, &vm);
        else if (streq(op.kind, "delete"))
                op_delete(o, &op, &vm);
        else if (streq(op.kind, "migrate"))
                oracle_op_migrate(o, &op, &vm);
        else if (streq(op.kind, "migrate-live"))
                oracle_op_migrate_live(o, &op, &vm);
        else {
                vm_restore_prev(&op, &vm);
                op_finish(o, &op, &vm, false, "unknown operation kind", NULL, false);
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

/* Chooses where the VM goes for actions that place it. */
static int choose_rm(oracle_t *o, const vm_record_t *vm, vm_action_t action, const char *wanted, char *ret,
                     size_t size, char **ret_msg) {
        if (action == VM_ACTION_BOOT)
                return oracle_rm_pick(o, "chamber", wanted, vm->name, ret, size, ret_msg);
        if (action == VM_ACTION_ACTIVATE)
                return oracle_rm_pick(o, "production", wanted, vm->name, ret, size, ret_msg);
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
        r = lifecycle_check(rule->action, vm.state, vm.prebooted);
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

/* The runner helpers, for the runners kept in their own files (oracle-migrate.c). */
int oracle_op_finish(oracle_t *o, op_record_t *op, vm_record_t *vm, bool ok, const char *error, json_t *result,
                     bool delete_vm) {
        return op_finish(o, op, vm, ok, error, result, delete_vm);
}
void oracle_vm_restore_prev(const op_record_t *op, vm_record_t *vm) { vm_restore_prev(op, vm); }
void oracle_node_forget(oracle_t *o, const char *rm, const char *vm, int64_t version) { node_forget(o, rm, vm, version); }
void oracle_op_progress(oracle_t *o, op_record_t *op, const char *phase) { op_progress(o, op, phase); }
json_t *oracle_image_for_node(oracle_t *o, const char *image) { return image_for_node(o, image); }
