/* Replays fuzz inputs without libFuzzer (any compiler): a main that feeds
 * every file named on the command line — or found in a directory named on
 * it, in name order — to the target's LLVMFuzzerTestOneInput, once each.
 * A crash, sanitizer report or contract abort fails the run, so ctest
 * turns every committed seed and every saved reproducer
 * (tests/fuzz/regressions/<target>/) into a regression test.
 * A target that keeps state across inputs (fuzz_router) may define
 * plat_fuzz_teardown(): it is called after each file, so each file runs
 * on a fresh start. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);
__attribute__((weak)) void plat_fuzz_teardown(void);

static unsigned g_files;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", path);
        return -1;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    /* Exact-size copy so ASan catches a read past the input's end. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    if (plat_fuzz_teardown)
        plat_fuzz_teardown();
    g_files++;
    return 0;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    struct dirent **list = NULL;
    int n = scandir(path, &list, NULL, name_cmp);
    if (n < 0) {
        perror(path);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, list[i]->d_name);
        struct stat es;
        /* Dot files (.gitkeep, README) are not inputs. */
        if (list[i]->d_name[0] != '.' && stat(full, &es) == 0 && S_ISREG(es.st_mode) &&
            strcmp(list[i]->d_name, "README.md") != 0 && run_file(full) != 0)
            rc = -1;
        free(list[i]);
    }
    free(list);
    return rc;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    int rc = 0;
    for (int i = 1; i < argc; i++)
        if (run_path(argv[i]) != 0)
            rc = 1;
    fprintf(stderr, "replay: %u inputs, %s\n", g_files, rc ? "errors" : "all passed");
    return rc;
}
