/* The bundle: the files of a VM at one version (the paper's "3 files" made explicit):
 *   vm.json  every device detail a resumed QEMU must see again (memory, vCPUs, MAC, boot mode)
 *   disk     the VM's writable disk, a qcow2 overlay (on the image's disk for disk images)
 *   state    saved device state and memory, present when the VM is pre-booted
 * A bundle at a version is immutable; the Oracle names each file by the digest of its chunk
 * manifest in the Nest, {"files": {NAME: {"digest": HEX, "size": N, "chunks": K}}}, and every
 * chunk is verified whenever it is read or received (src/nest/). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define BUNDLE_FILE_STATE "state"
#define BUNDLE_FILE_DISK "disk"
#define BUNDLE_FILE_MEMORY "memory" /* guest RAM, raw; the state then holds device state only */
#define BUNDLE_FILE_CONFIG "vm.json"

/* Limits of vm.json, checked by bundle_config_from_json() and by the Oracle's API when a VM
 * is created, so that the Oracle never stores a VM a node would refuse. */
#define BUNDLE_MEMORY_MIB_MIN 16
#define BUNDLE_MEMORY_MIB_MAX 65536
#define BUNDLE_VCPUS_MAX 64
#define BUNDLE_DISK_SIZE_MIB_MAX (1024 * 1024)
#define BUNDLE_CPU_LIMIT_PER_VCPU 100 /* cpu_limit is at most this many percent per vCPU */
/* Versions are 1..BUNDLE_VERSION_MAX (2^53 - 1, exact in every JSON reader). */
#define BUNDLE_VERSION_MAX ((int64_t)9007199254740991)

typedef struct bundle_config {
        char name[64];
        int64_t memory_mib;
        int64_t vcpus;
        char mac[18];
        char image[64];
        char boot[8];           /* "kernel": direct kernel boot of the image's vmlinuz/initrd.img;
                                   "disk": BIOS boot of the image's disk */
        char cmdline[512];      /* kernel command line (boot=kernel) */
        int64_t disk_size_mib;  /* size of a fresh data disk (boot=kernel) */
        char image_format[8];   /* format of the image's disk (boot=disk): qcow2|raw */
        int64_t cpu_limit;      /* CPU quota in percent of one CPU (50: half a CPU), 1..100 per
                                   vCPU; 0 (absent): 100 per vCPU (docs/confinement.md) */
} bundle_config_t;

/* Validates and converts vm.json; -EINVAL on any missing or malformed field. */
int bundle_config_from_json(const json_t *j, bundle_config_t *ret);
json_t *bundle_config_to_json(const bundle_config_t *c);

/* "52:54:00:12:34:56": six lowercase hex pairs, unicast (QEMU refuses a multicast NIC). */
bool bundle_mac_is_valid(const char *mac);
/* A version as the Oracle and nodes exchange it: a JSON integer in 1..BUNDLE_VERSION_MAX. */
int bundle_version_from_json(const json_t *j, int64_t *ret);

/* A well-formed SHA-256 hex string (64 lowercase hex digits). */
bool bundle_sha256_is_valid(const char *hex);
