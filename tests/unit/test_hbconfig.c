/* hostbootd's config table: defaults, a full file, runtimes, and refusals
 * naming the key path. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hbconfig.h"

static char g_dir[64];
static int g_nfile;

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/plat-test-hbconfig-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char path[128];
    for (int i = 0; i < g_nfile; i++) {
        snprintf(path, sizeof path, "%s/h%d.json", g_dir, i);
        unlink(path);
    }
    return rmdir(g_dir);
}

static void write_cfg(char *path, size_t size, const char *text)
{
    snprintf(path, size, "%s/h%d.json", g_dir, g_nfile++);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

static bool is_zero(const hb_config_t *c)
{
    static const hb_config_t zero;
    return memcmp(c, &zero, sizeof zero) == 0;
}

static int load(const char *text, hb_config_t *c, plat_cfg_error_t *err)
{
    char path[128];
    write_cfg(path, sizeof path, text);
    int r = hb_config_load(path, c, err);
    if (r < 0) {
        assert_true(is_zero(c));
        assert_string_equal(err->file, path);
    }
    return r;
}

static void expect_fail(const char *text, const char *key, const char *reason)
{
    hb_config_t c;
    plat_cfg_error_t err;
    int r = load(text, &c, &err);
    if (r != -EINVAL)
        fail_msg("'%s': got %d, expected -EINVAL", text, r);
    assert_string_equal(err.key, key);
    if (reason)
        assert_string_equal(err.reason, reason);
}

static void check_defaults(const hb_config_t *c)
{
    assert_string_equal(c->name, "local");
    assert_string_equal(c->platform.endpoint, "tcp://127.0.0.1:7700");
    assert_int_equal(c->bus.max_msg_size, 4194304);
    assert_int_equal(c->bus.sndhwm, 1000);
    assert_int_equal(c->bus.rcvhwm, 1000);
    assert_int_equal(c->reg.timeout_ms, 2000);
    assert_int_equal(c->reg.retry_initial_ms, 200);
    assert_int_equal(c->reg.retry_max_ms, 5000);
    assert_string_equal(c->log.level, "info");
}

static void test_empty_object_gives_defaults(void **state)
{
    (void)state;
    hb_config_t c;
    plat_cfg_error_t err;
    assert_int_equal(load("{}", &c, &err), 0);
    check_defaults(&c);
    assert_null(c.runtimes);
    assert_int_equal(c.n_runtimes, 0);
    hb_config_free(&c);
    assert_true(is_zero(&c));
    hb_config_free(NULL);
}

static void test_full_file(void **state)
{
    (void)state;
    hb_config_t c;
    plat_cfg_error_t err;
    assert_int_equal(
        load("{\n"
             "  \"name\": \"node-1.a_b\",\n"
             "  \"platform\": {\"endpoint\": \"tcp://localhost:17700\"},\n"
             "  \"bus\": {\"max_msg_size\": 2048, \"sndhwm\": 7, \"rcvhwm\": 8},\n"
             "  \"register\": {\"timeout_ms\": 100, \"retry_initial_ms\": 10, "
             "\"retry_max_ms\": 600000},\n"
             "  \"runtimes\": [\n"
             "    {\"language\": \"c\", \"version\": \"1\", \"path\": \"/usr/lib/plat/host\"},\n"
             "    {\"language\": \"python_3\", \"version\": \"3.11\", \"path\": \"bin/pyhost\"}\n"
             "  ],\n"
             "  \"log\": {\"level\": \"warning\"}\n"
             "}\n",
             &c, &err),
        0);
    assert_string_equal(c.name, "node-1.a_b");
    assert_string_equal(c.platform.endpoint, "tcp://localhost:17700");
    assert_int_equal(c.bus.max_msg_size, 2048);
    assert_int_equal(c.bus.sndhwm, 7);
    assert_int_equal(c.bus.rcvhwm, 8);
    assert_int_equal(c.reg.timeout_ms, 100);
    assert_int_equal(c.reg.retry_initial_ms, 10);
    assert_int_equal(c.reg.retry_max_ms, 600000);
    assert_int_equal(c.n_runtimes, 2);
    assert_string_equal(c.runtimes[0].language, "c");
    assert_string_equal(c.runtimes[0].version, "1");
    assert_string_equal(c.runtimes[0].path, "/usr/lib/plat/host");
    assert_string_equal(c.runtimes[1].language, "python_3");
    assert_string_equal(c.runtimes[1].version, "3.11");
    assert_string_equal(c.runtimes[1].path, "bin/pyhost");
    assert_string_equal(c.log.level, "warning");
    hb_config_free(&c);
    assert_true(is_zero(&c));
}

/* config/hostbootd.json, found from this source file's path (CMake compiles
 * with absolute paths); false when it cannot be located. */
static bool example_path(char *buf, size_t size)
{
    const char *tail = strstr(__FILE__, "tests/unit/test_hbconfig.c");
    if (!tail || __FILE__[0] != '/')
        return false;
    snprintf(buf, size, "%.*sconfig/hostbootd.json", (int)(tail - __FILE__), __FILE__);
    return access(buf, R_OK) == 0;
}

/* The documented example file loads and states the table's defaults. */
static void test_shipped_example(void **state)
{
    (void)state;
    char path[1024];
    if (!example_path(path, sizeof path))
        skip();
    hb_config_t c;
    plat_cfg_error_t err;
    int r = hb_config_load(path, &c, &err);
    if (r != 0) {
        char buf[600];
        plat_cfg_error_format(&err, buf, sizeof buf);
        fail_msg("%s", buf);
    }
    check_defaults(&c);
    hb_config_free(&c);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_fail("{\"platform\": {\"endpoint\": \"tcp://10.0.0.1:7700\"}}", "platform.endpoint",
                "must be a loopback tcp endpoint (tcp://127.0.0.1:PORT)");
    expect_fail("{\"platform\": {\"endpoint\": \"tcp://0.0.0.0:7700\"}}", "platform.endpoint",
                NULL);
    expect_fail("{\"name\": \"Bad Name\"}", "name", NULL);
    expect_fail("{\"name\": \"\"}", "name", NULL);
    expect_fail("{\"name\": \"-lead\"}", "name", NULL);
    expect_fail("{\"name\": \"a/b\"}", "name", NULL);
    expect_fail("{\"name\": "
                "\"a0123456789012345678901234567890123456789012345678901234567890123\"}",
                "name", NULL);
    expect_fail("{\"name\": 5}", "name", "expected string, got integer");
    expect_fail("{\"runtimes\": [{\"language\": \"c\", \"version\": \"1\", \"path\": \"p\"},\n"
                "              {\"lang\": \"c\", \"version\": \"1\", \"path\": \"p\"}]}",
                "runtimes[1].lang", "unknown key");
    expect_fail("{\"runtimes\": [{\"language\": \"c\", \"version\": \"1\", \"path\": 7}]}",
                "runtimes[0].path", "expected string, got integer");
    expect_fail("{\"runtimes\": [{\"language\": \"c\", \"version\": \"1\"}]}", "runtimes[0].path",
                "required key missing");
    expect_fail("{\"runtimes\": [{\"version\": \"1\", \"path\": \"p\"}]}", "runtimes[0].language",
                "required key missing");
    expect_fail("{\"runtimes\": [{\"language\": \"C\", \"version\": \"1\", \"path\": \"p\"}]}",
                "runtimes[0].language", NULL);
    expect_fail("{\"runtimes\": [{\"language\": \"\", \"version\": \"1\", \"path\": \"p\"}]}",
                "runtimes[0].language", NULL);
    expect_fail("{\"runtimes\": [{\"language\": \"abcdefghijabcdefghijabcdefghijabc\", "
                "\"version\": \"1\", \"path\": \"p\"}]}",
                "runtimes[0].language", NULL);
    expect_fail("{\"runtimes\": [{\"language\": \"c\", \"version\": \"\", \"path\": \"p\"}]}",
                "runtimes[0].version", NULL);
    expect_fail("{\"runtimes\": [{\"language\": \"c\", "
                "\"version\": \"123456789012345678901234567890123\", \"path\": \"p\"}]}",
                "runtimes[0].version", NULL);
    expect_fail("{\"runtimes\": [{\"language\": \"c\", \"version\": \"1\", \"path\": \"\"}]}",
                "runtimes[0].path", NULL);
    expect_fail("{\"runtimes\": {}}", "runtimes", "expected array, got object");
    expect_fail("{\"runtimes\": [\"c\"]}", "runtimes[0]", "expected object, got string");
    expect_fail("{\"register\": {\"timeout_ms\": 9}}", "register.timeout_ms",
                "out of range 10..600000");
    expect_fail("{\"register\": {\"retry_max_ms\": 600001}}", "register.retry_max_ms", NULL);
    expect_fail("{\"reg\": {}}", "reg", "unknown key");
    expect_fail("{\"bus\": {\"endpoint\": \"tcp://127.0.0.1:1\"}}", "bus.endpoint", "unknown key");
    expect_fail("{\"bus\": {\"sndhwm\": 0}}", "bus.sndhwm", "out of range 1..1000000");
    expect_fail("{\"log\": {\"level\": \"INFO\"}}", "log.level", NULL);
}

static void test_boundaries_accepted(void **state)
{
    (void)state;
    hb_config_t c;
    plat_cfg_error_t err;
    assert_int_equal(load("{\"name\": \"a0123456789012345678901234567890123456789012345678901234"
                          "56789012\", \"runtimes\": [{\"language\": \"abcdefghijabcdefghijabcd"
                          "efghijab\", \"version\": \"12345678901234567890123456789012\", "
                          "\"path\": \"p\"}]}",
                          &c, &err),
                     0);
    assert_int_equal(strlen(c.name), 64);
    assert_int_equal(strlen(c.runtimes[0].language), 32);
    assert_int_equal(strlen(c.runtimes[0].version), 32);
    hb_config_free(&c);
    assert_int_equal(load("{\"name\": \"0\", \"runtimes\": []}", &c, &err), 0);
    assert_int_equal(c.n_runtimes, 0);
    hb_config_free(&c);
}

static void test_missing_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/nope.json", g_dir);
    hb_config_t c;
    plat_cfg_error_t err;
    assert_int_equal(hb_config_load(path, &c, &err), -ENOENT);
    assert_true(is_zero(&c));
    char buf[600], want[600];
    plat_cfg_error_format(&err, buf, sizeof buf);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    assert_string_equal(buf, want);
}

static void check_docs(const plat_cfg_field_t *table, const char *parent)
{
    for (const plat_cfg_field_t *f = table; f->key; f++) {
        if (!f->doc || !f->doc[0])
            fail_msg("%s%s has no doc", parent, f->key);
        if (f->children)
            check_docs(f->children, f->key);
    }
}

static void test_table_documented(void **state)
{
    (void)state;
    check_docs(hb_config_table, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_object_gives_defaults),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_shipped_example),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_boundaries_accepted),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_table_documented),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
