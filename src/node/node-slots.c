/* Warm slots: QEMU processes a production RM keeps started and waiting in --preconfig (see
 * vmm.h slot_start), so that an activation pays no process start. A slot fits VMs of one
 * "shape" (RAM size, vCPUs, image kernel), learnt from the last restore this node did; the
 * NIC forward port is the slot's, and the VM takes it over with the slot.
 *
 * A slot costs a QEMU process without guest RAM (its RAM is only created when a VM takes
 * it). Slots are refilled in the background, one at a time, and only while this RM runs no
 * VM: an RM busy serving pays nothing for them. A slot that died is dropped and replaced; an
 * activation that finds no fitting slot, or whose slot fails, starts QEMU as before.
 *
 * Each slot has its own directory DATA/slots/ID, never reused: the VM that takes a slot links
 * its run directory (DIR/run) to the slot's, and its QEMU keeps its files there. At start the
 * node kills and removes slots left by its previous run that no VM took. */
#include <dirent.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-internal.h"
#include "node/node-registry.h"

#define SLOT_REFILL_PERIOD_MS 200

static char *slots_dir(node_t *n) { return xasprintf("%s/slots", n->data); }

static bool str_equal(const char *a, const char *b) { return a == b || (a && b && streq(a, b)); }

static bool shape_equal(const node_slot_shape_t *a, const node_slot_shape_t *b) {
        return a->memory_mib == b->memory_mib && a->vcpus == b->vcpus && str_equal(a->kernel, b->kernel) &&
               str_equal(a->initrd, b->initrd) && str_equal(a->cmdline, b->cmdline);
}

static void shape_clear(node_slot_shape_t *s) {
        free(s->kernel);
        free(s->initrd);
        free(s->cmdline);
        *s = (node_slot_shape_t){ 0 };
}

static void shape_copy(node_slot_shape_t *dst, const node_slot_shape_t *src) {
        shape_clear(dst);
        *dst = (node_slot_shape_t){ .memory_mib = src->memory_mib, .vcpus = src->vcpus,
                                    .kernel = src->kernel ? xstrdup(src->kernel) : NULL,
                                    .initrd = src->initrd ? xstrdup(src->initrd) : NULL,
                                    .cmdline = src->cmdline ? xstrdup(src->cmdline) : NULL };
}

static void slot_free(node_slot_t *s) {
        if (!s)
                return;
        vmm_vm_free(s->vmm);
        free(s->dir);
        shape_clear(&s->shape);
        free(s);
}

/* Kills a slot nobody took and removes its directory, its uid and its cgroups. */
static void slot_discard(node_slot_t *s) {
        if (s->vmm)
                vmm_kill(s->vmm, 0);
        (void)rm_rf(s->dir);
        if (s->node) {
                _cleanup_free_ char *instance = node_confine_slot_instance(s->dir);
                node_confine_release(s->node, instance);
        }
        slot_free(s);
}

static int slot_start(node_t *n, const node_slot_shape_t *shape, node_slot_t **ret) {
        static atomic_int seq;
        _cleanup_free_ char *base = slots_dir(n);
        node_slot_t *s = xcalloc(1, sizeof *s);
        s->node = n;
        s->dir = xasprintf("%s/%lld-%d", base, (long long)time_wall_ms(), atomic_fetch_add(&seq, 1));
        shape_copy(&s->shape, shape);
        _cleanup_free_ char *run = xasprintf("%s/run", s->dir);
        int r = mkdir_p(run, 0700);
        s->fwd_port = r < 0 ? r : node_port_pick(n->host);
        if (s->fwd_port < 0) {
                slot_discard(s);
                return -EADDRINUSE;
        }
        _cleanup_free_ char *name = xasprintf("slot-%s", strrchr(s->dir, '/') + 1);
        vmm_config_t c = {
                .name = name,
                .run_dir = run,
                .memory_mib = (uint64_t)shape->memory_mib,
                .vcpus = (unsigned)shape->vcpus,
                .kernel = shape->kernel,
                .initrd = shape->initrd,
                .cmdline = shape->cmdline,
                .disk_format = "qcow2",
                .fwd_host = n->host,
                .fwd_port = s->fwd_port,
                .accel = n->accel,
        };
        _cleanup_free_ char *instance = node_confine_slot_instance(s->dir);
        cgroup_limits_t lim = node_confine_limits_of(shape->memory_mib, shape->vcpus, 0);
        node_confine_hold_t hold = { 0 };
        _cleanup_free_ char *msg = NULL;
        r = node_confine_begin(n, instance, &lim, &hold, &msg);
        if (r < 0) {
                log_warn("warm slot %s: %s", s->dir, msg ? msg : strerror(-r));
                slot_discard(s);
                return r;
        }
        if (hold.active)
                c.confine = &hold.vc;
        r = vmm_slot_start(n->driver, &c, 0, &s->vmm);
        node_confine_end(n, &hold, r >= 0);
        if (r < 0) {
                slot_discard(s);
                return r;
        }
        *ret = s;
        return 0;
}

node_slot_t *node_slot_take(node_t *n, const node_slot_shape_t *shape) {
        pthread_mutex_lock(&n->slots_lock);
        /* every restore teaches the shape the next slots will have */
        shape_copy(&n->slot_shape, shape);
        node_slot_t *found = NULL;
        for (node_slot_t **p = &n->slots; *p;) {
                node_slot_t *s = *p;
                vmm_status_t st = { 0 };
                bool alive = vmm_status(s->vmm, &st) >= 0 && st.state != VMM_RUN_GONE;
                if (!alive || (!found && shape_equal(&s->shape, shape))) {
                        *p = s->next;
                        n->n_slots--;
                        if (!alive) {
                                log_warn("slot %s died: replacing it", s->dir);
                                slot_discard(s);
                        } else
                                found = s;
                        continue;
                }
                p = &s->next;
        }
        pthread_mutex_unlock(&n->slots_lock);
        if (found)
                found->next = NULL;
        return found;
}

void node_slot_release(node_slot_t *s, bool used) {
        if (!s)
                return;
        if (!used) {
                slot_discard(s);
                return;
        }
        /* the VM owns the process and the directory now */
        s->vmm = NULL;
        slot_free(s);
}

/* Whether this node runs or is starting a VM. */
static bool node_busy(node_t *n) { return atomic_load(&n->launching) > 0 || node_registry_has_vmm(n); }

static void *refill_thread(void *arg) {
        node_t *n = arg;
        while (!n->stopping) {
                time_sleep_ms(SLOT_REFILL_PERIOD_MS);
                pthread_mutex_lock(&n->slots_lock);
                bool want = n->n_slots < n->slots_wanted && n->slot_shape.memory_mib > 0;
                node_slot_shape_t shape = { 0 };
                if (want)
                        shape_copy(&shape, &n->slot_shape);
                pthread_mutex_unlock(&n->slots_lock);
                if (!want || node_busy(n)) {
                        shape_clear(&shape);
                        continue;
                }
                node_slot_t *s = NULL;
                int r = slot_start(n, &shape, &s);
                shape_clear(&shape);
                if (r < 0) {
                        log_warn("cannot start a warm slot: %s", strerror(-r));
                        time_sleep_ms(5000);
                        continue;
                }
                pthread_mutex_lock(&n->slots_lock);
                s->next = n->slots;
                n->slots = s;
                n->n_slots++;
                pthread_mutex_unlock(&n->slots_lock);
        }
        return NULL;
}

/* Is dir the target of some VM's run directory link? */
static bool slot_dir_taken(node_t *n, const char *dir) {
        _cleanup_free_ char *vms = xasprintf("%s/vms", n->data);
        DIR *d = opendir(vms);
        if (!d)
                return false;
        _cleanup_free_ char *want = xasprintf("%s/run", dir);
        bool taken = false;
        struct dirent *de;
        while (!taken && (de = readdir(d))) {
                if (!name_is_valid(de->d_name))
                        continue;
                _cleanup_free_ char *link = xasprintf("%s/%s/run", vms, de->d_name);
                char target[4096];
                ssize_t len = readlink(link, target, sizeof target - 1);
                if (len > 0) {
                        target[len] = 0;
                        taken = streq(target, want);
                }
        }
        closedir(d);
        return taken;
}

int node_slots_start(node_t *n) {
        _cleanup_free_ char *dir = slots_dir(n);
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *path = xasprintf("%s/%s", dir, de->d_name);
                if (slot_dir_taken(n, path))
                        continue;
                _cleanup_free_ char *run = xasprintf("%s/run", path);
                vmm_config_t c = { .name = de->d_name, .run_dir = run };
                vmm_vm_t *vm = NULL;
                if (vmm_attach(n->driver, &c, 0, &vm) >= 0) {
                        log_info("killing the warm slot %s left by the previous agent", de->d_name);
                        vmm_kill(vm, 0);
                        vmm_vm_free(vm);
                }
                (void)rm_rf(path);
                _cleanup_free_ char *instance = node_confine_slot_instance(path);
                node_confine_release(n, instance);
        }
        if (d)
                closedir(d);
        if (n->slots_wanted > 0 && pthread_create(&n->slots_thread, NULL, refill_thread, n) != 0)
                return -EAGAIN;
        n->slots_thread_started = n->slots_wanted > 0;
        return 0;
}

void node_slots_stop(node_t *n) {
        if (n->slots_thread_started)
                pthread_join(n->slots_thread, NULL);
        n->slots_thread_started = false;
        pthread_mutex_lock(&n->slots_lock);
        while (n->slots) {
                node_slot_t *s = n->slots;
                n->slots = s->next;
                slot_discard(s);
        }
        n->n_slots = 0;
        shape_clear(&n->slot_shape);
        pthread_mutex_unlock(&n->slots_lock);
}
