/* The node's side of flash clones (see oracle-clone.c): a clone runs from its parent's
 * snapshot, its RAM the parent's memory file mapped copy-on-write (node_nest_memory_file) and
 * its disk a qcow2 overlay over the parent's disk, rebuilt once per snapshot as a read-only
 * base file under DATA/bases/DIGEST (durable: overlays name it as their backing file). At its
 * first save the clone's overlay is made standalone (a safe qemu-img rebase copies what it
 * still reads from the base), so its bundle never depends on a file of this node. Before a
 * clone serves, the guest agent gives it its own identity: name, hostname and a fresh random
 * seed, so that resuming one snapshot many times never hands out the same secrets. */
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-internal.h"

#define CLONE_AGENT_TIMEOUT_MS 5000
#define CLONE_SEED_BYTES 32

int node_clone_disk(node_t *n, const char *source, int64_t version, const json_t *disk_info, const char *disk,
                    const char *image_disk, const char *image_format, nest_transfer_stats_t *acc, char **ret_base,
                    char **ret_msg) {
        const char *digest = json_string_value(json_object_get(disk_info, "digest"));
        if (!bundle_sha256_is_valid(digest)) {
                *ret_msg = xasprintf("the disk of %s names no valid manifest digest", source);
                return -EINVAL;
        }
        _cleanup_free_ char *dir = xasprintf("%s/bases", n->data);
        _cleanup_free_ char *base = xasprintf("%s/%s", dir, digest);
        int r = mkdir_p(dir, 0755);
        if (r >= 0 && !file_exists(base)) {
                _cleanup_free_ char *tmp = xasprintf("%s.tmp", base);
                pthread_mutex_lock(&n->cache_lock);
                r = node_nest_pull_to_path(n, n->oracle, source, version, BUNDLE_FILE_DISK, disk_info, tmp, acc, NULL,
                                           NULL, ret_msg);
                if (r >= 0 && image_disk) {
                        /* the parent's overlay names the Nest's copy of the image: point it at ours */
                        char *argv[] = { "qemu-img", "rebase", "-u", "-F", (char *)image_format, "-b",
                                         (char *)image_disk, "-f", "qcow2", tmp, NULL };
                        r = node_qemu_img(argv, NODE_QEMU_IMG_QUICK_MS, ret_msg);
                }
                if (r >= 0 && (chmod(tmp, 0444) < 0 || rename(tmp, base) < 0)) {
                        r = negative_errno();
                        *ret_msg = xasprintf("cannot store %s: %s", base, strerror(-r));
                }
                if (r < 0)
                        unlink(tmp);
                else
                        (void)fsync_dir_of(base);
                pthread_mutex_unlock(&n->cache_lock);
        }
        if (r < 0)
                return r;
        unlink(disk);
        char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, (char *)disk, NULL };
        r = node_qemu_img(argv, NODE_QEMU_IMG_QUICK_MS, ret_msg);
        if (r >= 0)
                *ret_base = TAKE_PTR(base);
        return r;
}

int node_clone_detach_disk(const char *disk, const char *image_disk, const char *image_format, char **ret_msg) {
        if (image_disk) {
                char *argv[] = { "qemu-img", "rebase", "-q", "-f", "qcow2", "-F", (char *)image_format, "-b",
                                 (char *)image_disk, (char *)disk, NULL };
                return node_qemu_img(argv, NODE_QEMU_IMG_COPY_MS, ret_msg);
        }
        char *argv[] = { "qemu-img", "rebase", "-q", "-f", "qcow2", "-b", "", (char *)disk, NULL };
        return node_qemu_img(argv, NODE_QEMU_IMG_COPY_MS, ret_msg);
}

int node_clone_identity(node_vm_t *vm, char **ret_msg) {
        uint8_t seed[CLONE_SEED_BYTES];
        if (getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
                *ret_msg = xasprintf("vm \"%s\": no random seed for its identity: %m", vm->name);
                return -EIO;
        }
        char hex[2 * CLONE_SEED_BYTES + 1];
        for (size_t i = 0; i < sizeof seed; i++)
                snprintf(hex + 2 * i, 3, "%02x", seed[i]);
        _cleanup_free_ char *request = xasprintf("identity %s %s", vm->name, hex);
        _cleanup_free_ char *reply = NULL;
        int r = vmm_agent_call(vm->vmm, request, CLONE_AGENT_TIMEOUT_MS, &reply);
        if (r < 0) {
                *ret_msg = xasprintf("vm \"%s\": its guest did not take its new identity (%s%s%s), so it is not "
                                     "started: a clone must not serve with its parent's secrets",
                                     vm->name, r == -ETIMEDOUT ? "no answer from the guest agent" : strerror(-r),
                                     reply && *reply ? ": " : "", reply ? reply : "");
                return r;
        }
        log_info("vm %s: clone identity renewed by the guest agent", vm->name);
        return 0;
}
