/* Real-QEMU check of live migration in the vmm_qemu driver (not a unit test; run by
 * qemu-live-smoke.sh). Both QEMUs run on this host, under TCG, talking over 127.0.0.1.
 *
 * usage: qemu-live-smoke WORKDIR KERNEL INITRD CMDLINE
 *
 * Boots the tiny-http guest (KERNEL, INITRD, CMDLINE) as "live1" with a 64 MiB qcow2 data
 * disk and its RAM in a shared memory file, writes a disk mark and 10 MiB of RAM data, and
 * saves and resumes it once (a save leaves x-ignore-shared on, which live_send must undo or
 * the destination gets no RAM). Both streams are TLS with migration identities of a CA made
 * here (as the Oracle signs them): the source is "rm-src", the destination "rm-dst", and
 * "rm-other" is a third RM. Then:
 *   - failures, each leaving the source running and answering HTTP with its mark: an endpoint
 *     nobody listens on; a destination killed before live_send; a destination whose migration
 *     port is wrong (the disk mirror runs, then the migration fails); a too short timeout;
 *   - TLS only, and only the RMs named, at a destination that then still takes the real source:
 *     a plain TCP client of its migration port is dropped, a plain NBD client refused; a TLS
 *     client with rm-other's certificate is denied by tls-authz on both ports (QEMU's log names
 *     the subject it compared, so the subject format is QEMU's own); a source showing rm-other's
 *     certificate, or expecting rm-other as its destination, fails and runs on; no TLS at all is
 *     refused by the driver; no TLS file stays in a run directory; a destination that allows the
 *     source's subject written CN first (RFC 4514's order) denies it: QEMU compares OU first;
 *   - rollback: live_send succeeds, the destination dies before live_finish, cont on the
 *     source brings it back (the caller's way out when live_finish fails); a save of the source
 *     then works (its migration parameters are plain again);
 *   - success: live_receive, live_send, live_finish; the destination answers with the same
 *     boot id, more hits and the disk mark, and the source stays paused; the destination can
 *     be saved (its TLS parameters are off again).
 * During the successful migration a client probes GET /health every ~5 ms on the source, and
 * from when live_finish returned on the destination (as the node switches its traffic); the
 * longest gap between two answers is printed as the downtime clients saw. Under TCG with QEMU
 * before 9.0 the driver copies RAM with the CPUs stopped (see qemu-live.c), so that gap is the
 * whole RAM copy plus the destination's first answer (TCG translates all guest code afresh).
 * Timings are printed, never asserted.
 * Every VM it starts is killed before it exits, on failure too (the harness in smoke.c, shared
 * with qemu-driver-smoke); its memory files are removed after them. */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "base/util.h"
#include "smoke.h"
#include "tls/ca.h"
#include "tls/tls-identity.h"
#include "vmm/vmm.h"

#define DISK_SIZE "64M"
#define PROBE_TIMEOUT_MS 300 /* a paused VM's forward accepts and then never answers */
#define SEND_TIMEOUT_MS 120000

static char *shm_files[8]; /* removed at exit, after the VMs that map them */

/* The cleanup given to smoke_init. */
static void shm_files_remove(void) {
        for (size_t i = 0; i < ELEMENTSOF(shm_files); i++)
                if (shm_files[i]) {
                        unlink(shm_files[i]);
                        free(shm_files[i]);
                        shm_files[i] = NULL;
                }
}

/* A memory file in /dev/shm, removed at exit. */
static const char *shm_file(const char *what) {
        for (size_t i = 0; i < ELEMENTSOF(shm_files); i++)
                if (!shm_files[i])
                        return shm_files[i] = xasprintf("/dev/shm/vmx-live-smoke-%d-%s", (int)getpid(), what);
        abort();
}

/* A free TCP port on 127.0.0.1 (bind port 0, close). */
static int free_port(void) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0)
                return -1;
        return ntohs(a.sin_port);
}

/* Run argv (no shell); 0 when it exits with status 0. */
static int run(char *const argv[]) {
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                execvp(argv[0], argv);
                _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0)
                return negative_errno();
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static int qcow2_create(const char *path) {
        char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", (char *)path, DISK_SIZE, NULL };
        return run(argv);
}

/* A migration identity of the test's CA, and a directory of QEMU's client credentials for it
 * (qemu-img's tls-creds-x509). */
typedef struct ident {
        char *cert_pem, *key_pem, *cert_path, *key_path;
        char *creds_dir;
} ident_t;

/* Run a shell command; its output (stdout and stderr) into out; 0 when it exits with 0. */
static int run_shell(const char *cmd, char *out, size_t size) {
        FILE *p = popen(cmd, "r");
        if (!p)
                return -errno;
        size_t n = fread(out, 1, size - 1, p);
        out[n] = 0;
        int st = pclose(p);
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* How often needle occurs in the file at path. */
static int file_count(const char *path, const char *needle) {
        _cleanup_free_ char *text = NULL;
        if (file_read(path, &text, NULL) < 0)
                return 0;
        int n = 0;
        for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* Wait up to 5 s for needle to occur more than before times in the file at path. */
static bool file_count_grows(const char *path, const char *needle, int before) {
        int64_t t0 = time_now_ms();
        while (file_count(path, needle) <= before && time_now_ms() - t0 < 5000)
                time_sleep_ms(50);
        return file_count(path, needle) > before;
}

typedef struct ctx {
        const char *work, *kernel, *initrd;
        char *cmdline;
        char *ca_pem, *ca_path;
        ident_t src_id, dst_id, other_id;
        char *src_subject, *dst_host, *other_subject, *other_host;
        vmm_live_tls_t src_tls, dst_tls; /* live_send's and live_receive's */
        vmm_config_t src_cfg;
        vmm_vm_t *src;
        char *boot_id, *mark;
        int ndst; /* destinations started so far, for their names */
} ctx_t;

/* One destination: its config (with the strings it points to) and handle. */
typedef struct dest {
        char *run, *disk;
        vmm_config_t cfg;
        vmm_live_endpoint_t ep;
        vmm_vm_t *vm;
} dest_t;

static void dest_clear(dest_t *d) {
        smoke_vm_finish(&d->vm);
        if (d->cfg.memory_path)
                (void)unlink(d->cfg.memory_path);
        free(d->run);
        free(d->disk);
        *d = (dest_t){ 0 };
}

/* Create an empty overlay and a new memory file and live_receive with the source's config. */
static int dest_start(ctx_t *c, dest_t *d) {
        int n = ++c->ndst;
        d->run = xasprintf("%s/run-dst%d", c->work, n);
        d->disk = xasprintf("%s/dst%d.qcow2", c->work, n);
        char what[16];
        snprintf(what, sizeof what, "dst%d", n);
        d->cfg = c->src_cfg;
        d->cfg.run_dir = d->run;
        d->cfg.disk = d->disk;
        d->cfg.memory_path = shm_file(what);
        d->cfg.fwd_port = free_port();
        int r = qcow2_create(d->disk);
        if (r < 0)
                return r;
        int64_t t0 = time_now_ms();
        r = vmm_live_receive(&vmm_qemu, &d->cfg, "127.0.0.1", &c->dst_tls, 0, &d->ep, &d->vm);
        if (r < 0)
                return r;
        smoke_vm_track(d->vm);
        printf("destination %d: listening after %lld ms (migration port %d, disk port %d)\n", n,
               (long long)(time_now_ms() - t0), d->ep.migrate_port, d->ep.nbd_port);
        return 0;
}

/* The source still runs, answers HTTP, and is the same boot with its disk mark. */
static void expect_source_alive(ctx_t *c, const char *after) {
        _cleanup_free_ char *id = NULL;
        EXPECT(smoke_vm_state(c->src) == VMM_RUN_RUNNING);
        int r = smoke_http_get(c->src_cfg.fwd_port, "/id", &id);
        EXPECT(r == 0);
        _cleanup_free_ char *boot = smoke_json_str(id, "boot_id"), *mark = smoke_json_str(id, "disk_mark");
        EXPECT(streq(boot, c->boot_id));
        EXPECT(streq(mark, c->mark));
        printf("source after %s: %s\n", after, id ? id : "(no answer)");
}

/* rm's migration identity, signed by ca as the Oracle signs one, and its client creds dir. */
static int ident_make(ctx_t *c, ca_t *ca, const char *rm, ident_t *ret) {
        ret->key_path = xasprintf("%s/%s.key", c->work, rm);
        ret->cert_path = xasprintf("%s/%s.pem", c->work, rm);
        ret->creds_dir = xasprintf("%s/creds-%s", c->work, rm);
        _cleanup_free_ char *csr = NULL, *msg = NULL, *ca_file = xasprintf("%s/ca-cert.pem", ret->creds_dir);
        _cleanup_free_ char *cert_file = xasprintf("%s/client-cert.pem", ret->creds_dir);
        _cleanup_free_ char *key_file = xasprintf("%s/client-key.pem", ret->creds_dir);
        int r = tls_key_generate(ret->key_path);
        if (r >= 0)
                r = tls_csr_make(ret->key_path, rm, &csr);
        if (r >= 0)
                r = ca_sign_migration(ca, rm, csr, &ret->cert_pem, &msg);
        if (r >= 0)
                r = file_read(ret->key_path, &ret->key_pem, NULL);
        if (r >= 0)
                r = tls_file_write(ret->cert_path, ret->cert_pem, 0644);
        if (r >= 0)
                r = mkdir_p(ret->creds_dir, 0700);
        if (r >= 0)
                r = tls_file_write(ca_file, ca_cert_pem(ca), 0644);
        if (r >= 0)
                r = tls_file_write(cert_file, ret->cert_pem, 0644);
        if (r >= 0)
                r = tls_file_write(key_file, ret->key_pem, 0600);
        if (r < 0)
                fprintf(stderr, "cannot make the migration identity of %s: %s\n", rm, msg ? msg : strerror(-r));
        return r;
}

static void ident_clear(ident_t *i) {
        free(i->cert_pem);
        free(i->key_pem);
        free(i->cert_path);
        free(i->key_path);
        free(i->creds_dir);
}

/* A CA and the three RMs' migration identities; the TLS the source and destination use. */
static void tls_setup(ctx_t *c) {
        _cleanup_free_ char *dir = xasprintf("%s/ca", c->work), *msg = NULL;
        ca_t *ca = NULL;
        REQUIRE(ca_open(dir, &ca, &msg) == 1);
        c->ca_pem = xstrdup(ca_cert_pem(ca));
        c->ca_path = xasprintf("%s/" CA_CERT_FILE, dir);
        int r = ident_make(c, ca, "rm-src", &c->src_id);
        if (r >= 0)
                r = ident_make(c, ca, "rm-dst", &c->dst_id);
        if (r >= 0)
                r = ident_make(c, ca, "rm-other", &c->other_id);
        ca_free(ca);
        REQUIRE(r >= 0);
        c->src_subject = tls_migration_authz_id("rm-src");
        c->dst_host = tls_migration_dns_name("rm-dst");
        c->other_subject = tls_migration_authz_id("rm-other");
        c->other_host = tls_migration_dns_name("rm-other");
        c->src_tls = (vmm_live_tls_t){ .ca_pem = c->ca_pem, .cert_pem = c->src_id.cert_pem, .key_pem = c->src_id.key_pem,
                                       .peer_hostname = c->dst_host };
        c->dst_tls = (vmm_live_tls_t){ .ca_pem = c->ca_pem, .cert_pem = c->dst_id.cert_pem, .key_pem = c->dst_id.key_pem,
                                       .peer_subject = c->src_subject };
}

/* A plain TCP client of port sends the start of a migration stream ("QEVM", version 3) and is
 * dropped within 5 s without a byte of answer. */
static bool plain_client_dropped(int port) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        static const char header[] = "QEVM\0\0\0\3 plain bytes where a TLS handshake should be";
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
            write(fd, header, sizeof header) != (ssize_t)sizeof header)
                return false;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char b[64];
        /* a TLS server may answer a bad handshake with an alert: bytes, then the close */
        for (int64_t t0 = time_now_ms(); time_now_ms() - t0 < 5000;) {
                if (poll(&p, 1, 500) != 1)
                        continue;
                ssize_t n = read(fd, b, sizeof b);
                if (n <= 0)
                        return true;
                if (b[0] != 0x15) /* not a TLS alert record */
                        return false;
        }
        return false;
}

/* qemu-img info of the destination's NBD export: plain (creds_dir NULL) or over TLS with the
 * client credentials in creds_dir, expecting host. Its output into out. 0 when it opened it. */
static int nbd_info(const dest_t *d, const char *creds_dir, const char *host, char *out, size_t size) {
        char cmd[2048];
        if (creds_dir)
                snprintf(cmd, sizeof cmd,
                         "timeout 20 qemu-img info --object tls-creds-x509,id=t,endpoint=client,dir=%s --image-opts "
                         "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=%d,export=disk0,tls-creds=t,"
                         "tls-hostname=%s 2>&1",
                         creds_dir, d->ep.nbd_port, host);
        else
                snprintf(cmd, sizeof cmd,
                         "timeout 20 qemu-img info --image-opts driver=nbd,server.type=inet,server.host=127.0.0.1,"
                         "server.port=%d,export=disk0 2>&1",
                         d->ep.nbd_port);
        return run_shell(cmd, out, size);
}

/* A TLS client of the destination's migration port with id's certificate, which sends nothing
 * and leaves when its input ends. */
static void migrate_port_tls_client(ctx_t *c, const dest_t *d, const ident_t *id) {
        char cmd[2048], out[8192];
        snprintf(cmd, sizeof cmd,
                 "timeout 10 openssl s_client -connect 127.0.0.1:%d -CAfile '%s' -cert '%s' -key '%s' "
                 "-verify_hostname %s -verify_return_error </dev/null 2>&1",
                 d->ep.migrate_port, c->ca_path, id->cert_path, id->key_path, c->dst_host);
        (void)run_shell(cmd, out, sizeof out);
}

/* Whether the run directory holds no TLS files of QEMU's. */
static bool no_tls_files(const char *run_dir) {
        _cleanup_free_ char *p = xasprintf("%s/tls-migrate", run_dir);
        return access(p, F_OK) != 0 && errno == ENOENT;
}

/* TLS only, and only for the RMs named, at destination d, which then still takes the real
 * source (the caller goes on with it). */
static void test_tls(ctx_t *c, dest_t *d) {
        _cleanup_free_ char *log = xasprintf("%s/qemu.log", d->run);
        char out[8192];
        EXPECT(no_tls_files(d->run)); /* QEMU has read them: gone already */

        /* plain TCP: dropped at the migration port, refused by the NBD server */
        EXPECT(plain_client_dropped(d->ep.migrate_port));
        int r = nbd_info(d, NULL, NULL, out, sizeof out);
        printf("plain NBD client: %d: %s", r, out);
        EXPECT(r != 0 && strstr(out, "TLS"));
        /* the source's certificate opens the export (the control), another RM's is denied */
        r = nbd_info(d, c->src_id.creds_dir, c->dst_host, out, sizeof out);
        EXPECT(r == 0 && strstr(out, "virtual size"));
        _cleanup_free_ char *denied = xasprintf("TLS x509 authz check for %s is denied", c->other_subject);
        int before = file_count(log, denied);
        r = nbd_info(d, c->other_id.creds_dir, c->dst_host, out, sizeof out);
        printf("NBD client of rm-other: %d: %s", r, out);
        EXPECT(r != 0);
        EXPECT(file_count_grows(log, denied, before));
        /* ... and at the migration port */
        before = file_count(log, denied);
        migrate_port_tls_client(c, d, &c->other_id);
        EXPECT(file_count_grows(log, denied, before));
        printf("QEMU's log: %s (%d times)\n", denied, file_count(log, denied));

        /* a source with rm-other's certificate, or expecting rm-other: fails, runs on */
        vmm_live_stats_t st;
        vmm_live_tls_t t = c->src_tls;
        t.cert_pem = c->other_id.cert_pem;
        t.key_pem = c->other_id.key_pem;
        r = vmm_live_send(c->src, &d->ep, &t, SEND_TIMEOUT_MS, &st);
        printf("live_send with rm-other's certificate: %d (%s)\n", r, strerror(-r));
        EXPECT(r < 0);
        expect_source_alive(c, "a send with another RM's certificate");
        t = c->src_tls;
        t.peer_hostname = c->other_host;
        r = vmm_live_send(c->src, &d->ep, &t, SEND_TIMEOUT_MS, &st);
        printf("live_send expecting rm-other: %d (%s)\n", r, strerror(-r));
        EXPECT(r < 0);
        expect_source_alive(c, "a send to a destination that is not the one named");
        EXPECT(no_tls_files(c->src_cfg.run_dir));

        /* no TLS: refused before QEMU is asked anything */
        EXPECT(vmm_live_send(c->src, &d->ep, NULL, SEND_TIMEOUT_MS, &st) == -EINVAL);
        t = c->src_tls;
        t.peer_hostname = NULL;
        EXPECT(vmm_live_send(c->src, &d->ep, &t, SEND_TIMEOUT_MS, &st) == -EINVAL);
        vmm_vm_t *none = NULL;
        vmm_live_endpoint_t ep;
        vmm_config_t cfg = d->cfg;
        EXPECT(vmm_live_receive(&vmm_qemu, &cfg, "127.0.0.1", NULL, 0, &ep, &none) == -EINVAL && !none);
        EXPECT(smoke_vm_state(d->vm) == VMM_RUN_INMIGRATE || smoke_vm_state(d->vm) == VMM_RUN_PAUSED);
}

/* The subject in RFC 4514's order (CN first) is not what QEMU compares: a destination allowing
 * "CN=rm-src,OU=migration" denies the real source, and QEMU's log shows the subject as it has it,
 * OU first, as tls_migration_authz_id spells it. */
static void test_subject_order(ctx_t *c) {
        dest_t d = { 0 };
        const char *right = c->dst_tls.peer_subject;
        c->dst_tls.peer_subject = "CN=rm-src,OU=migration";
        int r = dest_start(c, &d);
        c->dst_tls.peer_subject = right;
        REQUIRE(r == 0);
        _cleanup_free_ char *log = xasprintf("%s/qemu.log", d.run);
        _cleanup_free_ char *denied = xasprintf("TLS x509 authz check for %s is denied", c->src_subject);
        vmm_live_stats_t st;
        r = vmm_live_send(c->src, &d.ep, &c->src_tls, SEND_TIMEOUT_MS, &st);
        printf("live_send to a destination allowing CN=rm-src,OU=migration: %d (%s)\n", r, strerror(-r));
        EXPECT(r < 0);
        EXPECT(file_count_grows(log, denied, 0));
        expect_source_alive(c, "a destination that allows the subject in RFC 4514's order");
        dest_clear(&d);
}

/* Boot the source guest and give it state worth migrating. */
static void source_setup(ctx_t *c) {
        static char run_dir[4096], disk[4096];
        snprintf(run_dir, sizeof run_dir, "%s/run-src", c->work);
        snprintf(disk, sizeof disk, "%s/src.qcow2", c->work);
        c->src_cfg = (vmm_config_t){
                .name = "live1",
                .run_dir = run_dir,
                .memory_mib = 256,
                .vcpus = 1,
                .mac = "52:54:00:12:34:57",
                .kernel = c->kernel,
                .initrd = c->initrd,
                .cmdline = c->cmdline,
                .disk = disk,
                .disk_format = "qcow2",
                .fwd_host = "127.0.0.1",
                .fwd_port = free_port(),
                .accel = "tcg",
                .memory_path = shm_file("src"),
        };
        REQUIRE(qcow2_create(disk) == 0);
        int64_t t0 = time_now_ms();
        REQUIRE(vmm_boot(&vmm_qemu, &c->src_cfg, 0, &c->src) == 0);
        smoke_vm_track(c->src);
        _cleanup_free_ char *console = xasprintf("%s/console.log", run_dir);
        while (!smoke_file_contains(console, "vmx-guest: ready") && time_now_ms() - t0 < 180000)
                time_sleep_ms(50);
        REQUIRE(smoke_file_contains(console, "vmx-guest: ready"));
        _cleanup_free_ char *id = NULL, *set = NULL, *ram = NULL;
        int r;
        while ((r = smoke_http_get(c->src_cfg.fwd_port, "/id", &id)) < 0 && time_now_ms() - t0 < 200000)
                time_sleep_ms(50);
        REQUIRE(r == 0);
        printf("RESULT source booted, first HTTP answer after %lld ms\n", (long long)(time_now_ms() - t0));
        c->mark = xasprintf("live-%d", (int)getpid());
        _cleanup_free_ char *mark_path = xasprintf("/mark?value=%s", c->mark);
        REQUIRE(smoke_http("POST", c->src_cfg.fwd_port, mark_path, 10000, &set) == 0);
        REQUIRE(smoke_http("POST", c->src_cfg.fwd_port, "/ram?mb=10", 30000, &ram) == 0);
        free(id);
        id = NULL;
        REQUIRE(smoke_http_get(c->src_cfg.fwd_port, "/id", &id) == 0);
        c->boot_id = smoke_json_str(id, "boot_id");
        _cleanup_free_ char *mark = smoke_json_str(id, "disk_mark");
        REQUIRE(*c->boot_id && streq(mark, c->mark));
        printf("source: %s\n", id);

        /* a save leaves x-ignore-shared on at the source (its RAM is a file) */
        _cleanup_free_ char *state = xasprintf("%s/state-src", c->work);
        REQUIRE(vmm_save(c->src, state, 0) == 0);
        REQUIRE(vmm_cont(c->src, 0) == 0);
        expect_source_alive(c, "save and cont");
}

/* live_send failures: each leaves the source running as before. */
static void test_failures(ctx_t *c) {
        vmm_live_stats_t st;
        int64_t t0;
        int r;

        /* nobody listens there */
        vmm_live_endpoint_t bogus = { .host = "127.0.0.1", .migrate_port = free_port(), .nbd_port = free_port() };
        t0 = time_now_ms();
        r = vmm_live_send(c->src, &bogus, &c->src_tls, SEND_TIMEOUT_MS, &st);
        printf("live_send to a bogus endpoint: %d (%s) after %lld ms\n", r, strerror(-r),
               (long long)(time_now_ms() - t0));
        EXPECT(r == -ECONNREFUSED);
        expect_source_alive(c, "a bogus endpoint");

        /* the destination died before live_send */
        dest_t d = { 0 };
        EXPECT(dest_start(c, &d) == 0);
        EXPECT(smoke_vm_state(d.vm) == VMM_RUN_INMIGRATE || smoke_vm_state(d.vm) == VMM_RUN_PAUSED);
        vmm_live_endpoint_t ep = d.ep;
        smoke_vm_finish(&d.vm);
        t0 = time_now_ms();
        r = vmm_live_send(c->src, &ep, &c->src_tls, SEND_TIMEOUT_MS, &st);
        printf("live_send to a killed destination: %d (%s) after %lld ms\n", r, strerror(-r),
               (long long)(time_now_ms() - t0));
        EXPECT(r < 0);
        expect_source_alive(c, "a killed destination");
        dest_clear(&d);

        /* the disk mirror reaches the destination, the migration does not */
        EXPECT(dest_start(c, &d) == 0);
        ep = d.ep;
        ep.migrate_port = free_port();
        t0 = time_now_ms();
        r = vmm_live_send(c->src, &ep, &c->src_tls, SEND_TIMEOUT_MS, &st);
        printf("live_send with a wrong migration port: %d (%s) after %lld ms\n", r, strerror(-r),
               (long long)(time_now_ms() - t0));
        EXPECT(r < 0);
        expect_source_alive(c, "a failed migration with the mirror running");
        dest_clear(&d);

        /* out of time while RAM is copied (or earlier) */
        EXPECT(dest_start(c, &d) == 0);
        t0 = time_now_ms();
        r = vmm_live_send(c->src, &d.ep, &c->src_tls, 100, &st);
        printf("live_send with a 100 ms timeout: %d (%s) after %lld ms\n", r, strerror(-r),
               (long long)(time_now_ms() - t0));
        EXPECT(r == -ETIMEDOUT);
        expect_source_alive(c, "a timeout");
        dest_clear(&d);
}

/* The TLS refusals at a destination (test_tls), which then takes the real source: live_send
 * succeeds, but the destination is lost before live_finish: cont on the source. A save of the
 * source then works: the TLS parameters of its migrations are off again. */
static void test_rollback(ctx_t *c) {
        dest_t d = { 0 };
        vmm_live_stats_t st;
        REQUIRE(dest_start(c, &d) == 0);
        test_tls(c, &d);
        int r = vmm_live_send(c->src, &d.ep, &c->src_tls, SEND_TIMEOUT_MS, &st);
        EXPECT(r == 0);
        EXPECT(smoke_vm_state(c->src) == VMM_RUN_PAUSED);
        dest_clear(&d);
        EXPECT(vmm_cont(c->src, 0) == 0);
        expect_source_alive(c, "a rollback (destination killed before live_finish)");
        _cleanup_free_ char *state = xasprintf("%s/state-src-2", c->work);
        EXPECT(vmm_save(c->src, state, 0) == 0);
        EXPECT(vmm_cont(c->src, 0) == 0);
        expect_source_alive(c, "a save after live migrations");
        unlink(state);
}

/* A client of the guest: GET /health every ~5 ms on one port until stop, answer times into
 * one shared array. */
typedef struct probes {
        pthread_mutex_t lock;
        int64_t *times;
        size_t n, cap;
        atomic_bool stop;
} probes_t;

typedef struct probe {
        probes_t *all;
        int port;
        int answers;
        int64_t first; /* when the first answer came */
} probe_t;

static void *probe_run(void *arg) {
        probe_t *p = arg;
        while (!atomic_load(&p->all->stop)) {
                if (smoke_http("GET", p->port, "/health", PROBE_TIMEOUT_MS, NULL) == 0) {
                        pthread_mutex_lock(&p->all->lock);
                        if (p->all->n < p->all->cap)
                                p->all->times[p->all->n++] = time_now_ms();
                        pthread_mutex_unlock(&p->all->lock);
                        if (!p->answers++)
                                p->first = time_now_ms();
                }
                time_sleep_ms(5);
        }
        return NULL;
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

/* Longest gap between two answers that ends after t0; *ret_at: where it began, from t0. */
static int64_t longest_gap(probes_t *all, int64_t t0, int64_t *ret_at) {
        int64_t gap = 0;
        qsort(all->times, all->n, sizeof *all->times, cmp_i64);
        for (size_t i = 1; i < all->n; i++)
                if (all->times[i] >= t0 && all->times[i] - all->times[i - 1] > gap) {
                        gap = all->times[i] - all->times[i - 1];
                        *ret_at = all->times[i - 1] - t0;
                }
        return gap;
}

/* The migration that works, with clients watching: one probes the source throughout, the
 * other the destination from when live_finish returned (when the node would switch its
 * traffic over; a connection the destination accepted before it ran is lost with the state
 * the migration replaces). */
static void test_success(ctx_t *c) {
        dest_t d = { 0 };
        REQUIRE(dest_start(c, &d) == 0);
        _cleanup_free_ char *before = NULL;
        REQUIRE(smoke_http_get(c->src_cfg.fwd_port, "/id", &before) == 0);

        probes_t all = { .lock = PTHREAD_MUTEX_INITIALIZER, .cap = 100000 };
        _cleanup_free_ int64_t *times = all.times = xcalloc(all.cap, sizeof *all.times);
        probe_t ps = { .all = &all, .port = c->src_cfg.fwd_port }, pd = { .all = &all, .port = d.cfg.fwd_port };
        pthread_t ts, td;
        REQUIRE(pthread_create(&ts, NULL, probe_run, &ps) == 0);
        time_sleep_ms(500);

        int64_t t0 = time_now_ms();
        vmm_live_stats_t st = { 0 };
        int r = vmm_live_send(c->src, &d.ep, &c->src_tls, SEND_TIMEOUT_MS, &st);
        int64_t t_sent = time_now_ms();
        int rf = r == 0 ? vmm_live_finish(d.vm, 30000) : -1;
        int64_t t_running = time_now_ms();
        bool dst_probe = pthread_create(&td, NULL, probe_run, &pd) == 0;
        while (pd.answers < 20 && time_now_ms() - t_running < 10000)
                time_sleep_ms(20);
        atomic_store(&all.stop, true);
        pthread_join(ts, NULL);
        if (dst_probe)
                pthread_join(td, NULL);
        EXPECT(r == 0);
        EXPECT(rf == 0);
        EXPECT(pd.answers > 0);

        int64_t gap_at = 0, gap = longest_gap(&all, t0, &gap_at);
        printf("RESULT live migration: live_send %lld ms, live_finish %lld ms | driver: total %llu ms, downtime "
               "%llu ms, RAM %.1f MiB, disk %.2f MiB\n",
               (long long)(t_sent - t0), (long long)(t_running - t_sent), (unsigned long long)st.total_ms,
               (unsigned long long)st.downtime_ms, st.ram_bytes / 1048576.0, st.disk_bytes / 1048576.0);
        printf("RESULT downtime seen by clients (longest gap between GET /health answers): %lld ms, from %lld ms "
               "after live_send began; the destination's first answer %lld ms after live_finish returned (%d "
               "answers from the source, %d from the destination)\n",
               (long long)gap, (long long)gap_at, pd.answers ? (long long)(pd.first - t_running) : -1LL, ps.answers,
               pd.answers);

        _cleanup_free_ char *after = NULL;
        EXPECT(smoke_http_get(d.cfg.fwd_port, "/id", &after) == 0);
        printf("destination after live_finish: %s\n", after ? after : "(no answer)");
        _cleanup_free_ char *boot = smoke_json_str(after, "boot_id"), *mark = smoke_json_str(after, "disk_mark");
        EXPECT(streq(boot, c->boot_id)); /* the same boot, not a reboot */
        /* the hit counter in RAM went on */
        EXPECT(smoke_json_num(after, "hits") > smoke_json_num(before, "hits"));
        EXPECT(streq(mark, c->mark)); /* the disk came along */
        EXPECT(smoke_vm_state(d.vm) == VMM_RUN_RUNNING);
        EXPECT(smoke_vm_state(c->src) == VMM_RUN_PAUSED); /* paused for good */
        /* the destination runs on its own: its disk takes writes, the guest keeps serving */
        _cleanup_free_ char *set = NULL, *again = NULL;
        EXPECT(smoke_http("POST", d.cfg.fwd_port, "/mark?value=after-live", 10000, &set) == 0);
        EXPECT(smoke_http_get(d.cfg.fwd_port, "/id", &again) == 0);
        _cleanup_free_ char *mark2 = smoke_json_str(again, "disk_mark");
        EXPECT(streq(mark2, "after-live"));
        EXPECT(no_tls_files(d.run) && no_tls_files(c->src_cfg.run_dir));
        /* its migration parameters are plain again: a save (a migration to a file) works */
        _cleanup_free_ char *state = xasprintf("%s/state-dst", c->work);
        EXPECT(vmm_save(d.vm, state, 0) == 0);
        unlink(state);
        dest_clear(&d);
}

int main(int argc, char **argv) {
        if (argc != 5) {
                fprintf(stderr, "usage: %s WORKDIR KERNEL INITRD CMDLINE\n", argv[0]);
                return 2;
        }
        smoke_init("live-smoke", shm_files_remove);
        signal(SIGPIPE, SIG_IGN);
        ctx_t c = { .work = argv[1], .kernel = argv[2], .initrd = argv[3] };
        c.cmdline = xasprintf("%s quiet vmx.name=live1", argv[4]);
        int fds = smoke_fd_count();
        tls_setup(&c);
        if (!smoke_failed)
                source_setup(&c);
        if (!smoke_failed) {
                test_failures(&c);
                test_subject_order(&c);
                test_rollback(&c);
                test_success(&c);
        }
        smoke_kill_all();
        EXPECT(smoke_fd_count() == fds); /* no monitor socket, pidfd or log left open */
        free(c.cmdline);
        free(c.boot_id);
        free(c.mark);
        ident_clear(&c.src_id);
        ident_clear(&c.dst_id);
        ident_clear(&c.other_id);
        free(c.ca_pem);
        free(c.ca_path);
        free(c.src_subject);
        free(c.dst_host);
        free(c.other_subject);
        free(c.other_host);
        printf("qemu-live-smoke: %d passed, %d failed\n", smoke_passed, smoke_failed);
        return smoke_failed ? 1 : 0;
}
