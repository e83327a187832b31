/* The node's VMM driver by name (see node-driver.h). Two static libraries are built from this
 * file: node_driver (for vmatrix, the fake driver compiled out) and, with -Dtest_drivers=true,
 * node_driver_test (VMATRIX_TEST_DRIVERS, for vmatrix-test only). */
#include "node/node-driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int node_driver_pick(const char *want, const vmm_driver_t **ret) {
#ifdef VMATRIX_TEST_DRIVERS
        if (!want)
                want = getenv("VMATRIX_VMM_DRIVER");
#endif
        if (!want || strcmp(want, "qemu") == 0) {
                *ret = &vmm_qemu;
                return 0;
        }
        if (strcmp(want, "fake") == 0) {
#ifdef VMATRIX_TEST_DRIVERS
                *ret = &vmm_fake;
                return 0;
#else
                fprintf(stderr, "vmatrix node: the fake driver exists only in the test build (vmatrix-test, "
                                "meson -Dtest_drivers=true)\n");
                return -ENOTSUP;
#endif
        }
        fprintf(stderr, "vmatrix node: unknown driver \"%s\" (known: qemu)\n", want);
        return -EINVAL;
}
