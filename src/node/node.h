/* vmatrix node: the agent on each real machine (RM). */
#pragma once

int node_main(int argc, char **argv);
