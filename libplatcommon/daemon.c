/* The daemons' shared main() pieces (see daemon.h). */
#include "plat/daemon.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sysexits.h>

#include "plat/log.h"
#include "plat/plat.h"

static void usage(FILE *out, const char *name, const char *doc_file)
{
    fprintf(out,
            "usage: %s [--config FILE] [--log-level LEVEL] [--version] [--help]\n"
            "  --config FILE      JSON configuration (%s);\n"
            "                     without it the embedded defaults are used\n"
            "  --log-level LEVEL  err|warning|notice|info|debug (overrides the config)\n",
            name, doc_file);
}

int plat_daemon_args(int argc, char **argv, const char *name, const char *doc_file,
                     plat_daemon_args_t *out)
{
    plat_log_init(name);
    signal(SIGPIPE, SIG_IGN);
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    out->config_path = NULL;
    out->log_level = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            out->config_path = optarg;
            break;
        case 'l':
            out->log_level = optarg;
            break;
        case 'V':
            printf("%s %s\n", name, PLAT_VERSION);
            return 0;
        case 'h':
            usage(stdout, name, doc_file);
            return 0;
        default:
            usage(stderr, name, doc_file);
            return EX_USAGE;
        }
    }
    if (optind < argc) {
        plat_log_err("main", "unexpected argument: %s", argv[optind]);
        usage(stderr, name, doc_file);
        return EX_USAGE;
    }
    if (out->log_level && plat_log_level_from_name(out->log_level) < 0) {
        plat_log_err("main", "bad --log-level %s: use err, warning, notice, info or debug",
                     out->log_level);
        return EX_USAGE;
    }
    return -1;
}

int plat_daemon_config_error(const plat_cfg_error_t *err)
{
    char buf[1024];
    plat_cfg_error_format(err, buf, sizeof buf);
    plat_log_err("main", "config error: %s", buf);
    return PLAT_EX_CONFIG;
}

void plat_daemon_set_log_level(const plat_daemon_args_t *args, const char *config_level)
{
    int level = plat_log_level_from_name(args->log_level ? args->log_level : config_level);
    if (level >= 0)
        plat_log_set_level((plat_log_level_t)level);
}

void plat_daemon_run(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(loop);
    if (rc != 0)
        plat_log_warn("main", "loop closed with handles still open: %s", uv_strerror(rc));
}
