/* The command table and the dispatcher: finds the command named by argv, parses its options
 * (args.c), prints usage and --help pages generated from the table, and runs the handler.
 * Only the commands of DESIGN.md §4 that exist are in the table: a later command such as
 * `vm migrate` is an unknown command until its handler is added here. */
#include "cli/cli.h"

#include <string.h>

#include "base/util.h"
#include "cli/cmd-service-top.h"
#include "cli/commands.h"
#include "cli/output.h"

static const cli_option_t global_options[] = {
        { "json", NULL, "print JSON instead of text" },
        { "oracle", "URL", "the Oracle's API (default: $VMATRIX_ORACLE)" },
        { "dir", "DIR", "use the Oracle of the local cluster in DIR (default: $VMATRIX_CLUSTER_DIR)" },
        { "token", "TOKEN", "the API token to send (default: $VMATRIX_TOKEN, the login file, DIR/admin.token)" },
        { "ca", "FILE", "trust the Oracle's HTTPS certificate from this CA (default: $VMATRIX_CA, or DIR/ca.pem)" },
        { NULL },
};

static const cli_option_t join_token_options[] = {
        { "role", "production|chamber", "the role of the RM that joins with it (default chamber)" },
        { "provider", "USER", "the provider the RM is assigned to" },
        { "ttl", "DURATION", "how long it may be used, such as 30m, 1h (default), 7d at most" },
        { NULL },
};

static const cli_option_t wait_options[] = {
        { "no-wait", NULL, "print the operation id and return at once instead of waiting" },
        { NULL },
};

static const cli_option_t cluster_dir_options[] = {
        { "dir", "DIR", "cluster directory", "VMATRIX_CLUSTER_DIR", true },
        { NULL },
};

static const cli_option_t cluster_up_options[] = {
        { "dir", "DIR", "cluster directory (created if missing)", "VMATRIX_CLUSTER_DIR", true },
        { "production", "N", "production RMs prod1..prodN (default 2)" },
        { "chambers", "M", "chamber RMs chamber1..chamberM (default 1)" },
        { "accel", "auto|kvm|tcg", "QEMU accelerator of the nodes" },
        { "open-signup", NULL, "the Oracle takes signups (vmatrix signup; DESIGN.md §10)" },
        { NULL },
};

static const cli_option_t console_options[] = {
        { "log", NULL, "print the recent console output and return (default when stdin is not a terminal)" },
        { "attach", NULL, "attach even when stdin is not a terminal: send stdin, print what comes back" },
        { NULL },
};

static const cli_option_t image_import_options[] = {
        { "name", "NAME", "image name (default: from the file name)" },
        { "format", "qcow2|raw", "disk format (default: qcow2 if the file says so, else raw)" },
        { NULL },
};

static const cli_option_t rm_assign_options[] = {
        { "provider", "USER", "the provider who sells this RM's capacity" },
        { "none", NULL, "take the RM back from its provider (when no machine is stored at its offer)" },
        { NULL },
};

static const cli_option_t offer_set_options[] = {
        { "vcpus", "N", "vCPUs sold on this RM", NULL, true },
        { "vcpu-price", "P", "price of one vCPU per running period", NULL, true },
        { "memory", "MIB", "RAM sold on this RM, in MiB", NULL, true },
        { "memory-price", "P", "price of one GiB of RAM per running period", NULL, true },
        { "running-period", "D", "the running period, such as 1h or 3600s (1 s to 3650 d)", NULL, true },
        { "disk", "GIB", "disk sold on this RM, in GiB", NULL, true },
        { "disk-price", "P", "price of one GiB of disk per storage period", NULL, true },
        { "storage-period", "D", "the storage period, such as 30d", NULL, true },
        { NULL },
};

#define MACHINE_SIZE_OPTIONS                                                                                           \
        { "image", "IMAGE", "the image it is made from" },                                                           \
        { "config", "NAME", "a suggested configuration (market configs) for image and size" },                       \
        { "memory", "MIB", "RAM in MiB, 16..65536" }, { "vcpus", "N", "virtual CPUs, 1..64" },                       \
        { "disk", "GIB", "disk in GiB, 1..1024" },                                                                  \
        { "bid-storage", "P/D", "the most it pays for storage, a price per period (such as 3/30d)" },                \
        { "bid-running", "P/D", "the most it pays for running, a price per period (such as 0.05/1h)" }

static const cli_option_t vm_register_options[] = {
        MACHINE_SIZE_OPTIONS,
        { NULL },
};

static const cli_option_t vm_store_options[] = {
        { "at", "RM", "the RM of the offer to store it at (vm offers lists them)", NULL, true },
        { NULL },
};

static const cli_option_t market_config_options[] = {
        { "image", "IMAGE", "the image", NULL, true },
        { "memory", "MIB", "RAM in MiB", NULL, true },
        { "vcpus", "N", "virtual CPUs", NULL, true },
        { "disk", "GIB", "disk in GiB", NULL, true },
        { NULL },
};

static const cli_option_t account_show_options[] = {
        { "limit", "N", "the latest N charges (default 100, at most 10000)" },
        { NULL },
};

static const cli_option_t market_prices_options[] = {
        { "history", NULL, "also the last 100 changes of the averages" },
        { NULL },
};

static const cli_option_t vm_create_options[] = {
        { "image", "IMAGE", "image to create the VM from", NULL, true },
        { "memory", "MIB", "guest memory in MiB, 16..65536" },
        { "vcpus", "N", "virtual CPUs, 1..64" },
        { "cpu-limit", "PERCENT", "CPU quota of its QEMU in percent of one CPU (50: half a CPU), 1..100 per vCPU; "
                                  "default 100 per vCPU" },
        { NULL },
};

static const cli_option_t vm_migrate_options[] = {
        { "to", "RM", "the destination RM (required)" },
        { "method", "chunks|full", "chunks: move only the chunks the destination lacks (default); full: copy whole files" },
        { "live", NULL, "migrate a running VM live (QEMU precopy, disk mirrored); --json adds downtime_ms" },
        { NULL },
};

static const cli_option_t vm_rm_options[] = {
        { "rm", "RM", "the RM to use (default: the Oracle picks one)" },
        { NULL },
};

static const cli_option_t vm_clone_options[] = {
        { "count", "N", "how many clones, 1..64 (default 1)" },
        { "rm", "RM", "put every clone on this chamber RM (default: one per free production RM)" },
        { NULL },
};

static const cli_option_t vm_balloon_options[] = {
        { "target", "MIB", "give the guest this much RAM back and hand the rest to the host (64..its RAM)" },
        { NULL },
};

static const cli_option_t service_create_options[] = {
        { "image", "IMAGE", "image its VMs are made from", NULL, true },
        { "pool", "N", "VMs made and pre-booted for it, 1..1000", NULL, true },
        { "min", "A", "fewest VMs active", NULL, true },
        { "max", "B", "most VMs active (at most --pool)", NULL, true },
        { "window", "SECONDS", "how long a bottleneck or low load lasts before VMs are added or drained (default 30)" },
        { "high", "PERCENT", "utilisation of its VMs above which it is a bottleneck; drained below half (default 70)" },
        { "priority", "N", "a higher priority takes RMs from lower ones when none is free (default 0)" },
        { "memory", "MIB", "guest memory of its VMs in MiB (default 128)" },
        { "vcpus", "N", "virtual CPUs of its VMs (default 1)" },
        { "health", "http|tcp",
          "how a VM is seen to serve: http, a GET of --health-path answered 2xx or 3xx; tcp, a TCP connect "
          "(default http)" },
        { "health-path", "PATH", "the path an http check GETs (default /health; / for a stock web server)" },
        { NULL },
};

static const cli_option_t vm_delete_options[] = {
        { "force", NULL, "stop the VM first if it runs" },
        { NULL },
};

static const cli_option_t events_options[] = {
        { "follow", NULL, "keep printing new events until interrupted" },
        { NULL },
};

static const cli_option_t sim_options[] = {
        { "trace", "builtin:NAME|FILE.csv", "the load trace: builtin:finance-sports, builtin:flash-crowd, or CSV t,service,load",
          NULL, true },
        { "rms", "N", "production RMs in the pool (default: enough for the static allocation)" },
        { "from-cluster", NULL, "take the activation and drain times the Oracle measured (GET /v1/figures)" },
        { "image", "NAME", "with --from-cluster: the image whose figures to take (needed when there are several)" },
        { "activation", "SECONDS", "the activation time of a VM (default: the simulator's 1.1 s)" },
        { "drain", "SECONDS", "the drain time of a VM (default: the simulator's 1.5 s)" },
        { NULL },
};

static const cli_option_t password_options[] = {
        { "password-file", "FILE", "read the password from the first line of FILE (default: a prompt, or stdin)" },
        { NULL },
};

static const cli_option_t user_create_options[] = {
        { "role", "admin|operator|provider|buyer", "what the user may do (DESIGN.md §10)", NULL, true },
        { "password-file", "FILE", "read the password from the first line of FILE (default: a prompt, or stdin)" },
        { NULL },
};

static const cli_option_t signup_options[] = {
        { "role", "provider|buyer", "sell RMs or run VMs", NULL, true },
        { "password-file", "FILE", "read the password from the first line of FILE (default: a prompt, or stdin)" },
        { NULL },
};

static const cli_option_t token_create_options[] = {
        { "name", "NAME", "a label for the token (default api)" },
        { "expires", "DURATION", "lifetime: 90m, 12h, 30d (default), or never" },
        { "role", "ROLE", "a narrower role than yours for this token" },
        { NULL },
};

static const cli_option_t token_list_options[] = {
        { "all", NULL, "everyone's tokens (admin)" },
        { NULL },
};

/* keep in sync with DESIGN.md §4 (the CLI contract) */
static const cli_command_t commands[] = {
        { "oracle", cmd_oracle, "--data DIR [--listen ADDR:PORT] [--guest-dir DIR]", NULL, "run the Oracle, the controller daemon",
          CMD_PASSTHROUGH },
        { "node", cmd_node, "--oracle URL --name NAME --role production|chamber --data DIR [--listen ADDR:PORT] "
          "[--accel auto|kvm|tcg]", NULL, "run the agent of one RM", CMD_PASSTHROUGH },
        { "cluster up", cmd_cluster_up, NULL, cluster_up_options,
          "start a local cluster (an Oracle and its RMs) and wait until every RM is up" },
        { "cluster down", cmd_cluster_down, NULL, cluster_dir_options, "stop everything a local cluster started" },
        { "cluster restart", cmd_cluster_restart, "NAME", cluster_dir_options,
          "restart \"oracle\" or the node of RM NAME with the same data" },
        { "login", cmd_login, "USER", password_options,
          "log in: a session token for 12 hours in the login file (~/.config/vmatrix/token)" },
        { "logout", cmd_logout, NULL, NULL, "end the session of the login file" },
        { "whoami", cmd_whoami, NULL, NULL, "show who the token in use speaks for" },
        { "signup", cmd_signup, "NAME", signup_options, "make an account on an Oracle that takes signups" },
        { "user create", cmd_user_create, "NAME", user_create_options, "create a user (admin)" },
        { "user list", cmd_user_list, NULL, NULL, "list users (admin)" },
        { "user delete", cmd_user_delete, "NAME", NULL, "delete a user and their tokens (admin; not the last admin)" },
        { "user passwd", cmd_user_passwd, "NAME", password_options, "set a user's password (yours, or any as admin)" },
        { "token create", cmd_token_create, NULL, token_create_options, "make an API token; its secret is shown once" },
        { "token list", cmd_token_list, NULL, token_list_options, "list your API tokens" },
        { "token revoke", cmd_token_revoke, "ID", NULL, "revoke a token at once" },
        { "rm list", cmd_rm_list, NULL, NULL, "list the real machines (RMs)" },
        { "rm join-token create", cmd_rm_join_token_create, NULL, join_token_options,
          "make a single-use token with which a new RM enrols (vmatrix node --join TOKEN); printed once" },
        { "rm fence", cmd_rm_fence, "NAME", NULL,
          "declare an RM down now and fence its VMs (an operator's decision while the Oracle holds fencing for an "
          "isolation)" },
        { "rm assign", cmd_rm_assign, "NAME", rm_assign_options,
          "hand an RM to a provider, who sells its capacity in the marketplace (operators)" },
        { "offer set", cmd_offer_set, "RM", offer_set_options,
          "sell capacity on one of your RMs at these unit prices (machines stored already keep theirs)" },
        { "offer list", cmd_offer_list, NULL, NULL,
          "your offers: capacity used and free, the buyers' machines held there, revenue, the market's averages" },
        { "offer withdraw", cmd_offer_withdraw, "RM", NULL, "take an offer off the market (when nothing is stored there)" },
        { "market configs", cmd_market_configs, NULL, NULL, "the suggested configurations, with estimated prices" },
        { "market config add", cmd_market_config_add, "NAME", market_config_options,
          "add a suggested configuration (admin)" },
        { "market config delete", cmd_market_config_delete, "NAME", NULL, "remove a suggested configuration (admin)" },
        { "market prices", cmd_market_prices, NULL, market_prices_options,
          "the market's average prices per vCPU, GiB of RAM and GiB of disk, and of each configuration" },
        { "market fee", cmd_market_fee, "[AMOUNT]", NULL, "show, or set (admin), the fee for registering a machine" },
        { "account show", cmd_account_show, "[USER]", account_show_options,
          "a balance, the charges per machine and period, and when the money runs out at the current rates" },
        { "account deposit", cmd_account_deposit, "USER AMOUNT", NULL, "put money into an account (admin)" },
        { "image build", cmd_image_build, "BUILTIN", NULL, "build and register a builtin image (tiny-http)" },
        { "image list", cmd_image_list, NULL, NULL, "list images" },
        { "image delete", cmd_image_delete, "NAME", NULL, "delete an image that no VM or service uses" },
        { "image import", cmd_image_import, "FILE", image_import_options,
          "register a user's qcow2 or raw disk image (BIOS boot)" },
        { "vm create", cmd_vm_create, "NAME", vm_create_options, "create a VM in the Nest (-> stored)" },
        { "vm register", cmd_vm_register, "NAME", vm_register_options,
          "register a machine in the marketplace with the price you bid (-> registered; nowhere yet)" },
        { "vm edit", cmd_vm_edit, "NAME", vm_register_options, "change a registered machine's size, image or bid" },
        { "vm offers", cmd_vm_offers, "NAME", NULL,
          "the offers that fit a registered machine, cheapest first (or, once stored, where it could migrate)" },
        { "vm store", cmd_vm_store, "NAME", vm_store_options,
          "store a registered machine at an offer, at the offer's prices now (-> stored)" },
        { "vm boot", cmd_vm_action, "NAME", vm_rm_options, "boot a VM on a chamber RM (-> loading)", CMD_WAITS },
        { "vm suspend", cmd_vm_action, "NAME", NULL, "suspend a VM, it stays on its RM (-> suspended)", CMD_WAITS },
        { "vm resume", cmd_vm_action, "NAME", NULL, "resume a suspended VM where it is", CMD_WAITS },
        { "vm hibernate", cmd_vm_action, "NAME", NULL, "suspend a VM and store it in the Nest (-> stored, prebooted)",
          CMD_WAITS },
        { "vm activate", cmd_vm_action, "NAME", vm_rm_options, "run a VM on an idle production RM (-> active)",
          CMD_WAITS },
        { "vm deactivate", cmd_vm_action, "NAME", NULL, "drain, suspend and store a VM (-> stored, prebooted)",
          CMD_WAITS },
        { "vm migrate", cmd_vm_action, "NAME", vm_migrate_options,
          "move a suspended VM to another RM, or a running one with --live (versioned and atomic: it stays where it "
          "was on any failure)", CMD_WAITS },
        { "vm clone", cmd_vm_clone, "NAME", vm_clone_options,
          "start N new VMs from a pre-booted VM's snapshot, copy-on-write, each with its own name, MAC, address "
          "and random seed", CMD_WAITS },
        { "vm balloon", cmd_vm_balloon, "NAME", vm_balloon_options,
          "show a running VM's balloon, or set how much RAM it keeps (idle VMs are reclaimed by themselves)" },
        { "vm export", cmd_vm_export, "NAME FILE", NULL, "write a VM's disk (its last bundle in the Nest) to FILE as qcow2" },
        { "vm stop", cmd_vm_action, "NAME", NULL, "power a VM off (-> stored, not prebooted)", CMD_WAITS },
        { "vm delete", cmd_vm_action, "NAME", vm_delete_options, "delete a VM and its stored bundles", CMD_WAITS },
        { "vm list", cmd_vm_list, NULL, NULL, "list VMs" },
        { "vm show", cmd_vm_show, "NAME", NULL, "show one VM" },
        { "vm console", cmd_vm_console, "NAME", console_options,
          "attach to a VM's serial console (Ctrl-] leaves); prints its recent output when not on a terminal" },
        { "nest stats", cmd_nest_stats, NULL, NULL, "show the Nest's storage use" },
        { "service create", cmd_service_create, "NAME", service_create_options,
          "create a service: a pool of VMs pre-booted into the Nest behind a load-balancer frontend", CMD_WAITS },
        { "service list", cmd_service_list, NULL, NULL, "list services" },
        { "service show", cmd_service_show, "NAME", NULL, "show a service: its endpoint and its VMs" },
        { "service top", cmd_service_top, "[NAME]", service_top_options,
          "live load of services and their VMs: requests, queue, response time, CPU, memory, I/O" },
        { "service delete", cmd_service_delete, "NAME", NULL, "delete a service and its VMs", CMD_WAITS },
        { "events", cmd_events, NULL, events_options, "list events: state changes, failures, switching" },
        { "sim", cmd_sim, NULL, sim_options,
          "replay a load trace through the switching policy: RM-hours against static allocation and the optimum" },
        { NULL },
};

const cli_command_t *command_table(void) { return commands; }

/* Does name consist of the given words (n of them)? */
static bool name_is_words(const char *name, char *const *words, int n) {
        for (int i = 0; i < n; i++) {
                size_t len = strlen(words[i]);
                if (i > 0 && *name++ != ' ')
                        return false;
                if (strncmp(name, words[i], len) != 0)
                        return false;
                name += len;
        }
        return *name == 0;
}

const cli_command_t *command_find(int argc, char *const *argv, int *ret_words) {
        for (int n = MIN(argc, 3); n >= 1; n--)
                for (const cli_command_t *cmd = commands; cmd->name; cmd++)
                        if (name_is_words(cmd->name, argv, n)) {
                                *ret_words = n;
                                return cmd;
                        }
        return NULL;
}

bool command_is_group(const char *word) {
        size_t len = strlen(word);
        for (const cli_command_t *cmd = commands; cmd->name; cmd++)
                if (strncmp(cmd->name, word, len) == 0 && cmd->name[len] == ' ')
                        return true;
        return false;
}

/* The option tables a command accepts, most specific first; NULL-terminated. */
static void command_option_sets(const cli_command_t *cmd, const cli_option_t *sets[4], bool with_global) {
        unsigned n = 0;
        if (cmd && cmd->options)
                sets[n++] = cmd->options;
        if (cmd && (cmd->flags & CMD_WAITS))
                sets[n++] = wait_options;
        if (with_global)
                sets[n++] = global_options;
        sets[n] = NULL;
}

char *command_usage(const cli_command_t *cmd) {
        char *s = xasprintf("vmatrix %s%s%s", cmd->name, cmd->args ? " " : "", cmd->args ?: "");
        const cli_option_t *sets[4];
        command_option_sets(cmd, sets, false);
        for (const cli_option_t **set = sets; *set; set++)
                for (const cli_option_t *o = *set; o->name; o++) {
                        char *next = xasprintf("%s %s--%s%s%s%s", s, o->required ? "" : "[", o->name,
                                               o->value ? " " : "", o->value ?: "", o->required ? "" : "]");
                        free(s);
                        s = next;
                }
        return s;
}

static void help_options(FILE *f, const cli_option_t *const *sets) {
        _cleanup_(table_freep) table_t *t = table_new(2, NULL);
        for (; *sets; sets++)
                for (const cli_option_t *o = *sets; o->name; o++) {
                        table_add_take(t, xasprintf("  --%s%s%s", o->name, o->value ? " " : "", o->value ?: ""));
                        table_add(t, o->help);
                }
        table_add(t, "  -h, --help");
        table_add(t, "show this help");
        table_flush(t, f);
}

static void help_command(FILE *f, const cli_command_t *cmd) {
        _cleanup_free_ char *usage = command_usage(cmd);
        fprintf(f, "usage: %s\n\n%s\n", usage, cmd->help);
        if (cmd->flags & CMD_PASSTHROUGH) {
                fprintf(f, "\nThe options are the daemon's own: see `vmatrix %s --help`.\n", cmd->name);
                return;
        }
        const cli_option_t *sets[4];
        command_option_sets(cmd, sets, true);
        fputs("\noptions:\n", f);
        help_options(f, sets);
}

/* The command list, or only the commands of one group (group NULL: all). */
static void help_list(FILE *f, const char *group) {
        fprintf(f, "usage: vmatrix [--oracle URL | --dir DIR] [--json] %s%sCOMMAND [ARGS...]\n\n",
                group ?: "", group ? " " : "");
        fputs("commands:\n", f);
        size_t len = group ? strlen(group) : 0;
        for (const cli_command_t *cmd = commands; cmd->name; cmd++) {
                if (group && !(strncmp(cmd->name, group, len) == 0 && cmd->name[len] == ' '))
                        continue;
                _cleanup_free_ char *usage = command_usage(cmd);
                fprintf(f, "  %s\n      %s\n", usage + strlen("vmatrix "), cmd->help);
        }
        const cli_option_t *sets[] = { global_options, NULL };
        fputs("\nglobal options (before or after the command):\n", f);
        help_options(f, sets);
        fprintf(f, "\nRun `vmatrix %s%sCOMMAND --help` for the options of a command.\n", group ?: "",
                group ? " " : "");
}

static bool argv_has_help(int argc, char **argv) {
        for (int i = 0; i < argc && !streq(argv[i], "--"); i++)
                if (streq(argv[i], "--help") || streq(argv[i], "-h"))
                        return true;
        return false;
}

/* Daemons get [name, options given before the name..., everything after it]. */
static int run_passthrough(cli_t *c, const cli_command_t *cmd, int argc, char **argv, int first, int after) {
        _cleanup_free_ char **v = xcalloc((size_t)argc + 1, sizeof *v);
        int n = 0;
        v[n++] = (char *)cmd->name;
        for (int i = 1; i < first; i++)
                v[n++] = argv[i];
        for (int i = after; i < argc; i++)
                v[n++] = argv[i];
        c->argc = n;
        c->argv = v;
        return cmd->handler(c);
}

static int cli_dispatch(cli_t *c, int argc, char **argv) {
        char error[256];
        const cli_option_t *sets[4] = { global_options, NULL };
        int i = 1;
        if (args_parse(&c->args, sets, argc, argv, &i, ARGS_STOP_AT_WORD, error, sizeof error) < 0)
                return cli_usage(c, "%s; see vmatrix --help", error);
        if (i >= argc) {
                if (c->args.help) {
                        help_list(c->out, NULL);
                        return CLI_OK;
                }
                return cli_usage(c, "no command given; see vmatrix --help");
        }

        int words = 0;
        const cli_command_t *cmd = command_find(argc - i, argv + i, &words);
        if (!cmd) {
                bool group = command_is_group(argv[i]);
                bool has_sub = i + 1 < argc && argv[i + 1][0] != '-';
                if (group && !has_sub) {
                        if (c->args.help || argv_has_help(argc - i, argv + i)) {
                                help_list(c->out, argv[i]);
                                return CLI_OK;
                        }
                        return cli_usage(c, "missing command after \"%s\"; see vmatrix %s --help", argv[i], argv[i]);
                }
                if (group)
                        return cli_usage(c, "unknown command \"%s %s\"; see vmatrix --help", argv[i], argv[i + 1]);
                return cli_usage(c, "unknown command \"%s\"; see vmatrix --help", argv[i]);
        }
        c->command = cmd;
        if (cmd->flags & CMD_PASSTHROUGH)
                return run_passthrough(c, cmd, argc, argv, i, i + words);

        i += words;
        command_option_sets(cmd, sets, true);
        bool help = argv_has_help(argc - i, argv + i);
        int r = args_parse(&c->args, sets, argc, argv, &i, 0, error, sizeof error);
        if (help || c->args.help) {
                help_command(c->out, cmd);
                return CLI_OK;
        }
        if (r < 0 || args_check(&c->args, sets, cmd->args, error, sizeof error) < 0)
                return cli_usage(c, "%s; see vmatrix %s --help", error, cmd->name);
        c->json = args_flag(&c->args, "json");
        return cmd->handler(c);
}

int cli_run(int argc, char **argv, FILE *out, FILE *err) {
        cli_t c = { .out = out, .err = err, .tty = isatty(fileno(err)) > 0 };
        int r = cli_dispatch(&c, argc, argv);
        progress_clear(&c);
        fflush(out);
        free(c.oracle);
        if (c.token)
                explicit_bzero(c.token, strlen(c.token));
        free(c.token);
        return r;
}

int cli_main(int argc, char **argv) { return cli_run(argc, argv, stdout, stderr); }
