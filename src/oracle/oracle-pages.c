/* Pages of the two lists that grow with the cluster, GET /v1/vms and GET /v1/rms
 * (?limit=N&after=NAME, docs/api.md): the records whose names sort after NAME, visible to the
 * caller, by name, at most N. Keyset paging on the name (store_vm_page): a walk that passes a
 * page's last name as the next `after` sees every record that exists throughout it exactly
 * once, in increasing order. The caller's visibility filters rows after the store read them,
 * so a page reads 2N rows at a time until it has N visible ones or the table ends: a page
 * shorter than N is the last one. Without limit the routes answer the whole list, read the
 * same way a store page at a time (never the whole table at once, nor every VM per RM). */
#include <string.h>

#include "base/util.h"
#include "oracle/oracle-internal.h"

/* Rows read per store call: twice what the page still needs; a whole list, STORE_PAGE_MAX. */
#define PAGE_READ_FACTOR 2

static size_t page_want(size_t limit, size_t have) {
        size_t want = limit ? (limit - have) * PAGE_READ_FACTOR : STORE_PAGE_MAX;
        return want < STORE_PAGE_MAX ? want : STORE_PAGE_MAX;
}

static bool page_full(size_t limit, size_t have) { return limit && have >= limit; }

int oracle_page_args(const http_request_t *req, http_reply_t *reply, size_t *ret_limit, const char **ret_after) {
        const char *limit = http_request_query(req, "limit"), *after = http_request_query(req, "after");
        if (!limit) {
                if (after) {
                        http_reply_error(reply, 400, "invalid", "after=NAME goes with limit=N (1 to %d)",
                                         ORACLE_PAGE_MAX);
                        return -EINVAL;
                }
                *ret_limit = 0;
                *ret_after = NULL;
                return 0;
        }
        int64_t n = 0;
        if (parse_int64(limit, 1, ORACLE_PAGE_MAX, &n) < 0) {
                http_reply_error(reply, 400, "out_of_range", "limit must be an integer from 1 to %d", ORACLE_PAGE_MAX);
                return -ERANGE;
        }
        if (after && *after && !name_is_valid(after)) {
                http_reply_error(reply, 400, "invalid",
                                 "after must be a name (1-63 of a-z, 0-9 and -): the last one of the previous page");
                return -EINVAL;
        }
        *ret_limit = (size_t)n;
        *ret_after = after ? after : "";
        return 1;
}

/* name into the set names (n of them, at most max) unless it is there or empty. */
static void name_add(char (*names)[64], size_t *n, size_t max, const char *name) {
        if (!*name || *n >= max)
                return;
        for (size_t i = 0; i < *n; i++)
                if (streq(names[i], name))
                        return;
        snprintf(names[(*n)++], sizeof names[0], "%s", name);
}

/* The RM records that deciding visibility and actions for vms needs: a provider's VMs' RMs,
 * market machines' offers. Each read by its key: a page never reads the whole RM table. */
static void page_rms(oracle_t *o, const auth_principal_t *p, const vm_record_t *vms, size_t n, rm_record_t **ret,
                     size_t *ret_n) {
        size_t max = 2 * n, nn = 0;
        char(*names)[64] = xcalloc(max ? max : 1, sizeof *names);
        bool provider = p && p->role == ROLE_PROVIDER;
        for (size_t i = 0; i < n; i++) {
                if (provider)
                        name_add(names, &nn, max, vms[i].rm);
                if (vms[i].market.machine)
                        name_add(names, &nn, max, vms[i].market.offer);
        }
        rm_record_t *rms = xcalloc(nn ? nn : 1, sizeof *rms);
        size_t nr = 0;
        for (size_t i = 0; i < nn; i++)
                if (store_rm_get(o->store, names[i], &rms[nr]) == 0)
                        nr++;
        free(names);
        *ret = rms;
        *ret_n = nr;
}

void oracle_vms_page(const http_request_t *req, http_reply_t *reply, size_t limit, const char *after) {
        oracle_t *o = req->userdata;
        json_t *arr = json_array();
        char cursor[64];
        snprintf(cursor, sizeof cursor, "%s", after);
        for (;;) {
                size_t want = page_want(limit, json_array_size(arr)), n = 0, nr = 0;
                vm_record_t *vms = NULL;
                rm_record_t *rms = NULL;
                if (store_vm_page(o->store, cursor, want, &vms, &n) < 0) {
                        json_decref(arr);
                        http_reply_errno(reply, -EIO, "the store is unavailable");
                        return;
                }
                page_rms(o, req->principal, vms, n, &rms, &nr);
                for (size_t i = 0; i < n && !page_full(limit, json_array_size(arr)); i++)
                        if (oracle_vm_visible_among(req->principal, &vms[i], rms, nr, false))
                                json_array_append_new(arr, oracle_vm_json_among(req->principal, &vms[i], rms, nr));
                if (n > 0)
                        snprintf(cursor, sizeof cursor, "%s", vms[n - 1].name);
                free(rms);
                store_vm_list_free(vms, n);
                if (n < want || page_full(limit, json_array_size(arr)))
                        break;
        }
        http_reply_json(reply, 200, arr);
}

json_t *oracle_rm_json(oracle_t *o, const rm_record_t *rm, int64_t vms, int64_t now) {
        int64_t silent = oracle_liveness_silent_ms(o->liveness, rm->name, now);
        int64_t gap = oracle_liveness_gap_max_ms(o->liveness, rm->name);
        json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:I,s:f,s:f,s:f,s:s?}", "name", rm->name, "role", rm->role, "state",
                              rm->state, "address", rm->address, "vms", (json_int_t)vms, "last_seen",
                              (double)oracle_rm_last_seen_ms(o, rm) / 1000.0, "silent_s", (double)silent / 1000.0,
                              "heartbeat_gap_max_s", (double)gap / 1000.0, "provider",
                              *rm->provider ? rm->provider : NULL);
        oracle_rm_view_add(o, rm->name, j);
        return j;
}

void oracle_rms_page(const http_request_t *req, http_reply_t *reply, size_t limit, const char *after) {
        oracle_t *o = req->userdata;
        json_t *arr = json_array();
        char cursor[64];
        snprintf(cursor, sizeof cursor, "%s", after);
        int64_t now = time_now_ms();
        for (;;) {
                size_t want = page_want(limit, json_array_size(arr)), n = 0, nc = 0;
                rm_record_t *rms = NULL;
                store_rm_count_t *counts = NULL;
                int r = store_rm_page(o->store, cursor, want, &rms, &n);
                /* the VMs on this page's RMs, counted in one pass */
                if (r >= 0 && n > 0)
                        r = store_vm_count_on_range(o->store, cursor, rms[n - 1].name, &counts, &nc);
                if (r < 0) {
                        free(rms);
                        json_decref(arr);
                        http_reply_errno(reply, -EIO, "the store is unavailable");
                        return;
                }
                size_t k = 0; /* counts and rms are both by name */
                for (size_t i = 0; i < n && !page_full(limit, json_array_size(arr)); i++) {
                        while (k < nc && strcmp(counts[k].rm, rms[i].name) < 0)
                                k++;
                        if (!oracle_rm_visible(req->principal, &rms[i]))
                                continue;
                        int64_t vms = k < nc && streq(counts[k].rm, rms[i].name) ? counts[k].vms : 0;
                        json_array_append_new(arr, oracle_rm_json(o, &rms[i], vms, now));
                }
                if (n > 0)
                        snprintf(cursor, sizeof cursor, "%s", rms[n - 1].name);
                free(rms);
                free(counts);
                if (n < want || page_full(limit, json_array_size(arr)))
                        break;
        }
        http_reply_json(reply, 200, arr);
}
