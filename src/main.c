/* vmatrix: one binary with subcommands (oracle, node, cluster, and the CLI commands). */
#include "cli/cli.h"

int main(int argc, char **argv) { return cli_main(argc, argv); }
