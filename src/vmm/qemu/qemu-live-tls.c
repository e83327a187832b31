/* The TLS of a live migration (qemu-live.c; docs/tls.md "Migration streams"): QEMU's own, for
 * both streams. The destination's migration listener and NBD server take tls-creds (endpoint
 * server, verify-peer on: a client shows a certificate of the CA or is dropped) and tls-authz (an
 * authz-simple object allowing exactly the source's subject); the source's migration and NBD
 * client take tls-creds (endpoint client: the server's certificate is checked against the CA)
 * and tls-hostname (the destination's name). With tls-creds set QEMU refuses a peer that does
 * not speak TLS: the NBD server answers every option but STARTTLS with an error, the migration
 * listener drops the connection when its handshake fails.
 *
 * The credentials reach QEMU as files, since tls-creds-x509 reads nothing else: RUN/tls-migrate/
 * (0700) with QEMU's names, ca-cert.pem and the side's {server,client}-{cert,key}.pem (0600),
 * owned by whoever owns the run directory: a confined QEMU's own uid (qemu-confine.c gives it
 * its run directory, the only place its mount namespace shows), or ours. QEMU reads them once,
 * at object-add, and keeps them in memory; the directory is removed right after that, so the key
 * is on disk only for that moment and in QEMU's memory until object-del after the migration.
 * A confined QEMU may write in its run directory, so nothing here follows a link there: the
 * directory is made with mkdirat and used through its descriptor, files are created O_EXCL |
 * O_NOFOLLOW and given away with fchown, and a stale entry is removed without following it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/qemu/qemu-internal.h"

bool qemu_live_tls_valid(const vmm_live_tls_t *tls, bool server) {
        const char *peer = tls ? (server ? tls->peer_subject : tls->peer_hostname) : NULL;
        return tls && tls->ca_pem && *tls->ca_pem && tls->cert_pem && *tls->cert_pem && tls->key_pem &&
               *tls->key_pem && peer && *peer && strlen(peer) < sizeof ((qmp_migrate_tls_t *)0)->hostname;
}

/* Removes RUN/tls-migrate and what is in it (files only), whatever left it there: never
 * through a link, a link itself is removed. 0 when it is gone. */
static int creds_dir_remove(int run_fd) {
        int d = openat(run_fd, QEMU_LIVE_TLS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d >= 0) {
                DIR *dir = fdopendir(d);
                if (!dir) {
                        close(d);
                        return negative_errno();
                }
                struct dirent *e;
                while ((e = readdir(dir)))
                        if (!streq(e->d_name, ".") && !streq(e->d_name, ".."))
                                (void)unlinkat(dirfd(dir), e->d_name, 0);
                closedir(dir);
        }
        if (unlinkat(run_fd, QEMU_LIVE_TLS_DIR, AT_REMOVEDIR) == 0 || errno == ENOENT)
                return 0;
        if (errno == ENOTDIR && unlinkat(run_fd, QEMU_LIVE_TLS_DIR, 0) == 0)
                return 0;
        return negative_errno();
}

/* dir_fd/name holding text, mode 0600, for uid:gid. */
static int creds_file_write(int dir_fd, const char *name, const char *text, uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        int r = fd_write_all(fd, text, strlen(text));
        if (r >= 0 && fchown(fd, uid, gid) < 0)
                r = negative_errno();
        return r;
}

/* RUN/tls-migrate with the files of tls for one side, for the run directory's owner. */
static int creds_dir_write(int run_fd, const vmm_live_tls_t *tls, bool server, qmp_error_t *err) {
        struct stat run_st;
        if (fstat(run_fd, &run_st) < 0)
                return negative_errno();
        int r = creds_dir_remove(run_fd);
        if (r < 0) {
                qmp_error_set(err, "", "cannot remove a stale %s: %s", QEMU_LIVE_TLS_DIR, strerror(-r));
                return r;
        }
        if (mkdirat(run_fd, QEMU_LIVE_TLS_DIR, 0700) < 0) {
                r = negative_errno();
                qmp_error_set(err, "", "cannot create %s: %s", QEMU_LIVE_TLS_DIR, strerror(-r));
                return r;
        }
        _cleanup_close_ int d = openat(run_fd, QEMU_LIVE_TLS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        /* ours, just made: not something put in its place in between */
        if (d < 0 || fstat(d, &st) < 0 || st.st_uid != geteuid()) {
                r = d < 0 ? negative_errno() : -EPERM;
                qmp_error_set(err, "", "%s is not the directory just made", QEMU_LIVE_TLS_DIR);
                return r;
        }
        const char *side = server ? "server" : "client";
        _cleanup_free_ char *cert = xasprintf("%s-cert.pem", side), *key = xasprintf("%s-key.pem", side);
        r = creds_file_write(d, "ca-cert.pem", tls->ca_pem, run_st.st_uid, run_st.st_gid);
        if (r >= 0)
                r = creds_file_write(d, cert, tls->cert_pem, run_st.st_uid, run_st.st_gid);
        if (r >= 0)
                r = creds_file_write(d, key, tls->key_pem, run_st.st_uid, run_st.st_gid);
        if (r >= 0 && fchown(d, run_st.st_uid, run_st.st_gid) < 0)
                r = negative_errno();
        if (r < 0)
                qmp_error_set(err, "", "cannot write QEMU's TLS files in %s: %s", QEMU_LIVE_TLS_DIR, strerror(-r));
        return r;
}

/* The creds object from files that exist only while QEMU reads them. */
static int creds_add(qemu_vm_t *vm, const vmm_live_tls_t *tls, bool server, int timeout_ms, qmp_error_t *err) {
        _cleanup_close_ int run_fd = open(vm->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (run_fd < 0) {
                int r = negative_errno();
                qmp_error_set(err, "", "cannot open the run directory %s: %s", vm->run_dir, strerror(-r));
                return r;
        }
        /* a source migrated before may still hold one (its teardown failed) */
        if (!server)
                (void)qmp_cmd_object_del(vm->qmp, QEMU_LIVE_TLS_CREDS, timeout_ms, NULL);
        int r = creds_dir_write(run_fd, tls, server, err);
        if (r >= 0) {
                _cleanup_free_ char *dir = xasprintf("%s/" QEMU_LIVE_TLS_DIR, vm->run_dir);
                r = qmp_cmd_object_add_tls_creds(vm->qmp, QEMU_LIVE_TLS_CREDS, server, dir, timeout_ms, err);
        }
        int rm = creds_dir_remove(run_fd);
        if (rm < 0 && r >= 0) {
                qmp_error_set(err, "", "cannot remove %s/%s: %s", vm->run_dir, QEMU_LIVE_TLS_DIR, strerror(-rm));
                r = rm;
        }
        return r;
}

int qemu_live_tls_setup(qemu_vm_t *vm, const vmm_live_tls_t *tls, bool server, int timeout_ms, qmp_error_t *err) {
        if (!qemu_live_tls_valid(tls, server))
                return -EINVAL;
        int r = creds_add(vm, tls, server, timeout_ms, err);
        if (r >= 0 && server)
                r = qmp_cmd_object_add_authz_simple(vm->qmp, QEMU_LIVE_TLS_AUTHZ, tls->peer_subject, timeout_ms, err);
        qmp_migrate_tls_t want = { .creds = QEMU_LIVE_TLS_CREDS }, got;
        if (server)
                SET(want.authz, QEMU_LIVE_TLS_AUTHZ);
        else
                SET(want.hostname, tls->peer_hostname);
        if (r >= 0)
                r = qmp_cmd_migrate_set_tls(vm->qmp, &want, timeout_ms, err);
        if (r >= 0)
                r = qmp_cmd_query_migrate_tls(vm->qmp, timeout_ms, err, &got);
        if (r >= 0 && (!streq(got.creds, want.creds) || !streq(got.authz, want.authz) ||
                       !streq(got.hostname, want.hostname))) {
                qmp_error_set(err, "", "QEMU did not take the migration's TLS parameters (tls-creds \"%s\")", got.creds);
                r = -EIO;
        }
        if (r < 0)
                return r;
        if (server)
                log_info("vm %s: incoming migration over TLS only: tls-creds %s, tls-authz %s (%s)", vm->name, got.creds,
                         got.authz, tls->peer_subject);
        else
                log_info("vm %s: outgoing migration over TLS: tls-creds %s, tls-hostname %s", vm->name, got.creds,
                         got.hostname);
        return 0;
}

void qemu_live_tls_teardown(qemu_vm_t *vm, bool server, int timeout_ms) {
        qmp_error_t err = { 0 };
        qmp_migrate_tls_t plain = { 0 };
        int r = qmp_cmd_migrate_set_tls(vm->qmp, &plain, timeout_ms, &err);
        if (r < 0)
                log_warn("vm %s: cannot turn the migration's TLS parameters off (a later save may fail): %s", vm->name,
                         *err.desc ? err.desc : strerror(-r));
        const char *const ids[] = { QEMU_LIVE_TLS_AUTHZ, QEMU_LIVE_TLS_CREDS };
        for (size_t i = server ? 0 : 1; i < ELEMENTSOF(ids); i++) {
                err = (qmp_error_t){ 0 };
                r = qmp_cmd_object_del(vm->qmp, ids[i], timeout_ms, &err);
                if (r < 0)
                        log_warn("vm %s: cannot delete the migration's TLS object %s: %s", vm->name, ids[i],
                                 *err.desc ? err.desc : strerror(-r));
        }
}
