/* QMP transport (see qmp.h): socket, line framing, ids, event queue, fd passing.
 *
 * There is no reader thread. Whoever holds the connection's mutex reads: a command reads until
 * its reply arrives and queues the events it sees on the way; an event waiter reads in short
 * slices and drops the mutex in between. QEMU ends every message with "\r\n" and never puts a
 * raw newline inside one, so a line is a message. */
#include "vmm/qemu/qmp.h"

#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/log.h"
#include "base/util.h"

#define QMP_LINE_MAX (16u << 20) /* a longer line is not QEMU talking: refuse it */
#define QMP_EVENTS_MAX 256       /* oldest events are dropped beyond this */
#define QMP_EVENT_SLICE_MS 50    /* event waiters release the mutex this often */

struct qmp {
        pthread_mutex_t lock;
        int fd;
        int broken; /* 0, or the -errno that made the stream unusable */
        uint64_t next_id;
        char *buf; /* received bytes not yet consumed */
        size_t len, cap, scanned;
        json_t *events; /* array of event objects, oldest first */
};

void qmp_error_set(qmp_error_t *err, const char *klass, const char *fmt, ...) {
        if (!err)
                return;
        snprintf(err->klass, sizeof err->klass, "%s", klass ? klass : "");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->desc, sizeof err->desc, fmt, ap);
        va_end(ap);
}

static int64_t deadline_after(int timeout_ms) {
        return timeout_ms < 0 ? INT64_MAX : time_now_ms() + timeout_ms;
}

/* poll() timeout until deadline: -1 for none, 0 when expired. */
static int remaining_ms(int64_t deadline) {
        if (deadline == INT64_MAX)
                return -1;
        int64_t r = deadline - time_now_ms();
        return r <= 0 ? 0 : (int)MIN(r, (int64_t)INT_MAX);
}

static int qmp_break(qmp_t *q, int r) {
        if (!q->broken)
                q->broken = r;
        return r;
}

static const struct {
        const char *klass;
        int error;
} qmp_error_classes[] = {
        /* sorted by class; keep in sync with the table in qmp.h */
        { "CommandNotFound", EOPNOTSUPP },
        { "DeviceNotActive", ENXIO },
        { "DeviceNotFound", ENODEV },
        { "GenericError", EIO },
        { "KVMMissingCap", EOPNOTSUPP },
};

int qmp_reply_check(json_t *reply, qmp_error_t *err, json_t **ret_return) {
        if (!json_is_object(reply)) {
                qmp_error_set(err, "", "QMP reply is not a JSON object");
                return -EBADMSG;
        }
        json_t *value = json_object_get(reply, "return");
        if (value) {
                if (ret_return)
                        *ret_return = json_incref(value);
                return 0;
        }
        json_t *error = json_object_get(reply, "error");
        const char *klass = json_string_value(json_object_get(error, "class"));
        const char *desc = json_string_value(json_object_get(error, "desc"));
        if (!klass) {
                qmp_error_set(err, "", "QMP reply has neither \"return\" nor a valid \"error\"");
                return -EBADMSG;
        }
        int r = -EIO;
        for (size_t i = 0; i < ELEMENTSOF(qmp_error_classes); i++)
                if (streq(klass, qmp_error_classes[i].klass)) {
                        r = -qmp_error_classes[i].error;
                        break;
                }
        qmp_error_set(err, klass, "%s", desc ? desc : "(QEMU gave no description)");
        return r;
}

/* Read more bytes into q->buf, waiting until deadline. Locking: q->lock held. */
static int qmp_fill(qmp_t *q, int64_t deadline, qmp_error_t *err) {
        if (q->cap - q->len < 4096) {
                size_t cap = MAX(q->cap * 2, (size_t)8192);
                char *n = realloc(q->buf, cap);
                if (!n)
                        return -ENOMEM;
                q->buf = n;
                q->cap = cap;
        }
        for (;;) {
                struct pollfd p = { .fd = q->fd, .events = POLLIN };
                int k = poll(&p, 1, remaining_ms(deadline));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = negative_errno();
                        qmp_error_set(err, "", "poll on QMP socket: %s", strerror(-r));
                        return qmp_break(q, r);
                }
                if (k == 0) {
                        qmp_error_set(err, "", "timed out waiting for QEMU");
                        return -ETIMEDOUT;
                }
                ssize_t n = read(q->fd, q->buf + q->len, q->cap - q->len);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0) {
                        int r = negative_errno();
                        qmp_error_set(err, "", "reading QMP socket: %s", strerror(-r));
                        return qmp_break(q, r);
                }
                if (n == 0) {
                        qmp_error_set(err, "", "QEMU closed the monitor connection");
                        return qmp_break(q, -ECONNRESET);
                }
                q->len += (size_t)n;
                return 0;
        }
}

static bool line_is_blank(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
                        return false;
        return true;
}

/* Next whole message (a JSON object) from the stream, waiting until deadline.
 * Locking: q->lock held. */
static int qmp_message_read(qmp_t *q, int64_t deadline, qmp_error_t *err, json_t **ret) {
        if (q->broken) {
                qmp_error_set(err, "", "QMP connection is broken (%s)", strerror(-q->broken));
                return -ENOTCONN;
        }
        for (;;) {
                char *nl = q->len > q->scanned ? memchr(q->buf + q->scanned, '\n', q->len - q->scanned) : NULL;
                if (!nl) {
                        q->scanned = q->len;
                        if (q->len >= QMP_LINE_MAX) {
                                qmp_error_set(err, "", "QMP message longer than %u bytes", QMP_LINE_MAX);
                                return qmp_break(q, -EMSGSIZE);
                        }
                        int r = qmp_fill(q, deadline, err);
                        if (r < 0)
                                return r;
                        continue;
                }
                size_t linelen = (size_t)(nl - q->buf);
                json_t *msg = NULL;
                json_error_t jerr;
                bool blank = line_is_blank(q->buf, linelen);
                if (!blank)
                        msg = json_loadb(q->buf, linelen, 0, &jerr);
                memmove(q->buf, nl + 1, q->len - linelen - 1);
                q->len -= linelen + 1;
                q->scanned = 0;
                if (blank)
                        continue;
                if (!msg) {
                        qmp_error_set(err, "", "malformed QMP message: %s", jerr.text);
                        return qmp_break(q, -EBADMSG);
                }
                if (!json_is_object(msg)) {
                        json_decref(msg);
                        qmp_error_set(err, "", "malformed QMP message: not a JSON object");
                        return qmp_break(q, -EBADMSG);
                }
                *ret = msg;
                return 0;
        }
}

static bool qmp_message_is_event(json_t *msg) { return json_is_string(json_object_get(msg, "event")); }

/* Takes the reference to msg. Locking: q->lock held. */
static void qmp_event_push(qmp_t *q, json_t *msg) {
        if (json_array_size(q->events) >= QMP_EVENTS_MAX) {
                log_debug("qmp: event queue full, dropping %s",
                          json_string_value(json_object_get(json_array_get(q->events, 0), "event")));
                json_array_remove(q->events, 0);
        }
        json_array_append_new(q->events, msg);
}

/* Write all of data, the first chunk carrying pass_fd (if >= 0) as SCM_RIGHTS. A partial
 * write leaves half a command in QEMU's parser, so any failure breaks the connection.
 * Locking: q->lock held. */
static int qmp_send_all(qmp_t *q, const char *data, size_t len, int pass_fd, int64_t deadline, qmp_error_t *err) {
        bool fd_sent = pass_fd < 0;
        while (len > 0) {
                struct pollfd p = { .fd = q->fd, .events = POLLOUT };
                int k = poll(&p, 1, remaining_ms(deadline));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = negative_errno();
                        qmp_error_set(err, "", "poll on QMP socket: %s", strerror(-r));
                        return qmp_break(q, r);
                }
                if (k == 0) {
                        qmp_error_set(err, "", "timed out sending to QEMU");
                        return qmp_break(q, -ETIMEDOUT);
                }
                ssize_t n;
                if (!fd_sent) {
                        union {
                                char buf[CMSG_SPACE(sizeof(int))];
                                struct cmsghdr align;
                        } control = { 0 };
                        struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
                        struct msghdr mh = {
                                .msg_iov = &iov,
                                .msg_iovlen = 1,
                                .msg_control = control.buf,
                                .msg_controllen = sizeof control.buf,
                        };
                        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(sizeof(int));
                        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
                        n = sendmsg(q->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
                } else
                        n = send(q->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0) {
                        int r = negative_errno();
                        qmp_error_set(err, "", "writing to QMP socket: %s", strerror(-r));
                        return qmp_break(q, r == -EPIPE ? -ECONNRESET : r);
                }
                fd_sent = true;
                data += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Locking: q->lock held. */
static int qmp_command_locked(qmp_t *q, const char *command, json_t *args, int pass_fd, int timeout_ms,
                              qmp_error_t *err, json_t **ret_return) {
        int64_t deadline = deadline_after(timeout_ms);
        if (q->broken) {
                qmp_error_set(err, "", "QMP connection is broken (%s)", strerror(-q->broken));
                return -ENOTCONN;
        }
        char id[32];
        snprintf(id, sizeof id, "vmx-%" PRIu64, ++q->next_id);
        json_t *msg = json_pack("{s:s, s:s}", "execute", command, "id", id);
        if (!msg)
                return -ENOMEM;
        if (args)
                json_object_set(msg, "arguments", args);
        char *text = json_dumps(msg, JSON_COMPACT);
        json_decref(msg);
        if (!text)
                return -ENOMEM;
        size_t len = strlen(text);
        _cleanup_free_ char *line = xasprintf("%s\n", text);
        free(text);
        log_debug("qmp: -> %s", command);
        int r = qmp_send_all(q, line, len + 1, pass_fd, deadline, err);
        if (r < 0)
                return r;
        for (;;) {
                json_t *m = NULL;
                r = qmp_message_read(q, deadline, err, &m);
                if (r == -ETIMEDOUT)
                        qmp_error_set(err, "", "timed out after %d ms waiting for QEMU's reply to %s", timeout_ms,
                                      command);
                if (r < 0)
                        return r;
                if (qmp_message_is_event(m)) {
                        qmp_event_push(q, m);
                        continue;
                }
                json_t *mid = json_object_get(m, "id");
                bool ours = mid ? json_is_string(mid) && streq(json_string_value(mid), id)
                                /* QEMU omits the id when it could not parse a command; we have
                                 * only one in flight, so such a reply is ours */
                                : json_object_get(m, "return") || json_object_get(m, "error");
                if (!ours) {
                        log_debug("qmp: dropping a message that answers no pending command");
                        json_decref(m);
                        continue;
                }
                r = qmp_reply_check(m, err, ret_return);
                json_decref(m);
                return r;
        }
}

int qmp_command_send(qmp_t *q, const char *command, json_t *args, int pass_fd, int timeout_ms, qmp_error_t *err,
                     json_t **ret_return) {
        if (!q || !command || (args && !json_is_object(args)))
                return -EINVAL;
        pthread_mutex_lock(&q->lock);
        int r = qmp_command_locked(q, command, args, pass_fd, timeout_ms, err, ret_return);
        pthread_mutex_unlock(&q->lock);
        return r;
}

/* Remove and return the first queued event called name. Locking: q->lock held. */
static json_t *qmp_event_pop(qmp_t *q, const char *name) {
        for (size_t i = 0; i < json_array_size(q->events); i++) {
                json_t *e = json_array_get(q->events, i);
                if (streq(json_string_value(json_object_get(e, "event")), name)) {
                        json_incref(e);
                        json_array_remove(q->events, i);
                        return e;
                }
        }
        return NULL;
}

int qmp_event_wait(qmp_t *q, const char *name, int timeout_ms, qmp_error_t *err, json_t **ret_event) {
        if (!q || !name)
                return -EINVAL;
        int64_t deadline = deadline_after(timeout_ms);
        for (;;) {
                pthread_mutex_lock(&q->lock);
                json_t *e = qmp_event_pop(q, name);
                if (e) {
                        pthread_mutex_unlock(&q->lock);
                        if (ret_event)
                                *ret_event = e;
                        else
                                json_decref(e);
                        return 0;
                }
                int64_t now = time_now_ms();
                if (now >= deadline) {
                        pthread_mutex_unlock(&q->lock);
                        qmp_error_set(err, "", "timed out after %d ms waiting for event %s", timeout_ms, name);
                        return -ETIMEDOUT;
                }
                json_t *m = NULL;
                int r = qmp_message_read(q, MIN(deadline, now + QMP_EVENT_SLICE_MS), err, &m);
                if (r >= 0) {
                        if (qmp_message_is_event(m))
                                qmp_event_push(q, m);
                        else
                                json_decref(m); /* a late reply to a timed-out command */
                }
                pthread_mutex_unlock(&q->lock);
                if (r < 0 && r != -ETIMEDOUT)
                        return r;
        }
}

void qmp_event_discard(qmp_t *q, const char *name) {
        if (!q)
                return;
        pthread_mutex_lock(&q->lock);
        if (!name)
                json_array_clear(q->events);
        else
                for (size_t i = json_array_size(q->events); i > 0; i--) {
                        const char *ev = json_string_value(json_object_get(json_array_get(q->events, i - 1), "event"));
                        if (streq(ev, name))
                                json_array_remove(q->events, i - 1);
                }
        pthread_mutex_unlock(&q->lock);
}

int qmp_open_fd(int fd, int timeout_ms, qmp_error_t *err, qmp_t **ret) {
        if (fd < 0)
                return -EBADF;
        qmp_t *q = xcalloc(1, sizeof *q);
        pthread_mutex_init(&q->lock, NULL);
        q->fd = fd;
        q->events = json_array();
        if (!q->events) {
                qmp_free(q);
                return -ENOMEM;
        }
        int64_t deadline = deadline_after(timeout_ms);

        pthread_mutex_lock(&q->lock);
        json_t *greeting = NULL;
        int r = qmp_message_read(q, deadline, err, &greeting);
        if (r == -ETIMEDOUT)
                qmp_error_set(err, "", "timed out waiting for the QMP greeting");
        if (r >= 0 && !json_is_object(json_object_get(greeting, "QMP"))) {
                qmp_error_set(err, "", "peer is not a QMP monitor (no greeting)");
                r = qmp_break(q, -EBADMSG);
        }
        json_decref(greeting);
        if (r >= 0)
                r = qmp_command_locked(q, "qmp_capabilities", NULL, -1, remaining_ms(deadline), err, NULL);
        pthread_mutex_unlock(&q->lock);
        if (r < 0) {
                qmp_free(q);
                return r;
        }
        *ret = q;
        return 0;
}

int qmp_connect(const char *path, int timeout_ms, qmp_alive_fn alive, void *userdata, qmp_error_t *err,
                qmp_t **ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (!path)
                return -EINVAL;
        if (strlen(path) >= sizeof sa.sun_path) {
                qmp_error_set(err, "", "socket path too long: %s", path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, path);
        int64_t deadline = deadline_after(timeout_ms);
        int64_t pause_ms = 2;
        for (;;) {
                _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return negative_errno();
                if (connect(fd, (struct sockaddr *)&sa, sizeof sa) >= 0)
                        return qmp_open_fd(TAKE_FD(fd), remaining_ms(deadline), err, ret);
                int r = negative_errno();
                if (r != -ENOENT && r != -ECONNREFUSED && r != -EAGAIN && r != -EINTR) {
                        qmp_error_set(err, "", "connect to %s: %s", path, strerror(-r));
                        return r;
                }
                if (alive) {
                        int k = alive(userdata);
                        if (k < 0) {
                                qmp_error_set(err, "", "gave up waiting for %s: %s", path, strerror(-k));
                                return k;
                        }
                }
                if (remaining_ms(deadline) == 0) {
                        qmp_error_set(err, "", "timed out after %d ms waiting for %s", timeout_ms, path);
                        return -ETIMEDOUT;
                }
                int wait = remaining_ms(deadline);
                time_sleep_ms(wait < 0 ? pause_ms : MIN(pause_ms, (int64_t)wait));
                pause_ms = MIN(pause_ms * 2, (int64_t)20);
        }
}

int qmp_peer_pid(qmp_t *q, pid_t *ret) { return socket_peer_pid(q->fd, ret); }

qmp_t *qmp_free(qmp_t *q) {
        if (!q)
                return NULL;
        if (q->fd >= 0)
                close(q->fd);
        free(q->buf);
        json_decref(q->events);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return NULL;
}
