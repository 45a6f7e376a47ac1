/* The Ability channel: registrations from hosts, triggers to them (see
 * ability.h and docs/tasks.md). */
#include "ability.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "package.h"
#include "platformd.h"
#include "resource.h"
#include "tasks.h"
#include "websvc.h"

/* The module's state (pd->ability); pd_ability_t is a manifest entry
 * (package.h). */
typedef struct pd_ability {
    pd_t *pd;
    uv_timer_t boot; /* reloads the stored services once every module runs */
} ability_mod_t;

/* ---- messages -------------------------------------------------------------- */

static Plat__ErrorMessage *new_error(int code, const char *message, const char *detail)
{
    Plat__ErrorMessage *e = malloc(sizeof *e);
    if (!e)
        return NULL;
    plat__error_message__init(e);
    e->code = code;
    e->message = plat_msg_strdup(message);
    e->detail = plat_msg_strdup(detail);
    if (!e->message || !e->detail) {
        free(e->message);
        free(e->detail);
        free(e);
        return NULL;
    }
    return e;
}

Plat__PlatformMessage *pd_ability_msg_trigger(const char *instance, const char *name,
                                              int64_t scheduled_ms, bool missed)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY);
    if (!m)
        return NULL;
    Plat__AbilityTrigger *t = malloc(sizeof *t);
    if (!t) {
        plat_envelope_free(&m);
        return NULL;
    }
    plat__ability_trigger__init(t);
    m->ability->body_case = PLAT__ABILITY_MESSAGE__BODY_TRIGGER;
    m->ability->trigger = t;
    t->kind = PLAT__ABILITY_KIND__ABILITY_KIND_TASK;
    t->scheduled_unix_ms = scheduled_ms;
    t->missed = missed;
    if (!(t->instance = plat_msg_strdup(instance)) || !(t->name = plat_msg_strdup(name)))
        plat_envelope_free(&m);
    return m;
}

Plat__PlatformMessage *pd_ability_msg_result(int code, const char *message, const char *detail)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY);
    if (!m)
        return NULL;
    Plat__AbilityResult *r = malloc(sizeof *r);
    if (!r) {
        plat_envelope_free(&m);
        return NULL;
    }
    plat__ability_result__init(r);
    m->ability->body_case = PLAT__ABILITY_MESSAGE__BODY_RESULT;
    m->ability->result = r;
    if (code && !(r->error = new_error(code, message, detail)))
        plat_envelope_free(&m);
    return m;
}

int pd_ability_reply_error(const Plat__PlatformMessage *reply, char *why, size_t why_size)
{
    if (why && why_size)
        why[0] = 0;
    const Plat__ErrorMessage *err = reply->header ? reply->header->error : NULL;
    if (!err || !err->code) {
        if (reply->channel_case != PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY ||
            reply->ability->body_case != PLAT__ABILITY_MESSAGE__BODY_RESULT) {
            snprintf(why, why_size, "the host answered without an AbilityResult");
            return -EPROTO;
        }
        err = reply->ability->result->error;
    }
    if (!err || !err->code)
        return 0;
    snprintf(why, why_size, "%s%s%s", err->message, err->detail[0] ? ": " : "", err->detail);
    return err->code < 0 ? err->code : -err->code;
}

/* ---- task runs: scheduler -> lifecycle -------------------------------------- */

typedef struct {
    pd_t *pd;
    uint64_t run_id;
} run_ctx_t;

static void on_trigger_done(int status, const char *why, void *arg)
{
    run_ctx_t *r = arg;
    if (status == 0)
        plat_log_debug("ability", "task run done run=%llu", (unsigned long long)r->run_id);
    if (r->pd->tasks)
        pd_tasks_run_done(r->pd->tasks, r->run_id, status, why);
    free(r);
}

static int fire(pd_tasks_t *t, uint64_t run_id, const char *instance, const char *name,
                int64_t scheduled_ms, bool missed, void *arg)
{
    (void)t;
    pd_t *pd = arg;
    if (!pd->lifecycle)
        return -ESHUTDOWN;
    run_ctx_t *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    r->pd = pd;
    r->run_id = run_id;
    char why[256];
    int rc = pd_lifecycle_trigger(pd->lifecycle, instance, name, scheduled_ms, missed,
                                  on_trigger_done, r, why, sizeof why);
    if (rc < 0) {
        free(r);
        if (rc != -EPERM && rc != -ENOENT)
            plat_log_warn("ability", "task trigger not sent: %s instance=%s task=%s", why, instance,
                          name);
        return rc;
    }
    return 0;
}

/* ---- the channel handler ------------------------------------------------------ */

static void reply(pd_t *pd, const Plat__PlatformMessage *req, int code, const char *message,
                  const char *detail)
{
    Plat__PlatformMessage *r = pd_ability_msg_result(code, message, detail);
    int rc = r ? plat_bus_reply(pd->bus, req, r) : -ENOMEM;
    plat_envelope_free(&r);
    if (rc < 0)
        plat_log_warn("ability", "reply not sent: %s to=%s seq=%llu", strerror(-rc),
                      req->header->source->id, (unsigned long long)req->header->seq_no);
}

/* The sender must be the host the instance is attached to. */
static bool allowed(pd_t *pd, const Plat__PlatformMessage *m, const pd_endpoint_t *ep,
                    const char *instance, const char *what)
{
    if (ep && ep->kind == PD_EP_HOST && plat_uuid_valid(instance) && pd->lifecycle &&
        pd_lifecycle_instance_on_host(pd->lifecycle, instance, ep->id))
        return true;
    pd->metrics.ability_denied++;
    plat_log_warn("ability",
                  "%s refused: the instance is not attached to the sending host "
                  "instance=%.64s from=%s",
                  what, instance, ep ? ep->id : "-");
    reply(pd, m, -EACCES, "the instance is not attached to this host", instance);
    return false;
}

static bool health_path_ok(const char *p)
{
    size_t n = strlen(p);
    if (n < 1 || n > PD_STORE_HEALTH_PATH_MAX || p[0] != '/')
        return false;
    for (; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

/* ---- the manifest's abilities (docs/packages.md "abilities") -------------- */

/* The port of platformd's bus endpoint ("tcp://127.0.0.1:7700"), 0 if none. */
static unsigned bus_port(const pd_t *pd)
{
    const char *ep = pd->cfg ? pd->cfg->bus.endpoint : NULL;
    const char *colon = ep ? strrchr(ep, ':') : NULL;
    if (!colon || !colon[1])
        return 0;
    char *end = NULL;
    unsigned long v = strtoul(colon + 1, &end, 10);
    return *end == 0 && v <= 65535 ? (unsigned)v : 0;
}

/* May a service listen on `port` at all (whatever the manifest says)?
 * NULL if so, else why not. */
static const char *port_reserved(const pd_t *pd, unsigned port)
{
    if (port < 1024)
        return "ports below 1024 are not allowed";
    if (pd->cfg && port == (unsigned)pd->cfg->http.port)
        return "the port is platformd's HTTP API";
    if (port == bus_port(pd))
        return "the port is platformd's bus";
    return NULL;
}

/* Does the instance's manifest declare this registration? 0, -EACCES (not
 * declared or a reserved port: why says), or the error of reading the
 * manifest (why says). For a service `name` is ignored. */
static int manifest_allows(pd_t *pd, const char *instance, bool task, const char *name,
                           unsigned port, char *why, size_t why_size)
{
    if (!task) {
        const char *no = port_reserved(pd, port);
        if (no) {
            snprintf(why, why_size, "port %u: %s", port, no);
            return -EACCES;
        }
    }
    pd_manifest_t mf;
    char mwhy[256];
    int rc = pd_resources_manifest(pd, instance, &mf, mwhy, sizeof mwhy);
    if (rc < 0) {
        snprintf(why, why_size, "cannot read the instance's manifest: %s", mwhy);
        return rc;
    }
    bool any_service = false;
    rc = -EACCES;
    for (size_t i = 0; i < mf.n_abilities && rc; i++) {
        const pd_ability_t *a = &mf.abilities[i];
        if (task && a->kind == PD_ABILITY_TASK &&
            (strcmp(a->name, "*") == 0 || strcmp(a->name, name) == 0))
            rc = 0;
        if (!task && a->kind == PD_ABILITY_SERVICE) {
            any_service = true;
            if (a->port == 0 || a->port == port)
                rc = 0;
        }
    }
    if (rc && task)
        snprintf(why, why_size,
                 "task \"%.64s\" is not declared in the manifest of %.64s %.128s "
                 "(abilities: {\"kind\": \"task\", \"name\": \"%.64s\" or \"*\"})",
                 name, mf.id, mf.version, name);
    else if (rc && any_service)
        snprintf(why, why_size,
                 "port %u is not the port declared in the manifest of %.64s %.128s "
                 "(abilities: service spec \"<port>/<health path>\")",
                 port, mf.id, mf.version);
    else if (rc)
        snprintf(why, why_size,
                 "no service ability is declared in the manifest of %.64s %.128s "
                 "(abilities: {\"kind\": \"service\", ...})",
                 mf.id, mf.version);
    pd_manifest_free(&mf);
    return rc;
}

/* Check a registration against the manifest; on refusal reply, log, count
 * and return false. */
static bool declared(pd_t *pd, const Plat__PlatformMessage *m, const Plat__AbilityRegister *r)
{
    bool task = r->kind == PLAT__ABILITY_KIND__ABILITY_KIND_TASK;
    char why[512];
    int rc = manifest_allows(pd, r->instance, task, r->name, r->port, why, sizeof why);
    if (rc == 0)
        return true;
    if (rc == -EACCES) {
        pd->metrics.ability_denied++;
        if (task)
            plat_log_warn("ability", "task registration refused: %s instance=%s task=%.64s", why,
                          r->instance, r->name);
        else
            plat_log_warn("ability", "service registration refused: %s instance=%s port=%u", why,
                          r->instance, r->port);
        reply(pd, m, -EACCES,
              task ? "task registration refused: not allowed by the manifest"
                   : "service registration refused: not allowed by the manifest",
              why);
        return false;
    }
    plat_log_warn("ability", "%s registration refused: %s instance=%s", task ? "task" : "service",
                  why, r->instance);
    reply(pd, m, rc, task ? "task registration refused" : "service registration refused", why);
    return false;
}

static void on_register(pd_t *pd, const Plat__PlatformMessage *m, const pd_endpoint_t *ep)
{
    const Plat__AbilityRegister *r = m->ability->register_;
    if (!allowed(pd, m, ep, r->instance, "ability registration"))
        return;
    char why[320];
    if (r->kind == PLAT__ABILITY_KIND__ABILITY_KIND_TASK) {
        if (!declared(pd, m, r))
            return;
        int rc = pd_tasks_register(pd->tasks, r->instance, r->name, r->cron, why, sizeof why);
        if (rc < 0)
            plat_log_warn("ability", "task registration refused: %s instance=%s task=%.64s", why,
                          r->instance, r->name);
        reply(pd, m, rc, rc ? "task registration refused" : NULL, rc ? why : NULL);
        return;
    }
    if (r->kind != PLAT__ABILITY_KIND__ABILITY_KIND_SERVICE) {
        reply(pd, m, -EINVAL, "kind: must be TASK or SERVICE", "kind");
        return;
    }
    if (r->port < 1 || r->port > 65535 || !health_path_ok(r->health_path)) {
        snprintf(why, sizeof why, "%s",
                 r->port < 1 || r->port > 65535
                     ? "port: must be 1-65535"
                     : "health_path: must start with '/', 1-255 printable characters, no spaces");
        plat_log_warn("ability", "service registration refused: %s instance=%s", why, r->instance);
        reply(pd, m, -EINVAL, "service registration refused", why);
        return;
    }
    if (!declared(pd, m, r))
        return;
    int rc = pd_websvc_register(pd, r->instance, (uint16_t)r->port, r->health_path);
    if (rc < 0) {
        plat_log_warn("ability", "service registration refused: %s instance=%s port=%u",
                      strerror(-rc), r->instance, r->port);
        reply(pd, m, rc, "service registration refused", strerror(-rc));
        return;
    }
    pd_store_t *store = pd_lifecycle_store(pd->lifecycle);
    pd_store_service_t sv = {0};
    snprintf(sv.instance, sizeof sv.instance, "%s", r->instance);
    sv.port = r->port;
    snprintf(sv.health_path, sizeof sv.health_path, "%s", r->health_path);
    rc = pd_store_put_service(store, &sv);
    if (rc < 0) {
        plat_log_err("ability", "cannot record the service: %s instance=%s", pd_store_why(store),
                     r->instance);
        pd_websvc_unregister(pd, r->instance);
        reply(pd, m, rc, "cannot record the service", pd_store_why(store));
        return;
    }
    plat_log_info("ability", "service registered instance=%s port=%u health_path=%s", r->instance,
                  r->port, r->health_path);
    reply(pd, m, 0, NULL, NULL);
}

static void on_unregister(pd_t *pd, const Plat__PlatformMessage *m, const pd_endpoint_t *ep)
{
    const Plat__AbilityUnregister *u = m->ability->unregister;
    if (!allowed(pd, m, ep, u->instance, "ability unregistration"))
        return;
    if (u->kind == PLAT__ABILITY_KIND__ABILITY_KIND_TASK) {
        int rc = pd_tasks_unregister(pd->tasks, u->instance, u->name);
        if (rc == -ENOENT)
            reply(pd, m, rc, "no such task", u->name);
        else if (rc < 0)
            reply(pd, m, rc, "cannot remove the task",
                  pd_store_why(pd_lifecycle_store(pd->lifecycle)));
        else
            reply(pd, m, 0, NULL, NULL);
        return;
    }
    if (u->kind != PLAT__ABILITY_KIND__ABILITY_KIND_SERVICE) {
        reply(pd, m, -EINVAL, "kind: must be TASK or SERVICE", "kind");
        return;
    }
    pd_store_t *store = pd_lifecycle_store(pd->lifecycle);
    int rc = pd_store_delete_service(store, u->instance);
    if (rc < 0 && rc != -ENOENT) {
        reply(pd, m, rc, "cannot remove the service", pd_store_why(store));
        return;
    }
    pd_websvc_unregister(pd, u->instance);
    if (rc == -ENOENT) {
        reply(pd, m, rc, "no service registered", u->instance);
        return;
    }
    plat_log_info("ability", "service unregistered instance=%s", u->instance);
    reply(pd, m, 0, NULL, NULL);
}

void pd_ability_handle(pd_t *pd, const plat_bus_rx_t *rx, pd_endpoint_t *ep)
{
    const Plat__PlatformMessage *m = rx->msg;
    const Plat__AbilityMessage *am = m->ability;
    if (m->header->kind != PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST) {
        /* Replies to our triggers were matched by the bus already. */
        plat_log_info("ability",
                      "ability message that is not a request dropped from=%s "
                      "seq=%llu kind=%d",
                      rx->peer, (unsigned long long)m->header->seq_no, (int)m->header->kind);
        return;
    }
    if (!pd->tasks || !pd->lifecycle) {
        reply(pd, m, -ESHUTDOWN, "abilities are not available (platform starting or stopping)",
              NULL);
        return;
    }
    switch (am->body_case) {
    case PLAT__ABILITY_MESSAGE__BODY_REGISTER:
        on_register(pd, m, ep);
        return;
    case PLAT__ABILITY_MESSAGE__BODY_UNREGISTER:
        on_unregister(pd, m, ep);
        return;
    case PLAT__ABILITY_MESSAGE__BODY_TRIGGER:
        reply(pd, m, -EOPNOTSUPP, "triggers go from the platform to hosts", NULL);
        return;
    default:
        plat_log_warn("ability", "unknown ability request from=%s body=%d", rx->peer,
                      (int)am->body_case);
        reply(pd, m, -EPROTO, "unknown ability request", NULL);
        return;
    }
}

/* ---- module ------------------------------------------------------------------- */

static int reload_service(const pd_store_service_t *sv, void *arg)
{
    pd_t *pd = arg;
    /* Stored before the manifest was enforced, or the ports moved since. */
    char why[512];
    int rc = manifest_allows(pd, sv->instance, false, "", sv->port, why, sizeof why);
    if (rc < 0) {
        plat_log_warn("ability", "stored service not restored: %s instance=%s port=%u", why,
                      sv->instance, sv->port);
        return 0;
    }
    rc = pd_websvc_register(pd, sv->instance, (uint16_t)sv->port, sv->health_path);
    if (rc < 0)
        plat_log_warn("ability", "stored service not restored: %s, ignoring instance=%s port=%u",
                      strerror(-rc), sv->instance, sv->port);
    return 0;
}

static void on_boot(uv_timer_t *h)
{
    ability_mod_t *a = h->data;
    pd_t *pd = a->pd;
    if (pd->lifecycle && pd->websvc)
        pd_store_list_services(pd_lifecycle_store(pd->lifecycle), reload_service, pd);
}

int pd_ability_start(pd_t *pd)
{
    if (!pd->lifecycle)
        return -EINVAL;
    ability_mod_t *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->pd = pd;
    pd_tasks_opts_t o = {
        .loop = pd->loop,
        .store = pd_lifecycle_store(pd->lifecycle),
        .fire = fire,
        .fire_arg = pd,
        .metrics = &pd->metrics,
    };
    char why[256];
    pd->tasks = pd_tasks_new(&o, why, sizeof why);
    if (!pd->tasks) {
        plat_log_err("ability", "cannot start the task scheduler: %s", why);
        free(a);
        return -EIO;
    }
    uv_timer_init(pd->loop, &a->boot);
    a->boot.data = a;
    /* Services are handed to websvc once every module has started (it may
     * come later in the module table). */
    uv_timer_start(&a->boot, on_boot, 0, 0);
    pd->ability = a;
    return 0;
}

static void free_ability(uv_handle_t *h)
{
    free(h->data);
}

void pd_ability_stop(pd_t *pd)
{
    if (pd->lifecycle)
        pd_lifecycle_cancel_triggers(pd->lifecycle, on_trigger_done);
    pd_tasks_destroy(&pd->tasks);
    if (pd->ability) {
        uv_close((uv_handle_t *)&pd->ability->boot, free_ability);
        pd->ability = NULL;
    }
}

void pd_ability_forget_instance(pd_t *pd, const char *uuid)
{
    if (pd->tasks) {
        int n = pd_tasks_forget_instance(pd->tasks, uuid);
        if (n < 0)
            plat_log_warn("ability",
                          "cannot remove the tasks of an uninstalled instance: %s "
                          "instance=%s",
                          strerror(-n), uuid);
    }
    if (pd->lifecycle) {
        int rc = pd_store_delete_service(pd_lifecycle_store(pd->lifecycle), uuid);
        if (rc < 0 && rc != -ENOENT)
            plat_log_warn("ability",
                          "cannot remove the service of an uninstalled instance: "
                          "%s instance=%s",
                          pd_store_why(pd_lifecycle_store(pd->lifecycle)), uuid);
    }
    if (pd->websvc)
        pd_websvc_unregister(pd, uuid);
}
