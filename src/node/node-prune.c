/* Bounded disk use on an RM (node-prune.h). What a node keeps besides the VMs it holds is a
 * cache: chunks of images and bundles (DATA/cache), snapshot memory files rebuilt from them
 * (DATA/memory/DIGEST), clones' read-only disk bases (DATA/bases/DIGEST) and images rebuilt for
 * QEMU (DATA/images/NAME). Each can be fetched or rebuilt again, so when the total passes the
 * cap the least recently used go first, measured by the files' mtime (uses touch them: a
 * launch maps a snapshot by its path, and a rebuild writes it). What a held VM needs is found
 * from the registry: its memory_base, its disk_base, its image. Launches hold n->launching;
 * pruning waits for none and takes the memory and image locks, so no launch can pick a file
 * that is being removed. */
#include "node/node-prune.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "nest/gc.h"
#include "nest/manifest.h"
#include "node/node-registry.h"
#include "node/node-vm.h"

#define PRUNE_INTERVAL_MS 30000
#define PRUNE_MAX_CANDIDATES 100000

typedef struct candidate {
        char *path;
        int64_t mtime;
        uint64_t bytes;
} candidate_t;

/* Bytes a file or tree takes on disk (holes not counted), 0 when it is gone. */
static uint64_t cache_usage(node_t *n);

static uint64_t disk_usage(const char *path) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return 0;
        uint64_t total = (uint64_t)st.st_blocks * 512;
        if (!S_ISDIR(st.st_mode))
                return total;
        DIR *d = opendir(path);
        if (!d)
                return total;
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
                        _cleanup_free_ char *child = xasprintf("%s/%s", path, de->d_name);
                        total += disk_usage(child);
                }
        closedir(d);
        return total;
}

uint64_t node_prune_usage(node_t *n) { return cache_usage(n); }

static uint64_t cache_usage(node_t *n) {
        static const char *const dirs[] = { "cache", "memory", "bases", "images", "staged" };
        uint64_t total = 0;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", n->data, dirs[i]);
                total += disk_usage(p);
        }
        return total;
}

/* What the held VMs need: their snapshot and base paths and image names, as one JSON set, or
 * NULL when a VM is busy with a command (its paths may be changing: try again later). */
static json_t *needed_by_vms(node_t *n) {
        json_t *need = json_object();
        _cleanup_(node_registry_snapshot_freep) node_vm_t **vms = node_registry_snapshot(n, &(size_t){ 0 });
        for (size_t i = 0; vms && vms[i]; i++) {
                _cleanup_(node_vm_unlockp) node_vm_t *vm = node_vm_trylock(vms[i]);
                if (!vm) {
                        json_decref(need);
                        return NULL;
                }
                if (streq(vm->state, "deleted"))
                        continue;
                if (vm->memory_base)
                        json_object_set_new(need, vm->memory_base, json_true());
                if (vm->disk_base)
                        json_object_set_new(need, vm->disk_base, json_true());
                const char *image = json_string_value(json_object_get(vm->config, "image"));
                if (image) {
                        _cleanup_free_ char *p = xasprintf("%s/images/%s", n->data, image);
                        json_object_set_new(need, p, json_true());
                }
                /* a VM's own manifests in the cache (staged for a migration) */
                _cleanup_free_ char *key = xasprintf("vm:%s", vm->name);
                json_object_set_new(need, key, json_true());
        }
        return need;
}

static void candidates_add(candidate_t **list, size_t *n, const char *dir, const json_t *need) {
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d)) && *n < PRUNE_MAX_CANDIDATES) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *p = xasprintf("%s/%s", dir, de->d_name);
                struct stat st;
                if (json_object_get(need, p) || lstat(p, &st) < 0)
                        continue;
                candidate_t *c = array_append(list, n, sizeof *c);
                c->path = TAKE_PTR(p);
                c->mtime = (int64_t)st.st_mtime;
                c->bytes = disk_usage(c->path);
        }
        closedir(d);
}

static int candidate_cmp(const void *a, const void *b) {
        const candidate_t *x = a, *y = b;
        return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Drops the cached manifests of VMs this node does not hold and of images none of them uses,
 * then evicts segments until the cache is `over` bytes smaller (what a kept manifest names is
 * copied forward). */
static void prune_chunks(node_t *n, const json_t *need, uint64_t over, node_prune_stats_t *st) {
        nest_manifest_key_t *keys = NULL;
        size_t nk = 0;
        if (nest_manifest_list(n->cache, NULL, &keys, &nk) < 0)
                return;
        for (size_t i = 0; i < nk; i++) {
                _cleanup_free_ char *vm_key = xasprintf("vm:%s", keys[i].vm);
                _cleanup_free_ char *image = xasprintf("%s/images/%s", n->data, keys[i].vm);
                bool needed = keys[i].version == 0 ? json_object_get(need, image) != NULL
                                                   : json_object_get(need, vm_key) != NULL;
                if (needed)
                        continue;
                if (nest_manifest_delete(n->cache, keys[i].vm, keys[i].version, keys[i].file) >= 0)
                        st->manifests_removed++;
        }
        free(keys);
        nest_store_stats_t cs;
        if (nest_store_stats(n->cache, &cs) >= 0 && nest_store_is_cache(n->cache)) {
                nest_seg_evict_stats_t es = { 0 };
                int r = nest_cache_evict(n->cache, cs.stored_bytes > over ? cs.stored_bytes - over : 0, 5000, &es);
                if (r != -EINVAL) {
                        st->chunks_removed += es.chunks_removed;
                        st->bytes_removed += es.bytes_removed;
                        return;
                }
        }
        nest_gc_options_t opts = NEST_GC_OPTIONS_DEFAULT;
        opts.grace_s = 60; /* a transfer that just wrote chunks finds them still */
        opts.lock_wait_ms = 5000;
        nest_gc_stats_t gs = { 0 };
        if (nest_gc(n->cache, &opts, &gs) >= 0) {
                st->chunks_removed += gs.chunks_removed;
                st->bytes_removed += gs.bytes_removed;
        }
}

int node_prune(node_t *n, uint64_t max_bytes, node_prune_stats_t *ret) {
        node_prune_stats_t st = { .used_before = cache_usage(n) };
        st.used_after = st.used_before;
        if (st.used_before <= max_bytes) {
                *ret = st;
                return 0;
        }
        pthread_mutex_lock(&n->memory_lock);
        pthread_mutex_lock(&n->cache_lock);
        int r = 0;
        _cleanup_(json_decrefp) json_t *need = NULL; /* before any goto: its cleanup runs at out */
        if (atomic_load(&n->launching) > 0) {
                r = -EBUSY;
                goto out;
        }
        uint64_t target = max_bytes / 10 * 9;
        need = needed_by_vms(n);
        if (!need) {
                r = -EBUSY;
                goto out;
        }
        candidate_t *cands = NULL;
        size_t nc = 0;
        static const char *const dirs[] = { "memory", "bases", "images", "staged" };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *dir = xasprintf("%s/%s", n->data, dirs[i]);
                candidates_add(&cands, &nc, dir, need);
        }
        if (nc > 0)
                qsort(cands, nc, sizeof *cands, candidate_cmp);
        uint64_t used = st.used_before;
        for (size_t i = 0; i < nc; i++) {
                if (used > target && rm_rf(cands[i].path) >= 0) {
                        used -= MIN(used, cands[i].bytes);
                        st.files_removed++;
                        st.bytes_removed += cands[i].bytes;
                        log_info("cache over its cap: removed %s (%llu bytes)", cands[i].path,
                                 (unsigned long long)cands[i].bytes);
                }
                free(cands[i].path);
        }
        free(cands);
        if (used > target)
                prune_chunks(n, need, used - target, &st);
        st.used_after = cache_usage(n);
out:
        pthread_mutex_unlock(&n->cache_lock);
        pthread_mutex_unlock(&n->memory_lock);
        *ret = st;
        return r;
}

void *node_prune_thread(void *arg) {
        node_t *n = arg;
        int64_t next = 0;
        while (!n->stopping) {
                if (n->cache_max > 0 && time_now_ms() >= next) {
                        node_prune_stats_t st;
                        int r = node_prune(n, n->cache_max, &st);
                        if (r >= 0 && st.used_before > n->cache_max)
                                log_info("cache pruned from %llu to %llu bytes (cap %llu): %llu files, %llu manifests, "
                                         "%llu chunks",
                                         (unsigned long long)st.used_before, (unsigned long long)st.used_after,
                                         (unsigned long long)n->cache_max, (unsigned long long)st.files_removed,
                                         (unsigned long long)st.manifests_removed,
                                         (unsigned long long)st.chunks_removed);
                        /* busy: try again soon, not in 30 s */
                        next = time_now_ms() + (r == -EBUSY ? 2000 : PRUNE_INTERVAL_MS);
                }
                time_sleep_ms(200);
        }
        return NULL;
}
