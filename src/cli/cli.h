/* The command-line front end: parses argv against the command table and runs a command.
 * See command.h for the table and the exit status contract. */
#pragma once

int cli_main(int argc, char **argv);
