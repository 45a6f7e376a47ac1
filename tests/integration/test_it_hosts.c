/* Plugin hosts end to end: platformd asks hostbootd to spawn and kill real
 * host processes (the pluginhost runtime, or the misbehaving fakehost
 * runtimes of fakehost.c), and the platform's view follows:
 *  - 50 hosts started, all ready with their real pids, deleted, all exited
 *    0; no zombie left under hostbootd, none of the pids alive;
 *  - kill -9 of a ready host → "exited" with signal 9 within 1 s;
 *  - unknown language → 409 no_runtime at once; a runtime whose binary is
 *    missing → "failed" naming the path after exactly one spawn attempt;
 *  - a host over its address-space rlimit dies before ready and is
 *    reported;
 *  - a host writing 50 MiB to stdout leaves a capped, rotated log while
 *    hostbootd stays responsive;
 *  - hostbootd SIGTERM with 3 ready hosts: it stops and reaps them first,
 *    exits 0, the platform shows them exited. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "plat/plat.h"

/* Generous: hostbootd forks 50 hosts back to back, and a fork of a
 * sanitizer-instrumented process on a loaded 2-core CI machine can keep it
 * from answering pings for over a second. Liveness is not under test here. */
#define HB_INTERVAL_MS 500
#define HB_MISS 6
#define MANY_HOSTS 50
/* Generous for 50 sanitizer-instrumented hosts starting at once on 2 CPUs. */
#define MANY_DEADLINE_MS 120000
#define KILL_REPORTED_WITHIN_MS 1000
#define MIB (1024 * 1024)
#define FLOOD_BYTES (50L * MIB) /* what it_host_flood writes */
#define FLOOD_DEADLINE_MS 60000

static int setup(void **state)
{
    *state = it_new();
    return 0;
}

static int teardown(void **state)
{
    it_env_t *env = *state;
    it_destroy(&env);
    return 0;
}

/* ---- helpers ---------------------------------------------------------- */

typedef struct {
    it_proc_t *platformd;
    it_proc_t *hostbootd;
} daemons_t;

/* platformd (ended hosts kept long enough for any check, ready timeout
 * `ready_timeout_ms`) + hostbootd "itest" with `hb_extra` (stolen, may be
 * NULL); waits until the hostboot is listed ready. */
static void start_daemons(it_env_t *env, daemons_t *d, int ready_timeout_ms, json_t *hb_extra)
{
    json_t *pd_extra = json_pack("{s:{s:i, s:i}}", "hosts", "ready_timeout_ms", ready_timeout_ms,
                                 "exited_keep_ms", 3600000);
    assert_non_null(pd_extra);
    const char *pd_cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, pd_extra);
    json_decref(pd_extra);
    const char *hb_cfg = it_hostbootd_config(env, IT_HOSTBOOT_NAME, hb_extra);
    json_decref(hb_extra);
    d->platformd = it_start_platformd(env, pd_cfg);
    d->hostbootd = it_start_hostbootd(env, hb_cfg);
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_match_t hb = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &hb, IT_DEADLINE_MS,
                 IT_HOSTBOOT_ID " listed ready");
}

/* POST /api/v1/hosts; returns the status, the new id into id[64] on 202
 * (checked: state "starting", the fields echoed). *resp (may be NULL) gets
 * the body. */
static int post_host(it_env_t *env, const char *language, const char *version, const char *mode,
                     char id[64], json_t **resp)
{
    json_t *req = json_pack("{s:s, s:s, s:s}", "language", language, "version", version, "mode",
                            mode);
    assert_non_null(req);
    json_t *body = NULL;
    int st = it_http_post(env, "/api/v1/hosts", req, &body);
    json_decref(req);
    if (id)
        id[0] = 0;
    if (st == 202) {
        json_t *host = json_object_get(body, "host");
        json_t *hid = json_object_get(host, "id");
        json_t *hst = json_object_get(host, "state");
        IT_CHECK(env, json_is_string(hid) && plat_id_kind(json_string_value(hid)) == PLAT_ID_HOST,
                 "202 names a host id");
        IT_CHECK(env, json_is_string(hst) && strcmp(json_string_value(hst), "starting") == 0,
                 "a new host is \"starting\"");
        IT_CHECK(env,
                 strcmp(json_string_value(json_object_get(host, "language")), language) == 0 &&
                     strcmp(json_string_value(json_object_get(host, "version")), version) == 0 &&
                     strcmp(json_string_value(json_object_get(host, "mode")), mode) == 0,
                 "language/version/mode echoed");
        if (id)
            snprintf(id, 64, "%s", json_string_value(hid));
    }
    if (resp)
        *resp = body;
    else
        json_decref(body);
    return st;
}

/* POST that must be accepted; the new host's id into id[64]. */
static void start_host(it_env_t *env, const char *language, const char *version,
                       const char *mode, char id[64])
{
    json_t *body = NULL;
    int st = post_host(env, language, version, mode, id, &body);
    if (st != 202) {
        char *dump = body ? json_dumps(body, JSON_COMPACT) : NULL;
        fprintf(stderr, "POST /api/v1/hosts %s/%s: %d %s\n", language, version, st,
                dump ? dump : "(no JSON)");
        free(dump);
    }
    json_decref(body);
    IT_CHECK(env, st == 202, "POST /api/v1/hosts %s/%s accepted (got %d)", language, version, st);
}

static void delete_host(it_env_t *env, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/hosts/%s", id);
    json_t *body = NULL;
    int st = it_http_delete(env, path, &body);
    json_t *hst = it_json_path(body, "host.state");
    bool stopping = json_is_string(hst) && strcmp(json_string_value(hst), "stopping") == 0;
    json_decref(body);
    IT_CHECK(env, st == 202, "DELETE %s accepted (got %d)", id, st);
    IT_CHECK(env, stopping, "DELETE %s answers state \"stopping\"", id);
}

/* Integer member of a JSON object, or `def` when absent. */
static int64_t jint(json_t *obj, const char *dotted, int64_t def)
{
    json_t *v = it_json_path(obj, dotted);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

static const char *jstr(json_t *obj, const char *dotted)
{
    json_t *v = it_json_path(obj, dotted);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* /proc/<pid>/stat: the state letter (and *ppid), or 0 when no such
 * process exists. */
static char proc_state(pid_t pid, pid_t *ppid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return 0;
    buf[len] = 0;
    char *rp = strrchr(buf, ')');
    char state = 0;
    int pp = 0;
    if (!rp || sscanf(rp + 1, " %c %d", &state, &pp) != 2)
        return 0;
    if (ppid)
        *ppid = (pid_t)pp;
    return state;
}

/* Zombies whose parent is `parent`. */
static int count_zombies_of(pid_t parent)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        pid_t ppid = 0;
        if (proc_state((pid_t)atoi(e->d_name), &ppid) == 'Z' && ppid == parent) {
            fprintf(stderr, "zombie pid=%s parent=%d\n", e->d_name, (int)parent);
            n++;
        }
    }
    closedir(d);
    return n;
}

/* Lines of the process log holding every one of the (NULL-ended) needles. */
static int count_log_lines(const it_proc_t *p, ...)
{
    const char *needles[8];
    size_t n = 0;
    va_list ap;
    va_start(ap, p);
    for (const char *s = va_arg(ap, const char *); s && n < 8; s = va_arg(ap, const char *))
        needles[n++] = s;
    va_end(ap);
    char *text = it_read_log(p);
    int count = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        bool all = true;
        for (size_t i = 0; i < n && all; i++)
            all = strstr(line, needles[i]) != NULL;
        count += all;
    }
    free(text);
    return count;
}

/* <dir>/hostboot-logs/hosts/<id>.log[.<n>] (n 0: the current file). */
static void host_log_path(it_env_t *env, const char *id, int n, char *out, size_t size)
{
    if (n == 0)
        snprintf(out, size, "%s/%s/hosts/%s.log", it_dir(env), IT_HOSTBOOT_LOG_DIR, id);
    else
        snprintf(out, size, "%s/%s/hosts/%s.log.%d", it_dir(env), IT_HOSTBOOT_LOG_DIR, id, n);
}

/* File size, -1 when missing. */
static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Whole file (malloc'd, NUL-terminated), NULL when missing. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)(len > 0 ? len : 0) + 1);
    assert_non_null(buf);
    size_t got = fread(buf, 1, (size_t)(len > 0 ? len : 0), f);
    buf[got] = 0;
    fclose(f);
    return buf;
}

/* The last `tail` bytes of a file contain `needle`. */
static bool file_tail_has(const char *path, const char *needle, size_t tail)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    char *buf = malloc(tail + 1);
    assert_non_null(buf);
    bool found = false;
    if (fstat(fd, &st) == 0) {
        off_t off = st.st_size > (off_t)tail ? st.st_size - (off_t)tail : 0;
        ssize_t n = pread(fd, buf, tail, off);
        if (n > 0) {
            buf[n] = 0;
            /* the flood's bytes hold no NUL: strstr sees all of them */
            found = strstr(buf, needle) != NULL;
        }
    }
    free(buf);
    close(fd);
    return found;
}

/* Every id of `ids` is listed in /api/v1/hosts with state `state`. */
typedef struct {
    char (*ids)[64];
    size_t n;
    const char *state;
} all_state_t;

static bool pred_all_in_state(json_t *body, void *arg)
{
    const all_state_t *a = arg;
    json_t *hosts = json_object_get(body, "hosts");
    for (size_t i = 0; i < a->n; i++) {
        json_t *el = it_json_find(hosts, "id", a->ids[i]);
        json_t *st = el ? json_object_get(el, "state") : NULL;
        if (!json_is_string(st) || strcmp(json_string_value(st), a->state) != 0)
            return false;
    }
    return true;
}

/* The hostboot's "hosts" array, as listed by /api/v1/hostboots (owned). */
static json_t *hostboot_hosts(it_env_t *env)
{
    json_t *body = it_get_json(env, "/api/v1/hostboots");
    json_t *hb = it_json_find(json_object_get(body, "hostboots"), "id", IT_HOSTBOOT_ID);
    json_t *hosts = hb ? json_object_get(hb, "hosts") : NULL;
    IT_CHECK(env, json_is_array(hosts), IT_HOSTBOOT_ID " lists its hosts");
    json_incref(hosts);
    json_decref(body);
    return hosts;
}

static bool array_has_string(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

static const char *hostboot_state(it_env_t *env, char *buf, size_t size)
{
    json_t *body = it_get_json(env, "/api/v1/hostboots");
    json_t *hb = it_json_find(json_object_get(body, "hostboots"), "id", IT_HOSTBOOT_ID);
    snprintf(buf, size, "%s", hb ? jstr(hb, "state") : "(absent)");
    json_decref(body);
    return buf;
}

/* A ready host's checks: real pid, a child of hostbootd, fields as asked.
 * Returns the pid. */
static pid_t check_ready_host(it_env_t *env, const daemons_t *d, json_t *host, const char *mode)
{
    const char *id = jstr(host, "id");
    pid_t pid = (pid_t)jint(host, "pid", 0);
    IT_CHECK(env, pid > 0, "host %s has a pid", id);
    pid_t ppid = 0;
    char st = proc_state(pid, &ppid);
    IT_CHECK(env, st != 0 && st != 'Z', "host %s pid=%d is running (state %c)", id, (int)pid,
             st ? st : '-');
    IT_CHECK(env, ppid == d->hostbootd->pid, "host %s pid=%d is hostbootd's child (ppid %d)", id,
             (int)pid, (int)ppid);
    IT_CHECK(env, strcmp(jstr(host, "hostboot"), IT_HOSTBOOT_ID) == 0, "host %s owned by %s",
             id, jstr(host, "hostboot"));
    IT_CHECK(env, strcmp(jstr(host, "language"), "c") == 0 &&
                      strcmp(jstr(host, "version"), "1") == 0 &&
                      strcmp(jstr(host, "mode"), mode) == 0,
             "host %s: c/1 %s", id, mode);
    IT_CHECK(env, json_is_false(json_object_get(host, "dev")), "host %s is not a dev host", id);
    IT_CHECK(env, json_is_array(json_object_get(host, "instances")), "host %s lists instances",
             id);
    IT_CHECK(env, json_is_integer(json_object_get(host, "last_heartbeat_age_ms")),
             "ready host %s is on the bus", id);
    return pid;
}

/* ---- a) 50 hosts up and down --------------------------------------------- */

static void test_fifty_hosts_start_and_delete(void **state)
{
    it_env_t *env = *state;
    daemons_t d;
    start_daemons(env, &d, MANY_DEADLINE_MS, NULL);

    static char ids[MANY_HOSTS][64];
    pid_t pids[MANY_HOSTS];
    uint64_t t0 = it_now_ms();
    for (int i = 0; i < MANY_HOSTS; i++)
        start_host(env, "c", "1", "highPerformance", ids[i]);
    for (int i = 0; i < MANY_HOSTS; i++)
        for (int j = 0; j < i; j++)
            IT_CHECK(env, strcmp(ids[i], ids[j]) != 0, "host ids are distinct");

    all_state_t ready = {ids, MANY_HOSTS, "ready"};
    it_wait_json(env, "/api/v1/hosts", pred_all_in_state, &ready, MANY_DEADLINE_MS,
                 "all 50 hosts ready");
    print_message("50 hosts ready %llu ms after the first POST\n",
                  (unsigned long long)(it_now_ms() - t0));

    for (int i = 0; i < MANY_HOSTS; i++) {
        char path[128];
        snprintf(path, sizeof path, "/api/v1/hosts/%.63s", ids[i]);
        json_t *body = it_get_json(env, path);
        json_t *host = json_object_get(body, "host");
        IT_CHECK(env, strcmp(jstr(host, "state"), "ready") == 0, "host %s ready", ids[i]);
        pids[i] = check_ready_host(env, &d, host, "highPerformance");
        json_decref(body);
        for (int j = 0; j < i; j++)
            IT_CHECK(env, pids[i] != pids[j], "pids are distinct");
    }
    json_t *owned = hostboot_hosts(env);
    IT_CHECK(env, json_array_size(owned) == MANY_HOSTS, "hostboot owns 50 hosts (lists %zu)",
             json_array_size(owned));
    for (int i = 0; i < MANY_HOSTS; i++)
        IT_CHECK(env, array_has_string(owned, ids[i]), "hostboot lists %s", ids[i]);
    json_decref(owned);
    IT_CHECK(env, it_status_int(env, "counts.hosts") == MANY_HOSTS, "status counts 50 hosts");

    uint64_t t1 = it_now_ms();
    for (int i = 0; i < MANY_HOSTS; i++)
        delete_host(env, ids[i]);
    all_state_t exited = {ids, MANY_HOSTS, "exited"};
    it_wait_json(env, "/api/v1/hosts", pred_all_in_state, &exited, MANY_DEADLINE_MS,
                 "all 50 hosts exited");
    print_message("50 hosts exited %llu ms after the first DELETE\n",
                  (unsigned long long)(it_now_ms() - t1));

    for (int i = 0; i < MANY_HOSTS; i++) {
        char path[128];
        snprintf(path, sizeof path, "/api/v1/hosts/%.63s", ids[i]);
        json_t *body = it_get_json(env, path);
        json_t *host = json_object_get(body, "host");
        IT_CHECK(env, strcmp(jstr(host, "state"), "exited") == 0, "host %s exited", ids[i]);
        IT_CHECK(env, jint(host, "exit.signal", -1) == 0 && jint(host, "exit.status", -1) == 0,
                 "host %s exited 0 on SIGTERM (status %lld signal %lld)", ids[i],
                 (long long)jint(host, "exit.status", -1),
                 (long long)jint(host, "exit.signal", -1));
        IT_CHECK(env, jint(host, "pid", 0) == pids[i], "host %s keeps its pid", ids[i]);
        IT_CHECK(env, json_is_integer(json_object_get(host, "ended_age_ms")),
                 "ended host %s has ended_age_ms", ids[i]);
        json_decref(body);
    }

    IT_CHECK(env, count_zombies_of(d.hostbootd->pid) == 0, "no zombie under hostbootd");
    for (int i = 0; i < MANY_HOSTS; i++) {
        pid_t ppid = 0;
        char st = proc_state(pids[i], &ppid);
        /* Gone — or, should the pid have been reused already, not ours. */
        IT_CHECK(env, st == 0 || ppid != d.hostbootd->pid, "host pid=%d still exists (state %c)",
                 (int)pids[i], st);
    }
    json_t *none = hostboot_hosts(env);
    IT_CHECK(env, json_array_size(none) == 0, "hostboot owns no host any more (lists %zu)",
             json_array_size(none));
    json_decref(none);
    IT_CHECK(env, it_status_int(env, "counts.hosts") == 0, "status counts no live host");
    IT_CHECK(env, it_status_int(env, "counts.hosts_ended") == MANY_HOSTS,
             "status counts 50 ended hosts");
    IT_CHECK(env, count_log_lines(d.hostbootd, "host exited (deleted)", NULL) == MANY_HOSTS,
             "hostbootd logged 50 deleted exits");
}

/* ---- b) kill -9 ---------------------------------------------------------- */

static void test_kill9_reported_within_1s(void **state)
{
    it_env_t *env = *state;
    daemons_t d;
    start_daemons(env, &d, IT_DEADLINE_MS, NULL);
    char id[64];
    start_host(env, "c", "1", "highPerformance", id);
    json_t *host = it_wait_host_state(env, id, "ready", IT_DEADLINE_MS, NULL);
    pid_t pid = check_ready_host(env, &d, host, "highPerformance");
    json_decref(host);

    /* Poll every 20 ms (it_wait_host_state); the elapsed time includes the
     * last GET, so the bound is tight. */
    uint64_t t0 = it_now_ms();
    IT_CHECK(env, kill(pid, SIGKILL) == 0, "kill -9 %d: %s", (int)pid, strerror(errno));
    host = it_wait_host_state(env, id, "exited", IT_DEADLINE_MS, NULL);
    uint64_t elapsed = it_now_ms() - t0;
    print_message("kill -9 of pid %d seen by the platform after %llu ms\n", (int)pid,
                  (unsigned long long)elapsed);
    IT_CHECK(env, elapsed <= KILL_REPORTED_WITHIN_MS, "exit known within %d ms, took %llu ms",
             KILL_REPORTED_WITHIN_MS, (unsigned long long)elapsed);
    IT_CHECK(env, jint(host, "exit.signal", -1) == SIGKILL, "exit.signal 9 (got %lld)",
             (long long)jint(host, "exit.signal", -1));
    IT_CHECK(env, jint(host, "exit.status", -1) == 0, "exit.status 0 with a signal");
    IT_CHECK(env, jint(host, "pid", 0) == pid, "same pid");
    json_decref(host);

    IT_CHECK(env, proc_state(pid, NULL) == 0, "the killed host is reaped");
    IT_CHECK(env, count_zombies_of(d.hostbootd->pid) == 0, "no zombie under hostbootd");
    char pidbuf[32];
    snprintf(pidbuf, sizeof pidbuf, "pid=%d", (int)pid);
    IT_CHECK(env,
             count_log_lines(d.hostbootd, "host exited unexpectedly", id, pidbuf, "signal=9",
                             NULL) == 1,
             "hostbootd logged the unexpected exit once");
    IT_CHECK(env, count_log_lines(d.platformd, "host exited unexpectedly", id, "signal=9", NULL) ==
                      1,
             "platformd logged the unexpected exit once");
    json_t *owned = hostboot_hosts(env);
    IT_CHECK(env, !array_has_string(owned, id), "hostboot no longer lists the dead host");
    json_decref(owned);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/hosts/%s", id);
    json_t *body = NULL;
    IT_CHECK(env, it_http_delete(env, path, &body) == 409, "DELETE of an exited host is 409");
    IT_CHECK(env, strcmp(jstr(body, "error.code"), "ended") == 0, "error code \"ended\"");
    json_decref(body);
}

/* ---- c) no runtime / missing binary --------------------------------------- */

static void test_no_runtime_and_missing_binary(void **state)
{
    it_env_t *env = *state;
    char missing[IT_PATH_MAX];
    snprintf(missing, sizeof missing, "%s/no-such-runtime", it_dir(env));
    json_t *hb_extra = json_pack("{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}]}", "runtimes", "language",
                                 "c", "version", "1", "path", PLUGINHOST_BIN, "language", "c",
                                 "version", "missing", "path", missing);
    assert_non_null(hb_extra);
    daemons_t d;
    start_daemons(env, &d, IT_DEADLINE_MS, hb_extra);

    /* Unknown language: refused by the platform at once, nothing asked of
     * the hostboot, nothing recorded. */
    uint64_t t0 = it_now_ms();
    json_t *body = NULL;
    int st = post_host(env, "cobol", "1", "highPerformance", NULL, &body);
    uint64_t took = it_now_ms() - t0;
    IT_CHECK(env, st == 409, "unknown language: 409 (got %d)", st);
    IT_CHECK(env, strcmp(jstr(body, "error.code"), "no_runtime") == 0,
             "error code no_runtime (got \"%s\")", jstr(body, "error.code"));
    IT_CHECK(env, strstr(jstr(body, "error.message"), "cobol") != NULL,
             "the message names the language: %s", jstr(body, "error.message"));
    IT_CHECK(env, took < 1000, "answered at once (%llu ms)", (unsigned long long)took);
    json_decref(body);
    /* A known language in an unknown version is the same. */
    st = post_host(env, "c", "42", "highPerformance", NULL, &body);
    IT_CHECK(env, st == 409 && strcmp(jstr(body, "error.code"), "no_runtime") == 0,
             "c/42: 409 no_runtime (got %d)", st);
    json_decref(body);
    body = it_get_json(env, "/api/v1/hosts");
    IT_CHECK(env, json_array_size(json_object_get(body, "hosts")) == 0,
             "no host recorded for a refused start");
    json_decref(body);
    IT_CHECK(env, count_log_lines(d.hostbootd, "host not started", NULL) == 0,
             "the hostboot was never asked");

    /* Bad input is 400, not a start. */
    json_t *req = json_pack("{s:s}", "language", "c");
    IT_CHECK(env, it_http_post(env, "/api/v1/hosts", req, NULL) == 400, "no version: 400");
    json_decref(req);
    req = json_pack("{s:s, s:s, s:s}", "language", "c", "version", "1", "mode", "dev");
    IT_CHECK(env, it_http_post(env, "/api/v1/hosts", req, NULL) == 400, "mode dev: 400");
    json_decref(req);

    /* Offered runtime, missing binary: one attempt, then "failed" naming
     * the path — no retry storm. */
    char id[64];
    start_host(env, "c", "missing", "highPerformance", id);
    json_t *host = it_wait_host_state(env, id, "failed", IT_DEADLINE_MS, NULL);
    const char *msg = jstr(host, "error.message");
    print_message("missing binary: %s\n", msg);
    IT_CHECK(env, strstr(msg, missing) != NULL, "error names the path %s: %s", missing, msg);
    IT_CHECK(env, jint(host, "error.code", 0) < 0, "error has a code");
    IT_CHECK(env, jint(host, "pid", -1) == 0, "no pid: nothing ran");
    IT_CHECK(env, json_object_get(host, "exit") == NULL, "no exit: nothing ran");
    json_decref(host);
    IT_CHECK(env, count_log_lines(d.hostbootd, "host not started", id, NULL) == 1,
             "exactly one spawn attempt in the hostbootd log (got %d)",
             count_log_lines(d.hostbootd, "host not started", id, NULL));
    IT_CHECK(env, count_log_lines(d.hostbootd, "host spawned", NULL) == 0, "nothing spawned");
    IT_CHECK(env, count_log_lines(d.platformd, "host start failed after 1 tries", id, NULL) == 1,
             "platformd gave up after one try");
    IT_CHECK(env, count_log_lines(d.platformd, "retrying", id, NULL) == 0, "no retry");

    /* The hostboot is unharmed: a good runtime still starts. */
    start_host(env, "c", "1", "highPerformance", id);
    host = it_wait_host_state(env, id, "ready", IT_DEADLINE_MS, NULL);
    check_ready_host(env, &d, host, "highPerformance");
    json_decref(host);
}

/* ---- d) memory rlimit ----------------------------------------------------- */

static void test_memory_rlimit_kills_host(void **state)
{
    it_env_t *env = *state;
    json_t *hb_extra = json_pack("{s:[{s:s, s:s, s:s}], s:{s:{s:I}}}", "runtimes", "language", "c",
                                 "version", "hog", "path", IT_HOST_HOG_BIN, "hosts", "limits",
                                 "as_bytes", (json_int_t)64 * MIB);
    assert_non_null(hb_extra);
    daemons_t d;
    start_daemons(env, &d, IT_DEADLINE_MS, hb_extra);

    char id[64];
    start_host(env, "c", "hog", "highPerformance", id);
    json_t *host = it_wait_host_state(env, id, "failed", IT_DEADLINE_MS, NULL);
    int64_t sig = jint(host, "exit.signal", -1), status = jint(host, "exit.status", -1);
    const char *msg = jstr(host, "error.message");
    print_message("memory hog: status %lld signal %lld: %s\n", (long long)status, (long long)sig,
                  msg);
    IT_CHECK(env, json_is_object(json_object_get(host, "exit")), "the exit is reported");
    /* Dead of the limit (malloc failed → abort, or a fault), not of old age
     * (status 99: the limit was not applied). */
    IT_CHECK(env, sig > 0 || (status != 0 && status != 99),
             "host died of the limit (status %lld signal %lld)", (long long)status,
             (long long)sig);
    IT_CHECK(env, strstr(msg, "exited before ready") != NULL, "error says why: %s", msg);
    IT_CHECK(env, jint(host, "pid", 0) > 0, "it did run");
    json_t *pidv = json_object_get(host, "pid");
    pid_t pid = (pid_t)json_integer_value(pidv);
    json_decref(host);

    char pidbuf[32];
    snprintf(pidbuf, sizeof pidbuf, "pid=%d", (int)pid);
    IT_CHECK(env, count_log_lines(d.hostbootd, "host exited unexpectedly", id, pidbuf, NULL) == 1,
             "hostbootd logged the exit");
    IT_CHECK(env, proc_state(pid, NULL) == 0, "the hog is reaped");
    IT_CHECK(env, count_zombies_of(d.hostbootd->pid) == 0, "no zombie under hostbootd");

    char path[IT_PATH_MAX];
    host_log_path(env, id, 0, path, sizeof path);
    char *text = read_file(path);
    IT_CHECK(env, text != NULL, "host log %s exists", path);
    bool said = strstr(text, "malloc failed") != NULL;
    bool noted = strstr(text, "hostbootd: host exited") != NULL;
    free(text);
    IT_CHECK(env, said, "the host's own stderr is in its log");
    IT_CHECK(env, noted, "hostbootd noted the exit in the host log");
    text = it_read_log(d.hostbootd);
    IT_CHECK(env, strstr(text, "malloc failed") == NULL, "host output not in hostbootd's log");
    free(text);
}

/* ---- e) output flood: capped, rotated ------------------------------------- */

static void test_output_flood_capped_and_rotated(void **state)
{
    it_env_t *env = *state;
    char work[IT_PATH_MAX];
    snprintf(work, sizeof work, "%s/%s", it_dir(env), IT_HOSTS_WORK_DIR);
    json_t *hb_extra = json_pack("{s:[{s:s, s:s, s:s}], s:{s:s, s:i, s:i, s:i}}", "runtimes",
                                 "language", "c", "version", "flood", "path", IT_HOST_FLOOD_BIN,
                                 "hosts", "work_dir", work, "log_max_bytes", MIB, "log_keep", 2,
                                 "grace_ms", 5000);
    assert_non_null(hb_extra);
    daemons_t d;
    /* The flood host never reports ready: keep it "starting" throughout. */
    start_daemons(env, &d, 600000, hb_extra);

    char id[64];
    start_host(env, "c", "flood", "highPerformance", id);
    char cur[IT_PATH_MAX];
    host_log_path(env, id, 0, cur, sizeof cur);

    /* Until the flood's last line is in the current file, the hostboot
     * stays ready: it never blocks on the flood. */
    uint64_t t0 = it_now_ms();
    unsigned polls = 0;
    for (;;) {
        char st[32];
        IT_CHECK(env, strcmp(hostboot_state(env, st, sizeof st), "ready") == 0,
                 "hostboot ready during the flood (is %s)", st);
        if (file_tail_has(cur, "FLOOD-DONE", 4096))
            break;
        if (it_now_ms() - t0 > FLOOD_DEADLINE_MS)
            it_fail(env, "flood not done within %d ms (current log %lld bytes)",
                    FLOOD_DEADLINE_MS, file_size(cur));
        polls++;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    print_message("50 MiB flood logged in %llu ms (%u polls)\n",
                  (unsigned long long)(it_now_ms() - t0), polls);
    json_t *host = it_wait_host_state(env, id, "starting", IT_DEADLINE_MS, NULL);
    IT_CHECK(env, jint(host, "pid", 0) > 0, "the flood host has a pid");
    pid_t pid = (pid_t)jint(host, "pid", 0);
    json_decref(host);
    IT_CHECK(env, proc_state(pid, NULL) != 0 && proc_state(pid, NULL) != 'Z',
             "the flood host still runs (it was never blocked)");

    long long total = 0;
    for (int n = 0; n <= 2; n++) {
        char p[IT_PATH_MAX];
        host_log_path(env, id, n, p, sizeof p);
        long long sz = file_size(p);
        print_message("%s: %lld bytes\n", p, sz);
        IT_CHECK(env, sz >= 0, "%s exists", p);
        IT_CHECK(env, sz <= MIB, "%s within the 1 MiB cap (%lld)", p, sz);
        if (n > 0)
            IT_CHECK(env, sz >= MIB / 2, "rotated %s is a full file (%lld)", p, sz);
        total += sz;
    }
    char p3[IT_PATH_MAX];
    host_log_path(env, id, 3, p3, sizeof p3);
    IT_CHECK(env, file_size(p3) < 0, "no %s: log_keep 2", p3);
    IT_CHECK(env, total <= 3LL * MIB, "at most 3 MiB kept of the 50 MiB (%lld)", total);
    /* The oldest output is gone, the newest kept. */
    char p2[IT_PATH_MAX];
    host_log_path(env, id, 2, p2, sizeof p2);
    char *oldest = read_file(p2);
    IT_CHECK(env, oldest && strstr(oldest, "flood chunk 000000 ") == NULL,
             "the first chunk was rotated away");
    free(oldest);
    char *own = it_read_log(d.hostbootd);
    bool mixed = strstr(own, "flood chunk") != NULL;
    size_t own_len = strlen(own);
    free(own);
    IT_CHECK(env, !mixed, "host output never in hostbootd's own log");
    IT_CHECK(env, own_len < 256 * 1024, "hostbootd's own log stays small (%zu bytes)", own_len);

    delete_host(env, id);
    host = it_wait_host_state(env, id, "exited", IT_DEADLINE_MS, NULL);
    IT_CHECK(env, jint(host, "exit.status", -1) == 0 && jint(host, "exit.signal", -1) == 0,
             "the flood host exits 0 on SIGTERM");
    json_decref(host);
    IT_CHECK(env, proc_state(pid, NULL) == 0, "the flood host is reaped");
    char st[32];
    IT_CHECK(env, strcmp(hostboot_state(env, st, sizeof st), "ready") == 0,
             "hostboot still ready (%s)", st);
    /* hostbootd's exit note lands in the (capped) current file. */
    IT_CHECK(env, file_tail_has(cur, "hostbootd: host exited: status 0", 4096),
             "exit noted in the host log");
    IT_CHECK(env, file_size(cur) <= MIB && file_size(p3) < 0, "still capped after the exit");
}

/* ---- f) hostbootd SIGTERM stops its hosts first ---------------------------- */

static void test_hostbootd_sigterm_stops_hosts(void **state)
{
    it_env_t *env = *state;
    daemons_t d;
    start_daemons(env, &d, IT_DEADLINE_MS, NULL);
    static const char *const modes[3] = {"highPerformance", "powerSave", "highPerformance"};
    char ids[3][64];
    pid_t pids[3];
    for (int i = 0; i < 3; i++)
        start_host(env, "c", "1", modes[i], ids[i]);
    for (int i = 0; i < 3; i++) {
        json_t *host = it_wait_host_state(env, ids[i], "ready", IT_DEADLINE_MS, NULL);
        pids[i] = check_ready_host(env, &d, host, modes[i]);
        json_decref(host);
    }

    it_stop(d.hostbootd, IT_STOP_DEADLINE_MS); /* SIGTERM; asserts exit 0 */
    for (int i = 0; i < 3; i++) {
        char st = proc_state(pids[i], NULL);
        IT_CHECK(env, st == 0, "host pid=%d gone with hostbootd (state %c)", (int)pids[i], st);
    }
    for (int i = 0; i < 3; i++) {
        json_t *host = it_wait_host_state(env, ids[i], "exited", IT_DEADLINE_MS, NULL);
        IT_CHECK(env, jint(host, "exit.status", -1) == 0 && jint(host, "exit.signal", -1) == 0,
                 "host %s exited 0 on hostbootd's SIGTERM (status %lld signal %lld)", ids[i],
                 (long long)jint(host, "exit.status", -1),
                 (long long)jint(host, "exit.signal", -1));
        json_decref(host);
    }
    IT_CHECK(env, count_log_lines(d.hostbootd, "stopping 3 hosts", NULL) == 1,
             "hostbootd stopped its 3 hosts");
    IT_CHECK(env, count_log_lines(d.hostbootd, "host exited (deleted)", NULL) == 3,
             "hostbootd saw all 3 exit");
    IT_CHECK(env, count_log_lines(d.hostbootd, "SIGKILL", NULL) == 0,
             "no host needed SIGKILL");
    IT_CHECK(env, it_status_int(env, "counts.hosts") == 0, "no live host left");
}

/* ---- h) hostbootd killed and restarted: its hosts are adopted ------------- */

static void test_hostbootd_restart_adopts_hosts(void **state)
{
    it_env_t *env = *state;
    daemons_t d;
    start_daemons(env, &d, IT_DEADLINE_MS, NULL);
    char ids[2][64];
    pid_t pids[2];
    for (int i = 0; i < 2; i++)
        start_host(env, "c", "1", "highPerformance", ids[i]);
    for (int i = 0; i < 2; i++) {
        json_t *host = it_wait_host_state(env, ids[i], "ready", IT_DEADLINE_MS, NULL);
        pids[i] = check_ready_host(env, &d, host, "highPerformance");
        json_decref(host);
    }

    /* The hosts outlive their hostbootd (as under systemd's KillMode=process)
     * and keep talking to the platform. */
    it_kill9(d.hostbootd);
    for (int i = 0; i < 2; i++)
        IT_CHECK(env, kill(pids[i], 0) == 0, "host pid=%d survives hostbootd", (int)pids[i]);
    it_proc_t *hb2 = it_start_hostbootd(env, it_hostbootd_config(env, IT_HOSTBOOT_NAME, NULL));
    it_match_t hb = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &hb, IT_DEADLINE_MS,
                 IT_HOSTBOOT_ID " ready again");
    for (int i = 0; i < 2; i++) {
        char pidbuf[32];
        snprintf(pidbuf, sizeof pidbuf, "pid=%d", (int)pids[i]);
        /* Poll the new hostbootd's log with a deadline. */
        uint64_t t0 = it_now_ms();
        while (count_log_lines(hb2, "adopted a host", ids[i], pidbuf, NULL) != 1 &&
               it_now_ms() - t0 < IT_DEADLINE_MS) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        IT_CHECK(env, count_log_lines(hb2, "adopted a host", ids[i], pidbuf, NULL) == 1,
                 "the new hostbootd adopted %s", ids[i]);
        json_t *host = it_wait_host_state(env, ids[i], "ready", IT_DEADLINE_MS, NULL);
        json_decref(host);
    }
    json_t *owned = hostboot_hosts(env);
    IT_CHECK(env, array_has_string(owned, ids[0]) && array_has_string(owned, ids[1]),
             "the hostboot still lists both hosts");
    json_decref(owned);

    /* An adopted host is deleted like any other ... */
    delete_host(env, ids[0]);
    json_decref(it_wait_host_state(env, ids[0], "exited", IT_DEADLINE_MS, NULL));
    IT_CHECK(env, kill(pids[0], 0) != 0 || proc_state(pids[0], NULL) == 'Z',
             "deleted adopted host pid=%d is gone", (int)pids[0]);
    /* ... and its unexpected death is still reported (status unknown: not
     * our child any more). */
    uint64_t t0 = it_now_ms();
    kill(pids[1], SIGKILL);
    json_t *host = it_wait_host_state(env, ids[1], "exited", IT_DEADLINE_MS, NULL);
    print_message("adopted host death reported after %llu ms\n",
                  (unsigned long long)(it_now_ms() - t0));
    IT_CHECK(env, it_now_ms() - t0 <= 1000 + 500, "reported within a second or so");
    json_decref(host);
    IT_CHECK(env, count_zombies_of(hb2->pid) == 0, "no zombie under the new hostbootd");
}

/* ---- g) isolation: user, no_new_privs, rlimits, private cwd, closed fds ---- */

/* The value after "Key:" in /proc/<pid>/status, into out. */
static bool proc_status_field(pid_t pid, const char *key, char *out, size_t size)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r"); /* /proc files have no size: read by line */
    out[0] = 0;
    if (!f)
        return false;
    bool found = false;
    size_t n = strlen(key);
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(out, size, "%s", v);
            out[strcspn(out, "\n")] = 0;
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* "soft hard unit" of a row of /proc/<pid>/limits, single-spaced. */
static bool proc_limit(pid_t pid, const char *row, char *out, size_t size)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "r");
    out[0] = 0;
    if (!f)
        return false;
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, row, strlen(row)) != 0)
            continue;
        size_t o = 0;
        bool space = false;
        for (const char *c = line + strlen(row); *c && *c != '\n' && o + 1 < size; c++) {
            if (*c == ' ') {
                space = o > 0;
                continue;
            }
            if (space)
                out[o++] = ' ';
            space = false;
            if (o + 1 < size)
                out[o++] = *c;
        }
        out[o] = 0;
        strncat(out, " ", size - strlen(out) - 1);
        found = true;
    }
    fclose(f);
    return found;
}

static void test_host_isolation(void **state)
{
    it_env_t *env = *state;
    bool root = geteuid() == 0;
    struct passwd *nobody = root ? getpwnam("nobody") : NULL;
    json_t *hb_extra = json_pack("{s:{s:s, s:{s:i, s:i}}}", "hosts", "user",
                                 nobody ? "nobody" : "", "limits", "nofile", 77, "cpu_s", 3600);
    assert_non_null(hb_extra);
    daemons_t d;
    start_daemons(env, &d, IT_DEADLINE_MS, hb_extra);

    char id[64];
    start_host(env, "c", "1", "highPerformance", id);
    json_t *host = it_wait_host_state(env, id, "ready", IT_DEADLINE_MS, NULL);
    pid_t pid = (pid_t)jint(host, "pid", 0);
    json_decref(host);
    IT_CHECK(env, pid > 0, "host has a pid");

    char v[256];
    IT_CHECK(env, proc_status_field(pid, "NoNewPrivs", v, sizeof v) && strcmp(v, "1") == 0,
             "PR_SET_NO_NEW_PRIVS is set (NoNewPrivs: %s)", v);
    if (nobody) {
        IT_CHECK(env, proc_status_field(pid, "Uid", v, sizeof v) &&
                          (uid_t)atoi(v) == nobody->pw_uid,
                 "runs as nobody (Uid: %s)", v);
    } else {
        print_message("not root: the hosts.user switch is not exercised\n");
    }
    char lim[128];
    IT_CHECK(env, proc_limit(pid, "Max open files", lim, sizeof lim) &&
                      strncmp(lim, "77 77 ", 6) == 0,
             "RLIMIT_NOFILE 77 soft and hard (got \"%s\")", lim);
    IT_CHECK(env, proc_limit(pid, "Max cpu time", lim, sizeof lim) &&
                      strncmp(lim, "3600 3600 ", 10) == 0,
             "RLIMIT_CPU 3600 s (got \"%s\")", lim);
    IT_CHECK(env, proc_limit(pid, "Max core file size", lim, sizeof lim) &&
                      strncmp(lim, "0 0 ", 4) == 0,
             "RLIMIT_CORE 0: a host's memory holds its key (got \"%s\")", lim);

    /* Its own directory under hosts.work_dir, named after it. */
    char link[64], cwd[IT_PATH_MAX];
    snprintf(link, sizeof link, "/proc/%d/cwd", (int)pid);
    ssize_t n = readlink(link, cwd, sizeof cwd - 1);
    IT_CHECK(env, n > 0, "cwd readable");
    cwd[n] = 0;
    IT_CHECK(env, strstr(cwd, id) != NULL && strstr(cwd, it_dir(env)) == cwd,
             "private working directory %s", cwd);
    struct stat st;
    IT_CHECK(env, stat(cwd, &st) == 0 && (st.st_mode & 077) == 0, "work dir is 0700");

    /* Nothing of hostbootd's leaked in: no fd points at hostbootd's own log,
     * a host log or the platform's state; stdout/stderr are its pipes. */
    char fddir[64];
    snprintf(fddir, sizeof fddir, "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(fddir);
    IT_CHECK(env, dir != NULL, "fd table readable");
    struct dirent *e;
    int leaked = 0;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char fdpath[400], target[IT_PATH_MAX];
        snprintf(fdpath, sizeof fdpath, "%s/%s", fddir, e->d_name);
        ssize_t tn = readlink(fdpath, target, sizeof target - 1);
        if (tn <= 0)
            continue;
        target[tn] = 0;
        int fd = atoi(e->d_name);
        /* libuv's stdio "pipes" are socketpairs */
        bool bad = ((fd == 1 || fd == 2) && strncmp(target, "pipe:", 5) != 0 &&
                    strncmp(target, "socket:", 7) != 0) ||
                   strstr(target, ".log") || strstr(target, "platform-state");
        if (bad) {
            leaked++;
            print_message("leaked fd %d -> %s\n", fd, target);
        }
    }
    closedir(dir);
    IT_CHECK(env, leaked == 0, "no inherited fd in the host");
    delete_host(env, id);
    json_decref(it_wait_host_state(env, id, "exited", IT_DEADLINE_MS, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifty_hosts_start_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_reported_within_1s, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_runtime_and_missing_binary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_rlimit_kills_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_flood_capped_and_rotated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostbootd_sigterm_stops_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostbootd_restart_adopts_hosts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
