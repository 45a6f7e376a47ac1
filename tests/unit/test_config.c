/* Unit tests of the declarative JSON config module (plat/config.h), run on a
 * small table of their own that uses every field type. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "plat/config.h"

/* ---- the test table --------------------------------------------------- */

typedef struct {
    char *id;       /* required */
    int64_t weight; /* 0..10, default 5 */
    bool on;        /* default true */
} t_item_t;

typedef struct {
    char *name;   /* required, no default */
    int64_t port; /* 1..65535, default 8080 */
    int64_t any;  /* no range (min == max), default -7 */
    bool enabled; /* default false */
    struct {
        char *endpoint; /* loopback endpoint, default tcp://127.0.0.1:7700 */
        char *address;  /* loopback address, default NULL */
        int64_t hwm;    /* 1..100, default 10 */
        bool verbose;   /* default true */
    } net;
    char **tags;
    size_t n_tags;
    t_item_t *items;
    size_t n_items;
    char *level; /* log level, default "info" */
} t_cfg_t;

#define NET_OFF(f) (offsetof(t_cfg_t, net.f) - offsetof(t_cfg_t, net))

static int validate_not_x(const void *value, const char **why)
{
    if (strcmp(*(const char *const *)value, "x") != 0)
        return 0;
    *why = "must not be x";
    return -EINVAL;
}

static const plat_cfg_field_t t_net_table[] = {
    {.key = "endpoint",
     .type = PLAT_CFG_STRING,
     .offset = NET_OFF(endpoint),
     .def_str = "tcp://127.0.0.1:7700",
     .validate = plat_cfg_validate_loopback_endpoint},
    {.key = "address",
     .type = PLAT_CFG_STRING,
     .offset = NET_OFF(address),
     .validate = plat_cfg_validate_loopback_address},
    {.key = "hwm",
     .type = PLAT_CFG_INT,
     .offset = NET_OFF(hwm),
     .def_int = 10,
     .min = 1,
     .max = 100},
    {.key = "verbose", .type = PLAT_CFG_BOOL, .offset = NET_OFF(verbose), .def_bool = true},
    {0},
};

static const plat_cfg_field_t t_item_table[] = {
    {.key = "id",
     .type = PLAT_CFG_STRING,
     .offset = offsetof(t_item_t, id),
     .required = true,
     .validate = validate_not_x},
    {.key = "weight",
     .type = PLAT_CFG_INT,
     .offset = offsetof(t_item_t, weight),
     .def_int = 5,
     .min = 0,
     .max = 10},
    {.key = "on", .type = PLAT_CFG_BOOL, .offset = offsetof(t_item_t, on), .def_bool = true},
    {0},
};

static const plat_cfg_field_t t_table[] = {
    {.key = "name",
     .type = PLAT_CFG_STRING,
     .offset = offsetof(t_cfg_t, name),
     .required = true,
     .validate = validate_not_x},
    {.key = "port",
     .type = PLAT_CFG_INT,
     .offset = offsetof(t_cfg_t, port),
     .def_int = 8080,
     .min = 1,
     .max = 65535},
    {.key = "any", .type = PLAT_CFG_INT, .offset = offsetof(t_cfg_t, any), .def_int = -7},
    {.key = "enabled", .type = PLAT_CFG_BOOL, .offset = offsetof(t_cfg_t, enabled)},
    {.key = "net",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(t_cfg_t, net),
     .children = t_net_table},
    {.key = "tags",
     .type = PLAT_CFG_STRING_ARRAY,
     .offset = offsetof(t_cfg_t, tags),
     .count_offset = offsetof(t_cfg_t, n_tags)},
    {.key = "items",
     .type = PLAT_CFG_OBJECT_ARRAY,
     .offset = offsetof(t_cfg_t, items),
     .children = t_item_table,
     .elem_size = sizeof(t_item_t),
     .count_offset = offsetof(t_cfg_t, n_items)},
    {.key = "level",
     .type = PLAT_CFG_STRING,
     .offset = offsetof(t_cfg_t, level),
     .def_str = "info",
     .validate = plat_cfg_validate_log_level},
    {0},
};

/* A table whose nested object has a required key, for "absent object". */
typedef struct {
    struct {
        char *must;
    } inner;
} t_req_t;

static const plat_cfg_field_t t_req_inner[] = {
    {.key = "must", .type = PLAT_CFG_STRING, .offset = 0, .required = true},
    {0},
};
static const plat_cfg_field_t t_req_table[] = {
    {.key = "inner",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(t_req_t, inner),
     .children = t_req_inner},
    {0},
};

/* ---- helpers ---------------------------------------------------------- */

static char g_dir[64];
static int g_nfile;

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/plat-test-config-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char path[128];
    for (int i = 0; i < g_nfile; i++) {
        snprintf(path, sizeof path, "%s/c%d.json", g_dir, i);
        unlink(path);
    }
    return rmdir(g_dir);
}

/* Write `text` to a new file in the temp dir; its path goes into `path`. */
static void write_cfg(char *path, size_t size, const char *text)
{
    snprintf(path, size, "%s/c%d.json", g_dir, g_nfile++);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static bool is_all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* Load `json` from a string; on failure checks that `out` came back zeroed. */
static int load_str(const char *json, t_cfg_t *out, plat_cfg_error_t *err)
{
    memset(out, 0, sizeof *out);
    int r = plat_cfg_load_string("t.json", json, t_table, out, err);
    if (r < 0)
        assert_true(is_all_zero(out, sizeof *out));
    return r;
}

/* Expect `json` to fail with -EINVAL at key `key` with reason `reason`. */
static void expect_fail(const char *json, const char *key, const char *reason)
{
    t_cfg_t c;
    plat_cfg_error_t err;
    int r = load_str(json, &c, &err);
    if (r != -EINVAL)
        fail_msg("'%s': got %d, expected -EINVAL", json, r);
    assert_string_equal(err.file, "t.json");
    assert_string_equal(err.key, key);
    assert_string_equal(err.reason, reason);
    assert_int_equal(err.line, 0);
}

/* ---- tests ------------------------------------------------------------ */

static void test_defaults(void **state)
{
    (void)state;
    t_cfg_t c;
    memset(&c, 0, sizeof c);
    plat_cfg_defaults(t_table, &c);
    assert_null(c.name);
    assert_int_equal(c.port, 8080);
    assert_int_equal(c.any, -7);
    assert_false(c.enabled);
    assert_string_equal(c.net.endpoint, "tcp://127.0.0.1:7700");
    assert_null(c.net.address);
    assert_int_equal(c.net.hwm, 10);
    assert_true(c.net.verbose);
    assert_null(c.tags);
    assert_int_equal(c.n_tags, 0);
    assert_null(c.items);
    assert_int_equal(c.n_items, 0);
    assert_string_equal(c.level, "info");
    plat_cfg_free(t_table, &c);
    assert_true(is_all_zero(&c, sizeof c));
    plat_cfg_free(t_table, NULL); /* NULL-safe */
}

static void test_minimal_string_gets_defaults(void **state)
{
    (void)state;
    t_cfg_t c;
    plat_cfg_error_t err;
    assert_int_equal(load_str("{\"name\": \"n\"}", &c, &err), 0);
    assert_string_equal(c.name, "n");
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.net.endpoint, "tcp://127.0.0.1:7700");
    assert_true(c.net.verbose);
    assert_string_equal(c.level, "info");
    plat_cfg_free(t_table, &c);
    assert_true(is_all_zero(&c, sizeof c));
}

static const char GOOD[] = "{\n"
                           "  \"name\": \"alpha\",\n"
                           "  \"port\": 65535,\n"
                           "  \"any\": -9000000000,\n"
                           "  \"enabled\": true,\n"
                           "  \"net\": {\"endpoint\": \"tcp://[::1]:1\", \"address\": \"::1\",\n"
                           "          \"hwm\": 1, \"verbose\": false},\n"
                           "  \"tags\": [\"a\", \"bb\", \"\"],\n"
                           "  \"items\": [{\"id\": \"i0\"}, {\"id\": \"i1\", \"weight\": 10, "
                           "\"on\": false}],\n"
                           "  \"level\": \"debug\"\n"
                           "}\n";

static void check_good(const t_cfg_t *c)
{
    assert_string_equal(c->name, "alpha");
    assert_int_equal(c->port, 65535);
    assert_true(c->any == INT64_C(-9000000000));
    assert_true(c->enabled);
    assert_string_equal(c->net.endpoint, "tcp://[::1]:1");
    assert_string_equal(c->net.address, "::1");
    assert_int_equal(c->net.hwm, 1);
    assert_false(c->net.verbose);
    assert_int_equal(c->n_tags, 3);
    assert_string_equal(c->tags[0], "a");
    assert_string_equal(c->tags[1], "bb");
    assert_string_equal(c->tags[2], "");
    assert_int_equal(c->n_items, 2);
    assert_string_equal(c->items[0].id, "i0");
    assert_int_equal(c->items[0].weight, 5); /* element defaults */
    assert_true(c->items[0].on);
    assert_string_equal(c->items[1].id, "i1");
    assert_int_equal(c->items[1].weight, 10);
    assert_false(c->items[1].on);
    assert_string_equal(c->level, "debug");
}

static void test_good_file(void **state)
{
    (void)state;
    char path[128];
    write_cfg(path, sizeof path, GOOD);
    t_cfg_t c;
    memset(&c, 0, sizeof c);
    plat_cfg_error_t err;
    assert_int_equal(plat_cfg_load_file(path, t_table, &c, &err), 0);
    check_good(&c);
    plat_cfg_free(t_table, &c);
    assert_true(is_all_zero(&c, sizeof c));
}

static void test_good_string(void **state)
{
    (void)state;
    t_cfg_t c;
    plat_cfg_error_t err;
    assert_int_equal(load_str(GOOD, &c, &err), 0);
    check_good(&c);
    plat_cfg_free(t_table, &c);
}

static void test_empty_arrays(void **state)
{
    (void)state;
    t_cfg_t c;
    plat_cfg_error_t err;
    assert_int_equal(load_str("{\"name\":\"n\",\"tags\":[],\"items\":[]}", &c, &err), 0);
    assert_null(c.tags);
    assert_int_equal(c.n_tags, 0);
    assert_null(c.items);
    assert_int_equal(c.n_items, 0);
    plat_cfg_free(t_table, &c);
}

static void test_missing_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/does-not-exist.json", g_dir);
    t_cfg_t c;
    memset(&c, 0, sizeof c);
    plat_cfg_error_t err;
    assert_int_equal(plat_cfg_load_file(path, t_table, &c, &err), -ENOENT);
    assert_true(is_all_zero(&c, sizeof c));
    assert_string_equal(err.file, path);
    assert_string_equal(err.key, "");
    assert_int_equal(err.line, 0);
    assert_string_equal(err.reason, "cannot open: No such file or directory");
    char buf[512], want[512];
    plat_cfg_error_format(&err, buf, sizeof buf);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    assert_string_equal(buf, want);
}

static void test_directory_is_not_a_file(void **state)
{
    (void)state;
    t_cfg_t c;
    memset(&c, 0, sizeof c);
    plat_cfg_error_t err;
    assert_int_equal(plat_cfg_load_file(g_dir, t_table, &c, &err), -EISDIR);
    assert_true(is_all_zero(&c, sizeof c));
    assert_string_equal(err.file, g_dir);
    assert_string_equal(err.reason, "cannot open: Is a directory");
}

/* Syntax errors report jansson's own line, column and text. */
static void check_syntax(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    assert_null(j);
    assert_true(jerr.line > 0);

    char path[128];
    write_cfg(path, sizeof path, text);
    t_cfg_t c;
    memset(&c, 0, sizeof c);
    plat_cfg_error_t err;
    assert_int_equal(plat_cfg_load_file(path, t_table, &c, &err), -EINVAL);
    assert_true(is_all_zero(&c, sizeof c));
    assert_string_equal(err.file, path);
    assert_int_equal(err.line, jerr.line);
    assert_int_equal(err.column, jerr.column);
    assert_string_equal(err.key, "");
    assert_string_equal(err.reason, jerr.text);

    char buf[512], want[512];
    plat_cfg_error_format(&err, buf, sizeof buf);
    snprintf(want, sizeof want, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    assert_string_equal(buf, want);

    /* Same from a string. */
    memset(&c, 0, sizeof c);
    assert_int_equal(plat_cfg_load_string("s.json", text, t_table, &c, &err), -EINVAL);
    assert_string_equal(err.file, "s.json");
    assert_int_equal(err.line, jerr.line);
    assert_int_equal(err.column, jerr.column);
}

static void test_syntax_error(void **state)
{
    (void)state;
    check_syntax("{\n  \"name\": \"n\",\n  \"port\": ,\n}\n");
    check_syntax("{\n  \"name\": \"n\"\n  \"port\": 1\n}\n");
    check_syntax("{\"name\": \"n\",\n\n   \"tags\": [1, 2\n");
    check_syntax("{\"name\": tru}");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    check_syntax("{\n  \"name\": \"a\",\n  \"name\": \"b\"\n}\n");
    check_syntax("{\"name\": \"a\", \"net\": {\"hwm\": 1, \"hwm\": 2}}");
    t_cfg_t c;
    plat_cfg_error_t err;
    assert_int_equal(load_str("{\"name\":\"a\",\"name\":\"b\"}", &c, &err), -EINVAL);
    assert_non_null(strstr(err.reason, "duplicate"));
    assert_int_equal(err.line, 1);
}

static void test_root_not_object(void **state)
{
    (void)state;
    expect_fail("[]", "", "expected object, got array");
    expect_fail("[{\"name\": \"n\"}]", "", "expected object, got array");
}

static void test_unknown_key(void **state)
{
    (void)state;
    expect_fail("{\"name\":\"n\",\"bogus\":1}", "bogus", "unknown key");
    expect_fail("{\"name\":\"n\",\"net\":{\"hwm\":2,\"bogus_key\":true}}", "net.bogus_key",
                "unknown key");
    expect_fail("{\"name\":\"n\",\"items\":[{\"id\":\"a\"},{\"id\":\"b\",\"lang\":\"c\"}]}",
                "items[1].lang", "unknown key");
    /* Keys are case-sensitive. */
    expect_fail("{\"Name\":\"n\"}", "Name", "unknown key");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_fail("{\"name\":1}", "name", "expected string, got integer");
    expect_fail("{\"name\":null}", "name", "expected string, got null");
    expect_fail("{\"name\":\"n\",\"port\":\"80\"}", "port", "expected integer, got string");
    expect_fail("{\"name\":\"n\",\"port\":80.0}", "port", "expected integer, got real");
    expect_fail("{\"name\":\"n\",\"port\":true}", "port", "expected integer, got boolean");
    expect_fail("{\"name\":\"n\",\"enabled\":\"yes\"}", "enabled", "expected boolean, got string");
    expect_fail("{\"name\":\"n\",\"enabled\":1}", "enabled", "expected boolean, got integer");
    expect_fail("{\"name\":\"n\",\"net\":[]}", "net", "expected object, got array");
    expect_fail("{\"name\":\"n\",\"net\":{\"verbose\":0}}", "net.verbose",
                "expected boolean, got integer");
    expect_fail("{\"name\":\"n\",\"tags\":{}}", "tags", "expected array, got object");
    expect_fail("{\"name\":\"n\",\"tags\":\"a\"}", "tags", "expected array, got string");
    expect_fail("{\"name\":\"n\",\"tags\":[\"a\",2]}", "tags[1]", "expected string, got integer");
    expect_fail("{\"name\":\"n\",\"items\":{}}", "items", "expected array, got object");
    expect_fail("{\"name\":\"n\",\"items\":[\"a\"]}", "items[0]", "expected object, got string");
    expect_fail("{\"name\":\"n\",\"items\":[{\"id\":\"a\"},{\"id\":\"b\",\"weight\":\"1\"}]}",
                "items[1].weight", "expected integer, got string");
    /* Type checks come before validators. */
    expect_fail("{\"name\":\"n\",\"level\":3}", "level", "expected string, got integer");
}

static void test_range(void **state)
{
    (void)state;
    expect_fail("{\"name\":\"n\",\"port\":0}", "port", "out of range 1..65535");
    expect_fail("{\"name\":\"n\",\"port\":65536}", "port", "out of range 1..65535");
    expect_fail("{\"name\":\"n\",\"port\":-1}", "port", "out of range 1..65535");
    expect_fail("{\"name\":\"n\",\"net\":{\"hwm\":101}}", "net.hwm", "out of range 1..100");
    expect_fail("{\"name\":\"n\",\"items\":[{\"id\":\"a\",\"weight\":11}]}", "items[0].weight",
                "out of range 0..10");

    t_cfg_t c;
    plat_cfg_error_t err;
    assert_int_equal(load_str("{\"name\":\"n\",\"port\":1,\"net\":{\"hwm\":100}}", &c, &err), 0);
    assert_int_equal(c.port, 1);
    assert_int_equal(c.net.hwm, 100);
    plat_cfg_free(t_table, &c);
    /* min == max: no range check. */
    assert_int_equal(load_str("{\"name\":\"n\",\"any\":9223372036854775807}", &c, &err), 0);
    assert_true(c.any == INT64_MAX);
    plat_cfg_free(t_table, &c);
}

static void test_required(void **state)
{
    (void)state;
    expect_fail("{}", "name", "required key missing");
    expect_fail("{\"port\":1}", "name", "required key missing");
    expect_fail("{\"name\":\"n\",\"items\":[{\"id\":\"a\"},{\"weight\":1}]}", "items[1].id",
                "required key missing");

    /* A required key inside an absent or empty nested object. */
    t_req_t r;
    plat_cfg_error_t err;
    memset(&r, 0, sizeof r);
    assert_int_equal(plat_cfg_load_string("r", "{}", t_req_table, &r, &err), -EINVAL);
    assert_string_equal(err.key, "inner.must");
    assert_string_equal(err.reason, "required key missing");
    assert_int_equal(plat_cfg_load_string("r", "{\"inner\":{}}", t_req_table, &r, &err), -EINVAL);
    assert_string_equal(err.key, "inner.must");
    assert_int_equal(
        plat_cfg_load_string("r", "{\"inner\":{\"must\":\"y\"}}", t_req_table, &r, &err), 0);
    assert_string_equal(r.inner.must, "y");
    plat_cfg_free(t_req_table, &r);
    assert_null(r.inner.must);
}

static void test_validator_in_table(void **state)
{
    (void)state;
    expect_fail("{\"name\":\"x\"}", "name", "must not be x");
    expect_fail("{\"name\":\"n\",\"items\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"x\"}]}",
                "items[2].id", "must not be x");
    expect_fail("{\"name\":\"n\",\"net\":{\"endpoint\":\"tcp://0.0.0.0:7700\"}}", "net.endpoint",
                "must be a loopback tcp endpoint (tcp://127.0.0.1:PORT)");
    expect_fail("{\"name\":\"n\",\"net\":{\"address\":\"0.0.0.0\"}}", "net.address",
                "must be a loopback address (127.0.0.1, ::1 or localhost)");
    t_cfg_t c;
    plat_cfg_error_t err;
    assert_int_equal(load_str("{\"name\":\"n\",\"level\":\"loud\"}", &c, &err), -EINVAL);
    assert_string_equal(err.key, "level");
    assert_true(strlen(err.reason) > 0);
}

/* A failure after strings, arrays and elements were allocated leaves `out`
 * zeroed (and, under ASan, leaks nothing). */
static void test_out_zeroed_after_late_failure(void **state)
{
    (void)state;
    expect_fail("{\"name\":\"n\",\"level\":\"debug\",\"net\":{\"address\":\"::1\"},"
                "\"tags\":[\"a\",\"b\"],\"items\":[{\"id\":\"a\"},{\"id\":\"b\",\"on\":1}]}",
                "items[1].on", "expected boolean, got integer");
    expect_fail("{\"name\":\"n\",\"items\":[{\"id\":\"a\"}],\"tags\":[\"a\",\"b\",false]}",
                "tags[2]", "expected string, got boolean");
    expect_fail("{\"name\":\"n\",\"items\":[{\"id\":\"a\"}],\"tags\":[\"a\"],\"zzz\":0}", "zzz",
                "unknown key");

    char path[128];
    write_cfg(path, sizeof path, "{\"name\":\"n\",\"tags\":[\"a\"],\"port\":0}");
    t_cfg_t c;
    memset(&c, 0, sizeof c);
    plat_cfg_error_t err;
    assert_int_equal(plat_cfg_load_file(path, t_table, &c, &err), -EINVAL);
    assert_true(is_all_zero(&c, sizeof c));
    assert_string_equal(err.key, "port");
}

static void test_error_format(void **state)
{
    (void)state;
    plat_cfg_error_t e;
    char buf[600];
    memset(&e, 0, sizeof e);
    strcpy(e.file, "f.json");
    strcpy(e.key, "bus.max_msg_size");
    strcpy(e.reason, "out of range 1024..67108864");
    int n = plat_cfg_error_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "f.json: bus.max_msg_size: out of range 1024..67108864");
    assert_int_equal(n, (int)strlen(buf));

    e.line = 3;
    e.column = 14;
    plat_cfg_error_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "f.json:3:14: bus.max_msg_size: out of range 1024..67108864");

    e.key[0] = '\0';
    strcpy(e.reason, "unexpected token");
    plat_cfg_error_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "f.json:3:14: unexpected token");

    e.line = 0;
    e.column = 0;
    strcpy(e.reason, "cannot open: No such file or directory");
    plat_cfg_error_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "f.json: cannot open: No such file or directory");

    /* Truncation: returns the full length like snprintf. */
    char small[8];
    n = plat_cfg_error_format(&e, small, sizeof small);
    assert_int_equal(n, (int)strlen("f.json: cannot open: No such file or directory"));
    assert_string_equal(small, "f.json:");

    /* From a real load error. */
    t_cfg_t c;
    assert_int_equal(load_str("{\"name\":\"n\",\"net\":{\"hwm\":0}}", &c, &e), -EINVAL);
    plat_cfg_error_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "t.json: net.hwm: out of range 1..100");
}

static int v_str(plat_cfg_validate_fn fn, const char *s, const char **why)
{
    *why = NULL;
    return fn(&s, why);
}

static void test_validate_loopback_endpoint(void **state)
{
    (void)state;
    static const char *const good[] = {
        "tcp://127.0.0.1:7700", "tcp://127.0.0.1:1", "tcp://127.255.255.254:65535",
        "tcp://127.1.2.3:80",   "tcp://[::1]:7700",  "tcp://localhost:7700",
    };
    static const char *const bad[] = {
        "",
        "127.0.0.1:7700",
        "ipc:///tmp/x",
        "udp://127.0.0.1:7700",
        "tcp://",
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:",
        "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:65536",
        "tcp://127.0.0.1:99999999999",
        "tcp://127.0.0.1:-1",
        "tcp://127.0.0.1:80x",
        "tcp://127.0.0.1:080",
        "tcp://0.0.0.0:7700",
        "tcp://10.0.0.1:7700",
        "tcp://*:7700",
        "tcp://128.0.0.1:7700",
        "tcp://127.0.0.256:7700",
        "tcp://127.0.0:7700",
        "tcp://127.0.0.1.1:7700",
        "tcp://127..0.1:7700",
        "tcp://[::2]:7700",
        "tcp://::1:7700",
        "tcp://localhostx:7700",
        "tcp://eth0:7700",
        "tcp://example.com:7700",
        "TCP://127.0.0.1:7700",
    };
    const char *why;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (v_str(plat_cfg_validate_loopback_endpoint, good[i], &why) != 0)
            fail_msg("refused good endpoint '%s'", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (v_str(plat_cfg_validate_loopback_endpoint, bad[i], &why) != -EINVAL)
            fail_msg("accepted bad endpoint '%s'", bad[i]);
        assert_string_equal(why, "must be a loopback tcp endpoint (tcp://127.0.0.1:PORT)");
    }
    assert_int_equal(v_str(plat_cfg_validate_loopback_endpoint, NULL, &why), -EINVAL);
}

static void test_validate_loopback_address(void **state)
{
    (void)state;
    static const char *const good[] = {"127.0.0.1", "127.0.0.2", "127.255.255.255", "::1",
                                       "localhost"};
    static const char *const bad[] = {"",           "0.0.0.0",    "10.0.0.1",
                                      "127.0.0",    "127.0.0.1.", "127.0.0.256",
                                      "::",         "[::1]",      "::2",
                                      "localhost.", "LOCALHOST",  "127.0.0.1:80",
                                      " 127.0.0.1", "*"};
    const char *why;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (v_str(plat_cfg_validate_loopback_address, good[i], &why) != 0)
            fail_msg("refused good address '%s'", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (v_str(plat_cfg_validate_loopback_address, bad[i], &why) != -EINVAL)
            fail_msg("accepted bad address '%s'", bad[i]);
        assert_non_null(why);
        assert_true(strlen(why) > 0);
    }
    assert_int_equal(v_str(plat_cfg_validate_loopback_address, NULL, &why), -EINVAL);
}

static void test_validate_log_level(void **state)
{
    (void)state;
    static const char *const good[] = {"err", "warning", "notice", "info", "debug"};
    static const char *const bad[] = {"", "INFO", "warn", "error", "trace", "info "};
    const char *why;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (v_str(plat_cfg_validate_log_level, good[i], &why) != 0)
            fail_msg("refused good level '%s'", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (v_str(plat_cfg_validate_log_level, bad[i], &why) != -EINVAL)
            fail_msg("accepted bad level '%s'", bad[i]);
        assert_non_null(why);
        assert_true(strlen(why) > 0);
    }
    assert_int_equal(v_str(plat_cfg_validate_log_level, NULL, &why), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_minimal_string_gets_defaults),
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_good_string),
        cmocka_unit_test(test_empty_arrays),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_directory_is_not_a_file),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_root_not_object),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_validator_in_table),
        cmocka_unit_test(test_out_zeroed_after_late_failure),
        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_validate_loopback_endpoint),
        cmocka_unit_test(test_validate_loopback_address),
        cmocka_unit_test(test_validate_log_level),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
