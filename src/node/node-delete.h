/* The delete command: the VM's local copy is killed and removed. */
#pragma once

#include "node/node-internal.h"
#include "node/node-proto.h"

int node_delete_vm(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);
