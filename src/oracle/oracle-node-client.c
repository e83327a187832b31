/* Commands from the Oracle to a node's API (docs/api.md). The node's address comes from the
 * store view (the rms rows its heartbeats wrote). */
#include <string.h>

#include "base/util.h"
#include "net/http-client.h"
#include "oracle/oracle-internal.h"
#include "store/store-view.h"

int oracle_node_call(oracle_t *o, const char *rm, const char *method, const char *path, const json_t *body,
                     long timeout_ms, json_t **ret, char **ret_msg) {
        rm_record_t r = { 0 };
        if (store_view_rm_get(o->store, rm, &r) < 0) {
                *ret_msg = xasprintf("RM \"%s\" is not known", rm);
                return -ENOENT;
        }
        /* mutual TLS: the node must prove it is rm (and we, the Oracle) */
        _cleanup_free_ char *url = xasprintf("https://%s@%s%s", rm, r.address, path);
        http_response_t resp = { 0 };
        int k = http_request_json(method, url, body, timeout_ms, &resp);
        if (k < 0) {
                *ret_msg = xasprintf("RM \"%s\" did not answer: %s", rm, http_error_message(NULL, k));
                return k == -ETIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH;
        }
        if (resp.status < 200 || resp.status >= 300) {
                *ret_msg = xasprintf("RM \"%s\": %s", rm, http_error_message(&resp, 0));
                utf8_sanitize(*ret_msg); /* a body that is not JSON may be any bytes */
                const char *code = json_string_value(json_object_get(json_object_get(resp.json, "error"), "code"));
                /* a node that answers 5xx failed on its side: whether it did part of the command
                 * is not known (-EREMOTEIO), unlike a refusal, which changed nothing */
                int err = code && streq(code, "stale_version") ? -ESTALE
                          : code && streq(code, "not_found")   ? -ENOENT
                          : resp.status == 400                 ? -EINVAL
                          : resp.status >= 500                 ? -EREMOTEIO
                                                               : -EIO;
                http_response_clear(&resp);
                return err;
        }
        *ret = resp.json ? json_incref(resp.json) : json_object();
        http_response_clear(&resp);
        return 0;
}
