/* The plugin runner: instance contexts, shared-object loading, hooks on
 * the libuv threadpool, one hook at a time per instance. */
#include "plugins.h"

#include "resources.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openplatform/plugin.h"

#define INSTANCE_BUCKETS 256

/* A loaded shared object; never unloaded, freed with the runner. */
typedef struct ph_lib {
    char *plugin;                 /* package id */
    char *version;                /* package version */
    char *path;                   /* resolved entry path */
    const struct op_plugin *desc; /* the exported descriptor */
    /* on_task, read only from an ABI >= 2 descriptor (an ABI 1 one ends
     * before it); NULL otherwise. */
    int (*on_task)(op_ctx_t *ctx, const char *name, int64_t scheduled_unix_ms, int missed);
    struct ph_lib *next;
} ph_lib_t;

typedef struct ph_job ph_job_t;

/* An instance context: what a plugin sees as op_ctx_t. `api` must stay the
 * first member (the SDK's wrappers read it through the opaque pointer). */
struct op_ctx {
    const struct op_host_api *api;
    ph_plugins_t *owner;
    char *id;                     /* instance UUID */
    char *org;
    char *config;                 /* JSON text; replaced by each action */
    void *user_data;              /* the plugin's, kept across hooks */
    const ph_lib_t *lib;          /* committed plugin version; NULL before the first success */
    const ph_lib_t *hook_lib;     /* the version the running hook belongs to (worker) */
    ph_job_t *head, *tail;        /* queued jobs, head is running when `busy` */
    bool busy;                    /* head job is on the threadpool */
    char last_error[512];         /* op_last_error (worker, during a hook) */
    struct op_ctx *next;          /* hash chain */
};
typedef struct op_ctx ph_instance_t;

/* The response an on_event hook fills: op_response_t. `api` first. */
typedef struct {
    char *name, *value;
} resp_header_t;

struct op_response {
    const struct op_host_api *api;
    unsigned status;
    resp_header_t *headers;
    size_t n_headers;
    uint8_t *body;
    size_t body_len;
};

typedef enum { JOB_ACTION, JOB_EVENT, JOB_TASK } job_kind_t;

struct ph_job {
    uv_work_t work;
    ph_instance_t *inst;
    Plat__PlatformMessage *copy; /* owned copy of the request (action or event) */
    job_kind_t kind;
    char *task;                  /* JOB_TASK: the task's name */
    int64_t task_scheduled_ms;
    bool task_missed;
    /* filled by the worker */
    const ph_lib_t *lib;         /* the version the hook ran in (actions) */
    int code;
    char message[512];
    struct op_response resp;     /* events */
    ph_done_cb cb;
    void *arg;
    ph_job_t *next;
};

struct ph_plugins {
    uv_loop_t *loop;
    ph_instance_t *buckets[INSTANCE_BUCKETS]; /* loop thread */
    size_t n_instances;
    unsigned n_running;                        /* jobs on the threadpool */
    bool closing;
    pthread_mutex_t lib_lock;                  /* guards libs (workers load) */
    ph_lib_t *libs;
    ph_platcall_t *platcall;                   /* the bridge to the platform; owned */
};

static const struct op_host_api g_api;

/* ---- the host's function table (worker threads) ------------------------ */

static void api_log(op_ctx_t *ctx, int level, const char *line)
{
    if (level < OP_LOG_ERR)
        level = OP_LOG_ERR;
    if (level > OP_LOG_DEBUG)
        level = OP_LOG_DEBUG;
    char buf[1024];
    size_t i = 0;
    for (; line && line[i] && i < sizeof buf - 1; i++)
        buf[i] = (line[i] == '\n' || line[i] == '\r') ? ' ' : line[i];
    buf[i] = '\0';
    const ph_lib_t *lib = ctx->hook_lib ? ctx->hook_lib : ctx->lib;
    plat_log((plat_log_level_t)level, "plugin", "%s instance=%s plugin=%s version=%s", buf,
             ctx->id, lib ? lib->plugin : "-", lib ? lib->version : "-");
}

static const char *api_config(op_ctx_t *ctx) { return ctx->config; }
static const char *api_instance_id(op_ctx_t *ctx) { return ctx->id; }
static const char *api_org(op_ctx_t *ctx) { return ctx->org; }

static const char *api_plugin_version(op_ctx_t *ctx)
{
    const ph_lib_t *lib = ctx->hook_lib ? ctx->hook_lib : ctx->lib;
    return lib ? lib->version : "";
}

static void *api_user_data(op_ctx_t *ctx) { return ctx->user_data; }
static void api_set_user_data(op_ctx_t *ctx, void *data) { ctx->user_data = data; }

static int api_response_set_status(op_response_t *r, unsigned status)
{
    if (status < 100 || status > 599)
        return -EINVAL;
    r->status = status;
    return 0;
}

static int api_response_set_body(op_response_t *r, const void *data, size_t len)
{
    if (len && !data)
        return -EINVAL;
    if (len > PH_MAX_RESPONSE_BODY)
        return -EMSGSIZE;
    uint8_t *b = NULL;
    if (len) {
        b = malloc(len);
        if (!b)
            return -ENOMEM;
        memcpy(b, data, len);
    }
    free(r->body);
    r->body = b;
    r->body_len = len;
    return 0;
}

static int api_response_add_header(op_response_t *r, const char *name, const char *value)
{
    if (!name || !name[0] || strpbrk(name, "\r\n: ") || (value && strpbrk(value, "\r\n")))
        return -EINVAL;
    resp_header_t *hs = realloc(r->headers, (r->n_headers + 1) * sizeof *hs);
    if (!hs)
        return -ENOMEM;
    r->headers = hs;
    char *n = strdup(name), *v = strdup(value ? value : "");
    if (!n || !v) {
        free(n);
        free(v);
        return -ENOMEM;
    }
    hs[r->n_headers].name = n;
    hs[r->n_headers].value = v;
    r->n_headers++;
    return 0;
}

/* Resources and abilities: through the bridge, as the context's instance. */
static ph_res_call_t res_call(op_ctx_t *ctx)
{
    ph_res_call_t c = {ctx->owner->platcall, ctx->id, ctx->last_error, sizeof ctx->last_error};
    return c;
}

static int api_db_exec(op_ctx_t *ctx, const char *sql, const op_db_value_t *params,
                       size_t n_params, op_db_result_t **out)
{
    ph_res_call_t c = res_call(ctx);
    return ph_res_db_exec(&c, sql, params, n_params, out);
}

static int api_http_request(op_ctx_t *ctx, const char *method, const char *url,
                            const op_header_t *headers, size_t n_headers, const void *body,
                            size_t body_len, op_http_response_t **out)
{
    ph_res_call_t c = res_call(ctx);
    return ph_res_http_request(&c, method, url, headers, n_headers, body, body_len, out);
}

static int api_file_read(op_ctx_t *ctx, const char *path, void **data, size_t *len)
{
    ph_res_call_t c = res_call(ctx);
    return ph_res_file_read(&c, path, data, len);
}

static int api_file_write(op_ctx_t *ctx, const char *path, const void *data, size_t len)
{
    ph_res_call_t c = res_call(ctx);
    return ph_res_file_write(&c, path, data, len);
}

static int api_file_list(op_ctx_t *ctx, const char *dir, op_file_list_t **out)
{
    ph_res_call_t c = res_call(ctx);
    return ph_res_file_list(&c, dir, out);
}

static int api_file_delete(op_ctx_t *ctx, const char *path)
{
    ph_res_call_t c = res_call(ctx);
    return ph_res_file_delete(&c, path);
}

static int api_task_register(op_ctx_t *ctx, const char *cron, const char *name)
{
    ph_res_call_t c = res_call(ctx);
    return ph_res_task_register(&c, cron, name);
}

static int api_task_unregister(op_ctx_t *ctx, const char *name)
{
    ph_res_call_t c = res_call(ctx);
    return ph_res_task_unregister(&c, name);
}

static int api_service_register(op_ctx_t *ctx, unsigned port, const char *health_path)
{
    ph_res_call_t c = res_call(ctx);
    return ph_res_service_register(&c, port, health_path);
}

static int api_service_unregister(op_ctx_t *ctx)
{
    ph_res_call_t c = res_call(ctx);
    return ph_res_service_unregister(&c);
}

static const char *api_last_error(op_ctx_t *ctx) { return ctx->last_error; }

/* The table filled reserved slots without moving or growing: a plugin
 * built against the version-1 header sees the same layout. */
_Static_assert(sizeof(struct op_host_api) == 2 * sizeof(uint32_t) + 26 * sizeof(void *),
               "struct op_host_api must keep its size and layout");
_Static_assert(offsetof(struct op_host_api, db_exec) ==
                   offsetof(struct op_host_api, response_add_header) + sizeof(void *),
               "resources take the first reserved slot");

static const struct op_host_api g_api = {
    .size = sizeof(struct op_host_api),
    .version = OP_HOST_API_VERSION,
    .log = api_log,
    .config = api_config,
    .instance_id = api_instance_id,
    .org = api_org,
    .plugin_version = api_plugin_version,
    .user_data = api_user_data,
    .set_user_data = api_set_user_data,
    .response_set_status = api_response_set_status,
    .response_set_body = api_response_set_body,
    .response_add_header = api_response_add_header,
    .db_exec = api_db_exec,
    .http_request = api_http_request,
    .file_read = api_file_read,
    .file_write = api_file_write,
    .file_list = api_file_list,
    .file_delete = api_file_delete,
    .task_register = api_task_register,
    .task_unregister = api_task_unregister,
    .service_register = api_service_register,
    .service_unregister = api_service_unregister,
    .last_error = api_last_error,
};

static void response_clear(struct op_response *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* ---- loading (worker threads, under lib_lock) --------------------------- */

static const char *action_name(Plat__PluginAction a)
{
    switch (a) {
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_INSTALL:
        return "install";
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UNINSTALL:
        return "uninstall";
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_ENABLE:
        return "enable";
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_DISABLE:
        return "disable";
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UPGRADE:
        return "upgrade";
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_START:
        return "start";
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_STOP:
        return "stop";
    default:
        return "unknown";
    }
}

static int fail(ph_job_t *job, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(ph_job_t *job, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->message, sizeof job->message, fmt, ap);
    va_end(ap);
    job->code = code;
    return code;
}

/* Resolve package_dir/entry, refusing anything that leaves package_dir,
 * dlopen it and check its descriptor. */
static int lib_load(ph_plugins_t *p, ph_job_t *job, const Plat__PluginActionRequest *r,
                    ph_lib_t **out)
{
    char errbuf[128];
    const char *id = r->plugin, *ver = r->version;
    if (r->package_dir[0] != '/')
        return fail(job, -ENOEXEC, "package_dir of %s %s is not an absolute path: '%s'", id, ver,
                    r->package_dir);
    if (!r->entry[0] || r->entry[0] == '/')
        return fail(job, -ENOEXEC, "entry of %s %s must be a path relative to the package: '%s'",
                    id, ver, r->entry);
    char dir_real[PATH_MAX], entry_real[PATH_MAX], joined[PATH_MAX * 2];
    if (!realpath(r->package_dir, dir_real))
        return fail(job, -ENOEXEC, "cannot resolve package_dir %s: %s", r->package_dir,
                    strerror_r(errno, errbuf, sizeof errbuf));
    snprintf(joined, sizeof joined, "%s/%s", dir_real, r->entry);
    if (!realpath(joined, entry_real))
        return fail(job, -ENOEXEC, "cannot resolve entry %s of %s %s: %s", r->entry, id, ver,
                    strerror_r(errno, errbuf, sizeof errbuf));
    size_t dl = strlen(dir_real);
    if (strncmp(entry_real, dir_real, dl) != 0 || (dl > 1 && entry_real[dl] != '/'))
        return fail(job, -ENOEXEC, "entry %s of %s %s leads out of the package directory (to %s)",
                    r->entry, id, ver, entry_real);
    dlerror();
    void *h = dlopen(entry_real, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        return fail(job, -ENOEXEC, "cannot load %s of %s %s: %s", r->entry, id, ver,
                    e ? e : "dlopen failed");
    }
    /* From here the object stays loaded even when refused: its
     * constructors ran, and unloading code is what we never do. */
    const struct op_plugin *desc = dlsym(h, OP_PLUGIN_SYMBOL);
    if (!desc)
        return fail(job, -EPROTO,
                    "%s of %s %s exports no %s: not built with OP_PLUGIN_DEFINE from "
                    "<openplatform/plugin.h>",
                    r->entry, id, ver, OP_PLUGIN_SYMBOL);
    /* ABI 1 descriptors end after on_event; 2 appends on_task. */
    if (desc->abi_version < 1 || desc->abi_version > OP_PLUGIN_ABI_VERSION)
        return fail(job, -EPROTO,
                    "%s %s (%s) is built for plugin ABI version %u; this host runs ABI "
                    "version %u and still loads ABI version 1",
                    id, ver, r->entry, (unsigned)desc->abi_version,
                    (unsigned)OP_PLUGIN_ABI_VERSION);
    ph_lib_t *lib = calloc(1, sizeof *lib);
    if (!lib || !(lib->plugin = strdup(id)) || !(lib->version = strdup(ver)) ||
        !(lib->path = strdup(entry_real))) {
        if (lib) {
            free(lib->plugin);
            free(lib->version);
        }
        free(lib);
        return fail(job, -ENOMEM, "out of memory loading %s %s", id, ver);
    }
    lib->desc = desc;
    lib->on_task = desc->abi_version >= 2 ? desc->on_task : NULL;
    lib->next = p->libs;
    p->libs = lib;
    plat_log_info("plugins", "loaded plugin=%s version=%s name=%s abi=%u path=%s", id, ver,
                  desc->name ? desc->name : "-", (unsigned)desc->abi_version, entry_real);
    *out = lib;
    return 0;
}

static int lib_get(ph_plugins_t *p, ph_job_t *job, const Plat__PluginActionRequest *r,
                   const ph_lib_t **out)
{
    pthread_mutex_lock(&p->lib_lock);
    ph_lib_t *lib = p->libs;
    while (lib && (strcmp(lib->plugin, r->plugin) != 0 || strcmp(lib->version, r->version) != 0))
        lib = lib->next;
    int rc = lib ? 0 : lib_load(p, job, r, &lib);
    pthread_mutex_unlock(&p->lib_lock);
    *out = lib;
    return rc;
}

/* ---- hooks (worker threads) -------------------------------------------- */

static int run_action(ph_job_t *job)
{
    ph_instance_t *inst = job->inst;
    const Plat__PluginActionRequest *r = job->copy->plugin->action;
    const ph_lib_t *lib = NULL;
    if (lib_get(inst->owner, job, r, &lib) < 0)
        return job->code;
    job->lib = lib;
    inst->hook_lib = lib;
    const struct op_plugin *d = lib->desc;
    int rc = 0;
    switch (r->action) {
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_INSTALL:
        rc = d->install ? d->install(inst) : 0;
        break;
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UNINSTALL:
        rc = d->uninstall ? d->uninstall(inst) : 0;
        break;
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_ENABLE:
        rc = d->enable ? d->enable(inst) : 0;
        break;
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_DISABLE:
        rc = d->disable ? d->disable(inst) : 0;
        break;
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UPGRADE:
        rc = d->upgrade ? d->upgrade(inst, r->from_version) : 0;
        break;
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_START:
        rc = d->start ? d->start(inst) : 0;
        break;
    case PLAT__PLUGIN_ACTION__PLUGIN_ACTION_STOP:
        rc = d->stop ? d->stop(inst) : 0;
        break;
    default: /* refused by ph_plugins_action */
        rc = -EINVAL;
        break;
    }
    inst->hook_lib = NULL;
    char errbuf[128];
    if (rc > 0)
        return fail(job, -EPROTO, "%s hook of %s %s returned %d (must be 0 or a negative errno)",
                    action_name(r->action), lib->plugin, lib->version, rc);
    if (rc < 0)
        return fail(job, rc, "%s hook of %s %s failed: %s", action_name(r->action), lib->plugin,
                    lib->version, strerror_r(-rc, errbuf, sizeof errbuf));
    return 0;
}

static int run_event(ph_job_t *job)
{
    ph_instance_t *inst = job->inst;
    const Plat__PluginEvent *ev = job->copy->plugin->event;
    const ph_lib_t *lib = inst->lib;
    if (!lib)
        return fail(job, -ENOENT, "instance %s has no plugin loaded (no action succeeded yet)",
                    inst->id);
    if (!lib->desc->on_event)
        return fail(job, -EOPNOTSUPP, "%s %s has no on_event hook", lib->plugin, lib->version);
    op_header_t *hs = NULL;
    if (ev->n_headers && !(hs = calloc(ev->n_headers, sizeof *hs)))
        return fail(job, -ENOMEM, "out of memory");
    for (size_t i = 0; i < ev->n_headers; i++) {
        hs[i].name = ev->headers[i]->name;
        hs[i].value = ev->headers[i]->value;
    }
    op_request_t req = {
        .method = ev->method,
        .path = ev->path,
        .headers = hs,
        .n_headers = ev->n_headers,
        .body = ev->body.len ? ev->body.data : NULL,
        .body_len = ev->body.len,
    };
    job->resp.api = &g_api;
    job->resp.status = 200;
    inst->hook_lib = lib;
    int rc = lib->desc->on_event(inst, &req, &job->resp);
    inst->hook_lib = NULL;
    free(hs);
    char errbuf[128];
    if (rc > 0)
        return fail(job, -EPROTO, "on_event of %s %s returned %d (must be 0 or a negative errno)",
                    lib->plugin, lib->version, rc);
    if (rc < 0)
        return fail(job, rc, "on_event of %s %s failed: %s", lib->plugin, lib->version,
                    strerror_r(-rc, errbuf, sizeof errbuf));
    return 0;
}

static int run_task(ph_job_t *job)
{
    ph_instance_t *inst = job->inst;
    const ph_lib_t *lib = inst->lib;
    if (!lib)
        return fail(job, -ENOENT, "instance %s has no plugin loaded (no action succeeded yet)",
                    inst->id);
    if (!lib->on_task)
        return fail(job, -EOPNOTSUPP, "%s %s has no on_task hook%s", lib->plugin, lib->version,
                    lib->desc->abi_version < 2 ? " (built for plugin ABI 1)" : "");
    inst->hook_lib = lib;
    inst->last_error[0] = '\0';
    int rc = lib->on_task(inst, job->task, job->task_scheduled_ms, job->task_missed ? 1 : 0);
    inst->hook_lib = NULL;
    char errbuf[128];
    if (rc > 0)
        return fail(job, -EPROTO, "on_task of %s %s returned %d (must be 0 or a negative errno)",
                    lib->plugin, lib->version, rc);
    if (rc < 0)
        return fail(job, rc, "on_task %s of %s %s failed: %s", job->task, lib->plugin,
                    lib->version, strerror_r(-rc, errbuf, sizeof errbuf));
    return 0;
}

static void work_cb(uv_work_t *w)
{
    ph_job_t *job = w->data;
    job->inst->last_error[0] = '\0';
    if (job->kind == JOB_EVENT)
        run_event(job);
    else if (job->kind == JOB_TASK)
        run_task(job);
    else
        run_action(job);
}

/* ---- instances and queues (loop thread) --------------------------------- */

static size_t bucket_of(const char *id)
{
    size_t h = 5381;
    for (const unsigned char *s = (const unsigned char *)id; *s; s++)
        h = h * 33 + *s;
    return h % INSTANCE_BUCKETS;
}

static ph_instance_t *instance_find(const ph_plugins_t *p, const char *id)
{
    for (ph_instance_t *i = p->buckets[bucket_of(id)]; i; i = i->next)
        if (strcmp(i->id, id) == 0)
            return i;
    return NULL;
}

static ph_instance_t *instance_new(ph_plugins_t *p, const char *id)
{
    ph_instance_t *i = calloc(1, sizeof *i);
    if (!i || !(i->id = strdup(id)) || !(i->org = strdup("")) || !(i->config = strdup("{}"))) {
        if (i) {
            free(i->id);
            free(i->org);
        }
        free(i);
        return NULL;
    }
    i->api = &g_api;
    i->owner = p;
    size_t b = bucket_of(id);
    i->next = p->buckets[b];
    p->buckets[b] = i;
    p->n_instances++;
    return i;
}

static void instance_free(ph_plugins_t *p, ph_instance_t *inst)
{
    ph_instance_t **pp = &p->buckets[bucket_of(inst->id)];
    while (*pp && *pp != inst)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = inst->next;
        p->n_instances--;
    }
    free(inst->id);
    free(inst->org);
    free(inst->config);
    free(inst);
}

static void job_free(ph_job_t *job)
{
    if (!job)
        return;
    plat_envelope_free(&job->copy);
    free(job->task);
    response_clear(&job->resp);
    free(job);
}

/* Build the REPLY body for a finished job and hand it to the owner. */
static void job_complete(ph_job_t *job)
{
    Plat__PlatformMessage *reply = NULL;
    if (job->kind == JOB_TASK) {
        reply = ph_msg_ability_result(job->code, job->message, job->code ? job->inst->id : NULL);
    } else if (job->kind == JOB_ACTION) {
        reply = plat_msg_plugin_action_result(job->code, job->message,
                                              job->code ? job->inst->id : NULL);
    } else if (job->code) {
        reply = plat_msg_plugin_response(500, NULL, NULL, 0, job->code, job->message);
    } else {
        reply = plat_msg_plugin_response(job->resp.status ? job->resp.status : 200, NULL,
                                         job->resp.body, job->resp.body_len, 0, NULL);
        for (size_t i = 0; reply && i < job->resp.n_headers; i++)
            if (plat_msg_plugin_response_add_header(reply, job->resp.headers[i].name,
                                                    job->resp.headers[i].value) < 0)
                plat_envelope_free(&reply);
    }
    job->cb(job->code, job->message, reply, job->arg);
    plat_envelope_free(&reply);
    job_free(job);
}

static void after_work_cb(uv_work_t *w, int status);

/* Start the head job of `inst` if none runs. Requests queued behind a
 * running one wait in the instance's queue, not on the threadpool, so one
 * busy instance never holds more than one pool thread. */
static void instance_kick(ph_plugins_t *p, ph_instance_t *inst)
{
    while (!inst->busy && inst->head) {
        ph_job_t *job = inst->head;
        if (job->kind == JOB_ACTION) {
            /* The hook sees the config and org the platform sent with it. */
            const Plat__PluginActionRequest *r = job->copy->plugin->action;
            char *cfg = strdup(r->config_json[0] ? r->config_json : "{}");
            char *org = strdup(r->org);
            if (!cfg || !org) {
                free(cfg);
                free(org);
                inst->head = job->next;
                fail(job, -ENOMEM, "out of memory");
                job_complete(job);
                continue;
            }
            free(inst->config);
            free(inst->org);
            inst->config = cfg;
            inst->org = org;
        }
        job->work.data = job;
        int rc = uv_queue_work(p->loop, &job->work, work_cb, after_work_cb);
        if (rc < 0) {
            inst->head = job->next;
            fail(job, -EIO, "cannot queue the hook: %s", uv_strerror(rc));
            job_complete(job);
            continue;
        }
        inst->busy = true;
        p->n_running++;
    }
    if (!inst->head)
        inst->tail = NULL;
}

static void plugins_free(ph_plugins_t *p)
{
    for (size_t b = 0; b < INSTANCE_BUCKETS; b++)
        while (p->buckets[b])
            instance_free(p, p->buckets[b]);
    while (p->libs) {
        ph_lib_t *l = p->libs;
        p->libs = l->next;
        free(l->plugin);
        free(l->version);
        free(l->path);
        free(l);
    }
    pthread_mutex_destroy(&p->lib_lock);
    ph_platcall_free(&p->platcall);
    free(p);
}

static void log_result(const ph_job_t *job)
{
    const ph_instance_t *inst = job->inst;
    if (job->kind == JOB_TASK) {
        if (job->code)
            plat_log_warn("plugins", "task failed: %s code=%d task=%s instance=%s", job->message,
                          job->code, job->task, inst->id);
        else
            plat_log_debug("plugins", "task ran task=%s missed=%d instance=%s", job->task,
                           job->task_missed, inst->id);
        return;
    }
    if (job->kind == JOB_EVENT) {
        if (job->code)
            plat_log_warn("plugins", "event failed: %s code=%d instance=%s", job->message,
                          job->code, inst->id);
        else
            plat_log_debug("plugins", "event answered status=%u bytes=%zu instance=%s",
                           job->resp.status, job->resp.body_len, inst->id);
        return;
    }
    const Plat__PluginActionRequest *r = job->copy->plugin->action;
    if (job->code)
        plat_log_warn("plugins", "%s failed: %s code=%d instance=%s plugin=%s version=%s",
                      action_name(r->action), job->message, job->code, inst->id, r->plugin,
                      r->version);
    else
        plat_log_info("plugins", "%s done instance=%s plugin=%s version=%s",
                      action_name(r->action), inst->id, r->plugin, r->version);
}

static void after_work_cb(uv_work_t *w, int status)
{
    ph_job_t *job = w->data;
    ph_instance_t *inst = job->inst;
    ph_plugins_t *p = inst->owner;
    inst->busy = false;
    inst->head = job->next;
    if (status == UV_ECANCELED)
        fail(job, -ECANCELED, "cancelled: the plugin host is stopping");
    bool drop = false;
    if (job->kind == JOB_ACTION && job->lib) {
        /* The version a hook ran in becomes the instance's, except after a
         * failed upgrade: the old one stays, for the rollback. */
        Plat__PluginAction a = job->copy->plugin->action->action;
        if (job->code == 0 || a != PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UPGRADE)
            inst->lib = job->lib;
        drop = job->code == 0 && a == PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UNINSTALL;
    }
    log_result(job);
    job_complete(job);
    if (drop) {
        /* Uninstalled: a request already queued for the same id starts
         * from a fresh context. */
        inst->lib = NULL;
        inst->user_data = NULL;
    }
    if (p->closing) {
        while (inst->head) {
            ph_job_t *j = inst->head;
            inst->head = j->next;
            fail(j, -ECANCELED, "cancelled: the plugin host is stopping");
            job_complete(j);
        }
    } else {
        instance_kick(p, inst);
    }
    if (!inst->busy && !inst->head && (drop || !inst->lib))
        instance_free(p, inst); /* nothing ever loaded, or uninstalled */
    if (--p->n_running == 0 && p->closing)
        plugins_free(p);
}

/* ---- public ------------------------------------------------------------ */

ph_plugins_t *ph_plugins_new(uv_loop_t *loop)
{
    ph_plugins_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->loop = loop;
    pthread_mutex_init(&p->lib_lock, NULL);
    return p;
}

void ph_plugins_close(ph_plugins_t **pp)
{
    if (!pp || !*pp)
        return;
    ph_plugins_t *p = *pp;
    *pp = NULL;
    if (p->closing)
        return;
    p->closing = true;
    /* Fail what has not started; the running hooks finish on their own.
     * Collect first: completing may free an idle instance's queue. */
    for (size_t b = 0; b < INSTANCE_BUCKETS; b++) {
        for (ph_instance_t *i = p->buckets[b]; i; i = i->next) {
            ph_job_t **jp = i->busy ? &i->head->next : &i->head;
            while (*jp) {
                ph_job_t *j = *jp;
                *jp = j->next;
                fail(j, -ECANCELED, "cancelled: the plugin host is stopping");
                j->next = NULL;
                job_complete(j);
            }
            i->tail = i->busy ? i->head : NULL;
            if (i->busy)
                uv_cancel((uv_req_t *)&i->head->work); /* -EBUSY once started: fine */
        }
    }
    if (p->n_running == 0)
        plugins_free(p);
}

static ph_job_t *job_new(ph_done_cb cb, void *arg)
{
    ph_job_t *job = calloc(1, sizeof *job);
    if (job) {
        job->cb = cb;
        job->arg = arg;
    }
    return job;
}

static void enqueue(ph_plugins_t *p, ph_instance_t *inst, ph_job_t *job)
{
    job->inst = inst;
    if (inst->tail)
        inst->tail->next = job;
    else
        inst->head = job;
    inst->tail = job;
    instance_kick(p, inst);
}

int ph_plugins_action(ph_plugins_t *p, const Plat__PluginActionRequest *r, ph_done_cb cb,
                      void *arg)
{
    if (!p || !r || !cb || p->closing || !r->instance || !r->instance[0] ||
        r->action < PLAT__PLUGIN_ACTION__PLUGIN_ACTION_INSTALL ||
        r->action > PLAT__PLUGIN_ACTION__PLUGIN_ACTION_STOP)
        return -EINVAL;
    ph_job_t *job = job_new(cb, arg);
    if (!job)
        return -ENOMEM;
    job->copy = plat_msg_plugin_action(r->instance, r->action, r->plugin, r->version,
                                       r->package_dir, r->entry, r->config_json, r->from_version,
                                       r->org, r->timeout_ms);
    ph_instance_t *inst = job->copy ? instance_find(p, r->instance) : NULL;
    if (job->copy && !inst)
        inst = instance_new(p, r->instance);
    if (!inst) {
        job_free(job);
        return -ENOMEM;
    }
    plat_log_debug("plugins", "%s queued instance=%s plugin=%s version=%s",
                   action_name(r->action), r->instance, r->plugin, r->version);
    enqueue(p, inst, job);
    return 0;
}

int ph_plugins_event(ph_plugins_t *p, const Plat__PluginEvent *ev, ph_done_cb cb, void *arg)
{
    if (!p || !ev || !cb || p->closing || !ev->instance)
        return -EINVAL;
    ph_instance_t *inst = instance_find(p, ev->instance);
    if (!inst)
        return -ENOENT;
    ph_job_t *job = job_new(cb, arg);
    if (!job)
        return -ENOMEM;
    job->kind = JOB_EVENT;
    job->copy = plat_msg_plugin_event(ev->instance, ev->method, ev->path,
                                      (const Plat__HttpHeader *const *)ev->headers, ev->n_headers,
                                      ev->body.data, ev->body.len);
    if (!job->copy) {
        job_free(job);
        return -ENOMEM;
    }
    enqueue(p, inst, job);
    return 0;
}

int ph_plugins_task(ph_plugins_t *p, const Plat__AbilityTrigger *t, ph_done_cb cb, void *arg)
{
    if (!p || !t || !cb || p->closing || !t->instance || !t->name || !t->name[0])
        return -EINVAL;
    ph_instance_t *inst = instance_find(p, t->instance);
    if (!inst)
        return -ENOENT;
    ph_job_t *job = job_new(cb, arg);
    if (!job)
        return -ENOMEM;
    job->kind = JOB_TASK;
    job->task_scheduled_ms = t->scheduled_unix_ms;
    job->task_missed = t->missed;
    if (!(job->task = strdup(t->name))) {
        job_free(job);
        return -ENOMEM;
    }
    enqueue(p, inst, job);
    return 0;
}

void ph_plugins_set_platcall(ph_plugins_t *p, ph_platcall_t *pc)
{
    if (!p) {
        ph_platcall_free(&pc);
        return;
    }
    ph_platcall_free(&p->platcall);
    p->platcall = pc;
}

ph_platcall_t *ph_plugins_platcall(const ph_plugins_t *p) { return p ? p->platcall : NULL; }

bool ph_plugins_busy(const ph_plugins_t *p) { return p && p->n_running > 0; }

size_t ph_plugins_instance_count(const ph_plugins_t *p) { return p ? p->n_instances : 0; }

bool ph_plugins_has_instance(const ph_plugins_t *p, const char *instance)
{
    return p && instance && instance_find(p, instance) != NULL;
}

void ph_plugins_foreach_loaded(const ph_plugins_t *p, void (*fn)(const char *instance, void *arg),
                               void *arg)
{
    if (!p)
        return;
    for (size_t b = 0; b < INSTANCE_BUCKETS; b++)
        for (const ph_instance_t *i = p->buckets[b]; i; i = i->next)
            if (i->lib)
                fn(i->id, arg);
}
