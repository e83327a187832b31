/* The node<->Oracle protocol, Oracle side: the JSON of every command the Oracle sends a node
 * is built here, and every answer and report a node sends is parsed and checked here into C
 * structs, so runners and handlers never touch the wire format (as qmp-commands.c does for
 * QMP). Pure: no I/O, no Oracle state, so tests/unit/test-oracle-proto.c drives it on canned
 * messages. The node's side is src/node/. */
#include "oracle/oracle-proto.h"

#include <arpa/inet.h>
#include <string.h>

#include "base/util.h"
#include "bundle/bundle.h"
#include "net/http-server.h"

/* A heartbeat lists every VM of its RM; a chamber runs many, none runs thousands. */
#define HEARTBEAT_MAX_VMS 4096
#define HEARTBEAT_MAX_SNAPSHOTS 4096

bool oracle_address_is_valid(const char *address) {
        _cleanup_free_ char *host = NULL;
        int port = 0;
        struct in_addr a;
        return address && strlen(address) < sizeof((rm_record_t){ 0 }.address) &&
               http_split_hostport(address, &host, &port) >= 0 && port > 0 && inet_pton(AF_INET, host, &a) == 1;
}

json_t *oracle_proto_version(int64_t version) { return json_pack("{s:I}", "version", (json_int_t)version); }

json_t *oracle_proto_save(int64_t version, bool upload) {
        return json_pack("{s:I,s:b,s:I}", "version", (json_int_t)version, "upload", upload, "new_version",
                         (json_int_t)version + 1);
}

json_t *oracle_proto_stop(int64_t version) {
        return json_pack("{s:I,s:I}", "version", (json_int_t)version, "new_version", (json_int_t)version + 1);
}

json_t *oracle_proto_image(const image_record_t *img) {
        return json_pack("{s:s,s:O}", "name", img->name, "files", json_object_get(img->meta, "files"));
}

/* The bundle a node starts from: none before the first save; a clone that has not saved yet
 * runs from its parent's snapshot ("vm": the parent). */
static json_t *bundle_for_node(const vm_record_t *v) {
        if (v->nest_version <= 0)
                return json_null();
        return json_pack("{s:I,s:O,s:s*}", "version", (json_int_t)v->nest_version, "files",
                         json_object_get(v->bundle, "files"), "vm",
                         json_string_value(json_object_get(v->bundle, "source")));
}

json_t *oracle_proto_run(const vm_record_t *vm, json_t *image, const char *op_id) {
        return json_pack("{s:I,s:s,s:O,s:o,s:o,s:s}", "version", (json_int_t)vm->version, "mode",
                         vm->prebooted ? "restore" : "boot", "config", json_object_get(vm->bundle, "config"), "image",
                         image, "bundle", bundle_for_node(vm), "op", op_id);
}

json_t *oracle_proto_receive(const vm_record_t *vm, const char *origin_address, const char *method,
                             const json_t *files, json_t *image, const char *op_id) {
        /* the origin is where the VM is now: vm->rm, which the destination's TLS client checks */
        return json_pack("{s:I,s:s,s:s,s:s,s:O,s:O,s:o,s:s}", "version", (json_int_t)vm->version, "origin",
                         origin_address, "origin_rm", vm->rm, "method", method, "files", files, "config",
                         json_object_get(vm->bundle, "config"), "image", image, "op", op_id);
}

json_t *oracle_proto_live_receive(const vm_record_t *vm, json_t *image, const char *op_id) {
        /* the origin is where the VM is now: the destination's QEMU allows only its certificate */
        return json_pack("{s:I,s:O,s:o,s:s,s:s}", "version", (json_int_t)vm->version, "config",
                         json_object_get(vm->bundle, "config"), "image", image, "op", op_id, "origin_rm", vm->rm);
}

json_t *oracle_proto_live_send(int64_t version, const json_t *endpoint, const char *target_rm, const char *op_id) {
        return json_pack("{s:I,s:O,s:s,s:s}", "version", (json_int_t)version, "endpoint", endpoint, "target_rm",
                         target_rm, "op", op_id);
}

void oracle_proto_started_parse(const json_t *res, oracle_started_t *ret) {
        const char *address = json_string_value(json_object_get(res, "address"));
        *ret = (oracle_started_t){ 0 };
        /* an address that is not IPv4:PORT (a confused or hostile node) is not recorded: it
         * would reach every client of the API */
        if (oracle_address_is_valid(address))
                SET(ret->address, address);
        json_int_t pid = json_integer_value(json_object_get(res, "pid"));
        ret->pid = pid > 0 && pid <= INT32_MAX ? pid : 0;
}

int oracle_proto_saved_parse(const json_t *res, bool need_state, const json_t **ret_files) {
        const json_t *files = json_object_get(res, "files");
        if (!json_is_object(files) || !json_is_object(json_object_get(files, BUNDLE_FILE_DISK)) ||
            (need_state && (!json_is_object(json_object_get(files, BUNDLE_FILE_STATE)) ||
                            !json_is_object(json_object_get(files, BUNDLE_FILE_MEMORY)))))
                return -EPROTO;
        const char *name;
        const json_t *info;
        json_object_foreach((json_t *)files, name, info)
                if (!json_is_object(info) || !bundle_sha256_is_valid(json_string_value(json_object_get(info, "digest"))))
                        return -EPROTO;
        *ret_files = files;
        return 0;
}

int oracle_proto_received_parse(const json_t *res, int64_t version, oracle_received_t *ret) {
        if (!json_is_integer(json_object_get(res, "version")) ||
            json_integer_value(json_object_get(res, "version")) != version)
                return -EPROTO;
        json_int_t done = json_integer_value(json_object_get(res, "bytes_transferred"));
        json_int_t total = json_integer_value(json_object_get(res, "bytes_total"));
        *ret = (oracle_received_t){ .bytes_transferred = done > 0 ? done : 0, .bytes_total = total > 0 ? total : 0 };
        return 0;
}

bool oracle_proto_methods_has(const json_t *res, const char *method) {
        size_t i;
        const json_t *m;
        json_array_foreach(json_object_get(res, "methods"), i, m) if (json_is_string(m) && streq(json_string_value(m), method)) return true;
        return false;
}

/* -EINVAL unless vms is an array of at most HEARTBEAT_MAX_VMS objects, each with a VM name
 * and a state; the message names the first problem. */
static int heartbeat_vms_check(const json_t *vms, char **ret_msg) {
        if (!json_is_array(vms)) {
                *ret_msg = xstrdup("vms must be an array");
                return -EINVAL;
        }
        if (json_array_size(vms) > HEARTBEAT_MAX_VMS) {
                *ret_msg = xasprintf("vms lists %zu VMs; an RM reports at most %d", json_array_size(vms),
                                     HEARTBEAT_MAX_VMS);
                return -ERANGE;
        }
        size_t i;
        const json_t *v;
        json_array_foreach(vms, i, v) {
                if (!json_is_object(v) || !name_is_valid(json_string_value(json_object_get(v, "name"))) ||
                    !json_is_string(json_object_get(v, "state"))) {
                        *ret_msg = xasprintf("vms[%zu] must be an object with a VM name and a state", i);
                        return -EINVAL;
                }
        }
        return 0;
}

/* capacity as oracle-proto.h says it: *ret_has false when absent or null, else *ret filled;
 * -EINVAL and a message naming the member otherwise. */
static int heartbeat_capacity_parse(const json_t *capacity, bool *ret_has, oracle_capacity_t *ret, char **ret_msg) {
        if (!capacity || json_is_null(capacity)) {
                *ret_has = false;
                *ret = (oracle_capacity_t){ 0 };
                return 0;
        }
        if (!json_is_object(capacity)) {
                *ret_msg = xstrdup("capacity must be an object {memory_mib, vcpus, disk_gib}");
                return -EINVAL;
        }
        const struct {
                const char *key;
                int64_t min;
        } members[] = { { "memory_mib", 1 }, { "vcpus", 1 }, { "disk_gib", 0 } };
        int64_t v[ELEMENTSOF(members)];
        for (size_t i = 0; i < ELEMENTSOF(members); i++) {
                const json_t *m = json_object_get(capacity, members[i].key);
                if (!json_is_integer(m) || json_integer_value(m) < members[i].min ||
                    json_integer_value(m) > ORACLE_CAPACITY_MAX) {
                        *ret_msg = xasprintf("capacity.%s must be a whole number from %lld to %lld", members[i].key,
                                             (long long)members[i].min, (long long)ORACLE_CAPACITY_MAX);
                        return -EINVAL;
                }
                v[i] = json_integer_value(m);
        }
        *ret_has = true;
        *ret = (oracle_capacity_t){ .memory_mib = v[0], .vcpus = v[1], .disk_gib = v[2] };
        return 0;
}

int oracle_proto_heartbeat_parse(const json_t *body, oracle_heartbeat_t *ret, char **ret_msg) {
        const char *role = json_string_value(json_object_get(body, "role"));
        const char *address = json_string_value(json_object_get(body, "address"));
        if (!role || (!streq(role, "production") && !streq(role, "chamber")) || !oracle_address_is_valid(address)) {
                *ret_msg = xstrdup("heartbeat needs role (production|chamber) and address (IPv4:PORT)");
                return -EINVAL;
        }
        const json_t *vms = json_object_get(body, "vms");
        int r = vms ? heartbeat_vms_check(vms, ret_msg) : 0;
        if (r < 0)
                return r;
        const json_t *snapshots = json_object_get(body, "snapshots");
        if (snapshots && (!json_is_array(snapshots) || json_array_size(snapshots) > HEARTBEAT_MAX_SNAPSHOTS)) {
                *ret_msg = xasprintf("snapshots must be an array of at most %d digests", HEARTBEAT_MAX_SNAPSHOTS);
                return -EINVAL;
        }
        const json_t *fw = json_object_get(body, "guest_firewall");
        if (fw && !json_is_boolean(fw)) {
                *ret_msg = xstrdup("guest_firewall must be true or false");
                return -EINVAL;
        }
        const json_t *confined = json_object_get(body, "confined");
        const json_t *reason = json_object_get(body, "confine_reason");
        if ((confined && !json_is_boolean(confined) && !json_is_null(confined)) ||
            (reason && !json_is_null(reason) &&
             (!json_is_string(reason) || strlen(json_string_value(reason)) > ORACLE_CONFINE_REASON_MAX))) {
                *ret_msg = xasprintf("confined must be a boolean and confine_reason a string of at most %d bytes",
                                     ORACLE_CONFINE_REASON_MAX);
                return -EINVAL;
        }
        bool has_capacity = false;
        oracle_capacity_t capacity;
        r = heartbeat_capacity_parse(json_object_get(body, "capacity"), &has_capacity, &capacity, ret_msg);
        if (r < 0)
                return r;
        *ret = (oracle_heartbeat_t){ .role = role,
                                     .address = address,
                                     .vms = vms,
                                     .snapshots = snapshots,
                                     .guest_firewall = fw ? json_is_true(fw) : -1,
                                     .confined = json_is_boolean(confined) ? json_is_true(confined) : -1,
                                     .confine_reason = json_string_value(reason),
                                     .has_capacity = has_capacity,
                                     .capacity = capacity };
        return 0;
}

int oracle_proto_op_progress_parse(const json_t *body, int64_t *ret_done, int64_t *ret_total) {
        const json_t *done = json_object_get(body, "done"), *total = json_object_get(body, "total");
        if (!json_is_integer(done) || !json_is_integer(total) || json_integer_value(done) < 0 ||
            json_integer_value(total) < 0)
                return -EINVAL;
        *ret_done = json_integer_value(done);
        *ret_total = json_integer_value(total);
        return 0;
}
