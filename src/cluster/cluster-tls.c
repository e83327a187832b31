/* Implementation of cluster-tls.h. */
#include "cluster/cluster-tls.h"

#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "net/http-client.h"
#include "tls/ca.h"

/* The trust of this process's calls, made once (a `cluster` command is one short process). */
static http_tls_t *trust;

int cluster_tls_trust(const spec_t *s) {
        if (trust)
                return 0;
        _cleanup_free_ char *data = spec_member_data_dir(s, &s->oracle);
        _cleanup_free_ char *src = xasprintf("%s/" CA_DIR "/" CA_CERT_FILE, data);
        _cleanup_free_ char *dst = xasprintf("%s/" CLUSTER_CA_FILE, s->dir);
        _cleanup_free_ char *pem = NULL, *msg = NULL;
        int r = tls_pem_read(src, false, &pem, &msg);
        if (r < 0)
                return r;
        r = tls_file_write(dst, pem, 0644);
        if (r < 0) {
                log_error("cannot write %s: %s", dst, strerror(-r));
                return r;
        }
        r = http_tls_new(dst, NULL, NULL, &trust);
        if (r < 0)
                return r;
        http_client_tls_default(trust);
        return 0;
}

bool cluster_tls_enrolled(const spec_t *s, const spec_member_t *m) {
        _cleanup_free_ char *data = spec_member_data_dir(s, m);
        _cleanup_free_ char *cert = xasprintf("%s/tls/cert.pem", data);
        return file_exists(cert);
}

/* DIR/admin.token, else the Oracle's DATA/admin.token; NULL when neither is there. */
static char *admin_token(const spec_t *s) {
        _cleanup_free_ char *data = spec_member_data_dir(s, &s->oracle);
        _cleanup_free_ char *a = xasprintf("%s/admin.token", s->dir), *b = xasprintf("%s/admin.token", data);
        for (int i = 0; i < 2; i++) {
                char *text = NULL;
                if (file_read(i == 0 ? a : b, &text, NULL) < 0)
                        continue;
                text[strcspn(text, "\r\n ")] = 0;
                if (*text)
                        return text;
                free(text);
        }
        return NULL;
}

int cluster_tls_join_token(const spec_t *s, const spec_member_t *m, char **ret) {
        _cleanup_free_ char *base = spec_oracle_url(s), *token = admin_token(s);
        _cleanup_free_ char *url = xasprintf("%s/v1/rms/join-tokens", base);
        json_t *body = json_pack("{s:s,s:i}", "role", spec_role_to_string(m->role), "ttl_s", 600);
        http_call_t call = { .token = token };
        http_response_t resp = { 0 };
        int r = http_call_json(&call, "POST", url, body, 10000, &resp);
        json_decref(body);
        const char *t = json_string_value(json_object_get(resp.json, "token"));
        if (r < 0 || resp.status != 201 || !t) {
                log_error("cannot make a join token for %s at %s: %s", m->name, url, http_error_message(&resp, r));
                http_response_clear(&resp);
                return r < 0 ? r : -EACCES;
        }
        *ret = xstrdup(t);
        http_response_clear(&resp);
        return 0;
}
