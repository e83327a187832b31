/* `vmatrix sim --trace builtin:NAME|FILE.csv`: replays a load trace through the switching
 * policy (src/sim/) and prints RM-hours next to static allocation and the offline optimum.
 * Local: needs no Oracle. */
#include <errno.h>
#include <string.h>

#include "base/util.h"
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
        sim_result_t res;
        r = sim_run(trace, &cfg, &res);
        if (r == -ENOSPC)
                return cli_fail(c, "%d production RMs cannot hold the services' initial VMs", cfg.rms);
        if (r < 0)
                return cli_fail(c, "simulation failed: %s", strerror(-r));

        _cleanup_(json_decrefp) json_t *j = result_json(&res);
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
        static const char *const keys[] = { "rm_hours", "static_rm_hours", "optimal_rm_hours", "rm/static", "rm/optimal",
                                            "optimal_min_rm_hours", "rm/optimal_min",
                                            "full_load_rm_hours", "server_loss", "slo_violations", "production RMs", "switches", "duration" };
        kv_print(c->out, shown, keys, ELEMENTSOF(keys));
        return CLI_OK;
}
