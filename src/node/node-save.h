/* Saving a VM: save (suspend, optionally into the Nest) and stop (power off, disk into the Nest). */
#pragma once

#include "node/node-internal.h"
#include "node/node-proto.h"

/* The commands. Each returns 0 and a result object, or -errno and a message. */
int node_save_vm(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);
int node_save_stop(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);
