/* Implementation of qemu-confine.h. */
#include "vmm/qemu/qemu-confine.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"

/* What every QEMU reads: programs and libraries, firmware (/usr/share/qemu), configuration. */
static const struct {
        const char *path;
        unsigned flags;
} system_binds[] = {
        { "/usr", JAIL_EXEC },
        { "/lib", JAIL_EXEC | JAIL_OPTIONAL },
        { "/lib32", JAIL_EXEC | JAIL_OPTIONAL },
        { "/lib64", JAIL_EXEC | JAIL_OPTIONAL },
        { "/libx32", JAIL_EXEC | JAIL_OPTIONAL },
        { "/bin", JAIL_EXEC | JAIL_OPTIONAL },
        { "/sbin", JAIL_EXEC | JAIL_OPTIONAL },
        { "/etc", 0 },
        /* slirp's DNS forwarder reads it; a link into /run (systemd-resolved) brings its target */
        { "/etc/resolv.conf", JAIL_OPTIONAL },
};

static const char *const devices[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom" };

static uint64_t be_get(const uint8_t *p, int n) {
        uint64_t v = 0;
        for (int i = 0; i < n; i++)
                v = v << 8 | p[i];
        return v;
}

/* The backing file name in the qcow2 header of path: 0 and *ret (NULL when none or not qcow2). */
static int qcow2_backing(const char *path, char **ret) {
        *ret = NULL;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        uint8_t h[20];
        if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h, "QFI\xfb", 4) != 0)
                return 0; /* raw, or too short to be qcow2: no backing file */
        uint64_t off = be_get(h + 8, 8);
        uint32_t len = (uint32_t)be_get(h + 16, 4);
        if (off == 0 || len == 0)
                return 0;
        if (len >= PATH_MAX)
                return -ENAMETOOLONG;
        char *name = xcalloc(len + 1, 1);
        if (pread(fd, name, len, (off_t)off) != (ssize_t)len || memchr(name, 0, len)) {
                free(name);
                return -EBADMSG;
        }
        *ret = name;
        return 0;
}

int qemu_confine_backing_chain(const char *path, char ***ret) {
        char **v = xcalloc(QEMU_CONFINE_BACKING_MAX + 1, sizeof *v);
        size_t n = 0;
        _cleanup_free_ char *cur = xstrdup(path);
        for (;;) {
                _cleanup_free_ char *name = NULL;
                int r = qcow2_backing(cur, &name);
                if (r < 0) {
                        strv_free(v);
                        return r;
                }
                if (!name)
                        break;
                /* QEMU takes "json:{...}" and "proto:..." as a description, not a file name */
                if (str_startswith(name, "json:") || (name[0] != '/' && strchr(name, ':'))) {
                        strv_free(v);
                        return -EINVAL;
                }
                char *abs;
                if (name[0] == '/')
                        abs = TAKE_PTR(name);
                else {
                        /* relative to the directory of the image that names it */
                        _cleanup_free_ char *dir = xstrdup(cur);
                        char *slash = strrchr(dir, '/');
                        if (slash)
                                *slash = 0;
                        abs = xasprintf("%s/%s", slash ? dir : ".", name);
                }
                if (n == QEMU_CONFINE_BACKING_MAX) {
                        free(abs);
                        strv_free(v);
                        return -ELOOP;
                }
                v[n++] = abs;
                free(cur);
                cur = xstrdup(abs);
        }
        *ret = v;
        return 0;
}

/* Whether path, resolved, lies in one of dirs (resolved too). */
static bool path_in_dirs(const char *path, char *const *dirs) {
        _cleanup_free_ char *real = realpath(path, NULL);
        if (!real)
                return false;
        for (char *const *d = dirs; d && *d; d++) {
                _cleanup_free_ char *rd = realpath(*d, NULL);
                size_t n = rd ? strlen(rd) : 0;
                if (rd && strncmp(real, rd, n) == 0 && real[n] == '/')
                        return true;
        }
        return false;
}

int qemu_confine_backing_check(const char *disk, char *const *allowed, char **ret_bad) {
        _cleanup_strv_free_ char **chain = NULL;
        int r = qemu_confine_backing_chain(disk, &chain);
        if (r < 0)
                return r;
        for (char **b = chain; *b; b++)
                if (!path_in_dirs(*b, allowed)) {
                        if (ret_bad)
                                *ret_bad = xstrdup(*b);
                        return -EPERM;
                }
        return 0;
}

/* The disk and its backing files into j; *ret_bad names what failed. */
static int disk_binds(jail_t *j, const char *disk, char *const *allowed, const char **ret_bad) {
        int r = jail_bind(j, disk, JAIL_RW);
        if (r < 0) {
                *ret_bad = disk;
                return r;
        }
        _cleanup_strv_free_ char **chain = NULL;
        r = qemu_confine_backing_chain(disk, &chain);
        if (r < 0) {
                *ret_bad = disk;
                return r;
        }
        for (char **b = chain; *b; b++) {
                if (!path_in_dirs(*b, allowed)) {
                        *ret_bad = "a backing file of the disk outside the node's images and bases";
                        return -EPERM;
                }
                if ((r = jail_bind(j, *b, 0)) < 0) {
                        *ret_bad = "a backing file of the disk";
                        return r;
                }
        }
        return 0;
}

/* The memory file: writable, also a snapshot mapped copy-on-write (see the header). */
static int memory_bind(jail_t *j, const vmm_config_t *cfg, const char **ret_bad) {
        if (!cfg->memory_path)
                return 0;
        int r = jail_bind(j, cfg->memory_path, JAIL_RW);
        if (r < 0)
                *ret_bad = cfg->memory_path;
        return r;
}

int qemu_confine_jail(const vmm_config_t *cfg, jail_t **ret, const char **ret_bad) {
        static const char *dummy;
        if (!ret_bad)
                ret_bad = &dummy;
        const vmm_confine_t *c = cfg->confine;
        if (!c || !c->jail_dir)
                return -EINVAL;
        _cleanup_(jail_freep) jail_t *j = jail_new(c->jail_dir);
        int r;
        for (size_t i = 0; i < ELEMENTSOF(system_binds); i++)
                if ((r = jail_bind(j, system_binds[i].path, system_binds[i].flags)) < 0) {
                        *ret_bad = system_binds[i].path;
                        return r;
                }
        for (size_t i = 0; i < ELEMENTSOF(devices); i++)
                if ((r = jail_bind(j, devices[i], JAIL_RW | JAIL_DEVICE)) < 0) {
                        *ret_bad = devices[i];
                        return r;
                }
        gid_t groups[1];
        size_t n_groups = 0;
        if (cfg->accel && streq(cfg->accel, "kvm")) {
                /* KVM needs /dev/kvm: through its group, as udev sets it up (root:kvm 0660) */
                struct stat st;
                if (stat("/dev/kvm", &st) < 0 || !(st.st_mode & S_IRGRP) || !(st.st_mode & S_IWGRP) || st.st_gid == 0) {
                        *ret_bad = "/dev/kvm (a confined QEMU reaches it through its group: make it 0660 with a "
                                   "group other than root's)";
                        return -EACCES;
                }
                groups[n_groups++] = st.st_gid;
                if ((r = jail_bind(j, "/dev/kvm", JAIL_RW | JAIL_DEVICE)) < 0) {
                        *ret_bad = "/dev/kvm";
                        return r;
                }
        }
        jail_proc(j);
        if ((r = jail_bind(j, cfg->run_dir, JAIL_RW)) < 0) {
                *ret_bad = cfg->run_dir;
                return r;
        }
        const char *ro[] = { cfg->kernel, cfg->initrd };
        for (size_t i = 0; i < ELEMENTSOF(ro); i++)
                if (ro[i] && (r = jail_bind(j, ro[i], 0)) < 0) {
                        *ret_bad = ro[i];
                        return r;
                }
        if (cfg->disk && (r = disk_binds(j, cfg->disk, c->backing_dirs, ret_bad)) < 0)
                return r;
        if ((r = memory_bind(j, cfg, ret_bad)) < 0)
                return r;
        for (char *const *g = c->cgroups; g && *g; g++)
                jail_cgroup(j, *g);
        if ((r = jail_credentials(j, c->uid, c->gid, groups, n_groups)) < 0) {
                *ret_bad = "uid";
                return r;
        }
        *ret = TAKE_PTR(j);
        return 0;
}

int qemu_confine_slot_jail(const vmm_config_t *cfg, jail_t **ret, const char **ret_bad) {
        static const char *dummy;
        if (!ret_bad)
                ret_bad = &dummy;
        if (!cfg->confine)
                return -EINVAL;
        _cleanup_(jail_freep) jail_t *j = jail_new(NULL);
        int r = cfg->disk ? disk_binds(j, cfg->disk, cfg->confine->backing_dirs, ret_bad) : 0;
        if (r >= 0)
                r = memory_bind(j, cfg, ret_bad);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(j);
        return 0;
}

/* The run directory and the files in it (a console log of an earlier QEMU of the VM, under
 * another uid). The directory is resolved first: a VM in a slot's directory has a link. */
static int run_dir_own(const char *run_dir, uid_t uid, gid_t gid) {
        _cleanup_free_ char *real = realpath(run_dir, NULL);
        if (!real)
                return negative_errno();
        if (chown(real, uid, gid) < 0 || chmod(real, 0700) < 0)
                return negative_errno();
        DIR *d = opendir(real);
        if (!d)
                return negative_errno();
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
                    fchownat(dirfd(d), de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
                        r = negative_errno();
        closedir(d);
        return r;
}

int qemu_confine_files(const vmm_config_t *cfg, uid_t uid, gid_t gid, bool slot, const char **ret_bad) {
        static const char *dummy;
        if (!ret_bad)
                ret_bad = &dummy;
        int r;
        if (!slot && (r = run_dir_own(cfg->run_dir, uid, gid)) < 0) {
                *ret_bad = cfg->run_dir;
                return r;
        }
        if (cfg->disk && chown(cfg->disk, uid, gid) < 0) {
                *ret_bad = cfg->disk;
                return negative_errno();
        }
        if (!cfg->memory_path)
                return 0;
        if (cfg->memory_private) {
                /* a shared snapshot: root's, but QEMU 7.2 opens it O_RDWR (see the header) */
                if (chmod(cfg->memory_path, 0666) < 0) {
                        *ret_bad = cfg->memory_path;
                        return negative_errno();
                }
                return 0;
        }
        /* the VM's own RAM: created empty when it does not exist, QEMU gives it its size */
        _cleanup_close_ int fd = open(cfg->memory_path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || fchown(fd, uid, gid) < 0) {
                *ret_bad = cfg->memory_path;
                return negative_errno();
        }
        return 0;
}
