/* The guest firewall (docs/guest-isolation.md): nftables rules that keep guests off the control
 * plane. With QEMU's user networking every connection a guest opens is a socket of its QEMU
 * process on this RM, so the rules match sockets by owner: the uids of confined QEMUs
 * (vmm/qemu/guest-uid.h). New connections from those uids to loopback, to any address of this
 * host, to the Oracle and to the control network are refused; replies on connections others
 * opened to the guest (its published port) and traffic to the rest of the world pass.
 *
 * Two halves: node-guestfw-rules.c builds the ruleset text and parses the options (pure, no
 * I/O, for tests/unit/test-node-guestfw.c); node-guestfw.c learns the addresses, runs nft and
 * keeps the state of one node. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/vmm.h"

/* ---- pure: names, prefixes, rulesets (node-guestfw-rules.c) ---- */

/* An IPv4 or IPv6 prefix, masked: addr holds no bit past len. */
typedef struct node_guestfw_prefix {
        int family;            /* AF_INET or AF_INET6 */
        unsigned char addr[16]; /* network order; 4 bytes used for AF_INET */
        unsigned len;          /* 0..32 or 0..128 */
} node_guestfw_prefix_t;

/* What the table holds. */
typedef struct node_guestfw_spec {
        const char *table;                     /* from node_guestfw_table_name */
        uint32_t uid_first, uid_last;          /* the guests' socket owners */
        const node_guestfw_prefix_t *refused;  /* new connections there are refused */
        size_t n_refused;
        const node_guestfw_prefix_t *dns;      /* resolvers: port 53 there stays open (slirp's 10.0.2.3) */
        size_t n_dns;
} node_guestfw_spec_t;

/* The node's table: "vmatrix-guests-NAME-HASH", HASH 8 hex digits of the absolute data
 * directory, so that two nodes sharing a network namespace (even of one name, from two
 * clusters) never share a table, and a restarted node replaces its own. -EINVAL for a name
 * that is not a valid RM name (name_is_valid) or a data directory that is not absolute. */
int node_guestfw_table_name(const char *node_name, const char *data_dir, char **ret);

/* "ADDR" (a host: /32 or /128) or "ADDR/LEN", IPv4 or IPv6; bits past LEN are cleared
 * ("10.1.2.3/24" is 10.1.2.0/24). -EINVAL when malformed. */
int node_guestfw_prefix_parse(const char *text, node_guestfw_prefix_t *ret);
/* The prefix as nft and people read it: "10.1.2.0/24", "10.1.2.3" (a host), "fd00::/8". */
void node_guestfw_prefix_format(const node_guestfw_prefix_t *p, char *buf, size_t size);
/* Is a inside b (b's prefix covers a)? */
bool node_guestfw_prefix_within(const node_guestfw_prefix_t *a, const node_guestfw_prefix_t *b);

/* "CIDR[,CIDR...]" (--control-net) appended to *v (n entries). -EINVAL and *ret_msg (malloc'd,
 * naming the bad entry) when an entry is malformed or the list is empty; *v is unchanged then. */
int node_guestfw_prefixes_parse(const char *list, node_guestfw_prefix_t **v, size_t *n, char **ret_msg);
/* Appends p unless a prefix already in *v covers it; drops the entries p covers. */
void node_guestfw_prefixes_add(node_guestfw_prefix_t **v, size_t *n, const node_guestfw_prefix_t *p);
/* What every table refuses whatever the control network: 0.0.0.0/8, loopback, link-local (a
 * cloud's metadata service, every RM on the segment), the limited broadcast; ::, ::1, fe80::/10. */
void node_guestfw_prefixes_add_fixed(node_guestfw_prefix_t **v, size_t *n);
/* The prefixes of v listed for people: "10.1.2.0/24, 10.1.2.1, ..." (malloc'd). */
char *node_guestfw_prefixes_join(const node_guestfw_prefix_t *v, size_t n);

/* The nft script that makes spec's table, atomically: it creates the table if absent, deletes it
 * and makes it anew in one transaction (`nft -f`), so a restarted node replaces its rules
 * without a moment of none. -EINVAL for a bad spec (no table name, an empty uid range, a prefix
 * of a wrong family or length). *ret malloc'd. */
int node_guestfw_ruleset(const node_guestfw_spec_t *spec, char **ret);
/* The nft script that removes table whether or not it exists. */
int node_guestfw_ruleset_remove(const char *table, char **ret);

/* The live-migration opening (see node_guestfw_live_open): the words after "nft" that add or
 * delete the element "UID . HOST . PORT" of the table's set "live". host must be an IPv4
 * literal, port 1..65535, timeout_s > 0 (add only). NULL-terminated, malloc'd (strv_free).
 * -EINVAL for bad arguments. */
int node_guestfw_live_argv(const char *table, bool add, uint32_t uid, const char *host, int port, int timeout_s,
                           char ***ret);

/* ---- the node's firewall (node-guestfw.c) ---- */

typedef enum node_guestfw_mode {
        NODE_GUESTFW_AUTO,    /* install when root with nft; otherwise say guests are not firewalled */
        NODE_GUESTFW_REQUIRE, /* install, or the node does not start */
        NODE_GUESTFW_OFF,     /* never (another firewall does it, or a test) */
} node_guestfw_mode_t;

/* --guest-firewall auto|require|off; -EINVAL otherwise. */
int node_guestfw_mode_parse(const char *s, node_guestfw_mode_t *ret);

typedef struct node_guestfw {
        node_guestfw_mode_t mode;
        node_guestfw_prefix_t *control; /* --control-net, NULL: derived (see node_guestfw_start) */
        size_t n_control;
        char *table;                    /* the installed table, NULL: guests are not firewalled */
        char *nft;                      /* path of the nft program used */
} node_guestfw_t;

struct node;

/* Installs the node's table (replacing one a previous run left). Refused: the fixed prefixes,
 * the Oracle's addresses (its URL's host, resolved), and the control network: fw->control, or
 * by default the subnet of the interface holding the node's listen address (every interface's
 * subnets when it listens on 0.0.0.0). DNS stays open to the resolvers of /etc/resolv.conf.
 *
 * Without root, without nft, or when nft refuses the rules, it logs once that guests are not
 * firewalled and returns 0 (fw->table stays NULL), unless fw->mode is REQUIRE: then it logs
 * why and returns -errno, and the node must not start. OFF logs the same line and returns 0. */
int node_guestfw_start(struct node *n);
/* On a clean exit: removes the table when no QEMU of this node still runs; when some do (the
 * agent stops, its VMs run on), it keeps their rules for the next start to replace. Frees fw. */
void node_guestfw_stop(struct node *n);
/* Whether guests are firewalled (the heartbeat's guest_firewall). */
bool node_guestfw_active(const struct node *n);

/* A live migration's source QEMU (pid) opens the destination's migration and disk ports
 * itself, and a guest uid may open nothing on the control network: this opens exactly
 * ep's two ports of ep's host to exactly that QEMU's uid, for timeout_ms at most, until
 * node_guestfw_live_close. *ret_uid is the uid opened for, 0 when nothing was needed (the
 * firewall is off, or that QEMU does not run under a guest uid). -errno and *ret_msg when it
 * cannot (the migration would fail on a refused connection: better to say why first). */
int node_guestfw_live_open(struct node *n, int64_t pid, const vmm_live_endpoint_t *ep, int64_t timeout_ms,
                           uint32_t *ret_uid, char **ret_msg);
/* Closes what live_open opened for uid (0: nothing). */
void node_guestfw_live_close(struct node *n, uint32_t uid, const vmm_live_endpoint_t *ep);
