/* Implementation of import.h: the chunker's callback stores each data chunk through the session
 * and appends it to the manifest; zero chunks only extend the manifest's zero extent. Export
 * is the inverse, one verified chunk at a time. */
#include "nest/import.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "nest/chunker.h"

#define READ_SIZE (1u << 20)

struct nest_import {
        nest_txn_t *t;
        nest_chunker_t *chunker;
        nest_manifest_t *m;
        nest_import_stats_t stats;
};

static int import_chunk(const void *data, size_t len, bool zero, void *userdata) {
        nest_import_t *imp = userdata;
        imp->stats.chunks_total++;
        imp->stats.bytes_total += len;
        if (zero) {
                imp->stats.zero_chunks++;
                imp->stats.zero_bytes += len;
                return nest_manifest_append(imp->m, NULL, len);
        }
        nest_chunk_id_t id;
        size_t stored = 0;
        int r = nest_chunk_put(imp->t, data, len, &id, &stored);
        if (r < 0)
                return r;
        if (r > 0) {
                imp->stats.chunks_new++;
                imp->stats.bytes_new += len;
                imp->stats.bytes_new_stored += stored;
        }
        return nest_manifest_append(imp->m, &id, len);
}

nest_import_t *nest_import_new(nest_txn_t *t) {
        nest_import_t *imp = xcalloc(1, sizeof *imp);
        imp->t = t;
        imp->chunker = nest_chunker_new(import_chunk, imp);
        imp->m = nest_manifest_new();
        return imp;
}

nest_import_t *nest_import_free(nest_import_t *imp) {
        if (!imp)
                return NULL;
        nest_chunker_free(imp->chunker);
        nest_manifest_free(imp->m);
        free(imp);
        return NULL;
}

int nest_import_feed(nest_import_t *imp, const void *data, size_t len) {
        if (!imp->m)
                return -EINVAL; /* finished */
        return nest_chunker_feed(imp->chunker, data, len);
}

int nest_import_finish(nest_import_t *imp, nest_manifest_t **ret_manifest, nest_import_stats_t *ret_stats) {
        if (!imp->m)
                return -EINVAL;
        int r = nest_chunker_finish(imp->chunker);
        if (r < 0)
                return r;
        *ret_manifest = TAKE_PTR(imp->m);
        if (ret_stats)
                *ret_stats = imp->stats;
        return 0;
}

int nest_file_import_fd(nest_txn_t *t, int fd, nest_manifest_t **ret_manifest, nest_import_stats_t *ret_stats) {
        _cleanup_(nest_import_freep) nest_import_t *imp = nest_import_new(t);
        _cleanup_free_ uint8_t *buf = malloc(READ_SIZE);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf, READ_SIZE);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                int r = nest_import_feed(imp, buf, (size_t)n);
                if (r < 0)
                        return r;
        }
        return nest_import_finish(imp, ret_manifest, ret_stats);
}

int nest_file_import(nest_txn_t *t, const char *path, nest_manifest_t **ret_manifest, nest_import_stats_t *ret_stats) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return nest_file_import_fd(t, fd, ret_manifest, ret_stats);
}


static int write_zeros(int fd, uint64_t len) {
        static const uint8_t zeros[64 * 1024];
        while (len > 0) {
                size_t n = (size_t)MIN(len, (uint64_t)sizeof zeros);
                int r = fd_write_all(fd, zeros, n);
                if (r < 0)
                        return r;
                len -= n;
        }
        return 0;
}

int nest_file_export(nest_store_t *s, const nest_manifest_t *m, int fd) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        bool regular = S_ISREG(st.st_mode);
        off_t start = 0;
        if (regular) {
                /* Holes must read as zeros: drop whatever the file held past the offset. */
                start = lseek(fd, 0, SEEK_CUR);
                if (start < 0 || ftruncate(fd, start) < 0)
                        return negative_errno();
                if ((uint64_t)start > (uint64_t)INT64_MAX - m->size)
                        return -EFBIG;
        }
        size_t buf_size = 0;
        for (size_t i = 0; i < m->n_refs; i++)
                if (!m->refs[i].zero)
                        buf_size = MAX(buf_size, (size_t)m->refs[i].len);
        _cleanup_free_ uint8_t *buf = buf_size ? malloc(buf_size) : NULL;
        if (buf_size && !buf)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_refs; i++) {
                const nest_chunk_ref_t *ref = &m->refs[i];
                int r;
                if (ref->zero && regular)
                        r = lseek(fd, (off_t)ref->len, SEEK_CUR) < 0 ? negative_errno() : 0;
                else if (ref->zero)
                        r = write_zeros(fd, ref->len);
                else {
                        size_t len = 0;
                        r = nest_chunk_read(s, &ref->id, buf, (size_t)ref->len, &len);
                        if (r == -ENOBUFS || (r >= 0 && len != ref->len))
                                r = -EBADMSG; /* a valid chunk of another length: the manifest lies */
                        if (r >= 0)
                                r = fd_write_all(fd, buf, len);
                }
                if (r < 0)
                        return r;
        }
        if (regular && ftruncate(fd, start + (off_t)m->size) < 0) /* a trailing hole sets the size */
                return negative_errno();
        return 0;
}

int nest_file_export_path(nest_store_t *s, const nest_manifest_t *m, const char *path) {
        _cleanup_free_ char *tmp = xasprintf("%s.nest-tmp.%d", path, (int)getpid());
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        int r = nest_file_export(s, m, fd);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        return fsync_dir_of(path);
}
