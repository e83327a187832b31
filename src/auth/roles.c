/* The permission model of DESIGN.md §10 as one table, so what each role may do reads in one
 * place and a test can walk it. */
#include "auth/roles.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "base/macro.h"

static const char *const role_names[_ROLE_MAX] = {
        [ROLE_BUYER] = "buyer",
        [ROLE_PROVIDER] = "provider",
        [ROLE_OPERATOR] = "operator",
        [ROLE_ADMIN] = "admin",
};

static const char *const perm_names[_PERM_MAX] = {
        [PERM_NONE] = "none",               [PERM_PUBLIC] = "public",
        [PERM_VM_READ] = "vm-read",         [PERM_VM_ACT] = "vm-act",
        [PERM_VM_CONSOLE] = "vm-console",   [PERM_RM_READ] = "rm-read",
        [PERM_RM_ACT] = "rm-act",           [PERM_OFFER_READ] = "offer-read",
        [PERM_OFFER_ACT] = "offer-act",     [PERM_SERVICE_READ] = "service-read",
        [PERM_SERVICE_ACT] = "service-act", [PERM_IMAGE_READ] = "image-read",
        [PERM_IMAGE_ACT] = "image-act",     [PERM_NEST_READ] = "nest-read",
        [PERM_NEST_WRITE] = "nest-write",   [PERM_USER_READ] = "user-read",
        [PERM_USER_ACT] = "user-act",       [PERM_ACCOUNT] = "account",
        [PERM_TOKEN] = "token",             [PERM_EVENT_READ] = "event-read",
        [PERM_METRICS_READ] = "metrics-read", [PERM_RM_ASSIGN] = "rm-assign",
        [PERM_MARKET_READ] = "market-read", [PERM_MARKET_ACT] = "market-act",
        [PERM_MONEY] = "money",             [PERM_NODE] = "node",
        [PERM_ORACLE] = "oracle",           [PERM_JOIN] = "join",
};

static const char *const owner_rule_names[_OWNER_MAX] = {
        [OWNER_NONE] = "none",
        [OWNER_VM] = "vm",
        [OWNER_RM] = "rm",
        [OWNER_SELF] = "self",
        [OWNER_OP] = "op",
        [OWNER_TOKEN] = "token",
};

#define BIT(p) (UINT64_C(1) << (p))
#define OWN (BIT(PERM_PUBLIC) | BIT(PERM_ACCOUNT) | BIT(PERM_TOKEN) | BIT(PERM_MARKET_READ))
_Static_assert(_PERM_MAX < 64, "grants[] holds one bit per permission");

/* §10, one sentence per role:
 *  admin     everything, users included;
 *  operator  every RM, VM, service and image, and hands RMs to providers; no users, no money
 *            (offers are read only);
 *  provider  their own RMs and offers; buyers' machines on them as read-only metadata
 *            (no actions, no consoles);
 *  buyer     their own VMs and account only;
 *  both of these read the list of images (what a machine can be made of; no image is anyone's).
 * PERM_NONE is nobody's; PERM_PUBLIC everybody's.
 * PERM_NODE is no user's: node-only routes take an RM's certificate, so that no token, not even
 * an admin's, can speak for an RM (issue 11: "the Oracle accepts a heartbeat only for the RM
 * its certificate names"). */
static const uint64_t grants[_ROLE_MAX] = {
        [ROLE_ADMIN] = (BIT(_PERM_MAX) - 1) & ~BIT(PERM_NODE) & ~BIT(PERM_ORACLE) & ~BIT(PERM_JOIN) & ~BIT(PERM_NONE),
        [ROLE_OPERATOR] = BIT(PERM_VM_READ) | BIT(PERM_VM_ACT) | BIT(PERM_VM_CONSOLE) | BIT(PERM_RM_READ) |
                          BIT(PERM_RM_ACT) | BIT(PERM_OFFER_READ) | BIT(PERM_SERVICE_READ) |
                          BIT(PERM_SERVICE_ACT) | BIT(PERM_IMAGE_READ) | BIT(PERM_IMAGE_ACT) |
                          BIT(PERM_NEST_READ) | BIT(PERM_NEST_WRITE) | BIT(PERM_EVENT_READ) |
                          BIT(PERM_METRICS_READ) | BIT(PERM_RM_ASSIGN) | OWN,
        [ROLE_PROVIDER] = BIT(PERM_RM_READ) | BIT(PERM_RM_ACT) | BIT(PERM_OFFER_READ) | BIT(PERM_OFFER_ACT) |
                          BIT(PERM_VM_READ) | BIT(PERM_IMAGE_READ) | OWN,
        [ROLE_BUYER] = BIT(PERM_VM_READ) | BIT(PERM_VM_ACT) | BIT(PERM_VM_CONSOLE) | BIT(PERM_IMAGE_READ) | OWN,
};

static int name_lookup(const char *const *names, size_t n, const char *name) {
        for (size_t i = 0; name && i < n; i++)
                if (names[i] && streq(names[i], name))
                        return (int)i;
        return -EINVAL;
}

const char *role_name(role_t r) { return (unsigned)r < _ROLE_MAX ? role_names[r] : NULL; }

int role_parse(const char *name, role_t *ret) {
        int i = name_lookup(role_names, _ROLE_MAX, name);
        if (i < 0)
                return i;
        *ret = (role_t)i;
        return 0;
}

bool role_within(role_t narrow, role_t wide) {
        return (unsigned)narrow < _ROLE_MAX && (unsigned)wide < _ROLE_MAX && narrow <= wide;
}

role_t role_narrowest(role_t a, role_t b) { return MIN(a, b); }

const char *perm_name(perm_t p) { return (unsigned)p < _PERM_MAX ? perm_names[p] : NULL; }

int perm_parse(const char *name, perm_t *ret) {
        int i = name_lookup(perm_names, _PERM_MAX, name);
        if (i < 0)
                return i;
        *ret = (perm_t)i;
        return 0;
}

bool role_allows(role_t r, perm_t p) {
        if ((unsigned)r >= _ROLE_MAX || (unsigned)p >= _PERM_MAX)
                return false;
        return (grants[r] & BIT(p)) != 0;
}

bool role_sees_all(role_t r) { return r == ROLE_ADMIN || r == ROLE_OPERATOR; }

const char *owner_rule_name(owner_rule_t o) { return (unsigned)o < _OWNER_MAX ? owner_rule_names[o] : NULL; }
