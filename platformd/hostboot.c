/* HostBoot channel on the platform: hostbootd registers and reports. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "platformd.h"
#include "zap.h"

static void refuse(pd_t *pd, const Plat__PlatformMessage *m, const char *why)
{
    plat_log_warn("hostboot", "registration refused: %s from=%s seq=%llu", why,
                  m->header->source->id, (unsigned long long)m->header->seq_no);
    int rc = plat_bus_reply_error(pd->bus, m, -EINVAL, "registration refused", why);
    if (rc < 0)
        plat_log_warn("hostboot", "error reply not sent: %s to=%s", strerror(-rc),
                      m->header->source->id);
}

static void on_register(pd_t *pd, const Plat__PlatformMessage *m)
{
    const char *src = m->header->source->id;
    const Plat__ReportMessage *r = m->host_boot->report;
    if (plat_id_kind(src) != PLAT_ID_HOSTBOOT)
        return refuse(pd, m, "HostBoot registration comes from hostboot-<name> endpoints only");
    if (strcmp(r->name, src + strlen(PLAT_HOSTBOOT_PREFIX)) != 0)
        return refuse(pd, m, "report.name must match the sender's id");
    if (r->n_runtimes > PD_RUNTIMES_MAX)
        return refuse(pd, m, "too many runtimes");
    plat_runtime_t rts[PD_RUNTIMES_MAX];
    for (size_t i = 0; i < r->n_runtimes; i++) {
        rts[i].language = r->runtimes[i]->language;
        rts[i].version = r->runtimes[i]->version;
    }
    bool was_known = false;
    pd_endpoint_t *ep =
        pd_registry_put_hostboot(pd->reg, src, r->name, r->version, m->header->boot_id, rts,
                                 r->n_runtimes, plat_mono_ms(), &was_known);
    if (!ep) {
        plat_log_err("hostboot", "cannot register hostboot: out of memory id=%s", src);
        plat_bus_reply_error(pd->bus, m, -ENOMEM, "platform out of memory", src);
        return;
    }
    plat_log_notice("hostboot", "hostboot %s id=%s version=%s runtimes=%zu hosts=%zu boot_id=%s",
                    was_known ? "re-registered" : "registered", ep->id, ep->version,
                    ep->n_runtimes, r->n_hosts, ep->boot_id);
    /* The CURVE keys of the hosts it owns (a restarted platform knows
     * none): each admitted as exactly its host id (zap.h). */
    for (size_t i = 0; i < r->n_hosts; i++)
        if (r->hosts[i]->public_key.len)
            pd_zap_admit_host(pd, r->hosts[i]->id, r->hosts[i]->public_key.data,
                              r->hosts[i]->public_key.len, src);
    pd_send_register_ack(pd, m);
    /* After a platform restart, instances that should run are brought back
     * once there is a hostboot to run them on. */
    if (!pd->reconciled && pd->lifecycle) {
        /* Hosts of the previous platform run notice the restart within a
         * heartbeat window and re-register: give them that long to bring
         * their instances back before starting the rest elsewhere. */
        pd->reconciled = true;
        pd_lifecycle_schedule_reconcile(
            pd->lifecycle,
            (uint64_t)pd->cfg->heartbeat.interval_ms * (uint64_t)(pd->cfg->heartbeat.miss + 2));
    }
}

static void on_host_exited(pd_t *pd, const Plat__PlatformMessage *m, pd_endpoint_t *hb)
{
    const Plat__HostExit *x = m->host_boot->report->exit;
    if (!x) {
        plat_log_warn("hostboot", "host exit report without exit details from=%s", hb->id);
        return;
    }
    pd_hosts_on_exit(pd, hb, x);
}

void pd_hostboot_handle(pd_t *pd, const plat_bus_rx_t *rx, pd_endpoint_t *ep)
{
    const Plat__PlatformMessage *m = rx->msg;
    const Plat__HostBootMessage *hb = m->host_boot;
    bool request = m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST;
    switch (hb->body_case) {
    case PLAT__HOST_BOOT_MESSAGE__BODY_REPORT:
        if (hb->report->kind == PLAT__REPORT_MESSAGE__KIND__REGISTER && request) {
            on_register(pd, m);
            return;
        }
        if (hb->report->kind == PLAT__REPORT_MESSAGE__KIND__HOST_EXITED && ep &&
            ep->kind == PD_EP_HOSTBOOT) {
            on_host_exited(pd, m, ep);
            return;
        }
        break;
    case PLAT__HOST_BOOT_MESSAGE__BODY_HEARTBEAT:
        if (ep && ep->kind == PD_EP_HOSTBOOT) {
            plat_log_debug("hostboot", "heartbeat id=%s hosts=%u uptime_ms=%llu", ep->id,
                           hb->heartbeat->host_count,
                           (unsigned long long)hb->heartbeat->uptime_ms);
            return;
        }
        break;
    default:
        break;
    }
    plat_log_warn("hostboot", "unexpected host_boot message body=%d kind=%d from=%s seq=%llu",
                  (int)hb->body_case, (int)m->header->kind, ep ? ep->id : rx->peer,
                  (unsigned long long)m->header->seq_no);
    if (request)
        plat_bus_reply_error(pd->bus, m, -EOPNOTSUPP, "host_boot message not handled here", NULL);
}
