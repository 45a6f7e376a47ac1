/* Bad configuration and bad arguments: the daemons refuse to start with the
 * exit code sysexits.h gives for it (EX_CONFIG 78 for config files, EX_USAGE
 * 64 for the command line), in one log line that names the file, the key
 * path and — for a syntax error — the line and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "harness.h"
#include "plat/plat.h"

#define EX_USAGE_CODE 64
#define EXIT_WITHIN_MS 5000

static int setup(void **state)
{
    *state = it_new();
    return 0;
}

static int teardown(void **state)
{
    it_env_t *env = *state;
    it_destroy(&env);
    return 0;
}

static int count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *hit = strstr(line, needle);
        if (hit && hit < line + len)
            n++;
        line += len + (end ? 1 : 0);
    }
    return n;
}

/* The line holding `needle`, copied into buf ("" if none). */
static const char *line_with(const char *text, const char *needle, char *buf, size_t size)
{
    buf[0] = 0;
    const char *hit = strstr(text, needle);
    if (!hit)
        return buf;
    const char *start = hit;
    while (start > text && start[-1] != '\n')
        start--;
    const char *end = strchr(hit, '\n');
    size_t len = end ? (size_t)(end - start) : strlen(start);
    snprintf(buf, size, "%.*s", (int)(len < size - 1 ? len : size - 1), start);
    return buf;
}

/* Run a daemon that must refuse to start: exits by itself with `code`, and
 * its one "config error" line contains every string of `must` (NULL-ended). */
static void expect_refusal(it_env_t *env, it_proc_t *p, int code, const char *marker,
                           const char *const must[])
{
    int status = it_wait_exit(p, EXIT_WITHIN_MS);
    char *log = it_read_log(p);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != code) {
        fprintf(stderr, "%s log:\n%s\n", p->name, log);
        free(log);
        fail_msg("%s: status 0x%x, want exit %d", p->name, status, code);
    }
    if (marker) {
        int n = count_lines_with(log, marker);
        if (n != 1) {
            fprintf(stderr, "%s log:\n%s\n", p->name, log);
            free(log);
            fail_msg("%s: %d lines with \"%s\", want exactly one", p->name, n, marker);
        }
    }
    char line[1024];
    line_with(log, marker ? marker : must[0], line, sizeof line);
    for (size_t i = 0; must[i]; i++)
        if (!strstr(line, must[i])) {
            fprintf(stderr, "%s log:\n%s\n", p->name, log);
            free(log);
            fail_msg("%s: error line does not name \"%s\": %s", p->name, must[i], line);
        }
    print_message("%s refused (exit %d): %s\n", p->name, code, line);
    free(log);
    (void)env;
}

/* platformd with `json` as config: exit 78 naming the file and `key`. */
static void platformd_refuses(it_env_t *env, const char *name, const char *json, const char *key)
{
    const char *path = it_write_file(env, name, json);
    it_proc_t *p = it_start_platformd(env, path);
    char file_colon[IT_PATH_MAX + 2];
    snprintf(file_colon, sizeof file_colon, "%s:", path);
    const char *must[] = {file_colon, key, NULL};
    expect_refusal(env, p, PLAT_EX_CONFIG, "config error", must);
}

static void test_platformd_missing_file(void **state)
{
    it_env_t *env = *state;
    char path[IT_PATH_MAX];
    snprintf(path, sizeof path, "%s/does-not-exist.json", it_dir(env));
    it_proc_t *p = it_start_platformd(env, path);
    const char *must[] = {path, NULL};
    expect_refusal(env, p, PLAT_EX_CONFIG, "config error", must);
}

static void test_platformd_syntax_error(void **state)
{
    it_env_t *env = *state;
    const char *text = "{\n"
                       "  \"heartbeat\": {\n"
                       "    \"interval_ms\": 100,\n"
                       "    \"miss\": 3,\n"
                       "  }\n"
                       "}\n";
    const char *path = it_write_file(env, "syntax.json", text);
    /* Where jansson itself puts the error: the daemon must report that. */
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    assert_null(j);
    char where[IT_PATH_MAX + 32];
    snprintf(where, sizeof where, "%s:%d:%d", path, jerr.line, jerr.column);
    it_proc_t *p = it_start_platformd(env, path);
    const char *must[] = {where, NULL};
    expect_refusal(env, p, PLAT_EX_CONFIG, "config error", must);
}

static void test_platformd_unknown_keys(void **state)
{
    it_env_t *env = *state;
    platformd_refuses(env, "unknown-top.json", "{\"nonsense\": true}\n", "nonsense");
    platformd_refuses(env, "unknown-nested.json",
                      "{\"bus\": {\"endpoint\": \"tcp://127.0.0.1:1\", \"bogus_key\": 1}}\n",
                      "bus.bogus_key");
}

static void test_platformd_wrong_types(void **state)
{
    it_env_t *env = *state;
    platformd_refuses(env, "type-int.json", "{\"heartbeat\": {\"interval_ms\": \"fast\"}}\n",
                      "heartbeat.interval_ms");
    platformd_refuses(env, "type-string.json", "{\"http\": {\"address\": 127}}\n",
                      "http.address");
    platformd_refuses(env, "type-object.json", "{\"log\": \"info\"}\n", "log");
    platformd_refuses(env, "type-root.json", "[1, 2, 3]\n", "");
}

static void test_platformd_out_of_range(void **state)
{
    it_env_t *env = *state;
    platformd_refuses(env, "range-port.json", "{\"http\": {\"port\": 70000}}\n", "http.port");
    platformd_refuses(env, "range-level.json", "{\"log\": {\"level\": \"loud\"}}\n",
                      "log.level");
}

/* hostbootd config with one runtime entry `rt` (a JSON object text). */
static void hostbootd_refuses(it_env_t *env, const char *name, const char *runtimes,
                              const char *key)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"name\": \"itest\", \"platform\": {\"endpoint\": \"%s\"}, \"runtimes\": %s}\n",
             it_bus_endpoint(env), runtimes);
    const char *path = it_write_file(env, name, json);
    it_proc_t *p = it_start_hostbootd(env, path);
    char file_colon[IT_PATH_MAX + 2];
    snprintf(file_colon, sizeof file_colon, "%s:", path);
    const char *must[] = {file_colon, key, NULL};
    expect_refusal(env, p, PLAT_EX_CONFIG, "config error", must);
}

static void test_hostbootd_bad_runtime(void **state)
{
    it_env_t *env = *state;
    hostbootd_refuses(env, "rt-type.json",
                      "[{\"language\": \"c\", \"version\": \"1\", \"path\": 42}]",
                      "runtimes[0].path");
    hostbootd_refuses(env, "rt-unknown.json",
                      "[{\"language\": \"c\", \"version\": \"1\", \"path\": \"/bin/true\"},"
                      " {\"lang\": \"c\", \"version\": \"1\", \"path\": \"/bin/true\"}]",
                      "runtimes[1].lang");
    hostbootd_refuses(env, "rt-not-array.json", "{\"language\": \"c\"}", "runtimes");
}

static void test_hostbootd_missing_file_and_bad_name(void **state)
{
    it_env_t *env = *state;
    char path[IT_PATH_MAX];
    snprintf(path, sizeof path, "%s/nope.json", it_dir(env));
    it_proc_t *p = it_start_hostbootd(env, path);
    const char *must[] = {path, NULL};
    expect_refusal(env, p, PLAT_EX_CONFIG, "config error", must);

    char json[512];
    snprintf(json, sizeof json, "{\"name\": \"Not A Name!\", \"platform\": {\"endpoint\": \"%s\"}}\n",
             it_bus_endpoint(env));
    const char *bad = it_write_file(env, "bad-name.json", json);
    p = it_start_hostbootd(env, bad);
    char file_colon[IT_PATH_MAX + 2];
    snprintf(file_colon, sizeof file_colon, "%s:", bad);
    const char *must2[] = {file_colon, "name", NULL};
    expect_refusal(env, p, PLAT_EX_CONFIG, "config error", must2);
}

static void test_pluginhost_bad_host_id(void **state)
{
    it_env_t *env = *state;
    static const char *const bad_ids[] = {
        "host-not-a-uuid",
        "foo",
        "host-6F9619FF-8B86-D011-B42D-00C04FC964FF", /* UUIDs are lowercase */
        "hostboot-itest",                            /* not a host id at all */
    };
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        it_proc_t *p = it_start_pluginhost_dev(env, bad_ids[i]);
        const char *must[] = {"host-id", NULL};
        expect_refusal(env, p, EX_USAGE_CODE, NULL, must);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_platformd_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_platformd_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_platformd_unknown_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_platformd_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_platformd_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostbootd_bad_runtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostbootd_missing_file_and_bad_name, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pluginhost_bad_host_id, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
