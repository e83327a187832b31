/* The load balancer in front of services: a real HAProxy (Debian's package) that the Oracle
 * runs as its child and drives through HAProxy's runtime API on an admin UNIX socket.
 *
 * The caller states the whole desired picture on every tick (lb_sync): the services, each a
 * frontend on its endpoint and a backend, and each backend's servers with the state they
 * should be in. lb_sync applies only the difference:
 *   - servers are added, enabled, drained and removed through the runtime API (add server,
 *     enable server/health, set server state drain, del server) — no config reload on the hot
 *     path;
 *   - a changed set of services (a new or deleted frontend) writes a new configuration and
 *     hands the listeners over to a new HAProxy process (-sf), without dropping connections;
 *   - an HAProxy that died is started again from a configuration that already holds every
 *     service and server, so its state is restored at once.
 * Protocol (socket, framing, CSV of "show stat") and logic are kept apart (lb-runtime.c vs
 * lb.c), as the house style asks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lb lb_t;

typedef enum lb_server_state {
        LB_SERVER_READY, /* in rotation */
        LB_SERVER_DRAIN, /* takes no new requests; its sessions finish */
} lb_server_state_t;

typedef struct lb_server {
        const char *name;       /* VM name: [a-z0-9-], at most 63 characters */
        const char *address;    /* IPv4:PORT where the VM's HTTP service answers */
        lb_server_state_t state;
} lb_server_t;

/* How a service's servers are checked (lb-health.c): an HTTP GET of a path, up when answered
 * 2xx or 3xx, or a TCP connection, up when accepted (for an image that has no health page).
 * The Oracle's pool checks a freshly booted VM the same way before it hibernates it. Zero is
 * http of LB_HEALTH_PATH_DEFAULT. */
typedef enum lb_health_kind {
        LB_HEALTH_HTTP,
        LB_HEALTH_TCP,
} lb_health_kind_t;

#define LB_HEALTH_PATH_DEFAULT "/health"
#define LB_HEALTH_PATH_MAX 256

/* "http" or "tcp"; NULL for a value that is neither. */
const char *lb_health_kind_name(lb_health_kind_t kind);
/* -EINVAL unless s is "http" or "tcp". */
int lb_health_kind_parse(const char *s, lb_health_kind_t *ret);
/* Whether path can be checked: '/' then at most LB_HEALTH_PATH_MAX bytes in all of URL path
 * and query characters, nothing HAProxy's configuration parser treats specially (no space,
 * control character, quote, backslash or '#'), so it goes into the configuration as it is. */
bool lb_health_path_valid(const char *path);
/* Whether an HTTP check answered with status means up: 200..399, as HAProxy is told. */
bool lb_health_status_ok(long status);

typedef struct lb_service {
        const char *name;       /* service name: frontend "NAME", backend "NAME" */
        const char *bind;       /* IPv4:PORT of the frontend (the service's endpoint) */
        const lb_server_t *servers;
        size_t n_servers;
        lb_health_kind_t health;
        const char *health_path; /* LB_HEALTH_HTTP: the path checked; NULL: LB_HEALTH_PATH_DEFAULT */
} lb_service_t;

typedef struct lb_options {
        const char *haproxy;    /* path of the haproxy binary; NULL: /usr/sbin/haproxy */
        int server_maxconn;     /* concurrent requests per server before HAProxy queues; 0: 16 */
        int check_inter_ms;     /* health check interval; 0: 1000 */
        int check_fall;         /* failed checks before a server is DOWN; 0: 3 */
} lb_options_t;

/* Starts managing an HAProxy whose files (config, admin socket, pid, log) live in dir, created
 * if needed. HAProxy itself is started by the first lb_sync (with no service it is not run).
 * -ENOENT when the haproxy binary is missing. */
int lb_new(const char *dir, const lb_options_t *opts, lb_t **ret);
/* Stops HAProxy (its connections are closed) and frees lb. Accepts NULL, returns NULL. */
lb_t *lb_free(lb_t *lb);

/* Makes HAProxy serve exactly these services and servers (see the top comment). Restarts an
 * HAProxy that died (and counts it in lb_restarts). A server named twice, a bad address or
 * health check, or a bind that cannot be listened on gives -EINVAL / -EADDRINUSE and *ret_msg
 * naming it; the services that could be applied still are. A service whose health check
 * changed gets a new configuration (a reload). Not thread-safe: one caller (the Oracle's
 * switching thread) owns lb. */
int lb_sync(lb_t *lb, const lb_service_t *services, size_t n, char **ret_msg);

typedef struct lb_server_stats {
        char service[64];
        char name[64];
        char status[24];        /* HAProxy's: UP, DOWN, DRAIN, MAINT, "UP 1/3", "no check"... */
        bool down;              /* its health check says it is down */
        int64_t sessions;       /* current sessions (scur) */
        int64_t queue;          /* requests queued for it (qcur) */
        int64_t requests;       /* total requests sent to it (cumulative) */
        int64_t errors;         /* connection + response errors to it, and 5xx answers (cumulative) */
        int64_t response_ms;    /* average response time of its last 1024 requests (rtime) */
} lb_server_stats_t;

typedef struct lb_service_stats {
        char name[64];
        int64_t sessions;       /* current sessions of the frontend */
        int64_t queue;          /* requests queued in the backend (qcur) */
        int64_t request_rate;   /* HTTP requests per second over the last second (frontend req_rate) */
        int64_t requests;       /* total HTTP requests (cumulative) */
        int64_t errors;         /* failed requests: 5xx sent to clients plus aborted (cumulative) */
        int64_t response_ms;    /* backend average response time (rtime) */
        int64_t queue_ms;       /* backend average queue time (qtime) */
        size_t first_server, n_servers; /* its servers in lb_stats_t.servers */
} lb_service_stats_t;

typedef struct lb_stats {
        lb_service_stats_t *services;
        size_t n_services;
        lb_server_stats_t *servers;
        size_t n_servers;
} lb_stats_t;

/* The counters of every service and server, from "show stat". -ENOTCONN when HAProxy does not
 * run. Free with lb_stats_clear. */
int lb_stats(lb_t *lb, lb_stats_t *ret);
void lb_stats_clear(lb_stats_t *s);

/* The running HAProxy's pid (0 when none) and how many times it had to be restarted after it
 * died (not counting reloads for new services). */
int lb_pid(const lb_t *lb);
unsigned lb_restarts(const lb_t *lb);
