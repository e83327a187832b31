/* File upload to the Oracle (PUT with the raw bytes as body) with a progress line and the JSON
 * answer: the CLI's side of http_call_upload, for `image import`, which needs both the created
 * image and the API's error text. */
#include <errno.h>
#include <string.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/output.h"

typedef struct upload_ctx {
        cli_t *c;
        const char *label;
        int64_t last_draw_ms;
} upload_ctx_t;

static void upload_progress(void *userdata, uint64_t done, uint64_t total) {
        upload_ctx_t *u = userdata;
        int64_t now = time_now_ms();
        if (now - u->last_draw_ms >= 100 || (total > 0 && done == total)) {
                u->last_draw_ms = now;
                progress_draw(u->c, u->label, "uploading", done, total);
        }
}

int api_upload(cli_t *c, const char *path, const char *file_path, const char *label, json_t **ret) {
        const char *base;
        int r = api_oracle(c, &base);
        if (r != CLI_OK)
                return r;
        _cleanup_free_ char *url = xasprintf("%s%s", base, path);
        upload_ctx_t u = { .c = c, .label = label };
        http_response_t resp = { 0 };
        /* no total timeout for a large image; give up when nothing moves for a minute */
        int t = http_call_upload(api_credentials(c), url, file_path, 60, upload_progress, &u, &resp);
        progress_clear(c);
        if (t == -ENOENT || t == -EACCES || t == -EISDIR)
                r = cli_fail(c, "cannot read %s: %s", file_path, t == -EISDIR ? "not a regular file" : strerror(-t));
        else if (t < 0)
                r = cli_fail(c, "upload of %s to the Oracle at %s failed: %s", file_path, base, http_error_message(NULL, t));
        else if (resp.status < 200 || resp.status >= 300)
                r = cli_fail(c, "%s", api_error_message(&resp));
        else if (!resp.json)
                r = cli_fail(c, "unexpected answer from the Oracle at %s to PUT %s: not JSON", base, path);
        else
                *ret = TAKE_PTR(resp.json);
        http_response_clear(&resp);
        return r;
}
