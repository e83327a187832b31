/* Readiness probes of a local cluster, seen from the launcher: the Oracle's GET /v1/health and
 * GET /v1/rms (array of {name, role, state "up"|"down", address, ...}), and whether a node's
 * listen port accepts connections. The JSON is read here and nowhere else in the launcher. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* 0 if GET url/v1/health answers 200; -EAGAIN for another status, or the transport error. */
int probe_health(const char *oracle_url);

/* Marks in ret_up[i] whether names[i] is listed with state "up" in an /v1/rms body (an array,
 * or an object whose "rms" member is one). Pure. -EBADMSG if rms has neither shape. */
int probe_rms_parse(const json_t *rms, char *const *names, size_t n, bool *ret_up);

/* GET url/v1/rms (with token, when not NULL) and probe_rms_parse. -EAGAIN for a non-200 answer. */
int probe_rms(const char *oracle_url, const char *token, char *const *names, size_t n, bool *ret_up);

/* 0 if a TCP connection to address:port succeeds within a second. */
int probe_tcp(const char *address, unsigned port);
