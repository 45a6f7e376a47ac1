/* Fuzz target: platformd's message handling, through the real receive
 * path. One platformd (pd_start: bus, registry, state, HTTP API, every
 * module of manager.c's table) runs in this process on its own libuv loop
 * and loopback port; two peers, DEALER sockets with the routing ids
 * hostboot-fuzz and host-...0001, register once as a real hostboot and a
 * real (dev) host would. Each input is a list of frames (fuzz_common.h)
 * sent by those peers; the loop then runs until platformd has taken every
 * frame in (bus counters), so each frame goes through the endpoint's frame
 * checks, plat_envelope_decode, the source check, reply matching, and
 * pd_router_on_message with its channel handlers and forwarding — the
 * code a hostile or broken peer reaches.
 *
 * The bus runs without CURVE (bus.curve false where the config has it) and
 * without the per-peer rate limit: authentication decides *who* a peer is,
 * which is not what this target explores; the identities used are the
 * authenticated ones. What platformd sends the peers is read and dropped,
 * except pings, answered so the peers stay registered on long runs.
 *
 * State carries over from one input to the next (as in a live platformd);
 * a crash found that way replays from the saved input alone in most cases,
 * and tests/fuzz/regressions/router/ replays every input on a fresh
 * platformd per file (the replay driver calls plat_fuzz_teardown). */
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>
#include <zmq.h>

#include "fuzz_common.h"
#include "platformd.h"
#include "plat/uvzmq.h"
#include "testports.h"

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz_router: harness failure: %s (%s:%d)\n", #cond,       \
                    __FILE__, __LINE__);                                               \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* How long to wait for platformd to take in one input's frames. Frames it
 * silently discards (none known today) only cost this wait. */
#define SETTLE_MS 2000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void plat_fuzz_teardown(void);

static struct {
    bool up;
    char dir[64];
    pd_config_t cfg;
    uv_loop_t loop;
    pd_t pd;
    void *zctx;
    void *peer[2]; /* [0] hostboot-fuzz, [1] the host */
    plat_uvzmq_t *peer_watch[2]; /* input for a peer wakes the loop too */
    int want_peer;     /* the reply awaited: peer index (-1: none) ... */
    uint64_t want_seq; /* ... and seq_no */
    bool got;          /* it arrived */
    uint64_t seq[2];
    uv_timer_t deadline;
    bool expired;
} g;

static const char *const g_ids[2] = {FUZZ_HOSTBOOT_ID, FUZZ_HOST_ID};

/* ---- the config ---------------------------------------------------------- */

/* Whether pd_config_table has the dotted key (keys other helpers add may
 * not exist in every tree this is built in). */
static bool cfg_has(const plat_cfg_field_t *t, const char *dotted)
{
    const char *dot = strchr(dotted, '.');
    size_t n = dot ? (size_t)(dot - dotted) : strlen(dotted);
    for (; t && t->key; t++)
        if (strlen(t->key) == n && strncmp(t->key, dotted, n) == 0)
            return dot ? (t->type == PLAT_CFG_OBJECT && cfg_has(t->children, dot + 1)) : true;
    return false;
}

static void cfg_set(json_t *root, const char *dotted, json_t *value)
{
    if (!cfg_has(pd_config_table, dotted)) {
        json_decref(value);
        return;
    }
    char sect[64];
    const char *dot = strchr(dotted, '.');
    CHECK(dot && (size_t)(dot - dotted) < sizeof sect);
    snprintf(sect, sizeof sect, "%.*s", (int)(dot - dotted), dotted);
    json_t *obj = json_object_get(root, sect);
    if (!obj) {
        obj = json_object();
        json_object_set_new(root, sect, obj);
    }
    json_object_set_new(obj, dot + 1, value);
}

static void load_config(void)
{
    char endpoint[64];
    int bus_port = plat_test_free_endpoint(endpoint, sizeof endpoint);
    CHECK(bus_port > 0);
    int http_port;
    do
        http_port = plat_test_free_port();
    while (http_port == bus_port);
    CHECK(http_port > 0);
    char state[128];
    snprintf(state, sizeof state, "%s/state", g.dir);
    json_t *root = json_object();
    cfg_set(root, "bus.endpoint", json_string(endpoint));
    cfg_set(root, "bus.curve", json_false());
    cfg_set(root, "bus.rate_per_sec", json_integer(0));
    cfg_set(root, "http.port", json_integer(http_port));
    cfg_set(root, "state.dir", json_string(state));
    cfg_set(root, "log.level", json_string(getenv("FUZZ_LOG_LEVEL") ? getenv("FUZZ_LOG_LEVEL")
                                                                     : "err"));
    cfg_set(root, "heartbeat.interval_ms", json_integer(600000));
    char path[128];
    snprintf(path, sizeof path, "%s/platformd.json", g.dir);
    CHECK(json_dump_file(root, path, 0) == 0);
    json_decref(root);
    plat_cfg_error_t err;
    int rc = pd_config_load(path, &g.cfg, &err);
    if (rc < 0) {
        char line[1024];
        plat_cfg_error_format(&err, line, sizeof line);
        fprintf(stderr, "fuzz_router: config: %s\n", line);
    }
    CHECK(rc == 0);
    int level = plat_log_level_from_name(g.cfg.log.level);
    plat_log_set_level(level < 0 ? PLAT_LOG_ERR : (plat_log_level_t)level);
}

/* ---- the loop ------------------------------------------------------------ */

static void on_deadline(uv_timer_t *t)
{
    (void)t;
    g.expired = true;
}

/* Frames platformd has taken in: valid ones (rx) and every drop, except
 * that a late reply counts in both. */
static uint64_t taken_in(void)
{
    const plat_bus_stats_t *st = plat_bus_stats(g.pd.bus);
    uint64_t n = st->rx;
    for (int i = 0; i < PLAT_BUS_DROP__COUNT; i++)
        if (i != PLAT_BUS_DROP_LATE_REPLY)
            n += st->dropped[i];
    return n;
}

/* Take one message platformd sent peer `p`: answer a ping, note the
 * awaited reply (g.want_peer, g.want_seq -> g.got). 1 when one was taken,
 * 0 when none was waiting (plat_uvzmq_read_cb). The peers are watched on
 * the loop: a reply reaches a peer after platformd's uv_run returned, and
 * without the watch nothing would wake the next uv_run for it but the
 * SETTLE_MS deadline. */
static int peer_take(int p)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, g.peer[p], ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return 0;
    }
    Plat__PlatformMessage *m = NULL;
    if (plat_envelope_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), 0, &m, NULL) ==
        0) {
        const Plat__Header *h = m->header;
        if (p == g.want_peer && h->seq_no == g.want_seq &&
            h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY)
            g.got = true;
        if (h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST &&
            m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL &&
            m->control->body_case == PLAT__CONTROL_MESSAGE__BODY_PING) {
            Plat__PlatformMessage *pong = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
            uint8_t *buf = NULL;
            size_t len = 0;
            if (pong && fuzz_encode(pong, g_ids[p], PLAT_PLATFORM_ID, h->seq_no,
                                    PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY, &buf,
                                    &len) == 0)
                zmq_send(g.peer[p], buf, len, ZMQ_DONTWAIT);
            free(buf);
            plat_envelope_free(&pong);
        }
    }
    plat_envelope_free(&m);
    zmq_msg_close(&msg);
    return 1;
}

static int on_peer0(void *arg)
{
    (void)arg;
    return peer_take(0);
}

static int on_peer1(void *arg)
{
    (void)arg;
    return peer_take(1);
}

/* Run the loop until cond() or SETTLE_MS. */
static bool run_until(bool (*cond)(void *), void *arg)
{
    g.expired = false;
    uv_timer_start(&g.deadline, on_deadline, SETTLE_MS, 0);
    bool ok;
    while (!(ok = cond(arg)) && !g.expired)
        uv_run(&g.loop, UV_RUN_ONCE);
    uv_timer_stop(&g.deadline);
    return ok;
}

static bool cond_reply(void *arg)
{
    (void)arg;
    return g.got;
}

static bool cond_taken(void *arg)
{
    return taken_in() >= *(uint64_t *)arg;
}

/* ---- set-up -------------------------------------------------------------- */

static void send_and_wait_reply(int p, Plat__PlatformMessage *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t seq = ++g.seq[p];
    CHECK(fuzz_encode(m, g_ids[p], PLAT_PLATFORM_ID, seq, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST,
                      &buf, &len) == 0);
    CHECK(zmq_send(g.peer[p], buf, len, 0) == (int)len);
    free(buf);
    plat_envelope_free(&m);
    g.want_peer = p;
    g.want_seq = seq;
    g.got = false;
    /* Connecting and registering may take a moment on a loaded machine. */
    for (int i = 0; i < 5 && !g.got; i++)
        run_until(cond_reply, NULL);
    CHECK(g.got);
    g.want_peer = -1;
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g.dir, sizeof g.dir, "%.40s/fuzz-router-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(g.dir) != NULL);
    load_config();
    CHECK(uv_loop_init(&g.loop) == 0);
    CHECK(pd_start(&g.pd, &g.loop, &g.cfg) == 0);
    uv_timer_init(&g.loop, &g.deadline);

    g.zctx = zmq_ctx_new();
    CHECK(g.zctx);
    for (int p = 0; p < 2; p++) {
        g.peer[p] = zmq_socket(g.zctx, ZMQ_DEALER);
        CHECK(g.peer[p]);
        int zero = 0;
        zmq_setsockopt(g.peer[p], ZMQ_LINGER, &zero, sizeof zero);
        CHECK(zmq_setsockopt(g.peer[p], ZMQ_ROUTING_ID, g_ids[p], strlen(g_ids[p])) == 0);
        CHECK(zmq_connect(g.peer[p], g.cfg.bus.endpoint) == 0);
        g.peer_watch[p] = plat_uvzmq_new(&g.loop, g.peer[p], 0, p ? on_peer1 : on_peer0, NULL);
        CHECK(g.peer_watch[p]);
    }
    plat_runtime_t rt = {.language = "c", .version = "1"};
    send_and_wait_reply(0, plat_msg_hostboot_register(FUZZ_HOSTBOOT_NAME, "fuzz", &rt, 1));
    send_and_wait_reply(1, plat_msg_host_ready(FUZZ_HOST_ID, (int32_t)getpid(), "c", "1", "dev",
                                               "fuzz", 1));
    g.up = true;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A clean stop (the replay driver calls it after each file, so every file
 * runs on a fresh platformd and ASan sees no leak). */
void plat_fuzz_teardown(void)
{
    if (!g.up)
        return;
    g.up = false;
    for (int p = 0; p < 2; p++) {
        plat_uvzmq_close(&g.peer_watch[p]);
        zmq_close(g.peer[p]);
    }
    zmq_ctx_term(g.zctx);
    uv_close((uv_handle_t *)&g.deadline, NULL);
    pd_stop(&g.pd);
    while (uv_run(&g.loop, UV_RUN_DEFAULT) != 0) {
    }
    CHECK(uv_loop_close(&g.loop) == 0);
    pd_registry_destroy(&g.pd.reg); /* as platformd's main does after the loop */
    pd_config_free(&g.cfg);
    nftw(g.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    memset(&g, 0, sizeof g);
}

/* ---- one input ----------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g.up)
        setup();
    uint64_t want = taken_in();
    size_t off = 0;
    for (int r = 0; r < FUZZ_ROUTER_MAX_RECORDS && size - off >= 3; r++) {
        uint8_t flags = data[off];
        size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
        off += 3;
        if (len > size - off)
            len = size - off;
        void *s = g.peer[(flags & FUZZ_ROUTER_FROM_HOST) ? 1 : 0];
        if (flags & FUZZ_ROUTER_TWO_FRAMES)
            CHECK(zmq_send(s, "", 0, ZMQ_SNDMORE) == 0);
        CHECK(zmq_send(s, data + off, len, 0) == (int)len);
        off += len;
        want++;
    }
    run_until(cond_taken, &want);
    /* Whatever the input, platformd is still serving. */
    CHECK(!g.pd.stopping && g.pd.bus);
    return 0;
}
