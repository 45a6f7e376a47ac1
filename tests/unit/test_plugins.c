/* pluginhost/plugins.h: real shared objects (the examples and the test
 * plugins built beside this file) loaded and run on a real uv loop. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "plugins.h"

#ifndef PLAT_EXAMPLES_DIR
#error "PLAT_EXAMPLES_DIR must name the built example packages"
#endif
#ifndef PLAT_TEST_PLUGINS_DIR
#error "PLAT_TEST_PLUGINS_DIR must name the built test plugins"
#endif

#define HELLO1 PLAT_EXAMPLES_DIR "/hello"
#define HELLO2 PLAT_EXAMPLES_DIR "/hello_v2"
#define HELLO_BAD PLAT_EXAMPLES_DIR "/hello_bad_upgrade"
#define COUNTER PLAT_EXAMPLES_DIR "/counter"
#define PROBE PLAT_TEST_PLUGINS_DIR "/probe"
#define BADABI PLAT_TEST_PLUGINS_DIR "/badabi"
#define NOSYM PLAT_TEST_PLUGINS_DIR "/nosym"

#define INST_A "0f8fad5b-d9cb-469f-a165-70867728950e"
#define INST_B "7c9e6679-7425-40de-944b-e07fc1f90ae7"

enum {
    INSTALL = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_INSTALL,
    UNINSTALL = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UNINSTALL,
    ENABLE = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_ENABLE,
    DISABLE = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_DISABLE,
    UPGRADE = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UPGRADE,
    START = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_START,
    STOP = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_STOP,
};

/* What one completion delivered, copied out of the borrowed reply. */
typedef struct {
    int done;           /* times the callback ran (must end at 1) */
    int code;
    char message[512];
    int reply_kind;     /* the reply's PluginMessage body case */
    int reply_err;      /* error.code in the reply, 0 if none */
    unsigned status;
    char body[256];
    size_t body_len;
    char headers[8][2][128];
    size_t n_headers;
    int *order;         /* optional: completion order log */
    int order_id;
} result_t;

static int g_order_next;

static void on_done(int code, const char *message, Plat__PlatformMessage *reply, void *arg)
{
    result_t *r = arg;
    r->done++;
    r->code = code;
    snprintf(r->message, sizeof r->message, "%s", message);
    if (r->order)
        r->order[g_order_next++] = r->order_id;
    assert_non_null(reply);
    assert_int_equal(reply->channel_case, PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN);
    r->reply_kind = reply->plugin->body_case;
    if (r->reply_kind == PLAT__PLUGIN_MESSAGE__BODY_ACTION_RESULT) {
        const Plat__PluginActionResult *a = reply->plugin->action_result;
        r->reply_err = a->error ? a->error->code : 0;
        return;
    }
    assert_int_equal(r->reply_kind, PLAT__PLUGIN_MESSAGE__BODY_RESPONSE);
    const Plat__PluginEventResponse *e = reply->plugin->response;
    r->reply_err = e->error ? e->error->code : 0;
    r->status = e->status;
    r->body_len = e->body.len;
    snprintf(r->body, sizeof r->body, "%.*s", (int)e->body.len,
             e->body.len ? (const char *)e->body.data : "");
    for (size_t i = 0; i < e->n_headers && i < 8; i++) {
        snprintf(r->headers[i][0], 128, "%s", e->headers[i]->name);
        snprintf(r->headers[i][1], 128, "%s", e->headers[i]->value);
    }
    r->n_headers = e->n_headers;
}

static const char *header(const result_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers && i < 8; i++)
        if (strcasecmp(r->headers[i][0], name) == 0)
            return r->headers[i][1];
    return NULL;
}

typedef struct {
    uv_loop_t loop;
    ph_plugins_t *p;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->p = ph_plugins_new(&f->loop);
    assert_non_null(f->p);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    ph_plugins_close(&f->p);
    assert_null(f->p);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* Queue an action (no loop run). */
static int queue_action(fixture_t *f, const char *inst, int action, const char *plugin,
                        const char *version, const char *dir, const char *entry,
                        const char *config, const char *from, result_t *r)
{
    Plat__PlatformMessage *m = plat_msg_plugin_action(inst, (Plat__PluginAction)action, plugin,
                                                      version, dir, entry, config, from, "org-1",
                                                      5000);
    assert_non_null(m);
    int rc = ph_plugins_action(f->p, m->plugin->action, on_done, r);
    plat_envelope_free(&m);
    return rc;
}

/* Run one action to completion; returns its code. */
static int run_action(fixture_t *f, const char *inst, int action, const char *plugin,
                      const char *version, const char *dir, const char *entry,
                      const char *config, const char *from, result_t *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(queue_action(f, inst, action, plugin, version, dir, entry, config, from, r),
                     0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r->done, 1);
    assert_int_equal(r->reply_kind, PLAT__PLUGIN_MESSAGE__BODY_ACTION_RESULT);
    assert_int_equal(r->reply_err, r->code);
    if (r->code == 0)
        assert_string_equal(r->message, "");
    else
        assert_true(r->message[0]);
    assert_false(ph_plugins_busy(f->p));
    return r->code;
}

static int queue_event(fixture_t *f, const char *inst, const char *method, const char *path,
                       const char *body, result_t *r)
{
    Plat__HttpHeader h1 = PLAT__HTTP_HEADER__INIT, h2 = PLAT__HTTP_HEADER__INIT;
    h1.name = "Content-Type";
    h1.value = "text/plain";
    h2.name = "X-Trace";
    h2.value = "abc";
    const Plat__HttpHeader *hs[] = {&h1, &h2};
    Plat__PlatformMessage *m = plat_msg_plugin_event(inst, method, path, hs, 2,
                                                     (const uint8_t *)body, body ? strlen(body) : 0);
    assert_non_null(m);
    int rc = ph_plugins_event(f->p, m->plugin->event, on_done, r);
    plat_envelope_free(&m);
    return rc;
}

static int run_event(fixture_t *f, const char *inst, const char *path, const char *body,
                     result_t *r)
{
    memset(r, 0, sizeof *r);
    int rc = queue_event(f, inst, "POST", path, body, r);
    if (rc < 0)
        return rc;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r->done, 1);
    assert_int_equal(r->reply_kind, PLAT__PLUGIN_MESSAGE__BODY_RESPONSE);
    assert_int_equal(r->reply_err, r->code);
    return r->code;
}

#define HELLO_ACT(f, a, cfg, r) run_action(f, INST_A, a, "hello", "1.0.0", HELLO1, "libhello.so", cfg, "", r)

/* Every hook of hello 1.0.0, then upgrade to 2.0.0, a failed upgrade to
 * 2.1.0 that leaves 2.0.0 answering, and uninstall. */
static void test_hello_lifecycle(void **state)
{
    fixture_t *f = *state;
    result_t r;
    const char *cfg = "{\"greeting_name\":\"Ada\"}";
    assert_int_equal(HELLO_ACT(f, INSTALL, cfg, &r), 0);
    assert_true(ph_plugins_has_instance(f->p, INST_A));
    assert_int_equal(ph_plugins_instance_count(f->p), 1);
    assert_int_equal(HELLO_ACT(f, ENABLE, cfg, &r), 0);
    assert_int_equal(HELLO_ACT(f, START, cfg, &r), 0);

    assert_int_equal(run_event(f, INST_A, "/", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello, Ada");
    assert_non_null(header(&r, "Content-Type"));
    assert_string_equal(header(&r, "Content-Type"), "text/plain; charset=utf-8");

    assert_int_equal(HELLO_ACT(f, STOP, cfg, &r), 0);
    assert_int_equal(HELLO_ACT(f, DISABLE, cfg, &r), 0);
    assert_int_equal(HELLO_ACT(f, ENABLE, "{}", &r), 0); /* new config: default name */
    assert_int_equal(HELLO_ACT(f, START, "{}", &r), 0);
    assert_int_equal(run_event(f, INST_A, "/", NULL, &r), 0);
    assert_string_equal(r.body, "hello, world");

    /* upgrade to 2.0.0: the hook runs in the new version */
    assert_int_equal(run_action(f, INST_A, UPGRADE, "hello", "2.0.0", HELLO2, "libhello.so", cfg,
                                "1.0.0", &r),
                     0);
    assert_int_equal(run_event(f, INST_A, "/", NULL, &r), 0);
    assert_string_equal(r.body, "hello v2, Ada");

    /* 2.1.0's upgrade fails with -EIO: the instance keeps answering as 2.0.0 */
    assert_int_equal(run_action(f, INST_A, UPGRADE, "hello", "2.1.0", HELLO_BAD, "libhello.so",
                                cfg, "2.0.0", &r),
                     -EIO);
    assert_non_null(strstr(r.message, "upgrade"));
    assert_non_null(strstr(r.message, "2.1.0"));
    assert_int_equal(run_event(f, INST_A, "/", NULL, &r), 0);
    assert_string_equal(r.body, "hello v2, Ada");
    /* 2.0.0 refuses an upgrade from 2.x (its hook's own -EINVAL) */
    assert_int_equal(run_action(f, INST_A, UPGRADE, "hello", "2.0.0", HELLO2, "libhello.so", cfg,
                                "2.1.0", &r),
                     -EINVAL);

    /* a bad config is refused by hello's install hook */
    assert_int_equal(run_action(f, INST_B, INSTALL, "hello", "1.0.0", HELLO1, "libhello.so",
                                "not json", "", &r),
                     -EINVAL);
    assert_int_equal(run_action(f, INST_B, UNINSTALL, "hello", "1.0.0", HELLO1, "libhello.so",
                                "", "", &r),
                     0);

    assert_int_equal(run_action(f, INST_A, UNINSTALL, "hello", "2.0.0", HELLO2, "libhello.so",
                                cfg, "", &r),
                     0);
    assert_false(ph_plugins_has_instance(f->p, INST_A));
    assert_int_equal(ph_plugins_instance_count(f->p), 0);
    memset(&r, 0, sizeof r);
    assert_int_equal(queue_event(f, INST_A, "POST", "/", NULL, &r), -ENOENT);
    assert_int_equal(r.done, 0);
}

/* counter keeps its count across stop/start in the user data. */
static void test_counter_keeps_count(void **state)
{
    fixture_t *f = *state;
    result_t r;
#define CNT(a) run_action(f, INST_A, a, "counter", "1.0.0", COUNTER, "libcounter.so", "{}", "", &r)
    assert_int_equal(CNT(INSTALL), 0);
    assert_int_equal(CNT(START), 0);
    for (int i = 1; i <= 3; i++) {
        char want[32];
        snprintf(want, sizeof want, "{\"count\":%d}", i);
        assert_int_equal(run_event(f, INST_A, "/", NULL, &r), 0);
        assert_string_equal(r.body, want);
    }
    assert_int_equal(CNT(STOP), 0);
    assert_int_equal(CNT(START), 0);
    assert_int_equal(run_event(f, INST_A, "/", NULL, &r), 0);
    assert_string_equal(r.body, "{\"count\":4}");
    assert_string_equal(header(&r, "Content-Type"), "application/json");
    assert_int_equal(CNT(UNINSTALL), 0);
    /* a new install starts from zero */
    assert_int_equal(CNT(INSTALL), 0);
    assert_int_equal(run_event(f, INST_A, "/", NULL, &r), 0);
    assert_string_equal(r.body, "{\"count\":1}");
    assert_int_equal(CNT(UNINSTALL), 0);
#undef CNT
}

static void test_abi_mismatch(void **state)
{
    fixture_t *f = *state;
    result_t r;
    assert_int_equal(run_action(f, INST_A, START, "badabi", "1.0.0", BADABI, "libbadabi.so", "{}",
                                "", &r),
                     -EPROTO);
    assert_non_null(strstr(r.message, "ABI version 2"));
    assert_non_null(strstr(r.message, "ABI version 1"));
    /* nothing loaded: no context kept, events refused */
    assert_int_equal(ph_plugins_instance_count(f->p), 0);
    memset(&r, 0, sizeof r);
    assert_int_equal(queue_event(f, INST_A, "POST", "/", NULL, &r), -ENOENT);
}

static void test_missing_symbol(void **state)
{
    fixture_t *f = *state;
    result_t r;
    assert_int_equal(run_action(f, INST_A, INSTALL, "nosym", "1.0.0", NOSYM, "libnosym.so", "{}",
                                "", &r),
                     -EPROTO);
    assert_non_null(strstr(r.message, "op_plugin_descriptor_v1"));
    assert_int_equal(ph_plugins_instance_count(f->p), 0);
}

static void test_load_failures(void **state)
{
    fixture_t *f = *state;
    result_t r;
    /* not a shared object at all */
    assert_int_equal(run_action(f, INST_A, INSTALL, "hello", "9.0.0", HELLO1, "manifest.json",
                                "{}", "", &r),
                     -ENOEXEC);
    assert_non_null(strstr(r.message, "cannot load"));
    /* no such file */
    assert_int_equal(run_action(f, INST_A, INSTALL, "hello", "9.0.0", HELLO1, "libnope.so", "{}",
                                "", &r),
                     -ENOEXEC);
    /* relative package_dir, empty entry */
    assert_int_equal(run_action(f, INST_A, INSTALL, "hello", "9.0.0", "examples/hello",
                                "libhello.so", "{}", "", &r),
                     -ENOEXEC);
    assert_int_equal(run_action(f, INST_A, INSTALL, "hello", "9.0.0", HELLO1, "", "{}", "", &r),
                     -ENOEXEC);
    assert_int_equal(ph_plugins_instance_count(f->p), 0);
}

/* The entry must stay inside package_dir: "..", absolute paths and
 * symlinks that lead out are refused before dlopen. */
static void test_entry_escape(void **state)
{
    fixture_t *f = *state;
    result_t r;
    assert_int_equal(run_action(f, INST_A, INSTALL, "hello", "9.0.0", HELLO1,
                                "../hello_v2/libhello.so", "{}", "", &r),
                     -ENOEXEC);
    assert_non_null(strstr(r.message, "out of the package"));
    assert_int_equal(run_action(f, INST_A, INSTALL, "hello", "9.0.0", HELLO1,
                                HELLO1 "/libhello.so", "{}", "", &r),
                     -ENOEXEC);
    assert_non_null(strstr(r.message, "relative"));

    char dir[] = "/tmp/test_plugins.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char link[sizeof dir + 32];
    snprintf(link, sizeof link, "%s/libhello.so", dir);
    assert_int_equal(symlink(HELLO1 "/libhello.so", link), 0);
    assert_int_equal(run_action(f, INST_A, INSTALL, "hello", "9.0.0", dir, "libhello.so", "{}",
                                "", &r),
                     -ENOEXEC);
    assert_non_null(strstr(r.message, "out of the package"));
    /* a prefix of the directory name is not "inside" */
    char sibling[sizeof dir + 32];
    snprintf(sibling, sizeof sibling, "%s-x", dir);
    assert_int_equal(mkdir(sibling, 0700), 0);
    char lib2[sizeof sibling + 32];
    snprintf(lib2, sizeof lib2, "%s/lib.so", sibling);
    assert_int_equal(symlink(HELLO1 "/libhello.so", lib2), 0);
    char rel[64];
    snprintf(rel, sizeof rel, "../%s/lib.so", strrchr(sibling, '/') + 1);
    assert_int_equal(run_action(f, INST_A, INSTALL, "hello", "9.0.0", dir, rel, "{}", "", &r),
                     -ENOEXEC);
    assert_non_null(strstr(r.message, "out of the package"));
    unlink(lib2);
    rmdir(sibling);
    unlink(link);
    rmdir(dir);
    assert_int_equal(ph_plugins_instance_count(f->p), 0);
}

#define PROBE_ACT(inst, a, cfg, r)                                                            \
    run_action(f, inst, a, "probe", "1.0.0", PROBE, "libprobe.so", cfg, "", r)

/* Events queued for one instance run one at a time, in order; the host is
 * busy meanwhile. */
static void test_serialized_per_instance(void **state)
{
    fixture_t *f = *state;
    result_t r;
    assert_int_equal(PROBE_ACT(INST_A, INSTALL, "{}", &r), 0);
    enum { N = 40 };
    result_t rs[N];
    int order[N + 1];
    g_order_next = 0;
    memset(rs, 0, sizeof rs);
    /* a slow start first: every event waits behind it */
    result_t start = {.order = order, .order_id = 0};
    assert_int_equal(queue_action(f, INST_A, START, "probe", "1.0.0", PROBE, "libprobe.so",
                                  "{\"start_sleep_ms\":50}", "", &start),
                     0);
    for (int i = 0; i < N; i++) {
        char body[16];
        snprintf(body, sizeof body, "%d", i + 1);
        rs[i].order = order;
        rs[i].order_id = i + 1;
        assert_int_equal(queue_event(f, INST_A, "POST", "/seq", body, &rs[i]), 0);
    }
    assert_true(ph_plugins_busy(f->p));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_false(ph_plugins_busy(f->p));
    assert_int_equal(start.done, 1);
    assert_int_equal(start.code, 0);
    assert_int_equal(g_order_next, N + 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(rs[i].done, 1);
        assert_int_equal(rs[i].code, 0);
        assert_int_equal(rs[i].status, 200); /* in order, never overlapping */
    }
    for (int i = 0; i <= N; i++)
        assert_int_equal(order[i], i);
    assert_int_equal(PROBE_ACT(INST_A, UNINSTALL, "{}", &r), 0);
}

/* Hooks run off the loop thread, and two instances run at the same time. */
static void test_worker_thread_and_parallel(void **state)
{
    fixture_t *f = *state;
    result_t r, ra, rb;
    assert_int_equal(PROBE_ACT(INST_A, INSTALL, "{}", &r), 0);
    assert_int_equal(PROBE_ACT(INST_B, INSTALL, "{}", &r), 0);
    assert_int_equal(run_event(f, INST_A, "/tid", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_not_equal(strtol(r.body, NULL, 10), (long)syscall(SYS_gettid));
    memset(&ra, 0, sizeof ra);
    memset(&rb, 0, sizeof rb);
    assert_int_equal(queue_event(f, INST_A, "POST", "/meet", NULL, &ra), 0);
    assert_int_equal(queue_event(f, INST_B, "POST", "/meet", NULL, &rb), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(ra.status, 200);
    assert_int_equal(rb.status, 200);
    assert_int_equal(PROBE_ACT(INST_A, UNINSTALL, "{}", &r), 0);
    assert_int_equal(PROBE_ACT(INST_B, UNINSTALL, "{}", &r), 0);
}

static void test_event_response(void **state)
{
    fixture_t *f = *state;
    result_t r;
    assert_int_equal(PROBE_ACT(INST_A, INSTALL, "{}", &r), 0);
    /* status, headers and body as the plugin set them */
    assert_int_equal(run_event(f, INST_A, "/echo", "ping body", &r), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body, "ping body");
    assert_string_equal(header(&r, "X-Method"), "POST");
    assert_string_equal(header(&r, "X-Path"), "/echo");
    assert_string_equal(header(&r, "X-Headers"), "2");
    assert_string_equal(header(&r, "X-Trace"), "abc");
    /* empty body */
    assert_int_equal(run_event(f, INST_A, "/echo", NULL, &r), 0);
    assert_int_equal(r.body_len, 0);
    /* a body over the limit is refused to the plugin */
    assert_int_equal(run_event(f, INST_A, "/big", NULL, &r), 0);
    assert_string_equal(r.body, "EMSGSIZE");
    /* on_event's negative return: status 500 and the error */
    assert_int_equal(run_event(f, INST_A, "/fail", NULL, &r), -EIO);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.message, "on_event"));
    /* a positive return breaks the contract */
    assert_int_equal(run_event(f, INST_A, "/positive", NULL, &r), -EPROTO);
    assert_int_equal(r.status, 500);
    assert_int_equal(run_event(f, INST_A, "/nope", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    assert_int_equal(PROBE_ACT(INST_A, UNINSTALL, "{}", &r), 0);
}

static void test_hook_errors(void **state)
{
    fixture_t *f = *state;
    result_t r;
    /* a failed install keeps the context (the hook ran) until uninstall */
    assert_int_equal(PROBE_ACT(INST_A, INSTALL, "{\"install_rc\":-22}", &r), -EINVAL);
    assert_non_null(strstr(r.message, "install hook"));
    assert_true(ph_plugins_has_instance(f->p, INST_A));
    assert_int_equal(PROBE_ACT(INST_A, INSTALL, "{}", &r), 0);
    assert_int_equal(PROBE_ACT(INST_A, ENABLE, "{\"enable_rc\":-5}", &r), -5);
    assert_int_equal(PROBE_ACT(INST_A, ENABLE, "{\"enable_rc\":3}", &r), -EPROTO);
    assert_non_null(strstr(r.message, "returned 3"));
    assert_int_equal(PROBE_ACT(INST_A, ENABLE, "{}", &r), 0);
    /* NULL hooks succeed */
    assert_int_equal(PROBE_ACT(INST_A, DISABLE, "{}", &r), 0);
    assert_int_equal(PROBE_ACT(INST_A, STOP, "{}", &r), 0);
    assert_int_equal(PROBE_ACT(INST_A, UNINSTALL, "{}", &r), 0);
    assert_int_equal(ph_plugins_instance_count(f->p), 0);
}

static void test_invalid_requests(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    assert_int_equal(queue_action(f, INST_A, PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UNKNOWN, "hello",
                                  "1.0.0", HELLO1, "libhello.so", "{}", "", &r),
                     -EINVAL);
    assert_int_equal(queue_action(f, INST_A, 99, "hello", "1.0.0", HELLO1, "libhello.so", "{}",
                                  "", &r),
                     -EINVAL);
    assert_int_equal(queue_action(f, "", START, "hello", "1.0.0", HELLO1, "libhello.so", "{}", "",
                                  &r),
                     -EINVAL);
    assert_int_equal(queue_event(f, INST_B, "POST", "/", NULL, &r), -ENOENT);
    assert_int_equal(ph_plugins_action(f->p, NULL, on_done, &r), -EINVAL);
    assert_int_equal(ph_plugins_event(f->p, NULL, on_done, &r), -EINVAL);
    assert_int_equal(r.done, 0);
    assert_int_equal(ph_plugins_instance_count(f->p), 0);
    assert_false(ph_plugins_busy(NULL));
    ph_plugins_close(NULL);
}

/* Uninstall then install queued back to back: the second starts from a
 * fresh context. */
static void test_uninstall_then_install_queued(void **state)
{
    fixture_t *f = *state;
    result_t r, r1 = {0}, r2 = {0}, r3 = {0};
    assert_int_equal(PROBE_ACT(INST_A, INSTALL, "{}", &r), 0);
    assert_int_equal(run_event(f, INST_A, "/seq", "1", &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(queue_action(f, INST_A, UNINSTALL, "probe", "1.0.0", PROBE, "libprobe.so",
                                  "{}", "", &r1),
                     0);
    assert_int_equal(queue_action(f, INST_A, INSTALL, "probe", "1.0.0", PROBE, "libprobe.so",
                                  "{}", "", &r2),
                     0);
    assert_int_equal(queue_event(f, INST_A, "POST", "/seq", "1", &r3), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r1.code, 0);
    assert_int_equal(r2.code, 0);
    assert_int_equal(r3.status, 200); /* sequence restarted: fresh user data */
    assert_int_equal(ph_plugins_instance_count(f->p), 1);
    assert_int_equal(PROBE_ACT(INST_A, UNINSTALL, "{}", &r), 0);
}

/* Closing cancels what has not started; the running hook finishes and the
 * runner frees itself after it. */
static void test_close_cancels_queued(void **state)
{
    fixture_t *f = *state;
    result_t start = {0}, e1 = {0}, e2 = {0};
    /* no install: the probe then holds no user data that would outlive the
     * runner (the host never frees a plugin's user data) */
    assert_int_equal(queue_action(f, INST_A, START, "probe", "1.0.0", PROBE, "libprobe.so",
                                  "{\"start_sleep_ms\":100}", "", &start),
                     0);
    assert_int_equal(queue_event(f, INST_A, "POST", "/seq", "1", &e1), 0);
    assert_int_equal(queue_event(f, INST_A, "POST", "/seq", "2", &e2), 0);
    ph_plugins_close(&f->p);
    assert_null(f->p);
    assert_int_equal(e1.done, 1);
    assert_int_equal(e1.code, -ECANCELED);
    assert_int_equal(e2.done, 1);
    assert_int_equal(e2.code, -ECANCELED);
    assert_int_equal(start.done, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(start.done, 1);
    assert_true(start.code == 0 || start.code == -ECANCELED); /* cancelled if not yet started */
}

int main(void)
{
    plat_log_init("test_plugins");
    plat_log_set_level(getenv("PLAT_TEST_DEBUG") ? PLAT_LOG_DEBUG : PLAT_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hello_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_keeps_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abi_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_symbol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serialized_per_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_thread_and_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hook_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uninstall_then_install_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels_queued, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
