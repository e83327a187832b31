/* Output of the CLI: human tables with aligned columns, "key: value" blocks, JSON, the one error
 * line, and the formatting of values taken from API objects (bytes, times, booleans). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/command.h"

typedef struct table table_t;

/* A table of n columns; headers may be NULL for a table without a header row (key: value
 * blocks). Cells are added row by row, left to right. */
table_t *table_new(unsigned n_columns, const char *const *headers);
table_t *table_free(table_t *t);
static inline void table_freep(table_t **t) { table_free(*t); }

void table_add(table_t *t, const char *cell);    /* copies; NULL and "" print as "-" */
void table_add_take(table_t *t, char *cell);     /* takes ownership of a malloc'd cell */
void table_add_json(table_t *t, const json_t *obj, const char *key); /* json_cell(obj, key) */
/* Columns never get narrower than these (for streams printed batch by batch). */
void table_set_min_widths(table_t *t, const unsigned *widths);
/* Prints the header (the first time only) and the rows added since the last flush, columns
 * padded to the widest cell seen so far, two spaces apart, no trailing blanks; then drops the
 * printed rows. Display width counts UTF-8 characters, not bytes. */
void table_flush(table_t *t, FILE *f);

/* Prints "key: value" lines with the values aligned; keys[i] names the field of obj shown. */
void kv_print(FILE *f, const json_t *obj, const char *const *keys, unsigned n);

/* A field of an API object as table text, malloc'd: strings as they are, numbers in decimal,
 * true/false as yes/no, arrays of strings joined by ",", null or absent as "-". */
char *json_cell(const json_t *obj, const char *key);

/* Pretty JSON on c->out (one compact line when line is true), followed by a newline. */
int output_json(cli_t *c, const json_t *j, bool line);
/* Sets every key of fields that obj lacks to null, so --json always has the contract's fields. */
void json_ensure_fields(json_t *obj, const char *const *fields, unsigned n);

/* Local time as ISO 8601 "2024-05-01T14:03:07" from seconds since the epoch, into buf. */
char *format_time(double seconds, char *buf, size_t size);
/* A time field of an API object as format_time text, malloc'd, NULL when absent. Numbers are
 * seconds (events' "time") or, above 1e11, milliseconds ("created_ms"); strings stay as sent. */
char *json_time_cell(const json_t *obj, const char *key);

/* Progress on a terminal (c->tty): one line redrawn in place; nothing at all otherwise. */
void progress_draw(cli_t *c, const char *label, const char *phase, uint64_t done, uint64_t total);
void progress_clear(cli_t *c);
