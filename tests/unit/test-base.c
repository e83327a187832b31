/* Unit tests for src/base: parsing, names, files, fault injection. */
#include <stdlib.h>
#include <string.h>

#include "base/fault.h"
#include "base/util.h"
#include "tap.h"

/* VMATRIX_FAULT=file-write:2 (read once, at the first check): only the second file_write_atomic
 * fails, with -EIO, and leaves the old content; other sites never fire. */
static void test_fault(void) {
        setenv(FAULT_ENV, "file-write:2", 1);
        char dir[] = "/tmp/vmx-test-fault-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *f = xasprintf("%s/file", dir);
        CHECK(file_write_atomic(f, "one", 3) == 0);
        CHECK(file_write_atomic(f, "two", 3) == -EIO);
        _cleanup_free_ char *content = NULL;
        CHECK(file_read(f, &content, NULL) == 0 && streq(content, "one"));
        CHECK(file_write_atomic(f, "three", 5) == 0);
        CHECK(!fault_hit("store-write") && !fault_hit("http-call"));
        unsetenv(FAULT_ENV);
        CHECK(rm_rf(dir) == 0);
}

static void test_names(void) {
        CHECK(name_is_valid("web1"));
        CHECK(name_is_valid("a-b-3"));
        CHECK(!name_is_valid(""));
        CHECK(!name_is_valid("-a"));
        CHECK(!name_is_valid("Web"));
        CHECK(!name_is_valid("a/b"));
        CHECK(!name_is_valid("0123456789012345678901234567890123456789012345678901234567890123"));
}

static void test_parse(void) {
        int64_t v = 0;
        CHECK(parse_int64("128", 1, 1024, &v) == 0 && v == 128);
        CHECK(parse_int64("0", 1, 1024, &v) == -ERANGE);
        CHECK(parse_int64("12x", 1, 1024, &v) == -EINVAL);
        CHECK(parse_int64("", 1, 1024, &v) == -EINVAL);
        CHECK(parse_int64("99999999999999999999999", 1, 1024, &v) == -ERANGE);
}

static void test_files(void) {
        char dir[] = "/tmp/vmx-test-base-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *sub = xasprintf("%s/a/b/c", dir);
        CHECK(mkdir_p(sub, 0755) == 0);
        _cleanup_free_ char *f = xasprintf("%s/file", sub);
        CHECK(file_write_atomic(f, "hello", 5) == 0);
        _cleanup_free_ char *content = NULL;
        size_t len = 0;
        CHECK(file_read(f, &content, &len) == 0 && len == 5 && streq(content, "hello"));
        char hex[65];
        CHECK(file_sha256(f, hex) == 0);
        CHECK_STREQ(hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        CHECK(file_read("/nonexistent/x", &content, &len) == -ENOENT);
        CHECK(rm_rf(dir) == 0);
        CHECK(!file_exists(dir));
}

int main(void) {
        test_fault(); /* first: the variable is read once per process */
        test_names();
        test_parse();
        test_files();
        /* array_append: grows by one zeroed element each time, keeps what was there */
        {
                int64_t *arr = NULL;
                size_t n = 0;
                for (int64_t k = 0; k < 100; k++) {
                        int64_t *e = array_append(&arr, &n, sizeof *arr);
                        CHECK(*e == 0);
                        *e = k;
                }
                CHECK(n == 100 && arr[0] == 0 && arr[57] == 57 && arr[99] == 99);
                free(arr);
        }

        return tap_finish();
}
