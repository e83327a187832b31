/* Accelerator choice: vmm_accel_pick() (vmm.h) decides between KVM and TCG.
 *
 * KVM is not always the fast choice: under nested virtualisation every exit to the hypervisor
 * (I/O, timers, interrupts) goes through the outer hypervisor and a guest can run ~1000x
 * slower than under TCG. So "auto" takes KVM only when /dev/kvm works AND a short timed probe
 * runs at least as fast under KVM as under TCG. The probe is a boot sector written here byte
 * by byte (no assembler needed) that mixes a register loop with I/O port writes, run by
 * SeaBIOS from an IDE disk; the wall time from exec to QEMU's exit also covers SeaBIOS, which
 * itself does a lot of I/O. The result is cached per host kernel. */
#include "vmm/accel.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/qemu/qemu-argv.h"
#include "vmm/qemu/qemu-process.h"
#include "vmm/vmm.h"

#define ACCEL_PROBE_OUTER 20000 /* port writes (exits under KVM) */
#define ACCEL_PROBE_INNER 1000  /* register-loop iterations between them */
#define ACCEL_KVM_TIMEOUT_MS 3000 /* a KVM slower than this has lost anyway */
#define ACCEL_TCG_TIMEOUT_MS 30000
#define ACCEL_IMAGE_BYTES (64 * 1024) /* a few sectors more than the boot sector, for SeaBIOS */

void accel_probe_sector(uint8_t ret[512], uint32_t outer, uint32_t inner) {
        /* 16-bit real mode, loaded at 0x7c00; 0x66 makes an instruction use 32-bit registers */
        static const uint8_t code[] = {
                0xfa,                               /*  0: cli                      */
                0x66, 0xb9, 0, 0, 0, 0,             /*  1: mov ecx, outer           */
                0x66, 0xba, 0, 0, 0, 0,             /*  7: mov edx, inner           */
                0x66, 0x4a,                         /* 13: dec edx                  */
                0x75, 0xfc,                         /* 15: jnz 13                   */
                0xe6, 0x80,                         /* 17: out 0x80, al             */
                0x66, 0x49,                         /* 19: dec ecx                  */
                0x75, 0xf0,                         /* 21: jnz 7                    */
                0xb0, 0x01,                         /* 23: mov al, 1                */
                0xe6, 0xf4,                         /* 25: out 0xf4, al (exit)      */
                0xf4,                               /* 27: hlt                      */
                0xeb, 0xfd,                         /* 28: jmp 27                   */
        };
        memset(ret, 0, 512);
        memcpy(ret, code, sizeof code);
        outer = MAX(outer, 1u);
        inner = MAX(inner, 1u);
        for (int i = 0; i < 4; i++) {
                ret[3 + i] = (uint8_t)(outer >> (8 * i));
                ret[9 + i] = (uint8_t)(inner >> (8 * i));
        }
        ret[510] = 0x55;
        ret[511] = 0xaa;
}

int accel_probe_image_write(const char *path, uint32_t outer, uint32_t inner) {
        _cleanup_free_ uint8_t *img = xcalloc(ACCEL_IMAGE_BYTES, 1);
        accel_probe_sector(img, outer, inner);
        return file_write_atomic(path, img, ACCEL_IMAGE_BYTES);
}

int accel_probe_run(const char *accel, const char *image, int timeout_ms, int64_t *ret_ms) {
        const char *bin = getenv("VMATRIX_QEMU");
        _cleanup_free_ char *machine = xasprintf("pc,accel=%s", accel);
        _cleanup_free_ char *escaped = qemu_opt_escape(image);
        _cleanup_free_ char *drive = xasprintf("file=%s,format=raw,if=ide", escaped);
        char *const argv[] = {
                (char *)(bin && *bin ? bin : QEMU_DEFAULT_BINARY),
                "-nodefaults", "-no-user-config", "-display", "none", "-machine", machine,
                "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-drive", drive, NULL,
        };
        _cleanup_close_ int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null_fd < 0)
                return negative_errno();
        int64_t t0 = time_now_ms();
        _cleanup_(qemu_process_freep) qemu_process_t *p = NULL;
        int r = qemu_process_spawn(argv, null_fd, &p);
        if (r < 0)
                return r;
        r = qemu_process_wait(p, timeout_ms);
        int64_t ms = time_now_ms() - t0;
        if (r < 0) {
                (void)qemu_process_kill(p, 5000);
                return -ETIMEDOUT;
        }
        int status = qemu_process_exit_status(p);
        if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != ACCEL_PROBE_EXIT_STATUS)
                return -EIO;
        *ret_ms = ms;
        return 0;
}

int accel_kvm_usable(void) {
        _cleanup_close_ int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        int v = ioctl(fd, KVM_GET_API_VERSION, 0);
        if (v < 0)
                return negative_errno();
        return v == KVM_API_VERSION ? 0 : -ENOTSUP;
}

static const char *kernel_release(struct utsname *u) { return uname(u) == 0 ? u->release : ""; }

int accel_cache_read(const char *path, const char **ret_accel) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = file_read(path, &text, &len);
        if (r < 0)
                return r;
        json_t *j = json_loadb(text, len, 0, NULL);
        const char *accel = json_string_value(json_object_get(j, "accel"));
        const char *kernel = json_string_value(json_object_get(j, "kernel"));
        struct utsname u;
        const char *result = NULL;
        if (accel && kernel && streq(kernel, kernel_release(&u)))
                result = streq(accel, "kvm") ? "kvm" : streq(accel, "tcg") ? "tcg" : NULL;
        json_decref(j);
        if (!result)
                return -EINVAL;
        *ret_accel = result;
        return 0;
}

int accel_cache_write(const char *path, const char *accel, int64_t kvm_ms, int64_t tcg_ms) {
        struct utsname u;
        json_t *j = json_pack("{s:s, s:I, s:I, s:s}", "accel", accel, "kvm_ms", (json_int_t)kvm_ms, "tcg_ms",
                              (json_int_t)tcg_ms, "kernel", kernel_release(&u));
        if (!j)
                return -ENOMEM;
        char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!text)
                return -ENOMEM;
        int r = file_write_atomic(path, text, strlen(text));
        free(text);
        return r;
}

/* Run the probe under both accelerators: 0 with kvm or tcg in *ret, and the times (-1 when a
 * probe failed or timed out). */
static int accel_probe(const char **ret, int64_t *ret_kvm_ms, int64_t *ret_tcg_ms) {
        char dir[] = "/tmp/vmatrix-accel-XXXXXX";
        if (!mkdtemp(dir))
                return negative_errno();
        _cleanup_free_ char *image = xasprintf("%s/probe.img", dir);
        int r = accel_probe_image_write(image, ACCEL_PROBE_OUTER, ACCEL_PROBE_INNER);
        int64_t kvm_ms = -1, tcg_ms = -1;
        if (r >= 0) {
                int rk = accel_probe_run("kvm", image, ACCEL_KVM_TIMEOUT_MS, &kvm_ms);
                if (rk < 0)
                        log_debug("accel: KVM probe: %s", strerror(-rk));
                int rt = accel_probe_run("tcg", image, ACCEL_TCG_TIMEOUT_MS, &tcg_ms);
                if (rt < 0)
                        log_debug("accel: TCG probe: %s", strerror(-rt));
                if (rk < 0 && rt < 0)
                        r = rt;
        }
        (void)rm_rf(dir);
        if (r < 0)
                return r;
        *ret = kvm_ms >= 0 && (tcg_ms < 0 || kvm_ms <= tcg_ms) ? "kvm" : "tcg";
        *ret_kvm_ms = kvm_ms;
        *ret_tcg_ms = tcg_ms;
        return 0;
}

int vmm_accel_pick(const char *want, const char *cache_path, const char **ret) {
        if (!want || !ret)
                return -EINVAL;
        if (streq(want, "tcg")) {
                *ret = "tcg";
                return 0;
        }
        int kvm = accel_kvm_usable();
        if (streq(want, "kvm")) {
                if (kvm < 0) {
                        log_error("accel: kvm requested but /dev/kvm is not usable: %s", strerror(-kvm));
                        return -ENODEV;
                }
                *ret = "kvm";
                return 0;
        }
        if (!streq(want, "auto"))
                return -EINVAL;
        if (kvm < 0) {
                log_info("accel: using tcg (/dev/kvm is not usable: %s)", strerror(-kvm));
                *ret = "tcg";
                return 0;
        }
        const char *cached;
        if (cache_path && accel_cache_read(cache_path, &cached) >= 0) {
                log_info("accel: using %s (probe result cached in %s)", cached, cache_path);
                *ret = cached;
                return 0;
        }
        const char *pick;
        int64_t kvm_ms, tcg_ms;
        int r = accel_probe(&pick, &kvm_ms, &tcg_ms);
        if (r < 0) {
                /* no verdict, and nothing cached: TCG works wherever QEMU does */
                log_warn("accel: probe failed (%s); using tcg", strerror(-r));
                *ret = "tcg";
                return 0;
        }
        log_info("accel: using %s (probe: kvm %s%" PRId64 " ms, tcg %" PRId64 " ms)", pick, kvm_ms < 0 ? ">" : "",
                 kvm_ms < 0 ? (int64_t)ACCEL_KVM_TIMEOUT_MS : kvm_ms, tcg_ms);
        if (cache_path) {
                r = accel_cache_write(cache_path, pick, kvm_ms, tcg_ms);
                if (r < 0)
                        log_warn("accel: cannot write %s: %s", cache_path, strerror(-r));
        }
        *ret = pick;
        return 0;
}
