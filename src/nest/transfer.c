/* Client side of the chunk-transfer protocol (transfer.h). A transfer first asks which chunks the
 * destination lacks, then moves those in batches of NEST_HTTP_BATCH over `streams` parallel
 * HTTP connections (one thread each, each with its own write session), and writes the
 * manifests last, so a destination never holds a manifest whose chunks it does not have. */
#include "nest/transfer.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "nest/nest-http.h"
#include "net/http-client.h"

#define TRANSFER_TIMEOUT_MS (10L * 60 * 1000)
#define TRANSFER_STREAMS_MAX 16

void nest_manifest_digest(const nest_manifest_t *m, char ret_hex[65]) {
        _cleanup_free_ char *text = nest_manifest_format(m);
        nest_chunk_id_t id;
        nest_chunk_id_hash(text, strlen(text), &id);
        nest_chunk_id_to_hex(&id, ret_hex);
}

int nest_remote_manifest_get(const char *base_url, const char *vm, int64_t version, const char *file,
                             const char *digest, nest_manifest_t **ret, char **ret_msg) {
        _cleanup_free_ char *url = xasprintf("%s/v1/manifests/%s/%lld/%s", base_url, vm, (long long)version, file);
        http_response_t resp = { 0 };
        int r = http_request_json("GET", url, NULL, 30000, &resp);
        if (r < 0) {
                *ret_msg = xasprintf("cannot reach %s: %s", base_url, http_error_message(NULL, r));
                return -EHOSTUNREACH;
        }
        if (resp.status != 200) {
                *ret_msg = xasprintf("manifest %s/%lld/%s: %s", vm, (long long)version, file, http_error_message(&resp, 0));
                http_response_clear(&resp);
                return -ENOENT;
        }
        if (digest) {
                nest_chunk_id_t id;
                char hex[65];
                nest_chunk_id_hash(resp.body, resp.body_len, &id);
                nest_chunk_id_to_hex(&id, hex);
                if (!streq(hex, digest)) {
                        *ret_msg = xasprintf("manifest %s/%lld/%s from %s does not match its digest: not used", vm,
                                             (long long)version, file, base_url);
                        http_response_clear(&resp);
                        return -EBADMSG;
                }
        }
        r = nest_manifest_parse(resp.body, resp.body_len, ret);
        http_response_clear(&resp);
        if (r < 0)
                *ret_msg = xasprintf("manifest %s/%lld/%s from %s is malformed", vm, (long long)version, file, base_url);
        return r;
}

/* The distinct data chunks of files[] (with their lengths), in order of first appearance. */
static void distinct_chunks(const nest_file_ref_t *files, size_t n, nest_chunk_ref_t **ret, size_t *ret_n,
                            nest_transfer_stats_t *st) {
        nest_idset_t *seen = nest_idset_new();
        size_t cap = 64, k = 0;
        nest_chunk_ref_t *out = xcalloc(cap, sizeof *out);
        for (size_t f = 0; f < n; f++) {
                const nest_manifest_t *m = files[f].manifest;
                st->bytes_total += m->size;
                for (size_t i = 0; i < m->n_refs; i++) {
                        if (m->refs[i].zero)
                                continue;
                        st->chunks_total++;
                        if (!nest_idset_add(seen, &m->refs[i].id))
                                continue;
                        if (k == cap) {
                                cap *= 2;
                                nest_chunk_ref_t *o = realloc(out, cap * sizeof *out);
                                if (!o)
                                        abort();
                                out = o;
                        }
                        out[k++] = m->refs[i];
                }
        }
        nest_idset_free(seen);
        *ret = out;
        *ret_n = k;
}

/* Work shared by the streams of one transfer. */
typedef struct job {
        nest_store_t *local;
        const char *base;
        nest_chunk_ref_t *pending;
        size_t n_pending;
        size_t next; /* next batch start, under lock */
        pthread_mutex_t lock;
        uint64_t done_bytes, total_bytes;
        nest_transfer_stats_t *stats;
        nest_progress_fn progress;
        void *userdata;
        int error;
        char *msg;
        /* pull into a file (nest_pull_into): each chunk is also written at its offsets in fd */
        int fd;
        const struct place *places; /* sorted by id: a chunk's offsets are consecutive */
        size_t n_places;
        size_t *first;              /* pending[i]'s first place */
        size_t *refetch;            /* local chunks that failed to read: pending indexes */
        size_t n_refetch;
        uint64_t max_bps;           /* pull: bytes per second over all streams, 0 unbounded */
        unsigned n_streams;         /* set by run_streams */
} job_t;

/* Holds a stream back so that its share of max_bps is not passed: wire bytes fetched since
 * start_ms. */
static void pace(const job_t *j, uint64_t wire, int64_t start_ms) {
        if (j->max_bps == 0)
                return;
        uint64_t share = MAX(j->max_bps / MAX(j->n_streams, 1u), (uint64_t)1);
        int64_t due = start_ms + (int64_t)(wire * 1000 / share);
        int64_t now = time_now_ms();
        if (due > now)
                time_sleep_ms(due - now);
}

/* Where a data chunk of the file goes. */
typedef struct place {
        nest_chunk_id_t id;
        uint64_t off;
        uint32_t len;
} place_t;

/* Writes a chunk's content at every offset the file has it. */
static int places_write(const job_t *j, size_t first, const void *data, size_t len) {
        for (size_t p = first; p < j->n_places && nest_chunk_id_equal(&j->places[p].id, &j->places[first].id); p++) {
                if (j->places[p].len != len)
                        return -EBADMSG; /* the manifest says another length: it lies */
                int r = fd_pwrite_all(j->fd, data, len, j->places[p].off);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool job_take(job_t *j, size_t *ret_start, size_t *ret_n) {
        pthread_mutex_lock(&j->lock);
        bool ok = j->error == 0 && j->next < j->n_pending;
        if (ok) {
                *ret_start = j->next;
                *ret_n = MIN((size_t)NEST_HTTP_BATCH, j->n_pending - j->next);
                j->next += *ret_n;
        }
        pthread_mutex_unlock(&j->lock);
        return ok;
}

static void job_fail(job_t *j, int r, char *msg) {
        pthread_mutex_lock(&j->lock);
        if (j->error == 0) {
                j->error = r;
                j->msg = msg;
                msg = NULL;
        }
        pthread_mutex_unlock(&j->lock);
        free(msg);
}

static void job_advance(job_t *j, uint64_t logical, uint64_t wire, uint64_t chunks) {
        pthread_mutex_lock(&j->lock);
        j->done_bytes += logical;
        j->stats->bytes_transferred += wire;
        j->stats->chunks_transferred += chunks;
        if (j->progress)
                j->progress(j->userdata, j->done_bytes, j->total_bytes);
        pthread_mutex_unlock(&j->lock);
}

/* One pull stream: fetch batches and store each verified chunk. */
static void *pull_stream(void *arg) {
        job_t *j = arg;
        _cleanup_free_ char *url = xasprintf("%s/v1/chunks/fetch", j->base);
        nest_txn_t *t = NULL;
        /* a cache writes without syncs anyway: unbatched, each chunk is visible as it lands, so a
         * reader can stream the file while it arrives (node-nest.c) */
        int r = nest_txn_begin(j->local, nest_store_is_cache(j->local) ? 0 : NEST_TXN_BATCH, &t);
        if (r < 0) {
                job_fail(j, r, xasprintf("local chunk store: %s", strerror(-r)));
                return NULL;
        }
        size_t start, n;
        _cleanup_free_ uint8_t *scratch = j->fd >= 0 ? malloc(NEST_STORE_CHUNK_MAX) : NULL;
        if (j->fd >= 0 && !scratch)
                r = -ENOMEM;
        int64_t started_ms = time_now_ms();
        uint64_t fetched = 0;
        while (r >= 0 && job_take(j, &start, &n)) {
                json_t *ids = json_array();
                for (size_t i = 0; i < n; i++) {
                        char hex[65];
                        nest_chunk_id_to_hex(&j->pending[start + i].id, hex);
                        json_array_append_new(ids, json_string(hex));
                }
                json_t *body = json_pack("{s:o}", "chunks", ids);
                http_response_t resp = { 0 };
                r = http_request_json("POST", url, body, TRANSFER_TIMEOUT_MS, &resp);
                json_decref(body);
                if (r < 0 || resp.status != 200) {
                        job_fail(j, r < 0 ? -EHOSTUNREACH : -EIO,
                                 xasprintf("fetching chunks from %s: %s", j->base, http_error_message(&resp, r)));
                        http_response_clear(&resp);
                        break;
                }
                /* frames arrive in the order asked; each must be the chunk asked for */
                size_t off = 0;
                uint64_t logical = 0;
                for (size_t i = 0; i < n && r >= 0; i++) {
                        const nest_chunk_ref_t *want = &j->pending[start + i];
                        uint32_t be = 0;
                        if (resp.body_len - off < NEST_CHUNK_ID_SIZE + sizeof be ||
                            memcmp(resp.body + off, want->id.bytes, NEST_CHUNK_ID_SIZE) != 0) {
                                r = -EPROTO;
                                break;
                        }
                        memcpy(&be, resp.body + off + NEST_CHUNK_ID_SIZE, sizeof be);
                        off += NEST_CHUNK_ID_SIZE + sizeof be;
                        uint32_t len = ntohl(be);
                        if (len == NEST_FRAME_ABSENT) {
                                r = -ENOENT;
                                break;
                        }
                        if (len > resp.body_len - off) {
                                r = -EPROTO;
                                break;
                        }
                        if (j->fd >= 0) { /* decoded and hashed once, written where it goes */
                                size_t dlen = 0;
                                r = nest_chunk_put_encoded_into(t, &want->id, resp.body + off, len, scratch,
                                                                NEST_STORE_CHUNK_MAX, &dlen);
                                if (r >= 0)
                                        r = places_write(j, j->first[start + i], scratch, dlen);
                                if (r < 0 && r != -EBADMSG)
                                        r = -EIO;
                        } else {
                                r = nest_chunk_put_encoded(t, &want->id, resp.body + off, len, NULL);
                        }
                        off += len;
                        logical += want->len;
                }
                size_t wire = resp.body_len;
                http_response_clear(&resp);
                fetched += wire;
                if (r < 0) {
                        char hex[65];
                        nest_chunk_id_to_hex(&j->pending[start].id, hex);
                        job_fail(j, r == -EPROTO ? -EBADMSG : r,
                                 xasprintf("%s sent %s (batch from chunk %.12s): nothing of it was used", j->base,
                                           r == -ENOENT ? "word that it lacks a chunk"
                                           : r == -EBADMSG ? "a chunk that does not match its id"
                                           : r == -EIO     ? "chunks that could not be written to the file"
                                                           : "malformed chunk frames",
                                           hex));
                        break;
                }
                job_advance(j, logical, wire, n);
                pace(j, fetched, started_ms);
        }
        if (r >= 0 && j->error == 0) {
                r = nest_txn_commit(t);
                if (r < 0)
                        job_fail(j, r, xasprintf("storing fetched chunks: %s", strerror(-r)));
        }
        nest_txn_free(t);
        return NULL;
}

/* One push stream: read batches from the local store and upload them as frames. */
static void *push_stream(void *arg) {
        job_t *j = arg;
        _cleanup_free_ char *url = xasprintf("%s/v1/chunks/upload", j->base);
        size_t start, n;
        while (job_take(j, &start, &n)) {
                char *buf = NULL;
                size_t len = 0, cap = 0;
                uint64_t logical = 0;
                int r = 0;
                for (size_t i = 0; i < n; i++) {
                        void *enc = NULL;
                        size_t enc_len = 0;
                        r = nest_chunk_get_encoded(j->local, &j->pending[start + i].id, &enc, &enc_len);
                        if (r < 0)
                                break;
                        size_t need = len + NEST_CHUNK_ID_SIZE + 4 + enc_len;
                        if (need > cap) {
                                cap = MAX(need, cap * 2);
                                char *b = realloc(buf, cap);
                                if (!b)
                                        abort();
                                buf = b;
                        }
                        uint32_t be = htonl((uint32_t)enc_len);
                        memcpy(buf + len, j->pending[start + i].id.bytes, NEST_CHUNK_ID_SIZE);
                        memcpy(buf + len + NEST_CHUNK_ID_SIZE, &be, 4);
                        memcpy(buf + len + NEST_CHUNK_ID_SIZE + 4, enc, enc_len);
                        len = need;
                        logical += j->pending[start + i].len;
                        free(enc);
                }
                if (r < 0) {
                        free(buf);
                        job_fail(j, r, xasprintf("local chunk store: %s", strerror(-r)));
                        break;
                }
                http_response_t resp = { 0 };
                r = http_request_bytes("POST", url, buf, len, TRANSFER_TIMEOUT_MS, &resp);
                free(buf);
                if (r < 0 || resp.status != 200) {
                        job_fail(j, r < 0 ? -EHOSTUNREACH : resp.status == 507 ? -ENOSPC : -EIO,
                                 xasprintf("sending chunks to %s: %s", j->base, http_error_message(&resp, r)));
                        http_response_clear(&resp);
                        break;
                }
                http_response_clear(&resp);
                job_advance(j, logical, len, n);
        }
        return NULL;
}

static int run_streams(job_t *j, unsigned streams, void *(*fn)(void *)) {
        streams = MAX(1u, MIN(streams, (unsigned)TRANSFER_STREAMS_MAX));
        pthread_t t[TRANSFER_STREAMS_MAX];
        unsigned started = 0;
        j->n_streams = 0;
        for (unsigned i = 0; i < streams && i * NEST_HTTP_BATCH < j->n_pending; i++)
                j->n_streams++;
        for (unsigned i = 0; i < j->n_streams; i++)
                if (pthread_create(&t[started], NULL, fn, j) == 0)
                        started++;
        if (started == 0 && j->n_pending > 0)
                fn(j);
        for (unsigned i = 0; i < started; i++)
                pthread_join(t[i], NULL);
        return j->error;
}

int nest_pull(nest_store_t *local, const char *base_url, const nest_file_ref_t *files, size_t n, unsigned streams,
              nest_progress_fn progress, void *userdata, nest_transfer_stats_t *ret_stats, char **ret_msg) {
        return nest_pull_paced(local, base_url, files, n, streams, 0, progress, userdata, ret_stats, ret_msg);
}

int nest_pull_paced(nest_store_t *local, const char *base_url, const nest_file_ref_t *files, size_t n,
                    unsigned streams, uint64_t max_bps, nest_progress_fn progress, void *userdata,
                    nest_transfer_stats_t *ret_stats, char **ret_msg) {
        nest_transfer_stats_t st = { 0 };
        nest_chunk_ref_t *all = NULL;
        size_t n_all = 0;
        distinct_chunks(files, n, &all, &n_all, &st);
        /* the session pins what is present; it lasts until the manifests are in place */
        nest_txn_t *t = NULL;
        int r = nest_txn_begin(local, 0, &t);
        if (r < 0) {
                free(all);
                *ret_msg = xasprintf("local chunk store: %s", strerror(-r));
                return r;
        }
        job_t j = { .local = local, .base = base_url, .stats = &st, .progress = progress, .userdata = userdata,
                    .fd = -1, .max_bps = max_bps };
        pthread_mutex_init(&j.lock, NULL);
        j.pending = xcalloc(n_all ? n_all : 1, sizeof *j.pending);
        for (size_t i = 0; i < n_all; i++)
                if (nest_chunk_pin(t, &all[i].id) == 0) {
                        j.pending[j.n_pending++] = all[i];
                        j.total_bytes += all[i].len;
                }
        free(all);
        r = run_streams(&j, streams, pull_stream);
        for (size_t f = 0; r >= 0 && f < n; f++) {
                r = nest_manifest_put(t, files[f].vm, files[f].version, files[f].file, files[f].manifest);
                if (r == -EEXIST)
                        r = 0; /* an identical copy is there; a different one cannot be (immutable) */
                if (r < 0)
                        j.msg = xasprintf("storing manifest %s/%lld/%s: %s", files[f].vm, (long long)files[f].version,
                                          files[f].file, strerror(-r));
        }
        if (r >= 0)
                r = nest_txn_commit(t);
        nest_txn_free(t);
        free(j.pending);
        pthread_mutex_destroy(&j.lock);
        if (r < 0) {
                *ret_msg = j.msg ? j.msg : xasprintf("pull from %s failed: %s", base_url, strerror(-r));
                return r;
        }
        free(j.msg);
        if (ret_stats)
                *ret_stats = st;
        return 0;
}

int nest_push(nest_store_t *local, const char *base_url, const nest_file_ref_t *files, size_t n, unsigned streams,
              nest_progress_fn progress, void *userdata, nest_transfer_stats_t *ret_stats, char **ret_msg) {
        nest_transfer_stats_t st = { 0 };
        nest_chunk_ref_t *all = NULL;
        size_t n_all = 0;
        distinct_chunks(files, n, &all, &n_all, &st);
        job_t j = { .local = local, .base = base_url, .stats = &st, .progress = progress, .userdata = userdata,
                    .fd = -1 };
        pthread_mutex_init(&j.lock, NULL);
        j.pending = xcalloc(n_all ? n_all : 1, sizeof *j.pending);
        _cleanup_free_ char *missing_url = xasprintf("%s/v1/chunks/missing", base_url);
        int r = 0;
        /* ask in slices which chunks the peer lacks */
        for (size_t i = 0; i < n_all && r >= 0; i += NEST_HTTP_BATCH * 16) {
                size_t k = MIN((size_t)NEST_HTTP_BATCH * 16, n_all - i);
                json_t *ids = json_array();
                for (size_t x = 0; x < k; x++) {
                        char hex[65];
                        nest_chunk_id_to_hex(&all[i + x].id, hex);
                        json_array_append_new(ids, json_string(hex));
                }
                json_t *body = json_pack("{s:o}", "chunks", ids);
                http_response_t resp = { 0 };
                r = http_request_json("POST", missing_url, body, 60000, &resp);
                json_decref(body);
                const json_t *missing = json_object_get(resp.json, "missing");
                if (r < 0 || resp.status != 200 || !json_is_array(missing)) {
                        j.msg = xasprintf("asking %s for missing chunks: %s", base_url, http_error_message(&resp, r));
                        r = r < 0 ? -EHOSTUNREACH : -EIO;
                } else {
                        nest_idset_t *lacks = nest_idset_new();
                        size_t q;
                        const json_t *h;
                        json_array_foreach(missing, q, h) {
                                nest_chunk_id_t id;
                                if (json_is_string(h) && nest_chunk_id_from_hex(json_string_value(h), &id) >= 0)
                                        nest_idset_add(lacks, &id);
                        }
                        for (size_t x = 0; x < k; x++)
                                if (nest_idset_contains(lacks, &all[i + x].id)) {
                                        j.pending[j.n_pending++] = all[i + x];
                                        j.total_bytes += all[i + x].len;
                                }
                        nest_idset_free(lacks);
                }
                http_response_clear(&resp);
        }
        free(all);
        if (r >= 0)
                r = run_streams(&j, streams, push_stream);
        for (size_t f = 0; r >= 0 && f < n; f++) {
                json_t *m = nest_manifest_to_json(files[f].manifest);
                _cleanup_free_ char *url = xasprintf("%s/v1/manifests/%s/%lld/%s", base_url, files[f].vm,
                                                     (long long)files[f].version, files[f].file);
                http_response_t resp = { 0 };
                r = http_request_json("PUT", url, m, 60000, &resp);
                json_decref(m);
                if (r < 0 || resp.status != 201) {
                        j.msg = xasprintf("storing manifest %s/%lld/%s at %s: %s", files[f].vm,
                                          (long long)files[f].version, files[f].file, base_url,
                                          http_error_message(&resp, r));
                        r = r < 0 ? -EHOSTUNREACH : resp.status == 409 ? -EEXIST : -EIO;
                }
                http_response_clear(&resp);
        }
        free(j.pending);
        pthread_mutex_destroy(&j.lock);
        if (r < 0) {
                *ret_msg = j.msg ? j.msg : xasprintf("push to %s failed: %s", base_url, strerror(-r));
                return r;
        }
        free(j.msg);
        if (ret_stats)
                *ret_stats = st;
        return 0;
}

/* One stream of the local part of a pull into a file: chunks the cache has are read (verified)
 * and written at their offsets; one that fails to read goes on the refetch list. */
static void *local_stream(void *arg) {
        job_t *j = arg;
        _cleanup_free_ uint8_t *buf = malloc(NEST_STORE_CHUNK_MAX);
        if (!buf) {
                job_fail(j, -ENOMEM, xasprintf("out of memory"));
                return NULL;
        }
        size_t start, n;
        while (job_take(j, &start, &n)) {
                uint64_t logical = 0;
                for (size_t i = start; i < start + n; i++) {
                        size_t len = 0;
                        int r = nest_chunk_read(j->local, &j->pending[i].id, buf, NEST_STORE_CHUNK_MAX, &len);
                        if (r == -EBADMSG || r == -ENOENT) { /* corrupt (now dead): fetched again */
                                pthread_mutex_lock(&j->lock);
                                j->refetch[j->n_refetch++] = i;
                                pthread_mutex_unlock(&j->lock);
                                continue;
                        }
                        if (r >= 0)
                                r = places_write(j, j->first[i], buf, len);
                        if (r < 0) {
                                job_fail(j, r, xasprintf("rebuilding the file from the cache: %s", strerror(-r)));
                                return NULL;
                        }
                        logical += len;
                }
                job_advance(j, logical, 0, 0);
        }
        return NULL;
}

static int place_cmp(const void *a, const void *b) {
        const place_t *x = a, *y = b;
        int c = memcmp(x->id.bytes, y->id.bytes, NEST_CHUNK_ID_SIZE);
        return c ? c : x->off < y->off ? -1 : x->off > y->off;
}

int nest_pull_into(nest_store_t *local, const char *base_url, const nest_file_ref_t *file, int fd, unsigned streams,
                   uint64_t max_bps, nest_progress_fn progress, void *userdata, nest_transfer_stats_t *ret_stats,
                   char **ret_msg) {
        const nest_manifest_t *m = file->manifest;
        nest_transfer_stats_t st = { .bytes_total = m->size };
        /* every data chunk's offsets, grouped by id */
        size_t np = 0;
        place_t *places = xcalloc(m->n_refs ? m->n_refs : 1, sizeof *places);
        uint64_t off = 0;
        for (size_t i = 0; i < m->n_refs; off += m->refs[i].len, i++)
                if (!m->refs[i].zero) {
                        places[np++] = (place_t){ .id = m->refs[i].id, .off = off, .len = (uint32_t)m->refs[i].len };
                        st.chunks_total++;
                }
        if (np > 0)
                qsort(places, np, sizeof *places, place_cmp);
        /* holes for the zero chunks; everything else is written over */
        int r = ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)m->size) < 0 ? negative_errno() : 0;
        nest_txn_t *t = NULL;
        if (r >= 0)
                r = nest_txn_begin(local, 0, &t);
        if (r < 0) {
                free(places);
                *ret_msg = xasprintf("pull into a file: %s", strerror(-r));
                return r;
        }
        job_t remote = { .local = local, .base = base_url, .stats = &st, .progress = progress, .userdata = userdata,
                         .fd = fd, .places = places, .n_places = np, .max_bps = max_bps };
        job_t here = { .local = local, .base = base_url, .stats = &st, .fd = fd, .places = places, .n_places = np };
        pthread_mutex_init(&remote.lock, NULL);
        pthread_mutex_init(&here.lock, NULL);
        remote.pending = xcalloc(np ? np : 1, sizeof *remote.pending);
        remote.first = xcalloc(np ? np : 1, sizeof *remote.first);
        here.pending = xcalloc(np ? np : 1, sizeof *here.pending);
        here.first = xcalloc(np ? np : 1, sizeof *here.first);
        here.refetch = xcalloc(np ? np : 1, sizeof *here.refetch);
        for (size_t p = 0; p < np && r >= 0; p++) {
                if (p > 0 && nest_chunk_id_equal(&places[p].id, &places[p - 1].id))
                        continue;
                nest_chunk_ref_t ref = { .id = places[p].id, .len = places[p].len };
                int k = nest_chunk_pin(t, &ref.id);
                if (k < 0) {
                        r = k;
                        break;
                }
                job_t *j = k > 0 ? &here : &remote;
                j->first[j->n_pending] = p;
                j->pending[j->n_pending++] = ref;
                j->total_bytes += ref.len;
        }
        remote.total_bytes += here.total_bytes; /* progress: the whole file */
        if (r >= 0)
                r = run_streams(&here, streams, local_stream);
        if (r >= 0 && here.n_refetch > 0) {
                log_warn("%s/%lld/%s: %zu cached chunks were corrupt; fetching them again from %s", file->vm,
                         (long long)file->version, file->file, here.n_refetch, base_url);
                for (size_t i = 0; i < here.n_refetch; i++) {
                        remote.first[remote.n_pending] = here.first[here.refetch[i]];
                        remote.pending[remote.n_pending++] = here.pending[here.refetch[i]];
                }
        }
        if (r >= 0)
                r = run_streams(&remote, streams, pull_stream);
        if (r >= 0) {
                r = nest_manifest_put(t, file->vm, file->version, file->file, m);
                if (r == -EEXIST)
                        r = 0;
                if (r < 0)
                        remote.msg = xasprintf("storing manifest %s/%lld/%s: %s", file->vm, (long long)file->version,
                                               file->file, strerror(-r));
        }
        if (r >= 0)
                r = nest_txn_commit(t);
        nest_txn_free(t);
        char *msg = remote.msg ? remote.msg : here.msg;
        if (remote.msg && here.msg)
                free(here.msg);
        free(remote.pending);
        free(remote.first);
        free(here.pending);
        free(here.first);
        free(here.refetch);
        free(places);
        pthread_mutex_destroy(&remote.lock);
        pthread_mutex_destroy(&here.lock);
        if (r < 0) {
                *ret_msg = msg ? msg : xasprintf("pull from %s into a file failed: %s", base_url, strerror(-r));
                return r;
        }
        free(msg);
        if (ret_stats)
                *ret_stats = st;
        return 0;
}
