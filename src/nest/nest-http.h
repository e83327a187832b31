/* The chunk-transfer protocol, server side: handlers that serve a chunk store over HTTP. The
 * Oracle serves the Nest with them and every node serves its chunk cache (so a migration pulls
 * from the origin RM). The daemon's own route handler calls these with its store.
 *
 *   GET  /v1/chunks/:id                       one chunk, encoded as stored (compressed)
 *   POST /v1/chunks/missing  {"chunks":[ID]}  -> {"missing":[ID]}: which of these the store lacks
 *   POST /v1/chunks/fetch    {"chunks":[ID]}  -> frames of the chunks (absent ones marked)
 *   POST /v1/chunks/upload   frames           -> {"stored": N, "bytes": B}; every chunk verified
 *   GET  /v1/manifests/:vm/:version/:file     the manifest's canonical text
 *   PUT  /v1/manifests/:vm/:version/:file     a manifest whose chunks are all present
 *
 * A frame is the chunk id (32 bytes), its encoded length (4 bytes, big endian; 0xffffffff for a
 * chunk the sender does not have) and the encoded chunk. At most NEST_HTTP_BATCH ids a request. */
#pragma once

#include "nest/chunk-store.h"
#include "net/http-server.h"

#define NEST_HTTP_BATCH 64
#define NEST_FRAME_ABSENT 0xffffffffu

void nest_http_chunk_get(nest_store_t *s, const http_request_t *req, http_reply_t *reply);
void nest_http_chunks_missing(nest_store_t *s, const http_request_t *req, http_reply_t *reply);
void nest_http_chunks_fetch(nest_store_t *s, const http_request_t *req, http_reply_t *reply);
void nest_http_chunks_upload(nest_store_t *s, const http_request_t *req, http_reply_t *reply);
/* req->params: vm, version, file (the routes above). */
void nest_http_manifest_get(nest_store_t *s, const http_request_t *req, http_reply_t *reply);
void nest_http_manifest_put(nest_store_t *s, const http_request_t *req, http_reply_t *reply);
