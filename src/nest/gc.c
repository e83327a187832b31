/* Mark and sweep over the chunk store, concurrent with writers.
 *
 * Mark: with DIR/lock held exclusively (no write session open), read every manifest and collect
 * the chunks they name; note T0, "now" by the filesystem's own clock (mtime of DIR/gc.stamp,
 * touched). Then release DIR/lock and sweep: delete each chunk that is neither marked nor
 * modified at or after T0 - grace. DIR/gc.lock is held exclusively from before the mark until
 * the sweep ends.
 *
 * Why a chunk that a writer needs is never deleted. Writers work in sessions (txn.c) that hold
 * DIR/lock shared from before their first put or pin until their manifests are in place, and
 * put a manifest only in the session that put or pinned its chunks. Take a chunk C that a
 * session S relies on (wrote, or found present), for a manifest M that S puts.
 *   1. S ended before the mark took DIR/lock: M was in place, so C is marked (or M was deleted
 *      meanwhile, and then C is garbage indeed).
 *   2. S was open when the GC asked for DIR/lock: the GC waits for S to end -> case 1. Sessions
 *      that begin while the GC waits queue behind DIR/gc.turnstile, so the GC is not starved.
 *   3. S began after the mark released DIR/lock, i.e. after T0 and while gc.lock is held. S
 *      saw gc.lock busy at its start, so it is in "touch" mode: a chunk it writes gets mtime
 *      >= T0 (written after T0, same clock), and a chunk it finds present it touches (mtime :=
 *      now >= T0) under the shard directory's lock, which the sweep holds exclusively while it
 *      decides and unlinks in that shard. So either S touches first and the sweep sees a fresh
 *      mtime and keeps C, or the sweep unlinks first and S's touch fails with ENOENT and S
 *      writes C again. Either way C exists, with a fresh mtime, once S relies on it.
 *   4. S began after the sweep ended: no GC runs; a later GC is case 1 or 2.
 * A session that saw gc.lock free at its start cannot overlap a sweep: the next GC needs
 * DIR/lock exclusively first (case 2). Readers take no lock: a live manifest's chunks are
 * marked (case 1) or fresh (case 3), so a reader only loses chunks of a deleted manifest.
 *
 * Clock: T0 and the files' mtimes come from the same kernel clock, so there is no skew between
 * writer and GC processes; grace_s covers a wall-clock step back, and the sweep stops with
 * -ESTALE if the clock steps back by more than a second while it runs. Orphaned files in DIR/tmp
 * (crashed writers) follow the same rule: sessions alive after T0 only write fresh ones.
 * Quarantined chunks are left for a human. */
#include "nest/gc.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "base/util.h"
#include "nest/manifest.h"
#include "nest/store-internal.h"

/* Waits up to wait_ms for flock(LOCK_EX) on DIR/rel; -EBUSY after. */
static int flock_ex_wait(nest_store_t *s, const char *rel, int64_t wait_ms, int *ret_fd) {
        int64_t deadline = time_now_ms() + MAX(wait_ms, (int64_t)0), pause = 1;
        for (;;) {
                int r = store_flock(s, rel, LOCK_EX | LOCK_NB, ret_fd);
                if (r != -EWOULDBLOCK)
                        return r;
                if (time_now_ms() >= deadline)
                        return -EBUSY;
                time_sleep_ms(pause);
                pause = MIN(pause * 2, (int64_t)50);
        }
}

/* T0: "now" as the filesystem's clock stamps files. */
static int fs_now(nest_store_t *s, struct timespec *ret) {
        if (utimensat(s->dirfd, STORE_GC_STAMP, NULL, 0) < 0)
                return negative_errno();
        struct stat st;
        if (fstatat(s->dirfd, STORE_GC_STAMP, &st, 0) < 0)
                return negative_errno();
        *ret = st.st_mtim;
        return 0;
}

static bool older_than(const struct timespec *t, const struct timespec *cutoff) {
        return t->tv_sec < cutoff->tv_sec || (t->tv_sec == cutoff->tv_sec && t->tv_nsec < cutoff->tv_nsec);
}

/* Wall clock minus monotonic clock, in ms: constant unless the wall clock is stepped. */
static int64_t clock_offset_ms(void) { return time_wall_ms() - time_now_ms(); }

static int mark(nest_store_t *s, nest_idset_t *live, nest_gc_stats_t *st) {
        _cleanup_free_ nest_manifest_key_t *keys = NULL;
        size_t n = 0;
        int r = nest_manifest_list(s, NULL, &keys, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(nest_manifest_freep) nest_manifest_t *m = NULL;
                r = nest_manifest_get(s, keys[i].vm, keys[i].version, keys[i].file, &m);
                if (r == -ENOENT)
                        continue; /* deleted since the listing */
                if (r == -EINVAL || r == -EFBIG || r == -EPROTONOSUPPORT)
                        return -EBADMSG;
                if (r < 0)
                        return r;
                st->manifests++;
                for (size_t k = 0; k < m->n_refs; k++)
                        if (!m->refs[k].zero && nest_idset_add(live, &m->refs[k].id))
                                st->chunks_live++;
        }
        return 0;
}

static void dir_closep(DIR **d) {
        if (*d)
                closedir(*d);
}

static int sweep_shard(nest_store_t *s, unsigned shard, const nest_idset_t *live, const struct timespec *cutoff,
                       bool dry_run, nest_gc_stats_t *st) {
        char rel[16];
        store_shard_relpath(shard, rel);
        /* Exclusive: no session touches or publishes a chunk of this shard while we decide. */
        _cleanup_close_ int lock = -1;
        int r = store_flock(s, rel, LOCK_EX, &lock);
        if (r < 0)
                return r;
        int fd = openat(s->dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        _cleanup_(dir_closep) DIR *d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                close(fd);
                return r;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                nest_chunk_id_t id;
                if (store_chunk_name_parse(shard, de->d_name, &id) < 0 || nest_idset_contains(live, &id))
                        continue;
                struct stat fst;
                if (fstatat(fd, de->d_name, &fst, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* quarantined by a reader meanwhile */
                if (!older_than(&fst.st_mtim, cutoff)) {
                        st->chunks_kept++;
                        continue;
                }
                if (!dry_run && unlinkat(fd, de->d_name, 0) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return negative_errno();
                }
                st->chunks_removed++;
                st->bytes_removed += (uint64_t)fst.st_size;
        }
        return 0;
}

static int sweep_tmp(nest_store_t *s, const struct timespec *cutoff, bool dry_run, nest_gc_stats_t *st) {
        int fd = openat(s->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        _cleanup_(dir_closep) DIR *d = fdopendir(fd);
        if (!d) {
                int r = negative_errno();
                close(fd);
                return r;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                struct stat fst;
                if (de->d_name[0] == '.' || fstatat(fd, de->d_name, &fst, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(fst.st_mode) || !older_than(&fst.st_mtim, cutoff))
                        continue;
                if (!dry_run && unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT)
                        return negative_errno();
                st->tmp_removed++;
        }
        return 0;
}

static bool keep_live(void *userdata, const nest_chunk_id_t *id) { return nest_idset_contains(userdata, id); }

int nest_cache_evict(nest_store_t *s, uint64_t target, int64_t lock_wait_ms, nest_seg_evict_stats_t *ret_stats) {
        if (!s->seg)
                return -EINVAL;
        _cleanup_close_ int turnstile = -1, lock = -1;
        int r = store_flock(s, STORE_GC_TURNSTILE, LOCK_EX, &turnstile);
        if (r < 0)
                return r;
        r = flock_ex_wait(s, STORE_LOCK, lock_wait_ms, &lock);
        if (r < 0)
                return r;
        closep(&turnstile);
        turnstile = -1;
        nest_gc_stats_t st = { 0 };
        _cleanup_(nest_idset_freep) nest_idset_t *live = nest_idset_new();
        r = mark(s, live, &st);
        if (r < 0)
                return r;
        return nest_seg_evict(s->seg, target, keep_live, live, ret_stats);
}

int nest_gc(nest_store_t *s, const nest_gc_options_t *opts, nest_gc_stats_t *ret_stats) {
        nest_gc_options_t o = opts ? *opts : NEST_GC_OPTIONS_DEFAULT;
        if (o.grace_s < 0)
                return -EINVAL;
        if (s->seg) {
                if (o.dry_run || o.after_mark)
                        return -EOPNOTSUPP;
                nest_seg_evict_stats_t es = { 0 };
                int r = nest_cache_evict(s, 0, o.lock_wait_ms, &es);
                if (r >= 0 && ret_stats)
                        *ret_stats = (nest_gc_stats_t){ .chunks_removed = es.chunks_removed,
                                                        .bytes_removed = es.bytes_removed };
                return r;
        }
        nest_gc_stats_t st = { 0 };
        _cleanup_close_ int gc_lock = -1, turnstile = -1, lock = -1;
        int r = store_flock(s, STORE_GC_LOCK, LOCK_EX | LOCK_NB, &gc_lock);
        if (r == -EWOULDBLOCK)
                return -EBUSY;
        if (r < 0)
                return r;
        int64_t t_mark = time_now_ms();
        r = store_flock(s, STORE_GC_TURNSTILE, LOCK_EX, &turnstile);
        if (r < 0)
                return r;
        r = flock_ex_wait(s, STORE_LOCK, o.lock_wait_ms, &lock);
        if (r < 0)
                return r;
        closep(&turnstile);
        turnstile = -1;

        struct timespec t0;
        r = fs_now(s, &t0);
        if (r < 0)
                return r;
        struct timespec cutoff = { .tv_sec = t0.tv_sec - o.grace_s, .tv_nsec = t0.tv_nsec };
        int64_t offset = clock_offset_ms();
        _cleanup_(nest_idset_freep) nest_idset_t *live = nest_idset_new();
        r = mark(s, live, &st);
        if (r < 0)
                return r;
        closep(&lock); /* sessions may begin again, in touch mode */
        lock = -1;
        st.mark_ms = time_now_ms() - t_mark;
        if (o.after_mark)
                o.after_mark(o.userdata);

        int64_t t_sweep = time_now_ms();
        for (unsigned shard = 0; shard < 256; shard++) {
                if (clock_offset_ms() < offset - 1000)
                        return -ESTALE;
                r = sweep_shard(s, shard, live, &cutoff, o.dry_run, &st);
                if (r < 0)
                        return r;
        }
        r = sweep_tmp(s, &cutoff, o.dry_run, &st);
        if (r < 0)
                return r;
        st.sweep_ms = time_now_ms() - t_sweep;
        if (ret_stats)
                *ret_stats = st;
        return 0;
}
