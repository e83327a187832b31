/* `vmatrix image ...`: build a builtin image (POST /v1/images), list images, import a user's
 * qcow2/raw disk (PUT /v1/images/NAME?format=F with the file as body), delete one that nothing
 * uses (DELETE /v1/images/NAME). */
#include <ctype.h>
#include <string.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/commands.h"
#include "cli/output.h"

char *image_name_from_path(const char *path) {
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        const char *dot = strrchr(base, '.');
        size_t len = dot && dot > base ? (size_t)(dot - base) : strlen(base);
        _cleanup_free_ char *name = strndup(base, len);
        if (!name)
                return NULL;
        for (char *p = name; *p; p++) {
                char ch = (char)tolower((unsigned char)*p);
                *p = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ? ch : '-';
        }
        const char *start = name + strspn(name, "-");
        char *result = strndup(start, 63);
        if (result && !name_is_valid(result)) {
                free(result);
                return NULL;
        }
        return result;
}

/* qcow2 files start with "QFI\xfb"; anything else is imported as raw. */
static const char *image_format_sniff(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        unsigned char magic[4] = { 0 };
        if (f && fread(magic, 1, sizeof magic, f) == sizeof magic && memcmp(magic, "QFI\xfb", 4) == 0)
                return "qcow2";
        return "raw";
}

/* An image object as key: value lines, or as JSON. */
static int image_print(cli_t *c, json_t *image) {
        if (c->json)
                return output_json(c, image, false);
        _cleanup_(json_decrefp) json_t *shown = json_copy(image);
        _cleanup_free_ char *created = json_time_cell(image, "created_ms");
        json_object_set_new(shown, "created", json_string(created ?: "-"));
        static const char *const keys[] = { "name", "kind", "created" };
        kv_print(c->out, shown, keys, ELEMENTSOF(keys));
        return CLI_OK;
}

int cmd_image_build(cli_t *c) {
        const char *builtin = cli_arg(c, 0);
        int r = cli_check_name(c, "builtin image", builtin);
        if (r != CLI_OK)
                return r;
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:s,s:s}", "name", builtin, "builtin", builtin);
        _cleanup_(json_decrefp) json_t *image = NULL;
        _cleanup_free_ char *label = xasprintf("image build %s", builtin);
        progress_draw(c, label, "building", 0, 0);
        r = api_call(c, "POST", "/v1/images", body, API_LONG_TIMEOUT_MS, &image);
        progress_clear(c);
        return r != CLI_OK ? r : image_print(c, image);
}

int cmd_image_list(cli_t *c) {
        _cleanup_(json_decrefp) json_t *images = NULL;
        int r = api_call(c, "GET", "/v1/images", NULL, API_TIMEOUT_MS, &images);
        if (r != CLI_OK)
                return r;
        if (!json_is_array(images))
                return cli_fail(c, "unexpected answer from the Oracle to GET /v1/images: not an array");
        if (c->json)
                return output_json(c, images, false);
        static const char *const headers[] = { "NAME", "KIND", "CREATED" };
        _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(headers), headers);
        size_t i;
        const json_t *image;
        json_array_foreach(images, i, image) {
                table_add_json(t, image, "name");
                table_add_json(t, image, "kind");
                table_add_take(t, json_time_cell(image, "created_ms"));
        }
        table_flush(t, c->out);
        return CLI_OK;
}

int cmd_image_import(cli_t *c) {
        const char *file = cli_arg(c, 0), *format = cli_opt(c, "format");
        _cleanup_free_ char *name = xstrdup(cli_opt(c, "name") ?: "");
        int r;
        if (!*name) {
                free(name);
                name = image_name_from_path(file);
                if (!name)
                        return cli_usage(c, "cannot derive an image name from \"%s\"; pass --name NAME", file);
        } else if ((r = cli_check_name(c, "image", name)) != CLI_OK) {
                return r;
        }
        if (format && !streq(format, "qcow2") && !streq(format, "raw"))
                return cli_usage(c, "--format must be qcow2 or raw, not \"%s\"", format);
        if (access(file, R_OK) < 0)
                return cli_fail(c, "cannot read %s: %m", file);
        if (!format)
                format = image_format_sniff(file);

        _cleanup_free_ char *path = xasprintf("/v1/images/%s?format=%s", name, format);
        _cleanup_free_ char *label = xasprintf("image import %s", name);
        _cleanup_(json_decrefp) json_t *image = NULL;
        r = api_upload(c, path, file, label, &image);
        return r != CLI_OK ? r : image_print(c, image);
}

int cmd_image_delete(cli_t *c) {
        return api_name_call(c, "image", "DELETE", "/v1/images/%s", "image %s deleted");
}
