/* Server side of the chunk-transfer protocol (see nest-http.h). Every id, length and manifest
 * that arrives is untrusted: parsed strictly, and an uploaded chunk is stored only after it
 * decoded to content with the id it claimed. */
#include "nest/nest-http.h"

#include <arpa/inet.h>
#include <string.h>

#include "base/util.h"
#include "nest/manifest.h"

static int ids_from_body(const http_request_t *req, http_reply_t *reply, nest_chunk_id_t **ret, size_t *ret_n) {
        const json_t *arr = json_object_get(req->body, "chunks");
        if (!json_is_array(arr) || json_array_size(arr) > NEST_HTTP_BATCH * 16) {
                http_reply_error(reply, 400, "invalid", "\"chunks\" must be an array of at most %d chunk ids",
                                 NEST_HTTP_BATCH * 16);
                return -EINVAL;
        }
        size_t n = json_array_size(arr);
        nest_chunk_id_t *ids = xcalloc(n ? n : 1, sizeof *ids);
        for (size_t i = 0; i < n; i++) {
                const char *hex = json_string_value(json_array_get(arr, i));
                if (!hex || nest_chunk_id_from_hex(hex, &ids[i]) < 0) {
                        free(ids);
                        http_reply_error(reply, 400, "invalid", "chunk id %zu is not 64 hex digits", i);
                        return -EINVAL;
                }
        }
        *ret = ids;
        *ret_n = n;
        return 0;
}

void nest_http_chunk_get(nest_store_t *s, const http_request_t *req, http_reply_t *reply) {
        nest_chunk_id_t id;
        if (nest_chunk_id_from_hex(req->params[0], &id) < 0) {
                http_reply_error(reply, 400, "invalid", "a chunk id is 64 hex digits");
                return;
        }
        void *data = NULL;
        size_t len = 0;
        int r = nest_chunk_get_encoded(s, &id, &data, &len);
        if (r < 0) {
                http_reply_errno(reply, r == -EBADMSG ? -ENOENT : r, "chunk %s: %s", req->params[0],
                                 r == -EBADMSG ? "corrupt here (quarantined)" : strerror(-r));
                return;
        }
        http_reply_bytes(reply, 200, data, len);
}

void nest_http_chunks_missing(nest_store_t *s, const http_request_t *req, http_reply_t *reply) {
        nest_chunk_id_t *ids = NULL;
        size_t n = 0;
        if (ids_from_body(req, reply, &ids, &n) < 0)
                return;
        json_t *missing = json_array();
        for (size_t i = 0; i < n; i++)
                if (!nest_chunk_has(s, &ids[i])) {
                        char hex[65];
                        nest_chunk_id_to_hex(&ids[i], hex);
                        json_array_append_new(missing, json_string(hex));
                }
        free(ids);
        http_reply_json(reply, 200, json_pack("{s:o}", "missing", missing));
}

typedef struct frame_buf {
        char *data;
        size_t len, cap;
} frame_buf_t;

static void frame_append(frame_buf_t *b, const void *p, size_t n) {
        if (b->len + n > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + n + 4096);
                char *d = realloc(b->data, cap);
                if (!d)
                        abort();
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
}

void nest_http_chunks_fetch(nest_store_t *s, const http_request_t *req, http_reply_t *reply) {
        nest_chunk_id_t *ids = NULL;
        size_t n = 0;
        if (ids_from_body(req, reply, &ids, &n) < 0)
                return;
        if (n > NEST_HTTP_BATCH) {
                free(ids);
                http_reply_error(reply, 400, "invalid", "at most %d chunks a fetch", NEST_HTTP_BATCH);
                return;
        }
        frame_buf_t b = { 0 };
        for (size_t i = 0; i < n; i++) {
                void *data = NULL;
                size_t len = 0;
                /* a chunk that is absent or fails verification here is reported absent: the
                 * client fetches it from another copy or fails cleanly */
                uint32_t be = htonl(NEST_FRAME_ABSENT);
                if (nest_chunk_get_encoded(s, &ids[i], &data, &len) >= 0 && len < NEST_FRAME_ABSENT)
                        be = htonl((uint32_t)len);
                frame_append(&b, ids[i].bytes, sizeof ids[i].bytes);
                frame_append(&b, &be, sizeof be);
                if (ntohl(be) != NEST_FRAME_ABSENT)
                        frame_append(&b, data, len);
                free(data);
        }
        free(ids);
        http_reply_bytes(reply, 200, b.data ? b.data : xstrdup(""), b.len);
}

void nest_http_chunks_upload(nest_store_t *s, const http_request_t *req, http_reply_t *reply) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        if (!req->upload_path || file_read(req->upload_path, &data, &len) < 0) {
                http_reply_errno(reply, -EIO, "cannot read the upload");
                return;
        }
        nest_txn_t *t = NULL;
        int r = nest_txn_begin(s, NEST_TXN_BATCH, &t);
        if (r < 0) {
                http_reply_errno(reply, r, "the chunk store is busy: %s", strerror(-r));
                return;
        }
        size_t off = 0, stored = 0;
        uint64_t bytes = 0;
        while (r >= 0 && off < len) {
                nest_chunk_id_t id;
                uint32_t be;
                if (len - off < sizeof id.bytes + sizeof be) {
                        r = -EINVAL;
                        break;
                }
                memcpy(id.bytes, data + off, sizeof id.bytes);
                memcpy(&be, data + off + sizeof id.bytes, sizeof be);
                off += sizeof id.bytes + sizeof be;
                uint32_t n = ntohl(be);
                if (n == NEST_FRAME_ABSENT || n > len - off) {
                        r = -EINVAL;
                        break;
                }
                size_t st = 0;
                r = nest_chunk_put_encoded(t, &id, data + off, n, &st);
                off += n;
                stored += r > 0;
                bytes += st;
        }
        if (r >= 0)
                r = nest_txn_commit(t);
        nest_txn_free(t);
        if (r == -EINVAL) {
                http_reply_error(reply, 400, "invalid", "malformed chunk frames");
                return;
        }
        if (r == -EBADMSG) {
                http_reply_error(reply, 400, "corrupt", "a chunk did not match its id: nothing of it was stored");
                return;
        }
        if (r < 0) {
                http_reply_errno(reply, r, "cannot store chunks: %s", strerror(-r));
                return;
        }
        http_reply_json(reply, 200, json_pack("{s:I,s:I}", "stored", (json_int_t)stored, "bytes", (json_int_t)bytes));
}

static int manifest_key(const http_request_t *req, http_reply_t *reply, int64_t *ret_version) {
        int64_t v = 0;
        if (!name_is_valid(req->params[0]) || parse_int64(req->params[1], 0, INT64_MAX, &v) < 0 ||
            !nest_manifest_file_name_is_valid(req->params[2])) {
                http_reply_error(reply, 400, "invalid", "invalid manifest path");
                return -EINVAL;
        }
        *ret_version = v;
        return 0;
}

void nest_http_manifest_get(nest_store_t *s, const http_request_t *req, http_reply_t *reply) {
        int64_t version = 0;
        if (manifest_key(req, reply, &version) < 0)
                return;
        nest_manifest_t *m = NULL;
        int r = nest_manifest_get(s, req->params[0], version, req->params[2], &m);
        if (r < 0) {
                http_reply_errno(reply, r, "no manifest %s/%lld/%s", req->params[0], (long long)version, req->params[2]);
                return;
        }
        char *text = nest_manifest_format(m);
        nest_manifest_free(m);
        http_reply_bytes(reply, 200, text, strlen(text));
}

void nest_http_manifest_put(nest_store_t *s, const http_request_t *req, http_reply_t *reply) {
        int64_t version = 0;
        if (manifest_key(req, reply, &version) < 0)
                return;
        nest_manifest_t *m = NULL;
        if (!req->body || nest_manifest_from_json(req->body, &m) < 0) {
                http_reply_error(reply, 400, "invalid", "the body is not a valid manifest");
                return;
        }
        nest_txn_t *t = NULL;
        int r = nest_txn_begin(s, 0, &t);
        nest_chunk_id_t *missing = NULL;
        size_t n_missing = 0;
        if (r >= 0)
                r = nest_manifest_missing(t, m, &missing, &n_missing, NULL);
        if (r >= 0 && n_missing > 0) {
                char hex[65];
                nest_chunk_id_to_hex(&missing[0], hex);
                http_reply_error(reply, 409, "missing_chunks", "the manifest names %zu chunks the store lacks (first %s)",
                                 n_missing, hex);
                free(missing);
                nest_txn_free(t);
                nest_manifest_free(m);
                return;
        }
        free(missing);
        if (r >= 0)
                r = nest_manifest_put(t, req->params[0], version, req->params[2], m);
        if (r >= 0)
                r = nest_txn_commit(t);
        nest_txn_free(t);
        nest_manifest_free(m);
        if (r == -EEXIST) {
                http_reply_error(reply, 409, "immutable", "manifest %s/%lld/%s exists with other contents",
                                 req->params[0], (long long)version, req->params[2]);
                return;
        }
        if (r < 0) {
                http_reply_errno(reply, r, "cannot store the manifest: %s", strerror(-r));
                return;
        }
        http_reply_json(reply, 201, json_object());
}
