/* `vmatrix vm ...`: create, the lifecycle actions (one handler for all, the action is the
 * command's second word), list, show and console. Everything goes through the Oracle API:
 * POST /v1/vms, POST /v1/vms/NAME/ACTION (202 + operation), GET /v1/vms[/NAME[/console]]. */
#include <string.h>

#include "base/util.h"
#include "bundle/bundle.h"
#include "cli/api.h"
#include "cli/commands.h"
#include "cli/ops-wait.h"
#include "cli/output.h"

/* `vm show --json` contract fields (DESIGN.md §4); the API's other fields pass through. */
static const char *const vm_json_fields[] = { "name", "state", "version", "rm", "address",
                                              "prebooted", "memory_mib", "image", "pid" };
static const char *const vm_show_keys[] = { "name", "state", "version", "rm", "address",
                                            "prebooted", "memory_mib", "vcpus", "cpu_limit", "image", "pid",
                                            "mac", "nest_version", "op_id", "actions" };

/* Prints a VM object as `vm show` does: key: value lines, or the object with --json. */
static int vm_print(cli_t *c, json_t *vm) {
        /* rather than a block of "-", say that the Oracle sent something else */
        if (!json_is_string(json_object_get(vm, "name")))
                return cli_fail(c, "unexpected answer from the Oracle: not a VM object");
        if (c->json) {
                json_ensure_fields(vm, vm_json_fields, ELEMENTSOF(vm_json_fields));
                return output_json(c, vm, false);
        }
        kv_print(c->out, vm, vm_show_keys, ELEMENTSOF(vm_show_keys));
        return CLI_OK;
}

static int vm_get_and_print(cli_t *c, const char *name) {
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s", name);
        _cleanup_(json_decrefp) json_t *vm = NULL;
        int r = api_call(c, "GET", path, NULL, API_TIMEOUT_MS, &vm);
        return r != CLI_OK ? r : vm_print(c, vm);
}

int cmd_vm_create(cli_t *c) {
        const char *name = cli_arg(c, 0), *image = cli_opt(c, "image");
        int64_t memory = 0, vcpus = 0, cpu_limit = 0;
        int r;
        if ((r = cli_check_name(c, "VM", name)) != CLI_OK || (r = cli_check_name(c, "image", image)) != CLI_OK ||
            (r = cli_opt_int(c, "memory", 16, 65536, &memory)) != CLI_OK ||
            (r = cli_opt_int(c, "vcpus", 1, 64, &vcpus)) != CLI_OK)
                return r;
        const char *limit = cli_opt(c, "cpu-limit");
        int64_t limit_max = BUNDLE_CPU_LIMIT_PER_VCPU * (vcpus ? vcpus : 1);
        if (limit && parse_int64(limit, 1, limit_max, &cpu_limit) < 0)
                return cli_usage(c, "--cpu-limit must be a percentage of one CPU from 1 to %lld (at most %d per vCPU, "
                                 "%lld vCPU%s), not \"%s\"", (long long)limit_max, BUNDLE_CPU_LIMIT_PER_VCPU,
                                 (long long)(vcpus ? vcpus : 1), vcpus > 1 ? "s" : "", limit);
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:s,s:s}", "name", name, "image", image);
        if (memory)
                json_object_set_new(body, "memory_mib", json_integer(memory));
        if (vcpus)
                json_object_set_new(body, "vcpus", json_integer(vcpus));
        if (cpu_limit)
                json_object_set_new(body, "cpu_limit", json_integer(cpu_limit));
        _cleanup_(json_decrefp) json_t *vm = NULL;
        r = api_call(c, "POST", "/v1/vms", body, API_TIMEOUT_MS, &vm);
        return r != CLI_OK ? r : vm_print(c, vm);
}

int cmd_vm_action(cli_t *c) {
        const char *action = strchr(c->command->name, ' ') + 1; /* "vm boot" -> "boot" */
        const char *name = cli_arg(c, 0), *rm = cli_opt(c, "rm") ?: cli_opt(c, "to");
        const char *method = cli_opt(c, "method");
        int r = cli_check_name(c, "VM", name);
        if (r == CLI_OK && method && !streq(method, "chunks") && !streq(method, "full"))
                r = cli_usage(c, "--method must be chunks or full, not \"%s\"", method);
        if (r == CLI_OK && method && cli_flag(c, "live"))
                r = cli_usage(c, "--live and --method do not go together: a live migration copies RAM and disk live");
        if (r == CLI_OK && rm)
                r = cli_check_name(c, "RM", rm);
        if (r != CLI_OK)
                return r;
        _cleanup_(json_decrefp) json_t *body = json_object();
        if (rm)
                json_object_set_new(body, "rm", json_string(rm));
        if (cli_flag(c, "force"))
                json_object_set_new(body, "force", json_true());
        if (method)
                json_object_set_new(body, "method", json_string(method));
        if (cli_flag(c, "live"))
                json_object_set_new(body, "live", json_true());

        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/%s", name, action);
        _cleanup_(json_decrefp) json_t *answer = NULL;
        r = api_call(c, "POST", path, body, API_TIMEOUT_MS, &answer);
        if (r != CLI_OK)
                return r;
        json_t *op = json_object_get(answer, "op");
        if (!json_is_object(op))
                return cli_fail(c, "unexpected answer from the Oracle to %s %s: no operation", action, name);
        if (cli_flag(c, "no-wait")) {
                if (c->json)
                        return output_json(c, op, false);
                fprintf(c->out, "%s\n", json_string_value(json_object_get(op, "id")) ?: "-");
                return CLI_OK;
        }

        _cleanup_(json_decrefp) json_t *final = NULL;
        r = ops_wait(c, op, &final);
        if (r != CLI_OK)
                return r;
        if (streq(action, "migrate")) {
                /* the contract of `vm migrate --json`: method, bytes_transferred, bytes_total, seconds */
                const json_t *res = json_object_get(final, "result");
                if (c->json)
                        return output_json(c, (json_t *)res, false);
                fprintf(c->out, "migrated vm %s from %s to %s by %s: %lld of %lld bytes moved in %.2f s\n", name,
                        json_string_value(json_object_get(res, "from")) ?: "?",
                        json_string_value(json_object_get(res, "to")) ?: "?",
                        json_string_value(json_object_get(res, "method")) ?: "?",
                        (long long)json_integer_value(json_object_get(res, "bytes_transferred")),
                        (long long)json_integer_value(json_object_get(res, "bytes_total")),
                        json_number_value(json_object_get(res, "seconds")));
                if (json_object_get(res, "downtime_ms"))
                        fprintf(c->out, "live: the guest was paused for %lld ms\n",
                                (long long)json_integer_value(json_object_get(res, "downtime_ms")));
                return CLI_OK;
        }
        if (streq(action, "delete")) {
                if (c->json)
                        return output_json(c, final, false);
                fprintf(c->out, "deleted vm %s\n", name);
                return CLI_OK;
        }
        return vm_get_and_print(c, name);
}

int cmd_vm_list(cli_t *c) {
        _cleanup_(json_decrefp) json_t *vms = NULL;
        int r = api_list_all(c, "/v1/vms", &vms);
        if (r != CLI_OK)
                return r;
        if (!json_is_array(vms))
                return cli_fail(c, "unexpected answer from the Oracle to GET /v1/vms: not an array");
        size_t i;
        json_t *vm;
        if (c->json) {
                json_array_foreach(vms, i, vm)
                        json_ensure_fields(vm, vm_json_fields, ELEMENTSOF(vm_json_fields));
                return output_json(c, vms, false);
        }
        static const char *const headers[] = { "NAME", "STATE", "VERSION", "RM", "ADDRESS", "PREBOOTED", "IMAGE" };
        static const char *const keys[] = { "name", "state", "version", "rm", "address", "prebooted", "image" };
        _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(headers), headers);
        json_array_foreach(vms, i, vm)
                for (unsigned k = 0; k < ELEMENTSOF(keys); k++)
                        table_add_json(t, vm, keys[k]);
        table_flush(t, c->out);
        return CLI_OK;
}

int cmd_vm_show(cli_t *c) {
        int r = cli_check_name(c, "VM", cli_arg(c, 0));
        return r != CLI_OK ? r : vm_get_and_print(c, cli_arg(c, 0));
}

int cmd_vm_console(cli_t *c) {
        const char *name = cli_arg(c, 0);
        int r = cli_check_name(c, "VM", name);
        if (r != CLI_OK)
                return r;
        if (!c->json && !cli_flag(c, "log") && (cli_flag(c, "attach") || isatty(STDIN_FILENO)))
                return console_attach(c, name);
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/console", name);
        http_response_t resp = { 0 };
        r = api_request(c, "GET", path, NULL, API_TIMEOUT_MS, &resp);
        if (r != CLI_OK)
                return r;
        /* the API answers text; accept {"console": TEXT} too */
        const char *text = resp.body;
        size_t len = resp.body_len;
        if (json_is_string(json_object_get(resp.json, "console"))) {
                text = json_string_value(json_object_get(resp.json, "console"));
                len = json_string_length(json_object_get(resp.json, "console"));
        }
        if (c->json) {
                _cleanup_(json_decrefp) json_t *j = json_pack("{s:s,s:s%}", "name", name, "console", text, len);
                r = j ? output_json(c, j, false) : cli_fail(c, "console output of %s is not valid UTF-8", name);
        } else {
                fwrite(text, 1, len, c->out);
                if (len > 0 && text[len - 1] != '\n')
                        fputc('\n', c->out);
        }
        http_response_clear(&resp);
        return r;
}

/* vm export NAME FILE: the VM's disk (from its last bundle in the Nest) as a standalone qcow2. */
int cmd_vm_export(cli_t *c) {
        const char *name = cli_arg(c, 0), *file = cli_arg(c, 1);
        int r = cli_check_name(c, "VM", name);
        if (r != CLI_OK)
                return r;
        const char *base = NULL;
        r = api_oracle(c, &base);
        if (r != CLI_OK)
                return r;
        _cleanup_free_ char *url = xasprintf("%s/v1/vms/%s/export", base, name);
        int k = http_call_download(api_credentials(c), url, file, API_LONG_TIMEOUT_MS, NULL, NULL);
        if (k == -EPROTO) {
                /* the Oracle refused: ask again for its message */
                _cleanup_free_ char *path = xasprintf("/v1/vms/%s/export", name);
                http_response_t resp = { 0 };
                r = api_request(c, "GET", path, NULL, API_TIMEOUT_MS, &resp);
                http_response_clear(&resp);
                return r != CLI_OK ? r : cli_fail(c, "cannot export vm %s", name);
        }
        if (k < 0)
                return cli_fail(c, "cannot export vm %s to %s: %s", name, file, strerror(-k));
        int64_t size = file_size(file);
        if (c->json) {
                _cleanup_(json_decrefp) json_t *j = json_pack("{s:s,s:s,s:I,s:s}", "name", name, "file", file, "bytes",
                                                              (json_int_t)size, "format", "qcow2");
                return output_json(c, j, false);
        }
        fprintf(c->out, "exported the disk of vm %s to %s (qcow2, %lld bytes)\n", name, file, (long long)size);
        return CLI_OK;
}

/* vm clone NAME --count N [--rm RM]: starts the clones and waits for each. */
int cmd_vm_clone(cli_t *c) {
        const char *name = cli_arg(c, 0), *rm = cli_opt(c, "rm"), *count_s = cli_opt(c, "count");
        int64_t count = 1;
        int r = cli_check_name(c, "VM", name);
        if (r == CLI_OK && count_s && parse_int64(count_s, 1, 64, &count) < 0)
                r = cli_usage(c, "--count must be a number from 1 to 64, not \"%s\"", count_s);
        if (r == CLI_OK && rm)
                r = cli_check_name(c, "RM", rm);
        if (r != CLI_OK)
                return r;
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:I}", "count", (json_int_t)count);
        if (rm)
                json_object_set_new(body, "rm", json_string(rm));
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/clone", name);
        _cleanup_(json_decrefp) json_t *answer = NULL;
        r = api_call(c, "POST", path, body, API_TIMEOUT_MS, &answer);
        if (r != CLI_OK)
                return r;
        const json_t *ops = json_object_get(answer, "ops");
        if (!json_is_array(ops))
                return cli_fail(c, "unexpected answer from the Oracle to clone %s: no operations", name);
        _cleanup_(json_decrefp) json_t *out = json_array();
        int failed = 0;
        size_t i;
        const json_t *op;
        json_array_foreach(ops, i, op) {
                const char *clone = json_string_value(json_array_get(json_object_get(answer, "clones"), i)) ?: "?";
                const char *error = json_string_value(json_object_get(op, "error"));
                _cleanup_(json_decrefp) json_t *final = NULL;
                if (!error && ops_wait(c, op, &final) != CLI_OK)
                        error = "its operation failed (see above)";
                _cleanup_(json_decrefp) json_t *vm = NULL;
                _cleanup_free_ char *vm_path = xasprintf("/v1/vms/%s", clone);
                if (!error && api_call(c, "GET", vm_path, NULL, API_TIMEOUT_MS, &vm) != CLI_OK)
                        error = "cannot read it back";
                failed += error != NULL;
                json_array_append_new(out, json_pack("{s:s,s:s?,s:s?,s:s?,s:s?}", "name", clone, "state",
                                                     json_string_value(json_object_get(vm, "state")), "rm",
                                                     json_string_value(json_object_get(vm, "rm")), "address",
                                                     json_string_value(json_object_get(vm, "address")), "error", error));
                if (!c->json)
                        fprintf(c->out, "%-24s %-10s %-12s %s\n", clone,
                                error ? "failed" : json_string_value(json_object_get(vm, "state")) ?: "-",
                                json_string_value(json_object_get(vm, "rm")) ?: "-",
                                error ? error : json_string_value(json_object_get(vm, "address")) ?: "-");
        }
        if (c->json) {
                _cleanup_(json_decrefp) json_t *doc = json_pack("{s:O}", "clones", out);
                output_json(c, doc, false);
        }
        return failed ? cli_fail(c, "%d of %zu clones of %s did not start", failed, json_array_size(ops), name)
                      : CLI_OK;
}

/* vm balloon NAME [--target MIB]: shows (and sets) a running VM's balloon. */
int cmd_vm_balloon(cli_t *c) {
        const char *name = cli_arg(c, 0), *target_s = cli_opt(c, "target");
        int64_t target = 0;
        int r = cli_check_name(c, "VM", name);
        if (r == CLI_OK && target_s && parse_int64(target_s, 1, INT32_MAX, &target) < 0)
                r = cli_usage(c, "--target must be a size in MiB, not \"%s\"", target_s);
        if (r != CLI_OK)
                return r;
        _cleanup_(json_decrefp) json_t *body = target_s ? json_pack("{s:I}", "target_mib", (json_int_t)target)
                                                        : json_object();
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/balloon", name);
        _cleanup_(json_decrefp) json_t *answer = NULL;
        r = api_call(c, "POST", path, body, API_TIMEOUT_MS, &answer);
        if (r != CLI_OK)
                return r;
        if (c->json)
                return output_json(c, answer, false);
        fprintf(c->out, "vm %s: %lld of %lld MiB (target %lld MiB)%s\n", name,
                (long long)json_integer_value(json_object_get(answer, "actual_mib")),
                (long long)json_integer_value(json_object_get(answer, "memory_mib")),
                (long long)json_integer_value(json_object_get(answer, "target_mib")),
                json_is_true(json_object_get(answer, "reclaimable")) ? ""
                                                                      : "; runs on a mapped snapshot until its next save");
        return CLI_OK;
}
