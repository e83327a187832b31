/* vm.json conversion and file verification for bundles (see bundle.h). */
#include "bundle/bundle.h"

#include <string.h>

#include "base/util.h"

bool bundle_mac_is_valid(const char *mac) {
        if (!mac || strlen(mac) != 17)
                return false;
        for (int i = 0; i < 17; i++) {
                char c = mac[i];
                if (i % 3 == 2) {
                        if (c != ':')
                                return false;
                } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                        return false;
                }
        }
        return (strtoul(mac, NULL, 16) & 1) == 0;
}

int bundle_version_from_json(const json_t *j, int64_t *ret) {
        if (!json_is_integer(j))
                return -EINVAL;
        json_int_t v = json_integer_value(j);
        if (v < 1 || v > BUNDLE_VERSION_MAX)
                return -ERANGE;
        *ret = v;
        return 0;
}

bool bundle_sha256_is_valid(const char *hex) {
        if (!hex || strlen(hex) != 64)
                return false;
        for (const char *p = hex; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static int copy_string(char *dst, size_t size, const json_t *j, const char *key, bool required) {
        const json_t *v = json_object_get(j, key);
        if (!v && !required) {
                *dst = 0;
                return 0;
        }
        if (!json_is_string(v) || strlen(json_string_value(v)) >= size)
                return -EINVAL;
        snprintf(dst, size, "%s", json_string_value(v));
        return 0;
}

int bundle_config_from_json(const json_t *j, bundle_config_t *ret) {
        bundle_config_t c = { 0 };
        if (!json_is_object(j))
                return -EINVAL;
        if (copy_string(c.name, sizeof c.name, j, "name", true) < 0 || !name_is_valid(c.name))
                return -EINVAL;
        if (copy_string(c.mac, sizeof c.mac, j, "mac", true) < 0 || !bundle_mac_is_valid(c.mac))
                return -EINVAL;
        /* the image name becomes a path on the node (DATA/images/IMAGE/FILE) */
        if (copy_string(c.image, sizeof c.image, j, "image", true) < 0 || !name_is_valid(c.image) ||
            copy_string(c.boot, sizeof c.boot, j, "boot", true) < 0 ||
            copy_string(c.cmdline, sizeof c.cmdline, j, "cmdline", false) < 0 ||
            copy_string(c.image_format, sizeof c.image_format, j, "image_format", false) < 0)
                return -EINVAL;
        if (!streq(c.boot, "kernel") && !streq(c.boot, "disk"))
                return -EINVAL;
        c.memory_mib = json_integer_value(json_object_get(j, "memory_mib"));
        c.vcpus = json_integer_value(json_object_get(j, "vcpus"));
        c.disk_size_mib = json_integer_value(json_object_get(j, "disk_size_mib"));
        if (c.memory_mib < BUNDLE_MEMORY_MIB_MIN || c.memory_mib > BUNDLE_MEMORY_MIB_MAX || c.vcpus < 1 ||
            c.vcpus > BUNDLE_VCPUS_MAX)
                return -EINVAL;
        const json_t *cpu = json_object_get(j, "cpu_limit");
        if (cpu && !json_is_null(cpu)) {
                if (!json_is_integer(cpu))
                        return -EINVAL;
                c.cpu_limit = json_integer_value(cpu);
                if (c.cpu_limit < 1 || c.cpu_limit > BUNDLE_CPU_LIMIT_PER_VCPU * c.vcpus)
                        return -EINVAL;
        }
        if (streq(c.boot, "kernel") && (c.disk_size_mib < 1 || c.disk_size_mib > BUNDLE_DISK_SIZE_MIB_MAX))
                return -EINVAL;
        if (streq(c.boot, "disk") && !streq(c.image_format, "qcow2") && !streq(c.image_format, "raw"))
                return -EINVAL;
        /* the command line reaches QEMU as one argv element; forbid characters that could
         * confuse the guest's parser or our logs */
        for (const char *p = c.cmdline; *p; p++)
                if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
                        return -EINVAL;
        *ret = c;
        return 0;
}

json_t *bundle_config_to_json(const bundle_config_t *c) {
        json_t *j = json_pack("{s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:I,s:s}", "name", c->name, "memory_mib",
                         (json_int_t)c->memory_mib, "vcpus", (json_int_t)c->vcpus, "mac", c->mac, "image", c->image,
                         "boot", c->boot, "cmdline", c->cmdline, "disk_size_mib", (json_int_t)c->disk_size_mib,
                         "image_format", c->image_format);
        if (j && c->cpu_limit > 0)
                json_object_set_new(j, "cpu_limit", json_integer(c->cpu_limit));
        return j;
}


