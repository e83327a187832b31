/* Unit tests of the simulator: small traces with answers worked out by hand, bad CSVs, the
 * figures of the builtin traces, and the policy held to issue 14's figure on every committed
 * trace (bench/traces, VMATRIX_TRACES_DIR): within 1.10x of the optimum that keeps each
 * service's min, with no server loss. Simulations are deterministic: these are results, not
 * timings. */
#include "sim/sim.h"
#include "base/util.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool near(double a, double b) { return fabs(a - b) < 1e-6; }

/* "t,service,load" rows for [from, to) every step seconds at load. */
static void rows(char **csv, double from, double to, double step, const char *service, double load) {
        for (double t = from; t < to; t += step) {
                char *next = xasprintf("%s%g,%s,%g\n", *csv, t, service, load);
                free(*csv);
                *csv = next;
        }
}

/* Replays dir/NAME.csv with the pool of dir/NAME.rms, with and without prediction, and at the
 * fastest and slowest activation figures bench/activation has seen (0.4 s on the same RM, 6 s
 * from the Nest before pre-staging), and checks the figures. Returns 1 for a trace, 0 for
 * another file. */
static int trace_check(const char *dir, const char *file) {
        size_t len = strlen(file);
        if (len < 5 || strcmp(file + len - 4, ".csv") != 0)
                return 0;
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
        _cleanup_free_ char *rms_path = xasprintf("%s/%.*s.rms", dir, (int)(len - 4), file);
        _cleanup_free_ char *text = NULL, *rms_text = NULL;
        size_t n = 0;
        CHECK(file_read(path, &text, &n) == 0);
        CHECK(file_read(rms_path, &rms_text, &n) == 0);
        if (!text || !rms_text)
                return 1;
        char error[256] = "";
        sim_trace_t *t = NULL;
        CHECK(sim_trace_parse(text, &t, error, sizeof error) == 0);
        if (!t) {
                fprintf(stderr, "%s: %s\n", file, error);
                return 1;
        }
        static const struct {
                bool predict;
                double activation_s;
        } runs[] = { { true, 0 }, { false, 0 }, { true, 0.4 }, { true, 6 } };
        for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
                sim_config_t cfg;
                sim_config_default(&cfg);
                cfg.rms = atoi(rms_text);
                cfg.predict = runs[k].predict;
                if (runs[k].activation_s > 0)
                        cfg.activation_s = runs[k].activation_s;
                sim_result_t r;
                CHECK(cfg.rms > 0 && sim_run(t, &cfg, &r) == 0);
                double ratio = r.rm_hours / r.optimal_min_rm_hours;
                fprintf(stderr, "%s%s activation %.1f s: rm %.1f optimal with min %.1f (%.3f), without %.1f (%.3f), loss %u slo %u\n",
                        file, cfg.predict ? "" : " no prediction", cfg.activation_s, r.rm_hours,
                        r.optimal_min_rm_hours, ratio, r.optimal_rm_hours, r.rm_hours / r.optimal_rm_hours,
                        r.server_loss, r.slo_violations);
                CHECK(ratio <= 1.10);
                CHECK(r.server_loss == 0);
                CHECK(r.optimal_rm_hours <= r.optimal_min_rm_hours);
        }
        sim_trace_free(t);
        return 1;
}

static int parse(const char *text, sim_trace_t **ret, char *error) {
        return sim_trace_parse(text, ret, error, 256);
}

static void bad(const char *text, const char *expect) {
        char error[256] = "";
        sim_trace_t *t = NULL;
        CHECK(parse(text, &t, error) == -EINVAL);
        CHECK(t == NULL);
        if (!strstr(error, expect))
                fprintf(stderr, "error \"%s\" lacks \"%s\"\n", error, expect);
        CHECK(strstr(error, expect) != NULL);
}

int main(void) {
        char error[256];
        sim_config_t cfg;
        sim_config_default(&cfg);
        cfg.network_bps = 0;

        /* Constant load: nothing to switch, all three figures equal. 1.0 at 70% needs 2 VMs. */
        {
                char *csv = xstrdup("t,service,load\n");
                rows(&csv, 0, 3600, 60, "web", 1.0);
                sim_trace_t *t = NULL;
                CHECK(parse(csv, &t, error) == 0);
                CHECK(t && t->n_services == 1 && t->n_rows == 60 && t->tick_s == 60);
                sim_result_t r;
                CHECK(sim_run(t, &cfg, &r) == 0);
                CHECK(near(r.rm_hours, 2.0) && near(r.static_rm_hours, 2.0) && near(r.optimal_rm_hours, 2.0));
                CHECK(near(r.full_rm_hours, 1.0)); /* 1.0 with every VM fully busy: 1 VM */
                CHECK(r.server_loss == 0 && r.slo_violations == 0 && r.activations == 0 && r.drains == 0);
                sim_trace_free(t);
                free(csv);
        }

        /* A step, by hand (tick 60 s, window 60 s, high 70%, min 1):
         *  0..540    load 0.5, 1 VM                                  10 ticks x 1 RM   =  600 RM-s
         *  600       load 2.0 on 1 VM: SLO violation, bottleneck seen          1 RM   =   60
         *  660       violation; confirmed: activate 2 (ceil(2/0.7) = 3)        3 RMs  =  180
         *  720..1140 3 VMs at 67%                                    8 ticks x 3 RMs  = 1440
         *  1200      load 0.5 on 3 VMs (17%): low seen                         3 RMs  =  180
         *  1260      confirmed: drain 1 (its RM held 1.5 s)          2 x 60 + 1.5     =  121.5
         *  1320      2 VMs at 25%, still low: drain 1                1 x 60 + 1.5     =   61.5
         *  1380..1740 1 VM at 50%, at min                            7 ticks x 1 RM   =  420
         * rm = 3063 RM-s; optimal = (10 x 1 + 10 x 3 + 10 x 1) x 60 = 3000; static = 3 x 1800. */
        {
                char *csv = xstrdup("t,service,load\n");
                rows(&csv, 0, 600, 60, "web", 0.5);
                rows(&csv, 600, 1200, 60, "web", 2.0);
                rows(&csv, 1200, 1800, 60, "web", 0.5);
                sim_trace_t *t = NULL;
                CHECK(parse(csv, &t, error) == 0);
                cfg.window_s = 60;
                sim_result_t r;
                CHECK(sim_run(t, &cfg, &r) == 0);
                CHECK(near(r.rm_hours * 3600, 3063));
                CHECK(near(r.optimal_rm_hours * 3600, 3000));
                CHECK(near(r.static_rm_hours * 3600, 5400));
                CHECK(r.slo_violations == 2);
                CHECK(r.activations == 2 && r.drains == 2 && r.server_loss == 0);
                /* A pool of 2 RMs under a max of 5: one activation fits, the other VM is a server
                 * loss (by default max is the pool, and a capped target is no loss). */
                cfg.rms = 2;
                cfg.max = 5;
                CHECK(sim_run(t, &cfg, &r) == 0);
                CHECK(r.server_loss > 0 && r.activations == 1);
                cfg.rms = 0;
                cfg.max = 0;
                cfg.window_s = 0;
                sim_trace_free(t);
                free(csv);
        }

        /* Bad CSVs: clear errors naming the line. */
        bad("", "no \"t,service,load\" header");
        bad("t,service,load,region\n0,web,1,eu\n", "line 1: the header must be exactly \"t,service,load\"");
        bad("time,service,load\n", "line 1: the header");
        bad("t,service,load\n", "no rows");
        bad("t,service,load\n0,web\n", "line 2: 2 fields, expected 3");
        bad("t,service,load\n0,web,1,2\n", "line 2: 4 fields, expected 3");
        bad("t,service,load\nzero,web,1\n", "line 2: t \"zero\" is not a number");
        bad("t,service,load\n0,web,lots\n", "line 2: load \"lots\" is not a number");
        bad("t,service,load\n0,web,-1\n", "line 2: negative load -1");
        bad("t,service,load\n0,,1\n", "line 2: empty service name");
        bad("t,service,load\n60,web,1\n\n50,web,1\n", "line 4: time 50 is before 60 on line 2");
        {
                sim_trace_t *t = NULL;
                CHECK(parse("t,service,load\r\n0,a,1\r\n0,b,2\r\n30,a,0.5\r\n", &t, error) == 0);
                CHECK(t && t->n_services == 2 && t->n_rows == 3 && t->tick_s == 30);
                sim_trace_free(t);
        }

        /* The builtin traces: the figures for finance-sports, honestly tuned. */
        {
                sim_trace_t *t = NULL;
                CHECK(sim_trace_builtin("nope", &t) == -ENOENT);
                CHECK(sim_trace_builtin("finance-sports", &t) == 0);
                sim_config_default(&cfg);
                sim_result_t r;
                CHECK(sim_run(t, &cfg, &r) == 0);
                fprintf(stderr, "finance-sports: rm %.1f static %.1f optimal %.1f loss %u slo %u\n", r.rm_hours,
                        r.static_rm_hours, r.optimal_rm_hours, r.server_loss, r.slo_violations);
                CHECK(r.rm_hours <= 0.55 * r.static_rm_hours);
                CHECK(r.rm_hours <= 1.10 * r.optimal_rm_hours);
                CHECK(r.server_loss == 0);
                /* Without prediction too: the reactive rules alone meet the figures. */
                cfg.predict = false;
                CHECK(sim_run(t, &cfg, &r) == 0);
                fprintf(stderr, "finance-sports, no prediction: rm %.1f optimal %.1f slo %u\n", r.rm_hours,
                        r.optimal_rm_hours, r.slo_violations);
                CHECK(r.rm_hours <= 0.55 * r.static_rm_hours && r.rm_hours <= 1.10 * r.optimal_rm_hours);
                CHECK(r.server_loss == 0);
                sim_trace_free(t);

                CHECK(sim_trace_builtin("flash-crowd", &t) == 0);
                sim_config_default(&cfg);
                CHECK(sim_run(t, &cfg, &r) == 0);
                fprintf(stderr, "flash-crowd: rm %.2f static %.2f optimal %.2f loss %u slo %u\n", r.rm_hours,
                        r.static_rm_hours, r.optimal_rm_hours, r.server_loss, r.slo_violations);
                /* 5.0 on 2 VMs from t=600: seen at 600, confirmed at 610 (window 10 s), 4 start at
                 * 610 and 2 at 611 (network budget 4 a second), serving from 612: 12 ticks short. */
                CHECK(r.slo_violations == 12);
                CHECK(r.server_loss == 0 && r.activations == 6 && r.drains == 6);
                sim_trace_free(t);
        }
        /* Every committed trace. */
        {
                const char *dir = getenv("VMATRIX_TRACES_DIR");
                CHECK(dir != NULL);
                DIR *d = dir ? opendir(dir) : NULL;
                CHECK(d != NULL);
                int traces = 0;
                for (struct dirent *e; d && (e = readdir(d));)
                        traces += trace_check(dir, e->d_name);
                if (d)
                        closedir(d);
                CHECK(traces >= 5);
        }
        return tap_finish();
}
