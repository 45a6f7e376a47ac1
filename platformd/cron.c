/* Cron expressions (see cron.h). */
#include "cron.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct {
    const char *name;         /* for messages */
    int min, max;             /* allowed values (day-of-week: 0-7) */
    const char *const *names; /* names for min.., or NULL */
} field_t;

static const char *const g_month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                            "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const g_wday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

enum { F_SEC, F_MIN, F_HOUR, F_MDAY, F_MON, F_WDAY, F_COUNT };

static const field_t g_fields[F_COUNT] = {
    [F_SEC] = {"second", 0, 59, NULL},         [F_MIN] = {"minute", 0, 59, NULL},
    [F_HOUR] = {"hour", 0, 23, NULL},          [F_MDAY] = {"day-of-month", 1, 31, NULL},
    [F_MON] = {"month", 1, 12, g_month_names}, [F_WDAY] = {"day-of-week", 0, 7, g_wday_names},
};

static int bad(char *why, size_t size, const field_t *f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(char *why, size_t size, const field_t *f, const char *fmt, ...)
{
    if (why && size) {
        int n = f ? snprintf(why, size, "%s: ", f->name) : 0;
        if (n < 0 || (size_t)n >= size)
            n = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why + n, size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* A number or (for months and weekdays) a three-letter name at *p. */
static int value(const field_t *f, const char **p, int *out, char *why, size_t size)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (*s - '0');
            if (v > 1000)
                return bad(why, size, f, "number too large");
            s++;
        }
        if (v < f->min || v > f->max)
            return bad(why, size, f, "%ld is out of range %d-%d", v, f->min, f->max);
        *out = (int)v;
        *p = s;
        return 0;
    }
    if (f->names && isalpha((unsigned char)*s)) {
        size_t n = 0;
        while (isalpha((unsigned char)s[n]))
            n++;
        for (int i = 0; f->names[i]; i++)
            if (n == 3 && strncasecmp(s, f->names[i], 3) == 0) {
                *out = f->min + i;
                *p = s + n;
                return 0;
            }
        return bad(why, size, f, "unknown name \"%.*s\"", (int)(n > 16 ? 16 : n), s);
    }
    if (!*s || *s == ',')
        return bad(why, size, f, "empty item");
    return bad(why, size, f, "unexpected '%c'", *s);
}

/* One field's text [s, end) into a bit set. */
static int parse_field(const field_t *f, const char *s, const char *end, uint64_t *bits, char *why,
                       size_t size)
{
    char buf[PD_CRON_EXPR_MAX + 1];
    size_t len = (size_t)(end - s);
    memcpy(buf, s, len);
    buf[len] = 0;
    uint64_t set = 0;
    const char *p = buf;
    for (;;) {
        int lo, hi, step = 1;
        bool star = false;
        if (*p == '*') {
            star = true;
            lo = f->min;
            hi = f->max;
            p++;
        } else {
            int rc = value(f, &p, &lo, why, size);
            if (rc < 0)
                return rc;
            hi = lo;
            if (*p == '-') {
                p++;
                rc = value(f, &p, &hi, why, size);
                if (rc < 0)
                    return rc;
                if (hi < lo)
                    return bad(why, size, f, "range %d-%d runs backwards", lo, hi);
            }
        }
        if (*p == '/') {
            p++;
            if (!isdigit((unsigned char)*p))
                return bad(why, size, f, "step must be a number");
            long st = 0;
            while (isdigit((unsigned char)*p)) {
                st = st * 10 + (*p - '0');
                if (st > 1000)
                    return bad(why, size, f, "step too large");
                p++;
            }
            if (st < 1)
                return bad(why, size, f, "step must be at least 1");
            step = (int)st;
            if (!star && hi == lo)
                hi = f->max; /* "a/step": from a to the end */
        }
        if (star && f == &g_fields[F_WDAY])
            hi = 6; /* '*' covers Sunday once */
        for (int v = lo; v <= hi; v += step)
            set |= 1ULL << v;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p)
            return bad(why, size, f, "unexpected '%c'", *p);
        break;
    }
    if (f == &g_fields[F_WDAY] && (set & (1ULL << 7)))
        set = (set & ~(1ULL << 7)) | 1ULL; /* 7 = Sunday = 0 */
    *bits = set;
    return 0;
}

static const struct {
    const char *name;
    const char *expr;
} g_nicknames[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

int pd_cron_parse(const char *expr, pd_cron_t *out, char *why, size_t why_size)
{
    if (why && why_size)
        why[0] = 0;
    if (!expr || !out)
        return bad(why, why_size, NULL, "no expression");
    if (strlen(expr) > PD_CRON_EXPR_MAX)
        return bad(why, why_size, NULL, "longer than %d characters", PD_CRON_EXPR_MAX);
    while (*expr == ' ' || *expr == '\t')
        expr++;
    if (*expr == '@') {
        size_t n = strcspn(expr, " \t");
        for (const char *r = expr + n; *r; r++)
            if (*r != ' ' && *r != '\t')
                return bad(why, why_size, NULL, "nothing may follow %.*s", (int)n, expr);
        for (size_t i = 0; i < sizeof g_nicknames / sizeof g_nicknames[0]; i++)
            if (strlen(g_nicknames[i].name) == n && strncasecmp(expr, g_nicknames[i].name, n) == 0)
                return pd_cron_parse(g_nicknames[i].expr, out, why, why_size);
        return bad(why, why_size, NULL,
                   "unknown nickname \"%.*s\" (known: @yearly @annually @monthly @weekly "
                   "@daily @midnight @hourly)",
                   (int)(n > 32 ? 32 : n), expr);
    }
    const char *start[7], *end[7];
    int n = 0;
    for (const char *p = expr; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (n == 7)
            break;
        start[n] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        end[n++] = p;
    }
    if (n != 5 && n != 6)
        return bad(why, why_size, NULL,
                   "expected 5 fields (minute hour day-of-month month day-of-week), or 6 with "
                   "a leading seconds field; got %s%d",
                   n == 7 ? "more than " : "", n == 7 ? 6 : n);
    pd_cron_t c = {0};
    c.has_seconds = n == 6;
    uint64_t bits[F_COUNT] = {[F_SEC] = 1}; /* 5 fields: second 0 */
    for (int i = 0; i < n; i++) {
        int f = c.has_seconds ? i : i + 1;
        int rc = parse_field(&g_fields[f], start[i], end[i], &bits[f], why, why_size);
        if (rc < 0)
            return rc;
        if (f == F_MDAY)
            c.mday_star = *start[i] == '*';
        if (f == F_WDAY)
            c.wday_star = *start[i] == '*';
    }
    c.seconds = bits[F_SEC];
    c.minutes = bits[F_MIN];
    c.hours = (uint32_t)bits[F_HOUR];
    c.mdays = (uint32_t)bits[F_MDAY];
    c.months = (uint16_t)bits[F_MON];
    c.wdays = (uint8_t)bits[F_WDAY];
    *out = c;
    return 0;
}

static bool day_matches(const pd_cron_t *c, const struct tm *tm)
{
    bool md = c->mdays & (1U << tm->tm_mday);
    bool wd = c->wdays & (1U << tm->tm_wday);
    if (c->mday_star || c->wday_star)
        return md && wd;
    return md || wd;
}

/* timegm + gmtime_r: carry over-/underflowed fields. */
static int64_t normalize(struct tm *tm)
{
    time_t t = timegm(tm);
    gmtime_r(&t, tm);
    return (int64_t)t;
}

int64_t pd_cron_next(const pd_cron_t *c, int64_t after_ms)
{
    if (!c || !c->seconds || !c->minutes || !c->hours || !c->mdays || !c->months || !c->wdays)
        return -1;
    /* Whole seconds: floor division, then the next second. */
    int64_t s = after_ms >= 0 ? after_ms / 1000 : -((-after_ms + 999) / 1000);
    time_t t = (time_t)(s + 1);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return -1;
    int last_year = tm.tm_year + 10;
    /* Each step moves to the start of the next candidate unit; at most a
     * few hundred steps per matching day, bounded by the year limit. */
    for (;;) {
        if (tm.tm_year > last_year)
            return -1;
        if (!(c->months & (1U << (tm.tm_mon + 1)))) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            normalize(&tm);
            continue;
        }
        if (!day_matches(c, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
            normalize(&tm);
            continue;
        }
        if (!(c->hours & (1U << tm.tm_hour))) {
            tm.tm_hour++;
            tm.tm_min = tm.tm_sec = 0;
            normalize(&tm);
            continue;
        }
        if (!(c->minutes & (1ULL << tm.tm_min))) {
            tm.tm_min++;
            tm.tm_sec = 0;
            normalize(&tm);
            continue;
        }
        /* A leap second (tm_sec 60) never comes out of gmtime_r on Linux. */
        int sec = tm.tm_sec;
        while (sec < 60 && !(c->seconds & (1ULL << sec)))
            sec++;
        if (sec == 60) {
            tm.tm_min++;
            tm.tm_sec = 0;
            normalize(&tm);
            continue;
        }
        tm.tm_sec = sec;
        return normalize(&tm) * 1000;
    }
}
