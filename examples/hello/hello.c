/* hello 1.0.0: answers every invoke with "hello, <name>", where <name> is
 * the instance config's "greeting_name" (default "world").
 *
 *   config:  {"greeting_name": "Ada"}
 *   invoke:  any method and path  ->  200 text/plain "hello, Ada" */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openplatform/plugin.h>

/* The greeting name from the config into buf; "world" when absent. */
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

static int hello_install(op_ctx_t *ctx)
{
    char name[128];
    int rc = greeting_name(ctx, name, sizeof name); /* refuse a bad config early */
    if (rc == 0)
        op_log(ctx, OP_LOG_INFO, "installed for org %s, greeting %s", op_org(ctx), name);
    return rc;
}

static int hello_start(op_ctx_t *ctx)
{
    op_log(ctx, OP_LOG_INFO, "hello %s started", op_plugin_version(ctx));
    return 0;
}

static int hello_stop(op_ctx_t *ctx)
{
    op_log(ctx, OP_LOG_INFO, "hello %s stopped", op_plugin_version(ctx));
    return 0;
}

static int hello_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    char name[128], text[160];
    int rc = greeting_name(ctx, name, sizeof name);
    if (rc < 0)
        return rc;
    int n = snprintf(text, sizeof text, "hello, %s", name);
    op_log(ctx, OP_LOG_DEBUG, "%s %s -> %s", req->method, req->path, text);
    op_response_set_status(resp, 200);
    op_response_add_header(resp, "Content-Type", "text/plain; charset=utf-8");
    return op_response_set_body(resp, text, (size_t)n);
}

/* Hooks left out (uninstall, enable, disable, upgrade) have nothing to do. */
OP_PLUGIN_DEFINE(.name = "hello", .install = hello_install, .start = hello_start,
                 .stop = hello_stop, .on_event = hello_event);
