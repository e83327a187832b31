/* `vmatrix sim --trace builtin:NAME|FILE.csv`: replays a load trace through the switching
 * policy (src/sim/) and prints RM-hours next to static allocation and the offline optima.
 * Local: needs no Oracle, but for --from-cluster, which takes the activation and drain times a
 * cluster measured (GET /v1/figures) instead of the simulator's own. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "sim/sim.h"

/* `sim --json` contract fields (DESIGN.md §4) come first in the object. */
static json_t *result_json(const sim_result_t *r) {
        json_t *j = json_pack("{s:f,s:f,s:f,s:I,s:I,s:f,s:f,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f}", "rm_hours", r->rm_hours,
                              "static_rm_hours", r->static_rm_hours, "optimal_rm_hours", r->optimal_rm_hours,
                              "server_loss", (json_int_t)r->server_loss, "slo_violations", (json_int_t)r->slo_violations,
                              "ratio_static", r->static_rm_hours > 0 ? r->rm_hours / r->static_rm_hours : 0.0,
                              "ratio_optimal", r->optimal_rm_hours > 0 ? r->rm_hours / r->optimal_rm_hours : 0.0, "rms",
                              (json_int_t)r->rms, "peak_rms_in_use", (json_int_t)r->peak_rms_in_use, "activations",
                              (json_int_t)r->activations, "drains", (json_int_t)r->drains, "reclaims",
                              (json_int_t)r->reclaims, "duration_s", r->duration_s, "tick_s", r->tick_s,
                              "full_load_rm_hours", r->full_rm_hours);
        json_object_set_new(j, "optimal_min_rm_hours", json_real(r->optimal_min_rm_hours));
        json_object_set_new(j, "ratio_optimal_min",
                            json_real(r->optimal_min_rm_hours > 0 ? r->rm_hours / r->optimal_min_rm_hours : 0.0));
        return j;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The median of figures[kind][image], or -1. */
static double figure_median(const json_t *figures, const char *kind, const char *image) {
        const json_t *m = json_object_get(json_object_get(json_object_get(figures, kind), image), "median");
        return json_is_number(m) && json_number_value(m) > 0 ? json_number_value(m) : -1;
}

/* --from-cluster: cfg's activation and drain times from GET /v1/figures for --image (or the one
 * image it has figures of), as the Oracle fills them for the policy (oracle-figures.c:
 * activation, else boot, else its default); what they are in *ret_from (malloc'd). */
static int figures_load(cli_t *c, sim_config_t *cfg, char **ret_from) {
        _cleanup_(json_decrefp) json_t *figures = NULL;
        int r = api_call(c, "GET", "/v1/figures", NULL, API_TIMEOUT_MS, &figures);
        if (r != CLI_OK)
                return r;
        const char *image = cli_opt(c, "image");
        _cleanup_free_ char *img = image ? xstrdup(image) : NULL;
        if (!img) {
                _cleanup_(json_decrefp) json_t *images = json_object();
                static const char *const kinds[] = { "activation_s", "boot_s", "drain_s" };
                for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
                        const char *name;
                        json_t *v;
                        json_object_foreach(json_object_get(figures, kinds[k]), name, v)
                                json_object_set_new(images, name, json_true());
                }
                if (json_object_size(images) == 0)
                        return cli_fail(c, "the cluster at %s has measured no activation, drain or boot yet; give "
                                           "--activation and --drain instead", c->oracle);
                if (json_object_size(images) > 1) {
                        size_t n = 0;
                        const char *names[16], *name;
                        json_t *v;
                        json_object_foreach(images, name, v)
                                if (n < ELEMENTSOF(names))
                                        names[n++] = name;
                        qsort(names, n, sizeof *names, cmp_str);
                        _cleanup_free_ char *list = xstrdup("");
                        for (size_t i = 0; i < n; i++) {
                                char *next = xasprintf("%s%s%s", list, i ? ", " : "", names[i]);
                                free(list);
                                list = next;
                        }
                        return cli_usage(c, "the cluster has figures of several images (%s%s): choose one with --image",
                                         list, json_object_size(images) > n ? ", ..." : "");
                }
                img = xstrdup(json_object_iter_key(json_object_iter(images)));
        }
        const json_t *defaults = json_object_get(figures, "defaults");
        double a = figure_median(figures, "activation_s", img), d = figure_median(figures, "drain_s", img);
        const char *a_from = "its activations";
        if (a < 0) {
                a = figure_median(figures, "boot_s", img);
                a_from = "its boots (no activation measured yet)";
        }
        if (a < 0) {
                a = json_number_value(json_object_get(defaults, "activation_s"));
                a_from = "the Oracle's default (nothing measured)";
        }
        const char *d_from = "its drains";
        if (d < 0) {
                d = json_number_value(json_object_get(defaults, "drain_s"));
                d_from = "the Oracle's default (nothing measured)";
        }
        if (!(a > 0) || !(d > 0))
                return cli_fail(c, "unexpected answer from the Oracle at %s to GET /v1/figures", c->oracle);
        cfg->activation_s = a;
        cfg->drain_s = d;
        *ret_from = xasprintf("image %s: activation %.3g s from %s, drain %.3g s from %s", img, a, a_from, d, d_from);
        return CLI_OK;
}

static int trace_load(cli_t *c, const char *spec, sim_trace_t **ret) {
        if (str_startswith(spec, "builtin:")) {
                const char *name = spec + strlen("builtin:");
                if (sim_trace_builtin(name, ret) < 0)
                        return cli_usage(c, "unknown builtin trace \"%s\"; the builtins are finance-sports, flash-crowd",
                                         name);
                return CLI_OK;
        }
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = file_read(spec, &text, &len);
        if (r < 0)
                return cli_fail(c, "cannot read trace %s: %s", spec, strerror(-r));
        if (memchr(text, 0, len))
                return cli_fail(c, "trace %s: not a text file", spec);
        char error[256];
        if (sim_trace_parse(text, ret, error, sizeof error) < 0)
                return cli_fail(c, "trace %s: %s", spec, error);
        return CLI_OK;
}

int cmd_sim(cli_t *c) {
        _cleanup_(sim_trace_freep) sim_trace_t *trace = NULL;
        int r = trace_load(c, cli_opt(c, "trace"), &trace);
        if (r != CLI_OK)
                return r;
        sim_config_t cfg;
        sim_config_default(&cfg);
        int64_t rms = 0;
        r = cli_opt_int(c, "rms", 1, 100000, &rms);
        if (r != CLI_OK)
                return r;
        cfg.rms = (int)rms;
        if (cli_opt(c, "image") && !cli_opt(c, "from-cluster"))
                return cli_usage(c, "--image chooses the figures of --from-cluster; give both");
        _cleanup_free_ char *from = NULL;
        if (cli_opt(c, "from-cluster") && (r = figures_load(c, &cfg, &from)) != CLI_OK)
                return r;
        double activation = -1, drain = -1;
        if ((r = cli_opt_double(c, "activation", 0, 3600, &activation)) != CLI_OK ||
            (r = cli_opt_double(c, "drain", 0, 3600, &drain)) != CLI_OK)
                return r;
        if (activation >= 0)
                cfg.activation_s = activation;
        if (drain >= 0)
                cfg.drain_s = drain;
        sim_result_t res;
        r = sim_run(trace, &cfg, &res);
        if (r == -ENOSPC)
                return cli_fail(c, "%d production RMs cannot hold the services' initial VMs", cfg.rms);
        if (r < 0)
                return cli_fail(c, "simulation failed: %s", strerror(-r));

        _cleanup_(json_decrefp) json_t *j = result_json(&res);
        json_object_set_new(j, "activation_s", json_real(cfg.activation_s));
        json_object_set_new(j, "drain_s", json_real(cfg.drain_s));
        if (from)
                json_object_set_new(j, "figures", json_string(from));
        if (c->json)
                return output_json(c, j, false);
        _cleanup_(json_decrefp) json_t *shown = json_object();
        json_object_set_new(shown, "rm_hours", json_sprintf("%.1f", res.rm_hours));
        json_object_set_new(shown, "static_rm_hours", json_sprintf("%.1f", res.static_rm_hours));
        json_object_set_new(shown, "optimal_rm_hours", json_sprintf("%.1f", res.optimal_rm_hours));
        json_object_set_new(shown, "rm/static", json_sprintf("%.3f", json_real_value(json_object_get(j, "ratio_static"))));
        json_object_set_new(shown, "rm/optimal", json_sprintf("%.3f", json_real_value(json_object_get(j, "ratio_optimal"))));
        json_object_set_new(shown, "optimal_min_rm_hours", json_sprintf("%.1f (each service at least its min)",
                                                                        res.optimal_min_rm_hours));
        json_object_set_new(shown, "rm/optimal_min",
                            json_sprintf("%.3f", json_real_value(json_object_get(j, "ratio_optimal_min"))));
        json_object_set_new(shown, "full_load_rm_hours", json_sprintf("%.1f (every VM 100%% busy)", res.full_rm_hours));
        json_object_set_new(shown, "server_loss", json_integer(res.server_loss));
        json_object_set_new(shown, "slo_violations", json_integer(res.slo_violations));
        json_object_set_new(shown, "production RMs", json_sprintf("%d (at most %d in use)", res.rms, res.peak_rms_in_use));
        json_object_set_new(shown, "switches", json_sprintf("%u activations, %u drains, %u reclaims", res.activations,
                                                            res.drains, res.reclaims));
        json_object_set_new(shown, "duration", json_sprintf("%.0f s, tick %g s", res.duration_s, res.tick_s));
        json_object_set_new(shown, "figures",
                            from ? json_string(from)
                                 : json_sprintf("activation %g s, drain %g s%s", cfg.activation_s, cfg.drain_s,
                                                activation < 0 && drain < 0 ? " (the simulator's own)" : ""));
        static const char *const keys[] = { "rm_hours", "static_rm_hours", "optimal_rm_hours", "rm/static", "rm/optimal",
                                            "optimal_min_rm_hours", "rm/optimal_min",
                                            "full_load_rm_hours", "server_loss", "slo_violations", "production RMs", "switches", "duration",
                                            "figures" };
        kv_print(c->out, shown, keys, ELEMENTSOF(keys));
        return CLI_OK;
}
