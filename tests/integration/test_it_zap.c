/* platformd's ZAP wait queue under a flood of made-up CURVE keys
 * (docs/security.md, "The ZAP handler"). Anyone with platform.pub can
 * open connections with random keys; such a key may wait for a host key
 * only while one is expected, and only a few per expected key:
 *   - nothing expected: every unknown key is refused at once (bus.auth_grace_ms
 *     is 60 s here, the deadline 10 s), the refusals logged a line a second,
 *     not one per attempt; a host started right after the flood registers,
 *     and once it did nothing is expected any more;
 *   - a START answer pending (a fake hostboot holds it): 16 unknown keys
 *     wait, the rest is refused at once; the answer ends the wait for the
 *     16; the host's own key, connecting then, gets in; a host key
 *     connecting before the answer waits and gets in;
 *   - platformd killed and restarted under a spawned host: the host (whose
 *     key only its hostboot's REGISTER report carries) gets back in.
 * The flood clients are plain libzmq DEALERs of this process (the harness
 * holds only a few clients); what platformd refused is read from
 * GET /metrics (plat_bus_auth_refused_total). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "harness.h"
#include "plat/keys.h"
#include "plat/plat.h"

#define HB_INTERVAL_MS 1000
#define HB_MISS 10
#define GRACE_MS 60000   /* far beyond every deadline: a key that waited fails the test */
#define FLOOD_N 100
#define EXPECTED_FLOOD_N 40
#define PER_EXPECTED 16  /* zap.c PENDING_PER_EXPECTED */
#define FLOOD_MAX 128
#define HOST_READY_MS 30000

static const Plat__MessageKind REQUEST = PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST;
static const Plat__MessageKind REPLY = PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY;

static int setup(void **state)
{
    *state = it_new();
    return 0;
}

static int teardown(void **state)
{
    it_env_t *env = *state;
    it_destroy(&env);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

typedef struct {
    void *ctx;
    void *socks[FLOOD_MAX];
    size_t n;
} flood_t;

/* `n` more CURVE clients, each with a fresh random key, each sending one
 * frame (it stays queued: none gets in). */
static void flood_open(it_env_t *env, flood_t *f, size_t n)
{
    if (!f->ctx) {
        f->ctx = zmq_ctx_new();
        assert_non_null(f->ctx);
    }
    for (size_t i = 0; i < n; i++) {
        assert_true(f->n < FLOOD_MAX);
        plat_keypair_t kp;
        assert_int_equal(plat_keys_new(&kp), 0);
        void *s = zmq_socket(f->ctx, ZMQ_DEALER);
        assert_non_null(s);
        int linger = 0;
        assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger), 0);
        assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, it_platform_public_key(env), 40),
                         0);
        assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, kp.public_z85, 40), 0);
        assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, kp.secret_z85, 40), 0);
        assert_int_equal(zmq_connect(s, it_bus_endpoint(env)), 0);
        (void)zmq_send(s, "x", 1, ZMQ_DONTWAIT);
        plat_keys_wipe(&kp);
        f->socks[f->n++] = s;
    }
}

static void flood_close(flood_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        zmq_close(f->socks[i]);
    f->n = 0;
    if (f->ctx)
        zmq_ctx_term(f->ctx);
    f->ctx = NULL;
}

/* A counter of GET /metrics (no labels). */
static int64_t metric(it_env_t *env, const char *name)
{
    char *body = NULL;
    size_t len = 0;
    int st = it_http_raw(env, "GET", "/metrics", NULL, 0, NULL, &body, &len);
    IT_CHECK(env, st == 200, "GET /metrics: %d", st);
    size_t nl = strlen(name);
    int64_t v = -1;
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ') {
            v = strtoll(p + nl + 1, NULL, 10);
            break;
        }
    free(body);
    IT_CHECK(env, v >= 0, "metric %s not found", name);
    return v;
}

static int64_t refused(it_env_t *env) { return metric(env, "plat_bus_auth_refused_total"); }

/* Poll until `refused` reaches `want` (answering `hb`'s pings, may be NULL). */
static void wait_refused(it_env_t *env, int64_t want, it_client_t *hb, const char *what)
{
    uint64_t deadline = it_now_ms() + IT_DEADLINE_MS;
    int64_t got;
    while ((got = refused(env)) < want) {
        IT_CHECK(env, it_now_ms() < deadline,
                 "%s: %lld refused, want %lld within %d ms (bus.auth_grace_ms is %d)", what,
                 (long long)got, (long long)want, IT_DEADLINE_MS, GRACE_MS);
        if (hb)
            it_client_pump(hb);
    }
}

static void wait_log(it_env_t *env, const it_proc_t *p, const char *needle, int timeout_ms)
{
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
    while (it_log_count(p, needle) < 1) {
        IT_CHECK(env, it_now_ms() < deadline, "platformd never logged \"%s\"", needle);
        (void)it_http_get(env, "/healthz", NULL); /* a paced wait: one round trip */
    }
}

static const char *platformd_config(it_env_t *env)
{
    json_t *extra = json_pack("{s:{s:i}, s:{s:i, s:i}}", "bus", "auth_grace_ms", GRACE_MS,
                              "hosts", "start_timeout_ms", 60000, "ready_timeout_ms", 60000);
    assert_non_null(extra);
    const char *cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, extra);
    json_decref(extra);
    return cfg;
}

/* POST /api/v1/hosts c/1 (on `hostboot`, NULL = any); its id into id[64]. */
static void post_host(it_env_t *env, const char *hostboot, char id[64])
{
    json_t *req = hostboot ? json_pack("{s:s, s:s, s:s}", "language", "c", "version", "1",
                                       "hostboot", hostboot)
                           : json_pack("{s:s, s:s}", "language", "c", "version", "1");
    assert_non_null(req);
    json_t *body = NULL;
    int st = it_http_post(env, "/api/v1/hosts", req, &body);
    json_decref(req);
    IT_CHECK(env, st == 202, "POST /api/v1/hosts: %d", st);
    snprintf(id, 64, "%s", it_json_str(body, "host.id"));
    json_decref(body);
    IT_CHECK(env, plat_id_kind(id) == PLAT_ID_HOST, "a host id (%s)", id);
}

/* ---- a) nothing expected: refused at once; a host started after the flood ---- */

static void test_unexpected_keys_refused_at_once(void **state)
{
    it_env_t *env = *state;
    const char *pd_cfg = platformd_config(env);
    const char *hb_cfg = it_hostbootd_config(env, IT_HOSTBOOT_NAME, NULL);
    it_proc_t *pd = it_start_platformd(env, pd_cfg);
    it_start_hostbootd(env, hb_cfg);
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_match_t hbm = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &hbm, IT_DEADLINE_MS,
                 IT_HOSTBOOT_ID " listed ready");

    /* The flood: every key refused, none waiting for bus.auth_grace_ms. */
    int64_t r0 = refused(env);
    int lines0 = it_log_count(pd, "connection refused");
    flood_t f = {0};
    flood_open(env, &f, FLOOD_N);
    wait_refused(env, r0 + FLOOD_N, NULL, "a flood with no host key expected");
    /* Logged a line a second (plus a summary), not a line per refusal. */
    wait_log(env, pd, "more refusals not logged in the last second", 5000);
    int lines = it_log_count(pd, "connection refused") - lines0;
    IT_CHECK(env, lines >= 1 && lines <= FLOOD_N / 4,
             "%d log lines for %d refusals: one a second at most", lines, FLOOD_N);
    IT_CHECK(env, it_log_count(pd, "no host key expected") >= 1, "the reason is logged");
    flood_close(&f);

    /* A host started right after: it gets in. */
    char id[64];
    post_host(env, NULL, id);
    json_t *h = it_wait_host_state(env, id, "ready", HOST_READY_MS, NULL);
    json_decref(h);

    /* Its START was answered: nothing is expected any more (the count went
     * back to zero, exactly once). */
    int64_t r1 = refused(env);
    flood_open(env, &f, 1);
    wait_refused(env, r1 + 1, NULL, "an unknown key after the host started");
    flood_close(&f);
    IT_CHECK(env, it_log_count(pd, "ended twice") == 0, "no expectation ended twice");
}

/* ---- b) a START answer pending: 16 wait, the rest refused ------------------------ */

static void register_fake_hostboot(it_env_t *env, it_client_t *hb)
{
    plat_runtime_t rt = {"c", "1"};
    Plat__PlatformMessage *m = plat_msg_hostboot_register("fake", "1", &rt, 1);
    assert_non_null(m);
    uint64_t seq = it_client_next_seq(hb);
    it_client_send(hb, m, it_client_id(hb), PLAT_PLATFORM_ID, seq, REQUEST, NULL, NULL);
    plat_envelope_free(&m);
    Plat__PlatformMessage *r = NULL;
    IT_CHECK(env, it_client_recv(hb, IT_DEADLINE_MS, &r, NULL, NULL) == 0,
             "hostboot register answered");
    IT_CHECK(env, r->header->seq_no == seq && !r->header->error, "hostboot registered");
    plat_envelope_free(&r);
}

/* The START request the fake hostboot got for `id`; its seq. */
static uint64_t recv_start(it_env_t *env, it_client_t *hb, const char *id)
{
    Plat__PlatformMessage *m = NULL;
    IT_CHECK(env, it_client_recv(hb, IT_DEADLINE_MS, &m, NULL, NULL) == 0, "START received");
    IT_CHECK(env,
             m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT &&
                 m->host_boot->body_case ==
                     PLAT__HOST_BOOT_MESSAGE__BODY_HOST_LIFE_CYCLE_REQUEST &&
                 m->host_boot->host_life_cycle_request->action ==
                     PLAT__HOST_LIFE_CYCLE_REQUEST_MESSAGE__ACTION__START &&
                 strcmp(m->host_boot->host_life_cycle_request->host->id, id) == 0,
             "a START for %s", id);
    uint64_t seq = m->header->seq_no;
    plat_envelope_free(&m);
    return seq;
}

/* Answer START `seq`: host `id` spawned, with public key `kp`. */
static void answer_start(it_env_t *env, it_client_t *hb, uint64_t seq, const char *id,
                         const plat_keypair_t *kp)
{
    Plat__PlatformMessage *m = plat_msg_host_lifecycle_response(
        id, (int32_t)getpid(), PLAT__HOST_STATE__HOST_STATE_STARTING, it_client_id(hb), 0, NULL,
        NULL);
    assert_non_null(m);
    Plat__Host *h = m->host_boot->host_life_cycle_response->host;
    h->public_key.data = malloc(PLAT_KEY_BIN_LEN);
    assert_non_null(h->public_key.data);
    h->public_key.len = PLAT_KEY_BIN_LEN;
    assert_int_equal(plat_key_to_bin(kp->public_z85, h->public_key.data), 0);
    it_client_send(hb, m, it_client_id(hb), PLAT_PLATFORM_ID, seq, REPLY, NULL, NULL);
    plat_envelope_free(&m);
    (void)env;
}

/* Control.ready from host `id` (the harness client of its key), not waited for. */
static uint64_t send_ready(it_client_t *c, const char *id)
{
    Plat__PlatformMessage *m =
        plat_msg_host_ready(id, (int32_t)getpid(), "c", "1", "highPerformance", PLAT_VERSION, 0);
    assert_non_null(m);
    m->control->ready->host->hostboot = plat_msg_strdup("hostboot-fake");
    uint64_t seq = it_client_next_seq(c);
    it_client_send(c, m, id, PLAT_PLATFORM_ID, seq, REQUEST, NULL, NULL);
    plat_envelope_free(&m);
    return seq;
}

static void expect_ack(it_env_t *env, it_client_t *c, uint64_t seq, it_client_t *hb)
{
    uint64_t deadline = it_now_ms() + IT_DEADLINE_MS;
    Plat__PlatformMessage *r = NULL;
    while (it_client_recv(c, 100, &r, NULL, NULL) != 0) {
        IT_CHECK(env, it_now_ms() < deadline, "%s: no register_ack", it_client_id(c));
        it_client_pump(hb);
    }
    IT_CHECK(env,
             r->header->kind == REPLY && r->header->seq_no == seq && !r->header->error &&
                 r->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL &&
                 r->control->body_case == PLAT__CONTROL_MESSAGE__BODY_REGISTER_ACK,
             "%s: registered", it_client_id(c));
    plat_envelope_free(&r);
}

static void test_flood_while_a_host_key_is_expected(void **state)
{
    it_env_t *env = *state;
    it_proc_t *pd = it_start_platformd(env, platformd_config(env));
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_client_t *hb = it_client_new(env, "hostboot-fake");
    register_fake_hostboot(env, hb);
    flood_t f = {0};

    /* A host key connecting before the START answer waits, then gets in. */
    char id1[64];
    post_host(env, "hostboot-fake", id1);
    uint64_t seq1 = recv_start(env, hb, id1);
    plat_keypair_t k1;
    assert_int_equal(plat_keys_new(&k1), 0);
    it_client_t *c1 = it_client_new_curve(env, id1, k1.secret_z85, it_platform_public_key(env));
    uint64_t ready1 = send_ready(c1, id1);
    /* (a paced wait for its handshake to reach the ZAP handler first) */
    for (int i = 0; i < 5; i++)
        (void)it_http_get(env, "/healthz", NULL);
    answer_start(env, hb, seq1, id1, &k1);
    expect_ack(env, c1, ready1, hb);
    json_decref(it_wait_host_state(env, id1, "ready", HOST_READY_MS, NULL));

    /* Another START pending: a flood gets 16 places, the rest is refused at
     * once. */
    char id2[64];
    post_host(env, "hostboot-fake", id2);
    uint64_t seq2 = recv_start(env, hb, id2);
    int64_t r0 = refused(env);
    flood_open(env, &f, EXPECTED_FLOOD_N);
    wait_refused(env, r0 + EXPECTED_FLOOD_N - PER_EXPECTED, hb, "a flood while a key is expected");
    for (int i = 0; i < 10; i++) { /* the 16 keep waiting (for 60 s) */
        (void)it_http_get(env, "/healthz", NULL);
        it_client_pump(hb);
    }
    IT_CHECK(env, refused(env) == r0 + EXPECTED_FLOOD_N - PER_EXPECTED,
             "exactly %d of %d refused while the queue holds %d", EXPECTED_FLOOD_N - PER_EXPECTED,
             EXPECTED_FLOOD_N, PER_EXPECTED);
    IT_CHECK(env, it_log_count(pd, "wait queue full") >= 1, "the reason is logged");

    /* The answer comes: nothing is expected any more, the 16 are refused at
     * once; the host's own key then gets in. */
    plat_keypair_t k2;
    assert_int_equal(plat_keys_new(&k2), 0);
    answer_start(env, hb, seq2, id2, &k2);
    wait_refused(env, r0 + EXPECTED_FLOOD_N, hb, "the waiting flood once the answer came");
    flood_close(&f);
    it_client_t *c2 = it_client_new_curve(env, id2, k2.secret_z85, it_platform_public_key(env));
    expect_ack(env, c2, send_ready(c2, id2), hb);
    json_decref(it_wait_host_state(env, id2, "ready", HOST_READY_MS, NULL));

    /* And an unknown key is refused at once again. */
    int64_t r1 = refused(env);
    flood_open(env, &f, 1);
    wait_refused(env, r1 + 1, hb, "an unknown key after both answers");
    flood_close(&f);
    plat_keys_wipe(&k1);
    plat_keys_wipe(&k2);
}

/* ---- c) platformd restarted under a spawned host ------------------------------- */

static void test_spawned_host_back_after_platformd_restart(void **state)
{
    it_env_t *env = *state;
    const char *pd_cfg = platformd_config(env);
    const char *hb_cfg = it_hostbootd_config(env, IT_HOSTBOOT_NAME, NULL);
    it_proc_t *pd = it_start_platformd(env, pd_cfg);
    it_start_hostbootd(env, hb_cfg);
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_match_t hbm = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &hbm, IT_DEADLINE_MS,
                 IT_HOSTBOOT_ID " listed ready");
    char id[64];
    post_host(env, NULL, id);
    json_decref(it_wait_host_state(env, id, "ready", HOST_READY_MS, NULL));

    /* The new platformd knows the host's key only from the hostboot's
     * REGISTER report; the host may reconnect first, and must not be
     * refused for good (libzmq would not retry). */
    it_kill9(pd);
    pd = it_start_platformd(env, pd_cfg);
    it_wait_healthy(env, IT_DEADLINE_MS);
    char needle[128];
    snprintf(needle, sizeof needle, "registered id=%s", id);
    wait_log(env, pd, needle, 30000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unexpected_keys_refused_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flood_while_a_host_key_is_expected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spawned_host_back_after_platformd_restart, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
