/* Load or create the server key (auth-key.h). */
#include "auth/auth-key.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

static int key_read(const char *path, uint8_t ret_key[AUTH_KEY_BYTES], char **ret_msg) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        struct stat sb;
        if (fstat(fd, &sb) < 0)
                return negative_errno();
        if (sb.st_mode & 077) {
                *ret_msg = xasprintf("%s may be read by others (mode %04o); it must be 0600", path,
                                     (unsigned)(sb.st_mode & 07777));
                return -EPERM;
        }
        if (sb.st_size != AUTH_KEY_BYTES) {
                *ret_msg = xasprintf("%s has %lld bytes, a key has %d", path, (long long)sb.st_size, AUTH_KEY_BYTES);
                return -EINVAL;
        }
        uint8_t key[AUTH_KEY_BYTES];
        ssize_t n = read(fd, key, sizeof key);
        if (n != (ssize_t)sizeof key) {
                sodium_memzero(key, sizeof key);
                *ret_msg = xasprintf("%s: short read", path);
                return n < 0 ? negative_errno() : -EIO;
        }
        memcpy(ret_key, key, sizeof key);
        sodium_memzero(key, sizeof key);
        return 0;
}

/* Writes a new key to a temporary file and links it into place: link() fails on an existing
 * name, so two processes starting at once cannot end with different keys, and a crash leaves
 * either no key or a whole one. */
static int key_create(const char *path, uint8_t ret_key[AUTH_KEY_BYTES]) {
        _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
        unlink(tmp);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        uint8_t key[AUTH_KEY_BYTES];
        randombytes_buf(key, sizeof key);
        int r = fchmod(fd, 0600) < 0 ? negative_errno() : fd_write_all(fd, key, sizeof key);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && link(tmp, path) < 0)
                r = negative_errno();
        unlink(tmp);
        if (r >= 0)
                r = fsync_dir_of(path);
        if (r >= 0)
                memcpy(ret_key, key, sizeof key);
        sodium_memzero(key, sizeof key);
        return r;
}

int auth_key_load_or_create(const char *data_dir, uint8_t ret_key[AUTH_KEY_BYTES], char **ret_msg) {
        if (sodium_init() < 0) {
                *ret_msg = xstrdup("libsodium cannot be initialised");
                return -EIO;
        }
        _cleanup_free_ char *path = xasprintf("%s/" AUTH_KEY_FILE, data_dir);
        char *msg = NULL;
        int r = key_read(path, ret_key, &msg);
        if (r == -ENOENT) {
                r = key_create(path, ret_key);
                if (r >= 0)
                        return 1;
                /* another process made it between our read and link: use theirs */
                if (r == -EEXIST)
                        r = key_read(path, ret_key, &msg);
        }
        if (r < 0) {
                *ret_msg = msg ? msg : xasprintf("cannot read or create %s: %s", path, strerror(-r));
                return r;
        }
        return 0;
}
