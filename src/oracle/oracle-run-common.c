/* What several runners do with a VM record and a node's answers: start a VM on an RM, take the
 * address a node reports, check a save against the Nest, record a new Nest bundle, clear a
 * placement. Uses only the engine, the Nest's checks and the protocol module. */
#include <string.h>

#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"

json_t *oracle_image_for_node(oracle_t *o, const char *image) {
        image_record_t img = { 0 };
        if (store_image_get(o->store, image, &img) < 0)
                return NULL;
        json_t *j = oracle_proto_image(&img);
        image_record_clear(&img);
        return j;
}

int oracle_run_on(oracle_t *o, op_record_t *op, vm_record_t *vm, const char *rm, json_t **ret, char **ret_msg) {
        json_t *image = oracle_image_for_node(o, vm->image);
        if (!image) {
                *ret_msg = xasprintf("image \"%s\" of vm \"%s\" is gone", vm->image, vm->name);
                return -ENOENT;
        }
        oracle_op_progress(o, op, vm->prebooted ? "restoring" : "booting");
        json_t *body = oracle_proto_run(vm, image, op->id);
        crash_point("oracle-before-run");
        int r = oracle_node_cmd(o, rm, vm->name, "run", body, 0, ret, ret_msg);
        crash_point("oracle-after-run");
        return r;
}

void oracle_run_take_address(vm_record_t *vm, const json_t *res) {
        oracle_started_t st;
        oracle_proto_started_parse(res, &st);
        SET(vm->address, st.address);
        vm->pid = st.pid;
}

int oracle_run_saved_check(oracle_t *o, const char *rm, const vm_record_t *vm, int64_t version, const json_t *res,
                           bool need_state, const json_t **ret_files, char **ret_msg) {
        const json_t *files = NULL;
        free(*ret_msg);
        *ret_msg = NULL;
        if (oracle_proto_saved_parse(res, need_state, &files) < 0) {
                *ret_msg = xasprintf("RM \"%s\" answered the save without the files of the bundle", rm);
                return -EPROTO;
        }
        int r = oracle_nest_check_files(o, vm->name, version, files, ret_msg);
        if (r >= 0 && ret_files)
                *ret_files = files;
        return r;
}

void oracle_run_set_nest_bundle(oracle_t *o, vm_record_t *vm, int64_t version, const json_t *files, bool prebooted) {
        vm->nest_version = version;
        vm->prebooted = prebooted;
        json_object_set(vm->bundle, "files", (json_t *)files);
        json_object_del(vm->bundle, "source"); /* a clone's own bundle from now on */
        oracle_nest_write_config(o, vm->name, version, json_object_get(vm->bundle, "config"));
}

void oracle_run_clear_placement(vm_record_t *vm) {
        SET(vm->rm, "");
        SET(vm->address, "");
        vm->pid = 0;
}

void oracle_run_prune(oracle_t *o, const op_record_t *op, const vm_record_t *vm, int64_t keep_version) {
        oracle_nest_prune(o, vm->name, keep_version);
        const char *source = json_string_value(json_object_get(json_object_get(op->prev, "bundle"), "source"));
        if (!source || json_object_get(vm->bundle, "source"))
                return;
        /* the clone saved a bundle of its own and no longer maps its parent's snapshot: that
         * version may go now, unless the parent or another clone still needs it (the prune
         * checks) */
        vm_record_t parent = { 0 };
        int64_t keep = store_vm_get(o->store, source, &parent) >= 0 ? parent.nest_version : 0;
        vm_record_clear(&parent);
        oracle_nest_prune(o, source, keep);
}
