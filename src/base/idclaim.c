/* Implementation of idclaim.h. A claim file is text:
 *     key KEY
 *     owner PID START
 *     dir PATH          (zero or more)
 * written under a temporary name and renamed (readers hold the lock anyway; the rename keeps a
 * crash from leaving half a claim). Not synced: a claim that a crash lost or tore is judged by
 * its id being in use like any other. */
#include "base/idclaim.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "base/cgroup.h"
#include "base/util.h"

#define IDCLAIM_LOCK ".lock"
#define IDCLAIM_KEY_MAX 4096

void idclaim_clear(idclaim_t *c) {
        free(c->key);
        strv_free(c->dirs);
        *c = (idclaim_t){ 0 };
}

void idclaim_list_free(idclaim_t *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                idclaim_clear(&v[i]);
        free(v);
}

static bool text_ok(const char *s) {
        if (!s || !*s || strlen(s) > IDCLAIM_KEY_MAX)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

/* Field 22 of /proc/PID/stat (start time in clock ticks since boot), 0 when pid is gone. */
static uint64_t proc_start(pid_t pid) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        _cleanup_free_ char *s = NULL;
        if (pid <= 0 || file_read(path, &s, NULL) < 0)
                return 0;
        char *p = strrchr(s, ')');
        unsigned long long start = 0;
        /* after "(comm)": state is field 3, starttime field 22 */
        if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                         &start) != 1)
                return 0;
        return start;
}

static bool owner_alive(const idclaim_t *c) { return c->owner > 0 && proc_start(c->owner) == c->owner_start; }

/* The ids of s that some process runs with: a bitmap of s->count bits (malloc'd). */
static uint8_t *ids_in_use(const idclaim_space_t *s) {
        uint8_t *bits = xcalloc(s->count / 8 + 1, 1);
        DIR *d = opendir("/proc");
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                struct stat st;
                /* /proc/PID belongs to the process's effective uid (while it is dumpable) */
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0)
                        continue;
                uint64_t u = st.st_uid;
                if (u >= s->first && u - s->first < s->count)
                        bits[(u - s->first) / 8] |= (uint8_t)(1u << ((u - s->first) % 8));
        }
        if (d)
                closedir(d);
        return bits;
}

static bool bit_get(const uint8_t *bits, uint32_t i) { return bits[i / 8] & (1u << (i % 8)); }

bool idclaim_uid_in_use(uid_t uid) {
        idclaim_space_t s = { .first = uid, .count = 1 };
        _cleanup_free_ uint8_t *bits = ids_in_use(&s);
        return bit_get(bits, 0);
}

/* Parses a claim file's text; -EBADMSG when it is not one. */
static int claim_parse(const char *text, uint32_t id, idclaim_t *ret) {
        idclaim_t c = { .id = id };
        size_t n_dirs = 0;
        for (const char *line = text; *line;) {
                size_t len = strcspn(line, "\n");
                _cleanup_free_ char *l = strndup(line, len);
                if (!l)
                        abort();
                if (str_startswith(l, "key ") && !c.key)
                        c.key = xstrdup(l + 4);
                else if (str_startswith(l, "owner ")) {
                        long long pid = 0;
                        unsigned long long start = 0;
                        if (sscanf(l + 6, "%lld %llu", &pid, &start) == 2 && pid > 0 && pid < INT32_MAX) {
                                c.owner = (pid_t)pid;
                                c.owner_start = start;
                        }
                } else if (str_startswith(l, "dir /")) {
                        char **v = realloc(c.dirs, (n_dirs + 2) * sizeof *v);
                        if (!v)
                                abort();
                        c.dirs = v;
                        c.dirs[n_dirs++] = xstrdup(l + 4);
                        c.dirs[n_dirs] = NULL;
                }
                line += len;
                line += *line == '\n';
        }
        if (!c.key) {
                idclaim_clear(&c);
                return -EBADMSG;
        }
        *ret = c;
        return 0;
}

static char *claim_path(const idclaim_space_t *s, uint32_t id) { return xasprintf("%s/%" PRIu32, s->dir, id); }

static int claim_write(const idclaim_space_t *s, uint32_t id, const char *key, char *const *dirs) {
        _cleanup_free_ char *path = claim_path(s, id);
        _cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
        size_t cap = strlen(key) + 64, len = 0;
        for (char *const *d = dirs; d && *d; d++)
                cap += strlen(*d) + 8;
        _cleanup_free_ char *text = xcalloc(cap, 1);
        len += (size_t)snprintf(text + len, cap - len, "key %s\nowner %d %" PRIu64 "\n", key, (int)getpid(),
                                proc_start(getpid()));
        for (char *const *d = dirs; d && *d; d++)
                len += (size_t)snprintf(text + len, cap - len, "dir %s\n", *d);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        int r = fd_write_all(fd, text, len);
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0)
                unlink(tmp);
        return r;
}

/* The lock of s->dir, created with the directory; closing the fd releases it. */
static int lock_take(const idclaim_space_t *s) {
        if (!s->dir || !*s->dir || s->count == 0)
                return -EINVAL;
        int r = mkdir_p(s->dir, 0700);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = xasprintf("%s/" IDCLAIM_LOCK, s->dir);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR) {
                        r = negative_errno();
                        close(fd);
                        return r;
                }
        return fd;
}

static int claims_read(const idclaim_space_t *s, idclaim_t **ret, size_t *ret_n);

/* Every claim of a space, read under its lock, which is held until claims_done. */
typedef struct claims {
        int lock;
        idclaim_t *v;
        size_t n;
} claims_t;

static void claims_done(claims_t *c) {
        idclaim_list_free(c->v, c->n);
        if (c->lock >= 0)
                close(c->lock);
}

static int claims_open(const idclaim_space_t *s, claims_t *ret) {
        *ret = (claims_t){ .lock = lock_take(s) };
        if (ret->lock < 0)
                return ret->lock;
        return claims_read(s, &ret->v, &ret->n);
}

static int claim_cmp(const void *a, const void *b) {
        const idclaim_t *x = a, *y = b;
        return x->id < y->id ? -1 : x->id > y->id;
}

/* Every claim of s (lock held), sorted by id; files that are not claims are skipped. */
static int claims_read(const idclaim_space_t *s, idclaim_t **ret, size_t *ret_n) {
        DIR *d = opendir(s->dir);
        if (!d)
                return negative_errno();
        idclaim_t *v = NULL;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                int64_t id;
                if (parse_int64(de->d_name, s->first, (int64_t)s->first + s->count - 1, &id) < 0)
                        continue;
                _cleanup_free_ char *path = claim_path(s, (uint32_t)id);
                _cleanup_free_ char *text = NULL;
                idclaim_t c;
                if (file_read(path, &text, NULL) < 0)
                        continue;
                if (claim_parse(text, (uint32_t)id, &c) < 0)
                        c = (idclaim_t){ .id = (uint32_t)id, .key = xstrdup("") }; /* torn: no owner */
                *(idclaim_t *)array_append(&v, &n, sizeof *v) = c;
        }
        closedir(d);
        if (n)
                qsort(v, n, sizeof *v, claim_cmp);
        *ret = v;
        *ret_n = n;
        return 0;
}

/* Removes claim c (lock held, id not in use): its dirs, then its file. */
static int claim_drop(const idclaim_space_t *s, const idclaim_t *c) {
        int r = cgroup_dirs_remove(c->dirs);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = claim_path(s, c->id);
        return unlink(path) < 0 && errno != ENOENT ? negative_errno() : 0;
}

static const idclaim_t *claims_find(const idclaim_t *v, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (streq(v[i].key, key))
                        return &v[i];
        return NULL;
}

int idclaim_take(const idclaim_space_t *s, const char *key, char *const *dirs, uint32_t *ret_id) {
        if (!text_ok(key))
                return -EINVAL;
        for (char *const *d = dirs; d && *d; d++)
                if (!text_ok(*d) || **d != '/')
                        return -EINVAL;
        _cleanup_(claims_done) claims_t all = { .lock = -1 };
        int r = claims_open(s, &all);
        if (r < 0)
                return r;
        const idclaim_t *v = all.v;
        size_t n = all.n;
        _cleanup_free_ uint8_t *used = ids_in_use(s);
        const idclaim_t *mine = claims_find(v, n, key);
        uint32_t id = 0;
        bool found = false;
        if (mine) {
                r = bit_get(used, mine->id - s->first) ? -EBUSY : 0;
                id = mine->id;
                found = r >= 0;
        }
        /* the lowest id without a claim (v is sorted) */
        for (uint32_t i = 0, k = 0; r >= 0 && !found && i < s->count; i++) {
                while (k < n && v[k].id < s->first + i)
                        k++;
                if ((k == n || v[k].id != s->first + i) && !bit_get(used, i)) {
                        id = s->first + i;
                        found = true;
                }
        }
        /* else a stale claim's */
        for (size_t k = 0; r >= 0 && !found && k < n; k++)
                if (!bit_get(used, v[k].id - s->first) && !owner_alive(&v[k]) && claim_drop(s, &v[k]) >= 0) {
                        id = v[k].id;
                        found = true;
                }
        if (r >= 0 && !found)
                r = -EUSERS;
        if (r >= 0)
                r = claim_write(s, id, key, dirs);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

int idclaim_release(const idclaim_space_t *s, const char *key) {
        _cleanup_(claims_done) claims_t all = { .lock = -1 };
        int r = claims_open(s, &all);
        if (r < 0)
                return r;
        const idclaim_t *c = claims_find(all.v, all.n, key);
        return !c ? 0 : idclaim_uid_in_use(c->id) ? -EBUSY : claim_drop(s, c);
}

int idclaim_rename(const idclaim_space_t *s, const char *from, const char *to, char *const *dirs, uint32_t *ret_id) {
        if (!text_ok(to))
                return -EINVAL;
        _cleanup_(claims_done) claims_t all = { .lock = -1 };
        int r = claims_open(s, &all);
        if (r < 0)
                return r;
        const idclaim_t *c = claims_find(all.v, all.n, from);
        if (!c)
                return -ENOENT;
        if (claims_find(all.v, all.n, to))
                return -EEXIST;
        r = claim_write(s, c->id, to, dirs);
        if (r >= 0 && ret_id)
                *ret_id = c->id;
        return r;
}

int idclaim_sweep(const idclaim_space_t *s, const char *prefix, bool (*keep)(const char *key, void *userdata),
                  void *userdata) {
        _cleanup_(claims_done) claims_t all = { .lock = -1 };
        int r = claims_open(s, &all);
        if (r < 0)
                return r;
        _cleanup_free_ uint8_t *used = ids_in_use(s);
        int released = 0;
        for (size_t k = 0; k < all.n; k++) {
                const idclaim_t *c = &all.v[k];
                if (!str_startswith(c->key, prefix) || bit_get(used, c->id - s->first) || (keep && keep(c->key, userdata)))
                        continue;
                if (claim_drop(s, c) >= 0)
                        released++;
        }
        return released;
}

int idclaim_list(const idclaim_space_t *s, const char *prefix, idclaim_t **ret, size_t *ret_n) {
        _cleanup_(claims_done) claims_t all = { .lock = -1 };
        int r = claims_open(s, &all);
        if (r < 0)
                return r;
        size_t m = 0;
        for (size_t k = 0; k < all.n; k++) {
                if (str_startswith(all.v[k].key, prefix))
                        all.v[m++] = all.v[k];
                else
                        idclaim_clear(&all.v[k]);
        }
        *ret = TAKE_PTR(all.v);
        *ret_n = m;
        all.n = 0;
        return 0;
}
