/* Which token the CLI sends (DESIGN.md §10), and the login file `vmatrix login` writes.
 *
 * Looked for, first found wins: --token, $VMATRIX_TOKEN, the login file when it was written
 * for the Oracle this run talks to, then DIR/admin.token of --dir or $VMATRIX_CLUSTER_DIR (a
 * local cluster's admin, so `cluster up` needs no login). The login file is
 * $VMATRIX_LOGIN_FILE, else $XDG_CONFIG_HOME/vmatrix/token, else ~/.config/vmatrix/token:
 * {"oracle": URL, "user": NAME, "token": TOKEN}, mode 0600 in a 0700 directory. */
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "cli/api.h"
#include "cluster/cluster.h"

/* A token file holds one line; anything past this is not a token. */
#define TOKEN_FILE_MAX 1024

char *api_login_file_path(void) {
        const char *env = getenv("VMATRIX_LOGIN_FILE");
        if (env && *env)
                return xstrdup(env);
        const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
        if (xdg && *xdg)
                return xasprintf("%s/vmatrix/token", xdg);
        return xasprintf("%s/.config/vmatrix/token", home && *home ? home : ".");
}

int api_login_read(const char *oracle_url, char **ret_user, char **ret_token) {
        _cleanup_free_ char *path = api_login_file_path();
        _cleanup_free_ char *text = NULL;
        if (file_size(path) > TOKEN_FILE_MAX * 4)
                return -EFBIG;
        int r = file_read(path, &text, NULL);
        if (r < 0)
                return r;
        _cleanup_(json_decrefp) json_t *j = json_loads(text, 0, NULL);
        const char *url = json_string_value(json_object_get(j, "oracle"));
        const char *user = json_string_value(json_object_get(j, "user"));
        const char *token = json_string_value(json_object_get(j, "token"));
        if (!url || !token)
                return -EINVAL;
        if (oracle_url && !streq(url, oracle_url))
                return -ENOENT; /* a login to another Oracle */
        if (ret_user)
                *ret_user = xstrdup(user ? user : "");
        *ret_token = xstrdup(token);
        return 0;
}

int api_login_write(const char *oracle_url, const char *user, const char *token) {
        _cleanup_free_ char *path = api_login_file_path();
        _cleanup_free_ char *dir = xstrdup(path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                int r = mkdir_p(dir, 0700);
                if (r < 0)
                        return r;
        }
        _cleanup_(json_decrefp) json_t *j = json_pack("{s:s,s:s,s:s}", "oracle", oracle_url, "user", user, "token", token);
        _cleanup_free_ char *json = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!json)
                return -ENOMEM;
        _cleanup_free_ char *text = xasprintf("%s\n", json);
        return file_write_atomic_mode(path, text, strlen(text), 0600);
}

int api_login_remove(void) {
        _cleanup_free_ char *path = api_login_file_path();
        return unlink(path) < 0 && errno != ENOENT ? negative_errno() : 0;
}

/* DIR/admin.token of the cluster directory this run uses, or NULL. */
static char *dir_admin_token(cli_t *c) {
        const char *dir = cli_opt(c, "dir");
        if (!dir || !*dir)
                dir = getenv("VMATRIX_CLUSTER_DIR");
        return dir && *dir ? cluster_admin_token(dir) : NULL;
}

const http_call_t *api_credentials(cli_t *c) {
        if (c->token_resolved)
                return &c->cred;
        c->token_resolved = true;
        const char *opt = cli_opt(c, "token"), *env = getenv("VMATRIX_TOKEN");
        /* c->oracle: every caller has resolved the Oracle first (api_oracle), the login file
         * names the one it is for */
        if (opt && *opt)
                c->token = xstrdup(opt);
        else if (env && *env)
                c->token = xstrdup(env);
        else if (c->oracle && api_login_read(c->oracle, NULL, &c->token) == 0)
                ; /* the login file of this Oracle */
        else
                c->token = dir_admin_token(c);
        c->cred.token = c->token;
        return &c->cred;
}
