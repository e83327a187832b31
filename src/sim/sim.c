/* The simulator's replay loop: every tick it updates the services' load from the trace, lets
 * in-flight activations and drains finish, counts SLO violations, asks the policy (the same
 * policy_decide() the Oracle calls) and applies its decisions with the measured delays. RMs are
 * counted in continuous time: an activating VM holds its RM from the decision on, a draining
 * one until its drain ends (drain_s after the decision, possibly inside the tick). */
#include "sim/sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "base/macro.h"
#include "base/util.h"
#include "policy/policy.h"

/* The simulator's own defaults, literals on purpose so that its figures stay comparable between
 * runs: bench/activation's activation of a pre-booted VM from the Nest and a graceful drain when
 * the simulator was written, not what any cluster measures now (`vmatrix sim --from-cluster`
 * takes those, --activation and --drain set others). */
#define SIM_ACTIVATION_S 1.1
#define SIM_DRAIN_S 1.5

void sim_config_default(sim_config_t *c) {
        *c = (sim_config_t){
                .high = 70,
                .min = 1,
                .activation_s = SIM_ACTIVATION_S,
                .drain_s = SIM_DRAIN_S,
                .vm_bytes = 256ull << 20,
                .network_bps = 10e9 / 8,
                .predict = true,
        };
}

typedef struct sim_op {
        bool drain;
        size_t service;
        long recipient; /* a reclaim's recipient, -1 otherwise */
        double start, done;
} sim_op_t;

typedef struct sim_ops {
        sim_op_t *v;
        size_t n, cap;
} sim_ops_t;

static void ops_add(sim_ops_t *o, sim_op_t op) {
        if (o->n == o->cap) {
                o->cap = o->cap ? o->cap * 2 : 64;
                o->v = realloc(o->v, o->cap * sizeof *o->v);
                if (!o->v)
                        abort();
        }
        o->v[o->n++] = op;
}

/* Loads of the rows at or before t, from *next on. */
static void advance_loads(const sim_trace_t *tr, size_t *next, double t, policy_service_t *svc) {
        while (*next < tr->n_rows && tr->t[*next] <= t + 1e-9) {
                svc[tr->service[*next]].load = tr->load[*next];
                (*next)++;
        }
}

static int run(const sim_trace_t *tr, const sim_config_t *cfg, policy_service_t *svc, policy_history_t *hist,
               sim_ops_t *ops, policy_decision_t *dec, size_t max_dec, sim_result_t *res) {
        size_t n = tr->n_services;
        double tick = cfg->tick_s > 0 ? cfg->tick_s : tr->tick_s;
        double window = cfg->window_s > 0 ? cfg->window_s : tr->window_s;
        double t0 = tr->t[0], end = tr->t[tr->n_rows - 1] + tick;

        /* Peaks, for the static allocation and the pool size. */
        double *peak = xcalloc(n, sizeof *peak);
        for (size_t r = 0; r < tr->n_rows; r++)
                peak[tr->service[r]] = MAX(peak[tr->service[r]], tr->load[r]);
        int static_vms = 0;
        for (size_t i = 0; i < n; i++)
                static_vms += MAX(cfg->min, policy_vms_for(peak[i], cfg->high));
        free(peak);
        int rms = cfg->rms > 0 ? cfg->rms : static_vms;

        /* The Oracle predicts from its stored load a week (else a day) back; the replay records the
         * trace's load as it goes, so a prediction sees only what has already happened. */
        bool predict = cfg->predict && hist;

        size_t next = 0;
        advance_loads(tr, &next, t0, svc);
        int free_rms = rms;
        for (size_t i = 0; i < n; i++) {
                svc[i] = (policy_service_t){ .name = tr->services[i], .min = cfg->min, .max = cfg->max > 0 ? cfg->max : rms,
                                             .high = cfg->high, .window_s = window, .activation_s = cfg->activation_s,
                                             .drain_s = cfg->drain_s, .load = svc[i].load, .above_since = -1,
                                             .below_since = -1, .predicted = -1, .predicted_now = -1 };
                /* Start in steady state: what the first load needs, as if it had run before. */
                svc[i].active = MAX(cfg->min, policy_vms_for(svc[i].load, cfg->high));
                free_rms -= svc[i].active;
        }
        if (free_rms < 0)
                return -ENOSPC;

        *res = (sim_result_t){ .rms = rms, .tick_s = tick, .duration_s = end - t0,
                               .static_rm_hours = static_vms * (end - t0) / 3600 };
        double rm_s = 0, optimal_s = 0, optimal_min_s = 0, full_s = 0;
        for (long k = 0;; k++) {
                double t = t0 + (double)k * tick;
                if (t >= end - 1e-9)
                        break;
                advance_loads(tr, &next, t, svc);

                /* Operations that ended by now; keep the rest (and drains still inside this tick,
                 * for the RM count below, marked by done > t). */
                size_t kept = 0;
                for (size_t o = 0; o < ops->n; o++) {
                        sim_op_t *op = &ops->v[o];
                        if (op->done > t + 1e-9) {
                                ops->v[kept++] = *op;
                                continue;
                        }
                        if (op->drain) {
                                svc[op->service].draining--;
                                free_rms++;
                                if (op->recipient >= 0)
                                        svc[op->recipient].reclaiming--;
                        } else {
                                svc[op->service].activating--;
                                svc[op->service].active++;
                        }
                }
                ops->n = kept;

                for (size_t i = 0; i < n; i++) {
                        if (svc[i].load > svc[i].active + 1e-9)
                                res->slo_violations++;
                        if (predict) {
                                policy_history_record(&hist[i], t, t + tick, svc[i].load);
                                svc[i].predicted = policy_history_predict(&hist[i], t + policy_lead_s(&svc[i]));
                                svc[i].predicted_now = policy_history_predict(&hist[i], t);
                        }
                        policy_service_observe(&svc[i], t);
                        optimal_s += policy_vms_for(svc[i].load, cfg->high) * tick;
                        optimal_min_s += MAX(cfg->min, policy_vms_for(svc[i].load, cfg->high)) * tick;
                        full_s += policy_vms_for(svc[i].load, 100) * tick;
                }

                policy_snapshot_t snap = { .t = t, .services = svc, .n_services = n, .free_rms = free_rms,
                                           .vm_bytes = cfg->vm_bytes, .network_bps = cfg->network_bps, .tick_s = tick };
                size_t n_dec = 0;
                int r = policy_decide(&snap, dec, max_dec, &n_dec);
                if (r < 0)
                        return r;
                for (size_t d = 0; d < n_dec; d++) {
                        policy_decision_t *x = &dec[d];
                        switch (x->kind) {
                        case POLICY_ACTIVATE:
                                svc[x->service].activating += x->count;
                                free_rms -= x->count;
                                res->activations += (unsigned)x->count;
                                for (int c = 0; c < x->count; c++)
                                        ops_add(ops, (sim_op_t){ .service = x->service, .recipient = -1, .start = t,
                                                                 .done = t + cfg->activation_s });
                                break;
                        case POLICY_DRAIN:
                        case POLICY_RECLAIM: {
                                bool reclaim = x->kind == POLICY_RECLAIM;
                                size_t from = reclaim ? x->from_service : x->service;
                                svc[from].active -= x->count;
                                svc[from].draining += x->count;
                                if (reclaim) {
                                        svc[x->service].reclaiming += x->count;
                                        res->reclaims += (unsigned)x->count;
                                } else
                                        res->drains += (unsigned)x->count;
                                for (int c = 0; c < x->count; c++)
                                        ops_add(ops, (sim_op_t){ .drain = true, .service = from,
                                                                 .recipient = reclaim ? (long)x->service : -1,
                                                                 .start = t, .done = t + cfg->drain_s });
                                break;
                        }
                        case POLICY_SERVER_LOSS:
                                res->server_loss++;
                                break;
                        }
                }

                /* RM time of this tick: serving and activating VMs all of it, draining ones until
                 * their drain ends. */
                int in_use = 0;
                for (size_t i = 0; i < n; i++) {
                        in_use += svc[i].active + svc[i].activating + svc[i].draining;
                        rm_s += (svc[i].active + svc[i].activating) * tick;
                }
                for (size_t o = 0; o < ops->n; o++)
                        if (ops->v[o].drain)
                                rm_s += MAX(0.0, MIN(ops->v[o].done, t + tick) - MAX(ops->v[o].start, t));
                res->peak_rms_in_use = MAX(res->peak_rms_in_use, in_use);
        }
        res->rm_hours = rm_s / 3600;
        res->optimal_rm_hours = optimal_s / 3600;
        res->optimal_min_rm_hours = optimal_min_s / 3600;
        res->full_rm_hours = full_s / 3600;
        return 0;
}

int sim_run(const sim_trace_t *trace, const sim_config_t *cfg, sim_result_t *ret) {
        if (!trace || trace->n_rows == 0 || cfg->high <= 0 || cfg->min < 0 || (cfg->max > 0 && cfg->min > cfg->max))
                return -EINVAL;
        size_t n = trace->n_services;
        _cleanup_free_ policy_service_t *svc = xcalloc(n, sizeof *svc);
        _cleanup_free_ policy_history_t *hist = xcalloc(n, sizeof *hist);
        double span = trace->t[trace->n_rows - 1] - trace->t[0];
        size_t n_bins = (size_t)(span / 60) + 2;
        _cleanup_free_ double *bins = xcalloc(n * n_bins, sizeof *bins);
        for (size_t i = 0; i < n; i++) {
                hist[i] = (policy_history_t){ .bins = bins + i * n_bins, .n_bins = n_bins, .bin_s = 60, .t0 = trace->t[0] };
                policy_history_clear(&hist[i]);
        }
        /* Each service gets at most an activate, a reclaim per other service, a server loss and
         * a drain per tick. */
        size_t max_dec = 3 * n + n * n;
        _cleanup_free_ policy_decision_t *dec = xcalloc(max_dec, sizeof *dec);
        sim_ops_t ops = {};
        sim_result_t res;
        int r = run(trace, cfg, svc, hist, &ops, dec, max_dec, &res);
        free(ops.v);
        if (r < 0)
                return r;
        *ret = res;
        return 0;
}
