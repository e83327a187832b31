/* The node's VM commands: run (boot or restore), save (suspend, optionally into the Nest),
 * resume, stop and delete. Commands are keyed by (VM, version): an older version than the
 * node's lease is refused, and a repeat of the last completed command returns its recorded
 * result, so the Oracle can re-drive an operation after a crash without doing it twice.
 * Each VM's state is persisted in DATA/vms/NAME/node-vm.json after every change so that a
 * restarted agent re-attaches to its QEMU processes instead of losing them. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/proc.h"
#include "base/util.h"
#include "net/http-client.h"
#include "node/node-internal.h"
#include "node/node-vm-common.h"

#define SHUTDOWN_TIMEOUT_MS 5000

char *node_vm_dir(node_t *n, const char *name) { return xasprintf("%s/vms/%s", n->data, name); }

node_vm_t *node_vm_find(node_t *n, const char *name) {
        pthread_mutex_lock(&n->lock);
        node_vm_t *vm = n->vms;
        while (vm && !streq(vm->name, name))
                vm = vm->next;
        pthread_mutex_unlock(&n->lock);
        return vm;
}

node_vm_t *node_vm_get_or_create(node_t *n, const char *name) {
        pthread_mutex_lock(&n->lock);
        node_vm_t *vm = n->vms;
        while (vm && !streq(vm->name, name))
                vm = vm->next;
        if (!vm) {
                vm = xcalloc(1, sizeof *vm);
                snprintf(vm->name, sizeof vm->name, "%s", name);
                snprintf(vm->state, sizeof vm->state, "new");
                pthread_mutex_init(&vm->lock, NULL);
                vm->next = n->vms;
                n->vms = vm;
        }
        pthread_mutex_unlock(&n->lock);
        return vm;
}

int node_vm_persist(node_t *n, node_vm_t *vm) {
        _cleanup_free_ char *dir = node_vm_dir(n, vm->name);
        if (streq(vm->state, "deleted"))
                return 0;
        mkdir_p(dir, 0755);
        _cleanup_free_ char *path = xasprintf("%s/node-vm.json", dir);
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

void memory_base_set(node_vm_t *vm, const char *path) {
        free(vm->memory_base);
        vm->memory_base = path ? xstrdup(path) : NULL;
}

void disk_base_set(node_vm_t *vm, const char *path) {
        free(vm->disk_base);
        vm->disk_base = path ? xstrdup(path) : NULL;
}

/* A VM that took a warm slot has DIR/run linked to the slot's directory; once that QEMU is
 * gone, the next launch gets a plain directory again. */
void run_dir_reset(node_t *n, node_vm_t *vm) {
        _cleanup_free_ char *dir = node_vm_dir(n, vm->name);
        _cleanup_free_ char *run = xasprintf("%s/run", dir);
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

/* Links DIR/run to a taken slot's run directory. */
static int run_dir_link(node_t *n, node_vm_t *vm, const node_slot_t *slot) {
        _cleanup_free_ char *dir = node_vm_dir(n, vm->name);
        _cleanup_free_ char *run = xasprintf("%s/run", dir);
        _cleanup_free_ char *target = xasprintf("%s/run", slot->dir);
        (void)mkdir_p(dir, 0755);
        (void)rm_rf(run);
        return symlink(target, run) < 0 ? negative_errno() : 0;
}

/* Records that the VM's local files are the manifests files at version (NULL: they may have
 * changed). Everything that runs, saves or removes the VM clears it, through set_state. */
static void staged_set(node_vm_t *vm, const json_t *files, int64_t version) {
        json_decref(vm->staged);
        vm->staged = files ? json_deep_copy(files) : NULL;
        vm->staged_version = files ? version : 0;
}

void set_state(node_vm_t *vm, const char *state) {
        if (!streq(state, "suspended") || !streq(vm->state, "suspended"))
                staged_set(vm, NULL, 0);
        snprintf(vm->state, sizeof vm->state, "%s", state);
}

void record_result(node_t *n, node_vm_t *vm, const char *kind, int64_t version, json_t *result) {
        snprintf(vm->last_kind, sizeof vm->last_kind, "%s", kind);
        vm->last_version = version;
        json_decref(vm->last_result);
        vm->last_result = json_incref(result);
        node_vm_persist(n, vm);
}

/* 1 when cmd repeats the last completed command (its result in *ret), 0 to go on, -ESTALE.
 * Changes nothing: a command takes the lease with lease_take() once it is sure to act. */
int check_version(node_vm_t *vm, const char *kind, int64_t version, json_t **ret, char **ret_msg) {
        if (version < vm->version) {
                *ret_msg = xasprintf("vm \"%s\": command %s for version %lld is stale (lease is at %lld)", vm->name,
                                     kind, (long long)version, (long long)vm->version);
                return -ESTALE;
        }
        if (version == vm->last_version && streq(kind, vm->last_kind) && vm->last_result) {
                *ret = json_incref(vm->last_result);
                return 1;
        }
        return 0;
}

/* The start of a command on a VM this node holds: finds it, locks it and checks the version.
 * 1: go on, vm->lock held; 0: a repeat of the last command, *ret is its recorded answer; <0. */
int command_lock(node_t *n, const char *name, const char *kind, int64_t version, node_vm_t **ret_vm, json_t **ret,
                        char **ret_msg) {
        node_vm_t *vm = node_vm_find(n, name);
        if (!vm) {
                *ret_msg = xasprintf("vm \"%s\" is not on this RM", name);
                return -ENOENT;
        }
        pthread_mutex_lock(&vm->lock);
        int r = check_version(vm, kind, version, ret, ret_msg);
        if (r != 0) {
                pthread_mutex_unlock(&vm->lock);
                return r < 0 ? r : 0;
        }
        *ret_vm = vm;
        return 1;
}

/* The command at version acts on vm from here: older commands are stale from now on, and the
 * heartbeat does not fence vm on an answer sent before now (see apply_leases). vm->lock held. */
void lease_take(node_vm_t *vm, int64_t version) {
        vm->version = version;
        vm->cmd_time_ms = time_now_ms();
}

/* A version field of a command (see bundle_version_from_json); -EINVAL/-ERANGE with a message. */
int cmd_version(const json_t *cmd, const char *key, const char *kind, int64_t *ret, char **ret_msg) {
        int r = bundle_version_from_json(json_object_get(cmd, key), ret);
        if (r < 0)
                *ret_msg = xasprintf("%s needs \"%s\", an integer from 1 to %lld", kind, key, (long long)BUNDLE_VERSION_MAX);
        return r;
}

/* save and stop upload to the Nest of this node's Oracle. A command may name it ("nest") but
 * not another host: that would send the VM's memory and disk wherever the caller likes. */
static int cmd_nest_check(node_t *n, const json_t *cmd, char **ret_msg) {
        const json_t *nest = json_object_get(cmd, "nest");
        if (!nest || json_is_null(nest) || (json_is_string(nest) && streq(json_string_value(nest), n->oracle)))
                return 0;
        *ret_msg = xasprintf("nest must be this RM's Oracle (%s)", n->oracle);
        return -EINVAL;
}

/* Everything in a run command that can be checked before it touches the VM, so that a
 * malformed command changes nothing (no entry, no directory, no killed QEMU). */
static int run_check(const char *name, const char *mode, const json_t *config, const json_t *image,
                     const json_t *bundle, char **ret_msg) {
        bundle_config_t bc;
        int64_t bv = 0;
        if (!mode || (!streq(mode, "boot") && !streq(mode, "restore"))) {
                *ret_msg = xstrdup("run needs mode boot or restore");
                return -EINVAL;
        }
        if (bundle_config_from_json(config, &bc) < 0) {
                *ret_msg = xasprintf("vm \"%s\": malformed vm.json (config)", name);
                return -EINVAL;
        }
        if (!streq(bc.name, name)) {
                *ret_msg = xasprintf("vm.json is the config of vm \"%s\", not of \"%s\"", bc.name, name);
                return -EINVAL;
        }
        const char *image_name = json_string_value(json_object_get(image, "name"));
        if (!image_name || !streq(image_name, bc.image) || !json_is_object(json_object_get(image, "files"))) {
                *ret_msg = xasprintf("run needs image {name, files} for image \"%s\" of vm.json", bc.image);
                return -EINVAL;
        }
        const json_t *source = json_object_get(bundle, "vm");
        if (bundle && !json_is_null(bundle) &&
            (bundle_version_from_json(json_object_get(bundle, "version"), &bv) < 0 ||
             !json_is_object(json_object_get(bundle, "files")) ||
             (source && !json_is_null(source) &&
              (!json_is_string(source) || !name_is_valid(json_string_value(source)))))) {
                *ret_msg = xstrdup("run needs bundle null or {version, files[, vm]}");
                return -EINVAL;
        }
        if (streq(mode, "restore") && (!json_object_get(json_object_get(bundle, "files"), BUNDLE_FILE_STATE) ||
                                       !json_object_get(json_object_get(bundle, "files"), BUNDLE_FILE_MEMORY))) {
                *ret_msg = xasprintf("vm \"%s\": restore needs a bundle with saved state and memory", name);
                return -EINVAL;
        }
        return 0;
}

int node_pick_free_port(const char *host) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        struct sockaddr_in a = { .sin_family = AF_INET };
        inet_pton(AF_INET, host, &a.sin_addr);
        socklen_t len = sizeof a;
        int r = bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0
                        ? negative_errno()
                        : ntohs(a.sin_port);
        close(fd);
        return r;
}

void launch_clear(launch_t *l) {
        free(l->run_dir);
        free(l->kernel);
        free(l->initrd);
        free(l->disk);
        free(l->cmdline);
        free(l->image_disk);
        free(l->memory);
        *l = (launch_t){ 0 };
}

int launch_prepare(node_t *n, node_vm_t *vm, launch_t *l, char **ret_msg) {
        *l = (launch_t){ 0 };
        if (bundle_config_from_json(vm->config, &l->bc) < 0) {
                *ret_msg = xasprintf("vm \"%s\": malformed vm.json", vm->name);
                return -EINVAL;
        }
        _cleanup_free_ char *dir = node_vm_dir(n, vm->name);
        l->run_dir = xasprintf("%s/run", dir);
        int r = mkdir_p(l->run_dir, 0700);
        if (r < 0) {
                *ret_msg = xasprintf("cannot create %s: %s", l->run_dir, strerror(-r));
                return r;
        }
        if (vm->fwd_port <= 0) {
                vm->fwd_port = node_pick_free_port(n->host);
                if (vm->fwd_port < 0) {
                        *ret_msg = xasprintf("no free port on %s", n->host);
                        return -EADDRINUSE;
                }
        }
        l->disk = xasprintf("%s/disk.qcow2", dir);
        l->memory = xasprintf("%s/memory", dir);
        l->image_disk = node_image_path(n, l->bc.image, "disk");
        if (streq(l->bc.boot, "kernel")) {
                l->kernel = node_image_path(n, l->bc.image, "vmlinuz");
                l->initrd = node_image_path(n, l->bc.image, "initrd.img");
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

/* HEARTBEAT: tells the Oracle how far a transfer for an operation is, at most every 250 ms. */
static void receive_heartbeat(void *userdata, uint64_t done, uint64_t total) {
        receive_progress_t *p = userdata;
        int64_t now = time_now_ms();
        if (!p->url || (now - p->last_ms < 250 && done < total))
                return;
        p->last_ms = now;
        json_t *body = json_pack("{s:I,s:I}", "done", (json_int_t)(p->base + done), "total", (json_int_t)(p->base + total));
        http_response_t resp = { 0 };
        http_request_json("POST", p->url, body, 5000, &resp);
        http_response_clear(&resp);
        json_decref(body);
}

static void progress_adapter(void *userdata, uint64_t done, uint64_t total) { receive_heartbeat(userdata, done, total); }

/* Puts the VM's disk in place: the bundle's disk from the Nest, or a fresh one. */
int disk_prepare(node_t *n, node_vm_t *vm, launch_t *l, const json_t *bundle, nest_transfer_stats_t *acc,
                        receive_progress_t *prog, char **ret_msg) {
        const json_t *disk_info = json_object_get(json_object_get(bundle, "files"), BUNDLE_FILE_DISK);
        bool disk_image = streq(l->bc.boot, "disk");
        const char *source = json_string_value(json_object_get(bundle, "vm"));
        if (disk_info && source && !streq(source, vm->name)) {
                /* a clone: an overlay over its parent's disk */
                int64_t bv = json_integer_value(json_object_get(bundle, "version"));
                char *base = NULL;
                int r = node_clone_disk(n, source, bv, disk_info, l->disk, disk_image ? l->image_disk : NULL,
                                        l->bc.image_format, acc, &base, ret_msg);
                disk_base_set(vm, base);
                free(base);
                return r;
        }
        if (disk_info) {
                int64_t bv = json_integer_value(json_object_get(bundle, "version"));
                int r = node_nest_pull_to_path(n, n->oracle, vm->name, bv, BUNDLE_FILE_DISK, disk_info, l->disk,
                                               acc, progress_adapter, prog, ret_msg);
                if (r < 0)
                        return r;
                if (disk_image) {
                        /* the overlay names its backing file by the Nest's path; point it at ours */
                        char *argv[] = { "qemu-img", "rebase", "-u", "-F", l->bc.image_format, "-b",
                                         l->image_disk, "-f", "qcow2", l->disk, NULL };
                        return node_qemu_img(argv, ret_msg);
                }
                return 0;
        }
        unlink(l->disk);
        if (disk_image) {
                char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", l->bc.image_format, "-b",
                                 l->image_disk, l->disk, NULL };
                return node_qemu_img(argv, ret_msg);
        }
        _cleanup_free_ char *size = xasprintf("%lldM", (long long)l->bc.disk_size_mib);
        char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", l->disk, size, NULL };
        return node_qemu_img(argv, ret_msg);
}

void vmm_release(node_vm_t *vm, bool kill_it) {
        if (!vm->vmm)
                return;
        if (kill_it)
                vmm_kill(vm->vmm, 0);
        vm->vmm = vmm_vm_free(vm->vmm);
        vm->pid = 0;
        vm->address[0] = 0;
}

json_t *started_result(node_t *n, node_vm_t *vm) {
        vmm_status_t st = { 0 };
        if (vmm_status(vm->vmm, &st) >= 0)
                vm->pid = st.pid;
        snprintf(vm->address, sizeof vm->address, "%s:%d", n->host, vm->fwd_port);
        set_state(vm, "running");
        /* a new QEMU: a fresh balloon at full size */
        vm->balloon_target_mib = 0;
        vm->balloon_manual = false;
        vm->idle_since_ms = vm->cpu_sample_ms = 0;
        return json_pack("{s:I,s:s}", "pid", (json_int_t)vm->pid, "address", vm->address);
}

const char *vmm_failure(int r) {
        return r == -ETIMEDOUT ? "timed out" : strerror(-r);
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
        receive_progress_t *prog;
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
                                         progress_adapter, f->prog, &f->msg);
        close(fd);
        return NULL;
}

/* Restores from the Nest without a copy on disk: the saved state flows from the HTTP download
 * through a FIFO into QEMU while it is hashed. The VM is loaded paused and continues only when
 * the whole stream matched its SHA-256, so corrupted state is never run. */
static int restore_streamed(node_t *n, node_vm_t *vm, launch_t *l, node_slot_t **slotp, const char *source,
                            int64_t version, const json_t *info,
                            nest_transfer_stats_t *acc, receive_progress_t *prog,
                            char **ret_msg) {
        _cleanup_free_ char *dir = node_vm_dir(n, vm->name);
        _cleanup_free_ char *fifo = xasprintf("%s/state.fifo", dir);
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
                vmm_release(vm, true);
                r = f.result;
                *ret_msg = TAKE_PTR(f.msg);
        } else if (r < 0) {
                *ret_msg = f.result < 0 && f.msg ? TAKE_PTR(f.msg)
                                                 : xasprintf("vm \"%s\": restore failed: %s (see %s/qemu.log)", vm->name,
                                                             vmm_failure(r), l->run_dir);
        }
        free(f.msg);
        if (r >= 0 && (r = vmm_cont(vm->vmm, 0)) < 0) {
                vmm_release(vm, true);
                *ret_msg = xasprintf("vm \"%s\": cannot continue after restore: %s", vm->name, vmm_failure(r));
        }
        return r;
}

/* A warm slot that fits the VM of config, or NULL. */
static node_slot_t *slot_for(node_t *n, const json_t *config) {
        bundle_config_t bc;
        if (n->slots_wanted <= 0 || bundle_config_from_json(config, &bc) < 0)
                return NULL;
        bool kernel = streq(bc.boot, "kernel");
        _cleanup_free_ char *vmlinuz = kernel ? node_image_path(n, bc.image, "vmlinuz") : NULL;
        _cleanup_free_ char *initrd = kernel ? node_image_path(n, bc.image, "initrd.img") : NULL;
        node_slot_shape_t shape = { .memory_mib = bc.memory_mib, .vcpus = bc.vcpus, .kernel = vmlinuz,
                                    .initrd = initrd, .cmdline = kernel ? (char *)bc.cmdline : NULL };
        return node_slot_take(n, &shape);
}

int node_vm_run(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg) {
        const char *mode = json_string_value(json_object_get(cmd, "mode"));
        const json_t *config = json_object_get(cmd, "config");
        const json_t *image = json_object_get(cmd, "image");
        const json_t *bundle = json_object_get(cmd, "bundle");
        int64_t version = 0;
        int r = cmd_version(cmd, "version", "run", &version, ret_msg);
        if (r < 0)
                return r;
        r = run_check(name, mode, config, image, bundle, ret_msg);
        if (r < 0)
                return r;
        node_vm_t *vm = node_vm_get_or_create(n, name);
        pthread_mutex_lock(&vm->lock);
        r = check_version(vm, "run", version, ret, ret_msg);
        if (r != 0) {
                pthread_mutex_unlock(&vm->lock);
                return r < 0 ? r : 0;
        }
        /* a newer command supersedes whatever this node still runs for the VM */
        lease_take(vm, version);
        atomic_fetch_add(&n->launching, 1);
        vmm_release(vm, true);
        stale_vmm_kill(n, name);
        json_decref(vm->config);
        vm->config = json_deep_copy(config);
        vm->fwd_port = 0;
        memory_base_set(vm, NULL);
        disk_base_set(vm, NULL);
        run_dir_reset(n, vm);
        node_slot_t *slot = streq(mode, "restore") ? slot_for(n, config) : NULL;
        if (slot && run_dir_link(n, vm, slot) >= 0)
                vm->fwd_port = slot->fwd_port; /* the slot's forward is the VM's address */
        else if (slot) {
                node_slot_release(slot, false);
                slot = NULL;
        }
        launch_t l = { 0 };
        nest_transfer_stats_t moved = { 0 };
        const char *op = json_string_value(json_object_get(cmd, "op"));
        receive_progress_t prog = { .n = n, .url = op && name_is_valid(op) ? xasprintf("%s/v1/ops/%s/heartbeat", n->oracle, op)
                                                                          : NULL };
        int64_t t0 = time_now_ms();
        const json_t *state_info = json_object_get(json_object_get(bundle, "files"), BUNDLE_FILE_STATE);
        const json_t *memory_info = json_object_get(json_object_get(bundle, "files"), BUNDLE_FILE_MEMORY);
        int64_t bundle_version = json_integer_value(json_object_get(bundle, "version"));
        /* the VM whose snapshot this is: the VM itself, or a clone's parent */
        const char *source = json_string_value(json_object_get(bundle, "vm")) ?: name;
        bool clone = !streq(source, name);
        if (streq(mode, "restore")) {
                /* the snapshot's memory file, mapped copy-on-write: never written */
                char *base = NULL;
                r = node_nest_memory_file(n, n->oracle, source, bundle_version, memory_info, &moved, progress_adapter,
                                          &prog, &base, ret_msg);
                bundle_config_t bc;
                int64_t size = base ? file_size(base) : -1;
                if (r >= 0 && bundle_config_from_json(config, &bc) >= 0 && size != bc.memory_mib * 1048576) {
                        /* QEMU would refuse it later with less to say */
                        *ret_msg = xasprintf("vm \"%s\": the memory file of its snapshot is %lld bytes, but vm.json "
                                             "gives it %lld MiB of RAM: not used",
                                             name, (long long)size, (long long)bc.memory_mib);
                        r = -EINVAL;
                }
                memory_base_set(vm, r >= 0 ? base : NULL);
                free(base);
        } else {
                _cleanup_free_ char *dir = node_vm_dir(n, name);
                _cleanup_free_ char *mem = xasprintf("%s/memory", dir);
                unlink(mem); /* a fresh boot gets fresh RAM */
        }
        if (r >= 0)
                r = launch_prepare(n, vm, &l, ret_msg);
        if (r >= 0)
                r = node_cache_image(n, image, ret_msg);
        if (r >= 0)
                r = disk_prepare(n, vm, &l, bundle, &moved, &prog, ret_msg);
        crash_point("node-run-before-start");
        int64_t t1 = time_now_ms();
        if (r >= 0 && streq(mode, "restore")) {
                bool had_slot = slot != NULL;
                r = restore_streamed(n, vm, &l, &slot, source, bundle_version, state_info, &moved, &prog, ret_msg);
                if (r < 0 && had_slot && !vm->vmm) {
                        /* the slot failed: start a QEMU of our own, once */
                        log_warn("vm %s: the warm slot failed (%s); restoring without it", name, *ret_msg ? *ret_msg : "");
                        free(*ret_msg);
                        *ret_msg = NULL;
                        run_dir_reset(n, vm);
                        (void)mkdir_p(l.run_dir, 0700);
                        r = restore_streamed(n, vm, &l, NULL, source, bundle_version, state_info, &moved, &prog,
                                             ret_msg);
                }
                if (r >= 0 && clone && (r = node_clone_identity(vm, ret_msg)) < 0)
                        vmm_release(vm, true);
        } else if (r >= 0) {
                r = vmm_boot(n->driver, &l.vc, 0, &vm->vmm);
                if (r < 0)
                        *ret_msg = xasprintf("vm \"%s\": boot failed: %s (see %s/qemu.log)", name, vmm_failure(r),
                                             l.run_dir);
        }
        launch_clear(&l);
        free(prog.url);
        node_slot_release(slot, false); /* not used: a failure before the restore */
        atomic_fetch_sub(&n->launching, 1);
        if (r < 0) {
                set_state(vm, "stopped");
                node_vm_persist(n, vm);
                pthread_mutex_unlock(&vm->lock);
                return r;
        }
        json_t *result = started_result(n, vm);
        int64_t t2 = time_now_ms();
        json_object_set_new(result, "fetch_ms", json_integer(t1 - t0));
        json_object_set_new(result, "start_ms", json_integer(t2 - t1));
        json_object_set_new(result, "transfer",
                            json_pack("{s:I,s:I,s:I,s:I}", "bytes_total", (json_int_t)moved.bytes_total,
                                      "bytes_transferred", (json_int_t)moved.bytes_transferred, "chunks_total",
                                      (json_int_t)moved.chunks_total, "chunks_transferred",
                                      (json_int_t)moved.chunks_transferred));
        record_result(n, vm, "run", version, result);
        log_info("vm %s v%lld %s: pid %lld at %s (files ready in %lld ms, VMM in %lld ms)", name, (long long)version,
                 mode, (long long)vm->pid, vm->address, (long long)(t1 - t0), (long long)(t2 - t1));
        pthread_mutex_unlock(&vm->lock);
        *ret = result;
        return 0;
}

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
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *mem = xasprintf("%s/memory", dir);
        _cleanup_free_ char *mdir = node_memory_dir(n);
        _cleanup_free_ char *snap = xasprintf("%s/%s", mdir, digest);
        if (file_exists(snap) || chmod(mem, 0444) < 0 || rename(mem, snap) < 0)
                unlink(mem);
}

/* Makes a clone's overlay standalone (its QEMU is saved, which released the image). */
static int clone_disk_detach(node_t *n, node_vm_t *vm, const char *disk_path, char **ret_msg) {
        bundle_config_t bc;
        if (bundle_config_from_json(vm->config, &bc) < 0) {
                *ret_msg = xasprintf("vm \"%s\": malformed vm.json", vm->name);
                return -EINVAL;
        }
        _cleanup_free_ char *image_disk = streq(bc.boot, "disk") ? node_image_path(n, bc.image, "disk") : NULL;
        int64_t t0 = time_now_ms();
        int r = node_clone_detach_disk(disk_path, image_disk, bc.image_format, ret_msg);
        if (r < 0)
                return r;
        log_info("vm %s: clone disk made standalone in %lld ms", vm->name, (long long)(time_now_ms() - t0));
        disk_base_set(vm, NULL);
        node_vm_persist(n, vm);
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
        _cleanup_free_ char *fifo = xasprintf("%s/write-back.fifo", dir);
        _cleanup_free_ char *run = xasprintf("%s/write-back", dir);
        _cleanup_free_ char *mem_new = xasprintf("%s/memory.new", dir);
        _cleanup_free_ char *mem = xasprintf("%s/memory", dir);
        _cleanup_free_ char *scratch = xasprintf("%s/write-back/disk.qcow2", dir);
        launch_t l = { 0 };
        int r = launch_prepare(n, vm, &l, ret_msg);
        uint64_t disk_size = 0;
        if (r >= 0 && (r = qcow2_virtual_size(l.disk, &disk_size)) < 0)
                *ret_msg = xasprintf("vm \"%s\": cannot read the size of %s: %s", vm->name, l.disk, strerror(-r));
        (void)rm_rf(run);
        if (r >= 0 && (r = mkdir_p(run, 0700)) < 0)
                *ret_msg = xasprintf("cannot create %s: %s", run, strerror(-r));
        if (r >= 0) {
                _cleanup_free_ char *size = xasprintf("%" PRIu64, disk_size);
                char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", scratch, size, NULL };
                r = node_qemu_img(argv, ret_msg);
        }
        unlink(mem_new);
        unlink(fifo);
        if (r >= 0 && mkfifo(fifo, 0600) < 0) {
                r = negative_errno();
                *ret_msg = xasprintf("cannot create %s: %s", fifo, strerror(-r));
        }
        vmm_vm_t *helper = NULL;
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
                                                     vm->name, vmm_failure(r), run);
                }
        }
        if (helper) {
                vmm_kill(helper, 0);
                vmm_vm_free(helper);
        }
        unlink(fifo);
        if (r >= 0 && rename(mem_new, mem) < 0)
                r = negative_errno();
        if (r >= 0) {
                (void)rm_rf(run);
                memory_base_set(vm, NULL);
                log_info("vm %s: memory written back into its own file in %lld ms", vm->name,
                         (long long)(time_now_ms() - t0));
        } else
                unlink(mem_new);
        launch_clear(&l);
        return r;
}

int node_vm_save(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg) {
        int64_t version = 0, new_version = 0;
        const json_t *up = json_object_get(cmd, "upload");
        bool upload = json_is_true(up);
        int r = cmd_version(cmd, "version", "save", &version, ret_msg);
        if (r >= 0 && up && !json_is_boolean(up)) {
                *ret_msg = xstrdup("save needs upload true or false");
                r = -EINVAL;
        }
        if (r >= 0 && upload)
                r = cmd_version(cmd, "new_version", "save into the Nest", &new_version, ret_msg);
        if (r >= 0 && upload && new_version <= version) {
                *ret_msg = xstrdup("save needs new_version > version");
                r = -EINVAL;
        }
        if (r >= 0)
                r = cmd_nest_check(n, cmd, ret_msg);
        if (r < 0)
                return r;
        node_vm_t *vm = NULL;
        r = command_lock(n, name, "save", version, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *state_path = xasprintf("%s/state", dir);
        _cleanup_free_ char *tmp_path = xasprintf("%s/state.new", dir);
        _cleanup_free_ char *disk_path = xasprintf("%s/disk.qcow2", dir);
        bool was_running = vm->vmm != NULL;
        if (!was_running && (!streq(vm->state, "suspended") || !file_exists(state_path))) {
                *ret_msg = xasprintf("vm \"%s\" is %s on this RM: nothing to save", name, vm->state);
                pthread_mutex_unlock(&vm->lock);
                return -EPERM;
        }
        lease_take(vm, version);
        if (was_running) {
                r = vm->memory_base ? memory_write_back(n, vm, tmp_path, ret_msg) : vmm_save(vm->vmm, tmp_path, 0);
                if (r >= 0 && rename(tmp_path, state_path) < 0)
                        r = negative_errno();
                if (r < 0) {
                        unlink(tmp_path);
                        if (!*ret_msg)
                                *ret_msg = xasprintf("vm \"%s\": saving its state failed: %s", name, vmm_failure(r));
                        vmm_cont(vm->vmm, 0);
                        pthread_mutex_unlock(&vm->lock);
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
                        pthread_mutex_unlock(&vm->lock);
                        return r;
                }
        }
        json_t *files = json_object();
        if (upload) {
                /* chunk the files into the local cache, then send the Nest what it lacks */
                _cleanup_free_ char *memory_path = xasprintf("%s/memory", dir);
                const char *names[] = { BUNDLE_FILE_STATE, BUNDLE_FILE_DISK, BUNDLE_FILE_MEMORY };
                const char *paths[] = { state_path, disk_path, memory_path };
                nest_transfer_stats_t moved = { 0 };
                json_decref(files);
                files = NULL;
                r = node_nest_stage(n, name, new_version, names, paths, 3, &files, ret_msg);
                if (r >= 0)
                        r = node_nest_push(n, n->oracle, name, new_version, files, &moved, ret_msg);
                if (r < 0) {
                        json_decref(files);
                        /* the VM stays usable where it was */
                        if (was_running && vmm_cont(vm->vmm, 0) < 0)
                                log_error("vm %s: could not continue after a failed save", name);
                        pthread_mutex_unlock(&vm->lock);
                        return r;
                }
                log_info("vm %s v%lld into the Nest: %llu of %llu bytes moved", name, (long long)new_version,
                         (unsigned long long)moved.bytes_transferred, (unsigned long long)moved.bytes_total);
        }
        crash_point("node-save-after-upload");
        vmm_release(vm, true);
        if (upload)
                memory_keep_as_snapshot(n, name, json_object_get(files, BUNDLE_FILE_MEMORY));
        set_state(vm, "suspended");
        json_t *result = json_pack("{s:o}", "files", files);
        record_result(n, vm, "save", version, result);
        log_info("vm %s v%lld saved%s", name, (long long)version, upload ? " into the Nest" : "");
        pthread_mutex_unlock(&vm->lock);
        *ret = result;
        return 0;
}

int node_vm_resume(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg) {
        int64_t version = 0;
        int r = cmd_version(cmd, "version", "resume", &version, ret_msg);
        if (r < 0)
                return r;
        node_vm_t *vm = NULL;
        r = command_lock(n, name, "resume", version, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *state_path = xasprintf("%s/state", dir);
        if (vm->vmm || !streq(vm->state, "suspended") || !file_exists(state_path)) {
                *ret_msg = xasprintf("vm \"%s\" is %s on this RM, not suspended", name, vm->state);
                pthread_mutex_unlock(&vm->lock);
                return -EPERM;
        }
        lease_take(vm, version);
        run_dir_reset(n, vm);
        launch_t l = { 0 };
        r = launch_prepare(n, vm, &l, ret_msg);
        if (r >= 0) {
                r = vmm_restore(n->driver, &l.vc, state_path, 0, &vm->vmm);
                if (r < 0)
                        *ret_msg = xasprintf("vm \"%s\": resume failed: %s (see %s/qemu.log)", name, vmm_failure(r),
                                             l.run_dir);
        }
        launch_clear(&l);
        if (r < 0) {
                pthread_mutex_unlock(&vm->lock);
                return r;
        }
        /* the saved state is consumed: the disk moves on from here */
        unlink(state_path);
        json_t *result = started_result(n, vm);
        record_result(n, vm, "resume", version, result);
        pthread_mutex_unlock(&vm->lock);
        *ret = result;
        return 0;
}

int node_vm_stop(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg) {
        int64_t version = 0, new_version = 0;
        int r = cmd_version(cmd, "version", "stop", &version, ret_msg);
        if (r >= 0)
                r = cmd_version(cmd, "new_version", "stop", &new_version, ret_msg);
        if (r >= 0 && new_version <= version) {
                *ret_msg = xstrdup("stop needs new_version > version");
                r = -EINVAL;
        }
        if (r >= 0)
                r = cmd_nest_check(n, cmd, ret_msg);
        if (r < 0)
                return r;
        node_vm_t *vm = NULL;
        r = command_lock(n, name, "stop", version, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        lease_take(vm, version);
        if (vm->vmm) {
                vmm_shutdown(vm->vmm, SHUTDOWN_TIMEOUT_MS, 0);
                vmm_release(vm, true);
        }
        set_state(vm, "stopped");
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *state_path = xasprintf("%s/state", dir);
        _cleanup_free_ char *disk_path = xasprintf("%s/disk.qcow2", dir);
        unlink(state_path);
        _cleanup_free_ char *memory_path = xasprintf("%s/memory", dir);
        unlink(memory_path); /* a stopped VM boots afresh */
        memory_base_set(vm, NULL);
        json_t *files = json_object();
        if (file_exists(disk_path)) {
                const char *names[] = { BUNDLE_FILE_DISK };
                const char *paths[] = { disk_path };
                json_decref(files);
                files = NULL;
                r = node_nest_stage(n, name, new_version, names, paths, 1, &files, ret_msg);
                if (r >= 0)
                        r = node_nest_push(n, n->oracle, name, new_version, files, NULL, ret_msg);
                if (r < 0) {
                        json_decref(files);
                        node_vm_persist(n, vm);
                        pthread_mutex_unlock(&vm->lock);
                        return r;
                }
        }
        json_t *result = json_pack("{s:o}", "files", files);
        record_result(n, vm, "stop", version, result);
        pthread_mutex_unlock(&vm->lock);
        *ret = result;
        return 0;
}

static void vm_forget(node_t *n, node_vm_t *vm) {
        vmm_release(vm, true);
        run_dir_reset(n, vm);
        _cleanup_free_ char *dir = node_vm_dir(n, vm->name);
        rm_rf(dir);
        /* the entry stays as a tombstone so stale commands for it are still refused */
        set_state(vm, "deleted");
        vm->fwd_port = 0;
}

int node_vm_delete(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg) {
        int64_t version = 0;
        int r = cmd_version(cmd, "version", "delete", &version, ret_msg);
        if (r < 0)
                return r;
        node_vm_t *vm = node_vm_find(n, name);
        if (!vm) {
                *ret = json_object();
                return 0;
        }
        pthread_mutex_lock(&vm->lock);
        r = check_version(vm, "delete", version, ret, ret_msg);
        if (r != 0) {
                pthread_mutex_unlock(&vm->lock);
                return r < 0 ? r : 0;
        }
        lease_take(vm, version);
        vm_forget(n, vm);
        json_t *result = json_object();
        record_result(n, vm, "delete", version, result);
        pthread_mutex_unlock(&vm->lock);
        *ret = result;
        return 0;
}

/* Longer than QEMU_STATUS_TIMEOUT_MS, well under the Oracle's 5 s to declare an RM down. */
#define FENCE_LOCK_WAIT_MS 2500

bool node_vm_fence(node_t *n, node_vm_t *vm, int64_t since_ms, const char *why) {
        /* judged and killed under one hold of the lock: a command that takes the VM meanwhile
         * (a run whose lease the Oracle wrote after answering) must not be killed for it */
        /* a short wait: the supervisor may hold the lock for one status query of a QEMU whose
         * monitor hangs (the very case a fence is for); a command holds it longer and is judged
         * again at the next heartbeat */
        struct timespec deadline = time_realtime_after_ms(FENCE_LOCK_WAIT_MS);
        if (pthread_mutex_timedlock(&vm->lock, &deadline) != 0)
                return false;
        bool fence = !streq(vm->state, "deleted") && !streq(vm->state, "new") && vm->cmd_time_ms < since_ms;
        if (fence) {
                log_warn("vm %s v%lld: %s: killing and removing the local copy", vm->name, (long long)vm->version, why);
                vm_forget(n, vm);
        }
        pthread_mutex_unlock(&vm->lock);
        return fence;
}

json_t *node_vm_describe(node_t *n, node_vm_t *vm, bool with_stats) {
        json_t *j = json_pack("{s:s,s:I,s:s,s:I,s:s?}", "name", vm->name, "version", (json_int_t)vm->version, "state",
                              vm->state, "pid", (json_int_t)vm->pid, "address", *vm->address ? vm->address : NULL);
        vmm_stats_t st;
        if (with_stats && vm->vmm && vmm_stats(vm->vmm, &st) >= 0)
                json_object_set_new(j, "stats",
                                    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "cpu_ns", (json_int_t)st.cpu_ns, "rss_bytes",
                                              (json_int_t)st.rss_bytes, "block_rd_bytes",
                                              (json_int_t)st.block_rd_bytes, "block_wr_bytes",
                                              (json_int_t)st.block_wr_bytes, "net_rx_bytes", (json_int_t)st.net_rx_bytes,
                                              "net_tx_bytes", (json_int_t)st.net_tx_bytes));
        return j;
}

void stale_vmm_kill(node_t *n, const char *name) {
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *run = xasprintf("%s/run", dir);
        vmm_config_t c = { .name = name, .run_dir = run };
        vmm_vm_t *stale = NULL;
        if (vmm_attach(n->driver, &c, 0, &stale) < 0)
                return;
        log_warn("vm %s: killing QEMU pid left by an interrupted command (no lease holds it)", name);
        vmm_kill(stale, 0);
        vmm_vm_free(stale);
}

void node_vms_adopt(node_t *n) {
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
                        stale_vmm_kill(n, de->d_name);
                        continue;
                }
                node_vm_t *vm = node_vm_get_or_create(n, de->d_name);
                pthread_mutex_lock(&vm->lock);
                vm->version = json_integer_value(json_object_get(j, "version"));
                set_state(vm, json_string_value(json_object_get(j, "state")) ?: "stopped");
                vm->config = json_incref(json_object_get(j, "config"));
                vm->fwd_port = (int)json_integer_value(json_object_get(j, "fwd_port"));
                snprintf(vm->last_kind, sizeof vm->last_kind, "%s", json_string_value(json_object_get(j, "last_kind")) ?: "");
                vm->last_version = json_integer_value(json_object_get(j, "last_version"));
                vm->last_result = json_incref(json_object_get(j, "last_result"));
                const char *base = json_string_value(json_object_get(j, "memory_base"));
                vm->memory_base = base ? xstrdup(base) : NULL;
                const char *dbase = json_string_value(json_object_get(j, "disk_base"));
                vm->disk_base = dbase ? xstrdup(dbase) : NULL;
                /* the two ends of a live migration: re-attached, but never continued here (only
                 * the Oracle decides where the guest runs on) */
                bool live_end = streq(vm->state, "incoming") || streq(vm->state, "migrated");
                if (live_end) {
                        launch_t l = { 0 };
                        _cleanup_free_ char *msg = NULL;
                        if (launch_prepare(n, vm, &l, &msg) < 0 || vmm_attach(n->driver, &l.vc, 0, &vm->vmm) < 0)
                                set_state(vm, "crashed");
                        launch_clear(&l);
                        node_vm_persist(n, vm);
                } else if (streq(vm->state, "running") || streq(vm->state, "paused")) {
                        launch_t l = { 0 };
                        _cleanup_free_ char *msg = NULL;
                        int r = launch_prepare(n, vm, &l, &msg);
                        if (r >= 0)
                                r = vmm_attach(n->driver, &l.vc, 0, &vm->vmm);
                        launch_clear(&l);
                        vmm_status_t st = { 0 };
                        if (r >= 0 && vmm_status(vm->vmm, &st) >= 0 && st.state == VMM_RUN_PAUSED) {
                                /* the agent died between saving and finishing the command: the
                                 * Oracle rolled that back, so the VM runs on where it was */
                                log_info("vm %s: found paused after an interrupted command: continuing it", vm->name);
                                vmm_cont(vm->vmm, 0);
                        }
                        if (r >= 0) {
                                json_decref(started_result(n, vm));
                                log_info("vm %s v%lld: re-attached to pid %lld", vm->name, (long long)vm->version,
                                         (long long)vm->pid);
                        } else {
                                set_state(vm, "crashed");
                                log_warn("vm %s v%lld: its QEMU is gone (%s)", vm->name, (long long)vm->version,
                                         msg ? msg : strerror(-r));
                        }
                        node_vm_persist(n, vm);
                }
                pthread_mutex_unlock(&vm->lock);
                json_decref(j);
        }
        closedir(d);
}

bool node_vms_supervise(node_t *n) {
        bool changed = false;
        pthread_mutex_lock(&n->lock);
        node_vm_t *head = n->vms;
        pthread_mutex_unlock(&n->lock);
        /* entries are never freed while the agent runs, so walking without the list lock is safe */
        for (node_vm_t *vm = head; vm; vm = vm->next) {
                if (pthread_mutex_trylock(&vm->lock) != 0)
                        continue;
                vmm_status_t st;
                int r = vm->vmm ? vmm_status(vm->vmm, &st) : -ENOENT;
                if (r >= 0 && st.state == VMM_RUN_GONE) {
                        log_warn("vm %s v%lld: QEMU pid %lld exited unexpectedly", vm->name, (long long)vm->version,
                                 (long long)vm->pid);
                        vmm_release(vm, false);
                        set_state(vm, "crashed");
                        node_vm_persist(n, vm);
                        changed = true;
                } else if (r >= 0 && st.state == VMM_RUN_SHUTDOWN) {
                        /* the guest powered itself off: the process is of no further use */
                        log_warn("vm %s v%lld: guest powered off", vm->name, (long long)vm->version);
                        vmm_release(vm, true);
                        set_state(vm, "crashed");
                        node_vm_persist(n, vm);
                        changed = true;
                }
                pthread_mutex_unlock(&vm->lock);
        }
        return changed;
}

/* ---- migration between RMs (Virtuoso's protocol over the node API) ----
 * The origin stages the suspended VM's files into its chunk cache (stage); the destination
 * receives them from the origin (receive: only the chunks it lacks with "chunks", the whole
 * files with "full"), reporting progress to the Oracle as it goes, and then holds the VM
 * suspended at the command's version. The origin's copy is untouched until the Oracle commits. */

static const char *const migrate_files[] = { BUNDLE_FILE_STATE, BUNDLE_FILE_DISK, BUNDLE_FILE_MEMORY };
#define MIGRATE_FILES (sizeof migrate_files / sizeof *migrate_files)

/* The name of a bundle file in the VM's directory. */
static const char *local_name(const char *file) { return streq(file, BUNDLE_FILE_DISK) ? "disk.qcow2" : file; }

int node_vm_stage(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg) {
        int64_t version = 0;
        int r = cmd_version(cmd, "version", "stage", &version, ret_msg);
        if (r < 0)
                return r;
        node_vm_t *vm = NULL;
        r = command_lock(n, name, "stage", version, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *state_path = xasprintf("%s/state", dir);
        _cleanup_free_ char *disk_path = xasprintf("%s/disk.qcow2", dir);
        _cleanup_free_ char *memory_path = xasprintf("%s/memory", dir);
        if (vm->vmm || !streq(vm->state, "suspended") || !file_exists(state_path) || !file_exists(disk_path) ||
            !file_exists(memory_path)) {
                *ret_msg = xasprintf("vm \"%s\" is %s on this RM: only a suspended VM migrates", name, vm->state);
                pthread_mutex_unlock(&vm->lock);
                return -EPERM;
        }
        lease_take(vm, version);
        const char *paths[] = { state_path, disk_path, memory_path };
        json_t *files = NULL;
        _cleanup_free_ char *why = NULL;
        if (vm->staged && node_nest_restage(n, name, vm->staged_version, version, vm->staged, &why) >= 0) {
                /* unchanged since it was staged or received: no chunking, no hashing */
                json_t *result = json_pack("{s:O}", "files", vm->staged);
                record_result(n, vm, "stage", version, result);
                pthread_mutex_unlock(&vm->lock);
                *ret = result;
                return 0;
        }
        r = node_nest_stage(n, name, version, migrate_files, paths, MIGRATE_FILES, &files, ret_msg);
        /* the whole-file hashes too, for a "full" transfer that bypasses the chunk cache */
        for (size_t i = 0; r >= 0 && i < MIGRATE_FILES; i++) {
                char hex[65];
                r = file_sha256(paths[i], hex);
                if (r >= 0)
                        json_object_set_new(json_object_get(files, migrate_files[i]), "sha256", json_string(hex));
        }
        if (r < 0) {
                json_decref(files);
                if (!*ret_msg)
                        *ret_msg = xasprintf("staging vm \"%s\": %s", name, strerror(-r));
                pthread_mutex_unlock(&vm->lock);
                return r;
        }
        staged_set(vm, files, version);
        json_t *result = json_pack("{s:o}", "files", files);
        record_result(n, vm, "stage", version, result);
        pthread_mutex_unlock(&vm->lock);
        *ret = result;
        return 0;
}

/* The raw file of a suspended VM, for "full" migrations (the scp baseline). */
int node_vm_file_path(node_t *n, const char *name, const char *file, char **ret, char **ret_msg) {
        if (!streq(file, BUNDLE_FILE_STATE) && !streq(file, BUNDLE_FILE_DISK) && !streq(file, BUNDLE_FILE_MEMORY)) {
                *ret_msg = xasprintf("no bundle file \"%s\"", file);
                return -EINVAL;
        }
        node_vm_t *vm = node_vm_find(n, name);
        if (!vm || !streq(vm->state, "suspended")) {
                *ret_msg = xasprintf("vm \"%s\" is not suspended on this RM", name);
                return -ENOENT;
        }
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        *ret = xasprintf("%s/%s", dir, local_name(file));
        return 0;
}

int node_vm_receive(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg) {
        int64_t version = 0;
        int r = cmd_version(cmd, "version", "receive", &version, ret_msg);
        if (r < 0)
                return r;
        const char *origin = json_string_value(json_object_get(cmd, "origin"));
        const char *method = json_string_value(json_object_get(cmd, "method"));
        const char *op = json_string_value(json_object_get(cmd, "op"));
        const json_t *files = json_object_get(cmd, "files");
        const json_t *config = json_object_get(cmd, "config");
        const json_t *image = json_object_get(cmd, "image");
        bundle_config_t bc;
        _cleanup_free_ char *origin_host = NULL;
        int origin_port = 0;
        if (!origin || http_split_hostport(origin, &origin_host, &origin_port) < 0 || !method ||
            (!streq(method, "chunks") && !streq(method, "full")) || !json_is_object(files) ||
            bundle_config_from_json(config, &bc) < 0 || !streq(bc.name, name) || !json_is_object(image) ||
            (op && !name_is_valid(op))) {
                *ret_msg = xstrdup("receive needs version, origin (host:port), method (chunks|full), files, config, "
                                   "image and op");
                return -EINVAL;
        }
        node_vm_t *vm = node_vm_get_or_create(n, name);
        pthread_mutex_lock(&vm->lock);
        r = check_version(vm, "receive", version, ret, ret_msg);
        if (r != 0) {
                pthread_mutex_unlock(&vm->lock);
                return r < 0 ? r : 0;
        }
        lease_take(vm, version);
        vmm_release(vm, true);
        int64_t t0 = time_now_ms();
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *base = xasprintf("http://%s", origin);
        mkdir_p(dir, 0755);
        r = node_cache_image(n, image, ret_msg);
        receive_progress_t prog = { .n = n, .url = op ? xasprintf("%s/v1/ops/%s/heartbeat", n->oracle, op) : NULL };
        nest_transfer_stats_t moved = { 0 };
        for (size_t i = 0; r >= 0 && i < MIGRATE_FILES; i++) {
                const char *file = migrate_files[i];
                const json_t *info = json_object_get(files, file);
                _cleanup_free_ char *dest = xasprintf("%s/%s", dir, local_name(file));
                _cleanup_free_ char *tmp = xasprintf("%s.recv", dest);
                if (streq(method, "chunks")) {
                        r = node_nest_pull_to_path(n, base, name, version, file, info, tmp, &moved, progress_adapter, &prog,
                                                   ret_msg);
                } else {
                        _cleanup_free_ char *url = xasprintf("%s/v1/vms/%s/files/%s", base, name, file);
                        r = http_download(url, tmp, 10L * 60 * 1000, progress_adapter, &prog);
                        if (r < 0) {
                                *ret_msg = xasprintf("fetching %s of %s from %s: %s", file, name, origin, strerror(-r));
                        } else {
                                char hex[65];
                                const char *want = json_string_value(json_object_get(info, "sha256"));
                                r = file_sha256(tmp, hex);
                                if (r >= 0 && (!want || !streq(want, hex))) {
                                        *ret_msg = xasprintf("%s of %s from %s failed verification: not used", file,
                                                             name, origin);
                                        r = -EBADMSG;
                                }
                                int64_t size = file_size(tmp);
                                moved.bytes_total += size > 0 ? (uint64_t)size : 0;
                                moved.bytes_transferred += size > 0 ? (uint64_t)size : 0;
                        }
                }
                if (r >= 0 && rename(tmp, dest) < 0)
                        r = negative_errno();
                if (r < 0)
                        unlink(tmp);
                prog.base = moved.bytes_transferred;
                receive_heartbeat(&prog, 0, 0);
                crash_point("node-receive-mid");
                stall_point("node-receive-mid");
        }
        if (r >= 0 && streq(bc.boot, "disk")) {
                /* the overlay names the origin's copy of the image: point it at ours */
                _cleanup_free_ char *disk = xasprintf("%s/disk.qcow2", dir);
                _cleanup_free_ char *backing = node_image_path(n, bc.image, "disk");
                char *argv[] = { "qemu-img", "rebase", "-u", "-F", bc.image_format, "-b", backing, "-f", "qcow2", disk, NULL };
                r = node_qemu_img(argv, ret_msg);
        }
        free(prog.url);
        if (r < 0) {
                set_state(vm, "stopped");
                node_vm_persist(n, vm);
                pthread_mutex_unlock(&vm->lock);
                return r;
        }
        json_decref(vm->config);
        vm->config = json_deep_copy(config);
        vm->fwd_port = 0;
        memory_base_set(vm, NULL);
        set_state(vm, "suspended");
        /* the files are the manifests just received (their sha256 checked for "full" only) */
        if (streq(method, "chunks"))
                staged_set(vm, files, version);
        double seconds = (double)(time_now_ms() - t0) / 1000.0;
        json_t *result = json_pack("{s:I,s:s,s:I,s:I,s:f}", "version", (json_int_t)version, "method", method,
                                   "bytes_transferred", (json_int_t)moved.bytes_transferred, "bytes_total",
                                   (json_int_t)moved.bytes_total, "seconds", seconds);
        record_result(n, vm, "receive", version, result);
        log_info("vm %s v%lld received from %s by %s: %llu of %llu bytes in %.2f s", name, (long long)version, origin,
                 method, (unsigned long long)moved.bytes_transferred, (unsigned long long)moved.bytes_total, seconds);
        pthread_mutex_unlock(&vm->lock);
        *ret = result;
        return 0;
}
