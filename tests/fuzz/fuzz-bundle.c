/* Harness: vm.json (bundle/bundle.h), the config of a VM that travels in every run, receive
 * and live-receive command and is stored in every bundle. The input is any JSON value.
 * Checked: a config accepted is within the limits bundle.h names, converts back to JSON and
 * from it again to the same struct; a config refused leaves the result untouched. The same
 * value's "version", "mac" and "digest" go to the small validators the protocol shares. */
#include <stdbool.h>

#include "base/util.h"
#include "bundle/bundle.h"
#include "fuzz.h"

static void check_config(const json_t *j) {
        bundle_config_t c, untouched;
        memset(&c, 0xa5, sizeof c);
        untouched = c;
        if (bundle_config_from_json(j, &c) < 0) {
                FUZZ_CHECK(memcmp(&c, &untouched, sizeof c) == 0);
                return;
        }
        FUZZ_CHECK(name_is_valid(c.name) && name_is_valid(c.image) && bundle_mac_is_valid(c.mac));
        FUZZ_CHECK(c.memory_mib >= BUNDLE_MEMORY_MIB_MIN && c.memory_mib <= BUNDLE_MEMORY_MIB_MAX);
        FUZZ_CHECK(c.vcpus >= 1 && c.vcpus <= BUNDLE_VCPUS_MAX);
        FUZZ_CHECK(streq(c.boot, "kernel") || streq(c.boot, "disk"));
        FUZZ_CHECK(!streq(c.boot, "kernel") || (c.disk_size_mib >= 1 && c.disk_size_mib <= BUNDLE_DISK_SIZE_MIB_MAX));
        FUZZ_CHECK(!streq(c.boot, "disk") || streq(c.image_format, "qcow2") || streq(c.image_format, "raw"));
        for (const char *p = c.cmdline; *p; p++)
                FUZZ_CHECK(*p >= 0x20 && *p != 0x7f && *p != '"' && *p != '\\');
        json_t *back = bundle_config_to_json(&c);
        bundle_config_t again;
        memset(&again, 0, sizeof again);
        FUZZ_CHECK(back && bundle_config_from_json(back, &again) == 0);
        FUZZ_CHECK(memcmp(&c, &again, sizeof c) == 0);
        json_decref(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *j = fuzz_json_answer(data, size);
        check_config(j);
        int64_t v = -1;
        int r = bundle_version_from_json(json_object_get(j, "version"), &v);
        FUZZ_CHECK(r < 0 ? v == -1 : v >= 1 && v <= BUNDLE_VERSION_MAX);
        const char *mac = json_string_value(json_object_get(j, "mac"));
        if (bundle_mac_is_valid(mac))
                FUZZ_CHECK(strlen(mac) == 17);
        const char *digest = json_string_value(json_object_get(j, "digest"));
        if (bundle_sha256_is_valid(digest))
                FUZZ_CHECK(strlen(digest) == 64 && strspn(digest, "0123456789abcdef") == 64);
        json_decref(j);
        return 0;
}
