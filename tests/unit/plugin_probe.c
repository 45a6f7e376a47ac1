/* A test plugin for test_plugins: hooks that report what the runner did.
 *   install    allocates per-instance state (user data); config
 *              {"install_rc": N} makes it return N instead
 *   enable     returns config "enable_rc" (default 0)
 *   uninstall  frees the state
 *   start      sleeps config "start_sleep_ms" (default 0)
 *   on_event   by path:
 *     /seq       body "<n>": 200 if n == previous + 1, 409 otherwise; 409
 *                as well if another hook of this instance was running
 *     /tid       200, body = the hook thread's tid
 *     /meet      waits (up to 5 s) until a second instance is inside /meet
 *                too: 200 "met", else 504
 *     /fail      returns -EIO
 *     /positive  returns 7 (a contract violation)
 *     /echo      200, body = request body, header X-Method = method,
 *                X-Path = path, X-Headers = number of request headers
 *     /big       tries a body over the host's limit: 200 "EMSGSIZE" if
 *                refused */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <openplatform/plugin.h>

typedef struct {
    atomic_int in_hook; /* hooks of this instance running now */
    long last_seq;
} probe_t;

static atomic_int g_meet;

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* A crude integer lookup in the config JSON: "key": N. */
static long cfg_int(op_ctx_t *ctx, const char *key, long dflt)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(op_config(ctx), pat);
    if (!p || !(p = strchr(p + strlen(pat), ':')))
        return dflt;
    return strtol(p + 1, NULL, 10);
}

static int probe_install(op_ctx_t *ctx)
{
    long rc = cfg_int(ctx, "install_rc", 0);
    if (rc)
        return (int)rc;
    probe_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    op_set_user_data(ctx, p);
    op_log(ctx, OP_LOG_DEBUG, "installed\nwith a newline in the log line");
    return 0;
}

static int probe_uninstall(op_ctx_t *ctx)
{
    free(op_user_data(ctx));
    op_set_user_data(ctx, NULL);
    return 0;
}

static int probe_enable(op_ctx_t *ctx) { return (int)cfg_int(ctx, "enable_rc", 0); }

static int probe_start(op_ctx_t *ctx)
{
    probe_t *p = op_user_data(ctx);
    if (p)
        atomic_fetch_add(&p->in_hook, 1);
    sleep_ms(cfg_int(ctx, "start_sleep_ms", 0));
    if (p)
        atomic_fetch_sub(&p->in_hook, 1);
    return 0;
}

static int reply_text(op_response_t *resp, unsigned status, const char *text)
{
    op_response_set_status(resp, status);
    return op_response_set_body(resp, text, strlen(text));
}

static int probe_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    probe_t *p = op_user_data(ctx);
    char buf[64];
    if (strcmp(req->path, "/seq") == 0) {
        if (!p)
            return -EINVAL;
        int overlap = atomic_fetch_add(&p->in_hook, 1) != 0;
        sleep_ms(2);
        snprintf(buf, sizeof buf, "%.*s", (int)req->body_len, req->body ? (const char *)req->body : "");
        long n = strtol(buf, NULL, 10);
        int in_order = n == p->last_seq + 1;
        p->last_seq = n;
        atomic_fetch_sub(&p->in_hook, 1);
        return reply_text(resp, overlap || !in_order ? 409 : 200, buf);
    }
    if (strcmp(req->path, "/tid") == 0) {
        snprintf(buf, sizeof buf, "%ld", (long)syscall(SYS_gettid));
        return reply_text(resp, 200, buf);
    }
    if (strcmp(req->path, "/meet") == 0) {
        atomic_fetch_add(&g_meet, 1);
        for (int i = 0; i < 5000 && atomic_load(&g_meet) < 2; i++)
            sleep_ms(1);
        return reply_text(resp, atomic_load(&g_meet) >= 2 ? 200 : 504, "met");
    }
    if (strcmp(req->path, "/fail") == 0)
        return -EIO;
    if (strcmp(req->path, "/positive") == 0)
        return 7;
    if (strcmp(req->path, "/echo") == 0) {
        op_response_set_status(resp, 201);
        op_response_add_header(resp, "X-Method", req->method);
        op_response_add_header(resp, "X-Path", req->path);
        snprintf(buf, sizeof buf, "%zu", req->n_headers);
        op_response_add_header(resp, "X-Headers", buf);
        for (size_t i = 0; i < req->n_headers; i++)
            op_response_add_header(resp, req->headers[i].name, req->headers[i].value);
        if (op_response_add_header(resp, "Bad\r\nName", "x") != -EINVAL)
            return -EPROTO;
        return op_response_set_body(resp, req->body, req->body_len);
    }
    if (strcmp(req->path, "/big") == 0) {
        static const char one = 'x';
        /* the length check comes before any copy, so the pointer is not read */
        int rc = op_response_set_body(resp, &one, (size_t)64 * 1024 * 1024);
        return reply_text(resp, 200, rc == -EMSGSIZE ? "EMSGSIZE" : "accepted");
    }
    return reply_text(resp, 404, "no such probe");
}

OP_PLUGIN_DEFINE(.name = "probe", .install = probe_install, .uninstall = probe_uninstall,
                 .enable = probe_enable, .start = probe_start, .on_event = probe_event);
