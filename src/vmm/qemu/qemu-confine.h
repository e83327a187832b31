/* What a confined QEMU needs (vmm_config_t.confine): the jail of a config, and the files made
 * the VM's uid's. The mechanism is base/jail.c; this file knows which files a QEMU opens:
 *
 *   read-only   /usr /lib* /bin /sbin /etc, the kernel and initrd, every backing file of the
 *               disk (read from the qcow2 headers, so clones' bases and images' disks alike)
 *   read-write  the run directory (monitor, console and agent sockets, pidfile, console log),
 *               the disk, the memory file
 *   devices     /dev/null zero full random urandom, and /dev/kvm under KVM
 *   /proc       its own processes only
 *
 * Saved states and restore streams are never opened by QEMU: the driver opens them and hands
 * QEMU the descriptor (getfd), so they need no bind. Ownership: the run directory and what is in
 * it, the disk and a memory file of the VM's own become the VM's uid's; a file that does not
 * exist yet (a fresh boot's memory file) is created empty for it (QEMU sizes an empty file).
 *
 * A snapshot mapped copy-on-write (memory_private) stays root's, but QEMU 7.2 opens it O_RDWR
 * even for share=off (physmem.c file_ram_open; QEMU 8.2 falls back to O_RDONLY), so it is made
 * writable to every uid (0666) inside a directory only root can enter (the node's DATA/memory is
 * 0700): only the QEMUs it is bound into can reach it. Such a QEMU could write to the snapshot
 * and so reach the memory of other VMs mapping it (its clones); see docs/confinement.md. */
#pragma once

#include "base/jail.h"
#include "vmm/vmm.h"

#define QEMU_CONFINE_BACKING_MAX 16

/* The backing files of the qcow2 image path, nearest first, as absolute paths (malloc'd,
 * NULL-terminated; empty when path is not qcow2 or has no backing file). -EINVAL for a backing
 * file QEMU would not open as a plain file (json:, a protocol prefix), -ELOOP for a chain deeper
 * than QEMU_CONFINE_BACKING_MAX. */
int qemu_confine_backing_chain(const char *path, char ***ret);

/* Whether every backing file of disk lies in one of the directories allowed: -EPERM and
 * *ret_bad (malloc'd, may be NULL) naming the first that does not. For the node's own qemu-img
 * runs on a disk a confined QEMU wrote, as much as for the jail. */
int qemu_confine_backing_check(const char *disk, char *const *allowed, char **ret_bad);

/* The jail QEMU runs in for cfg (cfg->confine set): everything above, the cgroups and the
 * credentials of cfg->confine. */
int qemu_confine_jail(const vmm_config_t *cfg, jail_t **ret, const char **ret_bad);

/* The binds a warm slot needs to become cfg's VM: its disk with the backing files, and its
 * memory file (root_dir-less plan, for jail_expose). cfg->confine gives the backing dirs. */
int qemu_confine_slot_jail(const vmm_config_t *cfg, jail_t **ret, const char **ret_bad);

/* Gives uid:gid the files cfg's QEMU writes (see above); with slot, only the disk and the
 * memory file (a slot's run directory is its own already). *ret_bad names a failing path. */
int qemu_confine_files(const vmm_config_t *cfg, uid_t uid, gid_t gid, bool slot, const char **ret_bad);
