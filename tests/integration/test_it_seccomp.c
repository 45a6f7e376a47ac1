/* The hosts' seccomp filter end to end (docs/security-sandbox.md): real
 * platformd + hostbootd + pluginhost, the test plugin "badsys"
 * (plugin_badsys.c) driven through the HTTP API:
 *  a) default config: an invoke that makes the plugin call mount(2) gets
 *     its host killed by SIGSYS, and the platform reports the host "exited"
 *     with signal 31; the instance fails; the platform keeps serving;
 *  b) hosts.seccomp.enabled = false: the same call returns an error to the
 *     plugin and the host lives on (so (a) was the filter's doing);
 *  c) a deny list naming a system call that does not exist: hostbootd
 *     refuses its config (exit 78) and names it. */
#include <curl/curl.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "plat/plat.h"

#ifndef BADSYS_PACKAGE_DIR
#error "BADSYS_PACKAGE_DIR (the built badsys package) must be defined"
#endif

#define HB_INTERVAL_MS 200
#define HB_MISS 5
#define ACTION_DEADLINE_MS 30000

/* platformd, and hostbootd "itest" with `hb_extra` (borrowed, may be NULL)
 * merged into its config; both waited for. */
static void start_daemons(it_env_t *env, json_t *hb_extra)
{
    json_t *extra = json_pack("{s:{s:i, s:i}, s:{s:i}}", "hosts", "ready_timeout_ms",
                              ACTION_DEADLINE_MS, "exited_keep_ms", 3600000, "plugins",
                              "restart_initial_ms", 0);
    assert_non_null(extra);
    const char *pd_cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, extra);
    json_decref(extra);
    it_start_platformd(env, pd_cfg);
    it_start_hostbootd(env, it_hostbootd_config(env, IT_HOSTBOOT_NAME, hb_extra));
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_match_t hb = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &hb, IT_DEADLINE_MS,
                 IT_HOSTBOOT_ID " listed ready");
}

/* Register badsys, install it, enable and start it: the instance uuid into
 * uuid[64], its host into host[64]. */
static void badsys_running(it_env_t *env, char uuid[64], char host[64])
{
    json_decref(it_post_ok(env, "/api/v1/packages", json_pack("{s:s}", "path", BADSYS_PACKAGE_DIR),
                        201));
    json_t *body = it_post_ok(env, "/api/v1/instances",
                           json_pack("{s:s, s:s, s:s}", "plugin", "badsys", "version", "1.0.0",
                                     "org", "acme"),
                           201);
    snprintf(uuid, 64, "%s", it_json_str(body, "instance.uuid"));
    json_decref(body);
    IT_CHECK(env, plat_uuid_valid(uuid), "instance uuid (%s)", uuid);
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s/enable", uuid);
    json_decref(it_post_ok(env, path, json_object(), 200));
    snprintf(path, sizeof path, "/api/v1/instances/%s/start", uuid);
    body = it_post_ok(env, path, json_object(), 200);
    IT_CHECK(env, strcmp(it_json_str(body, "instance.state"), "running") == 0, "running (%s)",
             it_json_str(body, "instance.state"));
    snprintf(host, 64, "%s", it_json_str(body, "instance.host"));
    json_decref(body);
    IT_CHECK(env, host[0], "the running instance has a host");
}

/* POST /api/v1/instances/<uuid>/invoke?path=<p>; the HTTP status (negative
 * errno without a response), the body into out. */
static int invoke(it_env_t *env, const char *uuid, const char *p, char *out, size_t size)
{
    char path[256], *body = NULL;
    snprintf(path, sizeof path, "/api/v1/instances/%s/invoke?path=%s", uuid, p);
    int st = it_http_raw(env, "POST", path, "x", 1, "text/plain", &body, NULL);
    snprintf(out, size, "%s", body);
    free(body);
    return st;
}

static json_t *get_host(it_env_t *env, const char *id)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/hosts/%s", id);
    json_t *body = it_get_json(env, path);
    json_t *h = json_object_get(body, "host");
    IT_CHECK(env, json_is_object(h), "GET %s holds the host", path);
    json_incref(h);
    json_decref(body);
    return h;
}

static bool pred_instance_failed(json_t *body, void *arg)
{
    (void)arg;
    return strcmp(it_json_str(body, "instance.state"), "failed") == 0;
}

/* ---- a) ------------------------------------------------------------------ */

static void test_denied_syscall_kills_host(void **state)
{
    it_env_t *env = *state;
    start_daemons(env, NULL); /* hosts.seccomp: the default, enabled */
    char uuid[64], host[64], out[256];
    badsys_running(env, uuid, host);
    int st = invoke(env, uuid, "/ok", out, sizeof out);
    IT_CHECK(env, st == 200 && strcmp(out, "ok") == 0, "invoke /ok: 200 ok (got %d %s)", st, out);
    json_t *h = get_host(env, host);
    pid_t pid = (pid_t)it_json_int(h, "pid", 0);
    json_decref(h);
    IT_CHECK(env, pid > 0, "the host has a pid");

    st = invoke(env, uuid, "/mount", out, sizeof out);
    print_message("invoke /mount: %d %s\n", st, out);
    IT_CHECK(env, st >= 500 && st <= 599, "invoke /mount fails 5xx (got %d: %s)", st, out);
    IT_CHECK(env, strstr(out, "mount: ") == NULL, "the plugin never saw mount return (%s)", out);

    h = it_wait_host_state(env, host, "exited", ACTION_DEADLINE_MS, NULL);
    IT_CHECK(env, it_json_int(h, "exit.signal", -1) == SIGSYS,
             "the host was killed by SIGSYS (31): signal %lld status %lld",
             (long long)it_json_int(h, "exit.signal", -1),
             (long long)it_json_int(h, "exit.status", -1));
    json_decref(h);
    IT_CHECK(env, kill(pid, 0) != 0, "the killed host pid %d is gone", (int)pid);

    /* The instance failed (restarts are off), the platform serves on. */
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s", uuid);
    it_wait_json(env, path, pred_instance_failed, NULL, ACTION_DEADLINE_MS, "instance failed");
    it_wait_healthy(env, IT_DEADLINE_MS);
}

/* ---- b) ------------------------------------------------------------------ */

static void test_disabled_filter_lets_the_call_fail(void **state)
{
    it_env_t *env = *state;
    json_t *hb = json_pack("{s:{s:{s:b}}}", "hosts", "seccomp", "enabled", 0);
    start_daemons(env, hb);
    json_decref(hb);
    char uuid[64], host[64], out[256];
    badsys_running(env, uuid, host);
    int st = invoke(env, uuid, "/mount", out, sizeof out);
    print_message("invoke /mount without a filter: %d %s\n", st, out);
    IT_CHECK(env, st == 200 && strncmp(out, "mount: ", 7) == 0,
             "mount returned to the plugin: 200 \"mount: <error>\" (got %d %s)", st, out);
    json_t *h = get_host(env, host);
    IT_CHECK(env, strcmp(it_json_str(h, "state"), "ready") == 0, "the host is still ready (%s)",
             it_json_str(h, "state"));
    json_decref(h);
}

/* ---- c) ------------------------------------------------------------------ */

static void test_unknown_syscall_name_refused(void **state)
{
    it_env_t *env = *state;
    it_hostbootd_config_refused(env,
                                json_pack("{s:{s:{s:[s, s]}}}", "hosts", "seccomp", "deny",
                                          "ptrace", "no_such_syscall"),
                                "hosts.seccomp", "no_such_syscall", NULL);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_denied_syscall_kills_host, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_disabled_filter_lets_the_call_fail, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_syscall_name_refused, it_setup, it_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
