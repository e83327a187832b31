/* The figures the switching policy uses (oracle-figures.h): a ring of samples per (kind, image,
 * RM) in memory under one lock, each ring written to the store whole when a sample is added
 * (an op's end is a change anyway, and a ring is 32 numbers). Readers merge the rings of an
 * image for its median. */
#include "oracle/oracle-figures.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "store/store-figures.h"

typedef struct figure {
        oracle_figure_kind_t kind;
        char image[STORE_FIGURES_NAME_MAX];
        char rm[STORE_FIGURES_NAME_MAX];
        oracle_figure_ring_t ring;
} figure_t;

struct oracle_figures {
        store_t *store;
        pthread_mutex_t write_lock; /* serializes notes, so rings reach the store in their order */
        pthread_mutex_t lock;       /* guards list; never held across a store call, so a reader
                                     * (the switching loop) never waits for the store */
        figure_t *list;
        size_t n;
        bool full_logged;
};

static const char *const kind_names[ORACLE_FIGURE_KINDS] = {
        [ORACLE_FIGURE_ACTIVATION] = "activation",
        [ORACLE_FIGURE_DRAIN] = "drain",
        [ORACLE_FIGURE_BOOT] = "boot",
};

const char *oracle_figure_kind_to_string(oracle_figure_kind_t k) {
        return k < ORACLE_FIGURE_KINDS ? kind_names[k] : "unknown";
}

int oracle_figure_kind_from_string(const char *s, oracle_figure_kind_t *ret) {
        for (size_t k = 0; s && k < ORACLE_FIGURE_KINDS; k++)
                if (streq(s, kind_names[k])) {
                        *ret = (oracle_figure_kind_t)k;
                        return 0;
                }
        return -EINVAL;
}

void oracle_figure_ring_add(oracle_figure_ring_t *r, double v) {
        r->v[r->next] = v;
        r->next = (r->next + 1) % ORACLE_FIGURES_RING;
        if (r->n < ORACLE_FIGURES_RING)
                r->n++;
}

size_t oracle_figure_ring_samples(const oracle_figure_ring_t *r, double *out) {
        size_t first = (r->next + ORACLE_FIGURES_RING - r->n) % ORACLE_FIGURES_RING;
        for (size_t i = 0; i < r->n; i++)
                out[i] = r->v[(first + i) % ORACLE_FIGURES_RING];
        return r->n;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

double oracle_figures_median(double *v, size_t n) {
        if (n == 0)
                return -1;
        qsort(v, n, sizeof *v, cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool sample_ok(double s) { return isfinite(s) && s > 0 && s <= ORACLE_FIGURES_SAMPLE_MAX_S; }

static bool name_ok(const char *s) { return s && *s && strlen(s) < STORE_FIGURES_NAME_MAX; }

/* The figure of (kind, image, rm), or NULL; a new one when create and there is room. Locked. */
static figure_t *figure_find(oracle_figures_t *f, oracle_figure_kind_t kind, const char *image, const char *rm,
                             bool create) {
        for (size_t i = 0; i < f->n; i++)
                if (f->list[i].kind == kind && streq(f->list[i].image, image) && streq(f->list[i].rm, rm))
                        return &f->list[i];
        if (!create)
                return NULL;
        if (f->n >= ORACLE_FIGURES_MAX) {
                if (!f->full_logged)
                        log_warn("figures: %d kept already; samples of other images and RMs are dropped",
                                 ORACLE_FIGURES_MAX);
                f->full_logged = true;
                return NULL;
        }
        figure_t *g = array_append(&f->list, &f->n, sizeof *g);
        *g = (figure_t){ .kind = kind };
        snprintf(g->image, sizeof g->image, "%s", image);
        snprintf(g->rm, sizeof g->rm, "%s", rm);
        return g;
}

oracle_figures_t *oracle_figures_new(store_t *store) {
        oracle_figures_t *f = xcalloc(1, sizeof *f);
        f->store = store;
        pthread_mutex_init(&f->lock, NULL);
        pthread_mutex_init(&f->write_lock, NULL);
        json_t *rows = NULL;
        if (!store || store_figures_list(store, &rows) < 0)
                return f;
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) {
                oracle_figure_kind_t kind;
                const char *image = json_string_value(json_object_get(row, "image"));
                const char *rm = json_string_value(json_object_get(row, "rm"));
                if (oracle_figure_kind_from_string(json_string_value(json_object_get(row, "kind")), &kind) < 0 ||
                    !name_ok(image) || !name_ok(rm))
                        continue;
                figure_t *g = figure_find(f, kind, image, rm, true);
                size_t k;
                json_t *v;
                json_array_foreach(json_object_get(row, "samples"), k, v) {
                        if (g && json_is_number(v) && sample_ok(json_number_value(v)))
                                oracle_figure_ring_add(&g->ring, json_number_value(v));
                }
        }
        json_decref(rows);
        return f;
}

oracle_figures_t *oracle_figures_free(oracle_figures_t *f) {
        if (f) {
                pthread_mutex_destroy(&f->lock);
                pthread_mutex_destroy(&f->write_lock);
                free(f->list);
                free(f);
        }
        return NULL;
}

void oracle_figures_note(oracle_figures_t *f, oracle_figure_kind_t kind, const char *image, const char *rm,
                         double seconds) {
        if (!f || kind >= ORACLE_FIGURE_KINDS || !name_ok(image) || !name_ok(rm) || !sample_ok(seconds))
                return;
        pthread_mutex_lock(&f->write_lock);
        pthread_mutex_lock(&f->lock);
        figure_t *g = figure_find(f, kind, image, rm, true);
        double v[ORACLE_FIGURES_RING];
        size_t n = 0;
        if (g) {
                oracle_figure_ring_add(&g->ring, seconds);
                n = oracle_figure_ring_samples(&g->ring, v);
        }
        pthread_mutex_unlock(&f->lock);
        if (g && f->store) {
                json_t *samples = json_array();
                for (size_t i = 0; i < n; i++)
                        json_array_append_new(samples, json_real(v[i]));
                int r = store_figures_put(f->store, kind_names[kind], image, rm, samples);
                if (r < 0)
                        log_warn("figures: cannot store the %s samples of %s on %s: %s", kind_names[kind], image, rm,
                                 strerror(-r));
                json_decref(samples);
        }
        pthread_mutex_unlock(&f->write_lock);
}

/* The samples of kind for image (on rm, or on every RM for NULL) into v (room for all). Locked. */
static size_t samples_of(oracle_figures_t *f, oracle_figure_kind_t kind, const char *image, const char *rm,
                         double *v) {
        size_t n = 0;
        for (size_t i = 0; i < f->n; i++) {
                const figure_t *g = &f->list[i];
                if (g->kind == kind && streq(g->image, image) && (!rm || streq(g->rm, rm)))
                        n += oracle_figure_ring_samples(&g->ring, v + n);
        }
        return n;
}

double oracle_figures_median_of(oracle_figures_t *f, oracle_figure_kind_t kind, const char *image, const char *rm,
                                size_t *ret_n) {
        double median = -1;
        size_t n = 0;
        if (f && image) {
                pthread_mutex_lock(&f->lock);
                _cleanup_free_ double *v = xcalloc(f->n * ORACLE_FIGURES_RING + 1, sizeof *v);
                n = samples_of(f, kind, image, rm, v);
                median = oracle_figures_median(v, n);
                pthread_mutex_unlock(&f->lock);
        }
        if (ret_n)
                *ret_n = n;
        return median;
}

static json_t *median_json(double *v, size_t n) {
        double m = oracle_figures_median(v, n);
        return json_pack("{s:f,s:I}", "median", m, "n", (json_int_t)n);
}

json_t *oracle_figures_json(oracle_figures_t *f) {
        json_t *j = json_object();
        pthread_mutex_lock(&f->lock);
        _cleanup_free_ double *v = xcalloc(f->n * ORACLE_FIGURES_RING + 1, sizeof *v);
        for (size_t k = 0; k < ORACLE_FIGURE_KINDS; k++) {
                json_t *kind = json_object();
                for (size_t i = 0; i < f->n; i++) {
                        const figure_t *g = &f->list[i];
                        if (g->kind != k || json_object_get(kind, g->image))
                                continue;
                        json_t *image = median_json(v, samples_of(f, g->kind, g->image, NULL, v));
                        json_t *by_rm = json_object();
                        for (size_t r = i; r < f->n; r++) {
                                const figure_t *h = &f->list[r];
                                if (h->kind == g->kind && streq(h->image, g->image))
                                        json_object_set_new(by_rm, h->rm,
                                                            median_json(v, oracle_figure_ring_samples(&h->ring, v)));
                        }
                        json_object_set_new(image, "by_rm", by_rm);
                        json_object_set_new(kind, g->image, image);
                }
                _cleanup_free_ char *key = xasprintf("%s_s", kind_names[k]);
                json_object_set_new(j, key, kind);
        }
        pthread_mutex_unlock(&f->lock);
        json_object_set_new(j, "defaults", json_pack("{s:f,s:f}", "activation_s", ORACLE_FIGURES_DEFAULT_ACTIVATION_S,
                                                     "drain_s", ORACLE_FIGURES_DEFAULT_DRAIN_S));
        return j;
}

void oracle_figures_op_done(oracle_t *o, const op_record_t *op, const vm_record_t *vm, bool ok) {
        if (!ok || !o->figures)
                return;
        double seconds = (double)(op->updated_ms - op->created_ms) / 1000.0;
        if (streq(op->kind, "activate")) {
                /* from the Nest only: a VM suspended on an RM is resumed, or saved first */
                const char *origin = oracle_op_arg(op, "origin");
                if (!origin || !*origin)
                        oracle_figures_note(o->figures, ORACLE_FIGURE_ACTIVATION, vm->image, vm->rm, seconds);
        } else if (streq(op->kind, "deactivate")) {
                const char *rm = json_string_value(json_object_get(op->prev, "rm"));
                oracle_figures_note(o->figures, ORACLE_FIGURE_DRAIN, vm->image, rm, seconds);
        }
}

void oracle_figures_fill(oracle_t *o, const service_record_t *sv, policy_service_t *ps) {
        double a = oracle_figures_median_of(o->figures, ORACLE_FIGURE_ACTIVATION, sv->image, NULL, NULL);
        if (a < 0)
                a = oracle_figures_median_of(o->figures, ORACLE_FIGURE_BOOT, sv->image, NULL, NULL);
        double d = oracle_figures_median_of(o->figures, ORACLE_FIGURE_DRAIN, sv->image, NULL, NULL);
        ps->activation_s = a >= 0 ? a : ORACLE_FIGURES_DEFAULT_ACTIVATION_S;
        ps->drain_s = d >= 0 ? d : ORACLE_FIGURES_DEFAULT_DRAIN_S;
}
