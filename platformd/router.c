/* Every message that reaches the platform's ROUTER. */
#include <errno.h>
#include <string.h>

#include "platformd.h"
#include "trace.h"

/* Local handlers, indexed by PlatformMessage channel case. Channels with
 * no handler answer requests with -EOPNOTSUPP. */
static const pd_channel_fn g_handlers[] = {
    [PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL] = pd_control_handle,
    [PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT] = pd_hostboot_handle,
    [PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY] = pd_ability_handle,
    [PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE] = pd_resource_handle,
};

static bool is_request(const Plat__PlatformMessage *m)
{
    return m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST;
}

static void reply_error(pd_t *pd, const Plat__PlatformMessage *m, int code, const char *message,
                        const char *detail)
{
    int rc = plat_bus_reply_error(pd->bus, m, code, message, detail);
    if (rc < 0)
        plat_log_warn("router", "error reply not sent: %s to=%s seq=%llu", strerror(-rc),
                      m->header->source->id, (unsigned long long)m->header->seq_no);
}

static void to_platform(pd_t *pd, const plat_bus_rx_t *rx, pd_endpoint_t *ep)
{
    const Plat__PlatformMessage *m = rx->msg;
    unsigned ch = (unsigned)m->channel_case;
    pd_channel_fn fn = ch < sizeof g_handlers / sizeof g_handlers[0] ? g_handlers[ch] : NULL;
    if (fn) {
        fn(pd, rx, ep);
        return;
    }
    if (m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY) {
        /* Replies to our own requests were matched by the bus already. */
        plat_log_info("router", "reply to the platform matches no request, dropped from=%s "
                                "seq=%llu channel=%s",
                      ep->id, (unsigned long long)m->header->seq_no,
                      plat_channel_name(m->channel_case));
        return;
    }
    plat_log_warn("router", "no handler for this channel on the platform channel=%s from=%s "
                            "seq=%llu",
                  plat_channel_name(m->channel_case), ep->id,
                  (unsigned long long)m->header->seq_no);
    if (is_request(m))
        reply_error(pd, m, -EOPNOTSUPP, "channel not handled by the platform",
                    plat_channel_name(m->channel_case));
}

static void forward(pd_t *pd, const plat_bus_rx_t *rx)
{
    const Plat__PlatformMessage *m = rx->msg;
    const char *dst = m->header->destination->id;
    int rc = pd_endpoint_registered(pd_registry_find(pd->reg, dst))
                 ? plat_bus_forward(pd->bus, dst, rx->raw, rx->raw_len)
                 : -EHOSTUNREACH;
    if (rc == 0) {
        plat_log_debug("router", "forwarded from=%s to=%s seq=%llu channel=%s", rx->peer, dst,
                       (unsigned long long)m->header->seq_no, plat_channel_name(m->channel_case));
        return;
    }
    if (rc == -EHOSTUNREACH)
        pd->unknown_destination++;
    plat_log_warn("router", "cannot deliver: %s from=%s to=%s seq=%llu kind=%d",
                  rc == -EHOSTUNREACH ? "destination not connected" : strerror(-rc), rx->peer,
                  dst, (unsigned long long)m->header->seq_no, (int)m->header->kind);
    if (is_request(m))
        reply_error(pd, m, rc, rc == -EHOSTUNREACH ? "destination unreachable"
                                                   : "destination busy",
                    dst);
}

/* What diag shows of an endpoint: messages received, and a hostboot's
 * last report and heartbeat. After the handler ran (a registration creates
 * the entry). */
static void record(pd_t *pd, const plat_bus_rx_t *rx)
{
    pd_endpoint_t *ep = pd_registry_find(pd->reg, rx->peer);
    if (!ep)
        return;
    ep->messages_rx++;
    const Plat__PlatformMessage *m = rx->msg;
    if (ep->kind != PD_EP_HOSTBOOT || m->channel_case != PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT ||
        strcmp(m->header->destination->id, PLAT_PLATFORM_ID) != 0)
        return;
    const Plat__HostBootMessage *hb = m->host_boot;
    uint64_t now = plat_mono_ms();
    if (hb->body_case == PLAT__HOST_BOOT_MESSAGE__BODY_HEARTBEAT) {
        ep->last_heartbeat_ms = now;
        ep->heartbeat_hosts = hb->heartbeat->host_count;
        ep->heartbeat_uptime_ms = hb->heartbeat->uptime_ms;
    } else if (hb->body_case == PLAT__HOST_BOOT_MESSAGE__BODY_REPORT) {
        const Plat__ReportMessage *r = hb->report;
        ep->last_report_ms = now;
        snprintf(ep->last_report_kind, sizeof ep->last_report_kind, "%s",
                 r->kind == PLAT__REPORT_MESSAGE__KIND__REGISTER ? "register" : "host_exited");
        if (r->kind == PLAT__REPORT_MESSAGE__KIND__REGISTER)
            snprintf(ep->log_dir, sizeof ep->log_dir, "%s", r->log_dir ? r->log_dir : "");
    }
}

void pd_router_on_message(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg)
{
    (void)bus;
    pd_t *pd = arg;
    const Plat__PlatformMessage *m = rx->msg;
    bool for_platform = strcmp(m->header->destination->id, PLAT_PLATFORM_ID) == 0;
    pd_trace_rx(pd, m, rx->raw_len);
    if (for_platform && pd_is_registration(m)) {
        to_platform(pd, rx, NULL);
        record(pd, rx);
        return;
    }
    bool came_back = false;
    pd_endpoint_t *ep = pd_registry_touch(pd->reg, rx->peer, plat_mono_ms(), &came_back);
    if (!ep) {
        plat_log_warn("router", "message from an unregistered endpoint refused from=%s to=%s "
                                "seq=%llu channel=%s",
                      rx->peer, m->header->destination->id,
                      (unsigned long long)m->header->seq_no, plat_channel_name(m->channel_case));
        if (is_request(m))
            reply_error(pd, m, -ENOTCONN, "not registered: send Control.ready or a HostBoot "
                                          "register report first",
                        m->header->destination->id);
        return;
    }
    if (came_back)
        plat_log_notice("router", "endpoint is back id=%s", ep->id);
    if (for_platform)
        to_platform(pd, rx, ep);
    else
        forward(pd, rx);
    record(pd, rx);
}

void pd_router_on_drop(plat_bus_t *bus, plat_bus_drop_t reason, const char *peer,
                       const Plat__PlatformMessage *msg, const char *why, void *arg)
{
    (void)bus;
    (void)arg;
    const Plat__Header *h = msg ? msg->header : NULL;
    /* A late pong is routine on a slow peer; the rest is worth a warning,
     * at most one line a second per reason (a hostile peer's flood is
     * counted in bus.dropped, not written out message by message). */
    static struct {
        uint64_t second;
        unsigned suppressed;
    } limit[PLAT_BUS_DROP__COUNT];
    bool late = reason == PLAT_BUS_DROP_LATE_REPLY;
    unsigned suppressed = 0;
    if (!late && (unsigned)reason < PLAT_BUS_DROP__COUNT) {
        uint64_t second = plat_mono_ms() / 1000 + 1;
        if (limit[reason].second == second) {
            limit[reason].suppressed++;
            return;
        }
        limit[reason].second = second;
        suppressed = limit[reason].suppressed;
        limit[reason].suppressed = 0;
    }
    plat_log(late ? PLAT_LOG_DEBUG : PLAT_LOG_WARNING, "router",
             "dropped message: %s (%s) peer=%s source=%s destination=%s seq=%llu "
             "not_logged_before=%u",
             plat_bus_drop_name(reason), why, peer && *peer ? peer : "-",
             h ? h->source->id : "-", h ? h->destination->id : "-",
             h ? (unsigned long long)h->seq_no : 0ULL, suppressed);
}
