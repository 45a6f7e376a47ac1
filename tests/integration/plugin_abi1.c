/* abi1: a plugin as built against the version-1 SDK header — its
 * descriptor ends after on_event (no on_task) and says abi_version 1. The
 * host must still load and run it (plugin ABI 1 and 2 are both accepted). */
#include <openplatform/plugin.h>

/* struct op_plugin of OP_PLUGIN_ABI_VERSION 1, verbatim. */
struct op_plugin_v1 {
    uint32_t abi_version;
    const char *name;
    int (*install)(op_ctx_t *ctx);
    int (*uninstall)(op_ctx_t *ctx);
    int (*enable)(op_ctx_t *ctx);
    int (*disable)(op_ctx_t *ctx);
    int (*upgrade)(op_ctx_t *ctx, const char *from_version);
    int (*start)(op_ctx_t *ctx);
    int (*stop)(op_ctx_t *ctx);
    int (*on_event)(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp);
};

static int abi1_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    (void)ctx;
    (void)req;
    return op_response_set_body(resp, "abi 1 plugin", 12);
}

__attribute__((visibility("default"))) const struct op_plugin_v1 op_plugin_descriptor_v1 = {
    .abi_version = 1,
    .name = "abi1",
    .on_event = abi1_event,
};
