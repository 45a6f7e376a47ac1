/* An endpoint's link to the platform: register, answer pings, notice a
 * lost or restarted platform, re-register with backoff. */
#include "plat/link.h"

#include <czmq.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat/envelope.h"
#include "plat/log.h"
#include "plat/msg.h"
#include "plat/uvzmq.h"

struct plat_link {
    uv_loop_t *loop;
    plat_link_opts_t opts;
    char identity[PLAT_ID_MAX + 1];
    char platform_address[256];
    char platform_boot_id[PLAT_UUID_LEN + 1];
    plat_bus_t *bus;
    plat_link_state_t state;
    uv_timer_t retry;    /* next registration attempt */
    uv_timer_t watchdog; /* platform silence */
    int open_timers;
    bool destroying;
    bool attempt_pending; /* a registration request is in flight */
    uint32_t backoff_ms;
    uint32_t interval_ms;
    uint32_t miss;
    uint64_t last_rx_ms;
    unsigned attempts;
    zsock_t *monitor;          /* PAIR: the DEALER's handshake events */
    plat_uvzmq_t *monitor_watch;
    unsigned handshakes;       /* connections to the platform completed */
};

/* Library code does not log above debug: events an operator should see
 * are handed to the owner (opts.on_log), which logs them as its own. */
__attribute__((format(printf, 3, 4))) static void say(plat_link_t *l, plat_log_level_t level,
                                                      const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (l->opts.on_log)
        l->opts.on_log(level, line, l->opts.arg);
    else
        plat_log_debug("link", "%s", line);
}

static const char *const g_state_names[] = {
    [PLAT_LINK_REGISTERING] = "registering",
    [PLAT_LINK_REGISTERED] = "registered",
    [PLAT_LINK_LOST] = "lost",
};

const char *plat_link_state_name(plat_link_state_t s)
{
    return (unsigned)s < 3 ? g_state_names[s] : "unknown";
}

static void set_state(plat_link_t *l, plat_link_state_t s)
{
    if (l->state == s)
        return;
    l->state = s;
    if (l->opts.on_state)
        l->opts.on_state(s, s == PLAT_LINK_REGISTERED ? l->platform_boot_id : NULL, l->opts.arg);
}

static void attempt(plat_link_t *l);
static void start_watchdog(plat_link_t *l);

static void on_retry(uv_timer_t *t) { attempt(t->data); }

static void schedule_retry(plat_link_t *l)
{
    if (l->destroying)
        return;
    uint32_t wait = l->backoff_ms;
    l->backoff_ms = l->backoff_ms * 2 > l->opts.retry_max_ms ? l->opts.retry_max_ms
                                                             : l->backoff_ms * 2;
    uv_timer_start(&l->retry, on_retry, wait, 0);
}

/* The platform admitted us (`late`: the ack answers an attempt that had
 * already timed out). */
static void accept_ack(plat_link_t *l, const Plat__RegisterAck *ack, bool late)
{
    if (l->state == PLAT_LINK_REGISTERED && strcmp(l->platform_boot_id, ack->boot_id) == 0)
        return; /* the answer to another attempt of the same registration */
    uv_timer_stop(&l->retry);
    bool restarted = l->platform_boot_id[0] && strcmp(l->platform_boot_id, ack->boot_id) != 0;
    snprintf(l->platform_boot_id, sizeof l->platform_boot_id, "%s", ack->boot_id);
    if (ack->heartbeat_interval_ms)
        l->interval_ms = ack->heartbeat_interval_ms;
    if (ack->heartbeat_miss)
        l->miss = ack->heartbeat_miss;
    l->backoff_ms = l->opts.retry_initial_ms;
    l->attempts = 0;
    say(l, PLAT_LOG_NOTICE, "registered with the platform%s%s id=%s platform_boot_id=%s "
                            "heartbeat_interval_ms=%u heartbeat_miss=%u",
                    restarted ? " (new platform boot)" : "",
                    late ? " (answer to an earlier attempt)" : "", l->identity, l->platform_boot_id,
                    l->interval_ms, l->miss);
    start_watchdog(l);
    set_state(l, PLAT_LINK_REGISTERED);
}

static void on_register_reply(int status, const Plat__PlatformMessage *reply, void *arg)
{
    plat_link_t *l = arg;
    l->attempt_pending = false;
    if (l->destroying || status == -ECANCELED)
        return;
    if (status == 0)
        l->last_rx_ms = plat_mono_ms();
    const Plat__RegisterAck *ack =
        status == 0 && !reply->header->error &&
                reply->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL &&
                reply->control->body_case == PLAT__CONTROL_MESSAGE__BODY_REGISTER_ACK
            ? reply->control->register_ack
            : NULL;
    if (!ack || !plat_uuid_valid(ack->boot_id)) {
        if (status == -ETIMEDOUT)
            say(l, PLAT_LOG_WARNING, "registration not answered within %u ms, retrying in %u ms "
                                  "id=%s platform=%s attempt=%u",
                          l->opts.register_timeout_ms, l->backoff_ms, l->identity,
                          l->opts.platform_address, l->attempts);
        else if (status == 0 && reply->header->error)
            say(l, PLAT_LOG_WARNING, "registration refused: %s (%d) %s, retrying in %u ms id=%s",
                          reply->header->error->message, reply->header->error->code,
                          reply->header->error->detail, l->backoff_ms, l->identity);
        else
            say(l, PLAT_LOG_WARNING, "registration answered without a valid register_ack "
                                  "(status %d), retrying in %u ms id=%s",
                          status, l->backoff_ms, l->identity);
        schedule_retry(l);
        return;
    }
    accept_ack(l, ack, false);
}

static void attempt(plat_link_t *l)
{
    if (l->destroying || l->attempt_pending)
        return;
    Plat__PlatformMessage *m = l->opts.build_registration(l->opts.arg);
    if (!m) {
        say(l, PLAT_LOG_ERR, "cannot build the registration message id=%s", l->identity);
        schedule_retry(l);
        return;
    }
    l->attempts++;
    int64_t rc = plat_bus_request(l->bus, PLAT_PLATFORM_ID, m, l->opts.register_timeout_ms,
                                  on_register_reply, l);
    plat_envelope_free(&m);
    if (rc < 0) {
        say(l, PLAT_LOG_WARNING, "registration not sent: %s, retrying in %u ms id=%s",
                      strerror((int)-rc), l->backoff_ms, l->identity);
        schedule_retry(l);
        return;
    }
    l->attempt_pending = true;
    plat_log_debug("link", "registration sent id=%s seq=%lld attempt=%u", l->identity,
                   (long long)rc, l->attempts);
}

/* Start (re-)registering now, unless an attempt is already under way. */
static void reregister(plat_link_t *l, plat_link_state_t state)
{
    set_state(l, state);
    uv_timer_stop(&l->retry);
    l->backoff_ms = l->opts.retry_initial_ms;
    attempt(l);
}

static void on_watchdog(uv_timer_t *t)
{
    plat_link_t *l = t->data;
    if (l->state != PLAT_LINK_REGISTERED)
        return;
    uint64_t silent = plat_mono_ms() - l->last_rx_ms;
    uint64_t limit = (uint64_t)l->interval_ms * l->miss;
    if (silent > limit) {
        say(l, PLAT_LOG_WARNING, "platform silent for %llu ms (limit %llu), re-registering id=%s "
                              "platform_boot_id=%s",
                      (unsigned long long)silent, (unsigned long long)limit, l->identity,
                      l->platform_boot_id);
        reregister(l, PLAT_LINK_LOST);
    }
}

/* Check silence several times per interval so "lost" is noticed promptly
 * whatever interval the platform announces. */
static void start_watchdog(plat_link_t *l)
{
    uint64_t tick = l->interval_ms / 4 ? l->interval_ms / 4 : 1;
    uv_timer_start(&l->watchdog, on_watchdog, tick, tick);
}

static void answer_ping(plat_link_t *l, const plat_bus_rx_t *rx)
{
    const Plat__Ping *ping = rx->msg->control->ping;
    Plat__HostState st = l->opts.pong_state ? l->opts.pong_state(l->opts.arg)
                                            : PLAT__HOST_STATE__HOST_STATE_UNKNOWN;
    Plat__PlatformMessage *pong = plat_msg_pong(st);
    if (pong) {
        int rc = plat_bus_reply(l->bus, rx->msg, pong);
        if (rc < 0)
            say(l, PLAT_LOG_WARNING, "pong not sent: %s id=%s", strerror(-rc), l->identity);
        plat_envelope_free(&pong);
    }
    if (l->state == PLAT_LINK_REGISTERED && ping->boot_id[0] &&
        strcmp(ping->boot_id, l->platform_boot_id) != 0) {
        say(l, PLAT_LOG_NOTICE, "platform restarted (boot id %s, was %s), re-registering id=%s",
                        ping->boot_id, l->platform_boot_id, l->identity);
        reregister(l, PLAT_LINK_REGISTERING);
    }
}

static void on_message(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg)
{
    plat_link_t *l = arg;
    l->last_rx_ms = plat_mono_ms();
    const Plat__PlatformMessage *m = rx->msg;
    if (m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST &&
        m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL &&
        m->control->body_case == PLAT__CONTROL_MESSAGE__BODY_PING) {
        answer_ping(l, rx);
        return;
    }
    if (l->opts.on_message)
        l->opts.on_message(bus, rx, l->opts.arg);
}

static void on_drop(plat_bus_t *bus, plat_bus_drop_t reason, const char *peer,
                    const Plat__PlatformMessage *msg, const char *why, void *arg)
{
    plat_link_t *l = arg;
    /* Attempts made while the platform was unreachable wait in the socket's
     * queue and are all answered once it is back, after they timed out
     * here: such an ack is still the platform admitting us, so take it
     * rather than stay unregistered until the next attempt. */
    if (reason == PLAT_BUS_DROP_LATE_REPLY && msg && !msg->header->error &&
        msg->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL &&
        msg->control->body_case == PLAT__CONTROL_MESSAGE__BODY_REGISTER_ACK &&
        plat_uuid_valid(msg->control->register_ack->boot_id) && !l->destroying) {
        l->last_rx_ms = plat_mono_ms();
        accept_ack(l, msg->control->register_ack, true);
        return;
    }
    if (l->opts.on_drop) {
        l->opts.on_drop(bus, reason, peer, msg, why, l->opts.arg);
        return;
    }
    /* A late register_ack after a timed-out attempt is expected when the
     * platform was slow; anything else is worth a warning. */
    say(l, reason == PLAT_BUS_DROP_LATE_REPLY ? PLAT_LOG_INFO : PLAT_LOG_WARNING,
             "dropped message from the platform: %s (%s) id=%s seq=%llu", plat_bus_drop_name(reason),
             why, l->identity, msg ? (unsigned long long)msg->header->seq_no : 0ULL);
}

/* A handshake after the first is a new connection to the platform: a
 * restarted platform, or the same one after a broken connection. Either
 * way it knows this endpoint's route only from a message the endpoint
 * sends (bus.h, receive path 2), and a restarted one does not know the
 * endpoint at all: register again now instead of waiting to notice the
 * silence (heartbeat_interval x heartbeat_miss). */
static int on_monitor_readable(void *arg)
{
    plat_link_t *l = arg;
    zmq_msg_t ev;
    zmq_msg_init(&ev);
    if (zmq_msg_recv(&ev, zsock_resolve(l->monitor), ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&ev);
        return e == EAGAIN || e == EINTR ? 0 : -e;
    }
    uint16_t event = 0;
    bool first = zmq_msg_size(&ev) >= 6;
    if (first)
        memcpy(&event, zmq_msg_data(&ev), sizeof event);
    while (zmq_msg_more(&ev)) { /* the second frame: the endpoint address */
        zmq_msg_close(&ev);
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, zsock_resolve(l->monitor), ZMQ_DONTWAIT) < 0)
            break;
    }
    zmq_msg_close(&ev);
    if (!first || event != ZMQ_EVENT_HANDSHAKE_SUCCEEDED || l->destroying)
        return 1;
    if (++l->handshakes > 1 && l->state == PLAT_LINK_REGISTERED) {
        say(l, PLAT_LOG_NOTICE, "connected to the platform again, re-registering id=%s "
                                "platform_boot_id=%s",
            l->identity, l->platform_boot_id);
        reregister(l, PLAT_LINK_REGISTERING);
    }
    return 1;
}

static void monitor_stop(plat_link_t *l)
{
    if (!l->monitor)
        return;
    plat_uvzmq_close(&l->monitor_watch);
    if (l->bus)
        zmq_socket_monitor(plat_endpoint_handle(plat_bus_endpoint(l->bus)), NULL, 0);
    zsock_destroy(&l->monitor);
}

/* The PAIR that hears the DEALER's handshakes, connected before the DEALER
 * exists (inproc allows connect before bind) so that the first handshake
 * is not missed: the count is what tells a new connection from the first.
 * Its address goes into the endpoint options (plat_endpoint_opts_t). */
static int monitor_open(plat_link_t *l, char addr[64])
{
    /* A fresh name each time: a stopped monitor's inproc name may stay
     * bound for a moment after zmq_socket_monitor(NULL). */
    static unsigned long seq;
    snprintf(addr, 64, "inproc://plat-link-monitor-%lu",
             __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    l->monitor = zsock_new(ZMQ_PAIR);
    if (!l->monitor || zsock_connect(l->monitor, "%s", addr) != 0) {
        zsock_destroy(&l->monitor);
        return -ENOMEM;
    }
    return 0;
}

static int monitor_watch(plat_link_t *l)
{
    l->monitor_watch = plat_uvzmq_new(l->loop, zsock_resolve(l->monitor), 16,
                                      on_monitor_readable, l);
    return l->monitor_watch ? 0 : -ENOMEM;
}

plat_link_t *plat_link_new(uv_loop_t *loop, const plat_link_opts_t *opts)
{
    if (!loop || !opts || !opts->identity || !opts->platform_address ||
        !opts->build_registration) {
        errno = EINVAL;
        return NULL;
    }
    plat_link_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->loop = loop;
    l->opts = *opts;
    snprintf(l->identity, sizeof l->identity, "%s", opts->identity);
    l->opts.identity = l->identity;
    if (!l->opts.register_timeout_ms)
        l->opts.register_timeout_ms = 2000;
    if (!l->opts.retry_initial_ms)
        l->opts.retry_initial_ms = 200;
    if (!l->opts.retry_max_ms)
        l->opts.retry_max_ms = 5000;
    if (l->opts.retry_max_ms < l->opts.retry_initial_ms)
        l->opts.retry_max_ms = l->opts.retry_initial_ms;
    l->interval_ms = opts->heartbeat_interval_ms ? opts->heartbeat_interval_ms : 1000;
    l->miss = opts->heartbeat_miss ? opts->heartbeat_miss : 3;
    l->backoff_ms = l->opts.retry_initial_ms;
    l->state = PLAT_LINK_REGISTERING;

    char monitor_addr[64];
    int mrc = monitor_open(l, monitor_addr);
    if (mrc < 0) {
        free(l);
        errno = -mrc;
        return NULL;
    }
    plat_bus_opts_t bo = {
        .role = PLAT_ENDPOINT_DEALER,
        .identity = l->identity,
        .address = opts->platform_address,
        .endpoint = opts->endpoint,
        .boot_id = opts->boot_id,
        .on_message = on_message,
        .on_drop = on_drop,
        .arg = l,
    };
    bo.endpoint.monitor_addr = monitor_addr;
    bo.endpoint.monitor_events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
    l->bus = plat_bus_new(loop, &bo);
    mrc = l->bus ? monitor_watch(l) : -(errno ? errno : ENOMEM);
    if (mrc < 0) {
        monitor_stop(l);
        plat_bus_destroy(&l->bus);
        free(l);
        errno = -mrc;
        return NULL;
    }
    /* The socket holds its keys now: keep no pointer to the caller's. */
    l->opts.endpoint.curve_secret = l->opts.endpoint.curve_server_key = NULL;
    snprintf(l->platform_address, sizeof l->platform_address, "%s", opts->platform_address);
    l->opts.platform_address = l->platform_address;
    uv_timer_init(loop, &l->retry);
    uv_timer_init(loop, &l->watchdog);
    l->retry.data = l->watchdog.data = l;
    l->open_timers = 2;
    l->last_rx_ms = plat_mono_ms();
    start_watchdog(l);
    say(l, PLAT_LOG_INFO, "registering with the platform id=%s address=%s", l->identity,
                  opts->platform_address);
    attempt(l);
    return l;
}

static void on_timer_closed(uv_handle_t *h)
{
    plat_link_t *l = h->data;
    if (--l->open_timers == 0)
        free(l);
}

void plat_link_destroy(plat_link_t **lp)
{
    if (!lp || !*lp)
        return;
    plat_link_t *l = *lp;
    *lp = NULL;
    l->destroying = true;
    monitor_stop(l);
    plat_bus_destroy(&l->bus);
    uv_close((uv_handle_t *)&l->retry, on_timer_closed);
    uv_close((uv_handle_t *)&l->watchdog, on_timer_closed);
}

plat_link_state_t plat_link_state(const plat_link_t *l) { return l->state; }
plat_bus_t *plat_link_bus(plat_link_t *l) { return l->bus; }
const char *plat_link_platform_boot_id(const plat_link_t *l) { return l->platform_boot_id; }
uint32_t plat_link_heartbeat_interval_ms(const plat_link_t *l) { return l->interval_ms; }
