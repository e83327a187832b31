/* Billing as a ledger, not a timer (issue 12): the charges of one machine are a pure function
 * of its recorded state history, so computing them again gives the same rows, and an Oracle
 * that was down charges every missed period once and none twice.
 *
 * A machine's history is a list of spans, each starting when the machine's state, offer or
 * terms changed (and lasting until the next span starts). For each kind:
 *   storage  is due in every state from "stored" on (the machine is stored at an offer) until
 *            "deleted";
 *   running  is due while the guest runs: "loading" and "active", and the transitional state
 *            that leaves one of them (suspending, stopping, migrating live...), since the guest
 *            runs until that operation ends; never in "failed", never while it boots or resumes.
 * Consecutive due spans with the same provider, offer and price for that kind form a segment.
 * A segment is cut into periods of its price's period, starting at the segment's start. A
 * period is charged once it has ended: whole at its end, or prorated (to the millisecond,
 * rounded half up) when its segment ends inside it (stop, suspend, migration, delete, a
 * failure). Pure: no I/O; the only allocation is the returned array. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "market/market.h"

typedef enum charge_kind {
        CHARGE_STORAGE,
        CHARGE_RUNNING,
        _CHARGE_KIND_MAX,
} charge_kind_t;

/* "storage", "running"; NULL out of range. */
const char *charge_kind_name(charge_kind_t k);

typedef struct billing_span {
        int64_t at_ms;          /* when it began (wall clock, ms) */
        char state[24];         /* the VM's lifecycle state; "deleted" ends everything */
        char offer[64];         /* the RM of the offer it is stored at, "" while registered */
        char provider[64];      /* that offer's provider */
        market_terms_t terms;   /* the prices it pays there */
} billing_span_t;

typedef struct billing_charge {
        charge_kind_t kind;
        int64_t start_ms, end_ms; /* the period, or the part of it the segment covered */
        int64_t amount;           /* micro-units */
        char offer[64];
        char provider[64];
} billing_charge_t;

/* The period of a kind that runs at now and is not charged yet (what accrues). */
typedef struct billing_open {
        bool open;              /* false: nothing of this kind is due at now */
        int64_t start_ms;       /* the running period's start */
        int64_t price, period_s;
        char provider[64];
} billing_open_t;

/* Is a span in this state due for kind k, given whether the span before it was due for
 * running? (The rule of the comment above, as one function the Oracle also uses.)
 *   storage: every state but "registered" and "deleted" (an unknown state too);
 *   running: "loading" and "active"; never "booting" or "resuming"; the other transitional
 *            states (suspending hibernating activating deactivating draining stopping deleting
 *            migrating storing) when prev_running; no other state.
 * prev_running is what this function said of the span before for running (false for the
 * first), so running-ness passes down a chain of transitional spans. billing_compute further
 * charges a due span only when its offer is not "". */
bool billing_state_due(charge_kind_t k, const char *state, bool prev_running);

/* The charges of the history spans[0..n) (sorted by at_ms) that have ended by now_ms, oldest
 * first per kind, into *ret (malloc'd array, *ret_n entries; NULL and 0 when none). Only
 * periods that end after since_ms are returned (0: all), so a caller that posted everything up
 * to since_ms skips them cheaply. open[k] (may be NULL) gets the period of each kind that runs
 * at now_ms. 0, or -EINVAL (spans out of order, a period out of range), -ENOMEM.
 * Details:
 *   - equal at_ms are allowed (a span of 0 ms charges nothing but still passes running-ness on);
 *     a span is compared with the one before only, so a segment ends at any span that is not
 *     due, even one of 0 ms;
 *   - a period is returned when its end (its full end, or its segment's end inside it) is
 *     <= now_ms; a row of amount 0 (a free price, a very short cut) is still a row, so that a
 *     caller's since_ms moves past it; a segment that ends on a period boundary has no 0 ms part;
 *   - the kinds' rows interleave in *ret (each kind in order); a computation at a later now_ms,
 *     on the same history, returns the same rows first for each kind, so the history may only
 *     grow by spans at or after the now_ms of computations already posted;
 *   - a span due for a kind at a period out of [PERIOD_MIN_S, PERIOD_MAX_S] or a negative price
 *     is -EINVAL; the terms of kinds not due (registered, stored for running) are not read;
 *   - spans after the first "deleted" are ignored altogether (order included);
 *   - state, offer and provider need not be terminated within their arrays; names are cut to
 *     63 bytes in rows.
 * *ret, *ret_n and open[] are set on success only. The cost is one pass over the spans plus
 * one step per returned row: periods before since_ms are skipped by one division. */
int billing_compute(const billing_span_t *spans, size_t n, int64_t now_ms, int64_t since_ms,
                    billing_charge_t **ret, size_t *ret_n, billing_open_t open[_CHARGE_KIND_MAX]);

/* What the open period of a kind has accrued by now_ms (prorated as a closing charge would
 * be: price x (now_ms - start_ms) / period, half up, capped at price), 0 when it is not open,
 * before its start, or not as billing_compute fills it (period out of range, price <= 0). */
int64_t billing_open_accrued(const billing_open_t *o, int64_t now_ms);
