/* platformctl diag, logs and trace (docs/diagnostics.md, docs/logging.md):
 *   diag               GET /api/v1/diag rendered as sections
 *   logs ID [--follow] a host's captured output, read from the file its
 *                      hostboot writes (GET /api/v1/hosts/{id}/log names it);
 *                      --follow keeps reading across rotations until the
 *                      host has ended
 *   trace ID on|off    POST /api/v1/trace (host-<uuid> = a host, else an
 *                      instance UUID) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "table.h"

static int oom(void)
{
    fprintf(stderr, "platformctl: out of memory\n");
    return CTL_EXIT_API;
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long num(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* ms as "850ms", "12.3s", "5m03s", "2h05m"; "-" for a non-integer. */
static void dur(json_t *v, char *out, size_t size)
{
    if (!json_is_integer(v)) {
        snprintf(out, size, "-");
        return;
    }
    long long ms = (long long)json_integer_value(v), s = ms / 1000;
    if (ms < 1000)
        snprintf(out, size, "%lldms", ms);
    else if (s < 60)
        snprintf(out, size, "%lld.%llds", s, (ms % 1000) / 100);
    else if (s < 3600)
        snprintf(out, size, "%lldm%02llds", s / 60, s % 60);
    else
        snprintf(out, size, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
}

static void bytes(json_t *v, char *out, size_t size)
{
    if (!json_is_integer(v)) {
        snprintf(out, size, "-");
        return;
    }
    double b = (double)json_integer_value(v);
    if (b >= 1024.0 * 1024.0)
        snprintf(out, size, "%.1fMiB", b / (1024.0 * 1024.0));
    else
        snprintf(out, size, "%.0fKiB", b / 1024.0);
}

/* A table of `ncols` string cells per row, filled by the caller. */
static int print_rows(size_t ncols, const char *const *headers, char (*cells)[160], size_t nrows)
{
    ctl_table_t *t = ctl_table_new(ncols, headers);
    if (!t)
        return oom();
    for (size_t r = 0; r < nrows; r++) {
        const char *row[16];
        for (size_t k = 0; k < ncols; k++)
            row[k] = cells[r * ncols + k][0] ? cells[r * ncols + k] : NULL;
        if (ctl_table_add(t, row) < 0) {
            ctl_table_destroy(&t);
            return oom();
        }
    }
    ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
    return CTL_EXIT_OK;
}

static char (*rows_new(size_t ncols, size_t nrows))[160]
{
    return calloc((nrows ? nrows : 1) * ncols, 160);
}

static int show_hostboots(json_t *list)
{
    static const char *const h[] = {"ID", "STATE", "VERSION", "HEARTBEAT", "HOSTS", "REPORT",
                                    "MESSAGES", "LOG_DIR"};
    size_t n = json_array_size(list), i;
    char(*c)[160] = rows_new(8, n);
    if (!c)
        return oom();
    json_t *hb;
    json_array_foreach(list, i, hb)
    {
        char(*r)[160] = c + i * 8;
        json_t *beat = json_object_get(hb, "last_heartbeat"), *rep = json_object_get(hb, "last_report");
        snprintf(r[0], 160, "%s", str(hb, "id") ?: "?");
        snprintf(r[1], 160, "%s", str(hb, "state") ?: "?");
        snprintf(r[2], 160, "%s", str(hb, "version") ?: "");
        if (json_is_object(beat)) {
            dur(json_object_get(beat, "age_ms"), r[3], 160);
            strncat(r[3], " ago", 160 - strlen(r[3]) - 1);
            snprintf(r[4], 160, "%lld", num(beat, "host_count"));
        }
        if (json_is_object(rep)) {
            char a[32];
            dur(json_object_get(rep, "age_ms"), a, sizeof a);
            snprintf(r[5], 160, "%s %s ago", str(rep, "kind") ?: "?", a);
        }
        snprintf(r[6], 160, "%lld", num(hb, "messages_rx"));
        snprintf(r[7], 160, "%s", str(hb, "log_dir") ?: "");
    }
    int rc = print_rows(8, h, c, n);
    free(c);
    return rc;
}

static int show_hosts(json_t *list)
{
    static const char *const h[] = {"ID",       "STATE",    "PID",      "RSS",       "UPTIME",
                                    "INSTANCES", "RESTARTS", "MESSAGES", "LAST_ERROR"};
    size_t n = json_array_size(list), i;
    char(*c)[160] = rows_new(9, n);
    if (!c)
        return oom();
    json_t *ho;
    json_array_foreach(list, i, ho)
    {
        char(*r)[160] = c + i * 9;
        snprintf(r[0], 160, "%s", str(ho, "id") ?: "?");
        snprintf(r[1], 160, "%s%s", str(ho, "state") ?: "?",
                 json_is_true(json_object_get(ho, "dev")) ? " (dev)" : "");
        snprintf(r[2], 160, "%lld", num(ho, "pid"));
        bytes(json_object_get(ho, "rss_bytes"), r[3], 160);
        dur(json_object_get(ho, "uptime_ms"), r[4], 160);
        size_t j;
        json_t *in;
        json_array_foreach(json_object_get(ho, "instances"), j, in)
        {
            size_t used = strlen(r[5]);
            snprintf(r[5] + used, 160 - used, "%s%.8s:%s", used ? "," : "", str(in, "uuid") ?: "?",
                     str(in, "state") ?: "?");
        }
        snprintf(r[6], 160, "%lld", num(ho, "restarts"));
        snprintf(r[7], 160, "%lld", num(ho, "messages_rx"));
        json_t *err = json_object_get(ho, "last_error");
        if (json_is_object(err))
            snprintf(r[8], 160, "%s", str(err, "message") ?: "?");
    }
    int rc = print_rows(9, h, c, n);
    free(c);
    return rc;
}

static void show_kv(const char *title, json_t *obj)
{
    printf("\n%s\n", title);
    if (json_is_object(obj))
        ctl_print_object(obj, stdout);
    else
        printf("  (none)\n");
}

static int show_bus(json_t *bus)
{
    printf("\nBUS  rx=%lld tx=%lld forwarded=%lld send_failures=%lld unknown_destination=%lld\n",
           num(bus, "rx"), num(bus, "tx"), num(bus, "forwarded"), num(bus, "tx_failed"),
           num(bus, "unknown_destination"));
    static const char *const h[] = {"CHANNEL", "RX", "TX"};
    json_t *chs = json_object_get(bus, "channels");
    size_t n = json_object_size(chs), i = 0;
    char(*c)[160] = rows_new(3, n);
    if (!c)
        return oom();
    const char *k;
    json_t *v;
    json_object_foreach(chs, k, v)
    {
        snprintf(c[i * 3], 160, "%s", k);
        snprintf(c[i * 3 + 1], 160, "%lld", num(v, "rx"));
        snprintf(c[i * 3 + 2], 160, "%lld", num(v, "tx"));
        i++;
    }
    int rc = print_rows(3, h, c, n);
    free(c);
    char dropped[512] = "";
    json_object_foreach(json_object_get(bus, "dropped"), k, v)
    {
        if (json_integer_value(v) > 0) {
            size_t used = strlen(dropped);
            snprintf(dropped + used, sizeof dropped - used, " %s=%lld", k,
                     (long long)json_integer_value(v));
        }
    }
    printf("dropped:%s\n", dropped[0] ? dropped : " none");
    return rc;
}

static int show_requests(json_t *list)
{
    static const char *const h[] = {"ROUTE", "METHOD", "STATUS", "COUNT"};
    size_t n = json_array_size(list), i;
    char(*c)[160] = rows_new(4, n);
    if (!c)
        return oom();
    json_t *r;
    json_array_foreach(list, i, r)
    {
        snprintf(c[i * 4], 160, "%s", str(r, "route") ?: "?");
        snprintf(c[i * 4 + 1], 160, "%s", str(r, "method") ?: "?");
        snprintf(c[i * 4 + 2], 160, "%lld", num(r, "status"));
        snprintf(c[i * 4 + 3], 160, "%lld", num(r, "count"));
    }
    int rc = print_rows(4, h, c, n);
    free(c);
    return rc;
}

static int show_services(json_t *list)
{
    if (!json_is_array(list)) {
        printf("  (not available)\n");
        return CTL_EXIT_OK;
    }
    static const char *const h[] = {"INSTANCE", "STATE", "PORT", "CHECKS", "FAILED", "PROXIED",
                                    "LAST_ERROR"};
    size_t n = json_array_size(list), i;
    char(*c)[160] = rows_new(7, n);
    if (!c)
        return oom();
    json_t *s;
    json_array_foreach(list, i, s)
    {
        char(*r)[160] = c + i * 7;
        snprintf(r[0], 160, "%s", str(s, "instance") ?: "?");
        snprintf(r[1], 160, "%s", str(s, "state") ?: "?");
        snprintf(r[2], 160, "%lld", num(s, "port"));
        snprintf(r[3], 160, "%lld", num(s, "checks"));
        snprintf(r[4], 160, "%lld", num(s, "checks_failed"));
        snprintf(r[5], 160, "%lld", num(s, "proxied"));
        snprintf(r[6], 160, "%s", str(s, "last_error") ?: "");
    }
    int rc = print_rows(7, h, c, n);
    free(c);
    return rc;
}

int ctl_cmd_diag(ctl_t *c, char **args)
{
    (void)args;
    json_t *d;
    int rc = ctl_call(c, "GET", "/api/v1/diag", NULL, &d);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(d);
        return rc;
    }
    json_t *p = json_object_get(d, "platform");
    char up[32], rss[32];
    dur(json_object_get(p, "uptime_ms"), up, sizeof up);
    bytes(json_object_get(p, "rss_bytes"), rss, sizeof rss);
    printf("PLATFORM  platformd %s pid=%lld up %s rss %s boot_id=%s\n", str(p, "version") ?: "?",
           num(p, "pid"), up, rss, str(p, "boot_id") ?: "?");
    show_kv("CONFIG", json_object_get(p, "config"));
    printf("\nHOSTBOOTS\n");
    if (rc == CTL_EXIT_OK)
        rc = show_hostboots(json_object_get(d, "hostboots"));
    printf("\nHOSTS\n");
    if (rc == CTL_EXIT_OK)
        rc = show_hosts(json_object_get(d, "hosts"));
    show_kv("INSTANCES (by state)", json_object_get(d, "instances"));
    json_t *sync = json_object_get(d, "sync");
    char oldest[32];
    dur(json_object_get(sync, "oldest_pending_age_ms"), oldest, sizeof oldest);
    printf("\nSYNC CALLS  pending=%lld oldest=%s replies=%lld timeouts=%lld failed=%lld\n",
           num(sync, "pending"), num(sync, "pending") ? oldest : "-", num(sync, "replies"),
           num(sync, "timeouts"), num(sync, "failed"));
    if (rc == CTL_EXIT_OK)
        rc = show_bus(json_object_get(d, "bus"));
    show_kv("COUNTERS", json_object_get(d, "counters"));
    printf("\nAPI REQUESTS\n");
    if (rc == CTL_EXIT_OK)
        rc = show_requests(json_object_get(d, "http_requests"));
    json_t *tr = json_object_get(d, "trace");
    char *ti = ctl_cell(json_object_get(tr, "instances")), *th = ctl_cell(json_object_get(tr, "hosts"));
    printf("\nTRACE  instances=%s hosts=%s lines=%lld\n", ti ? ti : "-", th ? th : "-",
           num(tr, "lines"));
    free(ti);
    free(th);
    printf("\nWEB SERVICES\n");
    if (rc == CTL_EXIT_OK)
        rc = show_services(json_object_get(d, "web_services"));
    printf("\nLOGS (last lines per component)\n");
    const char *comp;
    json_t *lines;
    json_object_foreach(json_object_get(d, "logs"), comp, lines)
    {
        printf("-- %s\n", comp);
        size_t i;
        json_t *l;
        json_array_foreach(lines, i, l) printf("  %s\n", json_string_value(l) ?: "");
    }
    json_decref(d);
    return rc;
}

/* ---- logs ----------------------------------------------------------------- */

/* Copy what `fd` holds from its offset to EOF to stdout. 0 or -errno. */
static int copy_out(int fd)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            return -EIO;
    }
}

/* The host's log file path and whether it has ended, from the API. */
static int host_log(ctl_t *c, const char *id, char *path, size_t size, bool *ended)
{
    char *esc = ctl_http_escape(id);
    if (!esc)
        return oom();
    char url[512];
    snprintf(url, sizeof url, "/api/v1/hosts/%s/log", esc);
    free(esc);
    bool json = c->json;
    c->json = false; /* the file is the output, not this answer */
    json_t *out;
    int rc = ctl_call(c, "GET", url, NULL, &out);
    c->json = json;
    if (rc != CTL_EXIT_OK)
        return rc;
    const char *f = str(out, "log_file"), *st = str(out, "state");
    if (!f) {
        json_decref(out);
        fprintf(stderr, "platformctl: 200 bad_response: the answer has no \"log_file\"\n");
        return CTL_EXIT_API;
    }
    snprintf(path, size, "%s", f);
    *ended = st && (strcmp(st, "exited") == 0 || strcmp(st, "failed") == 0);
    json_decref(out);
    return CTL_EXIT_OK;
}

static void nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int ctl_cmd_logs(ctl_t *c, char **args)
{
    const char *id = args[0];
    bool follow = ctl_opt(c, OPT_FOLLOW) != NULL, ended = false;
    char path[4096];
    int rc = host_log(c, id, path, sizeof path, &ended);
    if (rc != CTL_EXIT_OK)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && !(follow && errno == ENOENT)) {
        fprintf(stderr, "platformctl: cannot read the host log %s: %s (platformctl reads it "
                        "directly: run it on the platform's machine as a user that may read "
                        "the hostboot's log directory)\n",
                path, strerror(errno));
        return CTL_EXIT_API;
    }
    if (fd >= 0 && copy_out(fd) < 0) {
        fprintf(stderr, "platformctl: reading %s: %s\n", path, strerror(errno));
        close(fd);
        return CTL_EXIT_API;
    }
    fflush(stdout);
    if (!follow) {
        if (fd >= 0)
            close(fd);
        return CTL_EXIT_OK;
    }
    /* Follow: poll the file; a different inode at the path (rotated: the
     * file was renamed to .log.1 and a new one created) or a shorter file
     * (truncated, keep = 0) means: finish the old one, start the new one
     * from its beginning. Stop once the host has ended and all is read. */
    struct stat cur = {0};
    if (fd >= 0)
        fstat(fd, &cur);
    long waited = 0;
    for (;;) {
        nap(200);
        waited += 200;
        if (fd >= 0 && copy_out(fd) < 0)
            break;
        struct stat st;
        if (stat(path, &st) == 0) {
            off_t pos = fd >= 0 ? lseek(fd, 0, SEEK_CUR) : 0;
            if (fd < 0 || st.st_ino != cur.st_ino || st.st_dev != cur.st_dev || st.st_size < pos) {
                int nfd = open(path, O_RDONLY | O_CLOEXEC);
                if (nfd >= 0) {
                    if (fd >= 0) {
                        copy_out(fd); /* whatever was written before the rotation */
                        close(fd);
                    }
                    fd = nfd;
                    fstat(fd, &cur);
                    copy_out(fd);
                }
            }
        }
        fflush(stdout);
        if (ferror(stdout))
            break; /* the reader went away (a closed pipe) */
        if (waited >= 1000) {
            waited = 0;
            if (ended)
                break; /* checked once more after it ended: all read */
            int r = host_log(c, id, path, sizeof path, &ended);
            if (r == CTL_EXIT_NOT_FOUND) /* forgotten after exited_keep_ms: ended */
                ended = true;
            else if (r != CTL_EXIT_OK)
                break;
        }
    }
    if (fd >= 0) {
        copy_out(fd);
        close(fd);
    }
    fflush(stdout);
    return CTL_EXIT_OK;
}

/* ---- trace ----------------------------------------------------------------- */

int ctl_cmd_trace(ctl_t *c, char **args)
{
    const char *id = args[0], *sw = args[1];
    if (strcmp(sw, "on") != 0 && strcmp(sw, "off") != 0)
        return ctl_usage_error("trace: the second argument is \"on\" or \"off\", not \"%s\"", sw);
    bool host = strncmp(id, "host-", 5) == 0;
    json_t *body = json_pack("{s:s, s:b}", host ? "host" : "instance", id, "on",
                             strcmp(sw, "on") == 0);
    if (!body)
        return oom();
    json_t *out;
    int rc = ctl_call(c, "POST", "/api/v1/trace", body, &out);
    json_decref(body);
    if (rc == CTL_EXIT_OK && !c->json)
        ctl_print_object(out, stdout);
    json_decref(out);
    return rc;
}
