/* The load balancer's insides, shared by its files and by nothing else:
 *   lb.c          lb_new/lb_free, lb_sync's diff of servers, lb_stats;
 *   lb-config.c   validation of the wanted services and the HAProxy configuration text;
 *   lb-health.c   the health checks' kinds and paths (public, in lb.h);
 *   lb-process.c  the HAProxy processes: start (with listener hand-over), reap, stop;
 *   lb-runtime.c  the admin-socket protocol (its own header, lb-runtime.h). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/macro.h"
#include "lb/lb.h"

typedef enum lb_admin { LB_ADMIN_READY, LB_ADMIN_DRAIN, LB_ADMIN_MAINT } lb_admin_t;

typedef struct lb_srv {
        char name[64];
        char address[24];       /* canonical IPv4:PORT */
        lb_admin_t admin;       /* wanted: READY or DRAIN; applied: also MAINT (new, or being removed) */
        int64_t removing_since; /* applied and no longer wanted: since when (0: not being removed) */
        bool sessions_cut;
} lb_srv_t;

typedef struct lb_svc {
        char name[64];
        char bind[24];          /* canonical IPv4:PORT */
        lb_health_kind_t health;
        char health_path[LB_HEALTH_PATH_MAX + 1]; /* http: valid (lb_health_path_valid); tcp: "" */
        lb_srv_t *servers;
        size_t n_servers;
} lb_svc_t;

typedef struct lb_proc {
        pid_t pid;              /* 0: none */
        bool child;             /* ours to reap; false for one adopted from a previous run */
        char *sock;             /* its admin socket */
} lb_proc_t;

struct lb {
        char *dir, *haproxy, *cfg_path, *pid_path, *log_path;
        int maxconn, inter_ms, fall;
        lb_proc_t cur;
        lb_proc_t *retiring;    /* told to finish their sessions and exit, not reaped yet */
        size_t n_retiring;
        lb_svc_t *svcs;         /* what cur serves: as last applied, or read back */
        size_t n_svcs;
        bool resync;            /* memory may differ from HAProxy: read the servers' state first */
        int64_t verify_at;
        unsigned gen, restarts;
        int64_t start_after, backoff_ms; /* starts are backed off after a failed one */
        int start_r;
        char *start_error;
};

/* The errors of one sync: the first code, and every message joined with "; ". */
typedef struct lb_errs {
        int r;
        char *msg;
} lb_errs_t;
void lb_errs_add(lb_errs_t *e, int r, const char *fmt, ...) _printf_(3, 4);

void lb_svcs_free(lb_svc_t *v, size_t n);
lb_svc_t *lb_svc_find(lb_svc_t *v, size_t n, const char *name);
lb_srv_t *lb_srv_find(const lb_svc_t *s, const char *name);
/* Appends a zeroed server to s and returns it (aborts on OOM, like xcalloc). */
lb_srv_t *lb_srv_push(lb_svc_t *s);

/* The wanted services (malloc'd, free with lb_svcs_free): each valid service of in, or, for an
 * invalid one, the version lb serves now if any, so a bad input changes nothing. A bind that is
 * not lb's yet is tried first. Every error goes to e. */
void lb_config_want(const lb_t *lb, const lb_service_t *in, size_t n, lb_errs_t *e, lb_svc_t **ret, size_t *ret_n);
/* Whether a and b have the same configuration but for their servers: the same frontends (names
 * and binds) and health checks, in any order. */
bool lb_config_same(const lb_svc_t *a, size_t na, lb_svc_t *b, size_t nb);
/* The options of every server (malloc'd); dynamic servers do not inherit default-server. */
char *lb_config_server_options(const lb_t *lb);
/* The whole configuration (malloc'd) for the services want, admin socket at sock. */
char *lb_config_build(const lb_t *lb, const char *sock, const lb_svc_t *want, size_t n);

/* Starts an HAProxy serving want, taking the listeners over from lb->cur if any; on success it
 * becomes lb->cur, lb->svcs names want's services (no servers yet) and lb->resync is set. Failed
 * starts are backed off. Errors go to e. */
void lb_process_start(lb_t *lb, const lb_svc_t *want, size_t n, lb_errs_t *e);
/* Reaps retired processes; notices (and counts in lb->restarts) a current one that died. */
void lb_process_reap(lb_t *lb);
/* No service left: retires lb->cur softly (its sessions finish) and removes the pid file. */
void lb_process_stop(lb_t *lb);
/* Stops p at once (SIGTERM, then SIGKILL), reaps it, removes its socket, frees it. */
void lb_process_kill(lb_proc_t *p);
/* Stops every process of lb at once (lb_free). */
void lb_process_free(lb_t *lb);
/* Takes as lb->cur an HAProxy a previous run left behind (named in the pid file, running our
 * configuration), so the first start takes its listeners over instead of fighting for them. */
void lb_process_adopt(lb_t *lb);
