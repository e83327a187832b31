/* The web interface's files (issue 13, DESIGN.md §12): the Oracle serves /ui/ from a directory
 * (--ui-dir, $VMATRIX_UI_DIR, or ui/ beside the binary: the build output, where `make` puts the
 * pages of ui/ and the npm assets they use). The files hold no secret and carry no state, so the
 * routes are public; every page talks to the API with the user's own token. A path is served only
 * when each of its segments is a plain name (no "..", no hidden file), from under the directory,
 * with a type by its extension and headers that keep the pages from being framed or sniffed. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "oracle/oracle-internal.h"

#define UI_PATH_MAX 256

char *oracle_ui_default_dir(void) {
        const char *env = getenv("VMATRIX_UI_DIR");
        if (env)
                return xstrdup(env);
        _cleanup_free_ char *dir = exe_dir();
        return xasprintf("%s/ui", dir ? dir : ".");
}

static const struct {
        const char *ext, *type;
} types[] = {
        { ".html", "text/html; charset=utf-8" }, { ".js", "text/javascript; charset=utf-8" },
        { ".mjs", "text/javascript; charset=utf-8" }, { ".css", "text/css; charset=utf-8" },
        { ".svg", "image/svg+xml" }, { ".png", "image/png" }, { ".ico", "image/x-icon" },
        { ".json", "application/json" }, { ".woff2", "font/woff2" }, { ".map", "application/json" },
};

const char *oracle_ui_type(const char *path) {
        size_t n = strlen(path);
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                size_t k = strlen(types[i].ext);
                if (n > k && streq(path + n - k, types[i].ext))
                        return types[i].type;
        }
        return NULL;
}

bool oracle_ui_path_ok(const char *path) {
        if (!path || !*path || strlen(path) > UI_PATH_MAX)
                return false;
        for (const char *seg = path; *seg;) {
                size_t len = strcspn(seg, "/");
                if (len == 0 || seg[0] == '.')
                        return false; /* "//", "..", ".hidden" */
                for (size_t i = 0; i < len; i++) {
                        char c = seg[i];
                        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                              c == '_' || c == '.' || c == '@'))
                                return false;
                }
                seg += len;
                if (*seg == '/')
                        seg++;
        }
        return oracle_ui_type(path) != NULL;
}

/* Whether an If-None-Match header names etag: "*", or one of its comma-separated entity tags,
 * weak (W/) or not (a GET compares weakly, RFC 9110 13.1.2). */
bool oracle_ui_etag_matches(const char *header, const char *etag) {
        if (!header || !etag)
                return false;
        size_t n = strlen(etag);
        for (const char *p = header; *p;) {
                p += strspn(p, " \t,");
                if (*p == '*')
                        return true;
                if (strncmp(p, "W/", 2) == 0)
                        p += 2;
                size_t len = strcspn(p, ",");
                while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                        len--;
                if (len == n && strncmp(p, etag, n) == 0)
                        return true;
                p += strcspn(p, ",");
        }
        return false;
}

static void security_headers(http_reply_t *reply) {
        /* the pages' own scripts and styles only; WebSockets and the API on this origin */
        http_reply_header(reply, "Content-Security-Policy",
                          "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' "
                          "data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action "
                          "'self'");
        http_reply_header(reply, "X-Content-Type-Options", "nosniff");
        http_reply_header(reply, "X-Frame-Options", "DENY");
        http_reply_header(reply, "Referrer-Policy", "no-referrer");
}

static void serve(const http_request_t *req, http_reply_t *reply, const char *path) {
        oracle_t *o = req->userdata;
        if (!oracle_ui_path_ok(path)) {
                http_reply_error(reply, 404, "not_found", "no such page");
                return;
        }
        _cleanup_free_ char *file = xasprintf("%s/%s", o->ui_dir, path);
        struct stat st;
        if (stat(file, &st) < 0 || !S_ISREG(st.st_mode)) {
                http_reply_error(reply, 404, "not_found", "no such page: %s%s", path,
                                 stat(o->ui_dir, &st) < 0 ? " (the web interface is not built: make ui)" : "");
                return;
        }
        /* pages are always checked again, the pinned npm assets may be kept a day; checking again
         * needs a validator: the file's size and modification time (make ui writes new files) */
        char etag[64];
        snprintf(etag, sizeof etag, "\"%jx-%jx.%lx\"", (uintmax_t)st.st_size, (uintmax_t)st.st_mtim.tv_sec,
                 (unsigned long)st.st_mtim.tv_nsec);
        if (oracle_ui_etag_matches(http_request_header(req, "If-None-Match"), etag))
                http_reply_text(reply, 304, "");
        else {
                http_reply_file(reply, file);
                reply->content_type = oracle_ui_type(path);
        }
        http_reply_header(reply, "ETag", etag);
        http_reply_header(reply, "Cache-Control", strncmp(path, "vendor/", 7) == 0 ? "max-age=86400" : "no-cache");
        security_headers(reply);
}

static void h_ui_redirect(const http_request_t *req, http_reply_t *reply) {
        http_reply_text(reply, 302, "see /ui/\n");
        http_reply_header(reply, "Location", "/ui/");
}

static void h_ui_index(const http_request_t *req, http_reply_t *reply) { serve(req, reply, "index.html"); }

static void h_ui_file(const http_request_t *req, http_reply_t *reply) { serve(req, reply, req->params[0]); }

const http_route_t oracle_ui_routes[] = {
        { "GET", "/", h_ui_redirect, PERM_PUBLIC, OWNER_NONE },
        { "GET", "/ui", h_ui_redirect, PERM_PUBLIC, OWNER_NONE },
        { "GET", "/ui/", h_ui_index, PERM_PUBLIC, OWNER_NONE },
        { "GET", "/ui/*path", h_ui_file, PERM_PUBLIC, OWNER_NONE },
        { NULL },
};
