/* websvc: a plugin web service. start opens a tiny HTTP server (one thread,
 * plain sockets, one request per connection) on 127.0.0.1 — the config's
 * "port", or any free port when absent or 0 — and registers it with
 * op_service_register(port, "/health"). The platform then proxies
 * /plugins/<uuid>/svc/<path> to it and checks /health on an interval.
 *
 * The server answers
 *   GET /health   200 "ok"
 *   anything else 200, a small HTML page naming the request and a count
 *
 * For trying the health check, invokes drive the server:
 *   invoke /down  close the server (the platform sees it unhealthy: 503)
 *   invoke /up    open it again on the same port
 *   invoke other  {"port": P, "up": true|false, "served": N}
 *
 * stop closes the server and unregisters the service. The server thread
 * never touches the context (valid only during a hook): what it needs is
 * copied into the instance's state. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, pipe2 */
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <openplatform/plugin.h>

typedef struct {
    int listen_fd;      /* -1 when down */
    int wake[2];        /* pipe: a byte tells the thread to exit */
    pthread_t thread;
    bool running;
    unsigned port;
    char instance[64];
    atomic_uint served;
} svc_t;

static void serve_one(svc_t *s, int fd)
{
    char buf[8192];
    size_t used = 0;
    buf[0] = '\0';
    struct pollfd p = {.fd = fd, .events = POLLIN};
    /* Read the request head (a body, if any, is ignored). */
    while (used < sizeof buf - 1 && !strstr(buf, "\r\n\r\n")) {
        if (poll(&p, 1, 2000) <= 0)
            return;
        ssize_t n = read(fd, buf + used, sizeof buf - 1 - used);
        if (n <= 0)
            return;
        used += (size_t)n;
        buf[used] = '\0';
    }
    char method[16] = "", path[1024] = "";
    if (sscanf(buf, "%15s %1023s", method, path) != 2)
        return;
    char body[1536];
    const char *type = "text/plain";
    int blen;
    if (strcmp(path, "/health") == 0) {
        blen = snprintf(body, sizeof body, "ok\n");
    } else {
        unsigned n = atomic_fetch_add(&s->served, 1) + 1;
        type = "text/html; charset=utf-8";
        blen = snprintf(body, sizeof body,
                        "<!doctype html><title>websvc</title><h1>websvc</h1>"
                        "<p>instance %s answered %s %.200s (request %u)</p>\n",
                        s->instance, method, path, n);
    }
    char head[256];
    int hlen = snprintf(head, sizeof head,
                        "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                        "Connection: close\r\n\r\n",
                        type, blen);
    if (write(fd, head, (size_t)hlen) == hlen && strcmp(method, "HEAD") != 0 &&
        write(fd, body, (size_t)blen) != blen)
        return;
}

/* Close without a reset: stop sending, then read what the client still
 * sends (a request body we did not read) until it closes, briefly. */
static void close_gracefully(int fd)
{
    shutdown(fd, SHUT_WR);
    char sink[4096];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 1000) > 0 && read(fd, sink, sizeof sink) > 0)
        ;
    close(fd);
}

static void *server_main(void *arg)
{
    svc_t *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
                              {.fd = s->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (p[0].revents & POLLIN) {
            int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                serve_one(s, fd);
                close_gracefully(fd);
            }
        }
    }
    return NULL;
}

/* Listen on 127.0.0.1:s->port (0: any; the chosen port is kept) and start
 * the thread. */
static int server_up(op_ctx_t *ctx, svc_t *s)
{
    if (s->running)
        return 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
        int rc = -errno;
        op_log(ctx, OP_LOG_ERR, "cannot listen on 127.0.0.1:%u: %s", s->port, strerror(-rc));
        close(fd);
        return rc;
    }
    s->port = ntohs(a.sin_port);
    s->listen_fd = fd;
    if (pipe2(s->wake, O_CLOEXEC) < 0) {
        close(fd);
        s->listen_fd = -1;
        return -errno;
    }
    int rc = pthread_create(&s->thread, NULL, server_main, s);
    if (rc) {
        close(s->wake[0]);
        close(s->wake[1]);
        close(fd);
        s->listen_fd = -1;
        return -rc;
    }
    s->running = true;
    op_log(ctx, OP_LOG_INFO, "serving on 127.0.0.1:%u", s->port);
    return 0;
}

static void server_down(svc_t *s)
{
    if (!s->running)
        return;
    if (write(s->wake[1], "x", 1) != 1) {
        /* the pipe cannot be full: the thread reads nothing from it */
    }
    pthread_join(s->thread, NULL);
    close(s->wake[0]);
    close(s->wake[1]);
    close(s->listen_fd);
    s->listen_fd = -1;
    s->running = false;
}

static svc_t *state(op_ctx_t *ctx)
{
    svc_t *s = op_user_data(ctx);
    if (s)
        return s;
    if (!(s = calloc(1, sizeof *s)))
        return NULL;
    s->listen_fd = -1;
    snprintf(s->instance, sizeof s->instance, "%s", op_instance_id(ctx));
    op_set_user_data(ctx, s);
    return s;
}

static int websvc_start(op_ctx_t *ctx)
{
    svc_t *s = state(ctx);
    if (!s)
        return -ENOMEM;
    if (!s->running) {
        json_t *cfg = json_loads(op_config(ctx), 0, NULL);
        json_int_t port = json_integer_value(json_object_get(cfg, "port"));
        json_decref(cfg);
        if (port < 0 || port > 65535)
            return -EINVAL;
        s->port = (unsigned)port;
    }
    int rc = server_up(ctx, s);
    if (rc < 0)
        return rc;
    rc = op_service_register(ctx, s->port, "/health");
    if (rc < 0) {
        op_log(ctx, OP_LOG_ERR, "cannot register the service on port %u: %s", s->port,
               op_last_error(ctx));
        server_down(s);
    }
    return rc;
}

static int websvc_stop(op_ctx_t *ctx)
{
    svc_t *s = op_user_data(ctx);
    if (s)
        server_down(s);
    if (op_service_unregister(ctx) < 0)
        op_log(ctx, OP_LOG_DEBUG, "service unregister: %s", op_last_error(ctx));
    return 0;
}

static int websvc_uninstall(op_ctx_t *ctx)
{
    svc_t *s = op_user_data(ctx);
    if (s) {
        server_down(s);
        free(s);
        op_set_user_data(ctx, NULL);
    }
    return 0;
}

static int websvc_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    svc_t *s = state(ctx);
    if (!s)
        return -ENOMEM;
    int rc = 0;
    if (strcmp(req->path, "/down") == 0)
        server_down(s);
    else if (strcmp(req->path, "/up") == 0 && s->port)
        rc = server_up(ctx, s);
    if (rc < 0)
        return rc;
    char text[128];
    int len = snprintf(text, sizeof text, "{\"port\":%u,\"up\":%s,\"served\":%u}", s->port,
                       s->running ? "true" : "false", atomic_load(&s->served));
    op_response_add_header(resp, "Content-Type", "application/json");
    return op_response_set_body(resp, text, (size_t)len);
}

OP_PLUGIN_DEFINE(.name = "websvc", .start = websvc_start, .stop = websvc_stop,
                 .uninstall = websvc_uninstall, .on_event = websvc_event);
