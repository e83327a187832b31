/* `vmatrix events [--follow]`: the Oracle's event log (GET /v1/events?after=ID&limit=N), as a
 * table or JSON. --follow polls for new events until interrupted (SIGINT ends the process, as
 * with tail -f); every batch is flushed at once so pipes see events as they come. */
#include <string.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/commands.h"
#include "cli/output.h"

#define EVENTS_PAGE 500
#define EVENTS_FOLLOW_MS 500

static const char *const event_headers[] = { "TIME", "KIND", "VM", "SERVICE", "RM", "REASON" };
static const char *const event_keys[] = { "time", "kind", "vm", "service", "rm", "reason" };

static void event_row(table_t *t, const json_t *e) {
        table_add_take(t, json_time_cell(e, "time"));
        for (unsigned k = 1; k < ELEMENTSOF(event_keys); k++)
                table_add_json(t, e, event_keys[k]);
}

/* Appends the events of answer to all (when not NULL) and the table, advancing *after to the
 * last id. Returns how many there were. */
static size_t events_take(cli_t *c, const json_t *answer, json_t *all, table_t *t, json_int_t *after) {
        size_t i;
        const json_t *e;
        json_array_foreach(answer, i, e) {
                json_int_t id = json_integer_value(json_object_get(e, "id"));
                if (id > *after)
                        *after = id;
                if (all)
                        json_array_append(all, (json_t *)e);
                else if (c->json)
                        output_json(c, e, true);
                if (t)
                        event_row(t, e);
        }
        return json_array_size(answer);
}

/* Every event so far, page by page. */
static int events_list(cli_t *c, json_t *all, table_t *t, json_int_t *after) {
        for (;;) {
                _cleanup_free_ char *path = xasprintf("/v1/events?after=%" JSON_INTEGER_FORMAT "&limit=%d", *after,
                                                      EVENTS_PAGE);
                _cleanup_(json_decrefp) json_t *page = NULL;
                int r = api_call(c, "GET", path, NULL, API_TIMEOUT_MS, &page);
                if (r != CLI_OK)
                        return r;
                if (!json_is_array(page))
                        return cli_fail(c, "unexpected answer from the Oracle to GET /v1/events: not an array");
                json_int_t before = *after;
                if (events_take(c, page, all, t, after) < EVENTS_PAGE || *after == before)
                        return CLI_OK;
        }
}

/* Polls for new events forever. An unreachable Oracle (a restart) is waited out quietly. */
static int events_follow(cli_t *c, table_t *t, json_int_t after) {
        const char *base;
        int r = api_oracle(c, &base);
        if (r != CLI_OK)
                return r;
        for (;;) {
                time_sleep_ms(EVENTS_FOLLOW_MS);
                _cleanup_free_ char *url = xasprintf("%s/v1/events?after=%" JSON_INTEGER_FORMAT "&limit=%d", base,
                                                     after, EVENTS_PAGE);
                http_response_t resp = { 0 };
                if (http_call_json(api_credentials(c), "GET", url, NULL, API_TIMEOUT_MS, &resp) < 0)
                        continue;
                if (resp.status < 200 || resp.status >= 300 || !json_is_array(resp.json)) {
                        r = cli_fail(c, "%s", api_error_message(&resp));
                        http_response_clear(&resp);
                        return r;
                }
                events_take(c, resp.json, NULL, t, &after);
                http_response_clear(&resp);
                if (t)
                        table_flush(t, c->out);
        }
}

int cmd_events(cli_t *c) {
        bool follow = cli_flag(c, "follow");
        json_int_t after = 0;
        _cleanup_(table_freep) table_t *t = c->json ? NULL : table_new(ELEMENTSOF(event_headers), event_headers);
        /* with --follow, JSON is one object per line, so no array is collected */
        _cleanup_(json_decrefp) json_t *all = c->json && !follow ? json_array() : NULL;
        if (t && follow) {
                static const unsigned widths[] = { 19, 10, 12, 10, 8, 0 };
                table_set_min_widths(t, widths);
        }
        int r = events_list(c, all, t, &after);
        if (r != CLI_OK)
                return r;
        if (t)
                table_flush(t, c->out);
        if (all)
                r = output_json(c, all, false);
        if (r != CLI_OK || !follow)
                return r;
        return events_follow(c, t, after);
}
