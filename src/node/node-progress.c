/* Progress of a node's transfer for an operation, posted to the Oracle's heartbeat URL of
 * that operation so that it can tell a slow transfer from a stuck one. */
#include "base/util.h"
#include "net/http-client.h"
#include "node/node-progress.h"
#include "node/node-proto.h"

node_progress_t node_progress_for(node_t *n, const char *op) {
        return (node_progress_t){ .n = n, .url = op ? xasprintf("%s/v1/ops/%s/heartbeat", n->oracle, op) : NULL };
}

void node_progress_clear(node_progress_t *p) {
        free(p->url);
        p->url = NULL;
}

void node_progress_report(void *userdata, uint64_t done, uint64_t total) {
        node_progress_t *p = userdata;
        int64_t now = time_now_ms();
        if (!p->url || (now - p->last_ms < 250 && done < total))
                return;
        p->last_ms = now;
        json_t *body = node_proto_progress(p->base + done, p->base + total);
        http_response_t resp = { 0 };
        http_request_json("POST", p->url, body, 5000, &resp);
        http_response_clear(&resp);
        json_decref(body);
}
