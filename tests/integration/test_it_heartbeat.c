/* Heartbeats both ways:
 *  - kill -9 of hostbootd → the platform shows it "lost" within
 *    heartbeat_miss intervals (plus slack), while the dev host, which still
 *    answers pings, stays "ready"; a restarted hostbootd is "ready" again;
 *  - platformd restarted (SIGTERM, or kill -9) with the same config →
 *    hostbootd and the host notice and re-register by themselves: the new
 *    platform (new boot id) lists both "ready", and both are the same
 *    processes as before (same PIDs, never restarted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "plat/plat.h"

#define HB_INTERVAL_MS 100
#define HB_MISS 3
/* "lost within heartbeat_miss intervals": the window plus scheduling and
 * HTTP-poll slack. */
#define LOST_WITHIN_MS (HB_INTERVAL_MS * HB_MISS + 1000)

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

typedef struct {
    const char *list; /* "hostboots" or "hosts" */
    const char *id;
    const char *key;  /* integer member */
    int64_t at_least;
} age_pred_t;

/* The entry exists and its integer `key` reached `at_least`. */
static bool pred_age_reached(json_t *body, void *arg)
{
    const age_pred_t *a = arg;
    json_t *el = it_json_find(json_object_get(body, a->list), "id", a->id);
    json_t *v = el ? json_object_get(el, a->key) : NULL;
    return json_is_integer(v) && json_integer_value(v) >= a->at_least;
}

static const char *entry_state(it_env_t *env, const char *path, const char *list, const char *id,
                               char *buf, size_t size)
{
    json_t *body = it_get_json(env, path);
    json_t *el = it_json_find(json_object_get(body, list), "id", id);
    json_t *st = el ? json_object_get(el, "state") : NULL;
    snprintf(buf, size, "%s", json_is_string(st) ? json_string_value(st) : "(absent)");
    json_decref(body);
    return buf;
}

static void test_hostboot_kill9_is_lost_host_stays_ready(void **state)
{
    it_env_t *env = *state;
    it_suite_t s;
    it_suite_start(env, &s, HB_INTERVAL_MS, HB_MISS);
    char buf[64];

    /* First prove heartbeats keep both alive: let twice the miss window pass
     * (measured on the platform's own clock) and both are still ready. */
    age_pred_t settled = {"hostboots", IT_HOSTBOOT_ID, "registered_age_ms",
                          2 * HB_INTERVAL_MS * HB_MISS};
    it_wait_json(env, "/api/v1/hostboots", pred_age_reached, &settled, IT_DEADLINE_MS,
                 "hostboot registered for two miss windows");
    IT_CHECK(env, strcmp(entry_state(env, "/api/v1/hostboots", "hostboots", IT_HOSTBOOT_ID, buf,
                                     sizeof buf), "ready") == 0,
             "hostboot still ready while heartbeating (state %s)", buf);
    IT_CHECK(env, strcmp(entry_state(env, "/api/v1/hosts", "hosts", s.host_id, buf, sizeof buf),
                         "ready") == 0,
             "host still ready while heartbeating (state %s)", buf);

    uint64_t t_kill = it_now_ms();
    it_kill9(s.hostbootd);
    it_match_t lost = {.id = IT_HOSTBOOT_ID, .state = "lost"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &lost, IT_DEADLINE_MS,
                 "hostboot-itest lost");
    uint64_t took = it_now_ms() - t_kill;
    print_message("hostboot lost %llu ms after kill -9 (interval %d ms, miss %d)\n",
                  (unsigned long long)took, HB_INTERVAL_MS, HB_MISS);
    IT_CHECK(env, took <= LOST_WITHIN_MS, "lost after %llu ms, want <= %d",
             (unsigned long long)took, LOST_WITHIN_MS);
    /* Its last sign of life was at most one interval before the kill, so
     * declaring it lost sooner than (miss - 1) intervals is premature. */
    IT_CHECK(env, took >= (uint64_t)(HB_INTERVAL_MS * (HB_MISS - 1)),
             "lost after only %llu ms: fewer than %d intervals of silence",
             (unsigned long long)took, HB_MISS - 1);

    IT_CHECK(env, strcmp(entry_state(env, "/api/v1/hosts", "hosts", s.host_id, buf, sizeof buf),
                         "ready") == 0,
             "dev host must stay ready when its hostboot is lost (state %s)", buf);
    IT_CHECK(env, it_status_int(env, "counts.hostboots_lost") == 1, "hostboots_lost == 1");
    IT_CHECK(env, it_status_int(env, "counts.hosts_lost") == 0, "hosts_lost == 0");

    /* Another two miss windows of the hostboot's silence: still lost (it
     * stays listed), the host still ready. */
    age_pred_t silent = {"hostboots", IT_HOSTBOOT_ID, "last_heartbeat_age_ms",
                         3 * HB_INTERVAL_MS * HB_MISS};
    it_wait_json(env, "/api/v1/hostboots", pred_age_reached, &silent, IT_DEADLINE_MS,
                 "hostboot silent for three miss windows");
    IT_CHECK(env, strcmp(entry_state(env, "/api/v1/hostboots", "hostboots", IT_HOSTBOOT_ID, buf,
                                     sizeof buf), "lost") == 0,
             "a dead hostboot stays listed as lost (state %s)", buf);
    IT_CHECK(env, strcmp(entry_state(env, "/api/v1/hosts", "hosts", s.host_id, buf, sizeof buf),
                         "ready") == 0,
             "dev host still ready (state %s)", buf);

    /* A new hostbootd under the same name replaces the lost record. */
    uint64_t t_restart = it_now_ms();
    s.hostbootd = it_start_hostbootd(env, s.hostbootd_config);
    it_match_t ready = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &ready, IT_DEADLINE_MS,
                 "restarted hostbootd ready");
    print_message("restarted hostbootd ready after %llu ms\n",
                  (unsigned long long)(it_now_ms() - t_restart));
    IT_CHECK(env, it_status_int(env, "counts.hostboots_lost") == 0, "hostboots_lost back to 0");
    IT_CHECK(env, it_status_int(env, "counts.hostboots") == 1, "still one hostboot");
}

/* Restart platformd (by SIGTERM or by SIGKILL) and check that the peers come
 * back on their own. */
static void restart_platform(void **state, bool hard)
{
    it_env_t *env = *state;
    it_suite_t s;
    it_suite_start(env, &s, HB_INTERVAL_MS, HB_MISS);
    json_t *st = it_get_json(env, "/api/v1/status");
    char old_boot[64];
    snprintf(old_boot, sizeof old_boot, "%s", json_string_value(json_object_get(st, "boot_id")));
    json_decref(st);
    pid_t hb_pid = s.hostbootd->pid, host_pid = s.pluginhost->pid;

    if (hard)
        it_kill9(s.platformd);
    else
        it_stop(s.platformd, IT_STOP_DEADLINE_MS);
    uint64_t t_restart = it_now_ms();
    s.platformd = it_start_platformd(env, s.platformd_config);
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_match_t changed = {.not_boot_id = old_boot};
    it_wait_json(env, "/api/v1/status", it_pred_status_boot_changed, &changed, IT_DEADLINE_MS,
                 "a new boot id");
    it_suite_wait_ready(env, &s, IT_DEADLINE_MS);
    print_message("after %s of platformd: hostboot and host re-registered %llu ms after the "
                  "restart\n",
                  hard ? "kill -9" : "SIGTERM", (unsigned long long)(it_now_ms() - t_restart));

    /* Same processes: never restarted, still running. */
    IT_CHECK(env, it_alive(s.hostbootd) && s.hostbootd->pid == hb_pid, "hostbootd kept running");
    IT_CHECK(env, it_alive(s.pluginhost) && s.pluginhost->pid == host_pid,
             "pluginhost kept running");
    json_t *hosts = it_get_json(env, "/api/v1/hosts");
    json_t *h = it_json_find(json_object_get(hosts, "hosts"), "id", s.host_id);
    json_t *pid = h ? json_object_get(h, "pid") : NULL;
    IT_CHECK(env, json_is_integer(pid) && json_integer_value(pid) == host_pid,
             "host re-registered with the same pid %d", (int)host_pid);
    IT_CHECK(env, json_is_true(json_object_get(h, "dev")), "still a dev host");
    json_decref(hosts);

    st = it_get_json(env, "/api/v1/status");
    IT_CHECK(env, json_integer_value(it_json_path(st, "counts.hostboots")) == 1 &&
                      json_integer_value(it_json_path(st, "counts.hosts")) == 1 &&
                      json_integer_value(it_json_path(st, "counts.hostboots_lost")) == 0 &&
                      json_integer_value(it_json_path(st, "counts.hosts_lost")) == 0,
             "new platform counts one hostboot and one host, none lost");
    json_decref(st);

    /* Registered for good: two miss windows later both are still ready with
     * the new platform. */
    age_pred_t hb_settled = {"hostboots", IT_HOSTBOOT_ID, "registered_age_ms",
                             2 * HB_INTERVAL_MS * HB_MISS};
    it_wait_json(env, "/api/v1/hostboots", pred_age_reached, &hb_settled, IT_DEADLINE_MS,
                 "hostboot registered for two miss windows");
    it_suite_wait_ready(env, &s, 1);
}

static void test_platformd_sigterm_restart_peers_reregister(void **state)
{
    restart_platform(state, false);
}

static void test_platformd_kill9_restart_peers_reregister(void **state)
{
    restart_platform(state, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostboot_kill9_is_lost_host_stays_ready, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_platformd_sigterm_restart_peers_reregister, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_platformd_kill9_restart_peers_reregister, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
