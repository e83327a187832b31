/* The guest agent channel and the balloon of the QEMU driver (see vmm.h).
 *
 * Agent: QEMU exposes the guest's virtio-serial port "vmx.agent" as the UNIX socket
 * RUN/agent.sock, a chardev server that serves one client at a time (others wait in its
 * listen backlog). A call connects, sends one line "ID REQUEST\n" and reads lines until the
 * one that starts with "ID ", then disconnects: no connection outlives a call, so there is
 * nothing to re-establish after a restore, a migration or a node restart. The guest side and
 * the protocol are guest/tiny-http/agent and guest/tiny-http/README.md.
 * Why ids: a reply the guest writes after its caller gave up stays buffered in the guest (a
 * virtio-serial write blocks while no host end is connected) and comes out on the next
 * connection, which must recognise it as not its own and skip it.
 *
 * Balloon: QMP "balloon" and "query-balloon". TODO: their JSON is built and read here with
 * qmp_command_send() for now; it belongs in qmp-commands.c (STYLE.md, protocols apart from
 * logic), with a canned-reply test in tests/unit/test-qmp.c. */
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/log.h"
#include "base/util.h"
#include "vmm/qemu/qemu-internal.h"

#define AGENT_LINE_MAX 4096 /* a longer reply line is a protocol error */

/* Request ids, shared by all handles of the process: global state, since ids must be unique
 * per guest whichever handle calls (and a handle may be freed and attached again). Started from
 * the wall clock so that a restarted node does not reuse the ids of requests whose late
 * replies may still sit in a guest. */
static _Atomic uint64_t agent_next_id;

static uint64_t agent_id_new(void) {
        uint64_t unset = 0;
        (void)atomic_compare_exchange_strong(&agent_next_id, &unset, (uint64_t)time_wall_ms());
        return atomic_fetch_add(&agent_next_id, 1);
}

static bool request_is_valid(const char *request) {
        if (!*request)
                return false;
        for (const char *p = request; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

static int remaining_ms(int64_t deadline) { return (int)MAX(deadline - time_now_ms(), (int64_t)0); }

/* Wait until fd is ready for events or the deadline passes: > 0 ready, -ETIMEDOUT, -errno. */
static int fd_wait(int fd, short events, int64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int n = poll(&p, 1, remaining_ms(deadline));
                if (n > 0)
                        return n;
                if (n == 0)
                        return -ETIMEDOUT;
                if (errno != EINTR)
                        return negative_errno();
        }
}

/* A non-blocking connection to the agent socket. A UNIX stream connect never blocks: it
 * succeeds at once, or fails with EAGAIN while the backlog is full (other calls hold the
 * channel), which is retried until the deadline. */
static int agent_connect(const char *path, int64_t deadline, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        for (;;) {
                _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0)
                        return negative_errno();
                if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
                        *ret_fd = TAKE_FD(fd);
                        return 0;
                }
                if (errno != EAGAIN)
                        return negative_errno();
                if (remaining_ms(deadline) == 0)
                        return -ETIMEDOUT;
                time_sleep_ms(MIN(remaining_ms(deadline), 10));
        }
}

static int agent_send(int fd, const char *line, size_t len, int64_t deadline) {
        while (len > 0) {
                ssize_t n = send(fd, line, len, MSG_NOSIGNAL);
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return negative_errno();
                if (n < 0) {
                        int r = fd_wait(fd, POLLOUT, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                line += n;
                len -= (size_t)n;
        }
        return 0;
}

/* One reply line (NUL-terminated, without newline) that starts with "ID ": 0 for "ok [TEXT]",
 * -EPROTO for "error [MESSAGE]", with TEXT or MESSAGE (malloc'd, made printable UTF-8, since
 * the guest is not trusted) in *ret_text; -EBADMSG for anything else. */
static int agent_reply_parse(char *rest, char **ret_text) {
        for (char *p = rest; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
        utf8_sanitize(rest);
        bool ok = str_startswith(rest, "ok");
        if (!ok && !str_startswith(rest, "error"))
                return -EBADMSG;
        rest += ok ? 2 : 5;
        if (*rest && *rest != ' ')
                return -EBADMSG; /* "okay", "errors" */
        *ret_text = xstrdup(*rest ? rest + 1 : "");
        return ok ? 0 : -EPROTO;
}

/* Read lines from fd until the reply to id, skipping the replies to older requests. Returns as
 * agent_reply_parse(), or -ETIMEDOUT, -ECONNRESET (QEMU closed the channel), -EMSGSIZE. */
static int agent_reply_read(const char *vm_name, int fd, uint64_t id, int64_t deadline, char **ret_text) {
        char prefix[32];
        int plen = snprintf(prefix, sizeof prefix, "%" PRIu64 " ", id);
        char buf[AGENT_LINE_MAX];
        size_t len = 0;
        for (;;) {
                char *nl;
                while ((nl = memchr(buf, '\n', len))) {
                        *nl = 0;
                        if (strncmp(buf, prefix, (size_t)plen) == 0)
                                return agent_reply_parse(buf + plen, ret_text);
                        log_debug("vm %s: guest agent: skipped a late reply to an earlier call (%.*s)", vm_name,
                                  (int)strspn(buf, "0123456789"), buf);
                        len -= (size_t)(nl + 1 - buf);
                        memmove(buf, nl + 1, len);
                }
                if (len == AGENT_LINE_MAX)
                        return -EMSGSIZE;
                int r = fd_wait(fd, POLLIN, deadline);
                if (r < 0)
                        return r;
                ssize_t n = recv(fd, buf + len, AGENT_LINE_MAX - len, 0);
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return negative_errno();
                if (n > 0)
                        len += (size_t)n;
        }
}

/* See vmm.h. Also on -EPROTO *ret_reply is set (the guest's message, malloc'd); on other
 * failures it is untouched. -EINVAL for an empty request or one with a newline or another
 * control character, or timeout_ms <= 0; -ESRCH when QEMU has died. Every failure is logged
 * here, naming only the request's first word (the arguments may be secrets, e.g. a seed). */
int qemu_agent_call(vmm_vm_t *v, const char *request, int timeout_ms, char **ret_reply) {
        qemu_vm_t *vm = qemu_vm_from(v);
        if (!request || !ret_reply || timeout_ms <= 0 || !request_is_valid(request)) {
                log_error("vm %s: invalid guest agent request (empty, control characters or no timeout)", vm->name);
                return -EINVAL;
        }
        int64_t t0 = time_now_ms(), deadline = t0 + timeout_ms;
        uint64_t id = agent_id_new();
        int cmd_len = (int)strcspn(request, " ");
        _cleanup_free_ char *line = xasprintf("%" PRIu64 " %s\n", id, request);
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -1;

        int r = agent_connect(vm->agent_path, deadline, &fd);
        /* the socket is found by path in a directory a confined QEMU owns: it must be its own */
        pid_t peer = 0;
        if (r >= 0 && (r = socket_peer_pid(fd, &peer)) >= 0 && peer != qemu_process_pid(vm->proc)) {
                log_error("vm %s: %s belongs to pid %d, not to its QEMU", vm->name, vm->agent_path, (int)peer);
                return -EPERM;
        }
        if (r >= 0)
                r = agent_send(fd, line, strlen(line), deadline);
        if (r >= 0)
                r = agent_reply_read(vm->name, fd, id, deadline, &text);
        if (r == 0) {
                log_debug("vm %s: guest agent answered %.*s in %" PRId64 " ms", vm->name, cmd_len, request,
                          time_now_ms() - t0);
                *ret_reply = TAKE_PTR(text);
                return 0;
        }
        if (r == -EPROTO) {
                log_warn("vm %s: guest agent refused %.*s: %s", vm->name, cmd_len, request, text);
                *ret_reply = TAKE_PTR(text);
                return r;
        }
        if (r == -ETIMEDOUT) {
                log_warn("vm %s: guest agent did not answer %.*s within %d ms (no agent running?)", vm->name, cmd_len,
                         request, timeout_ms);
                return r;
        }
        if (!qemu_process_alive(vm->proc)) {
                log_error("vm %s: guest agent %.*s: QEMU is gone", vm->name, cmd_len, request);
                return -ESRCH;
        }
        log_error("vm %s: guest agent %.*s via %s failed: %s", vm->name, cmd_len, request, vm->agent_path,
                  r == -EBADMSG ? "malformed reply" : strerror(-r));
        return r;
}

int qemu_balloon_set(vmm_vm_t *v, uint64_t target_bytes) {
        qemu_vm_t *vm = qemu_vm_from(v);
        if (target_bytes == 0 || target_bytes > INT64_MAX) {
                log_error("vm %s: invalid balloon target %" PRIu64 " bytes", vm->name, target_bytes);
                return -EINVAL;
        }
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:I}", "value", (json_int_t)target_bytes);
        qmp_error_t err = { 0 };
        int r = qmp_command_send(vm->qmp, "balloon", args, -1, QEMU_CMD_TIMEOUT_MS, &err, NULL);
        if (r < 0) {
                _cleanup_free_ char *what = xasprintf("balloon to %" PRIu64 " bytes", target_bytes);
                return qemu_op_fail(vm, what, r, &err);
        }
        log_debug("vm %s: balloon target %" PRIu64 " bytes", vm->name, target_bytes);
        return 0;
}

int qemu_balloon_get(vmm_vm_t *v, uint64_t *ret_actual_bytes) {
        qemu_vm_t *vm = qemu_vm_from(v);
        _cleanup_(json_decrefp) json_t *ret = NULL;
        qmp_error_t err = { 0 };
        int r = qmp_command_send(vm->qmp, "query-balloon", NULL, -1, QEMU_CMD_TIMEOUT_MS, &err, &ret);
        json_t *actual = r >= 0 ? json_object_get(ret, "actual") : NULL;
        if (r >= 0 && (!json_is_integer(actual) || json_integer_value(actual) < 0)) {
                qmp_error_set(&err, "", "query-balloon: no valid \"actual\" in the reply");
                r = -EBADMSG;
        }
        if (r < 0)
                return qemu_op_fail(vm, "query-balloon", r, &err);
        *ret_actual_bytes = (uint64_t)json_integer_value(actual);
        return 0;
}
