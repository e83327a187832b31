/* The node's HTTP API, called by the Oracle (docs/api.md "Oracle → node"). Handlers only
 * parse and answer; the work is in the command files (node-launch.c, node-save.c, ...). */
#include <string.h>

#include "auth/roles.h"
#include "base/util.h"
#include "nest/nest-http.h"
#include "net/stream.h"
#include "node/node-prestage.h"
#include "node/node-delete.h"
#include "node/node-internal.h"
#include "node/node-launch.h"
#include "node/node-migrate.h"
#include "node/node-registry.h"
#include "node/node-save.h"
#include "node/node-supervise.h"
#include "node/node-vm.h"

/* The upgraded connection of a console's client (node-console.c). */
static void console_stream(void *data, int fd, const char *extra, size_t extra_len) {
        node_console_client_run(data, fd, extra, extra_len);
}

/* The QEMU a new console connects to: its console socket and pid (node_console_open_fn). */
typedef struct console_target {
        const char *sock;
        int64_t pid;
} console_target_t;

static int console_open(void *userdata) {
        const console_target_t *t = userdata;
        /* under the consoles' lock: no waiting on a QEMU that accepts nobody */
        return node_console_connect(t->sock, t->pid, NODE_CONSOLE_CONNECT_NOWAIT);
}

/* The pid of vm's QEMU, 0 when it has none or is busy with a command for long. */
static int64_t console_pid(node_t *n, const char *name) {
        _cleanup_(node_registry_releasep) node_vm_t *vm = node_registry_find(n, name);
        if (!vm)
                return 0;
        _cleanup_(node_vm_unlockp) node_vm_t *locked = node_vm_timedlock(vm, 2000);
        return locked && vm->vmm ? vm->pid : 0;
}

static bool check_name(const http_request_t *req, http_reply_t *reply) {
        if (!name_is_valid(req->params[0])) {
                http_reply_error(reply, 400, "invalid", "invalid VM name \"%s\"", req->params[0]);
                return false;
        }
        return true;
}

static void h_health(const http_request_t *req, http_reply_t *reply) {
        node_t *n = req->userdata;
        http_reply_json(reply, 200, node_proto_health(n->name, n->role, n->accel));
}

static void h_list(const http_request_t *req, http_reply_t *reply) {
        node_t *n = req->userdata;
        json_t *arr = json_array();
        size_t count = 0;
        _cleanup_(node_registry_snapshot_freep) node_vm_t **vms = node_registry_snapshot(n, &count);
        for (size_t i = 0; i < count; i++) {
                _cleanup_(node_vm_unlockp) node_vm_t *vm = node_vm_lock(vms[i]);
                if (!streq(vm->state, "deleted"))
                        json_array_append_new(arr, node_supervise_describe(n, vm, true));
        }
        http_reply_json(reply, 200, arr);
}

static void h_show(const http_request_t *req, http_reply_t *reply) {
        node_t *n = req->userdata;
        if (!check_name(req, reply))
                return;
        _cleanup_(node_registry_releasep) node_vm_t *vm = node_registry_find(n, req->params[0]);
        if (!vm) {
                http_reply_error(reply, 404, "not_found", "vm \"%s\" is not on this RM", req->params[0]);
                return;
        }
        _cleanup_(node_vm_unlockp) _unused_ node_vm_t *locked = node_vm_lock(vm);
        http_reply_json(reply, 200, node_supervise_describe(n, vm, true));
}

static void h_console(const http_request_t *req, http_reply_t *reply) {
        node_t *n = req->userdata;
        if (!check_name(req, reply))
                return;
        _cleanup_free_ char *dir = node_vm_dir(n, req->params[0]);
        _cleanup_free_ char *path = xasprintf("%s/run/console.log", dir);
        _cleanup_free_ char *content = NULL;
        size_t len = 0;
        const size_t tail = 64 * 1024;
        const char *upgrade = http_request_header(req, "Upgrade");
        if (upgrade && streq(upgrade, STREAM_CONSOLE_PROTOCOL)) {
                /* the VM's console, shared with its other clients; this one first sees the last
                 * lines of output, so the user knows where the console is */
                _cleanup_free_ char *sock = xasprintf("%s/run/console.sock", dir), *msg = NULL;
                console_target_t target = { .sock = sock, .pid = console_pid(n, req->params[0]) };
                node_console_client_t *cl = NULL;
                int r = target.pid > 0 ? node_console_attach(&n->consoles, req->params[0], target.pid, path,
                                                             console_open, &target, &cl, &msg)
                                       : -ESRCH;
                if (r == -EAGAIN)
                        http_reply_errno(reply, r, "%s", msg);
                else if (r < 0)
                        http_reply_error(reply, 409, "illegal_transition", "vm \"%s\" is not running on this RM",
                                         req->params[0]);
                else
                        http_reply_upgrade(reply, STREAM_CONSOLE_PROTOCOL, console_stream, cl);
                return;
        }
        if (file_read_tail_safe(path, tail, &content, &len) < 0) {
                http_reply_error(reply, 404, "not_found", "vm \"%s\" has no console log on this RM", req->params[0]);
                return;
        }
        http_reply_text(reply, 200, content);
}

static void vnc_stream(void *data, int fd, const char *extra, size_t extra_len) {
        int vnc_fd = (int)(intptr_t)data;
        if (extra_len > 0)
                stream_write_all(vnc_fd, extra, extra_len);
        stream_splice(fd, vnc_fd);
        close(vnc_fd);
}

/* GET /v1/vms/:name/vnc with Upgrade: vmx-vnc (the Oracle only): the VM's display, QEMU's VNC
 * server on the UNIX socket of its run directory, as a byte stream. */
static void h_vnc(const http_request_t *req, http_reply_t *reply) {
        node_t *n = req->userdata;
        if (!check_name(req, reply))
                return;
        const char *upgrade = http_request_header(req, "Upgrade");
        if (!upgrade || !streq(upgrade, STREAM_VNC_PROTOCOL)) {
                http_reply_error(reply, 400, "invalid", "the display is a stream: Upgrade: %s", STREAM_VNC_PROTOCOL);
                return;
        }
        _cleanup_free_ char *dir = node_vm_dir(n, req->params[0]);
        _cleanup_free_ char *sock = xasprintf("%s/run/vnc.sock", dir);
        int fd = node_console_connect(sock, console_pid(n, req->params[0]), 0);
        if (fd < 0) {
                http_reply_error(reply, 409, "illegal_transition", "vm \"%s\" has no display running on this RM",
                                 req->params[0]);
                return;
        }
        http_reply_upgrade(reply, STREAM_VNC_PROTOCOL, vnc_stream, (void *)(intptr_t)fd);
}

typedef int (*command_fn)(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);

/* Parses the body as a command of kind (node-proto.c) and runs it with fn. */
static void run_command(const http_request_t *req, http_reply_t *reply, node_cmd_kind_t kind, command_fn fn) {
        node_t *n = req->userdata;
        if (!check_name(req, reply))
                return;
        if (!req->body) {
                http_reply_error(reply, 400, "invalid", "command needs a JSON body with a version");
                return;
        }
        json_t *result = NULL;
        _cleanup_free_ char *msg = NULL;
        node_cmd_t cmd;
        int r = node_proto_parse(kind, req->body, req->params[0], n->oracle, &cmd, &msg);
        if (r >= 0)
                r = fn(n, req->params[0], &cmd, &result, &msg);
        if (r < 0) {
                http_reply_errno(reply, r, "%s", msg ? msg : strerror(-r));
                return;
        }
        http_reply_json(reply, 200, result);
}

static void h_run(const http_request_t *q, http_reply_t *r) { run_command(q, r, NODE_CMD_RUN, node_launch_run); }
static void h_save(const http_request_t *q, http_reply_t *r) { run_command(q, r, NODE_CMD_SAVE, node_save_vm); }
static void h_resume(const http_request_t *q, http_reply_t *r) { run_command(q, r, NODE_CMD_RESUME, node_launch_resume); }
static void h_stop(const http_request_t *q, http_reply_t *r) { run_command(q, r, NODE_CMD_STOP, node_save_stop); }
static void h_delete(const http_request_t *q, http_reply_t *r) { run_command(q, r, NODE_CMD_DELETE, node_delete_vm); }
static void h_stage(const http_request_t *q, http_reply_t *r) { run_command(q, r, NODE_CMD_STAGE, node_migrate_stage); }
static void h_receive(const http_request_t *q, http_reply_t *r) {
        run_command(q, r, NODE_CMD_RECEIVE, node_migrate_receive);
}
static void h_live_receive(const http_request_t *q, http_reply_t *r) {
        run_command(q, r, NODE_CMD_LIVE_RECEIVE, node_live_receive);
}
static void h_live_send(const http_request_t *q, http_reply_t *r) { run_command(q, r, NODE_CMD_LIVE_SEND, node_live_send); }
static void h_live_finish(const http_request_t *q, http_reply_t *r) {
        run_command(q, r, NODE_CMD_LIVE_FINISH, node_live_finish);
}
static void h_live_abort(const http_request_t *q, http_reply_t *r) {
        run_command(q, r, NODE_CMD_LIVE_ABORT, node_live_abort);
}
static void h_balloon(const http_request_t *q, http_reply_t *r) {
        run_command(q, r, NODE_CMD_BALLOON, node_balloon_command);
}

static void h_prestage(const http_request_t *req, http_reply_t *reply) {
        node_t *n = req->userdata;
        if (!check_name(req, reply))
                return;
        if (!req->body) {
                http_reply_error(reply, 400, "invalid", "prestage needs a JSON body");
                return;
        }
        _cleanup_free_ char *msg = NULL;
        json_t *result = NULL;
        node_prestage_t p;
        int r = node_prestage_parse(req->body, req->params[0], n->oracle, &p, &msg);
        if (r >= 0)
                r = node_prestage(n, req->params[0], &p, &result, &msg);
        if (r < 0) {
                http_reply_errno(reply, r, "%s", msg ? msg : strerror(-r));
                return;
        }
        http_reply_json(reply, 200, result);
}

/* QUERY of the migration protocol: the methods this node can receive with. */
static void h_methods(const http_request_t *req, http_reply_t *reply) {
        http_reply_json(reply, 200, node_proto_methods());
}

static void h_file(const http_request_t *req, http_reply_t *reply) {
        node_t *n = req->userdata;
        if (!check_name(req, reply))
                return;
        _cleanup_free_ char *path = NULL, *msg = NULL;
        int r = node_migrate_file_path(n, req->params[0], req->params[1], &path, &msg);
        if (r < 0) {
                http_reply_errno(reply, r, "%s", msg);
                return;
        }
        http_reply_file(reply, path);
}

/* The chunk cache, served to other nodes (a migration pulls from its origin RM). */
static void h_chunk(const http_request_t *q, http_reply_t *r) { nest_http_chunk_get(((node_t *)q->userdata)->cache, q, r); }
static void h_chunks_missing(const http_request_t *q, http_reply_t *r) {
        nest_http_chunks_missing(((node_t *)q->userdata)->cache, q, r);
}
static void h_chunks_fetch(const http_request_t *q, http_reply_t *r) {
        nest_http_chunks_fetch(((node_t *)q->userdata)->cache, q, r);
}
static void h_manifest(const http_request_t *q, http_reply_t *r) {
        nest_http_manifest_get(((node_t *)q->userdata)->cache, q, r);
}

const http_route_t node_api_routes[] = {
        { "GET", "/v1/chunks/:id", h_chunk, PERM_NODE, OWNER_NONE },
        { "POST", "/v1/chunks/missing", h_chunks_missing, PERM_NODE, OWNER_NONE },
        { "POST", "/v1/chunks/fetch", h_chunks_fetch, PERM_NODE, OWNER_NONE },
        { "GET", "/v1/manifests/:vm/:version/:file", h_manifest, PERM_NODE, OWNER_NONE },
        { "GET", "/v1/health", h_health, PERM_PUBLIC, OWNER_NONE },
        { "GET", "/v1/vms", h_list, PERM_ORACLE, OWNER_NONE },
        { "GET", "/v1/vms/:name", h_show, PERM_ORACLE, OWNER_NONE },
        { "GET", "/v1/vms/:name/console", h_console, PERM_ORACLE, OWNER_NONE },
        { "GET", "/v1/vms/:name/vnc", h_vnc, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/run", h_run, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/save", h_save, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/resume", h_resume, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/stop", h_stop, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/delete", h_delete, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/stage", h_stage, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/receive", h_receive, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/live-receive", h_live_receive, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/live-send", h_live_send, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/live-finish", h_live_finish, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/live-abort", h_live_abort, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/balloon", h_balloon, PERM_ORACLE, OWNER_NONE },
        { "POST", "/v1/vms/:name/prestage", h_prestage, PERM_ORACLE, OWNER_NONE },
        { "GET", "/v1/vms/:name/files/:file", h_file, PERM_NODE, OWNER_NONE },
        { "GET", "/v1/migrate/methods", h_methods, PERM_ORACLE, OWNER_NONE },
        { NULL },
};
