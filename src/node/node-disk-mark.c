/* Same-RM disk reuse: the mark a save leaves on a VM's disk, taken by the next activation of
 * that bundle here (node-launch.c), and the disks kept as DATA/staged when the node lets a VM go.
 * Apart from saving and launching, which both use it, so that neither needs the other for it. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "node/node-internal.h"
#include "node/node-vm.h"

/* Same-RM disk reuse (node-internal.h). After a save into the Nest, DIR/disk.qcow2.digest names the disk manifest's
 * digest and the file's identity then (inode, mtime, size): the disk is exactly that bundle's
 * disk. An activation of that very bundle here uses the file as it is (node_disk_mark_take),
 * instead of rebuilding it from chunks. Anything that may write the disk removes the mark
 * first; a write that did not (another path, a crash) changes the mtime, and the mark is not
 * trusted. */
static char *disk_mark_path(node_t *n, const char *name) { return node_vm_file(n, name, "disk.qcow2.digest"); }

static char *disk_identity(const char *disk) {
        struct stat st;
        if (stat(disk, &st) < 0)
                return NULL;
        return xasprintf("%llu %lld.%09ld %lld", (unsigned long long)st.st_ino, (long long)st.st_mtim.tv_sec,
                         st.st_mtim.tv_nsec, (long long)st.st_size);
}

void node_disk_mark(node_t *n, const char *name, const json_t *info) {
        const char *digest = json_string_value(json_object_get(info, "digest"));
        _cleanup_free_ char *mark = disk_mark_path(n, name);
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *disk = xasprintf("%s/disk.qcow2", dir);
        _cleanup_free_ char *id = disk_identity(disk);
        unlink(mark);
        if (!bundle_sha256_is_valid(digest) || !id)
                return;
        _cleanup_free_ char *text = xasprintf("%s %s\n", digest, id);
        (void)file_write_atomic(mark, text, strlen(text));
}

bool node_disk_mark_take(node_t *n, const char *name, const char *digest) {
        _cleanup_free_ char *mark = disk_mark_path(n, name);
        _cleanup_free_ char *text = NULL;
        bool ok = file_read(mark, &text, NULL) >= 0;
        unlink(mark); /* before anything can write the disk */
        if (!ok || !digest)
                return false;
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *disk = xasprintf("%s/disk.qcow2", dir);
        _cleanup_free_ char *id = disk_identity(disk);
        _cleanup_free_ char *want = id ? xasprintf("%s %s\n", digest, id) : NULL;
        return want && streq(text, want);
}

char *node_disk_staged_path(node_t *n, const char *digest) { return xasprintf("%s/staged/%s.qcow2", n->data, digest); }

void node_disk_keep(node_t *n, const char *name) {
        _cleanup_free_ char *mark = disk_mark_path(n, name);
        _cleanup_free_ char *text = NULL;
        if (file_read(mark, &text, NULL) < 0 || strlen(text) < 64)
                return;
        _cleanup_free_ char *digest = strndup(text, 64);
        if (!bundle_sha256_is_valid(digest) || !node_disk_mark_take(n, name, digest))
                return;
        _cleanup_free_ char *dir = node_vm_dir(n, name);
        _cleanup_free_ char *disk = xasprintf("%s/disk.qcow2", dir);
        _cleanup_free_ char *staged = node_disk_staged_path(n, digest);
        _cleanup_free_ char *sdir = xasprintf("%s/staged", n->data);
        if (mkdir_p(sdir, 0700) >= 0 && rename(disk, staged) >= 0)
                log_info("vm %s: its saved disk is kept as %s for its next activation here", name, staged);
}

void node_disk_mark_drop(node_t *n, const char *name) {
        _cleanup_free_ char *mark = disk_mark_path(n, name);
        unlink(mark);
}
