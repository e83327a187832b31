/* Roles, permissions and owner rules of DESIGN.md §10: who may do what. Pure functions over
 * small enums, no state; the route table (later) names one permission and one owner rule per
 * route and the HTTP layer asks role_allows() before any handler runs. */
#pragma once

#include <stdbool.h>

/* Ordered from least to most: a larger value is a wider role. Keep in sync with role_names[]
 * in roles.c. */
typedef enum role {
        ROLE_BUYER,
        ROLE_PROVIDER,
        ROLE_OPERATOR,
        ROLE_ADMIN,
        _ROLE_MAX,
} role_t;

/* What a route needs. Reads and actions are apart, so a provider can read the metadata of a
 * buyer's machine on its RM without acting on it. Keep in sync with perm_names[] and the
 * grants[] table in roles.c. */
typedef enum perm {
        PERM_NONE,              /* none named: a route left without a permission, refused to all */
        PERM_PUBLIC,            /* anyone, without a token: health, login, signup */
        PERM_VM_READ,           /* list/show VMs, their ops and metadata */
        PERM_VM_ACT,            /* create, activate, hibernate, migrate, delete */
        PERM_VM_CONSOLE,        /* serial console of a VM */
        PERM_RM_READ,
        PERM_RM_ACT,            /* drain, assign, join tokens */
        PERM_OFFER_READ,
        PERM_OFFER_ACT,         /* set and withdraw offers (marketplace, §11) */
        PERM_SERVICE_READ,
        PERM_SERVICE_ACT,
        PERM_IMAGE_READ,
        PERM_IMAGE_ACT,         /* upload, import, delete images */
        PERM_NEST_READ,         /* the Nest's chunk and manifest routes */
        PERM_NEST_WRITE,
        PERM_USER_READ,         /* other users: list, show */
        PERM_USER_ACT,          /* other users: create, delete, passwd, role */
        PERM_ACCOUNT,           /* one's own account: whoami, own password */
        PERM_TOKEN,             /* one's own tokens: create, list, revoke */
        PERM_EVENT_READ,
        PERM_METRICS_READ,
        PERM_RM_ASSIGN,         /* hand an RM to a provider (operators) */
        PERM_MARKET_READ,       /* the market: suggested configurations, average prices, settings */
        PERM_MARKET_ACT,        /* the market's settings: suggested configurations, the registration fee */
        PERM_MONEY,             /* deposits into any account */
        PERM_NODE,              /* node-only routes (heartbeats, op reports): RM certificates, no user */
        PERM_ORACLE,            /* a node's routes only the Oracle's certificate may call (commands) */
        PERM_JOIN,              /* the node channel's enrolment (a join token, no certificate yet): no user */
        _PERM_MAX,
} perm_t;

/* Whose resource a route touches, resolved by the route table against the principal: roles
 * that see everything (role_sees_all) skip the check; the others must own the resource, or a
 * 404 hides it. */
typedef enum owner_rule {
        OWNER_NONE,             /* no single resource (lists are filtered by the handler) */
        OWNER_VM,               /* the VM's buyer; for reads also the provider of the RM it is on */
        OWNER_RM,               /* the RM's provider */
        OWNER_SELF,             /* the user named in the path is the principal (or it may act on users) */
        OWNER_OP,               /* the operation's VM, as OWNER_VM */
        OWNER_TOKEN,            /* the token whose id is in the path is the principal's (or it may act on users) */
        _OWNER_MAX,
} owner_rule_t;

/* "admin" ... for a role, NULL for a value out of range. */
const char *role_name(role_t r);
/* The role called name into *ret: 0, or -EINVAL for anything else (NULL included). */
int role_parse(const char *name, role_t *ret);
/* Is narrow no wider than wide (a token's role against its user's)? */
bool role_within(role_t narrow, role_t wide);
/* The narrower of two roles: a token's effective role. */
role_t role_narrowest(role_t a, role_t b);

const char *perm_name(perm_t p);
int perm_parse(const char *name, perm_t *ret);
/* Does role r hold permission p (§10)? False for values out of range. */
bool role_allows(role_t r, perm_t p);
/* Does role r see every owner's resources (admin, operator), so owner rules do not apply? */
bool role_sees_all(role_t r);

const char *owner_rule_name(owner_rule_t o);
