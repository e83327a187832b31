/* Unit tests of the RM's size (src/node/node-capacity.c): measured on the machine the test runs
 * on (figures the kernel gives another way: sysconf, statvfs), an unreadable directory
 * refused, and the operator's declared figures: each in place of the machine's, none above it
 * (the message naming the option and what the machine has). */
#include <errno.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/util.h"
#include "node/node-capacity.h"
#include "tap.h"

static void test_measure(void) {
        node_capacity_t c = { -1, -1, -1 };
        CHECK(node_capacity_measure(".", &c) == 0);
        /* the machine the tests run on has some RAM, its CPUs, and a disk the build fits on */
        CHECK(c.memory_mib >= 64 && c.memory_mib <= NODE_CAPACITY_MAX);
        CHECK(c.vcpus == sysconf(_SC_NPROCESSORS_ONLN));
        struct statvfs st;
        CHECK(statvfs(".", &st) == 0);
        CHECK(c.disk_gib == (int64_t)(((uint64_t)st.f_blocks * st.f_frsize) >> 30));
        int64_t disk = -1;
        CHECK(node_capacity_disk_gib(".", &disk) == 0 && disk == c.disk_gib);

        /* a data directory that is not there: refused, nothing filled */
        node_capacity_t none = { -7, -7, -7 };
        CHECK(node_capacity_measure("/nonexistent/vmatrix-capacity", &none) == -ENOENT);
        CHECK(none.memory_mib == -7 && none.vcpus == -7 && none.disk_gib == -7);
        disk = -7;
        CHECK(node_capacity_disk_gib("/nonexistent/vmatrix-capacity", &disk) == -ENOENT && disk == -7);
}

static void test_declare(void) {
        const node_capacity_t machine = { .memory_mib = 24576, .vcpus = 8, .disk_gib = 200 };
        node_capacity_t out = { 0 };
        char *msg = NULL;

        /* nothing declared: the machine's figures */
        CHECK(node_capacity_declare(&machine, &(node_capacity_t){ 0 }, &out, &msg) == 0 && !msg);
        CHECK(out.memory_mib == 24576 && out.vcpus == 8 && out.disk_gib == 200);
        /* each declared figure in place of the machine's, the others kept; equal is allowed */
        CHECK(node_capacity_declare(&machine, &(node_capacity_t){ .memory_mib = 2048 }, &out, &msg) == 0);
        CHECK(out.memory_mib == 2048 && out.vcpus == 8 && out.disk_gib == 200);
        CHECK(node_capacity_declare(&machine, &(node_capacity_t){ .vcpus = 2, .disk_gib = 200 }, &out, &msg) == 0);
        CHECK(out.memory_mib == 24576 && out.vcpus == 2 && out.disk_gib == 200);

        /* above the machine: refused, naming the option and what the machine has; out untouched */
        static const struct {
                node_capacity_t declared;
                const char *msg;
        } over[] = {
                { { .memory_mib = 24577 }, "--capacity-memory 24577 is more than this machine has (24576 MiB)" },
                { { .vcpus = 9 }, "--capacity-vcpus 9 is more than this machine has online (8 CPUs)" },
                { { .memory_mib = 1, .disk_gib = 201 },
                  "--capacity-disk 201 is more than the data directory's filesystem holds (200 GiB)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(over); i++) {
                out = (node_capacity_t){ -7, -7, -7 };
                CHECK(node_capacity_declare(&machine, &over[i].declared, &out, &msg) == -ERANGE);
                CHECK_STREQ(msg, over[i].msg);
                CHECK(out.memory_mib == -7 && out.vcpus == -7 && out.disk_gib == -7);
                free(msg);
                msg = NULL;
        }
}

int main(void) {
        test_measure();
        test_declare();
        return tap_finish();
}
