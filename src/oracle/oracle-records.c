/* The Oracle's records as its API and runners share them: a VM's JSON, a new VM's record and
 * its MAC, integers from request bodies, node addresses, service endpoints, and the one read
 * of services and VMs that a tick or an answer takes. Only the store below. */
#include <string.h>

#include "base/util.h"
#include "model/lifecycle.h"
#include "oracle/oracle-internal.h"

#define MAC_PREFIX "52:54:00"
#define MAC_SPACE (1 << 24)

void oracle_mac_format(int64_t counter, char ret[18]) {
        /* 0 is skipped so no VM gets 52:54:00:00:00:00 */
        int64_t v = (counter - 1) % (MAC_SPACE - 1) + 1;
        snprintf(ret, 18, MAC_PREFIX ":%02x:%02x:%02x", (unsigned)(v >> 16) & 0xff, (unsigned)(v >> 8) & 0xff,
                 (unsigned)v & 0xff);
}

unsigned oracle_vm_flags(const vm_record_t *v) {
        return (v->prebooted ? LIFECYCLE_PREBOOTED : 0) | (v->market.machine ? LIFECYCLE_MARKET : 0);
}

json_t *oracle_vm_json(const vm_record_t *v) {
        json_t *j = vm_record_to_json(v);
        json_object_del(j, "bundle");
        /* the CPU quota of its QEMU in percent of one CPU: null is 100 per vCPU */
        const json_t *cpu = json_object_get(json_object_get(v->bundle, "config"), "cpu_limit");
        json_object_set_new(j, "cpu_limit", json_is_integer(cpu) ? json_copy((json_t *)cpu) : json_null());
        const char *names[16];
        unsigned n = v->op_id[0] ? 0 : lifecycle_actions_for(v->state, oracle_vm_flags(v), names, 16);
        json_t *actions = json_array();
        for (unsigned i = 0; i < n; i++)
                json_array_append_new(actions, json_string(names[i]));
        json_object_set_new(j, "actions", actions);
        return j;
}

/* A buyer's machine starts only on its offer's RM: boot on a chamber, activate on a production
 * RM; the other verb is dropped from its actions (the lifecycle table knows states, not RMs). */
static void market_actions_fix(json_t *j, const vm_record_t *v, const rm_record_t *rms, size_t n) {
        if (!v->market.machine || !*v->market.offer)
                return;
        const char *role = NULL;
        for (size_t i = 0; i < n && !role; i++)
                if (streq(rms[i].name, v->market.offer))
                        role = rms[i].role;
        if (!role)
                return;
        const char *drop = streq(role, "chamber") ? "activate" : "boot";
        json_t *actions = json_object_get(j, "actions");
        for (size_t i = json_array_size(actions); i-- > 0;)
                if (streq(json_string_value(json_array_get(actions, i)) ?: "", drop))
                        json_array_remove(actions, i);
}

json_t *oracle_vm_json_among(const auth_principal_t *p, const vm_record_t *v, const rm_record_t *rms, size_t n) {
        json_t *j = oracle_vm_json_for(p, v);
        market_actions_fix(j, v, rms, n);
        return j;
}

json_t *oracle_vm_json_for(const auth_principal_t *p, const vm_record_t *v) {
        json_t *j = oracle_vm_json(v);
        if (p && !role_allows(p->role, PERM_VM_ACT))
                json_object_set_new(j, "actions", json_array());
        /* what a buyer bids is the buyer's own business, not its provider's */
        if (p && !role_sees_all(p->role) && !streq(p->user, v->owner))
                json_object_del(json_object_get(j, "market"), "bid");
        return j;
}

int oracle_body_int(const json_t *body, const char *key, int64_t def, int64_t min, int64_t max, int64_t *ret) {
        const json_t *v = json_object_get(body, key);
        if (!v || json_is_null(v)) {
                *ret = def;
                return 0;
        }
        if (!json_is_integer(v))
                return -EINVAL;
        int64_t x = json_integer_value(v);
        if (x < min || x > max)
                return -ERANGE;
        *ret = x;
        return 0;
}

/* The MAC of a new VM: the next value of the store's counter, modulo the 2^24 addresses of
 * the prefix, skipping any that a VM still holds (the counter wraps after 16M creations). */
int oracle_mac_next(oracle_t *o, char ret[18]) {
        vm_record_t *vms = NULL;
        size_t n = 0;
        int r = store_vm_list(o->store, &vms, &n);
        if (r < 0)
                return r;
        for (size_t tries = 0; tries <= n; tries++) {
                int64_t mac = 0;
                r = store_counter_next(o->store, "mac", &mac);
                if (r < 0)
                        break;
                oracle_mac_format(mac, ret);
                bool taken = false;
                for (size_t i = 0; i < n && !taken; i++)
                        taken = streq(vms[i].mac, ret);
                if (!taken)
                        break;
                r = -EADDRINUSE;
        }
        store_vm_list_free(vms, n);
        return r < 0 ? r : 0;
}

int oracle_vm_record_new(oracle_t *o, const char *name, const image_record_t *img, int64_t memory, int64_t vcpus,
                         const char *service, vm_record_t *ret) {
        vm_record_t v = { .version = 1, .memory_mib = memory, .vcpus = vcpus, .created_ms = time_wall_ms() };
        snprintf(v.name, sizeof v.name, "%s", name);
        snprintf(v.state, sizeof v.state, "stored");
        snprintf(v.image, sizeof v.image, "%s", img->name);
        snprintf(v.service, sizeof v.service, "%s", service ? service : "");
        int r = oracle_mac_next(o, v.mac);
        if (r >= 0)
                r = store_vm_first_version(o->store, name, &v.version);
        if (r < 0)
                return r;
        const char *boot = json_string_value(json_object_get(img->meta, "boot")) ?: "kernel";
        json_t *config = json_pack("{s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:I,s:s}", "name", name, "memory_mib",
                                   (json_int_t)memory, "vcpus", (json_int_t)vcpus, "mac", v.mac, "image", img->name,
                                   "boot", boot, "cmdline", json_string_value(json_object_get(img->meta, "cmdline")) ?: "",
                                   "disk_size_mib", json_integer_value(json_object_get(img->meta, "disk_size_mib")),
                                   "image_format", json_string_value(json_object_get(img->meta, "format")) ?: "");
        v.bundle = json_pack("{s:o,s:{}}", "config", config, "files");
        *ret = v;
        return 0;
}

char *oracle_service_endpoint(const char *listen, int64_t port) {
        _cleanup_free_ char *host = NULL;
        int listen_port = 0;
        if (!listen || http_split_hostport(listen, &host, &listen_port) < 0)
                return xasprintf("127.0.0.1:%lld", (long long)port);
        return xasprintf("%s:%lld", streq(host, "0.0.0.0") ? "127.0.0.1" : host, (long long)port);
}

int oracle_services_read(oracle_t *o, service_record_t **ret_svs, size_t *ret_ns, vm_record_t **ret_vms,
                         size_t *ret_nv) {
        service_record_t *svs = NULL;
        size_t ns = 0;
        int r = store_service_list(o->store, &svs, &ns);
        if (r < 0)
                return r;
        r = store_vm_list(o->store, ret_vms, ret_nv);
        if (r < 0) {
                free(svs);
                return r;
        }
        *ret_svs = svs;
        *ret_ns = ns;
        return 0;
}

const char *oracle_op_arg(const op_record_t *op, const char *key) {
        return json_string_value(json_object_get(op->args, key));
}
