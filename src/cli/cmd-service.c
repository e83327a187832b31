/* vmatrix service create | list | show | delete: services are pools of pre-booted VMs behind a
 * load-balancer frontend; the Oracle activates and drains them as their load moves. `create`
 * waits (with progress on a terminal) until the pool is pre-booted, or says why it failed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/commands.h"
#include "cli/output.h"

/* service show --json: DESIGN.md §4's fields, always present. */
static const char *const service_json_fields[] = { "name", "endpoint", "active", "pool", "vms" };

/* A service's health check as one cell, "http /health" or "tcp" (malloc'd; NULL when the
 * Oracle does not say, as one older than health checks). */
static char *health_cell(const json_t *sv) {
        const json_t *h = json_object_get(sv, "health");
        const char *kind = json_string_value(json_object_get(h, "kind"));
        const char *path = json_string_value(json_object_get(h, "path"));
        if (!kind)
                return NULL;
        return path ? xasprintf("%s %s", kind, path) : xstrdup(kind);
}

static int service_print(cli_t *c, json_t *sv) {
        if (!json_is_string(json_object_get(sv, "name")))
                return cli_fail(c, "unexpected answer from the Oracle: not a service object");
        if (c->json) {
                json_ensure_fields(sv, service_json_fields, ELEMENTSOF(service_json_fields));
                return output_json(c, sv, false);
        }
        static const char *const keys[] = { "name", "state", "error", "endpoint", "image", "active", "pool",
                                            "prebooted", "min", "max", "high", "window_s", "priority", "health" };
        /* the health object shown as its cell */
        _cleanup_(json_decrefp) json_t *view = json_copy(sv);
        _cleanup_free_ char *health = health_cell(sv);
        json_object_set_new(view, "health", health ? json_string(health) : json_null());
        kv_print(c->out, view, keys, ELEMENTSOF(keys));
        static const char *const headers[] = { "VM", "STATE", "RM", "ADDRESS", "PREBOOTED" };
        static const char *const vkeys[] = { "name", "state", "rm", "address", "prebooted" };
        _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(headers), headers);
        size_t i;
        json_t *vm;
        json_array_foreach(json_object_get(sv, "vms"), i, vm)
                for (unsigned k = 0; k < ELEMENTSOF(vkeys); k++)
                        table_add_json(t, vm, vkeys[k]);
        fputc('\n', c->out);
        table_flush(t, c->out);
        return CLI_OK;
}

/* Polls the service until it is created and serves (its min VMs active), or failed. */
static int service_wait(cli_t *c, const char *name, json_t **ret) {
        _cleanup_free_ char *path = xasprintf("/v1/services/%s", name);
        for (;;) {
                json_t *sv = NULL;
                int r = api_call(c, "GET", path, NULL, API_TIMEOUT_MS, &sv);
                if (r != CLI_OK)
                        return r;
                const char *state = json_string_value(json_object_get(sv, "state")) ?: "?";
                json_int_t active = json_integer_value(json_object_get(sv, "active"));
                json_int_t min = json_integer_value(json_object_get(sv, "min"));
                /* done once it serves: ready with its min VMs active (or failed) */
                if (!streq(state, "creating") && (!streq(state, "ready") || active >= min)) {
                        progress_clear(c);
                        *ret = sv;
                        return CLI_OK;
                }
                if (streq(state, "creating"))
                        progress_draw(c, name, "pre-booting the pool",
                                      (uint64_t)json_integer_value(json_object_get(sv, "prebooted")),
                                      (uint64_t)json_integer_value(json_object_get(sv, "pool_size")));
                else
                        progress_draw(c, name, "activating its min VMs", (uint64_t)active, (uint64_t)min);
                json_decref(sv);
                time_sleep_ms(500);
        }
}

int cmd_service_create(cli_t *c) {
        const char *name = cli_arg(c, 0), *image = cli_opt(c, "image");
        const char *health = cli_opt(c, "health"), *health_path = cli_opt(c, "health-path");
        int64_t pool = -1, min = -1, max = -1, priority = -1, memory = 0, vcpus = 0;
        double window = -1, high = -1;
        int r;
        if ((r = cli_check_name(c, "service", name)) != CLI_OK || (r = cli_check_name(c, "image", image)) != CLI_OK ||
            (r = cli_opt_int(c, "pool", 1, 1000, &pool)) != CLI_OK || (r = cli_opt_int(c, "min", 0, 1000, &min)) != CLI_OK ||
            (r = cli_opt_int(c, "max", 1, 1000, &max)) != CLI_OK ||
            (r = cli_opt_int(c, "priority", 0, 1000, &priority)) != CLI_OK ||
            (r = cli_opt_int(c, "memory", 16, 65536, &memory)) != CLI_OK ||
            (r = cli_opt_int(c, "vcpus", 1, 64, &vcpus)) != CLI_OK ||
            (r = cli_opt_double(c, "window", 0, 86400, &window)) != CLI_OK ||
            (r = cli_opt_double(c, "high", 1, 100, &high)) != CLI_OK)
                return r;
        if (pool < 0 || min < 0 || max < 0)
                return cli_usage(c, "service create needs --pool, --min and --max");
        if (min > max)
                return cli_usage(c, "--min (%lld) is above --max (%lld)", (long long)min, (long long)max);
        if (max > pool)
                return cli_usage(c, "--max (%lld) is above --pool (%lld): only the pool's VMs can be active",
                                 (long long)max, (long long)pool);
        /* the path itself is checked by the Oracle, the one place that lets it into HAProxy's configuration */
        if (health && !streq(health, "http") && !streq(health, "tcp"))
                return cli_usage(c, "--health must be http or tcp, not \"%s\"", health);
        if (health && streq(health, "tcp") && health_path)
                return cli_usage(c, "--health-path is for --health http; a tcp check has no path");
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:s,s:s,s:I,s:I,s:I}", "name", name, "image", image, "pool",
                                                         (json_int_t)pool, "min", (json_int_t)min, "max",
                                                         (json_int_t)max);
        if (window >= 0)
                json_object_set_new(body, "window_s", json_real(window));
        if (high >= 0)
                json_object_set_new(body, "high", json_real(high));
        if (priority >= 0)
                json_object_set_new(body, "priority", json_integer(priority));
        if (memory)
                json_object_set_new(body, "memory_mib", json_integer(memory));
        if (vcpus)
                json_object_set_new(body, "vcpus", json_integer(vcpus));
        if (health || health_path) {
                json_t *h = json_pack("{s:s}", "kind", health ? health : "http");
                if (health_path)
                        json_object_set_new(h, "path", json_string(health_path));
                json_object_set_new(body, "health", h);
        }
        _cleanup_(json_decrefp) json_t *sv = NULL;
        r = api_call(c, "POST", "/v1/services", body, API_TIMEOUT_MS, &sv);
        if (r != CLI_OK)
                return r;
        if (cli_flag(c, "no-wait"))
                return service_print(c, sv);
        json_decref(sv);
        sv = NULL;
        r = service_wait(c, name, &sv);
        if (r != CLI_OK)
                return r;
        if (streq(json_string_value(json_object_get(sv, "state")) ?: "", "failed"))
                return cli_fail(c, "service \"%s\" could not be created: %s", name,
                                json_string_value(json_object_get(sv, "error")) ?: "unknown error");
        return service_print(c, sv);
}

int cmd_service_list(cli_t *c) {
        _cleanup_(json_decrefp) json_t *svs = NULL;
        int r = api_call(c, "GET", "/v1/services", NULL, API_TIMEOUT_MS, &svs);
        if (r != CLI_OK)
                return r;
        if (!json_is_array(svs))
                return cli_fail(c, "unexpected answer from the Oracle to GET /v1/services: not an array");
        size_t i;
        json_t *sv;
        if (c->json) {
                json_array_foreach(svs, i, sv)
                        json_ensure_fields(sv, service_json_fields, ELEMENTSOF(service_json_fields));
                return output_json(c, svs, false);
        }
        static const char *const headers[] = { "NAME", "STATE", "ENDPOINT", "ACTIVE", "POOL", "MIN", "MAX", "IMAGE",
                                               "HEALTH" };
        static const char *const keys[] = { "name", "state", "endpoint", "active", "pool", "min", "max", "image" };
        _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(headers), headers);
        json_array_foreach(svs, i, sv) {
                for (unsigned k = 0; k < ELEMENTSOF(keys); k++)
                        table_add_json(t, sv, keys[k]);
                table_add_take(t, health_cell(sv));
        }
        table_flush(t, c->out);
        return CLI_OK;
}

/* METHOD /v1/services/NAME for the command's NAME argument. */
static int service_call(cli_t *c, const char *method, json_t **ret) {
        const char *name = cli_arg(c, 0);
        int r = cli_check_name(c, "service", name);
        if (r != CLI_OK)
                return r;
        _cleanup_free_ char *path = xasprintf("/v1/services/%s", name);
        return api_call(c, method, path, NULL, API_TIMEOUT_MS, ret);
}

int cmd_service_show(cli_t *c) {
        _cleanup_(json_decrefp) json_t *sv = NULL;
        int r = service_call(c, "GET", &sv);
        return r != CLI_OK ? r : service_print(c, sv);
}

int cmd_service_delete(cli_t *c) {
        const char *name = cli_arg(c, 0);
        _cleanup_(json_decrefp) json_t *sv = NULL;
        int r = service_call(c, "DELETE", &sv);
        if (r != CLI_OK || cli_flag(c, "no-wait"))
                return r != CLI_OK ? r : service_print(c, sv);
        /* wait until it is gone: its VMs are stopped and deleted first */
        for (bool gone = false; !gone;) {
                _cleanup_(json_decrefp) json_t *svs = NULL;
                r = api_call(c, "GET", "/v1/services", NULL, API_TIMEOUT_MS, &svs);
                if (r != CLI_OK)
                        return r;
                gone = true;
                size_t i;
                json_t *one;
                json_array_foreach(svs, i, one)
                        if (streq(json_string_value(json_object_get(one, "name")) ?: "", name))
                                gone = false;
                if (!gone)
                        time_sleep_ms(500);
        }
        if (c->json) {
                _cleanup_(json_decrefp) json_t *j = json_pack("{s:s,s:b}", "name", name, "deleted", 1);
                return output_json(c, j, false);
        }
        fprintf(c->out, "deleted service %s\n", name);
        return CLI_OK;
}
