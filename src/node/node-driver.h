/* The node's choice of VMM driver. The installed vmatrix has only the QEMU driver; the fake
 * driver (src/vmm/fake.c) is selectable only in vmatrix-test, built with -Dtest_drivers=true,
 * where this file is compiled again with VMATRIX_TEST_DRIVERS. */
#pragma once

#include "vmm/vmm.h"

/* The driver named want ("qemu", or "fake" in the test build; NULL: $VMATRIX_VMM_DRIVER in the
 * test build, else qemu). Returns -ENOTSUP (and says why on stderr) for a driver this binary
 * cannot run, -EINVAL for an unknown name. */
int node_driver_pick(const char *want, const vmm_driver_t **ret);
