/* Shared state of the Oracle: one context struct, passed to every handler and thread.
 * The store is the truth; the Oracle keeps no VM state in memory, so a restart loses nothing
 * and re-drives the operations the store shows as running. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "auth/auth.h"
#include "lb/lb.h"
#include "net/http-server.h"
#include "nest/chunk-store.h"
#include "model/lifecycle.h"
#include "oracle/oracle-liveness.h"
#include "oracle/oracle-metrics.h"
#include "oracle/oracle-proto.h"
#include "oracle/oracle-tls.h"
#include "market/billing.h"
#include "store/store.h"

typedef struct oracle oracle_t;

/* What the operation engine tells the layers above it, registered by them (the switching loop)
 * instead of being called by name. A NULL hook is a no-op. */
typedef struct oracle_hooks {
        /* run the switching and pool loops at once (an op ended, a VM failed) */
        void (*wake)(oracle_t *o);
        /* vm of service failed; replace: it was serving and another VM takes its place */
        void (*failure_note)(oracle_t *o, const char *vm, const char *service, bool replace);
        /* wait until the load balancer drained vm (0, or -ETIMEDOUT after timeout_ms) */
        int (*drain_wait)(oracle_t *o, const char *service, const char *vm, int64_t timeout_ms);
} oracle_hooks_t;

/* A runner: the action part of one operation kind (oracle-run-*.c). It ends the op with
 * oracle_op_finish, always. */
typedef void (*oracle_runner_fn)(oracle_t *o, op_record_t *op, vm_record_t *vm);

struct oracle {
        store_t *store;
        nest_store_t *nest_store; /* DATA/nest/store: the chunks and manifests of the Nest */
        char *data;       /* data directory */
        char *nest;       /* DATA/nest: images/ and vms/ */
        char *guest_dir;  /* where built-in guest images are found */
        char *listen;
        http_server_t *http;
        volatile int stopping;
        pthread_mutex_t ops_lock; /* guards ops_running; with ops_changed */
        pthread_cond_t ops_changed; /* broadcast when an op progresses or ends */
        int ops_running;          /* runner threads alive: a stop with some leaves at once */
        const oracle_runner_fn *runners; /* indexed by vm_action_t (oracle-runners.c) */
        oracle_hooks_t hooks;
        oracle_metrics_t *metrics; /* load profiles (oracle-metrics.c) */
        struct oracle_figures *figures; /* measured activation, drain and boot times (oracle-figures.c) */
        struct oracle_switch *sw;  /* switching state (oracle-switch.c) */
        struct oracle_prestage *prestage; /* pre-staging (oracle-prestage.c), NULL before its start */
        pthread_mutex_t strays_lock; /* guards strays, snapshots, missing and rm_view */
        json_t *strays;           /* RM name -> VMs its last heartbeat reported without a lease */
        json_t *snapshots;        /* RM name -> {memory digest: true} it holds (its last heartbeat) */
        json_t *missing;          /* VM name -> since when (monotonic ms) its RM reports it not */
        json_t *rm_view;          /* RM name -> {guest_firewall, confined, confine_reason, capacity?} of
                                   * its last heartbeat (oracle-rm-view.c) */
        oracle_liveness_t *liveness; /* which RMs are alive (oracle-liveness.h) */
        pthread_mutex_t imports_lock; /* guards imports */
        json_t *imports;          /* image names being imported right now -> true */
        auth_t *auth;             /* accounts and tokens (oracle-auth.c) */
        bool open_signup;         /* --open-signup: POST /v1/signup makes providers and buyers */
        pthread_mutex_t auth_events_lock; /* guards the auth_events_* bound of auth-failed events */
        int64_t auth_events_second, auth_events_count, auth_events_dropped;
        oracle_tls_t tls;         /* the CA, the node channel, enrolment (oracle-tls.h) */
        char *ui_dir;             /* the web interface's files (oracle-ui.c) */
        struct oracle_consoles *consoles; /* browser consoles' tickets (oracle-console.c) */
        pthread_mutex_t sse_lock; /* guards sse_streams */
        int sse_streams;          /* open GET /v1/events/stream answers (oracle-events-stream.c) */
};

/* Declarations by layer, from the bottom up: a file calls only into its own layer's lower
 * neighbours and below, never up (farm-studio shows no circle in src/oracle).
 *
 * ---- records and node calls (oracle-records.c, oracle-node-client.c) ---- */
json_t *oracle_vm_json(const vm_record_t *v);
/* oracle_vm_json as principal p reads it: "actions" is empty for a role that may not act on
 * VMs (a provider reads a buyer's machine on its RM as metadata only, DESIGN.md §10). */
/* oracle_vm_json_for, knowing the RMs (rms, n): a buyer's machine lists only the start verb its
 * offer's RM takes (boot on a chamber, activate on a production RM). */
json_t *oracle_vm_json_among(const auth_principal_t *p, const vm_record_t *v, const rm_record_t *rms, size_t n);
json_t *oracle_vm_json_for(const auth_principal_t *p, const vm_record_t *v);
/* What the lifecycle table needs to know of v besides its state (LIFECYCLE_*). */
unsigned oracle_vm_flags(const vm_record_t *v);
/* body[key] as an integer in [min,max]; def when absent or null. -EINVAL (not an integer),
 * -ERANGE. */
int oracle_body_int(const json_t *body, const char *key, int64_t def, int64_t min, int64_t max, int64_t *ret);
/* "52:54:00:xx:xx:xx" for the counter's value (1..2^24-1 cycling, never all zero). */
void oracle_mac_format(int64_t counter, char ret[18]);
/* The next free MAC address of the Oracle's counter. -EADDRINUSE when every one is taken. */
int oracle_mac_next(oracle_t *o, char ret[18]);
/* A new stored VM's record (not inserted): its MAC, first version and config from img.
 * service: the pool it belongs to, or NULL. */
int oracle_vm_record_new(oracle_t *o, const char *name, const image_record_t *img, int64_t memory, int64_t vcpus,
                         const char *service, vm_record_t *ret);
/* "HOST:PORT" of a service's frontend (malloc'd): the Oracle's listen host (127.0.0.1 for a
 * wildcard) and the service's port. */
char *oracle_service_endpoint(const char *listen, int64_t port);
/* Reads and checks the body of a service's create request into *sv, zeroed by the caller
 * (everything but port, state and times): 0, or -EINVAL/-ERANGE and why in *ret_msg (malloc'd),
 * with *sv partly written. oracle-services.c; public for tests/fuzz/fuzz-service.c. */
int oracle_service_from_body(const json_t *body, service_record_t *sv, char **ret_msg);
/* oracle-health.c: a service's health check. from_body reads the optional "health" object
 * ({"kind": "http"|"tcp", "path": "/..."}; absent: http GET /health) of a create request into
 * sv, or -EINVAL and why; kind and path read sv's stored check as HAProxy gets it (a kind this
 * build does not know reads as http); text names it for messages ("GET /health", "TCP
 * connect"; malloc'd); probe tries it once on a VM at address (IPv4:PORT), as HAProxy does. */
int oracle_service_health_from_body(const json_t *body, service_record_t *sv, char **ret_msg);
lb_health_kind_t oracle_service_health_kind(const service_record_t *sv);
const char *oracle_service_health_path(const service_record_t *sv);
char *oracle_service_health_text(const service_record_t *sv);
bool oracle_service_health_probe(const service_record_t *sv, const char *address, int timeout_ms);
/* Every service and every VM, as one picture for a tick or an answer (free both lists). */
int oracle_services_read(oracle_t *o, service_record_t **ret_svs, size_t *ret_ns, vm_record_t **ret_vms,
                         size_t *ret_nv);
/* Commands to a node. 0 and *ret (the node's answer) or -errno and a message that names the
 * RM. -EHOSTUNREACH when no answer came (the node may not have been reached, or its answer was
 * lost), -EREMOTEIO when the node answered that it failed (5xx), -ESTALE, -ENOENT, -EINVAL and
 * -EIO for its refusals. */
int oracle_node_call(oracle_t *o, const char *rm, const char *method, const char *path, const json_t *body,
                     long timeout_ms, json_t **ret, char **ret_msg);

/* ---- the Nest on the Oracle's host (oracle-nest.c) ---- */
char *oracle_nest_vm_dir(oracle_t *o, const char *vm);
char *oracle_nest_bundle_dir(oracle_t *o, const char *vm, int64_t version);
/* 0 when the Nest holds every file of files {FILE: {"digest"}} as (vm, version, FILE) with that
 * digest and no missing chunk. */
int oracle_nest_check_files(oracle_t *o, const char *vm, int64_t version, const json_t *files, char **ret_msg);
/* Drops the manifests (and vm.json) of every version of vm below keep_version (0: all), but
 * those a clone still maps. */
void oracle_nest_prune(oracle_t *o, const char *vm, int64_t keep_version);
int oracle_nest_write_config(oracle_t *o, const char *vm, int64_t version, const json_t *config);
int oracle_image_register_builtin(oracle_t *o, const char *name, const char *builtin, json_t **ret, char **ret_msg);
extern const http_route_t oracle_nest_routes[];

/* ---- placement (oracle-placement.c) ---- */
/* Picks an RM for a VM: an idle production RM (one VM each) or the least loaded chamber. */
int oracle_rm_pick(oracle_t *o, const char *role, const char *wanted, const char *vm, char *ret, size_t size,
                   char **ret_msg);
/* How many VMs rm's last heartbeat reported that it holds no lease for (fenced copies it is
 * about to kill). A production RM with any is not free yet. */
int oracle_rm_strays(oracle_t *o, const char *rm);
/* How many snapshots rm holds (its last heartbeat): placement's tie-break prefers an RM that
 * holds fewer, so a VM without a staged snapshot does not take the RM staged for another
 * (oracle-prestage.h). */
size_t oracle_rm_snapshots(oracle_t *o, const char *rm);
/* From a heartbeat: the VMs it reported without a lease in leases, and the snapshots it holds. */
void oracle_placement_strays_record(oracle_t *o, const char *rm, const json_t *vms, const json_t *leases);
void oracle_placement_snapshots_record(oracle_t *o, const char *rm, const json_t *list);
/* oracle-rm-view.c: what rm's last heartbeat says of its guests' isolation and its size, and its
 * fields added to rm_json (an RM of GET /v1/rms). Each takes strays_lock. */
void oracle_rm_view_record(oracle_t *o, const char *rm, const oracle_heartbeat_t *hb);
void oracle_rm_view_add(oracle_t *o, const char *rm, json_t *rm_json);

/* ---- pages of GET /v1/vms and GET /v1/rms (oracle-pages.c) ---- */
#define ORACLE_PAGE_MAX 1000
/* The ?limit=N&after=NAME of a list: 1 with them (after "" when not given), 0 without limit
 * (the whole list), -errno with the 400 in reply (a limit not in 1..ORACLE_PAGE_MAX, after
 * without limit, an after that is no name). */
int oracle_page_args(const http_request_t *req, http_reply_t *reply, size_t *ret_limit, const char **ret_after);
/* The page of VMs (RMs) after `after` the caller sees, at most limit (0: all), as a JSON array. */
void oracle_vms_page(const http_request_t *req, http_reply_t *reply, size_t limit, const char *after);
void oracle_rms_page(const http_request_t *req, http_reply_t *reply, size_t limit, const char *after);
/* An RM of GET /v1/rms, with vms VMs placed on it (liveness and the in-memory view added). */
json_t *oracle_rm_json(oracle_t *o, const rm_record_t *rm, int64_t vms, int64_t now);
/* What rm's last heartbeat says of its size: 0, or -ENOENT when none said (yet). */
int oracle_rm_capacity(oracle_t *o, const char *rm, int64_t *ret_memory_mib, int64_t *ret_vcpus, int64_t *ret_disk_gib);

/* ---- the marketplace's rules (oracle-market-rules.c) ---- */
struct offer_record;
struct billing_record;
/* What the offer at rm sells vm for (its terms for vm's size) and the offer: 0, or -ENOENT (no
 * offer, no provider), -EAGAIN (its RM is down), -EXFULL (not enough room left for vm). */
int oracle_market_quote(oracle_t *o, const char *rm, const vm_record_t *vm, struct offer_record *ret_offer,
                        market_terms_t *ret_terms, char **ret_msg);
/* Where vm may be placed: any RM (wanted, may be NULL) for a VM of the Nest; for a buyer's
 * machine only the RM of its offer (-EPERM otherwise, or while it is only registered). */
int oracle_market_placement(const vm_record_t *vm, const char *wanted, const char **ret_rm, char **ret_msg);
/* At a migration's intent, inside its transaction: a buyer's machine needs room at the offer of
 * rm, which is held for it (offer_next); the new terms go into args. Nothing for other VMs. */
int oracle_market_migrate_intent(oracle_t *o, vm_record_t *vm, const char *rm, json_t *args, char **ret_msg);
/* At a migration's commit: the machine is at its new offer, with the terms of op's args. */
void oracle_market_migrate_commit(const op_record_t *op, vm_record_t *vm);
/* After a buyer's machine migrated (op committed vm): a "provider-migration" event (or
 * "offer-migration" within one provider) naming both offers and the new prices. */
void oracle_market_migrated(oracle_t *o, const op_record_t *op, const vm_record_t *vm);
/* Machine b's charges up to now_ms from its recorded history: post writes the ended periods to
 * the ledger (each with its "charge" event) and billing's progress; without post they are only
 * added up into *ret_unposted. open[] gets what accrues now; *ret_closed whether nothing ever
 * will again (deleted and all charged). */
int oracle_market_bill(oracle_t *o, const struct billing_record *b, int64_t now_ms, bool post,
                       billing_open_t open[_CHARGE_KIND_MAX], int64_t *ret_unposted, bool *ret_closed);
/* buyer's balance less what it owes and is not posted yet (ended periods, and what accrues in
 * the running ones), and the rate of its open periods per hour. -ENOENT: no such user. */
int oracle_market_available(oracle_t *o, const char *buyer, int64_t now_ms, int64_t *ret_available,
                            int64_t *ret_rate_per_hour);
/* 0 when vm may start (not a buyer's machine, or its buyer has money available); -EDQUOT and
 * why otherwise. */
int oracle_market_can_run(oracle_t *o, const vm_record_t *vm, char **ret_msg);

/* ---- the operation engine (oracle-engine.c) ---- */
typedef struct op_request {
        const char *action;   /* lifecycle verb */
        const char *rm;       /* requested RM, may be NULL */
        const char *method;   /* migrate: chunks (default) or full */
        bool force;
} op_request_t;
/* Validates and records the intent, starts the runner, returns the op as JSON (202). */
int oracle_op_start(oracle_t *o, const char *vm, const op_request_t *req, json_t **ret_op, char **ret_msg);
/* Re-drives every operation left running by a previous Oracle process. */
void oracle_ops_recover(oracle_t *o);
/* The op, once it changed or ended, or after wait_ms (whichever first). -ENOENT. */
int oracle_op_wait(oracle_t *o, const char *id, int64_t wait_ms, op_record_t *ret);
/* Ends op: writes vm (holding its final fields) at version+1 and the op's state in one
 * transaction (delete_vm: removes the VM's row instead). result is stolen. */
int oracle_op_finish(oracle_t *o, op_record_t *op, vm_record_t *vm, bool ok, const char *error, json_t *result,
                     bool delete_vm);
/* Puts vm back to the row recorded at intent time (keeping the current version). */
void oracle_vm_restore_prev(const op_record_t *op, vm_record_t *vm);
void oracle_op_progress(oracle_t *o, op_record_t *op, const char *phase);
const char *oracle_op_arg(const op_record_t *op, const char *key);
/* POST /v1/vms/VM/CMD on rm with body (stolen); timeout_ms 0: the default for commands. A
 * command whose outcome is unknown (-EHOSTUNREACH, -EREMOTEIO) is sent again, the same, a few
 * times within about 2 s: the node answers a repeat of a command it completed from its record,
 * so a lost answer is not taken for a failure. */
int oracle_node_cmd(oracle_t *o, const char *rm, const char *vm, const char *cmd, json_t *body, long timeout_ms,
                    json_t **ret, char **ret_msg);
/* Asks rm to drop vm (its lease is gone anyway, so the node fences it if this fails). */
void oracle_node_forget(oracle_t *o, const char *rm, const char *vm, int64_t version);
/* POST /v1/ops/:id/heartbeat from a node transferring for an operation: progress and liveness. */
void oracle_op_heartbeat(const http_request_t *req, http_reply_t *reply);
/* Marks vm failed at version+1 (no operation may run on it; call inside a transaction). fence:
 * also drop its placement, so its RM holds no lease and kills any copy. */
void oracle_vm_mark_failed(oracle_t *o, vm_record_t *vm, const char *rm, bool fence, const char *reason);
/* The hooks (oracle_hooks_t), called only when registered. */
void oracle_engine_wake(oracle_t *o);
void oracle_engine_failure_note(oracle_t *o, const char *vm, const char *service, bool replace);
int oracle_engine_drain_wait(oracle_t *o, const char *service, const char *vm, int64_t timeout_ms);

/* ---- what runners share (oracle-run-common.c) ---- */
/* The image description a node needs to cache the image's files, or NULL (it is gone). */
json_t *oracle_image_for_node(oracle_t *o, const char *image);
/* Starts vm on rm from its Nest bundle (restore when pre-booted, else cold boot). */
int oracle_run_on(oracle_t *o, op_record_t *op, vm_record_t *vm, const char *rm, json_t **ret, char **ret_msg);
/* The node's answer to run/resume: where the guest answers (an invalid address is not kept). */
void oracle_run_take_address(vm_record_t *vm, const json_t *res);
/* A node's word that it saved a bundle into the Nest, checked against the Nest itself: every
 * file there with the digest reported and no chunk missing. *ret_files borrows from res. */
int oracle_run_saved_check(oracle_t *o, const char *rm, const vm_record_t *vm, int64_t version, const json_t *res,
                           bool need_state, const json_t **ret_files, char **ret_msg);
void oracle_run_set_nest_bundle(oracle_t *o, vm_record_t *vm, int64_t version, const json_t *files, bool prebooted);
void oracle_run_clear_placement(vm_record_t *vm);
/* After op committed vm: drops vm's bundles but keep_version and, when op made an unsaved clone
 * a VM of its own, the parent's versions that neither it nor another clone needs any more. */
void oracle_run_prune(oracle_t *o, const op_record_t *op, const vm_record_t *vm, int64_t keep_version);

/* ---- the runners (oracle-run-*.c) and their table (oracle-runners.c) ---- */
void oracle_run_boot(oracle_t *o, op_record_t *op, vm_record_t *vm);
void oracle_run_activate(oracle_t *o, op_record_t *op, vm_record_t *vm);
void oracle_run_suspend(oracle_t *o, op_record_t *op, vm_record_t *vm);
void oracle_run_hibernate(oracle_t *o, op_record_t *op, vm_record_t *vm);
void oracle_run_deactivate(oracle_t *o, op_record_t *op, vm_record_t *vm);
void oracle_run_resume(oracle_t *o, op_record_t *op, vm_record_t *vm);
void oracle_run_stop(oracle_t *o, op_record_t *op, vm_record_t *vm);
void oracle_run_delete(oracle_t *o, op_record_t *op, vm_record_t *vm);
void oracle_run_migrate(oracle_t *o, op_record_t *op, vm_record_t *vm);
void oracle_run_migrate_live(oracle_t *o, op_record_t *op, vm_record_t *vm);
extern const oracle_runner_fn oracle_runners[_VM_ACTION_MAX];

/* ---- RMs: heartbeats, liveness rounds, fencing (oracle-rms.c) ---- */
void oracle_heartbeat(const http_request_t *req, http_reply_t *reply);
void *oracle_reconciler_thread(void *arg);
void *oracle_gc_thread(void *arg);
/* An operator's decision during an isolation (or any time): rm is down now and its VMs are
 * failed and fenced. -ENOENT, -EALREADY (down already). */
int oracle_rm_fence(oracle_t *o, const char *name, char **ret_msg);
/* When rm was last heard, on the wall clock: from liveness when it was heard since the Oracle
 * started (heartbeats no longer write it), else the store's periodic checkpoint. */
int64_t oracle_rm_last_seen_ms(oracle_t *o, const rm_record_t *rm);

/* ---- clones (oracle-clone.c) ---- */
/* count clones of a pre-booted VM (rm: all onto that chamber RM, else one per free production
 * RM). *ret is {"clones": [names], "ops": [ops]}. */
int oracle_vm_clone(oracle_t *o, const char *parent, int64_t count, const char *rm, json_t **ret, char **ret_msg);

/* ---- the switching and pool loops (oracle-switch.c, oracle-switch-state.c, oracle-pool.c) ---- */
/* init: the state the HTTP threads reach and the engine's hooks (before the API listens);
 * start: HAProxy and the two threads (once the Oracle listens, so a second Oracle on the same
 * data stops there). stop: the threads and HAProxy (the state stays for operation threads
 * still running); free: the state, once nothing else can reach it. */
void oracle_switch_init(oracle_t *o);
int oracle_switch_start(oracle_t *o);
void oracle_switch_stop(oracle_t *o);
void oracle_switch_free(oracle_t *o);

/* ---- the user API's gate (oracle-auth.c) ---- */
/* Loads or makes DATA/auth.key, starts o->auth and, on the first start, makes the admin and
 * DATA/admin.token. cost: NULL for the interactive Argon2id cost. Logs its errors. */
int oracle_auth_start(oracle_t *o, const password_cost_t *cost);
void oracle_auth_stop(oracle_t *o);
/* The user API's authorizer (http_authorize_fn): tokens, permissions, owner rules. */
int oracle_authorize(http_request_t *req, const http_route_t *route, http_reply_t *reply);
/* An "auth-failed" event about req (bounded to a few a second). */
void oracle_auth_event(oracle_t *o, const http_request_t *req, const char *what);
/* May principal p (NULL: an internal caller) see VM v, or act on it (act)? A provider reads
 * the VMs on its RMs; a buyer reaches its own; admin and operator everything. */
bool oracle_vm_visible(oracle_t *o, const auth_principal_t *p, const vm_record_t *v, bool act);
/* The same against the RM records rms (n of them), for a list: the RMs are read once. */
bool oracle_vm_visible_among(const auth_principal_t *p, const vm_record_t *v, const rm_record_t *rms, size_t n,
                             bool act);
bool oracle_rm_visible(const auth_principal_t *p, const rm_record_t *rm);

/* Who asks (the authorizer's principal), and their name ("" for none). */
static inline const auth_principal_t *oracle_principal(const http_request_t *req) { return req->principal; }
static inline const char *oracle_principal_name(const http_request_t *req) {
        return req->principal ? oracle_principal(req)->user : "";
}

/* ---- the marketplace's API (oracle-market.c, oracle-market-prices.c, oracle-machines.c,
 * oracle-billing.c) ---- */
/* A machine's disk: 1 GiB to 1 TiB (the largest disk a bundle makes). */
#define MARKET_DISK_GIB_MAX INT64_C(1024)
/* The market's averages now as GET /v1/market/prices answers them (without history); update:
 * also write the configurations' estimates and, when they changed, the history. */
int oracle_market_prices(oracle_t *o, bool update, json_t **ret);
void oracle_market_prices_update(oracle_t *o);
/* memory_mib, vcpus, disk_gib of body into c (absent: c's values kept): 0, or a 400 in reply. */
int oracle_market_size_from_body(const json_t *body, market_config_t *c, http_reply_t *reply);
/* The registration fee the admin set (0 when none). */
int oracle_market_fee(oracle_t *o, int64_t *ret);
json_t *oracle_offer_prices_json(const market_offer_t *f);
/* The billing loop: posts the charges of every machine as their periods end, suspends the
 * running machines of a buyer whose money is gone and resumes them after a deposit, and keeps
 * the market's prices fresh. */
void *oracle_billing_thread(void *arg);
/* ---- the web interface's files (oracle-ui.c) ---- */
/* --ui-dir's default: $VMATRIX_UI_DIR, or ui/ beside the binary (malloc'd). */
char *oracle_ui_default_dir(void);
/* Is path (below /ui/) one the Oracle serves: plain segments, a known type? */
bool oracle_ui_path_ok(const char *path);
/* The Content-Type of a file by its extension, NULL when it is not served. */
const char *oracle_ui_type(const char *path);
/* Does an If-None-Match header (NULL: none) name etag ("*", or a list of tags, weak or not)? */
bool oracle_ui_etag_matches(const char *header, const char *etag);
extern const http_route_t oracle_ui_routes[];
/* Browser consoles: tickets and their WebSockets (oracle-console.c); the tickets' memory. */
extern const http_route_t oracle_console_routes[];
struct oracle_consoles *oracle_consoles_new(void);
struct oracle_consoles *oracle_consoles_free(struct oracle_consoles *c);
/* Live updates, server-sent events (oracle-events-stream.c). */
extern const http_route_t oracle_stream_routes[];

/* Every route table of the Oracle's API, NULL-terminated, in matching order (oracle.c). */
extern const http_route_t *const oracle_route_tables[];
extern const http_route_t oracle_market_routes[];
extern const http_route_t oracle_machine_routes[];
extern const http_route_t oracle_billing_routes[];

/* ---- the API's route tables (oracle-api.c, oracle-services.c, oracle-metrics-http.c,
 * oracle-accounts.c) ---- */
extern const http_route_t oracle_account_routes[];
extern const http_route_t oracle_api_routes[];
extern const http_route_t oracle_service_routes[];
