/* The liveness rules of oracle-liveness.h: the last time each RM was heard, the end of the
 * Oracle's last stall, and whether the Oracle holds fencing for an isolation. */
#include "oracle/oracle-liveness.h"

#include <jansson.h>
#include <pthread.h>

#include "base/util.h"

struct oracle_liveness {
        pthread_mutex_t lock;
        json_t *heard;        /* RM name -> monotonic ms of its last heartbeat */
        json_t *gaps;         /* RM name -> the longest time between two of its heartbeats */
        int64_t counts_from;  /* silence is counted from here at the earliest (start, stall end) */
        int64_t last_tick;    /* 0 before the first tick */
        bool isolated;
        int64_t stalls, longest_stall;
};

oracle_liveness_t *oracle_liveness_new(int64_t now_ms) {
        oracle_liveness_t *l = xcalloc(1, sizeof *l);
        pthread_mutex_init(&l->lock, NULL);
        l->heard = json_object();
        l->gaps = json_object();
        l->counts_from = now_ms;
        return l;
}

oracle_liveness_t *oracle_liveness_free(oracle_liveness_t *l) {
        if (!l)
                return NULL;
        json_decref(l->heard);
        json_decref(l->gaps);
        pthread_mutex_destroy(&l->lock);
        free(l);
        return NULL;
}

void oracle_liveness_heard(oracle_liveness_t *l, const char *rm, int64_t now_ms) {
        pthread_mutex_lock(&l->lock);
        const json_t *prev = json_object_get(l->heard, rm);
        if (prev) {
                int64_t gap = now_ms - (int64_t)json_integer_value(prev);
                if (gap > (int64_t)json_integer_value(json_object_get(l->gaps, rm)))
                        json_object_set_new(l->gaps, rm, json_integer(gap));
        }
        json_object_set_new(l->heard, rm, json_integer(now_ms));
        pthread_mutex_unlock(&l->lock);
}

void oracle_liveness_forget(oracle_liveness_t *l, const char *rm) {
        pthread_mutex_lock(&l->lock);
        json_object_del(l->heard, rm);
        pthread_mutex_unlock(&l->lock);
}

/* Call with l->lock held. */
static int64_t silent_locked(oracle_liveness_t *l, const char *rm, int64_t now_ms) {
        const json_t *h = json_object_get(l->heard, rm);
        int64_t since = h ? MAX((int64_t)json_integer_value(h), l->counts_from) : l->counts_from;
        return now_ms > since ? now_ms - since : 0;
}

int64_t oracle_liveness_heard_ago_ms(oracle_liveness_t *l, const char *rm, int64_t now_ms) {
        pthread_mutex_lock(&l->lock);
        const json_t *h = json_object_get(l->heard, rm);
        int64_t ago = h ? MAX(now_ms - (int64_t)json_integer_value(h), 0) : -1;
        pthread_mutex_unlock(&l->lock);
        return ago;
}

int64_t oracle_liveness_silent_ms(oracle_liveness_t *l, const char *rm, int64_t now_ms) {
        pthread_mutex_lock(&l->lock);
        int64_t s = silent_locked(l, rm, now_ms);
        pthread_mutex_unlock(&l->lock);
        return s;
}

void oracle_liveness_tick(oracle_liveness_t *l, const char *const *up, size_t n, int64_t now_ms,
                          liveness_verdict_t *ret) {
        *ret = (liveness_verdict_t){ .change = LIVENESS_STEADY };
        pthread_mutex_lock(&l->lock);
        if (l->last_tick > 0 && now_ms - l->last_tick > LIVENESS_STALL_MS) {
                /* the Oracle did not look for a while: nobody's silence in that time is evidence */
                ret->stall_ms = now_ms - l->last_tick;
                l->counts_from = MAX(l->counts_from, now_ms);
                l->stalls++;
                l->longest_stall = MAX(l->longest_stall, ret->stall_ms);
        }
        l->last_tick = MAX(l->last_tick, now_ms);
        const char **silent = n ? xcalloc(n, sizeof *silent) : NULL;
        for (size_t i = 0; i < n; i++) {
                int64_t quiet = silent_locked(l, up[i], now_ms);
                ret->n_suspect += quiet >= LIVENESS_SUSPECT_MS;
                if (quiet >= LIVENESS_DOWN_AFTER_MS)
                        silent[ret->n_silent++] = up[i];
        }
        /* an isolation begins only when someone is due to go down, and lasts while most are
         * suspect */
        bool isolation = ret->n_suspect >= 2 && 2 * ret->n_suspect > n && (l->isolated || ret->n_silent > 0);
        if (isolation != l->isolated)
                ret->change = isolation ? LIVENESS_ISOLATION_BEGAN : LIVENESS_ISOLATION_ENDED;
        l->isolated = isolation;
        pthread_mutex_unlock(&l->lock);
        if (isolation || ret->n_silent == 0) {
                free(silent);
                return;
        }
        ret->down = silent;
        ret->n_down = ret->n_silent;
}

int64_t oracle_liveness_gap_max_ms(oracle_liveness_t *l, const char *rm) {
        pthread_mutex_lock(&l->lock);
        int64_t g = (int64_t)json_integer_value(json_object_get(l->gaps, rm));
        pthread_mutex_unlock(&l->lock);
        return g;
}

bool oracle_liveness_isolated(oracle_liveness_t *l) {
        pthread_mutex_lock(&l->lock);
        bool i = l->isolated;
        pthread_mutex_unlock(&l->lock);
        return i;
}

void oracle_liveness_stalls(oracle_liveness_t *l, int64_t *ret_count, int64_t *ret_longest_ms) {
        pthread_mutex_lock(&l->lock);
        *ret_count = l->stalls;
        *ret_longest_ms = l->longest_stall;
        pthread_mutex_unlock(&l->lock);
}
