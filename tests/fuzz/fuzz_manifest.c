/* Fuzz target: the plugin manifest validator (pd_manifest_load), which
 * reads <package>/manifest.json of a package an operator registers. The
 * input is the manifest's bytes, written into a package directory that
 * holds a few entry candidates: regular files (the examples' libraries,
 * main.py, lib/plugin.so), a directory, a symlink inside the package and
 * one pointing out of it. Checks the contract of platformd/package.h: a
 * refusal leaves the struct zeroed with a reason; an accepted manifest has
 * every required field, an entry that is a regular file inside the
 * package, valid semver, and its http patterns and abilities consistent. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "package.h"
#include "plat/log.h"

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz_manifest: contract broken: %s (%s:%d)\n", #cond,     \
                    __FILE__, __LINE__);                                               \
            abort();                                                                   \
        }                                                                              \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[64];
static char g_manifest[128];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    if (g_dir[0])
        nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void touch(const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "x", 1) == 1);
    close(fd);
}

static void setup(void)
{
    plat_log_set_level(PLAT_LOG_ERR);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%.40s/fuzz-manifest-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(g_dir) != NULL);
    atexit(cleanup);
    static const char *const files[] = {"libhello.so", "libcounter.so", "libcrashy.so",
                                        "libslowstart.so", "main.py", "plugin.so"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        touch(files[i]);
    char path[256];
    snprintf(path, sizeof path, "%s/lib", g_dir);
    CHECK(mkdir(path, 0755) == 0);
    touch("lib/plugin.so");
    snprintf(path, sizeof path, "%s/dir", g_dir);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/inside.so", g_dir);
    CHECK(symlink("lib/plugin.so", path) == 0);
    snprintf(path, sizeof path, "%s/outside.so", g_dir);
    CHECK(symlink("/etc/hostname", path) == 0);
    snprintf(g_manifest, sizeof g_manifest, "%s/" PD_MANIFEST_FILE, g_dir);
}

static void check_accepted(const pd_manifest_t *m)
{
    CHECK(m->id && m->version && m->language && m->runtime_version && m->entry);
    CHECK(pd_semver_valid(m->version));
    int cmp = 99;
    CHECK(pd_semver_compare(m->version, m->version, &cmp) == 0 && cmp == 0);
    CHECK(pd_semver_compare(m->version, "0.0.0", &cmp) == 0 && cmp >= 0);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", g_dir, m->entry);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
    char *real = realpath(path, NULL), *root = realpath(g_dir, NULL);
    CHECK(real && root && strncmp(real, root, strlen(root)) == 0);
    free(real);
    free(root);
    CHECK(m->n_http == 0 || m->http);
    for (size_t i = 0; i < m->n_http; i++)
        CHECK(m->http[i] && strchr(m->http[i], ':'));
    /* The matcher on names the patterns may or may not cover. */
    pd_manifest_http_allowed(m, "api.example.com", 443);
    pd_manifest_http_allowed(m, "EXAMPLE.com", 80);
    pd_manifest_http_allowed(m, "", 0);
    for (size_t i = 0; i < m->n_abilities; i++) {
        const pd_ability_t *a = &m->abilities[i];
        CHECK(a->name && a->spec);
        if (a->kind == PD_ABILITY_SERVICE)
            CHECK(a->port >= 1 && a->port <= 65535 && a->health_path &&
                  a->health_path[0] == '/');
        else
            CHECK(a->kind == PD_ABILITY_TASK && a->port == 0 && !a->health_path);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(m->abilities[j].name, a->name) != 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_dir[0])
        setup();
    int fd = open(g_manifest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, data, size) == (ssize_t)size);
    close(fd);

    pd_manifest_t m;
    char why[512];
    int rc = pd_manifest_load(g_dir, &m, why, sizeof why);
    if (rc == 0) {
        check_accepted(&m);
        pd_manifest_free(&m);
    } else {
        static const pd_manifest_t zero;
        CHECK(memcmp(&m, &zero, sizeof m) == 0);
        CHECK(why[0] != '\0');
        CHECK(rc == -EINVAL || rc == -EFBIG || rc == -ENOMEM);
        CHECK(rc != -EFBIG || size > PD_MANIFEST_MAX_BYTES);
    }
    return 0;
}
