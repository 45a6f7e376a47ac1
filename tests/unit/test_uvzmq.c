/* plat/uvzmq.h: a ZeroMQ socket on a libuv loop. Tens of thousands of
 * messages, sent from timers in bursts, all arrive in order; a budget of 1
 * still drains everything (idle path); echoing with kick after each send
 * strands nothing; close leaves no handle behind and uv_run returns.
 *
 * "Stranded input" is detected by time: the only other wake-up source is a
 * slow watchdog timer, so input left waiting for an ZMQ_FD edge that never
 * comes would show up as a delay of a watchdog period.
 *
 * The lost-wake-up tests below need no clock: the message is already in the
 * ROUTER, its ZMQ_FD edge has been consumed (zmq_poll, or a send on the same
 * socket, reads the socket's mailbox), and ONE uv_run(UV_RUN_ONCE) must
 * deliver it. An adapter that waited for the edge would block in that call
 * until the stall timer (the only other handle) fired; the test then fails
 * on the flag the timer sets, instead of hanging. No kick is used there:
 * the adapter must not depend on callers remembering it. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <zmq.h>

#include "plat/endpoint.h"
#include "plat/id.h"
#include "plat/uvzmq.h"
#include "testports.h"

#define TOTAL 10000
#define BURST 500
#define WATCHDOG_MS 2000
#define DEADLINE_MS 8000
#define STRANDED_MS 1000 /* well under WATCHDOG_MS */
#define ROUNDS 200
#define STALL_MS 10000 /* only fires if a wake-up was lost */
#define ARRIVE_MS 5000 /* generous wait for a message to reach the ROUTER */

typedef struct {
    uv_loop_t loop;
    char addr[64];
    char host_id[PLAT_ID_MAX + 1];
    plat_endpoint_t *router;
    plat_endpoint_t *dealer;
    plat_uvzmq_t *rw; /* watcher on the ROUTER */
    plat_uvzmq_t *dw; /* watcher on the DEALER (echo test) */
    uv_timer_t sender;
    uv_timer_t watchdog;
    bool sender_open, watchdog_open;
    uint32_t sent;     /* DEALER -> ROUTER */
    uint32_t received; /* at the ROUTER, in order */
    uint32_t echoed;   /* ROUTER -> DEALER */
    uint32_t back;     /* at the DEALER, in order */
    bool echo;         /* ROUTER echoes every message back */
    int order_errors;
    int send_errors;
    uint32_t close_after; /* close rw inside read_cb after this many (0 = never) */
    uint64_t last_sent_ms, done_ms;
    int read_calls;
    int calls_at_close;
    uint64_t first_rx_ms, last_rx_ms, max_gap_ms; /* max_gap: longest pause between deliveries */
    uv_timer_t stall;
    bool stall_open;
    bool stalled;      /* the stall timer fired: some uv_run blocked with input waiting */
    bool chain;        /* router_read: make the peer's next message arrive, then send */
    uint32_t chain_to; /* last value the chain sends */
    int chain_errors;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || uv_loop_init(&f->loop) != 0)
        return -1;
    if (plat_test_free_endpoint(f->addr, sizeof f->addr) < 0)
        return -1;
    char uuid[PLAT_UUID_LEN + 1];
    plat_uuid_new(uuid);
    snprintf(f->host_id, sizeof f->host_id, "host-%s", uuid);
    f->router = plat_endpoint_router_new(f->addr, NULL);
    f->dealer = plat_endpoint_dealer_new(f->host_id, f->addr, NULL);
    if (!f->router || !f->dealer)
        return -1;
    *state = f;
    return 0;
}

static void on_closed_noop(uv_handle_t *h)
{
    (void)h;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    plat_uvzmq_close(&f->rw);
    plat_uvzmq_close(&f->dw);
    if (f->sender_open)
        uv_close((uv_handle_t *)&f->sender, on_closed_noop);
    if (f->watchdog_open)
        uv_close((uv_handle_t *)&f->watchdog, on_closed_noop);
    if (f->stall_open)
        uv_close((uv_handle_t *)&f->stall, on_closed_noop);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    plat_endpoint_destroy(&f->dealer);
    plat_endpoint_destroy(&f->router);
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

static void note_rx(fx_t *f)
{
    uint64_t now = plat_mono_ms();
    if (!f->first_rx_ms)
        f->first_rx_ms = now;
    if (f->last_rx_ms && now - f->last_rx_ms > f->max_gap_ms)
        f->max_gap_ms = now - f->last_rx_ms;
    f->last_rx_ms = now;
}

static void assert_not_stranded(const fx_t *f)
{
    if (f->max_gap_ms >= STRANDED_MS)
        fail_msg("input waited %llu ms between two deliveries (watchdog period %d ms)",
                 (unsigned long long)f->max_gap_ms, WATCHDOG_MS);
}

static int router_read(void *arg)
{
    fx_t *f = arg;
    f->read_calls++;
    char peer[PLAT_ID_MAX + 1];
    zmq_msg_t msg;
    int rc = plat_endpoint_recv(f->router, peer, &msg);
    if (rc == -EAGAIN)
        return 0;
    if (rc == -EPROTO)
        return 1;
    if (rc < 0)
        return rc;
    uint32_t v = UINT32_MAX;
    if (zmq_msg_size(&msg) == sizeof v)
        memcpy(&v, zmq_msg_data(&msg), sizeof v);
    if (v != f->received || strcmp(peer, f->host_id) != 0)
        f->order_errors++;
    f->received++;
    if (!f->echo)
        note_rx(f);
    if (f->echo) {
        if (plat_endpoint_send(f->router, peer, zmq_msg_data(&msg), zmq_msg_size(&msg)) == 0) {
            f->echoed++;
            plat_uvzmq_kick(f->rw);
        } else {
            f->send_errors++;
        }
    }
    if (f->chain && v == f->received - 1 && v < f->chain_to) {
        /* The peer's next message arrives while we are still in read_cb;
         * zmq_poll takes its ZMQ_FD edge and our own send may process the
         * socket's commands too. Nothing will signal the fd again. */
        uint32_t next = v + 1;
        zmq_pollitem_t it = {.socket = plat_endpoint_handle(f->router), .events = ZMQ_POLLIN};
        if (plat_endpoint_send(f->dealer, NULL, &next, sizeof next) != 0 ||
            zmq_poll(&it, 1, ARRIVE_MS) != 1 ||
            plat_endpoint_send(f->router, peer, &v, sizeof v) != 0)
            f->chain_errors++;
    }
    zmq_msg_close(&msg);
    if (!f->echo && f->received == TOTAL)
        f->done_ms = plat_mono_ms();
    if (f->close_after && f->received == f->close_after) {
        plat_uvzmq_close(&f->rw);
        f->calls_at_close = f->read_calls;
    }
    return 1;
}

static int dealer_read(void *arg)
{
    fx_t *f = arg;
    char peer[PLAT_ID_MAX + 1];
    zmq_msg_t msg;
    int rc = plat_endpoint_recv(f->dealer, peer, &msg);
    if (rc == -EAGAIN)
        return 0;
    if (rc < 0)
        return rc;
    uint32_t v = UINT32_MAX;
    if (zmq_msg_size(&msg) == sizeof v)
        memcpy(&v, zmq_msg_data(&msg), sizeof v);
    if (v != f->back || peer[0] != '\0')
        f->order_errors++;
    f->back++;
    note_rx(f);
    zmq_msg_close(&msg);
    if (f->back == TOTAL)
        f->done_ms = plat_mono_ms();
    return 1;
}

/* Sends a burst per tick; in echo mode keeps at most BURST in flight. */
static void on_send_tick(uv_timer_t *t)
{
    fx_t *f = t->data;
    for (int i = 0; i < BURST && f->sent < TOTAL; i++) {
        if (f->echo && f->sent - f->back >= BURST)
            break;
        uint32_t v = f->sent;
        int rc = plat_endpoint_send(f->dealer, NULL, &v, sizeof v);
        if (rc == -EAGAIN)
            break;
        if (rc != 0) {
            f->send_errors++;
            break;
        }
        f->sent++;
        if (f->dw)
            plat_uvzmq_kick(f->dw);
    }
    if (f->sent == TOTAL) {
        f->last_sent_ms = plat_mono_ms();
        uv_timer_stop(t);
    }
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
}

static void start_timers(fx_t *f)
{
    uv_timer_init(&f->loop, &f->sender);
    f->sender.data = f;
    f->sender_open = true;
    uv_timer_start(&f->sender, on_send_tick, 1, 1);
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog_open = true;
    uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, WATCHDOG_MS);
}

static void run_until(fx_t *f, uint32_t *counter, uint32_t want)
{
    uint64_t end = plat_mono_ms() + DEADLINE_MS;
    while (*counter < want && plat_mono_ms() < end && f->order_errors == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void one_way(fx_t *f, unsigned budget)
{
    f->rw = plat_uvzmq_new(&f->loop, plat_endpoint_handle(f->router), budget, router_read, f);
    assert_non_null(f->rw);
    start_timers(f);
    run_until(f, &f->received, TOTAL);
    assert_int_equal(f->send_errors, 0);
    assert_int_equal(f->order_errors, 0);
    assert_int_equal(f->sent, TOTAL);
    assert_int_equal(f->received, TOTAL);
    /* nothing waited for a watchdog tick */
    assert_true(f->done_ms >= f->last_sent_ms);
    assert_not_stranded(f);
}

static void test_bursts_in_order(void **state)
{
    one_way(*state, 0);
}

static void test_budget_one(void **state)
{
    one_way(*state, 1);
}

/* Messages already queued before the loop first runs: with budget 1 only
 * the idle path (not fd edges) can drain them. */
static void test_budget_one_prequeued(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 300; i++)
        assert_int_equal(plat_endpoint_send(f->dealer, NULL, &i, sizeof i), 0);
    f->sent = 300;
    /* wait (outside the loop) until they are at the ROUTER */
    zmq_pollitem_t it = {.socket = plat_endpoint_handle(f->router), .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 3000), 1);

    f->rw = plat_uvzmq_new(&f->loop, plat_endpoint_handle(f->router), 1, router_read, f);
    assert_non_null(f->rw);
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog_open = true;
    uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, WATCHDOG_MS);
    uint64_t t0 = plat_mono_ms();
    uint64_t end = t0 + DEADLINE_MS;
    while (f->received < 300 && plat_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->received, 300);
    assert_int_equal(f->order_errors, 0);
    assert_not_stranded(f);
    /* the first message was not left waiting either */
    assert_true(f->first_rx_ms - t0 < STRANDED_MS);
}

static void test_echo_with_kick(void **state)
{
    fx_t *f = *state;
    f->echo = true;
    f->rw = plat_uvzmq_new(&f->loop, plat_endpoint_handle(f->router), 0, router_read, f);
    f->dw = plat_uvzmq_new(&f->loop, plat_endpoint_handle(f->dealer), 0, dealer_read, f);
    assert_non_null(f->rw);
    assert_non_null(f->dw);
    start_timers(f);
    run_until(f, &f->back, TOTAL);
    assert_int_equal(f->send_errors, 0);
    assert_int_equal(f->order_errors, 0);
    assert_int_equal(f->received, TOTAL);
    assert_int_equal(f->echoed, TOTAL);
    assert_int_equal(f->back, TOTAL);
    assert_not_stranded(f);
}

/* Closing inside read_cb: no further callbacks, and uv_run(DEFAULT) returns
 * by itself because no handle is left. */
static void on_stuck(uv_timer_t *t)
{
    fail_msg("uv_run did not return after plat_uvzmq_close");
}

static void test_close_in_callback_then_run_returns(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 50; i++)
        assert_int_equal(plat_endpoint_send(f->dealer, NULL, &i, sizeof i), 0);
    f->close_after = 10;
    f->rw = plat_uvzmq_new(&f->loop, plat_endpoint_handle(f->router), 0, router_read, f);
    assert_non_null(f->rw);
    /* unref'd: does not keep the loop alive, fires only if something else does */
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog_open = true;
    uv_timer_start(&f->watchdog, on_stuck, 5000, 0);
    uv_unref((uv_handle_t *)&f->watchdog);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_null(f->rw);
    assert_int_equal(f->received, 10);
    assert_int_equal(f->read_calls, f->calls_at_close); /* none after close */
}

static void test_close_then_loop_completes(void **state)
{
    fx_t *f = *state;
    f->rw = plat_uvzmq_new(&f->loop, plat_endpoint_handle(f->router), 0, router_read, f);
    assert_non_null(f->rw);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    plat_uvzmq_close(&f->rw);
    assert_null(f->rw);
    plat_uvzmq_close(&f->rw); /* NULL-safe */
    plat_uvzmq_close(NULL);
    /* the socket may be destroyed right away */
    plat_endpoint_destroy(&f->router);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_alive(&f->loop), 0);
}

/* ---- lost wake-ups: no clock, one uv_run per message --------------------- */

static void on_stall(uv_timer_t *t)
{
    fx_t *f = t->data;
    f->stalled = true;
}

static void arm_stall(fx_t *f)
{
    uv_timer_init(&f->loop, &f->stall);
    f->stall.data = f;
    f->stall_open = true;
    uv_timer_start(&f->stall, on_stall, STALL_MS, 0);
}

/* Let the watcher settle: its start-up idle is stopped once it saw nothing. */
static void new_settled_router_watch(fx_t *f, unsigned budget)
{
    f->rw = plat_uvzmq_new(&f->loop, plat_endpoint_handle(f->router), budget, router_read, f);
    assert_non_null(f->rw);
    for (int i = 0; i < 3; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->received, 0);
}

static bool fd_readable(void *zsock)
{
    int fd = -1;
    size_t len = sizeof fd;
    assert_int_equal(zmq_getsockopt(zsock, ZMQ_FD, &fd, &len), 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

/* Someone else read ZMQ_EVENTS (zmq_poll) after the message arrived, so the
 * fd will not fire for it: the next loop iteration must still deliver it. */
static void test_edge_taken_outside_loop(void **state)
{
    fx_t *f = *state;
    new_settled_router_watch(f, 0);
    arm_stall(f);
    int edge_gone = 0;
    zmq_pollitem_t it = {.socket = plat_endpoint_handle(f->router), .events = ZMQ_POLLIN};
    for (uint32_t i = 0; i < ROUNDS; i++) {
        assert_int_equal(plat_endpoint_send(f->dealer, NULL, &i, sizeof i), 0);
        assert_int_equal(zmq_poll(&it, 1, ARRIVE_MS), 1);
        if (!fd_readable(plat_endpoint_handle(f->router)))
            edge_gone++;
        uv_run(&f->loop, UV_RUN_ONCE);
        assert_false(f->stalled);
        assert_int_equal(f->received, i + 1);
    }
    assert_int_equal(f->order_errors, 0);
    /* the rounds really ran with the fd quiet, or this proved nothing */
    assert_true(edge_gone > 0);
}

/* The harness/bus pattern: the peer's message is on its way, the owner
 * sends on the same socket between loop runs and forgets the kick. */
static void test_send_between_runs_without_kick(void **state)
{
    fx_t *f = *state;
    new_settled_router_watch(f, 0);
    arm_stall(f);
    for (uint32_t i = 0; i < ROUNDS; i++) {
        assert_int_equal(plat_endpoint_send(f->dealer, NULL, &i, sizeof i), 0);
        if (i > 0) /* the ROUTER knows the route after the first message */
            assert_int_equal(plat_endpoint_send(f->router, f->host_id, &i, sizeof i), 0);
        uint64_t end = plat_mono_ms() + DEADLINE_MS;
        while (f->received < i + 1 && !f->stalled && plat_mono_ms() < end)
            uv_run(&f->loop, UV_RUN_ONCE);
        assert_false(f->stalled);
        assert_int_equal(f->received, i + 1);
    }
    assert_int_equal(f->order_errors, 0);
}

/* Inside read_cb the next message arrives and the callback then sends on
 * the socket; with budget 1 the drain stops with that message waiting.
 * Each uv_run(UV_RUN_ONCE) must deliver exactly one message. */
static void test_send_in_callback_budget_one(void **state)
{
    fx_t *f = *state;
    new_settled_router_watch(f, 1);
    arm_stall(f);
    f->chain = true;
    f->chain_to = ROUNDS - 1;
    uint32_t first = 0;
    assert_int_equal(plat_endpoint_send(f->dealer, NULL, &first, sizeof first), 0);
    zmq_pollitem_t it = {.socket = plat_endpoint_handle(f->router), .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, ARRIVE_MS), 1);
    for (uint32_t i = 0; i < ROUNDS; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
        assert_false(f->stalled);
        assert_int_equal(f->chain_errors, 0);
        assert_int_equal(f->received, i + 1);
    }
    assert_int_equal(f->order_errors, 0);
}

static void test_new_errors(void **state)
{
    fx_t *f = *state;
    assert_null(plat_uvzmq_new(&f->loop, NULL, 0, router_read, f));
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
}

int main(void)
{
    zsys_handler_set(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bursts_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_one_prequeued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_with_kick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_taken_outside_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_between_runs_without_kick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_in_callback_budget_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_in_callback_then_run_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_then_loop_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
