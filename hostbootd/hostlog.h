/* One plugin host's captured stdout/stderr: <dir>/<host-id>.log, size-capped
 * and rotated (<host-id>.log.1 is the newest rotated file, .log.<keep> the
 * oldest). Kept apart from hostbootd's own log.
 *
 * Thread: one object is used by one thread (hostbootd's loop thread). Writes
 * go to a regular file with write(2) and never wait on the host; errors drop
 * data (counted) instead of retrying or buffering. */
#ifndef HOSTBOOTD_HOSTLOG_H
#define HOSTBOOTD_HOSTLOG_H

#include <stddef.h>
#include <stdint.h>

#define HB_HOSTLOG_DEFAULT_MAX_BYTES (10u * 1024u * 1024u)
#define HB_HOSTLOG_KEEP_MAX 1000u /* larger `keep` values are -EINVAL */

typedef struct hb_hostlog hb_hostlog_t;
typedef struct {
    uint64_t max_bytes; /* size at which the current file is rotated (0 = 10 MiB) */
    unsigned keep;      /* rotated files kept (<host>.log.1 … .log.<keep>, 0 = no rotated file
                           kept, the current file is truncated); at most HB_HOSTLOG_KEEP_MAX */
} hb_hostlog_opts_t;

/* Create <dir> (mode 0750, parents too) if missing; open <dir>/<host_id>.log for append
   (O_CLOEXEC|O_NOFOLLOW, mode 0640). host_id must be a valid host id (plat_id_kind ==
   PLAT_ID_HOST from plat/id.h) — anything else is -EINVAL (no path tricks). NULL + errno on error.
   A symlink at the log path fails with ELOOP; anything but a regular file there (a FIFO, a
   device) is refused without blocking (EINVAL, or ENXIO for a FIFO nobody reads).
   An existing log is appended to and its size counts toward max_bytes; rotated files numbered
   above `keep` (left by a run with a larger keep) are removed. `o` NULL = all defaults
   (10 MiB, keep 0). Returns an owned object; free with hb_hostlog_close. */
hb_hostlog_t *hb_hostlog_open(const char *dir, const char *host_id, const hb_hostlog_opts_t *o);

/* Append; when the file would exceed max_bytes, rotate first (.log.N-1 → .log.N … .log → .log.1,
   drop the oldest) and continue in a fresh file — a single huge chunk is split across files, so
   no file ever exceeds max_bytes. Returns 0 or -errno (a full disk is reported once per episode
   with a warning log line and data is dropped, counted, never blocking).
   Any write failure (ENOSPC, EDQUOT, EFBIG, EIO, …) starts such an episode: this module logs one
   warning naming the host, later failures stay silent, and the first successful write after it
   logs a notice with the bytes dropped meanwhile — callers need not log the -errno again.
   len 0 is a no-op; l or buf NULL is -EINVAL. */
int hb_hostlog_write(hb_hostlog_t *l, const void *buf, size_t len);

/* Write a line "<ISO8601Z> hostbootd: <text>\n" (e.g. "host exited status=0") into the log.
   The timestamp has milliseconds ("2026-11-25T10:11:12.345Z"); if the host's last output did
   not end a line, a '\n' is written first so the note starts its own line. Same rotation and
   error rules as hb_hostlog_write. */
int hb_hostlog_note(hb_hostlog_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Counters over this object's lifetime; both cover host output and notes. */
uint64_t hb_hostlog_bytes_written(const hb_hostlog_t *l); /* total accepted */
uint64_t hb_hostlog_bytes_dropped(const hb_hostlog_t *l);

void hb_hostlog_close(hb_hostlog_t **l); /* NULL-safe; sets *l = NULL */

#endif
