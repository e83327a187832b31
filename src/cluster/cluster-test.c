/* cluster-test: drives the local-cluster launcher for tests/system/test-cluster.sh, and is its
 * own stand-in for the vmatrix binary (see cluster-stub.h). Built, never installed.
 *   cluster-test up --dir DIR [--production N] [--chambers M] [--exe PATH] [--accel A]
 *   cluster-test down --dir DIR
 *   cluster-test restart --dir DIR NAME
 *   cluster-test url --dir DIR
 *   cluster-test oracle ... | node ...       (what `up` runs; --exe defaults to this program)
 * Exit status 0 on success, 1 on failure (the error is logged), 2 on bad usage. */
#include <getopt.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "cluster/cluster-stub.h"
#include "cluster/cluster.h"

static int usage(void) {
        fprintf(stderr, "usage: cluster-test up|down|restart|url --dir DIR [...]\n");
        return 2;
}

int main(int argc, char **argv) {
        const char *base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];
        if (str_startswith(base, "qemu-system-"))
                return stub_qemu_main(argc, argv);
        if (argc < 2)
                return usage();
        const char *cmd = argv[1];
        if (streq(cmd, "oracle"))
                return stub_oracle_main(argc - 1, argv + 1);
        if (streq(cmd, "node"))
                return stub_node_main(argc - 1, argv + 1);

        log_setup("cluster-test");
        static const struct option opts[] = { { "dir", required_argument, NULL, 'd' },
                                              { "production", required_argument, NULL, 'p' },
                                              { "chambers", required_argument, NULL, 'c' },
                                              { "exe", required_argument, NULL, 'e' },
                                              { "accel", required_argument, NULL, 'a' },
                                              {} };
        cluster_options_t o = CLUSTER_OPTIONS_INIT;
        _cleanup_free_ char *self = exe_path();
        o.vmatrix_exe = self;
        o.plain = true; /* its daemons are stubs (cluster-stub.c), which speak plain HTTP */
        int c;
        int64_t v;
        while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'd': o.dir = optarg; break;
                case 'e': o.vmatrix_exe = optarg; break;
                case 'a': o.accel = optarg; break;
                case 'p':
                case 'c':
                        if (parse_int64(optarg, 0, 1000, &v) < 0)
                                return usage();
                        *(c == 'p' ? &o.production : &o.chambers) = (unsigned)v;
                        break;
                default: return usage();
                }
        }
        if (!o.dir)
                return usage();
        int r;
        if (streq(cmd, "up")) {
                r = cluster_up(&o);
        } else if (streq(cmd, "down")) {
                r = cluster_down(o.dir);
        } else if (streq(cmd, "restart")) {
                if (optind + 1 != argc - 1)
                        return usage();
                r = cluster_restart(o.dir, argv[optind + 1]);
        } else if (streq(cmd, "url")) {
                _cleanup_free_ char *url = NULL;
                r = cluster_oracle_url(o.dir, &url);
                if (r < 0)
                        log_error("no oracle URL in %s: %s", o.dir, strerror(-r));
                else
                        printf("%s\n", url);
        } else {
                return usage();
        }
        return r < 0 ? 1 : 0;
}
