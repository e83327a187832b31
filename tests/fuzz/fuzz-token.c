/* Harness: the token parsers: API tokens (auth/token.h), which read whatever a client puts in
 * its Authorization header, and join tokens (auth/join-token.h), which a new node sends to the
 * node channel before it has a certificate; and the role and permission names a token or a
 * request may carry (auth/roles.h). The input is the text as the server receives it, a NUL-terminated string;
 * it is also given unterminated, in a buffer of exactly its size, which token_parse promises
 * to read no further than TOKEN_TEXT_LEN + 1 bytes into (JOIN_TOKEN_TEXT_LEN + 1 for a join
 * token). Checked: a token accepted is canonical (it formats back to the very same text);
 * parts made from the input's bytes format to a text that parses back to them; a name accepted
 * is the name of what it parsed to. */
#include <sodium.h>
#include <stdbool.h>

#include "auth/join-token.h"
#include "auth/roles.h"
#include "auth/token.h"
#include "fuzz.h"

static void check_text(const char *text) {
        token_parts_t t;
        memset(&t, 0xa5, sizeof t);
        int r = token_parse(text, &t);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        if (r < 0)
                return;
        FUZZ_CHECK(strlen(text) == TOKEN_TEXT_LEN);
        FUZZ_CHECK(strlen(t.id) == TOKEN_ID_LEN);
        char again[TOKEN_TEXT_SIZE];
        token_format(&t, again);
        FUZZ_CHECK(strcmp(again, text) == 0);
}

/* The other way round: parts of the input's bytes (an id of 8 of them in hex, a secret of
 * the next 32) give a text that parses back to them. */
static void check_parts(const uint8_t *data, size_t size) {
        if (size < TOKEN_ID_LEN / 2 + TOKEN_SECRET_BYTES)
                return;
        token_parts_t t = { 0 }, back;
        sodium_bin2hex(t.id, sizeof t.id, data, TOKEN_ID_LEN / 2);
        memcpy(t.secret, data + TOKEN_ID_LEN / 2, TOKEN_SECRET_BYTES);
        char text[TOKEN_TEXT_SIZE];
        token_format(&t, text);
        FUZZ_CHECK(strlen(text) == TOKEN_TEXT_LEN);
        FUZZ_CHECK(token_parse(text, &back) == 0);
        FUZZ_CHECK(memcmp(&t, &back, sizeof t) == 0);
}

static void check_join_text(const char *text) {
        join_token_t j;
        memset(&j, 0xa5, sizeof j);
        int r = join_token_parse(text, &j);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        if (r < 0)
                return;
        FUZZ_CHECK(strlen(text) == JOIN_TOKEN_TEXT_LEN);
        char again[JOIN_TOKEN_TEXT_SIZE];
        join_token_format(&j, again);
        FUZZ_CHECK(strcmp(again, text) == 0);
}

/* A join token of the input's bytes: id (8), secret (32) and CA digest (32). */
static void check_join_parts(const uint8_t *data, size_t size) {
        if (size < TOKEN_ID_LEN / 2 + TOKEN_SECRET_BYTES + JOIN_TOKEN_DIGEST_BYTES)
                return;
        join_token_t j = { 0 }, back;
        sodium_bin2hex(j.t.id, sizeof j.t.id, data, TOKEN_ID_LEN / 2);
        memcpy(j.t.secret, data + TOKEN_ID_LEN / 2, TOKEN_SECRET_BYTES);
        memcpy(j.ca_digest, data + TOKEN_ID_LEN / 2 + TOKEN_SECRET_BYTES, JOIN_TOKEN_DIGEST_BYTES);
        char text[JOIN_TOKEN_TEXT_SIZE];
        join_token_format(&j, text);
        FUZZ_CHECK(strlen(text) == JOIN_TOKEN_TEXT_LEN);
        FUZZ_CHECK(join_token_parse(text, &back) == 0);
        FUZZ_CHECK(memcmp(&j, &back, sizeof j) == 0);
        token_parts_t t;
        FUZZ_CHECK(token_parse(text, &t) == -EINVAL); /* one kind is never taken for the other */
}

static void check_names(const char *text) {
        role_t role;
        if (role_parse(text, &role) == 0)
                FUZZ_CHECK(role_name(role) && strcmp(role_name(role), text) == 0);
        perm_t perm;
        if (perm_parse(text, &perm) == 0)
                FUZZ_CHECK(perm_name(perm) && strcmp(perm_name(perm), text) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FUZZ_CHECK(sodium_init() >= 0);
        char *text = fuzz_string(data, size);
        check_text(text);
        check_join_text(text);
        check_names(text);
        /* the bytes themselves, unterminated: refused without a read past them (ASan) when no
         * NUL comes within TOKEN_TEXT_LEN + 1 of them */
        if (size > TOKEN_TEXT_LEN && !memchr(data, 0, TOKEN_TEXT_LEN + 1)) {
                token_parts_t t;
                FUZZ_CHECK(token_parse((const char *)data, &t) == -EINVAL);
        }
        if (size > JOIN_TOKEN_TEXT_LEN && !memchr(data, 0, JOIN_TOKEN_TEXT_LEN + 1)) {
                join_token_t j;
                FUZZ_CHECK(join_token_parse((const char *)data, &j) == -EINVAL);
        }
        check_parts(data, size);
        check_join_parts(data, size);
        free(text);
        return 0;
}
