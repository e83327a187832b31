/* Harness: the request target as the HTTP server routes it (net/http-route.h). The input is
 * the target of a request line ("/v1/vms/web%31/activate?x=1"). As libmicrohttpd does, the
 * query is cut at the first '?', its arguments split at '&' and '=' and each unescaped; the
 * path is unescaped and then matched against every route of the Oracle's and the node's real
 * tables. Checked: unescaping agrees with a reference decoder written apart and never grows
 * the text or lets a NUL in; a match agrees with a reference matcher; its parameters are
 * non-empty segments without '/' that, put back into the pattern, give the path again; a
 * failed match leaves nothing to free and the slot past HTTP_MAX_PARAMS is never written. */
#include <stdbool.h>

#include "fuzz.h"
#include "net/http-route.h"
#include "net/http-server.h"
#include "node/node-internal.h"
#include "oracle/oracle-internal.h"
#include "oracle/oracle-metrics.h"

static int ref_hex(char c) {
        static const char digits[] = "0123456789abcdef";
        char lower = c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c;
        const char *p = c ? strchr(digits, lower) : NULL;
        return p ? (int)(p - digits) : -1;
}

/* libmicrohttpd's decoding but for %00, written as a reader of three-byte windows. */
static char *ref_unescape(const char *s) {
        size_t n = strlen(s), w = 0;
        char *out = malloc(n + 1);
        if (!out)
                abort();
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '%' && i + 2 < n && ref_hex(s[i + 1]) >= 0 && ref_hex(s[i + 2]) >= 0 &&
                    (ref_hex(s[i + 1]) != 0 || ref_hex(s[i + 2]) != 0)) {
                        out[w++] = (char)(ref_hex(s[i + 1]) * 16 + ref_hex(s[i + 2]));
                        i += 2;
                } else {
                        out[w++] = s[i];
                }
        }
        out[w] = 0;
        return out;
}

static void check_unescape(char *s) {
        size_t before = strlen(s);
        char *expect = ref_unescape(s);
        size_t n = http_route_unescape(s);
        FUZZ_CHECK(n == strlen(s));
        FUZZ_CHECK(n <= before);
        FUZZ_CHECK(strcmp(s, expect) == 0);
        free(expect);
}

#define MAX_SEGS 64
#define SEG_MAX 256

/* The segments of a path or pattern after its leading '/': their number, -1 without that '/',
 * -2 when they do not fit the reference's fixed arrays (the product alone decides then). */
static int split(const char *s, char segs[][SEG_MAX]) {
        if (*s != '/')
                return -1;
        int n = 0;
        for (const char *p = s + 1;; n++) {
                const char *end = strchrnul(p, '/');
                if (n >= MAX_SEGS || (size_t)(end - p) >= SEG_MAX)
                        return -2;
                memcpy(segs[n], p, (size_t)(end - p));
                segs[n][end - p] = 0;
                if (!*end)
                        return n + 1;
                p = end + 1;
        }
}

/* Does the path, split into ns segments ss, match pattern? Said apart from the product. */
static bool ref_match(const char *pattern, char ss[][SEG_MAX], int ns) {
        static char ps[MAX_SEGS][SEG_MAX];
        int np = split(pattern, ps);
        FUZZ_CHECK(np > 0); /* the route tables are ours: always well formed */
        if (ns != np)
                return false;
        int params = 0;
        for (int i = 0; i < np; i++) {
                if (ps[i][0] == ':') {
                        if (!ss[i][0] || ++params > HTTP_MAX_PARAMS)
                                return false;
                } else if (strcmp(ps[i], ss[i]) != 0) {
                        return false;
                }
        }
        return true;
}

static void check_route(const char *pattern, const char *path, char ss[][SEG_MAX], int ns) {
        static const char unset[] = "unset";
        const char *params[HTTP_MAX_PARAMS + 1];
        for (size_t i = 0; i < HTTP_MAX_PARAMS + 1; i++)
                params[i] = unset;
        char *storage = (char *)unset;
        bool matched = http_route_match(pattern, path, params, &storage);
        FUZZ_CHECK(params[HTTP_MAX_PARAMS] == unset);
        if (ns != -2)
                FUZZ_CHECK(matched == ref_match(pattern, ss, ns));
        if (!matched) {
                FUZZ_CHECK(storage == unset); /* params may have been written: they are not used */
                return;
        }
        FUZZ_CHECK(storage != unset);
        /* put the parameters back into the pattern: the path again */
        size_t np = 0, len = strlen(path);
        char *rebuilt = malloc(len + 1), *w = rebuilt;
        if (!rebuilt)
                abort();
        for (const char *p = pattern; *p;) {
                if (p[0] == '/' && p[1] == ':') {
                        FUZZ_CHECK(np < HTTP_MAX_PARAMS);
                        const char *v = params[np++];
                        FUZZ_CHECK(v != unset && *v && !strchr(v, '/'));
                        FUZZ_CHECK(v >= storage && v < storage + len);
                        FUZZ_CHECK((size_t)(w - rebuilt) + 1 + strlen(v) <= len);
                        *w++ = '/';
                        w = stpcpy(w, v);
                        p = strchrnul(p + 1, '/');
                } else {
                        FUZZ_CHECK((size_t)(w - rebuilt) < len);
                        *w++ = *p++;
                }
        }
        *w = 0;
        FUZZ_CHECK(strcmp(rebuilt, path) == 0);
        for (size_t i = np; i < HTTP_MAX_PARAMS + 1; i++)
                FUZZ_CHECK(params[i] == unset);
        free(rebuilt);
        free(storage);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const http_route_t *const tables[] = {
                oracle_api_routes, oracle_nest_routes, oracle_service_routes, oracle_metrics_routes, node_api_routes,
        };
        char *target = fuzz_string(data, size);
        char *query = strchr(target, '?');
        if (query) {
                *query++ = 0;
                for (char *arg = strtok(query, "&"); arg; arg = strtok(NULL, "&")) {
                        char *eq = strchr(arg, '=');
                        if (eq) {
                                *eq = 0;
                                check_unescape(eq + 1);
                        }
                        check_unescape(arg);
                }
        }
        check_unescape(target);
        static char ss[MAX_SEGS][SEG_MAX];
        int ns = split(target, ss);
        for (size_t t = 0; t < ELEMENTSOF(tables); t++)
                for (const http_route_t *r = tables[t]; r->method; r++)
                        check_route(r->pattern, target, ss, ns);
        free(target);
        return 0;
}
