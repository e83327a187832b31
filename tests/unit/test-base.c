/* Unit tests for src/base: parsing, names, files, running programs, fault injection. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "base/fault.h"
#include "base/proc.h"
#include "base/util.h"
#include "tap.h"

/* VMATRIX_FAULT=file-write:2 (read once, at the first check): only the second file_write_atomic
 * fails, with -EIO, and leaves the old content; other sites never fire. */
static void test_fault(void) {
        setenv(FAULT_ENV, "file-write:2", 1);
        char dir[] = "/tmp/vmx-test-fault-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *f = xasprintf("%s/file", dir);
        CHECK(file_write_atomic(f, "one", 3) == 0);
        CHECK(file_write_atomic(f, "two", 3) == -EIO);
        _cleanup_free_ char *content = NULL;
        CHECK(file_read(f, &content, NULL) == 0 && streq(content, "one"));
        CHECK(file_write_atomic(f, "three", 5) == 0);
        CHECK(!fault_hit("store-write") && !fault_hit("http-call"));
        unsetenv(FAULT_ENV);
        CHECK(rm_rf(dir) == 0);
}

static void test_names(void) {
        CHECK(name_is_valid("web1"));
        CHECK(name_is_valid("a-b-3"));
        CHECK(!name_is_valid(""));
        CHECK(!name_is_valid("-a"));
        CHECK(!name_is_valid("Web"));
        CHECK(!name_is_valid("a/b"));
        CHECK(!name_is_valid("0123456789012345678901234567890123456789012345678901234567890123"));
}

static void test_parse(void) {
        int64_t v = 0;
        CHECK(parse_int64("128", 1, 1024, &v) == 0 && v == 128);
        CHECK(parse_int64("0", 1, 1024, &v) == -ERANGE);
        CHECK(parse_int64("12x", 1, 1024, &v) == -EINVAL);
        CHECK(parse_int64("", 1, 1024, &v) == -EINVAL);
        CHECK(parse_int64("99999999999999999999999", 1, 1024, &v) == -ERANGE);
}

static void test_files(void) {
        char dir[] = "/tmp/vmx-test-base-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *sub = xasprintf("%s/a/b/c", dir);
        CHECK(mkdir_p(sub, 0755) == 0);
        _cleanup_free_ char *f = xasprintf("%s/file", sub);
        CHECK(file_write_atomic(f, "hello", 5) == 0);
        _cleanup_free_ char *content = NULL;
        size_t len = 0;
        CHECK(file_read(f, &content, &len) == 0 && len == 5 && streq(content, "hello"));
        char hex[65];
        CHECK(file_sha256(f, hex) == 0);
        CHECK_STREQ(hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        CHECK(file_read("/nonexistent/x", &content, &len) == -ENOENT);
        CHECK(rm_rf(dir) == 0);
        CHECK(!file_exists(dir));
}

/* The first line of s as a pid, or 0. */
static pid_t first_pid(const char *s) {
        int64_t v = 0;
        char line[32] = "";
        if (s)
                snprintf(line, sizeof line, "%.*s", (int)strcspn(s, "\n"), s);
        return parse_int64(line, 2, INT32_MAX, &v) == 0 ? (pid_t)v : 0;
}

static void test_proc_run(void) {
        char *const ok[] = { "true", NULL };
        CHECK(proc_run(ok, 5000, NULL) == 0);

        _cleanup_free_ char *out = NULL;
        char *const fail[] = { "/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 3", NULL };
        CHECK(proc_run(fail, 5000, &out) == -EPROTO);
        CHECK_STREQ(out, "to-out\nto-err\n");

        char *const missing[] = { "vmx-no-such-program-anywhere", NULL };
        char *none = NULL;
        CHECK(proc_run(missing, 5000, &none) == -ENOENT && !none);
        char *const missing_abs[] = { "/nonexistent/qemu-img", NULL };
        CHECK(proc_run(missing_abs, 5000, NULL) == -ENOENT);
        CHECK(proc_run(ok, 0, NULL) == -EINVAL);

        /* killed by a signal is a failure, not a success */
        char *const killed[] = { "/bin/sh", "-c", "kill -9 $$", NULL };
        CHECK(proc_run(killed, 5000, NULL) == -EPROTO);

        /* bounded: 200000 bytes written, 64 KiB kept, and the writer is never blocked */
        char *const big[] = { "/bin/sh", "-c", "yes | head -c 200000", NULL };
        free(out);
        out = NULL;
        CHECK(proc_run(big, 10000, &out) == 0 && out && strlen(out) == PROC_OUTPUT_MAX);

        /* stdin is /dev/null: cat ends at once instead of waiting for the timeout */
        char *const cat[] = { "cat", NULL };
        CHECK(proc_run(cat, 10000, NULL) == 0);

        /* no signal blocked or ignored by us reaches the child */
        sigset_t usr1, old;
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        sigprocmask(SIG_BLOCK, &usr1, &old);
        struct sigaction ign = { .sa_handler = SIG_IGN }, old_usr2;
        sigaction(SIGUSR2, &ign, &old_usr2);
        char *const status[] = { "cat", "/proc/self/status", NULL };
        free(out);
        out = NULL;
        CHECK(proc_run(status, 5000, &out) == 0);
        CHECK(out && strstr(out, "\nSigBlk:\t0000000000000000\n"));
        /* glibc's posix_spawn leaves its two internal signals (32 and 33, never sent to a
         * program that does not use them) ignored; every other one is at its default */
        const char *ign_line = out ? strstr(out, "\nSigIgn:\t") : NULL;
        unsigned long long ignored = ign_line ? strtoull(ign_line + 9, NULL, 16) : ~0ULL;
        CHECK((ignored & ~((1ULL << 31) | (1ULL << 32))) == 0);
        sigaction(SIGUSR2, &old_usr2, NULL);
        sigprocmask(SIG_SETMASK, &old, NULL);

        /* stderr left out of the output (ours, here /dev/null for a quiet log) */
        proc_run_opts_t opts = { .timeout_ms = 5000, .output_max = 4, .stderr_inherit = true };
        int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        dup2(null, STDERR_FILENO);
        free(out);
        out = NULL;
        CHECK(proc_run_full(fail, &opts, &out) == -EPROTO);
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(null);
        CHECK_STREQ(out, "to-o");
}

static void test_proc_timeout(void) {
        /* it writes nothing: the timeout still applies; the child is killed and reaped */
        _cleanup_free_ char *out = NULL;
        char *const sleeper[] = { "/bin/sh", "-c", "echo $$; exec sleep 5", NULL };
        CHECK(proc_run(sleeper, 200, &out) == -ETIMEDOUT);
        pid_t pid = first_pid(out);
        CHECK(pid > 0);
        CHECK(pid > 0 && kill(pid, 0) < 0 && errno == ESRCH); /* gone, not even a zombie */

        /* a grandchild that holds the pipe open dies with its process group. As a subreaper we
         * inherit it when its parent dies, and its wait status says how it ended. */
        CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
        char *const holder[] = { "/bin/sh", "-c", "sleep 5 & echo $!; wait", NULL };
        free(out);
        out = NULL;
        CHECK(proc_run(holder, 200, &out) == -ETIMEDOUT);
        pid_t grandchild = first_pid(out);
        CHECK(grandchild > 0);
        int status = 0;
        if (grandchild > 0) {
                CHECK(waitpid(grandchild, &status, 0) == grandchild);
                CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        }

        /* the child exits at once but leaves a grandchild with the pipe: no wait for its EOF */
        char *const leaver[] = { "/bin/sh", "-c", "sleep 5 & echo $!", NULL };
        free(out);
        out = NULL;
        CHECK(proc_run(leaver, 3000, &out) == 0);
        grandchild = first_pid(out);
        CHECK(grandchild > 0);
        if (grandchild > 0) {
                kill(grandchild, SIGKILL);
                CHECK(waitpid(grandchild, &status, 0) == grandchild);
        }
        CHECK(prctl(PR_SET_CHILD_SUBREAPER, 0) == 0);
}

/* The descriptors pid has open, as "0 1 2 " (at most size bytes). */
static void fds_of(pid_t pid, char *names, size_t size) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "/proc/%d/fd", (int)pid);
        names[0] = 0;
        for (int fd = 0; fd < 64; fd++) {
                char path[96];
                snprintf(path, sizeof path, "%s/%d", cmd, fd);
                if (access(path, F_OK) == 0)
                        snprintf(names + strlen(names), size - strlen(names), "%d ", fd);
        }
}

static void test_proc_spawn_daemon(void) {
        char dir[] = "/tmp/vmx-test-proc-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *log = xasprintf("%s/daemon.log", dir);
        int log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int leak = open("/dev/null", O_RDONLY); /* deliberately not close-on-exec */
        CHECK(log_fd >= 0 && leak >= 0);

        proc_spawn_opts_t session = { .out_fd = log_fd, .new_session = true };
        char *const argv[] = { "/bin/sh", "-c", "echo started; echo oops >&2; exec sleep 30", NULL };
        pid_t pid = 0;
        CHECK(proc_spawn_daemon(argv, &session, &pid) == 0 && pid > 0);
        time_sleep_ms(100); /* past the echoes */
        char names[128];
        fds_of(pid, names, sizeof names);
        CHECK_STREQ(names, "0 1 2 ");
        CHECK(getsid(pid) == pid);
        kill(pid, SIGKILL);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
        _cleanup_free_ char *text = NULL;
        CHECK(file_read(log, &text, NULL) == 0 && text && streq(text, "started\noops\n"));

        /* without new_session: its own process group within our session */
        proc_spawn_opts_t group = { .out_fd = -1 };
        char *const sleeper[] = { "sleep", "30", NULL };
        CHECK(proc_spawn_daemon(sleeper, &group, &pid) == 0);
        CHECK(getpgid(pid) == pid && getsid(pid) == getsid(0));
        kill(pid, SIGKILL);
        CHECK(waitpid(pid, &status, 0) == pid);

        /* exec's errno comes back, and nothing is left to reap */
        char *const missing[] = { "vmx-no-such-program-anywhere", NULL };
        CHECK(proc_spawn_daemon(missing, &group, &pid) == -ENOENT);
        _cleanup_free_ char *plain = xasprintf("%s/plain", dir);
        CHECK(file_write_atomic(plain, "data", 4) == 0); /* 0644: not executable */
        char *const notexec[] = { plain, NULL };
        CHECK(proc_spawn_daemon(notexec, &group, &pid) == -EACCES);
        CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);

        close(leak);
        close(log_fd);
        CHECK(rm_rf(dir) == 0);
}

int main(void) {
        test_fault(); /* first: the variable is read once per process */
        test_names();
        test_parse();
        test_files();
        test_proc_run();
        test_proc_timeout();
        test_proc_spawn_daemon();
        /* array_append: grows by one zeroed element each time, keeps what was there */
        {
                int64_t *arr = NULL;
                size_t n = 0;
                for (int64_t k = 0; k < 100; k++) {
                        int64_t *e = array_append(&arr, &n, sizeof *arr);
                        CHECK(*e == 0);
                        *e = k;
                }
                CHECK(n == 100 && arr[0] == 0 && arr[57] == 57 && arr[99] == 99);
                free(arr);
        }

        return tap_finish();
}
