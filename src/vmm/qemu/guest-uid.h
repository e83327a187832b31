/* The uids confined QEMU processes run under (issue 11): one per VM, never root, never a uid a
 * distribution hands out (those stay below 2^31 - 2^28 by convention; systemd's dynamic users
 * and container ranges live elsewhere too). The node's guest firewall (nftables, `meta skuid`)
 * matches this whole range, so both must use these constants: keep them the single definition. */
#pragma once

#define GUEST_UID_FIRST 1610612736u /* 0x60000000 */
#define GUEST_UID_COUNT 65536u
#define GUEST_UID_LAST (GUEST_UID_FIRST + GUEST_UID_COUNT - 1)

/* Where the uids are claimed, host-wide (base/idclaim.h; node/node-confine.c): one file per uid
 * naming the node's data directory and the VM. */
#define GUEST_UID_CLAIM_DIR "/run/vmatrix/guest-uids"
