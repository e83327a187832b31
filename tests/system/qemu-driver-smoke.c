/* Real-QEMU check of the vmm_qemu driver (not a unit test; run by qemu-driver-smoke.sh).
 *
 * usage: qemu-driver-smoke WORKDIR [KERNEL [INITRD]]
 *
 * Boots a VM under TCG (with -kernel KERNEL when given, else a diskless VM that sits in
 * SeaBIOS), then: status, stats, console socket, pause/cont, free + attach, save, kill,
 * restore, shutdown; a restore with another device set must fail cleanly; a VM with
 * file-backed RAM saves only device state; bad binaries and bad disks give clear errors.
 * With KERNEL and INITRD of the tiny-http guest (guest/tiny-http), also a real guest: boot to
 * "vmx-guest: ready", HTTP through the port forward, save/kill/restore keeping its boot id
 * and hit counter, the guest agent (ping, identity, bad requests, calls that time out,
 * concurrent calls), the balloon, and an ACPI power-off the guest acts on. A VM without an
 * agent must time out agent calls quickly.
 * Then vmm_accel_pick("auto") runs its real probe. Prints timings. Every VM it starts is killed
 * before it exits, on failure too (the harness in smoke.c, shared with qemu-live-smoke). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "smoke.h"
#include "vmm/vmm.h"

static void config_init(vmm_config_t *cfg, const char *run_dir, const char *kernel) {
        *cfg = (vmm_config_t){
                .name = "smoke",
                .run_dir = run_dir,
                .memory_mib = 256,
                .vcpus = 1,
                .mac = "52:54:00:12:34:56",
                .kernel = kernel,
                .cmdline = kernel ? "console=ttyS0 quiet" : NULL,
                .fwd_host = "127.0.0.1",
                .fwd_port = 18080 + (getpid() % 1000),
                .accel = "tcg",
        };
}

/* One agent call; the reply, or the guest's error message on -EPROTO, is copied to out. */
static int agent(vmm_vm_t *vm, const char *request, int timeout_ms, char *out, size_t size) {
        _cleanup_free_ char *reply = NULL;
        int r = vmm_agent_call(vm, request, timeout_ms, &reply);
        snprintf(out, size, "%s", reply ? reply : "(none)");
        return r;
}

/* A VM without a guest agent: calls time out after their timeout, not later; bad requests are
 * refused before anything is sent. */
static void check_no_agent(vmm_vm_t *vm) {
        char reply[256];
        int64_t t0 = time_now_ms();
        EXPECT(agent(vm, "ping", 500, reply, sizeof reply) == -ETIMEDOUT && streq(reply, "(none)"));
        int64_t ms = time_now_ms() - t0;
        printf("agent call without an agent: -ETIMEDOUT after %lld ms (timeout 500)\n", (long long)ms);
        EXPECT(ms >= 450 && ms < 1500);
        EXPECT(agent(vm, "ping\nping", 500, reply, sizeof reply) == -EINVAL);
        EXPECT(agent(vm, "ping\r", 500, reply, sizeof reply) == -EINVAL);
        EXPECT(agent(vm, "", 500, reply, sizeof reply) == -EINVAL);
        EXPECT(agent(vm, "ping", 0, reply, sizeof reply) == -EINVAL);
}

/* Main path: boot, inspect, pause/cont, attach, save, kill, restore, shutdown. */
static void test_lifecycle(const char *work, const char *kernel) {
        _cleanup_free_ char *run = xasprintf("%s/run", work);
        _cleanup_free_ char *state = xasprintf("%s/state", work);
        vmm_config_t cfg;
        config_init(&cfg, run, kernel);

        vmm_vm_t *vm = NULL;
        int64_t t0 = time_now_ms();
        int r = vmm_boot(&vmm_qemu, &cfg, 0, &vm);
        int64_t boot_ms = time_now_ms() - t0;
        REQUIRE(r == 0);
        smoke_vm_track(vm);
        vmm_status_t st;
        EXPECT(vmm_status(vm, &st) == 0 && st.state == VMM_RUN_RUNNING && st.pid > 0);
        pid_t pid = st.pid;

        /* a second QEMU must not start on the same run directory */
        vmm_vm_t *dup = NULL;
        EXPECT(vmm_boot(&vmm_qemu, &cfg, 0, &dup) == -EBUSY && !dup);

        time_sleep_ms(kernel ? 3000 : 1000);
        vmm_stats_t s;
        EXPECT(vmm_stats(vm, &s) == 0 && s.cpu_ns > 0 && s.rss_bytes > (1u << 20));
        printf("stats after boot: cpu %.0f ms, rss %.1f MiB, block rd %llu wr %llu\n", s.cpu_ns / 1e6,
               s.rss_bytes / 1048576.0, (unsigned long long)s.block_rd_bytes, (unsigned long long)s.block_wr_bytes);
        _cleanup_free_ char *console = NULL;
        struct stat sst;
        EXPECT(vmm_console_path(vm, &console) == 0 && stat(console, &sst) == 0 && S_ISSOCK(sst.st_mode));
        check_no_agent(vm);
        /* the balloon device is there, without a driver in the guest: all RAM is the guest's */
        uint64_t actual = 0;
        EXPECT(vmm_balloon_get(vm, &actual) == 0 && actual == cfg.memory_mib << 20);
        EXPECT(vmm_balloon_set(vm, 0) == -EINVAL);

        EXPECT(vmm_pause(vm, 0) == 0);
        EXPECT(smoke_vm_state(vm) == VMM_RUN_PAUSED);
        EXPECT(vmm_cont(vm, 0) == 0);
        EXPECT(smoke_vm_state(vm) == VMM_RUN_RUNNING);

        /* an agent restart: drop the handle, find the VM again */
        smoke_vm_release(&vm);
        t0 = time_now_ms();
        r = vmm_attach(&vmm_qemu, &cfg, 0, &vm);
        printf("attach: %lld ms\n", (long long)(time_now_ms() - t0));
        REQUIRE(r == 0);
        smoke_vm_track(vm);
        EXPECT(vmm_status(vm, &st) == 0 && st.state == VMM_RUN_RUNNING && st.pid == pid);

        t0 = time_now_ms();
        r = vmm_save(vm, state, 0);
        int64_t save_ms = time_now_ms() - t0;
        EXPECT(r == 0);
        int64_t size = file_size(state);
        EXPECT(size > 0);
        EXPECT(smoke_vm_state(vm) == VMM_RUN_PAUSED);
        _cleanup_free_ char *tmp = xasprintf("%s.tmp", state);
        EXPECT(!file_exists(tmp));
        /* a retried save of a VM that is already saved (QEMU state "postmigrate") */
        _cleanup_free_ char *state2 = xasprintf("%s/state-again", work);
        EXPECT(vmm_save(vm, state2, 0) == -EALREADY);
        EXPECT(!file_exists(state2));
        EXPECT(vmm_cont(vm, 0) == 0 && smoke_vm_state(vm) == VMM_RUN_RUNNING);
        EXPECT(vmm_save(vm, state2, 0) == 0 && file_size(state2) > 0);

        EXPECT(vmm_kill(vm, 0) == 0);
        EXPECT(vmm_status(vm, &st) == 0 && st.state == VMM_RUN_GONE);
        EXPECT(kill(pid, 0) < 0 && errno == ESRCH);
        EXPECT(vmm_kill(vm, 0) == 0); /* idempotent */
        EXPECT(vmm_pause(vm, 0) == -ESRCH);
        EXPECT(vmm_save(vm, state2, 0) == -ESRCH);
        EXPECT(vmm_stats(vm, &s) == -ESRCH);
        char reply[64];
        EXPECT(agent(vm, "ping", 500, reply, sizeof reply) == -ESRCH);
        EXPECT(vmm_balloon_get(vm, &actual) == -ESRCH);
        smoke_vm_release(&vm);
        EXPECT(vmm_attach(&vmm_qemu, &cfg, 0, &vm) == -ESRCH && !vm);

        t0 = time_now_ms();
        r = vmm_restore(&vmm_qemu, &cfg, state, 0, &vm);
        int64_t restore_ms = time_now_ms() - t0;
        REQUIRE(r == 0);
        smoke_vm_track(vm);
        EXPECT(vmm_status(vm, &st) == 0 && st.state == VMM_RUN_RUNNING && st.pid != pid);
        time_sleep_ms(300);
        EXPECT(smoke_vm_state(vm) == VMM_RUN_RUNNING);
        EXPECT(vmm_stats(vm, &s) == 0);

        printf("RESULT boot-to-running %lld ms | save %lld ms, state file %lld bytes (%.2f MiB) | restore %lld ms\n",
               (long long)boot_ms, (long long)save_ms, (long long)size, size / 1048576.0, (long long)restore_ms);

        /* save/restore a second time from a restored VM */
        EXPECT(vmm_save(vm, state, 0) == 0);
        EXPECT(vmm_kill(vm, 0) == 0);
        smoke_vm_release(&vm);
        REQUIRE(vmm_restore(&vmm_qemu, &cfg, state, VMM_RESTORE_PAUSED, &vm) == 0);
        smoke_vm_track(vm);
        EXPECT(smoke_vm_state(vm) == VMM_RUN_PAUSED);
        EXPECT(vmm_cont(vm, 0) == 0);
        EXPECT(smoke_vm_state(vm) == VMM_RUN_RUNNING);

        /* SeaBIOS ignores the ACPI power button and a kernel without userspace may too: the
         * driver must kill after the timeout */
        t0 = time_now_ms();
        EXPECT(vmm_shutdown(vm, 1500, 0) == 0);
        printf("shutdown (powerdown + kill after timeout): %lld ms\n", (long long)(time_now_ms() - t0));
        EXPECT(vmm_status(vm, &st) == 0 && st.state == VMM_RUN_GONE);
        smoke_vm_release(&vm);

        /* restoring with another device set (no NIC MAC, extra disk, other RAM size) fails
         * with -EINVAL and leaves nothing running */
        _cleanup_free_ char *run2 = xasprintf("%s/run-bad", work);
        vmm_config_t bad;
        config_init(&bad, run2, kernel);
        bad.memory_mib = 128;
        bad.fwd_host = NULL;
        t0 = time_now_ms();
        r = vmm_restore(&vmm_qemu, &bad, state, 0, &vm);
        printf("restore with a different config: %d (%s) after %lld ms\n", r, strerror(-r),
               (long long)(time_now_ms() - t0));
        EXPECT(r == -EINVAL && !vm);
        if (vm)
                smoke_vm_track(vm);
        _cleanup_free_ char *pidfile = xasprintf("%s/qemu.pid", run2);
        _cleanup_free_ char *pidtext = NULL;
        if (file_read(pidfile, &pidtext, NULL) == 0)
                EXPECT(kill(atoi(pidtext), 0) < 0);
}

/* Poll GET path until it answers or timeout_ms pass. */
static int http_get_wait(int port, const char *path, int timeout_ms, char **ret_body) {
        int64_t deadline = time_now_ms() + timeout_ms;
        int r;
        while ((r = smoke_http_get(port, path, ret_body)) < 0 && time_now_ms() < deadline)
                time_sleep_ms(20);
        return r;
}

/* GET /id reports name, seed and generation (and the hostname is the name). */
static bool guest_identity_is(int port, const char *name, const char *seed, long generation) {
        _cleanup_free_ char *body = NULL;
        if (smoke_http_get(port, "/id", &body) < 0)
                return false;
        _cleanup_free_ char *vm = smoke_json_str(body, "vm"), *sd = smoke_json_str(body, "seed"),
                            *host = smoke_json_str(body, "hostname");
        bool ok = streq(vm, name) && streq(host, name) && (!seed || streq(sd, seed)) &&
                  smoke_json_num(body, "generation") == generation;
        if (!ok)
                fprintf(stderr, "guest /id: %s (want vm %s, seed %s, generation %ld)\n", body, name,
                        seed ? seed : "any", generation);
        return ok;
}

struct ping_thread {
        vmm_vm_t *vm;
        int r;
        char reply[64];
};

static void *ping_thread_run(void *arg) {
        struct ping_thread *t = arg;
        t->r = agent(t->vm, "ping", 20000, t->reply, sizeof t->reply);
        return NULL;
}

/* The guest agent of a running tiny-http guest (booted as vmx.name=name). */
static void test_guest_agent(vmm_vm_t *vm, int port, const char *name) {
        char reply[256];
        int64_t t0 = time_now_ms();
        EXPECT(agent(vm, "ping", 10000, reply, sizeof reply) == 0 && streq(reply, "pong"));
        printf("RESULT guest agent ping %lld ms\n", (long long)(time_now_ms() - t0));
        EXPECT(guest_identity_is(port, name, NULL, 0));

        /* a caller that gives up leaves its reply behind in the guest: the next call skips it */
        (void)agent(vm, "ping", 1, reply, sizeof reply);
        EXPECT(agent(vm, "ping", 10000, reply, sizeof reply) == 0 && streq(reply, "pong"));

        /* calls at the same time take turns on the one channel */
        struct ping_thread th[3];
        pthread_t tid[3];
        for (int i = 0; i < 3; i++) {
                th[i] = (struct ping_thread){ .vm = vm, .r = -1 };
                EXPECT(pthread_create(&tid[i], NULL, ping_thread_run, &th[i]) == 0);
        }
        for (int i = 0; i < 3; i++) {
                pthread_join(tid[i], NULL);
                EXPECT(th[i].r == 0 && streq(th[i].reply, "pong"));
        }

        /* a clone takes a new identity */
        char seed[33];
        snprintf(seed, sizeof seed, "%016llx%016llx", (unsigned long long)time_wall_ms(),
                 (unsigned long long)getpid() * 0x9e3779b97f4a7c15ull);
        _cleanup_free_ char *req = xasprintf("identity smoke-clone.2 %s", seed);
        t0 = time_now_ms();
        EXPECT(agent(vm, req, 10000, reply, sizeof reply) == 0 && streq(reply, ""));
        printf("RESULT guest agent identity %lld ms\n", (long long)(time_now_ms() - t0));
        EXPECT(guest_identity_is(port, "smoke-clone.2", seed, 1));

        /* bad requests are refused by the guest and change nothing */
        _cleanup_free_ char *bad_name = xasprintf("identity -bad %s", seed);
        EXPECT(agent(vm, bad_name, 10000, reply, sizeof reply) == -EPROTO && strstr(reply, "bad name"));
        EXPECT(agent(vm, "identity other 0123", 10000, reply, sizeof reply) == -EPROTO && strstr(reply, "seed"));
        EXPECT(agent(vm, "identity other", 10000, reply, sizeof reply) == -EPROTO);
        EXPECT(agent(vm, "frobnicate now", 10000, reply, sizeof reply) == -EPROTO &&
               streq(reply, "unknown command"));
        EXPECT(guest_identity_is(port, "smoke-clone.2", seed, 1));
}

/* The balloon: half the RAM is taken from the guest, then given back. */
static void test_guest_balloon(vmm_vm_t *vm, uint64_t ram) {
        uint64_t actual = 0;
        EXPECT(vmm_balloon_get(vm, &actual) == 0 && actual == ram);
        int64_t t0 = time_now_ms();
        EXPECT(vmm_balloon_set(vm, ram / 2) == 0);
        while (vmm_balloon_get(vm, &actual) == 0 && actual > ram / 2 && time_now_ms() - t0 < 30000)
                time_sleep_ms(50);
        printf("RESULT balloon to %llu MiB: actual %llu MiB after %lld ms\n", (unsigned long long)(ram >> 21),
               (unsigned long long)(actual >> 20), (long long)(time_now_ms() - t0));
        EXPECT(actual <= ram / 2);
        t0 = time_now_ms();
        EXPECT(vmm_balloon_set(vm, ram) == 0);
        while (vmm_balloon_get(vm, &actual) == 0 && actual < ram && time_now_ms() - t0 < 30000)
                time_sleep_ms(50);
        printf("RESULT balloon back to %llu MiB after %lld ms\n", (unsigned long long)(ram >> 20),
               (long long)(time_now_ms() - t0));
        EXPECT(actual == ram);
}

/* The tiny-http guest: a real kernel and userspace from the initramfs. */
static void test_guest(const char *work, const char *kernel, const char *initrd) {
        _cleanup_free_ char *run = xasprintf("%s/run-guest", work);
        _cleanup_free_ char *state = xasprintf("%s/state-guest", work);
        _cleanup_free_ char *console_log = xasprintf("%s/console.log", run);
        vmm_config_t cfg;
        config_init(&cfg, run, kernel);
        cfg.name = "smoke-guest";
        cfg.initrd = initrd;
        cfg.cmdline = "console=ttyS0 vmx.name=smoke-guest quiet";
        cfg.fwd_port = 19080 + (getpid() % 1000);

        vmm_vm_t *vm = NULL;
        int64_t t0 = time_now_ms();
        int r = vmm_boot(&vmm_qemu, &cfg, 0, &vm);
        int64_t running_ms = time_now_ms() - t0;
        REQUIRE(r == 0);
        smoke_vm_track(vm);
        /* the guest is still in its firmware: no agent yet, a short call times out */
        char reply[64];
        int64_t ta = time_now_ms();
        EXPECT(agent(vm, "ping", 300, reply, sizeof reply) == -ETIMEDOUT);
        EXPECT(time_now_ms() - ta < 1300);
        while (!smoke_file_contains(console_log, "vmx-guest: ready") && time_now_ms() - t0 < 120000)
                time_sleep_ms(20);
        int64_t ready_ms = time_now_ms() - t0;
        REQUIRE(smoke_file_contains(console_log, "vmx-guest: ready"));
        _cleanup_free_ char *id1 = NULL, *id2 = NULL;
        REQUIRE(http_get_wait(cfg.fwd_port, "/id", 10000, &id1) == 0);
        int64_t http_ms = time_now_ms() - t0;
        printf("guest /id before save: %s\n", id1);
        int64_t tw = time_now_ms();
        _cleanup_free_ char *warm = NULL;
        EXPECT(smoke_http_get(cfg.fwd_port, "/id", &warm) == 0);
        int64_t warm_ms = time_now_ms() - tw;
        printf("RESULT guest boot: running %lld ms, console ready %lld ms, first HTTP answer %lld ms\n",
               (long long)running_ms, (long long)ready_ms, (long long)http_ms);

        t0 = time_now_ms();
        EXPECT(vmm_save(vm, state, 0) == 0);
        int64_t save_ms = time_now_ms() - t0;
        EXPECT(vmm_kill(vm, 0) == 0);
        smoke_vm_release(&vm);

        t0 = time_now_ms();
        r = vmm_restore(&vmm_qemu, &cfg, state, 0, &vm);
        int64_t restore_ms = time_now_ms() - t0;
        REQUIRE(r == 0);
        smoke_vm_track(vm);
        EXPECT(http_get_wait(cfg.fwd_port, "/id", 10000, &id2) == 0);
        int64_t http2_ms = time_now_ms() - t0;
        printf("guest /id after restore: %s\n", id2 ? id2 : "(none)");
        tw = time_now_ms();
        _cleanup_free_ char *warm2 = NULL;
        EXPECT(smoke_http_get(cfg.fwd_port, "/id", &warm2) == 0);
        printf("RESULT guest GET /id: %lld ms warm before save, %lld ms right after the first request after restore\n",
               (long long)warm_ms, (long long)(time_now_ms() - tw));
        _cleanup_free_ char *b1 = smoke_json_str(id1, "boot_id"), *b2 = smoke_json_str(id2, "boot_id");
        EXPECT(*b1 && streq(b1, b2));                 /* the same boot, not a reboot */
        /* the hit counter in guest RAM carried over */
        EXPECT(smoke_json_num(id2, "hits") == smoke_json_num(warm, "hits") + 1);
        printf("RESULT guest save %lld ms, state file %.1f MiB | restore %lld ms, first HTTP answer %lld ms\n",
               (long long)save_ms, file_size(state) / 1048576.0, (long long)restore_ms, (long long)http2_ms);

        /* the restored guest, as a clone of the saved one would be: agent and balloon */
        test_guest_agent(vm, cfg.fwd_port, cfg.name);
        test_guest_balloon(vm, cfg.memory_mib << 20);

        /* the guest acts on the ACPI power button: QEMU exits well before the timeout */
        t0 = time_now_ms();
        EXPECT(vmm_shutdown(vm, 30000, 0) == 0);
        int64_t off_ms = time_now_ms() - t0;
        EXPECT(off_ms < 30000);
        EXPECT(smoke_vm_state(vm) == VMM_RUN_GONE);
        printf("RESULT guest graceful power-off %lld ms\n", (long long)off_ms);
        smoke_vm_release(&vm);
}

/* File-backed RAM: save writes only device state, restore maps the same RAM file. */
static void test_memory_file(const char *work, const char *kernel) {
        _cleanup_free_ char *run = xasprintf("%s/run-mem", work);
        _cleanup_free_ char *state = xasprintf("%s/state-mem", work);
        _cleanup_free_ char *ram = xasprintf("/dev/shm/vmx-smoke-ram-%d", (int)getpid());
        vmm_config_t cfg;
        config_init(&cfg, run, kernel);
        cfg.name = "smoke-mem";
        cfg.memory_path = ram;
        vmm_vm_t *vm = NULL;
        int r = vmm_boot(&vmm_qemu, &cfg, 0, &vm);
        EXPECT(r == 0);
        if (r < 0)
                goto out;
        smoke_vm_track(vm);
        time_sleep_ms(kernel ? 3000 : 1000);
        int64_t t0 = time_now_ms();
        EXPECT(vmm_save(vm, state, 0) == 0);
        int64_t save_ms = time_now_ms() - t0;
        EXPECT(vmm_kill(vm, 0) == 0);
        smoke_vm_release(&vm);
        t0 = time_now_ms();
        r = vmm_restore(&vmm_qemu, &cfg, state, 0, &vm);
        int64_t restore_ms = time_now_ms() - t0;
        EXPECT(r == 0);
        if (r < 0)
                goto out;
        smoke_vm_track(vm);
        time_sleep_ms(300);
        EXPECT(smoke_vm_state(vm) == VMM_RUN_RUNNING);
        printf("RESULT memory-backend-file: save %lld ms, state file %lld bytes | restore %lld ms\n",
               (long long)save_ms, (long long)file_size(state), (long long)restore_ms);
        EXPECT(file_size(state) < (1 << 20)); /* device state only */
        EXPECT(vmm_kill(vm, 0) == 0);
        smoke_vm_release(&vm);
out:
        unlink(ram);
}

/* Start failures carry a clear error and leave no process. */
static void test_start_failures(const char *work) {
        _cleanup_free_ char *run = xasprintf("%s/run-fail", work);
        _cleanup_free_ char *disk = xasprintf("%s/no-such-disk.qcow2", work);
        vmm_config_t cfg;
        config_init(&cfg, run, NULL);
        cfg.name = "smoke-fail";
        cfg.disk = disk;
        vmm_vm_t *vm = NULL;
        EXPECT(vmm_boot(&vmm_qemu, &cfg, 0, &vm) == -EIO && !vm);

        cfg.disk = NULL;
        setenv("VMATRIX_QEMU", "/nonexistent/qemu-system-x86_64", 1);
        EXPECT(vmm_boot(&vmm_qemu, &cfg, 0, &vm) == -ENOENT && !vm);
        unsetenv("VMATRIX_QEMU");

        cfg.mac = "01:00:00:00:00:01"; /* multicast */
        EXPECT(vmm_boot(&vmm_qemu, &cfg, 0, &vm) == -EINVAL && !vm);
        cfg.mac = "52:54:00:12:34:56";
        _cleanup_free_ char *state = xasprintf("%s/no-such-state", work);
        EXPECT(vmm_restore(&vmm_qemu, &cfg, state, 0, &vm) == -ENOENT && !vm);
}

/* "auto" runs the real probe (a few seconds) and caches it; prints the verdict. */
static void test_accel_auto(const char *work) {
        _cleanup_free_ char *cache = xasprintf("%s/accel.json", work);
        const char *accel = NULL;
        int64_t t0 = time_now_ms();
        EXPECT(vmm_accel_pick("auto", cache, &accel) == 0 && accel);
        int64_t probe_ms = time_now_ms() - t0;
        _cleanup_free_ char *text = NULL;
        (void)file_read(cache, &text, NULL);
        printf("RESULT accel auto: %s after %lld ms; cache: %s\n", accel ? accel : "?", (long long)probe_ms,
               text ? text : "(none: /dev/kvm unusable)");
        t0 = time_now_ms();
        const char *again = NULL;
        EXPECT(vmm_accel_pick("auto", cache, &again) == 0 && again && accel && streq(again, accel));
        EXPECT(time_now_ms() - t0 < 500); /* from the cache */
}

int main(int argc, char **argv) {
        if (argc < 2 || argc > 4) {
                fprintf(stderr, "usage: %s WORKDIR [KERNEL [INITRD]]\n", argv[0]);
                return 2;
        }
        smoke_init("smoke", NULL);
        const char *kernel = argc >= 3 && *argv[2] ? argv[2] : NULL;
        const char *initrd = argc >= 4 && *argv[3] ? argv[3] : NULL;
        printf("guest: %s\n", kernel ? kernel : "no kernel, no disk (SeaBIOS)");
        int fds = smoke_fd_count();
        test_lifecycle(argv[1], kernel);
        test_memory_file(argv[1], kernel);
        test_start_failures(argv[1]);
        if (kernel && initrd)
                test_guest(argv[1], kernel, initrd);
        test_accel_auto(argv[1]);
        smoke_kill_all();
        EXPECT(smoke_fd_count() == fds); /* no monitor socket, pidfd, log or state fd left open */
        printf("%d checks, %d passed, %d failed\n%s\n", smoke_passed + smoke_failed, smoke_passed, smoke_failed,
               smoke_failed ? "FAILED" : "OK");
        return smoke_failed ? 1 : 0;
}
