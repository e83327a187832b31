/* `vmatrix cluster up|down|restart`: a local cluster on this machine, through the launcher in
 * src/cluster (cluster.h). The launcher logs its own one error line and returns -errno, so a
 * failure here is just exit status 1. Its info lines are silenced (the CLI prints a summary
 * and shows progress on a terminal) unless VMATRIX_LOG asks for them. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "cli/api.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cluster/cluster.h"

/* The cluster directory as an absolute path without trailing '/', malloc'd: the launcher
 * writes it into cluster.json and its processes run from other working directories. */
static char *cluster_dir_absolute(const char *dir) {
        char *abs;
        if (dir[0] == '/') {
                abs = xstrdup(dir);
        } else {
                _cleanup_free_ char *cwd = getcwd(NULL, 0);
                if (!cwd)
                        return NULL;
                abs = xasprintf("%s/%s", cwd, str_startswith(dir, "./") ? dir + 2 : dir);
        }
        size_t n = strlen(abs);
        while (n > 1 && abs[n - 1] == '/')
                abs[--n] = 0;
        return abs;
}

static int cluster_dir(cli_t *c, char **ret) {
        if (!getenv("VMATRIX_LOG"))
                log_set_level(LOG_LEVEL_WARN);
        char *dir = cluster_dir_absolute(cli_opt(c, "dir"));
        if (!dir)
                return cli_fail(c, "cannot find the current directory: %m");
        *ret = dir;
        return CLI_OK;
}

int cmd_cluster_up(cli_t *c) {
        cluster_options_t o = CLUSTER_OPTIONS_INIT;
        int64_t production = o.production, chambers = o.chambers;
        const char *accel = cli_opt(c, "accel");
        _cleanup_free_ char *dir = NULL, *exe = exe_path();
        int r;
        if ((r = cli_opt_int(c, "production", 0, 64, &production)) != CLI_OK ||
            (r = cli_opt_int(c, "chambers", 0, 64, &chambers)) != CLI_OK)
                return r;
        if (accel && !streq(accel, "auto") && !streq(accel, "kvm") && !streq(accel, "tcg"))
                return cli_usage(c, "--accel must be auto, kvm or tcg, not \"%s\"", accel);
        if ((r = cluster_dir(c, &dir)) != CLI_OK)
                return r;
        o.dir = dir;
        o.production = (unsigned)production;
        o.chambers = (unsigned)chambers;
        o.vmatrix_exe = exe;
        o.accel = accel;
        o.open_signup = cli_flag(c, "open-signup");

        _cleanup_free_ char *what = xasprintf("an Oracle and %u RMs", o.production + o.chambers);
        progress_draw(c, "cluster up", what, 0, 0);
        r = cluster_up(&o);
        progress_clear(c);
        if (r < 0)
                return CLI_FAIL;

        /* the cluster's own Oracle, whatever --oracle or the environment say */
        _cleanup_free_ char *url = NULL;
        if (cluster_oracle_url(dir, &url) < 0 || !url)
                return cli_fail(c, "cluster in %s is up but %s/oracle.url cannot be read", dir, dir);
        free(c->oracle);
        c->oracle = xstrdup(url);
        _cleanup_(json_decrefp) json_t *rms = NULL;
        if ((r = api_call(c, "GET", "/v1/rms", NULL, API_TIMEOUT_MS, &rms)) != CLI_OK)
                return r;
        if (c->json) {
                _cleanup_(json_decrefp) json_t *j = json_pack("{s:s,s:s,s:O}", "dir", dir, "oracle", url, "rms", rms);
                return output_json(c, j, false);
        }
        fprintf(c->out, "oracle: %s\ndir:    %s\n\n", url, dir);
        rm_table_print(c->out, rms);
        fprintf(c->out, "\nexport VMATRIX_ORACLE=%s\n", url);
        return CLI_OK;
}

int cmd_cluster_down(cli_t *c) {
        _cleanup_free_ char *dir = NULL;
        int r = cluster_dir(c, &dir);
        if (r != CLI_OK)
                return r;
        progress_draw(c, "cluster down", "stopping", 0, 0);
        r = cluster_down(dir);
        progress_clear(c);
        if (r < 0)
                return CLI_FAIL;
        if (c->json) {
                _cleanup_(json_decrefp) json_t *j = json_pack("{s:s,s:s}", "dir", dir, "state", "down");
                return output_json(c, j, false);
        }
        fprintf(c->out, "cluster in %s is down\n", dir);
        return CLI_OK;
}

int cmd_cluster_restart(cli_t *c) {
        const char *name = cli_arg(c, 0);
        _cleanup_free_ char *dir = NULL;
        int r = cli_check_name(c, "process", name);
        if (r == CLI_OK)
                r = cluster_dir(c, &dir);
        if (r != CLI_OK)
                return r;
        _cleanup_free_ char *label = xasprintf("cluster restart %s", name);
        progress_draw(c, label, "restarting", 0, 0);
        r = cluster_restart(dir, name);
        progress_clear(c);
        if (r < 0)
                return CLI_FAIL;
        if (c->json) {
                _cleanup_(json_decrefp) json_t *j = json_pack("{s:s,s:s,s:b}", "dir", dir, "name", name, "restarted", 1);
                return output_json(c, j, false);
        }
        fprintf(c->out, "restarted %s in %s\n", name, dir);
        return CLI_OK;
}
