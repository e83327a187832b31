/* Harness: a chunk manifest (nest/manifest.h), which travels between nodes and the Nest: the
 * input is both the body of PUT /v1/manifests/VM/VERSION/FILE (loaded as the HTTP server
 * loads it, then nest_manifest_from_json) and the text of a manifest fetched from a peer
 * (nest_manifest_parse). Checked: an accepted manifest's chunks add up to its size, which is
 * within NEST_MANIFEST_SIZE_MAX; its canonical text parses back to the same chunks and is a
 * fixed point; its byte counts agree with its chunks. Every manifest is freed. */
#include <stdbool.h>

#include "fuzz.h"
#include "nest/manifest.h"

static void check_manifest(const nest_manifest_t *m) {
        uint64_t sum = 0, zero = 0, data = 0;
        for (size_t i = 0; i < m->n_refs; i++) {
                FUZZ_CHECK(m->refs[i].len > 0);
                FUZZ_CHECK(!m->refs[i].zero || i == 0 || !m->refs[i - 1].zero); /* zero runs are merged */
                FUZZ_CHECK(sum + m->refs[i].len >= sum);
                sum += m->refs[i].len;
                zero += m->refs[i].zero ? m->refs[i].len : 0;
                data += !m->refs[i].zero;
        }
        FUZZ_CHECK(sum == m->size && m->size <= NEST_MANIFEST_SIZE_MAX);
        nest_manifest_bytes_t b;
        nest_manifest_bytes(m, &b);
        FUZZ_CHECK(b.logical == m->size && b.zero == zero && b.chunks == data);
        FUZZ_CHECK(b.unique <= b.logical - b.zero && b.unique_chunks <= b.chunks);

        char *text = nest_manifest_format(m);
        nest_manifest_t *again = NULL;
        FUZZ_CHECK(nest_manifest_parse(text, strlen(text), &again) == 0);
        FUZZ_CHECK(again->size == m->size && again->n_refs == m->n_refs);
        for (size_t i = 0; i < m->n_refs; i++) /* field by field: padding is not compared */
                FUZZ_CHECK(again->refs[i].len == m->refs[i].len && again->refs[i].zero == m->refs[i].zero &&
                           memcmp(&again->refs[i].id, &m->refs[i].id, sizeof m->refs[i].id) == 0);
        char *text2 = nest_manifest_format(again);
        FUZZ_CHECK(strcmp(text, text2) == 0);
        free(text2);
        free(text);
        nest_manifest_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        nest_manifest_t *m = NULL;
        json_t *body = fuzz_json_body(data, size);
        if (body) {
                int r = nest_manifest_from_json(body, &m);
                FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EPROTONOSUPPORT);
                FUZZ_CHECK((r == 0) == (m != NULL));
                if (m)
                        check_manifest(m);
                m = nest_manifest_free(m);
                json_decref(body);
        }
        int r = nest_manifest_parse((const char *)data, size, &m);
        FUZZ_CHECK((r == 0) == (m != NULL));
        if (m)
                check_manifest(m);
        nest_manifest_free(m);
        return 0;
}
