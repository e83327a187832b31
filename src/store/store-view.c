/* The store view (store-view.h): tables of fixed-size rows, each keyed by the string at its
 * start, with an open-addressing hash of row indices; a VM row also sits in a doubly linked
 * chain of the VMs on its RM, so that an RM's VMs are found in O(its VMs). A snapshot is a
 * memcpy of the rows and the hashes (indices stay valid), plus the RMs sorted by name.
 *
 * Changes come from store-sqlite.c's writers with the store lock held: outside a transaction
 * they apply at once (the statement has committed), inside one they queue until
 * store_tx_commit's COMMIT succeeded; a rollback or a failed COMMIT drops the queue. */
#include "store/store-view.h"
#include "store/store-internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

/* ---- a table of rows keyed by the string at their start ---- */

typedef struct vtab {
        char *rows;
        size_t n, cap, size;
        uint32_t *slots;        /* row index + 1, 0 when empty; nslots a power of two */
        size_t nslots;
} vtab_t;

static inline void *vtab_row(const vtab_t *t, size_t i) { return t->rows + i * t->size; }

static size_t vtab_slot(const vtab_t *t, const char *key) {
        size_t mask = t->nslots - 1;
        for (size_t i = str_fnv1a32(key) & mask;; i = (i + 1) & mask)
                if (!t->slots[i] || streq(vtab_row(t, t->slots[i] - 1), key))
                        return i;
}

static void *vtab_get(const vtab_t *t, const char *key) {
        if (!t->nslots)
                return NULL;
        size_t i = vtab_slot(t, key);
        return t->slots[i] ? vtab_row(t, t->slots[i] - 1) : NULL;
}

static size_t vtab_index(const vtab_t *t, const void *row) { return (size_t)((const char *)row - t->rows) / t->size; }

static void vtab_rehash(vtab_t *t, size_t nslots) {
        free(t->slots);
        t->slots = xcalloc(nslots, sizeof *t->slots);
        t->nslots = nslots;
        for (size_t r = 0; r < t->n; r++)
                t->slots[vtab_slot(t, vtab_row(t, r))] = (uint32_t)(r + 1);
}

/* The row of key, made (zeroed, key set) when absent; *ret_new says which. */
static void *vtab_put(vtab_t *t, const char *key, size_t key_size, bool *ret_new) {
        if ((t->n + 1) * 2 > t->nslots)
                vtab_rehash(t, t->nslots ? t->nslots * 2 : 64);
        size_t i = vtab_slot(t, key);
        *ret_new = !t->slots[i];
        if (t->slots[i])
                return vtab_row(t, t->slots[i] - 1);
        if (t->n == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 64;
                t->rows = realloc(t->rows, t->cap * t->size);
                if (!t->rows)
                        abort();
        }
        char *row = vtab_row(t, t->n);
        memset(row, 0, t->size);
        set_str(row, key_size, key);
        t->slots[i] = (uint32_t)(++t->n);
        return row;
}

/* Removes the row of key: its slot by backward shift (no tombstones), its place in the rows
 * by moving the last row there. The caller fixes what pointed at the last row first. */
static void vtab_del(vtab_t *t, const char *key) {
        if (!t->nslots)
                return;
        size_t mask = t->nslots - 1, i = vtab_slot(t, key);
        if (!t->slots[i])
                return;
        size_t idx = t->slots[i] - 1;
        t->slots[i] = 0;
        for (size_t j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
                size_t home = str_fnv1a32(vtab_row(t, t->slots[j] - 1)) & mask;
                /* the entry at j may move to the hole at i unless its home lies in (i, j] */
                bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
                if (stays)
                        continue;
                t->slots[i] = t->slots[j];
                t->slots[j] = 0;
                i = j;
        }
        size_t last = t->n - 1;
        if (idx != last) {
                t->slots[vtab_slot(t, vtab_row(t, last))] = (uint32_t)(idx + 1);
                memcpy(vtab_row(t, idx), vtab_row(t, last), t->size);
        }
        t->n--;
}

/* dst becomes a copy of src, reusing dst's memory where it is big enough (a recycled
 * snapshot's pages are already mapped: a copy into them costs no page faults). */
static void vtab_copy(vtab_t *dst, const vtab_t *src) {
        if (dst->cap < src->n) {
                free(dst->rows);
                dst->rows = malloc(src->n * src->size);
                dst->cap = src->n;
        }
        if (dst->nslots != src->nslots) {
                free(dst->slots);
                dst->slots = src->nslots ? malloc(src->nslots * sizeof *src->slots) : NULL;
        }
        if ((src->n && !dst->rows) || (src->nslots && !dst->slots))
                abort();
        dst->n = src->n;
        dst->size = src->size;
        dst->nslots = src->nslots;
        if (src->n)
                memcpy(dst->rows, src->rows, src->n * src->size);
        if (src->nslots)
                memcpy(dst->slots, src->slots, src->nslots * sizeof *src->slots);
}

static void vtab_clear(vtab_t *t) {
        free(t->rows);
        free(t->slots);
        *t = (vtab_t){ .size = t->size };
}

/* ---- the view's data: VMs chained per RM ---- */

typedef struct vm_row {
        store_view_vm_t vm;     /* first: the key */
        uint32_t prev, next;    /* the chain of VMs on vm.rm, row index + 1 */
} vm_row_t;

typedef struct chain_row {
        char rm[64];
        uint32_t head, count;
} chain_row_t;

typedef struct view_data {
        vtab_t vms, rms, ops, chains;
} view_data_t;

static void data_init(view_data_t *d) {
        *d = (view_data_t){ .vms.size = sizeof(vm_row_t), .rms.size = sizeof(rm_record_t),
                            .ops.size = sizeof(store_view_op_t), .chains.size = sizeof(chain_row_t) };
}

static void data_clear(view_data_t *d) {
        vtab_clear(&d->vms);
        vtab_clear(&d->rms);
        vtab_clear(&d->ops);
        vtab_clear(&d->chains);
}

static vm_row_t *vm_at(const view_data_t *d, uint32_t ref) { return ref ? vtab_row(&d->vms, ref - 1) : NULL; }

static void chain_link(view_data_t *d, vm_row_t *row) {
        bool made;
        chain_row_t *c = vtab_put(&d->chains, row->vm.rm, sizeof c->rm, &made);
        uint32_t ref = (uint32_t)vtab_index(&d->vms, row) + 1;
        row->prev = 0;
        row->next = c->head;
        if (c->head)
                vm_at(d, c->head)->prev = ref;
        c->head = ref;
        c->count++;
}

static void chain_unlink(view_data_t *d, vm_row_t *row) {
        chain_row_t *c = vtab_get(&d->chains, row->vm.rm);
        if (!c)
                abort(); /* a VM row is always in its RM's chain */
        if (row->prev)
                vm_at(d, row->prev)->next = row->next;
        else
                c->head = row->next;
        if (row->next)
                vm_at(d, row->next)->prev = row->prev;
        row->prev = row->next = 0;
        if (--c->count == 0)
                vtab_del(&d->chains, row->vm.rm);
}

static void data_vm_put(view_data_t *d, const store_view_vm_t *v) {
        bool made;
        vm_row_t *row = vtab_put(&d->vms, v->name, sizeof v->name, &made);
        if (made) {
                row->vm = *v;
                chain_link(d, row);
        } else if (!streq(row->vm.rm, v->rm)) {
                chain_unlink(d, row);
                row->vm = *v;
                chain_link(d, row);
        } else {
                row->vm = *v;
        }
}

static void data_vm_del(view_data_t *d, const char *name) {
        vm_row_t *row = vtab_get(&d->vms, name);
        if (!row)
                return;
        chain_unlink(d, row);
        size_t idx = vtab_index(&d->vms, row), last = d->vms.n - 1;
        if (idx != last) {
                /* the last row moves to idx: what points at it is pointed at idx */
                vm_row_t *moved = vtab_row(&d->vms, last);
                uint32_t to = (uint32_t)idx + 1;
                if (moved->prev)
                        vm_at(d, moved->prev)->next = to;
                else
                        ((chain_row_t *)vtab_get(&d->chains, moved->vm.rm))->head = to;
                if (moved->next)
                        vm_at(d, moved->next)->prev = to;
        }
        vtab_del(&d->vms, name);
}

/* ---- changes ---- */

typedef enum change_kind {
        CHANGE_VM,
        CHANGE_VM_DELETE,
        CHANGE_RM,
        CHANGE_RM_PROVIDER,
        CHANGE_RM_SEEN,
        CHANGE_OP,
        CHANGE_OP_END
} change_kind_t;

typedef struct change {
        change_kind_t kind;
        union {
                store_view_vm_t vm;
                rm_record_t rm;
                store_view_op_t op;
                char name[64];
        };
} change_t;

struct store_view_snap {
        atomic_int refs;
        uint64_t gen;
        view_data_t d;
        uint32_t *rm_order;     /* row indices of the RMs, by name */
};

struct store_view {
        pthread_rwlock_t lock;  /* live and gen */
        view_data_t live;
        uint64_t gen;
        change_t *pending;      /* queued by an open transaction; under the store lock */
        size_t n_pending;
        pthread_mutex_t snap_lock;
        store_view_snap_t *published;
};

static store_view_t *store_view_new(void) {
        store_view_t *v = xcalloc(1, sizeof *v);
        /* writers first: a change is applied with the store lock held, so a writer starved by
         * a stream of heartbeats' reads would hold up every writer of the store (no reader
         * takes the read lock twice, which this kind would deadlock) */
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&v->lock, &attr);
        pthread_rwlockattr_destroy(&attr);
        pthread_mutex_init(&v->snap_lock, NULL);
        data_init(&v->live);
        return v;
}

store_view_t *store_view_free(store_view_t *v) {
        if (!v)
                return NULL;
        store_view_release(v->published);
        data_clear(&v->live);
        free(v->pending);
        pthread_rwlock_destroy(&v->lock);
        pthread_mutex_destroy(&v->snap_lock);
        free(v);
        return NULL;
}

static void change_apply(view_data_t *d, const change_t *c) {
        bool made;
        switch (c->kind) {
        case CHANGE_VM:
                data_vm_put(d, &c->vm);
                break;
        case CHANGE_VM_DELETE:
                data_vm_del(d, c->name);
                break;
        case CHANGE_RM: {
                /* as the upsert: a new RM has no provider, a known one keeps its own */
                rm_record_t *r = vtab_put(&d->rms, c->rm.name, sizeof c->rm.name, &made);
                char provider[sizeof r->provider];
                SET(provider, made ? "" : r->provider);
                *r = c->rm;
                SET(r->provider, provider);
                break;
        }
        case CHANGE_RM_PROVIDER: {
                rm_record_t *r = vtab_get(&d->rms, c->rm.name);
                if (r)
                        SET(r->provider, c->rm.provider);
                break;
        }
        case CHANGE_RM_SEEN: {
                rm_record_t *r = vtab_get(&d->rms, c->rm.name);
                if (r && r->last_seen_ms < c->rm.last_seen_ms)
                        r->last_seen_ms = c->rm.last_seen_ms;
                break;
        }
        case CHANGE_OP:
                *(store_view_op_t *)vtab_put(&d->ops, c->op.id, sizeof c->op.id, &made) = c->op;
                break;
        case CHANGE_OP_END:
                vtab_del(&d->ops, c->name);
                break;
        }
}

static void changes_apply(store_view_t *v, const change_t *c, size_t n) {
        if (!n)
                return;
        pthread_rwlock_wrlock(&v->lock);
        for (size_t i = 0; i < n; i++)
                change_apply(&v->live, &c[i]);
        v->gen++;
        pthread_rwlock_unlock(&v->lock);
}

/* A committed change applies now; one inside a transaction waits for its COMMIT. */
static void change_note(store_t *s, const change_t *c) {
        store_view_t *v = s->view;
        if (!v)
                return; /* store_open's load comes first */
        if (s->tx_depth == 0) {
                changes_apply(v, c, 1);
                return;
        }
        *(change_t *)array_append(&v->pending, &v->n_pending, sizeof *v->pending) = *c;
}

void store_view_commit(store_t *s) {
        store_view_t *v = s->view;
        if (!v)
                return;
        changes_apply(v, v->pending, v->n_pending);
        store_view_abort(s);
}

void store_view_abort(store_t *s) {
        store_view_t *v = s->view;
        if (!v)
                return;
        free(v->pending);
        v->pending = NULL;
        v->n_pending = 0;
}

void store_view_vm_from_record(const vm_record_t *r, store_view_vm_t *ret) {
        store_view_vm_t v = { 0 };
        SET(v.name, r->name);
        SET(v.state, r->state);
        SET(v.rm, r->rm);
        SET(v.image, r->image);
        SET(v.service, r->service);
        SET(v.address, r->address);
        SET(v.op_id, r->op_id);
        v.prebooted = r->prebooted;
        v.market = r->market.machine > 0;
        v.version = r->version;
        v.vcpus = r->vcpus;
        v.memory_mib = r->memory_mib;
        v.nest_version = r->nest_version;
        const json_t *files = json_object_get(r->bundle, "files");
        const char *file;
        const json_t *info;
        json_object_foreach((json_t *)files, file, info) {
                json_int_t size = json_integer_value(json_object_get(info, "size"));
                if (size > 0)
                        v.bundle_bytes += (uint64_t)size;
                if (streq(file, "memory"))
                        SET(v.mem_digest, json_string_value(json_object_get(info, "digest")));
        }
        *ret = v;
}

void store_view_note_vm(store_t *s, const vm_record_t *r) {
        change_t c = { .kind = CHANGE_VM };
        store_view_vm_from_record(r, &c.vm);
        change_note(s, &c);
}

void store_view_note_vm_delete(store_t *s, const char *name) {
        change_t c = { .kind = CHANGE_VM_DELETE };
        SET(c.name, name);
        change_note(s, &c);
}

void store_view_note_rm(store_t *s, const rm_record_t *rm) {
        change_t c = { .kind = CHANGE_RM, .rm = *rm };
        change_note(s, &c);
}

void store_view_note_rm_provider(store_t *s, const char *rm, const char *provider) {
        change_t c = { .kind = CHANGE_RM_PROVIDER };
        SET(c.rm.name, rm);
        SET(c.rm.provider, provider);
        change_note(s, &c);
}

void store_view_note_rm_seen(store_t *s, const char *rm, int64_t last_seen_ms) {
        change_t c = { .kind = CHANGE_RM_SEEN };
        SET(c.rm.name, rm);
        c.rm.last_seen_ms = last_seen_ms;
        change_note(s, &c);
}

static void op_compact(const op_record_t *o, store_view_op_t *ret) {
        store_view_op_t op = { 0 };
        SET(op.id, o->id);
        SET(op.vm, o->vm);
        SET(op.kind, o->kind);
        SET(op.origin, json_string_value(json_object_get(o->args, "origin")));
        SET(op.target, json_string_value(json_object_get(o->args, "rm")));
        *ret = op;
}

void store_view_note_op(store_t *s, const op_record_t *o) {
        change_t c = { .kind = streq(o->state, "running") ? CHANGE_OP : CHANGE_OP_END };
        if (c.kind == CHANGE_OP)
                op_compact(o, &c.op);
        else
                SET(c.name, o->id);
        change_note(s, &c);
}

void store_view_load_rows(store_t *s, const vm_record_t *vms, size_t nv, const rm_record_t *rms, size_t nr,
                         const op_record_t *ops, size_t no) {
        store_view_t *v = store_view_new();
        bool made;
        for (size_t i = 0; i < nv; i++) {
                store_view_vm_t c;
                store_view_vm_from_record(&vms[i], &c);
                data_vm_put(&v->live, &c);
        }
        for (size_t i = 0; i < nr; i++)
                *(rm_record_t *)vtab_put(&v->live.rms, rms[i].name, sizeof rms[i].name, &made) = rms[i];
        for (size_t i = 0; i < no; i++)
                op_compact(&ops[i], vtab_put(&v->live.ops, ops[i].id, sizeof ops[i].id, &made));
        v->gen = 1;
        s->view = v;
}

/* ---- the live view ---- */

int store_view_rm_get(store_t *s, const char *rm, rm_record_t *ret) {
        store_view_t *v = s->view;
        pthread_rwlock_rdlock(&v->lock);
        const rm_record_t *r = vtab_get(&v->live.rms, rm);
        if (r)
                *ret = *r;
        pthread_rwlock_unlock(&v->lock);
        return r ? 0 : -ENOENT;
}

int store_view_vm_get(store_t *s, const char *vm, store_view_vm_t *ret) {
        store_view_t *v = s->view;
        pthread_rwlock_rdlock(&v->lock);
        const vm_row_t *r = vtab_get(&v->live.vms, vm);
        if (r)
                *ret = r->vm;
        pthread_rwlock_unlock(&v->lock);
        return r ? 0 : -ENOENT;
}

static int view_vm_cmp(const void *a, const void *b) {
        return strcmp(((const store_view_vm_t *)a)->name, ((const store_view_vm_t *)b)->name);
}

void store_view_vms_on(store_t *s, const char *rm, store_view_vm_t **ret, size_t *ret_n) {
        store_view_t *v = s->view;
        store_view_vm_t *list = NULL;
        size_t n = 0;
        pthread_rwlock_rdlock(&v->lock);
        const chain_row_t *c = vtab_get(&v->live.chains, rm);
        if (c) {
                list = xcalloc(c->count, sizeof *list);
                for (const vm_row_t *r = vm_at(&v->live, c->head); r; r = vm_at(&v->live, r->next))
                        list[n++] = r->vm;
        }
        pthread_rwlock_unlock(&v->lock);
        if (n > 1)
                qsort(list, n, sizeof *list, view_vm_cmp);
        *ret = list;
        *ret_n = n;
}

size_t store_view_count_on(store_t *s, const char *rm) {
        store_view_t *v = s->view;
        pthread_rwlock_rdlock(&v->lock);
        const chain_row_t *c = vtab_get(&v->live.chains, rm);
        size_t n = c ? c->count : 0;
        pthread_rwlock_unlock(&v->lock);
        return n;
}

static int rm_name_cmp(const void *a, const void *b) {
        return strcmp(((const rm_record_t *)a)->name, ((const rm_record_t *)b)->name);
}

void store_view_rms(store_t *s, rm_record_t **ret, size_t *ret_n) {
        store_view_t *v = s->view;
        pthread_rwlock_rdlock(&v->lock);
        size_t n = v->live.rms.n;
        rm_record_t *list = n ? xcalloc(n, sizeof *list) : NULL;
        if (n)
                memcpy(list, v->live.rms.rows, n * sizeof *list);
        pthread_rwlock_unlock(&v->lock);
        if (n > 1)
                qsort(list, n, sizeof *list, rm_name_cmp);
        *ret = list;
        *ret_n = n;
}

void store_view_ops_touching(store_t *s, const char *rm, store_view_op_t **ret, size_t *ret_n) {
        store_view_t *v = s->view;
        store_view_op_t *list = NULL;
        size_t n = 0;
        pthread_rwlock_rdlock(&v->lock);
        for (size_t i = 0; i < v->live.ops.n; i++) {
                const store_view_op_t *op = vtab_row(&v->live.ops, i);
                if (streq(op->origin, rm) || streq(op->target, rm))
                        *(store_view_op_t *)array_append(&list, &n, sizeof *list) = *op;
        }
        pthread_rwlock_unlock(&v->lock);
        *ret = list;
        *ret_n = n;
}

uint64_t store_view_gen(store_t *s) {
        store_view_t *v = s->view;
        pthread_rwlock_rdlock(&v->lock);
        uint64_t g = v->gen;
        pthread_rwlock_unlock(&v->lock);
        return g;
}

/* ---- snapshots ---- */

static int rm_order_cmp(const void *a, const void *b, void *data) {
        const vtab_t *rms = data;
        return strcmp(((const rm_record_t *)vtab_row(rms, *(const uint32_t *)a))->name,
                      ((const rm_record_t *)vtab_row(rms, *(const uint32_t *)b))->name);
}

/* snap (new, or recycled: no reader holds it) becomes a copy of d at gen. */
static void snap_fill(store_view_snap_t *snap, const view_data_t *d, uint64_t gen) {
        snap->gen = gen;
        vtab_copy(&snap->d.vms, &d->vms);
        vtab_copy(&snap->d.rms, &d->rms);
        vtab_copy(&snap->d.ops, &d->ops);
        vtab_copy(&snap->d.chains, &d->chains);
        free(snap->rm_order);
        snap->rm_order = xcalloc(d->rms.n + 1, sizeof *snap->rm_order);
        for (size_t i = 0; i < d->rms.n; i++)
                snap->rm_order[i] = (uint32_t)i;
        qsort_r(snap->rm_order, d->rms.n, sizeof *snap->rm_order, rm_order_cmp, &snap->d.rms);
}

static store_view_snap_t *snap_of(const view_data_t *d, uint64_t gen) {
        store_view_snap_t *snap = xcalloc(1, sizeof *snap);
        atomic_init(&snap->refs, 1);
        snap_fill(snap, d, gen);
        return snap;
}

store_view_snap_t *store_view_snapshot(store_t *s) {
        store_view_t *v = s->view;
        pthread_mutex_lock(&v->snap_lock);
        pthread_rwlock_rdlock(&v->lock);
        if (v->published && v->published->gen != v->gen && atomic_load(&v->published->refs) == 1) {
                /* only the view holds the old one, and no reader can take it without snap_lock:
                 * it is copied over in place */
                snap_fill(v->published, &v->live, v->gen);
        } else if (!v->published || v->published->gen != v->gen) {
                store_view_snap_t *snap = snap_of(&v->live, v->gen);
                store_view_release(v->published);
                v->published = snap;
        }
        pthread_rwlock_unlock(&v->lock);
        store_view_snap_t *snap = v->published;
        atomic_fetch_add(&snap->refs, 1);
        pthread_mutex_unlock(&v->snap_lock);
        return snap;
}

void store_view_release(store_view_snap_t *snap) {
        if (!snap || atomic_fetch_sub(&snap->refs, 1) != 1)
                return;
        data_clear(&snap->d);
        free(snap->rm_order);
        free(snap);
}

store_view_snap_t *store_view_snap_build(const store_view_vm_t *vms, size_t nv, const rm_record_t *rms, size_t nr) {
        view_data_t d;
        data_init(&d);
        bool made;
        for (size_t i = 0; i < nv; i++)
                data_vm_put(&d, &vms[i]);
        for (size_t i = 0; i < nr; i++)
                *(rm_record_t *)vtab_put(&d.rms, rms[i].name, sizeof rms[i].name, &made) = rms[i];
        store_view_snap_t *snap = snap_of(&d, 1);
        data_clear(&d);
        return snap;
}

uint64_t store_view_snap_gen(const store_view_snap_t *snap) { return snap->gen; }
size_t store_view_snap_nvms(const store_view_snap_t *snap) { return snap->d.vms.n; }

const store_view_vm_t *store_view_snap_vm_at(const store_view_snap_t *snap, size_t i) {
        return i < snap->d.vms.n ? &((const vm_row_t *)vtab_row(&snap->d.vms, i))->vm : NULL;
}

const store_view_vm_t *store_view_snap_vm(const store_view_snap_t *snap, const char *name) {
        const vm_row_t *r = vtab_get(&snap->d.vms, name);
        return r ? &r->vm : NULL;
}

size_t store_view_snap_nrms(const store_view_snap_t *snap) { return snap->d.rms.n; }

const rm_record_t *store_view_snap_rm_at(const store_view_snap_t *snap, size_t i) {
        return i < snap->d.rms.n ? vtab_row(&snap->d.rms, snap->rm_order[i]) : NULL;
}

const rm_record_t *store_view_snap_rm(const store_view_snap_t *snap, const char *name) {
        return vtab_get(&snap->d.rms, name);
}

size_t store_view_snap_count_on(const store_view_snap_t *snap, const char *rm) {
        const chain_row_t *c = vtab_get(&snap->d.chains, rm);
        return c ? c->count : 0;
}

const store_view_vm_t *store_view_snap_first_on(const store_view_snap_t *snap, const char *rm) {
        const chain_row_t *c = vtab_get(&snap->d.chains, rm);
        const vm_row_t *r = c ? vm_at(&snap->d, c->head) : NULL;
        return r ? &r->vm : NULL;
}

const store_view_vm_t *store_view_snap_next_on(const store_view_snap_t *snap, const store_view_vm_t *vm) {
        const vm_row_t *r = vm_at(&snap->d, ((const vm_row_t *)vm)->next);
        return r ? &r->vm : NULL;
}

size_t store_view_snap_nops(const store_view_snap_t *snap) { return snap->d.ops.n; }

const store_view_op_t *store_view_snap_op_at(const store_view_snap_t *snap, size_t i) {
        return i < snap->d.ops.n ? vtab_row(&snap->d.ops, i) : NULL;
}

/* ---- check ---- */

#define DIFF_STR(a, b, what, name)                                                                                     \
        if (!streq((a), (b)))                                                                                          \
                return xasprintf("%s \"%s\": %s is \"%s\" in the view, \"%s\" in the store", what, name, #a, (a), (b))
#define DIFF_INT(a, b, what, name)                                                                                     \
        if ((int64_t)(a) != (int64_t)(b))                                                                              \
                return xasprintf("%s \"%s\": %s is %lld in the view, %lld in the store", what, name, #a, (long long)(a), \
                                 (long long)(b))

static char *vm_diff(const store_view_vm_t *v, const store_view_vm_t *t) {
        DIFF_STR(v->state, t->state, "vm", t->name);
        DIFF_STR(v->rm, t->rm, "vm", t->name);
        DIFF_STR(v->image, t->image, "vm", t->name);
        DIFF_STR(v->service, t->service, "vm", t->name);
        DIFF_STR(v->address, t->address, "vm", t->name);
        DIFF_STR(v->op_id, t->op_id, "vm", t->name);
        DIFF_STR(v->mem_digest, t->mem_digest, "vm", t->name);
        DIFF_INT(v->prebooted, t->prebooted, "vm", t->name);
        DIFF_INT(v->market, t->market, "vm", t->name);
        DIFF_INT(v->version, t->version, "vm", t->name);
        DIFF_INT(v->vcpus, t->vcpus, "vm", t->name);
        DIFF_INT(v->memory_mib, t->memory_mib, "vm", t->name);
        DIFF_INT(v->nest_version, t->nest_version, "vm", t->name);
        DIFF_INT(v->bundle_bytes, t->bundle_bytes, "vm", t->name);
        return NULL;
}

static char *rm_diff(const rm_record_t *v, const rm_record_t *t) {
        DIFF_STR(v->role, t->role, "rm", t->name);
        DIFF_STR(v->address, t->address, "rm", t->name);
        DIFF_STR(v->state, t->state, "rm", t->name);
        DIFF_STR(v->provider, t->provider, "rm", t->name);
        DIFF_INT(v->last_seen_ms, t->last_seen_ms, "rm", t->name);
        return NULL;
}

static char *op_diff(const store_view_op_t *v, const store_view_op_t *t) {
        DIFF_STR(v->vm, t->vm, "op", t->id);
        DIFF_STR(v->kind, t->kind, "op", t->id);
        DIFF_STR(v->origin, t->origin, "op", t->id);
        DIFF_STR(v->target, t->target, "op", t->id);
        return NULL;
}

/* The chains: every VM in its RM's chain exactly once, the counts right. */
static char *chains_diff(const view_data_t *d) {
        size_t total = 0;
        for (size_t i = 0; i < d->chains.n; i++) {
                const chain_row_t *c = vtab_row(&d->chains, i);
                size_t n = 0;
                uint32_t prev = 0;
                for (uint32_t ref = c->head; ref; ref = vm_at(d, ref)->next) {
                        const vm_row_t *r = vm_at(d, ref);
                        if (!streq(r->vm.rm, c->rm) || r->prev != prev || ++n > d->vms.n)
                                return xasprintf("the chain of rm \"%s\" is broken at vm \"%s\"", c->rm, r->vm.name);
                        prev = ref;
                }
                if (n != c->count)
                        return xasprintf("rm \"%s\" holds %zu VMs in its chain, counted %u", c->rm, n, c->count);
                total += n;
        }
        if (total != d->vms.n)
                return xasprintf("the chains hold %zu VMs, the view %zu", total, d->vms.n);
        return NULL;
}

static char *view_diff(const view_data_t *d, const vm_record_t *vms, size_t nv, const rm_record_t *rms, size_t nr,
                       const op_record_t *ops, size_t no) {
        if (nv != d->vms.n)
                return xasprintf("the view holds %zu VMs, the store %zu", d->vms.n, nv);
        if (nr != d->rms.n)
                return xasprintf("the view holds %zu RMs, the store %zu", d->rms.n, nr);
        if (no != d->ops.n)
                return xasprintf("the view holds %zu running ops, the store %zu", d->ops.n, no);
        char *diff = NULL;
        for (size_t i = 0; !diff && i < nv; i++) {
                store_view_vm_t t;
                store_view_vm_from_record(&vms[i], &t);
                const vm_row_t *r = vtab_get(&d->vms, t.name);
                diff = r ? vm_diff(&r->vm, &t) : xasprintf("vm \"%s\" is missing from the view", t.name);
        }
        for (size_t i = 0; !diff && i < nr; i++) {
                const rm_record_t *r = vtab_get(&d->rms, rms[i].name);
                diff = r ? rm_diff(r, &rms[i]) : xasprintf("rm \"%s\" is missing from the view", rms[i].name);
        }
        for (size_t i = 0; !diff && i < no; i++) {
                store_view_op_t t;
                op_compact(&ops[i], &t);
                const store_view_op_t *r = vtab_get(&d->ops, t.id);
                diff = r ? op_diff(r, &t) : xasprintf("op \"%s\" is missing from the view", t.id);
        }
        return diff ? diff : chains_diff(d);
}

char *store_view_diff_rows(store_t *s, const vm_record_t *vms, size_t nv, const rm_record_t *rms, size_t nr,
                           const op_record_t *ops, size_t no) {
        pthread_rwlock_rdlock(&s->view->lock);
        char *diff = view_diff(&s->view->live, vms, nv, rms, nr, ops, no);
        pthread_rwlock_unlock(&s->view->lock);
        return diff;
}
