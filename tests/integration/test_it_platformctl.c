/* platformctl end to end: the real binary (PLATFORMCTL_BIN), run as a
 * script would run it, against real platformd + hostbootd in a temp dir.
 * Drives a hello instance through register → install → enable → start →
 * invoke → upgrade → uninstall with platformctl alone and checks the exit
 * codes scripts rely on (docs/platformctl.md): 0 ok, 2 usage, 3 API
 * unreachable, 4 not found, 5 conflict, 6 unauthorized. Every child runs
 * with http_proxy pointing at a dead port: platformctl must ignore it.
 * A second case takes a Python plugin (notes-py, its DB, an upgrade to
 * pyplugins/notes_v2) through the same life. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "testports.h"

#define HB_INTERVAL_MS 200
#define HB_MISS 5
/* A lifecycle action (host start, hooks) under a sanitizer on a loaded
 * machine: generous, never a sleep. */
#define CTL_DEADLINE_MS 120000

extern char **environ;

/* One platformctl run: exit code (-1 when it did not exit normally),
 * stdout and stderr (malloc'd, NUL-terminated). */
typedef struct {
    int rc;
    char *out;
    char *err;
} ctl_run_t;

typedef struct {
    it_env_t *env;
    char api[64];        /* --api */
    char token[600];     /* --token-file (the platform's) */
    char dead_proxy[64]; /* http_proxy for every child: nobody listens */
} ctx_t;

static void run_clear(ctl_run_t *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

typedef struct {
    char *data;
    size_t len;
} sbuf_t;

static void sbuf_read(sbuf_t *b, int fd, bool *eof)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
        return;
    if (n <= 0) {
        *eof = true;
        return;
    }
    char *d = realloc(b->data, b->len + (size_t)n + 1);
    assert_non_null(d);
    memcpy(d + b->len, chunk, (size_t)n);
    b->data = d;
    b->len += (size_t)n;
    d[b->len] = 0;
}

/* The child's environment: ours without PLATFORMCTL_* and proxies, plus
 * proxies that lead nowhere. malloc'd array; strings borrowed or in ctx. */
static char **child_environ(const ctx_t *ctx, char proxies[4][128])
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 5, sizeof *envp);
    assert_non_null(envp);
    size_t j = 0;
    static const char *const drop[] = {
        "PLATFORMCTL_", "http_proxy=", "HTTP_PROXY=", "all_proxy=",
        "ALL_PROXY=",   "no_proxy=",   "NO_PROXY=",   "JOURNAL_STREAM="};
    for (size_t i = 0; i < n; i++) {
        bool keep = true;
        for (size_t d = 0; d < sizeof drop / sizeof *drop && keep; d++)
            keep = strncmp(environ[i], drop[d], strlen(drop[d])) != 0;
        if (keep)
            envp[j++] = environ[i];
    }
    static const char *const names[4] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    for (int i = 0; i < 4; i++) {
        snprintf(proxies[i], 128, "%s=%s", names[i], ctx->dead_proxy);
        envp[j++] = proxies[i];
    }
    return envp;
}

/* Run platformctl with `args` (NULL-terminated, after argv[0]) exactly as
 * given: no implicit --api or --token-file. */
static ctl_run_t ctl_exec(ctx_t *ctx, const char *const *args)
{
    const char *argv[48] = {PLATFORMCTL_BIN};
    size_t n = 1;
    for (; args[n - 1]; n++) {
        assert_true(n + 1 < sizeof argv / sizeof *argv);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    char proxies[4][128];
    char **envp = child_environ(ctx, proxies);
    int po[2], pe[2];
    assert_int_equal(pipe2(po, O_CLOEXEC), 0);
    assert_int_equal(pipe2(pe, O_CLOEXEC), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int nullfd = open("/dev/null", O_RDONLY);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent || nullfd < 0 ||
            dup2(nullfd, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
            _exit(127);
        close_range(3, ~0U, 0);
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    free(envp);
    close(po[1]);
    close(pe[1]);
    sbuf_t out = {0}, err = {0};
    bool out_eof = false, err_eof = false;
    uint64_t deadline = it_now_ms() + CTL_DEADLINE_MS;
    while (!out_eof || !err_eof) {
        uint64_t now = it_now_ms();
        if (now >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(po[0]);
            close(pe[0]);
            it_fail(ctx->env, "platformctl %s did not finish within %d ms", argv[1] ? argv[1] : "",
                    CTL_DEADLINE_MS);
        }
        struct pollfd fds[2] = {{.fd = out_eof ? -1 : po[0], .events = POLLIN},
                                {.fd = err_eof ? -1 : pe[0], .events = POLLIN}};
        int r = poll(fds, 2, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        assert_true(r >= 0);
        if (!out_eof && fds[0].revents)
            sbuf_read(&out, po[0], &out_eof);
        if (!err_eof && fds[1].revents)
            sbuf_read(&err, pe[0], &err_eof);
    }
    close(po[0]);
    close(pe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    ctl_run_t r = {.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                   .out = out.data ? out.data : strdup(""),
                   .err = err.data ? err.data : strdup("")};
    assert_non_null(r.out);
    assert_non_null(r.err);
    return r;
}

/* platformctl --api <the platform> --token-file <its token> args... */
static ctl_run_t ctl(ctx_t *ctx, ...)
{
    const char *args[40] = {"--api", ctx->api, "--token-file", ctx->token};
    size_t n = 4;
    va_list ap;
    va_start(ap, ctx);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(n + 1 < sizeof args / sizeof *args);
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    return ctl_exec(ctx, args);
}

/* Check the exit code, showing both outputs when it is not the one. */
#define EXPECT_RC(ctx, r, want, what)                                                              \
    IT_CHECK((ctx)->env, (r).rc == (want), "%s: exit %d, want %d\n--- stdout\n%s--- stderr\n%s",   \
             (what), (r).rc, (want), (r).out, (r).err)

#define EXPECT_HAS(ctx, text, needle, what)                                                        \
    IT_CHECK((ctx)->env, strstr((text), (needle)) != NULL, "%s: \"%s\" not in:\n%s", (what),       \
             (needle), (text))

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

static void start_platform(ctx_t *ctx)
{
    it_env_t *env = ctx->env;
    const char *pd_cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, NULL);
    const char *hb_cfg = it_hostbootd_config(env, IT_HOSTBOOT_NAME, NULL);
    it_start_platformd(env, pd_cfg);
    it_start_hostbootd(env, hb_cfg);
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_match_t hb = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &hb, IT_DEADLINE_MS,
                 IT_HOSTBOOT_ID " listed ready");
    snprintf(ctx->api, sizeof ctx->api, "http://127.0.0.1:%d", it_http_port(env));
    snprintf(ctx->token, sizeof ctx->token, "%s/platform-state/api-token", it_dir(env));
}

/* A loopback port nobody listens on (not one of the env's). */
static int dead_port(const it_env_t *env)
{
    for (int i = 0; i < 100; i++) {
        int p = plat_test_free_port();
        if (p > 0 && p != it_http_port(env) && p != it_bus_port(env))
            return p;
    }
    fail_msg("no free port");
    return -1;
}

/* The instance's "state" per GET /api/v1/instances/<uuid> (the harness,
 * not platformctl), into out. */
static void api_state(ctx_t *ctx, const char *uuid, char *out, size_t size)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/instances/%s", uuid);
    json_t *body = it_get_json(ctx->env, path);
    snprintf(out, size, "%s", json_string_value(it_json_path(body, "instance.state")) ?: "(none)");
    json_decref(body);
}

static void test_lifecycle(void **state)
{
    ctx_t ctx = {.env = *state};
    start_platform(&ctx);
    snprintf(ctx.dead_proxy, sizeof ctx.dead_proxy, "http://127.0.0.1:%d", dead_port(ctx.env));

    /* status: table, then --json that parses. */
    ctl_run_t r = ctl(&ctx, "status", NULL);
    EXPECT_RC(&ctx, r, 0, "status");
    EXPECT_HAS(&ctx, r.out, "boot_id", "status");
    EXPECT_HAS(&ctx, r.out, "counts.hostboots", "status");
    run_clear(&r);
    r = ctl(&ctx, "--json", "status", NULL);
    EXPECT_RC(&ctx, r, 0, "status --json");
    json_t *st = json_loads(r.out, 0, NULL);
    IT_CHECK(ctx.env, st && json_is_string(json_object_get(st, "version")),
             "status --json is the API's JSON: %s", r.out);
    json_decref(st);
    run_clear(&r);
    r = ctl(&ctx, "hostboots", NULL);
    EXPECT_RC(&ctx, r, 0, "hostboots");
    EXPECT_HAS(&ctx, r.out, IT_HOSTBOOT_ID, "hostboots");
    run_clear(&r);

    /* Register both hello versions, from a relative path too. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/hello", PLAT_EXAMPLES_DIR);
    r = ctl(&ctx, "package", "register", dir, NULL);
    EXPECT_RC(&ctx, r, 0, "package register hello");
    EXPECT_HAS(&ctx, r.out, "1.0.0", "package register hello");
    run_clear(&r);
    snprintf(dir, sizeof dir, "%s/hello_v2", PLAT_EXAMPLES_DIR);
    r = ctl(&ctx, "package", "register", dir, NULL);
    EXPECT_RC(&ctx, r, 0, "package register hello_v2");
    run_clear(&r);
    r = ctl(&ctx, "packages", NULL);
    EXPECT_RC(&ctx, r, 0, "packages");
    EXPECT_HAS(&ctx, r.out, "2.0.0", "packages");
    run_clear(&r);
    r = ctl(&ctx, "package", "register", "/nonexistent/package-dir", NULL);
    EXPECT_RC(&ctx, r, 2, "package register of a missing dir");
    run_clear(&r);

    /* install → the uuid from --json */
    r = ctl(&ctx, "--json", "install", "hello", "1.0.0", "acme", "--config",
            "{\"greeting_name\":\"ctl\"}", NULL);
    EXPECT_RC(&ctx, r, 0, "install");
    json_t *inst = json_loads(r.out, 0, NULL);
    const char *u = json_string_value(it_json_path(inst, "instance.uuid"));
    IT_CHECK(ctx.env, u != NULL, "install --json names the uuid: %s", r.out);
    char uuid[64];
    snprintf(uuid, sizeof uuid, "%s", u);
    json_decref(inst);
    run_clear(&r);

    r = ctl(&ctx, "enable", uuid, NULL);
    EXPECT_RC(&ctx, r, 0, "enable");
    run_clear(&r);
    r = ctl(&ctx, "start", uuid, NULL);
    EXPECT_RC(&ctx, r, 0, "start");
    EXPECT_HAS(&ctx, r.out, "running", "start");
    run_clear(&r);

    r = ctl(&ctx, "invoke", uuid, NULL);
    EXPECT_RC(&ctx, r, 0, "invoke");
    IT_CHECK(ctx.env, strcmp(r.out, "hello, ctl") == 0, "invoke prints the body raw: \"%s\"",
             r.out);
    run_clear(&r);
    r = ctl(&ctx, "invoke", uuid, "--path", "/greet", "--method", "GET", "--data", "x", NULL);
    EXPECT_RC(&ctx, r, 0, "invoke with options");
    IT_CHECK(ctx.env, strcmp(r.out, "hello, ctl") == 0, "invoke: \"%s\"", r.out);
    run_clear(&r);

    /* The table lists the instance; another org's listing does not. */
    r = ctl(&ctx, "instances", NULL);
    EXPECT_RC(&ctx, r, 0, "instances");
    EXPECT_HAS(&ctx, r.out, "UUID", "instances header");
    EXPECT_HAS(&ctx, r.out, uuid, "instances");
    EXPECT_HAS(&ctx, r.out, "running", "instances");
    run_clear(&r);
    r = ctl(&ctx, "instances", "--org", "other-org", NULL);
    EXPECT_RC(&ctx, r, 0, "instances --org");
    IT_CHECK(ctx.env, strstr(r.out, uuid) == NULL, "--org filters: %s", r.out);
    run_clear(&r);
    r = ctl(&ctx, "instance", "get", uuid, NULL);
    EXPECT_RC(&ctx, r, 0, "instance get");
    EXPECT_HAS(&ctx, r.out, "greeting_name", "instance get");
    run_clear(&r);

    /* Conflict: start a running instance → 5, one error line. */
    r = ctl(&ctx, "start", uuid, NULL);
    EXPECT_RC(&ctx, r, 5, "start of a running instance");
    EXPECT_HAS(&ctx, r.err, "platformctl: 409 ", "start again");
    IT_CHECK(ctx.env, strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "one line: %s", r.err);
    run_clear(&r);

    /* Not found. */
    r = ctl(&ctx, "instance", "get", "0b7e1a52-3c1f-4d7a-9a41-6f1e2d3c4b5a", NULL);
    EXPECT_RC(&ctx, r, 4, "get of an unknown uuid");
    EXPECT_HAS(&ctx, r.err, "platformctl: 404 not_found: ", "get of an unknown uuid");
    run_clear(&r);

    /* Unauthorized: a wrong token, and a token file that is not there; the
     * instance is untouched. */
    const char *bad = it_write_file(ctx.env, "wrong-token", "0123456789abcdef0123456789abcdef\n");
    const char *args_bad[] = {"--api", ctx.api, "--token-file", bad, "stop", uuid, NULL};
    r = ctl_exec(&ctx, args_bad);
    EXPECT_RC(&ctx, r, 6, "wrong token");
    EXPECT_HAS(&ctx, r.err, "platformctl: 401 unauthorized", "wrong token");
    run_clear(&r);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no-such-token", it_dir(ctx.env));
    const char *args_missing[] = {"--api", ctx.api, "--token-file", missing, "stop", uuid, NULL};
    r = ctl_exec(&ctx, args_missing);
    EXPECT_RC(&ctx, r, 6, "missing token file");
    EXPECT_HAS(&ctx, r.err, missing, "the message names the token file");
    run_clear(&r);
    char st_now[32];
    api_state(&ctx, uuid, st_now, sizeof st_now);
    IT_CHECK(ctx.env, strcmp(st_now, "running") == 0, "still running: %s", st_now);

    /* Reads need no token. */
    const char *args_read[] = {"--api", ctx.api, "--token-file", missing, "instances", NULL};
    r = ctl_exec(&ctx, args_read);
    EXPECT_RC(&ctx, r, 0, "a read without a token file");
    run_clear(&r);

    /* Unreachable API. */
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", dead_port(ctx.env));
    const char *args_dead[] = {"--api", dead, "status", NULL};
    r = ctl_exec(&ctx, args_dead);
    EXPECT_RC(&ctx, r, 3, "unreachable API");
    EXPECT_HAS(&ctx, r.err, "cannot reach the API", "unreachable API");
    run_clear(&r);

    /* Usage errors. */
    const char *const *usage_cases[] = {
        (const char *const[]){NULL},
        (const char *const[]){"frobnicate", NULL},
        (const char *const[]){"start", NULL},
        (const char *const[]){"host", NULL},
        (const char *const[]){"status", "--mode", "x", NULL},
        (const char *const[]){"--timeout", "soon", "status", NULL},
        (const char *const[]){"--bogus", "status", NULL},
        (const char *const[]){"install", "hello", "1.0.0", "acme", "--config", "[1]", NULL},
        (const char *const[]){"org", "acme", "upgrade", NULL},
    };
    for (size_t i = 0; i < sizeof usage_cases / sizeof *usage_cases; i++) {
        r = ctl_exec(&ctx, usage_cases[i]);
        EXPECT_RC(&ctx, r, 2, usage_cases[i][0] ? usage_cases[i][0] : "(no arguments)");
        EXPECT_HAS(&ctx, r.err, "platformctl: ", "usage error");
        run_clear(&r);
    }
    const char *args_help[] = {"--help", NULL};
    r = ctl_exec(&ctx, args_help);
    EXPECT_RC(&ctx, r, 0, "--help");
    EXPECT_HAS(&ctx, r.out, "Exit codes", "--help");
    run_clear(&r);

    /* Upgrade to 2.0.0: the new code answers. */
    r = ctl(&ctx, "upgrade", uuid, "2.0.0", NULL);
    EXPECT_RC(&ctx, r, 0, "upgrade");
    EXPECT_HAS(&ctx, r.out, "2.0.0", "upgrade");
    run_clear(&r);
    r = ctl(&ctx, "invoke", uuid, NULL);
    EXPECT_RC(&ctx, r, 0, "invoke after upgrade");
    IT_CHECK(ctx.env, strncmp(r.out, "hello v2", 8) == 0, "v2 answers: \"%s\"", r.out);
    run_clear(&r);
    r = ctl(&ctx, "instance", "actions", uuid, NULL);
    EXPECT_RC(&ctx, r, 0, "instance actions");
    EXPECT_HAS(&ctx, r.out, "upgrade", "instance actions");
    run_clear(&r);

    /* Org batch: stop works, stopping again fails per instance → 1. */
    r = ctl(&ctx, "org", "acme", "stop", NULL);
    EXPECT_RC(&ctx, r, 0, "org stop");
    EXPECT_HAS(&ctx, r.out, uuid, "org stop");
    run_clear(&r);
    r = ctl(&ctx, "org", "acme", "stop", NULL);
    EXPECT_RC(&ctx, r, 1, "org stop of stopped instances");
    run_clear(&r);

    /* Uninstall: gone. */
    r = ctl(&ctx, "uninstall", uuid, NULL);
    EXPECT_RC(&ctx, r, 0, "uninstall");
    EXPECT_HAS(&ctx, r.out, "removed", "uninstall");
    run_clear(&r);
    r = ctl(&ctx, "instance", "get", uuid, NULL);
    EXPECT_RC(&ctx, r, 4, "get after uninstall");
    run_clear(&r);
    r = ctl(&ctx, "invoke", uuid, NULL);
    EXPECT_RC(&ctx, r, 4, "invoke after uninstall");
    run_clear(&r);
}

/* The same life for a Python plugin, platformctl alone: examples/notes-py
 * 1.0.0 (language python, run by pluginhost-py) registered, installed,
 * enabled and started; an invoke writes a row into the instance's DB and
 * another reads it back; an upgrade to 1.1.0 (pyplugins/notes_v2, whose
 * upgrade hook records where it came from) keeps the row; stop, uninstall. */
static void test_python_lifecycle(void **state)
{
    ctx_t ctx = {.env = *state};
    start_platform(&ctx);
    snprintf(ctx.dead_proxy, sizeof ctx.dead_proxy, "http://127.0.0.1:%d", dead_port(ctx.env));

    char dir[512];
    snprintf(dir, sizeof dir, "%s/notes-py", PLAT_EXAMPLES_DIR);
    ctl_run_t r = ctl(&ctx, "--json", "package", "register", dir, NULL);
    EXPECT_RC(&ctx, r, 0, "package register notes-py");
    json_t *pkg = json_loads(r.out, 0, NULL);
    const char *lang = json_string_value(it_json_path(pkg, "package.language"));
    const char *ver = json_string_value(it_json_path(pkg, "package.version"));
    IT_CHECK(ctx.env, lang && strcmp(lang, "python") == 0 && ver && strcmp(ver, "1.0.0") == 0,
             "notes-py 1.0.0 registered as python: %s", r.out);
    json_decref(pkg);
    run_clear(&r);
    snprintf(dir, sizeof dir, "%s/notes_v2", PYPLUGINS_DIR);
    r = ctl(&ctx, "package", "register", dir, NULL);
    EXPECT_RC(&ctx, r, 0, "package register notes_v2");
    EXPECT_HAS(&ctx, r.out, "1.1.0", "package register notes_v2");
    run_clear(&r);
    r = ctl(&ctx, "packages", NULL);
    EXPECT_RC(&ctx, r, 0, "packages");
    EXPECT_HAS(&ctx, r.out, "notes-py", "packages");
    EXPECT_HAS(&ctx, r.out, "1.1.0", "packages");
    EXPECT_HAS(&ctx, r.out, "python", "packages");
    run_clear(&r);

    r = ctl(&ctx, "--json", "install", "notes-py", "1.0.0", "acme-py", NULL);
    EXPECT_RC(&ctx, r, 0, "install notes-py");
    json_t *inst = json_loads(r.out, 0, NULL);
    const char *u = json_string_value(it_json_path(inst, "instance.uuid"));
    IT_CHECK(ctx.env, u != NULL, "install --json names the uuid: %s", r.out);
    char uuid[64];
    snprintf(uuid, sizeof uuid, "%s", u);
    json_decref(inst);
    run_clear(&r);

    r = ctl(&ctx, "enable", uuid, NULL);
    EXPECT_RC(&ctx, r, 0, "enable notes-py");
    run_clear(&r);
    r = ctl(&ctx, "start", uuid, NULL);
    EXPECT_RC(&ctx, r, 0, "start notes-py");
    EXPECT_HAS(&ctx, r.out, "running", "start notes-py");
    run_clear(&r);

    /* A row written by one invoke, read back by another. */
    r = ctl(&ctx, "invoke", uuid, "--path", "/add", "--data", "buy milk", NULL);
    EXPECT_RC(&ctx, r, 0, "invoke /add");
    IT_CHECK(ctx.env, strcmp(r.out, "{\"id\": 1}") == 0, "/add answers the row id: \"%s\"", r.out);
    run_clear(&r);
    r = ctl(&ctx, "invoke", uuid, "--path", "/get/1", "--method", "GET", NULL);
    EXPECT_RC(&ctx, r, 0, "invoke /get/1");
    IT_CHECK(ctx.env, strcmp(r.out, "buy milk") == 0, "/get/1 reads the row: \"%s\"", r.out);
    run_clear(&r);
    /* The plugin's own non-2xx answer: printed raw, exit 1. 1.0.0 has no
     * /meta (1.1.0 adds it). */
    r = ctl(&ctx, "invoke", uuid, "--path", "/meta/upgraded_from", NULL);
    EXPECT_RC(&ctx, r, 1, "invoke of a path 1.0.0 lacks");
    EXPECT_HAS(&ctx, r.out, "unknown path", "invoke of a path 1.0.0 lacks");
    EXPECT_HAS(&ctx, r.err, "the plugin answered 404", "invoke of a path 1.0.0 lacks");
    run_clear(&r);

    /* Upgrade to 1.1.0: the new code answers, the row is still there and
     * the upgrade hook ran (it recorded 1.0.0 in its DB). */
    r = ctl(&ctx, "upgrade", uuid, "1.1.0", NULL);
    EXPECT_RC(&ctx, r, 0, "upgrade notes-py");
    EXPECT_HAS(&ctx, r.out, "1.1.0", "upgrade notes-py");
    run_clear(&r);
    r = ctl(&ctx, "invoke", uuid, "--path", "/version", NULL);
    EXPECT_RC(&ctx, r, 0, "invoke /version after upgrade");
    IT_CHECK(ctx.env, strcmp(r.out, "notes-py 1.1.0") == 0, "1.1.0 answers: \"%s\"", r.out);
    run_clear(&r);
    r = ctl(&ctx, "invoke", uuid, "--path", "/get/1", NULL);
    EXPECT_RC(&ctx, r, 0, "invoke /get/1 after upgrade");
    IT_CHECK(ctx.env, strcmp(r.out, "buy milk") == 0, "the row survived the upgrade: \"%s\"",
             r.out);
    run_clear(&r);
    r = ctl(&ctx, "invoke", uuid, "--path", "/meta/upgraded_from", NULL);
    EXPECT_RC(&ctx, r, 0, "invoke /meta/upgraded_from");
    IT_CHECK(ctx.env, strcmp(r.out, "1.0.0") == 0, "the upgrade hook ran from 1.0.0: \"%s\"",
             r.out);
    run_clear(&r);
    r = ctl(&ctx, "invoke", uuid, "--path", "/add", "--data", "call Ada", NULL);
    EXPECT_RC(&ctx, r, 0, "invoke /add after upgrade");
    IT_CHECK(ctx.env, strcmp(r.out, "{\"id\": 2}") == 0, "/add after upgrade: \"%s\"", r.out);
    run_clear(&r);
    r = ctl(&ctx, "invoke", uuid, "--path", "/count", NULL);
    EXPECT_RC(&ctx, r, 0, "invoke /count");
    IT_CHECK(ctx.env, strcmp(r.out, "{\"count\": 2}") == 0, "/count: \"%s\"", r.out);
    run_clear(&r);
    r = ctl(&ctx, "instance", "get", uuid, NULL);
    EXPECT_RC(&ctx, r, 0, "instance get after upgrade");
    EXPECT_HAS(&ctx, r.out, "1.1.0", "instance get after upgrade");
    run_clear(&r);

    /* Stop: stopped; stopping again is a conflict. */
    r = ctl(&ctx, "stop", uuid, NULL);
    EXPECT_RC(&ctx, r, 0, "stop notes-py");
    EXPECT_HAS(&ctx, r.out, "stopped", "stop notes-py");
    run_clear(&r);
    r = ctl(&ctx, "stop", uuid, NULL);
    EXPECT_RC(&ctx, r, 5, "stop of a stopped notes-py");
    run_clear(&r);
    char st_now[32];
    api_state(&ctx, uuid, st_now, sizeof st_now);
    IT_CHECK(ctx.env, strcmp(st_now, "stopped") == 0, "stopped: %s", st_now);

    /* Uninstall: gone. */
    r = ctl(&ctx, "uninstall", uuid, NULL);
    EXPECT_RC(&ctx, r, 0, "uninstall notes-py");
    EXPECT_HAS(&ctx, r.out, "removed", "uninstall notes-py");
    run_clear(&r);
    r = ctl(&ctx, "instance", "get", uuid, NULL);
    EXPECT_RC(&ctx, r, 4, "get after uninstall");
    run_clear(&r);
    r = ctl(&ctx, "invoke", uuid, "--path", "/get/1", NULL);
    EXPECT_RC(&ctx, r, 4, "invoke after uninstall");
    run_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_python_lifecycle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
