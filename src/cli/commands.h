/* Handlers of the command table (cli.c), one file per group: cmd-vm.c, cmd-rm.c, cmd-image.c,
 * cmd-nest.c, cmd-events.c, cmd-cluster.c, cmd-daemons.c, cmd-sim.c. Each returns a CLI_* status. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "cli/command.h"

int cmd_oracle(cli_t *c);
int cmd_node(cli_t *c);

int cmd_cluster_up(cli_t *c);
int cmd_cluster_down(cli_t *c);
int cmd_cluster_restart(cli_t *c);

int cmd_rm_list(cli_t *c);
int cmd_rm_join_token_create(cli_t *c);
int cmd_rm_fence(cli_t *c);
/* Prints an array of RM objects as the `rm list` table (shared with `cluster up`). */
void rm_table_print(FILE *f, const json_t *rms);

int cmd_image_build(cli_t *c);
int cmd_image_list(cli_t *c);
int cmd_image_import(cli_t *c);
int cmd_image_delete(cli_t *c);

int cmd_vm_create(cli_t *c);
int cmd_vm_action(cli_t *c); /* boot, suspend, resume, hibernate, activate, deactivate, stop, delete */
int cmd_vm_list(cli_t *c);
int cmd_vm_show(cli_t *c);
int cmd_vm_console(cli_t *c);
int cmd_vm_export(cli_t *c);
int cmd_vm_clone(cli_t *c);
int cmd_vm_balloon(cli_t *c);
int console_attach(cli_t *c, const char *name); /* console.c */

int cmd_login(cli_t *c); /* cmd-account.c */
int cmd_logout(cli_t *c);
int cmd_whoami(cli_t *c);
int cmd_signup(cli_t *c);
int cmd_user_create(cli_t *c);
int cmd_user_list(cli_t *c);
int cmd_user_delete(cli_t *c);
int cmd_user_passwd(cli_t *c);
int cmd_token_create(cli_t *c);
int cmd_token_list(cli_t *c);
int cmd_token_revoke(cli_t *c);

int cmd_rm_assign(cli_t *c); /* cmd-market.c */
int cmd_offer_set(cli_t *c);
int cmd_offer_list(cli_t *c);
int cmd_offer_withdraw(cli_t *c);
int cmd_market_configs(cli_t *c);
int cmd_market_config_add(cli_t *c);
int cmd_market_config_delete(cli_t *c);
int cmd_market_prices(cli_t *c);
int cmd_market_fee(cli_t *c);
int cmd_vm_register(cli_t *c); /* cmd-machine.c */
int cmd_vm_edit(cli_t *c);
int cmd_vm_offers(cli_t *c);
int cmd_vm_store(cli_t *c);
int cmd_account_show(cli_t *c);
int cmd_account_deposit(cli_t *c);

int cmd_nest_stats(cli_t *c);
int cmd_events(cli_t *c);
int cmd_sim(cli_t *c); /* cmd-sim.c: local, no Oracle (but for --from-cluster) */

int cmd_service_create(cli_t *c); /* cmd-service.c */
int cmd_service_list(cli_t *c);
int cmd_service_show(cli_t *c);
int cmd_service_delete(cli_t *c);

/* The image name `image import FILE` uses without --name: the file's basename without its
 * extension, lowercased, other characters than [a-z0-9-] turned into '-', leading '-' dropped,
 * at most 63 characters. NULL when nothing valid remains. malloc'd. */
char *image_name_from_path(const char *path);

/* Checks a name argument (VM, RM, image) with name_is_valid; prints a usage error naming what
 * and returns CLI_USAGE when it is not valid. */
int cli_check_name(cli_t *c, const char *what, const char *name);
/* Parses a decimal option value into [min,max]; CLI_USAGE with `--memory must be 16..65536, not
 * "x"` otherwise. An absent option leaves *ret alone and returns CLI_OK. */
int cli_opt_int(cli_t *c, const char *option, int64_t min, int64_t max, int64_t *ret);
/* The same for a number (`--high must be a number from 1 to 100, not "x"`). */
int cli_opt_double(cli_t *c, const char *option, double min, double max, double *ret);
