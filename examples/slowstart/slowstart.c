/* slowstart: its start hook sleeps 30 s — longer than the platform's start
 * timeout — so the platform must time the action out and kill the host.
 * The config's "start_sleep_ms" changes the delay (tests use short ones). */
#include <errno.h>
#include <time.h>

#include <jansson.h>
#include <openplatform/plugin.h>

static int slowstart_start(op_ctx_t *ctx)
{
    long long ms = 30000;
    json_t *cfg = json_loads(op_config(ctx), 0, NULL);
    json_t *v = cfg ? json_object_get(cfg, "start_sleep_ms") : NULL;
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        ms = json_integer_value(v);
    json_decref(cfg);
    op_log(ctx, OP_LOG_NOTICE, "start: sleeping %lld ms", ms);
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    op_log(ctx, OP_LOG_NOTICE, "start: done");
    return 0;
}

static int slowstart_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    (void)ctx;
    (void)req;
    op_response_set_status(resp, 200);
    return op_response_set_body(resp, "started at last", 15);
}

OP_PLUGIN_DEFINE(.name = "slowstart", .start = slowstart_start, .on_event = slowstart_event);
