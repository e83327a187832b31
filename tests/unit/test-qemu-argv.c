/* Unit tests for the QEMU command line (src/vmm/qemu/qemu-argv.c): golden checks of the
 * important options, restore additions, file-backed RAM, escaping, config validation, and
 * that boot and restore create the same devices. */
#include <string.h>

#include "base/util.h"
#include "tap.h"
#include "vmm/qemu/qemu-argv.h"

/* The value following option opt, at or after index from (to find repeated options). */
static const char *opt_value(char **argv, const char *opt, int nth) {
        for (size_t i = 1; argv[i]; i++)
                if (streq(argv[i], opt) && nth-- == 0)
                        return argv[i + 1];
        return NULL;
}

static bool has_arg(char **argv, const char *arg) {
        for (size_t i = 0; argv[i]; i++)
                if (streq(argv[i], arg))
                        return true;
        return false;
}

static size_t argc_of(char **argv) {
        size_t n = 0;
        while (argv[n])
                n++;
        return n;
}

static vmm_config_t base_config(void) {
        return (vmm_config_t){
                .name = "web1",
                .run_dir = "/run/vmx/web1",
                .memory_mib = 256,
                .vcpus = 2,
                .mac = "52:54:00:ab:cd:ef",
                .kernel = "/img/vmlinuz",
                .initrd = "/img/initrd.img",
                .cmdline = "console=ttyS0 quiet, root=/dev/vda",
                .disk = "/nest/web1/disk.qcow2",
                .disk_format = "qcow2",
                .fwd_host = "127.0.0.1",
                .fwd_port = 8080,
                .accel = "tcg",
        };
}

static void test_golden(void) {
        vmm_config_t cfg = base_config();
        _cleanup_strv_free_ char **argv = NULL;
        CHECK(qemu_argv_build(&cfg, NULL, 0, NULL, &argv) == 0);
        if (!argv)
                return;
        CHECK_STREQ(argv[0], "qemu-system-x86_64");
        CHECK(has_arg(argv, "-nodefaults"));
        CHECK(has_arg(argv, "-no-user-config"));
        CHECK(str_startswith(opt_value(argv, "-sandbox", 0), "on"));
        CHECK_STREQ(opt_value(argv, "-name", 0), "guest=web1");
        CHECK_STREQ(opt_value(argv, "-machine", 0), "pc,accel=tcg");
        CHECK(opt_value(argv, "-machine", 1) == NULL);
        CHECK_STREQ(opt_value(argv, "-cpu", 0), "max");
        CHECK_STREQ(opt_value(argv, "-m", 0), "256");
        CHECK_STREQ(opt_value(argv, "-smp", 0), "2");
        CHECK_STREQ(opt_value(argv, "-display", 0), "none");
        CHECK_STREQ(opt_value(argv, "-vga", 0), "none");
        CHECK_STREQ(opt_value(argv, "-vnc", 0), "unix:/run/vmx/web1/vnc.sock"); /* never a TCP port */
        CHECK_STREQ(opt_value(argv, "-device", 0), "VGA,vgamem_mb=1,addr=0x2");
        CHECK(opt_value(argv, "-vnc", 1) == NULL);
        CHECK_STREQ(opt_value(argv, "-pidfile", 0), "/run/vmx/web1/qemu.pid");
        CHECK_STREQ(opt_value(argv, "-qmp", 0), "unix:/run/vmx/web1/qmp.sock,server=on,wait=off");
        CHECK_STREQ(opt_value(argv, "-chardev", 0),
                    "socket,id=ser0,path=/run/vmx/web1/console.sock,server=on,wait=off,"
                    "logfile=/run/vmx/web1/console.log,logappend=on");
        CHECK_STREQ(opt_value(argv, "-serial", 0), "chardev:ser0");
        CHECK_STREQ(opt_value(argv, "-kernel", 0), "/img/vmlinuz");
        CHECK_STREQ(opt_value(argv, "-initrd", 0), "/img/initrd.img");
        /* -append is a plain string: commas stay as they are */
        CHECK_STREQ(opt_value(argv, "-append", 0), "console=ttyS0 quiet, root=/dev/vda");
        CHECK_STREQ(opt_value(argv, "-blockdev", 0),
                    "driver=qcow2,node-name=disk0,file.driver=file,file.filename=/nest/web1/disk.qcow2");
        CHECK_STREQ(opt_value(argv, "-device", 1), "virtio-blk-pci,drive=disk0,addr=0x3");
        CHECK_STREQ(opt_value(argv, "-chardev", 1), "socket,id=agent0,path=/run/vmx/web1/agent.sock,server=on,wait=off");
        CHECK_STREQ(opt_value(argv, "-device", 2), "virtio-serial-pci,id=vser0,addr=0x5");
        CHECK_STREQ(opt_value(argv, "-device", 3), "virtserialport,bus=vser0.0,chardev=agent0,name=vmx.agent");
        CHECK_STREQ(opt_value(argv, "-device", 4), "virtio-balloon-pci,id=balloon0,addr=0x6");
        CHECK_STREQ(opt_value(argv, "-netdev", 0), "user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80");
        CHECK_STREQ(opt_value(argv, "-device", 5), "virtio-net-pci,netdev=net0,mac=52:54:00:ab:cd:ef,addr=0x4,romfile=");
        CHECK(!has_arg(argv, "-incoming"));
        CHECK(!has_arg(argv, "-S"));
        CHECK(!has_arg(argv, "-object"));
}

static void test_kvm_and_binary(void) {
        vmm_config_t cfg = base_config();
        cfg.accel = "kvm";
        cfg.machine = "pc-i440fx-7.2";
        _cleanup_strv_free_ char **argv = NULL;
        CHECK(qemu_argv_build(&cfg, "/opt/qemu/bin/qemu-system-x86_64", 0, NULL, &argv) == 0);
        if (!argv)
                return;
        CHECK_STREQ(argv[0], "/opt/qemu/bin/qemu-system-x86_64");
        CHECK_STREQ(opt_value(argv, "-machine", 0), "pc-i440fx-7.2,accel=kvm");
        CHECK_STREQ(opt_value(argv, "-cpu", 0), "host");
}

static void test_restore_same_devices(void) {
        vmm_config_t cfg = base_config();
        _cleanup_strv_free_ char **boot = NULL, **restore = NULL;
        CHECK(qemu_argv_build(&cfg, NULL, 0, NULL, &boot) == 0);
        CHECK(qemu_argv_build(&cfg, NULL, QEMU_ARGV_INCOMING, NULL, &restore) == 0);
        if (!boot || !restore)
                return;
        size_t nb = argc_of(boot), nr = argc_of(restore);
        /* restore = boot + "-incoming defer -S": every device option is identical */
        CHECK(nr == nb + 3);
        bool same = true;
        for (size_t i = 0; i < nb && i < nr; i++)
                same = same && streq(boot[i], restore[i]);
        CHECK(same);
        CHECK_STREQ(opt_value(restore, "-incoming", 0), "defer");
        CHECK(has_arg(restore, "-S"));
}

static void expect_bad(vmm_config_t cfg, const char *field, int error);

static void test_memory_backend(void) {
        vmm_config_t cfg = base_config();
        cfg.memory_path = "/dev/shm/vmx/web1.ram";
        _cleanup_strv_free_ char **argv = NULL;
        CHECK(qemu_argv_build(&cfg, NULL, 0, NULL, &argv) == 0);
        if (!argv)
                return;
        CHECK_STREQ(opt_value(argv, "-object", 0),
                    "memory-backend-file,id=ram0,size=256M,mem-path=/dev/shm/vmx/web1.ram,share=on");
        CHECK_STREQ(opt_value(argv, "-numa", 0), "node,nodeid=0,memdev=ram0");
        CHECK(opt_value(argv, "-machine", 1) == NULL);
        CHECK_STREQ(opt_value(argv, "-m", 0), "256");

        /* private: mapped copy-on-write */
        cfg.memory_private = true;
        _cleanup_strv_free_ char **priv = NULL;
        CHECK(qemu_argv_build(&cfg, NULL, 0, NULL, &priv) == 0);
        if (priv)
                CHECK_STREQ(opt_value(priv, "-object", 0),
                            "memory-backend-file,id=ram0,size=256M,mem-path=/dev/shm/vmx/web1.ram,share=off");
        cfg.memory_path = NULL;
        expect_bad(cfg, "memory_private", -EINVAL);
}

/* A warm slot: the VM's command line without RAM file and disk file, waiting in preconfig. */
static void test_slot(void) {
        vmm_config_t cfg = base_config();
        cfg.disk = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        CHECK(qemu_argv_build(&cfg, NULL, QEMU_ARGV_SLOT, NULL, &argv) == 0);
        if (!argv)
                return;
        CHECK(has_arg(argv, "--preconfig"));
        CHECK_STREQ(opt_value(argv, "-incoming", 0), "defer");
        CHECK(has_arg(argv, "-S"));
        CHECK(!has_arg(argv, "-object"));
        CHECK(!has_arg(argv, "-blockdev"));
        /* the disk device is there, its drive comes later */
        CHECK_STREQ(opt_value(argv, "-device", 1), "virtio-blk-pci,drive=disk0,addr=0x3");
}

static void test_minimal_and_escaping(void) {
        vmm_config_t cfg = {
                .name = "a,b",
                .run_dir = "/tmp/x,y",
                .memory_mib = 128,
                .vcpus = 1,
                .disk = "/d,isk.raw",
                .disk_format = "raw",
                .accel = "tcg",
        };
        _cleanup_strv_free_ char **argv = NULL;
        CHECK(qemu_argv_build(&cfg, NULL, 0, NULL, &argv) == 0);
        if (!argv)
                return;
        CHECK_STREQ(opt_value(argv, "-name", 0), "guest=a,,b");
        CHECK_STREQ(opt_value(argv, "-qmp", 0), "unix:/tmp/x,,y/qmp.sock,server=on,wait=off");
        CHECK_STREQ(opt_value(argv, "-pidfile", 0), "/tmp/x,y/qemu.pid");
        CHECK_STREQ(opt_value(argv, "-blockdev", 0), "driver=raw,node-name=disk0,file.driver=file,file.filename=/d,,isk.raw");
        /* no forward, no MAC: the NIC is still there, in the same slot */
        CHECK_STREQ(opt_value(argv, "-netdev", 0), "user,id=net0");
        CHECK_STREQ(opt_value(argv, "-device", 5), "virtio-net-pci,netdev=net0,addr=0x4,romfile=");
        CHECK(!has_arg(argv, "-kernel"));
        CHECK(!has_arg(argv, "-append"));

        _cleanup_free_ char *e = qemu_opt_escape(",,a,");
        CHECK_STREQ(e, ",,,,a,,");
}

static void expect_bad(vmm_config_t cfg, const char *field, int error) {
        const char *bad = NULL;
        char **argv = NULL;
        int r = qemu_argv_build(&cfg, NULL, 0, &bad, &argv);
        CHECK(r == error);
        CHECK(argv == NULL);
        CHECK_STREQ(bad, field);
        strv_free(argv);
}

static void test_validation(void) {
        vmm_config_t c = base_config();
        c.name = NULL;
        expect_bad(c, "name", -EINVAL);
        c = base_config();
        c.run_dir = "";
        expect_bad(c, "run_dir", -EINVAL);
        c = base_config();
        char longdir[120];
        memset(longdir, 'd', sizeof longdir - 1);
        longdir[0] = '/';
        longdir[sizeof longdir - 1] = 0;
        c.run_dir = longdir;
        expect_bad(c, "run_dir", -ENAMETOOLONG);
        c = base_config();
        c.memory_mib = 0;
        expect_bad(c, "memory_mib", -EINVAL);
        c = base_config();
        c.vcpus = 0;
        expect_bad(c, "vcpus", -EINVAL);
        const char *bad_macs[] = { "52:54:00:ab:cd", "52:54:00:ab:cd:eg", "52-54-00-ab-cd-ef", "01:00:5e:00:00:01",
                                   "52:54:00:ab:cd:ef:00" };
        for (size_t i = 0; i < ELEMENTSOF(bad_macs); i++) {
                c = base_config();
                c.mac = bad_macs[i];
                expect_bad(c, "mac", -EINVAL);
        }
        c = base_config();
        c.kernel = NULL;
        expect_bad(c, "kernel", -EINVAL); /* initrd/cmdline without a kernel */
        c = base_config();
        c.disk_format = "vmdk";
        expect_bad(c, "disk_format", -EINVAL);
        c = base_config();
        c.fwd_host = "localhost";
        expect_bad(c, "fwd_host", -EINVAL);
        c = base_config();
        c.fwd_host = "127.0.0.1,hostfwd=tcp::22-:22";
        expect_bad(c, "fwd_host", -EINVAL);
        c = base_config();
        c.fwd_port = 0;
        expect_bad(c, "fwd_port", -EINVAL);
        c = base_config();
        c.fwd_port = 65536;
        expect_bad(c, "fwd_port", -EINVAL);
        c = base_config();
        c.accel = "hvf";
        expect_bad(c, "accel", -EINVAL);
        c = base_config();
        c.accel = NULL;
        expect_bad(c, "accel", -EINVAL);
        c = base_config();
        c.machine = "pc,accel=kvm";
        expect_bad(c, "machine", -EINVAL);
        c = base_config();
        c.name = "web\n1";
        expect_bad(c, "name", -EINVAL);
        char **argv = NULL;
        CHECK(qemu_argv_build(NULL, NULL, 0, NULL, &argv) == -EINVAL && !argv);
}

static void test_run_path(void) {
        _cleanup_free_ char *p = qemu_run_path("/run/x", QEMU_RUN_QMP);
        CHECK_STREQ(p, "/run/x/qmp.sock");
}

/* Confinement is not on the command line: a confined QEMU gets the same argv (so a state saved
 * by one restores in the other, and a slot's shape does not depend on it), and every QEMU gets
 * the whole seccomp sandbox, confined or not (docs/confinement.md). */
static void test_confined_same_argv(void) {
        vmm_config_t cfg = base_config();
        char *cgroups[] = { "/sys/fs/cgroup/vmatrix/rm1-00000000/web1", NULL };
        vmm_confine_t c = { .uid = 1610612736, .gid = 1610612736, .jail_dir = "/run/vmatrix/jail", .cgroups = cgroups };
        _cleanup_strv_free_ char **plain = NULL, **confined = NULL;
        CHECK(qemu_argv_build(&cfg, NULL, 0, NULL, &plain) == 0);
        cfg.confine = &c;
        CHECK(qemu_argv_build(&cfg, NULL, 0, NULL, &confined) == 0);
        if (!plain || !confined)
                return;
        CHECK(argc_of(plain) == argc_of(confined));
        for (size_t i = 0; plain[i] && confined[i]; i++)
                CHECK_STREQ(confined[i], plain[i]);
        CHECK_STREQ(opt_value(confined, "-sandbox", 0), "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
        CHECK(!has_arg(confined, "-runas"));
}

int main(void) {
        test_confined_same_argv();
        test_golden();
        test_kvm_and_binary();
        test_restore_same_devices();
        test_memory_backend();
        test_slot();
        test_minimal_and_escaping();
        test_validation();
        test_run_path();
        return tap_finish();
}
