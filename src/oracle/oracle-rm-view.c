/* What an RM's heartbeats say of it that the store does not keep: how it isolates its guests
 * (guest_firewall, node-guestfw.h), whether it confines its QEMUs (confined and
 * confine_reason, node-confine.h; docs/confinement.md) and its size (capacity, node-capacity.h),
 * which the marketplace holds offers to (oracle_rm_capacity). In
 * memory only: every heartbeat says it again, so a restarted Oracle knows it within a second,
 * and the store's schema does not change for a fact the RM itself owns. GET /v1/rms (`rm
 * list`) shows it. */
#include "base/util.h"
#include "oracle/oracle-internal.h"

void oracle_rm_view_record(oracle_t *o, const char *rm, const oracle_heartbeat_t *hb) {
        /* a node that does not say (older than the field) is not known to firewall its guests */
        json_t *view = json_pack("{s:b,s:o,s:s?}", "guest_firewall", hb->guest_firewall == 1, "confined",
                                 hb->confined < 0 ? json_null() : json_boolean(hb->confined),
                                 "confine_reason", hb->confine_reason && *hb->confine_reason ? hb->confine_reason : NULL);
        /* a heartbeat that does not say its size (the node was downgraded) makes it unknown again */
        if (hb->has_capacity)
                json_object_set_new(view, "capacity",
                                    json_pack("{s:I,s:I,s:I}", "memory_mib", (json_int_t)hb->capacity.memory_mib,
                                              "vcpus", (json_int_t)hb->capacity.vcpus, "disk_gib",
                                              (json_int_t)hb->capacity.disk_gib));
        pthread_mutex_lock(&o->strays_lock);
        if (!o->rm_view)
                o->rm_view = json_object();
        json_t *old = json_incref(json_object_get(o->rm_view, rm));
        json_object_set_new(o->rm_view, rm, view);
        pthread_mutex_unlock(&o->strays_lock);
        json_decref(old); /* freed outside the lock: a free may wait for malloc's own lock */
}

void oracle_rm_view_add(oracle_t *o, const char *rm, json_t *rm_json) {
        pthread_mutex_lock(&o->strays_lock);
        const json_t *view = json_object_get(o->rm_view, rm);
        bool fw = json_is_true(json_object_get(view, "guest_firewall"));
        /* null until the RM has said (not heard since this Oracle started, or an older node) */
        json_t *confined = json_copy(json_object_get(view, "confined")) ?: json_null();
        json_t *reason = json_copy(json_object_get(view, "confine_reason")) ?: json_null();
        json_t *capacity = json_deep_copy(json_object_get(view, "capacity")) ?: json_null();
        pthread_mutex_unlock(&o->strays_lock);
        /* not heard since this Oracle started: not known to firewall (false, not absent: the
         * field is a bool for scripts) */
        json_object_set_new(rm_json, "guest_firewall", json_boolean(fw));
        json_object_set_new(rm_json, "confined", confined);
        json_object_set_new(rm_json, "confine_reason", reason);
        json_object_set_new(rm_json, "capacity", capacity);
}

/* The figures are as oracle_proto_heartbeat_parse checked them (memory_mib and vcpus from 1,
 * disk_gib from 0, none above ORACLE_CAPACITY_MAX). An RM not heard since this Oracle started,
 * or whose last heartbeat did not say, is -ENOENT; a down RM keeps what it said last. The ret_*
 * may be NULL and are set only on success. Takes strays_lock, so not to be called under it. */
int oracle_rm_capacity(oracle_t *o, const char *rm, int64_t *ret_memory_mib, int64_t *ret_vcpus,
                       int64_t *ret_disk_gib) {
        pthread_mutex_lock(&o->strays_lock);
        /* recorded only as oracle_proto_heartbeat_parse checked it: three integers in range */
        const json_t *capacity = rm ? json_object_get(json_object_get(o->rm_view, rm), "capacity") : NULL;
        int64_t memory = json_integer_value(json_object_get(capacity, "memory_mib"));
        int64_t vcpus = json_integer_value(json_object_get(capacity, "vcpus"));
        int64_t disk = json_integer_value(json_object_get(capacity, "disk_gib"));
        bool known = capacity != NULL;
        pthread_mutex_unlock(&o->strays_lock);
        if (!known)
                return -ENOENT;
        if (ret_memory_mib)
                *ret_memory_mib = memory;
        if (ret_vcpus)
                *ret_vcpus = vcpus;
        if (ret_disk_gib)
                *ret_disk_gib = disk;
        return 0;
}
