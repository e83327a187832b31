/* Real daemons for unit tests (see daemons.h): fork/exec of vmatrix-test, readiness and state
 * polling over HTTP with deadlines, and cleanup that cannot leak processes. */
#include "daemons.h"
#include "base/macro.h"
#include "model/lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "net/http-client.h"
#include "tap.h"
#include "vmm/fake.h"

/* The pids to kill when the test ends or dies. A signal handler cannot reach the context, so
 * this one table is global; it is written by the main thread only and read with kill(), which
 * is async-signal-safe. */
#define MAX_PIDS 16
static volatile pid_t live_pids[MAX_PIDS];

static void pids_add(pid_t pid) {
        for (int i = 0; i < MAX_PIDS; i++)
                if (live_pids[i] == 0) {
                        live_pids[i] = pid;
                        return;
                }
}

static void pids_del(pid_t pid) {
        for (int i = 0; i < MAX_PIDS; i++)
                if (live_pids[i] == pid)
                        live_pids[i] = 0;
}

static void pids_kill_all(void) {
        for (int i = 0; i < MAX_PIDS; i++)
                if (live_pids[i] > 0)
                        kill(live_pids[i], SIGKILL);
}

static void on_signal(int sig) {
        pids_kill_all();
        signal(sig, SIG_DFL);
        raise(sig);
}

int64_t daemons_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void daemons_sleep_ms(int ms) {
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
}


static void file_put(const char *path, const char *text) {
        FILE *f = fopen(path, "w");
        if (f) {
                fputs(text, f);
                fclose(f);
        }
}

void daemons_init(daemons_t *d, const char *exe) {
        memset(d, 0, sizeof *d);
        if (!exe)
                exe = getenv("VMATRIX_TEST_EXE");
        if (!exe || access(exe, X_OK) < 0) {
                fprintf(stderr, "vmatrix-test not found (VMATRIX_TEST_EXE=%s)\n", exe ? exe : "");
                exit(1);
        }
        snprintf(d->exe, sizeof d->exe, "%s", exe);
        const char *tmp = getenv("TMPDIR");
        snprintf(d->dir, sizeof d->dir, "%s/vmx-daemons-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(d->dir)) {
                perror("mkdtemp");
                exit(1);
        }
        /* a stand-in for the tiny-http guest: the fake driver never reads it */
        char path[512];
        snprintf(path, sizeof path, "%s/guest", d->dir);
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/guest/vmlinuz", d->dir);
        file_put(path, "fake kernel\n");
        snprintf(path, sizeof path, "%s/guest/initrd.img", d->dir);
        file_put(path, "fake initrd\n");
        snprintf(path, sizeof path, "%s/guest/cmdline", d->dir);
        file_put(path, "console=ttyS0\n");
        atexit(pids_kill_all);
        int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGSEGV, SIGABRT, SIGBUS, SIGFPE };
        for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
                signal(sigs[i], on_signal);
        signal(SIGPIPE, SIG_IGN);
}

bool daemons_strict(void) {
        const char *s = getenv("VMATRIX_TEST_STRICT");
        return s && strcmp(s, "1") == 0;
}

void daemons_dump_logs(const daemons_t *d) {
        const daemon_t *all[] = { &d->oracle, &d->nodes[0], &d->nodes[1], &d->nodes[2] };
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
                if (!*all[i]->log)
                        continue;
                fprintf(stderr, "---- last lines of %s ----\n", all[i]->log);
                char cmd[600];
                snprintf(cmd, sizeof cmd, "tail -n 25 '%s' >&2", all[i]->log);
                if (system(cmd) != 0)
                        fprintf(stderr, "(no log)\n");
        }
}

void daemons_done(daemons_t *d, bool keep) {
        daemons_stop(&d->oracle, SIGKILL);
        for (int i = 0; i < DAEMONS_NODES_MAX; i++)
                daemons_stop(&d->nodes[i], SIGKILL);
        if (keep) {
                daemons_dump_logs(d);
                fprintf(stderr, "daemon files kept in %s\n", d->dir);
                return;
        }
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", d->dir);
}

/* fork + exec of argv with env added, output appended to dm->log. */
static int spawn(daemon_t *dm, char *const *argv, const char *const *env) {
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                /* a test killed before its cleanup ran (SIGKILL, a timeout) takes its daemons along */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(dm->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                for (size_t i = 0; env && env[i]; i++)
                        putenv((char *)env[i]);
                execv(argv[0], argv);
                _exit(127);
        }
        dm->pid = pid;
        pids_add(pid);
        return 0;
}

bool daemons_exited(daemon_t *dm, int timeout_ms) {
        if (dm->pid <= 0)
                return true;
        int64_t deadline = daemons_now_ms() + timeout_ms;
        do {
                if (waitpid(dm->pid, NULL, WNOHANG) == dm->pid) {
                        pids_del(dm->pid);
                        dm->pid = 0;
                        return true;
                }
                daemons_sleep_ms(20);
        } while (daemons_now_ms() < deadline);
        return false;
}

void daemons_stop(daemon_t *dm, int sig) {
        if (dm->pid <= 0)
                return;
        kill(dm->pid, sig);
        if (!daemons_exited(dm, 10000)) {
                kill(dm->pid, SIGKILL);
                daemons_exited(dm, 10000);
        }
}

/* The admin token of the Oracle last started (its DATA/admin.token), sent with every call. */
static char admin_token[128];

const char *daemons_admin_token(void) { return admin_token; }

/* The Oracle's identity, the default of https:// calls, made once its CA exists (one per test
 * process: every test has one Oracle). */
static http_tls_t *oracle_identity;

static void oracle_identity_load(const daemon_t *o) {
        if (oracle_identity)
                return;
        char ca[600], cert[600], key[600];
        snprintf(ca, sizeof ca, "%s/ca/ca.pem", o->data);
        snprintf(cert, sizeof cert, "%s/ca/oracle.pem", o->data);
        snprintf(key, sizeof key, "%s/ca/oracle.key", o->data);
        if (http_tls_new(ca, cert, key, &oracle_identity) == 0)
                http_client_tls_default(oracle_identity);
}

static long call_with(const http_call_t *call, const char *method, const char *url, json_t *body, json_t **ret_json) {
        http_response_t resp = { 0 };
        int r = http_call_json(call, method, url, body, 10000, &resp);
        long status = r < 0 ? 0 : resp.status;
        if (ret_json) {
                *ret_json = resp.json;
                resp.json = NULL;
        }
        http_response_clear(&resp);
        return status;
}

long daemons_call(const char *method, const char *url, json_t *body, json_t **ret_json) {
        return call_with(&(http_call_t){ .token = *admin_token ? admin_token : NULL }, method, url, body, ret_json);
}

long daemons_call_token(const char *token, const char *method, const char *url, json_t *body, json_t **ret_json) {
        return call_with(&(http_call_t){ .token = token }, method, url, body, ret_json);
}

long daemons_call_as(const daemon_t *dm, const char *method, const char *url, json_t *body, json_t **ret_json) {
        char ca[600], cert[600], key[600];
        snprintf(ca, sizeof ca, "%s/tls/ca.pem", dm->data);
        snprintf(cert, sizeof cert, "%s/tls/cert.pem", dm->data);
        snprintf(key, sizeof key, "%s/tls/key.pem", dm->data);
        http_tls_t *t = NULL;
        if (http_tls_new(ca, cert, key, &t) < 0)
                return 0;
        http_call_t call = { .tls = t };
        long status = call_with(&call, method, url, body, ret_json);
        http_tls_free(t);
        return status;
}

/* Polls url until it answers 200 (deadline_ms from now) or the process is gone. */
static int wait_http(daemon_t *dm, const char *url, int64_t deadline_ms) {
        while (daemons_now_ms() < deadline_ms) {
                if (daemons_call("GET", url, NULL, NULL) == 200)
                        return 0;
                if (waitpid(dm->pid, NULL, WNOHANG) == dm->pid) {
                        pids_del(dm->pid);
                        dm->pid = 0;
                        return -1;
                }
                daemons_sleep_ms(50);
        }
        return -1;
}

static int oracle_spawn(daemons_t *d, const char *const *env) {
        daemon_t *o = &d->oracle;
        char guest[300], recipe[300];
        snprintf(guest, sizeof guest, "VMATRIX_GUEST_DIR=%s/guest", d->dir);
        snprintf(recipe, sizeof recipe, "VMATRIX_GUEST_RECIPE=%s/no-recipe", d->dir);
        /* pre-staging off unless a test turns it on (its node calls would change what the fault
         * tests count); every Oracle of a test compares its store view with its tables every 2 s
         * and aborts on a difference (oracle-rms.c) */
        const char *all[16] = { guest, recipe, "VMATRIX_PRESTAGE_BPS=0", "VMATRIX_VIEW_CHECK=1" };
        size_t n = 4;
        for (size_t i = 0; env && env[i] && n < 15; i++)
                all[n++] = env[i];
        char listen[32], node_listen[32];
        snprintf(listen, sizeof listen, "127.0.0.1:%d", o->port);
        snprintf(node_listen, sizeof node_listen, "127.0.0.1:%d", o->node_port);
        /* Argon2id at its least cost: logins in tests need not take 0.1 s and 64 MiB each */
        char *argv[] = { d->exe, "oracle", "--data", o->data, "--listen", listen, "--node-listen", node_listen,
                         "--password-cost", "min", NULL };
        if (spawn(o, argv, all) < 0)
                return -1;
        char url[128];
        snprintf(url, sizeof url, "%s/v1/health", o->url);
        if (wait_http(o, url, daemons_now_ms() + 20000) < 0)
                return -1;
        oracle_identity_load(o);
        char path[sizeof o->data + 16];
        snprintf(path, sizeof path, "%s/admin.token", o->data);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        bool ok = fgets(admin_token, sizeof admin_token, f) != NULL;
        fclose(f);
        admin_token[strcspn(admin_token, "\r\n")] = 0;
        return ok ? 0 : -1;
}

int daemons_oracle_start(daemons_t *d, const char *const *env) {
        daemon_t *o = &d->oracle;
        snprintf(o->name, sizeof o->name, "oracle");
        snprintf(o->data, sizeof o->data, "%s/oracle", d->dir);
        snprintf(o->log, sizeof o->log, "%s/oracle.log", d->dir);
        o->port = tap_free_port();
        do
                o->node_port = tap_free_port();
        while (o->node_port == o->port);
        snprintf(o->url, sizeof o->url, "http://127.0.0.1:%d", o->port);
        snprintf(o->node_url, sizeof o->node_url, "https://oracle@127.0.0.1:%d", o->node_port);
        return oracle_spawn(d, env);
}

void daemons_rm_state(daemons_t *d, const char *rm, char *ret) {
        *ret = 0;
        char url[128];
        snprintf(url, sizeof url, "%s/v1/rms", d->oracle.url);
        json_t *j = NULL;
        if (daemons_call("GET", url, NULL, &j) == 200 && json_is_array(j)) {
                size_t i;
                json_t *r;
                json_array_foreach(j, i, r) {
                        const char *name = json_string_value(json_object_get(r, "name"));
                        const char *state = json_string_value(json_object_get(r, "state"));
                        if (name && state && strcmp(name, rm) == 0)
                                snprintf(ret, 16, "%s", state);
                }
        }
        json_decref(j);
}

/* A join token of role from the Oracle into ret (JOIN_TOKEN_TEXT_SIZE), or "". */
static void join_token(daemons_t *d, const char *role, char *ret, size_t size) {
        char url[160];
        snprintf(url, sizeof url, "%s/v1/rms/join-tokens", d->oracle.url);
        json_t *j = NULL, *body = json_pack("{s:s,s:i}", "role", role, "ttl_s", 600);
        daemons_call("POST", url, body, &j);
        json_decref(body);
        const char *t = json_string_value(json_object_get(j, "token"));
        snprintf(ret, size, "%s", t ? t : "");
        json_decref(j);
}

static int node_spawn(daemons_t *d, daemon_t *dm, const char *const *env) {
        char listen[32], cert[600], token[256] = "";
        snprintf(listen, sizeof listen, "127.0.0.1:%d", dm->port);
        /* the first start enrols with a join token; later ones use the certificate kept */
        snprintf(cert, sizeof cert, "%s/tls/cert.pem", dm->data);
        if (access(cert, F_OK) < 0)
                join_token(d, dm->role, token, sizeof token);
        char oracle[96];
        snprintf(oracle, sizeof oracle, "https://127.0.0.1:%d", d->oracle.node_port);
        char *argv[48] = { d->exe, "node", "--oracle", oracle, "--name", dm->name, "--role", dm->role,
                           "--data", dm->data, "--listen", listen, "--driver", "fake" };
        size_t argc = 14;
        if (*token) {
                argv[argc++] = "--join";
                argv[argc++] = token;
        }
        for (size_t i = 0; dm->args && dm->args[i] && argc + 1 < ELEMENTSOF(argv); i++)
                argv[argc++] = (char *)dm->args[i];
        if (spawn(dm, argv, env) < 0)
                return -1;
        char url[128];
        snprintf(url, sizeof url, "%s/v1/health", dm->url);
        if (wait_http(dm, url, daemons_now_ms() + 20000) < 0)
                return -1;
        /* up at the Oracle: its first heartbeat arrived */
        int64_t deadline = daemons_now_ms() + 20000;
        while (daemons_now_ms() < deadline) {
                char st[16];
                daemons_rm_state(d, dm->name, st);
                if (strcmp(st, "up") == 0)
                        return 0;
                daemons_sleep_ms(100);
        }
        return -1;
}

int daemons_node_start(daemons_t *d, int i, const char *name, const char *role, const char *const *env) {
        if (i < 0 || i >= DAEMONS_NODES_MAX)
                return -1;
        daemon_t *dm = &d->nodes[i];
        snprintf(dm->name, sizeof dm->name, "%s", name);
        snprintf(dm->role, sizeof dm->role, "%s", role);
        snprintf(dm->data, sizeof dm->data, "%s/%s", d->dir, name);
        snprintf(dm->log, sizeof dm->log, "%s/%s.log", d->dir, name);
        snprintf(dm->oracle, sizeof dm->oracle, "https://127.0.0.1:%d", d->oracle.node_port);
        dm->port = tap_free_port();
        snprintf(dm->url, sizeof dm->url, "https://%s@127.0.0.1:%d", name, dm->port);
        return node_spawn(d, dm, env);
}

int daemons_restart(daemons_t *d, daemon_t *dm, const char *const *env) {
        daemons_stop(dm, SIGKILL);
        if (dm != &d->oracle)
                return node_spawn(d, dm, env);
        if (oracle_spawn(d, env) < 0)
                return -1;
        /* a restarted Oracle knows its RMs but has not heard them yet: wait for their heartbeats */
        int64_t deadline = daemons_now_ms() + 20000;
        for (int i = 0; i < DAEMONS_NODES_MAX; i++) {
                char st[16] = "";
                while (d->nodes[i].pid > 0 && daemons_now_ms() < deadline) {
                        daemons_rm_state(d, d->nodes[i].name, st);
                        if (strcmp(st, "up") == 0)
                                break;
                        daemons_sleep_ms(100);
                }
                if (d->nodes[i].pid > 0 && strcmp(st, "up") != 0)
                        return -1;
        }
        return 0;
}

long daemons_vm_action(daemons_t *d, const char *vm, const char *action, json_t *body, char *ret_op) {
        char url[256];
        snprintf(url, sizeof url, "%s/v1/vms/%s/%s", d->oracle.url, vm, action);
        json_t *j = NULL;
        json_t *b = body ? body : json_object();
        long status = daemons_call("POST", url, b, &j);
        json_decref(b);
        if (status != 202)
                fprintf(stderr, "POST %s: %ld %s\n", url, status,
                        json_string_value(json_object_get(json_object_get(j, "error"), "message")) ?: "");
        const char *id = json_string_value(json_object_get(json_object_get(j, "op"), "id"));
        snprintf(ret_op, 64, "%s", id ? id : "");
        json_decref(j);
        return status;
}

void daemons_op_wait(daemons_t *d, const char *op, int64_t deadline_ms, char *ret_state) {
        snprintf(ret_state, 16, "%s", "");
        char url[256];
        snprintf(url, sizeof url, "%s/v1/ops/%s?wait_ms=1000", d->oracle.url, op);
        while (daemons_now_ms() < deadline_ms) {
                json_t *j = NULL;
                if (daemons_call("GET", url, NULL, &j) == 200) {
                        const char *st = json_string_value(json_object_get(j, "state"));
                        snprintf(ret_state, 16, "%s", st ? st : "");
                }
                json_decref(j);
                if (*ret_state && strcmp(ret_state, "running") != 0)
                        return;
                daemons_sleep_ms(50);
        }
}

void daemons_vm_state(daemons_t *d, const char *vm, char *ret_state, char *ret_rm) {
        *ret_state = 0;
        if (ret_rm)
                *ret_rm = 0;
        char url[256];
        snprintf(url, sizeof url, "%s/v1/vms/%s", d->oracle.url, vm);
        json_t *j = NULL;
        if (daemons_call("GET", url, NULL, &j) == 200) {
                const char *st = json_string_value(json_object_get(j, "state"));
                const char *rm = json_string_value(json_object_get(j, "rm"));
                snprintf(ret_state, 32, "%s", st ? st : "");
                if (ret_rm)
                        snprintf(ret_rm, 32, "%s", rm ? rm : "");
        }
        json_decref(j);
}

bool daemons_vm_wait_state(daemons_t *d, const char *vm, const char *want, int64_t deadline_ms) {
        char st[32];
        do {
                daemons_vm_state(d, vm, st, NULL);
                if (strcmp(st, want) == 0)
                        return true;
                daemons_sleep_ms(100);
        } while (daemons_now_ms() < deadline_ms);
        return false;
}

bool daemons_vm_do(daemons_t *d, const char *vm, const char *action, const char *want) {
        return daemons_vm_do_on(d, vm, action, NULL, want);
}

bool daemons_vm_do_on(daemons_t *d, const char *vm, const char *action, const char *rm, const char *want) {
        char op[64], st[16];
        long status = daemons_vm_action(d, vm, action, rm ? json_pack("{s:s}", "rm", rm) : NULL, op);
        if (status != 202 || !*op) {
                fprintf(stderr, "%s %s: HTTP %ld\n", action, vm, status);
                return false;
        }
        daemons_op_wait(d, op, daemons_now_ms() + 30000, st);
        if (strcmp(st, "done") != 0) {
                fprintf(stderr, "%s %s: op %s is %s\n", action, vm, op, st);
                return false;
        }
        char vs[32];
        daemons_vm_state(d, vm, vs, NULL);
        if (want && strcmp(vs, want) != 0) {
                fprintf(stderr, "%s %s: state %s, not %s\n", action, vm, vs, want);
                return false;
        }
        return true;
}

int daemons_vm_create(daemons_t *d, const char *vm) {
        char url[256];
        snprintf(url, sizeof url, "%s/v1/images", d->oracle.url);
        json_t *img = json_pack("{s:s,s:s}", "name", "tiny-http", "builtin", "tiny-http");
        long s = daemons_call("POST", url, img, NULL);
        json_decref(img);
        if (s != 201 && s != 409)
                return -1;
        snprintf(url, sizeof url, "%s/v1/vms", d->oracle.url);
        json_t *body = json_pack("{s:s,s:s,s:i}", "name", vm, "image", "tiny-http", "memory_mib", 32);
        s = daemons_call("POST", url, body, NULL);
        json_decref(body);
        return s == 201 ? 0 : -1;
}

void daemons_boot_id(const daemon_t *dm, const char *vm, char *ret) {
        *ret = 0;
        char path[700];
        snprintf(path, sizeof path, "%s/vms/%s/run/fake.json", dm->data, vm);
        json_t *j = json_load_file(path, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "boot_id"));
        snprintf(ret, 32, "%s", id ? id : "");
        json_decref(j);
}

/* ---- the fake guests, seen from the test (the node process holds their handles) ---- */

static void vm_run_dir(const daemon_t *dm, const char *vm, char *ret, size_t size) {
        snprintf(ret, size, "%s/vms/%s/run", dm->data, vm);
}

int daemons_ram_mark_set(const daemon_t *dm, const char *vm, const char *mark) {
        char run[700];
        vm_run_dir(dm, vm, run, sizeof run);
        return vmm_fake_ram_set(run, "mark", mark);
}

void daemons_ram_mark(const daemon_t *dm, const char *vm, char *ret) {
        *ret = 0;
        char run[700];
        vm_run_dir(dm, vm, run, sizeof run);
        json_t *j = NULL;
        if (vmm_fake_guest_get(run, &j) < 0)
                return;
        const char *m = json_string_value(json_object_get(json_object_get(j, "ram"), "mark"));
        snprintf(ret, 32, "%s", m ? m : "");
        json_decref(j);
}

int daemons_vm_crash(const daemon_t *dm, const char *vm) {
        char run[700];
        vm_run_dir(dm, vm, run, sizeof run);
        return vmm_fake_crash(run);
}

int daemons_vm_poweroff(const daemon_t *dm, const char *vm) {
        char run[700];
        vm_run_dir(dm, vm, run, sizeof run);
        return vmm_fake_poweroff(run);
}

int daemons_disk_mark_set(const daemon_t *dm, const char *vm, const char *mark) {
        size_t len = strlen(mark);
        if (len > 31 || strspn(mark, "abcdefghijklmnopqrstuvwxyz0123456789-") != len)
                return -1;
        /* one byte per write command, the mark and its terminating NUL */
        char cmd[2048];
        int n = snprintf(cmd, sizeof cmd, "qemu-io -f qcow2");
        for (size_t i = 0; i <= len; i++)
                n += snprintf(cmd + n, sizeof cmd - (size_t)n, " -c 'write -P 0x%02x %zu 1'", (unsigned char)mark[i], i);
        snprintf(cmd + n, sizeof cmd - (size_t)n, " '%s/vms/%s/disk.qcow2' >/dev/null 2>&1", dm->data, vm);
        return system(cmd) == 0 ? 0 : -1;
}

void daemons_disk_mark(const daemon_t *dm, const char *vm, char *ret) {
        *ret = 0;
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "qemu-io -f qcow2 -r -c 'read -v 0 32' '%s/vms/%s/disk.qcow2' 2>/dev/null", dm->data,
                 vm);
        FILE *p = popen(cmd, "r");
        if (!p)
                return;
        /* "00000000:  61 62 00 ...  ab.." lines of 16 bytes */
        char line[256];
        size_t len = 0;
        bool end = false;
        while (fgets(line, sizeof line, p)) {
                char *hex = strstr(line, ":  ");
                if (!hex || end)
                        continue;
                hex += 3;
                for (int k = 0; k < 16 && !end; k++) {
                        unsigned byte;
                        if (sscanf(hex + 3 * k, "%2x", &byte) != 1 || byte == 0 || len >= 31)
                                end = true;
                        else
                                ret[len++] = (char)byte;
                }
        }
        ret[len] = 0;
        pclose(p);
}

/* ---- the cluster's agreement on a VM ---- */

daemon_t *daemons_node(daemons_t *d, const char *name) {
        for (int i = 0; i < DAEMONS_NODES_MAX; i++)
                if (*d->nodes[i].name && strcmp(d->nodes[i].name, name) == 0)
                        return &d->nodes[i];
        return NULL;
}

int64_t daemons_node_vm(const daemon_t *dm, const char *vm, char *ret_state) {
        char url[256];
        snprintf(url, sizeof url, "%s/v1/vms/%s", dm->url, vm);
        json_t *j = NULL;
        int64_t version = -1;
        *ret_state = 0;
        if (daemons_call("GET", url, NULL, &j) == 200) {
                const char *st = json_string_value(json_object_get(j, "state"));
                /* a deleted VM's entry (its tombstone) answers too */
                if (st && strcmp(st, "deleted") != 0) {
                        version = json_integer_value(json_object_get(j, "version"));
                        snprintf(ret_state, 32, "%s", st);
                }
        }
        json_decref(j);
        return version;
}

int64_t daemons_vm_version(daemons_t *d, const char *vm) {
        char url[256];
        snprintf(url, sizeof url, "%s/v1/vms/%s", d->oracle.url, vm);
        json_t *j = NULL;
        int64_t v = daemons_call("GET", url, NULL, &j) == 200 ? json_integer_value(json_object_get(j, "version")) : -1;
        json_decref(j);
        return v;
}

/* One look at vm: NULL when the cluster agrees, else what does not (static text). */
static const char *vm_disagreement(daemons_t *d, const char *vm, char *ret_state, char *detail, size_t size) {
        char url[256];
        snprintf(url, sizeof url, "%s/v1/vms/%s", d->oracle.url, vm);
        json_t *j = NULL;
        long status = daemons_call("GET", url, NULL, &j);
        const char *why = NULL;
        if (status != 200) {
                why = status == 404 ? "the Oracle lost the VM" : "the Oracle does not answer";
                json_decref(j);
                return why;
        }
        const char *state = json_string_value(json_object_get(j, "state")) ?: "";
        const char *rm = json_string_value(json_object_get(j, "rm")) ?: "";
        const char *op = json_string_value(json_object_get(j, "op_id")) ?: "";
        int64_t version = json_integer_value(json_object_get(j, "version"));
        int64_t nest_version = json_integer_value(json_object_get(j, "nest_version"));
        snprintf(ret_state, 32, "%s", state);
        snprintf(detail, size, "Oracle: %s v%lld on \"%s\"", state, (long long)version, rm);
        if (!lifecycle_state_is_stable(state) || *op)
                why = "the Oracle has it in an operation";
        bool runs = strcmp(state, "loading") == 0 || strcmp(state, "active") == 0;
        for (int i = 0; !why && i < DAEMONS_NODES_MAX; i++) {
                const daemon_t *dm = &d->nodes[i];
                if (!*dm->name || dm->pid <= 0)
                        continue;
                char ns[32];
                int64_t nv = daemons_node_vm(dm, vm, ns);
                bool running = strcmp(ns, "running") == 0 || strcmp(ns, "paused") == 0;
                size_t len = strlen(detail);
                snprintf(detail + len, size - len, "; %s: %s v%lld", dm->name, *ns ? ns : "-", (long long)nv);
                if (strcmp(dm->name, rm) != 0) {
                        if (running)
                                why = "an RM the Oracle does not place it on runs a copy";
                        continue;
                }
                if (nv > version)
                        why = "the node's version is ahead of the Oracle's";
                else if (runs && strcmp(ns, "running") != 0)
                        why = "the Oracle has it running, its RM does not";
                else if (strcmp(state, "suspended") == 0 && strcmp(ns, "suspended") != 0)
                        why = "the Oracle has it suspended, its RM does not";
                else if ((strcmp(state, "stored") == 0 || strcmp(state, "failed") == 0) && running)
                        why = "its RM runs a VM the Oracle has not running";
        }
        bool prebooted = json_is_true(json_object_get(j, "prebooted"));
        const char *files[] = { "disk", prebooted ? "state" : NULL, prebooted ? "memory" : NULL };
        for (size_t i = 0; !why && strcmp(state, "stored") == 0 && nest_version > 0 && i < 3; i++) {
                /* the bundle it would start from is in the Nest */
                snprintf(url, sizeof url, "%s/v1/manifests/%s/%lld/%s", d->oracle.url, vm, (long long)nest_version,
                         files[i]);
                if (files[i] && daemons_call("GET", url, NULL, NULL) != 200)
                        why = "a file of its Nest bundle is missing";
        }
        json_decref(j);
        return why;
}

bool daemons_vm_consistent(daemons_t *d, const char *vm, int64_t deadline_ms, char *ret_state) {
        char state[32] = "", detail[512] = "";
        const char *why = NULL;
        for (;;) {
                why = vm_disagreement(d, vm, state, detail, sizeof detail);
                if (!why || daemons_now_ms() >= deadline_ms)
                        break;
                daemons_sleep_ms(100);
        }
        if (ret_state)
                snprintf(ret_state, 32, "%s", state);
        if (why)
                fprintf(stderr, "vm %s is not consistent: %s (%s)\n", vm, why, detail);
        return !why;
}

daemon_t *daemons_vm_node(daemons_t *d, const char *vm) {
        char st[32], rm[32];
        daemons_vm_state(d, vm, st, rm);
        return *rm ? daemons_node(d, rm) : NULL;
}

bool daemons_vm_to_active(daemons_t *d, const char *vm, bool *ret_cold) {
        bool cold = false;
        char st[32], rm[32];
        daemons_vm_state(d, vm, st, rm);
        const daemon_t *dm = *rm ? daemons_node(d, rm) : NULL;
        bool on_production = dm && strcmp(dm->role, "production") == 0;
        bool ok = true;
        if (strcmp(st, "failed") == 0) {
                /* its disk is saved (or its last bundle kept); it starts cold from there */
                ok = daemons_vm_do(d, vm, "stop", "stored");
                cold = true;
                strcpy(st, "stored");
        } else if (strcmp(st, "stored") == 0) {
                char url[256];
                snprintf(url, sizeof url, "%s/v1/vms/%s", d->oracle.url, vm);
                json_t *j = NULL;
                cold = daemons_call("GET", url, NULL, &j) == 200 && !json_is_true(json_object_get(j, "prebooted"));
                json_decref(j);
        } else if (strcmp(st, "suspended") == 0 && on_production) {
                ok = daemons_vm_do(d, vm, "resume", "active");
                strcpy(st, "active");
        }
        /* a production RM is free only once its next heartbeat shows the fenced copy gone (503
         * meanwhile): asked again until a deadline */
        int64_t deadline = daemons_now_ms() + 10000;
        while (ok && strcmp(st, "active") != 0) {
                char op[64];
                long status = daemons_vm_action(d, vm, "activate", NULL, op);
                if (status == 503 && daemons_now_ms() < deadline) {
                        daemons_sleep_ms(200);
                        continue;
                }
                char ost[16] = "";
                if (status == 202)
                        daemons_op_wait(d, op, daemons_now_ms() + 30000, ost);
                daemons_vm_state(d, vm, st, NULL);
                ok = strcmp(ost, "done") == 0 && strcmp(st, "active") == 0;
                if (!ok)
                        fprintf(stderr, "activate %s: HTTP %ld, op %s, vm %s\n", vm, status, ost, st);
                break;
        }
        if (ret_cold)
                *ret_cold = cold;
        return ok;
}

bool daemons_vm_wait_stable(daemons_t *d, const char *vm, int64_t deadline_ms, char *ret_state) {
        for (;;) {
                daemons_vm_state(d, vm, ret_state, NULL);
                if (lifecycle_state_is_stable(ret_state))
                        return true;
                if (daemons_now_ms() >= deadline_ms)
                        return false;
                daemons_sleep_ms(100);
        }
}

int daemons_start_cluster(daemons_t *d) {
        if (daemons_oracle_start(d, NULL) < 0 || daemons_node_start(d, 0, "rm1", "production", NULL) < 0 ||
            daemons_node_start(d, 1, "ch1", "chamber", NULL) < 0)
                return -1;
        return 0;
}
