/* The command-line front end: parses argv against the command table and runs a command. */
#pragma once

int cli_main(int argc, char **argv);
