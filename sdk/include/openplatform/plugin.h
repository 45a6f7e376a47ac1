/* Open Platform plugin SDK for C — the one header a plugin author needs.
 *
 * A plugin is a shared object that exports one descriptor,
 * `op_plugin_descriptor_v1`, made with OP_PLUGIN_DEFINE:
 *
 *     #include <openplatform/plugin.h>
 *
 *     static int hello_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
 *     {
 *         op_response_set_status(resp, 200);
 *         op_response_add_header(resp, "Content-Type", "text/plain");
 *         return op_response_set_body(resp, "hello", 5);
 *     }
 *
 *     OP_PLUGIN_DEFINE(.name = "hello", .on_event = hello_event);
 *
 * Build it with `-fPIC -shared` (no library to link: everything the plugin
 * calls in the host comes through the context's function table, so the
 * shared object needs no symbol from the host) and name it in the package's
 * manifest.json as "entry".
 *
 * ABI. The host refuses (error -EPROTO, naming both versions) a descriptor
 * whose abi_version is not the host's OP_PLUGIN_ABI_VERSION, and a shared
 * object without the descriptor symbol. The host's function table carries
 * its own size and version so it can grow at the end without breaking
 * plugins built against an older header; the wrappers below return -ENOSYS
 * (or NULL) when a plugin built against a newer header runs on an older host.
 *
 * Hooks. Every hook returns 0 on success or a negative errno value
 * (-EINVAL, -EIO, ...), which the platform reports as the action's error.
 * A NULL hook means "nothing to do" and counts as success, except
 * on_event: an instance without on_event answers every event with an error.
 *
 *   install    the instance was created (runs once per instance)
 *   uninstall  the instance is being removed (free what user data holds)
 *   enable     / disable: the operator allowed / forbade running it
 *   upgrade    runs in the NEW version with the version upgraded from; a
 *              failure makes the platform roll back to the old version
 *   start      / stop: the instance begins / ends serving events
 *   on_event   an event (an HTTP invoke): fill the response
 *
 * Threading. Hooks run on a worker thread of the host, never on the thread
 * that talks to the platform, so a slow hook leaves the host "busy", not
 * "dead" (but a hook that overruns the action timeout gets its host killed).
 * Hooks of ONE instance never run concurrently and see each other's effects
 * in order. Hooks of DIFFERENT instances of the same plugin (one host may
 * hold several, in powerSave mode) may run at the same time on different
 * threads: keep per-instance state in the user data, and protect anything
 * global (static variables) yourself.
 *
 * Lifetimes. The context is valid during a hook only; do not keep it. The
 * strings returned by op_config, op_instance_id, op_org and
 * op_plugin_version are valid until the hook returns (copy what you keep).
 * The request and response are valid during on_event only. */
#ifndef OPENPLATFORM_PLUGIN_H
#define OPENPLATFORM_PLUGIN_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of struct op_plugin and of the hooks' meaning. */
#define OP_PLUGIN_ABI_VERSION 1

/* Version of the host's function table (struct op_host_api). */
#define OP_HOST_API_VERSION 1

/* Log levels: syslog priorities. */
typedef enum {
    OP_LOG_ERR = 3,
    OP_LOG_WARNING = 4,
    OP_LOG_NOTICE = 5,
    OP_LOG_INFO = 6,
    OP_LOG_DEBUG = 7,
} op_log_level_t;

/* The instance's context: opaque. Its first member is the host's function
 * table (struct op_host_api); use the op_* wrappers, never the table. */
typedef struct op_ctx op_ctx_t;

/* The response to an event: opaque, same layout rule as op_ctx_t. Starts
 * as status 200, no header, empty body. */
typedef struct op_response op_response_t;

/* One HTTP header of a request. */
typedef struct {
    const char *name;  /* as sent, e.g. "Content-Type" */
    const char *value;
} op_header_t;

/* An event for the instance: an HTTP invoke
 * (POST /api/v1/instances/<uuid>/invoke) as method, path, headers, body. */
typedef struct {
    const char *method;         /* "POST", "GET", ... */
    const char *path;           /* e.g. "/" or "/crash" */
    const op_header_t *headers; /* n_headers entries */
    size_t n_headers;
    const uint8_t *body;        /* body_len bytes, not NUL-terminated; NULL when empty */
    size_t body_len;
} op_request_t;

/* The host's function table. Grows only at the end; `size` tells how much
 * of it the running host provides. Plugins use the wrappers below. */
struct op_host_api {
    uint32_t size;    /* sizeof(struct op_host_api) as the host was built */
    uint32_t version; /* OP_HOST_API_VERSION the host was built with */
    /* One log line (newlines are replaced), tagged with the instance. */
    void (*log)(op_ctx_t *ctx, int level, const char *line);
    const char *(*config)(op_ctx_t *ctx);         /* JSON object text, "{}" if none */
    const char *(*instance_id)(op_ctx_t *ctx);    /* instance UUID */
    const char *(*org)(op_ctx_t *ctx);            /* organisation id */
    const char *(*plugin_version)(op_ctx_t *ctx); /* version the hook runs in */
    void *(*user_data)(op_ctx_t *ctx);
    void (*set_user_data)(op_ctx_t *ctx, void *data);
    int (*response_set_status)(op_response_t *resp, unsigned status);
    int (*response_set_body)(op_response_t *resp, const void *data, size_t len);
    int (*response_add_header)(op_response_t *resp, const char *name, const char *value);
    /* Later (not in OP_HOST_API_VERSION 1): the resources — the
     * instance's database, outbound HTTP, files under its own directory,
     * scheduled tasks, a web service — and ability registration. New
     * functions take these slots in order (a host that predates one leaves
     * it NULL, and its wrapper answers -ENOSYS), then grow the table past
     * them with a larger `size`; a higher `version` announces each step. */
    void *reserved[16];
};

/* The table pointer that starts every context and response. */
#define OP__API(obj) (*(const struct op_host_api *const *)(const void *)(obj))
/* Does the running host's table include `field`? */
#define OP_HOST_HAS(api, field)                                                               \
    ((api) && (api)->size >= offsetof(struct op_host_api, field) + sizeof((api)->field) &&   \
     (api)->field)

/* The descriptor a plugin exports. */
struct op_plugin {
    uint32_t abi_version; /* OP_PLUGIN_ABI_VERSION (set by OP_PLUGIN_DEFINE) */
    const char *name;     /* the package id, for messages */
    int (*install)(op_ctx_t *ctx);
    int (*uninstall)(op_ctx_t *ctx);
    int (*enable)(op_ctx_t *ctx);
    int (*disable)(op_ctx_t *ctx);
    int (*upgrade)(op_ctx_t *ctx, const char *from_version);
    int (*start)(op_ctx_t *ctx);
    int (*stop)(op_ctx_t *ctx);
    int (*on_event)(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp);
};

/* The symbol the host looks up. */
#define OP_PLUGIN_SYMBOL "op_plugin_descriptor_v1"

#if defined(__GNUC__)
#define OP__EXPORT __attribute__((visibility("default")))
#else
#define OP__EXPORT
#endif

/* Define and export the descriptor; the arguments are designated
 * initializers of struct op_plugin other than abi_version:
 *     OP_PLUGIN_DEFINE(.name = "hello", .start = my_start, .on_event = my_event);
 * Use it once per shared object, at file scope. */
#ifdef __cplusplus
#define OP_PLUGIN_DEFINE(...)                                                                 \
    extern "C" OP__EXPORT const struct op_plugin op_plugin_descriptor_v1 = {                 \
        .abi_version = OP_PLUGIN_ABI_VERSION, __VA_ARGS__}
#else
#define OP_PLUGIN_DEFINE(...)                                                                 \
    OP__EXPORT extern const struct op_plugin op_plugin_descriptor_v1;                        \
    OP__EXPORT const struct op_plugin op_plugin_descriptor_v1 = {                            \
        .abi_version = OP_PLUGIN_ABI_VERSION, __VA_ARGS__}
#endif

/* ---- context ----------------------------------------------------------- */

/* Log one line (at most 1023 bytes are kept). */
static inline void op_log(op_ctx_t *ctx, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static inline void op_log(op_ctx_t *ctx, int level, const char *fmt, ...)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    if (!OP_HOST_HAS(api, log))
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    api->log(ctx, level, line);
}

/* The instance's configuration: the text of a JSON object ("{}" if none). */
static inline const char *op_config(op_ctx_t *ctx)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    return OP_HOST_HAS(api, config) ? api->config(ctx) : "{}";
}

/* The instance's UUID. */
static inline const char *op_instance_id(op_ctx_t *ctx)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    return OP_HOST_HAS(api, instance_id) ? api->instance_id(ctx) : "";
}

/* The organisation the instance belongs to. */
static inline const char *op_org(op_ctx_t *ctx)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    return OP_HOST_HAS(api, org) ? api->org(ctx) : "";
}

/* The plugin version this hook runs in (in upgrade: the new one). */
static inline const char *op_plugin_version(op_ctx_t *ctx)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    return OP_HOST_HAS(api, plugin_version) ? api->plugin_version(ctx) : "";
}

/* A pointer the plugin keeps per instance, across hooks, for as long as the
 * instance lives in this host (it is lost when the host exits). NULL until
 * set. The host never frees it: release it in uninstall. */
static inline void *op_user_data(op_ctx_t *ctx)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    return OP_HOST_HAS(api, user_data) ? api->user_data(ctx) : NULL;
}

static inline void op_set_user_data(op_ctx_t *ctx, void *data)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    if (OP_HOST_HAS(api, set_user_data))
        api->set_user_data(ctx, data);
}

/* ---- response ---------------------------------------------------------- */

/* HTTP status, 100..599. 0 or -EINVAL. */
static inline int op_response_set_status(op_response_t *resp, unsigned status)
{
    const struct op_host_api *api = resp ? OP__API(resp) : NULL;
    return OP_HOST_HAS(api, response_set_status) ? api->response_set_status(resp, status)
                                                  : -ENOSYS;
}

/* Replace the body with a copy of `len` bytes. 0, -ENOMEM or -EMSGSIZE. */
static inline int op_response_set_body(op_response_t *resp, const void *data, size_t len)
{
    const struct op_host_api *api = resp ? OP__API(resp) : NULL;
    return OP_HOST_HAS(api, response_set_body) ? api->response_set_body(resp, data, len)
                                                : -ENOSYS;
}

/* Add a header (copied). 0, -EINVAL (empty name, CR/LF in name or value)
 * or -ENOMEM. */
static inline int op_response_add_header(op_response_t *resp, const char *name,
                                         const char *value)
{
    const struct op_host_api *api = resp ? OP__API(resp) : NULL;
    return OP_HOST_HAS(api, response_add_header) ? api->response_add_header(resp, name, value)
                                                  : -ENOSYS;
}

#ifdef __cplusplus
}
#endif

#endif
