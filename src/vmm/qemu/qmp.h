/* QMP transport: one connection to a QEMU monitor socket. Owns the socket, the line framing,
 * command ids, the queue of asynchronous events and fd passing (SCM_RIGHTS). It knows nothing
 * about individual commands: their JSON is built and parsed in qmp-commands.c.
 *
 * Everything QEMU sends is untrusted input: a malformed line is an error (-EBADMSG) and marks
 * the connection broken, never a crash. Every wait has a timeout.
 *
 * Errors are -errno. Callers that want QEMU's words pass a qmp_error_t, filled on failure with
 * QEMU's error class and desc (or a description of what the transport saw), like sd_bus_error.
 *
 * Thread safety: a mutex serialises all use of one connection; commands from several threads
 * run one after the other. qmp_event_wait() drops the mutex between short slices, so a thread
 * waiting for an event does not block other threads' commands. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "base/macro.h"

typedef struct qmp qmp_t;

typedef struct qmp_error {
        char klass[64];  /* QMP error class ("GenericError", ...), or "" for transport errors */
        char desc[512];  /* QEMU's desc, or what went wrong on the transport */
} qmp_error_t;

/* Polled while qmp_connect() waits for the socket to appear: return < 0 to give up with that
 * error (e.g. the QEMU process has died), >= 0 to keep waiting. */
typedef int (*qmp_alive_fn)(void *userdata);

/* Connect to the monitor socket at path, retrying until timeout_ms since QEMU creates the
 * socket only once it has started; then read the greeting and negotiate capabilities.
 * alive may be NULL. Returns 0 and a new connection in *ret, or -ETIMEDOUT, -ENAMETOOLONG,
 * -ECONNRESET (QEMU closed the socket), -EBADMSG (not a QMP peer), or alive()'s error. */
int qmp_connect(const char *path, int timeout_ms, qmp_alive_fn alive, void *userdata, qmp_error_t *err,
                qmp_t **ret);

/* Like qmp_connect() on an already connected stream socket (tests use a socketpair).
 * Takes ownership of fd whatever the outcome. */
int qmp_open_fd(int fd, int timeout_ms, qmp_error_t *err, qmp_t **ret);

/* Closes the socket and drops queued events. Accepts NULL, returns NULL. */
qmp_t *qmp_free(qmp_t *q);
/* The pid of the process that listens at the other end of the monitor (SO_PEERCRED). */
int qmp_peer_pid(qmp_t *q, pid_t *ret);
static inline void qmp_freep(qmp_t **q) { qmp_free(*q); }
#define _cleanup_qmp_ _cleanup_(qmp_freep)

/* Run one command and wait up to timeout_ms (< 0: forever) for the reply carrying its id.
 * args (borrowed, may be NULL) become "arguments". When pass_fd >= 0 it is sent along with
 * the command as SCM_RIGHTS (for getfd); the caller keeps its own copy.
 * On success *ret_return (may be NULL) holds a new reference to the "return" value.
 * On failure returns the errno from qmp_reply_check() for QEMU errors, -ETIMEDOUT,
 * -ECONNRESET when QEMU closed the connection, -EBADMSG on malformed input, -EMSGSIZE on an
 * absurdly long line, or -ENOTCONN once the connection is broken. After -ETIMEDOUT the
 * connection stays usable: a late reply is recognised by its id and dropped. */
int qmp_command_send(qmp_t *q, const char *command, json_t *args, int pass_fd, int timeout_ms, qmp_error_t *err,
                     json_t **ret_return);

/* Wait up to timeout_ms for an event called name, queued earlier or arriving now; removes it
 * from the queue. *ret_event (may be NULL) gets the whole event object ("event", "data",
 * "timestamp"). Older events of other names stay queued. */
int qmp_event_wait(qmp_t *q, const char *name, int timeout_ms, qmp_error_t *err, json_t **ret_event);

/* Drop queued events called name (all events when name is NULL), e.g. before an action whose
 * event the caller is about to wait for. */
void qmp_event_discard(qmp_t *q, const char *name);

/* THE checker: maps one reply object to 0 (and a new reference to "return" in *ret_return,
 * which may be NULL) or to -errno with class and desc in err. Every QMP error class is mapped
 * here and nowhere else:
 *   CommandNotFound, KVMMissingCap -> -EOPNOTSUPP
 *   DeviceNotFound                 -> -ENODEV
 *   DeviceNotActive                -> -ENXIO
 *   GenericError and unknown       -> -EIO
 *   neither "return" nor a well-formed "error" -> -EBADMSG */
int qmp_reply_check(json_t *reply, qmp_error_t *err, json_t **ret_return);

/* Fill err (may be NULL) with a transport-level description. */
void qmp_error_set(qmp_error_t *err, const char *klass, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
