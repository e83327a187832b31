/* Placement by the paper's rule: one VM per production RM, many per chamber RM; an activation
 * goes where its memory snapshot already is. What heartbeats tell placement is kept here in
 * memory: the copies an RM runs without a lease (fenced, about to be killed: the RM is not free
 * yet) and the snapshots it holds. */
#include <string.h>

#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"
#include "store/store-view.h"

/* A heartbeat lists at most this many snapshots that count. */
#define PLACEMENT_MAX_SNAPSHOTS 4096

/* Remembers how many of the VMs rm reported hold no lease there: its node kills them on
 * this answer, and until it reports none the RM is not free for another VM. */
void oracle_placement_strays_record(oracle_t *o, const char *rm, const json_t *vms, const json_t *leases) {
        size_t i, n = 0;
        const json_t *v;
        json_array_foreach(vms, i, v) {
                const char *name = json_string_value(json_object_get(v, "name"));
                const char *state = json_string_value(json_object_get(v, "state"));
                /* only copies with a QEMU that still runs take the RM's CPU and memory */
                bool live = state && (streq(state, "running") || streq(state, "busy") || streq(state, "incoming") ||
                                      streq(state, "migrated"));
                if (name && live && !json_object_get(leases, name))
                        n++;
        }
        json_t *count = json_integer((json_int_t)n);
        pthread_mutex_lock(&o->strays_lock);
        if (!o->strays)
                o->strays = json_object();
        json_t *old = json_incref(json_object_get(o->strays, rm));
        json_object_set_new(o->strays, rm, count);
        pthread_mutex_unlock(&o->strays_lock);
        json_decref(old); /* freed outside the lock: at 10,000 RMs a free may wait for malloc's */
}

/* Remembers which memory snapshots rm holds (digests; anything else is ignored). */
void oracle_placement_snapshots_record(oracle_t *o, const char *rm, const json_t *list) {
        json_t *set = json_object();
        size_t i;
        const json_t *d;
        json_array_foreach(list, i, d) {
                if (i >= PLACEMENT_MAX_SNAPSHOTS)
                        break;
                if (bundle_sha256_is_valid(json_string_value(d)))
                        json_object_set_new(set, json_string_value(d), json_true());
        }
        pthread_mutex_lock(&o->strays_lock);
        if (!o->snapshots)
                o->snapshots = json_object();
        json_t *old = json_incref(json_object_get(o->snapshots, rm));
        json_object_set_new(o->snapshots, rm, set);
        pthread_mutex_unlock(&o->strays_lock);
        json_decref(old); /* outside the lock, as above */
}

/* Does rm hold the memory snapshot with this digest? */
static bool rm_holds_snapshot(oracle_t *o, const char *rm, const char *digest) {
        if (!digest)
                return false;
        pthread_mutex_lock(&o->strays_lock);
        bool held = json_object_get(json_object_get(o->snapshots, rm), digest) != NULL;
        pthread_mutex_unlock(&o->strays_lock);
        return held;
}

size_t oracle_rm_snapshots(oracle_t *o, const char *rm) {
        pthread_mutex_lock(&o->strays_lock);
        size_t n = json_object_size(json_object_get(o->snapshots, rm));
        pthread_mutex_unlock(&o->strays_lock);
        return n;
}

int oracle_rm_strays(oracle_t *o, const char *rm) {
        pthread_mutex_lock(&o->strays_lock);
        int n = (int)json_integer_value(json_object_get(o->strays, rm));
        pthread_mutex_unlock(&o->strays_lock);
        return n;
}

int oracle_rm_pick(oracle_t *o, const char *role, const char *wanted, const char *vm, char *ret, size_t size,
                   char **ret_msg) {
        /* from the view: O(RMs), each RM's load a count kept per RM. Called inside
         * oracle_op_start's transaction before it writes anything, so the committed view is what
         * the transaction sees, and no other writer commits meanwhile */
        _cleanup_free_ rm_record_t *rms = NULL;
        size_t nr = 0;
        store_view_rms(o->store, &rms, &nr);
        store_view_vm_t self = { 0 };
        bool found = store_view_vm_get(o->store, vm, &self) >= 0;
        bool production = streq(role, "production");
        int r = -EAGAIN;
        size_t best_load = SIZE_MAX;
        /* an activation goes where its memory snapshot already is, when such an RM is free;
         * suspended on a production RM: resuming there is fastest */
        bool suspended = found && streq(self.state, "suspended");
        const char *home = production && suspended ? self.rm : NULL;
        const char *digest = production && found && *self.mem_digest ? self.mem_digest : NULL;
        bool best_holds = false;
        size_t best_staged = SIZE_MAX;
        for (size_t i = 0; i < nr; i++) {
                rm_record_t *rm = &rms[i];
                if (wanted && !streq(rm->name, wanted))
                        continue;
                /* the VMs on it, but for vm itself when it is suspended there: activating it
                 * there resumes it */
                size_t load = store_view_count_on(o->store, rm->name);
                if (suspended && streq(self.rm, rm->name) && load > 0)
                        load--;
                if (wanted) {
                        if (!streq(rm->role, role))
                                *ret_msg = xasprintf("RM \"%s\" is a %s RM; %s needs a %s RM", wanted, rm->role, vm,
                                                     role);
                        else if (!streq(rm->state, "up"))
                                *ret_msg = xasprintf("RM \"%s\" is down", wanted);
                        else if (production && load > 0)
                                *ret_msg = xasprintf("production RM \"%s\" already runs a VM (one VM per production RM)",
                                                     wanted);
                        else {
                                set_str(ret, size, rm->name);
                                r = 0;
                        }
                        if (r < 0)
                                r = -EAGAIN;
                        break;
                }
                /* an RM handed to a provider hosts its buyers' machines, each placed there by name */
                if (*rm->provider)
                        continue;
                if (!streq(rm->role, role) || !streq(rm->state, "up") || (production && load > 0) ||
                    (production && oracle_rm_strays(o, rm->name) > 0))
                        continue;
                bool holds = production && ((home && streq(rm->name, home)) || rm_holds_snapshot(o, rm->name, digest));
                /* tie-break: the RM staged for the fewest other VMs (oracle-prestage.h) */
                size_t staged = production && !holds ? oracle_rm_snapshots(o, rm->name) : 0;
                if ((holds && !best_holds) ||
                    (holds == best_holds && (load < best_load || (load == best_load && staged < best_staged)))) {
                        best_load = load;
                        best_holds = holds;
                        best_staged = staged;
                        set_str(ret, size, rm->name);
                        r = 0;
                }
        }
        if (wanted && r < 0 && !*ret_msg) {
                *ret_msg = xasprintf("no RM named \"%s\"", wanted);
                r = -ENOENT;
        }
        if (!wanted && r < 0)
                *ret_msg = xasprintf("no %s RM is free for vm \"%s\"%s", role, vm,
                                     production ? " (each production RM runs one VM)" : "");
        return r;
}
