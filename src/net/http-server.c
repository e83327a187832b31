/* libmicrohttpd-based implementation of http-server.h. Bodies of JSON routes are capped at
 * HTTP_MAX_JSON_BODY and must be a JSON object; anything else is a 400 before the handler runs.
 *
 * The connection limit is ours, not libmicrohttpd's: at its own limit libmicrohttpd stops
 * accepting, and the connections above it wait in the listen queue unseen and uncounted (a
 * node there sends heartbeats nobody reads, and is fenced as silent). Here the accept policy
 * closes a connection above max_connections at once, counts it and says so in the log; the
 * node sees a refused connection and tries again. libmicrohttpd's limit sits a little above
 * ours, for connections closed but not yet reaped by its thread. The same policy bounds the
 * connections still in their handshake (max_handshakes): a thread per connection, thousands of
 * handshakes at once share the CPU until none finishes within the first-request timeout, the
 * clients all try again, and nothing gets through (seen with 10,000 RMs on 2 cores). */
#include "net/http-server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "net/http-route.h"
#include "net/http-server-internal.h"

#define HTTP_MAX_JSON_BODY (4 * 1024 * 1024)
/* libmicrohttpd's own limit is ours plus this (see the top of the file). */
#define HTTP_LIMIT_SLACK 64
/* At most one "connection limit reached" warning per this many ms. */
#define HTTP_LIMIT_LOG_MS 10000

struct http_server {
        struct MHD_Daemon *daemon;
        const http_route_t *routes;
        char *upload_dir;
        void *userdata;
        http_authorize_fn authorize;
        unsigned idle_timeout_s; /* after the first request (see first_request_timeout_s) */
        bool short_first;        /* the first request has a shorter timeout */
        char *listen;
        unsigned max_connections, max_handshakes;
        /* counters (atomic): see http_server_stats_t */
        uint64_t open, total, at_limit, handshaking, busy, peer_verifications;
        int64_t limit_logged_ms;
};

static void conn_settled(http_server_t *s, http_conn_t *c);

typedef struct upgrade_ctx upgrade_ctx_t;
static void upgrade_abandon(upgrade_ctx_t *u);

/* Per-request state kept between libmicrohttpd's calls of the access handler. */
typedef struct request_state {
        const http_route_t *route;
        const char *params[HTTP_MAX_PARAMS];
        char *param_storage;
        char *body;
        size_t body_len;
        bool too_large;
        int upload_fd;
        char *upload_path;
        int upload_error;
        uint64_t upload_len;
        void *principal; /* the authorizer's, freed with the state */
        bool http11;            /* an HTTP/1.1 request (only those can switch protocols) */
        upgrade_ctx_t *upgrade; /* a 101 queued, its socket not handed over yet (upgrade_handler) */
        struct MHD_Response *pending; /* an answer libmicrohttpd was not ready for (reply_queue) */
        unsigned pending_status;
} request_state_t;

static void request_state_free(request_state_t *st) {
        if (!st)
                return;
        /* the client left before the 101 went out: the upgrade function still owns its data */
        if (st->upgrade)
                upgrade_abandon(st->upgrade);
        if (st->pending)
                MHD_destroy_response(st->pending);
        free(st->principal);
        free(st->param_storage);
        free(st->body);
        if (st->upload_fd >= 0)
                close(st->upload_fd);
        if (st->upload_path) {
                unlink(st->upload_path);
                free(st->upload_path);
        }
        free(st);
}

struct upgrade_ctx {
        http_upgrade_fn fn;
        void *data;
        int fd;
        char *extra;
        size_t extra_len;
        struct MHD_UpgradeResponseHandle *urh; /* NULL: an abandoned upgrade, fd is ours */
        int tcp_fd;     /* TLS: the connection's own socket (libmicrohttpd's, open until the
                           upgrade is closed), watched by upgrade_watch; -1 otherwise */
        int stop[2];    /* a pipe that ends the watch */
};

/* libmicrohttpd (0.9.75; its later versions alike) does not pass a TLS client's end on to the
 * socketpair that an upgrade function gets: it reads the close, stops reading, and notices
 * nothing more until a send to the client fails. A function that only reads (a console nobody
 * types in, an idle display) would wait for ever, and keep what it holds (a VM's console
 * socket). So while the function runs, this thread watches the connection's socket and, once
 * the client has ended its side (POLLRDHUP), shuts the reading side of the function's end: the
 * function reads what is queued there, then the end, returns, and the upgrade is closed.
 * Not the writing side, which would have libmicrohttpd finish its forwarding before the
 * function closes the upgrade: libmicrohttpd 0.9.75 can then free the connection while
 * MHD_upgrade_action still uses it (fixed upstream in 1.0, "Fixed very rare data races when
 * closing upgraded connection"); seen as heap corruption with a hundred consoles closing at
 * once. The grace first lets libmicrohttpd forward what the client sent just before its end. */
#define UPGRADE_END_GRACE_MS 100

static void *upgrade_watch(void *arg) {
        upgrade_ctx_t *u = arg;
        struct pollfd p[2] = { { .fd = u->tcp_fd, .events = POLLRDHUP }, { .fd = u->stop[0], .events = POLLIN } };
        int timeout = -1; /* UPGRADE_END_GRACE_MS once the client has ended */
        for (;;) {
                int r = poll(p, 2, timeout);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0 || p[1].revents)
                        return NULL;
                if (r == 0) {
                        shutdown(u->fd, SHUT_RD);
                        return NULL;
                }
                if (p[0].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
                        p[0].fd = -1; /* watched no more: the grace runs */
                        timeout = UPGRADE_END_GRACE_MS;
                }
        }
}

static void *upgrade_thread(void *arg) {
        upgrade_ctx_t *u = arg;
        pthread_t watch;
        bool watching = false;
        if (u->tcp_fd >= 0 && pipe2(u->stop, O_CLOEXEC) == 0) {
                pthread_attr_t attr;
                pthread_attr_init(&attr);
                pthread_attr_setstacksize(&attr, 256 * 1024);
                watching = pthread_create(&watch, &attr, upgrade_watch, u) == 0;
                pthread_attr_destroy(&attr);
                if (!watching) {
                        close(u->stop[0]);
                        close(u->stop[1]);
                }
        }
        u->fn(u->data, u->fd, u->extra, u->extra_len);
        /* before the upgrade is closed: then libmicrohttpd closes tcp_fd */
        if (watching) {
                (void)!write(u->stop[1], "", 1);
                pthread_join(watch, NULL);
                close(u->stop[0]);
                close(u->stop[1]);
        }
        if (u->urh)
                MHD_upgrade_action(u->urh, MHD_UPGRADE_ACTION_CLOSE);
        else
                close(u->fd);
        free(u->extra);
        free(u);
        return NULL;
}

/* Runs u's function in a thread of its own, so the connection's thread is not held. */
static void upgrade_run(upgrade_ctx_t *u) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, upgrade_thread, u) != 0)
                upgrade_thread(u);
        pthread_attr_destroy(&attr);
}

/* An upgrade that never happens (libmicrohttpd refused it: an HTTP/1.0 request; or the client
 * left before the 101 went out). Its function owns data (a console's sockets, memory), so it
 * still runs, on a socket whose peer is gone, as if the client had left at once. */
static void upgrade_abandon(upgrade_ctx_t *u) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                log_error("an upgrade that did not happen cannot be undone (%m): its function's data leaks");
                free(u);
                return;
        }
        close(sv[1]);
        u->fd = sv[0];
        u->urh = NULL;
        u->tcp_fd = -1;
        upgrade_run(u);
}

/* libmicrohttpd hands over the socket here; the stream runs in a thread of its own so the
 * connection's thread is not held. */
static void upgrade_handler(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in,
                            size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
        upgrade_ctx_t *u = cls;
        request_state_t *st = con_cls; /* libmicrohttpd ends the request after this, never before */
        if (st)
                st->upgrade = NULL;
        u->fd = sock;
        u->urh = urh;
        /* with TLS, sock is one end of libmicrohttpd's socketpair, not the connection's socket */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        u->tcp_fd = ci && ci->connect_fd != sock ? ci->connect_fd : -1;
        if (extra_in_size > 0) {
                u->extra = malloc(extra_in_size);
                if (u->extra) {
                        memcpy(u->extra, extra_in, extra_in_size);
                        u->extra_len = extra_in_size;
                }
        }
        upgrade_run(u);
}

/* Queues resp on conn (taken over). libmicrohttpd refuses an answer before the request has
 * ended, and 0.9.75 makes one call without data before the end of a request that asked for
 * "100 Continue" and has no body: the answer then waits in state for the next call, which
 * sends it without running the handler again (access_handler). */
static enum MHD_Result reply_queue(struct MHD_Connection *conn, request_state_t *state, struct MHD_Response *resp,
                                   unsigned status) {
        enum MHD_Result r = MHD_queue_response(conn, status, resp);
        if (r != MHD_YES && !state->pending) {
                state->pending = resp;
                state->pending_status = status;
                return MHD_YES;
        }
        MHD_destroy_response(resp);
        return r;
}

/* The extra headers of reply onto resp, and frees them. */
static void reply_headers_take(http_reply_t *reply, struct MHD_Response *resp) {
        for (unsigned i = 0; i < reply->n_headers; i++) {
                if (resp)
                        MHD_add_response_header(resp, reply->headers[i][0], reply->headers[i][1]);
                free(reply->headers[i][0]);
                free(reply->headers[i][1]);
        }
        reply->n_headers = 0;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
        http_reply_t *r = cls;
        long n = r->stream(r->stream_data, pos, buf, max);
        return n == HTTP_STREAM_END     ? MHD_CONTENT_READER_END_OF_STREAM
               : n == HTTP_STREAM_ERROR ? MHD_CONTENT_READER_END_WITH_ERROR
                                        : (ssize_t)n;
}

static void stream_done(void *cls) {
        http_reply_t *r = cls;
        if (r->stream_free)
                r->stream_free(r->stream_data);
        free(r);
}

/* Sends reply on conn and frees what it holds; state is the request's (an upgrade is recorded
 * there until libmicrohttpd hands the socket over). */
static enum MHD_Result send_reply(struct MHD_Connection *conn, request_state_t *state, http_reply_t *reply) {
        struct MHD_Response *resp = NULL;
        const char *type = "application/json";
        if (reply->stream) {
                /* a copy of the source outlives this reply: libmicrohttpd calls it until the end */
                http_reply_t *src = xcalloc(1, sizeof *src);
                src->stream = reply->stream;
                src->stream_data = reply->stream_data;
                src->stream_free = reply->stream_free;
                reply->stream = NULL;
                resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, src, stream_done);
                if (!resp) {
                        stream_done(src);
                        http_reply_error(reply, 500, "internal", "cannot stream the answer");
                } else {
                        type = reply->content_type ? reply->content_type : "text/event-stream";
                }
        }
        if (reply->upgrade) {
                upgrade_ctx_t *u = xcalloc(1, sizeof *u);
                u->fn = reply->upgrade;
                u->data = reply->upgrade_data;
                u->fd = -1;
                u->tcp_fd = -1;
                reply->upgrade = NULL;
                /* libmicrohttpd switches HTTP/1.1 connections only */
                if (state->http11 && (resp = MHD_create_response_for_upgrade(upgrade_handler, u))) {
                        MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, reply->upgrade_protocol);
                        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
                        reply_headers_take(reply, resp);
                        state->upgrade = u;
                        json_decref(reply->json);
                        free(reply->file_path);
                        free(reply->text);
                        free(reply->bytes);
                        return reply_queue(conn, state, resp, MHD_HTTP_SWITCHING_PROTOCOLS);
                }
                upgrade_abandon(u);
                http_reply_error(reply, 400, "invalid", "switching to %s needs HTTP/1.1", reply->upgrade_protocol);
        }
        if (!resp && reply->file_path) {
                int fd = open(reply->file_path, O_RDONLY | O_CLOEXEC);
                if (reply->file_unlink)
                        unlink(reply->file_path);
                struct stat st;
                if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                    (resp = MHD_create_response_from_fd64((uint64_t)st.st_size, fd))) {
                        type = "application/octet-stream";
                } else {
                        if (fd >= 0)
                                close(fd);
                        http_reply_error(reply, 404, "not_found", "no such file");
                }
        }
        if (!resp && reply->bytes) {
                resp = MHD_create_response_from_buffer(reply->bytes_len, reply->bytes, MHD_RESPMEM_MUST_FREE);
                reply->bytes = NULL;
                type = "application/octet-stream";
        }
        if (!resp && reply->text) {
                resp = MHD_create_response_from_buffer(strlen(reply->text), reply->text, MHD_RESPMEM_MUST_COPY);
                type = "text/plain";
        }
        if (!resp) {
                /* a handler's reply that cannot be encoded (NULL from json_pack) is our bug, not
                 * the client's: answer so rather than an empty object that looks like success */
                char *s = reply->json ? json_dumps(reply->json, JSON_COMPACT) : NULL;
                if (!s) {
                        reply->status = 500;
                        s = xstrdup("{\"error\":{\"code\":\"internal\",\"message\":\"the answer could not be encoded\"}}");
                }
                resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
        }
        if (!resp) {
                reply_headers_take(reply, NULL);
                json_decref(reply->json);
                free(reply->file_path);
                free(reply->text);
                free(reply->bytes);
                return MHD_NO; /* out of memory: drop the connection */
        }
        MHD_add_response_header(resp, "Content-Type",
                                reply->content_type && reply->status < 400 ? reply->content_type : type);
        reply_headers_take(reply, resp);
        json_decref(reply->json);
        free(reply->file_path);
        free(reply->text);
        free(reply->bytes);
        return reply_queue(conn, state, resp, (unsigned)(reply->status ? reply->status : 200));
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                      const char *version, const char *upload_data, size_t *upload_data_size,
                                      void **con_cls) {
        http_server_t *s = cls;
        request_state_t *st = *con_cls;
        if (!st) {
                /* the headers are in: from now on the connection idles for the usual time */
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
                conn_settled(s, ci ? ci->socket_context : NULL);
                if (s->short_first)
                        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, s->idle_timeout_s);
                st = xcalloc(1, sizeof *st);
                st->upload_fd = -1;
                st->http11 = version && streq(version, MHD_HTTP_VERSION_1_1);
                bool path_known = false;
                for (const http_route_t *r = s->routes; r->method; r++) {
                        const char *params[HTTP_MAX_PARAMS] = { 0 };
                        char *storage = NULL;
                        if (!http_route_match(r->pattern, url, params, &storage))
                                continue;
                        path_known = true;
                        if (!streq(r->method, method)) {
                                free(storage);
                                continue;
                        }
                        st->route = r;
                        memcpy(st->params, params, sizeof params);
                        st->param_storage = storage;
                        break;
                }
                if (!st->route)
                        st->upload_error = path_known ? 405 : 404;
                *con_cls = st;
                /* authorization comes before any byte of the body is read or stored: a refused
                 * upload costs the server nothing */
                if (st->route && s->authorize) {
                        http_request_t req = {
                                .method = method, .path = url, .connection = conn, .userdata = s->userdata,
                        };
                        memcpy(req.params, st->params, sizeof st->params);
                        http_reply_t reply = { 0 };
                        int r = s->authorize(&req, st->route, &reply);
                        st->principal = (void *)req.principal;
                        if (r < 0) {
                                if (!reply.status)
                                        http_reply_error(&reply, 403, "forbidden", "not allowed");
                                return send_reply(conn, st, &reply);
                        }
                }
                if (st->route && st->route->upload) {
                        st->upload_path = xasprintf("%s/upload.XXXXXX", s->upload_dir ? s->upload_dir : "/tmp");
                        st->upload_fd = mkostemp(st->upload_path, O_CLOEXEC);
                        if (st->upload_fd < 0) {
                                free(st->upload_path);
                                st->upload_path = NULL;
                                st->upload_error = 507;
                        }
                }
                return MHD_YES;
        }
        if (st->pending) {
                /* the handler has answered (reply_queue): what still comes is dropped */
                if (*upload_data_size > 0) {
                        *upload_data_size = 0;
                        return MHD_YES;
                }
                struct MHD_Response *resp = TAKE_PTR(st->pending);
                enum MHD_Result r = MHD_queue_response(conn, st->pending_status, resp);
                MHD_destroy_response(resp);
                return r;
        }
        if (*upload_data_size > 0) {
                uint64_t max = st->route && st->route->upload_max ? st->route->upload_max : HTTP_MAX_UPLOAD;
                if (st->upload_fd >= 0 && st->upload_len + *upload_data_size > max) {
                        /* refused: what was written goes at once, the rest is read and dropped */
                        st->upload_error = 413;
                        if (ftruncate(st->upload_fd, 0) < 0) {
                                /* the file is removed when the request ends anyway */
                        }
                        close(st->upload_fd);
                        st->upload_fd = -1;
                }
                if (st->upload_fd >= 0) {
                        const char *p = upload_data;
                        size_t left = *upload_data_size;
                        st->upload_len += left;
                        while (left > 0 && !st->upload_error) {
                                ssize_t w = write(st->upload_fd, p, left);
                                if (w < 0 && errno == EINTR)
                                        continue;
                                if (w < 0) {
                                        st->upload_error = 507;
                                        break;
                                }
                                p += w;
                                left -= (size_t)w;
                        }
                } else if (st->body_len + *upload_data_size > HTTP_MAX_JSON_BODY) {
                        st->too_large = true;
                } else if (!st->upload_error) {
                        char *b = realloc(st->body, st->body_len + *upload_data_size + 1);
                        if (!b)
                                abort();
                        st->body = b;
                        memcpy(st->body + st->body_len, upload_data, *upload_data_size);
                        st->body_len += *upload_data_size;
                        st->body[st->body_len] = 0;
                }
                *upload_data_size = 0;
                return MHD_YES;
        }

        http_reply_t reply = { 0 };
        if (st->upload_error == 404) {
                http_reply_error(&reply, 404, "not_found", "no such endpoint: %s %s", method, url);
                return send_reply(conn, st, &reply);
        }
        if (st->upload_error == 405) {
                http_reply_error(&reply, 405, "method_not_allowed", "method %s not allowed on %s", method, url);
                return send_reply(conn, st, &reply);
        }
        if (st->upload_error == 413) {
                uint64_t max = st->route && st->route->upload_max ? st->route->upload_max : HTTP_MAX_UPLOAD;
                http_reply_error(&reply, 413, "too_large", "upload larger than %llu bytes", (unsigned long long)max);
                return send_reply(conn, st, &reply);
        }
        if (st->upload_error) {
                http_reply_error(&reply, 507, "no_space", "could not store the upload");
                return send_reply(conn, st, &reply);
        }
        if (st->too_large) {
                http_reply_error(&reply, 413, "too_large", "request body larger than %d bytes", HTTP_MAX_JSON_BODY);
                return send_reply(conn, st, &reply);
        }
        http_request_t req = {
                .method = method, .path = url, .connection = conn, .userdata = s->userdata,
                .principal = st->principal,
        };
        memcpy(req.params, st->params, sizeof st->params);
        if (st->upload_fd >= 0) {
                if (fsync(st->upload_fd) < 0) {
                        http_reply_error(&reply, 507, "no_space", "could not store the upload: %m");
                        return send_reply(conn, st, &reply);
                }
                req.upload_path = st->upload_path;
        } else if (st->body_len > 0) {
                json_error_t jerr;
                req.body = json_loadb(st->body, st->body_len, 0, &jerr);
                if (!req.body || !json_is_object(req.body)) {
                        json_decref(req.body);
                        http_reply_error(&reply, 400, "bad_json", "request body is not a JSON object%s%s",
                                         req.body ? "" : ": ", req.body ? "" : jerr.text);
                        return send_reply(conn, st, &reply);
                }
        }
        st->route->handler(&req, &reply);
        json_decref(req.body);
        return send_reply(conn, st, &reply);
}

/* libmicrohttpd's unescape callback: the path and the query arguments (http-route.h). */
static size_t url_unescape(void *cls, struct MHD_Connection *conn, char *s) { return http_route_unescape(s); }

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
        request_state_free(*con_cls);
        *con_cls = NULL;
}

/* libmicrohttpd's accept policy, in its listening thread: refuses a connection above the limit.
 * open is raised in the same thread (connection_notify, STARTED) before the next accept, so
 * the limit is exact; closes lower it from the connections' threads. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
        http_server_t *s = cls;
        bool full = __atomic_load_n(&s->open, __ATOMIC_SEQ_CST) >= s->max_connections;
        bool busy = !full && s->max_handshakes &&
                    __atomic_load_n(&s->handshaking, __ATOMIC_SEQ_CST) >= s->max_handshakes;
        if (!full && !busy)
                return MHD_YES;
        uint64_t n = __atomic_add_fetch(full ? &s->at_limit : &s->busy, 1, __ATOMIC_SEQ_CST);
        int64_t now = time_now_ms();
        if (now - s->limit_logged_ms >= HTTP_LIMIT_LOG_MS) {
                s->limit_logged_ms = now;
                if (full)
                        log_warn("%s: %u connections are open, the limit: a connection was refused (%llu so far)",
                                 s->listen, s->max_connections, (unsigned long long)n);
                else
                        log_warn("%s: %u connections are still in their handshake: a connection was refused to let "
                                 "them finish (%llu so far)",
                                 s->listen, s->max_handshakes, (unsigned long long)n);
        }
        return MHD_NO;
}

/* The connection's first request has come: it is no longer counted as handshaking. */
static void conn_settled(http_server_t *s, http_conn_t *c) {
        if (c && c->fresh) {
                c->fresh = false;
                __atomic_sub_fetch(&s->handshaking, 1, __ATOMIC_SEQ_CST);
        }
}

static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code) {
        http_server_t *s = cls;
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                http_conn_t *c = xcalloc(1, sizeof *c);
                c->server = s;
                c->fresh = true;
                *socket_context = c;
                __atomic_add_fetch(&s->handshaking, 1, __ATOMIC_SEQ_CST);
                __atomic_add_fetch(&s->open, 1, __ATOMIC_SEQ_CST);
                __atomic_add_fetch(&s->total, 1, __ATOMIC_SEQ_CST);
        } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
                conn_settled(s, *socket_context);
                free(*socket_context);
                *socket_context = NULL;
                __atomic_sub_fetch(&s->open, 1, __ATOMIC_SEQ_CST);
        }
}

http_conn_t *http_conn_of(const http_request_t *req) {
        const union MHD_ConnectionInfo *ci =
                req->connection ? MHD_get_connection_info(req->connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
        return ci ? ci->socket_context : NULL;
}

void http_server_count_verification(http_server_t *s) {
        __atomic_add_fetch(&s->peer_verifications, 1, __ATOMIC_SEQ_CST);
}

void http_server_stats(http_server_t *s, http_server_stats_t *ret) {
        *ret = (http_server_stats_t){
                .open = __atomic_load_n(&s->open, __ATOMIC_SEQ_CST),
                .total = __atomic_load_n(&s->total, __ATOMIC_SEQ_CST),
                .at_limit = __atomic_load_n(&s->at_limit, __ATOMIC_SEQ_CST),
                .handshaking = __atomic_load_n(&s->handshaking, __ATOMIC_SEQ_CST),
                .busy = __atomic_load_n(&s->busy, __ATOMIC_SEQ_CST),
                .max_handshakes = s->max_handshakes,
                .peer_verifications = __atomic_load_n(&s->peer_verifications, __ATOMIC_SEQ_CST),
                .max_connections = s->max_connections,
        };
}

int http_split_hostport(const char *hostport, char **ret_host, int *ret_port) {
        const char *colon = hostport ? strrchr(hostport, ':') : NULL;
        if (!colon || colon == hostport)
                return -EINVAL;
        int64_t port = 0;
        if (parse_int64(colon + 1, 0, 65535, &port) < 0)
                return -EINVAL;
        *ret_host = strndup(hostport, (size_t)(colon - hostport));
        *ret_port = (int)port;
        return 0;
}

int http_server_start(const http_server_params_t *p, http_server_t **ret) {
        _cleanup_free_ char *host = NULL;
        int port = 0;
        if (http_split_hostport(p->listen, &host, &port) < 0)
                return -EINVAL;
        struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
                return -EINVAL;
        if (!!p->tls_cert != !!p->tls_key || (p->tls_trust && !p->tls_cert))
                return -EINVAL;
        http_server_t *s = xcalloc(1, sizeof *s);
        s->routes = p->routes;
        s->upload_dir = p->upload_dir ? xstrdup(p->upload_dir) : NULL;
        s->userdata = p->userdata;
        s->authorize = p->authorize;
        s->idle_timeout_s = HTTP_IDLE_TIMEOUT_S;
        s->short_first = p->first_request_timeout_s > 0 && p->first_request_timeout_s < HTTP_IDLE_TIMEOUT_S;
        s->listen = xstrdup(p->listen);
        s->max_connections = p->max_connections ? p->max_connections : HTTP_MAX_CONNECTIONS;
        s->max_handshakes = p->max_handshakes;
        s->limit_logged_ms = INT64_MIN / 2;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                         MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE | (p->tls_cert ? MHD_USE_TLS : 0);
        /* the TLS options go last, as a list of their own: the plain server passes none */
        struct MHD_OptionItem tls_opts[] = {
                { p->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)p->tls_cert },
                { MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)p->tls_key },
                { MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" },
                { p->tls_trust ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, (void *)p->tls_trust },
                { MHD_OPTION_END, 0, NULL },
        };
        s->daemon = MHD_start_daemon(flags, (uint16_t)port, accept_policy, s, access_handler, s, MHD_OPTION_SOCK_ADDR,
                                     &addr, MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
                                     MHD_OPTION_NOTIFY_CONNECTION, connection_notify, s,
                                     MHD_OPTION_UNESCAPE_CALLBACK, url_unescape, NULL,
                                     MHD_OPTION_CONNECTION_TIMEOUT,
                                     s->short_first ? p->first_request_timeout_s : s->idle_timeout_s,
                                     MHD_OPTION_CONNECTION_LIMIT, s->max_connections + HTTP_LIMIT_SLACK,
                                     MHD_OPTION_THREAD_STACK_SIZE, (size_t)p->thread_stack_kib * 1024,
                                     MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_ARRAY, tls_opts,
                                     MHD_OPTION_END);
        if (!s->daemon) {
                free(s->listen);
                free(s->upload_dir);
                free(s);
                return -EADDRINUSE;
        }
        *ret = s;
        return 0;
}

http_server_t *http_server_stop(http_server_t *s) {
        if (!s)
                return NULL;
        MHD_stop_daemon(s->daemon);
        free(s->listen);
        free(s->upload_dir);
        free(s);
        return NULL;
}

const char *http_request_header(const http_request_t *req, const char *key) {
        return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, key);
}

void http_reply_header(http_reply_t *reply, const char *name, const char *value) {
        if (reply->n_headers >= HTTP_REPLY_HEADERS_MAX)
                return;
        reply->headers[reply->n_headers][0] = xstrdup(name);
        reply->headers[reply->n_headers][1] = xstrdup(value);
        reply->n_headers++;
}

void http_reply_stream(http_reply_t *reply, int status, const char *content_type, http_stream_fn fn, void *data,
                       void (*free_fn)(void *data)) {
        reply->status = status;
        reply->content_type = content_type;
        reply->stream = fn;
        reply->stream_data = data;
        reply->stream_free = free_fn;
}

void http_reply_upgrade(http_reply_t *reply, const char *protocol, http_upgrade_fn fn, void *data) {
        reply->status = 101;
        reply->upgrade = fn;
        reply->upgrade_data = data;
        reply->upgrade_protocol = protocol;
}

int http_request_client_ip(const http_request_t *req, char *buf, size_t size) {
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(req->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!ci || !ci->client_addr || ci->client_addr->sa_family != AF_INET)
                return -ENOTCONN;
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ci->client_addr;
        return inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)size) ? 0 : -ENOTCONN;
}

const char *http_request_query(const http_request_t *req, const char *key) {
        return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, key);
}

void http_reply_json(http_reply_t *reply, int status, json_t *json) {
        json_decref(reply->json);
        reply->status = status;
        reply->json = json;
}

/* The error body. msg often quotes what the client sent (a path segment, a parser's excerpt)
 * or a peer's words, which need not be UTF-8, and vsnprintf may have cut a character in two:
 * jansson refuses such a string, so make it valid rather than lose the error. */
static void reply_error_body(http_reply_t *reply, int status, const char *code, char *msg) {
        utf8_sanitize(msg);
        http_reply_json(reply, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

void http_reply_error(http_reply_t *reply, int status, const char *code, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        reply_error_body(reply, status, code, msg);
}

void http_reply_errno(http_reply_t *reply, int err, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        int status;
        const char *code;
        switch (-err) {
        case ENOENT: status = 404, code = "not_found"; break;
        case EEXIST: status = 409, code = "exists"; break;
        case EBUSY: status = 409, code = "busy"; break;
        case EPERM: status = 409, code = "illegal_transition"; break;
        case ESTALE: status = 409, code = "stale_version"; break;
        case EINVAL: status = 400, code = "invalid"; break;
        case ERANGE: status = 400, code = "out_of_range"; break;
        case ENOSPC: status = 507, code = "no_space"; break;
        case EAGAIN: status = 503, code = "no_capacity"; break;
        case EXFULL: status = 409, code = "offer_full"; break;           /* a marketplace offer's capacity */
        case EDQUOT: status = 402, code = "payment_required"; break;     /* a buyer's empty balance */
        case EHOSTUNREACH: status = 502, code = "rm_unreachable"; break;
        case ETIMEDOUT: status = 504, code = "timeout"; break;
        case EOPNOTSUPP: status = 501, code = "unsupported"; break;
        default: status = 500, code = "internal"; break;
        }
        reply_error_body(reply, status, code, msg);
}

void http_reply_file(http_reply_t *reply, const char *path) {
        reply->status = 200;
        free(reply->file_path);
        reply->file_path = xstrdup(path);
}

void http_reply_bytes(http_reply_t *reply, int status, void *data, size_t len) {
        reply->status = status;
        free(reply->bytes);
        reply->bytes = data;
        reply->bytes_len = len;
}

void http_reply_file_temp(http_reply_t *reply, const char *path) {
        http_reply_file(reply, path);
        reply->file_unlink = true;
}

void http_reply_text(http_reply_t *reply, int status, const char *text) {
        reply->status = status;
        free(reply->text);
        reply->text = xstrdup(text);
}
