/* Resource and ability calls: SDK types <-> Resource / Ability messages. */
#include "resources.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest request payload a plugin may hand over (SQL + params, HTTP body,
 * file data): what fits one bus message with room for the envelope. */
#define MAX_PAYLOAD (PLAT_MAX_MSG_SIZE_DEFAULT - 64u * 1024u)

#define NEW(type, init)                                                                        \
    __extension__({                                                                            \
        type *p_ = malloc(sizeof(type));                                                       \
        if (p_)                                                                                \
            init(p_);                                                                          \
        p_;                                                                                    \
    })

static int set_err(const ph_res_call_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_err(const ph_res_call_t *c, int code, const char *fmt, ...)
{
    if (c->err && c->err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->err_size, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int begin(const ph_res_call_t *c)
{
    if (c->err && c->err_size)
        c->err[0] = '\0';
    if (!c->pc)
        return set_err(c, -ENOSYS, "this plugin host offers no resources (no platform link)");
    return 0;
}

/* A string field copy of `len` bytes (NUL-terminated); NULL on OOM. */
static char *dup_n(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d) {
        if (len)
            memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static bool dup_bytes(ProtobufCBinaryData *b, const void *data, size_t len)
{
    b->len = 0;
    b->data = NULL;
    if (!len)
        return true;
    if (!(b->data = malloc(len)))
        return false;
    memcpy(b->data, data, len);
    b->len = len;
    return true;
}

/* ---- requests ------------------------------------------------------------ */

static Plat__PlatformMessage *resource_request(const char *instance, Plat__ResourceKind kind,
                                               Plat__ResourceRequest **out)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE);
    Plat__ResourceRequest *r = m ? NEW(Plat__ResourceRequest, plat__resource_request__init) : NULL;
    if (!r) {
        plat_envelope_free(&m);
        return NULL;
    }
    m->resource->body_case = PLAT__RESOURCE_MESSAGE__BODY_REQUEST;
    m->resource->request = r;
    r->kind = kind;
    if (!(r->instance = plat_msg_strdup(instance))) {
        r->instance = (char *)protobuf_c_empty_string;
        plat_envelope_free(&m);
        return NULL;
    }
    *out = r;
    return m;
}

static Plat__PlatformMessage *ability_message(void)
{
    return plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY);
}

/* Send and take the ResourceResponse out of the REPLY (*reply keeps it
 * alive; the caller frees it). */
static int resource_call(const ph_res_call_t *c, Plat__PlatformMessage **req,
                         Plat__PlatformMessage **reply, Plat__ResourceResponse__ResultCase want,
                         const Plat__ResourceResponse **out)
{
    int rc = ph_platcall_call(c->pc, req, reply, c->err, c->err_size);
    if (rc < 0)
        return rc;
    const Plat__PlatformMessage *m = *reply;
    if (m->channel_case != PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE ||
        m->resource->body_case != PLAT__RESOURCE_MESSAGE__BODY_RESPONSE)
        return set_err(c, -EPROTO, "the platform answered with a %s message, not a resource "
                                   "response",
                       plat_channel_name(m->channel_case));
    const Plat__ResourceResponse *r = m->resource->response;
    if (r->error && r->error->code != 0)
        return set_err(c, r->error->code < 0 ? r->error->code : -EIO, "%s%s%s",
                       r->error->message[0] ? r->error->message : strerror(-r->error->code),
                       r->error->detail[0] ? ": " : "", r->error->detail);
    if (want != PLAT__RESOURCE_RESPONSE__RESULT__NOT_SET && r->result_case != want)
        return set_err(c, -EPROTO, "the platform's resource response carries no result");
    *out = r;
    return 0;
}

static int ability_call(const ph_res_call_t *c, Plat__PlatformMessage **req)
{
    Plat__PlatformMessage *reply = NULL;
    int rc = ph_platcall_call(c->pc, req, &reply, c->err, c->err_size);
    if (rc < 0)
        return rc;
    if (reply->channel_case != PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY ||
        reply->ability->body_case != PLAT__ABILITY_MESSAGE__BODY_RESULT)
        rc = set_err(c, -EPROTO, "the platform answered with a %s message, not an ability "
                                 "result",
                     plat_channel_name(reply->channel_case));
    else if (reply->ability->result->error && reply->ability->result->error->code != 0) {
        const Plat__ErrorMessage *e = reply->ability->result->error;
        rc = set_err(c, e->code < 0 ? e->code : -EIO, "%s%s%s",
                     e->message[0] ? e->message : strerror(-e->code), e->detail[0] ? ": " : "",
                     e->detail);
    }
    plat_envelope_free(&reply);
    return rc;
}

/* ---- DB -------------------------------------------------------------------- */

static Plat__DbValue *db_value(const op_db_value_t *v)
{
    Plat__DbValue *d = NEW(Plat__DbValue, plat__db_value__init);
    if (!d)
        return NULL;
    switch (v->type) {
    case OP_DB_INTEGER:
        d->value_case = PLAT__DB_VALUE__VALUE_INTEGER;
        d->integer = v->integer;
        break;
    case OP_DB_REAL:
        d->value_case = PLAT__DB_VALUE__VALUE_REAL;
        d->real = v->real;
        break;
    case OP_DB_TEXT:
        if (!(d->text = dup_n(v->data ? v->data : "", v->data ? v->len : 0))) {
            free(d);
            return NULL;
        }
        d->value_case = PLAT__DB_VALUE__VALUE_TEXT;
        break;
    case OP_DB_BLOB:
        if (!dup_bytes(&d->blob, v->data, v->data ? v->len : 0)) {
            free(d);
            return NULL;
        }
        d->value_case = PLAT__DB_VALUE__VALUE_BLOB;
        break;
    default: /* OP_DB_NULL (checked by the caller) */
        d->value_case = PLAT__DB_VALUE__VALUE_NULL;
        d->null = 1;
        break;
    }
    return d;
}

/* Bytes a cell needs in the result block after the value array. */
static size_t cell_bytes(const Plat__DbValue *v)
{
    if (!v)
        return 0;
    if (v->value_case == PLAT__DB_VALUE__VALUE_TEXT)
        return strlen(v->text) + 1;
    if (v->value_case == PLAT__DB_VALUE__VALUE_BLOB)
        return v->blob.len + 1;
    return 0;
}

/* The result as one block: header, column pointers, cells, then bytes. */
static int db_result(const ph_res_call_t *c, const Plat__DbExecResult *r, op_db_result_t **out)
{
    size_t ncol = r->n_columns;
    for (size_t i = 0; i < r->n_rows; i++)
        if (r->rows[i]->n_values > ncol)
            ncol = r->rows[i]->n_values;
    size_t nrow = r->n_rows;
    if (ncol && nrow > SIZE_MAX / sizeof(op_db_value_t) / ncol)
        return set_err(c, -EFBIG, "result too large");
    size_t size = sizeof(op_db_result_t) + ncol * sizeof(char *) +
                  nrow * ncol * sizeof(op_db_value_t);
    for (size_t i = 0; i < ncol; i++)
        size += (i < r->n_columns ? strlen(r->columns[i]) : 0) + 1;
    for (size_t i = 0; i < nrow; i++)
        for (size_t j = 0; j < r->rows[i]->n_values; j++)
            size += cell_bytes(r->rows[i]->values[j]);
    uint8_t *block = calloc(1, size);
    if (!block)
        return set_err(c, -ENOMEM, "out of memory for a result of %zu bytes", size);
    op_db_result_t *res = (op_db_result_t *)block;
    const char **cols = (const char **)(block + sizeof *res);
    op_db_value_t *vals = (op_db_value_t *)(block + sizeof *res + ncol * sizeof(char *));
    char *bytes = (char *)(vals + nrow * ncol);
    for (size_t i = 0; i < ncol; i++) {
        const char *name = i < r->n_columns ? r->columns[i] : "";
        size_t n = strlen(name) + 1;
        memcpy(bytes, name, n);
        cols[i] = bytes;
        bytes += n;
    }
    for (size_t i = 0; i < nrow; i++) {
        const Plat__DbRow *row = r->rows[i];
        for (size_t j = 0; j < ncol; j++) {
            op_db_value_t *dst = &vals[i * ncol + j];
            const Plat__DbValue *v = j < row->n_values ? row->values[j] : NULL;
            dst->type = OP_DB_NULL;
            if (!v)
                continue;
            switch (v->value_case) {
            case PLAT__DB_VALUE__VALUE_INTEGER:
                dst->type = OP_DB_INTEGER;
                dst->integer = v->integer;
                break;
            case PLAT__DB_VALUE__VALUE_REAL:
                dst->type = OP_DB_REAL;
                dst->real = v->real;
                break;
            case PLAT__DB_VALUE__VALUE_TEXT:
                dst->type = OP_DB_TEXT;
                dst->len = strlen(v->text);
                memcpy(bytes, v->text, dst->len + 1);
                dst->data = bytes;
                bytes += dst->len + 1;
                break;
            case PLAT__DB_VALUE__VALUE_BLOB:
                dst->type = OP_DB_BLOB;
                dst->len = v->blob.len;
                if (v->blob.len)
                    memcpy(bytes, v->blob.data, v->blob.len);
                bytes[v->blob.len] = '\0';
                dst->data = bytes;
                bytes += v->blob.len + 1;
                break;
            default:
                break;
            }
        }
    }
    res->n_columns = ncol;
    res->columns = cols;
    res->n_rows = nrow;
    res->values = vals;
    res->changes = r->changes;
    res->last_insert_id = r->last_insert_id;
    *out = res;
    return 0;
}

int ph_res_db_exec(const ph_res_call_t *c, const char *sql, const op_db_value_t *params,
                   size_t n_params, op_db_result_t **out)
{
    int rc = begin(c);
    if (rc < 0)
        return rc;
    if (!sql || !sql[0])
        return set_err(c, -EINVAL, "no SQL statement");
    if (n_params && !params)
        return set_err(c, -EINVAL, "%zu parameters but no array", n_params);
    size_t total = strlen(sql);
    for (size_t i = 0; i < n_params; i++) {
        const op_db_value_t *v = &params[i];
        if (v->type < OP_DB_NULL || v->type > OP_DB_BLOB)
            return set_err(c, -EINVAL, "parameter %zu has an unknown type %d", i + 1, v->type);
        if ((v->type == OP_DB_TEXT || v->type == OP_DB_BLOB) && v->len && !v->data)
            return set_err(c, -EINVAL, "parameter %zu has a length but no data", i + 1);
        if (v->type == OP_DB_TEXT && v->len && memchr(v->data, '\0', v->len))
            return set_err(c, -EINVAL, "parameter %zu: text holds a NUL byte (bind a blob)",
                           i + 1);
        if (v->type == OP_DB_TEXT || v->type == OP_DB_BLOB)
            total += v->len;
    }
    if (total > MAX_PAYLOAD)
        return set_err(c, -EFBIG, "statement and parameters over %u bytes", MAX_PAYLOAD);
    Plat__ResourceRequest *r = NULL;
    Plat__PlatformMessage *m = resource_request(c->instance, PLAT__RESOURCE_KIND__RESOURCE_KIND_DB,
                                                &r);
    Plat__DbExecRequest *d = m ? NEW(Plat__DbExecRequest, plat__db_exec_request__init) : NULL;
    if (d) {
        r->op_case = PLAT__RESOURCE_REQUEST__OP_DB;
        r->db = d;
        char *s = strdup(sql);
        if (s)
            d->sql = s;
        d->params = n_params ? calloc(n_params, sizeof *d->params) : NULL;
        bool ok = s && (!n_params || d->params);
        for (size_t i = 0; ok && i < n_params; i++) {
            if (!(d->params[i] = db_value(&params[i])))
                ok = false;
            else
                d->n_params++;
        }
        if (!ok)
            d = NULL;
    }
    if (!d) {
        plat_envelope_free(&m);
        return set_err(c, -ENOMEM, "out of memory");
    }
    Plat__PlatformMessage *reply = NULL;
    const Plat__ResourceResponse *resp = NULL;
    rc = resource_call(c, &m, &reply, PLAT__RESOURCE_RESPONSE__RESULT_DB, &resp);
    if (rc == 0 && out)
        rc = db_result(c, resp->db, out);
    plat_envelope_free(&reply);
    return rc;
}

/* ---- HTTP ---------------------------------------------------------------- */

static int http_response(const ph_res_call_t *c, const Plat__HttpResponse *h,
                         op_http_response_t **out)
{
    size_t size = sizeof(op_http_response_t) + h->n_headers * sizeof(op_header_t);
    for (size_t i = 0; i < h->n_headers; i++)
        size += strlen(h->headers[i]->name) + strlen(h->headers[i]->value) + 2;
    size += h->body.len + 1;
    uint8_t *block = calloc(1, size);
    if (!block)
        return set_err(c, -ENOMEM, "out of memory for a response of %zu bytes", size);
    op_http_response_t *res = (op_http_response_t *)block;
    op_header_t *hs = (op_header_t *)(block + sizeof *res);
    char *bytes = (char *)(hs + h->n_headers);
    for (size_t i = 0; i < h->n_headers; i++) {
        size_t n = strlen(h->headers[i]->name) + 1;
        memcpy(bytes, h->headers[i]->name, n);
        hs[i].name = bytes;
        bytes += n;
        n = strlen(h->headers[i]->value) + 1;
        memcpy(bytes, h->headers[i]->value, n);
        hs[i].value = bytes;
        bytes += n;
    }
    if (h->body.len)
        memcpy(bytes, h->body.data, h->body.len);
    bytes[h->body.len] = '\0';
    res->status = h->status;
    res->n_headers = h->n_headers;
    res->headers = hs;
    res->body = (const uint8_t *)bytes;
    res->body_len = h->body.len;
    *out = res;
    return 0;
}

int ph_res_http_request(const ph_res_call_t *c, const char *method, const char *url,
                        const op_header_t *headers, size_t n_headers, const void *body,
                        size_t body_len, op_http_response_t **out)
{
    int rc = begin(c);
    if (rc < 0)
        return rc;
    if (!url || !url[0])
        return set_err(c, -EINVAL, "no URL");
    if (n_headers && !headers)
        return set_err(c, -EINVAL, "%zu headers but no array", n_headers);
    if (body_len && !body)
        return set_err(c, -EINVAL, "a body length but no body");
    if (body_len > MAX_PAYLOAD)
        return set_err(c, -EFBIG, "request body over %u bytes", MAX_PAYLOAD);
    for (size_t i = 0; i < n_headers; i++)
        if (!headers[i].name || !headers[i].name[0])
            return set_err(c, -EINVAL, "header %zu has no name", i + 1);
    Plat__ResourceRequest *r = NULL;
    Plat__PlatformMessage *m =
        resource_request(c->instance, PLAT__RESOURCE_KIND__RESOURCE_KIND_HTTP, &r);
    Plat__HttpRequest *h = m ? NEW(Plat__HttpRequest, plat__http_request__init) : NULL;
    if (h) {
        r->op_case = PLAT__RESOURCE_REQUEST__OP_HTTP;
        r->http = h;
        char *meth = strdup(method && method[0] ? method : "GET"), *u = strdup(url);
        if (meth)
            h->method = meth;
        if (u)
            h->url = u;
        bool ok = meth && u && dup_bytes(&h->body, body, body_len);
        if (ok && n_headers && !(h->headers = calloc(n_headers, sizeof *h->headers)))
            ok = false;
        for (size_t i = 0; ok && i < n_headers; i++) {
            Plat__HttpHeader *hh = NEW(Plat__HttpHeader, plat__http_header__init);
            if (!hh) {
                ok = false;
                break;
            }
            h->headers[h->n_headers++] = hh;
            char *n = strdup(headers[i].name), *v = strdup(headers[i].value ? headers[i].value : "");
            if (n)
                hh->name = n;
            if (v)
                hh->value = v;
            ok = n && v;
        }
        if (!ok)
            h = NULL;
    }
    if (!h) {
        plat_envelope_free(&m);
        return set_err(c, -ENOMEM, "out of memory");
    }
    Plat__PlatformMessage *reply = NULL;
    const Plat__ResourceResponse *resp = NULL;
    rc = resource_call(c, &m, &reply, PLAT__RESOURCE_RESPONSE__RESULT_HTTP, &resp);
    if (rc == 0 && out)
        rc = http_response(c, resp->http, out);
    plat_envelope_free(&reply);
    return rc;
}

/* ---- File ---------------------------------------------------------------- */

static int file_call(const ph_res_call_t *c, Plat__FileOp op, const char *path, const void *data,
                     size_t len, Plat__PlatformMessage **reply, const Plat__FileResult **out)
{
    if (!path)
        return set_err(c, -EINVAL, "no path");
    if (len && !data)
        return set_err(c, -EINVAL, "a length but no data");
    if (len > MAX_PAYLOAD)
        return set_err(c, -EFBIG, "file data over %u bytes", MAX_PAYLOAD);
    Plat__ResourceRequest *r = NULL;
    Plat__PlatformMessage *m =
        resource_request(c->instance, PLAT__RESOURCE_KIND__RESOURCE_KIND_FILE, &r);
    Plat__FileRequest *f = m ? NEW(Plat__FileRequest, plat__file_request__init) : NULL;
    if (f) {
        r->op_case = PLAT__RESOURCE_REQUEST__OP_FILE;
        r->file = f;
        f->op = op;
        char *p = strdup(path);
        if (p)
            f->path = p;
        if (!p || !dup_bytes(&f->data, data, len))
            f = NULL;
    }
    if (!f) {
        plat_envelope_free(&m);
        return set_err(c, -ENOMEM, "out of memory");
    }
    const Plat__ResourceResponse *resp = NULL;
    int rc = resource_call(c, &m, reply, PLAT__RESOURCE_RESPONSE__RESULT__NOT_SET, &resp);
    if (rc < 0)
        return rc;
    static const Plat__FileResult empty = PLAT__FILE_RESULT__INIT;
    *out = resp->result_case == PLAT__RESOURCE_RESPONSE__RESULT_FILE ? resp->file : &empty;
    return 0;
}

int ph_res_file_read(const ph_res_call_t *c, const char *path, void **data, size_t *len)
{
    int rc = begin(c);
    if (rc < 0)
        return rc;
    if (!data)
        return set_err(c, -EINVAL, "nowhere to put the data");
    Plat__PlatformMessage *reply = NULL;
    const Plat__FileResult *f = NULL;
    rc = file_call(c, PLAT__FILE_OP__FILE_OP_READ, path, NULL, 0, &reply, &f);
    if (rc == 0) {
        uint8_t *d = malloc(f->data.len + 1);
        if (!d) {
            rc = set_err(c, -ENOMEM, "out of memory for %zu bytes", f->data.len);
        } else {
            if (f->data.len)
                memcpy(d, f->data.data, f->data.len);
            d[f->data.len] = '\0';
            *data = d;
            if (len)
                *len = f->data.len;
        }
    }
    plat_envelope_free(&reply);
    return rc;
}

int ph_res_file_write(const ph_res_call_t *c, const char *path, const void *data, size_t len)
{
    int rc = begin(c);
    if (rc < 0)
        return rc;
    Plat__PlatformMessage *reply = NULL;
    const Plat__FileResult *f = NULL;
    rc = file_call(c, PLAT__FILE_OP__FILE_OP_WRITE, path, data, len, &reply, &f);
    plat_envelope_free(&reply);
    return rc;
}

int ph_res_file_list(const ph_res_call_t *c, const char *dir, op_file_list_t **out)
{
    int rc = begin(c);
    if (rc < 0)
        return rc;
    if (!out)
        return set_err(c, -EINVAL, "nowhere to put the list");
    Plat__PlatformMessage *reply = NULL;
    const Plat__FileResult *f = NULL;
    rc = file_call(c, PLAT__FILE_OP__FILE_OP_LIST, dir ? dir : "", NULL, 0, &reply, &f);
    if (rc == 0) {
        size_t size = sizeof(op_file_list_t) + f->n_entries * sizeof(op_file_entry_t);
        for (size_t i = 0; i < f->n_entries; i++)
            size += strlen(f->entries[i]->name) + 1;
        uint8_t *block = calloc(1, size);
        if (!block) {
            rc = set_err(c, -ENOMEM, "out of memory for a listing of %zu entries",
                         f->n_entries);
        } else {
            op_file_list_t *l = (op_file_list_t *)block;
            op_file_entry_t *e = (op_file_entry_t *)(block + sizeof *l);
            char *bytes = (char *)(e + f->n_entries);
            for (size_t i = 0; i < f->n_entries; i++) {
                size_t n = strlen(f->entries[i]->name) + 1;
                memcpy(bytes, f->entries[i]->name, n);
                e[i].name = bytes;
                e[i].size = f->entries[i]->size;
                e[i].dir = f->entries[i]->dir ? 1 : 0;
                bytes += n;
            }
            l->n_entries = f->n_entries;
            l->entries = e;
            *out = l;
        }
    }
    plat_envelope_free(&reply);
    return rc;
}

int ph_res_file_delete(const ph_res_call_t *c, const char *path)
{
    int rc = begin(c);
    if (rc < 0)
        return rc;
    Plat__PlatformMessage *reply = NULL;
    const Plat__FileResult *f = NULL;
    rc = file_call(c, PLAT__FILE_OP__FILE_OP_DELETE, path, NULL, 0, &reply, &f);
    plat_envelope_free(&reply);
    return rc;
}

/* ---- abilities ------------------------------------------------------------ */

static int ability_register(const ph_res_call_t *c, Plat__AbilityKind kind, const char *name,
                            const char *cron, unsigned port, const char *health_path)
{
    Plat__PlatformMessage *m = ability_message();
    Plat__AbilityRegister *a = m ? NEW(Plat__AbilityRegister, plat__ability_register__init) : NULL;
    if (a) {
        m->ability->body_case = PLAT__ABILITY_MESSAGE__BODY_REGISTER;
        m->ability->register_ = a;
        a->kind = kind;
        a->port = port;
        char *i = plat_msg_strdup(c->instance), *n = plat_msg_strdup(name),
             *cr = plat_msg_strdup(cron), *hp = plat_msg_strdup(health_path);
        if (i)
            a->instance = i;
        if (n)
            a->name = n;
        if (cr)
            a->cron = cr;
        if (hp)
            a->health_path = hp;
        if (!i || !n || !cr || !hp)
            a = NULL;
    }
    if (!a) {
        plat_envelope_free(&m);
        return set_err(c, -ENOMEM, "out of memory");
    }
    return ability_call(c, &m);
}

static int ability_unregister(const ph_res_call_t *c, Plat__AbilityKind kind, const char *name)
{
    Plat__PlatformMessage *m = ability_message();
    Plat__AbilityUnregister *a =
        m ? NEW(Plat__AbilityUnregister, plat__ability_unregister__init) : NULL;
    if (a) {
        m->ability->body_case = PLAT__ABILITY_MESSAGE__BODY_UNREGISTER;
        m->ability->unregister = a;
        a->kind = kind;
        char *i = plat_msg_strdup(c->instance), *n = plat_msg_strdup(name);
        if (i)
            a->instance = i;
        if (n)
            a->name = n;
        if (!i || !n)
            a = NULL;
    }
    if (!a) {
        plat_envelope_free(&m);
        return set_err(c, -ENOMEM, "out of memory");
    }
    return ability_call(c, &m);
}

int ph_res_task_register(const ph_res_call_t *c, const char *cron, const char *name)
{
    int rc = begin(c);
    if (rc < 0)
        return rc;
    if (!cron || !cron[0])
        return set_err(c, -EINVAL, "no cron expression");
    if (!name || !name[0])
        return set_err(c, -EINVAL, "a task needs a name");
    return ability_register(c, PLAT__ABILITY_KIND__ABILITY_KIND_TASK, name, cron, 0, "");
}

int ph_res_task_unregister(const ph_res_call_t *c, const char *name)
{
    int rc = begin(c);
    if (rc < 0)
        return rc;
    if (!name || !name[0])
        return set_err(c, -EINVAL, "a task needs a name");
    return ability_unregister(c, PLAT__ABILITY_KIND__ABILITY_KIND_TASK, name);
}

int ph_res_service_register(const ph_res_call_t *c, unsigned port, const char *health_path)
{
    int rc = begin(c);
    if (rc < 0)
        return rc;
    if (port == 0 || port > 65535)
        return set_err(c, -EINVAL, "port %u is not a TCP port", port);
    if (health_path && health_path[0] && health_path[0] != '/')
        return set_err(c, -EINVAL, "health path must start with '/': '%s'", health_path);
    return ability_register(c, PLAT__ABILITY_KIND__ABILITY_KIND_SERVICE, "", "", port,
                            health_path && health_path[0] ? health_path : "/");
}

int ph_res_service_unregister(const ph_res_call_t *c)
{
    int rc = begin(c);
    if (rc < 0)
        return rc;
    return ability_unregister(c, PLAT__ABILITY_KIND__ABILITY_KIND_SERVICE, "");
}

Plat__PlatformMessage *ph_msg_ability_result(int code, const char *message, const char *detail)
{
    Plat__PlatformMessage *m = ability_message();
    Plat__AbilityResult *r = m ? NEW(Plat__AbilityResult, plat__ability_result__init) : NULL;
    if (!r) {
        plat_envelope_free(&m);
        return NULL;
    }
    m->ability->body_case = PLAT__ABILITY_MESSAGE__BODY_RESULT;
    m->ability->result = r;
    if (code == 0)
        return m;
    Plat__ErrorMessage *e = NEW(Plat__ErrorMessage, plat__error_message__init);
    if (!e) {
        plat_envelope_free(&m);
        return NULL;
    }
    r->error = e;
    e->code = code;
    char *msg = plat_msg_strdup(message), *det = plat_msg_strdup(detail);
    if (msg)
        e->message = msg;
    if (det)
        e->detail = det;
    if (!msg || !det)
        plat_envelope_free(&m);
    return m;
}
