/* Dispatch from the generic vmm_* calls to a driver's operations; a NULL slot is -EOPNOTSUPP. */
#include "vmm/vmm.h"

#include <errno.h>
#include <stddef.h>

#define DISPATCH(vm, op, ...)                                    \
        do {                                                     \
                if (!(vm) || !(vm)->driver->op)                  \
                        return -EOPNOTSUPP;                      \
                return (vm)->driver->op(__VA_ARGS__);            \
        } while (0)

int vmm_boot(const vmm_driver_t *d, const vmm_config_t *cfg, unsigned flags, vmm_vm_t **ret) {
        if (!d->boot)
                return -EOPNOTSUPP;
        return d->boot(cfg, flags, ret);
}

int vmm_restore(const vmm_driver_t *d, const vmm_config_t *cfg, const char *state_path, unsigned flags,
                vmm_vm_t **ret) {
        if (!d->restore)
                return -EOPNOTSUPP;
        return d->restore(cfg, state_path, flags, ret);
}

int vmm_attach(const vmm_driver_t *d, const vmm_config_t *cfg, unsigned flags, vmm_vm_t **ret) {
        if (!d->attach)
                return -EOPNOTSUPP;
        return d->attach(cfg, flags, ret);
}

int vmm_save(vmm_vm_t *vm, const char *state_path, unsigned flags) { DISPATCH(vm, save, vm, state_path, flags); }
int vmm_pause(vmm_vm_t *vm, unsigned flags) { DISPATCH(vm, pause, vm, flags); }
int vmm_cont(vmm_vm_t *vm, unsigned flags) { DISPATCH(vm, cont, vm, flags); }
int vmm_shutdown(vmm_vm_t *vm, int timeout_ms, unsigned flags) { DISPATCH(vm, shutdown, vm, timeout_ms, flags); }
int vmm_kill(vmm_vm_t *vm, unsigned flags) { DISPATCH(vm, kill, vm, flags); }
int vmm_status(vmm_vm_t *vm, vmm_status_t *ret) { DISPATCH(vm, status, vm, ret); }
int vmm_stats(vmm_vm_t *vm, vmm_stats_t *ret) { DISPATCH(vm, stats, vm, ret); }
int vmm_console_path(vmm_vm_t *vm, char **ret) { DISPATCH(vm, console_path, vm, ret); }

int vmm_slot_start(const vmm_driver_t *d, const vmm_config_t *shape, unsigned flags, vmm_vm_t **ret) {
        if (!d->slot_start)
                return -EOPNOTSUPP;
        return d->slot_start(shape, flags, ret);
}

int vmm_slot_restore(vmm_vm_t *slot, const vmm_config_t *cfg, const char *state_path, unsigned flags) {
        DISPATCH(slot, slot_restore, slot, cfg, state_path, flags);
}

int vmm_agent_call(vmm_vm_t *vm, const char *request, int timeout_ms, char **ret_reply) {
        DISPATCH(vm, agent_call, vm, request, timeout_ms, ret_reply);
}

int vmm_balloon_set(vmm_vm_t *vm, uint64_t target_bytes) { DISPATCH(vm, balloon_set, vm, target_bytes); }
int vmm_balloon_get(vmm_vm_t *vm, uint64_t *ret_actual_bytes) { DISPATCH(vm, balloon_get, vm, ret_actual_bytes); }

int vmm_live_receive(const vmm_driver_t *d, const vmm_config_t *cfg, const char *host, const vmm_live_tls_t *tls,
                     unsigned flags, vmm_live_endpoint_t *ret_ep, vmm_vm_t **ret) {
        if (!d->live_receive)
                return -EOPNOTSUPP;
        return d->live_receive(cfg, host, tls, flags, ret_ep, ret);
}

int vmm_live_send(vmm_vm_t *vm, const vmm_live_endpoint_t *ep, const vmm_live_tls_t *tls, int timeout_ms,
                  vmm_live_stats_t *ret_stats) {
        DISPATCH(vm, live_send, vm, ep, tls, timeout_ms, ret_stats);
}

int vmm_live_finish(vmm_vm_t *vm, int timeout_ms) { DISPATCH(vm, live_finish, vm, timeout_ms); }

vmm_vm_t *vmm_vm_free(vmm_vm_t *vm) {
        if (vm && vm->driver->free)
                vm->driver->free(vm);
        return NULL;
}
