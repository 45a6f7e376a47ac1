/* The plugin host's link to the platform. */
#include "host.h"

#include "resources.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    Plat__Host *host;
    int rc;
} add_inst_t;

static void add_instance(const char *instance, void *arg)
{
    add_inst_t *a = arg;
    if (a->rc < 0)
        return;
    char **v = realloc(a->host->instances, (a->host->n_instances + 1) * sizeof *v);
    if (!v) {
        a->rc = -ENOMEM;
        return;
    }
    a->host->instances = v;
    if (!(v[a->host->n_instances] = strdup(instance))) {
        a->rc = -ENOMEM;
        return;
    }
    a->host->n_instances++;
}

static Plat__PlatformMessage *build_registration(void *arg)
{
    ph_host_t *h = arg;
    Plat__PlatformMessage *m = plat_msg_host_ready(h->id, (int32_t)getpid(), PH_LANGUAGE,
                                                   PH_RUNTIME_VERSION, h->opts.mode, PLAT_VERSION,
                                                   h->opts.dev);
    if (m && h->opts.hostboot[0] &&
        !(m->control->ready->host->hostboot = plat_msg_strdup(h->opts.hostboot)))
        plat_envelope_free(&m);
    /* The instances it holds: a restarted platform can adopt them here. */
    add_inst_t a = {m ? m->control->ready->host : NULL, 0};
    if (m)
        ph_plugins_foreach_loaded(h->plugins, add_instance, &a);
    if (a.rc < 0)
        plat_envelope_free(&m);
    return m;
}

static void on_platform_lost_too_long(uv_timer_t *t)
{
    ph_host_t *h = t->data;
    plat_log_err("host", "platform lost for %llu ms: exiting id=%s",
                 (unsigned long long)h->opts.platform_lost_exit_ms, h->id);
    h->exit_code = 75; /* EX_TEMPFAIL */
    ph_host_stop(h);
}

/* The link's operator-facing events, logged as ours. */
static void on_link_log(plat_log_level_t level, const char *line, void *arg)
{
    (void)arg;
    plat_log(level, "link", "%s", line);
}

static void on_link_state(plat_link_state_t state, const char *platform_boot_id, void *arg)
{
    ph_host_t *h = arg;
    (void)platform_boot_id;
    if (state != PLAT_LINK_REGISTERED && !h->stopping)
        ph_platcall_link_lost(ph_plugins_platcall(h->plugins)); /* fail fast, not at timeout */
    if (!h->opts.platform_lost_exit_ms || h->stopping)
        return;
    if (state == PLAT_LINK_REGISTERED)
        uv_timer_stop(&h->lost_timer);
    else if (state == PLAT_LINK_LOST)
        uv_timer_start(&h->lost_timer, on_platform_lost_too_long, h->opts.platform_lost_exit_ms, 0);
}

static Plat__HostState pong_state(void *arg)
{
    ph_host_t *h = arg;
    return ph_plugins_busy(h->plugins) ? PLAT__HOST_STATE__HOST_STATE_BUSY
                                       : PLAT__HOST_STATE__HOST_STATE_READY;
}

/* A Plugin request waiting for its hook: the request is a copy (the bus
 * only lends it for the callback) because the REPLY needs its header. */
typedef struct {
    ph_host_t *h;
    Plat__PlatformMessage *request;
} pending_t;

/* A pending entry holding a copy of the request being handled; NULL with
 * *rc set when memory or the copy fails. */
static pending_t *pending_new(ph_host_t *h, const plat_bus_rx_t *rx, int *rc)
{
    pending_t *pd = calloc(1, sizeof *pd);
    if (!pd) {
        *rc = -ENOMEM;
        return NULL;
    }
    pd->h = h;
    *rc = plat_envelope_decode(rx->raw, rx->raw_len, 0, &pd->request, NULL);
    if (*rc < 0) {
        free(pd);
        return NULL;
    }
    return pd;
}

static void pending_free(pending_t *pd)
{
    if (pd)
        plat_envelope_free(&pd->request);
    free(pd);
}

static void send_reply(ph_host_t *h, const Plat__PlatformMessage *request, int code,
                       const char *message, Plat__PlatformMessage *reply)
{
    if (!h->link) {
        plat_log_debug("host", "stopping: reply not sent seq=%llu id=%s",
                       (unsigned long long)request->header->seq_no, h->id);
        return;
    }
    plat_bus_t *bus = plat_link_bus(h->link);
    int rc = reply ? plat_bus_reply(bus, request, reply)
                   : plat_bus_reply_error(bus, request, code ? code : -ENOMEM,
                                          message && message[0] ? message : "out of memory",
                                          NULL);
    if (rc < 0)
        plat_log_warn("host", "cannot send the plugin reply: %s, ignoring seq=%llu to=%s id=%s",
                      strerror(-rc), (unsigned long long)request->header->seq_no,
                      request->header->source->id, h->id);
}

static void on_plugin_done(int code, const char *message, Plat__PlatformMessage *reply,
                           void *arg)
{
    pending_t *pd = arg;
    send_reply(pd->h, pd->request, code, message, reply);
    pending_free(pd);
}

/* Ability.trigger: a task of an instance here is due; on_task runs in the
 * instance's queue and the runner answers Ability.result. */
static void on_ability_trigger(ph_host_t *h, const plat_bus_rx_t *rx)
{
    const Plat__PlatformMessage *m = rx->msg;
    const Plat__AbilityTrigger *t = m->ability->trigger;
    int rc;
    pending_t *pd = pending_new(h, rx, &rc);
    if (rc == 0)
        rc = t->kind == PLAT__ABILITY_KIND__ABILITY_KIND_TASK
                 ? ph_plugins_task(h->plugins, pd->request->ability->trigger, on_plugin_done, pd)
                 : -EOPNOTSUPP;
    if (rc == 0) {
        plat_log_debug("host", "task queued task=%s missed=%d instance=%s id=%s", t->name,
                       (int)t->missed, t->instance, h->id);
        return;
    }
    char msg[160];
    snprintf(msg, sizeof msg, "%s", rc == -ENOENT        ? "no such instance in this host"
                                  : rc == -EINVAL      ? "invalid ability trigger"
                                  : rc == -EOPNOTSUPP ? "only tasks are triggered"
                                                       : strerror(-rc));
    plat_log_warn("host", "task trigger refused: %s task=%s instance=%s seq=%llu id=%s", msg,
                  t->name, t->instance, (unsigned long long)m->header->seq_no, h->id);
    Plat__PlatformMessage *reply = ph_msg_ability_result(rc, msg, t->instance);
    send_reply(h, m, rc, msg, reply);
    plat_envelope_free(&reply);
    pending_free(pd);
}

/* Plugin.action / Plugin.event: hand to the runner; it replies when the
 * hook is done. Refusals before any hook runs are answered here. */
static void on_plugin_request(ph_host_t *h, const plat_bus_rx_t *rx)
{
    const Plat__PlatformMessage *m = rx->msg;
    const Plat__PluginMessage *pm = m->plugin;
    bool is_action = pm->body_case == PLAT__PLUGIN_MESSAGE__BODY_ACTION;
    int rc;
    pending_t *pd = pending_new(h, rx, &rc);
    if (rc == 0)
        rc = is_action ? ph_plugins_action(h->plugins, pd->request->plugin->action,
                                           on_plugin_done, pd)
                       : ph_plugins_event(h->plugins, pd->request->plugin->event,
                                          on_plugin_done, pd);
    if (rc == 0)
        return;
    const char *instance = is_action ? pm->action->instance : pm->event->instance;
    char msg[160];
    snprintf(msg, sizeof msg, "%s", rc == -ENOENT ? "no such instance in this host"
                                  : rc == -EINVAL ? "invalid plugin request"
                                                  : strerror(-rc));
    plat_log_warn("host", "plugin %s refused: %s instance=%s seq=%llu id=%s",
                  is_action ? "action" : "event", msg, instance,
                  (unsigned long long)m->header->seq_no, h->id);
    Plat__PlatformMessage *reply = is_action ? plat_msg_plugin_action_result(rc, msg, instance)
                                             : plat_msg_plugin_response(0, NULL, NULL, 0, rc, msg);
    send_reply(h, m, rc, msg, reply);
    plat_envelope_free(&reply);
    pending_free(pd);
}

static void on_message(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg)
{
    ph_host_t *sh = arg;
    const Plat__PlatformMessage *sm = rx->msg;
    if (sm->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL &&
        sm->control->body_case == PLAT__CONTROL_MESSAGE__BODY_SHUTDOWN) {
        plat_log_notice("host", "the platform asked this host to exit: %s id=%s",
                        sm->control->shutdown->reason, sh->id);
        ph_host_stop(sh);
        return;
    }
    ph_host_t *h = arg;
    const Plat__PlatformMessage *m = rx->msg;
    if (m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN &&
        m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST &&
        (m->plugin->body_case == PLAT__PLUGIN_MESSAGE__BODY_ACTION ||
         m->plugin->body_case == PLAT__PLUGIN_MESSAGE__BODY_EVENT)) {
        on_plugin_request(h, rx);
        return;
    }
    if (m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY &&
        m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST &&
        m->ability->body_case == PLAT__ABILITY_MESSAGE__BODY_TRIGGER) {
        on_ability_trigger(h, rx);
        return;
    }
    plat_log_warn("host", "message not handled by this host channel=%s kind=%d from=%s seq=%llu "
                          "id=%s",
                  plat_channel_name(m->channel_case), (int)m->header->kind,
                  m->header->source->id, (unsigned long long)m->header->seq_no, h->id);
    if (m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
        plat_bus_reply_error(bus, m, -EOPNOTSUPP, "not handled by this plugin host",
                             plat_channel_name(m->channel_case));
}

static void on_signal(uv_signal_t *s, int signum)
{
    ph_host_t *h = s->data;
    if (signum == SIGINT && ++h->sigint_count > 1) {
        plat_log_warn("host", "second SIGINT: exiting at once");
        _exit(130);
    }
    plat_log_notice("host", "%s received: stopping id=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT",
                    h->id);
    ph_host_stop(h);
}

int ph_host_start(ph_host_t *h, uv_loop_t *loop, const ph_host_opts_t *opts)
{
    memset(h, 0, sizeof *h);
    h->loop = loop;
    h->opts = *opts;
    if (!h->opts.hostboot)
        h->opts.hostboot = "";
    uv_timer_init(loop, &h->lost_timer);
    h->lost_timer.data = h;
    snprintf(h->id, sizeof h->id, "%s", opts->host_id);
    int rc = plat_uuid_new(h->boot_id);
    if (rc < 0)
        return rc;
    /* Hooks run on the libuv threadpool (4 threads by default), one per
     * busy instance: let a powerSave host run more at once unless the
     * operator chose. Read when the pool starts, at the first hook. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    h->plugins = ph_plugins_new(loop);
    ph_platcall_t *pc = h->plugins ? ph_platcall_new(loop, 0) : NULL;
    if (!pc) {
        ph_plugins_close(&h->plugins);
        uv_close((uv_handle_t *)&h->lost_timer, NULL);
        return -ENOMEM;
    }
    /* Hooks' resource and ability calls go through it; the runner owns it. */
    ph_plugins_set_platcall(h->plugins, pc);
    plat_link_opts_t lo = {
        .identity = h->id,
        .platform_address = opts->platform_address,
        .boot_id = h->boot_id,
        .build_registration = build_registration,
        .pong_state = pong_state,
        .on_state = on_link_state,
        .on_log = on_link_log,
        .on_message = on_message,
        .arg = h,
    };
    h->link = plat_link_new(loop, &lo);
    if (!h->link) {
        rc = -errno;
        plat_log_err("host", "cannot connect to the platform: %s platform=%s id=%s",
                     strerror(errno), opts->platform_address, h->id);
        uv_close((uv_handle_t *)&h->lost_timer, NULL);
        ph_plugins_close(&h->plugins);
        return rc;
    }
    ph_platcall_set_link(pc, h->link);
    uv_signal_init(loop, &h->sig_term);
    uv_signal_init(loop, &h->sig_int);
    h->sig_term.data = h->sig_int.data = h;
    uv_signal_start(&h->sig_term, on_signal, SIGTERM);
    uv_signal_start(&h->sig_int, on_signal, SIGINT);
    plat_log_notice("host", "pluginhost %s started id=%s pid=%d mode=%s hostboot=%s platform=%s",
                    PLAT_VERSION, h->id, (int)getpid(), opts->mode,
                    h->opts.hostboot[0] ? h->opts.hostboot : "-", opts->platform_address);
    return 0;
}

void ph_host_stop(ph_host_t *h)
{
    if (h->stopping)
        return;
    h->stopping = true;
    /* Hooks waiting on the platform get -ECANCELED, later calls too. */
    ph_platcall_shutdown(ph_plugins_platcall(h->plugins));
    plat_link_destroy(&h->link);
    /* Queued hooks are cancelled (no reply: the link is gone); a running
     * hook finishes first, which keeps the loop alive until it returns. */
    ph_plugins_close(&h->plugins);
    uv_close((uv_handle_t *)&h->lost_timer, NULL);
    uv_close((uv_handle_t *)&h->sig_term, NULL);
    uv_close((uv_handle_t *)&h->sig_int, NULL);
}
