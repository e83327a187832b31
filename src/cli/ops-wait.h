/* Waiting for the Oracle's asynchronous operations (DESIGN.md §8: long operations run with an
 * id, progress and a final result; the CLI waits by default and shows progress). */
#pragma once

#include <jansson.h>

#include "cli/command.h"

#define OPS_POLL_MS 100
#define OPS_UNREACHABLE_MS 30000 /* tolerate an Oracle restart this long while waiting */

/* Polls GET /v1/ops/ID, starting from op (an OP object from a 202 answer), until its state is
 * done or failed, drawing "KIND VM: PHASE [bar] done/total" on a terminal meanwhile. Returns
 * CLI_OK with the final OP in *ret_op (owned by the caller), or CLI_FAIL having printed the
 * operation's error (or why the Oracle could not be asked). */
int ops_wait(cli_t *c, const json_t *op, json_t **ret_op);
