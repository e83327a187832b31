/* The node's attachments to its VMs' serial consoles (node-console.c): one connection to each
 * QEMU's console socket, shared by every client attached to that VM (a `vmatrix vm console`,
 * a browser's WebSocket through the Oracle). */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/http-server.h"

/* Clients of one VM's console at once. */
#define NODE_CONSOLE_VM_MAX 128
/* Clients of all consoles at once. Each holds one of the node API's HTTP connections for as long
 * as it is attached (libmicrohttpd counts upgraded connections): a quarter of them stays free for
 * the Oracle's commands and other RMs' transfers. */
#define NODE_CONSOLE_NODE_MAX (HTTP_MAX_CONNECTIONS * 3 / 4)
/* What a new client sees first: the last bytes of the VM's console log. */
#define NODE_CONSOLE_TAIL 2048

typedef struct node_console node_console_t;
typedef struct node_console_client node_console_client_t;

/* The registry of a node's consoles, in node_t (the node's only context). */
typedef struct node_consoles {
        pthread_mutex_t lock;    /* guards everything below; taken before a console's own lock */
        pthread_cond_t idle;     /* broadcast when n_clients or n_consoles drops */
        node_console_t *list;    /* the live consoles, one per VM at most */
        unsigned n_clients;      /* attached or about to be, over all consoles */
        unsigned n_consoles;     /* not yet freed: those of list and ended ones still leaving */
        unsigned vm_max, node_max; /* the limits: NODE_CONSOLE_VM_MAX, NODE_CONSOLE_NODE_MAX */
        bool stopping;           /* node_consoles_stop: no more attaches */
} node_consoles_t;

/* Opens the connection to a VM's QEMU console: a connected stream socket (taken over), or -errno. */
typedef int (*node_console_open_fn)(void *userdata);

void node_consoles_init(node_consoles_t *cs);

/* Ends every console: each client's connection and each QEMU connection is shut down, so that
 * every client's thread returns; refuses attaches from now on; waits (up to 10 s) for the threads
 * to leave and the consoles to be freed. Call before the HTTP server stops: clients' threads
 * still run there. Idempotent. */
void node_consoles_stop(node_consoles_t *cs);

/* Reserves a client of vm's console: it joins the VM's console if one is live for the QEMU with
 * pid, otherwise a new console is opened with open_fn(userdata) (under the registry's lock:
 * open_fn must not block) and its reader thread started. log_path (copied; may be NULL) is the
 * console log whose last NODE_CONSOLE_TAIL bytes a new client is sent first.
 * Returns 0 and *ret_client, which must be run by node_console_client_run exactly once, even
 * when its connection never comes (with a closed socket then); -EAGAIN with *ret_msg when too
 * many clients are attached to vm or to the node, or the node is stopping; open_fn's error. */
int node_console_attach(node_consoles_t *cs, const char *vm, int64_t pid, const char *log_path,
                        node_console_open_fn open_fn, void *userdata, node_console_client_t **ret_client,
                        char **ret_msg);

/* The client's side of the console, in its own thread (the HTTP upgrade function's) with its
 * connected socket fd: sends it the log's tail, then QEMU's output as the console's reader
 * thread fans it out; writes extra and then what it reads from fd to QEMU (one write at a time
 * over all the console's clients). Returns when the client leaves, is dropped (too slow to take
 * the output: its socket would block), or the console ends (QEMU closed it, the node stops).
 * The last client to leave closes the connection to QEMU. Frees cl; does not close fd. */
void node_console_client_run(node_console_client_t *cl, int fd, const char *extra, size_t extra_len);

/* A connection to the UNIX socket at path of the QEMU with pid: the run directory is a confined
 * QEMU's to write, so the socket found there must be that QEMU's own (-EPERM otherwise, and for
 * pid <= 0). With NODE_CONSOLE_CONNECT_NOWAIT, -EAGAIN rather than waiting when the socket's
 * listen queue is full (a QEMU that accepts nobody). A connected socket (blocking), or -errno. */
#define NODE_CONSOLE_CONNECT_NOWAIT (1u << 0)
int node_console_connect(const char *path, int64_t pid, unsigned flags);
