/* The fake VMM driver, for unit tests and the daemon tests (vmatrix-test node --driver fake):
 * no processes and no QEMU, but the files and the rules of one, so that a node on it runs its
 * real code paths.
 *
 * A fake VMM "process" is the small JSON file RUN/fake.json ({name, mac, boot_id, state,
 * booted_ms, memory_mib, vcpus, ram, saved}), so a second handle (attach after an agent restart,
 * a test hook in another process) sees the same VM, and kill, shutdown and a crash make it gone.
 *
 * Guest RAM is a small JSON object ("ram") that the running guest changes (vmm_fake_ram_set) and
 * that goes where QEMU puts RAM:
 *  - in a shared memory file (memory_path, not memory_private), which exists at the VM's RAM size
 *    (sparse) while it runs: a save writes the RAM into the file (its first FAKE_RAM_MAX bytes)
 *    and not into the state, as x-ignore-shared does; a restore of such a state reads the RAM
 *    back from the file, which must be there at the right size;
 *  - in the state file when the RAM is mapped copy-on-write (memory_private) or anonymous, or the
 *    save has VMM_ALL_RAM; a copy-on-write mapped file is only ever read.
 * A restore with VMM_ALL_RAM of a state without RAM fails, as QEMU's capability mismatch does.
 * A state is {name, mac, boot_id[, ram]}; a config whose MAC differs from the saved one fails
 * the restore with -EINVAL (another device set). A state path that is a FIFO (a streamed
 * restore, VMM_SAVE_STREAM) is read or written in place.
 *
 * As with QEMU: the disk, kernel and initrd a config names must exist; a VM saved once must
 * continue before it saves again (-EALREADY); a warm slot waits in state "slot" for a restore of
 * its shape. Fake VMs have pid 0: they are not processes. Failures are injected through the
 * environment (VMATRIX_FAKE_FAIL, see fake.h), so there is no global state. The fake writes its
 * files itself, not with file_write_atomic, so that VMATRIX_FAULT=file-write counts only the
 * writes of the program under test (a real QEMU is another process). */
#include "vmm/fake.h"

#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "base/util.h"

#define FAKE_FILE "fake.json"
#define FAKE_RAM_MAX 4096 /* bytes of a memory file that hold the fake guest's RAM */

typedef struct fake_vm {
        vmm_vm_t header; /* first, as vmm.h requires */
        char *name, *mac, *run_dir, *path;
        char *memory_path;   /* NULL: anonymous RAM */
        bool memory_private; /* memory_path is mapped copy-on-write */
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

/* Replaces path by j (temporary file and rename: readers see the old or the new content). */
static int json_file_write(const char *path, const json_t *j) {
        _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        int r = fd_write_all(fd, text, strlen(text));
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0)
                unlink(tmp);
        return r;
}

/* Writes a saved state: into a FIFO as it is (its reader is waiting), else atomically. */
static int state_write(const char *path, const json_t *j, unsigned flags) {
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

/* The guest RAM held by a memory file of memory_mib: -EINVAL when the file has another size
 * (QEMU refuses it) or its RAM is not the fake's. *ret is a new object. */
static int ram_file_read(const char *path, uint64_t memory_mib, json_t **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if ((uint64_t)st.st_size != memory_mib << 20)
                return -EINVAL;
        char buf[FAKE_RAM_MAX];
        ssize_t n = pread(fd, buf, sizeof buf, 0);
        if (n != (ssize_t)sizeof buf)
                return n < 0 ? negative_errno() : -EINVAL;
        if (buf[0] == 0) {
                *ret = json_object(); /* never written: fresh RAM */
                return 0;
        }
        json_t *ram = json_loadb(buf, strnlen(buf, sizeof buf), 0, NULL);
        if (!json_is_object(ram)) {
                json_decref(ram);
                return -EINVAL;
        }
        *ret = ram;
        return 0;
}

/* Puts ram into the memory file of memory_mib (created, sparse, as memory-backend-file does). */
static int ram_file_write(const char *path, uint64_t memory_mib, const json_t *ram) {
        _cleanup_free_ char *text = json_dumps(ram, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        size_t len = strlen(text);
        if (len >= FAKE_RAM_MAX)
                return -E2BIG;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        if (ftruncate(fd, (off_t)(memory_mib << 20)) < 0)
                return negative_errno();
        char buf[FAKE_RAM_MAX] = { 0 };
        memcpy(buf, text, len);
        return pwrite(fd, buf, sizeof buf, 0) == (ssize_t)sizeof buf ? 0 : -EIO;
}

static void fake_free(vmm_vm_t *v) {
        fake_vm_t *vm = fake_from(v);
        if (!vm)
                return;
        free(vm->name);
        free(vm->mac);
        free(vm->run_dir);
        free(vm->path);
        free(vm->memory_path);
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
        vm->memory_path = cfg->memory_path ? xstrdup(cfg->memory_path) : NULL;
        vm->memory_private = cfg->memory_private;
        return vm;
}

static int fake_config_check(const vmm_config_t *cfg) {
        if (!cfg || !cfg->name || !*cfg->name || !cfg->run_dir || !*cfg->run_dir || cfg->memory_mib == 0 ||
            cfg->vcpus == 0)
                return -EINVAL;
        return 0;
}

/* The files QEMU would open at start: -ENOENT when one is missing. */
static int config_files_check(const vmm_config_t *cfg) {
        const char *files[] = { cfg->disk, cfg->kernel, cfg->initrd };
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if (files[i] && !file_exists(files[i]))
                        return -ENOENT;
        return 0;
}

/* Writes RUN/fake.json for a VM that now runs (or is paused) with boot_id and ram. */
static int fake_start(const vmm_config_t *cfg, const char *boot_id, const char *state, const json_t *ram,
                      fake_vm_t **ret) {
        int r = mkdir_p(cfg->run_dir, 0700);
        if (r < 0)
                return r;
        _cleanup_(fake_freep) fake_vm_t *vm = fake_new(cfg);
        _cleanup_(json_decrefp) json_t *old = NULL;
        if (json_file_read(vm->path, &old) >= 0)
                return -EBUSY; /* like a live QEMU in the run directory */
        _cleanup_(json_decrefp) json_t *j =
                json_pack("{s:s, s:s?, s:s, s:s, s:I, s:I, s:I, s:O, s:b}", "name", cfg->name, "mac", cfg->mac,
                          "boot_id", boot_id, "state", state, "booted_ms", (json_int_t)time_now_ms(), "memory_mib",
                          (json_int_t)cfg->memory_mib, "vcpus", (json_int_t)cfg->vcpus, "ram", ram, "saved", 0);
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
        r = config_files_check(cfg);
        if (r < 0)
                return r;
        uint8_t rnd[8];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
                return -EIO;
        char boot_id[17];
        for (size_t i = 0; i < sizeof rnd; i++)
                sprintf(boot_id + 2 * i, "%02x", rnd[i]);
        _cleanup_(json_decrefp) json_t *ram = json_object(); /* a cold boot: fresh RAM */
        if (cfg->memory_path && !cfg->memory_private && (r = ram_file_write(cfg->memory_path, cfg->memory_mib, ram)) < 0)
                return r;
        fake_vm_t *vm = NULL;
        r = fake_start(cfg, boot_id, "running", ram, &vm);
        if (r < 0)
                return r;
        *ret = &vm->header;
        return 0;
}

/* Starts a VM for cfg from the state at state_path (see the top of the file for the RAM). */
static int restore_into(const vmm_config_t *cfg, const char *state_path, unsigned flags, fake_vm_t **ret) {
        _cleanup_(json_decrefp) json_t *saved = NULL;
        int r = json_file_read(state_path, &saved);
        if (r < 0)
                return r == -ENOENT ? -ENOENT : -EINVAL;
        const char *boot_id = json_string_value(json_object_get(saved, "boot_id"));
        if (!boot_id || !str_eq_null(json_string_value(json_object_get(saved, "mac")), cfg->mac))
                return -EINVAL; /* a state written for another device set */
        r = config_files_check(cfg);
        if (r < 0)
                return r;
        /* a state without RAM has "ram": null (json_pack's O? keeps the key) */
        json_t *saved_ram = json_object_get(saved, "ram");
        _cleanup_(json_decrefp) json_t *ram = json_is_object(saved_ram) ? json_incref(saved_ram) : NULL;
        if (!ram && (flags & VMM_ALL_RAM))
                return -EINVAL; /* both sides must agree on where RAM travels */
        if (ram && cfg->memory_path && !cfg->memory_private)
                r = ram_file_write(cfg->memory_path, cfg->memory_mib, ram); /* loaded into the shared file */
        else if (!ram)
                r = cfg->memory_path ? ram_file_read(cfg->memory_path, cfg->memory_mib, &ram) : -EINVAL;
        if (r < 0)
                return r == -ENOENT ? -ENOENT : -EINVAL;
        return fake_start(cfg, boot_id, flags & VMM_RESTORE_PAUSED ? "paused" : "running", ram, ret);
}

static int fake_restore(const vmm_config_t *cfg, const char *state_path, unsigned flags, vmm_vm_t **ret) {
        int r = fake_config_check(cfg);
        if (r < 0 || !state_path)
                return -EINVAL;
        if (fake_should_fail("restore"))
                return -EIO;
        fake_vm_t *vm = NULL;
        r = restore_into(cfg, state_path, flags, &vm);
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
        if (streq(state, "running"))
                json_object_set_new(j, "saved", json_false());
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
        if (json_is_true(json_object_get(j, "saved")))
                return -EALREADY;
        const json_t *ram = json_object_get(j, "ram");
        /* RAM in a shared file stays there (x-ignore-shared); any other RAM is in the stream */
        bool ram_in_state = (flags & VMM_ALL_RAM) || !vm->memory_path || vm->memory_private;
        uint64_t mib = (uint64_t)json_integer_value(json_object_get(j, "memory_mib"));
        if (!ram_in_state && (r = ram_file_write(vm->memory_path, mib, ram)) < 0)
                return r;
        _cleanup_(json_decrefp) json_t *saved =
                json_pack("{s:O, s:O?, s:O, s:O?}", "name", json_object_get(j, "name"), "mac", json_object_get(j, "mac"),
                          "boot_id", json_object_get(j, "boot_id"), "ram", ram_in_state ? ram : NULL);
        if (!saved)
                return -EINVAL;
        r = state_write(state_path, saved, flags);
        if (r < 0)
                return r;
        json_object_set_new(j, "state", json_string("paused"));
        json_object_set_new(j, "saved", json_true());
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
        const char *state = json_string_value(json_object_get(j, "state")) ?: "";
        vmm_run_state_t s = streq(state, "running")    ? VMM_RUN_RUNNING
                            : streq(state, "shutdown") ? VMM_RUN_SHUTDOWN
                            : streq(state, "slot")     ? VMM_RUN_INMIGRATE
                                                       : VMM_RUN_PAUSED;
        *ret = (vmm_status_t){ .state = s };
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

/* A warm slot: a VMM of a shape (RAM size, vCPUs) waiting without RAM or disk. */
static int fake_slot_start(const vmm_config_t *shape, unsigned flags, vmm_vm_t **ret) {
        int r = fake_config_check(shape);
        if (r < 0)
                return r;
        if (fake_should_fail("slot_start"))
                return -EIO;
        r = mkdir_p(shape->run_dir, 0700);
        if (r < 0)
                return r;
        _cleanup_(fake_freep) fake_vm_t *vm = fake_new(shape);
        _cleanup_(json_decrefp) json_t *old = NULL;
        if (json_file_read(vm->path, &old) >= 0)
                return -EBUSY;
        _cleanup_(json_decrefp) json_t *j =
                json_pack("{s:s, s:s, s:I, s:I, s:I}", "name", shape->name, "state", "slot", "booted_ms",
                          (json_int_t)time_now_ms(), "memory_mib", (json_int_t)shape->memory_mib, "vcpus",
                          (json_int_t)shape->vcpus);
        if (!j)
                return -ENOMEM;
        r = json_file_write(vm->path, j);
        if (r < 0)
                return r;
        *ret = &TAKE_PTR(vm)->header;
        return 0;
}

/* Completes a slot with cfg and loads state_path into it, as restore would; a cfg of another
 * shape or a failure kills the slot. The handle becomes the VM's. */
static int fake_slot_restore(vmm_vm_t *v, const vmm_config_t *cfg, const char *state_path, unsigned flags) {
        fake_vm_t *slot = fake_from(v);
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = fake_load(slot, &j);
        if (r < 0)
                return r;
        bool fits = fake_config_check(cfg) >= 0 && state_path &&
                    streq(json_string_value(json_object_get(j, "state")) ?: "", "slot") &&
                    (uint64_t)json_integer_value(json_object_get(j, "memory_mib")) == cfg->memory_mib &&
                    json_integer_value(json_object_get(j, "vcpus")) == (json_int_t)cfg->vcpus;
        (void)fake_kill(v, 0); /* the slot's own file: the restored VM replaces it, or nothing does */
        if (!fits)
                return -EINVAL;
        if (fake_should_fail("slot_restore"))
                return -EIO;
        fake_vm_t *vm = NULL;
        r = restore_into(cfg, state_path, flags, &vm);
        if (r < 0)
                return r;
        /* the slot's handle is the VM's from now on */
        fake_vm_t tmp = *slot;
        *slot = *vm;
        *vm = tmp;
        fake_free(&vm->header);
        return 0;
}

/* The guest agent: "identity NAME SEED" (a clone's new identity, node-clone.c) is answered
 * "ok"; a guest that does not run does not answer. */
static int fake_agent_call(vmm_vm_t *v, const char *request, int timeout_ms, char **ret_reply) {
        fake_vm_t *vm = fake_from(v);
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = fake_load(vm, &j);
        if (r < 0)
                return r;
        if (fake_should_fail("agent") || !streq(json_string_value(json_object_get(j, "state")) ?: "", "running"))
                return -ETIMEDOUT;
        char name[64];
        if (sscanf(request, "identity %63s", name) != 1) {
                *ret_reply = xstrdup("error unknown request");
                return -EPROTO;
        }
        json_t *ram = json_object_get(j, "ram");
        if (json_is_object(ram))
                json_object_set_new(ram, "identity", json_string(name));
        r = json_file_write(vm->path, j);
        if (r < 0)
                return r;
        *ret_reply = xstrdup("ok");
        return 0;
}

static int fake_balloon_set(vmm_vm_t *v, uint64_t target_bytes) {
        fake_vm_t *vm = fake_from(v);
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = fake_load(vm, &j);
        if (r < 0)
                return r;
        json_object_set_new(j, "balloon_bytes", json_integer((json_int_t)target_bytes));
        return json_file_write(vm->path, j);
}

static int fake_balloon_get(vmm_vm_t *v, uint64_t *ret_actual_bytes) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = fake_load(fake_from(v), &j);
        if (r < 0)
                return r;
        const json_t *b = json_object_get(j, "balloon_bytes");
        *ret_actual_bytes = b ? (uint64_t)json_integer_value(b)
                              : (uint64_t)json_integer_value(json_object_get(j, "memory_mib")) << 20;
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

/* ---- test hooks (fake.h) ---- */

static char *hook_path(const char *run_dir) { return xasprintf("%s/" FAKE_FILE, run_dir); }

int vmm_fake_guest_get(const char *run_dir, json_t **ret) {
        _cleanup_free_ char *path = hook_path(run_dir);
        int r = json_file_read(path, ret);
        return r == -ENOENT ? -ESRCH : r;
}

int vmm_fake_ram_set(const char *run_dir, const char *key, const char *value) {
        _cleanup_free_ char *path = hook_path(run_dir);
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = vmm_fake_guest_get(run_dir, &j);
        if (r < 0)
                return r;
        json_t *ram = json_object_get(j, "ram");
        if (!streq(json_string_value(json_object_get(j, "state")) ?: "", "running") || !json_is_object(ram))
                return -EAGAIN;
        json_object_set_new(ram, key, json_string(value));
        return json_file_write(path, j);
}

int vmm_fake_crash(const char *run_dir) {
        _cleanup_free_ char *path = hook_path(run_dir);
        return unlink(path) < 0 ? (errno == ENOENT ? -ESRCH : negative_errno()) : 0;
}

int vmm_fake_poweroff(const char *run_dir) {
        _cleanup_free_ char *path = hook_path(run_dir);
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r = vmm_fake_guest_get(run_dir, &j);
        if (r < 0)
                return r;
        json_object_set_new(j, "state", json_string("shutdown"));
        return json_file_write(path, j);
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
        .slot_start = fake_slot_start,
        .slot_restore = fake_slot_restore,
        .agent_call = fake_agent_call,
        .balloon_set = fake_balloon_set,
        .balloon_get = fake_balloon_get,
};
