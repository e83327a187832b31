/* Measures the RM's size (node-capacity.h). sysinfo() rather than /proc/meminfo: the same
 * MemTotal, without reading and parsing a file; sysconf for the CPUs; statvfs for the disk. */
#include "node/node-capacity.h"

#include <errno.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "base/util.h"

int node_capacity_disk_gib(const char *dir, int64_t *ret) {
        struct statvfs st;
        if (statvfs(dir, &st) < 0)
                return -errno;
        /* f_blocks counts f_frsize units; a filesystem of more than 2^64 bytes does not exist */
        uint64_t bytes = (uint64_t)st.f_blocks * (uint64_t)st.f_frsize;
        *ret = (int64_t)MIN(bytes >> 30, (uint64_t)NODE_CAPACITY_MAX);
        return 0;
}

int node_capacity_measure(const char *dir, node_capacity_t *ret) {
        struct sysinfo si;
        if (sysinfo(&si) < 0)
                return -errno;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpus < 1)
                cpus = 1; /* sysconf cannot tell: the CPU this runs on */
        int64_t disk = 0;
        int r = node_capacity_disk_gib(dir, &disk);
        if (r < 0)
                return r;
        uint64_t mem = (uint64_t)si.totalram * (si.mem_unit ? si.mem_unit : 1);
        *ret = (node_capacity_t){ .memory_mib = (int64_t)MIN(mem >> 20, (uint64_t)NODE_CAPACITY_MAX),
                                  .vcpus = MIN((int64_t)cpus, NODE_CAPACITY_MAX),
                                  .disk_gib = disk };
        return 0;
}

int node_capacity_declare(const node_capacity_t *machine, const node_capacity_t *declared, node_capacity_t *ret,
                          char **ret_msg) {
        /* keep in the order of node_capacity_t */
        static const struct {
                const char *option, *what, *unit;
        } names[] = { { "--capacity-memory", "this machine has", "MiB" },
                      { "--capacity-vcpus", "this machine has online", "CPUs" },
                      { "--capacity-disk", "the data directory's filesystem holds", "GiB" } };
        const int64_t has[] = { machine->memory_mib, machine->vcpus, machine->disk_gib };
        const int64_t want[] = { declared->memory_mib, declared->vcpus, declared->disk_gib };
        int64_t out[ELEMENTSOF(has)];
        for (size_t i = 0; i < ELEMENTSOF(has); i++) {
                if (want[i] > has[i]) {
                        *ret_msg = xasprintf("%s %lld is more than %s (%lld %s)", names[i].option, (long long)want[i],
                                             names[i].what, (long long)has[i], names[i].unit);
                        return -ERANGE;
                }
                out[i] = want[i] > 0 ? want[i] : has[i];
        }
        *ret = (node_capacity_t){ .memory_mib = out[0], .vcpus = out[1], .disk_gib = out[2] };
        return 0;
}
