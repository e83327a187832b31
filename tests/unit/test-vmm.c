/* Unit tests for the VMM interface (src/vmm/vmm.c) and the fake driver (src/vmm/fake.c):
 * dispatch of unsupported operations, the fake's lifecycle, save/restore round trip keeping
 * the boot id, MAC mismatch, attach after free, failure injection, where the fake guest's RAM
 * goes (a shared memory file, the state, a copy-on-write mapping), warm slots and the test
 * hooks (crash, power-off, the guest agent); and the QEMU driver's
 * process layer (src/vmm/qemu/qemu-process.c) with ordinary programs standing in for QEMU. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "base/util.h"
#include "tap.h"
#include "vmm/fake.h"
#include "vmm/qemu/qemu-process.h"
#include "vmm/vmm.h"

/* A driver that can only boot, to check that every NULL slot dispatches to -EOPNOTSUPP. */
static const vmm_driver_t test_boot_only;
static vmm_vm_t boot_only_vm = { .driver = &test_boot_only };

static int boot_only(const vmm_config_t *cfg, unsigned flags, vmm_vm_t **ret) {
        *ret = &boot_only_vm;
        return 0;
}

static const vmm_driver_t test_boot_only = { .name = "boot-only", .boot = boot_only };

static void test_dispatch(void) {
        vmm_config_t cfg = { .name = "x" };
        vmm_vm_t *vm = NULL;
        CHECK(vmm_boot(&test_boot_only, &cfg, 0, &vm) == 0 && vm);
        vmm_status_t st;
        vmm_stats_t s;
        char *p = NULL;
        CHECK(vmm_restore(&test_boot_only, &cfg, "/x", 0, &vm) == -EOPNOTSUPP);
        CHECK(vmm_attach(&test_boot_only, &cfg, 0, &vm) == -EOPNOTSUPP);
        CHECK(vmm_save(vm, "/x", 0) == -EOPNOTSUPP);
        CHECK(vmm_pause(vm, 0) == -EOPNOTSUPP);
        CHECK(vmm_cont(vm, 0) == -EOPNOTSUPP);
        CHECK(vmm_shutdown(vm, 10, 0) == -EOPNOTSUPP);
        CHECK(vmm_kill(vm, 0) == -EOPNOTSUPP);
        CHECK(vmm_status(vm, &st) == -EOPNOTSUPP);
        CHECK(vmm_stats(vm, &s) == -EOPNOTSUPP);
        CHECK(vmm_console_path(vm, &p) == -EOPNOTSUPP);
        CHECK(vmm_vm_free(vm) == NULL); /* no free slot: nothing to do */
        CHECK(vmm_status(NULL, &st) == -EOPNOTSUPP);
        CHECK(vmm_vm_free(NULL) == NULL);
}

static vmm_config_t config(const char *run_dir, const char *mac) {
        return (vmm_config_t){
                .name = "web1",
                .run_dir = run_dir,
                .memory_mib = 256,
                .vcpus = 1,
                .mac = mac,
                .accel = "tcg",
        };
}

static vmm_run_state_t state_of(vmm_vm_t *vm) {
        vmm_status_t st = { .state = -1 };
        return vmm_status(vm, &st) < 0 ? (vmm_run_state_t)-1 : st.state;
}

static void test_fake_lifecycle(const char *dir) {
        _cleanup_free_ char *run = xasprintf("%s/run1", dir);
        _cleanup_free_ char *state = xasprintf("%s/state1", dir);
        vmm_config_t cfg = config(run, "52:54:00:00:00:01");

        vmm_vm_t *vm = NULL;
        CHECK(vmm_boot(&vmm_fake, &cfg, 0, &vm) == 0 && vm);
        if (!vm)
                return;
        CHECK(state_of(vm) == VMM_RUN_RUNNING);
        vmm_vm_t *dup = NULL;
        CHECK(vmm_boot(&vmm_fake, &cfg, 0, &dup) == -EBUSY && !dup);
        vmm_stats_t s;
        time_sleep_ms(5);
        CHECK(vmm_stats(vm, &s) == 0 && s.rss_bytes > 0 && s.cpu_ns > 0);
        _cleanup_free_ char *console = NULL;
        CHECK(vmm_console_path(vm, &console) == 0 && str_endswith(console, "/console.sock"));
        CHECK(vmm_pause(vm, 0) == 0 && state_of(vm) == VMM_RUN_PAUSED);
        CHECK(vmm_cont(vm, 0) == 0 && state_of(vm) == VMM_RUN_RUNNING);

        _cleanup_free_ char *boot_id = NULL, *restored_id = NULL, *attached_id = NULL;
        CHECK(vmm_fake_boot_id(vm, &boot_id) == 0 && boot_id && strlen(boot_id) == 16);

        /* agent restart: a new handle sees the same VM */
        vm = vmm_vm_free(vm);
        CHECK(vmm_attach(&vmm_fake, &cfg, 0, &vm) == 0 && vm);
        if (!vm)
                return;
        CHECK(vmm_fake_boot_id(vm, &attached_id) == 0);
        CHECK_STREQ(attached_id, boot_id);

        CHECK(vmm_save(vm, state, 0) == 0);
        CHECK(file_exists(state));
        CHECK(state_of(vm) == VMM_RUN_PAUSED);
        CHECK(vmm_kill(vm, 0) == 0);
        CHECK(state_of(vm) == VMM_RUN_GONE);
        CHECK(vmm_kill(vm, 0) == 0);
        CHECK(vmm_pause(vm, 0) == -ESRCH);
        CHECK(vmm_stats(vm, &s) == -ESRCH);
        vm = vmm_vm_free(vm);
        CHECK(vmm_attach(&vmm_fake, &cfg, 0, &vm) == -ESRCH && !vm);

        /* restore elsewhere: same guest (boot id), running */
        _cleanup_free_ char *run2 = xasprintf("%s/run2", dir);
        vmm_config_t cfg2 = config(run2, "52:54:00:00:00:01");
        CHECK(vmm_restore(&vmm_fake, &cfg2, state, 0, &vm) == 0 && vm);
        if (!vm)
                return;
        CHECK(state_of(vm) == VMM_RUN_RUNNING);
        CHECK(vmm_fake_boot_id(vm, &restored_id) == 0);
        CHECK_STREQ(restored_id, boot_id);
        CHECK(vmm_shutdown(vm, 1000, 0) == 0);
        CHECK(state_of(vm) == VMM_RUN_GONE);
        vm = vmm_vm_free(vm);

        CHECK(vmm_restore(&vmm_fake, &cfg2, state, VMM_RESTORE_PAUSED, &vm) == 0 && vm);
        CHECK(state_of(vm) == VMM_RUN_PAUSED);
        CHECK(vmm_kill(vm, 0) == 0);
        vm = vmm_vm_free(vm);

        /* a config with another MAC describes another device set */
        _cleanup_free_ char *run3 = xasprintf("%s/run3", dir);
        vmm_config_t cfg3 = config(run3, "52:54:00:00:00:02");
        CHECK(vmm_restore(&vmm_fake, &cfg3, state, 0, &vm) == -EINVAL && !vm);
        cfg3.mac = NULL;
        CHECK(vmm_restore(&vmm_fake, &cfg3, state, 0, &vm) == -EINVAL && !vm);
        CHECK(state_of(vm) == (vmm_run_state_t)-1);

        /* missing and garbage state files */
        _cleanup_free_ char *missing = xasprintf("%s/missing", dir);
        CHECK(vmm_restore(&vmm_fake, &cfg2, missing, 0, &vm) == -ENOENT && !vm);
        _cleanup_free_ char *garbage = xasprintf("%s/garbage", dir);
        CHECK(file_write_atomic(garbage, "\x01{not json", 10) == 0);
        CHECK(vmm_restore(&vmm_fake, &cfg2, garbage, 0, &vm) == -EINVAL && !vm);

        /* invalid configs */
        vmm_config_t badcfg = config(NULL, NULL);
        CHECK(vmm_boot(&vmm_fake, &badcfg, 0, &vm) == -EINVAL && !vm);
}

/* The RAM mark of the fake guest at run. */
static char *ram_mark(const char *run) {
        json_t *j = NULL;
        if (vmm_fake_guest_get(run, &j) < 0)
                return NULL;
        const char *m = json_string_value(json_object_get(json_object_get(j, "ram"), "mark"));
        char *copy = m ? xstrdup(m) : NULL;
        json_decref(j);
        return copy;
}

/* RAM in a shared memory file stays in the file across a save (the state carries device state
 * only); a copy-on-write mapping never writes its file and saves its RAM into the state; a
 * VMM_ALL_RAM restore needs RAM in the state. */
static void test_fake_ram(const char *dir) {
        _cleanup_free_ char *run = xasprintf("%s/ram-run", dir);
        _cleanup_free_ char *mem = xasprintf("%s/ram-memory", dir);
        _cleanup_free_ char *state = xasprintf("%s/ram-state", dir);
        _cleanup_free_ char *disk = xasprintf("%s/ram-disk", dir);
        vmm_config_t cfg = config(run, "52:54:00:00:00:05");
        cfg.memory_mib = 16;
        cfg.memory_path = mem;
        cfg.disk = disk;
        vmm_vm_t *vm = NULL;
        CHECK(vmm_boot(&vmm_fake, &cfg, 0, &vm) == -ENOENT && !vm); /* QEMU needs its disk */
        CHECK(file_write_atomic(disk, "disk", 4) == 0);
        CHECK(vmm_boot(&vmm_fake, &cfg, 0, &vm) == 0 && vm);
        if (!vm)
                return;
        CHECK(file_size(mem) == 16 << 20);
        CHECK(vmm_fake_ram_set(run, "mark", "m1") == 0);
        CHECK(vmm_save(vm, state, 0) == 0);
        CHECK(vmm_save(vm, state, 0) == -EALREADY); /* saved once: it must run again first */
        CHECK(vmm_fake_ram_set(run, "mark", "lost") == -EAGAIN); /* a paused guest writes nothing */
        _cleanup_free_ char *text = NULL;
        CHECK(file_read(state, &text, NULL) == 0 && text && !strstr(text, "m1")); /* not in the state */
        CHECK(vmm_kill(vm, 0) == 0);
        vm = vmm_vm_free(vm);

        /* restored on the same file: the RAM is back */
        CHECK(vmm_restore(&vmm_fake, &cfg, state, 0, &vm) == 0 && vm);
        _cleanup_free_ char *m = ram_mark(run);
        CHECK_STREQ(m, "m1");
        CHECK(vmm_kill(vm, 0) == 0);
        vm = vmm_vm_free(vm);
        /* without its memory file, or with one of another size, it is refused */
        _cleanup_free_ char *other = xasprintf("%s/ram-other", dir);
        vmm_config_t wrong = cfg;
        wrong.memory_path = other;
        CHECK(vmm_restore(&vmm_fake, &wrong, state, 0, &vm) == -ENOENT && !vm);
        CHECK(file_write_atomic(other, "short", 5) == 0);
        CHECK(vmm_restore(&vmm_fake, &wrong, state, 0, &vm) == -EINVAL && !vm);
        CHECK(vmm_restore(&vmm_fake, &cfg, state, VMM_ALL_RAM, &vm) == -EINVAL && !vm);

        /* mapped copy-on-write: RAM changes stay out of the file and go into the state */
        CHECK(chmod(mem, 0444) == 0);
        vmm_config_t cow = cfg;
        cow.memory_private = true;
        CHECK(vmm_restore(&vmm_fake, &cow, state, 0, &vm) == 0 && vm);
        CHECK(vmm_fake_ram_set(run, "mark", "m2") == 0);
        _cleanup_free_ char *state2 = xasprintf("%s/ram-state2", dir);
        CHECK(vmm_save(vm, state2, VMM_ALL_RAM) == 0);
        CHECK(vmm_kill(vm, 0) == 0);
        vm = vmm_vm_free(vm);
        /* the snapshot file still holds m1; the state holds m2 and loads into a new shared file */
        _cleanup_free_ char *mem2 = xasprintf("%s/ram-memory2", dir);
        vmm_config_t back = cfg;
        back.memory_path = mem2;
        CHECK(vmm_restore(&vmm_fake, &back, state2, VMM_ALL_RAM | VMM_RESTORE_PAUSED, &vm) == 0 && vm);
        free(m);
        m = ram_mark(run);
        CHECK_STREQ(m, "m2");
        CHECK(file_size(mem2) == 16 << 20);
        CHECK(vmm_kill(vm, 0) == 0);
        vm = vmm_vm_free(vm);
        CHECK(vmm_restore(&vmm_fake, &cfg, state, 0, &vm) == 0 && vm);
        free(m);
        m = ram_mark(run);
        CHECK_STREQ(m, "m1");
        CHECK(vmm_kill(vm, 0) == 0);
        vm = vmm_vm_free(vm);
}

/* A warm slot takes a restore of its shape and becomes the VM; another shape kills it. The test
 * hooks crash and power off a VM as its process or guest would. */
static void test_fake_slots_and_hooks(const char *dir) {
        _cleanup_free_ char *run = xasprintf("%s/slot-run", dir);
        _cleanup_free_ char *state = xasprintf("%s/slot-state", dir);
        vmm_config_t cfg = config(run, "52:54:00:00:00:06");
        vmm_vm_t *vm = NULL;
        CHECK(vmm_boot(&vmm_fake, &cfg, 0, &vm) == 0 && vm);
        _cleanup_free_ char *boot_id = NULL, *slot_id = NULL;
        CHECK(vmm_fake_boot_id(vm, &boot_id) == 0);
        CHECK(vmm_fake_ram_set(run, "mark", "s1") == 0);
        CHECK(vmm_save(vm, state, 0) == 0); /* anonymous RAM: in the state */
        CHECK(vmm_kill(vm, 0) == 0);
        vm = vmm_vm_free(vm);

        _cleanup_free_ char *slot_run = xasprintf("%s/slot-a", dir);
        vmm_config_t shape = config(slot_run, NULL);
        vmm_vm_t *slot = NULL;
        CHECK(vmm_slot_start(&vmm_fake, &shape, 0, &slot) == 0 && slot);
        CHECK(state_of(slot) == VMM_RUN_INMIGRATE);
        vmm_config_t into = cfg;
        into.run_dir = slot_run;
        CHECK(vmm_slot_restore(slot, &into, state, 0) == 0);
        CHECK(state_of(slot) == VMM_RUN_RUNNING);
        CHECK(vmm_fake_boot_id(slot, &slot_id) == 0);
        CHECK_STREQ(slot_id, boot_id);
        _cleanup_free_ char *m = ram_mark(slot_run);
        CHECK_STREQ(m, "s1");
        CHECK(vmm_kill(slot, 0) == 0);
        slot = vmm_vm_free(slot);

        CHECK(vmm_slot_start(&vmm_fake, &shape, 0, &slot) == 0 && slot);
        into.memory_mib = 512;
        CHECK(vmm_slot_restore(slot, &into, state, 0) == -EINVAL);
        CHECK(state_of(slot) == VMM_RUN_GONE);
        slot = vmm_vm_free(slot);

        /* the guest agent answers a running guest; crash and power-off hooks */
        CHECK(vmm_restore(&vmm_fake, &cfg, state, 0, &vm) == 0 && vm);
        _cleanup_free_ char *reply = NULL, *bad = NULL;
        CHECK(vmm_agent_call(vm, "identity clone1 00ff", 100, &reply) == 0 && reply && streq(reply, "ok"));
        CHECK(vmm_agent_call(vm, "reboot", 100, &bad) == -EPROTO);
        uint64_t bytes = 0;
        CHECK(vmm_balloon_set(vm, 64 << 20) == 0 && vmm_balloon_get(vm, &bytes) == 0 && bytes == 64 << 20);
        CHECK(vmm_fake_poweroff(run) == 0 && state_of(vm) == VMM_RUN_SHUTDOWN);
        CHECK(vmm_fake_crash(run) == 0 && state_of(vm) == VMM_RUN_GONE);
        CHECK(vmm_fake_crash(run) == -ESRCH);
        vmm_vm_free(vm);
}

static void test_fake_failures(const char *dir) {
        _cleanup_free_ char *run = xasprintf("%s/runf", dir);
        _cleanup_free_ char *state = xasprintf("%s/statef", dir);
        vmm_config_t cfg = config(run, "52:54:00:00:00:03");
        vmm_vm_t *vm = NULL;

        setenv(VMM_FAKE_FAIL_ENV, "boot", 1);
        CHECK(vmm_boot(&vmm_fake, &cfg, 0, &vm) == -EIO && !vm);
        setenv(VMM_FAKE_FAIL_ENV, "save,restore", 1);
        CHECK(vmm_boot(&vmm_fake, &cfg, 0, &vm) == 0 && vm);
        CHECK(vmm_save(vm, state, 0) == -EIO);
        CHECK(!file_exists(state));
        CHECK(state_of(vm) == VMM_RUN_RUNNING); /* a failed save changed nothing */
        unsetenv(VMM_FAKE_FAIL_ENV);
        CHECK(vmm_save(vm, state, 0) == 0);
        CHECK(vmm_kill(vm, 0) == 0);
        vm = vmm_vm_free(vm);
        setenv(VMM_FAKE_FAIL_ENV, "restore", 1);
        CHECK(vmm_restore(&vmm_fake, &cfg, state, 0, &vm) == -EIO && !vm);
        setenv(VMM_FAKE_FAIL_ENV, "rest", 1); /* whole names only */
        CHECK(vmm_restore(&vmm_fake, &cfg, state, 0, &vm) == 0 && vm);
        setenv(VMM_FAKE_FAIL_ENV, "status,stats", 1);
        vmm_status_t st;
        vmm_stats_t s;
        CHECK(vmm_status(vm, &st) == -EIO);
        CHECK(vmm_stats(vm, &s) == -EIO);
        unsetenv(VMM_FAKE_FAIL_ENV);
        CHECK(vmm_kill(vm, 0) == 0);
        vmm_vm_free(vm);
}

static int fds_of(pid_t pid, char *names, size_t size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
        DIR *d = opendir(path);
        if (!d)
                return -1;
        int n = 0;
        names[0] = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.') {
                        n++;
                        strncat(names, de->d_name, size - strlen(names) - 2);
                        strcat(names, " ");
                }
        closedir(d);
        return n;
}

static void test_process(const char *dir) {
        _cleanup_free_ char *log = xasprintf("%s/child.log", dir);
        _cleanup_close_ int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        CHECK(out >= 0);
        int leak = open("/dev/null", O_RDONLY); /* deliberately not close-on-exec */
        CHECK(leak >= 0);
        char *const argv[] = { "sleep", "30", NULL };
        qemu_process_t *p = NULL;
        CHECK(qemu_process_spawn(argv, out, &p) == 0 && p);
        close(leak);
        if (!p)
                return;
        pid_t pid = qemu_process_pid(p);
        CHECK(qemu_process_alive(p));
        time_sleep_ms(50); /* past exec */
        char names[256];
        CHECK(fds_of(pid, names, sizeof names) == 3); /* 0, 1, 2 only */
        CHECK_STREQ(names, "0 1 2 ");
        pid_t sid = getsid(pid);
        CHECK(sid == pid); /* its own session: a ^C to the agent does not reach it */
        CHECK(qemu_process_wait(p, 50) == -ETIMEDOUT);
        CHECK(!qemu_process_matches(pid, "30")); /* not a qemu-system-* binary */
        uint64_t cpu = 1, rss = 0;
        CHECK(qemu_process_usage(p, &cpu, &rss) == 0 && rss > 0);

        /* a second handle on the same process, as after attach */
        qemu_process_t *q = NULL;
        CHECK(qemu_process_open(pid, &q) == 0 && q);
        CHECK(qemu_process_kill(p, 5000) == 0);
        CHECK(!qemu_process_alive(p));
        CHECK(WIFSIGNALED(qemu_process_exit_status(p)) && WTERMSIG(qemu_process_exit_status(p)) == SIGKILL);
        CHECK(kill(pid, 0) < 0 && errno == ESRCH); /* reaped, no zombie */
        if (q) {
                CHECK(!qemu_process_alive(q));
                CHECK(qemu_process_kill(q, 1000) == 0);
                CHECK(qemu_process_usage(q, &cpu, &rss) == -ESRCH);
        }
        qemu_process_free(q);
        qemu_process_free(p);
        CHECK(qemu_process_open(pid, &q) == -ESRCH);

        /* exit status of a process that ends by itself; output lands in the log */
        char *const sh[] = { "/bin/sh", "-c", "echo first line; echo 'error: it broke' >&2; exit 3", NULL };
        off_t from = lseek(out, 0, SEEK_END);
        CHECK(qemu_process_spawn(sh, out, &p) == 0);
        CHECK(qemu_process_wait(p, 5000) == 0);
        CHECK(WIFEXITED(qemu_process_exit_status(p)) && WEXITSTATUS(qemu_process_exit_status(p)) == 3);
        qemu_process_free(p);
        _cleanup_free_ char *tail = qemu_log_tail(log, from, 1000);
        CHECK_STREQ(tail, "first line; error: it broke");
        _cleanup_free_ char *none = qemu_log_tail(log, 1 << 20, 1000);
        CHECK_STREQ(none, "");
        _cleanup_free_ char *missing = qemu_log_tail("/nonexistent", 0, 100);
        CHECK_STREQ(missing, "");

        char *const bad[] = { "/nonexistent/qemu-system-x86_64", NULL };
        p = NULL;
        CHECK(qemu_process_spawn(bad, out, &p) == -ENOENT && !p);
        _cleanup_free_ char *plain = xasprintf("%s/plain", dir), *script = xasprintf("%s/noformat", dir);
        CHECK(file_write_atomic(plain, "data", 4) == 0); /* 0644: not executable */
        char *const notexec[] = { plain, NULL };
        CHECK(qemu_process_spawn(notexec, out, &p) == -EACCES && !p);
        CHECK(file_write_atomic(script, "\x7f""ELF garbage", 12) == 0 && chmod(script, 0755) == 0);
        char *const noformat[] = { script, NULL };
        CHECK(qemu_process_spawn(noformat, out, &p) == -ENOEXEC && !p); /* exec's errno from the child */
        char *const nopath[] = { "vmx-no-such-program-anywhere", NULL };
        CHECK(qemu_process_spawn(nopath, out, &p) == -ENOENT && !p);

        _cleanup_free_ char *pidfile = xasprintf("%s/qemu.pid", dir);
        pid_t got = 0;
        CHECK(qemu_pidfile_read(pidfile, &got) == -ENOENT);
        CHECK(file_write_atomic(pidfile, "1234\n", 5) == 0);
        CHECK(qemu_pidfile_read(pidfile, &got) == 0 && got == 1234);
        CHECK(file_write_atomic(pidfile, "-5\n", 3) == 0);
        CHECK(qemu_pidfile_read(pidfile, &got) == -EINVAL);
        CHECK(file_write_atomic(pidfile, "abc", 3) == 0);
        CHECK(qemu_pidfile_read(pidfile, &got) == -EINVAL);
}

int main(void) {
        char dir[] = "/tmp/vmx-test-vmm-XXXXXX";
        if (!mkdtemp(dir))
                return 1;
        test_dispatch();
        test_fake_lifecycle(dir);
        test_fake_ram(dir);
        test_fake_slots_and_hooks(dir);
        test_fake_failures(dir);
        test_process(dir);
        rm_rf(dir);
        return tap_finish();
}
