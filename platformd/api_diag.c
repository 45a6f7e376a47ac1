/* GET /api/v1/diag (one JSON document for an operator debugging the
 * platform), the tracing switch's routes, a host's log file, and module
 * "diag" that owns the tracing switch, the API counters and the log ring.
 * docs/diagnostics.md describes every member. Loop thread only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "lifecycle.h"
#include "platformd.h"
#include "store.h"
#include "trace.h"
#include "websvc.h"

static uint64_t age(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

/* ---- module "diag" --------------------------------------------------------- */

int pd_diag_start(pd_t *pd)
{
    pd->trace = pd_trace_new();
    pd->api_stats = pd_api_stats_new();
    if (!pd->trace || !pd->api_stats) {
        pd_diag_stop(pd);
        return -ENOMEM;
    }
    const pd_config_t *cfg = pd->cfg;
    for (size_t i = 0; i < cfg->trace.n_instances; i++) {
        int rc = pd_trace_set(pd->trace, PD_TRACE_INSTANCE, cfg->trace.instances[i], true);
        if (rc < 0) {
            plat_log_err("diag", "config trace.instances[%zu]: %s id=%s", i,
                         rc == -EINVAL ? "not an instance UUID" : strerror(-rc),
                         cfg->trace.instances[i]);
            pd_diag_stop(pd);
            return rc;
        }
    }
    for (size_t i = 0; i < cfg->trace.n_hosts; i++) {
        int rc = pd_trace_set(pd->trace, PD_TRACE_HOST, cfg->trace.hosts[i], true);
        if (rc < 0) {
            plat_log_err("diag", "config trace.hosts[%zu]: %s id=%s", i,
                         rc == -EINVAL ? "not a host id (host-<uuid>)" : strerror(-rc),
                         cfg->trace.hosts[i]);
            pd_diag_stop(pd);
            return rc;
        }
    }
    int rc = plat_log_ring_enable((size_t)cfg->log.ring_lines);
    if (rc < 0) {
        plat_log_err("diag", "cannot keep log lines for diag: %s ring_lines=%lld", strerror(-rc),
                     (long long)cfg->log.ring_lines);
        pd_diag_stop(pd);
        return rc;
    }
    if (pd->bus) {
        plat_sync_set_reply_observer(plat_bus_sync(pd->bus), pd_trace_on_reply, pd);
        plat_bus_set_tx_observer(pd->bus, pd_trace_on_tx, pd);
    }
    if (cfg->trace.n_instances || cfg->trace.n_hosts)
        plat_log_notice("diag", "tracing on from config instances=%zu hosts=%zu",
                        cfg->trace.n_instances, cfg->trace.n_hosts);
    return 0;
}

void pd_diag_stop(pd_t *pd)
{
    if (pd->bus) {
        plat_sync_set_reply_observer(plat_bus_sync(pd->bus), NULL, NULL);
        plat_bus_set_tx_observer(pd->bus, NULL, NULL);
    }
    pd_trace_destroy(&pd->trace);
    pd_api_stats_destroy(&pd->api_stats);
    plat_log_ring_enable(0);
}

/* ---- helpers -------------------------------------------------------------- */

/* VmRSS of `pid` ("self" for 0) in bytes, -1 when unreadable. */
static json_int_t rss_bytes(int pid)
{
    char path[64];
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%d/status", pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char line[256];
    json_int_t kb = -1;
    while (fgets(line, sizeof line, f)) {
        long long v;
        if (sscanf(line, "VmRSS: %lld kB", &v) == 1) {
            kb = (json_int_t)v;
            break;
        }
    }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

static json_t *int_or_null(json_int_t v) { return v < 0 ? json_null() : json_integer(v); }

/* "<log_dir>/<host-id>.log" of a host its hostboot reported, else "". */
static void host_log_file(pd_t *pd, const pd_endpoint_t *ep, char *out, size_t size)
{
    out[0] = 0;
    const pd_endpoint_t *hb = ep->hostboot[0] ? pd_registry_find(pd->reg, ep->hostboot) : NULL;
    if (hb && hb->kind == PD_EP_HOSTBOOT && hb->log_dir[0])
        snprintf(out, size, "%s/%s.log", hb->log_dir, ep->id);
}

static const pd_endpoint_t *find_host(pd_t *pd, const char *id)
{
    const pd_endpoint_t *ep = pd_registry_find(pd->reg, id);
    return ep && ep->kind == PD_EP_HOST ? ep : NULL;
}

/* ---- diag sections ---------------------------------------------------------- */

static json_t *platform_json(pd_t *pd, uint64_t now)
{
    const pd_config_t *c = pd->cfg;
    json_t *cfg = json_pack(
        "{s:s, s:I, s:I, s:I, s:s, s:I, s:s, s:I, s:s, s:I, s:I, s:I, s:I}", "bus.endpoint",
        c->bus.endpoint, "bus.max_msg_size", (json_int_t)c->bus.max_msg_size,
        "heartbeat.interval_ms", (json_int_t)c->heartbeat.interval_ms, "heartbeat.miss",
        (json_int_t)c->heartbeat.miss, "http.address", c->http.address, "http.port",
        (json_int_t)c->http.port, "log.level", c->log.level, "log.ring_lines",
        (json_int_t)c->log.ring_lines, "state.dir", c->state.dir, "hosts.start_timeout_ms",
        (json_int_t)c->hosts.start_timeout_ms, "hosts.ready_timeout_ms",
        (json_int_t)c->hosts.ready_timeout_ms, "plugins.action_timeout_ms",
        (json_int_t)c->plugins.action_timeout_ms, "plugins.max_instances_per_host",
        (json_int_t)c->plugins.max_instances_per_host);
    return json_pack("{s:s, s:s, s:I, s:i, s:o, s:o}", "version", PLAT_VERSION, "boot_id",
                     pd->boot_id, "uptime_ms", (json_int_t)age(now, pd->started_ms), "pid",
                     (int)getpid(), "rss_bytes", int_or_null(rss_bytes(0)), "config", cfg);
}

typedef struct {
    pd_t *pd;
    uint64_t now;
    json_t *hostboots, *hosts;
} ep_ctx_t;

static void add_hostboot(const pd_endpoint_t *ep, ep_ctx_t *ctx)
{
    json_t *rts = json_array();
    for (size_t i = 0; i < ep->n_runtimes; i++)
        json_array_append_new(rts, json_pack("{s:s, s:s}", "language", ep->runtimes[i].language,
                                             "version", ep->runtimes[i].version));
    json_t *report =
        ep->last_report_ms
            ? json_pack("{s:s, s:I}", "kind", ep->last_report_kind, "age_ms",
                        (json_int_t)age(ctx->now, ep->last_report_ms))
            : json_null();
    json_t *hb = ep->last_heartbeat_ms
                     ? json_pack("{s:I, s:i, s:I}", "age_ms",
                                 (json_int_t)age(ctx->now, ep->last_heartbeat_ms), "host_count",
                                 (int)ep->heartbeat_hosts, "uptime_ms",
                                 (json_int_t)ep->heartbeat_uptime_ms)
                     : json_null();
    json_array_append_new(
        ctx->hostboots,
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:o, s:o, s:o}", "id", ep->id,
                  "name", ep->name, "version", ep->version, "state", ep->lost ? "lost" : "ready",
                  "boot_id", ep->boot_id, "runtimes", rts, "registered_age_ms",
                  (json_int_t)age(ctx->now, ep->registered_ms), "last_seen_age_ms",
                  (json_int_t)age(ctx->now, ep->last_seen_ms), "messages_rx",
                  (json_int_t)ep->messages_rx, "log_dir",
                  ep->log_dir[0] ? json_string(ep->log_dir) : json_null(), "last_report", report,
                  "last_heartbeat", hb));
}

/* The host's instances with their state, crash count and last error;
 * *crashes gets the sum of crash counts. */
static json_t *host_instances(pd_t *pd, const char *host_id, json_int_t *crashes)
{
    json_t *out = json_array();
    *crashes = 0;
    if (!pd->lifecycle)
        return out;
    json_t *ids = pd_lifecycle_host_instances(pd->lifecycle, host_id);
    pd_store_t *store = pd_lifecycle_store(pd->lifecycle);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        const char *uuid = json_string_value(v);
        pd_store_instance_t inst;
        if (!uuid || pd_store_get_instance(store, uuid, &inst) != 0) {
            json_array_append_new(out, json_pack("{s:s?, s:n}", "uuid", uuid, "state"));
            continue;
        }
        *crashes += inst.crash_count;
        json_array_append_new(
            out, json_pack("{s:s, s:s, s:s, s:s, s:i, s:o}", "uuid", inst.uuid, "plugin",
                           inst.plugin, "state", inst.actual_state, "desired", inst.desired_state,
                           "crash_count", (int)inst.crash_count, "last_error",
                           inst.last_error[0] ? json_string(inst.last_error) : json_null()));
        pd_store_instance_clear(&inst);
    }
    json_decref(ids);
    return out;
}

static void add_host(const pd_endpoint_t *ep, ep_ctx_t *ctx)
{
    pd_t *pd = ctx->pd;
    bool ended = ep->host_state == PD_HOST_EXITED || ep->host_state == PD_HOST_FAILED;
    json_int_t crashes = 0;
    json_t *insts = host_instances(pd, ep->id, &crashes);
    char log_file[1024];
    host_log_file(pd, ep, log_file, sizeof log_file);
    json_t *err = json_null();
    if (ep->host_state == PD_HOST_FAILED)
        err = json_pack("{s:i, s:s}", "code", ep->error_code, "message", ep->error);
    else if (ep->lost)
        err = json_pack("{s:i, s:s}", "code", -ETIMEDOUT, "message", "lost (no heartbeat)");
    else if (ep->host_state == PD_HOST_EXITED && (ep->exit_status || ep->term_signal))
        err = json_pack("{s:i, s:s}", "code", -ECHILD, "message",
                        ep->term_signal ? "killed by a signal" : "exited with a non-zero status");
    json_t *o = json_pack(
        "{s:s, s:s, s:i, s:o, s:s, s:s, s:b, s:I, s:o, s:o, s:I, s:I, s:o, s:o}", "id", ep->id,
        "state", ep->lost ? "lost" : pd_host_state_name(ep->host_state), "pid", (int)ep->pid,
        "hostboot", ep->hostboot[0] ? json_string(ep->hostboot) : json_null(), "language",
        ep->language, "mode", ep->mode, "dev", (int)ep->dev, "uptime_ms",
        (json_int_t)(ended ? age(ep->ended_ms, ep->started_ms) : age(ctx->now, ep->started_ms)),
        "rss_bytes", int_or_null(!ended && ep->pid > 0 ? rss_bytes(ep->pid) : -1), "instances",
        insts, "restarts", crashes, "messages_rx", (json_int_t)ep->messages_rx, "last_error", err,
        "log_file", log_file[0] ? json_string(log_file) : json_null());
    if (pd_endpoint_registered(ep))
        json_object_set_new(o, "last_seen_age_ms",
                            json_integer((json_int_t)age(ctx->now, ep->last_seen_ms)));
    if (ep->host_state == PD_HOST_EXITED)
        json_object_set_new(o, "exit", json_pack("{s:i, s:i}", "status", (int)ep->exit_status,
                                                  "signal", (int)ep->term_signal));
    json_array_append_new(ctx->hosts, o);
}

static void add_endpoint(const pd_endpoint_t *ep, void *arg)
{
    if (ep->kind == PD_EP_HOSTBOOT)
        add_hostboot(ep, arg);
    else
        add_host(ep, arg);
}

static json_t *bus_json(pd_t *pd)
{
    const plat_bus_stats_t *st = plat_bus_stats(pd->bus);
    static const Plat__PlatformMessage__ChannelCase channels[] = {
        PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL, PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN,
        PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE, PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY,
        PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT,
    };
    json_t *ch = json_object();
    for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++) {
        unsigned c = (unsigned)channels[i];
        json_object_set_new(ch, plat_channel_name(channels[i]),
                            json_pack("{s:I, s:I}", "rx", (json_int_t)st->rx_by_channel[c], "tx",
                                      (json_int_t)st->tx_by_channel[c]));
    }
    json_t *dropped = json_object();
    for (int r = 0; r < PLAT_BUS_DROP__COUNT; r++)
        json_object_set_new(dropped, plat_bus_drop_key(r),
                            json_integer((json_int_t)st->dropped[r]));
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "rx", (json_int_t)st->rx, "tx",
                     (json_int_t)st->tx, "tx_failed", (json_int_t)st->tx_failed, "forwarded",
                     (json_int_t)st->forwarded, "unknown_destination",
                     (json_int_t)pd->unknown_destination, "channels", ch, "dropped", dropped);
}

static json_t *sync_json(pd_t *pd)
{
    plat_sync_t *s = plat_bus_sync(pd->bus);
    plat_sync_stats_t st = plat_sync_stats(s);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:f}", "pending", (json_int_t)plat_sync_pending(s),
                     "oldest_pending_age_ms", (json_int_t)plat_sync_oldest_pending_ms(s),
                     "replies", (json_int_t)st.replies, "timeouts", (json_int_t)st.timeouts,
                     "failed", (json_int_t)st.failed, "reply_seconds_total",
                     (double)st.sum_ns / 1e9);
}

static json_t *counters_json(pd_t *pd)
{
    const pd_metrics_t *m = &pd->metrics;
    static const char *const kinds[PD_METRICS_RES_KINDS] = {"unknown", "db", "http", "file"};
    json_t *res = json_object();
    for (int k = 0; k < PD_METRICS_RES_KINDS; k++)
        json_object_set_new(res, kinds[k],
                            json_pack("{s:I, s:I, s:I}", "ok", (json_int_t)m->resource_ok[k],
                                      "failed", (json_int_t)m->resource_failed[k], "denied",
                                      (json_int_t)m->resource_denied[k]));
    return json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "resources", res,
                     "task_runs", (json_int_t)m->task_runs, "task_failures",
                     (json_int_t)m->task_failures, "task_missed", (json_int_t)m->task_missed,
                     "service_proxied", (json_int_t)m->service_proxied, "service_unavailable",
                     (json_int_t)m->service_unavailable, "service_health_failures",
                     (json_int_t)m->service_health_failures, "heartbeats_missed",
                     (json_int_t)m->heartbeats_missed, "instance_restarts",
                     (json_int_t)m->instance_restarts, "trace_lines",
                     (json_int_t)m->trace_lines);
}

static json_t *instances_json(pd_t *pd)
{
    uint64_t counts[PD_METRICS_INST_STATES];
    const char *const *names;
    if (pd_metrics_instance_counts(pd, counts, &names) != 0)
        return json_null();
    json_t *o = json_object();
    for (size_t i = 0; i < PD_METRICS_INST_STATES; i++)
        json_object_set_new(o, names[i], json_integer((json_int_t)counts[i]));
    return o;
}

static void add_log_line(const char *component, const char *line, void *arg)
{
    json_t *logs = arg;
    json_t *arr = json_object_get(logs, component);
    if (!arr) {
        arr = json_array();
        json_object_set_new(logs, component, arr);
    }
    json_array_append_new(arr, json_string(line));
}

pd_http_reply_t pd_api_get_diag(pd_http_req_t *req)
{
    pd_t *pd = req->pd;
    uint64_t now = plat_mono_ms();
    ep_ctx_t ctx = {.pd = pd, .now = now, .hostboots = json_array(), .hosts = json_array()};
    pd_registry_foreach(pd->reg, add_endpoint, &ctx);
    json_t *logs = json_object();
    plat_log_ring_foreach(add_log_line, logs);
    json_t *websvc = pd->websvc ? pd_websvc_json(pd, NULL) : json_null();
    json_t *out = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "platform",
        platform_json(pd, now), "hostboots", ctx.hostboots, "hosts", ctx.hosts, "instances",
        instances_json(pd), "sync", sync_json(pd), "bus", bus_json(pd), "counters",
        counters_json(pd), "http_requests", pd_api_stats_json(pd), "trace", pd_trace_json(pd),
        "web_services", websvc ? websvc : json_null(), "logs", logs);
    if (!out)
        return pd_http_error(500, "internal", "out of memory");
    return pd_http_json(200, out);
}

/* ---- tracing switch ------------------------------------------------------------ */

pd_http_reply_t pd_api_get_trace(pd_http_req_t *req)
{
    return pd_http_json(200, pd_trace_json(req->pd));
}

pd_http_reply_t pd_api_post_trace(pd_http_req_t *req)
{
    pd_t *pd = req->pd;
    json_t *body = req->body;
    if (!json_is_object(body))
        return pd_http_error(400, "bad_request", "body must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "instance") && strcmp(key, "host") && strcmp(key, "on")) {
            char why[128];
            snprintf(why, sizeof why, "unknown member \"%.48s\" (instance, host, on)", key);
            return pd_http_error(400, "bad_request", why);
        }
    }
    json_t *inst = json_object_get(body, "instance"), *host = json_object_get(body, "host");
    json_t *on = json_object_get(body, "on");
    if ((inst != NULL) == (host != NULL))
        return pd_http_error(400, "bad_request", "give exactly one of \"instance\" and \"host\"");
    json_t *idv = inst ? inst : host;
    if (!json_is_string(idv))
        return pd_http_error(400, "bad_request", "the id must be a string");
    if (!json_is_boolean(on))
        return pd_http_error(400, "bad_request", "\"on\" must be true or false");
    if (!pd->trace)
        return pd_http_error(503, "unavailable", "tracing is not running");
    const char *id = json_string_value(idv);
    pd_trace_kind_t kind = inst ? PD_TRACE_INSTANCE : PD_TRACE_HOST;
    int rc = pd_trace_set(pd->trace, kind, id, json_is_true(on));
    if (rc == -EINVAL)
        return pd_http_error(400, "bad_request", inst ? "\"instance\" must be an instance UUID"
                                                      : "\"host\" must be a host id (host-<uuid>)");
    if (rc == -ENOSPC)
        return pd_http_error(409, "too_many", "too many ids traced (64 of each kind)");
    plat_log_notice("diag", "tracing %s %s=%s", json_is_true(on) ? "on" : "off",
                    inst ? "instance" : "host", id);
    return pd_http_json(200, pd_trace_json(pd));
}

/* ---- a host's log file ------------------------------------------------------------ */

pd_http_reply_t pd_api_get_host_log(pd_http_req_t *req)
{
    pd_t *pd = req->pd;
    const pd_endpoint_t *ep = find_host(pd, req->params[0]);
    if (!ep)
        return pd_http_error(404, "not_found", "no such host");
    char log_file[1024];
    host_log_file(pd, ep, log_file, sizeof log_file);
    if (!log_file[0])
        return pd_http_error(404, "no_log",
                             ep->dev ? "a dev host's output is not captured by a hostboot"
                                     : "its hostboot did not report a log directory");
    return pd_http_json(200, json_pack("{s:s, s:s, s:s, s:s}", "host", ep->id, "hostboot",
                                       ep->hostboot, "state",
                                       ep->lost ? "lost" : pd_host_state_name(ep->host_state),
                                       "log_file", log_file));
}
