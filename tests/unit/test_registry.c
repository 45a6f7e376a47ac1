/* platformd's endpoint registry: registration, re-registration, liveness,
 * lost marking, counts, ordering and removal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"

#define HOST_A "host-00000000-0000-4000-8000-00000000000a"
#define HOST_B "host-00000000-0000-4000-8000-00000000000b"
#define BOOT "11111111-2222-4333-8444-555555555555"

static int setup(void **state)
{
    *state = pd_registry_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    pd_registry_t *reg = *state;
    pd_registry_destroy(&reg);
    assert_null(reg);
    return 0;
}

static void test_put_hostboot_and_find(void **state)
{
    pd_registry_t *reg = *state;
    plat_runtime_t rts[] = {{"c", "1"}, {"python", "3.11"}};
    bool known = true;
    pd_endpoint_t *ep =
        pd_registry_put_hostboot(reg, "hostboot-a", "a", "0.1.0", BOOT, rts, 2, 100, &known);
    assert_non_null(ep);
    assert_false(known);
    assert_int_equal(ep->kind, PD_EP_HOSTBOOT);
    assert_string_equal(ep->name, "a");
    assert_string_equal(ep->version, "0.1.0");
    assert_string_equal(ep->boot_id, BOOT);
    assert_int_equal(ep->n_runtimes, 2);
    assert_string_equal(ep->runtimes[1].language, "python");
    assert_string_equal(ep->runtimes[1].version, "3.11");
    assert_int_equal(ep->registered_ms, 100);
    assert_int_equal(ep->last_seen_ms, 100);
    assert_false(ep->lost);
    assert_ptr_equal(pd_registry_find(reg, "hostboot-a"), ep);
    assert_null(pd_registry_find(reg, "hostboot-b"));
    assert_null(pd_registry_find(reg, NULL));
}

static void test_kind_checked(void **state)
{
    pd_registry_t *reg = *state;
    assert_null(pd_registry_put_hostboot(reg, HOST_A, "a", "v", BOOT, NULL, 0, 1, NULL));
    assert_null(pd_registry_put_hostboot(reg, "hostboot-Bad", "Bad", "v", BOOT, NULL, 0, 1, NULL));
    assert_null(pd_registry_put_host(reg, "hostboot-a", 1, "c", "1", "dev", true, "", "v", BOOT, 1,
                                     NULL));
    assert_null(pd_registry_put_host(reg, "platform", 1, "c", "1", "dev", true, "", "v", BOOT, 1,
                                     NULL));
    assert_int_equal(pd_registry_size(reg), 0);
}

static void test_reregistration_keeps_registered_time(void **state)
{
    pd_registry_t *reg = *state;
    bool known = false;
    pd_endpoint_t *ep = pd_registry_put_host(reg, HOST_A, 42, "c", "1", "dev", true, "", "0.1.0",
                                             BOOT, 100, &known);
    assert_non_null(ep);
    assert_false(known);
    assert_int_equal(pd_registry_mark_lost(reg, 1000, 300, NULL, NULL), 1);
    assert_true(ep->lost);
    ep = pd_registry_put_host(reg, HOST_A, 43, "c", "1", "dev", true, "", "0.1.0", BOOT, 2000,
                              &known);
    assert_true(known);
    assert_false(ep->lost);
    assert_int_equal(ep->pid, 43);
    assert_int_equal(ep->registered_ms, 100);
    assert_int_equal(ep->last_seen_ms, 2000);
    assert_int_equal(pd_registry_size(reg), 1);
}

static void test_long_strings_truncated(void **state)
{
    pd_registry_t *reg = *state;
    char longv[200];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    plat_runtime_t many[PD_RUNTIMES_MAX + 5];
    for (size_t i = 0; i < PD_RUNTIMES_MAX + 5; i++)
        many[i] = (plat_runtime_t){longv, longv};
    pd_endpoint_t *ep = pd_registry_put_hostboot(reg, "hostboot-a", longv, longv, longv, many,
                                                 PD_RUNTIMES_MAX + 5, 1, NULL);
    assert_non_null(ep);
    assert_int_equal(strlen(ep->version), PD_FIELD_MAX);
    assert_int_equal(strlen(ep->name), PD_NAME_MAX);
    assert_int_equal(ep->n_runtimes, PD_RUNTIMES_MAX);
    assert_int_equal(strlen(ep->runtimes[0].language), PD_FIELD_MAX);
}

typedef struct {
    char ids[8][PLAT_ID_MAX + 1];
    size_t n;
} seen_t;

static void record(const pd_endpoint_t *ep, void *arg)
{
    seen_t *s = arg;
    snprintf(s->ids[s->n++], sizeof s->ids[0], "%s", ep->id);
}

static void record_lost(const pd_endpoint_t *ep, uint64_t silent_ms, void *arg)
{
    assert_true(silent_ms > 300);
    record(ep, arg);
}

static void test_touch_and_lost(void **state)
{
    pd_registry_t *reg = *state;
    assert_non_null(pd_registry_put_host(reg, HOST_A, 1, "c", "1", "dev", true, "", "v", BOOT, 0,
                                         NULL));
    assert_non_null(pd_registry_put_hostboot(reg, "hostboot-x", "x", "v", BOOT, NULL, 0, 0, NULL));
    bool back = true;
    assert_non_null(pd_registry_touch(reg, HOST_A, 250, &back));
    assert_false(back);
    assert_null(pd_registry_touch(reg, HOST_B, 250, &back));
    assert_false(back);

    /* At 400: hostboot-x silent 400 > 300 → lost; host A silent 150. */
    seen_t lost = {0};
    assert_int_equal(pd_registry_mark_lost(reg, 400, 300, record_lost, &lost), 1);
    assert_int_equal(lost.n, 1);
    assert_string_equal(lost.ids[0], "hostboot-x");
    /* Newly lost only once. */
    assert_int_equal(pd_registry_mark_lost(reg, 500, 300, record_lost, &lost), 0);
    /* Exactly at the window is not lost yet. */
    assert_int_equal(pd_registry_mark_lost(reg, 550, 300, NULL, NULL), 0);
    assert_int_equal(pd_registry_mark_lost(reg, 551, 300, NULL, NULL), 1);

    pd_counts_t c = pd_registry_counts(reg);
    assert_int_equal(c.hostboots, 1);
    assert_int_equal(c.hostboots_lost, 1);
    assert_int_equal(c.hosts, 1);
    assert_int_equal(c.hosts_lost, 1);

    pd_endpoint_t *ep = pd_registry_touch(reg, "hostboot-x", 600, &back);
    assert_non_null(ep);
    assert_true(back);
    assert_false(ep->lost);
    c = pd_registry_counts(reg);
    assert_int_equal(c.hostboots_lost, 0);
    assert_int_equal(c.hosts_lost, 1);
    /* A clock that went backwards never makes anything lost. */
    assert_int_equal(pd_registry_mark_lost(reg, 10, 300, NULL, NULL), 0);
}

static void test_forgive_a_deaf_platform(void **state)
{
    pd_registry_t *reg = *state;
    assert_non_null(pd_registry_put_host(reg, HOST_A, 1, "c", "1", "dev", true, "", "v", BOOT, 0,
                                         NULL));
    assert_non_null(pd_registry_put_hostboot(reg, "hostboot-x", "x", "v", BOOT, NULL, 0, 100,
                                             NULL));
    /* The platform stalled 1000 ms: nobody is silent for it. */
    pd_registry_forgive(reg, 1000, 1200);
    assert_int_equal(pd_registry_find(reg, HOST_A)->last_seen_ms, 1000);
    assert_int_equal(pd_registry_find(reg, "hostboot-x")->last_seen_ms, 1100);
    assert_int_equal(pd_registry_mark_lost(reg, 1250, 300, NULL, NULL), 0);
    /* Never into the future. */
    pd_registry_forgive(reg, 5000, 1300);
    assert_int_equal(pd_registry_find(reg, HOST_A)->last_seen_ms, 1300);
    /* Silence after the stall still counts. */
    assert_int_equal(pd_registry_mark_lost(reg, 1601, 300, NULL, NULL), 2);
}

static void test_foreach_sorted_and_remove(void **state)
{
    pd_registry_t *reg = *state;
    const char *ids[] = {HOST_B, "hostboot-z", HOST_A, "hostboot-a"};
    for (size_t i = 0; i < 4; i++) {
        if (strncmp(ids[i], "host-", 5) == 0)
            assert_non_null(pd_registry_put_host(reg, ids[i], 1, "c", "1", "dev", false,
                                                 "hostboot-a", "v", BOOT, 0, NULL));
        else
            assert_non_null(pd_registry_put_hostboot(reg, ids[i], ids[i] + 9, "v", BOOT, NULL, 0,
                                                     0, NULL));
    }
    seen_t s = {0};
    pd_registry_foreach(reg, record, &s);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.ids[0], HOST_A);
    assert_string_equal(s.ids[1], HOST_B);
    assert_string_equal(s.ids[2], "hostboot-a");
    assert_string_equal(s.ids[3], "hostboot-z");

    assert_int_equal(pd_registry_remove(reg, HOST_B), 0);
    assert_int_equal(pd_registry_remove(reg, HOST_B), -ENOENT);
    assert_null(pd_registry_find(reg, HOST_B));
    assert_non_null(pd_registry_find(reg, HOST_A));
    assert_non_null(pd_registry_find(reg, "hostboot-z"));
    assert_int_equal(pd_registry_size(reg), 3);
}

static void test_many_entries(void **state)
{
    pd_registry_t *reg = *state;
    char id[64];
    for (int i = 999; i >= 0; i--) {
        snprintf(id, sizeof id, "host-00000000-0000-4000-8000-%012d", i);
        assert_non_null(
            pd_registry_put_host(reg, id, i + 1, "c", "1", "dev", true, "", "v", BOOT, 0, NULL));
    }
    assert_int_equal(pd_registry_size(reg), 1000);
    for (int i = 0; i < 1000; i += 97) {
        snprintf(id, sizeof id, "host-00000000-0000-4000-8000-%012d", i);
        pd_endpoint_t *ep = pd_registry_find(reg, id);
        assert_non_null(ep);
        assert_int_equal(ep->pid, i + 1);
    }
    assert_int_equal(pd_registry_counts(reg).hosts, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_hostboot_and_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kind_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reregistration_keeps_registered_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_strings_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_touch_and_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forgive_a_deaf_platform, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach_sorted_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_entries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
