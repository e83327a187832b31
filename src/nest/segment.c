/* Segment files of a node's chunk cache (segment.h): the records, the in-memory index (an open
 * addressing table over an array of entries), sealing, the scan that cuts a torn tail at open,
 * and eviction by segment. Everything runs under g->lock, I/O included: appends are serialised
 * anyway, a read is one pread from the page cache, and eviction is rare. */
#include "nest/segment.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "nest/store-internal.h"

#define SEG_DIR "segments"
#define REC_MAGIC "VXR1"
#define REC_HEADER (4 + NEST_CHUNK_ID_SIZE + 4 + 4)
#define IDX_MAGIC "VXI1"
#define IDX_ENTRY (NEST_CHUNK_ID_SIZE + 8 + 4)
#define SEG_GONE UINT32_MAX /* an entry whose segment was evicted (dropped at the next rebuild) */

typedef struct seg_entry {
        nest_chunk_id_t id;
        uint64_t off; /* of the record's header */
        uint32_t len; /* of its encoded chunk */
        uint32_t seg; /* segment number */
        bool dead;
} seg_entry_t;

typedef struct seg_file {
        uint32_t num;
        int fd;
        uint64_t size;
        bool sealed;
        int64_t used_ms; /* last append or read: eviction order */
} seg_file_t;

struct nest_seg {
        pthread_mutex_t lock;
        int dirfd, lock_fd;
        uint64_t seg_max;
        seg_file_t *files; /* by number; the last is the active one */
        size_t n_files;
        seg_entry_t *entries;
        size_t n_entries;
        uint32_t *table; /* entry index + 1, 0 empty; size a power of two */
        size_t table_size;
        size_t n_live;
        uint64_t dead, truncated;
};

/* CRC-32C (Castagnoli), bytewise. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_make(void) {
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (int k = 0; k < 8; k++)
                        c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
                crc_table[i] = c;
        }
}

static uint32_t crc32c(uint32_t crc, const void *data, size_t len) {
        pthread_once(&crc_once, crc_table_make);
        const uint8_t *p = data;
        crc = ~crc;
        while (len--)
                crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return ~crc;
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p) { return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32; }

static void put_le64(uint8_t *p, uint64_t v) {
        put_le32(p, (uint32_t)v);
        put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t record_crc(const nest_chunk_id_t *id, uint32_t len, const void *enc) {
        uint8_t l[4];
        put_le32(l, len);
        uint32_t c = crc32c(0, id->bytes, NEST_CHUNK_ID_SIZE);
        c = crc32c(c, l, 4);
        return crc32c(c, enc, len);
}

static size_t slot_of(const nest_seg_t *g, const nest_chunk_id_t *id) {
        uint64_t h;
        memcpy(&h, id->bytes, sizeof h); /* a SHA-256: uniform already */
        return (size_t)h & (g->table_size - 1);
}

/* The index of id's entry, or -1. */
static ssize_t find(const nest_seg_t *g, const nest_chunk_id_t *id) {
        if (g->table_size == 0)
                return -1;
        for (size_t i = slot_of(g, id);; i = (i + 1) & (g->table_size - 1)) {
                uint32_t e = g->table[i];
                if (e == 0)
                        return -1;
                if (nest_chunk_id_equal(&g->entries[e - 1].id, id))
                        return (ssize_t)(e - 1);
        }
}

static void table_put(nest_seg_t *g, size_t entry) {
        size_t i = slot_of(g, &g->entries[entry].id);
        while (g->table[i] != 0)
                i = (i + 1) & (g->table_size - 1);
        g->table[i] = (uint32_t)(entry + 1);
}

/* Drops evicted entries and rebuilds the table for at least `room` more. */
static void table_rebuild(nest_seg_t *g, size_t room) {
        size_t k = 0;
        g->n_live = 0;
        for (size_t i = 0; i < g->n_entries; i++)
                if (g->entries[i].seg != SEG_GONE) {
                        g->entries[k++] = g->entries[i];
                        if (!g->entries[i].dead)
                                g->n_live++;
                }
        g->n_entries = k;
        size_t size = 1024;
        while (size < 2 * (k + room))
                size *= 2;
        free(g->table);
        g->table = xcalloc(size, sizeof *g->table);
        g->table_size = size;
        seg_entry_t *e = realloc(g->entries, size / 2 * sizeof *e);
        if (!e)
                abort();
        g->entries = e;
        for (size_t i = 0; i < k; i++)
                table_put(g, i);
}

/* Indexes id at (seg, off, len): a newer record of an id replaces the older. */
static void index_put(nest_seg_t *g, const nest_chunk_id_t *id, uint32_t seg, uint64_t off, uint32_t len) {
        ssize_t at = find(g, id);
        if (at >= 0) {
                seg_entry_t *e = &g->entries[at];
                if (e->dead)
                        g->n_live++;
                *e = (seg_entry_t){ .id = *id, .off = off, .len = len, .seg = seg };
                return;
        }
        if (2 * (g->n_entries + 1) > g->table_size)
                table_rebuild(g, g->n_entries + 1);
        g->entries[g->n_entries] = (seg_entry_t){ .id = *id, .off = off, .len = len, .seg = seg };
        table_put(g, g->n_entries++);
        g->n_live++;
}

static seg_file_t *file_of(nest_seg_t *g, uint32_t num) {
        for (size_t i = 0; i < g->n_files; i++)
                if (g->files[i].num == num)
                        return &g->files[i];
        return NULL;
}

static void seg_name(uint32_t num, const char *ext, char ret[32]) { snprintf(ret, 32, "%08u.%s", num, ext); }

static int pread_all(int fd, void *buf, size_t len, uint64_t off) {
        size_t got = 0;
        while (got < len) {
                ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -EBADMSG; /* shorter than indexed */
                got += (size_t)n;
        }
        return 0;
}

/* Reads records from offset 0 and indexes the valid ones; cuts the file at the first invalid. */
static int segment_scan(nest_seg_t *g, seg_file_t *f) {
        _cleanup_free_ uint8_t *buf = malloc(CHUNK_FILE_MAX);
        if (!buf)
                return -ENOMEM;
        uint64_t off = 0;
        while (off + REC_HEADER <= f->size) {
                uint8_t h[REC_HEADER];
                if (pread_all(f->fd, h, sizeof h, off) < 0 || memcmp(h, REC_MAGIC, 4) != 0)
                        break;
                nest_chunk_id_t id;
                memcpy(id.bytes, h + 4, NEST_CHUNK_ID_SIZE);
                uint32_t len = get_le32(h + 4 + NEST_CHUNK_ID_SIZE), crc = get_le32(h + 8 + NEST_CHUNK_ID_SIZE);
                if (len < CHUNK_HEADER_SIZE || len > CHUNK_FILE_MAX || off + REC_HEADER + len > f->size ||
                    pread_all(f->fd, buf, len, off + REC_HEADER) < 0 || record_crc(&id, len, buf) != crc)
                        break;
                index_put(g, &id, f->num, off, len);
                off += REC_HEADER + len;
        }
        if (off < f->size) {
                /* a torn append (never acknowledged), or damage: what follows is not trusted */
                if (ftruncate(f->fd, (off_t)off) < 0)
                        return negative_errno();
                g->truncated += f->size - off;
                f->size = off;
        }
        return 0;
}

/* Loads a sealed segment's index; -EBADMSG when it is missing, damaged or does not fit. */
static int segment_idx_load(nest_seg_t *g, seg_file_t *f) {
        char name[32];
        seg_name(f->num, "idx", name);
        _cleanup_close_ int fd = openat(g->dirfd, name, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 8 + NEST_CHUNK_ID_SIZE)
                return -EBADMSG;
        size_t size = (size_t)st.st_size;
        _cleanup_free_ uint8_t *b = malloc(size);
        if (!b || pread_all(fd, b, size, 0) < 0 || memcmp(b, IDX_MAGIC, 4) != 0)
                return -EBADMSG;
        uint32_t count = get_le32(b + 4);
        if (size != 8 + (size_t)count * IDX_ENTRY + NEST_CHUNK_ID_SIZE)
                return -EBADMSG;
        nest_chunk_id_t sum;
        nest_chunk_id_hash(b, size - NEST_CHUNK_ID_SIZE, &sum);
        if (memcmp(sum.bytes, b + size - NEST_CHUNK_ID_SIZE, NEST_CHUNK_ID_SIZE) != 0)
                return -EBADMSG;
        for (uint32_t i = 0; i < count; i++) {
                const uint8_t *e = b + 8 + (size_t)i * IDX_ENTRY;
                uint64_t off = get_le64(e + NEST_CHUNK_ID_SIZE);
                uint32_t len = get_le32(e + NEST_CHUNK_ID_SIZE + 8);
                if (len > CHUNK_FILE_MAX || off + REC_HEADER + len > f->size)
                        return -EBADMSG; /* entries already put stay: a scan re-puts the same */
        }
        for (uint32_t i = 0; i < count; i++) {
                const uint8_t *e = b + 8 + (size_t)i * IDX_ENTRY;
                nest_chunk_id_t id;
                memcpy(id.bytes, e, NEST_CHUNK_ID_SIZE);
                index_put(g, &id, f->num, get_le64(e + NEST_CHUNK_ID_SIZE), get_le32(e + NEST_CHUNK_ID_SIZE + 8));
        }
        return 0;
}

/* Writes f's index file (tmp + rename; a cache does not sync). */
static int segment_idx_write(nest_seg_t *g, seg_file_t *f) {
        size_t count = 0;
        for (size_t i = 0; i < g->n_entries; i++)
                count += g->entries[i].seg == f->num;
        size_t size = 8 + count * IDX_ENTRY + NEST_CHUNK_ID_SIZE;
        _cleanup_free_ uint8_t *b = malloc(size);
        if (!b)
                return -ENOMEM;
        memcpy(b, IDX_MAGIC, 4);
        put_le32(b + 4, (uint32_t)count);
        uint8_t *p = b + 8;
        for (size_t i = 0; i < g->n_entries; i++) {
                const seg_entry_t *e = &g->entries[i];
                if (e->seg != f->num)
                        continue;
                memcpy(p, e->id.bytes, NEST_CHUNK_ID_SIZE);
                put_le64(p + NEST_CHUNK_ID_SIZE, e->off);
                put_le32(p + NEST_CHUNK_ID_SIZE + 8, e->len);
                p += IDX_ENTRY;
        }
        nest_chunk_id_t sum;
        nest_chunk_id_hash(b, size - NEST_CHUNK_ID_SIZE, &sum);
        memcpy(p, sum.bytes, NEST_CHUNK_ID_SIZE);
        char name[32], tmp[40];
        seg_name(f->num, "idx", name);
        snprintf(tmp, sizeof tmp, "%s.tmp", name);
        _cleanup_close_ int fd = openat(g->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        int r = fd_write_all(fd, b, size);
        if (r >= 0 && renameat(g->dirfd, tmp, g->dirfd, name) < 0)
                r = negative_errno();
        if (r < 0)
                unlinkat(g->dirfd, tmp, 0);
        return r;
}

/* Opens (creating when create) segment num and adds it to the list. */
static int segment_add(nest_seg_t *g, uint32_t num, bool create, seg_file_t **ret) {
        char name[32];
        seg_name(num, "seg", name);
        int fd = openat(g->dirfd, name, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0644);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int r = negative_errno();
                close(fd);
                return r;
        }
        seg_file_t *f = array_append(&g->files, &g->n_files, sizeof *f);
        *f = (seg_file_t){ .num = num, .fd = fd, .size = (uint64_t)st.st_size, .used_ms = time_now_ms() };
        *ret = f;
        return 0;
}

/* Seals the active segment (writes its index) and starts the next. */
static int segment_roll(nest_seg_t *g) {
        seg_file_t *a = &g->files[g->n_files - 1];
        uint32_t next = a->num + 1;
        int r = segment_idx_write(g, a);
        if (r < 0)
                return r;
        a->sealed = true;
        seg_file_t *f = NULL;
        r = segment_add(g, next, true, &f);
        if (r < 0)
                g->files[g->n_files - 1].sealed = false; /* keep appending to it */
        return r;
}

static int num_cmp(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return x < y ? -1 : x > y;
}

int nest_seg_open(int dirfd, uint64_t seg_max, nest_seg_t **ret) {
        if (mkdirat(dirfd, SEG_DIR, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        nest_seg_t *g = xcalloc(1, sizeof *g);
        pthread_mutex_init(&g->lock, NULL);
        g->seg_max = seg_max ? seg_max : NEST_SEG_MAX_DEFAULT;
        g->lock_fd = -1;
        g->dirfd = openat(dirfd, SEG_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r = g->dirfd < 0 ? negative_errno() : 0;
        if (r >= 0) {
                g->lock_fd = openat(g->dirfd, "lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
                r = g->lock_fd < 0 ? negative_errno() : flock(g->lock_fd, LOCK_EX | LOCK_NB) < 0 ? -EBUSY : 0;
        }
        _cleanup_free_ uint32_t *nums = NULL;
        size_t n = 0;
        DIR *d = r >= 0 ? fdopendir(dup(g->dirfd)) : NULL;
        if (r >= 0 && !d)
                r = negative_errno();
        for (struct dirent *de; d && (de = readdir(d));) {
                unsigned num = 0;
                char ext[8] = "";
                if (sscanf(de->d_name, "%8u.%7s", &num, ext) != 2 || num == 0 || num >= SEG_GONE)
                        continue;
                if (streq(ext, "seg"))
                        *(uint32_t *)array_append(&nums, &n, sizeof num) = num;
                else if (!streq(ext, "idx"))
                        unlinkat(g->dirfd, de->d_name, 0); /* an index being written at a crash */
        }
        if (d)
                closedir(d);
        if (n > 0)
                qsort(nums, n, sizeof *nums, num_cmp);
        table_rebuild(g, 0);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                seg_file_t *f = NULL;
                r = segment_add(g, nums[i], false, &f);
                if (r < 0)
                        break;
                if (segment_idx_load(g, f) >= 0) {
                        f->sealed = true;
                        continue;
                }
                r = segment_scan(g, f);
                if (r >= 0 && i + 1 < n) { /* sealed, its index lost: write it again */
                        f->sealed = true;
                        (void)segment_idx_write(g, f);
                }
        }
        if (r >= 0 && (g->n_files == 0 || g->files[g->n_files - 1].sealed)) {
                seg_file_t *f = NULL;
                r = segment_add(g, g->n_files ? g->files[g->n_files - 1].num + 1 : 1, true, &f);
        }
        if (r < 0) {
                nest_seg_free(g);
                return r;
        }
        *ret = g;
        return 0;
}

nest_seg_t *nest_seg_free(nest_seg_t *g) {
        if (!g)
                return NULL;
        for (size_t i = 0; i < g->n_files; i++)
                close(g->files[i].fd);
        free(g->files);
        free(g->entries);
        free(g->table);
        if (g->lock_fd >= 0)
                close(g->lock_fd);
        if (g->dirfd >= 0)
                close(g->dirfd);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
}

bool nest_seg_has(nest_seg_t *g, const nest_chunk_id_t *id) {
        pthread_mutex_lock(&g->lock);
        ssize_t at = find(g, id);
        bool has = at >= 0 && !g->entries[at].dead;
        pthread_mutex_unlock(&g->lock);
        return has;
}

int nest_seg_read(nest_seg_t *g, const nest_chunk_id_t *id, void **ret_enc, size_t *ret_len) {
        pthread_mutex_lock(&g->lock);
        ssize_t at = find(g, id);
        int r = at < 0 || g->entries[at].dead ? -ENOENT : 0;
        void *enc = NULL;
        size_t len = 0;
        if (r >= 0) {
                seg_entry_t e = g->entries[at];
                seg_file_t *f = file_of(g, e.seg);
                len = e.len;
                enc = malloc(len ? len : 1);
                r = !f ? -ENOENT : !enc ? -ENOMEM : pread_all(f->fd, enc, len, e.off + REC_HEADER);
                if (f)
                        f->used_ms = time_now_ms();
        }
        pthread_mutex_unlock(&g->lock);
        if (r < 0) {
                free(enc);
                return r;
        }
        *ret_enc = enc;
        *ret_len = len;
        return 0;
}

/* Writes a record at the active segment's end and indexes it; rolls to a new segment past the
 * cap. Under g->lock. */
static int record_append(nest_seg_t *g, const nest_chunk_id_t *id, const void *enc, uint32_t len) {
        seg_file_t *a = &g->files[g->n_files - 1];
        uint8_t h[REC_HEADER];
        memcpy(h, REC_MAGIC, 4);
        memcpy(h + 4, id->bytes, NEST_CHUNK_ID_SIZE);
        put_le32(h + 4 + NEST_CHUNK_ID_SIZE, len);
        put_le32(h + 8 + NEST_CHUNK_ID_SIZE, record_crc(id, len, enc));
        uint64_t off = a->size;
        int r = fd_pwrite_all(a->fd, h, sizeof h, off);
        crash_point("nest-segment-mid-record");
        if (r >= 0)
                r = fd_pwrite_all(a->fd, enc, len, off + REC_HEADER);
        if (r < 0) {
                (void)!ftruncate(a->fd, (off_t)off); /* no torn record stays behind us */
                return r;
        }
        crash_point("nest-segment-before-index");
        index_put(g, id, a->num, off, len);
        a->size = off + REC_HEADER + len;
        a->used_ms = time_now_ms();
        if (a->size >= g->seg_max)
                (void)segment_roll(g); /* failing, it stays active a while longer */
        return 0;
}

int nest_seg_append(nest_seg_t *g, const nest_chunk_id_t *id, const void *enc, size_t len) {
        if (len < CHUNK_HEADER_SIZE || len > CHUNK_FILE_MAX)
                return -EINVAL;
        pthread_mutex_lock(&g->lock);
        ssize_t at = find(g, id);
        bool present = at >= 0 && !g->entries[at].dead;
        int r = present ? 0 : record_append(g, id, enc, (uint32_t)len);
        pthread_mutex_unlock(&g->lock);
        return r < 0 ? r : present ? 0 : 1;
}

void nest_seg_kill(nest_seg_t *g, const nest_chunk_id_t *id) {
        pthread_mutex_lock(&g->lock);
        ssize_t at = find(g, id);
        if (at >= 0 && !g->entries[at].dead) {
                g->entries[at].dead = true;
                g->n_live--;
                g->dead++;
        }
        pthread_mutex_unlock(&g->lock);
}

static uint64_t total_bytes(const nest_seg_t *g) {
        uint64_t t = 0;
        for (size_t i = 0; i < g->n_files; i++)
                t += g->files[i].size;
        return t;
}

/* The sealed segment used least recently, or SEG_GONE. */
static uint32_t oldest_sealed(const nest_seg_t *g) {
        const seg_file_t *best = NULL;
        for (size_t i = 0; i + 1 < g->n_files; i++)
                if (g->files[i].sealed && (!best || g->files[i].used_ms < best->used_ms))
                        best = &g->files[i];
        return best ? best->num : SEG_GONE;
}

/* Copies forward what keep wants of segment num, then removes it. Under g->lock. */
static int segment_evict(nest_seg_t *g, uint32_t num, nest_seg_keep_fn keep, void *userdata,
                         nest_seg_evict_stats_t *st) {
        seg_file_t *v = file_of(g, num);
        int fd = v->fd;
        uint64_t size = v->size;
        _cleanup_free_ uint8_t *buf = malloc(CHUNK_FILE_MAX);
        if (!buf)
                return -ENOMEM;
        uint64_t copied = 0;
        for (size_t i = 0; i < g->n_entries; i++) {
                seg_entry_t e = g->entries[i];
                if (e.seg != num)
                        continue;
                if (!e.dead && keep(userdata, &e.id) && pread_all(fd, buf, e.len, e.off + REC_HEADER) >= 0) {
                        int r = record_append(g, &e.id, buf, e.len); /* re-indexes entry i */
                        if (r < 0)
                                return r; /* nothing removed yet of this segment's */
                        st->chunks_copied++;
                        copied += REC_HEADER + e.len;
                        continue;
                }
                g->entries[i].seg = SEG_GONE;
                st->chunks_removed++;
        }
        char name[32];
        seg_name(num, "idx", name);
        unlinkat(g->dirfd, name, 0);
        seg_name(num, "seg", name);
        unlinkat(g->dirfd, name, 0);
        close(fd);
        v = file_of(g, num); /* record_append may have moved the list */
        size_t at = (size_t)(v - g->files);
        memmove(v, v + 1, (g->n_files - at - 1) * sizeof *v);
        g->n_files--;
        st->segments_removed++;
        st->bytes_removed += size > copied ? size - copied : 0;
        return 0;
}

int nest_seg_evict(nest_seg_t *g, uint64_t target, nest_seg_keep_fn keep, void *userdata,
                   nest_seg_evict_stats_t *ret_stats) {
        nest_seg_evict_stats_t st = { 0 };
        int r = 0;
        pthread_mutex_lock(&g->lock);
        /* each segment at most once: copies forward land in segments made after the start */
        uint32_t first_new = g->files[g->n_files - 1].num + 1;
        while (r >= 0 && total_bytes(g) > target) {
                uint32_t v = oldest_sealed(g);
                if (v != SEG_GONE && v >= first_new)
                        break;
                if (v == SEG_GONE) {
                        seg_file_t *a = &g->files[g->n_files - 1];
                        if (a->size == 0 || a->num >= first_new)
                                break;
                        r = segment_roll(g);
                        continue;
                }
                r = segment_evict(g, v, keep, userdata, &st);
        }
        table_rebuild(g, 0);
        pthread_mutex_unlock(&g->lock);
        if (ret_stats)
                *ret_stats = st;
        return r;
}

void nest_seg_stats(nest_seg_t *g, nest_seg_stats_t *ret) {
        pthread_mutex_lock(&g->lock);
        *ret = (nest_seg_stats_t){ .chunks = g->n_live, .bytes = total_bytes(g), .segments = g->n_files,
                                   .dead = g->dead, .truncated = g->truncated };
        pthread_mutex_unlock(&g->lock);
}
