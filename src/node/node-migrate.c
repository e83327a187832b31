/* Migration between RMs (Virtuoso's protocol over the node API). */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "net/http-client.h"
#include "node/node-command.h"
#include "node/node-migrate.h"
#include "node/node-progress.h"
#include "node/node-registry.h"
#include "node/node-vm.h"

/* ---- migration between RMs (Virtuoso's protocol over the node API) ----
 * The origin stages the suspended VM's files into its chunk cache (stage); the destination
 * receives them from the origin (receive: only the chunks it lacks with "chunks", the whole
 * files with "full"), reporting progress to the Oracle as it goes, and then holds the VM
 * suspended at the command's version. The origin's copy is untouched until the Oracle commits. */

static const char *const migrate_files[] = { BUNDLE_FILE_STATE, BUNDLE_FILE_DISK, BUNDLE_FILE_MEMORY };
#define MIGRATE_FILES (sizeof migrate_files / sizeof *migrate_files)

/* The name of a bundle file in the VM's directory. */
static const char *local_name(const char *file) { return streq(file, BUNDLE_FILE_DISK) ? "disk.qcow2" : file; }

int node_migrate_stage(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg) {
        int64_t version = cmd->version;
        _cleanup_(node_command_unlockp) node_vm_t *vm = NULL;
        int r = node_command_lock(n, name, cmd, 0, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *state_path = node_vm_file(n, name, "state");
        _cleanup_free_ char *disk_path = xasprintf("%s/disk.qcow2", dir);
        _cleanup_free_ char *memory_path = node_vm_file(n, name, "memory");
        if (vm->vmm || !streq(vm->state, "suspended") || !file_exists(state_path) || !file_exists(disk_path) ||
            !file_exists(memory_path)) {
                *ret_msg = xasprintf("vm \"%s\" is %s on this RM: only a suspended VM migrates", name, vm->state);
                return -EPERM;
        }
        node_command_lease(vm, version);
        const char *paths[] = { state_path, disk_path, memory_path };
        json_t *files = NULL;
        _cleanup_free_ char *why = NULL;
        if (vm->staged && node_nest_restage(n, name, vm->staged_version, version, vm->staged, &why) >= 0) {
                /* unchanged since it was staged or received: no chunking, no hashing */
                json_t *result = node_proto_files_answer(json_incref(vm->staged));
                if ((r = node_command_record(n, vm, cmd, result, ret_msg)) < 0)
                        return r;
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
                return r;
        }
        node_vm_staged_set(vm, files, version);
        json_t *result = node_proto_files_answer(files);
        if ((r = node_command_record(n, vm, cmd, result, ret_msg)) < 0)
                return r;
        *ret = result;
        return 0;
}

/* The raw file of a suspended VM, for "full" migrations (the scp baseline). */
int node_migrate_file_path(node_t *n, const char *name, const char *file, char **ret, char **ret_msg) {
        if (!streq(file, BUNDLE_FILE_STATE) && !streq(file, BUNDLE_FILE_DISK) && !streq(file, BUNDLE_FILE_MEMORY)) {
                *ret_msg = xasprintf("no bundle file \"%s\"", file);
                return -EINVAL;
        }
        _cleanup_(node_registry_releasep) node_vm_t *vm = node_registry_find(n, name);
        if (!vm || !streq(vm->state, "suspended")) {
                *ret_msg = xasprintf("vm \"%s\" is not suspended on this RM", name);
                return -ENOENT;
        }
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        *ret = xasprintf("%s/%s", dir, local_name(file));
        return 0;
}

int node_migrate_receive(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg) {
        const node_cmd_receive_t *c = &cmd->receive;
        int64_t version = cmd->version;
        const char *origin = c->origin, *method = c->method == NODE_RECEIVE_CHUNKS ? "chunks" : "full";
        _cleanup_(node_command_unlockp) node_vm_t *vm = NULL;
        int r = node_command_lock(n, name, cmd, NODE_COMMAND_CREATE, &vm, ret, ret_msg);
        if (r <= 0)
                return r;
        node_command_lease(vm, version);
        node_disk_mark_drop(n, name); /* its disk is replaced */
        node_vm_vmm_release(vm, true);
        int64_t t0 = time_now_ms();
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        /* mutual TLS to the origin, which must prove it is the RM the Oracle named */
        _cleanup_free_ char *base = c->origin_rm ? xasprintf("https://%s@%s", c->origin_rm, origin)
                                                 : xasprintf("https://%s", origin);
        mkdir_p(dir, 0755);
        r = node_cache_image(n, c->image, ret_msg);
        _cleanup_(node_progress_clear) node_progress_t prog = node_progress_for(n, c->op);
        nest_transfer_stats_t moved = { 0 };
        for (size_t i = 0; r >= 0 && i < MIGRATE_FILES; i++) {
                const char *file = migrate_files[i];
                const json_t *info = json_object_get(c->files, file);
                _cleanup_free_ char *dest = xasprintf("%s/%s", dir, local_name(file));
                _cleanup_free_ char *tmp = xasprintf("%s.recv", dest);
                if (c->method == NODE_RECEIVE_CHUNKS) {
                        r = node_nest_pull_to_path(n, base, name, version, file, info, tmp, &moved, node_progress_report,
                                                   &prog, ret_msg);
                } else {
                        _cleanup_free_ char *url = xasprintf("%s/v1/vms/%s/files/%s", base, name, file);
                        r = http_download(url, tmp, 10L * 60 * 1000, node_progress_report, &prog);
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
                node_progress_report(&prog, 0, 0);
                crash_point("node-receive-mid");
                stall_point("node-receive-mid");
        }
        if (r >= 0 && streq(c->bc.boot, "disk")) {
                /* the overlay names the origin's copy of the image: point it at ours */
                _cleanup_free_ char *disk = xasprintf("%s/disk.qcow2", dir);
                _cleanup_free_ char *backing = node_cache_image_path(n, c->bc.image, "disk");
                char *argv[] = { "qemu-img", "rebase", "-u", "-F", (char *)c->bc.image_format, "-b", backing, "-f", "qcow2",
                                 disk, NULL };
                r = node_qemu_img(argv, NODE_QEMU_IMG_QUICK_MS, ret_msg);
        }
        if (r < 0) {
                node_vm_state_set(vm, "stopped");
                node_registry_persist(n, vm);
                return r;
        }
        node_vm_config_set(vm, c->config);
        node_vm_state_set(vm, "suspended");
        /* the files are the manifests just received (their sha256 checked for "full" only) */
        if (c->method == NODE_RECEIVE_CHUNKS)
                node_vm_staged_set(vm, c->files, version);
        double seconds = (double)(time_now_ms() - t0) / 1000.0;
        json_t *result = node_proto_receive_answer(version, c->method, &moved, seconds);
        if ((r = node_command_record(n, vm, cmd, result, ret_msg)) < 0)
                return r;
        log_info("vm %s v%lld received from %s by %s: %llu of %llu bytes in %.2f s", name, (long long)version, origin,
                 method, (unsigned long long)moved.bytes_transferred, (unsigned long long)moved.bytes_total, seconds);
        *ret = result;
        return 0;
}
