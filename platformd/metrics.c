/* GET /metrics: platformd's counters and gauges in the Prometheus text
 * exposition format 0.0.4, and the API request counters it shows
 * (docs/diagnostics.md lists every metric). Loop thread only. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "lifecycle.h"
#include "platformd.h"
#include "store.h"

/* ---- API requests by (route, method, status) ------------------------------ */

typedef struct {
    char route[96];
    char method[16];
    unsigned status;
    uint64_t count;
} api_count_t;

struct pd_api_stats {
    api_count_t *items;
    size_t n, cap;
};

pd_api_stats_t *pd_api_stats_new(void) { return calloc(1, sizeof(pd_api_stats_t)); }

void pd_api_stats_destroy(pd_api_stats_t **s)
{
    if (!s || !*s)
        return;
    free((*s)->items);
    free(*s);
    *s = NULL;
}

void pd_metrics_api(pd_t *pd, const char *route, const char *method, unsigned status)
{
    pd_api_stats_t *s = pd ? pd->api_stats : NULL;
    if (!s)
        return;
    char r[96], m[16];
    snprintf(r, sizeof r, "%s", route ? route : "unmatched");
    /* Methods are a client's choice: unknown ones share one label. */
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    snprintf(m, sizeof m, "other");
    for (size_t i = 0; method && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(method, known[i]) == 0)
            snprintf(m, sizeof m, "%s", known[i]);
    for (size_t i = 0; i < s->n; i++) {
        api_count_t *c = &s->items[i];
        if (c->status == status && strcmp(c->route, r) == 0 && strcmp(c->method, m) == 0) {
            c->count++;
            return;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        api_count_t *items = realloc(s->items, cap * sizeof *items);
        if (!items)
            return; /* a lost count, not worth failing a request for */
        s->items = items;
        s->cap = cap;
    }
    api_count_t *c = &s->items[s->n++];
    memcpy(c->route, r, sizeof c->route);
    memcpy(c->method, m, sizeof c->method);
    c->status = status;
    c->count = 1;
}

static int by_labels(const void *a, const void *b)
{
    const api_count_t *x = a, *y = b;
    int c = strcmp(x->route, y->route);
    if (c == 0)
        c = strcmp(x->method, y->method);
    if (c == 0)
        c = (x->status > y->status) - (x->status < y->status);
    return c;
}

json_t *pd_api_stats_json(pd_t *pd)
{
    json_t *arr = json_array();
    pd_api_stats_t *s = pd->api_stats;
    if (!s)
        return arr;
    qsort(s->items, s->n, sizeof *s->items, by_labels);
    for (size_t i = 0; i < s->n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:I}", "route", s->items[i].route,
                                             "method", s->items[i].method, "status",
                                             (int)s->items[i].status, "count",
                                             (json_int_t)s->items[i].count));
    return arr;
}

/* ---- text building ------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} text_t;

static void put(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text_t *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->oom = true;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
}

/* A label value escaped as the format requires: \\, \" and \n. */
static void put_label(text_t *t, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            put(t, "\\\\");
        else if (*p == '"')
            put(t, "\\\"");
        else if (*p == '\n')
            put(t, "\\n");
        else
            put(t, "%c", *p);
    }
}

static void head(text_t *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{k1="v1",k2="v2"} value — labels as NULL-terminated key/value pairs. */
static void sample(text_t *t, const char *name, uint64_t value, ...)
{
    put(t, "%s", name);
    va_list ap;
    va_start(ap, value);
    const char *k = va_arg(ap, const char *);
    bool first = true;
    while (k) {
        const char *v = va_arg(ap, const char *);
        put(t, "%s%s=\"", first ? "{" : ",", k);
        put_label(t, v);
        put(t, "\"");
        first = false;
        k = va_arg(ap, const char *);
    }
    va_end(ap);
    put(t, "%s %llu\n", first ? "" : "}", (unsigned long long)value);
}

static void counter(text_t *t, const char *name, const char *help, uint64_t value)
{
    head(t, name, "counter", help);
    sample(t, name, value, (const char *)NULL);
}

/* ---- gauges read from their owners ---------------------------------------- */

/* Host states as the API shows them ("lost" overrides ready/stopping). */
static const char *const g_host_states[] = {"starting", "ready", "stopping", "lost", "exited",
                                            "failed"};
#define N_HOST_STATES (sizeof g_host_states / sizeof g_host_states[0])

typedef struct {
    uint64_t hosts[N_HOST_STATES];
    uint64_t hostboots_ready, hostboots_lost;
} ep_counts_t;

static void count_ep(const pd_endpoint_t *ep, void *arg)
{
    ep_counts_t *c = arg;
    if (ep->kind == PD_EP_HOSTBOOT) {
        if (ep->lost)
            c->hostboots_lost++;
        else
            c->hostboots_ready++;
        return;
    }
    const char *st = ep->lost ? "lost" : pd_host_state_name(ep->host_state);
    for (size_t i = 0; i < N_HOST_STATES; i++)
        if (strcmp(st, g_host_states[i]) == 0)
            c->hosts[i]++;
}

static const char *const g_inst_states[] = {
    PD_STATE_INSTALLED, PD_STATE_ENABLED, PD_STATE_DISABLED, PD_STATE_RUNNING,
    PD_STATE_STOPPED,   PD_STATE_FAILED,  PD_STATE_UNINSTALLED,
};
#define N_INST_STATES (sizeof g_inst_states / sizeof g_inst_states[0])

static int count_inst(const pd_store_instance_t *inst, void *arg)
{
    uint64_t *c = arg;
    for (size_t i = 0; i < N_INST_STATES; i++)
        if (strcmp(inst->actual_state, g_inst_states[i]) == 0)
            c[i]++;
    return 0;
}

int pd_metrics_instance_counts(pd_t *pd, uint64_t counts[PD_METRICS_INST_STATES],
                               const char *const **names)
{
    memset(counts, 0, PD_METRICS_INST_STATES * sizeof counts[0]);
    *names = g_inst_states;
    pd_store_t *store = pd->lifecycle ? pd_lifecycle_store(pd->lifecycle) : NULL;
    return store ? pd_store_list_instances(store, NULL, count_inst, counts) : -ENOTCONN;
}

/* ---- the page -------------------------------------------------------------- */

static const Plat__PlatformMessage__ChannelCase g_channels[] = {
    PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL, PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN,
    PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE, PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY,
    PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT,
};

static const char *const g_res_kinds[PD_METRICS_RES_KINDS] = {"unknown", "db", "http", "file"};

char *pd_metrics_render(pd_t *pd, size_t *len)
{
    text_t t = {0};
    const pd_metrics_t *m = &pd->metrics;

    head(&t, "plat_build_info", "gauge", "Always 1; labels name the running platformd.");
    sample(&t, "plat_build_info", 1, "version", PLAT_VERSION, "boot_id", pd->boot_id,
           (const char *)NULL);
    uint64_t now = plat_mono_ms();
    head(&t, "plat_uptime_seconds", "gauge", "Seconds since platformd started.");
    put(&t, "plat_uptime_seconds %.3f\n",
        (double)(now > pd->started_ms ? now - pd->started_ms : 0) / 1000.0);

    /* Bus. */
    const plat_bus_stats_t *st = pd->bus ? plat_bus_stats(pd->bus) : NULL;
    plat_bus_stats_t zero = {0};
    if (!st)
        st = &zero;
    head(&t, "plat_bus_messages_total", "counter",
         "Valid bus messages received (rx) and sent (tx) by the platform, by channel.");
    for (size_t i = 0; i < sizeof g_channels / sizeof g_channels[0]; i++) {
        unsigned c = (unsigned)g_channels[i];
        const char *name = plat_channel_name(g_channels[i]);
        sample(&t, "plat_bus_messages_total", c < 36 ? st->rx_by_channel[c] : 0, "channel", name,
               "direction", "rx", (const char *)NULL);
        sample(&t, "plat_bus_messages_total", c < 36 ? st->tx_by_channel[c] : 0, "channel", name,
               "direction", "tx", (const char *)NULL);
    }
    counter(&t, "plat_bus_forwarded_total",
            "Messages forwarded unchanged from one endpoint to another.", st->forwarded);
    counter(&t, "plat_bus_send_failures_total",
            "Sends and forwards that failed (unroutable peer, high-water mark).", st->tx_failed);
    head(&t, "plat_bus_dropped_total", "counter", "Received messages dropped, by reason.");
    for (int r = 0; r < PLAT_BUS_DROP__COUNT; r++)
        sample(&t, "plat_bus_dropped_total", st->dropped[r], "reason", plat_bus_drop_key(r),
               (const char *)NULL);
    counter(&t, "plat_bus_unknown_destination_total",
            "Messages addressed to an endpoint that is not connected.", pd->unknown_destination);

    /* Sync calls. */
    plat_sync_t *sync = pd->bus ? plat_bus_sync(pd->bus) : NULL;
    plat_sync_stats_t ss = plat_sync_stats(sync);
    head(&t, "plat_sync_call_duration_seconds", "histogram",
         "Time from a platform request to its reply (answered requests only).");
    uint64_t cum = 0;
    for (size_t b = 0; b < PLAT_SYNC_BUCKETS; b++) {
        cum += ss.bucket[b];
        char le[32];
        snprintf(le, sizeof le, "%g", plat_sync_bucket_le[b]);
        sample(&t, "plat_sync_call_duration_seconds_bucket", cum, "le", le, (const char *)NULL);
    }
    cum += ss.bucket[PLAT_SYNC_BUCKETS];
    sample(&t, "plat_sync_call_duration_seconds_bucket", cum, "le", "+Inf", (const char *)NULL);
    put(&t, "plat_sync_call_duration_seconds_sum %.9f\n", (double)ss.sum_ns / 1e9);
    put(&t, "plat_sync_call_duration_seconds_count %llu\n", (unsigned long long)ss.replies);
    counter(&t, "plat_sync_timeouts_total", "Platform requests that got no reply in time.",
            ss.timeouts);
    counter(&t, "plat_sync_failures_total",
            "Platform requests failed without a reply (peer gone, cancelled at shutdown).",
            ss.failed);
    head(&t, "plat_sync_pending", "gauge", "Platform requests waiting for their reply.");
    put(&t, "plat_sync_pending %zu\n", plat_sync_pending(sync));

    /* Endpoints. */
    counter(&t, "plat_heartbeats_missed_total",
            "Endpoints found silent for heartbeat.miss intervals (marked lost).",
            m->heartbeats_missed);
    ep_counts_t ec = {0};
    if (pd->reg)
        pd_registry_foreach(pd->reg, count_ep, &ec);
    head(&t, "plat_hostboots", "gauge", "Registered hostboots by state.");
    sample(&t, "plat_hostboots", ec.hostboots_ready, "state", "ready", (const char *)NULL);
    sample(&t, "plat_hostboots", ec.hostboots_lost, "state", "lost", (const char *)NULL);
    head(&t, "plat_hosts", "gauge", "Plugin hosts known to the platform, by state.");
    for (size_t i = 0; i < N_HOST_STATES; i++)
        sample(&t, "plat_hosts", ec.hosts[i], "state", g_host_states[i], (const char *)NULL);

    /* Instances. */
    uint64_t ic[PD_METRICS_INST_STATES];
    const char *const *inames;
    if (pd_metrics_instance_counts(pd, ic, &inames) == 0) {
        head(&t, "plat_instances", "gauge", "Plugin instances by actual state.");
        for (size_t i = 0; i < N_INST_STATES; i++)
            sample(&t, "plat_instances", ic[i], "state", inames[i], (const char *)NULL);
    }
    counter(&t, "plat_instance_restarts_total",
            "Instances restarted by the crash policy after their host died.",
            m->instance_restarts);

    /* Resources and abilities. */
    head(&t, "plat_resource_calls_total", "counter",
         "Resource requests of plugins answered, by kind and outcome.");
    for (int k = 0; k < PD_METRICS_RES_KINDS; k++) {
        sample(&t, "plat_resource_calls_total", m->resource_ok[k], "kind", g_res_kinds[k],
               "outcome", "ok", (const char *)NULL);
        sample(&t, "plat_resource_calls_total", m->resource_failed[k], "kind", g_res_kinds[k],
               "outcome", "error", (const char *)NULL);
    }
    head(&t, "plat_resource_denied_total", "counter",
         "Resource requests refused by policy (manifest, authorizer, sandbox), by kind.");
    for (int k = 0; k < PD_METRICS_RES_KINDS; k++)
        sample(&t, "plat_resource_denied_total", m->resource_denied[k], "kind", g_res_kinds[k],
               (const char *)NULL);
    counter(&t, "plat_task_runs_total", "Scheduled task runs delivered and answered OK.",
            m->task_runs);
    counter(&t, "plat_task_failures_total", "Scheduled task runs that failed.", m->task_failures);
    counter(&t, "plat_task_missed_total", "Missed task runs fired late after a restart.",
            m->task_missed);
    counter(&t, "plat_task_skipped_total",
            "Scheduled task runs not delivered (previous run still in flight, instance not "
            "running).",
            m->task_skipped);
    counter(&t, "plat_ability_denied_total",
            "Ability requests refused (instance not attached to the sending host, or the ability "
            "not declared in its manifest).",
            m->ability_denied);
    counter(&t, "plat_service_proxied_total",
            "Plugin web-service requests answered by the plugin.", m->service_proxied);
    counter(&t, "plat_service_unavailable_total",
            "Plugin web-service requests answered 503 (unhealthy or not registered).",
            m->service_unavailable);
    counter(&t, "plat_service_health_failures_total", "Failed web-service health checks.",
            m->service_health_failures);
    counter(&t, "plat_bus_auth_admitted_total",
            "Bus connections admitted by the ZAP handler (a known CURVE key).",
            m->bus_auth_admitted);
    counter(&t, "plat_bus_auth_refused_total",
            "Bus connections refused by the ZAP handler (an unknown CURVE key).",
            m->bus_auth_refused);
    counter(&t, "plat_bus_handshake_failed_total",
            "Bus handshakes that failed before ZAP (no CURVE, wrong server key).",
            m->bus_handshake_failed);
    counter(&t, "plat_trace_lines_total", "Messages logged by the tracing switch.",
            m->trace_lines);

    /* The API. */
    head(&t, "plat_http_requests_total", "counter",
         "HTTP API requests answered, by route pattern, method and status.");
    pd_api_stats_t *as = pd->api_stats;
    if (as) {
        qsort(as->items, as->n, sizeof *as->items, by_labels);
        for (size_t i = 0; i < as->n; i++) {
            char status[16];
            snprintf(status, sizeof status, "%u", as->items[i].status);
            sample(&t, "plat_http_requests_total", as->items[i].count, "route",
                   as->items[i].route, "method", as->items[i].method, "status", status,
                   (const char *)NULL);
        }
    }
    if (t.oom) {
        free(t.buf);
        return NULL;
    }
    *len = t.len;
    return t.buf;
}

pd_http_reply_t pd_api_get_metrics(pd_http_req_t *req)
{
    size_t len = 0;
    char *text = pd_metrics_render(req->pd, &len);
    if (!text)
        return pd_http_error(500, "internal", "out of memory");
    pd_http_reply_t r = {.status = 200, .raw = text, .raw_len = len};
    snprintf(r.content_type, sizeof r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    return r;
}
