/* Implementation of chunk-id.h. */
#include "nest/chunk-id.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/util.h"

void nest_chunk_id_hash(const void *data, size_t len, nest_chunk_id_t *ret) {
        unsigned int n = 0;
        /* EVP_Digest fails only when it cannot allocate its context: treat like OOM. */
        if (EVP_Digest(data, len, ret->bytes, &n, EVP_sha256(), NULL) != 1 || n != NEST_CHUNK_ID_SIZE)
                abort();
}

bool nest_chunk_id_equal(const nest_chunk_id_t *a, const nest_chunk_id_t *b) {
        return memcmp(a->bytes, b->bytes, NEST_CHUNK_ID_SIZE) == 0;
}

void nest_chunk_id_to_hex(const nest_chunk_id_t *id, char ret[NEST_CHUNK_ID_HEX_SIZE]) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < NEST_CHUNK_ID_SIZE; i++) {
                ret[2 * i] = digits[id->bytes[i] >> 4];
                ret[2 * i + 1] = digits[id->bytes[i] & 0xf];
        }
        ret[2 * NEST_CHUNK_ID_SIZE] = 0;
}

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

int nest_chunk_id_from_hex(const char *hex, nest_chunk_id_t *ret) {
        if (!hex)
                return -EINVAL;
        nest_chunk_id_t id;
        for (size_t i = 0; i < NEST_CHUNK_ID_SIZE; i++) {
                /* hex[2i] is checked before hex[2i+1] is read, so a short string stops at its NUL. */
                int hi = hex_digit(hex[2 * i]);
                if (hi < 0)
                        return -EINVAL;
                int lo = hex_digit(hex[2 * i + 1]);
                if (lo < 0)
                        return -EINVAL;
                id.bytes[i] = (uint8_t)(hi << 4 | lo);
        }
        if (hex[2 * NEST_CHUNK_ID_SIZE] != 0)
                return -EINVAL;
        *ret = id;
        return 0;
}

struct nest_idset {
        nest_chunk_id_t *slots;
        bool *used;
        size_t cap; /* power of two */
        size_t n;
        uint64_t key; /* random per set: ids in a manifest are untrusted and could be chosen to collide */
};

static size_t id_slot(const nest_idset_t *s, const nest_chunk_id_t *id) {
        uint64_t a, b;
        memcpy(&a, id->bytes, sizeof a);
        memcpy(&b, id->bytes + 8, sizeof b);
        uint64_t h = (a ^ s->key) * 0x9e3779b97f4a7c15ULL;
        h ^= (b + s->key) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
        return (size_t)h & (s->cap - 1);
}

nest_idset_t *nest_idset_new(void) {
        nest_idset_t *s = xcalloc(1, sizeof *s);
        s->cap = 64;
        if (getrandom(&s->key, sizeof s->key, GRND_NONBLOCK) != sizeof s->key)
                s->key = (uint64_t)time_now_ms() ^ (uint64_t)(uintptr_t)s;
        s->slots = xcalloc(s->cap, sizeof *s->slots);
        s->used = xcalloc(s->cap, sizeof *s->used);
        return s;
}

nest_idset_t *nest_idset_free(nest_idset_t *s) {
        if (!s)
                return NULL;
        free(s->slots);
        free(s->used);
        free(s);
        return NULL;
}

static void insert_slot(nest_idset_t *s, const nest_chunk_id_t *id) {
        size_t i = id_slot(s, id);
        while (s->used[i])
                i = (i + 1) & (s->cap - 1);
        s->used[i] = true;
        s->slots[i] = *id;
}

static void grow(nest_idset_t *s) {
        nest_chunk_id_t *old_slots = s->slots;
        bool *old_used = s->used;
        size_t old_cap = s->cap;
        s->cap *= 2;
        s->slots = xcalloc(s->cap, sizeof *s->slots);
        s->used = xcalloc(s->cap, sizeof *s->used);
        for (size_t i = 0; i < old_cap; i++)
                if (old_used[i])
                        insert_slot(s, &old_slots[i]);
        free(old_slots);
        free(old_used);
}

bool nest_idset_contains(const nest_idset_t *s, const nest_chunk_id_t *id) {
        for (size_t i = id_slot(s, id); s->used[i]; i = (i + 1) & (s->cap - 1))
                if (nest_chunk_id_equal(&s->slots[i], id))
                        return true;
        return false;
}

bool nest_idset_add(nest_idset_t *s, const nest_chunk_id_t *id) {
        if (nest_idset_contains(s, id))
                return false;
        if ((s->n + 1) * 4 > s->cap * 3) /* load factor 3/4 */
                grow(s);
        insert_slot(s, id);
        s->n++;
        return true;
}

size_t nest_idset_size(const nest_idset_t *s) { return s->n; }
