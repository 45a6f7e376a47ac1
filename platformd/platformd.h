/* platformd's process state and the interfaces between its modules:
 *   manager   — owns the loop, bus, registry, HTTP API, signals, systemd
 *   router    — every bus message: registration gate, local handlers by
 *               channel, forwarding to other endpoints
 *   control   — Control channel (ready → register_ack)
 *   hostboot  — HostBoot channel (report, heartbeat)
 *   heartbeat — pings, lost detection
 *   httpapi   — REST/JSON API on libmicrohttpd, driven by the same loop */
#ifndef PLATFORMD_PLATFORMD_H
#define PLATFORMD_PLATFORMD_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "metrics.h"
#include "pdconfig.h"
#include "plat/plat.h"
#include "registry.h"

typedef struct pd_httpapi pd_httpapi_t;
typedef struct pd_start_op pd_start_op_t;
typedef struct pd_lifecycle pd_lifecycle_t;

typedef struct pd {
    uv_loop_t *loop;
    const pd_config_t *cfg;
    char boot_id[PLAT_UUID_LEN + 1];
    uint64_t started_ms; /* monotonic */
    plat_bus_t *bus;
    pd_registry_t *reg;
    pd_httpapi_t *http;
    uv_timer_t ping_timer;
    uv_timer_t lost_timer;
    uint64_t last_lost_check_ms; /* when the lost check last ran (stall detection) */
    uv_timer_t watchdog_timer; /* systemd WATCHDOG=1 */
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    int handles_open;
    unsigned sigint_count;
    bool stopping;
    uint64_t unknown_destination; /* messages for ids nobody registered */
    pd_start_op_t *starts;        /* host starts in progress (hosts.c) */
    uv_timer_t prune_timer;       /* forgets ended hosts after hosts.exited_keep_ms */
    pd_lifecycle_t *lifecycle;    /* instances, packages, the store (lifecycle.c) */
    bool reconciled;              /* instances brought back after start */
    bool modules_started;         /* manager.c g_modules ran */
    pd_metrics_t metrics;         /* counters (metrics.h) */
    struct pd_curlm *curlm;       /* curlmulti.c: libcurl on the loop (module "curl") */
    size_t res_http_active;       /* res_http.c: outbound plugin requests in flight */
    struct pd_websvc *websvc;     /* websvc.c: plugin web services (module "websvc") */
    struct pd_trace *trace;       /* trace.c: tracing switch (module "diag") */
    struct pd_api_stats *api_stats; /* metrics.c: API requests by route (module "diag") */
    struct pd_tasks *tasks;       /* tasks.c: scheduled tasks (module "ability") */
    struct pd_ability *ability;   /* ability.c: Ability channel (module "ability") */
    struct pd_zap *zap;           /* zap.c: CURVE ZAP handler; NULL when bus.curve is off */
    struct pd_resources *resources; /* resource.c: DB/File/HTTP channel (module "resources") */
    /* Module state, one pointer per module (owned by the module; NULL
     * when not started). Add yours above this comment. */
} pd_t;

/* manager.c */
int pd_start(pd_t *pd, uv_loop_t *loop, const pd_config_t *cfg);
void pd_stop(pd_t *pd);

/* router.c: the bus's on_message and on_drop */
void pd_router_on_message(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg);
void pd_router_on_drop(plat_bus_t *bus, plat_bus_drop_t reason, const char *peer,
                       const Plat__PlatformMessage *msg, const char *why, void *arg);

/* A channel handler: `rx->msg` is addressed to the platform and comes from
 * `ep` (NULL only for registration messages, which the router lets
 * through unregistered). */
typedef void (*pd_channel_fn)(pd_t *pd, const plat_bus_rx_t *rx, pd_endpoint_t *ep);

/* control.c, hostboot.c */
void pd_control_handle(pd_t *pd, const plat_bus_rx_t *rx, pd_endpoint_t *ep);
void pd_hostboot_handle(pd_t *pd, const plat_bus_rx_t *rx, pd_endpoint_t *ep);
/* True when `m` is a registration (Control.ready or HostBoot report
 * REGISTER) — the only messages an unregistered endpoint may send. */
bool pd_is_registration(const Plat__PlatformMessage *m);
/* Answer a successful registration with register_ack. */
void pd_send_register_ack(pd_t *pd, const Plat__PlatformMessage *request);

/* hosts.c: starting and deleting plugin hosts through the hostboots.
 * Start is asynchronous: 0 means the request is under way and the host is
 * listed as "starting" under *id_out; it becomes "ready" with its own
 * ready report, or "failed" with the reason. Errors known at once:
 *   -EINVAL  bad language/version/mode;  -ENOENT no registered, live
 *   hostboot offers (language, version) (or `hostboot` is not one). */
typedef void (*pd_host_ready_cb)(pd_t *pd, const char *host_id, int status, const char *why,
                                 void *arg);
/* `cb` (optional) runs once, later: status 0 when the host is ready, else
 * the failure (-ECANCELED when deleted or the platform stops meanwhile). */
int pd_hosts_start(pd_t *pd, const char *language, const char *version, const char *mode,
                   const char *hostboot, pd_host_ready_cb cb, void *cb_arg,
                   char id_out[PLAT_ID_MAX + 1], char *why, size_t why_size);
/* Ask the owning hostboot to stop a host: 0 (now "stopping"; "exited" when
 * the exit report arrives), -ENOENT unknown host, -EPERM a dev host (never
 * stopped by the platform), -EALREADY already ended. */
int pd_hosts_delete(pd_t *pd, const char *host_id, char *why, size_t why_size);
/* A host's ready report was accepted (control.c). */
void pd_hosts_on_ready(pd_t *pd, pd_endpoint_t *host);
/* A hostboot reported a host's exit (hostboot.c). */
void pd_hosts_on_exit(pd_t *pd, const pd_endpoint_t *hostboot, const Plat__HostExit *x);
void pd_hosts_init(pd_t *pd);
/* Cancel every start in progress; after the bus is destroyed. */
void pd_hosts_shutdown(pd_t *pd);

/* heartbeat.c */
void pd_heartbeat_start(pd_t *pd);

/* httpapi.c */
/* `token_file`: see pdconfig.h http.token_file (resolved path). */
pd_httpapi_t *pd_httpapi_new(pd_t *pd, const char *address, uint16_t port,
                             const char *token_file);
/* Stops serving at once; memory goes when the loop has run. NULL-safe. */
void pd_httpapi_close(pd_httpapi_t **api);

/* curlmulti.c: module "curl" — libcurl's multi on the loop (pd->curlm, used
 * by res_http.c), then the plugin web services (websvc.c, pd->websvc). */
int pd_curl_start(pd_t *pd);
void pd_curl_stop(pd_t *pd);

/* metrics.c, api_diag.c, trace.c (module "diag": tracing switch, API
 * request counters, log ring). */
int pd_diag_start(pd_t *pd);
void pd_diag_stop(pd_t *pd);
/* Count one answered API request: `route` the matched pattern
 * ("/api/v1/hosts/{id}") or NULL (no route: 404/405, or refused before
 * routing), `status` the HTTP status sent. */
void pd_metrics_api(pd_t *pd, const char *route, const char *method, unsigned status);
typedef struct pd_api_stats pd_api_stats_t;
pd_api_stats_t *pd_api_stats_new(void);
void pd_api_stats_destroy(pd_api_stats_t **s);
/* [{"route","method","status","count"}] sorted by labels (new reference). */
struct json_t *pd_api_stats_json(pd_t *pd);
/* The /metrics page (malloc'd, *len bytes, NUL-terminated); NULL on ENOMEM. */
char *pd_metrics_render(pd_t *pd, size_t *len);
/* Instances by actual state: counts[i] for (*names)[i]; 0 or -errno. */
#define PD_METRICS_INST_STATES 7
int pd_metrics_instance_counts(pd_t *pd, uint64_t counts[PD_METRICS_INST_STATES],
                               const char *const **names);

/* ability.c: the Ability channel (task and service registrations, task
 * triggers) — module "ability", started after "websvc". */
void pd_ability_handle(pd_t *pd, const plat_bus_rx_t *rx, pd_endpoint_t *ep);
int pd_ability_start(pd_t *pd);
void pd_ability_stop(pd_t *pd);
/* An instance was uninstalled: drop its tasks and its web service. */
void pd_ability_forget_instance(pd_t *pd, const char *uuid);

/* resource.c: the Resource channel (DB, File here; HTTP through res_http.c)
 * — module "resources". See resource.h. */
typedef struct pd_resources pd_resources_t;
void pd_resource_handle(pd_t *pd, const plat_bus_rx_t *rx, pd_endpoint_t *ep);
int pd_resources_start(pd_t *pd);
void pd_resources_stop(pd_t *pd);
/* An instance was uninstalled: close its database and delete
 * <state.dir>/instances/<uuid>/ (db.sqlite, files/), after the operation
 * in flight for it, if any; requests waiting for it are answered -ENOENT. */
void pd_resources_forget_instance(pd_t *pd, const char *uuid);

#endif
