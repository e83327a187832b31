/* Harness: a command body as a node reads it (node/node-proto.h). The first byte of the input
 * picks the command (run, save, ... balloon, and one past the last, which must be refused);
 * the rest is the body of POST /v1/vms/web1/COMMAND, loaded as the HTTP server loads it, but
 * any JSON value gets through (node_proto_parse takes any). The node is the one of the Oracle
 * at 127.0.0.1:7100. Checked: a refusal is -EINVAL or -ERANGE with a message and leaves the
 * result untouched (never a half-filled struct); an accepted command holds what the parser
 * promises: a version in range, vm.json of web1 that converts back to the same vm.json, the
 * image vm.json names, a restore with state and memory, new versions above the version, an
 * origin host:port, a live endpoint of IPv4 and ports 1..65535. */
#include <arpa/inet.h>
#include <stdbool.h>

#include "base/util.h"
#include "bundle/bundle.h"
#include "fuzz.h"
#include "net/http-server.h"
#include "node/node-proto.h"

#define VM "web1"
#define ORACLE "127.0.0.1:7100"

/* vm.json accepted once is accepted again, unchanged, after a trip through JSON. */
static void check_config(const bundle_config_t *bc) {
        FUZZ_CHECK(streq(bc->name, VM));
        json_t *j = bundle_config_to_json(bc);
        bundle_config_t again = { 0 };
        FUZZ_CHECK(j && bundle_config_from_json(j, &again) == 0);
        FUZZ_CHECK(memcmp(bc, &again, sizeof again) == 0);
        json_decref(j);
}

static void check_run(const node_cmd_run_t *c) {
        FUZZ_CHECK(c->mode == NODE_RUN_BOOT || c->mode == NODE_RUN_RESTORE);
        check_config(&c->bc);
        FUZZ_CHECK(streq(json_string_value(json_object_get(c->image, "name")), c->bc.image));
        FUZZ_CHECK(json_is_object(json_object_get(c->image, "files")));
        FUZZ_CHECK(!c->bundle == !c->files);
        FUZZ_CHECK(!c->bundle || (json_is_object(c->files) && c->bundle_version >= 1 &&
                                  c->bundle_version <= BUNDLE_VERSION_MAX));
        if (c->mode == NODE_RUN_RESTORE)
                FUZZ_CHECK(json_object_get(c->files, BUNDLE_FILE_STATE) &&
                           json_object_get(c->files, BUNDLE_FILE_MEMORY));
        FUZZ_CHECK(name_is_valid(c->source));
        FUZZ_CHECK(!c->op || name_is_valid(c->op));
}

static void check_receive(const node_cmd_receive_t *c) {
        char *host = NULL;
        int port = 0;
        FUZZ_CHECK(c->origin && http_split_hostport(c->origin, &host, &port) == 0);
        free(host);
        FUZZ_CHECK(c->method == NODE_RECEIVE_CHUNKS || c->method == NODE_RECEIVE_FULL);
        FUZZ_CHECK(json_is_object(c->files) && json_is_object(c->image));
        FUZZ_CHECK(!c->op || name_is_valid(c->op));
        FUZZ_CHECK(!c->origin_rm || name_is_valid(c->origin_rm));
        check_config(&c->bc);
}

static void check_command(const node_cmd_t *c, node_cmd_kind_t kind) {
        FUZZ_CHECK(c->kind == kind);
        if (kind != NODE_CMD_BALLOON)
                FUZZ_CHECK(c->version >= 1 && c->version <= BUNDLE_VERSION_MAX);
        struct in_addr a;
        switch (kind) {
        case NODE_CMD_RUN: check_run(&c->run); break;
        case NODE_CMD_SAVE:
                FUZZ_CHECK(c->save.upload ? c->save.new_version > c->version : c->save.new_version == 0);
                break;
        case NODE_CMD_STOP: FUZZ_CHECK(c->stop.new_version > c->version); break;
        case NODE_CMD_RECEIVE: check_receive(&c->receive); break;
        case NODE_CMD_LIVE_RECEIVE:
                check_config(&c->live_receive.bc);
                FUZZ_CHECK(json_is_object(c->live_receive.image));
                break;
        case NODE_CMD_LIVE_SEND:
                FUZZ_CHECK(inet_pton(AF_INET, c->live_send.endpoint.host, &a) == 1);
                FUZZ_CHECK(c->live_send.endpoint.migrate_port >= 1 && c->live_send.endpoint.migrate_port <= 65535);
                FUZZ_CHECK(c->live_send.endpoint.nbd_port >= 1 && c->live_send.endpoint.nbd_port <= 65535);
                break;
        case NODE_CMD_BALLOON: FUZZ_CHECK(c->balloon.has_target || c->balloon.target_mib == -1); break;
        default: break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        node_cmd_kind_t kind = (node_cmd_kind_t)(data[0] % (NODE_CMD_MAX + 1));
        json_t *body = fuzz_json_answer(data + 1, size - 1);
        node_cmd_t c, untouched;
        memset(&c, 0xa5, sizeof c);
        untouched = c;
        char *msg = NULL;
        int r = node_proto_parse(kind, body, VM, ORACLE, &c, &msg);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -ERANGE);
                FUZZ_CHECK(msg && *msg);
                FUZZ_CHECK(memcmp(&c, &untouched, sizeof c) == 0);
        } else {
                FUZZ_CHECK(r == 0 && !msg && kind < NODE_CMD_MAX);
                check_command(&c, kind);
        }
        /* the message reaches the Oracle in an error answer: it must be able to go into JSON */
        if (msg) {
                utf8_sanitize(msg);
                json_t *s = json_string(msg);
                FUZZ_CHECK(s);
                json_decref(s);
        }
        free(msg);
        json_decref(body);
        return 0;
}
