/* The marketplace's rules as the operation engine and the API apply them (issue 12), below
 * the engine: what an offer sells a machine for and whether it has room, where a buyer's
 * machine may run, the terms a migration carries from its intent to its commit, and the
 * charges of a machine computed from its recorded history (market/billing.c) — posted to the
 * ledger by the billing loop, or only added up for a buyer's available money. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "oracle/oracle-internal.h"
#include "store/store-market.h"

static market_config_t vm_config(const vm_record_t *vm) {
        return (market_config_t){ .memory_mib = vm->memory_mib, .vcpus = vm->vcpus, .disk_gib = vm->market.disk_gib };
}

int oracle_market_quote(oracle_t *o, const char *rm, const vm_record_t *vm, offer_record_t *ret_offer,
                        market_terms_t *ret_terms, char **ret_msg) {
        offer_record_t offer = { 0 };
        rm_record_t r = { 0 };
        if (store_rm_get(o->store, rm, &r) < 0 || store_offer_get(o->store, rm, &offer) < 0) {
                *ret_msg = xasprintf("RM \"%s\" has no offer", rm);
                return -ENOENT;
        }
        if (!*r.provider || !streq(r.provider, offer.provider)) {
                *ret_msg = xasprintf("the offer at RM \"%s\" has no provider any more", rm);
                return -ENOENT;
        }
        if (!streq(r.state, "up")) {
                *ret_msg = xasprintf("RM \"%s\" of provider \"%s\" is down", rm, r.provider);
                return -EAGAIN;
        }
        market_config_t used = { 0 }, want = vm_config(vm);
        if (store_offer_used(o->store, rm, &used) < 0) {
                *ret_msg = xstrdup("the store is unavailable");
                return -EIO;
        }
        /* the hard limit of the report's footnote 15: what is stored at or runs on an offer
         * never adds up to more than it sells */
        const char *full = used.memory_mib + want.memory_mib > offer.offer.memory_mib ? "memory"
                           : used.vcpus + want.vcpus > offer.offer.vcpus             ? "vCPUs"
                           : used.disk_gib + want.disk_gib > offer.offer.disk_gib    ? "disk"
                                                                                     : NULL;
        if (full) {
                *ret_msg = xasprintf("the offer at RM \"%s\" has not enough %s free for vm \"%s\" (%lld MiB, %lld "
                                     "vCPUs, %lld GiB; free %lld MiB, %lld vCPUs, %lld GiB)",
                                     rm, full, vm->name, (long long)want.memory_mib, (long long)want.vcpus,
                                     (long long)want.disk_gib, (long long)(offer.offer.memory_mib - used.memory_mib),
                                     (long long)(offer.offer.vcpus - used.vcpus),
                                     (long long)(offer.offer.disk_gib - used.disk_gib));
                return -EXFULL;
        }
        market_price(&offer.offer, &want, ret_terms);
        if (ret_offer)
                *ret_offer = offer;
        return 0;
}

int oracle_market_placement(const vm_record_t *vm, const char *wanted, const char **ret_rm, char **ret_msg) {
        if (!vm->market.machine) {
                *ret_rm = wanted;
                return 0;
        }
        if (!*vm->market.offer) {
                *ret_msg = xasprintf("vm \"%s\" is registered only: store it at an offer first (vm offers, vm store)",
                                     vm->name);
                return -EPERM;
        }
        if (wanted && !streq(wanted, vm->market.offer)) {
                *ret_msg = xasprintf("vm \"%s\" runs only on RM \"%s\", the offer it is stored at (migrate it to move "
                                     "it)",
                                     vm->name, vm->market.offer);
                return -EPERM;
        }
        *ret_rm = vm->market.offer;
        return 0;
}

int oracle_market_migrate_intent(oracle_t *o, vm_record_t *vm, const char *rm, json_t *args, char **ret_msg) {
        if (!vm->market.machine)
                return 0;
        if (streq(rm, vm->market.offer)) {
                *ret_msg = xasprintf("vm \"%s\" is stored at RM \"%s\" already", vm->name, rm);
                return -EPERM;
        }
        offer_record_t offer = { 0 };
        market_terms_t terms = { 0 };
        int r = oracle_market_quote(o, rm, vm, &offer, &terms, ret_msg);
        if (r < 0)
                return r;
        /* the destination's room is held from now (offer_next counts in its use) until the
         * commit moves the machine there or the rollback puts the row back as it was */
        SET(vm->market.offer_next, rm);
        json_object_set_new(args, "terms", market_terms_to_json(&terms));
        json_object_set_new(args, "provider", json_string(offer.provider));
        return 0;
}

void oracle_market_migrate_commit(const op_record_t *op, vm_record_t *vm) {
        const json_t *terms = json_object_get(op->args, "terms");
        const char *provider = json_string_value(json_object_get(op->args, "provider"));
        const char *rm = json_string_value(json_object_get(op->args, "rm"));
        if (!vm->market.machine || !terms || !provider || !rm)
                return;
        market_terms_from_json(terms, &vm->market.terms);
        SET(vm->market.offer, rm);
        SET(vm->market.provider, provider);
        SET(vm->market.offer_next, "");
}

void oracle_market_migrated(oracle_t *o, const op_record_t *op, const vm_record_t *vm) {
        vm_record_t prev = { 0 };
        if (!vm->market.machine || vm_record_from_json(op->prev, &prev) < 0)
                return;
        char run[MONEY_TEXT_MAX], sto[MONEY_TEXT_MAX], rp[DURATION_TEXT_MAX], sp[DURATION_TEXT_MAX];
        money_format(vm->market.terms.running_price, run);
        money_format(vm->market.terms.storage_price, sto);
        duration_format(vm->market.terms.running_period_s, rp);
        duration_format(vm->market.terms.storage_period_s, sp);
        _cleanup_free_ char *why = xasprintf("from RM %s of %s to RM %s of %s: running %s per %s, storage %s per %s "
                                             "from now; %s's charges closed at the switch",
                                             prev.market.offer, prev.market.provider, vm->market.offer,
                                             vm->market.provider, run, rp, sto, sp, prev.market.provider);
        store_event_add(o->store, streq(prev.market.provider, vm->market.provider) ? "offer-migration"
                                                                                   : "provider-migration",
                        vm->name, NULL, vm->market.offer, why);
        vm_record_clear(&prev);
}

/* The charge of kind for machine b, as a ledger row. */
static void charge_row(const billing_record_t *b, const billing_charge_t *c, int64_t now_ms, charge_record_t *ret) {
        *ret = (charge_record_t){ .machine = b->machine, .start_ms = c->start_ms, .end_ms = c->end_ms,
                                  .amount = c->amount, .posted_ms = now_ms };
        SET(ret->vm, b->vm);
        SET(ret->buyer, b->buyer);
        SET(ret->provider, c->provider);
        SET(ret->offer, c->offer);
        SET(ret->kind, charge_kind_name(c->kind));
}

/* Posts one charge and its event in one transaction: 1 posted, 0 there already. */
static int charge_post(oracle_t *o, const charge_record_t *c) {
        int r = store_tx_begin(o->store);
        if (r < 0)
                return r;
        r = store_charge_post(o->store, c);
        if (r == 1) {
                char amount[MONEY_TEXT_MAX];
                money_format(c->amount, amount);
                _cleanup_free_ char *why = xasprintf("%s %s from %s to %s, %.3f s from %lld, provider %s", c->kind,
                                                     amount, c->buyer, c->provider,
                                                     (double)(c->end_ms - c->start_ms) / 1000.0,
                                                     (long long)c->start_ms, c->provider);
                int k = store_event_add(o->store, "charge", c->vm, NULL, c->offer, why);
                if (k < 0)
                        r = k;
        }
        if (r < 0) {
                store_tx_rollback(o->store);
                return r;
        }
        int k = store_tx_commit(o->store);
        return k < 0 ? k : r;
}

int oracle_market_bill(oracle_t *o, const billing_record_t *b, int64_t now_ms, bool post,
                       billing_open_t open[_CHARGE_KIND_MAX], int64_t *ret_unposted, bool *ret_closed) {
        billing_span_t *spans = NULL;
        size_t n = 0;
        int r = store_spans_get(o->store, b->machine, &spans, &n);
        if (r < 0)
                return r;
        billing_charge_t *charges = NULL;
        size_t nc = 0;
        r = billing_compute(spans, n, now_ms, b->posted_until_ms, &charges, &nc, open);
        /* a machine running on an RM is charged only up to when the RM was last heard (a second
         * ago at most while it heartbeats): if the RM turns out down, its failure starts there
         * (rm_declare_down backdates it) and no period of the silence was ever posted */
        if (r >= 0 && o->liveness && n > 0 && open[CHARGE_RUNNING].open && *spans[n - 1].offer) {
                int64_t silent = oracle_liveness_heard_ago_ms(o->liveness, spans[n - 1].offer, time_now_ms());
                if (silent > 0) {
                        free(charges);
                        charges = NULL;
                        nc = 0;
                        /* the charges up to then; open[] stays what runs now, so that what
                         * accrues and when billing looks again follow the real time */
                        billing_open_t then[_CHARGE_KIND_MAX];
                        r = billing_compute(spans, n, now_ms - silent, b->posted_until_ms, &charges, &nc, then);
                }
        }
        bool deleted = n > 0 && streq(spans[n - 1].state, "deleted");
        free(spans);
        if (r < 0) {
                log_error("billing: the history of vm %s (machine %lld) is not in order", b->vm, (long long)b->machine);
                return r;
        }
        int64_t unposted = 0, until = b->posted_until_ms;
        /* one transaction for the machine's charges and its progress: one commit (one fsync) per
         * machine billed, not one per charge and another for the progress */
        bool tx = post && nc > 0 && store_tx_begin(o->store) >= 0;
        for (size_t i = 0; i < nc && r >= 0; i++) {
                if (!post) {
                        unposted += charges[i].amount;
                        continue;
                }
                charge_record_t c;
                charge_row(b, &charges[i], now_ms, &c);
                r = charge_post(o, &c);
                if (r >= 0)
                        until = MAX(until, charges[i].end_ms);
        }
        free(charges);
        bool closed = deleted && !open[CHARGE_STORAGE].open && !open[CHARGE_RUNNING].open;
        if (r >= 0 && post && (until != b->posted_until_ms || closed))
                r = store_billing_progress(o->store, b->machine, until, closed);
        if (tx && r >= 0)
                r = store_tx_commit(o->store);
        else if (tx)
                store_tx_rollback(o->store);
        if (ret_unposted)
                *ret_unposted = unposted;
        if (ret_closed)
                *ret_closed = closed;
        return r < 0 ? r : 0;
}

int oracle_market_available(oracle_t *o, const char *buyer, int64_t now_ms, int64_t *ret_available,
                            int64_t *ret_rate_per_hour) {
        int64_t balance = 0;
        int r = store_balance_get(o->store, buyer, &balance);
        if (r < 0)
                return r;
        billing_record_t *list = NULL;
        size_t n = 0;
        r = store_billing_open_list(o->store, buyer, &list, &n);
        if (r < 0)
                return r;
        int64_t owed = 0, rate = 0;
        for (size_t i = 0; i < n; i++) {
                billing_open_t open[_CHARGE_KIND_MAX] = { 0 };
                int64_t unposted = 0;
                if (oracle_market_bill(o, &list[i], now_ms, false, open, &unposted, NULL) < 0)
                        continue;
                owed += unposted;
                for (int k = 0; k < _CHARGE_KIND_MAX; k++)
                        if (open[k].open) {
                                owed += billing_open_accrued(&open[k], now_ms);
                                rate += market_price_per(open[k].price, open[k].period_s, 3600);
                        }
        }
        free(list);
        *ret_available = balance - owed;
        if (ret_rate_per_hour)
                *ret_rate_per_hour = rate;
        return 0;
}

int oracle_market_can_run(oracle_t *o, const vm_record_t *vm, char **ret_msg) {
        if (!vm->market.machine || !*vm->owner)
                return 0;
        int64_t available = 0;
        if (oracle_market_available(o, vm->owner, time_wall_ms(), &available, NULL) < 0)
                return 0; /* a buyer deleted meanwhile, or a store hiccup: billing decides later */
        if (available > 0)
                return 0;
        char text[MONEY_TEXT_MAX];
        money_format(available, text);
        *ret_msg = xasprintf("the account of %s has %s available: vm \"%s\" cannot run until a deposit", vm->owner,
                             text, vm->name);
        return -EDQUOT;
}
