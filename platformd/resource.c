/* The Resource channel (see resource.h). */
#include "resource.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifecycle.h"
#include "res_db.h"
#include "res_file.h"
#include "res_http.h"
#include "store.h"

#define COMP "resource"

typedef struct res_inst res_inst_t;

typedef enum {
    JOB_DB,
    JOB_FILE,
    JOB_FORGET,
} job_kind_t;

/* One operation for one instance: queued, then on the thread pool. */
typedef struct job {
    struct job *next;
    uv_work_t work;
    res_inst_t *inst;
    job_kind_t kind;
    Plat__PlatformMessage *req; /* owned copy of the request (NULL for FORGET) */
    char host[PLAT_ID_MAX + 1];
    pd_res_db_limits_t db_limits;
    pd_res_file_opts_t file_opts;
    uint64_t queued_ms;
    /* outcome, written by the worker */
    int err;
    char why[256];
    Plat__DbExecResult *db_out;
    Plat__FileResult *file_out;
} job_t;

struct res_inst {
    res_inst_t *next;
    pd_resources_t *rs;
    char uuid[PLAT_UUID_LEN + 1];
    char dir[PATH_MAX + 64]; /* <rs->dir>/<uuid> */
    /* Touched only by the job on the thread pool, or by the loop thread
     * while no job is (busy == false). */
    pd_res_db_t *db;
    job_t *head, *tail; /* waiting */
    size_t queued;
    bool busy;           /* a job is on the thread pool */
    bool forgetting;     /* a FORGET job is queued or running */
    bool remove_at_stop; /* stop dropped a queued FORGET: the running job removes it */
    /* The manifest of (plugin, version), loaded on the loop thread. */
    char plugin[PD_STORE_ID_MAX + 1];
    char version[PD_STORE_VERSION_MAX + 1];
    pd_manifest_t manifest;
    bool have_manifest;
};

struct pd_resources {
    pd_t *pd;
    char dir[PATH_MAX]; /* <state.dir>/instances, absolute */
    res_inst_t *insts;
    size_t inflight; /* jobs on the thread pool */
    bool stopping;   /* pd_resources_stop ran: freed when inflight drops to 0 */
};

/* An HTTP request handed to res_http.c. */
typedef struct {
    pd_t *pd;
    Plat__PlatformMessage *req; /* owned copy */
    char host[PLAT_ID_MAX + 1];
    char uuid[PLAT_UUID_LEN + 1];
} http_ctx_t;

static const char *const g_kind_name[PD_METRICS_RES_KINDS] = {"unknown", "db", "http", "file"};

static unsigned kind_index(int kind)
{
    return kind > 0 && kind < PD_METRICS_RES_KINDS ? (unsigned)kind : 0;
}

/* `s` with control characters replaced, for one-line logs. */
static const char *clean(const char *s, char *buf, size_t size)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    buf[i] = '\0';
    return buf;
}

static const char *file_op_name(Plat__FileOp op)
{
    switch (op) {
    case PLAT__FILE_OP__FILE_OP_READ:
        return "read";
    case PLAT__FILE_OP__FILE_OP_WRITE:
        return "write";
    case PLAT__FILE_OP__FILE_OP_LIST:
        return "list";
    case PLAT__FILE_OP__FILE_OP_DELETE:
        return "delete";
    default:
        return "?";
    }
}

/* ---- replies ------------------------------------------------------------ */

/* Answer `req` with a ResourceResponse: `err` < 0 with `why`, or the
 * result (db and file are taken over and freed; http is borrowed). A
 * result too large for the bus is answered -EFBIG instead. Returns the
 * code actually sent. */
static int send_response(pd_t *pd, const Plat__PlatformMessage *req, const char *uuid, int err,
                         const char *why, Plat__DbExecResult **db, Plat__FileResult **file,
                         Plat__HttpResponse *http)
{
    if (!pd->bus) { /* stopping: nobody to answer */
        pd_res_db_result_free(db);
        pd_res_file_result_free(file);
        return err;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE);
        Plat__ResourceResponse *r = m ? malloc(sizeof *r) : NULL;
        if (!r) {
            plat_envelope_free(&m);
            pd_res_db_result_free(db);
            pd_res_file_result_free(file);
            plat_bus_reply_error(pd->bus, req, -ENOMEM, "out of memory", uuid);
            return -ENOMEM;
        }
        plat__resource_response__init(r);
        m->resource->body_case = PLAT__RESOURCE_MESSAGE__BODY_RESPONSE;
        m->resource->response = r;
        int rc = 0;
        if (err < 0) {
            r->error = malloc(sizeof *r->error);
            if (r->error) {
                plat__error_message__init(r->error);
                r->error->code = err;
                r->error->message = plat_msg_strdup(why ? why : strerror(-err));
                r->error->detail = plat_msg_strdup(uuid);
            }
            rc = !r->error || !r->error->message || !r->error->detail
                     ? -ENOMEM
                     : plat_msg_set_error(m, err, why ? why : strerror(-err), uuid);
        } else if (db && *db) {
            r->result_case = PLAT__RESOURCE_RESPONSE__RESULT_DB;
            r->db = *db;
            *db = NULL;
        } else if (file && *file) {
            r->result_case = PLAT__RESOURCE_RESPONSE__RESULT_FILE;
            r->file = *file;
            *file = NULL;
        } else if (http) {
            r->result_case = PLAT__RESOURCE_RESPONSE__RESULT_HTTP;
            r->http = http;
        }
        if (rc == 0)
            rc = plat_bus_reply(pd->bus, req, m);
        if (r->result_case == PLAT__RESOURCE_RESPONSE__RESULT_HTTP)
            r->http = NULL, r->result_case = PLAT__RESOURCE_RESPONSE__RESULT__NOT_SET;
        plat_envelope_free(&m);
        if (rc == -EMSGSIZE && err == 0) {
            err = -EFBIG;
            why = "result larger than the bus message size (bus.max_msg_size)";
            continue;
        }
        if (rc < 0)
            plat_log_warn(COMP, "reply not sent: %s instance=%s to=%s seq=%llu", strerror(-rc),
                          uuid, req->header->source->id, (unsigned long long)req->header->seq_no);
        return err;
    }
    return err;
}

/* Count and log one answered request. */
static void account(pd_t *pd, unsigned kind, int err, const char *what, const char *uuid,
                    const char *host, const char *why)
{
    char b[320];
    if (err == 0) {
        pd->metrics.resource_ok[kind]++;
        plat_log_debug(COMP, "%s %s ok instance=%s host=%s", g_kind_name[kind], what, uuid, host);
        return;
    }
    pd->metrics.resource_failed[kind]++;
    if (err == -EACCES) {
        pd->metrics.resource_denied[kind]++;
        plat_log_warn(COMP, "%s %s denied: %s instance=%s host=%s", g_kind_name[kind], what,
                      clean(why, b, sizeof b), uuid, host);
    } else {
        /* A missing file or row is routine for a plugin: debug only. */
        plat_log(err == -ENOENT ? PLAT_LOG_DEBUG : PLAT_LOG_INFO, COMP,
                 "%s %s failed: %s (%s) instance=%s host=%s", g_kind_name[kind], what,
                 clean(why, b, sizeof b), strerror(-err), uuid, host);
    }
}

/* Refuse a request before dispatch: answer, count, log. */
static void refuse(pd_t *pd, const plat_bus_rx_t *rx, unsigned kind, const char *uuid,
                   const char *host, int err, const char *why)
{
    char ub[PLAT_UUID_LEN + 8];
    const char *u = clean(uuid && *uuid ? uuid : "-", ub, sizeof ub);
    send_response(pd, rx->msg, u, err, why, NULL, NULL, NULL);
    account(pd, kind, err, "request", u, host, why);
}

/* ---- instances ---------------------------------------------------------- */

static res_inst_t *inst_find(pd_resources_t *rs, const char *uuid)
{
    for (res_inst_t *i = rs->insts; i; i = i->next)
        if (strcmp(i->uuid, uuid) == 0)
            return i;
    return NULL;
}

static res_inst_t *inst_get(pd_resources_t *rs, const char *uuid)
{
    res_inst_t *i = inst_find(rs, uuid);
    if (i)
        return i;
    i = calloc(1, sizeof *i);
    if (!i)
        return NULL;
    i->rs = rs;
    snprintf(i->uuid, sizeof i->uuid, "%s", uuid);
    snprintf(i->dir, sizeof i->dir, "%s/%s", rs->dir, uuid);
    i->next = rs->insts;
    rs->insts = i;
    return i;
}

/* Unlink and free an instance that has no job on the thread pool. */
static void inst_free(pd_resources_t *rs, res_inst_t *inst)
{
    for (res_inst_t **p = &rs->insts; *p; p = &(*p)->next)
        if (*p == inst) {
            *p = inst->next;
            break;
        }
    pd_res_db_close(&inst->db);
    pd_manifest_free(&inst->manifest);
    free(inst);
}

static void job_free(job_t *job)
{
    if (!job)
        return;
    plat_envelope_free(&job->req);
    pd_res_db_result_free(&job->db_out);
    pd_res_file_result_free(&job->file_out);
    free(job);
}

static job_t *dequeue(res_inst_t *inst)
{
    job_t *j = inst->head;
    if (j) {
        inst->head = j->next;
        if (!inst->head)
            inst->tail = NULL;
        inst->queued--;
        j->next = NULL;
    }
    return j;
}

static void enqueue(res_inst_t *inst, job_t *job, bool front)
{
    job->next = NULL;
    if (front) {
        job->next = inst->head;
        inst->head = job;
        if (!inst->tail)
            inst->tail = job;
    } else {
        if (inst->tail)
            inst->tail->next = job;
        else
            inst->head = job;
        inst->tail = job;
    }
    inst->queued++;
}

/* ---- the thread pool ---------------------------------------------------- */

static int mkdir_0700(const char *path)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static void work_db(job_t *job)
{
    res_inst_t *inst = job->inst;
    if (!inst->db) {
        char path[PATH_MAX + 96];
        int rc = mkdir_0700(inst->dir);
        if (rc < 0) {
            job->err = rc;
            snprintf(job->why, sizeof job->why, "instance directory: %s", strerror(-rc));
            return;
        }
        snprintf(path, sizeof path, "%s/db.sqlite", inst->dir);
        rc = pd_res_db_open(path, &inst->db, job->why, sizeof job->why);
        if (rc < 0) {
            job->err = rc == -EACCES ? -EIO : rc; /* not the plugin's doing */
            return;
        }
    }
    const Plat__ResourceRequest *rq = job->req->resource->request;
    job->err =
        pd_res_db_exec(inst->db, rq->db, &job->db_limits, &job->db_out, job->why, sizeof job->why);
}

static void work_file(job_t *job)
{
    res_inst_t *inst = job->inst;
    char path[PATH_MAX + 96];
    snprintf(path, sizeof path, "%s/files", inst->dir);
    int rc = mkdir_0700(inst->dir);
    if (rc == 0)
        rc = mkdir_0700(path);
    int root = rc < 0 ? rc : open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root < 0) {
        job->err = rc < 0 ? rc : -errno;
        job->err = job->err == -ELOOP ? -EIO : job->err;
        snprintf(job->why, sizeof job->why, "instance directory: %s", strerror(-job->err));
        return;
    }
    const Plat__ResourceRequest *rq = job->req->resource->request;
    job->err = pd_res_file_exec(root, rq->file, &job->file_opts, &job->file_out, job->why,
                                sizeof job->why);
    close(root);
}

static void work_forget(job_t *job)
{
    res_inst_t *inst = job->inst;
    pd_res_db_close(&inst->db);
    job->err = pd_res_file_remove_tree(inst->dir);
    if (job->err < 0)
        snprintf(job->why, sizeof job->why, "%s", strerror(-job->err));
}

static void work_cb(uv_work_t *w)
{
    job_t *job = w->data;
    switch (job->kind) {
    case JOB_DB:
        work_db(job);
        break;
    case JOB_FILE:
        work_file(job);
        break;
    case JOB_FORGET:
        work_forget(job);
        break;
    }
}

static void after_cb(uv_work_t *w, int status);

static void submit(res_inst_t *inst, job_t *job)
{
    pd_resources_t *rs = inst->rs;
    job->work.data = job;
    inst->busy = true;
    rs->inflight++;
    int rc = uv_queue_work(rs->pd->loop, &job->work, work_cb, after_cb);
    if (rc < 0) { /* cannot happen with a valid loop and callbacks */
        job->err = -EIO;
        snprintf(job->why, sizeof job->why, "uv_queue_work: %s", uv_strerror(rc));
        after_cb(&job->work, rc);
    }
}

static void finish_job(pd_t *pd, job_t *job)
{
    res_inst_t *inst = job->inst;
    const Plat__ResourceRequest *rq = job->req->resource->request;
    unsigned kind = kind_index(rq->kind);
    char what[32];
    if (job->kind == JOB_FILE)
        snprintf(what, sizeof what, "%s", file_op_name(rq->file->op));
    else
        snprintf(what, sizeof what, "exec");
    int err = send_response(pd, job->req, inst->uuid, job->err, job->why, &job->db_out,
                            &job->file_out, NULL);
    if (job->kind == JOB_FILE && err == -EACCES) {
        char pb[160];
        char why[sizeof job->why + 200];
        snprintf(why, sizeof why, "%s path=\"%s\"", job->why, clean(rq->file->path, pb, sizeof pb));
        account(pd, kind, err, what, inst->uuid, job->host, why);
    } else {
        account(pd, kind, err, what, inst->uuid, job->host,
                err == job->err ? job->why : "result too large");
    }
}

static void after_cb(uv_work_t *w, int status)
{
    (void)status;
    job_t *job = w->data;
    res_inst_t *inst = job->inst;
    pd_resources_t *rs = inst->rs;
    rs->inflight--;
    inst->busy = false;
    if (job->kind == JOB_FORGET) {
        if (job->err < 0)
            plat_log_warn(COMP, "instance data not removed: %s instance=%s dir=%s", job->why,
                          inst->uuid, inst->dir);
        else
            plat_log_info(COMP, "instance data removed instance=%s", inst->uuid);
        job_free(job);
        inst_free(rs, inst);
    } else if (rs->stopping) {
        job_free(job); /* the bus is going: not answered */
        if (inst->remove_at_stop) {
            pd_res_db_close(&inst->db);
            pd_res_file_remove_tree(inst->dir);
        }
        inst_free(rs, inst);
    } else {
        finish_job(rs->pd, job);
        job_free(job);
        job_t *next = dequeue(inst);
        if (next)
            submit(inst, next);
    }
    if (rs->stopping && rs->inflight == 0 && !rs->insts)
        free(rs);
}

/* ---- the handler -------------------------------------------------------- */

static bool attached_to(pd_t *pd, const char *uuid, const char *host)
{
    if (!pd->lifecycle)
        return false;
    json_t *ids = pd_lifecycle_host_instances(pd->lifecycle, host);
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), uuid) == 0) {
            found = true;
            break;
        }
    }
    json_decref(ids);
    return found;
}

int pd_resources_manifest(pd_t *pd, const char *uuid, pd_manifest_t *out, char *why,
                          size_t why_size)
{
    memset(out, 0, sizeof *out);
    if (!pd->lifecycle) {
        snprintf(why, why_size, "platform stopping");
        return -ECANCELED;
    }
    pd_store_instance_t in;
    int rc = pd_store_get_instance(pd_lifecycle_store(pd->lifecycle), uuid, &in);
    if (rc < 0) {
        snprintf(why, why_size, "unknown instance");
        return rc == -ENOENT ? -ENOENT : rc;
    }
    char *dir = pd_package_path(pd_lifecycle_packages_dir(pd->lifecycle), in.plugin, in.version);
    if (!dir) {
        rc = errno ? -errno : -ENOENT;
        snprintf(why, why_size, "package %s %s not found", in.plugin, in.version);
    } else {
        rc = pd_manifest_load(dir, out, why, why_size);
        free(dir);
    }
    pd_store_instance_clear(&in);
    return rc;
}

/* The instance's manifest, cached per (plugin, version). NULL with why. */
static const pd_manifest_t *inst_manifest(pd_t *pd, res_inst_t *inst, int *err, char *why,
                                          size_t why_size)
{
    pd_store_instance_t in;
    int rc = pd->lifecycle
                 ? pd_store_get_instance(pd_lifecycle_store(pd->lifecycle), inst->uuid, &in)
                 : -ECANCELED;
    if (rc < 0) {
        *err = rc == -ECANCELED ? rc : -ENOENT;
        snprintf(why, why_size, "unknown instance");
        return NULL;
    }
    bool same = inst->have_manifest && strcmp(in.plugin, inst->plugin) == 0 &&
                strcmp(in.version, inst->version) == 0;
    pd_store_instance_clear(&in);
    if (same)
        return &inst->manifest;
    pd_manifest_free(&inst->manifest);
    inst->have_manifest = false;
    rc = pd_resources_manifest(pd, inst->uuid, &inst->manifest, why, why_size);
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    snprintf(inst->plugin, sizeof inst->plugin, "%s", inst->manifest.id);
    snprintf(inst->version, sizeof inst->version, "%s", inst->manifest.version);
    inst->have_manifest = true;
    return &inst->manifest;
}

/* The largest payload a reply can carry. */
static int64_t reply_room(const pd_t *pd)
{
    int64_t max = pd->cfg->bus.max_msg_size > 0 ? pd->cfg->bus.max_msg_size
                                                : (int64_t)PLAT_MAX_MSG_SIZE_DEFAULT;
    return max > (int64_t)PD_RES_REPLY_OVERHEAD * 2 ? max - (int64_t)PD_RES_REPLY_OVERHEAD
                                                    : max / 2;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static void http_done(void *arg, int err, const char *why, Plat__HttpResponse *resp)
{
    http_ctx_t *c = arg;
    /* res_http.c counted and logged the outcome already. */
    send_response(c->pd, c->req, c->uuid, err, why, NULL, NULL, err == 0 ? resp : NULL);
    plat_envelope_free(&c->req);
    free(c);
}

static void dispatch_http(pd_t *pd, const plat_bus_rx_t *rx, const char *uuid, const char *host,
                          const pd_manifest_t *m)
{
    http_ctx_t *c = calloc(1, sizeof *c);
    Plat__PlatformMessage *copy =
        c ? plat__platform_message__unpack(NULL, rx->raw_len, rx->raw) : NULL;
    if (!copy) {
        free(c);
        refuse(pd, rx, PLAT__RESOURCE_KIND__RESOURCE_KIND_HTTP, uuid, host, -ENOMEM,
               "out of memory");
        return;
    }
    c->pd = pd;
    c->req = copy;
    snprintf(c->host, sizeof c->host, "%s", host);
    snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
    int rc = pd_res_http_request(pd, uuid, m, copy->resource->request->http, http_done, c);
    if (rc < 0) {
        /* Counted and logged by res_http.c; only answer. */
        const char *w = rc == -EACCES      ? "target not allowed by permissions.http"
                        : rc == -EINVAL    ? "bad URL, method or header"
                        : rc == -ECANCELED ? "platform stopping"
                                           : strerror(-rc);
        send_response(pd, rx->msg, uuid, rc, w, NULL, NULL, NULL);
        plat_envelope_free(&c->req);
        free(c);
    }
}

void pd_resource_handle(pd_t *pd, const plat_bus_rx_t *rx, pd_endpoint_t *ep)
{
    const Plat__PlatformMessage *m = rx->msg;
    const char *host = ep ? ep->id : rx->peer;
    if (m->header->kind != PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST) {
        plat_log_info(COMP, "%s on the resource channel dropped from=%s seq=%llu",
                      m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY ? "reply" : "event",
                      host, (unsigned long long)m->header->seq_no);
        return;
    }
    const Plat__ResourceMessage *rm = m->resource;
    if (rm->body_case != PLAT__RESOURCE_MESSAGE__BODY_REQUEST) {
        refuse(pd, rx, 0, NULL, host, -EINVAL, "expected a ResourceRequest");
        return;
    }
    const Plat__ResourceRequest *rq = rm->request;
    unsigned kind = kind_index(rq->kind);
    const char *uuid = rq->instance;
    if (!ep || ep->kind != PD_EP_HOST) {
        refuse(pd, rx, kind, uuid, host, -EACCES, "only plugin hosts may use resources");
        return;
    }
    if (!plat_uuid_valid(uuid)) {
        refuse(pd, rx, kind, uuid, host, -EINVAL, "instance is not a lowercase UUID");
        return;
    }
    if (!attached_to(pd, uuid, host)) {
        refuse(pd, rx, kind, uuid, host, -EACCES, "instance not attached to this host");
        return;
    }
    static const Plat__ResourceRequest__OpCase want[PD_METRICS_RES_KINDS] = {
        PLAT__RESOURCE_REQUEST__OP__NOT_SET, PLAT__RESOURCE_REQUEST__OP_DB,
        PLAT__RESOURCE_REQUEST__OP_HTTP, PLAT__RESOURCE_REQUEST__OP_FILE};
    if (kind == 0 || rq->op_case != want[kind]) {
        refuse(pd, rx, kind, uuid, host, -EINVAL,
               kind == 0 ? "unknown resource kind" : "the op does not match the kind");
        return;
    }
    pd_resources_t *rs = pd->resources;
    if (!rs || rs->stopping) {
        refuse(pd, rx, kind, uuid, host, -ECANCELED, "platform stopping");
        return;
    }
    res_inst_t *inst = inst_get(rs, uuid);
    if (!inst) {
        refuse(pd, rx, kind, uuid, host, -ENOMEM, "out of memory");
        return;
    }
    if (inst->forgetting) {
        refuse(pd, rx, kind, uuid, host, -ENOENT, "instance being removed");
        return;
    }
    char why[256];
    int err = 0;
    const pd_manifest_t *man = inst_manifest(pd, inst, &err, why, sizeof why);
    if (!man) {
        refuse(pd, rx, kind, uuid, host, err, why);
        return;
    }
    if (kind == PLAT__RESOURCE_KIND__RESOURCE_KIND_HTTP) {
        dispatch_http(pd, rx, uuid, host, man);
        return;
    }
    if (kind == PLAT__RESOURCE_KIND__RESOURCE_KIND_DB && !man->db) {
        refuse(pd, rx, kind, uuid, host, -EACCES, "the manifest does not grant permissions.db");
        return;
    }
    if (kind == PLAT__RESOURCE_KIND__RESOURCE_KIND_FILE && !man->files) {
        refuse(pd, rx, kind, uuid, host, -EACCES, "the manifest does not grant permissions.files");
        return;
    }
    if (inst->queued >= PD_RES_QUEUE_MAX) {
        refuse(pd, rx, kind, uuid, host, -EAGAIN, "too many requests waiting for this instance");
        return;
    }
    job_t *job = calloc(1, sizeof *job);
    if (job)
        job->req = plat__platform_message__unpack(NULL, rx->raw_len, rx->raw);
    if (!job || !job->req) {
        free(job);
        refuse(pd, rx, kind, uuid, host, -ENOMEM, "out of memory");
        return;
    }
    job->inst = inst;
    job->kind = kind == PLAT__RESOURCE_KIND__RESOURCE_KIND_DB ? JOB_DB : JOB_FILE;
    snprintf(job->host, sizeof job->host, "%s", host);
    const pd_config_t *cfg = pd->cfg;
    job->db_limits.timeout_ms = cfg->resources.db_timeout_ms;
    job->db_limits.max_rows = cfg->resources.db_max_rows;
    job->db_limits.max_bytes = min64(cfg->resources.db_max_bytes, reply_room(pd));
    job->db_limits.max_file_bytes = cfg->resources.db_max_file_bytes;
    job->file_opts.max_file_bytes = cfg->resources.file_max_bytes;
    job->file_opts.quota_bytes = cfg->resources.file_quota_bytes;
    if (rq->file && rq->file->op == PLAT__FILE_OP__FILE_OP_READ)
        job->file_opts.max_file_bytes = min64(job->file_opts.max_file_bytes, reply_room(pd));
    job->queued_ms = plat_mono_ms();
    if (inst->busy)
        enqueue(inst, job, false);
    else
        submit(inst, job);
}

/* ---- forget, start, stop ------------------------------------------------ */

int pd_resources_instance_dir(const pd_t *pd, const char *uuid, char *out, size_t size)
{
    if (!plat_uuid_valid(uuid))
        return -EINVAL;
    int n = pd->resources ? snprintf(out, size, "%s/%s", pd->resources->dir, uuid)
                          : snprintf(out, size, "%s/instances/%s", pd->cfg->state.dir, uuid);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

void pd_resources_forget_instance(pd_t *pd, const char *uuid)
{
    if (!plat_uuid_valid(uuid))
        return;
    pd_resources_t *rs = pd->resources;
    if (!rs || rs->stopping) {
        /* Not running: nothing is open, remove it here. */
        char dir[PATH_MAX];
        if (pd_resources_instance_dir(pd, uuid, dir, sizeof dir) < 0)
            return;
        int rc = pd_res_file_remove_tree(dir);
        if (rc < 0)
            plat_log_warn(COMP, "instance data not removed: %s instance=%s dir=%s", strerror(-rc),
                          uuid, dir);
        return;
    }
    res_inst_t *inst = inst_get(rs, uuid);
    job_t *job = inst ? calloc(1, sizeof *job) : NULL;
    if (!job) {
        plat_log_err(COMP, "instance data not removed: out of memory instance=%s", uuid);
        return;
    }
    if (inst->forgetting) {
        free(job);
        return;
    }
    inst->forgetting = true;
    /* What waits is answered now: the instance is gone. */
    job_t *q;
    while ((q = dequeue(inst))) {
        unsigned kind = kind_index(q->req->resource->request->kind);
        send_response(pd, q->req, uuid, -ENOENT, "instance uninstalled", NULL, NULL, NULL);
        account(pd, kind, -ENOENT, "request", uuid, q->host, "instance uninstalled");
        job_free(q);
    }
    job->inst = inst;
    job->kind = JOB_FORGET;
    if (inst->busy)
        enqueue(inst, job, true);
    else
        submit(inst, job);
}

size_t pd_resources_pending(const pd_t *pd)
{
    const pd_resources_t *rs = pd->resources;
    if (!rs)
        return 0;
    size_t n = rs->inflight;
    for (const res_inst_t *i = rs->insts; i; i = i->next)
        n += i->queued;
    return n;
}

int pd_resources_start(pd_t *pd)
{
    pd_resources_t *rs = calloc(1, sizeof *rs);
    if (!rs)
        return -ENOMEM;
    rs->pd = pd;
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof dir, "%s/instances", pd->cfg->state.dir);
    if (n < 0 || (size_t)n >= sizeof dir) {
        free(rs);
        return -ENAMETOOLONG;
    }
    if (mkdir_0700(dir) < 0) {
        int e = errno;
        plat_log_err(COMP, "cannot create the instance data directory: %s dir=%s", strerror(e),
                     dir);
        free(rs);
        return -e;
    }
    if (!realpath(dir, rs->dir))
        snprintf(rs->dir, sizeof rs->dir, "%s", dir);
    pd->resources = rs;
    plat_log_debug(COMP, "instance data under dir=%s", rs->dir);
    return 0;
}

void pd_resources_stop(pd_t *pd)
{
    pd_resources_t *rs = pd->resources;
    if (!rs)
        return;
    pd->resources = NULL;
    rs->stopping = true;
    res_inst_t *inst = rs->insts;
    while (inst) {
        res_inst_t *next = inst->next;
        bool forget = false;
        job_t *q;
        while ((q = dequeue(inst))) {
            if (q->kind == JOB_FORGET) {
                forget = true;
            } else {
                unsigned kind = kind_index(q->req->resource->request->kind);
                send_response(pd, q->req, inst->uuid, -ECANCELED, "platform stopping", NULL, NULL,
                              NULL);
                account(pd, kind, -ECANCELED, "request", inst->uuid, q->host, "platform stopping");
            }
            job_free(q);
        }
        if (forget) {
            /* The running job finishes first (it may hold the DB). */
            if (!inst->busy) {
                pd_res_db_close(&inst->db);
                pd_res_file_remove_tree(inst->dir);
            } else {
                inst->remove_at_stop = true;
            }
        }
        if (!inst->busy)
            inst_free(rs, inst);
        inst = next;
    }
    if (rs->inflight)
        plat_log_info(COMP, "stopping with %zu operation(s) still running, not answered",
                      rs->inflight);
    else
        free(rs);
}
