/* Warm slots (vmm.h slot_start/slot_restore): a QEMU started ahead of time in --preconfig,
 * so that an activation pays neither exec, dynamic linking, accelerator set-up nor the
 * monitor handshake. QEMU 7.2 resolves "-machine memory-backend" before preconfig, so the
 * RAM is NUMA node 0's memdev instead (qemu-argv.c does the same for every VM, which keeps
 * one device set): object-add creates the memory backend, set-numa-node attaches it,
 * blockdev-add opens the disk, and x-exit-preconfig builds the board with the -device list
 * of the command line. From then on it is an ordinary incoming QEMU (qemu_incoming_load).
 *
 * A slot fits a VM only if the VM's command line, minus RAM file, disk file, name, run
 * directory, MAC and kernel command line, is the slot's: the "shape" string compared below.
 * One consequence: a guest that reboots inside a QEMU that was a slot boots with the slot's
 * kernel command line (the image's, without the VM's vmx.name). */
#include <inttypes.h>
#include <string.h>

#include "base/log.h"
#include "base/macro.h"
#include "base/util.h"
#include "vmm/qemu/qemu-argv.h"
#include "vmm/qemu/qemu-confine.h"
#include "vmm/qemu/qemu-internal.h"

/* The slot command line cfg would need, as one string; NULL if cfg is invalid. */
static char *shape_of(const vmm_config_t *cfg, const char *run_dir, const char *name) {
        vmm_config_t c = *cfg;
        c.memory_path = NULL;
        c.memory_private = false;
        c.disk = NULL;
        c.run_dir = run_dir;
        c.name = name;
        /* both only matter at a (re)boot: the MAC a guest has is in its saved device state, and
         * the kernel command line is read from fw_cfg when the guest boots */
        c.mac = NULL;
        c.cmdline = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        if (qemu_argv_build(&c, "qemu", QEMU_ARGV_SLOT, NULL, &argv) < 0)
                return NULL;
        size_t len = 1;
        for (char **a = argv; *a; a++)
                len += strlen(*a) + 1;
        char *s = xcalloc(len, 1);
        for (char **a = argv; *a; a++) {
                strcat(s, *a);
                strcat(s, "\n");
        }
        return s;
}

int qemu_slot_start(const vmm_config_t *shape, unsigned flags, vmm_vm_t **ret) {
        if (!shape || shape->memory_path || shape->disk)
                return -EINVAL;
        int64_t t0 = time_now_ms();
        _cleanup_(qemu_vm_abandonp) qemu_vm_t *vm = NULL;
        int r = qemu_start(shape, QEMU_ARGV_SLOT, "slot start", &vm);
        if (r < 0)
                return r;
        vm->slot_shape = shape_of(shape, shape->run_dir, shape->name);
        log_info("slot %s: QEMU pid %d waiting in %s (%" PRId64 " ms)", vm->name, (int)qemu_process_pid(vm->proc),
                 shape->run_dir, time_now_ms() - t0);
        *ret = &TAKE_PTR(vm)->header;
        return 0;
}

static int slot_complete(qemu_vm_t *vm, const vmm_config_t *cfg, qmp_error_t *err) {
        _cleanup_(json_decrefp) json_t *mem = json_pack(
                "{s:s,s:s,s:I,s:s,s:b}", "qom-type", "memory-backend-file", "id", QEMU_RAM_ID, "size",
                (json_int_t)(cfg->memory_mib << 20), "mem-path", cfg->memory_path, "share", !cfg->memory_private);
        _cleanup_(json_decrefp) json_t *numa =
                json_pack("{s:s,s:i,s:s}", "type", "node", "nodeid", 0, "memdev", QEMU_RAM_ID);
        _cleanup_(json_decrefp) json_t *disk =
                json_pack("{s:s,s:s,s:{s:s,s:s}}", "driver", cfg->disk_format ? cfg->disk_format : "qcow2",
                          "node-name", QEMU_DISK_ID, "file", "driver", "file", "filename", cfg->disk);
        if (!mem || !numa || !disk)
                return -ENOMEM;
        int r = qmp_command_send(vm->qmp, "object-add", mem, -1, QEMU_CMD_TIMEOUT_MS, err, NULL);
        if (r >= 0)
                r = qmp_command_send(vm->qmp, "set-numa-node", numa, -1, QEMU_CMD_TIMEOUT_MS, err, NULL);
        if (r >= 0)
                r = qmp_command_send(vm->qmp, "blockdev-add", disk, -1, QEMU_CMD_TIMEOUT_MS, err, NULL);
        if (r >= 0)
                r = qmp_command_send(vm->qmp, "x-exit-preconfig", NULL, -1, QEMU_CMD_TIMEOUT_MS, err, NULL);
        return r;
}

/* A confined slot: the VM's disk (with its backing files) and memory file become the slot's
 * uid's and appear in its mount namespace, before QEMU is told to open them. Logs a failure. */
static int slot_confine(qemu_vm_t *vm, const vmm_config_t *cfg) {
        if (!vm->confined && !cfg->confine)
                return 0;
        if (!vm->confined || !cfg->confine || cfg->confine->uid != vm->uid) {
                log_error("slot %s: vm %s is confined as uid %u, the slot %s", vm->name, cfg->name,
                          cfg->confine ? (unsigned)cfg->confine->uid : 0u, vm->confined ? "as another" : "is not");
                return -EINVAL;
        }
        const char *bad = NULL, *step = NULL;
        int r = qemu_confine_files(cfg, vm->uid, vm->gid, true, &bad);
        if (r < 0) {
                log_error("slot %s: cannot give uid %u the file %s of vm %s: %s", vm->name, (unsigned)vm->uid, bad,
                          cfg->name, strerror(-r));
                return r;
        }
        _cleanup_(jail_freep) jail_t *j = NULL;
        r = qemu_confine_slot_jail(cfg, &j, &bad);
        if (r >= 0 && (r = jail_expose(j, qemu_process_pid(vm->proc), &step)) < 0)
                bad = step;
        if (r < 0) {
                log_error("slot %s: cannot show vm %s's files to its QEMU: %s: %s", vm->name, cfg->name,
                          bad ? bad : "?", strerror(-r));
                return r;
        }
        return 0;
}

int qemu_slot_restore(vmm_vm_t *slot, const vmm_config_t *cfg, const char *state_path, unsigned flags) {
        qemu_vm_t *vm = qemu_vm_from(slot);
        int64_t t0 = time_now_ms();
        if (!cfg || !state_path || !cfg->memory_path || !cfg->disk || !vm->slot_shape) {
                qemu_kill(slot, 0);
                return -EINVAL;
        }
        _cleanup_free_ char *want = shape_of(cfg, vm->run_dir, vm->name);
        if (!want || !streq(want, vm->slot_shape)) {
                log_error("slot %s: does not fit vm %s (RAM size, vcpus, kernel, machine or forward differ)", vm->name,
                          cfg->name ? cfg->name : "?");
                qemu_kill(slot, 0);
                return -EINVAL;
        }
        int r = slot_confine(vm, cfg);
        if (r < 0) {
                qemu_kill(slot, 0);
                return r;
        }
        qmp_error_t err = { 0 };
        r = slot_complete(vm, cfg, &err);
        if (r < 0) {
                _cleanup_free_ char *msg = xasprintf("completing the slot for vm %s", cfg->name);
                qemu_log_failure(vm, msg, r, &err);
                qemu_kill(slot, 0);
                return r == -ESRCH ? r : -EIO;
        }
        free(vm->name);
        vm->name = xstrdup(cfg->name);
        vm->memory_file = true;
        free(vm->slot_shape);
        vm->slot_shape = NULL;
        r = qemu_incoming_load(vm, state_path, flags, t0);
        if (r < 0)
                qemu_kill(slot, 0);
        return r;
}
