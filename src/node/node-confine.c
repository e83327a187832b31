/* Implementation of node-confine.h. */
#include "node/node-confine.h"

#include <dirent.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "base/idclaim.h"
#include "base/log.h"
#include "base/util.h"
#include "node/node-internal.h"
#include "vmm/qemu/guest-uid.h"

#define SWEEP_EVERY 10 /* supervisor ticks (200 ms): a released QEMU's uid is free within 2 s */
/* A QEMU the node has just killed but did not start (adopted after a restart) is reaped by
 * init, not by us: until then its zombie still holds its uid. */
#define BUSY_WAIT_MS 2000

static const idclaim_space_t claims = { .dir = GUEST_UID_CLAIM_DIR, .first = GUEST_UID_FIRST, .count = GUEST_UID_COUNT };

char *node_confine_slot_instance(const char *dir) {
        const char *base = strrchr(dir, '/');
        return xasprintf("slot.%s", base ? base + 1 : dir);
}

char *node_confine_helper_instance(const char *vm) { return xasprintf("wb.%s", vm); }

cgroup_limits_t node_confine_limits_of(int64_t memory_mib, int64_t vcpus, int64_t cpu_limit) {
        return cgroup_limits_for((uint64_t)memory_mib, NODE_CONFINE_MEMORY_OVERHEAD_MIB, (unsigned)vcpus,
                                 (unsigned)cpu_limit, NODE_CONFINE_PIDS_BASE + (uint64_t)vcpus);
}

cgroup_limits_t node_confine_limits(const bundle_config_t *bc) {
        return node_confine_limits_of(bc->memory_mib, bc->vcpus, bc->cpu_limit);
}

static char *claim_key(const node_confine_t *c, const char *instance) { return xasprintf("%s%s", c->prefix, instance); }

/* idclaim_take, or idclaim_release when dirs is NULL and !take, retried while the uid is in use
 * for at most BUSY_WAIT_MS. */
static int claim_when_free(const char *key, bool take, char *const *dirs, uint32_t *ret_id) {
        int64_t deadline = time_now_ms() + BUSY_WAIT_MS;
        for (;;) {
                int r = take ? idclaim_take(&claims, key, dirs, ret_id) : idclaim_release(&claims, key);
                if (r != -EBUSY || time_now_ms() >= deadline)
                        return r;
                time_sleep_ms(20);
        }
}

static void busy_add(node_confine_t *c, const char *instance) {
        pthread_mutex_lock(&c->lock);
        *(char **)array_append(&c->busy, &c->n_busy, sizeof *c->busy) = xstrdup(instance);
        pthread_mutex_unlock(&c->lock);
}

static void busy_remove(node_confine_t *c, const char *instance) {
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < c->n_busy; i++)
                if (streq(c->busy[i], instance)) {
                        free(c->busy[i]);
                        c->busy[i] = c->busy[--c->n_busy];
                        break;
                }
        pthread_mutex_unlock(&c->lock);
}

static bool busy_has(node_confine_t *c, const char *instance) {
        pthread_mutex_lock(&c->lock);
        bool found = false;
        for (size_t i = 0; i < c->n_busy && !found; i++)
                found = streq(c->busy[i], instance);
        pthread_mutex_unlock(&c->lock);
        return found;
}

/* idclaim_sweep's keep: an instance being started. */
static bool sweep_keep(const char *key, void *userdata) {
        node_confine_t *c = userdata;
        return busy_has(c, key + strlen(c->prefix));
}

/* Groups below NODEKEY that no claim names: left by a crash between two steps. Empty ones are
 * removed (rmdir refuses one with processes). */
static void orphans_remove(node_confine_t *c) {
        idclaim_t *v = NULL;
        size_t n = 0;
        if (idclaim_list(&claims, c->prefix, &v, &n) < 0)
                return;
        for (size_t h = 0; h < c->cgroups.n; h++) {
                _cleanup_free_ char *dir = xasprintf("%s/%s", c->cgroups.h[h].base, c->key);
                DIR *d = opendir(dir);
                struct dirent *de;
                while (d && (de = readdir(d))) {
                        if (de->d_type != DT_DIR || de->d_name[0] == '.')
                                continue;
                        _cleanup_free_ char *group = xasprintf("%s/%s", dir, de->d_name);
                        bool named = false;
                        for (size_t i = 0; i < n && !named; i++)
                                for (char **g = v[i].dirs; g && *g && !named; g++)
                                        named = streq(*g, group);
                        if (!named) {
                                char *one[] = { group, NULL };
                                (void)cgroup_dirs_remove(one);
                        }
                }
                if (d)
                        closedir(d);
        }
        idclaim_list_free(v, n);
}

/* Whether a confined QEMU can open /dev/kvm: through a group (udev's root:kvm 0660). */
static bool kvm_reachable(void) {
        struct stat st;
        return stat("/dev/kvm", &st) == 0 && (st.st_mode & S_IRGRP) && (st.st_mode & S_IWGRP) && st.st_gid != 0;
}

int node_confine_init(node_t *n, bool wanted, const char *accel_want) {
        node_confine_t *c = &n->confine;
        pthread_mutex_init(&c->lock, NULL);
        if (n->driver != &vmm_qemu) {
                snprintf(c->reason, sizeof c->reason, "no VMM processes (fake driver)");
                return 0;
        }
        if (!wanted) {
                snprintf(c->reason, sizeof c->reason, "turned off: --no-confine or VMATRIX_CONFINE=0");
                log_warn("QEMU runs unconfined, as root: confinement is %s", c->reason);
                return 0;
        }
        if (geteuid() != 0) {
                snprintf(c->reason, sizeof c->reason, "not root");
                log_info("QEMU runs as this node's user, unconfined: the node is not root (no uid of its own, no "
                         "private mount namespace, no cgroup limits)");
                return 0;
        }
        if (streq(n->accel, "kvm") && !kvm_reachable()) {
                if (accel_want && streq(accel_want, "kvm")) {
                        log_error("a confined QEMU cannot open /dev/kvm: give it a group of its own (0660 root:kvm, "
                                  "as udev does), or run the node with --accel tcg or --no-confine");
                        return -EACCES;
                }
                log_warn("a confined QEMU cannot open /dev/kvm (it needs a group of its own, 0660 root:kvm): TCG "
                         "instead");
                n->accel = "tcg";
        }
        int r = mkdir_p(NODE_CONFINE_JAIL_DIR, 0755);
        _cleanup_free_ char *real = r >= 0 ? realpath(n->data, NULL) : NULL;
        if (!real || chmod(real, 0700) < 0) {
                r = r < 0 ? r : negative_errno();
                snprintf(c->reason, sizeof c->reason, "cannot set up (%s)", strerror(-r));
                log_error("QEMU runs unconfined: %s", c->reason);
                return 0;
        }
        c->prefix = xasprintf("%s/", real);
        /* the data directory's hash tells apart nodes of one name in two clusters on a host (the
         * same key as the node's guest firewall table) */
        c->key = xasprintf("%s-%08x", n->name, str_fnv1a32(real));
        c->backing_dirs = xcalloc(3, sizeof *c->backing_dirs);
        c->backing_dirs[0] = xasprintf("%s/images", real);
        c->backing_dirs[1] = xasprintf("%s/bases", real);
        char where[256] = "";
        r = cgroup_layout_detect(&c->cgroups);
        char names[64];
        if (r < 0)
                snprintf(c->reason, sizeof c->reason, "no cgroup tree: no memory, cpu or pids limits");
        else if (c->cgroups.missing)
                snprintf(c->reason, sizeof c->reason, "no cgroup controller for %s: no limit of it",
                         cgroup_controllers_format(c->cgroups.missing, names, sizeof names));
        for (size_t i = 0; r >= 0 && i < c->cgroups.n; i++) {
                size_t len = strlen(where);
                snprintf(where + len, sizeof where - len, "%s%s%s (%s)", len ? ", " : "", c->cgroups.h[i].v2 ? "v2 " : "v1 ",
                         cgroup_controllers_format(c->cgroups.h[i].controllers, names, sizeof names), c->cgroups.h[i].base);
        }
        c->on = true;
        log_info("confining QEMU: a uid of its own from %u, a private mount namespace, no capabilities, seccomp; "
                 "cgroups %s/%s: %s%s%s",
                 GUEST_UID_FIRST, c->key, "INSTANCE", *where ? where : "none", *c->reason ? "; " : "", c->reason);
        orphans_remove(c);
        c->sweep_tick = SWEEP_EVERY;
        node_confine_sweep(n);
        return 0;
}

void node_confine_free(node_t *n) {
        node_confine_t *c = &n->confine;
        free(c->key);
        free(c->prefix);
        cgroup_layout_clear(&c->cgroups);
        strv_free(c->backing_dirs);
        for (size_t i = 0; i < c->n_busy; i++)
                free(c->busy[i]);
        free(c->busy);
        pthread_mutex_destroy(&c->lock);
        *c = (node_confine_t){ 0 };
}

static void hold_clear(node_confine_hold_t *hold) {
        free(hold->instance);
        strv_free(hold->cgroups);
        *hold = (node_confine_hold_t){ 0 };
}

static void hold_set(node_confine_t *c, node_confine_hold_t *hold, const char *instance, char **dirs, uint32_t uid) {
        hold->instance = xstrdup(instance);
        hold->cgroups = dirs;
        hold->vc = (vmm_confine_t){ .uid = uid, .gid = uid, .jail_dir = NODE_CONFINE_JAIL_DIR, .cgroups = hold->cgroups,
                                    .backing_dirs = c->backing_dirs };
        hold->active = true;
}

/* The end of node_confine_begin and node_confine_take_slot: the hold on success (it takes
 * dirs), nothing kept on failure. */
static int hold_finish(node_confine_t *c, node_confine_hold_t *hold, const char *instance, char **dirs, uint32_t uid,
                       int r) {
        if (r < 0) {
                strv_free(dirs);
                busy_remove(c, instance);
                return r;
        }
        hold_set(c, hold, instance, dirs, uid);
        return 0;
}

static char **group_dirs(const node_confine_t *c, const char *instance) {
        return cgroup_group_dirs(&c->cgroups, c->key, instance);
}

int node_confine_begin(node_t *n, const char *instance, const cgroup_limits_t *lim, node_confine_hold_t *hold,
                       char **ret_msg) {
        node_confine_t *c = &n->confine;
        *hold = (node_confine_hold_t){ 0 };
        if (!c->on)
                return 0;
        busy_add(c, instance);
        _cleanup_free_ char *key = claim_key(c, instance);
        char **dirs = group_dirs(c, instance);
        uint32_t uid = 0;
        int r = claim_when_free(key, true, dirs, &uid);
        if (r < 0)
                *ret_msg = r == -EBUSY ? xasprintf("%s: a QEMU of it still runs under its uid", instance)
                                       : xasprintf("%s: cannot claim a uid in %s: %s", instance, claims.dir, strerror(-r));
        if (r >= 0 && (r = cgroup_group_create(&c->cgroups, c->key, instance, lim)) < 0) {
                *ret_msg = xasprintf("%s: cannot create its cgroup %s: %s", instance, dirs[0], strerror(-r));
                (void)idclaim_release(&claims, key);
        }
        return hold_finish(c, hold, instance, dirs, uid, r);
}

int node_confine_take_slot(node_t *n, const char *slot_instance, const char *vm, pid_t pid,
                           const cgroup_limits_t *lim, node_confine_hold_t *hold, char **ret_msg) {
        node_confine_t *c = &n->confine;
        *hold = (node_confine_hold_t){ 0 };
        if (!c->on)
                return 0;
        busy_add(c, vm);
        _cleanup_free_ char *from = claim_key(c, slot_instance), *to = claim_key(c, vm);
        char **dirs = group_dirs(c, vm);
        uint32_t uid = 0;
        /* the VM's earlier QEMU is gone (the node killed it): its claim goes first */
        int r = claim_when_free(to, false, NULL, NULL);
        if (r < 0)
                *ret_msg = xasprintf("%s: a QEMU of it still runs under its uid", vm);
        if (r >= 0 && (r = idclaim_rename(&claims, from, to, dirs, &uid)) < 0)
                *ret_msg = xasprintf("%s: the claim of slot %s: %s", vm, slot_instance, strerror(-r));
        if (r >= 0 && (r = cgroup_group_move(&c->cgroups, c->key, slot_instance, vm, pid, lim)) < 0)
                *ret_msg = xasprintf("%s: cannot move slot %s into its cgroup: %s", vm, slot_instance, strerror(-r));
        return hold_finish(c, hold, vm, dirs, uid, r);
}

void node_confine_end(node_t *n, node_confine_hold_t *hold, bool ok) {
        if (hold->active) {
                busy_remove(&n->confine, hold->instance);
                if (!ok)
                        node_confine_release(n, hold->instance);
        }
        hold_clear(hold);
}

void node_confine_release(node_t *n, const char *instance) {
        node_confine_t *c = n ? &n->confine : NULL;
        if (!c || !c->on || busy_has(c, instance))
                return;
        _cleanup_free_ char *key = claim_key(c, instance);
        int r = idclaim_release(&claims, key);
        if (r < 0 && r != -EBUSY)
                log_warn("%s: cannot release its uid and cgroups: %s", instance, strerror(-r));
}

void node_confine_sweep(node_t *n) {
        node_confine_t *c = &n->confine;
        if (!c->on || ++c->sweep_tick < SWEEP_EVERY)
                return;
        c->sweep_tick = 0;
        int r = idclaim_sweep(&claims, c->prefix, sweep_keep, c);
        if (r > 0)
                log_debug("released the uids and cgroups of %d QEMU(s) that are gone", r);
        else if (r < 0)
                log_warn("cannot sweep the uid claims in %s: %s", claims.dir, strerror(-r));
}
