/* What the marketplace's commands share (cmd-market.c, cmd-machine.c): money and periods as
 * options and as text. */
#pragma once

#include <jansson.h>

#include "cli/command.h"

/* "1.500000" for micro-units (malloc'd). */
char *market_money_text(json_int_t micro);
/* "3.000000/30d" for a price and its period in seconds, "-" when either is missing (malloc'd). */
char *market_rate_text(const json_t *price, const json_t *period);
/* Option --opt, when given, into body[key]: an amount (micro-units), a duration (seconds), a
 * whole number. CLI_OK, or CLI_USAGE said. */
int market_money_opt(cli_t *c, const char *opt, json_t *body, const char *key);
int market_duration_opt(cli_t *c, const char *opt, json_t *body, const char *key);
int market_int_opt(cli_t *c, const char *opt, json_t *body, const char *key);
