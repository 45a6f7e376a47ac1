/* Plugin outbound HTTP (platformd/res_http.c) against a local libmicrohttpd
 * server running in its own thread: allowed GET/POST with headers and
 * body, a disallowed host or port, redirects (allowed, relative, to a
 * disallowed host, too many, 303 turning POST into GET), a slow server
 * (timeout), an oversized body (with and without Content-Length),
 * connection refused, bad input, and cancellation at shutdown. Every call
 * is counted in pd->metrics. The curl transfers run on a real uv loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <microhttpd.h>

#include "curlmulti.h"
#include "res_http.h"
#include "testports.h"

#define KIND PLAT__RESOURCE_KIND__RESOURCE_KIND_HTTP
#define BIG (64 * 1024)
#define CAP (16 * 1024)

/* ---- the test server --------------------------------------------------- */

static int g_port; /* the allowed server, 127.0.0.1 */
static struct MHD_Daemon *g_mhd;
static char g_big[BIG];

typedef struct {
    char *data;
    size_t len;
} upload_t;

static ssize_t big_chunks(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    if (pos >= BIG)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = BIG - pos < max ? BIG - pos : max;
    if (n > 1000)
        n = 1000;
    memset(buf, 'c', n);
    return (ssize_t)n;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *body,
                              const char *hname, const char *hvalue)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (hname)
        MHD_add_response_header(r, hname, hvalue);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_req(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **con_cls)
{
    (void)cls, (void)version;
    upload_t *up = *con_cls;
    if (!up) {
        *con_cls = calloc(1, sizeof *up);
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*size) {
        char *d = realloc(up->data, up->len + *size + 1);
        if (!d)
            return MHD_NO;
        memcpy(d + up->len, data, *size);
        up->data = d;
        up->len += *size;
        d[up->len] = 0;
        *size = 0;
        return MHD_YES;
    }
    char loc[256];
    if (strcmp(url, "/echo") == 0) {
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Test");
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q");
        char body[512];
        snprintf(body, sizeof body, "%s x-test=%s ct=%s q=%s body=%s", method, h ? h : "-",
                 ct ? ct : "-", q ? q : "-", up->data ? up->data : "");
        return answer(c, 200, body, "X-Reply", "yes");
    }
    if (strcmp(url, "/status418") == 0)
        return answer(c, 418, "teapot", NULL, NULL);
    if (strcmp(url, "/relative") == 0)
        return answer(c, 302, "", "Location", "echo?q=rel");
    if (strcmp(url, "/see-other") == 0)
        return answer(c, 303, "", "Location", "/echo?q=303");
    if (strcmp(url, "/temporary") == 0)
        return answer(c, 307, "", "Location", "/echo?q=307");
    if (strcmp(url, "/loop") == 0)
        return answer(c, 302, "", "Location", "/loop");
    if (strcmp(url, "/to-localhost") == 0) {
        snprintf(loc, sizeof loc, "http://localhost:%d/echo", g_port);
        return answer(c, 301, "", "Location", loc);
    }
    if (strcmp(url, "/to-ftp") == 0)
        return answer(c, 302, "", "Location", "ftp://127.0.0.1/x");
    if (strcmp(url, "/absolute") == 0) {
        snprintf(loc, sizeof loc, "http://127.0.0.1:%d/echo?q=abs", g_port);
        return answer(c, 308, "", "Location", loc);
    }
    if (strcmp(url, "/big") == 0) {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(BIG, g_big, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(url, "/big-chunked") == 0) {
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1000, big_chunks, NULL, NULL);
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    return answer(c, 404, "no", NULL, NULL);
}

static void on_done_req(void *cls, struct MHD_Connection *c, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    upload_t *up = *con_cls;
    if (up) {
        free(up->data);
        free(up);
    }
    *con_cls = NULL;
}

static int server_start(void)
{
    memset(g_big, 'b', sizeof g_big);
    for (int tries = 0; tries < 20 && !g_mhd; tries++) {
        g_port = plat_test_free_port();
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        g_mhd =
            MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                             (uint16_t)g_port, NULL, NULL, on_req, NULL, MHD_OPTION_SOCK_ADDR, &sin,
                             MHD_OPTION_NOTIFY_COMPLETED, on_done_req, NULL, MHD_OPTION_END);
    }
    return g_mhd ? 0 : -1;
}

/* ---- the platform side ------------------------------------------------- */

typedef struct {
    uv_loop_t loop;
    pd_config_t cfg;
    pd_t pd;
    char pattern[64];
    char *patterns[2];
    pd_manifest_t manifest;
} fix_t;

typedef struct {
    int calls;
    int err;
    char why[512];
    unsigned status;
    char body[BIG + 1];
    size_t len;
    char reply_hdr[64];
} result_t;

static void on_done(void *arg, int err, const char *why, Plat__HttpResponse *resp)
{
    result_t *r = arg;
    r->calls++;
    r->err = err;
    snprintf(r->why, sizeof r->why, "%s", why ? why : "");
    if (err == 0) {
        assert_non_null(resp);
        r->status = resp->status;
        r->len = resp->body.len < BIG ? resp->body.len : BIG;
        assert_non_null(resp->body.data);
        memcpy(r->body, resp->body.data, r->len);
        r->body[r->len] = 0;
        for (size_t i = 0; i < resp->n_headers; i++)
            if (strcasecmp(resp->headers[i]->name, "X-Reply") == 0)
                snprintf(r->reply_hdr, sizeof r->reply_hdr, "%s", resp->headers[i]->value);
    } else {
        assert_null(resp);
    }
}

static int setup(void **state)
{
    fix_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(pd_config_load(NULL, &f->cfg, NULL), 0);
    f->cfg.resources.http_max_bytes = CAP;
    f->cfg.resources.http_timeout_ms = 5000;
    f->pd.loop = &f->loop;
    f->pd.cfg = &f->cfg;
    assert_int_equal(pd_curl_start(&f->pd), 0);
    snprintf(f->pattern, sizeof f->pattern, "127.0.0.1:%d", g_port);
    f->patterns[0] = f->pattern;
    f->manifest.http = f->patterns;
    f->manifest.n_http = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix_t *f = *state;
    pd_curl_stop(&f->pd);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* the handles close */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    pd_config_free(&f->cfg);
    free(f);
    return 0;
}

#define INST "11111111-1111-4111-8111-111111111111"

/* Start a request; wait (deadline) for its completion when accepted. */
static int run(fix_t *f, const char *method, const char *url, const char *body, const char *xtest,
               result_t *r)
{
    memset(r, 0, sizeof *r);
    Plat__HttpRequest req = PLAT__HTTP_REQUEST__INIT;
    req.method = (char *)method;
    req.url = (char *)url;
    Plat__HttpHeader h = PLAT__HTTP_HEADER__INIT;
    Plat__HttpHeader *hp[1] = {&h};
    if (xtest) {
        h.name = "X-Test";
        h.value = (char *)xtest;
        req.headers = hp;
        req.n_headers = 1;
    }
    if (body) {
        req.body.data = (uint8_t *)body;
        req.body.len = strlen(body);
    }
    int rc = pd_res_http_request(&f->pd, INST, &f->manifest, &req, on_done, r);
    if (rc < 0) {
        assert_int_equal(r->calls, 0);
        return rc;
    }
    uint64_t deadline = plat_mono_ms() + 20000;
    while (r->calls == 0 && plat_mono_ms() < deadline)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(r->calls, 1);
    assert_int_equal(pd_res_http_active(&f->pd), 0);
    return r->err;
}

static void url(char *buf, size_t size, const char *host, int port, const char *path)
{
    snprintf(buf, size, "http://%s:%d%s", host, port, path);
}

static void test_get_and_post(void **state)
{
    fix_t *f = *state;
    result_t *r = calloc(1, sizeof *r);
    char u[256];
    url(u, sizeof u, "127.0.0.1", g_port, "/echo?q=1");
    assert_int_equal(run(f, "GET", u, NULL, "hello", r), 0);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "GET x-test=hello ct=- q=1 body=");
    assert_string_equal(r->reply_hdr, "yes");

    assert_int_equal(run(f, "POST", u, "payload=1", "p", r), 0);
    assert_int_equal(r->status, 200);
    /* no invented Content-Type */
    assert_string_equal(r->body, "POST x-test=p ct=- q=1 body=payload=1");

    assert_int_equal(run(f, "PUT", u, "put-body", NULL, r), 0);
    assert_string_equal(r->body, "PUT x-test=- ct=- q=1 body=put-body");
    assert_int_equal(run(f, "DELETE", u, NULL, NULL, r), 0);
    assert_string_equal(r->body, "DELETE x-test=- ct=- q=1 body=");
    assert_int_equal(run(f, "HEAD", u, NULL, NULL, r), 0);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->len, 0);
    /* Any status is a response, not an error. */
    url(u, sizeof u, "127.0.0.1", g_port, "/status418");
    assert_int_equal(run(f, "", u, NULL, NULL, r), 0); /* "" = GET */
    assert_int_equal(r->status, 418);
    assert_string_equal(r->body, "teapot");
    assert_int_equal(f->pd.metrics.resource_ok[KIND], 6);
    assert_int_equal(f->pd.metrics.resource_failed[KIND], 0);
    free(r);
}

static void test_denied_targets(void **state)
{
    fix_t *f = *state;
    result_t r;
    char u[256];
    url(u, sizeof u, "localhost", g_port, "/echo");
    assert_int_equal(run(f, "GET", u, NULL, NULL, &r), -EACCES);
    url(u, sizeof u, "127.0.0.1", g_port + 1, "/echo"); /* another port */
    assert_int_equal(run(f, "GET", u, NULL, NULL, &r), -EACCES);
    snprintf(u, sizeof u, "http://[::1]:%d/echo", g_port);
    assert_int_equal(run(f, "GET", u, NULL, NULL, &r), -EACCES);
    /* No manifest permission at all. */
    pd_manifest_t none = {0};
    Plat__HttpRequest req = PLAT__HTTP_REQUEST__INIT;
    url(u, sizeof u, "127.0.0.1", g_port, "/echo");
    req.url = u;
    assert_int_equal(pd_res_http_request(&f->pd, INST, &none, &req, on_done, &r), -EACCES);
    assert_int_equal(pd_res_http_request(&f->pd, INST, NULL, &req, on_done, &r), -EACCES);
    assert_int_equal(f->pd.metrics.resource_denied[KIND], 5);
    assert_int_equal(f->pd.metrics.resource_failed[KIND], 5);
    assert_int_equal(f->pd.metrics.resource_ok[KIND], 0);
}

static void test_bad_input(void **state)
{
    fix_t *f = *state;
    result_t r;
    char u[256];
    url(u, sizeof u, "127.0.0.1", g_port, "/echo");
    assert_int_equal(run(f, "TRACE", u, NULL, NULL, &r), -EINVAL);
    assert_int_equal(run(f, "GET", u, "body", NULL, &r), -EINVAL);
    assert_int_equal(run(f, "GET", "not a url", NULL, NULL, &r), -EINVAL);
    assert_int_equal(run(f, "GET", "", NULL, NULL, &r), -EINVAL);
    snprintf(u, sizeof u, "ftp://127.0.0.1:%d/x", g_port);
    assert_int_equal(run(f, "GET", u, NULL, NULL, &r), -EINVAL);
    snprintf(u, sizeof u, "file:///etc/passwd");
    assert_int_equal(run(f, "GET", u, NULL, NULL, &r), -EINVAL);
    url(u, sizeof u, "127.0.0.1", g_port, "/echo");
    assert_int_equal(run(f, "GET", u, NULL, "bad\r\nInjected: 1", &r), -EINVAL);
    assert_int_equal(f->pd.metrics.resource_failed[KIND], 7);
    assert_int_equal(f->pd.metrics.resource_denied[KIND], 0);
}

static void test_redirects(void **state)
{
    fix_t *f = *state;
    result_t *r = calloc(1, sizeof *r);
    char u[256];
    /* relative Location */
    url(u, sizeof u, "127.0.0.1", g_port, "/relative");
    assert_int_equal(run(f, "GET", u, NULL, "h", r), 0);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "GET x-test=h ct=- q=rel body=");
    /* absolute, 308 keeps the method and body */
    url(u, sizeof u, "127.0.0.1", g_port, "/absolute");
    assert_int_equal(run(f, "POST", u, "keep", NULL, r), 0);
    assert_string_equal(r->body, "POST x-test=- ct=- q=abs body=keep");
    /* 307 keeps them too; 303 turns POST into GET without body */
    url(u, sizeof u, "127.0.0.1", g_port, "/temporary");
    assert_int_equal(run(f, "POST", u, "keep", NULL, r), 0);
    assert_string_equal(r->body, "POST x-test=- ct=- q=307 body=keep");
    url(u, sizeof u, "127.0.0.1", g_port, "/see-other");
    assert_int_equal(run(f, "POST", u, "drop", NULL, r), 0);
    assert_string_equal(r->body, "GET x-test=- ct=- q=303 body=");
    /* to a host the manifest does not allow */
    url(u, sizeof u, "127.0.0.1", g_port, "/to-localhost");
    assert_int_equal(run(f, "GET", u, NULL, NULL, r), -EACCES);
    assert_non_null(strstr(r->why, "localhost"));
    url(u, sizeof u, "127.0.0.1", g_port, "/to-ftp");
    assert_int_equal(run(f, "GET", u, NULL, NULL, r), -EACCES);
    assert_int_equal(f->pd.metrics.resource_denied[KIND], 2);
    /* endless */
    url(u, sizeof u, "127.0.0.1", g_port, "/loop");
    assert_int_equal(run(f, "GET", u, NULL, NULL, r), -ELOOP);
    /* no redirects allowed at all */
    f->cfg.resources.http_max_redirects = 0;
    url(u, sizeof u, "127.0.0.1", g_port, "/relative");
    assert_int_equal(run(f, "GET", u, NULL, NULL, r), -ELOOP);
    assert_int_equal(f->pd.metrics.resource_ok[KIND], 4);
    assert_int_equal(f->pd.metrics.resource_failed[KIND], 4);
    free(r);
}

static void test_too_large(void **state)
{
    fix_t *f = *state;
    result_t *r = calloc(1, sizeof *r);
    char u[256];
    url(u, sizeof u, "127.0.0.1", g_port, "/big"); /* Content-Length over the cap */
    assert_int_equal(run(f, "GET", u, NULL, NULL, r), -EFBIG);
    url(u, sizeof u, "127.0.0.1", g_port, "/big-chunked"); /* no length: the write cap */
    assert_int_equal(run(f, "GET", u, NULL, NULL, r), -EFBIG);
    /* Under the cap both work. */
    f->cfg.resources.http_max_bytes = BIG;
    assert_int_equal(run(f, "GET", u, NULL, NULL, r), 0);
    assert_int_equal(r->len, BIG);
    url(u, sizeof u, "127.0.0.1", g_port, "/big");
    assert_int_equal(run(f, "GET", u, NULL, NULL, r), 0);
    assert_int_equal(r->len, BIG);
    free(r);
}

/* A listening socket that never accepts: the TCP handshake completes in
 * the kernel, no answer ever comes. */
static int silent_listener(int *port)
{
    for (int tries = 0; tries < 20; tries++) {
        *port = plat_test_free_port();
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 && listen(fd, 16) == 0)
            return fd;
        close(fd);
    }
    return -1;
}

static void test_timeout_and_refused(void **state)
{
    fix_t *f = *state;
    result_t r;
    int sport;
    int lfd = silent_listener(&sport);
    assert_true(lfd >= 0);
    char pat[64], u[256];
    snprintf(pat, sizeof pat, "127.0.0.1:%d", sport);
    char *pats[] = {f->pattern, pat};
    f->manifest.http = pats;
    f->manifest.n_http = 2;
    f->cfg.resources.http_timeout_ms = 300;
    url(u, sizeof u, "127.0.0.1", sport, "/slow");
    assert_int_equal(run(f, "GET", u, NULL, NULL, &r), -ETIMEDOUT);
    close(lfd);

    /* Nobody listens there now. */
    f->cfg.resources.http_timeout_ms = 5000;
    assert_int_equal(run(f, "GET", u, NULL, NULL, &r), -ECONNREFUSED);
    assert_int_equal(f->pd.metrics.resource_failed[KIND], 2);
    f->manifest.http = f->patterns;
    f->manifest.n_http = 1;
}

/* A request in flight when the module stops gets -ECANCELED, once. */
static void test_cancel_at_stop(void **state)
{
    fix_t *f = *state;
    int sport;
    int lfd = silent_listener(&sport);
    assert_true(lfd >= 0);
    char pat[64], u[256];
    snprintf(pat, sizeof pat, "127.0.0.1:%d", sport);
    char *pats[] = {pat};
    pd_manifest_t m = {.http = pats, .n_http = 1};
    url(u, sizeof u, "127.0.0.1", sport, "/never");
    Plat__HttpRequest req = PLAT__HTTP_REQUEST__INIT;
    req.url = u;
    result_t r = {0};
    assert_int_equal(pd_res_http_request(&f->pd, INST, &m, &req, on_done, &r), 0);
    assert_int_equal(pd_res_http_active(&f->pd), 1);
    for (int i = 0; i < 5; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 0);
    pd_curl_stop(&f->pd);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err, -ECANCELED);
    assert_int_equal(pd_res_http_active(&f->pd), 0);
    /* After the stop: refused at once. */
    assert_int_equal(pd_res_http_request(&f->pd, INST, &m, &req, on_done, &r), -ECANCELED);
    assert_int_equal(r.calls, 1);
    close(lfd);
}

int main(void)
{
    plat_log_set_level(PLAT_LOG_WARNING);
    if (server_start() != 0) {
        fprintf(stderr, "cannot start the test server\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_and_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_denied_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_at_stop, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MHD_stop_daemon(g_mhd);
    return rc;
}
