/* Unit tests for the accelerator choice (src/vmm/accel.c): forced choices, the probe boot
 * sector's bytes, the cache file, and (when qemu-system-x86_64 is installed) that the probe
 * really runs to its exit under TCG and is killed on timeout. */
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "tap.h"
#include "vmm/accel.h"
#include "vmm/vmm.h"

static void test_forced(void) {
        const char *a = NULL;
        CHECK(vmm_accel_pick("tcg", NULL, &a) == 0);
        CHECK_STREQ(a, "tcg");
        a = NULL;
        int r = vmm_accel_pick("kvm", NULL, &a);
        if (accel_kvm_usable() == 0)
                CHECK(r == 0 && a && streq(a, "kvm"));
        else
                CHECK(r == -ENODEV && a == NULL);
        CHECK(vmm_accel_pick("hvf", NULL, &a) == -EINVAL);
        CHECK(vmm_accel_pick(NULL, NULL, &a) == -EINVAL);
}

static void test_sector(void) {
        uint8_t s[512];
        accel_probe_sector(s, 0x01020304, 1000);
        CHECK(s[510] == 0x55 && s[511] == 0xaa);
        CHECK(s[0] == 0xfa);                                   /* cli */
        CHECK(s[1] == 0x66 && s[2] == 0xb9);                   /* mov ecx, imm32 */
        CHECK(s[3] == 0x04 && s[4] == 0x03 && s[5] == 0x02 && s[6] == 0x01);
        CHECK(s[9] == (1000 & 0xff) && s[10] == (1000 >> 8) && s[11] == 0 && s[12] == 0);
        CHECK(s[15] == 0x75 && (int8_t)s[16] == 13 - 17);      /* jnz back to dec edx */
        CHECK(s[21] == 0x75 && (int8_t)s[22] == 7 - 23);       /* jnz back to mov edx */
        CHECK(s[25] == 0xe6 && s[26] == 0xf4);                 /* out 0xf4, al */
        accel_probe_sector(s, 0, 0);                           /* 0 would loop 2^32 times */
        CHECK(s[3] == 1 && s[9] == 1);
}

static void test_cache(const char *dir) {
        _cleanup_free_ char *path = xasprintf("%s/accel.json", dir);
        const char *a = NULL;
        CHECK(accel_cache_read(path, &a) == -ENOENT);
        CHECK(accel_cache_write(path, "kvm", 12, 340) == 0);
        CHECK(accel_cache_read(path, &a) == 0);
        CHECK_STREQ(a, "kvm");
        _cleanup_free_ char *text = NULL;
        CHECK(file_read(path, &text, NULL) == 0 && strstr(text, "\"kvm_ms\":12") && strstr(text, "\"tcg_ms\":340"));

        /* auto trusts the cache only when KVM works at all */
        CHECK(vmm_accel_pick("auto", path, &a) == 0);
        CHECK_STREQ(a, accel_kvm_usable() == 0 ? "kvm" : "tcg");

        CHECK(file_write_atomic(path, "{\"accel\":\"tcg\",\"kvm_ms\":1,\"tcg_ms\":2,\"kernel\":\"0.0-other\"}", 58) == 0);
        CHECK(accel_cache_read(path, &a) == -EINVAL); /* another kernel: probe again */
        CHECK(file_write_atomic(path, "\x01garbage", 8) == 0);
        CHECK(accel_cache_read(path, &a) == -EINVAL);
        CHECK(file_write_atomic(path, "{\"accel\":\"hvf\"}", 15) == 0);
        CHECK(accel_cache_read(path, &a) == -EINVAL);
}

static bool have_qemu(void) {
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = xstrdup(path ? path : "");
        char *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                _cleanup_free_ char *f = xasprintf("%s/qemu-system-x86_64", d);
                if (access(f, X_OK) == 0)
                        return true;
        }
        return false;
}

static void test_probe_tcg(const char *dir) {
        if (!have_qemu()) {
                fprintf(stderr, "# qemu-system-x86_64 not installed: probe run skipped\n");
                return;
        }
        _cleanup_free_ char *img = xasprintf("%s/probe.img", dir);
        CHECK(accel_probe_image_write(img, 100, 100) == 0);
        CHECK(file_size(img) >= 512);
        int64_t ms = -1;
        CHECK(accel_probe_run("tcg", img, 20000, &ms) == 0 && ms > 0);
        /* an endless probe is killed at the timeout */
        CHECK(accel_probe_image_write(img, 0xffffffffu, 0xffffffffu) == 0);
        int64_t t0 = time_now_ms();
        CHECK(accel_probe_run("tcg", img, 300, &ms) == -ETIMEDOUT);
        CHECK(time_now_ms() - t0 < 5000);
        /* not a boot sector: SeaBIOS finds nothing to boot and the probe never exits */
        CHECK(file_write_atomic(img, "nope", 4) == 0);
        CHECK(accel_probe_run("tcg", img, 1000, &ms) < 0);
}

int main(void) {
        char dir[] = "/tmp/vmx-test-accel-XXXXXX";
        if (!mkdtemp(dir))
                return 1;
        test_forced();
        test_sector();
        test_cache(dir);
        test_probe_tcg(dir);
        rm_rf(dir);
        return tap_finish();
}
