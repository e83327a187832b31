/* `vmatrix service top` (cmd-service-top.c): its handler and option table, for the command
 * table in cli.c: { "service top", cmd_service_top, "[NAME]", service_top_options, ... }. */
#pragma once

#include "cli/command.h"

int cmd_service_top(cli_t *c);
/* --once, --interval SECONDS */
extern const cli_option_t service_top_options[];
