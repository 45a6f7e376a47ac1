/* The Python plugin host (pluginhost/python, docs/python-host.md) with the
 * real platformd and hostbootd, where it differs from the C host or needs
 * its own proof (the shared lifecycle is test_it_lifecycle run with the
 * "python" runtime):
 *  a) an exception in a hook is that action's error (500 action_failed, the
 *     exception named in last_error) and its Python traceback, frames and
 *     all, is in the host's log; an exception in on_event fails the invoke;
 *  b) a start hook that never returns: the action answers 504 at the
 *     action timeout and its host is killed (the instance failed), while
 *     the host kept answering pings meanwhile (busy, not lost);
 *  c) examples/notes-py keeps rows in its DB (the DB resource through
 *     ctx.db_exec): a row written in one invoke is read in another, and
 *     survives the host (stop/start on a new host) and a platformd restart;
 *  d) hostbootd refuses a language it has no runtime for, naming it. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "plat/plat.h"

#ifndef EXAMPLES_DIR
#error "EXAMPLES_DIR (the built example packages) must be defined"
#endif
#ifndef PYPLUGINS_DIR
#error "PYPLUGINS_DIR (tests/integration/pyplugins) must be defined"
#endif

#define HB_INTERVAL_MS 200
#define HB_MISS 5
#define ACTION_DEADLINE_MS 30000

/* ---- helpers -------------------------------------------------------------- */

static void show(const char *what, int st, json_t *body)
{
    char *dump = body ? json_dumps(body, JSON_COMPACT) : NULL;
    fprintf(stderr, "%s: %d %s\n", what, st, dump ? dump : "(no JSON)");
    free(dump);
}

typedef struct {
    it_proc_t *platformd;
    it_proc_t *hostbootd;
    const char *pd_cfg;
} daemons_t;

/* platformd (`plugins`, stolen, may be NULL: its "plugins" object) and
 * hostbootd "itest" (with the python runtime, from the harness), waited for. */
static void start_daemons(it_env_t *env, daemons_t *d, json_t *plugins)
{
    memset(d, 0, sizeof *d);
    json_t *extra = json_pack("{s:{s:i, s:i}}", "hosts", "ready_timeout_ms", ACTION_DEADLINE_MS,
                              "exited_keep_ms", 3600000);
    assert_non_null(extra);
    if (plugins)
        assert_int_equal(json_object_set_new(extra, "plugins", plugins), 0);
    d->pd_cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, extra);
    json_decref(extra);
    d->platformd = it_start_platformd(env, d->pd_cfg);
    d->hostbootd = it_start_hostbootd(env, it_hostbootd_config(env, IT_HOSTBOOT_NAME, NULL));
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_match_t hb = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &hb, IT_DEADLINE_MS,
                 IT_HOSTBOOT_ID " listed ready");
}

static void register_package(it_env_t *env, const char *path, const char *id)
{
    json_t *body = it_register_package(env, path, id);
    IT_CHECK(env, strcmp(it_json_str(body, "package.language"), "python") == 0,
             "package language python (got %s)", it_json_str(body, "package.language"));
    json_decref(body);
}

/* Install `plugin` 1.0.0 with `config` (borrowed, may be NULL); uuid into
 * uuid[64]. */
static void install(it_env_t *env, const char *plugin, json_t *config, char uuid[64])
{
    json_t *req = json_pack("{s:s, s:s, s:s}", "plugin", plugin, "version", "1.0.0", "org", "py");
    if (config)
        json_object_set(req, "config", config);
    json_t *body = NULL;
    int st = it_http_post(env, "/api/v1/instances", req, &body);
    json_decref(req);
    if (st != 201)
        show("POST /api/v1/instances", st, body);
    IT_CHECK(env, st == 201, "install %s: 201 (got %d)", plugin, st);
    snprintf(uuid, 64, "%s", it_json_str(body, "instance.uuid"));
    IT_CHECK(env, plat_uuid_valid(uuid), "instance uuid %s", uuid);
    json_decref(body);
}

/* POST /api/v1/instances/<uuid>/<action> {}: the status, *resp the body. */
static int act(it_env_t *env, const char *uuid, const char *action, json_t **resp)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s/%s", uuid, action);
    json_t *empty = json_object();
    int st = it_http_post(env, path, empty, resp);
    json_decref(empty);
    return st;
}

/* An action that must answer 200 with the instance in `state`; returns the
 * instance's host (static storage). */
static const char *act_ok(it_env_t *env, const char *uuid, const char *action, const char *state)
{
    static char host[64];
    json_t *body = NULL;
    int st = act(env, uuid, action, &body);
    if (st != 200)
        show(action, st, body);
    IT_CHECK(env, st == 200, "%s %s: 200 (got %d)", action, uuid, st);
    IT_CHECK(env, strcmp(it_json_str(body, "instance.state"), state) == 0, "%s: state %s (got %s)",
             action, state, it_json_str(body, "instance.state"));
    snprintf(host, sizeof host, "%s", it_json_str(body, "instance.host"));
    json_decref(body);
    return host;
}

/* ---- invoke with a body ------------------------------------------------------ */

/* POST /api/v1/instances/<uuid>/invoke?path=<p> with `payload` as a text
 * body; the HTTP status (negative errno without a response), the body into
 * out. */
static int invoke(it_env_t *env, const char *uuid, const char *p, const char *payload, char *out,
                  size_t size)
{
    char path[256], *body = NULL;
    snprintf(path, sizeof path, "/api/v1/instances/%s/invoke?path=%s", uuid, p);
    int st = it_http_raw(env, "POST", path, payload, strlen(payload), "text/plain", &body, NULL);
    snprintf(out, size, "%s", body);
    free(body);
    return st;
}

static void invoke_expect(it_env_t *env, const char *uuid, const char *p, const char *payload,
                          int want_status, const char *want)
{
    char out[2048];
    int st = invoke(env, uuid, p, payload, out, sizeof out);
    IT_CHECK(env, st == want_status, "invoke %s: %d (got %d: %s)", p, want_status, st, out);
    IT_CHECK(env, strcmp(out, want) == 0, "invoke %s answers %s (got %s)", p, want, out);
}

/* ---- host logs --------------------------------------------------------------- */

/* Every host log of the env, concatenated (malloc'd). */
static char *all_host_logs(it_env_t *env)
{
    char dir[IT_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s/hosts", it_dir(env), IT_HOSTBOOT_LOG_DIR);
    size_t len = 0;
    char *all = calloc(1, 1);
    assert_non_null(all);
    DIR *d = opendir(dir);
    IT_CHECK(env, d != NULL, "host log dir %s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[IT_PATH_MAX + 400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
            char *na = realloc(all, len + n + 1);
            assert_non_null(na);
            all = na;
            memcpy(all + len, buf, n);
            len += n;
            all[len] = 0;
        }
        fclose(f);
    }
    closedir(d);
    return all;
}

/* Wait until some host log holds every (NULL-ended) needle: hostbootd
 * writes host output as it reads it. */
static void wait_host_log(it_env_t *env, ...)
{
    const char *needles[8];
    size_t n = 0;
    va_list ap;
    va_start(ap, env);
    for (const char *s = va_arg(ap, const char *); s && n < 8; s = va_arg(ap, const char *))
        needles[n++] = s;
    va_end(ap);
    uint64_t t0 = it_now_ms();
    for (;;) {
        char *all = all_host_logs(env);
        size_t found = 0;
        while (found < n && strstr(all, needles[found]))
            found++;
        if (found == n) {
            free(all);
            return;
        }
        if (it_now_ms() - t0 > IT_DEADLINE_MS) {
            fprintf(stderr, "---- host logs ----\n%s\n", all);
            free(all);
            it_fail(env, "no host log holds \"%s\"", needles[found]);
        }
        free(all);
        it_http_get(env, "/healthz", NULL); /* a pause that also checks the platform */
    }
}

/* ---- a) exceptions ----------------------------------------------------------- */

static void test_hook_exception_is_the_actions_error(void **state)
{
    it_env_t *env = *state;
    daemons_t d;
    start_daemons(env, &d, NULL);
    char path[IT_PATH_MAX];
    snprintf(path, sizeof path, "%s/raising", PYPLUGINS_DIR);
    register_package(env, path, "raising-py");

    char uuid[64];
    json_t *config = json_pack("{s:[s]}", "raise_in", "enable");
    install(env, "raising-py", config, uuid);
    json_decref(config);

    json_t *body = NULL;
    int st = act(env, uuid, "enable", &body);
    if (st != 500)
        show("enable", st, body);
    IT_CHECK(env, st == 500, "enable raising ValueError: 500 (got %d)", st);
    IT_CHECK(env, strcmp(it_json_str(body, "error.code"), "action_failed") == 0,
             "error action_failed (got %s)", it_json_str(body, "error.code"));
    const char *msg = it_json_str(body, "error.message");
    print_message("enable failed: %s\n", msg);
    IT_CHECK(env, strstr(msg, "ValueError") && strstr(msg, "shelf 7 is missing"),
             "the error names the exception: %s", msg);
    json_decref(body);
    json_t *inst = it_get_instance(env, uuid);
    IT_CHECK(env, strstr(it_json_str(inst, "last_error"), "ValueError: inventory enable refused"),
             "last_error holds the exception: %s", it_json_str(inst, "last_error"));
    IT_CHECK(env, strcmp(it_json_str(inst, "state"), "enabled") != 0, "not enabled (%s)",
             it_json_str(inst, "state"));
    json_decref(inst);
    /* The whole traceback, innermost frame included, in the host's log. */
    wait_host_log(env, "Traceback (most recent call last):", "in enable", "in _maybe_raise",
                  "in _check_inventory", "ValueError: inventory enable refused: shelf 7 is missing",
                  NULL);

    /* A hook that does not raise works as usual on the same package. */
    char ok_uuid[64];
    install(env, "raising-py", NULL, ok_uuid);
    act_ok(env, ok_uuid, "enable", "enabled");
    act_ok(env, ok_uuid, "start", "running");
    invoke_expect(env, ok_uuid, "/x", "", 200, "fine");
    /* An exception in on_event fails that invoke only. */
    char out[1024];
    st = invoke(env, ok_uuid, "/raise", "", out, sizeof out);
    print_message("invoke /raise: %d %s\n", st, out);
    IT_CHECK(env, st >= 500 && st <= 599, "invoke raising KeyError: 5xx (got %d: %s)", st, out);
    IT_CHECK(env, strstr(out, "KeyError"), "the answer names the exception: %s", out);
    wait_host_log(env, "KeyError: 'no such shelf'", NULL);
    invoke_expect(env, ok_uuid, "/x", "", 200, "fine");
}

/* ---- b) a hook that never returns --------------------------------------------- */

static void test_hook_never_returns_host_killed(void **state)
{
    it_env_t *env = *state;
    daemons_t d;
    start_daemons(env, &d, json_pack("{s:i}", "action_timeout_ms", 1500));
    char path[IT_PATH_MAX];
    snprintf(path, sizeof path, "%s/hanging", PYPLUGINS_DIR);
    register_package(env, path, "hanging-py");
    char uuid[64];
    install(env, "hanging-py", NULL, uuid);
    char host[64];
    snprintf(host, sizeof host, "%s", act_ok(env, uuid, "enable", "enabled"));
    IT_CHECK(env, host[0], "enable left the instance on a host");
    char hpath[160];
    snprintf(hpath, sizeof hpath, "/api/v1/hosts/%s", host);
    json_t *h = it_get_json(env, hpath);
    pid_t pid = (pid_t)it_json_int(h, "host.pid", 0);
    IT_CHECK(env, strcmp(it_json_str(h, "host.language"), "python") == 0, "a python host (%s)",
             it_json_str(h, "host.language"));
    json_decref(h);
    IT_CHECK(env, pid > 0 && kill(pid, 0) == 0, "host pid %d alive", (int)pid);

    uint64_t t0 = it_now_ms();
    json_t *body = NULL;
    int st = act(env, uuid, "start", &body);
    uint64_t took = it_now_ms() - t0;
    if (st != 504)
        show("start hanging-py", st, body);
    print_message("never-returning start answered %d after %llu ms\n", st,
                  (unsigned long long)took);
    IT_CHECK(env, st == 504, "start never returning: 504 (got %d)", st);
    IT_CHECK(env, strcmp(it_json_str(body, "error.code"), "timeout") == 0, "error timeout (%s)",
             it_json_str(body, "error.code"));
    IT_CHECK(env, took >= 1400, "answered at the 1500 ms timeout, not before (%llu ms)",
             (unsigned long long)took);
    json_decref(body);

    /* The host is killed (it cannot leave the hook: SIGKILL after the grace
     * period), and the instance is failed. */
    h = it_wait_host_state(env, host, "exited", ACTION_DEADLINE_MS, NULL);
    print_message("hanging host exit: status %lld signal %lld\n",
                  (long long)it_json_int(h, "exit.status", -1),
                  (long long)it_json_int(h, "exit.signal", -1));
    json_decref(h);
    IT_CHECK(env, kill(pid, 0) != 0, "the host pid %d is gone", (int)pid);
    json_t *inst = it_get_instance(env, uuid);
    IT_CHECK(env, strcmp(it_json_str(inst, "state"), "failed") == 0, "instance failed (%s)",
             it_json_str(inst, "state"));
    IT_CHECK(env, strstr(it_json_str(inst, "last_error"), "1500") != NULL,
             "last_error names the timeout: %s", it_json_str(inst, "last_error"));
    json_decref(inst);
    /* While the hook hung the host answered pings: it was never lost. */
    wait_host_log(env, "start: waiting forever", NULL);
    char *logs = all_host_logs(env);
    IT_CHECK(env, strstr(logs, "platform silent") == NULL, "the host never lost the platform");
    free(logs);
    it_wait_healthy(env, IT_DEADLINE_MS);
}

/* ---- c) the DB example ---------------------------------------------------------- */

/* Poll until the instance is running on a host and not busy. */
static void wait_running(it_env_t *env, const char *uuid)
{
    uint64_t t0 = it_now_ms();
    for (;;) {
        json_t *inst = it_get_instance(env, uuid);
        bool up = strcmp(it_json_str(inst, "state"), "running") == 0 &&
                  json_is_string(json_object_get(inst, "host")) &&
                  json_is_false(json_object_get(inst, "busy"));
        json_decref(inst);
        if (up)
            return;
        IT_CHECK(env, it_now_ms() - t0 < ACTION_DEADLINE_MS, "%s running again", uuid);
        it_http_get(env, "/healthz", NULL);
    }
}

static void test_notes_db_survives_hosts_and_restart(void **state)
{
    it_env_t *env = *state;
    daemons_t d;
    start_daemons(env, &d, NULL);
    char path[IT_PATH_MAX];
    snprintf(path, sizeof path, "%s/notes-py", EXAMPLES_DIR);
    register_package(env, path, "notes-py");
    char uuid[64], other[64];
    install(env, "notes-py", NULL, uuid);
    install(env, "notes-py", NULL, other);
    act_ok(env, uuid, "enable", "enabled");
    char host1[64];
    snprintf(host1, sizeof host1, "%s", act_ok(env, uuid, "start", "running"));

    invoke_expect(env, uuid, "/add", "buy milk", 201, "{\"id\": 1}");
    invoke_expect(env, uuid, "/get/1", "", 200, "buy milk");
    invoke_expect(env, uuid, "/add", "call Ada", 201, "{\"id\": 2}");
    invoke_expect(env, uuid, "/count", "", 200, "{\"count\": 2}");
    invoke_expect(env, uuid, "/get/3", "", 404, "{\"error\": \"no such note\"}");

    /* stop kills the highPerformance host; start runs on a new one. */
    act_ok(env, uuid, "stop", "stopped");
    char host2[64];
    snprintf(host2, sizeof host2, "%s", act_ok(env, uuid, "start", "running"));
    IT_CHECK(env, host2[0] && strcmp(host1, host2) != 0, "a new host (%s, was %s)", host2, host1);
    invoke_expect(env, uuid, "/get/2", "", 200, "call Ada");
    invoke_expect(env, uuid, "/delete/1", "", 200, "{\"deleted\": 1}");
    invoke_expect(env, uuid, "/count", "", 200, "{\"count\": 1}");

    /* Each instance has its own database. */
    act_ok(env, other, "enable", "enabled");
    act_ok(env, other, "start", "running");
    invoke_expect(env, other, "/count", "", 200, "{\"count\": 0}");
    invoke_expect(env, other, "/add", "other's note", 201, "{\"id\": 1}");
    invoke_expect(env, uuid, "/get/1", "", 404, "{\"error\": \"no such note\"}");

    /* platformd kill -9 and restart: the rows are still there. */
    json_t *status = it_get_json(env, "/api/v1/status");
    char old_boot[64];
    snprintf(old_boot, sizeof old_boot, "%s", it_json_str(status, "boot_id"));
    json_decref(status);
    it_kill9(d.platformd);
    d.platformd = it_start_platformd(env, d.pd_cfg);
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_match_t boot = {.not_boot_id = old_boot};
    it_wait_json(env, "/api/v1/status", it_pred_status_boot_changed, &boot, IT_DEADLINE_MS,
                 "a new platform boot");
    /* Both come back running (on hosts that re-registered with the new
     * platform boot); until then an invoke may find them unreachable. */
    char out[1024];
    int st = 0;
    const char *both[2] = {uuid, other};
    const char *probe[2] = {"/get/2", "/get/1"};
    const char *want[2] = {"call Ada", "other's note"};
    for (int i = 0; i < 2; i++) {
        wait_running(env, both[i]);
        uint64_t t0 = it_now_ms();
        while ((st = invoke(env, both[i], probe[i], "", out, sizeof out)) != 200 &&
               it_now_ms() - t0 < ACTION_DEADLINE_MS)
            it_http_get(env, "/healthz", NULL);
        IT_CHECK(env, st == 200 && strcmp(out, want[i]) == 0,
                 "the row survived the platform restart (%d %s)", st, out);
    }

    /* uninstall: gone with its instance. */
    act_ok(env, uuid, "stop", "stopped");
    act_ok(env, uuid, "disable", "disabled");
    json_t *body = NULL;
    st = act(env, uuid, "uninstall", &body);
    IT_CHECK(env, st == 200 && json_is_true(json_object_get(body, "removed")),
             "uninstall: 200 removed (got %d)", st);
    json_decref(body);
}

/* ---- d) a language without a runtime ------------------------------------------- */

static void test_unknown_language_is_a_clear_error(void **state)
{
    it_env_t *env = *state;
    daemons_t d;
    start_daemons(env, &d, NULL);
    char dir[IT_PATH_MAX + 16], file[IT_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/ruby-pkg", it_dir(env));
    IT_CHECK(env, mkdir(dir, 0750) == 0, "mkdir %s", dir);
    snprintf(file, sizeof file, "%s/plugin.rb", dir);
    FILE *f = fopen(file, "w");
    IT_CHECK(env, f != NULL, "create %s", file);
    fputs("# nothing\n", f);
    fclose(f);
    json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", "rubyish", "version", "1.0.0",
                          "language", "ruby", "runtime_version", "3", "entry", "plugin.rb");
    snprintf(file, sizeof file, "%s/manifest.json", dir);
    IT_CHECK(env, json_dump_file(m, file, 0) == 0, "write %s", file);
    json_decref(m);
    json_t *req = json_pack("{s:s}", "path", dir);
    json_t *body = NULL;
    int st = it_http_post(env, "/api/v1/packages", req, &body);
    json_decref(req);
    IT_CHECK(env, st == 201, "a package of any valid language registers (got %d)", st);
    json_decref(body);
    req = json_pack("{s:s, s:s, s:s}", "plugin", "rubyish", "version", "1.0.0", "org", "py");
    st = it_http_post(env, "/api/v1/instances", req, &body);
    json_decref(req);
    char *dump = body ? json_dumps(body, JSON_COMPACT) : NULL;
    print_message("install of a ruby plugin: %d %s\n", st, dump ? dump : "");
    IT_CHECK(env, st >= 400, "install without a runtime fails (got %d)", st);
    IT_CHECK(env, dump && strstr(dump, "ruby"), "the error names the language: %s",
             dump ? dump : "");
    free(dump);
    json_decref(body);
}

int main(void)
{
    const char *filter = getenv("PLAT_IT_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hook_exception_is_the_actions_error, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_hook_never_returns_host_killed, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_notes_db_survives_hosts_and_restart, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_language_is_a_clear_error, it_setup,
                                        it_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
