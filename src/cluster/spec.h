/* The description of one local cluster: which processes run, with which arguments, on which
 * address and in which network namespace. `cluster up` derives it from the cluster directory and
 * the options and saves it as DIR/cluster.json; down and restart read it back, so they act on
 * exactly what up started. Pure: no processes, no network, no privileges.
 *
 * Naming scheme (all derived from the canonical absolute DIR, so clusters in different
 * directories never share names and usually not subnets):
 *   tag      6 hex digits of a hash of DIR                        e.g. "3fa09c"
 *   bridge   "vmx" TAG                                            e.g. "vmx3fa09c"   (9 chars)
 *   veth k   "vmx" TAG "-" k, host side, k = 1.. in RM order      e.g. "vmx3fa09c-2" (<= 13)
 *            (its peer is "eth0" inside the RM's namespace)
 *   netns    "vmx" TAG "-" NAME                                   e.g. "vmx3fa09c-prod1"
 *   subnet   10.B.C.0/24 chosen from a hash-seeded sequence, skipping prefixes in use
 *   oracle   10.B.C.1:7000 on the bridge;   RM k: 10.B.C.(k+1):7070 in its namespace
 * Without namespaces everything is on 127.0.0.1 with ports the caller picks. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPEC_ORACLE_PORT 7000
#define SPEC_ORACLE_NODE_PORT 7001 /* the Oracle's node channel (mutual TLS) */
#define SPEC_NODE_PORT 7070
#define SPEC_MAX_RMS 253 /* .2 .. .254 of the /24 */
#define SPEC_LOOPBACK_ADDRESS "127.0.0.1"

enum spec_role { SPEC_ROLE_ORACLE, SPEC_ROLE_PRODUCTION, SPEC_ROLE_CHAMBER };

typedef struct spec_member {
        char *name;          /* "oracle", "prod1", "chamber1", ... */
        enum spec_role role;
        char *address;       /* IPv4 address it listens on */
        unsigned port;       /* 0 until the caller picks one (loopback mode) */
        unsigned node_port;  /* the Oracle's node channel (the Oracle only; 0 until picked) */
        char *netns;         /* its network namespace; NULL: the root namespace */
        char *veth;          /* host side of its veth pair; NULL without a namespace */
} spec_member_t;

typedef struct spec {
        char *dir;           /* canonical absolute cluster directory */
        char *exe;           /* absolute path of the vmatrix binary */
        char *accel;         /* --accel for nodes, may be NULL */
        bool netns;          /* namespaces + bridge, else loopback */
        bool plain;          /* no TLS, no enrolment: only the launcher's own tests, whose daemons
                              * are stubs (cluster-stub.c); a real cluster never is */
        bool open_signup;    /* the Oracle takes signups (--open-signup); kept across restarts */
        char *bridge;        /* NULL without namespaces */
        uint32_t subnet;     /* network address of the /24 (host order); 0 without namespaces */
        spec_member_t oracle;
        spec_member_t *rms;  /* production RMs first, then chambers */
        size_t n_rms;
} spec_t;

/* An IPv4 prefix in use on this machine (host order). */
typedef struct spec_prefix {
        uint32_t addr;
        unsigned len;
} spec_prefix_t;

const char *spec_role_to_string(enum spec_role role);
int spec_role_from_string(const char *s, enum spec_role *ret);

/* The 6-hex-digit tag of dir (64-bit FNV-1a of the string), and names derived from it. */
void spec_dir_tag(const char *dir, char ret[7]);
char *spec_bridge_name(const char *dir);
char *spec_netns_prefix(const char *dir); /* "vmxTAG-": every namespace and veth starts so */

/* The attempt-th candidate /24 for dir: 10.B.C.0 with B in 1..254 (host order). */
uint32_t spec_subnet_candidate(const char *dir, unsigned attempt);
/* Whether 10.B.C.0/24 overlaps any of used; prefixes of length 0 (default routes) are ignored. */
bool spec_subnet_overlaps(uint32_t subnet, const spec_prefix_t *used, size_t n_used);
/* The first candidate of dir that overlaps nothing in used; -EADDRNOTAVAIL if none of 256 does. */
int spec_subnet_pick(const char *dir, const spec_prefix_t *used, size_t n_used, uint32_t *ret);

/* Dotted quad of a host-order address (malloc'd). */
char *spec_address_format(uint32_t addr);

/* Builds the description of a new cluster. dir must be canonical and absolute. subnet is used
 * only with netns. Ports are fixed with netns and 0 (for the caller to fill) without.
 * -EINVAL for a bad dir/exe, -ERANGE unless 1 <= production + chambers <= SPEC_MAX_RMS. */
int spec_new(const char *dir, const char *exe, const char *accel, unsigned production,
             unsigned chambers, bool netns, uint32_t subnet, spec_t **ret);
spec_t *spec_free(spec_t *s);
static inline void spec_freep(spec_t **s) { spec_free(*s); }

/* cluster.json. spec_from_json validates everything that later reaches argv or `ip` (names,
 * addresses, ports) and returns -EBADMSG for anything malformed or incomplete. */
json_t *spec_to_json(const spec_t *s);
int spec_from_json(const json_t *j, spec_t **ret);
int spec_save(const spec_t *s, const char *path);
int spec_load(const char *path, spec_t **ret); /* -ENOENT, or -EBADMSG for a damaged file */

/* The oracle or the RM called name; NULL if there is none. */
const spec_member_t *spec_member_find(const spec_t *s, const char *name);

/* Paths and arguments of a member (malloc'd). The argv is NULL-terminated, argv[0] is s->exe.
 * The Oracle's user API is HTTPS with a certificate of its own CA (--tls-auto), which `cluster
 * up` copies to DIR/ca.pem; nodes talk to its node channel (spec_oracle_node_url). */
char *spec_oracle_url(const spec_t *s);
char *spec_oracle_node_url(const spec_t *s);
char *spec_member_data_dir(const spec_t *s, const spec_member_t *m);
char *spec_member_log_path(const spec_t *s, const spec_member_t *m);
char *spec_member_pid_path(const spec_t *s, const spec_member_t *m);
char **spec_member_argv(const spec_t *s, const spec_member_t *m);
/* The --data directory of the process whose pid file is DIR/pids/NAME.pid. */
char *spec_data_dir_of(const char *dir, const char *name);
