/* Progress of a node's transfer for an operation, posted to the Oracle's heartbeat URL of
 * that operation so that it can tell a slow transfer from a stuck one. */
#include "base/util.h"
#include "net/http-client.h"
#include "node/node-progress.h"

void node_progress_report(void *userdata, uint64_t done, uint64_t total) {
        node_progress_t *p = userdata;
        int64_t now = time_now_ms();
        if (!p->url || (now - p->last_ms < 250 && done < total))
                return;
        p->last_ms = now;
        json_t *body = json_pack("{s:I,s:I}", "done", (json_int_t)(p->base + done), "total", (json_int_t)(p->base + total));
        http_response_t resp = { 0 };
        http_request_json("POST", p->url, body, 5000, &resp);
        http_response_clear(&resp);
        json_decref(body);
}
