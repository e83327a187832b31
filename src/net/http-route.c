/* Path matching and unescaping of the HTTP server (http-route.h). Pure string work: the
 * server (http-server.c) calls both on every request, tests/fuzz/fuzz-route.c on any bytes. */
#include "net/http-route.h"

#include <string.h>

#include "base/util.h"
#include "net/http-server.h"

bool http_route_match(const char *pattern, const char *path, const char **params, char **ret_storage) {
        char *copy = xstrdup(path);
        const char *p = pattern;
        char *s = copy;
        unsigned n = 0;
        int rest = -1; /* the index of a "*x" parameter, which keeps its slashes */
        for (;;) {
                if (!*p && !*s)
                        break;
                if (*p != '/' || *s != '/')
                        goto fail;
                p++, s++;
                const char *pend = strchrnul(p, '/');
                char *send = strchrnul(s, '/');
                size_t plen = (size_t)(pend - p), slen = (size_t)(send - s);
                if (*p == '*') {
                        /* the rest of the path, one or more segments; the pattern ends here */
                        if (slen == 0 || n >= HTTP_MAX_PARAMS || *pend)
                                goto fail;
                        rest = (int)n;
                        params[n++] = s;
                        break;
                }
                if (*p == ':') {
                        if (slen == 0 || n >= HTTP_MAX_PARAMS)
                                goto fail;
                        params[n++] = s;
                } else if (plen != slen || strncmp(p, s, plen) != 0) {
                        goto fail;
                }
                p = pend;
                bool more = *send == '/';
                *send = 0;
                s = send;
                if (more)
                        *s = '/'; /* keep the separator for the next round; cut below */
        }
        for (unsigned i = 0; i < n; i++)
                if ((int)i != rest)
                        *strchrnul((char *)params[i], '/') = 0;
        *ret_storage = copy;
        return true;
fail:
        free(copy);
        return false;
}

static int hex_digit(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes %HH in the path and the query arguments as libmicrohttpd's default does, except %00:
 * a NUL would cut the string short where handlers read it ("DELETE /v1/vms/web%00x" would
 * delete "web"), so it stays as the three characters, which no name or number accepts. */
size_t http_route_unescape(char *s) {
        char *w = s;
        for (const char *r = s; *r;) {
                int hi = r[0] == '%' ? hex_digit(r[1]) : -1;
                int lo = hi >= 0 ? hex_digit(r[2]) : -1;
                if (lo >= 0 && (hi | lo) != 0) {
                        *w++ = (char)(hi << 4 | lo);
                        r += 3;
                } else {
                        *w++ = *r++;
                }
        }
        *w = 0;
        return (size_t)(w - s);
}
