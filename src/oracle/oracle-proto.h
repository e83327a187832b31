/* The node<->Oracle protocol, Oracle side (oracle-proto.c): builders of the commands the Oracle
 * sends and parsers of what nodes answer and report. Builders return new JSON; parsers borrow
 * from the message they read (it must outlive the result). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* An address as nodes report it, for their API and for guests: "IPv4:PORT". */
bool oracle_address_is_valid(const char *address);

/* {version}: resume, delete, stage, live-finish, live-abort. */
json_t *oracle_proto_version(int64_t version);
/* save at version into new version version+1; upload: into the Nest (else kept on the RM). */
json_t *oracle_proto_save(int64_t version, bool upload);
/* stop at version; its disk goes into the Nest at version+1. */
json_t *oracle_proto_stop(int64_t version);
/* The image a node caches for a VM: {name, files}. */
json_t *oracle_proto_image(const image_record_t *img);
/* run vm (at its current version) from its Nest bundle: restore when pre-booted, else boot.
 * image: from oracle_proto_image, stolen. */
json_t *oracle_proto_run(const vm_record_t *vm, json_t *image, const char *op_id);
/* receive (migration): pull files from the origin's cache at origin_address by method. */
json_t *oracle_proto_receive(const vm_record_t *vm, const char *origin_address, const char *method,
                             const json_t *files, json_t *image, const char *op_id);
json_t *oracle_proto_live_receive(const vm_record_t *vm, json_t *image, const char *op_id);
/* live-send: the endpoint the destination answered, and the destination RM, whose migration
 * certificate the origin's QEMU must see there. */
json_t *oracle_proto_live_send(int64_t version, const json_t *endpoint, const char *target_rm, const char *op_id);

/* The answer to run, resume and live-finish: where the guest answers. An invalid address is
 * left empty; an out-of-range pid is 0. */
typedef struct oracle_started {
        char address[64];
        int64_t pid;
} oracle_started_t;
void oracle_proto_started_parse(const json_t *res, oracle_started_t *ret);

/* The answer to a save or stop into the Nest: its files {NAME: {digest, size}}, which must name
 * the disk and, with need_state, the device state and memory. -EPROTO otherwise. */
int oracle_proto_saved_parse(const json_t *res, bool need_state, const json_t **ret_files);

/* The answer to receive: the destination holds the VM at version. -EPROTO otherwise. */
typedef struct oracle_received {
        int64_t bytes_transferred, bytes_total;
} oracle_received_t;
int oracle_proto_received_parse(const json_t *res, int64_t version, oracle_received_t *ret);

/* Does the answer to GET /v1/migrate/methods offer method? */
bool oracle_proto_methods_has(const json_t *res, const char *method);

/* POST /v1/rms/NAME/heartbeat: role, address, the VMs it runs ({name, state, stats?}, at most
 * 4096), the snapshots it holds, whether it firewalls its guests (guest_firewall, a bool),
 * whether it confines its QEMUs (confined, a bool, and confine_reason, a string of at most
 * ORACLE_CONFINE_REASON_MAX bytes, both optional) and its size (capacity {memory_mib, vcpus,
 * disk_gib}: integers, memory_mib and vcpus from 1, disk_gib from 0, none above
 * ORACLE_CAPACITY_MAX; optional, null as absent; other members ignored). A field that is there
 * but not as said refuses the whole heartbeat, as a node that sends it is broken: -EINVAL/-ERANGE
 * and a message naming the first problem. */
#define ORACLE_CONFINE_REASON_MAX 200
/* keep in sync with NODE_CAPACITY_MAX (node/node-capacity.h) */
#define ORACLE_CAPACITY_MAX (INT64_C(1) << 40)
typedef struct oracle_capacity {
        int64_t memory_mib, vcpus, disk_gib;
} oracle_capacity_t;
typedef struct oracle_heartbeat {
        const char *role, *address;
        const json_t *vms;       /* array or NULL */
        const json_t *snapshots; /* array or NULL */
        int guest_firewall;      /* 1 or 0 as the RM says, -1: it does not say (an older node) */
        int confined;            /* 1 or 0: whether the RM confines its QEMUs; -1: it does not say */
        const char *confine_reason; /* why not, or what it cannot limit; NULL: nothing to say */
        bool has_capacity;       /* false: it does not say (an older node); capacity is zero then */
        oracle_capacity_t capacity;
} oracle_heartbeat_t;
int oracle_proto_heartbeat_parse(const json_t *body, oracle_heartbeat_t *ret, char **ret_msg);

/* POST /v1/ops/ID/heartbeat: {done, total}, non-negative integers. -EINVAL otherwise. */
int oracle_proto_op_progress_parse(const json_t *body, int64_t *ret_done, int64_t *ret_total);
