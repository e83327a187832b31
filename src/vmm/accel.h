/* Internals of the accelerator choice (accel.c), exposed for tests/unit/test-accel.c.
 * The public entry point is vmm_accel_pick() in vmm.h. */
#pragma once

#include <stdint.h>

/* A 512-byte x86 real-mode boot sector that runs outer iterations of (inner iterations of a
 * register loop, then one write to I/O port 0x80, which exits to the hypervisor under KVM),
 * then writes 1 to isa-debug-exit at 0xf4, so QEMU exits with status (1 << 1) | 1 = 3. */
void accel_probe_sector(uint8_t ret[512], uint32_t outer, uint32_t inner);
#define ACCEL_PROBE_EXIT_STATUS 3

/* Boot image (the sector plus padding) at path. */
int accel_probe_image_write(const char *path, uint32_t outer, uint32_t inner);

/* Boot image under accel ("kvm" or "tcg") and measure the wall time to QEMU's exit. Returns 0
 * and the time, -ETIMEDOUT when it took longer than timeout_ms (QEMU is killed), -EIO when
 * QEMU failed or exited with another status. */
int accel_probe_run(const char *accel, const char *image, int timeout_ms, int64_t *ret_ms);

/* The cache file: {"accel":"tcg","kvm_ms":..,"tcg_ms":..,"kernel":"<uname -r>"}.
 * read returns -ENOENT when absent, -EINVAL when malformed or written under another kernel;
 * *ret_accel is a static string. */
int accel_cache_read(const char *path, const char **ret_accel);
int accel_cache_write(const char *path, const char *accel, int64_t kvm_ms, int64_t tcg_ms);

/* Whether /dev/kvm opens and answers KVM_GET_API_VERSION: 0, or -errno. */
int accel_kvm_usable(void);
