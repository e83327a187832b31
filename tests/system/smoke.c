/* The harness shared by the real-QEMU smoke programs: see smoke.h. Its state is file-global
 * because the signal handler must reach the VMs to kill. */
#include <arpa/inet.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "base/log.h"
#include "base/util.h"
#include "smoke.h"

int smoke_passed, smoke_failed;

static struct {
        vmm_vm_t *vms[8];       /* killed at exit whatever happens */
        void (*cleanup)(void);  /* the program's own, after the VMs */
} smoke;

bool smoke_check(bool ok, const char *file, int line, const char *expr, const char *more) {
        if (ok)
                smoke_passed++;
        else {
                fprintf(stderr, "FAIL %s:%d: %s%s\n", file, line, expr, more);
                smoke_failed++;
        }
        return ok;
}

static void smoke_on_signal(int sig) {
        smoke_kill_all();
        signal(sig, SIG_DFL);
        raise(sig);
}

void smoke_init(const char *name, void (*cleanup)(void)) {
        log_setup(name);
        smoke.cleanup = cleanup;
        /* both blocked while either is handled: a Ctrl-C also makes the runner send SIGTERM */
        struct sigaction sa = { .sa_handler = smoke_on_signal };
        sigemptyset(&sa.sa_mask);
        sigaddset(&sa.sa_mask, SIGINT);
        sigaddset(&sa.sa_mask, SIGTERM);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

void smoke_vm_track(vmm_vm_t *vm) {
        for (size_t i = 0; i < ELEMENTSOF(smoke.vms); i++)
                if (!smoke.vms[i]) {
                        smoke.vms[i] = vm;
                        return;
                }
}

void smoke_vm_release(vmm_vm_t **vm) {
        vmm_vm_t *v = TAKE_PTR(*vm);
        if (!v)
                return;
        for (size_t i = 0; i < ELEMENTSOF(smoke.vms); i++)
                if (smoke.vms[i] == v)
                        smoke.vms[i] = NULL;
        vmm_vm_free(v);
}

void smoke_vm_finish(vmm_vm_t **vm) {
        if (*vm)
                (void)vmm_kill(*vm, 0);
        smoke_vm_release(vm);
}

void smoke_kill_all(void) {
        for (size_t i = 0; i < ELEMENTSOF(smoke.vms); i++)
                smoke_vm_finish(&smoke.vms[i]);
        if (smoke.cleanup)
                smoke.cleanup();
}

vmm_run_state_t smoke_vm_state(vmm_vm_t *vm) {
        vmm_status_t st = { .state = -1 };
        return vmm_status(vm, &st) < 0 ? (vmm_run_state_t)-1 : st.state;
}

int smoke_fd_count(void) {
        int n = 0;
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return -1;
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

bool smoke_file_contains(const char *path, const char *needle) {
        _cleanup_free_ char *text = NULL;
        return file_read(path, &text, NULL) == 0 && strstr(text, needle);
}

int smoke_http(const char *method, int port, const char *path, int timeout_ms, char **ret_body) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                return negative_errno();
        _cleanup_free_ char *req = xasprintf("%s %s HTTP/1.0\r\nHost: x\r\n\r\n", method, path);
        if (write(fd, req, strlen(req)) < 0)
                return negative_errno();
        char buf[4096];
        size_t len = 0;
        ssize_t n;
        while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
                len += (size_t)n;
        buf[len] = 0;
        if (!str_startswith(buf, "HTTP/1.1 200"))
                return -EIO;
        if (ret_body) {
                char *body = strstr(buf, "\r\n\r\n");
                *ret_body = xstrdup(body ? body + 4 : "");
                (*ret_body)[strcspn(*ret_body, "\r\n")] = 0;
        }
        return 0;
}

int smoke_http_get(int port, const char *path, char **ret_body) {
        return smoke_http("GET", port, path, 5000, ret_body);
}

long smoke_json_num(const char *body, const char *key) {
        _cleanup_free_ char *k = xasprintf("\"%s\": ", key);
        const char *h = body ? strstr(body, k) : NULL;
        return h ? strtol(h + strlen(k), NULL, 10) : -1;
}

char *smoke_json_str(const char *body, const char *key) {
        _cleanup_free_ char *k = xasprintf("\"%s\": \"", key);
        const char *b = body ? strstr(body, k) : NULL;
        if (!b)
                return xstrdup("");
        b += strlen(k);
        return xasprintf("%.*s", (int)strcspn(b, "\""), b);
}
