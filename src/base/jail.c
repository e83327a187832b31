/* Implementation of jail.h. The plan is a list of operations with every path already built
 * (the path in the jail, and the same path below root_dir before pivot_root), so that the
 * child runs a loop of system calls and nothing else. */
#include "base/jail.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "base/util.h"

#define JAIL_GROUPS_MAX 8
#define JAIL_CGROUPS_MAX 8
#define JAIL_TMPFS_OPTS "mode=0755,size=1m,nr_inodes=4096"
#define JAIL_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Mount API constants, for C libraries older than the kernel (glibc < 2.36). */
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif

typedef enum op_kind {
        OP_MKDIR,
        OP_BIND,
        OP_SYMLINK,
        OP_PROC,
} op_kind_t;

typedef struct jail_op {
        op_kind_t kind;
        char *path;   /* in the jail */
        char *pre;    /* root_dir + path: where it is before pivot_root */
        char *src;    /* OP_BIND: the host path; OP_SYMLINK: the link's target */
        bool dir;     /* OP_BIND: a directory (else a file: the mount point is an empty file) */
        unsigned flags;
} jail_op_t;

struct jail {
        char *root;
        jail_op_t *ops;
        size_t n_ops;
        uid_t uid;
        gid_t gid;
        gid_t groups[JAIL_GROUPS_MAX];
        size_t n_groups;
        char *cgroups[JAIL_CGROUPS_MAX];
        size_t n_cgroups;
};

/* The steps of the child, for messages; keep in sync with the step_t values. */
typedef enum step {
        STEP_SIGNALS,
        STEP_SETSID,
        STEP_CGROUP,
        STEP_UNSHARE,
        STEP_PRIVATE,
        STEP_ROOT,
        STEP_MKDIR,
        STEP_MOUNTPOINT,
        STEP_BIND,
        STEP_REMOUNT,
        STEP_SYMLINK,
        STEP_PROC,
        STEP_PIVOT,
        STEP_FDS,
        STEP_BOUNDING,
        STEP_SETGROUPS,
        STEP_SETGID,
        STEP_SETUID,
        STEP_CAPS,
        STEP_NO_NEW_PRIVS,
        STEP_EXEC,
        STEP_SETNS,
        STEP_MOVE,
        _STEP_MAX,
} step_t;

static const char *const step_names[_STEP_MAX] = {
        [STEP_SIGNALS] = "signals",     [STEP_SETSID] = "setsid",
        [STEP_CGROUP] = "join cgroup",  [STEP_UNSHARE] = "unshare mount namespace",
        [STEP_PRIVATE] = "make mounts private", [STEP_ROOT] = "mount the root tmpfs",
        [STEP_MKDIR] = "mkdir",         [STEP_MOUNTPOINT] = "create a mount point",
        [STEP_BIND] = "bind mount",     [STEP_REMOUNT] = "remount read-only/nosuid",
        [STEP_SYMLINK] = "symlink",     [STEP_PROC] = "mount /proc",
        [STEP_PIVOT] = "pivot_root",    [STEP_FDS] = "set up descriptors",
        [STEP_BOUNDING] = "drop the capability bounding set", [STEP_SETGROUPS] = "setgroups",
        [STEP_SETGID] = "setresgid",    [STEP_SETUID] = "setresuid",
        [STEP_CAPS] = "clear capabilities", [STEP_NO_NEW_PRIVS] = "no_new_privs",
        [STEP_EXEC] = "exec",           [STEP_SETNS] = "setns into the mount namespace",
        [STEP_MOVE] = "move_mount",
};

jail_t *jail_new(const char *root_dir) {
        jail_t *j = xcalloc(1, sizeof *j);
        j->root = root_dir ? xstrdup(root_dir) : NULL;
        return j;
}

jail_t *jail_free(jail_t *j) {
        if (!j)
                return NULL;
        for (size_t i = 0; i < j->n_ops; i++) {
                free(j->ops[i].path);
                free(j->ops[i].pre);
                free(j->ops[i].src);
        }
        free(j->ops);
        for (size_t i = 0; i < j->n_cgroups; i++)
                free(j->cgroups[i]);
        free(j->root);
        free(j);
        return NULL;
}

size_t jail_size(const jail_t *j) { return j->n_ops; }

bool jail_binds(const jail_t *j, const char *path, unsigned *ret_flags) {
        for (size_t i = 0; i < j->n_ops; i++)
                if (j->ops[i].kind == OP_BIND && streq(j->ops[i].path, path)) {
                        if (ret_flags)
                                *ret_flags = j->ops[i].flags;
                        return true;
                }
        return false;
}

static const jail_op_t *op_find(const jail_t *j, const char *path) {
        for (size_t i = 0; i < j->n_ops; i++)
                if (streq(j->ops[i].path, path))
                        return &j->ops[i];
        return NULL;
}

/* Whether path lies inside a directory the plan binds (it then exists in the jail already). */
static bool under_bound_dir(const jail_t *j, const char *path) {
        for (size_t i = 0; i < j->n_ops; i++) {
                const jail_op_t *o = &j->ops[i];
                size_t n = strlen(o->path);
                if (o->kind == OP_BIND && o->dir && strncmp(path, o->path, n) == 0 && path[n] == '/')
                        return true;
        }
        return false;
}

static jail_op_t *op_add(jail_t *j, op_kind_t kind, const char *path) {
        jail_op_t *o = array_append(&j->ops, &j->n_ops, sizeof *j->ops);
        o->kind = kind;
        o->path = xstrdup(path);
        o->pre = xasprintf("%s%s", j->root ? j->root : "", path);
        return o;
}

/* The directories above path (not "/"), each once, unless they exist in the jail already. */
static void dirs_above(jail_t *j, const char *path) {
        _cleanup_free_ char *p = xstrdup(path);
        for (char *s = p + 1; (s = strchr(s, '/')); s++) {
                *s = 0;
                if (!op_find(j, p) && !under_bound_dir(j, p))
                        op_add(j, OP_MKDIR, p);
                *s = '/';
        }
}

/* The first component of path (a proper prefix, or path itself) that is a symbolic link,
 * malloc'd; NULL when there is none. */
static char *first_link(const char *path) {
        _cleanup_free_ char *p = xstrdup(path);
        for (char *s = p + 1;; s++) {
                char *slash = strchr(s, '/');
                if (slash)
                        *slash = 0;
                struct stat st;
                if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode))
                        return TAKE_PTR(p);
                if (!slash)
                        return NULL;
                *slash = '/';
                s = slash;
        }
}

int jail_bind(jail_t *j, const char *path, unsigned flags) {
        if (!path || path[0] != '/' || strstr(path, "/../") || strstr(path, "/./"))
                return -EINVAL;
        struct stat st;
        if (stat(path, &st) < 0) {
                if (errno == ENOENT && (flags & JAIL_OPTIONAL))
                        return 0;
                return negative_errno();
        }
        _cleanup_free_ char *link = first_link(path);
        if (link) {
                /* the link as it is (its target resolves in the jail as outside), then the
                 * real path behind it */
                if (!op_find(j, link)) {
                        char target[PATH_MAX];
                        ssize_t n = readlink(link, target, sizeof target - 1);
                        if (n <= 0)
                                return n < 0 ? negative_errno() : -EINVAL;
                        target[n] = 0;
                        /* (a link inside a directory bound already is there as it is) */
                        if (!under_bound_dir(j, link)) {
                                dirs_above(j, link);
                                op_add(j, OP_SYMLINK, link)->src = xstrdup(target);
                        }
                }
                _cleanup_free_ char *real = realpath(path, NULL);
                if (!real)
                        return negative_errno();
                return streq(real, path) ? -ELOOP : jail_bind(j, real, flags);
        }
        const jail_op_t *have = op_find(j, path);
        if (have)
                return have->kind == OP_BIND ? 0 : -EEXIST;
        /* already there, and as writable, through a directory bound above it */
        for (size_t i = 0; i < j->n_ops; i++) {
                const jail_op_t *o = &j->ops[i];
                size_t n = strlen(o->path);
                if (o->kind == OP_BIND && o->dir && strncmp(path, o->path, n) == 0 && path[n] == '/' &&
                    (o->flags & ~JAIL_OPTIONAL) == (flags & ~JAIL_OPTIONAL))
                        return 0;
        }
        dirs_above(j, path);
        jail_op_t *o = op_add(j, OP_BIND, path);
        o->src = xstrdup(path);
        o->dir = S_ISDIR(st.st_mode);
        o->flags = flags;
        return 0;
}

void jail_proc(jail_t *j) {
        if (!op_find(j, "/proc"))
                op_add(j, OP_PROC, "/proc");
}

int jail_credentials(jail_t *j, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups) {
        if (uid == 0 || gid == 0 || n_groups > JAIL_GROUPS_MAX)
                return -EINVAL;
        j->uid = uid;
        j->gid = gid;
        for (size_t i = 0; i < n_groups; i++)
                j->groups[i] = groups[i];
        j->n_groups = n_groups;
        return 0;
}

void jail_cgroup(jail_t *j, const char *dir) {
        if (j->n_cgroups < JAIL_CGROUPS_MAX)
                j->cgroups[j->n_cgroups++] = xasprintf("%s/cgroup.procs", dir);
}

/* ---- the child: system calls only from here to exec ---- */

typedef struct report {
        int step, err;
} report_t;

static _noreturn_ void child_fail(int err_fd, step_t step) {
        report_t rep = { .step = step, .err = errno ? errno : EIO };
        (void)!write(err_fd, &rep, sizeof rep);
        _exit(127);
}

/* A mount point for o: a directory, or an empty file. */
static int mountpoint_make(const char *path, bool dir) {
        if (dir)
                return mkdir(path, 0755) < 0 && errno != EEXIST ? -1 : 0;
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0)
                return -1;
        close(fd);
        return 0;
}

static unsigned long bind_flags(unsigned flags) {
        unsigned long f = MS_BIND | MS_REMOUNT | MS_NOSUID;
        if (!(flags & JAIL_RW))
                f |= MS_RDONLY;
        if (!(flags & JAIL_DEVICE))
                f |= MS_NODEV;
        if (!(flags & JAIL_EXEC))
                f |= MS_NOEXEC;
        return f;
}

/* Carries out one operation at path (pre-pivot or, for jail_expose, in the jail). */
static void op_run(const jail_op_t *o, const char *path, int tree_fd, int err_fd) {
        switch (o->kind) {
        case OP_MKDIR:
                if (mkdir(path, 0755) < 0 && errno != EEXIST)
                        child_fail(err_fd, STEP_MKDIR);
                break;
        case OP_SYMLINK:
                if (symlink(o->src, path) < 0 && errno != EEXIST)
                        child_fail(err_fd, STEP_SYMLINK);
                break;
        case OP_PROC:
                if (mkdir(path, 0555) < 0 && errno != EEXIST)
                        child_fail(err_fd, STEP_MKDIR);
                if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") < 0 &&
                    mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") < 0)
                        child_fail(err_fd, STEP_PROC);
                break;
        case OP_BIND:
                if (mountpoint_make(path, o->dir) < 0)
                        child_fail(err_fd, STEP_MOUNTPOINT);
                if (tree_fd >= 0) {
                        if (syscall(SYS_move_mount, tree_fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                                child_fail(err_fd, STEP_MOVE);
                } else if (mount(o->src, path, NULL, MS_BIND, NULL) < 0)
                        child_fail(err_fd, STEP_BIND);
                if (mount(NULL, path, NULL, bind_flags(o->flags), NULL) < 0)
                        child_fail(err_fd, STEP_REMOUNT);
                break;
        }
}

typedef struct spawn_ctx {
        const jail_t *j;
        char *const *argv;
        const char *exe;
        int out_fd, null_fd, err_fd;
        int cgroup_fds[JAIL_CGROUPS_MAX];
        int cap_last;
} spawn_ctx_t;

static _noreturn_ void spawn_child(const spawn_ctx_t *x) {
        const jail_t *j = x->j;
        int e = x->err_fd;
        sigset_t none;
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                child_fail(e, STEP_SIGNALS);
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)sigaction(sig, &dfl, NULL);
        if (setsid() < 0)
                child_fail(e, STEP_SETSID);
        for (size_t i = 0; i < j->n_cgroups; i++)
                if (write(x->cgroup_fds[i], "0", 1) != 1)
                        child_fail(e, STEP_CGROUP);

        if (unshare(CLONE_NEWNS) < 0)
                child_fail(e, STEP_UNSHARE);
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                child_fail(e, STEP_PRIVATE);
        if (mount("vmatrix-jail", j->root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, JAIL_TMPFS_OPTS) < 0)
                child_fail(e, STEP_ROOT);
        for (size_t i = 0; i < j->n_ops; i++)
                op_run(&j->ops[i], j->ops[i].pre, -1, e);
        /* pivot_root(".", "."): the old root ends up on top of the new one and is detached */
        if (chdir(j->root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
            chdir("/") < 0)
                child_fail(e, STEP_PIVOT);

        if (dup2(x->null_fd, STDIN_FILENO) < 0 || dup2(x->out_fd, STDOUT_FILENO) < 0 ||
            dup2(x->out_fd, STDERR_FILENO) < 0)
                child_fail(e, STEP_FDS);
        /* every other descriptor, also those another thread opened without O_CLOEXEC */
        if (syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) < 0)
                for (int fd = 3; fd < 4096; fd++)
                        if (fd != e)
                                (void)close(fd);

        /* the bounding set needs CAP_SETPCAP: before the uid changes */
        for (int cap = 0; cap <= x->cap_last; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        child_fail(e, STEP_BOUNDING);
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                child_fail(e, STEP_CAPS);
        if (setgroups(j->n_groups, j->groups) < 0)
                child_fail(e, STEP_SETGROUPS);
        if (setresgid(j->gid, j->gid, j->gid) < 0)
                child_fail(e, STEP_SETGID);
        /* leaving uid 0 clears the permitted and effective sets (no SECBIT_KEEP_CAPS) */
        if (setresuid(j->uid, j->uid, j->uid) < 0)
                child_fail(e, STEP_SETUID);
        struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[2] = { { 0 } };
        if (syscall(SYS_capset, &hdr, data) < 0)
                child_fail(e, STEP_CAPS);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                child_fail(e, STEP_NO_NEW_PRIVS);

        char *envp[] = { (char *)JAIL_PATH_ENV, NULL };
        execve(x->exe, x->argv, envp);
        child_fail(e, STEP_EXEC);
}

/* argv0 itself when it has a '/', else the first executable PATH entry; malloc'd. */
static char *exe_find(const char *argv0) {
        if (strchr(argv0, '/'))
                return xstrdup(argv0);
        const char *path = getenv("PATH");
        _cleanup_free_ char *dirs = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
        char *save = NULL;
        for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                char *p = xasprintf("%s/%s", d, argv0);
                if (access(p, X_OK) == 0)
                        return p;
                free(p);
        }
        return NULL;
}

static int cap_last_read(void) {
        _cleanup_free_ char *s = NULL;
        int64_t v = 40;
        if (file_read("/proc/sys/kernel/cap_last_cap", &s, NULL) >= 0) {
                s[strcspn(s, "\n")] = 0;
                (void)parse_int64(s, 0, 63, &v);
        }
        return (int)v;
}

/* A close-on-exec pipe whose write end is not 0-2, which the child's dup2s overwrite. */
static int pipe_high(int fds[2]) {
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -1;
        int w = fcntl(fds[1], F_DUPFD_CLOEXEC, 10);
        if (w < 0) {
                close(fds[0]);
                close(fds[1]);
                fds[0] = fds[1] = -1;
                return -1;
        }
        close(fds[1]);
        fds[1] = w;
        return 0;
}

/* Waits for the child's report: 0 once exec closed the pipe, else the child's -errno. */
static int report_wait(pid_t pid, int rd, const char **ret_step) {
        report_t rep;
        ssize_t n;
        do
                n = read(rd, &rep, sizeof rep);
        while (n < 0 && errno == EINTR);
        if (n == 0)
                return 0;
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (n != (ssize_t)sizeof rep || rep.step < 0 || rep.step >= _STEP_MAX) {
                *ret_step = "child";
                return -EIO;
        }
        *ret_step = step_names[rep.step];
        return rep.err > 0 ? -rep.err : -EIO;
}

int jail_spawn(const jail_t *j, char *const argv[], int out_fd, pid_t *ret_pid, const char **ret_step) {
        static const char *dummy;
        if (!ret_step)
                ret_step = &dummy;
        *ret_step = "set-up";
        if (!j || !j->root || j->uid == 0 || !argv || !argv[0] || out_fd < 0)
                return -EINVAL;
        _cleanup_free_ char *exe = exe_find(argv[0]);
        if (!exe) {
                *ret_step = "exec";
                return -ENOENT;
        }
        spawn_ctx_t x = { .j = j, .argv = argv, .exe = exe, .cap_last = cap_last_read() };
        for (size_t i = 0; i < JAIL_CGROUPS_MAX; i++)
                x.cgroup_fds[i] = -1;
        int pipefd[2] = { -1, -1 };
        int r = 0;
        /* out_fd far from 0-2, so the child's dup2s cannot overwrite it before they use it */
        x.out_fd = fcntl(out_fd, F_DUPFD_CLOEXEC, 10);
        x.null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (x.out_fd < 0 || x.null_fd < 0 || pipe_high(pipefd) < 0)
                r = negative_errno();
        for (size_t i = 0; r >= 0 && i < j->n_cgroups; i++) {
                x.cgroup_fds[i] = open(j->cgroups[i], O_WRONLY | O_CLOEXEC);
                if (x.cgroup_fds[i] < 0) {
                        r = negative_errno();
                        *ret_step = "open cgroup.procs";
                }
        }
        pid_t pid = -1;
        if (r >= 0) {
                x.err_fd = pipefd[1];
                pid = fork();
                if (pid == 0)
                        spawn_child(&x);
                if (pid < 0) {
                        r = negative_errno();
                        *ret_step = "fork";
                }
        }
        if (pipefd[1] >= 0)
                close(pipefd[1]);
        if (r >= 0)
                r = report_wait(pid, pipefd[0], ret_step);
        if (pipefd[0] >= 0)
                close(pipefd[0]);
        for (size_t i = 0; i < JAIL_CGROUPS_MAX; i++)
                if (x.cgroup_fds[i] >= 0)
                        close(x.cgroup_fds[i]);
        if (x.out_fd >= 0)
                close(x.out_fd);
        if (x.null_fd >= 0)
                close(x.null_fd);
        if (r < 0)
                return r;
        *ret_pid = pid;
        return 0;
}

/* The child of jail_expose: into pid's mount namespace, then the operations there. */
static _noreturn_ void expose_child(const jail_t *j, int ns_fd, const int *trees, int e) {
        if (setns(ns_fd, CLONE_NEWNS) < 0)
                child_fail(e, STEP_SETNS);
        /* setns left us at the namespace's root, which is the jail's */
        for (size_t i = 0; i < j->n_ops; i++)
                op_run(&j->ops[i], j->ops[i].path, trees[i], e);
        _exit(0);
}

int jail_expose(const jail_t *j, pid_t pid, const char **ret_step) {
        static const char *dummy;
        if (!ret_step)
                ret_step = &dummy;
        *ret_step = "set-up";
        if (!j || pid <= 0)
                return -EINVAL;
        char ns[64];
        snprintf(ns, sizeof ns, "/proc/%d/ns/mnt", (int)pid);
        _cleanup_close_ int ns_fd = open(ns, O_RDONLY | O_CLOEXEC);
        if (ns_fd < 0) {
                *ret_step = "open the mount namespace";
                return negative_errno();
        }
        _cleanup_free_ int *trees = xcalloc(j->n_ops + 1, sizeof *trees);
        int r = 0;
        for (size_t i = 0; i < j->n_ops; i++) {
                trees[i] = -1;
                if (r < 0 || j->ops[i].kind != OP_BIND)
                        continue;
                /* a detached copy of the mount of the path, taken here where the path is seen */
                trees[i] = (int)syscall(SYS_open_tree, AT_FDCWD, j->ops[i].src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                if (trees[i] < 0) {
                        r = negative_errno();
                        *ret_step = "open_tree";
                }
        }
        int pipefd[2] = { -1, -1 };
        if (r >= 0 && pipe_high(pipefd) < 0)
                r = negative_errno();
        pid_t child = -1;
        if (r >= 0) {
                child = fork();
                if (child == 0)
                        expose_child(j, ns_fd, trees, pipefd[1]);
                if (child < 0) {
                        r = negative_errno();
                        *ret_step = "fork";
                }
        }
        if (pipefd[1] >= 0)
                close(pipefd[1]);
        if (r >= 0) {
                r = report_wait(child, pipefd[0], ret_step);
                if (r >= 0) {
                        /* the child exited 0 without a report: reap it */
                        int status;
                        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                                ;
                        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                                *ret_step = "child";
                                r = -EIO;
                        }
                }
        }
        if (pipefd[0] >= 0)
                close(pipefd[0]);
        for (size_t i = 0; i < j->n_ops; i++)
                if (trees[i] >= 0)
                        close(trees[i]);
        return r;
}
