/* crashy: an invoke of path "/crash" kills its host with SIGSEGV, on
 * purpose, to exercise crash handling (the instance goes failed or is
 * restarted; the platform and other hosts carry on). Any other path
 * answers 200 "ok". */
#include <signal.h>
#include <string.h>

#include <openplatform/plugin.h>

static int crashy_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    if (strcmp(req->path, "/crash") == 0) {
        op_log(ctx, OP_LOG_WARNING, "crashing on purpose (SIGSEGV)");
        raise(SIGSEGV);
    }
    op_response_set_status(resp, 200);
    op_response_add_header(resp, "Content-Type", "text/plain");
    return op_response_set_body(resp, "ok", 2);
}

OP_PLUGIN_DEFINE(.name = "crashy", .on_event = crashy_event);
