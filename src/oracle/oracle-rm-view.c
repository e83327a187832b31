/* What an RM's heartbeats say of it that the store does not keep: how it isolates its guests
 * (guest_firewall, node-guestfw.h; where confinement lands, `confined` belongs here too). In
 * memory only: every heartbeat says it again, so a restarted Oracle knows it within a second,
 * and the store's schema does not change for a fact the RM itself owns. GET /v1/rms (`rm
 * list`) shows it. */
#include "base/util.h"
#include "oracle/oracle-internal.h"

void oracle_rm_view_record(oracle_t *o, const char *rm, const oracle_heartbeat_t *hb) {
        /* a node that does not say (older than the field) is not known to firewall its guests */
        json_t *view = json_pack("{s:b}", "guest_firewall", hb->guest_firewall == 1);
        pthread_mutex_lock(&o->strays_lock);
        if (!o->rm_view)
                o->rm_view = json_object();
        json_object_set_new(o->rm_view, rm, view);
        pthread_mutex_unlock(&o->strays_lock);
}

void oracle_rm_view_add(oracle_t *o, const char *rm, json_t *rm_json) {
        pthread_mutex_lock(&o->strays_lock);
        const json_t *view = json_object_get(o->rm_view, rm);
        bool fw = json_is_true(json_object_get(view, "guest_firewall"));
        pthread_mutex_unlock(&o->strays_lock);
        /* not heard since this Oracle started: not known to firewall (false, not absent: the
         * field is a bool for scripts) */
        json_object_set_new(rm_json, "guest_firewall", json_boolean(fw));
}
