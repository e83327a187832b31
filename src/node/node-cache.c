/* Image files on a node: rebuilt once from the chunk cache into DATA/images/NAME/FILE (QEMU
 * needs plain files for -kernel, -initrd and a backing disk) and shared by every VM of the
 * image; FILE.digest records which manifest a file was rebuilt from. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "node/node-internal.h"

char *node_cache_image_path(node_t *n, const char *image, const char *file) {
        return xasprintf("%s/images/%s/%s", n->data, image, file);
}

/* FILE.digest beside an image file names the manifest it was rebuilt from. */
static bool marker_matches(const char *path, const char *digest) {
        _cleanup_free_ char *marker = xasprintf("%s.digest", path);
        _cleanup_free_ char *content = NULL;
        if (file_read(marker, &content, NULL) < 0)
                return false;
        return strncmp(content, digest, 64) == 0 && file_exists(path);
}

int node_cache_image(node_t *n, const json_t *image, char **ret_msg) {
        const char *name = json_string_value(json_object_get(image, "name"));
        const json_t *files = json_object_get(image, "files");
        if (!name || !name_is_valid(name) || !json_is_object(files)) {
                *ret_msg = xstrdup("malformed image description");
                return -EINVAL;
        }
        pthread_mutex_lock(&n->cache_lock);
        int r = 0;
        const char *file;
        const json_t *info;
        json_object_foreach((json_t *)files, file, info) {
                const char *digest = json_string_value(json_object_get(info, "digest"));
                if (!streq(file, "vmlinuz") && !streq(file, "initrd.img") && !streq(file, "disk")) {
                        *ret_msg = xasprintf("bad image file name \"%s\"", file);
                        r = -EINVAL;
                        break;
                }
                if (!bundle_sha256_is_valid(digest)) {
                        *ret_msg = xasprintf("image file %s has no valid digest", file);
                        r = -EINVAL;
                        break;
                }
                _cleanup_free_ char *path = node_cache_image_path(n, name, file);
                if (marker_matches(path, digest)) {
                        /* in use again: the cache's eviction goes by the image dir's mtime */
                        _cleanup_free_ char *dir = xasprintf("%s/images/%s", n->data, name);
                        (void)!utimensat(AT_FDCWD, dir, NULL, 0);
                        continue;
                }
                _cleanup_free_ char *dir = xasprintf("%s/images/%s", n->data, name);
                mkdir_p(dir, 0755);
                nest_transfer_stats_t st = { 0 };
                /* images are kept in the Nest as version 0 of their name */
                r = node_nest_pull_to_path(n, n->oracle, name, 0, file, info, path, &st, NULL, NULL, ret_msg);
                if (r < 0)
                        break;
                _cleanup_free_ char *marker = xasprintf("%s.digest", path);
                r = file_write_atomic(marker, digest, 64);
                if (r < 0) {
                        *ret_msg = xasprintf("cannot write %s: %s", marker, strerror(-r));
                        break;
                }
                log_info("cached image %s file %s (%llu bytes moved)", name, file,
                         (unsigned long long)st.bytes_transferred);
        }
        pthread_mutex_unlock(&n->cache_lock);
        return r;
}
