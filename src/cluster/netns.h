/* The privileged part of the cluster launcher, and the only one: the bridge, the veth pairs and
 * the network namespaces of a local cluster, and entering a namespace in a child before exec.
 * Everything goes through `ip` run with an argv array (never a shell), after every name and
 * address has been checked against what the launcher itself generates. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cluster/spec.h"

/* Whether to use namespaces: running as root and VMATRIX_CLUSTER_NETNS is not "0". */
bool netns_wanted(void);

/* Creates bridge with address cidr (the Oracle's, "10.B.C.1/24"), with IPv4 and IPv6
 * forwarding off for packets arriving on it, and sets it up. */
int netns_bridge_add(const char *bridge, const char *cidr);
/* Deletes bridge if it exists (0 if it does not). */
int netns_bridge_del(const char *bridge);

/* Creates namespace ns with lo up, a veth pair whose host side veth is a port of bridge and
 * whose other side is "eth0" in ns with address cidr ("10.B.C.k/24"). No default route: an RM
 * reaches its /24 and nothing else. */
int netns_rm_add(const char *ns, const char *veth, const char *bridge, const char *cidr);
/* Deletes namespace ns and the veth (each only if it exists; 0 if neither does). Processes
 * still inside ns must be gone first (see netns_pids), or the namespace outlives its name. */
int netns_rm_del(const char *ns, const char *veth);

bool netns_exists(const char *ns);
bool netns_link_exists(const char *ifname);
/* Names of existing namespaces / root-namespace links starting with prefix (NULL-terminated). */
int netns_list(const char *prefix, char ***ret);
int netns_links(const char *prefix, char ***ret);
/* Processes whose network namespace is ns (like `ip netns pids`). */
int netns_pids(const char *ns, pid_t **ret, size_t *ret_n);

/* An O_CLOEXEC descriptor of namespace ns, for netns_enter in a forked child. */
int netns_open(const char *ns);
/* In a forked child, before exec: join the namespace fd, and give the child its own mount
 * namespace with /sys remounted so /sys/class/net shows the namespace's links (as
 * `ip netns exec` does; best effort). Async-signal-safe. Returns -errno of setns. */
int netns_enter(int fd);

/* IPv4 prefixes in use on this machine: interface addresses (getifaddrs) and routes of every
 * table (`ip -j -4 route show table all`). */
int netns_used_prefixes(spec_prefix_t **ret, size_t *ret_n);
