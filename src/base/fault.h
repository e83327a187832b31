/* Fault injection, as SQLite's I/O tests do it: VMATRIX_FAULT=SITE:N makes the N-th call at the
 * choke point SITE fail as a real failure would (the caller returns -EIO). Sites:
 *   store-write  a write statement or COMMIT of the store (src/store/store-sqlite.c)
 *   http-call    an HTTP request or download, as if no answer came (src/net/http-client.c)
 *   file-write   file_write_atomic (src/base/util.c)
 * The variable is read once; unset, a check costs one load. When the fault fires the process
 * logs "fault injected: SITE:N", which tests look for to know that the N-th call happened. */
#pragma once

#include <stdbool.h>

#define FAULT_ENV "VMATRIX_FAULT"

/* Counts a call at site; true when this call must fail. Thread-safe. */
bool fault_hit(const char *site);
