/* `vmatrix rm join-token create [--role production|chamber] [--provider USER] [--ttl 1h]`: a
 * single-use token with which a new RM enrols (`vmatrix node --join TOKEN`, docs/tls.md),
 * printed once (POST /v1/rms/join-tokens). */
#include <string.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/commands.h"
#include "cli/output.h"

/* "90s", "10m", "1h", "7d" (or plain seconds) into seconds; -EINVAL. */
static int duration_parse(const char *s, int64_t *ret) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > 16)
                return -EINVAL;
        int64_t unit = 1;
        char last = s[n - 1];
        if (last == 's' || last == 'm' || last == 'h' || last == 'd') {
                unit = last == 's' ? 1 : last == 'm' ? 60 : last == 'h' ? 3600 : 86400;
                n--;
        }
        _cleanup_free_ char *num = strndup(s, n);
        int64_t v;
        if (parse_int64(num, 1, INT64_MAX / 86400, &v) < 0)
                return -EINVAL;
        *ret = v * unit;
        return 0;
}

int cmd_rm_join_token_create(cli_t *c) {
        const char *role = cli_opt(c, "role"), *provider = cli_opt(c, "provider"), *ttl = cli_opt(c, "ttl");
        int64_t ttl_s = 3600;
        if (ttl && duration_parse(ttl, &ttl_s) < 0)
                return cli_usage(c, "--ttl must be a duration such as 30m, 1h or 7d, not \"%s\"", ttl);
        if (role && !streq(role, "production") && !streq(role, "chamber"))
                return cli_usage(c, "--role must be production or chamber, not \"%s\"", role);
        json_t *body = json_pack("{s:s,s:I}", "role", role ? role : "chamber", "ttl_s", (json_int_t)ttl_s);
        if (provider)
                json_object_set_new(body, "provider", json_string(provider));
        _cleanup_(json_decrefp) json_t *res = NULL;
        int r = api_call(c, "POST", "/v1/rms/join-tokens", body, API_TIMEOUT_MS, &res);
        json_decref(body);
        if (r != CLI_OK)
                return r;
        if (c->json)
                return output_json(c, res, false);
        const char *token = json_string_value(json_object_get(res, "token"));
        if (!token)
                return cli_fail(c, "unexpected answer from the Oracle: no token");
        fprintf(c->out, "%s\n", token);
        if (c->tty)
                fprintf(c->err, "a %s RM enrols once with: vmatrix node --join TOKEN --oracle https://HOST:NODEPORT "
                                "--name NAME --data DIR (it expires in %lld s; it is shown only now)\n",
                        json_string_value(json_object_get(res, "role")), (long long)ttl_s);
        return CLI_OK;
}
