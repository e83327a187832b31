/* Live updates for the web interface (issue 13, DESIGN.md §12): GET /v1/events/stream, server-
 * sent events. Each event of the store goes out as
 *     id: ID / event: event / data: {id, time, kind, vm, service, rm, reason}
 * and each change of a VM the caller may see as "event: vm" with the VM object (no id: a page
 * that reconnects reads the VMs again). A reconnect resumes after Last-Event-ID (or ?after=ID);
 * a first connection starts at the newest event. Roles that see everything get every event;
 * others the events of the VMs they see.
 *
 * Each stream is one connection thread (libmicrohttpd's thread per connection) that sleeps on
 * the store's change count (store_changes_wait) and is woken by the commit of an event or a VM
 * write, so an update leaves within milliseconds without polling. The body is produced only as
 * the client takes it: a client that never reads fills its socket's buffers and then holds
 * nothing else (the server does not queue for it). At most SSE_STREAMS_MAX streams at once; a
 * ": keepalive" comment every 15 s. */
#include <string.h>

#include "base/util.h"
#include "oracle/oracle-internal.h"

#define SSE_STREAMS_MAX 256
#define SSE_KEEPALIVE_MS 15000
#define SSE_BATCH 100
#define SSE_WAIT_MS 1000

typedef struct sse {
        oracle_t *o;
        auth_principal_t p;
        bool sees_all;
        int64_t after;        /* the last event id sent */
        uint64_t changes;     /* the store's change count last looked at */
        json_t *vms;          /* VM name -> "state/version/rm/address" last sent */
        char *buf;            /* what is ready to go and not taken yet */
        size_t len, off;
        int64_t last_sent_ms;
} sse_t;

static void sse_append(sse_t *c, const char *text) {
        size_t n = strlen(text);
        c->buf = realloc(c->buf, c->len + n + 1);
        if (!c->buf)
                abort();
        memcpy(c->buf + c->len, text, n + 1);
        c->len += n;
}

/* "data: JSON\n" for j (one line: JSON_COMPACT never holds a newline). */
static void sse_data(sse_t *c, const json_t *j) {
        char *s = json_dumps(j, JSON_COMPACT);
        if (!s)
                return;
        sse_append(c, "data: ");
        sse_append(c, s);
        sse_append(c, "\n\n");
        free(s);
}

static bool event_visible(sse_t *c, const json_t *e) {
        if (c->sees_all)
                return true;
        const char *vm = json_string_value(json_object_get(e, "vm"));
        if (!vm || !*vm)
                return false;
        /* the VMs this stream showed last round (a VM deleted since included, so its end is
         * seen); only one it has not shown yet is looked up */
        if (json_object_get(c->vms, vm))
                return true;
        vm_record_t v = { 0 };
        bool ok = store_vm_get(c->o->store, vm, &v) == 0 && oracle_vm_visible(c->o, &c->p, &v, false);
        vm_record_clear(&v);
        return ok;
}

static void sse_events(sse_t *c) {
        json_t *arr = NULL;
        if (store_event_list(c->o->store, c->after, SSE_BATCH, &arr) < 0)
                return;
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) {
                int64_t id = json_integer_value(json_object_get(e, "id"));
                c->after = MAX(c->after, id);
                if (!event_visible(c, e))
                        continue;
                char head[64];
                snprintf(head, sizeof head, "id: %lld\nevent: event\n", (long long)id);
                sse_append(c, head);
                sse_data(c, e);
        }
        json_decref(arr);
}

static void sse_vms(sse_t *c) {
        vm_record_t *vms = NULL;
        rm_record_t *rms = NULL;
        size_t n = 0, nr = 0;
        if (store_vm_list(c->o->store, &vms, &n) < 0 || store_rm_list(c->o->store, &rms, &nr) < 0) {
                store_vm_list_free(vms, n);
                return;
        }
        json_t *now = json_object();
        for (size_t i = 0; i < n; i++) {
                if (!oracle_vm_visible_among(&c->p, &vms[i], rms, nr, false))
                        continue;
                char key[256];
                snprintf(key, sizeof key, "%s/%lld/%s/%s/%s", vms[i].state, (long long)vms[i].version, vms[i].rm,
                         vms[i].address, vms[i].op_id);
                json_object_set_new(now, vms[i].name, json_string(key));
                if (!json_equal(json_object_get(c->vms, vms[i].name), json_object_get(now, vms[i].name))) {
                        sse_append(c, "event: vm\n");
                        json_t *j = oracle_vm_json_among(&c->p, &vms[i], rms, nr);
                        sse_data(c, j);
                        json_decref(j);
                }
        }
        /* gone: deleted, or no longer the caller's to see */
        const char *name;
        json_t *v;
        json_object_foreach(c->vms, name, v) if (!json_object_get(now, name)) {
                sse_append(c, "event: vm\n");
                json_t *j = json_pack("{s:s,s:s}", "name", name, "state", "deleted");
                sse_data(c, j);
                json_decref(j);
        }
        json_decref(c->vms);
        c->vms = now;
        free(rms);
        store_vm_list_free(vms, n);
}

static long sse_read(void *data, uint64_t pos, char *out, size_t max) {
        sse_t *c = data;
        while (c->off >= c->len) {
                if (c->o->stopping)
                        return HTTP_STREAM_END;
                c->off = c->len = 0;
                uint64_t seen = c->changes;
                c->changes = store_changes(c->o->store);
                if (c->changes != seen || !c->buf) {
                        sse_events(c);
                        sse_vms(c);
                }
                int64_t now = time_now_ms();
                if (c->len == 0 && now - c->last_sent_ms >= SSE_KEEPALIVE_MS)
                        sse_append(c, ": keepalive\n\n");
                if (c->len == 0) {
                        if (!c->buf)
                                c->buf = xstrdup("");
                        store_changes_wait(c->o->store, c->changes, SSE_WAIT_MS);
                }
        }
        size_t n = MIN(max, c->len - c->off);
        memcpy(out, c->buf + c->off, n);
        c->off += n;
        c->last_sent_ms = time_now_ms();
        return (long)n;
}

static void sse_free(void *data) {
        sse_t *c = data;
        pthread_mutex_lock(&c->o->sse_lock);
        c->o->sse_streams--;
        pthread_mutex_unlock(&c->o->sse_lock);
        json_decref(c->vms);
        free(c->buf);
        free(c);
}

/* GET /v1/events/stream[?after=ID] (Last-Event-ID wins) */
static void h_stream(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const auth_principal_t *p = oracle_principal(req);
        int64_t after = -1;
        const char *last = http_request_header(req, "Last-Event-ID");
        const char *a = last ? last : http_request_query(req, "after");
        if (a && parse_int64(a, 0, INT64_MAX, &after) < 0) {
                http_reply_error(reply, 400, "invalid", "Last-Event-ID and after are event ids");
                return;
        }
        /* a first connection: the events from now on (a page reads the past with GET /v1/events) */
        if (after < 0 && store_event_last_id(o->store, &after) < 0)
                after = 0;
        pthread_mutex_lock(&o->sse_lock);
        bool room = o->sse_streams < SSE_STREAMS_MAX;
        if (room)
                o->sse_streams++;
        pthread_mutex_unlock(&o->sse_lock);
        if (!room) {
                http_reply_error(reply, 503, "busy", "too many event streams open (%d)", SSE_STREAMS_MAX);
                return;
        }
        sse_t *c = xcalloc(1, sizeof *c);
        c->o = o;
        if (p)
                c->p = *p;
        c->sees_all = !p || role_sees_all(p->role);
        c->after = after;
        c->vms = json_object();
        c->last_sent_ms = time_now_ms();
        http_reply_header(reply, "Cache-Control", "no-cache");
        http_reply_header(reply, "X-Accel-Buffering", "no");
        http_reply_stream(reply, 200, "text/event-stream", sse_read, c, sse_free);
}

const http_route_t oracle_stream_routes[] = {
        { "GET", "/v1/events/stream", h_stream, PERM_VM_READ, OWNER_NONE },
        { NULL },
};
