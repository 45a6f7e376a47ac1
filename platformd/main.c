/* platformd: the orchestrator. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "platformd.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: platformd [--config FILE] [--log-level LEVEL] [--version] [--help]\n"
                 "  --config FILE      JSON configuration (docs/config-platformd.md);\n"
                 "                     without it the embedded defaults are used\n"
                 "  --log-level LEVEL  err|warning|notice|info|debug (overrides the config)\n");
}

int main(int argc, char **argv)
{
    plat_log_init("platformd");
    /* A closed log pipe or peer must be an error return, not a death. */
    signal(SIGPIPE, SIG_IGN);
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *log_level = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'l':
            log_level = optarg;
            break;
        case 'V':
            printf("platformd %s\n", PLAT_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind < argc) {
        plat_log_err("main", "unexpected argument: %s", argv[optind]);
        usage(stderr);
        return EX_USAGE;
    }
    if (log_level && plat_log_level_from_name(log_level) < 0) {
        plat_log_err("main", "bad --log-level %s: use err, warning, notice, info or debug",
                     log_level);
        return EX_USAGE;
    }

    pd_config_t cfg;
    plat_cfg_error_t err;
    int rc = pd_config_load(config_path, &cfg, &err);
    if (rc < 0) {
        char buf[1024];
        plat_cfg_error_format(&err, buf, sizeof buf);
        plat_log_err("main", "config error: %s", buf);
        return PLAT_EX_CONFIG;
    }
    plat_log_set_level(
        (plat_log_level_t)plat_log_level_from_name(log_level ? log_level : cfg.log.level));

    uv_loop_t loop;
    uv_loop_init(&loop);
    pd_t pd;
    rc = pd_start(&pd, &loop, &cfg);
    if (rc == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    /* After a failed start only the loop's own resources remain. */
    uv_run(&loop, UV_RUN_DEFAULT);
    int close_rc = uv_loop_close(&loop);
    if (close_rc != 0)
        plat_log_warn("main", "loop closed with handles still open: %s", uv_strerror(close_rc));
    if (rc == 0)
        plat_log_notice("main", "platformd stopped boot_id=%s", pd.boot_id);
    pd_registry_destroy(&pd.reg);
    pd_config_free(&cfg);
    return rc == 0 ? 0 : 1;
}
