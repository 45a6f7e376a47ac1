/* plat/msg.h: every builder fills exactly its fields, leaves the header
 * allocated with empty ids, and frees cleanly (ASan/LSan prove "cleanly"). */
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

/* "allocated, ids empty": the header and both endpoints exist. */
static void assert_fresh_header(const Plat__PlatformMessage *m)
{
    assert_non_null(m);
    assert_non_null(m->header);
    assert_non_null(m->header->source);
    assert_non_null(m->header->destination);
    assert_non_null(m->header->source->id);
    assert_non_null(m->header->destination->id);
    assert_string_equal(m->header->source->id, "");
    assert_string_equal(m->header->destination->id, "");
    assert_null(m->header->error);
    assert_int_equal(m->header->seq_no, 0);
}

/* A NULL string field or "" both read as empty on the wire. */
static void assert_empty_str(const char *s)
{
    if (s)
        assert_string_equal(s, "");
}

/* Fill header ids the way the bus would, then check the codec accepts it. */
/* The empty ids may be protobuf-c's static protobuf_c_empty_string (as
 * the generated init leaves them), so only a malloc'd string is freed. */
static void set_str(char **field, const char *v)
{
    if (*field != protobuf_c_empty_string)
        free(*field);
    *field = plat_msg_strdup(v);
    assert_non_null(*field);
}

static void set_ids(Plat__PlatformMessage *m, const char *src, const char *dst)
{
    set_str(&m->header->source->id, src);
    set_str(&m->header->destination->id, dst);
}

static void assert_valid_after_ids(Plat__PlatformMessage *m)
{
    set_ids(m, HOST_ID, PLAT_PLATFORM_ID);
    const char *why = NULL;
    int rc = plat_envelope_validate(m, &why);
    if (rc != 0)
        fail_msg("built message invalid: %s", why ? why : "?");
}

static void test_new_each_channel(void **state)
{
    static const Plat__PlatformMessage__ChannelCase chans[] = {
        PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL,   PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN,
        PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE,  PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY,
        PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT,
    };
    for (size_t i = 0; i < sizeof chans / sizeof chans[0]; i++) {
        Plat__PlatformMessage *m = plat_msg_new(chans[i]);
        assert_fresh_header(m);
        assert_int_equal(m->channel_case, chans[i]);
        switch (chans[i]) {
        case PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL:
            assert_non_null(m->control);
            assert_int_equal(m->control->body_case, PLAT__CONTROL_MESSAGE__BODY__NOT_SET);
            break;
        case PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN:
            assert_non_null(m->plugin);
            assert_int_equal(m->plugin->body_case, PLAT__PLUGIN_MESSAGE__BODY__NOT_SET);
            break;
        case PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE:
            assert_non_null(m->resource);
            assert_int_equal(m->resource->body_case, PLAT__RESOURCE_MESSAGE__BODY__NOT_SET);
            break;
        case PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY:
            assert_non_null(m->ability);
            assert_int_equal(m->ability->body_case, PLAT__ABILITY_MESSAGE__BODY__NOT_SET);
            break;
        case PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT:
            assert_non_null(m->host_boot);
            assert_int_equal(m->host_boot->body_case, PLAT__HOST_BOOT_MESSAGE__BODY__NOT_SET);
            break;
        default:
            fail();
        }
        /* body unset: not a valid envelope yet */
        set_ids(m, HOST_ID, PLAT_PLATFORM_ID);
        assert_int_equal(plat_envelope_validate(m, NULL), -EPROTO);
        plat_envelope_free(&m);
        assert_null(m);
    }
}

static void test_new_empty(void **state)
{
    Plat__PlatformMessage *m = plat_msg_new_empty();
    assert_fresh_header(m);
    assert_int_equal(m->channel_case, PLAT__PLATFORM_MESSAGE__CHANNEL__NOT_SET);
    plat_envelope_free(&m);
    assert_null(m);
}

static void test_ping(void **state)
{
    Plat__PlatformMessage *m = plat_msg_ping(UUID);
    assert_fresh_header(m);
    assert_int_equal(m->channel_case, PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL);
    assert_int_equal(m->control->body_case, PLAT__CONTROL_MESSAGE__BODY_PING);
    assert_non_null(m->control->ping);
    assert_string_equal(m->control->ping->boot_id, UUID);
    assert_valid_after_ids(m);
    plat_envelope_free(&m);
}

static void test_pong(void **state)
{
    Plat__PlatformMessage *m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_BUSY);
    assert_fresh_header(m);
    assert_int_equal(m->control->body_case, PLAT__CONTROL_MESSAGE__BODY_PONG);
    assert_non_null(m->control->pong);
    assert_int_equal(m->control->pong->state, PLAT__HOST_STATE__HOST_STATE_BUSY);
    assert_valid_after_ids(m);
    plat_envelope_free(&m);
}

static void test_register_ack(void **state)
{
    Plat__PlatformMessage *m = plat_msg_register_ack(UUID, 1500, 4);
    assert_fresh_header(m);
    assert_int_equal(m->control->body_case, PLAT__CONTROL_MESSAGE__BODY_REGISTER_ACK);
    Plat__RegisterAck *a = m->control->register_ack;
    assert_non_null(a);
    assert_string_equal(a->boot_id, UUID);
    assert_int_equal(a->heartbeat_interval_ms, 1500);
    assert_int_equal(a->heartbeat_miss, 4);
    assert_valid_after_ids(m);
    plat_envelope_free(&m);
}

static void test_host_ready(void **state)
{
    Plat__PlatformMessage *m =
        plat_msg_host_ready(HOST_ID, 4242, "python", "3", "powerSave", "0.1.0", 1);
    assert_fresh_header(m);
    assert_int_equal(m->control->body_case, PLAT__CONTROL_MESSAGE__BODY_READY);
    Plat__HostReady *r = m->control->ready;
    assert_non_null(r);
    assert_non_null(r->host);
    assert_string_equal(r->host->id, HOST_ID);
    assert_int_equal(r->host->pid, 4242);
    assert_non_null(r->host->descriptor);
    assert_string_equal(r->host->descriptor->language, "python");
    assert_string_equal(r->host->descriptor->version, "3");
    assert_string_equal(r->host->descriptor->mode, "powerSave");
    assert_string_equal(r->version, "0.1.0");
    assert_true(r->dev);
    assert_valid_after_ids(m);
    plat_envelope_free(&m);

    /* NULL language/version/mode are allowed and read as empty. */
    m = plat_msg_host_ready(HOST_ID, 1, NULL, NULL, NULL, "0.1.0", 0);
    assert_non_null(m);
    r = m->control->ready;
    assert_non_null(r->host);
    assert_string_equal(r->host->id, HOST_ID);
    assert_false(r->dev);
    if (r->host->descriptor) {
        assert_empty_str(r->host->descriptor->language);
        assert_empty_str(r->host->descriptor->version);
        assert_empty_str(r->host->descriptor->mode);
    }
    assert_valid_after_ids(m);
    /* and it survives a pack/unpack */
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(plat_envelope_encode(m, 0, &buf, &len), 0);
    Plat__PlatformMessage *d = NULL;
    assert_int_equal(plat_envelope_decode(buf, len, 0, &d, NULL), 0);
    assert_string_equal(d->control->ready->host->id, HOST_ID);
    free(buf);
    plat_envelope_free(&d);
    plat_envelope_free(&m);
}

static void test_hostboot_register(void **state)
{
    const plat_runtime_t rts[] = {{"c", "1"}, {"python", "3.11"}};
    Plat__PlatformMessage *m = plat_msg_hostboot_register("itest", "0.1.0", rts, 2);
    assert_fresh_header(m);
    assert_int_equal(m->channel_case, PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT);
    assert_int_equal(m->host_boot->body_case, PLAT__HOST_BOOT_MESSAGE__BODY_REPORT);
    Plat__ReportMessage *r = m->host_boot->report;
    assert_non_null(r);
    assert_int_equal(r->kind, PLAT__REPORT_MESSAGE__KIND__REGISTER);
    assert_string_equal(r->name, "itest");
    assert_string_equal(r->version, "0.1.0");
    assert_int_equal(r->n_runtimes, 2);
    assert_string_equal(r->runtimes[0]->language, "c");
    assert_string_equal(r->runtimes[0]->version, "1");
    assert_string_equal(r->runtimes[1]->language, "python");
    assert_string_equal(r->runtimes[1]->version, "3.11");
    assert_int_equal(r->n_hosts, 0);
    assert_valid_after_ids(m);
    plat_envelope_free(&m);

    m = plat_msg_hostboot_register("itest", "0.1.0", NULL, 0);
    assert_non_null(m);
    assert_int_equal(m->host_boot->report->n_runtimes, 0);
    assert_valid_after_ids(m);
    plat_envelope_free(&m);
}

static void test_hostboot_heartbeat(void **state)
{
    Plat__PlatformMessage *m = plat_msg_hostboot_heartbeat("itest", 3, 123456789012ULL);
    assert_fresh_header(m);
    assert_int_equal(m->host_boot->body_case, PLAT__HOST_BOOT_MESSAGE__BODY_HEARTBEAT);
    Plat__HeartbeatMessage *h = m->host_boot->heartbeat;
    assert_non_null(h);
    assert_string_equal(h->name, "itest");
    assert_int_equal(h->host_count, 3);
    assert_int_equal(h->uptime_ms, 123456789012ULL);
    assert_valid_after_ids(m);
    plat_envelope_free(&m);
}

static void test_set_error(void **state)
{
    Plat__PlatformMessage *m = plat_msg_new_empty();
    assert_non_null(m);
    assert_int_equal(plat_msg_set_error(m, -EHOSTUNREACH, "unknown destination", HOST_ID), 0);
    assert_non_null(m->header->error);
    assert_int_equal(m->header->error->code, -EHOSTUNREACH);
    assert_string_equal(m->header->error->message, "unknown destination");
    assert_string_equal(m->header->error->detail, HOST_ID);

    /* Replaces: the old one is freed (LSan), the new values are there. */
    assert_int_equal(plat_msg_set_error(m, -EINVAL, "bad field", NULL), 0);
    assert_int_equal(m->header->error->code, -EINVAL);
    assert_string_equal(m->header->error->message, "bad field");
    assert_empty_str(m->header->error->detail);

    assert_int_equal(plat_msg_set_error(m, -ENOTCONN, NULL, NULL), 0);
    assert_int_equal(m->header->error->code, -ENOTCONN);
    assert_empty_str(m->header->error->message);
    assert_empty_str(m->header->error->detail);

    /* A REPLY carrying only an error is a valid envelope. */
    set_ids(m, PLAT_PLATFORM_ID, HOST_ID);
    m->header->kind = PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY;
    m->header->seq_no = 9;
    assert_int_equal(plat_envelope_validate(m, NULL), 0);
    plat_envelope_free(&m);

    /* On a message with a channel too. */
    m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_msg_set_error(m, -EOPNOTSUPP, "x", "y"), 0);
    assert_int_equal(m->header->error->code, -EOPNOTSUPP);
    assert_int_equal(m->control->pong->state, PLAT__HOST_STATE__HOST_STATE_READY);
    plat_envelope_free(&m);
}

static void test_strdup(void **state)
{
    char *s = plat_msg_strdup(NULL);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    const char *src = "hostboot-a";
    s = plat_msg_strdup(src);
    assert_non_null(s);
    assert_ptr_not_equal(s, src);
    assert_string_equal(s, src);
    free(s);
}

static void test_free_null_safe(void **state)
{
    Plat__PlatformMessage *m = NULL;
    plat_envelope_free(&m);
    assert_null(m);
    plat_envelope_free(NULL);
}

/* Encode and decode `m` (after filling ids): what goes over the wire. */
static Plat__PlatformMessage *roundtrip(Plat__PlatformMessage *m)
{
    assert_valid_after_ids(m);
    m->header->kind = PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST;
    m->header->seq_no = 3;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(plat_envelope_encode(m, 0, &buf, &len), 0);
    Plat__PlatformMessage *d = NULL;
    assert_int_equal(plat_envelope_decode(buf, len, 0, &d, NULL), 0);
    free(buf);
    return d;
}

static void test_plugin_action(void **state)
{
    Plat__PlatformMessage *m = plat_msg_plugin_action(
        UUID, PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UPGRADE, "hello", "2.0.0", "/store/hello/2.0.0",
        "libhello.so", "{\"greeting_name\":\"Ada\"}", "1.0.0", "org-1", 5000);
    assert_fresh_header(m);
    assert_int_equal(m->channel_case, PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN);
    assert_int_equal(m->plugin->body_case, PLAT__PLUGIN_MESSAGE__BODY_ACTION);
    Plat__PlatformMessage *d = roundtrip(m);
    plat_envelope_free(&m);
    const Plat__PluginActionRequest *r = d->plugin->action;
    assert_string_equal(r->instance, UUID);
    assert_int_equal(r->action, PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UPGRADE);
    assert_string_equal(r->plugin, "hello");
    assert_string_equal(r->version, "2.0.0");
    assert_string_equal(r->package_dir, "/store/hello/2.0.0");
    assert_string_equal(r->entry, "libhello.so");
    assert_string_equal(r->config_json, "{\"greeting_name\":\"Ada\"}");
    assert_string_equal(r->from_version, "1.0.0");
    assert_string_equal(r->org, "org-1");
    assert_int_equal(r->timeout_ms, 5000);
    plat_envelope_free(&d);

    /* NULL strings read as empty */
    m = plat_msg_plugin_action(UUID, PLAT__PLUGIN_ACTION__PLUGIN_ACTION_START, NULL, NULL, NULL,
                               NULL, NULL, NULL, NULL, 0);
    assert_non_null(m);
    assert_empty_str(m->plugin->action->plugin);
    assert_empty_str(m->plugin->action->from_version);
    assert_empty_str(m->plugin->action->org);
    assert_valid_after_ids(m);
    plat_envelope_free(&m);
}

static void test_plugin_event(void **state)
{
    Plat__HttpHeader h1 = PLAT__HTTP_HEADER__INIT, h2 = PLAT__HTTP_HEADER__INIT;
    h1.name = "Content-Type";
    h1.value = "application/json";
    h2.name = "X-Empty";
    h2.value = NULL;
    const Plat__HttpHeader *hs[] = {&h1, NULL, &h2};
    static const uint8_t body[] = {'{', '}', 0, 0xff};
    Plat__PlatformMessage *m = plat_msg_plugin_event(UUID, "POST", "/x", hs, 3, body, sizeof body);
    assert_fresh_header(m);
    assert_int_equal(m->plugin->body_case, PLAT__PLUGIN_MESSAGE__BODY_EVENT);
    /* copies, not the caller's pointers */
    assert_ptr_not_equal(m->plugin->event->body.data, body);
    assert_ptr_not_equal(m->plugin->event->headers[0], &h1);
    Plat__PlatformMessage *d = roundtrip(m);
    plat_envelope_free(&m);
    const Plat__PluginEvent *e = d->plugin->event;
    assert_string_equal(e->instance, UUID);
    assert_string_equal(e->method, "POST");
    assert_string_equal(e->path, "/x");
    assert_int_equal(e->n_headers, 2); /* the NULL entry is skipped */
    assert_string_equal(e->headers[0]->name, "Content-Type");
    assert_string_equal(e->headers[0]->value, "application/json");
    assert_string_equal(e->headers[1]->name, "X-Empty");
    assert_string_equal(e->headers[1]->value, "");
    assert_int_equal(e->body.len, sizeof body);
    assert_memory_equal(e->body.data, body, sizeof body);
    plat_envelope_free(&d);

    /* no headers, no body */
    m = plat_msg_plugin_event(UUID, "GET", "/", NULL, 5, NULL, 0);
    assert_non_null(m);
    assert_int_equal(m->plugin->event->n_headers, 0);
    assert_int_equal(m->plugin->event->body.len, 0);
    assert_null(m->plugin->event->body.data);
    assert_valid_after_ids(m);
    plat_envelope_free(&m);
}

static void test_plugin_action_result(void **state)
{
    Plat__PlatformMessage *m = plat_msg_plugin_action_result(0, "ignored", "ignored");
    assert_fresh_header(m);
    assert_int_equal(m->plugin->body_case, PLAT__PLUGIN_MESSAGE__BODY_ACTION_RESULT);
    assert_null(m->plugin->action_result->error);
    assert_valid_after_ids(m);
    plat_envelope_free(&m);

    m = plat_msg_plugin_action_result(-EPROTO, "built for plugin ABI version 2", UUID);
    assert_non_null(m);
    Plat__PlatformMessage *d = roundtrip(m);
    plat_envelope_free(&m);
    const Plat__ErrorMessage *e = d->plugin->action_result->error;
    assert_non_null(e);
    assert_int_equal(e->code, -EPROTO);
    assert_string_equal(e->message, "built for plugin ABI version 2");
    assert_string_equal(e->detail, UUID);
    plat_envelope_free(&d);

    m = plat_msg_plugin_action_result(-EIO, NULL, NULL);
    assert_non_null(m);
    assert_empty_str(m->plugin->action_result->error->message);
    plat_envelope_free(&m);
}

static void test_plugin_response(void **state)
{
    Plat__PlatformMessage *m =
        plat_msg_plugin_response(200, "text/plain", (const uint8_t *)"hello, world", 12, 0, NULL);
    assert_fresh_header(m);
    assert_int_equal(m->plugin->body_case, PLAT__PLUGIN_MESSAGE__BODY_RESPONSE);
    assert_int_equal(plat_msg_plugin_response_add_header(m, "X-A", "1"), 0);
    assert_int_equal(plat_msg_plugin_response_add_header(m, "X-B", NULL), 0);
    assert_int_equal(plat_msg_plugin_response_add_header(m, NULL, "x"), -EINVAL);
    Plat__PlatformMessage *d = roundtrip(m);
    plat_envelope_free(&m);
    const Plat__PluginEventResponse *r = d->plugin->response;
    assert_int_equal(r->status, 200);
    assert_null(r->error);
    assert_int_equal(r->n_headers, 3);
    assert_string_equal(r->headers[0]->name, "Content-Type");
    assert_string_equal(r->headers[0]->value, "text/plain");
    assert_string_equal(r->headers[1]->name, "X-A");
    assert_string_equal(r->headers[1]->value, "1");
    assert_string_equal(r->headers[2]->value, "");
    assert_int_equal(r->body.len, 12);
    assert_memory_equal(r->body.data, "hello, world", 12);
    plat_envelope_free(&d);

    /* an error, no content type, no body */
    m = plat_msg_plugin_response(500, NULL, NULL, 0, -EIO, "on_event failed");
    assert_non_null(m);
    assert_int_equal(m->plugin->response->n_headers, 0);
    assert_int_equal(m->plugin->response->body.len, 0);
    assert_non_null(m->plugin->response->error);
    assert_int_equal(m->plugin->response->error->code, -EIO);
    assert_string_equal(m->plugin->response->error->message, "on_event failed");
    assert_valid_after_ids(m);
    plat_envelope_free(&m);

    /* "" content type adds no header */
    m = plat_msg_plugin_response(204, "", NULL, 0, 0, NULL);
    assert_non_null(m);
    assert_int_equal(m->plugin->response->n_headers, 0);
    plat_envelope_free(&m);

    /* add_header only on a Plugin.response */
    m = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_int_equal(plat_msg_plugin_response_add_header(m, "X", "y"), -EINVAL);
    plat_envelope_free(&m);
    m = plat_msg_plugin_action_result(0, NULL, NULL);
    assert_int_equal(plat_msg_plugin_response_add_header(m, "X", "y"), -EINVAL);
    plat_envelope_free(&m);
    assert_int_equal(plat_msg_plugin_response_add_header(NULL, "X", "y"), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_each_channel),
        cmocka_unit_test(test_new_empty),
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_pong),
        cmocka_unit_test(test_register_ack),
        cmocka_unit_test(test_host_ready),
        cmocka_unit_test(test_hostboot_register),
        cmocka_unit_test(test_hostboot_heartbeat),
        cmocka_unit_test(test_set_error),
        cmocka_unit_test(test_strdup),
        cmocka_unit_test(test_free_null_safe),
        cmocka_unit_test(test_plugin_action),
        cmocka_unit_test(test_plugin_event),
        cmocka_unit_test(test_plugin_action_result),
        cmocka_unit_test(test_plugin_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
