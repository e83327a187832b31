/* Test hooks of the fake VMM driver (fake.c); unit tests only. */
#pragma once

#include "vmm/vmm.h"

/* The fake guest's boot id: new at boot, carried through save/restore (malloc'd). */
int vmm_fake_boot_id(vmm_vm_t *vm, char **ret);

/* Failure injection: VMATRIX_FAKE_FAIL holds a comma-separated list of operations
 * (boot, restore, attach, save, pause, cont, shutdown, kill, status, stats) that fail with -EIO. */
#define VMM_FAKE_FAIL_ENV "VMATRIX_FAKE_FAIL"
