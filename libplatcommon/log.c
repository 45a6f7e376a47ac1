/* One log line per event, written with a single write(2). */
#include "plat/log.h"

#include <errno.h>
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

void plat_logv(plat_log_level_t level, const char *component, const char *fmt, va_list ap)
{
    if ((int)level > atomic_load(&g_level))
        return;
    char line[LOG_LINE_MAX];
    int n;
    if (atomic_load(&g_journal) == 1) {
        n = snprintf(line, sizeof line, "<%d>%s %s/%s ", (int)level, plat_log_level_name(level),
                     g_daemon, component ? component : "-");
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s/%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000L, plat_log_level_name(level), g_daemon,
                     component ? component : "-");
    }
    if (n < 0)
        return;
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
