/* Resource channel, DB kind (res_db.c): typed round trip of all five
 * types, the authorizer (ATTACH, DETACH, load_extension, pragmas, VACUUM
 * INTO), the statement time limit, row and byte caps, one statement per
 * request, parameter checks, persistence. Each test has its own temp dir. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "res_db.h"
#include "res_file.h"

typedef struct {
    char dir[64];
    char path[128];
    pd_res_db_t *db;
    pd_res_db_limits_t lim;
    char why[256];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_res_db.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/db.sqlite", f->dir);
    f->lim.timeout_ms = 2000;
    f->lim.max_rows = 10000;
    f->lim.max_bytes = 4 * 1024 * 1024;
    if (pd_res_db_open(f->path, &f->db, f->why, sizeof f->why) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    pd_res_db_close(&f->db);
    pd_res_file_remove_tree(f->dir);
    free(f);
    return 0;
}

/* ---- request building ---------------------------------------------------- */

typedef struct {
    Plat__DbExecRequest req;
    Plat__DbValue vals[8];
    Plat__DbValue *ptrs[8];
} req_t;

static void req_init(req_t *r, const char *sql)
{
    memset(r, 0, sizeof *r);
    plat__db_exec_request__init(&r->req);
    r->req.sql = (char *)sql;
    r->req.params = r->ptrs;
}

static Plat__DbValue *req_add(req_t *r)
{
    Plat__DbValue *v = &r->vals[r->req.n_params];
    plat__db_value__init(v);
    r->ptrs[r->req.n_params++] = v;
    return v;
}

static void add_null(req_t *r)
{
    req_add(r)->value_case = PLAT__DB_VALUE__VALUE_NULL;
}
static void add_int(req_t *r, int64_t i)
{
    Plat__DbValue *v = req_add(r);
    v->value_case = PLAT__DB_VALUE__VALUE_INTEGER;
    v->integer = i;
}
static void add_real(req_t *r, double d)
{
    Plat__DbValue *v = req_add(r);
    v->value_case = PLAT__DB_VALUE__VALUE_REAL;
    v->real = d;
}
static void add_text(req_t *r, const char *s)
{
    Plat__DbValue *v = req_add(r);
    v->value_case = PLAT__DB_VALUE__VALUE_TEXT;
    v->text = (char *)s;
}
static void add_blob(req_t *r, const void *p, size_t n)
{
    Plat__DbValue *v = req_add(r);
    v->value_case = PLAT__DB_VALUE__VALUE_BLOB;
    v->blob.data = (uint8_t *)p;
    v->blob.len = n;
}

/* Run `sql` without parameters; returns the code, *out when asked. */
static int run(fixture_t *f, const char *sql, Plat__DbExecResult **out)
{
    req_t r;
    req_init(&r, sql);
    Plat__DbExecResult *res = NULL;
    f->why[0] = '\0';
    int rc = pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why);
    if (rc < 0)
        assert_null(res);
    else
        assert_non_null(res);
    if (out)
        *out = res;
    else
        pd_res_db_result_free(&res);
    return rc;
}

static int64_t one_int(fixture_t *f, const char *sql)
{
    Plat__DbExecResult *res = NULL;
    assert_int_equal(run(f, sql, &res), 0);
    assert_int_equal(res->n_rows, 1);
    assert_int_equal(res->rows[0]->n_values, 1);
    assert_int_equal(res->rows[0]->values[0]->value_case, PLAT__DB_VALUE__VALUE_INTEGER);
    int64_t v = res->rows[0]->values[0]->integer;
    pd_res_db_result_free(&res);
    return v;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_crud_all_types(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(run(f, "CREATE TABLE t(id INTEGER PRIMARY KEY, i, r, s, b, n)", NULL), 0);

    static const uint8_t blob[] = {0x00, 0xff, 0x10, 0x00, 0x7f};
    req_t r;
    req_init(&r, "INSERT INTO t(i, r, s, b, n) VALUES (?1, ?2, ?3, ?4, ?5)");
    add_int(&r, -9007199254740993LL);
    add_real(&r, 3.25);
    add_text(&r, "héllo 'quoted' ; DROP TABLE t");
    add_blob(&r, blob, sizeof blob);
    add_null(&r);
    Plat__DbExecResult *res = NULL;
    assert_int_equal(pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why), 0);
    assert_int_equal(res->changes, 1);
    assert_int_equal(res->last_insert_id, 1);
    assert_int_equal(res->n_rows, 0);
    pd_res_db_result_free(&res);

    /* An empty blob stays a blob, an empty text a text. */
    req_init(&r, "INSERT INTO t(i, r, s, b, n) VALUES (?, ?, ?, ?, ?)");
    add_int(&r, 0);
    add_real(&r, -0.5);
    add_text(&r, "");
    add_blob(&r, NULL, 0);
    add_null(&r);
    assert_int_equal(pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why), 0);
    assert_int_equal(res->last_insert_id, 2);
    pd_res_db_result_free(&res);

    assert_int_equal(run(f, "SELECT i, r, s, b, n FROM t ORDER BY id", &res), 0);
    assert_int_equal(res->n_columns, 5);
    assert_string_equal(res->columns[0], "i");
    assert_string_equal(res->columns[4], "n");
    assert_int_equal(res->changes, 0);
    assert_int_equal(res->n_rows, 2);
    Plat__DbValue **v = res->rows[0]->values;
    assert_int_equal(res->rows[0]->n_values, 5);
    assert_int_equal(v[0]->value_case, PLAT__DB_VALUE__VALUE_INTEGER);
    assert_true(v[0]->integer == -9007199254740993LL);
    assert_int_equal(v[1]->value_case, PLAT__DB_VALUE__VALUE_REAL);
    assert_true(v[1]->real == 3.25);
    assert_int_equal(v[2]->value_case, PLAT__DB_VALUE__VALUE_TEXT);
    assert_string_equal(v[2]->text, "héllo 'quoted' ; DROP TABLE t");
    assert_int_equal(v[3]->value_case, PLAT__DB_VALUE__VALUE_BLOB);
    assert_int_equal(v[3]->blob.len, sizeof blob);
    assert_memory_equal(v[3]->blob.data, blob, sizeof blob);
    assert_int_equal(v[4]->value_case, PLAT__DB_VALUE__VALUE_NULL);
    v = res->rows[1]->values;
    assert_int_equal(v[2]->value_case, PLAT__DB_VALUE__VALUE_TEXT);
    assert_string_equal(v[2]->text, "");
    assert_int_equal(v[3]->value_case, PLAT__DB_VALUE__VALUE_BLOB);
    assert_int_equal(v[3]->blob.len, 0);
    pd_res_db_result_free(&res);

    /* The result serializes like any protobuf message (it goes on the bus). */
    assert_int_equal(run(f, "SELECT * FROM t", &res), 0);
    size_t n = plat__db_exec_result__get_packed_size(res);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    plat__db_exec_result__pack(res, buf);
    Plat__DbExecResult *back = plat__db_exec_result__unpack(NULL, n, buf);
    assert_non_null(back);
    assert_int_equal(back->n_rows, 2);
    /* id, i, r, s, b, n */
    assert_int_equal(back->rows[0]->values[4]->blob.len, sizeof blob);
    plat__db_exec_result__free_unpacked(back, NULL);
    free(buf);
    pd_res_db_result_free(&res);

    req_init(&r, "UPDATE t SET s = ?1 WHERE id = ?2");
    add_text(&r, "changed");
    add_int(&r, 1);
    assert_int_equal(pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why), 0);
    assert_int_equal(res->changes, 1);
    pd_res_db_result_free(&res);

    assert_int_equal(run(f, "DELETE FROM t", &res), 0);
    assert_int_equal(res->changes, 2);
    pd_res_db_result_free(&res);
    assert_int_equal(one_int(f, "SELECT count(*) FROM t"), 0);

    /* RETURNING gives rows from a write. */
    assert_int_equal(run(f, "INSERT INTO t(i) VALUES (42) RETURNING i", &res), 0);
    assert_int_equal(res->n_rows, 1);
    assert_int_equal(res->rows[0]->values[0]->integer, 42);
    pd_res_db_result_free(&res);
}

static void test_persists_across_reopen(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(run(f, "CREATE TABLE k(v TEXT)", NULL), 0);
    assert_int_equal(run(f, "INSERT INTO k VALUES ('kept')", NULL), 0);
    pd_res_db_close(&f->db);
    assert_null(f->db);
    assert_int_equal(pd_res_db_open(f->path, &f->db, f->why, sizeof f->why), 0);
    assert_int_equal(one_int(f, "SELECT count(*) FROM k WHERE v = 'kept'"), 1);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_open_refuses_symlink(void **state)
{
    fixture_t *f = *state;
    char link[160];
    snprintf(link, sizeof link, "%s/link.sqlite", f->dir);
    assert_int_equal(symlink(f->path, link), 0);
    pd_res_db_t *db = NULL;
    assert_int_equal(pd_res_db_open(link, &db, f->why, sizeof f->why), -EACCES);
    assert_null(db);
}

static void test_attach_detach_denied(void **state)
{
    fixture_t *f = *state;
    char sql[256], other[160];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    snprintf(sql, sizeof sql, "ATTACH DATABASE '%s' AS o", other);
    assert_int_equal(run(f, sql, NULL), -EACCES);
    assert_non_null(strstr(f->why, "ATTACH"));
    assert_int_equal(access(other, F_OK), -1);
    /* Through a parameter too. */
    req_t r;
    req_init(&r, "ATTACH ?1 AS o");
    add_text(&r, other);
    Plat__DbExecResult *res = NULL;
    assert_int_equal(pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why), -EACCES);
    assert_int_equal(access(other, F_OK), -1);
    assert_int_equal(run(f, "DETACH DATABASE main", NULL), -EACCES);
    assert_non_null(strstr(f->why, "DETACH"));
    /* VACUUM INTO writes another file; VACUUM attaches internally too. */
    snprintf(sql, sizeof sql, "VACUUM INTO '%s'", other);
    assert_int_equal(run(f, sql, NULL), -EACCES);
    assert_int_equal(run(f, "VACUUM", NULL), -EACCES);
    assert_int_equal(access(other, F_OK), -1);
    /* The connection still works. */
    assert_int_equal(one_int(f, "SELECT 7"), 7);
}

static void test_load_extension_denied(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(run(f, "SELECT load_extension('/lib/x86_64-linux-gnu/libm.so.6')", NULL),
                     -EACCES);
    assert_non_null(strstr(f->why, "load_extension"));
    assert_int_equal(run(f, "SELECT LOAD_EXTENSION('x', 'y')", NULL), -EACCES);
}

static void test_pragmas(void **state)
{
    fixture_t *f = *state;
    static const char *const denied[] = {
        "PRAGMA journal_mode=DELETE",  "PRAGMA journal_mode",
        "PRAGMA writable_schema=ON",   "PRAGMA temp_store_directory='/tmp'",
        "PRAGMA main.synchronous=OFF", "PRAGMA cache_size=-100000",
        "PRAGMA trusted_schema=ON",    "PRAGMA foreign_keys=OFF",
        "PRAGMA mmap_size=1000000",    "PRAGMA database_list",
        "PRAGMA compile_options",      "PRAGMA query_only=1",
        "PRAGMA wal_checkpoint",
    };
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        int rc = run(f, denied[i], NULL);
        if (rc != -EACCES)
            fail_msg("%s: %d %s", denied[i], rc, f->why);
        assert_non_null(strstr(f->why, "PRAGMA"));
    }
    assert_int_equal(run(f, "CREATE TABLE p(a INTEGER, b TEXT)", NULL), 0);
    Plat__DbExecResult *res = NULL;
    assert_int_equal(run(f, "PRAGMA table_info(p)", &res), 0);
    assert_int_equal(res->n_rows, 2);
    pd_res_db_result_free(&res);
    assert_int_equal(run(f, "SELECT name FROM pragma_table_info('p')", &res), 0);
    assert_int_equal(res->n_rows, 2);
    pd_res_db_result_free(&res);
    assert_int_equal(run(f, "PRAGMA index_list(p)", NULL), 0);
    assert_int_equal(one_int(f, "PRAGMA user_version"), 0);
    assert_int_equal(run(f, "PRAGMA user_version = 3", NULL), 0);
    assert_int_equal(one_int(f, "PRAGMA user_version"), 3);
    /* The settings the module chose are still in force. */
    assert_int_equal(one_int(f, "SELECT count(*) FROM pragma_foreign_key_list('p')"), 0);
}

static void test_runaway_query_times_out(void **state)
{
    fixture_t *f = *state;
    f->lim.timeout_ms = 200;
    uint64_t t0 = mono_ms();
    int rc = run(f,
                 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                 "SELECT count(*) FROM c",
                 NULL);
    uint64_t took = mono_ms() - t0;
    assert_int_equal(rc, -ETIMEDOUT);
    assert_non_null(strstr(f->why, "time limit"));
    assert_true(took >= 200);
    assert_true(took < 20000); /* generous: only "it stopped" */
    /* A write that times out leaves nothing behind; the connection works. */
    assert_int_equal(run(f, "CREATE TABLE w(x)", NULL), 0);
    rc = run(f,
             "INSERT INTO w WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
             "SELECT x FROM c",
             NULL);
    assert_int_equal(rc, -ETIMEDOUT);
    assert_int_equal(one_int(f, "SELECT count(*) FROM w"), 0);
    /* The next statement gets its own full time. */
    assert_int_equal(one_int(f, "SELECT 1"), 1);
}

static void test_row_cap(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(run(f, "CREATE TABLE r(x)", NULL), 0);
    assert_int_equal(run(f,
                         "INSERT INTO r WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                         "SELECT x + 1 FROM c WHERE x < 20) SELECT x FROM c",
                         NULL),
                     0);
    f->lim.max_rows = 20;
    Plat__DbExecResult *res = NULL;
    assert_int_equal(run(f, "SELECT x FROM r", &res), 0);
    assert_int_equal(res->n_rows, 20);
    pd_res_db_result_free(&res);
    f->lim.max_rows = 19;
    assert_int_equal(run(f, "SELECT x FROM r", NULL), -EFBIG);
    assert_non_null(strstr(f->why, "rows"));
}

static void test_byte_cap(void **state)
{
    fixture_t *f = *state;
    f->lim.max_bytes = 50000;
    assert_int_equal(run(f, "SELECT zeroblob(100000)", NULL), -EFBIG);
    assert_int_equal(run(f, "SELECT randomblob(1000) FROM (SELECT 1 UNION ALL SELECT 2)", NULL), 0);
    /* Many small rows add up too. */
    assert_int_equal(run(f,
                         "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                         "WHERE x < 5000) SELECT 'abcdefghijklmnop' FROM c",
                         NULL),
                     -EFBIG);
}

static void test_one_statement_only(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(run(f, "CREATE TABLE m(x)", NULL), 0);
    assert_int_equal(run(f, "INSERT INTO m VALUES (1); DROP TABLE m", NULL), -EINVAL);
    assert_non_null(strstr(f->why, "one statement"));
    assert_int_equal(run(f, "SELECT 1; SELECT 2", NULL), -EINVAL);
    assert_int_equal(run(f, "SELECT 1;;SELECT 2", NULL), -EINVAL);
    assert_int_equal(run(f, "SELECT 1; garbage", NULL), -EINVAL);
    /* Nothing of the refused requests ran. */
    assert_int_equal(one_int(f, "SELECT count(*) FROM m"), 0);
    /* Trailing separators, whitespace and comments are fine. */
    assert_int_equal(run(f, "SELECT 1;", NULL), 0);
    assert_int_equal(run(f, "SELECT 1 ; ; -- done\n /* really */ ", NULL), 0);
    /* No statement at all. */
    assert_int_equal(run(f, "", NULL), -EINVAL);
    assert_int_equal(run(f, "  -- nothing", NULL), -EINVAL);
}

static void test_bad_requests(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(run(f, "SELEC 1", NULL), -EINVAL);
    assert_non_null(strstr(f->why, "syntax"));
    assert_int_equal(run(f, "SELECT * FROM missing", NULL), -EINVAL);
    assert_non_null(strstr(f->why, "missing"));
    /* Parameter count must match. */
    req_t r;
    req_init(&r, "SELECT ?1 + ?2");
    add_int(&r, 1);
    Plat__DbExecResult *res = NULL;
    assert_int_equal(pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why), -EINVAL);
    assert_null(res);
    req_init(&r, "SELECT 1");
    add_int(&r, 1);
    assert_int_equal(pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why), -EINVAL);
    /* A parameter without a value. */
    req_init(&r, "SELECT ?");
    req_add(&r);
    assert_int_equal(pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why), -EINVAL);
    /* Constraint violations are the request's fault. */
    assert_int_equal(run(f, "CREATE TABLE u(x UNIQUE NOT NULL)", NULL), 0);
    assert_int_equal(run(f, "INSERT INTO u VALUES (1)", NULL), 0);
    assert_int_equal(run(f, "INSERT INTO u VALUES (1)", NULL), -EINVAL);
    assert_non_null(strstr(f->why, "UNIQUE"));
    assert_int_equal(run(f, "INSERT INTO u VALUES (NULL)", NULL), -EINVAL);
    /* Foreign keys are enforced (the plugin cannot turn them off). */
    assert_int_equal(run(f, "CREATE TABLE pa(id INTEGER PRIMARY KEY)", NULL), 0);
    assert_int_equal(run(f, "CREATE TABLE ch(p REFERENCES pa(id))", NULL), 0);
    assert_int_equal(run(f, "INSERT INTO ch VALUES (5)", NULL), -EINVAL);
    /* Defensive mode: the schema cannot be corrupted on purpose. */
    assert_true(run(f, "UPDATE sqlite_master SET sql = 'x'", NULL) < 0);
    /* NULL arguments. */
    assert_int_equal(pd_res_db_exec(f->db, NULL, &f->lim, &res, f->why, sizeof f->why), -EINVAL);
}

static void test_transactions_across_requests(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(run(f, "CREATE TABLE tx(x)", NULL), 0);
    assert_int_equal(run(f, "BEGIN", NULL), 0);
    assert_int_equal(run(f, "INSERT INTO tx VALUES (1)", NULL), 0);
    assert_int_equal(run(f, "ROLLBACK", NULL), 0);
    assert_int_equal(one_int(f, "SELECT count(*) FROM tx"), 0);
    /* Closing with a transaction open rolls it back. */
    assert_int_equal(run(f, "BEGIN", NULL), 0);
    assert_int_equal(run(f, "INSERT INTO tx VALUES (2)", NULL), 0);
    pd_res_db_close(&f->db);
    assert_int_equal(pd_res_db_open(f->path, &f->db, f->why, sizeof f->why), 0);
    assert_int_equal(one_int(f, "SELECT count(*) FROM tx"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud_all_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persists_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attach_detach_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_extension_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pragmas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runaway_query_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byte_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_statement_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions_across_requests, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
