/* Harness: the answers peers send back, as the side that asked reads them. The input is the
 * body of an answer, loaded as the HTTP client loads it (any JSON value, or none when it is
 * not JSON), and read by every reader of answers: the Oracle's of a node's run, save, stop,
 * receive and methods answers (oracle/oracle-proto.h) and of a node's error answer (the
 * message it logs, as oracle-node-client.c builds it), and the node's of the leases in the
 * Oracle's answer to its heartbeat (node_proto_heartbeat_leases). Checked: what each reader
 * returns is what it promises (a valid address or none, a pid in range, files with a disk and
 * valid digests, non-negative byte counts, leases an object), and an error message can go
 * into JSON once sanitised. */
#include <stdbool.h>

#include "base/util.h"
#include "bundle/bundle.h"
#include "fuzz.h"
#include "net/http-client.h"
#include "node/node-proto.h"
#include "oracle/oracle-proto.h"

static void check_started(const json_t *res) {
        oracle_started_t st;
        oracle_proto_started_parse(res, &st);
        FUZZ_CHECK(memchr(st.address, 0, sizeof st.address));
        FUZZ_CHECK(!*st.address || oracle_address_is_valid(st.address));
        FUZZ_CHECK(st.pid >= 0 && st.pid <= INT32_MAX);
}

static void check_saved(const json_t *res, bool need_state) {
        const json_t *files = (const json_t *)1;
        if (oracle_proto_saved_parse(res, need_state, &files) < 0) {
                FUZZ_CHECK(files == (const json_t *)1);
                return;
        }
        FUZZ_CHECK(json_is_object(files) && json_is_object(json_object_get(files, BUNDLE_FILE_DISK)));
        if (need_state)
                FUZZ_CHECK(json_object_get(files, BUNDLE_FILE_STATE) && json_object_get(files, BUNDLE_FILE_MEMORY));
        const char *name;
        const json_t *info;
        json_object_foreach((json_t *)files, name, info)
                FUZZ_CHECK(bundle_sha256_is_valid(json_string_value(json_object_get(info, "digest"))));
}

static void check_received(const json_t *res) {
        /* the version asked about: the one the answer names, so that acceptance is reached */
        int64_t version = json_integer_value(json_object_get(res, "version"));
        oracle_received_t rc = { -1, -1 };
        if (oracle_proto_received_parse(res, version, &rc) == 0)
                FUZZ_CHECK(rc.bytes_transferred >= 0 && rc.bytes_total >= 0);
        else
                FUZZ_CHECK(rc.bytes_transferred == -1 && rc.bytes_total == -1);
        /* an answer for another version is refused */
        if (version < INT64_MAX)
                FUZZ_CHECK(oracle_proto_received_parse(res, version + 1, &rc) < 0);
}

/* A node's answer with an error status, as oracle_node_call turns it into a message. */
static void check_error(const json_t *res, const uint8_t *data, size_t size) {
        char *body = fuzz_string(data, size);
        http_response_t resp = { .status = 500, .json = (json_t *)res, .body = body, .body_len = size };
        char *msg = xasprintf("RM \"%s\": %s", "rm1", http_error_message(&resp, 0));
        utf8_sanitize(msg);
        json_t *s = json_string(msg);
        FUZZ_CHECK(s);
        json_decref(s);
        free(msg);
        free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *res = fuzz_json_answer(data, size);
        check_started(res);
        check_saved(res, false);
        check_saved(res, true);
        check_received(res);
        (void)oracle_proto_methods_has(res, "chunks");
        (void)oracle_proto_methods_has(res, "full");
        const json_t *leases = node_proto_heartbeat_leases(res);
        FUZZ_CHECK(!leases || json_is_object(leases));
        check_error(res, data, size);
        json_decref(res);
        return 0;
}
