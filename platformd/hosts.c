/* Plugin hosts through the hostboots: start (with retries for failures
 * that may succeed on retry), wait for the host's own ready report, delete,
 * and the bookkeeping of every exit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "platformd.h"
#include "zap.h"

#define RETRY_INITIAL_MS 100

typedef enum {
    OP_WAIT_RESPONSE, /* HostLifeCycleRequest START sent */
    OP_BACKOFF,       /* waiting to retry */
    OP_WAIT_READY,    /* spawned, waiting for Control.ready */
} op_phase_t;

struct pd_start_op {
    pd_start_op_t *next;
    pd_t *pd;
    char host_id[PLAT_ID_MAX + 1];
    char hostboot[PLAT_ID_MAX + 1];
    char language[PD_FIELD_MAX + 1], version[PD_FIELD_MAX + 1], mode[PD_FIELD_MAX + 1];
    op_phase_t phase;
    unsigned tries;
    bool request_pending; /* the synchronizer holds a callback to us */
    bool done;            /* finished; freed when nothing refers to it */
    bool reported;        /* cb called */
    pd_host_ready_cb cb;  /* optional */
    void *cb_arg;
    uv_timer_t timer;
    bool key_expected;    /* counted in pd_zap_expect_host until its answer is handled */
};

/* The ZAP handler lets an unknown key wait only while a host key is
 * expected: from the first START until its answer is handled or the start
 * is given up. Exactly one pd_zap_expect_done per pd_zap_expect_host. */
static void op_expect_key(pd_start_op_t *op)
{
    if (op->key_expected)
        return;
    op->key_expected = true;
    pd_zap_expect_host(op->pd);
}

static void op_key_settled(pd_start_op_t *op)
{
    if (!op->key_expected)
        return;
    op->key_expected = false;
    pd_zap_expect_done(op->pd);
}

/* ---- op lifetime ------------------------------------------------------------ */

static void on_op_timer_closed(uv_handle_t *h) { free(h->data); }

static void op_unlink(pd_start_op_t *op)
{
    for (pd_start_op_t **pp = &op->pd->starts; *pp; pp = &(*pp)->next)
        if (*pp == op) {
            *pp = op->next;
            return;
        }
}

/* Finish: unlink now; memory goes once no request callback can still
 * arrive and the timer is closed. */
static void op_finish(pd_start_op_t *op)
{
    if (!op->done) {
        op->done = true;
        op_unlink(op);
        uv_timer_stop(&op->timer);
    }
    op_key_settled(op);
    if (!op->request_pending && !uv_is_closing((uv_handle_t *)&op->timer))
        uv_close((uv_handle_t *)&op->timer, on_op_timer_closed);
}

/* Tell the requester how the start ended, once: 0 ready, else why not. */
static void op_report(pd_start_op_t *op, int status, const char *why)
{
    if (op->reported || !op->cb)
        return;
    op->reported = true;
    op->cb(op->pd, op->host_id, status, why, op->cb_arg);
}

static pd_start_op_t *op_find(pd_t *pd, const char *host_id)
{
    for (pd_start_op_t *op = pd->starts; op; op = op->next)
        if (strcmp(op->host_id, host_id) == 0)
            return op;
    return NULL;
}

/* ---- failure ------------------------------------------------------------------ */

static bool retryable(int code)
{
    switch (code) {
    case -ENOENT:      /* no such runtime */
    case -ENOEXEC:     /* runtime binary missing */
    case -EINVAL:      /* bad descriptor */
    case -EACCES:
    case -EPERM:
    case -EOPNOTSUPP:
    case -ENAMETOOLONG:
        return false;
    default:
        return true;
    }
}

static void op_fail(pd_start_op_t *op, int code, const char *why)
{
    pd_t *pd = op->pd;
    pd_endpoint_t *ep = pd_registry_find(pd->reg, op->host_id);
    if (ep && ep->kind == PD_EP_HOST)
        pd_registry_host_failed(ep, code, why, plat_mono_ms());
    plat_log_warn("hosts", "host start failed after %u tries: %s (%d) id=%s hostboot=%s "
                           "language=%s version=%s",
                  op->tries, why, code, op->host_id, op->hostboot, op->language, op->version);
    op_finish(op);
    op_report(op, code, why);
}

/* ---- start ---------------------------------------------------------------------- */

static void send_start(pd_start_op_t *op);

static void on_backoff_over(uv_timer_t *t) { send_start(t->data); }

static void retry_or_fail(pd_start_op_t *op, int code, const char *why)
{
    pd_t *pd = op->pd;
    if (!retryable(code) || op->tries >= (unsigned)pd->cfg->hosts.start_tries) {
        op_fail(op, code, why);
        return;
    }
    uint64_t wait = (uint64_t)RETRY_INITIAL_MS << (op->tries - 1);
    plat_log_info("hosts", "host start attempt %u failed: %s (%d), retrying in %llu ms id=%s "
                           "hostboot=%s",
                  op->tries, why, code, (unsigned long long)wait, op->host_id, op->hostboot);
    op->phase = OP_BACKOFF;
    uv_timer_start(&op->timer, on_backoff_over, wait, 0);
}

static void on_ready_timeout(uv_timer_t *t)
{
    pd_start_op_t *op = t->data;
    pd_t *pd = op->pd;
    char why[128];
    snprintf(why, sizeof why, "no ready report within %lld ms",
             (long long)pd->cfg->hosts.ready_timeout_ms);
    /* It may be hung rather than dead: have it killed. */
    char ignored[64];
    pd_start_op_t keep = *op;
    op_fail(op, -ETIMEDOUT, why);
    pd_endpoint_t *ep = pd_registry_find(pd->reg, keep.host_id);
    if (ep && ep->pid > 0) {
        /* pd_hosts_delete refuses ended hosts; ask the hostboot directly. */
        ep->host_state = PD_HOST_STOPPING;
        pd_hosts_delete(pd, keep.host_id, ignored, sizeof ignored);
        pd_registry_host_failed(ep, -ETIMEDOUT, why, plat_mono_ms());
    }
}

static void on_start_reply(int status, const Plat__PlatformMessage *reply, void *arg)
{
    pd_start_op_t *op = arg;
    op->request_pending = false;
    if (op->done || status == -ECANCELED) {
        op_finish(op);
        return;
    }
    if (status == -ETIMEDOUT) {
        retry_or_fail(op, -ETIMEDOUT, "hostboot did not answer in time");
        return;
    }
    const Plat__HostLifeCycleResponseMessage *resp =
        reply->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT &&
                reply->host_boot->body_case ==
                    PLAT__HOST_BOOT_MESSAGE__BODY_HOST_LIFE_CYCLE_RESPONSE
            ? reply->host_boot->host_life_cycle_response
            : NULL;
    const Plat__ErrorMessage *err = reply->header->error ? reply->header->error
                                    : resp                ? resp->error
                                                          : NULL;
    if (err && !(err->code == -EEXIST && op->tries > 1)) {
        char why[320];
        snprintf(why, sizeof why, "%s: %s", err->message, err->detail);
        retry_or_fail(op, err->code ? err->code : -EIO, why);
        return;
    }
    if (!err && (!resp || !resp->host)) {
        retry_or_fail(op, -EPROTO, "hostboot answered without a host");
        return;
    }
    /* Spawned (or, on a retry after a lost answer, already running). */
    pd_t *pd = op->pd;
    pd_endpoint_t *ep = pd_registry_find(pd->reg, op->host_id);
    if (ep && resp && resp->host && resp->host->pid > 0 && ep->pid <= 0)
        ep->pid = resp->host->pid;
    /* Its CURVE key: admitted as exactly this host id (zap.h). */
    if (resp && resp->host && resp->host->public_key.len)
        pd_zap_admit_host(pd, op->host_id, resp->host->public_key.data,
                          resp->host->public_key.len, op->hostboot);
    op_key_settled(op);
    plat_log_info("hosts", "host spawned, waiting for its ready report id=%s pid=%d hostboot=%s",
                  op->host_id, ep ? (int)ep->pid : 0, op->hostboot);
    if (ep && ep->host_state == PD_HOST_READY) {
        /* Its ready report overtook the response. */
        op_finish(op);
        op_report(op, 0, NULL);
        return;
    }
    op->phase = OP_WAIT_READY;
    uv_timer_start(&op->timer, on_ready_timeout, (uint64_t)pd->cfg->hosts.ready_timeout_ms, 0);
}

static void send_start(pd_start_op_t *op)
{
    pd_t *pd = op->pd;
    op->tries++;
    op->phase = OP_WAIT_RESPONSE;
    Plat__PlatformMessage *m = plat_msg_host_lifecycle_request(
        PLAT__HOST_LIFE_CYCLE_REQUEST_MESSAGE__ACTION__START, op->host_id, op->language,
        op->version, op->mode, 0);
    int64_t rc = m ? plat_bus_request(pd->bus, op->hostboot, m,
                                      (uint32_t)pd->cfg->hosts.start_timeout_ms, on_start_reply, op)
                   : -ENOMEM;
    plat_envelope_free(&m);
    if (rc < 0) {
        retry_or_fail(op, (int)rc, rc == -EHOSTUNREACH ? "hostboot not connected"
                                                       : "start request not sent");
        return;
    }
    op->request_pending = true;
}

typedef struct {
    const char *language, *version, *want;
    const pd_endpoint_t *best;
    size_t best_hosts;
    pd_registry_t *reg;
} pick_t;

typedef struct {
    const char *hostboot;
    size_t n;
} owned_t;

static void count_owned(const pd_endpoint_t *ep, void *arg)
{
    owned_t *o = arg;
    if (ep->kind == PD_EP_HOST && strcmp(ep->hostboot, o->hostboot) == 0 &&
        ep->host_state != PD_HOST_EXITED && ep->host_state != PD_HOST_FAILED)
        o->n++;
}

/* The live hostboot offering (language, version) that owns fewest hosts. */
static void consider(const pd_endpoint_t *ep, void *arg)
{
    pick_t *p = arg;
    if (ep->kind != PD_EP_HOSTBOOT || ep->lost || (p->want && strcmp(ep->id, p->want) != 0))
        return;
    bool offers = false;
    for (size_t i = 0; i < ep->n_runtimes && !offers; i++)
        offers = strcmp(ep->runtimes[i].language, p->language) == 0 &&
                 strcmp(ep->runtimes[i].version, p->version) == 0;
    if (!offers)
        return;
    owned_t o = {ep->id, 0};
    pd_registry_foreach(p->reg, count_owned, &o);
    if (!p->best || o.n < p->best_hosts) {
        p->best = ep;
        p->best_hosts = o.n;
    }
}

static bool field_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > PD_FIELD_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

int pd_hosts_start(pd_t *pd, const char *language, const char *version, const char *mode,
                   const char *hostboot, pd_host_ready_cb cb, void *cb_arg,
                   char id_out[PLAT_ID_MAX + 1], char *why, size_t why_size)
{
    id_out[0] = 0;
    if (!field_ok(language) || !field_ok(version)) {
        snprintf(why, why_size, "language and version must be 1-%d characters of [A-Za-z0-9._-]",
                 PD_FIELD_MAX);
        return -EINVAL;
    }
    if (!mode)
        mode = "highPerformance";
    if (strcmp(mode, "highPerformance") != 0 && strcmp(mode, "powerSave") != 0) {
        snprintf(why, why_size, "mode must be highPerformance or powerSave (dev hosts are "
                                "started by hand with pluginhost --dev)");
        return -EINVAL;
    }
    pick_t p = {.language = language, .version = version, .want = hostboot, .reg = pd->reg};
    pd_registry_foreach(pd->reg, consider, &p);
    if (!p.best) {
        if (hostboot)
            snprintf(why, why_size, "hostboot %.80s is not registered and live, or does not offer "
                                    "%.32s/%.32s", hostboot, language, version);
        else
            snprintf(why, why_size, "no registered, live hostboot offers runtime %.32s/%.32s",
                     language, version);
        return -ENOENT;
    }
    char uuid[PLAT_UUID_LEN + 1];
    int rc = plat_uuid_new(uuid);
    if (rc < 0) {
        snprintf(why, why_size, "cannot make a host id: %s", strerror(-rc));
        return rc;
    }
    pd_start_op_t *op = calloc(1, sizeof *op);
    if (!op) {
        snprintf(why, why_size, "out of memory");
        return -ENOMEM;
    }
    op->pd = pd;
    op->cb = cb;
    op->cb_arg = cb_arg;
    snprintf(op->host_id, sizeof op->host_id, "%s%s", PLAT_HOST_PREFIX, uuid);
    snprintf(op->hostboot, sizeof op->hostboot, "%s", p.best->id);
    snprintf(op->language, sizeof op->language, "%s", language);
    snprintf(op->version, sizeof op->version, "%s", version);
    snprintf(op->mode, sizeof op->mode, "%s", mode);
    if (!pd_registry_add_starting_host(pd->reg, op->host_id, language, version, mode,
                                       op->hostboot, plat_mono_ms())) {
        rc = -errno;
        snprintf(why, why_size, "cannot record the host: %s", strerror(errno));
        free(op);
        return rc;
    }
    uv_timer_init(pd->loop, &op->timer);
    op->timer.data = op;
    op->next = pd->starts;
    pd->starts = op;
    snprintf(id_out, PLAT_ID_MAX + 1, "%s", op->host_id);
    plat_log_notice("hosts", "starting host id=%s hostboot=%s language=%s version=%s mode=%s",
                    op->host_id, op->hostboot, language, version, mode);
    op_expect_key(op);
    send_start(op);
    return 0;
}

void pd_hosts_on_ready(pd_t *pd, pd_endpoint_t *host)
{
    pd_start_op_t *op = op_find(pd, host->id);
    if (!op)
        return;
    plat_log_notice("hosts", "host ready id=%s pid=%d hostboot=%s start_ms=%llu tries=%u",
                    host->id, (int)host->pid, host->hostboot,
                    (unsigned long long)(plat_mono_ms() - host->started_ms), op->tries);
    op_finish(op);
    op_report(op, 0, NULL);
}

/* ---- delete and exits --------------------------------------------------------------- */

typedef struct {
    pd_t *pd;
    char host_id[PLAT_ID_MAX + 1];
} delete_req_t;

/* No hostboot can stop it: the host talks to us directly, so tell it to
 * exit. Its exit is then seen as silence (see heartbeat.c). */
static int ask_host_to_exit(pd_t *pd, pd_endpoint_t *ep, const char *why)
{
    if (!pd_endpoint_registered(ep) || !pd->bus)
        return -ENOTCONN;
    Plat__PlatformMessage *m = plat_msg_shutdown(why);
    int rc = m ? plat_bus_send(pd->bus, ep->id, m) : -ENOMEM;
    plat_envelope_free(&m);
    plat_log(rc == 0 ? PLAT_LOG_NOTICE : PLAT_LOG_WARNING, "hosts",
             "asked the host to exit itself (%s): %s id=%s pid=%d", why,
             rc == 0 ? "sent" : strerror(-rc), ep->id, (int)ep->pid);
    if (rc == 0) {
        ep->host_state = PD_HOST_STOPPING;
        ep->told_to_exit = true;
    }
    return rc;
}

static void on_delete_reply(int status, const Plat__PlatformMessage *reply, void *arg)
{
    delete_req_t *d = arg;
    const Plat__ErrorMessage *err = NULL;
    if (status == 0) {
        err = reply->header->error;
        if (!err && reply->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT &&
            reply->host_boot->body_case == PLAT__HOST_BOOT_MESSAGE__BODY_HOST_LIFE_CYCLE_RESPONSE)
            err = reply->host_boot->host_life_cycle_response->error;
    }
    if (status == -ETIMEDOUT) {
        plat_log_warn("hosts", "hostboot did not answer a host delete in time id=%s", d->host_id);
    } else if (err && err->code) {
        pd_endpoint_t *ep = d->pd->reg ? pd_registry_find(d->pd->reg, d->host_id) : NULL;
        plat_log_warn("hosts", "host delete refused: %s: %s (%d) id=%s", err->message,
                      err->detail, err->code, d->host_id);
        /* The hostboot does not have it (spawned by a hostboot killed before
         * it recorded it): the host itself is told to exit; if it is not on
         * the bus either, nothing will ever report its exit. */
        if (err->code == -ENOENT && ep && ep->host_state == PD_HOST_STOPPING &&
            ask_host_to_exit(d->pd, ep, "its hostboot does not know it") < 0) {
            pd_registry_host_failed(ep, -ENOENT, "its hostboot does not know it", plat_mono_ms());
            if (d->pd->lifecycle)
                pd_lifecycle_host_gone(d->pd->lifecycle, d->host_id, "unknown to its hostboot");
        }
    }
    free(d);
}

int pd_hosts_delete(pd_t *pd, const char *host_id, char *why, size_t why_size)
{
    pd_endpoint_t *ep = pd_registry_find(pd->reg, host_id);
    if (!ep || ep->kind != PD_EP_HOST) {
        snprintf(why, why_size, "no such host");
        return -ENOENT;
    }
    if (ep->dev || !ep->hostboot[0]) {
        snprintf(why, why_size, "a dev host is never stopped by the platform; stop it by hand");
        return -EPERM;
    }
    if (ep->host_state == PD_HOST_EXITED || ep->host_state == PD_HOST_FAILED) {
        snprintf(why, why_size, "host already %s", pd_host_state_name(ep->host_state));
        return -EALREADY;
    }
    pd_start_op_t *op = op_find(pd, host_id);
    if (op) { /* a start in progress is abandoned */
        op_finish(op);
        op_report(op, -ECANCELED, "host deleted while starting");
    }
    delete_req_t *arg = calloc(1, sizeof *arg);
    if (arg) {
        arg->pd = pd;
        snprintf(arg->host_id, sizeof arg->host_id, "%s", host_id);
    }
    Plat__PlatformMessage *m = arg ? plat_msg_host_lifecycle_request(
                                         PLAT__HOST_LIFE_CYCLE_REQUEST_MESSAGE__ACTION__DELETE,
                                         ep->id, ep->language, ep->runtime_version, ep->mode,
                                         ep->pid)
                                   : NULL;
    int64_t rc = m ? plat_bus_request(pd->bus, ep->hostboot, m,
                                      (uint32_t)pd->cfg->hosts.start_timeout_ms, on_delete_reply,
                                      arg)
                   : -ENOMEM;
    plat_envelope_free(&m);
    if (rc < 0) {
        free(arg);
        plat_log_warn("hosts", "host delete not sent: %s id=%s hostboot=%s", strerror((int)-rc),
                      host_id, ep->hostboot);
        if (ask_host_to_exit(pd, ep, "its hostboot is unreachable") == 0)
            return 0;
        snprintf(why, why_size, "hostboot %s unreachable", ep->hostboot);
        return (int)rc;
    }
    ep->host_state = PD_HOST_STOPPING;
    plat_log_notice("hosts", "stopping host id=%s pid=%d hostboot=%s", ep->id, (int)ep->pid,
                    ep->hostboot);
    return 0;
}

void pd_hosts_on_exit(pd_t *pd, const pd_endpoint_t *hostboot, const Plat__HostExit *x)
{
    pd_endpoint_t *ep = pd_registry_find(pd->reg, x->host_id);
    if (!ep || ep->kind != PD_EP_HOST || strcmp(ep->hostboot, hostboot->id) != 0) {
        plat_log_warn("hosts", "exit reported for a host this hostboot does not own from=%s "
                               "host=%s pid=%d",
                      hostboot->id, x->host_id, (int)x->pid);
        return;
    }
    bool expected = ep->host_state == PD_HOST_STOPPING;
    pd_zap_forget_host(pd, ep->id); /* its key admits nobody any more */
    pd_start_op_t *op = op_find(pd, ep->id);
    if (op) {
        char why[128];
        if (x->term_signal)
            snprintf(why, sizeof why, "host exited before ready: signal %d", (int)x->term_signal);
        else
            snprintf(why, sizeof why, "host exited before ready: status %d", (int)x->exit_status);
        op_fail(op, -ECHILD, why);
        ep->exit_status = x->exit_status;
        ep->term_signal = x->term_signal;
        return;
    }
    if (ep->host_state == PD_HOST_FAILED)
        return; /* already accounted for (ready timeout) */
    pd_registry_host_exited(ep, x->exit_status, x->term_signal, plat_mono_ms());
    /* Whatever it was asked will never be answered: fail it now rather
     * than at its timeout. */
    plat_sync_fail_peer(plat_bus_sync(pd->bus), ep->id, -ECHILD);
    if (pd->lifecycle) {
        char why[96];
        if (x->term_signal)
            snprintf(why, sizeof why, "killed by signal %d", (int)x->term_signal);
        else
            snprintf(why, sizeof why, "exited with status %d", (int)x->exit_status);
        pd_lifecycle_host_gone(pd->lifecycle, ep->id, why);
    }
    plat_log(expected ? PLAT_LOG_NOTICE : PLAT_LOG_WARNING, "hosts",
             "host exited%s id=%s pid=%d status=%d signal=%d hostboot=%s",
             expected ? "" : " unexpectedly", ep->id, (int)x->pid, (int)x->exit_status,
             (int)x->term_signal, hostboot->id);
}

static void on_prune(uv_timer_t *t)
{
    pd_t *pd = t->data;
    pd_registry_prune(pd->reg, plat_mono_ms(), (uint64_t)pd->cfg->hosts.exited_keep_ms);
}

void pd_hosts_init(pd_t *pd)
{
    uint64_t every = (uint64_t)pd->cfg->hosts.exited_keep_ms / 4;
    if (every < 100)
        every = 100;
    uv_timer_start(&pd->prune_timer, on_prune, every, every);
}

void pd_hosts_shutdown(pd_t *pd)
{
    while (pd->starts) {
        pd_start_op_t *op = pd->starts;
        op_finish(op);
        op_report(op, -ECANCELED, "platform stopping");
    }
}
