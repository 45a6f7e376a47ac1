/* REST/JSON API on libmicrohttpd, driven by the platform's libuv loop:
 * MHD runs without threads in epoll mode; a uv_poll on MHD's epoll fd and a
 * uv_timer from MHD_get_timeout() call MHD_run(). Loopback only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "lifecycle.h"
#include "platformd.h"
#include "websvc.h"

struct pd_httpapi {
    pd_t *pd;
    char token[128]; /* bearer token of mutating routes */
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
};



#define BODY_MAX (64 * 1024)

pd_http_reply_t pd_http_error(int status, const char *code, const char *message)
{
    return (pd_http_reply_t){.status = status,
                             .body = json_pack("{s:{s:s, s:s}}", "error", "code", code,
                                               "message", message)};
}

pd_http_reply_t pd_http_json(int status, json_t *body)
{
    return (pd_http_reply_t){.status = status, .body = body};
}

static uint64_t age(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

/* ---- routes ------------------------------------------------------------- */

static pd_http_reply_t get_healthz(pd_http_req_t *req)
{
    (void)req;
    return pd_http_json(200, json_pack("{s:s}", "status", "ok"));
}

static pd_http_reply_t get_status(pd_http_req_t *req)
{
    pd_t *pd = req->pd;
    const plat_bus_stats_t *st = plat_bus_stats(pd->bus);
    pd_counts_t c = pd_registry_counts(pd->reg);
    json_t *dropped = json_object();
    for (int i = 0; i < PLAT_BUS_DROP__COUNT; i++)
        json_object_set_new(dropped, plat_bus_drop_key(i),
                            json_integer((json_int_t)st->dropped[i]));
    json_t *out = json_pack(
        "{s:s, s:s, s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:o, s:I}}",
        "version", PLAT_VERSION, "boot_id", pd->boot_id, "uptime_ms",
        (json_int_t)age(plat_mono_ms(), pd->started_ms), "counts", "hostboots",
        (json_int_t)c.hostboots, "hostboots_lost", (json_int_t)c.hostboots_lost, "hosts",
        (json_int_t)c.hosts, "hosts_lost", (json_int_t)c.hosts_lost, "hosts_ended",
        (json_int_t)c.hosts_ended, "bus", "rx", (json_int_t)st->rx, "tx", (json_int_t)st->tx,
        "tx_failed", (json_int_t)st->tx_failed, "forwarded", (json_int_t)st->forwarded,
        "dropped", dropped, "unknown_destination", (json_int_t)pd->unknown_destination);
    return pd_http_json(200, out);
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
static json_t *host_json(pd_t *pd, const pd_endpoint_t *ep, uint64_t now)
{
    bool ended = ep->host_state == PD_HOST_EXITED || ep->host_state == PD_HOST_FAILED;
    bool on_bus = pd_endpoint_registered(ep);
    json_t *o = json_pack(
        "{s:s, s:i, s:s, s:o, s:s, s:s, s:s, s:b, s:s, s:o, s:I}", "id", ep->id, "pid",
        (int)ep->pid, "state", ep->lost ? "lost" : pd_host_state_name(ep->host_state), "hostboot",
        ep->hostboot[0] ? json_string(ep->hostboot) : json_null(), "language", ep->language,
        "version", ep->runtime_version, "mode", ep->mode, "dev", (int)ep->dev, "build_version",
        ep->version, "instances", pd_lifecycle_host_instances(pd->lifecycle, ep->id), "uptime_ms",
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
        json_array_append_new(ctx->list, host_json(ctx->pd, ep, ctx->now));
}

static pd_http_reply_t list(pd_t *pd, const char *key, void (*add)(const pd_endpoint_t *, void *))
{
    list_ctx_t ctx = {.pd = pd, .list = json_array(), .now = plat_mono_ms()};
    pd_registry_foreach(pd->reg, add, &ctx);
    return pd_http_json(200, json_pack("{s:o}", key, ctx.list));
}

static pd_http_reply_t get_hostboots(pd_http_req_t *req)
{
    return list(req->pd, "hostboots", add_hostboot);
}

static pd_http_reply_t get_hosts(pd_http_req_t *req)
{
    return list(req->pd, "hosts", add_host);
}

static const pd_endpoint_t *find_host(pd_t *pd, const char *id)
{
    const pd_endpoint_t *ep = pd_registry_find(pd->reg, id);
    return ep && ep->kind == PD_EP_HOST ? ep : NULL;
}

static pd_http_reply_t get_host(pd_http_req_t *req)
{
    pd_t *pd = req->pd;
    const char *id = req->params[0];
    const pd_endpoint_t *ep = find_host(pd, id);
    if (!ep)
        return pd_http_error(404, "not_found", "no such host");
    return pd_http_json(200, json_pack("{s:o}", "host", host_json(pd, ep, plat_mono_ms())));
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

static pd_http_reply_t post_hosts(pd_http_req_t *req)
{
    pd_t *pd = req->pd;
    json_t *body = req->body;
    char why[512] = "";
    if (!json_is_object(body))
        return pd_http_error(400, "bad_request", "body must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "language") && strcmp(key, "version") && strcmp(key, "mode") &&
            strcmp(key, "hostboot")) {
            snprintf(why, sizeof why, "unknown member \"%.64s\" (language, version, mode, "
                                      "hostboot)", key);
            return pd_http_error(400, "bad_request", why);
        }
    }
    const char *language, *version, *mode, *hostboot;
    if (!opt_string(body, "language", &language, why, sizeof why) ||
        !opt_string(body, "version", &version, why, sizeof why) ||
        !opt_string(body, "mode", &mode, why, sizeof why) ||
        !opt_string(body, "hostboot", &hostboot, why, sizeof why))
        return pd_http_error(400, "bad_request", why);
    if (!language || !version)
        return pd_http_error(400, "bad_request", "\"language\" and \"version\" are required");
    char id[PLAT_ID_MAX + 1];
    int rc = pd_hosts_start(pd, language, version, mode, hostboot, NULL, NULL, id, why,
                            sizeof why);
    if (rc == -EINVAL)
        return pd_http_error(400, "bad_request", why);
    if (rc == -ENOENT)
        return pd_http_error(409, "no_runtime", why);
    if (rc < 0)
        return pd_http_error(500, "internal", why);
    return pd_http_json(202, json_pack("{s:o}", "host", host_json(pd, find_host(pd, id),
                                                                   plat_mono_ms())));
}

static pd_http_reply_t delete_host(pd_http_req_t *req)
{
    pd_t *pd = req->pd;
    const char *id = req->params[0];
    char why[256] = "";
    int rc = pd_hosts_delete(pd, id, why, sizeof why);
    if (rc == -ENOENT)
        return pd_http_error(404, "not_found", why);
    if (rc == -EPERM)
        return pd_http_error(409, "dev_host", why);
    if (rc == -EALREADY)
        return pd_http_error(409, "ended", why);
    if (rc < 0)
        return pd_http_error(503, "hostboot_unreachable", why);
    return pd_http_json(202, json_pack("{s:o}", "host", host_json(pd, find_host(pd, id),
                                                                   plat_mono_ms())));
}

/* Patterns: literal segments, or "{name}" for one non-empty segment
 * (captured in order, at most two). `json` routes get their body parsed. */
static const struct {
    const char *method;
    const char *path;
    pd_route_fn fn;
    bool json;
} g_routes[] = {
    {"GET", "/healthz", get_healthz, false},
    {"GET", "/api/v1/status", get_status, false},
    {"GET", "/api/v1/hostboots", get_hostboots, false},
    {"GET", "/api/v1/hosts", get_hosts, false},
    {"POST", "/api/v1/hosts", post_hosts, true},
    {"GET", "/api/v1/hosts/{id}", get_host, false},
    {"DELETE", "/api/v1/hosts/{id}", delete_host, false},
    {"POST", "/api/v1/packages", pd_api_post_packages, true},
    {"GET", "/api/v1/packages", pd_api_get_packages, false},
    {"POST", "/api/v1/instances", pd_api_post_instances, true},
    {"GET", "/api/v1/instances", pd_api_get_instances, false},
    {"GET", "/api/v1/instances/{uuid}", pd_api_get_instance, false},
    {"GET", "/api/v1/instances/{uuid}/actions", pd_api_get_instance_actions, false},
    {"POST", "/api/v1/instances/{uuid}/invoke", pd_api_invoke, false},
    {"POST", "/api/v1/instances/{uuid}/{action}", pd_api_instance_action, true},
    {"POST", "/api/v1/orgs/{org}/{action}", pd_api_org_action, true},
    {"GET", "/api/v1/diag", pd_api_get_diag, false},
    {"GET", "/metrics", pd_api_get_metrics, false},
    {"GET", "/api/v1/trace", pd_api_get_trace, false},
    {"POST", "/api/v1/trace", pd_api_post_trace, true},
    {"GET", "/api/v1/hosts/{id}/log", pd_api_get_host_log, false},
};

static bool route_match(const char *pattern, const char *url, const char *params[2],
                        char buf[2][256])
{
    int np = 0;
    params[0] = params[1] = NULL;
    while (*pattern && *url) {
        if (*pattern != '/' || *url != '/')
            return false;
        pattern++, url++;
        const char *pe = strchr(pattern, '/');
        const char *ue = strchr(url, '/');
        size_t pl = pe ? (size_t)(pe - pattern) : strlen(pattern);
        size_t ul = ue ? (size_t)(ue - url) : strlen(url);
        if (pl >= 2 && pattern[0] == '{' && pattern[pl - 1] == '}') {
            if (ul == 0 || ul >= 256 || np == 2)
                return false;
            memcpy(buf[np], url, ul);
            buf[np][ul] = 0;
            params[np] = buf[np];
            np++;
        } else if (pl != ul || strncmp(pattern, url, pl) != 0) {
            return false;
        }
        pattern += pl;
        url += ul;
    }
    return !*pattern && !*url;
}

/* ---- MHD glue ------------------------------------------------------------ */

/* Per-connection state: the upload, and a reply finished while suspended.
 * Created by the URI log callback (on_uri), which sees the raw request
 * target: the web-service proxy forwards it as received. */
typedef struct {
    pd_httpapi_t *api;
    struct MHD_Connection *conn;
    bool started;     /* on_request saw the headers */
    char *data;
    size_t len;
    size_t max;       /* body cap: BODY_MAX, or services.max_body_bytes when proxied */
    bool too_big;
    bool in_handler;  /* the route is running: finishing now needs no resume */
    bool suspended;   /* MHD_suspend_connection'ed */
    bool have_reply;
    pd_http_reply_t reply;
    /* ANY /plugins/{uuid}/svc/...: the web-service proxy (websvc.h) */
    bool svc;
    char svc_instance[PLAT_UUID_LEN + 1];
    char *svc_target;        /* raw path + query after "/svc" */
    pd_websvc_call_t *call;  /* in flight */
    struct MHD_Response *mresp; /* its answer, to be queued */
    unsigned mstatus;
    const char *route;       /* metrics: the matched pattern, NULL = none */
    char method[16];         /* metrics: the request method */
} upload_t;

static enum MHD_Result send_reply(struct MHD_Connection *conn, pd_http_reply_t r,
                                  const char *allow)
{
    char *text = r.raw;
    size_t len = r.raw_len;
    const char *ctype = r.raw ? (r.content_type[0] ? r.content_type : "application/octet-stream")
                              : "application/json";
    if (!r.raw) {
        text = r.body ? json_dumps(r.body, JSON_COMPACT) : NULL;
        len = text ? strlen(text) : 0;
    }
    json_decref(r.body);
    if (!text) {
        r.status = 500;
        ctype = "application/json";
        text = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
        if (!text)
            return MHD_NO;
        len = strlen(text);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
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
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
        if (ci && ci->http_status) /* one count per answered request (metrics.c) */
            pd_metrics_api(up->api->pd, up->route, up->method, ci->http_status);
        if (up->have_reply) { /* finished but never sent */
            json_decref(up->reply.body);
            free(up->reply.raw);
        }
        if (up->call) /* the client went away while proxied */
            pd_websvc_proxy_abort(up->api->pd, up->call);
        if (up->mresp)
            MHD_destroy_response(up->mresp);
        free(up->svc_target);
        free(up->data);
        free(up);
        *con_cls = NULL;
    }
}

/* MHD_OPTION_URI_LOG_CALLBACK: the request's state, made when the request
 * line is read, with the raw target (the proxy forwards it undecoded). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    pd_httpapi_t *api = cls;
    upload_t *up = calloc(1, sizeof *up);
    if (!up)
        return NULL;
    up->api = api;
    up->conn = conn;
    up->max = BODY_MAX;
    /* "/plugins/<uuid>/svc" then end, "/..." or "?..." */
    static const char pre[] = "/plugins/";
    if (uri && strncmp(uri, pre, sizeof pre - 1) == 0) {
        const char *id = uri + sizeof pre - 1;
        size_t idlen = strcspn(id, "/?");
        const char *rest = id + idlen;
        if (idlen > 0 && idlen <= PLAT_UUID_LEN && strncmp(rest, "/svc", 4) == 0 &&
            (rest[4] == 0 || rest[4] == '/' || rest[4] == '?')) {
            up->svc_target = strdup(rest + 4);
            if (up->svc_target) {
                up->svc = true;
                memcpy(up->svc_instance, id, idlen);
                up->svc_instance[idlen] = 0;
                if (api->pd->websvc)
                    up->max = pd_websvc_max_body(api->pd);
            }
        }
    }
    return up;
}

const char *pd_http_query(pd_http_req_t *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *pd_http_header(pd_http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static void run_mhd(pd_httpapi_t *api);
static void on_timer(uv_timer_t *t);

/* The connection is suspended only once the route has returned (on_request
 * does it), so a request finished synchronously is simply answered. */
pd_http_pending_t *pd_http_suspend(pd_http_req_t *req) { return (pd_http_pending_t *)req->state; }

static void resume(upload_t *up)
{
    up->suspended = false;
    MHD_resume_connection(up->conn);
    if (up->api->mhd)
        uv_timer_start(&up->api->timer, on_timer, 0, 0);
}

void pd_http_finish(pd_http_pending_t *p, pd_http_reply_t reply)
{
    upload_t *up = (upload_t *)p;
    up->reply = reply;
    up->have_reply = true;
    if (up->in_handler)
        return;
    up->suspended = false;
    MHD_resume_connection(up->conn);
    /* Let MHD pick it up on the next loop turn, not from inside whatever
     * callback finished it. */
    if (up->api->mhd)
        uv_timer_start(&up->api->timer, on_timer, 0, 0);
}

/* Constant-time comparison of the Authorization header with our token. */
static bool authorized(const pd_httpapi_t *api, struct MHD_Connection *conn)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    static const char prefix[] = "Bearer ";
    if (!h || strncmp(h, prefix, sizeof prefix - 1) != 0)
        return false;
    h += sizeof prefix - 1;
    size_t n = strlen(api->token), m = strlen(h);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(api->token[i] ^ (i < m ? h[i] : 0));
    return diff == 0 && n > 0;
}

/* Read the token file, or create it with a random token. The file must be
 * ours and private: anything else is refused, naming the file. */
static int load_token(const char *path, char *out, size_t size)
{
    /* Non-blocking: a FIFO put there must be refused, not hang the start. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 && errno == ENOENT) {
        unsigned char raw[24];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
            return -EIO;
        for (size_t i = 0; i < sizeof raw; i++)
            snprintf(out + 2 * i, size - 2 * i, "%02x", raw[i]);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return -errno;
        char line[64];
        int len = snprintf(line, sizeof line, "%s\n", out);
        bool ok = write(fd, line, (size_t)len) == len && fsync(fd) == 0;
        close(fd);
        if (!ok)
            return -EIO;
        plat_log_notice("http", "created the API token file path=%s", path);
        return 0;
    }
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) ||
        st.st_uid != geteuid()) {
        close(fd);
        plat_log_err("http", "token file must be a regular file, mode 0600, owned by uid %d "
                             "path=%s",
                     (int)geteuid(), path);
        return -EPERM;
    }
    ssize_t n = read(fd, out, size - 1);
    close(fd);
    if (n < 0)
        return -EIO;
    out[n] = 0;
    out[strcspn(out, "\r\n")] = 0;
    if (strlen(out) < 16) {
        plat_log_err("http", "token in the token file is shorter than 16 characters path=%s",
                     path);
        return -EINVAL;
    }
    return 0;
}

/* ---- the web-service proxy ---------------------------------------------- */

typedef struct {
    pd_httpapi_t *api;
    pd_websvc_header_t *v;
    size_t n, cap;
} hdr_vec_t;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    hdr_vec_t *h = cls;
    if (!key)
        return MHD_YES;
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 32;
        pd_websvc_header_t *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return MHD_NO;
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n++] = (pd_websvc_header_t){key, value ? value : ""};
    return MHD_YES;
}

/* The websvc answer: made into an MHD response, queued now (answered
 * within pd_websvc_proxy) or once the connection is resumed. */
static void on_proxy_reply(void *arg, const pd_websvc_reply_t *r)
{
    upload_t *up = arg;
    up->call = NULL;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->body_len, (void *)r->body, MHD_RESPMEM_MUST_COPY);
    if (resp) {
        if (r->is_error)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        for (size_t i = 0; i < r->n_headers; i++)
            if (MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value) != MHD_YES)
                plat_log_debug("http", "proxied header not passed on header=%s",
                               r->headers[i].name);
    }
    up->mresp = resp; /* NULL: the connection is closed */
    up->mstatus = r->status;
    if (r->status >= 400)
        plat_log_info("http", "proxy -> %u instance=%s", r->status, up->svc_instance);
    if (!up->in_handler && up->suspended)
        resume(up);
}

static enum MHD_Result queue_proxied(upload_t *up)
{
    struct MHD_Response *resp = up->mresp;
    up->mresp = NULL;
    if (!resp)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(up->conn, up->mstatus, resp);
    MHD_destroy_response(resp);
    return ret;
}

static bool authorized(const pd_httpapi_t *api, struct MHD_Connection *conn);

/* ANY /plugins/{uuid}/svc/...: no bearer token (see docs/http-and-services.md);
 * the platform's own token is never passed on to a plugin. */
static enum MHD_Result proxy(pd_httpapi_t *api, upload_t *up, struct MHD_Connection *conn,
                             const char *method)
{
    if (!api->pd->websvc)
        return send_reply(conn, pd_http_error(503, "service_unavailable",
                                              "web services are not running"), NULL);
    if (up->too_big)
        return send_reply(conn, pd_http_error(413, "too_large",
                                              "request body over services.max_body_bytes"),
                          NULL);
    hdr_vec_t h = {.api = api};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &h);
    if (authorized(api, conn)) {
        size_t j = 0;
        for (size_t i = 0; i < h.n; i++)
            if (strcasecmp(h.v[i].name, MHD_HTTP_HEADER_AUTHORIZATION) != 0)
                h.v[j++] = h.v[i];
        h.n = j;
    }
    up->in_handler = true;
    pd_websvc_call_t *call =
        pd_websvc_proxy(api->pd, up->svc_instance, method, up->svc_target, h.v, h.n,
                        up->data ? up->data : "", up->len, on_proxy_reply, up);
    up->in_handler = false;
    free(h.v);
    if (!call) /* answered already */
        return queue_proxied(up);
    up->call = call;
    up->suspended = true;
    MHD_suspend_connection(conn); /* on_proxy_reply resumes it */
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    pd_httpapi_t *api = cls;
    if (*con_cls == NULL) { /* on_uri ran out of memory */
        upload_t *up = calloc(1, sizeof *up);
        if (!up)
            return MHD_NO;
        up->api = api;
        up->conn = conn;
        up->max = BODY_MAX;
        *con_cls = up;
    }
    upload_t *up = *con_cls;
    if (!up->started) {
        up->started = true;
        up->conn = conn;
        snprintf(up->method, sizeof up->method, "%s", method);
        return MHD_YES;
    }
    if (up->mresp)
        return queue_proxied(up);
    if (up->have_reply) {
        up->have_reply = false;
        return send_reply(conn, up->reply, NULL);
    }
    if (*upload_data_size) {
        if (!up->too_big && up->len + *upload_data_size <= up->max) {
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

    if (up->svc)
        up->route = "/plugins/{uuid}/svc";
    if (up->svc)
        return proxy(api, up, conn, method);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && !authorized(api, conn)) {
        plat_log_warn("http", "unauthorized request refused method=%s path=%s", method, url);
        pd_http_reply_t r = pd_http_error(401, "unauthorized",
                                          "mutating routes need Authorization: Bearer <token> "
                                          "(the platform's token file)");
        return send_reply(conn, r, NULL);
    }
    char allow[64] = "";
    char buf[2][256];
    for (size_t i = 0; i < sizeof g_routes / sizeof g_routes[0]; i++) {
        pd_http_req_t req = {.pd = api->pd, .method = method, .url = url, .conn = conn,
                             .state = up, .raw = up->data ? up->data : "", .raw_len = up->len};
        if (!route_match(g_routes[i].path, url, req.params, buf))
            continue;
        bool head = strcmp(method, "HEAD") == 0 && strcmp(g_routes[i].method, "GET") == 0;
        if (strcmp(g_routes[i].method, method) != 0 && !head) {
            if (!strstr(allow, g_routes[i].method)) {
                size_t used = strlen(allow);
                snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "",
                         g_routes[i].method);
            }
            continue;
        }
        up->route = g_routes[i].path;
        if (up->too_big)
            return send_reply(conn, pd_http_error(413, "too_large", "request body over 64 KiB"),
                              NULL);
        if (g_routes[i].json) {
            json_error_t jerr;
            req.body = up->len ? json_loadb(up->data, up->len, JSON_REJECT_DUPLICATES, &jerr)
                               : json_object();
            if (!req.body) {
                char why[256];
                snprintf(why, sizeof why, "body is not JSON: %s (line %d, column %d)",
                         jerr.text, jerr.line, jerr.column);
                plat_log_info("http", "bad request body method=%s path=%s: %s", method, url, why);
                return send_reply(conn, pd_http_error(400, "bad_request", why), NULL);
            }
        }
        up->in_handler = true;
        pd_http_reply_t r = g_routes[i].fn(&req);
        up->in_handler = false;
        json_decref(req.body);
        if (r.status == 0) {
            if (up->have_reply) { /* finished before the route returned */
                up->have_reply = false;
                r = up->reply;
            } else {
                up->suspended = true;
                MHD_suspend_connection(conn); /* pd_http_finish resumes it */
                return MHD_YES;
            }
        }
        if (r.status >= 400 || strcmp(method, "GET") != 0)
            plat_log_info("http", "request answered method=%s path=%s status=%d", method, url,
                          r.status);
        return send_reply(conn, r, NULL);
    }
    if (allow[0]) {
        plat_log_info("http", "method not allowed method=%s path=%s", method, url);
        if (strstr(allow, "GET"))
            strncat(allow, ", HEAD", sizeof allow - strlen(allow) - 1);
        return send_reply(conn, pd_http_error(405, "method_not_allowed", "method not allowed"),
                          allow);
    }
    plat_log_info("http", "no such route method=%s path=%s", method, url);
    return send_reply(conn, pd_http_error(404, "not_found", "no such route"), NULL);
}

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
    __attribute__((format(printf, 2, 0)));
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    plat_log_warn("http", "libmicrohttpd: %s", buf);
}

pd_httpapi_t *pd_httpapi_new(pd_t *pd, const char *address, uint16_t port,
                             const char *token_file)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    struct sockaddr *sa = (struct sockaddr *)&sin;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
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
    int trc = load_token(token_file, api->token, sizeof api->token);
    if (trc < 0) {
        plat_log_err("http", "cannot use the API token file: %s path=%s", strerror(-trc),
                     token_file);
        free(api);
        errno = -trc;
        return NULL;
    }
    api->mhd = MHD_start_daemon(flags, port, NULL, NULL, on_request, api,
                                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                MHD_OPTION_URI_LOG_CALLBACK, on_uri, api,
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
