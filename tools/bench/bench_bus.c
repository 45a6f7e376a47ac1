/* bench_bus: the bus through platformd against raw ZeroMQ, and platformd's
 * cost per idle host. A benchmark, not a test (issue 7; docs/performance.md).
 *
 *   route  request/response between two peers through platformd (the real
 *          router, envelope codec, CURVE with its ZAP handler and identity
 *          binding, the per-peer limits: host A → platform → host B →
 *          platform → host A, every message a PlatformMessage encoded and
 *          decoded at both ends) against the same exchange through a raw
 *          ZeroMQ ROUTER that only swaps the routing frames (DEALER → ROUTER
 *          → DEALER, same payload size), once with CURVE (the target's
 *          baseline: same encryption) and once plaintext (context), all
 *          three measured in the same run, round by round: round trips per
 *          second with a window of requests in flight, p50/p99 latency with
 *          one in flight, the routers' CPU per round trip; the ratios.
 *   scale  platformd's CPU (% of one core) and RSS with 1, 100 and 500 idle
 *          dev hosts connected (CURVE), registered and answering its
 *          heartbeats.
 *
 * The raw ROUTERs run in child processes of their own (as platformd does),
 * the peers of every run in this process, polled from one thread. The
 * platform's bus is configured as by default except where the route run
 * needs otherwise; the output names each such setting. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
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
#include "benchpeer.h"
#include "plat/keys.h"
#include "plat/plat.h"
#include "testports.h"

typedef struct {
    const char *platformd, *hostbootd, *pluginhost;
    int size;         /* payload bytes per message */
    int latency_n;    /* round trips measured one at a time */
    int throughput_n; /* round trips of the windowed run */
    int window;       /* requests in flight */
    int hosts[8];     /* scale levels */
    size_t n_levels;
    int seconds;                  /* scale: measured seconds per level */
    int rounds;                   /* route: rounds of the three ways in turn */
    int rate_per_sec, rate_burst; /* platformd's bus.rate_per_sec/rate_burst; -1: default */
    bool route, scale;
    bool keep;
} opts_t;

/* platformd's defaults (docs/config-platformd.md), printed next to the
 * values of the run. */
#define PD_DEFAULT_RATE_PER_SEC 2000
#define PD_DEFAULT_RATE_BURST 4000
#define PD_DEFAULT_MAX_PENDING 1024

/* ---- the raw ROUTER (child process) ------------------------------------ */

static volatile sig_atomic_t g_raw_stop;

static void on_raw_term(int sig)
{
    (void)sig;
    g_raw_stop = 1;
}

/* [src][dst][payload] in, [dst][src][payload] out: the least a router does.
 * `secret_z85`: a CURVE server with that key (no ZAP handler: libzmq then
 * admits every client that knows the server key); NULL: plaintext. */
static int raw_router_main(const char *endpoint, const char *secret_z85)
{
    signal(SIGTERM, on_raw_term);
    void *ctx = zmq_ctx_new();
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, hwm = 100000, linger = 0;
    zmq_setsockopt(r, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(r, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(r, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(r, ZMQ_LINGER, &linger, sizeof linger);
    if (secret_z85 && (zmq_setsockopt(r, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
                       zmq_setsockopt(r, ZMQ_CURVE_SECRETKEY, secret_z85, 40) != 0)) {
        fprintf(stderr, "raw router: CURVE: %s\n", zmq_strerror(zmq_errno()));
        return 1;
    }
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
        /* A destination not connected (yet) fails the first frame with
         * EHOSTUNREACH (ROUTER_MANDATORY): drop the message, as platformd
         * drops one for an unknown destination — sending the rest would
         * route the payload to the source as a one-frame message. */
        if (got == 3 && !zmq_msg_more(&f[2]) && zmq_msg_send(&f[1], r, ZMQ_SNDMORE) >= 0) {
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

/* A raw router child: forked before the driver creates its own ZeroMQ
 * context (nothing of libzmq crosses the fork). */
typedef struct {
    pid_t pid;
    char endpoint[64];
    plat_keypair_t key; /* CURVE server key; public_z85 "" when plaintext */
    bool curve;
} raw_router_t;

static void raw_router_start(raw_router_t *rr, bool curve)
{
    memset(rr, 0, sizeof *rr);
    rr->curve = curve;
    if (curve && plat_keys_new(&rr->key) != 0)
        bench_fail("cannot make a CURVE key pair");
    int port = plat_test_free_port();
    if (port < 0)
        bench_fail("no free loopback port");
    snprintf(rr->endpoint, sizeof rr->endpoint, "tcp://127.0.0.1:%d", port);
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        _exit(raw_router_main(rr->endpoint, curve ? rr->key.secret_z85 : NULL));
    }
    rr->pid = pid;
    bench_add_child(pid);
}

static void raw_router_stop(raw_router_t *rr)
{
    if (!rr->pid)
        return;
    kill(rr->pid, SIGTERM);
    int st;
    if (waitpid(rr->pid, &st, 0) == rr->pid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fprintf(stderr, "bench: the raw router (pid %d) did not exit cleanly\n", (int)rr->pid);
    bench_forget_child(rr->pid);
    rr->pid = 0;
}

/* ---- one exchange, three ways ----------------------------------------------- */

typedef struct exchange exchange_t;
struct exchange {
    const char *name;
    /* A sends a request; B answers every request it has; A takes one
     * reply: returns 1 when it did. */
    void (*send_request)(exchange_t *x);
    void (*serve)(exchange_t *x);
    int (*take_reply)(exchange_t *x);
    void *a, *b; /* sockets */
    bench_peer_t *pa, *pb;
    const char *b_id, *a_id;
    uint8_t *payload;
    size_t size;
    pid_t router; /* the process that routes: a raw router or platformd */
    /* accumulated over the rounds */
    double *lat; /* µs, latency_n of them */
    size_t n_lat;
    double tp_n, tp_s;                   /* windowed round trips and their seconds */
    double router_cpu_ms, driver_cpu_ms; /* during the windowed runs */
};

/* The registered peers not in the exchange being measured: their pings
 * are answered every 100 ms, so platformd never sees them late or silent
 * while the raw ways run. */
static bench_peer_t *g_idle[2];
static uint64_t g_idle_at;

static void keep_alive(const exchange_t *x)
{
    if (x->pa || !g_idle[0])
        return; /* the routed way answers its own pings */
    uint64_t now = bench_now_ns();
    if (now - g_idle_at < 100000000u)
        return;
    g_idle_at = now;
    for (size_t i = 0; i < 2; i++) {
        Plat__PlatformMessage *m = NULL;
        while (bench_peer_recv(g_idle[i], &m) == 1) {
            bench_fail("routed peer %s got an unexpected %s message while idle",
                       bench_peer_id(g_idle[i]), plat_channel_name(m->channel_case));
        }
    }
}

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
        if (!zmq_msg_more(&from))
            bench_fail("raw: a one-frame request");
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
    if (!zmq_msg_more(&from))
        bench_fail("raw: a one-frame reply");
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
        bench_peer_send(x->pb, r, in->header->source->id, PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY,
                        in->header->seq_no);
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
        bench_fail("routed: error reply %d %s (%s)%s", e->code, e->message, e->detail,
                   e->code == -EBUSY ? "; a bus limit of platformd (bus.rate_per_sec, "
                                       "bus.max_pending_per_peer) throttled the run"
                                     : "");
    if (in->channel_case != PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN ||
        in->plugin->body_case != PLAT__PLUGIN_MESSAGE__BODY_RESPONSE ||
        in->plugin->response->body.len != x->size)
        bench_fail("routed: unexpected reply");
    plat_envelope_free(&in);
    return 1;
}

/* One request in flight, n times (the first `warmup` not kept): latencies
 * in µs appended to x->lat. */
static void run_latency(exchange_t *x, int n, int warmup)
{
    for (int i = -warmup; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        keep_alive(x);
        x->send_request(x);
        for (;;) {
            x->serve(x);
            if (x->take_reply(x))
                break;
            poll2(x, 1000);
            if (bench_ms_since(t0) > 10000) {
                bench_check_alive();
                bench_fail("%s: no reply within 10 s", x->name);
            }
        }
        if (i >= 0)
            x->lat[x->n_lat++] = bench_ms_since(t0) * 1000.0;
    }
}

static double self_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

/* `window` requests in flight until n round trips are done; adds to the
 * exchange's totals (round trips, seconds, CPU of the router and of this
 * driver). */
static void run_throughput(exchange_t *x, int n, int window)
{
    int sent = 0, done = 0;
    double rcpu0 = bench_proc_runtime_ms(x->router), dcpu0 = self_cpu_ms();
    uint64_t t0 = bench_now_ns();
    while (done < n) {
        keep_alive(x);
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
        if (bench_ms_since(t0) > 120000) {
            bench_check_alive();
            bench_fail("%s: %d of %d round trips after 120 s", x->name, done, n);
        }
    }
    x->tp_s += bench_ms_since(t0) / 1000.0;
    x->tp_n += n;
    x->router_cpu_ms += bench_proc_runtime_ms(x->router) - rcpu0;
    x->driver_cpu_ms += self_cpu_ms() - dcpu0;
}

/* Two DEALERs on a raw router; the first exchange retried until it works
 * (a ROUTER learns B's routing id only once B has connected: a mandatory
 * routing send before that is dropped). */
static void raw_open(exchange_t *x, void *zctx, const raw_router_t *rr, const char *name)
{
    x->name = name;
    x->send_request = raw_send_request;
    x->serve = raw_serve;
    x->take_reply = raw_take_reply;
    x->a_id = "raw-a";
    x->b_id = "raw-b";
    x->router = rr->pid;
    x->a = zmq_socket(zctx, ZMQ_DEALER);
    x->b = zmq_socket(zctx, ZMQ_DEALER);
    int hwm = 100000, linger = 0;
    void *socks[2] = {x->a, x->b};
    const char *ids[2] = {x->a_id, x->b_id};
    for (int i = 0; i < 2; i++) {
        if (!socks[i])
            bench_fail("zmq_socket: %s", zmq_strerror(zmq_errno()));
        zmq_setsockopt(socks[i], ZMQ_ROUTING_ID, ids[i], strlen(ids[i]));
        zmq_setsockopt(socks[i], ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(socks[i], ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof linger);
        if (rr->curve) {
            plat_keypair_t kp;
            if (plat_keys_new(&kp) != 0 ||
                zmq_setsockopt(socks[i], ZMQ_CURVE_SERVERKEY, rr->key.public_z85, 40) != 0 ||
                zmq_setsockopt(socks[i], ZMQ_CURVE_PUBLICKEY, kp.public_z85, 40) != 0 ||
                zmq_setsockopt(socks[i], ZMQ_CURVE_SECRETKEY, kp.secret_z85, 40) != 0)
                bench_fail("raw CURVE client: %s", zmq_strerror(zmq_errno()));
            plat_keys_wipe(&kp);
        }
        if (zmq_connect(socks[i], rr->endpoint) != 0)
            bench_fail("connect %s: %s", rr->endpoint, zmq_strerror(zmq_errno()));
    }
    uint64_t t0 = bench_now_ns();
    for (bool ok = false; !ok;) {
        raw_send_request(x);
        for (uint64_t t1 = bench_now_ns(); !ok && bench_ms_since(t1) < 200;) {
            raw_serve(x);
            ok = raw_take_reply(x);
            if (!ok)
                poll2(x, 20);
        }
        if (bench_ms_since(t0) > 10000)
            bench_fail("raw router at %s does not answer", rr->endpoint);
    }
}

static void print_route(const exchange_t *x)
{
    bench_stats_t s = bench_stats_of(x->lat, x->n_lat);
    double rps = x->tp_n / x->tp_s;
    printf("  %-30s %11.0f %9.1f %9.1f %9.1f %10.1f %10.1f %8.0f%%\n", x->name, rps, s.median,
           s.p99, s.mean, x->router_cpu_ms * 1000.0 / x->tp_n, x->driver_cpu_ms * 1000.0 / x->tp_n,
           x->router_cpu_ms / 10.0 / x->tp_s);
}

static void print_ratios(const char *label, const exchange_t *r, const exchange_t *base,
                         bool targets)
{
    bench_stats_t sr = bench_stats_of(r->lat, r->n_lat),
                  sb = bench_stats_of(base->lat, base->n_lat);
    double tp = (r->tp_n / r->tp_s) / (base->tp_n / base->tp_s);
    double p99 = sr.p99 / sb.p99;
    if (targets)
        printf("  %-30s throughput %.2f (target >= 0.50: %s), p99 %.2f (target <= 2.00: %s), "
               "p50 %.2f\n",
               label, tp, tp >= 0.50 ? "met" : "MISSED", p99, p99 <= 2.00 ? "met" : "MISSED",
               sr.median / sb.median);
    else
        printf("  %-30s throughput %.2f, p99 %.2f, p50 %.2f\n", label, tp, p99,
               sr.median / sb.median);
}

/* platformd's bus counters (GET /api/v1/status): forwarded and dropped. */
static void bus_counters(long long *forwarded, long long *dropped, char *which, size_t size)
{
    json_t *st = bench_http_must("GET", "/api/v1/status", NULL, 200, 0);
    json_t *bus = json_object_get(st, "bus");
    *forwarded = json_integer_value(json_object_get(bus, "forwarded"));
    *dropped = 0;
    which[0] = 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(bus, "dropped"), k, v)
    {
        long long n = json_integer_value(v);
        *dropped += n;
        if (n) {
            size_t len = strlen(which);
            snprintf(which + len, size - len, "%s%s %lld", len ? ", " : "", k, n);
        }
    }
    json_decref(st);
}

static void bench_route(const opts_t *o, void *zctx, raw_router_t *plain, raw_router_t *curve)
{
    uint8_t *payload = malloc((size_t)o->size + 1);
    if (!payload)
        bench_fail("out of memory");
    for (int i = 0; i < o->size; i++)
        payload[i] = (uint8_t)('a' + i % 26);

    exchange_t x[3];
    memset(x, 0, sizeof x);
    raw_open(&x[0], zctx, plain, "raw ZeroMQ, plain");
    raw_open(&x[1], zctx, curve, "raw ZeroMQ, CURVE");

    /* Routed: two dev hosts, CURVE clients authorized in platformd's
     * authorized keys file, registered with platformd. */
    bench_peer_t *pa =
        bench_peer_new(zctx, bench_platform_bus_endpoint(), NULL, bench_platform_public_key());
    bench_peer_t *pb =
        bench_peer_new(zctx, bench_platform_bus_endpoint(), NULL, bench_platform_public_key());
    bench_peer_connect(pa);
    bench_peer_connect(pb);
    bench_peer_register(pa, 10000);
    bench_peer_register(pb, 10000);
    g_idle[0] = pa;
    g_idle[1] = pb;
    x[2] = (exchange_t){.name = "through platformd, CURVE",
                        .send_request = routed_send_request,
                        .serve = routed_serve,
                        .take_reply = routed_take_reply,
                        .a = bench_peer_socket(pa),
                        .b = bench_peer_socket(pb),
                        .pa = pa,
                        .pb = pb,
                        .a_id = bench_peer_id(pa),
                        .b_id = bench_peer_id(pb),
                        .router = bench_platformd_pid()};
    for (int i = 0; i < 3; i++) {
        x[i].payload = payload;
        x[i].size = (size_t)o->size;
        x[i].lat = malloc((size_t)o->latency_n * sizeof *x[i].lat);
        if (!x[i].lat)
            bench_fail("out of memory");
    }
    long long fwd0, drop0, fwd1, drop1;
    char which[512];
    bus_counters(&fwd0, &drop0, which, sizeof which);

    /* Round by round, each way in turn: a change of the machine's load
     * during the run weighs on all three alike. */
    int warm = o->latency_n / 10 / o->rounds + 10;
    for (int r = 0; r < o->rounds; r++) {
        int nl = o->latency_n / o->rounds + (r < o->latency_n % o->rounds);
        int nt = o->throughput_n / o->rounds + (r < o->throughput_n % o->rounds);
        for (int i = 0; i < 3; i++)
            run_latency(&x[i], nl, warm);
        for (int i = 0; i < 3; i++)
            run_throughput(&x[i], nt, o->window);
    }
    bus_counters(&fwd1, &drop1, which, sizeof which);

    printf("\n1. request/response, %d-byte payload each way, %d rounds of the three in turn;\n"
           "   latency over %d round trips one at a time, throughput over %d round trips with "
           "%d in flight\n",
           o->size, o->rounds, o->latency_n, o->throughput_n, o->window);
    printf("  %-30s %11s %9s %9s %9s %10s %10s %9s\n", "", "round trips/s", "p50 µs", "p99 µs",
           "mean µs", "router CPU", "driver CPU", "router");
    printf("  %-30s %11s %9s %9s %9s %10s %10s %9s\n", "", "(windowed)", "", "", "", "µs per rt",
           "µs per rt", "% of core");
    for (int i = 0; i < 3; i++)
        print_route(&x[i]);
    printf("  ratios, platformd / raw CURVE (the targets; same security on both sides):\n");
    print_ratios("", &x[2], &x[1], true);
    printf("  ratios, platformd / raw plain (context: what CURVE itself costs is in here "
           "too):\n");
    print_ratios("", &x[2], &x[0], false);
    printf("  platformd forwarded %lld messages during the run, dropped %lld%s%s%s\n", fwd1 - fwd0,
           drop1 - drop0, drop1 > drop0 ? " (all since start: " : "", drop1 > drop0 ? which : "",
           drop1 > drop0 ? ")" : "");

    for (int i = 0; i < 2; i++) {
        zmq_close(x[i].a);
        zmq_close(x[i].b);
    }
    for (int i = 0; i < 3; i++)
        free(x[i].lat);
    g_idle[0] = g_idle[1] = NULL;
    bench_peer_destroy(&pa);
    bench_peer_destroy(&pb);
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
           "(interval 1000 ms), %d s measured per level\n",
           o->seconds);
    printf("  %-10s %15s %10s %14s %10s %16s\n", "dev hosts", "CPU % of a core", "CPU ms",
           "CPU µs per ping", "RSS kB", "pings per host");
    size_t have = 0;
    double pct_100 = -1;
    for (size_t l = 0; l < o->n_levels; l++) {
        size_t want = (size_t)o->hosts[l];
        /* Every new peer's key into the authorized keys file at once (one
         * write, one re-read by platformd), then all connect (the CURVE
         * handshakes run concurrently), then each registers. */
        for (size_t i = have; i < want; i++)
            peers[i] = bench_peer_new(zctx, platform_endpoint, NULL, bench_platform_public_key());
        for (size_t i = have; i < want; i++)
            bench_peer_connect(peers[i]);
        for (; have < want; have++) {
            bench_peer_register(peers[have], 10000);
            if (have % 50 == 49)
                pump_all(peers, have + 1, 1); /* keep the earlier ones answering */
        }
        pump_all(peers, have, 3000); /* settle: registration work is not idle work */
        for (size_t i = 0; i < have; i++)
            pings0[i] = bench_peer_pings(peers[i]);
        double cpu0 = bench_proc_runtime_ms(pd);
        uint64_t t0 = bench_now_ns();
        pump_all(peers, have, o->seconds * 1000);
        double wall = bench_ms_since(t0);
        double cpu = bench_proc_runtime_ms(pd) - cpu0;
        long rss = bench_proc_kb(pd, "status", "VmRSS");
        uint64_t min_pings = UINT64_MAX, all_pings = 0;
        for (size_t i = 0; i < have; i++) {
            uint64_t d = bench_peer_pings(peers[i]) - pings0[i];
            min_pings = d < min_pings ? d : min_pings;
            all_pings += d;
        }
        double pct = cpu / wall * 100.0;
        if (have == 100)
            pct_100 = pct;
        printf("  %-10zu %15.2f %10.1f %14.1f %10ld %16llu\n", have, pct, cpu,
               all_pings ? cpu * 1000.0 / (double)all_pings : 0.0, rss,
               (unsigned long long)min_pings);
        if (min_pings == 0)
            bench_fail("a host got no ping in %d s: the platform is not heartbeating it",
                       o->seconds);
    }
    printf("  (hostboot-bench is connected and heartbeating at every level as well)\n");
    if (pct_100 >= 0)
        printf("  target: platformd idle CPU under 1%% of a core with 100 idle hosts: %.2f%%, %s\n",
               pct_100, pct_100 < 1.0 ? "met" : "MISSED");
    else
        printf("  target: platformd idle CPU under 1%% of a core with 100 idle hosts (no level of "
               "100 in this run)\n");
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
            "  --latency N          round trips one at a time, per way (default 10000)\n"
            "  --throughput N       round trips of the windowed run, per way (default 100000)\n"
            "  --window N           requests in flight (default 64)\n"
            "  --rounds N           route: rounds of the three ways in turn (default 4)\n"
            "  --rate-per-sec N     platformd's bus.rate_per_sec for the run (default 10000000;\n"
            "                       platformd's own default, 2000, throttles the route run)\n"
            "  --rate-burst N       platformd's bus.rate_burst (default 10000000)\n"
            "  --default-limits     leave bus.rate_per_sec and bus.rate_burst at platformd's\n"
            "                       defaults (the route run then fails with -EBUSY)\n"
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
    opts_t o = {.platformd = BENCH_PLATFORMD_BIN,
                .hostbootd = BENCH_HOSTBOOTD_BIN,
                .pluginhost = BENCH_PLUGINHOST_BIN,
                .size = 256,
                .latency_n = 10000,
                .throughput_n = 100000,
                .window = 64,
                .hosts = {1, 100, 500},
                .n_levels = 3,
                .seconds = 10,
                .rounds = 4,
                .rate_per_sec = 10000000,
                .rate_burst = 10000000,
                .route = true,
                .scale = true};
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
        {"size", required_argument, NULL, 's'},
        {"latency", required_argument, NULL, 'l'},
        {"throughput", required_argument, NULL, 't'},
        {"window", required_argument, NULL, 'w'},
        {"hosts", required_argument, NULL, 'n'},
        {"seconds", required_argument, NULL, 'S'},
        {"rounds", required_argument, NULL, 'r'},
        {"rate-per-sec", required_argument, NULL, 'R'},
        {"rate-burst", required_argument, NULL, 'B'},
        {"default-limits", no_argument, NULL, 'D'},
        {"keep", no_argument, NULL, 'k'},
        {"platformd", required_argument, NULL, 'P'},
        {"hostbootd", required_argument, NULL, 'H'},
        {"pluginhost", required_argument, NULL, 'E'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            o.size = bench_int_arg(optarg, 0, 1 << 20, usage);
            break;
        case 'l':
            o.latency_n = bench_int_arg(optarg, 1, 10000000, usage);
            break;
        case 't':
            o.throughput_n = bench_int_arg(optarg, 1, 100000000, usage);
            break;
        case 'w':
            o.window = bench_int_arg(optarg, 1, 10000, usage);
            break;
        case 'n':
            parse_levels(optarg, &o);
            break;
        case 'S':
            o.seconds = bench_int_arg(optarg, 1, 3600, usage);
            break;
        case 'r':
            o.rounds = bench_int_arg(optarg, 1, 100, usage);
            break;
        case 'R':
            o.rate_per_sec = bench_int_arg(optarg, 0, 10000000, usage);
            break;
        case 'B':
            o.rate_burst = bench_int_arg(optarg, 0, 10000000, usage);
            break;
        case 'D':
            o.rate_per_sec = o.rate_burst = -1;
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
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (o.rounds > o.latency_n || o.rounds > o.throughput_n) {
        fprintf(stderr, "bench: --rounds must not exceed --latency and --throughput\n");
        return 2;
    }
    /* 500 DEALERs: two descriptors each here, one each in platformd. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    bench_init(o.keep);
    /* The bus as by default (CURVE on) but for: host → host messages,
     * which the route run is made of (bus.allow_peer_to_peer, default
     * false); and the per-peer rate limit, which would throttle it. */
    json_t *bus = json_pack("{s:b}", "allow_peer_to_peer", 1);
    if (o.rate_per_sec >= 0)
        json_object_set_new(bus, "rate_per_sec", json_integer(o.rate_per_sec));
    if (o.rate_burst >= 0)
        json_object_set_new(bus, "rate_burst", json_integer(o.rate_burst));
    bench_platform_t p = {.platformd = o.platformd,
                          .hostbootd = o.hostbootd,
                          .pluginhost = o.pluginhost,
                          .platformd_extra = json_pack("{s:o}", "bus", bus)};
    bench_platform_start(&p);
    char load[64];
    bench_loadavg(load, sizeof load);
    struct utsname u;
    uname(&u);
    printf("bench_bus: %s %s %s, %ld CPUs, load average %s\n", u.sysname, u.release, u.machine,
           sysconf(_SC_NPROCESSORS_ONLN), load);
    char rate[96], burst[96];
    if (o.rate_per_sec >= 0)
        snprintf(rate, sizeof rate, "%d (default %d)", o.rate_per_sec, PD_DEFAULT_RATE_PER_SEC);
    else
        snprintf(rate, sizeof rate, "%d (the default)", PD_DEFAULT_RATE_PER_SEC);
    if (o.rate_burst >= 0)
        snprintf(burst, sizeof burst, "%d (default %d)", o.rate_burst, PD_DEFAULT_RATE_BURST);
    else
        snprintf(burst, sizeof burst, "%d (the default)", PD_DEFAULT_RATE_BURST);
    printf("bench_bus: platformd's bus: curve true (default); allow_peer_to_peer true (default "
           "false: host -> host refused);\n"
           "bench_bus:   rate_per_sec %s, rate_burst %s%s;\n"
           "bench_bus:   max_pending_per_peer %d (default; counts requests to the platform "
           "only); heartbeat 1000 ms (default)\n",
           rate, burst,
           o.rate_per_sec >= 0 && o.rate_per_sec != PD_DEFAULT_RATE_PER_SEC
               ? " — raised: the default throttles the route run (docs/performance.md)"
               : "",
           PD_DEFAULT_MAX_PENDING);
    fflush(stdout);
    /* The raw routers are forked before this process creates its ZeroMQ
     * context. */
    raw_router_t plain, curve;
    if (o.route) {
        raw_router_start(&plain, false);
        raw_router_start(&curve, true);
    }
    void *zctx = zmq_ctx_new();
    int max_sockets = 2048;
    zmq_ctx_set(zctx, ZMQ_MAX_SOCKETS, max_sockets);
    uint64_t t0 = bench_now_ns();
    if (o.route) {
        bench_route(&o, zctx, &plain, &curve);
        raw_router_stop(&plain);
        raw_router_stop(&curve);
    }
    double route_s = bench_ms_since(t0) / 1000.0;
    t0 = bench_now_ns();
    if (o.scale)
        bench_scale(&o, zctx, bench_platform_bus_endpoint());
    double scale_s = bench_ms_since(t0) / 1000.0;
    zmq_ctx_term(zctx);
    bench_cleanup(true);
    bench_loadavg(load, sizeof load);
    printf("\nwall time: route %.1f s, scale %.1f s; load average at the end %s\n", route_s,
           scale_s, load);
    return 0;
}
