/* Fuzz target: the daemons' config loading — the input is a config file,
 * loaded as platformd's (pd_config_load) and as hostbootd's
 * (hb_config_load), through the same path the daemons use (a file: here a
 * memfd, named /proc/self/fd/N). Checks the contract of plat/config.h:
 * on failure the struct is left zeroed and the error has a reason; on
 * success a second load of the same bytes gives an equal error-free
 * result and freeing zeroes the struct. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hbconfig.h"
#include "pdconfig.h"
#include "plat/plat.h"

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz_config: contract broken: %s (%s:%d)\n", #cond,       \
                    __FILE__, __LINE__);                                               \
            abort();                                                                   \
        }                                                                              \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_fd = -1;
static char g_path[64];

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return false;
    return true;
}

static void check_error(int rc, const plat_cfg_error_t *err)
{
    CHECK(rc == -EINVAL || rc == -ENOMEM);
    CHECK(err->reason[0] != '\0');
    char line[1024];
    CHECK(plat_cfg_error_format(err, line, sizeof line) > 0);
    /* A truncating buffer is still NUL-terminated. */
    char small[8];
    plat_cfg_error_format(err, small, sizeof small);
    CHECK(memchr(small, '\0', sizeof small) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_fd < 0) {
        plat_log_set_level(PLAT_LOG_ERR);
        g_fd = memfd_create("fuzz_config", MFD_CLOEXEC);
        CHECK(g_fd >= 0);
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    }
    CHECK(ftruncate(g_fd, 0) == 0);
    CHECK(pwrite(g_fd, data, size, 0) == (ssize_t)size);

    plat_cfg_error_t err;
    pd_config_t pd;
    int rc = pd_config_load(g_path, &pd, &err);
    if (rc < 0) {
        CHECK(all_zero(&pd, sizeof pd));
        check_error(rc, &err);
    } else {
        CHECK(pd.bus.endpoint && pd.http.address && pd.log.level && pd.state.dir);
        pd_config_t again;
        CHECK(pd_config_load(g_path, &again, &err) == 0);
        CHECK(strcmp(again.bus.endpoint, pd.bus.endpoint) == 0 &&
              again.bus.max_msg_size == pd.bus.max_msg_size);
        pd_config_free(&again);
        pd_config_free(&pd);
        CHECK(all_zero(&pd, sizeof pd));
    }

    hb_config_t hb;
    rc = hb_config_load(g_path, &hb, &err);
    if (rc < 0) {
        CHECK(all_zero(&hb, sizeof hb));
        check_error(rc, &err);
    } else {
        CHECK(hb.name && hb.platform.endpoint && hb.log.dir && hb.hosts.work_dir);
        for (size_t i = 0; i < hb.n_runtimes; i++)
            CHECK(hb.runtimes[i].language && hb.runtimes[i].version && hb.runtimes[i].path);
        hb_config_free(&hb);
        CHECK(all_zero(&hb, sizeof hb));
    }
    return 0;
}
