/* platformd's host modes and host<->instances map: every action x mode
 * decision, reuse vs new host, powerSave packing, idle listing, removal,
 * dev candidates, kill-after rules and attach/detach bookkeeping errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "modes.h"

static const pd_action_t all_actions[] = {
    PD_ACTION_INSTALL, PD_ACTION_UNINSTALL, PD_ACTION_ENABLE, PD_ACTION_DISABLE,
    PD_ACTION_UPGRADE, PD_ACTION_START,     PD_ACTION_STOP,
};
#define N_ACTIONS (sizeof(all_actions) / sizeof(all_actions[0]))

static const pd_mode_t all_modes[] = {PD_MODE_HIGH_PERFORMANCE, PD_MODE_POWER_SAVE, PD_MODE_DEV};

/* Ids: instance n -> a UUID, host n -> "host-<uuid>"; both sort by n. */
static char ibuf[8][64], hbuf[8][64];
static unsigned ib, hb;

static const char *inst(unsigned n)
{
    char *b = ibuf[ib++ % 8];
    snprintf(b, 64, "00000000-0000-4000-8000-%012x", n);
    return b;
}

static const char *host(unsigned n)
{
    char *b = hbuf[hb++ % 8];
    snprintf(b, 64, "host-00000000-0000-4000-8000-%012x", n);
    return b;
}

static const pd_mode_opts_t opts3 = {.max_instances_per_host = 3};

static int setup(void **state)
{
    *state = pd_hostmap_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    pd_hostmap_t *map = *state;
    pd_hostmap_destroy(&map);
    assert_null(map);
    pd_hostmap_destroy(&map); /* NULL is fine */
    pd_hostmap_destroy(NULL);
    return 0;
}

static pd_mode_choice_t choose(pd_hostmap_t *map, pd_mode_t mode, pd_action_t action,
                               unsigned instance, const char *lang, const char *ver)
{
    return pd_mode_choose(map, mode, action, inst(instance), lang, ver, &opts3, NULL, 0);
}

static void assert_use(pd_mode_choice_t c, const char *host_id, bool attached)
{
    assert_int_equal(c.kind, PD_CHOICE_USE);
    assert_string_equal(c.host_id, host_id);
    assert_int_equal(c.attached, attached);
    assert_int_equal(c.error, 0);
    assert_null(c.reason);
}

static void assert_spawn(pd_mode_choice_t c)
{
    assert_int_equal(c.kind, PD_CHOICE_SPAWN);
    assert_string_equal(c.host_id, "");
    assert_int_equal(c.error, 0);
    assert_false(c.add_first);
}

/* ---- names ------------------------------------------------------------- */

static void test_mode_parse(void **state)
{
    (void)state;
    pd_mode_t m = PD_MODE_DEV;
    assert_int_equal(pd_mode_parse(NULL, &m), 0);
    assert_int_equal(m, PD_MODE_HIGH_PERFORMANCE);
    m = PD_MODE_DEV;
    assert_int_equal(pd_mode_parse("", &m), 0);
    assert_int_equal(m, PD_MODE_HIGH_PERFORMANCE);
    assert_int_equal(pd_mode_parse("highPerformance", &m), 0);
    assert_int_equal(m, PD_MODE_HIGH_PERFORMANCE);
    assert_int_equal(pd_mode_parse("powerSave", &m), 0);
    assert_int_equal(m, PD_MODE_POWER_SAVE);
    assert_int_equal(pd_mode_parse("dev", &m), 0);
    assert_int_equal(m, PD_MODE_DEV);
    /* unknown, wrong case, trailing junk: -EINVAL, *out untouched */
    const char *bad[] = {"fast", "powersave", "DEV", "dev ", "highPerformanceX", " dev"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = PD_MODE_DEV;
        assert_int_equal(pd_mode_parse(bad[i], &m), -EINVAL);
        assert_int_equal(m, PD_MODE_DEV);
    }
    assert_int_equal(pd_mode_parse("dev", NULL), -EINVAL);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(pd_mode_parse(pd_mode_name(all_modes[i]), &m), 0);
        assert_int_equal(m, all_modes[i]);
    }
    assert_string_equal(pd_mode_name((pd_mode_t)42), "?");
}

static void test_action_parse(void **state)
{
    (void)state;
    const char *names[] = {"install", "uninstall", "enable", "disable", "upgrade", "start", "stop"};
    pd_action_t a;
    for (size_t i = 0; i < N_ACTIONS; i++) {
        assert_int_equal(pd_action_parse(names[i], &a), 0);
        assert_int_equal(a, all_actions[i]);
        assert_string_equal(pd_action_name(all_actions[i]), names[i]);
    }
    a = PD_ACTION_STOP;
    assert_int_equal(pd_action_parse("Start", &a), -EINVAL);
    assert_int_equal(pd_action_parse("", &a), -EINVAL);
    assert_int_equal(pd_action_parse(NULL, &a), -EINVAL);
    assert_int_equal(a, PD_ACTION_STOP);
    assert_int_equal(pd_action_parse("start", NULL), -EINVAL);
    assert_string_equal(pd_action_name((pd_action_t)-1), "?");
    assert_string_equal(pd_action_name((pd_action_t)PD_ACTION_COUNT), "?");
}

/* ---- map bookkeeping ---------------------------------------------------- */

static void test_add_host_errors(void **state)
{
    pd_hostmap_t *map = *state;
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_POWER_SAVE, 5), 0);
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_POWER_SAVE, 6), -EEXIST);
    assert_int_equal(pd_hostmap_add_host(map, "hostboot-a", "c", "1", PD_MODE_DEV, 1), -EINVAL);
    assert_int_equal(pd_hostmap_add_host(map, "host-nope", "c", "1", PD_MODE_DEV, 1), -EINVAL);
    assert_int_equal(pd_hostmap_add_host(map, NULL, "c", "1", PD_MODE_DEV, 1), -EINVAL);
    assert_int_equal(pd_hostmap_add_host(map, host(2), "", "1", PD_MODE_DEV, 1), -EINVAL);
    assert_int_equal(pd_hostmap_add_host(map, host(2), "c", NULL, PD_MODE_DEV, 1), -EINVAL);
    assert_int_equal(pd_hostmap_add_host(map, host(2), "c", "1", (pd_mode_t)9, 1), -EINVAL);
    assert_int_equal(pd_hostmap_add_host(NULL, host(2), "c", "1", PD_MODE_DEV, 1), -EINVAL);
    char longf[PD_HOSTMAP_FIELD_MAX + 2];
    memset(longf, 'x', sizeof(longf) - 1);
    longf[sizeof(longf) - 1] = '\0';
    assert_int_equal(pd_hostmap_add_host(map, host(2), longf, "1", PD_MODE_DEV, 1), -EINVAL);
    longf[PD_HOSTMAP_FIELD_MAX] = '\0'; /* exactly the maximum is fine */
    assert_int_equal(pd_hostmap_add_host(map, host(2), longf, "1", PD_MODE_DEV, 1), 0);
    assert_int_equal(pd_hostmap_n_hosts(map), 2);

    pd_hostmap_host_t h;
    assert_int_equal(pd_hostmap_host_info(map, host(1), &h), 0);
    assert_string_equal(h.id, host(1));
    assert_string_equal(h.language, "c");
    assert_string_equal(h.version, "1");
    assert_int_equal(h.mode, PD_MODE_POWER_SAVE);
    assert_false(h.retiring);
    assert_int_equal(h.n_instances, 0);
    assert_int_equal(h.added_ms, 5);
    assert_true(h.idle);
    assert_int_equal(h.idle_since_ms, 5);
    assert_int_equal(pd_hostmap_host_info(map, host(3), &h), -ENOENT);
    assert_int_equal(pd_hostmap_host_info(map, "x", &h), -EINVAL);
}

static void test_attach_detach_bookkeeping(void **state)
{
    pd_hostmap_t *map = *state;
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_POWER_SAVE, 0), 0);
    assert_int_equal(pd_hostmap_add_host(map, host(2), "c", "1", PD_MODE_POWER_SAVE, 0), 0);

    /* unknown host, bad ids */
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(9), false, 1), -ENOENT);
    assert_int_equal(pd_hostmap_attach(map, "not-a-uuid", host(1), false, 1), -EINVAL);
    assert_int_equal(
        pd_hostmap_attach(map, "00000000-0000-4000-8000-00000000000A", host(1), false, 1),
        -EINVAL); /* uppercase is not canonical */
    assert_int_equal(pd_hostmap_attach(map, inst(1), "platform", false, 1), -EINVAL);
    assert_int_equal(pd_hostmap_attach(NULL, inst(1), host(1), false, 1), -EINVAL);
    assert_int_equal(pd_hostmap_n_instances(map), 0);

    /* attach; double attach (same or other host) is -EEXIST, no move */
    assert_int_equal(pd_hostmap_attach(map, inst(3), host(1), true, 1), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(1), false, 1), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(2), host(2), false, 1), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(1), false, 2), -EEXIST);
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(2), false, 2), -EEXIST);
    assert_int_equal(pd_hostmap_n_instances(map), 3);

    char out[PD_HOSTMAP_ID_MAX + 1];
    assert_int_equal(pd_hostmap_host_of(map, inst(1), out), 0);
    assert_string_equal(out, host(1));
    assert_int_equal(pd_hostmap_host_of(map, inst(9), out), -ENOENT);
    assert_string_equal(out, "");
    assert_int_equal(pd_hostmap_host_of(map, "bad", out), -EINVAL);

    /* the listing is a copy in id order */
    pd_idlist_t l = PD_IDLIST_INIT;
    assert_int_equal(pd_hostmap_instances(map, host(1), &l), 2);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.ids[0], inst(1));
    assert_string_equal(l.ids[1], inst(3));
    assert_int_equal(pd_hostmap_instances(map, host(1), NULL), 2);
    assert_int_equal(pd_hostmap_instances(map, host(9), &l), -ENOENT);
    assert_int_equal(pd_hostmap_instances(map, "x", &l), -EINVAL);

    pd_hostmap_host_t h;
    assert_int_equal(pd_hostmap_host_info(map, host(1), &h), 0);
    assert_int_equal(h.n_instances, 2);
    assert_int_equal(h.n_running, 1);
    assert_false(h.idle);

    pd_hostmap_instance_t ii;
    assert_int_equal(pd_hostmap_instance_info(map, inst(3), &ii), 0);
    assert_string_equal(ii.id, inst(3));
    assert_string_equal(ii.host_id, host(1));
    assert_true(ii.running);
    assert_false(ii.busy);
    assert_int_equal(pd_hostmap_instance_info(map, inst(8), &ii), -ENOENT);

    /* detach; copies taken earlier stay valid */
    assert_int_equal(pd_hostmap_detach(map, inst(1), 3), 0);
    assert_int_equal(pd_hostmap_detach(map, inst(1), 3), -ENOENT);
    assert_int_equal(pd_hostmap_detach(map, "bad", 3), -EINVAL);
    assert_string_equal(out, "");
    assert_string_equal(l.ids[0], inst(1));
    assert_int_equal(pd_hostmap_host_of(map, inst(1), out), -ENOENT);
    assert_int_equal(pd_hostmap_n_instances(map), 2);
    /* after detaching, it may attach elsewhere */
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(2), false, 4), 0);
    assert_int_equal(pd_hostmap_host_of(map, inst(1), out), 0);
    assert_string_equal(out, host(2));

    /* set_running */
    assert_int_equal(pd_hostmap_set_running(map, inst(9), true, 4), -ENOENT);
    assert_int_equal(pd_hostmap_set_running(map, inst(3), false, 10), 0);
    assert_int_equal(pd_hostmap_set_running(map, inst(3), false, 11), 0); /* no change */
    assert_int_equal(pd_hostmap_host_info(map, host(1), &h), 0);
    assert_int_equal(h.n_running, 0);
    assert_true(h.idle);
    assert_int_equal(h.idle_since_ms, 10);

    /* all hosts, in id order */
    pd_idlist_clear(&l);
    assert_int_equal(pd_hostmap_hosts(map, &l), 2);
    assert_string_equal(l.ids[0], host(1));
    assert_string_equal(l.ids[1], host(2));
    pd_idlist_clear(&l);
    assert_null(l.ids);
    assert_int_equal(l.n, 0);
    pd_idlist_clear(NULL);
}

static void test_high_performance_host_holds_one_instance(void **state)
{
    pd_hostmap_t *map = *state;
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_HIGH_PERFORMANCE, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(1), false, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(2), host(1), false, 0), -EBUSY);
    assert_int_equal(pd_hostmap_begin(map, inst(2), host(1), 0), -EBUSY);
    assert_int_equal(pd_hostmap_detach(map, inst(1), 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(2), host(1), false, 0), 0);
}

static void test_remove_host_detaches_instances(void **state)
{
    pd_hostmap_t *map = *state;
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_POWER_SAVE, 0), 0);
    assert_int_equal(pd_hostmap_add_host(map, host(2), "c", "1", PD_MODE_POWER_SAVE, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(5), host(1), true, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(2), host(1), false, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(7), host(2), true, 0), 0);

    pd_idlist_t gone = PD_IDLIST_INIT;
    assert_int_equal(pd_hostmap_remove_host(map, host(1), &gone), 2);
    assert_int_equal(gone.n, 2);
    assert_string_equal(gone.ids[0], inst(2));
    assert_string_equal(gone.ids[1], inst(5));
    char out[PD_HOSTMAP_ID_MAX + 1];
    assert_int_equal(pd_hostmap_host_of(map, inst(5), out), -ENOENT);
    assert_int_equal(pd_hostmap_host_of(map, inst(2), out), -ENOENT);
    assert_int_equal(pd_hostmap_host_of(map, inst(7), out), 0);
    assert_string_equal(out, host(2));
    assert_int_equal(pd_hostmap_n_hosts(map), 1);
    assert_int_equal(pd_hostmap_n_instances(map), 1);
    pd_hostmap_host_t h;
    assert_int_equal(pd_hostmap_host_info(map, host(1), &h), -ENOENT);

    assert_int_equal(pd_hostmap_remove_host(map, host(1), &gone), -ENOENT);
    assert_int_equal(pd_hostmap_remove_host(map, "host-x", &gone), -EINVAL);
    assert_int_equal(pd_hostmap_remove_host(map, host(2), NULL), 1); /* list optional */
    assert_int_equal(gone.n, 2);
    assert_int_equal(pd_hostmap_n_instances(map), 0);
    /* an instance of a removed host can attach again */
    assert_int_equal(pd_hostmap_add_host(map, host(3), "c", "1", PD_MODE_POWER_SAVE, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(5), host(3), false, 0), 0);
    pd_idlist_clear(&gone);
}

static void test_retire(void **state)
{
    pd_hostmap_t *map = *state;
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_POWER_SAVE, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(1), true, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(2), host(1), false, 0), 0);
    pd_idlist_t gone = PD_IDLIST_INIT;
    assert_int_equal(pd_hostmap_retire(map, host(1), &gone), 2);
    assert_int_equal(gone.n, 2);
    assert_int_equal(pd_hostmap_retire(map, host(1), &gone), 0); /* again: fine */
    assert_int_equal(pd_hostmap_retire(map, host(2), &gone), -ENOENT);
    assert_int_equal(pd_hostmap_retire(map, "x", &gone), -EINVAL);
    pd_idlist_clear(&gone);

    pd_hostmap_host_t h;
    assert_int_equal(pd_hostmap_host_info(map, host(1), &h), 0);
    assert_true(h.retiring);
    assert_int_equal(h.n_instances, 0);
    assert_int_equal(pd_hostmap_n_hosts(map), 1); /* still listed until its exit */
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(1), false, 1), -ESHUTDOWN);
    assert_int_equal(pd_hostmap_begin(map, inst(1), host(1), 1), -ESHUTDOWN);
    /* never chosen, never listed idle */
    assert_spawn(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, 1, "c", "1"));
    assert_int_equal(pd_hostmap_idle(map, 1000000, 1, NULL), 0);
    assert_int_equal(pd_hostmap_remove_host(map, host(1), NULL), 0);
    assert_int_equal(pd_hostmap_n_hosts(map), 0);
}

static void test_begin_end(void **state)
{
    pd_hostmap_t *map = *state;
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_POWER_SAVE, 0), 0);
    assert_int_equal(pd_hostmap_add_host(map, host(2), "c", "1", PD_MODE_POWER_SAVE, 0), 0);
    assert_int_equal(pd_hostmap_begin(map, inst(1), host(9), 1), -ENOENT);
    assert_int_equal(pd_hostmap_begin(map, "x", host(1), 1), -EINVAL);
    assert_int_equal(pd_hostmap_begin(map, inst(1), host(1), 1), 0); /* attaches */
    pd_hostmap_instance_t ii;
    assert_int_equal(pd_hostmap_instance_info(map, inst(1), &ii), 0);
    assert_true(ii.busy);
    assert_false(ii.running);
    assert_int_equal(pd_hostmap_begin(map, inst(1), host(1), 2), -EALREADY);
    assert_int_equal(pd_hostmap_begin(map, inst(1), host(2), 2), -EEXIST);
    pd_hostmap_host_t h;
    assert_int_equal(pd_hostmap_host_info(map, host(1), &h), 0);
    assert_int_equal(h.n_busy, 1);
    assert_false(h.idle);
    assert_int_equal(pd_hostmap_end(map, inst(1), 7), 0);
    assert_int_equal(pd_hostmap_end(map, inst(1), 8), 0); /* not busy: fine */
    assert_int_equal(pd_hostmap_end(map, inst(2), 8), -ENOENT);
    assert_int_equal(pd_hostmap_host_info(map, host(1), &h), 0);
    assert_int_equal(h.n_busy, 0);
    assert_true(h.idle);
    assert_int_equal(h.idle_since_ms, 7);
    /* begin on an attached, idle instance marks it busy again */
    assert_int_equal(pd_hostmap_begin(map, inst(1), host(1), 9), 0);
    assert_int_equal(pd_hostmap_n_instances(map), 1);
}

/* ---- highPerformance ------------------------------------------------------ */

static void test_high_performance_choices(void **state)
{
    pd_hostmap_t *map = *state;
    /* no host yet: every action spawns, nothing to leave */
    for (size_t i = 0; i < N_ACTIONS; i++) {
        pd_mode_choice_t c = choose(map, PD_MODE_HIGH_PERFORMANCE, all_actions[i], 1, "c", "1");
        assert_spawn(c);
        assert_string_equal(c.leave_host, "");
        assert_false(c.kill_leave_host);
    }
    /* with its own host: start/stop reuse it, any other action gets a new
     * host and the old one (which held only this instance) is to die */
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_HIGH_PERFORMANCE, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(1), true, 0), 0);
    for (size_t i = 0; i < N_ACTIONS; i++) {
        pd_action_t a = all_actions[i];
        pd_mode_choice_t c = choose(map, PD_MODE_HIGH_PERFORMANCE, a, 1, "c", "1");
        if (a == PD_ACTION_START || a == PD_ACTION_STOP) {
            assert_use(c, host(1), true);
            assert_string_equal(c.leave_host, "");
        } else {
            assert_spawn(c);
            assert_string_equal(c.leave_host, host(1));
            assert_true(c.kill_leave_host);
        }
    }
    /* another instance never shares it */
    for (size_t i = 0; i < N_ACTIONS; i++)
        assert_spawn(choose(map, PD_MODE_HIGH_PERFORMANCE, all_actions[i], 2, "c", "1"));
    /* own host of another runtime version: not reused */
    pd_mode_choice_t c = choose(map, PD_MODE_HIGH_PERFORMANCE, PD_ACTION_START, 1, "c", "2");
    assert_spawn(c);
    assert_string_equal(c.leave_host, host(1));
    /* the choice does not change the map */
    char out[PD_HOSTMAP_ID_MAX + 1];
    assert_int_equal(pd_hostmap_host_of(map, inst(1), out), 0);
    assert_string_equal(out, host(1));
    assert_int_equal(pd_hostmap_n_hosts(map), 1);
}

static void test_high_performance_own_host_in_other_mode(void **state)
{
    pd_hostmap_t *map = *state;
    /* the plugin moved from powerSave to highPerformance: leave the shared
     * host without killing it */
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_POWER_SAVE, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(1), false, 0), 0);
    pd_mode_choice_t c = choose(map, PD_MODE_HIGH_PERFORMANCE, PD_ACTION_START, 1, "c", "1");
    assert_spawn(c);
    assert_string_equal(c.leave_host, host(1));
    assert_false(c.kill_leave_host);
}

static void test_keep_after_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ACTIONS; i++) {
        pd_action_t a = all_actions[i];
        bool hp_keeps = a == PD_ACTION_START || a == PD_ACTION_ENABLE;
        assert_int_equal(pd_mode_keep_after(PD_MODE_HIGH_PERFORMANCE, a, true), hp_keeps);
        assert_false(pd_mode_keep_after(PD_MODE_HIGH_PERFORMANCE, a, false));
        assert_true(pd_mode_keep_after(PD_MODE_POWER_SAVE, a, true));
        assert_true(pd_mode_keep_after(PD_MODE_POWER_SAVE, a, false));
        assert_true(pd_mode_keep_after(PD_MODE_DEV, a, true));
        assert_true(pd_mode_keep_after(PD_MODE_DEV, a, false));
    }
    assert_true(pd_mode_keep_after((pd_mode_t)7, PD_ACTION_STOP, false));
    assert_true(pd_mode_keep_after(PD_MODE_HIGH_PERFORMANCE, (pd_action_t)99, false));
}

/* Run one whole action through choose/begin/finish, spawning host `spawn`
 * when told to. Returns pd_mode_finish's result; *kill gets the host. */
static int run_action(pd_hostmap_t *map, pd_mode_t mode, pd_action_t a, unsigned instance,
                      unsigned spawn, bool ok, uint64_t now, char kill[PD_HOSTMAP_ID_MAX + 1],
                      char used[PD_HOSTMAP_ID_MAX + 1])
{
    pd_mode_choice_t c = choose(map, mode, a, instance, "c", "1");
    assert_int_not_equal(c.kind, PD_CHOICE_ERROR);
    if (c.leave_host[0]) {
        assert_int_equal(pd_hostmap_detach(map, inst(instance), now), 0);
        if (c.kill_leave_host)
            assert_true(pd_hostmap_retire(map, c.leave_host, NULL) >= 0);
    }
    if (c.kind == PD_CHOICE_SPAWN) {
        assert_int_equal(pd_hostmap_add_host(map, host(spawn), "c", "1", mode, now), 0);
        snprintf(used, PD_HOSTMAP_ID_MAX + 1, "%s", host(spawn));
    } else {
        snprintf(used, PD_HOSTMAP_ID_MAX + 1, "%s", c.host_id);
    }
    assert_int_equal(pd_hostmap_begin(map, inst(instance), used, now), 0);
    return pd_mode_finish(map, a, inst(instance), ok, now, kill);
}

static void test_high_performance_lifecycle(void **state)
{
    pd_hostmap_t *map = *state;
    char kill[PD_HOSTMAP_ID_MAX + 1], used[PD_HOSTMAP_ID_MAX + 1];
    char out[PD_HOSTMAP_ID_MAX + 1];

    /* install: a new host, killed afterwards, the instance detached */
    assert_int_equal(
        run_action(map, PD_MODE_HIGH_PERFORMANCE, PD_ACTION_INSTALL, 1, 1, true, 10, kill, used),
        1);
    assert_string_equal(used, host(1));
    assert_string_equal(kill, host(1));
    assert_int_equal(pd_hostmap_host_of(map, inst(1), out), -ENOENT);
    assert_int_equal(pd_hostmap_remove_host(map, host(1), NULL), 0); /* its exit report */

    /* enable succeeds: kept, instance stays attached (not running) */
    assert_int_equal(
        run_action(map, PD_MODE_HIGH_PERFORMANCE, PD_ACTION_ENABLE, 1, 2, true, 20, kill, used), 0);
    assert_string_equal(kill, "");
    assert_int_equal(pd_hostmap_host_of(map, inst(1), out), 0);
    assert_string_equal(out, host(2));

    /* start reuses it, succeeds: kept and running */
    assert_int_equal(
        run_action(map, PD_MODE_HIGH_PERFORMANCE, PD_ACTION_START, 1, 99, true, 30, kill, used), 0);
    assert_string_equal(used, host(2));
    pd_hostmap_instance_t ii;
    assert_int_equal(pd_hostmap_instance_info(map, inst(1), &ii), 0);
    assert_true(ii.running);
    assert_false(ii.busy);

    /* stop reuses it, then it is killed */
    assert_int_equal(
        run_action(map, PD_MODE_HIGH_PERFORMANCE, PD_ACTION_STOP, 1, 99, true, 40, kill, used), 1);
    assert_string_equal(used, host(2));
    assert_string_equal(kill, host(2));
    assert_int_equal(pd_hostmap_host_of(map, inst(1), out), -ENOENT);
    pd_hostmap_host_t h;
    assert_int_equal(pd_hostmap_host_info(map, host(2), &h), 0);
    assert_true(h.retiring);
    assert_int_equal(pd_hostmap_remove_host(map, host(2), NULL), 0);

    /* a failed start on a new host: killed */
    assert_int_equal(
        run_action(map, PD_MODE_HIGH_PERFORMANCE, PD_ACTION_START, 1, 3, false, 50, kill, used), 1);
    assert_string_equal(kill, host(3));
    assert_int_equal(pd_hostmap_remove_host(map, host(3), NULL), 0);

    /* a failed enable: killed */
    assert_int_equal(
        run_action(map, PD_MODE_HIGH_PERFORMANCE, PD_ACTION_ENABLE, 1, 4, false, 60, kill, used),
        1);
    assert_int_equal(pd_hostmap_remove_host(map, host(4), NULL), 0);

    /* enable ok, then disable: a new host, the kept one is left and killed */
    assert_int_equal(
        run_action(map, PD_MODE_HIGH_PERFORMANCE, PD_ACTION_ENABLE, 1, 5, true, 70, kill, used), 0);
    pd_mode_choice_t c = choose(map, PD_MODE_HIGH_PERFORMANCE, PD_ACTION_DISABLE, 1, "c", "1");
    assert_spawn(c);
    assert_string_equal(c.leave_host, host(5));
    assert_true(c.kill_leave_host);
    assert_int_equal(
        run_action(map, PD_MODE_HIGH_PERFORMANCE, PD_ACTION_DISABLE, 1, 6, true, 80, kill, used),
        1);
    assert_string_equal(used, host(6));
    assert_string_equal(kill, host(6));
    assert_int_equal(pd_hostmap_host_info(map, host(5), &h), 0);
    assert_true(h.retiring);

    /* hosts never idle out in highPerformance */
    assert_int_equal(pd_hostmap_idle(map, 1000000, 0, NULL), 0);

    /* finish on an unattached instance */
    assert_int_equal(pd_mode_finish(map, PD_ACTION_START, inst(42), true, 90, kill), -ENOENT);
    assert_string_equal(kill, "");
    assert_int_equal(pd_mode_finish(map, PD_ACTION_START, "x", true, 90, kill), -EINVAL);
    assert_int_equal(pd_mode_finish(map, (pd_action_t)50, inst(1), true, 90, NULL), -EINVAL);
}

static void test_uninstall_detaches(void **state)
{
    pd_hostmap_t *map = *state;
    char kill[PD_HOSTMAP_ID_MAX + 1], used[PD_HOSTMAP_ID_MAX + 1], out[PD_HOSTMAP_ID_MAX + 1];
    /* powerSave: host kept, instance gone */
    assert_int_equal(
        run_action(map, PD_MODE_POWER_SAVE, PD_ACTION_INSTALL, 1, 1, true, 10, kill, used), 0);
    assert_int_equal(pd_hostmap_host_of(map, inst(1), out), 0);
    assert_int_equal(
        run_action(map, PD_MODE_POWER_SAVE, PD_ACTION_UNINSTALL, 1, 99, true, 20, kill, used), 0);
    assert_string_equal(used, host(1));
    assert_int_equal(pd_hostmap_host_of(map, inst(1), out), -ENOENT);
    /* a failed uninstall keeps it attached */
    assert_int_equal(
        run_action(map, PD_MODE_POWER_SAVE, PD_ACTION_INSTALL, 2, 99, true, 30, kill, used), 0);
    assert_int_equal(
        run_action(map, PD_MODE_POWER_SAVE, PD_ACTION_UNINSTALL, 2, 99, false, 40, kill, used), 0);
    assert_int_equal(pd_hostmap_host_of(map, inst(2), out), 0);
    assert_string_equal(out, host(1));
}

/* ---- powerSave ------------------------------------------------------------ */

static void test_power_save_every_action_same_rule(void **state)
{
    pd_hostmap_t *map = *state;
    for (size_t i = 0; i < N_ACTIONS; i++)
        assert_spawn(choose(map, PD_MODE_POWER_SAVE, all_actions[i], 1, "c", "1"));
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_POWER_SAVE, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(2), host(1), true, 0), 0);
    for (size_t i = 0; i < N_ACTIONS; i++) {
        /* a newcomer shares the host; its owner reuses it */
        pd_mode_choice_t c = choose(map, PD_MODE_POWER_SAVE, all_actions[i], 1, "c", "1");
        assert_use(c, host(1), false);
        assert_string_equal(c.leave_host, "");
        assert_use(choose(map, PD_MODE_POWER_SAVE, all_actions[i], 2, "c", "1"), host(1), true);
    }
}

static void test_power_save_packing(void **state)
{
    pd_hostmap_t *map = *state;
    /* h1: 1 instance, h2: 2, h3: 3 (full at max 3), h4: 2 */
    unsigned fill[] = {0, 1, 2, 3, 2};
    unsigned next = 100;
    for (unsigned h = 1; h <= 4; h++) {
        assert_int_equal(pd_hostmap_add_host(map, host(h), "c", "1", PD_MODE_POWER_SAVE, 0), 0);
        for (unsigned k = 0; k < fill[h]; k++)
            assert_int_equal(pd_hostmap_attach(map, inst(next++), host(h), true, 0), 0);
    }
    /* the fullest with room, ties by smallest id: h2 (2) over h4 (2), not h3 (full) */
    assert_use(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, 1, "c", "1"), host(2), false);
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(2), false, 0), 0);
    /* h2 now full: h4 */
    assert_use(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_INSTALL, 2, "c", "1"), host(4), false);
    assert_int_equal(pd_hostmap_attach(map, inst(2), host(4), false, 0), 0);
    /* then h1 */
    assert_use(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_INSTALL, 3, "c", "1"), host(1), false);
    assert_int_equal(pd_hostmap_attach(map, inst(3), host(1), false, 0), 0);
    assert_use(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_INSTALL, 4, "c", "1"), host(1), false);
    assert_int_equal(pd_hostmap_attach(map, inst(4), host(1), false, 0), 0);
    /* all full: spawn */
    assert_spawn(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_INSTALL, 5, "c", "1"));
    /* an instance already on a full host still reuses it */
    assert_use(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, 1, "c", "1"), host(2), true);
    /* a bigger limit makes room again */
    pd_mode_opts_t big = {.max_instances_per_host = 4};
    pd_mode_choice_t c =
        pd_mode_choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, inst(5), "c", "1", &big, NULL, 0);
    assert_use(c, host(1), false);
    /* limit 1 = one instance per host */
    pd_mode_opts_t one = {.max_instances_per_host = 1};
    c = pd_mode_choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, inst(5), "c", "1", &one, NULL, 0);
    assert_spawn(c);
}

static void test_power_save_same_runtime_only(void **state)
{
    pd_hostmap_t *map = *state;
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_POWER_SAVE, 0), 0);
    assert_int_equal(pd_hostmap_add_host(map, host(2), "python", "3.11", PD_MODE_POWER_SAVE, 0), 0);
    assert_int_equal(pd_hostmap_add_host(map, host(3), "python", "3.12", PD_MODE_POWER_SAVE, 0), 0);
    /* hosts of other modes are never shared */
    assert_int_equal(pd_hostmap_add_host(map, host(4), "go", "1", PD_MODE_HIGH_PERFORMANCE, 0), 0);
    assert_int_equal(pd_hostmap_add_host(map, host(5), "go", "1", PD_MODE_DEV, 0), 0);

    assert_use(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, 1, "python", "3.12"), host(3),
               false);
    assert_use(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, 1, "python", "3.11"), host(2),
               false);
    assert_use(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, 1, "c", "1"), host(1), false);
    assert_spawn(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, 1, "python", "3.10"));
    assert_spawn(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, 1, "C", "1"));
    assert_spawn(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, 1, "go", "1"));

    /* an instance on a host of another version (after an upgrade) moves:
     * leave its host (not killed: others may share it) for a fitting one */
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(2), true, 0), 0);
    pd_mode_choice_t c = choose(map, PD_MODE_POWER_SAVE, PD_ACTION_UPGRADE, 1, "python", "3.12");
    assert_use(c, host(3), false);
    assert_string_equal(c.leave_host, host(2));
    assert_false(c.kill_leave_host);
    /* the plugin moved from highPerformance: leave and kill its own host */
    assert_int_equal(pd_hostmap_add_host(map, host(6), "c", "1", PD_MODE_HIGH_PERFORMANCE, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(2), host(6), false, 0), 0);
    c = choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, 2, "c", "1");
    assert_use(c, host(1), false);
    assert_string_equal(c.leave_host, host(6));
    assert_true(c.kill_leave_host);
}

static void test_power_save_bad_opts(void **state)
{
    pd_hostmap_t *map = *state;
    pd_mode_choice_t c =
        pd_mode_choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, inst(1), "c", "1", NULL, NULL, 0);
    assert_int_equal(c.kind, PD_CHOICE_ERROR);
    assert_int_equal(c.error, -EINVAL);
    assert_non_null(c.reason);
    pd_mode_opts_t zero = {0};
    c = pd_mode_choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, inst(1), "c", "1", &zero, NULL, 0);
    assert_int_equal(c.kind, PD_CHOICE_ERROR);
    assert_int_equal(c.error, -EINVAL);
    /* the other modes do not need opts */
    c = pd_mode_choose(map, PD_MODE_HIGH_PERFORMANCE, PD_ACTION_START, inst(1), "c", "1", NULL,
                       NULL, 0);
    assert_spawn(c);
}

static void test_power_save_lifecycle_and_idle(void **state)
{
    pd_hostmap_t *map = *state;
    char kill[PD_HOSTMAP_ID_MAX + 1], used[PD_HOSTMAP_ID_MAX + 1], out[PD_HOSTMAP_ID_MAX + 1];
    const uint64_t idle = 1000;
    pd_idlist_t l = PD_IDLIST_INIT;

    /* two instances start on one shared host */
    assert_int_equal(
        run_action(map, PD_MODE_POWER_SAVE, PD_ACTION_START, 1, 1, true, 100, kill, used), 0);
    assert_string_equal(used, host(1));
    assert_int_equal(
        run_action(map, PD_MODE_POWER_SAVE, PD_ACTION_START, 2, 99, true, 200, kill, used), 0);
    assert_string_equal(used, host(1));
    assert_string_equal(kill, "");
    assert_int_equal(pd_hostmap_idle(map, 100000, idle, &l), 0);

    /* one stops: detached, the other still runs: not idle */
    assert_int_equal(
        run_action(map, PD_MODE_POWER_SAVE, PD_ACTION_STOP, 1, 99, true, 300, kill, used), 0);
    assert_int_equal(pd_hostmap_host_of(map, inst(1), out), -ENOENT);
    assert_int_equal(pd_hostmap_idle(map, 100000, idle, &l), 0);

    /* a failed stop leaves it running */
    assert_int_equal(
        run_action(map, PD_MODE_POWER_SAVE, PD_ACTION_STOP, 2, 99, false, 400, kill, used), 0);
    pd_hostmap_instance_t ii;
    assert_int_equal(pd_hostmap_instance_info(map, inst(2), &ii), 0);
    assert_true(ii.running);
    assert_int_equal(pd_hostmap_idle(map, 100000, idle, &l), 0);

    /* the last one stops at 500: idle from 500, listed at 1500, not at 1499 */
    assert_int_equal(
        run_action(map, PD_MODE_POWER_SAVE, PD_ACTION_STOP, 2, 99, true, 500, kill, used), 0);
    pd_hostmap_host_t h;
    assert_int_equal(pd_hostmap_host_info(map, host(1), &h), 0);
    assert_true(h.idle);
    assert_int_equal(h.idle_since_ms, 500);
    assert_int_equal(h.n_instances, 0);
    assert_int_equal(pd_hostmap_idle(map, 500, idle, &l), 0);
    assert_int_equal(pd_hostmap_idle(map, 1499, idle, &l), 0);
    assert_int_equal(pd_hostmap_idle(map, 1500, idle, &l), 1);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.ids[0], host(1));
    assert_int_equal(pd_hostmap_idle(map, 1500, idle, NULL), 1);
    pd_idlist_clear(&l);

    /* an idle host is still chosen; an action on it stops the clock */
    assert_use(choose(map, PD_MODE_POWER_SAVE, PD_ACTION_INSTALL, 3, "c", "1"), host(1), false);
    assert_int_equal(pd_hostmap_begin(map, inst(3), host(1), 1600), 0);
    assert_int_equal(pd_hostmap_idle(map, 5000, idle, NULL), 0);
    /* installed, attached, not running: idle again from 1700 */
    assert_int_equal(pd_mode_finish(map, PD_ACTION_INSTALL, inst(3), true, 1700, kill), 0);
    assert_int_equal(pd_hostmap_host_of(map, inst(3), out), 0);
    assert_int_equal(pd_hostmap_idle(map, 2699, idle, NULL), 0);
    assert_int_equal(pd_hostmap_idle(map, 2700, idle, &l), 1);

    /* the caller retires what it reaps: its instances are detached */
    pd_idlist_t gone = PD_IDLIST_INIT;
    assert_int_equal(pd_hostmap_retire(map, l.ids[0], &gone), 1);
    assert_string_equal(gone.ids[0], inst(3));
    assert_int_equal(pd_hostmap_idle(map, 100000, idle, NULL), 0);
    pd_idlist_clear(&gone);
    pd_idlist_clear(&l);
}

static void test_idle_listing_per_host(void **state)
{
    pd_hostmap_t *map = *state;
    /* added at different times; empty hosts are idle from when they joined */
    assert_int_equal(pd_hostmap_add_host(map, host(3), "c", "1", PD_MODE_POWER_SAVE, 100), 0);
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_POWER_SAVE, 200), 0);
    assert_int_equal(pd_hostmap_add_host(map, host(2), "c", "1", PD_MODE_POWER_SAVE, 300), 0);
    assert_int_equal(pd_hostmap_add_host(map, host(4), "c", "1", PD_MODE_HIGH_PERFORMANCE, 0), 0);
    assert_int_equal(pd_hostmap_add_host(map, host(5), "c", "1", PD_MODE_DEV, 0), 0);
    /* h2 has a running instance */
    assert_int_equal(pd_hostmap_attach(map, inst(1), host(2), true, 300), 0);

    pd_idlist_t l = PD_IDLIST_INIT;
    assert_int_equal(pd_hostmap_idle(map, 1099, 1000, &l), 0);
    assert_int_equal(pd_hostmap_idle(map, 1100, 1000, &l), 1);
    assert_string_equal(l.ids[0], host(3));
    pd_idlist_clear(&l);
    assert_int_equal(pd_hostmap_idle(map, 1200, 1000, &l), 2);
    assert_string_equal(l.ids[0], host(1)); /* id order */
    assert_string_equal(l.ids[1], host(3));
    pd_idlist_clear(&l);
    /* a running instance keeps a host alive however long */
    assert_int_equal(pd_hostmap_idle(map, 1000000, 1000, NULL), 2);
    /* running -> not running starts the clock then */
    assert_int_equal(pd_hostmap_set_running(map, inst(1), false, 5000), 0);
    assert_int_equal(pd_hostmap_idle(map, 5999, 1000, NULL), 2);
    assert_int_equal(pd_hostmap_idle(map, 6000, 1000, NULL), 3);
    /* running again, then detached: clock restarts at the detach */
    assert_int_equal(pd_hostmap_set_running(map, inst(1), true, 6000), 0);
    assert_int_equal(pd_hostmap_detach(map, inst(1), 7000), 0);
    assert_int_equal(pd_hostmap_idle(map, 7999, 1000, NULL), 2);
    assert_int_equal(pd_hostmap_idle(map, 8000, 1000, NULL), 3);
    /* detaching or attaching a non-running instance does not restart the
     * clock of an idle host */
    assert_int_equal(pd_hostmap_attach(map, inst(2), host(3), false, 7500), 0);
    assert_int_equal(pd_hostmap_detach(map, inst(2), 7600), 0);
    assert_int_equal(pd_hostmap_set_running(map, inst(9), false, 7600), -ENOENT);
    pd_hostmap_host_t h;
    assert_int_equal(pd_hostmap_host_info(map, host(3), &h), 0);
    assert_int_equal(h.idle_since_ms, 100);
    /* idle_ms 0: idle now */
    assert_int_equal(pd_hostmap_idle(map, 7000, 0, NULL), 3);
    /* a clock before idle_since counts as not due */
    assert_int_equal(pd_hostmap_idle(map, 50, 0, NULL), 0);
    assert_int_equal(pd_hostmap_idle(NULL, 50, 0, NULL), -EINVAL);
}

/* ---- dev -------------------------------------------------------------- */

static void test_dev_without_candidates(void **state)
{
    pd_hostmap_t *map = *state;
    /* spawned hosts are not dev hosts */
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_POWER_SAVE, 0), 0);
    for (size_t i = 0; i < N_ACTIONS; i++) {
        pd_mode_choice_t c = choose(map, PD_MODE_DEV, all_actions[i], 1, "c", "1");
        assert_int_equal(c.kind, PD_CHOICE_ERROR);
        assert_int_equal(c.error, -ENOTCONN);
        assert_string_equal(c.reason, "no dev host connected");
        assert_string_equal(c.host_id, "");
    }
    /* candidates that do not qualify are skipped */
    assert_int_equal(pd_hostmap_add_host(map, host(2), "c", "1", PD_MODE_DEV, 0), 0);
    assert_int_equal(pd_hostmap_retire(map, host(2), NULL), 0);
    const char *bad[] = {NULL, "", "hostboot-a", "host-xyz", host(1), host(2)};
    pd_mode_choice_t c =
        pd_mode_choose(map, PD_MODE_DEV, PD_ACTION_START, inst(1), "c", "1", NULL, bad, 6);
    assert_int_equal(c.kind, PD_CHOICE_ERROR);
    assert_int_equal(c.error, -ENOTCONN);
    c = pd_mode_choose(map, PD_MODE_DEV, PD_ACTION_START, inst(1), "c", "1", NULL, NULL, 3);
    assert_int_equal(c.error, -ENOTCONN);
}

static void test_dev_with_candidates(void **state)
{
    pd_hostmap_t *map = *state;
    char h7[64], h3[64], h5[64];
    snprintf(h7, sizeof(h7), "%s", host(7));
    snprintf(h3, sizeof(h3), "%s", host(3));
    snprintf(h5, sizeof(h5), "%s", host(5));
    const char *cands[] = {h7, h3, h5};

    /* never spawns: the first candidate by id, to be added to the map */
    for (size_t i = 0; i < N_ACTIONS; i++) {
        pd_mode_choice_t c =
            pd_mode_choose(map, PD_MODE_DEV, all_actions[i], inst(1), "c", "1", NULL, cands, 3);
        assert_use(c, h3, false);
        assert_true(c.add_first);
        assert_string_equal(c.leave_host, "");
    }
    assert_int_equal(pd_hostmap_add_host(map, h3, "c", "1", PD_MODE_DEV, 0), 0);
    pd_mode_choice_t c =
        pd_mode_choose(map, PD_MODE_DEV, PD_ACTION_START, inst(1), "c", "1", NULL, cands, 3);
    assert_use(c, h3, false);
    assert_false(c.add_first);

    /* attached to its own dev host (h5): reused even though h3 sorts first */
    assert_int_equal(pd_hostmap_add_host(map, h5, "c", "1", PD_MODE_DEV, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(1), h5, false, 0), 0);
    for (size_t i = 0; i < N_ACTIONS; i++) {
        c = pd_mode_choose(map, PD_MODE_DEV, all_actions[i], inst(1), "c", "1", NULL, cands, 3);
        assert_use(c, h5, true);
        assert_false(c.add_first);
    }
    /* even with no candidate list (it is attached, hence connected) */
    c = pd_mode_choose(map, PD_MODE_DEV, PD_ACTION_STOP, inst(1), "c", "1", NULL, NULL, 0);
    assert_use(c, h5, true);
    /* several instances share a dev host: no capacity limit, no EBUSY */
    assert_int_equal(pd_hostmap_attach(map, inst(2), h5, false, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(3), h5, false, 0), 0);

    /* its own dev host runs another language: leave it (never kill a dev
     * host) for a candidate */
    assert_int_equal(pd_hostmap_add_host(map, host(8), "python", "3", PD_MODE_DEV, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(6), host(8), false, 0), 0);
    c = pd_mode_choose(map, PD_MODE_DEV, PD_ACTION_START, inst(6), "c", "1", NULL, cands, 3);
    assert_use(c, h3, false);
    assert_string_equal(c.leave_host, host(8));
    assert_false(c.kill_leave_host);
    c = pd_mode_choose(map, PD_MODE_DEV, PD_ACTION_START, inst(6), "python", "1", NULL, cands, 3);
    assert_use(c, host(8), true); /* same language, any version */

    /* an instance on a highPerformance host goes to a dev host: leave + kill */
    assert_int_equal(pd_hostmap_add_host(map, host(9), "c", "1", PD_MODE_HIGH_PERFORMANCE, 0), 0);
    assert_int_equal(pd_hostmap_attach(map, inst(4), host(9), true, 0), 0);
    c = pd_mode_choose(map, PD_MODE_DEV, PD_ACTION_START, inst(4), "c", "1", NULL, cands, 3);
    assert_use(c, h3, false);
    assert_string_equal(c.leave_host, host(9));
    assert_true(c.kill_leave_host);
}

static void test_dev_never_kills(void **state)
{
    pd_hostmap_t *map = *state;
    char kill[PD_HOSTMAP_ID_MAX + 1];
    assert_int_equal(pd_hostmap_add_host(map, host(1), "c", "1", PD_MODE_DEV, 0), 0);
    for (size_t i = 0; i < N_ACTIONS; i++) {
        for (int ok = 0; ok <= 1; ok++) {
            if (all_actions[i] == PD_ACTION_UNINSTALL && ok)
                continue; /* detaches; checked below */
            assert_int_equal(pd_hostmap_begin(map, inst(1), host(1), 10), 0);
            assert_int_equal(pd_mode_finish(map, all_actions[i], inst(1), ok, 20, kill), 0);
            assert_string_equal(kill, "");
            /* stays attached, even after a successful stop */
            char own[PD_HOSTMAP_ID_MAX + 1];
            assert_int_equal(pd_hostmap_host_of(map, inst(1), own), 0);
            assert_string_equal(own, host(1));
        }
    }
    assert_int_equal(pd_hostmap_begin(map, inst(1), host(1), 10), 0);
    assert_int_equal(pd_mode_finish(map, PD_ACTION_UNINSTALL, inst(1), true, 20, kill), 0);
    char out[PD_HOSTMAP_ID_MAX + 1];
    assert_int_equal(pd_hostmap_host_of(map, inst(1), out), -ENOENT);
    pd_hostmap_host_t h;
    assert_int_equal(pd_hostmap_host_info(map, host(1), &h), 0);
    assert_false(h.retiring);
    /* nor idles out */
    assert_int_equal(pd_hostmap_idle(map, 1000000, 0, NULL), 0);
}

/* ---- arguments ------------------------------------------------------------ */

static void test_choose_bad_arguments(void **state)
{
    pd_hostmap_t *map = *state;
    struct {
        pd_hostmap_t *map;
        pd_mode_t mode;
        pd_action_t action;
        const char *inst, *lang, *ver;
    } bad[] = {
        {NULL, PD_MODE_POWER_SAVE, PD_ACTION_START, inst(1), "c", "1"},
        {map, (pd_mode_t)3, PD_ACTION_START, inst(1), "c", "1"},
        {map, PD_MODE_POWER_SAVE, (pd_action_t)7, inst(1), "c", "1"},
        {map, PD_MODE_POWER_SAVE, PD_ACTION_START, "nope", "c", "1"},
        {map, PD_MODE_POWER_SAVE, PD_ACTION_START, NULL, "c", "1"},
        {map, PD_MODE_POWER_SAVE, PD_ACTION_START, inst(1), "", "1"},
        {map, PD_MODE_POWER_SAVE, PD_ACTION_START, inst(1), "c", NULL},
        {map, PD_MODE_DEV, PD_ACTION_START, inst(1), NULL, "1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pd_mode_choice_t c = pd_mode_choose(bad[i].map, bad[i].mode, bad[i].action, bad[i].inst,
                                            bad[i].lang, bad[i].ver, &opts3, NULL, 0);
        assert_int_equal(c.kind, PD_CHOICE_ERROR);
        assert_int_equal(c.error, -EINVAL);
        assert_non_null(c.reason);
    }
}

static void test_many_instances_pack_tightly(void **state)
{
    pd_hostmap_t *map = *state;
    /* 100 instances, max 3 per host: exactly 34 hosts, every one full but
     * the last */
    unsigned spawned = 0;
    for (unsigned i = 1; i <= 100; i++) {
        pd_mode_choice_t c = choose(map, PD_MODE_POWER_SAVE, PD_ACTION_START, i, "c", "1");
        const char *target = c.host_id;
        if (c.kind == PD_CHOICE_SPAWN) {
            target = host(1000 + spawned++);
            assert_int_equal(pd_hostmap_add_host(map, target, "c", "1", PD_MODE_POWER_SAVE, i), 0);
        }
        assert_int_equal(c.kind == PD_CHOICE_ERROR, 0);
        assert_int_equal(pd_hostmap_begin(map, inst(i), target, i), 0);
        assert_int_equal(pd_mode_finish(map, PD_ACTION_START, inst(i), true, i, NULL), 0);
    }
    assert_int_equal(spawned, 34);
    assert_int_equal(pd_hostmap_n_hosts(map), 34);
    assert_int_equal(pd_hostmap_n_instances(map), 100);
    pd_idlist_t hosts = PD_IDLIST_INIT;
    assert_int_equal(pd_hostmap_hosts(map, &hosts), 34);
    size_t total = 0;
    for (size_t k = 0; k < hosts.n; k++) {
        int n = pd_hostmap_instances(map, hosts.ids[k], NULL);
        assert_true(n == 3 || (n == 1 && k == hosts.n - 1));
        total += (size_t)n;
    }
    assert_int_equal(total, 100);
    pd_idlist_clear(&hosts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_parse),
        cmocka_unit_test(test_action_parse),
        cmocka_unit_test(test_keep_after_table),
        cmocka_unit_test_setup_teardown(test_add_host_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attach_detach_bookkeeping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_high_performance_host_holds_one_instance, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remove_host_detaches_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_begin_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_high_performance_choices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_high_performance_own_host_in_other_mode, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_high_performance_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uninstall_detaches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_save_every_action_same_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_save_packing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_save_same_runtime_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_save_bad_opts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_save_lifecycle_and_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_listing_per_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dev_without_candidates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dev_with_candidates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dev_never_kills, setup, teardown),
        cmocka_unit_test_setup_teardown(test_choose_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_instances_pack_tightly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
