/* Liveness: the platform pings every registered endpoint (lost ones too,
 * so they can come back) once per interval; an endpoint silent for more
 * than interval × miss is marked lost. Any message from an endpoint counts
 * as a sign of life (the router touches it); a pong is the reply to a ping. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "platformd.h"
#include "trace.h"

static void on_pong(int status, const Plat__PlatformMessage *reply, void *arg)
{
    pd_t *pd = arg;
    if (status != 0 || pd->stopping)
        return; /* a missing pong shows as silence; lost marking handles it */
    bool came_back = false;
    pd_endpoint_t *ep =
        pd_registry_touch(pd->reg, reply->header->source->id, plat_mono_ms(), &came_back);
    if (ep && came_back)
        plat_log_notice("heartbeat", "endpoint answers again id=%s", ep->id);
}

typedef struct {
    pd_t *pd;
    unsigned sent, failed;
} ping_round_t;

static void ping_one(const pd_endpoint_t *ep, void *arg)
{
    ping_round_t *round = arg;
    pd_t *pd = round->pd;
    if (!pd_endpoint_registered(ep))
        return; /* starting, exited or failed hosts are not on the bus */
    Plat__PlatformMessage *ping = plat_msg_ping(pd->boot_id);
    if (!ping) {
        round->failed++;
        return;
    }
    int64_t rc = plat_bus_request(pd->bus, ep->id, ping, (uint32_t)pd->cfg->heartbeat.interval_ms,
                                  on_pong, pd);
    plat_envelope_free(&ping);
    if (rc < 0) {
        round->failed++;
        /* A disconnected peer is unroutable until it reconnects: expected
         * for lost endpoints, so only a debug line. */
        plat_log_debug("heartbeat", "ping not sent: %s id=%s", strerror((int)-rc), ep->id);
    } else {
        round->sent++;
    }
}

static void on_ping_timer(uv_timer_t *t)
{
    pd_t *pd = t->data;
    ping_round_t round = {.pd = pd};
    pd_registry_foreach(pd->reg, ping_one, &round);
}

static void on_lost(const pd_endpoint_t *ep, uint64_t silent_ms, void *arg)
{
    pd_t *pd = arg;
    pd->metrics.heartbeats_missed++;
    plat_log_warn("heartbeat", "endpoint lost (no heartbeat) id=%s kind=%s pid=%d silent_ms=%llu",
                  ep->id, ep->kind == PD_EP_HOSTBOOT ? "hostboot" : "host", (int)ep->pid,
                  (unsigned long long)silent_ms);
    /* A host told to exit itself (no hostboot could stop it) that goes
     * silent has exited: nobody else will report it. */
    pd_endpoint_t *mut = pd_registry_find(pd->reg, ep->id);
    if (mut && mut->kind == PD_EP_HOST && mut->host_state == PD_HOST_STOPPING &&
        mut->told_to_exit) {
        pd_registry_host_exited(mut, -1, 0, plat_mono_ms());
        plat_log_notice("heartbeat", "a stopping host went silent: taken as exited id=%s",
                        mut->id);
    }
    /* A lost host's instances fail (section 4); if it comes back it starts
     * over without them. */
    if (ep->kind == PD_EP_HOST && pd->lifecycle)
        pd_lifecycle_host_gone(pd->lifecycle, ep->id, "host lost (no heartbeat)");
}

static uint64_t check_every(const pd_t *pd)
{
    uint64_t interval = (uint64_t)pd->cfg->heartbeat.interval_ms;
    return interval / 4 ? interval / 4 : 1;
}

static void on_lost_timer(uv_timer_t *t)
{
    pd_t *pd = t->data;
    uint64_t now = plat_mono_ms();
    uint64_t every = check_every(pd);
    /* A check that comes late means this loop was busy (a burst of commits,
     * a slow disk): what endpoints sent meanwhile is still queued unread, so
     * that time must not make them look silent. */
    if (pd->last_lost_check_ms && now - pd->last_lost_check_ms > 2 * every) {
        uint64_t deaf = now - pd->last_lost_check_ms - every;
        if (deaf >= (uint64_t)pd->cfg->heartbeat.interval_ms)
            plat_log_warn("heartbeat", "event loop stalled; not counted as endpoint silence "
                                       "stalled_ms=%llu",
                          (unsigned long long)deaf);
        pd_registry_forgive(pd->reg, deaf, now);
    }
    pd->last_lost_check_ms = now;
    uint64_t window = (uint64_t)pd->cfg->heartbeat.interval_ms * (uint64_t)pd->cfg->heartbeat.miss;
    pd_registry_mark_lost(pd->reg, now, window, on_lost, pd);
}

void pd_heartbeat_start(pd_t *pd)
{
    uint64_t interval = (uint64_t)pd->cfg->heartbeat.interval_ms;
    /* Silence is checked four times per interval so "lost" shows within
     * the window plus a quarter interval. */
    uint64_t check = check_every(pd);
    uv_timer_start(&pd->ping_timer, on_ping_timer, interval, interval);
    uv_timer_start(&pd->lost_timer, on_lost_timer, check, check);
}
