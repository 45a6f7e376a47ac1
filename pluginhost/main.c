/* pluginhost: runs plugin code in its own process.
 *   by hand:        pluginhost --dev --platform EP [--host-id ID]
 *                              [--key-file F --platform-key-file F]
 *   from hostbootd: pluginhost --platform EP --host-id ID --hostboot HB --mode MODE
 *                              [--platform-lost-exit-ms N] [--key-fd N --platform-key K]
 * The CURVE secret key never comes in argv or the environment: from an
 * inherited pipe (--key-fd, hostbootd) or a 0600 file (--key-file, dev). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sysexits.h>

#include "host.h"
#include "plat/keys.h"

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
            "  --log-level LEVEL         err|warning|notice|info|debug (default info)\n"
            "  --key-fd N                read this host's CURVE secret key from fd N (hostbootd)\n"
            "  --platform-key Z85        the platform's CURVE public key\n"
            "  --key-file FILE           dev: this host's CURVE secret key (mode 0600); its\n"
            "                            public key must be authorized for --host-id in\n"
            "                            platformd's bus.authorized_keys_file\n"
            "  --platform-key-file FILE  dev: the platform's CURVE public key\n"
            "  without keys the host connects in plaintext (platformd bus.curve false)\n");
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
        {"key-fd", required_argument, NULL, 'K'},
        {"platform-key", required_argument, NULL, 'P'},
        {"key-file", required_argument, NULL, 'k'},
        {"platform-key-file", required_argument, NULL, 'F'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool dev = false;
    const char *platform = NULL, *host_id = NULL, *log_level = NULL, *hostboot = NULL,
               *mode = NULL;
    unsigned long long lost_exit_ms = 0;
    const char *key_file = NULL, *platform_key = NULL, *platform_key_file = NULL;
    int key_fd = -1;
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
        case 'K': {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 3 || v > 1023)
                return usage_error("bad --key-fd", optarg);
            key_fd = (int)v;
            break;
        }
        case 'P':
            platform_key = optarg;
            break;
        case 'k':
            key_file = optarg;
            break;
        case 'F':
            platform_key_file = optarg;
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
    /* CURVE keys: both or neither. */
    if (key_fd >= 0 && key_file)
        return usage_error("--key-fd and --key-file exclude each other", NULL);
    if (platform_key && platform_key_file)
        return usage_error("--platform-key and --platform-key-file exclude each other", NULL);
    bool have_secret = key_fd >= 0 || key_file, have_server = platform_key || platform_key_file;
    if (have_secret != have_server)
        return usage_error("a CURVE key needs the platform's key too (--key-fd/--key-file with "
                           "--platform-key/--platform-key-file)",
                           NULL);
    if (key_file && !host_id)
        return usage_error("--key-file needs --host-id: the key is authorized for one id", NULL);
    if (have_secret) {
#ifndef __SANITIZE_ADDRESS__
        /* The secret key lives in this process from here on: no core dump,
         * no ptrace or /proc/<pid>/mem by other processes of the same user
         * (other hosts under a shared hosts.user). Not in sanitizer builds:
         * LeakSanitizer needs to ptrace its own process. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
            fprintf(stderr, "pluginhost: PR_SET_DUMPABLE 0: %s\n", strerror(errno));
#endif
        plat_keypair_t kp;
        char server[PLAT_KEY_Z85_LEN + 1] = "", why[512];
        int krc = key_fd >= 0 ? plat_keys_read_fd(key_fd, &kp, why, sizeof why)
                              : plat_keys_load_secret(key_file, &kp, why, sizeof why);
        if (krc == 0 && platform_key) {
            if (plat_key_z85_valid(platform_key))
                snprintf(server, sizeof server, "%s", platform_key);
            else {
                snprintf(why, sizeof why, "--platform-key is not a Z85 public key");
                krc = -EINVAL;
            }
        } else if (krc == 0) {
            krc = plat_keys_load_public(platform_key_file, server, why, sizeof why);
        }
        if (krc == 0)
            krc = plat_endpoint_set_default_curve(kp.secret_z85, server);
        if (krc == 0)
            plat_log_info("main", "bus secured with CURVE public_key=%s", kp.public_z85);
        plat_keys_wipe(&kp);
        if (krc < 0) {
            plat_log_err("main", "cannot use the CURVE keys: %s", why);
            return EX_CONFIG;
        }
    } else if (!dev) {
        plat_log_warn("main", "no CURVE key given: connecting in plaintext");
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
