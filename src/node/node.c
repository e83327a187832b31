/* vmatrix node: the agent on each RM. Parses its options, re-attaches to the QEMU processes a
 * previous run left, serves the node API, heartbeats to the Oracle and supervises its VMs.
 * Stopping the agent (SIGTERM) leaves its VMs running: a restarted agent adopts them. */
#include <getopt.h>
#include <signal.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-driver.h"
#include "node/node-heartbeat.h"
#include "node/node-internal.h"
#include "node/node-prune.h"
#include "node/node-registry.h"
#include "node/node-supervise.h"
#include "node/node.h"

static void usage(FILE *f) {
        fprintf(f, "usage: vmatrix node --oracle https://HOST:PORT --name NAME --data DIR [--join TOKEN] "
                   "[--role production|chamber] [--listen ADDR:PORT] [--accel auto|kvm|tcg] [--warm-slots N] "
                   "[--reclaim-idle SECONDS] [--cache-max SIZE] [--driver qemu] [--guest-firewall auto|require|off] "
                   "[--control-net CIDR[,CIDR...]] [--no-confine] [--capacity-memory MIB] [--capacity-vcpus N] "
                   "[--capacity-disk GIB]\n");
}

/* --guest-firewall (default VMATRIX_GUEST_FIREWALL, for tests, else auto) and --control-net. */
static int parse_guestfw(node_guestfw_t *fw, const char *mode, const char *control) {
        if (!mode)
                mode = getenv("VMATRIX_GUEST_FIREWALL");
        if (mode && node_guestfw_mode_parse(mode, &fw->mode) < 0) {
                fprintf(stderr, "vmatrix node: --guest-firewall must be auto, require or off, not \"%s\"\n", mode);
                return -EINVAL;
        }
        _cleanup_free_ char *msg = NULL;
        if (control && node_guestfw_prefixes_parse(control, &fw->control, &fw->n_control, &msg) < 0) {
                fprintf(stderr, "vmatrix node: %s\n", msg);
                return -EINVAL;
        }
        return 0;
}

/* --capacity-memory, --capacity-vcpus and --capacity-disk (NULL: not declared) into declared;
 * they are held against the machine once the data directory exists (capacity_setup). */
static int parse_capacity(node_capacity_t *declared, const char *memory, const char *vcpus, const char *disk) {
        const struct {
                const char *option, *value;
                int64_t *ret;
        } figures[] = { { "--capacity-memory", memory, &declared->memory_mib },
                        { "--capacity-vcpus", vcpus, &declared->vcpus },
                        { "--capacity-disk", disk, &declared->disk_gib } };
        for (size_t i = 0; i < ELEMENTSOF(figures); i++)
                if (figures[i].value && parse_int64(figures[i].value, 1, NODE_CAPACITY_MAX, figures[i].ret) < 0) {
                        fprintf(stderr, "vmatrix node: %s must be a whole number from 1 to %lld, not \"%s\"\n",
                                figures[i].option, (long long)NODE_CAPACITY_MAX, figures[i].value);
                        return -EINVAL;
                }
        return 0;
}

static int parse_args(node_t *n, int argc, char **argv, const char **ret_accel, const char **ret_join,
                      bool *ret_confine) {
        const char *driver = NULL;
        static const struct option opts[] = {
                { "oracle", required_argument, NULL, 'o' }, { "name", required_argument, NULL, 'n' },
                { "role", required_argument, NULL, 'r' },   { "data", required_argument, NULL, 'd' },
                { "listen", required_argument, NULL, 'l' }, { "accel", required_argument, NULL, 'a' },
                { "warm-slots", required_argument, NULL, 'w' }, { "reclaim-idle", required_argument, NULL, 'i' },
                { "cache-max", required_argument, NULL, 'c' }, { "driver", required_argument, NULL, 'v' },
                { "guest-firewall", required_argument, NULL, 'g' }, { "control-net", required_argument, NULL, 'N' },
                { "join", required_argument, NULL, 'j' },          { "no-confine", no_argument, NULL, 'u' },
                { "capacity-memory", required_argument, NULL, 'M' }, { "capacity-vcpus", required_argument, NULL, 'V' },
                { "capacity-disk", required_argument, NULL, 'D' },
                { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
        };
        const char *accel = "auto", *slots = NULL, *idle = NULL, *cache_max = NULL, *guestfw = NULL, *control = NULL;
        const char *cap_memory = NULL, *cap_vcpus = NULL, *cap_disk = NULL;
        /* VMATRIX_CONFINE=0 is the default of --no-confine, for local clusters and tests */
        const char *confine_env = getenv("VMATRIX_CONFINE");
        bool confine = !confine_env || !streq(confine_env, "0");
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'o': n->oracle = xstrdup(optarg); break;
                case 'n': n->name = xstrdup(optarg); break;
                case 'r': n->role = xstrdup(optarg); break;
                case 'd': n->data = xstrdup(optarg); break;
                case 'l': n->listen = xstrdup(optarg); break;
                case 'a': accel = optarg; break;
                case 'w': slots = optarg; break;
                case 'i': idle = optarg; break;
                case 'c': cache_max = optarg; break;
                case 'v': driver = optarg; break;
                case 'g': guestfw = optarg; break;
                case 'N': control = optarg; break;
                case 'j': *ret_join = optarg; break;
                case 'u': confine = false; break;
                case 'M': cap_memory = optarg; break;
                case 'V': cap_vcpus = optarg; break;
                case 'D': cap_disk = optarg; break;
                case 'h': usage(stdout); exit(0);
                default: return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "vmatrix node: unexpected argument \"%s\"\n", argv[optind]);
                return -EINVAL;
        }
        if (!n->oracle || !n->name || !n->data) {
                fprintf(stderr, "vmatrix node: --oracle, --name and --data are required\n");
                return -EINVAL;
        }
        if (!name_is_valid(n->name)) {
                fprintf(stderr, "vmatrix node: invalid RM name \"%s\" (use a-z, 0-9 and -)\n", n->name);
                return -EINVAL;
        }
        if (n->role && !streq(n->role, "production") && !streq(n->role, "chamber")) {
                fprintf(stderr, "vmatrix node: --role must be production or chamber, not \"%s\"\n", n->role);
                return -EINVAL;
        }
        if (!str_startswith(n->oracle, "https://")) {
                fprintf(stderr, "vmatrix node: --oracle must be the Oracle's node channel, https://HOST:PORT\n");
                return -EINVAL;
        }
        if (!n->listen)
                n->listen = xstrdup("127.0.0.1:7070");
        int port = 0;
        if (http_split_hostport(n->listen, &n->host, &port) < 0) {
                fprintf(stderr, "vmatrix node: --listen must be ADDR:PORT, not \"%s\"\n", n->listen);
                return -EINVAL;
        }
        if (!streq(accel, "auto") && !streq(accel, "kvm") && !streq(accel, "tcg")) {
                fprintf(stderr, "vmatrix node: --accel must be auto, kvm or tcg\n");
                return -EINVAL;
        }
        /* production RMs keep one warm slot by default; chambers, which boot, none (the role is
         * known once the identity is loaded: -1 until then) */
        int64_t want = -1;
        if (slots && parse_int64(slots, 0, 8, &want) < 0) {
                fprintf(stderr, "vmatrix node: --warm-slots must be a number from 0 to 8\n");
                return -EINVAL;
        }
        n->slots_wanted = (int)want;
        int64_t idle_s = 30;
        if (!idle)
                idle = getenv("VMATRIX_RECLAIM_IDLE_S"); /* the default, for tests */
        if (idle && parse_int64(idle, 0, 86400, &idle_s) < 0) {
                fprintf(stderr, "vmatrix node: --reclaim-idle must be seconds from 0 (never) to 86400\n");
                return -EINVAL;
        }
        n->reclaim_idle_ms = idle_s * 1000;
        if (!cache_max)
                cache_max = getenv("VMATRIX_CACHE_MAX"); /* the default, for tests */
        if (cache_max && (parse_size(cache_max, &n->cache_max) < 0 || (n->cache_max > 0 && n->cache_max < (64u << 20)))) {
                fprintf(stderr, "vmatrix node: --cache-max must be a size such as 20G or 512M (at least 64M; 0: no cap)\n");
                return -EINVAL;
        }
        if (node_driver_pick(driver, &n->driver) < 0)
                return -EINVAL;
        if (parse_guestfw(&n->guestfw, guestfw, control) < 0)
                return -EINVAL;
        if (parse_capacity(&n->capacity_declared, cap_memory, cap_vcpus, cap_disk) < 0)
                return -EINVAL;
        *ret_accel = accel;
        *ret_confine = confine;
        return 0;
}

/* The RM's size as its heartbeats report it: measured once here (node-heartbeat.c measures the
 * disk again now and then), the declared figures in place of the machine's. A figure declared
 * above the machine's is refused: an RM must not offer what it does not have. -errno, logged. */
static int capacity_setup(node_t *n) {
        node_capacity_t machine;
        int r = node_capacity_measure(n->data, &machine);
        if (r < 0) {
                log_error("cannot measure this RM's size (data directory %s): %s", n->data, strerror(-r));
                return r;
        }
        _cleanup_free_ char *msg = NULL;
        r = node_capacity_declare(&machine, &n->capacity_declared, &n->capacity, &msg);
        if (r < 0) {
                fprintf(stderr, "vmatrix node: %s\n", msg);
                return r;
        }
        n->capacity_disk_ms = time_now_ms();
        return 0;
}

#define SUPERVISE_INTERVAL_MS 200

/* The supervisor loop: a QEMU that died is noticed within SUPERVISE_INTERVAL_MS and reported
 * by the next heartbeat at once. */
static void *supervisor_thread(void *arg) {
        node_t *n = arg;
        while (!n->stopping) {
                if (node_supervise_check(n))
                        node_heartbeat_wake(n);
                node_confine_sweep(n);
                time_sleep_ms(SUPERVISE_INTERVAL_MS);
        }
        return NULL;
}

static void node_free(node_t *n) {
        node_guestfw_stop(n); /* first: it asks the registry whether VMs still run */
        node_tls_free(n);
        node_registry_free(n);
        node_confine_free(n);
        nest_store_free(n->cache);
        free(n->name);
        free(n->role);
        free(n->oracle);
        free(n->data);
        free(n->listen);
        free(n->host);
}

int node_main(int argc, char **argv) {
        node_t n = { 0 };
        pthread_mutex_init(&n.lock, NULL);
        pthread_mutex_init(&n.cache_lock, NULL);
        pthread_mutex_init(&n.wake_lock, NULL);
        pthread_mutex_init(&n.slots_lock, NULL);
        pthread_mutex_init(&n.memory_lock, NULL);
        pthread_mutex_init(&n.tls.migration_lock, NULL);
        pthread_cond_init(&n.wake, NULL);
        node_consoles_init(&n.consoles);
        const char *accel_want = NULL, *join = NULL;
        bool confine = true;
        if (parse_args(&n, argc, argv, &accel_want, &join, &confine) < 0) {
                usage(stderr);
                node_free(&n);
                return 2;
        }
        log_setup(n.name);
        /* the role the RM enrolled with (--role may only repeat it) */
        _cleanup_free_ char *role_arg = n.role ? xstrdup(n.role) : NULL;
        /* every path the node builds, and gives a confined QEMU, starts from it: canonical */
        _cleanup_free_ char *real = mkdir_p(n.data, 0755) >= 0 ? realpath(n.data, NULL) : NULL;
        if (real) {
                free(n.data);
                n.data = TAKE_PTR(real);
        }
        /* the size before the enrolment: a node refused for its options does not enrol */
        if (mkdir_p(n.data, 0755) < 0 || capacity_setup(&n) < 0 || node_tls_setup(&n, join, role_arg) < 0) {
                node_free(&n);
                return 2;
        }
        if (n.slots_wanted < 0)
                n.slots_wanted = streq(n.role, "production") ? 1 : 0;
        int r = mkdir_p(n.data, 0755);
        _cleanup_free_ char *tmp = xasprintf("%s/tmp", n.data);
        if (r >= 0)
                r = mkdir_p(tmp, 0755);
        if (r < 0) {
                log_error("cannot create data directory %s: %s", n.data, strerror(-r));
                node_free(&n);
                return 1;
        }
        _cleanup_free_ char *accel_cache = xasprintf("%s/accel.json", n.data);
        /* the fake driver runs no VMM: no accelerator probe (it would start QEMU) */
        if (n.driver != &vmm_qemu)
                n.accel = "tcg";
        else
                r = vmm_accel_pick(accel_want, accel_cache, &n.accel);
        if (r < 0) {
                log_error("cannot use accelerator %s: %s", accel_want, strerror(-r));
                node_free(&n);
                return 1;
        }
        /* before any QEMU is adopted or started; confinement first: it may change the accelerator */
        if (node_confine_init(&n, confine, accel_want) < 0 || node_guestfw_start(&n) < 0) {
                node_free(&n);
                return 1;
        }
        r = node_nest_open(&n);
        if (r < 0) {
                log_error("cannot open the chunk cache in %s/cache: %s", n.data, strerror(-r));
                node_free(&n);
                return 1;
        }

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        node_supervise_adopt(&n);
        r = node_slots_start(&n);
        if (r < 0)
                log_warn("warm slots are off: %s", strerror(-r));
        r = http_server_start(&(http_server_params_t){ .listen = n.listen, .routes = node_api_routes, .upload_dir = tmp,
                                                       .userdata = &n, .authorize = node_authorize,
                                                       .tls_cert = n.tls.cert_pem, .tls_key = n.tls.key_pem,
                                                       .tls_trust = n.tls.ca_pem,
                                                       .first_request_timeout_s = NODE_FIRST_REQUEST_S },
                              &n.http);
        if (r < 0) {
                log_error("cannot listen on %s: %s", n.listen, strerror(-r));
                n.stopping = 1;
                node_slots_stop(&n);
                node_free(&n);
                return 1;
        }
        log_info("node %s (%s, accel %s, %lld MiB, %lld CPUs, %lld GiB) listening on %s, Oracle %s", n.name, n.role,
                 n.accel, (long long)n.capacity.memory_mib, (long long)n.capacity.vcpus,
                 (long long)n.capacity.disk_gib, n.listen, n.oracle);
        /* an agent without its heartbeat would get the RM declared down, without its supervisor
         * it would miss crashes: it does not run without all three */
        static void *(*const loops[])(void *) = { node_heartbeat_thread, supervisor_thread, node_balloon_thread,
                                                  node_prune_thread };
        pthread_t threads[ELEMENTSOF(loops)];
        size_t started = 0;
        int rc = 0;
        for (; started < ELEMENTSOF(loops); started++) {
                r = -pthread_create(&threads[started], NULL, loops[started], &n);
                if (r < 0) {
                        log_error("cannot start the agent's threads: %s", strerror(-r));
                        rc = 1;
                        break;
                }
        }
        int sig = 0;
        if (rc == 0) {
                sigwait(&mask, &sig);
                log_info("signal %d: stopping the agent (VMs keep running)", sig);
        }
        n.stopping = 1;
        node_heartbeat_wake(&n);
        for (size_t i = 0; i < started; i++)
                pthread_join(threads[i], NULL);
        node_consoles_stop(&n.consoles); /* first: its clients' threads are the HTTP server's */
        n.http = http_server_stop(n.http);
        node_slots_stop(&n);
        node_free(&n);
        return rc;
}
