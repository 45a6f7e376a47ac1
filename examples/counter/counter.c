/* counter: counts the invokes of each instance and answers {"count": N}.
 * The count lives in memory, in the instance's user data, so it survives
 * stop/start for as long as the host process does (a powerSave host keeps
 * it while it has other instances or until idle). Once the platform offers
 * a per-instance file or database it will move there.
 *
 * The count is stored in the user-data pointer itself (no allocation, so
 * nothing to free when the host exits); it is safe without a lock because
 * the hooks of one instance never run concurrently. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include <openplatform/plugin.h>

static uintptr_t count_of(op_ctx_t *ctx)
{
    void *data = op_user_data(ctx);
    return (uintptr_t)data;
}

static int counter_start(op_ctx_t *ctx)
{
    op_log(ctx, OP_LOG_INFO, "started with count=%" PRIuPTR, count_of(ctx));
    return 0;
}

static int counter_stop(op_ctx_t *ctx)
{
    op_log(ctx, OP_LOG_INFO, "stopped with count=%" PRIuPTR, count_of(ctx));
    return 0;
}

static int counter_uninstall(op_ctx_t *ctx)
{
    op_set_user_data(ctx, NULL);
    return 0;
}

static int counter_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    (void)req;
    uintptr_t n = count_of(ctx) + 1;
    op_set_user_data(ctx, (void *)n);
    char text[64];
    int len = snprintf(text, sizeof text, "{\"count\":%" PRIuPTR "}", n);
    op_response_set_status(resp, 200);
    op_response_add_header(resp, "Content-Type", "application/json");
    return op_response_set_body(resp, text, (size_t)len);
}

OP_PLUGIN_DEFINE(.name = "counter", .uninstall = counter_uninstall, .start = counter_start,
                 .stop = counter_stop, .on_event = counter_event);
