/* bench_spawn: spawn-to-ready time of plugin hosts through the platform,
 * against a bare fork/exec baseline, plus the memory an idle host costs.
 * A benchmark, not a test (issue 3; docs/performance.md).
 *
 *   1. baseline: a ROUTER on a free loopback port, a CURVE server as the
 *      platform's bus is (unless --plain-baseline); N times fork + exec
 *      bench_minimal (connects a DEALER, as a CURVE client with a key pair
 *      of its own, sends its pid, exits) and time fork -> message received.
 *   2. platform: platformd + hostbootd on free loopback ports in a private
 *      temp dir; POST N hosts in batches of B (a batch is started back to
 *      back, then awaited), collecting each host's "startup_ms" (measured by
 *      platformd: start request -> the host's own ready report) and the
 *      client-side POST -> "ready" seen time and the host's CPU time then;
 *      with all N ready, VmRSS / RssAnon / Pss of every host and the daemons;
 *      then DELETE all and wait until every one is "exited".
 *
 * Everything it starts is killed by PID on every exit path: the daemons
 * (SIGTERM, then SIGKILL) and any orphaned host (the driver is a child
 * subreaper, so hosts of a dead hostbootd become its children). Should the
 * driver itself be killed, PR_SET_PDEATHSIG takes the daemons down and the
 * hosts exit on their own after hosts.platform_lost_exit_ms.
 * Exit status 0 on success, 1 on any failure (message on stderr), 2 on usage. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "benchlib.h"
#include "plat/keys.h"
#include "testports.h"

#define BASELINE_RECV_MS 5000    /* one baseline child's message */
#define BATCH_DEADLINE_MS 60000  /* one batch of hosts ready */
#define DELETE_DEADLINE_MS 60000 /* all hosts exited */
#define HOST_ID_MAX 64

/* ---- options ---------------------------------------------------------------- */

typedef struct {
    const char *platformd, *hostbootd, *pluginhost, *minimal;
    int hosts;    /* hosts through the platform */
    int batch;    /* started back to back, then awaited */
    int baseline; /* baseline fork/execs */
    int warmup;   /* unmeasured baseline runs first */
    int poll_ms;  /* client-side poll interval */
    bool keep;    /* keep the temp dir */
    bool plain;   /* baseline without CURVE */
} opts_t;

/* ---- 1. baseline -------------------------------------------------------------- */

/* ms[i]: fork -> message received; cpu[i]: the child's CPU time, fork to exit. */
static void run_baseline(const opts_t *o, double *ms, double *cpu)
{
    void *ctx = zmq_ctx_new();
    void *router = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
    if (!router)
        bench_fail("zmq ROUTER: %s", zmq_strerror(zmq_errno()));
    int timeout = BASELINE_RECV_MS, linger = 0;
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    /* A CURVE server without a ZAP handler admits every client that knows
     * its public key: the handshake's cost without platformd's ZAP lookup. */
    plat_keypair_t kp;
    memset(&kp, 0, sizeof kp);
    int server = 1;
    if (!o->plain && (plat_keys_new(&kp) != 0 ||
                      zmq_setsockopt(router, ZMQ_CURVE_SERVER, &server, sizeof server) != 0 ||
                      zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, kp.secret_z85, 40) != 0))
        bench_fail("baseline: CURVE server: %s", zmq_strerror(zmq_errno()));
    char ep[64];
    int bound = -1;
    for (int tries = 0; tries < 20 && bound != 0; tries++)
        if (plat_test_free_endpoint(ep, sizeof ep) > 0)
            bound = zmq_bind(router, ep);
    if (bound != 0)
        bench_fail("cannot bind a ROUTER on a free loopback port: %s", zmq_strerror(zmq_errno()));

    char *argv[] = {(char *)o->minimal, ep, o->plain ? NULL : kp.public_z85, NULL};
    pid_t parent = getpid();
    for (int i = -o->warmup; i < o->baseline; i++) {
        bench_check_alive();
        uint64_t t0 = bench_now_ns();
        pid_t pid = fork();
        if (pid < 0)
            bench_fail("fork: %s", strerror(errno));
        if (pid == 0) {
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
                _exit(127);
            execv(argv[0], argv);
            _exit(127);
        }
        bench_set_child(pid);
        char id[256], payload[64];
        int n;
        for (;;) {
            n = zmq_recv(router, id, sizeof id, 0);
            if (n >= 0 || zmq_errno() != EINTR)
                break;
            bench_check_alive();
        }
        if (n < 0)
            bench_fail("baseline: child pid %d sent nothing within %d ms: %s", (int)pid,
                       BASELINE_RECV_MS, zmq_strerror(zmq_errno()));
        int more = 0;
        size_t more_size = sizeof more;
        zmq_getsockopt(router, ZMQ_RCVMORE, &more, &more_size);
        n = more ? zmq_recv(router, payload, sizeof payload - 1, 0) : -1;
        double t = bench_ms_since(t0);
        if (n < 0 || n >= (int)sizeof payload)
            bench_fail("baseline: malformed message from pid %d", (int)pid);
        payload[n] = 0;
        if (strtol(payload, NULL, 10) != pid)
            bench_fail("baseline: expected a message from pid %d, got \"%s\"", (int)pid, payload);
        int status;
        struct rusage ru;
        if (wait4(pid, &status, 0, &ru) != pid)
            bench_fail("baseline: waitpid %d: %s", (int)pid, strerror(errno));
        bench_set_child(0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char st[64];
            bench_describe_status(status, st, sizeof st);
            bench_fail("baseline: %s ended with %s", o->minimal, st);
        }
        if (i >= 0) {
            ms[i] = t;
            cpu[i] = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
                     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
        }
    }
    zmq_close(router);
    zmq_ctx_term(ctx);
}

/* ---- 2. platform ----------------------------------------------------------------- */

typedef struct {
    char id[HOST_ID_MAX];
    pid_t pid;
    uint64_t posted_ns;
    double client_ms;  /* POST -> "ready" first seen */
    double startup_ms; /* platformd's figure */
    double cpu_ms;     /* the host's CPU time when first seen ready */
    bool ready, exited;
} host_t;

typedef struct {
    double host_rss_median, host_rss_mean, host_anon_median, host_pss_mean;
    long pd_idle, hb_idle, pd_busy, hb_busy; /* VmRSS kB */
    double host_cpu_median, host_cpu_mean;   /* CPU ms of a host until measured (idle) */
    double pd_cpu, hb_cpu; /* CPU ms of the daemons while the hosts were started */
} mem_t;

static void post_host(host_t *h)
{
    h->posted_ns = bench_now_ns();
    json_t *r =
        bench_http_must("POST", "/api/v1/hosts", "{\"language\":\"c\",\"version\":\"1\"}", 202, 0);
    const char *id = json_string_value(json_object_get(json_object_get(r, "host"), "id"));
    if (!id || strlen(id) >= HOST_ID_MAX)
        bench_fail("POST /api/v1/hosts answered 202 without a host id");
    snprintf(h->id, sizeof h->id, "%s", id);
    json_decref(r);
}

static void fail_host(const host_t *h, json_t *o, const char *state)
{
    char *text = json_dumps(o, JSON_COMPACT);
    fprintf(stderr, "bench: host %s: %s\n", h->id, text ? text : "?");
    free(text);
    bench_fail("host %s ended up \"%s\" instead of ready/exited; see %s and %s/logs/hosts/%s.log",
               h->id, state, bench_hostbootd_log(), bench_dir(), h->id);
}

/* Poll GET /api/v1/hosts until every host in h[0..n) is ready (want_exited
 * false) or exited (true). */
static void await_hosts(host_t *h, size_t n, bool want_exited, int poll_ms, int deadline_ms)
{
    uint64_t t0 = bench_now_ns();
    size_t pending = n;
    while (pending) {
        bench_check_alive();
        json_t *body = bench_http_must("GET", "/api/v1/hosts", NULL, 200, 0);
        uint64_t seen = bench_now_ns();
        json_t *list = json_object_get(body, "hosts");
        size_t idx;
        json_t *o;
        json_array_foreach(list, idx, o)
        {
            const char *id = json_string_value(json_object_get(o, "id"));
            const char *state = json_string_value(json_object_get(o, "state"));
            if (!id || !state)
                continue;
            host_t *x = NULL;
            for (size_t i = 0; i < n && !x; i++)
                if (strcmp(h[i].id, id) == 0)
                    x = &h[i];
            if (!x || (want_exited ? x->exited : x->ready))
                continue;
            if (!want_exited && strcmp(state, "ready") == 0) {
                json_t *su = json_object_get(o, "startup_ms");
                json_int_t pid = json_integer_value(json_object_get(o, "pid"));
                if (!json_is_integer(su) || pid <= 0)
                    fail_host(x, o, "ready without startup_ms/pid");
                x->ready = true;
                x->pid = (pid_t)pid;
                x->startup_ms = (double)json_integer_value(su);
                x->client_ms = (double)(seen - x->posted_ns) / 1e6;
                x->cpu_ms = bench_proc_cpu_ms(x->pid);
                pending--;
            } else if (want_exited && strcmp(state, "exited") == 0) {
                x->exited = true;
                pending--;
            } else if (strcmp(state, "starting") && strcmp(state, "ready") &&
                       strcmp(state, "stopping")) {
                fail_host(x, o, state);
            }
        }
        json_decref(body);
        if (!pending)
            break;
        if (bench_ms_since(t0) > deadline_ms)
            bench_fail("%zu of %zu hosts not %s within %d ms; see %s", pending, n,
                       want_exited ? "exited" : "ready", deadline_ms, bench_hostbootd_log());
        bench_sleep_ms(poll_ms);
    }
}

static void delete_hosts(host_t *h, size_t n, int poll_ms)
{
    char path[128];
    for (size_t i = 0; i < n; i++) {
        bench_check_alive();
        snprintf(path, sizeof path, "/api/v1/hosts/%s", h[i].id);
        json_decref(bench_http_must("DELETE", path, NULL, 202, 0));
    }
    await_hosts(h, n, true, poll_ms, DELETE_DEADLINE_MS);
}

static void measure_memory(const host_t *h, size_t n, mem_t *m)
{
    double *rss = calloc(n, sizeof *rss), *anon = calloc(n, sizeof *anon),
           *cpu = calloc(n, sizeof *cpu);
    double pss_sum = 0;
    if (!rss || !anon || !cpu)
        bench_fail("out of memory");
    pid_t hb = bench_hostbootd_pid();
    for (size_t i = 0; i < n; i++) {
        pid_t ppid;
        char comm[64];
        if (!bench_proc_stat(h[i].pid, &ppid, comm, sizeof comm, NULL))
            bench_fail("host %s: pid %d is gone although the platform lists it ready", h[i].id,
                       (int)h[i].pid);
        if (ppid != hb || strcmp(comm, "pluginhost") != 0)
            bench_fail("host %s: pid %d is \"%s\" with parent %d, not a pluginhost of hostbootd %d",
                       h[i].id, (int)h[i].pid, comm, (int)ppid, (int)hb);
        long r = bench_proc_kb(h[i].pid, "status", "VmRSS");
        long a = bench_proc_kb(h[i].pid, "status", "RssAnon");
        long p = bench_proc_kb(h[i].pid, "smaps_rollup", "Pss");
        cpu[i] = h[i].cpu_ms;
        if (r < 0 || a < 0 || p < 0 || cpu[i] < 0)
            bench_fail("cannot read the memory of host pid %d from /proc", (int)h[i].pid);
        rss[i] = (double)r;
        anon[i] = (double)a;
        pss_sum += (double)p;
    }
    bench_stats_t rs = bench_stats_of(rss, n), as = bench_stats_of(anon, n),
                  cs = bench_stats_of(cpu, n);
    m->host_cpu_median = cs.median;
    m->host_cpu_mean = cs.mean;
    m->host_rss_median = rs.median;
    m->host_rss_mean = rs.mean;
    m->host_anon_median = as.median;
    m->host_pss_mean = pss_sum / (double)n;
    m->pd_busy = bench_proc_kb(bench_platformd_pid(), "status", "VmRSS");
    m->hb_busy = bench_proc_kb(hb, "status", "VmRSS");
    free(rss);
    free(anon);
    free(cpu);
}

static void run_platform(const opts_t *o, host_t *hosts, mem_t *mem)
{
    bench_platform_t p = {
        .platformd = o->platformd, .hostbootd = o->hostbootd, .pluginhost = o->pluginhost};
    bench_platform_start(&p);
    mem->pd_idle = bench_proc_kb(bench_platformd_pid(), "status", "VmRSS");
    mem->hb_idle = bench_proc_kb(bench_hostbootd_pid(), "status", "VmRSS");

    /* One unmeasured host first, as the baseline has its warm-up runs. */
    host_t warm = {0};
    post_host(&warm);
    await_hosts(&warm, 1, false, o->poll_ms, BATCH_DEADLINE_MS);
    delete_hosts(&warm, 1, o->poll_ms);

    double pd_cpu0 = bench_proc_cpu_ms(bench_platformd_pid());
    double hb_cpu0 = bench_proc_cpu_ms(bench_hostbootd_pid());
    for (int b = 0; b < o->hosts; b += o->batch) {
        int n = o->hosts - b < o->batch ? o->hosts - b : o->batch;
        for (int i = 0; i < n; i++) {
            bench_check_alive();
            post_host(&hosts[b + i]);
        }
        await_hosts(&hosts[b], (size_t)n, false, o->poll_ms, BATCH_DEADLINE_MS);
    }
    mem->pd_cpu = bench_proc_cpu_ms(bench_platformd_pid()) - pd_cpu0;
    mem->hb_cpu = bench_proc_cpu_ms(bench_hostbootd_pid()) - hb_cpu0;
    measure_memory(hosts, (size_t)o->hosts, mem);
    delete_hosts(hosts, (size_t)o->hosts, o->poll_ms);

    /* "exited" is reported after hostbootd reaped the host: none may remain. */
    pid_t left[16];
    size_t n_left = bench_children_of(bench_hostbootd_pid(), "pluginhost", left, 16);
    if (n_left)
        bench_fail("%zu pluginhost processes still running after all hosts were reported exited "
                   "(first pid %d)",
                   n_left, (int)left[0]);
}

/* ---- main ---------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_spawn [--hosts N] [--batch N] [--baseline N] [--warmup N]\n"
                 "                   [--poll-ms N] [--keep] [--platformd BIN] [--hostbootd BIN]\n"
                 "                   [--pluginhost BIN] [--minimal BIN] [--plain-baseline]\n"
                 "  --hosts N      hosts started through the platform (default 200)\n"
                 "  --batch N      hosts started back to back before awaiting them (default 20)\n"
                 "  --baseline N   baseline fork/execs of bench_minimal (default 200)\n"
                 "  --warmup N     unmeasured baseline runs first (default 5)\n"
                 "  --plain-baseline  the baseline without CURVE (the platform's bus keeps it)\n"
                 "  --poll-ms N    client-side polling interval of GET /api/v1/hosts (default 10)\n"
                 "  --keep         keep the temp dir (configs, daemon and host logs)\n"
                 "  binaries default to the ones of this build tree\n");
}

int main(int argc, char **argv)
{
    opts_t o = {.platformd = BENCH_PLATFORMD_BIN,
                .hostbootd = BENCH_HOSTBOOTD_BIN,
                .pluginhost = BENCH_PLUGINHOST_BIN,
                .minimal = BENCH_MINIMAL_BIN,
                .hosts = 200,
                .batch = 20,
                .baseline = 200,
                .warmup = 5,
                .poll_ms = 10};
    static const struct option opts[] = {
        {"hosts", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},
        {"baseline", required_argument, NULL, 'B'},
        {"warmup", required_argument, NULL, 'w'},
        {"poll-ms", required_argument, NULL, 'p'},
        {"keep", no_argument, NULL, 'k'},
        {"platformd", required_argument, NULL, 'P'},
        {"hostbootd", required_argument, NULL, 'H'},
        {"pluginhost", required_argument, NULL, 'E'},
        {"minimal", required_argument, NULL, 'M'},
        {"plain-baseline", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.hosts = bench_int_arg(optarg, 1, 5000, usage);
            break;
        case 'b':
            o.batch = bench_int_arg(optarg, 1, 5000, usage);
            break;
        case 'B':
            o.baseline = bench_int_arg(optarg, 1, 100000, usage);
            break;
        case 'w':
            o.warmup = bench_int_arg(optarg, 0, 1000, usage);
            break;
        case 'p':
            o.poll_ms = bench_int_arg(optarg, 1, 1000, usage);
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
        case 'M':
            o.minimal = optarg;
            break;
        case 'C':
            o.plain = true;
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
    const char *bins[] = {o.platformd, o.hostbootd, o.pluginhost, o.minimal};
    for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++)
        if (access(bins[i], X_OK) != 0) {
            fprintf(stderr, "bench: error: %s is not executable: %s\n", bins[i], strerror(errno));
            return 1;
        }
    bench_init(o.keep);

    double *base = calloc((size_t)o.baseline, sizeof *base);
    double *base_cpu = calloc((size_t)o.baseline, sizeof *base_cpu);
    host_t *hosts = calloc((size_t)o.hosts, sizeof *hosts);
    double *startup = calloc((size_t)o.hosts, sizeof *startup);
    double *client = calloc((size_t)o.hosts, sizeof *client);
    if (!base || !base_cpu || !hosts || !startup || !client)
        bench_fail("out of memory");

    struct utsname u;
    uname(&u);
    char load0[64], load1[64];
    bench_loadavg(load0, sizeof load0);
    printf("bench_spawn: %s %s %s, %ld CPUs, load average %s\n"
           "bench_spawn: %d baseline runs (+%d warm-up), %d hosts (+1 warm-up) in batches of %d; "
           "bus with CURVE (platform%s)\n",
           u.sysname, u.release, u.machine, sysconf(_SC_NPROCESSORS_ONLN), load0, o.baseline,
           o.warmup, o.hosts, o.batch, o.plain ? " only; baseline plain" : " and baseline");
    fflush(stdout);

    uint64_t t0 = bench_now_ns();
    run_baseline(&o, base, base_cpu);
    double base_s = bench_ms_since(t0) / 1000;
    mem_t mem = {0};
    t0 = bench_now_ns();
    run_platform(&o, hosts, &mem);
    double plat_s = bench_ms_since(t0) / 1000;
    bench_cleanup(true);

    for (int i = 0; i < o.hosts; i++) {
        startup[i] = hosts[i].startup_ms;
        client[i] = hosts[i].client_ms;
    }
    bench_stats_t sb = bench_stats_of(base, (size_t)o.baseline);
    bench_stats_t ss = bench_stats_of(startup, (size_t)o.hosts);
    bench_stats_t sc = bench_stats_of(client, (size_t)o.hosts);
    char label[64];

    printf("\nspawn-to-ready (ms)                                n   median      p99     mean"
           "      min      max\n");
    bench_print_stats(o.plain ? "baseline: fork/exec + DEALER send"
                              : "baseline: fork/exec + CURVE DEALER send",
                      sb);
    bench_print_stats("platform: startup_ms (platformd, 1 ms res.)", ss);
    snprintf(label, sizeof label, "platform: POST -> ready seen (%d ms polls)", o.poll_ms);
    bench_print_stats(label, sc);
    printf("\nratio platform/baseline                        median      p99\n");
    printf("  %-44s %8.1fx %7.1fx\n", "startup_ms / baseline", ss.median / sb.median,
           ss.p99 / sb.p99);
    printf("  %-44s %8.1fx %7.1fx\n", "POST -> ready seen / baseline", sc.median / sb.median,
           sc.p99 / sb.p99);
    printf("\nRSS per idle host (kB, %d hosts)               median     mean\n", o.hosts);
    printf("  %-44s %8.0f %8.0f\n", "VmRSS", mem.host_rss_median, mem.host_rss_mean);
    printf("  %-44s %8.0f %8s\n", "RssAnon (private: heap, stacks)", mem.host_anon_median, "");
    printf("  %-44s %8s %8.0f\n", "Pss (shared pages split among sharers)", "", mem.host_pss_mean);
    printf("\ndaemons VmRSS (kB)                            no hosts  %4d hosts\n", o.hosts);
    printf("  %-44s %8ld %10ld\n", "platformd", mem.pd_idle, mem.pd_busy);
    printf("  %-44s %8ld %10ld\n", "hostbootd", mem.hb_idle, mem.hb_busy);
    bench_stats_t sbc = bench_stats_of(base_cpu, (size_t)o.baseline);
    printf("\nCPU time (ms)                                  median     mean    total\n");
    printf("  %-44s %8.1f %8.1f %8.0f\n", "baseline child, fork to exit", sbc.median, sbc.mean,
           sbc.mean * o.baseline);
    printf("  %-44s %8.0f %8.0f %8.0f\n", "host, fork to ready (10 ms ticks)", mem.host_cpu_median,
           mem.host_cpu_mean, mem.host_cpu_mean * o.hosts);
    printf("  %-44s %8s %8.1f %8.0f\n", "platformd while starting, per host", "",
           mem.pd_cpu / o.hosts, mem.pd_cpu);
    printf("  %-44s %8s %8.1f %8.0f\n", "hostbootd while starting, per host", "",
           mem.hb_cpu / o.hosts, mem.hb_cpu);
    bench_loadavg(load1, sizeof load1);
    printf("\nwall time: baseline %.1f s, platform (start, measure, delete) %.1f s; "
           "load average at the end %s\n",
           base_s, plat_s, load1);

    free(base);
    free(base_cpu);
    free(hosts);
    free(startup);
    free(client);
    return 0;
}
