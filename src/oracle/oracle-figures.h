/* The figures the switching policy uses, measured by the Oracle (oracle-figures.c): running
 * medians of activation, drain and boot times per image and RM, each over the last
 * ORACLE_FIGURES_RING samples, kept in the store (store-figures.h) so a restart keeps them.
 *   activation  an activate op from the Nest (the VM stored, no origin RM), created -> finished,
 *               successful: what the policy waits for when it activates a VM
 *   drain       a successful deactivate op, created -> finished
 *   boot        the pool's boot of a VM until its health check passes (oracle-pool.c)
 * GET /v1/figures serves them; `vmatrix sim --from-cluster` replays a trace with them. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "oracle/oracle-internal.h"
#include "policy/policy.h"

/* What a service with no figure of its image yet gets: bench/activation's activation of a
 * pre-booted VM from the Nest and a graceful drain when the policy was written. A service is
 * ready only once its pool was pre-booted, so a boot figure exists by then (the fill falls back
 * on it before these): only a cluster whose figures were never measured uses them. */
#define ORACLE_FIGURES_DEFAULT_ACTIVATION_S 1.1
#define ORACLE_FIGURES_DEFAULT_DRAIN_S 1.5

#define ORACLE_FIGURES_RING 32
/* Rings the Oracle keeps at most (kinds x images x RMs); a sample for another is dropped. */
#define ORACLE_FIGURES_MAX 4096
/* A sample outside (0, this] seconds is not a figure (a clock step, an op re-driven after a
 * restart) and is dropped. */
#define ORACLE_FIGURES_SAMPLE_MAX_S 3600.0

typedef enum oracle_figure_kind {
        ORACLE_FIGURE_ACTIVATION,
        ORACLE_FIGURE_DRAIN,
        ORACLE_FIGURE_BOOT,
        ORACLE_FIGURE_KINDS,
} oracle_figure_kind_t;

/* "activation", "drain", "boot"; from_string: -EINVAL for another name. */
const char *oracle_figure_kind_to_string(oracle_figure_kind_t k);
int oracle_figure_kind_from_string(const char *s, oracle_figure_kind_t *ret);

/* The last ORACLE_FIGURES_RING samples, the oldest overwritten first. */
typedef struct oracle_figure_ring {
        double v[ORACLE_FIGURES_RING];
        size_t n;    /* samples held, at most ORACLE_FIGURES_RING */
        size_t next; /* where the next one goes */
} oracle_figure_ring_t;

void oracle_figure_ring_add(oracle_figure_ring_t *r, double v);
/* The samples oldest first into out (room for ORACLE_FIGURES_RING); their number. */
size_t oracle_figure_ring_samples(const oracle_figure_ring_t *r, double *out);
/* The median of v[0..n) (the mean of the middle two for an even n), v reordered; -1 for n 0. */
double oracle_figures_median(double *v, size_t n);

typedef struct oracle_figures oracle_figures_t;

/* The figures kept in store, loaded (a row that does not parse is skipped). Never NULL. */
oracle_figures_t *oracle_figures_new(store_t *store);
oracle_figures_t *oracle_figures_free(oracle_figures_t *f);

/* Adds a sample of kind for (image, rm) and writes its ring to the store (a failed write is
 * logged: the sample stays in memory). Samples out of bounds or with no image or RM are
 * dropped. Thread-safe. */
void oracle_figures_note(oracle_figures_t *f, oracle_figure_kind_t kind, const char *image, const char *rm,
                         double seconds);
/* The median of kind for image on rm, or over all its RMs for rm NULL; -1 when there is no
 * sample. The number of samples in *ret_n (may be NULL). Thread-safe. */
double oracle_figures_median_of(oracle_figures_t *f, oracle_figure_kind_t kind, const char *image, const char *rm,
                                size_t *ret_n);
/* GET /v1/figures: {"activation_s": {IMAGE: {"median", "n", "by_rm": {RM: {"median", "n"}}}},
 * "drain_s": ..., "boot_s": ..., "defaults": {"activation_s", "drain_s"}}. */
json_t *oracle_figures_json(oracle_figures_t *f);

/* An op ended (oracle_op_finish): a successful activate from the Nest or deactivate is noted. */
void oracle_figures_op_done(oracle_t *o, const op_record_t *op, const vm_record_t *vm, bool ok);
/* Fills ps->activation_s and ps->drain_s for service sv: its image's activation median, else
 * its boot median, else the default; its drain median, else the default. */
void oracle_figures_fill(oracle_t *o, const service_record_t *sv, policy_service_t *ps);
