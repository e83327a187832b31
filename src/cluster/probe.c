/* Implementation of probe.h on top of net/http-client.h and net/tcp-probe.h. */
#include "cluster/probe.h"

#include <string.h>

#include "base/util.h"
#include "net/http-client.h"
#include "net/tcp-probe.h"

#define PROBE_HTTP_TIMEOUT_MS 2000L

static void http_response_clearp(http_response_t *r) { http_response_clear(r); }

int probe_health(const char *oracle_url) {
        _cleanup_free_ char *url = xasprintf("%s/v1/health", oracle_url);
        _cleanup_(http_response_clearp) http_response_t resp = { 0 };
        int r = http_request_json("GET", url, NULL, PROBE_HTTP_TIMEOUT_MS, &resp);
        if (r < 0)
                return r;
        return resp.status == 200 ? 0 : -EAGAIN;
}

int probe_rms_parse(const json_t *rms, char *const *names, size_t n, bool *ret_up) {
        if (json_is_object(rms))
                rms = json_object_get(rms, "rms");
        if (!json_is_array(rms))
                return -EBADMSG;
        for (size_t k = 0; k < n; k++)
                ret_up[k] = false;
        size_t i;
        json_t *rm;
        json_array_foreach(rms, i, rm) {
                const char *name = json_string_value(json_object_get(rm, "name"));
                const char *state = json_string_value(json_object_get(rm, "state"));
                if (!name || !state)
                        continue;
                for (size_t k = 0; k < n; k++)
                        if (streq(names[k], name))
                                ret_up[k] = streq(state, "up");
        }
        return 0;
}

int probe_rms(const char *oracle_url, const char *token, char *const *names, size_t n, bool *ret_up) {
        _cleanup_free_ char *url = xasprintf("%s/v1/rms", oracle_url);
        _cleanup_(http_response_clearp) http_response_t resp = { 0 };
        int r = http_call_json(&(http_call_t){ .token = token }, "GET", url, NULL, PROBE_HTTP_TIMEOUT_MS,
                                     &resp);
        if (r < 0)
                return r;
        if (resp.status != 200)
                return -EAGAIN;
        return probe_rms_parse(resp.json, names, n, ret_up);
}

int probe_tcp(const char *address, unsigned port) { return tcp_probe(address, port, 1000, 0); }
