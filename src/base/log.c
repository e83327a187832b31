/* Logging to stderr. The component name and level come from log_setup() and the
 * VMATRIX_LOG environment variable (debug|info|warn|error). */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

static struct {
        char component[32];
        enum log_level level;
} log_config = { .component = "vmatrix", .level = LOG_LEVEL_INFO };

void log_setup(const char *component) {
        snprintf(log_config.component, sizeof log_config.component, "%s", component);
        const char *env = getenv("VMATRIX_LOG");
        if (!env)
                return;
        if (streq(env, "debug"))
                log_config.level = LOG_LEVEL_DEBUG;
        else if (streq(env, "warn"))
                log_config.level = LOG_LEVEL_WARN;
        else if (streq(env, "error"))
                log_config.level = LOG_LEVEL_ERROR;
}

void log_set_level(enum log_level level) { log_config.level = level; }

void log_emit(enum log_level level, const char *fmt, ...) {
        static const char *const names[] = { "debug", "info", "warn", "error" };
        if (level < log_config.level)
                return;
        char line[2048];
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s[%d] %s: ", tm.tm_hour, tm.tm_min,
                         tm.tm_sec, ts.tv_nsec / 1000000, log_config.component, (int)getpid(), names[level]);
        va_list ap;
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < sizeof line)
                vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
        /* one write per line keeps lines from several threads whole */
        size_t len = strnlen(line, sizeof line - 2);
        line[len] = '\n';
        ssize_t w = write(STDERR_FILENO, line, len + 1);
        (void)w;
}
