/* plat/bus.h, what the security work added, in process: a CURVE ROUTER bus
 * ("platform") and CURVE DEALER buses on one uv loop over loopback TCP,
 * with a minimal ZAP handler of the test's own (a REP socket on
 * inproc://zeromq.zap.01 in czmq's context, driven by the same loop) that
 * admits exactly the keys a test registered, each as one endpoint id — as
 * platformd/zap.c does. Raw libzmq CURVE DEALERs play misbehaving peers.
 *   - identity binding: the ZAP User-Id is the peer; a routing id or a
 *     header Source other than it is dropped as spoofed and counted;
 *     unknown keys, plaintext clients and a wrong server key never get a
 *     message through;
 *   - the per-peer token bucket (rate_per_sec, rate_burst): a burst of N is
 *     accepted, a flood of 10N is cut, requests over it are answered
 *     -EBUSY, the bucket refills, another peer is unaffected;
 *   - max_pending: a peer's unanswered requests are bounded, events are not,
 *     an answer or an expiry makes room;
 *   - platform_only: a DEALER addressing another DEALER is dropped as
 *     forbidden and a request is answered -EACCES.
 * Counts are asserted with slack where time is involved (a refill can add
 * a token or two); upper bounds come from the measured elapsed time, never
 * from a guess about how fast the machine is. Every wait polls against a
 * deadline. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <zmq.h>

#include "plat/bus.h"
#include "plat/envelope.h"
#include "plat/id.h"
#include "plat/keys.h"
#include "plat/msg.h"
#include "plat/uvzmq.h"
#include "testports.h"

#define DEADLINE_MS 3000
#define MAX_REC 512
#define MAX_KEYS 16
#define MAX_STASH 64

/* ---- fixture -------------------------------------------------------------- */

typedef enum {
    ACT_IGNORE = 0, /* requests are left unanswered */
    ACT_PONG,       /* answer requests with Control.pong READY */
    ACT_STASH,      /* keep every request (answered by the test) */
} action_t;

typedef struct {
    plat_bus_drop_t reason;
    char peer[PLAT_ID_MAX + 1];
    char source[PLAT_ID_MAX + 1];
    bool had_msg;
    int error_code; /* header.error.code of the dropped message, if any */
    char why[128];
} drop_rec_t;

typedef struct {
    char peer[PLAT_ID_MAX + 1];
    char source[PLAT_ID_MAX + 1];
    Plat__MessageKind kind;
    uint64_t seq;
} rx_rec_t;

typedef struct fx fx_t;

typedef struct {
    fx_t *f;
    plat_bus_t *bus;
    char id[PLAT_ID_MAX + 1];
    char boot[PLAT_UUID_LEN + 1];
    plat_keypair_t kp;
    action_t act;
    int n_rx;
    rx_rec_t rx[MAX_REC];
    int n_drop;
    drop_rec_t drop[MAX_REC];
    int n_stash;
    Plat__PlatformMessage *stash[MAX_STASH];
} side_t;

typedef struct {
    int calls;
    int status;
    int error_code; /* header.error.code of the reply, 0 if none */
} req_t;

typedef struct {
    char id[PLAT_ID_MAX + 1];
    char pub[PLAT_KEY_Z85_LEN + 1];
} zkey_t;

struct fx {
    uv_loop_t loop;
    uv_timer_t tick; /* keeps UV_RUN_ONCE from blocking past a deadline */
    char addr[64];
    plat_keypair_t server;
    /* the ZAP handler */
    plat_uvzmq_t *zap_watch;
    zkey_t keys[MAX_KEYS];
    int n_keys;
    int zap_admitted, zap_refused;
    /* a monitor on the ROUTER */
    zsock_t *mon;
    int hs_failed; /* HANDSHAKE_FAILED_{NO_DETAIL,PROTOCOL,AUTH} events */
    side_t router, a, b;
    void *ctx; /* raw libzmq context for misbehaving peers */
    void *raw[4];
    req_t req[MAX_REC];
};

/* One ZAP socket for the process: binding and unbinding inproc endpoints
 * per test could race with libzmq's reaper. */
static zsock_t *g_zap;

static fx_t *g_fx; /* the test running now (for the ZAP handler) */

/* ---- ZAP handler ---------------------------------------------------------- */

static void zap_send(void *s, const char *reqid, size_t reqid_len, const char *status,
                     const char *text, const char *user)
{
    zmq_send(s, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(s, reqid, reqid_len, ZMQ_SNDMORE);
    zmq_send(s, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(s, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(s, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(s, "", 0, 0);
}

/* RFC 27: version, request id, domain, address, routing id, mechanism,
 * credentials (CURVE: the client's 32-byte public key). */
static int on_zap(void *arg)
{
    fx_t *f = arg;
    void *s = zsock_resolve(g_zap);
    zmq_msg_t fr[8];
    int n = 0;
    bool more = true;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            if (n == 0)
                return 0;
            break;
        }
        more = zmq_msg_more(&m);
        if (n < 8)
            fr[n++] = m;
        else
            zmq_msg_close(&m);
    }
    char reqid[256] = "";
    size_t reqid_len = 0;
    if (n >= 2) {
        reqid_len = zmq_msg_size(&fr[1]) < sizeof reqid ? zmq_msg_size(&fr[1]) : 0;
        memcpy(reqid, zmq_msg_data(&fr[1]), reqid_len);
    }
    char key[PLAT_KEY_Z85_LEN + 1] = "";
    bool shape = n == 7 && zmq_msg_size(&fr[5]) == 5 &&
                 memcmp(zmq_msg_data(&fr[5]), "CURVE", 5) == 0 &&
                 zmq_msg_size(&fr[2]) == strlen(PLAT_ZAP_DOMAIN) &&
                 memcmp(zmq_msg_data(&fr[2]), PLAT_ZAP_DOMAIN, strlen(PLAT_ZAP_DOMAIN)) == 0 &&
                 plat_key_from_bin(zmq_msg_data(&fr[6]), zmq_msg_size(&fr[6]), key) == 0;
    for (int i = 0; i < n; i++)
        zmq_msg_close(&fr[i]);
    const char *user = NULL;
    for (int i = 0; shape && i < f->n_keys; i++)
        if (strcmp(f->keys[i].pub, key) == 0)
            user = f->keys[i].id;
    if (user) {
        f->zap_admitted++;
        zap_send(s, reqid, reqid_len, "200", "OK", user);
    } else {
        f->zap_refused++;
        zap_send(s, reqid, reqid_len, "400", "unknown key", "");
    }
    plat_uvzmq_kick(f->zap_watch);
    return 1;
}

/* Admit `kp` as `id` from now on. */
static void zap_allow(fx_t *f, const char *id, const plat_keypair_t *kp)
{
    assert_true(f->n_keys < MAX_KEYS);
    zkey_t *k = &f->keys[f->n_keys++];
    snprintf(k->id, sizeof k->id, "%s", id);
    snprintf(k->pub, sizeof k->pub, "%s", kp->public_z85);
}

/* ---- the ROUTER's monitor ------------------------------------------------- */

static void monitor_start(fx_t *f)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://test-bus-limits-mon-%p", (void *)f);
    void *router = plat_endpoint_handle(plat_bus_endpoint(f->router.bus));
    assert_int_equal(zmq_socket_monitor(router, ep,
                                        ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                            ZMQ_EVENT_HANDSHAKE_FAILED_AUTH),
                     0);
    f->mon = zsock_new(ZMQ_PAIR);
    assert_non_null(f->mon);
    assert_int_equal(zmq_connect(zsock_resolve(f->mon), ep), 0);
}

/* Count the monitor's events so far. */
static int monitor_failed(fx_t *f)
{
    void *s = zsock_resolve(f->mon);
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        bool first = zmq_msg_size(&m) >= 6;
        bool more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        if (first)
            f->hs_failed++;
        while (more) { /* the endpoint frame */
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                break;
            }
            more = zmq_msg_more(&m);
            zmq_msg_close(&m);
        }
    }
    return f->hs_failed;
}

/* ---- buses ---------------------------------------------------------------- */

static Plat__PlatformMessage *copy_msg(const Plat__PlatformMessage *m)
{
    size_t n = plat__platform_message__get_packed_size(m);
    uint8_t *b = malloc(n ? n : 1);
    plat__platform_message__pack(m, b);
    Plat__PlatformMessage *c = plat__platform_message__unpack(NULL, n, b);
    free(b);
    return c;
}

static void on_message(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg)
{
    side_t *s = arg;
    assert_ptr_equal(bus, s->bus);
    const Plat__Header *h = rx->msg->header;
    if (s->n_rx < MAX_REC) {
        rx_rec_t *r = &s->rx[s->n_rx];
        snprintf(r->peer, sizeof r->peer, "%s", rx->peer);
        snprintf(r->source, sizeof r->source, "%s", h->source->id);
        r->kind = h->kind;
        r->seq = h->seq_no;
    }
    s->n_rx++;
    if (h->kind != PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
        return;
    if (s->act == ACT_PONG) {
        Plat__PlatformMessage *reply = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
        assert_int_equal(plat_bus_reply(bus, rx->msg, reply), 0);
        plat_envelope_free(&reply);
    } else if (s->act == ACT_STASH && s->n_stash < MAX_STASH) {
        s->stash[s->n_stash++] = copy_msg(rx->msg);
    }
}

static void on_drop(plat_bus_t *bus, plat_bus_drop_t reason, const char *peer,
                    const Plat__PlatformMessage *msg, const char *why, void *arg)
{
    side_t *s = arg;
    assert_ptr_equal(bus, s->bus);
    assert_non_null(peer);
    assert_non_null(why);
    if (s->n_drop < MAX_REC) {
        drop_rec_t *d = &s->drop[s->n_drop];
        d->reason = reason;
        snprintf(d->peer, sizeof d->peer, "%s", peer);
        d->had_msg = msg != NULL;
        snprintf(d->source, sizeof d->source, "%s",
                 msg && msg->header && msg->header->source ? msg->header->source->id : "");
        d->error_code = msg && msg->header && msg->header->error ? msg->header->error->code : 0;
        snprintf(d->why, sizeof d->why, "%s", why);
    }
    s->n_drop++;
}

static void on_reply(int status, const Plat__PlatformMessage *reply, void *arg)
{
    req_t *r = arg;
    r->calls++;
    r->status = status;
    r->error_code = reply && reply->header->error ? reply->header->error->code : 0;
}

static void on_tick(uv_timer_t *t) { (void)t; }

static void on_closed(uv_handle_t *h) { (void)h; }

#define WAIT_FOR(f, cond)                                                                     \
    do {                                                                                      \
        uint64_t end_ = plat_mono_ms() + DEADLINE_MS;                                         \
        while (!(cond) && plat_mono_ms() < end_)                                              \
            uv_run(&(f)->loop, UV_RUN_ONCE);                                                  \
        if (!(cond))                                                                          \
            fail_msg("%s:%d: timed out waiting for %s", __FILE__, __LINE__, #cond);           \
    } while (0)

static void make_host_id(char *out, size_t size)
{
    char uuid[PLAT_UUID_LEN + 1];
    plat_uuid_new(uuid);
    snprintf(out, size, "host-%s", uuid);
}

typedef struct {
    uint32_t rate_per_sec, rate_burst, max_pending;
    bool platform_only;
} limits_t;

static void router_start(fx_t *f, const limits_t *lim)
{
    side_t *r = &f->router;
    r->f = f;
    snprintf(r->id, sizeof r->id, "%s", PLAT_PLATFORM_ID);
    plat_uuid_new(r->boot);
    plat_bus_opts_t o = {
        .role = PLAT_ENDPOINT_ROUTER,
        .identity = r->id,
        .address = f->addr,
        .endpoint = {.curve_secret = f->server.secret_z85},
        .boot_id = r->boot,
        .on_message = on_message,
        .on_drop = on_drop,
        .arg = r,
        .rate_per_sec = lim->rate_per_sec,
        .rate_burst = lim->rate_burst,
        .max_pending = lim->max_pending,
        .platform_only = lim->platform_only,
    };
    r->bus = plat_bus_new(&f->loop, &o);
    assert_non_null(r->bus);
}

/* A CURVE DEALER bus `id`, its key admitted as `id`; it says hello (one
 * event) and returns once the ROUTER has it, so the ROUTER can route to it. */
static void dealer_start(fx_t *f, side_t *s, const char *id)
{
    s->f = f;
    snprintf(s->id, sizeof s->id, "%s", id);
    plat_uuid_new(s->boot);
    assert_int_equal(plat_keys_new(&s->kp), 0);
    zap_allow(f, id, &s->kp);
    plat_bus_opts_t o = {
        .role = PLAT_ENDPOINT_DEALER,
        .identity = s->id,
        .address = f->addr,
        .endpoint = {.curve_secret = s->kp.secret_z85, .curve_server_key = f->server.public_z85},
        .boot_id = s->boot,
        .on_message = on_message,
        .on_drop = on_drop,
        .arg = s,
    };
    s->bus = plat_bus_new(&f->loop, &o);
    assert_non_null(s->bus);
    Plat__PlatformMessage *m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_STARTING);
    assert_int_equal(plat_bus_send(s->bus, PLAT_PLATFORM_ID, m), 0);
    plat_envelope_free(&m);
    int want = f->router.n_rx + 1;
    WAIT_FOR(f, f->router.n_rx >= want);
    assert_string_equal(f->router.rx[want - 1].peer, id);
}

static void side_clear(side_t *s)
{
    for (int i = 0; i < s->n_stash; i++)
        plat_envelope_free(&s->stash[i]);
    s->n_stash = 0;
    plat_keys_wipe(&s->kp);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || uv_loop_init(&f->loop) != 0)
        return -1;
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, 20, 20);
    if (plat_test_free_endpoint(f->addr, sizeof f->addr) < 0 || plat_keys_new(&f->server) != 0)
        return -1;
    f->zap_watch = plat_uvzmq_new(&f->loop, zsock_resolve(g_zap), 0, on_zap, f);
    if (!f->zap_watch)
        return -1;
    f->ctx = zmq_ctx_new();
    g_fx = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 4; i++)
        if (f->raw[i])
            zmq_close(f->raw[i]);
    zmq_ctx_term(f->ctx);
    plat_bus_destroy(&f->b.bus);
    plat_bus_destroy(&f->a.bus);
    if (f->mon && f->router.bus)
        zmq_socket_monitor(plat_endpoint_handle(plat_bus_endpoint(f->router.bus)), NULL, 0);
    zsock_destroy(&f->mon);
    plat_bus_destroy(&f->router.bus);
    plat_uvzmq_close(&f->zap_watch);
    uv_close((uv_handle_t *)&f->tick, on_closed);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    side_clear(&f->router);
    side_clear(&f->a);
    side_clear(&f->b);
    plat_keys_wipe(&f->server);
    g_fx = NULL;
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

/* ---- raw peers ------------------------------------------------------------ */

/* A raw DEALER announcing exactly routing id `route`; CURVE client with
 * `kp` unless NULL; `server` is the server key it believes in. */
static void *raw_new_route(fx_t *f, int slot, const char *route, const plat_keypair_t *kp,
                           const char *server)
{
    void *s = zmq_socket(f->ctx, ZMQ_DEALER);
    assert_non_null(s);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_setsockopt(s, ZMQ_ROUTING_ID, route, strlen(route)), 0);
    if (kp) {
        assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server, PLAT_KEY_Z85_LEN), 0);
        assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, kp->public_z85, PLAT_KEY_Z85_LEN),
                         0);
        assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, kp->secret_z85, PLAT_KEY_Z85_LEN),
                         0);
    }
    assert_int_equal(zmq_connect(s, f->addr), 0);
    f->raw[slot] = s;
    return s;
}

/* The same announcing "<rid>/<token>" as real endpoints do (id.h) when
 * `rid` is a valid id and CURVE is on, else `rid` as it is. */
static void *raw_new(fx_t *f, int slot, const char *rid, const plat_keypair_t *kp,
                     const char *server)
{
    char route[PLAT_ID_MAX + 1];
    if (kp && plat_id_kind(rid) != PLAT_ID_INVALID)
        assert_int_equal(plat_route_new(rid, route), 0);
    else
        snprintf(route, sizeof route, "%s", rid);
    return raw_new_route(f, slot, route, kp, server);
}

/* Messages waiting on raw socket `s` after up to `wait_ms` (0 = none now). */
static int raw_pending(void *s, int wait_ms)
{
    zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
    int n = 0;
    while (zmq_poll(&it, 1, n ? 0 : wait_ms) > 0 && (it.revents & ZMQ_POLLIN)) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) >= 0)
            n++;
        zmq_msg_close(&m);
    }
    return n;
}

static void set_str(char **field, const char *v)
{
    if (*field != protobuf_c_empty_string)
        free(*field);
    *field = plat_msg_strdup(v);
}

/* A valid envelope (control.ping) with the given header fields. */
static size_t encode(const char *src, const char *dst, uint64_t seq, Plat__MessageKind kind,
                     uint8_t **out)
{
    Plat__PlatformMessage *m = plat_msg_ping("00000000-0000-4000-8000-000000000000");
    assert_non_null(m->header);
    set_str(&m->header->source->id, src);
    set_str(&m->header->destination->id, dst);
    m->header->seq_no = seq;
    m->header->kind = kind;
    m->header->timeout_ms = 30000;
    size_t n = 0;
    assert_int_equal(plat_envelope_encode(m, 0, out, &n), 0);
    plat_envelope_free(&m);
    return n;
}

static void raw_send(void *s, const char *src, const char *dst, uint64_t seq,
                     Plat__MessageKind kind)
{
    uint8_t *b;
    size_t n = encode(src, dst, seq, kind, &b);
    assert_int_equal(zmq_send(s, b, n, ZMQ_DONTWAIT), (int)n);
    free(b);
}

/* Replies that reached raw socket `s`: error codes into codes[] by seq. */
static int raw_replies(void *s, uint64_t seq_out[], int code_out[], int max)
{
    int n = 0;
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return n;
        }
        Plat__PlatformMessage *p = NULL;
        if (plat_envelope_decode(zmq_msg_data(&m), zmq_msg_size(&m), 0, &p, NULL) == 0 &&
            n < max) {
            seq_out[n] = p->header->seq_no;
            code_out[n] = p->header->error ? p->header->error->code : 0;
            n++;
        }
        plat_envelope_free(&p);
        zmq_msg_close(&m);
    }
}

/* ---- helpers -------------------------------------------------------------- */

static int drops_of(const side_t *s, plat_bus_drop_t reason, const char *peer)
{
    int n = 0;
    for (int i = 0; i < s->n_drop && i < MAX_REC; i++)
        if (s->drop[i].reason == reason && (!peer || strcmp(s->drop[i].peer, peer) == 0))
            n++;
    return n;
}

static int rx_from(const side_t *s, const char *peer, int from_index)
{
    int n = 0;
    for (int i = from_index; i < s->n_rx && i < MAX_REC; i++)
        if (strcmp(s->rx[i].peer, peer) == 0)
            n++;
    return n;
}

static uint64_t dropped(const fx_t *f, plat_bus_drop_t reason)
{
    return plat_bus_stats(f->router.bus)->dropped[reason];
}

static void send_event(side_t *s, const char *dst)
{
    Plat__PlatformMessage *m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_bus_send(s->bus, dst, m), 0);
    plat_envelope_free(&m);
}

static void send_request(fx_t *f, side_t *s, const char *dst, uint32_t timeout_ms, int slot)
{
    Plat__PlatformMessage *m = plat_msg_ping(s->boot);
    assert_true(plat_bus_request(s->bus, dst, m, timeout_ms, on_reply, &f->req[slot]) > 0);
    plat_envelope_free(&m);
}

/* ---- CURVE: admission and identity binding -------------------------------- */

static void test_curve_identity_is_the_zap_user_id(void **state)
{
    fx_t *f = *state;
    limits_t none = {0};
    router_start(f, &none);
    char a_id[PLAT_ID_MAX + 1];
    make_host_id(a_id, sizeof a_id);
    dealer_start(f, &f->a, a_id);
    assert_int_equal(f->zap_admitted, 1);
    side_t *r = &f->router;
    assert_string_equal(r->rx[0].peer, a_id);

    /* a request and its answer over CURVE */
    r->act = ACT_PONG;
    send_request(f, &f->a, PLAT_PLATFORM_ID, 2000, 0);
    WAIT_FOR(f, f->req[0].calls == 1);
    assert_int_equal(f->req[0].status, 0);
    assert_int_equal(f->req[0].error_code, 0);

    /* a key admitted as host-B that announces routing id host-Z and says
     * so in its header: the routing id is not its identity */
    char b_id[PLAT_ID_MAX + 1], z_id[PLAT_ID_MAX + 1];
    make_host_id(b_id, sizeof b_id);
    make_host_id(z_id, sizeof z_id);
    plat_keypair_t kb;
    assert_int_equal(plat_keys_new(&kb), 0);
    zap_allow(f, b_id, &kb);
    void *rz = raw_new(f, 0, z_id, &kb, f->server.public_z85);
    raw_send(rz, z_id, PLAT_PLATFORM_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    WAIT_FOR(f, r->n_drop >= 1);
    assert_int_equal(r->drop[0].reason, PLAT_BUS_DROP_SPOOFED);
    assert_string_equal(r->drop[0].peer, b_id);
    assert_string_equal(r->drop[0].source, z_id);
    assert_non_null(strstr(r->drop[0].why, "routing id"));

    /* the same key, honest routing id, but claiming A's Source */
    void *rb = raw_new(f, 1, b_id, &kb, f->server.public_z85);
    raw_send(rb, a_id, PLAT_PLATFORM_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    /* and claiming the platform's */
    raw_send(rb, PLAT_PLATFORM_ID, PLAT_PLATFORM_ID, 2, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    /* then a valid probe on that connection: everything before it is handled */
    int rx0 = r->n_rx;
    raw_send(rb, b_id, PLAT_PLATFORM_ID, 3, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    WAIT_FOR(f, r->n_rx > rx0);
    assert_string_equal(r->rx[rx0].peer, b_id);
    assert_int_equal(r->rx[rx0].seq, 3);
    assert_int_equal(r->n_drop, 3);
    assert_int_equal(r->drop[1].reason, PLAT_BUS_DROP_SPOOFED);
    assert_string_equal(r->drop[1].source, a_id);
    assert_int_equal(r->drop[2].reason, PLAT_BUS_DROP_SPOOFED);
    assert_string_equal(r->drop[2].source, PLAT_PLATFORM_ID);
    assert_non_null(strstr(r->drop[1].why, "source"));

    /* a hostboot's key claiming a host id (routing id and Source both) */
    plat_keypair_t khb;
    assert_int_equal(plat_keys_new(&khb), 0);
    zap_allow(f, "hostboot-x", &khb);
    char victim[PLAT_ID_MAX + 1];
    make_host_id(victim, sizeof victim);
    void *rh = raw_new(f, 2, victim, &khb, f->server.public_z85);
    raw_send(rh, victim, PLAT_PLATFORM_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
    WAIT_FOR(f, r->n_drop >= 4);
    assert_int_equal(r->drop[3].reason, PLAT_BUS_DROP_SPOOFED);
    assert_string_equal(r->drop[3].peer, "hostboot-x");

    assert_int_equal(dropped(f, PLAT_BUS_DROP_SPOOFED), 4);
    /* nothing of theirs was handed to the platform */
    for (int i = 0; i < r->n_rx; i++)
        assert_true(strcmp(r->rx[i].peer, a_id) == 0 || strcmp(r->rx[i].peer, b_id) == 0);
    assert_int_equal(rx_from(r, b_id, 0), 1); /* the probe */
    /* A was never disturbed */
    int a_rx = rx_from(r, a_id, 0);
    send_event(&f->a, PLAT_PLATFORM_ID);
    WAIT_FOR(f, rx_from(r, a_id, 0) == a_rx + 1);
    plat_keys_wipe(&kb);
    plat_keys_wipe(&khb);
}

/* ROUTER_HANDOVER gives a routing id to whoever announces it last. A key
 * admitted as one identity that announces another endpoint's id — bare,
 * or with a guessed token — must not receive that endpoint's messages:
 * the platform sends to the route the endpoint's own key used. */
static void test_curve_route_cannot_be_taken_over(void **state)
{
    fx_t *f = *state;
    limits_t none = {0};
    router_start(f, &none);
    side_t *r = &f->router;
    char a_id[PLAT_ID_MAX + 1];
    make_host_id(a_id, sizeof a_id);

    /* nothing heard from A yet: with CURVE, A has no route at all */
    Plat__PlatformMessage *m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_bus_send(r->bus, a_id, m), -EHOSTUNREACH);
    plat_envelope_free(&m);

    dealer_start(f, &f->a, a_id);

    /* the attacker: an admitted key (a hostboot's), announcing A's bare id
     * on one connection and A's id with a guessed token on another */
    plat_keypair_t km;
    assert_int_equal(plat_keys_new(&km), 0);
    zap_allow(f, "hostboot-m", &km);
    char guess[PLAT_ID_MAX + 1 + PLAT_ROUTE_TOKEN_LEN + 1];
    snprintf(guess, sizeof guess, "%s/%032d", a_id, 0);
    void *bare = raw_new_route(f, 0, a_id, &km, f->server.public_z85);
    void *guessed = raw_new_route(f, 1, guess, &km, f->server.public_z85);
    /* both connected (their messages reach the bus, and are dropped) */
    raw_send(bare, a_id, PLAT_PLATFORM_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    raw_send(guessed, a_id, PLAT_PLATFORM_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    WAIT_FOR(f, drops_of(r, PLAT_BUS_DROP_SPOOFED, "hostboot-m") == 2);

    /* every message for A reaches A, none reaches the attacker */
    enum { N = 50 };
    int a0 = f->a.n_rx;
    for (int i = 0; i < N; i++) {
        m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
        assert_int_equal(plat_bus_send(r->bus, a_id, m), 0);
        plat_envelope_free(&m);
    }
    WAIT_FOR(f, f->a.n_rx == a0 + N);
    assert_int_equal(raw_pending(bare, 200), 0);
    assert_int_equal(raw_pending(guessed, 0), 0);

    /* a bare routing id under the key's own identity: refused too (it
     * could be taken over), counted under its own reason */
    plat_keypair_t kc;
    assert_int_equal(plat_keys_new(&kc), 0);
    char c_id[PLAT_ID_MAX + 1];
    make_host_id(c_id, sizeof c_id);
    zap_allow(f, c_id, &kc);
    void *c_bare = raw_new_route(f, 2, c_id, &kc, f->server.public_z85);
    raw_send(c_bare, c_id, PLAT_PLATFORM_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    WAIT_FOR(f, drops_of(r, PLAT_BUS_DROP_NO_ROUTE_TOKEN, c_id) == 1);
    assert_int_equal(rx_from(r, c_id, 0), 0);
    m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_bus_send(r->bus, c_id, m), -EHOSTUNREACH);
    plat_envelope_free(&m);

    /* A restarted (a new socket, a new token, its own key): the platform
     * follows it as soon as it speaks, and the old socket gets nothing */
    int old0 = f->a.n_rx;
    dealer_start(f, &f->b, a_id);
    m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_bus_send(r->bus, a_id, m), 0);
    plat_envelope_free(&m);
    WAIT_FOR(f, f->b.n_rx == 1);
    assert_int_equal(f->a.n_rx, old0);
    assert_int_equal(raw_pending(bare, 0) + raw_pending(guessed, 0), 0);

    /* its key revoked: the route is forgotten, A is unroutable until it
     * speaks again */
    plat_bus_forget_peer(r->bus, a_id);
    m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_bus_send(r->bus, a_id, m), -EHOSTUNREACH);
    int rx0 = r->n_rx;
    send_event(&f->b, PLAT_PLATFORM_ID);
    WAIT_FOR(f, r->n_rx == rx0 + 1);
    assert_int_equal(plat_bus_send(r->bus, a_id, m), 0);
    plat_envelope_free(&m);
    WAIT_FOR(f, f->b.n_rx == 2);
    plat_keys_wipe(&km);
    plat_keys_wipe(&kc);
}

static void test_curve_refuses_unknown_plain_and_wrong_server(void **state)
{
    fx_t *f = *state;
    limits_t none = {0};
    router_start(f, &none);
    monitor_start(f);
    side_t *r = &f->router;
    char id[PLAT_ID_MAX + 1];

    /* a key nobody admitted: the ZAP handler says 400 */
    plat_keypair_t unknown;
    assert_int_equal(plat_keys_new(&unknown), 0);
    make_host_id(id, sizeof id);
    void *s = raw_new(f, 0, id, &unknown, f->server.public_z85);
    raw_send(s, id, PLAT_PLATFORM_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    WAIT_FOR(f, f->zap_refused == 1);
    WAIT_FOR(f, monitor_failed(f) >= 1);
    assert_int_equal(f->zap_admitted, 0);

    /* no CURVE at all: the handshake fails, ZAP is never asked */
    make_host_id(id, sizeof id);
    s = raw_new(f, 1, id, NULL, NULL);
    raw_send(s, id, PLAT_PLATFORM_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    WAIT_FOR(f, monitor_failed(f) >= 2);

    /* an admitted key, but the wrong server key */
    plat_keypair_t k, wrong;
    assert_int_equal(plat_keys_new(&k), 0);
    assert_int_equal(plat_keys_new(&wrong), 0);
    make_host_id(id, sizeof id);
    zap_allow(f, id, &k);
    s = raw_new(f, 2, id, &k, wrong.public_z85);
    raw_send(s, id, PLAT_PLATFORM_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    WAIT_FOR(f, monitor_failed(f) >= 3);
    assert_int_equal(f->zap_admitted, 0);
    assert_int_equal(f->zap_refused, 1);

    /* an admitted peer still gets through, and is the only one that did */
    char a_id[PLAT_ID_MAX + 1];
    make_host_id(a_id, sizeof a_id);
    dealer_start(f, &f->a, a_id);
    assert_int_equal(f->zap_admitted, 1);
    assert_int_equal(r->n_rx, 1);
    assert_int_equal(r->n_drop, 0);
    plat_keys_wipe(&unknown);
    plat_keys_wipe(&k);
    plat_keys_wipe(&wrong);
}

/* ---- the token bucket ----------------------------------------------------- */

#define BURST 20u
#define FLOOD (10 * BURST)

static void test_rate_limit_cuts_a_flood_and_refills(void **state)
{
    fx_t *f = *state;
    const uint32_t rate = 50; /* one token per 20 ms */
    limits_t lim = {.rate_per_sec = rate, .rate_burst = BURST};
    router_start(f, &lim);
    side_t *r = &f->router;
    char a_id[PLAT_ID_MAX + 1], b_id[PLAT_ID_MAX + 1];
    make_host_id(a_id, sizeof a_id);
    make_host_id(b_id, sizeof b_id);
    uint64_t t0 = plat_mono_ms(); /* A's bucket is created (full) after this */
    dealer_start(f, &f->a, a_id);
    dealer_start(f, &f->b, b_id);

    /* A floods 10x its burst, back to back */
    int rx0 = r->n_rx;
    for (unsigned i = 0; i < FLOOD; i++)
        send_event(&f->a, PLAT_PLATFORM_ID);
    /* every one is either delivered or counted as rate limited */
    WAIT_FOR(f, (uint64_t)rx_from(r, a_id, rx0) + dropped(f, PLAT_BUS_DROP_RATE_LIMITED) >=
                    FLOOD);
    uint64_t elapsed = plat_mono_ms() - t0;
    unsigned accepted = (unsigned)rx_from(r, a_id, rx0);
    uint64_t limited = dropped(f, PLAT_BUS_DROP_RATE_LIMITED);
    assert_int_equal(accepted + limited, FLOOD);
    /* the burst went through (less the hello), and no more than the burst
     * plus what could have refilled since the bucket was created */
    assert_true(accepted >= BURST - 1);
    uint64_t max_refill = elapsed * rate / 1000 + 1;
    if (accepted > BURST + max_refill)
        fail_msg("accepted %u > burst %u + refill %llu in %llu ms", accepted, BURST,
                 (unsigned long long)max_refill, (unsigned long long)elapsed);
    assert_true(limited >= FLOOD - BURST - max_refill);
    /* events are dropped silently (nothing to answer), before decoding */
    assert_int_equal(f->a.n_rx, 0);
    assert_int_equal(plat_bus_stats(r->bus)->dropped[PLAT_BUS_DROP_UNDECODABLE], 0);

    /* B, fair-queued with its own bucket, is untouched: its burst passes */
    int b0 = r->n_rx;
    for (unsigned i = 0; i < BURST - 1; i++)
        send_event(&f->b, PLAT_PLATFORM_ID);
    WAIT_FOR(f, rx_from(r, b_id, b0) == (int)BURST - 1);
    assert_int_equal(drops_of(r, PLAT_BUS_DROP_RATE_LIMITED, b_id), 0);

    /* A recovers once tokens refill: probe until one is delivered */
    int a0 = r->n_rx;
    uint64_t end = plat_mono_ms() + DEADLINE_MS, next = 0;
    while (rx_from(r, a_id, a0) == 0 && plat_mono_ms() < end) {
        if (plat_mono_ms() >= next) {
            send_event(&f->a, PLAT_PLATFORM_ID);
            next = plat_mono_ms() + 25;
        }
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_true(rx_from(r, a_id, a0) >= 1);

    /* a full refill: after burst/rate seconds A's whole burst passes again */
    uint64_t full = plat_mono_ms() + BURST * 1000 / rate + 50;
    WAIT_FOR(f, plat_mono_ms() >= full); /* the loop keeps running meanwhile */
    int a1 = r->n_rx;
    uint64_t lim1 = dropped(f, PLAT_BUS_DROP_RATE_LIMITED);
    for (unsigned i = 0; i < BURST; i++)
        send_event(&f->a, PLAT_PLATFORM_ID);
    WAIT_FOR(f, (uint64_t)rx_from(r, a_id, a1) + dropped(f, PLAT_BUS_DROP_RATE_LIMITED) - lim1 >=
                    BURST);
    assert_true(rx_from(r, a_id, a1) >= (int)BURST - 1);
}

static void test_rate_limit_answers_requests_ebusy(void **state)
{
    fx_t *f = *state;
    const uint32_t rate = 20, burst = 10, total = 10 * burst;
    limits_t lim = {.rate_per_sec = rate, .rate_burst = burst};
    router_start(f, &lim);
    side_t *r = &f->router;
    r->act = ACT_PONG;
    char a_id[PLAT_ID_MAX + 1];
    make_host_id(a_id, sizeof a_id);
    uint64_t t0 = plat_mono_ms();
    dealer_start(f, &f->a, a_id);

    for (uint32_t i = 0; i < total; i++)
        send_request(f, &f->a, PLAT_PLATFORM_ID, 2000, (int)i);
    /* every request completes: answered, answered -EBUSY, or timed out */
    uint64_t end = plat_mono_ms() + 2000 + DEADLINE_MS;
    int done = 0;
    while (plat_mono_ms() < end) {
        done = 0;
        for (uint32_t i = 0; i < total; i++)
            done += f->req[i].calls;
        if (done == (int)total)
            break;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uint64_t elapsed = plat_mono_ms() - t0;
    assert_int_equal(done, total);
    int ok = 0, busy = 0, timed_out = 0;
    for (uint32_t i = 0; i < total; i++) {
        assert_int_equal(f->req[i].calls, 1);
        if (f->req[i].status == 0 && f->req[i].error_code == 0)
            ok++;
        else if (f->req[i].status == 0 && f->req[i].error_code == -EBUSY)
            busy++;
        else if (f->req[i].status == -ETIMEDOUT)
            timed_out++;
        else
            fail_msg("request %u: status %d error %d", i, f->req[i].status,
                     f->req[i].error_code);
    }
    print_message("    ok=%d busy=%d timed_out=%d in %llu ms\n", ok, busy, timed_out,
                  (unsigned long long)elapsed);
    assert_true(ok >= (int)burst - 1);
    assert_true((uint64_t)ok <= burst + elapsed * rate / 1000 + 1);
    /* refused ones are answered -EBUSY, but only a few a second (10) */
    assert_true(busy >= 1);
    assert_true((uint64_t)busy <= 10 * (elapsed / 1000 + 2));
    assert_true(timed_out >= 1);
    assert_int_equal(ok + busy + timed_out, total);
    assert_int_equal(dropped(f, PLAT_BUS_DROP_RATE_LIMITED), (uint64_t)(busy + timed_out));
    /* a -EBUSY answer carries a reason */
    int n_rl = drops_of(r, PLAT_BUS_DROP_RATE_LIMITED, a_id);
    assert_int_equal(n_rl, busy); /* on_drop only for those decoded and answered */
}

/* Replies to the platform's own requests are never limited (bus.h 2c,
 * docs/security.md): a flooding peer's pongs must still resolve them. */
static void test_rate_limit_spares_replies(void **state)
{
    fx_t *f = *state;
    const uint32_t rate = 1, burst = 5; /* barely any refill during the test */
    limits_t lim = {.rate_per_sec = rate, .rate_burst = burst};
    router_start(f, &lim);
    side_t *r = &f->router;
    char a_id[PLAT_ID_MAX + 1];
    make_host_id(a_id, sizeof a_id);
    dealer_start(f, &f->a, a_id);
    f->a.act = ACT_PONG;

    /* empty A's bucket, a little past it (fewer refusals than the -EBUSY
     * answers allowed per second) */
    uint64_t lim0 = dropped(f, PLAT_BUS_DROP_RATE_LIMITED);
    for (unsigned i = 0; i < burst + 2; i++)
        send_event(&f->a, PLAT_PLATFORM_ID);
    WAIT_FOR(f, dropped(f, PLAT_BUS_DROP_RATE_LIMITED) > lim0);

    /* the platform pings A more often than A's bucket could ever allow */
    const int pings = 6;
    for (int i = 0; i < pings; i++) {
        Plat__PlatformMessage *m = plat_msg_ping(r->boot);
        assert_true(plat_bus_request(r->bus, a_id, m, 2000, on_reply, &f->req[i]) > 0);
        plat_envelope_free(&m);
    }
    WAIT_FOR(f, f->a.n_rx >= pings);
    uint64_t end = plat_mono_ms() + DEADLINE_MS;
    int answered = 0;
    while (plat_mono_ms() < end) {
        answered = 0;
        for (int i = 0; i < pings; i++)
            answered += f->req[i].calls;
        if (answered == pings)
            break;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    for (int i = 0; i < pings; i++) {
        assert_int_equal(f->req[i].calls, 1);
        assert_int_equal(f->req[i].status, 0);
        assert_int_equal(f->req[i].error_code, 0);
    }
}

/* The same after a flood of more refusals than get -EBUSY answers in a
 * second: replies must still pass (regression: admit_rate once spent the
 * -EBUSY answer budget before it looked whether the message was a reply,
 * so a flooding host's pongs were dropped as rate limited). */
static void test_rate_limit_spares_replies_after_flood(void **state)
{
    fx_t *f = *state;
    const uint32_t rate = 1, burst = 5;
    limits_t lim = {.rate_per_sec = rate, .rate_burst = burst};
    router_start(f, &lim);
    side_t *r = &f->router;
    char a_id[PLAT_ID_MAX + 1];
    make_host_id(a_id, sizeof a_id);
    dealer_start(f, &f->a, a_id);
    f->a.act = ACT_PONG;
    uint64_t lim0 = dropped(f, PLAT_BUS_DROP_RATE_LIMITED);
    for (unsigned i = 0; i < burst + 30; i++)
        send_event(&f->a, PLAT_PLATFORM_ID);
    WAIT_FOR(f, dropped(f, PLAT_BUS_DROP_RATE_LIMITED) >= lim0 + 25);
    Plat__PlatformMessage *m = plat_msg_ping(r->boot);
    assert_true(plat_bus_request(r->bus, a_id, m, 1000, on_reply, &f->req[0]) > 0);
    plat_envelope_free(&m);
    WAIT_FOR(f, f->req[0].calls == 1);
    assert_int_equal(f->req[0].status, 0);
}

/* ---- pending requests ----------------------------------------------------- */

static void test_max_pending_bounds_requests(void **state)
{
    fx_t *f = *state;
    const unsigned maxp = 3;
    limits_t lim = {.max_pending = maxp};
    router_start(f, &lim);
    side_t *r = &f->router;
    r->act = ACT_STASH;
    char a_id[PLAT_ID_MAX + 1], b_id[PLAT_ID_MAX + 1];
    make_host_id(a_id, sizeof a_id);
    make_host_id(b_id, sizeof b_id);
    dealer_start(f, &f->a, a_id);
    dealer_start(f, &f->b, b_id);
    int rx0 = r->n_rx;

    /* A: three requests held by the platform, then two more */
    for (unsigned i = 0; i < maxp; i++)
        send_request(f, &f->a, PLAT_PLATFORM_ID, 4000, (int)i);
    WAIT_FOR(f, r->n_stash == (int)maxp);
    assert_int_equal(plat_bus_pending(r->bus, a_id), maxp);
    send_request(f, &f->a, PLAT_PLATFORM_ID, 4000, 3);
    send_request(f, &f->a, PLAT_PLATFORM_ID, 4000, 4);
    WAIT_FOR(f, f->req[3].calls == 1 && f->req[4].calls == 1);
    for (int i = 3; i < 5; i++) {
        assert_int_equal(f->req[i].status, 0);
        assert_int_equal(f->req[i].error_code, -EBUSY);
    }
    assert_int_equal(dropped(f, PLAT_BUS_DROP_BUSY), 2);
    assert_int_equal(drops_of(r, PLAT_BUS_DROP_BUSY, a_id), 2);
    assert_int_equal(r->n_stash, (int)maxp); /* not handed to the platform */
    assert_int_equal(plat_bus_pending(r->bus, a_id), maxp);

    /* events are not requests: still delivered */
    send_event(&f->a, PLAT_PLATFORM_ID);
    WAIT_FOR(f, rx_from(r, a_id, rx0) == (int)maxp + 1);

    /* B has its own bound */
    send_request(f, &f->b, PLAT_PLATFORM_ID, 4000, 10);
    WAIT_FOR(f, r->n_stash == (int)maxp + 1);
    assert_int_equal(plat_bus_pending(r->bus, b_id), 1);

    /* answering one of A's makes room for exactly one more */
    Plat__PlatformMessage *reply = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_bus_reply(r->bus, r->stash[0], reply), 0);
    plat_envelope_free(&reply);
    WAIT_FOR(f, f->req[0].calls == 1);
    assert_int_equal(f->req[0].error_code, 0);
    assert_int_equal(plat_bus_pending(r->bus, a_id), maxp - 1);
    send_request(f, &f->a, PLAT_PLATFORM_ID, 4000, 5);
    WAIT_FOR(f, r->n_stash == (int)maxp + 2);
    assert_int_equal(plat_bus_pending(r->bus, a_id), maxp);
    send_request(f, &f->a, PLAT_PLATFORM_ID, 4000, 6);
    WAIT_FOR(f, f->req[6].calls == 1);
    assert_int_equal(f->req[6].error_code, -EBUSY);
    assert_int_equal(dropped(f, PLAT_BUS_DROP_BUSY), 3);
    assert_int_equal(plat_bus_pending(r->bus, b_id), 1);
}

static void test_max_pending_expires(void **state)
{
    fx_t *f = *state;
    limits_t lim = {.max_pending = 2};
    router_start(f, &lim);
    side_t *r = &f->router;
    r->act = ACT_IGNORE;
    char a_id[PLAT_ID_MAX + 1];
    make_host_id(a_id, sizeof a_id);
    dealer_start(f, &f->a, a_id);
    int rx0 = r->n_rx;
    /* two requests with a short timeout are never answered */
    send_request(f, &f->a, PLAT_PLATFORM_ID, 150, 0);
    send_request(f, &f->a, PLAT_PLATFORM_ID, 150, 1);
    WAIT_FOR(f, rx_from(r, a_id, rx0) == 2);
    assert_int_equal(plat_bus_pending(r->bus, a_id), 2);
    /* their deadline passes: they no longer count */
    WAIT_FOR(f, plat_bus_pending(r->bus, a_id) == 0);
    WAIT_FOR(f, f->req[0].calls == 1 && f->req[1].calls == 1);
    assert_int_equal(f->req[0].status, -ETIMEDOUT);
    send_request(f, &f->a, PLAT_PLATFORM_ID, 4000, 2);
    WAIT_FOR(f, rx_from(r, a_id, rx0) == 3);
    assert_int_equal(dropped(f, PLAT_BUS_DROP_BUSY), 0);
    assert_int_equal(plat_bus_pending(r->bus, "host-nobody"), 0);
}

/* An error answer to a refused request must not count as an answer to a
 * pending request of the same seq_no: else a peer re-using its seq_nos in
 * requests the ROUTER refuses (-EACCES here) clears its own pending
 * entries and goes past max_pending (regression: the bus's own refusals
 * once went through the same accounting as the owner's answers). */
static void test_max_pending_not_cleared_by_refusals(void **state)
{
    fx_t *f = *state;
    limits_t lim = {.max_pending = 2, .platform_only = true};
    router_start(f, &lim);
    side_t *r = &f->router;
    r->act = ACT_STASH;
    char a_id[PLAT_ID_MAX + 1], other[PLAT_ID_MAX + 1];
    make_host_id(a_id, sizeof a_id);
    make_host_id(other, sizeof other);
    plat_keypair_t ka;
    assert_int_equal(plat_keys_new(&ka), 0);
    zap_allow(f, a_id, &ka);
    void *s = raw_new(f, 0, a_id, &ka, f->server.public_z85);
    for (uint64_t seq = 1; seq <= 10; seq++) {
        raw_send(s, a_id, PLAT_PLATFORM_ID, seq, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
        raw_send(s, a_id, other, seq, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
    }
    /* handled in order: once the last (forbidden) one is counted, all were */
    WAIT_FOR(f, dropped(f, PLAT_BUS_DROP_FORBIDDEN) == 10);
    plat_keys_wipe(&ka);
    /* the platform holds all it was handed, unanswered */
    if (r->n_stash > 2)
        fail_msg("the platform holds %d unanswered requests of one peer, max_pending 2",
                 r->n_stash);
}

/* ---- platform_only -------------------------------------------------------- */

static void test_platform_only_forbids_peer_to_peer(void **state)
{
    fx_t *f = *state;
    limits_t lim = {.platform_only = true};
    router_start(f, &lim);
    side_t *r = &f->router;
    r->act = ACT_PONG;
    char a_id[PLAT_ID_MAX + 1];
    make_host_id(a_id, sizeof a_id);
    dealer_start(f, &f->a, a_id);
    dealer_start(f, &f->b, "hostboot-b");
    int rx0 = r->n_rx;
    uint64_t fwd0 = plat_bus_stats(r->bus)->forwarded;

    /* A -> B event: dropped as forbidden, not handed to the platform */
    send_event(&f->a, "hostboot-b");
    WAIT_FOR(f, r->n_drop >= 1);
    assert_int_equal(r->drop[0].reason, PLAT_BUS_DROP_FORBIDDEN);
    assert_string_equal(r->drop[0].peer, a_id);
    assert_true(r->drop[0].had_msg);
    assert_int_equal(dropped(f, PLAT_BUS_DROP_FORBIDDEN), 1);
    assert_int_equal(r->n_rx, rx0);

    /* A -> B request: answered -EACCES by the platform. The answer comes
     * from "platform" and names B: A's request for B completes with it at
     * once (a timeout of a minute, so -ETIMEDOUT cannot pass), and nothing
     * is dropped as a late reply. */
    send_request(f, &f->a, "hostboot-b", 60000, 0);
    WAIT_FOR(f, r->n_drop >= 2);
    assert_int_equal(r->drop[1].reason, PLAT_BUS_DROP_FORBIDDEN);
    WAIT_FOR(f, f->req[0].calls == 1);
    assert_int_equal(f->req[0].status, 0);
    assert_int_equal(f->req[0].error_code, -EACCES);
    assert_int_equal(drops_of(&f->a, PLAT_BUS_DROP_LATE_REPLY, NULL), 0);
    assert_int_equal(plat_sync_pending(plat_bus_sync(f->a.bus)), 0);
    assert_int_equal(dropped(f, PLAT_BUS_DROP_FORBIDDEN), 2);

    /* B got nothing from A; the platform still talks to both */
    assert_int_equal(f->b.n_rx, 0);
    assert_int_equal(plat_bus_stats(r->bus)->forwarded, fwd0);
    send_request(f, &f->a, PLAT_PLATFORM_ID, 2000, 1);
    send_request(f, &f->b, PLAT_PLATFORM_ID, 2000, 2);
    WAIT_FOR(f, f->req[1].calls == 1 && f->req[2].calls == 1);
    assert_int_equal(f->req[1].error_code, 0);
    assert_int_equal(f->req[2].error_code, 0);
    Plat__PlatformMessage *m = plat_msg_ping(r->boot);
    assert_int_equal(plat_bus_send(r->bus, "hostboot-b", m), 0);
    plat_envelope_free(&m);
    WAIT_FOR(f, f->b.n_rx == 1);
    assert_string_equal(f->b.rx[0].source, PLAT_PLATFORM_ID);
    /* a raw peer forging B's id towards B: spoofed, not forbidden */
    plat_keypair_t kc;
    assert_int_equal(plat_keys_new(&kc), 0);
    char c_id[PLAT_ID_MAX + 1];
    make_host_id(c_id, sizeof c_id);
    zap_allow(f, c_id, &kc);
    void *s = raw_new(f, 0, c_id, &kc, f->server.public_z85);
    raw_send(s, "hostboot-b", PLAT_PLATFORM_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    WAIT_FOR(f, dropped(f, PLAT_BUS_DROP_SPOOFED) == 1);
    assert_int_equal(dropped(f, PLAT_BUS_DROP_FORBIDDEN), 2);
    plat_keys_wipe(&kc);
}

/* The raw peer's view of a refusal: the -EACCES answer carries the
 * request's seq_no and comes from the platform. */
static void test_platform_only_answer_seen_by_raw_peer(void **state)
{
    fx_t *f = *state;
    limits_t lim = {.platform_only = true, .rate_per_sec = 1000, .max_pending = 8};
    router_start(f, &lim);
    char a_id[PLAT_ID_MAX + 1], other[PLAT_ID_MAX + 1];
    make_host_id(a_id, sizeof a_id);
    make_host_id(other, sizeof other);
    plat_keypair_t ka;
    assert_int_equal(plat_keys_new(&ka), 0);
    zap_allow(f, a_id, &ka);
    void *s = raw_new(f, 0, a_id, &ka, f->server.public_z85);
    raw_send(s, a_id, other, 42, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
    uint64_t seqs[4];
    int codes[4];
    int n = 0;
    WAIT_FOR(f, (n += raw_replies(s, seqs + n, codes + n, 4 - n)) >= 1);
    assert_int_equal(n, 1);
    assert_int_equal(seqs[0], 42);
    assert_int_equal(codes[0], -EACCES);
    assert_int_equal(dropped(f, PLAT_BUS_DROP_FORBIDDEN), 1);
    plat_keys_wipe(&ka);
}

static int group_setup(void **state)
{
    (void)state;
    g_zap = zsock_new(ZMQ_REP);
    if (!g_zap || zmq_bind(zsock_resolve(g_zap), "inproc://zeromq.zap.01") != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    zsock_destroy(&g_zap);
    return 0;
}

int main(void)
{
    zsys_handler_set(NULL);
    if (!zmq_has("curve")) {
        printf("libzmq without CURVE: nothing to test\n");
        return 0;
    }
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_curve_identity_is_the_zap_user_id),
        T(test_curve_route_cannot_be_taken_over),
        T(test_curve_refuses_unknown_plain_and_wrong_server),
        T(test_rate_limit_cuts_a_flood_and_refills),
        T(test_rate_limit_answers_requests_ebusy),
        T(test_rate_limit_spares_replies),
        T(test_rate_limit_spares_replies_after_flood),
        T(test_max_pending_bounds_requests),
        T(test_max_pending_expires),
        T(test_max_pending_not_cleared_by_refusals),
        T(test_platform_only_forbids_peer_to_peer),
        T(test_platform_only_answer_seen_by_raw_peer),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
