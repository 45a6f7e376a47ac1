/* Scheduled tasks end to end on the platform side (docs/tasks.md): the
 * real platformd, and the test itself playing a dev plugin host on the bus
 * (it answers the lifecycle hooks and the task triggers) plus, for the
 * restart, a hostboot (whose registration starts the reconciliation).
 *  a) an instance registers a seconds-level task: triggers arrive every
 *     second, one at a time (a run not answered yet makes the next ones
 *     skipped), the registration is in SQLite when the reply comes; bad
 *     cron (the field named), bad names, a 65th task, an unknown task, a
 *     host speaking for an instance that is not on it: all refused; a
 *     stopped instance gets no trigger, a started one gets them again;
 *     uninstall removes its tasks;
 *  b) the registration survives kill -9 of platformd; the run missed while
 *     it was down is fired once, with missed = true and its scheduled time,
 *     after the instance is brought back; then the regular runs follow;
 *  c) the manifest's abilities are enforced (docs/packages.md): a task name
 *     not declared, any task or service of a package without abilities, a
 *     service on a port other than the declared one, and platformd's own
 *     HTTP and bus ports and ports < 1024 even when declared: all -EACCES,
 *     counted in plat_ability_denied_total.
 * (a and b use a package declaring {"kind": "task", "name": "*"}: any name.)
 * Lifecycle actions block their HTTP request until the host answered, so
 * they are posted from a helper thread while the test serves the bus. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "harness.h"
#include "plat/plat.h"
#include "testports.h"

#define HB_INTERVAL_MS 250
#define HB_MISS 8
#define ACTION_TIMEOUT_MS 6000
#define MAX_TRIGGERS 512

static uint64_t wall_ms(void)
{
    return plat_now_ms();
}

/* ---- the fake dev host ----------------------------------------------------- */

typedef struct {
    char instance[64];
    char name[80];
    int64_t scheduled;
    bool missed;
    uint64_t seq;   /* to answer it later */
    uint64_t at_ms; /* wall clock when received */
    bool answered;
} trig_t;

typedef struct {
    it_env_t *env;
    it_client_t *host;
    it_client_t *others[4]; /* pumped for pings */
    size_t n_others;
    trig_t trig[MAX_TRIGGERS];
    size_t n_trig;
    int actions[16]; /* Plat__PluginAction received, by value */
    size_t n_actions;
    bool hold;        /* leave triggers unanswered */
    int trigger_code; /* answer triggers with this error (0 = ok) */
    /* The last Ability reply to one of our requests. */
    uint64_t reply_seq;
    int reply_code;
    char reply_detail[256];
} fake_t;

static Plat__PlatformMessage *ability_msg(void)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY);
    assert_non_null(m);
    return m;
}

static void answer_trigger(fake_t *f, trig_t *t, int code)
{
    Plat__PlatformMessage *m = ability_msg();
    Plat__AbilityResult *r = malloc(sizeof *r);
    assert_non_null(r);
    plat__ability_result__init(r);
    m->ability->body_case = PLAT__ABILITY_MESSAGE__BODY_RESULT;
    m->ability->result = r;
    if (code) {
        r->error = malloc(sizeof *r->error);
        assert_non_null(r->error);
        plat__error_message__init(r->error);
        r->error->code = code;
        r->error->message = plat_msg_strdup("task hook failed");
        r->error->detail = plat_msg_strdup("");
    }
    it_client_send(f->host, m, it_client_id(f->host), PLAT_PLATFORM_ID, t->seq,
                   PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY, NULL, NULL);
    plat_envelope_free(&m);
    t->answered = true;
}

/* Receive one message (up to timeout_ms) and deal with it as a host would. */
static void serve(fake_t *f, int timeout_ms)
{
    for (size_t i = 0; i < f->n_others; i++)
        it_client_pump(f->others[i]);
    Plat__PlatformMessage *m = NULL;
    if (it_client_recv(f->host, timeout_ms, &m, NULL, NULL) != 0)
        return;
    const Plat__Header *h = m->header;
    bool request = h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST;
    if (request && m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN &&
        m->plugin->body_case == PLAT__PLUGIN_MESSAGE__BODY_ACTION) {
        if (f->n_actions < 16)
            f->actions[f->n_actions++] = (int)m->plugin->action->action;
        Plat__PlatformMessage *r = plat_msg_plugin_action_result(0, NULL, NULL);
        assert_non_null(r);
        it_client_send(f->host, r, it_client_id(f->host), PLAT_PLATFORM_ID, h->seq_no,
                       PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY, NULL, NULL);
        plat_envelope_free(&r);
    } else if (request && m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY &&
               m->ability->body_case == PLAT__ABILITY_MESSAGE__BODY_TRIGGER) {
        const Plat__AbilityTrigger *tr = m->ability->trigger;
        IT_CHECK(f->env, f->n_trig < MAX_TRIGGERS, "too many triggers");
        IT_CHECK(f->env, tr->kind == PLAT__ABILITY_KIND__ABILITY_KIND_TASK, "trigger kind TASK");
        trig_t *t = &f->trig[f->n_trig++];
        memset(t, 0, sizeof *t);
        snprintf(t->instance, sizeof t->instance, "%s", tr->instance);
        snprintf(t->name, sizeof t->name, "%s", tr->name);
        t->scheduled = tr->scheduled_unix_ms;
        t->missed = tr->missed;
        t->seq = h->seq_no;
        t->at_ms = wall_ms();
        if (!f->hold)
            answer_trigger(f, t, f->trigger_code);
    } else if (h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY &&
               (m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY || h->error)) {
        const Plat__ErrorMessage *e = h->error;
        if (!e && m->ability->body_case == PLAT__ABILITY_MESSAGE__BODY_RESULT)
            e = m->ability->result->error;
        f->reply_seq = h->seq_no;
        f->reply_code = e ? e->code : 0;
        snprintf(f->reply_detail, sizeof f->reply_detail, "%s %s", e ? e->message : "",
                 e ? e->detail : "");
    } else {
        char desc[160];
        snprintf(desc, sizeof desc, "kind %d channel %s", (int)h->kind,
                 plat_channel_name(m->channel_case));
        plat_envelope_free(&m);
        it_fail(f->env, "the fake host got an unexpected message: %s", desc);
    }
    plat_envelope_free(&m);
}

/* Serve for `ms` of wall time. */
static void serve_for(fake_t *f, uint64_t ms)
{
    uint64_t end = it_now_ms() + ms;
    for (uint64_t now = it_now_ms(); now < end; now = it_now_ms())
        serve(f, (int)(end - now < 50 ? end - now : 50));
}

/* Send an Ability request from `c` (the fake host unless another client)
 * and wait for its reply; returns the code. */
static int ability_request(fake_t *f, it_client_t *c, Plat__PlatformMessage *m)
{
    uint64_t seq = it_client_next_seq(c);
    it_client_send(c, m, it_client_id(c), PLAT_PLATFORM_ID, seq,
                   PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST, NULL, NULL);
    plat_envelope_free(&m);
    f->reply_seq = 0;
    uint64_t end = it_now_ms() + IT_DEADLINE_MS;
    if (c != f->host) { /* a client that is not served: wait on it alone */
        Plat__PlatformMessage *r = NULL;
        IT_CHECK(f->env, it_client_recv(c, IT_DEADLINE_MS, &r, NULL, NULL) == 0,
                 "no answer to the ability request");
        IT_CHECK(f->env, r->header->seq_no == seq, "answer to our request");
        const Plat__ErrorMessage *e = r->header->error;
        if (!e && r->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY &&
            r->ability->body_case == PLAT__ABILITY_MESSAGE__BODY_RESULT)
            e = r->ability->result->error;
        int code = e ? e->code : 0;
        plat_envelope_free(&r);
        return code;
    }
    while (f->reply_seq != seq) {
        IT_CHECK(f->env, it_now_ms() < end, "no answer to ability request seq %llu",
                 (unsigned long long)seq);
        serve(f, 50);
    }
    return f->reply_code;
}

static int register_task(fake_t *f, it_client_t *c, const char *instance, const char *name,
                         const char *cron, int kind)
{
    Plat__PlatformMessage *m = ability_msg();
    Plat__AbilityRegister *r = malloc(sizeof *r);
    assert_non_null(r);
    plat__ability_register__init(r);
    m->ability->body_case = PLAT__ABILITY_MESSAGE__BODY_REGISTER;
    m->ability->register_ = r;
    r->instance = plat_msg_strdup(instance);
    r->kind = kind;
    r->name = plat_msg_strdup(name);
    r->cron = plat_msg_strdup(cron);
    return ability_request(f, c ? c : f->host, m);
}

static int register_service(fake_t *f, const char *instance, unsigned port)
{
    Plat__PlatformMessage *m = ability_msg();
    Plat__AbilityRegister *r = malloc(sizeof *r);
    assert_non_null(r);
    plat__ability_register__init(r);
    m->ability->body_case = PLAT__ABILITY_MESSAGE__BODY_REGISTER;
    m->ability->register_ = r;
    r->instance = plat_msg_strdup(instance);
    r->kind = PLAT__ABILITY_KIND__ABILITY_KIND_SERVICE;
    r->name = plat_msg_strdup("");
    r->port = port;
    r->health_path = plat_msg_strdup("/health");
    return ability_request(f, f->host, m);
}

static int unregister_service(fake_t *f, const char *instance)
{
    Plat__PlatformMessage *m = ability_msg();
    Plat__AbilityUnregister *u = malloc(sizeof *u);
    assert_non_null(u);
    plat__ability_unregister__init(u);
    m->ability->body_case = PLAT__ABILITY_MESSAGE__BODY_UNREGISTER;
    m->ability->unregister = u;
    u->instance = plat_msg_strdup(instance);
    u->kind = PLAT__ABILITY_KIND__ABILITY_KIND_SERVICE;
    u->name = plat_msg_strdup("");
    return ability_request(f, f->host, m);
}

static int unregister_task(fake_t *f, const char *instance, const char *name)
{
    Plat__PlatformMessage *m = ability_msg();
    Plat__AbilityUnregister *u = malloc(sizeof *u);
    assert_non_null(u);
    plat__ability_unregister__init(u);
    m->ability->body_case = PLAT__ABILITY_MESSAGE__BODY_UNREGISTER;
    m->ability->unregister = u;
    u->instance = plat_msg_strdup(instance);
    u->kind = PLAT__ABILITY_KIND__ABILITY_KIND_TASK;
    u->name = plat_msg_strdup(name);
    return ability_request(f, f->host, m);
}

/* Triggers of task `name` received from index `from` on. */
static size_t count_triggers(const fake_t *f, size_t from, const char *name)
{
    size_t n = 0;
    for (size_t i = from; i < f->n_trig; i++)
        n += strcmp(f->trig[i].name, name) == 0;
    return n;
}

/* Serve until `n` triggers of `name` arrived after index `from`. */
static void wait_triggers(fake_t *f, size_t from, const char *name, size_t n, int timeout_ms)
{
    uint64_t end = it_now_ms() + (uint64_t)timeout_ms;
    while (count_triggers(f, from, name) < n) {
        IT_CHECK(f->env, it_now_ms() < end, "%zu triggers of %s within %d ms (got %zu)", n, name,
                 timeout_ms, count_triggers(f, from, name));
        serve(f, 50);
    }
}

/* ---- HTTP actions from a helper thread --------------------------------------- */

typedef struct {
    char url[256];
    char auth[256];
    char *body; /* request body (JSON) or NULL */
    char *resp; /* response body */
    size_t resp_len;
    long status;
    atomic_bool done;
} http_job_t;

static size_t on_resp(char *p, size_t sz, size_t n, void *arg)
{
    http_job_t *j = arg;
    char *r = realloc(j->resp, j->resp_len + sz * n + 1);
    if (!r)
        return 0;
    memcpy(r + j->resp_len, p, sz * n);
    j->resp = r;
    j->resp_len += sz * n;
    j->resp[j->resp_len] = 0;
    return sz * n;
}

static void *http_thread(void *arg)
{
    http_job_t *j = arg;
    CURL *c = curl_easy_init();
    if (c) {
        struct curl_slist *h = curl_slist_append(NULL, j->auth);
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_URL, j->url);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->body ? j->body : "");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_resp);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &j->status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
    }
    atomic_store(&j->done, true);
    return NULL;
}

/* POST `path` with `body` (borrowed, may be NULL) while serving the bus;
 * returns the status and *resp (owned; may be NULL). */
static int post_served(fake_t *f, const char *path, json_t *body, json_t **resp)
{
    http_job_t *j = calloc(1, sizeof *j);
    assert_non_null(j);
    snprintf(j->url, sizeof j->url, "http://127.0.0.1:%d%s", it_http_port(f->env), path);
    char tpath[IT_PATH_MAX + 32], tok[160] = "";
    snprintf(tpath, sizeof tpath, "%s/platform-state/api-token", it_dir(f->env));
    FILE *tf = fopen(tpath, "r");
    IT_CHECK(f->env, tf != NULL, "token file %s", tpath);
    if (!fgets(tok, sizeof tok, tf))
        tok[0] = 0;
    fclose(tf);
    tok[strcspn(tok, "\r\n")] = 0;
    snprintf(j->auth, sizeof j->auth, "Authorization: Bearer %s", tok);
    j->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, http_thread, j), 0);
    while (!atomic_load(&j->done))
        serve(f, 20);
    pthread_join(th, NULL);
    int st = (int)j->status;
    if (resp)
        *resp = j->resp ? json_loads(j->resp, 0, NULL) : NULL;
    if (st < 200 || st > 299)
        fprintf(stderr, "POST %s: %d %s\n", path, st, j->resp ? j->resp : "");
    free(j->body);
    free(j->resp);
    free(j);
    return st;
}

static void act(fake_t *f, const char *uuid, const char *action)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s/%s", uuid, action);
    int st = post_served(f, path, NULL, NULL);
    IT_CHECK(f->env, st == 200, "%s %s: 200 (got %d)", action, uuid, st);
}

/* ---- setup helpers -------------------------------------------------------------- */

static const char *start_platformd(it_env_t *env, it_proc_t **pd)
{
    json_t *extra = json_pack("{s:{s:i}}", "plugins", "action_timeout_ms", ACTION_TIMEOUT_MS);
    const char *cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, extra);
    json_decref(extra);
    *pd = it_start_platformd(env, cfg);
    it_wait_healthy(env, IT_DEADLINE_MS);
    return cfg;
}

/* A dev-mode package `id` whose entry is never loaded (the test is its
 * host), declaring `abilities` (stolen; NULL: none). */
static void register_package_as(it_env_t *env, const char *id, json_t *abilities)
{
    char dir[IT_PATH_MAX + 96], file[IT_PATH_MAX + 160];
    snprintf(dir, sizeof dir, "%s/%s-pkg", it_dir(env), id);
    IT_CHECK(env, mkdir(dir, 0750) == 0, "mkdir %s", dir);
    snprintf(file, sizeof file, "%s/libticker.so", dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    IT_CHECK(env, fd >= 0 && write(fd, "x", 1) == 1 && close(fd) == 0, "write %s", file);
    json_t *m =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "version", "1.0.0", "language", "c",
                  "runtime_version", "1", "entry", "libticker.so", "host_mode", "dev");
    if (abilities)
        json_object_set_new(m, "abilities", abilities);
    snprintf(file, sizeof file, "%s/manifest.json", dir);
    IT_CHECK(env, json_dump_file(m, file, 0) == 0, "write %s", file);
    json_decref(m);
    json_t *req = json_pack("{s:s}", "path", dir);
    int st = it_http_post(env, "/api/v1/packages", req, NULL);
    json_decref(req);
    IT_CHECK(env, st == 201, "package %s registered (got %d)", id, st);
}

/* "ticker": may register tasks of any name. */
static void register_package(it_env_t *env)
{
    register_package_as(
        env, "ticker",
        json_pack("[{s:s, s:s, s:s}]", "kind", "task", "name", "*", "spec", "* * * * *"));
}

/* Install, enable, start an instance of `plugin` on the fake dev host. */
static void running_instance_of(fake_t *f, const char *plugin, char uuid[64])
{
    json_t *req = json_pack("{s:s, s:s, s:s}", "plugin", plugin, "version", "1.0.0", "org", "acme");
    json_t *resp = NULL;
    int st = post_served(f, "/api/v1/instances", req, &resp);
    json_decref(req);
    IT_CHECK(f->env, st == 201, "install: 201 (got %d)", st);
    json_t *u = it_json_path(resp, "instance.uuid");
    IT_CHECK(f->env, json_is_string(u), "install answers the instance");
    snprintf(uuid, 64, "%s", json_string_value(u));
    json_decref(resp);
    act(f, uuid, "enable");
    act(f, uuid, "start");
}

static void running_instance(fake_t *f, char uuid[64])
{
    running_instance_of(f, "ticker", uuid);
}

/* Rows of the platform's tasks table for `uuid` (read beside platformd:
 * WAL lets readers in). -1 when the file cannot be read. */
static int stored_tasks(it_env_t *env, const char *uuid)
{
    char path[IT_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/platform-state/platform.db", it_dir(env));
    sqlite3 *db = NULL;
    int n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM tasks WHERE instance = ?1", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, uuid, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int(st, 0);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

/* ---- a) registration, triggers, rules -------------------------------------------- */

static void test_register_and_trigger(void **state)
{
    it_env_t *env = *state;
    it_set_strict_logs(env, true);
    it_proc_t *pd = NULL;
    start_platformd(env, &pd);
    static fake_t fk;
    fake_t *f = &fk;
    memset(f, 0, sizeof *f);
    f->env = env;
    char host_id[64];
    it_new_host_id(host_id);
    f->host = it_client_new(env, host_id);
    it_client_register(f->host, NULL, NULL);
    register_package(env);
    char uuid[64];
    running_instance(f, uuid);

    /* A seconds-level task: committed before the reply. */
    IT_CHECK(env,
             register_task(f, NULL, uuid, "tick", "* * * * * *",
                           PLAT__ABILITY_KIND__ABILITY_KIND_TASK) == 0,
             "register tick: %s", f->reply_detail);
    IT_CHECK(env, stored_tasks(env, uuid) == 1, "tick stored (%d)", stored_tasks(env, uuid));

    /* Refusals. */
    int rc =
        register_task(f, NULL, uuid, "bad", "* * * * 8", PLAT__ABILITY_KIND__ABILITY_KIND_TASK);
    IT_CHECK(env, rc == -EINVAL && strstr(f->reply_detail, "day-of-week"),
             "bad cron refused naming the field: %d %s", rc, f->reply_detail);
    rc = register_task(f, NULL, uuid, "two words", "* * * * *",
                       PLAT__ABILITY_KIND__ABILITY_KIND_TASK);
    IT_CHECK(env, rc == -EINVAL && strstr(f->reply_detail, "name"), "bad name: %d %s", rc,
             f->reply_detail);
    rc = register_task(f, NULL, uuid, "", "* * * * *", PLAT__ABILITY_KIND__ABILITY_KIND_TASK);
    IT_CHECK(env, rc == -EINVAL, "empty name: %d", rc);
    char longname[80];
    memset(longname, 'x', 65);
    longname[65] = 0;
    rc = register_task(f, NULL, uuid, longname, "* * * * *", PLAT__ABILITY_KIND__ABILITY_KIND_TASK);
    IT_CHECK(env, rc == -EINVAL, "65-character name: %d", rc);
    rc = register_task(f, NULL, uuid, "k", "* * * * *", PLAT__ABILITY_KIND__ABILITY_KIND_UNKNOWN);
    IT_CHECK(env, rc == -EINVAL, "unknown kind: %d", rc);
    IT_CHECK(env, unregister_task(f, uuid, "nope") == -ENOENT, "unknown task: -ENOENT");
    /* Another host may not speak for the instance. */
    char other_id[64];
    it_new_host_id(other_id);
    it_client_t *other = it_client_new(env, other_id);
    it_client_register(other, NULL, NULL);
    f->others[f->n_others++] = other;
    rc = register_task(f, other, uuid, "intruder", "* * * * *",
                       PLAT__ABILITY_KIND__ABILITY_KIND_TASK);
    IT_CHECK(env, rc == -EACCES, "a host the instance is not on: -EACCES (got %d)", rc);
    /* 64 tasks at most. */
    for (int i = 1; i < 64; i++) {
        char name[16];
        snprintf(name, sizeof name, "yearly-%d", i);
        IT_CHECK(env,
                 register_task(f, NULL, uuid, name, "@yearly",
                               PLAT__ABILITY_KIND__ABILITY_KIND_TASK) == 0,
                 "task %d of 64", i + 1);
    }
    rc = register_task(f, NULL, uuid, "one-too-many", "@yearly",
                       PLAT__ABILITY_KIND__ABILITY_KIND_TASK);
    IT_CHECK(env, rc == -ENOSPC, "the 65th task: -ENOSPC (got %d)", rc);
    IT_CHECK(env, stored_tasks(env, uuid) == 64, "64 stored (%d)", stored_tasks(env, uuid));

    /* Triggers every second, on whole seconds, in order. */
    size_t from = f->n_trig;
    wait_triggers(f, from, "tick", 3, 10000);
    for (size_t i = from; i < f->n_trig; i++) {
        trig_t *t = &f->trig[i];
        IT_CHECK(env, strcmp(t->instance, uuid) == 0 && strcmp(t->name, "tick") == 0,
                 "trigger for tick of the instance");
        IT_CHECK(env, !t->missed, "not missed");
        bool whole = t->scheduled / 1000 * 1000 == t->scheduled;
        IT_CHECK(env, whole, "on a whole second");
        IT_CHECK(env, t->at_ms + 200 >= (uint64_t)t->scheduled, "not early");
        if (i > from)
            IT_CHECK(env, t->scheduled > f->trig[i - 1].scheduled, "in order");
    }

    /* One run at a time: while a trigger is unanswered no other comes. */
    f->hold = true;
    from = f->n_trig;
    wait_triggers(f, from, "tick", 1, 5000);
    serve_for(f, 2500);
    IT_CHECK(env, count_triggers(f, from, "tick") == 1,
             "no trigger while the previous run is in flight (got %zu)",
             count_triggers(f, from, "tick"));
    answer_trigger(f, &f->trig[from], 0);
    f->hold = false;
    from = f->n_trig;
    wait_triggers(f, from, "tick", 1, 5000);
    /* A failing hook is just a failed run: the next ones still come. */
    f->trigger_code = -EIO;
    from = f->n_trig;
    wait_triggers(f, from, "tick", 1, 5000);
    f->trigger_code = 0;
    from = f->n_trig;
    wait_triggers(f, from, "tick", 1, 5000);

    /* A stopped instance gets nothing; started again, it does. */
    act(f, uuid, "stop");
    serve_for(f, 300); /* a trigger sent before the stop may still land */
    from = f->n_trig;
    serve_for(f, 2200);
    IT_CHECK(env, count_triggers(f, from, "tick") == 0, "no trigger while stopped (got %zu)",
             count_triggers(f, from, "tick"));
    act(f, uuid, "start");
    from = f->n_trig;
    wait_triggers(f, from, "tick", 2, 6000);

    /* Unregistered: no more. */
    IT_CHECK(env, unregister_task(f, uuid, "tick") == 0, "unregister tick");
    IT_CHECK(env, stored_tasks(env, uuid) == 63, "63 left (%d)", stored_tasks(env, uuid));
    serve_for(f, 300);
    from = f->n_trig;
    serve_for(f, 1800);
    IT_CHECK(env, count_triggers(f, from, "tick") == 0, "none after unregister (got %zu)",
             count_triggers(f, from, "tick"));

    /* Uninstall takes the tasks along. */
    act(f, uuid, "stop");
    act(f, uuid, "uninstall");
    IT_CHECK(env, stored_tasks(env, uuid) == 0, "no task left after uninstall (%d)",
             stored_tasks(env, uuid));
    it_stop(pd, IT_STOP_DEADLINE_MS);
}

/* ---- b) restart: persistence and the missed run --------------------------------------- */

static void register_hostboot(it_env_t *env, it_client_t *hb)
{
    plat_runtime_t rt = {"c", "1"};
    Plat__PlatformMessage *m = plat_msg_hostboot_register("fake", "1", &rt, 1);
    assert_non_null(m);
    uint64_t seq = it_client_next_seq(hb);
    it_client_send(hb, m, it_client_id(hb), PLAT_PLATFORM_ID, seq,
                   PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST, NULL, NULL);
    plat_envelope_free(&m);
    Plat__PlatformMessage *r = NULL;
    IT_CHECK(env, it_client_recv(hb, IT_DEADLINE_MS, &r, NULL, NULL) == 0,
             "hostboot register answered");
    IT_CHECK(env, r->header->seq_no == seq && !r->header->error, "hostboot registered");
    plat_envelope_free(&r);
}

static void test_restart_and_missed(void **state)
{
    it_env_t *env = *state;
    it_proc_t *pd = NULL;
    const char *cfg = start_platformd(env, &pd);
    static fake_t fk;
    fake_t *f = &fk;
    memset(f, 0, sizeof *f);
    f->env = env;
    char host_id[64];
    it_new_host_id(host_id);
    f->host = it_client_new(env, host_id);
    it_client_register(f->host, NULL, NULL);
    it_client_t *hb = it_client_new(env, "hostboot-fake");
    register_hostboot(env, hb);
    f->others[f->n_others++] = hb;
    register_package(env);
    char uuid[64];
    running_instance(f, uuid);
    IT_CHECK(env,
             register_task(f, NULL, uuid, "tick", "* * * * * *",
                           PLAT__ABILITY_KIND__ABILITY_KIND_TASK) == 0,
             "register tick");
    IT_CHECK(env,
             register_task(f, NULL, uuid, "yearly", "@yearly",
                           PLAT__ABILITY_KIND__ABILITY_KIND_TASK) == 0,
             "register yearly");
    wait_triggers(f, 0, "tick", 2, 10000);

    /* kill -9; stay down long enough for a run to be missed. */
    it_kill9(pd);
    int64_t last = f->trig[f->n_trig - 1].scheduled;
    uint64_t until = (uint64_t)last + 3000;
    while (wall_ms() < until) { /* a wait for time itself to pass */
        Plat__PlatformMessage *m = NULL;
        if (it_client_recv(f->host, 50, &m, NULL, NULL) == 0) {
            plat_envelope_free(&m); /* late answers of the dead platform: none expected */
        }
    }
    size_t before = f->n_trig;
    size_t actions_before = f->n_actions;
    uint64_t restart_at = wall_ms();
    pd = it_start_platformd(env, cfg);
    it_wait_healthy(env, IT_DEADLINE_MS);
    it_client_register(f->host, NULL, NULL);
    register_hostboot(env, hb);

    /* The instance is brought back (start on the dev host), then the
     * missed run comes once, then the regular ones. */
    wait_triggers(f, before, "tick", 3, 20000);
    IT_CHECK(env,
             f->n_actions > actions_before &&
                 f->actions[f->n_actions - 1] == PLAT__PLUGIN_ACTION__PLUGIN_ACTION_START,
             "the instance was started again");
    size_t missed = 0;
    for (size_t i = before; i < f->n_trig; i++) {
        trig_t *t = &f->trig[i];
        IT_CHECK(env, strcmp(t->name, "tick") == 0, "only tick fires (got %s)", t->name);
        if (t->missed) {
            missed++;
            IT_CHECK(env, i == before, "the missed run comes first");
            IT_CHECK(env, t->scheduled > last && t->scheduled < (int64_t)restart_at,
                     "the missed run carries its scheduled time (%lld, last %lld, restart "
                     "%llu)",
                     (long long)t->scheduled, (long long)last, (unsigned long long)restart_at);
        } else {
            IT_CHECK(env, t->scheduled >= (int64_t)restart_at - 1000,
                     "regular runs are from after the restart");
        }
    }
    IT_CHECK(env, missed == 1, "exactly one missed run (got %zu)", missed);
    IT_CHECK(env, stored_tasks(env, uuid) == 2, "both tasks still stored");
    it_stop(pd, IT_STOP_DEADLINE_MS);
}

/* ---- c) the manifest's abilities ---------------------------------------------------- */

static size_t on_text(char *p, size_t sz, size_t n, void *arg)
{
    char **buf = arg;
    size_t have = *buf ? strlen(*buf) : 0;
    char *r = realloc(*buf, have + sz * n + 1);
    if (!r)
        return 0;
    memcpy(r + have, p, sz * n);
    r[have + sz * n] = 0;
    *buf = r;
    return sz * n;
}

/* The value of an unlabelled counter in GET /metrics; -1 if absent. */
static long long metric(it_env_t *env, const char *name)
{
    char url[128], *text = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", it_http_port(env));
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_text);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &text);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    IT_CHECK(env, cc == CURLE_OK && text, "GET /metrics");
    long long v = -1;
    size_t n = strlen(name);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, name, n) == 0 && l[n] == ' ')
            v = strtoll(l + n + 1, NULL, 10);
    free(text);
    return v;
}

static void test_manifest_abilities(void **state)
{
    it_env_t *env = *state;
    it_set_strict_logs(env, true);
    it_proc_t *pd = NULL;
    start_platformd(env, &pd);
    static fake_t fk;
    fake_t *f = &fk;
    memset(f, 0, sizeof *f);
    f->env = env;
    char host_id[64];
    it_new_host_id(host_id);
    f->host = it_client_new(env, host_id);
    it_client_register(f->host, NULL, NULL);

    int port = plat_test_free_port(), other = plat_test_free_port();
    IT_CHECK(env, port > 1024 && other > 1024 && port != other, "two free ports");
    char web[32], api[32], bus[32];
    snprintf(web, sizeof web, "%d/health", port);
    snprintf(api, sizeof api, "%d/health", it_http_port(env));
    snprintf(bus, sizeof bus, "%d/health", it_bus_port(env));
    /* platformd's own ports and a privileged one, declared: still refused. */
    register_package_as(env, "declared",
                        json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}, "
                                  "{s:s, s:s, s:s}, {s:s, s:s, s:s}]",
                                  "kind", "task", "name", "tick", "spec", "* * * * *", "kind",
                                  "service", "name", "web", "spec", web, "kind", "service", "name",
                                  "api", "spec", api, "kind", "service", "name", "bus", "spec", bus,
                                  "kind", "service", "name", "ssh", "spec", "22/health"));
    register_package_as(env, "bare", NULL);
    char decl[64], bare[64];
    running_instance_of(f, "declared", decl);
    running_instance_of(f, "bare", bare);
    long long denied0 = metric(env, "plat_ability_denied_total");
    IT_CHECK(env, denied0 >= 0, "plat_ability_denied_total in /metrics");

    /* Tasks: the declared name only. */
    IT_CHECK(
        env,
        register_task(f, NULL, decl, "tick", "@yearly", PLAT__ABILITY_KIND__ABILITY_KIND_TASK) == 0,
        "declared task: %s", f->reply_detail);
    int rc =
        register_task(f, NULL, decl, "other", "@yearly", PLAT__ABILITY_KIND__ABILITY_KIND_TASK);
    IT_CHECK(env, rc == -EACCES && strstr(f->reply_detail, "not declared"),
             "a task name not declared: -EACCES (got %d %s)", rc, f->reply_detail);
    rc = register_task(f, NULL, bare, "tick", "@yearly", PLAT__ABILITY_KIND__ABILITY_KIND_TASK);
    IT_CHECK(env, rc == -EACCES, "a package without a task ability: -EACCES (got %d %s)", rc,
             f->reply_detail);
    IT_CHECK(env, stored_tasks(env, decl) == 1 && stored_tasks(env, bare) == 0,
             "only the declared task stored");

    /* Services: the declared port only, never platformd's or < 1024. */
    IT_CHECK(env, register_service(f, decl, (unsigned)port) == 0, "declared port: %s",
             f->reply_detail);
    rc = register_service(f, decl, (unsigned)other);
    IT_CHECK(env, rc == -EACCES && strstr(f->reply_detail, "not the port declared"),
             "an undeclared port: -EACCES (got %d %s)", rc, f->reply_detail);
    rc = register_service(f, decl, (unsigned)it_http_port(env));
    IT_CHECK(env, rc == -EACCES && strstr(f->reply_detail, "HTTP"),
             "platformd's API port: -EACCES (got %d %s)", rc, f->reply_detail);
    rc = register_service(f, decl, (unsigned)it_bus_port(env));
    IT_CHECK(env, rc == -EACCES && strstr(f->reply_detail, "bus"),
             "platformd's bus port: -EACCES (got %d %s)", rc, f->reply_detail);
    rc = register_service(f, decl, 22);
    IT_CHECK(env, rc == -EACCES && strstr(f->reply_detail, "1024"), "port 22: -EACCES (got %d %s)",
             rc, f->reply_detail);
    rc = register_service(f, bare, (unsigned)port);
    IT_CHECK(env, rc == -EACCES && strstr(f->reply_detail, "no service ability"),
             "a package without a service ability: -EACCES (got %d %s)", rc, f->reply_detail);
    IT_CHECK(env, unregister_service(f, decl) == 0, "the declared service unregistered");

    long long denied = metric(env, "plat_ability_denied_total");
    IT_CHECK(env, denied == denied0 + 7, "7 refusals counted (%lld -> %lld)", denied0, denied);
    it_stop(pd, IT_STOP_DEADLINE_MS);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_and_trigger, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_restart_and_missed, it_setup, it_teardown),
        cmocka_unit_test_setup_teardown(test_manifest_abilities, it_setup, it_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
