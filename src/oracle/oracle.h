/* vmatrix oracle: the controller daemon. */
#pragma once

int oracle_main(int argc, char **argv);
