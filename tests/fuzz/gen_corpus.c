/* Writes the seed corpora of fuzz_envelope and fuzz_router: real bus
 * messages, built with the same plat_msg_* builders and encoder the
 * daemons use, from and to the ids fuzz_router's peers have.
 *   gen_corpus <corpus dir>
 * writes <dir>/envelope/<name>.bin (one encoded message each) and
 * <dir>/router/<name>.bin (fuzz_common.h records). Run by
 * tests/fuzz/gen_corpus.sh, which also copies the config and manifest
 * seeds; the output is committed. Deterministic: same tree, same bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

#define REQ PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST
#define REP PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY
#define EVT PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT

static const char *g_dir;

static void die(const char *what)
{
    fprintf(stderr, "gen_corpus: %s\n", what);
    exit(1);
}

static void *xcalloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p)
        die("out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        die("out of memory");
    return p;
}

static void write_file(const char *sub, const char *name, const uint8_t *buf, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, sub);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s.bin", g_dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
        die(path);
}

/* A message: encoded, kept for the router seeds, written as an envelope seed. */
typedef struct {
    uint8_t *buf;
    size_t len;
} enc_t;

static enc_t msg(const char *name, Plat__PlatformMessage *m, const char *src, const char *dst,
                 uint64_t seq, Plat__MessageKind kind)
{
    enc_t e = {0};
    if (!m)
        die("builder failed");
    if (fuzz_encode(m, src, dst, seq, kind, &e.buf, &e.len) != 0)
        die(name);
    plat_envelope_free(&m);
    write_file("envelope", name, e.buf, e.len);
    return e;
}

/* ---- bodies the builders do not cover ---------------------------------- */

static Plat__PlatformMessage *resource_db(void)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE);
    Plat__ResourceRequest *r = xcalloc(sizeof *r);
    plat__resource_request__init(r);
    r->instance = xstrdup("00000000-0000-4000-8000-0000000000a1");
    r->kind = PLAT__RESOURCE_KIND__RESOURCE_KIND_DB;
    r->op_case = PLAT__RESOURCE_REQUEST__OP_DB;
    r->db = xcalloc(sizeof *r->db);
    plat__db_exec_request__init(r->db);
    r->db->sql = xstrdup("SELECT name FROM notes WHERE id = ?");
    r->db->n_params = 1;
    r->db->params = xcalloc(sizeof *r->db->params);
    r->db->params[0] = xcalloc(sizeof *r->db->params[0]);
    plat__db_value__init(r->db->params[0]);
    r->db->params[0]->value_case = PLAT__DB_VALUE__VALUE_TEXT;
    r->db->params[0]->text = xstrdup("a");
    m->resource->body_case = PLAT__RESOURCE_MESSAGE__BODY_REQUEST;
    m->resource->request = r;
    return m;
}

static Plat__PlatformMessage *resource_http(void)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE);
    Plat__ResourceRequest *r = xcalloc(sizeof *r);
    plat__resource_request__init(r);
    r->instance = xstrdup("00000000-0000-4000-8000-0000000000a1");
    r->kind = PLAT__RESOURCE_KIND__RESOURCE_KIND_HTTP;
    r->op_case = PLAT__RESOURCE_REQUEST__OP_HTTP;
    r->http = xcalloc(sizeof *r->http);
    plat__http_request__init(r->http);
    r->http->method = xstrdup("GET");
    r->http->url = xstrdup("http://127.0.0.1:9/x");
    m->resource->body_case = PLAT__RESOURCE_MESSAGE__BODY_REQUEST;
    m->resource->request = r;
    return m;
}

static Plat__PlatformMessage *resource_file(void)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE);
    Plat__ResourceRequest *r = xcalloc(sizeof *r);
    plat__resource_request__init(r);
    r->instance = xstrdup("00000000-0000-4000-8000-0000000000a1");
    r->kind = PLAT__RESOURCE_KIND__RESOURCE_KIND_FILE;
    r->op_case = PLAT__RESOURCE_REQUEST__OP_FILE;
    r->file = xcalloc(sizeof *r->file);
    plat__file_request__init(r->file);
    r->file->op = PLAT__FILE_OP__FILE_OP_WRITE;
    r->file->path = xstrdup("../notes.txt");
    r->file->data.data = (uint8_t *)xstrdup("hello");
    r->file->data.len = 5;
    m->resource->body_case = PLAT__RESOURCE_MESSAGE__BODY_REQUEST;
    m->resource->request = r;
    return m;
}

static Plat__PlatformMessage *ability_register(Plat__AbilityKind kind)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY);
    Plat__AbilityRegister *r = xcalloc(sizeof *r);
    plat__ability_register__init(r);
    r->instance = xstrdup("00000000-0000-4000-8000-0000000000a1");
    r->kind = kind;
    if (kind == PLAT__ABILITY_KIND__ABILITY_KIND_TASK) {
        r->name = xstrdup("nightly");
        r->cron = xstrdup("0 3 * * *");
    } else {
        r->port = 18080;
        r->health_path = xstrdup("/health");
    }
    m->ability->body_case = PLAT__ABILITY_MESSAGE__BODY_REGISTER;
    m->ability->register_ = r;
    return m;
}

static Plat__PlatformMessage *ability_result(void)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY);
    Plat__AbilityResult *r = xcalloc(sizeof *r);
    plat__ability_result__init(r);
    m->ability->body_case = PLAT__ABILITY_MESSAGE__BODY_RESULT;
    m->ability->result = r;
    return m;
}

static Plat__PlatformMessage *error_reply(void)
{
    Plat__PlatformMessage *m = plat_msg_new_empty();
    if (!m || plat_msg_set_error(m, -ENOENT, "no such thing", "detail"))
        die("error reply");
    return m;
}

/* ---- router seeds ------------------------------------------------------- */

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} seq_t;

static void rec(seq_t *s, uint8_t flags, const enc_t *e)
{
    if (e->len > 0xffff)
        die("record too long");
    size_t need = s->len + 3 + e->len;
    if (need > s->cap) {
        s->cap = need * 2;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf)
            die("out of memory");
    }
    s->buf[s->len++] = flags;
    s->buf[s->len++] = (uint8_t)(e->len & 0xff);
    s->buf[s->len++] = (uint8_t)(e->len >> 8);
    memcpy(s->buf + s->len, e->buf, e->len);
    s->len += e->len;
}

static void router_seed(const char *name, seq_t *s)
{
    write_file("router", name, s->buf, s->len);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus <corpus dir>\n");
        return 2;
    }
    g_dir = argv[1];
    mkdir(g_dir, 0755);
    const char *HB = FUZZ_HOSTBOOT_ID, *H = FUZZ_HOST_ID, *P = PLAT_PLATFORM_ID,
               *OTHER = FUZZ_OTHER_HOST_ID;
    plat_runtime_t rts[2] = {{"c", "1"}, {"python", "3.11"}};

    /* Control */
    enc_t ready = msg("control_ready", plat_msg_host_ready(H, 4242, "c", "1", "dev", "0.1.0", 1),
                      H, P, 1, REQ);
    enc_t ready_spawned =
        msg("control_ready_spawned",
            plat_msg_host_ready(OTHER, 4243, "c", "1", "highPerformance", "0.1.0", 0), OTHER, P,
            1, REQ);
    enc_t ping = msg("control_ping", plat_msg_ping(FUZZ_BOOT_ID), P, H, 7, REQ);
    enc_t pong = msg("control_pong", plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY), H, P, 7,
                     REP);
    enc_t pong_req = msg("control_pong_request",
                         plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_BUSY), H, P, 8, REQ);
    enc_t ack = msg("control_register_ack", plat_msg_register_ack(FUZZ_BOOT_ID, 1000, 3), P, H, 1,
                    REP);
    enc_t shutdown = msg("control_shutdown", plat_msg_shutdown("leftover"), P, H, 9, REQ);

    /* HostBoot */
    Plat__PlatformMessage *reg = plat_msg_hostboot_register(FUZZ_HOSTBOOT_NAME, "0.1.0", rts, 2);
    if (!reg || plat_msg_report_add_host(reg, OTHER, 4243, "c", "1", "highPerformance"))
        die("register");
    enc_t hb_reg = msg("hostboot_register", reg, HB, P, 1, REQ);
    enc_t hb_beat = msg("hostboot_heartbeat", plat_msg_hostboot_heartbeat(FUZZ_HOSTBOOT_NAME, 1,
                                                                          123456),
                        HB, P, 0, EVT);
    enc_t hb_exit = msg("hostboot_host_exited",
                        plat_msg_hostboot_host_exited(FUZZ_HOSTBOOT_NAME, H, 4242, 0, 31), HB, P,
                        0, EVT);
    enc_t hb_exit_other = msg("hostboot_host_exited_unknown",
                              plat_msg_hostboot_host_exited(FUZZ_HOSTBOOT_NAME, OTHER, 1, 3, 0),
                              HB, P, 0, EVT);
    enc_t lc_start = msg("hostboot_lifecycle_start",
                         plat_msg_host_lifecycle_request(
                             PLAT__HOST_LIFE_CYCLE_REQUEST_MESSAGE__ACTION__START, OTHER, "c",
                             "1", "highPerformance", 0),
                         P, HB, 3, REQ);
    enc_t lc_delete = msg("hostboot_lifecycle_delete",
                          plat_msg_host_lifecycle_request(
                              PLAT__HOST_LIFE_CYCLE_REQUEST_MESSAGE__ACTION__DELETE, H, NULL,
                              NULL, NULL, 4242),
                          P, HB, 4, REQ);
    enc_t lc_ok = msg("hostboot_lifecycle_response",
                      plat_msg_host_lifecycle_response(OTHER, 4243,
                                                       PLAT__HOST_STATE__HOST_STATE_STARTING,
                                                       FUZZ_HOSTBOOT_ID, 0, NULL, NULL),
                      HB, P, 3, REP);
    enc_t lc_err = msg("hostboot_lifecycle_error",
                       plat_msg_host_lifecycle_response(OTHER, 0,
                                                        PLAT__HOST_STATE__HOST_STATE_STARTING,
                                                        FUZZ_HOSTBOOT_ID, -ENOENT,
                                                        "no runtime", "c 9"),
                       HB, P, 3, REP);

    /* Plugin */
    enc_t action = msg("plugin_action",
                       plat_msg_plugin_action("00000000-0000-4000-8000-0000000000a1",
                                              PLAT__PLUGIN_ACTION__PLUGIN_ACTION_START, "hello",
                                              "1.0.0", "/tmp/pkg", "libhello.so", "{\"a\":1}",
                                              NULL, "acme", 10000),
                       P, H, 5, REQ);
    Plat__HttpHeader hdr = PLAT__HTTP_HEADER__INIT;
    hdr.name = "Content-Type";
    hdr.value = "text/plain";
    const Plat__HttpHeader *hdrs[] = {&hdr};
    enc_t event = msg("plugin_event",
                      plat_msg_plugin_event("00000000-0000-4000-8000-0000000000a1", "POST",
                                            "/x?y=1", hdrs, 1, (const uint8_t *)"ping", 4),
                      P, H, 6, REQ);
    enc_t result_ok = msg("plugin_action_result", plat_msg_plugin_action_result(0, NULL, NULL),
                          H, P, 5, REP);
    enc_t result_err = msg("plugin_action_result_error",
                           plat_msg_plugin_action_result(-EIO, "hook failed", "start"), H, P, 5,
                           REP);
    enc_t response = msg("plugin_response",
                         plat_msg_plugin_response(200, "text/plain", (const uint8_t *)"ok", 2, 0,
                                                  NULL),
                         H, P, 6, REP);

    /* Resource, Ability, pure error */
    enc_t res_db = msg("resource_db", resource_db(), H, P, 10, REQ);
    enc_t res_http = msg("resource_http", resource_http(), H, P, 11, REQ);
    enc_t res_file = msg("resource_file", resource_file(), H, P, 12, REQ);
    enc_t ab_task = msg("ability_register_task",
                        ability_register(PLAT__ABILITY_KIND__ABILITY_KIND_TASK), H, P, 13, REQ);
    enc_t ab_svc = msg("ability_register_service",
                       ability_register(PLAT__ABILITY_KIND__ABILITY_KIND_SERVICE), H, P, 14, REQ);
    enc_t ab_result = msg("ability_result", ability_result(), H, P, 15, REP);
    enc_t err = msg("error_reply", error_reply(), H, P, 16, REP);

    /* Forwarding: host → hostboot, host → a host nobody registered, and a
     * hostboot message to the host. */
    enc_t fwd_hb = msg("forward_host_to_hostboot",
                       plat_msg_hostboot_heartbeat(FUZZ_HOSTBOOT_NAME, 0, 1), H, HB, 17, REQ);
    enc_t fwd_unknown = msg("forward_to_unknown", plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY),
                            H, OTHER, 18, REQ);
    enc_t fwd_action = msg("forward_hostboot_to_host",
                           plat_msg_plugin_action_result(0, NULL, NULL), HB, H, 19, REP);
    /* Spoofed: the host claims to be the hostboot. */
    enc_t spoof = msg("spoofed_source", plat_msg_hostboot_heartbeat(FUZZ_HOSTBOOT_NAME, 0, 1), HB,
                      P, 0, EVT);

    const uint8_t F_HB = 0, F_HOST = FUZZ_ROUTER_FROM_HOST;
    seq_t s = {0};
    rec(&s, F_HB, &hb_reg);
    rec(&s, F_HB, &hb_beat);
    router_seed("hostboot_register_heartbeat", &s);
    rec(&s, F_HOST, &ready);
    rec(&s, F_HOST, &pong);
    rec(&s, F_HOST, &pong_req);
    router_seed("host_ready_pong", &s);
    rec(&s, F_HB, &hb_exit);
    rec(&s, F_HOST, &ready);
    router_seed("host_exited_then_ready", &s);
    rec(&s, F_HB, &hb_exit_other);
    rec(&s, F_HB, &lc_ok);
    rec(&s, F_HB, &lc_err);
    router_seed("hostboot_reports_and_late_replies", &s);
    rec(&s, F_HOST, &res_db);
    rec(&s, F_HOST, &res_http);
    rec(&s, F_HOST, &res_file);
    router_seed("resource_requests", &s);
    rec(&s, F_HOST, &ab_task);
    rec(&s, F_HOST, &ab_svc);
    rec(&s, F_HOST, &ab_result);
    router_seed("ability_messages", &s);
    rec(&s, F_HOST, &result_ok);
    rec(&s, F_HOST, &result_err);
    rec(&s, F_HOST, &response);
    rec(&s, F_HOST, &err);
    router_seed("replies_to_the_platform", &s);
    rec(&s, F_HOST, &fwd_hb);
    rec(&s, F_HOST, &fwd_unknown);
    rec(&s, F_HB, &fwd_action);
    router_seed("forwarding", &s);
    rec(&s, F_HOST, &spoof);
    rec(&s, F_HOST, &ready_spawned);
    rec(&s, F_HOST | FUZZ_ROUTER_TWO_FRAMES, &hb_beat);
    enc_t garbage = {(uint8_t *)"\x0a\x05garbage", 9};
    rec(&s, F_HB, &garbage);
    router_seed("hostile_frames", &s);
    rec(&s, F_HOST, &ping);
    rec(&s, F_HOST, &ack);
    rec(&s, F_HOST, &shutdown);
    rec(&s, F_HOST, &action);
    rec(&s, F_HOST, &event);
    rec(&s, F_HB, &lc_start);
    rec(&s, F_HB, &lc_delete);
    router_seed("platform_messages_sent_back", &s);

    enc_t all[] = {ready, ready_spawned, ping, pong, pong_req, ack, shutdown, hb_reg, hb_beat,
                   hb_exit, hb_exit_other, lc_start, lc_delete, lc_ok, lc_err, action, event,
                   result_ok, result_err, response, res_db, res_http, res_file, ab_task,
                   ab_svc, ab_result, err, fwd_hb, fwd_unknown, fwd_action, spoof};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i].buf);
    return 0;
}
