/* WebSockets (RFC 6455) for the browser consoles (issue 13): the opening handshake of an HTTP
 * upgrade, checked and answered here, and the framing of the connection, done by wslay (Debian's
 * libwslay: masking, fragmentation, ping/pong and the close handshake), relaying the messages
 * to and from a raw byte stream (a console relayed by a node). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "net/http-server.h"

#define WS_ACCEPT_SIZE 29      /* base64 of a SHA-1, and its NUL */
#define WS_MESSAGE_MAX (1 << 20) /* the largest message taken from a browser */

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: 0, or -EINVAL (not 16 bytes in base64). */
int ws_accept_key(const char *client_key, char ret[WS_ACCEPT_SIZE]);

/* Is req a WebSocket opening handshake (GET, Upgrade: websocket, Connection: upgrade,
 * Sec-WebSocket-Version: 13, a valid key)? On 0 the accept value is in ret_accept and the
 * sub-protocol to echo in *ret_protocol: the first of the client's Sec-WebSocket-Protocol list
 * that protocols (NULL-terminated) names, or NULL when the client asked for none. -EINVAL and
 * why (malloc'd) otherwise; -EPROTONOSUPPORT when it asked only for protocols not offered. */
int ws_handshake_check(const http_request_t *req, const char *const *protocols, char ret_accept[WS_ACCEPT_SIZE],
                       const char **ret_protocol, char **ret_msg);

/* Answers the handshake (101 with the accept value and the protocol) and runs relay(data, fd)
 * on the upgraded connection. */
void ws_reply_upgrade(http_reply_t *reply, const char *accept, const char *protocol, http_upgrade_fn relay,
                      void *data);

/* Relays between a WebSocket whose server end is ws_fd (extra: bytes libmicrohttpd read past the
 * handshake) and a byte stream on peer_fd until one of them ends: each message from the browser
 * (text or binary) is written to peer_fd as it is; what peer_fd sends goes out as binary
 * messages. A peer that ends closes the WebSocket with 1000 and close_reason; a browser that
 * stops answering pings for 60 s is dropped. Returns when both are done; closes neither. */
void ws_relay(int ws_fd, const char *extra, size_t extra_len, int peer_fd, const char *close_reason);
