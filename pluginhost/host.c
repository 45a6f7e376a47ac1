/* The plugin host's link to the platform. */
#include "host.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static Plat__PlatformMessage *build_registration(void *arg)
{
    ph_host_t *h = arg;
    Plat__PlatformMessage *m = plat_msg_host_ready(h->id, (int32_t)getpid(), PH_LANGUAGE,
                                                   PH_RUNTIME_VERSION, h->opts.mode, PLAT_VERSION,
                                                   h->opts.dev);
    if (m && h->opts.hostboot[0] &&
        !(m->control->ready->host->hostboot = plat_msg_strdup(h->opts.hostboot)))
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
    if (!h->opts.platform_lost_exit_ms || h->stopping)
        return;
    if (state == PLAT_LINK_REGISTERED)
        uv_timer_stop(&h->lost_timer);
    else if (state == PLAT_LINK_LOST)
        uv_timer_start(&h->lost_timer, on_platform_lost_too_long, h->opts.platform_lost_exit_ms, 0);
}

static Plat__HostState pong_state(void *arg)
{
    (void)arg;
    return PLAT__HOST_STATE__HOST_STATE_READY;
}

static void on_message(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg)
{
    ph_host_t *h = arg;
    const Plat__PlatformMessage *m = rx->msg;
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
        return rc;
    }
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
    plat_link_destroy(&h->link);
    uv_close((uv_handle_t *)&h->lost_timer, NULL);
    uv_close((uv_handle_t *)&h->sig_term, NULL);
    uv_close((uv_handle_t *)&h->sig_int, NULL);
}
