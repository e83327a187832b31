/* The VMM driver interface: everything the node needs from a hypervisor, as one const struct
 * of operations per driver (qemu for real VMs, fake for unit tests only). A NULL slot means
 * unsupported and the vmm_* dispatchers return -EOPNOTSUPP. Every operation takes a flags
 * word so the interface can grow without *2 variants.
 *
 * Ownership: vmm_config_t is owned by the caller and only read. A vmm_vm_t is a handle to one
 * running VMM process, created by boot/restore/attach and released by vmm_vm_free(), which
 * closes the handle but never stops the process (the node may restart and re-attach).
 * Thread safety: a handle serialises its own monitor traffic; distinct handles are independent. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* How a VMM process is confined (vmm_config_t.confine; NULL: not at all, as without root).
 * The caller owns the uid and the cgroups (it claims, creates and removes them); the driver
 * starts the process as that uid in those cgroups, in a mount namespace that shows it the files
 * of its config only, and makes the files it writes the uid's (see qemu-confine.c). */
typedef struct vmm_confine {
        uid_t uid;
        gid_t gid;
        const char *jail_dir;  /* an empty directory the namespace's root tmpfs is mounted on */
        char *const *cgroups;  /* cgroup directories the process starts in, NULL-terminated */
        char *const *backing_dirs; /* the directories a backing file of the disk may be in
                                    * (NULL-terminated): the disk's header is the VM's to write,
                                    * so a backing file elsewhere is refused, never bound */
} vmm_confine_t;

typedef struct vmm_config {
        const char *name;        /* VM name, for logs and the guest's identity */
        const char *run_dir;     /* private directory: monitor socket, pidfile, console */
        uint64_t memory_mib;
        unsigned vcpus;
        const char *mac;         /* "52:54:00:xx:xx:xx"; part of the saved device state */
        const char *kernel;      /* direct kernel boot when non-NULL (tiny-http) */
        const char *initrd;
        const char *cmdline;
        const char *disk;        /* the VM's writable disk (a qcow2 overlay) */
        const char *disk_format; /* "qcow2" or "raw" */
        const char *fwd_host;    /* guest TCP port 80 is forwarded to fwd_host:fwd_port */
        int fwd_port;
        const char *accel;       /* "kvm" or "tcg" (already resolved, see vmm_accel_pick) */
        const char *memory_path; /* optional: guest RAM in this file (memory-backend-file, NUMA node 0) */
        bool memory_private;     /* map memory_path copy-on-write (share=off): the file is never
                                  * written, the guest's changes stay in this process (and a save
                                  * must then carry all RAM, see docs/memory.md) */
        const char *machine;     /* QEMU machine type; NULL means "pc", an alias of the newest
                                  * pc-i440fx-X.Y: pin a versioned type to restore a state file
                                  * with another QEMU version */
        const vmm_confine_t *confine; /* NULL: the process runs as we do; never part of the
                                       * command line or the device set */
} vmm_config_t;

typedef enum vmm_run_state {
        VMM_RUN_RUNNING,
        VMM_RUN_PAUSED,   /* stopped CPUs: paused, or saved and waiting to be killed */
        VMM_RUN_INMIGRATE,
        VMM_RUN_SHUTDOWN, /* guest powered off, process may still be there */
        VMM_RUN_GONE,     /* the process has exited */
} vmm_run_state_t;

typedef struct vmm_status {
        vmm_run_state_t state;
        pid_t pid;
} vmm_status_t;

typedef struct vmm_stats {
        uint64_t cpu_ns;       /* CPU time of the VMM process (user+system) */
        uint64_t rss_bytes;    /* resident memory of the VMM process */
        uint64_t block_rd_bytes, block_wr_bytes;
        uint64_t net_rx_bytes, net_tx_bytes;
} vmm_stats_t;

typedef struct vmm_vm vmm_vm_t;
typedef struct vmm_driver vmm_driver_t;

/* Where a live migration's destination listens (see live_receive). */
typedef struct vmm_live_endpoint {
        char host[64];   /* IPv4 address the destination listens on */
        int migrate_port; /* QEMU's incoming migration (tcp) */
        int nbd_port;     /* NBD export of the destination's disk, mirrored into by the source */
} vmm_live_endpoint_t;

/* The TLS of a live migration's two streams (the migration and the disk mirror over NBD),
 * which is required: there is no live migration over plain TCP. PEM text, owned by the
 * caller and only read; the driver hands it to the VMM and keeps no copy of the key. */
typedef struct vmm_live_tls {
        const char *ca_pem;        /* the CA both ends' certificates are of */
        const char *cert_pem;      /* this end's certificate (serverAuth and clientAuth) */
        const char *key_pem;       /* its private key */
        const char *peer_subject;  /* live_receive: the subject the source's certificate must have,
                                    * exactly as QEMU prints it (tls_migration_authz_id) */
        const char *peer_hostname; /* live_send: a DNS name the destination's certificate must carry */
} vmm_live_tls_t;

typedef struct vmm_live_stats {
        uint64_t total_ms;      /* mirror start to the source paused for good */
        uint64_t downtime_ms;   /* QEMU's own figure: source CPUs stopped to end of migration */
        uint64_t ram_bytes;     /* RAM sent */
        uint64_t disk_bytes;    /* disk data mirrored */
} vmm_live_stats_t;

/* Flags */
#define VMM_RESTORE_PAUSED (1u << 0) /* restore: leave CPUs stopped after the state is loaded */
#define VMM_SAVE_STREAM (1u << 1)    /* save: state_path is a FIFO to write into as it is (no
                                      * temporary file, no fsync, no rename) */
#define VMM_ALL_RAM (1u << 2)        /* save/restore: all RAM in the stream, even RAM in a file
                                      * (x-ignore-shared off); both sides must agree */

struct vmm_driver {
        const char *name;
        /* Start a fresh VM and let it run. */
        int (*boot)(const vmm_config_t *cfg, unsigned flags, vmm_vm_t **ret);
        /* Start a VM from a state file written by save(), with the same config; running on return
         * unless VMM_RESTORE_PAUSED. */
        int (*restore)(const vmm_config_t *cfg, const char *state_path, unsigned flags, vmm_vm_t **ret);
        /* Re-attach to a VMM process left running in cfg->run_dir (after an agent restart).
         * -ESRCH if there is none. */
        int (*attach)(const vmm_config_t *cfg, unsigned flags, vmm_vm_t **ret);
        /* Stop the CPUs and write the device state (and RAM unless it is file-backed) to
         * state_path. The VM stays paused; the caller kills it when the state is stored.
         * A VM saved once must run again (cont) before it can be saved again: -EALREADY.
         * On failure the VM is left paused. Operations on a VM whose process has died
         * return -ESRCH (status reports VMM_RUN_GONE instead). */
        int (*save)(vmm_vm_t *vm, const char *state_path, unsigned flags);
        int (*pause)(vmm_vm_t *vm, unsigned flags);
        int (*cont)(vmm_vm_t *vm, unsigned flags);
        /* ACPI power-down, then kill after timeout_ms; returns once the process is gone. */
        int (*shutdown)(vmm_vm_t *vm, int timeout_ms, unsigned flags);
        /* SIGKILL and reap/wait; returns once the process is gone. */
        int (*kill)(vmm_vm_t *vm, unsigned flags);
        int (*status)(vmm_vm_t *vm, vmm_status_t *ret);
        int (*stats)(vmm_vm_t *vm, vmm_stats_t *ret);
        /* Path of a UNIX stream socket connected to the serial console (malloc'd). */
        int (*console_path)(vmm_vm_t *vm, char **ret);
        void (*free)(vmm_vm_t *vm);

        /* Warm slots: slot_start starts a VMM for a config "shape" (memory_path and disk NULL;
         * RAM size, vcpus, accel, machine, kernel, NIC forward as the VM will have them) that
         * waits, without RAM or disk, for a state. slot_restore completes it with cfg's memory
         * file and disk and loads state_path into it, as restore() would (same flags). cfg must
         * match the shape in everything else (-EINVAL otherwise, the slot is then unusable).
         * On failure the slot is killed. */
        int (*slot_start)(const vmm_config_t *shape, unsigned flags, vmm_vm_t **ret);
        int (*slot_restore)(vmm_vm_t *slot, const vmm_config_t *cfg, const char *state_path, unsigned flags);

        /* Guest agent (virtio-serial port "vmx.agent"): send one request line, wait up to
         * timeout_ms for one reply line (malloc'd, without newline). -ETIMEDOUT when the guest
         * does not answer (no agent running), -EPROTO when it answers "error ...". */
        int (*agent_call)(vmm_vm_t *vm, const char *request, int timeout_ms, char **ret_reply);

        /* Balloon: ask the guest to give memory back until it has target_bytes; get what it has. */
        int (*balloon_set)(vmm_vm_t *vm, uint64_t target_bytes);
        int (*balloon_get)(vmm_vm_t *vm, uint64_t *ret_actual_bytes);

        /* Live migration. The destination: live_receive starts a VMM for cfg (its disk an empty
         * overlay over the same backing as the source's, its RAM a new shared memory file) that
         * listens on host (ports chosen by the driver, in *ret_ep) for the RAM and the disk,
         * over TLS only and only from a client whose certificate has tls->peer_subject.
         * The source: live_send mirrors its disk into ep's NBD export, then migrates RAM live,
         * both over TLS to a server whose certificate names tls->peer_hostname; on success the
         * source is paused for good (its caller kills it) and stats are set; on any failure the
         * source runs on as before and the error is returned. The destination then:
         * live_finish waits for the incoming migration to complete, stops the NBD export and
         * continues the CPUs (running on return). A failed destination is killed by its caller
         * with kill(). tls may not be NULL (-EINVAL). */
        int (*live_receive)(const vmm_config_t *cfg, const char *host, const vmm_live_tls_t *tls, unsigned flags,
                            vmm_live_endpoint_t *ret_ep, vmm_vm_t **ret);
        int (*live_send)(vmm_vm_t *vm, const vmm_live_endpoint_t *ep, const vmm_live_tls_t *tls, int timeout_ms,
                         vmm_live_stats_t *ret_stats);
        int (*live_finish)(vmm_vm_t *vm, int timeout_ms);
};

/* Every driver's handle begins with this header. */
struct vmm_vm {
        const vmm_driver_t *driver;
};

extern const vmm_driver_t vmm_qemu;
extern const vmm_driver_t vmm_fake; /* unit tests only */

int vmm_boot(const vmm_driver_t *d, const vmm_config_t *cfg, unsigned flags, vmm_vm_t **ret);
int vmm_restore(const vmm_driver_t *d, const vmm_config_t *cfg, const char *state_path, unsigned flags,
                vmm_vm_t **ret);
int vmm_attach(const vmm_driver_t *d, const vmm_config_t *cfg, unsigned flags, vmm_vm_t **ret);
int vmm_save(vmm_vm_t *vm, const char *state_path, unsigned flags);
int vmm_pause(vmm_vm_t *vm, unsigned flags);
int vmm_cont(vmm_vm_t *vm, unsigned flags);
int vmm_shutdown(vmm_vm_t *vm, int timeout_ms, unsigned flags);
int vmm_kill(vmm_vm_t *vm, unsigned flags);
int vmm_status(vmm_vm_t *vm, vmm_status_t *ret);
int vmm_stats(vmm_vm_t *vm, vmm_stats_t *ret);
int vmm_console_path(vmm_vm_t *vm, char **ret);
vmm_vm_t *vmm_vm_free(vmm_vm_t *vm);
int vmm_slot_start(const vmm_driver_t *d, const vmm_config_t *shape, unsigned flags, vmm_vm_t **ret);
int vmm_slot_restore(vmm_vm_t *slot, const vmm_config_t *cfg, const char *state_path, unsigned flags);
int vmm_agent_call(vmm_vm_t *vm, const char *request, int timeout_ms, char **ret_reply);
int vmm_balloon_set(vmm_vm_t *vm, uint64_t target_bytes);
int vmm_balloon_get(vmm_vm_t *vm, uint64_t *ret_actual_bytes);
int vmm_live_receive(const vmm_driver_t *d, const vmm_config_t *cfg, const char *host, const vmm_live_tls_t *tls,
                     unsigned flags, vmm_live_endpoint_t *ret_ep, vmm_vm_t **ret);
int vmm_live_send(vmm_vm_t *vm, const vmm_live_endpoint_t *ep, const vmm_live_tls_t *tls, int timeout_ms,
                  vmm_live_stats_t *ret_stats);
int vmm_live_finish(vmm_vm_t *vm, int timeout_ms);

/* Accelerator choice. want is "auto", "kvm" or "tcg". auto uses KVM only when /dev/kvm works
 * and a short timed probe shows it is not slower than TCG (nested KVM can be ~1000x slower);
 * the probe result is cached in cache_path (may be NULL) so it runs once per host.
 * *ret is a static string "kvm" or "tcg". Returns -ENODEV when kvm is forced but /dev/kvm is
 * not usable, -EINVAL for another want; a failed probe falls back to tcg (logged). */
int vmm_accel_pick(const char *want, const char *cache_path, const char **ret);
