/* Unit tests for src/net: the server's routing, JSON bodies and errors, through the real client. */
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "net/http-client.h"
#include "net/http-server.h"
#include "tap.h"

static void h_echo(const http_request_t *req, http_reply_t *reply) {
        http_reply_json(reply, 200,
                        json_pack("{s:s,s:s,s:O?}", "a", req->params[0] ? req->params[0] : "", "b",
                                  req->params[1] ? req->params[1] : "", "body", req->body));
}

static void h_fail(const http_request_t *req, http_reply_t *reply) { http_reply_errno(reply, -EPERM, "vm \"x\" is active"); }

static void h_upload(const http_request_t *req, http_reply_t *reply) {
        struct stat st;
        http_reply_json(reply, 200, json_pack("{s:I}", "size", (json_int_t)(stat(req->upload_path, &st) == 0 ? st.st_size : -1)));
}

static const http_route_t routes[] = {
        { "POST", "/v1/upload", h_upload, .upload = true, .upload_max = 1000 },
        { "GET", "/v1/things/:a/sub/:b", h_echo },
        { "POST", "/v1/things/:a", h_echo },
        { "POST", "/v1/fail", h_fail },
        { NULL },
};

int main(void) {
        http_server_t *s = NULL;
        int port = 0;
        for (port = 23100; port < 23200 && !s; port++) {
                _cleanup_free_ char *listen = xasprintf("127.0.0.1:%d", port);
                if (http_server_start(listen, routes, NULL, NULL, &s) == 0)
                        break;
        }
        CHECK(s != NULL);
        http_response_t r = { 0 };
        _cleanup_free_ char *base = xasprintf("http://127.0.0.1:%d", port);
        _cleanup_free_ char *u1 = xasprintf("%s/v1/things/x1/sub/y2", base);
        CHECK(http_request_json("GET", u1, NULL, 5000, &r) == 0 && r.status == 200);
        CHECK_STREQ(json_string_value(json_object_get(r.json, "a")), "x1");
        CHECK_STREQ(json_string_value(json_object_get(r.json, "b")), "y2");
        http_response_clear(&r);

        /* an upload within the route's bound is taken; one above it is refused with 413 */
        _cleanup_free_ char *up = xasprintf("%s/v1/upload", base);
        char blob[2000];
        memset(blob, 'x', sizeof blob);
        CHECK(http_request_bytes("POST", up, blob, 600, 5000, &r) == 0 && r.status == 200);
        CHECK(json_integer_value(json_object_get(r.json, "size")) == 600);
        http_response_clear(&r);
        CHECK(http_request_bytes("POST", up, blob, sizeof blob, 5000, &r) == 0 && r.status == 413);
        CHECK(strstr(http_error_message(&r, 0), "larger than 1000 bytes") != NULL);
        http_response_clear(&r);

        _cleanup_free_ char *u2 = xasprintf("%s/v1/things/q", base);
        json_t *body = json_pack("{s:i}", "n", 7);
        CHECK(http_request_json("POST", u2, body, 5000, &r) == 0 && r.status == 200);
        CHECK(json_integer_value(json_object_get(json_object_get(r.json, "body"), "n")) == 7);
        http_response_clear(&r);
        json_decref(body);

        /* a known path with the wrong method, an unknown path */
        CHECK(http_request_json("GET", u2, NULL, 5000, &r) == 0 && r.status == 405);
        http_response_clear(&r);
        _cleanup_free_ char *u3 = xasprintf("%s/v1/nothing/here", base);
        CHECK(http_request_json("GET", u3, NULL, 5000, &r) == 0 && r.status == 404);
        CHECK(strstr(http_error_message(&r, 0), "no such endpoint") != NULL);
        http_response_clear(&r);
        _cleanup_free_ char *u4 = xasprintf("%s/v1/fail", base);
        CHECK(http_request_json("POST", u4, NULL, 5000, &r) == 0 && r.status == 409);
        CHECK_STREQ(http_error_message(&r, 0), "vm \"x\" is active");
        http_response_clear(&r);
        _cleanup_free_ char *u5 = xasprintf("%s/v1/things/x1/sub", base);
        CHECK(http_request_json("GET", u5, NULL, 5000, &r) == 0 && r.status == 404);
        http_response_clear(&r);

        http_server_stop(s);
        CHECK(http_request_json("GET", u1, NULL, 2000, &r) == -ECONNREFUSED);
        return tap_finish();
}
