/* bench_lifecycle: how long plugin instance actions take through the API
 * (issue 4; docs/performance.md). A benchmark, not a test.
 *
 *   1. highPerformance: N instances of the example `hello` 1.0.0, one after
 *      the other: install, enable (untimed), then timed: start, stop, start
 *      again. Each action is one POST that answers 200 when it is done, so
 *      the client-side time is API call -> done. Every instance stays
 *      running.
 *   2. invoke: M round trips POST /api/v1/instances/{uuid}/invoke?path=/ on
 *      one running instance (answer checked: 200 "hello, world"), and as
 *      many GET /healthz for the HTTP floor.
 *   3. org batch: for each size S (10, 100, 1000): an org of S instances of
 *      `hello-ps` (the hello package with id "hello-ps" and host_mode
 *      powerSave), installed and enabled one by one (untimed), then timed:
 *      POST /api/v1/orgs/{org}/start (the hosts left by install+enable are
 *      up), stop; every host deleted; start again (no host up), stop; every
 *      host deleted before the next size.
 *
 * platformd runs with plugins.max_instances_per_host, batch_concurrency and
 * idle_ms from the options. Everything started is killed by PID on every
 * exit path (benchlib). Exit status 0 on success, 1 on any failure (message
 * on stderr), 2 on usage. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "benchlib.h"

#define ACTION_TIMEOUT_MS 60000 /* one instance action */
#define ORG_TIMEOUT_MS 900000   /* one org batch action */
#define HOSTS_GONE_MS 60000     /* every host exited */
#define ORGS_MAX 8
#define UUID_MAX 64

#define HP_PLUGIN "hello"
#define HP_VERSION "1.0.0"
#define HP_ORG "bench-hp"
#define PS_PLUGIN "hello-ps"
#define INVOKE_ANSWER "hello, world"

typedef struct {
    const char *platformd, *hostbootd, *pluginhost, *examples;
    int instances;      /* highPerformance instances */
    int invokes;        /* timed invokes */
    int warmup;         /* unmeasured invokes first */
    int orgs[ORGS_MAX]; /* org sizes */
    size_t n_orgs;
    int max_per_host, concurrency, idle_ms;
    bool cold;             /* also the start with no host up */
    const char *log_level; /* of the daemons */
    bool keep;
} opts_t;

/* ---- API helpers ------------------------------------------------------------------ */

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key)) ?: "";
}

/* POST an instance, return its uuid; it must answer 201 "installed". */
static void install(const char *plugin, const char *version, const char *org, char *uuid,
                    size_t size)
{
    json_t *req = json_pack("{s:s, s:s, s:s}", "plugin", plugin, "version", version, "org", org);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_t *r = bench_http_must("POST", "/api/v1/instances", body, 201, ACTION_TIMEOUT_MS);
    free(body);
    json_t *in = json_object_get(r, "instance");
    if (strcmp(jstr(in, "state"), "installed") != 0 || !*jstr(in, "uuid") ||
        strlen(jstr(in, "uuid")) >= size)
        bench_fail("install %s %s: answered 201 without an installed instance", plugin, version);
    snprintf(uuid, size, "%s", jstr(in, "uuid"));
    json_decref(r);
}

/* One action on one instance; returns its time (ms, POST -> 200) and the
 * instance's host afterwards in host (may be ""). */
static double act(const char *uuid, const char *action, const char *want_state, char *host,
                  size_t host_size)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s/%s", uuid, action);
    bench_check_alive();
    uint64_t t0 = bench_now_ns();
    json_t *r = bench_http_must("POST", path, "{}", 200, ACTION_TIMEOUT_MS);
    double ms = bench_ms_since(t0);
    json_t *in = json_object_get(r, "instance");
    if (strcmp(jstr(in, "state"), want_state) != 0)
        bench_fail("%s %s: answered 200 with state \"%s\", not \"%s\"", action, uuid,
                   jstr(in, "state"), want_state);
    if (host)
        snprintf(host, host_size, "%s", jstr(in, "host"));
    json_decref(r);
    return ms;
}

/* Hosts not (yet) ended, and optionally their ids. */
static size_t live_hosts(char (*ids)[UUID_MAX], size_t max)
{
    json_t *r = bench_http_must("GET", "/api/v1/hosts", NULL, 200, 0);
    size_t i, n = 0;
    json_t *h;
    json_array_foreach(json_object_get(r, "hosts"), i, h)
    {
        const char *st = jstr(h, "state");
        if (strcmp(st, "exited") == 0 || strcmp(st, "failed") == 0)
            continue;
        if (ids && n < max)
            snprintf(ids[n], UUID_MAX, "%s", jstr(h, "id"));
        n++;
    }
    json_decref(r);
    return n;
}

/* Poll until no host is live (after deleting them, or a highPerformance
 * stop that kills them). */
static void await_no_hosts(void)
{
    uint64_t t0 = bench_now_ns();
    size_t n;
    while ((n = live_hosts(NULL, 0)) > 0) {
        bench_check_alive();
        if (bench_ms_since(t0) > HOSTS_GONE_MS)
            bench_fail("%zu hosts still live %d ms after they were stopped; see %s", n,
                       HOSTS_GONE_MS, bench_hostbootd_log());
        bench_sleep_ms(10);
    }
}

/* DELETE every live host and wait until all have exited. */
static void delete_all_hosts(void)
{
    enum { MAX = 4096 };
    static char ids[MAX][UUID_MAX];
    size_t n = live_hosts(ids, MAX);
    for (size_t i = 0; i < n && i < MAX; i++) {
        char path[160];
        snprintf(path, sizeof path, "/api/v1/hosts/%s", ids[i]);
        bench_reply_t r;
        long st = bench_request("DELETE", path, NULL, 0, &r);
        bench_reply_clear(&r);
        /* 404/409: it ended meanwhile */
        if (st != 202 && st != 404 && st != 409)
            bench_fail("%s", r.err);
    }
    await_no_hosts();
}

/* ---- packages -------------------------------------------------------------------------- */

/* "<a>/<b>" into buf; fails when it does not fit. */
static void join(char *buf, size_t size, const char *a, const char *b)
{
    int n = snprintf(buf, size, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= size)
        bench_fail("path too long: %s/%s", a, b);
}

static void register_package(const char *dir)
{
    json_t *req = json_pack("{s:s}", "path", dir);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_decref(bench_http_must("POST", "/api/v1/packages", body, 201, ACTION_TIMEOUT_MS));
    free(body);
}

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (in < 0 || out < 0)
        bench_fail("copy %s to %s: %s", from, to, strerror(errno));
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n)
            bench_fail("write %s: %s", to, strerror(errno));
    if (n < 0)
        bench_fail("read %s: %s", from, strerror(errno));
    close(in);
    if (close(out) != 0)
        bench_fail("close %s: %s", to, strerror(errno));
}

/* The hello package as "hello-ps" in powerSave mode: its manifest with id
 * and host_mode rewritten, its shared object copied. Returns the dir. */
static void make_powersave_package(const char *hello_dir, char *out, size_t size)
{
    char path[PATH_MAX], to[PATH_MAX];
    join(out, size, bench_dir(), PS_PLUGIN);
    if (mkdir(out, 0755) != 0)
        bench_fail("mkdir %s: %s", out, strerror(errno));
    join(path, sizeof path, hello_dir, "manifest.json");
    json_error_t err;
    json_t *m = json_load_file(path, 0, &err);
    if (!m || !json_is_string(json_object_get(m, "entry")))
        bench_fail("%s: %s", path, m ? "no \"entry\"" : err.text);
    json_object_set_new(m, "id", json_string(PS_PLUGIN));
    json_object_set_new(m, "host_mode", json_string("powerSave"));
    join(path, sizeof path, hello_dir, jstr(m, "entry"));
    join(to, sizeof to, out, jstr(m, "entry"));
    copy_file(path, to);
    join(to, sizeof to, out, "manifest.json");
    if (json_dump_file(m, to, JSON_INDENT(2)) != 0)
        bench_fail("cannot write %s", to);
    json_decref(m);
}

/* ---- 1. highPerformance start ---------------------------------------------------------- */

typedef struct {
    double *start, *stop, *restart; /* ms, one per instance */
    int reused;                     /* first start ran on the host kept from enable */
    char invoke_uuid[UUID_MAX];     /* the warm-up instance, running */
    size_t hosts_running;           /* live hosts with every instance running */
} hp_t;

static void run_hp(const opts_t *o, hp_t *hp)
{
    char uuid[UUID_MAX], host_enable[UUID_MAX], host_start[UUID_MAX];
    /* One unmeasured instance first; it stays as the invoke target. */
    install(HP_PLUGIN, HP_VERSION, HP_ORG, hp->invoke_uuid, sizeof hp->invoke_uuid);
    act(hp->invoke_uuid, "enable", "enabled", NULL, 0);
    act(hp->invoke_uuid, "start", "running", NULL, 0);
    act(hp->invoke_uuid, "stop", "stopped", NULL, 0);
    act(hp->invoke_uuid, "start", "running", NULL, 0);
    for (int i = 0; i < o->instances; i++) {
        install(HP_PLUGIN, HP_VERSION, HP_ORG, uuid, sizeof uuid);
        act(uuid, "enable", "enabled", host_enable, sizeof host_enable);
        hp->start[i] = act(uuid, "start", "running", host_start, sizeof host_start);
        hp->reused += host_enable[0] && strcmp(host_enable, host_start) == 0;
        hp->stop[i] = act(uuid, "stop", "stopped", NULL, 0);
        hp->restart[i] = act(uuid, "start", "running", NULL, 0);
    }
    hp->hosts_running = live_hosts(NULL, 0);
}

/* ---- 2. invoke ----------------------------------------------------------------------------- */

static void run_invokes(const opts_t *o, const char *uuid, double *invoke, double *healthz)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s/invoke?path=/", uuid);
    for (int i = -o->warmup; i < o->invokes; i++) {
        if (i % 64 == 0)
            bench_check_alive();
        bench_reply_t r;
        uint64_t t0 = bench_now_ns();
        long st = bench_request("POST", path, NULL, 0, &r);
        double ms = bench_ms_since(t0);
        bool ok = st == 200 && r.body && strcmp(r.body, INVOKE_ANSWER) == 0;
        bench_reply_clear(&r);
        if (!ok)
            bench_fail("%s (wanted 200 \"%s\")", r.err, INVOKE_ANSWER);
        if (i >= 0)
            invoke[i] = ms;
    }
    for (int i = -o->warmup; i < o->invokes; i++) {
        bench_reply_t r;
        uint64_t t0 = bench_now_ns();
        long st = bench_request("GET", "/healthz", NULL, 0, &r);
        double ms = bench_ms_since(t0);
        bench_reply_clear(&r);
        if (st != 200)
            bench_fail("%s", r.err);
        if (i >= 0)
            healthz[i] = ms;
    }
}

/* ---- 3. org batches -------------------------------------------------------------------- */

typedef struct {
    double ms;     /* POST -> 200 */
    double pd_cpu; /* platformd CPU ms meanwhile */
    size_t hosts;  /* live hosts right after */
    int failed;    /* instances the action failed on */
} org_step_t;

/* Instance actions that failed inside org batches: the run goes on (the
 * figures are printed, marked), the exit status is 1 and the logs kept. */
static int g_failed;
static char g_first_failure[512];

typedef struct {
    int size;
    double setup_ms; /* install + enable of every instance, one by one */
    size_t setup_hosts;
    org_step_t start_up, stop_up, start_cold, stop_cold;
} org_run_t;

static org_step_t org_action(const char *org, const char *action, int size, const char *want)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/orgs/%s/%s", org, action);
    bench_check_alive();
    org_step_t s = {0};
    double cpu0 = bench_proc_cpu_ms(bench_platformd_pid());
    uint64_t t0 = bench_now_ns();
    json_t *r = bench_http_must("POST", path, "{}", 200, ORG_TIMEOUT_MS);
    s.ms = bench_ms_since(t0);
    s.pd_cpu = bench_proc_cpu_ms(bench_platformd_pid()) - cpu0;
    json_int_t total = json_integer_value(json_object_get(r, "total"));
    json_t *results = json_object_get(r, "results");
    if (total != size || json_array_size(results) != (size_t)size)
        bench_fail("org %s %s: %lld instances in the answer, %d expected", org, action,
                   (long long)total, size);
    size_t i;
    json_t *it;
    json_array_foreach(results, i, it)
    {
        if (!json_is_true(json_object_get(it, "ok"))) {
            if (!g_failed++)
                snprintf(g_first_failure, sizeof g_first_failure, "org %s %s: instance %s: %s", org,
                         action, jstr(it, "uuid"), jstr(it, "error"));
            s.failed++;
        } else if (strcmp(jstr(it, "state"), want) != 0) {
            bench_fail("org %s %s: instance %s is \"%s\", not \"%s\"", org, action,
                       jstr(it, "uuid"), jstr(it, "state"), want);
        }
    }
    if (s.failed)
        fprintf(stderr, "bench: org %s %s: %d of %d instances failed (first: %s)\n", org, action,
                s.failed, size, g_first_failure);
    json_decref(r);
    s.hosts = live_hosts(NULL, 0);
    return s;
}

static void run_org(const opts_t *o, org_run_t *run)
{
    char org[64], uuid[UUID_MAX];
    snprintf(org, sizeof org, "bench-ps-%d", run->size);
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < run->size; i++) {
        install(PS_PLUGIN, HP_VERSION, org, uuid, sizeof uuid);
        act(uuid, "enable", "enabled", NULL, 0);
    }
    run->setup_ms = bench_ms_since(t0);
    run->setup_hosts = live_hosts(NULL, 0);
    run->start_up = org_action(org, "start", run->size, "running");
    run->stop_up = org_action(org, "stop", run->size, "stopped");
    delete_all_hosts();
    if (o->cold) {
        run->start_cold = org_action(org, "start", run->size, "running");
        run->stop_cold = org_action(org, "stop", run->size, "stopped");
        delete_all_hosts();
    }
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_lifecycle [--instances N] [--invokes N] [--warmup N] [--orgs LIST]\n"
            "                       [--max-per-host N] [--batch-concurrency N] [--idle-ms N]\n"
            "                       [--no-cold] [--log-level L] [--keep] [--platformd BIN]\n"
            "                       [--hostbootd BIN] [--pluginhost BIN] [--examples DIR]\n"
            "  --instances N          highPerformance instances started (default 50; 0: skip)\n"
            "  --invokes N            invoke round trips on one instance (default 1000; 0: skip)\n"
            "  --warmup N             unmeasured invokes / healthz first (default 20)\n"
            "  --orgs LIST            org sizes, comma-separated (default 10,100,1000; 0: none)\n"
            "  --max-per-host N       plugins.max_instances_per_host (default 50)\n"
            "  --batch-concurrency N  plugins.batch_concurrency (default 32)\n"
            "  --idle-ms N            plugins.idle_ms (default 600000: no reaping during the run)\n"
            "  --no-cold              skip the org start with no host up\n"
            "  --log-level L          the daemons' log level (default warning; info/debug slow\n"
            "                         them down)\n"
            "  --keep                 keep the temp dir (configs, state, daemon and host logs)\n"
            "  --examples DIR         built example packages (default: this build's)\n"
            "  binaries default to the ones of this build tree\n");
}

static void parse_orgs(const char *s, opts_t *o)
{
    o->n_orgs = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int v = bench_int_arg(t, 0, 100000, usage);
        if (v == 0)
            continue;
        if (o->n_orgs == ORGS_MAX) {
            fprintf(stderr, "bench: at most %d org sizes\n", ORGS_MAX);
            exit(2);
        }
        o->orgs[o->n_orgs++] = v;
    }
}

static void print_step(const char *label, int size, org_step_t s)
{
    printf("  %-36s %9d %6zu %10.1f %10.2f %10.0f", label, size, s.hosts, s.ms, s.ms / size,
           s.pd_cpu);
    if (s.failed)
        printf("   %d FAILED", s.failed);
    putchar('\n');
}

int main(int argc, char **argv)
{
    opts_t o = {.platformd = BENCH_PLATFORMD_BIN,
                .hostbootd = BENCH_HOSTBOOTD_BIN,
                .pluginhost = BENCH_PLUGINHOST_BIN,
                .examples = BENCH_EXAMPLES_DIR,
                .instances = 50,
                .invokes = 1000,
                .warmup = 20,
                .orgs = {10, 100, 1000},
                .n_orgs = 3,
                .max_per_host = 50,
                .concurrency = 32,
                .idle_ms = 600000,
                .cold = true,
                .log_level = "warning"};
    static const struct option opts[] = {
        {"instances", required_argument, NULL, 'n'},
        {"invokes", required_argument, NULL, 'i'},
        {"warmup", required_argument, NULL, 'w'},
        {"orgs", required_argument, NULL, 'o'},
        {"max-per-host", required_argument, NULL, 'm'},
        {"batch-concurrency", required_argument, NULL, 'c'},
        {"idle-ms", required_argument, NULL, 'I'},
        {"no-cold", no_argument, NULL, 'C'},
        {"log-level", required_argument, NULL, 'L'},
        {"keep", no_argument, NULL, 'k'},
        {"platformd", required_argument, NULL, 'P'},
        {"hostbootd", required_argument, NULL, 'H'},
        {"pluginhost", required_argument, NULL, 'E'},
        {"examples", required_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.instances = bench_int_arg(optarg, 0, 5000, usage);
            break;
        case 'i':
            o.invokes = bench_int_arg(optarg, 0, 10000000, usage);
            break;
        case 'w':
            o.warmup = bench_int_arg(optarg, 0, 100000, usage);
            break;
        case 'o':
            parse_orgs(optarg, &o);
            break;
        case 'm':
            o.max_per_host = bench_int_arg(optarg, 1, 10000, usage);
            break;
        case 'c':
            o.concurrency = bench_int_arg(optarg, 1, 1024, usage);
            break;
        case 'I':
            o.idle_ms = bench_int_arg(optarg, 0, 86400000, usage);
            break;
        case 'C':
            o.cold = false;
            break;
        case 'L':
            o.log_level = optarg;
            break;
        case 'k':
            o.keep = true;
            break;
        case 'P':
            o.platformd = optarg;
            break;
        case 'H':
            o.hostbootd = optarg;
            break;
        case 'E':
            o.pluginhost = optarg;
            break;
        case 'X':
            o.examples = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    const char *bins[] = {o.platformd, o.hostbootd, o.pluginhost};
    for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++)
        if (access(bins[i], X_OK) != 0) {
            fprintf(stderr, "bench: error: %s is not executable: %s\n", bins[i], strerror(errno));
            return 1;
        }
    char hello_dir[PATH_MAX], probe[PATH_MAX];
    int n1 = snprintf(hello_dir, sizeof hello_dir, "%s/%s", o.examples, HP_PLUGIN);
    int n2 = snprintf(probe, sizeof probe, "%s/manifest.json", hello_dir);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof hello_dir || (size_t)n2 >= sizeof probe) {
        fprintf(stderr, "bench: error: --examples path too long\n");
        return 1;
    }
    if (access(probe, R_OK) != 0) {
        fprintf(stderr, "bench: error: no built hello package: %s: %s\n", probe, strerror(errno));
        return 1;
    }
    bench_init(o.keep);

    hp_t hp = {0};
    size_t nhp = o.instances > 0 ? (size_t)o.instances : 1;
    size_t ninv = o.invokes > 0 ? (size_t)o.invokes : 1;
    hp.start = calloc(nhp, sizeof(double));
    hp.stop = calloc(nhp, sizeof(double));
    hp.restart = calloc(nhp, sizeof(double));
    double *invoke = calloc(ninv, sizeof(double)), *healthz = calloc(ninv, sizeof(double));
    org_run_t runs[ORGS_MAX] = {0};
    if (!hp.start || !hp.stop || !hp.restart || !invoke || !healthz)
        bench_fail("out of memory");

    struct utsname u;
    uname(&u);
    char load0[64], load1[64];
    bench_loadavg(load0, sizeof load0);
    printf("bench_lifecycle: %s %s %s, %ld CPUs, load average %s\n", u.sysname, u.release,
           u.machine, sysconf(_SC_NPROCESSORS_ONLN), load0);
    printf("bench_lifecycle: %s %s highPerformance x %d (+1 warm-up); %d invokes (+%d warm-up);"
           " %s powerSave orgs of",
           HP_PLUGIN, HP_VERSION, o.instances, o.invokes, o.warmup, PS_PLUGIN);
    for (size_t i = 0; i < o.n_orgs; i++)
        printf(" %d", o.orgs[i]);
    printf(" (max_instances_per_host %d, batch_concurrency %d, idle_ms %d; bus with CURVE)\n",
           o.max_per_host, o.concurrency, o.idle_ms);
    fflush(stdout);

    uint64_t t_all = bench_now_ns();
    bench_platform_t p = {
        .platformd = o.platformd,
        .hostbootd = o.hostbootd,
        .pluginhost = o.pluginhost,
        .log_level = o.log_level,
        .platformd_extra =
            json_pack("{s:{s:i, s:i, s:i}}", "plugins", "max_instances_per_host", o.max_per_host,
                      "batch_concurrency", o.concurrency, "idle_ms", o.idle_ms),
    };
    bench_platform_start(&p);
    char ps_dir[PATH_MAX];
    make_powersave_package(hello_dir, ps_dir, sizeof ps_dir);
    register_package(hello_dir);
    register_package(ps_dir);

    double hp_s = 0, hp_stop_ms = 0;
    if (o.instances > 0 || o.invokes > 0) {
        uint64_t t0 = bench_now_ns();
        run_hp(&o, &hp);
        if (o.invokes > 0)
            run_invokes(&o, hp.invoke_uuid, invoke, healthz);
        hp_s = bench_ms_since(t0) / 1000;
        org_step_t s = org_action(HP_ORG, "stop", o.instances + 1, "stopped");
        hp_stop_ms = s.ms;
        await_no_hosts();
    }
    for (size_t i = 0; i < o.n_orgs; i++) {
        runs[i].size = o.orgs[i];
        run_org(&o, &runs[i]);
    }
    double all_s = bench_ms_since(t_all) / 1000;
    bench_cleanup(g_failed == 0); /* keeps the logs when anything failed */

    if (o.instances > 0) {
        size_t n = (size_t)o.instances;
        printf(
            "\nhighPerformance %s, API call -> 200 (ms)              n   median      p99     mean"
            "      min      max\n",
            HP_PLUGIN);
        bench_print_stats("start (after enable, on its host)", bench_stats_of(hp.start, n));
        bench_print_stats("stop (host killed)", bench_stats_of(hp.stop, n));
        bench_print_stats("start again (new host spawned)", bench_stats_of(hp.restart, n));
        printf("  the first start ran on the host kept from enable: %d of %d; live hosts with "
               "all %d running: %zu\n",
               hp.reused, o.instances, o.instances + 1, hp.hosts_running);
    }
    if (o.invokes > 0) {
        printf("\nround trip (ms)                                      n   median      p99     mean"
               "      min      max\n");
        bench_print_stats("POST .../invoke?path=/ (hello, running)",
                          bench_stats_of(invoke, (size_t)o.invokes));
        bench_print_stats("GET /healthz (HTTP alone)", bench_stats_of(healthz, (size_t)o.invokes));
    }
    if (o.n_orgs) {
        printf("\norg batch actions, %s powerSave     instances  hosts   total ms  per inst ms"
               "  platformd CPU ms\n",
               PS_PLUGIN);
        for (size_t i = 0; i < o.n_orgs; i++) {
            const org_run_t *r = &runs[i];
            printf("  %-36s %9d %6zu %10.1f %10.2f\n", "install + enable, one by one", r->size,
                   r->setup_hosts, r->setup_ms, r->setup_ms / r->size);
            print_step("start (hosts up from install)", r->size, r->start_up);
            print_step("stop", r->size, r->stop_up);
            if (o.cold) {
                print_step("start (no host up)", r->size, r->start_cold);
                print_step("stop", r->size, r->stop_cold);
            }
        }
    }
    bench_loadavg(load1, sizeof load1);
    printf("\nwall time: %.1f s (highPerformance + invoke %.1f s, their org stop %.0f ms); load "
           "average at the end %s\n",
           all_s, hp_s, hp_stop_ms, load1);

    free(hp.start);
    free(hp.stop);
    free(hp.restart);
    free(invoke);
    free(healthz);
    if (g_failed) {
        fprintf(stderr,
                "bench: error: %d instance actions failed in org batches (figures "
                "above marked FAILED); first: %s\n",
                g_failed, g_first_failure);
        return 1;
    }
    return 0;
}
