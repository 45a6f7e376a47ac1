/* pluginhost/platcall.h + resources.h: the bridge from hook threads to the
 * platform, against a fake platform (a ROUTER plat_bus on the same uv loop
 * that admits the link and answers Resource and Ability requests). A
 * worker thread makes the SDK-level calls (ph_res_*) while the test thread
 * runs the loop: results come back typed, the calling instance is on every
 * request, errors come from the response's error, from header.error, from
 * a timeout, and -ECANCELED after shutdown (also for a call in flight),
 * -ENOTCONN without a registered link, -ENOSYS without a bridge. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "plat/plat.h"
#include "platcall.h"
#include "resources.h"
#include "testports.h"

#define DEADLINE_MS 5000
#define INSTANCE "0f8fad5b-d9cb-469f-a165-70867728950e"

typedef struct fx fx_t;
typedef void (*worker_fn)(fx_t *f);

struct fx {
    uv_loop_t loop;
    uv_timer_t tick;
    char addr[64];
    char host_id[PLAT_ID_MAX + 1];
    char boot[PLAT_UUID_LEN + 1], pboot[PLAT_UUID_LEN + 1];
    plat_bus_t *platform;
    plat_link_t *link;
    ph_platcall_t *pc;
    /* fake platform */
    int n_requests;
    int bad_instance;
    int silent_seen;          /* a SILENT request arrived */
    bool shutdown_on_silent;  /* then shut the bridge down */
    /* worker */
    pthread_t worker;
    worker_fn fn;
    atomic_bool worker_done;
    char err[256];
};

/* ---- fake platform ---------------------------------------------------- */

static Plat__PlatformMessage *resource_response(void)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE);
    assert_non_null(m);
    Plat__ResourceResponse *r = malloc(sizeof *r);
    assert_non_null(r);
    plat__resource_response__init(r);
    m->resource->body_case = PLAT__RESOURCE_MESSAGE__BODY_RESPONSE;
    m->resource->response = r;
    return m;
}

static Plat__ErrorMessage *error(int code, const char *msg)
{
    Plat__ErrorMessage *e = malloc(sizeof *e);
    assert_non_null(e);
    plat__error_message__init(e);
    e->code = code;
    e->message = strdup(msg);
    return e;
}

static void *alloc0(size_t n)
{
    void *p = calloc(1, n);
    assert_non_null(p);
    return p;
}

static void answer_db(fx_t *f, const Plat__PlatformMessage *m, const Plat__DbExecRequest *d)
{
    if (strcmp(d->sql, "SILENT") == 0) {
        f->silent_seen++;
        if (f->shutdown_on_silent)
            ph_platcall_shutdown(f->pc);
        return;
    }
    if (strcmp(d->sql, "HDR") == 0) {
        assert_int_equal(plat_bus_reply_error(f->platform, m, -EINVAL, "bad statement", "sql"),
                         0);
        return;
    }
    Plat__PlatformMessage *reply = resource_response();
    Plat__ResourceResponse *r = reply->resource->response;
    if (strcmp(d->sql, "ERR") == 0) {
        r->error = error(-EACCES, "ATTACH denied");
    } else {
        /* Echo the parameters as one row, columns p1..pN. */
        Plat__DbExecResult *res = alloc0(sizeof *res);
        plat__db_exec_result__init(res);
        r->result_case = PLAT__RESOURCE_RESPONSE__RESULT_DB;
        r->db = res;
        res->columns = alloc0((d->n_params + 1) * sizeof(char *));
        res->rows = alloc0(sizeof(Plat__DbRow *));
        Plat__DbRow *row = alloc0(sizeof *row);
        plat__db_row__init(row);
        res->rows[0] = row;
        res->n_rows = 1;
        row->values = alloc0((d->n_params + 1) * sizeof(Plat__DbValue *));
        for (size_t i = 0; i < d->n_params; i++) {
            char name[32];
            snprintf(name, sizeof name, "p%zu", i + 1);
            res->columns[i] = strdup(name);
            res->n_columns++;
            /* a copy of the parameter */
            size_t len = plat__db_value__get_packed_size(d->params[i]);
            uint8_t *buf = alloc0(len + 1);
            plat__db_value__pack(d->params[i], buf);
            row->values[i] = plat__db_value__unpack(NULL, len, buf);
            assert_non_null(row->values[i]);
            row->n_values++;
            free(buf);
        }
        res->changes = 1;
        res->last_insert_id = 7;
    }
    assert_int_equal(plat_bus_reply(f->platform, m, reply), 0);
    plat_envelope_free(&reply);
}

static void answer_http(fx_t *f, const Plat__PlatformMessage *m, const Plat__HttpRequest *h)
{
    Plat__PlatformMessage *reply = resource_response();
    Plat__ResourceResponse *r = reply->resource->response;
    Plat__HttpResponse *hr = alloc0(sizeof *hr);
    plat__http_response__init(hr);
    r->result_case = PLAT__RESOURCE_RESPONSE__RESULT_HTTP;
    r->http = hr;
    hr->status = 201;
    hr->headers = alloc0(sizeof(Plat__HttpHeader *));
    hr->headers[0] = alloc0(sizeof(Plat__HttpHeader));
    plat__http_header__init(hr->headers[0]);
    hr->headers[0]->name = strdup("X-Method");
    hr->headers[0]->value = strdup(h->method);
    hr->n_headers = 1;
    char body[512];
    int n = snprintf(body, sizeof body, "%s %s %zu", h->url,
                     h->n_headers ? h->headers[0]->value : "-", h->body.len);
    hr->body.data = (uint8_t *)strdup(body);
    hr->body.len = (size_t)n;
    assert_int_equal(plat_bus_reply(f->platform, m, reply), 0);
    plat_envelope_free(&reply);
}

static void answer_file(fx_t *f, const Plat__PlatformMessage *m, const Plat__FileRequest *q)
{
    Plat__PlatformMessage *reply = resource_response();
    Plat__ResourceResponse *r = reply->resource->response;
    if (strcmp(q->path, "missing") == 0) {
        r->error = error(-ENOENT, "no such file");
    } else {
        Plat__FileResult *fr = alloc0(sizeof *fr);
        plat__file_result__init(fr);
        r->result_case = PLAT__RESOURCE_RESPONSE__RESULT_FILE;
        r->file = fr;
        if (q->op == PLAT__FILE_OP__FILE_OP_READ) {
            fr->data.data = (uint8_t *)strdup("abc");
            fr->data.len = 3;
        } else if (q->op == PLAT__FILE_OP__FILE_OP_LIST) {
            fr->entries = alloc0(2 * sizeof(Plat__FileEntry *));
            for (int i = 0; i < 2; i++) {
                Plat__FileEntry *e = alloc0(sizeof *e);
                plat__file_entry__init(e);
                e->name = strdup(i ? "sub" : "a.txt");
                e->size = i ? 0 : 42;
                e->dir = i == 1;
                fr->entries[fr->n_entries++] = e;
            }
        } else if (q->op == PLAT__FILE_OP__FILE_OP_WRITE) {
            assert_int_equal(q->data.len, 5);
            assert_memory_equal(q->data.data, "hello", 5);
        }
    }
    assert_int_equal(plat_bus_reply(f->platform, m, reply), 0);
    plat_envelope_free(&reply);
}

static void answer_ability(fx_t *f, const Plat__PlatformMessage *m)
{
    const Plat__AbilityMessage *a = m->ability;
    const char *inst = a->body_case == PLAT__ABILITY_MESSAGE__BODY_REGISTER ? a->register_->instance
                                                                            : a->unregister->instance;
    if (strcmp(inst, INSTANCE) != 0)
        f->bad_instance++;
    const char *name = a->body_case == PLAT__ABILITY_MESSAGE__BODY_REGISTER ? a->register_->name
                                                                            : a->unregister->name;
    int code = 0;
    if (a->body_case == PLAT__ABILITY_MESSAGE__BODY_REGISTER &&
        a->register_->kind == PLAT__ABILITY_KIND__ABILITY_KIND_TASK &&
        strcmp(a->register_->cron, "bad") == 0)
        code = -EINVAL;
    if (a->body_case == PLAT__ABILITY_MESSAGE__BODY_REGISTER &&
        a->register_->kind == PLAT__ABILITY_KIND__ABILITY_KIND_SERVICE &&
        (a->register_->port != 8080 || strcmp(a->register_->health_path, "/health") != 0 ||
         name[0]))
        code = -EPROTO;
    Plat__PlatformMessage *reply =
        ph_msg_ability_result(code, code ? "minute: bad is not a number" : NULL, "cron");
    assert_non_null(reply);
    assert_int_equal(plat_bus_reply(f->platform, m, reply), 0);
    plat_envelope_free(&reply);
}

static void platform_on_message(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg)
{
    fx_t *f = arg;
    const Plat__PlatformMessage *m = rx->msg;
    if (m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL &&
        m->control->body_case == PLAT__CONTROL_MESSAGE__BODY_READY) {
        Plat__PlatformMessage *ack = plat_msg_register_ack(f->pboot, 1000, 3);
        assert_int_equal(plat_bus_reply(bus, m, ack), 0);
        plat_envelope_free(&ack);
        return;
    }
    if (m->header->kind != PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
        return;
    f->n_requests++;
    if (m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY) {
        answer_ability(f, m);
        return;
    }
    assert_int_equal(m->channel_case, PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE);
    assert_int_equal(m->resource->body_case, PLAT__RESOURCE_MESSAGE__BODY_REQUEST);
    const Plat__ResourceRequest *q = m->resource->request;
    if (strcmp(q->instance, INSTANCE) != 0)
        f->bad_instance++;
    switch (q->op_case) {
    case PLAT__RESOURCE_REQUEST__OP_DB:
        assert_int_equal(q->kind, PLAT__RESOURCE_KIND__RESOURCE_KIND_DB);
        answer_db(f, m, q->db);
        break;
    case PLAT__RESOURCE_REQUEST__OP_HTTP:
        assert_int_equal(q->kind, PLAT__RESOURCE_KIND__RESOURCE_KIND_HTTP);
        answer_http(f, m, q->http);
        break;
    case PLAT__RESOURCE_REQUEST__OP_FILE:
        assert_int_equal(q->kind, PLAT__RESOURCE_KIND__RESOURCE_KIND_FILE);
        answer_file(f, m, q->file);
        break;
    default:
        fail_msg("resource request without an op");
    }
}

/* ---- fixture ------------------------------------------------------------ */

static Plat__PlatformMessage *build_registration(void *arg)
{
    fx_t *f = arg;
    return plat_msg_host_ready(f->host_id, (int32_t)getpid(), "c", "1", "dev", "test", 1);
}

static void on_tick(uv_timer_t *t) { (void)t; }

static int setup(void **state)
{
    zsys_handler_set(NULL);
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, 10, 10);
    assert_true(plat_test_free_endpoint(f->addr, sizeof f->addr) > 0);
    char uuid[PLAT_UUID_LEN + 1];
    plat_uuid_new(uuid);
    snprintf(f->host_id, sizeof f->host_id, "host-%s", uuid);
    plat_uuid_new(f->boot);
    plat_uuid_new(f->pboot);
    plat_bus_opts_t o = {
        .role = PLAT_ENDPOINT_ROUTER,
        .identity = PLAT_PLATFORM_ID,
        .address = f->addr,
        .boot_id = f->pboot,
        .on_message = platform_on_message,
        .arg = f,
    };
    f->platform = plat_bus_new(&f->loop, &o);
    assert_non_null(f->platform);
    plat_link_opts_t lo = {
        .identity = f->host_id,
        .platform_address = f->addr,
        .boot_id = f->boot,
        .build_registration = build_registration,
        .arg = f,
    };
    f->link = plat_link_new(&f->loop, &lo);
    assert_non_null(f->link);
    uint64_t end = plat_mono_ms() + DEADLINE_MS;
    while (plat_link_state(f->link) != PLAT_LINK_REGISTERED && plat_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(plat_link_state(f->link), PLAT_LINK_REGISTERED);
    f->pc = ph_platcall_new(&f->loop, 300);
    assert_non_null(f->pc);
    ph_platcall_set_link(f->pc, f->link);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    ph_platcall_shutdown(f->pc);
    plat_link_destroy(&f->link);
    ph_platcall_free(&f->pc);
    plat_bus_destroy(&f->platform);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(f->bad_instance, 0);
    free(f);
    return 0;
}

static void *worker_main(void *arg)
{
    fx_t *f = arg;
    f->fn(f);
    atomic_store(&f->worker_done, true);
    return NULL;
}

/* Run `fn` on a worker thread while this thread runs the loop. */
static void run_worker(fx_t *f, worker_fn fn)
{
    f->fn = fn;
    atomic_store(&f->worker_done, false);
    assert_int_equal(pthread_create(&f->worker, NULL, worker_main, f), 0);
    uint64_t end = plat_mono_ms() + DEADLINE_MS;
    while (!atomic_load(&f->worker_done) && plat_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(atomic_load(&f->worker_done));
    pthread_join(f->worker, NULL);
}

static ph_res_call_t call_of(fx_t *f)
{
    ph_res_call_t c = {f->pc, INSTANCE, f->err, sizeof f->err};
    return c;
}

/* ---- tests ---------------------------------------------------------------- */

static void w_db_types(fx_t *f)
{
    ph_res_call_t c = call_of(f);
    static const uint8_t blob[] = {0, 0xff, 0x10};
    op_db_value_t p[] = {op_db_null(), op_db_int(-9007199254740993LL), op_db_real(2.5),
                         op_db_text("héllo"), op_db_blob(blob, sizeof blob)};
    op_db_result_t *res = NULL;
    assert_int_equal(ph_res_db_exec(&c, "INSERT", p, 5, &res), 0);
    assert_string_equal(f->err, "");
    assert_non_null(res);
    assert_int_equal(res->n_columns, 5);
    assert_string_equal(res->columns[4], "p5");
    assert_int_equal(res->n_rows, 1);
    assert_int_equal(res->changes, 1);
    assert_int_equal(res->last_insert_id, 7);
    assert_int_equal(op_db_cell(res, 0, 0)->type, OP_DB_NULL);
    assert_int_equal(op_db_cell(res, 0, 1)->type, OP_DB_INTEGER);
    assert_true(op_db_cell(res, 0, 1)->integer == -9007199254740993LL);
    assert_int_equal(op_db_cell(res, 0, 2)->type, OP_DB_REAL);
    assert_true(op_db_cell(res, 0, 2)->real == 2.5);
    assert_int_equal(op_db_cell(res, 0, 3)->type, OP_DB_TEXT);
    assert_string_equal(op_db_cell(res, 0, 3)->data, "héllo");
    assert_int_equal(op_db_cell(res, 0, 3)->len, strlen("héllo"));
    assert_int_equal(op_db_cell(res, 0, 4)->type, OP_DB_BLOB);
    assert_int_equal(op_db_cell(res, 0, 4)->len, 3);
    assert_memory_equal(op_db_cell(res, 0, 4)->data, blob, 3);
    assert_null(op_db_cell(res, 1, 0));
    assert_null(op_db_cell(res, 0, 5));
    op_db_result_free(res);
    /* no result wanted */
    assert_int_equal(ph_res_db_exec(&c, "INSERT", NULL, 0, NULL), 0);
    /* refused before sending */
    assert_int_equal(ph_res_db_exec(&c, "", NULL, 0, NULL), -EINVAL);
    op_db_value_t bad = {.type = 99};
    assert_int_equal(ph_res_db_exec(&c, "X", &bad, 1, NULL), -EINVAL);
    assert_non_null(strstr(f->err, "unknown type"));
    op_db_value_t nul = op_db_blob("a\0b", 3);
    nul.type = OP_DB_TEXT;
    assert_int_equal(ph_res_db_exec(&c, "X", &nul, 1, NULL), -EINVAL);
}

static void test_db_round_trip(void **state)
{
    fx_t *f = *state;
    run_worker(f, w_db_types);
    assert_int_equal(f->n_requests, 2);
}

static void w_errors(fx_t *f)
{
    ph_res_call_t c = call_of(f);
    op_db_result_t *res = (op_db_result_t *)1;
    assert_int_equal(ph_res_db_exec(&c, "ERR", NULL, 0, &res), -EACCES);
    assert_string_equal(f->err, "ATTACH denied");
    assert_int_equal(ph_res_db_exec(&c, "HDR", NULL, 0, NULL), -EINVAL);
    assert_non_null(strstr(f->err, "bad statement"));
    assert_int_equal(ph_res_db_exec(&c, "SILENT", NULL, 0, NULL), -ETIMEDOUT);
    assert_non_null(strstr(f->err, "no answer from the platform"));
    /* a success clears the message */
    assert_int_equal(ph_res_db_exec(&c, "OK", NULL, 0, NULL), 0);
    assert_string_equal(f->err, "");
}

static void test_errors(void **state)
{
    fx_t *f = *state;
    run_worker(f, w_errors);
    assert_int_equal(f->silent_seen, 1);
}

static void w_http_file(fx_t *f)
{
    ph_res_call_t c = call_of(f);
    op_header_t h[] = {{"Accept", "text/plain"}};
    op_http_response_t *r = NULL;
    assert_int_equal(ph_res_http_request(&c, "POST", "http://127.0.0.1:1/x", h, 1, "body", 4, &r),
                     0);
    assert_int_equal(r->status, 201);
    assert_int_equal(r->n_headers, 1);
    assert_string_equal(r->headers[0].name, "X-Method");
    assert_string_equal(r->headers[0].value, "POST");
    assert_string_equal((const char *)r->body, "http://127.0.0.1:1/x text/plain 4");
    assert_int_equal(r->body_len, strlen("http://127.0.0.1:1/x text/plain 4"));
    op_http_response_free(r);
    assert_int_equal(ph_res_http_request(&c, "GET", "", NULL, 0, NULL, 0, &r), -EINVAL);

    void *data = NULL;
    size_t len = 0;
    assert_int_equal(ph_res_file_read(&c, "a.txt", &data, &len), 0);
    assert_int_equal(len, 3);
    assert_string_equal(data, "abc");
    op_free(data);
    data = NULL;
    assert_int_equal(ph_res_file_read(&c, "missing", &data, &len), -ENOENT);
    assert_null(data);
    assert_string_equal(f->err, "no such file");
    assert_int_equal(ph_res_file_write(&c, "a.txt", "hello", 5), 0);
    op_file_list_t *l = NULL;
    assert_int_equal(ph_res_file_list(&c, "", &l), 0);
    assert_int_equal(l->n_entries, 2);
    assert_string_equal(l->entries[0].name, "a.txt");
    assert_int_equal(l->entries[0].size, 42);
    assert_int_equal(l->entries[0].dir, 0);
    assert_string_equal(l->entries[1].name, "sub");
    assert_int_equal(l->entries[1].dir, 1);
    op_file_list_free(l);
    assert_int_equal(ph_res_file_delete(&c, "a.txt"), 0);
}

static void test_http_and_files(void **state)
{
    fx_t *f = *state;
    run_worker(f, w_http_file);
    assert_int_equal(f->n_requests, 6);
}

static void w_abilities(fx_t *f)
{
    ph_res_call_t c = call_of(f);
    assert_int_equal(ph_res_task_register(&c, "*/5 * * * *", "sync"), 0);
    assert_int_equal(ph_res_task_register(&c, "bad", "sync"), -EINVAL);
    assert_non_null(strstr(f->err, "minute"));
    assert_int_equal(ph_res_task_register(&c, "* * * * *", ""), -EINVAL); /* not sent */
    assert_int_equal(ph_res_task_unregister(&c, "sync"), 0);
    assert_int_equal(ph_res_service_register(&c, 8080, "/health"), 0);
    assert_int_equal(ph_res_service_register(&c, 0, "/health"), -EINVAL);       /* not sent */
    assert_int_equal(ph_res_service_register(&c, 8080, "health"), -EINVAL);     /* not sent */
    assert_int_equal(ph_res_service_unregister(&c), 0);
}

static void test_abilities(void **state)
{
    fx_t *f = *state;
    run_worker(f, w_abilities);
    assert_int_equal(f->n_requests, 5);
}

static void w_cancel_in_flight(fx_t *f)
{
    ph_res_call_t c = call_of(f);
    /* the fake platform shuts the bridge down when this arrives */
    assert_int_equal(ph_res_db_exec(&c, "SILENT", NULL, 0, NULL), -ECANCELED);
    assert_non_null(strstr(f->err, "stopping"));
    /* and every later call fails at once */
    assert_int_equal(ph_res_db_exec(&c, "OK", NULL, 0, NULL), -ECANCELED);
    assert_int_equal(ph_res_task_register(&c, "* * * * *", "t"), -ECANCELED);
}

static void test_shutdown_cancels(void **state)
{
    fx_t *f = *state;
    ph_platcall_free(&f->pc);
    f->pc = ph_platcall_new(&f->loop, 60000); /* a timeout that must not be waited for */
    ph_platcall_set_link(f->pc, f->link);
    f->shutdown_on_silent = true;
    uint64_t t0 = plat_mono_ms();
    run_worker(f, w_cancel_in_flight);
    assert_true(plat_mono_ms() - t0 < 10000);
    assert_int_equal(f->silent_seen, 1);
    assert_int_equal(f->n_requests, 1);
}

static void w_not_connected(fx_t *f)
{
    ph_res_call_t c = call_of(f);
    assert_int_equal(ph_res_db_exec(&c, "OK", NULL, 0, NULL), -ENOTCONN);
    assert_non_null(strstr(f->err, "link"));
    ph_res_call_t none = {NULL, INSTANCE, f->err, sizeof f->err};
    assert_int_equal(ph_res_db_exec(&none, "OK", NULL, 0, NULL), -ENOSYS);
    assert_int_equal(ph_res_file_delete(&none, "x"), -ENOSYS);
}

static void test_no_link(void **state)
{
    fx_t *f = *state;
    ph_platcall_set_link(f->pc, NULL);
    run_worker(f, w_not_connected);
    assert_int_equal(f->n_requests, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_db_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_and_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_link, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
