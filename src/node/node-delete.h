/* The delete command: the VM's local copy is killed and removed. */
#pragma once

#include "node/node-internal.h"

int node_delete_vm(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg);
