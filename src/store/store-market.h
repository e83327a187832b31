/* The marketplace in the store (issue 12, DESIGN.md §11): providers' offers, the suggested
 * configurations and the market's price history, settings (the registration fee), the state
 * history of buyers' machines (spans) and the ledger (charges, balances, deposits).
 * The spans are written by the store itself, in the transaction of every change of a market
 * machine's row (store_vm_insert/update/delete), so no caller can change a machine's state
 * without its history knowing. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "market/billing.h"
#include "market/market.h"
#include "store/store.h"

/* ---- a VM's market part as JSON (in vm.json of op records and in the API) ---- */
/* NULL when m is not a market machine (machine 0). */
json_t *vm_market_to_json(const vm_market_t *m);
/* Reads what vm_market_to_json wrote (anything else: a zeroed m). */
void vm_market_from_json(const json_t *j, vm_market_t *ret);
json_t *market_terms_to_json(const market_terms_t *t);
void market_terms_from_json(const json_t *j, market_terms_t *ret);

/* ---- offers ---- */
typedef struct offer_record {
        char rm[64];
        char provider[64];
        market_offer_t offer;
        int64_t updated_ms;
} offer_record_t;

int store_offer_get(store_t *s, const char *rm, offer_record_t *ret);          /* -ENOENT */
int store_offer_put(store_t *s, const offer_record_t *o);                      /* insert or replace */
int store_offer_delete(store_t *s, const char *rm);                            /* -ENOENT */
int store_offer_list(store_t *s, offer_record_t **ret, size_t *ret_n);         /* by rm; free() */
/* What the machines stored at, running on or moving to the offer of rm hold of it. */
int store_offer_used(store_t *s, const char *rm, market_config_t *ret);

/* ---- suggested configurations ---- */
typedef struct market_config_record {
        char name[64];
        char image[64];
        market_config_t config;
        /* the market's estimate (the average over the offers that can host it), -1 before any
         * offer could; left as it was when none can any more (Virtuoso's priceaverage.pl) */
        int64_t storage_price_30d, running_price_1h;
        int64_t created_ms;
} market_config_record_t;

int store_market_config_put(store_t *s, const market_config_record_t *c);      /* -EEXIST */
int store_market_config_get(store_t *s, const char *name, market_config_record_t *ret);
int store_market_config_delete(store_t *s, const char *name);                  /* -ENOENT */
int store_market_config_list(store_t *s, market_config_record_t **ret, size_t *ret_n);
int store_market_config_estimate(store_t *s, const char *name, int64_t storage_price_30d, int64_t running_price_1h);

/* ---- the market's price history: one JSON object per reconcile that changed it ---- */
int store_market_prices_add(store_t *s, int64_t at_ms, const json_t *prices);
/* The newest limit entries, oldest first: [{"at_ms", ...prices}]. */
int store_market_prices_list(store_t *s, int limit, json_t **ret);

/* ---- settings: small named integers (the registration fee) ---- */
int store_setting_get(store_t *s, const char *key, int64_t def, int64_t *ret);
int store_setting_set(store_t *s, const char *key, int64_t value);

/* ---- spans: the recorded state history of market machines ---- */
/* The spans of machine, oldest first (free()). */
int store_spans_get(store_t *s, int64_t machine, billing_span_t **ret, size_t *ret_n);
/* Moves the start of machine's last span back to at_ms (a failure detected late that began at
 * its RM's last heartbeat), never before the span before it nor before what is charged. */
int store_span_backdate(store_t *s, int64_t machine, int64_t at_ms);
/* The highest span sequence number (0 when none): a cheap "did any machine change?". */
int store_spans_last_seq(store_t *s, int64_t *ret);
/* The machines with a span after after_seq, as a JSON array of integers. */
int store_spans_changed(store_t *s, int64_t after_seq, json_t **ret);

/* ---- the ledger ---- */
typedef struct charge_record {
        int64_t machine;
        char vm[64];
        char buyer[64];
        char provider[64];  /* "" for a registration fee (paid to the market) */
        char offer[64];
        char kind[16];      /* storage | running | registration */
        int64_t start_ms, end_ms, amount, posted_ms;
} charge_record_t;

/* Posts c once: inserts it unless (machine, kind, start_ms) is there already, and only then
 * debits the buyer and credits the provider, all in one transaction. 1: posted now; 0: it
 * was there (nothing changed). */
int store_charge_post(store_t *s, const charge_record_t *c);
/* Charges, newest first, at most limit, filtered by any of buyer, provider, vm (NULL: any):
 * [{machine, vm, buyer, provider, offer, kind, period_start, period_end, amount, posted_ms}]. */
int store_charges_list(store_t *s, const char *buyer, const char *provider, const char *vm, int limit, json_t **ret);
/* Sums of charges credited to provider ("" : all), per offer RM: {RM: amount}. */
int store_charges_revenue(store_t *s, const char *provider, json_t **ret);
/* Sums of charges per machine name, for buyer and/or provider (NULL: any): {VM: amount}. */
int store_charges_by_vm(store_t *s, const char *buyer, const char *provider, json_t **ret);

int store_balance_get(store_t *s, const char *user, int64_t *ret);             /* -ENOENT */
/* Adds amount to user's balance and records the deposit: the new balance in *ret_balance. */
int store_deposit(store_t *s, const char *user, int64_t amount, const char *by, int64_t *ret_balance);

/* Billing's bookkeeping of each machine: charged up to posted_until_ms; closed once it was
 * deleted and everything is charged. */
typedef struct billing_record {
        int64_t machine;
        char vm[64];
        char buyer[64];
        int64_t posted_until_ms;
        bool closed;
} billing_record_t;

/* The machines not closed yet, of buyer (NULL: everyone's), by machine id (free()). */
int store_billing_open_list(store_t *s, const char *buyer, billing_record_t **ret, size_t *ret_n);
int store_billing_progress(store_t *s, int64_t machine, int64_t posted_until_ms, bool closed);

/* Buyers' machines that billing suspended for an empty balance, to resume on a deposit. */
int store_unpaid_add(store_t *s, const char *vm, const char *buyer, int64_t at_ms);
int store_unpaid_remove(store_t *s, const char *vm);
/* Those of buyer (NULL: everyone's): [{"vm","buyer","since_ms"}]. */
int store_unpaid_list(store_t *s, const char *buyer, json_t **ret);
