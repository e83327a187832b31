/* Running helper programs (qemu-img, ip) from an argv array, never through a shell. */
#pragma once

/* Runs argv[0] with argv, waits, and returns 0 when it exited 0. Its stdout+stderr (up to 64 KiB)
 * go to *ret_output when non-NULL (malloc'd, also on failure), so the caller can show them.
 * -ENOENT when the program cannot be started, -EPROTO when it exited non-zero. */
int proc_run(char *const argv[], char **ret_output);
