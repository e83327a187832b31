/* Implementation of cgroup.h: the layout from mountinfo, the limit files, the group directories. */
#include "base/cgroup.h"

#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/util.h"

#define CGROUP_BASE_NAME "vmatrix"
/* How often a create retries when another node removed the shared parent meanwhile. */
#define CGROUP_CREATE_TRIES 3

static const char *const controller_names[] = {
        [CGROUP_MEMORY] = "memory",
        [CGROUP_CPU] = "cpu",
        [CGROUP_PIDS] = "pids",
};

const char *cgroup_controller_name(cgroup_controller_t c) {
        return (size_t)c < ELEMENTSOF(controller_names) ? controller_names[c] : "?";
}

char *cgroup_controllers_format(unsigned mask, char *buf, size_t size) {
        size_t len = 0;
        buf[0] = 0;
        for (int c = 0; c < _CGROUP_CONTROLLER_MAX; c++)
                if (mask & (1u << c)) {
                        int w = snprintf(buf + len, size - len, "%s%s", len ? "," : "", controller_names[c]);
                        if (w < 0 || (size_t)w >= size - len)
                                break;
                        len += (size_t)w;
                }
        return buf;
}

/* Whether word is one of the comma- or space-separated words of list. */
static bool list_has(const char *list, const char *word, const char *seps) {
        size_t n = strlen(word);
        for (const char *p = list; p && *p;) {
                size_t len = strcspn(p, seps);
                if (len == n && strncmp(p, word, n) == 0)
                        return true;
                p += len;
                p += strspn(p, seps);
        }
        return false;
}

/* A mountinfo field with its octal escapes (\040 for a space) undone; malloc'd. */
static char *field_unescape(const char *s, size_t len) {
        char *out = xcalloc(len + 1, 1), *o = out;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
                    s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
                        *o++ = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
                        i += 3;
                } else
                        *o++ = s[i];
        }
        return out;
}

typedef struct mount_line {
        char *root, *point, *fstype, *superopts;
} mount_line_t;

static void mount_line_clear(mount_line_t *m) {
        free(m->root);
        free(m->point);
        free(m->fstype);
        free(m->superopts);
        *m = (mount_line_t){ 0 };
}

/* The next n space-separated fields from *p (before end) into f[] and fl[]; the position moves. */
static void fields_take(const char **p, const char *end, int n, const char **f, size_t *fl) {
        for (int i = 0; i < n; i++) {
                while (*p < end && **p == ' ')
                        (*p)++;
                f[i] = *p;
                while (*p < end && **p != ' ')
                        (*p)++;
                fl[i] = (size_t)(*p - f[i]);
        }
}

/* One line of mountinfo: "ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS". */
static int mount_line_parse(const char *line, size_t len, mount_line_t *ret) {
        const char *f[6], *g[3];
        size_t fl[6], gl[3];
        const char *p = line, *end = line + len;
        fields_take(&p, end, 6, f, fl);
        for (int i = 0; i < 6; i++)
                if (fl[i] == 0)
                        return -EINVAL;
        /* the optional fields end at a lone "-" */
        const char *dash = NULL;
        for (const char *q = p; q + 2 < end; q++)
                if (q[0] == ' ' && q[1] == '-' && q[2] == ' ') {
                        dash = q + 3;
                        break;
                }
        if (!dash)
                return -EINVAL;
        p = dash;
        fields_take(&p, end, 3, g, gl);
        if (gl[0] == 0)
                return -EINVAL;
        *ret = (mount_line_t){ .root = field_unescape(f[3], fl[3]),
                               .point = field_unescape(f[4], fl[4]),
                               .fstype = field_unescape(g[0], gl[0]),
                               .superopts = field_unescape(g[2], gl[2]) };
        return 0;
}

/* The path of this process's group in the hierarchy whose /proc/self/cgroup line matches: the
 * v2 line ("0::PATH") or the v1 line listing controller. malloc'd, NULL if none. */
static char *self_path(const char *self_cgroup, const char *controller) {
        for (const char *line = self_cgroup; line && *line;) {
                size_t len = strcspn(line, "\n");
                const char *c1 = memchr(line, ':', len);
                const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
                if (c2) {
                        _cleanup_free_ char *ctl = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
                        bool match = controller ? ctl && list_has(ctl, controller, ",")
                                                : ctl && !*ctl && strncmp(line, "0:", 2) == 0;
                        if (match)
                                return strndup(c2 + 1, len - (size_t)(c2 + 1 - line));
                }
                line += len;
                line += *line == '\n';
        }
        return NULL;
}

/* mount point + (the node's group path relative to the mount's root) + "/vmatrix". */
static char *base_below_self(const mount_line_t *m, const char *self) {
        const char *rel = "";
        size_t rl = strlen(m->root);
        if (self && streq(m->root, "/"))
                rel = self;
        else if (self && strncmp(self, m->root, rl) == 0 && (self[rl] == '/' || self[rl] == 0))
                rel = self + rl;
        while (*rel == '/')
                rel++;
        const char *point = streq(m->point, "/") ? "" : m->point;
        /* "/" alone leaves no trailing slash to strip */
        if (!*rel)
                return xasprintf("%s/" CGROUP_BASE_NAME, point);
        _cleanup_free_ char *r = xstrdup(rel);
        size_t n = strlen(r);
        while (n > 0 && r[n - 1] == '/')
                r[--n] = 0;
        return xasprintf("%s/%s/" CGROUP_BASE_NAME, point, r);
}

void cgroup_layout_clear(cgroup_layout_t *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->h[i].base);
        *l = (cgroup_layout_t){ 0 };
}

int cgroup_layout_parse(const char *mountinfo, const char *self_cgroup, const char *v2_controllers,
                        cgroup_layout_t *ret) {
        cgroup_layout_t l = { 0 };
        mount_line_t v2 = { 0 };
        mount_line_t v1[_CGROUP_CONTROLLER_MAX] = { { 0 } };
        bool any = false;
        for (const char *line = mountinfo; line && *line;) {
                size_t len = strcspn(line, "\n");
                mount_line_t m = { 0 };
                if (mount_line_parse(line, len, &m) >= 0) {
                        if (streq(m.fstype, "cgroup2") && !v2.point) {
                                v2 = m;
                                m = (mount_line_t){ 0 };
                                any = true;
                        } else if (streq(m.fstype, "cgroup")) {
                                any = true;
                                for (int c = 0; c < _CGROUP_CONTROLLER_MAX; c++)
                                        if (!v1[c].point && list_has(m.superopts, controller_names[c], ",")) {
                                                v1[c] = (mount_line_t){ .root = xstrdup(m.root),
                                                                        .point = xstrdup(m.point),
                                                                        .fstype = xstrdup(m.fstype),
                                                                        .superopts = xstrdup(m.superopts) };
                                        }
                        }
                }
                mount_line_clear(&m);
                line += len;
                line += *line == '\n';
        }
        if (!any)
                return -ENOENT;
        unsigned in_v2 = 0;
        if (v2.point) {
                for (int c = 0; c < _CGROUP_CONTROLLER_MAX; c++)
                        if (v2_controllers && list_has(v2_controllers, controller_names[c], " \n"))
                                in_v2 |= 1u << c;
                const char *point = streq(v2.point, "/") ? "" : v2.point;
                l.h[l.n++] = (cgroup_hierarchy_t){ .base = xasprintf("%s/" CGROUP_BASE_NAME, point), .v2 = true,
                                                   .controllers = in_v2 };
        }
        for (int c = 0; c < _CGROUP_CONTROLLER_MAX; c++) {
                if (in_v2 & (1u << c))
                        continue;
                if (!v1[c].point) {
                        l.missing |= 1u << c;
                        continue;
                }
                /* co-mounted controllers (cpu,cpuacct; or two of ours) are one hierarchy */
                bool joined = false;
                for (size_t i = 0; i < l.n && !joined; i++)
                        for (int d = 0; d < c && !joined; d++)
                                if (!l.h[i].v2 && (l.h[i].controllers & (1u << d)) && v1[d].point &&
                                    streq(v1[d].point, v1[c].point)) {
                                        l.h[i].controllers |= 1u << c;
                                        joined = true;
                                }
                if (joined || l.n == CGROUP_HIERARCHY_MAX)
                        continue;
                _cleanup_free_ char *self = self_path(self_cgroup, controller_names[c]);
                l.h[l.n++] = (cgroup_hierarchy_t){ .base = base_below_self(&v1[c], self), .controllers = 1u << c };
        }
        mount_line_clear(&v2);
        for (int c = 0; c < _CGROUP_CONTROLLER_MAX; c++)
                mount_line_clear(&v1[c]);
        *ret = l;
        return 0;
}

int cgroup_layout_detect(cgroup_layout_t *ret) {
        _cleanup_free_ char *mountinfo = NULL, *self = NULL, *controllers = NULL;
        int r = file_read("/proc/self/mountinfo", &mountinfo, NULL);
        if (r < 0)
                return r;
        r = file_read("/proc/self/cgroup", &self, NULL);
        if (r < 0)
                return r;
        /* the v2 root's controllers: parse once to find the mount point */
        cgroup_layout_t probe = { 0 };
        r = cgroup_layout_parse(mountinfo, self, NULL, &probe);
        if (r < 0)
                return r;
        for (size_t i = 0; i < probe.n; i++)
                if (probe.h[i].v2) {
                        /* base is ROOT/vmatrix */
                        _cleanup_free_ char *root = xstrdup(probe.h[i].base);
                        *strrchr(root, '/') = 0;
                        _cleanup_free_ char *path = xasprintf("%s/cgroup.controllers", *root ? root : "");
                        (void)file_read(path, &controllers, NULL);
                }
        cgroup_layout_clear(&probe);
        return cgroup_layout_parse(mountinfo, self, controllers, ret);
}

cgroup_limits_t cgroup_limits_for(uint64_t memory_mib, uint64_t overhead_mib, unsigned vcpus, unsigned cpu_percent,
                                  uint64_t pids) {
        uint64_t percent = cpu_percent ? cpu_percent : 100u * (vcpus ? vcpus : 1);
        return (cgroup_limits_t){
                .memory_bytes = (memory_mib + overhead_mib) << 20,
                .cpu_quota_us = percent * CGROUP_CPU_PERIOD_US / 100,
                .pids = pids,
        };
}

/* v in decimal into buf, or none when v is 0 (no limit). */
static void limit_format(char buf[32], uint64_t v, const char *none) {
        if (v)
                snprintf(buf, 32, "%" PRIu64, v);
        else
                snprintf(buf, 32, "%s", none);
}

size_t cgroup_limit_files(bool v2, cgroup_controller_t c, const cgroup_limits_t *lim, const char *files[2],
                          char values[2][32]) {
        switch (c) {
        case CGROUP_MEMORY:
                files[0] = v2 ? "memory.max" : "memory.limit_in_bytes";
                limit_format(values[0], lim->memory_bytes, v2 ? "max" : "-1");
                return 1;
        case CGROUP_CPU:
                if (v2) {
                        /* "QUOTA PERIOD" */
                        files[0] = "cpu.max";
                        limit_format(values[0], lim->cpu_quota_us, "max");
                        size_t len = strlen(values[0]);
                        snprintf(values[0] + len, 32 - len, " %d", CGROUP_CPU_PERIOD_US);
                        return 1;
                }
                files[0] = "cpu.cfs_period_us";
                snprintf(values[0], 32, "%d", CGROUP_CPU_PERIOD_US);
                files[1] = "cpu.cfs_quota_us";
                limit_format(values[1], lim->cpu_quota_us, "-1");
                return 2;
        case CGROUP_PIDS:
                files[0] = "pids.max";
                limit_format(values[0], lim->pids, "max");
                return 1;
        default:
                return 0;
        }
}

static int file_put(const char *dir, const char *file, const char *value) {
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return fd_write_all(fd, value, strlen(value));
}

char **cgroup_group_dirs(const cgroup_layout_t *l, const char *node, const char *name) {
        char **v = xcalloc(l->n + 1, sizeof *v);
        for (size_t i = 0; i < l->n; i++)
                v[i] = xasprintf("%s/%s/%s", l->h[i].base, node, name);
        return v;
}

static int limits_write(const cgroup_hierarchy_t *h, const char *dir, const cgroup_limits_t *lim) {
        for (int c = 0; c < _CGROUP_CONTROLLER_MAX; c++) {
                if (!(h->controllers & (1u << c)))
                        continue;
                const char *files[2];
                char values[2][32];
                size_t n = cgroup_limit_files(h->v2, (cgroup_controller_t)c, lim, files, values);
                for (size_t k = 0; k < n; k++) {
                        int r = file_put(dir, files[k], values[k]);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* "+memory +cpu" ... into dir's cgroup.subtree_control, one controller at a time so that one
 * already on is no error. */
static int subtree_enable(const char *dir, unsigned controllers) {
        for (int c = 0; c < _CGROUP_CONTROLLER_MAX; c++) {
                if (!(controllers & (1u << c)))
                        continue;
                char word[16];
                snprintf(word, sizeof word, "+%s", controller_names[c]);
                int r = file_put(dir, "cgroup.subtree_control", word);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int mkdir_ok(const char *path) { return mkdir(path, 0755) < 0 && errno != EEXIST ? negative_errno() : 0; }

/* BASE, BASE/NODE and BASE/NODE/NAME of one hierarchy, controllers enabled on the way in v2. */
static int group_make(const cgroup_hierarchy_t *h, const char *node, const char *name) {
        _cleanup_free_ char *root = xstrdup(h->base);
        *strrchr(root, '/') = 0;
        _cleanup_free_ char *nodedir = xasprintf("%s/%s", h->base, node);
        _cleanup_free_ char *leaf = xasprintf("%s/%s", nodedir, name);
        int r = 0;
        for (int tries = 0; tries < CGROUP_CREATE_TRIES; tries++) {
                /* a v1 base may be several levels below the mount point */
                r = h->v2 ? mkdir_ok(h->base) : mkdir_p(h->base, 0755);
                if (r >= 0 && h->v2 && h->controllers)
                        r = subtree_enable(*root ? root : "/", h->controllers);
                if (r >= 0 && h->v2 && h->controllers)
                        r = subtree_enable(h->base, h->controllers);
                if (r >= 0)
                        r = mkdir_ok(nodedir);
                if (r >= 0 && h->v2 && h->controllers)
                        r = subtree_enable(nodedir, h->controllers);
                if (r >= 0)
                        r = mkdir_ok(leaf);
                if (r != -ENOENT)
                        break;
        }
        return r;
}

int cgroup_group_create(const cgroup_layout_t *l, const char *node, const char *name, const cgroup_limits_t *lim) {
        if (!name_is_valid(node) || !*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        _cleanup_strv_free_ char **dirs = cgroup_group_dirs(l, node, name);
        int r = 0;
        for (size_t i = 0; i < l->n && r >= 0; i++) {
                r = group_make(&l->h[i], node, name);
                if (r >= 0)
                        r = limits_write(&l->h[i], dirs[i], lim);
        }
        if (r < 0)
                (void)cgroup_dirs_remove(dirs);
        return r;
}

int cgroup_group_limits_set(const cgroup_layout_t *l, const char *node, const char *name, const cgroup_limits_t *lim) {
        _cleanup_strv_free_ char **dirs = cgroup_group_dirs(l, node, name);
        for (size_t i = 0; i < l->n; i++) {
                int r = limits_write(&l->h[i], dirs[i], lim);
                if (r < 0)
                        return r;
        }
        return 0;
}

int cgroup_group_move(const cgroup_layout_t *l, const char *node, const char *from, const char *to, pid_t pid,
                      const cgroup_limits_t *lim) {
        int r = cgroup_group_create(l, node, to, lim);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **src = cgroup_group_dirs(l, node, from);
        _cleanup_strv_free_ char **dst = cgroup_group_dirs(l, node, to);
        char text[32];
        snprintf(text, sizeof text, "%d", (int)pid);
        /* every thread of pid goes with it */
        for (size_t i = 0; i < l->n; i++)
                if ((r = file_put(dst[i], "cgroup.procs", text)) < 0)
                        return r;
        return cgroup_dirs_remove(src);
}

int cgroup_dirs_remove(char *const *dirs) {
        int r = 0;
        for (char *const *d = dirs; d && *d; d++) {
                if (rmdir(*d) < 0 && errno != ENOENT) {
                        r = errno == ENOTEMPTY ? -EBUSY : negative_errno();
                        continue;
                }
                /* the node's directory and vmatrix's, when this was the last group in them */
                _cleanup_free_ char *parent = xstrdup(*d);
                for (int up = 0; up < 2; up++) {
                        char *slash = strrchr(parent, '/');
                        if (!slash || slash == parent)
                                break;
                        *slash = 0;
                        if (rmdir(parent) < 0)
                                break;
                }
        }
        return r;
}
