/* The load-profile samples in SQLite (store-metrics.h): one row per (series, resolution,
 * bucket start) holding sum, count and max, written by an upsert per resolution. */
#include "store/store-metrics.h"

#include <math.h>
#include <string.h>

#include "store/store-internal.h"

const int64_t store_samples_resolutions[3] = { 1, 60, 3600 };
/* How long each resolution is kept, in seconds; index as store_samples_resolutions. */
static const int64_t samples_retention_s[3] = { 3600, 7 * 86400, 365 * 86400 };

bool store_samples_res_is_valid(int64_t res) {
        for (size_t i = 0; i < ELEMENTSOF(store_samples_resolutions); i++)
                if (store_samples_resolutions[i] == res)
                        return true;
        return false;
}

static bool sample_is_valid(const store_sample_t *x) {
        return x->series && *x->series && strlen(x->series) < STORE_SAMPLES_SERIES_MAX && x->t >= 0 &&
               isfinite(x->value);
}

int store_samples_add(store_t *s, const store_sample_t *samples, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!sample_is_valid(&samples[i]))
                        return -EINVAL;
        if (n == 0)
                return 0;
        int r = store_tx_begin(s);
        if (r < 0)
                return r;
        /* "max" is both a column and a function here: the column is qualified */
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "INSERT INTO samples (series,res,t,sum,n,max) VALUES (?1,?2,?3,?4,1,?4)"
                   " ON CONFLICT (series,res,t) DO UPDATE SET sum=samples.sum+excluded.sum, n=samples.n+1,"
                   " max=MAX(samples.max,excluded.max)");
        r = st ? 0 : -EIO;
        for (size_t i = 0; i < n && r >= 0; i++)
                for (size_t k = 0; k < ELEMENTSOF(store_samples_resolutions) && r >= 0; k++) {
                        int64_t res = store_samples_resolutions[k];
                        sqlite3_reset(st);
                        sqlite3_bind_text(st, 1, samples[i].series, -1, SQLITE_STATIC);
                        sqlite3_bind_int64(st, 2, res);
                        sqlite3_bind_int64(st, 3, samples[i].t - samples[i].t % res);
                        sqlite3_bind_double(st, 4, samples[i].value);
                        r = store_step_done(s, st);
                }
        if (st)
                sqlite3_reset(st);
        if (r < 0) {
                store_tx_rollback(s);
                return r;
        }
        return store_tx_commit(s);
}

int store_samples_get(store_t *s, const char *series, int64_t res, int64_t since_s, int64_t until_s,
                      json_t **ret) {
        if (!store_samples_res_is_valid(res) || since_s > until_s || !series)
                return -EINVAL;
        /* the newest STORE_SAMPLES_POINTS_MAX buckets, then turned oldest first */
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "SELECT t, avg, mx FROM (SELECT t, sum / n AS avg, max AS mx FROM samples"
                   " WHERE series=?1 AND res=?2 AND t>=?3 AND t<=?4 ORDER BY t DESC LIMIT ?5) ORDER BY t");
        json_t *points = json_array();
        int rc = SQLITE_ERROR;
        if (st) {
                sqlite3_bind_text(st, 1, series, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, res);
                /* since_s >= 0 is not required of the caller: floor the bucket start either way */
                sqlite3_bind_int64(st, 3, since_s - (since_s % res + res) % res);
                sqlite3_bind_int64(st, 4, until_s);
                sqlite3_bind_int(st, 5, STORE_SAMPLES_POINTS_MAX);
                while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                        json_array_append_new(points, json_pack("[I,f,f]", (json_int_t)sqlite3_column_int64(st, 0),
                                                                sqlite3_column_double(st, 1),
                                                                sqlite3_column_double(st, 2)));
        }
        store_unlock(s);
        if (rc != SQLITE_DONE) {
                json_decref(points);
                return st ? (store_sqlite_errno(rc) ?: -EIO) : -EIO;
        }
        *ret = points;
        return 0;
}

int store_samples_prune(store_t *s, int64_t now_s) {
        int r = store_tx_begin(s);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "DELETE FROM samples WHERE res=? AND t<?");
        int64_t deleted = 0;
        r = st ? 0 : -EIO;
        for (size_t k = 0; k < ELEMENTSOF(store_samples_resolutions) && r >= 0; k++) {
                sqlite3_reset(st);
                sqlite3_bind_int64(st, 1, store_samples_resolutions[k]);
                sqlite3_bind_int64(st, 2, now_s - samples_retention_s[k]);
                r = store_step_done(s, st);
                if (r >= 0)
                        deleted += sqlite3_changes(s->db);
        }
        if (st)
                sqlite3_reset(st);
        if (r < 0) {
                store_tx_rollback(s);
                return r;
        }
        r = store_tx_commit(s);
        return r < 0 ? r : (int)MIN(deleted, (int64_t)INT32_MAX);
}
