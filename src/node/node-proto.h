/* The node's side of the node<->Oracle protocol (docs/api.md "Oracle -> node"), as C structs.
 * This file (with node-proto.c) is the only place that reads the JSON of a command the Oracle
 * sends or builds the JSON of the node's answers; the command files above never touch a
 * command's JSON, and the HTTP layer (node-api.c) never looks inside one.
 *
 * Commands are untrusted: node_proto_parse checks every field (versions 1..BUNDLE_VERSION_MAX,
 * names valid, strings bounded, vm.json as bundle_config_from_json wants it) and returns
 * -EINVAL or -ERANGE with a message naming what is wrong, never a half-filled struct. The
 * structs borrow the JSON values they point to (config, image, bundle, files): they are valid
 * while the body they were parsed from is. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "bundle/bundle.h"
#include "node/node-capacity.h"
#include "nest/transfer.h"
#include "vmm/vmm.h"

/* The commands, one per POST route; keep in sync with node_proto_kind_names in node-proto.c. */
typedef enum node_cmd_kind {
        NODE_CMD_RUN,
        NODE_CMD_SAVE,
        NODE_CMD_RESUME,
        NODE_CMD_STOP,
        NODE_CMD_DELETE,
        NODE_CMD_STAGE,
        NODE_CMD_RECEIVE,
        NODE_CMD_LIVE_RECEIVE,
        NODE_CMD_LIVE_SEND,
        NODE_CMD_LIVE_FINISH,
        NODE_CMD_LIVE_ABORT,
        NODE_CMD_BALLOON,
        NODE_CMD_MAX,
} node_cmd_kind_t;

typedef enum node_run_mode {
        NODE_RUN_BOOT,
        NODE_RUN_RESTORE,
} node_run_mode_t;

/* run {version, mode, config, image, bundle, op?} */
typedef struct node_cmd_run {
        node_run_mode_t mode;
        const json_t *config;     /* the VM's vm.json, as bc */
        bundle_config_t bc;
        const json_t *image;      /* {name, files}: name is bc.image */
        const json_t *bundle;     /* NULL (a fresh boot), or {version, files[, vm]} */
        int64_t bundle_version;   /* 0 without a bundle */
        const json_t *files;      /* the bundle's files, NULL without a bundle */
        const char *source;       /* the VM whose snapshot the bundle is: bundle.vm, or the VM */
        const char *op;           /* the Oracle's operation, for progress reports; NULL: none */
} node_cmd_run_t;

/* save {version, upload?, new_version (with upload), nest?} */
typedef struct node_cmd_save {
        bool upload;
        int64_t new_version;      /* 0 without upload */
} node_cmd_save_t;

/* stop {version, new_version, nest?} */
typedef struct node_cmd_stop {
        int64_t new_version;
} node_cmd_stop_t;

typedef enum node_receive_method {
        NODE_RECEIVE_CHUNKS,
        NODE_RECEIVE_FULL,
} node_receive_method_t;

/* receive {version, origin, method, files, config, image, op?} */
typedef struct node_cmd_receive {
        const char *origin;       /* host:port of the origin RM's node API */
        const char *origin_rm;    /* the origin RM's name, which its certificate must carry (NULL: not sent) */
        node_receive_method_t method;
        const json_t *files;
        const json_t *config;
        bundle_config_t bc;
        const json_t *image;
        const char *op;           /* NULL: no progress reports */
} node_cmd_receive_t;

/* live-receive {version, config, image, origin_rm} */
typedef struct node_cmd_live_receive {
        const json_t *config;
        bundle_config_t bc;
        const json_t *image;
        const char *origin_rm;    /* the RM that sends: only its migration certificate may connect */
} node_cmd_live_receive_t;

/* live-send {version, endpoint {host, migrate_port, nbd_port}, target_rm} */
typedef struct node_cmd_live_send {
        vmm_live_endpoint_t endpoint;
        const char *target_rm;    /* the RM that receives: its migration certificate must be there */
} node_cmd_live_send_t;

/* balloon {target_mib?}: no version. The range of target_mib depends on the VM's RAM, so it is
 * checked by the command (node-balloon.c); a target that is not an integer is -1 here, out of
 * every range. */
typedef struct node_cmd_balloon {
        bool has_target;
        int64_t target_mib;
} node_cmd_balloon_t;

typedef struct node_cmd {
        node_cmd_kind_t kind;
        int64_t version;          /* every command but balloon has one, >= 1 */
        union {
                node_cmd_run_t run;
                node_cmd_save_t save;
                node_cmd_stop_t stop;
                node_cmd_receive_t receive;
                node_cmd_live_receive_t live_receive;
                node_cmd_live_send_t live_send;
                node_cmd_balloon_t balloon;
        };
} node_cmd_t;

/* "run", "live-receive", ...: the route, and the kind a recorded result is kept under. */
const char *node_proto_kind_name(node_cmd_kind_t kind);

/* Parses the body of command kind for the VM name (a valid name) on a node whose Oracle is
 * oracle (save and stop may only name that Nest). body may be NULL or any JSON value. 0 and
 * *ret filled, or -EINVAL/-ERANGE and *ret_msg (malloc'd). */
int node_proto_parse(node_cmd_kind_t kind, const json_t *body, const char *name, const char *oracle, node_cmd_t *ret,
                     char **ret_msg);

/* The node's answers. Each returns a new JSON object; json_t arguments are stolen. */
json_t *node_proto_started(int64_t pid, const char *address);
/* run: the started answer with how long the files and the VMM took and what moved. */
json_t *node_proto_run_answer(json_t *started, int64_t fetch_ms, int64_t start_ms, const nest_transfer_stats_t *moved);
/* save, stop, stage: {files}. */
json_t *node_proto_files_answer(json_t *files);
json_t *node_proto_receive_answer(int64_t version, node_receive_method_t method, const nest_transfer_stats_t *moved,
                                  double seconds);
json_t *node_proto_live_receive_answer(const vmm_live_endpoint_t *ep);
json_t *node_proto_live_send_answer(const vmm_live_stats_t *st);
json_t *node_proto_balloon_answer(int64_t memory_mib, int64_t target_mib, int64_t actual_mib, bool reclaimable);
/* A VM as GET /v1/vms and the heartbeat show it; address "" is null, stats NULL left out. */
json_t *node_proto_describe(const char *name, int64_t version, const char *state, int64_t pid, const char *address,
                            const vmm_stats_t *stats);
/* A VM busy with a command, reported by name so that its lease is kept. */
json_t *node_proto_busy(const char *name);
json_t *node_proto_health(const char *name, const char *role, const char *accel);
json_t *node_proto_methods(void);
/* The heartbeat to the Oracle, and the leases of its answer (NULL when it has none). */
json_t *node_proto_heartbeat(const char *role, const char *address, const char *accel, json_t *vms, json_t *snapshots);
const json_t *node_proto_heartbeat_leases(const json_t *answer);
/* Adds to a heartbeat whether this node firewalls its guests (node-guestfw.h). */
void node_proto_heartbeat_guest_firewall(json_t *heartbeat, bool on);
/* Adds to a heartbeat whether this node confines its QEMUs and, when reason is not "" or NULL,
 * why not or what it cannot limit (node-confine.h; confine_reason null otherwise). */
void node_proto_heartbeat_confinement(json_t *heartbeat, bool confined, const char *reason);
/* Adds to a heartbeat the RM's size: capacity {memory_mib, vcpus, disk_gib} (node-capacity.h). */
void node_proto_heartbeat_capacity(json_t *heartbeat, const node_capacity_t *capacity);
/* A transfer's progress, posted to the Oracle's heartbeat URL of an operation. */
json_t *node_proto_progress(uint64_t done, uint64_t total);
