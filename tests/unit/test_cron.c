/* Cron expressions (platformd/cron.h): parsing with the field named in
 * every error, names, steps, ranges, 0/7 Sunday, the Vixie day rule,
 * nicknames, the optional seconds field, and next-fire times in UTC —
 * checked by hand for known dates and against a naive minute-by-minute
 * scan for a set of expressions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"

/* UTC ms of a date. */
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

static pd_cron_t parse_ok(const char *expr)
{
    pd_cron_t c;
    char why[256] = "x";
    int rc = pd_cron_parse(expr, &c, why, sizeof why);
    if (rc != 0)
        print_error("parse \"%s\": %s\n", expr, why);
    assert_int_equal(rc, 0);
    assert_string_equal(why, "");
    return c;
}

/* Parsing fails with -EINVAL and a message starting with `prefix`. */
static void parse_bad(const char *expr, const char *prefix)
{
    pd_cron_t c;
    memset(&c, 0x5a, sizeof c);
    pd_cron_t before = c;
    char why[256] = "";
    int rc = pd_cron_parse(expr, &c, why, sizeof why);
    if (rc != -EINVAL || strncmp(why, prefix, strlen(prefix)) != 0)
        print_error("\"%s\": rc %d why \"%s\" (want prefix \"%s\")\n", expr, rc, why, prefix);
    assert_int_equal(rc, -EINVAL);
    assert_true(strncmp(why, prefix, strlen(prefix)) == 0);
    assert_memory_equal(&c, &before, sizeof c); /* untouched on error */
}

static void test_parse_fields(void **state)
{
    (void)state;
    pd_cron_t c = parse_ok("* * * * *");
    assert_int_equal(c.seconds, 1); /* second 0 only */
    assert_false(c.has_seconds);
    assert_int_equal(c.minutes, (1ULL << 60) - 1);
    assert_int_equal(c.hours, (1U << 24) - 1);
    assert_int_equal(c.mdays, ((1U << 31) - 1) << 1);
    assert_int_equal(c.months, ((1U << 12) - 1) << 1);
    assert_int_equal(c.wdays, 0x7f);
    assert_true(c.mday_star);
    assert_true(c.wday_star);

    c = parse_ok("*/15 0-6,22 1 JAN-mar mon-FRI");
    assert_int_equal(c.minutes, (1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45));
    assert_int_equal(c.hours, 0x7f | (1U << 22));
    assert_int_equal(c.mdays, 1U << 1);
    assert_int_equal(c.months, (1U << 1) | (1U << 2) | (1U << 3));
    assert_int_equal(c.wdays, 0x3e);
    assert_false(c.mday_star);
    assert_false(c.wday_star);

    /* Ranges with steps, "a/step" to the end, lists, tabs and spaces. */
    c = parse_ok("  10-20/5\t5/20  1,3,5   */4  *  ");
    assert_int_equal(c.minutes, (1ULL << 10) | (1ULL << 15) | (1ULL << 20));
    assert_int_equal(c.hours, (1U << 5)); /* 5/20: 5 only (25 > 23) */
    assert_int_equal(c.mdays, (1U << 1) | (1U << 3) | (1U << 5));
    assert_int_equal(c.months, (1U << 1) | (1U << 5) | (1U << 9));

    /* Sunday is 0 and 7; 5-7 = Friday, Saturday, Sunday. */
    assert_int_equal(parse_ok("0 0 * * 7").wdays, 1);
    assert_int_equal(parse_ok("0 0 * * 0").wdays, 1);
    assert_int_equal(parse_ok("0 0 * * 5-7").wdays, (1 << 5) | (1 << 6) | 1);
    assert_int_equal(parse_ok("0 0 * * sun,SAT").wdays, 1 | (1 << 6));
    assert_int_equal(parse_ok("0 0 * * */2").wdays, 1 | (1 << 2) | (1 << 4) | (1 << 6));
    /* A '*' with a step still counts as "*" for the day rule (Vixie). */
    assert_true(parse_ok("0 0 */2 * 1").mday_star);
    assert_false(parse_ok("0 0 1-31 * 1").mday_star);

    /* Six fields: a leading seconds field. */
    c = parse_ok("*/20 * * * * *");
    assert_true(c.has_seconds);
    assert_int_equal(c.seconds, (1ULL << 0) | (1ULL << 20) | (1ULL << 40));
    assert_int_equal(c.minutes, (1ULL << 60) - 1);
}

static void test_parse_nicknames(void **state)
{
    (void)state;
    pd_cron_t a = parse_ok("@daily"), b = parse_ok("0 0 * * *");
    assert_memory_equal(&a, &b, sizeof a);
    a = parse_ok("@HOURLY");
    b = parse_ok("0 * * * *");
    assert_memory_equal(&a, &b, sizeof a);
    a = parse_ok("@weekly ");
    b = parse_ok("0 0 * * 0");
    assert_memory_equal(&a, &b, sizeof a);
    a = parse_ok("@annually");
    b = parse_ok("@yearly");
    assert_memory_equal(&a, &b, sizeof a);
    parse_ok("@monthly");
    parse_ok("@midnight");
    parse_bad("@reboot", "unknown nickname");
    parse_bad("@daily 5", "nothing may follow");
}

static void test_parse_errors(void **state)
{
    (void)state;
    parse_bad("", "expected 5 fields");
    parse_bad("* * * *", "expected 5 fields");
    parse_bad("* * * * * * *", "expected 5 fields");
    parse_bad("60 * * * *", "minute: 60 is out of range 0-59");
    parse_bad("* 24 * * *", "hour: 24 is out of range 0-23");
    parse_bad("* * 0 * *", "day-of-month: 0 is out of range 1-31");
    parse_bad("* * 32 * *", "day-of-month: 32 is out of range 1-31");
    parse_bad("* * * 13 *", "month: 13 is out of range 1-12");
    parse_bad("* * * 0 *", "month: 0 is out of range 1-12");
    parse_bad("* * * * 8", "day-of-week: 8 is out of range 0-7");
    parse_bad("60 * * * * *", "second: 60 is out of range 0-59");
    parse_bad("* * * FOO *", "month: unknown name \"FOO\"");
    parse_bad("* * * JANUARY *", "month: unknown name");
    parse_bad("* * * * Monday", "day-of-week: unknown name");
    parse_bad("MON * * * *", "minute: unexpected 'M'");
    parse_bad("5-1 * * * *", "minute: range 5-1 runs backwards");
    parse_bad("* * * * FRI-MON", "day-of-week: range 5-1 runs backwards");
    parse_bad("*/0 * * * *", "minute: step must be at least 1");
    parse_bad("*/ * * * *", "minute: step must be a number");
    parse_bad("*/x * * * *", "minute: step must be a number");
    parse_bad("1,,2 * * * *", "minute: empty item");
    parse_bad("1, * * * *", "minute: empty item");
    parse_bad("* 1-2-3 * * *", "hour: unexpected '-'");
    parse_bad("* ** * * *", "hour: unexpected '*'");
    parse_bad("* * L * *", "day-of-month: unexpected 'L'");
    parse_bad("? * * * *", "minute: unexpected '?'");
    parse_bad("99999999999 * * * *", "minute: number too large");
    char longexpr[400];
    memset(longexpr, '1', sizeof longexpr - 1);
    longexpr[sizeof longexpr - 1] = 0;
    parse_bad(longexpr, "longer than");
    pd_cron_t c;
    assert_int_equal(pd_cron_parse(NULL, &c, NULL, 0), -EINVAL);
    assert_int_equal(pd_cron_parse("* * * * *", NULL, NULL, 0), -EINVAL);
    assert_int_equal(pd_cron_parse("bad", &c, NULL, 0), -EINVAL); /* why may be NULL */
}

static void next_is(const char *expr, int64_t after, int64_t want)
{
    pd_cron_t c = parse_ok(expr);
    int64_t got = pd_cron_next(&c, after);
    if (got != want)
        print_error("\"%s\" after %lld: got %lld, want %lld\n", expr, (long long)after,
                    (long long)got, (long long)want);
    assert_int_equal(got, want);
}

static void test_next_known_dates(void **state)
{
    (void)state;
    /* 2026-01-01 is a Thursday. */
    next_is("* * * * *", utc(2026, 1, 1, 0, 0, 30), utc(2026, 1, 1, 0, 1, 0));
    /* Strictly after: a time on the schedule gives the next one. */
    next_is("* * * * *", utc(2026, 1, 1, 0, 1, 0), utc(2026, 1, 1, 0, 2, 0));
    next_is("* * * * *", utc(2026, 1, 1, 0, 1, 0) - 1, utc(2026, 1, 1, 0, 1, 0));
    next_is("0 3 * * *", utc(2026, 1, 1, 3, 0, 0), utc(2026, 1, 2, 3, 0, 0));
    next_is("30 23 31 12 *", utc(2026, 6, 1, 0, 0, 0), utc(2026, 12, 31, 23, 30, 0));
    next_is("0 0 1 1 *", utc(2026, 12, 31, 23, 59, 59), utc(2027, 1, 1, 0, 0, 0));
    /* Feb 29: leap years only; Feb 30 never. */
    next_is("0 0 29 2 *", utc(2026, 3, 1, 0, 0, 0), utc(2028, 2, 29, 0, 0, 0));
    next_is("0 0 29 2 *", utc(2096, 3, 1, 0, 0, 0), utc(2104, 2, 29, 0, 0, 0)); /* 2100 is not */
    pd_cron_t never = parse_ok("0 0 30 2 *");
    assert_int_equal(pd_cron_next(&never, utc(2026, 1, 1, 0, 0, 0)), -1);
    never = parse_ok("0 0 31 4,6,9,11 *");
    assert_int_equal(pd_cron_next(&never, utc(2026, 1, 1, 0, 0, 0)), -1);
    /* Day of week: Monday 2026-01-05; 7 and 0 are Sunday 2026-01-04. */
    next_is("0 9 * * MON", utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 5, 9, 0, 0));
    next_is("0 9 * * 7", utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 4, 9, 0, 0));
    next_is("0 9 * * 0", utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 4, 9, 0, 0));
    /* Vixie: both restricted -> either. The 13th or a Friday: Fri Jan 2. */
    next_is("0 0 13 * FRI", utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 2, 0, 0, 0));
    next_is("0 0 13 * FRI", utc(2026, 1, 10, 0, 0, 0), utc(2026, 1, 13, 0, 0, 0));
    /* One starts with '*' -> both must hold: a Monday among 1,11,21,31.
     * 2026: Jan 1 Thu, Jan 11 Sun, Jan 21 Wed, Jan 31 Sat, Feb 1 Sun, Feb 11
     * Wed, Feb 21 Sat, Mar 1 Sun, Mar 11 Wed, Mar 21 Sat, Mar 31 Tue, Apr 1
     * Wed, Apr 11 Sat, Apr 21 Tue, May 1 Fri, May 11 Mon. */
    next_is("0 0 */10 * MON", utc(2026, 1, 1, 0, 0, 0), utc(2026, 5, 11, 0, 0, 0));
    /* And the other way: the 1st, any weekday ('*' dow) = just the 1st. */
    next_is("0 0 1 * *", utc(2026, 1, 5, 0, 0, 0), utc(2026, 2, 1, 0, 0, 0));
    /* Seconds. */
    next_is("*/2 * * * * *", utc(2026, 1, 1, 0, 0, 1) + 500, utc(2026, 1, 1, 0, 0, 2));
    next_is("*/2 * * * * *", utc(2026, 1, 1, 0, 0, 2), utc(2026, 1, 1, 0, 0, 4));
    next_is("58 59 23 31 12 *", utc(2026, 12, 31, 23, 59, 58), utc(2027, 12, 31, 23, 59, 58));
    next_is("15 * * * * *", utc(2026, 1, 1, 0, 0, 20), utc(2026, 1, 1, 0, 1, 15));
    /* Before the epoch too (floor, not truncation). */
    next_is("* * * * * *", -1500, -1000);
    next_is("* * * * * *", -1, 0);
    /* No valid expression pointer. */
    assert_int_equal(pd_cron_next(NULL, 0), -1);
}

/* The naive reference: minute by minute (5-field expressions). */
static bool naive_match(const pd_cron_t *c, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    bool md = c->mdays & (1U << tm.tm_mday), wd = c->wdays & (1U << tm.tm_wday);
    bool day = (c->mday_star || c->wday_star) ? (md && wd) : (md || wd);
    return (c->months & (1U << (tm.tm_mon + 1))) && day && (c->hours & (1U << tm.tm_hour)) &&
           (c->minutes & (1ULL << tm.tm_min)) && (c->seconds & (1ULL << tm.tm_sec));
}

static void test_next_against_scan(void **state)
{
    (void)state;
    static const char *const exprs[] = {
        "* * * * *",    "*/7 * * * *",        "0 */5 * * *",   "15,45 2-4 * * *",
        "0 0 * * 1-5",  "0 12 1,15 * *",      "0 12 1,15 * 3", "59 23 28-31 * *",
        "0 0 * 2 *",    "30 6 * JUN-AUG SAT", "0 0 */3 */2 *", "5 4 * * sun",
        "0 22 * * 1-5", "23 0-20/2 * * *",    "0 0 13 * 5",    "0 0 L-ish * *",
    };
    int64_t start = utc(2027, 12, 20, 7, 13, 0);
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
        pd_cron_t c;
        if (pd_cron_parse(exprs[i], &c, NULL, 0) < 0)
            continue; /* the last one is refused, by design */
        int64_t after = start;
        for (int k = 0; k < 40; k++) {
            int64_t got = pd_cron_next(&c, after);
            assert_true(got > after);
            /* Nothing matched in (after, got), and got matches. */
            int64_t m = (after / 60000 + 1) * 60000;
            for (; m < got; m += 60000)
                if (naive_match(&c, m)) {
                    print_error("\"%s\": %lld matches before next %lld\n", exprs[i], (long long)m,
                                (long long)got);
                    fail();
                }
            assert_true(naive_match(&c, got));
            after = got;
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),      cmocka_unit_test(test_parse_nicknames),
        cmocka_unit_test(test_parse_errors),      cmocka_unit_test(test_next_known_dates),
        cmocka_unit_test(test_next_against_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
