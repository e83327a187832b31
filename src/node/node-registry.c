/* The node's VMs: the list of entries (n->vms, guarded by n->lock; each entry's own lock
 * serialises the commands on it) and their persistence. Each VM's state is persisted in
 * DATA/vms/NAME/node-vm.json after every change so that a restarted agent re-attaches to its
 * QEMU processes instead of losing them. */
#include <dirent.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-registry.h"
#include "node/node-vm.h"

/* An entry of the list, NULL if none. n->lock held. */
static node_vm_t *list_find(node_t *n, const char *name) {
        node_vm_t *vm = n->vms;
        while (vm && !streq(vm->name, name))
                vm = vm->next;
        return vm;
}

/* A new entry in the list, "new", or "deleted" as its tombstone has it. n->lock held. */
static node_vm_t *list_add(node_t *n, const char *name) {
        node_vm_t *vm = xcalloc(1, sizeof *vm);
        snprintf(vm->name, sizeof vm->name, "%s", name);
        snprintf(vm->state, sizeof vm->state, "new");
        pthread_mutex_init(&vm->lock, NULL);
        vm->node = n;
        const json_t *t = json_object_get(n->tombstones, name);
        if (t) {
                /* what a stale or repeated command needs is all a deleted VM keeps */
                snprintf(vm->state, sizeof vm->state, "deleted");
                vm->version = json_integer_value(json_object_get(t, "version"));
                snprintf(vm->last_kind, sizeof vm->last_kind, "%s", json_string_value(json_object_get(t, "last_kind")) ?: "");
                vm->last_version = json_integer_value(json_object_get(t, "last_version"));
                vm->last_result = json_incref(json_object_get(t, "last_result"));
                json_object_del(n->tombstones, name);
        }
        vm->next = n->vms;
        n->vms = vm;
        return vm;
}

static void entry_free(node_vm_t *vm) {
        vmm_vm_free(vm->vmm);
        json_decref(vm->config);
        json_decref(vm->last_result);
        json_decref(vm->staged);
        free(vm->memory_base);
        free(vm->disk_base);
        pthread_mutex_destroy(&vm->lock);
        free(vm);
}

/* Replaces a deleted entry nobody uses by its tombstone. n->lock held. */
static void list_bury(node_t *n, node_vm_t *vm) {
        if (!n->tombstones)
                n->tombstones = json_object();
        json_object_set_new(n->tombstones, vm->name,
                            json_pack("{s:I,s:s,s:I,s:O?}", "version", (json_int_t)vm->version, "last_kind",
                                      vm->last_kind, "last_version", (json_int_t)vm->last_version, "last_result",
                                      vm->last_result));
        for (node_vm_t **p = &n->vms; *p; p = &(*p)->next)
                if (*p == vm) {
                        *p = vm->next;
                        break;
                }
        entry_free(vm);
}

/* A referenced entry: the listed one, one revived from its tombstone, or (create) a new one. */
static node_vm_t *registry_get(node_t *n, const char *name, bool create) {
        pthread_mutex_lock(&n->lock);
        node_vm_t *vm = list_find(n, name);
        if (!vm && (create || json_object_get(n->tombstones, name)))
                vm = list_add(n, name);
        if (vm)
                vm->refs++;
        pthread_mutex_unlock(&n->lock);
        return vm;
}

node_vm_t *node_registry_find(node_t *n, const char *name) { return registry_get(n, name, false); }

node_vm_t *node_registry_get_or_create(node_t *n, const char *name) { return registry_get(n, name, true); }

void node_registry_release(node_vm_t *vm) {
        if (!vm)
                return;
        node_t *n = vm->node;
        pthread_mutex_lock(&n->lock);
        /* with no user left nobody holds vm->lock either: its state is settled */
        if (--vm->refs == 0 && streq(vm->state, "deleted"))
                list_bury(n, vm);
        pthread_mutex_unlock(&n->lock);
}

node_vm_t **node_registry_snapshot(node_t *n, size_t *ret_count) {
        pthread_mutex_lock(&n->lock);
        size_t count = 0;
        for (node_vm_t *vm = n->vms; vm; vm = vm->next)
                count++;
        node_vm_t **vms = xcalloc(count + 1, sizeof *vms);
        count = 0;
        for (node_vm_t *vm = n->vms; vm; vm = vm->next) {
                vm->refs++;
                vms[count++] = vm;
        }
        pthread_mutex_unlock(&n->lock);
        *ret_count = count;
        return vms;
}

void node_registry_snapshot_freep(node_vm_t ***vmsp) {
        if (!*vmsp)
                return;
        for (node_vm_t **p = *vmsp; *p; p++)
                node_registry_release(*p);
        free(*vmsp);
}

size_t node_registry_count(node_t *n) {
        pthread_mutex_lock(&n->lock);
        size_t count = 0;
        for (node_vm_t *vm = n->vms; vm; vm = vm->next)
                count++;
        pthread_mutex_unlock(&n->lock);
        return count;
}

bool node_registry_has_vmm(node_t *n) {
        pthread_mutex_lock(&n->lock);
        bool busy = false;
        for (node_vm_t *vm = n->vms; vm && !busy; vm = vm->next)
                busy = vm->vmm != NULL;
        pthread_mutex_unlock(&n->lock);
        return busy;
}

int node_registry_persist(node_t *n, node_vm_t *vm) {
        _cleanup_free_ char *dir = node_vm_dir(n, vm->name);
        if (streq(vm->state, "deleted"))
                return 0;
        mkdir_p(dir, 0755);
        _cleanup_free_ char *path = node_vm_file(n, vm->name, "node-vm.json");
        _cleanup_(json_decrefp) json_t *j = json_pack("{s:s,s:I,s:s,s:O?,s:i,s:s,s:I,s:O?,s:s,s:I,s:s?,s:s?}", "name", vm->name, "version",
                              (json_int_t)vm->version, "state", vm->state, "config", vm->config, "fwd_port",
                              vm->fwd_port, "last_kind", vm->last_kind, "last_version", (json_int_t)vm->last_version,
                              "last_result", vm->last_result, "address", vm->address, "pid", (json_int_t)vm->pid,
                              "memory_base", vm->memory_base, "disk_base", vm->disk_base);
        _cleanup_free_ char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        int r = s ? file_write_atomic(path, s, strlen(s)) : -ENOMEM;
        if (r < 0)
                log_error("cannot persist %s: %s", path, strerror(-r));
        return r;
}

void node_registry_forget(node_t *n, node_vm_t *vm) {
        node_vm_vmm_release(vm, true);
        node_vm_run_dir_reset(n, vm);
        node_disk_keep(n, vm->name); /* a disk just saved here serves its next activation here */
        _cleanup_free_ char *dir = node_vm_dir(n, vm->name);
        rm_rf(dir);
        /* once nobody uses the entry it becomes a tombstone (see node_registry_release) */
        node_vm_state_set(vm, "deleted");
        vm->fwd_port = 0;
}

/* One entry from its node-vm.json. */
static void load_one(node_t *n, const char *name, const json_t *j) {
        _cleanup_(node_registry_releasep) node_vm_t *ref = node_registry_get_or_create(n, name);
        _cleanup_(node_vm_unlockp) node_vm_t *vm = node_vm_lock(ref);
        vm->version = json_integer_value(json_object_get(j, "version"));
        node_vm_state_set(vm, json_string_value(json_object_get(j, "state")) ?: "stopped");
        vm->config = json_incref(json_object_get(j, "config"));
        vm->fwd_port = (int)json_integer_value(json_object_get(j, "fwd_port"));
        snprintf(vm->last_kind, sizeof vm->last_kind, "%s", json_string_value(json_object_get(j, "last_kind")) ?: "");
        vm->last_version = json_integer_value(json_object_get(j, "last_version"));
        vm->last_result = json_incref(json_object_get(j, "last_result"));
        const char *base = json_string_value(json_object_get(j, "memory_base"));
        vm->memory_base = base ? xstrdup(base) : NULL;
        const char *dbase = json_string_value(json_object_get(j, "disk_base"));
        vm->disk_base = dbase ? xstrdup(dbase) : NULL;
}

void node_registry_load(node_t *n) {
        _cleanup_free_ char *vms_dir = xasprintf("%s/vms", n->data);
        DIR *d = opendir(vms_dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!name_is_valid(de->d_name))
                        continue;
                _cleanup_free_ char *path = xasprintf("%s/%s/node-vm.json", vms_dir, de->d_name);
                json_t *j = json_load_file(path, 0, NULL);
                if (!j) {
                        /* an agent that died before it recorded the VM may have started a QEMU */
                        node_vm_stale_kill(n, de->d_name);
                        continue;
                }
                load_one(n, de->d_name, j);
                json_decref(j);
        }
        closedir(d);
}

void node_registry_free(node_t *n) {
        for (node_vm_t *vm = n->vms; vm;) {
                node_vm_t *next = vm->next;
                entry_free(vm);
                vm = next;
        }
        n->vms = NULL;
        json_decref(n->tombstones);
        n->tombstones = NULL;
}
