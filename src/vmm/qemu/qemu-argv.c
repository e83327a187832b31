/* QEMU argv from a vmm_config_t (see qemu-argv.h).
 *
 * Machine type: "pc" (i440fx). Under TCG it boots fastest of the types that can do both
 * virtio-pci and save/restore: q35 adds a PCIe root complex, AHCI and more firmware work;
 * microvm boots faster but has no PCI bus by default (virtio-mmio only), which the guest image
 * (virtio-blk-pci, virtio-net-pci, Debian cloud kernel) does not use. "pc" is what the
 * colleague's image is built for.
 *
 * Determinism for save/restore: PCI slots are explicit (disk 0x3, NIC 0x4) and the NIC has no
 * option ROM (romfile=), since ROM sizes differ between QEMU packages and a ROM is part of
 * the migration stream; we boot from -kernel or the disk, never from the network. */
#include "vmm/qemu/qemu-argv.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>
#include <sys/un.h>

#include "base/util.h"

/* Slots on the i440fx bus; 0 is the host bridge and 1 the PIIX3 (ISA, IDE, USB, ACPI). */
#define QEMU_PCI_SLOT_VGA "0x2"
#define QEMU_PCI_SLOT_DISK "0x3"
#define QEMU_PCI_SLOT_NET "0x4"
#define QEMU_PCI_SLOT_SERIAL "0x5"
#define QEMU_PCI_SLOT_BALLOON "0x6"

typedef struct argv_builder {
        char **v;
        size_t n, cap;
} argv_builder_t;

/* Takes ownership of s. */
static void argv_push(argv_builder_t *b, char *s) {
        if (b->n + 2 > b->cap) {
                b->cap = MAX(b->cap * 2, (size_t)64);
                char **n = realloc(b->v, b->cap * sizeof *n);
                if (!n)
                        abort(); /* as xasprintf: OOM is not recoverable here */
                b->v = n;
        }
        b->v[b->n++] = s;
        b->v[b->n] = NULL;
}

static void argv_add(argv_builder_t *b, const char *opt, char *value) {
        argv_push(b, xstrdup(opt));
        if (value)
                argv_push(b, value);
}

char *qemu_run_path(const char *run_dir, const char *file) { return xasprintf("%s/%s", run_dir, file); }

char *qemu_opt_escape(const char *s) {
        size_t n = strlen(s), commas = 0;
        for (size_t i = 0; i < n; i++)
                commas += s[i] == ',';
        char *e = xcalloc(n + commas + 1, 1), *p = e;
        for (size_t i = 0; i < n; i++) {
                *p++ = s[i];
                if (s[i] == ',')
                        *p++ = ',';
        }
        return e;
}

/* "52:54:00:12:34:56": six hex pairs, unicast. */
static bool mac_is_valid(const char *mac) {
        if (strlen(mac) != 17)
                return false;
        for (int i = 0; i < 17; i++) {
                char c = mac[i];
                bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
                if (i % 3 == 2 ? c != ':' : !hex)
                        return false;
        }
        unsigned first = (unsigned)strtoul(mac, NULL, 16);
        return (first & 1) == 0;
}

static bool socket_path_fits(const char *run_dir, const char *file) {
        struct sockaddr_un sa;
        return strlen(run_dir) + 1 + strlen(file) < sizeof sa.sun_path;
}

static bool str_has_ctl(const char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20)
                        return true;
        return false;
}

static int config_check(const vmm_config_t *cfg, const char **bad) {
#define BAD(field, err)                \
        do {                           \
                *bad = field;          \
                return -(err);         \
        } while (0)
        if (!cfg->name || !*cfg->name || str_has_ctl(cfg->name))
                BAD("name", EINVAL);
        if (!cfg->run_dir || !*cfg->run_dir || str_has_ctl(cfg->run_dir))
                BAD("run_dir", EINVAL);
        if (!socket_path_fits(cfg->run_dir, QEMU_RUN_QMP) || !socket_path_fits(cfg->run_dir, QEMU_RUN_CONSOLE) ||
            !socket_path_fits(cfg->run_dir, QEMU_RUN_AGENT))
                BAD("run_dir", ENAMETOOLONG);
        if (cfg->memory_mib < 16 || cfg->memory_mib > (UINT64_C(1) << 22))
                BAD("memory_mib", EINVAL);
        if (cfg->vcpus < 1 || cfg->vcpus > 255)
                BAD("vcpus", EINVAL);
        if (cfg->mac && !mac_is_valid(cfg->mac))
                BAD("mac", EINVAL);
        if ((cfg->initrd || cfg->cmdline) && !cfg->kernel)
                BAD("kernel", EINVAL);
        if (cfg->disk && (!*cfg->disk || str_has_ctl(cfg->disk)))
                BAD("disk", EINVAL);
        if (cfg->disk_format && !streq(cfg->disk_format, "qcow2") && !streq(cfg->disk_format, "raw"))
                BAD("disk_format", EINVAL);
        if (cfg->fwd_host) {
                struct in_addr a;
                /* slirp's hostfwd takes an IPv4 address only */
                if (inet_pton(AF_INET, cfg->fwd_host, &a) != 1)
                        BAD("fwd_host", EINVAL);
                if (cfg->fwd_port < 1 || cfg->fwd_port > 65535)
                        BAD("fwd_port", EINVAL);
        }
        if (!cfg->accel || (!streq(cfg->accel, "kvm") && !streq(cfg->accel, "tcg")))
                BAD("accel", EINVAL);
        if (cfg->memory_path && (!*cfg->memory_path || str_has_ctl(cfg->memory_path)))
                BAD("memory_path", EINVAL);
        if (cfg->memory_private && !cfg->memory_path)
                BAD("memory_private", EINVAL);
        if (cfg->machine && (!*cfg->machine || strpbrk(cfg->machine, ",=") || str_has_ctl(cfg->machine)))
                BAD("machine", EINVAL);
        return 0;
#undef BAD
}

int qemu_argv_build(const vmm_config_t *cfg, const char *binary, unsigned flags, const char **bad_field,
                    char ***ret) {
        const char *dummy;
        if (!bad_field)
                bad_field = &dummy;
        if (!cfg)
                return -EINVAL;
        int r = config_check(cfg, bad_field);
        if (r < 0)
                return r;

        bool kvm = streq(cfg->accel, "kvm");
        _cleanup_free_ char *run = qemu_opt_escape(cfg->run_dir);
        argv_builder_t b = { 0 };

        argv_push(&b, xstrdup(binary ? binary : QEMU_DEFAULT_BINARY));
        argv_add(&b, "-nodefaults", NULL);
        argv_add(&b, "-no-user-config", NULL);
        /* libvirt's sandbox: no exec, no setuid, no scheduler/affinity changes */
        argv_add(&b, "-sandbox", xstrdup("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
        _cleanup_free_ char *name = qemu_opt_escape(cfg->name);
        argv_add(&b, "-name", xasprintf("guest=%s", name));
        argv_add(&b, "-machine",
                 xasprintf("%s,accel=%s", cfg->machine ? cfg->machine : QEMU_DEFAULT_MACHINE, cfg->accel));
        argv_add(&b, "-cpu", xstrdup(kvm ? "host" : "max"));
        argv_add(&b, "-m", xasprintf("%" PRIu64, cfg->memory_mib));
        argv_add(&b, "-smp", xasprintf("%u", cfg->vcpus));
        /* a display for the browser's graphical console (issue 13): a standard VGA with 1 MiB of
         * video memory (text mode and a small framebuffer; it is saved with every snapshot), and
         * QEMU's VNC server on a UNIX socket in the run directory, which only the node reaches and
         * relays over the control channel; no window, no TCP port */
        argv_add(&b, "-display", xstrdup("none"));
        argv_add(&b, "-vga", xstrdup("none"));
        argv_add(&b, "-device", xstrdup("VGA,vgamem_mb=1,addr=" QEMU_PCI_SLOT_VGA));
        argv_add(&b, "-vnc", xasprintf("unix:%s/" QEMU_RUN_VNC, run));
        /* -pidfile takes a plain path, not an option list */
        argv_add(&b, "-pidfile", qemu_run_path(cfg->run_dir, QEMU_RUN_PIDFILE));
        argv_add(&b, "-qmp", xasprintf("unix:%s/" QEMU_RUN_QMP ",server=on,wait=off", run));
        argv_add(&b, "-chardev",
                 xasprintf("socket,id=ser0,path=%s/" QEMU_RUN_CONSOLE ",server=on,wait=off,logfile=%s/" QEMU_RUN_CONSOLE_LOG
                           ",logappend=on",
                           run, run));
        argv_add(&b, "-serial", xstrdup("chardev:ser0"));

        if (cfg->kernel) {
                argv_add(&b, "-kernel", xstrdup(cfg->kernel));
                if (cfg->initrd)
                        argv_add(&b, "-initrd", xstrdup(cfg->initrd));
                if (cfg->cmdline)
                        argv_add(&b, "-append", xstrdup(cfg->cmdline));
        }

        /* RAM as NUMA node 0's memory backend rather than -machine memory-backend: the same
         * device set can then be completed later in --preconfig (QEMU_ARGV_SLOT) */
        if (cfg->memory_path) {
                _cleanup_free_ char *mp = qemu_opt_escape(cfg->memory_path);
                argv_add(&b, "-object",
                         xasprintf("memory-backend-file,id=" QEMU_RAM_ID ",size=%" PRIu64 "M,mem-path=%s,share=%s",
                                   cfg->memory_mib, mp, cfg->memory_private ? "off" : "on"));
                argv_add(&b, "-numa", xstrdup("node,nodeid=0,memdev=" QEMU_RAM_ID));
        }

        if (cfg->disk) {
                _cleanup_free_ char *disk = qemu_opt_escape(cfg->disk);
                argv_add(&b, "-blockdev",
                         xasprintf("driver=%s,node-name=" QEMU_DISK_ID ",file.driver=file,file.filename=%s",
                                   cfg->disk_format ? cfg->disk_format : "qcow2", disk));
        }
        if (cfg->disk || (flags & QEMU_ARGV_SLOT))
                argv_add(&b, "-device", xstrdup("virtio-blk-pci,drive=" QEMU_DISK_ID ",addr=" QEMU_PCI_SLOT_DISK));

        /* the guest agent's channel (docs/guest-agent.md) */
        argv_add(&b, "-chardev", xasprintf("socket,id=agent0,path=%s/" QEMU_RUN_AGENT ",server=on,wait=off", run));
        argv_add(&b, "-device", xstrdup("virtio-serial-pci,id=vser0,addr=" QEMU_PCI_SLOT_SERIAL));
        argv_add(&b, "-device", xstrdup("virtserialport,bus=vser0.0,chardev=agent0,name=vmx.agent"));
        /* No free-page-reporting: QEMU 7.2 discards reported pages with fallocate(PUNCH_HOLE) on
         * the RAM's file even when it is mapped private, which would punch holes in a snapshot
         * that other VMs map. The balloon is inflated only for VMs owning their RAM file. */
        argv_add(&b, "-device", xstrdup("virtio-balloon-pci,id=balloon0,addr=" QEMU_PCI_SLOT_BALLOON));

        /* always present, with or without a forward, so the device set does not depend on it */
        if (cfg->fwd_host)
                argv_add(&b, "-netdev", xasprintf("user,id=net0,hostfwd=tcp:%s:%d-:80", cfg->fwd_host, cfg->fwd_port));
        else
                argv_add(&b, "-netdev", xstrdup("user,id=net0"));
        if (cfg->mac)
                argv_add(&b, "-device",
                         xasprintf("virtio-net-pci,netdev=net0,mac=%s,addr=" QEMU_PCI_SLOT_NET ",romfile=", cfg->mac));
        else
                argv_add(&b, "-device", xstrdup("virtio-net-pci,netdev=net0,addr=" QEMU_PCI_SLOT_NET ",romfile="));

        if (flags & QEMU_ARGV_SLOT)
                argv_add(&b, "--preconfig", NULL);
        if (flags & (QEMU_ARGV_INCOMING | QEMU_ARGV_SLOT)) {
                argv_add(&b, "-incoming", xstrdup("defer"));
                /* stay paused after loading whatever run state was saved; the driver decides */
                argv_add(&b, "-S", NULL);
        }

        *ret = b.v;
        return 0;
}
