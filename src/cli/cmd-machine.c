/* A buyer's commands (DESIGN.md §11, the Virtuoso report §5.1): vm register, vm edit, vm offers,
 * vm store, and the account: account show, account deposit (the admin's). */
#include <string.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/cmd-market.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "market/market.h"

/* --bid-storage and --bid-running ("P/D") into bid (which holds the other half on an edit). */
static int bid_opts(cli_t *c, json_t *bid) {
        static const struct {
                const char *opt, *price, *period;
        } f[] = { { "bid-storage", "storage_price", "storage_period_s" },
                  { "bid-running", "running_price", "running_period_s" } };
        for (size_t i = 0; i < ELEMENTSOF(f); i++) {
                const char *v = cli_opt(c, f[i].opt);
                if (!v)
                        continue;
                int64_t price = 0, period = 0;
                int r = rate_parse(v, &price, &period);
                if (r < 0)
                        return cli_usage(c, "--%s %s: %s (a price per period, such as 3/30d or 0.002/1h)", f[i].opt, v,
                                         r == -ERANGE ? "out of range" : "not a price per period");
                json_object_set_new(bid, f[i].price, json_integer(price));
                json_object_set_new(bid, f[i].period, json_integer(period));
        }
        return CLI_OK;
}

/* The size and image options into body. */
static int size_opts(cli_t *c, json_t *body) {
        int r;
        if ((r = market_int_opt(c, "memory", body, "memory_mib")) != CLI_OK ||
            (r = market_int_opt(c, "vcpus", body, "vcpus")) != CLI_OK ||
            (r = market_int_opt(c, "disk", body, "disk_gib")) != CLI_OK)
                return r;
        if (cli_opt(c, "image"))
                json_object_set_new(body, "image", json_string(cli_opt(c, "image")));
        if (cli_opt(c, "config"))
                json_object_set_new(body, "config", json_string(cli_opt(c, "config")));
        return CLI_OK;
}

static void machine_print(cli_t *c, const json_t *vm, const char *what) {
        const json_t *m = json_object_get(vm, "market");
        const json_t *bid = json_object_get(m, "bid");
        _cleanup_free_ char *bs = market_rate_text(json_object_get(bid, "storage_price"),
                                                   json_object_get(bid, "storage_period_s"));
        _cleanup_free_ char *br = market_rate_text(json_object_get(bid, "running_price"),
                                                   json_object_get(bid, "running_period_s"));
        fprintf(c->out, "vm %s %s: %lld MiB, %lld vCPUs, %lld GiB of %s; bid %s stored, %s running; state %s\n",
                json_string_value(json_object_get(vm, "name")), what,
                (long long)json_integer_value(json_object_get(vm, "memory_mib")),
                (long long)json_integer_value(json_object_get(vm, "vcpus")),
                (long long)json_integer_value(json_object_get(m, "disk_gib")),
                json_string_value(json_object_get(vm, "image")), bs, br, json_string_value(json_object_get(vm, "state")));
}

int cmd_vm_register(cli_t *c) {
        const char *name = cli_arg(c, 0);
        int r = cli_check_name(c, "VM", name);
        if (r != CLI_OK)
                return r;
        if (!cli_opt(c, "image") && !cli_opt(c, "config"))
                return cli_usage(c, "vm register needs --image IMAGE or --config NAME (market configs)");
        if (!cli_opt(c, "bid-storage") || !cli_opt(c, "bid-running"))
                return cli_usage(c, "vm register needs --bid-storage P/D and --bid-running P/D");
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:s,s:{}}", "name", name, "bid");
        if ((r = size_opts(c, body)) != CLI_OK || (r = bid_opts(c, json_object_get(body, "bid"))) != CLI_OK)
                return r;
        _cleanup_(json_decrefp) json_t *res = NULL;
        r = api_call(c, "POST", "/v1/machines", body, API_TIMEOUT_MS, &res);
        if (r != CLI_OK || c->json)
                return r != CLI_OK ? r : output_json(c, res, false);
        machine_print(c, res, "registered");
        return CLI_OK;
}

int cmd_vm_edit(cli_t *c) {
        const char *name = cli_arg(c, 0);
        int r = cli_check_name(c, "VM", name);
        if (r != CLI_OK)
                return r;
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s", name);
        _cleanup_(json_decrefp) json_t *body = json_object();
        if ((r = size_opts(c, body)) != CLI_OK)
                return r;
        if (cli_opt(c, "bid-storage") || cli_opt(c, "bid-running")) {
                /* half a bid keeps the other half */
                _cleanup_(json_decrefp) json_t *vm = NULL;
                r = api_call(c, "GET", path, NULL, API_TIMEOUT_MS, &vm);
                if (r != CLI_OK)
                        return r;
                json_t *bid = json_deep_copy(json_object_get(json_object_get(vm, "market"), "bid"));
                json_object_set_new(body, "bid", bid ? bid : json_object());
                if ((r = bid_opts(c, json_object_get(body, "bid"))) != CLI_OK)
                        return r;
        }
        if (json_object_size(body) == 0)
                return cli_usage(c, "vm edit: nothing to change (--image, --config, --memory, --vcpus, --disk, "
                                    "--bid-storage, --bid-running)");
        _cleanup_(json_decrefp) json_t *res = NULL;
        r = api_call(c, "PATCH", path, body, API_TIMEOUT_MS, &res);
        if (r != CLI_OK || c->json)
                return r != CLI_OK ? r : output_json(c, res, false);
        machine_print(c, res, "edited");
        return CLI_OK;
}

/* `vm offers --json` contract fields (DESIGN.md §11). */
static const char *const offer_fields[] = { "rm", "provider", "storage_price", "running_price", "storage_period_s",
                                            "running_period_s", "free" };

int cmd_vm_offers(cli_t *c) {
        const char *name = cli_arg(c, 0);
        int r = cli_check_name(c, "VM", name);
        if (r != CLI_OK)
                return r;
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/offers", name);
        _cleanup_(json_decrefp) json_t *list = NULL;
        r = api_call(c, "GET", path, NULL, API_TIMEOUT_MS, &list);
        if (r != CLI_OK)
                return r;
        if (!json_is_array(list))
                return cli_fail(c, "unexpected answer from the Oracle to GET %s: not an array", path);
        if (c->json) {
                size_t i;
                json_t *of;
                json_array_foreach(list, i, of) json_ensure_fields(of, offer_fields, ELEMENTSOF(offer_fields));
                return output_json(c, list, false);
        }
        if (json_array_size(list) == 0) {
                fprintf(c->out, "no offer matches vm %s: none has room for it at a price its bid covers (raise the "
                                "bid with vm edit, or try later)\n", name);
                return CLI_OK;
        }
        static const char *const headers[] = { "RM",       "PROVIDER",    "STORAGE",  "RUNNING",
                                               "FREE",     "STORAGE/30D", "RUN/30D", "METHODS" };
        _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(headers), headers);
        size_t i;
        const json_t *of;
        json_array_foreach(list, i, of) {
                const json_t *free_ = json_object_get(of, "free"), *est = json_object_get(of, "estimate_30d");
                table_add_json(t, of, "rm");
                table_add_json(t, of, "provider");
                table_add_take(t, market_rate_text(json_object_get(of, "storage_price"),
                                                   json_object_get(of, "storage_period_s")));
                table_add_take(t, market_rate_text(json_object_get(of, "running_price"),
                                                   json_object_get(of, "running_period_s")));
                table_add_take(t, xasprintf("%lldcpu/%lldM/%lldG",
                                            (long long)json_integer_value(json_object_get(free_, "vcpus")),
                                            (long long)json_integer_value(json_object_get(free_, "memory_mib")),
                                            (long long)json_integer_value(json_object_get(free_, "disk_gib"))));
                table_add_take(t, market_money_text(json_integer_value(json_object_get(est, "storage"))));
                table_add_take(t, market_money_text(json_integer_value(json_object_get(est, "running"))));
                const json_t *methods = json_object_get(of, "methods");
                if (json_is_array(methods)) {
                        char buf[128] = "";
                        size_t k;
                        const json_t *m;
                        json_array_foreach(methods, k, m) {
                                if (*buf)
                                        strncat(buf, ",", sizeof buf - strlen(buf) - 1);
                                strncat(buf, json_string_value(m) ?: "?", sizeof buf - strlen(buf) - 1);
                        }
                        table_add(t, buf);
                } else {
                        table_add(t, NULL);
                }
        }
        table_flush(t, c->out);
        return CLI_OK;
}

int cmd_vm_store(cli_t *c) {
        const char *name = cli_arg(c, 0), *rm = cli_opt(c, "at");
        int r = cli_check_name(c, "VM", name);
        if (r == CLI_OK)
                r = cli_check_name(c, "RM", rm);
        if (r != CLI_OK)
                return r;
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/store", name);
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:s}", "rm", rm);
        _cleanup_(json_decrefp) json_t *res = NULL;
        r = api_call(c, "POST", path, body, API_TIMEOUT_MS, &res);
        if (r != CLI_OK || c->json)
                return r != CLI_OK ? r : output_json(c, res, false);
        const json_t *terms = json_object_get(json_object_get(res, "market"), "terms");
        _cleanup_free_ char *s = market_rate_text(json_object_get(terms, "storage_price"),
                                                  json_object_get(terms, "storage_period_s"));
        _cleanup_free_ char *run = market_rate_text(json_object_get(terms, "running_price"),
                                                    json_object_get(terms, "running_period_s"));
        fprintf(c->out, "vm %s stored at RM %s: storage %s, running %s\n", name, rm, s, run);
        return CLI_OK;
}

/* ---- the account ---- */

/* A duration of s seconds in its two largest units: "3d 4h", "2h 5m", "7m 30s", "12s". */
static void remaining_text(int64_t s, char *buf, size_t size) {
        if (s < 0)
                s = 0;
        if (s >= 86400)
                snprintf(buf, size, "%lldd %lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
        else if (s >= 3600)
                snprintf(buf, size, "%lldh %lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
        else if (s >= 60)
                snprintf(buf, size, "%lldm %llds", (long long)(s / 60), (long long)(s % 60));
        else
                snprintf(buf, size, "%llds", (long long)s);
}

/* `account show --json` contract fields (DESIGN.md §11). */
static const char *const account_fields[] = { "user", "role", "balance", "charges", "runs_out_s" };

int cmd_account_show(cli_t *c) {
        const char *user = cli_arg(c, 0);
        if (user) {
                int r = cli_check_name(c, "user", user);
                if (r != CLI_OK)
                        return r;
        }
        const char *limit = cli_opt(c, "limit");
        int64_t n = 100;
        if (limit && parse_int64(limit, 0, 10000, &n) < 0)
                return cli_usage(c, "--limit %s: a count from 0 to 10000", limit);
        _cleanup_free_ char *path = user ? xasprintf("/v1/accounts/%s?limit=%lld", user, (long long)n)
                                         : xasprintf("/v1/account?limit=%lld", (long long)n);
        _cleanup_(json_decrefp) json_t *a = NULL;
        int r = api_call(c, "GET", path, NULL, API_TIMEOUT_MS, &a);
        if (r != CLI_OK)
                return r;
        if (c->json) {
                json_ensure_fields(a, account_fields, ELEMENTSOF(account_fields));
                return output_json(c, a, false);
        }
        _cleanup_free_ char *bal = market_money_text(json_integer_value(json_object_get(a, "balance")));
        _cleanup_free_ char *avail = market_money_text(json_integer_value(json_object_get(a, "available")));
        _cleanup_free_ char *rate = market_money_text(json_integer_value(json_object_get(a, "rate_per_hour")));
        fprintf(c->out, "%s (%s): balance %s, available %s, charging %s per hour", json_string_value(json_object_get(a, "user")),
                json_string_value(json_object_get(a, "role")), bal, avail, rate);
        /* runs_out_s is a duration from now, not a point in time */
        const json_t *out = json_object_get(a, "runs_out_s");
        if (json_is_integer(out)) {
                char in[48];
                remaining_text(json_integer_value(out), in, sizeof in);
                fprintf(c->out, ", runs out in %s", in);
        }
        fputc('\n', c->out);
        const json_t *per_vm = json_object_get(a, "per_vm");
        if (json_object_size(per_vm)) {
                static const char *const ph[] = { "MACHINE", "CHARGED" };
                _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(ph), ph);
                const char *k;
                const json_t *v;
                json_object_foreach((json_t *)per_vm, k, v) {
                        table_add(t, k);
                        table_add_take(t, market_money_text(json_integer_value(v)));
                }
                fputc('\n', c->out);
                table_flush(t, c->out);
        }
        const json_t *charges = json_object_get(a, "charges");
        if (json_array_size(charges)) {
                static const char *const ch[] = { "MACHINE", "KIND", "PROVIDER", "FROM", "SECONDS", "AMOUNT" };
                _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(ch), ch);
                size_t i;
                const json_t *x;
                json_array_foreach(charges, i, x) {
                        json_int_t start = json_integer_value(json_object_get(x, "period_start"));
                        json_int_t end = json_integer_value(json_object_get(x, "period_end"));
                        char when[64];
                        format_time((double)start / 1000.0, when, sizeof when);
                        table_add_json(t, x, "vm");
                        table_add_json(t, x, "kind");
                        table_add_json(t, x, "provider");
                        table_add(t, when);
                        table_add_take(t, xasprintf("%.3f", (double)(end - start) / 1000.0));
                        table_add_take(t, market_money_text(json_integer_value(json_object_get(x, "amount"))));
                }
                fputc('\n', c->out);
                table_flush(t, c->out);
        }
        return CLI_OK;
}

int cmd_account_deposit(cli_t *c) {
        const char *user = cli_arg(c, 0), *amount = cli_arg(c, 1);
        int r = cli_check_name(c, "user", user);
        if (r != CLI_OK)
                return r;
        int64_t micro = 0;
        if (!amount || money_parse(amount, &micro) < 0 || micro <= 0)
                return cli_usage(c, "%s is not an amount (a positive number with up to six decimals)", amount ? amount : "");
        _cleanup_free_ char *path = xasprintf("/v1/accounts/%s/deposit", user);
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:I}", "amount", (json_int_t)micro);
        _cleanup_(json_decrefp) json_t *res = NULL;
        r = api_call(c, "POST", path, body, API_TIMEOUT_MS, &res);
        if (r != CLI_OK || c->json)
                return r != CLI_OK ? r : output_json(c, res, false);
        _cleanup_free_ char *bal = market_money_text(json_integer_value(json_object_get(res, "balance")));
        fprintf(c->out, "deposited into the account of %s: balance %s\n", user, bal);
        return CLI_OK;
}
