/* qemu-img, run by the node to create, rebase and detach qcow2 overlays: one place that turns
 * its output into the message of a failure. */
#include <string.h>

#include "base/proc.h"
#include "base/util.h"
#include "node/node-internal.h"

int node_qemu_img(char *const argv[], int timeout_ms, char **ret_msg) {
        _cleanup_free_ char *out = NULL;
        int r = proc_run(argv, timeout_ms, &out);
        if (r < 0) {
                size_t len = out ? strlen(out) : 0;
                while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
                        out[--len] = 0;
                if (r == -ETIMEDOUT)
                        *ret_msg = xasprintf("qemu-img %s did not finish in %d s and was killed%s%s", argv[1],
                                             timeout_ms / 1000, out && *out ? ": " : "", out ? out : "");
                else
                        *ret_msg = xasprintf("qemu-img %s failed: %s", argv[1], out && *out ? out : strerror(-r));
        }
        return r;
}
