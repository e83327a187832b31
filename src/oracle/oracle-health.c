/* A service's health check as the Oracle applies it: read from the create request (the only way
 * in), handed to HAProxy (lb_service_t), and tried by the pool on a freshly booted VM before it
 * is hibernated. One reading of the stored kind and path for all three, so a VM the pool calls
 * ready is one HAProxy calls up.
 *
 * A tcp check is weak behind QEMU's user networking (hostfwd): the host side of a VM's port
 * accepts as soon as QEMU runs, whatever the guest does, so HAProxy's connect check only tells
 * that QEMU is there. The pool's probe also waits HEALTH_TCP_HOLD_MS for the connection to be
 * dropped, which is what slirp does when the guest refuses it (its service is not listening
 * yet); a guest whose network is not up yet still looks ready. An image that serves HTTP is
 * better checked with http (--health-path /, for a stock web server). */
#include <string.h>

#include "base/util.h"
#include "net/http-client.h"
#include "net/tcp-probe.h"
#include "oracle/oracle-internal.h"

#define HEALTH_TCP_HOLD_MS 500

int oracle_service_health_from_body(const json_t *body, service_record_t *sv, char **ret_msg) {
        const json_t *h = json_object_get(body, "health");
        lb_health_kind_t kind = LB_HEALTH_HTTP;
        const char *path = LB_HEALTH_PATH_DEFAULT;
        if (h && !json_is_null(h)) {
                if (!json_is_object(h)) {
                        *ret_msg = xstrdup("health must be an object: {\"kind\": \"http\"|\"tcp\", \"path\": \"/...\"}");
                        return -EINVAL;
                }
                const char *key;
                json_t *v;
                json_object_foreach((json_t *)h, key, v)
                        if (!streq(key, "kind") && !streq(key, "path")) {
                                *ret_msg = xasprintf("health has no field \"%.64s\" (it has kind and path)", key);
                                return -EINVAL;
                        }
                const json_t *k = json_object_get(h, "kind"), *p = json_object_get(h, "path");
                if (k && (!json_is_string(k) || lb_health_kind_parse(json_string_value(k), &kind) < 0)) {
                        *ret_msg = xstrdup("health.kind must be \"http\" or \"tcp\"");
                        return -EINVAL;
                }
                if (p && kind == LB_HEALTH_TCP) {
                        *ret_msg = xstrdup("a tcp health check has no path (a path is for an http check)");
                        return -EINVAL;
                }
                if (p && (!json_is_string(p) || !lb_health_path_valid(json_string_value(p)))) {
                        *ret_msg = xasprintf("health.path must start with '/' and have at most %d characters of a URL "
                                             "path and query: letters, digits and -._~%%!&()*+,;=:@/?",
                                             LB_HEALTH_PATH_MAX);
                        return -EINVAL;
                }
                if (p)
                        path = json_string_value(p);
        }
        SET(sv->health_kind, lb_health_kind_name(kind));
        SET(sv->health_path, kind == LB_HEALTH_HTTP ? path : "");
        return 0;
}

lb_health_kind_t oracle_service_health_kind(const service_record_t *sv) {
        lb_health_kind_t kind = LB_HEALTH_HTTP;
        (void)lb_health_kind_parse(sv->health_kind, &kind);
        return kind;
}

const char *oracle_service_health_path(const service_record_t *sv) {
        return *sv->health_path ? sv->health_path : LB_HEALTH_PATH_DEFAULT;
}

char *oracle_service_health_text(const service_record_t *sv) {
        if (oracle_service_health_kind(sv) == LB_HEALTH_TCP)
                return xstrdup("TCP connect");
        return xasprintf("GET %s", oracle_service_health_path(sv));
}

bool oracle_service_health_probe(const service_record_t *sv, const char *address, int timeout_ms) {
        if (oracle_service_health_kind(sv) == LB_HEALTH_TCP)
                return tcp_probe_address(address, timeout_ms, HEALTH_TCP_HOLD_MS) == 0;
        _cleanup_free_ char *url = xasprintf("http://%s%s", address, oracle_service_health_path(sv));
        http_response_t resp = { 0 };
        int r = http_request_bytes("GET", url, NULL, 0, timeout_ms, &resp);
        bool ok = r >= 0 && lb_health_status_ok(resp.status);
        http_response_clear(&resp);
        return ok;
}
