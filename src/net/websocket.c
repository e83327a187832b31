/* WebSockets (websocket.h): the handshake is a few headers; the framing is wslay's, driven by
 * one poll() loop per connection that also reads the peer stream. Back-pressure: the peer stream
 * is not read while more than WS_QUEUE_MAX messages wait to go to the browser, and the browser
 * is not read while a write to the peer blocks, so a slow end holds at most that much. */
#include "net/websocket.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "base/util.h"
#include "net/stream.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_QUEUE_MAX 64
#define WS_PING_MS 20000
#define WS_DEAD_MS 60000
#define WS_CHUNK 16384

int ws_accept_key(const char *client_key, char ret[WS_ACCEPT_SIZE]) {
        unsigned char raw[32];
        size_t n = client_key ? strlen(client_key) : 0;
        /* 16 random bytes in base64 are 24 characters ending in "==" */
        if (n != 24 || client_key[22] != '=' || client_key[23] != '=' ||
            EVP_DecodeBlock(raw, (const unsigned char *)client_key, 24) != 18)
                return -EINVAL;
        char buf[24 + sizeof WS_GUID];
        memcpy(buf, client_key, 24);
        memcpy(buf + 24, WS_GUID, sizeof WS_GUID);
        unsigned char digest[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)buf, 24 + sizeof WS_GUID - 1, digest);
        EVP_EncodeBlock((unsigned char *)ret, digest, SHA_DIGEST_LENGTH);
        return 0;
}

/* Does the comma-separated header value list hold token (case-insensitive)? */
static bool header_has_token(const char *list, const char *token) {
        size_t n = strlen(token);
        for (const char *p = list; p && *p;) {
                p += strspn(p, " \t,");
                size_t len = strcspn(p, ",");
                size_t end = len;
                while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t'))
                        end--;
                if (end == n && strncasecmp(p, token, n) == 0)
                        return true;
                p += len;
        }
        return false;
}

int ws_handshake_check(const http_request_t *req, const char *const *protocols, char ret_accept[WS_ACCEPT_SIZE],
                       const char **ret_protocol, char **ret_msg) {
        const char *upgrade = http_request_header(req, "Upgrade");
        const char *connection = http_request_header(req, "Connection");
        const char *version = http_request_header(req, "Sec-WebSocket-Version");
        if (!streq(req->method, "GET") || !upgrade || strcasecmp(upgrade, "websocket") != 0 ||
            !header_has_token(connection, "upgrade")) {
                *ret_msg = xstrdup("a WebSocket is opened with GET, Upgrade: websocket and Connection: Upgrade");
                return -EINVAL;
        }
        if (!version || !streq(version, "13")) {
                *ret_msg = xstrdup("Sec-WebSocket-Version must be 13");
                return -EINVAL;
        }
        if (ws_accept_key(http_request_header(req, "Sec-WebSocket-Key"), ret_accept) < 0) {
                *ret_msg = xstrdup("Sec-WebSocket-Key must be 16 bytes in base64");
                return -EINVAL;
        }
        const char *asked = http_request_header(req, "Sec-WebSocket-Protocol");
        *ret_protocol = NULL;
        if (!asked || !*asked)
                return 0;
        for (size_t i = 0; protocols && protocols[i]; i++)
                if (header_has_token(asked, protocols[i])) {
                        *ret_protocol = protocols[i];
                        return 0;
                }
        *ret_msg = xasprintf("none of the sub-protocols asked for (%.100s) is spoken here", asked);
        return -EPROTONOSUPPORT;
}

void ws_reply_upgrade(http_reply_t *reply, const char *accept, const char *protocol, http_upgrade_fn relay,
                      void *data) {
        http_reply_header(reply, "Sec-WebSocket-Accept", accept);
        if (protocol)
                http_reply_header(reply, "Sec-WebSocket-Protocol", protocol);
        http_reply_upgrade(reply, "websocket", relay, data);
}

typedef struct ws_conn {
        int fd, peer;
        const char *extra; /* bytes read past the handshake, handed to wslay first */
        size_t extra_len;
        bool peer_open;
        bool failed;
} ws_conn_t;

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user) {
        ws_conn_t *c = user;
        if (c->extra_len > 0) {
                size_t n = MIN(len, c->extra_len);
                memcpy(buf, c->extra, n);
                c->extra += n;
                c->extra_len -= n;
                return (ssize_t)n;
        }
        ssize_t n = read(c->fd, buf, len);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
                return -1;
        }
        if (n <= 0) {
                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
                return -1;
        }
        return n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user) {
        ws_conn_t *c = user;
        ssize_t n = write(c->fd, data, len);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
                return -1;
        }
        if (n < 0) {
                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
                return -1;
        }
        return n;
}

/* A whole message from the browser: its bytes to the peer (text and binary alike). */
static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user) {
        ws_conn_t *c = user;
        if (wslay_is_ctrl_frame(arg->opcode) || !c->peer_open)
                return; /* ping, pong and close are wslay's */
        if (stream_write_all(c->peer, arg->msg, arg->msg_length) < 0)
                c->peer_open = false;
}

void ws_relay(int ws_fd, const char *extra, size_t extra_len, int peer_fd, const char *close_reason) {
        ws_conn_t c = { .fd = ws_fd, .peer = peer_fd, .extra = extra, .extra_len = extra_len, .peer_open = true };
        struct wslay_event_callbacks cb = { .recv_callback = on_recv, .send_callback = on_send,
                                            .on_msg_recv_callback = on_msg };
        wslay_event_context_ptr ctx = NULL;
        if (wslay_event_context_server_init(&ctx, &cb, &c) != 0)
                return;
        wslay_event_config_set_max_recv_msg_length(ctx, WS_MESSAGE_MAX);
        int flags = fcntl(ws_fd, F_GETFL);
        fcntl(ws_fd, F_SETFL, flags | O_NONBLOCK);
        int64_t last_heard = time_now_ms(), last_ping = last_heard;
        bool closing = false;
        char buf[WS_CHUNK];
        while (wslay_event_want_read(ctx) || wslay_event_want_write(ctx)) {
                /* extra bytes first: wslay reads them through on_recv */
                if (c.extra_len > 0 && wslay_event_recv(ctx) != 0)
                        break;
                if (!c.peer_open && !closing) {
                        wslay_event_queue_close(ctx, WSLAY_CODE_NORMAL_CLOSURE, (const uint8_t *)close_reason,
                                                close_reason ? strlen(close_reason) : 0);
                        closing = true;
                }
                bool room = wslay_event_get_queued_msg_count(ctx) < WS_QUEUE_MAX;
                struct pollfd p[2] = {
                        { .fd = ws_fd, .events = (short)((wslay_event_want_read(ctx) ? POLLIN : 0) |
                                                         (wslay_event_want_write(ctx) ? POLLOUT : 0)) },
                        { .fd = c.peer_open && room && !closing ? peer_fd : -1, .events = POLLIN },
                };
                int n = poll(p, 2, 1000);
                if (n < 0 && errno != EINTR)
                        break;
                int64_t now = time_now_ms();
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        last_heard = now;
                        if (wslay_event_recv(ctx) != 0)
                                break;
                }
                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t got = read(peer_fd, buf, sizeof buf);
                        if (got <= 0) {
                                c.peer_open = false;
                        } else {
                                struct wslay_event_msg msg = { WSLAY_BINARY_FRAME, (const uint8_t *)buf, (size_t)got };
                                wslay_event_queue_msg(ctx, &msg); /* copies */
                        }
                }
                /* a browser gone without a word (a closed laptop) is found by its missing pongs */
                if (now - last_ping >= WS_PING_MS && !closing) {
                        struct wslay_event_msg ping = { WSLAY_PING, NULL, 0 };
                        wslay_event_queue_msg(ctx, &ping);
                        last_ping = now;
                }
                if (now - last_heard > WS_DEAD_MS)
                        break;
                if (wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0)
                        break;
        }
        wslay_event_context_free(ctx);
}
