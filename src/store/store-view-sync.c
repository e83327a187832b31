/* The store view against the tables: store_open loads the view from them after the migrations,
 * and the check mode compares them (store-view.h). Apart from store-view.c, which only holds and
 * feeds the mirror, so that the view needs nothing of the records layer that feeds it. */
#include <errno.h>
#include <stdlib.h>

#include "base/util.h"
#include "store/store-internal.h"
#include "store/store-view.h"
#include "store/store.h"

typedef struct tables {
        vm_record_t *vms;
        rm_record_t *rms;
        op_record_t *ops;
        size_t nv, nr, no;
} tables_t;

static int tables_read(store_t *s, tables_t *t) {
        int r = store_vm_list(s, &t->vms, &t->nv);
        if (r >= 0)
                r = store_rm_list(s, &t->rms, &t->nr);
        if (r >= 0)
                r = store_op_list_running(s, &t->ops, &t->no);
        return r;
}

static void tables_free(tables_t *t) {
        store_vm_list_free(t->vms, t->nv);
        free(t->rms);
        store_op_list_free(t->ops, t->no);
}

int store_open(const char *path, store_t **ret) {
        store_t *s = NULL;
        int r = store_db_open(path, &s);
        if (r < 0)
                return r;
        tables_t t = { 0 };
        r = tables_read(s, &t);
        if (r >= 0)
                store_view_load_rows(s, t.vms, t.nv, t.rms, t.nr, t.ops, t.no);
        tables_free(&t);
        if (r < 0) {
                store_close(s);
                return r;
        }
        *ret = s;
        return 0;
}

int store_view_check(store_t *s, char **ret_msg) {
        store_lock(s);
        tables_t t = { 0 };
        int r = tables_read(s, &t);
        char *diff = r >= 0 ? store_view_diff_rows(s, t.vms, t.nv, t.rms, t.nr, t.ops, t.no) : NULL;
        store_unlock(s);
        tables_free(&t);
        if (r < 0) {
                *ret_msg = xstrdup("the store's tables cannot be read");
                return -EIO;
        }
        if (diff) {
                *ret_msg = diff;
                return -EPROTO;
        }
        return 0;
}
