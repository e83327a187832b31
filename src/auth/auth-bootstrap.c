/* The first start's admin (auth_bootstrap_admin in auth.h): the one place a token is written
 * to a file, so `cluster up` and `make demo` work without a step of their own. */
#include "auth/auth.h"
#include "auth/auth-internal.h"

#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "store/store-auth.h"

/* Writes text to path as 0600 without ever replacing a file there: a temporary file, fsync,
 * then link(), which fails with -EEXIST on an existing name. */
static int file_create_private(const char *path, const char *text) {
        _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
        unlink(tmp);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        /* fchmod: the mode of open() is cut by the umask, never widened, but say it exactly */
        int r = fchmod(fd, 0600) < 0 ? negative_errno() : fd_write_all(fd, text, strlen(text));
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && link(tmp, path) < 0)
                r = negative_errno();
        unlink(tmp);
        if (r < 0)
                return r;
        r = fsync_dir_of(path);
        if (r < 0)
                unlink(path); /* ours: the caller rolls the admin back, so the file must go too */
        return r;
}

/* Users, the admin token and its file in one transaction: a failure anywhere leaves no admin
 * behind, so the next start tries again from the beginning. */
int auth_bootstrap_admin(auth_t *a, const char *data_dir, int64_t now_ms, char **ret_msg) {
        store_t *s = auth_store(a);
        _cleanup_free_ char *path = xasprintf("%s/" AUTH_ADMIN_TOKEN_FILE, data_dir);
        int r = store_tx_begin(s);
        if (r < 0) {
                *ret_msg = xasprintf("cannot read the users: %s", strerror(-r));
                return r;
        }
        size_t n = 0;
        r = store_user_count(s, &n);
        if (r >= 0 && n > 0) {
                store_tx_rollback(s);
                if (!file_exists(path))
                        log_warn("auth: %s is missing and users exist: not made again (make a token with "
                                 "`vmatrix token create`)", path);
                return 0;
        }
        if (r >= 0 && file_exists(path)) {
                store_tx_rollback(s);
                *ret_msg = xasprintf("%s exists but there are no users: it is another store's; remove it", path);
                return -EEXIST;
        }
        char password[33];
        auth_random_password(password);
        char *text = NULL;
        char id[TOKEN_ID_LEN + 1];
        if (r >= 0)
                r = auth_user_create(a, AUTH_ADMIN_USER, role_name(ROLE_ADMIN), password, now_ms, ret_msg);
        sodium_memzero(password, sizeof password);
        if (r >= 0)
                r = auth_token_create(a, AUTH_ADMIN_USER, "admin.token", NULL, 0, now_ms, &text, id, ret_msg);
        if (r >= 0) {
                _cleanup_free_ char *line = xasprintf("%s\n", text);
                r = file_create_private(path, line);
                sodium_memzero(line, strlen(line));
                if (r < 0)
                        *ret_msg = xasprintf("cannot write %s: %s", path, strerror(-r));
        }
        if (text) {
                sodium_memzero(text, strlen(text));
                free(text);
        }
        if (r < 0) {
                store_tx_rollback(s);
                return r;
        }
        r = store_tx_commit(s);
        if (r < 0) {
                unlink(path);
                *ret_msg = xasprintf("cannot store the admin user: %s", strerror(-r));
                return r;
        }
        return 1;
}
