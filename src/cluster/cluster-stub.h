/* Stand-ins for `vmatrix oracle`, `vmatrix node` and QEMU, for testing the launcher only (part
 * of the cluster-test program, never installed). They speak exactly the part of the protocol
 * the launcher relies on:
 *   oracle: GET /v1/health -> 200; GET /v1/rms -> [{name, role, state, address}], "up" while
 *           the RM's last heartbeat is under 3 s old; POST /v1/rms/NAME/heartbeat
 *           {"role","address"}; and, for tests, GET /v1/rms/NAME/ping, which the Oracle answers
 *           by fetching http://ADDRESS/v1/ping from that node itself.
 *   node:   heartbeats every second, serves GET /v1/ping -> {name, role, pid}, and starts one
 *           detached fake QEMU that writes DATA/run/vm-NAME/qemu.pid, as a real node would.
 *   qemu:   the program run as argv[0] "qemu-system-x86_64 -pidfile PATH": writes PATH, sleeps.
 * Fault injection through the environment (each names one RM):
 *   VMATRIX_STUB_FAIL_NODE   that node exits with status 3 at once
 *   VMATRIX_STUB_HANG_NODE   that node never heartbeats
 *   VMATRIX_STUB_IGNORE_TERM that process ("oracle" or an RM) ignores SIGTERM */
#pragma once

int stub_oracle_main(int argc, char **argv);
int stub_node_main(int argc, char **argv);
int stub_qemu_main(int argc, char **argv);
