/* `vmatrix service top [NAME] [--once] [--interval SECONDS]`: the load of services and of their
 * VMs (GET /v1/services/NAME/top), one line per service and a row per VM, refreshed on a
 * terminal until interrupted (SIGINT ends the process, as with top). With --json, --once or
 * when stdout is not a terminal it prints once: the top object of NAME, or an array of them.
 *
 * While refreshing, a failed request (an Oracle restarting) shows in place of the figures and
 * is tried again at the next refresh; only the first one ends the command. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/cmd-service-top.h"
#include "cli/commands.h"
#include "cli/output.h"

#define TOP_INTERVAL_DEFAULT_S 2.0

const cli_option_t service_top_options[] = {
        { "once", NULL, "print once and return (always so with --json or when stdout is not a terminal)" },
        { "interval", "SECONDS", "refresh every SECONDS, 0.2..3600 (default 2)" },
        { NULL },
};

/* GET base+path without printing: 0 and the JSON answer, or -errno and a message (malloc'd):
 * -ENOENT for a 404, -EHOSTUNREACH when no answer came, -EPROTO for other failures. */
static int top_get(const http_call_t *cred, const char *base, const char *path, json_t **ret, char **ret_msg) {
        _cleanup_free_ char *url = xasprintf("%s%s", base, path);
        http_response_t resp = { 0 };
        int t = http_call_json(cred, "GET", url, NULL, API_TIMEOUT_MS, &resp);
        if (t < 0) {
                *ret_msg = xasprintf("cannot reach the Oracle at %s: %s", base, http_error_message(NULL, t));
                return -EHOSTUNREACH;
        }
        int r = 0;
        if (resp.status < 200 || resp.status >= 300) {
                *ret_msg = xstrdup(api_error_message(&resp));
                r = resp.status == 404 ? -ENOENT : -EPROTO;
        } else if (!resp.json) {
                *ret_msg = xasprintf("unexpected answer from the Oracle at %s to GET %s: not JSON", base, path);
                r = -EPROTO;
        } else {
                *ret = TAKE_PTR(resp.json);
        }
        http_response_clear(&resp);
        return r;
}

/* The top objects of service name, or of every service when name is NULL (a service deleted
 * meanwhile is left out), as an array in *ret. */
static int top_collect(const http_call_t *cred, const char *base, const char *name, json_t **ret, char **ret_msg) {
        _cleanup_(json_decrefp) json_t *all = json_array();
        if (name) {
                _cleanup_free_ char *path = xasprintf("/v1/services/%s/top", name);
                json_t *top = NULL;
                int r = top_get(cred, base, path, &top, ret_msg);
                if (r < 0)
                        return r;
                json_array_append_new(all, top);
                *ret = TAKE_PTR(all);
                return 0;
        }
        _cleanup_(json_decrefp) json_t *answer = NULL;
        int r = top_get(cred, base, "/v1/services", &answer, ret_msg);
        if (r < 0)
                return r;
        /* an array of services, or {"services": [...]} */
        const json_t *list = json_is_array(answer) ? answer : json_object_get(answer, "services");
        if (!json_is_array(list)) {
                *ret_msg = xstrdup("unexpected answer from the Oracle to GET /v1/services: no list of services");
                return -EPROTO;
        }
        size_t i;
        const json_t *sv;
        json_array_foreach(list, i, sv) {
                const char *n = json_string_value(json_object_get(sv, "name"));
                if (!n || !name_is_valid(n))
                        continue;
                _cleanup_free_ char *path = xasprintf("/v1/services/%s/top", n);
                json_t *top = NULL;
                _cleanup_free_ char *msg = NULL;
                r = top_get(cred, base, path, &top, &msg);
                if (r == -ENOENT)
                        continue;
                if (r < 0) {
                        *ret_msg = TAKE_PTR(msg);
                        return r;
                }
                json_array_append_new(all, top);
        }
        *ret = TAKE_PTR(all);
        return 0;
}

/* obj[key] times scale with decimals, or "-" when it is not a number (no fresh figure). */
static char *num_cell(const json_t *obj, const char *key, double scale, int decimals) {
        const json_t *v = json_object_get(obj, key);
        if (!json_is_number(v))
                return xstrdup("-");
        return xasprintf("%.*f", decimals, json_number_value(v) * scale);
}

/* "web (ready)  active 2/4  load 1.35  120.0 req/s  queue 0  response 12 ms  127.0.0.1:8100" */
static void service_line(FILE *f, const json_t *sv) {
        _cleanup_free_ char *active = json_cell(sv, "active"), *pool = json_cell(sv, "pool");
        _cleanup_free_ char *load = num_cell(sv, "load", 1, 2), *rate = num_cell(sv, "request_rate", 1, 1);
        _cleanup_free_ char *queue = num_cell(sv, "queue", 1, 0), *resp = num_cell(sv, "response_ms", 1, 0);
        const char *name = json_string_value(json_object_get(sv, "name")) ?: "?";
        const char *state = json_string_value(json_object_get(sv, "state")) ?: "?";
        const char *endpoint = json_string_value(json_object_get(sv, "endpoint"));
        fprintf(f, "%s (%s)  active %s/%s  load %s  %s req/s  queue %s  response %s ms%s%s\n", name, state, active,
                pool, load, rate, queue, resp, endpoint ? "  " : "", endpoint ? endpoint : "");
}

static void vm_table(FILE *f, const json_t *vms) {
        static const char *const headers[] = { "VM", "STATE", "RM", "CPU%", "RSS MiB", "READ KiB/s", "WRITE KiB/s",
                                               "RX KiB/s", "TX KiB/s" };
        static const char *const rates[] = { "disk_read_bps", "disk_write_bps", "net_rx_bps", "net_tx_bps" };
        if (json_array_size(vms) == 0) {
                fputs("  (no VMs)\n", f);
                return;
        }
        _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(headers), headers);
        size_t i;
        const json_t *vm;
        json_array_foreach(vms, i, vm) {
                table_add_json(t, vm, "name");
                table_add_json(t, vm, "state");
                table_add_json(t, vm, "rm");
                table_add_take(t, num_cell(vm, "cpu", 100, 1));
                table_add_take(t, num_cell(vm, "rss_bytes", 1.0 / (1 << 20), 1));
                for (size_t k = 0; k < ELEMENTSOF(rates); k++)
                        table_add_take(t, num_cell(vm, rates[k], 1.0 / 1024, 1));
        }
        table_flush(t, f);
}

/* One screen of text for the array of top objects. */
static void top_render(FILE *f, const json_t *tops) {
        if (json_array_size(tops) == 0) {
                fputs("no services\n", f);
                return;
        }
        size_t i;
        const json_t *top;
        json_array_foreach(tops, i, top) {
                if (i > 0)
                        fputc('\n', f);
                service_line(f, json_object_get(top, "service"));
                vm_table(f, json_object_get(top, "vms"));
        }
}

/* Draws a refresh on the terminal: screen cleared, a title, then the figures or the error. */
static void top_draw(cli_t *c, double interval_s, const json_t *tops, const char *error) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                abort(); /* only fails for want of memory */
        char now[32];
        fprintf(f, "\033[H\033[2J" "every %gs: vmatrix service top  %s\n\n", interval_s,
                format_time(time_wall_s(), now, sizeof now));
        if (error)
                fprintf(f, "%s (trying again)\n", error);
        else
                top_render(f, tops);
        fclose(f);
        /* one write per refresh, so the screen does not flicker */
        fwrite(text, 1, len, c->out);
        fflush(c->out);
        free(text);
}

int cmd_service_top(cli_t *c) {
        const char *name = cli_arg(c, 0), *iv = cli_opt(c, "interval");
        double interval_s = TOP_INTERVAL_DEFAULT_S;
        int r;
        if (name && (r = cli_check_name(c, "service", name)) != CLI_OK)
                return r;
        if (iv) {
                char *end = NULL;
                interval_s = strtod(iv, &end);
                if (!*iv || *end || !isfinite(interval_s) || interval_s < 0.2 || interval_s > 3600)
                        return cli_usage(c, "--interval must be a number of seconds from 0.2 to 3600, not \"%s\"", iv);
        }
        const char *base;
        if ((r = api_oracle(c, &base)) != CLI_OK)
                return r;

        _cleanup_(json_decrefp) json_t *tops = NULL;
        _cleanup_free_ char *msg = NULL;
        if (top_collect(api_credentials(c), base, name, &tops, &msg) < 0)
                return cli_fail(c, "%s", msg);
        bool once = cli_flag(c, "once") || c->json || isatty(fileno(c->out)) <= 0;
        if (once && c->json)
                return output_json(c, name ? json_array_get(tops, 0) : tops, false);
        if (once) {
                top_render(c->out, tops);
                return CLI_OK;
        }
        for (;;) {
                top_draw(c, interval_s, tops, msg);
                time_sleep_ms((int64_t)(interval_s * 1000));
                json_decref(tops);
                tops = NULL;
                free(msg);
                msg = NULL;
                if (top_collect(api_credentials(c), base, name, &tops, &msg) < 0)
                        tops = NULL;
        }
}
