/* hello 2.0.0: answers "hello v2, <name>" (config "greeting_name", default
 * "world"); its upgrade hook accepts any 1.x version. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openplatform/plugin.h>

static int greeting_name(op_ctx_t *ctx, char *buf, size_t size)
{
    json_error_t err;
    json_t *cfg = json_loads(op_config(ctx), 0, &err);
    if (!cfg) {
        op_log(ctx, OP_LOG_ERR, "config is not JSON: %s", err.text);
        return -EINVAL;
    }
    const char *name = json_string_value(json_object_get(cfg, "greeting_name"));
    snprintf(buf, size, "%s", name && name[0] ? name : "world");
    json_decref(cfg);
    return 0;
}

static int hello_upgrade(op_ctx_t *ctx, const char *from_version)
{
    if (strncmp(from_version, "1.", 2) != 0) {
        op_log(ctx, OP_LOG_ERR, "cannot upgrade from %s: only 1.x", from_version);
        return -EINVAL;
    }
    op_log(ctx, OP_LOG_NOTICE, "upgraded from %s to %s", from_version, op_plugin_version(ctx));
    return 0;
}

static int hello_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    (void)req;
    char name[128], text[160];
    int rc = greeting_name(ctx, name, sizeof name);
    if (rc < 0)
        return rc;
    int n = snprintf(text, sizeof text, "hello v2, %s", name);
    op_response_set_status(resp, 200);
    op_response_add_header(resp, "Content-Type", "text/plain; charset=utf-8");
    return op_response_set_body(resp, text, (size_t)n);
}

OP_PLUGIN_DEFINE(.name = "hello", .upgrade = hello_upgrade, .on_event = hello_event);
