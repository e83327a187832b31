/* VMATRIX_FAULT (see fault.h). The counter of calls at the chosen site is process-wide state
 * on purpose: the sites sit deep in libraries that have no context to carry it, and it exists
 * only while the variable is set, in a test. */
#include "base/fault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
static char fault_site[32];
static long fault_at;          /* 0: no fault */
static atomic_long fault_calls;

static void fault_init(void) {
        const char *env = getenv(FAULT_ENV);
        const char *colon = env ? strrchr(env, ':') : NULL;
        if (!colon || (size_t)(colon - env) >= sizeof fault_site)
                return;
        char *end = NULL;
        long n = strtol(colon + 1, &end, 10);
        if (n <= 0 || !end || *end)
                return;
        memcpy(fault_site, env, (size_t)(colon - env));
        fault_at = n;
}

bool fault_hit(const char *site) {
        pthread_once(&fault_once, fault_init);
        if (fault_at == 0 || strcmp(site, fault_site) != 0)
                return false;
        if (atomic_fetch_add(&fault_calls, 1) + 1 != fault_at)
                return false;
        log_warn("fault injected: %s:%ld", site, fault_at);
        return true;
}
