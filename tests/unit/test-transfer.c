/* Unit tests for the chunk-transfer protocol: two chunk stores, one served over real HTTP, and
 * pull/push between them — only missing chunks move, corruption is detected, nothing is kept
 * from a bad transfer. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "nest/import.h"
#include "nest/nest-http.h"
#include "nest/transfer.h"
#include "tap.h"

static nest_store_t *served;

static void h_chunk(const http_request_t *q, http_reply_t *r) { nest_http_chunk_get(served, q, r); }
static void h_missing(const http_request_t *q, http_reply_t *r) { nest_http_chunks_missing(served, q, r); }
static void h_fetch(const http_request_t *q, http_reply_t *r) { nest_http_chunks_fetch(served, q, r); }
static void h_upload(const http_request_t *q, http_reply_t *r) { nest_http_chunks_upload(served, q, r); }
static void h_mget(const http_request_t *q, http_reply_t *r) { nest_http_manifest_get(served, q, r); }
static void h_mput(const http_request_t *q, http_reply_t *r) { nest_http_manifest_put(served, q, r); }

static const http_route_t routes[] = {
        { "GET", "/v1/chunks/:id", h_chunk },
        { "POST", "/v1/chunks/missing", h_missing },
        { "POST", "/v1/chunks/fetch", h_fetch },
        { "POST", "/v1/chunks/upload", h_upload, .upload = true },
        { "GET", "/v1/manifests/:vm/:version/:file", h_mget },
        { "PUT", "/v1/manifests/:vm/:version/:file", h_mput },
        { NULL },
};

static void write_random(const char *path, size_t mib, unsigned seed) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        srand(seed);
        char buf[1 << 16];
        for (size_t i = 0; i < mib * 16; i++) {
                for (size_t k = 0; k < sizeof buf; k++)
                        buf[k] = (char)rand();
                if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
                        abort();
        }
        close(fd);
}

static nest_manifest_t *import(nest_store_t *s, const char *path) {
        nest_txn_t *t = NULL;
        nest_manifest_t *m = NULL;
        CHECK(nest_txn_begin(s, NEST_TXN_BATCH, &t) == 0);
        CHECK(nest_file_import(t, path, &m, NULL) == 0);
        CHECK(nest_txn_commit(t) == 0);
        nest_txn_free(t);
        return m;
}

int main(void) {
        char dir[] = "/tmp/vmx-test-transfer-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *a_dir = xasprintf("%s/a", dir), *b_dir = xasprintf("%s/b", dir);
        _cleanup_free_ char *tmp = xasprintf("%s/tmp", dir);
        mkdir_p(tmp, 0755);
        nest_store_t *a = NULL, *b = NULL;
        CHECK(nest_store_open(a_dir, &a) == 0 && nest_store_open(b_dir, &b) == 0);
        served = a;
        http_server_t *srv = NULL;
        int port;
        for (port = 23300; port < 23400; port++) {
                _cleanup_free_ char *listen = xasprintf("127.0.0.1:%d", port);
                if (http_server_start(&(http_server_params_t){ .listen = listen, .routes = routes, .upload_dir = tmp, .userdata = NULL }, &srv) == 0)
                        break;
        }
        CHECK(srv != NULL);
        _cleanup_free_ char *base = xasprintf("http://127.0.0.1:%d", port);

        /* a 4 MiB file in A, pulled into B */
        _cleanup_free_ char *f1 = xasprintf("%s/f1", dir);
        write_random(f1, 4, 1);
        nest_manifest_t *m1 = import(a, f1);
        nest_file_ref_t ref = { "web1", 3, "disk", m1 };
        nest_transfer_stats_t st = { 0 };
        char *msg = NULL;
        CHECK(nest_pull(b, base, &ref, 1, 4, NULL, NULL, &st, &msg) == 0);
        CHECK(st.chunks_transferred == st.chunks_total && st.chunks_total > 10);
        CHECK(st.bytes_transferred >= 4u << 20);
        /* B has it all now: a second pull moves nothing */
        CHECK(nest_pull(b, base, &ref, 1, 4, NULL, NULL, &st, &msg) == 0);
        CHECK(st.chunks_transferred == 0 && st.bytes_transferred == 0);
        nest_manifest_t *got = NULL;
        CHECK(nest_manifest_get(b, "web1", 3, "disk", &got) == 0 && got->size == m1->size);
        nest_manifest_free(got);

        /* the manifest by digest: the right one is taken, a wrong digest refused */
        char digest[65];
        nest_manifest_digest(m1, digest);
        nest_txn_t *t = NULL;
        CHECK(nest_txn_begin(a, 0, &t) == 0 && nest_manifest_put(t, "web1", 3, "disk", m1) == 0 && nest_txn_commit(t) == 0);
        nest_txn_free(t);
        CHECK(nest_remote_manifest_get(base, "web1", 3, "disk", digest, &got, &msg) == 0);
        nest_manifest_free(got);
        CHECK(nest_remote_manifest_get(base, "web1", 3, "disk", "00000000000000000000000000000000000000000000000000000000000000ff", &got, &msg) == -EBADMSG);
        free(msg);
        msg = NULL;

        /* push: a file B has and A lacks; only its new chunks move */
        _cleanup_free_ char *f2 = xasprintf("%s/f2", dir);
        write_random(f2, 2, 2);
        nest_manifest_t *m2 = import(b, f2);
        nest_file_ref_t refs[2] = { { "web1", 5, "disk", m1 }, { "web1", 5, "state", m2 } };
        CHECK(nest_push(b, base, refs, 2, 3, NULL, NULL, &st, &msg) == 0);
        CHECK(st.chunks_transferred > 0 && st.chunks_transferred < st.chunks_total);
        CHECK(nest_manifest_get(a, "web1", 5, "state", &got) == 0);
        nest_manifest_free(got);

        /* corruption in the sender's store: the pull fails and B keeps no manifest */
        _cleanup_free_ char *c_dir = xasprintf("%s/c", dir);
        nest_store_t *c = NULL;
        CHECK(nest_store_open(c_dir, &c) == 0);
        char hex[65];
        nest_chunk_id_to_hex(&m2->refs[0].id, hex);
        _cleanup_free_ char *chunk_path = xasprintf("%s/chunks/%.2s/%s", a_dir, hex, hex + 2);
        int fd = open(chunk_path, O_WRONLY);
        CHECK(fd >= 0);
        if (fd >= 0) {
                CHECK(pwrite(fd, "XXXX", 4, 20) == 4);
                close(fd);
        }
        nest_file_ref_t r3 = { "web1", 5, "state", m2 };
        CHECK(nest_pull(c, base, &r3, 1, 2, NULL, NULL, &st, &msg) < 0);
        CHECK(msg != NULL);
        free(msg);
        msg = NULL;
        CHECK(nest_manifest_get(c, "web1", 5, "state", &got) == -ENOENT);

        /* a node's segment cache: a record corrupted in its segment file is detected when the file
         * is rebuilt, never used, and the next pull fetches exactly that chunk again */
        _cleanup_free_ char *d_dir = xasprintf("%s/d", dir);
        nest_store_t *d = NULL;
        CHECK(nest_cache_open(d_dir, 0, &d) == 0);
        CHECK(nest_pull(d, base, &ref, 1, 4, NULL, NULL, &st, &msg) == 0 && st.chunks_transferred == st.chunks_total);
        _cleanup_free_ char *seg = xasprintf("%s/segments/00000001.seg", d_dir);
        fd = open(seg, O_RDWR);
        CHECK(fd >= 0);
        if (fd >= 0) {
                CHECK(pwrite(fd, "XXXX", 4, 44 + 8 + 100) == 4); /* inside the first record's payload */
                close(fd);
        }
        _cleanup_free_ char *out = xasprintf("%s/f1.out", dir);
        CHECK(nest_file_export_path(d, m1, out) == -EBADMSG);
        nest_store_counters_t dc;
        nest_store_counters(d, &dc);
        CHECK(dc.quarantined == 1);
        CHECK(nest_pull(d, base, &ref, 1, 4, NULL, NULL, &st, &msg) == 0 && st.chunks_transferred == 1);
        CHECK(nest_file_export_path(d, m1, out) == 0);
        _cleanup_free_ char *want = NULL, *have = NULL;
        size_t want_len = 0, have_len = 0;
        CHECK(file_read(f1, &want, &want_len) == 0 && file_read(out, &have, &have_len) == 0);
        nest_chunk_id_t hw, hh;
        nest_chunk_id_hash(want, want_len, &hw);
        nest_chunk_id_hash(have, have_len, &hh);
        CHECK(want_len == have_len && nest_chunk_id_equal(&hw, &hh));
        nest_store_free(d);

        /* one pass into a file: fetched chunks are written where they go as they arrive; a second
         * pull reads them from the cache; a corrupt cached chunk is fetched again */
        CHECK(nest_cache_open(d_dir, 0, &d) == 0);
        _cleanup_free_ char *e_dir = xasprintf("%s/e", dir);
        nest_store_t *e = NULL;
        CHECK(nest_cache_open(e_dir, 0, &e) == 0);
        _cleanup_free_ char *into = xasprintf("%s/into", dir);
        for (int round = 0; round < 3; round++) {
                if (round == 2) {
                        _cleanup_free_ char *eseg = xasprintf("%s/segments/00000001.seg", e_dir);
                        fd = open(eseg, O_RDWR);
                        CHECK(fd >= 0 && pwrite(fd, "XXXX", 4, 44 + 8 + 100) == 4);
                        if (fd >= 0)
                                close(fd);
                }
                fd = open(into, O_RDWR | O_CREAT, 0644);
                CHECK(fd >= 0 && write(fd, "junk", 4) == 4);
                CHECK(nest_pull_into(e, base, &ref, fd, 4, 0, NULL, NULL, &st, &msg) == 0);
                close(fd);
                CHECK(st.chunks_transferred == (round == 0 ? st.chunks_total : round == 1 ? 0 : 1));
                free(have);
                have = NULL;
                CHECK(file_read(into, &have, &have_len) == 0);
                nest_chunk_id_hash(have, have_len, &hh);
                CHECK(want_len == have_len && nest_chunk_id_equal(&hw, &hh));
        }
        CHECK(nest_manifest_get(e, "web1", 3, "disk", &got) == 0);
        nest_manifest_free(got);
        nest_store_free(e);
        nest_store_free(d);

        /* a peer that is gone */
        http_server_stop(srv);
        CHECK(nest_pull(c, base, &ref, 1, 2, NULL, NULL, &st, &msg) == -EHOSTUNREACH);
        free(msg);

        nest_manifest_free(m1);
        nest_manifest_free(m2);
        nest_store_free(a);
        nest_store_free(b);
        nest_store_free(c);
        rm_rf(dir);
        return tap_finish();
}
