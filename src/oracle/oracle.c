/* vmatrix oracle: opens the store, re-drives unfinished operations, serves the API and the
 * Nest, and runs the reconciler. All state is in the store; SIGTERM or kill -9 lose nothing. */
#include <getopt.h>
#include <signal.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "oracle/oracle-figures.h"
#include "oracle/oracle-prestage.h"
#include "oracle/oracle-internal.h"
#include "oracle/oracle.h"

static void usage(FILE *f) {
        fprintf(f, "usage: vmatrix oracle --data DIR [--listen ADDR:PORT] [--node-listen ADDR:PORT] "
                   "[--tls-cert FILE --tls-key FILE | --tls-auto] [--guest-dir DIR] [--ui-dir DIR] [--open-signup]\n"
                   "                      [--password-cost interactive|min]\n");
}

/* Built-in guest images are looked for beside the binary (build/guest/tiny-http) unless
 * --guest-dir or VMATRIX_GUEST_DIR says otherwise. */
static char *default_guest_dir(void) {
        const char *env = getenv("VMATRIX_GUEST_DIR");
        if (env)
                return xstrdup(env);
        _cleanup_free_ char *dir = exe_dir();
        return xasprintf("%s/guest/tiny-http", dir ? dir : ".");
}

/* Every table of the API, in the order routes are matched (the first match wins: the
 * marketplace's POST /v1/vms/:name/store before the API's POST /v1/vms/:name/:action). */
const http_route_t *const oracle_route_tables[] = { oracle_stream_routes, oracle_console_routes, oracle_market_routes, oracle_machine_routes,
                                                    oracle_billing_routes, oracle_api_routes,
                                                    oracle_account_routes, oracle_nest_routes,
                                                    oracle_service_routes, oracle_metrics_routes,
                                                    oracle_join_routes, oracle_ui_routes, oracle_prestage_routes, NULL };

/* One route table from the NULL-terminated list of tables. */
static http_route_t *routes_concat(const http_route_t *const *tables) {
        size_t total = 0;
        for (size_t t = 0; tables[t]; t++)
                for (size_t i = 0; tables[t][i].method; i++)
                        total++;
        http_route_t *all = xcalloc(total + 1, sizeof *all);
        size_t n = 0;
        for (size_t t = 0; tables[t]; t++)
                for (size_t i = 0; tables[t][i].method; i++)
                        all[n++] = tables[t][i];
        return all;
}

int oracle_main(int argc, char **argv) {
        static const struct option opts[] = {
                { "data", required_argument, NULL, 'd' },
                { "listen", required_argument, NULL, 'l' },
                { "guest-dir", required_argument, NULL, 'g' },
                { "open-signup", no_argument, NULL, 's' },
                { "password-cost", required_argument, NULL, 'p' },
                { "node-listen", required_argument, NULL, 'N' },
                { "tls-cert", required_argument, NULL, 'C' },
                { "tls-key", required_argument, NULL, 'K' },
                { "tls-auto", no_argument, NULL, 'A' },
                { "ui-dir", required_argument, NULL, 'U' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        oracle_t o = { .liveness = oracle_liveness_new(time_now_ms()) };
        _cleanup_free_ char *data = NULL, *listen = NULL, *guest = NULL;
        password_cost_t cost = PASSWORD_COST_INTERACTIVE;
        oracle_tls_opts_t tls_opts = { 0 };
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'd': free(data); data = xstrdup(optarg); break;
                case 'l': free(listen); listen = xstrdup(optarg); break;
                case 'g': free(guest); guest = xstrdup(optarg); break;
                case 's': o.open_signup = true; break;
                case 'p':
                        if (password_cost_parse(optarg, &cost) < 0) {
                                fprintf(stderr, "vmatrix oracle: --password-cost is interactive or min (min: tests only)\n");
                                return 2;
                        }
                        break;
                case 'N': tls_opts.node_listen = optarg; break;
                case 'C': tls_opts.api_cert = optarg; break;
                case 'K': tls_opts.api_key = optarg; break;
                case 'A': tls_opts.api_auto = true; break;
                case 'U': free(o.ui_dir); o.ui_dir = xstrdup(optarg); break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (!data || optind < argc) {
                fprintf(stderr, "vmatrix oracle: %s\n", data ? "unexpected argument" : "--data DIR is required");
                usage(stderr);
                return 2;
        }
        log_setup("oracle");
        o.data = data;
        o.listen = listen ? listen : xstrdup("127.0.0.1:7000");
        listen = NULL;
        o.guest_dir = guest ? TAKE_PTR(guest) : default_guest_dir();
        if (!o.ui_dir)
                o.ui_dir = oracle_ui_default_dir();
        o.consoles = oracle_consoles_new();
        pthread_mutex_init(&o.sse_lock, NULL);
        o.nest = xasprintf("%s/nest", data);
        pthread_mutex_init(&o.ops_lock, NULL);
        pthread_cond_init(&o.ops_changed, NULL);
        o.runners = oracle_runners;
        pthread_mutex_init(&o.strays_lock, NULL);
        pthread_mutex_init(&o.imports_lock, NULL);
        _cleanup_free_ char *tmp = xasprintf("%s/tmp", o.nest);
        _cleanup_free_ char *db = xasprintf("%s/state.db", data);
        int r = mkdir_p(tmp, 0755);
        if (r < 0) {
                log_error("cannot create %s: %s", tmp, strerror(-r));
                return 1;
        }
        _cleanup_free_ char *nest_dir = xasprintf("%s/store", o.nest);
        r = nest_store_open(nest_dir, &o.nest_store);
        if (r < 0) {
                log_error("cannot open the Nest's chunk store %s: %s", nest_dir, strerror(-r));
                return 1;
        }
        r = store_open(db, &o.store);
        if (r < 0) {
                log_error("cannot open the store %s: %s", db, strerror(-r));
                return 1;
        }

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (oracle_auth_start(&o, &cost) < 0) {
                store_close(o.store);
                return 1;
        }
        if (oracle_tls_start(&o, &tls_opts) < 0) {
                store_close(o.store);
                return 1;
        }
        /* both listeners serve one table; each has its own authorizer */
        _cleanup_free_ http_route_t *routes = routes_concat(oracle_route_tables);
        o.metrics = oracle_metrics_new(o.store);
        o.figures = oracle_figures_new(o.store);
        oracle_switch_init(&o);
        r = http_server_start(&(http_server_params_t){ .listen = o.listen, .routes = routes, .upload_dir = tmp, .userdata = &o,
                                                       .authorize = oracle_authorize, .tls_cert = o.tls.api_cert_pem,
                                                       .tls_key = o.tls.api_key_pem },
                              &o.http);
        if (r >= 0)
                r = oracle_tls_listen(&o, routes, tmp);
        if (r < 0) {
                log_error("cannot listen on %s: %s", o.listen, strerror(-r));
                oracle_switch_free(&o);
                store_close(o.store);
                return 1;
        }
        log_info("oracle listening on %s (%s), data in %s, guest images from %s", o.listen,
                 o.tls.api_cert_pem ? "HTTPS" : "HTTP", data, o.guest_dir);
        /* before the operations are re-driven: a deactivation drains through HAProxy */
        if (oracle_switch_start(&o) < 0) {
                log_error("cannot start the switching loop");
                return 1;
        }
        oracle_ops_recover(&o);
        if (oracle_prestage_start(&o) < 0)
                log_error("cannot start the pre-staging thread: activations will not find snapshots staged");
        pthread_t rec, gc, billing;
        if (pthread_create(&rec, NULL, oracle_reconciler_thread, &o) != 0 ||
            pthread_create(&gc, NULL, oracle_gc_thread, &o) != 0 ||
            pthread_create(&billing, NULL, oracle_billing_thread, &o) != 0) {
                /* without its reconciler the Oracle would never notice a dead RM: refuse to run */
                log_error("cannot start the reconciler threads: %m");
                _exit(1);
        }

        int sig = 0;
        sigwait(&mask, &sig);
        log_info("signal %d: stopping", sig);
        o.stopping = 1;
        pthread_join(rec, NULL);
        pthread_join(gc, NULL);
        pthread_join(billing, NULL);
        oracle_prestage_stop(&o);
        o.http = http_server_stop(o.http);
        o.tls.http = http_server_stop(o.tls.http);
        /* HAProxy goes with the Oracle: the next Oracle starts it again from the store */
        oracle_switch_stop(&o);
        /* operations in flight are recorded as running; the next start re-drives them, so
         * there is nothing to wait for: leave without pulling the store from under them */
        pthread_mutex_lock(&o.ops_lock);
        bool busy = o.ops_running > 0;
        pthread_mutex_unlock(&o.ops_lock);
        if (busy)
                _exit(0);
        oracle_switch_free(&o);
        o.metrics = oracle_metrics_free(o.metrics);
        o.figures = oracle_figures_free(o.figures);
        json_decref(o.strays);
        json_decref(o.missing);
        json_decref(o.snapshots);
        json_decref(o.rm_view);
        json_decref(o.imports);
        o.liveness = oracle_liveness_free(o.liveness);
        oracle_tls_stop(&o);
        oracle_auth_stop(&o);
        store_close(o.store);
        nest_store_free(o.nest_store);
        free(o.listen);
        free(o.guest_dir);
        free(o.ui_dir);
        o.consoles = oracle_consoles_free(o.consoles);
        pthread_mutex_destroy(&o.sse_lock);
        free(o.nest);
        return 0;
}
