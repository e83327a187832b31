/* Migration between RMs: stage a suspended VM's files in the cache, receive them on the
 * destination, and the raw file of a suspended VM (the "full" method). */
#pragma once

#include "node/node-internal.h"
#include "node/node-proto.h"

int node_migrate_stage(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);
int node_migrate_receive(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);
int node_migrate_file_path(node_t *n, const char *name, const char *file, char **ret, char **ret_msg);
