/* The hosts' Landlock sandbox end to end (docs/security-sandbox.md): real
 * platformd + hostbootd + pluginhost, the test plugin "fsprobe"
 * (plugin_fsprobe.c) driven through the HTTP API:
 *  a) Landlock on (the default): the plugin cannot open platformd's CURVE
 *     secret key, the API token, the authorized keys, hostbootd's key or
 *     the platform's database (EACCES), cannot create a file in the test
 *     dir, cannot signal platformd or hostbootd (EPERM, ABI >= 6), while it
 *     reads its own package and /etc/passwd and keeps serving invokes;
 *     hostbootd logs what it enforces;
 *  b) hosts.landlock.enabled = false: the same probes succeed (the hosts
 *     run as the test's user, who owns those files) — so (a) was
 *     Landlock's doing;
 *  c) the Python host starts and serves examples/hello-py under Landlock;
 *  d) an unknown key in hosts.landlock: hostbootd refuses its config
 *     (exit 78) naming it.
 * Skipped (a, b, c) on a kernel without Landlock. */
#include <curl/curl.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "plat/plat.h"

#ifndef FSPROBE_PACKAGE_DIR
#error "FSPROBE_PACKAGE_DIR (the built fsprobe package) must be defined"
#endif
#ifndef EXAMPLES_DIR
#error "EXAMPLES_DIR (the built example packages) must be defined"
#endif

#define HB_INTERVAL_MS 200
#define HB_MISS 5
#define ACTION_DEADLINE_MS 30000

typedef struct {
    it_proc_t *platformd;
    it_proc_t *hostbootd;
} daemons_t;

/* The kernel's Landlock ABI (>= 1), or <= 0 without Landlock. */
static int landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, 1U /* ..._VERSION */);
    return v > 0 ? (int)v : 0;
}

/* hostbootd's hosts.landlock: `enabled`, the env's package store. */
static json_t *landlock_extra(it_env_t *env, bool enabled)
{
    char store[IT_PATH_MAX + 32];
    snprintf(store, sizeof store, "%s/platform-state/packages", it_dir(env));
    json_t *hb = json_pack("{s:{s:{s:b, s:s}}}", "hosts", "landlock", "enabled", enabled,
                           "packages_dir", store);
    assert_non_null(hb);
    return hb;
}

/* platformd, and hostbootd "itest" with `hb_extra` (borrowed) merged into
 * its config; both waited for. */
static void start_daemons(it_env_t *env, daemons_t *d, json_t *hb_extra)
{
    json_t *extra =
        json_pack("{s:{s:i, s:i}, s:{s:i}}", "hosts", "ready_timeout_ms", ACTION_DEADLINE_MS,
                  "exited_keep_ms", 3600000, "plugins", "restart_initial_ms", 0);
    assert_non_null(extra);
    const char *pd_cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, extra);
    json_decref(extra);
    d->platformd = it_start_platformd(env, pd_cfg);
    d->hostbootd = it_start_hostbootd(env, it_hostbootd_config(env, IT_HOSTBOOT_NAME, hb_extra));
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_match_t hb = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &hb, IT_DEADLINE_MS,
                 IT_HOSTBOOT_ID " listed ready");
}

/* Register the package at `dir` (id `id`), install it, enable and start
 * it: the instance uuid into uuid[64]. */
static void running(it_env_t *env, const char *dir, const char *id, char uuid[64])
{
    json_decref(it_post_ok(env, "/api/v1/packages", json_pack("{s:s}", "path", dir), 201));
    json_t *body =
        it_post_ok(env, "/api/v1/instances",
                json_pack("{s:s, s:s, s:s}", "plugin", id, "version", "1.0.0", "org", "acme"), 201);
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
    IT_CHECK(env, it_json_str(body, "instance.host")[0], "the running instance has a host");
    json_decref(body);
}

/* POST /api/v1/instances/<uuid>/invoke?path=<p> with a text body; the
 * HTTP status, the response body into a malloc'd *out. */
static int invoke(it_env_t *env, const char *uuid, const char *p, const char *text, char **out)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/instances/%s/invoke?path=%s", uuid, p);
    return it_http_raw(env, "POST", path, text, strlen(text), "text/plain", out, NULL);
}

/* The answer line of `probe` in an fsprobe response ("" when absent). */
static const char *answer(const char *resp, const char *probe, char *line, size_t size)
{
    line[0] = '\0';
    size_t n = strlen(probe);
    for (const char *p = resp; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > n + 1 && strncmp(p, probe, n) == 0 && p[n] == ':') {
            snprintf(line, size, "%.*s", (int)len, p);
            break;
        }
        p = nl ? nl + 1 : NULL;
    }
    return line;
}

/* One probe's outcome: "ok" or "errno=<n>" must start its answer. */
static void expect(it_env_t *env, const char *resp, const char *probe, const char *want)
{
    char line[1024];
    answer(resp, probe, line, sizeof line);
    const char *got = line[0] ? line + strlen(probe) + 2 : "(no answer)";
    if (strncmp(got, want, strlen(want)) != 0)
        fprintf(stderr, "fsprobe answered:\n%s\n", resp);
    IT_CHECK(env, strncmp(got, want, strlen(want)) == 0, "%s: %s (got %s)", probe, want, got);
}

/* The probes of (a) and (b), as body text; the secret paths into probes[]. */
typedef struct {
    char text[4096];
    char probe[8][IT_PATH_MAX + 64];
    size_t n_files; /* probe[0..n_files) open/write a secret */
    char kill_pd[32], kill_hb[32];
    char connect_api[32], connect_bus[32]; /* TCP: platformd's HTTP API, the bus */
} probes_t;

static void make_probes(it_env_t *env, const daemons_t *d, probes_t *p)
{
    memset(p, 0, sizeof *p);
    const char *dir = it_dir(env);
    snprintf(p->probe[0], sizeof p->probe[0], "open %s/keys/platform.key", dir);
    snprintf(p->probe[1], sizeof p->probe[1], "open %s/platform-state/api-token", dir);
    snprintf(p->probe[2], sizeof p->probe[2], "open %s/keys/authorized.json", dir);
    snprintf(p->probe[3], sizeof p->probe[3], "open %s", it_key_file(env, IT_HOSTBOOT_ID));
    snprintf(p->probe[4], sizeof p->probe[4], "open %s/platform-state/platform.db", dir);
    snprintf(p->probe[5], sizeof p->probe[5], "write %s/landlock-pwned", dir);
    p->n_files = 6;
    snprintf(p->kill_pd, sizeof p->kill_pd, "kill %d", (int)d->platformd->pid);
    snprintf(p->kill_hb, sizeof p->kill_hb, "kill %d", (int)d->hostbootd->pid);
    snprintf(p->connect_api, sizeof p->connect_api, "connect %d", it_http_port(env));
    snprintf(p->connect_bus, sizeof p->connect_bus, "connect %d", it_bus_port(env));
    size_t used = 0;
    for (size_t i = 0; i < p->n_files; i++)
        used += (size_t)snprintf(p->text + used, sizeof p->text - used, "%s\n", p->probe[i]);
    snprintf(p->text + used, sizeof p->text - used, "%s\n%s\n%s\n%s\nself\nopen /etc/passwd\n",
             p->kill_pd, p->kill_hb, p->connect_api, p->connect_bus);
}

/* ---- a) ------------------------------------------------------------------ */

static void test_secrets_refused(void **state)
{
    it_env_t *env = *state;
    int abi = landlock_abi();
    if (abi < 1) {
        print_message("no Landlock in this kernel: skipped\n");
        skip();
    }
    daemons_t d;
    json_t *hb = landlock_extra(env, true);
    start_daemons(env, &d, hb);
    json_decref(hb);
    char *log = it_read_log(d.hostbootd);
    bool said = strstr(log, "landlock on:") && strstr(log, "abi=");
    free(log);
    IT_CHECK(env, said, "hostbootd logs what Landlock enforces at start");

    char uuid[64], *out = NULL;
    running(env, FSPROBE_PACKAGE_DIR, "fsprobe", uuid);
    int st = invoke(env, uuid, "/ok", "", &out);
    IT_CHECK(env, st == 200 && strcmp(out, "ok") == 0, "invoke /ok: 200 ok (got %d %s)", st, out);
    free(out);

    probes_t p;
    make_probes(env, &d, &p);
    st = invoke(env, uuid, "/probe", p.text, &out);
    print_message("fsprobe under Landlock (ABI %d):\n%s", abi, out);
    IT_CHECK(env, st == 200, "invoke /probe: 200 (got %d)", st);
    for (size_t i = 0; i < p.n_files; i++)
        expect(env, out, p.probe[i], "errno=13 "); /* EACCES */
    if (abi >= 6) {
        expect(env, out, p.kill_pd, "errno=1 "); /* EPERM: scoped signals */
        expect(env, out, p.kill_hb, "errno=1 ");
    }
    if (abi >= 4) /* hosts.landlock.bus_only: TCP to the bus port only */
        expect(env, out, p.connect_api, "errno=13 ");
    expect(env, out, p.connect_bus, "ok");
    expect(env, out, "self", "ok");
    expect(env, out, "open /etc/passwd", "ok");
    free(out);
    char pwned[IT_PATH_MAX + 32];
    snprintf(pwned, sizeof pwned, "%s/landlock-pwned", it_dir(env));
    IT_CHECK(env, access(pwned, F_OK) != 0, "nothing was created");

    /* The host lives on and still serves. */
    st = invoke(env, uuid, "/ok", "", &out);
    IT_CHECK(env, st == 200 && strcmp(out, "ok") == 0, "invoke /ok again: 200 ok (got %d %s)", st,
             out);
    free(out);
    IT_CHECK(env, it_alive(d.platformd) && it_alive(d.hostbootd), "the daemons run on");
}

/* ---- b) ------------------------------------------------------------------ */

static void test_disabled_lets_the_probes_through(void **state)
{
    it_env_t *env = *state;
    if (landlock_abi() < 1)
        skip();
    daemons_t d;
    json_t *hb = landlock_extra(env, false);
    start_daemons(env, &d, hb);
    json_decref(hb);
    char *log = it_read_log(d.hostbootd);
    bool said = strstr(log, "landlock off") != NULL;
    free(log);
    IT_CHECK(env, said, "hostbootd warns that Landlock is off");

    char uuid[64], *out = NULL;
    running(env, FSPROBE_PACKAGE_DIR, "fsprobe", uuid);
    probes_t p;
    make_probes(env, &d, &p);
    int st = invoke(env, uuid, "/probe", p.text, &out);
    print_message("fsprobe without Landlock:\n%s", out);
    IT_CHECK(env, st == 200, "invoke /probe: 200 (got %d)", st);
    for (size_t i = 0; i < p.n_files; i++)
        expect(env, out, p.probe[i], "ok");
    expect(env, out, p.kill_pd, "ok");
    expect(env, out, p.kill_hb, "ok");
    expect(env, out, p.connect_api, "ok");
    free(out);
}

/* ---- c) ------------------------------------------------------------------ */

static void test_python_host(void **state)
{
    it_env_t *env = *state;
    if (landlock_abi() < 1)
        skip();
    daemons_t d;
    json_t *hb = landlock_extra(env, true);
    start_daemons(env, &d, hb);
    json_decref(hb);
    char uuid[64], *out = NULL;
    running(env, EXAMPLES_DIR "/hello-py", "hello-py", uuid);
    int st = invoke(env, uuid, "/", "", &out);
    IT_CHECK(env, st == 200 && strcmp(out, "hello, world") == 0,
             "hello-py under Landlock: 200 \"hello, world\" (got %d %s)", st, out);
    free(out);
}

/* ---- d) ------------------------------------------------------------------ */

static void test_unknown_key_refused(void **state)
{
    it_env_t *env = *state;
    it_hostbootd_config_refused(
        env, json_pack("{s:{s:{s:b, s:b}}}", "hosts", "landlock", "enabled", 1, "strict", 1),
        "hosts.landlock.strict", NULL);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secrets_refused, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_disabled_lets_the_probes_through, it_setup,
                                        it_teardown),
        cmocka_unit_test_setup_teardown(test_python_host, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_refused, it_setup, it_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
