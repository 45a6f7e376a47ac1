/* Resources and abilities end to end (ARCHITECTURE.md section 8): the real
 * platformd + hostbootd + pluginhost, plugins calling the platform through
 * the SDK (op_db_exec, op_http_request, op_file_*, op_task_register,
 * op_service_register), driven through the HTTP API:
 *  a) DB through the resprobe test plugin: CRUD with every type (null,
 *     integer, real, text, blob) round trip; ATTACH and load_extension
 *     denied (-EACCES); a runaway query stopped by the time limit
 *     (-ETIMEDOUT); bad SQL -EINVAL; counter counts in its database;
 *     the data survives a kill -9 of the host, and is gone after uninstall;
 *  b) HTTP through the fetcher example against a server thread of this
 *     test: an allowed URL works (also through an allowed redirect); a
 *     disallowed host, a redirect to a disallowed host, a slow server and
 *     an oversized body each give their typed error;
 *  c) File through resprobe: write / read / list / delete, escaping paths
 *     refused (the full corpus is test_res_file's);
 *  d) a seconds-level task of the ticker example fires and is counted;
 *  e) websvc: a request proxied through /plugins/<uuid>/svc/... works, the
 *     service killed → 503, brought back → 200;
 *  f) a plugin built for plugin ABI 1 (no on_task) still loads and runs. */
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "plat/plat.h"
#include "testports.h"

#ifndef EXAMPLES_DIR
#error "EXAMPLES_DIR (the built example packages) must be defined"
#endif
#ifndef IT_PLUGINS_DIR
#error "IT_PLUGINS_DIR (the built test plugins) must be defined"
#endif

#define HB_INTERVAL_MS 200
#define HB_MISS 5
/* A lifecycle action includes a host start: generous for sanitizer builds. */
#define ACTION_DEADLINE_MS 30000
/* Limits the platform runs with here (small, so the tests are quick). */
#define DB_TIMEOUT_MS 500
#define HTTP_TIMEOUT_MS 1500
#define HTTP_MAX_BYTES 65536
#define FILE_MAX_BYTES 65536

/* ---- JSON ------------------------------------------------------------------ */

static char *dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    return s ? s : strdup("(none)");
}

/* ---- daemons ---------------------------------------------------------------- */

/* platformd (small resource limits, quick restarts and health checks) and
 * hostbootd "itest", waited for. */
static void start_daemons(it_env_t *env)
{
    json_t *extra = json_pack(
        "{s:{s:i, s:i}, s:{s:i, s:i}, s:{s:i, s:i, s:i, s:i}, s:{s:i, s:i, s:i}}", "hosts",
        "ready_timeout_ms", ACTION_DEADLINE_MS, "exited_keep_ms", 3600000, "plugins",
        "restart_initial_ms", 200, "idle_ms", 600000, "resources", "db_timeout_ms",
        DB_TIMEOUT_MS, "http_timeout_ms", HTTP_TIMEOUT_MS, "http_max_bytes", HTTP_MAX_BYTES,
        "file_max_bytes", FILE_MAX_BYTES, "services", "health_interval_ms", 200,
        "health_timeout_ms", 1000, "unhealthy_after", 1);
    assert_non_null(extra);
    const char *cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, extra);
    json_decref(extra);
    it_start_platformd(env, cfg);
    it_start_hostbootd(env, it_hostbootd_config(env, IT_HOSTBOOT_NAME, NULL));
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_match_t hb = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &hb, IT_DEADLINE_MS,
                 IT_HOSTBOOT_ID " listed ready");
}

/* ---- packages and instances ------------------------------------------------ */

static void register_package(it_env_t *env, const char *path, const char *id)
{
    json_decref(it_register_package(env, path, id));
}

static void register_example(it_env_t *env, const char *dir)
{
    char path[IT_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", EXAMPLES_DIR, dir);
    register_package(env, path, dir);
}

static void register_test_plugin(it_env_t *env, const char *dir)
{
    char path[IT_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", IT_PLUGINS_DIR, dir);
    register_package(env, path, dir);
}

static void install(it_env_t *env, const char *plugin, json_t *config, char uuid[64])
{
    json_t *req = json_pack("{s:s, s:s, s:s}", "plugin", plugin, "version", "1.0.0", "org",
                            "res-org");
    assert_non_null(req);
    if (config)
        json_object_set(req, "config", config);
    json_t *body = NULL;
    int st = it_http_post(env, "/api/v1/instances", req, &body);
    json_decref(req);
    char *d = dump(body);
    IT_CHECK(env, st == 201, "install %s: 201 (got %d: %s)", plugin, st, d);
    free(d);
    snprintf(uuid, 64, "%s", it_json_str(body, "instance.uuid"));
    IT_CHECK(env, plat_uuid_valid(uuid), "instance uuid (got '%s')", uuid);
    json_decref(body);
}

static void act_ok(it_env_t *env, const char *uuid, const char *action, const char *state)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s/%s", uuid, action);
    json_t *empty = json_object(), *body = NULL;
    int st = it_http_post(env, path, empty, &body);
    json_decref(empty);
    char *d = dump(body);
    IT_CHECK(env, st == 200, "%s %s: 200 (got %d: %s)", action, uuid, st, d);
    IT_CHECK(env, strcmp(it_json_str(body, "instance.state"), state) == 0, "%s: state %s (got %s)",
             action, state, d);
    free(d);
    json_decref(body);
}

/* install, enable, start. */
static void install_running(it_env_t *env, const char *plugin, json_t *config, char uuid[64])
{
    install(env, plugin, config, uuid);
    act_ok(env, uuid, "enable", "enabled");
    act_ok(env, uuid, "start", "running");
}

static void uninstall(it_env_t *env, const char *uuid)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s/uninstall", uuid);
    json_t *empty = json_object(), *body = NULL;
    int st = it_http_post(env, path, empty, &body);
    json_decref(empty);
    char *d = dump(body);
    IT_CHECK(env, st == 200, "uninstall %s: 200 (got %d: %s)", uuid, st, d);
    free(d);
    json_decref(body);
}

/* POST .../invoke?path=<p> with a raw body; the status, the body in *out. */
static int invoke(it_env_t *env, const char *uuid, const char *p, const char *body, char **out)
{
    char path[1024];
    snprintf(path, sizeof path, "/api/v1/instances/%s/invoke?path=%s", uuid, p);
    if (!body)
        body = "";
    return it_http_raw(env, "POST", path, body, strlen(body), "text/plain", out, NULL);
}

/* An invoke that must answer 200 with JSON; returns it (owned). */
static json_t *invoke_json(it_env_t *env, const char *uuid, const char *p, json_t *args)
{
    char *text = args ? json_dumps(args, JSON_COMPACT) : strdup("{}");
    assert_non_null(text);
    char *out = NULL;
    int st = invoke(env, uuid, p, text, &out);
    IT_CHECK(env, st == 200, "invoke %s %s %s: 200 (got %d: %s)", uuid, p, text, st, out);
    json_t *j = json_loads(out, 0, NULL);
    IT_CHECK(env, j != NULL, "invoke %s answers JSON (got %s)", p, out);
    free(text);
    free(out);
    return j;
}

/* resprobe /db: the answer (owned). `params` is stolen (may be NULL). */
static json_t *db(it_env_t *env, const char *uuid, const char *sql, json_t *params)
{
    json_t *args = json_pack("{s:s, s:o}", "sql", sql, "params", params ? params : json_array());
    json_t *r = invoke_json(env, uuid, "/db", args);
    json_decref(args);
    return r;
}

/* A statement that must succeed; returns the answer (owned). */
static json_t *db_ok(it_env_t *env, const char *uuid, const char *sql, json_t *params)
{
    json_t *r = db(env, uuid, sql, params);
    char *d = dump(r);
    IT_CHECK(env, it_json_int(r, "rc", -1) == 0, "%s succeeds (got %s)", sql, d);
    free(d);
    return r;
}

/* A statement that must fail with `code`, its message naming `needle`. */
static void db_fails(it_env_t *env, const char *uuid, const char *sql, int code, const char *needle)
{
    json_t *r = db(env, uuid, sql, NULL);
    char *d = dump(r);
    IT_CHECK(env, it_json_int(r, "rc", 0) == code, "%s fails with %d (got %s)", sql, code, d);
    IT_CHECK(env, !needle || strcasestr(it_json_str(r, "message"), needle),
             "%s: the message names '%s' (got %s)", sql, needle, d);
    free(d);
    json_decref(r);
}

/* resprobe /file; the answer (owned). */
static json_t *file_op(it_env_t *env, const char *uuid, const char *op, const char *path,
                       const char *data)
{
    json_t *args = json_pack("{s:s, s:s}", "op", op, "path", path);
    if (data)
        json_object_set_new(args, "data", json_string(data));
    json_t *r = invoke_json(env, uuid, "/file", args);
    json_decref(args);
    return r;
}

static int file_rc(it_env_t *env, const char *uuid, const char *op, const char *path,
                   const char *data)
{
    json_t *r = file_op(env, uuid, op, path, data);
    int rc = (int)it_json_int(r, "rc", 1);
    json_decref(r);
    return rc;
}

/* The instance's host id and that host's pid. */
static pid_t instance_host_pid(it_env_t *env, const char *uuid, char host[64])
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s", uuid);
    json_t *body = it_get_json(env, path);
    snprintf(host, 64, "%s", it_json_str(body, "instance.host"));
    json_decref(body);
    IT_CHECK(env, host[0], "instance %s has a host", uuid);
    snprintf(path, sizeof path, "/api/v1/hosts/%s", host);
    body = it_get_json(env, path);
    pid_t pid = (pid_t)it_json_int(body, "host.pid", 0);
    json_decref(body);
    IT_CHECK(env, pid > 0, "host %s has a pid", host);
    return pid;
}

typedef struct {
    const char *not_host;
} running_elsewhere_t;

static bool pred_running_elsewhere(json_t *body, void *arg)
{
    const running_elsewhere_t *m = arg;
    json_t *inst = json_object_get(body, "instance");
    return strcmp(it_json_str(inst, "state"), "running") == 0 &&
           json_is_false(json_object_get(inst, "busy")) && it_json_str(inst, "host")[0] &&
           strcmp(it_json_str(inst, "host"), m->not_host) != 0;
}

/* Paths under the platform's state dir whose name holds `needle`. */
static const char *g_needle;
static int g_found;
static char g_first[IT_PATH_MAX + 64];
static int count_named(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    if (strstr(path + f->base, g_needle) && g_found++ == 0)
        snprintf(g_first, sizeof g_first, "%s", path);
    return 0;
}

static int state_paths_named(it_env_t *env, const char *needle)
{
    char dir[IT_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/platform-state", it_dir(env));
    g_needle = needle;
    g_found = 0;
    nftw(dir, count_named, 16, FTW_PHYS);
    return g_found;
}

/* ---- a) DB ------------------------------------------------------------------ */

static void test_db(void **state)
{
    it_env_t *env = *state;
    start_daemons(env);
    register_test_plugin(env, "resprobe");
    register_example(env, "counter");
    char uuid[64];
    install_running(env, "resprobe", NULL, uuid);

    /* CRUD with every type. */
    json_decref(db_ok(env, uuid,
                      "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, "
                      "n TEXT)",
                      NULL));
    json_t *r = db_ok(env, uuid, "INSERT INTO t (i, r, s, b, n) VALUES (?1, ?2, ?3, ?4, ?5)",
                      json_pack("[I, f, s, {s:s}, n]", (json_int_t)-9007199254740993LL, 2.5,
                                "héllo, wörld", "hex", "00ff10", NULL));
    IT_CHECK(env, it_json_int(r, "changes", 0) == 1, "one row inserted");
    int64_t id = it_json_int(r, "last_insert_id", 0);
    IT_CHECK(env, id == 1, "last_insert_id 1 (got %lld)", (long long)id);
    json_decref(r);
    json_decref(db_ok(env, uuid, "INSERT INTO t (i, s) VALUES (?1, ?2)",
                      json_pack("[i, s]", 2, "second")));
    r = db_ok(env, uuid, "SELECT id, i, r, s, b, n FROM t ORDER BY id", NULL);
    char *d = dump(r);
    json_t *want_cols = json_pack("[s, s, s, s, s, s]", "id", "i", "r", "s", "b", "n");
    IT_CHECK(env, json_equal(json_object_get(r, "columns"), want_cols), "columns (got %s)", d);
    json_decref(want_cols);
    json_t *rows = json_object_get(r, "rows");
    IT_CHECK(env, json_array_size(rows) == 2, "two rows (got %s)", d);
    json_t *row = json_array_get(rows, 0);
    IT_CHECK(env, json_integer_value(json_array_get(row, 0)) == 1, "id (got %s)", d);
    IT_CHECK(env, json_integer_value(json_array_get(row, 1)) == -9007199254740993LL,
             "64-bit integer (got %s)", d);
    IT_CHECK(env, json_is_real(json_array_get(row, 2)) &&
                      json_real_value(json_array_get(row, 2)) == 2.5,
             "real (got %s)", d);
    IT_CHECK(env, strcmp(json_string_value(json_array_get(row, 3)), "héllo, wörld") == 0,
             "UTF-8 text (got %s)", d);
    IT_CHECK(env, strcmp(it_json_str(json_array_get(row, 4), "hex"), "00ff10") == 0,
             "blob with a NUL byte (got %s)", d);
    IT_CHECK(env, json_is_null(json_array_get(row, 5)), "null (got %s)", d);
    free(d);
    json_decref(r);
    r = db_ok(env, uuid, "UPDATE t SET s = ?1 WHERE id = ?2", json_pack("[s, i]", "changed", 2));
    IT_CHECK(env, it_json_int(r, "changes", 0) == 1, "one row updated");
    json_decref(r);
    r = db_ok(env, uuid, "DELETE FROM t WHERE id = 1", NULL);
    IT_CHECK(env, it_json_int(r, "changes", 0) == 1, "one row deleted");
    json_decref(r);
    r = db_ok(env, uuid, "SELECT s FROM t", NULL);
    json_t *cell = json_array_get(json_array_get(json_object_get(r, "rows"), 0), 0);
    IT_CHECK(env, json_array_size(json_object_get(r, "rows")) == 1 && json_is_string(cell) &&
                      strcmp(json_string_value(cell), "changed") == 0,
             "the update and the delete are seen");
    json_decref(r);

    /* The authorizer, the time limit, the parser. */
    db_fails(env, uuid, "ATTACH DATABASE '/tmp/x.db' AS x", -EACCES, NULL);
    db_fails(env, uuid, "SELECT load_extension('/lib/x.so')", -EACCES, NULL);
    uint64_t t0 = it_now_ms();
    db_fails(env, uuid,
             "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
             "SELECT count(*) FROM c",
             -ETIMEDOUT, NULL);
    IT_CHECK(env, it_now_ms() - t0 < 20000, "the runaway query was stopped");
    db_fails(env, uuid, "SELEC nonsense", -EINVAL, NULL);
    json_decref(db_ok(env, uuid, "SELECT 1", NULL)); /* still usable */

    /* counter keeps its count in its own database. */
    char cnt[64];
    install_running(env, "counter", NULL, cnt);
    for (int i = 1; i <= 3; i++) {
        char *out = NULL, want[32];
        int st = invoke(env, cnt, "/", "", &out);
        snprintf(want, sizeof want, "{\"count\":%d}", i);
        IT_CHECK(env, st == 200 && strcmp(out, want) == 0, "counter %s (got %d %s)", want, st,
                 out);
        free(out);
    }

    /* Both survive a kill -9 of their host (powerSave: the same one). */
    char host[64];
    pid_t pid = instance_host_pid(env, uuid, host);
    IT_CHECK(env, kill(pid, SIGKILL) == 0, "kill -9 host %s pid %d", host, (int)pid);
    char path[160];
    running_elsewhere_t m = {host};
    snprintf(path, sizeof path, "/api/v1/instances/%s", uuid);
    it_wait_json(env, path, pred_running_elsewhere, &m, ACTION_DEADLINE_MS,
                 "resprobe restarted on a new host");
    snprintf(path, sizeof path, "/api/v1/instances/%s", cnt);
    it_wait_json(env, path, pred_running_elsewhere, &m, ACTION_DEADLINE_MS,
                 "counter restarted on a new host");
    r = db_ok(env, uuid, "SELECT s FROM t", NULL);
    cell = json_array_get(json_array_get(json_object_get(r, "rows"), 0), 0);
    IT_CHECK(env, json_is_string(cell) && strcmp(json_string_value(cell), "changed") == 0,
             "the row survived the host's death");
    json_decref(r);
    char *out = NULL;
    int st = invoke(env, cnt, "/peek", "", &out);
    IT_CHECK(env, st == 200 && strcmp(out, "{\"count\":3}") == 0,
             "the count survived the host's death (got %d %s)", st, out);
    free(out);

    /* Uninstall removes the database. */
    IT_CHECK(env, state_paths_named(env, uuid) > 0, "the instance has data under the state dir");
    act_ok(env, uuid, "stop", "stopped");
    uninstall(env, uuid);
    uint64_t deadline = it_now_ms() + IT_DEADLINE_MS;
    int left;
    while ((left = state_paths_named(env, uuid)) > 0 && it_now_ms() < deadline)
        usleep(20 * 1000); /* polling interval */
    IT_CHECK(env, left == 0,
             "nothing of the uninstalled instance is left under the state dir (%d paths: %s)",
             left, g_first);
    act_ok(env, cnt, "stop", "stopped");
    uninstall(env, cnt);
    char cnt2[64];
    install_running(env, "counter", NULL, cnt2);
    st = invoke(env, cnt2, "/", "", &out);
    IT_CHECK(env, st == 200 && strcmp(out, "{\"count\":1}") == 0,
             "a new counter starts at 1 (got %d %s)", st, out);
    free(out);
}

/* ---- b) HTTP: a test server ---------------------------------------------- */

typedef struct {
    int fd;
    int port;
    pthread_t accept_thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    pthread_t conns[64];
    size_t n_conns;
    atomic_int hits;
} server_t;

typedef struct {
    server_t *s;
    int fd;
} conn_t;

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, int status, const char *extra, const char *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, len, extra ? extra : "");
    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

static void *conn_main(void *arg)
{
    conn_t *c = arg;
    server_t *s = c->s;
    char buf[4096];
    size_t used = 0;
    while (used < sizeof buf - 1) {
        ssize_t n = recv(c->fd, buf + used, sizeof buf - 1 - used, 0);
        if (n <= 0)
            break;
        used += (size_t)n;
        buf[used] = 0;
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    buf[used] = 0;
    char path[256] = "";
    sscanf(buf, "%*s %255s", path);
    atomic_fetch_add(&s->hits, 1);
    if (strcmp(path, "/hello") == 0) {
        reply(c->fd, 200, NULL, "hello from the test server", 26);
    } else if (strcmp(path, "/redirect-in") == 0) {
        reply(c->fd, 302, "Location: /hello\r\n", "", 0);
    } else if (strcmp(path, "/redirect-out") == 0) {
        char loc[128];
        snprintf(loc, sizeof loc, "Location: http://127.0.0.2:%d/hello\r\n", s->port);
        reply(c->fd, 302, loc, "", 0);
    } else if (strcmp(path, "/big") == 0) {
        size_t n = HTTP_MAX_BYTES * 2;
        char *big = malloc(n);
        assert_non_null(big);
        memset(big, 'b', n);
        reply(c->fd, 200, NULL, big, n);
        free(big);
    } else if (strcmp(path, "/slow") == 0) {
        /* Answer only after the client gave up (or the test ends). */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 20;
        pthread_mutex_lock(&s->lock);
        while (!s->stop && pthread_cond_timedwait(&s->cond, &s->lock, &until) == 0)
            ;
        pthread_mutex_unlock(&s->lock);
        reply(c->fd, 200, NULL, "too late", 8);
    } else {
        reply(c->fd, 404, NULL, "no", 2);
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void *accept_main(void *arg)
{
    server_t *s = arg;
    for (;;) {
        int fd = accept(s->fd, NULL, NULL);
        pthread_mutex_lock(&s->lock);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (fd < 0 || stop) {
            if (fd >= 0)
                close(fd);
            if (stop)
                return NULL;
            continue;
        }
        conn_t *c = malloc(sizeof *c);
        assert_non_null(c);
        c->s = s;
        c->fd = fd;
        pthread_mutex_lock(&s->lock);
        if (s->n_conns < 64 && pthread_create(&s->conns[s->n_conns], NULL, conn_main, c) == 0) {
            s->n_conns++;
            c = NULL;
        }
        pthread_mutex_unlock(&s->lock);
        if (c) {
            close(c->fd);
            free(c);
        }
    }
}

static void server_start(server_t *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    for (int tries = 0; tries < 20; tries++) {
        s->port = plat_test_free_port();
        assert_true(s->port > 0);
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s->fd >= 0);
        int one = 1;
        setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(s->fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(s->fd, 32) == 0)
            break;
        close(s->fd);
        s->fd = -1;
    }
    assert_true(s->fd >= 0);
    assert_int_equal(pthread_create(&s->accept_thread, NULL, accept_main, s), 0);
}

static void server_stop(server_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    /* Wake accept() with one connection of our own. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0) {
        (void)!connect(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
    }
    pthread_join(s->accept_thread, NULL);
    for (size_t i = 0; i < s->n_conns; i++)
        pthread_join(s->conns[i], NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
}

/* fetcher GET `url`: the status, the body into *out. */
static int fetch(it_env_t *env, const char *uuid, const char *url, char **out)
{
    return invoke(env, uuid, "/", url, out);
}

/* A fetch that must fail with `name` (the errno name in fetcher's JSON). */
static void fetch_fails(it_env_t *env, const char *uuid, const char *url, int status,
                        const char *name, int code)
{
    char *out = NULL;
    int st = fetch(env, uuid, url, &out);
    json_t *j = json_loads(out, 0, NULL);
    IT_CHECK(env, st == status, "fetch %s: %d (got %d: %s)", url, status, st, out);
    IT_CHECK(env,
             j && strcmp(it_json_str(j, "error"), name) == 0 && it_json_int(j, "code", 0) == code,
             "fetch %s: %s (%d) (got %s)", url, name, code, out);
    IT_CHECK(env, it_json_str(j, "message")[0], "fetch %s: a message (got %s)", url, out);
    json_decref(j);
    free(out);
}

static void test_http(void **state)
{
    it_env_t *env = *state;
    server_t srv;
    server_start(&srv);
    start_daemons(env);
    register_example(env, "fetcher");
    char uuid[64];
    install_running(env, "fetcher", NULL, uuid);
    char url[256], *out = NULL;

    snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", srv.port);
    int st = fetch(env, uuid, url, &out);
    IT_CHECK(env, st == 200 && strcmp(out, "hello from the test server") == 0,
             "allowed URL fetched (got %d: %s)", st, out);
    free(out);
    snprintf(url, sizeof url, "http://localhost:%d/redirect-in", srv.port);
    st = fetch(env, uuid, url, &out);
    IT_CHECK(env, st == 200 && strcmp(out, "hello from the test server") == 0,
             "an allowed redirect is followed (got %d: %s)", st, out);
    free(out);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/nothing", srv.port);
    st = fetch(env, uuid, url, &out);
    IT_CHECK(env, st == 404, "the upstream status comes back (got %d: %s)", st, out);
    free(out);

    int hits = atomic_load(&srv.hits);
    snprintf(url, sizeof url, "http://127.0.0.2:%d/hello", srv.port);
    fetch_fails(env, uuid, url, 403, "EACCES", -EACCES);
    fetch_fails(env, uuid, "http://example.com/", 403, "EACCES", -EACCES);
    IT_CHECK(env, atomic_load(&srv.hits) == hits, "a denied target is never contacted");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/redirect-out", srv.port);
    fetch_fails(env, uuid, url, 403, "EACCES", -EACCES);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", srv.port);
    uint64_t t0 = it_now_ms();
    fetch_fails(env, uuid, url, 504, "ETIMEDOUT", -ETIMEDOUT);
    IT_CHECK(env, it_now_ms() - t0 < 15000, "the slow server was given up");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/big", srv.port);
    fetch_fails(env, uuid, url, 502, "EFBIG", -EFBIG);
    int closed = plat_test_free_port(); /* nobody listens there */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", closed);
    fetch_fails(env, uuid, url, 502, "ECONNREFUSED", -ECONNREFUSED);
    fetch_fails(env, uuid, "not a url", 502, "EINVAL", -EINVAL);
    server_stop(&srv);
}

/* ---- c) File ---------------------------------------------------------------- */

static void test_files(void **state)
{
    it_env_t *env = *state;
    start_daemons(env);
    register_test_plugin(env, "resprobe");
    char uuid[64];
    install_running(env, "resprobe", NULL, uuid);

    IT_CHECK(env, file_rc(env, uuid, "write", "notes/a.txt", "alpha") == 0, "write a.txt");
    IT_CHECK(env, file_rc(env, uuid, "write", "b.txt", "") == 0, "write an empty b.txt");
    json_t *r = file_op(env, uuid, "read", "notes/a.txt", NULL);
    IT_CHECK(env, it_json_int(r, "rc", 1) == 0 && strcmp(it_json_str(r, "data"), "alpha") == 0,
             "read back");
    json_decref(r);
    IT_CHECK(env, file_rc(env, uuid, "write", "notes/a.txt", "beta!") == 0, "replace a.txt");
    r = file_op(env, uuid, "read", "notes/a.txt", NULL);
    IT_CHECK(env, strcmp(it_json_str(r, "data"), "beta!") == 0, "read the new content");
    json_decref(r);
    r = file_op(env, uuid, "list", "", NULL);
    char *d = dump(r);
    json_t *e = json_object_get(r, "entries");
    IT_CHECK(env, it_json_int(r, "rc", 1) == 0 && json_array_size(e) == 2, "root lists 2 (got %s)",
             d);
    json_t *b = it_json_find(e, "name", "b.txt"), *notes = it_json_find(e, "name", "notes");
    IT_CHECK(env, b && json_is_false(json_object_get(b, "dir")) && it_json_int(b, "size", -1) == 0,
             "b.txt, a file of 0 bytes (got %s)", d);
    IT_CHECK(env, notes && json_is_true(json_object_get(notes, "dir")), "notes/, a dir (got %s)",
             d);
    free(d);
    json_decref(r);
    r = file_op(env, uuid, "list", "notes", NULL);
    e = json_object_get(r, "entries");
    IT_CHECK(env, json_array_size(e) == 1 && it_json_int(json_array_get(e, 0), "size", 0) == 5,
             "notes lists a.txt of 5 bytes");
    json_decref(r);
    IT_CHECK(env, file_rc(env, uuid, "delete", "notes/a.txt", NULL) == 0, "delete a.txt");
    IT_CHECK(env, file_rc(env, uuid, "read", "notes/a.txt", NULL) == -ENOENT,
             "a deleted file is -ENOENT");
    IT_CHECK(env, file_rc(env, uuid, "delete", "notes", NULL) == 0, "delete the empty dir");
    IT_CHECK(env, file_rc(env, uuid, "delete", "nope", NULL) == -ENOENT, "delete missing: ENOENT");

    /* Over the per-file cap. */
    json_t *args = json_pack("{s:s, s:s, s:i}", "op", "write", "path", "big", "size",
                             FILE_MAX_BYTES + 1);
    r = invoke_json(env, uuid, "/file", args);
    json_decref(args);
    IT_CHECK(env, it_json_int(r, "rc", 0) == -EFBIG, "a file over file_max_bytes: EFBIG");
    json_decref(r);

    /* Paths leading out are refused, whatever the op. */
    static const char *const escaping[] = {
        "../x", "../../etc/passwd", "/etc/passwd", "a/../../x", "..", "notes/../../x", "/",
    };
    for (size_t i = 0; i < sizeof escaping / sizeof escaping[0]; i++) {
        static const char *const ops[] = {"read", "write", "list", "delete"};
        for (size_t o = 0; o < 4; o++) {
            int rc = file_rc(env, uuid, ops[o], escaping[i], "x");
            IT_CHECK(env, rc == -EACCES || rc == -EINVAL, "%s '%s' refused (got %d)", ops[o],
                     escaping[i], rc);
        }
    }
    /* Nothing was written outside: the root still lists b.txt only. */
    r = file_op(env, uuid, "list", "", NULL);
    d = dump(r);
    IT_CHECK(env, json_array_size(json_object_get(r, "entries")) == 1, "only b.txt (got %s)", d);
    free(d);
    json_decref(r);
}

/* ---- d) a scheduled task ------------------------------------------------------ */

static int64_t ticker_runs(it_env_t *env, const char *uuid, int64_t *last)
{
    json_t *r = invoke_json(env, uuid, "/", NULL);
    int64_t n = it_json_int(r, "runs", -1);
    if (last)
        *last = it_json_int(r, "last_scheduled_ms", 0);
    json_decref(r);
    return n;
}

static void test_task(void **state)
{
    it_env_t *env = *state;
    start_daemons(env);
    register_example(env, "ticker");
    char uuid[64];
    json_t *cfg = json_pack("{s:s}", "cron", "* * * * * *"); /* every second */
    install_running(env, "ticker", cfg, uuid);
    json_decref(cfg);
    uint64_t deadline = it_now_ms() + 20000;
    int64_t runs = 0, last = 0;
    while ((runs = ticker_runs(env, uuid, &last)) < 3 && it_now_ms() < deadline)
        usleep(100 * 1000); /* polling interval, not a wait for an event */
    IT_CHECK(env, runs >= 3, "the every-second task ran 3 times within 20 s (ran %lld)",
             (long long)runs);
    bool whole_second = last % 1000 == 0 && last > 1700000000000LL;
    IT_CHECK(env, whole_second,
             "runs are due on whole seconds (last %lld)", (long long)last);
    /* The registration outlives a stop/start (start registers it again,
     * replacing it) and the runs go on. */
    act_ok(env, uuid, "stop", "stopped");
    act_ok(env, uuid, "start", "running");
    int64_t before = ticker_runs(env, uuid, NULL);
    deadline = it_now_ms() + 20000;
    while (ticker_runs(env, uuid, NULL) <= before && it_now_ms() < deadline)
        usleep(100 * 1000);
    IT_CHECK(env, ticker_runs(env, uuid, NULL) > before, "the task fires again after a restart");
}

/* ---- e) a web service ---------------------------------------------------------- */

static void wait_svc_status(it_env_t *env, const char *path, int want, const char *what)
{
    uint64_t deadline = it_now_ms() + ACTION_DEADLINE_MS;
    int st = 0;
    char *out = NULL;
    for (;;) {
        free(out);
        out = NULL;
        st = it_http_raw(env, "GET", path, NULL, 0, NULL, &out, NULL);
        if (st == want || it_now_ms() > deadline)
            break;
        usleep(50 * 1000);
    }
    IT_CHECK(env, st == want, "%s: GET %s answers %d (last %d: %s)", what, path, want, st, out);
    free(out);
}

static void test_websvc(void **state)
{
    it_env_t *env = *state;
    start_daemons(env);
    register_example(env, "websvc");
    char uuid[64];
    int port = plat_test_free_port();
    IT_CHECK(env, port > 0, "a free port");
    json_t *cfg = json_pack("{s:i}", "port", port);
    install_running(env, "websvc", cfg, uuid);
    json_decref(cfg);

    char path[256], *out = NULL;
    snprintf(path, sizeof path, "/plugins/%s/svc/some/page?x=1", uuid);
    wait_svc_status(env, path, 200, "the service is proxied");
    int st = it_http_raw(env, "GET", path, NULL, 0, NULL, &out, NULL);
    IT_CHECK(env, st == 200 && strstr(out, "websvc") && strstr(out, uuid) &&
                      strstr(out, "/some/page"),
             "the page comes from the plugin (got %d: %s)", st, out);
    free(out);

    /* Kill the service: unhealthy, 503. */
    st = invoke(env, uuid, "/down", "", &out);
    IT_CHECK(env, st == 200 && strstr(out, "\"up\":false"), "service down (got %d: %s)", st, out);
    free(out);
    wait_svc_status(env, path, 503, "a dead service");
    /* Back: healthy, 200. */
    st = invoke(env, uuid, "/up", "", &out);
    IT_CHECK(env, st == 200 && strstr(out, "\"up\":true"), "service up (got %d: %s)", st, out);
    free(out);
    wait_svc_status(env, path, 200, "a recovered service");
}

/* ---- f) plugin ABI 1 ----------------------------------------------------------- */

static void test_abi1_plugin(void **state)
{
    it_env_t *env = *state;
    start_daemons(env);
    register_test_plugin(env, "abi1");
    char uuid[64], *out = NULL;
    install_running(env, "abi1", NULL, uuid);
    int st = invoke(env, uuid, "/", "", &out);
    IT_CHECK(env, st == 200 && strcmp(out, "abi 1 plugin") == 0,
             "a plugin built for ABI 1 runs (got %d: %s)", st, out);
    free(out);
    act_ok(env, uuid, "stop", "stopped");
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_db, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_http, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_files, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_task, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_websvc, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_abi1_plugin, it_setup, it_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
