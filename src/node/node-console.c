/* The console multiplexer: the node's attachments to its VMs' serial ports. QEMU's chardev
 * socket (server=on,wait=off) serves one client at a time: a second one connects and gets
 * nothing until the first leaves. So the node holds at most one connection to each VM's
 * console.sock and shares it among every client attached to that VM (issue 13: many consoles,
 * several people on one VM).
 *
 * A console (node_console_t) has
 *   - one reader thread: what QEMU writes goes to every client with a non-blocking send; a
 *     client whose socket would block is dropped (shut down) rather than slowing the others or
 *     making the node buffer without bound;
 *   - its clients, each in its own thread (the HTTP upgrade function's), writing what its
 *     client types to QEMU under the console's write lock, so that two clients' writes do not
 *     interleave within one write.
 * The last client to leave closes the connection to QEMU (QEMU's port is free again); QEMU
 * closing its side (the VM stopped, was killed, moved) ends every client.
 *
 * Lifetime: a console is born with its first client and freed by its last, who joins the
 * reader thread first. Locks: the registry's (node_consoles_t.lock) before a console's lock;
 * the write lock is taken alone. No thread joins another while holding a lock. */
#include "node/node-console.h"

#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/log.h"
#include "base/util.h"
#include "net/stream.h"

struct node_console_client {
        node_console_t *console;
        int fd;                 /* -1 until node_console_client_run; under the console's lock */
        atomic_bool closed;     /* dropped or ended: its socket is shut down, its input ignored */
        node_console_client_t *next;
};

struct node_console {
        node_consoles_t *owner;
        char vm[64];
        int64_t pid;            /* the QEMU it is connected to */
        char *log_path;         /* NULL: no tail */
        int qemu_fd;
        pthread_t reader;
        pthread_mutex_t write_lock; /* one client's write to QEMU at a time */
        pthread_mutex_t lock;   /* guards clients, n_clients, ended */
        node_console_client_t *clients;
        unsigned n_clients;     /* attached or about to be */
        bool ended;             /* out of owner->list: no client joins it any more */
        node_console_t *next;   /* in owner->list, under owner->lock */
};

void node_consoles_init(node_consoles_t *cs) {
        *cs = (node_consoles_t){ .vm_max = NODE_CONSOLE_VM_MAX, .node_max = NODE_CONSOLE_NODE_MAX };
        pthread_mutex_init(&cs->lock, NULL);
        pthread_cond_init(&cs->idle, NULL);
}

/* Drops cl: its socket shut down, so that its thread leaves. Under the console's lock. */
static void client_close(node_console_client_t *cl) {
        if (atomic_exchange(&cl->closed, true))
                return;
        if (cl->fd >= 0)
                shutdown(cl->fd, SHUT_RDWR);
}

/* Takes c out of the registry (no client joins it any more) and closes every client, and with
 * them the connection to QEMU. Under both the registry's lock and c's lock. */
static void console_end(node_console_t *c) {
        if (!c->ended) {
                c->ended = true;
                for (node_console_t **p = &c->owner->list; *p; p = &(*p)->next)
                        if (*p == c) {
                                *p = c->next;
                                break;
                        }
        }
        for (node_console_client_t *cl = c->clients; cl; cl = cl->next)
                client_close(cl);
        shutdown(c->qemu_fd, SHUT_RDWR);
}

/* Sends buf to every client that is still taking it; drops one whose socket would block (or
 * took only part): a console's output does not wait for its slowest client. Under c's lock. */
static void console_fan_out(node_console_t *c, const char *buf, size_t len) {
        for (node_console_client_t *cl = c->clients; cl; cl = cl->next) {
                if (cl->fd < 0 || atomic_load(&cl->closed))
                        continue;
                ssize_t w;
                do
                        w = send(cl->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
                while (w < 0 && errno == EINTR);
                if (w == (ssize_t)len)
                        continue;
                if (w >= 0 || errno == EAGAIN || errno == EWOULDBLOCK)
                        log_info("console of vm %s: a client too slow to take its output is dropped", c->vm);
                client_close(cl);
        }
}

/* The console's reader thread: QEMU's output to every client until QEMU's side ends (the VM
 * stopped, or the last client shut the connection down). */
static void *console_reader(void *arg) {
        node_console_t *c = arg;
        char buf[16384];
        for (;;) {
                ssize_t k = read(c->qemu_fd, buf, sizeof buf);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                pthread_mutex_lock(&c->lock);
                console_fan_out(c, buf, (size_t)k);
                pthread_mutex_unlock(&c->lock);
        }
        pthread_mutex_lock(&c->owner->lock);
        pthread_mutex_lock(&c->lock);
        console_end(c);
        pthread_mutex_unlock(&c->lock);
        pthread_mutex_unlock(&c->owner->lock);
        return NULL;
}

static node_console_t *console_free(node_console_t *c) {
        if (!c)
                return NULL;
        if (c->qemu_fd >= 0)
                close(c->qemu_fd);
        pthread_mutex_destroy(&c->lock);
        pthread_mutex_destroy(&c->write_lock);
        free(c->log_path);
        free(c);
        return NULL;
}

/* A new console of vm on QEMU's connection fd (taken), its reader started; NULL when no thread
 * can be started (-errno in *ret_err). Under the registry's lock. */
static node_console_t *console_new(node_consoles_t *cs, const char *vm, int64_t pid, const char *log_path, int fd,
                                   int *ret_err) {
        node_console_t *c = xcalloc(1, sizeof *c);
        c->owner = cs;
        SET(c->vm, vm);
        c->pid = pid;
        c->log_path = log_path ? xstrdup(log_path) : NULL;
        c->qemu_fd = fd;
        pthread_mutex_init(&c->lock, NULL);
        pthread_mutex_init(&c->write_lock, NULL);
        int r = -pthread_create(&c->reader, NULL, console_reader, c);
        if (r < 0) {
                *ret_err = r;
                return console_free(c);
        }
        return c;
}

/* node_console_attach under the registry's lock. */
static int attach_locked(node_consoles_t *cs, const char *vm, int64_t pid, const char *log_path,
                         node_console_open_fn open_fn, void *userdata, node_console_client_t **ret_client,
                         char **ret_msg) {
        if (cs->stopping) {
                *ret_msg = xstrdup("this RM is stopping");
                return -EAGAIN;
        }
        if (cs->n_clients >= cs->node_max) {
                *ret_msg = xasprintf("this RM has %u consoles attached, the most it takes; try again later",
                                     cs->n_clients);
                return -EAGAIN;
        }
        node_console_t *c = cs->list;
        while (c && !(streq(c->vm, vm) && c->pid == pid))
                c = c->next;
        /* a listed console's n_clients changes under the registry's lock as well as its own */
        if (c && c->n_clients >= cs->vm_max) {
                *ret_msg = xasprintf("vm \"%s\" has %u consoles attached, the most it takes", vm, c->n_clients);
                return -EAGAIN;
        }
        if (!c) {
                int fd = open_fn(userdata);
                if (fd < 0) {
                        *ret_msg = xasprintf("cannot connect to the console of vm \"%s\": %s", vm, strerror(-fd));
                        return fd;
                }
                int r = 0;
                c = console_new(cs, vm, pid, log_path, fd, &r);
                if (!c) {
                        *ret_msg = xasprintf("cannot start the console of vm \"%s\": %s", vm, strerror(-r));
                        return r;
                }
                c->next = cs->list;
                cs->list = c;
                cs->n_consoles++;
        }
        node_console_client_t *cl = xcalloc(1, sizeof *cl);
        cl->console = c;
        cl->fd = -1;
        pthread_mutex_lock(&c->lock);
        cl->next = c->clients;
        c->clients = cl;
        c->n_clients++;
        pthread_mutex_unlock(&c->lock);
        cs->n_clients++;
        *ret_client = cl;
        return 0;
}

int node_console_attach(node_consoles_t *cs, const char *vm, int64_t pid, const char *log_path,
                        node_console_open_fn open_fn, void *userdata, node_console_client_t **ret_client,
                        char **ret_msg) {
        pthread_mutex_lock(&cs->lock);
        int r = attach_locked(cs, vm, pid, log_path, open_fn, userdata, ret_client, ret_msg);
        pthread_mutex_unlock(&cs->lock);
        return r;
}

/* Writes buf to QEMU unless cl was closed meanwhile; one client at a time. -errno when QEMU's
 * side is gone. */
static int console_input(node_console_client_t *cl, const char *buf, size_t len) {
        node_console_t *c = cl->console;
        pthread_mutex_lock(&c->write_lock);
        int r = atomic_load(&cl->closed) ? -ECONNRESET : stream_write_all(c->qemu_fd, buf, len);
        pthread_mutex_unlock(&c->write_lock);
        return r;
}

/* Makes cl a target of the console's output, after the log's tail: both under the console's
 * lock, so that no output falls between them (some may show twice: QEMU writes the log and the
 * socket apart). false when the console has ended or the tail does not fit at once. */
static bool client_start(node_console_client_t *cl, int fd) {
        node_console_t *c = cl->console;
        pthread_mutex_lock(&c->lock);
        bool ok = !c->ended && !atomic_load(&cl->closed);
        if (ok && c->log_path) {
                _cleanup_free_ char *tail = NULL;
                size_t len = 0;
                if (file_read_tail_safe(c->log_path, NODE_CONSOLE_TAIL, &tail, &len) >= 0 && len > 0)
                        ok = send(fd, tail, len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len;
        }
        if (ok)
                cl->fd = fd;
        pthread_mutex_unlock(&c->lock);
        return ok;
}

/* cl leaves its console; the last client frees it (and its connection to QEMU). */
static void client_leave(node_console_client_t *cl) {
        node_console_t *c = cl->console;
        node_consoles_t *cs = c->owner;
        pthread_mutex_lock(&cs->lock);
        pthread_mutex_lock(&c->lock);
        for (node_console_client_t **p = &c->clients; *p; p = &(*p)->next)
                if (*p == cl) {
                        *p = cl->next;
                        break;
                }
        bool last = --c->n_clients == 0;
        if (last)
                console_end(c); /* its reader sees the end of QEMU's side and returns */
        pthread_mutex_unlock(&c->lock);
        cs->n_clients--;
        pthread_cond_broadcast(&cs->idle);
        pthread_mutex_unlock(&cs->lock);
        free(cl);
        if (!last)
                return;
        pthread_join(c->reader, NULL);
        console_free(c);
        pthread_mutex_lock(&cs->lock);
        cs->n_consoles--;
        pthread_cond_broadcast(&cs->idle);
        pthread_mutex_unlock(&cs->lock);
}

void node_console_client_run(node_console_client_t *cl, int fd, const char *extra, size_t extra_len) {
        bool live = client_start(cl, fd);
        if (live && extra_len > 0)
                live = console_input(cl, extra, extra_len) >= 0;
        while (live) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                char buf[4096];
                ssize_t k = read(fd, buf, sizeof buf);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k <= 0 || console_input(cl, buf, (size_t)k) < 0)
                        break;
        }
        client_leave(cl);
}

void node_consoles_stop(node_consoles_t *cs) {
        pthread_mutex_lock(&cs->lock);
        cs->stopping = true;
        while (cs->list) {
                node_console_t *c = cs->list;
                pthread_mutex_lock(&c->lock);
                console_end(c); /* takes it out of the list */
                pthread_mutex_unlock(&c->lock);
        }
        struct timespec deadline = time_realtime_after_ms(10000);
        while (cs->n_clients > 0 || cs->n_consoles > 0)
                if (pthread_cond_timedwait(&cs->idle, &cs->lock, &deadline) == ETIMEDOUT) {
                        log_warn("consoles: %u clients did not leave within 10 s", cs->n_clients);
                        break;
                }
        pthread_mutex_unlock(&cs->lock);
}

int node_console_connect(const char *path, int64_t pid, unsigned flags) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        bool nowait = flags & NODE_CONSOLE_CONNECT_NOWAIT;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nowait ? SOCK_NONBLOCK : 0), 0);
        if (fd < 0)
                return negative_errno();
        /* a UNIX socket's connect is done at once or not at all (-EAGAIN) when it does not wait */
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                return negative_errno();
        int fl = nowait ? fcntl(fd, F_GETFL) : 0;
        if (fl < 0 || (nowait && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0))
                return negative_errno();
        pid_t peer = 0;
        int r = socket_peer_pid(fd, &peer);
        if (r < 0)
                return r;
        return pid > 0 && peer == pid ? TAKE_FD(fd) : -EPERM;
}
