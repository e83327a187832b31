/* The VM lifecycle: ONE table of legal transitions (Virtuoso's statusrelations). The Oracle's
 * API validates every request against it and the UI derives its action buttons from it.
 * Pure: no I/O, no allocation. */
#pragma once

#include <stdbool.h>

typedef enum vm_action {
        VM_ACTION_BOOT,
        VM_ACTION_SUSPEND,
        VM_ACTION_RESUME,
        VM_ACTION_HIBERNATE,
        VM_ACTION_ACTIVATE,
        VM_ACTION_DEACTIVATE,
        VM_ACTION_STOP,
        VM_ACTION_DELETE,
        VM_ACTION_MIGRATE,
        VM_ACTION_MIGRATE_LIVE, /* a running VM, to an RM of the same role */
        VM_ACTION_EDIT,         /* a registered machine's size and bid (marketplace) */
        VM_ACTION_STORE,        /* a registered machine, at an offer: its bundle is made (marketplace) */
        _VM_ACTION_MAX,
} vm_action_t;

typedef struct lifecycle_rule {
        vm_action_t action;
        const char *name;          /* API and CLI verb */
        unsigned from;             /* bitmask of VM_STATE_* bits the action starts from */
        const char *transit;       /* state while the operation runs */
        const char *done;          /* state after success; NULL = decided by the operation */
        bool needs_prebooted;      /* only from a stored VM that has saved state */
        unsigned market_from;      /* states it also starts from for a buyer's machine (marketplace) */
        bool sync;                 /* done by its own route in one transaction, not by an operation */
} lifecycle_rule_t;

/* Stable states (contract names from DESIGN.md §5) as bits for the table. */
enum {
        VM_STATE_STORED = 1u << 0,
        VM_STATE_LOADING = 1u << 1,
        VM_STATE_ACTIVE = 1u << 2,
        VM_STATE_SUSPENDED = 1u << 3,
        VM_STATE_FAILED = 1u << 4,
        VM_STATE_TRANSIT = 1u << 5, /* any transitional state */
        VM_STATE_REGISTERED = 1u << 6, /* a buyer's placeholder: in the store only, on no RM */
};

/* What a check knows of the VM besides its state. */
enum {
        LIFECYCLE_PREBOOTED = 1u << 0, /* it has saved state to resume from */
        LIFECYCLE_MARKET = 1u << 1,    /* it is a buyer's machine (vm register) */
};

/* The bit of a state name; VM_STATE_TRANSIT for transitional names, 0 when unknown. */
unsigned lifecycle_state_bit(const char *state);
bool lifecycle_state_is_stable(const char *state);
/* Is this a state in which the VM runs on an RM (a QEMU process may exist)? */
bool lifecycle_state_on_rm(const char *state);

const lifecycle_rule_t *lifecycle_rule(vm_action_t action);
const lifecycle_rule_t *lifecycle_rule_by_name(const char *name);

/* 0 if action is legal from state for a VM with flags (LIFECYCLE_*), -EPERM if illegal,
 * -EBUSY if an operation runs. */
int lifecycle_check(vm_action_t action, const char *state, unsigned flags);

/* Fills names (up to max) with the actions legal from state; returns how many. */
unsigned lifecycle_actions_for(const char *state, unsigned flags, const char **names, unsigned max);
