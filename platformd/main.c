/* platformd: the orchestrator. main() only wires. */
#include "platformd.h"

int main(int argc, char **argv)
{
    plat_daemon_args_t args;
    int rc = plat_daemon_args(argc, argv, "platformd", "docs/config-platformd.md", &args);
    if (rc >= 0)
        return rc;
    pd_config_t cfg;
    plat_cfg_error_t err;
    if (pd_config_load(args.config_path, &cfg, &err) < 0)
        return plat_daemon_config_error(&err);
    plat_daemon_set_log_level(&args, cfg.log.level);

    uv_loop_t loop;
    uv_loop_init(&loop);
    pd_t pd;
    rc = pd_start(&pd, &loop, &cfg);
    /* After a failed start only closing handles remain: the loop ends. */
    plat_daemon_run(&loop);
    if (rc == 0)
        plat_log_notice("main", "platformd stopped boot_id=%s", pd.boot_id);
    pd_registry_destroy(&pd.reg);
    pd_config_free(&cfg);
    return rc == 0 ? 0 : 1;
}
