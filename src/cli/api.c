/* Oracle URL resolution and JSON requests for the CLI (see api.h). */
#include "cli/api.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "cluster/cluster.h"
#include "cli/commands.h"
#include "cli/output.h"

static char *oracle_url_normalize(const char *url) {
        size_t n = strlen(url);
        while (n > 0 && (url[n - 1] == '/' || url[n - 1] == ' ' || url[n - 1] == '\n'))
                n--;
        if (strstr(url, "://"))
                return strndup(url, n);
        return xasprintf("http://%.*s", (int)n, url);
}

static int oracle_from_dir(cli_t *c, const char *dir, char **ret) {
        _cleanup_free_ char *url = NULL;
        int r = cluster_oracle_url(dir, &url);
        if (r == -ENOENT)
                return cli_fail(c, "no Oracle: no cluster is up in %s (%s/oracle.url is missing)", dir, dir);
        if (r < 0 || !url || !*url)
                return cli_fail(c, "no Oracle: cannot read %s/oracle.url: %s", dir, strerror(r < 0 ? -r : EINVAL));
        *ret = oracle_url_normalize(url);
        return CLI_OK;
}

/* An https:// Oracle is trusted by one CA: --ca FILE, else $VMATRIX_CA, else the cluster
 * directory's ca.pem (which `cluster up` copies there). It becomes this process's default. */
static int api_trust(cli_t *c, const char *dir) {
        const char *ca = cli_opt(c, "ca"), *env = getenv("VMATRIX_CA");
        _cleanup_free_ char *from_dir = dir ? xasprintf("%s/ca.pem", dir) : NULL;
        const char *file = ca ? ca : env && *env ? env : from_dir && file_exists(from_dir) ? from_dir : NULL;
        if (!file)
                return CLI_OK; /* the system's CAs */
        if (access(file, R_OK) < 0)
                return cli_fail(c, "cannot read the CA file %s: %s", file, strerror(errno));
        static http_tls_t *trust; /* for the rest of this short process */
        if (!trust && http_tls_new(file, NULL, NULL, &trust) < 0)
                return cli_fail(c, "cannot use the CA file %s", file);
        http_client_tls_default(trust);
        return CLI_OK;
}

int api_oracle(cli_t *c, const char **ret_url) {
        if (!c->oracle) {
                const char *url = cli_opt(c, "oracle"), *dir = cli_opt(c, "dir");
                const char *env_url = getenv("VMATRIX_ORACLE"), *env_dir = getenv("VMATRIX_CLUSTER_DIR");
                char *resolved = NULL;
                int r = CLI_OK;
                if (url)
                        resolved = oracle_url_normalize(url);
                else if (dir)
                        r = oracle_from_dir(c, dir, &resolved);
                else if (env_url && *env_url)
                        resolved = oracle_url_normalize(env_url);
                else if (env_dir && *env_dir)
                        r = oracle_from_dir(c, env_dir, &resolved);
                else
                        r = cli_usage(c, "no Oracle: pass --oracle URL or set VMATRIX_ORACLE");
                if (r == CLI_OK && str_startswith(resolved, "https://"))
                        r = api_trust(c, url ? NULL : dir ? dir : env_url && *env_url ? NULL : env_dir);
                if (r != CLI_OK) {
                        free(resolved);
                        return r;
                }
                c->oracle = resolved;
        }
        *ret_url = c->oracle;
        return CLI_OK;
}

const char *api_error_message(const http_response_t *r) {
        const char *m = http_error_message(r, 0);
        if (m && *m && !streq(m, "unexpected response"))
                return m;
        static _Thread_local char buf[64];
        snprintf(buf, sizeof buf, "the Oracle answered HTTP %ld", r->status);
        return buf;
}

int api_request(cli_t *c, const char *method, const char *path, const json_t *body, long timeout_ms,
                http_response_t *ret) {
        const char *base;
        int r = api_oracle(c, &base);
        if (r != CLI_OK)
                return r;
        _cleanup_free_ char *url = xasprintf("%s%s", base, path);
        http_response_t resp = { 0 };
        int t = http_call_json(api_credentials(c), method, url, body, timeout_ms, &resp);
        if (t < 0)
                return cli_fail(c, "cannot reach the Oracle at %s: %s", base, http_error_message(NULL, t));
        if (resp.status < 200 || resp.status >= 300) {
                r = cli_fail(c, "%s", api_error_message(&resp));
                http_response_clear(&resp);
                return r;
        }
        *ret = resp;
        return CLI_OK;
}

int api_name_call(cli_t *c, const char *what, const char *method, const char *path_fmt, const char *done_fmt) {
        const char *name = cli_arg(c, 0);
        int r = cli_check_name(c, what, name);
        if (r != CLI_OK)
                return r;
        _cleanup_free_ char *path = xasprintf(path_fmt, name);
        _cleanup_(json_decrefp) json_t *res = NULL;
        r = api_call(c, method, path, NULL, API_TIMEOUT_MS, &res);
        if (r != CLI_OK)
                return r;
        if (c->json)
                return output_json(c, res, false);
        fprintf(c->out, done_fmt, name);
        fputc('\n', c->out);
        return CLI_OK;
}

int api_list_all(cli_t *c, const char *path, json_t **ret) {
        _cleanup_(json_decrefp) json_t *all = json_array();
        _cleanup_free_ char *after = xstrdup("");
        for (;;) {
                _cleanup_free_ char *page = xasprintf("%s?limit=%d&after=%s", path, API_PAGE, after);
                _cleanup_(json_decrefp) json_t *arr = NULL;
                int r = api_call(c, "GET", page, NULL, API_TIMEOUT_MS, &arr);
                if (r != CLI_OK)
                        return r;
                if (!json_is_array(arr))
                        return cli_fail(c, "unexpected answer from the Oracle to GET %s: not an array", path);
                size_t n = json_array_size(arr);
                if (n > API_PAGE && json_array_size(all) == 0) {
                        *ret = TAKE_PTR(arr); /* the whole list at once: an Oracle that does not page */
                        return CLI_OK;
                }
                json_array_extend(all, arr);
                const char *last = n ? json_string_value(json_object_get(json_array_get(arr, n - 1), "name")) : NULL;
                if (n < API_PAGE || !last || !name_is_valid(last))
                        break;
                free(after);
                after = xstrdup(last);
        }
        *ret = TAKE_PTR(all);
        return CLI_OK;
}

int api_call(cli_t *c, const char *method, const char *path, const json_t *body, long timeout_ms, json_t **ret) {
        http_response_t resp = { 0 };
        int r = api_request(c, method, path, body, timeout_ms, &resp);
        if (r != CLI_OK)
                return r;
        if (!resp.json) {
                http_response_clear(&resp);
                return cli_fail(c, "unexpected answer from the Oracle at %s to %s %s: not JSON", c->oracle, method,
                                path);
        }
        *ret = TAKE_PTR(resp.json);
        http_response_clear(&resp);
        return CLI_OK;
}
