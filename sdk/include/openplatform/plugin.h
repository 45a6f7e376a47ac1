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
 * ABI. The descriptor carries its abi_version. The host accepts every
 * version from 1 up to its own OP_PLUGIN_ABI_VERSION (version 1 has no
 * on_task, which the host then never reads) and refuses (error -EPROTO,
 * naming the versions) a newer one, and a shared object without the
 * descriptor symbol. The host's function table carries its own size and
 * version so it can grow without breaking plugins built against an older
 * header; the wrappers below return -ENOSYS (or a neutral value) when a
 * plugin built against a newer header runs on an older host.
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
 *   on_task    a scheduled task registered with op_task_register is due
 *              (ABI 2)
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
 * strings returned by op_config, op_instance_id, op_org,
 * op_plugin_version and op_last_error are valid until the hook returns
 * (copy what you keep). The request and response are valid during on_event
 * only. Results of resource calls (op_db_result_t, op_http_response_t,
 * op_file_list_t, op_file_read's data) are the plugin's: each is one
 * allocation, released with its op_*_free (or op_free) at any time.
 *
 * Resources and abilities (host API version 2). From a hook, a plugin
 * reaches the outside world only through the platform, which enforces the
 * manifest's permissions: its own SQLite database (op_db_exec), outbound
 * HTTP (op_http_request), files under its own directory (op_file_*),
 * scheduled tasks (op_task_register) and a web service (op_service_register).
 * Every call is synchronous: the hook's thread waits for the platform's
 * answer. Each returns 0 or a negative errno, and op_last_error(ctx) gives
 * the platform's message for it:
 *   -EACCES        denied by the manifest, the DB authorizer or the sandbox
 *   -ETIMEDOUT     statement time limit, HTTP timeout, or no answer
 *   -EFBIG         result, response or file over its cap (-EDQUOT: quota)
 *   -ECONNREFUSED / -EHOSTUNREACH   HTTP connect failed
 *   -EINVAL        bad request (SQL syntax, bad path, URL, method, cron)
 *   -ENOENT        no such file
 *   -ENOTCONN      the host has lost the platform for now
 *   -ECANCELED     the host is stopping
 *   -ENOSYS        this host offers no resources (an older host, or a
 *                  runner without a platform)
 * Calls are valid only on the hook's own thread, during the hook. */
#ifndef OPENPLATFORM_PLUGIN_H
#define OPENPLATFORM_PLUGIN_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of struct op_plugin and of the hooks' meaning.
 *   1  install .. on_event
 *   2  + on_task */
#define OP_PLUGIN_ABI_VERSION 2

/* Version of the host's function table (struct op_host_api).
 *   1  log, context, response
 *   2  + resources (db, http, file), abilities (task, service), last_error */
#define OP_HOST_API_VERSION 2

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

/* ---- resource types ---------------------------------------------------- */

/* A SQLite value: a bound parameter or a cell of a result. */
typedef enum {
    OP_DB_NULL = 0,
    OP_DB_INTEGER = 1,
    OP_DB_REAL = 2,
    OP_DB_TEXT = 3,
    OP_DB_BLOB = 4,
} op_db_type_t;

typedef struct {
    int type;          /* op_db_type_t */
    int64_t integer;   /* OP_DB_INTEGER */
    double real;       /* OP_DB_REAL */
    const void *data;  /* OP_DB_TEXT (UTF-8; NUL-terminated in results) / OP_DB_BLOB */
    size_t len;        /* bytes of data, without the NUL */
} op_db_value_t;

/* The rows of one statement. `values` holds n_rows * n_columns cells, row
 * after row (op_db_cell). One allocation: op_db_result_free. */
typedef struct {
    size_t n_columns;
    const char *const *columns;  /* column names */
    size_t n_rows;
    const op_db_value_t *values;
    int64_t changes;             /* rows changed by a write */
    int64_t last_insert_id;
} op_db_result_t;

/* An outbound HTTP response. `body` has a NUL after body_len bytes (not
 * counted) for convenience. One allocation: op_http_response_free. */
typedef struct {
    unsigned status;
    size_t n_headers;
    const op_header_t *headers;
    const uint8_t *body;
    size_t body_len;
} op_http_response_t;

/* One entry of a directory listing. */
typedef struct {
    const char *name;
    uint64_t size;
    int dir;           /* 1 for a directory */
} op_file_entry_t;

/* One allocation: op_file_list_free. */
typedef struct {
    size_t n_entries;
    const op_file_entry_t *entries;
} op_file_list_t;

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
    /* OP_HOST_API_VERSION 2: resources and abilities. These took the
     * first reserved slots, in order (a version-1 host has NULL there, and
     * the wrappers answer -ENOSYS). */
    int (*db_exec)(op_ctx_t *ctx, const char *sql, const op_db_value_t *params, size_t n_params,
                   op_db_result_t **out);
    int (*http_request)(op_ctx_t *ctx, const char *method, const char *url,
                        const op_header_t *headers, size_t n_headers, const void *body,
                        size_t body_len, op_http_response_t **out);
    int (*file_read)(op_ctx_t *ctx, const char *path, void **data, size_t *len);
    int (*file_write)(op_ctx_t *ctx, const char *path, const void *data, size_t len);
    int (*file_list)(op_ctx_t *ctx, const char *dir, op_file_list_t **out);
    int (*file_delete)(op_ctx_t *ctx, const char *path);
    int (*task_register)(op_ctx_t *ctx, const char *cron, const char *name);
    int (*task_unregister)(op_ctx_t *ctx, const char *name);
    int (*service_register)(op_ctx_t *ctx, unsigned port, const char *health_path);
    int (*service_unregister)(op_ctx_t *ctx);
    const char *(*last_error)(op_ctx_t *ctx);
    /* Later functions take these slots in order (a host that predates one
     * leaves it NULL, and its wrapper answers -ENOSYS), then grow the table
     * past them with a larger `size`; a higher `version` announces each
     * step. */
    void *reserved[5];
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
    /* ABI 2. A scheduled task registered with op_task_register is due:
     * `name` is the task's, `scheduled_unix_ms` the time it was due, and
     * `missed` is 1 when it fires late, once, for runs missed while the
     * platform was down. Runs like the other hooks (one at a time per
     * instance). NULL: the task's runs fail with -EOPNOTSUPP. */
    int (*on_task)(op_ctx_t *ctx, const char *name, int64_t scheduled_unix_ms, int missed);
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

/* ---- resources --------------------------------------------------------- */

/* Why the last resource or ability call of this hook failed: the
 * platform's message ("" when it succeeded). */
static inline const char *op_last_error(op_ctx_t *ctx)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    return OP_HOST_HAS(api, last_error) ? api->last_error(ctx)
                                        : "the host offers no resources (host API < 2)";
}

/* Release anything a resource call handed over (NULL-safe). */
static inline void op_free(void *p) { free(p); }

/* Parameters for op_db_exec. */
static inline op_db_value_t op_db_null(void)
{
    op_db_value_t v = {OP_DB_NULL, 0, 0.0, NULL, 0};
    return v;
}
static inline op_db_value_t op_db_int(int64_t i)
{
    op_db_value_t v = {OP_DB_INTEGER, i, 0.0, NULL, 0};
    return v;
}
static inline op_db_value_t op_db_real(double d)
{
    op_db_value_t v = {OP_DB_REAL, 0, d, NULL, 0};
    return v;
}
/* A NUL-terminated string (NULL binds SQL NULL). */
static inline op_db_value_t op_db_text(const char *s)
{
    op_db_value_t v = {s ? OP_DB_TEXT : OP_DB_NULL, 0, 0.0, s, 0};
    size_t n = 0;
    while (s && s[n])
        n++;
    v.len = n;
    return v;
}
static inline op_db_value_t op_db_blob(const void *data, size_t len)
{
    op_db_value_t v = {OP_DB_BLOB, 0, 0.0, data, len};
    return v;
}

/* Run one SQL statement with bound parameters (?1, ?2 ... in order) in the
 * instance's own SQLite database. `out` (may be NULL when the rows are not
 * wanted) gets the typed result: free it with op_db_result_free. ATTACH,
 * DETACH, load_extension and file pragmas are denied (-EACCES); a statement
 * over the platform's time limit is stopped (-ETIMEDOUT); a result over the
 * row/byte cap fails (-EFBIG); bad SQL is -EINVAL. */
static inline int op_db_exec(op_ctx_t *ctx, const char *sql, const op_db_value_t *params,
                             size_t n_params, op_db_result_t **out)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    if (out)
        *out = NULL;
    return OP_HOST_HAS(api, db_exec) ? api->db_exec(ctx, sql, params, n_params, out) : -ENOSYS;
}

static inline void op_db_result_free(op_db_result_t *res) { free(res); }

/* The cell at (row, col), or NULL out of range. */
static inline const op_db_value_t *op_db_cell(const op_db_result_t *res, size_t row, size_t col)
{
    if (!res || row >= res->n_rows || col >= res->n_columns)
        return NULL;
    return &res->values[row * res->n_columns + col];
}

/* An outbound HTTP request (GET, POST, PUT, DELETE, PATCH, HEAD) through
 * the platform, to a target the manifest's permissions.http allows (else
 * -EACCES; redirects are followed only to allowed targets). `out` gets the
 * response, whatever its status: free it with op_http_response_free.
 * Errors: -ETIMEDOUT, -EFBIG (response over the cap), -ECONNREFUSED /
 * -EHOSTUNREACH, -EINVAL (bad URL or method). */
static inline int op_http_request(op_ctx_t *ctx, const char *method, const char *url,
                                  const op_header_t *headers, size_t n_headers, const void *body,
                                  size_t body_len, op_http_response_t **out)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    if (out)
        *out = NULL;
    return OP_HOST_HAS(api, http_request)
               ? api->http_request(ctx, method, url, headers, n_headers, body, body_len, out)
               : -ENOSYS;
}

static inline void op_http_response_free(op_http_response_t *resp) { free(resp); }

/* Files under the instance's own directory; `path` is relative to it
 * (absolute paths, "..", and symlinks leading out are refused: -EACCES or
 * -EINVAL). op_file_read: *data gets the content plus a NUL (not counted
 * in *len); free it with op_free. op_file_write creates or replaces the
 * file (-EFBIG over the per-file cap, -EDQUOT over the instance's quota).
 * op_file_list lists a directory ("" = the root); free with
 * op_file_list_free. op_file_delete removes a file or an empty directory.
 * A missing file is -ENOENT. */
static inline int op_file_read(op_ctx_t *ctx, const char *path, void **data, size_t *len)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    if (data)
        *data = NULL;
    if (len)
        *len = 0;
    return OP_HOST_HAS(api, file_read) ? api->file_read(ctx, path, data, len) : -ENOSYS;
}

static inline int op_file_write(op_ctx_t *ctx, const char *path, const void *data, size_t len)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    return OP_HOST_HAS(api, file_write) ? api->file_write(ctx, path, data, len) : -ENOSYS;
}

static inline int op_file_list(op_ctx_t *ctx, const char *dir, op_file_list_t **out)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    if (out)
        *out = NULL;
    return OP_HOST_HAS(api, file_list) ? api->file_list(ctx, dir, out) : -ENOSYS;
}

static inline void op_file_list_free(op_file_list_t *list) { free(list); }

static inline int op_file_delete(op_ctx_t *ctx, const char *path)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    return OP_HOST_HAS(api, file_delete) ? api->file_delete(ctx, path) : -ENOSYS;
}

/* ---- abilities --------------------------------------------------------- */

/* Register (or replace) the scheduled task `name`: a standard 5-field cron
 * expression (minute hour day-of-month month day-of-week, e.g. "0 * * * *"
 * hourly, "30 6 * * 1-5" at 06:30 on weekdays). The
 * platform calls on_task when it is due, starting a host for the instance
 * if its mode needs one; the registration persists across restarts.
 * -EINVAL for a bad expression. */
static inline int op_task_register(op_ctx_t *ctx, const char *cron, const char *name)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    return OP_HOST_HAS(api, task_register) ? api->task_register(ctx, cron, name) : -ENOSYS;
}

/* Remove the task `name` (-ENOENT if there is none). */
static inline int op_task_unregister(op_ctx_t *ctx, const char *name)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    return OP_HOST_HAS(api, task_unregister) ? api->task_unregister(ctx, name) : -ENOSYS;
}

/* Register the instance's web service: an HTTP server the plugin runs on
 * 127.0.0.1:`port`. The platform proxies /plugins/<uuid>/svc/... to it and
 * checks `health_path` (e.g. "/health") on an interval, answering 503
 * while it is unhealthy. Registering again replaces it. */
static inline int op_service_register(op_ctx_t *ctx, unsigned port, const char *health_path)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    return OP_HOST_HAS(api, service_register) ? api->service_register(ctx, port, health_path)
                                               : -ENOSYS;
}

static inline int op_service_unregister(op_ctx_t *ctx)
{
    const struct op_host_api *api = ctx ? OP__API(ctx) : NULL;
    return OP_HOST_HAS(api, service_unregister) ? api->service_unregister(ctx) : -ENOSYS;
}

#ifdef __cplusplus
}
#endif

#endif
