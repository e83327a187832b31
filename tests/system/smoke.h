/* The harness shared by the real-QEMU smoke programs (qemu-driver-smoke.c, qemu-live-smoke.c):
 * check counters, the VMs a program started (killed at exit and on SIGINT/SIGTERM, so no QEMU
 * outlives a failed run), and small helpers to talk to the tiny-http guest over its port
 * forward. Unit tests use tests/unit/tap.h instead; these programs need a real QEMU.
 * Single-threaded except for smoke_http, which any thread may call. */
#pragma once

#include <stdbool.h>

#include "vmm/vmm.h"

extern int smoke_passed, smoke_failed;

/* Count a check; on failure print "FAIL file:line: expr" and then more. Returns ok. */
bool smoke_check(bool ok, const char *file, int line, const char *expr, const char *more);

/* Count a check; on failure print where it is and go on. */
#define EXPECT(cond) ((void)smoke_check(!!(cond), __FILE__, __LINE__, #cond, ""))

/* Like EXPECT, but a failure returns from the (void) function: what follows depends on it. */
#define REQUIRE(cond)                                                                   \
        do {                                                                            \
                if (!smoke_check(!!(cond), __FILE__, __LINE__, #cond, " (giving up)")) \
                        return;                                                         \
        } while (0)

/* Log as name; on SIGINT and SIGTERM run smoke_kill_all, then die of the signal. cleanup (may
 * be NULL) is the program's own, run by smoke_kill_all after the VMs are gone. */
void smoke_init(const char *name, void (*cleanup)(void));

/* Remember vm, to be killed by smoke_kill_all (at most 8 at a time; more are not tracked). */
void smoke_vm_track(vmm_vm_t *vm);

/* Forget and free *vm without killing it (its QEMU keeps running); *vm becomes NULL. */
void smoke_vm_release(vmm_vm_t **vm);

/* Kill, forget and free *vm (NULL is fine); *vm may be the harness's own entry for it. */
void smoke_vm_finish(vmm_vm_t **vm);

/* Kill and free every tracked VM, then run the program's cleanup. */
void smoke_kill_all(void);

/* The VM's state, or -1 when it cannot be read. */
vmm_run_state_t smoke_vm_state(vmm_vm_t *vm);

/* Open fds of this process, to catch leaks; -1 on error. */
int smoke_fd_count(void);

/* Whether the file at path can be read and contains needle. */
bool smoke_file_contains(const char *path, const char *needle);

/* method path on 127.0.0.1:port, each socket operation limited to timeout_ms. 0 on a 200
 * answer, with the body's first line in *ret_body (malloc'd) when ret_body is not NULL; -EIO
 * on another answer, -errno when the connection fails. */
int smoke_http(const char *method, int port, const char *path, int timeout_ms, char **ret_body);

/* GET path with a 5 s timeout. */
int smoke_http_get(int port, const char *path, char **ret_body);

/* The number after "key": in the guest's flat JSON answer body (NULL is fine), or -1. */
long smoke_json_num(const char *body, const char *key);

/* The string value of "key" in body (NULL is fine), malloc'd; "" when it is not there. */
char *smoke_json_str(const char *body, const char *key);
