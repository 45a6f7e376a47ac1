/* platformd's root object: owns the bus, the registry, the HTTP API, the
 * heartbeat timers and the signal handlers, all on one libuv loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "lifecycle.h"
#include "platformd.h"
#include "zap.h"

static void on_handle_closed(uv_handle_t *h)
{
    pd_t *pd = h->data;
    pd->handles_open--;
}

static void close_handle(pd_t *pd, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
    (void)pd;
}

static void on_signal(uv_signal_t *s, int signum)
{
    pd_t *pd = s->data;
    if (signum == SIGINT && ++pd->sigint_count > 1) {
        plat_log_warn("manager", "second SIGINT: exiting at once");
        _exit(130);
    }
    plat_log_notice("manager", "%s received: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    pd_stop(pd);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    sd_notify(0, "WATCHDOG=1");
}

/* Modules started after the core (bus, state, HTTP API, hosts), in order,
 * and stopped in reverse order before it. start returns 0 or -errno (and
 * logs why); stop must be idempotent and safe after a failed start. */
typedef struct {
    const char *name;
    int (*start)(pd_t *pd);
    void (*stop)(pd_t *pd);
} pd_module_t;

static const pd_module_t g_modules[] = {
    /* one line per module, above this comment: {"name", start, stop}, */
    {"diag", pd_diag_start, pd_diag_stop}, /* first: tracing, API counters, log ring */
    {"zap", pd_zap_monitor_start, pd_zap_monitor_stop}, /* bus handshake failures counted */
    {"curl", pd_curl_start, pd_curl_stop}, /* libcurl on the loop + plugin web services */
    {"ability", pd_ability_start, pd_ability_stop}, /* scheduled tasks, Ability channel */
    {"resources", pd_resources_start, pd_resources_stop}, /* Resource channel: DB, File */
    {NULL, NULL, NULL},
};

static void stop_modules(pd_t *pd, size_t n)
{
    while (n-- > 0)
        g_modules[n].stop(pd);
}

static int start_modules(pd_t *pd)
{
    for (size_t i = 0; g_modules[i].name; i++) {
        int rc = g_modules[i].start(pd);
        if (rc < 0) {
            plat_log_err("manager", "cannot start a module: %s module=%s", strerror(-rc),
                         g_modules[i].name);
            stop_modules(pd, i);
            return rc;
        }
    }
    return 0;
}

static void init_handle(pd_t *pd, uv_handle_t *h)
{
    h->data = pd;
    pd->handles_open++;
}

int pd_start(pd_t *pd, uv_loop_t *loop, const pd_config_t *cfg)
{
    memset(pd, 0, sizeof *pd);
    pd->loop = loop;
    pd->cfg = cfg;
    pd->started_ms = plat_mono_ms();
    int rc = plat_uuid_new(pd->boot_id);
    if (rc < 0) {
        plat_log_err("manager", "cannot make a boot id: %s", strerror(-rc));
        return rc;
    }
    pd->reg = pd_registry_new();
    if (!pd->reg)
        return -ENOMEM;

    /* The ZAP handler before the ROUTER: CURVE without one admits anyone. */
    rc = pd_zap_start(pd);
    if (rc < 0) {
        pd_registry_destroy(&pd->reg);
        return rc;
    }
    plat_bus_opts_t bo = {
        .role = PLAT_ENDPOINT_ROUTER,
        .identity = PLAT_PLATFORM_ID,
        .address = cfg->bus.endpoint,
        .endpoint = {.max_msg_size = (size_t)cfg->bus.max_msg_size,
                     .sndhwm = (int)cfg->bus.sndhwm,
                     .rcvhwm = (int)cfg->bus.rcvhwm,
                     .curve_secret = pd_zap_secret(pd)},
        .rate_per_sec = (uint32_t)cfg->bus.rate_per_sec,
        .rate_burst = (uint32_t)cfg->bus.rate_burst,
        .max_pending = (uint32_t)cfg->bus.max_pending_per_peer,
        .platform_only = !cfg->bus.allow_peer_to_peer,
        .boot_id = pd->boot_id,
        .on_message = pd_router_on_message,
        .on_drop = pd_router_on_drop,
        .arg = pd,
    };
    pd->bus = plat_bus_new(loop, &bo);
    if (!pd->bus) {
        rc = -errno;
        plat_log_err("manager", "cannot bind the bus: %s endpoint=%s", strerror(errno),
                     cfg->bus.endpoint);
        pd_zap_stop(pd);
        pd_registry_destroy(&pd->reg);
        return rc;
    }
    /* State first: the token file may live in the state directory. */
    char why[512];
    pd->lifecycle = pd_lifecycle_new(pd, why, sizeof why);
    if (!pd->lifecycle) {
        plat_log_err("manager", "cannot open the platform state: %s dir=%s", why, cfg->state.dir);
        plat_bus_destroy(&pd->bus);
        pd_zap_stop(pd);
        pd_registry_destroy(&pd->reg);
        return -EIO;
    }
    char token_file[4096];
    if (cfg->http.token_file && cfg->http.token_file[0])
        snprintf(token_file, sizeof token_file, "%s", cfg->http.token_file);
    else
        snprintf(token_file, sizeof token_file, "%.4000s/api-token", cfg->state.dir);
    pd->http = pd_httpapi_new(pd, cfg->http.address, (uint16_t)cfg->http.port, token_file);
    if (!pd->http) {
        rc = -errno;
        plat_log_err("manager", "cannot serve the HTTP API: %s address=%s port=%lld",
                     strerror(errno), cfg->http.address, (long long)cfg->http.port);
        pd_lifecycle_destroy(&pd->lifecycle);
        plat_bus_destroy(&pd->bus);
        pd_zap_stop(pd);
        pd_registry_destroy(&pd->reg);
        return rc;
    }
    uv_timer_init(loop, &pd->ping_timer);
    init_handle(pd, (uv_handle_t *)&pd->ping_timer);
    uv_timer_init(loop, &pd->lost_timer);
    init_handle(pd, (uv_handle_t *)&pd->lost_timer);
    uv_timer_init(loop, &pd->watchdog_timer);
    init_handle(pd, (uv_handle_t *)&pd->watchdog_timer);
    uv_timer_init(loop, &pd->prune_timer);
    init_handle(pd, (uv_handle_t *)&pd->prune_timer);
    uv_signal_init(loop, &pd->sig_term);
    init_handle(pd, (uv_handle_t *)&pd->sig_term);
    uv_signal_init(loop, &pd->sig_int);
    init_handle(pd, (uv_handle_t *)&pd->sig_int);
    uv_signal_start(&pd->sig_term, on_signal, SIGTERM);
    uv_signal_start(&pd->sig_int, on_signal, SIGINT);
    pd_heartbeat_start(pd);
    pd_hosts_init(pd);
    rc = start_modules(pd);
    if (rc < 0) {
        pd_stop(pd);
        return rc;
    }
    pd->modules_started = true;

    uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec >= 2000)
        uv_timer_start(&pd->watchdog_timer, on_watchdog, wd_usec / 2000, wd_usec / 2000);
    sd_notifyf(0, "READY=1\nSTATUS=serving bus %s, API http://%s:%lld", cfg->bus.endpoint,
               cfg->http.address, (long long)cfg->http.port);
    plat_log_notice("manager", "platformd %s started boot_id=%s bus=%s http=%s:%lld "
                               "heartbeat_interval_ms=%lld heartbeat_miss=%lld",
                    PLAT_VERSION, pd->boot_id, cfg->bus.endpoint, cfg->http.address,
                    (long long)cfg->http.port, (long long)cfg->heartbeat.interval_ms,
                    (long long)cfg->heartbeat.miss);
    return 0;
}

/* Stop serving: every handle is closed, so uv_run returns once their
 * close callbacks have run. Idempotent. */
void pd_stop(pd_t *pd)
{
    if (pd->stopping)
        return;
    pd->stopping = true;
    sd_notify(0, "STOPPING=1");
    if (pd->modules_started) {
        size_t n = 0;
        while (g_modules[n].name)
            n++;
        stop_modules(pd, n);
        pd->modules_started = false;
    }
    /* Actions first (their requests are answered 503), then the bus (its
     * pending callbacks run), and the HTTP API last. */
    pd_lifecycle_destroy(&pd->lifecycle);
    pd_zap_monitor_stop(pd);
    plat_bus_destroy(&pd->bus);
    pd_zap_stop(pd);
    pd_hosts_shutdown(pd);
    pd_httpapi_close(&pd->http);
    close_handle(pd, (uv_handle_t *)&pd->prune_timer);
    close_handle(pd, (uv_handle_t *)&pd->ping_timer);
    close_handle(pd, (uv_handle_t *)&pd->lost_timer);
    close_handle(pd, (uv_handle_t *)&pd->watchdog_timer);
    close_handle(pd, (uv_handle_t *)&pd->sig_term);
    /* SIGINT stays watched until the loop ends so that a second one can
     * still force the exit; closed last. */
    close_handle(pd, (uv_handle_t *)&pd->sig_int);
}
