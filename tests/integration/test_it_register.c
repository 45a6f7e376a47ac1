/* platformd + hostbootd + a --dev pluginhost: all three register within 1 s
 * of being spawned, the API lists them with the right fields, the status
 * counts add up, unknown routes answer 404 in the error shape, and SIGTERM
 * stops each of them with exit 0 and a clean (sanitizer-free) log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "plat/plat.h"

#define HB_INTERVAL_MS 200
#define HB_MISS 3
#define REGISTER_WITHIN_MS 1000

static int setup(void **state)
{
    it_env_t *env = it_new();
    it_set_strict_logs(env, true);
    *state = env;
    return 0;
}

static int teardown(void **state)
{
    it_env_t *env = *state;
    it_destroy(&env);
    return 0;
}

static void check_age(it_env_t *env, json_t *obj, const char *key, uint64_t max_ms)
{
    json_t *v = json_object_get(obj, key);
    IT_CHECK(env, json_is_integer(v), "%s must be an integer", key);
    IT_CHECK(env, json_integer_value(v) >= 0 && (uint64_t)json_integer_value(v) <= max_ms,
             "%s=%lld must be in [0, %llu]", key, (long long)json_integer_value(v),
             (unsigned long long)max_ms);
}

static void check_str(it_env_t *env, json_t *obj, const char *key, const char *want)
{
    json_t *v = json_object_get(obj, key);
    IT_CHECK(env, json_is_string(v), "%s must be a string", key);
    IT_CHECK(env, strcmp(json_string_value(v), want) == 0, "%s is \"%s\", want \"%s\"", key,
             json_string_value(v), want);
}

static void test_register_within_1s_and_listed(void **state)
{
    it_env_t *env = *state;
    it_suite_t s;
    it_suite_start(env, &s, HB_INTERVAL_MS, HB_MISS);

    /* The contract: everything is registered within 1 s of starting. */
    IT_CHECK(env, s.hostboot_ready_ms <= REGISTER_WITHIN_MS,
             "hostbootd registered after %llu ms", (unsigned long long)s.hostboot_ready_ms);
    IT_CHECK(env, s.host_ready_ms <= REGISTER_WITHIN_MS, "pluginhost registered after %llu ms",
             (unsigned long long)s.host_ready_ms);
    uint64_t since_spawn = it_now_ms() - s.t0;

    json_t *body = it_get_json(env, "/api/v1/hostboots");
    json_t *list = json_object_get(body, "hostboots");
    IT_CHECK(env, json_is_array(list) && json_array_size(list) == 1,
             "exactly one hostboot listed");
    json_t *hb = it_json_find(list, "id", IT_HOSTBOOT_ID);
    IT_CHECK(env, hb != NULL, "hostboot-itest listed");
    check_str(env, hb, "name", IT_HOSTBOOT_NAME);
    check_str(env, hb, "state", "ready");
    check_str(env, hb, "version", PLAT_VERSION);
    json_t *rts = json_object_get(hb, "runtimes");
    /* The harness's hostbootd offers the C runtime then the Python one,
     * reported in its config's order. */
    IT_CHECK(env, json_is_array(rts) && json_array_size(rts) == 2, "two runtimes");
    check_str(env, json_array_get(rts, 0), "language", "c");
    check_str(env, json_array_get(rts, 0), "version", "1");
    check_str(env, json_array_get(rts, 1), "language", "python");
    check_str(env, json_array_get(rts, 1), "version", "3");
    /* Liveness is kept by heartbeats: never older than the miss window. */
    check_age(env, hb, "last_heartbeat_age_ms", (uint64_t)HB_INTERVAL_MS * HB_MISS);
    check_age(env, hb, "registered_age_ms", since_spawn + 1000);
    json_t *owned = json_object_get(hb, "hosts");
    IT_CHECK(env, json_is_array(owned) && json_array_size(owned) == 0,
             "hostbootd spawned no host, so owns none (a dev host belongs to no hostboot)");
    json_decref(body);

    body = it_get_json(env, "/api/v1/hosts");
    list = json_object_get(body, "hosts");
    IT_CHECK(env, json_is_array(list) && json_array_size(list) == 1, "exactly one host listed");
    json_t *h = it_json_find(list, "id", s.host_id);
    IT_CHECK(env, h != NULL, "host %s listed", s.host_id);
    json_t *pid = json_object_get(h, "pid");
    IT_CHECK(env, json_is_integer(pid) && json_integer_value(pid) == s.pluginhost->pid,
             "host pid %lld, want the spawned pluginhost's %d",
             json_is_integer(pid) ? (long long)json_integer_value(pid) : -1LL,
             (int)s.pluginhost->pid);
    check_str(env, h, "state", "ready");
    check_str(env, h, "mode", "dev");
    IT_CHECK(env, json_is_true(json_object_get(h, "dev")), "dev must be true");
    json_t *owner = json_object_get(h, "hostboot");
    IT_CHECK(env,
             json_is_null(owner) || (json_is_string(owner) && json_string_value(owner)[0] == 0),
             "a dev host has no hostboot (null or \"\")");
    IT_CHECK(env, json_is_string(json_object_get(h, "language")), "language is a string");
    IT_CHECK(env, json_is_string(json_object_get(h, "version")), "version is a string");
    check_age(env, h, "last_heartbeat_age_ms", (uint64_t)HB_INTERVAL_MS * HB_MISS);
    json_decref(body);
}

static void test_status_counts_and_errors(void **state)
{
    it_env_t *env = *state;
    it_suite_t s;
    it_suite_start(env, &s, HB_INTERVAL_MS, HB_MISS);

    json_t *st = it_get_json(env, "/api/v1/status");
    check_str(env, st, "version", PLAT_VERSION);
    json_t *boot = json_object_get(st, "boot_id");
    IT_CHECK(env, json_is_string(boot) && plat_uuid_valid(json_string_value(boot)),
             "boot_id is a UUID");
    json_t *up = json_object_get(st, "uptime_ms");
    IT_CHECK(env, json_is_integer(up) && json_integer_value(up) >= 0 &&
                      (uint64_t)json_integer_value(up) <= it_now_ms() - s.t0,
             "uptime_ms within the time since spawn");
    static const struct {
        const char *path;
        int64_t want;
    } counts[] = {
        {"counts.hostboots", 1},       {"counts.hostboots_lost", 0},
        {"counts.hosts", 1},           {"counts.hosts_lost", 0},
        {"bus.dropped.frames", 0},     {"bus.dropped.too_big", 0},
        {"bus.dropped.undecodable", 0}, {"bus.dropped.invalid", 0},
        {"bus.dropped.spoofed", 0},    {"bus.dropped.late_reply", 0},
        {"bus.dropped.misdirected", 0}, {"bus.unknown_destination", 0},
        {"bus.tx_failed", 0},          {"bus.forwarded", 0},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        json_t *v = it_json_path(st, counts[i].path);
        IT_CHECK(env, json_is_integer(v) && json_integer_value(v) == counts[i].want,
                 "%s = %lld, want %lld", counts[i].path,
                 json_is_integer(v) ? (long long)json_integer_value(v) : -1LL,
                 (long long)counts[i].want);
    }
    /* Two registrations at least came in, and were answered. */
    IT_CHECK(env, json_integer_value(it_json_path(st, "bus.rx")) >= 2, "bus.rx >= 2");
    IT_CHECK(env, json_integer_value(it_json_path(st, "bus.tx")) >= 2, "bus.tx >= 2");
    const char *boot_id = json_string_value(boot);
    char first_boot[64];
    snprintf(first_boot, sizeof first_boot, "%s", boot_id);
    int64_t up1 = json_integer_value(up);
    json_decref(st);

    /* Same process, same boot id; uptime does not go backwards. */
    st = it_get_json(env, "/api/v1/status");
    check_str(env, st, "boot_id", first_boot);
    IT_CHECK(env, json_integer_value(json_object_get(st, "uptime_ms")) >= up1,
             "uptime is monotonic");
    json_decref(st);

    static const char *const unknown[] = {"/api/v1/nope", "/nope", "/api/v2/status",
                                          "/api/v1/hosts/extra/segments"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        json_t *body = NULL;
        int code = it_http_get(env, unknown[i], &body);
        IT_CHECK(env, code == 404, "GET %s answered %d, want 404", unknown[i], code);
        json_t *err = json_object_get(body, "error");
        IT_CHECK(env, json_is_object(err), "GET %s: body has an error object", unknown[i]);
        json_t *ecode = json_object_get(err, "code");
        IT_CHECK(env, json_is_string(ecode) || json_is_integer(ecode),
                 "GET %s: error.code present", unknown[i]);
        json_t *msg = json_object_get(err, "message");
        IT_CHECK(env, json_is_string(msg) && json_string_value(msg)[0] != 0,
                 "GET %s: error.message non-empty", unknown[i]);
        json_decref(body);
    }
}

static void test_sigterm_stops_all_cleanly(void **state)
{
    it_env_t *env = *state;
    it_suite_t s;
    it_suite_start(env, &s, HB_INTERVAL_MS, HB_MISS);

    /* Each must exit 0 on SIGTERM; teardown then scans the logs for
     * sanitizer reports and err lines and checks for zombies. */
    it_stop(s.pluginhost, IT_STOP_DEADLINE_MS);
    it_stop(s.hostbootd, IT_STOP_DEADLINE_MS);
    IT_CHECK(env, it_http_get(env, "/healthz", NULL) == 200, "platformd still serving");
    it_stop(s.platformd, IT_STOP_DEADLINE_MS);
    IT_CHECK(env, it_http_get(env, "/healthz", NULL) < 0, "HTTP port closed after stop");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_within_1s_and_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_counts_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_stops_all_cleanly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
