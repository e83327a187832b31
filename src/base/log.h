/* Logging: one line per event to stderr, with level, time and the component name.
 * The daemon that decides about an error logs it; library code returns -errno instead. */
#pragma once

#include "macro.h"

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

void log_setup(const char *component);
void log_set_level(enum log_level level);
void log_emit(enum log_level level, const char *fmt, ...) _printf_(2, 3);

#define log_debug(...) log_emit(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_emit(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_emit(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_emit(LOG_LEVEL_ERROR, __VA_ARGS__)
