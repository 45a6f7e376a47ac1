/* One log module for every daemon: one line per event,
 *   plain:   2026-11-25T10:11:12.345Z info platformd/router registered endpoint id=hostboot-a
 *   journal: <6>info platformd/router registered endpoint id=hostboot-a
 * Journal mode is chosen when JOURNAL_STREAM names our stderr (systemd sets it).
 * Thread-safe: each line is written with a single write(2). */
#ifndef PLAT_LOG_H
#define PLAT_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* Values are syslog priorities, so they double as the <N> journal prefix. */
typedef enum {
    PLAT_LOG_ERR = 3,
    PLAT_LOG_WARNING = 4,
    PLAT_LOG_NOTICE = 5,
    PLAT_LOG_INFO = 6,
    PLAT_LOG_DEBUG = 7,
} plat_log_level_t;

/* `daemon` is copied (at most 31 chars); call once at the top of main. */
void plat_log_init(const char *daemon);

/* Lines above `level` are discarded. Default PLAT_LOG_INFO. */
void plat_log_set_level(plat_log_level_t level);
plat_log_level_t plat_log_get_level(void);

/* "err", "warning", "notice", "info", "debug" -> level; -EINVAL otherwise. */
int plat_log_level_from_name(const char *name);
const char *plat_log_level_name(plat_log_level_t level);

/* Force journal (1) or plain (0) format; -1 = detect (the default). For tests. */
void plat_log_set_journal(int mode);

/* Redirect output to `fd` (default 2). For tests. */
void plat_log_set_fd(int fd);

/* `component` is the module ("router", "config"); message is printf-formatted,
 * ids go at the end as key=value. A trailing newline is not needed. */
void plat_log(plat_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void plat_logv(plat_log_level_t level, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* ---- in-memory ring (diagnostics) --------------------------------------
 * When enabled, the last `lines` lines logged by each component (lines that
 * passed the level filter) are kept in memory, so a daemon can show them
 * (platformd: GET /api/v1/diag). Every stored line is
 *   "2026-11-25T10:11:12.345Z info platformd/router message key=value"
 * whatever the output format. At most PLAT_LOG_RING_COMPONENTS components
 * get their own ring; lines of later ones share the ring of "(other)".
 * Thread-safe (one mutex; never held while writing the output). */
#define PLAT_LOG_RING_COMPONENTS 64
#define PLAT_LOG_RING_LINES_MAX 10000

/* Keep the last `lines` lines per component (1..PLAT_LOG_RING_LINES_MAX);
 * 0 turns the ring off and frees it (the default). Changing the size drops
 * what was kept. 0, -EINVAL (too large) or -ENOMEM. */
int plat_log_ring_enable(size_t lines);
size_t plat_log_ring_size(void);

/* Called once per kept line: components in name order, each component's
 * lines oldest first. `component` and `line` (no trailing newline) are
 * valid during the call only. The ring is copied first, so `fn` may log. */
typedef void (*plat_log_ring_fn)(const char *component, const char *line, void *arg);
/* 0, or -ENOMEM (nothing was called). */
int plat_log_ring_foreach(plat_log_ring_fn fn, void *arg);

#define plat_log_err(comp, ...) plat_log(PLAT_LOG_ERR, comp, __VA_ARGS__)
#define plat_log_warn(comp, ...) plat_log(PLAT_LOG_WARNING, comp, __VA_ARGS__)
#define plat_log_notice(comp, ...) plat_log(PLAT_LOG_NOTICE, comp, __VA_ARGS__)
#define plat_log_info(comp, ...) plat_log(PLAT_LOG_INFO, comp, __VA_ARGS__)
#define plat_log_debug(comp, ...) plat_log(PLAT_LOG_DEBUG, comp, __VA_ARGS__)

#endif
