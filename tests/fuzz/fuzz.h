/* What every harness of tests/fuzz/ shares. A harness is one LLVMFuzzerTestOneInput: built
 * with clang and libFuzzer (-Dfuzz=true, `make fuzz`) it is fuzzed; built with replay.c in any
 * other build it runs every file of its corpus once, as a meson test (docs/fuzzing.md).
 *
 * A harness feeds the bytes as the product receives them (a JSON body through json_loadb as
 * the HTTP server loads it, a path as a NUL-terminated string), checks what is cheap to check
 * about the result (FUZZ_CHECK: a broken invariant aborts, so libFuzzer keeps the input) and
 * frees everything, so that a leak is a finding too. */
#pragma once

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                        \
        do {                                                                                    \
                if (!(cond)) {                                                                  \
                        fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, \
                                #cond);                                                         \
                        abort();                                                                \
                }                                                                               \
        } while (0)

/* The input as a C string (malloc'd; it ends at the first NUL of data, as a string the
 * product receives would). */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = 0;
        return s;
}

/* A JSON request body as the HTTP server hands it to a handler: loaded with the server's
 * flags, and only an object gets that far (anything else is a 400 before the handler). NULL
 * when the server would not call the handler. */
static inline json_t *fuzz_json_body(const uint8_t *data, size_t size) {
        json_t *j = json_loadb((const char *)data, size, 0, NULL);
        if (j && !json_is_object(j)) {
                json_decref(j);
                return NULL;
        }
        return j;
}

/* A peer's answer as the HTTP client loads it (http-client.c): any JSON value, or NULL. */
static inline json_t *fuzz_json_answer(const uint8_t *data, size_t size) {
        return json_loadb((const char *)data, size, 0, NULL);
}
