/* Routing and the bus's defences, played by test clients that connect to a
 * real platformd as DEALERs with routing ids host-<uuid>:
 *   - registration (Control.ready → register_ack);
 *   - a forged header.source is dropped and counted, never acted on;
 *   - a request to an unknown destination gets -EHOSTUNREACH naming it;
 *   - a request from A to B is forwarded, B's reply reaches A, bytes intact;
 *   - garbage, wrong frame counts and invalid envelopes are dropped and
 *     counted, and platformd stays healthy;
 *   - an unregistered sender's requests get -ENOTCONN and go nowhere.
 *
 * "Nothing came back" is checked without waiting a fixed time: the platform
 * handles one connection's messages in order, so after the message under
 * test a probe request is sent, and the first message to arrive must be the
 * probe's reply. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "plat/plat.h"

#define HB_INTERVAL_MS 1000
#define HB_MISS 5
#define REPLY_WITHIN_MS 5000

static const Plat__MessageKind EVENT = PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT;
static const Plat__MessageKind REQUEST = PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST;
static const Plat__MessageKind REPLY = PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY;

static int setup(void **state)
{
    it_env_t *env = it_new();
    it_set_strict_logs(env, true);
    *state = env;
    const char *cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, NULL);
    it_start_platformd(env, cfg);
    it_wait_healthy(env, IT_DEADLINE_MS);
    return 0;
}

static int teardown(void **state)
{
    it_env_t *env = *state;
    it_destroy(&env);
    return 0;
}

/* strdup that fails the test on OOM (fields of messages we build). */
static char *dup_str(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

/* A Plugin.event (a body the platform only forwards between hosts). */
static Plat__PlatformMessage *plugin_event(const char *path)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN);
    assert_non_null(m);
    Plat__PluginEvent *ev = malloc(sizeof *ev);
    assert_non_null(ev);
    plat__plugin_event__init(ev);
    ev->instance = dup_str("00000000-0000-4000-8000-000000000001");
    ev->method = dup_str("GET");
    ev->path = dup_str(path);
    m->plugin->body_case = PLAT__PLUGIN_MESSAGE__BODY_EVENT;
    m->plugin->event = ev;
    return m;
}

static Plat__PlatformMessage *plugin_response(uint32_t status)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN);
    assert_non_null(m);
    Plat__PluginEventResponse *r = malloc(sizeof *r);
    assert_non_null(r);
    plat__plugin_event_response__init(r);
    r->status = status;
    m->plugin->body_case = PLAT__PLUGIN_MESSAGE__BODY_RESPONSE;
    m->plugin->response = r;
    return m;
}

/* Send a Plugin.event from c (as `src`) to `dst`; returns its seq_no. */
static uint64_t send_event(it_client_t *c, const char *src, const char *dst,
                           Plat__MessageKind kind, uint8_t **raw, size_t *raw_len)
{
    Plat__PlatformMessage *m = plugin_event("/itest");
    uint64_t seq = it_client_next_seq(c);
    it_client_send(c, m, src, dst, seq, kind, raw, raw_len);
    plat_envelope_free(&m);
    return seq;
}

/* Expect the next message at c to be an error REPLY from the platform to
 * request `seq` with `code`; returns its detail (malloc'd). */
static char *expect_error_reply(it_env_t *env, it_client_t *c, uint64_t seq, int code)
{
    Plat__PlatformMessage *r = NULL;
    IT_CHECK(env, it_client_recv(c, REPLY_WITHIN_MS, &r, NULL, NULL) == 0,
             "%s: no reply to request seq %llu", it_client_id(c), (unsigned long long)seq);
    const Plat__Header *h = r->header;
    IT_CHECK(env, h->kind == REPLY, "kind %d, want REPLY", (int)h->kind);
    IT_CHECK(env, h->seq_no == seq, "reply seq %llu, want %llu (a reply to something else?)",
             (unsigned long long)h->seq_no, (unsigned long long)seq);
    IT_CHECK(env, strcmp(h->source->id, PLAT_PLATFORM_ID) == 0, "reply from %s", h->source->id);
    IT_CHECK(env, strcmp(h->destination->id, it_client_id(c)) == 0, "reply to %s",
             h->destination->id);
    IT_CHECK(env, h->error != NULL, "reply carries header.error");
    IT_CHECK(env, h->error->code == code, "error code %d (%s), want %d", h->error->code,
             h->error->message, code);
    IT_CHECK(env, h->error->message && h->error->message[0], "error message non-empty");
    char *detail = dup_str(h->error->detail ? h->error->detail : "");
    plat_envelope_free(&r);
    return detail;
}

/* Probe: a request to an unknown destination must be the very next thing
 * answered — so nothing was sent to c in answer to what it sent before. */
static void expect_nothing_before_probe(it_env_t *env, it_client_t *c)
{
    char dst[64];
    it_new_host_id(dst);
    uint64_t seq = send_event(c, it_client_id(c), dst, REQUEST, NULL, NULL);
    free(expect_error_reply(env, c, seq, -EHOSTUNREACH));
}

typedef struct {
    const char *path;
    int64_t want;
} counter_pred_t;

static bool pred_counter(json_t *body, void *arg)
{
    const counter_pred_t *p = arg;
    json_t *v = it_json_path(body, p->path);
    return json_is_integer(v) && json_integer_value(v) >= p->want;
}

/* Wait until the status counter reaches `want`, then check it is exactly
 * `want` (one message, one count). */
static void wait_counter(it_env_t *env, const char *path, int64_t want)
{
    counter_pred_t p = {path, want};
    char what[128];
    snprintf(what, sizeof what, "%s >= %lld", path, (long long)want);
    it_wait_json(env, "/api/v1/status", pred_counter, &p, IT_DEADLINE_MS, what);
    int64_t now = it_status_int(env, path);
    IT_CHECK(env, now == want, "%s = %lld, want exactly %lld", path, (long long)now,
             (long long)want);
}

static it_client_t *registered_client(it_env_t *env)
{
    char id[64];
    it_new_host_id(id);
    it_client_t *c = it_client_new(env, id);
    it_client_register(c, NULL, NULL);
    return c;
}

static bool host_listed(it_env_t *env, const char *id)
{
    json_t *body = it_get_json(env, "/api/v1/hosts");
    bool found = it_json_find(json_object_get(body, "hosts"), "id", id) != NULL;
    json_decref(body);
    return found;
}

static void test_register_ack(void **state)
{
    it_env_t *env = *state;
    char id[64];
    it_new_host_id(id);
    it_client_t *a = it_client_new(env, id);
    uint32_t interval = 0, miss = 0;
    const char *boot = it_client_register(a, &interval, &miss);

    json_t *st = it_get_json(env, "/api/v1/status");
    json_t *boot_id = json_object_get(st, "boot_id");
    IT_CHECK(env, json_is_string(boot_id) && strcmp(json_string_value(boot_id), boot) == 0,
             "register_ack carries the platform's boot id");
    json_decref(st);
    IT_CHECK(env, interval == HB_INTERVAL_MS, "ack heartbeat_interval_ms %u", interval);
    IT_CHECK(env, miss == HB_MISS, "ack heartbeat_miss %u", miss);

    json_t *hosts = it_get_json(env, "/api/v1/hosts");
    json_t *h = it_json_find(json_object_get(hosts, "hosts"), "id", id);
    IT_CHECK(env, h != NULL, "registered client listed as a host");
    json_t *state_v = json_object_get(h, "state");
    IT_CHECK(env, json_is_string(state_v) && strcmp(json_string_value(state_v), "ready") == 0,
             "client host ready");
    IT_CHECK(env, json_integer_value(json_object_get(h, "pid")) == getpid(), "pid from ready");
    IT_CHECK(env, json_is_true(json_object_get(h, "dev")), "dev from ready");
    json_decref(hosts);
    IT_CHECK(env, it_status_int(env, "counts.hosts") == 1, "one host counted");
}

static void test_forged_source_dropped(void **state)
{
    it_env_t *env = *state;
    it_client_t *a = registered_client(env);
    it_client_t *b = registered_client(env);
    int64_t spoofed = it_status_int(env, "bus.dropped.spoofed");
    IT_CHECK(env, spoofed == 0, "no spoofed message yet");

    /* (1) A registers a host it is not, as a REQUEST: accepted, it would
     * be answered and listed. */
    char forged[64];
    it_new_host_id(forged);
    Plat__PlatformMessage *m =
        plat_msg_host_ready(forged, (int32_t)getpid(), "c", "1", "dev", PLAT_VERSION, 1);
    assert_non_null(m);
    it_client_send(a, m, forged, PLAT_PLATFORM_ID, it_client_next_seq(a), REQUEST, NULL, NULL);
    plat_envelope_free(&m);
    wait_counter(env, "bus.dropped.spoofed", spoofed + 1);
    expect_nothing_before_probe(env, a);
    IT_CHECK(env, !host_listed(env, forged), "forged host %s must not be registered", forged);

    /* (2) A speaks as B, to B: must not reach B. */
    send_event(a, it_client_id(b), it_client_id(b), REQUEST, NULL, NULL);
    wait_counter(env, "bus.dropped.spoofed", spoofed + 2);
    /* What B receives first is A's genuine message sent afterwards. */
    uint8_t *sent = NULL, *got = NULL;
    size_t sent_len = 0, got_len = 0;
    uint64_t seq = send_event(a, it_client_id(a), it_client_id(b), EVENT, &sent, &sent_len);
    Plat__PlatformMessage *r = NULL;
    IT_CHECK(env, it_client_recv(b, REPLY_WITHIN_MS, &r, &got, &got_len) == 0,
             "B received A's genuine event");
    IT_CHECK(env, strcmp(r->header->source->id, it_client_id(a)) == 0 && r->header->seq_no == seq,
             "B's first message is A's genuine one (source %s seq %llu), not the forged one",
             r->header->source->id, (unsigned long long)r->header->seq_no);
    plat_envelope_free(&r);
    free(sent);
    free(got);
    expect_nothing_before_probe(env, a);
    IT_CHECK(env, it_status_int(env, "bus.dropped.spoofed") == spoofed + 2,
             "exactly one count per forged message");
}

static void test_unknown_destination(void **state)
{
    it_env_t *env = *state;
    it_client_t *a = registered_client(env);
    int64_t unknown = it_status_int(env, "bus.unknown_destination");

    char dst[64];
    it_new_host_id(dst);
    uint64_t seq = send_event(a, it_client_id(a), dst, REQUEST, NULL, NULL);
    char *detail = expect_error_reply(env, a, seq, -EHOSTUNREACH);
    IT_CHECK(env, strcmp(detail, dst) == 0, "detail \"%s\" must name the destination %s", detail,
             dst);
    free(detail);
    wait_counter(env, "bus.unknown_destination", unknown + 1);

    /* A hostboot id nobody registered is just as unknown. */
    seq = send_event(a, it_client_id(a), "hostboot-nobody", REQUEST, NULL, NULL);
    detail = expect_error_reply(env, a, seq, -EHOSTUNREACH);
    IT_CHECK(env, strcmp(detail, "hostboot-nobody") == 0, "detail \"%s\"", detail);
    free(detail);

    /* An EVENT to nowhere gets no reply (nothing to answer), only a drop. */
    it_new_host_id(dst);
    send_event(a, it_client_id(a), dst, EVENT, NULL, NULL);
    expect_nothing_before_probe(env, a);
}

static void test_forward_between_endpoints(void **state)
{
    it_env_t *env = *state;
    it_client_t *a = registered_client(env);
    it_client_t *b = registered_client(env);
    int64_t forwarded = it_status_int(env, "bus.forwarded");

    /* A → B request: forwarded unchanged. */
    uint8_t *sent = NULL, *got = NULL;
    size_t sent_len = 0, got_len = 0;
    uint64_t seq = send_event(a, it_client_id(a), it_client_id(b), REQUEST, &sent, &sent_len);
    Plat__PlatformMessage *req = NULL;
    IT_CHECK(env, it_client_recv(b, REPLY_WITHIN_MS, &req, &got, &got_len) == 0,
             "B received A's request");
    IT_CHECK(env, got_len == sent_len && memcmp(got, sent, sent_len) == 0,
             "forwarded bytes differ (%zu sent, %zu received)", sent_len, got_len);
    IT_CHECK(env, strcmp(req->header->source->id, it_client_id(a)) == 0, "source A");
    IT_CHECK(env, strcmp(req->header->destination->id, it_client_id(b)) == 0, "destination B");
    IT_CHECK(env, req->header->kind == REQUEST && req->header->seq_no == seq, "kind and seq kept");
    IT_CHECK(env, req->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN &&
                      req->plugin->body_case == PLAT__PLUGIN_MESSAGE__BODY_EVENT &&
                      strcmp(req->plugin->event->path, "/itest") == 0,
             "body intact");
    plat_envelope_free(&req);
    free(sent);
    free(got);

    /* B answers; A receives the reply, again unchanged. */
    Plat__PlatformMessage *resp = plugin_response(204);
    it_client_send(b, resp, it_client_id(b), it_client_id(a), seq, REPLY, &sent, &sent_len);
    plat_envelope_free(&resp);
    Plat__PlatformMessage *r = NULL;
    IT_CHECK(env, it_client_recv(a, REPLY_WITHIN_MS, &r, &got, &got_len) == 0,
             "A received B's reply");
    IT_CHECK(env, got_len == sent_len && memcmp(got, sent, sent_len) == 0,
             "forwarded reply bytes differ");
    IT_CHECK(env, r->header->kind == REPLY && r->header->seq_no == seq &&
                      strcmp(r->header->source->id, it_client_id(b)) == 0 && !r->header->error,
             "reply from B to A's seq");
    IT_CHECK(env, r->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN &&
                      r->plugin->body_case == PLAT__PLUGIN_MESSAGE__BODY_RESPONSE &&
                      r->plugin->response->status == 204,
             "response body intact");
    plat_envelope_free(&r);
    free(sent);
    free(got);
    wait_counter(env, "bus.forwarded", forwarded + 2);

    /* And the other way round, as an EVENT. */
    send_event(b, it_client_id(b), it_client_id(a), EVENT, NULL, NULL);
    IT_CHECK(env, it_client_recv(a, REPLY_WITHIN_MS, &r, NULL, NULL) == 0, "A received B's event");
    IT_CHECK(env, r->header->kind == EVENT && strcmp(r->header->source->id, it_client_id(b)) == 0,
             "event from B");
    plat_envelope_free(&r);
    wait_counter(env, "bus.forwarded", forwarded + 3);
}

static void test_garbage_dropped_platform_healthy(void **state)
{
    it_env_t *env = *state;
    it_client_t *a = registered_client(env);

    /* Not a protobuf at all: field 1 with wire type 7 does not exist. */
    static const uint8_t garbage[] = {0x0f, 'g', 'a', 'r', 'b', 'a', 'g', 'e', 0xff, 0xff};
    int64_t undecodable = it_status_int(env, "bus.dropped.undecodable");
    const void *frames1[] = {garbage};
    size_t lens1[] = {sizeof garbage};
    it_client_send_frames(a, frames1, lens1, 1);
    wait_counter(env, "bus.dropped.undecodable", undecodable + 1);

    /* A valid envelope cut in half: its header's length prefix overruns. */
    Plat__PlatformMessage *m = plugin_event("/truncated/with/a/long/enough/path");
    uint8_t *whole = NULL;
    size_t whole_len = 0;
    char dst[64];
    it_new_host_id(dst);
    it_client_encode(a, m, it_client_id(a), dst, it_client_next_seq(a), REQUEST, &whole,
                     &whole_len);
    plat_envelope_free(&m);
    const void *frames2[] = {whole};
    size_t lens2[] = {whole_len / 2};
    it_client_send_frames(a, frames2, lens2, 1);
    wait_counter(env, "bus.dropped.undecodable", undecodable + 2);

    /* Two frames where one is allowed. */
    int64_t frames = it_status_int(env, "bus.dropped.frames");
    const void *frames3[] = {whole, whole};
    size_t lens3[] = {whole_len, whole_len};
    it_client_send_frames(a, frames3, lens3, 2);
    wait_counter(env, "bus.dropped.frames", frames + 1);
    free(whole);

    /* Decodes, but is no valid envelope: no header. */
    int64_t invalid = it_status_int(env, "bus.dropped.invalid");
    Plat__PlatformMessage bare = PLAT__PLATFORM_MESSAGE__INIT;
    Plat__ControlMessage ctl = PLAT__CONTROL_MESSAGE__INIT;
    Plat__Pong pong = PLAT__PONG__INIT;
    ctl.body_case = PLAT__CONTROL_MESSAGE__BODY_PONG;
    ctl.pong = &pong;
    bare.channel_case = PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL;
    bare.control = &ctl;
    size_t bare_len = plat__platform_message__get_packed_size(&bare);
    uint8_t *bare_buf = malloc(bare_len + 1);
    assert_non_null(bare_buf);
    plat__platform_message__pack(&bare, bare_buf);
    const void *frames4[] = {bare_buf};
    size_t lens4[] = {bare_len};
    it_client_send_frames(a, frames4, lens4, 1);
    wait_counter(env, "bus.dropped.invalid", invalid + 1);
    free(bare_buf);

    /* An empty frame. */
    const void *frames5[] = {""};
    size_t lens5[] = {0};
    int64_t all_drops = it_status_int(env, "bus.dropped.undecodable") +
                        it_status_int(env, "bus.dropped.invalid") +
                        it_status_int(env, "bus.dropped.frames");
    it_client_send_frames(a, frames5, lens5, 1);
    expect_nothing_before_probe(env, a);
    IT_CHECK(env,
             it_status_int(env, "bus.dropped.undecodable") + it_status_int(env, "bus.dropped.invalid") +
                     it_status_int(env, "bus.dropped.frames") == all_drops + 1,
             "an empty frame is dropped and counted once");

    /* Still healthy, still routing, still registered. */
    it_wait_healthy(env, IT_DEADLINE_MS);
    expect_nothing_before_probe(env, a);
    IT_CHECK(env, host_listed(env, it_client_id(a)), "A still registered");
}

static void test_unregistered_sender_gets_enotconn(void **state)
{
    it_env_t *env = *state;
    it_client_t *b = registered_client(env);
    char id[64];
    it_new_host_id(id);
    it_client_t *c = it_client_new(env, id);

    /* To the platform. */
    uint64_t seq = send_event(c, id, PLAT_PLATFORM_ID, REQUEST, NULL, NULL);
    free(expect_error_reply(env, c, seq, -ENOTCONN));

    /* To a registered peer: not forwarded either. */
    int64_t forwarded = it_status_int(env, "bus.forwarded");
    seq = send_event(c, id, it_client_id(b), REQUEST, NULL, NULL);
    free(expect_error_reply(env, c, seq, -ENOTCONN));
    IT_CHECK(env, it_status_int(env, "bus.forwarded") == forwarded, "nothing forwarded");
    /* B's next message is one B can account for: a genuine probe's reply. */
    expect_nothing_before_probe(env, b);
    IT_CHECK(env, !host_listed(env, id), "unregistered client not listed");

    /* Once registered, the same client is served. */
    it_client_register(c, NULL, NULL);
    uint8_t *sent = NULL;
    size_t sent_len = 0;
    seq = send_event(c, id, it_client_id(b), EVENT, &sent, &sent_len);
    free(sent);
    Plat__PlatformMessage *r = NULL;
    IT_CHECK(env, it_client_recv(b, REPLY_WITHIN_MS, &r, NULL, NULL) == 0,
             "B received C's event after C registered");
    IT_CHECK(env, strcmp(r->header->source->id, id) == 0 && r->header->seq_no == seq,
             "from C, seq %llu", (unsigned long long)seq);
    plat_envelope_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_source_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_destination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_between_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_dropped_platform_healthy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregistered_sender_gets_enotconn, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
