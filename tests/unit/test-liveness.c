/* Unit tests for the Oracle's liveness rules (src/oracle/oracle-liveness.h): times are passed
 * in, so a five-second silence takes no time here. */
#include "oracle/oracle-liveness.h"
#include "tap.h"

#include <stdlib.h>

static const char *const rms[] = { "rm-1", "rm-2", "rm-3", "rm-4" };

/* Ticks every 500 ms from `from` to `to` (inclusive), everyone in heard[] heartbeating each
 * second; returns the last verdict's down count, and adds up downs and changes. */
static void run(oracle_liveness_t *l, int64_t from, int64_t to, const bool heard[4], size_t *downs, int *began,
                int *ended) {
        for (int64_t t = from; t <= to; t += 500) {
                for (int i = 0; i < 4; i++)
                        if (heard[i] && t % 1000 == 0)
                                oracle_liveness_heard(l, rms[i], t);
                liveness_verdict_t v;
                oracle_liveness_tick(l, rms, 4, t, &v);
                *downs += v.n_down;
                *began += v.change == LIVENESS_ISOLATION_BEGAN;
                *ended += v.change == LIVENESS_ISOLATION_ENDED;
                free(v.down);
        }
}

int main(void) {
        /* when an RM was last heard, for billing, is not reset by a stall as its silence count is */
        {
                oracle_liveness_t *l = oracle_liveness_new(0);
                static const char *const one[] = { "rm1" };
                liveness_verdict_t v;
                CHECK(oracle_liveness_heard_ago_ms(l, "rm1", 100) == -1);
                oracle_liveness_heard(l, "rm1", 1000);
                oracle_liveness_tick(l, one, 1, 1200, &v);
                free(v.down);
                oracle_liveness_tick(l, one, 1, 9000, &v); /* a tick 7.8 s late: a stall */
                free(v.down);
                CHECK(v.stall_ms > 0);
                CHECK(oracle_liveness_silent_ms(l, "rm1", 9500) < 1000);
                CHECK(oracle_liveness_heard_ago_ms(l, "rm1", 9500) == 8500);
                oracle_liveness_free(l);
        }
        /* everyone reports: nobody is down */
        {
                oracle_liveness_t *l = oracle_liveness_new(1000);
                size_t downs = 0;
                int began = 0, ended = 0;
                run(l, 1000, 60000, (bool[]){ true, true, true, true }, &downs, &began, &ended);
                CHECK(downs == 0 && began == 0 && ended == 0);
                oracle_liveness_free(l);
        }
        /* one RM of four falls silent: it is down once, after 5 s, and never again */
        {
                oracle_liveness_t *l = oracle_liveness_new(0);
                size_t downs = 0;
                int began = 0, ended = 0;
                run(l, 0, 10000, (bool[]){ true, true, true, true }, &downs, &began, &ended);
                run(l, 10500, 14500, (bool[]){ false, true, true, true }, &downs, &began, &ended);
                CHECK(downs == 0); /* last heard at 10000: 4.5 s of silence */
                liveness_verdict_t v;
                oracle_liveness_tick(l, rms, 4, 15000, &v);
                CHECK(v.n_down == 1 && v.down && v.down[0] == rms[0]);
                free(v.down);
                /* the caller marked it down: it passes only up RMs from now on */
                oracle_liveness_tick(l, rms + 1, 3, 15500, &v);
                CHECK(v.n_down == 0);
                free(v.down);
                oracle_liveness_free(l);
        }
        /* a stall of the Oracle's own (its tick came 10 s late): silence inside it is not
         * counted, so RMs whose heartbeats waited are not declared down */
        {
                oracle_liveness_t *l = oracle_liveness_new(0);
                size_t downs = 0;
                int began = 0, ended = 0;
                run(l, 0, 5000, (bool[]){ true, true, true, true }, &downs, &began, &ended);
                liveness_verdict_t v;
                oracle_liveness_tick(l, rms, 4, 15000, &v);
                CHECK(v.stall_ms == 10000);
                CHECK(v.n_down == 0 && v.n_silent == 0 && v.change == LIVENESS_STEADY);
                free(v.down);
                /* they report again after the stall: still nobody down */
                run(l, 15500, 30000, (bool[]){ true, true, true, true }, &downs, &began, &ended);
                CHECK(downs == 0);
                int64_t count = 0, longest = 0;
                oracle_liveness_stalls(l, &count, &longest);
                CHECK(count == 1 && longest == 10000);
                /* an RM that stays silent after a stall is down 5 s after the stall's end */
                oracle_liveness_tick(l, rms, 4, 40000, &v); /* another stall, from 30000 */
                CHECK(v.stall_ms == 10000 && v.n_down == 0);
                free(v.down);
                run(l, 40500, 44500, (bool[]){ false, true, true, true }, &downs, &began, &ended);
                CHECK(downs == 0);
                run(l, 45000, 45000, (bool[]){ false, true, true, true }, &downs, &began, &ended);
                CHECK(downs == 1);
                oracle_liveness_free(l);
        }
        /* more than half silent at once: isolation, nothing down; then they report again */
        {
                oracle_liveness_t *l = oracle_liveness_new(0);
                size_t downs = 0;
                int began = 0, ended = 0;
                run(l, 0, 5000, (bool[]){ true, true, true, true }, &downs, &began, &ended);
                run(l, 5500, 30000, (bool[]){ false, false, false, true }, &downs, &began, &ended);
                CHECK(downs == 0 && began == 1 && ended == 0);
                CHECK(oracle_liveness_isolated(l));
                run(l, 30500, 31000, (bool[]){ true, true, true, true }, &downs, &began, &ended);
                CHECK(downs == 0 && ended == 1 && !oracle_liveness_isolated(l));
                oracle_liveness_free(l);
        }
        /* three fall silent a little apart (their heartbeats are out of phase): still one
         * isolation, never a lone fencing of the first of them */
        {
                oracle_liveness_t *l = oracle_liveness_new(0);
                size_t downs = 0;
                for (int64_t t = 0; t <= 20000; t += 100) {
                        if (t % 1000 == 0)
                                oracle_liveness_heard(l, rms[3], t);
                        if (t <= 5000 && t % 1000 == 0)
                                oracle_liveness_heard(l, rms[0], t);
                        if (t <= 5500 && t % 1000 == 500)
                                oracle_liveness_heard(l, rms[1], t);
                        if (t <= 5900 && t % 1000 == 900)
                                oracle_liveness_heard(l, rms[2], t);
                        if (t % 500 == 0) {
                                liveness_verdict_t v;
                                oracle_liveness_tick(l, rms, 4, t, &v);
                                downs += v.n_down;
                                free(v.down);
                        }
                }
                CHECK(downs == 0 && oracle_liveness_isolated(l));
                oracle_liveness_free(l);
        }
        /* exactly half silent (two of four) is not an isolation: both are down */
        {
                oracle_liveness_t *l = oracle_liveness_new(0);
                size_t downs = 0;
                int began = 0, ended = 0;
                run(l, 0, 12000, (bool[]){ false, false, true, true }, &downs, &began, &ended);
                CHECK(downs >= 2 && began == 0);
                oracle_liveness_free(l);
        }
        /* an isolation that ends with a minority still silent: those are down then */
        {
                oracle_liveness_t *l = oracle_liveness_new(0);
                size_t downs = 0;
                int began = 0, ended = 0;
                run(l, 5500, 20000, (bool[]){ false, false, false, true }, &downs, &began, &ended);
                CHECK(began == 1 && downs == 0);
                liveness_verdict_t v;
                oracle_liveness_heard(l, rms[1], 20100);
                oracle_liveness_heard(l, rms[2], 20100);
                oracle_liveness_tick(l, rms, 4, 20500, &v);
                CHECK(v.change == LIVENESS_ISOLATION_ENDED && v.n_down == 1 && v.down[0] == rms[0]);
                free(v.down);
                oracle_liveness_free(l);
        }
        /* a single RM silent is down (one RM cannot tell its fault from the Oracle's) */
        {
                oracle_liveness_t *l = oracle_liveness_new(0);
                liveness_verdict_t v;
                for (int64_t t = 0; t <= 5000; t += 500) {
                        oracle_liveness_tick(l, rms, 1, t, &v);
                        if (t < 5000)
                                free(v.down);
                }
                CHECK(v.n_down == 1);
                free(v.down);
                /* forget: counting starts again from its next heartbeat */
                oracle_liveness_forget(l, rms[0]);
                CHECK(oracle_liveness_silent_ms(l, rms[0], 5000) == 5000);
                oracle_liveness_heard(l, rms[0], 6000);
                CHECK(oracle_liveness_silent_ms(l, rms[0], 6500) == 500);
                CHECK(oracle_liveness_gap_max_ms(l, rms[0]) == 0);
                oracle_liveness_heard(l, rms[0], 9000);
                oracle_liveness_heard(l, rms[0], 10000);
                CHECK(oracle_liveness_gap_max_ms(l, rms[0]) == 3000);
                oracle_liveness_free(l);
        }
        return tap_finish();
}
