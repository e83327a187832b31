/* `vmatrix nest stats`: storage use of the Hibernation Nest (GET /v1/nest/stats). */
#include "base/util.h"
#include "cli/api.h"
#include "cli/commands.h"
#include "cli/output.h"

/* `nest stats --json` contract fields (DESIGN.md §4). */
static const char *const nest_json_fields[] = { "logical_bytes", "stored_bytes", "chunks" };

static json_t *bytes_cell(const json_t *stats, const char *key) {
        const json_t *v = json_object_get(stats, key);
        if (!json_is_integer(v))
                return json_null();
        char buf[32];
        return json_sprintf("%s (%" JSON_INTEGER_FORMAT " bytes)",
                            format_bytes((uint64_t)MAX(json_integer_value(v), 0), buf, sizeof buf),
                            json_integer_value(v));
}

int cmd_nest_stats(cli_t *c) {
        _cleanup_(json_decrefp) json_t *stats = NULL;
        int r = api_call(c, "GET", "/v1/nest/stats", NULL, API_TIMEOUT_MS, &stats);
        if (r != CLI_OK)
                return r;
        if (!json_is_object(stats))
                return cli_fail(c, "unexpected answer from the Oracle to GET /v1/nest/stats: not an object");
        /* The Nest stores whole files until it chunks them: each file is then one chunk. */
        if (!json_object_get(stats, "chunks") && json_object_get(stats, "files"))
                json_object_set(stats, "chunks", json_object_get(stats, "files"));
        if (c->json) {
                json_ensure_fields(stats, nest_json_fields, ELEMENTSOF(nest_json_fields));
                return output_json(c, stats, false);
        }
        json_int_t logical = json_integer_value(json_object_get(stats, "logical_bytes"));
        json_int_t stored = json_integer_value(json_object_get(stats, "stored_bytes"));
        _cleanup_(json_decrefp) json_t *shown = json_pack("{s:o,s:o,s:O?}", "logical", bytes_cell(stats, "logical_bytes"),
                                                          "stored", bytes_cell(stats, "stored_bytes"), "chunks",
                                                          json_object_get(stats, "chunks"));
        if (stored > 0)
                json_object_set_new(shown, "ratio", json_sprintf("%.2fx", (double)logical / (double)stored));
        static const char *const keys[] = { "logical", "stored", "chunks", "ratio" };
        kv_print(c->out, shown, keys, ELEMENTSOF(keys));
        return CLI_OK;
}
