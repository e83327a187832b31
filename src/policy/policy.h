/* The switching policy: which services get production RMs, decided by pure functions over a
 * snapshot of the services' load and VMs. No I/O, no clock, no allocation: the Oracle builds a
 * snapshot from its live state, the simulator (src/sim/) from a trace, and both act on the same
 * decisions, so what the simulator measures is what the Oracle does.
 *
 * Units: time in seconds; load in units of one VM's full capacity (1.0 = one VM fully busy);
 * utilisation = load / active VMs; high in percent of a VM's capacity. The low mark is high/2:
 * the gap between the two is the hysteresis that keeps a service from flapping. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Our measured figures (activation of a pre-booted VM from the Nest, graceful drain). */
#define POLICY_ACTIVATION_S 1.1
#define POLICY_DRAIN_S 1.5

typedef struct policy_service {
        /* configuration */
        const char *name;
        int priority;    /* higher wins an RM */
        int min, max;    /* active VMs */
        double high;     /* percent of a VM's capacity, e.g. 70 */
        double window_s; /* how long a bottleneck or low load must last before acting */
        /* observed now */
        double load;     /* VM-capacity units */
        int active;      /* serving */
        int activating;  /* activations in flight */
        int draining;    /* drains in flight (their RMs are still busy) */
        int reclaiming;  /* RMs being drained from lower-priority services for this one */
        int replace;     /* VMs of it that failed and are not replaced yet (activated at once) */
        double predicted; /* load the history predicts at t + policy_lead_s(); < 0: no history */
        /* state the caller keeps, updated by policy_service_observe(); start at -1 */
        double above_since; /* when utilisation went above high; -1: it is not above */
        double below_since; /* when utilisation went below high/2; -1: it is not below */
} policy_service_t;

typedef struct policy_snapshot {
        double t;
        policy_service_t *services;
        size_t n_services;
        int free_rms;        /* idle production RMs */
        double activation_s; /* POLICY_ACTIVATION_S unless measured otherwise */
        double drain_s;      /* POLICY_DRAIN_S */
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
static inline double policy_lead_s(const policy_snapshot_t *snap, const policy_service_t *s) {
        return snap->activation_s + s->window_s;
}

/* The decisions for snapshot snap, at most max of them, into out (caller's storage); their
 * number in *ret_n. Services are served in priority order (higher first, then index order).
 * Returns 0, or -EINVAL for a snapshot that makes no sense (high <= 0, min > max). */
int policy_decide(const policy_snapshot_t *snap, policy_decision_t *out, size_t max, size_t *ret_n);

/* A service's load by time of week: bins of bin_s seconds over one week, the storage the
 * caller's (n_bins * bin_s must be 604800). A bin never recorded holds a negative value. */
typedef struct policy_history {
        double *bins;
        size_t n_bins;
        double bin_s;
} policy_history_t;

#define POLICY_WEEK_S 604800.0

/* Sets every bin to "unknown". */
void policy_history_clear(policy_history_t *h);
/* Remembers load at time t (seconds since Monday 00:00). A bin keeps the highest load recorded
 * in it, since a prediction that misses a peak costs SLO violations and one that overshoots
 * costs only an RM for a while; clear the history to forget. */
void policy_history_record(policy_history_t *h, double t, double load);
/* The load the history expects at time t, or -1 when that bin was never recorded. */
double policy_history_predict(const policy_history_t *h, double t);
