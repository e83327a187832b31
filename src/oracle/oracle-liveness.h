/* Which RMs are alive, judged in the Oracle's memory so that a busy store can never make a
 * healthy RM look silent (issue 10: a 10 s image import once got every VM of the cluster
 * fenced).
 *
 * Three rules:
 *  - an RM is heard when its heartbeat arrives, before the handler touches the store;
 *  - silence counts only while the Oracle itself was responsive: every reconciler tick is
 *    timed on the monotonic clock, and a tick that comes late (a stall of the Oracle's own:
 *    a long lock, a swap storm, SIGSTOP) restarts every RM's count from the stall's end;
 *  - when more than half of the RMs fall silent at once (at least two), the fault is more
 *    likely the Oracle's own network than the RMs: it is an isolation, and nothing is declared
 *    down until RMs report again or an operator fences an RM by hand (vSphere HA's isolation
 *    response). "At once" is judged with a shorter threshold than "down": RMs that stopped
 *    together reach it within a heartbeat of each other, so the first of them to reach 5 s
 *    finds the others already suspect instead of being fenced alone.
 * No I/O: times are passed in, so unit tests drive it without waiting. Thread-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIVENESS_DOWN_AFTER_MS 5000
/* Silent this long, an RM counts towards an isolation (heartbeats come every second). */
#define LIVENESS_SUSPECT_MS 3000
/* A reconciler tick later than this after the previous one is a stall (it ticks every 500 ms). */
#define LIVENESS_STALL_MS 2000

typedef struct oracle_liveness oracle_liveness_t;

typedef enum liveness_change {
        LIVENESS_STEADY,
        LIVENESS_ISOLATION_BEGAN,
        LIVENESS_ISOLATION_ENDED,
} liveness_change_t;

typedef struct liveness_verdict {
        const char **down;        /* RMs to declare down now (borrowed from the caller's names) */
        size_t n_down;
        size_t n_silent;          /* RMs silent for LIVENESS_DOWN_AFTER_MS, down or held */
        size_t n_suspect;         /* RMs silent for LIVENESS_SUSPECT_MS (these included) */
        int64_t stall_ms;         /* > 0: this tick found a stall of that length */
        liveness_change_t change;
} liveness_verdict_t;

/* now_ms: the monotonic clock at the Oracle's start; counts begin there. */
oracle_liveness_t *oracle_liveness_new(int64_t now_ms);
oracle_liveness_t *oracle_liveness_free(oracle_liveness_t *l);

/* A heartbeat from rm arrived at now_ms. */
void oracle_liveness_heard(oracle_liveness_t *l, const char *rm, int64_t now_ms);
/* Forgets rm (fenced by an operator: its count starts again when it reports). */
void oracle_liveness_forget(oracle_liveness_t *l, const char *rm);
/* How long rm has been silent at now_ms, counted as the rules above say. */
int64_t oracle_liveness_silent_ms(oracle_liveness_t *l, const char *rm, int64_t now_ms);

/* One reconciler tick at now_ms over the RMs the store shows up (n names). Fills *ret;
 * ret->down is malloc'd (free it), its strings are up[]'s. */
void oracle_liveness_tick(oracle_liveness_t *l, const char *const *up, size_t n, int64_t now_ms,
                          liveness_verdict_t *ret);
/* How long ago rm's last heartbeat arrived, stalls or not (what billing needs: when the RM was
 * last known to run its machines); -1 when it was not heard since the Oracle started. */
int64_t oracle_liveness_heard_ago_ms(oracle_liveness_t *l, const char *rm, int64_t now_ms);
/* The longest time between two heartbeats of rm that arrived (0 before the second). */
int64_t oracle_liveness_gap_max_ms(oracle_liveness_t *l, const char *rm);
bool oracle_liveness_isolated(oracle_liveness_t *l);
/* Stalls seen since the start and the longest, for /v1/health. */
void oracle_liveness_stalls(oracle_liveness_t *l, int64_t *ret_count, int64_t *ret_longest_ms);
