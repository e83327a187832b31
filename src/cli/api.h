/* The CLI's side of the Oracle HTTP API (docs/api.md): which Oracle to talk to, and requests
 * that turn every failure into the one error line (see command.h for the return convention). */
#pragma once

#include <jansson.h>

#include "cli/command.h"
#include "net/http-client.h"

#define API_TIMEOUT_MS 30000L
#define API_LONG_TIMEOUT_MS (30L * 60 * 1000) /* synchronous builds and imports */

/* The Oracle's base URL, resolved once per run: --oracle URL, else --dir DIR's oracle.url, else
 * $VMATRIX_ORACLE, else $VMATRIX_CLUSTER_DIR's oracle.url (explicit flags beat the environment).
 * "host:port" gets "http://" in front; a trailing "/" is dropped. */
int api_oracle(cli_t *c, const char **ret_url);

/* What requests to the Oracle carry: the token of --token, $VMATRIX_TOKEN, the login file (when
 * written for this Oracle) or DIR/admin.token, resolved once (api-token.c). Never NULL; its
 * bearer is NULL when no token was found. */
const http_call_t *api_credentials(cli_t *c);
/* The login file: its path (malloc'd); read the token of a login to oracle_url (NULL: any):
 * -ENOENT when there is none for it; write one (0600); remove it (0 when absent). */
char *api_login_file_path(void);
int api_login_read(const char *oracle_url, char **ret_user, char **ret_token);
int api_login_write(const char *oracle_url, const char *user, const char *token);
int api_login_remove(void);

/* METHOD path (e.g. "/v1/vms") with an optional JSON body. On a 2xx answer returns CLI_OK and
 * fills *ret (clear it with http_response_clear). Otherwise prints `cannot reach the Oracle at
 * URL: connection refused` or the API's error message and returns CLI_FAIL. */
int api_request(cli_t *c, const char *method, const char *path, const json_t *body, long timeout_ms,
                http_response_t *ret);

/* Like api_request, for answers that must be JSON: *ret is the parsed body (owned by caller). */
int api_call(cli_t *c, const char *method, const char *path, const json_t *body, long timeout_ms, json_t **ret);

/* GET path (a list: "/v1/vms") page by page (?limit=API_PAGE&after=LAST), the pages
 * concatenated into one array in *ret: the whole list, each element once, by name. An Oracle
 * that does not page answers the whole list to the first call, which is taken as it is. */
#define API_PAGE 1000
int api_list_all(cli_t *c, const char *path, json_t **ret);

/* The whole of a command on one named object: checks argument 0 as a `what` name, sends METHOD
 * path_fmt (one %s: the name) and prints the JSON answer with --json, else done_fmt (one %s). */
int api_name_call(cli_t *c, const char *what, const char *method, const char *path_fmt, const char *done_fmt);

/* PUTs the file at file_path to path and returns the JSON answer in *ret, showing upload
 * progress on a terminal under label. Same failure handling as api_request. */
int api_upload(cli_t *c, const char *path, const char *file_path, const char *label, json_t **ret);

/* The message of a failed answer (API error body, or its status). */
const char *api_error_message(const http_response_t *r);
