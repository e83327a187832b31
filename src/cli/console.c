/* `vmatrix vm console NAME`: the VM's serial console, interactive. The CLI asks the Oracle for
 * an HTTP upgrade to the vmx-console protocol; the Oracle relays to the VM's node, which joins
 * the stream to QEMU's serial socket. On a terminal, the terminal goes raw and Ctrl-] leaves;
 * with piped stdin (--attach) the input is sent and the output read until a quiet moment after
 * the input ends, which lets scripts and tests drive the console. */
#include <poll.h>
#include <string.h>
#include <termios.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/commands.h"
#include "net/stream.h"

#define CONSOLE_ESCAPE 0x1d            /* Ctrl-] */
#define CONSOLE_DRAIN_MS 1500          /* after stdin ends, wait this long for more output */

static int console_loop(int sock, bool tty) {
        bool stdin_open = true;
        int64_t quiet_since = 0;
        for (;;) {
                struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = STDIN_FILENO, .events = POLLIN } };
                int timeout = stdin_open ? -1 : CONSOLE_DRAIN_MS;
                int n = poll(p, stdin_open ? 2 : 1, timeout);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0 && !stdin_open && time_now_ms() - quiet_since >= CONSOLE_DRAIN_MS)
                        return 0;
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        char buf[4096];
                        ssize_t k = read(sock, buf, sizeof buf);
                        if (k <= 0)
                                return k == 0 ? -ECONNRESET : negative_errno();
                        if (stream_write_all(STDOUT_FILENO, buf, (size_t)k) < 0)
                                return -EPIPE;
                        quiet_since = time_now_ms();
                }
                if (stdin_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
                        char buf[1024];
                        ssize_t k = read(STDIN_FILENO, buf, sizeof buf);
                        if (k <= 0) {
                                stdin_open = false;
                                quiet_since = time_now_ms();
                                continue;
                        }
                        char *esc = tty ? memchr(buf, CONSOLE_ESCAPE, (size_t)k) : NULL;
                        size_t len = esc ? (size_t)(esc - buf) : (size_t)k;
                        if (len > 0 && stream_write_all(sock, buf, len) < 0)
                                return -ECONNRESET;
                        if (esc)
                                return 0;
                }
        }
}

int console_attach(cli_t *c, const char *name) {
        const char *url = NULL;
        int r = api_oracle(c, &url);
        if (r != CLI_OK)
                return r;
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/console", name);
        _cleanup_free_ char *msg = NULL;
        int sock = -1;
        if (stream_upgrade_connect(url, path, STREAM_CONSOLE_PROTOCOL, api_credentials(c)->token, &sock, &msg) < 0)
                return cli_fail(c, "%s", msg ? msg : "cannot attach to the console");
        bool tty = isatty(STDIN_FILENO);
        struct termios saved;
        if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
                fprintf(c->err, "Connected to the serial console of %s. Ctrl-] leaves.\r\n", name);
                struct termios raw = saved;
                cfmakeraw(&raw);
                tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        } else {
                tty = false;
        }
        r = console_loop(sock, tty);
        close(sock);
        if (tty) {
                tcsetattr(STDIN_FILENO, TCSANOW, &saved);
                fprintf(c->err, "\r\n");
        }
        if (r == -ECONNRESET)
                return cli_fail(c, "the console of %s closed (the VM stopped or moved)", name);
        return r < 0 ? cli_fail(c, "console of %s: %s", name, strerror(-r)) : CLI_OK;
}
