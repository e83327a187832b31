/* Command-line options of the CLI: the option tables commands declare, and the parser that
 * matches argv against them. Pure string work, no I/O, so the unit tests drive it directly.
 *
 * Accepted forms: `--flag`, `--opt value`, `--opt=value`, `-h`/`--help` anywhere, `--` ends
 * the options (everything after it is positional), `-` alone is positional. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct cli_option {
        const char *name;  /* without the leading "--" */
        const char *value; /* metavariable shown in usage ("MIB"); NULL for a boolean flag */
        const char *help;
        const char *env;   /* environment variable that stands in when the option is absent */
        bool required;
} cli_option_t;

#define ARGS_MAX 32

typedef struct cli_args {
        const char *positional[ARGS_MAX];
        unsigned n_positional;
        struct {
                const cli_option_t *option;
                const char *value; /* "" for flags; points into argv or the environment */
        } given[ARGS_MAX];
        unsigned n_given;
        bool help; /* -h or --help was seen */
} cli_args_t;

enum {
        ARGS_STOP_AT_WORD = 1u << 0, /* stop at the first positional word (the command name) */
};

/* Parses argv[*index..argc) against sets (a NULL-terminated list of option tables, each ended
 * by an entry with a NULL name; earlier tables shadow later ones), appending to a. On return
 * *index is where parsing stopped. On a bad argument returns -EINVAL with a message such as
 * `unknown option --foo` in error (never NULL, never a newline). */
int args_parse(cli_args_t *a, const cli_option_t *const *sets, int argc, char **argv, int *index,
               unsigned flags, char *error, size_t error_size);

/* Completes a after parsing: fills absent options from their environment variable, then
 * checks the positional count against spec (e.g. "NAME [RM]": bracketed words are optional)
 * and the required options. -EINVAL with a message like `missing NAME` in error. */
int args_check(cli_args_t *a, const cli_option_t *const *sets, const char *spec, char *error,
               size_t error_size);

/* The value of option name (the last one given wins), or NULL. */
const char *args_get(const cli_args_t *a, const char *name);
bool args_flag(const cli_args_t *a, const char *name);

/* The option called name in sets, or NULL. */
const cli_option_t *args_option_find(const cli_option_t *const *sets, const char *name);
