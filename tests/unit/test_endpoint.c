/* plat/endpoint.h: ROUTER/DEALER over loopback TCP — both directions, the
 * peer id, ROUTER_MANDATORY, frame-count checks, ZMQ_MAXMSGSIZE, bind
 * errors, the send high-water mark. Raw libzmq sockets play misbehaving
 * peers. Every wait is zmq_poll against a deadline. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "plat/endpoint.h"
#include "plat/id.h"
#include "testports.h"

#define WAIT_MS 3000

typedef struct {
    char addr[64];
    char host_id[PLAT_ID_MAX + 1];
    plat_endpoint_t *router;
    plat_endpoint_t *dealer;
    void *ctx; /* raw libzmq context for misbehaving peers */
} fx_t;

static void make_host_id(char out[PLAT_ID_MAX + 1])
{
    char uuid[PLAT_UUID_LEN + 1];
    assert_int_equal(plat_uuid_new(uuid), 0);
    snprintf(out, PLAT_ID_MAX + 1, "host-%s", uuid);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || plat_test_free_endpoint(f->addr, sizeof f->addr) < 0)
        return -1;
    make_host_id(f->host_id);
    f->router = plat_endpoint_router_new(f->addr, NULL);
    if (!f->router)
        return -1;
    f->dealer = plat_endpoint_dealer_new(f->host_id, f->addr, NULL);
    if (!f->dealer)
        return -1;
    f->ctx = zmq_ctx_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    plat_endpoint_destroy(&f->dealer);
    plat_endpoint_destroy(&f->router);
    assert_null(f->dealer);
    assert_null(f->router);
    zmq_ctx_term(f->ctx);
    free(f);
    return 0;
}

/* Wait until the endpoint's socket has input; false at the deadline. */
static bool wait_in(plat_endpoint_t *ep, int timeout_ms)
{
    zmq_pollitem_t it = {.socket = plat_endpoint_handle(ep), .events = ZMQ_POLLIN};
    uint64_t end = plat_mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = plat_mono_ms();
        if (now >= end)
            return false;
        int rc = zmq_poll(&it, 1, (long)(end - now));
        if (rc > 0 && (it.revents & ZMQ_POLLIN))
            return true;
        if (rc < 0 && errno != EINTR)
            return false;
    }
}

/* Receive one message within the deadline (skipping nothing). */
static int recv_wait(plat_endpoint_t *ep, char peer[PLAT_ID_MAX + 1], zmq_msg_t *msg)
{
    uint64_t end = plat_mono_ms() + WAIT_MS;
    for (;;) {
        int rc = plat_endpoint_recv(ep, peer, msg);
        if (rc != -EAGAIN)
            return rc;
        uint64_t now = plat_mono_ms();
        if (now >= end || !wait_in(ep, (int)(end - now)))
            return -ETIMEDOUT;
    }
}

static void expect_msg(plat_endpoint_t *ep, const char *peer_want, const void *data, size_t len)
{
    char peer[PLAT_ID_MAX + 1];
    zmq_msg_t msg;
    memset(peer, 'x', sizeof peer);
    int rc = recv_wait(ep, peer, &msg);
    assert_int_equal(rc, 0);
    assert_string_equal(peer, peer_want);
    assert_int_equal(zmq_msg_size(&msg), len);
    assert_memory_equal(zmq_msg_data(&msg), data, len);
    zmq_msg_close(&msg);
}

static void assert_nothing_waiting(plat_endpoint_t *ep)
{
    char peer[PLAT_ID_MAX + 1];
    zmq_msg_t msg;
    assert_int_equal(plat_endpoint_recv(ep, peer, &msg), -EAGAIN);
}

static void *raw_dealer(fx_t *f, const char *id, size_t id_len)
{
    void *s = zmq_socket(f->ctx, ZMQ_DEALER);
    assert_non_null(s);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_setsockopt(s, ZMQ_ROUTING_ID, id, id_len), 0);
    assert_int_equal(zmq_connect(s, f->addr), 0);
    return s;
}

static void test_roles_and_handles(void **state)
{
    fx_t *f = *state;
    assert_int_equal(plat_endpoint_role(f->router), PLAT_ENDPOINT_ROUTER);
    assert_int_equal(plat_endpoint_role(f->dealer), PLAT_ENDPOINT_DEALER);
    void *rs = plat_endpoint_handle(f->router);
    void *ds = plat_endpoint_handle(f->dealer);
    assert_non_null(rs);
    assert_non_null(ds);
    int type = -1;
    size_t sz = sizeof type;
    assert_int_equal(zmq_getsockopt(rs, ZMQ_TYPE, &type, &sz), 0);
    assert_int_equal(type, ZMQ_ROUTER);
    assert_int_equal(zmq_getsockopt(ds, ZMQ_TYPE, &type, &sz), 0);
    assert_int_equal(type, ZMQ_DEALER);

    /* options from the contract: MAXMSGSIZE default, HWM defaults, routing id */
    int64_t maxmsg = 0;
    sz = sizeof maxmsg;
    assert_int_equal(zmq_getsockopt(rs, ZMQ_MAXMSGSIZE, &maxmsg, &sz), 0);
    assert_int_equal(maxmsg, 4 * 1024 * 1024);
    int hwm = 0;
    sz = sizeof hwm;
    assert_int_equal(zmq_getsockopt(rs, ZMQ_SNDHWM, &hwm, &sz), 0);
    assert_int_equal(hwm, 1000);
    assert_int_equal(zmq_getsockopt(rs, ZMQ_RCVHWM, &hwm, &sz), 0);
    assert_int_equal(hwm, 1000);
    char rid[256];
    sz = sizeof rid;
    assert_int_equal(zmq_getsockopt(ds, ZMQ_ROUTING_ID, rid, &sz), 0);
    assert_int_equal(sz, strlen(f->host_id));
    assert_memory_equal(rid, f->host_id, sz);
}

static void test_both_ways(void **state)
{
    fx_t *f = *state;
    assert_nothing_waiting(f->router);
    assert_nothing_waiting(f->dealer);

    const char up[] = "hello platform";
    assert_int_equal(plat_endpoint_send(f->dealer, NULL, up, sizeof up), 0);
    expect_msg(f->router, f->host_id, up, sizeof up);

    const char down[] = "hello host";
    assert_int_equal(plat_endpoint_send(f->router, f->host_id, down, sizeof down), 0);
    expect_msg(f->dealer, "", down, sizeof down);

    /* empty payloads are still one frame */
    assert_int_equal(plat_endpoint_send(f->dealer, "ignored", "", 0), 0);
    expect_msg(f->router, f->host_id, "", 0);

    /* order is kept */
    for (uint32_t i = 0; i < 100; i++)
        assert_int_equal(plat_endpoint_send(f->dealer, NULL, &i, sizeof i), 0);
    for (uint32_t i = 0; i < 100; i++)
        expect_msg(f->router, f->host_id, &i, sizeof i);
    assert_nothing_waiting(f->router);
}

static void test_unknown_peer(void **state)
{
    fx_t *f = *state;
    char other[PLAT_ID_MAX + 1];
    make_host_id(other);
    assert_int_equal(plat_endpoint_send(f->router, other, "x", 1), -EHOSTUNREACH);
    assert_int_equal(plat_endpoint_send(f->router, "platform", "x", 1), -EHOSTUNREACH);
    /* the ROUTER is still fine */
    assert_int_equal(plat_endpoint_send(f->dealer, NULL, "y", 1), 0);
    expect_msg(f->router, f->host_id, "y", 1);
    assert_int_equal(plat_endpoint_send(f->router, f->host_id, "z", 1), 0);
    expect_msg(f->dealer, "", "z", 1);
}

static void test_two_frames_dropped(void **state)
{
    fx_t *f = *state;
    const char *rid = "hostboot-raw";
    void *raw = raw_dealer(f, rid, strlen(rid));
    assert_int_equal(zmq_send(raw, "part1", 5, ZMQ_SNDMORE), 5);
    assert_int_equal(zmq_send(raw, "part2", 5, 0), 5);
    assert_int_equal(zmq_send(raw, "single", 6, 0), 6);

    char peer[PLAT_ID_MAX + 1] = "";
    zmq_msg_t msg;
    assert_int_equal(recv_wait(f->router, peer, &msg), -EPROTO);
    assert_string_equal(peer, rid);
    /* drained whole: the next message is the good one, not "part2" */
    expect_msg(f->router, rid, "single", 6);
    assert_nothing_waiting(f->router);

    /* three frames too */
    assert_int_equal(zmq_send(raw, "a", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(raw, "b", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(raw, "c", 1, 0), 1);
    assert_int_equal(zmq_send(raw, "after", 5, 0), 5);
    assert_int_equal(recv_wait(f->router, peer, &msg), -EPROTO);
    expect_msg(f->router, rid, "after", 5);
    zmq_close(raw);

    /* a DEALER receiving two frames from a raw ROUTER */
    char addr2[64];
    assert_true(plat_test_free_endpoint(addr2, sizeof addr2) > 0);
    void *rr = zmq_socket(f->ctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(rr, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_bind(rr, addr2), 0);
    plat_endpoint_t *d = plat_endpoint_dealer_new("hostboot-d", addr2, NULL);
    assert_non_null(d);
    assert_int_equal(plat_endpoint_send(d, NULL, "hi", 2), 0);
    char buf[64];
    zmq_pollitem_t it = {.socket = rr, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, WAIT_MS), 1);
    assert_int_equal(zmq_recv(rr, buf, sizeof buf, 0), 10); /* routing id */
    assert_int_equal(zmq_recv(rr, buf, sizeof buf, 0), 2);
    assert_int_equal(zmq_send(rr, "hostboot-d", 10, ZMQ_SNDMORE), 10);
    assert_int_equal(zmq_send(rr, "x", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(rr, "y", 1, 0), 1);
    assert_int_equal(zmq_send(rr, "hostboot-d", 10, ZMQ_SNDMORE), 10);
    assert_int_equal(zmq_send(rr, "ok", 2, 0), 2);
    assert_int_equal(recv_wait(d, peer, &msg), -EPROTO);
    expect_msg(d, "", "ok", 2);
    plat_endpoint_destroy(&d);
    zmq_close(rr);
}

static void test_long_routing_id(void **state)
{
    fx_t *f = *state;
    char rid[200];
    memset(rid, 'r', sizeof rid);
    void *raw = raw_dealer(f, rid, sizeof rid);
    assert_int_equal(zmq_send(raw, "payload", 7, 0), 7);
    char peer[PLAT_ID_MAX + 1];
    zmq_msg_t msg;
    assert_int_equal(recv_wait(f->router, peer, &msg), -EPROTO);
    /* the ROUTER still serves others */
    assert_int_equal(plat_endpoint_send(f->dealer, NULL, "ok", 2), 0);
    expect_msg(f->router, f->host_id, "ok", 2);
    zmq_close(raw);

    /* exactly PLAT_ID_MAX is still fine, one more is not */
    char id[PLAT_ID_MAX + 2];
    memset(id, 'm', sizeof id);
    id[PLAT_ID_MAX] = '\0';
    raw = raw_dealer(f, id, PLAT_ID_MAX);
    assert_int_equal(zmq_send(raw, "max", 3, 0), 3);
    expect_msg(f->router, id, "max", 3);
    zmq_close(raw);
    memset(id, 'n', sizeof id);
    raw = raw_dealer(f, id, PLAT_ID_MAX + 1);
    assert_int_equal(zmq_send(raw, "over", 4, 0), 4);
    assert_int_equal(recv_wait(f->router, peer, &msg), -EPROTO);
    zmq_close(raw);
}

static void test_oversized_never_arrives(void **state)
{
    char addr[64];
    assert_true(plat_test_free_endpoint(addr, sizeof addr) > 0);
    plat_endpoint_opts_t o = {.max_msg_size = 1024};
    plat_endpoint_t *r = plat_endpoint_router_new(addr, &o);
    assert_non_null(r);
    int64_t maxmsg = 0;
    size_t sz = sizeof maxmsg;
    assert_int_equal(zmq_getsockopt(plat_endpoint_handle(r), ZMQ_MAXMSGSIZE, &maxmsg, &sz), 0);
    assert_int_equal(maxmsg, 1024);

    plat_endpoint_t *big = plat_endpoint_dealer_new("hostboot-big", addr, NULL);
    assert_non_null(big);
    static uint8_t payload[4096];
    memset(payload, 0xab, sizeof payload);
    assert_int_equal(plat_endpoint_send(big, NULL, payload, sizeof payload), 0);
    /* at the limit is fine, from another connection */
    plat_endpoint_t *small = plat_endpoint_dealer_new("hostboot-small", addr, NULL);
    assert_non_null(small);
    assert_int_equal(plat_endpoint_send(small, NULL, payload, 1024), 0);
    assert_int_equal(plat_endpoint_send(small, NULL, "tail", 4), 0);

    /* the first (and only) messages to arrive are the small ones */
    expect_msg(r, "hostboot-small", payload, 1024);
    expect_msg(r, "hostboot-small", "tail", 4);
    assert_nothing_waiting(r);

    /* the ROUTER still accepts a new connection afterwards */
    plat_endpoint_t *late = plat_endpoint_dealer_new("hostboot-late", addr, NULL);
    assert_non_null(late);
    assert_int_equal(plat_endpoint_send(late, NULL, "late", 4), 0);
    expect_msg(r, "hostboot-late", "late", 4);
    assert_nothing_waiting(r);

    plat_endpoint_destroy(&late);
    plat_endpoint_destroy(&small);
    plat_endpoint_destroy(&big);
    plat_endpoint_destroy(&r);
}

/* ZMQ_ROUTER_HANDOVER: a restarted peer reclaims its routing id at once. */
static void test_handover(void **state)
{
    fx_t *f = *state;
    assert_int_equal(plat_endpoint_send(f->dealer, NULL, "old", 3), 0);
    expect_msg(f->router, f->host_id, "old", 3);

    plat_endpoint_t *again = plat_endpoint_dealer_new(f->host_id, f->addr, NULL);
    assert_non_null(again);
    assert_int_equal(plat_endpoint_send(again, NULL, "new", 3), 0);
    expect_msg(f->router, f->host_id, "new", 3);
    /* replies for that id now go to the new connection */
    assert_int_equal(plat_endpoint_send(f->router, f->host_id, "to-new", 6), 0);
    expect_msg(again, "", "to-new", 6);
    assert_nothing_waiting(f->dealer);
    plat_endpoint_destroy(&again);
}

static void test_bind_errors(void **state)
{
    fx_t *f = *state;
    errno = 0;
    plat_endpoint_t *again = plat_endpoint_router_new(f->addr, NULL);
    assert_null(again);
    assert_int_equal(errno, EADDRINUSE);

    errno = 0;
    plat_endpoint_t *bad = plat_endpoint_router_new("nonsense://x", NULL);
    assert_null(bad);
    assert_int_not_equal(errno, 0);

    /* the original ROUTER is unaffected */
    assert_int_equal(plat_endpoint_send(f->dealer, NULL, "ok", 2), 0);
    expect_msg(f->router, f->host_id, "ok", 2);
}

static void test_send_hwm(void **state)
{
    char addr[64];
    assert_true(plat_test_free_endpoint(addr, sizeof addr) > 0);
    /* nothing listens: messages queue on the DEALER until the HWM */
    plat_endpoint_opts_t o = {.sndhwm = 10};
    plat_endpoint_t *d = plat_endpoint_dealer_new("hostboot-hwm", addr, &o);
    assert_non_null(d);
    int hwm = 0;
    size_t sz = sizeof hwm;
    assert_int_equal(zmq_getsockopt(plat_endpoint_handle(d), ZMQ_SNDHWM, &hwm, &sz), 0);
    assert_int_equal(hwm, 10);
    int rc = 0;
    int sent = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        rc = plat_endpoint_send(d, NULL, "x", 1);
        if (rc == 0)
            sent++;
    }
    assert_int_equal(rc, -EAGAIN);
    assert_true(sent >= 1);
    assert_true(sent < 5000);
    plat_endpoint_destroy(&d); /* linger 0: returns at once */
    assert_null(d);
}

static void test_destroy_null_safe(void **state)
{
    plat_endpoint_t *ep = NULL;
    plat_endpoint_destroy(&ep);
    plat_endpoint_destroy(NULL);
    assert_null(ep);
}

int main(void)
{
    zsys_handler_set(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roles_and_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_frames_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_routing_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_never_arrives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_errors, setup, teardown),
        cmocka_unit_test(test_send_hwm),
        cmocka_unit_test(test_destroy_null_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
