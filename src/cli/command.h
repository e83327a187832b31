/* The CLI's core types: one entry of the command table, and the context a command runs in.
 * Commands are a table (cli.c) of { name, handler, args, options, help }; usage lines and
 * --help pages are generated from it, so they cannot drift from what the parser accepts.
 *
 * Exit status contract (DESIGN.md §4): 0 success, 1 an operation or API error, 2 a usage error,
 * and on error exactly one line on stderr. Handlers and the helpers they call return one of
 * the CLI_* values; a helper that returns CLI_FAIL or CLI_USAGE has already printed that line
 * (the CLI always ends on the first error, so the place that finds it is the one that says it). */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "base/macro.h"
#include "cli/args.h"
#include "net/http-client.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli cli_t;

enum {
        CMD_PASSTHROUGH = 1u << 0, /* the handler gets argv after the name unparsed (daemons) */
        CMD_WAITS = 1u << 1,       /* starts an operation and waits for it: accepts --no-wait */
};

typedef struct cli_command {
        const char *name;            /* one or two words: "events", "vm create" */
        int (*handler)(cli_t *c);
        const char *args;            /* positional words, "NAME" or "[FILE]"; the whole synopsis
                                      * for CMD_PASSTHROUGH commands (shown, not parsed) */
        const cli_option_t *options; /* the command's own options (NULL-name terminated), or NULL */
        const char *help;            /* one line: what it does */
        unsigned flags;
} cli_command_t;

struct cli {
        FILE *out, *err;
        const cli_command_t *command;
        cli_args_t args;
        bool json;           /* --json */
        bool tty;            /* err is a terminal: draw progress there */
        bool progress_shown; /* a progress line is on the terminal and must be cleared */
        char *oracle;        /* Oracle base URL, resolved on first use (api.c) */
        char *token;         /* the token sent, resolved on first use (api-token.c) */
        bool token_resolved;
        http_call_t cred; /* what requests to the Oracle carry (.token = token) */
        int argc;            /* CMD_PASSTHROUGH: argv[0] is the command name */
        char **argv;
};

/* Runs the command line argv (argv[0] is the program) writing to out and err; returns the exit
 * status. cli_main() is this on stdout/stderr; tests pass memory streams. */
int cli_run(int argc, char **argv, FILE *out, FILE *err);

/* The command named by the leading words of argv (one or two), the number of words it used in
 * *ret_words; NULL when they name none. */
const cli_command_t *command_find(int argc, char *const *argv, int *ret_words);
/* Is word the first word of some two-word command ("vm", "image", ...)? */
bool command_is_group(const char *word);
/* The whole command table, terminated by an entry with a NULL name. */
const cli_command_t *command_table(void);
/* "vmatrix vm create NAME --image IMAGE [--memory MIB] [--vcpus N]", malloc'd. */
char *command_usage(const cli_command_t *cmd);

/* Prints "vmatrix: MESSAGE" as one line on err (newlines in MESSAGE become spaces, so a
 * multi-line API message cannot break the one-line rule) and returns CLI_FAIL / CLI_USAGE. */
int cli_fail(cli_t *c, const char *fmt, ...) _printf_(2, 3);
int cli_usage(cli_t *c, const char *fmt, ...) _printf_(2, 3);

/* The value of an option of the running command, or NULL; a boolean option's presence. */
static inline const char *cli_opt(const cli_t *c, const char *name) { return args_get(&c->args, name); }
static inline bool cli_flag(const cli_t *c, const char *name) { return args_flag(&c->args, name); }
/* The n-th positional argument (the parser has checked the count against the spec). */
static inline const char *cli_arg(const cli_t *c, unsigned n) {
        return n < c->args.n_positional ? c->args.positional[n] : NULL;
}
