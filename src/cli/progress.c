/* The one-line progress display for long operations (STYLE.md: progress on a terminal, quiet
 * in pipes). Drawn on stderr only when it is a terminal, redrawn in place with \r, and erased
 * before anything else is printed (cli_fail and the commands call progress_clear). */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "base/util.h"
#include "cli/output.h"

static unsigned terminal_columns(FILE *f) {
        struct winsize ws;
        if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
                return ws.ws_col;
        return 80;
}

void progress_draw(cli_t *c, const char *label, const char *phase, uint64_t done, uint64_t total) {
        if (!c->tty)
                return;
        char line[512], a[32], b[32];
        int n = snprintf(line, sizeof line, "%s: %s", label, phase && *phase ? phase : "working");
        if (total > 0 && n > 0 && (size_t)n < sizeof line) {
                enum { BAR = 24 };
                unsigned pct = done >= total ? 100 : (unsigned)(done * 100 / total);
                char bar[BAR + 1];
                unsigned fill = pct * BAR / 100;
                memset(bar, '#', fill);
                memset(bar + fill, '.', BAR - fill);
                bar[BAR] = 0;
                snprintf(line + n, sizeof line - (size_t)n, " [%s] %3u%% %s / %s", bar, pct,
                         format_bytes(done, a, sizeof a), format_bytes(total, b, sizeof b));
        } else if (done > 0 && n > 0 && (size_t)n < sizeof line) {
                snprintf(line + n, sizeof line - (size_t)n, " %s", format_bytes(done, a, sizeof a));
        }
        unsigned cols = terminal_columns(c->err);
        if (strlen(line) >= cols)
                line[cols - 1] = 0;
        fprintf(c->err, "\r%s\033[K", line);
        fflush(c->err);
        c->progress_shown = true;
}

void progress_clear(cli_t *c) {
        if (!c->progress_shown)
                return;
        fputs("\r\033[K", c->err);
        fflush(c->err);
        c->progress_shown = false;
}
