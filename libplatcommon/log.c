/* One log line per event, written with a single write(2). */
#include "plat/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static char g_daemon[32] = "plat";
static _Atomic int g_level = PLAT_LOG_INFO;
static _Atomic int g_journal = -1; /* -1 detect, 0 plain, 1 journal */
static _Atomic int g_fd = 2;

static const char *const g_names[] = {
    [PLAT_LOG_ERR] = "err",         [PLAT_LOG_WARNING] = "warning", [PLAT_LOG_NOTICE] = "notice",
    [PLAT_LOG_INFO] = "info",       [PLAT_LOG_DEBUG] = "debug",
};

/* systemd sets JOURNAL_STREAM=<dev>:<ino> of the stream it connected to
 * stderr; journal format only when that is still our fd. */
static int detect_journal(int fd)
{
    const char *js = getenv("JOURNAL_STREAM");
    if (!js || !*js)
        return 0;
    unsigned long long dev = 0, ino = 0;
    if (sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return 0;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void plat_log_init(const char *daemon)
{
    snprintf(g_daemon, sizeof g_daemon, "%s", daemon ? daemon : "plat");
    atomic_store(&g_journal, detect_journal(atomic_load(&g_fd)));
}

void plat_log_set_level(plat_log_level_t level)
{
    if (level < PLAT_LOG_ERR)
        level = PLAT_LOG_ERR;
    if (level > PLAT_LOG_DEBUG)
        level = PLAT_LOG_DEBUG;
    atomic_store(&g_level, (int)level);
}

plat_log_level_t plat_log_get_level(void) { return (plat_log_level_t)atomic_load(&g_level); }

int plat_log_level_from_name(const char *name)
{
    if (!name)
        return -EINVAL;
    for (int l = PLAT_LOG_ERR; l <= PLAT_LOG_DEBUG; l++)
        if (strcmp(name, g_names[l]) == 0)
            return l;
    return -EINVAL;
}

const char *plat_log_level_name(plat_log_level_t level)
{
    if (level < PLAT_LOG_ERR || level > PLAT_LOG_DEBUG)
        return "unknown";
    return g_names[level];
}

void plat_log_set_journal(int mode)
{
    atomic_store(&g_journal, mode < 0 ? detect_journal(atomic_load(&g_fd)) : !!mode);
}

void plat_log_set_fd(int fd) { atomic_store(&g_fd, fd); }

/* ---- ring ---------------------------------------------------------------- */

typedef struct {
    char name[32];
    char **lines; /* `g_ring_lines` slots, NULL = empty */
    size_t next;  /* slot of the next line */
    size_t count; /* lines kept (<= g_ring_lines) */
} ring_t;

static pthread_mutex_t g_ring_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic size_t g_ring_lines; /* 0 = off */
static ring_t g_rings[PLAT_LOG_RING_COMPONENTS]; /* used by g_n_rings, under the lock */
static size_t g_n_rings;

static void ring_free_locked(void)
{
    for (size_t i = 0; i < g_n_rings; i++) {
        if (g_rings[i].lines)
            for (size_t j = 0; j < atomic_load(&g_ring_lines); j++)
                free(g_rings[i].lines[j]);
        free(g_rings[i].lines);
        memset(&g_rings[i], 0, sizeof g_rings[i]);
    }
    g_n_rings = 0;
}

int plat_log_ring_enable(size_t lines)
{
    if (lines > PLAT_LOG_RING_LINES_MAX)
        return -EINVAL;
    pthread_mutex_lock(&g_ring_lock);
    ring_free_locked();
    atomic_store(&g_ring_lines, lines);
    pthread_mutex_unlock(&g_ring_lock);
    return 0;
}

size_t plat_log_ring_size(void) { return atomic_load(&g_ring_lines); }

/* The ring of `component` (created when new; "(other)" when full). Lock held. */
static ring_t *ring_get_locked(const char *component, size_t n)
{
    char want[sizeof g_rings[0].name];
    snprintf(want, sizeof want, "%s", component); /* names are kept truncated */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < g_n_rings; i++)
            if (strcmp(g_rings[i].name, want) == 0)
                return &g_rings[i];
        /* The last slot is kept for "(other)". */
        if (g_n_rings < PLAT_LOG_RING_COMPONENTS - 1 || strcmp(want, "(other)") == 0) {
            if (g_n_rings == PLAT_LOG_RING_COMPONENTS)
                return NULL;
            ring_t *r = &g_rings[g_n_rings];
            r->lines = calloc(n, sizeof *r->lines);
            if (!r->lines)
                return NULL;
            snprintf(r->name, sizeof r->name, "%s", want);
            g_n_rings++;
            return r;
        }
        snprintf(want, sizeof want, "(other)");
    }
    return NULL;
}

static void ring_add(const char *component, const char *ts, const char *body, size_t body_len)
{
    if (atomic_load(&g_ring_lines) == 0)
        return;
    size_t tl = strlen(ts);
    char *copy = malloc(tl + 1 + body_len + 1);
    if (!copy)
        return; /* the output line was written; only the diag copy is lost */
    memcpy(copy, ts, tl);
    copy[tl] = ' ';
    memcpy(copy + tl + 1, body, body_len);
    copy[tl + 1 + body_len] = 0;
    pthread_mutex_lock(&g_ring_lock);
    size_t n = atomic_load(&g_ring_lines);
    ring_t *r = n ? ring_get_locked(component && *component ? component : "-", n) : NULL;
    if (r) {
        free(r->lines[r->next]);
        r->lines[r->next] = copy;
        copy = NULL;
        r->next = (r->next + 1) % n;
        if (r->count < n)
            r->count++;
    }
    pthread_mutex_unlock(&g_ring_lock);
    free(copy);
}

typedef struct {
    char name[32];
    char **lines;
    size_t count;
} ring_copy_t;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const ring_copy_t *)a)->name, ((const ring_copy_t *)b)->name);
}

int plat_log_ring_foreach(plat_log_ring_fn fn, void *arg)
{
    if (!fn)
        return -EINVAL;
    ring_copy_t copies[PLAT_LOG_RING_COMPONENTS];
    size_t nc = 0;
    int rc = 0;
    pthread_mutex_lock(&g_ring_lock);
    size_t n = atomic_load(&g_ring_lines);
    for (size_t i = 0; i < g_n_rings && rc == 0; i++) {
        ring_t *r = &g_rings[i];
        ring_copy_t *c = &copies[nc];
        memcpy(c->name, r->name, sizeof c->name);
        c->count = 0;
        c->lines = calloc(r->count ? r->count : 1, sizeof *c->lines);
        if (!c->lines) {
            rc = -ENOMEM;
            break;
        }
        nc++;
        size_t first = (r->next + n - r->count) % n;
        for (size_t j = 0; j < r->count; j++) {
            c->lines[j] = strdup(r->lines[(first + j) % n]);
            if (!c->lines[j]) {
                rc = -ENOMEM;
                break;
            }
            c->count++;
        }
    }
    pthread_mutex_unlock(&g_ring_lock);
    if (rc == 0) {
        qsort(copies, nc, sizeof copies[0], by_name);
        for (size_t i = 0; i < nc; i++)
            for (size_t j = 0; j < copies[i].count; j++)
                fn(copies[i].name, copies[i].lines[j], arg);
    }
    for (size_t i = 0; i < nc; i++) {
        for (size_t j = 0; j < copies[i].count; j++)
            free(copies[i].lines[j]);
        free(copies[i].lines);
    }
    return rc;
}

/* ---- lines --------------------------------------------------------------- */

void plat_logv(plat_log_level_t level, const char *component, const char *fmt, va_list ap)
{
    if ((int)level > atomic_load(&g_level))
        return;
    char line[LOG_LINE_MAX];
    char ts[80] = "";
    bool journal = atomic_load(&g_journal) == 1;
    bool ring = atomic_load(&g_ring_lines) > 0;
    if (!journal || ring) {
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 now.tv_nsec / 1000000L);
    }
    /* line = prefix ("<N>" or "<timestamp> ") + body ("level daemon/component message"). */
    int prefix = journal ? snprintf(line, sizeof line, "<%d>", (int)level)
                         : snprintf(line, sizeof line, "%s ", ts);
    if (prefix < 0)
        return;
    int n = snprintf(line + prefix, sizeof line - (size_t)prefix, "%s %s/%s ",
                     plat_log_level_name(level), g_daemon, component ? component : "-");
    if (n < 0)
        return;
    n += prefix;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
    if (m > 0)
        used += (size_t)m < sizeof line - used ? (size_t)m : sizeof line - used - 1;
    /* One event, one line: embedded newlines would split it. */
    for (size_t i = 0; i < used; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    while (used > 0 && line[used - 1] == ' ')
        used--;
    if (used >= sizeof line - 1)
        used = sizeof line - 2;
    if (ring && used > (size_t)prefix)
        ring_add(component, ts, line + prefix, used - (size_t)prefix);
    line[used++] = '\n';
    ssize_t w;
    do
        w = write(atomic_load(&g_fd), line, used);
    while (w < 0 && errno == EINTR);
}

void plat_log(plat_log_level_t level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    plat_logv(level, component, fmt, ap);
    va_end(ap);
}
