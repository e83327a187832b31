/* Local validation of argument values, so that a bad value is a usage error (exit 2) with a
 * message naming it before anything is sent; the Oracle validates again. */
#include <math.h>
#include <stdlib.h>

#include "base/util.h"
#include "cli/commands.h"
#include "cli/output.h"

int cli_check_name(cli_t *c, const char *what, const char *name) {
        if (name_is_valid(name))
                return CLI_OK;
        return cli_usage(c, "invalid %s name \"%s\": use 1-63 characters of a-z, 0-9 and '-', not starting with '-'",
                         what, name ? name : "");
}

int cli_opt_double(cli_t *c, const char *option, double min, double max, double *ret) {
        const char *v = cli_opt(c, option);
        if (!v)
                return CLI_OK;
        char *end = NULL;
        double x = strtod(v, &end);
        if (!*v || *end || !isfinite(x) || x < min || x > max)
                return cli_usage(c, "--%s must be a number from %g to %g, not \"%s\"", option, min, max, v);
        *ret = x;
        return CLI_OK;
}

int cli_opt_int(cli_t *c, const char *option, int64_t min, int64_t max, int64_t *ret) {
        const char *s = cli_opt(c, option);
        if (!s)
                return CLI_OK;
        if (parse_int64(s, min, max, ret) < 0)
                return cli_usage(c, "--%s must be a number in %lld..%lld, not \"%s\"", option, (long long)min,
                                 (long long)max, s);
        return CLI_OK;
}
