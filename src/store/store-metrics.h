/* Load-profile time series in the store (table "samples", schema version 2): every sample of a
 * series is folded into three resolutions at once — 1 s, 1 min and 1 h buckets — as a running
 * sum, count and maximum, so a read gets the average and the peak of each bucket without
 * touching raw samples, and old detail is dropped by resolution (store_samples_prune):
 *   res 1     kept 1 hour
 *   res 60    kept 7 days
 *   res 3600  kept 365 days
 * Series are named "vm:NAME:KIND" and "service:NAME:KIND" (oracle-metrics.c owns the names). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_SAMPLES_SERIES_MAX 128   /* bytes of a series name, with its NUL */
#define STORE_SAMPLES_POINTS_MAX 4000  /* points one store_samples_get answers at most */

typedef struct store_sample {
        const char *series;
        int64_t t;              /* unix seconds, >= 0 */
        double value;           /* finite */
} store_sample_t;

/* The resolutions in seconds, finest first; keep in sync with retention in store-metrics.c. */
extern const int64_t store_samples_resolutions[3];
/* Is res one of store_samples_resolutions? */
bool store_samples_res_is_valid(int64_t res);

/* Adds n samples, each to its bucket of every resolution (bucket start t - t % res: sum += v,
 * n += 1, max = MAX(max, v)), all in one transaction. -EINVAL (nothing written) when a sample
 * has no series, a series longer than STORE_SAMPLES_SERIES_MAX - 1, a negative t or a value
 * that is not finite; -errno of the store otherwise. Thread-safe (the store's lock). */
int store_samples_add(store_t *s, const store_sample_t *samples, size_t n);

/* The buckets of series at resolution res that overlap [since_s, until_s] (the bucket holding
 * since_s counts), as a JSON array of [t, avg, max] oldest first; when more than
 * STORE_SAMPLES_POINTS_MAX match, the newest that many. An unknown series gives []. -EINVAL for
 * a res that is not a resolution or since_s > until_s. *ret is owned by the caller. */
int store_samples_get(store_t *s, const char *series, int64_t res, int64_t since_s, int64_t until_s,
                      json_t **ret);

/* Deletes the buckets past their resolution's retention (a bucket goes when its start is
 * older than now_s minus the retention). Returns how many were deleted, or -errno. */
int store_samples_prune(store_t *s, int64_t now_s);
