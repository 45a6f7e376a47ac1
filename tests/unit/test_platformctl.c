/* platformctl's building blocks: the table printer (alignment, cells,
 * flattened key/value listings) and the HTTP client (request as sent,
 * bearer token, no proxy even when $http_proxy is set, transport failures,
 * timeouts) against a one-shot loopback server thread. The commands
 * themselves run end to end in tests/integration/test_it_platformctl.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "http.h"
#include "table.h"
#include "testports.h"

/* ---- tables ------------------------------------------------------------- */

/* What `print` wrote, malloc'd. */
static char *capture(void (*print)(void *), void *arg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    FILE *saved = stdout;
    stdout = f;
    print(arg);
    stdout = saved;
    assert_int_equal(fclose(f), 0);
    return text;
}

static void print_table(void *t)
{
    ctl_table_print(t, stdout);
}
static void print_object(void *o)
{
    ctl_print_object(o, stdout);
}

static void test_table_aligns(void **state)
{
    (void)state;
    static const char *const headers[] = {"UUID", "STATE", "HOST"};
    ctl_table_t *t = ctl_table_new(3, headers);
    assert_non_null(t);
    assert_int_equal(ctl_table_add(t, (const char *const[]){"a", "running", "host-1"}), 0);
    assert_int_equal(ctl_table_add(t, (const char *const[]){"longer-id", NULL, "h"}), 0);
    char *out = capture(print_table, t);
    assert_string_equal(out, "UUID       STATE    HOST\n"
                             "a          running  host-1\n"
                             "longer-id  -        h\n");
    free(out);
    ctl_table_destroy(&t);
    assert_null(t);
    ctl_table_destroy(&t); /* NULL-safe */
    ctl_table_destroy(NULL);
}

static void test_table_empty_prints_header(void **state)
{
    (void)state;
    static const char *const headers[] = {"ID", "VERSION"};
    ctl_table_t *t = ctl_table_new(2, headers);
    /* Many rows: the storage grows. */
    char *out = capture(print_table, t);
    assert_string_equal(out, "ID  VERSION\n");
    free(out);
    for (int i = 0; i < 100; i++) {
        char id[16];
        snprintf(id, sizeof id, "p%d", i);
        assert_int_equal(ctl_table_add(t, (const char *const[]){id, "1.0.0"}), 0);
    }
    out = capture(print_table, t);
    assert_non_null(strstr(out, "p99  1.0.0\n"));
    assert_non_null(strstr(out, "p0   1.0.0\n"));
    free(out);
    ctl_table_destroy(&t);
}

static void expect_cell(json_t *v, const char *want)
{
    char *c = ctl_cell(v);
    assert_non_null(c);
    assert_string_equal(c, want);
    free(c);
    json_decref(v);
}

static void test_cells(void **state)
{
    (void)state;
    char *c = ctl_cell(NULL);
    assert_string_equal(c, "-");
    free(c);
    expect_cell(json_null(), "-");
    expect_cell(json_string("running"), "running");
    expect_cell(json_string(""), "-");
    expect_cell(json_integer(42), "42");
    expect_cell(json_true(), "true");
    expect_cell(json_pack("[s,s]", "a", "b"), "a,b");
    expect_cell(json_array(), "-");
    expect_cell(json_pack("{s:i}", "k", 1), "{\"k\":1}");
    expect_cell(json_pack("[i]", 1), "[1]");
}

static void test_object_flattened(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:s, s:{s:i, s:{s:i}}, s:{}, s:I, s:i, s:n}", "version", "0.1.0",
                          "counts", "hosts", 3, "bus", "rx", 7, "config", "created_at",
                          (json_int_t)86400000, "registered_at", 0, "host");
    assert_non_null(o);
    char *out = capture(print_object, o);
    assert_string_equal(out, "version        0.1.0\n"
                             "counts.hosts   3\n"
                             "counts.bus.rx  7\n"
                             "config         {}\n"
                             "created_at     1970-01-02T00:00:00Z\n"
                             "registered_at  0\n"
                             "host           -\n");
    free(out);
    json_decref(o);
}

/* ---- HTTP client ----------------------------------------------------------- */

typedef struct {
    int listen_fd;
    bool reply;         /* false: accept, read, never answer (until closed) */
    char request[8192]; /* what came, headers and body */
    size_t len;
    int stop_pipe[2]; /* the test writes here to end a silent server */
} server_t;

static void *serve(void *arg)
{
    server_t *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    /* Read the head, then Content-Length bytes of body. */
    for (;;) {
        ssize_t n = read(fd, s->request + s->len, sizeof s->request - 1 - s->len);
        if (n <= 0)
            break;
        s->len += (size_t)n;
        s->request[s->len] = 0;
        char *end = strstr(s->request, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strcasestr(s->request, "Content-Length:");
        size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
        if (s->len >= (size_t)(end + 4 - s->request) + want)
            break;
    }
    if (s->reply) {
        static const char resp[] = "HTTP/1.1 201 Created\r\n"
                                   "Content-Type: application/json\r\n"
                                   "Content-Length: 11\r\n"
                                   "Connection: close\r\n\r\n"
                                   "{\"ok\":true}";
        ssize_t w = write(fd, resp, sizeof resp - 1);
        (void)w;
    } else {
        char b;
        ssize_t r = read(s->stop_pipe[0], &b, 1); /* until the test is done */
        (void)r;
    }
    close(fd);
    return NULL;
}

static int listen_loopback(int *port)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int p = plat_test_free_port();
        assert_true(p > 0);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 && listen(fd, 4) == 0) {
            *port = p;
            return fd;
        }
        close(fd);
    }
    fail_msg("no loopback port to listen on");
    return -1;
}

static void test_request_as_sent_without_proxy(void **state)
{
    (void)state;
    /* A proxy that leads nowhere: used, the request would fail. */
    int dead = plat_test_free_port();
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", dead);
    setenv("http_proxy", proxy, 1);
    setenv("HTTP_PROXY", proxy, 1);
    setenv("ALL_PROXY", proxy, 1);

    server_t s = {.reply = true};
    int port;
    s.listen_fd = listen_loopback(&port);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, serve, &s), 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/instances", port);
    static const char body[] = "{\"plugin\":\"hello\"}";
    ctl_request_t req = {.method = "POST",
                         .url = url,
                         .token = "sekrit-token-123",
                         .content_type = "application/json",
                         .body = body,
                         .body_len = sizeof body - 1,
                         .timeout_ms = 5000};
    ctl_response_t resp;
    assert_int_equal(ctl_http_request(&req, &resp), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    close(s.listen_fd);
    assert_int_equal(resp.status, 201);
    assert_string_equal(resp.content_type, "application/json");
    assert_int_equal(resp.len, 11);
    assert_string_equal(resp.body, "{\"ok\":true}");
    /* Origin-form request line: not sent to a proxy. */
    assert_true(strncmp(s.request, "POST /api/v1/instances HTTP/1.1\r\n", 33) == 0);
    assert_non_null(strstr(s.request, "\r\nAuthorization: Bearer sekrit-token-123\r\n"));
    assert_non_null(strstr(s.request, "\r\nContent-Type: application/json\r\n"));
    assert_null(strcasestr(s.request, "Expect:"));
    assert_non_null(strstr(s.request, "\r\n\r\n{\"plugin\":\"hello\"}"));
    ctl_response_clear(&resp);
    ctl_response_clear(&resp); /* idempotent */
    ctl_response_clear(NULL);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("ALL_PROXY");
}

static void test_get_sends_no_token_and_empty_post(void **state)
{
    (void)state;
    server_t s = {.reply = true};
    int port;
    s.listen_fd = listen_loopback(&port);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, serve, &s), 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/instances/u/start", port);
    /* A POST without a body still says Content-Length: 0. */
    ctl_request_t req = {.method = "POST", .url = url, .token = "t", .timeout_ms = 5000};
    ctl_response_t resp;
    assert_int_equal(ctl_http_request(&req, &resp), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    close(s.listen_fd);
    assert_non_null(strcasestr(s.request, "\r\nContent-Length: 0\r\n"));
    ctl_response_clear(&resp);

    memset(&s, 0, sizeof s);
    s.reply = true;
    s.listen_fd = listen_loopback(&port);
    assert_int_equal(pthread_create(&th, NULL, serve, &s), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/status", port);
    ctl_request_t get = {.method = "GET", .url = url, .timeout_ms = 5000};
    assert_int_equal(ctl_http_request(&get, &resp), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    close(s.listen_fd);
    assert_true(strncmp(s.request, "GET /api/v1/status HTTP/1.1\r\n", 29) == 0);
    assert_null(strcasestr(s.request, "Authorization"));
    ctl_response_clear(&resp);
}

static void test_unreachable(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", plat_test_free_port());
    ctl_request_t req = {.method = "GET", .url = url, .timeout_ms = 5000};
    ctl_response_t resp;
    assert_int_equal(ctl_http_request(&req, &resp), -EIO);
    assert_int_equal(resp.status, 0);
    assert_true(resp.error[0] != 0);
    assert_non_null(resp.body); /* never NULL */
    assert_int_equal(resp.len, 0);
    ctl_response_clear(&resp);

    ctl_request_t bad = {.method = "GET", .url = "notaurl://x", .timeout_ms = 1000};
    assert_int_equal(ctl_http_request(&bad, &resp), -EIO);
    ctl_response_clear(&resp);
}

static void test_timeout(void **state)
{
    (void)state;
    server_t s = {.reply = false};
    assert_int_equal(pipe(s.stop_pipe), 0);
    int port;
    s.listen_fd = listen_loopback(&port);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, serve, &s), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", port);
    ctl_request_t req = {.method = "GET", .url = url, .timeout_ms = 300};
    ctl_response_t resp;
    assert_int_equal(ctl_http_request(&req, &resp), -EIO);
    assert_int_equal(resp.status, 0);
    assert_non_null(strcasestr(resp.error, "timeout"));
    ctl_response_clear(&resp);
    assert_int_equal(write(s.stop_pipe[1], "x", 1), 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    close(s.listen_fd);
    close(s.stop_pipe[0]);
    close(s.stop_pipe[1]);
}

static void test_escape(void **state)
{
    (void)state;
    char *e = ctl_http_escape("a b/c?d=e&f");
    assert_non_null(e);
    assert_string_equal(e, "a%20b%2Fc%3Fd%3De%26f");
    free(e);
    e = ctl_http_escape("0b7e1a52-3c1f-4d7a-9a41-6f1e2d3c4b5a");
    assert_string_equal(e, "0b7e1a52-3c1f-4d7a-9a41-6f1e2d3c4b5a");
    free(e);
}

static int group_setup(void **state)
{
    (void)state;
    return curl_global_init(CURL_GLOBAL_DEFAULT) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_aligns),
        cmocka_unit_test(test_table_empty_prints_header),
        cmocka_unit_test(test_cells),
        cmocka_unit_test(test_object_flattened),
        cmocka_unit_test(test_request_as_sent_without_proxy),
        cmocka_unit_test(test_get_sends_no_token_and_empty_post),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
