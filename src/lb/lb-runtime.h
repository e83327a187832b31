/* HAProxy's runtime API: the protocol half of the load balancer (lb.c is the logic half).
 *
 * One command per connection on the admin UNIX socket, in HAProxy's non-interactive mode: we send
 * "COMMAND\n", HAProxy answers and closes, so a reply is everything read until EOF. The text of
 * the replies ("New server registered.", "Server still has connections attached...", the CSV
 * of "show stat", the table of "show servers state") is interpreted here and nowhere else: the
 * functions return -errno and C structs. Every reply is untrusted input: a garbage or truncated
 * reply gives -EBADMSG, never a crash. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* How long one command may take (connect, send, whole reply), and the largest reply accepted. */
#define LB_RUNTIME_TIMEOUT_MS 5000
#define LB_RUNTIME_REPLY_MAX (32u << 20)

/* srv_admin_state bits of "show servers state" (enum srv_admin in HAProxy 2.6's server-t.h).
 * CMAINT (0x04, "disabled" in the config) is not part of the maintenance mask: it only records
 * how the server started, and stays set after "set server ... state ready". */
#define LB_RUNTIME_ADMIN_MAINT 0x23u /* FMAINT | IMAINT | RMAINT */
#define LB_RUNTIME_ADMIN_DRAIN 0x18u /* FDRAIN | IDRAIN */

/* Sends one command (no ';' or newline: HAProxy would split it) to the admin socket at path and
 * returns the whole reply, NUL-terminated, in *ret_reply (malloc'd). -ETIMEDOUT, -EMSGSIZE, or
 * the connect error (-ENOENT, -ECONNREFUSED, -EAGAIN for a full backlog). */
int lb_runtime_command(const char *path, const char *command, char **ret_reply);

typedef enum lb_row_type {
        LB_ROW_FRONTEND = 0,
        LB_ROW_BACKEND = 1,
        LB_ROW_SERVER = 2,
        LB_ROW_LISTENER = 3,
} lb_row_type_t;

/* One line of "show stat"; an empty field reads as 0. */
typedef struct lb_stat_row {
        char proxy[64];         /* pxname */
        char name[64];          /* svname: FRONTEND, BACKEND or the server's name */
        char status[24];        /* truncated if longer */
        lb_row_type_t type;
        int64_t scur, qcur, req_rate, req_tot, hrsp_5xx, econ, eresp, cli_abrt, srv_abrt, rtime, qtime;
} lb_stat_row_t;

/* Parses the CSV reply of "show stat": a "# pxname,svname,..." header naming the columns (found
 * by name, so their order does not matter), then one row per line with exactly as many fields,
 * double-quoted fields allowed. Rows whose names do not fit are skipped (they cannot be ours).
 * -EBADMSG for anything else malformed. *ret_rows is malloc'd (NULL when there is no row). */
int lb_runtime_stat_parse(const char *csv, lb_stat_row_t **ret_rows, size_t *ret_n);
int lb_runtime_stat(const char *path, lb_stat_row_t **ret_rows, size_t *ret_n);

/* One line of "show servers state". */
typedef struct lb_state_row {
        char backend[64];
        char name[64];
        char address[24];       /* srv_addr:srv_port */
        unsigned admin;         /* srv_admin_state: LB_RUNTIME_ADMIN_* bits */
        int op;                 /* srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping */
} lb_state_row_t;

/* Parses "show servers state": a version line "1", a "# be_id be_name ..." header, rows of
 * space-separated fields. Same rules and errors as lb_runtime_stat_parse. */
int lb_runtime_state_parse(const char *text, lb_state_row_t **ret_rows, size_t *ret_n);
int lb_runtime_state(const char *path, lb_state_row_t **ret_rows, size_t *ret_n);

/* Server commands on backend/name. When HAProxy refuses, they return -EPROTO (-ENOENT for an
 * unknown server or backend, -EEXIST for "add" of a name in use, -EBUSY for "del" of a server
 * that still has connections) and, if ret_error is not NULL, HAProxy's reply in *ret_error
 * (malloc'd, set on failure only). */

/* "add server B/S ADDRESS OPTIONS": the server is created in maintenance. */
int lb_runtime_server_add(const char *path, const char *backend, const char *name, const char *address,
                          const char *options, char **ret_error);
/* "set server B/S state STATE", STATE one of ready, drain, maint. */
int lb_runtime_server_state(const char *path, const char *backend, const char *name, const char *state,
                            char **ret_error);
/* "set server B/S addr IP port PORT" for address "IP:PORT". */
int lb_runtime_server_addr(const char *path, const char *backend, const char *name, const char *address,
                           char **ret_error);
/* "enable health B/S": dynamic servers start with their checks off. */
int lb_runtime_server_health(const char *path, const char *backend, const char *name, char **ret_error);
/* "del server B/S": the server must be in maintenance and hold no connection. */
int lb_runtime_server_del(const char *path, const char *backend, const char *name, char **ret_error);
/* "shutdown sessions server B/S". */
int lb_runtime_server_shutdown(const char *path, const char *backend, const char *name, char **ret_error);
