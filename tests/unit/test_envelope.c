/* plat/envelope.h: encode/decode round trips, every validation rule, and
 * hostile input (truncations, random and mutated bytes, oversized). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "plat/envelope.h"
#include "plat/id.h"
#include "plat/msg.h"

#define UUID "0f8fad5b-d9cb-469f-a165-70867728950e"
#define HOST_ID "host-" UUID
#define BOOT "7d444840-9dc0-41bb-a2b6-6c3e0c2f9a7f"

/* Fresh ids may be protobuf-c's static empty string: free only malloc'd ones. */
static void set_str(char **field, const char *v)
{
    if (*field != protobuf_c_empty_string)
        free(*field);
    *field = plat_msg_strdup(v);
    assert_non_null(*field);
}

static void fill_header(Plat__PlatformMessage *m, const char *src, const char *dst, uint64_t seq,
                        Plat__MessageKind kind)
{
    set_str(&m->header->source->id, src);
    set_str(&m->header->destination->id, dst);
    set_str(&m->header->boot_id, BOOT);
    m->header->seq_no = seq;
    m->header->kind = kind;
    m->header->sent_at_ms = 1764065472345ULL;
    m->header->timeout_ms = 2000;
}

static Plat__PlatformMessage *valid_msg(void)
{
    Plat__PlatformMessage *m = plat_msg_ping(BOOT);
    assert_non_null(m);
    fill_header(m, PLAT_PLATFORM_ID, HOST_ID, 42, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
    return m;
}

static void encode_ok(const Plat__PlatformMessage *m, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    assert_int_equal(plat_envelope_encode(m, 0, buf, len), 0);
    assert_non_null(*buf);
    assert_true(*len > 0);
}

static void assert_invalid(const Plat__PlatformMessage *m)
{
    const char *why = NULL;
    assert_int_equal(plat_envelope_validate(m, &why), -EPROTO);
    assert_non_null(why);
    assert_true(why[0] != '\0');
    assert_int_equal(plat_envelope_validate(m, NULL), -EPROTO); /* why may be NULL */
    uint8_t *buf = (uint8_t *)0x1;
    size_t len = 0;
    assert_int_equal(plat_envelope_encode(m, 0, &buf, &len), -EPROTO);
}

static void test_round_trip(void **state)
{
    Plat__PlatformMessage *m = valid_msg();
    plat_msg_set_error(m, -EINVAL, "bad", "field.x");
    const char *why = "untouched";
    assert_int_equal(plat_envelope_validate(m, &why), 0);

    uint8_t *buf;
    size_t len;
    encode_ok(m, &buf, &len);
    assert_int_equal(len, plat__platform_message__get_packed_size(m));

    Plat__PlatformMessage *d = NULL;
    assert_int_equal(plat_envelope_decode(buf, len, 0, &d, NULL), 0);
    assert_non_null(d);
    assert_string_equal(d->header->source->id, PLAT_PLATFORM_ID);
    assert_string_equal(d->header->destination->id, HOST_ID);
    assert_string_equal(d->header->boot_id, BOOT);
    assert_int_equal(d->header->seq_no, 42);
    assert_int_equal(d->header->kind, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
    assert_int_equal(d->header->sent_at_ms, 1764065472345ULL);
    assert_int_equal(d->header->timeout_ms, 2000);
    assert_non_null(d->header->error);
    assert_int_equal(d->header->error->code, -EINVAL);
    assert_string_equal(d->header->error->message, "bad");
    assert_string_equal(d->header->error->detail, "field.x");
    assert_int_equal(d->channel_case, PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL);
    assert_int_equal(d->control->body_case, PLAT__CONTROL_MESSAGE__BODY_PING);
    assert_string_equal(d->control->ping->boot_id, BOOT);

    /* Re-encoding the decoded message gives the same bytes. */
    uint8_t *buf2;
    size_t len2;
    encode_ok(d, &buf2, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(buf2, buf, len);

    free(buf);
    free(buf2);
    plat_envelope_free(&d);
    assert_null(d);
    plat_envelope_free(&m);
}

static void test_round_trip_every_builder(void **state)
{
    const plat_runtime_t rts[] = {{"c", "1"}};
    Plat__PlatformMessage *ms[] = {
        plat_msg_ping(BOOT),
        plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY),
        plat_msg_register_ack(BOOT, 100, 3),
        plat_msg_host_ready(HOST_ID, 77, "c", "1", "dev", "0.1.0", 1),
        plat_msg_hostboot_register("itest", "0.1.0", rts, 1),
        plat_msg_hostboot_heartbeat("itest", 2, 99),
    };
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        assert_non_null(ms[i]);
        fill_header(ms[i], "hostboot-itest", PLAT_PLATFORM_ID, i + 1,
                    PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
        uint8_t *buf;
        size_t len;
        encode_ok(ms[i], &buf, &len);
        Plat__PlatformMessage *d = NULL;
        assert_int_equal(plat_envelope_decode(buf, len, 0, &d, NULL), 0);
        assert_int_equal(d->channel_case, ms[i]->channel_case);
        assert_int_equal(d->header->seq_no, i + 1);
        uint8_t *buf2;
        size_t len2;
        encode_ok(d, &buf2, &len2);
        assert_int_equal(len2, len);
        assert_memory_equal(buf2, buf, len);
        free(buf);
        free(buf2);
        plat_envelope_free(&d);
        plat_envelope_free(&ms[i]);
    }
}

static void test_validate_header(void **state)
{
    /* no header */
    Plat__PlatformMessage *m = valid_msg();
    plat__header__free_unpacked(m->header, NULL);
    m->header = NULL;
    assert_invalid(m);
    plat_envelope_free(&m);

    /* no source endpoint / no destination endpoint */
    m = valid_msg();
    plat__endpoint__free_unpacked(m->header->source, NULL);
    m->header->source = NULL;
    assert_invalid(m);
    plat_envelope_free(&m);
    m = valid_msg();
    plat__endpoint__free_unpacked(m->header->destination, NULL);
    m->header->destination = NULL;
    assert_invalid(m);
    plat_envelope_free(&m);

    /* bad ids */
    static const char *bad[] = {
        "",        "bogus", "hostboot-", "hostboot-A", "host-0F8FAD5B-D9CB-469F-A165-70867728950E",
        "Platform"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = valid_msg();
        set_str(&m->header->source->id, bad[i]);
        assert_invalid(m);
        plat_envelope_free(&m);
        m = valid_msg();
        set_str(&m->header->destination->id, bad[i]);
        assert_invalid(m);
        plat_envelope_free(&m);
    }

    /* every good id kind is accepted on both sides */
    static const char *good[] = {PLAT_PLATFORM_ID, "hostboot-a.b_c-1", HOST_ID};
    for (size_t i = 0; i < 3; i++) {
        m = valid_msg();
        set_str(&m->header->source->id, good[i]);
        set_str(&m->header->destination->id, good[(i + 1) % 3]);
        assert_int_equal(plat_envelope_validate(m, NULL), 0);
        plat_envelope_free(&m);
    }
}

static void test_validate_channel(void **state)
{
    /* no channel at all, as a REQUEST / EVENT / REPLY without error */
    static const Plat__MessageKind kinds[] = {PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT,
                                              PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST,
                                              PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY};
    for (size_t i = 0; i < 3; i++) {
        Plat__PlatformMessage *m = plat_msg_new_empty();
        fill_header(m, PLAT_PLATFORM_ID, HOST_ID, 1, kinds[i]);
        assert_invalid(m);
        plat_envelope_free(&m);
    }

    /* An error REPLY without a channel is allowed... */
    Plat__PlatformMessage *m = plat_msg_new_empty();
    fill_header(m, PLAT_PLATFORM_ID, HOST_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY);
    assert_int_equal(plat_msg_set_error(m, -EHOSTUNREACH, "unknown destination", HOST_ID), 0);
    assert_int_equal(plat_envelope_validate(m, NULL), 0);
    uint8_t *buf;
    size_t len;
    encode_ok(m, &buf, &len);
    Plat__PlatformMessage *d = NULL;
    assert_int_equal(plat_envelope_decode(buf, len, 0, &d, NULL), 0);
    assert_int_equal(d->header->error->code, -EHOSTUNREACH);
    assert_int_equal(d->channel_case, PLAT__PLATFORM_MESSAGE__CHANNEL__NOT_SET);
    plat_envelope_free(&d);
    free(buf);
    /* ...but not as a REQUEST or EVENT. */
    m->header->kind = PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST;
    assert_invalid(m);
    m->header->kind = PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT;
    assert_invalid(m);
    plat_envelope_free(&m);

    /* channel set, body NOT_SET: every channel */
    static const Plat__PlatformMessage__ChannelCase chans[] = {
        PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL,   PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN,
        PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE,  PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY,
        PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT,
    };
    for (size_t i = 0; i < sizeof chans / sizeof chans[0]; i++) {
        m = plat_msg_new(chans[i]);
        fill_header(m, PLAT_PLATFORM_ID, HOST_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
        assert_invalid(m);
        /* an error REPLY still needs its channel's body when it has a channel */
        m->header->kind = PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY;
        plat_msg_set_error(m, -EINVAL, "x", NULL);
        assert_invalid(m);
        plat_envelope_free(&m);
    }

    /* channel case set with a NULL channel message: refused, no crash */
    m = plat_msg_new_empty();
    fill_header(m, PLAT_PLATFORM_ID, HOST_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    m->channel_case = PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL;
    m->control = NULL;
    const char *why = NULL;
    assert_int_equal(plat_envelope_validate(m, &why), -EPROTO);
    assert_non_null(why);
    m->channel_case = PLAT__PLATFORM_MESSAGE__CHANNEL__NOT_SET;
    plat_envelope_free(&m);
}

/* Decoding bytes that decode but fail validation is -EPROTO, *out NULL. */
static void test_decode_invalid_is_eproto(void **state)
{
    Plat__PlatformMessage *m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    fill_header(m, "bogus-id", PLAT_PLATFORM_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT);
    size_t len = plat__platform_message__get_packed_size(m);
    uint8_t *buf = malloc(len);
    plat__platform_message__pack(m, buf);
    Plat__PlatformMessage *d = (Plat__PlatformMessage *)0x1;
    const char *why = NULL;
    assert_int_equal(plat_envelope_decode(buf, len, 0, &d, &why), -EPROTO);
    assert_null(d);
    assert_non_null(why);
    free(buf);
    plat_envelope_free(&m);

    /* header-less */
    m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    plat__header__free_unpacked(m->header, NULL);
    m->header = NULL;
    len = plat__platform_message__get_packed_size(m);
    buf = malloc(len);
    plat__platform_message__pack(m, buf);
    d = (Plat__PlatformMessage *)0x1;
    assert_int_equal(plat_envelope_decode(buf, len, 0, &d, NULL), -EPROTO);
    assert_null(d);
    free(buf);
    plat_envelope_free(&m);

    /* zero bytes: protobuf's all-default message, never a valid envelope
     * (either "empty" -EBADMSG or "no header" -EPROTO is a fair answer) */
    d = (Plat__PlatformMessage *)0x1;
    uint8_t none = 0;
    int rc = plat_envelope_decode(&none, 0, 0, &d, NULL);
    assert_true(rc == -EBADMSG || rc == -EPROTO);
    assert_null(d);
}

static void test_decode_truncations(void **state)
{
    Plat__PlatformMessage *m = plat_msg_host_ready(HOST_ID, 77, "c", "1", "dev", "0.1.0", 1);
    fill_header(m, HOST_ID, PLAT_PLATFORM_ID, 3, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
    plat_msg_set_error(m, -EINVAL, "some message", "some detail");
    uint8_t *buf;
    size_t len;
    encode_ok(m, &buf, &len);
    for (size_t i = 0; i < len; i++) {
        /* exact-size heap copy so ASan sees any over-read */
        uint8_t *cut = malloc(i ? i : 1);
        memcpy(cut, buf, i);
        Plat__PlatformMessage *d = (Plat__PlatformMessage *)0x1;
        const char *why = NULL;
        int rc = plat_envelope_decode(cut, i, 0, &d, &why);
        if (rc != -EBADMSG && rc != -EPROTO)
            fail_msg("truncation to %zu of %zu bytes: rc %d", i, len, rc);
        assert_null(d);
        assert_non_null(why);
        free(cut);
    }
    free(buf);
    plat_envelope_free(&m);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void decode_must_not_crash(const uint8_t *b, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, b, n);
    Plat__PlatformMessage *d = (Plat__PlatformMessage *)0x1;
    int rc = plat_envelope_decode(copy, n, 0, &d, NULL);
    if (rc == 0) {
        assert_non_null(d);
        assert_int_equal(plat_envelope_validate(d, NULL), 0);
        plat_envelope_free(&d);
    } else {
        if (rc != -EBADMSG && rc != -EPROTO)
            fail_msg("decode of %zu hostile bytes: rc %d", n, rc);
        assert_null(d);
    }
    free(copy);
}

static void test_decode_random(void **state)
{
    uint8_t b[512];
    for (int i = 0; i < 10000; i++) {
        size_t n = (size_t)(rng() % sizeof b);
        for (size_t j = 0; j < n; j++)
            b[j] = (uint8_t)rng();
        decode_must_not_crash(b, n);
    }
}

/* Valid encodings with a few bytes changed: these get deep into the decoder. */
static void test_decode_mutated(void **state)
{
    Plat__PlatformMessage *m = plat_msg_host_ready(HOST_ID, 77, "c", "1", "dev", "0.1.0", 1);
    fill_header(m, HOST_ID, PLAT_PLATFORM_ID, 3, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
    uint8_t *buf;
    size_t len;
    encode_ok(m, &buf, &len);
    uint8_t *b = malloc(len);
    for (int i = 0; i < 10000; i++) {
        memcpy(b, buf, len);
        int flips = 1 + (int)(rng() % 4);
        for (int k = 0; k < flips; k++)
            b[rng() % len] = (uint8_t)rng();
        decode_must_not_crash(b, len - (size_t)(rng() % 3 == 0 ? rng() % len : 0));
    }
    free(b);
    free(buf);
    plat_envelope_free(&m);
}

static void test_size_limits(void **state)
{
    Plat__PlatformMessage *m = valid_msg();
    uint8_t *buf;
    size_t len;
    encode_ok(m, &buf, &len);

    Plat__PlatformMessage *d = (Plat__PlatformMessage *)0x1;
    const char *why = NULL;
    /* len > max_size */
    assert_int_equal(plat_envelope_decode(buf, len, len - 1, &d, &why), -EMSGSIZE);
    assert_null(d);
    assert_non_null(why);
    /* len == max_size is fine */
    assert_int_equal(plat_envelope_decode(buf, len, len, &d, NULL), 0);
    plat_envelope_free(&d);

    /* encode: packed size > max_size */
    uint8_t *out = NULL;
    size_t olen = 0;
    assert_int_equal(plat_envelope_encode(m, len - 1, &out, &olen), -EMSGSIZE);
    assert_int_equal(plat_envelope_encode(m, 1, &out, &olen), -EMSGSIZE);
    assert_int_equal(plat_envelope_encode(m, len, &out, &olen), 0);
    assert_int_equal(olen, len);
    assert_memory_equal(out, buf, len);
    free(out);
    free(buf);
    plat_envelope_free(&m);

    /* max_size 0 means the 4 MiB default, for decode... */
    size_t big = PLAT_MAX_MSG_SIZE_DEFAULT + 1;
    uint8_t *huge = calloc(1, big);
    assert_non_null(huge);
    d = (Plat__PlatformMessage *)0x1;
    assert_int_equal(plat_envelope_decode(huge, big, 0, &d, NULL), -EMSGSIZE);
    assert_null(d);
    free(huge);

    /* ...and for encode: a plugin event with a 4 MiB body */
    m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN);
    fill_header(m, PLAT_PLATFORM_ID, HOST_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
    Plat__PluginEvent *ev = malloc(sizeof *ev);
    plat__plugin_event__init(ev);
    ev->instance = plat_msg_strdup(UUID);
    ev->method = plat_msg_strdup("GET");
    ev->path = plat_msg_strdup("/");
    ev->body.len = PLAT_MAX_MSG_SIZE_DEFAULT;
    ev->body.data = calloc(1, ev->body.len);
    m->plugin->body_case = PLAT__PLUGIN_MESSAGE__BODY_EVENT;
    m->plugin->event = ev;
    out = NULL;
    assert_int_equal(plat_envelope_encode(m, 0, &out, &olen), -EMSGSIZE);
    /* with a larger explicit limit it packs and decodes */
    assert_int_equal(plat_envelope_encode(m, 2 * PLAT_MAX_MSG_SIZE_DEFAULT, &out, &olen), 0);
    assert_true(olen > PLAT_MAX_MSG_SIZE_DEFAULT);
    assert_int_equal(plat_envelope_decode(out, olen, 0, &d, NULL), -EMSGSIZE);
    assert_int_equal(plat_envelope_decode(out, olen, 2 * PLAT_MAX_MSG_SIZE_DEFAULT, &d, NULL), 0);
    assert_int_equal(d->plugin->event->body.len, PLAT_MAX_MSG_SIZE_DEFAULT);
    plat_envelope_free(&d);
    free(out);
    plat_envelope_free(&m);
}

static void test_channel_name(void **state)
{
    assert_string_equal(plat_channel_name(PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL), "control");
    assert_string_equal(plat_channel_name(PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN), "plugin");
    assert_string_equal(plat_channel_name(PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE), "resource");
    assert_string_equal(plat_channel_name(PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY), "ability");
    assert_string_equal(plat_channel_name(PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT), "host_boot");
    assert_string_equal(plat_channel_name(PLAT__PLATFORM_MESSAGE__CHANNEL__NOT_SET), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_every_builder),
        cmocka_unit_test(test_validate_header),
        cmocka_unit_test(test_validate_channel),
        cmocka_unit_test(test_decode_invalid_is_eproto),
        cmocka_unit_test(test_decode_truncations),
        cmocka_unit_test(test_decode_random),
        cmocka_unit_test(test_decode_mutated),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_channel_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
