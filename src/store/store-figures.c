/* The figures table in the SQLite store (store-figures.h). */
#include "store/store-figures.h"

#include <errno.h>
#include <string.h>

#include "store/store-internal.h"

static bool name_ok(const char *s) { return s && *s && strlen(s) < STORE_FIGURES_NAME_MAX; }

int store_figures_put(store_t *s, const char *kind, const char *image, const char *rm, const json_t *samples) {
        if (!name_ok(kind) || !name_ok(image) || !name_ok(rm) || !json_is_array(samples))
                return -EINVAL;
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "INSERT OR REPLACE INTO figures (kind,image,rm,samples) VALUES (?,?,?,?)");
        int r = -EIO;
        if (st) {
                store_bind_text(st, 1, kind);
                store_bind_text(st, 2, image);
                store_bind_text(st, 3, rm);
                r = store_bind_json(st, 4, samples) == SQLITE_OK ? store_step_done(s, st) : -ENOMEM;
        }
        store_unlock(s);
        return r;
}

static json_t *figure_row(sqlite3_stmt *st) {
        json_t *samples = store_column_json(st, 3);
        if (!json_is_array(samples)) {
                json_decref(samples);
                samples = json_array();
        }
        return json_pack("{s:s,s:s,s:s,s:o}", "kind", (const char *)sqlite3_column_text(st, 0), "image",
                         (const char *)sqlite3_column_text(st, 1), "rm", (const char *)sqlite3_column_text(st, 2),
                         "samples", samples);
}

int store_figures_list(store_t *s, json_t **ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "SELECT kind,image,rm,samples FROM figures ORDER BY kind,image,rm");
        int r = store_rows_json(st, figure_row, ret);
        store_unlock(s);
        return r;
}
