/* The task scheduler (platformd/tasks.h) on a real libuv loop with an
 * injected clock: validation, on-time runs, at most one run in flight,
 * late runs not queued, skipped and failed deliveries counted,
 * unregister/forget, persistence in the store (schema v2, cascade with the
 * instance, migration from v1), missed runs fired once at start, and one
 * run through the real timer with the wall clock. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>

#include "plat/plat.h"
#include "store.h"
#include "tasks.h"

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"

typedef struct {
    uint64_t run_id;
    char instance[64];
    char name[80];
    int64_t scheduled;
    bool missed;
} fired_t;

typedef struct {
    uv_loop_t loop;
    int64_t now; /* the injected clock */
    pd_metrics_t metrics;
    fired_t fired[64];
    size_t n_fired;
    int fire_rc;       /* what fire returns */
    bool done_at_once; /* fire calls run_done(0) before returning */
    char dir[64];
    char path[128];
    pd_store_t *store;
    pd_tasks_t *tasks;
} fx_t;

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm) * 1000;
}

static int64_t fake_now(void *arg)
{
    return ((fx_t *)arg)->now;
}

static int on_fire(pd_tasks_t *t, uint64_t run_id, const char *instance, const char *name,
                   int64_t scheduled_ms, bool missed, void *arg)
{
    fx_t *f = arg;
    assert_true(f->n_fired < sizeof f->fired / sizeof f->fired[0]);
    fired_t *r = &f->fired[f->n_fired++];
    r->run_id = run_id;
    snprintf(r->instance, sizeof r->instance, "%s", instance);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->scheduled = scheduled_ms;
    r->missed = missed;
    if (f->fire_rc == 0 && f->done_at_once)
        pd_tasks_run_done(t, run_id, 0, NULL);
    return f->fire_rc;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || uv_loop_init(&f->loop) != 0)
        return -1;
    f->now = utc(2026, 1, 1, 0, 0, 0) + 500;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_tasks.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/platform.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    pd_tasks_destroy(&f->tasks);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    pd_store_close(&f->store);
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static pd_tasks_t *make(fx_t *f, size_t max_per_instance, bool fake_clock)
{
    pd_tasks_opts_t o = {
        .loop = &f->loop,
        .store = f->store,
        .now = fake_clock ? fake_now : NULL,
        .now_arg = f,
        .fire = on_fire,
        .fire_arg = f,
        .max_per_instance = max_per_instance,
        .metrics = &f->metrics,
    };
    char why[256] = "";
    f->tasks = pd_tasks_new(&o, why, sizeof why);
    if (!f->tasks)
        print_error("pd_tasks_new: %s\n", why);
    assert_non_null(f->tasks);
    return f->tasks;
}

static void reg_ok(fx_t *f, const char *inst, const char *name, const char *cron)
{
    char why[256] = "";
    int rc = pd_tasks_register(f->tasks, inst, name, cron, why, sizeof why);
    if (rc != 0)
        print_error("register %s %s \"%s\": %d %s\n", inst, name, cron, rc, why);
    assert_int_equal(rc, 0);
}

static void reg_bad(fx_t *f, const char *inst, const char *name, const char *cron, int want,
                    const char *why_prefix)
{
    char why[256] = "";
    int rc = pd_tasks_register(f->tasks, inst, name, cron, why, sizeof why);
    if (rc != want || strncmp(why, why_prefix, strlen(why_prefix)) != 0)
        print_error("register %s \"%s\": %d \"%s\" (want %d \"%s...\")\n", name, cron, rc, why,
                    want, why_prefix);
    assert_int_equal(rc, want);
    assert_true(strncmp(why, why_prefix, strlen(why_prefix)) == 0);
}

/* Move the fake clock and run what is due. */
static void advance_to(fx_t *f, int64_t t)
{
    f->now = t;
    pd_tasks_poke(f->tasks);
}

/* ---- store helpers ------------------------------------------------------ */

static void open_store(fx_t *f)
{
    char why[512] = "";
    int rc = pd_store_open(f->path, &f->store, why, sizeof why);
    if (rc)
        print_error("open: %s\n", why);
    assert_int_equal(rc, 0);
}

static void add_instance(fx_t *f, const char *uuid)
{
    pd_store_package_t p;
    memset(&p, 0, sizeof p);
    snprintf(p.id, sizeof p.id, "ticker");
    snprintf(p.version, sizeof p.version, "1.0.0");
    snprintf(p.language, sizeof p.language, "c");
    snprintf(p.entry, sizeof p.entry, "libticker.so");
    snprintf(p.host_mode, sizeof p.host_mode, "powerSave");
    p.manifest_json = (char *)"{}";
    int rc = pd_store_put_package(f->store, &p);
    assert_true(rc == 0 || rc == -EEXIST);
    pd_store_instance_t i;
    memset(&i, 0, sizeof i);
    snprintf(i.uuid, sizeof i.uuid, "%s", uuid);
    snprintf(i.plugin, sizeof i.plugin, "ticker");
    snprintf(i.version, sizeof i.version, "1.0.0");
    snprintf(i.org, sizeof i.org, "acme");
    snprintf(i.actual_state, sizeof i.actual_state, "running");
    snprintf(i.desired_state, sizeof i.desired_state, "running");
    snprintf(i.host_mode, sizeof i.host_mode, "powerSave");
    assert_int_equal(pd_store_insert_instance(f->store, &i), 0);
}

typedef struct {
    pd_store_task_t rows[16];
    size_t n;
} rows_t;

static int collect(const pd_store_task_t *t, void *arg)
{
    rows_t *r = arg;
    if (r->n < 16)
        r->rows[r->n] = *t;
    r->n++;
    return 0;
}

static rows_t stored(fx_t *f, const char *instance)
{
    rows_t r;
    memset(&r, 0, sizeof r);
    assert_int_equal(pd_store_list_tasks(f->store, instance, collect, &r), 0);
    return r;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_validation(void **state)
{
    fx_t *f = *state;
    make(f, 3, true);
    reg_bad(f, "not-a-uuid", "t", "* * * * *", -EINVAL, "instance:");
    reg_bad(f, U1, "", "* * * * *", -EINVAL, "name:");
    reg_bad(f, U1, "has space", "* * * * *", -EINVAL, "name:");
    reg_bad(f, U1, "slash/no", "* * * * *", -EINVAL, "name:");
    char long_name[66];
    memset(long_name, 'n', 65);
    long_name[65] = 0;
    reg_bad(f, U1, long_name, "* * * * *", -EINVAL, "name:");
    long_name[64] = 0; /* 64 is fine */
    reg_ok(f, U1, long_name, "* * * * *");
    reg_bad(f, U1, "t", "* 24 * * *", -EINVAL, "cron: hour: 24 is out of range 0-23");
    reg_bad(f, U1, "t", "* * * *", -EINVAL, "cron: expected 5 fields");
    reg_bad(f, U1, "t", "0 0 30 2 *", -EINVAL, "cron: \"0 0 30 2 *\" never fires");
    assert_true(pd_tasks_name_valid("a.b-c_D9"));
    assert_false(pd_tasks_name_valid(NULL));
    /* At most 3 per instance here; replacing one is not a new one. */
    reg_ok(f, U1, "two", "0 * * * *");
    reg_ok(f, U1, "three", "0 * * * *");
    reg_bad(f, U1, "four", "0 * * * *", -ENOSPC, "the instance has 3 tasks already");
    reg_ok(f, U1, "three", "30 * * * *");
    reg_ok(f, U2, "four", "0 * * * *"); /* another instance has its own quota */
    assert_int_equal(pd_tasks_count(f->tasks, U1), 3);
    assert_int_equal(pd_tasks_count(f->tasks, NULL), 4);
    pd_task_info_t info;
    assert_int_equal(pd_tasks_get(f->tasks, U1, "three", &info), 0);
    assert_string_equal(info.cron, "30 * * * *");
    assert_int_equal(info.next_due, utc(2026, 1, 1, 0, 30, 0));
    assert_int_equal(pd_tasks_get(f->tasks, U1, "nope", &info), -ENOENT);
    assert_int_equal(f->n_fired, 0);
}

static void test_runs_on_time(void **state)
{
    fx_t *f = *state;
    make(f, 0, true);
    int64_t t0 = utc(2026, 1, 1, 0, 0, 0);
    reg_ok(f, U1, "tick", "* * * * * *"); /* every second */
    assert_int_equal(pd_tasks_next_due(f->tasks), t0 + 1000);
    advance_to(f, t0 + 999);
    assert_int_equal(f->n_fired, 0);
    advance_to(f, t0 + 1000);
    assert_int_equal(f->n_fired, 1);
    assert_string_equal(f->fired[0].instance, U1);
    assert_string_equal(f->fired[0].name, "tick");
    assert_int_equal(f->fired[0].scheduled, t0 + 1000);
    assert_false(f->fired[0].missed);
    pd_task_info_t info;
    assert_int_equal(pd_tasks_get(f->tasks, U1, "tick", &info), 0);
    assert_true(info.in_flight);
    assert_int_equal(info.next_due, t0 + 2000);
    /* Due again while the first run is in flight: skipped, counted. */
    advance_to(f, t0 + 2000);
    assert_int_equal(f->n_fired, 1);
    assert_int_equal(f->metrics.task_skipped, 1);
    pd_tasks_run_done(f->tasks, f->fired[0].run_id, 0, NULL);
    assert_int_equal(f->metrics.task_runs, 1);
    pd_tasks_run_done(f->tasks, f->fired[0].run_id, 0, NULL); /* twice: ignored */
    assert_int_equal(f->metrics.task_runs, 1);
    advance_to(f, t0 + 3000);
    assert_int_equal(f->n_fired, 2);
    assert_int_equal(f->fired[1].scheduled, t0 + 3000);
    assert_true(f->fired[1].run_id != f->fired[0].run_id);
    /* A failed run is counted as a failure. */
    pd_tasks_run_done(f->tasks, f->fired[1].run_id, -EIO, "hook failed");
    assert_int_equal(f->metrics.task_failures, 1);
    /* Late by ten seconds (a stall): one run, not ten; the next is
     * computed from now. */
    f->done_at_once = true;
    advance_to(f, t0 + 13500);
    assert_int_equal(f->n_fired, 3);
    assert_int_equal(f->fired[2].scheduled, t0 + 4000);
    assert_int_equal(pd_tasks_next_due(f->tasks), t0 + 14000);
    assert_int_equal(f->metrics.task_runs, 2); /* run_done before fire returned */
    assert_int_equal(f->metrics.task_missed, 0);
}

static void test_skips_and_failures(void **state)
{
    fx_t *f = *state;
    make(f, 0, true);
    int64_t t0 = utc(2026, 1, 1, 0, 0, 0);
    reg_ok(f, U1, "a", "* * * * * *");
    f->fire_rc = -EPERM; /* instance not running */
    advance_to(f, t0 + 1000);
    assert_int_equal(f->n_fired, 1);
    assert_int_equal(f->metrics.task_skipped, 1);
    pd_task_info_t info;
    assert_int_equal(pd_tasks_get(f->tasks, U1, "a", &info), 0);
    assert_false(info.in_flight); /* not started: the next one may go */
    f->fire_rc = -EHOSTUNREACH;
    advance_to(f, t0 + 2000);
    assert_int_equal(f->n_fired, 2);
    assert_int_equal(f->metrics.task_failures, 1);
    f->fire_rc = 0;
    advance_to(f, t0 + 3000);
    assert_int_equal(f->n_fired, 3);
    /* Unregistered while in flight: the run's end is still counted, the
     * task fires no more. */
    assert_int_equal(pd_tasks_unregister(f->tasks, U1, "a"), 0);
    assert_int_equal(pd_tasks_unregister(f->tasks, U1, "a"), -ENOENT);
    pd_tasks_run_done(f->tasks, f->fired[2].run_id, 0, NULL);
    assert_int_equal(f->metrics.task_runs, 1);
    advance_to(f, t0 + 10000);
    assert_int_equal(f->n_fired, 3);
    assert_int_equal(pd_tasks_next_due(f->tasks), -1);
    /* A cancelled run counts as nothing. */
    reg_ok(f, U1, "b", "* * * * * *");
    advance_to(f, t0 + 11000);
    assert_int_equal(f->n_fired, 4);
    pd_tasks_run_done(f->tasks, f->fired[3].run_id, -ECANCELED, "stopping");
    assert_int_equal(f->metrics.task_runs, 1);
    assert_int_equal(f->metrics.task_failures, 1);
    /* forget_instance removes all of one instance's tasks only. */
    reg_ok(f, U1, "c", "0 * * * *");
    reg_ok(f, U2, "d", "0 * * * *");
    assert_int_equal(pd_tasks_forget_instance(f->tasks, U1), 2);
    assert_int_equal(pd_tasks_forget_instance(f->tasks, U1), 0);
    assert_int_equal(pd_tasks_count(f->tasks, NULL), 1);
    assert_int_equal(pd_tasks_get(f->tasks, U2, "d", &info), 0);
}

static void test_persisted_and_missed(void **state)
{
    fx_t *f = *state;
    open_store(f);
    add_instance(f, U1);
    add_instance(f, U2);
    make(f, 0, true);
    int64_t t0 = utc(2026, 1, 1, 0, 0, 0);
    reg_bad(f, U3, "x", "* * * * *", -ENOENT, "no such instance"); /* not in the store */
    reg_ok(f, U1, "minutely", "* * * * *");
    reg_ok(f, U1, "hourly", "@hourly");
    reg_ok(f, U2, "yearly", "@yearly");
    rows_t r = stored(f, U1);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.rows[0].name, "hourly");
    assert_int_equal(r.rows[0].next_due, utc(2026, 1, 1, 1, 0, 0));
    assert_string_equal(r.rows[1].cron, "* * * * *");
    assert_int_equal(r.rows[1].next_due, t0 + 60000);
    /* A run is recorded before it is delivered. */
    f->done_at_once = true;
    advance_to(f, t0 + 60000);
    assert_int_equal(f->n_fired, 1);
    r = stored(f, U1);
    assert_int_equal(r.rows[1].next_due, t0 + 120000);
    assert_int_equal(r.rows[1].last_run, t0 + 60000);
    assert_string_equal(r.rows[1].last_result, "ok");

    /* "Restart" three hours later: each task whose next_due passed fires
     * ONCE, missed, with the first missed time; then normally. */
    pd_tasks_destroy(&f->tasks);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    f->n_fired = 0;
    f->now = t0 + 3 * 3600000 + 30000; /* 03:00:30 */
    make(f, 0, true);
    assert_int_equal(pd_tasks_count(f->tasks, NULL), 3);
    pd_task_info_t info;
    assert_int_equal(pd_tasks_get(f->tasks, U1, "minutely", &info), 0);
    assert_true(info.missed_pending);
    assert_int_equal(pd_tasks_get(f->tasks, U2, "yearly", &info), 0);
    assert_false(info.missed_pending);
    /* Fired from the loop, not from pd_tasks_new. */
    assert_int_equal(f->n_fired, 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->n_fired, 2);
    assert_int_equal(f->metrics.task_missed, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_true(f->fired[i].missed);
        if (strcmp(f->fired[i].name, "minutely") == 0)
            assert_int_equal(f->fired[i].scheduled, t0 + 120000);
        else
            assert_int_equal(f->fired[i].scheduled, utc(2026, 1, 1, 1, 0, 0));
    }
    /* Once: nothing more until the next regular time. */
    advance_to(f, f->now);
    assert_int_equal(f->n_fired, 2);
    advance_to(f, t0 + 3 * 3600000 + 60000);
    assert_int_equal(f->n_fired, 3);
    assert_false(f->fired[2].missed);
    assert_string_equal(f->fired[2].name, "minutely");
    assert_int_equal(f->fired[2].scheduled, t0 + 3 * 3600000 + 60000);
    r = stored(f, U1);
    assert_int_equal(r.rows[1].next_due, t0 + 3 * 3600000 + 120000);

    /* A clock set back: a stored next_due far ahead is pulled in. */
    pd_tasks_destroy(&f->tasks);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    f->now = t0 - 86400000; /* a day earlier */
    make(f, 0, true);
    assert_int_equal(pd_tasks_get(f->tasks, U1, "minutely", &info), 0);
    assert_false(info.missed_pending);
    assert_int_equal(info.next_due, t0 - 86400000 + 60000);

    /* Unregister and forget reach the store; deleting the instance takes
     * its rows along (ON DELETE CASCADE). */
    assert_int_equal(pd_tasks_unregister(f->tasks, U1, "hourly"), 0);
    assert_int_equal(stored(f, U1).n, 1);
    assert_int_equal(pd_tasks_forget_instance(f->tasks, U1), 1);
    assert_int_equal(stored(f, U1).n, 0);
    assert_int_equal(stored(f, U2).n, 1);
    assert_int_equal(pd_store_delete_instance(f->store, U2), 0);
    assert_int_equal(stored(f, NULL).n, 0);
}

static int collect_svc(const pd_store_service_t *s, void *arg)
{
    pd_store_service_t *out = arg;
    *out = *s;
    return 1; /* stop after the first: returned by the list */
}

static void test_store_services_and_migration(void **state)
{
    fx_t *f = *state;
    open_store(f);
    pd_store_info_t info;
    assert_int_equal(pd_store_info(f->store, &info), 0);
    assert_int_equal(info.schema_version, 2);
    add_instance(f, U1);
    pd_store_service_t sv = {0};
    snprintf(sv.instance, sizeof sv.instance, "%s", U1);
    sv.port = 0;
    snprintf(sv.health_path, sizeof sv.health_path, "/health");
    assert_int_equal(pd_store_put_service(f->store, &sv), -EINVAL);
    sv.port = 8080;
    assert_int_equal(pd_store_put_service(f->store, &sv), 0);
    sv.port = 8081; /* replaces */
    assert_int_equal(pd_store_put_service(f->store, &sv), 0);
    snprintf(sv.instance, sizeof sv.instance, "%s", U2);
    assert_int_equal(pd_store_put_service(f->store, &sv), -ENOENT);
    pd_store_service_t got = {0};
    assert_int_equal(pd_store_list_services(f->store, collect_svc, &got), 1);
    assert_string_equal(got.instance, U1);
    assert_int_equal(got.port, 8081);
    assert_string_equal(got.health_path, "/health");
    assert_true(got.registered_at > 0);
    assert_int_equal(pd_store_delete_service(f->store, U1), 0);
    assert_int_equal(pd_store_delete_service(f->store, U1), -ENOENT);
    pd_store_task_t t = {0};
    snprintf(t.instance, sizeof t.instance, "%s", U1);
    snprintf(t.name, sizeof t.name, "n");
    snprintf(t.cron, sizeof t.cron, "* * * * *");
    assert_int_equal(pd_store_put_task(f->store, &t), 0);
    assert_int_equal(pd_store_update_task_run(f->store, U1, "n", 5, 4, "ok"), 0);
    assert_int_equal(pd_store_update_task_run(f->store, U1, "zz", 5, 4, "ok"), -ENOENT);
    assert_int_equal(pd_store_delete_task(f->store, U1, "zz"), -ENOENT);
    t.name[0] = 0;
    assert_int_equal(pd_store_put_task(f->store, &t), -EINVAL);
    pd_store_close(&f->store);

    /* A version-1 file (no tasks/services tables) is migrated, its
     * instances kept. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE tasks; DROP TABLE services; "
                                  "PRAGMA user_version = 1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    open_store(f);
    assert_int_equal(pd_store_info(f->store, &info), 0);
    assert_int_equal(info.schema_version, 2);
    pd_store_instance_t in = {0};
    assert_int_equal(pd_store_get_instance(f->store, U1, &in), 0);
    pd_store_instance_clear(&in);
    assert_int_equal(stored(f, NULL).n, 0);
    snprintf(t.name, sizeof t.name, "again");
    assert_int_equal(pd_store_put_task(f->store, &t), 0);
    assert_int_equal(stored(f, U1).n, 1);
}

/* The real timer and the wall clock: a seconds-level task fires within a
 * few seconds (deadline, not a sleep). */
static void on_deadline(uv_timer_t *h)
{
    *(bool *)h->data = true;
    uv_stop(h->loop);
}

static void test_real_timer(void **state)
{
    fx_t *f = *state;
    make(f, 0, false);
    f->done_at_once = true;
    reg_ok(f, U1, "tick", "* * * * * *");
    uv_timer_t deadline;
    bool expired = false;
    uv_timer_init(&f->loop, &deadline);
    deadline.data = &expired;
    uv_timer_start(&deadline, on_deadline, 10000, 0);
    while (f->n_fired < 2 && !expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the close completes: it lives on this stack */
    assert_false(expired);
    assert_int_equal(f->fired[1].scheduled - f->fired[0].scheduled, 1000);
    int64_t now = (int64_t)plat_now_ms();
    assert_true(f->fired[1].scheduled <= now);
    assert_int_equal(f->metrics.task_runs, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_on_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skips_and_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persisted_and_missed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_services_and_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_timer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
