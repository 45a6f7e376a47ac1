/* benchlib: what the benchmark drivers (bench_spawn, bench_lifecycle,
 * bench_bus) share.
 * Not a library of the platform: a driver is one short-lived process, so
 * the state below (temp dir, daemons, HTTP connection, API token) lives in
 * this module's statics, set up by bench_init and torn down by
 * bench_cleanup.
 *
 *   bench_init()            temp dir, signals, child subreaper, libcurl
 *   bench_platform_start()  platformd + hostbootd on free loopback ports in
 *                           the temp dir, healthy and registered; the API
 *                           token read from platformd's state dir; the bus
 *                           with CURVE on, as by default (keys created in
 *                           <temp>/keys: the platform's, hostbootd's)
 *   bench_authorize() & co. more keys in platformd's authorized keys file
 *                           (dev hosts the driver plays itself)
 *   bench_request() & co.   the HTTP API (kept-alive connection; the token
 *                           is sent on every non-GET request)
 *   bench_fail()            message, cleanup, exit 1
 *   bench_cleanup()         everything started is killed by PID (daemons
 *                           SIGTERM then SIGKILL, orphaned hosts SIGKILL);
 *                           the temp dir removed on success, kept otherwise
 *
 * Nothing here asserts a figure: the drivers measure and print. */
#ifndef PLAT_BENCHLIB_H
#define PLAT_BENCHLIB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define BENCH_HOSTBOOT_NAME "bench"
#define BENCH_HOSTBOOT_ID "hostboot-" BENCH_HOSTBOOT_NAME
#define BENCH_HTTP_TIMEOUT_MS 10000 /* a request that answers at once */

/* ---- time ------------------------------------------------------------------ */

uint64_t bench_now_ns(void); /* CLOCK_MONOTONIC */
double bench_ms_since(uint64_t t0_ns);
void bench_sleep_ms(int ms);

/* ---- the run ------------------------------------------------------------------ */

/* Creates the temp dir ($TMPDIR or /tmp, "plat-bench-XXXXXX"), installs the
 * SIGINT/SIGTERM/SIGHUP flag handler, ignores SIGPIPE, becomes a child
 * subreaper, initialises libcurl. `keep`: keep the temp dir even on success.
 * Exits 1 with a message when any of it fails. */
void bench_init(bool keep);

/* The temp dir (valid after bench_init). */
const char *bench_dir(void);

/* Message on stderr ("bench: error: ..."), bench_cleanup(false), exit 1. */
void bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Fails when the user interrupted the run or a daemon died (naming its log). */
void bench_check_alive(void);

/* A child of the driver's own (the spawn baseline's) that cleanup must kill;
 * 0 when none is in flight. */
void bench_set_child(pid_t pid);

/* Kills and reaps everything started, by PID; idempotent. `ok`: the run
 * succeeded so far; then the daemons must exit 0 on SIGTERM and nothing may
 * be left over, else it reports it and exits 1. Removes the temp dir when
 * all went well (and keep is off), else names it. */
void bench_cleanup(bool ok);

/* ---- processes and /proc ---------------------------------------------------------- */

void bench_describe_status(int status, char *buf, size_t size);

/* Parent pid, and optionally comm and state, of `pid` from /proc/<pid>/stat;
 * false if it is gone. */
bool bench_proc_stat(pid_t pid, pid_t *ppid, char *comm, size_t comm_size, char *state);

/* Pids of the live processes whose parent is `parent` (and whose comm is
 * `comm`, if not NULL); returns how many, at most `max`. */
size_t bench_children_of(pid_t parent, const char *comm, pid_t *out, size_t max);

/* "Key:   123 kB" from /proc/<pid>/<file>; -1 if absent. */
long bench_proc_kb(pid_t pid, const char *file, const char *key);

/* User + system CPU time of `pid` in ms (clock ticks); -1 if gone. */
double bench_proc_cpu_ms(pid_t pid);

/* CPU time of `pid`'s live threads in ms at ns resolution (the sum of
 * /proc/<pid>/task/<tid>/schedstat run times; threads that have exited are
 * not counted); -1 if gone. For short, idle spans, where 10 ms ticks are too
 * coarse. */
double bench_proc_runtime_ms(pid_t pid);

/* ---- the platform ----------------------------------------------------------------- */

typedef struct {
    const char *platformd, *hostbootd, *pluginhost; /* binaries */
    const char *log_level;                          /* of both daemons; NULL: "warning" */
    /* Members merged into platformd's config (stolen; NULL: none); an
     * object member ("bus", "heartbeat", ...) is merged key by key, so
     * {"bus": {"rate_per_sec": 0}} keeps the endpoint and the keys. */
    json_t *platformd_extra;
} bench_platform_t;

/* Creates the CURVE keys in <temp>/keys (the platform's pair, hostbootd's
 * pair, the authorized keys file with hostboot-bench), writes the configs
 * (bus.curve on, log level warning unless set, state dir <temp>/state,
 * hostboot "bench" with runtime c/1 = pluginhost), starts platformd, waits
 * for /healthz, reads the API token, starts hostbootd and waits for it to
 * be ready. Fails (bench_fail) on any error or after a 10 s deadline. */
void bench_platform_start(bench_platform_t *p);

/* ---- CURVE keys (docs/security.md) -------------------------------------------- */

/* The platform's public key, Z85 (after bench_platform_start). */
const char *bench_platform_public_key(void);

/* Adds `id` ("host-<uuid>" or "hostboot-<name>") -> `public_z85` to the
 * authorized keys, in memory; bench_authorized_flush writes them. */
void bench_authorize(const char *id, const char *public_z85);

/* Writes platformd's bus.authorized_keys_file (atomically: a temp file
 * renamed over it, mode 0600) if keys were added since the last write.
 * platformd re-reads it when a handshake brings a key it does not know
 * (platformd/zap.c), so a client connecting after this is admitted at once.
 * Returns the number of keys in the file. */
size_t bench_authorized_flush(void);

/* The driver's own children that cleanup must kill (the raw routers of
 * bench_bus): at most 8 at a time. */
void bench_add_child(pid_t pid);
void bench_forget_child(pid_t pid);

pid_t bench_platformd_pid(void);
/* "tcp://127.0.0.1:<port>" of platformd's ROUTER (after bench_platform_start). */
const char *bench_platform_bus_endpoint(void);
pid_t bench_hostbootd_pid(void);
const char *bench_platformd_log(void);
const char *bench_hostbootd_log(void);

/* ---- HTTP ----------------------------------------------------------------------------- */

typedef struct {
    long status; /* -1: no response (err says why) */
    char *body;  /* NUL-terminated, owned; NULL when empty */
    size_t len;
    char err[1024]; /* "METHOD url -> status body..." or the transport error */
} bench_reply_t;

/* One request on the kept-alive connection; `body` (JSON for POST) may be
 * NULL; `timeout_ms` 0 means BENCH_HTTP_TIMEOUT_MS. A Ctrl-C aborts it.
 * Returns r->status. Clear r with bench_reply_clear. */
long bench_request(const char *method, const char *path, const char *body, int timeout_ms,
                   bench_reply_t *r);
void bench_reply_clear(bench_reply_t *r);

/* A request that must answer `want` with a JSON body; returns it (owned).
 * Fails otherwise, naming the answer. */
json_t *bench_http_must(const char *method, const char *path, const char *body, long want,
                        int timeout_ms);

/* ---- statistics and output -------------------------------------------------------- */

typedef struct {
    size_t n;
    double median, p99, mean, min, max;
} bench_stats_t;

/* Median (the mean of the middle two for an even n), nearest-rank p99
 * (the ceil(0.99 n)-th smallest), mean, min, max. */
bench_stats_t bench_stats_of(const double *v, size_t n);

/* "  <label, 44 wide> n median p99 mean min max" */
void bench_print_stats(const char *label, bench_stats_t s);

/* The first three fields of /proc/loadavg, or "?". */
void bench_loadavg(char *buf, size_t size);

/* A decimal in [min, max] or usage on stderr and exit 2. */
int bench_int_arg(const char *s, int min, int max, void (*usage)(FILE *));

/* Dumps `root` (stolen) as <temp dir>/<name> into path; fails on error. */
void bench_write_json(const char *name, json_t *root, char *path, size_t path_size);

#endif
