/* hello 2.1.0 with a broken migration: its upgrade hook always fails with
 * -EIO, so the platform must roll the instance back to the old version. */
#include <errno.h>
#include <stdio.h>

#include <openplatform/plugin.h>

static int hello_upgrade(op_ctx_t *ctx, const char *from_version)
{
    op_log(ctx, OP_LOG_WARNING, "migration from %s to %s failed (on purpose)", from_version,
           op_plugin_version(ctx));
    return -EIO;
}

static int hello_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    (void)ctx;
    (void)req;
    static const char text[] = "hello v2.1 (should never answer: its upgrade fails)";
    op_response_set_status(resp, 200);
    op_response_add_header(resp, "Content-Type", "text/plain; charset=utf-8");
    return op_response_set_body(resp, text, sizeof text - 1);
}

OP_PLUGIN_DEFINE(.name = "hello", .upgrade = hello_upgrade, .on_event = hello_event);
