/* The simulator: replays a load trace through the switching policy (src/policy/) and measures
 * the production RM-hours it spends against static allocation and the offline optimum. No I/O:
 * traces come in as text or from the builtin generators; the CLI (cmd-sim.c) reads files.
 *
 * Trace CSV (DESIGN.md §4): header exactly `t,service,load`, t in seconds, rows sorted by t,
 * load in units of one VM's full capacity. A service's load holds from its row until its next
 * row; before its first row it is 0. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sim_trace {
        char **services; /* names, in order of first appearance */
        size_t n_services;
        double *t;
        size_t *service; /* index into services */
        double *load;
        size_t n_rows;
        double tick_s;   /* replay tick: the builtin's, or the trace's smallest spacing */
        double window_s; /* the services' bottleneck window suited to this trace */
} sim_trace_t;

sim_trace_t *sim_trace_free(sim_trace_t *t);
static inline void sim_trace_freep(sim_trace_t **t) { sim_trace_free(*t); }

/* Parses CSV text. On bad input returns -EINVAL with a message naming the line in error
 * ("line 3: time 50 is before 60 on line 2"). */
int sim_trace_parse(const char *text, sim_trace_t **ret, char *error, size_t error_size);
/* A builtin trace: "finance-sports" or "flash-crowd"; -ENOENT for another name. */
int sim_trace_builtin(const char *name, sim_trace_t **ret);
/* The names of the builtin traces, NULL-terminated. */
extern const char *const sim_builtin_traces[];

typedef struct sim_config {
        double tick_s;       /* 0: the trace's */
        double window_s;     /* 0: the trace's */
        double high;         /* percent */
        int min, max;        /* per service; max 0: the pool */
        int rms;             /* production RMs; 0: enough for the static allocation */
        double activation_s, drain_s;
        uint64_t vm_bytes;
        double network_bps;
        bool predict;        /* predict as the Oracle does: the load a week (else a day) before, as replayed so far */
} sim_config_t;

/* high 70 %, min 1, the simulator's activation and drain times (1.1 s and 1.5 s, see sim.c),
 * 256 MiB VMs over 10 Gbit/s, prediction on. */
void sim_config_default(sim_config_t *c);

typedef struct sim_result {
        double rm_hours;         /* integral of production RMs in use: active + activating + draining */
        double static_rm_hours;  /* each service its peak VMs (max(min, ceil(peak/high))) all the time */
        double optimal_rm_hours; /* at every tick, ceil(load/high) per service: the same high mark
                                  * the policy keeps utilisation under; an idle service counts 0 */
        double optimal_min_rm_hours; /* the same with each service's min kept, as the policy and the
                                      * static figure keep it: the bound the policy can reach */
        double full_rm_hours;    /* the strict bound: ceil(load/1.0), every VM 100% busy */
        unsigned server_loss;    /* server_loss decisions */
        unsigned slo_violations; /* service-ticks with load above its active VMs' capacity (> 100%) */
        unsigned activations, drains, reclaims; /* VMs */
        int rms;                 /* the pool */
        int peak_rms_in_use;
        double duration_s, tick_s;
} sim_result_t;

/* Replays trace under cfg into *ret. -EINVAL for a config the policy rejects; -ENOSPC when the
 * pool cannot hold the services' initial VMs. */
int sim_run(const sim_trace_t *trace, const sim_config_t *cfg, sim_result_t *ret);
