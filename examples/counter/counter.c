/* counter: counts the invokes of each instance and answers {"count": N}.
 *
 * The count lives in the instance's own SQLite database (op_db_exec), so
 * it survives stop/start, host restarts and platform restarts, and goes
 * with the instance at uninstall (the platform removes its database). The
 * table is created in install and again (IF NOT EXISTS) in start, so an
 * instance installed by an older version works too.
 *
 *   invoke, any path but /peek   count one more, answer the new count
 *   invoke /peek                 answer the count without counting
 *
 * On a host without resources (host API < 2, or the plugin runner tested
 * alone, where op_db_exec answers -ENOSYS) the count is kept in memory, in
 * the instance's user data, for as long as the host process lives. That
 * pointer is the count itself (no allocation, nothing to free); it needs
 * no lock because the hooks of one instance never run concurrently. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openplatform/plugin.h>

static int create_table(op_ctx_t *ctx)
{
    int rc = op_db_exec(ctx,
                        "CREATE TABLE IF NOT EXISTS counter ("
                        " id INTEGER PRIMARY KEY CHECK (id = 1),"
                        " n INTEGER NOT NULL)",
                        NULL, 0, NULL);
    if (rc == 0)
        rc = op_db_exec(ctx, "INSERT OR IGNORE INTO counter (id, n) VALUES (1, 0)", NULL, 0,
                        NULL);
    if (rc == -ENOSYS)
        return 0; /* no database here: counting in memory */
    if (rc < 0)
        op_log(ctx, OP_LOG_ERR, "cannot create the counter table: %s", op_last_error(ctx));
    return rc;
}

/* The stored count into *n; -ENOSYS when there is no database. */
static int read_count(op_ctx_t *ctx, int64_t *n)
{
    op_db_result_t *res = NULL;
    int rc = op_db_exec(ctx, "SELECT n FROM counter WHERE id = 1", NULL, 0, &res);
    if (rc < 0)
        return rc;
    const op_db_value_t *v = op_db_cell(res, 0, 0);
    *n = v && v->type == OP_DB_INTEGER ? v->integer : 0;
    op_db_result_free(res);
    return 0;
}

static int counter_install(op_ctx_t *ctx) { return create_table(ctx); }

static int counter_start(op_ctx_t *ctx)
{
    int rc = create_table(ctx);
    if (rc < 0)
        return rc;
    int64_t n = 0;
    rc = read_count(ctx, &n);
    if (rc == -ENOSYS) {
        n = (int64_t)(uintptr_t)op_user_data(ctx);
        rc = 0;
    }
    if (rc < 0) {
        op_log(ctx, OP_LOG_ERR, "cannot read the count: %s", op_last_error(ctx));
        return rc;
    }
    op_log(ctx, OP_LOG_INFO, "started with count=%" PRId64, n);
    return 0;
}

static int counter_uninstall(op_ctx_t *ctx)
{
    op_set_user_data(ctx, NULL); /* the platform removes the database */
    return 0;
}

static int counter_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    bool peek = req->path && strcmp(req->path, "/peek") == 0;
    int64_t n = 0;
    int rc = peek ? 0
                  : op_db_exec(ctx, "UPDATE counter SET n = n + 1 WHERE id = 1", NULL, 0, NULL);
    if (rc == 0)
        rc = read_count(ctx, &n);
    if (rc == -ENOSYS) {
        /* No database in this host: count in memory. */
        n = (int64_t)(uintptr_t)op_user_data(ctx) + (peek ? 0 : 1);
        op_set_user_data(ctx, (void *)(uintptr_t)n);
        rc = 0;
    }
    if (rc < 0) {
        op_log(ctx, OP_LOG_ERR, "counter update failed: %s", op_last_error(ctx));
        return rc;
    }
    char text[64];
    int len = snprintf(text, sizeof text, "{\"count\":%" PRId64 "}", n);
    op_response_set_status(resp, 200);
    op_response_add_header(resp, "Content-Type", "application/json");
    return op_response_set_body(resp, text, (size_t)len);
}

OP_PLUGIN_DEFINE(.name = "counter", .install = counter_install, .uninstall = counter_uninstall,
                 .start = counter_start, .on_event = counter_event);
