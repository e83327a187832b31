/* The node's background loop: the heartbeat to the Oracle every second (or at once when
 * something changed), which also carries back the leases that fence VMs the Oracle no longer
 * places here. */
#include <dirent.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "net/http-client.h"
#include "node/node-internal.h"
#include "node/node-registry.h"
#include "node/node-supervise.h"
#include "node/node-vm.h"

#define HEARTBEAT_INTERVAL_MS 1000

void node_heartbeat_wake(node_t *n) {
        pthread_mutex_lock(&n->wake_lock);
        n->wake_pending = true;
        pthread_cond_signal(&n->wake);
        pthread_mutex_unlock(&n->wake_lock);
}

static void wait_next(node_t *n, int64_t ms) {
        struct timespec ts = time_realtime_after_ms(ms);
        pthread_mutex_lock(&n->wake_lock);
        while (!n->wake_pending && !n->stopping)
                if (pthread_cond_timedwait(&n->wake, &n->wake_lock, &ts) != 0)
                        break;
        n->wake_pending = false;
        pthread_mutex_unlock(&n->wake_lock);
}

/* Kills local copies that hold no lease. Only VMs whose last command came before this
 * heartbeat was sent are judged: the Oracle writes a lease before it sends a command, so a
 * command that arrived later may not be in this answer yet. */
static void apply_leases(node_t *n, const json_t *leases, int64_t sent_ms) {
        size_t count = 0;
        _cleanup_free_ node_vm_t **vms = node_registry_snapshot(n, &count);
        /* vm->name never changes, so the lease is looked up without the VM's lock; a VM busy
         * with a command is skipped rather than waited for (a long save would otherwise stop
         * the heartbeats and get the whole RM declared down) */
        for (size_t i = 0; i < count; i++)
                if (!json_object_get(leases, vms[i]->name))
                        node_supervise_fence(n, vms[i], sent_ms, "the Oracle holds no lease for it on this RM");
}

#define HEARTBEAT_MAX_SNAPSHOTS 256

/* The memory snapshots this RM holds (DATA/memory/DIGEST): the Oracle places an activation
 * where its snapshot already is, which saves rebuilding it from the Nest (about a second). */
static json_t *snapshots_held(node_t *n) {
        json_t *list = json_array();
        _cleanup_free_ char *dir = node_nest_memory_dir(n);
        DIR *d = opendir(dir);
        if (!d)
                return list;
        struct dirent *de;
        while ((de = readdir(d)) && json_array_size(list) < HEARTBEAT_MAX_SNAPSHOTS)
                if (bundle_sha256_is_valid(de->d_name))
                        json_array_append_new(list, json_string(de->d_name));
        closedir(d);
        return list;
}

void *node_heartbeat_thread(void *arg) {
        node_t *n = arg;
        _cleanup_free_ char *url = xasprintf("%s/v1/rms/%s/heartbeat", n->oracle, n->name);
        bool was_connected = false;
        while (!n->stopping) {
                json_t *vms = json_array();
                size_t count = 0;
                _cleanup_free_ node_vm_t **list = node_registry_snapshot(n, &count);
                for (size_t i = 0; i < count; i++) {
                        _cleanup_(node_vm_unlockp) node_vm_t *vm = node_vm_trylock(list[i]);
                        if (!vm) {
                                /* busy with a command: report it by name so its lease is kept */
                                json_array_append_new(vms, node_proto_busy(list[i]->name));
                                continue;
                        }
                        if (!streq(vm->state, "deleted") && !streq(vm->state, "new"))
                                json_array_append_new(vms, node_supervise_describe(n, vm, true));
                }
                json_t *body = node_proto_heartbeat(n->role, n->listen, n->accel, vms, snapshots_held(n));
                int64_t sent = time_now_ms();
                http_response_t resp = { 0 };
                int r = http_request_json("POST", url, body, 3000, &resp);
                json_decref(body);
                if (r < 0 || resp.status != 200) {
                        if (was_connected)
                                log_warn("heartbeat to %s failed: %s", n->oracle, http_error_message(&resp, r));
                        was_connected = false;
                } else {
                        if (!was_connected)
                                log_info("subscribed to the Oracle at %s", n->oracle);
                        was_connected = true;
                        const json_t *leases = node_proto_heartbeat_leases(resp.json);
                        if (leases)
                                apply_leases(n, leases, sent);
                }
                http_response_clear(&resp);
                wait_next(n, HEARTBEAT_INTERVAL_MS);
        }
        return NULL;
}
