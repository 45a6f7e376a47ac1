/* resprobe: a test plugin that exposes the DB and File resources through
 * invoke, so test_it_resources drives them from the HTTP API. The invoke's
 * path picks the call, its body (JSON) gives the arguments, and the answer
 * is always 200 with JSON: {"rc": 0, ...results} or {"rc": -errno,
 * "message": op_last_error}.
 *
 *   /db    {"sql": "...", "params": [null, 1, 2.5, "text", {"hex": "00ff"}]}
 *          -> {"rc":0, "columns":[...], "rows":[[...]], "changes":N,
 *              "last_insert_id":N}; cells typed the same way (blob: {"hex"})
 *   /file  {"op": "read"|"write"|"list"|"delete", "path": "...", "data": "..."}
 *          -> read {"rc":0,"data":"..."}; list {"rc":0,"entries":[{"name",
 *             "size","dir"}]}
 *   /host  {"rc":0, "pid": N} — which process ran the hook */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openplatform/plugin.h>

static json_t *hex_of(const uint8_t *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        snprintf(s + 2 * i, 3, "%02x", p[i]);
    s[2 * n] = '\0';
    json_t *j = json_pack("{s:s}", "hex", s);
    free(s);
    return j;
}

/* Decoded hex into buf (caller frees); -1 on a bad string. */
static long unhex(const char *s, uint8_t **buf)
{
    size_t n = strlen(s);
    if (n % 2)
        return -1;
    *buf = malloc(n / 2 + 1);
    if (!*buf)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) {
            free(*buf);
            return -1;
        }
        (*buf)[i] = (uint8_t)v;
    }
    return (long)(n / 2);
}

static json_t *failure(op_ctx_t *ctx, int rc)
{
    return json_pack("{s:i, s:s}", "rc", rc, "message", op_last_error(ctx));
}

static json_t *do_db(op_ctx_t *ctx, json_t *args)
{
    const char *sql = json_string_value(json_object_get(args, "sql"));
    json_t *jp = json_object_get(args, "params");
    size_t n = json_array_size(jp);
    op_db_value_t *params = n ? calloc(n, sizeof *params) : NULL;
    uint8_t **blobs = n ? calloc(n, sizeof *blobs) : NULL;
    if (n && (!params || !blobs)) {
        free(params);
        free(blobs);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(jp, i);
        if (json_is_integer(v)) {
            params[i] = op_db_int(json_integer_value(v));
        } else if (json_is_real(v)) {
            params[i] = op_db_real(json_real_value(v));
        } else if (json_is_string(v)) {
            params[i] = op_db_text(json_string_value(v));
        } else if (json_is_object(v)) {
            long len = unhex(json_string_value(json_object_get(v, "hex")) ?: "", &blobs[i]);
            params[i] = len < 0 ? op_db_null() : op_db_blob(blobs[i], (size_t)len);
        } else {
            params[i] = op_db_null();
        }
    }
    op_db_result_t *res = NULL;
    int rc = op_db_exec(ctx, sql, params, n, &res);
    for (size_t i = 0; i < n; i++)
        free(blobs[i]);
    free(blobs);
    free(params);
    if (rc < 0)
        return failure(ctx, rc);
    json_t *cols = json_array(), *rows = json_array();
    for (size_t c = 0; c < res->n_columns; c++)
        json_array_append_new(cols, json_string(res->columns[c]));
    for (size_t r = 0; r < res->n_rows; r++) {
        json_t *row = json_array();
        for (size_t c = 0; c < res->n_columns; c++) {
            const op_db_value_t *v = op_db_cell(res, r, c);
            json_t *cell = NULL;
            switch (v->type) {
            case OP_DB_INTEGER:
                cell = json_integer(v->integer);
                break;
            case OP_DB_REAL:
                cell = json_real(v->real);
                break;
            case OP_DB_TEXT:
                cell = json_stringn(v->data, v->len);
                break;
            case OP_DB_BLOB:
                cell = hex_of(v->data, v->len);
                break;
            default:
                cell = json_null();
                break;
            }
            json_array_append_new(row, cell);
        }
        json_array_append_new(rows, row);
    }
    json_t *out = json_pack("{s:i, s:o, s:o, s:I, s:I}", "rc", 0, "columns", cols, "rows", rows,
                            "changes", (json_int_t)res->changes, "last_insert_id",
                            (json_int_t)res->last_insert_id);
    op_db_result_free(res);
    return out;
}

static json_t *do_file(op_ctx_t *ctx, json_t *args)
{
    const char *op = json_string_value(json_object_get(args, "op"));
    const char *path = json_string_value(json_object_get(args, "path"));
    if (!op || !path)
        return json_pack("{s:i, s:s}", "rc", -EINVAL, "message", "op and path required");
    if (strcmp(op, "read") == 0) {
        void *data = NULL;
        size_t len = 0;
        int rc = op_file_read(ctx, path, &data, &len);
        if (rc < 0)
            return failure(ctx, rc);
        json_t *out = json_pack("{s:i, s:s%}", "rc", 0, "data", (const char *)data, len);
        op_free(data);
        return out;
    }
    if (strcmp(op, "write") == 0) {
        const char *data = json_string_value(json_object_get(args, "data"));
        size_t len = data ? strlen(data) : 0;
        json_t *size = json_object_get(args, "size"); /* a file of `size` 'x' bytes */
        char *big = NULL;
        if (json_is_integer(size)) {
            len = (size_t)json_integer_value(size);
            if (!(big = malloc(len ? len : 1)))
                return NULL;
            memset(big, 'x', len);
            data = big;
        }
        int rc = op_file_write(ctx, path, data, len);
        free(big);
        return rc < 0 ? failure(ctx, rc) : json_pack("{s:i}", "rc", 0);
    }
    if (strcmp(op, "list") == 0) {
        op_file_list_t *l = NULL;
        int rc = op_file_list(ctx, path, &l);
        if (rc < 0)
            return failure(ctx, rc);
        json_t *entries = json_array();
        for (size_t i = 0; i < l->n_entries; i++)
            json_array_append_new(entries, json_pack("{s:s, s:I, s:b}", "name", l->entries[i].name,
                                                     "size", (json_int_t)l->entries[i].size,
                                                     "dir", l->entries[i].dir));
        op_file_list_free(l);
        return json_pack("{s:i, s:o}", "rc", 0, "entries", entries);
    }
    if (strcmp(op, "delete") == 0) {
        int rc = op_file_delete(ctx, path);
        return rc < 0 ? failure(ctx, rc) : json_pack("{s:i}", "rc", 0);
    }
    return json_pack("{s:i, s:s}", "rc", -EINVAL, "message", "unknown op");
}

static int probe_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    json_t *args = req->body_len ? json_loadb((const char *)req->body, req->body_len, 0, NULL)
                                 : json_object();
    json_t *out = NULL;
    if (!args)
        out = json_pack("{s:i, s:s}", "rc", -EINVAL, "message", "body is not JSON");
    else if (strcmp(req->path, "/db") == 0)
        out = do_db(ctx, args);
    else if (strcmp(req->path, "/file") == 0)
        out = do_file(ctx, args);
    else if (strcmp(req->path, "/host") == 0)
        out = json_pack("{s:i, s:i}", "rc", 0, "pid", (int)getpid());
    else
        out = json_pack("{s:i, s:s}", "rc", -ENOENT, "message", "unknown path");
    json_decref(args);
    char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
    json_decref(out);
    if (!text)
        return -ENOMEM;
    op_response_add_header(resp, "Content-Type", "application/json");
    int rc = op_response_set_body(resp, text, strlen(text));
    free(text);
    return rc;
}

OP_PLUGIN_DEFINE(.name = "resprobe", .on_event = probe_event);
