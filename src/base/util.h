/* Strings, files and time: the small helpers every module needs. No project dependencies. */
#pragma once

#include <time.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* malloc'd printf; aborts on OOM (like g_strdup_printf): OOM is not a recoverable state here. */
char *xasprintf(const char *fmt, ...) _printf_(1, 2);
char *xstrdup(const char *s);
void *xcalloc(size_t n, size_t size);

bool str_startswith(const char *s, const char *prefix);
/* Copies s (NULL: "") into the fixed-size buffer dst, cut to fit, always terminated. SET() is
 * the form for a char array field: SET(vm->state, "active"). */
void set_str(char *dst, size_t size, const char *s);
#define SET(field, s) set_str((field), sizeof(field), (s))
bool str_endswith(const char *s, const char *suffix);

/* Replaces, in place, every byte of s that is not part of well-formed UTF-8 (including a
 * sequence cut short by truncation) with '?', so the text can go into a JSON string. */
void utf8_sanitize(char *s);

/* FNV-1a, 32 bits, of s: tells names apart (an RM's data directories on one host: its guest
 * firewall table, its cgroups), not hard to collide on purpose. */
uint32_t str_fnv1a32(const char *s);

/* A valid object name: 1..63 of [a-z0-9-], starting with a letter or digit. */
bool name_is_valid(const char *name);

/* A size such as "512M", "20G" or "1048576" (K, M, G, T: powers of 1024) into *ret; -EINVAL
 * when malformed, -ERANGE above 2^62. */
int parse_size(const char *s, uint64_t *ret);
/* "1.5 GiB", "512 B": into buf, which is returned. */
char *format_bytes(uint64_t bytes, char *buf, size_t size);
/* Parse a whole decimal string into [min,max]; -EINVAL or -ERANGE otherwise. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);

/* A duration "Ns", "Nm", "Nh" or "Nd" (DESIGN.md §11) into seconds: -EINVAL when malformed
 * (no unit, a sign, empty), -ERANGE when too large. */
int parse_duration_s(const char *s, int64_t *ret);

/* Monotonic and wall-clock time in milliseconds / seconds. */
int64_t time_now_ms(void);
int64_t time_wall_ms(void);
double time_wall_s(void);
void time_sleep_ms(int64_t ms);
/* Grows the malloc'd array *array (a pointer to the array pointer) of *n elements of size
 * bytes by one zeroed element, bumps *n and returns the new element. Aborts without memory. */
void *array_append(void *array, size_t *n, size_t size);
/* CLOCK_REALTIME ms from now: the deadline pthread_cond_timedwait takes. */
struct timespec time_realtime_after_ms(int64_t ms);

/* Whole-file helpers. file_read returns the bytes NUL-terminated in *ret and the length. */
int file_read(const char *path, char **ret, size_t *ret_len);
/* The last max bytes of the regular file path (all of it when it is smaller), NUL-terminated in
 * *ret, for a file in a directory that an untrusted process may write (a confined QEMU's run
 * directory): a symbolic link at path is not followed (-ELOOP), and anything but a regular file
 * (a FIFO that would block, a device) is refused (-EINVAL). */
int file_read_tail_safe(const char *path, size_t max, char **ret, size_t *ret_len);
/* Opens the regular file path (O_NOFOLLOW, O_NONBLOCK, then checked) for a file in such a
 * directory; flags as open(2). -ELOOP, -EINVAL as above. */
int file_open_safe(const char *path, int flags, mode_t mode);
/* The pid of the process at the other end of a connected UNIX socket (SO_PEERCRED): a socket
 * found by path in such a directory may have been swapped for a link to another's. */
int socket_peer_pid(int fd, pid_t *ret);
/* Writes all of data to fd, retrying short writes and EINTR; -errno on failure. */
int fd_write_all(int fd, const void *data, size_t len);
/* The same at offset off (pwrite: the file position does not move). */
int fd_pwrite_all(int fd, const void *data, size_t len, uint64_t off);
/* Writes via a temporary file, fsync and rename, so readers see the old or new content. */
int file_write_atomic(const char *path, const void *data, size_t len);
/* The same with the file's mode (0600 for a secret: it is never wider, even while written);
 * no fault point. */
int file_write_atomic_mode(const char *path, const void *data, size_t len, mode_t mode);
int mkdir_p(const char *path, mode_t mode);
int rm_rf(const char *path);
bool file_exists(const char *path);
int64_t file_size(const char *path);
int fsync_dir_of(const char *path);

/* Lowercase hex SHA-256 of a file (65-byte buffer). */
int file_sha256(const char *path, char ret_hex[65]);

/* Absolute path of the running executable (malloc'd). */
char *exe_path(void);
/* Directory holding the running executable (malloc'd). */
char *exe_dir(void);

/* Crash points for fault-injection tests: if VMATRIX_CRASH_AT equals name, the process kills
 * itself with SIGKILL right here, as a power cut would. Costs one getenv when unused. */
void crash_point(const char *name);
/* Stall points: if VMATRIX_STALL_AT equals name, the thread sleeps for an hour here, as a hung
 * peer would (for tests of timeouts and heartbeats). */
void stall_point(const char *name);
