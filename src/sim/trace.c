/* Simulator traces: the CSV parser with its line-numbered errors, and the builtin generators
 * (finance-sports, flash-crowd). */
#include "sim/sim.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"
#include "base/util.h"

const char *const sim_builtin_traces[] = { "finance-sports", "flash-crowd", NULL };

sim_trace_t *sim_trace_free(sim_trace_t *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_services; i++)
                free(t->services[i]);
        free(t->services);
        free(t->t);
        free(t->service);
        free(t->load);
        free(t);
        return NULL;
}

static sim_trace_t *trace_new(void) { return xcalloc(1, sizeof(sim_trace_t)); }

static size_t trace_service(sim_trace_t *tr, const char *name, size_t len) {
        for (size_t i = 0; i < tr->n_services; i++)
                if (strlen(tr->services[i]) == len && strncmp(tr->services[i], name, len) == 0)
                        return i;
        tr->services = realloc(tr->services, (tr->n_services + 1) * sizeof *tr->services);
        if (!tr->services)
                abort();
        tr->services[tr->n_services] = strndup(name, len);
        if (!tr->services[tr->n_services])
                abort();
        return tr->n_services++;
}

static void trace_add(sim_trace_t *tr, size_t *cap, double t, size_t service, double load) {
        if (tr->n_rows == *cap) {
                *cap = *cap ? *cap * 2 : 1024;
                tr->t = realloc(tr->t, *cap * sizeof *tr->t);
                tr->service = realloc(tr->service, *cap * sizeof *tr->service);
                tr->load = realloc(tr->load, *cap * sizeof *tr->load);
                if (!tr->t || !tr->service || !tr->load)
                        abort();
        }
        tr->t[tr->n_rows] = t;
        tr->service[tr->n_rows] = service;
        tr->load[tr->n_rows] = load;
        tr->n_rows++;
}

static int fail(char *error, size_t size, const char *fmt, ...) _printf_(3, 4);
static int fail(char *error, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error, size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* A whole field as a finite number. */
static bool parse_number(const char *s, size_t len, double *ret) {
        char buf[64];
        if (len == 0 || len >= sizeof buf)
                return false;
        memcpy(buf, s, len);
        buf[len] = 0;
        char *end;
        errno = 0;
        double v = strtod(buf, &end);
        if (errno != 0 || *end != 0 || !isfinite(v))
                return false;
        *ret = v;
        return true;
}

/* The trace's replay tick: its smallest spacing between distinct times (60 s for one time). */
static double trace_spacing(const sim_trace_t *tr) {
        double tick = 0;
        for (size_t i = 1; i < tr->n_rows; i++) {
                double d = tr->t[i] - tr->t[i - 1];
                if (d > 0 && (tick == 0 || d < tick))
                        tick = d;
        }
        return tick > 0 ? tick : 60;
}

int sim_trace_parse(const char *text, sim_trace_t **ret, char *error, size_t error_size) {
        _cleanup_(sim_trace_freep) sim_trace_t *tr = trace_new();
        size_t cap = 0, line_no = 0, prev_line = 0;
        const char *p = text;
        bool header = false;
        while (*p) {
                const char *eol = strchr(p, '\n');
                size_t len = eol ? (size_t)(eol - p) : strlen(p);
                const char *line = p;
                p = eol ? eol + 1 : p + len;
                line_no++;
                if (len > 0 && line[len - 1] == '\r')
                        len--;
                if (len == 0)
                        continue; /* blank lines, the final newline */
                if (!header) {
                        if (len != strlen("t,service,load") || strncmp(line, "t,service,load", len) != 0)
                                return fail(error, error_size,
                                            "line %zu: the header must be exactly \"t,service,load\", not \"%.*s\"",
                                            line_no, (int)MIN(len, 80), line);
                        header = true;
                        continue;
                }
                const char *f[4];
                size_t fl[4], n = 0;
                for (const char *q = line, *end = line + len;;) {
                        const char *comma = memchr(q, ',', (size_t)(end - q));
                        if (n < 4) {
                                f[n] = q;
                                fl[n] = comma ? (size_t)(comma - q) : (size_t)(end - q);
                        }
                        n++;
                        if (!comma)
                                break;
                        q = comma + 1;
                }
                if (n != 3)
                        return fail(error, error_size, "line %zu: %zu fields, expected 3 (t,service,load)", line_no, n);
                double t, load;
                if (!parse_number(f[0], fl[0], &t) || t < 0)
                        return fail(error, error_size, "line %zu: t \"%.*s\" is not a number of seconds >= 0", line_no,
                                    (int)MIN(fl[0], 40), f[0]);
                if (fl[1] == 0)
                        return fail(error, error_size, "line %zu: empty service name", line_no);
                if (!parse_number(f[2], fl[2], &load))
                        return fail(error, error_size, "line %zu: load \"%.*s\" is not a number", line_no,
                                    (int)MIN(fl[2], 40), f[2]);
                if (load < 0)
                        return fail(error, error_size, "line %zu: negative load %g", line_no, load);
                if (tr->n_rows > 0 && t < tr->t[tr->n_rows - 1])
                        return fail(error, error_size, "line %zu: time %g is before %g on line %zu; rows must be sorted by t",
                                    line_no, t, tr->t[tr->n_rows - 1], prev_line);
                trace_add(tr, &cap, t, trace_service(tr, f[1], fl[1]), load);
                prev_line = line_no;
        }
        if (!header)
                return fail(error, error_size, "empty trace: no \"t,service,load\" header");
        if (tr->n_rows == 0)
                return fail(error, error_size, "the trace has a header but no rows");
        tr->tick_s = trace_spacing(tr);
        tr->window_s = 30;
        *ret = TAKE_PTR(tr);
        return 0;
}

/* 0 before up_start, rising linearly to 1 at up_end, 1 until down_start, 0 again at down_end
 * (minutes of the day). */
static double plateau(double m, double up_start, double up_end, double down_start, double down_end) {
        if (m < up_start || m >= down_end)
                return 0;
        if (m < up_end)
                return (m - up_start) / (up_end - up_start);
        if (m < down_start)
                return 1;
        return (down_end - m) / (down_end - down_start);
}

/* Busy at most 4.0 (a ripple of 0.4 below it, as real load is never flat), idle near 0.5. */
static double shaped(double level, double minute) {
        double idle = 0.5 + 0.1 * sin(2 * M_PI * minute / 61);
        double busy = 4.0 - 0.2 * (1 - cos(2 * M_PI * minute / 90));
        return idle + level * (busy - idle);
}

/* One week from Monday 00:00, per minute: "finance" busy on weekdays 9:00-17:00, "sports" on
 * weekday evenings 18:00-23:00 and weekend afternoons and evenings 12:00-23:00 (the paper's
 * pair of services), each ramping over half an hour. */
static sim_trace_t *trace_finance_sports(void) {
        sim_trace_t *tr = trace_new();
        size_t cap = 0;
        size_t finance = trace_service(tr, "finance", 7), sports = trace_service(tr, "sports", 6);
        for (int minute = 0; minute < 7 * 24 * 60; minute++) {
                int day = minute / (24 * 60);
                double m = minute % (24 * 60);
                bool weekday = day < 5;
                double f = weekday ? plateau(m, 8.5 * 60, 9 * 60, 17 * 60, 17.5 * 60) : 0;
                double s = weekday ? plateau(m, 17.5 * 60, 18 * 60, 23 * 60, 23.5 * 60)
                                   : plateau(m, 11.5 * 60, 12 * 60, 23 * 60, 23.5 * 60);
                trace_add(tr, &cap, minute * 60.0, finance, shaped(f, minute));
                trace_add(tr, &cap, minute * 60.0, sports, shaped(s, minute + 17));
        }
        tr->tick_s = 60;
        tr->window_s = 60;
        return tr;
}

/* Half an hour per second: one service at 1 VM of load, a 5x step from 10 to 20 minutes. */
static sim_trace_t *trace_flash_crowd(void) {
        sim_trace_t *tr = trace_new();
        size_t cap = 0;
        size_t web = trace_service(tr, "web", 3);
        for (int t = 0; t < 1800; t++)
                trace_add(tr, &cap, t, web, t >= 600 && t < 1200 ? 5.0 : 1.0);
        tr->tick_s = 1;
        tr->window_s = 10;
        return tr;
}

int sim_trace_builtin(const char *name, sim_trace_t **ret) {
        if (streq(name, "finance-sports"))
                *ret = trace_finance_sports();
        else if (streq(name, "flash-crowd"))
                *ret = trace_flash_crowd();
        else
                return -ENOENT;
        return 0;
}
