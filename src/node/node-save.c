/* save (suspend, optionally into the Nest) and stop (power off, its disk into the Nest). A VM
 * that runs on a snapshot mapped copy-on-write has its memory written back into a file of its
 * own first, and a clone's disk overlay is made standalone before its first bundle. */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-command.h"
#include "node/node-launch.h"
#include "node/node-registry.h"
#include "node/node-save.h"
#include "node/node-vm.h"
#include "vmm/qemu/qemu-confine.h"

#define SHUTDOWN_TIMEOUT_MS 5000

/* The virtual size of a qcow2 image, from its header (big-endian u64 at byte 24). */
static int qcow2_virtual_size(const char *path, uint64_t *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        uint8_t h[32];
        if (fd < 0)
                return negative_errno();
        if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h, "QFI\xfb", 4) != 0)
                return -EINVAL;
        uint64_t size = 0;
        for (int i = 24; i < 32; i++)
                size = size << 8 | h[i];
        *ret = size;
        return 0;
}

/* After a save into the Nest the VM's memory file is that bundle's snapshot: it becomes the
 * node's read-only copy for the digest (node_nest_memory_file), so activating or cloning this
 * version here again maps it at once instead of rebuilding 128 MiB+ from chunks. */
static void memory_keep_as_snapshot(node_t *n, const char *name, const json_t *info) {
        const char *digest = json_string_value(json_object_get(info, "digest"));
        if (!bundle_sha256_is_valid(digest))
                return;
        _cleanup_free_ char *mem = node_vm_file(n, name, "memory");
        _cleanup_free_ char *mdir = node_nest_memory_dir(n);
        _cleanup_free_ char *snap = xasprintf("%s/%s", mdir, digest);
        /* the node's again: a confined QEMU (another uid since) owned it */
        if (file_exists(snap) || chown(mem, getuid(), getgid()) < 0 || chmod(mem, 0444) < 0 || rename(mem, snap) < 0)
                unlink(mem);
}

/* Makes a clone's overlay standalone (its QEMU is saved, which released the image). */
static int clone_disk_detach(node_t *n, node_vm_t *vm, const char *disk_path, char **ret_msg) {
        bundle_config_t bc;
        if (bundle_config_from_json(vm->config, &bc) < 0) {
                *ret_msg = xasprintf("vm \"%s\": malformed vm.json", vm->name);
                return -EINVAL;
        }
        _cleanup_free_ char *image_disk = streq(bc.boot, "disk") ? node_cache_image_path(n, bc.image, "disk") : NULL;
        int64_t t0 = time_now_ms();
        /* the rebase reads whatever backing file the header names, as root, into the disk; a
         * confined QEMU wrote that header */
        _cleanup_free_ char *bad = NULL;
        int r = n->confine.on ? qemu_confine_backing_check(disk_path, n->confine.backing_dirs, &bad) : 0;
        if (r < 0) {
                *ret_msg = xasprintf("vm \"%s\": its disk names a backing file %s outside this RM's images and bases: "
                                     "not rebased", vm->name, bad ? bad : "");
                return r;
        }
        r = node_clone_detach_disk(disk_path, image_disk, bc.image_format, ret_msg);
        if (r < 0)
                return r;
        log_info("vm %s: clone disk made standalone in %lld ms", vm->name, (long long)(time_now_ms() - t0));
        node_vm_disk_base_set(vm, NULL);
        node_registry_persist(n, vm);
        return 0;
}

typedef struct stream_save {
        vmm_vm_t *vmm;
        const char *fifo;
        int result;
} stream_save_t;

static void *stream_save_thread(void *arg) {
        stream_save_t *s = arg;
        s->result = vmm_save(s->vmm, s->fifo, VMM_SAVE_STREAM | VMM_ALL_RAM);
        return NULL;
}

/* Saves a VM that runs on a snapshot mapped copy-on-write (vm->memory_base). Its changes live
 * in its QEMU's private pages, which QEMU 7.2 saves only by putting all RAM in the stream. So
 * they are written back into a memory file of its own: the stream flows through a FIFO into a
 * helper QEMU whose RAM is DIR/memory.new (shared), and the helper, paused, then saves device
 * state only, as any VM with its own memory file does. The helper gets a throwaway disk of the
 * same size (the stream carries no disk data, and the VM's disk stays locked by its QEMU) and
 * no port forward. The snapshot file is never written. On success DIR/memory is the VM's RAM,
 * state_path its device state, and the VM's QEMU is saved (paused); on failure it is paused and
 * the caller continues it. */
static int memory_write_back(node_t *n, node_vm_t *vm, const char *state_path, char **ret_msg) {
        int64_t t0 = time_now_ms();
        _cleanup_free_ char *dir = node_vm_dir(n, vm->name);
        _cleanup_free_ char *fifo = node_vm_file(n, vm->name, "write-back.fifo");
        _cleanup_free_ char *run = node_vm_file(n, vm->name, "write-back");
        _cleanup_free_ char *mem_new = node_vm_file(n, vm->name, "memory.new");
        _cleanup_free_ char *mem = node_vm_file(n, vm->name, "memory");
        _cleanup_free_ char *scratch = xasprintf("%s/write-back/disk.qcow2", dir);
        node_launch_t l = { 0 };
        _cleanup_free_ char *helper_instance = node_confine_helper_instance(vm->name);
        int r = node_launch_prepare(n, vm, &l, ret_msg);
        uint64_t disk_size = 0;
        if (r >= 0 && (r = qcow2_virtual_size(l.disk, &disk_size)) < 0)
                *ret_msg = xasprintf("vm \"%s\": cannot read the size of %s: %s", vm->name, l.disk, strerror(-r));
        (void)rm_rf(run);
        if (r >= 0 && (r = mkdir_p(run, 0700)) < 0)
                *ret_msg = xasprintf("cannot create %s: %s", run, strerror(-r));
        if (r >= 0) {
                _cleanup_free_ char *size = xasprintf("%" PRIu64, disk_size);
                char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", scratch, size, NULL };
                r = node_qemu_img(argv, NODE_QEMU_IMG_QUICK_MS, ret_msg);
        }
        unlink(mem_new);
        unlink(fifo);
        if (r >= 0 && mkfifo(fifo, 0600) < 0) {
                r = negative_errno();
                *ret_msg = xasprintf("cannot create %s: %s", fifo, strerror(-r));
        }
        vmm_vm_t *helper = NULL;
        /* a QEMU of its own: its own uid and cgroups, with the VM's limits */
        if (r >= 0)
                r = node_launch_confine(n, &l, helper_instance, ret_msg);
        if (r >= 0) {
                vmm_config_t hc = l.vc;
                hc.run_dir = run;
                hc.memory_path = mem_new;
                hc.memory_private = false;
                hc.disk = scratch;
                hc.fwd_host = NULL;
                hc.fwd_port = 0;
                stream_save_t ss = { .vmm = vm->vmm, .fifo = fifo };
                pthread_t t;
                if (pthread_create(&t, NULL, stream_save_thread, &ss) != 0) {
                        r = -EAGAIN;
                        *ret_msg = xasprintf("vm \"%s\": cannot start the write-back", vm->name);
                } else {
                        r = vmm_restore(n->driver, &hc, fifo, VMM_RESTORE_PAUSED | VMM_ALL_RAM, &helper);
                        if (r < 0) {
                                /* the helper never opened the FIFO: let the writer through to EPIPE */
                                int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                                pthread_join(t, NULL);
                                if (fd >= 0)
                                        close(fd);
                        } else
                                pthread_join(t, NULL);
                        if (r >= 0 && ss.result < 0)
                                r = ss.result;
                        if (r >= 0)
                                r = vmm_save(helper, state_path, 0);
                        if (r < 0)
                                *ret_msg = xasprintf("vm \"%s\": writing its memory back failed: %s (see %s/qemu.log)",
                                                     vm->name, node_vm_strerror(r), run);
                }
        }
        if (helper) {
                vmm_kill(helper, 0);
                vmm_vm_free(helper);
        }
        node_launch_confine_end(n, &l, false); /* the helper is gone: its uid and cgroups go too */
        unlink(fifo);
        if (r >= 0 && rename(mem_new, mem) < 0)
                r = negative_errno();
        if (r >= 0) {
                (void)rm_rf(run);
                node_vm_memory_base_set(vm, NULL);
                log_info("vm %s: memory written back into its own file in %lld ms", vm->name,
                         (long long)(time_now_ms() - t0));
        } else
                unlink(mem_new);
        node_launch_clear(&l);
        return r;
}

/* Chunks the VM's files at paths into the local cache as (name, version), then sends the Nest
 * what it lacks; *ret_files describes them. */
static int upload_files(node_t *n, const char *name, int64_t version, const char *const *files,
                        const char *const *paths, size_t count, nest_transfer_stats_t *ret_moved, json_t **ret_files,
                        char **ret_msg) {
        json_t *out = NULL;
        int r = node_nest_stage(n, name, version, files, paths, count, &out, ret_msg);
        if (r >= 0)
                r = node_nest_push(n, n->oracle, name, version, out, ret_moved, ret_msg);
        if (r < 0) {
                json_decref(out);
                return r;
        }
        *ret_files = out;
        return 0;
}

int node_save_vm(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg) {
        bool upload = cmd->save.upload;
        int64_t version = cmd->version, new_version = cmd->save.new_version;
        _cleanup_(node_command_unlockp) node_vm_t *vm = NULL;
        int r = node_command_lock(n, name, cmd, 0, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *state_path = node_vm_file(n, name, "state");
        _cleanup_free_ char *tmp_path = node_vm_file(n, name, "state.new");
        _cleanup_free_ char *disk_path = xasprintf("%s/disk.qcow2", dir);
        bool was_running = vm->vmm != NULL;
        if (!was_running && (!streq(vm->state, "suspended") || !file_exists(state_path))) {
                *ret_msg = xasprintf("vm \"%s\" is %s on this RM: nothing to save", name, vm->state);
                return -EPERM;
        }
        node_command_lease(vm, version);
        if (was_running) {
                r = vm->memory_base ? memory_write_back(n, vm, tmp_path, ret_msg) : vmm_save(vm->vmm, tmp_path, 0);
                if (r >= 0 && rename(tmp_path, state_path) < 0)
                        r = negative_errno();
                if (r < 0) {
                        unlink(tmp_path);
                        if (!*ret_msg)
                                *ret_msg = xasprintf("vm \"%s\": saving its state failed: %s", name, node_vm_strerror(r));
                        vmm_cont(vm->vmm, 0);
                        return r;
                }
        }
        crash_point("node-save-after-save");
        if (upload && vm->disk_base) {
                /* a clone's first bundle of its own: its overlay must not need our base file */
                r = clone_disk_detach(n, vm, disk_path, ret_msg);
                if (r < 0) {
                        if (was_running && vmm_cont(vm->vmm, 0) < 0)
                                log_error("vm %s: could not continue after a failed save", name);
                        return r;
                }
        }
        json_t *files = NULL;
        if (upload) {
                _cleanup_free_ char *memory_path = node_vm_file(n, name, "memory");
                const char *names[] = { BUNDLE_FILE_STATE, BUNDLE_FILE_DISK, BUNDLE_FILE_MEMORY };
                const char *paths[] = { state_path, disk_path, memory_path };
                nest_transfer_stats_t moved = { 0 };
                r = upload_files(n, name, new_version, names, paths, ELEMENTSOF(names), &moved, &files, ret_msg);
                if (r < 0) {
                        /* the VM stays usable where it was */
                        if (was_running && vmm_cont(vm->vmm, 0) < 0)
                                log_error("vm %s: could not continue after a failed save", name);
                        return r;
                }
                log_info("vm %s v%lld into the Nest: %llu of %llu bytes moved", name, (long long)new_version,
                         (unsigned long long)moved.bytes_transferred, (unsigned long long)moved.bytes_total);
        }
        crash_point("node-save-after-upload");
        node_vm_vmm_release(vm, true);
        if (upload) {
                memory_keep_as_snapshot(n, name, json_object_get(files, BUNDLE_FILE_MEMORY));
                node_disk_mark(n, name, json_object_get(files, BUNDLE_FILE_DISK));
        }
        node_vm_state_set(vm, "suspended");
        json_t *result = node_proto_files_answer(files ?: json_object());
        if ((r = node_command_record(n, vm, cmd, result, ret_msg)) < 0)
                return r;
        log_info("vm %s v%lld saved%s", name, (long long)version, upload ? " into the Nest" : "");
        *ret = result;
        return 0;
}

int node_save_stop(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg) {
        _cleanup_(node_command_unlockp) node_vm_t *vm = NULL;
        int r = node_command_lock(n, name, cmd, 0, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        node_command_lease(vm, cmd->version);
        if (vm->vmm) {
                vmm_shutdown(vm->vmm, SHUTDOWN_TIMEOUT_MS, 0);
                node_vm_vmm_release(vm, true);
        }
        node_vm_state_set(vm, "stopped");
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *state_path = node_vm_file(n, name, "state");
        _cleanup_free_ char *disk_path = xasprintf("%s/disk.qcow2", dir);
        unlink(state_path);
        _cleanup_free_ char *memory_path = node_vm_file(n, name, "memory");
        unlink(memory_path); /* a stopped VM boots afresh */
        node_vm_memory_base_set(vm, NULL);
        json_t *files = NULL;
        if (file_exists(disk_path)) {
                const char *names[] = { BUNDLE_FILE_DISK };
                const char *paths[] = { disk_path };
                r = upload_files(n, name, cmd->stop.new_version, names, paths, ELEMENTSOF(names), NULL, &files, ret_msg);
                if (r < 0) {
                        node_registry_persist(n, vm);
                        return r;
                }
        }
        json_t *result = node_proto_files_answer(files ?: json_object());
        if ((r = node_command_record(n, vm, cmd, result, ret_msg)) < 0)
                return r;
        *ret = result;
        return 0;
}
