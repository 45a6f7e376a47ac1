/* HTTP routes for packages, instances, lifecycle actions, org batches and
 * invoke (ARCHITECTURE.md section 9). Actions answer when they are done:
 * the request is suspended meanwhile. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "lifecycle.h"

/* ---- error mapping ------------------------------------------------------- */

/* Errors known before anything ran. */
static pd_http_reply_t refused(int rc, const char *why)
{
    switch (rc) {
    case -ENOENT: return pd_http_error(404, "not_found", why);
    case -EPERM: return pd_http_error(409, "invalid_transition", why);
    case -EBUSY: return pd_http_error(409, "busy", why);
    case -EEXIST: return pd_http_error(409, "conflict", why);
    case -EINVAL:
    case -EFBIG:
    case -E2BIG:
    case -ENOEXEC: return pd_http_error(400, "bad_request", why);
    case -EHOSTUNREACH: return pd_http_error(503, "host_unreachable", why);
    default: return pd_http_error(500, "internal", why);
    }
}

/* Errors of an action that ran (or tried to). */
static pd_http_reply_t failed(int rc, const char *why)
{
    switch (rc) {
    case -ENODEV: return pd_http_error(503, "no_hostboot", why);
    case -EHOSTUNREACH: return pd_http_error(503, "host_unreachable", why);
    case -ENOTCONN: return pd_http_error(503, "no_dev_host", why);
    case -ETIMEDOUT: return pd_http_error(504, "timeout", why);
    case -ECANCELED: return pd_http_error(503, "stopping", why);
    case -ECHILD: return pd_http_error(500, "host_died", why);
    default: return pd_http_error(500, "action_failed", why);
    }
}

static json_t *package_json(const pd_store_package_t *p)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "id", p->id, "version",
                     p->version, "language", p->language, "runtime_version", p->runtime_version,
                     "entry", p->entry, "host_mode", p->host_mode, "digest", p->digest,
                     "registered_at", (json_int_t)p->registered_at);
}

static pd_lifecycle_t *lc_of(pd_http_req_t *req) { return req->pd->lifecycle; }

/* Only the listed members; refuses others naming them. */
static bool members_ok(json_t *body, const char *const *allowed, char *why, size_t size)
{
    if (!json_is_object(body)) {
        snprintf(why, size, "body must be a JSON object");
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            snprintf(why, size, "unknown member \"%.64s\"", key);
            return false;
        }
    }
    return true;
}

static const char *str_member(json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- packages --------------------------------------------------------------- */

pd_http_reply_t pd_api_post_packages(pd_http_req_t *req)
{
    static const char *const allowed[] = {"path", NULL};
    char why[512];
    if (!members_ok(req->body, allowed, why, sizeof why))
        return pd_http_error(400, "bad_request", why);
    const char *path = str_member(req->body, "path");
    if (!path || !*path)
        return pd_http_error(400, "bad_request", "\"path\" (a package directory) is required");
    pd_store_package_t pkg;
    int rc = pd_lifecycle_register_package(lc_of(req), path, &pkg, why, sizeof why);
    if (rc < 0)
        return refused(rc == -ENOENT ? -EINVAL : rc, why);
    plat_log_notice("api", "package %s id=%s version=%s path=%s",
                    rc == 1 ? "already registered" : "registered", pkg.id, pkg.version, path);
    json_t *out = json_pack("{s:o}", "package", package_json(&pkg));
    pd_store_package_clear(&pkg);
    return pd_http_json(rc == 1 ? 200 : 201, out);
}

static int add_package(const pd_store_package_t *p, void *arg)
{
    json_array_append_new(arg, package_json(p));
    return 0;
}

pd_http_reply_t pd_api_get_packages(pd_http_req_t *req)
{
    json_t *list = json_array();
    pd_store_list_packages(pd_lifecycle_store(lc_of(req)), add_package, list);
    return pd_http_json(200, json_pack("{s:o}", "packages", list));
}

/* ---- instances ----------------------------------------------------------------- */

typedef struct {
    pd_lifecycle_t *lc;
    json_t *list;
} inst_list_t;

static int add_instance(const pd_store_instance_t *in, void *arg)
{
    inst_list_t *l = arg;
    json_array_append_new(l->list, pd_lifecycle_instance_json(l->lc, in));
    return 0;
}

pd_http_reply_t pd_api_get_instances(pd_http_req_t *req)
{
    inst_list_t l = {lc_of(req), json_array()};
    pd_store_list_instances(pd_lifecycle_store(l.lc), pd_http_query(req, "org"), add_instance, &l);
    return pd_http_json(200, json_pack("{s:o}", "instances", l.list));
}

pd_http_reply_t pd_api_get_instance(pd_http_req_t *req)
{
    pd_store_instance_t in = {0};
    const char *uuid = req->params[0];
    if (!plat_uuid_valid(uuid) || pd_store_get_instance(pd_lifecycle_store(lc_of(req)), uuid, &in) < 0)
        return pd_http_error(404, "not_found", "no such instance");
    json_t *out = json_pack("{s:o}", "instance", pd_lifecycle_instance_json(lc_of(req), &in));
    pd_store_instance_clear(&in);
    return pd_http_json(200, out);
}

static int add_action(const pd_store_action_t *a, void *arg)
{
    json_array_append_new(arg, json_pack("{s:I, s:s, s:s, s:s, s:I}", "id", (json_int_t)a->id,
                                         "action", a->action, "result", a->result, "error",
                                         a->error, "at", (json_int_t)a->at));
    return 0;
}

pd_http_reply_t pd_api_get_instance_actions(pd_http_req_t *req)
{
    const char *uuid = req->params[0];
    if (!plat_uuid_valid(uuid))
        return pd_http_error(404, "not_found", "no such instance");
    json_t *list = json_array();
    pd_store_list_actions(pd_lifecycle_store(lc_of(req)), uuid, 100, add_action, list);
    return pd_http_json(200, json_pack("{s:o}", "actions", list));
}

/* One suspended request waiting for an action. */
typedef struct {
    pd_http_pending_t *pending;
    pd_lifecycle_t *lc;
    int ok_status; /* 200 or 201 */
} waiter_t;

static void on_action_done(int status, const char *why, const pd_store_instance_t *inst,
                           void *arg)
{
    waiter_t *w = arg;
    pd_http_reply_t r;
    if (status == 0)
        r = pd_http_json(w->ok_status,
                         inst ? json_pack("{s:o}", "instance", pd_lifecycle_instance_json(w->lc, inst))
                              : json_pack("{s:n, s:b}", "instance", "removed", 1));
    else {
        r = failed(status, why);
        if (inst)
            json_object_set_new(r.body, "instance", pd_lifecycle_instance_json(w->lc, inst));
    }
    pd_http_finish(w->pending, r);
    free(w);
}

static waiter_t *waiter(pd_http_req_t *req, int ok_status)
{
    waiter_t *w = calloc(1, sizeof *w);
    if (w) {
        w->lc = lc_of(req);
        w->ok_status = ok_status;
    }
    return w;
}

pd_http_reply_t pd_api_post_instances(pd_http_req_t *req)
{
    static const char *const allowed[] = {"plugin", "version", "org", "config", NULL};
    char why[512];
    if (!members_ok(req->body, allowed, why, sizeof why))
        return pd_http_error(400, "bad_request", why);
    const char *plugin = str_member(req->body, "plugin");
    const char *version = str_member(req->body, "version");
    const char *org = str_member(req->body, "org");
    json_t *config = json_object_get(req->body, "config");
    if (!plugin || !version || !org)
        return pd_http_error(400, "bad_request", "\"plugin\", \"version\" and \"org\" are required");
    if (config && !json_is_object(config))
        return pd_http_error(400, "bad_request", "\"config\" must be a JSON object");
    char *config_text = config ? json_dumps(config, JSON_COMPACT) : NULL;
    waiter_t *w = waiter(req, 201);
    if (!w) {
        free(config_text);
        return pd_http_error(500, "internal", "out of memory");
    }
    /* Suspended first: the action may end before the call returns. */
    w->pending = pd_http_suspend(req);
    int rc = pd_lifecycle_install(lc_of(req), plugin, version, org, config_text, on_action_done,
                                  w, why, sizeof why);
    free(config_text);
    if (rc < 0) {
        pd_http_finish(w->pending, refused(rc, why));
        free(w);
    }
    return PD_HTTP_PENDING;
}

/* The {action} segment and the body of an action request (an upgrade
 * names its version, nothing else takes a member). False with *bad set. */
static bool parse_action(pd_http_req_t *req, pd_action_t *action, const char **version,
                         pd_http_reply_t *bad)
{
    if (pd_action_parse(req->params[1], action) < 0 || *action == PD_ACTION_INSTALL) {
        *bad = pd_http_error(404, "not_found",
                             "no such action (enable, disable, start, stop, upgrade, uninstall)");
        return false;
    }
    static const char *const allowed_upgrade[] = {"version", NULL};
    static const char *const allowed_none[] = {NULL};
    char why[512];
    if (!members_ok(req->body, *action == PD_ACTION_UPGRADE ? allowed_upgrade : allowed_none, why,
                    sizeof why)) {
        *bad = pd_http_error(400, "bad_request", why);
        return false;
    }
    *version = str_member(req->body, "version");
    if (*action == PD_ACTION_UPGRADE && !*version) {
        *bad = pd_http_error(400, "bad_request", "upgrade needs \"version\"");
        return false;
    }
    return true;
}

pd_http_reply_t pd_api_instance_action(pd_http_req_t *req)
{
    pd_action_t action;
    const char *uuid = req->params[0], *version;
    pd_http_reply_t bad;
    if (!parse_action(req, &action, &version, &bad))
        return bad;
    char why[512];
    waiter_t *w = waiter(req, 200);
    if (!w)
        return pd_http_error(500, "internal", "out of memory");
    w->pending = pd_http_suspend(req);
    int rc = pd_lifecycle_act(lc_of(req), uuid, action, version, on_action_done, w, why,
                              sizeof why);
    if (rc < 0) {
        pd_http_finish(w->pending, refused(rc, why));
        free(w);
    }
    return PD_HTTP_PENDING;
}

/* ---- invoke --------------------------------------------------------------------------- */

static void on_invoked(int status, const char *why, uint32_t http_status,
                       const char *content_type, const uint8_t *body, size_t len, void *arg)
{
    pd_http_pending_t *p = arg;
    if (status != 0) {
        pd_http_finish(p, failed(status == -ENOENT ? -EIO : status, why));
        return;
    }
    pd_http_reply_t r = {.status = (int)http_status};
    r.raw = malloc(len ? len : 1);
    if (!r.raw) {
        pd_http_finish(p, pd_http_error(500, "internal", "out of memory"));
        return;
    }
    if (len)
        memcpy(r.raw, body, len);
    r.raw_len = len;
    snprintf(r.content_type, sizeof r.content_type, "%s",
             content_type && *content_type ? content_type : "text/plain");
    if (r.status < 100 || r.status > 599)
        r.status = 502;
    pd_http_finish(p, r);
}

pd_http_reply_t pd_api_invoke(pd_http_req_t *req)
{
    const char *path = pd_http_query(req, "path");
    const char *method = pd_http_query(req, "method");
    char why[256];
    /* Suspended first, so the callback has its handle; an error known at
     * once finishes it at once. */
    pd_http_pending_t *p = pd_http_suspend(req);
    int rc = pd_lifecycle_invoke(lc_of(req), req->params[0], method ? method : "POST",
                                 path ? path : "/", pd_http_header(req, "Content-Type"),
                                 (const uint8_t *)req->raw, req->raw_len, on_invoked, p, why,
                                 sizeof why);
    if (rc < 0)
        pd_http_finish(p, refused(rc, why));
    return PD_HTTP_PENDING;
}

/* ---- org batch actions ------------------------------------------------------------------ */

typedef struct {
    pd_http_pending_t *pending;
    pd_lifecycle_t *lc;
    pd_action_t action;
    char org[PD_STORE_ID_MAX + 1];
    char version[PD_STORE_VERSION_MAX + 1]; /* upgrade */
    char (*uuids)[PLAT_UUID_LEN + 1];
    size_t n, cap, next, in_flight, done, ok;
    size_t concurrency;
    bool pumping;    /* batch_pump is on the stack: completions only record */
    json_t *results; /* array, in uuid order */
} batch_t;

typedef struct {
    batch_t *b;
    size_t index;
} batch_item_t;

static int collect_org(const pd_store_instance_t *in, void *arg)
{
    batch_t *b = arg;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        void *u = realloc(b->uuids, cap * sizeof *b->uuids);
        if (!u)
            return -ENOMEM;
        b->uuids = u;
        b->cap = cap;
    }
    snprintf(b->uuids[b->n++], sizeof b->uuids[0], "%s", in->uuid);
    return 0;
}

static void batch_pump(batch_t *b);

static void batch_result(batch_t *b, size_t index, int status, const char *why,
                         const pd_store_instance_t *inst)
{
    json_t *r = json_pack("{s:s, s:b, s:i}", "uuid", b->uuids[index], "ok", status == 0,
                          "status", status == 0 ? 200 : (status == -EPERM || status == -EBUSY ? 409
                                                                                               : 500));
    if (status != 0)
        json_object_set_new(r, "error", json_string(why ? why : ""));
    if (inst)
        json_object_set_new(r, "state", json_string(inst->actual_state));
    json_array_set_new(b->results, index, r);
    b->done++;
    b->ok += status == 0;
}

static void on_batch_item(int status, const char *why, const pd_store_instance_t *inst, void *arg)
{
    batch_item_t *it = arg;
    batch_t *b = it->b;
    batch_result(b, it->index, status, why, inst);
    free(it);
    b->in_flight--;
    if (!b->pumping)
        batch_pump(b);
}

/* Keep up to `concurrency` actions in flight; answer when all are done. */
static void batch_pump(batch_t *b)
{
    b->pumping = true;
    while (b->in_flight < b->concurrency && b->next < b->n) {
        size_t i = b->next++;
        char why[512];
        batch_item_t *it = malloc(sizeof *it);
        int rc = -ENOMEM;
        if (it) {
            it->b = b;
            it->index = i;
            b->in_flight++;
            rc = pd_lifecycle_act(b->lc, b->uuids[i], b->action,
                                  b->action == PD_ACTION_UPGRADE ? b->version : NULL,
                                  on_batch_item, it, why, sizeof why);
            if (rc < 0) {
                b->in_flight--;
                free(it);
            }
        } else {
            snprintf(why, sizeof why, "out of memory");
        }
        if (rc < 0)
            batch_result(b, i, rc, why, NULL);
    }
    b->pumping = false;
    if (b->in_flight == 0 && b->done == b->n) {
        plat_log_notice("api", "org %s done org=%s instances=%zu ok=%zu failed=%zu",
                        pd_action_name(b->action), b->org, b->n, b->ok, b->n - b->ok);
        pd_http_finish(b->pending,
                       pd_http_json(200, json_pack("{s:s, s:s, s:I, s:I, s:I, s:o}", "org", b->org,
                                                   "action", pd_action_name(b->action), "total",
                                                   (json_int_t)b->n, "ok", (json_int_t)b->ok,
                                                   "failed", (json_int_t)(b->n - b->ok),
                                                   "results", b->results)));
        free(b->uuids);
        free(b);
    }
}

pd_http_reply_t pd_api_org_action(pd_http_req_t *req)
{
    pd_action_t action;
    const char *version;
    pd_http_reply_t bad;
    if (!parse_action(req, &action, &version, &bad))
        return bad;
    batch_t *b = calloc(1, sizeof *b);
    if (!b)
        return pd_http_error(500, "internal", "out of memory");
    b->lc = lc_of(req);
    b->action = action;
    b->concurrency = (size_t)req->pd->cfg->plugins.batch_concurrency;
    snprintf(b->org, sizeof b->org, "%s", req->params[0]);
    snprintf(b->version, sizeof b->version, "%s", version ? version : "");
    if (pd_store_list_instances(pd_lifecycle_store(b->lc), b->org, collect_org, b) < 0) {
        free(b->uuids);
        free(b);
        return pd_http_error(500, "internal", "cannot list the org's instances");
    }
    b->results = json_array();
    for (size_t i = 0; i < b->n; i++)
        json_array_append_new(b->results, json_null());
    plat_log_notice("api", "org %s started org=%s instances=%zu concurrency=%zu",
                    pd_action_name(action), b->org, b->n, b->concurrency);
    b->pending = pd_http_suspend(req);
    batch_pump(b);
    return PD_HTTP_PENDING;
}
