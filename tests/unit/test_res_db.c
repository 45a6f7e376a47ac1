/* Resource channel, DB kind (res_db.c): typed round trip of all five
 * types, the authorizer (ATTACH, DETACH, load_extension, fts3_tokenizer,
 * pragmas, VACUUM INTO; plain VACUUM, rtree and fts work), the statement
 * time limit, row and byte caps, values over the length limit, the file
 * quota, one statement per request, parameter checks, persistence. Each
 * test has its own temp dir. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
    /* VACUUM INTO writes another file (plain VACUUM works: see
     * test_vacuum_rtree_fts). */
    snprintf(sql, sizeof sql, "VACUUM INTO '%s'", other);
    assert_int_equal(run(f, sql, NULL), -EACCES);
    assert_non_null(strstr(f->why, "ATTACH"));
    assert_int_equal(access(other, F_OK), -1);
    /* An empty file name (a private temporary database) is no exception
     * outside VACUUM. */
    assert_int_equal(run(f, "ATTACH '' AS t2", NULL), -EACCES);
    assert_int_equal(run(f, "ATTACH DATABASE ':memory:' AS t3", NULL), -EACCES);
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
        "PRAGMA journal_mode=DELETE",
        "PRAGMA journal_mode",
        "PRAGMA writable_schema=ON",
        "PRAGMA temp_store_directory='/tmp'",
        "PRAGMA main.synchronous=OFF",
        "PRAGMA cache_size=-100000",
        "PRAGMA trusted_schema=ON",
        "PRAGMA foreign_keys=OFF",
        "PRAGMA mmap_size=1000000",
        "PRAGMA database_list",
        "PRAGMA compile_options",
        "PRAGMA query_only=1",
        "PRAGMA wal_checkpoint",
        "PRAGMA page_size=8192",
        "PRAGMA max_page_count=1000000000",
        "PRAGMA temp.max_page_count=1000000000",
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
    assert_true(one_int(f, "PRAGMA page_size") >= 512);
    /* The settings the module chose are still in force. */
    assert_int_equal(one_int(f, "SELECT count(*) FROM pragma_foreign_key_list('p')"), 0);
}

static void test_load_extension_bound_and_cased(void **state)
{
    fixture_t *f = *state;
    req_t r;
    req_init(&r, "SELECT Load_Extension(?1)");
    add_text(&r, "/lib/x86_64-linux-gnu/libm.so.6");
    Plat__DbExecResult *res = NULL;
    assert_int_equal(pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why), -EACCES);
    assert_null(res);
}

/* fts3_tokenizer('name') gives a pointer into libsqlite3; with a second
 * argument it takes a blob as a C pointer, and using the tokenizer then
 * calls through it (a crash of platformd). Denied in every form. */
static void test_fts3_tokenizer_denied(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(run(f, "SELECT fts3_tokenizer('simple')", NULL), -EACCES);
    assert_non_null(strstr(f->why, "fts3_tokenizer"));
    assert_int_equal(run(f, "SELECT FTS3_Tokenizer('porter')", NULL), -EACCES);
    assert_int_equal(run(f, "SELECT fts3_tokenizer('evil', x'4141414141414141')", NULL), -EACCES);
    assert_non_null(strstr(f->why, "fts3_tokenizer"));

    /* A bound blob (SQLite lets that through even with
     * SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER off). */
    static const uint8_t ptr[8] = {0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41};
    req_t r;
    req_init(&r, "SELECT fts3_tokenizer(?1, ?2)");
    add_text(&r, "evil");
    add_blob(&r, ptr, sizeof ptr);
    Plat__DbExecResult *res = NULL;
    assert_int_equal(pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why), -EACCES);
    assert_null(res);
    assert_non_null(strstr(f->why, "fts3_tokenizer"));
    req_init(&r, "SELECT fts3_tokenizer(?1)");
    add_text(&r, "simple");
    assert_int_equal(pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why), -EACCES);

    /* No tokenizer "evil" was registered: the table cannot use it, and
     * platformd is still here. */
    assert_int_equal(run(f, "CREATE VIRTUAL TABLE f USING fts3(x, tokenize=evil)", NULL), -EINVAL);
    assert_int_equal(run(f, "CREATE VIRTUAL TABLE f4 USING fts4(x, tokenize=evil)", NULL), -EINVAL);

    /* Not through a view or a trigger either. */
    /* (In a view or trigger SQLite itself refuses it first: "unsafe use",
     * -EINVAL, as the schema is not trusted.) */
    int rc = run(f, "CREATE VIEW v AS SELECT fts3_tokenizer('simple') AS p", NULL);
    assert_true(rc == 0 || rc == -EACCES);
    if (rc == 0) {
        rc = run(f, "SELECT p FROM v", NULL);
        assert_true(rc == -EACCES || rc == -EINVAL);
        assert_non_null(strstr(f->why, "fts3_tokenizer"));
    }
    assert_int_equal(run(f, "CREATE TABLE tr(x)", NULL), 0);
    rc = run(f,
             "CREATE TRIGGER trg AFTER INSERT ON tr BEGIN "
             "SELECT fts3_tokenizer('evil', x'4141414141414141'); END",
             NULL);
    assert_true(rc == 0 || rc == -EACCES);
    if (rc == 0) {
        rc = run(f, "INSERT INTO tr VALUES (1)", NULL);
        assert_true(rc == -EACCES || rc == -EINVAL);
        assert_non_null(strstr(f->why, "fts3_tokenizer"));
    }
    assert_int_equal(run(f, "CREATE VIRTUAL TABLE f USING fts3(x, tokenize=evil)", NULL), -EINVAL);

    /* The fts5 C API is not handed out. */
    req_init(&r, "SELECT fts5(?1)");
    add_null(&r);
    assert_int_equal(pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why), -EACCES);

    /* Built-in tokenizers by name still work. */
    assert_int_equal(run(f, "CREATE VIRTUAL TABLE ok USING fts4(x, tokenize=porter)", NULL), 0);
    assert_int_equal(run(f, "INSERT INTO ok VALUES ('running dogs')", NULL), 0);
    assert_int_equal(one_int(f, "SELECT count(*) FROM ok WHERE ok MATCH 'run'"), 1);
    assert_int_equal(one_int(f, "SELECT 5"), 5);
}

static void test_vacuum_rtree_fts(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(run(f, "CREATE TABLE v(x)", NULL), 0);
    assert_int_equal(run(f,
                         "INSERT INTO v WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                         "SELECT x + 1 FROM c WHERE x < 500) SELECT randomblob(100) FROM c",
                         NULL),
                     0);
    assert_int_equal(run(f, "DELETE FROM v WHERE rowid % 2 = 0", NULL), 0);
    assert_int_equal(run(f, "VACUUM", NULL), 0);
    assert_int_equal(run(f, "VACUUM main", NULL), 0);
    assert_int_equal(one_int(f, "SELECT count(*) FROM v"), 250);
    /* Still no ATTACH after a VACUUM. */
    char sql[256], other[160];
    snprintf(other, sizeof other, "%s/after.db", f->dir);
    snprintf(sql, sizeof sql, "ATTACH '%s' AS o", other);
    assert_int_equal(run(f, sql, NULL), -EACCES);
    assert_int_equal(access(other, F_OK), -1);

    assert_int_equal(run(f, "CREATE VIRTUAL TABLE r USING rtree(id, minx, maxx, miny, maxy)", NULL),
                     0);
    assert_int_equal(run(f, "INSERT INTO r VALUES (1, 0, 10, 0, 10), (2, 20, 30, 20, 30)", NULL),
                     0);
    assert_int_equal(one_int(f, "SELECT id FROM r WHERE minx <= 5 AND maxx >= 5"), 1);

    assert_int_equal(run(f, "CREATE VIRTUAL TABLE t5 USING fts5(body)", NULL), 0);
    assert_int_equal(run(f, "INSERT INTO t5 VALUES ('hello world'), ('goodbye')", NULL), 0);
    assert_int_equal(one_int(f, "SELECT count(*) FROM t5 WHERE t5 MATCH 'hello'"), 1);
    assert_int_equal(run(f, "CREATE VIRTUAL TABLE t3 USING fts3(body)", NULL), 0);
    assert_int_equal(run(f, "INSERT INTO t3 VALUES ('hello there')", NULL), 0);
    assert_int_equal(one_int(f, "SELECT count(*) FROM t3 WHERE t3 MATCH 'hello'"), 1);
    assert_int_equal(run(f, "VACUUM", NULL), 0);
    assert_int_equal(one_int(f, "SELECT count(*) FROM r"), 2);
}

static long max_rss_kib(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

/* A value bigger than a result may be is never built: the length limit
 * stops it inside SQLite (-EFBIG), without hundreds of MB in platformd. */
static void test_huge_values_refused(void **state)
{
    fixture_t *f = *state;
    long rss0 = max_rss_kib();
    assert_int_equal(run(f, "SELECT randomblob(500000000)", NULL), -EFBIG);
    assert_non_null(strstr(f->why, "too big"));
    assert_int_equal(run(f, "SELECT zeroblob(999000000)", NULL), -EFBIG);
    assert_int_equal(run(f, "SELECT length(zeroblob(999000000))", NULL), -EFBIG);
    assert_int_equal(run(f, "SELECT length(randomblob(300000000))", NULL), -EFBIG);
    assert_int_equal(run(f, "SELECT replace(hex(zeroblob(3000000)), '0', 'xyz')", NULL), -EFBIG);
    Plat__DbExecResult *res = NULL;
    assert_int_equal(run(f, "CREATE TABLE h(b)", NULL), 0);
    assert_int_equal(run(f, "INSERT INTO h VALUES (zeroblob(900000000))", NULL), -EFBIG);
    assert_int_equal(one_int(f, "SELECT count(*) FROM h"), 0);
    long grown = max_rss_kib() - rss0;
    if (grown > 64 * 1024)
        fail_msg("peak RSS grew by %ld KiB", grown);

    /* A bound blob over the limit is refused too. */
    size_t big = (size_t)f->lim.max_bytes + 128 * 1024;
    uint8_t *blob = calloc(1, big);
    assert_non_null(blob);
    req_t r;
    req_init(&r, "INSERT INTO h VALUES (?1)");
    add_blob(&r, blob, big);
    assert_int_equal(pd_res_db_exec(f->db, &r.req, &f->lim, &res, f->why, sizeof f->why), -EFBIG);
    assert_null(res);
    free(blob);

    /* Values below the limit still work, and the limit follows max_bytes. */
    assert_int_equal(one_int(f, "SELECT length(randomblob(1000000))"), 1000000);
    f->lim.max_bytes = 10000;
    assert_int_equal(run(f, "SELECT length(randomblob(1000000))", NULL), -EFBIG);
    f->lim.max_bytes = 4 * 1024 * 1024;
    assert_int_equal(one_int(f, "SELECT length(randomblob(1000000))"), 1000000);
}

static void test_file_quota(void **state)
{
    fixture_t *f = *state;
    f->lim.max_file_bytes = 256 * 1024;
    assert_int_equal(run(f, "CREATE TABLE q(b)", NULL), 0);
    int rc = 0, n = 0;
    for (; n < 1000 && rc == 0; n++)
        rc = run(f, "INSERT INTO q VALUES (randomblob(4000))", NULL);
    assert_int_equal(rc, -EDQUOT);
    assert_non_null(strstr(f->why, "quota"));
    int64_t rows = one_int(f, "SELECT count(*) FROM q");
    assert_true(rows > 10);
    assert_true(rows * 4000 <= 256 * 1024);
    /* A multi-row insert over the quota leaves nothing behind. */
    assert_int_equal(run(f, "DELETE FROM q", NULL), 0);
    assert_int_equal(run(f,
                         "INSERT INTO q WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                         "SELECT x + 1 FROM c WHERE x < 200) SELECT randomblob(4000) FROM c",
                         NULL),
                     -EDQUOT);
    assert_int_equal(one_int(f, "SELECT count(*) FROM q"), 0);
    /* Freed pages are used again. */
    assert_int_equal(run(f, "INSERT INTO q VALUES (randomblob(4000))", NULL), 0);
    /* TEMP tables have the quota too. */
    assert_int_equal(run(f, "CREATE TEMP TABLE tq(b)", NULL), 0);
    rc = run(f,
             "INSERT INTO tq WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
             "SELECT x + 1 FROM c WHERE x < 200) SELECT randomblob(4000) FROM c",
             NULL);
    assert_int_equal(rc, -EDQUOT);
    /* A bigger quota applies on the next request. */
    f->lim.max_file_bytes = 2 * 1024 * 1024;
    assert_int_equal(run(f,
                         "INSERT INTO q WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                         "SELECT x + 1 FROM c WHERE x < 200) SELECT randomblob(4000) FROM c",
                         NULL),
                     0);
    assert_int_equal(one_int(f, "SELECT count(*) FROM q"), 201);
    /* Closing checkpoints the WAL: the file keeps to the quota. */
    pd_res_db_close(&f->db);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(st.st_size <= 2 * 1024 * 1024);
    assert_int_equal(pd_res_db_open(f->path, &f->db, f->why, sizeof f->why), 0);
    assert_int_equal(one_int(f, "SELECT count(*) FROM q"), 201);
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
        cmocka_unit_test_setup_teardown(test_load_extension_bound_and_cased, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fts3_tokenizer_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vacuum_rtree_fts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_values_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_quota, setup, teardown),
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
