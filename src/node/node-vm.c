/* One VM entry of the node: its directory, state and VMM handle (see node-vm.h). */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-proto.h"
#include "node/node-vm.h"

node_vm_t *node_vm_lock(node_vm_t *vm) {
        pthread_mutex_lock(&vm->lock);
        return vm;
}

node_vm_t *node_vm_trylock(node_vm_t *vm) { return pthread_mutex_trylock(&vm->lock) == 0 ? vm : NULL; }

node_vm_t *node_vm_timedlock(node_vm_t *vm, int64_t timeout_ms) {
        struct timespec deadline = time_realtime_after_ms(timeout_ms);
        return pthread_mutex_timedlock(&vm->lock, &deadline) == 0 ? vm : NULL;
}

void node_vm_unlockp(node_vm_t **vmp) {
        if (*vmp)
                pthread_mutex_unlock(&(*vmp)->lock);
}

char *node_vm_dir(node_t *n, const char *name) { return xasprintf("%s/vms/%s", n->data, name); }

char *node_vm_file(node_t *n, const char *name, const char *file) {
        return xasprintf("%s/vms/%s/%s", n->data, name, file);
}

void node_vm_config_set(node_vm_t *vm, const json_t *config) {
        json_decref(vm->config);
        vm->config = json_deep_copy(config);
        vm->fwd_port = 0;
        node_vm_memory_base_set(vm, NULL);
}

/* A snapshot or base taken into use is touched: the cache evicts least recently used files
 * first by their mtime (node-prune.c). */
static void mark_used(const char *path) {
        if (path && utimensat(AT_FDCWD, path, NULL, 0) < 0) {
                /* a missing file fails the launch that wanted it, with a clearer message */
        }
}

void node_vm_memory_base_set(node_vm_t *vm, const char *path) {
        free(vm->memory_base);
        vm->memory_base = path ? xstrdup(path) : NULL;
        mark_used(path);
}

void node_vm_disk_base_set(node_vm_t *vm, const char *path) {
        free(vm->disk_base);
        vm->disk_base = path ? xstrdup(path) : NULL;
        mark_used(path);
}

void node_vm_run_dir_reset(node_t *n, node_vm_t *vm) {
        _cleanup_free_ char *run = node_vm_file(n, vm->name, "run");
        char target[4096];
        ssize_t len = readlink(run, target, sizeof target - 1);
        if (len <= 0)
                return;
        target[len] = 0;
        char *slash = strrchr(target, '/');
        if (slash && streq(slash, "/run")) {
                *slash = 0;
                (void)rm_rf(target);
        }
        unlink(run);
}

/* Everything that runs, saves or removes the VM clears the staged files, through
 * node_vm_state_set. */
void node_vm_staged_set(node_vm_t *vm, const json_t *files, int64_t version) {
        json_decref(vm->staged);
        vm->staged = files ? json_deep_copy(files) : NULL;
        vm->staged_version = files ? version : 0;
}

void node_vm_state_set(node_vm_t *vm, const char *state) {
        if (!streq(state, "suspended") || !streq(vm->state, "suspended"))
                node_vm_staged_set(vm, NULL, 0);
        snprintf(vm->state, sizeof vm->state, "%s", state);
}

void node_vm_vmm_release(node_vm_t *vm, bool kill_it) {
        if (!vm->vmm)
                return;
        if (kill_it)
                vmm_kill(vm->vmm, 0);
        vm->vmm = vmm_vm_free(vm->vmm);
        vm->stats_valid = false;
        vm->pid = 0;
        vm->address[0] = 0;
        /* kept while the QEMU lives on (a handle dropped without a kill) */
        node_confine_release(vm->node, vm->name);
}

json_t *node_vm_started(node_t *n, node_vm_t *vm) {
        vmm_status_t st = { 0 };
        if (vmm_status(vm->vmm, &st) >= 0)
                vm->pid = st.pid;
        snprintf(vm->address, sizeof vm->address, "%s:%d", n->host, vm->fwd_port);
        node_vm_state_set(vm, "running");
        /* a new QEMU: a fresh balloon at full size */
        vm->balloon_target_mib = 0;
        vm->balloon_manual = false;
        vm->idle_since_ms = vm->cpu_sample_ms = 0;
        return node_proto_started(vm->pid, vm->address);
}

const char *node_vm_strerror(int r) {
        return r == -ETIMEDOUT ? "timed out" : strerror(-r);
}

void node_vm_stale_kill(node_t *n, const char *name) {
        _cleanup_free_ char *run = node_vm_file(n, name, "run");
        vmm_config_t c = { .name = name, .run_dir = run };
        vmm_vm_t *stale = NULL;
        if (vmm_attach(n->driver, &c, 0, &stale) < 0)
                return;
        log_warn("vm %s: killing QEMU pid left by an interrupted command (no lease holds it)", name);
        vmm_kill(stale, 0);
        vmm_vm_free(stale);
        node_confine_release(n, name);
}
