/* The node's background loop: the heartbeat to the Oracle every second (or at once when
 * something changed), which also carries back the leases that fence VMs the Oracle no longer
 * places here.
 *
 * The Oracle declares an RM down after 5 s without a heartbeat, and a QEMU whose monitor does
 * not answer takes up to 300 ms per stats query: so the VMs' stats are asked by up to
 * NODE_HEARTBEAT_WORKERS threads at once, and no query starts once less than a query's worst
 * case is left of STATS_BUDGET_MS; a VM not asked shows the stats it gave last. Each heartbeat
 * starts at another VM, so slow VMs at the head of the list do not always use up the budget.
 *
 * Each heartbeat also says the RM's size (node-capacity.h), measured at the start; the disk's
 * figure only is measured again, once a minute at most (one statvfs). */
#include <dirent.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "net/http-client.h"
#include "node/node-heartbeat.h"
#include "node/node-internal.h"
#include "node/node-proto.h"
#include "node/node-registry.h"
#include "node/node-supervise.h"
#include "node/node-vm.h"

#define HEARTBEAT_INTERVAL_MS 1000
#define STATS_BUDGET_MS 450
#define STATS_QUERY_MAX_MS 300 /* keep in sync with QEMU_STATS_TIMEOUT_MS (vmm/qemu/qemu-internal.h) */
#define CAPACITY_DISK_INTERVAL_MS (60 * 1000)

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
        _cleanup_(node_registry_snapshot_freep) node_vm_t **vms = node_registry_snapshot(n, &count);
        /* vm->name never changes, so the lease is looked up without the VM's lock; a VM busy
         * with a command is skipped rather than waited for (a long save would otherwise stop
         * the heartbeats and get the whole RM declared down) */
        for (size_t i = 0; i < count; i++)
                if (!json_object_get(leases, vms[i]->name))
                        node_supervise_fence(n, vms[i], sent_ms, "the Oracle holds no lease for it on this RM");
}

/* The data directory's filesystem measured again (grown, or another one mounted there); a
 * declared figure holds while that filesystem holds it. A failed statvfs keeps the last
 * figure. Heartbeat thread only. */
static void capacity_refresh(node_t *n) {
        int64_t now = time_now_ms(), disk = 0;
        if (now - n->capacity_disk_ms < CAPACITY_DISK_INTERVAL_MS)
                return;
        n->capacity_disk_ms = now;
        if (node_capacity_disk_gib(n->data, &disk) < 0)
                return;
        int64_t declared = n->capacity_declared.disk_gib;
        n->capacity.disk_gib = declared > 0 && declared <= disk ? declared : disk;
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

/* One heartbeat's stats collection, shared by its workers. */
typedef struct collect {
        node_t *n;
        node_vm_t **vms;
        size_t count, first;
        json_t **out;          /* out[i]: what the heartbeat says of vms[i], NULL: nothing */
        atomic_size_t next;
        int64_t last_query_ms; /* no stats query starts after this */
} collect_t;

static void collect_one(collect_t *c, size_t i) {
        _cleanup_(node_vm_unlockp) node_vm_t *vm = node_vm_trylock(c->vms[i]);
        if (!vm) {
                /* busy with a command: report it by name so its lease is kept */
                c->out[i] = node_proto_busy(c->vms[i]->name);
                return;
        }
        if (!streq(vm->state, "deleted") && !streq(vm->state, "new"))
                c->out[i] = node_supervise_describe(c->n, vm, time_now_ms() <= c->last_query_ms);
}

static void *collect_worker(void *arg) {
        collect_t *c = arg;
        for (size_t k; (k = atomic_fetch_add(&c->next, 1)) < c->count;)
                collect_one(c, (c->first + k) % c->count);
        return NULL;
}

json_t *node_heartbeat_vms(node_t *n) {
        size_t count = 0;
        _cleanup_(node_registry_snapshot_freep) node_vm_t **vms = node_registry_snapshot(n, &count);
        _cleanup_free_ json_t **out = xcalloc(count + 1, sizeof *out);
        collect_t c = { .n = n, .vms = vms, .count = count, .first = count ? n->heartbeat_turn++ % count : 0,
                        .out = out, .last_query_ms = time_now_ms() + STATS_BUDGET_MS - STATS_QUERY_MAX_MS };
        pthread_t threads[NODE_HEARTBEAT_WORKERS - 1];
        size_t started = 0;
        /* this thread is a worker too: if no thread starts, it asks them all itself */
        while (started < ELEMENTSOF(threads) && started + 1 < count &&
               pthread_create(&threads[started], NULL, collect_worker, &c) == 0)
                started++;
        collect_worker(&c);
        for (size_t i = 0; i < started; i++)
                pthread_join(threads[i], NULL);
        json_t *list = json_array();
        for (size_t i = 0; i < count; i++)
                if (out[i])
                        json_array_append_new(list, out[i]);
        return list;
}

void *node_heartbeat_thread(void *arg) {
        node_t *n = arg;
        _cleanup_free_ char *url = xasprintf("%s/v1/rms/%s/heartbeat", n->oracle, n->name);
        bool was_connected = false;
        /* one connection kept open: a heartbeat a second costs no TLS handshake */
        http_handle_t *conn = http_handle_new();
        http_call_t call = { .handle = conn };
        while (!n->stopping) {
                json_t *body = node_proto_heartbeat(n->role, n->listen, n->accel, node_heartbeat_vms(n), snapshots_held(n));
                node_proto_heartbeat_guest_firewall(body, node_guestfw_active(n));
                node_proto_heartbeat_confinement(body, n->confine.on, n->confine.reason);
                capacity_refresh(n);
                node_proto_heartbeat_capacity(body, &n->capacity);
                int64_t sent = time_now_ms();
                http_response_t resp = { 0 };
                int r = http_call_json(&call, "POST", url, body, 3000, &resp);
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
        http_handle_free(conn);
        return NULL;
}
