/* Diagnostics end to end (docs/diagnostics.md): after a scripted sequence
 * (register a package, start N instances on N hosts, invoke K times, one
 * unknown route, one bad token) GET /api/v1/diag and GET /metrics hold the
 * exact counts; /metrics passes `promtool check metrics` and a strict
 * parser of the text format; platformctl diag and logs render them; the
 * tracing switch (config and API) logs exactly the traced instance's
 * messages. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "plat/envelope.h"
#include "plat/id.h"
#include "plat/msg.h"

#ifndef EXAMPLES_DIR
#error "EXAMPLES_DIR (the built example packages) must be defined"
#endif
#ifndef PLATFORMCTL_BIN
#error "PLATFORMCTL_BIN must be defined"
#endif

#define HB_INTERVAL_MS 200
#define HB_MISS 5
#define N_INSTANCES 2
#define K_INVOKES 3

/* ---- HTTP bits the harness does not do ------------------------------------ */

typedef struct {
    char *data;
    size_t len;
} buf_t;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    buf_t *b = arg;
    char *d = realloc(b->data, b->len + size * n + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, size * n);
    b->data = d;
    b->len += size * n;
    b->data[b->len] = 0;
    return size * n;
}

/* A request with an explicit Authorization header (or none); the body as
 * text into *out (caller frees); returns the status and the content type. */
static long raw_request(it_env_t *env, const char *method, const char *path, const char *auth,
                        char **out, char *ctype, size_t ctype_size)
{
    CURL *h = curl_easy_init();
    IT_CHECK(env, h != NULL, "curl_easy_init");
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", it_http_port(env), path);
    buf_t b = {0};
    struct curl_slist *hdrs = NULL;
    if (auth)
        hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    if (ctype)
        snprintf(ctype, ctype_size, "%s", ct ? ct : "");
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    IT_CHECK(env, rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    *out = b.data ? b.data : strdup("");
    return status;
}

static char *get_metrics(it_env_t *env)
{
    char *text = NULL, ctype[128];
    long st = raw_request(env, "GET", "/metrics", NULL, &text, ctype, sizeof ctype);
    IT_CHECK(env, st == 200, "GET /metrics: 200 (got %ld)", st);
    IT_CHECK(env, strcmp(ctype, "text/plain; version=0.0.4; charset=utf-8") == 0,
             "content type of the text format 0.0.4 (got %s)", ctype);
    return text;
}

/* ---- a strict reader of the text format 0.0.4 --------------------------- */

typedef struct {
    char name[128];
    char type[16];
    bool help;
} family_t;

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return false;
    return true;
}

/* The family a sample name belongs to (histogram suffixes removed when
 * that family is a histogram). */
static family_t *family_of(family_t *fams, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(fams[i].name);
        if (strcmp(fams[i].name, name) == 0)
            return &fams[i];
        if (strcmp(fams[i].type, "histogram") == 0 && strncmp(name, fams[i].name, l) == 0 &&
            (strcmp(name + l, "_bucket") == 0 || strcmp(name + l, "_sum") == 0 ||
             strcmp(name + l, "_count") == 0))
            return &fams[i];
    }
    return NULL;
}

/* Fails the test on any line that is not HELP, TYPE or a well-formed sample
 * of a declared family, on a repeated series, and on a HELP/TYPE repeated
 * or coming after the family's samples. Returns the number of samples. */
static size_t check_text_format(it_env_t *env, const char *text)
{
    static family_t fams[256];
    size_t nf = 0, samples = 0;
    static char seen[2048][256];
    size_t nseen = 0;
    char *copy = strdup(text), *save = NULL;
    IT_CHECK(env, copy && strlen(text) > 0 && text[strlen(text) - 1] == '\n',
             "the page ends with a newline");
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            bool is_type = line[2] == 'T';
            char *name = line + 7, *sp = strchr(name, ' ');
            IT_CHECK(env, sp && name_ok(name, (size_t)(sp - name)), "bad metadata line: %s", line);
            *sp = 0;
            family_t *f = NULL;
            for (size_t i = 0; i < nf; i++)
                if (strcmp(fams[i].name, name) == 0)
                    f = &fams[i];
            if (!f) {
                IT_CHECK(env, nf < 256, "too many families");
                f = &fams[nf++];
                snprintf(f->name, sizeof f->name, "%s", name);
            }
            if (is_type) {
                IT_CHECK(env, !f->type[0], "TYPE repeated for %s", name);
                const char *t = sp + 1;
                IT_CHECK(env,
                         !strcmp(t, "counter") || !strcmp(t, "gauge") || !strcmp(t, "histogram") ||
                             !strcmp(t, "summary") || !strcmp(t, "untyped"),
                         "bad type %s", t);
                snprintf(f->type, sizeof f->type, "%s", t);
                if (!strcmp(t, "counter"))
                    IT_CHECK(env, strlen(name) > 6 && !strcmp(name + strlen(name) - 6, "_total"),
                             "counter %s ends in _total", name);
            } else {
                IT_CHECK(env, !f->help, "HELP repeated for %s", name);
                f->help = true;
            }
            continue;
        }
        IT_CHECK(env, line[0] != '#', "unexpected comment: %s", line);
        /* name{labels} value */
        size_t nl = strcspn(line, "{ ");
        IT_CHECK(env, name_ok(line, nl), "bad metric name: %s", line);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)nl, line);
        family_t *f = family_of(fams, nf, name);
        IT_CHECK(env, f && f->type[0] && f->help, "sample before its HELP/TYPE: %s", line);
        const char *p = line + nl;
        if (*p == '{') {
            p++;
            while (*p != '}') {
                size_t ln = strcspn(p, "=");
                IT_CHECK(env, name_ok(p, ln) && p[ln] == '=' && p[ln + 1] == '"',
                         "bad label in: %s", line);
                p += ln + 2;
                while (*p && *p != '"') {
                    if (*p == '\\') {
                        IT_CHECK(env, p[1] == '\\' || p[1] == '"' || p[1] == 'n',
                                 "bad escape in: %s", line);
                        p++;
                    }
                    IT_CHECK(env, *p != '\n', "raw newline in a label");
                    p++;
                }
                IT_CHECK(env, *p == '"', "unterminated label value: %s", line);
                p++;
                IT_CHECK(env, *p == ',' || *p == '}', "bad label list: %s", line);
                if (*p == ',')
                    p++;
            }
            p++;
        }
        IT_CHECK(env, *p == ' ', "no value separator: %s", line);
        char *end;
        double v = strtod(p + 1, &end);
        IT_CHECK(env, end != p + 1 && *end == 0 && !isnan(v), "bad value: %s", line);
        char series[256];
        snprintf(series, sizeof series, "%.*s", (int)(p - line), line);
        for (size_t i = 0; i < nseen; i++)
            IT_CHECK(env, strcmp(seen[i], series) != 0, "series repeated: %s", series);
        if (nseen < 2048)
            snprintf(seen[nseen++], sizeof seen[0], "%s", series);
        samples++;
    }
    free(copy);
    return samples;
}

/* diag lists hostboot-itest with a heartbeat on record. */
static bool hostboot_heartbeat_seen(json_t *body, void *arg)
{
    (void)arg;
    json_t *hb = it_json_find(json_object_get(body, "hostboots"), "id", IT_HOSTBOOT_ID);
    return hb && it_json_int(hb, "last_heartbeat.age_ms", -1) >= 0;
}

/* The value of one series ("name{labels}" exactly as rendered); -1 when
 * absent. */
static double metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

/* `promtool check metrics` on the page (Debian package prometheus,
 * scripts/deps.sh). */
static void promtool_check(it_env_t *env, const char *text)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "promtool not installed (scripts/deps.sh installs it): only the "
                        "built-in parser checked /metrics\n");
        return;
    }
    const char *file = it_write_file(env, "metrics.txt", text);
    char cmd[IT_PATH_MAX * 2 + 64];
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' > '%s.out' 2>&1", file, file);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s.out' >&2", file);
        IT_CHECK(env, system(cmd) >= 0, "show promtool output");
    }
    IT_CHECK(env, rc == 0, "promtool check metrics accepts /metrics (exit %d)", rc);
}

/* ---- platformctl ---------------------------------------------------------- */

/* Run platformctl with `args` (NULL-ended); its stdout into *out. Returns
 * the exit status. */
static int platformctl(it_env_t *env, char **out, ...)
{
    char *argv[16] = {PLATFORMCTL_BIN};
    int argc = 1;
    char api[64];
    snprintf(api, sizeof api, "--api=http://127.0.0.1:%d", it_http_port(env));
    argv[argc++] = api;
    va_list ap;
    va_start(ap, out);
    for (char *a = va_arg(ap, char *); a && argc < 15; a = va_arg(ap, char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char path[IT_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/platformctl.out", it_dir(env));
    pid_t pid = fork();
    IT_CHECK(env, pid >= 0, "fork");
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    uint64_t deadline = it_now_ms() + IT_DEADLINE_MS;
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && it_now_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        it_fail(env, "platformctl did not finish in time");
    }
    FILE *f = fopen(path, "re");
    IT_CHECK(env, f != NULL, "read %s", path);
    buf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        on_data(chunk, 1, n, &b);
    fclose(f);
    *out = b.data ? b.data : strdup("");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- the scripted sequence ---------------------------------------------------- */

static void post_ok(it_env_t *env, const char *path, json_t *req, int want, json_t **resp)
{
    json_t *body = NULL;
    int st = it_http_post(env, path, req, &body);
    if (st != want) {
        char *d = body ? json_dumps(body, JSON_COMPACT) : NULL;
        fprintf(stderr, "POST %s: %d %s\n", path, st, d ? d : "");
        free(d);
    }
    IT_CHECK(env, st == want, "POST %s: %d (got %d)", path, want, st);
    if (resp)
        *resp = body;
    else
        json_decref(body);
}

static void action(it_env_t *env, const char *uuid, const char *act)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s/%s", uuid, act);
    json_t *empty = json_object();
    post_ok(env, path, empty, 200, NULL);
    json_decref(empty);
}

static void test_counts(void **state)
{
    it_env_t *env = *state;
    json_t *extra = json_pack("{s:{s:i}}", "hosts", "exited_keep_ms", 3600000);
    const char *pd_cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, extra);
    json_decref(extra);
    it_start_platformd(env, pd_cfg);
    it_start_hostbootd(env, it_hostbootd_config(env, IT_HOSTBOOT_NAME, NULL));
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_match_t hb = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &hb, IT_DEADLINE_MS,
                 IT_HOSTBOOT_ID " ready");

    /* register, N instances (highPerformance: one host each), K invokes */
    json_t *req = json_pack("{s:s}", "path", EXAMPLES_DIR "/hello");
    post_ok(env, "/api/v1/packages", req, 201, NULL);
    json_decref(req);
    char uuid[N_INSTANCES][64];
    for (int i = 0; i < N_INSTANCES; i++) {
        json_t *r = NULL;
        req = json_pack("{s:s, s:s, s:s}", "plugin", "hello", "version", "1.0.0", "org", "acme");
        post_ok(env, "/api/v1/instances", req, 201, &r);
        json_decref(req);
        snprintf(uuid[i], sizeof uuid[i], "%s", it_json_str(r, "instance.uuid"));
        json_decref(r);
        action(env, uuid[i], "enable");
        action(env, uuid[i], "start");
    }
    json_t *before = it_get_json(env, "/api/v1/diag");
    for (int k = 0; k < K_INVOKES; k++) {
        char path[160];
        snprintf(path, sizeof path, "/api/v1/instances/%s/invoke", uuid[0]);
        json_t *empty = json_object();
        post_ok(env, path, empty, 200, NULL);
        json_decref(empty);
    }
    char *text = NULL;
    long st = raw_request(env, "GET", "/api/v1/no-such-route", NULL, &text, NULL, 0);
    free(text);
    IT_CHECK(env, st == 404, "unknown route: 404 (got %ld)", st);
    st = raw_request(env, "POST", "/api/v1/instances", "Authorization: Bearer not-the-token",
                     &text, NULL, 0);
    free(text);
    IT_CHECK(env, st == 401, "bad token: 401 (got %ld)", st);

    /* ---- diag ---- */
    /* A hostboot that re-registered (a loaded machine can make its link
     * re-register) has no heartbeat on record until its next one: wait for
     * it (diag's own request count is not pinned by the checks below). */
    it_wait_json(env, "/api/v1/diag", hostboot_heartbeat_seen, NULL, IT_DEADLINE_MS,
                 "the hostboot's heartbeat in diag");
    json_t *d = it_get_json(env, "/api/v1/diag");
    IT_CHECK(env, strlen(it_json_str(d, "platform.boot_id")) == PLAT_UUID_LEN, "platform boot id");
    IT_CHECK(env, it_json_int(d, "platform.rss_bytes", -1) > 0, "platformd's RSS");
    json_t *cfg = it_json_path(d, "platform.config");
    IT_CHECK(env, json_integer_value(json_object_get(cfg, "heartbeat.interval_ms")) ==
                      HB_INTERVAL_MS,
             "config summary");
    json_t *hbs = json_object_get(d, "hostboots");
    IT_CHECK(env, json_array_size(hbs) == 1, "one hostboot (got %zu)", json_array_size(hbs));
    json_t *b0 = json_array_get(hbs, 0);
    IT_CHECK(env, strcmp(it_json_str(b0, "id"), IT_HOSTBOOT_ID) == 0 &&
                      strcmp(it_json_str(b0, "state"), "ready") == 0,
             "hostboot ready");
    /* installing runs the install hook on a host of its own, stopped after:
     * the last report is that host's exit */
    IT_CHECK(env, strcmp(it_json_str(b0, "last_report.kind"), "host_exited") == 0,
             "its last report (got %s)", it_json_str(b0, "last_report.kind"));
    IT_CHECK(env,
             it_json_int(b0, "last_heartbeat.age_ms", -1) >= 0 &&
                 it_json_int(b0, "messages_rx", -1) > 0,
             "its last heartbeat");
    char want_dir[IT_PATH_MAX + 64];
    snprintf(want_dir, sizeof want_dir, "%s/" IT_HOSTBOOT_LOG_DIR "/hosts", it_dir(env));
    IT_CHECK(env, strcmp(it_json_str(b0, "log_dir"), want_dir) == 0, "log_dir %s (got %s)",
             want_dir, it_json_str(b0, "log_dir"));
    json_t *hosts = json_object_get(d, "hosts");
    char host_of0[64] = "";
    size_t i;
    json_t *h;
    int ready = 0, exited = 0;
    json_array_foreach(hosts, i, h)
    {
        if (strcmp(it_json_str(h, "state"), "exited") == 0) {
            exited++;
            IT_CHECK(env, json_is_null(json_object_get(h, "rss_bytes")), "no RSS once exited");
            continue;
        }
        ready++;
        IT_CHECK(env, strcmp(it_json_str(h, "state"), "ready") == 0, "host ready");
        IT_CHECK(env, it_json_int(h, "pid", -1) > 0 && it_json_int(h, "rss_bytes", -1) > 0,
                 "pid and RSS of %s", it_json_str(h, "id"));
        IT_CHECK(env, json_array_size(json_object_get(h, "instances")) == 1, "one instance each");
        json_t *in = json_array_get(json_object_get(h, "instances"), 0);
        IT_CHECK(env, strcmp(it_json_str(in, "state"), "running") == 0, "instance running");
        IT_CHECK(env,
                 it_json_int(h, "restarts", -1) == 0 &&
                     json_is_null(json_object_get(h, "last_error")),
                 "no restarts, no error");
        char lf[IT_PATH_MAX + 128];
        snprintf(lf, sizeof lf, "%s/%s.log", want_dir, it_json_str(h, "id"));
        IT_CHECK(env, strcmp(it_json_str(h, "log_file"), lf) == 0, "log_file %s (got %s)", lf,
                 it_json_str(h, "log_file"));
        if (strcmp(it_json_str(in, "uuid"), uuid[0]) == 0)
            snprintf(host_of0, sizeof host_of0, "%s", it_json_str(h, "id"));
    }
    IT_CHECK(env, ready == N_INSTANCES, "%d hosts ready (got %d)", N_INSTANCES, ready);
    IT_CHECK(env, host_of0[0], "the host of instance 0 is listed");
    IT_CHECK(env, it_json_int(d, "instances.running", -1) == N_INSTANCES, "instances running");
    /* K invokes: exactly K plugin events out and K answers in */
    IT_CHECK(env,
             it_json_int(d, "bus.channels.plugin.tx", -1) -
                     it_json_int(before, "bus.channels.plugin.tx", -1) ==
                 K_INVOKES,
             "plugin tx +%d", K_INVOKES);
    IT_CHECK(env,
             it_json_int(d, "bus.channels.plugin.rx", -1) -
                     it_json_int(before, "bus.channels.plugin.rx", -1) ==
                 K_INVOKES,
             "plugin rx +%d", K_INVOKES);
    IT_CHECK(env,
             it_json_int(d, "sync.replies", -1) - it_json_int(before, "sync.replies", -1) >=
                 K_INVOKES,
             "sync replies");
    IT_CHECK(env,
             it_json_int(d, "sync.pending", -1) >= 0 &&
                 it_json_int(d, "counters.heartbeats_missed", -1) == 0,
             "sync and heartbeats");
    IT_CHECK(env, json_object_size(json_object_get(d, "logs")) > 0 &&
                      json_array_size(it_json_path(d, "logs.manager")) > 0,
             "log lines of components");
    json_t *reqs = json_object_get(d, "http_requests");
    json_t *r;
    int invoke_200 = -1;
    json_array_foreach(reqs, i, r)
    {
        if (strcmp(it_json_str(r, "route"), "/api/v1/instances/{uuid}/invoke") == 0 &&
            it_json_int(r, "status", -1) == 200)
            invoke_200 = (int)it_json_int(r, "count", -1);
    }
    IT_CHECK(env, invoke_200 == K_INVOKES, "diag: %d invokes (got %d)", K_INVOKES, invoke_200);
    json_decref(before);
    json_decref(d);

    /* ---- /metrics ---- */
    char *m = get_metrics(env);
    size_t samples = check_text_format(env, m);
    IT_CHECK(env, samples > 50, "samples (got %zu)", samples);
    promtool_check(env, m);
#define EXPECT(series, want)                                                                  \
    IT_CHECK(env, metric(m, series) == (double)(want), "%s = %d (got %g)", series, (int)(want), \
             metric(m, series))
    EXPECT("plat_http_requests_total{route=\"/api/v1/instances/{uuid}/invoke\",method=\"POST\","
           "status=\"200\"}",
           K_INVOKES);
    EXPECT("plat_http_requests_total{route=\"/api/v1/instances\",method=\"POST\",status=\"201\"}",
           N_INSTANCES);
    EXPECT("plat_http_requests_total{route=\"/api/v1/instances/{uuid}/{action}\",method=\"POST\","
           "status=\"200\"}",
           2 * N_INSTANCES);
    EXPECT("plat_http_requests_total{route=\"/api/v1/packages\",method=\"POST\",status=\"201\"}",
           1);
    EXPECT("plat_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}", 1);
    EXPECT("plat_http_requests_total{route=\"unmatched\",method=\"POST\",status=\"401\"}", 1);
    EXPECT("plat_hosts{state=\"ready\"}", N_INSTANCES);
    EXPECT("plat_hosts{state=\"failed\"}", 0);
    EXPECT("plat_hosts{state=\"exited\"}", exited);
    EXPECT("plat_hostboots{state=\"ready\"}", 1);
    EXPECT("plat_instances{state=\"running\"}", N_INSTANCES);
    EXPECT("plat_instance_restarts_total", 0);
    EXPECT("plat_heartbeats_missed_total", 0);
    EXPECT("plat_sync_timeouts_total", 0);
    EXPECT("plat_bus_dropped_total{reason=\"spoofed\"}", 0);
    IT_CHECK(env,
             metric(m, "plat_sync_call_duration_seconds_bucket{le=\"+Inf\"}") ==
                 metric(m, "plat_sync_call_duration_seconds_count") &&
                 metric(m, "plat_sync_call_duration_seconds_count") >= K_INVOKES,
             "histogram +Inf bucket = count >= K");
    IT_CHECK(env, metric(m, "plat_bus_messages_total{channel=\"plugin\",direction=\"tx\"}") >=
                      K_INVOKES,
             "plugin messages out");
    free(m);

    /* ---- platformctl diag, logs ---- */
    char *out = NULL;
    int rc = platformctl(env, &out, "diag", NULL);
    IT_CHECK(env, rc == 0, "platformctl diag: exit 0 (got %d)", rc);
    IT_CHECK(env, strstr(out, "HOSTS") && strstr(out, host_of0) && strstr(out, IT_HOSTBOOT_ID) &&
                      strstr(out, "/api/v1/instances/{uuid}/invoke"),
             "platformctl diag shows hosts, hostboots and requests:\n%s", out);
    free(out);
    rc = platformctl(env, &out, "logs", host_of0, NULL);
    IT_CHECK(env, rc == 0, "platformctl logs: exit 0 (got %d)", rc);
    IT_CHECK(env, strstr(out, "pluginhost") != NULL, "the host's own output:\n%s", out);
    free(out);
    rc = platformctl(env, &out, "logs", "host-00000000-0000-4000-8000-000000000000", NULL);
    IT_CHECK(env, rc == 4, "logs of an unknown host: exit 4 (got %d)", rc);
    free(out);
}

/* ---- tracing ------------------------------------------------------------------ */

#define UUID_A "aaaaaaaa-0000-4000-8000-000000000001"
#define UUID_B "bbbbbbbb-0000-4000-8000-000000000002"
#define UUID_C "cccccccc-0000-4000-8000-000000000003"

static char *dupstr(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

/* A resource request (FILE LIST) naming `instance`, from the fake host;
 * waits for the platform's answer. Returns its seq_no. */
static uint64_t resource_request(it_env_t *env, it_client_t *c, const char *instance)
{
    Plat__PlatformMessage *m = plat_msg_new_empty();
    assert_non_null(m);
    Plat__ResourceMessage *rm = malloc(sizeof *rm);
    Plat__ResourceRequest *rq = malloc(sizeof *rq);
    Plat__FileRequest *fr = malloc(sizeof *fr);
    assert_true(rm && rq && fr);
    plat__resource_message__init(rm);
    plat__resource_request__init(rq);
    plat__file_request__init(fr);
    fr->op = PLAT__FILE_OP__FILE_OP_LIST;
    rq->instance = dupstr(instance);
    rq->kind = PLAT__RESOURCE_KIND__RESOURCE_KIND_FILE;
    rq->op_case = PLAT__RESOURCE_REQUEST__OP_FILE;
    rq->file = fr;
    rm->body_case = PLAT__RESOURCE_MESSAGE__BODY_REQUEST;
    rm->request = rq;
    m->channel_case = PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE;
    m->resource = rm;
    uint64_t seq = it_client_next_seq(c);
    it_client_send(c, m, it_client_id(c), PLAT_PLATFORM_ID, seq,
                   PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST, NULL, NULL);
    plat_envelope_free(&m);
    Plat__PlatformMessage *reply = NULL;
    IT_CHECK(env, it_client_recv(c, IT_DEADLINE_MS, &reply, NULL, NULL) == 0,
             "an answer to the resource request seq=%llu", (unsigned long long)seq);
    IT_CHECK(env, reply->header->seq_no == seq, "the answer is to seq %llu",
             (unsigned long long)seq);
    plat_envelope_free(&reply);
    return seq;
}

static int count_trace_lines(it_proc_t *p, const char *needle, const char *needle2)
{
    char *text = it_read_log(p);
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strstr(line, "platformd/trace ") && (!needle || strstr(line, needle)) &&
            (!needle2 || strstr(line, needle2)))
            n++;
    free(text);
    return n;
}

static void test_trace(void **state)
{
    it_env_t *env = *state;
    /* instance A traced from the config; C switched on through the API */
    json_t *extra = json_pack("{s:{s:[s]}}", "trace", "instances", UUID_A);
    const char *pd_cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, extra);
    json_decref(extra);
    it_proc_t *pd = it_start_platformd(env, pd_cfg);
    it_wait_healthy(env, IT_DEADLINE_MS);
    char host_id[64];
    it_new_host_id(host_id);
    it_client_t *c = it_client_new(env, host_id);
    it_client_register(c, NULL, NULL);

    json_t *t = it_get_json(env, "/api/v1/trace");
    IT_CHECK(env, json_array_size(json_object_get(t, "instances")) == 1 &&
                      strcmp(json_string_value(json_array_get(json_object_get(t, "instances"), 0)),
                             UUID_A) == 0,
             "A traced from the config");
    json_decref(t);

    uint64_t a_seq[3], c_seq;
    a_seq[0] = resource_request(env, c, UUID_A);
    resource_request(env, c, UUID_B);
    a_seq[1] = resource_request(env, c, UUID_A);
    resource_request(env, c, UUID_B);
    json_t *on = json_pack("{s:s, s:b}", "instance", UUID_C, "on", 1);
    post_ok(env, "/api/v1/trace", on, 200, NULL);
    json_decref(on);
    c_seq = resource_request(env, c, UUID_C);
    a_seq[2] = resource_request(env, c, UUID_A);
    json_t *off = json_pack("{s:s, s:b}", "instance", UUID_A, "on", 0);
    post_ok(env, "/api/v1/trace", off, 200, NULL);
    json_decref(off);
    resource_request(env, c, UUID_A); /* no longer traced */

    /* bad switches */
    json_t *bad = json_pack("{s:s, s:b}", "instance", "not-a-uuid", "on", 1);
    json_t *resp = NULL;
    IT_CHECK(env, it_http_post(env, "/api/v1/trace", bad, &resp) == 400, "bad id: 400");
    json_decref(bad);
    json_decref(resp);
    bad = json_pack("{s:s, s:s, s:b}", "instance", UUID_A, "host", host_id, "on", 1);
    IT_CHECK(env, it_http_post(env, "/api/v1/trace", bad, &resp) == 400, "both kinds: 400");
    json_decref(bad);
    json_decref(resp);

    /* Exactly the traced requests were logged as received: A's three while
     * on, C's one, none of B's, none of A's after it was switched off. */
    char needle[160];
    int rx_a = 0;
    for (int k = 0; k < 3; k++) {
        snprintf(needle, sizeof needle, "dir=rx source=%s destination=platform seq=%llu ", host_id,
                 (unsigned long long)a_seq[k]);
        int n = count_trace_lines(pd, needle, "channel=resource");
        IT_CHECK(env, n == 1, "A's request seq=%llu traced once (got %d)",
                 (unsigned long long)a_seq[k], n);
        rx_a += n;
        /* and the platform's answer to it, seen by the bus's tx observer */
        snprintf(needle, sizeof needle, "dir=tx source=platform destination=%s seq=%llu ",
                 host_id, (unsigned long long)a_seq[k]);
        n = count_trace_lines(pd, needle, "kind=reply");
        IT_CHECK(env, n == 1, "the reply to A's request seq=%llu traced once (got %d)",
                 (unsigned long long)a_seq[k], n);
    }
    IT_CHECK(env, count_trace_lines(pd, "dir=rx", "match=instance:" UUID_A) == rx_a,
             "no other received message of A traced");
    snprintf(needle, sizeof needle, "dir=rx source=%s destination=platform seq=%llu ", host_id,
             (unsigned long long)c_seq);
    IT_CHECK(env, count_trace_lines(pd, needle, "match=instance:" UUID_C) == 1, "C's request");
    IT_CHECK(env, count_trace_lines(pd, UUID_B, NULL) == 0, "B never traced");
    IT_CHECK(env, count_trace_lines(pd, "dir=rx", NULL) == 4, "4 received messages traced");
    /* every traced line is one of A's or C's (replies, if the platform's
     * sends are traced, carry the same seq) and has every header field */
    int all = count_trace_lines(pd, NULL, NULL);
    int ac = count_trace_lines(pd, "match=instance:" UUID_A, NULL) +
             count_trace_lines(pd, "match=instance:" UUID_C, NULL);
    IT_CHECK(env, all == ac, "only A and C traced (%d lines, %d of A/C)", all, ac);
    IT_CHECK(env, count_trace_lines(pd, " size=", " kind=") == all, "size and kind on each line");
    json_t *d = it_get_json(env, "/api/v1/diag");
    IT_CHECK(env,
             it_json_int(d, "counters.trace_lines", -1) == all &&
                 it_json_int(d, "trace.lines", -1) == all,
             "trace_lines counts them (%d, diag %lld)", all,
             (long long)it_json_int(d, "counters.trace_lines", -1));
    json_decref(d);

    /* a host traced: its messages (at least its pongs) show up, each
     * naming it */
    on = json_pack("{s:s, s:b}", "host", host_id, "on", 1);
    post_ok(env, "/api/v1/trace", on, 200, NULL);
    json_decref(on);
    resource_request(env, c, UUID_B);
    snprintf(needle, sizeof needle, "match=host:%s", host_id);
    IT_CHECK(env, count_trace_lines(pd, needle, "channel=resource") >= 1,
             "the host's request traced");
    char *m = get_metrics(env);
    IT_CHECK(env, metric(m, "plat_trace_lines_total") >= all + 1, "plat_trace_lines_total");
    free(m);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_trace, it_setup, it_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
