/* The switching policy: which services get production RMs, decided by pure functions over a
 * snapshot of the services' load and VMs. No I/O, no clock, no allocation: the Oracle builds a
 * snapshot from its live state, the simulator (src/sim/) from a trace, and both act on the same
 * decisions, so what the simulator measures is what the Oracle does.
 *
 * Units: time in seconds; load in units of one VM's full capacity (1.0 = one VM fully busy);
 * utilisation = load / active VMs; high in percent of a VM's capacity. A service drains the VMs
 * its load would leave under POLICY_DRAIN_MARGIN of high: the gap between the two is the
 * hysteresis that keeps a service from flapping on noise. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A drain keeps ceil(load / (margin * high)) VMs, so that after it utilisation stays under 90%
 * of high and a load that wobbles by +-5% (what real load does minute to minute) does not
 * activate the VM again; at most POLICY_DRAIN_SHARE of the active VMs go in one decision (a load
 * that seems to vanish at once, a gap in its measurement, costs a quarter per decision). Chosen on
 * bench/policy's traces: 0.95 switches a quarter more for 1-2% fewer RM-hours, 0.85 costs 2%. */
#define POLICY_DRAIN_MARGIN 0.9
#define POLICY_DRAIN_SHARE 0.25

typedef struct policy_service {
        /* configuration */
        const char *name;
        int priority;    /* higher wins an RM */
        int min, max;    /* active VMs */
        double high;     /* percent of a VM's capacity, e.g. 70 */
        double window_s; /* how long a bottleneck or low load must last before acting */
        double activation_s; /* what activating one of its VMs takes (measured: oracle-figures.c) */
        double drain_s;      /* what a graceful drain of one takes */
        /* observed now */
        double load;     /* VM-capacity units */
        int active;      /* serving */
        int activating;  /* activations in flight */
        int draining;    /* drains in flight (their RMs are still busy) */
        int reclaiming;  /* RMs being drained from lower-priority services for this one */
        int replace;     /* VMs of it that failed and are not replaced yet (activated at once) */
        double predicted; /* load the history predicts at t + policy_lead_s(); < 0: no history */
        double predicted_now; /* what the same history gives for t; < 0: unknown. With both, the
                               * policy expects load + predicted - predicted_now: the history's
                               * change over the lead applied to the load now, so a history of
                               * another kind of day (a Friday for a Saturday, a holiday) moves the
                               * estimate by its change, not by its level */
        /* state the caller keeps, updated by policy_service_observe(); start at -1 */
        double above_since; /* when utilisation went above high; -1: it is not above */
        double below_since; /* since when it has had a VM to drain (policy_service_spare); -1: none */
} policy_service_t;

typedef struct policy_snapshot {
        double t;
        policy_service_t *services;
        size_t n_services;
        int free_rms;        /* idle production RMs */
        uint64_t vm_bytes;   /* what one activation moves over the network */
        double network_bps;  /* bytes/s the data-centre network may spend on activations; 0: no limit */
        double tick_s;       /* how often the policy runs: the network budget is per tick */
} policy_snapshot_t;

typedef enum policy_kind {
        POLICY_ACTIVATE,
        POLICY_DRAIN,
        POLICY_RECLAIM, /* drain VMs of from_service so their RMs go to service */
        POLICY_SERVER_LOSS,
} policy_kind_t;

typedef struct policy_decision {
        policy_kind_t kind;
        size_t service;      /* index into the snapshot's services */
        size_t from_service; /* POLICY_RECLAIM: the donor */
        int count;
        char reason[192];    /* a sentence with the numbers */
} policy_decision_t;

const char *policy_kind_to_string(policy_kind_t k);

/* Utilisation of s in percent; a service with load and no active VM is infinitely loaded. */
double policy_service_utilisation(const policy_service_t *s);

/* VMs needed to carry load at or under high percent: ceil(load / (high/100)), 0 for no load.
 * The simulator's static and optimal figures use the same rule, so they compare like with like. */
int policy_vms_for(double load, double high);

/* Updates s->above_since / s->below_since from s->load and s->active at time t. Call once per
 * tick before policy_decide(). */
void policy_service_observe(policy_service_t *s, double t);

/* How far ahead predictions should look: an activation started now must be serving before a
 * bottleneck would have been confirmed (activation time + the service's window). */
static inline double policy_lead_s(const policy_service_t *s) { return s->activation_s + s->window_s; }

/* The load s should be ready for by t + policy_lead_s(): from its prediction (see predicted_now),
 * never below 0; -1 without one. */
double policy_service_expected(const policy_service_t *s);

/* VMs s could drain now: those beyond its min, its load at POLICY_DRAIN_MARGIN of high, and
 * what its expected load needs at high; 0 or more. */
int policy_service_spare(const policy_service_t *s);

/* The decisions for snapshot snap, at most max of them, into out (caller's storage); their
 * number in *ret_n. Services are served in priority order (higher first, then index order).
 * Returns 0, or -EINVAL for a snapshot that makes no sense (high <= 0, min > max, a negative
 * window, activation or drain time). */
int policy_decide(const policy_snapshot_t *snap, policy_decision_t *out, size_t max, size_t *ret_n);

/* A service's recorded load, for predictions made the way the Oracle makes them from its stored
 * samples (oracle-predict.c): the load at the same time a week before, else a day before, the
 * highest within POLICY_PREDICT_SPAN_S around it. Bins of bin_s seconds from t0 on, the storage
 * the caller's; a bin never recorded holds a negative value. Record as time passes and only what
 * has happened: then a prediction sees the past only (the simulator replays a trace this way). */
typedef struct policy_history {
        double *bins;
        size_t n_bins;
        double bin_s;
        double t0;
} policy_history_t;

#define POLICY_WEEK_S 604800.0
#define POLICY_DAY_S 86400.0
#define POLICY_PREDICT_SPAN_S 120.0

/* Sets every bin to "unknown". */
void policy_history_clear(policy_history_t *h);
/* Remembers that the load was load over [from, to) (at least the bin of from). A bin keeps the
 * highest load recorded in it, since a prediction that misses a peak costs SLO violations and
 * one that overshoots costs only an RM for a while. Times outside the bins are ignored. */
void policy_history_record(policy_history_t *h, double from, double to, double load);
/* The load the history expects at time t: the highest recorded within the span around t minus a
 * week, else around t minus a day; -1 when neither was recorded. */
double policy_history_predict(const policy_history_t *h, double t);
