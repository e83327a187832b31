/* Waits for an operation (see ops-wait.h). Transport errors while polling are retried for a
 * while, because the Oracle finishes or undoes operations after a restart (DESIGN.md §8) and a
 * waiting CLI should see that outcome rather than the restart. */
#include "cli/ops-wait.h"

#include <string.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/output.h"

static const char *op_str(const json_t *op, const char *key) {
        const char *s = json_string_value(json_object_get(op, key));
        return s ? s : "";
}

static void op_draw(cli_t *c, const json_t *op, const char *label, int64_t start_ms) {
        const json_t *p = json_object_get(op, "progress");
        const char *phase = json_string_value(json_object_get(p, "phase"));
        json_int_t done = json_integer_value(json_object_get(p, "done"));
        json_int_t total = json_integer_value(json_object_get(p, "total"));
        _cleanup_free_ char *text = xasprintf("%s %llds", phase && *phase ? phase : op_str(op, "state"),
                                              (long long)((time_now_ms() - start_ms) / 1000));
        progress_draw(c, label, text, done > 0 ? (uint64_t)done : 0, total > 0 ? (uint64_t)total : 0);
}

int ops_wait(cli_t *c, const json_t *op, json_t **ret_op) {
        const char *id = json_string_value(json_object_get(op, "id"));
        if (!id || !name_is_valid(id))
                return cli_fail(c, "unexpected answer from the Oracle: no valid operation id");
        const char *base;
        int r = api_oracle(c, &base);
        if (r != CLI_OK)
                return r;
        /* long poll: the Oracle answers as soon as the operation changes, or after wait_ms */
        _cleanup_free_ char *url = xasprintf("%s/v1/ops/%s?wait_ms=%d", base, id, OPS_POLL_MS * 10);
        _cleanup_free_ char *label = xasprintf("%s %s", op_str(op, "kind"), op_str(op, "vm"));
        _cleanup_(json_decrefp) json_t *cur = json_deep_copy(op);
        int64_t start = time_now_ms(), last_ok = start;

        for (;;) {
                const char *state = op_str(cur, "state");
                if (streq(state, "done")) {
                        progress_clear(c);
                        *ret_op = TAKE_PTR(cur);
                        return CLI_OK;
                }
                if (streq(state, "failed")) {
                        const char *error = op_str(cur, "error");
                        if (*error)
                                return cli_fail(c, "%s", error);
                        return cli_fail(c, "operation %s (%s) failed", id, label);
                }
                op_draw(c, cur, label, start);

                http_response_t resp = { 0 };
                int64_t asked = time_now_ms();
                int t = http_call_json(api_credentials(c), "GET", url, NULL, API_TIMEOUT_MS, &resp);
                /* a server that ignores wait_ms answers at once: do not spin on it */
                if (t >= 0 && time_now_ms() - asked < 5 && json_is_object(resp.json) &&
                    streq(op_str(resp.json, "state"), "running"))
                        time_sleep_ms(OPS_POLL_MS / 10);
                if (t < 0) {
                        time_sleep_ms(OPS_POLL_MS);
                        if (time_now_ms() - last_ok > OPS_UNREACHABLE_MS)
                                return cli_fail(c, "cannot reach the Oracle at %s: %s (operation %s may still run)",
                                                base, http_error_message(NULL, t), id);
                        continue;
                }
                if (resp.status < 200 || resp.status >= 300 || !json_is_object(resp.json)) {
                        r = cli_fail(c, "cannot follow operation %s: %s", id, api_error_message(&resp));
                        http_response_clear(&resp);
                        return r;
                }
                last_ok = time_now_ms();
                json_decref(cur);
                cur = TAKE_PTR(resp.json);
                http_response_clear(&resp);
        }
}
