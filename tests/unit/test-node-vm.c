/* Unit tests for the node agent's VM registry and commands (src/node), on a node_t with a data
 * directory in /tmp and a scripted VMM driver: entries of deleted VMs are freed once unused,
 * and the tombstone they leave still refuses stale commands; one heartbeat's stats collection
 * stays within its budget however many VMs are slow to answer. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utime.h>

#include "base/util.h"
#include "node/node-delete.h"
#include "node/node-heartbeat.h"
#include "node/node-internal.h"
#include "node/node-proto.h"
#include "node/node-prune.h"
#include "node/node-registry.h"
#include "node/node-save.h"
#include "node/node-supervise.h"
#include "node/node-vm.h"
#include "tap.h"

/* ---- a scripted VMM: stats take stats_delay_ms and count how often they were asked */

static atomic_int stats_calls;
static int stats_delay_ms;

typedef struct test_vm {
        vmm_vm_t header;
        uint64_t cpu_ns;
} test_vm_t;

static int test_stats(vmm_vm_t *v, vmm_stats_t *ret) {
        atomic_fetch_add(&stats_calls, 1);
        time_sleep_ms(stats_delay_ms);
        *ret = (vmm_stats_t){ .cpu_ns = ((test_vm_t *)v)->cpu_ns, .rss_bytes = 1 };
        return 0;
}

static int test_kill(vmm_vm_t *v, unsigned flags) { return 0; }
static void test_free(vmm_vm_t *v) { free(v); }

static const vmm_driver_t test_driver = { .name = "test", .stats = test_stats, .kill = test_kill, .free = test_free };

static vmm_vm_t *test_vmm(uint64_t cpu_ns) {
        test_vm_t *t = xcalloc(1, sizeof *t);
        t->header.driver = &test_driver;
        t->cpu_ns = cpu_ns;
        return &t->header;
}

static void node_setup(node_t *n, char *dir) {
        *n = (node_t){ .name = "rm1", .oracle = "http://127.0.0.1:1", .host = "127.0.0.1", .data = dir,
                       .driver = &test_driver };
        pthread_mutex_init(&n->lock, NULL);
}

/* A VM entry in state, with version and (when running) a test VMM. */
static void vm_add(node_t *n, const char *name, const char *state, int64_t version, uint64_t cpu_ns) {
        _cleanup_(node_registry_releasep) node_vm_t *vm = node_registry_get_or_create(n, name);
        _cleanup_(node_vm_unlockp) node_vm_t *locked = node_vm_lock(vm);
        snprintf(vm->state, sizeof vm->state, "%s", state);
        vm->version = version;
        vm->vmm = streq(state, "running") ? test_vmm(cpu_ns) : NULL;
}

static int command(node_t *n, node_cmd_kind_t kind, const char *name, const char *body,
                   int (*fn)(node_t *, const char *, const node_cmd_t *, json_t **, char **), json_t **ret) {
        _cleanup_(json_decrefp) json_t *b = json_loads(body, 0, NULL);
        _cleanup_free_ char *msg = NULL;
        node_cmd_t cmd;
        *ret = NULL;
        int r = node_proto_parse(kind, b, name, n->oracle, &cmd, &msg);
        return r < 0 ? r : fn(n, name, &cmd, ret, &msg);
}

static void test_delete_frees(void) {
        char dir[] = "/tmp/test-node-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        node_t n;
        node_setup(&n, dir);
        vm_add(&n, "web1", "running", 5, 1);
        vm_add(&n, "web2", "suspended", 2, 0);
        CHECK(node_registry_count(&n) == 2);

        json_t *ret = NULL;
        CHECK(command(&n, NODE_CMD_DELETE, "web1", "{\"version\": 6}", node_delete_vm, &ret) == 0 && json_is_object(ret));
        json_decref(ret);
        /* the entry is gone, only web2 is listed */
        CHECK(node_registry_count(&n) == 1);
        CHECK(n.vms && streq(n.vms->name, "web2"));
        CHECK(json_object_get(n.tombstones, "web1") != NULL);

        /* the tombstone still refuses stale commands, and a repeated delete gets its answer */
        CHECK(command(&n, NODE_CMD_SAVE, "web1", "{\"version\": 5}", node_save_vm, &ret) == -ESTALE);
        CHECK(command(&n, NODE_CMD_DELETE, "web1", "{\"version\": 4}", node_delete_vm, &ret) == -ESTALE);
        CHECK(command(&n, NODE_CMD_DELETE, "web1", "{\"version\": 6}", node_delete_vm, &ret) == 0 && json_is_object(ret));
        json_decref(ret);
        CHECK(node_registry_count(&n) == 1);
        /* a newer command on a deleted VM finds it deleted, as before */
        CHECK(command(&n, NODE_CMD_SAVE, "web1", "{\"version\": 7}", node_save_vm, &ret) == -EPERM);
        CHECK(node_registry_count(&n) == 1);

        /* looking it up shows it deleted at its version, then it is a tombstone again */
        node_vm_t *vm = node_registry_find(&n, "web1");
        CHECK(vm && streq(vm->state, "deleted") && vm->version == 6);
        CHECK(node_registry_count(&n) == 2);
        node_registry_release(vm);
        CHECK(node_registry_count(&n) == 1);
        CHECK(node_registry_find(&n, "nothing") == NULL);

        /* a VM deleted while a walker holds it is freed when the walker lets go */
        size_t count = 0;
        node_vm_t **vms = node_registry_snapshot(&n, &count);
        CHECK(count == 1);
        CHECK(command(&n, NODE_CMD_DELETE, "web2", "{\"version\": 3}", node_delete_vm, &ret) == 0);
        json_decref(ret);
        CHECK(node_registry_count(&n) == 1);
        node_registry_snapshot_freep(&vms);
        CHECK(node_registry_count(&n) == 0);

        /* a fenced VM too */
        vm_add(&n, "web3", "running", 1, 1);
        vms = node_registry_snapshot(&n, &count);
        CHECK(node_supervise_fence(&n, vms[0], time_now_ms() + 1000, "test"));
        node_registry_snapshot_freep(&vms);
        CHECK(node_registry_count(&n) == 0);
        CHECK(command(&n, NODE_CMD_DELETE, "web3", "{\"version\": 1}", node_delete_vm, &ret) == 0);
        json_decref(ret);

        node_registry_free(&n);
        pthread_mutex_destroy(&n.lock);
        (void)rm_rf(dir);
}

static void test_heartbeat_budget(void) {
        char dir[] = "/tmp/test-node-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        node_t n;
        node_setup(&n, dir);
        enum { VMS = 24 };
        for (int i = 0; i < VMS; i++) {
                char name[16];
                snprintf(name, sizeof name, "vm%d", i);
                vm_add(&n, name, "running", 1, (uint64_t)i + 1);
        }
        vm_add(&n, "gone", "deleted", 1, 0);
        vm_add(&n, "fresh", "new", 0, 0);

        /* quick answers: every VM's stats are fresh */
        stats_delay_ms = 0;
        atomic_store(&stats_calls, 0);
        json_t *vms = node_heartbeat_vms(&n);
        CHECK(json_array_size(vms) == VMS);
        CHECK(atomic_load(&stats_calls) == VMS);
        size_t i;
        json_t *v;
        json_array_foreach(vms, i, v)
                CHECK(json_object_get(v, "stats") != NULL);
        json_decref(vms);

        /* every VM slow (300 ms, a QMP timeout): each worker starts at most one query, the others
         * report the stats they had */
        stats_delay_ms = 300;
        atomic_store(&stats_calls, 0);
        int64_t t0 = time_now_ms();
        vms = node_heartbeat_vms(&n);
        int64_t took = time_now_ms() - t0;
        CHECK(json_array_size(vms) == VMS);
        CHECK(atomic_load(&stats_calls) <= NODE_HEARTBEAT_WORKERS);
        size_t with_stats = 0;
        json_array_foreach(vms, i, v)
                with_stats += json_object_get(v, "stats") != NULL;
        CHECK(with_stats == VMS);
        fprintf(stderr, "# heartbeat of %d slow VMs: %lld ms, %d stats queries\n", VMS, (long long)took,
                atomic_load(&stats_calls));
        json_decref(vms);

        /* a VM busy with a command is reported busy, without waiting for it */
        node_vm_t *busy = node_registry_find(&n, "vm3");
        pthread_mutex_lock(&busy->lock);
        stats_delay_ms = 0;
        vms = node_heartbeat_vms(&n);
        bool seen = false;
        json_array_foreach(vms, i, v)
                if (streq(json_string_value(json_object_get(v, "name")), "vm3"))
                        seen = streq(json_string_value(json_object_get(v, "state")), "busy");
        CHECK(seen);
        json_decref(vms);
        pthread_mutex_unlock(&busy->lock);
        node_registry_release(busy);

        node_registry_free(&n);
        pthread_mutex_destroy(&n.lock);
        (void)rm_rf(dir);
}

/* A file of kib KiB of data (real blocks, not a hole) whose mtime is age seconds ago. */
static void file_make(const char *path, size_t kib, int age) {
        _cleanup_free_ char *buf = xcalloc(1, kib * 1024);
        memset(buf, 'x', kib * 1024);
        CHECK(file_write_atomic(path, buf, kib * 1024) >= 0);
        struct utimbuf t = { .actime = time(NULL) - age, .modtime = time(NULL) - age };
        CHECK(utime(path, &t) == 0);
}

/* node --cache-max: over the cap, unused snapshots, bases and images go oldest first until the
 * use is under 90% of the cap; what a held VM maps or is backed by stays, however old. */
static void test_prune(void) {
        char dir[] = "/tmp/vmx-test-prune-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        node_t n;
        node_setup(&n, dir);
        pthread_mutex_init(&n.memory_lock, NULL);
        pthread_mutex_init(&n.cache_lock, NULL);
        _cleanup_free_ char *cache = xasprintf("%s/cache", dir);
        CHECK(nest_store_open(cache, &n.cache) == 0);
        nest_store_set_cache(n.cache, true);
        const char *subs[] = { "memory", "bases", "images", "images/img-a", "images/img-b" };
        for (size_t i = 0; i < ELEMENTSOF(subs); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", dir, subs[i]);
                CHECK(mkdir_p(p, 0755) >= 0);
        }
        _cleanup_free_ char *mapped = xasprintf("%s/memory/mapped", dir), *old = xasprintf("%s/memory/old", dir);
        _cleanup_free_ char *newer = xasprintf("%s/memory/newer", dir), *base = xasprintf("%s/bases/used", dir);
        _cleanup_free_ char *img_a = xasprintf("%s/images/img-a/disk", dir), *img_b = xasprintf("%s/images/img-b/disk", dir);
        file_make(mapped, 1024, 5000); /* the oldest of all, but mapped */
        file_make(old, 1024, 4000);
        file_make(newer, 1024, 10);
        file_make(base, 1024, 4500);
        file_make(img_a, 1024, 3000); /* img-a is used by the VM, img-b by nothing */
        file_make(img_b, 1024, 3500);
        _cleanup_free_ char *dir_b = xasprintf("%s/images/img-b", dir);
        struct utimbuf t = { .actime = time(NULL) - 3500, .modtime = time(NULL) - 3500 };
        CHECK(utime(dir_b, &t) == 0);
        vm_add(&n, "held", "suspended", 3, 0);
        {
                _cleanup_(node_registry_releasep) node_vm_t *vm = node_registry_find(&n, "held");
                _cleanup_(node_vm_unlockp) node_vm_t *locked = node_vm_lock(vm);
                node_vm_memory_base_set(vm, mapped);
                node_vm_disk_base_set(vm, base);
                vm->config = json_pack("{s:s,s:s}", "name", "held", "image", "img-a");
        }
        /* under the cap: nothing goes */
        node_prune_stats_t st;
        CHECK(node_prune(&n, 1ull << 30, &st) == 0);
        CHECK(st.files_removed == 0 && file_exists(old) && file_exists(img_b));
        /* a cap whose 90% target is 1.5 MiB below the use: the unused go oldest first, old
         * (1 MiB: not enough), then img-b, and the newest unused stays */
        uint64_t used = st.used_before;
        CHECK(used >= (6u << 20));
        CHECK(node_prune(&n, (used - (3u << 19)) / 9 * 10, &st) == 0);
        CHECK(!file_exists(old));
        CHECK(!file_exists(img_b));
        CHECK(file_exists(newer));
        CHECK(file_exists(mapped) && file_exists(base) && file_exists(img_a));
        /* a cap below what the VM needs removes every unused file, never the needed ones */
        CHECK(node_prune(&n, 64u << 20 >> 6, &st) == 0);
        CHECK(!file_exists(newer));
        CHECK(file_exists(mapped) && file_exists(base) && file_exists(img_a));
        /* a VM busy with a command: its paths may change, so the pass waits */
        {
                _cleanup_(node_registry_releasep) node_vm_t *vm = node_registry_find(&n, "held");
                _cleanup_(node_vm_unlockp) node_vm_t *locked = node_vm_lock(vm);
                file_make(newer, 1024, 10);
                CHECK(node_prune(&n, 1u << 20, &st) == -EBUSY);
                CHECK(file_exists(newer));
        }
        node_registry_free(&n);
        nest_store_free(n.cache);
        (void)rm_rf(dir);
}

/* A command whose record cannot be written is not done: the node answers -EIO, and the repeat
 * of the command writes the record before it answers; a restarted node then knows it. */
static void test_record_failure(void) {
        char dir[] = "/tmp/test-node-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        node_t n;
        node_setup(&n, dir);
        vm_add(&n, "web4", "suspended", 1, 0);
        /* a non-empty directory where the record goes: the atomic rename onto it fails */
        _cleanup_free_ char *record = xasprintf("%s/vms/web4/node-vm.json", dir);
        _cleanup_free_ char *blocker = xasprintf("%s/x", record);
        CHECK(mkdir_p(blocker, 0755) == 0);
        json_t *ret = NULL;
        const char *stop = "{\"version\": 2, \"new_version\": 3}";
        CHECK(command(&n, NODE_CMD_STOP, "web4", stop, node_save_stop, &ret) == -EIO && !ret);
        CHECK(command(&n, NODE_CMD_STOP, "web4", stop, node_save_stop, &ret) == -EIO && !ret);
        CHECK(rm_rf(record) == 0);
        CHECK(command(&n, NODE_CMD_STOP, "web4", stop, node_save_stop, &ret) == 0 && json_is_object(ret));
        json_decref(ret);
        node_registry_free(&n);
        pthread_mutex_destroy(&n.lock);

        node_t again;
        node_setup(&again, dir);
        node_registry_load(&again);
        node_vm_t *vm = node_registry_find(&again, "web4");
        CHECK(vm && streq(vm->state, "stopped") && vm->version == 2 && vm->last_version == 2);
        if (vm)
                node_registry_release(vm);
        node_registry_free(&again);
        pthread_mutex_destroy(&again.lock);
        (void)rm_rf(dir);
}

int main(void) {
        test_record_failure();
        test_prune();
        test_delete_frees();
        test_heartbeat_budget();
        return tap_finish();
}
