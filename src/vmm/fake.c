/* The fake VMM driver, for unit tests of the node: no processes, no QEMU.
 *
 * A fake VM's whole state is the small JSON file RUN/fake.json ({name, mac, boot_id, state,
 * booted_ms, memory_mib}), so a second handle (attach after an "agent restart") sees the same
 * VM and kill/shutdown make it gone. save writes {name, mac, boot_id} to the state file;
 * restore reads it back and, like a real device-state mismatch, fails with -EINVAL when the
 * config's MAC differs from the saved one. Failures are injected through the environment
 * (VMATRIX_FAKE_FAIL, see fake.h), so there is no global state. Fake VMs have pid 0.
 *
 * For a node on this driver (vmatrix-test node --driver fake) the fake also leaves the files a
 * QEMU would: a VM started with a memory_path gets that file at its RAM size (sparse) unless it
 * maps it copy-on-write, and a state file that is a FIFO (a streamed restore, a save with
 * VMM_SAVE_STREAM) is read or written in place, never replaced by a rename. */
#include "vmm/fake.h"

#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>

#include "base/util.h"

#define FAKE_FILE "fake.json"

typedef struct fake_vm {
        vmm_vm_t header; /* first, as vmm.h requires */
        char *name, *mac, *run_dir, *path;
} fake_vm_t;

extern const vmm_driver_t vmm_fake;

static fake_vm_t *fake_from(vmm_vm_t *vm) { return (fake_vm_t *)vm; }

/* Whether op is listed in VMATRIX_FAKE_FAIL. */
static bool fake_should_fail(const char *op) {
        const char *env = getenv(VMM_FAKE_FAIL_ENV);
        if (!env)
                return false;
        size_t n = strlen(op);
        for (const char *p = env; *p;) {
                size_t len = strcspn(p, ",");
                if (len == n && strncmp(p, op, n) == 0)
                        return true;
                p += len;
                if (*p == ',')
                        p++;
        }
        return false;
}

static bool str_eq_null(const char *a, const char *b) { return (!a && !b) || (a && b && streq(a, b)); }

static int json_file_read(const char *path, json_t **ret) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = file_read(path, &text, &len);
        if (r < 0)
                return r;
        json_t *j = json_loadb(text, len, 0, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                return -EINVAL;
        }
        *ret = j;
        return 0;
}

static int json_file_write(const char *path, json_t *j) {
        _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        return file_write_atomic(path, text, strlen(text));
}

/* Writes a saved state: into a FIFO as it is (its reader is waiting), else atomically. */
static int state_write(const char *path, json_t *j, unsigned flags) {
        if (!(flags & VMM_SAVE_STREAM))
                return json_file_write(path, j);
        _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return fd_write_all(fd, text, strlen(text));
}

/* The guest RAM file a QEMU with memory-backend-file (share=on) creates: memory_mib, sparse. A
 * copy-on-write mapping (memory_private) only reads an existing file. */
static int memory_file_make(const vmm_config_t *cfg) {
        if (!cfg->memory_path || cfg->memory_private)
                return 0;
        _cleanup_close_ int fd = open(cfg->memory_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        return ftruncate(fd, (off_t)(cfg->memory_mib << 20)) < 0 ? negative_errno() : 0;
}

static void fake_free(vmm_vm_t *v) {
        fake_vm_t *vm = fake_from(v);
        if (!vm)
                return;
        free(vm->name);
        free(vm->mac);
        free(vm->run_dir);
        free(vm->path);
        free(vm);
}

static void fake_freep(fake_vm_t **vm) {
        if (*vm)
                fake_free(&(*vm)->header);
}

static fake_vm_t *fake_new(const vmm_config_t *cfg) {
        fake_vm_t *vm = xcalloc(1, sizeof *vm);
        vm->header.driver = &vmm_fake;
        vm->name = xstrdup(cfg->name);
        vm->mac = cfg->mac ? xstrdup(cfg->mac) : NULL;
        vm->run_dir = xstrdup(cfg->run_dir);
        vm->path = xasprintf("%s/" FAKE_FILE, cfg->run_dir);
        return vm;
}

static int fake_config_check(const vmm_config_t *cfg) {
        if (!cfg || !cfg->name || !*cfg->name || !cfg->run_dir || !*cfg->run_dir || cfg->memory_mib == 0 ||
            cfg->vcpus == 0)
                return -EINVAL;
        return 0;
}

/* Write RUN/fake.json for a VM that now runs (or is paused) with boot_id. */
static int fake_start(const vmm_config_t *cfg, const char *boot_id, const char *state, fake_vm_t **ret) {
        int r = mkdir_p(cfg->run_dir, 0700);
        if (r < 0)
                return r;
        _cleanup_(fake_freep) fake_vm_t *vm = fake_new(cfg);
        _cleanup_(json_decrefp) json_t *old = NULL;
        if (json_file_read(vm->path, &old) >= 0)
                return -EBUSY; /* like a live QEMU in the run directory */
        r = memory_file_make(cfg);
        if (r < 0)
                return r;
        _cleanup_(json_decrefp) json_t *j =
                json_pack("{s:s, s:s?, s:s, s:s, s:I, s:I}", "name", cfg->name, "mac", cfg->mac, "boot_id", boot_id,
                          "state", state, "booted_ms", (json_int_t)time_now_ms(), "memory_mib",
                          (json_int_t)cfg->memory_mib);
        if (!j)
                return -ENOMEM;
        r = json_file_write(vm->path, j);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(vm);
        return 0;
}

static int fake_boot(const vmm_config_t *cfg, unsigned flags, vmm_vm_t **ret) {
        int r = fake_config_check(cfg);
        if (r < 0)
                return r;
        if (fake_should_fail("boot"))
                return -EIO;
        uint8_t rnd[8];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
                return -EIO;
        char boot_id[17];
        for (size_t i = 0; i < sizeof rnd; i++)
                sprintf(boot_id + 2 * i, "%02x", rnd[i]);
        fake_vm_t *vm = NULL;
        r = fake_start(cfg, boot_id, "running", &vm);
        if (r < 0)
                return r;
        *ret = &vm->header;
        return 0;
}

static int fake_restore(const vmm_config_t *cfg, const char *state_path, unsigned flags, vmm_vm_t **ret) {
        int r = fake_config_check(cfg);
        if (r < 0 || !state_path)
                return -EINVAL;
        if (fake_should_fail("restore"))
                return -EIO;
        _cleanup_(json_decrefp) json_t *saved = NULL;
        r = json_file_read(state_path, &saved);
        if (r < 0)
                return r == -ENOENT ? -ENOENT : -EINVAL;
        const char *boot_id = json_string_value(json_object_get(saved, "boot_id"));
        if (!boot_id || !str_eq_null(json_string_value(json_object_get(saved, "mac")), cfg->mac))
                return -EINVAL; /* a state written for another device set */
        fake_vm_t *vm = NULL;
        r = fake_start(cfg, boot_id, flags & VMM_RESTORE_PAUSED ? "paused" : "running", &vm);
        if (r < 0)
                return r;
        *ret = &vm->header;
        return 0;
}

static int fake_attach(const vmm_config_t *cfg, unsigned flags, vmm_vm_t **ret) {
        if (!cfg || !cfg->name || !cfg->run_dir)
                return -EINVAL;
        if (fake_should_fail("attach"))
                return -EIO;
        _cleanup_(fake_freep) fake_vm_t *vm = fake_new(cfg);
        _cleanup_(json_decrefp) json_t *j = NULL;
        if (json_file_read(vm->path, &j) < 0)
                return -ESRCH;
        *ret = &TAKE_PTR(vm)->header;
        return 0;
}

/* Load RUN/fake.json: -ESRCH when the VM is gone. */
static int fake_load(fake_vm_t *vm, json_t **ret) {
        int r = json_file_read(vm->path, ret);
        return r == -ENOENT ? -ESRCH : r;
}

static int fake_set_state(vmm_vm_t *v, const char *op, const char *state) {
        fake_vm_t *vm = fake_from(v);
        if (fake_should_fail(op))
                return -EIO;
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = fake_load(vm, &j);
        if (r < 0)
                return r;
        json_object_set_new(j, "state", json_string(state));
        return json_file_write(vm->path, j);
}

static int fake_save(vmm_vm_t *v, const char *state_path, unsigned flags) {
        fake_vm_t *vm = fake_from(v);
        if (!state_path)
                return -EINVAL;
        if (fake_should_fail("save"))
                return -EIO;
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = fake_load(vm, &j);
        if (r < 0)
                return r;
        _cleanup_(json_decrefp) json_t *saved = json_pack("{s:O, s:O?, s:O}", "name", json_object_get(j, "name"), "mac",
                                                 json_object_get(j, "mac"), "boot_id", json_object_get(j, "boot_id"));
        if (!saved)
                return -EINVAL;
        r = state_write(state_path, saved, flags);
        if (r < 0)
                return r;
        json_object_set_new(j, "state", json_string("paused"));
        return json_file_write(vm->path, j);
}

static int fake_pause(vmm_vm_t *v, unsigned flags) { return fake_set_state(v, "pause", "paused"); }
static int fake_cont(vmm_vm_t *v, unsigned flags) { return fake_set_state(v, "cont", "running"); }

static int fake_kill(vmm_vm_t *v, unsigned flags) {
        if (fake_should_fail("kill"))
                return -EIO;
        int r = unlink(fake_from(v)->path) < 0 ? negative_errno() : 0;
        return r == -ENOENT ? 0 : r;
}

static int fake_shutdown(vmm_vm_t *v, int timeout_ms, unsigned flags) {
        if (fake_should_fail("shutdown"))
                return -EIO;
        return fake_kill(v, flags);
}

static int fake_status(vmm_vm_t *v, vmm_status_t *ret) {
        if (fake_should_fail("status"))
                return -EIO;
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = fake_load(fake_from(v), &j);
        if (r == -ESRCH) {
                *ret = (vmm_status_t){ .state = VMM_RUN_GONE };
                return 0;
        }
        if (r < 0)
                return r;
        const char *state = json_string_value(json_object_get(j, "state"));
        *ret = (vmm_status_t){ .state = state && streq(state, "running") ? VMM_RUN_RUNNING : VMM_RUN_PAUSED };
        return 0;
}

static int fake_stats(vmm_vm_t *v, vmm_stats_t *ret) {
        if (fake_should_fail("stats"))
                return -EIO;
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = fake_load(fake_from(v), &j);
        if (r < 0)
                return r;
        uint64_t up_ms = (uint64_t)MAX(time_now_ms() - json_integer_value(json_object_get(j, "booted_ms")), (int64_t)0);
        uint64_t mib = (uint64_t)json_integer_value(json_object_get(j, "memory_mib"));
        /* as if the guest used 5% of a CPU, half its RAM and did a little I/O */
        *ret = (vmm_stats_t){
                .cpu_ns = up_ms * 50000,
                .rss_bytes = mib << 19,
                .block_rd_bytes = up_ms * 16,
                .block_wr_bytes = up_ms * 4,
                .net_rx_bytes = up_ms * 8,
                .net_tx_bytes = up_ms * 32,
        };
        return 0;
}

static int fake_console_path(vmm_vm_t *v, char **ret) {
        *ret = xasprintf("%s/console.sock", fake_from(v)->run_dir);
        return 0;
}

int vmm_fake_boot_id(vmm_vm_t *v, char **ret) {
        if (!v || v->driver != &vmm_fake)
                return -EINVAL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = fake_load(fake_from(v), &j);
        if (r < 0)
                return r;
        const char *id = json_string_value(json_object_get(j, "boot_id"));
        if (!id)
                return -EINVAL;
        *ret = xstrdup(id);
        return 0;
}

const vmm_driver_t vmm_fake = {
        .name = "fake",
        .boot = fake_boot,
        .restore = fake_restore,
        .attach = fake_attach,
        .save = fake_save,
        .pause = fake_pause,
        .cont = fake_cont,
        .shutdown = fake_shutdown,
        .kill = fake_kill,
        .status = fake_status,
        .stats = fake_stats,
        .console_path = fake_console_path,
        .free = fake_free,
};
