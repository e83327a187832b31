/* HAProxy's runtime API: transport (one command per connection on the admin UNIX socket) and the
 * parsing of its replies. See lb-runtime.h; the logic that decides what to send is in lb.c. */
#include "lb/lb-runtime.h"

#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/util.h"

#define FIELDS_MAX 512

static int64_t ms_left(int64_t deadline) {
        return MAX(deadline - time_now_ms(), 0);
}

/* Waits for events on fd until the deadline: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int r = poll(&p, 1, (int)ms_left(deadline));
                if (r > 0)
                        return 0;
                if (r == 0)
                        return -ETIMEDOUT;
                if (errno != EINTR)
                        return negative_errno();
        }
}

int lb_runtime_command(const char *path, const char *command, char **ret_reply) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (!path || !command || !ret_reply)
                return -EINVAL;
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        if (!*command || strpbrk(command, ";\n"))
                return -EINVAL;
        memcpy(sa.sun_path, path, strlen(path) + 1);

        int64_t deadline = time_now_ms() + LB_RUNTIME_TIMEOUT_MS;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        /* A UNIX connect either completes at once or fails (EAGAIN: HAProxy's backlog is full). */
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                return negative_errno();

        _cleanup_free_ char *line = xasprintf("%s\n", command);
        size_t len = strlen(line), off = 0;
        while (off < len) {
                int r = wait_fd(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
                /* MSG_NOSIGNAL: an HAProxy that closed on us must not SIGPIPE the caller */
                ssize_t w = send(fd, line + off, len - off, MSG_NOSIGNAL);
                if (w < 0 && errno != EINTR && errno != EAGAIN)
                        return negative_errno();
                if (w > 0)
                        off += (size_t)w;
        }

        size_t cap = 4096, n = 0;
        _cleanup_free_ char *buf = xcalloc(1, cap);
        for (;;) {
                int r = wait_fd(fd, POLLIN, deadline);
                if (r < 0)
                        return r;
                if (n + 1 >= cap) {
                        if (cap >= LB_RUNTIME_REPLY_MAX)
                                return -EMSGSIZE;
                        char *bigger = realloc(buf, cap * 2);
                        if (!bigger)
                                return -ENOMEM;
                        buf = bigger;
                        cap *= 2;
                }
                ssize_t got = read(fd, buf + n, cap - n - 1);
                if (got < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (got < 0)
                        return negative_errno();
                if (got == 0)
                        break; /* non-interactive mode: HAProxy closes after the reply */
                n += (size_t)got;
        }
        buf[n] = 0;
        *ret_reply = TAKE_PTR(buf);
        return 0;
}

/* Splits line in place into fields separated by sep. With quotes, a field may be enclosed in
 * double quotes, "" standing for one quote (HAProxy's csv_enc). -EBADMSG on bad quoting or
 * more than max fields. */
static int fields_split(char *line, char sep, bool quotes, char **fields, size_t max, size_t *ret_n) {
        size_t n = 0;
        char *p = line;
        for (;;) {
                if (n == max)
                        return -EBADMSG;
                char *out = p;
                fields[n++] = out;
                if (quotes && *p == '"') {
                        p++;
                        for (;;) {
                                if (!*p)
                                        return -EBADMSG; /* unterminated */
                                if (*p == '"' && p[1] == '"') {
                                        *out++ = '"';
                                        p += 2;
                                } else if (*p == '"') {
                                        p++;
                                        break;
                                } else
                                        *out++ = *p++;
                        }
                        if (*p && *p != sep)
                                return -EBADMSG;
                } else {
                        while (*p && *p != sep)
                                *out++ = *p++;
                }
                bool more = *p == sep;
                *out = 0; /* may overwrite the separator: already noted in more */
                if (!more)
                        break;
                p++;
        }
        *ret_n = n;
        return 0;
}

static ssize_t column(char **names, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(names[i], name))
                        return (ssize_t)i;
        return -1;
}

/* Cuts the next line (without "\r\n") off *p; NULL at the end. */
static char *line_next(char **p) {
        if (!*p || !**p)
                return NULL;
        char *line = *p, *nl = strchr(line, '\n');
        if (nl) {
                *nl = 0;
                *p = nl + 1;
        } else
                *p = line + strlen(line);
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
                line[len - 1] = 0;
        return line;
}

static int field_int(char **f, ssize_t col, int64_t *ret) {
        if (col < 0 || !*f[col]) {
                *ret = 0;
                return 0;
        }
        return parse_int64(f[col], INT64_MIN, INT64_MAX, ret) < 0 ? -EBADMSG : 0;
}

static bool name_fits(const char *s, size_t size) {
        return strlen(s) < size;
}

/* Appends one zeroed element to a growing array of elem bytes; NULL on OOM. */
static void *array_push(void **array, size_t *n, size_t *cap, size_t elem) {
        if (*n == *cap) {
                size_t bigger = *cap ? *cap * 2 : 16;
                void *a = realloc(*array, bigger * elem);
                if (!a)
                        return NULL;
                *array = a;
                *cap = bigger;
        }
        void *e = (char *)*array + (*n)++ * elem;
        memset(e, 0, elem);
        return e;
}

int lb_runtime_stat_parse(const char *csv, lb_stat_row_t **ret_rows, size_t *ret_n) {
        if (!csv)
                return -EBADMSG;
        _cleanup_free_ char *text = xstrdup(csv);
        char *p = text, *line;
        do
                line = line_next(&p);
        while (line && !*line);
        if (!line || !str_startswith(line, "# "))
                return -EBADMSG;

        char *head[FIELDS_MAX], *f[FIELDS_MAX];
        size_t n_head;
        if (fields_split(line + 2, ',', true, head, FIELDS_MAX, &n_head) < 0)
                return -EBADMSG;
        ssize_t c_px = column(head, n_head, "pxname"), c_sv = column(head, n_head, "svname"),
                c_type = column(head, n_head, "type"), c_status = column(head, n_head, "status");
        if (c_px < 0 || c_sv < 0 || c_type < 0)
                return -EBADMSG;
        struct { const char *name; size_t off; } nums[] = {
                { "scur", offsetof(lb_stat_row_t, scur) },         { "qcur", offsetof(lb_stat_row_t, qcur) },
                { "req_rate", offsetof(lb_stat_row_t, req_rate) }, { "req_tot", offsetof(lb_stat_row_t, req_tot) },
                { "hrsp_5xx", offsetof(lb_stat_row_t, hrsp_5xx) }, { "econ", offsetof(lb_stat_row_t, econ) },
                { "eresp", offsetof(lb_stat_row_t, eresp) },       { "cli_abrt", offsetof(lb_stat_row_t, cli_abrt) },
                { "srv_abrt", offsetof(lb_stat_row_t, srv_abrt) }, { "rtime", offsetof(lb_stat_row_t, rtime) },
                { "qtime", offsetof(lb_stat_row_t, qtime) },
        };
        ssize_t cols[ELEMENTSOF(nums)];
        for (size_t i = 0; i < ELEMENTSOF(nums); i++)
                cols[i] = column(head, n_head, nums[i].name);

        _cleanup_free_ lb_stat_row_t *rows = NULL;
        size_t n = 0, cap = 0;
        while ((line = line_next(&p))) {
                size_t nf;
                if (!*line)
                        continue;
                if (fields_split(line, ',', true, f, FIELDS_MAX, &nf) < 0 || nf != n_head)
                        return -EBADMSG;
                int64_t type;
                if (field_int(f, c_type, &type) < 0 || !*f[c_type] || type < 0 || type > LB_ROW_LISTENER)
                        return -EBADMSG;
                if (!*f[c_px] || !*f[c_sv])
                        return -EBADMSG;
                if (!name_fits(f[c_px], sizeof rows->proxy) || !name_fits(f[c_sv], sizeof rows->name))
                        continue;
                lb_stat_row_t *row = array_push((void **)&rows, &n, &cap, sizeof *rows);
                if (!row)
                        return -ENOMEM;
                strcpy(row->proxy, f[c_px]);
                strcpy(row->name, f[c_sv]);
                if (c_status >= 0)
                        snprintf(row->status, sizeof row->status, "%s", f[c_status]);
                row->type = (lb_row_type_t)type;
                for (size_t i = 0; i < ELEMENTSOF(nums); i++)
                        if (field_int(f, cols[i], (int64_t *)((char *)row + nums[i].off)) < 0)
                                return -EBADMSG;
        }
        *ret_rows = TAKE_PTR(rows);
        *ret_n = n;
        return 0;
}

int lb_runtime_state_parse(const char *text_in, lb_state_row_t **ret_rows, size_t *ret_n) {
        if (!text_in)
                return -EBADMSG;
        _cleanup_free_ char *text = xstrdup(text_in);
        char *p = text, *line;
        do
                line = line_next(&p);
        while (line && !*line);
        if (!line || !streq(line, "1")) /* the format's version */
                return -EBADMSG;
        line = line_next(&p);
        if (!line || !str_startswith(line, "# "))
                return -EBADMSG;

        char *head[FIELDS_MAX], *f[FIELDS_MAX];
        size_t n_head;
        if (fields_split(line + 2, ' ', false, head, FIELDS_MAX, &n_head) < 0)
                return -EBADMSG;
        ssize_t c_be = column(head, n_head, "be_name"), c_sv = column(head, n_head, "srv_name"),
                c_addr = column(head, n_head, "srv_addr"), c_port = column(head, n_head, "srv_port"),
                c_admin = column(head, n_head, "srv_admin_state"), c_op = column(head, n_head, "srv_op_state");
        if (c_be < 0 || c_sv < 0 || c_addr < 0 || c_port < 0 || c_admin < 0 || c_op < 0)
                return -EBADMSG;

        _cleanup_free_ lb_state_row_t *rows = NULL;
        size_t n = 0, cap = 0;
        while ((line = line_next(&p))) {
                size_t nf;
                if (!*line)
                        continue;
                if (fields_split(line, ' ', false, f, FIELDS_MAX, &nf) < 0 || nf != n_head)
                        return -EBADMSG;
                int64_t admin, op, port;
                if (parse_int64(f[c_admin], 0, 0xffff, &admin) < 0 || parse_int64(f[c_op], 0, 255, &op) < 0 ||
                    parse_int64(f[c_port], 0, 65535, &port) < 0 || !*f[c_be] || !*f[c_sv] || !*f[c_addr])
                        return -EBADMSG;
                char address[64];
                snprintf(address, sizeof address, "%.40s:%d", f[c_addr], (int)port);
                if (!name_fits(f[c_be], sizeof rows->backend) || !name_fits(f[c_sv], sizeof rows->name) ||
                    !name_fits(address, sizeof rows->address))
                        continue;
                lb_state_row_t *row = array_push((void **)&rows, &n, &cap, sizeof *rows);
                if (!row)
                        return -ENOMEM;
                strcpy(row->backend, f[c_be]);
                strcpy(row->name, f[c_sv]);
                strcpy(row->address, address);
                row->admin = (unsigned)admin;
                row->op = (int)op;
        }
        *ret_rows = TAKE_PTR(rows);
        *ret_n = n;
        return 0;
}

int lb_runtime_stat(const char *path, lb_stat_row_t **ret_rows, size_t *ret_n) {
        _cleanup_free_ char *reply = NULL;
        int r = lb_runtime_command(path, "show stat", &reply);
        return r < 0 ? r : lb_runtime_stat_parse(reply, ret_rows, ret_n);
}

int lb_runtime_state(const char *path, lb_state_row_t **ret_rows, size_t *ret_n) {
        _cleanup_free_ char *reply = NULL;
        int r = lb_runtime_command(path, "show servers state", &reply);
        return r < 0 ? r : lb_runtime_state_parse(reply, ret_rows, ret_n);
}

/* Names and addresses go into a command line as single words. */
static bool word_ok(const char *s) {
        return s && *s && !strpbrk(s, " \t;\n\r/");
}

/* The reply without surrounding whitespace, in place. */
static char *reply_trim(char *reply) {
        while (*reply == ' ' || *reply == '\n' || *reply == '\r' || *reply == '\t')
                reply++;
        size_t len = strlen(reply);
        while (len > 0 && strchr(" \n\r\t", reply[len - 1]))
                reply[--len] = 0;
        return reply;
}

/* Runs "VERB B/S[ TAIL]" and checks the reply: success when it starts with one of ok[] (the
 * empty string: when it is empty). Refusals map to -errno as lb-runtime.h says. */
static int server_command(const char *path, const char *verb, const char *backend, const char *name,
                          const char *tail, const char *const *ok, char **ret_error) {
        if (!word_ok(backend) || !word_ok(name) || (tail && strpbrk(tail, ";\n\r")))
                return -EINVAL;
        _cleanup_free_ char *cmd = xasprintf("%s %s/%s%s%s", verb, backend, name, tail ? " " : "", tail ? tail : "");
        _cleanup_free_ char *reply = NULL;
        int r = lb_runtime_command(path, cmd, &reply);
        if (r < 0)
                return r;
        char *text = reply_trim(reply);
        bool refused = strcasestr(text, "can't") || strcasestr(text, "invalid");
        for (const char *const *o = ok; *o && !refused; o++)
                if (**o ? str_startswith(text, *o) : !*text)
                        return 0;
        if (strstr(text, "No such server") || strstr(text, "No such backend"))
                r = -ENOENT;
        else if (strstr(text, "Already exists"))
                r = -EEXIST;
        else if (strstr(text, "still has connections"))
                r = -EBUSY;
        else
                r = -EPROTO;
        if (ret_error)
                *ret_error = xstrdup(*text ? text : "(empty reply)");
        return r;
}

int lb_runtime_server_add(const char *path, const char *backend, const char *name, const char *address,
                          const char *options, char **ret_error) {
        if (!word_ok(address))
                return -EINVAL;
        _cleanup_free_ char *tail = xasprintf("%s%s%s", address, options ? " " : "", options ? options : "");
        static const char *const ok[] = { "New server registered.", NULL };
        return server_command(path, "add server", backend, name, tail, ok, ret_error);
}

int lb_runtime_server_state(const char *path, const char *backend, const char *name, const char *state,
                            char **ret_error) {
        if (!state || !(streq(state, "ready") || streq(state, "drain") || streq(state, "maint")))
                return -EINVAL;
        _cleanup_free_ char *tail = xasprintf("state %s", state);
        static const char *const ok[] = { "", NULL };
        return server_command(path, "set server", backend, name, tail, ok, ret_error);
}

int lb_runtime_server_addr(const char *path, const char *backend, const char *name, const char *address,
                           char **ret_error) {
        const char *colon = address ? strrchr(address, ':') : NULL;
        if (!word_ok(address) || !colon)
                return -EINVAL;
        _cleanup_free_ char *tail = xasprintf("addr %.*s port %s", (int)(colon - address), address, colon + 1);
        /* 2.6 answers "IP changed from ... to ..., port changed ..." or "no need to change the addr..." */
        static const char *const ok[] = { "IP changed", "no need to change the addr", NULL };
        return server_command(path, "set server", backend, name, tail, ok, ret_error);
}

int lb_runtime_server_health(const char *path, const char *backend, const char *name, char **ret_error) {
        static const char *const ok[] = { "", NULL };
        return server_command(path, "enable health", backend, name, NULL, ok, ret_error);
}

int lb_runtime_server_del(const char *path, const char *backend, const char *name, char **ret_error) {
        static const char *const ok[] = { "Server deleted.", NULL };
        return server_command(path, "del server", backend, name, NULL, ok, ret_error);
}

int lb_runtime_server_shutdown(const char *path, const char *backend, const char *name, char **ret_error) {
        static const char *const ok[] = { "", NULL };
        return server_command(path, "shutdown sessions server", backend, name, NULL, ok, ret_error);
}
