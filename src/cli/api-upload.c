/* File upload to the Oracle (PUT with the raw bytes as body) with a progress line and the JSON
 * answer. It lives in the CLI rather than in src/net because only `image import` uploads a file
 * and needs both the created image and the API's error text. */
#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/output.h"

typedef struct upload_ctx {
        cli_t *c;
        const char *label;
        int64_t last_draw_ms;
        char *body;
        size_t len;
} upload_ctx_t;

static size_t upload_sink(char *ptr, size_t size, size_t nmemb, void *userdata) {
        upload_ctx_t *u = userdata;
        size_t n = size * nmemb;
        if (u->len + n > 1024 * 1024) /* an answer, not a download: cap it */
                return 0;
        char *b = realloc(u->body, u->len + n + 1);
        if (!b)
                return 0;
        memcpy(b + u->len, ptr, n);
        u->body = b;
        u->len += n;
        b[u->len] = 0;
        return n;
}

static int upload_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow) {
        upload_ctx_t *u = userdata;
        int64_t now = time_now_ms();
        if (now - u->last_draw_ms >= 100 || (ultotal > 0 && ulnow == ultotal)) {
                u->last_draw_ms = now;
                progress_draw(u->c, u->label, "uploading", (uint64_t)ulnow, (uint64_t)ultotal);
        }
        return 0;
}

int api_upload(cli_t *c, const char *path, const char *file_path, const char *label, json_t **ret) {
        const char *base;
        int r = api_oracle(c, &base);
        if (r != CLI_OK)
                return r;
        _cleanup_fclose_ FILE *f = fopen(file_path, "re");
        struct stat st;
        if (!f || fstat(fileno(f), &st) < 0)
                return cli_fail(c, "cannot open %s: %m", file_path);
        if (!S_ISREG(st.st_mode))
                return cli_fail(c, "%s is not a regular file", file_path);

        CURL *curl = curl_easy_init();
        if (!curl)
                return cli_fail(c, "cannot initialise libcurl");
        _cleanup_free_ char *url = xasprintf("%s%s", base, path);
        upload_ctx_t u = { .c = c, .label = label };
        struct curl_slist *headers =
                http_call_headers(api_credentials(c), curl_slist_append(NULL, "Content-Type: application/octet-stream"));
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_READDATA, f);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        /* no total timeout for a large image; give up when nothing moves for a minute */
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, upload_sink);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &u);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, upload_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &u);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        CURLcode cc = curl_easy_perform(curl);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(curl);
        curl_slist_free_all(headers);
        progress_clear(c);

        http_response_t resp = { .status = status, .body = u.body ? u.body : xstrdup(""), .body_len = u.len };
        resp.json = json_loadb(resp.body, resp.body_len, 0, NULL);
        if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
                r = cli_fail(c, "cannot reach the Oracle at %s: connection refused", base);
        else if (cc != CURLE_OK)
                r = cli_fail(c, "upload of %s to the Oracle at %s failed: %s", file_path, base, curl_easy_strerror(cc));
        else if (status < 200 || status >= 300)
                r = cli_fail(c, "%s", api_error_message(&resp));
        else if (!resp.json)
                r = cli_fail(c, "unexpected answer from the Oracle at %s to PUT %s: not JSON", base, path);
        else
                *ret = TAKE_PTR(resp.json);
        http_response_clear(&resp);
        return r;
}
