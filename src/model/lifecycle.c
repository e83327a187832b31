/* The lifecycle table. Keep in sync with the state names in DESIGN.md §5 and with the
 * operation runners in src/oracle/ops-*.c, which implement each row. */
#include "model/lifecycle.h"

#include <errno.h>
#include <string.h>

#define STABLE_ON_RM (VM_STATE_LOADING | VM_STATE_ACTIVE | VM_STATE_SUSPENDED)

static const lifecycle_rule_t rules[_VM_ACTION_MAX] = {
        [VM_ACTION_BOOT] = { VM_ACTION_BOOT, "boot", VM_STATE_STORED | VM_STATE_FAILED, "booting", "loading" },
        [VM_ACTION_SUSPEND] = { VM_ACTION_SUSPEND, "suspend", VM_STATE_LOADING | VM_STATE_ACTIVE, "suspending",
                                "suspended" },
        /* resume ends in loading or active, by the role of the RM the VM is on */
        [VM_ACTION_RESUME] = { VM_ACTION_RESUME, "resume", VM_STATE_SUSPENDED, "resuming", NULL },
        [VM_ACTION_HIBERNATE] = { VM_ACTION_HIBERNATE, "hibernate", VM_STATE_LOADING | VM_STATE_SUSPENDED,
                                  "hibernating", "stored" },
        [VM_ACTION_ACTIVATE] = { VM_ACTION_ACTIVATE, "activate",
                                 VM_STATE_STORED | VM_STATE_LOADING | VM_STATE_SUSPENDED | VM_STATE_FAILED,
                                 "activating", "active" },
        [VM_ACTION_DEACTIVATE] = { VM_ACTION_DEACTIVATE, "deactivate", VM_STATE_ACTIVE, "deactivating", "stored" },
        [VM_ACTION_STOP] = { VM_ACTION_STOP, "stop", STABLE_ON_RM | VM_STATE_FAILED, "stopping", "stored" },
        [VM_ACTION_DELETE] = { VM_ACTION_DELETE, "delete", VM_STATE_STORED | VM_STATE_FAILED, "deleting", NULL,
                               .market_from = VM_STATE_REGISTERED },
        /* a buyer's stored machine migrates too: to another offer, the report's economic migration */
        [VM_ACTION_MIGRATE] = { VM_ACTION_MIGRATE, "migrate", VM_STATE_SUSPENDED, "migrating", NULL,
                                .market_from = VM_STATE_STORED },
        /* keeps running: loading on a chamber, active on a production RM */
        [VM_ACTION_MIGRATE_LIVE] = { VM_ACTION_MIGRATE_LIVE, "migrate-live", VM_STATE_LOADING | VM_STATE_ACTIVE,
                                     "migrating", NULL },
        [VM_ACTION_EDIT] = { VM_ACTION_EDIT, "edit", 0, NULL, "registered", .market_from = VM_STATE_REGISTERED,
                             .sync = true },
        [VM_ACTION_STORE] = { VM_ACTION_STORE, "store", 0, NULL, "stored", .market_from = VM_STATE_REGISTERED,
                              .sync = true },
};

static const struct {
        const char *name;
        unsigned bit;
} states[] = {
        { "stored", VM_STATE_STORED },       { "loading", VM_STATE_LOADING },
        { "active", VM_STATE_ACTIVE },       { "suspended", VM_STATE_SUSPENDED },
        { "failed", VM_STATE_FAILED },       { "booting", VM_STATE_TRANSIT },
        { "suspending", VM_STATE_TRANSIT },  { "resuming", VM_STATE_TRANSIT },
        { "hibernating", VM_STATE_TRANSIT }, { "activating", VM_STATE_TRANSIT },
        { "deactivating", VM_STATE_TRANSIT }, { "draining", VM_STATE_TRANSIT },
        { "stopping", VM_STATE_TRANSIT },    { "deleting", VM_STATE_TRANSIT },
        { "migrating", VM_STATE_TRANSIT },   { "registered", VM_STATE_REGISTERED },
};

unsigned lifecycle_state_bit(const char *state) {
        for (size_t i = 0; state && i < sizeof states / sizeof states[0]; i++)
                if (strcmp(states[i].name, state) == 0)
                        return states[i].bit;
        return 0;
}

bool lifecycle_state_is_stable(const char *state) {
        unsigned b = lifecycle_state_bit(state);
        return b && b != VM_STATE_TRANSIT;
}

bool lifecycle_state_on_rm(const char *state) {
        unsigned b = lifecycle_state_bit(state);
        return (b & STABLE_ON_RM) || b == VM_STATE_TRANSIT;
}

const lifecycle_rule_t *lifecycle_rule(vm_action_t action) {
        return action >= 0 && action < _VM_ACTION_MAX ? &rules[action] : NULL;
}

const lifecycle_rule_t *lifecycle_rule_by_name(const char *name) {
        for (unsigned i = 0; name && i < _VM_ACTION_MAX; i++)
                if (strcmp(rules[i].name, name) == 0)
                        return &rules[i];
        return NULL;
}

int lifecycle_check(vm_action_t action, const char *state, unsigned flags) {
        const lifecycle_rule_t *r = lifecycle_rule(action);
        unsigned bit = lifecycle_state_bit(state);
        if (!r || !bit)
                return -EINVAL;
        if (bit == VM_STATE_TRANSIT)
                return -EBUSY;
        unsigned from = r->from | (flags & LIFECYCLE_MARKET ? r->market_from : 0);
        if (!(from & bit))
                return -EPERM;
        if (r->needs_prebooted && !(flags & LIFECYCLE_PREBOOTED))
                return -EPERM;
        return 0;
}

unsigned lifecycle_actions_for(const char *state, unsigned flags, const char **names, unsigned max) {
        unsigned n = 0;
        for (unsigned i = 0; i < _VM_ACTION_MAX && n < max; i++)
                if (lifecycle_check((vm_action_t)i, state, flags) == 0)
                        names[n++] = rules[i].name;
        return n;
}
