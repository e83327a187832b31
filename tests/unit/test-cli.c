/* Unit tests for src/cli: option parsing, table layout, image name derivation, the command
 * table and its generated help, and whole command lines run against a fake Oracle (canned API
 * answers on the project's HTTP server), checking exit status, stdout and the one stderr line. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/util.h"
#include "cli/api.h"
#include "cli/args.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "net/http-server.h"
#include "tap.h"

/* ---- option parsing ---- */

static const cli_option_t t_cmd_options[] = {
        { "image", "IMAGE", "image", NULL, true },
        { "memory", "MIB", "memory" },
        { "force", NULL, "force" },
        { NULL },
};
static const cli_option_t t_global_options[] = {
        { "json", NULL, "json" },
        { "oracle", "URL", "oracle", "TEST_CLI_ORACLE" },
        { NULL },
};

/* Parses a space-separated command line (after the command name) against the test options,
 * then checks it against spec. Returns the first error (parse or check) or 0. */
static int parse(const char *line, const char *spec, cli_args_t *a, char *error, size_t size) {
        static char buf[512];
        static char *argv[32];
        int argc = 0;
        snprintf(buf, sizeof buf, "%s", line);
        for (char *tok = strtok(buf, " "); tok && argc < 31; tok = strtok(NULL, " "))
                argv[argc++] = tok;
        const cli_option_t *sets[] = { t_cmd_options, t_global_options, NULL };
        *a = (cli_args_t){ 0 };
        int i = 0;
        int r = args_parse(a, sets, argc, argv, &i, 0, error, size);
        if (r >= 0)
                r = args_check(a, sets, spec, error, size);
        return r;
}

static void test_args(void) {
        cli_args_t a;
        char err[256];

        CHECK(parse("web1 --image tiny --memory 64", "NAME", &a, err, sizeof err) == 0);
        CHECK_STREQ(args_get(&a, "image"), "tiny");
        CHECK_STREQ(args_get(&a, "memory"), "64");
        CHECK(a.n_positional == 1);
        CHECK_STREQ(a.positional[0], "web1");
        CHECK(!args_flag(&a, "force"));

        /* --x=value, flags, options before positionals, the last value wins */
        CHECK(parse("--image=a --force --json --image=b web1", "NAME", &a, err, sizeof err) == 0);
        CHECK_STREQ(args_get(&a, "image"), "b");
        CHECK(args_flag(&a, "force") && args_flag(&a, "json"));
        CHECK_STREQ(a.positional[0], "web1");

        /* missing values: at the end, before another option, empty after = */
        CHECK(parse("web1 --image", "NAME", &a, err, sizeof err) == -EINVAL);
        CHECK_STREQ(err, "option --image needs a value (IMAGE)");
        CHECK(parse("web1 --image --force", "NAME", &a, err, sizeof err) == -EINVAL);
        CHECK_STREQ(err, "option --image needs a value (IMAGE)");
        CHECK(parse("web1 --image=", "NAME", &a, err, sizeof err) == -EINVAL);
        /* a negative number is a value (the range check then names the real problem) */
        CHECK(parse("web1 --image x --memory -5", "NAME", &a, err, sizeof err) == 0);
        CHECK_STREQ(args_get(&a, "memory"), "-5");

        /* unknown options, values given to flags */
        CHECK(parse("web1 --image x --bogus", "NAME", &a, err, sizeof err) == -EINVAL);
        CHECK_STREQ(err, "unknown option --bogus");
        CHECK(parse("web1 --image x --bogus=1", "NAME", &a, err, sizeof err) == -EINVAL);
        CHECK_STREQ(err, "unknown option --bogus");
        CHECK(parse("-x web1", "NAME", &a, err, sizeof err) == -EINVAL);
        CHECK_STREQ(err, "unknown option -x");
        CHECK(parse("web1 --image x --force=yes", "NAME", &a, err, sizeof err) == -EINVAL);
        CHECK_STREQ(err, "option --force takes no value");

        /* positional count against the spec; required options */
        CHECK(parse("--image x", "NAME", &a, err, sizeof err) == -EINVAL);
        CHECK_STREQ(err, "missing NAME");
        CHECK(parse("a b --image x", "NAME", &a, err, sizeof err) == -EINVAL);
        CHECK_STREQ(err, "unexpected argument \"b\"");
        CHECK(parse("a --image x", "NAME [RM]", &a, err, sizeof err) == 0);
        CHECK(parse("a b --image x", "NAME [RM]", &a, err, sizeof err) == 0);
        CHECK(parse("a b c --image x", "NAME [RM]", &a, err, sizeof err) == -EINVAL);
        CHECK(parse("--image x web1", NULL, &a, err, sizeof err) == -EINVAL);
        CHECK(parse("web1", "NAME", &a, err, sizeof err) == -EINVAL);
        CHECK_STREQ(err, "missing --image IMAGE");

        /* "--" ends options; "-" is an argument; -h/--help anywhere */
        CHECK(parse("--image x -- --force", "NAME", &a, err, sizeof err) == 0);
        CHECK_STREQ(a.positional[0], "--force");
        CHECK(!args_flag(&a, "force"));
        CHECK(parse("- --image x", "NAME", &a, err, sizeof err) == 0);
        CHECK_STREQ(a.positional[0], "-");
        CHECK(parse("web1 -h --image x", "NAME", &a, err, sizeof err) == 0 && a.help);
        CHECK(parse("--help", NULL, &a, err, sizeof err) == -EINVAL && a.help); /* help wins in cli.c */

        /* environment stands in for an absent option, not for a given one */
        setenv("TEST_CLI_ORACLE", "http://env:1", 1);
        CHECK(parse("web1 --image x", "NAME", &a, err, sizeof err) == 0);
        CHECK_STREQ(args_get(&a, "oracle"), "http://env:1");
        CHECK(parse("web1 --image x --oracle http://flag:2", "NAME", &a, err, sizeof err) == 0);
        CHECK_STREQ(args_get(&a, "oracle"), "http://flag:2");
        unsetenv("TEST_CLI_ORACLE");

        /* stopping at the command word (the global options before a command) */
        char *argv[] = { "vmatrix", "--oracle", "http://x:1", "--json", "vm", "list", NULL };
        const cli_option_t *sets[] = { t_global_options, NULL };
        a = (cli_args_t){ 0 };
        int i = 1;
        CHECK(args_parse(&a, sets, 6, argv, &i, ARGS_STOP_AT_WORD, err, sizeof err) == 0);
        CHECK(i == 4);
        CHECK_STREQ(args_get(&a, "oracle"), "http://x:1");
        CHECK(a.n_positional == 0);
}

/* ---- output ---- */

static char *capture_table(table_t *t) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        table_flush(t, f);
        fclose(f);
        return buf;
}

static void test_table(void) {
        static const char *const headers[] = { "NAME", "STATE", "RM" };
        table_t *t = table_new(3, headers);
        table_add(t, "web1");
        table_add(t, "active");
        table_add(t, "prod1");
        table_add(t, "database-7");
        table_add(t, "");
        table_add(t, NULL);
        char *s = capture_table(t);
        CHECK_STREQ(s, "NAME        STATE   RM\n"
                       "web1        active  prod1\n"
                       "database-7  -       -\n");
        free(s);

        /* a second flush: no header again, columns keep their width; UTF-8 counts characters */
        table_add(t, "x");
        table_add(t, "é");
        table_add(t, "z");
        s = capture_table(t);
        CHECK_STREQ(s, "x           é       z\n");
        free(s);
        table_free(t);

        /* minimum widths for streams, no header table (key: value) */
        static const unsigned widths[] = { 6, 0 };
        t = table_new(2, NULL);
        table_set_min_widths(t, widths);
        table_add(t, "a:");
        table_add(t, "1");
        s = capture_table(t);
        CHECK_STREQ(s, "a:      1\n");
        free(s);
        table_free(t);

        json_t *obj = json_pack("{s:s,s:i,s:b,s:n,s:[s,s],s:f}", "s", "x", "i", 42, "b", 0, "n", "a", "p", "q", "r",
                                1.5);
        char *cell;
        CHECK_STREQ((cell = json_cell(obj, "s")), "x");
        free(cell);
        CHECK_STREQ((cell = json_cell(obj, "i")), "42");
        free(cell);
        CHECK_STREQ((cell = json_cell(obj, "b")), "no");
        free(cell);
        CHECK(json_cell(obj, "n") == NULL);
        CHECK(json_cell(obj, "missing") == NULL);
        CHECK_STREQ((cell = json_cell(obj, "a")), "p,q");
        free(cell);
        CHECK_STREQ((cell = json_cell(obj, "r")), "1.5");
        free(cell);
        json_decref(obj);

        char buf[32];
        CHECK_STREQ(format_bytes(512, buf, sizeof buf), "512 B");
        CHECK_STREQ(format_bytes(1536, buf, sizeof buf), "1.5 KiB");
        CHECK_STREQ(format_bytes(3ull << 30, buf, sizeof buf), "3.0 GiB");

        setenv("TZ", "UTC", 1);
        tzset();
        json_t *e = json_pack("{s:f,s:I}", "time", 1700000000.5, "created_ms", (json_int_t)1700000000500);
        CHECK_STREQ((cell = json_time_cell(e, "time")), "2023-11-14T22:13:20");
        free(cell);
        CHECK_STREQ((cell = json_time_cell(e, "created_ms")), "2023-11-14T22:13:20");
        free(cell);
        json_decref(e);
}

static void test_image_name(void) {
        char *n;
        CHECK_STREQ((n = image_name_from_path("/srv/images/My Disk_1.QCOW2")), "my-disk-1");
        free(n);
        CHECK_STREQ((n = image_name_from_path("debian-12.qcow2")), "debian-12");
        free(n);
        CHECK_STREQ((n = image_name_from_path("disk.img.raw")), "disk-img");
        free(n);
        CHECK_STREQ((n = image_name_from_path("noext")), "noext");
        free(n);
        CHECK_STREQ((n = image_name_from_path("/x/_under.raw")), "under");
        free(n);
        CHECK_STREQ((n = image_name_from_path("/x/.hidden")), "hidden");
        free(n);
        CHECK(image_name_from_path("/x/___.raw") == NULL);
        CHECK_STREQ((n = image_name_from_path("/x/.raw")), "raw"); /* a leading dot is no extension */
        free(n);
        char long_name[200];
        memset(long_name, 'a', 100);
        strcpy(long_name + 100, ".raw");
        n = image_name_from_path(long_name);
        CHECK(n && strlen(n) == 63 && name_is_valid(n));
        free(n);
}

/* ---- command table ---- */

static void test_commands(void) {
        int words = 0;
        char *a1[] = { "vm", "create", "web1" };
        const cli_command_t *cmd = command_find(3, a1, &words);
        CHECK(cmd && streq(cmd->name, "vm create") && words == 2);
        char *a2[] = { "events", "--follow" };
        cmd = command_find(2, a2, &words);
        CHECK(cmd && streq(cmd->name, "events") && words == 1);
        char *a3[] = { "vm", "fly" };
        CHECK(command_find(2, a3, &words) == NULL);
        char *a4[] = { "vm" };
        CHECK(command_find(1, a4, &words) == NULL);
        char *a5[] = { "vm", "clone", "web1" };
        cmd = command_find(3, a5, &words);
        CHECK(cmd && streq(cmd->name, "vm clone") && words == 2);
        char *a5b[] = { "service", "create", "web" };
        cmd = command_find(3, a5b, &words);
        CHECK(cmd && streq(cmd->name, "service create") && words == 2);
        char *a5c[] = { "service", "scale" };
        CHECK(command_find(2, a5c, &words) == NULL);
        CHECK(command_is_group("vm") && command_is_group("cluster") && command_is_group("nest") &&
              command_is_group("service"));
        CHECK(!command_is_group("events") && !command_is_group("v") && !command_is_group("oracle"));

        char *a6[] = { "vm", "create" };
        char *usage = command_usage(command_find(2, a6, &words));
        CHECK_STREQ(usage, "vmatrix vm create NAME --image IMAGE [--memory MIB] [--vcpus N] [--cpu-limit PERCENT]");
        free(usage);
        char *a7[] = { "vm", "boot" };
        usage = command_usage(command_find(2, a7, &words));
        CHECK_STREQ(usage, "vmatrix vm boot NAME [--rm RM] [--no-wait]");
        free(usage);

        /* every entry is complete and findable by its own name */
        for (const cli_command_t *c = command_table(); c->name; c++) {
                CHECK(c->handler != NULL && c->help && *c->help);
                char name[64], *w[2];
                snprintf(name, sizeof name, "%s", c->name);
                w[0] = name;
                char *sp = strchr(name, ' ');
                if (sp)
                        *sp = 0;
                w[1] = sp ? sp + 1 : NULL;
                CHECK(command_find(sp ? 2 : 1, w, &words) == c);
        }
}

/* ---- whole command lines ---- */

typedef struct result {
        int status;
        char *out, *err;
} result_t;

static void result_clear(result_t *r) {
        free(r->out);
        free(r->err);
        *r = (result_t){ 0 };
}

static unsigned count_lines(const char *s) {
        unsigned n = 0;
        for (; *s; s++)
                n += *s == '\n';
        return n;
}

/* Runs `vmatrix ARGS` (space-separated, printf-style) in-process with captured output. */
static result_t run(const char *fmt, ...) _printf_(1, 2);
static result_t run(const char *fmt, ...) {
        char line[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        char *argv[64];
        int argc = 0;
        argv[argc++] = "vmatrix";
        for (char *tok = strtok(line, " "); tok && argc < 63; tok = strtok(NULL, " "))
                argv[argc++] = tok;
        argv[argc] = NULL;
        result_t r = { 0 };
        size_t ol = 0, el = 0;
        FILE *out = open_memstream(&r.out, &ol), *err = open_memstream(&r.err, &el);
        r.status = cli_run(argc, argv, out, err);
        fclose(out);
        fclose(err);
        return r;
}

static void test_dispatch(void) {
        unsetenv("VMATRIX_ORACLE");
        unsetenv("VMATRIX_CLUSTER_DIR");
        result_t r = run("vm fly");
        CHECK(r.status == 2);
        CHECK_STREQ(r.err, "vmatrix: unknown command \"vm fly\"; see vmatrix --help\n");
        CHECK_STREQ(r.out, "");
        result_clear(&r);

        r = run("fly");
        CHECK(r.status == 2 && strstr(r.err, "unknown command \"fly\""));
        result_clear(&r);

        r = run("%s", "");
        CHECK(r.status == 2 && count_lines(r.err) == 1);
        result_clear(&r);

        r = run("vm");
        CHECK(r.status == 2 && count_lines(r.err) == 1 && strstr(r.err, "vmatrix vm --help"));
        result_clear(&r);

        r = run("--help");
        CHECK(r.status == 0 && strstr(r.out, "vm create NAME --image IMAGE") && strstr(r.out, "rm list"));
        CHECK_STREQ(r.err, "");
        result_clear(&r);

        r = run("vm --help");
        CHECK(r.status == 0 && strstr(r.out, "vm boot NAME") && !strstr(r.out, "rm list"));
        result_clear(&r);

        r = run("vm create --help");
        CHECK(r.status == 0);
        CHECK(str_startswith(r.out, "usage: vmatrix vm create NAME --image IMAGE [--memory MIB] [--vcpus N] "
                                    "[--cpu-limit PERCENT]\n"));
        CHECK(strstr(r.out, "--json") && strstr(r.out, "--oracle URL"));
        result_clear(&r);

        /* help wins over a bad option */
        r = run("vm create --bogus --help");
        CHECK(r.status == 0 && str_startswith(r.out, "usage: vmatrix vm create"));
        result_clear(&r);

        r = run("vm create web1 --image x --memory 8");
        CHECK(r.status == 2);
        CHECK_STREQ(r.err, "vmatrix: --memory must be a number in 16..65536, not \"8\"\n");
        result_clear(&r);

        /* --cpu-limit: percent of one CPU, at most 100 per vCPU */
        static const char *const bad_limits[] = { "0", "101", "-5", "abc", "50%", "1e2" };
        for (size_t i = 0; i < ELEMENTSOF(bad_limits); i++) {
                r = run("vm create web1 --image x --cpu-limit %s", bad_limits[i]);
                CHECK(r.status == 2 && strstr(r.err, "--cpu-limit must be a percentage of one CPU from 1 to 100 "
                                                     "(at most 100 per vCPU, 1 vCPU), not"));
                result_clear(&r);
        }
        r = run("vm create web1 --image x --vcpus 2 --cpu-limit 201");
        CHECK(r.status == 2 && strstr(r.err, "from 1 to 200 (at most 100 per vCPU, 2 vCPUs), not \"201\""));
        result_clear(&r);

        r = run("vm create Web1 --image x");
        CHECK(r.status == 2 && strstr(r.err, "invalid VM name \"Web1\""));
        result_clear(&r);

        r = run("vm boot web1 --rm");
        CHECK(r.status == 2);
        CHECK_STREQ(r.err, "vmatrix: option --rm needs a value (RM); see vmatrix vm boot --help\n");
        result_clear(&r);

        r = run("vm list");
        CHECK(r.status == 2);
        CHECK_STREQ(r.err, "vmatrix: no Oracle: pass --oracle URL or set VMATRIX_ORACLE\n");
        result_clear(&r);

        r = run("image import /nonexistent/x.qcow2 --format vmdk --oracle http://127.0.0.1:1");
        CHECK(r.status == 2 && strstr(r.err, "--format must be qcow2 or raw"));
        result_clear(&r);

        r = run("cluster up");
        CHECK(r.status == 2);
        CHECK_STREQ(r.err, "vmatrix: missing --dir DIR; see vmatrix cluster up --help\n");
        result_clear(&r);
}

/* The fake Oracle: canned answers; an operation goes running -> running -> done. */
typedef struct fake {
        int op1_polls;
        json_t *last_body;
        char last_query[64];
        int64_t upload_size;
        int vms_paged;  /* > 0: GET /v1/vms pages over this many VMs vm-00000... (limit, after) */
        int vms_calls;
} fake_t;

static void remember(const http_request_t *req) {
        fake_t *f = req->userdata;
        json_decref(f->last_body);
        f->last_body = req->body ? json_incref(req->body) : NULL;
}

static json_t *fake_vm(const char *name, const char *state) {
        return json_pack("{s:s,s:s,s:i,s:s,s:s,s:b,s:i,s:i,s:s,s:i,s:[s]}", "name", name, "state", state, "version",
                         3, "rm", "chamber1", "address", "10.0.0.3:8080", "prebooted", 0, "memory_mib", 128, "vcpus",
                         1, "image", "tiny-http", "pid", 4242, "actions", "suspend");
}

static void h_vms(const http_request_t *req, http_reply_t *reply) {
        fake_t *f = req->userdata;
        f->vms_calls++;
        json_t *a = json_array();
        if (f->vms_paged > 0) {
                const char *limit = http_request_query(req, "limit"), *after = http_request_query(req, "after");
                int n = limit ? atoi(limit) : f->vms_paged;
                for (int i = 0; i < f->vms_paged && (int)json_array_size(a) < n; i++) {
                        char name[16];
                        snprintf(name, sizeof name, "vm-%05d", i);
                        if (!after || strcmp(name, after) > 0)
                                json_array_append_new(a, fake_vm(name, "stored"));
                }
                http_reply_json(reply, 200, a);
                return;
        }
        json_array_append_new(a, fake_vm("web1", "loading"));
        json_t *v = json_pack("{s:s,s:s,s:i,s:n,s:n,s:b,s:s}", "name", "database-7", "state", "stored", "version", 12,
                              "rm", "address", "prebooted", 1, "image", "tiny-http");
        json_array_append_new(a, v);
        http_reply_json(reply, 200, a);
}

static void h_vm_create(const http_request_t *req, http_reply_t *reply) {
        remember(req);
        http_reply_json(reply, 201, fake_vm("web2", "stored"));
}

static void h_vm_show(const http_request_t *req, http_reply_t *reply) {
        if (!streq(req->params[0], "web1")) {
                http_reply_error(reply, 404, "not_found", "no vm named \"%s\"", req->params[0]);
                return;
        }
        json_t *vm = fake_vm("web1", "loading");
        json_object_del(vm, "pid"); /* the CLI must still print "pid": null with --json */
        http_reply_json(reply, 200, vm);
}

static void h_vm_action(const http_request_t *req, http_reply_t *reply) {
        remember(req);
        const char *action = req->params[1];
        if (streq(action, "suspend")) {
                http_reply_error(reply, 409, "illegal_transition", "vm \"%s\" is stored: cannot suspend it",
                                 req->params[0]);
                return;
        }
        const char *id = streq(action, "boot") ? "op-1" : "op-2";
        http_reply_json(reply, 202,
                        json_pack("{s:{s:s,s:s,s:s,s:s}}", "op", "id", id, "vm", req->params[0], "kind", action,
                                  "state", "running"));
}

static void h_op(const http_request_t *req, http_reply_t *reply) {
        fake_t *f = req->userdata;
        if (streq(req->params[0], "op-1")) {
                f->op1_polls++;
                const char *state = f->op1_polls >= 3 ? "done" : "running";
                http_reply_json(reply, 200,
                                json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:i,s:i}}", "id", "op-1", "vm", "web1", "kind",
                                          "boot", "state", state, "progress", "phase", "copying", "done",
                                          f->op1_polls * 100, "total", 300));
                return;
        }
        http_reply_json(reply, 200,
                        json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", "op-2", "vm", "web1", "kind", "stop", "state",
                                  "failed", "error", "RM \"chamber1\": qemu exited\nwith status 1"));
}

static void h_rms(const http_request_t *req, http_reply_t *reply) {
        /* one RM that said its size, one that did not (capacity null) */
        http_reply_json(reply, 200,
                        json_pack("[{s:s,s:s,s:s,s:s,s:i,s:f,s:b,s:b,s:s,s:{s:i,s:i,s:i}},"
                                  "{s:s,s:s,s:s,s:s,s:i,s:f,s:b,s:n,s:n,s:n}]",
                                  "name", "prod1", "role", "production", "state", "up", "address", "127.0.0.1:7101", "vms",
                                  1, "last_seen", 1.0, "guest_firewall", 1, "confined", 0, "confine_reason", "not root",
                                  "capacity", "memory_mib", 24105, "vcpus", 2, "disk_gib", 251, "name", "ch1", "role",
                                  "chamber", "state", "up", "address", "127.0.0.1:7102", "vms", 0, "last_seen", 1.0,
                                  "guest_firewall", 0, "confined", "confine_reason", "capacity"));
}

static void h_events(const http_request_t *req, http_reply_t *reply) {
        fake_t *f = req->userdata;
        const char *after = http_request_query(req, "after");
        snprintf(f->last_query, sizeof f->last_query, "%s", after ? after : "");
        if (after && !streq(after, "0")) {
                http_reply_json(reply, 200, json_array());
                return;
        }
        http_reply_json(reply, 200,
                        json_pack("[{s:i,s:f,s:s,s:s,s:n,s:s,s:s},{s:i,s:f,s:s,s:n,s:n,s:n,s:s}]", "id", 1, "time",
                                  1700000000.0, "kind", "boot", "vm", "web1", "service", "rm", "chamber1", "reason",
                                  "boot done (version 3)", "id", 2, "time", 1700000061.0, "kind", "rm-down", "vm",
                                  "service", "rm", "reason", "no heartbeat"));
}

static void h_console(const http_request_t *req, http_reply_t *reply) {
        http_reply_error(reply, 501, "unsupported", "the console of vm \"%s\" is not available yet", req->params[0]);
}

static void h_nest_stats(const http_request_t *req, http_reply_t *reply) {
        http_reply_json(reply, 200,
                        json_pack("{s:i,s:i,s:i}", "logical_bytes", 3 << 20, "stored_bytes", 1 << 20, "files", 3));
}

static void h_put_image(const http_request_t *req, http_reply_t *reply) {
        fake_t *f = req->userdata;
        const char *format = http_request_query(req, "format");
        snprintf(f->last_query, sizeof f->last_query, "%s", format ? format : "");
        f->upload_size = file_size(req->upload_path);
        http_reply_json(reply, 201, json_pack("{s:s,s:s,s:I}", "name", req->params[0], "kind", "disk", "created_ms",
                                              (json_int_t)1700000000000));
}

/* A service as the Oracle answers it; health from the create body, as the Oracle stores it. */
static json_t *fake_service(const char *name, const json_t *health) {
        json_t *h = health ? json_deep_copy(health) : json_pack("{s:s,s:s}", "kind", "http", "path", "/health");
        if (!json_object_get(h, "kind"))
                json_object_set_new(h, "kind", json_string("http"));
        if (streq(json_string_value(json_object_get(h, "kind")), "http") && !json_object_get(h, "path"))
                json_object_set_new(h, "path", json_string("/health"));
        return json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:s,s:o,s:[]}", "name", name, "state", "creating", "endpoint",
                         "127.0.0.1:8100", "active", 0, "pool", 2, "min", 1, "max", 2, "image", "tiny-http", "health",
                         h, "vms");
}

static void h_service_create(const http_request_t *req, http_reply_t *reply) {
        remember(req);
        http_reply_json(reply, 201,
                        fake_service(json_string_value(json_object_get(req->body, "name")) ?: "?",
                                     json_object_get(req->body, "health")));
}

static void h_services(const http_request_t *req, http_reply_t *reply) {
        json_t *tcp = json_pack("{s:s}", "kind", "tcp");
        http_reply_json(reply, 200, json_pack("[o,o]", fake_service("api", tcp), fake_service("web", NULL)));
        json_decref(tcp);
}

/* Answers who the request says it is: the bearer token it carried. */
static void h_whoami(const http_request_t *req, http_reply_t *reply) {
        const char *auth = http_request_header(req, "Authorization");
        if (!auth) {
                http_reply_error(reply, 401, "unauthenticated", "authentication required");
                return;
        }
        http_reply_json(reply, 200, json_pack("{s:s,s:s,s:{s:s,s:s,s:i}}", "user", auth, "role", "admin", "token", "id",
                                              "0123456789abcdef", "name", "t", "expires_ms", 0));
}

/* GET /v1/figures: tiny-http measured, big only booted. */
static void h_figures(const http_request_t *req, http_reply_t *reply) {
        (void)req;
        http_reply_json(reply, 200,
                        json_pack("{s:{s:{s:f,s:i}},s:{s:{s:f,s:i}},s:{s:{s:f,s:i}},s:{s:f,s:f}}", "activation_s",
                                  "tiny-http", "median", 0.62, "n", 3, "drain_s", "tiny-http", "median", 1.4, "n", 2,
                                  "boot_s", "big", "median", 9.5, "n", 1, "defaults", "activation_s", 1.1, "drain_s",
                                  1.5));
}

static const http_route_t fake_routes[] = {
        { "GET", "/v1/figures", h_figures },
        { "GET", "/v1/whoami", h_whoami },
        { "GET", "/v1/services", h_services },
        { "POST", "/v1/services", h_service_create },
        { "GET", "/v1/vms", h_vms },
        { "POST", "/v1/vms", h_vm_create },
        { "GET", "/v1/vms/:name", h_vm_show },
        { "GET", "/v1/vms/:name/console", h_console },
        { "POST", "/v1/vms/:name/:action", h_vm_action },
        { "GET", "/v1/ops/:id", h_op },
        { "GET", "/v1/rms", h_rms },
        { "GET", "/v1/events", h_events },
        { "GET", "/v1/nest/stats", h_nest_stats },
        { "PUT", "/v1/images/:name", h_put_image, .upload = true },
        { NULL },
};

static void test_fake_oracle(void) {
        fake_t fake = { 0 };
        http_server_t *s = NULL;
        int port;
        for (port = 23300; port < 23400; port++) {
                _cleanup_free_ char *listen = xasprintf("127.0.0.1:%d", port);
                if (http_server_start(&(http_server_params_t){ .listen = listen, .routes = fake_routes, .upload_dir = "/tmp", .userdata = &fake }, &s) == 0)
                        break;
        }
        CHECK(s != NULL);
        if (!s)
                return;
        _cleanup_free_ char *url = xasprintf("http://127.0.0.1:%d", port);
        setenv("VMATRIX_ORACLE", url, 1);

        /* a lifecycle action: 202, wait for the op (running, running, done), then the VM */
        result_t r = run("vm boot web1 --rm chamber1");
        CHECK(r.status == 0);
        CHECK(fake.op1_polls == 3);
        CHECK_STREQ(json_string_value(json_object_get(fake.last_body, "rm")), "chamber1");
        CHECK(strstr(r.out, "name:          web1\n") && strstr(r.out, "state:         loading\n"));
        CHECK_STREQ(r.err, ""); /* no progress when stderr is not a terminal */
        result_clear(&r);

        r = run("vm boot web1 --no-wait");
        CHECK(r.status == 0);
        CHECK_STREQ(r.out, "op-1\n");
        result_clear(&r);

        /* an operation that fails: its error, on one line, exit 1 */
        r = run("vm stop web1");
        CHECK(r.status == 1);
        CHECK_STREQ(r.err, "vmatrix: RM \"chamber1\": qemu exited with status 1\n");
        CHECK_STREQ(r.out, "");
        result_clear(&r);

        /* an API error answer */
        r = run("vm suspend web1");
        CHECK(r.status == 1);
        CHECK_STREQ(r.err, "vmatrix: vm \"web1\" is stored: cannot suspend it\n");
        result_clear(&r);

        /* sim --from-cluster: the figures of one image, as the Oracle fills them for the policy */
        r = run("sim --trace builtin:flash-crowd --from-cluster");
        CHECK(r.status == 2 && strstr(r.err, "several images (big, tiny-http): choose one with --image"));
        result_clear(&r);
        r = run("sim --trace builtin:flash-crowd --from-cluster --image tiny-http --json");
        CHECK(r.status == 0);
        json_t *sj = json_loads(r.out, 0, NULL);
        CHECK(json_real_value(json_object_get(sj, "activation_s")) == 0.62);
        CHECK(json_real_value(json_object_get(sj, "drain_s")) == 1.4);
        CHECK(strstr(json_string_value(json_object_get(sj, "figures")) ?: "", "from its activations"));
        json_decref(sj);
        result_clear(&r);
        r = run("sim --trace builtin:flash-crowd --from-cluster --image big");
        CHECK(r.status == 0 && strstr(r.out, "activation 9.5 s from its boots (no activation measured yet), drain "
                                             "1.5 s from the Oracle's default"));
        result_clear(&r);
        r = run("sim --trace builtin:flash-crowd --from-cluster --image big --activation 2 --json");
        sj = json_loads(r.out, 0, NULL);
        CHECK(r.status == 0 && json_real_value(json_object_get(sj, "activation_s")) == 2);
        json_decref(sj);
        result_clear(&r);
        r = run("sim --trace builtin:flash-crowd --image big");
        CHECK(r.status == 2 && strstr(r.err, "--image chooses the figures of --from-cluster"));
        result_clear(&r);
        r = run("sim --trace builtin:flash-crowd --drain -1");
        CHECK(r.status == 2 && strstr(r.err, "--drain must be a number from 0 to 3600, not \"-1\""));
        result_clear(&r);
        r = run("sim --trace builtin:flash-crowd");
        CHECK(r.status == 0 && strstr(r.out, "activation 1.1 s, drain 1.5 s (the simulator's own)"));
        result_clear(&r);

        r = run("vm delete web1 --force --json --no-wait");
        CHECK(r.status == 0);
        CHECK(json_is_true(json_object_get(fake.last_body, "force")));
        CHECK(strstr(r.out, "\"id\": \"op-2\""));
        result_clear(&r);

        r = run("vm show nosuch");
        CHECK(r.status == 1);
        CHECK_STREQ(r.err, "vmatrix: no vm named \"nosuch\"\n");
        result_clear(&r);

        /* --json passes the API object through and fills the contract's fields */
        r = run("vm show web1 --json");
        CHECK(r.status == 0);
        json_t *j = json_loads(r.out, 0, NULL);
        CHECK(json_is_null(json_object_get(j, "pid")));
        CHECK(json_integer_value(json_object_get(j, "memory_mib")) == 128);
        CHECK(json_is_array(json_object_get(j, "actions")));
        json_decref(j);
        result_clear(&r);

        r = run("vm create web2 --image tiny-http --memory 256 --vcpus 2");
        CHECK(r.status == 0);
        CHECK(json_integer_value(json_object_get(fake.last_body, "memory_mib")) == 256);
        CHECK(json_integer_value(json_object_get(fake.last_body, "vcpus")) == 2);
        CHECK(json_object_get(fake.last_body, "cpu_limit") == NULL);
        CHECK_STREQ(json_string_value(json_object_get(fake.last_body, "image")), "tiny-http");
        CHECK(strstr(r.out, "name:          web2\n"));
        result_clear(&r);

        r = run("vm create web3 --image tiny-http --vcpus 2 --cpu-limit 150");
        CHECK(r.status == 0);
        CHECK(json_integer_value(json_object_get(fake.last_body, "cpu_limit")) == 150);
        result_clear(&r);

        r = run("vm list");
        CHECK(r.status == 0);
        CHECK_STREQ(r.out, "NAME        STATE    VERSION  RM        ADDRESS        PREBOOTED  IMAGE\n"
                           "web1        loading  3        chamber1  10.0.0.3:8080  no         tiny-http\n"
                           "database-7  stored   12       -         -              yes        tiny-http\n");
        result_clear(&r);

        /* a list longer than a page comes in pages, concatenated: each VM once, in order */
        fake.vms_paged = 2500;
        fake.vms_calls = 0;
        r = run("vm list --json");
        CHECK(r.status == 0);
        j = json_loads(r.out, 0, NULL);
        CHECK(json_array_size(j) == 2500 && fake.vms_calls == 3);
        bool in_order = true;
        for (size_t i = 0; i < json_array_size(j); i++) {
                char name[32];
                snprintf(name, sizeof name, "vm-%05zu", i);
                in_order = in_order && streq(json_string_value(json_object_get(json_array_get(j, i), "name")) ?: "", name);
        }
        CHECK(in_order);
        json_decref(j);
        result_clear(&r);
        fake.vms_paged = 0;

        r = run("rm list --json");
        CHECK(r.status == 0);
        j = json_loads(r.out, 0, NULL);
        CHECK(json_array_size(j) == 2);
        CHECK_STREQ(json_string_value(json_object_get(json_array_get(j, 0), "role")), "production");
        CHECK(json_integer_value(json_object_get(json_array_get(j, 0), "vms")) == 1);
        CHECK(json_is_false(json_object_get(json_array_get(j, 0), "confined")));
        CHECK_STREQ(json_string_value(json_object_get(json_array_get(j, 0), "confine_reason")), "not root");
        /* capacity as the Oracle gave it, null when the RM did not say */
        const json_t *capacity = json_object_get(json_array_get(j, 0), "capacity");
        CHECK(json_integer_value(json_object_get(capacity, "memory_mib")) == 24105);
        CHECK(json_integer_value(json_object_get(capacity, "vcpus")) == 2);
        CHECK(json_integer_value(json_object_get(capacity, "disk_gib")) == 251);
        CHECK(json_is_null(json_object_get(json_array_get(j, 1), "capacity")));
        json_decref(j);
        result_clear(&r);

        r = run("rm list");
        CHECK(r.status == 0);
        CHECK_STREQ(r.out, "NAME   ROLE        STATE  ADDRESS         VMS  CAPACITY         GUEST-FW  CONFINED\n"
                           "prod1  production  up     127.0.0.1:7101  1    2cpu/23.5G/251G  yes       no (not root)\n"
                           "ch1    chamber     up     127.0.0.1:7102  0    -                no        -\n");
        result_clear(&r);

        setenv("TZ", "UTC", 1);
        tzset();
        r = run("events");
        CHECK(r.status == 0);
        CHECK_STREQ(r.out, "TIME                 KIND     VM    SERVICE  RM        REASON\n"
                           "2023-11-14T22:13:20  boot     web1  -        chamber1  boot done (version 3)\n"
                           "2023-11-14T22:14:21  rm-down  -     -        -         no heartbeat\n");
        CHECK_STREQ(fake.last_query, "0");
        result_clear(&r);

        r = run("events --json");
        CHECK(r.status == 0);
        j = json_loads(r.out, 0, NULL);
        CHECK(json_array_size(j) == 2);
        CHECK_STREQ(json_string_value(json_object_get(json_array_get(j, 1), "kind")), "rm-down");
        json_decref(j);
        result_clear(&r);

        r = run("vm console web1");
        CHECK(r.status == 1);
        CHECK_STREQ(r.err, "vmatrix: the console of vm \"web1\" is not available yet\n");
        result_clear(&r);

        r = run("nest stats --json");
        CHECK(r.status == 0);
        j = json_loads(r.out, 0, NULL);
        CHECK(json_integer_value(json_object_get(j, "chunks")) == 3);
        CHECK(json_integer_value(json_object_get(j, "logical_bytes")) == 3 << 20);
        json_decref(j);
        result_clear(&r);

        r = run("nest stats");
        CHECK(r.status == 0 && strstr(r.out, "logical:  3.0 MiB (3145728 bytes)\n") && strstr(r.out, "3.00x"));
        result_clear(&r);

        /* image import: name from the file, format sniffed from the qcow2 magic, body uploaded */
        char dir[] = "/tmp/test-cli.XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *file = xasprintf("%s/Test_Img.qcow2", dir);
        CHECK(file_write_atomic(file, "QFI\xfb" "0123456789", 14) == 0);
        r = run("image import %s --json", file);
        CHECK(r.status == 0);
        CHECK_STREQ(fake.last_query, "qcow2");
        CHECK(fake.upload_size == 14);
        CHECK(strstr(r.out, "\"name\": \"test-img\""));
        result_clear(&r);
        r = run("image import %s --name other --format raw", file);
        CHECK(r.status == 0);
        CHECK_STREQ(fake.last_query, "raw");
        CHECK(strstr(r.out, "name:     other\n"));
        result_clear(&r);
        rm_rf(dir);

        /* service create: --health and --health-path go into the body as "health" */
        const char *create = "service create web --image tiny-http --pool 2 --min 1 --max 2 --no-wait";
        r = run("%s --health tcp", create);
        CHECK(r.status == 0);
        json_t *health = json_object_get(fake.last_body, "health");
        CHECK(json_object_size(health) == 1 && streq(json_string_value(json_object_get(health, "kind")) ?: "", "tcp"));
        CHECK(strstr(r.out, "\nhealth:     tcp\n"));
        result_clear(&r);
        r = run("%s --health-path /", create);
        CHECK(r.status == 0);
        health = json_object_get(fake.last_body, "health");
        CHECK_STREQ(json_string_value(json_object_get(health, "kind")), "http");
        CHECK_STREQ(json_string_value(json_object_get(health, "path")), "/");
        CHECK(strstr(r.out, "\nhealth:     http /\n"));
        result_clear(&r);
        r = run("%s --health http --health-path /status?full=1 --json", create);
        CHECK(r.status == 0);
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(fake.last_body, "health"), "path")), "/status?full=1");
        j = json_loads(r.out, 0, NULL);
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(j, "health"), "path")), "/status?full=1");
        json_decref(j);
        result_clear(&r);
        r = run("%s", create);
        CHECK(r.status == 0 && !json_object_get(fake.last_body, "health")); /* the Oracle's default */
        CHECK(strstr(r.out, "\nhealth:     http /health\n"));
        result_clear(&r);
        /* refused before any request */
        json_decref(fake.last_body);
        fake.last_body = NULL;
        r = run("%s --health tcp --health-path /x", create);
        CHECK(r.status == 2 && strstr(r.err, "--health-path is for --health http") && !fake.last_body);
        result_clear(&r);
        r = run("%s --health udp", create);
        CHECK(r.status == 2 && strstr(r.err, "--health must be http or tcp, not \"udp\"") && !fake.last_body);
        result_clear(&r);

        r = run("service list");
        CHECK(r.status == 0);
        CHECK_STREQ(r.out, "NAME  STATE     ENDPOINT        ACTIVE  POOL  MIN  MAX  IMAGE      HEALTH\n"
                           "api   creating  127.0.0.1:8100  0       2     1    2    tiny-http  tcp\n"
                           "web   creating  127.0.0.1:8100  0       2     1    2    tiny-http  http /health\n");
        result_clear(&r);

        /* the Oracle named by a cluster directory, flags before environment */
        _cleanup_free_ char *cdir = xasprintf("%s-cluster", dir);
        _cleanup_free_ char *url_file = xasprintf("%s/oracle.url", cdir);
        CHECK(mkdir_p(cdir, 0755) == 0);
        CHECK(file_write_atomic(url_file, url, strlen(url)) == 0);
        setenv("VMATRIX_ORACLE", "http://127.0.0.1:1", 1);
        r = run("rm list --dir %s", cdir);
        CHECK(r.status == 0 && strstr(r.out, "prod1"));
        result_clear(&r);
        rm_rf(cdir);

        /* the token sent: --token, then $VMATRIX_TOKEN, then the login file (only for its own
         * Oracle), then DIR/admin.token */
        setenv("VMATRIX_ORACLE", url, 1);
        _cleanup_free_ char *tdir = xasprintf("%s-tokens", dir);
        _cleanup_free_ char *login = xasprintf("%s/login/token", tdir), *admin = xasprintf("%s/admin.token", tdir);
        CHECK(mkdir_p(tdir, 0700) == 0);
        CHECK(file_write_atomic(admin, "tok-dir\n", 8) == 0);
        setenv("VMATRIX_LOGIN_FILE", login, 1);
        setenv("VMATRIX_CLUSTER_DIR", tdir, 1);
        unsetenv("VMATRIX_TOKEN");
        r = run("whoami --json");
        CHECK(r.status == 0 && strstr(r.out, "Bearer tok-dir"));
        result_clear(&r);
        CHECK(api_login_write("http://127.0.0.1:1", "other", "tok-elsewhere") == 0);
        r = run("whoami --json");
        CHECK(r.status == 0 && strstr(r.out, "Bearer tok-dir")); /* a login to another Oracle is not used */
        result_clear(&r);
        struct stat lst;
        CHECK(stat(login, &lst) == 0 && (lst.st_mode & 0777) == 0600);
        CHECK(api_login_write(url, "me", "tok-login") == 0);
        r = run("whoami --json");
        CHECK(r.status == 0 && strstr(r.out, "Bearer tok-login"));
        result_clear(&r);
        setenv("VMATRIX_TOKEN", "tok-env", 1);
        r = run("whoami --json");
        CHECK(r.status == 0 && strstr(r.out, "Bearer tok-env"));
        result_clear(&r);
        r = run("--token tok-flag whoami --json");
        CHECK(r.status == 0 && strstr(r.out, "Bearer tok-flag"));
        result_clear(&r);
        /* a token that would split the header is never sent */
        r = run("--token tok\x01 whoami --json");
        result_clear(&r);
        unsetenv("VMATRIX_TOKEN");
        CHECK(api_login_remove() == 0 && api_login_remove() == 0);
        unlink(admin);
        r = run("whoami");
        CHECK(r.status == 1 && strstr(r.err, "authentication required"));
        result_clear(&r);
        unsetenv("VMATRIX_CLUSTER_DIR");
        unsetenv("VMATRIX_LOGIN_FILE");
        rm_rf(tdir);
        setenv("VMATRIX_ORACLE", "http://127.0.0.1:1", 1);

        /* a transport failure */
        r = run("rm list");
        CHECK(r.status == 1);
        CHECK_STREQ(r.err, "vmatrix: cannot reach the Oracle at http://127.0.0.1:1: connection refused\n");
        result_clear(&r);
        unsetenv("VMATRIX_ORACLE");

        json_decref(fake.last_body);
        http_server_stop(s);
}

int main(void) {
        test_args();
        test_table();
        test_image_name();
        test_commands();
        test_dispatch();
        test_fake_oracle();
        return tap_finish();
}
