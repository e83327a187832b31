/* Unit tests for the node's side of the node<->Oracle protocol (src/node/node-proto.c), on
 * canned messages as the Oracle sends them: every command valid, every required field
 * missing, fields of the wrong type, versions out of range, over-long strings, garbage JSON,
 * and the JSON of the node's answers. */
#include <jansson.h>
#include <string.h>

#include "base/util.h"
#include "node/node-proto.h"
#include "tap.h"

#define ORACLE "http://127.0.0.1:7000"
#define CONFIG                                                                                                  \
        "{\"name\": \"web1\", \"mac\": \"52:54:00:12:34:56\", \"image\": \"alpine\", \"boot\": \"kernel\", " \
        "\"cmdline\": \"console=ttyS0\", \"memory_mib\": 256, \"vcpus\": 1, \"disk_size_mib\": 512}"
#define IMAGE "{\"name\": \"alpine\", \"files\": {\"vmlinuz\": {\"digest\": \"x\", \"size\": 1}}}"
#define FILES "{\"state\": {\"digest\": \"a\"}, \"disk\": {\"digest\": \"b\"}, \"memory\": {\"digest\": \"c\"}}"
#define BUNDLE "{\"version\": 3, \"files\": " FILES "}"

/* The body of the last parse: the struct borrows from it until the next parse. */
static json_t *last_body;

/* Parses text (JSON, garbage or NULL) as a command of kind for vm "web1". */
static int parse(node_cmd_kind_t kind, const char *text, node_cmd_t *ret, char **ret_msg) {
        json_decref(last_body);
        last_body = text ? json_loads(text, 0, NULL) : NULL;
        free(*ret_msg);
        *ret_msg = NULL;
        return node_proto_parse(kind, last_body, "web1", ORACLE, ret, ret_msg);
}

/* The command is refused with r and a message that contains want. */
static void check_refused(node_cmd_kind_t kind, const char *text, int r_want, const char *want) {
        node_cmd_t c;
        _cleanup_free_ char *msg = NULL;
        int r = parse(kind, text, &c, &msg);
        CHECK(r == r_want);
        CHECK(msg && strstr(msg, want));
        if (r != r_want || !msg || !strstr(msg, want))
                fprintf(stderr, "  %s %s: %d %s\n", node_proto_kind_name(kind), text ? text : "(null)", r,
                        msg ? msg : "(no message)");
}

static void test_run(void) {
        node_cmd_t c;
        _cleanup_free_ char *msg = NULL;
        CHECK(parse(NODE_CMD_RUN,
                    "{\"version\": 4, \"mode\": \"restore\", \"config\": " CONFIG ", \"image\": " IMAGE
                    ", \"bundle\": " BUNDLE ", \"op\": \"op-17\"}",
                    &c, &msg) == 0);
        CHECK(c.kind == NODE_CMD_RUN && c.version == 4 && c.run.mode == NODE_RUN_RESTORE);
        CHECK(c.run.bundle_version == 3 && c.run.files && json_object_get(c.run.files, "memory"));
        CHECK_STREQ(c.run.source, "web1");
        CHECK_STREQ(c.run.op, "op-17");
        CHECK_STREQ(c.run.bc.image, "alpine");
        CHECK(c.run.bc.memory_mib == 256);

        /* a boot with bundle null, a clone's bundle names its parent, an op that is no name */
        CHECK(parse(NODE_CMD_RUN,
                    "{\"version\": 1, \"mode\": \"boot\", \"config\": " CONFIG ", \"image\": " IMAGE
                    ", \"bundle\": null, \"op\": \"NOT A NAME\"}",
                    &c, &msg) == 0);
        CHECK(c.run.mode == NODE_RUN_BOOT && !c.run.bundle && !c.run.files && c.run.bundle_version == 0);
        CHECK(c.run.op == NULL);
        CHECK(parse(NODE_CMD_RUN,
                    "{\"version\": 9, \"mode\": \"restore\", \"config\": " CONFIG ", \"image\": " IMAGE
                    ", \"bundle\": {\"version\": 2, \"vm\": \"parent\", \"files\": " FILES "}}",
                    &c, &msg) == 0);
        CHECK_STREQ(c.run.source, "parent");

        check_refused(NODE_CMD_RUN, "{\"mode\": \"boot\", \"config\": " CONFIG ", \"image\": " IMAGE "}", -EINVAL,
                      "run needs \"version\"");
        check_refused(NODE_CMD_RUN, "{\"version\": 1, \"config\": " CONFIG ", \"image\": " IMAGE "}", -EINVAL,
                      "mode boot or restore");
        check_refused(NODE_CMD_RUN, "{\"version\": 1, \"mode\": \"fly\", \"config\": " CONFIG ", \"image\": " IMAGE "}",
                      -EINVAL, "mode boot or restore");
        check_refused(NODE_CMD_RUN, "{\"version\": 1, \"mode\": 7, \"config\": " CONFIG ", \"image\": " IMAGE "}",
                      -EINVAL, "mode boot or restore");
        check_refused(NODE_CMD_RUN, "{\"version\": 1, \"mode\": \"boot\", \"image\": " IMAGE "}", -EINVAL,
                      "malformed vm.json");
        check_refused(NODE_CMD_RUN, "{\"version\": 1, \"mode\": \"boot\", \"config\": \"web1\", \"image\": " IMAGE "}",
                      -EINVAL, "malformed vm.json");
        check_refused(NODE_CMD_RUN, "{\"version\": 1, \"mode\": \"boot\", \"config\": " CONFIG "}", -EINVAL,
                      "run needs image {name, files}");
        check_refused(NODE_CMD_RUN,
                      "{\"version\": 1, \"mode\": \"boot\", \"config\": " CONFIG
                      ", \"image\": {\"name\": \"debian\", \"files\": {}}}",
                      -EINVAL, "for image \"alpine\"");
        check_refused(NODE_CMD_RUN,
                      "{\"version\": 1, \"mode\": \"boot\", \"config\": " CONFIG ", \"image\": " IMAGE
                      ", \"bundle\": {\"files\": {}}}",
                      -EINVAL, "bundle null or {version, files[, vm]}");
        check_refused(NODE_CMD_RUN,
                      "{\"version\": 1, \"mode\": \"boot\", \"config\": " CONFIG ", \"image\": " IMAGE
                      ", \"bundle\": {\"version\": 1, \"files\": []}}",
                      -EINVAL, "bundle null or {version, files[, vm]}");
        check_refused(NODE_CMD_RUN,
                      "{\"version\": 1, \"mode\": \"boot\", \"config\": " CONFIG ", \"image\": " IMAGE
                      ", \"bundle\": {\"version\": 1, \"vm\": \"../etc\", \"files\": {}}}",
                      -EINVAL, "bundle null or {version, files[, vm]}");
        check_refused(NODE_CMD_RUN,
                      "{\"version\": 1, \"mode\": \"restore\", \"config\": " CONFIG ", \"image\": " IMAGE
                      ", \"bundle\": {\"version\": 1, \"files\": {\"disk\": {}}}}",
                      -EINVAL, "restore needs a bundle with saved state and memory");
        check_refused(NODE_CMD_RUN, "{\"version\": 1, \"mode\": \"restore\", \"config\": " CONFIG ", \"image\": " IMAGE "}",
                      -EINVAL, "restore needs a bundle");
        /* the config of another VM */
        _cleanup_free_ char *other = xstrdup(CONFIG);
        memcpy(strstr(other, "web1"), "web2", 4);
        _cleanup_free_ char *text = xasprintf("{\"version\": 1, \"mode\": \"boot\", \"config\": %s, \"image\": " IMAGE "}",
                                              other);
        check_refused(NODE_CMD_RUN, text, -EINVAL, "config of vm \"web2\", not of \"web1\"");
}

static void test_versions(void) {
        /* every versioned command: missing, wrong type, 0, negative, above 2^53-1, a float */
        static const char *const bad[] = {
                "{}",
                "{\"version\": \"3\"}",
                "{\"version\": 0}",
                "{\"version\": -4}",
                "{\"version\": 9007199254740992}",
                "{\"version\": 1.5}",
                "{\"version\": null}",
                "[1]",
                "7",
        };
        for (int k = 0; k < NODE_CMD_MAX; k++) {
                if (k == NODE_CMD_BALLOON)
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                        _cleanup_free_ char *want = xasprintf("%s needs \"version\"", node_proto_kind_name(k));
                        node_cmd_t c;
                        _cleanup_free_ char *msg = NULL;
                        int r = parse(k, bad[i], &c, &msg);
                        CHECK(r == -EINVAL || r == -ERANGE);
                        CHECK(msg && strstr(msg, want));
                }
        }
        node_cmd_t c;
        _cleanup_free_ char *msg = NULL;
        CHECK(parse(NODE_CMD_RESUME, "{\"version\": 9007199254740991}", &c, &msg) == 0);
        CHECK(c.version == 9007199254740991LL && c.kind == NODE_CMD_RESUME);
        CHECK(parse(NODE_CMD_DELETE, "{\"version\": 1}", &c, &msg) == 0 && c.version == 1);
        CHECK(parse(NODE_CMD_STAGE, "{\"version\": 12}", &c, &msg) == 0 && c.version == 12);
        CHECK(parse(NODE_CMD_LIVE_FINISH, "{\"version\": 2}", &c, &msg) == 0 && c.kind == NODE_CMD_LIVE_FINISH);
        CHECK(parse(NODE_CMD_LIVE_ABORT, "{\"version\": 2}", &c, &msg) == 0 && c.kind == NODE_CMD_LIVE_ABORT);
}

static void test_save_stop(void) {
        node_cmd_t c;
        _cleanup_free_ char *msg = NULL;
        CHECK(parse(NODE_CMD_SAVE, "{\"version\": 3}", &c, &msg) == 0);
        CHECK(!c.save.upload && c.save.new_version == 0);
        CHECK(parse(NODE_CMD_SAVE, "{\"version\": 3, \"upload\": true, \"new_version\": 4, \"nest\": \"" ORACLE "\"}", &c,
                    &msg) == 0);
        CHECK(c.save.upload && c.save.new_version == 4);
        CHECK(parse(NODE_CMD_SAVE, "{\"version\": 3, \"upload\": false, \"nest\": null}", &c, &msg) == 0);
        check_refused(NODE_CMD_SAVE, "{\"version\": 3, \"upload\": \"yes\"}", -EINVAL, "upload true or false");
        check_refused(NODE_CMD_SAVE, "{\"version\": 3, \"upload\": true}", -EINVAL,
                      "save into the Nest needs \"new_version\"");
        check_refused(NODE_CMD_SAVE, "{\"version\": 3, \"upload\": true, \"new_version\": 3}", -EINVAL,
                      "save needs new_version > version");
        check_refused(NODE_CMD_SAVE, "{\"version\": 3, \"upload\": true, \"new_version\": 4, \"nest\": \"http://evil\"}",
                      -EINVAL, "nest must be this RM's Oracle");
        check_refused(NODE_CMD_SAVE, "{\"version\": 3, \"nest\": 5}", -EINVAL, "nest must be this RM's Oracle");

        CHECK(parse(NODE_CMD_STOP, "{\"version\": 5, \"new_version\": 6}", &c, &msg) == 0);
        CHECK(c.version == 5 && c.stop.new_version == 6);
        check_refused(NODE_CMD_STOP, "{\"version\": 5}", -EINVAL, "stop needs \"new_version\"");
        check_refused(NODE_CMD_STOP, "{\"version\": 5, \"new_version\": \"6\"}", -EINVAL, "stop needs \"new_version\"");
        check_refused(NODE_CMD_STOP, "{\"version\": 5, \"new_version\": 2}", -EINVAL, "stop needs new_version > version");
        check_refused(NODE_CMD_STOP, "{\"version\": 5, \"new_version\": 6, \"nest\": \"http://other:1\"}", -EINVAL,
                      "nest must be");
}

#define RECEIVE_OK \
        "\"version\": 7, \"origin\": \"10.0.0.2:7070\", \"method\": \"chunks\", \"files\": " FILES ", \"config\": " CONFIG

static void test_receive(void) {
        node_cmd_t c;
        _cleanup_free_ char *msg = NULL;
        CHECK(parse(NODE_CMD_RECEIVE, "{" RECEIVE_OK ", \"image\": " IMAGE ", \"op\": \"op-1\"}", &c, &msg) == 0);
        CHECK(c.version == 7 && c.receive.method == NODE_RECEIVE_CHUNKS);
        CHECK_STREQ(c.receive.origin, "10.0.0.2:7070");
        CHECK_STREQ(c.receive.op, "op-1");
        CHECK_STREQ(c.receive.bc.name, "web1");
        CHECK(parse(NODE_CMD_RECEIVE,
                    "{\"version\": 7, \"origin\": \"rm2:7070\", \"method\": \"full\", \"files\": {}, \"config\": " CONFIG
                    ", \"image\": {}}",
                    &c, &msg) == 0);
        CHECK(c.receive.method == NODE_RECEIVE_FULL && c.receive.op == NULL);

        const char *what = "receive needs version, origin (host:port), method (chunks|full)";
        check_refused(NODE_CMD_RECEIVE, "{" RECEIVE_OK "}", -EINVAL, what); /* no image */
        check_refused(NODE_CMD_RECEIVE, "{\"version\": 7, \"method\": \"full\", \"files\": {}, \"config\": " CONFIG
                      ", \"image\": {}}", -EINVAL, what);
        check_refused(NODE_CMD_RECEIVE, "{\"version\": 7, \"origin\": \"nohostport\", \"method\": \"full\", \"files\": {}, "
                      "\"config\": " CONFIG ", \"image\": {}}", -EINVAL, what);
        check_refused(NODE_CMD_RECEIVE, "{\"version\": 7, \"origin\": \"rm2:1\", \"method\": \"scp\", \"files\": {}, "
                      "\"config\": " CONFIG ", \"image\": {}}", -EINVAL, what);
        check_refused(NODE_CMD_RECEIVE, "{\"version\": 7, \"origin\": \"rm2:1\", \"method\": \"full\", \"files\": [], "
                      "\"config\": " CONFIG ", \"image\": {}}", -EINVAL, what);
        check_refused(NODE_CMD_RECEIVE, "{\"version\": 7, \"origin\": \"rm2:1\", \"method\": \"full\", \"files\": {}, "
                      "\"image\": {}}", -EINVAL, what);
        check_refused(NODE_CMD_RECEIVE, "{" RECEIVE_OK ", \"image\": " IMAGE ", \"op\": \"Bad Op\"}", -EINVAL, what);
        check_refused(NODE_CMD_RECEIVE, "{\"version\": 0, \"origin\": \"rm2:1\"}", -ERANGE, "receive needs \"version\"");
        /* an origin longer than any host:port */
        char longhost[600];
        memset(longhost, 'a', sizeof longhost);
        longhost[sizeof longhost - 1] = 0;
        _cleanup_free_ char *text = xasprintf("{\"version\": 7, \"origin\": \"%s:1\", \"method\": \"full\", \"files\": {}, "
                                              "\"config\": " CONFIG ", \"image\": {}}",
                                              longhost);
        check_refused(NODE_CMD_RECEIVE, text, -EINVAL, what);
        _cleanup_free_ char *longop = xasprintf("{" RECEIVE_OK ", \"image\": {}, \"op\": \"%.*s\"}", 64, longhost);
        check_refused(NODE_CMD_RECEIVE, longop, -EINVAL, what);
}

static void test_live(void) {
        node_cmd_t c;
        _cleanup_free_ char *msg = NULL;
        CHECK(parse(NODE_CMD_LIVE_RECEIVE,
                    "{\"version\": 2, \"config\": " CONFIG ", \"image\": " IMAGE ", \"origin_rm\": \"rm1\"}", &c,
                    &msg) == 0);
        CHECK(c.live_receive.bc.memory_mib == 256 && json_is_object(c.live_receive.image));
        CHECK_STREQ(c.live_receive.origin_rm, "rm1");
        const char *what = "live-receive needs version, config (the VM's vm.json), image and origin_rm";
        check_refused(NODE_CMD_LIVE_RECEIVE, "{\"version\": 2, \"config\": " CONFIG ", \"origin_rm\": \"rm1\"}",
                      -EINVAL, what);
        check_refused(NODE_CMD_LIVE_RECEIVE, "{\"version\": 2, \"image\": " IMAGE ", \"origin_rm\": \"rm1\"}",
                      -EINVAL, what);
        check_refused(NODE_CMD_LIVE_RECEIVE,
                      "{\"version\": 2, \"config\": " CONFIG ", \"image\": \"alpine\", \"origin_rm\": \"rm1\"}",
                      -EINVAL, what);
        /* without the origin there is no peer to allow: no live migration (plain TCP is none) */
        check_refused(NODE_CMD_LIVE_RECEIVE, "{\"version\": 2, \"config\": " CONFIG ", \"image\": " IMAGE "}",
                      -EINVAL, what);
        static const char *const bad_rms[] = { "\"\"", "\"RM 1\"", "\"a,CN=b\"", "\"a.b\"", "5", "null" };
        for (size_t i = 0; i < ELEMENTSOF(bad_rms); i++) {
                _cleanup_free_ char *text = xasprintf("{\"version\": 2, \"config\": " CONFIG ", \"image\": " IMAGE
                                                      ", \"origin_rm\": %s}",
                                                      bad_rms[i]);
                check_refused(NODE_CMD_LIVE_RECEIVE, text, -EINVAL, what);
        }

#define EP "\"endpoint\": {\"host\": \"10.0.0.3\", \"migrate_port\": 4444, \"nbd_port\": 10809}"
        CHECK(parse(NODE_CMD_LIVE_SEND, "{\"version\": 3, " EP ", \"target_rm\": \"rm2\"}", &c, &msg) == 0);
        CHECK_STREQ(c.live_send.endpoint.host, "10.0.0.3");
        CHECK(c.live_send.endpoint.migrate_port == 4444 && c.live_send.endpoint.nbd_port == 10809);
        CHECK_STREQ(c.live_send.target_rm, "rm2");
        what = "live-send needs version, endpoint";
        check_refused(NODE_CMD_LIVE_SEND, "{\"version\": 3, \"target_rm\": \"rm2\"}", -EINVAL, what);
        check_refused(NODE_CMD_LIVE_SEND, "{\"version\": 3, " EP "}", -EINVAL, what);
        for (size_t i = 0; i < ELEMENTSOF(bad_rms); i++) {
                _cleanup_free_ char *text = xasprintf("{\"version\": 3, " EP ", \"target_rm\": %s}", bad_rms[i]);
                check_refused(NODE_CMD_LIVE_SEND, text, -EINVAL, what);
        }
#undef EP
        static const char *const bad_eps[] = {
                "{\"host\": \"rm3\", \"migrate_port\": 1, \"nbd_port\": 2}",
                "{\"host\": \"10.0.0.3\", \"migrate_port\": 0, \"nbd_port\": 2}",
                "{\"host\": \"10.0.0.3\", \"migrate_port\": 1, \"nbd_port\": 65536}",
                "{\"host\": \"10.0.0.3\", \"migrate_port\": \"1\", \"nbd_port\": 2}",
                "{\"migrate_port\": 1, \"nbd_port\": 2}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_eps); i++) {
                _cleanup_free_ char *text =
                        xasprintf("{\"version\": 3, \"endpoint\": %s, \"target_rm\": \"rm2\"}", bad_eps[i]);
                check_refused(NODE_CMD_LIVE_SEND, text, -EINVAL, what);
        }
}

static void test_balloon(void) {
        node_cmd_t c;
        _cleanup_free_ char *msg = NULL;
        CHECK(parse(NODE_CMD_BALLOON, "{}", &c, &msg) == 0 && !c.balloon.has_target);
        CHECK(parse(NODE_CMD_BALLOON, "{\"target_mib\": 128}", &c, &msg) == 0);
        CHECK(c.balloon.has_target && c.balloon.target_mib == 128);
        /* not an integer: kept as a target out of every range, refused by the command */
        CHECK(parse(NODE_CMD_BALLOON, "{\"target_mib\": \"128\"}", &c, &msg) == 0);
        CHECK(c.balloon.has_target && c.balloon.target_mib < 0);
}

static void test_garbage(void) {
        static const char *const garbage[] = { "{\"version\": ", "not json", "", "{\"version\": 1,,}", "\xff\xfe" };
        for (size_t i = 0; i < ELEMENTSOF(garbage); i++) {
                check_refused(NODE_CMD_RUN, garbage[i], -EINVAL, "run needs \"version\"");
                check_refused(NODE_CMD_RECEIVE, garbage[i], -EINVAL, "receive needs \"version\"");
        }
        check_refused(NODE_CMD_SAVE, NULL, -EINVAL, "save needs \"version\"");
        /* a VM name that is no name, and no such command */
        node_cmd_t c;
        char *msg = NULL;
        _cleanup_(json_decrefp) json_t *body = json_loads("{\"version\": 1}", 0, NULL);
        CHECK(node_proto_parse(NODE_CMD_RESUME, body, "../x", ORACLE, &c, &msg) == -EINVAL && msg);
        free(msg);
        msg = NULL;
        CHECK(node_proto_parse(NODE_CMD_MAX, body, "web1", ORACLE, &c, &msg) == -EINVAL && msg);
        free(msg);
}

/* The answer's JSON, compact with sorted keys, is want. */
static void check_json(json_t *j, const char *want) {
        _cleanup_free_ char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        CHECK_STREQ(s, want);
        json_decref(j);
}

static void test_answers(void) {
        check_json(node_proto_started(42, "127.0.0.1:4000"), "{\"address\":\"127.0.0.1:4000\",\"pid\":42}");
        nest_transfer_stats_t moved = { .bytes_total = 10, .bytes_transferred = 4, .chunks_total = 3, .chunks_transferred = 1 };
        check_json(node_proto_run_answer(node_proto_started(1, "h:1"), 5, 6, &moved),
                   "{\"address\":\"h:1\",\"fetch_ms\":5,\"pid\":1,\"start_ms\":6,\"transfer\":{\"bytes_total\":10,"
                   "\"bytes_transferred\":4,\"chunks_total\":3,\"chunks_transferred\":1}}");
        check_json(node_proto_files_answer(json_object()), "{\"files\":{}}");
        check_json(node_proto_receive_answer(7, NODE_RECEIVE_FULL, &moved, 1.5),
                   "{\"bytes_total\":10,\"bytes_transferred\":4,\"method\":\"full\",\"seconds\":1.5,\"version\":7}");
        vmm_live_endpoint_t ep = { .host = "10.0.0.1", .migrate_port = 1, .nbd_port = 2 };
        check_json(node_proto_live_receive_answer(&ep),
                   "{\"endpoint\":{\"host\":\"10.0.0.1\",\"migrate_port\":1,\"nbd_port\":2}}");
        vmm_live_stats_t ls = { .total_ms = 9, .downtime_ms = 3, .ram_bytes = 100, .disk_bytes = 20 };
        check_json(node_proto_live_send_answer(&ls),
                   "{\"bytes_total\":120,\"bytes_transferred\":120,\"disk_bytes\":20,\"downtime_ms\":3,\"ram_bytes\":100,"
                   "\"total_ms\":9}");
        check_json(node_proto_balloon_answer(256, 64, 70, true),
                   "{\"actual_mib\":70,\"memory_mib\":256,\"reclaimable\":true,\"target_mib\":64}");
        check_json(node_proto_describe("web1", 3, "suspended", 0, "", NULL),
                   "{\"address\":null,\"name\":\"web1\",\"pid\":0,\"state\":\"suspended\",\"version\":3}");
        vmm_stats_t st = { 1, 2, 3, 4, 5, 6 };
        check_json(node_proto_describe("web1", 3, "running", 9, "h:2", &st),
                   "{\"address\":\"h:2\",\"name\":\"web1\",\"pid\":9,\"state\":\"running\",\"stats\":{\"block_rd_bytes\":3,"
                   "\"block_wr_bytes\":4,\"cpu_ns\":1,\"net_rx_bytes\":5,\"net_tx_bytes\":6,\"rss_bytes\":2},\"version\":3}");
        check_json(node_proto_busy("web1"), "{\"name\":\"web1\",\"state\":\"busy\"}");
        check_json(node_proto_health("rm1", "production", "tcg"),
                   "{\"accel\":\"tcg\",\"name\":\"rm1\",\"ok\":true,\"role\":\"production\"}");
        check_json(node_proto_methods(), "{\"methods\":[\"chunks\",\"full\"]}");
        check_json(node_proto_heartbeat("chamber", "127.0.0.1:7070", "kvm", json_array(), json_array()),
                   "{\"accel\":\"kvm\",\"address\":\"127.0.0.1:7070\",\"role\":\"chamber\",\"snapshots\":[],\"vms\":[]}");
        json_t *hb = node_proto_heartbeat("chamber", "127.0.0.1:7070", "kvm", json_array(), json_array());
        node_proto_heartbeat_guest_firewall(hb, true);
        check_json(hb, "{\"accel\":\"kvm\",\"address\":\"127.0.0.1:7070\",\"guest_firewall\":true,\"role\":\"chamber\","
                       "\"snapshots\":[],\"vms\":[]}");
        hb = node_proto_heartbeat("chamber", "127.0.0.1:7070", "kvm", json_array(), json_array());
        node_proto_heartbeat_confinement(hb, true, "");
        check_json(hb, "{\"accel\":\"kvm\",\"address\":\"127.0.0.1:7070\",\"confine_reason\":null,\"confined\":true,"
                       "\"role\":\"chamber\",\"snapshots\":[],\"vms\":[]}");
        hb = node_proto_heartbeat("chamber", "127.0.0.1:7070", "tcg", json_array(), json_array());
        node_proto_heartbeat_confinement(hb, false, "not root");
        check_json(hb, "{\"accel\":\"tcg\",\"address\":\"127.0.0.1:7070\",\"confine_reason\":\"not root\","
                       "\"confined\":false,\"role\":\"chamber\",\"snapshots\":[],\"vms\":[]}");
        hb = node_proto_heartbeat("production", "127.0.0.1:7070", "kvm", json_array(), json_array());
        node_proto_heartbeat_capacity(hb, &(node_capacity_t){ .memory_mib = 24576, .vcpus = 8, .disk_gib = 0 });
        check_json(hb, "{\"accel\":\"kvm\",\"address\":\"127.0.0.1:7070\",\"capacity\":{\"disk_gib\":0,"
                       "\"memory_mib\":24576,\"vcpus\":8},\"role\":\"production\",\"snapshots\":[],\"vms\":[]}");
        check_json(node_proto_progress(5, 10), "{\"done\":5,\"total\":10}");

        _cleanup_(json_decrefp) json_t *answer = json_loads("{\"leases\": {\"web1\": 3}}", 0, NULL);
        CHECK(node_proto_heartbeat_leases(answer) == json_object_get(answer, "leases"));
        _cleanup_(json_decrefp) json_t *bad = json_loads("{\"leases\": [1]}", 0, NULL);
        CHECK(node_proto_heartbeat_leases(bad) == NULL);
        CHECK(node_proto_heartbeat_leases(NULL) == NULL);
        for (int k = 0; k < NODE_CMD_MAX; k++)
                CHECK(strcmp(node_proto_kind_name(k), "unknown") != 0);
        CHECK_STREQ(node_proto_kind_name(NODE_CMD_LIVE_RECEIVE), "live-receive");
}

int main(void) {
        test_run();
        test_versions();
        test_save_stop();
        test_receive();
        test_live();
        test_balloon();
        test_garbage();
        test_answers();
        json_decref(last_body);
        return tap_finish();
}
