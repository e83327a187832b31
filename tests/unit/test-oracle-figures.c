/* Unit tests of the measured figures (oracle-figures.c): the ring and its median, which ops are
 * noted, the fill the switching policy gets, GET /v1/figures' shape, and the figures kept
 * across a reopen of the store. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "oracle/oracle-figures.h"
#include "store/store.h"
#include "tap.h"

static bool near(double a, double b) { return fabs(a - b) < 1e-9; }

static void test_ring(void) {
        oracle_figure_ring_t r = { 0 };
        double v[ORACLE_FIGURES_RING];
        CHECK(oracle_figure_ring_samples(&r, v) == 0);
        CHECK(oracle_figures_median(v, 0) == -1);
        for (int i = 1; i <= 3; i++)
                oracle_figure_ring_add(&r, i);
        CHECK(oracle_figure_ring_samples(&r, v) == 3 && v[0] == 1 && v[2] == 3);
        /* 40 samples: the last 32 (9..40) are kept, oldest first */
        for (int i = 4; i <= 40; i++)
                oracle_figure_ring_add(&r, i);
        CHECK(oracle_figure_ring_samples(&r, v) == ORACLE_FIGURES_RING);
        CHECK(v[0] == 9 && v[ORACLE_FIGURES_RING - 1] == 40);
        CHECK(near(oracle_figures_median(v, ORACLE_FIGURES_RING), 24.5)); /* (24 + 25) / 2 */
        double odd[] = { 5, 0.5, 100, 1, 2 };
        CHECK(near(oracle_figures_median(odd, 5), 2)); /* an outlier moves it not */
        double one[] = { 0.7 };
        CHECK(near(oracle_figures_median(one, 1), 0.7));
}

static void test_notes(store_t *store, const char *path) {
        oracle_figures_t *f = oracle_figures_new(store);
        size_t n = 99;
        CHECK(oracle_figures_median_of(f, ORACLE_FIGURE_ACTIVATION, "tiny-http", NULL, &n) == -1 && n == 0);
        oracle_figures_note(f, ORACLE_FIGURE_ACTIVATION, "tiny-http", "rm1", 0.4);
        oracle_figures_note(f, ORACLE_FIGURE_ACTIVATION, "tiny-http", "rm1", 0.6);
        oracle_figures_note(f, ORACLE_FIGURE_ACTIVATION, "tiny-http", "rm2", 5.0);
        oracle_figures_note(f, ORACLE_FIGURE_ACTIVATION, "debian", "rm1", 2.0);
        /* not figures: dropped */
        oracle_figures_note(f, ORACLE_FIGURE_ACTIVATION, "tiny-http", "rm1", -1);
        oracle_figures_note(f, ORACLE_FIGURE_ACTIVATION, "tiny-http", "rm1", 0);
        oracle_figures_note(f, ORACLE_FIGURE_ACTIVATION, "tiny-http", "rm1", NAN);
        oracle_figures_note(f, ORACLE_FIGURE_ACTIVATION, "tiny-http", "rm1", ORACLE_FIGURES_SAMPLE_MAX_S + 1);
        oracle_figures_note(f, ORACLE_FIGURE_ACTIVATION, "tiny-http", "", 1);
        oracle_figures_note(f, ORACLE_FIGURE_ACTIVATION, NULL, "rm1", 1);
        oracle_figures_note(f, ORACLE_FIGURE_KINDS, "tiny-http", "rm1", 1);
        CHECK(near(oracle_figures_median_of(f, ORACLE_FIGURE_ACTIVATION, "tiny-http", "rm1", &n), 0.5) && n == 2);
        CHECK(near(oracle_figures_median_of(f, ORACLE_FIGURE_ACTIVATION, "tiny-http", NULL, &n), 0.6) && n == 3);
        CHECK(oracle_figures_median_of(f, ORACLE_FIGURE_DRAIN, "tiny-http", NULL, &n) == -1 && n == 0);

        /* the fill: activation, else boot, else the defaults */
        oracle_t o = { .figures = f };
        service_record_t sv = { 0 };
        snprintf(sv.image, sizeof sv.image, "tiny-http");
        policy_service_t ps = { 0 };
        oracle_figures_fill(&o, &sv, &ps);
        CHECK(near(ps.activation_s, 0.6) && near(ps.drain_s, ORACLE_FIGURES_DEFAULT_DRAIN_S));
        snprintf(sv.image, sizeof sv.image, "big");
        oracle_figures_note(f, ORACLE_FIGURE_BOOT, "big", "ch1", 9.0);
        oracle_figures_fill(&o, &sv, &ps);
        CHECK(near(ps.activation_s, 9.0));
        snprintf(sv.image, sizeof sv.image, "never-seen");
        oracle_figures_fill(&o, &sv, &ps);
        CHECK(near(ps.activation_s, ORACLE_FIGURES_DEFAULT_ACTIVATION_S));
        oracle_t none = { 0 }; /* no figures at all (an Oracle being set up) */
        oracle_figures_fill(&none, &sv, &ps);
        CHECK(near(ps.activation_s, ORACLE_FIGURES_DEFAULT_ACTIVATION_S));

        /* which ops are figures: activate from the Nest, deactivate; successful only */
        vm_record_t vm = { 0 };
        snprintf(vm.image, sizeof vm.image, "opimg");
        snprintf(vm.rm, sizeof vm.rm, "rm3");
        op_record_t op = { .created_ms = 1000, .updated_ms = 2250 };
        snprintf(op.kind, sizeof op.kind, "activate");
        op.args = json_pack("{s:s}", "rm", "rm3");
        oracle_figures_op_done(&o, &op, &vm, true);
        oracle_figures_op_done(&o, &op, &vm, false);
        CHECK(near(oracle_figures_median_of(f, ORACLE_FIGURE_ACTIVATION, "opimg", "rm3", &n), 1.25) && n == 1);
        json_object_set_new(op.args, "origin", json_string("rm9")); /* saved elsewhere first: not one */
        oracle_figures_op_done(&o, &op, &vm, true);
        CHECK(oracle_figures_median_of(f, ORACLE_FIGURE_ACTIVATION, "opimg", NULL, &n) > 0 && n == 1);
        snprintf(op.kind, sizeof op.kind, "deactivate");
        op.prev = json_pack("{s:s}", "rm", "rm3");
        vm.rm[0] = 0; /* stored now */
        oracle_figures_op_done(&o, &op, &vm, true);
        CHECK(near(oracle_figures_median_of(f, ORACLE_FIGURE_DRAIN, "opimg", "rm3", &n), 1.25) && n == 1);
        snprintf(op.kind, sizeof op.kind, "boot");
        oracle_figures_op_done(&o, &op, &vm, true);
        CHECK(oracle_figures_median_of(f, ORACLE_FIGURE_BOOT, "opimg", NULL, &n) == -1 && n == 0);
        json_decref(op.args);
        json_decref(op.prev);

        /* GET /v1/figures */
        json_t *j = oracle_figures_json(f);
        json_t *th = json_object_get(json_object_get(j, "activation_s"), "tiny-http");
        CHECK(json_integer_value(json_object_get(th, "n")) == 3);
        CHECK(near(json_real_value(json_object_get(th, "median")), 0.6));
        json_t *rm2 = json_object_get(json_object_get(th, "by_rm"), "rm2");
        CHECK(json_integer_value(json_object_get(rm2, "n")) == 1 && near(json_real_value(json_object_get(rm2, "median")), 5));
        CHECK(json_object_size(json_object_get(th, "by_rm")) == 2);
        CHECK(json_object_get(json_object_get(j, "boot_s"), "big") != NULL);
        CHECK(json_object_size(json_object_get(j, "drain_s")) == 1);
        CHECK(near(json_real_value(json_object_get(json_object_get(j, "defaults"), "activation_s")),
                   ORACLE_FIGURES_DEFAULT_ACTIVATION_S));
        json_decref(j);
        oracle_figures_free(f);

        /* kept across a reopen of the store: the same medians */
        store_close(store);
        store = NULL;
        CHECK(store_open(path, &store) == 0);
        f = oracle_figures_new(store);
        CHECK(near(oracle_figures_median_of(f, ORACLE_FIGURE_ACTIVATION, "tiny-http", NULL, &n), 0.6) && n == 3);
        CHECK(near(oracle_figures_median_of(f, ORACLE_FIGURE_BOOT, "big", "ch1", &n), 9.0) && n == 1);
        CHECK(near(oracle_figures_median_of(f, ORACLE_FIGURE_DRAIN, "opimg", "rm3", &n), 1.25) && n == 1);
        /* a full ring stays 32 through the store */
        for (int i = 0; i < 40; i++)
                oracle_figures_note(f, ORACLE_FIGURE_DRAIN, "ring", "rm1", 1 + i);
        oracle_figures_free(f);
        store_close(store);
        CHECK(store_open(path, &store) == 0);
        f = oracle_figures_new(store);
        CHECK(near(oracle_figures_median_of(f, ORACLE_FIGURE_DRAIN, "ring", "rm1", &n), 24.5) && n == 32);
        oracle_figures_free(f);
        store_close(store);
}

int main(void) {
        test_ring();
        char dir[] = "/tmp/vmx-test-figures-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *path = xasprintf("%s/state.db", dir);
        store_t *s = NULL;
        CHECK(store_open(path, &s) == 0);
        if (s)
                test_notes(s, path);
        _cleanup_free_ char *cmd = xasprintf("rm -rf %s", dir);
        CHECK(system(cmd) == 0);
        return tap_finish();
}
