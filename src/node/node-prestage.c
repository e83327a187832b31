/* Pre-staging (POST /v1/vms/NAME/prestage, the Oracle's identity): a VM's snapshot is made local
 * ahead of its activation on this RM, so that activation costs what it costs on the RM that saved
 * it. The snapshot's memory file is built (DATA/memory/DIGEST, what a restore maps), its disk is
 * built and pointed at this node's image (DATA/staged/DIGEST.qcow2, which node_launch_disk takes
 * as it is) and its saved state's chunks are put into the cache. Nothing else: no registry entry,
 * no lease, no VM directory; what was staged is a cache like any other, pruned least recently
 * used first, and never at the cost of what a held VM needs (node_prune). */
#include "node/node-prestage.h"

#include <stdatomic.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-prune.h"

/* No file of a bundle is larger (a bound on what a body may claim). */
#define PRESTAGE_FILE_MAX (1ull << 40)
#define PRESTAGE_BPS_MAX 10000000000ll

static int file_size_of(const json_t *info, uint64_t *ret) {
        const json_t *size = json_object_get(info, "size");
        if (!info)
                return 0;
        if (!json_is_integer(size) || json_integer_value(size) < 0 ||
            (uint64_t)json_integer_value(size) > PRESTAGE_FILE_MAX ||
            !bundle_sha256_is_valid(json_string_value(json_object_get(info, "digest"))))
                return -EINVAL;
        *ret = (uint64_t)json_integer_value(size);
        return 0;
}

int node_prestage_parse(const json_t *body, const char *name, const char *oracle, node_prestage_t *ret,
                        char **ret_msg) {
        node_prestage_t p = { 0 };
        int r = node_proto_parse(NODE_CMD_RUN, body, name, oracle, &p.cmd, ret_msg);
        if (r < 0)
                return r;
        if (p.cmd.run.mode != NODE_RUN_RESTORE || !streq(p.cmd.run.source, name)) {
                *ret_msg = xasprintf("prestage of vm \"%s\" needs mode restore and a bundle of its own", name);
                return -EINVAL;
        }
        const json_t *files = p.cmd.run.files;
        if (file_size_of(json_object_get(files, BUNDLE_FILE_MEMORY), &p.memory_bytes) < 0 ||
            file_size_of(json_object_get(files, BUNDLE_FILE_DISK), &p.disk_bytes) < 0 ||
            file_size_of(json_object_get(files, BUNDLE_FILE_STATE), &p.state_bytes) < 0) {
                *ret_msg = xasprintf("prestage of vm \"%s\": each file needs a digest and a size within 1 TiB", name);
                return -EINVAL;
        }
        const json_t *bps = json_object_get(body, "max_bps");
        if (bps && (!json_is_integer(bps) || json_integer_value(bps) < 0 ||
                    json_integer_value(bps) > PRESTAGE_BPS_MAX)) {
                *ret_msg = xstrdup("max_bps must be an integer from 0 (unbounded) to 10000000000");
                return -EINVAL;
        }
        p.max_bps = bps ? (uint64_t)json_integer_value(bps) : 0;
        *ret = p;
        return 0;
}

/* The staged disk of info (a pulled disk pointed at this node's image), built unless present. */
static int stage_disk(node_t *n, const node_cmd_run_t *run, const json_t *info, uint64_t max_bps,
                      nest_transfer_stats_t *acc, char **ret_msg) {
        const char *digest = json_string_value(json_object_get(info, "digest"));
        _cleanup_free_ char *staged = node_disk_staged_path(n, digest);
        if (file_exists(staged))
                return 0;
        _cleanup_free_ char *dir = xasprintf("%s/staged", n->data);
        int r = mkdir_p(dir, 0700);
        if (r < 0) {
                *ret_msg = xasprintf("cannot create %s: %s", dir, strerror(-r));
                return r;
        }
        /* never under the final name before it names our image */
        _cleanup_free_ char *pulled = xasprintf("%s.pulled", staged);
        r = node_nest_pull_to_path_paced(n, n->oracle, run->source, run->bundle_version, BUNDLE_FILE_DISK, info, pulled,
                                         max_bps, acc, NULL, NULL, ret_msg);
        if (r >= 0 && streq(run->bc.boot, "disk")) {
                _cleanup_free_ char *image_disk = node_cache_image_path(n, run->bc.image, "disk");
                char *argv[] = { "qemu-img", "rebase", "-u", "-F", (char *)run->bc.image_format, "-b", image_disk,
                                 "-f", "qcow2", pulled, NULL };
                r = node_qemu_img(argv, NODE_QEMU_IMG_QUICK_MS, ret_msg);
        }
        if (r >= 0 && rename(pulled, staged) < 0)
                r = negative_errno();
        if (r < 0) {
                unlink(pulled);
                if (!*ret_msg)
                        *ret_msg = xasprintf("staging the disk: %s", strerror(-r));
        }
        return r;
}

int node_prestage(node_t *n, const char *name, const node_prestage_t *p, json_t **ret, char **ret_msg) {
        const node_cmd_run_t *run = &p->cmd.run;
        const json_t *memory = json_object_get(run->files, BUNDLE_FILE_MEMORY);
        const json_t *disk = json_object_get(run->files, BUNDLE_FILE_DISK);
        const json_t *state = json_object_get(run->files, BUNDLE_FILE_STATE);
        _cleanup_free_ char *mdir = node_nest_memory_dir(n);
        _cleanup_free_ char *mpath = xasprintf("%s/%s", mdir, json_string_value(json_object_get(memory, "digest")));
        _cleanup_free_ char *dpath =
                disk ? node_disk_staged_path(n, json_string_value(json_object_get(disk, "digest"))) : NULL;
        uint64_t need = p->state_bytes; /* at most: some of its chunks may be cached */
        if (!file_exists(mpath))
                need += p->memory_bytes;
        if (dpath && !file_exists(dpath))
                need += p->disk_bytes;
        bool present = need == p->state_bytes;
        if (n->cache_max > 0) {
                uint64_t used = node_prune_usage(n);
                if (used + need > n->cache_max && need < n->cache_max) {
                        /* make room: never from what a held VM needs (node_prune's rule) */
                        node_prune_stats_t st;
                        (void)node_prune(n, n->cache_max - need, &st);
                        used = node_prune_usage(n);
                }
                if (used + need > n->cache_max) {
                        *ret_msg = xasprintf("vm \"%s\": its snapshot (%llu bytes to stage) does not fit in this RM's "
                                             "cache (%llu of %llu bytes used by what it must keep)",
                                             name, (unsigned long long)need, (unsigned long long)used,
                                             (unsigned long long)n->cache_max);
                        return -ENOSPC;
                }
        }
        atomic_fetch_add(&n->launching, 1); /* no prune while we write */
        nest_transfer_stats_t moved = { 0 }, mem_moved = { 0 };
        int64_t t0 = time_now_ms();
        _cleanup_free_ char *path = NULL;
        int r = node_nest_memory_file_paced(n, n->oracle, name, run->bundle_version, memory, p->max_bps, &mem_moved,
                                            NULL, NULL, &path, ret_msg);
        int64_t t1 = time_now_ms();
        if (r >= 0)
                r = node_cache_image(n, run->image, ret_msg);
        if (r >= 0 && disk)
                r = stage_disk(n, run, disk, p->max_bps, &moved, ret_msg);
        int64_t t2 = time_now_ms();
        if (r >= 0)
                r = node_nest_pull_chunks(n, n->oracle, name, run->bundle_version, BUNDLE_FILE_STATE, state, p->max_bps,
                                          &moved, ret_msg);
        int64_t t3 = time_now_ms();
        atomic_fetch_sub(&n->launching, 1);
        if (r < 0)
                return r;
        moved.bytes_transferred += mem_moved.bytes_transferred;
        moved.chunks_transferred += mem_moved.chunks_transferred;
        log_info("vm %s v%lld staged here: %llu bytes fetched (memory %lld ms, disk %lld ms, state %lld ms)", name,
                 (long long)run->bundle_version, (unsigned long long)moved.bytes_transferred, (long long)(t1 - t0),
                 (long long)(t2 - t1), (long long)(t3 - t2));
        *ret = json_pack("{s:b,s:I,s:I,s:I,s:I,s:I}", "present", present, "memory_ms", (json_int_t)(t1 - t0), "disk_ms",
                         (json_int_t)(t2 - t1), "state_ms", (json_int_t)(t3 - t2), "bytes_transferred",
                         (json_int_t)moved.bytes_transferred, "chunks_transferred",
                         (json_int_t)moved.chunks_transferred);
        return 0;
}
