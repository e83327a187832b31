/* Unit tests for the node<->Oracle protocol, Oracle side (src/oracle/oracle-proto.c), on canned
 * messages: what the Oracle sends, and what it accepts or refuses of nodes' answers and reports,
 * and what the RM view (oracle-rm-view.c) keeps of an accepted heartbeat's capacity. */
#include "oracle/oracle-proto.h"
#include "oracle/oracle-internal.h"
#include "base/macro.h"
#include "base/util.h"
#include "tap.h"

#include <errno.h>
#include <stdlib.h>

#define DIGEST "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static json_t *parse(const char *text) {
        json_t *j = json_loads(text, 0, NULL);
        if (!j)
                fprintf(stderr, "bad canned JSON: %s\n", text);
        return j;
}

static int heartbeat(const char *text) {
        json_t *j = parse(text);
        oracle_heartbeat_t hb;
        char *msg = NULL;
        int r = oracle_proto_heartbeat_parse(j, &hb, &msg);
        free(msg);
        json_decref(j);
        return r;
}

static int saved(const char *text, bool need_state) {
        json_t *j = parse(text);
        const json_t *files = NULL;
        int r = oracle_proto_saved_parse(j, need_state, &files);
        json_decref(j);
        return r;
}

/* Records the heartbeat text of rm in o's RM view, as the heartbeat handler does once it accepted it. */
static void view_record(oracle_t *o, const char *rm, const char *text) {
        json_t *j = parse(text);
        oracle_heartbeat_t hb;
        char *msg = NULL;
        CHECK(oracle_proto_heartbeat_parse(j, &hb, &msg) == 0);
        oracle_rm_view_record(o, rm, &hb);
        free(msg);
        json_decref(j);
}

/* What the RM view keeps of a heartbeat's capacity (oracle-rm-view.c): oracle_rm_capacity and
 * the capacity of GET /v1/rms, unknown (-ENOENT, null) until said and again when a later
 * heartbeat does not say it. Only strays_lock and rm_view of the Oracle are used. */
static void test_rm_view_capacity(void) {
        oracle_t o = { 0 };
        pthread_mutex_init(&o.strays_lock, NULL);
        int64_t memory = -7, vcpus = -7, disk = -7;
        CHECK(oracle_rm_capacity(&o, "rm1", &memory, &vcpus, &disk) == -ENOENT);
        CHECK(memory == -7 && vcpus == -7 && disk == -7);

        view_record(&o, "rm1", "{\"role\": \"production\", \"address\": \"10.0.0.3:7100\", \"capacity\": "
                               "{\"memory_mib\": 24576, \"vcpus\": 8, \"disk_gib\": 200}}");
        view_record(&o, "rm2", "{\"role\": \"production\", \"address\": \"10.0.0.4:7100\"}");
        CHECK(oracle_rm_capacity(&o, "rm1", &memory, &vcpus, &disk) == 0);
        CHECK(memory == 24576 && vcpus == 8 && disk == 200);
        CHECK(oracle_rm_capacity(&o, "rm1", NULL, NULL, NULL) == 0);
        memory = vcpus = disk = -7;
        CHECK(oracle_rm_capacity(&o, "rm2", &memory, &vcpus, &disk) == -ENOENT);
        CHECK(oracle_rm_capacity(&o, "rm3", &memory, &vcpus, &disk) == -ENOENT);
        CHECK(oracle_rm_capacity(&o, NULL, &memory, &vcpus, &disk) == -ENOENT);
        CHECK(memory == -7 && vcpus == -7 && disk == -7);

        json_t *rm = json_object();
        oracle_rm_view_add(&o, "rm1", rm);
        json_t *want = parse("{\"memory_mib\": 24576, \"vcpus\": 8, \"disk_gib\": 200}");
        CHECK(json_equal(json_object_get(rm, "capacity"), want));
        json_decref(want);
        json_decref(rm);
        rm = json_object();
        oracle_rm_view_add(&o, "rm2", rm);
        CHECK(json_is_null(json_object_get(rm, "capacity")));
        json_decref(rm);

        /* a later heartbeat without it (the node downgraded): unknown again; a new size replaces the old */
        view_record(&o, "rm1", "{\"role\": \"production\", \"address\": \"10.0.0.3:7100\"}");
        CHECK(oracle_rm_capacity(&o, "rm1", &memory, &vcpus, &disk) == -ENOENT);
        view_record(&o, "rm2", "{\"role\": \"production\", \"address\": \"10.0.0.4:7100\", \"capacity\": "
                               "{\"memory_mib\": 512, \"vcpus\": 1, \"disk_gib\": 0}}");
        CHECK(oracle_rm_capacity(&o, "rm2", &memory, &vcpus, &disk) == 0 && memory == 512 && vcpus == 1 && disk == 0);
        json_decref(o.rm_view);
        pthread_mutex_destroy(&o.strays_lock);
}

int main(void) {
        /* addresses */
        CHECK(oracle_address_is_valid("10.0.0.1:7100"));
        CHECK(!oracle_address_is_valid("10.0.0.1"));
        CHECK(!oracle_address_is_valid("example.com:80"));
        CHECK(!oracle_address_is_valid("10.0.0.1:0"));
        CHECK(!oracle_address_is_valid("10.0.0.1:99999"));
        CHECK(!oracle_address_is_valid(NULL));
        CHECK(!oracle_address_is_valid("10.0.0.1:80 extra"));

        /* builders */
        json_t *b = oracle_proto_save(7, true);
        CHECK(json_integer_value(json_object_get(b, "version")) == 7);
        CHECK(json_integer_value(json_object_get(b, "new_version")) == 8);
        CHECK(json_is_true(json_object_get(b, "upload")));
        json_decref(b);
        b = oracle_proto_stop(3);
        CHECK(json_integer_value(json_object_get(b, "new_version")) == 4);
        json_decref(b);
        vm_record_t vm = { .version = 5, .prebooted = true, .nest_version = 4 };
        vm.bundle = parse("{\"config\": {\"name\": \"web\"}, \"files\": {\"disk\": {\"digest\": \"" DIGEST "\"}}}");
        b = oracle_proto_run(&vm, json_pack("{s:s}", "name", "img"), "op-1");
        CHECK_STREQ(json_string_value(json_object_get(b, "mode")), "restore");
        CHECK(json_integer_value(json_object_get(json_object_get(b, "bundle"), "version")) == 4);
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(b, "config"), "name")), "web");
        CHECK_STREQ(json_string_value(json_object_get(b, "op")), "op-1");
        json_decref(b);
        vm.prebooted = false;
        vm.nest_version = 0;
        b = oracle_proto_run(&vm, json_pack("{s:s}", "name", "img"), "op-2");
        CHECK_STREQ(json_string_value(json_object_get(b, "mode")), "boot");
        CHECK(json_is_null(json_object_get(b, "bundle")));
        json_decref(b);
        /* live migration: each side is told the other RM, whose migration certificate its QEMU
         * allows (the destination) or expects (the origin) */
        SET(vm.rm, "rm1");
        b = oracle_proto_live_receive(&vm, json_pack("{s:s}", "name", "img"), "op-3");
        CHECK_STREQ(json_string_value(json_object_get(b, "origin_rm")), "rm1");
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(b, "config"), "name")), "web");
        json_decref(b);
        json_t *ep = parse("{\"host\": \"10.0.0.2\", \"migrate_port\": 1, \"nbd_port\": 2}");
        b = oracle_proto_live_send(5, ep, "rm2", "op-3");
        CHECK_STREQ(json_string_value(json_object_get(b, "target_rm")), "rm2");
        CHECK(json_integer_value(json_object_get(json_object_get(b, "endpoint"), "nbd_port")) == 2);
        json_decref(b);
        json_decref(ep);
        vm_record_clear(&vm);

        /* run/resume answers: a hostile address or pid is not taken */
        oracle_started_t st;
        json_t *a = parse("{\"address\": \"10.0.0.2:8080\", \"pid\": 1234}");
        oracle_proto_started_parse(a, &st);
        CHECK_STREQ(st.address, "10.0.0.2:8080");
        CHECK(st.pid == 1234);
        json_decref(a);
        a = parse("{\"address\": \"evil.example:80\", \"pid\": -5}");
        oracle_proto_started_parse(a, &st);
        CHECK_STREQ(st.address, "");
        CHECK(st.pid == 0);
        json_decref(a);
        a = parse("{\"address\": 42, \"pid\": 99999999999}");
        oracle_proto_started_parse(a, &st);
        CHECK(st.address[0] == 0 && st.pid == 0);
        json_decref(a);
        oracle_proto_started_parse(NULL, &st);
        CHECK(st.address[0] == 0 && st.pid == 0);

        /* save answers */
        const char *full = "{\"files\": {\"disk\": {\"digest\": \"" DIGEST "\"}, \"state\": {\"digest\": \"" DIGEST
                           "\"}, \"memory\": {\"digest\": \"" DIGEST "\"}}}";
        CHECK(saved(full, true) == 0);
        CHECK(saved("{\"files\": {\"disk\": {\"digest\": \"" DIGEST "\"}}}", false) == 0);
        CHECK(saved("{\"files\": {\"disk\": {\"digest\": \"" DIGEST "\"}}}", true) == -EPROTO);
        CHECK(saved("{\"files\": {}}", false) == -EPROTO);
        CHECK(saved("{}", false) == -EPROTO);
        CHECK(saved("{\"files\": [1]}", false) == -EPROTO);
        CHECK(saved("{\"files\": {\"disk\": {\"digest\": \"xyz\"}}}", false) == -EPROTO);
        CHECK(saved("{\"files\": {\"disk\": {\"digest\": \"" DIGEST "\"}, \"junk\": 3}}", false) == -EPROTO);

        /* receive answers */
        oracle_received_t rc;
        a = parse("{\"version\": 9, \"bytes_transferred\": 100, \"bytes_total\": 400}");
        CHECK(oracle_proto_received_parse(a, 9, &rc) == 0 && rc.bytes_transferred == 100 && rc.bytes_total == 400);
        CHECK(oracle_proto_received_parse(a, 8, &rc) == -EPROTO);
        json_decref(a);
        a = parse("{\"version\": \"9\"}");
        CHECK(oracle_proto_received_parse(a, 9, &rc) == -EPROTO);
        json_decref(a);
        a = parse("{\"version\": 9, \"bytes_transferred\": -4}");
        CHECK(oracle_proto_received_parse(a, 9, &rc) == 0 && rc.bytes_transferred == 0);
        json_decref(a);

        /* methods */
        a = parse("{\"methods\": [\"chunks\", \"full\"]}");
        CHECK(oracle_proto_methods_has(a, "full"));
        CHECK(!oracle_proto_methods_has(a, "live"));
        json_decref(a);
        a = parse("{\"methods\": \"chunks\"}");
        CHECK(!oracle_proto_methods_has(a, "chunks"));
        json_decref(a);

        /* heartbeats */
        CHECK(heartbeat("{\"role\": \"production\", \"address\": \"10.0.0.3:7100\"}") == 0);
        CHECK(heartbeat("{\"role\": \"chamber\", \"address\": \"10.0.0.3:7100\", \"vms\": [{\"name\": \"a\", "
                        "\"state\": \"running\"}], \"snapshots\": [\"" DIGEST "\"]}") == 0);
        CHECK(heartbeat("{\"role\": \"boss\", \"address\": \"10.0.0.3:7100\"}") == -EINVAL);
        CHECK(heartbeat("{\"role\": \"production\"}") == -EINVAL);
        CHECK(heartbeat("{\"role\": \"production\", \"address\": \"x:1\"}") == -EINVAL);
        CHECK(heartbeat("{\"role\": \"production\", \"address\": \"10.0.0.3:7100\", \"vms\": {}}") == -EINVAL);
        CHECK(heartbeat("{\"role\": \"production\", \"address\": \"10.0.0.3:7100\", \"vms\": [{\"name\": \"Bad!\", "
                        "\"state\": \"running\"}]}") == -EINVAL);
        CHECK(heartbeat("{\"role\": \"production\", \"address\": \"10.0.0.3:7100\", \"vms\": [{\"name\": \"a\"}]}") ==
              -EINVAL);
        CHECK(heartbeat("{\"role\": \"production\", \"address\": \"10.0.0.3:7100\", \"snapshots\": 5}") == -EINVAL);
        CHECK(heartbeat("[]") == -EINVAL);
        /* guest_firewall: a bool when said */
        CHECK(heartbeat("{\"role\": \"production\", \"address\": \"10.0.0.3:7100\", \"guest_firewall\": \"yes\"}") ==
              -EINVAL);
        CHECK(heartbeat("{\"role\": \"production\", \"address\": \"10.0.0.3:7100\", \"guest_firewall\": 1}") == -EINVAL);
        {
                static const struct {
                        const char *text;
                        int want;
                } fw[] = {
                        { "{\"role\": \"production\", \"address\": \"10.0.0.3:7100\"}", -1 },
                        { "{\"role\": \"production\", \"address\": \"10.0.0.3:7100\", \"guest_firewall\": true}", 1 },
                        { "{\"role\": \"production\", \"address\": \"10.0.0.3:7100\", \"guest_firewall\": false}", 0 },
                };
                for (size_t i = 0; i < ELEMENTSOF(fw); i++) {
                        json_t *j = parse(fw[i].text);
                        oracle_heartbeat_t hb = { .guest_firewall = 7 };
                        char *msg = NULL;
                        CHECK(oracle_proto_heartbeat_parse(j, &hb, &msg) == 0 && hb.guest_firewall == fw[i].want);
                        free(msg);
                        json_decref(j);
                }
        }
        /* confinement: a boolean and an optional reason of bounded length; absent is "not said" */
        {
                json_t *j = parse("{\"role\": \"chamber\", \"address\": \"10.0.0.3:7100\", \"confined\": false, "
                                  "\"confine_reason\": \"not root\"}");
                oracle_heartbeat_t hb;
                char *msg = NULL;
                CHECK(oracle_proto_heartbeat_parse(j, &hb, &msg) == 0 && hb.confined == 0 &&
                      hb.confine_reason && strcmp(hb.confine_reason, "not root") == 0);
                json_decref(j);
                j = parse("{\"role\": \"chamber\", \"address\": \"10.0.0.3:7100\", \"confined\": true, "
                          "\"confine_reason\": null}");
                CHECK(oracle_proto_heartbeat_parse(j, &hb, &msg) == 0 && hb.confined == 1 && !hb.confine_reason);
                json_decref(j);
                j = parse("{\"role\": \"chamber\", \"address\": \"10.0.0.3:7100\"}");
                CHECK(oracle_proto_heartbeat_parse(j, &hb, &msg) == 0 && hb.confined == -1);
                json_decref(j);
        }
        CHECK(heartbeat("{\"role\": \"chamber\", \"address\": \"10.0.0.3:7100\", \"confined\": \"yes\"}") == -EINVAL);
        CHECK(heartbeat("{\"role\": \"chamber\", \"address\": \"10.0.0.3:7100\", \"confined\": 1}") == -EINVAL);
        CHECK(heartbeat("{\"role\": \"chamber\", \"address\": \"10.0.0.3:7100\", \"confined\": false, "
                        "\"confine_reason\": 7}") == -EINVAL);
        {
                json_t *body = json_pack("{s:s,s:s,s:b}", "role", "chamber", "address", "10.0.0.3:7100", "confined", 0);
                char long_reason[ORACLE_CONFINE_REASON_MAX + 2];
                memset(long_reason, 'x', sizeof long_reason - 1);
                long_reason[sizeof long_reason - 1] = 0;
                json_object_set_new(body, "confine_reason", json_string(long_reason));
                oracle_heartbeat_t hb;
                char *msg = NULL;
                CHECK(oracle_proto_heartbeat_parse(body, &hb, &msg) == -EINVAL && msg && strstr(msg, "confine_reason"));
                free(msg);
                json_decref(body);
        }
        /* capacity: absent or null is "not said" (an older node); said, three integers in range */
        {
                static const struct {
                        const char *capacity; /* NULL: absent */
                        bool has;
                        int64_t memory_mib, vcpus, disk_gib;
                } good[] = {
                        { NULL, false, 0, 0, 0 },
                        { "null", false, 0, 0, 0 },
                        { "{\"memory_mib\": 24576, \"vcpus\": 8, \"disk_gib\": 200}", true, 24576, 8, 200 },
                        /* a filesystem under 1 GiB; members a later node may add are ignored */
                        { "{\"memory_mib\": 1, \"vcpus\": 1, \"disk_gib\": 0, \"gpus\": 2}", true, 1, 1, 0 },
                        { "{\"memory_mib\": 1099511627776, \"vcpus\": 1099511627776, \"disk_gib\": 1099511627776}",
                          true, ORACLE_CAPACITY_MAX, ORACLE_CAPACITY_MAX, ORACLE_CAPACITY_MAX },
                };
                for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                        char text[512];
                        snprintf(text, sizeof text, "{\"role\": \"production\", \"address\": \"10.0.0.3:7100\"%s%s}",
                                 good[i].capacity ? ", \"capacity\": " : "", good[i].capacity ? good[i].capacity : "");
                        json_t *j = parse(text);
                        oracle_heartbeat_t hb = { .has_capacity = !good[i].has, .capacity = { -1, -1, -1 } };
                        char *msg = NULL;
                        CHECK(oracle_proto_heartbeat_parse(j, &hb, &msg) == 0 && !msg);
                        CHECK(hb.has_capacity == good[i].has);
                        CHECK(hb.capacity.memory_mib == good[i].memory_mib && hb.capacity.vcpus == good[i].vcpus &&
                              hb.capacity.disk_gib == good[i].disk_gib);
                        free(msg);
                        json_decref(j);
                }
                /* there but malformed: the heartbeat is refused, the message names the member */
                static const struct {
                        const char *capacity, *names;
                } bad[] = {
                        { "[]", "capacity must be an object" },
                        { "\"24G\"", "capacity must be an object" },
                        { "8", "capacity must be an object" },
                        { "true", "capacity must be an object" },
                        { "{}", "capacity.memory_mib" },
                        { "{\"vcpus\": 8, \"disk_gib\": 200}", "capacity.memory_mib" },
                        { "{\"memory_mib\": 1024, \"disk_gib\": 200}", "capacity.vcpus" },
                        { "{\"memory_mib\": 1024, \"vcpus\": 8}", "capacity.disk_gib" },
                        { "{\"memory_mib\": -1, \"vcpus\": 8, \"disk_gib\": 200}", "capacity.memory_mib" },
                        { "{\"memory_mib\": 0, \"vcpus\": 8, \"disk_gib\": 200}", "capacity.memory_mib" },
                        { "{\"memory_mib\": 1024, \"vcpus\": 0, \"disk_gib\": 200}", "capacity.vcpus" },
                        { "{\"memory_mib\": 1024, \"vcpus\": 8, \"disk_gib\": -1}", "capacity.disk_gib" },
                        { "{\"memory_mib\": 1024.5, \"vcpus\": 8, \"disk_gib\": 200}", "capacity.memory_mib" },
                        { "{\"memory_mib\": 1024.0, \"vcpus\": 8, \"disk_gib\": 200}", "capacity.memory_mib" },
                        { "{\"memory_mib\": \"1024\", \"vcpus\": 8, \"disk_gib\": 200}", "capacity.memory_mib" },
                        { "{\"memory_mib\": 1024, \"vcpus\": null, \"disk_gib\": 200}", "capacity.vcpus" },
                        { "{\"memory_mib\": 1024, \"vcpus\": true, \"disk_gib\": 200}", "capacity.vcpus" },
                        /* above 2^40: absurd */
                        { "{\"memory_mib\": 1099511627777, \"vcpus\": 8, \"disk_gib\": 200}", "capacity.memory_mib" },
                        { "{\"memory_mib\": 1024, \"vcpus\": 9223372036854775807, \"disk_gib\": 200}", "capacity.vcpus" },
                        { "{\"memory_mib\": 1024, \"vcpus\": 8, \"disk_gib\": 1099511627777}", "capacity.disk_gib" },
                };
                for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                        char text[512];
                        snprintf(text, sizeof text,
                                 "{\"role\": \"production\", \"address\": \"10.0.0.3:7100\", \"capacity\": %s}",
                                 bad[i].capacity);
                        json_t *j = parse(text);
                        CHECK(j != NULL);
                        oracle_heartbeat_t hb = { .role = "untouched" };
                        char *msg = NULL;
                        CHECK(oracle_proto_heartbeat_parse(j, &hb, &msg) == -EINVAL);
                        CHECK(msg && strstr(msg, bad[i].names));
                        if (!msg || !strstr(msg, bad[i].names))
                                fprintf(stderr, "capacity %s: %s\n", bad[i].capacity, msg ? msg : "(no message)");
                        CHECK(strcmp(hb.role, "untouched") == 0 && !hb.has_capacity);
                        free(msg);
                        json_decref(j);
                }
        }
        {
                json_t *many = json_array();
                for (int i = 0; i < 4097; i++)
                        json_array_append_new(many, json_pack("{s:s,s:s}", "name", "a", "state", "running"));
                json_t *body = json_pack("{s:s,s:s,s:o}", "role", "production", "address", "10.0.0.3:7100", "vms", many);
                oracle_heartbeat_t hb;
                char *msg = NULL;
                CHECK(oracle_proto_heartbeat_parse(body, &hb, &msg) == -ERANGE);
                free(msg);
                json_decref(body);
        }
        {
                oracle_heartbeat_t hb;
                char *msg = NULL;
                CHECK(oracle_proto_heartbeat_parse(NULL, &hb, &msg) == -EINVAL);
                free(msg);
        }

        /* op progress */
        int64_t done = 0, total = 0;
        a = parse("{\"done\": 5, \"total\": 10}");
        CHECK(oracle_proto_op_progress_parse(a, &done, &total) == 0 && done == 5 && total == 10);
        json_decref(a);
        a = parse("{\"done\": -1, \"total\": 10}");
        CHECK(oracle_proto_op_progress_parse(a, &done, &total) == -EINVAL);
        json_decref(a);
        a = parse("{\"done\": \"5\", \"total\": 10}");
        CHECK(oracle_proto_op_progress_parse(a, &done, &total) == -EINVAL);
        json_decref(a);
        /* MACs: the counter's value in the prefix, never all zero, cycling after 2^24-1 */
        char mac[18];
        oracle_mac_format(1, mac);
        CHECK_STREQ(mac, "52:54:00:00:00:01");
        oracle_mac_format(0xffffff, mac);
        CHECK_STREQ(mac, "52:54:00:ff:ff:ff");
        oracle_mac_format(0xfffffe, mac);
        CHECK_STREQ(mac, "52:54:00:ff:ff:fe");
        oracle_mac_format(0x1000000, mac);
        CHECK_STREQ(mac, "52:54:00:00:00:01");
        test_rm_view_capacity();
        return tap_finish();
}
