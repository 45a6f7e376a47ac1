/* pluginhost: runs plugin code in its own process. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

#include "host.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pluginhost --dev --platform ENDPOINT [--host-id host-<uuid>] "
            "[--log-level LEVEL]\n"
            "  --dev              developer mode: started by hand, registers by itself\n"
            "  --platform EP      the platform's bus, e.g. tcp://127.0.0.1:7700\n"
            "  --host-id ID       this host's id (default: a new random host-<uuid>)\n"
            "  --log-level LEVEL  err|warning|notice|info|debug (default info)\n");
}

int main(int argc, char **argv)
{
    plat_log_init("pluginhost");
    static const struct option opts[] = {
        {"dev", no_argument, NULL, 'd'},
        {"platform", required_argument, NULL, 'p'},
        {"host-id", required_argument, NULL, 'i'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool dev = false;
    const char *platform = NULL, *host_id = NULL, *log_level = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "dp:i:l:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dev = true;
            break;
        case 'p':
            platform = optarg;
            break;
        case 'i':
            host_id = optarg;
            break;
        case 'l':
            log_level = optarg;
            break;
        case 'V':
            printf("pluginhost %s\n", PLAT_VERSION);
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
        return EX_USAGE;
    }
    if (!dev) {
        plat_log_err("main", "--dev is required: the spawned host modes are not available yet");
        usage(stderr);
        return EX_USAGE;
    }
    if (!platform) {
        plat_log_err("main", "--platform is required (e.g. tcp://127.0.0.1:7700)");
        return EX_USAGE;
    }
    if (log_level && plat_log_level_from_name(log_level) < 0) {
        plat_log_err("main", "bad --log-level %s: use err, warning, notice, info or debug",
                     log_level);
        return EX_USAGE;
    }
    if (log_level)
        plat_log_set_level((plat_log_level_t)plat_log_level_from_name(log_level));
    char generated[PLAT_ID_MAX + 1];
    if (host_id && plat_id_kind(host_id) != PLAT_ID_HOST) {
        plat_log_err("main", "bad --host-id \"%s\": must be host-<uuid> with a lowercase "
                             "canonical UUID",
                     host_id);
        return EX_USAGE;
    }
    if (!host_id) {
        char uuid[PLAT_UUID_LEN + 1];
        if (plat_uuid_new(uuid) < 0) {
            plat_log_err("main", "cannot make a host id");
            return 1;
        }
        snprintf(generated, sizeof generated, "%s%s", PLAT_HOST_PREFIX, uuid);
        host_id = generated;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    ph_host_t h;
    ph_host_opts_t ho = {.host_id = host_id, .platform_address = platform, .mode = "dev", .dev = true};
    int rc = ph_host_start(&h, &loop, &ho);
    uv_run(&loop, UV_RUN_DEFAULT);
    int close_rc = uv_loop_close(&loop);
    if (close_rc != 0)
        plat_log_warn("main", "loop closed with handles still open: %s", uv_strerror(close_rc));
    if (rc == 0)
        plat_log_notice("main", "pluginhost stopped id=%s", host_id);
    return rc == 0 ? 0 : 1;
}
