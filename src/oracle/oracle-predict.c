/* Predictive activation for the live system: the load a service's history expects, from its
 * stored load profile (the 1-minute samples of "service:NAME:load", kept a week). A week back
 * is the best guess (the same hour of the same weekday: finance by day on weekdays, sports in
 * the evenings and at weekends); a day back stands in while less than a week is recorded. The
 * highest load of the minutes around that time is taken, as policy_history does: a missed
 * peak costs failed requests, an early activation only an RM for a while.
 * The same rule gives the history's load for now, so the policy applies the history's change
 * rather than its level (policy_service_t.predicted_now). The simulator uses policy_history, the
 * same rule over the trace replayed so far; both feed policy_service.predicted. */
#include <math.h>
#include <string.h>

#include "base/util.h"
#include "oracle/oracle-switch.h"
#include "store/store-metrics.h"

#define PREDICT_CACHE_MS 60000
#define PREDICT_SPAN_S 120 /* minutes around the time a week (a day) back */

typedef struct prediction {
        char service[64];
        int64_t computed_ms;
        double at_s;   /* the time predicted for */
        double load;   /* -1: no history */
        double now;    /* what the same history gives for the time it was computed; -1: none */
} prediction_t;

struct oracle_predict {
        prediction_t *list;
        size_t n;
};

oracle_predict_t *oracle_predict_free(oracle_predict_t *p) {
        if (p) {
                free(p->list);
                free(p);
        }
        return NULL;
}

/* The highest load stored for service in [t - span, t + span], or -1. */
static double history_max(oracle_t *o, const char *service, double t) {
        _cleanup_free_ char *series = xasprintf("service:%s:load", service);
        json_t *points = NULL;
        if (store_samples_get(o->store, series, 60, (int64_t)(t - PREDICT_SPAN_S), (int64_t)(t + PREDICT_SPAN_S),
                              &points) < 0)
                return -1;
        double best = -1;
        size_t i;
        json_t *pt;
        json_array_foreach(points, i, pt) {
                double max = json_number_value(json_array_get(pt, 2));
                if (isfinite(max) && max > best)
                        best = max;
        }
        json_decref(points);
        return best;
}

/* The rule above for wall time wall: a week back, else a day back. */
static double history_predict(oracle_t *o, const char *service, double wall) {
        double load = history_max(o, service, wall - 7 * 86400.0);
        return load >= 0 ? load : history_max(o, service, wall - 86400.0);
}

double oracle_switch_predict(oracle_t *o, const service_record_t *sv, double t, double *ret_now) {
        oracle_switch_t *sw = o->sw;
        if (!sw->predict)
                sw->predict = xcalloc(1, sizeof *sw->predict);
        oracle_predict_t *p = sw->predict;
        prediction_t *c = NULL;
        for (size_t i = 0; i < p->n && !c; i++)
                if (streq(p->list[i].service, sv->name))
                        c = &p->list[i];
        int64_t now = time_now_ms();
        if (c && now - c->computed_ms < PREDICT_CACHE_MS) {
                *ret_now = c->now;
                return c->load;
        }
        if (!c) {
                c = array_append(&p->list, &p->n, sizeof *c);
                snprintf(c->service, sizeof c->service, "%s", sv->name);
        }
        /* t is on the monotonic clock's scale like the policy's; the store keeps wall time */
        double wall_now = time_wall_s();
        c->computed_ms = now;
        c->at_s = t;
        c->load = history_predict(o, sv->name, wall_now + (t - now / 1000.0));
        c->now = history_predict(o, sv->name, wall_now);
        *ret_now = c->now;
        return c->load;
}
