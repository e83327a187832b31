/* Services: the API that creates, lists, shows and deletes them. A service is a pool of VMs made
 * from one image (NAME-1 .. NAME-N), each booted once in a Loading Chamber and hibernated into
 * the Nest (the paper's "VM pre-creation"), behind one HAProxy frontend on the Oracle's host.
 *
 * Creating one is a single transaction (the service row in state "creating" and its stored
 * VMs); the pool thread (oracle-switch.c) then pre-boots them and marks the service "ready",
 * or "failed" with the reason after deleting what it made. So a killed Oracle leaves either
 * nothing or a service that the next one carries on with. */
#include <string.h>
#include <sys/statvfs.h>

#include "auth/roles.h"
#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"

#define SERVICE_POOL_MAX 1000
#define SERVICE_PORT_FIRST 8100
#define SERVICE_PORT_LAST 8999
/* What one pre-booted VM costs the Nest at most: its memory file, and disk, device state and
 * metadata, which for a fresh image stay well under this allowance. */
#define SERVICE_VM_DISK_ALLOWANCE (256ull << 20)

/* service show --json: DESIGN.md §4's fields (name, endpoint, active, pool, vms) and the rest. */
static json_t *service_json(oracle_t *o, const service_record_t *sv, const vm_record_t *vms, size_t n) {
        json_t *j = service_record_to_json(sv);
        json_t *list = json_array();
        int64_t active = 0, prebooted = 0, pool = 0;
        for (size_t i = 0; i < n; i++) {
                if (!streq(vms[i].service, sv->name))
                        continue;
                pool++;
                active += streq(vms[i].state, "active");
                prebooted += vms[i].prebooted || streq(vms[i].state, "active");
                json_array_append_new(list, json_pack("{s:s,s:s,s:s?,s:s?,s:b}", "name", vms[i].name, "state",
                                                      vms[i].state, "rm", *vms[i].rm ? vms[i].rm : NULL, "address",
                                                      *vms[i].address ? vms[i].address : NULL, "prebooted",
                                                      vms[i].prebooted));
        }
        _cleanup_free_ char *endpoint = oracle_service_endpoint(o->listen, sv->port);
        json_object_set_new(j, "endpoint", json_string(endpoint));
        json_object_set_new(j, "active", json_integer(active));
        json_object_set_new(j, "pool", json_integer(pool));
        json_object_set_new(j, "pool_size", json_integer(sv->pool));
        json_object_set_new(j, "prebooted", json_integer(prebooted));
        json_object_set_new(j, "vms", list);
        return j;
}

static void h_services(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        service_record_t *svs = NULL;
        vm_record_t *vms = NULL;
        size_t ns = 0, nv = 0;
        if (oracle_services_read(o, &svs, &ns, &vms, &nv) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < ns; i++)
                json_array_append_new(arr, service_json(o, &svs[i], vms, nv));
        free(svs);
        store_vm_list_free(vms, nv);
        http_reply_json(reply, 200, arr);
}

static void h_service_show(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        service_record_t sv = { 0 };
        vm_record_t *vms = NULL;
        size_t nv = 0;
        int r = store_service_get(o->store, req->params[0], &sv);
        if (r < 0) {
                http_reply_errno(reply, r, "no service named \"%s\"", req->params[0]);
                return;
        }
        if (store_vm_list(o->store, &vms, &nv) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        http_reply_json(reply, 200, service_json(o, &sv, vms, nv));
        store_vm_list_free(vms, nv);
}

/* A body number as a double in [min,max]; def when absent. */
static int body_double(const json_t *body, const char *key, double def, double min, double max, double *ret) {
        const json_t *v = json_object_get(body, key);
        if (!v || json_is_null(v)) {
                *ret = def;
                return 0;
        }
        if (!json_is_number(v))
                return -EINVAL;
        double x = json_number_value(v);
        if (!(x >= min && x <= max))
                return -ERANGE;
        *ret = x;
        return 0;
}

/* Reads and checks the create request into *sv (everything but port, state and times). */
static int service_from_body(const json_t *body, service_record_t *sv, char **ret_msg) {
        const char *name = json_string_value(json_object_get(body, "name"));
        const char *image = json_string_value(json_object_get(body, "image"));
        /* its VMs are NAME-1 .. NAME-N and must be valid names too */
        if (!name || !name_is_valid(name) || strlen(name) > 58) {
                *ret_msg = xstrdup("a service needs a valid name: 1-58 of a-z, 0-9 and -");
                return -EINVAL;
        }
        if (!image || !name_is_valid(image)) {
                *ret_msg = xstrdup("a service needs the name of an image (--image)");
                return -EINVAL;
        }
        SET(sv->name, name);
        SET(sv->image, image);
        struct {
                const char *key;
                int64_t def, min, max;
                int64_t *out;
        } ints[] = {
                { "pool", -1, 1, SERVICE_POOL_MAX, &sv->pool },
                { "min", -1, 0, SERVICE_POOL_MAX, &sv->min },
                { "max", -1, 1, SERVICE_POOL_MAX, &sv->max },
                { "priority", 0, 0, 1000, &sv->priority },
                { "memory_mib", 128, BUNDLE_MEMORY_MIB_MIN, BUNDLE_MEMORY_MIB_MAX, &sv->memory_mib },
                { "vcpus", 1, 1, BUNDLE_VCPUS_MAX, &sv->vcpus },
        };
        for (size_t i = 0; i < ELEMENTSOF(ints); i++) {
                int r = oracle_body_int(body, ints[i].key, ints[i].def, ints[i].min, ints[i].max, ints[i].out);
                if (r < 0 || *ints[i].out < 0) {
                        *ret_msg = *ints[i].out < 0 && r >= 0
                                           ? xasprintf("a service needs %s", ints[i].key)
                                           : xasprintf("%s must be an integer from %lld to %lld", ints[i].key,
                                                       (long long)ints[i].min, (long long)ints[i].max);
                        return r < 0 ? r : -EINVAL;
                }
        }
        if (body_double(body, "window_s", 30, 0, 86400, &sv->window_s) < 0) {
                *ret_msg = xstrdup("window_s must be a number of seconds from 0 to 86400");
                return -ERANGE;
        }
        if (body_double(body, "high", 70, 1, 100, &sv->high) < 0) {
                *ret_msg = xstrdup("high must be a percentage from 1 to 100");
                return -ERANGE;
        }
        if (sv->min > sv->max) {
                *ret_msg = xasprintf("min (%lld) is above max (%lld)", (long long)sv->min, (long long)sv->max);
                return -EINVAL;
        }
        if (sv->max > sv->pool) {
                *ret_msg = xasprintf("max (%lld) is above the pool (%lld): only pool VMs exist to activate",
                                     (long long)sv->max, (long long)sv->pool);
                return -EINVAL;
        }
        return oracle_service_health_from_body(body, sv, ret_msg);
}

/* -ENOSPC when the Nest's file system cannot hold pool pre-booted VMs of this size. */
static int nest_room_check(oracle_t *o, const service_record_t *sv, char **ret_msg) {
        struct statvfs st;
        if (statvfs(o->nest, &st) < 0)
                return 0; /* cannot tell: the saves themselves will say */
        unsigned long long avail = (unsigned long long)st.f_bavail * st.f_frsize;
        unsigned long long need = (unsigned long long)sv->pool * (((unsigned long long)sv->memory_mib << 20) +
                                                                   SERVICE_VM_DISK_ALLOWANCE);
        if (need <= avail)
                return 0;
        *ret_msg = xasprintf("a pool of %lld VMs of %lld MiB needs up to %llu MiB in the Nest; it has %llu MiB free",
                             (long long)sv->pool, (long long)sv->memory_mib, need >> 20, avail >> 20);
        return -ENOSPC;
}

/* The lowest frontend port no other service uses. */
static int port_pick(const service_record_t *svs, size_t n, int64_t *ret) {
        for (int64_t p = SERVICE_PORT_FIRST; p <= SERVICE_PORT_LAST; p++) {
                bool used = false;
                for (size_t i = 0; i < n && !used; i++)
                        used = svs[i].port == p;
                if (!used) {
                        *ret = p;
                        return 0;
                }
        }
        return -EAGAIN;
}

/* Records the service and its pool in one transaction; -EEXIST names what exists. */
static int service_insert(oracle_t *o, service_record_t *sv, const image_record_t *img, char **ret_msg) {
        service_record_t *svs = NULL;
        size_t ns = 0;
        _cleanup_free_ char *why = NULL;
        int r = store_tx_begin(o->store);
        if (r < 0) {
                *ret_msg = xstrdup("the store is unavailable");
                return r;
        }
        service_record_t old = { 0 };
        if (store_service_get(o->store, sv->name, &old) >= 0) {
                if (!streq(old.state, "failed")) {
                        *ret_msg = xasprintf("service \"%s\" exists already", sv->name);
                        r = -EEXIST;
                        goto fail;
                }
                /* a failed creation left nothing but its row and the reason: replace it */
                store_service_delete(o->store, sv->name);
        }
        r = store_service_list(o->store, &svs, &ns);
        if (r >= 0)
                r = port_pick(svs, ns, &sv->port);
        if (r < 0) {
                *ret_msg = xstrdup(r == -EAGAIN ? "every frontend port (8100-8999) is taken" : "the store is unavailable");
                goto fail;
        }
        for (int64_t i = 1; i <= sv->pool; i++) {
                _cleanup_free_ char *name = xasprintf("%s-%lld", sv->name, (long long)i);
                vm_record_t v = { 0 };
                if (store_vm_get(o->store, name, &v) >= 0) {
                        vm_record_clear(&v);
                        *ret_msg = xasprintf("vm \"%s\" exists already; the service needs its name", name);
                        r = -EEXIST;
                        goto fail;
                }
                r = oracle_vm_record_new(o, name, img, sv->memory_mib, sv->vcpus, sv->name, &v);
                if (r >= 0)
                        r = store_vm_insert(o->store, &v);
                vm_record_clear(&v);
                if (r < 0) {
                        *ret_msg = xasprintf("cannot record vm \"%s\"", name);
                        goto fail;
                }
        }
        SET(sv->state, "creating");
        sv->created_ms = time_wall_ms();
        r = store_service_insert(o->store, sv);
        if (r < 0) {
                *ret_msg = xasprintf("cannot record service \"%s\"", sv->name);
                goto fail;
        }
        char *health = oracle_service_health_text(sv); /* not _cleanup_: the gotos above jump past it */
        why = xasprintf("pool %lld of %s, min %lld, max %lld, high %.0f%%, window %.0f s, health %s",
                        (long long)sv->pool, sv->image, (long long)sv->min, (long long)sv->max, sv->high,
                        sv->window_s, health);
        free(health);
        store_event_add(o->store, "service-created", NULL, sv->name, NULL, why);
        free(svs);
        r = store_tx_commit(o->store);
        if (r < 0)
                *ret_msg = xstrdup("cannot commit the service");
        return r;
fail:
        free(svs);
        store_tx_rollback(o->store);
        return r;
}

static void h_service_create(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        service_record_t sv = { 0 };
        _cleanup_free_ char *msg = NULL;
        int r = service_from_body(req->body, &sv, &msg);
        if (r < 0) {
                http_reply_errno(reply, r, "%s", msg);
                return;
        }
        image_record_t img = { 0 };
        if (store_image_get(o->store, sv.image, &img) < 0) {
                http_reply_error(reply, 404, "not_found", "no image named \"%s\"", sv.image);
                return;
        }
        r = nest_room_check(o, &sv, &msg);
        if (r >= 0)
                r = service_insert(o, &sv, &img, &msg);
        image_record_clear(&img);
        if (r < 0) {
                http_reply_errno(reply, r, "%s", msg);
                return;
        }
        log_info("service %s: created with a pool of %lld VMs; pre-booting them", sv.name, (long long)sv.pool);
        oracle_engine_wake(o);
        vm_record_t *vms = NULL;
        size_t nv = 0;
        if (store_vm_list(o->store, &vms, &nv) < 0) {
                http_reply_json(reply, 201, service_record_to_json(&sv));
                return;
        }
        http_reply_json(reply, 201, service_json(o, &sv, vms, nv));
        store_vm_list_free(vms, nv);
}

static void h_service_delete(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        service_record_t sv = { 0 };
        int r = store_tx_begin(o->store);
        if (r < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        r = store_service_get(o->store, req->params[0], &sv);
        if (r < 0) {
                store_tx_rollback(o->store);
                http_reply_errno(reply, r, "no service named \"%s\"", req->params[0]);
                return;
        }
        SET(sv.state, "deleting");
        r = store_service_update(o->store, &sv);
        if (r >= 0)
                store_event_add(o->store, "service-deleting", NULL, sv.name, NULL, "its VMs are stopped and deleted");
        if (r >= 0)
                r = store_tx_commit(o->store);
        else
                store_tx_rollback(o->store);
        if (r < 0) {
                http_reply_errno(reply, r, "cannot delete service \"%s\"", sv.name);
                return;
        }
        oracle_engine_wake(o);
        http_reply_json(reply, 202, service_record_to_json(&sv));
}

const http_route_t oracle_service_routes[] = {
        { "GET", "/v1/services", h_services, PERM_SERVICE_READ, OWNER_NONE },
        { "POST", "/v1/services", h_service_create, PERM_SERVICE_ACT, OWNER_NONE },
        { "GET", "/v1/services/:name", h_service_show, PERM_SERVICE_READ, OWNER_NONE },
        { "DELETE", "/v1/services/:name", h_service_delete, PERM_SERVICE_ACT, OWNER_NONE },
        { NULL },
};
