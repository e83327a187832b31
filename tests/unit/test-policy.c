/* Unit tests of the switching policy on scripted snapshots. */
#include "policy/policy.h"
#include "tap.h"

#include <errno.h>

static policy_service_t service(const char *name, int priority, double load, int active) {
        return (policy_service_t){ .name = name, .priority = priority, .min = 1, .max = 10, .high = 70,
                                   .window_s = 30, .activation_s = 1.1, .drain_s = 1.5, .load = load,
                                   .active = active, .predicted = -1, .predicted_now = -1, .above_since = -1,
                                   .below_since = -1 };
}

static policy_snapshot_t snapshot(double t, policy_service_t *s, size_t n, int free_rms) {
        return (policy_snapshot_t){ .t = t, .services = s, .n_services = n, .free_rms = free_rms,
                                    .tick_s = 1 };
}

/* Observes every service at t, then decides. */
static size_t decide(policy_snapshot_t *snap, policy_decision_t *d) {
        for (size_t i = 0; i < snap->n_services; i++)
                policy_service_observe(&snap->services[i], snap->t);
        size_t n = 99;
        CHECK(policy_decide(snap, d, 16, &n) == 0);
        return n;
}

int main(void) {
        policy_decision_t d[16];

        /* Overload shorter than the window: nothing; for the window: enough VMs for 70%. */
        policy_service_t s[3] = { service("web", 1, 2.8, 3) }; /* 93% */
        policy_snapshot_t snap = snapshot(100, s, 1, 5);
        CHECK(decide(&snap, d) == 0);
        snap.t = 129;
        CHECK(decide(&snap, d) == 0);
        snap.t = 130;
        CHECK(decide(&snap, d) == 1);
        CHECK(d[0].kind == POLICY_ACTIVATE && d[0].service == 0 && d[0].count == 1); /* 2.8/0.7 = 4 */
        CHECK(strstr(d[0].reason, "cpu 93% > 70% for 30 s: 3 active for load 2.8") != NULL);
        /* The activation in flight is counted: no second one while it comes up. */
        s[0].activating = 1;
        snap.t = 131;
        CHECK(decide(&snap, d) == 0);

        /* A bigger step: 3 active for load 5 wants 8. */
        s[0] = service("web", 1, 5.0, 3);
        snap = snapshot(0, s, 1, 10);
        decide(&snap, d);
        snap.t = 30;
        CHECK(decide(&snap, d) == 1 && d[0].count == 5);
        /* max caps it */
        s[0].max = 6;
        CHECK(decide(&snap, d) == 1 && d[0].count == 3);
        s[0].max = 10;
        /* free RMs cap it; with nothing to reclaim the rest is a server loss */
        snap.free_rms = 2;
        CHECK(decide(&snap, d) == 2);
        CHECK(d[0].kind == POLICY_ACTIVATE && d[0].count == 2);
        CHECK(d[1].kind == POLICY_SERVER_LOSS && d[1].count == 3);
        /* the network budget caps the starts of one tick, and is not a server loss */
        snap.free_rms = 10;
        snap.vm_bytes = 256u << 20;
        snap.network_bps = 1.25e9; /* 4.66 VMs a second */
        CHECK(decide(&snap, d) == 1 && d[0].kind == POLICY_ACTIVATE && d[0].count == 4);
        CHECK(strstr(d[0].reason, "network budget") != NULL);
        snap.network_bps = 0;

        /* No free RM: reclaim from a lower-priority idle service above its min. */
        s[0] = service("finance", 5, 5.0, 3);
        s[1] = service("sports", 1, 0.5, 4); /* 12.5%, needs 1 */
        s[2] = service("news", 9, 0.1, 3);   /* idle, but higher priority: never a donor */
        snap = snapshot(0, s, 3, 0);
        decide(&snap, d);
        snap.t = 30;
        size_t n = decide(&snap, d);
        CHECK(n == 3); /* reclaim 3 from sports, server loss of 2, news drains later */
        CHECK(d[0].kind == POLICY_RECLAIM && d[0].service == 0 && d[0].from_service == 1 && d[0].count == 3);
        CHECK(strstr(d[0].reason, "reclaiming 3 from \"sports\"") != NULL);
        CHECK(d[1].kind == POLICY_SERVER_LOSS && d[1].count == 2);
        CHECK(d[2].kind == POLICY_DRAIN && d[2].service == 2);
        /* reclaims in flight count for the recipient */
        s[0].reclaiming = 3;
        s[1].active = 1;
        s[1].draining = 3;
        n = decide(&snap, d);
        CHECK(n == 2 && d[0].kind == POLICY_SERVER_LOSS && d[0].count == 2);
        /* a busy lower-priority service is not a donor */
        s[0].reclaiming = 0;
        s[1] = service("sports", 1, 3.5, 5);
        s[2].active = 1;
        n = decide(&snap, d);
        CHECK(n == 1 && d[0].kind == POLICY_SERVER_LOSS && d[0].count == 5);

        /* Low load drains after the window, down to what carries it under 90% of high, a quarter
         * of the VMs per decision, one decision in flight at a time, never below min. */
        s[0] = service("web", 1, 0.5, 8); /* 6%: 1 VM would do */
        s[0].min = 3;
        snap = snapshot(0, s, 1, 0);
        CHECK(decide(&snap, d) == 0);
        snap.t = 29;
        CHECK(decide(&snap, d) == 0);
        snap.t = 30;
        CHECK(decide(&snap, d) == 1 && d[0].kind == POLICY_DRAIN && d[0].count == 2);
        CHECK(strstr(d[0].reason, "cpu 6% for 30 s: 8 active for load 0.5; draining 2 (cpu 8% after)") != NULL);
        s[0].active = 6;
        s[0].draining = 2;
        snap.t = 31;
        CHECK(decide(&snap, d) == 0); /* one decision at a time */
        s[0].draining = 0;
        snap.t = 32;
        CHECK(decide(&snap, d) == 1 && d[0].count == 2); /* the window was waited already */
        s[0].active = 4;
        CHECK(decide(&snap, d) == 1 && d[0].count == 1);
        s[0].active = 3;
        snap.t = 60;
        CHECK(decide(&snap, d) == 0); /* at min */
        CHECK(s[0].below_since < 0);

        /* Hysteresis: under high but over 90% of it with one VM less, nothing happens however
         * long; a drain leaves utilisation under 90% of high, so load wobbling by 5% does not
         * activate the VM again. */
        s[0] = service("web", 1, 2.4, 4); /* 60%: 3 VMs would be at 80% > 63% */
        snap = snapshot(0, s, 1, 5);
        for (int t = 0; t <= 600; t += 10) {
                snap.t = t;
                CHECK(decide(&snap, d) == 0);
        }
        s[0] = service("web", 1, 1.75, 4); /* 44%: drains to 3 (58%), then stays */
        int activations = 0, drains = 0;
        for (int t = 0; t <= 600; t += 10) {
                snap.t = t;
                s[0].load = (t / 10) % 2 ? 1.75 * 1.05 : 1.75 * 0.95;
                n = decide(&snap, d);
                for (size_t k = 0; k < n; k++) {
                        if (d[k].kind == POLICY_ACTIVATE)
                                activations++;
                        if (d[k].kind == POLICY_DRAIN) {
                                drains += d[k].count;
                                s[0].active -= d[k].count;
                        }
                }
        }
        CHECK(drains == 1 && activations == 0 && s[0].active == 3);

        /* Same priority, no free RM: VMs another service holds beyond its load at high go, but
         * not those its own prediction needs. */
        s[0] = service("shop", 1, 3.5, 4); /* 87.5%, wants 5 */
        s[1] = service("video", 1, 0.7, 4); /* needs 1 at 70% */
        snap = snapshot(0, s, 2, 0);
        decide(&snap, d);
        snap.t = 30;
        n = decide(&snap, d);
        CHECK(n == 1 && d[0].kind == POLICY_RECLAIM && d[0].from_service == 1 && d[0].count == 1);
        CHECK(strstr(d[0].reason, "reclaiming 1 from \"video\" (same priority, 4 active for load 0.7)") != NULL);
        s[0].load = 4.9; /* wants 7: 3 more */
        s[1].predicted = 1.4;   /* needs 2 by then */
        n = decide(&snap, d);
        CHECK(n == 2 && d[0].kind == POLICY_RECLAIM && d[0].count == 2);
        CHECK(d[1].kind == POLICY_SERVER_LOSS && d[1].count == 1);
        s[1].predicted = -1;
        s[1].priority = 2; /* a higher-priority service is never a donor (it drains later) */
        n = decide(&snap, d);
        CHECK(n == 2 && d[0].kind == POLICY_SERVER_LOSS && d[0].count == 3);
        CHECK(d[1].kind == POLICY_DRAIN && d[1].service == 1);

        /* Predictive activation: the history says 2.8 is coming, so 4 VMs start before any
         * bottleneck; and a predicted load keeps a low service from draining what it will need. */
        s[0] = service("web", 1, 0.5, 1);
        s[0].predicted = 2.8;
        snap = snapshot(0, s, 1, 5);
        CHECK(decide(&snap, d) == 1 && d[0].kind == POLICY_ACTIVATE && d[0].count == 3);
        CHECK(strstr(d[0].reason, "history predicts load 2.8") != NULL);
        s[0] = service("web", 1, 0.5, 4);
        s[0].predicted = 2.6;
        snap = snapshot(0, s, 1, 5);
        decide(&snap, d);
        snap.t = 60;
        CHECK(decide(&snap, d) == 0);
        s[0].predicted = 0.5; /* no more need: it drains after its window */
        CHECK(decide(&snap, d) == 0);
        snap.t = 90;
        CHECK(decide(&snap, d) == 1 && d[0].kind == POLICY_DRAIN);
        /* With the history's load for now, its change is what counts, not its level: a history
         * of a busy day (2.5 now, 2.8 in a minute) on a quiet one (0.5) expects 0.8. */
        s[0] = service("web", 1, 0.5, 1);
        s[0].predicted = 2.8;
        s[0].predicted_now = 2.5;
        CHECK(policy_service_expected(&s[0]) > 0.79 && policy_service_expected(&s[0]) < 0.81);
        snap = snapshot(0, s, 1, 5);
        CHECK(decide(&snap, d) == 1 && d[0].kind == POLICY_ACTIVATE && d[0].count == 1);
        CHECK(strstr(d[0].reason, "history predicts load 0.8") != NULL);
        s[0].predicted = 0.1; /* a fall bigger than the load: 0, not below */
        CHECK(policy_service_expected(&s[0]) == 0);
        s[0].predicted = -1;
        CHECK(policy_service_expected(&s[0]) == -1);

        /* History: a week back, else a day back, the highest within 2 minutes around it. */
        static double bins[3 * 10080];
        policy_history_t h = { .bins = bins, .n_bins = 3 * 10080, .bin_s = 60, .t0 = 0 };
        policy_history_clear(&h);
        CHECK(policy_history_predict(&h, 3600 + POLICY_DAY_S) < 0);
        policy_history_record(&h, 3600, 3660, 2.0);
        policy_history_record(&h, 3660, 3720, 3.0);
        policy_history_record(&h, 3900, 4200, 1.5); /* a 5-minute row fills its 5 bins */
        CHECK(policy_history_predict(&h, 3600 + POLICY_DAY_S) == 3.0);
        CHECK(policy_history_predict(&h, 3480 + POLICY_DAY_S) == 2.0);  /* 3600 is 2 minutes on */
        CHECK(policy_history_predict(&h, 3300 + POLICY_DAY_S) < 0);
        CHECK(policy_history_predict(&h, 4140 + POLICY_DAY_S) == 1.5);
        CHECK(policy_history_predict(&h, 3600 + 2 * POLICY_DAY_S) < 0); /* two days back: nothing */
        /* A week back wins over a day back, even when lower. */
        policy_history_record(&h, 3600 + 6 * POLICY_DAY_S, 3660 + 6 * POLICY_DAY_S, 9.0);
        CHECK(policy_history_predict(&h, 3600 + POLICY_WEEK_S) == 3.0);
        policy_history_record(&h, -60, 0, 5.0); /* before t0: ignored */
        CHECK(policy_history_predict(&h, POLICY_DAY_S) < 0);
        /* Nonsense configuration. */
        s[0] = service("web", 1, 1, 1);
        s[0].min = 5;
        s[0].max = 2;
        snap = snapshot(0, s, 1, 5);
        CHECK(policy_decide(&snap, d, 16, &n) == -EINVAL);
        CHECK(policy_vms_for(2.1, 70) == 3 && policy_vms_for(0, 70) == 0 && policy_vms_for(5, 70) == 8);
        /* Below min: activated at once, no window, idle or not (a new service). */
        s[0] = service("fresh", 1, 0, 0);
        s[0].min = 2;
        snap = snapshot(0, s, 1, 4);
        CHECK(decide(&snap, d) == 1 && d[0].kind == POLICY_ACTIVATE && d[0].count == 2);
        CHECK(strstr(d[0].reason, "0 active or starting, below min 2") != NULL);
        s[0].activating = 2;
        CHECK(decide(&snap, d) == 0);
        /* A failed VM is replaced at once, even at low load, but never above max. */
        s[0] = service("web", 1, 0.2, 2);
        s[0].replace = 1;
        snap = snapshot(0, s, 1, 4);
        CHECK(decide(&snap, d) == 1 && d[0].kind == POLICY_ACTIVATE && d[0].count == 1);
        CHECK(strstr(d[0].reason, "replacing 1 failed VM(s)") != NULL);
        s[0].max = 2;
        CHECK(decide(&snap, d) == 0);
        /* no free RM for the replacement: a server loss, recorded */
        s[0].max = 10;
        snap.free_rms = 0;
        CHECK(decide(&snap, d) == 1 && d[0].kind == POLICY_SERVER_LOSS && d[0].count == 1);

        return tap_finish();
}
