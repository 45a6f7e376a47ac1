/* A plugin built for a future plugin ABI: the host must refuse it (-EPROTO). */
#include <openplatform/plugin.h>

static int never(op_ctx_t *ctx)
{
    (void)ctx;
    return 0;
}

__attribute__((visibility("default"))) const struct op_plugin op_plugin_descriptor_v1 = {
    .abi_version = OP_PLUGIN_ABI_VERSION + 1,
    .name = "badabi",
    .start = never,
};
