/* Host-wide claims of numeric ids from a range (the uids of confined QEMU processes): one file
 * DIR/ID per claimed id, read and changed only under an flock of DIR/.lock. Every process of the
 * host that claims from DIR (a local cluster runs several nodes in one uid namespace) sees the
 * same claims, and they outlive the process that made them, so a restarted node finds its own.
 *
 * A claim names its holder with a key (one line of text: the node's data directory and the VM),
 * the process that took it (pid and start time, so a recycled pid is not taken for it) and the
 * directories to remove when it is released (the VM's cgroups). An id is "in use" while some
 * process of the host runs with it as its uid (seen in /proc; processes in another pid
 * namespace are not seen). A claim is stale when its owner is gone and its id is not in use; a
 * stale claim is taken over when no id is free.
 *
 * Functions return -errno; none logs. Thread- and process-safe through the flock. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct idclaim_space {
        const char *dir;
        uint32_t first, count;
} idclaim_space_t;

typedef struct idclaim {
        uint32_t id;
        char *key;
        char **dirs;      /* NULL-terminated: cgroup directories, removed on release
                           * (cgroup_dirs_remove) */
        pid_t owner;
        uint64_t owner_start; /* field 22 of /proc/PID/stat */
} idclaim_t;

void idclaim_clear(idclaim_t *c);
void idclaim_list_free(idclaim_t *v, size_t n);

/* Claims an id for key, a line of printable text, recording dirs (may be NULL). A claim of key
 * that exists already is taken over (same id) unless its id is in use (-EBUSY); else the lowest
 * free id, else the id of a stale claim (whose dirs are removed first). The owner is this
 * process. -EUSERS when every id is claimed and in use or owned; -EINVAL for a bad key. */
int idclaim_take(const idclaim_space_t *s, const char *key, char *const *dirs, uint32_t *ret_id);

/* Releases key's claim once its id is not in use: removes its dirs, then the claim. 0, also
 * when there is no such claim; -EBUSY while the id is in use or a directory is not empty (the
 * claim is then kept). */
int idclaim_release(const idclaim_space_t *s, const char *key);

/* Gives claim from to key to, with new dirs; *ret_id (may be NULL) is its id. -ENOENT without
 * it, -EEXIST when to has one. */
int idclaim_rename(const idclaim_space_t *s, const char *from, const char *to, char *const *dirs, uint32_t *ret_id);

/* Releases, as idclaim_release, every claim whose key starts with prefix and that keep (may be
 * NULL) does not want kept. keep is called under the lock. Returns how many were released. */
int idclaim_sweep(const idclaim_space_t *s, const char *prefix, bool (*keep)(const char *key, void *userdata),
                  void *userdata);

/* The claims whose key starts with prefix, sorted by id. */
int idclaim_list(const idclaim_space_t *s, const char *prefix, idclaim_t **ret, size_t *ret_n);

/* Whether a process of this host runs with uid (what "in use" means above). */
bool idclaim_uid_in_use(uid_t uid);
