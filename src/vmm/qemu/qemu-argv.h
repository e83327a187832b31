/* The QEMU command line of a VM, built from its vmm_config_t alone: a pure function, so that a
 * restore with the same config creates exactly the devices the saved state describes (device
 * set, PCI addresses, MAC, RAM size and backend, machine type). Nothing host-dependent that
 * ends up in the migration stream may be added here without coming from the config.
 *
 * Files QEMU creates live in cfg->run_dir under the names below; the driver uses the same
 * names to find them (keep in sync with qemu.c). */
#pragma once

#include "vmm/vmm.h"

#define QEMU_RUN_PIDFILE "qemu.pid"
#define QEMU_RUN_QMP "qmp.sock"
#define QEMU_RUN_CONSOLE "console.sock"
#define QEMU_RUN_CONSOLE_LOG "console.log"
#define QEMU_RUN_LOG "qemu.log"
#define QEMU_RUN_AGENT "agent.sock" /* the guest agent's virtio-serial port */
#define QEMU_RUN_VNC "vnc.sock"     /* the display's VNC server: a UNIX socket, never TCP */

#define QEMU_DEFAULT_BINARY "qemu-system-x86_64"
#define QEMU_DEFAULT_MACHINE "pc"

/* Flags of qemu_argv_build() */
#define QEMU_ARGV_INCOMING (1u << 0) /* restore: wait for "migrate-incoming" (-incoming defer -S) */
/* a warm slot: --preconfig, -incoming defer -S, and no RAM or disk yet; the driver adds them
 * (object-add, set-numa-node, blockdev-add) once it knows which VM the slot becomes. The
 * config must have memory_path and disk NULL. */
#define QEMU_ARGV_SLOT (1u << 1)

/* Names inside QEMU shared by the command line and the driver's QMP commands. */
#define QEMU_RAM_ID "ram0"
#define QEMU_DISK_ID "disk0"

/* Check cfg and build the NULL-terminated argv for binary (NULL: QEMU_DEFAULT_BINARY).
 * Returns 0 and a strv the caller frees with strv_free(); or -EINVAL when a field is missing
 * or malformed, -ENAMETOOLONG when a socket path in run_dir does not fit a sockaddr_un, and
 * then *bad_field (may be NULL) names the offending field for the error message. */
int qemu_argv_build(const vmm_config_t *cfg, const char *binary, unsigned flags, const char **bad_field,
                    char ***ret);

/* "run_dir/file", malloc'd. */
char *qemu_run_path(const char *run_dir, const char *file);

/* A value for a QEMU "key=value,..." option list: commas doubled. malloc'd. */
char *qemu_opt_escape(const char *s);
