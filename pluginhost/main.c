/* pluginhost: runs plugin code in its own process.
 *   by hand:        pluginhost --dev --platform EP [--host-id ID]
 *   from hostbootd: pluginhost --platform EP --host-id ID --hostboot HB --mode MODE
 *                              [--platform-lost-exit-ms N] */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "host.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pluginhost --dev --platform ENDPOINT [--host-id host-<uuid>] [--log-level L]\n"
            "       pluginhost --platform ENDPOINT --host-id host-<uuid> --hostboot hostboot-<name>\n"
            "                  --mode highPerformance|powerSave [--platform-lost-exit-ms N]\n"
            "  --dev                     developer mode: started by hand, registers by itself\n"
            "  --platform EP             the platform's bus, e.g. tcp://127.0.0.1:7700\n"
            "  --host-id ID              this host's id (--dev default: a new random one)\n"
            "  --hostboot ID             the hostboot that spawned this host\n"
            "  --mode MODE               host mode given by the platform\n"
            "  --platform-lost-exit-ms N exit after losing the platform for N ms (0 = never)\n"
            "  --log-level LEVEL         err|warning|notice|info|debug (default info)\n");
}

static int usage_error(const char *what, const char *value)
{
    plat_log_err("main", "%s%s%s", what, value ? ": " : "", value ? value : "");
    usage(stderr);
    return EX_USAGE;
}

int main(int argc, char **argv)
{
    plat_log_init("pluginhost");
    /* A closed log pipe or peer must be an error return, not a death. */
    signal(SIGPIPE, SIG_IGN);
    static const struct option opts[] = {
        {"dev", no_argument, NULL, 'd'},
        {"platform", required_argument, NULL, 'p'},
        {"host-id", required_argument, NULL, 'i'},
        {"hostboot", required_argument, NULL, 'b'},
        {"mode", required_argument, NULL, 'm'},
        {"platform-lost-exit-ms", required_argument, NULL, 'x'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool dev = false;
    const char *platform = NULL, *host_id = NULL, *log_level = NULL, *hostboot = NULL,
               *mode = NULL;
    unsigned long long lost_exit_ms = 0;
    int c;
    while ((c = getopt_long(argc, argv, "dp:i:b:m:x:l:Vh", opts, NULL)) != -1) {
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
        case 'b':
            hostboot = optarg;
            break;
        case 'm':
            mode = optarg;
            break;
        case 'x': {
            char *end = NULL;
            lost_exit_ms = strtoull(optarg, &end, 10);
            if (!*optarg || *end || optarg[0] == '-')
                return usage_error("bad --platform-lost-exit-ms", optarg);
            break;
        }
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
    if (optind < argc)
        return usage_error("unexpected argument", argv[optind]);
    if (!platform)
        return usage_error("--platform is required (e.g. tcp://127.0.0.1:7700)", NULL);
    if (log_level && plat_log_level_from_name(log_level) < 0)
        return usage_error("bad --log-level (use err, warning, notice, info or debug)", log_level);
    if (log_level)
        plat_log_set_level((plat_log_level_t)plat_log_level_from_name(log_level));
    if (host_id && plat_id_kind(host_id) != PLAT_ID_HOST)
        return usage_error("bad --host-id: must be host-<uuid> with a lowercase canonical UUID",
                           host_id);
    if (dev) {
        if (hostboot || (mode && strcmp(mode, "dev") != 0))
            return usage_error("--dev hosts have no --hostboot and no other --mode", NULL);
        mode = "dev";
        hostboot = "";
    } else {
        if (!host_id)
            return usage_error("--host-id is required unless --dev", NULL);
        if (!hostboot || plat_id_kind(hostboot) != PLAT_ID_HOSTBOOT)
            return usage_error("--hostboot hostboot-<name> is required unless --dev", hostboot);
        if (!mode || (strcmp(mode, "highPerformance") != 0 && strcmp(mode, "powerSave") != 0))
            return usage_error("--mode must be highPerformance or powerSave unless --dev", mode);
    }
    char generated[PLAT_ID_MAX + 1];
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
    ph_host_opts_t ho = {
        .host_id = host_id,
        .platform_address = platform,
        .mode = mode,
        .dev = dev,
        .hostboot = hostboot,
        .platform_lost_exit_ms = lost_exit_ms,
    };
    int rc = ph_host_start(&h, &loop, &ho);
    plat_daemon_run(&loop);
    if (rc != 0)
        return 1;
    plat_log_notice("main", "pluginhost stopped id=%s", host_id);
    return h.exit_code;
}
