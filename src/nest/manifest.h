/* Manifests: one file of a bundle (or image) at one version, as its logical size and the ordered
 * list of its chunks — (SHA-256, length) for data, (zero, length) for a run of zero bytes, which
 * is not stored. A file is rebuilt by concatenating its chunks (import.h), and transfer moves
 * the chunks a store lacks (nest_manifest_missing) and then the manifest.
 *
 * On disk (DIR/manifests/VM/VERSION/FILE.json, written once: a bundle at a version is immutable):
 *   {"format": "vmatrix-nest-manifest", "version": 1, "chunker": "gear-fastcdc-v1/16k/64k/256k",
 *    "size": 1048576, "chunks": [["9f86d08...", 65536], ["zero", 983040]]}
 * Manifests are untrusted input (they travel between nodes): parsing checks every field, sizes
 * add up without overflow, and bad input is -EINVAL, never a crash. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nest/chunk-id.h"
#include "nest/chunk-store.h"
#include "nest/txn.h"

#define NEST_MANIFEST_FORMAT "vmatrix-nest-manifest"
#define NEST_MANIFEST_VERSION 1
#define NEST_MANIFEST_SIZE_MAX (UINT64_C(1) << 50)     /* 1 PiB: anything larger is absurd input */
#define NEST_MANIFEST_JSON_MAX (UINT64_C(256) << 20)   /* ~3M chunks, ~200 GiB of distinct data */

typedef struct nest_chunk_ref {
        nest_chunk_id_t id; /* all zero bytes for a zero extent */
        uint64_t len;
        bool zero;
} nest_chunk_ref_t;

typedef struct nest_manifest {
        uint64_t size; /* == sum of refs[].len */
        nest_chunk_ref_t *refs;
        size_t n_refs;
        size_t cap_refs;
} nest_manifest_t;

nest_manifest_t *nest_manifest_new(void);
nest_manifest_t *nest_manifest_free(nest_manifest_t *m);
static inline void nest_manifest_freep(nest_manifest_t **m) { nest_manifest_free(*m); }

/* Appends a data chunk (id) or, with id NULL, len zero bytes (merged into a zero extent just
 * before). -EINVAL: len 0, or a data chunk longer than NEST_STORE_CHUNK_MAX; -EFBIG: the size
 * would pass NEST_MANIFEST_SIZE_MAX. */
int nest_manifest_append(nest_manifest_t *m, const nest_chunk_id_t *id, uint64_t len);

json_t *nest_manifest_to_json(const nest_manifest_t *m);
/* -EINVAL for anything malformed; -EPROTONOSUPPORT for a well-formed manifest of a newer version. */
int nest_manifest_from_json(const json_t *j, nest_manifest_t **ret);
/* Canonical text (compact, sorted keys, trailing newline): equal manifests give equal bytes.
 * Malloc'd. */
char *nest_manifest_format(const nest_manifest_t *m);
int nest_manifest_parse(const char *text, size_t len, nest_manifest_t **ret);

typedef struct nest_manifest_bytes {
        uint64_t logical;       /* the file's size */
        uint64_t zero;          /* bytes in zero extents (never stored) */
        uint64_t unique;        /* bytes in distinct data chunks: what this file alone needs */
        uint64_t chunks;        /* data chunk references */
        uint64_t unique_chunks; /* distinct data chunks */
} nest_manifest_bytes_t;

void nest_manifest_bytes(const nest_manifest_t *m, nest_manifest_bytes_t *ret);

/* Storage of manifests in a store. Keys: vm is a valid object name (name_is_valid), version
 * >= 0, file 1..63 of [A-Za-z0-9._-] not starting with '.' (vm.json, disk, state, vmlinuz...). */
typedef struct nest_manifest_key {
        char vm[64];
        int64_t version;
        char file[64];
} nest_manifest_key_t;

bool nest_manifest_file_name_is_valid(const char *file);

/* Writes the manifest (atomically; at commit in a batch session). Idempotent: 0 also when the
 * same manifest is there; -EEXIST when a different one is (bundles are immutable). Put it in the
 * session that put or pinned its chunks (see chunk-store.h). */
int nest_manifest_put(nest_txn_t *t, const char *vm, int64_t version, const char *file, const nest_manifest_t *m);
/* -ENOENT absent; -EINVAL bad key or malformed file; -EFBIG over NEST_MANIFEST_JSON_MAX. */
int nest_manifest_get(nest_store_t *s, const char *vm, int64_t version, const char *file, nest_manifest_t **ret);
/* Deletes one manifest, or with file NULL every file of the version, or with version -1 (and
 * file NULL) every version of the VM. 0 also when nothing was there. The chunks stay until GC. */
int nest_manifest_delete(nest_store_t *s, const char *vm, int64_t version, const char *file);
/* Every manifest, or the VM's (vm not NULL), sorted by vm, version, file. Malloc'd array. Names
 * in the tree that are not valid keys are skipped. */
int nest_manifest_list(nest_store_t *s, const char *vm, nest_manifest_key_t **ret, size_t *ret_n);

enum {
        NEST_VERIFY_DEEP = 1 << 0, /* read and hash every chunk, not just check it exists */
};
/* 0 when every data chunk of m is present (and, deep, intact); -ENOENT when one is missing;
 * -EBADMSG (deep) when one is corrupt (it is quarantined, so a re-put heals the store). */
int nest_manifest_verify(nest_store_t *s, const nest_manifest_t *m, unsigned flags);
/* The distinct data chunks of m that the store lacks, in manifest order (malloc'd; NULL and 0
 * when none), and their total length: what a transfer must move. Chunks found present are
 * pinned: GC keeps them until the session ends, so put the manifest in the same session. */
int nest_manifest_missing(nest_txn_t *t, const nest_manifest_t *m, nest_chunk_id_t **ret_ids, size_t *ret_n,
                          uint64_t *ret_bytes);

typedef struct nest_stats {
        uint64_t logical_bytes; /* sum of the sizes of all manifests */
        uint64_t stored_bytes;  /* chunk files on disk */
        uint64_t chunks;
        uint64_t manifests;
        uint64_t bad_manifests; /* unreadable or malformed manifest files (not in logical_bytes) */
} nest_stats_t;

/* For `nest stats` (DESIGN.md §4): reads every manifest and stats every chunk. */
int nest_stats(nest_store_t *s, nest_stats_t *ret);
