/* The manifest type and its JSON form (manifest.h); storage of manifests is manifest-store.c.
 * Everything parsed here may come from a peer: each field is type-checked, every length is
 * bounded, and the lengths must add up to the size (with overflow checks). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "nest/chunker.h"
#include "nest/manifest.h"

#define ZERO_TAG "zero"

nest_manifest_t *nest_manifest_new(void) { return xcalloc(1, sizeof(nest_manifest_t)); }

nest_manifest_t *nest_manifest_free(nest_manifest_t *m) {
        if (!m)
                return NULL;
        free(m->refs);
        free(m);
        return NULL;
}

int nest_manifest_append(nest_manifest_t *m, const nest_chunk_id_t *id, uint64_t len) {
        if (len == 0 || (id && len > NEST_STORE_CHUNK_MAX))
                return -EINVAL;
        if (len > NEST_MANIFEST_SIZE_MAX - m->size)
                return -EFBIG;
        m->size += len;
        if (!id && m->n_refs > 0 && m->refs[m->n_refs - 1].zero) {
                m->refs[m->n_refs - 1].len += len;
                return 0;
        }
        if (m->n_refs == m->cap_refs) {
                m->cap_refs = MAX(m->cap_refs * 2, (size_t)64);
                m->refs = realloc(m->refs, m->cap_refs * sizeof *m->refs);
                if (!m->refs)
                        abort();
        }
        nest_chunk_ref_t *ref = &m->refs[m->n_refs++];
        *ref = (nest_chunk_ref_t){ .len = len, .zero = !id };
        if (id)
                ref->id = *id;
        return 0;
}

json_t *nest_manifest_to_json(const nest_manifest_t *m) {
        json_t *chunks = json_array();
        for (size_t i = 0; i < m->n_refs; i++) {
                char hex[NEST_CHUNK_ID_HEX_SIZE];
                if (m->refs[i].zero)
                        strcpy(hex, ZERO_TAG);
                else
                        nest_chunk_id_to_hex(&m->refs[i].id, hex);
                json_array_append_new(chunks, json_pack("[sI]", hex, (json_int_t)m->refs[i].len));
        }
        return json_pack("{sssisssIso}", "format", NEST_MANIFEST_FORMAT, "version", NEST_MANIFEST_VERSION,
                         "chunker", NEST_CHUNKER_NAME, "size", (json_int_t)m->size, "chunks", chunks);
}

/* A JSON integer in [min, max]. */
static int json_uint(const json_t *j, uint64_t min, uint64_t max, uint64_t *ret) {
        if (!json_is_integer(j))
                return -EINVAL;
        json_int_t v = json_integer_value(j);
        if (v < 0 || (uint64_t)v < min || (uint64_t)v > max)
                return -EINVAL;
        *ret = (uint64_t)v;
        return 0;
}

int nest_manifest_from_json(const json_t *j, nest_manifest_t **ret) {
        if (!json_is_object(j))
                return -EINVAL;
        const json_t *format = json_object_get(j, "format"), *version = json_object_get(j, "version");
        if (!json_is_string(format) || !streq(json_string_value(format), NEST_MANIFEST_FORMAT) ||
            !json_is_integer(version))
                return -EINVAL;
        if (json_integer_value(version) > NEST_MANIFEST_VERSION)
                return -EPROTONOSUPPORT;
        if (json_integer_value(version) != NEST_MANIFEST_VERSION)
                return -EINVAL;
        const json_t *chunker = json_object_get(j, "chunker");
        if (chunker && !json_is_string(chunker)) /* informational: which chunker cut the file */
                return -EINVAL;
        uint64_t size = 0;
        if (json_uint(json_object_get(j, "size"), 0, NEST_MANIFEST_SIZE_MAX, &size) < 0)
                return -EINVAL;
        const json_t *chunks = json_object_get(j, "chunks");
        if (!json_is_array(chunks))
                return -EINVAL;
        _cleanup_(nest_manifest_freep) nest_manifest_t *m = nest_manifest_new();
        size_t i;
        const json_t *c;
        json_array_foreach(chunks, i, c) {
                if (!json_is_array(c) || json_array_size(c) != 2)
                        return -EINVAL;
                const char *tag = json_string_value(json_array_get(c, 0));
                uint64_t len = 0;
                if (!tag || json_uint(json_array_get(c, 1), 1, size, &len) < 0)
                        return -EINVAL;
                nest_chunk_id_t id;
                bool zero = streq(tag, ZERO_TAG);
                if (!zero && nest_chunk_id_from_hex(tag, &id) < 0)
                        return -EINVAL;
                int r = nest_manifest_append(m, zero ? NULL : &id, len);
                if (r < 0 || m->size > size)
                        return -EINVAL;
        }
        if (m->size != size)
                return -EINVAL;
        *ret = TAKE_PTR(m);
        return 0;
}

char *nest_manifest_format(const nest_manifest_t *m) {
        json_t *j = nest_manifest_to_json(m);
        char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
        if (!text)
                abort(); /* jansson fails only on OOM */
        char *line = xasprintf("%s\n", text);
        free(text);
        return line;
}

int nest_manifest_parse(const char *text, size_t len, nest_manifest_t **ret) {
        if (!text || len > NEST_MANIFEST_JSON_MAX)
                return -EINVAL;
        json_error_t error;
        json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
        if (!j)
                return -EINVAL;
        int r = nest_manifest_from_json(j, ret);
        json_decref(j);
        return r;
}

void nest_manifest_bytes(const nest_manifest_t *m, nest_manifest_bytes_t *ret) {
        nest_manifest_bytes_t b = { .logical = m->size };
        _cleanup_(nest_idset_freep) nest_idset_t *seen = nest_idset_new();
        for (size_t i = 0; i < m->n_refs; i++) {
                const nest_chunk_ref_t *ref = &m->refs[i];
                if (ref->zero) {
                        b.zero += ref->len;
                        continue;
                }
                b.chunks++;
                if (nest_idset_add(seen, &ref->id)) {
                        b.unique += ref->len;
                        b.unique_chunks++;
                }
        }
        *ret = b;
}
