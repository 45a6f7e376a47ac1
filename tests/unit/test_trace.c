/* platformd/trace.c and metrics.c alone: the tracing switch (ids, matching
 * by host and by instance, replies matched to traced requests, one log
 * line each, counted) and the /metrics page (API counters, label escaping,
 * the families every page has). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "platformd.h"
#include "trace.h"

#define HOST_A "host-0f8fad5b-d9cb-469f-a165-70867728950e"
#define HOST_B "host-1f8fad5b-d9cb-469f-a165-70867728950e"
#define INST_A "aaaaaaaa-0000-4000-8000-000000000001"
#define INST_B "bbbbbbbb-0000-4000-8000-000000000002"

static int sv[2];

static int setup(void **state)
{
    pd_t *pd = calloc(1, sizeof *pd);
    assert_non_null(pd);
    pd->trace = pd_trace_new();
    pd->api_stats = pd_api_stats_new();
    pd->reg = pd_registry_new();
    assert_true(pd->trace && pd->api_stats && pd->reg);
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    plat_log_init("platformd");
    plat_log_set_fd(sv[0]);
    plat_log_set_journal(1);
    *state = pd;
    return 0;
}

static int teardown(void **state)
{
    pd_t *pd = *state;
    pd_trace_destroy(&pd->trace);
    assert_null(pd->trace);
    pd_trace_destroy(&pd->trace); /* NULL-safe */
    pd_api_stats_destroy(&pd->api_stats);
    pd_registry_destroy(&pd->reg);
    free(pd);
    plat_log_set_fd(2);
    plat_log_set_journal(-1);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/* Trace lines written since the last call (other lines skipped). */
static int read_trace_lines(char lines[][512], int max)
{
    int n = 0;
    char buf[2048];
    ssize_t r;
    while ((r = recv(sv[1], buf, sizeof buf - 1, MSG_DONTWAIT)) > 0) {
        buf[r] = 0;
        if (strstr(buf, "platformd/trace ") && n < max)
            snprintf(lines[n++], 512, "%.500s", buf);
    }
    return n;
}

static char *dupstr(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

static void header(Plat__PlatformMessage *m, const char *src, const char *dst, uint64_t seq,
                   Plat__MessageKind kind)
{
    /* plat_msg_new_empty made the header and both endpoints */
    assert_true(m->header && m->header->source && m->header->destination);
    m->header->source->id = dupstr(src);
    m->header->destination->id = dupstr(dst);
    m->header->seq_no = seq;
    m->header->kind = kind;
}

/* A PluginEvent for `inst` (platform -> host request). */
static Plat__PlatformMessage *event(const char *inst, const char *src, const char *dst,
                                    uint64_t seq)
{
    Plat__PlatformMessage *m = plat_msg_new_empty();
    Plat__PluginMessage *pm = malloc(sizeof *pm);
    Plat__PluginEvent *ev = malloc(sizeof *ev);
    assert_true(m && pm && ev);
    plat__plugin_message__init(pm);
    plat__plugin_event__init(ev);
    ev->instance = dupstr(inst);
    pm->body_case = PLAT__PLUGIN_MESSAGE__BODY_EVENT;
    pm->event = ev;
    m->channel_case = PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN;
    m->plugin = pm;
    header(m, src, dst, seq, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
    return m;
}

/* A reply without an instance field (PluginEventResponse). */
static Plat__PlatformMessage *reply(const char *src, const char *dst, uint64_t seq)
{
    Plat__PlatformMessage *m = plat_msg_new_empty();
    Plat__PluginMessage *pm = malloc(sizeof *pm);
    Plat__PluginEventResponse *r = malloc(sizeof *r);
    assert_true(m && pm && r);
    plat__plugin_message__init(pm);
    plat__plugin_event_response__init(r);
    r->status = 200;
    pm->body_case = PLAT__PLUGIN_MESSAGE__BODY_RESPONSE;
    pm->response = r;
    m->channel_case = PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN;
    m->plugin = pm;
    header(m, src, dst, seq, PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY);
    return m;
}

/* A host -> platform ResourceRequest / AbilityRegister for `inst`. */
static Plat__PlatformMessage *resource(const char *inst, const char *src, uint64_t seq)
{
    Plat__PlatformMessage *m = plat_msg_new_empty();
    Plat__ResourceMessage *rm = malloc(sizeof *rm);
    Plat__ResourceRequest *rq = malloc(sizeof *rq);
    assert_true(m && rm && rq);
    plat__resource_message__init(rm);
    plat__resource_request__init(rq);
    rq->instance = dupstr(inst);
    rm->body_case = PLAT__RESOURCE_MESSAGE__BODY_REQUEST;
    rm->request = rq;
    m->channel_case = PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE;
    m->resource = rm;
    header(m, src, PLAT_PLATFORM_ID, seq, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
    return m;
}

static Plat__PlatformMessage *ability(const char *inst, int body)
{
    Plat__PlatformMessage *m = plat_msg_new_empty();
    Plat__AbilityMessage *am = malloc(sizeof *am);
    assert_true(m && am);
    plat__ability_message__init(am);
    if (body == 1) {
        am->register_ = malloc(sizeof *am->register_);
        plat__ability_register__init(am->register_);
        am->register_->instance = dupstr(inst);
        am->body_case = PLAT__ABILITY_MESSAGE__BODY_REGISTER;
    } else if (body == 2) {
        am->trigger = malloc(sizeof *am->trigger);
        plat__ability_trigger__init(am->trigger);
        am->trigger->instance = dupstr(inst);
        am->body_case = PLAT__ABILITY_MESSAGE__BODY_TRIGGER;
    } else {
        am->unregister = malloc(sizeof *am->unregister);
        plat__ability_unregister__init(am->unregister);
        am->unregister->instance = dupstr(inst);
        am->body_case = PLAT__ABILITY_MESSAGE__BODY_UNREGISTER;
    }
    m->channel_case = PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY;
    m->ability = am;
    header(m, HOST_A, PLAT_PLATFORM_ID, 1, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST);
    return m;
}

static void test_switch(void **state)
{
    pd_t *pd = *state;
    pd_trace_t *t = pd->trace;
    assert_int_equal(pd_trace_set(t, PD_TRACE_INSTANCE, "not-a-uuid", true), -EINVAL);
    assert_int_equal(pd_trace_set(t, PD_TRACE_HOST, INST_A, true), -EINVAL);
    assert_int_equal(pd_trace_set(t, PD_TRACE_INSTANCE, HOST_A, true), -EINVAL);
    assert_int_equal(pd_trace_set(NULL, PD_TRACE_HOST, HOST_A, true), -EINVAL);
    assert_int_equal(pd_trace_set(t, PD_TRACE_HOST, NULL, true), -EINVAL);
    assert_int_equal(pd_trace_set(t, PD_TRACE_HOST, HOST_A, true), 0);
    assert_int_equal(pd_trace_set(t, PD_TRACE_HOST, HOST_A, true), 0); /* idempotent */
    assert_true(pd_trace_is_on(t, PD_TRACE_HOST, HOST_A));
    assert_false(pd_trace_is_on(t, PD_TRACE_INSTANCE, HOST_A));
    assert_false(pd_trace_is_on(NULL, PD_TRACE_HOST, HOST_A));
    assert_int_equal(pd_trace_set(t, PD_TRACE_HOST, HOST_B, false), 0); /* off when off: ok */
    /* at most PD_TRACE_MAX of a kind */
    for (int i = 0; i < PD_TRACE_MAX; i++) {
        char id[64];
        snprintf(id, sizeof id, "%08x-0000-4000-8000-000000000000", i);
        assert_int_equal(pd_trace_set(t, PD_TRACE_INSTANCE, id, true), 0);
    }
    assert_int_equal(pd_trace_set(t, PD_TRACE_INSTANCE, INST_A, true), -ENOSPC);
    assert_int_equal(pd_trace_set(t, PD_TRACE_INSTANCE, "00000005-0000-4000-8000-000000000000",
                                  false),
                     0);
    assert_int_equal(pd_trace_set(t, PD_TRACE_INSTANCE, INST_A, true), 0);
    json_t *j = pd_trace_json(pd);
    json_t *inst = json_object_get(j, "instances");
    assert_int_equal(json_array_size(inst), PD_TRACE_MAX);
    /* order kept: 0..4, 6..63, then A */
    assert_string_equal(json_string_value(json_array_get(inst, 5)),
                        "00000006-0000-4000-8000-000000000000");
    assert_string_equal(json_string_value(json_array_get(inst, PD_TRACE_MAX - 1)), INST_A);
    assert_int_equal(json_array_size(json_object_get(j, "hosts")), 1);
    json_decref(j);
}

static void test_instance_of(void **state)
{
    (void)state;
    Plat__PlatformMessage *m = event(INST_A, PLAT_PLATFORM_ID, HOST_A, 1);
    assert_string_equal(pd_trace_instance_of(m), INST_A);
    plat_envelope_free(&m);
    m = resource(INST_B, HOST_A, 1);
    assert_string_equal(pd_trace_instance_of(m), INST_B);
    plat_envelope_free(&m);
    for (int b = 1; b <= 3; b++) {
        m = ability(INST_A, b);
        assert_string_equal(pd_trace_instance_of(m), INST_A);
        plat_envelope_free(&m);
    }
    m = reply(HOST_A, PLAT_PLATFORM_ID, 1);
    assert_null(pd_trace_instance_of(m));
    plat_envelope_free(&m);
    m = resource("", HOST_A, 1);
    assert_null(pd_trace_instance_of(m)); /* empty = none */
    plat_envelope_free(&m);
}

static void test_matching(void **state)
{
    pd_t *pd = *state;
    char lines[16][512];
    /* nothing traced: nothing logged */
    Plat__PlatformMessage *m = event(INST_A, PLAT_PLATFORM_ID, HOST_A, 7);
    pd_trace_tx(pd, m, 100);
    plat_envelope_free(&m);
    assert_int_equal(read_trace_lines(lines, 16), 0);
    assert_int_equal(pd->metrics.trace_lines, 0);

    assert_int_equal(pd_trace_set(pd->trace, PD_TRACE_INSTANCE, INST_A, true), 0);
    /* platform -> host request for A, and its reply (matched by seq) */
    m = event(INST_A, PLAT_PLATFORM_ID, HOST_A, 7);
    pd_trace_tx(pd, m, 100);
    plat_envelope_free(&m);
    m = event(INST_B, PLAT_PLATFORM_ID, HOST_A, 8); /* B: not traced */
    pd_trace_tx(pd, m, 100);
    plat_envelope_free(&m);
    m = reply(HOST_A, PLAT_PLATFORM_ID, 8); /* B's reply */
    pd_trace_on_reply(HOST_A, 8, m, pd);
    plat_envelope_free(&m);
    m = reply(HOST_B, PLAT_PLATFORM_ID, 7); /* same seq, other peer */
    pd_trace_rx(pd, m, 10);
    plat_envelope_free(&m);
    m = reply(HOST_A, PLAT_PLATFORM_ID, 7); /* A's reply */
    pd_trace_on_reply(HOST_A, 7, m, pd);
    pd_trace_on_reply(HOST_A, 7, m, pd); /* a second one is not A's anymore */
    pd_trace_on_reply(HOST_A, 7, NULL, pd);
    plat_envelope_free(&m);
    /* host -> platform request for A, and the platform's reply (tx) */
    m = resource(INST_A, HOST_B, 3);
    pd_trace_rx(pd, m, 55);
    plat_envelope_free(&m);
    m = reply(PLAT_PLATFORM_ID, HOST_B, 3);
    pd_trace_tx(pd, m, 20);
    plat_envelope_free(&m);
    int n = read_trace_lines(lines, 16);
    assert_int_equal(n, 4);
    assert_int_equal(pd->metrics.trace_lines, 4);
    assert_non_null(strstr(lines[0], "<6>info platformd/trace message dir=tx source=platform "
                                     "destination=" HOST_A " seq=7 kind=request channel=plugin "
                                     "size=100 match=instance:" INST_A));
    assert_non_null(strstr(lines[1], "dir=rx source=" HOST_A " destination=platform seq=7 "
                                     "kind=reply channel=plugin"));
    assert_non_null(strstr(lines[1], "match=instance:" INST_A));
    assert_non_null(strstr(lines[2], "dir=rx source=" HOST_B " destination=platform seq=3 "
                                     "kind=request channel=resource size=55"));
    assert_non_null(strstr(lines[3], "dir=tx source=platform destination=" HOST_B " seq=3 "
                                     "kind=reply"));

    /* a host: everything from or to it, whatever the instance */
    assert_int_equal(pd_trace_set(pd->trace, PD_TRACE_INSTANCE, INST_A, false), 0);
    assert_int_equal(pd_trace_set(pd->trace, PD_TRACE_HOST, HOST_B, true), 0);
    m = event(INST_B, PLAT_PLATFORM_ID, HOST_B, 9);
    pd_trace_tx(pd, m, 1);
    plat_envelope_free(&m);
    m = reply(HOST_B, PLAT_PLATFORM_ID, 9);
    pd_trace_on_reply(HOST_B, 9, m, pd);
    plat_envelope_free(&m);
    m = event(INST_A, PLAT_PLATFORM_ID, HOST_A, 10); /* other host, A off */
    pd_trace_tx(pd, m, 1);
    plat_envelope_free(&m);
    n = read_trace_lines(lines, 16);
    assert_int_equal(n, 2);
    assert_non_null(strstr(lines[0], "match=host:" HOST_B));
    assert_non_null(strstr(lines[1], "dir=rx source=" HOST_B));
    assert_int_equal(pd->metrics.trace_lines, 6);
    json_t *j = pd_trace_json(pd);
    assert_int_equal(json_integer_value(json_object_get(j, "lines")), 6);
    json_decref(j);
}

/* ---- /metrics --------------------------------------------------------------- */

static long long value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return atoll(p + n + 1);
    return -1;
}

static void test_metrics_page(void **state)
{
    pd_t *pd = *state;
    pd_metrics_api(pd, "/api/v1/hosts/{id}", "GET", 200);
    pd_metrics_api(pd, "/api/v1/hosts/{id}", "GET", 200);
    pd_metrics_api(pd, "/api/v1/hosts/{id}", "GET", 404);
    pd_metrics_api(pd, NULL, "BREW", 405);
    pd_metrics_api(pd, "a\"b\\c\nd", "GET", 200); /* escaped, not broken */
    pd_metrics_api(NULL, "/x", "GET", 200);          /* ignored */
    pd->metrics.heartbeats_missed = 3;
    pd->metrics.resource_denied[2] = 5;
    pd->metrics.trace_lines = 11;
    bool known = false;
    assert_non_null(pd_registry_put_hostboot(pd->reg, "hostboot-a", "a", "1", "", NULL, 0, 1,
                                             &known));
    assert_non_null(pd_registry_add_starting_host(pd->reg, HOST_A, "c", "1", "highPerformance",
                                                  "hostboot-a", 1));
    size_t len = 0;
    char *text = pd_metrics_render(pd, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_int_equal(text[len - 1], '\n');
    assert_int_equal(value_of(text, "plat_http_requests_total{route=\"/api/v1/hosts/{id}\","
                                    "method=\"GET\",status=\"200\"}"),
                     2);
    assert_int_equal(value_of(text, "plat_http_requests_total{route=\"/api/v1/hosts/{id}\","
                                    "method=\"GET\",status=\"404\"}"),
                     1);
    assert_int_equal(
        value_of(text, "plat_http_requests_total{route=\"unmatched\",method=\"other\",status=\"405\"}"),
        1);
    assert_int_equal(value_of(text, "plat_http_requests_total{route=\"a\\\"b\\\\c\\nd\","
                                    "method=\"GET\",status=\"200\"}"),
                     1);
    assert_int_equal(value_of(text, "plat_heartbeats_missed_total"), 3);
    assert_int_equal(value_of(text, "plat_resource_denied_total{kind=\"http\"}"), 5);
    assert_int_equal(value_of(text, "plat_trace_lines_total"), 11);
    assert_int_equal(value_of(text, "plat_hosts{state=\"starting\"}"), 1);
    assert_int_equal(value_of(text, "plat_hosts{state=\"ready\"}"), 0);
    assert_int_equal(value_of(text, "plat_hostboots{state=\"ready\"}"), 1);
    assert_int_equal(value_of(text, "plat_sync_call_duration_seconds_bucket{le=\"+Inf\"}"), 0);
    assert_int_equal(value_of(text, "plat_sync_call_duration_seconds_count"), 0);
    assert_non_null(strstr(text, "# TYPE plat_sync_call_duration_seconds histogram\n"));
    assert_non_null(strstr(text, "# TYPE plat_bus_messages_total counter\n"));
    assert_int_equal(value_of(text, "plat_bus_messages_total{channel=\"plugin\",direction=\"rx\"}"),
                     0);
    /* every family has HELP then TYPE, exactly once */
    const char *fams[] = {"plat_bus_dropped_total", "plat_instance_restarts_total",
                          "plat_resource_calls_total", "plat_task_runs_total",
                          "plat_sync_timeouts_total"};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        char help[128];
        snprintf(help, sizeof help, "# HELP %s ", fams[i]);
        const char *h = strstr(text, help);
        assert_non_null(h);
        assert_null(strstr(h + 1, help));
    }
    /* no instances gauge without the store */
    assert_null(strstr(text, "plat_instances{"));
    free(text);
    json_t *j = pd_api_stats_json(pd);
    assert_int_equal(json_array_size(j), 4);
    json_decref(j);
    assert_string_equal(plat_bus_drop_key(PLAT_BUS_DROP_SPOOFED), "spoofed");
    assert_string_equal(plat_bus_drop_key((plat_bus_drop_t)-1), "unknown");
    assert_string_equal(plat_bus_drop_key(PLAT_BUS_DROP__COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_switch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instance_of, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_page, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
