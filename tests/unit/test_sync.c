/* plat/sync.h: pending requests keyed by (peer, seq): resolve, timeout,
 * late reply, duplicates, fail/fail_peer, destroy with pending; every
 * callback runs exactly once and no entry outlives it (LSan). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "plat/envelope.h"
#include "plat/id.h"
#include "plat/msg.h"
#include "plat/sync.h"

#define PEER_A "hostboot-a"
#define PEER_B "host-0f8fad5b-d9cb-469f-a165-70867728950e"

typedef struct {
    int calls;
    int status;
    const Plat__PlatformMessage *reply;
    Plat__HostState pong_state; /* read from the reply inside the callback */
    uint64_t at_ms;
    /* optional re-entrant action inside the callback */
    plat_sync_t *readd_sync;
    int readd_rc;
} rec_t;

typedef struct {
    uv_loop_t loop;
    plat_sync_t *s;
} fx_t;

static void cb(int status, const Plat__PlatformMessage *reply, void *arg)
{
    rec_t *r = arg;
    r->calls++;
    r->status = status;
    r->reply = reply;
    r->at_ms = plat_mono_ms();
    if (reply && reply->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL &&
        reply->control->body_case == PLAT__CONTROL_MESSAGE__BODY_PONG)
        r->pong_state = reply->control->pong->state;
    if (r->readd_sync)
        r->readd_rc = plat_sync_add(r->readd_sync, "hostboot-re", 99, 10000, cb, r);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || uv_loop_init(&f->loop) != 0)
        return -1;
    f->s = plat_sync_new(&f->loop);
    if (!f->s)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    plat_sync_destroy(&f->s);
    assert_null(f->s);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    int rc = uv_loop_close(&f->loop);
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

/* Run the loop until `*done` is non-zero or the deadline passes. */
static void run_until(fx_t *f, const int *done, uint32_t deadline_ms)
{
    uint64_t end = plat_mono_ms() + deadline_ms;
    while (!*done && plat_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void test_resolve(void **state)
{
    fx_t *f = *state;
    rec_t r = {0};
    assert_int_equal(plat_sync_pending(f->s), 0);
    assert_int_equal(plat_sync_add(f->s, PEER_A, 1, 1000, cb, &r), 0);
    assert_int_equal(plat_sync_pending(f->s), 1);
    assert_int_equal(r.calls, 0);

    Plat__PlatformMessage *reply = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 1, reply), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_ptr_equal(r.reply, reply);
    assert_int_equal(r.pong_state, PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_sync_pending(f->s), 0);

    /* once only */
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 1, reply), -ENOENT);
    assert_int_equal(r.calls, 1);
    /* wrong peer / wrong seq never match */
    assert_int_equal(plat_sync_add(f->s, PEER_A, 2, 1000, cb, &r), 0);
    assert_int_equal(plat_sync_resolve(f->s, PEER_B, 2, reply), -ENOENT);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 3, reply), -ENOENT);
    assert_int_equal(r.calls, 1);
    assert_int_equal(plat_sync_pending(f->s), 1);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 2, reply), 0);
    assert_int_equal(r.calls, 2);

    /* the timer of a resolved entry never fires later */
    assert_int_equal(plat_sync_add(f->s, PEER_A, 4, 20, cb, &r), 0);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 4, reply), 0);
    assert_int_equal(r.calls, 3);
    rec_t probe = {0};
    assert_int_equal(plat_sync_add(f->s, PEER_A, 5, 60, cb, &probe), 0);
    run_until(f, &probe.calls, 2000);
    assert_int_equal(probe.calls, 1);
    assert_int_equal(r.calls, 3);
    plat_envelope_free(&reply);
}

/* The peer string is copied. */
static void test_peer_copied(void **state)
{
    fx_t *f = *state;
    rec_t r = {0};
    char peer[32];
    strcpy(peer, PEER_A);
    assert_int_equal(plat_sync_add(f->s, peer, 7, 1000, cb, &r), 0);
    memset(peer, 'x', sizeof peer - 1);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 7, NULL), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
}

static void test_timeout(void **state)
{
    fx_t *f = *state;
    rec_t fast = {0}, slow = {0};
    uv_update_time(&f->loop);
    uint64_t t0 = plat_mono_ms();
    assert_int_equal(plat_sync_add(f->s, PEER_A, 1, 20, cb, &fast), 0);
    assert_int_equal(plat_sync_add(f->s, PEER_A, 2, 5000, cb, &slow), 0);
    run_until(f, &fast.calls, 2000);
    assert_int_equal(fast.calls, 1);
    assert_int_equal(fast.status, -ETIMEDOUT);
    assert_null(fast.reply);
    assert_true(fast.at_ms - t0 >= 15); /* not (much) early */
    assert_true(fast.at_ms - t0 < 1000);
    assert_int_equal(slow.calls, 0);
    assert_int_equal(plat_sync_pending(f->s), 1);

    /* late reply */
    Plat__PlatformMessage *reply = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 1, reply), -ENOENT);
    assert_int_equal(fast.calls, 1);
    assert_int_equal(plat_sync_fail(f->s, PEER_A, 1, -EIO), -ENOENT);
    plat_envelope_free(&reply);
    /* `slow` lives on this stack: settle it before returning */
    plat_sync_destroy(&f->s);
    assert_int_equal(slow.calls, 1);
    assert_int_equal(slow.status, -ECANCELED);
}

static void test_many_timeouts_count_down(void **state)
{
    fx_t *f = *state;
    enum { N = 50 };
    rec_t r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++)
        assert_int_equal(
            plat_sync_add(f->s, PEER_B, (uint64_t)i + 1, 10 + (uint32_t)(i % 5) * 5, cb, &r[i]), 0);
    assert_int_equal(plat_sync_pending(f->s), N);
    /* resolve a third of them */
    for (int i = 0; i < N; i += 3)
        assert_int_equal(plat_sync_resolve(f->s, PEER_B, (uint64_t)i + 1, NULL), 0);
    size_t left = plat_sync_pending(f->s);
    assert_int_equal(left, N - (N + 2) / 3);
    int done = 0;
    uint64_t end = plat_mono_ms() + 3000;
    while (plat_sync_pending(f->s) > 0 && plat_mono_ms() < end) {
        size_t before = plat_sync_pending(f->s);
        uv_run(&f->loop, UV_RUN_ONCE);
        assert_true(plat_sync_pending(f->s) <= before);
    }
    assert_int_equal(plat_sync_pending(f->s), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, i % 3 == 0 ? 0 : -ETIMEDOUT);
        done++;
    }
    assert_int_equal(done, N);
}

static void test_duplicates_and_keys(void **state)
{
    fx_t *f = *state;
    rec_t a = {0}, b = {0}, dup = {0};
    assert_int_equal(plat_sync_add(f->s, PEER_A, 5, 1000, cb, &a), 0);
    assert_int_equal(plat_sync_add(f->s, PEER_A, 5, 1000, cb, &dup), -EEXIST);
    assert_int_equal(plat_sync_pending(f->s), 1);
    /* same seq, other peer: a different key */
    assert_int_equal(plat_sync_add(f->s, PEER_B, 5, 1000, cb, &b), 0);
    assert_int_equal(plat_sync_pending(f->s), 2);

    assert_int_equal(plat_sync_resolve(f->s, PEER_B, 5, NULL), 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(a.calls, 0);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 5, NULL), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(dup.calls, 0);
    assert_int_equal(plat_sync_pending(f->s), 0);

    /* the key is free again once resolved */
    assert_int_equal(plat_sync_add(f->s, PEER_A, 5, 1000, cb, &dup), 0);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 5, NULL), 0);
    assert_int_equal(dup.calls, 1);

    /* big seq numbers are keys like any other */
    assert_int_equal(plat_sync_add(f->s, PEER_A, UINT64_MAX, 1000, cb, &a), 0);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, UINT64_MAX - 1, NULL), -ENOENT);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, UINT64_MAX, NULL), 0);
    assert_int_equal(a.calls, 2);
}

static void test_invalid_args(void **state)
{
    fx_t *f = *state;
    rec_t r = {0};
    assert_int_equal(plat_sync_add(f->s, NULL, 1, 1000, cb, &r), -EINVAL);
    assert_int_equal(plat_sync_add(f->s, PEER_A, 1, 1000, NULL, &r), -EINVAL);
    assert_int_equal(plat_sync_pending(f->s), 0);
}

static void test_fail(void **state)
{
    fx_t *f = *state;
    rec_t r = {0}, other = {0};
    assert_int_equal(plat_sync_add(f->s, PEER_A, 1, 1000, cb, &r), 0);
    assert_int_equal(plat_sync_add(f->s, PEER_A, 2, 1000, cb, &other), 0);
    assert_int_equal(plat_sync_fail(f->s, PEER_A, 1, -EHOSTUNREACH), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, -EHOSTUNREACH);
    assert_null(r.reply);
    assert_int_equal(other.calls, 0);
    assert_int_equal(plat_sync_pending(f->s), 1);
    assert_int_equal(plat_sync_fail(f->s, PEER_A, 1, -EHOSTUNREACH), -ENOENT);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 1, NULL), -ENOENT);
    assert_int_equal(r.calls, 1);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 2, NULL), 0);
    assert_int_equal(other.calls, 1);
}

static void test_fail_peer(void **state)
{
    fx_t *f = *state;
    rec_t a1 = {0}, a2 = {0}, b1 = {0}, c1 = {0};
    assert_int_equal(plat_sync_add(f->s, PEER_A, 1, 1000, cb, &a1), 0);
    assert_int_equal(plat_sync_add(f->s, PEER_A, 2, 1000, cb, &a2), 0);
    assert_int_equal(plat_sync_add(f->s, PEER_B, 1, 1000, cb, &b1), 0);
    assert_int_equal(plat_sync_add(f->s, "platform", 1, 1000, cb, &c1), 0);

    plat_sync_fail_peer(f->s, PEER_A, -ENOTCONN);
    assert_int_equal(a1.calls, 1);
    assert_int_equal(a1.status, -ENOTCONN);
    assert_int_equal(a2.calls, 1);
    assert_int_equal(a2.status, -ENOTCONN);
    assert_int_equal(b1.calls, 0);
    assert_int_equal(c1.calls, 0);
    assert_int_equal(plat_sync_pending(f->s), 2);

    plat_sync_fail_peer(f->s, "hostboot-nobody", -ENOTCONN); /* no-op */
    assert_int_equal(plat_sync_pending(f->s), 2);

    plat_sync_fail_peer(f->s, NULL, -ECONNRESET);
    assert_int_equal(b1.calls, 1);
    assert_int_equal(b1.status, -ECONNRESET);
    assert_int_equal(c1.calls, 1);
    assert_int_equal(c1.status, -ECONNRESET);
    assert_int_equal(a1.calls, 1);
    assert_int_equal(plat_sync_pending(f->s), 0);

    plat_sync_fail_peer(f->s, NULL, -ECONNRESET); /* empty: no-op */
}

/* A callback may add a new request (a retry) while the sync is calling it. */
static void test_add_from_callback(void **state)
{
    fx_t *f = *state;
    rec_t r = {.readd_sync = f->s};
    assert_int_equal(plat_sync_add(f->s, PEER_A, 1, 10, cb, &r), 0);
    run_until(f, &r.calls, 2000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, -ETIMEDOUT);
    assert_int_equal(r.readd_rc, 0);
    assert_int_equal(plat_sync_pending(f->s), 1);
    r.readd_sync = NULL;
    assert_int_equal(plat_sync_resolve(f->s, "hostboot-re", 99, NULL), 0);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.status, 0);
}

static void test_destroy_cancels(void **state)
{
    fx_t *f = *state;
    rec_t r[3];
    memset(r, 0, sizeof r);
    assert_int_equal(plat_sync_add(f->s, PEER_A, 1, 1000, cb, &r[0]), 0);
    assert_int_equal(plat_sync_add(f->s, PEER_B, 1, 1000, cb, &r[1]), 0);
    assert_int_equal(plat_sync_add(f->s, PEER_B, 2, 20, cb, &r[2]), 0);
    plat_sync_destroy(&f->s);
    assert_null(f->s);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, -ECANCELED);
        assert_null(r[i].reply);
    }
    /* nothing fires afterwards; the loop finishes by itself */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].calls, 1);
    plat_sync_destroy(&f->s); /* NULL-safe */
    plat_sync_destroy(NULL);
}

/* ---- statistics and the reply observer ---------------------------------- */

typedef struct {
    int calls;
    char peer[64];
    uint64_t seq;
    const Plat__PlatformMessage *reply;
} obs_t;

static void observer(const char *peer, uint64_t seq, const Plat__PlatformMessage *reply, void *arg)
{
    obs_t *o = arg;
    o->calls++;
    snprintf(o->peer, sizeof o->peer, "%s", peer);
    o->seq = seq;
    o->reply = reply;
}

static void on_wait(uv_timer_t *t) { *(int *)t->data = 1; }

/* Let at least `ms` pass on the loop (a timer, not a sleep). */
static void wait_ms(fx_t *f, uint64_t ms)
{
    int done = 0;
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    t.data = &done;
    uv_update_time(&f->loop); /* from now, not from the loop's cached time */
    uv_timer_start(&t, on_wait, ms, 0);
    run_until(f, &done, 5000);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(done, 1);
}

static void test_stats(void **state)
{
    fx_t *f = *state;
    plat_sync_stats_t st = plat_sync_stats(f->s);
    assert_int_equal(st.replies + st.timeouts + st.failed + st.added, 0);
    assert_int_equal(plat_sync_stats(NULL).replies, 0);
    assert_int_equal(plat_sync_oldest_pending_ms(f->s), 0);
    assert_int_equal(plat_sync_oldest_pending_ms(NULL), 0);
    for (size_t i = 1; i < PLAT_SYNC_BUCKETS; i++)
        assert_true(plat_sync_bucket_le[i] > plat_sync_bucket_le[i - 1]);

    obs_t o = {0};
    plat_sync_set_reply_observer(f->s, observer, &o);
    rec_t a = {0}, b = {0}, c = {0}, d = {0};
    assert_int_equal(plat_sync_add(f->s, PEER_A, 1, 10000, cb, &a), 0);
    assert_int_equal(plat_sync_add(f->s, PEER_B, 2, 10000, cb, &b), 0);
    assert_int_equal(plat_sync_add(f->s, PEER_A, 3, 20, cb, &c), 0);
    assert_int_equal(plat_sync_add(f->s, PEER_A, 4, 10000, cb, &d), 0);
    assert_int_equal(plat_sync_add(f->s, PEER_A, 4, 10000, cb, &d), -EEXIST); /* not counted */
    assert_int_equal(plat_sync_stats(f->s).added, 4);

    Plat__PlatformMessage *reply = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 1, reply), 0);
    assert_int_equal(o.calls, 1);
    assert_string_equal(o.peer, PEER_A);
    assert_int_equal(o.seq, 1);
    assert_ptr_equal(o.reply, reply);
    /* an unmatched reply is not observed */
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 99, reply), -ENOENT);
    assert_int_equal(o.calls, 1);

    /* b waits at least 30 ms: its duration lands in a bucket above 25 ms,
     * and meanwhile c times out. */
    wait_ms(f, 40); /* libuv timers count whole ms: at least 39 ms pass */
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, -ETIMEDOUT);
    assert_true(plat_sync_oldest_pending_ms(f->s) >= 30);
    assert_int_equal(plat_sync_resolve(f->s, PEER_B, 2, reply), 0);
    assert_int_equal(o.calls, 2);
    assert_string_equal(o.peer, PEER_B);
    assert_int_equal(plat_sync_fail(f->s, PEER_A, 4, -EHOSTUNREACH), 0);
    assert_int_equal(o.calls, 2); /* failures are no replies */

    st = plat_sync_stats(f->s);
    assert_int_equal(st.replies, 2);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.failed, 1);
    uint64_t sum = 0, slow = 0;
    for (size_t i = 0; i <= PLAT_SYNC_BUCKETS; i++) {
        sum += st.bucket[i];
        if (i == PLAT_SYNC_BUCKETS || plat_sync_bucket_le[i] >= 0.025)
            slow += st.bucket[i];
    }
    assert_int_equal(sum, 2);
    assert_true(slow >= 1);
    assert_true(st.sum_ns >= 30u * 1000000u);
    assert_int_equal(plat_sync_oldest_pending_ms(f->s), 0);

    /* off again */
    plat_sync_set_reply_observer(f->s, NULL, NULL);
    assert_int_equal(plat_sync_add(f->s, PEER_A, 5, 10000, cb, &a), 0);
    assert_int_equal(plat_sync_resolve(f->s, PEER_A, 5, reply), 0);
    assert_int_equal(o.calls, 2);
    plat_envelope_free(&reply);

    /* destroy cancels what is left: counted as failed, not as timeouts */
    assert_int_equal(plat_sync_add(f->s, PEER_A, 6, 10000, cb, &a), 0);
    plat_sync_stats_t before = plat_sync_stats(f->s);
    assert_int_equal(before.failed, 1);
    plat_sync_destroy(&f->s);
    assert_int_equal(a.status, -ECANCELED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_copied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_timeouts_count_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_and_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
