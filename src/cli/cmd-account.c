/* Accounts (DESIGN.md §10): `login`, `logout`, `whoami`, `signup`, `user create|list|delete|
 * passwd` and `token create|list|revoke`. Passwords come from --password-file (its first line),
 * else a prompt without echo on a terminal, else the first line of stdin; they are never an
 * argument, so they stay out of `ps` and shell history. */
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/commands.h"
#include "cli/output.h"

#define PASSWORD_LINE_MAX 1100 /* the Oracle takes at most 1024 bytes */

/* Reads one line from f into buf (without its newline): 0, or -EINVAL when empty or too long. */
static int line_read(FILE *f, char *buf, size_t size) {
        if (!fgets(buf, (int)size, f))
                return -EINVAL;
        size_t n = strcspn(buf, "\r\n");
        if (buf[n] == 0 && n == size - 1)
                return -EINVAL; /* no newline within the bound: too long */
        buf[n] = 0;
        return n > 0 ? 0 : -EINVAL;
}

static int prompt_read(const char *prompt, char *buf, size_t size) {
        FILE *tty = fopen("/dev/tty", "r+e");
        if (!tty)
                return -ENOTTY;
        struct termios saved, quiet;
        bool echo_off = tcgetattr(fileno(tty), &saved) == 0;
        if (echo_off) {
                quiet = saved;
                quiet.c_lflag &= ~(tcflag_t)ECHO;
                tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
        }
        fputs(prompt, tty);
        fflush(tty);
        int r = line_read(tty, buf, size);
        if (echo_off)
                tcsetattr(fileno(tty), TCSAFLUSH, &saved);
        fputc('\n', tty);
        fclose(tty);
        return r;
}

/* The password for this command into buf; confirm asks twice on a terminal. */
static int password_get(cli_t *c, bool confirm, char *buf, size_t size) {
        const char *file = cli_opt(c, "password-file");
        if (file) {
                _cleanup_fclose_ FILE *f = fopen(file, "re");
                if (!f)
                        return cli_fail(c, "cannot open the password file %s: %m", file);
                if (line_read(f, buf, size) < 0)
                        return cli_fail(c, "the password file %s has no password on its first line", file);
                return CLI_OK;
        }
        if (isatty(STDIN_FILENO)) {
                if (prompt_read("Password: ", buf, size) < 0)
                        return cli_fail(c, "no password given");
                if (confirm) {
                        char again[PASSWORD_LINE_MAX];
                        int r = prompt_read("Again: ", again, sizeof again);
                        bool same = r == 0 && streq(again, buf);
                        explicit_bzero(again, sizeof again);
                        if (!same)
                                return cli_fail(c, "the two passwords differ");
                }
                return CLI_OK;
        }
        if (line_read(stdin, buf, size) < 0)
                return cli_fail(c, "no password: pass --password-file FILE or write it on stdin");
        return CLI_OK;
}

int cmd_login(cli_t *c) {
        const char *user = cli_arg(c, 0);
        int r = cli_check_name(c, "user", user);
        if (r != CLI_OK)
                return r;
        const char *base;
        if ((r = api_oracle(c, &base)) != CLI_OK)
                return r;
        char password[PASSWORD_LINE_MAX];
        if ((r = password_get(c, false, password, sizeof password)) != CLI_OK)
                return r;
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:s,s:s}", "user", user, "password", password);
        explicit_bzero(password, sizeof password);
        /* a login needs no token: send none, even if one is around */
        c->token_resolved = true;
        _cleanup_(json_decrefp) json_t *res = NULL;
        r = api_call(c, "POST", "/v1/login", body, API_TIMEOUT_MS, &res);
        json_object_clear(body);
        if (r != CLI_OK)
                return r;
        const char *token = json_string_value(json_object_get(res, "token"));
        if (!token)
                return cli_fail(c, "unexpected answer from the Oracle to POST /v1/login: no token");
        int k = api_login_write(base, user, token);
        if (k < 0) {
                _cleanup_free_ char *path = api_login_file_path();
                return cli_fail(c, "cannot write the login file %s: %s", path, strerror(-k));
        }
        if (c->json) {
                json_object_del(res, "token");
                return output_json(c, res, false);
        }
        fprintf(c->out, "logged in to %s as %s (%s); the session lasts %lld h\n", base, user,
                json_string_value(json_object_get(res, "role")),
                (long long)json_integer_value(json_object_get(res, "expires_s")) / 3600);
        return CLI_OK;
}

int cmd_logout(cli_t *c) {
        const char *base;
        int r = api_oracle(c, &base);
        if (r != CLI_OK)
                return r;
        _cleanup_free_ char *token = NULL;
        if (api_login_read(base, NULL, &token) < 0)
                return cli_fail(c, "not logged in to %s", base);
        /* the session of the login file, whatever else --token or the environment name */
        free(c->token);
        c->token = TAKE_PTR(token);
        c->cred.token = c->token;
        c->token_resolved = true;
        _cleanup_(json_decrefp) json_t *res = NULL;
        r = api_call(c, "POST", "/v1/logout", NULL, API_TIMEOUT_MS, &res);
        /* a session the Oracle no longer knows is over anyway: the file goes either way */
        int k = api_login_remove();
        if (k < 0)
                return cli_fail(c, "cannot remove the login file: %s", strerror(-k));
        if (r != CLI_OK)
                return r;
        if (c->json)
                return output_json(c, res, false);
        fprintf(c->out, "logged out of %s\n", base);
        return CLI_OK;
}

static void time_print(FILE *f, int64_t ms) {
        if (ms <= 0) {
                fputs("never", f);
                return;
        }
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        char buf[32];
        strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", gmtime_r(&t, &tm));
        fputs(buf, f);
}

int cmd_whoami(cli_t *c) {
        _cleanup_(json_decrefp) json_t *res = NULL;
        int r = api_call(c, "GET", "/v1/whoami", NULL, API_TIMEOUT_MS, &res);
        if (r != CLI_OK)
                return r;
        if (c->json)
                return output_json(c, res, false);
        json_t *tok = json_object_get(res, "token");
        fprintf(c->out, "%s (%s), token %s \"%s\", expires ", json_string_value(json_object_get(res, "user")),
                json_string_value(json_object_get(res, "role")), json_string_value(json_object_get(tok, "id")),
                json_string_value(json_object_get(tok, "name")));
        time_print(c->out, json_integer_value(json_object_get(tok, "expires_ms")));
        fputc('\n', c->out);
        return CLI_OK;
}

/* user create NAME --role R, and signup NAME --role provider|buyer (open-signup Oracles). */
static int user_make(cli_t *c, const char *path) {
        const char *name = cli_arg(c, 0), *role = cli_opt(c, "role");
        int r = cli_check_name(c, "user", name);
        if (r != CLI_OK)
                return r;
        char password[PASSWORD_LINE_MAX];
        if ((r = password_get(c, true, password, sizeof password)) != CLI_OK)
                return r;
        _cleanup_(json_decrefp) json_t *body =
                json_pack("{s:s,s:s,s:s}", "name", name, "role", role, "password", password);
        explicit_bzero(password, sizeof password);
        _cleanup_(json_decrefp) json_t *res = NULL;
        r = api_call(c, "POST", path, body, API_TIMEOUT_MS, &res);
        json_object_clear(body);
        if (r != CLI_OK)
                return r;
        if (c->json)
                return output_json(c, res, false);
        fprintf(c->out, "user %s created (%s)\n", name, role);
        return CLI_OK;
}

int cmd_user_create(cli_t *c) { return user_make(c, "/v1/users"); }

int cmd_signup(cli_t *c) {
        /* a signup is anonymous */
        c->token_resolved = true;
        return user_make(c, "/v1/signup");
}

int cmd_user_list(cli_t *c) {
        _cleanup_(json_decrefp) json_t *res = NULL;
        int r = api_call(c, "GET", "/v1/users", NULL, API_TIMEOUT_MS, &res);
        if (r != CLI_OK)
                return r;
        if (c->json)
                return output_json(c, res, false);
        static const char *const headers[] = { "NAME", "ROLE" };
        _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(headers), headers);
        size_t i;
        const json_t *u;
        json_array_foreach(res, i, u) {
                table_add_json(t, u, "name");
                table_add_json(t, u, "role");
        }
        table_flush(t, c->out);
        return CLI_OK;
}

int cmd_user_delete(cli_t *c) { return api_name_call(c, "user", "DELETE", "/v1/users/%s", "user %s deleted"); }

int cmd_user_passwd(cli_t *c) {
        const char *name = cli_arg(c, 0);
        int r = cli_check_name(c, "user", name);
        if (r != CLI_OK)
                return r;
        char password[PASSWORD_LINE_MAX];
        if ((r = password_get(c, true, password, sizeof password)) != CLI_OK)
                return r;
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:s}", "password", password);
        explicit_bzero(password, sizeof password);
        _cleanup_free_ char *path = xasprintf("/v1/users/%s/password", name);
        _cleanup_(json_decrefp) json_t *res = NULL;
        r = api_call(c, "POST", path, body, API_TIMEOUT_MS, &res);
        json_object_clear(body);
        if (r != CLI_OK)
                return r;
        if (c->json)
                return output_json(c, res, false);
        fprintf(c->out, "password of %s changed\n", name);
        return CLI_OK;
}

int cmd_token_create(cli_t *c) {
        const char *name = cli_opt(c, "name"), *role = cli_opt(c, "role"), *expires = cli_opt(c, "expires");
        int64_t ttl_s = 30LL * 24 * 3600;
        if (expires && streq(expires, "never"))
                ttl_s = 0;
        else if (expires && (parse_duration_s(expires, &ttl_s) < 0 || ttl_s <= 0))
                return cli_usage(c, "--expires takes a duration such as 90m, 12h or 30d, or never");
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:s?,s:s?,s:I}", "name", name, "role", role, "expires_s",
                                                         (json_int_t)ttl_s);
        _cleanup_(json_decrefp) json_t *res = NULL;
        int r = api_call(c, "POST", "/v1/tokens", body, API_TIMEOUT_MS, &res);
        if (r != CLI_OK)
                return r;
        if (c->json)
                return output_json(c, res, false);
        /* the secret alone on stdout (for scripts); what it is on stderr */
        fprintf(c->out, "%s\n", json_string_value(json_object_get(res, "token")));
        fprintf(c->err, "token %s (\"%s\", %s) expires ", json_string_value(json_object_get(res, "id")),
                json_string_value(json_object_get(res, "name")),
                json_string_value(json_object_get(res, "role")) ? json_string_value(json_object_get(res, "role"))
                                                                : "the user's role");
        time_print(c->err, json_integer_value(json_object_get(res, "expires_ms")));
        fputs("; it is shown only this once\n", c->err);
        json_object_del(res, "token");
        return CLI_OK;
}

int cmd_token_list(cli_t *c) {
        const char *path = cli_flag(c, "all") ? "/v1/tokens?all=1" : "/v1/tokens";
        _cleanup_(json_decrefp) json_t *res = NULL;
        int r = api_call(c, "GET", path, NULL, API_TIMEOUT_MS, &res);
        if (r != CLI_OK)
                return r;
        if (c->json)
                return output_json(c, res, false);
        static const char *const headers[] = { "ID", "USER", "NAME", "ROLE", "STATE" };
        _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(headers), headers);
        int64_t now = time_wall_ms();
        size_t i;
        const json_t *tok;
        json_array_foreach(res, i, tok) {
                table_add_json(t, tok, "id");
                table_add_json(t, tok, "user");
                table_add_json(t, tok, "name");
                table_add_json(t, tok, "role");
                int64_t exp = json_integer_value(json_object_get(tok, "expires_ms"));
                bool revoked = json_integer_value(json_object_get(tok, "revoked_ms")) > 0;
                table_add(t, revoked ? "revoked" : exp && exp <= now ? "expired" : "valid");
        }
        table_flush(t, c->out);
        return CLI_OK;
}

int cmd_token_revoke(cli_t *c) {
        const char *id = cli_arg(c, 0);
        if (!id || strspn(id, "0123456789abcdef") != strlen(id) || strlen(id) != 16)
                return cli_usage(c, "a token id is 16 lowercase hex digits (see vmatrix token list)");
        return api_name_call(c, "token", "DELETE", "/v1/tokens/%s", "token %s revoked");
}
