/* Tables, key: value blocks, JSON output, value formatting and the error line (see output.h). */
#include "cli/output.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "base/util.h"

struct table {
        unsigned n_columns;
        char **headers;   /* n_columns, or NULL */
        bool header_done;
        unsigned *widths; /* widest cell seen so far, per column */
        char **cells;     /* row-major, n_cells of them */
        size_t n_cells, cap;
};

table_t *table_new(unsigned n_columns, const char *const *headers) {
        table_t *t = xcalloc(1, sizeof *t);
        t->n_columns = n_columns;
        t->widths = xcalloc(n_columns, sizeof *t->widths);
        if (headers) {
                t->headers = xcalloc(n_columns, sizeof *t->headers);
                for (unsigned i = 0; i < n_columns; i++)
                        t->headers[i] = xstrdup(headers[i]);
        }
        return t;
}

static void table_drop_cells(table_t *t) {
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        t->n_cells = 0;
}

table_t *table_free(table_t *t) {
        if (!t)
                return NULL;
        table_drop_cells(t);
        free(t->cells);
        if (t->headers)
                for (unsigned i = 0; i < t->n_columns; i++)
                        free(t->headers[i]);
        free(t->headers);
        free(t->widths);
        free(t);
        return NULL;
}

void table_add_take(table_t *t, char *cell) {
        if (!cell || !*cell) {
                free(cell);
                cell = xstrdup("-");
        }
        if (t->n_cells == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 32;
                char **c = realloc(t->cells, t->cap * sizeof *c);
                if (!c)
                        abort();
                t->cells = c;
        }
        t->cells[t->n_cells++] = cell;
}

void table_add(table_t *t, const char *cell) { table_add_take(t, cell ? xstrdup(cell) : NULL); }

void table_add_json(table_t *t, const json_t *obj, const char *key) { table_add_take(t, json_cell(obj, key)); }

void table_set_min_widths(table_t *t, const unsigned *widths) {
        for (unsigned i = 0; i < t->n_columns; i++)
                t->widths[i] = MAX(t->widths[i], widths[i]);
}

/* Characters on screen: UTF-8 continuation bytes (10xxxxxx) take no column. */
static unsigned display_width(const char *s) {
        unsigned n = 0;
        for (; *s; s++)
                if (((unsigned char)*s & 0xC0) != 0x80)
                        n++;
        return n;
}

static void table_print_row(const table_t *t, FILE *f, char *const *row) {
        for (unsigned i = 0; i < t->n_columns; i++) {
                bool last = i + 1 == t->n_columns;
                fputs(row[i], f);
                if (!last)
                        fprintf(f, "%*s", (int)(t->widths[i] - display_width(row[i]) + 2), "");
        }
        fputc('\n', f);
}

void table_flush(table_t *t, FILE *f) {
        size_t rows = t->n_cells / t->n_columns;
        for (unsigned i = 0; i < t->n_columns; i++) {
                if (t->headers && !t->header_done)
                        t->widths[i] = MAX(t->widths[i], display_width(t->headers[i]));
                for (size_t r = 0; r < rows; r++)
                        t->widths[i] = MAX(t->widths[i], display_width(t->cells[r * t->n_columns + i]));
        }
        if (t->headers && !t->header_done)
                table_print_row(t, f, t->headers);
        t->header_done = true;
        for (size_t r = 0; r < rows; r++)
                table_print_row(t, f, t->cells + r * t->n_columns);
        table_drop_cells(t);
        fflush(f);
}

void kv_print(FILE *f, const json_t *obj, const char *const *keys, unsigned n) {
        _cleanup_(table_freep) table_t *t = table_new(2, NULL);
        for (unsigned i = 0; i < n; i++) {
                table_add_take(t, xasprintf("%s:", keys[i]));
                table_add_json(t, obj, keys[i]);
        }
        table_flush(t, f);
}

char *json_cell(const json_t *obj, const char *key) {
        const json_t *v = json_object_get(obj, key);
        switch (v ? json_typeof(v) : JSON_NULL) {
        case JSON_STRING:
                return xstrdup(json_string_value(v));
        case JSON_INTEGER:
                return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
        case JSON_REAL:
                return xasprintf("%g", json_real_value(v));
        case JSON_TRUE:
                return xstrdup("yes");
        case JSON_FALSE:
                return xstrdup("no");
        case JSON_ARRAY: {
                size_t i;
                const json_t *e;
                char *s = xstrdup("");
                json_array_foreach(v, i, e) {
                        char *next = xasprintf("%s%s%s", s, i ? "," : "",
                                               json_is_string(e) ? json_string_value(e) : "?");
                        free(s);
                        s = next;
                }
                return s;
        }
        case JSON_OBJECT:
                return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        default:
                return NULL;
        }
}

int output_json(cli_t *c, const json_t *j, bool line) {
        size_t flags = JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | (line ? JSON_COMPACT : JSON_INDENT(2));
        if (json_dumpf(j, c->out, flags) < 0)
                return cli_fail(c, "cannot write JSON output");
        fputc('\n', c->out);
        fflush(c->out);
        return CLI_OK;
}

void json_ensure_fields(json_t *obj, const char *const *fields, unsigned n) {
        if (!json_is_object(obj))
                return;
        for (unsigned i = 0; i < n; i++)
                if (!json_object_get(obj, fields[i]))
                        json_object_set_new(obj, fields[i], json_null());
}

char *format_time(double seconds, char *buf, size_t size) {
        time_t t = (time_t)seconds;
        struct tm tm;
        if (!localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                snprintf(buf, size, "%.3f", seconds);
        return buf;
}

char *json_time_cell(const json_t *obj, const char *key) {
        const json_t *v = json_object_get(obj, key);
        if (json_is_string(v))
                return xstrdup(json_string_value(v));
        if (!json_is_number(v))
                return NULL;
        double t = json_number_value(v);
        if (t > 1e11) /* 1e11 s is the year 5138: this is milliseconds */
                t /= 1000;
        char buf[64];
        return xstrdup(format_time(t, buf, sizeof buf));
}

static int cli_vprint_error(cli_t *c, int status, const char *fmt, va_list ap) {
        char msg[1024];
        vsnprintf(msg, sizeof msg, fmt, ap);
        /* one line, whatever an API or a file put into the message */
        for (char *p = msg; *p; p++)
                if ((unsigned char)*p < ' ')
                        *p = ' ';
        size_t n = strlen(msg);
        while (n > 0 && msg[n - 1] == ' ')
                msg[--n] = 0;
        progress_clear(c);
        fflush(c->out);
        fprintf(c->err, "vmatrix: %s\n", msg);
        fflush(c->err);
        return status;
}

int cli_fail(cli_t *c, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = cli_vprint_error(c, CLI_FAIL, fmt, ap);
        va_end(ap);
        return r;
}

int cli_usage(cli_t *c, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = cli_vprint_error(c, CLI_USAGE, fmt, ap);
        va_end(ap);
        return r;
}
