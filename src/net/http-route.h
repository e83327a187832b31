/* The two pure steps of routing a request (http-route.c), apart from the server so that tests
 * and the fuzz harnesses (tests/fuzz/) reach them without a socket: the path unescaping
 * libmicrohttpd calls on every URL, and the matching of a path against a route's pattern. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Matches path against pattern ("/v1/vms/:name/activate") segment by segment; a last segment
 * "*x" (as in "/ui/ *path", without the space) takes the rest of the path, slashes and all, as its parameter. On success the
 * ":x" segments, in order, go to params (room for HTTP_MAX_PARAMS; the rest untouched), each
 * non-empty and pointing into *ret_storage, a malloc'd copy of path the caller frees; false
 * otherwise, with nothing to free and params left meaningless (some may have been written). */
bool http_route_match(const char *pattern, const char *path, const char **params, char **ret_storage);

/* Decodes %HH in s, in place, as libmicrohttpd's default does, except %00 (see http-route.c).
 * Returns the new length of s. */
size_t http_route_unescape(char *s);
