/* A minimal test harness: CHECK records a failure with its location and goes on, so one run
 * reports every broken assertion; tap_finish prints "N passed, N failed" and the exit code. */
#pragma once

#include <stdio.h>
#include <string.h>

extern int tap_passed, tap_failed;

#define CHECK(cond)                                                                    \
        do {                                                                           \
                if (cond) {                                                            \
                        tap_passed++;                                                  \
                } else {                                                               \
                        tap_failed++;                                                  \
                        fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
                }                                                                      \
        } while (0)

#define CHECK_STREQ(a, b)                                                                           \
        do {                                                                                        \
                const char *_a = (a), *_b = (b);                                                    \
                if (_a && _b && strcmp(_a, _b) == 0) {                                              \
                        tap_passed++;                                                               \
                } else {                                                                            \
                        tap_failed++;                                                               \
                        fprintf(stderr, "FAIL %s:%d: %s == %s (\"%s\" vs \"%s\")\n", __FILE__, __LINE__, \
                                #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");                   \
                }                                                                                   \
        } while (0)

int tap_finish(void);

/* A free TCP port on 127.0.0.1 (the kernel's pick; another process could take it before the
 * test binds it, which a loopback test accepts), or -1. */
int tap_free_port(void);
