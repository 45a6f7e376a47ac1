/* bench_bus: the bus through platformd against raw ZeroMQ, and platformd's
 * cost per idle host. A benchmark, not a test (issue 7; docs/performance.md).
 *
 *   route  request/response between two peers through platformd (the real
 *          router, envelope codec and registration gate: host A → platform →
 *          host B → platform → host A, every message a PlatformMessage
 *          encoded and decoded at both ends) against the same exchange
 *          through a raw ZeroMQ ROUTER that only swaps the routing frames
 *          (DEALER → ROUTER → DEALER, same payload size), both measured in
 *          the same run: round trips per second with a window of requests
 *          in flight, and p50/p99 latency with one in flight; the ratios.
 *   scale  platformd's CPU (% of one core) and RSS with 1, 100 and 500 idle
 *          dev hosts connected, registered and answering its heartbeats.
 *
 * The raw ROUTER runs in a child process of its own (as platformd does),
 * the peers of both runs in this process, polled from one thread. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "benchlib.h"
#include "benchpeer.h"
#include "plat/plat.h"
#include "testports.h"

typedef struct {
    const char *platformd, *hostbootd, *pluginhost;
    int size;       /* payload bytes per message */
    int latency_n;  /* round trips measured one at a time */
    int throughput_n; /* round trips of the windowed run */
    int window;     /* requests in flight */
    int hosts[8];   /* scale levels */
    size_t n_levels;
    int seconds;    /* scale: measured seconds per level */
    bool route, scale;
    bool keep;
} opts_t;

/* ---- the raw ROUTER (child process) ------------------------------------ */

static volatile sig_atomic_t g_raw_stop;

static void on_raw_term(int sig)
{
    (void)sig;
    g_raw_stop = 1;
}

/* [src][dst][payload] in, [dst][src][payload] out: the least a router does. */
static int raw_router_main(const char *endpoint)
{
    signal(SIGTERM, on_raw_term);
    void *ctx = zmq_ctx_new();
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, hwm = 100000, linger = 0;
    zmq_setsockopt(r, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(r, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(r, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(r, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(r, endpoint) != 0) {
        fprintf(stderr, "raw router: bind %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        return 1;
    }
    zmq_msg_t f[3];
    while (!g_raw_stop) {
        for (int i = 0; i < 3; i++)
            zmq_msg_init(&f[i]);
        int got = 0;
        for (; got < 3; got++) {
            if (zmq_msg_recv(&f[got], r, 0) < 0)
                break;
            if (got < 2 && !zmq_msg_more(&f[got])) {
                got++;
                break;
            }
        }
        if (got == 3 && !zmq_msg_more(&f[2])) {
            zmq_msg_send(&f[1], r, ZMQ_SNDMORE);
            zmq_msg_send(&f[0], r, ZMQ_SNDMORE);
            zmq_msg_send(&f[2], r, 0);
        }
        for (int i = 0; i < 3; i++)
            zmq_msg_close(&f[i]);
    }
    zmq_close(r);
    zmq_ctx_term(ctx);
    return 0;
}

/* ---- one exchange, two ways ------------------------------------------------ */

typedef struct exchange exchange_t;
struct exchange {
    const char *name;
    /* A sends request number `i`; B answers every request it has; A
     * takes one reply: returns 1 when it did. */
    void (*send_request)(exchange_t *x);
    void (*serve)(exchange_t *x);
    int (*take_reply)(exchange_t *x);
    void *a, *b; /* sockets */
    bench_peer_t *pa, *pb;
    const char *b_id, *a_id;
    uint8_t *payload;
    size_t size;
};

static void poll2(exchange_t *x, int timeout_ms)
{
    zmq_pollitem_t it[2] = {{.socket = x->a, .events = ZMQ_POLLIN},
                            {.socket = x->b, .events = ZMQ_POLLIN}};
    if (zmq_poll(it, 2, timeout_ms) < 0 && zmq_errno() != EINTR)
        bench_fail("poll: %s", zmq_strerror(zmq_errno()));
}

/* raw: A → [b_id][payload]; B ← [a_id][payload] → [a_id][payload]. */
static void raw_send_request(exchange_t *x)
{
    if (zmq_send(x->a, x->b_id, strlen(x->b_id), ZMQ_SNDMORE) < 0 ||
        zmq_send(x->a, x->payload, x->size, 0) < 0)
        bench_fail("raw send: %s", zmq_strerror(zmq_errno()));
}

static void raw_serve(exchange_t *x)
{
    for (;;) {
        zmq_msg_t from, body;
        zmq_msg_init(&from);
        if (zmq_msg_recv(&from, x->b, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&from);
            return;
        }
        zmq_msg_init(&body);
        if (zmq_msg_recv(&body, x->b, 0) < 0)
            bench_fail("raw recv: %s", zmq_strerror(zmq_errno()));
        /* The answer carries a payload of the same size, as the routed one. */
        if (zmq_msg_send(&from, x->b, ZMQ_SNDMORE) < 0 || zmq_msg_send(&body, x->b, 0) < 0)
            bench_fail("raw reply: %s", zmq_strerror(zmq_errno()));
    }
}

static int raw_take_reply(exchange_t *x)
{
    zmq_msg_t from, body;
    zmq_msg_init(&from);
    if (zmq_msg_recv(&from, x->a, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&from);
        return 0;
    }
    zmq_msg_init(&body);
    if (zmq_msg_recv(&body, x->a, 0) < 0)
        bench_fail("raw recv: %s", zmq_strerror(zmq_errno()));
    if (zmq_msg_size(&body) != x->size)
        bench_fail("raw: reply of %zu bytes, expected %zu", zmq_msg_size(&body), x->size);
    zmq_msg_close(&from);
    zmq_msg_close(&body);
    return 1;
}

/* routed: a PluginEvent REQUEST from A to B, a PluginEventResponse REPLY
 * back, both with `size` bytes of body, both through platformd. */
static Plat__PlatformMessage *plugin_msg(exchange_t *x, bool response)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN);
    if (!m)
        bench_fail("out of memory");
    uint8_t *body = malloc(x->size ? x->size : 1);
    if (!body)
        bench_fail("out of memory");
    memcpy(body, x->payload, x->size);
    if (response) {
        Plat__PluginEventResponse *r = malloc(sizeof *r);
        if (!r)
            bench_fail("out of memory");
        plat__plugin_event_response__init(r);
        r->status = 200;
        r->body.data = body;
        r->body.len = x->size;
        m->plugin->body_case = PLAT__PLUGIN_MESSAGE__BODY_RESPONSE;
        m->plugin->response = r;
    } else {
        Plat__PluginEvent *e = malloc(sizeof *e);
        if (!e)
            bench_fail("out of memory");
        plat__plugin_event__init(e);
        e->body.data = body;
        e->body.len = x->size;
        m->plugin->body_case = PLAT__PLUGIN_MESSAGE__BODY_EVENT;
        m->plugin->event = e;
    }
    return m;
}

static void routed_send_request(exchange_t *x)
{
    Plat__PlatformMessage *m = plugin_msg(x, false);
    bench_peer_send(x->pa, m, x->b_id, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST, 0);
    plat_envelope_free(&m);
}

static void routed_serve(exchange_t *x)
{
    Plat__PlatformMessage *in = NULL;
    while (bench_peer_recv(x->pb, &in) == 1) {
        if (in->channel_case != PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN ||
            in->plugin->body_case != PLAT__PLUGIN_MESSAGE__BODY_EVENT)
            bench_fail("routed: B got an unexpected %s message from %s",
                       plat_channel_name(in->channel_case), in->header->source->id);
        Plat__PlatformMessage *r = plugin_msg(x, true);
        bench_peer_send(x->pb, r, in->header->source->id,
                        PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY, in->header->seq_no);
        plat_envelope_free(&r);
        plat_envelope_free(&in);
    }
}

static int routed_take_reply(exchange_t *x)
{
    Plat__PlatformMessage *in = NULL;
    if (bench_peer_recv(x->pa, &in) != 1)
        return 0;
    const Plat__ErrorMessage *e = in->header->error;
    if (e && e->code != 0)
        bench_fail("routed: error reply %d %s (%s)", e->code, e->message, e->detail);
    if (in->channel_case != PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN ||
        in->plugin->body_case != PLAT__PLUGIN_MESSAGE__BODY_RESPONSE ||
        in->plugin->response->body.len != x->size)
        bench_fail("routed: unexpected reply");
    plat_envelope_free(&in);
    return 1;
}

/* One request in flight, n times: latencies in µs. */
static bench_stats_t run_latency(exchange_t *x, int n, int warmup)
{
    double *v = malloc((size_t)n * sizeof *v);
    if (!v)
        bench_fail("out of memory");
    for (int i = -warmup; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        x->send_request(x);
        for (;;) {
            x->serve(x);
            if (x->take_reply(x))
                break;
            poll2(x, 1000);
            if (bench_ms_since(t0) > 10000)
                bench_fail("%s: no reply within 10 s", x->name);
        }
        if (i >= 0)
            v[i] = bench_ms_since(t0) * 1000.0;
    }
    bench_stats_t s = bench_stats_of(v, (size_t)n);
    free(v);
    return s;
}

/* `window` requests in flight until n round trips are done: per second. */
static double run_throughput(exchange_t *x, int n, int window)
{
    int sent = 0, done = 0;
    uint64_t t0 = bench_now_ns();
    while (done < n) {
        while (sent < n && sent - done < window) {
            x->send_request(x);
            sent++;
        }
        x->serve(x);
        int got = 0;
        while (x->take_reply(x))
            got++;
        done += got;
        if (got == 0)
            poll2(x, 100);
        if (bench_ms_since(t0) > 120000)
            bench_fail("%s: %d of %d round trips after 120 s", x->name, done, n);
    }
    return n / (bench_ms_since(t0) / 1000.0);
}

static void print_route(const char *label, double rps, bench_stats_t s)
{
    printf("  %-34s %12.0f %10.1f %10.1f %10.1f\n", label, rps, s.median, s.p99, s.mean);
}

static void bench_route(const opts_t *o, void *zctx, const char *platform_endpoint)
{
    uint8_t *payload = malloc((size_t)o->size + 1);
    if (!payload)
        bench_fail("out of memory");
    for (int i = 0; i < o->size; i++)
        payload[i] = (uint8_t)('a' + i % 26);

    /* Raw: a ROUTER of our own in a child process. */
    int port = plat_test_free_port();
    if (port < 0)
        bench_fail("no free loopback port");
    char raw_ep[64];
    snprintf(raw_ep, sizeof raw_ep, "tcp://127.0.0.1:%d", port);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(raw_router_main(raw_ep));
    bench_set_child(pid);
    void *ra = zmq_socket(zctx, ZMQ_DEALER), *rb = zmq_socket(zctx, ZMQ_DEALER);
    int hwm = 100000, linger = 0;
    const char *ida = "raw-a", *idb = "raw-b";
    zmq_setsockopt(ra, ZMQ_ROUTING_ID, ida, strlen(ida));
    zmq_setsockopt(rb, ZMQ_ROUTING_ID, idb, strlen(idb));
    void *socks[2] = {ra, rb};
    for (int i = 0; i < 2; i++) {
        zmq_setsockopt(socks[i], ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(socks[i], ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof linger);
        if (zmq_connect(socks[i], raw_ep) != 0)
            bench_fail("connect %s: %s", raw_ep, zmq_strerror(zmq_errno()));
    }
    exchange_t raw = {.name = "raw", .send_request = raw_send_request, .serve = raw_serve,
                      .take_reply = raw_take_reply, .a = ra, .b = rb, .a_id = ida, .b_id = idb,
                      .payload = payload, .size = (size_t)o->size};
    /* The ROUTER learns B's routing id only once B has connected: a
     * mandatory-routing send before that is dropped, so retry the first. */
    uint64_t t0 = bench_now_ns();
    for (bool ok = false; !ok;) {
        raw_send_request(&raw);
        for (uint64_t t1 = bench_now_ns(); !ok && bench_ms_since(t1) < 200;) {
            raw_serve(&raw);
            ok = raw_take_reply(&raw);
            if (!ok)
                poll2(&raw, 20);
        }
        if (bench_ms_since(t0) > 10000)
            bench_fail("raw router at %s does not answer", raw_ep);
    }

    /* Routed: two dev hosts registered with platformd. */
    bench_peer_t *pa = bench_peer_new(zctx, platform_endpoint, NULL);
    bench_peer_t *pb = bench_peer_new(zctx, platform_endpoint, NULL);
    bench_peer_register(pa, 10000);
    bench_peer_register(pb, 10000);
    exchange_t routed = {.name = "routed", .send_request = routed_send_request,
                         .serve = routed_serve, .take_reply = routed_take_reply,
                         .a = bench_peer_socket(pa), .b = bench_peer_socket(pb), .pa = pa,
                         .pb = pb, .a_id = bench_peer_id(pa), .b_id = bench_peer_id(pb),
                         .payload = payload, .size = (size_t)o->size};

    int warm = o->latency_n / 10 + 10;
    bench_stats_t lat_raw = run_latency(&raw, o->latency_n, warm);
    bench_stats_t lat_routed = run_latency(&routed, o->latency_n, warm);
    double tp_raw = run_throughput(&raw, o->throughput_n, o->window);
    double tp_routed = run_throughput(&routed, o->throughput_n, o->window);

    printf("\n1. request/response, %d-byte payload each way; latency over %d round trips "
           "one at a time (µs),\n   throughput over %d round trips with %d in flight\n",
           o->size, o->latency_n, o->throughput_n, o->window);
    printf("  %-34s %12s %10s %10s %10s\n", "", "round trips/s", "p50 µs", "p99 µs", "mean µs");
    print_route("raw ZeroMQ DEALER→ROUTER→DEALER", tp_raw, lat_raw);
    print_route("through platformd", tp_routed, lat_routed);
    printf("  ratios (platformd / raw): throughput %.2f (target ≥ 0.50), p99 latency %.2f "
           "(target ≤ 2.00), p50 latency %.2f\n",
           tp_routed / tp_raw, lat_routed.p99 / lat_raw.p99, lat_routed.median / lat_raw.median);

    zmq_close(ra);
    zmq_close(rb);
    bench_peer_destroy(&pa);
    bench_peer_destroy(&pb);
    kill(pid, SIGTERM);
    int st;
    if (waitpid(pid, &st, 0) == pid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fprintf(stderr, "bench: the raw router did not exit cleanly\n");
    bench_set_child(0);
    free(payload);
}

/* ---- scale: idle hosts ----------------------------------------------------- */

static void pump_all(bench_peer_t **peers, size_t n, int ms)
{
    zmq_pollitem_t *it = calloc(n, sizeof *it);
    if (!it)
        bench_fail("out of memory");
    for (size_t i = 0; i < n; i++)
        it[i] = (zmq_pollitem_t){.socket = bench_peer_socket(peers[i]), .events = ZMQ_POLLIN};
    uint64_t t0 = bench_now_ns();
    while (bench_ms_since(t0) < ms) {
        bench_check_alive();
        double left = ms - bench_ms_since(t0);
        if (zmq_poll(it, (int)n, left > 100 ? 100 : (long)left + 1) < 0 && zmq_errno() != EINTR)
            bench_fail("poll: %s", zmq_strerror(zmq_errno()));
        for (size_t i = 0; i < n; i++) {
            if (!(it[i].revents & ZMQ_POLLIN))
                continue;
            Plat__PlatformMessage *m = NULL;
            while (bench_peer_recv(peers[i], &m) == 1)
                plat_envelope_free(&m); /* an idle host expects nothing else */
        }
    }
    free(it);
}

static void bench_scale(const opts_t *o, void *zctx, const char *platform_endpoint)
{
    int max = 0;
    for (size_t i = 0; i < o->n_levels; i++)
        max = o->hosts[i] > max ? o->hosts[i] : max;
    bench_peer_t **peers = calloc((size_t)max, sizeof *peers);
    uint64_t *pings0 = calloc((size_t)max, sizeof *pings0);
    if (!peers || !pings0)
        bench_fail("out of memory");
    pid_t pd = bench_platformd_pid();
    printf("\n4. platformd with idle dev hosts connected and answering heartbeats "
           "(interval 1000 ms), %d s measured per level\n", o->seconds);
    printf("  %-10s %14s %12s %12s %18s\n", "hosts", "CPU % of a core", "CPU ms", "RSS kB",
           "pings per host");
    size_t have = 0;
    for (size_t l = 0; l < o->n_levels; l++) {
        size_t want = (size_t)o->hosts[l];
        for (; have < want; have++) {
            peers[have] = bench_peer_new(zctx, platform_endpoint, NULL);
            bench_peer_register(peers[have], 10000);
            if (have % 50 == 49)
                pump_all(peers, have + 1, 1); /* keep the earlier ones answering */
        }
        pump_all(peers, have, 3000); /* settle: registration work is not idle work */
        for (size_t i = 0; i < have; i++)
            pings0[i] = bench_peer_pings(peers[i]);
        double cpu0 = bench_proc_cpu_ms(pd);
        uint64_t t0 = bench_now_ns();
        pump_all(peers, have, o->seconds * 1000);
        double wall = bench_ms_since(t0);
        double cpu = bench_proc_cpu_ms(pd) - cpu0;
        long rss = bench_proc_kb(pd, "status", "VmRSS");
        uint64_t min_pings = UINT64_MAX;
        for (size_t i = 0; i < have; i++) {
            uint64_t d = bench_peer_pings(peers[i]) - pings0[i];
            min_pings = d < min_pings ? d : min_pings;
        }
        printf("  %-10zu %14.2f %12.0f %12ld %18llu\n", have, cpu / wall * 100.0, cpu, rss,
               (unsigned long long)min_pings);
        if (min_pings == 0)
            bench_fail("a host got no ping in %d s: the platform is not heartbeating it",
                       o->seconds);
    }
    printf("  target: platformd idle CPU under 1%% of a core with 100 idle hosts\n");
    for (size_t i = 0; i < have; i++)
        bench_peer_destroy(&peers[i]);
    free(peers);
    free(pings0);
}

/* ---- main ------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_bus [route|scale|all] [OPTIONS]\n"
            "  --size BYTES         payload per message (default 256)\n"
            "  --latency N          round trips one at a time (default 20000)\n"
            "  --throughput N       round trips of the windowed run (default 200000)\n"
            "  --window N           requests in flight (default 64)\n"
            "  --hosts A,B,...      scale levels (default 1,100,500)\n"
            "  --seconds S          scale: seconds measured per level (default 10)\n"
            "  --keep               keep the temp dir\n"
            "  --platformd/--hostbootd/--pluginhost PATH   binaries\n");
}

static void parse_levels(const char *s, opts_t *o)
{
    o->n_levels = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_levels == sizeof o->hosts / sizeof o->hosts[0]) {
            usage(stderr);
            exit(2);
        }
        o->hosts[o->n_levels++] = bench_int_arg(t, 1, 900, usage);
    }
    free(copy);
}

int main(int argc, char **argv)
{
    opts_t o = {.platformd = BENCH_PLATFORMD_BIN, .hostbootd = BENCH_HOSTBOOTD_BIN,
                .pluginhost = BENCH_PLUGINHOST_BIN, .size = 256, .latency_n = 20000,
                .throughput_n = 200000, .window = 64, .hosts = {1, 100, 500}, .n_levels = 3,
                .seconds = 10, .route = true, .scale = true};
    if (argc > 1 && argv[1][0] != '-') {
        if (strcmp(argv[1], "route") == 0)
            o.scale = false;
        else if (strcmp(argv[1], "scale") == 0)
            o.route = false;
        else if (strcmp(argv[1], "all") != 0) {
            usage(stderr);
            return 2;
        }
        argc--;
        argv++;
    }
    static const struct option opts[] = {
        {"size", required_argument, NULL, 's'},      {"latency", required_argument, NULL, 'l'},
        {"throughput", required_argument, NULL, 't'}, {"window", required_argument, NULL, 'w'},
        {"hosts", required_argument, NULL, 'n'},     {"seconds", required_argument, NULL, 'S'},
        {"keep", no_argument, NULL, 'k'},            {"platformd", required_argument, NULL, 'P'},
        {"hostbootd", required_argument, NULL, 'H'}, {"pluginhost", required_argument, NULL, 'E'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': o.size = bench_int_arg(optarg, 0, 1 << 20, usage); break;
        case 'l': o.latency_n = bench_int_arg(optarg, 1, 10000000, usage); break;
        case 't': o.throughput_n = bench_int_arg(optarg, 1, 100000000, usage); break;
        case 'w': o.window = bench_int_arg(optarg, 1, 10000, usage); break;
        case 'n': parse_levels(optarg, &o); break;
        case 'S': o.seconds = bench_int_arg(optarg, 1, 3600, usage); break;
        case 'k': o.keep = true; break;
        case 'P': o.platformd = optarg; break;
        case 'H': o.hostbootd = optarg; break;
        case 'E': o.pluginhost = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    /* 500 DEALERs: two descriptors each here, one each in platformd. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    bench_init(o.keep);
    bench_platform_t p = {.platformd = o.platformd, .hostbootd = o.hostbootd,
                          .pluginhost = o.pluginhost};
    bench_platform_start(&p);
    char load[64];
    bench_loadavg(load, sizeof load);
    printf("bench_bus: %ld cores, load %s\n", sysconf(_SC_NPROCESSORS_ONLN), load);
    void *zctx = zmq_ctx_new();
    int max_sockets = 2048;
    zmq_ctx_set(zctx, ZMQ_MAX_SOCKETS, max_sockets);
    if (o.route)
        bench_route(&o, zctx, bench_platform_bus_endpoint());
    if (o.scale)
        bench_scale(&o, zctx, bench_platform_bus_endpoint());
    zmq_ctx_term(zctx);
    bench_cleanup(true);
    return 0;
}
