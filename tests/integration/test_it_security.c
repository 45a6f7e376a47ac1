/* The authenticated bus (docs/security.md), attacked by test clients that
 * connect to a real platformd:
 *   - no CURVE, a wrong server key, an unknown key: refused at the
 *     handshake and counted; hostbootd's key claiming a host id: its
 *     messages dropped as spoofed;
 *   - a host forging another host's Source: dropped and counted, the victim
 *     unaffected; a host addressing another host: refused -EACCES;
 *   - a spawned host's secret key is in neither its /proc cmdline nor its
 *     environment (it came down a pipe), and the platform admitted its key;
 *   - a frame over the size limit: platformd survives and serves;
 *   - 100,000 random and mutated frames from an authenticated client:
 *     platformd answers /healthz and a victim's heartbeats throughout;
 *   - a flood of requests from one host is rate limited (-EBUSY) while
 *     another host's heartbeats keep flowing.
 * "Nothing came back" is checked with a probe request sent after the
 * message under test (one connection's messages are handled in order). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "plat/keys.h"
#include "plat/plat.h"

#define HB_INTERVAL_MS 200
#define HB_MISS 5
#define REPLY_WITHIN_MS 5000
#define FUZZ_FRAMES 100000
#define FLOOD_REQUESTS 20000
#define FLOOD_MIN_MS 1500

static const Plat__MessageKind EVENT = PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT;
static const Plat__MessageKind REQUEST = PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST;
static const Plat__MessageKind REPLY = PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY;

static it_proc_t *g_platformd; /* the platformd of the current test */

/* platformd with the harness config, bus keys of `bus_extra` (taken)
 * merged in. */
static it_env_t *start_platformd(json_t *bus_extra)
{
    it_env_t *env = it_new();
    json_t *extra = NULL;
    if (bus_extra) {
        extra = json_pack("{s:O}", "bus", bus_extra);
        assert_non_null(extra);
    }
    const char *cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, extra);
    json_decref(extra);
    json_decref(bus_extra);
    g_platformd = it_start_platformd(env, cfg);
    it_wait_healthy(env, IT_DEADLINE_MS);
    return env;
}

static int teardown(void **state)
{
    it_env_t *env = *state;
    it_destroy(&env);
    return 0;
}

/* A host client registered with the platform. */
static it_client_t *registered_client(it_env_t *env)
{
    char id[64];
    it_new_host_id(id);
    it_client_t *c = it_client_new(env, id);
    it_client_register(c, NULL, NULL);
    return c;
}

/* Send a Control.ping REQUEST to the platform (answered -EOPNOTSUPP: the
 * platform pings, it is not pinged); returns its seq. */
static uint64_t send_probe(it_client_t *c, const char *src)
{
    Plat__PlatformMessage *m = plat_msg_ping("00000000-0000-4000-8000-000000000000");
    assert_non_null(m);
    uint64_t seq = it_client_next_seq(c);
    it_client_send(c, m, src, PLAT_PLATFORM_ID, seq, REQUEST, NULL, NULL);
    plat_envelope_free(&m);
    return seq;
}

/* The next message c receives answers request `seq` (returns its error
 * code, 0 for none). */
static int expect_reply_to(it_env_t *env, it_client_t *c, uint64_t seq)
{
    Plat__PlatformMessage *r = NULL;
    IT_CHECK(env, it_client_recv(c, REPLY_WITHIN_MS, &r, NULL, NULL) == 0,
             "%s: no reply to seq %llu", it_client_id(c), (unsigned long long)seq);
    IT_CHECK(env, r->header->kind == REPLY && r->header->seq_no == seq,
             "%s: got kind %d seq %llu, want the reply to %llu", it_client_id(c),
             (int)r->header->kind, (unsigned long long)r->header->seq_no,
             (unsigned long long)seq);
    int code = r->header->error ? r->header->error->code : 0;
    plat_envelope_free(&r);
    return code;
}

/* c got nothing for what it sent before: its probe's reply comes first. */
static void expect_nothing_before_probe(it_env_t *env, it_client_t *c)
{
    uint64_t seq = send_probe(c, it_client_id(c));
    (void)expect_reply_to(env, c, seq);
}

static it_proc_t *platformd_of(it_env_t *env);

/* Poll platformd's log until `needle` appears at least `n` times. */
static void wait_log(it_env_t *env, const char *needle, int n)
{
    it_proc_t *pd = platformd_of(env);
    uint64_t deadline = it_now_ms() + IT_DEADLINE_MS;
    while (it_log_count(pd, needle) < n) {
        IT_CHECK(env, it_now_ms() < deadline, "platformd never logged \"%s\" %d times", needle,
                 n);
        IT_CHECK(env, it_alive(pd), "platformd exited");
        (void)it_http_get(env, "/healthz", NULL); /* a paced wait: one round trip */
    }
}

static it_proc_t *platformd_of(it_env_t *env)
{
    (void)env;
    return g_platformd;
}

static void wait_counter(it_env_t *env, const char *dotted, int64_t want)
{
    uint64_t deadline = it_now_ms() + IT_DEADLINE_MS;
    while (it_status_int(env, dotted) < want)
        IT_CHECK(env, it_now_ms() < deadline, "%s never reached %lld", dotted, (long long)want);
}

static it_env_t *setup_env(void **state, json_t *bus_extra)
{
    it_env_t *env = start_platformd(bus_extra);
    *state = env;
    return env;
}

/* ---- who gets in --------------------------------------------------------------- */

static void test_unauthenticated_clients_refused(void **state)
{
    /* An unknown key is refused once its grace time (waiting for a host
     * key) is over: keep that short here. */
    it_env_t *env = setup_env(state, json_pack("{s:i}", "auth_grace_ms", 300));
    it_client_t *good = registered_client(env);

    /* No CURVE at all: the handshake fails, nothing reaches the platform. */
    char id[64];
    it_new_host_id(id);
    it_client_t *plain = it_client_new_curve(env, id, NULL, NULL);
    Plat__PlatformMessage *m = plat_msg_host_ready(id, (int32_t)getpid(), "c", "1", "dev",
                                                   PLAT_VERSION, 1);
    assert_non_null(m);
    it_client_send(plain, m, id, PLAT_PLATFORM_ID, it_client_next_seq(plain), REQUEST, NULL,
                   NULL);
    plat_envelope_free(&m);
    wait_log(env, "bus handshake failed", 1);

    /* A key nobody authorized: ZAP says 400. */
    plat_keypair_t stranger;
    assert_int_equal(plat_keys_new(&stranger), 0);
    char id2[64];
    it_new_host_id(id2);
    it_client_t *unknown =
        it_client_new_curve(env, id2, stranger.secret_z85, it_platform_public_key(env));
    m = plat_msg_host_ready(id2, (int32_t)getpid(), "c", "1", "dev", PLAT_VERSION, 1);
    it_client_send(unknown, m, id2, PLAT_PLATFORM_ID, it_client_next_seq(unknown), REQUEST,
                   NULL, NULL);
    plat_envelope_free(&m);
    wait_log(env, "connection refused: unknown key", 1);

    /* An authorized key but the wrong server key: the handshake fails. */
    plat_keypair_t fake_server;
    assert_int_equal(plat_keys_new(&fake_server), 0);
    char id3[64];
    it_new_host_id(id3);
    int failed_before = it_log_count(g_platformd, "bus handshake failed");
    it_client_t *wrong_server =
        it_client_new_curve(env, id3, it_key_for(env, id3, true), fake_server.public_z85);
    m = plat_msg_host_ready(id3, (int32_t)getpid(), "c", "1", "dev", PLAT_VERSION, 1);
    it_client_send(wrong_server, m, id3, PLAT_PLATFORM_ID, it_client_next_seq(wrong_server),
                   REQUEST, NULL, NULL);
    plat_envelope_free(&m);
    wait_log(env, "bus handshake failed", failed_before + 1);

    /* None of them was registered or answered. */
    json_t *hosts = it_get_json(env, "/api/v1/hosts");
    json_t *list = json_object_get(hosts, "hosts");
    IT_CHECK(env, !it_json_find(list, "id", id) && !it_json_find(list, "id", id2) &&
                      !it_json_find(list, "id", id3),
             "no refused client is listed");
    json_decref(hosts);
    Plat__PlatformMessage *r = NULL;
    IT_CHECK(env, it_client_recv(plain, 0, &r, NULL, NULL) == -ETIMEDOUT, "plain: no answer");
    IT_CHECK(env, it_client_recv(unknown, 0, &r, NULL, NULL) == -ETIMEDOUT, "unknown: no answer");
    IT_CHECK(env, it_client_recv(wrong_server, 0, &r, NULL, NULL) == -ETIMEDOUT,
             "wrong server key: no answer");

    /* hostbootd's key claiming a host id: admitted as the hostboot, so
     * every message it signs as the host is spoofed. */
    it_hostbootd_config(env, IT_HOSTBOOT_NAME, NULL); /* authorizes hostboot-itest's key */
    char id4[64];
    it_new_host_id(id4);
    it_client_t *claim = it_client_new_curve(env, id4, it_key_for(env, IT_HOSTBOOT_ID, true),
                                             it_platform_public_key(env));
    int64_t spoofed = it_status_int(env, "bus.dropped.spoofed");
    m = plat_msg_host_ready(id4, (int32_t)getpid(), "c", "1", "dev", PLAT_VERSION, 1);
    it_client_send(claim, m, id4, PLAT_PLATFORM_ID, it_client_next_seq(claim), REQUEST, NULL,
                   NULL);
    plat_envelope_free(&m);
    wait_counter(env, "bus.dropped.spoofed", spoofed + 1);
    IT_CHECK(env, it_client_recv(claim, 0, &r, NULL, NULL) == -ETIMEDOUT, "claim: no answer");
    hosts = it_get_json(env, "/api/v1/hosts");
    IT_CHECK(env, !it_json_find(json_object_get(hosts, "hosts"), "id", id4),
             "the claimed host id is not registered");
    json_decref(hosts);

    /* The legitimate client was never disturbed. */
    expect_nothing_before_probe(env, good);
    plat_keys_wipe(&stranger);
    plat_keys_wipe(&fake_server);
}

static void test_forged_source_and_host_to_host(void **state)
{
    it_env_t *env = setup_env(state, json_pack("{s:b}", "allow_peer_to_peer", 0));
    it_client_t *a = registered_client(env);
    it_client_t *b = registered_client(env);
    int64_t spoofed = it_status_int(env, "bus.dropped.spoofed");

    /* A signs a request as B: dropped, counted, never answered. */
    send_probe(a, it_client_id(b));
    wait_counter(env, "bus.dropped.spoofed", spoofed + 1);
    expect_nothing_before_probe(env, a);
    /* B is unaffected: it gets nothing, and its own requests work. */
    expect_nothing_before_probe(env, b);
    json_t *host = it_wait_host_state(env, it_client_id(b), "ready", IT_DEADLINE_MS, NULL);
    IT_CHECK(env, json_integer_value(json_object_get(host, "pid")) == getpid(),
             "B's registration untouched");
    json_decref(host);

    /* A addresses B directly: refused -EACCES, B receives nothing. */
    Plat__PlatformMessage *m = plat_msg_ping("00000000-0000-4000-8000-000000000000");
    uint64_t seq = it_client_next_seq(a);
    it_client_send(a, m, it_client_id(a), it_client_id(b), seq, REQUEST, NULL, NULL);
    plat_envelope_free(&m);
    IT_CHECK(env, expect_reply_to(env, a, seq) == -EACCES, "host to host refused -EACCES");
    expect_nothing_before_probe(env, b);
}

/* ROUTER_HANDOVER hands a routing id to whoever announces it last. An
 * admitted key (here hostbootd's) connecting with a registered host's bare
 * id, or its id with a guessed token, must get none of the host's traffic:
 * the platform sends to the route the host's own key announced. With
 * routing id = id (before routes had tokens) the attacker took the host's
 * pings and the host was declared lost. */
static void test_route_takeover_refused(void **state)
{
    it_env_t *env = setup_env(state, NULL);
    it_client_t *victim = registered_client(env);
    const char *vid = it_client_id(victim);
    const char *hb_id = "hostboot-" IT_HOSTBOOT_NAME;
    const char *hb_secret = it_key_for(env, hb_id, true);
    char guess[160];
    snprintf(guess, sizeof guess, "%s/%032d", vid, 0);
    it_client_t *bare = it_client_new_route(env, hb_id, vid, hb_secret,
                                            it_platform_public_key(env));
    it_client_t *guessed = it_client_new_route(env, hb_id, guess, hb_secret,
                                               it_platform_public_key(env));
    /* both connected: what they send reaches the bus and is dropped */
    int64_t spoofed = it_status_int(env, "bus.dropped.spoofed");
    send_probe(bare, hb_id);
    send_probe(guessed, hb_id);
    wait_counter(env, "bus.dropped.spoofed", spoofed + 2);

    /* several heartbeat rounds: every ping reaches the victim, none the
     * attackers, and the victim stays ready */
    unsigned pings0 = it_client_pings(victim);
    uint64_t deadline = it_now_ms() + IT_DEADLINE_MS;
    while (it_client_pings(victim) < pings0 + 3 * HB_MISS) {
        IT_CHECK(env, it_now_ms() < deadline, "the victim got %u pings, want %u",
                 it_client_pings(victim) - pings0, 3 * HB_MISS);
        Plat__PlatformMessage *m = NULL;
        if (it_client_recv(victim, HB_INTERVAL_MS, &m, NULL, NULL) == 0)
            plat_envelope_free(&m);
    }
    IT_CHECK(env, it_client_drain(bare) == 0, "the bare-id attacker received the victim's traffic");
    IT_CHECK(env, it_client_drain(guessed) == 0, "the guessing attacker received traffic");
    json_t *host = it_wait_host_state(env, vid, "ready", IT_DEADLINE_MS, NULL);
    json_decref(host);
    expect_nothing_before_probe(env, victim);
}

/* ---- per-host keys ---------------------------------------------------------------- */

/* True when the `len` bytes at `s` are the secret key whose public key is
 * `public_z85` (any 40-character run is tried as a secret). */
static bool is_secret_of(const char *s, size_t len, const char *public_z85)
{
    for (size_t off = 0; off + PLAT_KEY_Z85_LEN <= len; off++) {
        plat_keypair_t kp;
        memset(&kp, 0, sizeof kp);
        memcpy(kp.secret_z85, s + off, PLAT_KEY_Z85_LEN);
        if (plat_keys_derive_public(&kp) == 0 && strcmp(kp.public_z85, public_z85) == 0)
            return true;
    }
    return false;
}

/* No NUL-separated string of /proc/<pid>/<what> holds the secret key of
 * `public_z85`. */
static void check_no_key_in(it_env_t *env, int pid, const char *what, const char *public_z85)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    IT_CHECK(env, fd >= 0, "open %s", path);
    static char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    IT_CHECK(env, n > 0, "read %s", path);
    buf[n] = 0;
    for (ssize_t i = 0; i < n;) {
        const char *s = buf + i;
        size_t len = strlen(s);
        IT_CHECK(env, !is_secret_of(s, len, public_z85), "%s holds the host's secret key: %s",
                 path, s);
        i += (ssize_t)len + 1;
    }
}

static void test_host_key_never_in_argv_or_env(void **state)
{
    it_env_t *env = setup_env(state, NULL);
    const char *hb = it_hostbootd_config(env, IT_HOSTBOOT_NAME, NULL);
    it_start_hostbootd(env, hb);
    it_match_t m = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &m, IT_DEADLINE_MS,
                 "hostboot ready");

    json_t *req = json_pack("{s:s, s:s, s:s}", "language", "c", "version", "1", "mode",
                            "highPerformance");
    json_t *body = NULL;
    int st = it_http_post(env, "/api/v1/hosts", req, &body);
    json_decref(req);
    IT_CHECK(env, st == 202, "host start accepted (%d)", st);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(it_json_path(body, "host.id")));
    json_decref(body);
    /* Ready = it connected with its own key, admitted as exactly its id. */
    json_t *host = it_wait_host_state(env, id, "ready", IT_DEADLINE_MS, NULL);
    int pid = (int)json_integer_value(json_object_get(host, "pid"));
    json_decref(host);
    IT_CHECK(env, pid > 0, "host pid");
    char admitted[128];
    snprintf(admitted, sizeof admitted, "host key admitted id=%s", id);
    wait_log(env, admitted, 1);
    /* Its public key, as the platform admitted it. */
    char *log = it_read_log(g_platformd);
    const char *at = strstr(log, admitted);
    const char *k = at ? strstr(at, " key=") : NULL;
    char host_pub[PLAT_KEY_Z85_LEN + 1] = "";
    if (k)
        snprintf(host_pub, sizeof host_pub, "%.40s", k + 5);
    free(log);
    IT_CHECK(env, plat_key_z85_valid(host_pub), "the admitted key is in the log");

    check_no_key_in(env, pid, "cmdline", host_pub);
    check_no_key_in(env, pid, "environ", host_pub);
    /* Sanity of the check itself: a known secret is recognised. */
    char *mine = strdup(it_key_for(env, "hostboot-" IT_HOSTBOOT_NAME, true));
    plat_keypair_t hbkp;
    memset(&hbkp, 0, sizeof hbkp);
    snprintf(hbkp.secret_z85, sizeof hbkp.secret_z85, "%s", mine);
    assert_int_equal(plat_keys_derive_public(&hbkp), 0);
    IT_CHECK(env, is_secret_of(mine, strlen(mine), hbkp.public_z85), "the check finds a secret");
    free(mine);
    plat_keys_wipe(&hbkp);
    /* The key pipe was read and closed: only stdio and the host's own. */
    char fdpath[64], target[256];
    snprintf(fdpath, sizeof fdpath, "/proc/%d/fd/3", pid);
    ssize_t tl = readlink(fdpath, target, sizeof target - 1);
    if (tl > 0) {
        target[tl] = 0;
        IT_CHECK(env, strncmp(target, "pipe:", 5) != 0, "fd 3 of the host is still a pipe: %s",
                 target);
    }

    /* Deleted: its key admits nobody any more. */
    char path[128];
    snprintf(path, sizeof path, "/api/v1/hosts/%s", id);
    st = it_http_delete(env, path, NULL);
    IT_CHECK(env, st == 202 || st == 200, "delete accepted (%d)", st);
    json_decref(it_wait_host_state(env, id, "exited", IT_DEADLINE_MS, NULL));
}

/* ---- limits ----------------------------------------------------------------------- */

static void test_oversized_frame(void **state)
{
    it_env_t *env = setup_env(state, NULL);
    it_client_t *victim = registered_client(env);
    it_client_t *big = registered_client(env);
    size_t len = 2u * 1024u * 1024u; /* the harness's limit is 1 MiB */
    uint8_t *buf = calloc(1, len);
    assert_non_null(buf);
    const void *frames[1] = {buf};
    size_t lens[1] = {len};
    it_client_send_frames(big, frames, lens, 1);
    free(buf);
    /* platformd survives and serves everyone else. */
    it_wait_healthy(env, IT_DEADLINE_MS);
    expect_nothing_before_probe(env, victim);
    IT_CHECK(env, it_alive(g_platformd), "platformd alive");
}

static uint32_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 11);
}

static void test_fuzzed_frames(void **state)
{
    /* No rate limit here: every frame reaches the decoder. */
    it_env_t *env = setup_env(state, json_pack("{s:i}", "rate_per_sec", 0));
    it_client_t *victim = registered_client(env);
    it_client_t *fuzz = registered_client(env);
    unsigned pings0 = it_client_pings(victim);

    /* A valid message to mutate. */
    Plat__PlatformMessage *m = plat_msg_host_ready(it_client_id(fuzz), (int32_t)getpid(), "c",
                                                   "1", "dev", PLAT_VERSION, 1);
    uint8_t *valid = NULL;
    size_t vlen = 0;
    it_client_encode(fuzz, m, it_client_id(fuzz), PLAT_PLATFORM_ID, 1, EVENT, &valid, &vlen);
    plat_envelope_free(&m);

    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    uint8_t frame[512];
    uint64_t t0 = it_now_ms(), last_check = t0;
    int healthz_ok = 0;
    for (int i = 0; i < FUZZ_FRAMES; i++) {
        size_t n;
        if (i % 2 == 0) { /* random bytes, random length */
            n = rnd(&seed) % sizeof frame;
            for (size_t j = 0; j < n; j++)
                frame[j] = (uint8_t)rnd(&seed);
        } else { /* the valid message with 1-4 bytes flipped, maybe cut */
            n = vlen < sizeof frame ? vlen : sizeof frame;
            memcpy(frame, valid, n);
            for (int k = 1 + (int)(rnd(&seed) % 4); k > 0; k--)
                frame[rnd(&seed) % n] ^= (uint8_t)(1 + rnd(&seed) % 255);
            if (rnd(&seed) % 4 == 0)
                n = rnd(&seed) % n;
        }
        const void *frames[1] = {frame};
        size_t lens[1] = {n};
        it_client_send_frames(fuzz, frames, lens, 1);
        if (i % 1000 == 999) {
            it_client_drain(fuzz);  /* answers to the frames that decoded */
            it_client_pump(victim); /* its heartbeats */
            uint64_t now = it_now_ms();
            if (now - last_check >= 250) {
                IT_CHECK(env, it_http_get(env, "/healthz", NULL) == 200,
                         "/healthz answers during the fuzzing (frame %d)", i);
                healthz_ok++;
                last_check = now;
            }
        }
    }
    free(valid);
    uint64_t spent = it_now_ms() - t0;
    print_message("%d frames in %llu ms, /healthz checked %d times\n", FUZZ_FRAMES,
                  (unsigned long long)spent, healthz_ok);
    /* The platform caught up and kept the victim alive throughout. */
    expect_nothing_before_probe(env, victim);
    json_t *host = it_wait_host_state(env, it_client_id(victim), "ready", IT_DEADLINE_MS, NULL);
    IT_CHECK(env, !json_is_true(json_object_get(host, "lost")), "victim never lost");
    json_decref(host);
    IT_CHECK(env, it_status_int(env, "bus.dropped.undecodable") > 0, "garbage counted");
    /* Heartbeats kept coming (at least one per two intervals of the run). */
    unsigned want = (unsigned)(spent / (2 * HB_INTERVAL_MS));
    uint64_t deadline = it_now_ms() + IT_DEADLINE_MS;
    while (it_client_pings(victim) - pings0 < want && it_now_ms() < deadline)
        expect_nothing_before_probe(env, victim);
    IT_CHECK(env, it_client_pings(victim) - pings0 >= want, "victim pinged %u times, want %u",
             it_client_pings(victim) - pings0, want);
    it_client_drain(fuzz);
}

static void test_flood_is_rate_limited(void **state)
{
    it_env_t *env = setup_env(state, json_pack("{s:i, s:i}", "rate_per_sec", 500, "rate_burst",
                                               500));
    it_client_t *victim = registered_client(env);
    it_client_t *flood = registered_client(env);
    unsigned pings0 = it_client_pings(victim);

    uint64_t t0 = it_now_ms();
    int busy = 0, answered = 0;
    /* At least FLOOD_REQUESTS, and for at least FLOOD_MIN_MS so that the
     * victim is due several heartbeats meanwhile. */
    int sent = 0;
    for (int i = 0; i < FLOOD_REQUESTS || it_now_ms() - t0 < FLOOD_MIN_MS; i++, sent++) {
        send_probe(flood, it_client_id(flood));
        if (i % 500 == 499) {
            Plat__PlatformMessage *r = NULL;
            while (it_client_recv(flood, 0, &r, NULL, NULL) == 0) {
                answered++;
                if (r->header->error && r->header->error->code == -EBUSY)
                    busy++;
                plat_envelope_free(&r);
            }
            it_client_pump(victim);
        }
    }
    uint64_t spent = it_now_ms() - t0;
    /* Let the rest arrive: drain until quiet. */
    Plat__PlatformMessage *r = NULL;
    while (it_client_recv(flood, 500, &r, NULL, NULL) == 0) {
        answered++;
        if (r->header->error && r->header->error->code == -EBUSY)
            busy++;
        plat_envelope_free(&r);
    }
    print_message("%d requests in %llu ms: %d answered, %d of them -EBUSY\n", sent,
                  (unsigned long long)spent, answered, busy);
    IT_CHECK(env, busy > 0, "the flood was answered -EBUSY");
    IT_CHECK(env, answered < sent / 2, "most of the flood was dropped unanswered");
    /* The victim's heartbeats kept flowing: at least one per two
     * intervals of the flood. */
    expect_nothing_before_probe(env, victim);
    unsigned want = (unsigned)(spent / (2 * HB_INTERVAL_MS));
    IT_CHECK(env, it_client_pings(victim) - pings0 >= want,
             "the victim was pinged %u times during the flood, want %u",
             it_client_pings(victim) - pings0, want);
    json_t *host = it_wait_host_state(env, it_client_id(victim), "ready", IT_DEADLINE_MS, NULL);
    IT_CHECK(env, !json_is_true(json_object_get(host, "lost")), "victim never lost");
    json_decref(host);
}

static int setup_none(void **state)
{
    *state = NULL;
    return 0;
}

#define SEC_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_none, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SEC_TEST(test_unauthenticated_clients_refused),
        SEC_TEST(test_forged_source_and_host_to_host),
        SEC_TEST(test_route_takeover_refused),
        SEC_TEST(test_host_key_never_in_argv_or_env),
        SEC_TEST(test_oversized_frame),
        SEC_TEST(test_fuzzed_frames),
        SEC_TEST(test_flood_is_rate_limited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
