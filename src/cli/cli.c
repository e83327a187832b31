#include "cli/cli.h"

#include <stdio.h>

int cli_main(int argc, char **argv) {
        (void)argc;
        (void)argv;
        fprintf(stderr, "vmatrix: no commands yet\n");
        return 2;
}
