/* platformd's configuration table (see pdconfig.h). Defaults live here and
 * in config/platformd.json, nowhere else. */
#include "pdconfig.h"

#include <stddef.h>
#include <string.h>

/* Offset of a member of one of pd_config_t's nested structs, relative to that
 * nested struct (what a child table needs). */
#define PD_OFF(sect, field) (offsetof(pd_config_t, sect.field) - offsetof(pd_config_t, sect))

static const plat_cfg_field_t pd_bus_table[] = {
    {.key = "endpoint",
     .type = PLAT_CFG_STRING,
     .offset = PD_OFF(bus, endpoint),
     .def_str = "tcp://127.0.0.1:7700",
     .validate = plat_cfg_validate_loopback_endpoint,
     .doc = "bus bind endpoint; loopback tcp only (tcp://127.0.0.1:PORT)"},
    {.key = "max_msg_size",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(bus, max_msg_size),
     .def_int = 4194304,
     .min = 1024,
     .max = 67108864,
     .doc = "largest bus message in bytes (ZMQ_MAXMSGSIZE); a bigger one drops its sender"},
    {.key = "sndhwm",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(bus, sndhwm),
     .def_int = 10000,
     .min = 1,
     .max = 1000000,
     .doc = "send high-water mark, messages queued per peer"},
    {.key = "rcvhwm",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(bus, rcvhwm),
     .def_int = 10000,
     .min = 1,
     .max = 1000000,
     .doc = "receive high-water mark, messages queued per peer"},
    {0},
};

static const plat_cfg_field_t pd_heartbeat_table[] = {
    {.key = "interval_ms",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(heartbeat, interval_ms),
     .def_int = 1000,
     .min = 10,
     .max = 600000,
     .doc = "milliseconds between heartbeats to each registered hostboot"},
    {.key = "miss",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(heartbeat, miss),
     .def_int = 3,
     .min = 1,
     .max = 100,
     .doc = "missed heartbeats after which a peer is considered gone"},
    {0},
};

static const plat_cfg_field_t pd_http_table[] = {
    {.key = "address",
     .type = PLAT_CFG_STRING,
     .offset = PD_OFF(http, address),
     .def_str = "127.0.0.1",
     .validate = plat_cfg_validate_loopback_address,
     .doc = "HTTP API listen address; loopback only (127.0.0.1, ::1 or localhost)"},
    {.key = "port",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(http, port),
     .def_int = 7780,
     .min = 1,
     .max = 65535,
     .doc = "HTTP API listen port"},
    {.key = "token_file",
     .type = PLAT_CFG_STRING,
     .offset = PD_OFF(http, token_file),
     .def_str = "",
     .doc = "bearer token required on mutating routes (0600, owned by platformd's user); "
            "\"\" = <state.dir>/api-token, created with a random token when missing"},
    {0},
};

static const plat_cfg_field_t pd_log_table[] = {
    {.key = "level",
     .type = PLAT_CFG_STRING,
     .offset = PD_OFF(log, level),
     .def_str = "info",
     .validate = plat_cfg_validate_log_level,
     .doc = "lowest level logged: err, warning, notice, info or debug"},
    {0},
};

static const plat_cfg_field_t pd_hosts_table[] = {
    {.key = "start_timeout_ms",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(hosts, start_timeout_ms),
     .def_int = 5000,
     .min = 10,
     .max = 600000,
     .doc = "milliseconds to wait for a hostboot to answer a host start or delete"},
    {.key = "ready_timeout_ms",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(hosts, ready_timeout_ms),
     .def_int = 10000,
     .min = 10,
     .max = 600000,
     .doc = "milliseconds a spawned host has to report ready before it is killed"},
    {.key = "start_tries",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(hosts, start_tries),
     .def_int = 5,
     .min = 1,
     .max = 5,
     .doc = "attempts to start a host when the failure may succeed on retry"},
    {.key = "exited_keep_ms",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(hosts, exited_keep_ms),
     .def_int = 60000,
     .min = 0,
     .max = 86400000,
     .doc = "milliseconds an exited or failed host stays listed in the API"},
    {0},
};

static const plat_cfg_field_t pd_state_table[] = {
    {.key = "dir",
     .type = PLAT_CFG_STRING,
     .offset = PD_OFF(state, dir),
     .def_str = "state",
     .doc = "state directory: platform.db (SQLite, WAL) and the package store packages/"},
    {0},
};

static const plat_cfg_field_t pd_plugins_table[] = {
    {.key = "action_timeout_ms",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(plugins, action_timeout_ms),
     .def_int = 10000,
     .min = 10,
     .max = 3600000,
     .doc = "milliseconds a lifecycle hook may run; an overrun gets its host killed"},
    {.key = "max_instances_per_host",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(plugins, max_instances_per_host),
     .def_int = 8,
     .min = 1,
     .max = 10000,
     .doc = "powerSave: instances of one (language, version) sharing a host"},
    {.key = "idle_ms",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(plugins, idle_ms),
     .def_int = 30000,
     .min = 0,
     .max = 86400000,
     .doc = "powerSave: a host with no running instance is stopped after this long"},
    {.key = "batch_concurrency",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(plugins, batch_concurrency),
     .def_int = 16,
     .min = 1,
     .max = 1024,
     .doc = "org batch actions: instances acted on at the same time"},
    {.key = "restart_initial_ms",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(plugins, restart_initial_ms),
     .def_int = 1000,
     .min = 0,
     .max = 3600000,
     .doc = "first automatic restart after a crash, ms (doubling, with jitter); 0 = never restart"},
    {.key = "restart_max_ms",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(plugins, restart_max_ms),
     .def_int = 60000,
     .min = 1,
     .max = 86400000,
     .doc = "cap of the restart delay, ms"},
    {.key = "restart_stable_ms",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(plugins, restart_stable_ms),
     .def_int = 60000,
     .min = 1,
     .max = 86400000,
     .doc = "an instance up this long has its crash count reset, ms"},
    {.key = "crash_limit",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(plugins, crash_limit),
     .def_int = 5,
     .min = 1,
     .max = 1000,
     .doc = "crashes within crash_window_ms after which the instance stays failed"},
    {.key = "crash_window_ms",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(plugins, crash_window_ms),
     .def_int = 300000,
     .min = 1,
     .max = 86400000,
     .doc = "window of crash_limit, ms"},
    {.key = "failed_retry_ms",
     .type = PLAT_CFG_INT,
     .offset = PD_OFF(plugins, failed_retry_ms),
     .def_int = 600000,
     .min = 0,
     .max = 86400000,
     .doc = "a failed instance is then retried this slowly, ms; 0 = never"},
    {0},
};

const plat_cfg_field_t pd_config_table[] = {
    {.key = "bus",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(pd_config_t, bus),
     .children = pd_bus_table,
     .doc = "the platform message bus"},
    {.key = "heartbeat",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(pd_config_t, heartbeat),
     .children = pd_heartbeat_table,
     .doc = "liveness checks of connected hostboots"},
    {.key = "http",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(pd_config_t, http),
     .children = pd_http_table,
     .doc = "the HTTP API"},
    {.key = "log",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(pd_config_t, log),
     .children = pd_log_table,
     .doc = "logging"},
    {.key = "hosts",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(pd_config_t, hosts),
     .children = pd_hosts_table,
     .doc = "starting and stopping plugin hosts through the hostboots"},
    {.key = "state",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(pd_config_t, state),
     .children = pd_state_table,
     .doc = "where durable state lives"},
    {.key = "plugins",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(pd_config_t, plugins),
     .children = pd_plugins_table,
     .doc = "plugin lifecycle: hook timeout, host sharing, batch actions"},
    {0},
};

int pd_config_load(const char *path, pd_config_t *cfg, plat_cfg_error_t *err)
{
    memset(cfg, 0, sizeof *cfg);
    if (!path) { /* no file: the embedded defaults */
        plat_cfg_defaults(pd_config_table, cfg);
        return 0;
    }
    return plat_cfg_load_file(path, pd_config_table, cfg, err);
}

void pd_config_free(pd_config_t *cfg)
{
    if (!cfg)
        return;
    plat_cfg_free(pd_config_table, cfg);
    memset(cfg, 0, sizeof *cfg);
}
