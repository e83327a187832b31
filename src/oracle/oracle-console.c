/* Browser consoles (issue 13, DESIGN.md §12): a user who may open a VM's console (its owner, an
 * operator, an admin: PERM_VM_CONSOLE, which providers lack) asks for a ticket,
 *   POST /v1/vms/NAME/console-ticket {"kind": "serial"|"vnc"} -> {ticket, url, expires_s},
 * and the page opens a WebSocket to url within 30 s. A browser's WebSocket carries no
 * Authorization header, so the ticket is the credential: 256 random bits, used once, bound to
 * the user, the VM and the kind, kept in memory only (an Oracle restart voids them, which costs
 * a page a reconnect). At the WebSocket the VM is looked up again and must still be the user's
 * to see and running; the Oracle then opens the node's relay over the control channel (mutual
 * TLS) — the serial port (vmx-console) or QEMU's VNC display on its UNIX socket (vmx-vnc) — and
 * relays it to the browser (net/websocket.c). */
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "net/stream.h"
#include "net/websocket.h"
#include "oracle/oracle-internal.h"

#define TICKET_TTL_MS 30000
#define TICKETS_MAX 1024
#define TICKET_BYTES 32
#define TICKET_TEXT (sodium_base64_ENCODED_LEN(TICKET_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING))

typedef struct ticket {
        char text[TICKET_TEXT];
        char user[64];
        role_t role;
        char vm[64];
        bool vnc;
        int64_t expires_ms; /* monotonic */
} ticket_t;

/* The outstanding tickets: a small array, at most TICKETS_MAX, expired ones dropped as new ones
 * come. */
struct oracle_consoles {
        pthread_mutex_t lock;
        ticket_t list[TICKETS_MAX];
        size_t n;
};

struct oracle_consoles *oracle_consoles_new(void) {
        struct oracle_consoles *c = xcalloc(1, sizeof *c);
        pthread_mutex_init(&c->lock, NULL);
        return c;
}

struct oracle_consoles *oracle_consoles_free(struct oracle_consoles *c) {
        if (c) {
                pthread_mutex_destroy(&c->lock);
                free(c);
        }
        return NULL;
}

static int ticket_add(oracle_t *o, const ticket_t *t) {
        struct oracle_consoles *c = o->consoles;
        pthread_mutex_lock(&c->lock);
        int64_t now = time_now_ms();
        size_t k = 0;
        for (size_t i = 0; i < c->n; i++)
                if (c->list[i].expires_ms > now)
                        c->list[k++] = c->list[i];
        c->n = k;
        int r = -EAGAIN;
        if (c->n < TICKETS_MAX) {
                c->list[c->n++] = *t;
                r = 0;
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* Takes the ticket called text: 0 and the ticket (now gone), or -ENOENT (unknown, used, expired). */
static int ticket_take(oracle_t *o, const char *text, ticket_t *ret) {
        struct oracle_consoles *c = o->consoles;
        pthread_mutex_lock(&c->lock);
        int64_t now = time_now_ms();
        int r = -ENOENT;
        size_t len = strlen(text);
        for (size_t i = 0; i < c->n; i++) {
                ticket_t *t = &c->list[i];
                if (strlen(t->text) != len || sodium_memcmp(t->text, text, len) != 0)
                        continue;
                bool live = t->expires_ms > now;
                if (live)
                        *ret = *t;
                c->list[i] = c->list[--c->n]; /* used or expired: gone either way */
                r = live ? 0 : -ENOENT;
                break;
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* Is vm running on an RM (a console exists)? */
static bool vm_has_console(const vm_record_t *v) {
        return *v->rm && (streq(v->state, "loading") || streq(v->state, "active") || streq(v->state, "suspended"));
}

/* POST /v1/vms/:name/console-ticket {"kind": "serial"|"vnc"} */
static void h_ticket(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const auth_principal_t *p = req->principal;
        const char *kind = json_string_value(json_object_get(req->body, "kind"));
        if (!kind)
                kind = "serial";
        if (!streq(kind, "serial") && !streq(kind, "vnc")) {
                http_reply_error(reply, 400, "invalid", "kind is serial or vnc");
                return;
        }
        vm_record_t v = { 0 };
        int r = store_vm_get(o->store, req->params[0], &v);
        bool running = r >= 0 && vm_has_console(&v);
        _cleanup_free_ char *state = xstrdup(v.state);
        vm_record_clear(&v);
        if (r < 0) {
                http_reply_error(reply, 404, "not_found", "no vm named \"%s\"", req->params[0]);
                return;
        }
        if (!running) {
                http_reply_error(reply, 409, "illegal_transition", "vm \"%s\" is %s: it has no console now",
                                 req->params[0], state);
                return;
        }
        ticket_t t = { .role = p ? p->role : ROLE_ADMIN, .vnc = streq(kind, "vnc"),
                       .expires_ms = time_now_ms() + TICKET_TTL_MS };
        unsigned char raw[TICKET_BYTES];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2base64(t.text, sizeof t.text, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        SET(t.user, p ? p->user : "");
        SET(t.vm, req->params[0]);
        if (ticket_add(o, &t) < 0) {
                http_reply_error(reply, 503, "busy", "too many console tickets outstanding; try again in 30 s");
                return;
        }
        _cleanup_free_ char *url = xasprintf("/v1/console/%s", t.text);
        http_reply_json(reply, 201, json_pack("{s:s,s:s,s:s,s:i}", "ticket", t.text, "url", url, "kind", kind,
                                             "expires_s", TICKET_TTL_MS / 1000));
}

typedef struct ws_relay_ctx {
        int node_fd;
        char reason[96];
} ws_relay_ctx_t;

static void ws_relay_run(void *data, int fd, const char *extra, size_t extra_len) {
        ws_relay_ctx_t *c = data;
        ws_relay(fd, extra, extra_len, c->node_fd, c->reason);
        close(c->node_fd);
        free(c);
}

/* GET /v1/console/:ticket, a WebSocket: the ticket is the credential (used up here). */
static void h_console_ws(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        static const char *const protocols[] = { "binary", "vmatrix.console", NULL };
        char accept[WS_ACCEPT_SIZE];
        const char *protocol = NULL;
        _cleanup_free_ char *msg = NULL;
        int r = ws_handshake_check(req, protocols, accept, &protocol, &msg);
        if (r < 0) {
                http_reply_error(reply, 400, "invalid", "%s", msg);
                return;
        }
        ticket_t t = { 0 };
        if (strlen(req->params[0]) >= TICKET_TEXT || ticket_take(o, req->params[0], &t) < 0) {
                /* the event names the route, never the ticket's text */
                http_request_t named = *req;
                named.path = "/v1/console/(ticket)";
                oracle_auth_event(o, &named, "an unknown, used or expired console ticket");
                http_reply_error(reply, 401, "unauthenticated", "the console ticket is unknown, used or expired: ask "
                                 "for a new one");
                return;
        }
        /* the VM again: still there, still the ticket user's to see, still running */
        vm_record_t v = { 0 };
        auth_principal_t p = { .role = t.role };
        SET(p.user, t.user);
        bool visible = store_vm_get(o->store, t.vm, &v) == 0 && oracle_vm_visible(o, &p, &v, false);
        if (!visible || !vm_has_console(&v)) {
                http_reply_error(reply, visible ? 409 : 404, visible ? "illegal_transition" : "not_found",
                                 visible ? "vm \"%s\" has no console now" : "no vm named \"%s\"", t.vm);
                vm_record_clear(&v);
                return;
        }
        rm_record_t rm = { 0 };
        store_rm_get(o->store, v.rm, &rm);
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/%s", v.name, t.vnc ? "vnc" : "console");
        _cleanup_free_ char *node = xasprintf("https://%s@%s", v.rm, rm.address); /* mutual TLS */
        int fd = -1;
        r = stream_upgrade_connect(node, path, t.vnc ? STREAM_VNC_PROTOCOL : STREAM_CONSOLE_PROTOCOL, NULL, &fd, &msg);
        if (r < 0) {
                /* unreachable 502, full 503 (its consoles), anything else: no console there (409) */
                http_reply_errno(reply, r == -EHOSTUNREACH || r == -EAGAIN ? r : -EPERM, "RM \"%s\": %s", v.rm, msg);
                vm_record_clear(&v);
                return;
        }
        ws_relay_ctx_t *c = xcalloc(1, sizeof *c);
        c->node_fd = fd;
        snprintf(c->reason, sizeof c->reason, "the console of vm %s ended", v.name);
        log_info("console: %s opened the %s console of vm %s", t.user, t.vnc ? "graphical" : "serial", v.name);
        vm_record_clear(&v);
        ws_reply_upgrade(reply, accept, protocol, ws_relay_run, c);
}

const http_route_t oracle_console_routes[] = {
        { "POST", "/v1/vms/:name/console-ticket", h_ticket, PERM_VM_CONSOLE, OWNER_VM },
        { "GET", "/v1/console/:ticket", h_console_ws, PERM_PUBLIC, OWNER_NONE },
        { NULL },
};
