/* Cron expressions for scheduled tasks (docs/tasks.md).
 *
 * Standard 5 fields, as Vixie cron reads them:
 *
 *     minute  hour  day-of-month  month  day-of-week
 *     0-59    0-23  1-31          1-12   0-7 (0 and 7 = Sunday)
 *
 * Each field is a comma-separated list of items; an item is `*`, a value,
 * or a range `a-b`, each optionally followed by `/step` (`a/step` = from a
 * to the field's maximum). Months accept JAN-DEC and days of the week
 * SUN-SAT (any case, also inside ranges). A range must not run backwards;
 * a step is >= 1.
 *
 * Day rule (Vixie): when both day-of-month and day-of-week are restricted
 * (neither field starts with `*`), a day matches if EITHER matches; when
 * one of them starts with `*`, both must match (so the other decides).
 *
 * Nicknames: @yearly (@annually), @monthly, @weekly, @daily (@midnight),
 * @hourly — the usual 5-field equivalents.
 *
 * Extension, for tests and seconds-level tasks: an expression of SIX
 * fields has a leading SECONDS field (0-59), as in Quartz/croniter:
 * `*\/2 * * * * *` = every two seconds. A 5-field expression fires at
 * second 0.
 *
 * Time zone: all times are UTC (ms since the Unix epoch). A schedule
 * "0 3 * * *" fires at 03:00 UTC whatever the machine's TZ; no daylight
 * saving gaps or repeats exist in UTC.
 *
 * Pure functions: no allocation, no clock, no logging. */
#ifndef PLATFORMD_CRON_H
#define PLATFORMD_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest expression accepted, without the NUL. */
#define PD_CRON_EXPR_MAX 255

/* A parsed expression: one bit per allowed value. */
typedef struct {
    uint64_t seconds; /* bits 0-59 */
    uint64_t minutes; /* bits 0-59 */
    uint32_t hours;   /* bits 0-23 */
    uint32_t mdays;   /* bits 1-31 */
    uint16_t months;  /* bits 1-12 */
    uint8_t wdays;    /* bits 0-6, Sunday = 0 (7 is folded into 0) */
    bool mday_star;   /* day-of-month field starts with '*' */
    bool wday_star;   /* day-of-week field starts with '*' */
    bool has_seconds; /* six fields were given */
} pd_cron_t;

/* Parse `expr`. 0, or -EINVAL with `why` (may be NULL) naming the field and
 * the problem, e.g. "hour: 24 is out of range 0-23". *out is written only
 * on success. */
int pd_cron_parse(const char *expr, pd_cron_t *out, char *why, size_t why_size);

/* The first time the expression fires strictly after `after_ms` (UTC ms),
 * on a whole second; -1 when it never fires within the next 10 years
 * (e.g. "0 0 30 2 *", February 30th). */
int64_t pd_cron_next(const pd_cron_t *c, int64_t after_ms);

#endif
