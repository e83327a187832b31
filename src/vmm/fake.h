/* The fake VMM driver (fake.c) and its test hooks; unit tests and vmatrix-test only (the
 * installed vmatrix never links it, see src/node/node-driver.h). */
#pragma once

#include <jansson.h>

#include "vmm/vmm.h"

/* The fake guest's boot id: new at boot, carried through save/restore (malloc'd). */
int vmm_fake_boot_id(vmm_vm_t *vm, char **ret);

/* Failure injection: VMATRIX_FAKE_FAIL holds a comma-separated list of operations
 * (boot, restore, attach, save, pause, cont, shutdown, kill, status, stats, slot_start,
 * slot_restore, agent) that fail with -EIO. */
#define VMM_FAKE_FAIL_ENV "VMATRIX_FAKE_FAIL"

/* Test hooks: they act on the fake VM whose run directory is run_dir, whichever process holds
 * its handle (a node of vmatrix-test), as the guest or the host would. Call them while no
 * command runs on the VM (the node rewrites the same file).
 *
 * vmm_fake_guest_get: what the fake VMM process holds, RUN/fake.json: {name, mac, boot_id,
 *   state (running | paused | slot | shutdown), memory_mib, ram {KEY: VALUE}} (a new reference).
 *   -ESRCH when no fake VMM runs there.
 * vmm_fake_ram_set: the running guest writes KEY=VALUE into its RAM (a mark a test finds again
 *   after save, restore, migration; lost by a cold boot). -EAGAIN unless it runs.
 * vmm_fake_crash: the VMM process dies (its status becomes VMM_RUN_GONE).
 * vmm_fake_poweroff: the guest powers itself off (VMM_RUN_SHUTDOWN, the process stays). */
int vmm_fake_guest_get(const char *run_dir, json_t **ret);
int vmm_fake_ram_set(const char *run_dir, const char *key, const char *value);
int vmm_fake_crash(const char *run_dir);
int vmm_fake_poweroff(const char *run_dir);
