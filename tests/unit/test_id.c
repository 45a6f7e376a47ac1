/* plat/id.h: endpoint id classification, hostboot names, UUIDs, clocks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "plat/id.h"

#define UUID "0f8fad5b-d9cb-469f-a165-70867728950e"

static void test_kind_platform(void **state)
{
    assert_int_equal(plat_id_kind("platform"), PLAT_ID_PLATFORM);
    assert_int_equal(plat_id_kind(PLAT_PLATFORM_ID), PLAT_ID_PLATFORM);
    assert_int_equal(plat_id_kind("Platform"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("platforms"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("platfor"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind(" platform"), PLAT_ID_INVALID);
}

static void test_kind_hostboot(void **state)
{
    assert_int_equal(plat_id_kind("hostboot-a"), PLAT_ID_HOSTBOOT);
    assert_int_equal(plat_id_kind("hostboot-a.b_c-1"), PLAT_ID_HOSTBOOT);
    assert_int_equal(plat_id_kind("hostboot-0"), PLAT_ID_HOSTBOOT);
    assert_int_equal(plat_id_kind("hostboot-itest"), PLAT_ID_HOSTBOOT);
    assert_int_equal(plat_id_kind("hostboot-"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("hostboot-A"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("hostboot-aB"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("hostboot-.a"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("hostboot--a"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("hostboot-_a"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("hostboot-a b"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("hostboot-a/b"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("hostboot-a\n"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("hostboot-\xc3\xa9"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("hostboota"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("HOSTBOOT-a"), PLAT_ID_INVALID);

    /* name length: 64 is the maximum */
    char id[128];
    char name[80];
    memset(name, 'a', 64);
    name[64] = '\0';
    snprintf(id, sizeof id, "hostboot-%s", name);
    assert_int_equal(plat_id_kind(id), PLAT_ID_HOSTBOOT);
    assert_true(plat_hostboot_name_valid(name));
    name[64] = 'a';
    name[65] = '\0';
    snprintf(id, sizeof id, "hostboot-%s", name);
    assert_int_equal(plat_id_kind(id), PLAT_ID_INVALID);
    assert_false(plat_hostboot_name_valid(name));
}

static void test_hostboot_name_valid(void **state)
{
    assert_true(plat_hostboot_name_valid("a"));
    assert_true(plat_hostboot_name_valid("9"));
    assert_true(plat_hostboot_name_valid("a.b_c-1"));
    assert_true(plat_hostboot_name_valid("itest"));
    assert_false(plat_hostboot_name_valid(""));
    assert_false(plat_hostboot_name_valid(NULL));
    assert_false(plat_hostboot_name_valid("A"));
    assert_false(plat_hostboot_name_valid("-a"));
    assert_false(plat_hostboot_name_valid(".a"));
    assert_false(plat_hostboot_name_valid("_a"));
    assert_false(plat_hostboot_name_valid("a:b"));
    assert_false(plat_hostboot_name_valid("a\x01"));
}

static void test_kind_host(void **state)
{
    assert_int_equal(plat_id_kind("host-" UUID), PLAT_ID_HOST);
    assert_int_equal(plat_id_kind("host-0F8FAD5B-D9CB-469F-A165-70867728950E"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("host-0f8fad5b-d9cb-469f-a165-70867728950"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("host-0f8fad5b-d9cb-469f-a165-70867728950ee"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("host-0f8fad5bd9cb469fa16570867728950e"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("host-0f8fad5b-d9cb-469f-a165-70867728950g"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("host-0f8fad5b_d9cb-469f-a165-70867728950e"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("host-"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("host-a"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("host" UUID), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind(UUID), PLAT_ID_INVALID);
}

static void test_kind_malformed(void **state)
{
    assert_int_equal(plat_id_kind(NULL), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind(""), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("x"), PLAT_ID_INVALID);
    assert_int_equal(plat_id_kind("-"), PLAT_ID_INVALID);

    /* Far longer than PLAT_ID_MAX. */
    char id[PLAT_ID_MAX + 64];
    memcpy(id, "hostboot-", 9);
    memset(id + 9, 'a', sizeof id - 10);
    id[sizeof id - 1] = '\0';
    assert_int_equal(plat_id_kind(id), PLAT_ID_INVALID);
}

static void test_uuid_valid(void **state)
{
    assert_true(plat_uuid_valid(UUID));
    assert_true(plat_uuid_valid("00000000-0000-0000-0000-000000000000"));
    assert_false(plat_uuid_valid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
    assert_false(plat_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950E"));
    assert_false(plat_uuid_valid("0f8fad5bd9cb469fa16570867728950e"));
    assert_false(plat_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950"));
    assert_false(plat_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950e0"));
    assert_false(plat_uuid_valid("0f8fad5b-d9cb-469fa-165-70867728950e"));
    assert_false(plat_uuid_valid("{0f8fad5b-d9cb-469f-a165-70867728950e}"));
    assert_false(plat_uuid_valid(""));
    assert_false(plat_uuid_valid(NULL));
}

static void test_uuid_new(void **state)
{
    enum { N = 200 };
    static char ids[N][PLAT_UUID_LEN + 1];
    for (int i = 0; i < N; i++) {
        memset(ids[i], 'x', sizeof ids[i]);
        assert_int_equal(plat_uuid_new(ids[i]), 0);
        assert_int_equal(strlen(ids[i]), PLAT_UUID_LEN);
        assert_true(plat_uuid_valid(ids[i]));
        assert_int_equal(ids[i][14], '4');           /* version 4 */
        assert_non_null(strchr("89ab", ids[i][19])); /* RFC 4122 variant */
        char host[64];
        snprintf(host, sizeof host, "host-%s", ids[i]);
        assert_int_equal(plat_id_kind(host), PLAT_ID_HOST);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
}

static void test_clocks(void **state)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint64_t now = plat_now_ms();
    assert_true(now + 1 >= wall);
    assert_true(now <= wall + 1000);

    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mono_ref = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint64_t m0 = plat_mono_ms();
    assert_true(m0 + 1 >= mono_ref);
    assert_true(m0 <= mono_ref + 1000);

    /* Non-decreasing, and it advances (spin with a deadline, no sleep). */
    uint64_t prev = m0;
    uint64_t advanced = 0;
    for (long i = 0; i < 200000000L && !advanced; i++) {
        uint64_t m = plat_mono_ms();
        assert_true(m >= prev);
        if (m >= m0 + 2)
            advanced = m;
        prev = m;
    }
    assert_true(advanced >= m0 + 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_platform),
        cmocka_unit_test(test_kind_hostboot),
        cmocka_unit_test(test_hostboot_name_valid),
        cmocka_unit_test(test_kind_host),
        cmocka_unit_test(test_kind_malformed),
        cmocka_unit_test(test_uuid_valid),
        cmocka_unit_test(test_uuid_new),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
