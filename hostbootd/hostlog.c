/* A plugin host's output file: append, rotate at the cap, drop on error. */
#include "hostlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "plat/id.h"
#include "plat/log.h"

#define LOG_FILE_MODE 0640
#define LOG_DIR_MODE 0750
/* "<host-id>.log.<n>": the host id is "host-" + a UUID (41 chars); room for any unsigned n. */
#define HOST_ID_LEN (sizeof PLAT_HOST_PREFIX - 1 + PLAT_UUID_LEN)
#define NAME_MAX_LEN (HOST_ID_LEN + sizeof ".log.4294967295")

struct hb_hostlog {
    int dirfd;                     /* the log directory; every name is resolved against it */
    int fd;                        /* the current <host-id>.log, O_APPEND; -1 after a failure */
    char host_id[HOST_ID_LEN + 1]; /* validated host id, also the file name stem */
    uint64_t max_bytes;            /* rotation threshold, > 0 */
    unsigned keep;                 /* rotated files kept */
    uint64_t size;                 /* bytes in the current file, as we know it */
    uint64_t written;              /* bytes stored over the object's lifetime */
    uint64_t dropped;              /* bytes lost to write/rotation failures */
    uint64_t dropped_at_episode;   /* `dropped` when the current failure episode began */
    bool failing;                  /* inside a failure episode (warning already logged) */
    bool mid_line;                 /* last byte stored was not '\n' */
};

static void file_name(const hb_hostlog_t *l, unsigned n, char out[NAME_MAX_LEN])
{
    if (n == 0)
        snprintf(out, NAME_MAX_LEN, "%s.log", l->host_id);
    else
        snprintf(out, NAME_MAX_LEN, "%s.log.%u", l->host_id, n);
}

/* mkdir -p with LOG_DIR_MODE for every missing component. */
static int make_dirs(const char *dir)
{
    size_t n = strlen(dir);
    char *p = strdup(dir);
    if (!p)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 1; i <= n && rc == 0; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        if (p[i - 1] == '/')
            continue; /* "a//b": the component was made at the first slash */
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, LOG_DIR_MODE) < 0 && errno != EEXIST) {
            int err = errno;
            struct stat st; /* an existing dir may still answer EACCES/EROFS: that is fine */
            if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
                rc = -err;
        }
        p[i] = c;
    }
    free(p);
    return rc;
}

/* Open (creating) the current log file. O_NONBLOCK so a FIFO planted at the path cannot hang
 * us; it is cleared once we know the file is regular. */
static int open_current(hb_hostlog_t *l, bool truncate, uint64_t *size_out)
{
    char name[NAME_MAX_LEN];
    file_name(l, 0, name);
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
                (truncate ? O_TRUNC : 0);
    int fd = openat(l->dirfd, name, flags, LOG_FILE_MODE);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, O_APPEND) < 0) {
        int rc = S_ISREG(st.st_mode) ? -errno : -EINVAL;
        close(fd);
        return rc;
    }
    *size_out = (uint64_t)st.st_size;
    return fd;
}

/* Remove rotated files a previous run with a larger `keep` left behind. */
static void remove_stale(hb_hostlog_t *l)
{
    char name[NAME_MAX_LEN];
    for (unsigned n = l->keep + 1; n <= HB_HOSTLOG_KEEP_MAX; n++) {
        file_name(l, n, name);
        if (unlinkat(l->dirfd, name, 0) < 0)
            break; /* rotation makes a contiguous run, so the first gap ends it */
    }
}

hb_hostlog_t *hb_hostlog_open(const char *dir, const char *host_id, const hb_hostlog_opts_t *o)
{
    if (!dir || !*dir || plat_id_kind(host_id) != PLAT_ID_HOST ||
        (o && o->keep > HB_HOSTLOG_KEEP_MAX)) {
        errno = EINVAL;
        return NULL;
    }
    hb_hostlog_t *l = calloc(1, sizeof *l);
    if (!l) {
        errno = ENOMEM;
        return NULL;
    }
    l->dirfd = -1;
    l->fd = -1;
    snprintf(l->host_id, sizeof l->host_id, "%s", host_id);
    l->max_bytes = o && o->max_bytes ? o->max_bytes : HB_HOSTLOG_DEFAULT_MAX_BYTES;
    l->keep = o ? o->keep : 0;

    int rc = make_dirs(dir);
    if (rc == 0) {
        l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = l->dirfd < 0 ? -errno : 0;
    }
    if (rc == 0) {
        rc = open_current(l, false, &l->size);
        l->fd = rc;
    }
    if (rc < 0) {
        hb_hostlog_close(&l);
        errno = -rc;
        return NULL;
    }
    remove_stale(l);
    return l;
}

/* Shift the rotated files up by one and start an empty current file. With keep 0, or when the
 * current file cannot be renamed, the current file is truncated instead: the cap holds either
 * way. Returns 0 or -errno (then l->fd is -1 and the next write retries the open). */
static int rotate(hb_hostlog_t *l)
{
    char from[NAME_MAX_LEN], to[NAME_MAX_LEN];
    bool renamed = false;
    if (l->keep > 0) {
        /* .log.keep-1 → .log.keep overwrites (drops) the oldest. A missing file is a gap. */
        for (unsigned n = l->keep - 1; n >= 1; n--) {
            file_name(l, n, from);
            file_name(l, n + 1, to);
            if (renameat(l->dirfd, from, l->dirfd, to) < 0 && errno != ENOENT)
                plat_log_debug("hostlog", "rotate %s: %s, ignoring host=%s", from, strerror(errno),
                               l->host_id);
        }
        file_name(l, 0, from);
        file_name(l, 1, to);
        renamed = renameat(l->dirfd, from, l->dirfd, to) == 0 || errno == ENOENT;
    }
    if (!renamed && l->fd >= 0) {
        if (ftruncate(l->fd, 0) == 0) {
            l->size = 0;
            return 0;
        }
    }
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    uint64_t size = 0;
    int fd = open_current(l, true, &size);
    if (fd < 0)
        return fd;
    l->fd = fd;
    l->size = size;
    return 0;
}

static void episode_begin(hb_hostlog_t *l, int err)
{
    if (l->failing)
        return;
    l->failing = true;
    l->dropped_at_episode = l->dropped;
    plat_log_warn("hostlog", "host output not stored: %s, dropping it until writes succeed host=%s",
                  strerror(-err), l->host_id);
}

static void episode_end(hb_hostlog_t *l)
{
    if (!l->failing)
        return;
    l->failing = false;
    plat_log_notice("hostlog", "host output stored again dropped=%" PRIu64 " host=%s",
                    l->dropped - l->dropped_at_episode, l->host_id);
}

/* write(2) all of p[0..n) unless an error stops it; *done = bytes stored. */
static int write_all(int fd, const char *p, size_t n, size_t *done)
{
    *done = 0;
    while (*done < n) {
        ssize_t w = write(fd, p + *done, n - *done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -ENOSPC; /* a regular file only does this when it cannot grow */
        *done += (size_t)w;
    }
    return 0;
}

int hb_hostlog_write(hb_hostlog_t *l, const void *buf, size_t len)
{
    if (!l || (!buf && len > 0))
        return -EINVAL;
    const char *p = buf;
    int rc = 0;
    while (len > 0) {
        if (l->fd < 0) {
            uint64_t size = 0;
            int fd = open_current(l, false, &size);
            if (fd < 0) {
                rc = fd;
                break;
            }
            l->fd = fd;
            l->size = size;
        }
        if (l->size > 0 && l->size + len > l->max_bytes) {
            rc = rotate(l);
            if (rc < 0)
                break;
        }
        uint64_t room = l->max_bytes - l->size;
        size_t n = len < room ? len : (size_t)room;
        size_t done;
        rc = write_all(l->fd, p, n, &done);
        l->size += done;
        l->written += done;
        if (done > 0)
            l->mid_line = p[done - 1] != '\n';
        p += done;
        len -= done;
        if (rc < 0)
            break;
    }
    if (rc < 0) {
        episode_begin(l, rc); /* before counting: this chunk's loss belongs to the episode */
        l->dropped += len;
        return rc;
    }
    episode_end(l);
    return 0;
}

int hb_hostlog_note(hb_hostlog_t *l, const char *fmt, ...)
{
    if (!l || !fmt)
        return -EINVAL;
    uint64_t now = plat_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char stamp[48];
    size_t sl = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + sl, sizeof stamp - sl, ".%03uZ hostbootd: ", (unsigned)(now % 1000));

    va_list ap;
    va_start(ap, fmt);
    int tl = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (tl < 0)
        return -EINVAL;
    bool nl_first = l->mid_line;
    size_t head = strlen(stamp) + (nl_first ? 1 : 0);
    size_t total = head + (size_t)tl + 1;
    char small[512];
    char *line = total + 1 <= sizeof small ? small : malloc(total + 1);
    if (!line)
        return -ENOMEM;
    snprintf(line, total + 1, "%s%s", nl_first ? "\n" : "", stamp);
    va_start(ap, fmt);
    vsnprintf(line + head, (size_t)tl + 1, fmt, ap);
    va_end(ap);
    line[total - 1] = '\n';
    int rc = hb_hostlog_write(l, line, total);
    if (line != small)
        free(line);
    return rc;
}

uint64_t hb_hostlog_bytes_written(const hb_hostlog_t *l)
{
    return l ? l->written : 0;
}

uint64_t hb_hostlog_bytes_dropped(const hb_hostlog_t *l)
{
    return l ? l->dropped : 0;
}

void hb_hostlog_close(hb_hostlog_t **lp)
{
    if (!lp || !*lp)
        return;
    hb_hostlog_t *l = *lp;
    if (l->fd >= 0)
        close(l->fd);
    if (l->dirfd >= 0)
        close(l->dirfd);
    free(l);
    *lp = NULL;
}
