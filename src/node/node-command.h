/* The command protocol of the node's VM commands: commands are keyed by (VM, version); an
 * older version than the node's lease is refused, and a repeat of the last completed command
 * returns its recorded result, so the Oracle can re-drive an operation after a crash without
 * doing it twice. Every function that takes a node_vm_t expects vm->lock held. */
#pragma once

#include "node/node-internal.h"
#include "node/node-proto.h"

#define NODE_COMMAND_CREATE (1u << 0) /* node_command_lock: a new entry for a VM not on this RM */

/* The start of a command: finds the VM (-ENOENT if it is not on this RM, unless
 * NODE_COMMAND_CREATE), locks it and checks the version. 1: go on, *ret_vm is the VM, locked
 * and referenced, for a _cleanup_(node_command_unlockp) variable; 0: a repeat of the last
 * command, *ret is its recorded answer; <0: error, with a message. */
int node_command_lock(node_t *n, const char *name, const node_cmd_t *cmd, unsigned flags, node_vm_t **ret_vm,
                      json_t **ret, char **ret_msg);
/* The guard of a command's VM: unlocks it (node_vm_unlockp) and gives its reference back. */
void node_command_unlockp(node_vm_t **vmp);
/* The command at version acts on vm from here (see node-command.c). */
void node_command_lease(node_vm_t *vm, int64_t version);
/* Keeps a command's answer (a new reference) for repeats and persists the entry. When the
 * entry cannot be written, the command must not look done: -EIO with a message, result
 * released, and a repeat of the command writes the record before it answers. */
int node_command_record(node_t *n, node_vm_t *vm, const node_cmd_t *cmd, json_t *result, char **ret_msg);
