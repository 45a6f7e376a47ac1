/* Plugin outbound HTTP (platformd/res_http.c) against a local libmicrohttpd
 * server running in its own thread: allowed GET/POST with headers and
 * body, a disallowed host or port, redirects (allowed, relative, to a
 * disallowed host, too many, 303 turning POST into GET), a slow server
 * (timeout), an oversized body (with and without Content-Length),
 * connection refused, bad input, and cancellation at shutdown. The
 * connect-time address rule (DNS rebinding): pd_res_http_addr_check over
 * many addresses, and end to end: "localhost:PORT" works, a name that
 * resolves to loopback without a pattern naming the address is refused
 * before the server sees anything (also on a redirect), platformd's own
 * API and bus ports are refused even under "127.0.0.1:*". Every call is
 * counted in pd->metrics. The curl transfers run on a real uv loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
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
static atomic_int g_hits; /* requests the server saw */
static char g_lname[64];  /* a name (not "localhost") resolving to 127.0.0.1 only, or "" */
static int g_lport;       /* where /to-lname redirects */

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
        atomic_fetch_add(&g_hits, 1);
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
    if (strcmp(url, "/to-lname") == 0) {
        snprintf(loc, sizeof loc, "http://%s:%d/echo", g_lname, g_lport);
        return answer(c, 302, "", "Location", loc);
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

/* ---- the address rule (DNS rebinding) ---------------------------------- */

static int check4(const char *ip, unsigned port, char **pats, size_t n, char *why, size_t size)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
    pd_manifest_t m = {.http = pats, .n_http = n};
    why[0] = 0;
    return pd_res_http_addr_check((struct sockaddr *)&sin, &m, 7780, 7700, why, size);
}

static int check6(const char *ip, unsigned port, char **pats, size_t n, char *why, size_t size)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
    pd_manifest_t m = {.http = pats, .n_http = n};
    why[0] = 0;
    return pd_res_http_addr_check((struct sockaddr *)&sin6, &m, 7780, 7700, why, size);
}

#define A4(ip, port, want) assert_int_equal(check4(ip, port, pats, n, why, sizeof why), want)
#define A6(ip, port, want) assert_int_equal(check6(ip, port, pats, n, why, sizeof why), want)

static void test_addr_rule(void **state)
{
    (void)state;
    char why[512];
    /* Only names: every internal address refused, public ones allowed. */
    char *names[] = {"*.example.com:*", "api.example.org:443"};
    char **pats = names;
    size_t n = 2;
    static const char *const internal4[] = {
        "127.0.0.1",  "127.1.2.3",       "10.0.0.1",    "10.255.255.255",
        "172.16.0.1", "172.31.255.254",  "192.168.1.1", "169.254.169.254",
        "0.0.0.0",    "0.1.2.3",         "100.64.0.1",  "100.127.255.255",
        "224.0.0.1",  "239.255.255.250", "240.0.0.1",   "255.255.255.255"};
    for (size_t i = 0; i < sizeof internal4 / sizeof internal4[0]; i++) {
        if (check4(internal4[i], 443, pats, n, why, sizeof why) != -EACCES)
            fail_msg("%s should be refused", internal4[i]);
        assert_non_null(strstr(why, internal4[i]));
        assert_non_null(strstr(why, "permissions.http"));
    }
    static const char *const public4[] = {"93.184.216.34",   "8.8.8.8",     "172.15.255.255",
                                          "172.32.0.1",      "192.167.1.1", "169.253.0.1",
                                          "100.63.255.255",  "100.128.0.1", "11.0.0.1",
                                          "223.255.255.255", "1.0.0.1"};
    for (size_t i = 0; i < sizeof public4 / sizeof public4[0]; i++)
        if (check4(public4[i], 443, pats, n, why, sizeof why) != 0)
            fail_msg("%s should be allowed: %s", public4[i], why);
    static const char *const internal6[] = {"::1",
                                            "::",
                                            "fe80::1",
                                            "febf::1",
                                            "fc00::1",
                                            "fd12:3456::1",
                                            "fec0::1",
                                            "ff02::1",
                                            "ff05::2",
                                            "::ffff:127.0.0.1",
                                            "::ffff:10.1.2.3",
                                            "::ffff:169.254.169.254",
                                            "64:ff9b::7f00:1",
                                            "64:ff9b::a00:1"};
    for (size_t i = 0; i < sizeof internal6 / sizeof internal6[0]; i++)
        if (check6(internal6[i], 443, pats, n, why, sizeof why) != -EACCES)
            fail_msg("%s should be refused", internal6[i]);
    static const char *const public6[] = {"2606:4700:4700::1111", "2001:db8::1", "::ffff:8.8.8.8",
                                          "64:ff9b::808:808", "fe00::1"};
    for (size_t i = 0; i < sizeof public6 / sizeof public6[0]; i++)
        if (check6(public6[i], 443, pats, n, why, sizeof why) != 0)
            fail_msg("%s should be allowed: %s", public6[i], why);
    A4("127.0.0.1", 80, -EACCES);
    assert_non_null(strstr(why, "127.0.0.1:80 is a loopback address"));
    assert_non_null(strstr(why, "or localhost"));
    A6("::1", 80, -EACCES);
    assert_non_null(strstr(why, "[::1]:80 is a loopback address"));
    A4("10.0.0.1", 80, -EACCES);
    assert_non_null(strstr(why, "private address"));
    assert_null(strstr(why, "localhost"));
    A4("169.254.169.254", 80, -EACCES);
    assert_non_null(strstr(why, "link-local"));

    /* An address named literally, with its port. */
    char *lit[] = {"10.0.0.5:8080", "192.168.1.10:*", "*.corp.example:*"};
    pats = lit;
    n = 3;
    A4("10.0.0.5", 8080, 0);
    A6("::ffff:10.0.0.5", 8080, 0); /* mapped: the same address */
    A4("10.0.0.5", 8081, -EACCES);
    A4("10.0.0.6", 8080, -EACCES);
    A4("192.168.1.10", 1, 0);
    A4("192.168.1.10", 65535, 0);
    A4("192.168.1.11", 80, -EACCES);
    A4("127.0.0.1", 8080, -EACCES);
    A6("fd00::5", 8080, -EACCES);
    /* Own ports are only special on loopback: a private address named in
     * the manifest may use them. */
    A4("192.168.1.10", 7780, 0);
    A4("192.168.1.10", 7700, 0);

    /* "localhost" names loopback (any of it, IPv6 too) and nothing else. */
    char *lh[] = {"localhost:8000", "LocalHost:9000"};
    pats = lh;
    n = 2;
    A4("127.0.0.1", 8000, 0);
    A4("127.0.1.1", 8000, 0);
    A6("::1", 8000, 0);
    A6("::ffff:127.0.0.1", 9000, 0);
    A4("127.0.0.1", 8001, -EACCES);
    A4("10.0.0.1", 8000, -EACCES);
    A4("169.254.169.254", 8000, -EACCES);
    A4("0.0.0.0", 8000, -EACCES);
    A6("fe80::1", 8000, -EACCES);

    /* Loopback literally, every port: still never platformd's own API or
     * bus port, on loopback or the unspecified address. */
    char *all[] = {"127.0.0.1:*", "localhost:*", "0.0.0.0:*"};
    pats = all;
    n = 3;
    A4("127.0.0.1", 8080, 0);
    A4("127.0.0.2", 8080, 0); /* via localhost */
    A6("::1", 8080, 0);
    A4("0.0.0.0", 8080, 0); /* named literally */
    A4("127.0.0.1", 7780, -EACCES);
    assert_non_null(strstr(why, "own HTTP API"));
    A4("127.0.0.1", 7700, -EACCES);
    assert_non_null(strstr(why, "own bus"));
    A4("127.9.9.9", 7780, -EACCES);
    A6("::1", 7780, -EACCES);
    A6("::ffff:127.0.0.1", 7700, -EACCES);
    A4("0.0.0.0", 7780, -EACCES);
    A6("::", 7700, -EACCES);
    /* Not even a public address is affected by the own ports. */
    A4("8.8.8.8", 7780, 0);

    /* No permissions at all: internal refused (the name check comes first
     * and refuses everything anyway); another family is -EINVAL. */
    assert_int_equal(pd_res_http_addr_check(
                         (struct sockaddr *)&(struct sockaddr_in){
                             .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)},
                         NULL, 0, 0, why, sizeof why),
                     -EACCES);
    struct sockaddr_un_like {
        sa_family_t family;
        char path[32];
    } un = {.family = AF_UNIX};
    assert_int_equal(pd_res_http_addr_check((struct sockaddr *)&un, NULL, 0, 0, why, sizeof why),
                     -EINVAL);
}

/* A name of this machine, not "localhost", that resolves to 127.0.0.1 only
 * (Debian maps the host name there in /etc/hosts), or "". */
static void find_loopback_name(void)
{
    char name[256] = "";
    if (gethostname(name, sizeof name - 1) != 0 || !name[0] || strlen(name) >= sizeof g_lname ||
        strcasecmp(name, "localhost") == 0 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") !=
            strlen(name))
        return;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(name, NULL, &hints, &res) != 0)
        return;
    bool only = res != NULL;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        struct sockaddr_in sin;
        memcpy(&sin, a->ai_addr, sizeof sin < a->ai_addrlen ? sizeof sin : a->ai_addrlen);
        only = only && a->ai_family == AF_INET && sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    }
    freeaddrinfo(res);
    if (only)
        memcpy(g_lname, name, strlen(name) + 1); /* fits: checked above */
}

static void use_patterns(fix_t *f, char **pats, size_t n)
{
    f->manifest.http = pats;
    f->manifest.n_http = n;
}

static void test_rebinding(void **state)
{
    fix_t *f = *state;
    result_t *r = calloc(1, sizeof *r);
    char u[256];
    int hits;

    /* "localhost:PORT" is allowed to reach loopback on that port. */
    char lh[64];
    snprintf(lh, sizeof lh, "localhost:%d", g_port);
    char *p_lh[] = {lh};
    use_patterns(f, p_lh, 1);
    url(u, sizeof u, "localhost", g_port, "/echo?q=lh");
    assert_int_equal(run(f, "GET", u, NULL, NULL, r), 0);
    assert_string_equal(r->body, "GET x-test=- ct=- q=lh body=");

    if (g_lname[0]) {
        /* A name allowed by the manifest that resolves to 127.0.0.1: the
         * connection is refused, the server never sees the request. */
        char ln[300], wild[300];
        snprintf(ln, sizeof ln, "%s:%d", g_lname, g_port);
        char *p_ln[] = {ln};
        use_patterns(f, p_ln, 1);
        url(u, sizeof u, g_lname, g_port, "/echo");
        hits = atomic_load(&g_hits);
        assert_int_equal(run(f, "GET", u, NULL, NULL, r), -EACCES);
        assert_non_null(strstr(r->why, "127.0.0.1"));
        assert_non_null(strstr(r->why, "loopback"));
        assert_non_null(strstr(r->why, g_lname));
        assert_int_equal(atomic_load(&g_hits), hits);
        /* Same through a wildcard port. */
        snprintf(wild, sizeof wild, "%s:*", g_lname);
        char *p_wild[] = {wild};
        use_patterns(f, p_wild, 1);
        assert_int_equal(run(f, "GET", u, NULL, NULL, r), -EACCES);
        assert_int_equal(atomic_load(&g_hits), hits);
        /* A redirect from an allowed loopback server to that name on
         * another port (nobody listens there: without the check it would
         * be -ECONNREFUSED): the second hop is refused at connect time. */
        g_lport = plat_test_free_port();
        char *p_both[] = {f->pattern, wild};
        use_patterns(f, p_both, 2);
        url(u, sizeof u, "127.0.0.1", g_port, "/to-lname");
        assert_int_equal(run(f, "GET", u, NULL, NULL, r), -EACCES);
        assert_non_null(strstr(r->why, "loopback"));
        assert_int_equal(atomic_load(&g_hits), hits + 1); /* the first hop only */
        /* With the address and port named as well ("127.0.0.1:PORT"), the
         * name may go there: the manifest grants that address itself. */
        url(u, sizeof u, g_lname, g_port, "/echo?q=named");
        assert_int_equal(run(f, "GET", u, NULL, NULL, r), 0);
        assert_string_equal(r->body, "GET x-test=- ct=- q=named body=");
    } else {
        print_message("no host name resolving to 127.0.0.1 only: name rebinding case skipped\n");
    }

    /* platformd's own HTTP API port: refused even though the manifest
     * allows all of loopback, by address and by name. */
    char *p_all[] = {"127.0.0.1:*", "localhost:*"};
    use_patterns(f, p_all, 2);
    int64_t api = f->cfg.http.port;
    f->cfg.http.port = g_port;
    hits = atomic_load(&g_hits);
    url(u, sizeof u, "127.0.0.1", g_port, "/echo");
    assert_int_equal(run(f, "GET", u, NULL, NULL, r), -EACCES);
    assert_non_null(strstr(r->why, "own HTTP API"));
    url(u, sizeof u, "localhost", g_port, "/echo");
    assert_int_equal(run(f, "POST", u, "x", NULL, r), -EACCES);
    assert_non_null(strstr(r->why, "own HTTP API"));
    assert_int_equal(atomic_load(&g_hits), hits);
    f->cfg.http.port = api;

    /* ... and its bus port. */
    char bus[64];
    snprintf(bus, sizeof bus, "tcp://127.0.0.1:%d", g_port);
    char *old_bus = f->cfg.bus.endpoint;
    f->cfg.bus.endpoint = bus;
    url(u, sizeof u, "127.0.0.1", g_port, "/echo");
    assert_int_equal(run(f, "GET", u, NULL, NULL, r), -EACCES);
    assert_non_null(strstr(r->why, "own bus"));
    assert_int_equal(atomic_load(&g_hits), hits);
    f->cfg.bus.endpoint = old_bus;

    /* Other loopback ports stay reachable under "127.0.0.1:*". */
    url(u, sizeof u, "127.0.0.1", g_port, "/echo?q=ok");
    assert_int_equal(run(f, "GET", u, NULL, NULL, r), 0);
    assert_string_equal(r->body, "GET x-test=- ct=- q=ok body=");

    int denied = g_lname[0] ? 6 : 3;
    int ok = g_lname[0] ? 3 : 2;
    assert_int_equal(f->pd.metrics.resource_denied[KIND], denied);
    assert_int_equal(f->pd.metrics.resource_failed[KIND], denied);
    assert_int_equal(f->pd.metrics.resource_ok[KIND], ok);
    use_patterns(f, f->patterns, 1);
    free(r);
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
    find_loopback_name();
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
        cmocka_unit_test(test_addr_rule),
        cmocka_unit_test_setup_teardown(test_rebinding, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MHD_stop_daemon(g_mhd);
    return rc;
}
