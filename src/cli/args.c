/* Option parsing for the CLI (see args.h). The parser only knows option tables; which tables
 * apply (command, --no-wait, global) is decided by the dispatcher in cli.c. */
#include "cli/args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"

static int args_error(char *error, size_t size, const char *fmt, ...) _printf_(3, 4);
static int args_error(char *error, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error, size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

const cli_option_t *args_option_find(const cli_option_t *const *sets, const char *name) {
        for (; *sets; sets++)
                for (const cli_option_t *o = *sets; o->name; o++)
                        if (streq(o->name, name))
                                return o;
        return NULL;
}

static int args_add(cli_args_t *a, const cli_option_t *o, const char *value, char *error, size_t size) {
        if (a->n_given >= ARGS_MAX)
                return args_error(error, size, "too many options");
        a->given[a->n_given].option = o;
        a->given[a->n_given].value = value;
        a->n_given++;
        return 0;
}

static bool is_help(const char *arg) { return streq(arg, "-h") || streq(arg, "--help"); }

/* Does arg look like an option rather than an option's value? "-5" is a value (and then
 * rejected by the range check, which names the real problem); "--x" and "-h" are not. */
static bool str_is_option(const char *arg) { return (arg[0] == '-' && arg[1] == '-') || is_help(arg); }

int args_parse(cli_args_t *a, const cli_option_t *const *sets, int argc, char **argv, int *index,
               unsigned flags, char *error, size_t error_size) {
        int i = *index;
        int r = 0;
        for (; i < argc; i++) {
                const char *arg = argv[i];
                if (streq(arg, "--")) {
                        if (flags & ARGS_STOP_AT_WORD) {
                                i++;
                                break;
                        }
                        for (i++; i < argc; i++) {
                                if (a->n_positional >= ARGS_MAX) {
                                        r = args_error(error, error_size, "too many arguments");
                                        goto out;
                                }
                                a->positional[a->n_positional++] = argv[i];
                        }
                        break;
                }
                if (is_help(arg)) {
                        a->help = true;
                        continue;
                }
                if (arg[0] != '-' || arg[1] == 0) {
                        if (flags & ARGS_STOP_AT_WORD)
                                break;
                        if (a->n_positional >= ARGS_MAX) {
                                r = args_error(error, error_size, "too many arguments");
                                goto out;
                        }
                        a->positional[a->n_positional++] = arg;
                        continue;
                }
                if (arg[1] != '-') {
                        r = args_error(error, error_size, "unknown option %s", arg);
                        goto out;
                }
                /* "--name" or "--name=value" */
                const char *eq = strchr(arg, '=');
                size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
                char name[64];
                if (len == 0 || len >= sizeof name) {
                        r = args_error(error, error_size, "unknown option %.*s", 80, arg);
                        goto out;
                }
                memcpy(name, arg + 2, len);
                name[len] = 0;
                const cli_option_t *o = args_option_find(sets, name);
                if (!o) {
                        r = args_error(error, error_size, "unknown option --%s", name);
                        goto out;
                }
                const char *value;
                if (!o->value) {
                        if (eq) {
                                r = args_error(error, error_size, "option --%s takes no value", name);
                                goto out;
                        }
                        value = "";
                } else if (eq) {
                        value = eq + 1;
                } else if (i + 1 < argc && !str_is_option(argv[i + 1])) {
                        value = argv[++i];
                } else {
                        value = NULL;
                }
                if (o->value && (!value || !*value)) {
                        r = args_error(error, error_size, "option --%s needs a value (%s)", name, o->value);
                        goto out;
                }
                r = args_add(a, o, value, error, error_size);
                if (r < 0)
                        goto out;
        }
out:
        *index = i;
        return r;
}

/* Counts the words of a positional spec: all of them, and those not in brackets. Writes the
 * n-th word (0-based) into word when asked. */
static unsigned spec_count(const char *spec, unsigned *ret_required, unsigned nth, char *word, size_t word_size) {
        unsigned total = 0, required = 0;
        for (const char *p = spec ? spec : ""; *p;) {
                p += strspn(p, " ");
                size_t n = strcspn(p, " ");
                if (n == 0)
                        break;
                if (word && total == nth)
                        snprintf(word, word_size, "%.*s", (int)n, p);
                if (*p != '[')
                        required++;
                total++;
                p += n;
        }
        if (ret_required)
                *ret_required = required;
        return total;
}

int args_check(cli_args_t *a, const cli_option_t *const *sets, const char *spec, char *error,
               size_t error_size) {
        for (const cli_option_t *const *s = sets; *s; s++)
                for (const cli_option_t *o = *s; o->name; o++) {
                        if (!o->env || args_get(a, o->name))
                                continue;
                        const char *v = getenv(o->env);
                        if (v && *v && args_add(a, o, v, error, error_size) < 0)
                                return -EINVAL;
                }

        unsigned required = 0, total = spec_count(spec, &required, 0, NULL, 0);
        if (a->n_positional < required) {
                char word[64] = "";
                spec_count(spec, NULL, a->n_positional, word, sizeof word);
                return args_error(error, error_size, "missing %s", word);
        }
        if (a->n_positional > total)
                return args_error(error, error_size, "unexpected argument \"%s\"", a->positional[total]);

        for (const cli_option_t *const *s = sets; *s; s++)
                for (const cli_option_t *o = *s; o->name; o++)
                        if (o->required && !args_get(a, o->name)) {
                                if (o->value)
                                        return args_error(error, error_size, "missing --%s %s", o->name, o->value);
                                return args_error(error, error_size, "missing --%s", o->name);
                        }
        return 0;
}

const char *args_get(const cli_args_t *a, const char *name) {
        for (unsigned i = a->n_given; i > 0; i--)
                if (streq(a->given[i - 1].option->name, name))
                        return a->given[i - 1].value;
        return NULL;
}

bool args_flag(const cli_args_t *a, const char *name) { return args_get(a, name) != NULL; }
