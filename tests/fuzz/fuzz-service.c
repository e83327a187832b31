/* Harness: the body of POST /v1/services (a service's name, image, pool, limits and health
 * check), loaded as the HTTP server loads it and read by oracle_service_from_body into the
 * record the Oracle stores. Checked: a refusal comes with a message that can go into JSON; an
 * accepted service has valid names, every figure within the range the API documents, min <=
 * max <= pool, and a health check HAProxy can be given (http with a valid path, or tcp with
 * none). */
#include <math.h>
#include <stdbool.h>

#include "base/util.h"
#include "bundle/bundle.h"
#include "fuzz.h"
#include "lb/lb.h"
#include "oracle/oracle-internal.h"

static void check_service(const service_record_t *sv) {
        FUZZ_CHECK(name_is_valid(sv->name) && strlen(sv->name) <= 58 && name_is_valid(sv->image));
        FUZZ_CHECK(sv->pool >= 1 && sv->min >= 0 && sv->min <= sv->max && sv->max <= sv->pool);
        FUZZ_CHECK(sv->priority >= 0 && sv->priority <= 1000);
        FUZZ_CHECK(sv->memory_mib >= BUNDLE_MEMORY_MIB_MIN && sv->memory_mib <= BUNDLE_MEMORY_MIB_MAX);
        FUZZ_CHECK(sv->vcpus >= 1 && sv->vcpus <= BUNDLE_VCPUS_MAX);
        FUZZ_CHECK(isfinite(sv->window_s) && sv->window_s >= 0 && sv->window_s <= 86400);
        FUZZ_CHECK(isfinite(sv->high) && sv->high >= 1 && sv->high <= 100);
        lb_health_kind_t kind;
        FUZZ_CHECK(lb_health_kind_parse(sv->health_kind, &kind) == 0);
        FUZZ_CHECK(kind == LB_HEALTH_TCP ? !*sv->health_path : lb_health_path_valid(sv->health_path));
        char *text = oracle_service_health_text(sv);
        free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *body = fuzz_json_body(data, size);
        if (!body)
                return 0;
        service_record_t sv = { 0 };
        char *msg = NULL;
        int r = oracle_service_from_body(body, &sv, &msg);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -ERANGE);
                FUZZ_CHECK(msg && *msg);
                utf8_sanitize(msg);
                json_t *s = json_string(msg);
                FUZZ_CHECK(s);
                json_decref(s);
        } else {
                FUZZ_CHECK(r == 0 && !msg);
                check_service(&sv);
        }
        free(msg);
        json_decref(body);
        return 0;
}
