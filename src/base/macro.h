/* Small language helpers used everywhere: scope cleanup, ownership hand-over, array sizes.
 * Modelled on systemd's macro.h so that every file frees on every path without goto ladders. */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _warn_unused_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Hand ownership of *ptr to the caller and leave NULL behind, so the cleanup attribute of
 * the original variable does nothing. */
#define TAKE_PTR(ptr)                                  \
        ({                                             \
                __typeof__(ptr) *_pptr_ = &(ptr);      \
                __typeof__(ptr) _ptr_ = *_pptr_;       \
                *_pptr_ = NULL;                        \
                _ptr_;                                 \
        })

#define TAKE_FD(fd)                  \
        ({                           \
                int *_pfd_ = &(fd);  \
                int _fd_ = *_pfd_;   \
                *_pfd_ = -1;         \
                _fd_;                \
        })

static inline void freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}
static inline void strv_freep(char ***v) { strv_free(*v); }
#define _cleanup_strv_free_ _cleanup_(strv_freep)

#define streq(a, b) (strcmp((a), (b)) == 0)
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Negative errno from the current errno, never 0 (some libc paths leave errno unset). */
static inline int negative_errno(void) { return errno > 0 ? -errno : -EIO; }
