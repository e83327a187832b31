/* State shared by the switching thread (oracle-switch.c), the pool thread (oracle-pool.c) and
 * the load prediction (oracle-predict.c). Memory only: everything here can be rebuilt from the
 * store after a restart (oracle-switch.c's top comment says what is lost: the windows). */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sys/types.h>

#include "lb/lb.h"
#include "oracle/oracle-internal.h"
#include "store/store-view.h"

#define SWITCH_MAX_DOWN 256
#define SWITCH_ROUNDS_KEPT 128

typedef struct failure {
        char vm[64];
        char service[64];
        int64_t failed_ms;    /* when the switching loop saw it failed (time_now_ms) */
        char replacement[64]; /* "" while none was started */
        bool replace;         /* it was serving: another VM takes its place */
        bool recovered;
} failure_t;

typedef struct down_server {
        char vm[64];
        int64_t since_ms;
} down_server_t;

#define SVC_RECLAIMS_MAX 16

typedef struct svc_state {
        char name[64];
        double above_since, below_since; /* the policy's windows (policy_service_observe) */
        int64_t last_loss_ms, last_exhausted_ms;
        char reclaims[SVC_RECLAIMS_MAX][64]; /* VMs of other services drained for this one */
        int n_reclaims;
} svc_state_t;

typedef struct oracle_pool oracle_pool_t;
typedef struct oracle_predict oracle_predict_t;

typedef struct oracle_switch {
        pthread_t switch_thread, pool_thread, samples_thread;
        bool started;         /* the threads run (oracle_switch_start) */
        pthread_mutex_t lock; /* guards the wake flags */
        pthread_cond_t wake;
        bool wake_switch, wake_pool;
        lb_t *lb;             /* NULL when HAProxy cannot be used; owned by the switching thread */
        double network_bps;   /* what activations may move per second (the policy's budget) */
        pthread_mutex_t stats_lock; /* guards stats and stats_gen */
        lb_stats_t stats;     /* HAProxy's counters at the last tick */
        uint64_t stats_gen;   /* ticks that read them */
        bool lb_live;         /* HAProxy answered at the last tick */
        pthread_mutex_t failures_lock; /* guards failures (noted by the threads that mark VMs failed) */
        failure_t *failures;  /* malloc'd, n_failures of them */
        size_t n_failures;
        /* the switching thread's own */
        svc_state_t *svcs;
        size_t n_svcs;
        down_server_t down[SWITCH_MAX_DOWN];
        size_t n_down;
        int64_t last_lb_error_ms;
        char last_lb_error[256];
        oracle_predict_t *predict;
        /* the pool thread's own */
        oracle_pool_t *pool;
        /* the last rounds' durations (under lock): /v1/health's switch_round_ms */
        double round_ms[SWITCH_ROUNDS_KEPT];
        uint64_t n_rounds;
} oracle_switch_t;

/* ---- oracle-switch-agg.c: a round's picture of the cluster ---- */

/* Figures older than this are not load any more (the VM stopped reporting). */
#define SWITCH_FRESH_MS 3000

/* One service's VMs, from one snapshot. The lists point into the snapshot. */
typedef struct switch_svc_agg {
        int active, activating, draining;      /* VMs in these states */
        double cpu;                            /* the fresh CPU figures of its active VMs, summed */
        const store_view_vm_t **active_vms;    /* active, by name */
        size_t n_active;
        const store_view_vm_t **servers;       /* active or deactivating with an address: HAProxy's, by name */
        size_t n_servers;
        const store_view_vm_t **failed;        /* failed, by name */
        size_t n_failed;
        const store_view_vm_t **candidates;    /* stored, pre-booted, no op: sorted when asked for */
        size_t n_candidates;
        bool candidates_sorted;
} switch_svc_agg_t;

typedef struct switch_agg {
        const store_view_snap_t *snap;         /* not owned: outlives the aggregate */
        const service_record_t *svs;           /* the services, by name (store_service_list) */
        size_t ns;
        switch_svc_agg_t *svcs;                /* svcs[i] is svs[i]'s */
} switch_agg_t;

/* One pass over snap's VMs into *ret, for the services svs (ordered by name, as the store lists
 * them). metrics may be NULL (no CPU figures); now is time_now_ms(). */
void oracle_switch_aggregate(const store_view_snap_t *snap, const service_record_t *svs, size_t ns,
                             oracle_metrics_t *metrics, int64_t now, switch_agg_t *ret);
/* Service svc's activation candidates, lowest name first (sorted at the first call). */
const store_view_vm_t *const *oracle_switch_agg_candidates(switch_agg_t *a, size_t svc, size_t *ret_n);
/* The index of service in a->svs, -1 when it is not one. */
ssize_t oracle_switch_agg_find(const switch_agg_t *a, const char *service);
void oracle_switch_agg_clear(switch_agg_t *a);
bool oracle_switch_fresh(const vm_metrics_t *m, int64_t now);
/* Production RMs that are up and hold no VM and no stray copy (o NULL: strays not counted). */
int oracle_switch_free_rms(oracle_t *o, const store_view_snap_t *snap);
/* A round took ms (the monotonic clock, its sleep apart). */
void oracle_switch_round_note(oracle_switch_t *sw, double ms);
/* {"rounds","last","p50","p99","max"} of the last SWITCH_ROUNDS_KEPT rounds, in ms (null
 * figures before the first round). */
json_t *oracle_switch_round_json(oracle_t *o);


/* oracle-switch-state.c */
/* Runs both loops at once instead of at their next tick (a VM failed, an op ended...). */
void oracle_switch_wake(oracle_t *o);
/* Sleeps up to ms or until oracle_switch_wake set *flag (then clears it). */
void oracle_switch_sleep(oracle_t *o, bool *flag, int64_t ms);
/* Waits until HAProxy has taken vm out of service's rotation and its sessions are 0, at most
 * timeout_ms. 0, or -ETIMEDOUT (the caller goes on: a drain must end). */
int oracle_switch_drain_wait(oracle_t *o, const char *service, const char *vm, int64_t timeout_ms);
/* A VM of service failed (oracle_vm_mark_failed): noted at once, and replaced when it was
 * serving (a VM that failed while being pre-booted is only booted again). */
void oracle_switch_failure_note(oracle_t *o, const char *vm, const char *service, bool replace);
/* Notes a failure (call with sw->failures_lock held; a VM noted already is left as it is). */
void oracle_switch_failure_add(oracle_switch_t *sw, const char *vm, const char *service, bool replace, int64_t now);
/* HAProxy's figures of vm in service's backend in st, or NULL. */
const lb_server_stats_t *oracle_switch_stats_server(const lb_stats_t *st, const char *service, const char *vm);
/* Has the switching loop taken note of vm's failure (so the pool may stop it)? */
bool oracle_switch_failure_known(oracle_t *o, const char *vm);

/* oracle-pool.c: the pool thread (pre-creating services' VMs, deleting services). */
void *oracle_pool_thread(void *arg);
oracle_pool_t *oracle_pool_free(oracle_pool_t *p);

/* oracle-predict.c: the load service sv's history expects at time t (on time_now_ms()'s scale, in
 * seconds): what it had a week before, else a day before (from the stored 1-minute samples); -1
 * when there is no history. What the same rule gives for now in *ret_now (policy_service_t's
 * predicted_now). Cached for a minute. */
double oracle_switch_predict(oracle_t *o, const service_record_t *sv, double t, double *ret_now);
oracle_predict_t *oracle_predict_free(oracle_predict_t *p);
