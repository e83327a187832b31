/* The marketplace's commands (DESIGN.md §11): an operator hands RMs to providers; providers set,
 * list and withdraw offers; the admin keeps suggested configurations and the registration fee;
 * everyone reads the market's prices. Money is given and printed in units with up to six
 * decimals (the API carries integer micro-units); periods as 30d, 12h, 5m or 3600s. */
#include <string.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/cmd-market.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "market/market.h"

char *market_money_text(json_int_t micro) {
        char buf[MONEY_TEXT_MAX];
        money_format(micro, buf);
        return xstrdup(buf);
}

char *market_rate_text(const json_t *price, const json_t *period) {
        if (!json_is_integer(price) || !json_is_integer(period))
                return xstrdup("-");
        char m[MONEY_TEXT_MAX], d[DURATION_TEXT_MAX];
        money_format(json_integer_value(price), m);
        duration_format(json_integer_value(period), d);
        return xasprintf("%s/%s", m, d);
}

int market_money_opt(cli_t *c, const char *opt, json_t *body, const char *key) {
        const char *v = cli_opt(c, opt);
        if (!v)
                return CLI_OK;
        int64_t micro = 0;
        int r = money_parse(v, &micro);
        if (r < 0)
                return cli_usage(c, "--%s %s: %s (a non-negative amount with up to six decimals)", opt, v,
                                 r == -ERANGE ? "too large" : "not an amount");
        json_object_set_new(body, key, json_integer(micro));
        return CLI_OK;
}

int market_duration_opt(cli_t *c, const char *opt, json_t *body, const char *key) {
        const char *v = cli_opt(c, opt);
        if (!v)
                return CLI_OK;
        int64_t s = 0;
        int r = duration_parse(v, &s);
        if (r < 0)
                return cli_usage(c, "--%s %s: %s (such as 30d, 12h, 5m or 3600s; 1 s to 3650 days)", opt, v,
                                 r == -ERANGE ? "out of range" : "not a duration");
        json_object_set_new(body, key, json_integer(s));
        return CLI_OK;
}

int market_int_opt(cli_t *c, const char *opt, json_t *body, const char *key) {
        const char *v = cli_opt(c, opt);
        if (!v)
                return CLI_OK;
        char *end = NULL;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || errno || n < 0)
                return cli_usage(c, "--%s %s: not a whole number", opt, v);
        json_object_set_new(body, key, json_integer(n));
        return CLI_OK;
}

/* ---- rm assign ---- */

int cmd_rm_assign(cli_t *c) {
        const char *rm = cli_arg(c, 0), *provider = cli_opt(c, "provider");
        int r = cli_check_name(c, "RM", rm);
        if (r != CLI_OK)
                return r;
        bool none = cli_flag(c, "none");
        if (!provider == !none)
                return cli_usage(c, "rm assign needs --provider USER, or --none to take the RM back");
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:s?}", "provider", provider);
        _cleanup_free_ char *path = xasprintf("/v1/rms/%s/assign", rm);
        _cleanup_(json_decrefp) json_t *res = NULL;
        r = api_call(c, "POST", path, body, API_TIMEOUT_MS, &res);
        if (r != CLI_OK || c->json)
                return r != CLI_OK ? r : output_json(c, res, false);
        fprintf(c->out, provider ? "RM %s is assigned to provider %s\n" : "RM %s is assigned to nobody%s\n", rm,
                provider ? provider : "");
        return CLI_OK;
}

/* ---- offers ---- */

int cmd_offer_set(cli_t *c) {
        const char *rm = cli_arg(c, 0);
        int r = cli_check_name(c, "RM", rm);
        if (r != CLI_OK)
                return r;
        _cleanup_(json_decrefp) json_t *body = json_object();
        if ((r = market_int_opt(c, "vcpus", body, "vcpus")) != CLI_OK ||
            (r = market_money_opt(c, "vcpu-price", body, "vcpu_price")) != CLI_OK ||
            (r = market_int_opt(c, "memory", body, "memory_mib")) != CLI_OK ||
            (r = market_money_opt(c, "memory-price", body, "memory_price")) != CLI_OK ||
            (r = market_duration_opt(c, "running-period", body, "running_period_s")) != CLI_OK ||
            (r = market_int_opt(c, "disk", body, "disk_gib")) != CLI_OK ||
            (r = market_money_opt(c, "disk-price", body, "disk_price")) != CLI_OK ||
            (r = market_duration_opt(c, "storage-period", body, "storage_period_s")) != CLI_OK)
                return r;
        _cleanup_free_ char *path = xasprintf("/v1/offers/%s", rm);
        _cleanup_(json_decrefp) json_t *res = NULL;
        r = api_call(c, "PUT", path, body, API_TIMEOUT_MS, &res);
        if (r != CLI_OK || c->json)
                return r != CLI_OK ? r : output_json(c, res, false);
        fprintf(c->out, "offer at RM %s set (new prices apply to machines stored from now on)\n", rm);
        return CLI_OK;
}

int cmd_offer_withdraw(cli_t *c) {
        return api_name_call(c, "RM", "DELETE", "/v1/offers/%s", "offer at RM %s withdrawn");
}

/* "4/8 cpu": used of the capacity. */
static char *use_cell(const json_t *offer, const char *key, const char *unit) {
        return xasprintf("%lld/%lld%s", (long long)json_integer_value(json_object_get(json_object_get(offer, "used"), key)),
                         (long long)json_integer_value(json_object_get(offer, key)), unit);
}

/* "0.010000/1h (0.012000)": a unit price per its period, and the market's average beside it. */
static char *price_cell(const json_t *offer, const char *key, const char *period) {
        const json_t *prices = json_object_get(offer, "prices");
        _cleanup_free_ char *mine = market_rate_text(json_object_get(prices, key), json_object_get(prices, period));
        const json_t *avg = json_object_get(json_object_get(offer, "market"), key);
        if (!json_is_integer(avg))
                return TAKE_PTR(mine);
        _cleanup_free_ char *a = market_money_text(json_integer_value(avg));
        return xasprintf("%s (avg %s)", mine, a);
}

int cmd_offer_list(cli_t *c) {
        _cleanup_(json_decrefp) json_t *offers = NULL;
        int r = api_call(c, "GET", "/v1/offers", NULL, API_TIMEOUT_MS, &offers);
        if (r != CLI_OK)
                return r;
        if (!json_is_array(offers))
                return cli_fail(c, "unexpected answer from the Oracle to GET /v1/offers: not an array");
        if (c->json)
                return output_json(c, offers, false);
        static const char *const headers[] = { "RM",  "PROVIDER", "VCPUS", "MEMORY", "DISK", "VCPU-PRICE",
                                               "GIB-PRICE", "DISK-PRICE", "REVENUE", "MACHINES" };
        _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(headers), headers);
        size_t i;
        const json_t *of;
        json_array_foreach(offers, i, of) {
                table_add_json(t, of, "rm");
                table_add_json(t, of, "provider");
                table_add_take(t, use_cell(of, "vcpus", ""));
                table_add_take(t, use_cell(of, "memory_mib", "M"));
                table_add_take(t, use_cell(of, "disk_gib", "G"));
                table_add_take(t, price_cell(of, "vcpu_price", "running_period_s"));
                table_add_take(t, price_cell(of, "memory_price", "running_period_s"));
                table_add_take(t, price_cell(of, "disk_price", "storage_period_s"));
                table_add_take(t, market_money_text(json_integer_value(json_object_get(of, "revenue"))));
                table_add_take(t, xasprintf("%zu", json_array_size(json_object_get(of, "machines"))));
        }
        table_flush(t, c->out);
        /* the buyers' machines held there: metadata only, never an action */
        static const char *const mh[] = { "MACHINE", "RM", "BUYER", "STATE", "SIZE", "STORAGE", "RUNNING", "CHARGED" };
        _cleanup_(table_freep) table_t *m = table_new(ELEMENTSOF(mh), mh);
        bool any = false;
        json_array_foreach(offers, i, of) {
                size_t k;
                const json_t *vm;
                json_array_foreach(json_object_get(of, "machines"), k, vm) {
                        const json_t *terms = json_object_get(vm, "terms");
                        table_add_json(m, vm, "name");
                        table_add_json(m, of, "rm");
                        table_add_json(m, vm, "buyer");
                        table_add_json(m, vm, "state");
                        table_add_take(m, xasprintf("%lldcpu/%lldM/%lldG",
                                                    (long long)json_integer_value(json_object_get(vm, "vcpus")),
                                                    (long long)json_integer_value(json_object_get(vm, "memory_mib")),
                                                    (long long)json_integer_value(json_object_get(vm, "disk_gib"))));
                        table_add_take(m, market_rate_text(json_object_get(terms, "storage_price"),
                                                           json_object_get(terms, "storage_period_s")));
                        table_add_take(m, market_rate_text(json_object_get(terms, "running_price"),
                                                           json_object_get(terms, "running_period_s")));
                        table_add_take(m, market_money_text(json_integer_value(json_object_get(vm, "charges"))));
                        any = true;
                }
        }
        if (any) {
                fputc('\n', c->out);
                table_flush(m, c->out);
        }
        return CLI_OK;
}

/* ---- the market ---- */

int cmd_market_configs(cli_t *c) {
        _cleanup_(json_decrefp) json_t *list = NULL;
        int r = api_call(c, "GET", "/v1/market/configs", NULL, API_TIMEOUT_MS, &list);
        if (r != CLI_OK || c->json)
                return r != CLI_OK ? r : output_json(c, list, false);
        static const char *const headers[] = { "NAME", "IMAGE", "MEMORY", "VCPUS", "DISK", "EST-STORAGE/30D",
                                               "EST-RUNNING/1H" };
        _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(headers), headers);
        size_t i;
        const json_t *cf;
        json_array_foreach(list, i, cf) {
                table_add_json(t, cf, "name");
                table_add_json(t, cf, "image");
                table_add_json(t, cf, "memory_mib");
                table_add_json(t, cf, "vcpus");
                table_add_json(t, cf, "disk_gib");
                const json_t *s = json_object_get(cf, "storage_price_30d"), *run = json_object_get(cf, "running_price_1h");
                table_add_take(t, json_is_integer(s) ? market_money_text(json_integer_value(s)) : xstrdup("-"));
                table_add_take(t, json_is_integer(run) ? market_money_text(json_integer_value(run)) : xstrdup("-"));
        }
        table_flush(t, c->out);
        return CLI_OK;
}

int cmd_market_config_add(cli_t *c) {
        const char *name = cli_arg(c, 0);
        int r = cli_check_name(c, "configuration", name);
        if (r != CLI_OK)
                return r;
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:s,s:s}", "name", name, "image", cli_opt(c, "image"));
        if ((r = market_int_opt(c, "memory", body, "memory_mib")) != CLI_OK ||
            (r = market_int_opt(c, "vcpus", body, "vcpus")) != CLI_OK ||
            (r = market_int_opt(c, "disk", body, "disk_gib")) != CLI_OK)
                return r;
        _cleanup_(json_decrefp) json_t *res = NULL;
        r = api_call(c, "POST", "/v1/market/configs", body, API_TIMEOUT_MS, &res);
        if (r != CLI_OK || c->json)
                return r != CLI_OK ? r : output_json(c, res, false);
        fprintf(c->out, "configuration %s added\n", name);
        return CLI_OK;
}

int cmd_market_config_delete(cli_t *c) {
        return api_name_call(c, "configuration", "DELETE", "/v1/market/configs/%s", "configuration %s deleted");
}

static char *per_cell(const json_t *prices, const char *key, const char *per) {
        const json_t *v = json_object_get(json_object_get(prices, key), per);
        return json_is_integer(v) ? market_money_text(json_integer_value(v)) : xstrdup("-");
}

static void prices_row(table_t *t, const json_t *p, const char *when) {
        table_add(t, when);
        table_add_take(t, per_cell(p, "running_vcpu", "per_hour"));
        table_add_take(t, per_cell(p, "running_gib", "per_hour"));
        table_add_take(t, per_cell(p, "storage_gib", "per_30d"));
        table_add_json(t, p, "offers");
}

int cmd_market_prices(cli_t *c) {
        const char *path = cli_flag(c, "history") ? "/v1/market/prices?history=100" : "/v1/market/prices";
        _cleanup_(json_decrefp) json_t *p = NULL;
        int r = api_call(c, "GET", path, NULL, API_TIMEOUT_MS, &p);
        if (r != CLI_OK || c->json)
                return r != CLI_OK ? r : output_json(c, p, false);
        static const char *const headers[] = { "AT", "VCPU/1H", "GIB-RAM/1H", "GIB-DISK/30D", "OFFERS" };
        _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(headers), headers);
        prices_row(t, p, "now");
        size_t i;
        const json_t *h;
        json_array_foreach(json_object_get(p, "history"), i, h) {
                char when[64];
                format_time((double)json_integer_value(json_object_get(h, "at_ms")) / 1000.0, when, sizeof when);
                prices_row(t, h, when);
        }
        table_flush(t, c->out);
        static const char *const ch[] = { "CONFIGURATION", "STORAGE/30D", "RUNNING/1H", "OFFERS-THAT-FIT" };
        _cleanup_(table_freep) table_t *ct = table_new(ELEMENTSOF(ch), ch);
        const json_t *cf;
        json_array_foreach(json_object_get(p, "configs"), i, cf) {
                table_add_json(ct, cf, "name");
                const json_t *s = json_object_get(cf, "storage_price"), *run = json_object_get(cf, "running_price");
                table_add_take(ct, json_is_integer(s) ? market_money_text(json_integer_value(s)) : xstrdup("-"));
                table_add_take(ct, json_is_integer(run) ? market_money_text(json_integer_value(run)) : xstrdup("-"));
                table_add_json(ct, cf, "hosts");
        }
        if (json_array_size(json_object_get(p, "configs"))) {
                fputc('\n', c->out);
                table_flush(ct, c->out);
        }
        return CLI_OK;
}

int cmd_market_fee(cli_t *c) {
        const char *amount = cli_arg(c, 0);
        _cleanup_(json_decrefp) json_t *res = NULL;
        int r;
        if (amount) {
                int64_t micro = 0;
                if (money_parse(amount, &micro) < 0)
                        return cli_usage(c, "%s is not an amount (a non-negative number with up to six decimals)",
                                         amount);
                _cleanup_(json_decrefp) json_t *body = json_pack("{s:I}", "registration_fee", (json_int_t)micro);
                r = api_call(c, "PUT", "/v1/market/settings", body, API_TIMEOUT_MS, &res);
        } else {
                r = api_call(c, "GET", "/v1/market/settings", NULL, API_TIMEOUT_MS, &res);
        }
        if (r != CLI_OK || c->json)
                return r != CLI_OK ? r : output_json(c, res, false);
        _cleanup_free_ char *fee = market_money_text(json_integer_value(json_object_get(res, "registration_fee")));
        fprintf(c->out, "registration fee: %s\n", fee);
        return CLI_OK;
}
