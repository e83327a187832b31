/* Implementation of util.h. */
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "fault.h"
#include "log.h"

char *xasprintf(const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                abort();
        return s;
}

char *xstrdup(const char *s) {
        char *d = strdup(s ? s : "");
        if (!d)
                abort();
        return d;
}

void *xcalloc(size_t n, size_t size) {
        void *p = calloc(n ? n : 1, size ? size : 1);
        if (!p)
                abort();
        return p;
}

void set_str(char *dst, size_t size, const char *s) {
        if (size == 0)
                return;
        size_t n = s ? strnlen(s, size - 1) : 0;
        memcpy(dst, s ? s : "", n);
        dst[n] = 0;
}

uint32_t str_fnv1a32(const char *s) {
        uint32_t h = 2166136261u;
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 16777619u;
        }
        return h;
}

bool str_startswith(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

bool str_endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF: what jansson accepts), 0 when there is none. */
static size_t utf8_sequence_len(const unsigned char *p) {
        size_t n = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
        uint32_t cp = n == 2 ? p[0] & 0x1fu : n == 3 ? p[0] & 0x0fu : p[0] & 0x07u;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
                        return 0;
                cp = cp << 6 | (p[i] & 0x3fu);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        return n;
}

void utf8_sanitize(char *s) {
        unsigned char *p = (unsigned char *)s;
        while (*p) {
                size_t n = utf8_sequence_len(p);
                if (n == 0) {
                        *p++ = '?';
                        continue;
                }
                p += n;
        }
}

bool name_is_valid(const char *name) {
        if (!name || !*name || strlen(name) > 63 || *name == '-')
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

char *format_bytes(uint64_t bytes, char *buf, size_t size) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        double v = (double)bytes;
        unsigned u = 0;
        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%llu B", (unsigned long long)bytes);
        else
                snprintf(buf, size, "%.1f %s", v, units[u]);
        return buf;
}

int parse_size(const char *s, uint64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        size_t len = strlen(s);
        int shift = 0;
        switch (s[len - 1]) {
        case 'K': case 'k': shift = 10; break;
        case 'M': case 'm': shift = 20; break;
        case 'G': case 'g': shift = 30; break;
        case 'T': case 't': shift = 40; break;
        default: break;
        }
        _cleanup_free_ char *digits = strndup(s, shift ? len - 1 : len);
        int64_t v = 0;
        int r = digits ? parse_int64(digits, 0, INT64_MAX, &v) : -ENOMEM;
        if (r < 0)
                return r;
        if (v > (INT64_C(1) << 62) >> shift)
                return -ERANGE;
        *ret = (uint64_t)v << shift;
        return 0;
}

int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        char *end = NULL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end || end == s)
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_duration_s(const char *s, int64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        size_t n = strnlen(s, 32);
        if (n >= 32)
                return -EINVAL;
        char digits[32];
        memcpy(digits, s, n + 1);
        int64_t unit = 1;
        switch (digits[n - 1]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: return -EINVAL;
        }
        digits[n - 1] = 0;
        if (!*digits || digits[0] == '-' || digits[0] == '+')
                return -EINVAL;
        int64_t v = 0;
        int r = parse_int64(digits, 0, INT64_MAX / 86400, &v);
        if (r < 0)
                return r;
        *ret = v * unit;
        return 0;
}

int64_t time_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double time_wall_s(void) { return (double)time_wall_ms() / 1000.0; }

void time_sleep_ms(int64_t ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

void *array_append(void *array, size_t *n, size_t size) {
        void **a = array;
        char *grown = realloc(*a, (*n + 1) * size);
        if (!grown)
                abort();
        memset(grown + *n * size, 0, size);
        *a = grown;
        return grown + (*n)++ * size;
}

struct timespec time_realtime_after_ms(int64_t ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
        }
        return ts;
}

int file_open_safe(const char *path, int flags, mode_t mode) {
        int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, mode);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        int r = fstat(fd, &st) < 0 ? negative_errno() : S_ISREG(st.st_mode) ? 0 : -EINVAL;
        if (r < 0) {
                close(fd);
                return r;
        }
        /* back to blocking I/O on the regular file it is */
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
                (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        return fd;
}

/* Reads fd from where it is to its end, or max bytes, into a NUL-terminated malloc'd buffer
 * (hint: the size to start with). */
static int fd_read_rest(int fd, size_t hint, size_t max, char **ret, size_t *ret_len) {
        size_t cap = MIN(hint > 0 ? hint + 1 : 4096, max + 1), len = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        while (len < max) {
                if (len + 1 >= cap) {
                        size_t ncap = MIN(cap * 2, max + 1);
                        char *n = realloc(buf, ncap);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        cap = ncap;
                }
                ssize_t r = read(fd, buf + len, MIN(cap - len - 1, max - len));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r == 0)
                        break;
                len += (size_t)r;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int file_read_tail_safe(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = file_open_safe(path, O_RDONLY, 0);
        if (fd < 0)
                return fd;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_size > (off_t)max && lseek(fd, st.st_size - (off_t)max, SEEK_SET) < 0)
                return negative_errno();
        return fd_read_rest(fd, max, max, ret, ret_len);
}

int socket_peer_pid(int fd, pid_t *ret) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return negative_errno();
        *ret = cred.pid;
        return 0;
}

int file_read(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        return fd_read_rest(fd, st.st_size > 0 ? (size_t)st.st_size : 0, SIZE_MAX - 1, ret, ret_len);
}

int fsync_dir_of(const char *path) {
        _cleanup_free_ char *dir = xstrdup(path);
        char *slash = strrchr(dir, '/');
        if (slash == dir)
                slash[1] = 0;
        else if (slash)
                *slash = 0;
        else
                strcpy(dir, ".");
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fsync(fd) < 0)
                return negative_errno();
        return 0;
}

int fd_write_all(int fd, const void *data, size_t len) {
        const char *p = data;
        while (len > 0) {
                ssize_t w = write(fd, p, len);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += w;
                len -= (size_t)w;
        }
        return 0;
}

int fd_pwrite_all(int fd, const void *data, size_t len, uint64_t off) {
        for (size_t done = 0; done < len;) {
                ssize_t n = pwrite(fd, (const char *)data + done, len - done, (off_t)(off + done));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                done += (size_t)n;
        }
        return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len) {
        if (fault_hit("file-write"))
                return -EIO;
        return file_write_atomic_mode(path, data, len, 0644);
}

int file_write_atomic_mode(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
        unlink(tmp); /* a leftover of a killed writer of the same pid */
        /* created with mode and no wider for a moment: a secret is never readable by others */
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        int r = fchmod(fd, mode) < 0 ? negative_errno() : fd_write_all(fd, data, len);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        return fsync_dir_of(path);
}


int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = xstrdup(path);
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

int rm_rf(const char *path) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISDIR(st.st_mode))
                return unlink(path) < 0 ? negative_errno() : 0;
        DIR *d = opendir(path);
        if (!d)
                return negative_errno();
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *child = xasprintf("%s/%s", path, de->d_name);
                int k = rm_rf(child);
                if (k < 0 && r == 0)
                        r = k;
        }
        closedir(d);
        if (rmdir(path) < 0 && r == 0)
                r = negative_errno();
        return r;
}

bool file_exists(const char *path) { return access(path, F_OK) == 0; }

int64_t file_size(const char *path) {
        struct stat st;
        if (stat(path, &st) < 0)
                return negative_errno();
        return st.st_size;
}

int file_sha256(const char *path, char ret_hex[65]) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        char buf[1 << 16];
        int r = 0;
        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = negative_errno();
                        break;
                }
                if (n == 0)
                        break;
                EVP_DigestUpdate(ctx, buf, (size_t)n);
        }
        unsigned char md[32];
        unsigned int mdlen = 0;
        EVP_DigestFinal_ex(ctx, md, &mdlen);
        EVP_MD_CTX_free(ctx);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < 32; i++)
                sprintf(ret_hex + 2 * i, "%02x", md[i]);
        ret_hex[64] = 0;
        return 0;
}

char *exe_path(void) {
        char buf[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        if (n < 0)
                return NULL;
        buf[n] = 0;
        return xstrdup(buf);
}

char *exe_dir(void) {
        char *p = exe_path();
        if (!p)
                return NULL;
        char *slash = strrchr(p, '/');
        if (slash)
                *slash = 0;
        return p;
}

void crash_point(const char *name) {
        const char *at = getenv("VMATRIX_CRASH_AT");
        if (!at || !streq(at, name))
                return;
        log_warn("crash point %s reached: killing myself", name);
        kill(getpid(), SIGKILL);
}

void stall_point(const char *name) {
        const char *at = getenv("VMATRIX_STALL_AT");
        if (!at || !streq(at, name))
                return;
        log_warn("stall point %s reached: hanging", name);
        time_sleep_ms(3600 * 1000);
}
