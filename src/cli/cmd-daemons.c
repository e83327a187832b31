/* `vmatrix oracle ...` and `vmatrix node ...`: the daemons own their options, so everything
 * after the command name is handed to them unparsed (argv[0] is "oracle" / "node"). */
#include "cli/commands.h"
#include "node/node.h"
#include "oracle/oracle.h"

int cmd_oracle(cli_t *c) { return oracle_main(c->argc, c->argv); }

int cmd_node(cli_t *c) { return node_main(c->argc, c->argv); }
