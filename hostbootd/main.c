/* hostbootd: the host manager. main() only wires. */
#include <signal.h>
#include <string.h>

#include "manager.h"

int main(int argc, char **argv)
{
    /* The exec wrapper between hostbootd and a host (spawner.h). */
    if (argc > 1 && strcmp(argv[1], "--exec-host") == 0)
        return hb_exec_host_main(argc, argv);
    /* A write into a host's pipe after the host died is an EPIPE to log,
     * not a reason to die (the spawner hands keys down pipes; uv_spawn
     * resets dispositions in the children). */
    signal(SIGPIPE, SIG_IGN);
    plat_daemon_args_t args;
    int rc = plat_daemon_args(argc, argv, "hostbootd", "docs/config-hostbootd.md", &args);
    if (rc >= 0)
        return rc;
    hb_config_t cfg;
    plat_cfg_error_t err;
    if (hb_config_load(args.config_path, &cfg, &err) < 0)
        return plat_daemon_config_error(&err);
    plat_daemon_set_log_level(&args, cfg.log.level);

    uv_loop_t loop;
    uv_loop_init(&loop);
    hb_manager_t m;
    rc = hb_manager_start(&m, &loop, &cfg);
    plat_daemon_run(&loop);
    if (rc == 0)
        plat_log_notice("main", "hostbootd stopped id=%s", m.id);
    hb_config_free(&cfg);
    return rc == 0 ? 0 : 1;
}
