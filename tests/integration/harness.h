/* Integration-test harness: runs the real daemons (platformd, hostbootd,
 * pluginhost) on free loopback ports in a private temp dir and drives them
 * through the HTTP API and the bus, as an operator or a peer would.
 *
 * Rules it enforces (docs/testing.md):
 *   - every process it starts is in one registry and is killed by PID
 *     (SIGKILL) from it_destroy, from an atexit handler and, should the test
 *     process itself die, by PR_SET_PDEATHSIG — nothing outlives a test;
 *   - waits poll a condition with a deadline, never a fixed sleep;
 *   - ports come from tests/common/testports.h (127.0.0.1, below 32768);
 *   - at teardown: every daemon still running must exit 0 on SIGTERM, no log
 *     holds a sanitizer report, no zombie child is left, no fd leaked.
 *
 * Functions that check something fail the current cmocka test (after
 * printing the tail of every daemon log) instead of returning an error.
 * Single-threaded: call from the test thread only. */
#ifndef PLAT_IT_HARNESS_H
#define PLAT_IT_HARNESS_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "platform.pb-c.h"

#define IT_PATH_MAX 512

/* Default deadlines (ms). Generous so that a sanitizer build on a loaded CI
 * machine passes; the tests assert tighter bounds where the contract sets
 * one (e.g. "registered within 1 s"). */
#define IT_DEADLINE_MS 10000
#define IT_STOP_DEADLINE_MS 10000

typedef struct it_env it_env_t;

/* One process started by the harness. Owned by its it_env_t; stays valid
 * (with exited set) after the process was reaped, until it_destroy. */
typedef struct {
    pid_t pid;                 /* as returned by fork */
    char name[32];             /* "platformd", "hostbootd", "pluginhost", ... */
    char log[IT_PATH_MAX];     /* stdout+stderr of the process */
    uint64_t started_ms;       /* it_now_ms() just before fork */
    bool exited;               /* reaped */
    int status;                /* waitpid status when exited */
} it_proc_t;

/* Predicate on a parsed JSON body (borrowed). */
typedef bool (*it_json_pred)(json_t *body, void *arg);

/* ---- environment ---------------------------------------------------- */

/* cmocka setup/teardown: *state = it_new() / it_destroy(*state). */
int it_setup(void **state);
int it_teardown(void **state);

/* Temp dir (mkdtemp under $TMPDIR or /tmp), three distinct free ports (bus,
 * HTTP, spare), a baseline fd count. Fails the test on error. */
it_env_t *it_new(void);

/* Stop every live process (SIGTERM, IT_STOP_DEADLINE_MS, then SIGKILL),
 * check exits, logs, zombies and fds, remove the temp dir (kept when a check
 * failed or PLAT_IT_KEEP=1; its path is printed then). Fails the test if a
 * check failed — but only after everything was killed and reaped.
 * NULL-safe; sets *env = NULL. */
void it_destroy(it_env_t **env);

const char *it_dir(const it_env_t *env);
int it_bus_port(const it_env_t *env);
int it_http_port(const it_env_t *env);
/* "tcp://127.0.0.1:<bus port>" */
const char *it_bus_endpoint(const it_env_t *env);

/* When set, it_destroy also fails on any log line at level "err" (a clean
 * run must not produce one). Off by default. */
void it_set_strict_logs(it_env_t *env, bool strict);

/* Log level for the daemons: $PLAT_IT_LOG_LEVEL or "info". */
const char *it_log_level(void);

/* Write `content` to <dir>/<name>; returns the full path (static storage of
 * the env, valid until it_destroy; one slot per distinct name). */
const char *it_write_file(it_env_t *env, const char *name, const char *content);

/* Config files for the daemons, written into the temp dir. Extra JSON
 * members (an object, may be NULL) are merged at top level, replacing.
 * hostbootd's config always keeps what it writes inside the temp dir: its
 * "log" object gets "dir" = <dir>/IT_HOSTBOOT_LOG_DIR and its "hosts"
 * object "work_dir" = <dir>/IT_HOSTS_WORK_DIR unless `extra` sets them
 * (an `extra` "log" or "hosts" without those keys gets them added). Host
 * output is then <dir>/IT_HOSTBOOT_LOG_DIR/hosts/<host-id>.log. */
#define IT_HOSTBOOT_LOG_DIR "hostboot-logs"
#define IT_HOSTS_WORK_DIR "host-work"
const char *it_platformd_config(it_env_t *env, int heartbeat_interval_ms, int heartbeat_miss,
                                json_t *extra);
const char *it_hostbootd_config(it_env_t *env, const char *name, json_t *extra);

/* ---- CURVE keys (docs/security.md) ------------------------------------ */

/* Every env runs the bus with CURVE: it_new creates the platform's key
 * pair and <dir>/keys/authorized.json (platformd's bus.authorized_keys_file,
 * re-read by platformd when it changes). it_hostbootd_config authorizes a
 * key for hostboot-<name>, it_start_pluginhost_dev one for the dev host's
 * id, it_client_new one for the client's identity. */
const char *it_platform_public_key(const it_env_t *env);
/* Add {id: public key} to the authorized keys file (NULL id: just write). */
void it_authorize_key(it_env_t *env, const char *id, const char *public_z85);
/* The secret key the env holds for `id`, made (and authorized when
 * `authorize`) on first use. Static storage of the env. */
const char *it_key_for(it_env_t *env, const char *id, bool authorize);
/* That key as a 0600 file <dir>/keys/<id>.key (authorized); its path. */
const char *it_key_file(it_env_t *env, const char *id);

/* ---- processes ------------------------------------------------------ */

/* fork + exec argv[0] (a path) with stdout/stderr appended to
 * <dir>/<name>-<n>.log, JOURNAL_STREAM unset, stdin /dev/null, every other
 * fd closed, PR_SET_PDEATHSIG SIGKILL. Registered for cleanup. */
it_proc_t *it_spawn(it_env_t *env, const char *name, char *const argv[]);

/* Convenience starters using PLATFORMD_BIN etc. */
it_proc_t *it_start_platformd(it_env_t *env, const char *config_path);
it_proc_t *it_start_hostbootd(it_env_t *env, const char *config_path);
/* `host_id` "host-<uuid>"; connects to the env's bus endpoint. */
it_proc_t *it_start_pluginhost_dev(it_env_t *env, const char *host_id);

/* True while the process has not exited (reaps it if it has). */
bool it_alive(it_proc_t *p);

/* Wait for the process to exit by itself within timeout_ms; returns its
 * waitpid status. Fails the test on timeout (the process is then killed). */
int it_wait_exit(it_proc_t *p, int timeout_ms);

/* SIGTERM, wait up to timeout_ms; fails the test (with the log tail) if it
 * did not exit in time (then SIGKILLed) or did not exit with status 0. */
void it_stop(it_proc_t *p, int timeout_ms);

/* SIGKILL and reap at once. */
void it_kill9(it_proc_t *p);

/* Whole log of the process (malloc'd, NUL-terminated; "" when empty). */
char *it_read_log(const it_proc_t *p);
/* How many times `needle` occurs in p's log so far. */
int it_log_count(const it_proc_t *p, const char *needle);

/* hostbootd started with `hb_extra` (stolen) merged into its config must
 * refuse the config: exit 78 (EX_CONFIG) with every one of the NULL-ended
 * needles in its log (printed when one is missing). */
void it_hostbootd_config_refused(it_env_t *env, json_t *hb_extra, ...)
    __attribute__((sentinel));

/* Print the last `lines` lines of every process log of the env to stderr. */
void it_dump_logs(const it_env_t *env, int lines);

/* Fail the current test after dumping every daemon log tail. */
#define it_fail(env, ...) it_fail_at((env), __FILE__, __LINE__, __VA_ARGS__)
void it_fail_at(const it_env_t *env, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));

/* Assert with the daemon logs shown on failure. */
#define IT_CHECK(env, cond, ...)                                                        \
    do {                                                                                \
        if (!(cond))                                                                    \
            it_fail_at((env), __FILE__, __LINE__, "check failed: " #cond ": " __VA_ARGS__); \
    } while (0)

/* ---- time ----------------------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t it_now_ms(void);

/* ---- HTTP ----------------------------------------------------------- */

/* GET http://127.0.0.1:<http port><path>. Returns the HTTP status (> 0),
 * or a negative errno when no response came (connection refused...).
 * *body (may be NULL) gets the parsed JSON (owned by the caller, NULL when
 * the body is not JSON). */
int it_http_get(const it_env_t *env, const char *path, json_t **body);

/* GET that must answer 200 with a JSON body; fails the test otherwise. */
json_t *it_get_json(const it_env_t *env, const char *path);

/* Any method: `method` "GET", "POST", "DELETE", ...; `body` (borrowed, may
 * be NULL) is sent as a JSON request body with Content-Type
 * application/json. Returns the HTTP status (> 0) or a negative errno as
 * it_http_get does; *resp (may be NULL) gets the parsed JSON response
 * (owned by the caller, NULL when the response is not JSON). */
int it_http_request(const it_env_t *env, const char *method, const char *path, json_t *body,
                    json_t **resp);
/* POST `body` (borrowed) / DELETE `path`: it_http_request conveniences. */
int it_http_post(const it_env_t *env, const char *path, json_t *body, json_t **resp);
/* POST `req` (stolen) to `path`; the status must be `want` (else the body is
 * printed and the test fails). Returns the response body (the caller's). */
json_t *it_post_ok(it_env_t *env, const char *path, json_t *req, int want);
/* POST /api/v1/packages {path}: must answer 201 with package.id `id`;
 * returns the response body (the caller's) for further checks. */
json_t *it_register_package(it_env_t *env, const char *path, const char *id);
/* GET /api/v1/instances/<uuid>: the instance object (owned); fails unless
 * the answer holds one. */
json_t *it_get_instance(it_env_t *env, const char *uuid);
int it_http_delete(const it_env_t *env, const char *path, json_t **resp);

/* Raw body in, raw body out: `method` http://127.0.0.1:<http port><path>
 * with `len` bytes of `body` (NULL: no request body) and, when not NULL,
 * "Content-Type: <content_type>". Sends the platform's bearer token
 * (<dir>/platform-state/api-token) unless the method is GET or HEAD; 60 s
 * for the answer. Returns the HTTP status (> 0) or a negative errno as
 * it_http_get does. *resp_body (may be NULL) always gets the response body
 * (malloc'd, NUL-terminated, "" when none; caller frees), *resp_len (may be
 * NULL) its length. */
int it_http_raw(const it_env_t *env, const char *method, const char *path, const void *body,
                size_t len, const char *content_type, char **resp_body, size_t *resp_len);

/* "Authorization: Bearer <token>" into out, "" when platformd wrote no
 * token (yet). */
void it_auth_header(const it_env_t *env, char *out, size_t size);

/* A POST of a JSON text running in the background (curl multi), for tests
 * that act while a request is in flight. `timeout_ms` bounds the request. */
typedef struct it_http_bg it_http_bg_t;
it_http_bg_t *it_http_bg_start(const it_env_t *env, const char *path, const char *json_text,
                               long timeout_ms);
/* Let the transfer progress for up to wait_ms; true once it is done. */
bool it_http_bg_poll(it_http_bg_t *bg, int wait_ms);
/* Wait for the end (bounded by the request's timeout) and free it; returns
 * the HTTP status, -ETIMEDOUT or -ECONNRESET without an answer; *resp (may
 * be NULL) the parsed JSON body (owned by the caller). Sets *bg = NULL. */
int it_http_bg_finish(it_http_bg_t **bg, json_t **resp);

/* Poll GET /healthz every 20 ms until it answers 200 {"status":"ok"}, or
 * fail after timeout_ms. Returns the elapsed ms. Also fails at once when
 * one of the env's processes exited meanwhile. */
uint64_t it_wait_healthy(it_env_t *env, int timeout_ms);

/* Poll GET `path` every 20 ms until it answers 200 and pred(body) holds;
 * returns the elapsed ms, fails after timeout_ms (showing `what` and the
 * last body). While waiting, connected bus clients answer their pings. */
uint64_t it_wait_json(it_env_t *env, const char *path, it_json_pred pred, void *arg,
                      int timeout_ms, const char *what);

/* The element of array `arr` whose string member `key` equals `value`. */
json_t *it_json_find(json_t *arr, const char *key, const char *value);

/* Integer at a dotted path ("bus.dropped.spoofed") of GET /api/v1/status. */
int64_t it_status_int(it_env_t *env, const char *dotted);

/* Integer/string/object at a dotted path of `root`; NULL when absent. */
json_t *it_json_path(json_t *root, const char *dotted);
/* The string at a dotted path of `root`; "" when absent or not a string. */
const char *it_json_str(json_t *root, const char *dotted);
/* The integer at a dotted path of `root`; `def` when absent or not one. */
int64_t it_json_int(json_t *root, const char *dotted, int64_t def);

/* ---- waiting on the API: common predicates -------------------------- */

/* /api/v1/hostboots lists `id` with state `state`. arg: it_match_t. */
typedef struct {
    const char *id;
    const char *state;
    const char *not_boot_id;  /* it_pred_status_boot_changed only */
} it_match_t;
bool it_pred_hostboot_state(json_t *body, void *arg);
/* /api/v1/hosts lists `id` with state `state`. */
bool it_pred_host_state(json_t *body, void *arg);
/* /api/v1/status boot_id is present and differs from not_boot_id. */
bool it_pred_status_boot_changed(json_t *body, void *arg);

/* Body of GET /api/v1/hosts/{id}: {"host":{...}} whose state is `state`.
 * arg: it_match_t (id unused). */
bool it_pred_host_id_state(json_t *body, void *arg);

/* Poll GET /api/v1/hosts/<id> every 20 ms until the host is in `state`;
 * returns its "host" object (owned by the caller). Fails the test after
 * timeout_ms, at once when the host is unknown (404), and at once when it
 * reached an ended state ("exited" or "failed") other than `state` — an
 * ended host never changes again. *elapsed_ms (may be NULL) gets the ms
 * waited. */
json_t *it_wait_host_state(it_env_t *env, const char *host_id, const char *state, int timeout_ms,
                           uint64_t *elapsed_ms);

/* ---- a bus client --------------------------------------------------- */

/* A synchronous DEALER to the platform with a chosen routing id, for tests
 * that play a peer (including a hostile one). Receiving answers the
 * platform's Control.ping requests with a pong on the way, so a client
 * stays alive while the test waits. Owned by the env (destroyed with it). */
typedef struct it_client it_client_t;

it_client_t *it_client_new(it_env_t *env, const char *identity);
/* A client with chosen CURVE keys: `secret_z85` NULL = no CURVE at all
 * (plaintext), else a CURVE client of `server_z85`. it_client_new is this
 * with the key authorized for `identity` and the platform's public key. */
it_client_t *it_client_new_curve(it_env_t *env, const char *identity, const char *secret_z85,
                                 const char *server_z85);
/* The same with a chosen routing id `route` (NULL = a fresh
 * "<identity>/<token>" as every real endpoint announces, or the bare
 * identity when that is not a valid id): for tests that try to take over
 * another endpoint's route. */
it_client_t *it_client_new_route(it_env_t *env, const char *identity, const char *route,
                                 const char *secret_z85, const char *server_z85);
void it_client_destroy(it_client_t **c);

const char *it_client_id(const it_client_t *c);
const char *it_client_boot_id(const it_client_t *c);

/* Next seq_no of this client (starts at 1). */
uint64_t it_client_next_seq(it_client_t *c);

/* Fill m's header (source `src` — normally the client id, destination
 * `dst`, `seq`, `kind`, boot id, sent_at_ms) and send it encoded. `m` stays
 * the caller's (plat_msg_* builders; header strings replaced). If `raw` is
 * not NULL it receives a malloc'd copy of the bytes sent (*raw_len too). */
void it_client_send(it_client_t *c, Plat__PlatformMessage *m, const char *src, const char *dst,
                    uint64_t seq, Plat__MessageKind kind, uint8_t **raw, size_t *raw_len);

/* Fill the header as it_client_send does and encode without sending;
 * *buf is malloc'd (caller frees). */
void it_client_encode(it_client_t *c, Plat__PlatformMessage *m, const char *src, const char *dst,
                      uint64_t seq, Plat__MessageKind kind, uint8_t **buf, size_t *len);

/* Send arbitrary frames as one message (for garbage / wrong frame counts). */
void it_client_send_frames(it_client_t *c, const void *const frames[], const size_t lens[],
                           size_t n);

/* Wait up to timeout_ms for the next message that is not a ping (pings are
 * answered). Returns 0 and *out (caller frees with plat_envelope_free) plus,
 * if raw is not NULL, a malloc'd copy of its bytes; -ETIMEDOUT when nothing
 * came; fails the test on an undecodable message. */
int it_client_recv(it_client_t *c, int timeout_ms, Plat__PlatformMessage **out, uint8_t **raw,
                   size_t *raw_len);

/* Throw away every frame waiting (pings unanswered); returns how many. */
size_t it_client_drain(it_client_t *c);

/* Answer pending pings without blocking. */
void it_client_pump(it_client_t *c);

/* Send Control.ready (dev host, own pid) as a REQUEST and expect a
 * register_ack REPLY; returns the platform boot id from the ack (static
 * storage of the client). Fails the test otherwise. */
const char *it_client_register(it_client_t *c, uint32_t *hb_interval_ms, uint32_t *hb_miss);

/* Number of pings this client answered. */
unsigned it_client_pings(const it_client_t *c);

/* A new random "host-<uuid>" into out[64]. */
void it_new_host_id(char out[64]);

/* ---- the usual trio ------------------------------------------------- */

/* platformd + hostbootd "itest" + one --dev pluginhost, started back to back
 * (t0 taken before the first spawn), then waited for: /healthz, the
 * hostboot and the host listed "ready". Times are measured from t0. */
typedef struct {
    it_proc_t *platformd;
    it_proc_t *hostbootd;
    it_proc_t *pluginhost;
    const char *platformd_config; /* owned by the env */
    const char *hostbootd_config; /* owned by the env */
    char host_id[64];             /* the dev host's id */
    uint64_t t0;                  /* it_now_ms() before the first spawn */
    uint64_t healthy_ms;          /* GET /healthz first answered 200, after t0 */
    uint64_t hostboot_ready_ms;   /* hostboot-itest first seen ready, after t0 */
    uint64_t host_ready_ms;       /* the dev host first seen ready, after t0 */
} it_suite_t;

#define IT_HOSTBOOT_NAME "itest"
#define IT_HOSTBOOT_ID "hostboot-itest"

void it_suite_start(it_env_t *env, it_suite_t *s, int heartbeat_interval_ms, int heartbeat_miss);

/* Wait until hostboot-itest and the dev host are both listed "ready";
 * returns the ms it took. */
uint64_t it_suite_wait_ready(it_env_t *env, const it_suite_t *s, int timeout_ms);

#endif
