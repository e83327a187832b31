/* Unit tests for the lifecycle table. */
#include "model/lifecycle.h"
#include "base/util.h"
#include "tap.h"

#include <errno.h>

int main(void) {
        CHECK(lifecycle_check(VM_ACTION_BOOT, "stored", false) == 0);
        CHECK(lifecycle_check(VM_ACTION_ACTIVATE, "stored", true) == 0);
        CHECK(lifecycle_check(VM_ACTION_ACTIVATE, "active", true) == -EPERM);
        CHECK(lifecycle_check(VM_ACTION_ACTIVATE, "activating", true) == -EBUSY);
        CHECK(lifecycle_check(VM_ACTION_DEACTIVATE, "loading", false) == -EPERM);
        CHECK(lifecycle_check(VM_ACTION_DEACTIVATE, "active", false) == 0);
        CHECK(lifecycle_check(VM_ACTION_HIBERNATE, "loading", false) == 0);
        CHECK(lifecycle_check(VM_ACTION_RESUME, "suspended", false) == 0);
        CHECK(lifecycle_check(VM_ACTION_RESUME, "loading", false) == -EPERM);
        CHECK(lifecycle_check(VM_ACTION_DELETE, "active", false) == -EPERM);
        CHECK(lifecycle_check(VM_ACTION_DELETE, "stored", false) == 0);
        CHECK(lifecycle_check(VM_ACTION_BOOT, "no-such-state", false) == -EINVAL);
        CHECK(lifecycle_check((vm_action_t)99, "stored", false) == -EINVAL);
        CHECK(lifecycle_state_is_stable("stored"));
        CHECK(!lifecycle_state_is_stable("booting"));
        CHECK(lifecycle_state_on_rm("active"));
        CHECK(!lifecycle_state_on_rm("stored"));
        CHECK(lifecycle_rule_by_name("activate") == lifecycle_rule(VM_ACTION_ACTIVATE));
        CHECK(lifecycle_rule_by_name("fly") == NULL);
        const char *names[16];
        unsigned n = lifecycle_actions_for("active", true, names, 16);
        CHECK(n == 4); /* suspend, deactivate, stop, migrate-live */
        CHECK(n == 4 && streq(names[3], "migrate-live"));
        CHECK(lifecycle_check(VM_ACTION_MIGRATE_LIVE, "loading", false) == 0);
        CHECK(lifecycle_check(VM_ACTION_MIGRATE_LIVE, "suspended", false) == -EPERM);
        CHECK(lifecycle_check(VM_ACTION_MIGRATE_LIVE, "stored", true) == -EPERM);
        n = lifecycle_actions_for("activating", true, names, 16);
        CHECK(n == 0);
        /* every transit state named by the table is a known transitional state */
        for (unsigned i = 0; i < _VM_ACTION_MAX; i++) {
                const lifecycle_rule_t *rule = lifecycle_rule((vm_action_t)i);
                /* a synchronous action (its own route, one transaction) has none */
                CHECK(rule->sync ? !rule->transit : lifecycle_state_bit(rule->transit) == VM_STATE_TRANSIT);
                const char *done = lifecycle_rule((vm_action_t)i)->done;
                CHECK(!done || lifecycle_state_is_stable(done));
        }
        /* the marketplace's row: a registered machine can be edited, stored or deleted, only */
        n = lifecycle_actions_for("registered", LIFECYCLE_MARKET, names, 16);
        CHECK(n == 3 && streq(names[0], "delete") && streq(names[1], "edit") && streq(names[2], "store"));
        CHECK(lifecycle_check(VM_ACTION_BOOT, "registered", LIFECYCLE_MARKET) == -EPERM);
        CHECK(lifecycle_check(VM_ACTION_EDIT, "stored", LIFECYCLE_MARKET) == -EPERM);
        CHECK(lifecycle_check(VM_ACTION_STORE, "registered", 0) == -EPERM); /* not a buyer's machine */
        /* a buyer's stored machine migrates to another offer; a VM of the Nest does not */
        CHECK(lifecycle_check(VM_ACTION_MIGRATE, "stored", LIFECYCLE_MARKET) == 0);
        CHECK(lifecycle_check(VM_ACTION_MIGRATE, "stored", 0) == -EPERM);
        CHECK(lifecycle_check(VM_ACTION_MIGRATE, "migrating", LIFECYCLE_MARKET) == -EBUSY);
        CHECK(lifecycle_state_bit("registered") == VM_STATE_REGISTERED && lifecycle_state_is_stable("registered"));
        CHECK(!lifecycle_state_on_rm("registered"));
        return tap_finish();
}
