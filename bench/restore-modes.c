/* bench/restore-modes: how soon a tiny-http guest answers HTTP after each way of starting it,
 * measured side by side in one run, through the vmm driver alone (no node, no Oracle):
 *   cold     vmm_boot, its RAM a fresh shared memory file
 *   full     vmm_restore of a state holding all RAM (VMM_ALL_RAM) into a new empty shared file
 *   mapped   vmm_restore of the device state only, the saved memory file mapped private (CoW)
 *   slot     vmm_slot_restore into a warm slot started beforehand, same files as mapped
 * for a 128 MiB and a 1 GiB guest under TCG. Each run gives two times, both counted from the
 * start of the driver call: "VMM ready" (the call returned, CPUs running) and "first 200"
 * (GET /health through the port forward answered 200). The saved states come from the VM of
 * cold run 1 of the same size, SETTLE_MS after it answered: one save with all RAM, cont, one
 * save of the device state, which leaves its memory file as the snapshot that mapped and slot
 * runs map. Prints every run, the medians, ratios, the saved files' sizes and each mode's host
 * memory (Rss/Pss after the first 200). A benchmark: it never passes or fails on time.
 *
 * usage: restore-modes [RUNS [WORKDIR]]   RUNS per mode and size (default 5); WORKDIR (default
 * a new directory in $TMPDIR or /tmp) is removed at the end. The guest comes from
 * $VMATRIX_GUEST_DIR, else guest/tiny-http next to this executable (the build directory).
 *
 * Every QEMU it starts is tracked and killed before it exits; on SIGINT/SIGTERM a thread kills
 * them (and any QEMU whose pidfile is in WORKDIR, for one still starting) and removes WORKDIR. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/qemu/qemu-argv.h"
#include "vmm/vmm.h"

#define RUNS_MAX 25
#define LIVE_MAX 8               /* QEMUs running at once: at most a slot and one VM */
#define BENCH_MAC "52:54:00:be:4c:01"
#define DISK_SIZE "64M"          /* every VM's qcow2: the state holds no disk data, only its size */
#define SETTLE_MS 1000           /* a booted guest runs this long after its first 200 before saves */
#define SLOT_SETTLE_MS 200       /* a new slot idles this long before it is taken */
#define HTTP_TIMEOUT_MS 180000   /* a guest that has not answered by then counts as failed */
#define HTTP_POLL_MS 2           /* a new attempt this long after the last one failed */
#define HTTP_STALE_MS 500        /* an attempt unanswered this long gets a second one beside it */
#define HTTP_ATTEMPT_MS 3000     /* and is dropped after this long */
#define HTTP_INFLIGHT_MAX 8

enum bench_mode { MODE_COLD, MODE_FULL, MODE_MAPPED, MODE_SLOT, MODE_MAX };
static const char *const mode_names[MODE_MAX] = { "cold boot", "full-RAM restore", "mapped restore (CoW)",
                                                  "warm-slot restore" };
static const char *const mode_short[MODE_MAX] = { "cold", "full", "mapped", "slot" };

typedef struct sample {
        double ready_ms, http_ms; /* from the start of the driver call */
        unsigned tries;           /* HTTP attempts until the 200 */
} sample_t;

typedef struct smaps_part {
        uint64_t rss_kib, pss_kib, anon_kib;
} smaps_part_t;

typedef struct smaps {
        smaps_part_t all; /* the whole QEMU process */
        smaps_part_t ram; /* its mapping of the guest's memory file (Anonymous: pages copied on write) */
} smaps_t;

/* One guest size: its saved VM's files and what was measured. */
typedef struct guest_size {
        uint64_t mib;
        char *name;    /* VM name and the guest's vmx.name */
        char *cmdline;
        char *memory, *disk, *state_all, *state_dev; /* the saved VM's files, NULL until saved */
        double save_all_ms, save_dev_ms;
        bool memory_unchanged;
        sample_t runs[MODE_MAX][RUNS_MAX];
        unsigned n[MODE_MAX];
        smaps_t host[MODE_MAX][RUNS_MAX]; /* after the first 200 */
        uint64_t memory_nonzero_pages;    /* 4 KiB pages of the saved memory file that are not zero */
} guest_size_t;

typedef struct live_qemu {
        vmm_vm_t *vm;
        pid_t pid;
} live_qemu_t;

/* The one context, passed down; the signal thread shares it through live[] under lock. */
typedef struct bench {
        char *work;
        char *kernel, *initrd, *cmdline_base;
        char *disk_template;
        int next_port;
        unsigned serial;
        pthread_mutex_t lock;
        live_qemu_t live[LIVE_MAX];
} bench_t;

/* One QEMU's private files: DIR/run (run directory), DIR/disk.qcow2, DIR/memory. */
typedef struct instance {
        char *dir, *run_dir, *disk, *memory;
        int port;
} instance_t;

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- QEMU tracking ---- */

static int bench_track(bench_t *b, vmm_vm_t *vm) {
        vmm_status_t st = { 0 };
        int r = vmm_status(vm, &st);
        if (r < 0)
                return r;
        pthread_mutex_lock(&b->lock);
        r = -ENOSPC;
        for (size_t i = 0; i < ELEMENTSOF(b->live); i++)
                if (!b->live[i].vm) {
                        b->live[i] = (live_qemu_t){ .vm = vm, .pid = st.pid };
                        r = 0;
                        break;
                }
        pthread_mutex_unlock(&b->lock);
        return r;
}

/* Kill *vm's QEMU (reaped on return), stop tracking it and free the handle. Accepts NULL. */
static void bench_vm_kill(bench_t *b, vmm_vm_t **vm) {
        if (!*vm)
                return;
        /* under the lock, so the signal thread never kills a pid that was already reaped */
        pthread_mutex_lock(&b->lock);
        (void)vmm_kill(*vm, 0);
        for (size_t i = 0; i < ELEMENTSOF(b->live); i++)
                if (b->live[i].vm == *vm)
                        b->live[i] = (live_qemu_t){ 0 };
        pthread_mutex_unlock(&b->lock);
        *vm = vmm_vm_free(*vm);
}

static void bench_kill_all(bench_t *b) {
        for (size_t i = 0; i < ELEMENTSOF(b->live); i++) {
                vmm_vm_t *vm = b->live[i].vm;
                bench_vm_kill(b, &vm);
        }
}

/* SIGKILL every QEMU whose pidfile is WORK/qN/run/qemu.pid and whose command line names WORK:
 * the ones vmm_boot/vmm_restore were still starting when the signal came. */
static void kill_pidfiles(const char *work) {
        DIR *d = opendir(work);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] != 'q')
                        continue;
                _cleanup_free_ char *pidfile = xasprintf("%s/%s/run/" QEMU_RUN_PIDFILE, work, de->d_name);
                _cleanup_free_ char *text = NULL, *cmdline_path = NULL, *cmdline = NULL;
                size_t len = 0;
                if (file_read(pidfile, &text, NULL) < 0)
                        continue;
                int pid = atoi(text);
                cmdline_path = xasprintf("/proc/%d/cmdline", pid);
                if (pid <= 1 || file_read(cmdline_path, &cmdline, &len) < 0)
                        continue;
                for (size_t i = 0; i < len; i++)
                        if (!cmdline[i])
                                cmdline[i] = ' ';
                if (strstr(cmdline, "qemu-system") && strstr(cmdline, work))
                        kill(pid, SIGKILL);
        }
        closedir(d);
}

/* Waits for SIGINT/SIGTERM (blocked in every other thread): kills what we started, removes
 * the work directory and exits with 128+signal. */
static void *signal_thread(void *arg) {
        bench_t *b = arg;
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
                return NULL;
        fprintf(stderr, "restore-modes: signal %d: killing our QEMUs, removing %s\n", sig, b->work);
        pthread_mutex_lock(&b->lock);
        for (size_t i = 0; i < ELEMENTSOF(b->live); i++)
                if (b->live[i].vm && b->live[i].pid > 0)
                        kill(b->live[i].pid, SIGKILL);
        kill_pidfiles(b->work);
        (void)rm_rf(b->work);
        _exit(128 + sig);
}

/* ---- files and ports ---- */

static int file_copy(const char *from, const char *to) {
        _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return negative_errno();
        _cleanup_close_ int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0)
                return negative_errno();
        char buf[1 << 16];
        for (;;) {
                ssize_t n = read(in, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return 0;
                int r = fd_write_all(out, buf, (size_t)n);
                if (r < 0)
                        return r;
        }
}

/* qemu-img create -f qcow2 PATH DISK_SIZE, quietly. */
static int disk_create(const char *path) {
        char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", (char *)path, DISK_SIZE, NULL };
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attr, &none); /* we block SIGINT/SIGTERM; it must not */
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
        pid_t pid;
        int r = posix_spawnp(&pid, argv[0], NULL, &attr, argv, environ);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* The next port from b->next_port on that 127.0.0.1 lets us bind now: a fresh one per QEMU. */
static int port_next(bench_t *b) {
        for (int tries = 0; tries < 1000; tries++) {
                int port = b->next_port++;
                if (b->next_port > 60000)
                        b->next_port = 20000;
                _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
                        return port;
        }
        return -EADDRINUSE;
}

static void instance_done(instance_t *i) {
        free(i->dir);
        free(i->run_dir);
        free(i->disk);
        free(i->memory);
        *i = (instance_t){ 0 };
}

/* A new directory WORK/qN with a copy of disk_from in it, and a fresh port. */
static int instance_new(bench_t *b, const char *disk_from, instance_t *ret) {
        instance_t i = { .dir = xasprintf("%s/q%u", b->work, ++b->serial) };
        i.run_dir = xasprintf("%s/run", i.dir);
        i.disk = xasprintf("%s/disk.qcow2", i.dir);
        i.memory = xasprintf("%s/memory", i.dir);
        i.port = port_next(b);
        int r = i.port < 0 ? i.port : mkdir_p(i.run_dir, 0700);
        if (r >= 0)
                r = file_copy(disk_from, i.disk);
        if (r < 0) {
                instance_done(&i);
                return r;
        }
        *ret = i;
        return 0;
}

/* The VM's config for one QEMU: everything but run directory, port, disk and memory file is
 * the same for every QEMU of a size, so states and slots fit. */
static vmm_config_t vm_config(const bench_t *b, const guest_size_t *s, const instance_t *i) {
        return (vmm_config_t){
                .name = s->name,
                .run_dir = i->run_dir,
                .memory_mib = s->mib,
                .vcpus = 1,
                .mac = BENCH_MAC,
                .kernel = b->kernel,
                .initrd = b->initrd,
                .cmdline = s->cmdline,
                .disk = i->disk,
                .disk_format = "qcow2",
                .fwd_host = "127.0.0.1",
                .fwd_port = i->port,
                .accel = "tcg",
                .memory_path = i->memory,
        };
}

/* ---- HTTP ---- */

typedef struct http_try {
        int fd;
        double start_ms;
        bool sent;
        size_t len;
        char buf[16];
} http_try_t;

static void http_try_drop(http_try_t *t, size_t *n, size_t k) {
        close(t[k].fd);
        t[k] = t[--*n];
}

/* Poll GET /health on 127.0.0.1:port until a response's status line says 200; *ret_ms is when
 * it arrived (now_ms clock). A new attempt starts HTTP_POLL_MS after the last one failed
 * (refused, reset, closed or not 200). One that stays unanswered for HTTP_STALE_MS gets a
 * second one beside it, since slirp resends a SYN the booting guest lost only after seconds;
 * that bounds the cost of a lost SYN without piling requests on a guest that is answering. */
static int http_wait_200(int port, int timeout_ms, double *ret_ms, unsigned *ret_tries) {
        static const char request[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        const struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        http_try_t t[HTTP_INFLIGHT_MAX];
        size_t n = 0;
        unsigned tries = 0;
        double deadline = now_ms() + timeout_ms, next = 0;
        int r = -ETIMEDOUT;
        for (;;) {
                double now = now_ms();
                if (now >= deadline)
                        break;
                for (size_t k = 0; k < n;)
                        if (now - t[k].start_ms >= HTTP_ATTEMPT_MS)
                                http_try_drop(t, &n, k);
                        else
                                k++;
                double newest = 0;
                for (size_t k = 0; k < n; k++)
                        newest = MAX(newest, t[k].start_ms);
                bool start = n == 0 ? now >= next : n < HTTP_INFLIGHT_MAX && now - newest >= HTTP_STALE_MS;
                if (start) {
                        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                        if (fd < 0) {
                                r = negative_errno();
                                break;
                        }
                        tries++;
                        if (connect(fd, (const struct sockaddr *)&sa, sizeof sa) == 0 || errno == EINPROGRESS)
                                t[n++] = (http_try_t){ .fd = fd, .start_ms = now };
                        else {
                                close(fd);
                                next = now + HTTP_POLL_MS;
                        }
                }
                struct pollfd p[HTTP_INFLIGHT_MAX];
                for (size_t k = 0; k < n; k++)
                        p[k] = (struct pollfd){ .fd = t[k].fd, .events = t[k].sent ? POLLIN : POLLOUT };
                if (poll(p, n, HTTP_POLL_MS) < 0 && errno != EINTR) {
                        r = negative_errno();
                        break;
                }
                bool failed = false;
                for (size_t k = n; k-- > 0;) {
                        if (!p[k].revents)
                                continue;
                        http_try_t *a = &t[k];
                        if (!a->sent) {
                                int err = 0;
                                socklen_t sl = sizeof err;
                                if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err ||
                                    write(a->fd, request, sizeof request - 1) != (ssize_t)(sizeof request - 1)) {
                                        http_try_drop(t, &n, k);
                                        failed = true;
                                } else
                                        a->sent = true;
                                continue;
                        }
                        ssize_t got = read(a->fd, a->buf + a->len, sizeof a->buf - 1 - a->len);
                        if (got > 0)
                                a->len += (size_t)got;
                        a->buf[a->len] = 0;
                        if (a->len >= 12) { /* "HTTP/1.1 200" */
                                if (str_startswith(a->buf, "HTTP/1.1 200") || str_startswith(a->buf, "HTTP/1.0 200")) {
                                        *ret_ms = now_ms();
                                        r = 0;
                                        goto done;
                                }
                                http_try_drop(t, &n, k);
                                failed = true;
                        } else if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                                http_try_drop(t, &n, k);
                                failed = true;
                        }
                }
                if (failed && n == 0)
                        next = now_ms() + HTTP_POLL_MS;
        }
done:
        while (n > 0)
                http_try_drop(t, &n, 0);
        *ret_tries = tries;
        return r;
}

/* ---- host memory ---- */

/* Adds a "Rss:", "Pss:" or "Anonymous:" line of smaps to p; other lines are ignored. */
static void smaps_part_add(smaps_part_t *p, const char *line) {
        unsigned long long v;
        if (sscanf(line, "Rss: %llu kB", &v) == 1)
                p->rss_kib += v;
        else if (sscanf(line, "Pss: %llu kB", &v) == 1)
                p->pss_kib += v;
        else if (sscanf(line, "Anonymous: %llu kB", &v) == 1)
                p->anon_kib += v;
}

/* The process's totals from /proc/PID/smaps_rollup, and the mappings of memory_path from
 * /proc/PID/smaps. */
static int smaps_read(pid_t pid, const char *memory_path, smaps_t *ret) {
        _cleanup_free_ char *rollup = xasprintf("/proc/%d/smaps_rollup", (int)pid);
        _cleanup_free_ char *maps = xasprintf("/proc/%d/smaps", (int)pid);
        _cleanup_free_ char *suffix = xasprintf(" %s\n", memory_path);
        _cleanup_fclose_ FILE *f = fopen(rollup, "re");
        _cleanup_fclose_ FILE *g = fopen(maps, "re");
        if (!f || !g)
                return negative_errno();
        smaps_t m = { 0 };
        char line[4096];
        while (fgets(line, sizeof line, f))
                smaps_part_add(&m.all, line);
        bool in_ram = false;
        while (fgets(line, sizeof line, g)) {
                unsigned long start, end;
                if (sscanf(line, "%lx-%lx ", &start, &end) == 2) /* a mapping's first line */
                        in_ram = str_endswith(line, suffix);
                else if (in_ram)
                        smaps_part_add(&m.ram, line);
        }
        *ret = m;
        return 0;
}

/* 4 KiB pages of path that are not all zero. */
static int file_nonzero_pages(const char *path, uint64_t *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        static const char zero[4096];
        char buf[1 << 16];
        uint64_t n = 0;
        for (;;) {
                ssize_t got = read(fd, buf, sizeof buf);
                if (got < 0 && errno == EINTR)
                        continue;
                if (got < 0)
                        return negative_errno();
                if (got == 0)
                        break;
                for (ssize_t o = 0; o < got; o += sizeof zero)
                        n += memcmp(buf + o, zero, (size_t)MIN((ssize_t)sizeof zero, got - o)) != 0;
        }
        *ret = n;
        return 0;
}

/* ---- one run of each mode ---- */

/* From t0 (the start of the driver call) to now and to the first 200; records the sample and
 * the QEMU's host memory right after (memory_path: the guest RAM file it maps). */
static int measure(guest_size_t *s, enum bench_mode mode, vmm_vm_t *vm, int port, const char *memory_path,
                   double t0) {
        sample_t x = { .ready_ms = now_ms() - t0 };
        double t200 = 0;
        int r = http_wait_200(port, HTTP_TIMEOUT_MS, &t200, &x.tries);
        if (r < 0)
                return r;
        x.http_ms = t200 - t0;
        unsigned k = s->n[mode]++;
        s->runs[mode][k] = x;
        vmm_status_t st = { 0 };
        if (vmm_status(vm, &st) >= 0)
                (void)smaps_read(st.pid, memory_path, &s->host[mode][k]);
        printf("%-9s %-7s run %u: VMM ready %8.1f ms, first 200 %8.1f ms (%u HTTP attempts)\n", s->name,
               mode_short[mode], k + 1, x.ready_ms, x.http_ms, x.tries);
        fflush(stdout);
        return 0;
}

/* The saved VM: one save with all RAM, cont, one save of the device state only. Its memory
 * file then holds exactly the RAM of the device state. */
static int source_save(guest_size_t *s, vmm_vm_t *vm, const instance_t *i) {
        _cleanup_free_ char *all = xasprintf("%s/state-all", i->dir), *dev = xasprintf("%s/state-dev", i->dir);
        time_sleep_ms(SETTLE_MS);
        double t = now_ms();
        int r = vmm_save(vm, all, VMM_ALL_RAM);
        s->save_all_ms = now_ms() - t;
        if (r >= 0)
                r = vmm_cont(vm, 0);
        if (r >= 0) {
                t = now_ms();
                r = vmm_save(vm, dev, 0);
                s->save_dev_ms = now_ms() - t;
        }
        if (r < 0)
                return r;
        s->state_all = TAKE_PTR(all);
        s->state_dev = TAKE_PTR(dev);
        s->memory = xstrdup(i->memory);
        s->disk = xstrdup(i->disk);
        return 0;
}

/* Cold boot; with save, the VM is then saved and becomes the size's source (its directory
 * stays). Logs its failure. */
static int run_cold(bench_t *b, guest_size_t *s, bool save) {
        _cleanup_(instance_done) instance_t i = { 0 };
        int r = instance_new(b, b->disk_template, &i);
        if (r < 0) {
                log_error("%s: creating a QEMU's files in %s: %s", s->name, b->work, strerror(-r));
                return r;
        }
        vmm_config_t cfg = vm_config(b, s, &i);
        vmm_vm_t *vm = NULL;
        double t0 = now_ms();
        r = vmm_boot(&vmm_qemu, &cfg, 0, &vm);
        if (r >= 0)
                r = bench_track(b, vm);
        if (r >= 0)
                r = measure(s, MODE_COLD, vm, i.port, cfg.memory_path, t0);
        if (r >= 0 && save)
                r = source_save(s, vm, &i);
        if (r < 0)
                log_error("%s cold boot%s failed: %s", s->name, save ? " or save" : "", strerror(-r));
        bench_vm_kill(b, &vm);
        if (!save || r < 0)
                (void)rm_rf(i.dir);
        return r;
}

/* Full-RAM, mapped or slot restore from the size's saved states, into a fresh QEMU (or slot).
 * Logs its failure. */
static int run_restore(bench_t *b, guest_size_t *s, enum bench_mode mode) {
        _cleanup_(instance_done) instance_t i = { 0 };
        int r = instance_new(b, s->disk, &i);
        if (r < 0) {
                log_error("%s: creating a QEMU's files in %s: %s", s->name, b->work, strerror(-r));
                return r;
        }
        vmm_config_t cfg = vm_config(b, s, &i);
        vmm_vm_t *vm = NULL;
        if (mode == MODE_SLOT) {
                vmm_config_t shape = cfg;
                shape.memory_path = NULL;
                shape.disk = NULL;
                r = vmm_slot_start(&vmm_qemu, &shape, 0, &vm);
                if (r >= 0)
                        r = bench_track(b, vm);
                if (r < 0)
                        goto out;
                time_sleep_ms(SLOT_SETTLE_MS);
        }
        const char *state = s->state_dev;
        unsigned flags = 0;
        if (mode == MODE_FULL) {
                state = s->state_all; /* into cfg.memory_path, a new empty file, shared */
                flags = VMM_ALL_RAM;
        } else {
                cfg.memory_path = s->memory;
                cfg.memory_private = true;
        }
        double t0 = now_ms();
        if (mode == MODE_SLOT)
                r = vmm_slot_restore(vm, &cfg, state, flags);
        else {
                r = vmm_restore(&vmm_qemu, &cfg, state, flags, &vm);
                if (r >= 0)
                        r = bench_track(b, vm);
        }
        if (r >= 0)
                r = measure(s, mode, vm, i.port, cfg.memory_path, t0);
out:
        if (r < 0)
                log_error("%s %s failed: %s", s->name, mode_names[mode], strerror(-r));
        bench_vm_kill(b, &vm);
        (void)rm_rf(i.dir);
        return r;
}

/* All runs of one size: cold run 1 is the source; then full, mapped, slot and the next cold
 * run take turns, so that a drift of the host touches every mode alike. */
static int size_run(bench_t *b, guest_size_t *s, unsigned runs) {
        int r = run_cold(b, s, true);
        if (r < 0)
                return r;
        char before[65], after[65];
        r = file_nonzero_pages(s->memory, &s->memory_nonzero_pages);
        if (r >= 0)
                r = file_sha256(s->memory, before);
        if (r < 0) {
                log_error("%s: reading memory file %s: %s", s->name, s->memory, strerror(-r));
                return r;
        }
        for (unsigned k = 0; k < runs; k++) {
                for (enum bench_mode m = MODE_FULL; m < MODE_MAX; m++)
                        if ((r = run_restore(b, s, m)) < 0)
                                return r;
                if (k + 1 < runs && (r = run_cold(b, s, false)) < 0)
                        return r;
        }
        r = file_sha256(s->memory, after);
        if (r < 0) {
                log_error("%s: reading memory file %s: %s", s->name, s->memory, strerror(-r));
                return r;
        }
        s->memory_unchanged = streq(before, after);
        printf("%-9s memory file sha256 %.16s... before, %.16s... after %u private restores: %s\n", s->name,
               before, after, 2 * runs, s->memory_unchanged ? "unchanged" : "CHANGED");
        return 0;
}

/* ---- report ---- */

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

static double median(const double *v, unsigned n) {
        if (n == 0)
                return 0;
        double c[RUNS_MAX];
        memcpy(c, v, n * sizeof *v);
        qsort(c, n, sizeof *c, cmp_double);
        return n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
}

static double median_of(const guest_size_t *s, enum bench_mode m, bool http) {
        double v[RUNS_MAX];
        for (unsigned k = 0; k < s->n[m]; k++)
                v[k] = http ? s->runs[m][k].http_ms : s->runs[m][k].ready_ms;
        return median(v, s->n[m]);
}

/* Median over the runs of mode m of one figure of their host memory, in MiB. */
static double median_host(const guest_size_t *s, enum bench_mode m, size_t offset) {
        double v[RUNS_MAX];
        for (unsigned k = 0; k < s->n[m]; k++)
                v[k] = *(const uint64_t *)((const char *)&s->host[m][k] + offset) / 1024.0;
        return median(v, s->n[m]);
}

static double allocated_mib(const char *path) {
        struct stat st;
        return stat(path, &st) < 0 ? -1 : st.st_blocks * 512.0 / 1048576.0;
}

static void report(const guest_size_t *sizes, size_t n_sizes, unsigned runs) {
        const guest_size_t *small = &sizes[0], *big = &sizes[n_sizes - 1];
        printf("\n== restore-modes: tiny-http guest, TCG, 1 vCPU, %ld host cores; medians of %u runs; ms from the "
               "start of the driver call ==\n",
               sysconf(_SC_NPROCESSORS_ONLN), runs);
        printf("%-22s", "");
        for (size_t z = 0; z < n_sizes; z++)
                printf(" | %9" PRIu64 " MiB guest   ", sizes[z].mib);
        printf("\n%-22s", "mode");
        for (size_t z = 0; z < n_sizes; z++)
                printf(" | VMM ready  first 200");
        printf("\n");
        for (enum bench_mode m = 0; m < MODE_MAX; m++) {
                printf("%-22s", mode_names[m]);
                for (size_t z = 0; z < n_sizes; z++)
                        printf(" | %9.1f  %9.1f", median_of(&sizes[z], m, false), median_of(&sizes[z], m, true));
                printf("\n");
        }

        printf("\n%-30s", "ratios: first 200 (VMM ready)");
        for (size_t z = 0; z < n_sizes; z++) {
                _cleanup_free_ char *h = xasprintf("%" PRIu64 " MiB", sizes[z].mib);
                printf(" | %-18s", h);
        }
        printf("\n");
        for (enum bench_mode m = MODE_FULL; m < MODE_MAX; m++) {
                _cleanup_free_ char *label = xasprintf("%s / cold", mode_short[m]);
                printf("%-30s", label);
                for (size_t z = 0; z < n_sizes; z++) {
                        _cleanup_free_ char *v =
                                xasprintf("%.3f (%.3f)", median_of(&sizes[z], m, true) / median_of(&sizes[z], MODE_COLD, true),
                                          median_of(&sizes[z], m, false) / median_of(&sizes[z], MODE_COLD, false));
                        printf(" | %-18s", v);
                }
                printf("\n");
        }
        _cleanup_free_ char *label = xasprintf("%" PRIu64 "MiB-slot / %" PRIu64 "MiB-slot", big->mib, small->mib);
        printf("%-30s | %.3f (%.3f)\n", label,
               median_of(big, MODE_SLOT, true) / median_of(small, MODE_SLOT, true),
               median_of(big, MODE_SLOT, false) / median_of(small, MODE_SLOT, false));

        printf("\nsaved VM (cold run 1, saved %d ms after its first 200):\n", SETTLE_MS);
        for (size_t z = 0; z < n_sizes; z++) {
                const guest_size_t *s = &sizes[z];
                printf("  %4" PRIu64 " MiB: all-RAM state %.1f MiB (save %.0f ms); device state %.2f MiB (save %.0f ms)\n"
                       "            memory file %" PRIu64 " MiB: %.1f MiB allocated, %.1f MiB not zero; sha256 "
                       "unchanged after %u private restores: %s\n",
                       s->mib, file_size(s->state_all) / 1048576.0, s->save_all_ms, file_size(s->state_dev) / 1048576.0,
                       s->save_dev_ms, s->mib, allocated_mib(s->memory), s->memory_nonzero_pages * 4096 / 1048576.0,
                       s->n[MODE_MAPPED] + s->n[MODE_SLOT], s->memory_unchanged ? "yes" : "NO");
        }

        printf("\nhost memory of a QEMU right after its first 200 (MiB, medians): the process (smaps_rollup), and\n"
               "its mapping of the guest RAM file (smaps; Anonymous there = pages copied on write)\n");
        printf("%-9s %-22s | %7s %7s %7s | %7s %7s %7s\n", "guest", "mode", "Rss", "Pss", "Anon", "RAM Rss",
               "RAM Pss", "RAM Anon");
        for (size_t z = 0; z < n_sizes; z++)
                for (enum bench_mode m = 0; m < MODE_MAX; m++) {
                        _cleanup_free_ char *guest = xasprintf("%" PRIu64 " MiB", sizes[z].mib);
                        printf("%-9s %-22s | %7.1f %7.1f %7.1f | %7.1f %7.1f %7.1f\n", guest, mode_names[m],
                               median_host(&sizes[z], m, offsetof(smaps_t, all.rss_kib)),
                               median_host(&sizes[z], m, offsetof(smaps_t, all.pss_kib)),
                               median_host(&sizes[z], m, offsetof(smaps_t, all.anon_kib)),
                               median_host(&sizes[z], m, offsetof(smaps_t, ram.rss_kib)),
                               median_host(&sizes[z], m, offsetof(smaps_t, ram.pss_kib)),
                               median_host(&sizes[z], m, offsetof(smaps_t, ram.anon_kib)));
                }
}

/* ---- set-up ---- */

static int guest_load(bench_t *b) {
        const char *env = getenv("VMATRIX_GUEST_DIR");
        _cleanup_free_ char *exe = exe_dir();
        _cleanup_free_ char *dir = env && *env ? xstrdup(env) : xasprintf("%s/guest/tiny-http", exe ? exe : ".");
        _cleanup_free_ char *cmdline_path = xasprintf("%s/cmdline", dir);
        b->kernel = xasprintf("%s/vmlinuz", dir);
        b->initrd = xasprintf("%s/initrd.img", dir);
        int r = file_read(cmdline_path, &b->cmdline_base, NULL);
        if (r < 0 || !file_exists(b->kernel) || !file_exists(b->initrd)) {
                fprintf(stderr, "restore-modes: no tiny-http guest in %s (build it, or set VMATRIX_GUEST_DIR)\n", dir);
                return r < 0 ? r : -ENOENT;
        }
        b->cmdline_base[strcspn(b->cmdline_base, "\r\n")] = 0;
        return 0;
}

static void guest_size_init(const bench_t *b, uint64_t mib, guest_size_t *s) {
        *s = (guest_size_t){ .mib = mib, .name = xasprintf("rm-%" PRIu64, mib) };
        /* what the Oracle adds for the built-in tiny-http image, and no data disk */
        s->cmdline = xasprintf("%s quiet init_on_free=1 vmx.name=%s vmx.disk=none", b->cmdline_base, s->name);
}

static void guest_size_done(guest_size_t *s) {
        free(s->name);
        free(s->cmdline);
        free(s->memory);
        free(s->disk);
        free(s->state_all);
        free(s->state_dev);
}

int main(int argc, char **argv) {
        int64_t runs = 5;
        if (argc > 3 || (argc >= 2 && parse_int64(argv[1], 1, RUNS_MAX, &runs) < 0)) {
                fprintf(stderr, "usage: %s [RUNS (1-%d, default 5) [WORKDIR]]\n", argv[0], RUNS_MAX);
                return 2;
        }
        log_setup("restore-modes");
        if (!getenv("VMATRIX_LOG"))
                log_set_level(LOG_LEVEL_WARN); /* the driver's per-VM info lines would bury the figures */

        /* blocked before any thread exists, so only signal_thread receives them */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);

        bench_t b = { .next_port = 20000 + (int)(getpid() % 20000) };
        pthread_mutex_init(&b.lock, NULL);
        if (argc == 3) {
                b.work = xstrdup(argv[2]);
                if (mkdir_p(b.work, 0700) < 0) {
                        fprintf(stderr, "restore-modes: cannot create %s: %m\n", b.work);
                        return 1;
                }
        } else {
                const char *tmp = getenv("TMPDIR");
                b.work = xasprintf("%s/vmx-bench-restore-modes-XXXXXX", tmp && *tmp ? tmp : "/tmp");
                if (!mkdtemp(b.work)) {
                        fprintf(stderr, "restore-modes: cannot create %s: %m\n", b.work);
                        return 1;
                }
        }
        pthread_t sig_tid;
        pthread_create(&sig_tid, NULL, signal_thread, &b);

        guest_size_t sizes[2];
        size_t n_sizes = 0;
        int r = guest_load(&b);
        if (r >= 0) {
                b.disk_template = xasprintf("%s/template.qcow2", b.work);
                r = disk_create(b.disk_template);
                if (r < 0)
                        fprintf(stderr, "restore-modes: qemu-img create %s failed: %s\n", b.disk_template,
                                strerror(-r));
        }
        double t_start = now_ms();
        if (r >= 0) {
                printf("restore-modes: %" PRId64 " runs per mode and size, work directory %s\n", runs, b.work);
                fflush(stdout);
                const uint64_t mibs[] = { 128, 1024 };
                for (size_t z = 0; z < ELEMENTSOF(mibs) && r >= 0; z++) {
                        guest_size_init(&b, mibs[z], &sizes[n_sizes++]);
                        r = size_run(&b, &sizes[z], (unsigned)runs);
                }
        }
        if (r >= 0) {
                report(sizes, n_sizes, (unsigned)runs);
                printf("\ntotal %.0f s\n", (now_ms() - t_start) / 1000);
        }

        /* from here on a signal stays pending until we exit: cleaning up is all it would do */
        pthread_cancel(sig_tid);
        pthread_join(sig_tid, NULL);
        bench_kill_all(&b);
        (void)rm_rf(b.work);
        for (size_t z = 0; z < n_sizes; z++)
                guest_size_done(&sizes[z]);
        free(b.work);
        free(b.kernel);
        free(b.initrd);
        free(b.cmdline_base);
        free(b.disk_template);
        return r < 0 ? 1 : 0;
}
