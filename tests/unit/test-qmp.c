/* Unit tests for the QMP transport (src/vmm/qemu/qmp.c) and the command layer
 * (qmp-commands.c), against a scripted fake QEMU on a socketpair in a thread: greeting,
 * capabilities, id matching with interleaved events and stale replies, error classes,
 * garbage, partial and batched reads, a peer closing mid-reply, timeouts, fd passing. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "base/util.h"
#include "tap.h"
#include "vmm/qemu/qmp-commands.h"
#include "vmm/qemu/qmp.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, \"capabilities\": [\"oob\"]}}\r\n"
#define CAPS_OK "{\"return\": {}, \"id\": \"%ID%\"}\r\n"
#define EVENT(name) "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"" name "\"}\r\n"

/* One exchange of the fake QEMU: read a command (when expect is set), then write reply. */
typedef struct step {
        const char *expect; /* substring the command must contain; NULL: write without reading */
        const char *reply;  /* "%ID%" becomes the command's id; NULL: write nothing */
        int delay_ms;       /* before writing */
        size_t chunk;       /* write in chunks of this size; 0: all at once */
        bool close_after;   /* then close the connection and stop */
        bool want_fd;       /* the command must carry an fd (SCM_RIGHTS) */
} step_t;

typedef struct peer {
        int fd;
        const step_t *steps;
        size_t n;
        pthread_t thread;
        int failures;
        char fd_content[32]; /* what the passed fd contained */
} peer_t;

/* Read one line with recvmsg byte by byte, catching an SCM_RIGHTS fd. */
static int peer_read_line(int fd, char *buf, size_t size, int *ret_fd) {
        size_t n = 0;
        *ret_fd = -1;
        while (n + 1 < size) {
                char c;
                union {
                        char buf[CMSG_SPACE(sizeof(int))];
                        struct cmsghdr align;
                } control;
                struct iovec iov = { .iov_base = &c, .iov_len = 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                                     .msg_controllen = sizeof control.buf };
                ssize_t k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                if (k <= 0)
                        return -1;
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                                memcpy(ret_fd, CMSG_DATA(cm), sizeof(int));
                if (c == '\n')
                        break;
                buf[n++] = c;
        }
        buf[n] = 0;
        return 0;
}

static char *replace_id(const char *reply, const char *id) {
        _cleanup_free_ char *out = xstrdup("");
        const char *p = reply, *m;
        while ((m = strstr(p, "%ID%"))) {
                char *n = xasprintf("%s%.*s%s", out, (int)(m - p), p, id);
                free(out);
                out = n;
                p = m + 4;
        }
        char *n = xasprintf("%s%s", out, p);
        return n;
}

static void *peer_main(void *arg) {
        peer_t *peer = arg;
        for (size_t i = 0; i < peer->n; i++) {
                const step_t *s = &peer->steps[i];
                char id[64] = "";
                if (s->expect) {
                        char line[4096];
                        int passed = -1;
                        if (peer_read_line(peer->fd, line, sizeof line, &passed) < 0) {
                                peer->failures++;
                                break;
                        }
                        if (!strstr(line, s->expect)) {
                                fprintf(stderr, "peer: expected %s in %s\n", s->expect, line);
                                peer->failures++;
                        }
                        json_t *j = json_loads(line, 0, NULL);
                        const char *jid = json_string_value(json_object_get(j, "id"));
                        snprintf(id, sizeof id, "%s", jid ? jid : "");
                        json_decref(j);
                        if (s->want_fd != (passed >= 0))
                                peer->failures++;
                        if (passed >= 0) {
                                ssize_t k = pread(passed, peer->fd_content, sizeof peer->fd_content - 1, 0);
                                if (k > 0)
                                        peer->fd_content[k] = 0;
                                close(passed);
                        }
                }
                if (s->delay_ms)
                        time_sleep_ms(s->delay_ms);
                if (s->reply) {
                        _cleanup_free_ char *out = replace_id(s->reply, id);
                        size_t len = strlen(out), chunk = s->chunk ? s->chunk : len;
                        for (size_t off = 0; off < len; off += chunk) {
                                if (send(peer->fd, out + off, MIN(chunk, len - off), MSG_NOSIGNAL) < 0)
                                        break;
                                if (s->chunk)
                                        time_sleep_ms(1);
                        }
                }
                if (s->close_after)
                        break;
        }
        shutdown(peer->fd, SHUT_RDWR);
        return NULL;
}

/* Start a fake QEMU running steps; *ret_client is the client's end of the socketpair. */
static void peer_start(peer_t *peer, const step_t *steps, size_t n, int *ret_client) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        *peer = (peer_t){ .fd = sv[1], .steps = steps, .n = n };
        pthread_create(&peer->thread, NULL, peer_main, peer);
        *ret_client = sv[0];
}

static int peer_finish(peer_t *peer) {
        pthread_join(peer->thread, NULL);
        close(peer->fd);
        return peer->failures;
}

/* Connect a client through the greeting and capabilities, then the given steps. */
#define HANDSHAKE { .reply = GREETING }, { .expect = "\"qmp_capabilities\"", .reply = CAPS_OK }

static void test_handshake_ids_events(void) {
        static const step_t steps[] = {
                HANDSHAKE,
                { .expect = "\"query-status\"",
                  .reply = EVENT("STOP") "{\"return\": {\"status\": \"paused\", \"running\": false}, \"id\": \"stale-1\"}\r\n"
                           "\r\n" EVENT("RESUME")
                           "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, \"id\": \"%ID%\"}\r\n" },
                { .expect = "\"stop\"", .reply = "{\"return\": {}, \"id\": \"%ID%\"}\r\n" EVENT("STOP") },
                { .delay_ms = 400 }, /* stay connected a while, then close */
        };
        peer_t peer;
        int fd;
        peer_start(&peer, steps, ELEMENTSOF(steps), &fd);
        qmp_t *q = NULL;
        qmp_error_t err = { 0 };
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == 0);
        qmp_status_t st = { 0 };
        CHECK(qmp_cmd_query_status(q, 2000, &err, &st) == 0);
        CHECK(st.running && st.state == QMP_RUN_STATE_RUNNING);
        CHECK(qmp_cmd_stop(q, 2000, &err) == 0);
        /* events seen while waiting for replies were queued, in order */
        json_t *ev = NULL;
        CHECK(qmp_event_wait(q, "RESUME", 1000, &err, &ev) == 0);
        CHECK_STREQ(json_string_value(json_object_get(ev, "event")), "RESUME");
        json_decref(ev);
        CHECK(qmp_event_wait(q, "STOP", 1000, &err, NULL) == 0);
        /* the second STOP may still be in flight: waiting reads it */
        CHECK(qmp_event_wait(q, "STOP", 1000, &err, NULL) == 0);
        CHECK(qmp_event_wait(q, "STOP", 100, &err, NULL) == -ETIMEDOUT);
        /* then the peer hangs up */
        CHECK(qmp_event_wait(q, "STOP", 2000, &err, NULL) == -ECONNRESET);
        CHECK(qmp_event_wait(q, "STOP", 2000, &err, NULL) == -ENOTCONN);
        CHECK(peer_finish(&peer) == 0);
        qmp_free(q);
}

static void test_error_classes(void) {
        static const step_t steps[] = {
                HANDSHAKE,
                { .expect = "\"bogus\"",
                  .reply = "{\"id\": \"%ID%\", \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command bogus has not been found\"}}\r\n" },
                { .expect = "\"cont\"",
                  .reply = "{\"id\": \"%ID%\", \"error\": {\"class\": \"GenericError\", \"desc\": \"Migration is not finalized yet\"}}\r\n" },
                { .expect = "\"x\"", .reply = "{\"id\": \"%ID%\", \"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"no disk\"}}\r\n" },
                { .expect = "\"y\"", .reply = "{\"id\": \"%ID%\", \"error\": {\"class\": \"SomethingNew\"}}\r\n" },
                { .expect = "\"z\"", .reply = "{\"id\": \"%ID%\", \"error\": \"just a string\"}\r\n" },
                /* QEMU omits the id when it cannot parse the command: still our reply */
                { .expect = "\"w\"", .reply = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n" },
                { .expect = "\"v\"", .reply = "{\"id\": \"%ID%\", \"return\": [1, 2]}\r\n" },
        };
        peer_t peer;
        int fd;
        peer_start(&peer, steps, ELEMENTSOF(steps), &fd);
        qmp_t *q = NULL;
        qmp_error_t err = { 0 };
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == 0);
        CHECK(qmp_command_send(q, "bogus", NULL, -1, 2000, &err, NULL) == -EOPNOTSUPP);
        CHECK_STREQ(err.klass, "CommandNotFound");
        CHECK_STREQ(err.desc, "The command bogus has not been found");
        CHECK(qmp_cmd_cont(q, 2000, &err) == -EIO);
        CHECK_STREQ(err.desc, "Migration is not finalized yet");
        CHECK(qmp_command_send(q, "x", NULL, -1, 2000, &err, NULL) == -ENODEV);
        CHECK(qmp_command_send(q, "y", NULL, -1, 2000, &err, NULL) == -EIO);
        CHECK_STREQ(err.klass, "SomethingNew");
        CHECK(qmp_command_send(q, "z", NULL, -1, 2000, &err, NULL) == -EBADMSG);
        CHECK(qmp_command_send(q, "w", NULL, -1, 2000, &err, NULL) == -EIO);
        json_t *ret = NULL;
        CHECK(qmp_command_send(q, "v", NULL, -1, 2000, &err, &ret) == 0);
        CHECK(json_is_array(ret) && json_array_size(ret) == 2);
        json_decref(ret);
        CHECK(peer_finish(&peer) == 0);
        qmp_free(q);
}

static void test_partial_reads(void) {
        /* the reply trickles in one byte at a time, then two messages arrive in one write */
        static const step_t steps[] = {
                { .reply = GREETING, .chunk = 7 },
                { .expect = "\"qmp_capabilities\"", .reply = CAPS_OK, .chunk = 1 },
                { .expect = "\"query-migrate\"",
                  .reply = EVENT("MIGRATION") "{\"return\": {\"status\": \"active\", \"ram\": {\"transferred\": 1234, \"total\": 268435456, \"remaining\": 99}}, \"id\": \"%ID%\"}\r\n" EVENT("X"),
                  .chunk = 1 },
                { .expect = "\"query-blockstats\"",
                  .reply = "{\"return\": [{\"device\": \"\", \"stats\": {\"rd_bytes\": 10, \"wr_bytes\": 20}},"
                           " {\"stats\": {\"rd_bytes\": 1, \"wr_bytes\": 2}}], \"id\": \"%ID%\"}\r\n" },
        };
        peer_t peer;
        int fd;
        peer_start(&peer, steps, ELEMENTSOF(steps), &fd);
        qmp_t *q = NULL;
        qmp_error_t err = { 0 };
        CHECK(qmp_open_fd(fd, 5000, &err, &q) == 0);
        qmp_migrate_info_t mi;
        CHECK(qmp_cmd_query_migrate(q, 5000, &err, &mi) == 0);
        CHECK(mi.status == QMP_MIGRATE_ACTIVE && mi.transferred_bytes == 1234 && mi.total_bytes == 268435456 &&
              mi.remaining_bytes == 99);
        qmp_blockstats_t bs;
        CHECK(qmp_cmd_query_blockstats(q, 5000, &err, &bs) == 0);
        CHECK(bs.rd_bytes == 11 && bs.wr_bytes == 22);
        CHECK(qmp_event_wait(q, "MIGRATION", 0, &err, NULL) == 0);
        CHECK(qmp_event_wait(q, "X", 1000, &err, NULL) == 0);
        CHECK(peer_finish(&peer) == 0);
        qmp_free(q);
}

static void test_garbage(void) {
        static const step_t steps[] = {
                HANDSHAKE,
                { .expect = "\"query-status\"", .reply = "{\"return\": {\"status\": \x01\x02garbage\r\n" },
        };
        peer_t peer;
        int fd;
        peer_start(&peer, steps, ELEMENTSOF(steps), &fd);
        qmp_t *q = NULL;
        qmp_error_t err = { 0 };
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == 0);
        qmp_status_t st;
        CHECK(qmp_cmd_query_status(q, 2000, &err, &st) == -EBADMSG);
        CHECK(str_startswith(err.desc, "malformed QMP message"));
        /* the stream is out of step: the connection stays broken */
        CHECK(qmp_cmd_stop(q, 2000, &err) == -ENOTCONN);
        CHECK(qmp_event_wait(q, "STOP", 100, &err, NULL) == -ENOTCONN);
        CHECK(peer_finish(&peer) == 0);
        qmp_free(q);

        /* valid JSON, wrong shapes */
        static const step_t steps2[] = {
                HANDSHAKE,
                { .expect = "\"query-status\"", .reply = "[1, 2, 3]\r\n" },
        };
        peer_start(&peer, steps2, ELEMENTSOF(steps2), &fd);
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == 0);
        CHECK(qmp_cmd_query_status(q, 2000, &err, &st) == -EBADMSG);
        CHECK(peer_finish(&peer) == 0);
        qmp_free(q);

        static const step_t steps3[] = {
                HANDSHAKE,
                { .expect = "\"query-status\"", .reply = "{\"return\": {\"status\": 7, \"running\": \"yes\"}, \"id\": \"%ID%\"}\r\n" },
                { .expect = "\"query-migrate\"", .reply = "{\"return\": {\"status\": \"completed\", \"ram\": {\"transferred\": -5}}, \"id\": \"%ID%\"}\r\n" },
                { .expect = "\"query-blockstats\"", .reply = "{\"return\": {\"not\": \"an array\"}, \"id\": \"%ID%\"}\r\n" },
                { .expect = "\"query-status\"", .reply = "{\"return\": {\"status\": \"brand-new-state\", \"running\": false}, \"id\": \"%ID%\"}\r\n" },
        };
        peer_start(&peer, steps3, ELEMENTSOF(steps3), &fd);
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == 0);
        CHECK(qmp_cmd_query_status(q, 2000, &err, &st) == -EBADMSG);
        qmp_migrate_info_t mi;
        CHECK(qmp_cmd_query_migrate(q, 2000, &err, &mi) == -EBADMSG);
        qmp_blockstats_t bs;
        CHECK(qmp_cmd_query_blockstats(q, 2000, &err, &bs) == -EBADMSG);
        /* a malformed reply is not a broken stream: the connection goes on */
        CHECK(qmp_cmd_query_status(q, 2000, &err, &st) == 0 && st.state == QMP_RUN_STATE_UNKNOWN && !st.running);
        CHECK(peer_finish(&peer) == 0);
        qmp_free(q);
}

static void test_peer_closes(void) {
        static const step_t steps[] = {
                HANDSHAKE,
                { .expect = "\"query-status\"", .reply = "{\"return\": {\"sta", .close_after = true },
        };
        peer_t peer;
        int fd;
        peer_start(&peer, steps, ELEMENTSOF(steps), &fd);
        qmp_t *q = NULL;
        qmp_error_t err = { 0 };
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == 0);
        qmp_status_t st;
        CHECK(qmp_cmd_query_status(q, 2000, &err, &st) == -ECONNRESET);
        CHECK(qmp_cmd_query_status(q, 2000, &err, &st) == -ENOTCONN);
        CHECK(peer_finish(&peer) == 0);
        qmp_free(q);

        /* quit: QEMU may close the socket instead of answering */
        static const step_t steps2[] = {
                HANDSHAKE,
                { .expect = "\"quit\"", .close_after = true },
        };
        peer_start(&peer, steps2, ELEMENTSOF(steps2), &fd);
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == 0);
        CHECK(qmp_cmd_quit(q, 2000, &err) == 0);
        CHECK(peer_finish(&peer) == 0);
        qmp_free(q);
}

static void test_timeout_then_stale_reply(void) {
        static const step_t steps[] = {
                HANDSHAKE,
                /* answers stop only after the client gave up on it */
                { .expect = "\"stop\"", .delay_ms = 300, .reply = "{\"return\": {}, \"id\": \"%ID%\"}\r\n" },
                { .expect = "\"query-status\"", .reply = "{\"return\": {\"status\": \"paused\", \"running\": false}, \"id\": \"%ID%\"}\r\n" },
        };
        peer_t peer;
        int fd;
        peer_start(&peer, steps, ELEMENTSOF(steps), &fd);
        qmp_t *q = NULL;
        qmp_error_t err = { 0 };
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == 0);
        int64_t t0 = time_now_ms();
        CHECK(qmp_cmd_stop(q, 100, &err) == -ETIMEDOUT);
        int64_t took = time_now_ms() - t0;
        CHECK(took >= 90 && took < 1000);
        qmp_status_t st;
        CHECK(qmp_cmd_query_status(q, 2000, &err, &st) == 0 && st.state == QMP_RUN_STATE_PAUSED);
        CHECK(peer_finish(&peer) == 0);
        qmp_free(q);
}

static void test_bad_greeting(void) {
        static const step_t steps[] = { { .reply = "{\"hello\": 1}\r\n" } };
        peer_t peer;
        int fd;
        peer_start(&peer, steps, ELEMENTSOF(steps), &fd);
        qmp_t *q = NULL;
        qmp_error_t err = { 0 };
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == -EBADMSG && !q);
        CHECK(peer_finish(&peer) == 0);

        static const step_t silent[] = { { .delay_ms = 300 } };
        peer_start(&peer, silent, ELEMENTSOF(silent), &fd);
        CHECK(qmp_open_fd(fd, 100, &err, &q) == -ETIMEDOUT && !q);
        CHECK(peer_finish(&peer) == 0);

        static const step_t refused[] = {
                { .reply = GREETING },
                { .expect = "\"qmp_capabilities\"",
                  .reply = "{\"id\": \"%ID%\", \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Capabilities negotiation is already complete\"}}\r\n" },
        };
        peer_start(&peer, refused, ELEMENTSOF(refused), &fd);
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == -EOPNOTSUPP && !q);
        CHECK(peer_finish(&peer) == 0);
}

static void test_overlong_line(void) {
        static char *big;
        big = xcalloc(17u << 20, 1);
        memset(big, 'x', (17u << 20) - 1);
        step_t steps[] = { { .reply = big } };
        peer_t peer;
        int fd;
        peer_start(&peer, steps, ELEMENTSOF(steps), &fd);
        qmp_t *q = NULL;
        qmp_error_t err = { 0 };
        CHECK(qmp_open_fd(fd, 5000, &err, &q) == -EMSGSIZE && !q); /* closes fd: the peer's send fails */
        CHECK(peer_finish(&peer) == 0);
        free(big);
}

static void test_fd_passing_and_args(void) {
        static const step_t steps[] = {
                HANDSHAKE,
                { .expect = "\"fdname\":\"vmx-save\"", .want_fd = true, .reply = "{\"return\": {}, \"id\": \"%ID%\"}\r\n" },
                { .expect = "\"uri\":\"fd:vmx-save\"", .reply = "{\"return\": {}, \"id\": \"%ID%\"}\r\n" },
                { .expect = "{\"capability\":\"x-ignore-shared\",\"state\":true}", .reply = "{\"return\": {}, \"id\": \"%ID%\"}\r\n" },
                { .expect = "\"max-bandwidth\":1099511627776", .reply = "{\"return\": {}, \"id\": \"%ID%\"}\r\n" },
                { .expect = "\"migrate-incoming\"", .reply = "{\"return\": {}, \"id\": \"%ID%\"}\r\n" },
        };
        char path[] = "/tmp/vmx-test-qmp-XXXXXX";
        int file = mkstemp(path);
        CHECK(file >= 0);
        CHECK(write(file, "state-bytes", 11) == 11);
        unlink(path);
        peer_t peer;
        int fd;
        peer_start(&peer, steps, ELEMENTSOF(steps), &fd);
        qmp_t *q = NULL;
        qmp_error_t err = { 0 };
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == 0);
        CHECK(qmp_cmd_getfd(q, file, "vmx-save", 2000, &err) == 0);
        CHECK(qmp_cmd_migrate(q, "fd:vmx-save", 2000, &err) == 0);
        CHECK(qmp_cmd_migrate_set_capability(q, "x-ignore-shared", true, 2000, &err) == 0);
        CHECK(qmp_cmd_migrate_set_max_bandwidth(q, UINT64_C(1) << 40, 2000, &err) == 0);
        CHECK(qmp_cmd_migrate_incoming(q, "fd:x", 2000, &err) == 0);
        CHECK(peer_finish(&peer) == 0);
        CHECK_STREQ(peer.fd_content, "state-bytes");
        /* our copy stays ours */
        CHECK(fcntl(file, F_GETFD) >= 0);
        close(file);
        qmp_free(q);
}

/* The JSON of the live migration's TLS commands, as QEMU 7.2 takes them. */
static void test_live_tls_args(void) {
#define OK "{\"return\": {}, \"id\": \"%ID%\"}\r\n"
        static const step_t steps[] = {
                HANDSHAKE,
                { .expect = "\"qom-type\":\"tls-creds-x509\",\"id\":\"mig-tls\",\"endpoint\":\"server\","
                            "\"dir\":\"/run/vm/tls-migrate\",\"verify-peer\":true",
                  .reply = OK },
                { .expect = "\"endpoint\":\"client\"", .reply = OK },
                { .expect = "\"qom-type\":\"authz-simple\",\"id\":\"mig-authz\",\"identity\":\"OU=migration,CN=rm1\"",
                  .reply = OK },
                { .expect = "\"addr\":{\"type\":\"inet\",\"data\":{\"host\":\"10.0.0.2\",\"port\":\"7777\"}},"
                            "\"tls-creds\":\"mig-tls\",\"tls-authz\":\"mig-authz\"",
                  .reply = OK },
                { .expect = "\"server\":{\"type\":\"inet\",\"host\":\"10.0.0.2\",\"port\":\"7777\"},\"export\":\"disk0\","
                            "\"tls-creds\":\"mig-tls\",\"tls-hostname\":\"rm2.migration.vmatrix\"",
                  .reply = OK },
                { .expect = "\"arguments\":{\"tls-creds\":\"mig-tls\",\"tls-hostname\":"
                            "\"rm2.migration.vmatrix\",\"tls-authz\":\"\"}",
                  .reply = OK },
                { .expect = "\"query-migrate-parameters\"",
                  .reply = "{\"return\": {\"tls-authz\": \"mig-authz\", \"downtime-limit\": 300, \"tls-creds\": "
                           "\"mig-tls\", \"tls-hostname\": \"\"}, \"id\": \"%ID%\"}\r\n" },
                { .expect = "\"arguments\":{\"id\":\"mig-tls\"}", .reply = OK },
        };
#undef OK
        peer_t peer;
        int fd;
        peer_start(&peer, steps, ELEMENTSOF(steps), &fd);
        qmp_t *q = NULL;
        qmp_error_t err = { 0 };
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == 0);
        CHECK(qmp_cmd_object_add_tls_creds(q, "mig-tls", true, "/run/vm/tls-migrate", 2000, &err) == 0);
        CHECK(qmp_cmd_object_add_tls_creds(q, "mig-tls", false, "/run/vm/tls-migrate", 2000, &err) == 0);
        CHECK(qmp_cmd_object_add_authz_simple(q, "mig-authz", "OU=migration,CN=rm1", 2000, &err) == 0);
        CHECK(qmp_cmd_nbd_server_start(q, "10.0.0.2", 7777, "mig-tls", "mig-authz", 2000, &err) == 0);
        CHECK(qmp_cmd_blockdev_add_nbd(q, "live-target", "10.0.0.2", 7777, "disk0", "mig-tls", "rm2.migration.vmatrix",
                                       2000, &err) == 0);
        qmp_migrate_tls_t set = { .creds = "mig-tls", .hostname = "rm2.migration.vmatrix" }, got;
        CHECK(qmp_cmd_migrate_set_tls(q, &set, 2000, &err) == 0);
        CHECK(qmp_cmd_query_migrate_tls(q, 2000, &err, &got) == 0);
        CHECK_STREQ(got.creds, "mig-tls");
        CHECK_STREQ(got.authz, "mig-authz");
        CHECK_STREQ(got.hostname, "");
        CHECK(qmp_cmd_object_del(q, "mig-tls", 2000, &err) == 0);
        /* refused before anything is sent */
        CHECK(qmp_cmd_object_add_authz_simple(q, "mig-authz", "", 2000, &err) == -EINVAL);
        CHECK(qmp_cmd_blockdev_add_nbd(q, "t", "10.0.0.2", 1, "disk0", NULL, "x.migration.vmatrix", 2000, &err) ==
              -EINVAL);
        CHECK(peer_finish(&peer) == 0);
        qmp_free(q);

        /* the parser: absent members are "", others are malformed */
        json_t *j = json_loads("{\"downtime-limit\": 300}", 0, NULL);
        CHECK(qmp_parse_migrate_tls(j, &got) == 0 && !*got.creds && !*got.hostname && !*got.authz);
        json_decref(j);
        j = json_loads("{\"tls-creds\": 5}", 0, NULL);
        CHECK(qmp_parse_migrate_tls(j, &got) == -EBADMSG);
        json_decref(j);
        char big[400];
        memset(big, 'a', sizeof big - 1);
        big[sizeof big - 1] = 0;
        j = json_pack("{s:s}", "tls-hostname", big);
        CHECK(qmp_parse_migrate_tls(j, &got) == -EBADMSG);
        json_decref(j);
        CHECK(qmp_parse_migrate_tls(NULL, &got) == -EBADMSG);
}

typedef struct waiter {
        qmp_t *q;
        int result;
} waiter_t;

static void *wait_shutdown(void *arg) {
        waiter_t *w = arg;
        w->result = qmp_event_wait(w->q, "SHUTDOWN", 3000, NULL, NULL);
        return NULL;
}

/* A thread waiting for an event must not keep other threads' commands out. */
static void test_event_wait_concurrent(void) {
        static const step_t steps[] = {
                HANDSHAKE,
                { .expect = "\"query-status\"", .reply = "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": \"%ID%\"}\r\n" },
                { .delay_ms = 200, .reply = EVENT("SHUTDOWN") },
        };
        peer_t peer;
        int fd;
        peer_start(&peer, steps, ELEMENTSOF(steps), &fd);
        qmp_t *q = NULL;
        qmp_error_t err = { 0 };
        CHECK(qmp_open_fd(fd, 2000, &err, &q) == 0);
        waiter_t w = { .q = q, .result = 1 };
        pthread_t t;
        pthread_create(&t, NULL, wait_shutdown, &w);
        time_sleep_ms(20);
        qmp_status_t st;
        int64_t t0 = time_now_ms();
        CHECK(qmp_cmd_query_status(q, 2000, &err, &st) == 0 && st.running);
        CHECK(time_now_ms() - t0 < 1000);
        pthread_join(t, NULL);
        CHECK(w.result == 0);
        CHECK(peer_finish(&peer) == 0);
        qmp_free(q);
}

typedef struct listener {
        char path[108];
        int delay_ms;
} listener_t;

static void *listen_late(void *arg) {
        listener_t *l = arg;
        time_sleep_ms(l->delay_ms);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, l->path);
        if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 1) < 0)
                abort();
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        static const step_t steps[] = { HANDSHAKE };
        peer_t peer = { .fd = c, .steps = steps, .n = ELEMENTSOF(steps) };
        peer_main(&peer);
        close(c);
        close(s);
        return NULL;
}

static int alive_no(void *userdata) { return -ECHILD; }

static void test_connect(void) {
        char dir[] = "/tmp/vmx-test-qmp-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        listener_t l = { .delay_ms = 150 };
        snprintf(l.path, sizeof l.path, "%s/qmp.sock", dir);
        pthread_t t;
        pthread_create(&t, NULL, listen_late, &l);
        qmp_t *q = NULL;
        qmp_error_t err = { 0 };
        int64_t t0 = time_now_ms();
        CHECK(qmp_connect(l.path, 3000, NULL, NULL, &err, &q) == 0 && q);
        CHECK(time_now_ms() - t0 >= 140);
        pthread_join(t, NULL);
        qmp_free(q);
        q = NULL;

        _cleanup_free_ char *missing = xasprintf("%s/none.sock", dir);
        CHECK(qmp_connect(missing, 100, NULL, NULL, &err, &q) == -ETIMEDOUT && !q);
        CHECK(qmp_connect(missing, 3000, alive_no, NULL, &err, &q) == -ECHILD && !q);
        char longpath[200];
        memset(longpath, 'a', sizeof longpath - 1);
        longpath[sizeof longpath - 1] = 0;
        longpath[0] = '/';
        CHECK(qmp_connect(longpath, 100, NULL, NULL, &err, &q) == -ENAMETOOLONG);
        CHECK(rm_rf(dir) == 0);
}

static void test_reply_check(void) {
        qmp_error_t err = { 0 };
        json_t *j = json_loads("{\"return\": 5}", 0, NULL);
        json_t *ret = NULL;
        CHECK(qmp_reply_check(j, &err, &ret) == 0 && json_integer_value(ret) == 5);
        json_decref(ret);
        json_decref(j);
        j = json_loads("{\"error\": {\"class\": \"KVMMissingCap\", \"desc\": \"d\"}}", 0, NULL);
        CHECK(qmp_reply_check(j, &err, NULL) == -EOPNOTSUPP);
        json_decref(j);
        j = json_loads("{\"error\": {\"class\": \"DeviceNotActive\", \"desc\": \"d\"}}", 0, NULL);
        CHECK(qmp_reply_check(j, &err, NULL) == -ENXIO);
        json_decref(j);
        j = json_loads("{\"error\": {\"class\": 5}}", 0, NULL);
        CHECK(qmp_reply_check(j, &err, NULL) == -EBADMSG);
        json_decref(j);
        CHECK(qmp_reply_check(NULL, &err, NULL) == -EBADMSG);
        CHECK(qmp_reply_check(NULL, NULL, NULL) == -EBADMSG);
}

static void test_parsers(void) {
        qmp_migrate_info_t mi;
        json_t *j = json_loads("{}", 0, NULL);
        CHECK(qmp_parse_migrate_info(j, &mi) == 0 && mi.status == QMP_MIGRATE_NONE);
        json_decref(j);
        j = json_loads("{\"status\": \"failed\", \"error-desc\": \"disk full\"}", 0, NULL);
        CHECK(qmp_parse_migrate_info(j, &mi) == 0 && mi.status == QMP_MIGRATE_FAILED);
        CHECK_STREQ(mi.error_desc, "disk full");
        CHECK(qmp_migrate_status_is_final(mi.status));
        json_decref(j);
        j = json_loads("{\"status\": \"wibble\", \"ram\": 3}", 0, NULL);
        CHECK(qmp_parse_migrate_info(j, &mi) == -EBADMSG);
        json_decref(j);
        j = json_loads("{\"status\": \"wibble\"}", 0, NULL);
        CHECK(qmp_parse_migrate_info(j, &mi) == 0 && mi.status == QMP_MIGRATE_UNKNOWN &&
              !qmp_migrate_status_is_final(mi.status));
        json_decref(j);
        qmp_blockstats_t bs;
        j = json_loads("[]", 0, NULL);
        CHECK(qmp_parse_blockstats(j, &bs) == 0 && bs.rd_bytes == 0 && bs.wr_bytes == 0);
        json_decref(j);
        j = json_loads("[{\"stats\": {\"rd_bytes\": \"1\"}}]", 0, NULL);
        CHECK(qmp_parse_blockstats(j, &bs) == -EBADMSG);
        json_decref(j);
        qmp_status_t st;
        CHECK(qmp_parse_status(NULL, &st) == -EBADMSG);
        CHECK_STREQ(qmp_run_state_to_string(QMP_RUN_STATE_POSTMIGRATE), "postmigrate");
        CHECK_STREQ(qmp_run_state_to_string((qmp_run_state_t)999), "unknown");
        CHECK_STREQ(qmp_migrate_status_to_string(QMP_MIGRATE_COMPLETED), "completed");
}

/* Parsers of the live migration commands, on replies QEMU 7.2 gave. */
static void test_live_parsers(void) {
        qmp_block_job_t job;
        json_t *j = json_loads("[{\"auto-finalize\": true, \"io-status\": \"ok\", \"device\": \"live-mirror\", "
                               "\"busy\": false, \"len\": 65536, \"offset\": 65536, \"status\": \"ready\", "
                               "\"paused\": false, \"speed\": 0, \"ready\": true, \"type\": \"mirror\"}]",
                               0, NULL);
        CHECK(qmp_parse_block_jobs(j, "live-mirror", &job) == 0 && job.found && job.ready && job.offset == 65536 &&
              job.len == 65536);
        CHECK_STREQ(job.status, "ready");
        CHECK(qmp_parse_block_jobs(j, "other", &job) == 0 && !job.found);
        json_decref(j);
        j = json_loads("[]", 0, NULL);
        CHECK(qmp_parse_block_jobs(j, "live-mirror", &job) == 0 && !job.found);
        json_decref(j);
        j = json_loads("[{\"device\": \"live-mirror\", \"ready\": \"yes\", \"status\": \"ready\"}]", 0, NULL);
        CHECK(qmp_parse_block_jobs(j, "live-mirror", &job) == -EBADMSG);
        json_decref(j);
        j = json_loads("[3]", 0, NULL);
        CHECK(qmp_parse_block_jobs(j, "live-mirror", &job) == -EBADMSG);
        json_decref(j);

        qmp_block_job_end_t end;
        j = json_loads("{\"event\": \"BLOCK_JOB_COMPLETED\", \"data\": {\"device\": \"live-mirror\", \"len\": "
                       "65536, \"offset\": 65536, \"speed\": 0, \"type\": \"mirror\"}}",
                       0, NULL);
        CHECK(qmp_parse_block_job_end(j, &end) == 0 && end.offset == 65536 && !*end.error);
        json_decref(j);
        j = json_loads("{\"event\": \"BLOCK_JOB_COMPLETED\", \"data\": {\"len\": 1, \"offset\": 0, \"error\": "
                       "\"Input/output error\"}}",
                       0, NULL);
        CHECK(qmp_parse_block_job_end(j, &end) == 0);
        CHECK_STREQ(end.error, "Input/output error");
        json_decref(j);
        CHECK(qmp_parse_block_job_end(NULL, &end) == -EBADMSG);

        qmp_migrate_times_t t;
        j = json_loads("{\"status\": \"completed\", \"setup-time\": 1, \"downtime\": 48, \"total-time\": 515}", 0,
                       NULL);
        CHECK(qmp_parse_migrate_times(j, &t) == 0 && t.downtime_ms == 48 && t.total_ms == 515 && t.setup_ms == 1);
        json_decref(j);
        j = json_loads("{\"status\": \"active\", \"downtime\": -1}", 0, NULL);
        CHECK(qmp_parse_migrate_times(j, &t) == -EBADMSG);
        json_decref(j);
        j = json_loads("{\"status\": \"pre-switchover\"}", 0, NULL);
        qmp_migrate_info_t mi;
        CHECK(qmp_parse_migrate_info(j, &mi) == 0 && mi.status == QMP_MIGRATE_PRE_SWITCHOVER &&
              !qmp_migrate_status_is_final(mi.status));
        json_decref(j);

        qmp_version_t v;
        j = json_loads("{\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"Debian\"}", 0, NULL);
        CHECK(qmp_parse_version(j, &v) == 0 && v.major == 7 && v.minor == 2 && v.micro == 22);
        json_decref(j);
        j = json_loads("{\"qemu\": \"7.2\"}", 0, NULL);
        CHECK(qmp_parse_version(j, &v) == -EBADMSG);
        json_decref(j);
        bool kvm = true;
        j = json_loads("{\"enabled\": false, \"present\": true}", 0, NULL);
        CHECK(qmp_parse_kvm(j, &kvm) == 0 && !kvm);
        json_decref(j);
        CHECK(qmp_parse_kvm(NULL, &kvm) == -EBADMSG);
}

/* Open fds of this process, to catch leaks. */
static int fd_count(void) {
        int n = 0;
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return -1;
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

int main(void) {
        int fds = fd_count();
        test_handshake_ids_events();
        test_error_classes();
        test_partial_reads();
        test_garbage();
        test_peer_closes();
        test_timeout_then_stale_reply();
        test_bad_greeting();
        test_overlong_line();
        test_fd_passing_and_args();
        test_live_tls_args();
        test_event_wait_concurrent();
        test_connect();
        test_reply_check();
        test_parsers();
        test_live_parsers();
        CHECK(fd_count() == fds); /* every socket, fd and peer closed */
        return tap_finish();
}
