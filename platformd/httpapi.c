/* REST/JSON API on libmicrohttpd, driven by the platform's libuv loop:
 * MHD runs without threads in epoll mode; a uv_poll on MHD's epoll fd and a
 * uv_timer from MHD_get_timeout() call MHD_run(). Loopback only. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "platformd.h"

struct pd_httpapi {
    pd_t *pd;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
};

typedef struct {
    int status;
    json_t *body; /* owned */
} http_reply_t;

/* A route handler: `param` is the {id} segment of a ".../{id}" route (else
 * NULL), `body` the parsed JSON body of a POST (else NULL). */
typedef http_reply_t (*route_fn)(pd_t *pd, const char *param, json_t *body);

#define BODY_MAX (64 * 1024)

static http_reply_t error_body(int status, const char *code, const char *message)
{
    return (http_reply_t){status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
                                            message)};
}

static uint64_t age(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

/* ---- routes ------------------------------------------------------------- */

static http_reply_t get_healthz(pd_t *pd, const char *param, json_t *body)
{
    (void)pd, (void)param, (void)body;
    return (http_reply_t){200, json_pack("{s:s}", "status", "ok")};
}

static http_reply_t get_status(pd_t *pd, const char *param, json_t *body)
{
    (void)param, (void)body;
    const plat_bus_stats_t *st = plat_bus_stats(pd->bus);
    pd_counts_t c = pd_registry_counts(pd->reg);
    json_t *dropped = json_object();
    static const char *const keys[PLAT_BUS_DROP__COUNT] = {
        [PLAT_BUS_DROP_FRAMES] = "frames",           [PLAT_BUS_DROP_TOO_BIG] = "too_big",
        [PLAT_BUS_DROP_UNDECODABLE] = "undecodable", [PLAT_BUS_DROP_INVALID] = "invalid",
        [PLAT_BUS_DROP_SPOOFED] = "spoofed",         [PLAT_BUS_DROP_LATE_REPLY] = "late_reply",
        [PLAT_BUS_DROP_MISDIRECTED] = "misdirected",
    };
    for (int i = 0; i < PLAT_BUS_DROP__COUNT; i++)
        json_object_set_new(dropped, keys[i], json_integer((json_int_t)st->dropped[i]));
    json_t *out = json_pack(
        "{s:s, s:s, s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:o, s:I}}",
        "version", PLAT_VERSION, "boot_id", pd->boot_id, "uptime_ms",
        (json_int_t)age(plat_mono_ms(), pd->started_ms), "counts", "hostboots",
        (json_int_t)c.hostboots, "hostboots_lost", (json_int_t)c.hostboots_lost, "hosts",
        (json_int_t)c.hosts, "hosts_lost", (json_int_t)c.hosts_lost, "hosts_ended",
        (json_int_t)c.hosts_ended, "bus", "rx", (json_int_t)st->rx, "tx", (json_int_t)st->tx,
        "tx_failed", (json_int_t)st->tx_failed, "forwarded", (json_int_t)st->forwarded,
        "dropped", dropped, "unknown_destination", (json_int_t)pd->unknown_destination);
    return (http_reply_t){200, out};
}

typedef struct {
    pd_t *pd;
    json_t *list;
    uint64_t now;
    const pd_endpoint_t *owner; /* add_owned_host: hostboot whose hosts to list */
} list_ctx_t;

static void add_owned_host(const pd_endpoint_t *ep, void *arg)
{
    list_ctx_t *ctx = arg;
    if (ep->kind == PD_EP_HOST && strcmp(ep->hostboot, ctx->owner->id) == 0 &&
        ep->host_state != PD_HOST_EXITED && ep->host_state != PD_HOST_FAILED)
        json_array_append_new(ctx->list, json_string(ep->id));
}

static void add_hostboot(const pd_endpoint_t *ep, void *arg)
{
    list_ctx_t *ctx = arg;
    if (ep->kind != PD_EP_HOSTBOOT)
        return;
    json_t *rts = json_array();
    for (size_t i = 0; i < ep->n_runtimes; i++)
        json_array_append_new(rts, json_pack("{s:s, s:s}", "language", ep->runtimes[i].language,
                                             "version", ep->runtimes[i].version));
    list_ctx_t owned = {.pd = ctx->pd, .list = json_array(), .owner = ep};
    pd_registry_foreach(ctx->pd->reg, add_owned_host, &owned);
    json_array_append_new(
        ctx->list,
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:o}", "id", ep->id, "name", ep->name,
                  "version", ep->version, "state", ep->lost ? "lost" : "ready", "boot_id",
                  ep->boot_id, "runtimes", rts, "last_heartbeat_age_ms",
                  (json_int_t)age(ctx->now, ep->last_seen_ms), "registered_age_ms",
                  (json_int_t)age(ctx->now, ep->registered_ms), "hosts", owned.list));
}

/* The API's view of a host. "lost" overrides the lifecycle state while a
 * ready or stopping host is silent. */
static json_t *host_json(const pd_endpoint_t *ep, uint64_t now)
{
    bool ended = ep->host_state == PD_HOST_EXITED || ep->host_state == PD_HOST_FAILED;
    bool on_bus = pd_endpoint_registered(ep);
    json_t *o = json_pack(
        "{s:s, s:i, s:s, s:o, s:s, s:s, s:s, s:b, s:s, s:o, s:I}", "id", ep->id, "pid",
        (int)ep->pid, "state", ep->lost ? "lost" : pd_host_state_name(ep->host_state), "hostboot",
        ep->hostboot[0] ? json_string(ep->hostboot) : json_null(), "language", ep->language,
        "version", ep->runtime_version, "mode", ep->mode, "dev", (int)ep->dev, "build_version",
        ep->version, "instances", json_array(), "uptime_ms",
        (json_int_t)(ended ? age(ep->ended_ms, ep->started_ms) : age(now, ep->started_ms)));
    if (ep->ready_ms && ep->ready_ms >= ep->started_ms && !ep->dev)
        json_object_set_new(o, "startup_ms",
                            json_integer((json_int_t)(ep->ready_ms - ep->started_ms)));
    if (on_bus)
        json_object_set_new(o, "last_heartbeat_age_ms",
                            json_integer((json_int_t)age(now, ep->last_seen_ms)));
    if (ep->host_state == PD_HOST_EXITED || (ep->host_state == PD_HOST_FAILED && ep->ended_ms &&
                                             (ep->exit_status || ep->term_signal)))
        json_object_set_new(o, "exit",
                            json_pack("{s:i, s:i}", "status", (int)ep->exit_status, "signal",
                                      (int)ep->term_signal));
    if (ep->host_state == PD_HOST_FAILED)
        json_object_set_new(o, "error",
                            json_pack("{s:i, s:s}", "code", ep->error_code, "message", ep->error));
    if (ended)
        json_object_set_new(o, "ended_age_ms", json_integer((json_int_t)age(now, ep->ended_ms)));
    return o;
}

static void add_host(const pd_endpoint_t *ep, void *arg)
{
    list_ctx_t *ctx = arg;
    if (ep->kind == PD_EP_HOST)
        json_array_append_new(ctx->list, host_json(ep, ctx->now));
}

static http_reply_t list(pd_t *pd, const char *key, void (*add)(const pd_endpoint_t *, void *))
{
    list_ctx_t ctx = {.pd = pd, .list = json_array(), .now = plat_mono_ms()};
    pd_registry_foreach(pd->reg, add, &ctx);
    return (http_reply_t){200, json_pack("{s:o}", key, ctx.list)};
}

static http_reply_t get_hostboots(pd_t *pd, const char *param, json_t *body)
{
    (void)param, (void)body;
    return list(pd, "hostboots", add_hostboot);
}

static http_reply_t get_hosts(pd_t *pd, const char *param, json_t *body)
{
    (void)param, (void)body;
    return list(pd, "hosts", add_host);
}

static const pd_endpoint_t *find_host(pd_t *pd, const char *id)
{
    const pd_endpoint_t *ep = pd_registry_find(pd->reg, id);
    return ep && ep->kind == PD_EP_HOST ? ep : NULL;
}

static http_reply_t get_host(pd_t *pd, const char *id, json_t *body)
{
    (void)body;
    const pd_endpoint_t *ep = find_host(pd, id);
    if (!ep)
        return error_body(404, "not_found", "no such host");
    return (http_reply_t){200, json_pack("{s:o}", "host", host_json(ep, plat_mono_ms()))};
}

/* Optional string member; false (with *why) when present but not a string. */
static bool opt_string(json_t *body, const char *key, const char **out, char *why, size_t size)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v)) {
        snprintf(why, size, "\"%s\" must be a string", key);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static http_reply_t post_hosts(pd_t *pd, const char *param, json_t *body)
{
    (void)param;
    char why[512] = "";
    if (!json_is_object(body))
        return error_body(400, "bad_request", "body must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "language") && strcmp(key, "version") && strcmp(key, "mode") &&
            strcmp(key, "hostboot")) {
            snprintf(why, sizeof why, "unknown member \"%.64s\" (language, version, mode, "
                                      "hostboot)", key);
            return error_body(400, "bad_request", why);
        }
    }
    const char *language, *version, *mode, *hostboot;
    if (!opt_string(body, "language", &language, why, sizeof why) ||
        !opt_string(body, "version", &version, why, sizeof why) ||
        !opt_string(body, "mode", &mode, why, sizeof why) ||
        !opt_string(body, "hostboot", &hostboot, why, sizeof why))
        return error_body(400, "bad_request", why);
    if (!language || !version)
        return error_body(400, "bad_request", "\"language\" and \"version\" are required");
    char id[PLAT_ID_MAX + 1];
    int rc = pd_hosts_start(pd, language, version, mode, hostboot, id, why, sizeof why);
    if (rc == -EINVAL)
        return error_body(400, "bad_request", why);
    if (rc == -ENOENT)
        return error_body(409, "no_runtime", why);
    if (rc < 0)
        return error_body(500, "internal", why);
    return (http_reply_t){202, json_pack("{s:o}", "host", host_json(find_host(pd, id),
                                                                    plat_mono_ms()))};
}

static http_reply_t delete_host(pd_t *pd, const char *id, json_t *body)
{
    (void)body;
    char why[256] = "";
    int rc = pd_hosts_delete(pd, id, why, sizeof why);
    if (rc == -ENOENT)
        return error_body(404, "not_found", why);
    if (rc == -EPERM)
        return error_body(409, "dev_host", why);
    if (rc == -EALREADY)
        return error_body(409, "ended", why);
    if (rc < 0)
        return error_body(503, "hostboot_unreachable", why);
    return (http_reply_t){202, json_pack("{s:o}", "host", host_json(find_host(pd, id),
                                                                    plat_mono_ms()))};
}

/* A path ending in "/{id}" matches one more non-empty segment: the param. */
static const struct {
    const char *method;
    const char *path;
    route_fn fn;
} g_routes[] = {
    {"GET", "/healthz", get_healthz},
    {"GET", "/api/v1/status", get_status},
    {"GET", "/api/v1/hostboots", get_hostboots},
    {"GET", "/api/v1/hosts", get_hosts},
    {"POST", "/api/v1/hosts", post_hosts},
    {"GET", "/api/v1/hosts/{id}", get_host},
    {"DELETE", "/api/v1/hosts/{id}", delete_host},
};

/* Does `url` match `pattern`? *param points into url for "/{id}" patterns. */
static bool route_match(const char *pattern, const char *url, const char **param)
{
    size_t n = strlen(pattern);
    *param = NULL;
    static const char suffix[] = "/{id}";
    size_t sn = sizeof suffix - 1;
    if (n >= sn && strcmp(pattern + n - sn, suffix) == 0) {
        if (strncmp(url, pattern, n - sn + 1) != 0)
            return false;
        const char *seg = url + n - sn + 1;
        if (!*seg || strchr(seg, '/'))
            return false;
        *param = seg;
        return true;
    }
    return strcmp(pattern, url) == 0;
}

/* ---- MHD glue ------------------------------------------------------------ */

typedef struct {
    char *data;
    size_t len;
    bool too_big;
} upload_t;

static enum MHD_Result send_reply(struct MHD_Connection *conn, http_reply_t r, const char *allow)
{
    char *text = r.body ? json_dumps(r.body, JSON_COMPACT) : NULL;
    json_decref(r.body);
    if (!text) {
        r.status = 500;
        text = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
        if (!text)
            return MHD_NO;
    }
    size_t len = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    upload_t *up = *con_cls;
    if (up) {
        free(up->data);
        free(up);
        *con_cls = NULL;
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    pd_httpapi_t *api = cls;
    if (*con_cls == NULL) {
        upload_t *up = calloc(1, sizeof *up);
        if (!up)
            return MHD_NO;
        *con_cls = up;
        return MHD_YES;
    }
    upload_t *up = *con_cls;
    if (*upload_data_size) {
        if (!up->too_big && up->len + *upload_data_size <= BODY_MAX) {
            char *d = realloc(up->data, up->len + *upload_data_size + 1);
            if (!d)
                return MHD_NO;
            memcpy(d + up->len, upload_data, *upload_data_size);
            up->data = d;
            up->len += *upload_data_size;
            up->data[up->len] = 0;
        } else {
            up->too_big = true;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    char allow[64] = "";
    for (size_t i = 0; i < sizeof g_routes / sizeof g_routes[0]; i++) {
        const char *param;
        if (!route_match(g_routes[i].path, url, &param))
            continue;
        bool head = strcmp(method, "HEAD") == 0 && strcmp(g_routes[i].method, "GET") == 0;
        if (strcmp(g_routes[i].method, method) != 0 && !head) {
            size_t used = strlen(allow);
            snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "",
                     g_routes[i].method);
            continue;
        }
        if (up->too_big)
            return send_reply(conn, error_body(413, "too_large", "request body over 64 KiB"),
                              NULL);
        json_t *body = NULL;
        if (strcmp(method, "POST") == 0) {
            json_error_t jerr;
            body = up->data ? json_loadb(up->data, up->len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
            if (!body) {
                char why[256];
                snprintf(why, sizeof why, "body is not JSON: %s (line %d, column %d)",
                         up->data ? jerr.text : "empty body", up->data ? jerr.line : 0,
                         up->data ? jerr.column : 0);
                plat_log_info("http", "bad request body method=%s path=%s: %s", method, url, why);
                return send_reply(conn, error_body(400, "bad_request", why), NULL);
            }
        }
        http_reply_t r = g_routes[i].fn(api->pd, param, body);
        json_decref(body);
        if (r.status >= 400 || strcmp(method, "GET") != 0)
            plat_log_info("http", "%s %s -> %d", method, url, r.status);
        return send_reply(conn, r, NULL);
    }
    if (allow[0]) {
        plat_log_info("http", "method not allowed method=%s path=%s", method, url);
        if (strstr(allow, "GET"))
            strncat(allow, ", HEAD", sizeof allow - strlen(allow) - 1);
        return send_reply(conn, error_body(405, "method_not_allowed", "method not allowed"),
                          allow);
    }
    plat_log_info("http", "no such route method=%s path=%s", method, url);
    return send_reply(conn, error_body(404, "not_found", "no such route"), NULL);
}

static void run_mhd(pd_httpapi_t *api);

static void on_timer(uv_timer_t *t) { run_mhd(t->data); }

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    run_mhd(p->data);
}

static void run_mhd(pd_httpapi_t *api)
{
    MHD_run(api->mhd);
    MHD_UNSIGNED_LONG_LONG timeout = 0;
    if (MHD_get_timeout(api->mhd, &timeout) == MHD_YES)
        uv_timer_start(&api->timer, on_timer, (uint64_t)timeout, 0);
    else
        uv_timer_stop(&api->timer);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    plat_log_warn("http", "libmicrohttpd: %s", buf);
}

pd_httpapi_t *pd_httpapi_new(pd_t *pd, const char *address, uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    struct sockaddr *sa = (struct sockaddr *)&sin;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (strcmp(address, "localhost") == 0) {
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (inet_pton(AF_INET, address, &sin.sin_addr) == 1) {
        /* IPv4 loopback, checked by the config */
    } else if (inet_pton(AF_INET6, address, &sin6.sin6_addr) == 1) {
        sa = (struct sockaddr *)&sin6;
        flags |= MHD_USE_IPv6;
    } else {
        plat_log_err("http", "bad listen address address=%s", address);
        errno = EINVAL;
        return NULL;
    }
    pd_httpapi_t *api = calloc(1, sizeof *api);
    if (!api)
        return NULL;
    api->pd = pd;
    api->mhd = MHD_start_daemon(flags, port, NULL, NULL, on_request, api,
                                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                                MHD_OPTION_END);
    if (!api->mhd) {
        int e = errno ? errno : EADDRINUSE;
        free(api);
        errno = e;
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info || uv_poll_init(pd->loop, &api->poll, info->epoll_fd) != 0) {
        MHD_stop_daemon(api->mhd);
        free(api);
        errno = EIO;
        return NULL;
    }
    uv_timer_init(pd->loop, &api->timer);
    api->poll.data = api->timer.data = api;
    api->open_handles = 2;
    uv_poll_start(&api->poll, UV_READABLE, on_poll);
    run_mhd(api);
    plat_log_info("http", "serving the API on http://%s:%u", address, (unsigned)port);
    return api;
}

static void on_closed(uv_handle_t *h)
{
    pd_httpapi_t *api = h->data;
    if (--api->open_handles == 0)
        free(api);
}

void pd_httpapi_close(pd_httpapi_t **apip)
{
    if (!apip || !*apip)
        return;
    pd_httpapi_t *api = *apip;
    *apip = NULL;
    /* uv_close stops watching the epoll fd at once; MHD may close it now. */
    uv_close((uv_handle_t *)&api->poll, on_closed);
    uv_close((uv_handle_t *)&api->timer, on_closed);
    MHD_stop_daemon(api->mhd);
    api->mhd = NULL;
}
