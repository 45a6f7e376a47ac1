/* hostbootd's root object. */
#include "manager.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static Plat__PlatformMessage *build_registration(void *arg)
{
    hb_manager_t *m = arg;
    plat_runtime_t rts[m->cfg->n_runtimes ? m->cfg->n_runtimes : 1];
    for (size_t i = 0; i < m->cfg->n_runtimes; i++) {
        rts[i].language = m->cfg->runtimes[i].language;
        rts[i].version = m->cfg->runtimes[i].version;
    }
    return plat_msg_hostboot_register(m->cfg->name, PLAT_VERSION, rts, m->cfg->n_runtimes);
}

static void send_heartbeat(hb_manager_t *m)
{
    if (plat_link_state(m->link) != PLAT_LINK_REGISTERED)
        return;
    Plat__PlatformMessage *hb =
        plat_msg_hostboot_heartbeat(m->cfg->name, 0, plat_mono_ms() - m->started_ms);
    int rc = hb ? plat_bus_send(plat_link_bus(m->link), PLAT_PLATFORM_ID, hb) : -ENOMEM;
    if (rc < 0)
        plat_log_warn("manager", "heartbeat not sent: %s id=%s", strerror(-rc), m->id);
    plat_envelope_free(&hb);
}

static void on_heartbeat(uv_timer_t *t) { send_heartbeat(t->data); }

static void on_link_state(plat_link_state_t state, const char *platform_boot_id, void *arg)
{
    hb_manager_t *m = arg;
    if (state == PLAT_LINK_REGISTERED) {
        uint32_t every = plat_link_heartbeat_interval_ms(m->link);
        uv_timer_start(&m->heartbeat, on_heartbeat, every, every);
        sd_notifyf(0, "STATUS=registered with platform boot %s", platform_boot_id);
    } else {
        uv_timer_stop(&m->heartbeat);
        sd_notifyf(0, "STATUS=%s", plat_link_state_name(state));
    }
}

static void on_message(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg)
{
    hb_manager_t *m = arg;
    const Plat__PlatformMessage *msg = rx->msg;
    plat_log_warn("manager", "message not handled by this hostbootd channel=%s kind=%d from=%s "
                             "seq=%llu id=%s",
                  plat_channel_name(msg->channel_case), (int)msg->header->kind,
                  msg->header->source->id, (unsigned long long)msg->header->seq_no, m->id);
    if (msg->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
        plat_bus_reply_error(bus, msg, -EOPNOTSUPP, "not handled by hostbootd",
                             plat_channel_name(msg->channel_case));
}

static void on_closed(uv_handle_t *h)
{
    hb_manager_t *m = h->data;
    m->handles_open--;
}

static void on_signal(uv_signal_t *s, int signum)
{
    hb_manager_t *m = s->data;
    if (signum == SIGINT && ++m->sigint_count > 1) {
        plat_log_warn("manager", "second SIGINT: exiting at once");
        _exit(130);
    }
    plat_log_notice("manager", "%s received: stopping id=%s",
                    signum == SIGTERM ? "SIGTERM" : "SIGINT", m->id);
    hb_manager_stop(m);
}

int hb_manager_start(hb_manager_t *m, uv_loop_t *loop, const hb_config_t *cfg)
{
    memset(m, 0, sizeof *m);
    m->loop = loop;
    m->cfg = cfg;
    m->started_ms = plat_mono_ms();
    snprintf(m->id, sizeof m->id, "%s%s", PLAT_HOSTBOOT_PREFIX, cfg->name);
    int rc = plat_uuid_new(m->boot_id);
    if (rc < 0)
        return rc;
    plat_link_opts_t lo = {
        .identity = m->id,
        .platform_address = cfg->platform.endpoint,
        .endpoint = {.max_msg_size = (size_t)cfg->bus.max_msg_size,
                     .sndhwm = (int)cfg->bus.sndhwm,
                     .rcvhwm = (int)cfg->bus.rcvhwm},
        .boot_id = m->boot_id,
        .register_timeout_ms = (uint32_t)cfg->reg.timeout_ms,
        .retry_initial_ms = (uint32_t)cfg->reg.retry_initial_ms,
        .retry_max_ms = (uint32_t)cfg->reg.retry_max_ms,
        .build_registration = build_registration,
        .on_state = on_link_state,
        .on_message = on_message,
        .arg = m,
    };
    uv_timer_init(loop, &m->heartbeat);
    m->heartbeat.data = m;
    m->handles_open++;
    m->link = plat_link_new(loop, &lo);
    if (!m->link) {
        rc = -errno;
        plat_log_err("manager", "cannot connect to the platform: %s endpoint=%s",
                     strerror(errno), cfg->platform.endpoint);
        uv_close((uv_handle_t *)&m->heartbeat, on_closed);
        return rc;
    }
    uv_signal_init(loop, &m->sig_term);
    uv_signal_init(loop, &m->sig_int);
    m->sig_term.data = m->sig_int.data = m;
    m->handles_open += 2;
    uv_signal_start(&m->sig_term, on_signal, SIGTERM);
    uv_signal_start(&m->sig_int, on_signal, SIGINT);
    sd_notify(0, "READY=1\nSTATUS=registering");
    plat_log_notice("manager", "hostbootd %s started id=%s boot_id=%s platform=%s runtimes=%zu",
                    PLAT_VERSION, m->id, m->boot_id, cfg->platform.endpoint, cfg->n_runtimes);
    return 0;
}

void hb_manager_stop(hb_manager_t *m)
{
    if (m->stopping)
        return;
    m->stopping = true;
    sd_notify(0, "STOPPING=1");
    plat_link_destroy(&m->link);
    uv_close((uv_handle_t *)&m->heartbeat, on_closed);
    uv_close((uv_handle_t *)&m->sig_term, on_closed);
    uv_close((uv_handle_t *)&m->sig_int, on_closed);
}
