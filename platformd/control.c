/* Control channel on the platform: hosts register with Control.ready. */
#include <errno.h>
#include <string.h>

#include "lifecycle.h"
#include "platformd.h"

bool pd_is_registration(const Plat__PlatformMessage *m)
{
    if (m->header->kind != PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
        return false;
    if (m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL)
        return m->control->body_case == PLAT__CONTROL_MESSAGE__BODY_READY;
    if (m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT)
        return m->host_boot->body_case == PLAT__HOST_BOOT_MESSAGE__BODY_REPORT &&
               m->host_boot->report->kind == PLAT__REPORT_MESSAGE__KIND__REGISTER;
    return false;
}

void pd_send_register_ack(pd_t *pd, const Plat__PlatformMessage *request)
{
    Plat__PlatformMessage *ack =
        plat_msg_register_ack(pd->boot_id, (uint32_t)pd->cfg->heartbeat.interval_ms,
                              (uint32_t)pd->cfg->heartbeat.miss);
    int rc = ack ? plat_bus_reply(pd->bus, request, ack) : -ENOMEM;
    if (rc < 0)
        plat_log_warn("control", "register_ack not sent: %s to=%s", strerror(-rc),
                      request->header->source->id);
    plat_envelope_free(&ack);
}

static void refuse(pd_t *pd, const Plat__PlatformMessage *m, const char *why)
{
    plat_log_warn("control", "registration refused: %s from=%s seq=%llu", why,
                  m->header->source->id, (unsigned long long)m->header->seq_no);
    int rc = plat_bus_reply_error(pd->bus, m, -EINVAL, "registration refused", why);
    if (rc < 0)
        plat_log_warn("control", "error reply not sent: %s to=%s", strerror(-rc),
                      m->header->source->id);
}

static void on_ready(pd_t *pd, const plat_bus_rx_t *rx)
{
    const Plat__PlatformMessage *m = rx->msg;
    const char *src = m->header->source->id;
    const Plat__HostReady *r = m->control->ready;
    if (plat_id_kind(src) != PLAT_ID_HOST)
        return refuse(pd, m, "Control.ready comes from host-<uuid> endpoints only");
    if (!r->host || strcmp(r->host->id, src) != 0)
        return refuse(pd, m, "ready.host.id must be the sender's id");
    if (r->host->pid <= 0)
        return refuse(pd, m, "ready.host.pid must be a process id");
    const Plat__HostDescriptor *d = r->host->descriptor;
    const pd_endpoint_t *prev = pd_registry_find(pd->reg, src);
    bool spawned = prev && prev->kind == PD_EP_HOST && prev->host_state == PD_HOST_STARTING;
    bool was_known = false;
    pd_endpoint_t *ep = pd_registry_put_host(
        pd->reg, src, r->host->pid, d ? d->language : "", d ? d->version : "",
        d && d->mode[0] ? d->mode : (r->dev ? "dev" : ""), r->dev, r->host->hostboot, r->version,
        m->header->boot_id, plat_mono_ms(), &was_known);
    if (!ep) {
        plat_log_err("control", "cannot register host: out of memory id=%s", src);
        plat_bus_reply_error(pd->bus, m, -ENOMEM, "platform out of memory", src);
        return;
    }
    plat_log_notice("control", "host %s id=%s pid=%d mode=%s language=%s version=%s dev=%d "
                               "hostboot=%s",
                    was_known && !spawned ? "re-registered" : "registered", ep->id, (int)ep->pid, ep->mode,
                    ep->language, ep->runtime_version, (int)ep->dev,
                    ep->hostboot[0] ? ep->hostboot : "-");
    pd_send_register_ack(pd, m);
    pd_hosts_on_ready(pd, ep);
    /* A spawned host this platform never asked for is a leftover of an
     * earlier platform run: its instances were restarted elsewhere (or
     * will be), so it only holds resources. Stop it. */
    if (!spawned && !ep->dev && ep->hostboot[0] && !was_known &&
        !(pd->lifecycle &&
          pd_lifecycle_adopt_host(pd->lifecycle, ep->id, ep->language, ep->runtime_version,
                                  ep->mode, (const char *const *)r->host->instances,
                                  r->host->n_instances) > 0)) {
        char why[128];
        plat_log_notice("control", "host from an earlier platform run, stopping it id=%s "
                                   "pid=%d hostboot=%s",
                        ep->id, (int)ep->pid, ep->hostboot);
        if (pd_hosts_delete(pd, ep->id, why, sizeof why) < 0)
            plat_log_warn("control", "cannot stop a leftover host: %s id=%s", why, ep->id);
    }
}

void pd_control_handle(pd_t *pd, const plat_bus_rx_t *rx, pd_endpoint_t *ep)
{
    const Plat__PlatformMessage *m = rx->msg;
    switch (m->control->body_case) {
    case PLAT__CONTROL_MESSAGE__BODY_READY:
        if (m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST) {
            on_ready(pd, rx);
            return;
        }
        break;
    case PLAT__CONTROL_MESSAGE__BODY_PONG:
        /* An unsolicited pong still proves liveness (the router touched
         * the sender); nothing else to do. */
        if (m->header->kind != PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
            return;
        break;
    default:
        break;
    }
    plat_log_warn("control", "unexpected control message body=%d kind=%d from=%s seq=%llu",
                  (int)m->control->body_case, (int)m->header->kind, ep ? ep->id : rx->peer,
                  (unsigned long long)m->header->seq_no);
    if (m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
        plat_bus_reply_error(pd->bus, m, -EOPNOTSUPP, "control message not handled by the platform",
                             NULL);
}
