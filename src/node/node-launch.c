/* run (boot, or restore from the Nest) and resume (from the VM's local saved state): the
 * launch of a VM's VMM. A restore streams the saved state from the Nest into QEMU through a
 * FIFO (a feeder thread) and maps the snapshot's memory file copy-on-write; it takes a warm
 * slot (node-slots.c) when one fits the VM. */
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-command.h"
#include "node/node-launch.h"
#include "node/node-registry.h"
#include "node/node-vm.h"

/* Links DIR/run to a taken slot's run directory. */
static int run_dir_link(node_t *n, node_vm_t *vm, const node_slot_t *slot) {
        _cleanup_free_ char *dir = node_vm_dir(n, vm->name);
        _cleanup_free_ char *run = node_vm_file(n, vm->name, "run");
        _cleanup_free_ char *target = xasprintf("%s/run", slot->dir);
        (void)mkdir_p(dir, 0755);
        (void)rm_rf(run);
        return symlink(target, run) < 0 ? negative_errno() : 0;
}

void node_launch_clear(node_launch_t *l) {
        free(l->run_dir);
        free(l->kernel);
        free(l->initrd);
        free(l->disk);
        free(l->cmdline);
        free(l->image_disk);
        free(l->memory);
        *l = (node_launch_t){ 0 };
}

int node_launch_prepare(node_t *n, node_vm_t *vm, node_launch_t *l, char **ret_msg) {
        *l = (node_launch_t){ 0 };
        if (bundle_config_from_json(vm->config, &l->bc) < 0) {
                *ret_msg = xasprintf("vm \"%s\": malformed vm.json", vm->name);
                return -EINVAL;
        }
        _cleanup_free_ char *dir = node_vm_dir(n, vm->name);
        l->run_dir = node_vm_file(n, vm->name, "run");
        int r = mkdir_p(l->run_dir, 0700);
        if (r < 0) {
                *ret_msg = xasprintf("cannot create %s: %s", l->run_dir, strerror(-r));
                return r;
        }
        if (vm->fwd_port <= 0) {
                vm->fwd_port = node_port_pick(n->host);
                if (vm->fwd_port < 0) {
                        *ret_msg = xasprintf("no free port on %s", n->host);
                        return -EADDRINUSE;
                }
        }
        l->disk = xasprintf("%s/disk.qcow2", dir);
        l->memory = node_vm_file(n, vm->name, "memory");
        l->image_disk = node_cache_image_path(n, l->bc.image, "disk");
        if (streq(l->bc.boot, "kernel")) {
                l->kernel = node_cache_image_path(n, l->bc.image, "vmlinuz");
                l->initrd = node_cache_image_path(n, l->bc.image, "initrd.img");
                l->cmdline = xasprintf("%s vmx.name=%s", l->bc.cmdline, vm->name);
        }
        l->vc = (vmm_config_t){
                .name = vm->name,
                .run_dir = l->run_dir,
                .memory_mib = (uint64_t)l->bc.memory_mib,
                .vcpus = (unsigned)l->bc.vcpus,
                .mac = l->bc.mac,
                .kernel = l->kernel,
                .initrd = l->initrd,
                .cmdline = l->cmdline,
                .disk = l->disk,
                .disk_format = "qcow2",
                .fwd_host = n->host,
                .fwd_port = vm->fwd_port,
                .accel = n->accel,
                /* its own memory file, or a snapshot's mapped copy-on-write (docs/memory.md) */
                .memory_path = vm->memory_base ? vm->memory_base : l->memory,
                .memory_private = vm->memory_base != NULL,
        };
        return 0;
}

int node_launch_confine(node_t *n, node_launch_t *l, const char *instance, char **ret_msg) {
        cgroup_limits_t lim = node_confine_limits(&l->bc);
        int r = node_confine_begin(n, instance, &lim, &l->confine, ret_msg);
        if (r >= 0 && l->confine.active)
                l->vc.confine = &l->confine.vc;
        return r;
}

void node_launch_confine_end(node_t *n, node_launch_t *l, bool ok) {
        node_confine_end(n, &l->confine, ok);
        l->vc.confine = NULL;
}

/* A warm slot's QEMU becomes the VM's: its uid and cgroups move over (node-confine.h). */
static int launch_take_slot(node_t *n, node_vm_t *vm, node_launch_t *l, const node_slot_t *slot, char **ret_msg) {
        vmm_status_t st = { 0 };
        int r = vmm_status(slot->vmm, &st);
        if (r < 0 || st.state == VMM_RUN_GONE) {
                *ret_msg = xasprintf("vm \"%s\": its warm slot is gone", vm->name);
                return r < 0 ? r : -ESRCH;
        }
        _cleanup_free_ char *instance = node_confine_slot_instance(slot->dir);
        cgroup_limits_t lim = node_confine_limits(&l->bc);
        r = node_confine_take_slot(n, instance, vm->name, st.pid, &lim, &l->confine, ret_msg);
        if (r >= 0 && l->confine.active)
                l->vc.confine = &l->confine.vc;
        return r;
}

int node_launch_disk(node_t *n, node_vm_t *vm, node_launch_t *l, const node_cmd_run_t *run, nest_transfer_stats_t *acc,
                     node_progress_t *prog, char **ret_msg) {
        const json_t *disk_info = run ? json_object_get(run->files, BUNDLE_FILE_DISK) : NULL;
        bool disk_image = streq(l->bc.boot, "disk");
        const char *disk_digest = json_string_value(json_object_get(disk_info, "digest"));
        if (disk_info && streq(run->source, vm->name) && bundle_sha256_is_valid(disk_digest)) {
                /* saved here last, untouched since: already this bundle's disk, over our image */
                _cleanup_free_ char *staged = node_disk_staged_path(n, disk_digest);
                if (node_disk_mark_take(n, vm->name, disk_digest) || rename(staged, l->disk) >= 0) {
                        log_info("vm %s: its disk is the one saved here; used as it is", vm->name);
                        return 0;
                }
        }
        node_disk_mark_drop(n, vm->name);
        if (disk_info && !streq(run->source, vm->name)) {
                /* a clone: an overlay over its parent's disk */
                char *base = NULL;
                int r = node_clone_disk(n, run->source, run->bundle_version, disk_info, l->disk, disk_image ? l->image_disk : NULL,
                                        l->bc.image_format, acc, &base, ret_msg);
                node_vm_disk_base_set(vm, base);
                free(base);
                return r;
        }
        if (disk_info) {
                int r = node_nest_pull_to_path(n, n->oracle, vm->name, run->bundle_version, BUNDLE_FILE_DISK, disk_info, l->disk,
                                               acc, node_progress_report, prog, ret_msg);
                if (r < 0)
                        return r;
                if (disk_image) {
                        /* the overlay names its backing file by the Nest's path; point it at ours */
                        char *argv[] = { "qemu-img", "rebase", "-u", "-F", l->bc.image_format, "-b",
                                         l->image_disk, "-f", "qcow2", l->disk, NULL };
                        return node_qemu_img(argv, NODE_QEMU_IMG_QUICK_MS, ret_msg);
                }
                return 0;
        }
        unlink(l->disk);
        if (disk_image) {
                char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", l->bc.image_format, "-b",
                                 l->image_disk, l->disk, NULL };
                return node_qemu_img(argv, NODE_QEMU_IMG_QUICK_MS, ret_msg);
        }
        _cleanup_free_ char *size = xasprintf("%lldM", (long long)l->bc.disk_size_mib);
        char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", l->disk, size, NULL };
        return node_qemu_img(argv, NODE_QEMU_IMG_QUICK_MS, ret_msg);
}

/* Feeds a FIFO with a bundle file streamed from the Nest (see restore_streamed). */
typedef struct feeder {
        node_t *n;
        const char *vm;
        int64_t version;
        const json_t *info;
        const char *fifo;
        volatile int cancel;
        nest_transfer_stats_t *acc;
        node_progress_t *prog;
        int result;
        char *msg;
} feeder_t;

static void *feeder_thread(void *arg) {
        feeder_t *f = arg;
        int fd = -1;
        /* a FIFO opened for writing without a reader fails with ENXIO: wait for the VMM to open it,
         * unless the VMM failed before it got there */
        while (!f->cancel) {
                fd = open(f->fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
                if (fd >= 0 || errno != ENXIO)
                        break;
                time_sleep_ms(2);
        }
        if (fd < 0) {
                f->result = f->cancel ? -ECANCELED : negative_errno();
                return NULL;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        fcntl(fd, F_SETPIPE_SZ, 1 << 20);
        f->result = node_nest_pull_to_fd(f->n, f->n->oracle, f->vm, f->version, BUNDLE_FILE_STATE, f->info, fd, f->acc,
                                         node_progress_report, f->prog, &f->msg);
        close(fd);
        return NULL;
}

/* Restores from the Nest without a copy on disk: the saved state flows from the HTTP download
 * through a FIFO into QEMU while it is hashed. The VM is loaded paused and continues only when
 * the whole stream matched its SHA-256, so corrupted state is never run. */
static int restore_streamed(node_t *n, node_vm_t *vm, node_launch_t *l, node_slot_t **slotp, const char *source,
                            int64_t version, const json_t *info,
                            nest_transfer_stats_t *acc, node_progress_t *prog,
                            char **ret_msg) {
        _cleanup_free_ char *fifo = node_vm_file(n, vm->name, "state.fifo");
        unlink(fifo);
        if (mkfifo(fifo, 0600) < 0) {
                *ret_msg = xasprintf("cannot create %s: %m", fifo);
                return negative_errno();
        }
        feeder_t f = { .n = n, .vm = source, .version = version, .info = info, .fifo = fifo, .acc = acc, .prog = prog };
        pthread_t t;
        if (pthread_create(&t, NULL, feeder_thread, &f) != 0) {
                unlink(fifo);
                *ret_msg = xasprintf("vm \"%s\": cannot start the state download", vm->name);
                return -EAGAIN;
        }
        int r;
        node_slot_t *slot = slotp ? *slotp : NULL;
        if (slot) {
                *slotp = NULL; /* consumed, whatever happens */
                r = vmm_slot_restore(slot->vmm, &l->vc, fifo, VMM_RESTORE_PAUSED);
                if (r >= 0)
                        vm->vmm = slot->vmm;
                node_slot_release(slot, r >= 0);
        } else
                r = vmm_restore(n->driver, &l->vc, fifo, VMM_RESTORE_PAUSED, &vm->vmm);
        f.cancel = 1;
        pthread_join(t, NULL);
        unlink(fifo);
        if (r >= 0 && f.result < 0) {
                /* QEMU may have loaded a stream that turned out damaged: never run it */
                node_vm_vmm_release(vm, true);
                r = f.result;
                *ret_msg = TAKE_PTR(f.msg);
        } else if (r < 0) {
                *ret_msg = f.result < 0 && f.msg ? TAKE_PTR(f.msg)
                                                 : xasprintf("vm \"%s\": restore failed: %s (see %s/qemu.log)", vm->name,
                                                             node_vm_strerror(r), l->run_dir);
        }
        free(f.msg);
        if (r >= 0 && (r = vmm_cont(vm->vmm, 0)) < 0) {
                node_vm_vmm_release(vm, true);
                *ret_msg = xasprintf("vm \"%s\": cannot continue after restore: %s", vm->name, node_vm_strerror(r));
        }
        return r;
}

/* A warm slot that fits the VM of config bc, or NULL. */
static node_slot_t *slot_for(node_t *n, const bundle_config_t *bc) {
        if (n->slots_wanted <= 0)
                return NULL;
        bool kernel = streq(bc->boot, "kernel");
        _cleanup_free_ char *vmlinuz = kernel ? node_cache_image_path(n, bc->image, "vmlinuz") : NULL;
        _cleanup_free_ char *initrd = kernel ? node_cache_image_path(n, bc->image, "initrd.img") : NULL;
        node_slot_shape_t shape = { .memory_mib = bc->memory_mib, .vcpus = bc->vcpus, .kernel = vmlinuz,
                                    .initrd = initrd, .cmdline = kernel ? (char *)bc->cmdline : NULL };
        return node_slot_take(n, &shape);
}

/* What each step of a launch took (the run answer's "steps"): the milliseconds since the last
 * step ended, as step what. */
typedef struct launch_steps {
        json_t *json;
        int64_t last_ms;
} launch_steps_t;

static void launch_step(launch_steps_t *s, const char *what) {
        int64_t now = time_now_ms();
        json_object_set_new(s->json, what, json_integer(now - s->last_ms));
        s->last_ms = now;
}

int node_launch_run(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg) {
        const node_cmd_run_t *run = &cmd->run;
        bool restore = run->mode == NODE_RUN_RESTORE;
        _cleanup_(node_command_unlockp) node_vm_t *vm = NULL;
        int r = node_command_lock(n, name, cmd, NODE_COMMAND_CREATE, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        /* a newer command supersedes whatever this node still runs for the VM */
        node_command_lease(vm, cmd->version);
        atomic_fetch_add(&n->launching, 1);
        node_vm_vmm_release(vm, true);
        node_vm_stale_kill(n, name);
        node_vm_config_set(vm, run->config);
        node_vm_disk_base_set(vm, NULL);
        node_vm_run_dir_reset(n, vm);
        node_slot_t *slot = restore ? slot_for(n, &run->bc) : NULL;
        if (slot && run_dir_link(n, vm, slot) >= 0)
                vm->fwd_port = slot->fwd_port; /* the slot's forward is the VM's address */
        else if (slot) {
                node_slot_release(slot, false);
                slot = NULL;
        }
        node_launch_t l = { 0 };
        nest_transfer_stats_t moved = { 0 };
        _cleanup_(node_progress_clear) node_progress_t prog = node_progress_for(n, run->op);
        int64_t t0 = time_now_ms();
        launch_steps_t steps = { .json = json_object(), .last_ms = t0 };
        const json_t *state_info = json_object_get(run->files, BUNDLE_FILE_STATE);
        const json_t *memory_info = json_object_get(run->files, BUNDLE_FILE_MEMORY);
        /* the VM whose snapshot this is: the VM itself, or a clone's parent */
        bool clone = !streq(run->source, name);
        if (restore) {
                /* the snapshot's memory file, mapped copy-on-write: never written */
                char *base = NULL;
                r = node_nest_memory_file(n, n->oracle, run->source, run->bundle_version, memory_info, &moved,
                                          node_progress_report, &prog, &base, ret_msg);
                int64_t size = base ? file_size(base) : -1;
                if (r >= 0 && size != run->bc.memory_mib * 1048576) {
                        /* QEMU would refuse it later with less to say */
                        *ret_msg = xasprintf("vm \"%s\": the memory file of its snapshot is %lld bytes, but vm.json "
                                             "gives it %lld MiB of RAM: not used",
                                             name, (long long)size, (long long)run->bc.memory_mib);
                        r = -EINVAL;
                }
                node_vm_memory_base_set(vm, r >= 0 ? base : NULL);
                free(base);
                launch_step(&steps, "memory_ms");
        } else {
                _cleanup_free_ char *mem = node_vm_file(n, name, "memory");
                unlink(mem); /* a fresh boot gets fresh RAM */
        }
        if (r >= 0)
                r = node_launch_prepare(n, vm, &l, ret_msg);
        if (r >= 0)
                r = node_cache_image(n, run->image, ret_msg);
        launch_step(&steps, "image_ms");
        if (r >= 0)
                r = node_launch_disk(n, vm, &l, run->bundle ? run : NULL, &moved, &prog, ret_msg);
        launch_step(&steps, "disk_ms");
        crash_point("node-run-before-start");
        if (r >= 0 && slot && launch_take_slot(n, vm, &l, slot, ret_msg) < 0) {
                /* the slot cannot be the VM's: a QEMU of its own instead */
                log_warn("vm %s: not taking the warm slot (%s)", name, *ret_msg ? *ret_msg : "");
                free(*ret_msg);
                *ret_msg = NULL;
                node_slot_release(slot, false);
                slot = NULL;
                node_vm_run_dir_reset(n, vm);
                (void)mkdir_p(l.run_dir, 0700);
        }
        if (r >= 0 && !slot)
                r = node_launch_confine(n, &l, name, ret_msg);
        launch_step(&steps, "confine_ms");
        int64_t t1 = time_now_ms();
        if (r >= 0 && restore) {
                bool had_slot = slot != NULL;
                r = restore_streamed(n, vm, &l, &slot, run->source, run->bundle_version, state_info, &moved, &prog,
                                     ret_msg);
                if (r < 0 && had_slot && !vm->vmm) {
                        /* the slot failed: start a QEMU of our own, once */
                        log_warn("vm %s: the warm slot failed (%s); restoring without it", name, *ret_msg ? *ret_msg : "");
                        free(*ret_msg);
                        *ret_msg = NULL;
                        node_vm_run_dir_reset(n, vm);
                        (void)mkdir_p(l.run_dir, 0700);
                        r = restore_streamed(n, vm, &l, NULL, run->source, run->bundle_version, state_info, &moved,
                                             &prog, ret_msg);
                }
                launch_step(&steps, "restore_ms");
                if (r >= 0 && clone && (r = node_clone_identity(vm, ret_msg)) < 0)
                        node_vm_vmm_release(vm, true);
                if (clone)
                        launch_step(&steps, "identity_ms");
        } else if (r >= 0) {
                r = vmm_boot(n->driver, &l.vc, 0, &vm->vmm);
                if (r < 0)
                        *ret_msg = xasprintf("vm \"%s\": boot failed: %s (see %s/qemu.log)", name, node_vm_strerror(r),
                                             l.run_dir);
                launch_step(&steps, "boot_ms");
        }
        node_launch_confine_end(n, &l, r >= 0);
        node_launch_clear(&l);
        node_slot_release(slot, false); /* not used: a failure before the restore */
        atomic_fetch_sub(&n->launching, 1);
        if (r < 0) {
                json_decref(steps.json);
                node_vm_state_set(vm, "stopped");
                node_registry_persist(n, vm);
                return r;
        }
        int64_t t2 = time_now_ms();
        json_t *result = node_proto_run_answer(node_vm_started(n, vm), t1 - t0, t2 - t1, &moved);
        json_object_set_new(result, "steps", steps.json);
        if ((r = node_command_record(n, vm, cmd, result, ret_msg)) < 0)
                return r;
        log_info("vm %s v%lld %s: pid %lld at %s (files ready in %lld ms, VMM in %lld ms)", name,
                 (long long)cmd->version, restore ? "restore" : "boot", (long long)vm->pid, vm->address,
                 (long long)(t1 - t0), (long long)(t2 - t1));
        *ret = result;
        return 0;
}

int node_launch_resume(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg) {
        _cleanup_(node_command_unlockp) node_vm_t *vm = NULL;
        int r = node_command_lock(n, name, cmd, 0, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        _cleanup_free_ char *state_path = node_vm_file(n, name, "state");
        if (vm->vmm || !streq(vm->state, "suspended") || !file_exists(state_path)) {
                *ret_msg = xasprintf("vm \"%s\" is %s on this RM, not suspended", name, vm->state);
                return -EPERM;
        }
        node_command_lease(vm, cmd->version);
        node_disk_mark_drop(n, name); /* the disk moves on from the saved state */
        node_vm_run_dir_reset(n, vm);
        node_launch_t l = { 0 };
        r = node_launch_prepare(n, vm, &l, ret_msg);
        if (r >= 0)
                r = node_launch_confine(n, &l, name, ret_msg);
        if (r >= 0) {
                r = vmm_restore(n->driver, &l.vc, state_path, 0, &vm->vmm);
                if (r < 0)
                        *ret_msg = xasprintf("vm \"%s\": resume failed: %s (see %s/qemu.log)", name, node_vm_strerror(r),
                                             l.run_dir);
        }
        node_launch_confine_end(n, &l, r >= 0);
        node_launch_clear(&l);
        if (r < 0)
                return r;
        /* the saved state is consumed: the disk moves on from here */
        unlink(state_path);
        json_t *result = node_vm_started(n, vm);
        if ((r = node_command_record(n, vm, cmd, result, ret_msg)) < 0)
                return r;
        *ret = result;
        return 0;
}
