/* The node's local copies of Nest data: image files (kept, shared by all VMs of the image) and
 * bundle files (fetched into a VM's directory). Everything received is verified against the
 * SHA-256 the Oracle named before it is used; a verified image file is marked with FILE.sha256
 * so it is hashed once, not at every boot. */
#include <openssl/evp.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "net/http-client.h"
#include "node/node-internal.h"

#define TRANSFER_TIMEOUT_MS (10 * 60 * 1000)

char *node_image_path(node_t *n, const char *image, const char *file) {
        return xasprintf("%s/images/%s/%s", n->data, image, file);
}

static bool marker_matches(const char *path, const char *sha) {
        _cleanup_free_ char *marker = xasprintf("%s.sha256", path);
        _cleanup_free_ char *content = NULL;
        if (file_read(marker, &content, NULL) < 0)
                return false;
        return strncmp(content, sha, 64) == 0 && file_exists(path);
}

static int fetch_verified(const char *url, const char *dest, const json_t *info, char **ret_msg) {
        int r = http_download(url, dest, TRANSFER_TIMEOUT_MS, NULL, NULL);
        if (r < 0) {
                *ret_msg = xasprintf("cannot fetch %s: %s", url, strerror(-r));
                return r == -EPROTO ? -ENOENT : -EHOSTUNREACH;
        }
        r = bundle_file_verify(dest, info);
        if (r < 0) {
                unlink(dest);
                *ret_msg = xasprintf("%s failed verification (%s): not used", url,
                                     r == -EBADMSG ? "hash or size mismatch" : strerror(-r));
                return -EBADMSG;
        }
        return 0;
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
                const char *sha = json_string_value(json_object_get(info, "sha256"));
                if (!name_is_valid(file) && !streq(file, "initrd.img")) {
                        *ret_msg = xasprintf("bad image file name \"%s\"", file);
                        r = -EINVAL;
                        break;
                }
                if (!bundle_sha256_is_valid(sha)) {
                        *ret_msg = xasprintf("image file %s has no valid sha256", file);
                        r = -EINVAL;
                        break;
                }
                _cleanup_free_ char *path = node_image_path(n, name, file);
                if (marker_matches(path, sha))
                        continue;
                _cleanup_free_ char *dir = xasprintf("%s/images/%s", n->data, name);
                mkdir_p(dir, 0755);
                _cleanup_free_ char *url = xasprintf("%s/v1/nest/images/%s/%s", n->oracle, name, file);
                r = fetch_verified(url, path, info, ret_msg);
                if (r < 0)
                        break;
                _cleanup_free_ char *marker = xasprintf("%s.sha256", path);
                r = file_write_atomic(marker, sha, 64);
                if (r < 0) {
                        *ret_msg = xasprintf("cannot write %s: %s", marker, strerror(-r));
                        break;
                }
                log_info("cached image %s file %s", name, file);
        }
        pthread_mutex_unlock(&n->cache_lock);
        return r;
}

int node_fetch_bundle_file(node_t *n, const char *vm, int64_t version, const char *file, const json_t *info,
                           const char *dest, char **ret_msg) {
        _cleanup_free_ char *url = xasprintf("%s/v1/nest/vms/%s/%lld/%s", n->oracle, vm, (long long)version, file);
        return fetch_verified(url, dest, info, ret_msg);
}

typedef struct hashing_sink {
        EVP_MD_CTX *md;
        int fd;
        uint64_t bytes;
} hashing_sink_t;

static int hashing_write(void *userdata, const void *buf, size_t len) {
        hashing_sink_t *h = userdata;
        EVP_DigestUpdate(h->md, buf, len);
        h->bytes += len;
        const char *p = buf;
        while (len > 0) {
                ssize_t w = write(h->fd, p, len);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return negative_errno();
                p += w;
                len -= (size_t)w;
        }
        return 0;
}

int node_stream_bundle_file(node_t *n, const char *vm, int64_t version, const char *file, const json_t *info, int fd,
                            char **ret_msg) {
        const char *want = json_string_value(json_object_get(info, "sha256"));
        uint64_t want_size = (uint64_t)json_integer_value(json_object_get(info, "size"));
        if (!bundle_sha256_is_valid(want)) {
                *ret_msg = xasprintf("%s of %s has no valid sha256", file, vm);
                return -EINVAL;
        }
        _cleanup_free_ char *url = xasprintf("%s/v1/nest/vms/%s/%lld/%s", n->oracle, vm, (long long)version, file);
        hashing_sink_t h = { .md = EVP_MD_CTX_new(), .fd = fd };
        if (!h.md)
                return -ENOMEM;
        EVP_DigestInit_ex(h.md, EVP_sha256(), NULL);
        int r = http_download_stream(url, TRANSFER_TIMEOUT_MS, hashing_write, &h);
        unsigned char md[32];
        unsigned int mdlen = 0;
        EVP_DigestFinal_ex(h.md, md, &mdlen);
        EVP_MD_CTX_free(h.md);
        if (r < 0) {
                *ret_msg = xasprintf("cannot fetch %s: %s", url, strerror(-r));
                return r == -EPROTO ? -ENOENT : r == -EPIPE ? -EPIPE : -EHOSTUNREACH;
        }
        char hex[65];
        for (unsigned i = 0; i < 32; i++)
                sprintf(hex + 2 * i, "%02x", md[i]);
        if (h.bytes != want_size || !streq(hex, want)) {
                *ret_msg = xasprintf("%s failed verification (hash or size mismatch): not used", url);
                return -EBADMSG;
        }
        return 0;
}

int node_upload_bundle_file(node_t *n, const char *nest, const char *vm, int64_t version, const char *file,
                            const char *path, json_t **ret_info, char **ret_msg) {
        json_t *info = NULL;
        int r = bundle_file_info(path, &info);
        if (r < 0) {
                *ret_msg = xasprintf("cannot read %s: %s", path, strerror(-r));
                return r;
        }
        _cleanup_free_ char *url = xasprintf("%s/v1/nest/vms/%s/%lld/%s?sha256=%s", nest ? nest : n->oracle, vm,
                                             (long long)version, file,
                                             json_string_value(json_object_get(info, "sha256")));
        r = http_upload(url, path, TRANSFER_TIMEOUT_MS);
        if (r < 0) {
                json_decref(info);
                *ret_msg = xasprintf("cannot store %s of %s in the Nest: %s", file, vm,
                                     r == -EPROTO ? "refused by the Nest" : strerror(-r));
                return r == -EPROTO ? -EIO : -EHOSTUNREACH;
        }
        *ret_info = info;
        return 0;
}
