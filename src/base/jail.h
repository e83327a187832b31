/* Starting a process confined, the way libvirt's DAC driver and Firecracker's jailer start a
 * VMM: a plan (jail_t) of what the process may see and who it is, built in the parent with
 * ordinary code, then carried out by a forked child with system calls only (the parent is
 * multithreaded: no allocation or lock between fork and exec) before it execs:
 *   - its own session, and the cgroups given (joined by writing "0" to their cgroup.procs, so it
 *     is counted there before it runs a single instruction of the program);
 *   - a private mount namespace whose root is an empty tmpfs (pivot_root) holding only what the
 *     plan binds there, at the paths it has outside: read-only unless asked, nosuid, nodev unless
 *     a device, and a /proc that shows no other uid's processes;
 *   - no supplementary groups but the ones given, its own gid and uid (setresgid, setresuid),
 *     an empty capability bounding set, no ambient, permitted, effective or inheritable
 *     capabilities, and no_new_privs;
 *   - stdin from /dev/null, stdout and stderr on the caller's fd, no other descriptor, default
 *     signal dispositions and an empty mask, and an environment of PATH only.
 * jail_expose adds binds to the namespace of a jailed process that runs already (a warm slot that
 * becomes some VM), through a child that joins its mount namespace (setns) and moves detached
 * mounts (open_tree, move_mount) there.
 *
 * This file is the privileged part of confinement and the only one: it needs root (CAP_SYS_ADMIN,
 * CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_SYS_CHROOT). Paths must be absolute; a symbolic link
 * among a path's components is reproduced in the jail and its target bound. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct jail jail_t;

#define JAIL_RW (1u << 0)       /* writable (default: read-only) */
#define JAIL_OPTIONAL (1u << 1) /* a path that does not exist is left out, not an error */
#define JAIL_DEVICE (1u << 2)   /* a device node: keeps device access (every other bind is nodev) */
#define JAIL_EXEC (1u << 3)     /* programs may run from it (every other bind is noexec) */

/* A new plan whose root will be a tmpfs mounted on root_dir (an existing empty directory that
 * every jail may share: the mount is private to the jail's namespace). root_dir may be NULL
 * for a plan used only with jail_expose. */
jail_t *jail_new(const char *root_dir);
jail_t *jail_free(jail_t *j);
static inline void jail_freep(jail_t **j) { jail_free(*j); }

/* Makes path (absolute) appear at the same path in the jail. Directories and files alike; the
 * mount point is created, with the directories above it. -ENOENT when path does not exist
 * (unless JAIL_OPTIONAL), -EINVAL when it is not absolute. */
int jail_bind(jail_t *j, const char *path, unsigned flags);
/* A /proc in the jail (hidepid=invisible where the kernel has it). */
void jail_proc(jail_t *j);
/* Who the process is: uid and gid (never 0), and its only supplementary groups (may be none). */
int jail_credentials(jail_t *j, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups);
/* A cgroup directory to join before exec (its cgroup.procs is opened at spawn). */
void jail_cgroup(jail_t *j, const char *dir);

/* Starts argv (argv[0] searched in PATH when it has no '/') in the jail with stdout and stderr
 * on out_fd. 0 and the pid (our child: the caller reaps it) once exec succeeded; else -errno of
 * the step that failed, named in *ret_step (a static string), and nothing is left running.
 * -EINVAL when the plan has no root or no credentials. */
int jail_spawn(const jail_t *j, char *const argv[], int out_fd, pid_t *ret_pid, const char **ret_step);

/* Adds the binds of j to the mount namespace of pid, a process started by jail_spawn, at the
 * same paths (j's root and credentials are not used). 0, or -errno and *ret_step. */
int jail_expose(const jail_t *j, pid_t pid, const char **ret_step);

/* Number of operations the plan holds (for tests), and whether it binds path. */
size_t jail_size(const jail_t *j);
bool jail_binds(const jail_t *j, const char *path, unsigned *ret_flags);
