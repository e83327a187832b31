/* JSON of the node<->Oracle protocol, node side (see node-proto.h): the commands the Oracle
 * sends, parsed into C structs with every field checked, and the node's answers. The
 * messages of a refused command are the node API's error messages: they name the field. */
#include "node/node-proto.h"

#include <arpa/inet.h>
#include <string.h>

#include "base/util.h"
#include "net/http-server.h"

/* An origin's host:port is at most a DNS name and a port. */
#define NODE_PROTO_ORIGIN_MAX 262

static const char *const node_proto_kind_names[] = {
        [NODE_CMD_RUN] = "run",
        [NODE_CMD_SAVE] = "save",
        [NODE_CMD_RESUME] = "resume",
        [NODE_CMD_STOP] = "stop",
        [NODE_CMD_DELETE] = "delete",
        [NODE_CMD_STAGE] = "stage",
        [NODE_CMD_RECEIVE] = "receive",
        [NODE_CMD_LIVE_RECEIVE] = "live-receive",
        [NODE_CMD_LIVE_SEND] = "live-send",
        [NODE_CMD_LIVE_FINISH] = "live-finish",
        [NODE_CMD_LIVE_ABORT] = "live-abort",
        [NODE_CMD_BALLOON] = "balloon",
};

static const char *const node_proto_method_names[] = {
        [NODE_RECEIVE_CHUNKS] = "chunks",
        [NODE_RECEIVE_FULL] = "full",
};

const char *node_proto_kind_name(node_cmd_kind_t kind) {
        return (size_t)kind < ELEMENTSOF(node_proto_kind_names) ? node_proto_kind_names[kind] : "unknown";
}

/* A version field (see bundle_version_from_json); what is the command for the message. */
static int parse_version(const json_t *body, const char *key, const char *what, int64_t *ret, char **ret_msg) {
        int r = bundle_version_from_json(json_object_get(body, key), ret);
        if (r < 0)
                *ret_msg = xasprintf("%s needs \"%s\", an integer from 1 to %lld", what, key, (long long)BUNDLE_VERSION_MAX);
        return r;
}

/* new_version, after version: what is the command for the messages. */
static int parse_new_version(const json_t *body, const char *what, const char *kind, int64_t version, int64_t *ret,
                             char **ret_msg) {
        int r = parse_version(body, "new_version", what, ret, ret_msg);
        if (r >= 0 && *ret <= version) {
                *ret_msg = xasprintf("%s needs new_version > version", kind);
                r = -EINVAL;
        }
        return r;
}

/* save and stop upload to the Nest of this node's Oracle. A command may name it ("nest") but
 * not another host: that would send the VM's memory and disk wherever the caller likes. */
static int parse_nest(const json_t *body, const char *oracle, char **ret_msg) {
        const json_t *nest = json_object_get(body, "nest");
        if (!nest || json_is_null(nest) || (json_is_string(nest) && streq(json_string_value(nest), oracle)))
                return 0;
        *ret_msg = xasprintf("nest must be this RM's Oracle (%s)", oracle);
        return -EINVAL;
}

/* An optional operation name: NULL when absent (or not a string). */
static const char *op_of(const json_t *body) { return json_string_value(json_object_get(body, "op")); }

/* vm.json of the VM name. */
static bool config_is_for(const json_t *config, const char *name, bundle_config_t *ret) {
        return bundle_config_from_json(config, ret) >= 0 && streq(ret->name, name);
}

/* Everything in a run command that can be checked before it touches the VM, so that a
 * malformed command changes nothing (no entry, no directory, no killed QEMU). */
static int parse_run(const json_t *body, const char *name, node_cmd_run_t *ret, char **ret_msg) {
        node_cmd_run_t c = { .config = json_object_get(body, "config"), .image = json_object_get(body, "image") };
        const char *mode = json_string_value(json_object_get(body, "mode"));
        if (!mode || (!streq(mode, "boot") && !streq(mode, "restore"))) {
                *ret_msg = xstrdup("run needs mode boot or restore");
                return -EINVAL;
        }
        c.mode = streq(mode, "boot") ? NODE_RUN_BOOT : NODE_RUN_RESTORE;
        if (bundle_config_from_json(c.config, &c.bc) < 0) {
                *ret_msg = xasprintf("vm \"%s\": malformed vm.json (config)", name);
                return -EINVAL;
        }
        if (!streq(c.bc.name, name)) {
                *ret_msg = xasprintf("vm.json is the config of vm \"%s\", not of \"%s\"", c.bc.name, name);
                return -EINVAL;
        }
        const char *image_name = json_string_value(json_object_get(c.image, "name"));
        if (!image_name || !streq(image_name, c.bc.image) || !json_is_object(json_object_get(c.image, "files"))) {
                *ret_msg = xasprintf("run needs image {name, files} for image \"%s\" of vm.json", c.bc.image);
                return -EINVAL;
        }
        const json_t *bundle = json_object_get(body, "bundle");
        if (bundle && !json_is_null(bundle)) {
                const json_t *source = json_object_get(bundle, "vm");
                c.bundle = bundle;
                c.files = json_object_get(bundle, "files");
                if (bundle_version_from_json(json_object_get(bundle, "version"), &c.bundle_version) < 0 ||
                    !json_is_object(c.files) ||
                    (source && !json_is_null(source) &&
                     (!json_is_string(source) || !name_is_valid(json_string_value(source))))) {
                        *ret_msg = xstrdup("run needs bundle null or {version, files[, vm]}");
                        return -EINVAL;
                }
                c.source = json_string_value(source);
        }
        if (c.mode == NODE_RUN_RESTORE &&
            (!json_object_get(c.files, BUNDLE_FILE_STATE) || !json_object_get(c.files, BUNDLE_FILE_MEMORY))) {
                *ret_msg = xasprintf("vm \"%s\": restore needs a bundle with saved state and memory", name);
                return -EINVAL;
        }
        if (!c.source)
                c.source = name;
        /* progress reports are best effort: an op that is no name is not used (nor refused) */
        c.op = name_is_valid(op_of(body)) ? op_of(body) : NULL;
        *ret = c;
        return 0;
}

static int parse_save(const json_t *body, int64_t version, const char *oracle, node_cmd_save_t *ret, char **ret_msg) {
        node_cmd_save_t c = { 0 };
        const json_t *up = json_object_get(body, "upload");
        int r = 0;
        if (up && !json_is_boolean(up)) {
                *ret_msg = xstrdup("save needs upload true or false");
                return -EINVAL;
        }
        c.upload = json_is_true(up);
        if (c.upload)
                r = parse_new_version(body, "save into the Nest", "save", version, &c.new_version, ret_msg);
        if (r >= 0)
                r = parse_nest(body, oracle, ret_msg);
        if (r >= 0)
                *ret = c;
        return r;
}

static int parse_stop(const json_t *body, int64_t version, const char *oracle, node_cmd_stop_t *ret, char **ret_msg) {
        node_cmd_stop_t c = { 0 };
        int r = parse_new_version(body, "stop", "stop", version, &c.new_version, ret_msg);
        if (r >= 0)
                r = parse_nest(body, oracle, ret_msg);
        if (r >= 0)
                *ret = c;
        return r;
}

static int parse_receive(const json_t *body, const char *name, node_cmd_receive_t *ret, char **ret_msg) {
        node_cmd_receive_t c = {
                .origin = json_string_value(json_object_get(body, "origin")),
                .origin_rm = json_string_value(json_object_get(body, "origin_rm")),
                .files = json_object_get(body, "files"),
                .config = json_object_get(body, "config"),
                .image = json_object_get(body, "image"),
                .op = op_of(body),
        };
        const char *method = json_string_value(json_object_get(body, "method"));
        _cleanup_free_ char *host = NULL;
        int port = 0;
        if (!c.origin || strlen(c.origin) > NODE_PROTO_ORIGIN_MAX || http_split_hostport(c.origin, &host, &port) < 0 ||
            !method || (!streq(method, "chunks") && !streq(method, "full")) || !json_is_object(c.files) ||
            !config_is_for(c.config, name, &c.bc) || !json_is_object(c.image) || (c.op && !name_is_valid(c.op)) ||
            (c.origin_rm && !name_is_valid(c.origin_rm))) {
                *ret_msg = xstrdup("receive needs version, origin (host:port), method (chunks|full), files, config, "
                                   "image and op");
                return -EINVAL;
        }
        c.method = streq(method, "chunks") ? NODE_RECEIVE_CHUNKS : NODE_RECEIVE_FULL;
        *ret = c;
        return 0;
}

static int parse_live_receive(const json_t *body, const char *name, node_cmd_live_receive_t *ret, char **ret_msg) {
        node_cmd_live_receive_t c = { .config = json_object_get(body, "config"), .image = json_object_get(body, "image"),
                                      .origin_rm = json_string_value(json_object_get(body, "origin_rm")) };
        if (!config_is_for(c.config, name, &c.bc) || !json_is_object(c.image) || !name_is_valid(c.origin_rm)) {
                *ret_msg = xstrdup("live-receive needs version, config (the VM's vm.json), image and origin_rm (the "
                                   "sending RM's name)");
                return -EINVAL;
        }
        *ret = c;
        return 0;
}

static int parse_endpoint(const json_t *j, vmm_live_endpoint_t *ep) {
        const char *host = json_string_value(json_object_get(j, "host"));
        const json_t *mp = json_object_get(j, "migrate_port"), *np = json_object_get(j, "nbd_port");
        struct in_addr a;
        if (!host || strlen(host) >= sizeof ep->host || inet_pton(AF_INET, host, &a) != 1 || !json_is_integer(mp) ||
            !json_is_integer(np) || json_integer_value(mp) < 1 || json_integer_value(mp) > 65535 ||
            json_integer_value(np) < 1 || json_integer_value(np) > 65535)
                return -EINVAL;
        *ep = (vmm_live_endpoint_t){ .migrate_port = (int)json_integer_value(mp), .nbd_port = (int)json_integer_value(np) };
        snprintf(ep->host, sizeof ep->host, "%s", host);
        return 0;
}

static int parse_live_send(const json_t *body, node_cmd_live_send_t *ret, char **ret_msg) {
        node_cmd_live_send_t c = { .target_rm = json_string_value(json_object_get(body, "target_rm")) };
        if (parse_endpoint(json_object_get(body, "endpoint"), &c.endpoint) < 0 || !name_is_valid(c.target_rm)) {
                *ret_msg = xstrdup("live-send needs version, endpoint {host (IPv4), migrate_port, nbd_port} and "
                                   "target_rm (the receiving RM's name)");
                return -EINVAL;
        }
        *ret = c;
        return 0;
}

static void parse_balloon(const json_t *body, node_cmd_balloon_t *ret) {
        const json_t *t = json_object_get(body, "target_mib");
        *ret = (node_cmd_balloon_t){ .has_target = t != NULL, .target_mib = json_is_integer(t) ? json_integer_value(t) : -1 };
}

int node_proto_parse(node_cmd_kind_t kind, const json_t *body, const char *name, const char *oracle, node_cmd_t *ret,
                     char **ret_msg) {
        node_cmd_t c = { .kind = kind };
        int r = 0;
        if ((size_t)kind >= NODE_CMD_MAX || !name_is_valid(name)) {
                *ret_msg = xasprintf("no command %s for vm \"%s\"", node_proto_kind_name(kind), name ? name : "");
                return -EINVAL;
        }
        if (kind != NODE_CMD_BALLOON)
                r = parse_version(body, "version", node_proto_kind_name(kind), &c.version, ret_msg);
        if (r < 0)
                return r;
        switch (kind) {
        case NODE_CMD_RUN: r = parse_run(body, name, &c.run, ret_msg); break;
        case NODE_CMD_SAVE: r = parse_save(body, c.version, oracle, &c.save, ret_msg); break;
        case NODE_CMD_STOP: r = parse_stop(body, c.version, oracle, &c.stop, ret_msg); break;
        case NODE_CMD_RECEIVE: r = parse_receive(body, name, &c.receive, ret_msg); break;
        case NODE_CMD_LIVE_RECEIVE: r = parse_live_receive(body, name, &c.live_receive, ret_msg); break;
        case NODE_CMD_LIVE_SEND: r = parse_live_send(body, &c.live_send, ret_msg); break;
        case NODE_CMD_BALLOON: parse_balloon(body, &c.balloon); break;
        default: break; /* the version is all there is */
        }
        if (r >= 0)
                *ret = c;
        return r;
}

json_t *node_proto_started(int64_t pid, const char *address) {
        return json_pack("{s:I,s:s}", "pid", (json_int_t)pid, "address", address);
}

json_t *node_proto_run_answer(json_t *started, int64_t fetch_ms, int64_t start_ms, const nest_transfer_stats_t *moved) {
        json_object_set_new(started, "fetch_ms", json_integer(fetch_ms));
        json_object_set_new(started, "start_ms", json_integer(start_ms));
        json_object_set_new(started, "transfer",
                            json_pack("{s:I,s:I,s:I,s:I}", "bytes_total", (json_int_t)moved->bytes_total,
                                      "bytes_transferred", (json_int_t)moved->bytes_transferred, "chunks_total",
                                      (json_int_t)moved->chunks_total, "chunks_transferred",
                                      (json_int_t)moved->chunks_transferred));
        return started;
}

json_t *node_proto_files_answer(json_t *files) { return json_pack("{s:o}", "files", files); }

json_t *node_proto_receive_answer(int64_t version, node_receive_method_t method, const nest_transfer_stats_t *moved,
                                  double seconds) {
        return json_pack("{s:I,s:s,s:I,s:I,s:f}", "version", (json_int_t)version, "method",
                         node_proto_method_names[method], "bytes_transferred", (json_int_t)moved->bytes_transferred,
                         "bytes_total", (json_int_t)moved->bytes_total, "seconds", seconds);
}

json_t *node_proto_live_receive_answer(const vmm_live_endpoint_t *ep) {
        return json_pack("{s:{s:s,s:i,s:i}}", "endpoint", "host", ep->host, "migrate_port", ep->migrate_port,
                         "nbd_port", ep->nbd_port);
}

json_t *node_proto_live_send_answer(const vmm_live_stats_t *st) {
        return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "bytes_transferred", (json_int_t)(st->ram_bytes + st->disk_bytes),
                         "bytes_total", (json_int_t)(st->ram_bytes + st->disk_bytes), "ram_bytes",
                         (json_int_t)st->ram_bytes, "disk_bytes", (json_int_t)st->disk_bytes, "downtime_ms",
                         (json_int_t)st->downtime_ms, "total_ms", (json_int_t)st->total_ms);
}

json_t *node_proto_balloon_answer(int64_t memory_mib, int64_t target_mib, int64_t actual_mib, bool reclaimable) {
        return json_pack("{s:I,s:I,s:I,s:b}", "memory_mib", (json_int_t)memory_mib, "target_mib", (json_int_t)target_mib,
                         "actual_mib", (json_int_t)actual_mib, "reclaimable", reclaimable);
}

json_t *node_proto_describe(const char *name, int64_t version, const char *state, int64_t pid, const char *address,
                            const vmm_stats_t *st) {
        json_t *j = json_pack("{s:s,s:I,s:s,s:I,s:s?}", "name", name, "version", (json_int_t)version, "state", state,
                              "pid", (json_int_t)pid, "address", address && *address ? address : NULL);
        if (st)
                json_object_set_new(j, "stats",
                                    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "cpu_ns", (json_int_t)st->cpu_ns, "rss_bytes",
                                              (json_int_t)st->rss_bytes, "block_rd_bytes",
                                              (json_int_t)st->block_rd_bytes, "block_wr_bytes",
                                              (json_int_t)st->block_wr_bytes, "net_rx_bytes",
                                              (json_int_t)st->net_rx_bytes, "net_tx_bytes",
                                              (json_int_t)st->net_tx_bytes));
        return j;
}

json_t *node_proto_busy(const char *name) { return json_pack("{s:s,s:s}", "name", name, "state", "busy"); }

json_t *node_proto_health(const char *name, const char *role, const char *accel) {
        return json_pack("{s:b,s:s,s:s,s:s}", "ok", 1, "name", name, "role", role, "accel", accel);
}

json_t *node_proto_methods(void) {
        return json_pack("{s:[s,s]}", "methods", node_proto_method_names[NODE_RECEIVE_CHUNKS],
                         node_proto_method_names[NODE_RECEIVE_FULL]);
}

json_t *node_proto_heartbeat(const char *role, const char *address, const char *accel, json_t *vms, json_t *snapshots) {
        return json_pack("{s:s,s:s,s:s,s:o,s:o}", "role", role, "address", address, "accel", accel, "vms", vms,
                         "snapshots", snapshots);
}

void node_proto_heartbeat_confinement(json_t *heartbeat, bool confined, const char *reason) {
        json_object_set_new(heartbeat, "confined", json_boolean(confined));
        json_object_set_new(heartbeat, "confine_reason", reason && *reason ? json_string(reason) : json_null());
}

void node_proto_heartbeat_guest_firewall(json_t *heartbeat, bool on) {
        json_object_set_new(heartbeat, "guest_firewall", json_boolean(on));
}

void node_proto_heartbeat_capacity(json_t *heartbeat, const node_capacity_t *capacity) {
        json_object_set_new(heartbeat, "capacity",
                            json_pack("{s:I,s:I,s:I}", "memory_mib", (json_int_t)capacity->memory_mib, "vcpus",
                                      (json_int_t)capacity->vcpus, "disk_gib", (json_int_t)capacity->disk_gib));
}

const json_t *node_proto_heartbeat_leases(const json_t *answer) {
        const json_t *leases = json_object_get(answer, "leases");
        return json_is_object(leases) ? leases : NULL;
}

json_t *node_proto_progress(uint64_t done, uint64_t total) {
        return json_pack("{s:I,s:I}", "done", (json_int_t)done, "total", (json_int_t)total);
}
