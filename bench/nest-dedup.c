/* bench/nest-dedup: figures for the Nest's chunk store, measured side by side in one run.
 *   chunking    MB/s of the content-defined chunker alone (gear hash + zero check)
 *   hashing     MB/s of SHA-256 alone, for scale
 *   import      MB/s of importing a new random image (chunk, hash, try zstd, write; batch session)
 *   re-import   MB/s of importing it again (every chunk already present: no writes)
 *   export      MB/s of writing it back, every chunk read and verified
 *   dedup       stored bytes for N VM disks made from one image, each with its own changes,
 *               against N x one image (the goal: <= 1.2 x (image + changes))
 * Usage: nest-dedup [DIR] [IMAGE_MIB] [VMS] [REPEATS]. Prints medians; never passes or fails. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/util.h"
#include "nest/chunk-store.h"
#include "nest/txn.h"
#include "nest/chunker.h"
#include "nest/import.h"
#include "nest/manifest.h"

#define MIB (1024u * 1024)

static uint64_t rng_next(uint64_t *state) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static void fill_random(uint8_t *p, size_t len, uint64_t seed) {
        for (size_t i = 0; i < len; i += 8) {
                uint64_t v = rng_next(&seed);
                memcpy(p + i, &v, MIN((size_t)8, len - i));
        }
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
        qsort(v, (size_t)n, sizeof *v, cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct chunk_count {
        uint64_t n, bytes;
} chunk_count_t;

static int count_chunk(const void *data, size_t len, bool zero, void *userdata) {
        chunk_count_t *c = userdata;
        c->n++;
        c->bytes += len;
        return 0;
}

static int import_buffer(nest_store_t *s, const char *vm, const uint8_t *buf, size_t len, nest_manifest_t **ret,
                         nest_import_stats_t *ret_stats) {
        nest_txn_t *t = NULL;
        int r = nest_txn_begin(s, NEST_TXN_BATCH, &t);
        if (r < 0)
                return r;
        nest_import_t *imp = nest_import_new(t);
        for (size_t i = 0; i < len && r >= 0; i += MIB)
                r = nest_import_feed(imp, buf + i, MIN((size_t)MIB, len - i));
        nest_manifest_t *m = NULL;
        if (r >= 0)
                r = nest_import_finish(imp, &m, ret_stats);
        nest_import_free(imp);
        if (r >= 0 && vm)
                r = nest_manifest_put(t, vm, 1, "disk", m);
        if (r >= 0)
                r = nest_txn_commit(t);
        nest_txn_free(t);
        if (r < 0) {
                nest_manifest_free(m);
                return r;
        }
        if (ret)
                *ret = m;
        else
                nest_manifest_free(m);
        return 0;
}

static void fail(const char *what, int r) {
        fprintf(stderr, "nest-dedup: %s: %s\n", what, strerror(-r));
        exit(1);
}

int main(int argc, char **argv) {
        const char *base = argc > 1 ? argv[1] : "/tmp";
        size_t image_mib = argc > 2 ? (size_t)atol(argv[2]) : 64;
        int vms = argc > 3 ? atoi(argv[3]) : 20;
        int repeats = argc > 4 ? atoi(argv[4]) : 3;
        if (image_mib < 4 || vms < 1 || repeats < 1) {
                fprintf(stderr, "usage: nest-dedup [DIR] [IMAGE_MIB>=4] [VMS] [REPEATS]\n");
                return 2;
        }
        size_t len = image_mib * MIB;
        double mb = (double)len / 1e6;
        uint8_t *image = malloc(len), *disk = malloc(len);
        if (!image || !disk)
                return 1;
        fill_random(image, len, 42);
        printf("nest-dedup: %zu MiB random image, %d VMs, %d repeats, chunks %u/%u/%u KiB\n", image_mib, vms, repeats,
               NEST_CHUNK_MIN / 1024, NEST_CHUNK_AVG / 1024, NEST_CHUNK_MAX / 1024);

        double t_chunk[repeats], t_hash[repeats], t_imp[repeats], t_reimp[repeats], t_exp[repeats];
        chunk_count_t cc = { 0 };
        uint64_t stored_image = 0;
        for (int i = 0; i < repeats; i++) {
                cc = (chunk_count_t){ 0 };
                nest_chunker_t *c = nest_chunker_new(count_chunk, &cc);
                double t = now_s();
                nest_chunker_feed(c, image, len);
                nest_chunker_finish(c);
                t_chunk[i] = now_s() - t;
                nest_chunker_free(c);

                t = now_s();
                nest_chunk_id_t id;
                for (size_t off = 0; off < len; off += NEST_CHUNK_AVG)
                        nest_chunk_id_hash(image + off, MIN((size_t)NEST_CHUNK_AVG, len - off), &id);
                t_hash[i] = now_s() - t;

                _cleanup_free_ char *dir = xasprintf("%s/vmx-bench-nest-XXXXXX", base);
                if (!mkdtemp(dir))
                        fail("mkdtemp", negative_errno());
                nest_store_t *s = NULL;
                int r = nest_store_open(dir, &s);
                if (r < 0)
                        fail("open store", r);
                nest_manifest_t *m = NULL;
                nest_import_stats_t st;
                t = now_s();
                r = import_buffer(s, "image", image, len, &m, &st);
                t_imp[i] = now_s() - t;
                if (r < 0)
                        fail("import", r);
                stored_image = st.bytes_new_stored;
                t = now_s();
                r = import_buffer(s, NULL, image, len, NULL, &st);
                t_reimp[i] = now_s() - t;
                if (r < 0)
                        fail("re-import", r);
                _cleanup_free_ char *out = xasprintf("%s/out", dir);
                t = now_s();
                r = nest_file_export_path(s, m, out);
                t_exp[i] = now_s() - t;
                if (r < 0)
                        fail("export", r);
                nest_manifest_free(m);
                nest_store_free(s);
                rm_rf(dir);
        }
        printf("%-10s %10s\n", "phase", "MB/s");
        printf("%-10s %10.0f   (%llu chunks, mean %.1f KiB)\n", "chunking", mb / median(t_chunk, repeats),
               (unsigned long long)cc.n, (double)cc.bytes / (double)cc.n / 1024);
        printf("%-10s %10.0f\n", "sha256", mb / median(t_hash, repeats));
        printf("%-10s %10.0f   (new data: %.1f MiB stored)\n", "import", mb / median(t_imp, repeats),
               (double)stored_image / MIB);
        printf("%-10s %10.0f   (all chunks present)\n", "re-import", mb / median(t_reimp, repeats));
        printf("%-10s %10.0f   (every chunk verified)\n", "export", mb / median(t_exp, repeats));

        /* dedup: N disks = the image with 4 regions of 512 KiB rewritten, each */
        _cleanup_free_ char *dir = xasprintf("%s/vmx-bench-nest-XXXXXX", base);
        if (!mkdtemp(dir))
                fail("mkdtemp", negative_errno());
        nest_store_t *s = NULL;
        int r = nest_store_open(dir, &s);
        if (r < 0)
                fail("open store", r);
        r = import_buffer(s, "image", image, len, NULL, NULL);
        if (r < 0)
                fail("import image", r);
        uint64_t changes = 0, rng = 7;
        size_t region = 512 * 1024;
        double t = now_s();
        for (int v = 0; v < vms; v++) {
                memcpy(disk, image, len);
                for (int k = 0; k < 4; k++) {
                        size_t off = (size_t)(rng_next(&rng) % (len - region));
                        fill_random(disk + off, region, rng_next(&rng));
                        changes += region;
                }
                _cleanup_free_ char *name = xasprintf("vm%d", v);
                r = import_buffer(s, name, disk, len, NULL, NULL);
                if (r < 0)
                        fail("import vm", r);
        }
        double t_vms = now_s() - t;
        nest_stats_t st;
        r = nest_stats(s, &st);
        if (r < 0)
                fail("stats", r);
        double naive = (double)vms * (double)len, goal = 1.2 * (double)(len + changes);
        printf("dedup: %d VMs x %zu MiB (+ the image), %.1f MiB of own changes in all\n", vms, image_mib,
               (double)changes / MIB);
        printf("  logical %.1f MiB, stored %.1f MiB in %llu chunks (imported at %.0f MB/s)\n",
               (double)st.logical_bytes / MIB, (double)st.stored_bytes / MIB, (unsigned long long)st.chunks,
               (double)vms * mb / t_vms);
        printf("  stored / (%d x one image)        = %.3f\n", vms, (double)st.stored_bytes / naive);
        printf("  stored / (image + changes)       = %.3f   (goal <= 1.2)\n",
               (double)st.stored_bytes / (double)(len + changes));
        printf("  goal bound 1.2 x (image + changes) = %.1f MiB\n", goal / MIB);
        nest_store_free(s);
        rm_rf(dir);
        free(image);
        free(disk);
        return 0;
}
