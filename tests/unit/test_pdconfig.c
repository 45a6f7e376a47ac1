/* platformd's config table: defaults, a full file, and refusals naming the key. */
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

#include "pdconfig.h"

static char g_dir[64];
static int g_nfile;

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/plat-test-pdconfig-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char path[128];
    for (int i = 0; i < g_nfile; i++) {
        snprintf(path, sizeof path, "%s/p%d.json", g_dir, i);
        unlink(path);
    }
    return rmdir(g_dir);
}

static void write_cfg(char *path, size_t size, const char *text)
{
    snprintf(path, size, "%s/p%d.json", g_dir, g_nfile++);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

static bool is_zero(const pd_config_t *c)
{
    static const pd_config_t zero;
    return memcmp(c, &zero, sizeof zero) == 0;
}

static int load(const char *text, pd_config_t *c, plat_cfg_error_t *err)
{
    char path[128];
    write_cfg(path, sizeof path, text);
    int r = pd_config_load(path, c, err);
    if (r < 0) {
        assert_true(is_zero(c));
        assert_string_equal(err->file, path);
    }
    return r;
}

static void expect_fail(const char *text, const char *key, const char *reason)
{
    pd_config_t c;
    plat_cfg_error_t err;
    int r = load(text, &c, &err);
    if (r != -EINVAL)
        fail_msg("'%s': got %d, expected -EINVAL", text, r);
    assert_string_equal(err.key, key);
    if (reason)
        assert_string_equal(err.reason, reason);
}

static void test_empty_object_gives_defaults(void **state)
{
    (void)state;
    pd_config_t c;
    plat_cfg_error_t err;
    assert_int_equal(load("{}", &c, &err), 0);
    assert_string_equal(c.bus.endpoint, "tcp://127.0.0.1:7700");
    assert_int_equal(c.bus.max_msg_size, 4194304);
    assert_int_equal(c.bus.sndhwm, 10000);
    assert_int_equal(c.bus.rcvhwm, 10000);
    assert_int_equal(c.heartbeat.interval_ms, 1000);
    assert_int_equal(c.heartbeat.miss, 3);
    assert_string_equal(c.http.address, "127.0.0.1");
    assert_int_equal(c.http.port, 7780);
    assert_string_equal(c.log.level, "info");
    pd_config_free(&c);
    assert_true(is_zero(&c));
    pd_config_free(NULL);
}

static void test_full_file(void **state)
{
    (void)state;
    pd_config_t c;
    plat_cfg_error_t err;
    assert_int_equal(load("{\n"
                          "  \"bus\": {\"endpoint\": \"tcp://127.0.0.1:17700\",\n"
                          "          \"max_msg_size\": 1048576, \"sndhwm\": 5, \"rcvhwm\": 6},\n"
                          "  \"heartbeat\": {\"interval_ms\": 250, \"miss\": 5},\n"
                          "  \"http\": {\"address\": \"::1\", \"port\": 18080},\n"
                          "  \"log\": {\"level\": \"debug\"}\n"
                          "}\n",
                          &c, &err),
                     0);
    assert_string_equal(c.bus.endpoint, "tcp://127.0.0.1:17700");
    assert_int_equal(c.bus.max_msg_size, 1048576);
    assert_int_equal(c.bus.sndhwm, 5);
    assert_int_equal(c.bus.rcvhwm, 6);
    assert_int_equal(c.heartbeat.interval_ms, 250);
    assert_int_equal(c.heartbeat.miss, 5);
    assert_string_equal(c.http.address, "::1");
    assert_int_equal(c.http.port, 18080);
    assert_string_equal(c.log.level, "debug");
    pd_config_free(&c);
}

/* config/platformd.json, found from this source file's path (CMake compiles
 * with absolute paths); false when it cannot be located. */
static bool example_path(char *buf, size_t size)
{
    const char *tail = strstr(__FILE__, "tests/unit/test_pdconfig.c");
    if (!tail || __FILE__[0] != '/')
        return false;
    snprintf(buf, size, "%.*sconfig/platformd.json", (int)(tail - __FILE__), __FILE__);
    return access(buf, R_OK) == 0;
}

/* The documented example file loads and states exactly the table's defaults. */
static void test_shipped_example(void **state)
{
    (void)state;
    char path[1024];
    if (!example_path(path, sizeof path))
        skip();
    pd_config_t ex, def;
    plat_cfg_error_t err;
    int r = pd_config_load(path, &ex, &err);
    if (r != 0) {
        char buf[600];
        plat_cfg_error_format(&err, buf, sizeof buf);
        fail_msg("%s", buf);
    }
    assert_int_equal(load("{}", &def, &err), 0);
    assert_string_equal(ex.bus.endpoint, def.bus.endpoint);
    assert_int_equal(ex.bus.max_msg_size, def.bus.max_msg_size);
    assert_int_equal(ex.bus.sndhwm, def.bus.sndhwm);
    assert_int_equal(ex.bus.rcvhwm, def.bus.rcvhwm);
    assert_int_equal(ex.heartbeat.interval_ms, def.heartbeat.interval_ms);
    assert_int_equal(ex.heartbeat.miss, def.heartbeat.miss);
    assert_string_equal(ex.http.address, def.http.address);
    assert_int_equal(ex.http.port, def.http.port);
    assert_string_equal(ex.log.level, def.log.level);
    pd_config_free(&ex);
    pd_config_free(&def);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_fail("{\"bus\": {\"endpoint\": \"tcp://0.0.0.0:7700\"}}", "bus.endpoint",
                "must be a loopback tcp endpoint (tcp://127.0.0.1:PORT)");
    expect_fail("{\"bus\": {\"endpoint\": \"tcp://192.168.1.1:7700\"}}", "bus.endpoint", NULL);
    expect_fail("{\"http\": {\"address\": \"0.0.0.0\"}}", "http.address", NULL);
    expect_fail("{\"http\": {\"address\": \"10.1.2.3\"}}", "http.address", NULL);
    expect_fail("{\"http\": {\"port\": 0}}", "http.port", "out of range 1..65535");
    expect_fail("{\"http\": {\"port\": 65536}}", "http.port", "out of range 1..65535");
    expect_fail("{\"bus\": {\"max_msg_size\": 1023}}", "bus.max_msg_size",
                "out of range 1024..67108864");
    expect_fail("{\"bus\": {\"max_msg_size\": 67108865}}", "bus.max_msg_size", NULL);
    expect_fail("{\"bus\": {\"sndhwm\": 0}}", "bus.sndhwm", "out of range 1..1000000");
    expect_fail("{\"bus\": {\"rcvhwm\": 1000001}}", "bus.rcvhwm", "out of range 1..1000000");
    expect_fail("{\"heartbeat\": {\"interval_ms\": 9}}", "heartbeat.interval_ms",
                "out of range 10..600000");
    expect_fail("{\"heartbeat\": {\"miss\": 101}}", "heartbeat.miss", "out of range 1..100");
    expect_fail("{\"log\": {\"level\": \"verbose\"}}", "log.level", NULL);
    expect_fail("{\"bus\": {\"bogus_key\": 1}}", "bus.bogus_key", "unknown key");
    expect_fail("{\"bogus\": {}}", "bogus", "unknown key");
    expect_fail("{\"http\": {\"port\": \"80\"}}", "http.port", "expected integer, got string");
    expect_fail("[]", "", "expected object, got array");
}

static void test_missing_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/nope.json", g_dir);
    pd_config_t c;
    plat_cfg_error_t err;
    assert_int_equal(pd_config_load(path, &c, &err), -ENOENT);
    assert_true(is_zero(&c));
    assert_string_equal(err.file, path);
}

static void test_table_documented(void **state)
{
    (void)state;
    for (const plat_cfg_field_t *f = pd_config_table; f->key; f++) {
        assert_non_null(f->doc);
        assert_non_null(f->children);
        for (const plat_cfg_field_t *ch = f->children; ch->key; ch++)
            if (!ch->doc || !ch->doc[0])
                fail_msg("%s.%s has no doc", f->key, ch->key);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_object_gives_defaults),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_shipped_example),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_table_documented),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
