/* Join tokens and RM certificates in the store (tables "join_tokens" and "rm_certs"; see
 * auth/join-token.h and docs/tls.md). A join token is kept only as its keyed hash; using one
 * (store_join_token_use) and recording the certificate it paid for (store_rm_cert_put) happen in
 * one transaction of the caller's (store_tx_begin), so a token is spent exactly when a
 * certificate is issued. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct join_token_record {
        char id[24];
        uint8_t hash[32];
        char role[16];          /* production | chamber: the role the RM joins with */
        char provider[64];      /* the provider the RM is assigned to, "" for none */
        char created_by[64];
        int64_t created_ms;
        int64_t expires_ms;
        int64_t used_ms;        /* 0: not used */
        char used_by[64];       /* the RM that joined with it */
} join_token_record_t;

typedef struct rm_cert_record {
        char rm[64];
        char role[16];
        char provider[64];
        char serial[48];        /* of the one certificate the node channel takes for this RM */
        int64_t not_after_s;
        int64_t issued_ms;
        char token[24];         /* the join token it came with */
} rm_cert_record_t;

int store_join_token_insert(store_t *s, const join_token_record_t *t);          /* -EEXIST */
int store_join_token_get(store_t *s, const char *id, join_token_record_t *ret); /* -ENOENT */
/* Marks token id used by rm at now_ms: 0, or -EALREADY when it was used already (nothing
 * changes), -ENOENT. */
int store_join_token_use(store_t *s, const char *id, const char *rm, int64_t now_ms);
/* Deletes join tokens that expired before now_ms, used or not; how many, or -errno. */
int store_join_token_prune(store_t *s, int64_t now_ms);

int store_rm_cert_get(store_t *s, const char *rm, rm_cert_record_t *ret);       /* -ENOENT */
/* Records rm's certificate, replacing the one before. */
int store_rm_cert_put(store_t *s, const rm_cert_record_t *c);
/* Every RM's certificate ordered by name (free the array). */
int store_rm_cert_list(store_t *s, rm_cert_record_t **ret, size_t *ret_n);
