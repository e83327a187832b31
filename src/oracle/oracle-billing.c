/* Billing (issue 12): a loop that turns the recorded history of every market machine into
 * ledger rows as their periods end, and the account routes that read the ledger.
 *
 * Each tick (1 s, the shortest period) looks only at the machines whose history changed since
 * the last tick or whose running period has ended: the rest cost a comparison. Posting is
 * idempotent (the ledger is unique on machine, kind and period start), so a tick repeated
 * after a crash, or an Oracle that was down for days, charges every missed period once.
 * A buyer whose balance, less what accrues, reaches zero has its running machines suspended
 * (never deleted), each with an "unpaid-suspend" event; once money is available again they are
 * resumed. The loop also refreshes the market's prices each minute. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "oracle/oracle-internal.h"
#include "store/store-auth.h"
#include "store/store-market.h"

#define BILLING_TICK_MS 1000
#define PRICES_EVERY_MS (60 * 1000)
#define ACCOUNT_CHARGES_DEFAULT 100
#define ACCOUNT_CHARGES_MAX 10000

/* What the loop remembers of a machine between ticks. */
typedef struct due {
        int64_t machine;
        char buyer[64];
        int64_t next_ms;  /* the next end of a period that runs; INT64_MAX: none runs */
        billing_open_t open[_CHARGE_KIND_MAX];
} due_t;

typedef struct billing_loop {
        oracle_t *o;
        due_t *due;       /* sorted by machine */
        size_t n_due;
        int64_t seq;      /* the last span seen */
} billing_loop_t;

static const due_t *due_find(const billing_loop_t *b, int64_t machine) {
        size_t lo = 0, hi = b->n_due;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (b->due[mid].machine == machine)
                        return &b->due[mid];
                if (b->due[mid].machine < machine)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static bool json_ints_has(const json_t *arr, int64_t v) {
        size_t i;
        json_t *x;
        json_array_foreach(arr, i, x) if (json_integer_value(x) == v) return true;
        return false;
}

static int64_t next_end(const billing_open_t open[_CHARGE_KIND_MAX]) {
        int64_t next = INT64_MAX;
        for (int k = 0; k < _CHARGE_KIND_MAX; k++)
                if (open[k].open)
                        next = MIN(next, open[k].start_ms + open[k].period_s * 1000);
        return next;
}

/* Posts what has ended and rebuilds the loop's memory of the open machines. */
static void bill_tick(billing_loop_t *b, int64_t now) {
        oracle_t *o = b->o;
        int64_t seq = 0;
        json_t *changed = NULL;
        if (store_spans_last_seq(o->store, &seq) < 0)
                return;
        if (seq != b->seq && store_spans_changed(o->store, b->seq, &changed) < 0)
                return;
        billing_record_t *list = NULL;
        size_t n = 0;
        if (store_billing_open_list(o->store, NULL, &list, &n) < 0) {
                json_decref(changed);
                return;
        }
        due_t *next = xcalloc(n ? n : 1, sizeof *next);
        size_t m = 0;
        bool failed = false;
        for (size_t i = 0; i < n && !o->stopping; i++) {
                const due_t *old = due_find(b, list[i].machine);
                if (old && old->next_ms > now && !json_ints_has(changed, list[i].machine)) {
                        next[m++] = *old;
                        continue;
                }
                due_t d = { .machine = list[i].machine };
                SET(d.buyer, list[i].buyer);
                bool closed = false;
                if (oracle_market_bill(o, &list[i], now, true, d.open, NULL, &closed) < 0) {
                        failed = true; /* tried again next tick: posting twice is harmless */
                        d.next_ms = 0;
                } else {
                        d.next_ms = next_end(d.open);
                }
                if (!closed)
                        next[m++] = d;
        }
        free(list);
        json_decref(changed);
        free(b->due);
        b->due = next;
        b->n_due = m;
        if (!failed)
                b->seq = seq;
}

/* Starts action on every machine of buyer in state from (no op running), noting it. */
static void buyer_machines_act(oracle_t *o, const char *buyer, bool suspend) {
        json_t *unpaid = NULL;
        if (!suspend) {
                if (store_unpaid_list(o->store, buyer, &unpaid) < 0)
                        return;
                size_t i;
                json_t *u;
                json_array_foreach(unpaid, i, u) {
                        const char *name = json_string_value(json_object_get(u, "vm"));
                        vm_record_t vm = { 0 };
                        bool there = store_vm_get(o->store, name, &vm) == 0;
                        if (there && *vm.op_id) {
                                vm_record_clear(&vm);
                                continue; /* an operation runs: next tick */
                        }
                        if (there && streq(vm.state, "suspended")) {
                                json_t *op = NULL;
                                _cleanup_free_ char *msg = NULL;
                                op_request_t req = { .action = "resume" };
                                if (oracle_op_start(o, name, &req, &op, &msg) < 0) {
                                        log_warn("billing: cannot resume vm %s of %s: %s", name, buyer, msg);
                                        vm_record_clear(&vm);
                                        continue;
                                }
                                json_decref(op);
                                store_event_add(o->store, "unpaid-resume", name, NULL, vm.rm,
                                                "money is available again");
                        }
                        store_unpaid_remove(o->store, name);
                        vm_record_clear(&vm);
                }
                json_decref(unpaid);
                return;
        }
        vm_record_t *vms = NULL;
        size_t n = 0;
        if (store_vm_list(o->store, &vms, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                vm_record_t *vm = &vms[i];
                if (!vm->market.machine || !streq(vm->owner, buyer) || *vm->op_id ||
                    (!streq(vm->state, "loading") && !streq(vm->state, "active")))
                        continue;
                json_t *op = NULL;
                _cleanup_free_ char *msg = NULL;
                op_request_t req = { .action = "suspend" };
                if (oracle_op_start(o, vm->name, &req, &op, &msg) < 0) {
                        log_warn("billing: cannot suspend vm %s of %s: %s", vm->name, buyer, msg);
                        continue;
                }
                json_decref(op);
                store_unpaid_add(o->store, vm->name, buyer, time_wall_ms());
                store_event_add(o->store, "unpaid-suspend", vm->name, NULL, vm->rm,
                                "the buyer's balance is used up: suspended until a deposit");
                log_warn("billing: %s has no money left: vm %s suspended", buyer, vm->name);
        }
        store_vm_list_free(vms, n);
}

/* Each buyer with something running or suspended for want of money: suspended when its money
 * is gone, resumed when it is back. A buyer's balance is read only for those. */
static void money_tick(billing_loop_t *b, int64_t now) {
        oracle_t *o = b->o;
        /* buyer -> {"accrued": what its open periods have accrued, "running", "unpaid"} */
        json_t *buyers = json_object();
        json_t *unpaid = NULL;
        if (store_unpaid_list(o->store, NULL, &unpaid) >= 0) {
                size_t i;
                json_t *u;
                json_array_foreach(unpaid, i, u) json_object_set_new(
                        buyers, json_string_value(json_object_get(u, "buyer")),
                        json_pack("{s:I,s:b,s:b}", "accrued", (json_int_t)0, "running", 0, "unpaid", 1));
        }
        json_decref(unpaid);
        for (size_t i = 0; i < b->n_due; i++) {
                const due_t *d = &b->due[i];
                if (!*d->buyer)
                        continue;
                json_t *cur = json_object_get(buyers, d->buyer);
                bool running = d->open[CHARGE_RUNNING].open;
                if (!cur && !running)
                        continue; /* only storing: nothing to suspend */
                if (!cur) {
                        cur = json_pack("{s:I,s:b,s:b}", "accrued", (json_int_t)0, "running", 0, "unpaid", 0);
                        json_object_set_new(buyers, d->buyer, cur);
                }
                int64_t accrued = 0;
                for (int k = 0; k < _CHARGE_KIND_MAX; k++)
                        accrued += billing_open_accrued(&d->open[k], now);
                json_object_set_new(cur, "accrued", json_integer(json_integer_value(json_object_get(cur, "accrued")) + accrued));
                if (running)
                        json_object_set_new(cur, "running", json_true());
        }
        const char *buyer;
        json_t *info;
        json_object_foreach(buyers, buyer, info) {
                int64_t balance = 0;
                if (store_balance_get(o->store, buyer, &balance) < 0)
                        continue;
                int64_t available = balance - json_integer_value(json_object_get(info, "accrued"));
                if (available <= 0 && json_is_true(json_object_get(info, "running")))
                        buyer_machines_act(o, buyer, true);
                else if (available > 0 && json_is_true(json_object_get(info, "unpaid")))
                        buyer_machines_act(o, buyer, false);
        }
        json_decref(buyers);
}

void *oracle_billing_thread(void *arg) {
        billing_loop_t b = { .o = arg };
        oracle_t *o = b.o;
        int64_t prices_at = 0;
        while (!o->stopping) {
                int64_t now = time_wall_ms();
                bill_tick(&b, now);
                money_tick(&b, now);
                if (time_now_ms() - prices_at >= PRICES_EVERY_MS) {
                        oracle_market_prices_update(o);
                        prices_at = time_now_ms();
                }
                for (int i = 0; i < BILLING_TICK_MS / 100 && !o->stopping; i++)
                        time_sleep_ms(100);
        }
        free(b.due);
        return NULL;
}

/* ---- accounts ---- */

static void account_reply(oracle_t *o, const http_request_t *req, const char *name, http_reply_t *reply) {
        user_record_t u = { 0 };
        if (store_user_get(o->store, name, &u) < 0) {
                http_reply_error(reply, 404, "not_found", "no user \"%s\"", name);
                return;
        }
        long limit = ACCOUNT_CHARGES_DEFAULT;
        const char *l = http_request_query(req, "limit");
        if (l) {
                char *end = NULL;
                limit = strtol(l, &end, 10);
                if (!*l || *end || limit < 0 || limit > ACCOUNT_CHARGES_MAX) {
                        http_reply_error(reply, 400, "invalid", "limit is a count from 0 to %d", ACCOUNT_CHARGES_MAX);
                        return;
                }
        }
        const char *vm = http_request_query(req, "vm");
        if (vm && !name_is_valid(vm)) {
                http_reply_error(reply, 400, "invalid", "vm must be a VM name");
                return;
        }
        bool provider = streq(u.role, "provider");
        int64_t balance = 0, available = 0, rate = 0, now = time_wall_ms();
        json_t *charges = NULL, *per_vm = NULL, *revenue = NULL;
        if (store_balance_get(o->store, name, &balance) < 0 || oracle_market_available(o, name, now, &available, &rate) < 0 ||
            store_charges_list(o->store, provider ? NULL : name, provider ? name : NULL, vm, (int)limit, &charges) < 0 ||
            store_charges_by_vm(o->store, provider ? NULL : name, provider ? name : NULL, &per_vm) < 0 ||
            (provider && store_charges_revenue(o->store, name, &revenue) < 0)) {
                json_decref(charges);
                json_decref(per_vm);
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        /* at the current rates, when the money available runs out (null: nothing is charging) */
        json_t *runs_out = rate <= 0 ? json_null()
                                     : json_integer(available <= 0 ? 0 : (json_int_t)((__int128)available * 3600 / rate));
        json_t *unpaid = NULL;
        if (store_unpaid_list(o->store, name, &unpaid) < 0)
                unpaid = json_array();
        http_reply_json(reply, 200,
                        json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:o*}", "user", name, "role", u.role, "balance",
                                  (json_int_t)balance, "available", (json_int_t)available, "rate_per_hour",
                                  (json_int_t)rate, "runs_out_s", runs_out, "charges", charges, "per_vm", per_vm,
                                  "unpaid_suspended", unpaid, "revenue", revenue));
}

/* GET /v1/accounts/:name: one's own; an admin's any (OWNER_SELF). */
static void h_account(const http_request_t *req, http_reply_t *reply) {
        account_reply(req->userdata, req, req->params[0], reply);
}

/* GET /v1/account: the caller's own. */
static void h_account_self(const http_request_t *req, http_reply_t *reply) {
        if (!req->principal) {
                http_reply_error(reply, 400, "invalid", "no user: log in");
                return;
        }
        account_reply(req->userdata, req, oracle_principal_name(req), reply);
}

/* POST /v1/accounts/:name/deposit {amount}: the admin's. */
static void h_deposit(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *name = req->params[0];
        const json_t *a = json_object_get(req->body, "amount");
        if (!json_is_integer(a) || json_integer_value(a) <= 0 || json_integer_value(a) > MONEY_INPUT_MAX) {
                http_reply_error(reply, 400, "invalid", "amount is a positive amount in micro-units, at most %lld",
                                 (long long)MONEY_INPUT_MAX);
                return;
        }
        int64_t amount = json_integer_value(a), balance = 0;
        if (store_tx_begin(o->store) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        int r = store_deposit(o->store, name, amount, oracle_principal_name(req), &balance);
        if (r >= 0) {
                char text[MONEY_TEXT_MAX], bal[MONEY_TEXT_MAX];
                money_format(amount, text);
                money_format(balance, bal);
                _cleanup_free_ char *why = xasprintf("%s into the account of %s (balance %s)", text, name, bal);
                r = store_event_add(o->store, "deposit", NULL, NULL, NULL, why);
        }
        if (r >= 0)
                r = store_tx_commit(o->store);
        else
                store_tx_rollback(o->store);
        if (r < 0) {
                http_reply_errno(reply, r, r == -ENOENT ? "no user \"%s\"" : "cannot deposit into the account of %s",
                                 name);
                return;
        }
        http_reply_json(reply, 200, json_pack("{s:s,s:I}", "user", name, "balance", (json_int_t)balance));
}

const http_route_t oracle_billing_routes[] = {
        { "GET", "/v1/account", h_account_self, PERM_ACCOUNT, OWNER_NONE },
        { "GET", "/v1/accounts/:name", h_account, PERM_ACCOUNT, OWNER_SELF },
        { "POST", "/v1/accounts/:name/deposit", h_deposit, PERM_MONEY, OWNER_NONE },
        { NULL },
};
