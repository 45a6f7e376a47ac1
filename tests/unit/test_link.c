/* plat/link.h: a link against a fake platform — a ROUTER plat_bus on the
 * same uv loop that answers registrations (Control.ready) with
 * Control.register_ack and pings the link. Registration, pong, staying
 * registered while pinged, LOST after heartbeat_miss silent intervals and
 * re-registration with growing backoff, a restarted platform (new boot id)
 * noticed from its Ping, retries while nobody answers or the platform
 * refuses, and a platform that comes up after the link. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "plat/bus.h"
#include "plat/envelope.h"
#include "plat/id.h"
#include "plat/link.h"
#include "plat/msg.h"
#include "testports.h"

#define DEADLINE_MS 3000
#define MAX_REC 64

#define REGISTER_TIMEOUT_MS 100
#define RETRY_INITIAL_MS 50
#define RETRY_MAX_MS 400

typedef enum {
    ANSWER_ACK = 0, /* register_ack */
    ANSWER_NONE,    /* leave registrations unanswered */
    ANSWER_ERROR,   /* refuse with an error reply */
    ANSWER_HOLD,    /* keep the first registration (f->held) for the test to
                       answer later; leave the others unanswered */
} answer_t;

typedef struct {
    plat_link_state_t state;
    char boot[PLAT_UUID_LEN + 1];
    bool boot_null;
    uint64_t at_ms;
} state_rec_t;

typedef struct {
    uv_loop_t loop;
    uv_timer_t tick; /* bounds every UV_RUN_ONCE */
    uv_timer_t pinger;
    bool pinger_open;
    char addr[64];
    char link_id[PLAT_ID_MAX + 1];
    char link_boot[PLAT_UUID_LEN + 1];
    /* fake platform */
    plat_bus_t *platform;
    char pboot[PLAT_UUID_LEN + 1];
    answer_t answer;
    int refuse_first; /* ANSWER_ERROR for this many, then ack */
    uint32_t ack_interval_ms, ack_miss;
    int n_reg;
    int reg_bad; /* registrations that did not look right */
    int n_other; /* other messages at the platform */
    Plat__PlatformMessage *held; /* ANSWER_HOLD: the first registration */
    /* pings from the platform */
    int pings_sent, pongs, ping_fail;
    Plat__HostState last_pong;
    /* link side */
    plat_link_t *link;
    int builds;
    uint64_t build_at[MAX_REC]; /* when the link made each attempt */
    int n_state;
    state_rec_t st[MAX_REC];
    int link_rx;
    Plat__HostState pong_state;
} fx_t;

/* ---- fake platform ---- */

static void platform_on_message(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg)
{
    fx_t *f = arg;
    const Plat__PlatformMessage *m = rx->msg;
    bool is_ready = m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL &&
                    m->control->body_case == PLAT__CONTROL_MESSAGE__BODY_READY;
    if (!is_ready) {
        f->n_other++;
        return;
    }
    f->n_reg++;
    if (m->header->kind != PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST ||
        strcmp(rx->peer, f->link_id) != 0 || strcmp(m->control->ready->host->id, f->link_id) != 0 ||
        m->header->timeout_ms != REGISTER_TIMEOUT_MS || strcmp(m->header->boot_id, f->link_boot))
        f->reg_bad++;
    if (f->answer == ANSWER_HOLD && !f->held)
        assert_int_equal(plat_envelope_decode(rx->raw, rx->raw_len, 0, &f->held, NULL), 0);
    if (f->answer == ANSWER_NONE || f->answer == ANSWER_HOLD)
        return;
    if (f->answer == ANSWER_ERROR || f->refuse_first > 0) {
        if (f->refuse_first > 0)
            f->refuse_first--;
        plat_bus_reply_error(bus, m, -EINVAL, "refused", "host.id");
        return;
    }
    Plat__PlatformMessage *ack = plat_msg_register_ack(f->pboot, f->ack_interval_ms, f->ack_miss);
    assert_int_equal(plat_bus_reply(bus, m, ack), 0);
    plat_envelope_free(&ack);
}

static plat_bus_t *platform_new(fx_t *f)
{
    plat_uuid_new(f->pboot);
    plat_bus_opts_t o = {
        .role = PLAT_ENDPOINT_ROUTER,
        .identity = PLAT_PLATFORM_ID,
        .address = f->addr,
        .boot_id = f->pboot,
        .on_message = platform_on_message,
        .arg = f,
    };
    /* a just-closed ROUTER may hold the port for a moment */
    uint64_t end = plat_mono_ms() + DEADLINE_MS;
    while (!(f->platform = plat_bus_new(&f->loop, &o)) && plat_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    return f->platform;
}

static void on_pong(int status, const Plat__PlatformMessage *reply, void *arg)
{
    fx_t *f = arg;
    if (status != 0) {
        f->ping_fail++;
        return;
    }
    if (reply->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY &&
        reply->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL &&
        reply->control->body_case == PLAT__CONTROL_MESSAGE__BODY_PONG) {
        f->pongs++;
        f->last_pong = reply->control->pong->state;
    }
}

static int64_t ping(fx_t *f)
{
    Plat__PlatformMessage *m = plat_msg_ping(f->pboot);
    int64_t rc = plat_bus_request(f->platform, f->link_id, m, 1000, on_pong, f);
    plat_envelope_free(&m);
    if (rc > 0)
        f->pings_sent++;
    return rc;
}

static void on_pinger(uv_timer_t *t)
{
    fx_t *f = t->data;
    ping(f);
}

static void start_pinger(fx_t *f, uint64_t every_ms)
{
    if (!f->pinger_open) {
        uv_timer_init(&f->loop, &f->pinger);
        f->pinger.data = f;
        f->pinger_open = true;
    }
    uv_timer_start(&f->pinger, on_pinger, every_ms, every_ms);
}

/* ---- link callbacks ---- */

static Plat__PlatformMessage *build_registration(void *arg)
{
    fx_t *f = arg;
    if (f->builds < MAX_REC)
        f->build_at[f->builds] = plat_mono_ms();
    f->builds++;
    return plat_msg_host_ready(f->link_id, (int32_t)getpid(), "c", "1", "dev", "0.1.0", 1);
}

static void on_state(plat_link_state_t state, const char *platform_boot_id, void *arg)
{
    fx_t *f = arg;
    if (f->n_state >= MAX_REC)
        return;
    state_rec_t *r = &f->st[f->n_state++];
    r->state = state;
    r->boot_null = platform_boot_id == NULL;
    snprintf(r->boot, sizeof r->boot, "%s", platform_boot_id ? platform_boot_id : "");
    r->at_ms = plat_mono_ms();
}

static Plat__HostState pong_state(void *arg)
{
    return ((fx_t *)arg)->pong_state;
}

static void link_on_message(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg)
{
    fx_t *f = arg;
    f->link_rx++;
}

static plat_link_t *link_new(fx_t *f)
{
    plat_link_opts_t o = {
        .identity = f->link_id,
        .platform_address = f->addr,
        .boot_id = f->link_boot,
        .register_timeout_ms = REGISTER_TIMEOUT_MS,
        .retry_initial_ms = RETRY_INITIAL_MS,
        .retry_max_ms = RETRY_MAX_MS,
        .heartbeat_interval_ms = 1000,
        .heartbeat_miss = 3,
        .build_registration = build_registration,
        .on_state = on_state,
        .pong_state = pong_state,
        .on_message = link_on_message,
        .arg = f,
    };
    f->link = plat_link_new(&f->loop, &o);
    return f->link;
}

/* ---- fixture ---- */

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || uv_loop_init(&f->loop) != 0)
        return -1;
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, 10, 10);
    if (plat_test_free_endpoint(f->addr, sizeof f->addr) < 0)
        return -1;
    char uuid[PLAT_UUID_LEN + 1];
    plat_uuid_new(uuid);
    snprintf(f->link_id, sizeof f->link_id, "host-%s", uuid);
    plat_uuid_new(f->link_boot);
    f->ack_interval_ms = 1000;
    f->ack_miss = 3;
    f->pong_state = PLAT__HOST_STATE__HOST_STATE_BUSY;
    *state = f;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    plat_envelope_free(&f->held);
    plat_link_destroy(&f->link);
    assert_null(f->link);
    plat_bus_destroy(&f->platform);
    if (f->pinger_open)
        uv_close((uv_handle_t *)&f->pinger, on_closed);
    uv_close((uv_handle_t *)&f->tick, on_closed);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

typedef bool (*cond_fn)(fx_t *f, const void *arg);

static bool run_until(fx_t *f, cond_fn cond, const void *arg, uint32_t deadline_ms)
{
    uint64_t end = plat_mono_ms() + deadline_ms;
    while (!cond(f, arg)) {
        if (plat_mono_ms() >= end)
            return false;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return true;
}

static bool cond_state(fx_t *f, const void *arg)
{
    return f->link && plat_link_state(f->link) == *(const plat_link_state_t *)arg;
}

static bool cond_regs(fx_t *f, const void *arg)
{
    return f->n_reg >= *(const int *)arg;
}

static bool cond_pongs(fx_t *f, const void *arg)
{
    return f->pongs >= *(const int *)arg;
}

static bool cond_n_state(fx_t *f, const void *arg)
{
    return f->n_state >= *(const int *)arg;
}

static void wait_state(fx_t *f, plat_link_state_t s)
{
    if (!run_until(f, cond_state, &s, DEADLINE_MS))
        fail_msg("link never reached state %s (is %s)", plat_link_state_name(s),
                 plat_link_state_name(plat_link_state(f->link)));
}

static void wait_regs(fx_t *f, int n)
{
    if (!run_until(f, cond_regs, &n, DEADLINE_MS))
        fail_msg("only %d registrations, want %d", f->n_reg, n);
}

static bool cond_builds(fx_t *f, const void *arg)
{
    return f->builds >= *(const int *)arg;
}

static void wait_builds(fx_t *f, int n)
{
    if (!run_until(f, cond_builds, &n, DEADLINE_MS))
        fail_msg("only %d registration attempts, want %d", f->builds, n);
}

static int count_state(fx_t *f, plat_link_state_t s)
{
    int n = 0;
    for (int i = 0; i < f->n_state; i++)
        n += f->st[i].state == s;
    return n;
}

/* Registered with the fake platform: the common start. */
static void register_link(fx_t *f)
{
    assert_non_null(platform_new(f));
    assert_non_null(link_new(f));
    wait_state(f, PLAT_LINK_REGISTERED);
}

/* ---- tests ---- */

static void test_state_names(void **state)
{
    const char *a = plat_link_state_name(PLAT_LINK_REGISTERING);
    const char *b = plat_link_state_name(PLAT_LINK_REGISTERED);
    const char *c = plat_link_state_name(PLAT_LINK_LOST);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_string_not_equal(a, b);
    assert_string_not_equal(b, c);
    assert_string_not_equal(a, c);
}

static void test_new_errors(void **state)
{
    fx_t *f = *state;
    plat_link_opts_t o = {
        .identity = "not-an-id",
        .platform_address = f->addr,
        .build_registration = build_registration,
        .arg = f,
    };
    errno = 0;
    assert_null(plat_link_new(&f->loop, &o));
    assert_int_not_equal(errno, 0);
    plat_link_destroy(NULL);
}

static void test_register(void **state)
{
    fx_t *f = *state;
    assert_non_null(platform_new(f));
    assert_non_null(link_new(f));
    assert_int_equal(plat_link_state(f->link), PLAT_LINK_REGISTERING);
    assert_string_equal(plat_link_platform_boot_id(f->link), "");
    assert_non_null(plat_link_bus(f->link));
    assert_string_equal(plat_bus_identity(plat_link_bus(f->link)), f->link_id);
    assert_string_equal(plat_bus_boot_id(plat_link_bus(f->link)), f->link_boot);

    wait_state(f, PLAT_LINK_REGISTERED);
    assert_string_equal(plat_link_platform_boot_id(f->link), f->pboot);
    assert_int_equal(f->n_state, 1);
    assert_int_equal(f->st[0].state, PLAT_LINK_REGISTERED);
    assert_false(f->st[0].boot_null);
    assert_string_equal(f->st[0].boot, f->pboot);
    /* usually 1; a loaded machine may need a retry within the 100 ms timeout */
    assert_true(f->n_reg >= 1);
    assert_int_equal(f->reg_bad, 0);
    assert_int_equal(f->builds, f->n_reg);
}

static void test_ping_pong(void **state)
{
    fx_t *f = *state;
    register_link(f);
    int regs = f->n_reg;
    assert_true(ping(f) > 0);
    int one = 1;
    assert_true(run_until(f, cond_pongs, &one, DEADLINE_MS));
    assert_int_equal(f->last_pong, PLAT__HOST_STATE__HOST_STATE_BUSY);
    f->pong_state = PLAT__HOST_STATE__HOST_STATE_READY;
    assert_true(ping(f) > 0);
    int two = 2;
    assert_true(run_until(f, cond_pongs, &two, DEADLINE_MS));
    assert_int_equal(f->last_pong, PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(f->ping_fail, 0);
    /* pings are not handed to on_message; other messages are */
    assert_int_equal(f->link_rx, 0);
    Plat__PlatformMessage *m = plat_msg_hostboot_heartbeat("x", 0, 0);
    assert_int_equal(plat_bus_send(f->platform, f->link_id, m), 0);
    plat_envelope_free(&m);
    uint64_t end = plat_mono_ms() + DEADLINE_MS;
    while (f->link_rx < 1 && plat_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->link_rx, 1);
    /* same boot id: no re-registration */
    assert_int_equal(plat_link_state(f->link), PLAT_LINK_REGISTERED);
    assert_int_equal(f->n_reg, regs);
    assert_int_equal(f->n_state, 1);
}

static bool cond_time(fx_t *f, const void *arg)
{
    return plat_mono_ms() >= *(const uint64_t *)arg;
}

/* Pinged every interval, the link stays registered well past miss x interval. */
static void test_pinged_stays_registered(void **state)
{
    fx_t *f = *state;
    f->ack_interval_ms = 100;
    f->ack_miss = 3;
    register_link(f);
    int regs = f->n_reg;
    start_pinger(f, 50);
    uint64_t until = plat_mono_ms() + 800; /* > 2 x miss x interval */
    run_until(f, cond_time, &until, 1500);
    assert_true(f->pongs >= 5);
    assert_int_equal(count_state(f, PLAT_LINK_LOST), 0);
    assert_int_equal(plat_link_state(f->link), PLAT_LINK_REGISTERED);
    assert_int_equal(f->n_reg, regs);
}

static void test_lost_then_backoff(void **state)
{
    fx_t *f = *state;
    f->ack_interval_ms = 50; /* the ack's values replace the opts' 1000 x 3 */
    f->ack_miss = 3;
    register_link(f);
    uint64_t registered_at = f->st[0].at_ms;

    /* the platform goes silent and stops answering */
    f->answer = ANSWER_NONE;
    wait_state(f, PLAT_LINK_LOST);
    int lost_i = f->n_state - 1;
    assert_int_equal(f->st[lost_i].state, PLAT_LINK_LOST);
    assert_true(f->st[lost_i].boot_null);
    uint64_t silent = f->st[lost_i].at_ms - registered_at;
    if (silent < 100 || silent > 1000)
        fail_msg("LOST after %llu ms of silence (interval 50, miss 3)", (unsigned long long)silent);

    /* re-registration attempts (timed where the link makes them), further
     * apart each time (backoff) */
    int first = 0;
    while (first < f->builds && f->build_at[first] < f->st[lost_i].at_ms)
        first++;
    wait_builds(f, first + 4);
    uint64_t gap[3];
    for (int i = 0; i < 3; i++) {
        gap[i] = f->build_at[first + i + 1] - f->build_at[first + i];
        assert_true(gap[i] + 5 >= REGISTER_TIMEOUT_MS); /* never two in flight */
    }
    if (!(gap[2] > gap[0] + RETRY_INITIAL_MS))
        fail_msg("no backoff: gaps %llu %llu %llu ms", (unsigned long long)gap[0],
                 (unsigned long long)gap[1], (unsigned long long)gap[2]);
    assert_int_not_equal(plat_link_state(f->link), PLAT_LINK_REGISTERED);

    /* the platform answers again */
    f->answer = ANSWER_ACK;
    wait_state(f, PLAT_LINK_REGISTERED);
    state_rec_t *last = &f->st[f->n_state - 1];
    assert_int_equal(last->state, PLAT_LINK_REGISTERED);
    assert_string_equal(last->boot, f->pboot);
    assert_int_equal(f->reg_bad, 0);
}

/* The platform restarts (new ROUTER, new boot id) on the same address and
 * pings: the link re-registers at once, long before it would call the old
 * platform lost. */
static void test_platform_restart_new_boot(void **state)
{
    fx_t *f = *state;
    f->ack_interval_ms = 1000;
    f->ack_miss = 3;
    register_link(f);
    char old_boot[PLAT_UUID_LEN + 1];
    snprintf(old_boot, sizeof old_boot, "%s", f->pboot);
    int regs_before = f->n_reg;
    int states_before = f->n_state;

    plat_bus_destroy(&f->platform);
    assert_non_null(platform_new(f)); /* new boot id in f->pboot */
    assert_string_not_equal(f->pboot, old_boot);
    uint64_t t0 = plat_mono_ms();
    /* ping until the link's DEALER has reconnected (EHOSTUNREACH before) */
    start_pinger(f, 20);
    wait_regs(f, regs_before + 1);
    uv_timer_stop(&f->pinger);
    int want = states_before + 1;
    assert_true(run_until(f, cond_n_state, &want, DEADLINE_MS));
    uint64_t end = plat_mono_ms() + DEADLINE_MS;
    while (!(plat_link_state(f->link) == PLAT_LINK_REGISTERED &&
             strcmp(plat_link_platform_boot_id(f->link), f->pboot) == 0) &&
           plat_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(plat_link_state(f->link), PLAT_LINK_REGISTERED);
    assert_string_equal(plat_link_platform_boot_id(f->link), f->pboot);
    assert_true(plat_mono_ms() - t0 < 2500); /* not via the 3 s LOST path */
    assert_int_equal(count_state(f, PLAT_LINK_LOST), 0);
    state_rec_t *last = &f->st[f->n_state - 1];
    assert_int_equal(last->state, PLAT_LINK_REGISTERED);
    assert_string_equal(last->boot, f->pboot);
    assert_int_equal(f->reg_bad, 0);
}

static void test_register_timeout_retries(void **state)
{
    fx_t *f = *state;
    f->answer = ANSWER_NONE;
    assert_non_null(platform_new(f));
    assert_non_null(link_new(f));
    wait_regs(f, 3);
    wait_builds(f, 3);
    assert_int_equal(plat_link_state(f->link), PLAT_LINK_REGISTERING);
    assert_int_equal(count_state(f, PLAT_LINK_REGISTERED), 0);
    assert_string_equal(plat_link_platform_boot_id(f->link), "");
    /* one attempt at a time: each waits out its timeout */
    for (int i = 1; i < 3; i++)
        assert_true(f->build_at[i] - f->build_at[i - 1] + 5 >= REGISTER_TIMEOUT_MS);
    /* answered at last */
    f->answer = ANSWER_ACK;
    wait_state(f, PLAT_LINK_REGISTERED);
    assert_string_equal(plat_link_platform_boot_id(f->link), f->pboot);
}

/* Attempts made while the platform could not answer are all answered once
 * it can, after they timed out at the link: the late register_ack is
 * taken at once instead of waiting for an attempt that is answered in time
 * (here: none is). */
static void test_late_ack_accepted(void **state)
{
    fx_t *f = *state;
    f->answer = ANSWER_HOLD;
    assert_non_null(platform_new(f));
    assert_non_null(link_new(f));
    wait_regs(f, 2); /* the first attempt timed out, a second one was made */
    assert_non_null(f->held);
    assert_int_equal(plat_link_state(f->link), PLAT_LINK_REGISTERING);
    Plat__PlatformMessage *ack = plat_msg_register_ack(f->pboot, f->ack_interval_ms, f->ack_miss);
    assert_int_equal(plat_bus_reply(f->platform, f->held, ack), 0);
    plat_envelope_free(&ack);
    wait_state(f, PLAT_LINK_REGISTERED);
    assert_string_equal(plat_link_platform_boot_id(f->link), f->pboot);
    assert_int_equal(count_state(f, PLAT_LINK_REGISTERED), 1);
}

static void test_refused_then_admitted(void **state)
{
    fx_t *f = *state;
    f->refuse_first = 2;
    assert_non_null(platform_new(f));
    assert_non_null(link_new(f));
    wait_state(f, PLAT_LINK_REGISTERED);
    assert_true(f->n_reg >= 3); /* 2 refused + 1 admitted (+ retries if slow) */
    assert_int_equal(count_state(f, PLAT_LINK_REGISTERED), 1);
    assert_int_equal(f->reg_bad, 0);
}

/* hostbootd may start before platformd: the link keeps trying. */
static void test_platform_starts_later(void **state)
{
    fx_t *f = *state;
    assert_non_null(link_new(f));
    uint64_t until = plat_mono_ms() + 300;
    run_until(f, cond_time, &until, 1000);
    assert_int_equal(plat_link_state(f->link), PLAT_LINK_REGISTERING);
    assert_non_null(platform_new(f));
    wait_state(f, PLAT_LINK_REGISTERED);
    assert_string_equal(plat_link_platform_boot_id(f->link), f->pboot);
}

static void test_destroy_while_registering(void **state)
{
    fx_t *f = *state;
    f->answer = ANSWER_NONE;
    assert_non_null(platform_new(f));
    assert_non_null(link_new(f));
    wait_regs(f, 1);
    plat_link_destroy(&f->link);
    assert_null(f->link);
    /* no callback after destroy, and the loop drains (teardown checks
     * uv_loop_close) */
    int n = f->n_state;
    uint64_t until = plat_mono_ms() + 250;
    run_until(f, cond_time, &until, 1000);
    assert_int_equal(f->n_state, n);
}

int main(void)
{
    zsys_handler_set(NULL);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        T(test_new_errors),
        T(test_register),
        T(test_ping_pong),
        T(test_pinged_stays_registered),
        T(test_lost_then_backoff),
        T(test_platform_restart_new_boot),
        T(test_register_timeout_retries),
        T(test_late_ack_accepted),
        T(test_refused_then_admitted),
        T(test_platform_starts_later),
        T(test_destroy_while_registering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
