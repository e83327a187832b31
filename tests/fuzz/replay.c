/* The replay driver: runs a harness's LLVMFuzzerTestOneInput once on every file named on the
 * command line, or in a directory named there (a corpus, tests/fuzz/corpus/NAME/), in sorted
 * order. Built with each harness in the normal builds (gcc, the ASan build of `make test`), so
 * every input the fuzzer ever kept stays a regression test. Fails when no input was found (a
 * corpus gone missing must not pass silently); a crash, a sanitizer report or a broken
 * invariant fails it by ending the process. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "fuzz.h"

static int run_file(const char *path) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = file_read(path, &data, &len);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return r;
        }
        /* an exact-size copy, as libFuzzer passes it: ASan sees a read past the end */
        _cleanup_free_ uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
                abort();
        memcpy(copy, data, len);
        LLVMFuzzerTestOneInput(copy, len);
        return 0;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Runs every regular file of dir; the count into *n. */
static int run_dir(const char *dir, size_t *n) {
        DIR *d = opendir(dir);
        if (!d) {
                fprintf(stderr, "%s: %s\n", dir, strerror(errno));
                return -errno;
        }
        char **names = NULL;
        size_t count = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                char **slot = array_append(&names, &count, sizeof *names);
                *slot = xasprintf("%s/%s", dir, e->d_name);
        }
        closedir(d);
        qsort(names, count, sizeof *names, name_cmp);
        int r = 0;
        for (size_t i = 0; i < count; i++) {
                struct stat st;
                if (r >= 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
                        r = run_file(names[i]);
                        (*n)++;
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv) {
        size_t n = 0;
        for (int i = 1; i < argc; i++) {
                struct stat st;
                bool dir = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode);
                if ((dir ? run_dir(argv[i], &n) : run_file(argv[i])) < 0)
                        return 1;
                n += !dir;
        }
        printf("%zu inputs replayed\n", n);
        return n > 0 ? 0 : 1;
}
