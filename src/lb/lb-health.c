/* The health check of a service's servers (lb.h): its kinds, which paths may be checked, and
 * which answers mean up. The path goes into HAProxy's configuration as a bare word, so what is
 * accepted here is all that stands between an API request and that file. */
#include "lb/lb.h"

#include <string.h>

#include "base/util.h"

static const char *const kind_names[] = {
        [LB_HEALTH_HTTP] = "http",
        [LB_HEALTH_TCP] = "tcp",
};

const char *lb_health_kind_name(lb_health_kind_t kind) {
        return (unsigned)kind < ELEMENTSOF(kind_names) ? kind_names[kind] : NULL;
}

int lb_health_kind_parse(const char *s, lb_health_kind_t *ret) {
        for (size_t i = 0; s && i < ELEMENTSOF(kind_names); i++)
                if (streq(s, kind_names[i])) {
                        *ret = (lb_health_kind_t)i;
                        return 0;
                }
        return -EINVAL;
}

bool lb_health_path_valid(const char *path) {
        if (!path || path[0] != '/' || strlen(path) > LB_HEALTH_PATH_MAX)
                return false;
        /* RFC 3986 path and query characters (unreserved, %-escapes, sub-delims, ':', '@', '/',
         * '?') less the quote and '$', which HAProxy's parser would interpret */
        static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                      "-._~%!&()*+,;=:@/?";
        return strspn(path, allowed) == strlen(path);
}

bool lb_health_status_ok(long status) { return status >= 200 && status <= 399; }
