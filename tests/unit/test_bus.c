/* plat/bus.h: a ROUTER bus ("platform") and DEALER buses ("host-<uuid>",
 * "hostboot-b") on one uv loop, plus raw libzmq DEALERs that misbehave.
 * Header filling, request/reply matching, timeouts and late replies, every
 * drop reason reachable from a peer, forwarding byte for byte, stats, error
 * replies, unroutable requests and destroy with requests pending.
 *
 * "Nothing else arrived" is never waited for: after the message under test
 * a valid probe is sent on the same connection, and once the probe is in,
 * everything before it has been handled. */
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
#include "plat/msg.h"
#include "testports.h"

#define DEADLINE_MS 3000
#define MAX_REC 256

typedef enum {
    ACT_IGNORE = 0, /* requests are left unanswered */
    ACT_PONG,       /* answer requests with Control.pong READY */
    ACT_ERROR,      /* answer requests with plat_bus_reply_error */
    ACT_STASH,      /* keep a copy of the request, answer later */
    ACT_FORWARD,    /* ROUTER: forward messages for others by routing id */
} action_t;

typedef struct {
    char peer[PLAT_ID_MAX + 1];
    Plat__PlatformMessage *msg; /* owned copy */
    uint8_t *raw;
    size_t raw_len;
} rx_rec_t;

typedef struct {
    plat_bus_drop_t reason;
    char peer[PLAT_ID_MAX + 1];
    bool had_msg;
    char why[128];
} drop_rec_t;

typedef struct fx fx_t;

typedef struct {
    fx_t *f;
    plat_bus_t *bus;
    char id[PLAT_ID_MAX + 1];
    char boot[PLAT_UUID_LEN + 1];
    action_t act;
    int n_rx;
    rx_rec_t rx[MAX_REC];
    int n_drop;
    drop_rec_t drop[MAX_REC];
    Plat__PlatformMessage *stash;
    int forward_rc;
} side_t;

typedef struct {
    int calls;
    int status;
    Plat__PlatformMessage *reply; /* owned copy */
} req_t;

struct fx {
    uv_loop_t loop;
    uv_timer_t tick; /* keeps UV_RUN_ONCE from blocking past a deadline */
    char addr[64];
    side_t router, dealer, dealer2;
    void *ctx;
    void *raw;
    char raw_id[PLAT_ID_MAX + 1];
    req_t req[MAX_REC];
    plat_bus_stats_t r0, d0; /* stats after setup */
};

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
    assert_non_null(rx->msg);
    if (s->n_rx < MAX_REC) {
        rx_rec_t *r = &s->rx[s->n_rx++];
        snprintf(r->peer, sizeof r->peer, "%s", rx->peer);
        r->msg = copy_msg(rx->msg);
        r->raw = malloc(rx->raw_len ? rx->raw_len : 1);
        memcpy(r->raw, rx->raw, rx->raw_len);
        r->raw_len = rx->raw_len;
    }
    const Plat__Header *h = rx->msg->header;
    bool for_me = strcmp(h->destination->id, s->id) == 0;
    if (s->act == ACT_FORWARD && !for_me) {
        s->forward_rc = plat_bus_forward(bus, h->destination->id, rx->raw, rx->raw_len);
        return;
    }
    if (h->kind != PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
        return;
    if (s->act == ACT_PONG || s->act == ACT_FORWARD) {
        Plat__PlatformMessage *reply = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
        assert_int_equal(plat_bus_reply(bus, rx->msg, reply), 0);
        plat_envelope_free(&reply);
    } else if (s->act == ACT_ERROR) {
        assert_int_equal(
            plat_bus_reply_error(bus, rx->msg, -EOPNOTSUPP, "no handler", "control.ping"), 0);
    } else if (s->act == ACT_STASH) {
        plat_envelope_free(&s->stash);
        s->stash = copy_msg(rx->msg);
    }
}

static void on_drop(plat_bus_t *bus, plat_bus_drop_t reason, const char *peer,
                    const Plat__PlatformMessage *msg, const char *why, void *arg)
{
    side_t *s = arg;
    assert_non_null(peer);
    assert_non_null(why);
    if (s->n_drop < MAX_REC) {
        drop_rec_t *d = &s->drop[s->n_drop++];
        d->reason = reason;
        snprintf(d->peer, sizeof d->peer, "%s", peer);
        d->had_msg = msg != NULL;
        snprintf(d->why, sizeof d->why, "%s", why);
    }
}

static void on_reply(int status, const Plat__PlatformMessage *reply, void *arg)
{
    req_t *r = arg;
    r->calls++;
    r->status = status;
    if (reply) {
        plat_envelope_free(&r->reply);
        r->reply = copy_msg(reply);
    }
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static plat_bus_t *side_new(fx_t *f, side_t *s, plat_endpoint_role_t role, const char *id)
{
    s->f = f;
    snprintf(s->id, sizeof s->id, "%s", id);
    plat_uuid_new(s->boot);
    plat_bus_opts_t o = {
        .role = role,
        .identity = s->id,
        .address = f->addr,
        .boot_id = s->boot,
        .on_message = on_message,
        .on_drop = on_drop,
        .arg = s,
    };
    s->bus = plat_bus_new(&f->loop, &o);
    return s->bus;
}

static void side_clear(side_t *s)
{
    for (int i = 0; i < s->n_rx; i++) {
        plat_envelope_free(&s->rx[i].msg);
        free(s->rx[i].raw);
    }
    s->n_rx = 0;
    s->n_drop = 0;
    plat_envelope_free(&s->stash);
}

static void run_until(fx_t *f, const int *counter, int want)
{
    uint64_t end = plat_mono_ms() + DEADLINE_MS;
    while (*counter < want && plat_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    if (*counter < want)
        fail_msg("timed out waiting: have %d, want %d", *counter, want);
}

/* Run the loop for `ms` (used only to show that something does NOT happen
 * to a callback that must not be called at all). */
static void run_for(fx_t *f, uint32_t ms)
{
    uint64_t end = plat_mono_ms() + ms;
    while (plat_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void make_host_id(char *out, size_t size)
{
    char uuid[PLAT_UUID_LEN + 1];
    plat_uuid_new(uuid);
    snprintf(out, size, "host-%s", uuid);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || uv_loop_init(&f->loop) != 0)
        return -1;
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, 20, 20);
    if (plat_test_free_endpoint(f->addr, sizeof f->addr) < 0)
        return -1;
    char host[PLAT_ID_MAX + 1];
    make_host_id(host, sizeof host);
    if (!side_new(f, &f->router, PLAT_ENDPOINT_ROUTER, PLAT_PLATFORM_ID) ||
        !side_new(f, &f->dealer, PLAT_ENDPOINT_DEALER, host))
        return -1;
    f->ctx = zmq_ctx_new();
    *state = f;

    /* The ROUTER learns the DEALER's routing id once it has connected: say
     * hello first, then start every test from clean records. */
    Plat__PlatformMessage *m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_STARTING);
    int rc = plat_bus_send(f->dealer.bus, PLAT_PLATFORM_ID, m);
    plat_envelope_free(&m);
    if (rc != 0)
        return -1;
    uint64_t end = plat_mono_ms() + DEADLINE_MS;
    while (f->router.n_rx < 1 && plat_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    if (f->router.n_rx != 1)
        return -1;
    side_clear(&f->router);
    f->r0 = *plat_bus_stats(f->router.bus);
    f->d0 = *plat_bus_stats(f->dealer.bus);
    return 0;
}

static void on_tick_closed(uv_handle_t *h)
{
    (void)h;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    plat_bus_destroy(&f->dealer2.bus);
    plat_bus_destroy(&f->dealer.bus);
    plat_bus_destroy(&f->router.bus);
    uv_close((uv_handle_t *)&f->tick, on_tick_closed);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    side_clear(&f->router);
    side_clear(&f->dealer);
    side_clear(&f->dealer2);
    for (int i = 0; i < MAX_REC; i++)
        plat_envelope_free(&f->req[i].reply);
    if (f->raw)
        zmq_close(f->raw);
    zmq_ctx_term(f->ctx);
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

/* ---- raw peers ---- */

static void raw_connect(fx_t *f, const char *id)
{
    snprintf(f->raw_id, sizeof f->raw_id, "%s", id);
    f->raw = zmq_socket(f->ctx, ZMQ_DEALER);
    assert_non_null(f->raw);
    int linger = 0;
    zmq_setsockopt(f->raw, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_setsockopt(f->raw, ZMQ_ROUTING_ID, id, strlen(id)), 0);
    assert_int_equal(zmq_connect(f->raw, f->addr), 0);
}

static void set_str(char **field, const char *v)
{
    if (*field != protobuf_c_empty_string)
        free(*field);
    *field = plat_msg_strdup(v);
}

/* Encoded EVENT from `src` to "platform" (valid unless src is bad). */
static size_t encode_event(const char *src, uint64_t seq, uint8_t **out)
{
    Plat__PlatformMessage *m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    set_str(&m->header->source->id, src);
    set_str(&m->header->destination->id, PLAT_PLATFORM_ID);
    m->header->seq_no = seq;
    m->header->kind = PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT;
    size_t n = plat__platform_message__get_packed_size(m);
    *out = malloc(n);
    plat__platform_message__pack(m, *out);
    plat_envelope_free(&m);
    return n;
}

static void raw_send(fx_t *f, const void *buf, size_t len, int flags)
{
    assert_int_equal(zmq_send(f->raw, buf, len, flags), (int)len);
}

/* A valid event from the raw peer; returns once the ROUTER delivered it. */
static void raw_probe(fx_t *f, uint64_t seq)
{
    uint8_t *b;
    size_t n = encode_event(f->raw_id, seq, &b);
    raw_send(f, b, n, 0);
    free(b);
    int want = f->router.n_rx + 1;
    run_until(f, &f->router.n_rx, want);
    rx_rec_t *r = &f->router.rx[f->router.n_rx - 1];
    assert_string_equal(r->peer, f->raw_id);
    assert_int_equal(r->msg->header->seq_no, seq);
}

/* ---- tests ---- */

static void test_accessors(void **state)
{
    fx_t *f = *state;
    assert_string_equal(plat_bus_identity(f->router.bus), PLAT_PLATFORM_ID);
    assert_string_equal(plat_bus_identity(f->dealer.bus), f->dealer.id);
    assert_string_equal(plat_bus_boot_id(f->router.bus), f->router.boot);
    assert_string_equal(plat_bus_boot_id(f->dealer.bus), f->dealer.boot);
    assert_non_null(plat_bus_endpoint(f->router.bus));
    assert_int_equal(plat_endpoint_role(plat_bus_endpoint(f->router.bus)), PLAT_ENDPOINT_ROUTER);
    assert_int_equal(plat_endpoint_role(plat_bus_endpoint(f->dealer.bus)), PLAT_ENDPOINT_DEALER);
    assert_non_null(plat_bus_sync(f->router.bus));
    assert_int_equal(plat_sync_pending(plat_bus_sync(f->dealer.bus)), 0);
    assert_non_null(plat_bus_stats(f->router.bus));

    const char *names[PLAT_BUS_DROP__COUNT];
    for (int i = 0; i < PLAT_BUS_DROP__COUNT; i++) {
        names[i] = plat_bus_drop_name((plat_bus_drop_t)i);
        assert_non_null(names[i]);
        assert_true(names[i][0] != '\0');
        for (int j = 0; j < i; j++)
            assert_string_not_equal(names[i], names[j]);
    }
}

static void test_new_errors(void **state)
{
    fx_t *f = *state;
    side_t s = {0};
    errno = 0;
    /* invalid own identity */
    plat_bus_opts_t o = {.role = PLAT_ENDPOINT_DEALER,
                         .identity = "bogus",
                         .address = f->addr,
                         .on_message = on_message,
                         .arg = &s};
    assert_null(plat_bus_new(&f->loop, &o));
    assert_int_not_equal(errno, 0);
    /* a second ROUTER on the same address */
    errno = 0;
    o.role = PLAT_ENDPOINT_ROUTER;
    o.identity = PLAT_PLATFORM_ID;
    assert_null(plat_bus_new(&f->loop, &o));
    assert_int_equal(errno, EADDRINUSE);
}

static void assert_header(const Plat__PlatformMessage *m, const char *src, const char *dst,
                          Plat__MessageKind kind, const char *boot, uint64_t t0, uint64_t t1)
{
    const Plat__Header *h = m->header;
    assert_non_null(h);
    assert_string_equal(h->source->id, src);
    assert_string_equal(h->destination->id, dst);
    assert_int_equal(h->kind, kind);
    assert_string_equal(h->boot_id, boot);
    assert_true(h->sent_at_ms + 1 >= t0);
    assert_true(h->sent_at_ms <= t1 + 1);
}

static void test_events_both_ways(void **state)
{
    fx_t *f = *state;
    side_t *r = &f->router, *d = &f->dealer;

    /* the same message object sent twice: its header is refilled */
    Plat__PlatformMessage *m = plat_msg_hostboot_heartbeat("x", 1, 2);
    uint64_t t0 = plat_now_ms();
    assert_int_equal(plat_bus_send(d->bus, PLAT_PLATFORM_ID, m), 0);
    assert_int_equal(plat_bus_send(d->bus, PLAT_PLATFORM_ID, m), 0);
    uint64_t t1 = plat_now_ms();
    /* the caller's message carries the header that was sent */
    assert_string_equal(m->header->source->id, d->id);
    plat_envelope_free(&m);
    run_until(f, &r->n_rx, 2);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(r->rx[i].peer, d->id);
        assert_header(r->rx[i].msg, d->id, PLAT_PLATFORM_ID, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT,
                      d->boot, t0, t1);
        assert_int_equal(r->rx[i].msg->host_boot->heartbeat->uptime_ms, 2);
    }
    /* seq increases per sender; the setup's hello was 1 */
    uint64_t s1 = r->rx[0].msg->header->seq_no, s2 = r->rx[1].msg->header->seq_no;
    assert_int_equal(s1, 2);
    assert_int_equal(s2, 3);

    /* raw bytes handed to on_message are the envelope itself */
    Plat__PlatformMessage *dec = NULL;
    assert_int_equal(plat_envelope_decode(r->rx[0].raw, r->rx[0].raw_len, 0, &dec, NULL), 0);
    assert_int_equal(dec->header->seq_no, s1);
    plat_envelope_free(&dec);

    /* ROUTER -> DEALER */
    m = plat_msg_ping(r->boot);
    t0 = plat_now_ms();
    assert_int_equal(plat_bus_send(r->bus, d->id, m), 0);
    t1 = plat_now_ms();
    plat_envelope_free(&m);
    run_until(f, &d->n_rx, 1);
    assert_string_equal(d->rx[0].peer, PLAT_PLATFORM_ID);
    assert_header(d->rx[0].msg, PLAT_PLATFORM_ID, d->id, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT,
                  r->boot, t0, t1);
    assert_int_equal(d->rx[0].msg->header->seq_no, 1);
    assert_string_equal(d->rx[0].msg->control->ping->boot_id, r->boot);

    /* stats (deltas from setup) */
    const plat_bus_stats_t *rs = plat_bus_stats(r->bus), *ds = plat_bus_stats(d->bus);
    assert_int_equal(ds->tx - f->d0.tx, 2);
    assert_int_equal(ds->tx_by_channel[PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT] -
                         f->d0.tx_by_channel[PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT],
                     2);
    assert_int_equal(rs->rx - f->r0.rx, 2);
    assert_int_equal(rs->rx_by_channel[PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT], 2);
    assert_int_equal(rs->tx - f->r0.tx, 1);
    assert_int_equal(rs->tx_by_channel[PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL], 1);
    assert_int_equal(ds->rx - f->d0.rx, 1);
    assert_int_equal(ds->rx_by_channel[PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL], 1);
    assert_int_equal(rs->tx_failed, 0);
    for (int i = 0; i < PLAT_BUS_DROP__COUNT; i++) {
        assert_int_equal(rs->dropped[i], 0);
        assert_int_equal(ds->dropped[i], 0);
    }
    assert_int_equal(r->n_drop + d->n_drop, 0);
}

static void test_request_reply(void **state)
{
    fx_t *f = *state;
    side_t *r = &f->router, *d = &f->dealer;
    r->act = ACT_PONG;
    d->act = ACT_PONG;

    Plat__PlatformMessage *m = plat_msg_ping(d->boot);
    int64_t seq = plat_bus_request(d->bus, PLAT_PLATFORM_ID, m, 2000, on_reply, &f->req[0]);
    plat_envelope_free(&m);
    assert_true(seq > 1);
    assert_int_equal(plat_sync_pending(plat_bus_sync(d->bus)), 1);
    run_until(f, &f->req[0].calls, 1);
    assert_int_equal(f->req[0].status, 0);
    Plat__PlatformMessage *rep = f->req[0].reply;
    assert_non_null(rep);
    assert_int_equal(rep->header->kind, PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY);
    assert_int_equal(rep->header->seq_no, (uint64_t)seq);
    assert_string_equal(rep->header->source->id, PLAT_PLATFORM_ID);
    assert_string_equal(rep->header->destination->id, d->id);
    assert_string_equal(rep->header->boot_id, r->boot);
    assert_int_equal(rep->control->body_case, PLAT__CONTROL_MESSAGE__BODY_PONG);
    assert_int_equal(rep->control->pong->state, PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_sync_pending(plat_bus_sync(d->bus)), 0);
    /* the request itself, as the ROUTER saw it */
    assert_int_equal(r->n_rx, 1);
    assert_int_equal(r->rx[0].msg->header->kind, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
    assert_int_equal(r->rx[0].msg->header->timeout_ms, 2000);
    assert_int_equal(r->rx[0].msg->header->seq_no, (uint64_t)seq);
    /* a matched reply does not reach on_message */
    assert_int_equal(d->n_rx, 0);

    /* the other way round */
    m = plat_msg_ping(r->boot);
    int64_t rseq = plat_bus_request(r->bus, d->id, m, 2000, on_reply, &f->req[1]);
    plat_envelope_free(&m);
    assert_true(rseq > 0);
    run_until(f, &f->req[1].calls, 1);
    assert_int_equal(f->req[1].status, 0);
    assert_int_equal(f->req[1].reply->header->seq_no, (uint64_t)rseq);
    assert_string_equal(f->req[1].reply->header->source->id, d->id);
    assert_int_equal(r->n_drop + d->n_drop, 0);

    /* many in flight at once, each callback exactly once with its own seq */
    enum { N = 100 };
    int64_t seqs[N];
    for (int i = 0; i < N; i++) {
        m = plat_msg_ping(d->boot);
        seqs[i] = plat_bus_request(d->bus, PLAT_PLATFORM_ID, m, 3000, on_reply, &f->req[2 + i]);
        plat_envelope_free(&m);
        assert_true(seqs[i] > (i ? seqs[i - 1] : seq));
    }
    assert_int_equal(plat_sync_pending(plat_bus_sync(d->bus)), N);
    uint64_t end = plat_mono_ms() + DEADLINE_MS;
    while (plat_sync_pending(plat_bus_sync(d->bus)) > 0 && plat_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    for (int i = 0; i < N; i++) {
        assert_int_equal(f->req[2 + i].calls, 1);
        assert_int_equal(f->req[2 + i].status, 0);
        assert_int_equal(f->req[2 + i].reply->header->seq_no, (uint64_t)seqs[i]);
    }
    assert_int_equal(r->n_drop + d->n_drop, 0);
}

static void test_timeout_then_late_reply(void **state)
{
    fx_t *f = *state;
    side_t *r = &f->router, *d = &f->dealer;
    r->act = ACT_STASH;
    Plat__PlatformMessage *m = plat_msg_ping(d->boot);
    uint64_t t0 = plat_mono_ms();
    int64_t seq = plat_bus_request(d->bus, PLAT_PLATFORM_ID, m, 50, on_reply, &f->req[0]);
    plat_envelope_free(&m);
    assert_true(seq > 0);
    run_until(f, &f->req[0].calls, 1);
    assert_int_equal(f->req[0].status, -ETIMEDOUT);
    assert_null(f->req[0].reply);
    assert_true(plat_mono_ms() - t0 >= 40);
    assert_int_equal(plat_sync_pending(plat_bus_sync(d->bus)), 0);

    /* the platform answers too late */
    run_until(f, &r->n_rx, 1);
    assert_non_null(r->stash);
    Plat__PlatformMessage *reply = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_bus_reply(r->bus, r->stash, reply), 0);
    plat_envelope_free(&reply);
    run_until(f, &d->n_drop, 1);
    assert_int_equal(d->drop[0].reason, PLAT_BUS_DROP_LATE_REPLY);
    assert_true(d->drop[0].had_msg);
    assert_int_equal(plat_bus_stats(d->bus)->dropped[PLAT_BUS_DROP_LATE_REPLY], 1);
    assert_int_equal(f->req[0].calls, 1); /* not called again */
    assert_int_equal(d->n_rx, 0);         /* and not handed to on_message */
}

static void test_reply_error(void **state)
{
    fx_t *f = *state;
    f->router.act = ACT_ERROR;
    Plat__PlatformMessage *m = plat_msg_ping(f->dealer.boot);
    int64_t seq = plat_bus_request(f->dealer.bus, PLAT_PLATFORM_ID, m, 2000, on_reply, &f->req[0]);
    plat_envelope_free(&m);
    assert_true(seq > 0);
    run_until(f, &f->req[0].calls, 1);
    assert_int_equal(f->req[0].status, 0);
    const Plat__PlatformMessage *rep = f->req[0].reply;
    assert_non_null(rep);
    assert_int_equal(rep->header->kind, PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY);
    assert_int_equal(rep->header->seq_no, (uint64_t)seq);
    assert_int_equal(rep->channel_case, PLAT__PLATFORM_MESSAGE__CHANNEL__NOT_SET);
    assert_non_null(rep->header->error);
    assert_int_equal(rep->header->error->code, -EOPNOTSUPP);
    assert_string_equal(rep->header->error->message, "no handler");
    assert_string_equal(rep->header->error->detail, "control.ping");
}

static void test_spoofed_source(void **state)
{
    fx_t *f = *state;
    side_t *r = &f->router;
    char me[PLAT_ID_MAX + 1], other[PLAT_ID_MAX + 1];
    make_host_id(me, sizeof me);
    make_host_id(other, sizeof other);
    raw_connect(f, me);

    uint8_t *b;
    size_t n = encode_event(other, 1, &b); /* valid envelope, someone else's id */
    raw_send(f, b, n, 0);
    free(b);
    n = encode_event(PLAT_PLATFORM_ID, 2, &b); /* claims to be the platform */
    raw_send(f, b, n, 0);
    free(b);
    raw_probe(f, 3);

    assert_int_equal(r->n_rx, 1); /* only the probe */
    assert_int_equal(r->n_drop, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r->drop[i].reason, PLAT_BUS_DROP_SPOOFED);
        assert_string_equal(r->drop[i].peer, me);
        assert_true(r->drop[i].had_msg);
    }
    const plat_bus_stats_t *st = plat_bus_stats(r->bus);
    assert_int_equal(st->dropped[PLAT_BUS_DROP_SPOOFED], 2);
    assert_int_equal(st->rx - f->r0.rx, 1);
}

static void test_garbage_frames_invalid(void **state)
{
    fx_t *f = *state;
    side_t *r = &f->router;
    raw_connect(f, "hostboot-raw");

    /* garbage */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99};
    raw_send(f, junk, sizeof junk, 0);
    /* two frames, each a valid envelope */
    uint8_t *b;
    size_t n = encode_event(f->raw_id, 1, &b);
    raw_send(f, b, n, ZMQ_SNDMORE);
    raw_send(f, b, n, 0);
    free(b);
    /* header-less */
    Plat__PlatformMessage *m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    plat__header__free_unpacked(m->header, NULL);
    m->header = NULL;
    n = plat__platform_message__get_packed_size(m);
    b = malloc(n);
    plat__platform_message__pack(m, b);
    plat_envelope_free(&m);
    raw_send(f, b, n, 0);
    free(b);
    /* truncated valid envelope */
    n = encode_event(f->raw_id, 2, &b);
    raw_send(f, b, n - 3, 0);
    free(b);
    /* empty frame */
    raw_send(f, "", 0, 0);
    raw_probe(f, 5);

    assert_int_equal(r->n_rx, 1);
    assert_int_equal(r->n_drop, 5);
    static const plat_bus_drop_t want[] = {PLAT_BUS_DROP_UNDECODABLE, PLAT_BUS_DROP_FRAMES,
                                           PLAT_BUS_DROP_INVALID, PLAT_BUS_DROP_UNDECODABLE};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r->drop[i].reason, want[i]);
        assert_string_equal(r->drop[i].peer, "hostboot-raw");
        if (want[i] != PLAT_BUS_DROP_INVALID)
            assert_false(r->drop[i].had_msg);
    }
    assert_true(r->drop[4].reason == PLAT_BUS_DROP_UNDECODABLE ||
                r->drop[4].reason == PLAT_BUS_DROP_INVALID);
    const plat_bus_stats_t *st = plat_bus_stats(r->bus);
    assert_int_equal(st->dropped[PLAT_BUS_DROP_FRAMES], 1);
    assert_int_equal(st->dropped[PLAT_BUS_DROP_UNDECODABLE] + st->dropped[PLAT_BUS_DROP_INVALID],
                     4);
    assert_int_equal(st->rx - f->r0.rx, 1);
}

/* A ROUTER bus without on_drop just counts (and logs) the drop. */
static void test_drop_without_callback(void **state)
{
    fx_t *f = *state;
    plat_bus_destroy(&f->dealer.bus);
    plat_bus_destroy(&f->router.bus);
    side_t *r = &f->router;
    plat_bus_opts_t o = {.role = PLAT_ENDPOINT_ROUTER,
                         .identity = PLAT_PLATFORM_ID,
                         .address = f->addr,
                         .boot_id = r->boot,
                         .on_message = on_message,
                         .arg = r};
    /* the old ROUTER's socket is gone: rebinding may need a few tries */
    uint64_t end = plat_mono_ms() + DEADLINE_MS;
    while (!(r->bus = plat_bus_new(&f->loop, &o)) && plat_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_non_null(r->bus);
    raw_connect(f, "hostboot-raw");
    raw_send(f, "junk", 4, 0);
    raw_probe(f, 1);
    assert_int_equal(plat_bus_stats(r->bus)->dropped[PLAT_BUS_DROP_UNDECODABLE], 1);
    assert_int_equal(r->n_drop, 0);
}

static void add_dealer2(fx_t *f)
{
    assert_non_null(side_new(f, &f->dealer2, PLAT_ENDPOINT_DEALER, "hostboot-b"));
    Plat__PlatformMessage *m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_STARTING);
    assert_int_equal(plat_bus_send(f->dealer2.bus, PLAT_PLATFORM_ID, m), 0);
    plat_envelope_free(&m);
    int want = f->router.n_rx + 1;
    run_until(f, &f->router.n_rx, want);
}

static void test_forward(void **state)
{
    fx_t *f = *state;
    side_t *r = &f->router, *a = &f->dealer, *b = &f->dealer2;
    add_dealer2(f);
    r->act = ACT_FORWARD;
    b->act = ACT_PONG;
    uint64_t fwd0 = plat_bus_stats(r->bus)->forwarded;

    /* A -> B event, forwarded by the ROUTER unchanged */
    int base = r->n_rx;
    Plat__PlatformMessage *m = plat_msg_hostboot_heartbeat("a", 7, 8);
    assert_int_equal(plat_bus_send(a->bus, "hostboot-b", m), 0);
    plat_envelope_free(&m);
    run_until(f, &b->n_rx, 1);
    assert_int_equal(r->n_rx, base + 1);
    assert_int_equal(r->forward_rc, 0);
    rx_rec_t *at_r = &r->rx[base], *at_b = &b->rx[0];
    assert_string_equal(at_r->peer, a->id);
    assert_string_equal(at_r->msg->header->destination->id, "hostboot-b");
    assert_int_equal(at_b->raw_len, at_r->raw_len);
    assert_memory_equal(at_b->raw, at_r->raw, at_r->raw_len);
    assert_string_equal(at_b->peer, PLAT_PLATFORM_ID);
    assert_string_equal(at_b->msg->header->source->id, a->id);
    assert_int_equal(plat_bus_stats(r->bus)->forwarded - fwd0, 1);

    /* A -> B request; B's reply (destination A) is forwarded back and
     * resolves A's request by (B, seq) */
    m = plat_msg_ping(a->boot);
    int64_t seq = plat_bus_request(a->bus, "hostboot-b", m, 2000, on_reply, &f->req[0]);
    plat_envelope_free(&m);
    assert_true(seq > 0);
    run_until(f, &f->req[0].calls, 1);
    assert_int_equal(f->req[0].status, 0);
    assert_string_equal(f->req[0].reply->header->source->id, "hostboot-b");
    assert_string_equal(f->req[0].reply->header->destination->id, a->id);
    assert_int_equal(f->req[0].reply->header->seq_no, (uint64_t)seq);
    assert_int_equal(plat_bus_stats(r->bus)->forwarded - fwd0, 3);
    assert_int_equal(a->n_drop + b->n_drop + r->n_drop, 0);

    /* forwarding to nobody */
    uint64_t failed0 = plat_bus_stats(r->bus)->tx_failed;
    assert_int_equal(plat_bus_forward(r->bus, "hostboot-nobody", at_r->raw, at_r->raw_len),
                     -EHOSTUNREACH);
    assert_int_equal(plat_bus_stats(r->bus)->forwarded - fwd0, 3);
    assert_int_equal(plat_bus_stats(r->bus)->tx_failed - failed0, 1);
}

static void test_misdirected(void **state)
{
    fx_t *f = *state;
    side_t *r = &f->router, *d = &f->dealer;
    /* a message for someone else, pushed to our DEALER by routing id */
    Plat__PlatformMessage *m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    set_str(&m->header->source->id, PLAT_PLATFORM_ID);
    set_str(&m->header->destination->id, "hostboot-someone-else");
    m->header->seq_no = 77;
    uint8_t *b;
    size_t n;
    assert_int_equal(plat_envelope_encode(m, 0, &b, &n), 0);
    plat_envelope_free(&m);
    assert_int_equal(plat_bus_forward(r->bus, d->id, b, n), 0);
    free(b);
    /* probe */
    m = plat_msg_ping(r->boot);
    assert_int_equal(plat_bus_send(r->bus, d->id, m), 0);
    plat_envelope_free(&m);
    run_until(f, &d->n_rx, 1);
    assert_int_equal(d->n_rx, 1);
    assert_int_equal(d->rx[0].msg->control->body_case, PLAT__CONTROL_MESSAGE__BODY_PING);
    assert_int_equal(d->n_drop, 1);
    assert_int_equal(d->drop[0].reason, PLAT_BUS_DROP_MISDIRECTED);
    assert_int_equal(plat_bus_stats(d->bus)->dropped[PLAT_BUS_DROP_MISDIRECTED], 1);
}

static void test_unknown_peer(void **state)
{
    fx_t *f = *state;
    side_t *r = &f->router;
    char nobody[PLAT_ID_MAX + 1];
    make_host_id(nobody, sizeof nobody);
    Plat__PlatformMessage *m = plat_msg_ping(r->boot);
    int64_t rc = plat_bus_request(r->bus, nobody, m, 100, on_reply, &f->req[0]);
    assert_int_equal(rc, -EHOSTUNREACH);
    assert_int_equal(plat_bus_send(r->bus, nobody, m), -EHOSTUNREACH);
    plat_envelope_free(&m);
    assert_int_equal(plat_sync_pending(plat_bus_sync(r->bus)), 0);
    const plat_bus_stats_t *st = plat_bus_stats(r->bus);
    assert_int_equal(st->tx_failed - f->r0.tx_failed, 2);
    assert_int_equal(st->tx - f->r0.tx, 0);
    /* longer than the request's timeout: the callback never runs */
    run_for(f, 200);
    assert_int_equal(f->req[0].calls, 0);
}

static void test_invalid_send(void **state)
{
    fx_t *f = *state;
    side_t *d = &f->dealer;
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL);
    assert_int_equal(plat_bus_send(d->bus, PLAT_PLATFORM_ID, m), -EPROTO); /* no body */
    assert_true(plat_bus_request(d->bus, PLAT_PLATFORM_ID, m, 100, on_reply, &f->req[0]) < 0);
    plat_envelope_free(&m);
    m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_bus_send(d->bus, "not an id", m), -EPROTO);
    plat_envelope_free(&m);
    assert_int_equal(plat_sync_pending(plat_bus_sync(d->bus)), 0);
    run_for(f, 150);
    assert_int_equal(f->req[0].calls, 0);
    /* nothing reached the ROUTER; a good message still does */
    m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_bus_send(d->bus, PLAT_PLATFORM_ID, m), 0);
    plat_envelope_free(&m);
    run_until(f, &f->router.n_rx, 1);
    assert_int_equal(f->router.n_rx, 1);
    assert_int_equal(f->router.n_drop, 0);
}

static void test_destroy_with_pending(void **state)
{
    fx_t *f = *state;
    side_t *d = &f->dealer;
    f->router.act = ACT_IGNORE;
    for (int i = 0; i < 3; i++) {
        Plat__PlatformMessage *m = plat_msg_ping(d->boot);
        assert_true(plat_bus_request(d->bus, PLAT_PLATFORM_ID, m, 5000, on_reply, &f->req[i]) > 0);
        plat_envelope_free(&m);
    }
    run_until(f, &f->router.n_rx, 3);
    plat_bus_destroy(&d->bus);
    assert_null(d->bus);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f->req[i].calls, 1);
        assert_int_equal(f->req[i].status, -ECANCELED);
        assert_null(f->req[i].reply);
    }
    run_for(f, 50);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f->req[i].calls, 1);
    plat_bus_destroy(&d->bus); /* NULL-safe */
    plat_bus_destroy(NULL);
}

/* The owner may destroy the bus from inside on_message. */
static plat_bus_t **destroy_target;

static void on_message_destroy(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg)
{
    side_t *s = arg;
    s->n_rx++;
    plat_bus_destroy(destroy_target);
}

static void test_destroy_inside_callback(void **state)
{
    fx_t *f = *state;
    side_t *d = &f->dealer;
    plat_bus_destroy(&d->bus);
    plat_bus_opts_t o = {.role = PLAT_ENDPOINT_DEALER,
                         .identity = d->id,
                         .address = f->addr,
                         .boot_id = d->boot,
                         .on_message = on_message_destroy,
                         .arg = d};
    d->bus = plat_bus_new(&f->loop, &o);
    assert_non_null(d->bus);
    destroy_target = &d->bus;
    Plat__PlatformMessage *m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_bus_send(d->bus, PLAT_PLATFORM_ID, m), 0);
    run_until(f, &f->router.n_rx, 1);
    /* two messages back-to-back: the second must not be delivered to a
     * destroyed bus */
    assert_int_equal(plat_bus_send(f->router.bus, d->id, m), 0);
    assert_int_equal(plat_bus_send(f->router.bus, d->id, m), 0);
    plat_envelope_free(&m);
    run_until(f, &d->n_rx, 1);
    assert_null(d->bus);
    run_for(f, 50);
    assert_int_equal(d->n_rx, 1);
}

int main(void)
{
    zsys_handler_set(NULL);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_accessors),
        T(test_new_errors),
        T(test_events_both_ways),
        T(test_request_reply),
        T(test_timeout_then_late_reply),
        T(test_reply_error),
        T(test_spoofed_source),
        T(test_garbage_frames_invalid),
        T(test_drop_without_callback),
        T(test_forward),
        T(test_misdirected),
        T(test_unknown_peer),
        T(test_invalid_send),
        T(test_destroy_with_pending),
        T(test_destroy_inside_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
