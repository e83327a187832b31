/* Unit tests for src/nest: chunking (stable boundaries, zero chunks, streaming), the chunk store
 * (idempotent, atomic and batched puts, verification, quarantine and healing), manifests
 * (JSON from untrusted input, storage, verify, missing chunks), import/export round trips, GC
 * (what it keeps and removes, and its races with writers), and deduplication across twenty VM
 * disks made from one image. Random data comes from a seeded generator, so runs repeat. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "base/util.h"
#include "nest/chunk-store.h"
#include "nest/txn.h"
#include "nest/chunker.h"
#include "nest/gc.h"
#include "nest/import.h"
#include "nest/manifest.h"
#include "tap.h"

#define MIB (1024u * 1024)

static uint64_t rng_next(uint64_t *state) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static void fill_random(void *buf, size_t len, uint64_t seed) {
        uint8_t *p = buf;
        uint64_t st = seed;
        for (size_t i = 0; i < len; i += 8) {
                uint64_t v = rng_next(&st);
                memcpy(p + i, &v, MIN((size_t)8, len - i));
        }
}

static void *random_buffer(size_t len, uint64_t seed) {
        void *p = xcalloc(1, len);
        fill_random(p, len, seed);
        return p;
}

static char *make_tmpdir(const char *what) {
        char *dir = xasprintf("/tmp/vmx-test-nest-%s-XXXXXX", what);
        if (!mkdtemp(dir))
                abort();
        return dir;
}

static size_t count_dir_entries(const char *path) {
        DIR *d = opendir(path);
        if (!d)
                return 0;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static char *chunk_path(nest_store_t *s, const nest_chunk_id_t *id) {
        char hex[NEST_CHUNK_ID_HEX_SIZE];
        nest_chunk_id_to_hex(id, hex);
        return xasprintf("%s/chunks/%.2s/%s", nest_store_dir(s), hex, hex + 2);
}

/* Sets every file's mtime under dir (recursively) seconds into the past: "written long ago". */
static void age_tree(const char *dir, int64_t seconds) {
        DIR *d = opendir(dir);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *p = xasprintf("%s/%s", dir, de->d_name);
                struct stat st;
                if (lstat(p, &st) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        age_tree(p, seconds);
                        continue;
                }
                struct timespec ts[2] = { { .tv_sec = time(NULL) - seconds }, { .tv_sec = time(NULL) - seconds } };
                utimensat(AT_FDCWD, p, ts, 0);
        }
        closedir(d);
}

/* ---- chunk ids ---- */

static void test_chunk_id(void) {
        nest_chunk_id_t id, back;
        nest_chunk_id_hash("hello", 5, &id);
        char hex[NEST_CHUNK_ID_HEX_SIZE];
        nest_chunk_id_to_hex(&id, hex);
        CHECK_STREQ(hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        CHECK(nest_chunk_id_from_hex(hex, &back) == 0 && nest_chunk_id_equal(&id, &back));
        CHECK(nest_chunk_id_from_hex(NULL, &back) == -EINVAL);
        CHECK(nest_chunk_id_from_hex("", &back) == -EINVAL);
        CHECK(nest_chunk_id_from_hex("2cf24d", &back) == -EINVAL);
        CHECK(nest_chunk_id_from_hex("2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824", &back) == -EINVAL);
        CHECK(nest_chunk_id_from_hex("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b98240", &back) == -EINVAL);
        CHECK(nest_chunk_id_from_hex("zcf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", &back) == -EINVAL);

        _cleanup_(nest_idset_freep) nest_idset_t *set = nest_idset_new();
        bool ok = true;
        for (uint64_t i = 0; i < 5000; i++) {
                nest_chunk_id_hash(&i, sizeof i, &id);
                ok = ok && nest_idset_add(set, &id) && !nest_idset_add(set, &id);
        }
        CHECK(ok && nest_idset_size(set) == 5000);
        uint64_t i = 4999;
        nest_chunk_id_hash(&i, sizeof i, &id);
        CHECK(nest_idset_contains(set, &id));
        i = 5000;
        nest_chunk_id_hash(&i, sizeof i, &id);
        CHECK(!nest_idset_contains(set, &id));
}

/* ---- chunker ---- */

typedef struct cut_list {
        size_t n, cap;
        uint64_t *off; /* start offset of each chunk */
        uint64_t *len;
        nest_chunk_id_t *id;
        size_t zero;
        uint64_t pos;
} cut_list_t;

static int collect_cut(const void *data, size_t len, bool zero, void *userdata) {
        cut_list_t *l = userdata;
        if (l->n == l->cap) {
                l->cap = MAX(l->cap * 2, (size_t)64);
                l->off = realloc(l->off, l->cap * sizeof *l->off);
                l->len = realloc(l->len, l->cap * sizeof *l->len);
                l->id = realloc(l->id, l->cap * sizeof *l->id);
                if (!l->off || !l->len || !l->id)
                        abort();
        }
        l->off[l->n] = l->pos;
        l->len[l->n] = len;
        nest_chunk_id_hash(data, len, &l->id[l->n]);
        l->n++;
        l->pos += len;
        if (zero)
                l->zero++;
        return 0;
}

static void cut_list_free(cut_list_t *l) {
        free(l->off);
        free(l->len);
        free(l->id);
}

/* Chunks buf, fed in pieces of `step` bytes (0: all at once). */
static cut_list_t chunk_buffer(const uint8_t *buf, size_t len, size_t step) {
        cut_list_t l = { 0 };
        nest_chunker_t *c = nest_chunker_new(collect_cut, &l);
        if (step == 0)
                step = len ? len : 1;
        for (size_t i = 0; i < len; i += step)
                nest_chunker_feed(c, buf + i, MIN(step, len - i));
        nest_chunker_finish(c);
        nest_chunker_free(c);
        return l;
}

static bool cut_lists_equal(const cut_list_t *a, const cut_list_t *b) {
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (a->len[i] != b->len[i] || !nest_chunk_id_equal(&a->id[i], &b->id[i]))
                        return false;
        return true;
}

static bool cut_list_has(const cut_list_t *l, const nest_chunk_id_t *id) {
        for (size_t i = 0; i < l->n; i++)
                if (nest_chunk_id_equal(&l->id[i], id))
                        return true;
        return false;
}

static void test_chunker_sizes_and_streaming(void) {
        size_t len = 8 * MIB + 12345;
        _cleanup_free_ uint8_t *buf = random_buffer(len, 1);
        cut_list_t whole = chunk_buffer(buf, len, 0);
        bool sizes_ok = true;
        uint64_t total = 0;
        for (size_t i = 0; i < whole.n; i++) {
                total += whole.len[i];
                if (whole.len[i] > NEST_CHUNK_MAX || (i + 1 < whole.n && whole.len[i] < NEST_CHUNK_MIN))
                        sizes_ok = false;
        }
        CHECK(sizes_ok);
        CHECK(total == len);
        /* average within a factor of 1.5 of the target on random data */
        CHECK(whole.n > 0 && len / whole.n > NEST_CHUNK_AVG * 2 / 3 && len / whole.n < NEST_CHUNK_AVG * 3 / 2);
        CHECK(whole.zero == 0);

        /* the same boundaries whatever the feed sizes: a stream is a stream */
        static const size_t steps[] = { 1000, 4096, 65537, NEST_CHUNK_MAX, 3 * MIB };
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                cut_list_t l = chunk_buffer(buf, len, steps[i]);
                CHECK(cut_lists_equal(&whole, &l));
                cut_list_free(&l);
        }
        cut_list_t bytewise = chunk_buffer(buf, 300 * 1024, 1);
        cut_list_t once = chunk_buffer(buf, 300 * 1024, 0);
        CHECK(cut_lists_equal(&bytewise, &once));
        cut_list_free(&bytewise);
        cut_list_free(&once);

        /* the pure cutter agrees with the streaming chunker */
        CHECK(nest_chunker_cut(buf, len) == whole.len[0]);
        CHECK(nest_chunker_cut(buf, 100) == 100);
        cut_list_free(&whole);

        /* empty stream: no chunk; tiny stream: one short chunk */
        cut_list_t empty = chunk_buffer(buf, 0, 0);
        CHECK(empty.n == 0);
        cut_list_free(&empty);
        cut_list_t tiny = chunk_buffer(buf, 10, 0);
        CHECK(tiny.n == 1 && tiny.len[0] == 10);
        cut_list_free(&tiny);

        /* a chunker can be reused after finish */
        cut_list_t l = { 0 };
        nest_chunker_t *c = nest_chunker_new(collect_cut, &l);
        CHECK(nest_chunker_feed(c, buf, MIB) == 0 && nest_chunker_finish(c) == 0);
        size_t first = l.n;
        CHECK(nest_chunker_offset(c) == 0);
        CHECK(nest_chunker_feed(c, buf, MIB) == 0 && nest_chunker_finish(c) == 0);
        CHECK(l.n == 2 * first && nest_chunk_id_equal(&l.id[0], &l.id[first]));
        nest_chunker_free(c);
        cut_list_free(&l);
}

static int failing_cb(const void *data, size_t len, bool zero, void *userdata) {
        int *calls = userdata;
        return ++*calls == 2 ? -ENOSPC : 0;
}

static void test_chunker_callback_error(void) {
        _cleanup_free_ uint8_t *buf = random_buffer(4 * MIB, 2);
        int calls = 0;
        nest_chunker_t *c = nest_chunker_new(failing_cb, &calls);
        CHECK(nest_chunker_feed(c, buf, 4 * MIB) == -ENOSPC);
        CHECK(nest_chunker_feed(c, buf, 10) == -ENOSPC);
        CHECK(nest_chunker_finish(c) == -ENOSPC);
        CHECK(calls == 2);
        nest_chunker_free(c);
}

/* An edit in the middle changes the chunks around it only. */
static void test_chunker_insertion(void) {
        size_t len = 8 * MIB, at = 4 * MIB + 777;
        _cleanup_free_ uint8_t *a = random_buffer(len, 3);
        /* b = a with 100 bytes inserted at `at` */
        _cleanup_free_ uint8_t *b = xcalloc(1, len + 100);
        memcpy(b, a, at);
        fill_random(b + at, 100, 99);
        memcpy(b + at + 100, a + at, len - at);
        cut_list_t la = chunk_buffer(a, len, 0), lb = chunk_buffer(b, len + 100, 0);
        size_t shared = 0, after = 0, after_shared = 0;
        for (size_t i = 0; i < lb.n; i++) {
                bool s = cut_list_has(&la, &lb.id[i]);
                shared += s;
                if (lb.off[i] > at + 100) {
                        after++;
                        after_shared += s;
                }
        }
        /* at most two chunks differ: the one holding the insertion, maybe its neighbour */
        CHECK(lb.n - shared <= 2);
        CHECK(after > 20 && after - after_shared <= 1);
        printf("# insertion of 100 bytes: %zu of %zu chunks shared, %zu of %zu after the edit\n", shared, lb.n,
               after_shared, after);

        /* deletion of 5000 bytes */
        memcpy(b, a, at);
        memcpy(b + at, a + at + 5000, len - at - 5000);
        cut_list_t lc = chunk_buffer(b, len - 5000, 0);
        shared = 0;
        for (size_t i = 0; i < lc.n; i++)
                shared += cut_list_has(&la, &lc.id[i]);
        CHECK(lc.n - shared <= 2);
        cut_list_free(&la);
        cut_list_free(&lb);
        cut_list_free(&lc);
}

static void test_chunker_zero_runs(void) {
        size_t len = 3 * MIB;
        _cleanup_free_ uint8_t *buf = xcalloc(1, len);
        fill_random(buf, 100 * 1024, 4); /* 100 KiB data, then 2.9 MiB of zeros */
        cut_list_t l = chunk_buffer(buf, len, 0);
        CHECK(l.zero >= 10);
        /* zero chunks are cut at MAX (the gear hash of a zero run never hits the masks) */
        size_t max_zero = 0;
        for (size_t i = 0; i < l.n; i++)
                if (nest_buffer_is_zero(buf + l.off[i], l.len[i]))
                        max_zero = MAX(max_zero, (size_t)l.len[i]);
        CHECK(max_zero == NEST_CHUNK_MAX);
        cut_list_free(&l);
        CHECK(nest_buffer_is_zero(buf + 200 * 1024, 1000));
        CHECK(!nest_buffer_is_zero(buf, 1000));
        CHECK(nest_buffer_is_zero(buf, 0));
        buf[len - 1] = 1;
        CHECK(!nest_buffer_is_zero(buf + MIB, len - MIB));
}

/* ---- chunk store ---- */

static void test_store_put_get(void) {
        _cleanup_free_ char *dir = make_tmpdir("store");
        nest_store_t *s = NULL;
        CHECK(nest_store_open(dir, &s) == 0);
        nest_txn_t *t = NULL;
        CHECK(nest_txn_begin(s, 0, &t) == 0);

        size_t len = 100 * 1024;
        _cleanup_free_ uint8_t *rnd = random_buffer(len, 5);
        nest_chunk_id_t id, id2;
        size_t stored = 0;
        CHECK(nest_chunk_put(t, rnd, len, &id, &stored) == 1);
        CHECK(stored == len + 8); /* random data: stored raw, 8-byte header */
        _cleanup_free_ char *path = chunk_path(s, &id);
        struct stat st1, st2;
        CHECK(stat(path, &st1) == 0 && (size_t)st1.st_size == len + 8);
        nest_store_counters_t c1, c2;
        nest_store_counters(s, &c1);
        /* idempotent: present -> no write at all */
        CHECK(nest_chunk_put(t, rnd, len, &id2, &stored) == 0 && stored == 0 && nest_chunk_id_equal(&id, &id2));
        nest_store_counters(s, &c2);
        CHECK(c2.syncs == c1.syncs);
        CHECK(stat(path, &st2) == 0 && st2.st_ino == st1.st_ino && st2.st_mtim.tv_nsec == st1.st_mtim.tv_nsec);
        CHECK(nest_chunk_put_expect(t, &id, rnd, len, &stored) == 0);
        CHECK(nest_chunk_has(s, &id));

        void *data = NULL;
        size_t got = 0;
        CHECK(nest_chunk_get(s, &id, &data, &got) == 0 && got == len && memcmp(data, rnd, len) == 0);
        free(data);
        uint8_t small[1000];
        CHECK(nest_chunk_read(s, &id, small, sizeof small, &got) == -ENOBUFS);

        /* compressible data is stored compressed, and reads back the same */
        _cleanup_free_ char *text = xcalloc(1, len);
        for (size_t i = 0; i < len; i++)
                text[i] = "vmatrix nest "[i % 13];
        CHECK(nest_chunk_put(t, text, len, &id2, &stored) == 1 && stored < len / 10);
        size_t text_stored = stored;
        CHECK(nest_chunk_get(s, &id2, &data, &got) == 0 && got == len && memcmp(data, text, len) == 0);
        free(data);

        /* bad arguments and expectations */
        CHECK(nest_chunk_put(t, rnd, 0, NULL, NULL) == -EINVAL);
        CHECK(nest_chunk_put(t, rnd, NEST_STORE_CHUNK_MAX + 1, NULL, NULL) == -EINVAL);
        CHECK(nest_chunk_put_expect(t, &id2, rnd, len, NULL) == -EBADMSG);
        nest_chunk_id_t absent;
        nest_chunk_id_hash("absent", 6, &absent);
        CHECK(nest_chunk_get(s, &absent, &data, &got) == -ENOENT);
        CHECK(!nest_chunk_has(s, &absent));
        CHECK(nest_chunk_pin(t, &absent) == 0 && nest_chunk_pin(t, &id) == 1);

        nest_store_stats_t st;
        CHECK(nest_store_stats(s, &st) == 0 && st.chunks == 2 && st.stored_bytes == len + 8 + text_stored);
        CHECK(nest_txn_commit(t) == 0);
        CHECK(nest_chunk_put(t, rnd, len, NULL, NULL) == -EINVAL); /* after commit */
        CHECK(nest_txn_commit(t) == -EINVAL);
        nest_txn_free(t);
        CHECK(nest_txn_begin(s, 0x80, &t) == -EINVAL);
        nest_store_free(s);

        /* reopen: same store; a store of another format is refused */
        CHECK(nest_store_open(dir, &s) == 0 && nest_chunk_has(s, &id));
        nest_store_free(s);
        _cleanup_free_ char *fmt = xasprintf("%s/format", dir);
        CHECK(file_write_atomic(fmt, "vmatrix-nest 9\n", 15) == 0);
        CHECK(nest_store_open(dir, &s) == -EPROTONOSUPPORT);
        CHECK(nest_store_open("", &s) == -EINVAL);
        rm_rf(dir);
}

static void test_store_batch(void) {
        _cleanup_free_ char *dir = make_tmpdir("batch");
        nest_store_t *s = NULL;
        CHECK(nest_store_open(dir, &s) == 0);
        enum { N = 1000, LEN = 2048 };
        _cleanup_free_ uint8_t *buf = random_buffer((size_t)N * LEN, 6);
        _cleanup_free_ nest_chunk_id_t *ids = xcalloc(N, sizeof *ids);

        /* an aborted batch leaves nothing, not even tmp files */
        nest_txn_t *t = NULL;
        CHECK(nest_txn_begin(s, NEST_TXN_BATCH, &t) == 0);
        for (size_t i = 0; i < 10; i++)
                CHECK(nest_chunk_put(t, buf + i * LEN, LEN, &ids[i], NULL) == 1);
        CHECK(!nest_chunk_has(s, &ids[0]));                       /* invisible until commit */
        CHECK(nest_chunk_put(t, buf, LEN, NULL, NULL) == 0);       /* but known to the batch */
        CHECK(nest_chunk_pin(t, &ids[1]) == 1);
        nest_txn_free(t);
        CHECK(!nest_chunk_has(s, &ids[0]));
        _cleanup_free_ char *tmp = xasprintf("%s/tmp", dir);
        CHECK(count_dir_entries(tmp) == 0);

        /* N chunks: a handful of syncs, not 2N */
        nest_store_counters_t c1, c2;
        nest_store_counters(s, &c1);
        CHECK(nest_txn_begin(s, NEST_TXN_BATCH, &t) == 0);
        int fails = 0;
        for (size_t i = 0; i < N; i++)
                fails += nest_chunk_put(t, buf + i * LEN, LEN, &ids[i], NULL) != 1;
        CHECK(fails == 0);
        _cleanup_(nest_manifest_freep) nest_manifest_t *m = nest_manifest_new();
        for (size_t i = 0; i < N; i++)
                nest_manifest_append(m, &ids[i], LEN);
        CHECK(nest_manifest_put(t, "batch", 1, "disk", m) == 0);
        _cleanup_free_ char *mpath = xasprintf("%s/manifests/batch/1/disk.json", dir);
        CHECK(!file_exists(mpath));
        CHECK(nest_txn_commit(t) == 0);
        nest_txn_free(t);
        nest_store_counters(s, &c2);
        CHECK(c2.syncs - c1.syncs <= 3);
        printf("# batch of %d chunks: %llu syncs\n", N, (unsigned long long)(c2.syncs - c1.syncs));
        CHECK(file_exists(mpath));
        bool all = true;
        for (size_t i = 0; i < N; i++)
                all = all && nest_chunk_has(s, &ids[i]);
        CHECK(all);
        CHECK(nest_manifest_verify(s, m, NEST_VERIFY_DEEP) == 0);
        CHECK(count_dir_entries(tmp) == 0);

        /* a batch larger than NEST_TXN_BATCH_MAX flushes itself on the way */
        _cleanup_free_ uint8_t *more = random_buffer((size_t)(NEST_TXN_BATCH_MAX + 10) * 64, 7);
        CHECK(nest_txn_begin(s, NEST_TXN_BATCH, &t) == 0);
        nest_chunk_id_t first;
        fails = 0;
        for (size_t i = 0; i < NEST_TXN_BATCH_MAX + 10; i++)
                fails += nest_chunk_put(t, more + i * 64, 64, i ? NULL : &first, NULL) != 1;
        CHECK(fails == 0);
        CHECK(nest_chunk_has(s, &first));
        CHECK(nest_txn_commit(t) == 0);
        nest_txn_free(t);
        nest_store_free(s);
        rm_rf(dir);
}

/* A writer killed between writing a chunk and renaming it leaves only a tmp file. */
static void test_store_crash(void) {
        _cleanup_free_ char *dir = make_tmpdir("crash");
        nest_store_t *s = NULL;
        CHECK(nest_store_open(dir, &s) == 0);
        _cleanup_free_ uint8_t *buf = random_buffer(70000, 8);
        nest_chunk_id_t id;
        nest_chunk_id_hash(buf, 70000, &id);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                setenv("VMATRIX_CRASH_AT", "nest-chunk-rename", 1);
                nest_txn_t *t = NULL;
                if (nest_txn_begin(s, 0, &t) == 0)
                        nest_chunk_put(t, buf, 70000, NULL, NULL);
                _exit(0);
        }
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        CHECK(!nest_chunk_has(s, &id));
        _cleanup_free_ char *tmp = xasprintf("%s/tmp", dir);
        CHECK(count_dir_entries(tmp) == 1);
        /* the dead writer's session lock went with it: GC runs, and removes the orphan once old */
        nest_gc_options_t o = { .grace_s = 600, .lock_wait_ms = 1000 };
        nest_gc_stats_t gs;
        CHECK(nest_gc(s, &o, &gs) == 0 && gs.tmp_removed == 0);
        age_tree(tmp, 3600);
        CHECK(nest_gc(s, &o, &gs) == 0 && gs.tmp_removed == 1);
        CHECK(count_dir_entries(tmp) == 0);
        nest_store_free(s);
        rm_rf(dir);
}

static void flip_byte(const char *path, off_t at) {
        int fd = open(path, O_RDWR);
        uint8_t b = 0;
        if (fd < 0 || pread(fd, &b, 1, at) != 1)
                abort();
        b ^= 0x55;
        if (pwrite(fd, &b, 1, at) != 1)
                abort();
        close(fd);
}

static void test_store_corruption(void) {
        _cleanup_free_ char *dir = make_tmpdir("corrupt");
        nest_store_t *s = NULL;
        CHECK(nest_store_open(dir, &s) == 0);
        _cleanup_free_ char *qdir = xasprintf("%s/quarantine", dir);

        /* a file of three chunks, the middle one to be damaged */
        size_t len = 3 * NEST_CHUNK_MAX;
        _cleanup_free_ uint8_t *buf = random_buffer(len, 9);
        nest_txn_t *t = NULL;
        CHECK(nest_txn_begin(s, 0, &t) == 0);
        _cleanup_(nest_manifest_freep) nest_manifest_t *m = NULL;
        nest_import_t *imp = nest_import_new(t);
        CHECK(nest_import_feed(imp, buf, len) == 0);
        CHECK(nest_import_finish(imp, &m, NULL) == 0);
        nest_import_free(imp);
        CHECK(m && m->n_refs >= 3);
        CHECK(nest_manifest_put(t, "vm1", 1, "disk", m) == 0);
        const nest_chunk_ref_t *victim = &m->refs[1];
        _cleanup_free_ char *path = chunk_path(s, &victim->id);
        uint64_t victim_off = m->refs[0].len;

        /* flipped payload byte */
        flip_byte(path, 1000);
        void *data = NULL;
        size_t got = 0;
        CHECK(nest_chunk_get(s, &victim->id, &data, &got) == -EBADMSG);
        CHECK(!file_exists(path));
        CHECK(count_dir_entries(qdir) == 1);
        nest_store_counters_t c;
        nest_store_counters(s, &c);
        CHECK(c.quarantined == 1);
        CHECK(nest_chunk_get(s, &victim->id, &data, &got) == -ENOENT); /* never returned */
        CHECK(nest_manifest_verify(s, m, 0) == -ENOENT);
        _cleanup_free_ char *out = xasprintf("%s/out", dir);
        CHECK(nest_file_export_path(s, m, out) == -ENOENT);
        CHECK(!file_exists(out)); /* failed cleanly: no partial file */

        /* a re-put heals it */
        CHECK(nest_chunk_put(t, buf + victim_off, victim->len, NULL, NULL) == 1);
        CHECK(nest_chunk_get(s, &victim->id, &data, &got) == 0 && got == victim->len);
        free(data);
        CHECK(nest_manifest_verify(s, m, NEST_VERIFY_DEEP) == 0);

        /* corruption found by export (-EBADMSG), then by deep verify */
        flip_byte(path, 20);
        CHECK(nest_manifest_verify(s, m, 0) == 0); /* existence only */
        CHECK(nest_file_export_path(s, m, out) == -EBADMSG);
        CHECK(!file_exists(out));
        CHECK(nest_chunk_put(t, buf + victim_off, victim->len, NULL, NULL) == 1);
        flip_byte(path, 3); /* header: encoding byte */
        CHECK(nest_manifest_verify(s, m, NEST_VERIFY_DEEP) == -EBADMSG);
        CHECK(count_dir_entries(qdir) == 3);
        CHECK(nest_chunk_put(t, buf + victim_off, victim->len, NULL, NULL) == 1);
        CHECK(nest_file_export_path(s, m, out) == 0);

        /* truncated chunk, empty chunk, a symlink or directory under a chunk's name */
        CHECK(truncate(path, 5000) == 0);
        CHECK(nest_chunk_get(s, &victim->id, &data, &got) == -EBADMSG && !file_exists(path));
        CHECK(nest_chunk_put(t, buf + victim_off, victim->len, NULL, NULL) == 1);
        CHECK(truncate(path, 0) == 0);
        CHECK(nest_chunk_get(s, &victim->id, &data, &got) == -EBADMSG && !file_exists(path));
        CHECK(symlink("/etc/passwd", path) == 0);
        CHECK(nest_chunk_get(s, &victim->id, &data, &got) == -EBADMSG);
        unlink(path);
        CHECK(mkdir(path, 0755) == 0);
        CHECK(nest_chunk_get(s, &victim->id, &data, &got) == -EBADMSG && !file_exists(path));

        /* a compressed chunk with a damaged zstd frame */
        _cleanup_free_ char *text = xcalloc(1, 200000);
        for (size_t i = 0; i < 200000; i++)
                text[i] = (char)('a' + (i * 7 + i / 1000) % 26);
        nest_chunk_id_t zid;
        size_t stored = 0;
        CHECK(nest_chunk_put(t, text, 200000, &zid, &stored) == 1 && stored < 100000);
        _cleanup_free_ char *zpath = chunk_path(s, &zid);
        flip_byte(zpath, (off_t)stored / 2);
        CHECK(nest_chunk_get(s, &zid, &data, &got) == -EBADMSG);
        CHECK(nest_chunk_put(t, text, 200000, &zid, &stored) == 1);
        CHECK(truncate(zpath, (off_t)stored - 1) == 0);
        CHECK(nest_chunk_get(s, &zid, &data, &got) == -EBADMSG);
        CHECK(nest_txn_commit(t) == 0);
        nest_txn_free(t);
        nest_store_free(s);
        rm_rf(dir);
}

/* ---- manifests ---- */

static void test_manifest_json(void) {
        _cleanup_(nest_manifest_freep) nest_manifest_t *m = nest_manifest_new();
        nest_chunk_id_t a, b;
        nest_chunk_id_hash("a", 1, &a);
        nest_chunk_id_hash("b", 1, &b);
        CHECK(nest_manifest_append(m, &a, 1000) == 0);
        CHECK(nest_manifest_append(m, NULL, 500) == 0);
        CHECK(nest_manifest_append(m, NULL, 700) == 0); /* merged with the zero extent before */
        CHECK(nest_manifest_append(m, &b, 10) == 0);
        CHECK(nest_manifest_append(m, &a, 1000) == 0);
        CHECK(m->n_refs == 4 && m->size == 3210);
        CHECK(nest_manifest_append(m, &a, 0) == -EINVAL);
        CHECK(nest_manifest_append(m, &a, NEST_STORE_CHUNK_MAX + 1) == -EINVAL);
        CHECK(nest_manifest_append(m, NULL, NEST_MANIFEST_SIZE_MAX) == -EFBIG);
        nest_manifest_bytes_t by;
        nest_manifest_bytes(m, &by);
        CHECK(by.logical == 3210 && by.zero == 1200 && by.unique == 1010 && by.chunks == 3 && by.unique_chunks == 2);

        _cleanup_free_ char *text = nest_manifest_format(m);
        _cleanup_(nest_manifest_freep) nest_manifest_t *back = NULL;
        CHECK(nest_manifest_parse(text, strlen(text), &back) == 0);
        _cleanup_free_ char *again = back ? nest_manifest_format(back) : NULL;
        CHECK_STREQ(text, again);

        static const char *const bad[] = {
                "",
                "not json",
                "[]",
                "{}",
                "{\"format\":\"other\",\"version\":1,\"size\":0,\"chunks\":[]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":0,\"size\":0,\"chunks\":[]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":\"1\",\"size\":0,\"chunks\":[]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":-1,\"chunks\":[]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":1e30,\"chunks\":[]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":99999999999999999999999,\"chunks\":[]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":1125899906842625,\"chunks\":[[\"zero\",1125899906842625]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":0}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":0,\"chunks\":{}}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":5,\"chunks\":[]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":5,\"chunks\":[[\"zero\",4]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":5,\"chunks\":[[\"zero\",6]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":5,\"chunks\":[[\"zero\",0],[\"zero\",5]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":5,\"chunks\":[[\"zero\"]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":5,\"chunks\":[[\"zero\",5,1]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":5,\"chunks\":[\"zero\"]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":5,\"chunks\":[[5,\"zero\"]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":5,\"chunks\":[[\"ZERO\",5]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":5,\"chunks\":[[\"abc\",5]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":5,\"chunks\":[[\"CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB\",5]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":5,\"chunks\":[[\"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb\",5.0]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":4194305,\"chunks\":[[\"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb\",4194305]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":9223372036854775807,\"chunks\":[[\"zero\",4611686018427387904],[\"zero\",4611686018427387903]]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"chunker\":7,\"size\":0,\"chunks\":[]}",
                "{\"format\":\"vmatrix-nest-manifest\",\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":0,\"chunks\":[]}",
        };
        int bad_ok = 0;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                nest_manifest_t *x = NULL;
                int r = nest_manifest_parse(bad[i], strlen(bad[i]), &x);
                if (r == -EINVAL && !x)
                        bad_ok++;
                else
                        fprintf(stderr, "# bad manifest %zu: %d\n", i, r);
                nest_manifest_free(x);
        }
        CHECK(bad_ok == (int)ELEMENTSOF(bad));
        const char *newer = "{\"format\":\"vmatrix-nest-manifest\",\"version\":2,\"size\":0,\"chunks\":[]}";
        nest_manifest_t *x = NULL;
        CHECK(nest_manifest_parse(newer, strlen(newer), &x) == -EPROTONOSUPPORT);
        const char *empty = "{\"format\":\"vmatrix-nest-manifest\",\"version\":1,\"size\":0,\"chunks\":[]}";
        CHECK(nest_manifest_parse(empty, strlen(empty), &x) == 0 && x->size == 0 && x->n_refs == 0);
        x = nest_manifest_free(x);
        CHECK(nest_manifest_parse(NULL, 0, &x) == -EINVAL);

        /* nesting far beyond jansson's depth limit: an error, not a stack overflow */
        size_t depth = 200000;
        _cleanup_free_ char *deep = xcalloc(1, 2 * depth + 1);
        memset(deep, '[', depth);
        memset(deep + depth, ']', depth);
        CHECK(nest_manifest_parse(deep, 2 * depth, &x) == -EINVAL);

        /* random mutations of a valid manifest: parse or -EINVAL, never a crash (ASan watches) */
        uint64_t st = 11;
        size_t n = strlen(text), accepted = 0;
        for (int i = 0; i < 3000; i++) {
                _cleanup_free_ char *mut = xstrdup(text);
                int edits = 1 + (int)(rng_next(&st) % 4);
                for (int e = 0; e < edits; e++)
                        mut[rng_next(&st) % n] = (char)(rng_next(&st) % 128);
                int r = nest_manifest_parse(mut, n, &x);
                if (r == 0) {
                        accepted++;
                        /* what parses is consistent */
                        uint64_t sum = 0;
                        for (size_t k = 0; k < x->n_refs; k++)
                                sum += x->refs[k].len;
                        CHECK(sum == x->size);
                }
                x = nest_manifest_free(x);
                if (r != 0 && r != -EINVAL && r != -EPROTONOSUPPORT)
                        CHECK(r == -EINVAL);
        }
        printf("# fuzz: %zu of 3000 mutated manifests still parse\n", accepted);
}

/* Imports buf into store s as (vm, version, "disk") in its own session. */
static nest_manifest_t *import_buffer(nest_store_t *s, const char *vm, int64_t version, const void *buf, size_t len,
                                      unsigned flags, nest_import_stats_t *ret_stats) {
        nest_txn_t *t = NULL;
        if (nest_txn_begin(s, flags, &t) < 0)
                return NULL;
        nest_import_t *imp = nest_import_new(t);
        nest_manifest_t *m = NULL;
        int r = 0;
        for (size_t i = 0; i < len && r >= 0; i += MIB)
                r = nest_import_feed(imp, (const uint8_t *)buf + i, MIN((size_t)MIB, len - i));
        if (r >= 0)
                r = nest_import_finish(imp, &m, ret_stats);
        nest_import_free(imp);
        if (r >= 0 && vm)
                r = nest_manifest_put(t, vm, version, "disk", m);
        if (r >= 0)
                r = nest_txn_commit(t);
        nest_txn_free(t);
        if (r < 0)
                m = nest_manifest_free(m);
        return m;
}

static void test_manifest_store(void) {
        _cleanup_free_ char *dir = make_tmpdir("manifests");
        nest_store_t *s = NULL;
        CHECK(nest_store_open(dir, &s) == 0);
        _cleanup_free_ uint8_t *buf = random_buffer(MIB, 12);
        _cleanup_(nest_manifest_freep) nest_manifest_t *m = import_buffer(s, "web1", 3, buf, MIB, 0, NULL);
        CHECK(m != NULL);
        nest_txn_t *t = NULL;
        CHECK(nest_txn_begin(s, 0, &t) == 0);
        CHECK(nest_manifest_put(t, "web1", 3, "disk", m) == 0); /* same again: fine */
        CHECK(nest_manifest_put(t, "web1", 3, "state", m) == 0);
        CHECK(nest_manifest_put(t, "web1", 4, "vm.json", m) == 0);
        CHECK(nest_manifest_put(t, "db", 0, "disk", m) == 0);
        _cleanup_(nest_manifest_freep) nest_manifest_t *other = nest_manifest_new();
        nest_manifest_append(other, NULL, 10);
        CHECK(nest_manifest_put(t, "web1", 3, "disk", other) == -EEXIST); /* immutable */
        static const char *const bad_vm[] = { "", "Web", "../x", "a/b", "-a", ".." };
        for (size_t i = 0; i < ELEMENTSOF(bad_vm); i++)
                CHECK(nest_manifest_put(t, bad_vm[i], 1, "disk", m) == -EINVAL);
        static const char *const bad_file[] = { "", ".hidden", "a/b", "..", "x y", "\xff" };
        for (size_t i = 0; i < ELEMENTSOF(bad_file); i++)
                CHECK(nest_manifest_put(t, "web1", 1, bad_file[i], m) == -EINVAL);
        CHECK(nest_manifest_put(t, "web1", -1, "disk", m) == -EINVAL);
        CHECK(nest_txn_commit(t) == 0);
        nest_txn_free(t);

        /* in a batch, a conflict shows at commit; the other manifests of the batch still land */
        CHECK(nest_txn_begin(s, NEST_TXN_BATCH, &t) == 0);
        CHECK(nest_manifest_put(t, "conflict", 1, "disk", m) == 0);
        CHECK(nest_manifest_put(t, "conflict", 1, "disk", other) == 0); /* not visible yet */
        CHECK(nest_manifest_put(t, "conflict", 1, "state", m) == 0);
        CHECK(nest_txn_commit(t) == -EEXIST);
        nest_txn_free(t);
        nest_manifest_t *c1 = NULL, *c2 = NULL;
        CHECK(nest_manifest_get(s, "conflict", 1, "disk", &c1) == 0 && c1->size == m->size);
        CHECK(nest_manifest_get(s, "conflict", 1, "state", &c2) == 0);
        nest_manifest_free(c1);
        nest_manifest_free(c2);
        CHECK(nest_manifest_delete(s, "conflict", -1, NULL) == 0);

        nest_manifest_t *got = NULL;
        CHECK(nest_manifest_get(s, "web1", 3, "disk", &got) == 0 && got->size == MIB && got->n_refs == m->n_refs);
        got = nest_manifest_free(got);
        CHECK(nest_manifest_get(s, "web1", 5, "disk", &got) == -ENOENT);
        CHECK(nest_manifest_get(s, "../etc", 5, "disk", &got) == -EINVAL);

        /* junk in the tree is skipped by list; a malformed manifest file is -EINVAL on get */
        _cleanup_free_ char *junk1 = xasprintf("%s/manifests/web1/007", dir);
        _cleanup_free_ char *junk2 = xasprintf("%s/manifests/web1/3/notes.txt", dir);
        _cleanup_free_ char *junk3 = xasprintf("%s/manifests/Bad", dir);
        _cleanup_free_ char *broken = xasprintf("%s/manifests/web1/9/disk.json", dir);
        _cleanup_free_ char *broken_dir = xasprintf("%s/manifests/web1/9", dir);
        CHECK(mkdir(junk1, 0755) == 0 && mkdir(junk3, 0755) == 0 && mkdir(broken_dir, 0755) == 0);
        CHECK(file_write_atomic(junk2, "x", 1) == 0);
        CHECK(file_write_atomic(broken, "{\"format\":", 10) == 0);
        CHECK(nest_manifest_get(s, "web1", 9, "disk", &got) == -EINVAL);
        _cleanup_free_ char *stray = xasprintf("%s/manifests/stray", dir);
        _cleanup_free_ char *link = xasprintf("%s/manifests/link", dir);
        _cleanup_free_ char *vfile = xasprintf("%s/manifests/web1/12", dir);
        CHECK(file_write_atomic(stray, "x", 1) == 0 && file_write_atomic(vfile, "x", 1) == 0);
        CHECK(symlink("/etc", link) == 0);

        nest_manifest_key_t *keys = NULL;
        size_t n = 0;
        CHECK(nest_manifest_list(s, NULL, &keys, &n) == 0 && n == 5);
        if (n == 5) {
                CHECK_STREQ(keys[0].vm, "db");
                CHECK(keys[1].version == 3 && streq(keys[1].file, "disk"));
                CHECK(keys[2].version == 3 && streq(keys[2].file, "state"));
                CHECK(keys[3].version == 4 && streq(keys[3].file, "vm.json"));
                CHECK(keys[4].version == 9);
        }
        free(keys);
        CHECK(nest_manifest_list(s, "db", &keys, &n) == 0 && n == 1);
        free(keys);
        CHECK(nest_manifest_list(s, "nobody", &keys, &n) == 0 && n == 0);
        free(keys);

        nest_stats_t st;
        CHECK(nest_stats(s, &st) == 0);
        CHECK(st.manifests == 4 && st.bad_manifests == 1 && st.logical_bytes == 4 * MIB && st.chunks == m->n_refs);

        CHECK(nest_manifest_delete(s, "web1", 3, "state") == 0);
        CHECK(nest_manifest_get(s, "web1", 3, "state", &got) == -ENOENT);
        CHECK(nest_manifest_delete(s, "web1", 3, "state") == 0); /* again: fine */
        CHECK(nest_manifest_delete(s, "web1", 4, NULL) == 0);
        CHECK(nest_manifest_list(s, "web1", &keys, &n) == 0 && n == 2);
        free(keys);
        CHECK(nest_manifest_delete(s, "web1", -1, NULL) == 0);
        CHECK(nest_manifest_list(s, "web1", &keys, &n) == 0 && n == 0);
        free(keys);
        CHECK(nest_manifest_delete(s, "web1", -2, NULL) == -EINVAL);
        CHECK(nest_manifest_delete(s, "web1", -1, "disk") == -EINVAL);
        nest_store_free(s);
        rm_rf(dir);
}

/* ---- import / export ---- */

typedef struct pipe_reader {
        int fd;
        uint64_t bytes;
        nest_chunk_id_t hash; /* of the first 4 MiB */
        uint8_t *head;
} pipe_reader_t;

static void *pipe_read_main(void *arg) {
        pipe_reader_t *p = arg;
        uint8_t buf[65536];
        for (;;) {
                ssize_t n = read(p->fd, buf, sizeof buf);
                if (n <= 0)
                        break;
                size_t room = p->bytes < 4 * MIB ? MIN((size_t)n, (size_t)(4 * MIB - p->bytes)) : 0;
                memcpy(p->head + p->bytes, buf, room);
                p->bytes += (uint64_t)n;
        }
        return NULL;
}

static bool files_equal(const char *a, const char *b) {
        _cleanup_free_ char *x = NULL, *y = NULL;
        size_t nx = 0, ny = 0;
        if (file_read(a, &x, &nx) < 0 || file_read(b, &y, &ny) < 0)
                return false;
        return nx == ny && memcmp(x, y, nx) == 0;
}

static void test_import_export(void) {
        _cleanup_free_ char *dir = make_tmpdir("import");
        nest_store_t *s = NULL;
        CHECK(nest_store_open(dir, &s) == 0);

        /* 2 MiB random, 5 MiB zeros (a hole in the source too), 1 MiB random, 12345 bytes of zeros */
        size_t len = 8 * MIB + 12345;
        _cleanup_free_ uint8_t *buf = xcalloc(1, len);
        fill_random(buf, 2 * MIB, 13);
        fill_random(buf + 7 * MIB, MIB, 14);
        _cleanup_free_ char *src = xasprintf("%s/src", dir);
        CHECK(file_write_atomic(src, buf, len) == 0);

        nest_txn_t *t = NULL;
        CHECK(nest_txn_begin(s, NEST_TXN_BATCH, &t) == 0);
        nest_manifest_t *m = NULL;
        nest_import_stats_t is;
        CHECK(nest_file_import(t, src, &m, &is) == 0);
        CHECK(nest_manifest_put(t, "vm1", 1, "disk", m) == 0);
        CHECK(nest_txn_commit(t) == 0);
        nest_txn_free(t);
        CHECK(m && m->size == len && is.bytes_total == len);
        CHECK(is.zero_chunks >= 15 && is.zero_bytes >= 4 * MIB);
        CHECK(is.chunks_new == is.chunks_total - is.zero_chunks);
        /* chunks mixing data and zeros compress, so stored may be below bytes_new */
        CHECK(is.bytes_new == len - is.zero_bytes && is.bytes_new_stored > 3 * MIB);
        /* zero chunks are not stored: the store holds only the data chunks */
        nest_store_stats_t ss;
        CHECK(nest_store_stats(s, &ss) == 0 && ss.chunks == is.chunks_new && ss.stored_bytes == is.bytes_new_stored);
        nest_manifest_bytes_t by;
        nest_manifest_bytes(m, &by);
        CHECK(by.zero == is.zero_bytes && by.unique == is.bytes_new);

        /* export: byte-identical, and sparse */
        _cleanup_free_ char *out = xasprintf("%s/out", dir);
        CHECK(nest_file_export_path(s, m, out) == 0);
        CHECK(files_equal(src, out));
        struct stat st;
        CHECK(stat(out, &st) == 0 && (uint64_t)st.st_size == len);
        CHECK((uint64_t)st.st_blocks * 512 < len - 4 * MIB);
        printf("# export of %zu bytes with %llu zero bytes allocates %llu bytes\n", len,
               (unsigned long long)is.zero_bytes, (unsigned long long)st.st_blocks * 512);

        /* export into a file that held other bytes: they do not show through the holes */
        int fd = open(out, O_WRONLY);
        CHECK(fd >= 0);
        _cleanup_free_ uint8_t *junk = random_buffer(len + 5000, 15);
        CHECK(write(fd, junk, len + 5000) == (ssize_t)(len + 5000));
        CHECK(lseek(fd, 0, SEEK_SET) == 0);
        CHECK(nest_file_export(s, m, fd) == 0);
        close(fd);
        CHECK(files_equal(src, out));

        /* export into a pipe: zeros are written */
        int p[2];
        CHECK(pipe(p) == 0);
        pipe_reader_t pr = { .fd = p[0], .head = xcalloc(1, 4 * MIB) };
        pthread_t th;
        pthread_create(&th, NULL, pipe_read_main, &pr);
        CHECK(nest_file_export(s, m, p[1]) == 0);
        close(p[1]);
        pthread_join(th, NULL);
        close(p[0]);
        CHECK(pr.bytes == len && memcmp(pr.head, buf, 4 * MIB) == 0);
        free(pr.head);

        /* import from a pipe gives the same manifest as from the file */
        CHECK(pipe(p) == 0);
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                for (size_t i = 0; i < len;) {
                        ssize_t w = write(p[1], buf + i, MIN((size_t)7777, len - i));
                        if (w <= 0)
                                _exit(1);
                        i += (size_t)w;
                }
                _exit(0);
        }
        close(p[1]);
        CHECK(nest_txn_begin(s, 0, &t) == 0);
        nest_manifest_t *m2 = NULL;
        CHECK(nest_file_import_fd(t, p[0], &m2, &is) == 0);
        close(p[0]);
        waitpid(pid, NULL, 0);
        CHECK(is.chunks_new == 0 && is.bytes_new_stored == 0); /* all present already */
        CHECK(nest_txn_commit(t) == 0);
        nest_txn_free(t);
        _cleanup_free_ char *f1 = nest_manifest_format(m), *f2 = m2 ? nest_manifest_format(m2) : NULL;
        CHECK_STREQ(f1, f2);
        nest_manifest_free(m2);

        /* empty file round trip */
        _cleanup_free_ char *empty = xasprintf("%s/empty", dir);
        CHECK(file_write_atomic(empty, "", 0) == 0);
        CHECK(nest_txn_begin(s, 0, &t) == 0);
        CHECK(nest_file_import(t, empty, &m2, NULL) == 0 && m2->size == 0 && m2->n_refs == 0);
        CHECK(nest_file_import(t, "/nonexistent/x", &m2, NULL) == -ENOENT);
        nest_txn_commit(t);
        nest_txn_free(t);
        CHECK(nest_file_export_path(s, m2, out) == 0 && file_size(out) == 0);
        nest_manifest_free(m2);

        /* a 1 TiB hole exports instantly as a sparse file */
        m2 = nest_manifest_new();
        nest_manifest_append(m2, NULL, (uint64_t)1 << 40);
        if (nest_file_export_path(s, m2, out) == 0) {
                CHECK(stat(out, &st) == 0 && st.st_size == (off_t)1 << 40 && st.st_blocks == 0);
        }
        unlink(out);
        nest_manifest_free(m2);

        /* a manifest that lies about a chunk's length: -EBADMSG, the chunk is not blamed */
        m2 = nest_manifest_new();
        nest_manifest_append(m2, &m->refs[0].id, m->refs[0].len - 1);
        CHECK(nest_file_export_path(s, m2, out) == -EBADMSG);
        CHECK(nest_chunk_has(s, &m->refs[0].id));
        nest_manifest_free(m2);
        nest_manifest_free(m);
        nest_store_free(s);
        rm_rf(dir);
}

/* Transfer as it will be done: list what B lacks, move those chunks encoded, then the manifest. */
static void test_missing_and_transfer(void) {
        _cleanup_free_ char *da = make_tmpdir("a"), *db = make_tmpdir("b");
        nest_store_t *a = NULL, *b = NULL;
        CHECK(nest_store_open(da, &a) == 0 && nest_store_open(db, &b) == 0);
        size_t len = 6 * MIB;
        _cleanup_free_ uint8_t *buf = random_buffer(len, 16);
        _cleanup_(nest_manifest_freep) nest_manifest_t *m = import_buffer(a, "vm1", 1, buf, len, 0, NULL);
        CHECK(m != NULL);
        /* B has the first half already */
        _cleanup_(nest_manifest_freep) nest_manifest_t *half = import_buffer(b, NULL, 0, buf, len / 2, 0, NULL);
        CHECK(half != NULL);

        nest_txn_t *t = NULL;
        CHECK(nest_txn_begin(b, NEST_TXN_BATCH, &t) == 0);
        nest_chunk_id_t *missing = NULL;
        size_t n = 0;
        uint64_t bytes = 0;
        CHECK(nest_manifest_missing(t, m, &missing, &n, &bytes) == 0);
        CHECK(n > 0 && n < m->n_refs && n + half->n_refs >= m->n_refs);
        CHECK(bytes < len / 2 + 2 * NEST_CHUNK_MAX && bytes > len / 2 - 2 * NEST_CHUNK_MAX);
        printf("# missing: %zu of %zu chunks, %llu of %zu bytes\n", n, m->n_refs, (unsigned long long)bytes, len);
        CHECK(nest_manifest_verify(b, m, 0) == -ENOENT);
        uint64_t moved = 0;
        for (size_t i = 0; i < n; i++) {
                void *enc = NULL;
                size_t enc_len = 0;
                CHECK(nest_chunk_get_encoded(a, &missing[i], &enc, &enc_len) == 0);
                size_t stored = 0;
                CHECK(nest_chunk_put_encoded(t, &missing[i], enc, enc_len, &stored) == 1 && stored == enc_len);
                moved += enc_len;
                free(enc);
        }
        /* lies from a peer: wrong id, garbage, truncation */
        if (n >= 2) {
                void *enc = NULL;
                size_t enc_len = 0;
                CHECK(nest_chunk_get_encoded(a, &missing[0], &enc, &enc_len) == 0);
                nest_chunk_id_t wrong;
                nest_chunk_id_hash("x", 1, &wrong);
                CHECK(nest_chunk_put_encoded(t, &wrong, enc, enc_len, NULL) == -EBADMSG);
                CHECK(nest_chunk_put_encoded(t, &wrong, enc, enc_len - 1, NULL) == -EBADMSG);
                CHECK(nest_chunk_put_encoded(t, &wrong, enc, 3, NULL) == -EBADMSG);
                CHECK(nest_chunk_put_encoded(t, &wrong, "VXC\x01\x10\x00\x00\x00garbage", 15, NULL) == -EBADMSG);
                CHECK(nest_chunk_put_encoded(t, &wrong, "VXC\x00\xff\xff\xff\xff", 8, NULL) == -EBADMSG);
                CHECK(!nest_chunk_has(b, &wrong));
                free(enc);
        }
        free(missing);
        size_t n_moved = n;
        CHECK(nest_manifest_put(t, "vm1", 1, "disk", m) == 0);
        CHECK(nest_manifest_missing(t, m, &missing, &n, NULL) == 0 && n == 0 && !missing);
        CHECK(nest_txn_commit(t) == 0);
        nest_txn_free(t);
        CHECK(moved == bytes + n_moved * 8); /* random data travels raw, with its 8-byte header */
        CHECK(nest_manifest_verify(b, m, NEST_VERIFY_DEEP) == 0);
        _cleanup_free_ char *out = xasprintf("%s/out", db);
        _cleanup_(nest_manifest_freep) nest_manifest_t *mb = NULL;
        CHECK(nest_manifest_get(b, "vm1", 1, "disk", &mb) == 0);
        CHECK(mb && nest_file_export_path(b, mb, out) == 0);
        _cleanup_free_ char *data = NULL;
        size_t got = 0;
        CHECK(file_read(out, &data, &got) == 0 && got == len && memcmp(data, buf, len) == 0);

        /* a manifest naming a chunk no store has */
        _cleanup_(nest_manifest_freep) nest_manifest_t *ghost = nest_manifest_new();
        nest_chunk_id_t gid;
        nest_chunk_id_hash("ghost", 5, &gid);
        nest_manifest_append(ghost, &m->refs[0].id, m->refs[0].len);
        nest_manifest_append(ghost, &gid, 5);
        CHECK(nest_manifest_verify(b, ghost, 0) == -ENOENT);
        CHECK(nest_manifest_verify(b, ghost, NEST_VERIFY_DEEP) == -ENOENT);
        CHECK(nest_manifest_verify(b, ghost, 0x40) == -EINVAL);
        CHECK(nest_file_export_path(b, ghost, out) == -ENOENT);
        CHECK(nest_txn_begin(b, 0, &t) == 0);
        CHECK(nest_manifest_missing(t, ghost, &missing, &n, &bytes) == 0 && n == 1 && bytes == 5 &&
              nest_chunk_id_equal(&missing[0], &gid));
        free(missing);
        nest_txn_free(t);
        nest_store_free(a);
        nest_store_free(b);
        rm_rf(da);
        rm_rf(db);
}

/* ---- garbage collection ---- */

static void test_gc_basic(void) {
        _cleanup_free_ char *dir = make_tmpdir("gc");
        nest_store_t *s = NULL;
        CHECK(nest_store_open(dir, &s) == 0);
        /* x and y share their first 2 MiB */
        size_t len = 4 * MIB;
        _cleanup_free_ uint8_t *x = random_buffer(len, 17);
        _cleanup_free_ uint8_t *y = xcalloc(1, len);
        memcpy(y, x, 2 * MIB);
        fill_random(y + 2 * MIB, 2 * MIB, 18);
        _cleanup_(nest_manifest_freep) nest_manifest_t *mx = import_buffer(s, "x", 1, x, len, 0, NULL);
        _cleanup_(nest_manifest_freep) nest_manifest_t *my = import_buffer(s, "y", 1, y, len, NEST_TXN_BATCH, NULL);
        CHECK(mx && my);
        nest_store_stats_t before, after;
        CHECK(nest_store_stats(s, &before) == 0);
        size_t y_only = 0;
        for (size_t i = 0; i < my->n_refs; i++) {
                bool shared = false;
                for (size_t k = 0; k < mx->n_refs; k++)
                        shared = shared || nest_chunk_id_equal(&my->refs[i].id, &mx->refs[k].id);
                y_only += !shared;
        }
        CHECK(y_only > 10 && y_only < my->n_refs);

        /* both live: nothing to remove */
        nest_gc_options_t o = { .grace_s = 0, .lock_wait_ms = 1000 };
        nest_gc_stats_t gs;
        CHECK(nest_gc(s, &o, &gs) == 0 && gs.chunks_removed == 0 && gs.manifests == 2);
        CHECK(gs.chunks_live == before.chunks);

        CHECK(nest_manifest_delete(s, "y", 1, NULL) == 0);
        /* recent garbage is kept for the grace period; dry run removes nothing */
        o.grace_s = 600;
        CHECK(nest_gc(s, &o, &gs) == 0 && gs.chunks_removed == 0 && gs.chunks_kept == y_only);
        age_tree(dir, 3600);
        o.dry_run = true;
        CHECK(nest_gc(s, &o, &gs) == 0 && gs.chunks_removed == y_only);
        CHECK(nest_store_stats(s, &after) == 0 && after.chunks == before.chunks);
        o.dry_run = false;
        CHECK(nest_gc(s, &o, &gs) == 0 && gs.chunks_removed == y_only && gs.bytes_removed > 0);
        CHECK(nest_store_stats(s, &after) == 0 && after.chunks == before.chunks - y_only);
        CHECK(after.stored_bytes == before.stored_bytes - gs.bytes_removed);
        CHECK(nest_manifest_verify(s, mx, NEST_VERIFY_DEEP) == 0);
        CHECK(nest_manifest_verify(s, my, 0) == -ENOENT);

        /* GC leaves files it does not own and fresh tmp files alone */
        _cleanup_free_ char *stray = xasprintf("%s/chunks/ab/not-a-chunk", dir);
        _cleanup_free_ char *fresh_tmp = xasprintf("%s/tmp/fresh", dir);
        CHECK(file_write_atomic(stray, "x", 1) == 0 && file_write_atomic(fresh_tmp, "x", 1) == 0);
        age_tree(dir, 3600);
        CHECK(file_write_atomic(fresh_tmp, "y", 1) == 0);
        CHECK(nest_gc(s, &o, &gs) == 0 && gs.chunks_removed == 0 && gs.tmp_removed == 0);
        CHECK(file_exists(stray) && file_exists(fresh_tmp));

        /* one GC at a time; a malformed manifest stops GC before it removes anything */
        int fd = -1;
        _cleanup_free_ char *gclock = xasprintf("%s/gc.lock", dir);
        fd = open(gclock, O_RDONLY);
        CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0);
        CHECK(nest_gc(s, &o, &gs) == -EBUSY);
        close(fd);
        CHECK(nest_manifest_delete(s, "x", 1, NULL) == 0);
        _cleanup_free_ char *bdir = xasprintf("%s/manifests/x/1", dir);
        _cleanup_free_ char *bad = xasprintf("%s/manifests/x/1/disk.json", dir);
        CHECK(mkdir_p(bdir, 0755) == 0 && file_write_atomic(bad, "[1,2", 4) == 0);
        CHECK(nest_gc(s, &o, &gs) == -EBADMSG);
        CHECK(nest_store_stats(s, &after) == 0 && after.chunks > 0);
        unlink(bad);
        CHECK(nest_gc(s, &o, &gs) == 0 && gs.chunks_removed == after.chunks);
        CHECK(nest_store_stats(s, &after) == 0 && after.chunks == 0);
        CHECK(nest_gc(s, &(nest_gc_options_t){ .grace_s = -1 }, &gs) == -EINVAL);
        nest_store_free(s);
        rm_rf(dir);
}

/* Case 3 of gc.c's argument, made deterministic: a session begins between mark and sweep and
 * relies on chunks the mark found unreferenced (their manifest was deleted). */
typedef struct hook_ctx {
        nest_store_t *s;
        const uint8_t *data;
        size_t len;
        nest_manifest_t *m;
} hook_ctx_t;

static void hook_import(void *userdata) {
        hook_ctx_t *h = userdata;
        h->m = import_buffer(h->s, "late", 1, h->data, h->len, NEST_TXN_BATCH, NULL);
}

static void test_gc_session_during_sweep(void) {
        _cleanup_free_ char *dir = make_tmpdir("gc-sweep");
        nest_store_t *s = NULL;
        CHECK(nest_store_open(dir, &s) == 0);
        size_t len = 3 * MIB;
        _cleanup_free_ uint8_t *old = random_buffer(len, 19);
        _cleanup_(nest_manifest_freep) nest_manifest_t *mo = import_buffer(s, "old", 1, old, len, 0, NULL);
        CHECK(mo != NULL);
        CHECK(nest_manifest_delete(s, "old", 1, NULL) == 0);
        age_tree(dir, 3600); /* long-dead garbage */
        /* the late session imports old's bytes plus new ones: it dedups against garbage */
        _cleanup_free_ uint8_t *late = xcalloc(1, len + MIB);
        memcpy(late, old, len);
        fill_random(late + len, MIB, 20);
        hook_ctx_t h = { .s = s, .data = late, .len = len + MIB };
        nest_gc_options_t o = { .grace_s = 0, .lock_wait_ms = 1000, .after_mark = hook_import, .userdata = &h };
        nest_gc_stats_t gs;
        CHECK(nest_gc(s, &o, &gs) == 0);
        CHECK(h.m != NULL);
        /* old's chunks were kept because the late session touched them; only old's last chunk
         * (cut differently in late, which continues past it) was garbage */
        CHECK(gs.chunks_live == 0 && gs.chunks_removed <= 1 && h.m && gs.chunks_kept >= h.m->n_refs);
        CHECK(h.m && nest_manifest_verify(s, h.m, NEST_VERIFY_DEEP) == 0);
        nest_manifest_free(h.m);
        nest_store_free(s);
        rm_rf(dir);
}

typedef struct gc_thread {
        nest_store_t *s;
        nest_gc_options_t o;
        int r;
        atomic_bool done;
        nest_gc_stats_t st;
} gc_thread_t;

static void *gc_main(void *arg) {
        gc_thread_t *g = arg;
        g->r = nest_gc(g->s, &g->o, &g->st);
        atomic_store(&g->done, true);
        return NULL;
}

/* Case 2: a session open when GC starts; GC waits for it, and new sessions wait for GC. */
static void test_gc_waits_for_session(void) {
        _cleanup_free_ char *dir = make_tmpdir("gc-wait");
        nest_store_t *s = NULL;
        CHECK(nest_store_open(dir, &s) == 0);
        size_t len = 2 * MIB;
        _cleanup_free_ uint8_t *buf = random_buffer(len, 21);
        nest_txn_t *t = NULL;
        CHECK(nest_txn_begin(s, 0, &t) == 0);
        nest_import_t *imp = nest_import_new(t);
        nest_manifest_t *m = NULL;
        CHECK(nest_import_feed(imp, buf, len) == 0 && nest_import_finish(imp, &m, NULL) == 0);
        nest_import_free(imp);
        age_tree(dir, 3600); /* the session's chunks look old: only the lock protects them */

        gc_thread_t g = { .s = s, .o = { .grace_s = 0, .lock_wait_ms = 50 } };
        gc_main(&g);
        CHECK(g.r == -EBUSY); /* gave up waiting, and let go of the turnstile */
        nest_txn_t *t2 = NULL;
        CHECK(nest_txn_begin(s, 0, &t2) == 0);
        nest_txn_free(t2);

        g = (gc_thread_t){ .s = s, .o = { .grace_s = 0, .lock_wait_ms = 20000 } };
        pthread_t th;
        pthread_create(&th, NULL, gc_main, &g);
        time_sleep_ms(200);
        CHECK(!atomic_load(&g.done));
        CHECK(nest_manifest_put(t, "vm1", 1, "disk", m) == 0);
        CHECK(nest_txn_commit(t) == 0);
        nest_txn_free(t);
        pthread_join(th, NULL);
        CHECK(g.r == 0 && g.st.chunks_removed == 0 && g.st.chunks_live == m->n_refs);
        CHECK(nest_manifest_verify(s, m, NEST_VERIFY_DEEP) == 0);
        nest_manifest_free(m);
        nest_store_free(s);
        rm_rf(dir);
}

/* A writer thread racing a GC thread: the writer deletes its previous manifest (making shared
 * chunks garbage for an instant), imports again and puts a new one; GC runs in a loop with no
 * grace. Every manifest that exists at the end must be whole. */
typedef struct race {
        nest_store_t *s;
        const uint8_t *shared;
        size_t shared_len;
        atomic_bool stop;
        int writes, write_errors, gcs, gc_errors;
        uint64_t removed;
} race_t;

static void *race_writer(void *arg) {
        race_t *r = arg;
        size_t len = r->shared_len + 256 * 1024;
        _cleanup_free_ uint8_t *buf = xcalloc(1, len);
        memcpy(buf, r->shared, r->shared_len);
        for (int i = 1; i <= 40; i++) {
                fill_random(buf + r->shared_len, 256 * 1024, 1000 + (uint64_t)i);
                nest_manifest_delete(r->s, "racer", i - 1, NULL);
                nest_manifest_t *m = import_buffer(r->s, "racer", i, buf, len, i % 2 ? NEST_TXN_BATCH : 0, NULL);
                if (m)
                        r->writes++;
                else
                        r->write_errors++;
                nest_manifest_free(m);
        }
        atomic_store(&r->stop, true);
        return NULL;
}

static void *race_gc(void *arg) {
        race_t *r = arg;
        nest_gc_options_t o = { .grace_s = 0, .lock_wait_ms = 20000 };
        while (!atomic_load(&r->stop)) {
                nest_gc_stats_t st;
                int k = nest_gc(r->s, &o, &st);
                if (k < 0)
                        r->gc_errors++;
                else {
                        r->gcs++;
                        r->removed += st.chunks_removed;
                }
        }
        return NULL;
}

static void test_gc_concurrent_writer(void) {
        _cleanup_free_ char *dir = make_tmpdir("gc-race");
        nest_store_t *s = NULL;
        CHECK(nest_store_open(dir, &s) == 0);
        _cleanup_free_ uint8_t *shared = random_buffer(MIB, 22);
        race_t r = { .s = s, .shared = shared, .shared_len = MIB };
        pthread_t w, g;
        pthread_create(&g, NULL, race_gc, &r);
        pthread_create(&w, NULL, race_writer, &r);
        pthread_join(w, NULL);
        pthread_join(g, NULL);
        printf("# race: %d writes, %d GCs, %llu chunks removed\n", r.writes, r.gcs, (unsigned long long)r.removed);
        CHECK(r.writes == 40 && r.write_errors == 0 && r.gc_errors == 0);
        CHECK(r.gcs >= 2 && r.removed > 0); /* GC really ran and collected during the race */
        nest_manifest_key_t *keys = NULL;
        size_t n = 0;
        CHECK(nest_manifest_list(s, NULL, &keys, &n) == 0 && n == 1);
        int whole = 0;
        for (size_t i = 0; i < n; i++) {
                nest_manifest_t *m = NULL;
                if (nest_manifest_get(s, keys[i].vm, keys[i].version, keys[i].file, &m) == 0 &&
                    nest_manifest_verify(s, m, NEST_VERIFY_DEEP) == 0)
                        whole++;
                nest_manifest_free(m);
        }
        CHECK(whole == (int)n);
        free(keys);
        /* and a last GC leaves exactly that manifest's chunks */
        nest_gc_stats_t gs;
        CHECK(nest_gc(s, &(nest_gc_options_t){ .grace_s = 0, .lock_wait_ms = 1000 }, &gs) == 0);
        nest_store_stats_t ss;
        CHECK(nest_store_stats(s, &ss) == 0 && ss.chunks == gs.chunks_live);
        nest_store_free(s);
        rm_rf(dir);
}

/* ---- deduplication: twenty VM disks from one image ---- */

static void test_dedup_twenty_vms(void) {
        _cleanup_free_ char *dir = make_tmpdir("dedup");
        nest_store_t *s = NULL;
        CHECK(nest_store_open(dir, &s) == 0);
        size_t len = 64 * MIB, region = 512 * 1024;
        int vms = 20, regions = 4;
        _cleanup_free_ uint8_t *image = random_buffer(len, 23);
        _cleanup_free_ uint8_t *disk = xcalloc(1, len);
        nest_manifest_t *m = import_buffer(s, "image", 1, image, len, NEST_TXN_BATCH, NULL);
        CHECK(m != NULL);
        nest_manifest_free(m);
        uint64_t changes = 0, st_rng = 24;
        for (int v = 0; v < vms; v++) {
                memcpy(disk, image, len);
                for (int k = 0; k < regions; k++) {
                        size_t off = (size_t)(rng_next(&st_rng) % (len - region));
                        fill_random(disk + off, region, rng_next(&st_rng));
                        changes += region;
                }
                _cleanup_free_ char *name = xasprintf("vm%d", v);
                m = import_buffer(s, name, 1, disk, len, NEST_TXN_BATCH, NULL);
                CHECK(m != NULL);
                nest_manifest_free(m);
        }
        nest_stats_t st;
        CHECK(nest_stats(s, &st) == 0);
        CHECK(st.logical_bytes == (uint64_t)(vms + 1) * len);
        double bound = 1.2 * (double)(len + changes);
        printf("# dedup: %d VMs of a %zu MiB image with %llu MiB of changes: %.1f MiB stored (bound %.1f MiB), "
               "%.3f of 20 x one image\n",
               vms, len / MIB, (unsigned long long)(changes / MIB), (double)st.stored_bytes / MIB, bound / MIB,
               (double)st.stored_bytes / ((double)vms * (double)len));
        CHECK((double)st.stored_bytes <= bound);
        CHECK(st.stored_bytes >= len);
        nest_store_free(s);
        rm_rf(dir);
}

#define RUN(test)                                                                            \
        do {                                                                                 \
                int64_t _t = time_now_ms();                                                  \
                test();                                                                      \
                printf("# %-36s %6lld ms\n", #test, (long long)(time_now_ms() - _t));      \
        } while (0)

/* ---- the segment cache (nest_cache_open, segment.h) ---- */

#define SEG_CHUNK 4096

static void seg_put(nest_store_t *s, uint64_t seed, nest_chunk_id_t *ret_id) {
        uint8_t buf[SEG_CHUNK];
        fill_random(buf, sizeof buf, seed);
        nest_txn_t *t = NULL;
        if (nest_txn_begin(s, 0, &t) < 0 || nest_chunk_put(t, buf, sizeof buf, ret_id, NULL) < 0 ||
            nest_txn_commit(t) < 0)
                abort();
        nest_txn_free(t);
}

static bool seg_reads(nest_store_t *s, uint64_t seed) {
        uint8_t want[SEG_CHUNK], got[SEG_CHUNK];
        fill_random(want, sizeof want, seed);
        nest_chunk_id_t id;
        nest_chunk_id_hash(want, sizeof want, &id);
        size_t len = 0;
        return nest_chunk_read(s, &id, got, sizeof got, &len) == 0 && len == sizeof got &&
               memcmp(got, want, len) == 0;
}

/* Records land in segment files (no file per chunk); a sealed segment has its index; a
 * corrupted record is detected, never returned, reported absent, and a second put appends a
 * good copy that wins over the bad one after a reopen too. */
static void test_segment_corruption(void) {
        _cleanup_free_ char *dir = make_tmpdir("seg");
        nest_store_t *s = NULL;
        CHECK(nest_cache_open(dir, 64 * 1024, &s) == 0 && nest_store_is_cache(s));
        nest_chunk_id_t first;
        for (uint64_t i = 0; i < 50; i++)
                seg_put(s, 1000 + i, i == 0 ? &first : &(nest_chunk_id_t){ 0 });
        nest_store_stats_t st;
        CHECK(nest_store_stats(s, &st) == 0 && st.chunks == 50);
        _cleanup_free_ char *shard = xasprintf("%s/chunks/%02x", dir, first.bytes[0]);
        CHECK(count_dir_entries(shard) == 0);
        _cleanup_free_ char *seg1 = xasprintf("%s/segments/00000001.seg", dir);
        _cleanup_free_ char *idx1 = xasprintf("%s/segments/00000001.idx", dir);
        CHECK(access(seg1, F_OK) == 0 && access(idx1, F_OK) == 0); /* 64 KiB passed: sealed */
        bool all = true;
        for (uint64_t i = 0; i < 50; i++)
                all = all && seg_reads(s, 1000 + i);
        CHECK(all);
        /* the first record starts the first segment: 44 bytes of record header, 8 of chunk header */
        flip_byte(seg1, 44 + 8 + 100);
        uint8_t buf[SEG_CHUNK];
        size_t len = 0;
        CHECK(nest_chunk_read(s, &first, buf, sizeof buf, &len) == -EBADMSG);
        CHECK(!nest_chunk_has(s, &first));
        CHECK(nest_chunk_read(s, &first, buf, sizeof buf, &len) == -ENOENT);
        nest_store_counters_t c;
        nest_store_counters(s, &c);
        CHECK(c.quarantined == 1);
        nest_txn_t *t = NULL;
        CHECK(nest_txn_begin(s, 0, &t) == 0 && nest_chunk_pin(t, &first) == 0);
        fill_random(buf, sizeof buf, 1000);
        CHECK(nest_chunk_put(t, buf, sizeof buf, NULL, NULL) == 1);
        CHECK(nest_txn_commit(t) == 0);
        nest_txn_free(t);
        CHECK(seg_reads(s, 1000) && nest_chunk_has(s, &first));
        nest_store_free(s);
        /* reopened: the sealed indexes are loaded, the good copy is the newer and wins */
        CHECK(nest_cache_open(dir, 64 * 1024, &s) == 0);
        all = true;
        for (uint64_t i = 0; i < 50; i++)
                all = all && seg_reads(s, 1000 + i);
        CHECK(all);
        /* one process at a time */
        nest_store_t *other = NULL;
        CHECK(nest_cache_open(dir, 0, &other) == -EBUSY);
        /* a segment cache is not a Nest store, nor the reverse */
        CHECK(nest_store_open(dir, &other) == -EPROTONOSUPPORT);
        nest_store_free(s);
        rm_rf(dir);
}

/* A process killed inside an append loses no acknowledged chunk: killed after a record's
 * header (mid-record), the torn record is cut at reopen and absent; killed after the whole
 * record but before the index, the record may be found by the scan (it is whole and valid).
 * Either way the chunks whose put returned all read back, and the next put works. */
static void test_segment_crash(const char *point) {
        _cleanup_free_ char *dir = make_tmpdir("segcrash");
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                nest_store_t *s = NULL;
                if (nest_cache_open(dir, 0, &s) < 0)
                        _exit(1);
                for (uint64_t i = 0; i < 10; i++)
                        seg_put(s, 2000 + i, &(nest_chunk_id_t){ 0 });
                setenv("VMATRIX_CRASH_AT", point, 1);
                seg_put(s, 2010, &(nest_chunk_id_t){ 0 });
                _exit(0);
        }
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        _cleanup_free_ char *seg1 = xasprintf("%s/segments/00000001.seg", dir);
        int64_t before = file_size(seg1);
        nest_store_t *s = NULL;
        CHECK(nest_cache_open(dir, 0, &s) == 0);
        bool all = true;
        for (uint64_t i = 0; i < 10; i++)
                all = all && seg_reads(s, 2000 + i);
        CHECK(all);
        uint8_t buf[SEG_CHUNK];
        fill_random(buf, sizeof buf, 2010);
        nest_chunk_id_t last;
        nest_chunk_id_hash(buf, sizeof buf, &last);
        if (streq(point, "nest-segment-mid-record")) {
                CHECK(!nest_chunk_has(s, &last));
                CHECK(file_size(seg1) == before - 44 && file_size(seg1) == 10 * (44 + 8 + SEG_CHUNK));
        } else {
                CHECK(nest_chunk_has(s, &last) && seg_reads(s, 2010));
        }
        seg_put(s, 2010, &(nest_chunk_id_t){ 0 });
        seg_put(s, 2011, &(nest_chunk_id_t){ 0 });
        CHECK(seg_reads(s, 2010) && seg_reads(s, 2011));
        nest_store_free(s);
        rm_rf(dir);
}

static void test_segment_crash_points(void) {
        test_segment_crash("nest-segment-mid-record");
        test_segment_crash("nest-segment-before-index");
}

/* Eviction by segment: three VMs' disks, a cap that holds two. The needed VM's chunks were the
 * first written (the oldest segments) and survive, copied forward; the others' go. */
static void test_segment_evict(void) {
        _cleanup_free_ char *dir = make_tmpdir("segevict");
        nest_store_t *s = NULL;
        CHECK(nest_cache_open(dir, 256 * 1024, &s) == 0);
        size_t size = 2 * MIB;
        _cleanup_free_ uint8_t *a = random_buffer(size, 31), *b = random_buffer(size, 32), *c = random_buffer(size, 33);
        nest_manifest_t *ma = import_buffer(s, "a", 1, a, size, 0, NULL);
        nest_manifest_t *mb = import_buffer(s, "b", 1, b, size, 0, NULL);
        nest_manifest_t *mc = import_buffer(s, "c", 1, c, size, 0, NULL);
        CHECK(ma && mb && mc);
        nest_store_stats_t st;
        CHECK(nest_store_stats(s, &st) == 0 && st.stored_bytes > 3 * size);
        uint64_t target = st.stored_bytes / 3 * 2;
        /* b and c are no longer held (node-prune drops their manifests first) */
        CHECK(nest_manifest_delete(s, "b", 1, "disk") == 0 && nest_manifest_delete(s, "c", 1, "disk") == 0);
        nest_seg_evict_stats_t es;
        CHECK(nest_cache_evict(s, target, 1000, &es) == 0);
        CHECK(es.segments_removed > 0 && es.chunks_copied > 0 && es.chunks_removed > 0);
        CHECK(nest_store_stats(s, &st) == 0 && st.stored_bytes <= target);
        _cleanup_free_ char *seg1 = xasprintf("%s/segments/00000001.seg", dir);
        CHECK(access(seg1, F_OK) != 0); /* the oldest segment went, a's part of it moved */
        bool all = true;
        for (size_t i = 0; i < ma->n_refs; i++)
                all = all && nest_chunk_has(s, &ma->refs[i].id);
        CHECK(all);
        _cleanup_free_ char *out = xasprintf("%s/a.out", dir);
        CHECK(nest_file_export_path(s, ma, out) == 0);
        _cleanup_free_ char *got = NULL;
        size_t got_len = 0;
        CHECK(file_read(out, &got, &got_len) == 0 && got_len == size && memcmp(got, a, size) == 0);
        size_t gone = 0;
        for (size_t i = 0; i < mb->n_refs; i++)
                gone += !nest_chunk_has(s, &mb->refs[i].id);
        CHECK(gone > 0);
        /* reopened, the copies are found where they went */
        nest_store_free(s);
        CHECK(nest_cache_open(dir, 256 * 1024, &s) == 0);
        all = true;
        for (size_t i = 0; i < ma->n_refs; i++)
                all = all && nest_chunk_has(s, &ma->refs[i].id);
        CHECK(all);
        CHECK(nest_file_export_path(s, ma, out) == 0);
        nest_manifest_free(ma);
        nest_manifest_free(mb);
        nest_manifest_free(mc);
        nest_store_free(s);
        rm_rf(dir);
}

/* A per-file cache (the format before segments) is imported at its first open as a segment
 * cache: its chunks are appended and their files removed, its manifests stay. */
static void test_segment_import(void) {
        _cleanup_free_ char *dir = make_tmpdir("segimport");
        nest_store_t *s = NULL;
        CHECK(nest_store_open(dir, &s) == 0);
        size_t size = MIB;
        _cleanup_free_ uint8_t *a = random_buffer(size, 41);
        nest_manifest_t *ma = import_buffer(s, "a", 1, a, size, 0, NULL);
        CHECK(ma != NULL);
        nest_store_free(s);
        CHECK(nest_cache_open(dir, 0, &s) == 0);
        nest_manifest_t *m = NULL;
        CHECK(nest_manifest_get(s, "a", 1, "disk", &m) == 0);
        _cleanup_free_ char *out = xasprintf("%s/a.out", dir);
        CHECK(m && nest_file_export_path(s, m, out) == 0);
        _cleanup_free_ char *got = NULL;
        size_t got_len = 0;
        CHECK(file_read(out, &got, &got_len) == 0 && got_len == size && memcmp(got, a, size) == 0);
        _cleanup_free_ char *shard = xasprintf("%s/chunks/%02x", dir, ma->refs[0].id.bytes[0]);
        CHECK(count_dir_entries(shard) == 0);
        nest_manifest_free(m);
        nest_manifest_free(ma);
        nest_store_free(s);
        rm_rf(dir);
}

int main(void) {
        RUN(test_chunk_id);
        RUN(test_store_crash); /* forks: before any thread exists */
        RUN(test_segment_crash_points); /* forks too */
        RUN(test_segment_corruption);
        RUN(test_segment_evict);
        RUN(test_segment_import);
        RUN(test_chunker_sizes_and_streaming);
        RUN(test_chunker_callback_error);
        RUN(test_chunker_insertion);
        RUN(test_chunker_zero_runs);
        RUN(test_store_put_get);
        RUN(test_store_batch);
        RUN(test_store_corruption);
        RUN(test_manifest_json);
        RUN(test_manifest_store);
        RUN(test_import_export);
        RUN(test_missing_and_transfer);
        RUN(test_gc_basic);
        RUN(test_gc_session_during_sweep);
        RUN(test_gc_waits_for_session);
        RUN(test_gc_concurrent_writer);
        RUN(test_dedup_twenty_vms);
        return tap_finish();
}
