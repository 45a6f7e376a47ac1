/* Plugin instances through their lifecycle (see lifecycle.h). */
#include "lifecycle.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "ability.h"
#include "package.h"
#include "platformd.h"

typedef struct op op_t;

/* One action in flight on one instance. An upgrade is a short chain of
 * steps (stop old, upgrade new, start new), with a rollback chain. */
struct op {
    op_t *next;
    pd_lifecycle_t *lc;
    pd_action_t action;             /* what the caller asked */
    pd_store_instance_t inst;       /* working copy; persisted at each step */
    pd_store_package_t pkg;         /* the package of the current step */
    char host_id[PLAT_ID_MAX + 1];  /* the host of the current step */
    pd_action_t steps[4];
    size_t n_steps, step;
    char from_version[PD_STORE_VERSION_MAX + 1]; /* upgrade: the old version */
    char to_version[PD_STORE_VERSION_MAX + 1];   /* upgrade: the new version */
    char before_state[PD_STORE_FIELD_MAX + 1];   /* state before the action */
    bool rolling_back;
    int fail_code;                  /* the failure being rolled back */
    char fail_why[PD_STORE_ERROR_MAX + 1]; /* and why */
    bool is_install;
    bool waiting;                   /* a bus request or host start refers to us */
    bool cancelled;
    pd_action_cb cb;
    void *arg;
};

/* Crash bookkeeping of one instance (section 7's policy), in memory. */
typedef struct crash {
    struct crash *next;
    pd_lifecycle_t *lc;
    char uuid[PLAT_UUID_LEN + 1];
    uint64_t window_start_ms;
    uint64_t running_since_ms; /* 0 when not running */
    unsigned count;            /* crashes in the window */
    uv_timer_t timer;          /* the scheduled restart */
    uint64_t restart_at_ms;    /* 0 when none is scheduled */
} crash_t;

/* A host being spawned for actions; the actions placed on it (attached
 * and counted, so powerSave fills it instead of spawning more) wait here
 * until it is ready. */
typedef struct pending_host {
    struct pending_host *next;
    pd_lifecycle_t *lc;
    char host_id[PLAT_ID_MAX + 1];
    op_t **waiters;
    size_t n, cap;
    bool in_start;          /* pd_hosts_start is on the stack */
    bool ended_in_start;    /* ...and already reported */
    int status;
    char why[256];
} pending_host_t;

struct pd_lifecycle {
    pd_t *pd;
    crash_t *crashes;
    pending_host_t *pending;
    pd_store_t *store;
    pd_hostmap_t *map;
    char packages_dir[PATH_MAX];
    op_t *ops;
    uv_timer_t idle_timer;
    uv_timer_t reconcile_timer;
    char (*to_reconcile)[PLAT_UUID_LEN + 1]; /* desired running when platformd started */
    size_t n_reconcile;
    int open_handles; /* the two timers: lc is freed when both are closed */
    struct trig *triggers; /* task triggers waiting for a host or in flight */
    uint64_t kick_gen;     /* triggers_kick walks */
};

static const Plat__PluginAction g_wire_action[PD_ACTION_COUNT] = {
    [PD_ACTION_INSTALL] = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_INSTALL,
    [PD_ACTION_UNINSTALL] = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UNINSTALL,
    [PD_ACTION_ENABLE] = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_ENABLE,
    [PD_ACTION_DISABLE] = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_DISABLE,
    [PD_ACTION_UPGRADE] = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_UPGRADE,
    [PD_ACTION_START] = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_START,
    [PD_ACTION_STOP] = PLAT__PLUGIN_ACTION__PLUGIN_ACTION_STOP,
};

/* ---- the state machine -------------------------------------------------- */

static bool state_is(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

/* NULL when `action` is allowed in `state`, else why not. */
static const char *transition_refused(const char *state, pd_action_t action)
{
    static const char *const enable_from[] = {PD_STATE_INSTALLED, PD_STATE_DISABLED, NULL};
    static const char *const disable_from[] = {PD_STATE_ENABLED, PD_STATE_STOPPED, NULL};
    static const char *const start_from[] = {PD_STATE_ENABLED, PD_STATE_STOPPED, PD_STATE_FAILED,
                                             NULL};
    static const char *const stop_from[] = {PD_STATE_RUNNING, NULL};
    static const char *const upgrade_from[] = {PD_STATE_INSTALLED, PD_STATE_ENABLED,
                                               PD_STATE_DISABLED, PD_STATE_STOPPED,
                                               PD_STATE_RUNNING, NULL};
    static const char *const uninstall_from[] = {PD_STATE_INSTALLED, PD_STATE_ENABLED,
                                                 PD_STATE_DISABLED, PD_STATE_STOPPED,
                                                 PD_STATE_FAILED, NULL};
    const char *const *from = NULL;
    switch (action) {
    case PD_ACTION_ENABLE: from = enable_from; break;
    case PD_ACTION_DISABLE: from = disable_from; break;
    case PD_ACTION_START: from = start_from; break;
    case PD_ACTION_STOP: from = stop_from; break;
    case PD_ACTION_UPGRADE: from = upgrade_from; break;
    case PD_ACTION_UNINSTALL: from = uninstall_from; break;
    default: return "install is not an action on an existing instance";
    }
    return state_is(state, from) ? NULL : "invalid transition";
}

/* The state an action leaves behind when it succeeds. */
static const char *state_after(pd_action_t action, const char *before)
{
    switch (action) {
    case PD_ACTION_INSTALL: return PD_STATE_INSTALLED;
    case PD_ACTION_ENABLE: return PD_STATE_ENABLED;
    case PD_ACTION_DISABLE: return PD_STATE_DISABLED;
    case PD_ACTION_START: return PD_STATE_RUNNING;
    case PD_ACTION_STOP: return PD_STATE_STOPPED;
    case PD_ACTION_UNINSTALL: return PD_STATE_UNINSTALLED;
    case PD_ACTION_UPGRADE:
    default: return before;
    }
}

static void triggers_kick(pd_lifecycle_t *lc, const char *uuid);

/* ---- ops ------------------------------------------------------------------ */

static op_t *op_of(pd_lifecycle_t *lc, const char *uuid)
{
    for (op_t *op = lc->ops; op; op = op->next)
        if (strcmp(op->inst.uuid, uuid) == 0)
            return op;
    return NULL;
}

static void op_unlink(op_t *op)
{
    for (op_t **pp = &op->lc->ops; *pp; pp = &(*pp)->next)
        if (*pp == op) {
            *pp = op->next;
            return;
        }
}

static void op_free(op_t *op)
{
    pd_store_instance_clear(&op->inst);
    pd_store_package_clear(&op->pkg);
    free(op);
}

/* Persist, report, forget. Status 0 = the action succeeded. */
static void op_done(op_t *op, int status, const char *why)
{
    pd_lifecycle_t *lc = op->lc;
    op_unlink(op);
    const char *name = pd_action_name(op->action);
    bool removed = status == 0 && op->action == PD_ACTION_UNINSTALL;
    if (status == 0)
        plat_log_notice("lifecycle", "%s done instance=%s plugin=%s version=%s state=%s", name,
                        op->inst.uuid, op->inst.plugin, op->inst.version,
                        removed ? "removed" : op->inst.actual_state);
    else
        plat_log_warn("lifecycle", "%s failed: %s (%d) instance=%s plugin=%s version=%s state=%s",
                      name, why, status, op->inst.uuid, op->inst.plugin, op->inst.version,
                      op->inst.actual_state);
    if (lc->store && !(op->is_install && status != 0 && !op->inst.created_at))
        pd_store_record_action(lc->store, op->inst.uuid, name, status == 0 ? "ok" : "error",
                               status == 0 ? NULL : why);
    if (op->cb)
        op->cb(status, why, removed ? NULL : &op->inst, op->arg);
    char uuid[PLAT_UUID_LEN + 1];
    snprintf(uuid, sizeof uuid, "%s", op->inst.uuid);
    op_free(op);
    triggers_kick(lc, uuid); /* task runs that waited for this action */
}

/* Write the working copy; a failure to persist fails the action. */
static int persist(op_t *op)
{
    int rc = pd_store_update_instance(op->lc->store, &op->inst);
    if (rc < 0)
        plat_log_err("lifecycle", "cannot persist instance state: %s instance=%s",
                     pd_store_why(op->lc->store), op->inst.uuid);
    return rc;
}

/* Copy a state name into a field (the source may be that same field). */
static void copy_state(char *dst, size_t size, const char *src)
{
    if (dst != src)
        snprintf(dst, size, "%s", src);
}

static void set_state(op_t *op, const char *actual, const char *error)
{
    copy_state(op->inst.actual_state, sizeof op->inst.actual_state, actual);
    if (error != op->inst.last_error)
        snprintf(op->inst.last_error, sizeof op->inst.last_error, "%s", error ? error : "");
}

static void run_step(op_t *op);
static void step_result(op_t *op, int status, const char *why);
static crash_t *crash_of(pd_lifecycle_t *lc, const char *uuid, bool create);
static void crashed(pd_lifecycle_t *lc, const char *uuid, const char *why);
static void crashes_close(pd_lifecycle_t *lc);

static void dev_hosts_of(const pd_endpoint_t *ep, void *arg);

typedef struct {
    const char *language;
    const char **ids;
    size_t n, cap;
} dev_list_t;

static void dev_hosts_of(const pd_endpoint_t *ep, void *arg)
{
    dev_list_t *d = arg;
    if (ep->kind == PD_EP_HOST && ep->dev && !ep->lost && ep->host_state == PD_HOST_READY &&
        strcmp(ep->language, d->language) == 0 && d->n < d->cap)
        d->ids[d->n++] = ep->id;
}

static void on_action_reply(int status, const Plat__PlatformMessage *reply, void *arg)
{
    op_t *op = arg;
    op->waiting = false;
    if (op->cancelled) {
        op_free(op);
        return;
    }
    if (status == -ETIMEDOUT) {
        char why[160];
        snprintf(why, sizeof why, "%s hook did not finish within %lld ms; its host is killed",
                 pd_action_name(op->steps[op->step]),
                 (long long)op->lc->pd->cfg->plugins.action_timeout_ms);
        char ignored[128];
        char host[PLAT_ID_MAX + 1];
        snprintf(host, sizeof host, "%s", op->host_id);
        pd_lifecycle_host_gone(op->lc, host, why);
        pd_hosts_delete(op->lc->pd, host, ignored, sizeof ignored);
        step_result(op, -ETIMEDOUT, why);
        return;
    }
    if (status != 0) {
        step_result(op, status, status == -ECHILD ? "the host died during the hook"
                                                  : "platform stopping");
        return;
    }
    const Plat__ErrorMessage *err = reply->header->error;
    if (!err && reply->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN &&
        reply->plugin->body_case == PLAT__PLUGIN_MESSAGE__BODY_ACTION_RESULT)
        err = reply->plugin->action_result->error;
    else if (!err)
        err = NULL;
    if (err && err->code) {
        char why[300];
        snprintf(why, sizeof why, "%s%s%s", err->message, err->detail[0] ? ": " : "",
                 err->detail);
        step_result(op, err->code, why);
        return;
    }
    step_result(op, 0, NULL);
}

static void send_action(op_t *op)
{
    pd_lifecycle_t *lc = op->lc;
    char dir[PATH_MAX + 2 * (PD_STORE_ID_MAX + 2)];
    snprintf(dir, sizeof dir, "%s/%s/%s", lc->packages_dir, op->pkg.id, op->pkg.version);
    pd_action_t a = op->steps[op->step];
    Plat__PlatformMessage *m = plat_msg_plugin_action(
        op->inst.uuid, g_wire_action[a], op->pkg.id, op->pkg.version, dir, op->pkg.entry,
        op->inst.config_json ? op->inst.config_json : "{}",
        a == PD_ACTION_UPGRADE ? op->from_version : "", op->inst.org,
        (uint32_t)lc->pd->cfg->plugins.action_timeout_ms);
    int64_t rc = m ? plat_bus_request(lc->pd->bus, op->host_id, m,
                                      (uint32_t)lc->pd->cfg->plugins.action_timeout_ms,
                                      on_action_reply, op)
                   : -ENOMEM;
    plat_envelope_free(&m);
    if (rc < 0) {
        step_result(op, (int)rc, "host not reachable on the bus");
        return;
    }
    op->waiting = true;
}

/* The host of this step exists and is in the map: attach and run. */
static void attach_and_send(op_t *op, bool attached)
{
    uint64_t now = plat_mono_ms();
    if (!attached) {
        int rc = pd_hostmap_attach(op->lc->map, op->inst.uuid, op->host_id, false, now);
        if (rc < 0 && rc != -EEXIST) {
            step_result(op, rc, "cannot attach the instance to its host");
            return;
        }
    }
    int rc = pd_hostmap_begin(op->lc->map, op->inst.uuid, op->host_id, now);
    if (rc < 0) {
        step_result(op, rc, "cannot begin the action on the host");
        return;
    }
    send_action(op);
}

static pending_host_t *pending_of(pd_lifecycle_t *lc, const char *host_id)
{
    for (pending_host_t *ph = lc->pending; ph; ph = ph->next)
        if (strcmp(ph->host_id, host_id) == 0)
            return ph;
    return NULL;
}

static int pending_add(pending_host_t *ph, op_t *op)
{
    if (ph->n == ph->cap) {
        size_t cap = ph->cap ? ph->cap * 2 : 8;
        op_t **w = realloc(ph->waiters, cap * sizeof *w);
        if (!w)
            return -ENOMEM;
        ph->waiters = w;
        ph->cap = cap;
    }
    ph->waiters[ph->n++] = op;
    op->waiting = true;
    return 0;
}

static void pending_unlink(pending_host_t *ph)
{
    for (pending_host_t **pp = &ph->lc->pending; *pp; pp = &(*pp)->next)
        if (*pp == ph) {
            *pp = ph->next;
            return;
        }
}

/* The host is ready (status 0) or will never be: run or fail its waiters. */
static void pending_done(pending_host_t *ph, int status, const char *why)
{
    pd_lifecycle_t *lc = ph->lc;
    pending_unlink(ph);
    if (status != 0 && lc->map && ph->host_id[0])
        pd_hostmap_retire(lc->map, ph->host_id, NULL);
    for (size_t i = 0; i < ph->n; i++) {
        op_t *op = ph->waiters[i];
        op->waiting = false;
        if (op->cancelled) {
            op_free(op);
            continue;
        }
        if (status != 0)
            /* No hostboot can run it (unknown runtime, missing binary):
             * the API's "no_hostboot"; else the start's own failure. */
            step_result(op, status == -ENOENT || status == -ENOEXEC ? -ENODEV : status, why);
        else
            send_action(op);
    }
    if (status != 0 && lc->map && ph->host_id[0])
        pd_hostmap_remove_host(lc->map, ph->host_id, NULL);
    free(ph->waiters);
    free(ph);
}

static void on_host_ready(pd_t *pd, const char *host_id, int status, const char *why, void *arg)
{
    (void)pd;
    (void)host_id;
    pending_host_t *ph = arg;
    if (ph->in_start) { /* reported before pd_hosts_start returned */
        ph->ended_in_start = true;
        ph->status = status ? status : -EIO;
        snprintf(ph->why, sizeof ph->why, "%s", why ? why : "host start failed");
        return;
    }
    pd_lifecycle_t *lc = ph->lc;
    if (status == 0 && lc->map) {
        pd_hostmap_host_t info;
        if (pd_hostmap_host_info(lc->map, ph->host_id, &info) < 0) {
            status = -ESHUTDOWN;
            why = "the new host was retired while starting";
        }
    }
    pending_done(ph, status, why);
}

/* Place `op` on a host that is still starting: attach and begin now (the
 * slot counts), send when it is ready. */
static void wait_for_host(op_t *op, pending_host_t *ph, bool attached)
{
    uint64_t now = plat_mono_ms();
    int rc = attached ? 0 : pd_hostmap_attach(op->lc->map, op->inst.uuid, ph->host_id, false, now);
    if (rc == 0 || rc == -EEXIST)
        rc = pd_hostmap_begin(op->lc->map, op->inst.uuid, ph->host_id, now);
    if (rc == 0)
        rc = pending_add(ph, op);
    if (rc < 0)
        step_result(op, rc, "cannot place the instance on the starting host");
}

/* Spawn a host for `op` (and for whoever the modes place there meanwhile). */
static void spawn_for(op_t *op, pd_mode_t mode)
{
    pd_lifecycle_t *lc = op->lc;
    pending_host_t *ph = calloc(1, sizeof *ph);
    if (!ph) {
        step_result(op, -ENOMEM, "out of memory");
        return;
    }
    ph->lc = lc;
    ph->in_start = true;
    char why[512];
    int rc = pd_hosts_start(lc->pd, op->pkg.language, op->pkg.runtime_version,
                            pd_mode_name(mode), NULL, on_host_ready, ph, ph->host_id, why,
                            sizeof why);
    ph->in_start = false;
    if (rc < 0) {
        free(ph);
        step_result(op, rc == -ENOENT ? -ENODEV : rc, why);
        return;
    }
    rc = pd_hostmap_add_host(lc->map, ph->host_id, op->pkg.language, op->pkg.runtime_version,
                             mode, plat_mono_ms());
    ph->next = lc->pending;
    lc->pending = ph;
    snprintf(op->host_id, sizeof op->host_id, "%s", ph->host_id);
    if (rc < 0 && rc != -EEXIST) {
        pending_done(ph, rc, "cannot record the new host");
        step_result(op, rc, "cannot record the new host");
        return;
    }
    wait_for_host(op, ph, false);
    if (ph->ended_in_start)
        pending_done(ph, ph->status, ph->why);
}

static void run_step(op_t *op)
{
    pd_lifecycle_t *lc = op->lc;
    pd_t *pd = lc->pd;
    pd_action_t a = op->steps[op->step];
    /* The package this step runs in: an upgrade hook runs in the new
     * version, and so does everything after it. */
    if (a == PD_ACTION_UPGRADE && !op->rolling_back)
        snprintf(op->inst.version, sizeof op->inst.version, "%s", op->to_version);
    const char *version = op->inst.version;
    pd_store_package_clear(&op->pkg);
    int rc = pd_store_get_package(lc->store, op->inst.plugin, version, &op->pkg);
    if (rc < 0) {
        step_result(op, -ENOENT, "package not registered");
        return;
    }
    pd_mode_t mode;
    if (pd_mode_parse(op->inst.host_mode, &mode) < 0)
        mode = PD_MODE_HIGH_PERFORMANCE;
    const char *dev_ids[64];
    dev_list_t dev = {.language = op->pkg.language, .ids = dev_ids, .cap = 64};
    if (mode == PD_MODE_DEV)
        pd_registry_foreach(pd->reg, dev_hosts_of, &dev);
    pd_mode_opts_t mo = {.max_instances_per_host = (size_t)pd->cfg->plugins.max_instances_per_host};
    pd_mode_choice_t c = pd_mode_choose(lc->map, mode, a, op->inst.uuid, op->pkg.language,
                                        op->pkg.runtime_version, &mo, dev.ids, dev.n);
    if (c.kind == PD_CHOICE_ERROR) {
        step_result(op, c.error ? c.error : -EINVAL, c.reason ? c.reason : "no host");
        return;
    }
    uint64_t now = plat_mono_ms();
    if (c.leave_host[0]) {
        pd_hostmap_detach(lc->map, op->inst.uuid, now);
        if (c.kill_leave_host) {
            char why[128];
            pd_hostmap_retire(lc->map, c.leave_host, NULL);
            pd_hosts_delete(pd, c.leave_host, why, sizeof why);
        }
    }
    if (c.kind == PD_CHOICE_SPAWN) {
        spawn_for(op, mode);
        return;
    }
    snprintf(op->host_id, sizeof op->host_id, "%s", c.host_id);
    pending_host_t *ph = pending_of(lc, c.host_id);
    if (ph) { /* chosen host is still starting: wait with the others */
        wait_for_host(op, ph, c.attached);
        return;
    }
    if (c.add_first) {
        const pd_endpoint_t *ep = pd_registry_find(pd->reg, c.host_id);
        pd_hostmap_add_host(lc->map, c.host_id, op->pkg.language,
                            ep ? ep->runtime_version : op->pkg.runtime_version, mode, now);
    }
    attach_and_send(op, c.attached);
}

/* Next step, or the end of the chain. */
static void advance(op_t *op)
{
    if (++op->step < op->n_steps) {
        run_step(op);
        return;
    }
    if (op->rolling_back) {
        /* Back where it was; the reason stays visible on the instance. */
        set_state(op, op->inst.actual_state, op->fail_why);
        persist(op);
        op_done(op, op->fail_code ? op->fail_code : -EIO, op->fail_why);
        return;
    }
    op_done(op, 0, NULL);
}

static void step_result(op_t *op, int status, const char *why)
{
    pd_lifecycle_t *lc = op->lc;
    pd_action_t a = op->steps[op->step];
    char kill_host[PD_HOSTMAP_ID_MAX + 1] = "";
    if (op->host_id[0] &&
        pd_mode_finish(lc->map, a, op->inst.uuid, status == 0, plat_mono_ms(), kill_host) == 1 &&
        kill_host[0]) {
        char ignored[128];
        pd_hosts_delete(lc->pd, kill_host, ignored, sizeof ignored);
    }
    op->host_id[0] = 0;
    if (status == 0) {
        if (a == PD_ACTION_UPGRADE) {
            snprintf(op->inst.previous_version, sizeof op->inst.previous_version, "%s",
                     op->from_version);
        } else {
            set_state(op, state_after(a, op->inst.actual_state), NULL);
        }
        crash_t *c = crash_of(lc, op->inst.uuid, a == PD_ACTION_START);
        if (c)
            c->running_since_ms = a == PD_ACTION_START ? plat_mono_ms() : 0;
        if (a == PD_ACTION_UNINSTALL) {
            /* Its tasks and service rows go with it (ON DELETE CASCADE). */
            pd_store_delete_instance(lc->store, op->inst.uuid);
            pd_ability_forget_instance(lc->pd, op->inst.uuid);
            pd_resources_forget_instance(lc->pd, op->inst.uuid); /* its DB and files */
        } else if (persist(op) < 0) {
            op_done(op, -EIO, "cannot persist the instance state");
            return;
        }
        advance(op);
        return;
    }
    /* A failed step. */
    if (op->action == PD_ACTION_UPGRADE && !op->rolling_back) {
        /* Back to the old version and the state it had. */
        plat_log_warn("lifecycle", "upgrade step %s failed: %s, rolling back to %s instance=%s",
                      pd_action_name(a), why, op->from_version, op->inst.uuid);
        op->rolling_back = true;
        op->fail_code = status;
        snprintf(op->inst.version, sizeof op->inst.version, "%s", op->from_version);
        op->inst.previous_version[0] = 0;
        char err[PD_STORE_ERROR_MAX + 1];
        snprintf(err, sizeof err, "upgrade to %s failed (%s): rolled back", op->to_version, why);
        snprintf(op->fail_why, sizeof op->fail_why, "%s", err);
        bool was_running = strcmp(op->before_state, PD_STATE_RUNNING) == 0;
        set_state(op, was_running ? PD_STATE_STOPPED : op->before_state, err);
        persist(op);
        op->n_steps = 0;
        op->step = 0;
        if (was_running && strcmp(op->inst.actual_state, PD_STATE_RUNNING) != 0)
            op->steps[op->n_steps++] = PD_ACTION_START;
        if (op->n_steps) {
            op->step = 0;
            run_step(op);
            return;
        }
        op->n_steps = 1;
        op->step = 0;
        advance(op);
        return;
    }
    /* Start, stop and install failures leave the instance failed; enable,
     * disable and uninstall leave its state as it was. */
    if (a == PD_ACTION_START || a == PD_ACTION_STOP || a == PD_ACTION_INSTALL)
        set_state(op, PD_STATE_FAILED, why);
    else
        set_state(op, op->inst.actual_state, why);
    if (a == PD_ACTION_UNINSTALL) /* it still exists: wanted as it is */
        copy_state(op->inst.desired_state, sizeof op->inst.desired_state,
                   op->inst.actual_state);
    persist(op);
    op_done(op, status, why);
}

static op_t *op_new(pd_lifecycle_t *lc, pd_action_t action, pd_action_cb cb, void *arg)
{
    op_t *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->lc = lc;
    op->action = action;
    op->cb = cb;
    op->arg = arg;
    return op;
}

static void op_start(op_t *op)
{
    op->next = op->lc->ops;
    op->lc->ops = op;
    run_step(op);
}

/* ---- public ---------------------------------------------------------------- */

int pd_lifecycle_install(pd_lifecycle_t *lc, const char *plugin, const char *version,
                         const char *org, const char *config_json, pd_action_cb cb, void *arg,
                         char *why, size_t why_size)
{
    if (!plugin || !version || !org || !*org || strlen(org) > PD_STORE_ID_MAX) {
        snprintf(why, why_size, "plugin, version and org (1-%d characters) are required",
                 PD_STORE_ID_MAX);
        return -EINVAL;
    }
    pd_store_package_t pkg = {0};
    if (pd_store_get_package(lc->store, plugin, version, &pkg) < 0) {
        snprintf(why, why_size, "package %.64s %.64s is not registered", plugin, version);
        return -ENOENT;
    }
    op_t *op = op_new(lc, PD_ACTION_INSTALL, cb, arg);
    if (!op) {
        pd_store_package_clear(&pkg);
        snprintf(why, why_size, "out of memory");
        return -ENOMEM;
    }
    char uuid[PLAT_UUID_LEN + 1];
    plat_uuid_new(uuid);
    pd_store_instance_t *in = &op->inst;
    snprintf(in->uuid, sizeof in->uuid, "%s", uuid);
    snprintf(in->plugin, sizeof in->plugin, "%s", plugin);
    snprintf(in->version, sizeof in->version, "%s", version);
    snprintf(in->org, sizeof in->org, "%s", org);
    in->config_json = strdup(config_json ? config_json : "{}");
    snprintf(in->actual_state, sizeof in->actual_state, "%s", PD_STATE_INSTALLED);
    snprintf(in->desired_state, sizeof in->desired_state, "%s", PD_STATE_INSTALLED);
    snprintf(in->host_mode, sizeof in->host_mode, "%s", pkg.host_mode);
    pd_store_package_clear(&pkg);
    /* Recorded before the hook runs, so a restart never forgets it; an
     * install that fails leaves it "failed" for the operator to see. */
    int rc = in->config_json ? pd_store_insert_instance(lc->store, in) : -ENOMEM;
    if (rc < 0) {
        snprintf(why, why_size, "cannot record the instance: %s", pd_store_why(lc->store));
        op_free(op);
        return rc;
    }
    pd_store_instance_t fresh = {0}; /* as recorded: created_at, updated_at */
    if (pd_store_get_instance(lc->store, uuid, &fresh) == 0) {
        in->created_at = fresh.created_at;
        in->updated_at = fresh.updated_at;
    }
    pd_store_instance_clear(&fresh);
    op->is_install = true;
    op->steps[op->n_steps++] = PD_ACTION_INSTALL;
    snprintf(op->before_state, sizeof op->before_state, "%s", "");
    plat_log_info("lifecycle", "install instance=%s plugin=%s version=%s org=%s", uuid, plugin,
                  version, org);
    op_start(op);
    return 0;
}

int pd_lifecycle_act(pd_lifecycle_t *lc, const char *uuid, pd_action_t action,
                     const char *version, pd_action_cb cb, void *arg, char *why, size_t why_size)
{
    if (!plat_uuid_valid(uuid)) {
        snprintf(why, why_size, "not an instance id");
        return -ENOENT;
    }
    if (op_of(lc, uuid)) {
        snprintf(why, why_size, "an action is already in progress on this instance");
        return -EBUSY;
    }
    op_t *op = op_new(lc, action, cb, arg);
    if (!op) {
        snprintf(why, why_size, "out of memory");
        return -ENOMEM;
    }
    int rc = pd_store_get_instance(lc->store, uuid, &op->inst);
    if (rc < 0) {
        snprintf(why, why_size, "no such instance");
        op_free(op);
        return -ENOENT;
    }
    const char *refused = transition_refused(op->inst.actual_state, action);
    if (refused) {
        snprintf(why, why_size, "%s: cannot %s an instance that is %s", refused,
                 pd_action_name(action), op->inst.actual_state);
        op_free(op);
        return -EPERM;
    }
    snprintf(op->before_state, sizeof op->before_state, "%s", op->inst.actual_state);
    if (action == PD_ACTION_UPGRADE) {
        pd_store_package_t pkg = {0};
        if (!version || pd_store_get_package(lc->store, op->inst.plugin, version, &pkg) < 0) {
            snprintf(why, why_size, "package %.64s %.64s is not registered", op->inst.plugin,
                     version ? version : "(none)");
            op_free(op);
            return -ENOENT;
        }
        pd_store_package_clear(&pkg);
        int cmp = 0;
        if (pd_semver_compare(version, op->inst.version, &cmp) < 0 || cmp == 0) {
            snprintf(why, why_size, "upgrade needs another version than %s", op->inst.version);
            op_free(op);
            return -EINVAL;
        }
        snprintf(op->from_version, sizeof op->from_version, "%s", op->inst.version);
        snprintf(op->to_version, sizeof op->to_version, "%s", version);
        bool running = strcmp(op->inst.actual_state, PD_STATE_RUNNING) == 0;
        if (running)
            op->steps[op->n_steps++] = PD_ACTION_STOP;
        op->steps[op->n_steps++] = PD_ACTION_UPGRADE;
        if (running)
            op->steps[op->n_steps++] = PD_ACTION_START;
        /* The version switch happens before the upgrade hook: it runs in
         * the new version (steps before it still use the old one). */
    } else {
        op->steps[op->n_steps++] = action;
    }
    const char *desired = action == PD_ACTION_UPGRADE ? op->inst.desired_state
                                                      : state_after(action, op->inst.actual_state);
    copy_state(op->inst.desired_state, sizeof op->inst.desired_state, desired);
    if (action != PD_ACTION_UNINSTALL && persist(op) < 0) {
        snprintf(why, why_size, "cannot persist the desired state");
        op_free(op);
        return -EIO;
    }
    plat_log_info("lifecycle", "%s instance=%s plugin=%s version=%s state=%s%s%s",
                  pd_action_name(action), uuid, op->inst.plugin, op->inst.version,
                  op->inst.actual_state, version ? " to=" : "", version ? version : "");
    op_start(op);
    return 0;
}

/* ---- invoke ------------------------------------------------------------------ */

typedef struct {
    pd_invoke_cb cb;
    void *arg;
} invoke_t;

static void on_invoke_reply(int status, const Plat__PlatformMessage *reply, void *arg)
{
    invoke_t *iv = arg;
    if (status != 0) {
        iv->cb(status, status == -ETIMEDOUT ? "the plugin did not answer in time"
                       : status == -ECHILD  ? "the plugin's host died handling the event"
                                            : "platform stopping",
               0, NULL, NULL, 0, iv->arg);
        free(iv);
        return;
    }
    const Plat__PluginEventResponse *r =
        reply->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN &&
                reply->plugin->body_case == PLAT__PLUGIN_MESSAGE__BODY_RESPONSE
            ? reply->plugin->response
            : NULL;
    const Plat__ErrorMessage *err = reply->header->error ? reply->header->error
                                    : r && r->error      ? r->error
                                                         : NULL;
    if (err && err->code) {
        iv->cb(err->code, err->message, 0, NULL, NULL, 0, iv->arg);
    } else if (!r) {
        iv->cb(-EPROTO, "the host answered without a response", 0, NULL, NULL, 0, iv->arg);
    } else {
        const char *ctype = "";
        for (size_t i = 0; i < r->n_headers; i++)
            if (strcasecmp(r->headers[i]->name, "content-type") == 0)
                ctype = r->headers[i]->value;
        iv->cb(0, NULL, r->status ? r->status : 200, ctype, r->body.data, r->body.len, iv->arg);
    }
    free(iv);
}

int pd_lifecycle_invoke(pd_lifecycle_t *lc, const char *uuid, const char *method,
                        const char *path, const char *content_type, const uint8_t *body,
                        size_t len, pd_invoke_cb cb, void *arg, char *why, size_t why_size)
{
    pd_store_instance_t inst = {0};
    if (!plat_uuid_valid(uuid) || pd_store_get_instance(lc->store, uuid, &inst) < 0) {
        snprintf(why, why_size, "no such instance");
        return -ENOENT;
    }
    bool running = strcmp(inst.actual_state, PD_STATE_RUNNING) == 0;
    pd_store_instance_clear(&inst);
    char host[PD_HOSTMAP_ID_MAX + 1];
    if (!running || pd_hostmap_host_of(lc->map, uuid, host) < 0) {
        snprintf(why, why_size, "the instance is not running");
        return -EPERM;
    }
    Plat__HttpHeader ct = PLAT__HTTP_HEADER__INIT;
    ct.name = "content-type";
    ct.value = (char *)(content_type ? content_type : "");
    const Plat__HttpHeader *hdrs[1] = {&ct};
    Plat__PlatformMessage *m = plat_msg_plugin_event(uuid, method, path, hdrs,
                                                     content_type && *content_type ? 1 : 0, body,
                                                     len);
    invoke_t *iv = malloc(sizeof *iv);
    int64_t rc = -ENOMEM;
    if (m && iv) {
        iv->cb = cb;
        iv->arg = arg;
        rc = plat_bus_request(lc->pd->bus, host, m,
                              (uint32_t)lc->pd->cfg->plugins.action_timeout_ms, on_invoke_reply,
                              iv);
    }
    plat_envelope_free(&m);
    if (rc < 0) {
        free(iv);
        snprintf(why, why_size, "host %s not reachable: %s", host, strerror((int)-rc));
        return (int)rc;
    }
    return 0;
}

/* ---- hosts going away ------------------------------------------------------------- */

void pd_lifecycle_host_gone(pd_lifecycle_t *lc, const char *host_id, const char *why)
{
    pd_idlist_t detached = PD_IDLIST_INIT;
    if (pd_hostmap_remove_host(lc->map, host_id, &detached) < 0)
        return;
    for (size_t i = 0; i < detached.n; i++) {
        const char *uuid = detached.ids[i];
        if (op_of(lc, uuid))
            continue; /* the action in flight reports the failure */
        pd_store_instance_t inst = {0};
        if (pd_store_get_instance(lc->store, uuid, &inst) < 0)
            continue;
        if (strcmp(inst.actual_state, PD_STATE_RUNNING) == 0) {
            char err[PD_STORE_ERROR_MAX + 1];
            snprintf(err, sizeof err, "host %s ended: %s", host_id, why);
            plat_log_warn("lifecycle", "instance crashed: its host ended (%s) instance=%s "
                                       "plugin=%s host=%s",
                          why, uuid, inst.plugin, host_id);
            crashed(lc, uuid, err);
        }
        pd_store_instance_clear(&inst);
    }
    for (size_t i = 0; i < detached.n; i++)
        triggers_kick(lc, detached.ids[i]);
    pd_idlist_clear(&detached);
}

/* ---- restart ------------------------------------------------------------------------ */

typedef struct {
    char (*ids)[PLAT_UUID_LEN + 1];
    size_t n, cap;
} uuid_list_t;

static int collect_to_start(const pd_store_instance_t *inst, void *arg)
{
    uuid_list_t *l = arg;
    bool want = strcmp(inst->desired_state, PD_STATE_RUNNING) == 0;
    if (!want)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        void *ids = realloc(l->ids, cap * sizeof *l->ids);
        if (!ids)
            return -ENOMEM;
        l->ids = ids;
        l->cap = cap;
    }
    snprintf(l->ids[l->n++], sizeof l->ids[0], "%s", inst->uuid);
    return 0;
}

static void on_reconciled(int status, const char *why, const pd_store_instance_t *inst, void *arg)
{
    (void)arg;
    if (status < 0)
        plat_log_warn("lifecycle", "could not bring an instance back after restart: %s "
                                   "instance=%s",
                      why, inst ? inst->uuid : "-");
}

void pd_lifecycle_reconcile(pd_lifecycle_t *lc)
{
    /* The instances that should have been running when platformd started
     * (collected then): those that came back with their hosts are running;
     * the rest are recorded stopped and started. Instances created or acted
     * on since are not this function's business. */
    size_t adopted = 0, started = 0;
    for (size_t i = 0; i < lc->n_reconcile; i++) {
        const char *uuid = lc->to_reconcile[i];
        char host[PD_HOSTMAP_ID_MAX + 1];
        if (pd_hostmap_host_of(lc->map, uuid, host) == 0) {
            adopted++; /* came back with its host */
            continue;
        }
        if (op_of(lc, uuid))
            continue; /* an operator got there first */
        pd_store_instance_t inst = {0};
        if (pd_store_get_instance(lc->store, uuid, &inst) < 0)
            continue;
        bool want = strcmp(inst.desired_state, PD_STATE_RUNNING) == 0;
        pd_store_instance_clear(&inst);
        if (!want)
            continue;
        pd_store_update_instance_state(lc->store, uuid, PD_STATE_STOPPED, NULL, NULL);
        char why[256];
        if (pd_lifecycle_act(lc, uuid, PD_ACTION_START, NULL, on_reconciled, NULL, why,
                             sizeof why) < 0)
            plat_log_warn("lifecycle", "cannot restart instance after platform restart: %s "
                                       "instance=%s",
                          why, uuid);
        else
            started++;
    }
    if (lc->n_reconcile)
        plat_log_notice("lifecycle", "after the platform restart: %zu instances restarted, %zu "
                                     "came back with their hosts",
                        started, adopted);
    free(lc->to_reconcile);
    lc->to_reconcile = NULL;
    lc->n_reconcile = 0;
    triggers_kick(lc, NULL); /* task runs that waited for the reconciliation */
}

/* ---- idle powerSave hosts ------------------------------------------------------------- */

static void triggers_expire(pd_lifecycle_t *lc);

static void on_idle_timer(uv_timer_t *t)
{
    pd_lifecycle_t *lc = t->data;
    triggers_expire(lc);
    pd_idlist_t idle = PD_IDLIST_INIT;
    if (pd_hostmap_idle(lc->map, plat_mono_ms(), (uint64_t)lc->pd->cfg->plugins.idle_ms, &idle) <
        0)
        return;
    for (size_t i = 0; i < idle.n; i++) {
        char why[128];
        plat_log_info("lifecycle", "stopping idle powerSave host host=%s", idle.ids[i]);
        pd_hostmap_retire(lc->map, idle.ids[i], NULL);
        pd_hosts_delete(lc->pd, idle.ids[i], why, sizeof why);
    }
    pd_idlist_clear(&idle);
}

/* ---- setup --------------------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

pd_lifecycle_t *pd_lifecycle_new(pd_t *pd, char *why, size_t why_size)
{
    pd_lifecycle_t *lc = calloc(1, sizeof *lc);
    if (!lc) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    lc->pd = pd;
    const char *dir = pd->cfg->state.dir;
    char db[PATH_MAX];
    int rc = mkdir_p(dir);
    if (rc < 0 || snprintf(lc->packages_dir, sizeof lc->packages_dir, "%s/packages", dir) >=
                      (int)sizeof lc->packages_dir ||
        snprintf(db, sizeof db, "%s/platform.db", dir) >= (int)sizeof db) {
        snprintf(why, why_size, "state directory %s: %s", dir,
                 rc < 0 ? strerror(-rc) : "path too long");
        free(lc);
        return NULL;
    }
    char abs_pkg[PATH_MAX];
    mkdir_p(lc->packages_dir);
    if (realpath(lc->packages_dir, abs_pkg))
        snprintf(lc->packages_dir, sizeof lc->packages_dir, "%s", abs_pkg);
    rc = pd_store_open(db, &lc->store, why, why_size);
    if (rc < 0) {
        free(lc);
        return NULL;
    }
    lc->map = pd_hostmap_new();
    if (!lc->map) {
        pd_store_close(&lc->store);
        free(lc);
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    uuid_list_t l = {0};
    pd_store_list_instances(lc->store, NULL, collect_to_start, &l);
    lc->to_reconcile = l.ids;
    lc->n_reconcile = l.n;
    uv_timer_init(pd->loop, &lc->idle_timer);
    uv_timer_init(pd->loop, &lc->reconcile_timer);
    lc->idle_timer.data = lc->reconcile_timer.data = lc;
    lc->open_handles = 2;
    uint64_t every = (uint64_t)pd->cfg->plugins.idle_ms / 4;
    if (every < 50)
        every = 50;
    uv_timer_start(&lc->idle_timer, on_idle_timer, every, every);
    return lc;
}

static void triggers_cancel(pd_lifecycle_t *lc, pd_trigger_cb cb, bool all);

static void free_lifecycle(uv_handle_t *h)
{
    pd_lifecycle_t *lc = h->data;
    if (--lc->open_handles == 0)
        free(lc);
}

void pd_lifecycle_destroy(pd_lifecycle_t **lcp)
{
    if (!lcp || !*lcp)
        return;
    pd_lifecycle_t *lc = *lcp;
    *lcp = NULL;
    while (lc->ops) {
        op_t *op = lc->ops;
        op_unlink(op);
        if (op->cb)
            op->cb(-ECANCELED, "platform stopping", &op->inst, op->arg);
        op->cb = NULL;
        if (op->waiting)
            op->cancelled = true; /* freed by the pending callback */
        else
            op_free(op);
    }
    triggers_cancel(lc, NULL, true);
    crashes_close(lc);
    free(lc->to_reconcile);
    lc->to_reconcile = NULL;
    /* Pending hosts are finished by pd_hosts_shutdown (-ECANCELED); their
     * waiters are cancelled above and the map is gone by then. */
    pd_hostmap_destroy(&lc->map);
    pd_store_close(&lc->store);
    uv_close((uv_handle_t *)&lc->idle_timer, free_lifecycle);
    uv_close((uv_handle_t *)&lc->reconcile_timer, free_lifecycle);
}

pd_store_t *pd_lifecycle_store(pd_lifecycle_t *lc) { return lc->store; }
const char *pd_lifecycle_packages_dir(const pd_lifecycle_t *lc) { return lc->packages_dir; }

int pd_lifecycle_register_package(pd_lifecycle_t *lc, const char *path, pd_store_package_t *out,
                                  char *why, size_t why_size)
{
    pd_manifest_t m = {0};
    int rc = pd_package_register(lc->packages_dir, path, &m, why, why_size);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", m.id);
    snprintf(out->version, sizeof out->version, "%s", m.version);
    snprintf(out->language, sizeof out->language, "%s", m.language);
    snprintf(out->runtime_version, sizeof out->runtime_version, "%s", m.runtime_version);
    snprintf(out->entry, sizeof out->entry, "%s", m.entry);
    snprintf(out->host_mode, sizeof out->host_mode, "%s", pd_mode_name(m.host_mode));
    char *pkgdir = pd_package_path(lc->packages_dir, m.id, m.version);
    char mpath[PATH_MAX];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", pkgdir ? pkgdir : path);
    free(pkgdir);
    json_error_t jerr;
    json_t *mj = json_load_file(mpath, 0, &jerr);
    out->manifest_json = mj ? json_dumps(mj, JSON_COMPACT) : strdup("{}");
    json_decref(mj);
    pd_manifest_free(&m);
    /* The store's digest of the stored copy (package.c writes it). */
    char dpath[PATH_MAX + 16];
    char *stored = pd_package_path(lc->packages_dir, out->id, out->version);
    snprintf(dpath, sizeof dpath, "%s/.digest", stored ? stored : "");
    free(stored);
    FILE *df = fopen(dpath, "r");
    if (df) {
        if (fgets(out->digest, sizeof out->digest, df))
            out->digest[strcspn(out->digest, "\r\n")] = 0;
        fclose(df);
    }
    rc = pd_store_put_package(lc->store, out);
    if (rc < 0 && rc != -EEXIST) {
        snprintf(why, why_size, "cannot record the package: %s", pd_store_why(lc->store));
        pd_store_package_clear(out);
        return rc;
    }
    /* As recorded (registered_at; the first registration's on a repeat). */
    char id[PD_STORE_ID_MAX + 1], version[PD_STORE_VERSION_MAX + 1];
    snprintf(id, sizeof id, "%s", out->id);
    snprintf(version, sizeof version, "%s", out->version);
    pd_store_package_clear(out);
    pd_store_get_package(lc->store, id, version, out);
    return rc == -EEXIST ? 1 : 0;
}

static int64_t restart_in_ms(pd_lifecycle_t *lc, const char *uuid);

json_t *pd_lifecycle_instance_json(pd_lifecycle_t *lc, const pd_store_instance_t *in)
{
    char host[PD_HOSTMAP_ID_MAX + 1] = "";
    pd_hostmap_host_of(lc->map, in->uuid, host);
    json_error_t jerr;
    json_t *config = json_loads(in->config_json ? in->config_json : "{}", 0, &jerr);
    int64_t restart = restart_in_ms(lc, in->uuid);
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:s, s:i, s:I, s:I, s:o, "
                     "s:b, s:o}",
                     "uuid", in->uuid, "plugin", in->plugin, "version", in->version, "org",
                     in->org, "config", config ? config : json_object(), "state",
                     in->actual_state, "desired_state", in->desired_state, "host_mode",
                     in->host_mode, "host", host[0] ? json_string(host) : json_null(),
                     "last_error", in->last_error, "crash_count", (int)in->crash_count,
                     "created_at", (json_int_t)in->created_at, "updated_at",
                     (json_int_t)in->updated_at, "previous_version",
                     in->previous_version[0] ? json_string(in->previous_version) : json_null(),
                     "busy", op_of(lc, in->uuid) != NULL, "restart_in_ms",
                     restart >= 0 ? json_integer((json_int_t)restart) : json_null());
}

json_t *pd_lifecycle_host_instances(pd_lifecycle_t *lc, const char *host_id)
{
    json_t *arr = json_array();
    pd_idlist_t ids = PD_IDLIST_INIT;
    if (lc && pd_hostmap_instances(lc->map, host_id, &ids) >= 0)
        for (size_t i = 0; i < ids.n; i++)
            json_array_append_new(arr, json_string(ids.ids[i]));
    pd_idlist_clear(&ids);
    return arr;
}

bool pd_lifecycle_knows_host(pd_lifecycle_t *lc, const char *host_id)
{
    pd_hostmap_host_t info;
    return lc && pd_hostmap_host_info(lc->map, host_id, &info) == 0;
}

/* ---- crash policy --------------------------------------------------------------------- */

static crash_t *crash_of(pd_lifecycle_t *lc, const char *uuid, bool create)
{
    for (crash_t *c = lc->crashes; c; c = c->next)
        if (strcmp(c->uuid, uuid) == 0)
            return c;
    if (!create)
        return NULL;
    crash_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->lc = lc;
    snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
    uv_timer_init(lc->pd->loop, &c->timer);
    c->timer.data = c;
    c->next = lc->crashes;
    lc->crashes = c;
    return c;
}

static void on_restarted(int status, const char *why, const pd_store_instance_t *inst, void *arg)
{
    pd_lifecycle_t *lc = arg;
    if (!inst)
        return;
    pd_store_record_action(lc->store, inst->uuid, "restart", status == 0 ? "ok" : "error",
                           status == 0 ? "restarted after a crash" : why);
    if (status == 0)
        plat_log_notice("lifecycle", "instance restarted after a crash instance=%s plugin=%s",
                        inst->uuid, inst->plugin);
    else if (status != -ECANCELED)
        crashed(lc, inst->uuid, why); /* a failed restart counts as the next crash */
}

static void on_restart_timer(uv_timer_t *t)
{
    crash_t *c = t->data;
    pd_lifecycle_t *lc = c->lc;
    c->restart_at_ms = 0;
    pd_store_instance_t inst = {0};
    if (pd_store_get_instance(lc->store, c->uuid, &inst) < 0)
        return; /* uninstalled meanwhile */
    bool want = strcmp(inst.actual_state, PD_STATE_FAILED) == 0 &&
                strcmp(inst.desired_state, PD_STATE_RUNNING) == 0;
    pd_store_instance_clear(&inst);
    if (!want)
        return; /* an operator acted meanwhile */
    char why[256];
    if (pd_lifecycle_act(lc, c->uuid, PD_ACTION_START, NULL, on_restarted, lc, why, sizeof why) <
        0)
        plat_log_warn("lifecycle", "automatic restart not started: %s instance=%s", why,
                      c->uuid);
}

/* A running instance lost its host (or a restart failed): failed now,
 * restarted with exponential backoff and jitter; crash_limit crashes in
 * crash_window_ms leave it failed, retried only every failed_retry_ms. */
static void crashed(pd_lifecycle_t *lc, const char *uuid, const char *why)
{
    const pd_config_t *cfg = lc->pd->cfg;
    uint64_t now = plat_mono_ms();
    crash_t *c = crash_of(lc, uuid, true);
    pd_store_instance_t inst = {0};
    if (!c || pd_store_get_instance(lc->store, uuid, &inst) < 0)
        return;
    if (c->running_since_ms && now - c->running_since_ms >= (uint64_t)cfg->plugins.restart_stable_ms)
        c->count = 0; /* it had been up long enough: a fresh start */
    if (c->count == 0 || now - c->window_start_ms > (uint64_t)cfg->plugins.crash_window_ms) {
        c->count = 0;
        c->window_start_ms = now;
    }
    c->count++;
    c->running_since_ms = 0;
    snprintf(inst.actual_state, sizeof inst.actual_state, "%s", PD_STATE_FAILED);
    snprintf(inst.last_error, sizeof inst.last_error, "%s", why);
    inst.crash_count = (int32_t)c->count;
    pd_store_update_instance(lc->store, &inst);
    pd_store_record_action(lc->store, uuid, "crash", "error", why);
    uint64_t delay;
    if (c->count >= (unsigned)cfg->plugins.crash_limit) {
        delay = (uint64_t)cfg->plugins.failed_retry_ms;
        plat_log_warn("lifecycle", "instance crashed %u times within %lld ms: failed, %s "
                                   "instance=%s plugin=%s",
                      c->count, (long long)cfg->plugins.crash_window_ms,
                      delay ? "retried slowly" : "left to the operator", uuid, inst.plugin);
    } else if (cfg->plugins.restart_initial_ms <= 0 ||
               strcmp(inst.desired_state, PD_STATE_RUNNING) != 0) {
        delay = 0;
    } else {
        unsigned shift = c->count - 1 < 20 ? c->count - 1 : 20;
        delay = (uint64_t)cfg->plugins.restart_initial_ms << shift;
        if (delay > (uint64_t)cfg->plugins.restart_max_ms)
            delay = (uint64_t)cfg->plugins.restart_max_ms;
        /* ±20 % jitter so that many instances do not restart in step. */
        uint64_t span = delay / 5;
        uint32_t r = 0;
        if (span && getrandom(&r, sizeof r, 0) == (ssize_t)sizeof r)
            delay = delay - span + r % (2 * span + 1);
    }
    pd_store_instance_clear(&inst);
    if (delay) {
        c->restart_at_ms = now + delay;
        uv_timer_start(&c->timer, on_restart_timer, delay, 0);
        plat_log_info("lifecycle", "instance restart scheduled in %llu ms instance=%s crashes=%u",
                      (unsigned long long)delay, uuid, c->count);
    }
}

/* ms until the scheduled automatic restart, or -1. */
static int64_t restart_in_ms(pd_lifecycle_t *lc, const char *uuid)
{
    crash_t *c = crash_of(lc, uuid, false);
    uint64_t now = plat_mono_ms();
    if (!c || !c->restart_at_ms)
        return -1;
    return c->restart_at_ms > now ? (int64_t)(c->restart_at_ms - now) : 0;
}

static void free_crash(uv_handle_t *h) { free(h->data); }

static void crashes_close(pd_lifecycle_t *lc)
{
    while (lc->crashes) {
        crash_t *c = lc->crashes;
        lc->crashes = c->next;
        uv_close((uv_handle_t *)&c->timer, free_crash);
    }
}

static void on_reconcile_timer(uv_timer_t *t) { pd_lifecycle_reconcile(t->data); }

void pd_lifecycle_schedule_reconcile(pd_lifecycle_t *lc, uint64_t delay_ms)
{
    plat_log_info("lifecycle", "instances that should run are brought back in %llu ms",
                  (unsigned long long)delay_ms);
    uv_timer_start(&lc->reconcile_timer, on_reconcile_timer, delay_ms, 0);
}

size_t pd_lifecycle_adopt_host(pd_lifecycle_t *lc, const char *host_id, const char *language,
                               const char *version, const char *mode,
                               const char *const *instances, size_t n)
{
    pd_mode_t m;
    if (!lc || pd_mode_parse(mode, &m) < 0 || m == PD_MODE_DEV)
        return 0;
    size_t adopted = 0;
    uint64_t now = plat_mono_ms();
    for (size_t i = 0; i < n; i++) {
        const char *uuid = instances[i];
        char other[PD_HOSTMAP_ID_MAX + 1];
        pd_store_instance_t inst = {0};
        if (!plat_uuid_valid(uuid) || op_of(lc, uuid) ||
            pd_hostmap_host_of(lc->map, uuid, other) == 0 ||
            pd_store_get_instance(lc->store, uuid, &inst) < 0)
            continue;
        bool wanted = strcmp(inst.desired_state, PD_STATE_RUNNING) == 0 &&
                      strcmp(inst.host_mode, mode) == 0;
        if (wanted && adopted == 0) {
            int rc = pd_hostmap_add_host(lc->map, host_id, language, version, m, now);
            wanted = rc == 0 || rc == -EEXIST;
        }
        if (wanted && pd_hostmap_attach(lc->map, uuid, host_id, true, now) == 0) {
            adopted++;
            crash_t *c = crash_of(lc, uuid, true);
            if (c)
                c->running_since_ms = now;
            if (strcmp(inst.actual_state, PD_STATE_RUNNING) != 0)
                pd_store_update_instance_state(lc->store, uuid, PD_STATE_RUNNING, NULL, NULL);
            pd_store_record_action(lc->store, uuid, "adopt", "ok",
                                   "running on a host of the previous platform run");
            plat_log_notice("lifecycle", "instance adopted with its host instance=%s host=%s",
                            uuid, host_id);
        }
        pd_store_instance_clear(&inst);
    }
    for (size_t i = 0; adopted && i < n; i++)
        if (plat_uuid_valid(instances[i]))
            triggers_kick(lc, instances[i]);
    return adopted;
}

/* ---- task triggers -------------------------------------------------------------------- */

/* One AbilityTrigger on its way to an instance: waiting (for a host, an
 * action in flight, the reconciliation) or in flight on the bus. */
typedef struct trig {
    struct trig *next;
    pd_lifecycle_t *lc; /* NULL once the lifecycle is gone */
    char uuid[PLAT_UUID_LEN + 1];
    char name[PD_STORE_TASK_NAME_MAX + 1];
    int64_t scheduled_ms;
    bool missed;
    uint64_t deadline_ms; /* monotonic: give up waiting then */
    bool in_flight;       /* the bus request refers to us */
    bool busy;            /* trig_try is on the stack */
    uint64_t seen_gen;    /* last triggers_kick walk that saw it */
    pd_trigger_cb cb;     /* NULL once cancelled */
    void *arg;
} trig_t;

static void trig_unlink(trig_t *t)
{
    if (!t->lc)
        return;
    for (trig_t **pp = &t->lc->triggers; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            return;
        }
}

/* Report and free (not while in flight: the bus callback owns it then). */
static void trig_end(trig_t *t, int status, const char *why)
{
    trig_unlink(t);
    pd_trigger_cb cb = t->cb;
    t->cb = NULL;
    if (cb)
        cb(status, why, t->arg);
    free(t);
}

static void on_trig_reply(int status, const Plat__PlatformMessage *reply, void *arg)
{
    trig_t *t = arg;
    t->in_flight = false;
    if (!t->lc || !t->cb) { /* lifecycle gone, or cancelled */
        trig_unlink(t);
        free(t);
        return;
    }
    if (status != 0) {
        trig_end(t, status,
                 status == -ETIMEDOUT ? "the plugin did not answer the task in time"
                 : status == -ECHILD  ? "the host died handling the task"
                                      : "platform stopping");
        return;
    }
    char why[300] = "";
    int code = pd_ability_reply_error(reply, why, sizeof why);
    trig_end(t, code, code ? why : NULL);
}

static void trig_send(trig_t *t, const char *host)
{
    pd_lifecycle_t *lc = t->lc;
    Plat__PlatformMessage *m = pd_ability_msg_trigger(t->uuid, t->name, t->scheduled_ms, t->missed);
    int64_t rc =
        m ? plat_bus_request(lc->pd->bus, host, m, (uint32_t)lc->pd->cfg->plugins.action_timeout_ms,
                             on_trig_reply, t)
          : -ENOMEM;
    plat_envelope_free(&m);
    if (rc < 0) {
        char why[160];
        snprintf(why, sizeof why, "host %s not reachable: %s", host, strerror((int)-rc));
        trig_end(t, (int)rc, why);
        return;
    }
    t->in_flight = true;
}

static bool awaits_reconcile(const pd_lifecycle_t *lc, const char *uuid)
{
    for (size_t i = 0; lc->to_reconcile && i < lc->n_reconcile; i++)
        if (strcmp(lc->to_reconcile[i], uuid) == 0)
            return true;
    return false;
}

static void on_trigger_start(int status, const char *why, const pd_store_instance_t *inst,
                             void *arg)
{
    (void)arg;
    if (status != 0)
        plat_log_warn("lifecycle", "could not start a host for a due task: %s instance=%s", why,
                      inst ? inst->uuid : "-");
    /* op_done kicks the waiting triggers next. */
}

/* Move a waiting trigger on: send it, keep it waiting, start a host for
 * its instance, or end it. */
static void trig_try(trig_t *t, bool may_start)
{
    pd_lifecycle_t *lc = t->lc;
    if (t->in_flight || t->busy || !lc)
        return;
    pd_store_instance_t inst = {0};
    if (pd_store_get_instance(lc->store, t->uuid, &inst) < 0) {
        trig_end(t, -ENOENT, "the instance no longer exists");
        return;
    }
    bool running = strcmp(inst.actual_state, PD_STATE_RUNNING) == 0;
    bool wanted = strcmp(inst.desired_state, PD_STATE_RUNNING) == 0;
    pd_store_instance_clear(&inst);
    if (op_of(lc, t->uuid)) {
        if (!running && !wanted)
            trig_end(t, -EPERM, "the instance is not running");
        return; /* after the action (op_done kicks us) */
    }
    if (!running) {
        trig_end(t, -EPERM, "the instance is not running");
        return;
    }
    char host[PD_HOSTMAP_ID_MAX + 1];
    if (pd_hostmap_host_of(lc->map, t->uuid, host) == 0) {
        if (!pending_of(lc, host))
            trig_send(t, host);
        return;
    }
    if (awaits_reconcile(lc, t->uuid))
        return; /* adopted with its host, or restarted, soon */
    if (!may_start) {
        trig_end(t, -EHOSTDOWN, "the instance has no host");
        return;
    }
    /* Running without a host: start one through the mode's start action. */
    plat_log_notice("lifecycle", "starting a host for a due task instance=%s task=%s", t->uuid,
                    t->name);
    pd_store_update_instance_state(lc->store, t->uuid, PD_STATE_STOPPED, NULL, NULL);
    char why[256];
    t->busy = true;
    int rc = pd_lifecycle_act(lc, t->uuid, PD_ACTION_START, NULL, on_trigger_start, NULL, why,
                              sizeof why);
    t->busy = false;
    if (rc < 0) {
        pd_store_update_instance_state(lc->store, t->uuid, PD_STATE_RUNNING, NULL, NULL);
        trig_end(t, rc, why);
        return;
    }
    if (!op_of(lc, t->uuid))
        trig_try(t, false); /* the start ended before act returned */
}

/* Re-examine the waiting triggers of `uuid` (NULL: all). trig_try may end
 * (free) triggers and, through actions that end at once, kick again: the
 * walk restarts after each trigger, skipping those this walk has seen. */
static void triggers_kick(pd_lifecycle_t *lc, const char *uuid)
{
    uint64_t gen = ++lc->kick_gen;
    for (;;) {
        trig_t *pick = NULL;
        for (trig_t *t = lc->triggers; t && !pick; t = t->next)
            if (t->seen_gen != gen && !t->in_flight && !t->busy &&
                (!uuid || strcmp(t->uuid, uuid) == 0))
                pick = t;
        if (!pick)
            return;
        pick->seen_gen = gen;
        trig_try(pick, true);
    }
}

/* Waiting triggers past their deadline end with -ETIMEDOUT. */
static void triggers_expire(pd_lifecycle_t *lc)
{
    uint64_t now = plat_mono_ms();
    for (;;) {
        trig_t *late = NULL;
        for (trig_t *t = lc->triggers; t && !late; t = t->next)
            if (!t->in_flight && !t->busy && t->cb && now >= t->deadline_ms)
                late = t;
        if (!late)
            return;
        plat_log_warn("lifecycle",
                      "task trigger gave up: the instance got no host in time "
                      "instance=%s task=%s",
                      late->uuid, late->name);
        trig_end(late, -ETIMEDOUT, "the instance got no host in time");
    }
}

/* cb NULL with all: every trigger (the lifecycle goes away). */
static void triggers_cancel(pd_lifecycle_t *lc, pd_trigger_cb cb, bool all)
{
    for (;;) {
        trig_t *pick = NULL;
        for (trig_t *t = lc->triggers; t && !pick; t = t->next)
            if (t->cb && (all || t->cb == cb))
                pick = t;
        if (!pick)
            break;
        pd_trigger_cb f = pick->cb;
        pick->cb = NULL;
        f(-ECANCELED, "platform stopping", pick->arg);
        if (!pick->in_flight) {
            trig_unlink(pick);
            free(pick);
        }
    }
    if (all) /* in-flight ones are freed by their bus callback */
        while (lc->triggers) {
            trig_t *t = lc->triggers;
            lc->triggers = t->next;
            t->lc = NULL;
        }
}

void pd_lifecycle_cancel_triggers(pd_lifecycle_t *lc, pd_trigger_cb cb)
{
    if (lc && cb)
        triggers_cancel(lc, cb, false);
}

int pd_lifecycle_trigger(pd_lifecycle_t *lc, const char *uuid, const char *name,
                         int64_t scheduled_ms, bool missed, pd_trigger_cb cb, void *arg, char *why,
                         size_t why_size)
{
    if (!lc || !uuid || !name || !cb || !plat_uuid_valid(uuid) ||
        strlen(name) > PD_STORE_TASK_NAME_MAX) {
        snprintf(why, why_size, "bad trigger");
        return -EINVAL;
    }
    pd_store_instance_t inst = {0};
    if (pd_store_get_instance(lc->store, uuid, &inst) < 0) {
        snprintf(why, why_size, "no such instance");
        return -ENOENT;
    }
    bool running = strcmp(inst.actual_state, PD_STATE_RUNNING) == 0;
    bool starting = op_of(lc, uuid) && strcmp(inst.desired_state, PD_STATE_RUNNING) == 0;
    if (!running && !starting) {
        snprintf(why, why_size, "the instance is %s, not running", inst.actual_state);
        pd_store_instance_clear(&inst);
        return -EPERM;
    }
    pd_store_instance_clear(&inst);
    trig_t *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(why, why_size, "out of memory");
        return -ENOMEM;
    }
    const pd_config_t *cfg = lc->pd->cfg;
    t->lc = lc;
    snprintf(t->uuid, sizeof t->uuid, "%s", uuid);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->scheduled_ms = scheduled_ms;
    t->missed = missed;
    t->deadline_ms = plat_mono_ms() + (uint64_t)cfg->hosts.start_timeout_ms +
                     (uint64_t)cfg->hosts.ready_timeout_ms +
                     (uint64_t)cfg->plugins.action_timeout_ms +
                     (uint64_t)cfg->heartbeat.interval_ms * (uint64_t)(cfg->heartbeat.miss + 2);
    t->cb = cb;
    t->arg = arg;
    t->next = lc->triggers;
    lc->triggers = t;
    trig_try(t, true);
    return 0;
}

bool pd_lifecycle_instance_on_host(pd_lifecycle_t *lc, const char *uuid, const char *host_id)
{
    char host[PD_HOSTMAP_ID_MAX + 1];
    return lc && uuid && host_id && pd_hostmap_host_of(lc->map, uuid, host) == 0 &&
           strcmp(host, host_id) == 0;
}
