/* Plugin web services (platformd/websvc.c) through the real HTTP API
 * (httpapi.c, ANY /plugins/{uuid}/svc/...): a platform-side pd_t with a uv
 * loop, the "curl" module and the API on loopback; the plugin's service is
 * a libmicrohttpd server in its own thread; clients are libcurl easy
 * handles in a thread (the loop runs in the test's thread).
 * Covered: the proxied request (method, raw path and query, headers, body,
 * status, response headers), the platform token not passed on, 404 for an
 * unknown instance, health: starting -> healthy, a killed service turns
 * unhealthy (503), a recovered one healthy again, a sick health path, and
 * an unregistration answering the call in flight with 503. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <microhttpd.h>

#include "curlmulti.h"
#include "testports.h"
#include "websvc.h"

#define INST "11111111-1111-4111-8111-111111111111"
#define OTHER "22222222-2222-4222-8222-222222222222"

/* ---- the plugin's service ---------------------------------------------- */

static int g_svc_port;
static struct MHD_Daemon *g_svc;
static atomic_int g_sick;         /* /health answers 500 */
static atomic_int g_slow_entered; /* /slow is running */
static atomic_int g_slow_release; /* /slow may answer */

typedef struct {
    bool started;
    char *uri;
    char *data;
    size_t len;
} svc_req_t;

static void *svc_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls, (void)c;
    svc_req_t *r = calloc(1, sizeof *r);
    if (r)
        r->uri = strdup(uri);
    return r;
}

static enum MHD_Result svc_answer(struct MHD_Connection *c, unsigned status, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "X-Svc", "1");
    MHD_add_response_header(r, "Content-Type", "text/plain");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result svc_req(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    (void)cls, (void)version;
    svc_req_t *r = *con_cls;
    if (!r)
        return MHD_NO;
    if (!r->started) { /* first call: headers only */
        r->started = true;
        return MHD_YES;
    }
    if (*size) {
        char *d = realloc(r->data, r->len + *size + 1);
        if (!d)
            return MHD_NO;
        memcpy(d + r->len, data, *size);
        r->data = d;
        r->len += *size;
        d[r->len] = 0;
        *size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/health") == 0)
        return svc_answer(c, atomic_load(&g_sick) ? 500 : 200, "ok");
    if (strcmp(url, "/slow") == 0) {
        atomic_store(&g_slow_entered, 1);
        for (int i = 0; i < 1000 && !atomic_load(&g_slow_release); i++)
            usleep(10000);
        return svc_answer(c, 200, "slow");
    }
    if (strncmp(url, "/hello", 6) == 0) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        const char *xt = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Test");
        const char *fwd = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-Prefix");
        const char *conn = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Hop");
        char body[1024];
        snprintf(body, sizeof body, "%s %s auth=%s x-test=%s fwd=%s hop=%s body=%s", method, r->uri,
                 auth ? auth : "-", xt ? xt : "-", fwd ? fwd : "-", conn ? conn : "-",
                 r->data ? r->data : "");
        return svc_answer(c, 201, body);
    }
    return svc_answer(c, 404, "no");
}

static void svc_done(void *cls, struct MHD_Connection *c, void **con_cls,
                     enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    svc_req_t *r = *con_cls;
    if (r) {
        free(r->uri);
        free(r->data);
        free(r);
    }
    *con_cls = NULL;
}

static struct MHD_Daemon *svc_listen(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                            (uint16_t)port, NULL, NULL, svc_req, NULL, MHD_OPTION_SOCK_ADDR, &sin,
                            MHD_OPTION_URI_LOG_CALLBACK, svc_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                            svc_done, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                            MHD_OPTION_END);
}

static void svc_start(void)
{
    for (int tries = 0; tries < 20 && !g_svc; tries++) {
        g_svc_port = plat_test_free_port();
        g_svc = svc_listen(g_svc_port);
    }
    assert_non_null(g_svc);
}

static void svc_stop(void)
{
    if (g_svc)
        MHD_stop_daemon(g_svc);
    g_svc = NULL;
}

/* ---- the platform ------------------------------------------------------ */

typedef struct {
    uv_loop_t loop;
    uv_async_t wake;
    pd_config_t cfg;
    pd_t pd;
    char dir[64];
    char token_file[128];
    char token[128];
    int api_port;
} fix_t;

static fix_t *g_f;

static void on_wake(uv_async_t *a)
{
    (void)a;
}

static int setup(void **state)
{
    fix_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    g_f = f;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_async_init(&f->loop, &f->wake, on_wake), 0);
    assert_int_equal(pd_config_load(NULL, &f->cfg, NULL), 0);
    f->cfg.services.health_interval_ms = 50;
    f->cfg.services.health_timeout_ms = 1000;
    f->cfg.services.unhealthy_after = 2;
    f->cfg.services.proxy_timeout_ms = 10000;
    f->pd.loop = &f->loop;
    f->pd.cfg = &f->cfg;
    assert_int_equal(pd_curl_start(&f->pd), 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_websvc.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->token_file, sizeof f->token_file, "%s/api-token", f->dir);
    for (int tries = 0; tries < 20 && !f->pd.http; tries++) {
        f->api_port = plat_test_free_port();
        f->pd.http = pd_httpapi_new(&f->pd, "127.0.0.1", (uint16_t)f->api_port, f->token_file);
    }
    assert_non_null(f->pd.http);
    FILE *fp = fopen(f->token_file, "r");
    assert_non_null(fp);
    assert_non_null(fgets(f->token, sizeof f->token, fp));
    fclose(fp);
    f->token[strcspn(f->token, "\n")] = 0;
    atomic_store(&g_sick, 0);
    atomic_store(&g_slow_entered, 0);
    atomic_store(&g_slow_release, 0);
    svc_start();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix_t *f = *state;
    atomic_store(&g_slow_release, 1);
    svc_stop();
    pd_curl_stop(&f->pd);
    pd_httpapi_close(&f->pd.http);
    uv_close((uv_handle_t *)&f->wake, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    pd_config_free(&f->cfg);
    unlink(f->token_file);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- a client in a thread ---------------------------------------------- */

typedef struct {
    const char *method;
    char url[512];
    const char *headers[6];
    const char *body;
    long status;
    char resp[4096];
    size_t len;
    char xsvc[32];
    char ctype[64];
    atomic_int done;
    pthread_t thread;
} client_t;

static size_t c_write(char *d, size_t s, size_t n, void *arg)
{
    client_t *c = arg;
    size_t len = s * n;
    size_t room = sizeof c->resp - 1 - c->len;
    size_t k = len < room ? len : room;
    memcpy(c->resp + c->len, d, k);
    c->len += k;
    c->resp[c->len] = 0;
    return len;
}

static size_t c_header(char *d, size_t s, size_t n, void *arg)
{
    client_t *c = arg;
    size_t len = s * n;
    if (len > 7 && strncasecmp(d, "X-Svc: ", 7) == 0)
        snprintf(c->xsvc, sizeof c->xsvc, "%.*s", (int)strcspn(d + 7, "\r\n"), d + 7);
    if (len > 14 && strncasecmp(d, "Content-Type: ", 14) == 0)
        snprintf(c->ctype, sizeof c->ctype, "%.*s", (int)strcspn(d + 14, "\r\n"), d + 14);
    return len;
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    for (int i = 0; i < 6 && c->headers[i]; i++)
        h = curl_slist_append(h, c->headers[i]);
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, c_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, c_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    if (strcmp(c->method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
    if (c->body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
    else
        c->status = -1;
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    atomic_store(&c->done, 1);
    uv_async_send(&g_f->wake);
    return NULL;
}

static void client_start(client_t *c, const char *method, const char *path)
{
    c->method = method;
    snprintf(c->url, sizeof c->url, "http://127.0.0.1:%d%s", g_f->api_port, path);
    atomic_store(&c->done, 0);
    assert_int_equal(pthread_create(&c->thread, NULL, client_main, c), 0);
}

static void client_wait(client_t *c)
{
    uint64_t deadline = plat_mono_ms() + 30000;
    while (!atomic_load(&c->done) && plat_mono_ms() < deadline)
        uv_run(&g_f->loop, UV_RUN_ONCE);
    assert_true(atomic_load(&c->done));
    pthread_join(c->thread, NULL);
}

static long request(client_t *c, const char *method, const char *path)
{
    client_start(c, method, path);
    client_wait(c);
    return c->status;
}

/* Run the loop until the service's state is `want` (deadline). */
static void wait_state(fix_t *f, const char *want)
{
    uint64_t deadline = plat_mono_ms() + 20000;
    for (;;) {
        json_t *j = pd_websvc_json(&f->pd, INST);
        const char *st = json_string_value(json_object_get(j, "state"));
        bool ok = st && strcmp(st, want) == 0;
        json_decref(j);
        if (ok)
            return;
        if (plat_mono_ms() > deadline)
            fail_msg("service never became %s", want);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static json_int_t svc_int(fix_t *f, const char *key)
{
    json_t *j = pd_websvc_json(&f->pd, INST);
    json_int_t v = json_integer_value(json_object_get(j, key));
    json_decref(j);
    return v;
}

/* ---- tests ------------------------------------------------------------- */

static void test_proxy(void **state)
{
    fix_t *f = *state;
    assert_int_equal(pd_websvc_register(&f->pd, INST, (uint16_t)g_svc_port, "/health"), 0);
    wait_state(f, "healthy");

    client_t *c = calloc(1, sizeof *c);
    char auth[200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", f->token);
    c->headers[0] = "X-Test: abc";
    c->headers[1] = auth;
    c->headers[2] = "Connection: X-Hop";
    c->headers[3] = "X-Hop: dropped";
    c->headers[4] = "X-Forwarded-Prefix: /spoofed";
    c->body = "payload";
    /* A POST with no bearer would be 401 elsewhere; the proxy needs none,
     * and the platform's own token is not handed to the plugin. */
    assert_int_equal(request(c, "POST", "/plugins/" INST "/svc/hello/a%2Fb?x=1&y=a%20b"), 201);
    assert_string_equal(c->xsvc, "1");
    assert_string_equal(c->ctype, "text/plain");
    assert_string_equal(c->resp, "POST /hello/a%2Fb?x=1&y=a%20b auth=- x-test=abc "
                                 "fwd=/plugins/" INST "/svc hop=- body=payload");

    /* Another Authorization is the client's business: passed on. */
    memset(c, 0, sizeof *c);
    c->headers[0] = "Authorization: Bearer for-the-plugin";
    assert_int_equal(request(c, "PUT", "/plugins/" INST "/svc/hello"), 201);
    assert_string_equal(c->resp, "PUT /hello auth=Bearer for-the-plugin x-test=- fwd=/plugins/" INST
                                 "/svc hop=- body=");

    /* The service's own 404 passes through as it is. */
    memset(c, 0, sizeof *c);
    assert_int_equal(request(c, "GET", "/plugins/" INST "/svc"), 404);
    assert_string_equal(c->resp, "no");
    assert_string_equal(c->xsvc, "1");

    /* Unknown instance: the platform's 404 (JSON). */
    memset(c, 0, sizeof *c);
    assert_int_equal(request(c, "GET", "/plugins/" OTHER "/svc/hello"), 404);
    assert_string_equal(c->ctype, "application/json");
    assert_non_null(strstr(c->resp, "\"not_found\""));
    /* Not the proxy: ordinary routing. */
    memset(c, 0, sizeof *c);
    assert_int_equal(request(c, "GET", "/plugins/" INST "/other"), 404);
    assert_non_null(strstr(c->resp, "no such route"));

    assert_int_equal(f->pd.metrics.service_proxied, 3);
    assert_int_equal(svc_int(f, "proxied"), 3);
    json_t *all = pd_websvc_json(&f->pd, NULL);
    assert_int_equal(json_array_size(all), 1);
    json_decref(all);
    free(c);
}

static void test_health(void **state)
{
    fix_t *f = *state;
    client_t *c = calloc(1, sizeof *c);
    assert_int_equal(pd_websvc_register(&f->pd, INST, (uint16_t)g_svc_port, "/health"), 0);
    wait_state(f, "healthy");
    assert_int_equal(request(c, "GET", "/plugins/" INST "/svc/hello"), 201);

    /* Killed: unhealthy after unhealthy_after failed checks, then 503. */
    svc_stop();
    wait_state(f, "unhealthy");
    memset(c, 0, sizeof *c);
    assert_int_equal(request(c, "GET", "/plugins/" INST "/svc/hello"), 503);
    assert_string_equal(c->ctype, "application/json");
    assert_non_null(strstr(c->resp, "\"service_unavailable\""));
    assert_non_null(strstr(c->resp, "unhealthy"));
    assert_true(f->pd.metrics.service_health_failures >= 2);
    assert_true(f->pd.metrics.service_unavailable >= 1);

    /* Back on the same port: healthy again, proxied again. */
    uint64_t deadline = plat_mono_ms() + 10000;
    while (!(g_svc = svc_listen(g_svc_port)) && plat_mono_ms() < deadline)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_non_null(g_svc);
    wait_state(f, "healthy");
    memset(c, 0, sizeof *c);
    assert_int_equal(request(c, "GET", "/plugins/" INST "/svc/hello"), 201);
    assert_int_equal(svc_int(f, "transitions"), 3); /* starting→healthy→unhealthy→healthy */

    /* A health path answering 500 counts as a failed check too. */
    atomic_store(&g_sick, 1);
    wait_state(f, "unhealthy");
    atomic_store(&g_sick, 0);
    wait_state(f, "healthy");
    assert_int_equal(svc_int(f, "transitions"), 5);
    free(c);
}

static void test_unregister_in_flight(void **state)
{
    fix_t *f = *state;
    assert_int_equal(pd_websvc_register(&f->pd, INST, (uint16_t)g_svc_port, "/health"), 0);
    wait_state(f, "healthy");
    client_t *c = calloc(1, sizeof *c);
    client_start(c, "GET", "/plugins/" INST "/svc/slow");
    uint64_t deadline = plat_mono_ms() + 20000;
    while (!atomic_load(&g_slow_entered) && plat_mono_ms() < deadline)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(atomic_load(&g_slow_entered));
    pd_websvc_unregister(&f->pd, INST);
    client_wait(c);
    assert_int_equal(c->status, 503);
    assert_non_null(strstr(c->resp, "unregistered"));
    atomic_store(&g_slow_release, 1);
    /* Gone: without a lifecycle the instance is unknown. */
    memset(c, 0, sizeof *c);
    assert_int_equal(request(c, "GET", "/plugins/" INST "/svc/hello"), 404);
    json_t *j = pd_websvc_json(&f->pd, INST);
    assert_true(json_is_null(j));
    json_decref(j);
    free(c);
}

static void test_register_checks(void **state)
{
    fix_t *f = *state;
    assert_int_equal(pd_websvc_register(&f->pd, "not-a-uuid", 8080, "/health"), -EINVAL);
    assert_int_equal(pd_websvc_register(&f->pd, INST, 0, "/health"), -EINVAL);
    assert_int_equal(pd_websvc_register(&f->pd, INST, 8080, "health"), -EINVAL);
    assert_int_equal(pd_websvc_register(&f->pd, INST, 8080, "/he alth"), -EINVAL);
    assert_int_equal(pd_websvc_register(&f->pd, INST, 8080, NULL), -EINVAL);
    /* Registered, first check not done yet: "starting", 503. */
    assert_int_equal(pd_websvc_register(&f->pd, INST, (uint16_t)g_svc_port, "/health"), 0);
    json_t *j = pd_websvc_json(&f->pd, INST);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "starting");
    assert_int_equal(json_integer_value(json_object_get(j, "port")), g_svc_port);
    json_decref(j);
    /* Registering again replaces it. */
    assert_int_equal(pd_websvc_register(&f->pd, INST, (uint16_t)g_svc_port, "/health"), 0);
    j = pd_websvc_json(&f->pd, NULL);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    wait_state(f, "healthy");
    pd_websvc_unregister(&f->pd, INST);
    pd_websvc_unregister(&f->pd, INST); /* no-op */
    /* Module stopped: refused. */
    pd_curl_stop(&f->pd);
    assert_int_equal(pd_websvc_register(&f->pd, INST, (uint16_t)g_svc_port, "/health"), -ECANCELED);
    client_t *c = calloc(1, sizeof *c);
    assert_int_equal(request(c, "GET", "/plugins/" INST "/svc/hello"), 503);
    free(c);
}

int main(void)
{
    plat_log_set_level(PLAT_LOG_WARNING);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_proxy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregister_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_checks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
