/* ticker: a scheduled task that counts its runs.
 *
 * start registers the task "tick" with the config's "cron" (default
 * "* * * * *", every minute; the platform also takes a six-field form with
 * a leading seconds field, e.g. "*\/2 * * * * *" every two seconds). The
 * registration persists on the platform; registering again at every start
 * just replaces it. Each run (on_task) records one row in the instance's
 * database — the time it was due, and whether it fired late for a run
 * missed while the platform was down.
 *
 *   invoke  {"runs": N, "missed": M, "last_scheduled_ms": T}
 *
 * The task keeps firing only while the instance runs; uninstall removes
 * the registration and the database. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openplatform/plugin.h>

#define TASK_NAME "tick"

static int create_table(op_ctx_t *ctx)
{
    int rc = op_db_exec(ctx,
                        "CREATE TABLE IF NOT EXISTS runs ("
                        " id INTEGER PRIMARY KEY,"
                        " scheduled_ms INTEGER NOT NULL,"
                        " missed INTEGER NOT NULL,"
                        " ran_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))",
                        NULL, 0, NULL);
    if (rc < 0)
        op_log(ctx, OP_LOG_ERR, "cannot create the runs table: %s", op_last_error(ctx));
    return rc;
}

static int ticker_install(op_ctx_t *ctx) { return create_table(ctx); }

static int ticker_start(op_ctx_t *ctx)
{
    int rc = create_table(ctx);
    if (rc < 0)
        return rc;
    json_t *cfg = json_loads(op_config(ctx), 0, NULL);
    const char *c = json_string_value(json_object_get(cfg, "cron"));
    char cron[256];
    snprintf(cron, sizeof cron, "%s", c && c[0] ? c : "* * * * *");
    json_decref(cfg);
    rc = op_task_register(ctx, cron, TASK_NAME);
    if (rc < 0) {
        op_log(ctx, OP_LOG_ERR, "cannot register task %s (%s): %s", TASK_NAME, cron,
               op_last_error(ctx));
        return rc;
    }
    op_log(ctx, OP_LOG_INFO, "task %s registered: %s", TASK_NAME, cron);
    return 0;
}

static int ticker_task(op_ctx_t *ctx, const char *name, int64_t scheduled_unix_ms, int missed)
{
    if (strcmp(name, TASK_NAME) != 0) {
        op_log(ctx, OP_LOG_WARNING, "unknown task %s", name);
        return -ENOENT;
    }
    op_db_value_t params[] = {op_db_int(scheduled_unix_ms), op_db_int(missed ? 1 : 0)};
    int rc = op_db_exec(ctx, "INSERT INTO runs (scheduled_ms, missed) VALUES (?1, ?2)", params,
                        2, NULL);
    if (rc < 0)
        op_log(ctx, OP_LOG_ERR, "cannot record the run: %s", op_last_error(ctx));
    else
        op_log(ctx, OP_LOG_DEBUG, "tick scheduled_ms=%" PRId64 " missed=%d", scheduled_unix_ms,
               missed);
    return rc;
}

static int ticker_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    (void)req;
    op_db_result_t *res = NULL;
    int rc = op_db_exec(ctx,
                        "SELECT count(*), coalesce(sum(missed), 0), coalesce(max(scheduled_ms), 0)"
                        " FROM runs",
                        NULL, 0, &res);
    if (rc < 0) {
        op_log(ctx, OP_LOG_ERR, "cannot count the runs: %s", op_last_error(ctx));
        return rc;
    }
    int64_t v[3] = {0, 0, 0};
    for (size_t i = 0; i < 3; i++) {
        const op_db_value_t *cell = op_db_cell(res, 0, i);
        if (cell && cell->type == OP_DB_INTEGER)
            v[i] = cell->integer;
    }
    op_db_result_free(res);
    char text[128];
    int len = snprintf(text, sizeof text,
                       "{\"runs\":%" PRId64 ",\"missed\":%" PRId64 ",\"last_scheduled_ms\":%" PRId64
                       "}",
                       v[0], v[1], v[2]);
    op_response_add_header(resp, "Content-Type", "application/json");
    return op_response_set_body(resp, text, (size_t)len);
}

OP_PLUGIN_DEFINE(.name = "ticker", .install = ticker_install, .start = ticker_start,
                 .on_task = ticker_task, .on_event = ticker_event);
