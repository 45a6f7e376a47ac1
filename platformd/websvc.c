/* Plugin web services: registrations, health checks, the proxy (see
 * websvc.h). Transfers run on curlmulti; one uv_timer per service paces its
 * checks. */
#include "websvc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "curlmulti.h"
#include "lifecycle.h"
#include "store.h"

#define MAX_RESP_HEADERS 256
#define MAX_HEADER_BYTES (256 * 1024)

typedef enum { SVC_STARTING = 0, SVC_HEALTHY, SVC_UNHEALTHY } svc_state_t;

static const char *const g_state_names[] = {"starting", "healthy", "unhealthy"};

typedef struct svc svc_t;

struct pd_websvc_call {
    pd_websvc_call_t *next, *prev;
    svc_t *svc;
    CURL *easy;
    struct curl_slist *slist;
    char *body; /* request body (copy) */
    size_t body_len;
    char *rbody;
    size_t rlen, rcap;
    bool too_big;
    pd_websvc_header_t rh[MAX_RESP_HEADERS]; /* strings owned */
    size_t n_rh;
    size_t rh_bytes;
    char errbuf[CURL_ERROR_SIZE];
    pd_websvc_reply_fn reply;
    void *arg;
};

struct svc {
    svc_t *next;
    pd_websvc_t *ws;
    char instance[PLAT_UUID_LEN + 1];
    uint16_t port;
    char *health_path;
    svc_state_t state;
    unsigned consecutive_failures;
    uint64_t checks, checks_failed, transitions, proxied;
    uint64_t registered_ms, last_check_ms;
    char last_error[256];
    uv_timer_t timer;
    CURL *check;
    char check_errbuf[CURL_ERROR_SIZE];
    pd_websvc_call_t *calls;
};

struct pd_websvc {
    pd_t *pd;
    svc_t *svcs;
};

/* ---- helpers ---------------------------------------------------------- */

static svc_t *find(pd_websvc_t *ws, const char *instance)
{
    for (svc_t *s = ws ? ws->svcs : NULL; s; s = s->next)
        if (strcmp(s->instance, instance) == 0)
            return s;
    return NULL;
}

static bool hop_by_hop(const char *name)
{
    static const char *const names[] = {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te",         "trailer",    "trailers",           "transfer-encoding",   "upgrade"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

/* Is `name` listed in a Connection header value ("close, X-Foo")? */
static bool in_connection(const char *conn, const char *name)
{
    if (!conn)
        return false;
    size_t n = strlen(name);
    const char *p = conn;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == n && strncasecmp(p, name, n) == 0)
            return true;
        p = e;
    }
    return false;
}

static void send_error(pd_websvc_reply_fn reply, void *arg, unsigned status, const char *code,
                       const char *message)
{
    json_t *j = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    pd_websvc_reply_t r = {.status = status,
                           .is_error = true,
                           .body = text ? text : "",
                           .body_len = text ? strlen(text) : 0};
    reply(arg, &r);
    free(text);
}

/* ---- health checks ---------------------------------------------------- */

static void schedule_check(svc_t *s, uint64_t delay_ms);

static void set_state(svc_t *s, svc_state_t st, const char *why)
{
    if (s->state == st)
        return;
    svc_state_t old = s->state;
    s->state = st;
    s->transitions++;
    if (st == SVC_HEALTHY)
        plat_log_notice("websvc", "web service %s (was %s) instance=%s port=%u", g_state_names[st],
                        g_state_names[old], s->instance, (unsigned)s->port);
    else
        plat_log_warn("websvc", "web service %s (was %s): %s instance=%s port=%u",
                      g_state_names[st], g_state_names[old], why, s->instance, (unsigned)s->port);
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data, (void)arg;
    return size * n;
}

static void on_check_done(void *arg, CURL *easy, CURLcode rc, bool cancelled)
{
    svc_t *s = arg;
    pd_t *pd = s->ws->pd;
    long status = 0;
    char why[300] = "";
    if (rc == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(why, sizeof why, "%s",
                 s->check_errbuf[0] ? s->check_errbuf : curl_easy_strerror(rc));
    curl_easy_cleanup(easy);
    s->check = NULL;
    if (cancelled)
        return;
    s->checks++;
    s->last_check_ms = plat_mono_ms();
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        s->consecutive_failures = 0;
        s->last_error[0] = 0;
        set_state(s, SVC_HEALTHY, "");
    } else {
        if (rc == CURLE_OK)
            snprintf(why, sizeof why, "GET %s answered %ld", s->health_path, status);
        snprintf(s->last_error, sizeof s->last_error, "%.250s", why);
        s->consecutive_failures++;
        s->checks_failed++;
        pd->metrics.service_health_failures++;
        plat_log_debug("websvc", "health check failed: %s instance=%s", why, s->instance);
        if (s->consecutive_failures >= (unsigned)pd->cfg->services.unhealthy_after)
            set_state(s, SVC_UNHEALTHY, why);
    }
    schedule_check(s, (uint64_t)pd->cfg->services.health_interval_ms);
}

static void on_check_timer(uv_timer_t *t)
{
    svc_t *s = t->data;
    pd_t *pd = s->ws->pd;
    if (s->check)
        return; /* one at a time; the running one schedules the next */
    CURL *e = curl_easy_init();
    if (!e) {
        schedule_check(s, (uint64_t)pd->cfg->services.health_interval_ms);
        return;
    }
    char url[600];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)s->port, s->health_path);
    s->check_errbuf[0] = 0;
    curl_easy_setopt(e, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP);
#endif
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)pd->cfg->services.health_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)pd->cfg->services.health_timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->check_errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "openplatform-health/" PLAT_VERSION);
    if (pd_curlm_add(pd->curlm, e, on_check_done, s) < 0) {
        curl_easy_cleanup(e);
        schedule_check(s, (uint64_t)pd->cfg->services.health_interval_ms);
        return;
    }
    s->check = e;
}

static void schedule_check(svc_t *s, uint64_t delay_ms)
{
    uv_timer_start(&s->timer, on_check_timer, delay_ms, 0);
}

/* ---- the proxy -------------------------------------------------------- */

static void call_free(pd_websvc_call_t *c)
{
    if (c->easy)
        curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->slist);
    for (size_t i = 0; i < c->n_rh; i++) {
        free((char *)c->rh[i].name);
        free((char *)c->rh[i].value);
    }
    free(c->body);
    free(c->rbody);
    free(c);
}

static void call_unlink(pd_websvc_call_t *c)
{
    svc_t *s = c->svc;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    pd_websvc_call_t *c = arg;
    size_t len = size * n;
    size_t max = (size_t)c->svc->ws->pd->cfg->services.max_body_bytes;
    if (c->rlen + len > max) {
        c->too_big = true;
        return 0;
    }
    if (c->rlen + len > c->rcap) {
        size_t cap = c->rcap ? c->rcap : 4096;
        while (cap < c->rlen + len)
            cap *= 2;
        char *b = realloc(c->rbody, cap);
        if (!b)
            return 0;
        c->rbody = b;
        c->rcap = cap;
    }
    memcpy(c->rbody + c->rlen, data, len);
    c->rlen += len;
    return len;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    pd_websvc_call_t *c = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        for (size_t i = 0; i < c->n_rh; i++) {
            free((char *)c->rh[i].name);
            free((char *)c->rh[i].value);
        }
        c->n_rh = 0;
        c->rh_bytes = 0;
        return len;
    }
    c->rh_bytes += len;
    if (c->rh_bytes > MAX_HEADER_BYTES) {
        c->too_big = true;
        return 0;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line || c->n_rh == MAX_RESP_HEADERS)
        return len;
    const char *v = colon + 1;
    size_t vl = len - (size_t)(v - line);
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    char *name = strndup(line, (size_t)(colon - line));
    char *value = strndup(v, vl);
    if (!name || !value) {
        free(name);
        free(value);
        return 0;
    }
    c->rh[c->n_rh++] = (pd_websvc_header_t){name, value};
    return len;
}

static void on_call_done(void *arg, CURL *easy, CURLcode rc, bool cancelled)
{
    (void)easy;
    pd_websvc_call_t *c = arg;
    svc_t *s = c->svc;
    pd_t *pd = s->ws->pd;
    call_unlink(c);
    if (cancelled) {
        pd->metrics.service_unavailable++;
        send_error(c->reply, c->arg, 503, "service_unavailable", "platformd is stopping");
        call_free(c);
        return;
    }
    if (rc != CURLE_OK) {
        const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
        char msg[400];
        if (rc == CURLE_OPERATION_TIMEDOUT) {
            snprintf(msg, sizeof msg, "the web service did not answer in %lld ms",
                     (long long)pd->cfg->services.proxy_timeout_ms);
            send_error(c->reply, c->arg, 504, "timeout", msg);
        } else if (c->too_big) {
            snprintf(msg, sizeof msg, "the web service's response is larger than %lld bytes",
                     (long long)pd->cfg->services.max_body_bytes);
            send_error(c->reply, c->arg, 502, "bad_gateway", msg);
        } else {
            snprintf(msg, sizeof msg, "the web service failed: %s", detail);
            send_error(c->reply, c->arg, 502, "bad_gateway", msg);
            /* Probably gone: check now rather than at the next interval. */
            if (rc == CURLE_COULDNT_CONNECT && !s->check)
                schedule_check(s, 0);
        }
        plat_log_info("websvc", "proxied request failed: %s instance=%s", detail, s->instance);
        call_free(c);
        return;
    }
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    /* Drop hop-by-hop headers, those the Connection header names, and
     * Content-Length (the platform's server sets it). */
    const char *conn = NULL;
    for (size_t i = 0; i < c->n_rh; i++)
        if (strcasecmp(c->rh[i].name, "connection") == 0)
            conn = c->rh[i].value;
    pd_websvc_header_t out[MAX_RESP_HEADERS];
    size_t n = 0;
    for (size_t i = 0; i < c->n_rh; i++) {
        const char *name = c->rh[i].name;
        if (hop_by_hop(name) || strcasecmp(name, "content-length") == 0 ||
            in_connection(conn, name))
            continue;
        out[n++] = c->rh[i];
    }
    s->proxied++;
    pd->metrics.service_proxied++;
    pd_websvc_reply_t r = {.status = (unsigned)status,
                           .headers = out,
                           .n_headers = n,
                           .body = c->rbody ? c->rbody : "",
                           .body_len = c->rlen};
    c->reply(c->arg, &r);
    call_free(c);
}

static bool instance_known(pd_t *pd, const char *uuid)
{
    if (!pd->lifecycle || !plat_uuid_valid(uuid))
        return false;
    pd_store_t *st = pd_lifecycle_store(pd->lifecycle);
    pd_store_instance_t inst;
    if (!st || pd_store_get_instance(st, uuid, &inst) != 0)
        return false;
    pd_store_instance_clear(&inst);
    return true;
}

static int add_line(struct curl_slist **l, const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 3;
    char *line = malloc(len);
    if (!line)
        return -ENOMEM;
    if (value[0])
        snprintf(line, len, "%s: %s", name, value);
    else
        snprintf(line, len, "%s;", name);
    struct curl_slist *n = curl_slist_append(*l, line);
    free(line);
    if (!n)
        return -ENOMEM;
    *l = n;
    return 0;
}

pd_websvc_call_t *pd_websvc_proxy(pd_t *pd, const char *instance, const char *method,
                                  const char *target, const pd_websvc_header_t *headers,
                                  size_t n_headers, const char *body, size_t body_len,
                                  pd_websvc_reply_fn reply, void *arg)
{
    pd_websvc_t *ws = pd->websvc;
    svc_t *s = find(ws, instance);
    if (!s) {
        if (!instance_known(pd, instance)) {
            send_error(reply, arg, 404, "not_found", "no such instance");
            return NULL;
        }
        pd->metrics.service_unavailable++;
        send_error(reply, arg, 503, "service_unavailable",
                   "the instance has no web service registered");
        return NULL;
    }
    if (s->state != SVC_HEALTHY) {
        char msg[400];
        snprintf(msg, sizeof msg, "the instance's web service is %s%s%s", g_state_names[s->state],
                 s->last_error[0] ? ": " : "", s->last_error);
        pd->metrics.service_unavailable++;
        send_error(reply, arg, 503, "service_unavailable", msg);
        return NULL;
    }
    if (body_len > (size_t)pd->cfg->services.max_body_bytes) {
        send_error(reply, arg, 413, "too_large", "request body over services.max_body_bytes");
        return NULL;
    }
    pd_websvc_call_t *c = calloc(1, sizeof *c);
    if (!c) {
        send_error(reply, arg, 500, "internal", "out of memory");
        return NULL;
    }
    c->svc = s;
    c->reply = reply;
    c->arg = arg;
    bool ok = true;
    const char *conn = NULL;
    bool have_ctype = false, have_accept = false;
    for (size_t i = 0; i < n_headers; i++)
        if (strcasecmp(headers[i].name, "connection") == 0)
            conn = headers[i].value;
    for (size_t i = 0; i < n_headers && ok; i++) {
        const char *name = headers[i].name, *value = headers[i].value ? headers[i].value : "";
        if (hop_by_hop(name) || in_connection(conn, name) ||
            strcasecmp(name, "content-length") == 0 || strcasecmp(name, "expect") == 0 ||
            strcasecmp(name, "x-forwarded-host") == 0 ||
            strcasecmp(name, "x-forwarded-prefix") == 0 ||
            strcasecmp(name, "x-forwarded-proto") == 0)
            continue; /* the X-Forwarded-* are the platform's to set */
        if (strcasecmp(name, "host") == 0) {
            ok = add_line(&c->slist, "X-Forwarded-Host", value) == 0;
            continue;
        }
        if (strchr(value, '\r') || strchr(value, '\n'))
            continue;
        have_ctype |= strcasecmp(name, "content-type") == 0;
        have_accept |= strcasecmp(name, "accept") == 0;
        ok = add_line(&c->slist, name, value) == 0;
    }
    char prefix[80];
    snprintf(prefix, sizeof prefix, "/plugins/%s/svc", s->instance);
    ok = ok && add_line(&c->slist, "X-Forwarded-Prefix", prefix) == 0 &&
         add_line(&c->slist, "X-Forwarded-Proto", "http") == 0;
    struct curl_slist *l;
    ok = ok && (l = curl_slist_append(c->slist, "Expect:")) && (c->slist = l);
    if (ok && !have_ctype)
        ok = (l = curl_slist_append(c->slist, "Content-Type:")) && (c->slist = l);
    if (ok && !have_accept)
        ok = (l = curl_slist_append(c->slist, "Accept:")) && (c->slist = l);
    if (ok && body_len) {
        c->body = malloc(body_len);
        if ((ok = c->body != NULL)) {
            memcpy(c->body, body, body_len);
            c->body_len = body_len;
        }
    }
    CURL *e = ok ? curl_easy_init() : NULL;
    if (!e) {
        call_free(c);
        send_error(reply, arg, 500, "internal", "out of memory");
        return NULL;
    }
    c->easy = e;
    size_t ulen = strlen(target) + 64;
    char *url = malloc(ulen);
    if (!url) {
        call_free(c);
        send_error(reply, arg, 500, "internal", "out of memory");
        return NULL;
    }
    snprintf(url, ulen, "http://127.0.0.1:%u%s%s", (unsigned)s->port, target[0] == '/' ? "" : "/",
             target);
    CURLcode uc = curl_easy_setopt(e, CURLOPT_URL, url);
    free(url);
    if (uc != CURLE_OK) {
        call_free(c);
        send_error(reply, arg, 400, "bad_request", "the request target cannot be proxied");
        return NULL;
    }
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP);
#endif
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)pd->cfg->services.proxy_timeout_ms);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)pd->cfg->services.max_body_bytes);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->slist);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        if (c->body_len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "PATCH") == 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body ? c->body : "");
        }
    }
    if (pd_curlm_add(pd->curlm, e, on_call_done, c) < 0) {
        call_free(c);
        pd->metrics.service_unavailable++;
        send_error(reply, arg, 503, "service_unavailable", "platformd is stopping");
        return NULL;
    }
    c->next = s->calls;
    if (s->calls)
        s->calls->prev = c;
    s->calls = c;
    return c;
}

void pd_websvc_proxy_abort(pd_t *pd, pd_websvc_call_t *c)
{
    if (!c)
        return;
    pd_curlm_cancel(pd->curlm, c->easy);
    call_unlink(c);
    call_free(c);
}

size_t pd_websvc_max_body(pd_t *pd)
{
    return (size_t)pd->cfg->services.max_body_bytes;
}

/* ---- registrations ---------------------------------------------------- */

static void on_svc_closed(uv_handle_t *h)
{
    svc_t *s = h->data;
    free(s->health_path);
    free(s);
}

/* Unlinked already: stop its check, answer its calls 503, close. */
static void svc_destroy(svc_t *s, const char *why)
{
    pd_t *pd = s->ws->pd;
    if (s->check) {
        pd_curlm_cancel(pd->curlm, s->check);
        curl_easy_cleanup(s->check);
        s->check = NULL;
    }
    while (s->calls) {
        pd_websvc_call_t *c = s->calls;
        pd_curlm_cancel(pd->curlm, c->easy);
        call_unlink(c);
        pd->metrics.service_unavailable++;
        send_error(c->reply, c->arg, 503, "service_unavailable", why);
        call_free(c);
    }
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_svc_closed);
}

static bool valid_health_path(const char *p)
{
    if (!p || p[0] != '/' || strlen(p) > 512)
        return false;
    for (; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

int pd_websvc_register(pd_t *pd, const char *instance, uint16_t port, const char *health_path)
{
    pd_websvc_t *ws = pd ? pd->websvc : NULL;
    if (!ws)
        return -ECANCELED;
    if (!instance || !plat_uuid_valid(instance) || port == 0 || !valid_health_path(health_path))
        return -EINVAL;
    svc_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->health_path = strdup(health_path);
    if (!s->health_path) {
        free(s);
        return -ENOMEM;
    }
    s->ws = ws;
    snprintf(s->instance, sizeof s->instance, "%s", instance);
    s->port = port;
    s->state = SVC_STARTING;
    s->registered_ms = plat_mono_ms();
    uv_timer_init(pd->loop, &s->timer);
    s->timer.data = s;
    /* Replacing: the old one goes (its calls get 503). */
    for (svc_t **pp = &ws->svcs; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->instance, instance) == 0) {
            svc_t *old = *pp;
            *pp = old->next;
            svc_destroy(old, "the web service was registered again");
            break;
        }
    }
    s->next = ws->svcs;
    ws->svcs = s;
    plat_log_info("websvc", "web service registered health=%s instance=%s port=%u", s->health_path,
                  instance, (unsigned)port);
    schedule_check(s, 0);
    return 0;
}

void pd_websvc_unregister(pd_t *pd, const char *instance)
{
    pd_websvc_t *ws = pd ? pd->websvc : NULL;
    if (!ws || !instance)
        return;
    for (svc_t **pp = &ws->svcs; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->instance, instance) == 0) {
            svc_t *s = *pp;
            *pp = s->next;
            plat_log_info("websvc", "web service unregistered instance=%s port=%u", instance,
                          (unsigned)s->port);
            svc_destroy(s, "the web service was unregistered");
            return;
        }
    }
}

static json_t *svc_json(const svc_t *s, uint64_t now)
{
    json_t *o = json_pack(
        "{s:s, s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "instance", s->instance, "port",
        (int)s->port, "health_path", s->health_path, "state", g_state_names[s->state],
        "consecutive_failures", (json_int_t)s->consecutive_failures, "checks",
        (json_int_t)s->checks, "checks_failed", (json_int_t)s->checks_failed, "transitions",
        (json_int_t)s->transitions, "proxied", (json_int_t)s->proxied, "registered_age_ms",
        (json_int_t)(now > s->registered_ms ? now - s->registered_ms : 0));
    if (!o)
        return NULL;
    json_object_set_new(
        o, "last_check_age_ms",
        s->last_check_ms
            ? json_integer((json_int_t)(now > s->last_check_ms ? now - s->last_check_ms : 0))
            : json_null());
    json_object_set_new(o, "last_error",
                        s->last_error[0] ? json_string(s->last_error) : json_null());
    return o;
}

json_t *pd_websvc_json(pd_t *pd, const char *instance_or_null)
{
    pd_websvc_t *ws = pd ? pd->websvc : NULL;
    uint64_t now = plat_mono_ms();
    if (instance_or_null) {
        svc_t *s = find(ws, instance_or_null);
        return s ? svc_json(s, now) : json_null();
    }
    json_t *a = json_array();
    for (svc_t *s = ws ? ws->svcs : NULL; s; s = s->next)
        json_array_append_new(a, svc_json(s, now));
    return a;
}

/* ---- module ----------------------------------------------------------- */

int pd_websvc_start(pd_t *pd)
{
    if (!pd->curlm)
        return -ENOTCONN; /* needs the "curl" module first */
    pd_websvc_t *ws = calloc(1, sizeof *ws);
    if (!ws)
        return -ENOMEM;
    ws->pd = pd;
    pd->websvc = ws;
    return 0;
}

void pd_websvc_stop(pd_t *pd)
{
    pd_websvc_t *ws = pd->websvc;
    if (!ws)
        return;
    while (ws->svcs) {
        svc_t *s = ws->svcs;
        ws->svcs = s->next;
        svc_destroy(s, "platformd is stopping");
    }
    pd->websvc = NULL;
    free(ws);
}
