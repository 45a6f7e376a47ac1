/* A bus endpoint on a libuv loop. See bus.h for the receive path. */
#include "plat/bus.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plat/envelope.h"
#include "plat/log.h"
#include "plat/msg.h"
#include "plat/uvzmq.h"

/* Per-peer limits on a ROUTER (bus.h, receive path 2c). */
#define BUSY_REPLIES_PER_SEC 10
#define PENDING_DEFAULT_TIMEOUT_MS 60000u
#define PEERS_SWEEP_AT 4096
#define PEER_IDLE_FORGET_MS 30000u
/* A peer holding a route is live until proven otherwise: its route is the
 * only way to reach it, and a heartbeat interval may be minutes. */
#define PEER_ROUTE_FORGET_MS 3600000u

typedef struct {
    uint64_t seq;
    uint64_t deadline_ms;
} pending_t;

typedef struct {
    double tokens;
    uint64_t refill_ms;
    uint64_t last_seen_ms;
    uint64_t busy_window_ms; /* start of the current second of -EBUSY answers */
    unsigned busy_answers;   /* answered in that second */
    char route[PLAT_ID_MAX + 1]; /* routing id its authenticated messages came from */
    pending_t *pend;
    unsigned n_pend, cap_pend;
} peer_t;

struct plat_bus {
    uv_loop_t *loop;
    plat_endpoint_t *ep;
    plat_uvzmq_t *watch;
    plat_sync_t *sync;
    plat_endpoint_role_t role;
    char identity[PLAT_ID_MAX + 1];
    char boot_id[PLAT_UUID_LEN + 1];
    size_t max_msg_size;
    uint64_t next_seq;
    plat_bus_message_cb on_message;
    plat_bus_drop_cb on_drop;
    void *arg;
    plat_bus_stats_t stats;
    plat_bus_tx_cb on_tx; /* observer of every message sent (tracing) */
    void *on_tx_arg;
    uint32_t rate_per_sec, rate_burst, max_pending;
    bool allow_peer_to_peer;
    bool curve;      /* ROUTER: CURVE server, routes must carry a token */
    zhashx_t *peers; /* ROUTER: id -> peer_t* (owned): route and limits */
};

/* Each drop reason: its name for people, its key for metrics labels. */
static const struct {
    const char *name, *key;
} g_drops[PLAT_BUS_DROP__COUNT] = {
    [PLAT_BUS_DROP_FRAMES] = {"wrong frames", "frames"},
    [PLAT_BUS_DROP_TOO_BIG] = {"too big", "too_big"},
    [PLAT_BUS_DROP_UNDECODABLE] = {"undecodable", "undecodable"},
    [PLAT_BUS_DROP_INVALID] = {"invalid envelope", "invalid"},
    [PLAT_BUS_DROP_SPOOFED] = {"spoofed source", "spoofed"},
    [PLAT_BUS_DROP_LATE_REPLY] = {"late reply", "late_reply"},
    [PLAT_BUS_DROP_MISDIRECTED] = {"misdirected", "misdirected"},
    [PLAT_BUS_DROP_FORBIDDEN] = {"forbidden destination", "forbidden"},
    [PLAT_BUS_DROP_RATE_LIMITED] = {"rate limited", "rate_limited"},
    [PLAT_BUS_DROP_BUSY] = {"too many pending requests", "busy"},
    [PLAT_BUS_DROP_NO_ROUTE_TOKEN] = {"routing id without token", "no_route_token"},
};

const char *plat_bus_drop_name(plat_bus_drop_t reason)
{
    return (unsigned)reason < PLAT_BUS_DROP__COUNT ? g_drops[reason].name : "unknown";
}

const char *plat_bus_drop_key(plat_bus_drop_t reason)
{
    return (unsigned)reason < PLAT_BUS_DROP__COUNT ? g_drops[reason].key : "unknown";
}

static unsigned channel_index(Plat__PlatformMessage__ChannelCase c)
{
    return (unsigned)c < 36 ? (unsigned)c : 0;
}

static void drop(plat_bus_t *bus, plat_bus_drop_t reason, const char *peer,
                 const Plat__PlatformMessage *msg, const char *why)
{
    bus->stats.dropped[reason]++;
    if (bus->on_drop) {
        bus->on_drop(bus, reason, peer ? peer : "", msg, why ? why : "", bus->arg);
        return;
    }
    const Plat__Header *h = msg ? msg->header : NULL;
    plat_log_debug("bus", "dropped message: %s (%s) peer=%s source=%s destination=%s seq=%llu",
                  plat_bus_drop_name(reason), why ? why : "", peer && *peer ? peer : "-",
                  h && h->source ? h->source->id : "-",
                  h && h->destination ? h->destination->id : "-",
                  h ? (unsigned long long)h->seq_no : 0ULL);
}

/* The identity a ROUTER connection proved: its ZAP User-Id when one was
 * set (CURVE), else the routing id it announced. */
static const char *authenticated_peer(zmq_msg_t *payload, const char *routing_id)
{
    const char *uid = zmq_msg_gets(payload, "User-Id");
    return uid && *uid ? uid : routing_id;
}

/* ---- per-peer limits ------------------------------------------------------ */

static void peer_free(void **item)
{
    peer_t *p = *item;
    if (p) {
        free(p->pend);
        free(p);
    }
    *item = NULL;
}

/* Forget peers idle for a while with nothing pending, so the table stays
 * as small as the set of live peers. */
static void peers_sweep(plat_bus_t *bus, uint64_t now)
{
    zlistx_t *keys = zhashx_keys(bus->peers);
    if (!keys)
        return;
    for (const char *k = zlistx_first(keys); k; k = zlistx_next(keys)) {
        peer_t *p = zhashx_lookup(bus->peers, k);
        uint64_t idle = now - (p ? p->last_seen_ms : now);
        if (p && p->n_pend == 0 &&
            idle > (p->route[0] ? PEER_ROUTE_FORGET_MS : PEER_IDLE_FORGET_MS))
            zhashx_delete(bus->peers, k);
    }
    zlistx_destroy(&keys);
}

static peer_t *peer_get(plat_bus_t *bus, const char *id, uint64_t now)
{
    peer_t *p = zhashx_lookup(bus->peers, id);
    if (p)
        return p;
    if (zhashx_size(bus->peers) >= PEERS_SWEEP_AT)
        peers_sweep(bus, now);
    p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->tokens = bus->rate_burst;
    p->refill_ms = now;
    if (zhashx_insert(bus->peers, id, p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

/* Take one token; false when the bucket is empty. */
static bool peer_take_token(plat_bus_t *bus, peer_t *p, uint64_t now)
{
    if (!bus->rate_per_sec)
        return true;
    if (now > p->refill_ms) {
        p->tokens += (double)(now - p->refill_ms) * bus->rate_per_sec / 1000.0;
        if (p->tokens > bus->rate_burst)
            p->tokens = bus->rate_burst;
        p->refill_ms = now;
    }
    if (p->tokens < 1.0)
        return false;
    p->tokens -= 1.0;
    return true;
}

/* Unanswered requests of the peer, after dropping the expired ones. */
static unsigned peer_pending(peer_t *p, uint64_t now)
{
    unsigned j = 0;
    for (unsigned i = 0; i < p->n_pend; i++)
        if (p->pend[i].deadline_ms > now)
            p->pend[j++] = p->pend[i];
    p->n_pend = j;
    return j;
}

static void peer_add_pending(peer_t *p, uint64_t seq, uint64_t deadline)
{
    if (p->n_pend == p->cap_pend) {
        unsigned cap = p->cap_pend ? p->cap_pend * 2 : 8;
        pending_t *n = realloc(p->pend, cap * sizeof *n);
        if (!n)
            return; /* not tracked: errs on the side of letting it through */
        p->pend = n;
        p->cap_pend = cap;
    }
    p->pend[p->n_pend++] = (pending_t){seq, deadline};
}

static void peer_answered(plat_bus_t *bus, const char *id, uint64_t seq)
{
    peer_t *p = bus->peers ? zhashx_lookup(bus->peers, id) : NULL;
    if (!p)
        return;
    for (unsigned i = 0; i < p->n_pend; i++)
        if (p->pend[i].seq == seq) {
            p->pend[i] = p->pend[--p->n_pend];
            return;
        }
}

/* May this peer get another -EBUSY answer this second? */
static bool peer_may_answer_busy(peer_t *p, uint64_t now)
{
    if (now - p->busy_window_ms >= 1000) {
        p->busy_window_ms = now;
        p->busy_answers = 0;
    }
    return p->busy_answers++ < BUSY_REPLIES_PER_SEC;
}

static int reply_error(plat_bus_t *bus, const Plat__PlatformMessage *request, int code,
                       const char *message, const char *detail, bool admitted);

static void drop_and_answer(plat_bus_t *bus, plat_bus_drop_t reason, const char *from,
                            const Plat__PlatformMessage *m, int code, const char *message,
                            const char *why)
{
    drop(bus, reason, from, m, why);
    if (m && m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
        reply_error(bus, m, code, message, m->header->destination->id, false);
}

/* ---- receive -------------------------------------------------------------- */

/* The token bucket, after decoding: false when the message was refused
 * (counted; a request is answered -EBUSY a few times a second). Replies
 * to the platform's own requests are never limited nor charged: the
 * platform bounds them itself, and a flooding host must still be able to
 * answer its pings. */
static bool admit_rate(plat_bus_t *bus, peer_t *p, const char *from,
                       const Plat__PlatformMessage *m, uint64_t now)
{
    p->last_seen_ms = now;
    const Plat__Header *h = m->header;
    if (h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY ||
        peer_take_token(bus, p, now))
        return true;
    if (h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST &&
        strcmp(h->source->id, from) == 0 && peer_may_answer_busy(p, now))
        drop_and_answer(bus, PLAT_BUS_DROP_RATE_LIMITED, from, m, -EBUSY,
                        "rate limited: too many messages from this endpoint", NULL);
    else
        bus->stats.dropped[PLAT_BUS_DROP_RATE_LIMITED]++; /* silently: a flood */
    return false;
}

/* Remember the route a peer's authenticated message came from: sends to
 * the peer go there (route_of). Never logged: the token is what keeps
 * other keys off the route. */
static void peer_learn_route(peer_t *p, const char *route, const char *id)
{
    if (!p || strcmp(p->route, route) == 0)
        return;
    plat_log_debug("bus", "%s route id=%s", p->route[0] ? "new" : "learned", id);
    snprintf(p->route, sizeof p->route, "%s", route);
}

/* The routing id to send to `dst` on a ROUTER: the route learned from its
 * authenticated messages; without one, the bare id on a plaintext bus and
 * nothing (unroutable) with CURVE, where a bare id is anyone's to claim. */
static const char *route_of(plat_bus_t *bus, const char *dst)
{
    if (bus->role != PLAT_ENDPOINT_ROUTER)
        return dst;
    peer_t *p = bus->peers ? zhashx_lookup(bus->peers, dst) : NULL;
    if (p && p->route[0])
        return p->route;
    return bus->curve ? NULL : dst;
}

/* DEALER: the platform refused to deliver a request of ours to another
 * endpoint (forbidden, unreachable, busy). Its error reply comes from
 * "platform" and names the destination in error.detail: it answers the
 * request pending for (destination, seq), which would otherwise wait for
 * its timeout. Only the platform's word counts: a DEALER hears nobody
 * else, and the ROUTER drops any message forging its Source. */
static int resolve_refusal(plat_bus_t *bus, const Plat__PlatformMessage *m)
{
    const Plat__Header *h = m->header;
    const char *dst = h->error ? h->error->detail : NULL;
    if (bus->role != PLAT_ENDPOINT_DEALER || strcmp(h->source->id, PLAT_PLATFORM_ID) != 0 ||
        plat_id_kind(dst) == PLAT_ID_INVALID || strcmp(dst, PLAT_PLATFORM_ID) == 0)
        return -ENOENT;
    return plat_sync_resolve(bus->sync, dst, h->seq_no, m);
}

static int on_readable(void *arg)
{
    plat_bus_t *bus = arg;
    char route[PLAT_ID_MAX + 1];
    zmq_msg_t payload;
    int rc = plat_endpoint_recv(bus->ep, route, &payload);
    if (rc == -EAGAIN)
        return 0;
    char peer[PLAT_ID_MAX + 1] = "";
    bool has_token = false;
    if ((rc == 0 || rc == -EPROTO) && bus->role == PLAT_ENDPOINT_ROUTER &&
        plat_route_parse(route, peer, &has_token) < 0 && rc == 0) {
        zmq_msg_close(&payload);
        rc = -EPROTO;
    }
    if (rc == -EPROTO) {
        drop(bus, PLAT_BUS_DROP_FRAMES, peer, NULL, "wrong number of frames or bad routing id");
        return 1;
    }
    if (rc < 0)
        return rc;

    const char *from = bus->role == PLAT_ENDPOINT_ROUTER ? authenticated_peer(&payload, peer)
                                                        : PLAT_PLATFORM_ID;
    char from_copy[PLAT_ID_MAX + 1];
    snprintf(from_copy, sizeof from_copy, "%s", from);
    /* With CURVE the routing id must name the authenticated identity and
     * carry a token: ROUTER_HANDOVER would otherwise let one key take
     * another's route (plat_route_new). */
    bool route_ok = bus->role != PLAT_ENDPOINT_ROUTER ||
                    (strcmp(peer, from_copy) == 0 && (has_token || !bus->curve));

    uint64_t now = plat_mono_ms();
    const uint8_t *raw = zmq_msg_data(&payload);
    size_t raw_len = zmq_msg_size(&payload);
    Plat__PlatformMessage *m = NULL;
    const char *why = NULL;
    rc = plat_envelope_decode(raw, raw_len, bus->max_msg_size, &m, &why);
    if (rc < 0) {
        plat_bus_drop_t reason = rc == -EMSGSIZE ? PLAT_BUS_DROP_TOO_BIG
                                 : rc == -EPROTO ? PLAT_BUS_DROP_INVALID
                                                 : PLAT_BUS_DROP_UNDECODABLE;
        if (rc == -ENOMEM)
            why = "out of memory";
        drop(bus, reason, from_copy, NULL, why);
        zmq_msg_close(&payload);
        return 1;
    }
    peer_t *lp = route_ok && bus->peers ? peer_get(bus, from_copy, now) : NULL;
    if (lp && !admit_rate(bus, lp, from_copy, m, now)) {
        plat_envelope_free(&m);
        zmq_msg_close(&payload);
        return 1;
    }
    const Plat__Header *h = m->header;
    bool is_reply = h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY;
    bool for_us = strcmp(h->destination->id, bus->identity) == 0;
    bool source_ok = bus->role != PLAT_ENDPOINT_ROUTER || strcmp(h->source->id, from_copy) == 0;
    if (route_ok && source_ok && bus->role == PLAT_ENDPOINT_ROUTER)
        peer_learn_route(lp, route, from_copy);
    if (!route_ok && strcmp(peer, from_copy) == 0) {
        drop(bus, PLAT_BUS_DROP_NO_ROUTE_TOKEN, from_copy, m,
             "routing id carries no token: the route could be taken over");
    } else if (!route_ok) {
        drop(bus, PLAT_BUS_DROP_SPOOFED, from_copy, m,
             "routing id is not the connection's authenticated identity");
    } else if (!source_ok) {
        drop(bus, PLAT_BUS_DROP_SPOOFED, from_copy, m, "source id is not the sender's identity");
    } else if (bus->role == PLAT_ENDPOINT_DEALER && !for_us) {
        drop(bus, PLAT_BUS_DROP_MISDIRECTED, from_copy, m, "destination is not this endpoint");
    } else if (bus->role == PLAT_ENDPOINT_ROUTER && !for_us && !bus->allow_peer_to_peer) {
        drop_and_answer(bus, PLAT_BUS_DROP_FORBIDDEN, from_copy, m, -EACCES,
                        "endpoints may address the platform only", NULL);
    } else if (is_reply && for_us) {
        bus->stats.rx++;
        bus->stats.rx_by_channel[channel_index(m->channel_case)]++;
        if (plat_sync_resolve(bus->sync, h->source->id, h->seq_no, m) == -ENOENT &&
            resolve_refusal(bus, m) == -ENOENT)
            drop(bus, PLAT_BUS_DROP_LATE_REPLY, from_copy, m,
                 "no request pending (timed out or never sent)");
    } else if (lp && bus->max_pending && for_us &&
               h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST &&
               peer_pending(lp, now) >= bus->max_pending) {
        if (peer_may_answer_busy(lp, now))
            drop_and_answer(bus, PLAT_BUS_DROP_BUSY, from_copy, m, -EBUSY,
                            "too many requests pending from this endpoint", NULL);
        else
            bus->stats.dropped[PLAT_BUS_DROP_BUSY]++;
    } else {
        if (lp && bus->max_pending && for_us &&
            h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST) {
            uint64_t t = h->timeout_ms ? h->timeout_ms : PENDING_DEFAULT_TIMEOUT_MS;
            peer_add_pending(lp, h->seq_no, now + t);
        }
        bus->stats.rx++;
        bus->stats.rx_by_channel[channel_index(m->channel_case)]++;
        plat_bus_rx_t rx = {.peer = from_copy, .msg = m, .raw = raw, .raw_len = raw_len};
        /* The callback may destroy the bus: touch nothing of it after. */
        bus->on_message(bus, &rx, bus->arg);
    }
    plat_envelope_free(&m);
    zmq_msg_close(&payload);
    return 1;
}

void plat_bus_forget_peer(plat_bus_t *bus, const char *peer)
{
    if (bus && bus->peers && peer)
        zhashx_delete(bus->peers, peer);
}

unsigned plat_bus_pending(const plat_bus_t *bus, const char *peer)
{
    peer_t *p = bus->peers ? zhashx_lookup(bus->peers, peer) : NULL;
    return p ? peer_pending(p, plat_mono_ms()) : 0;
}

plat_bus_t *plat_bus_new(uv_loop_t *loop, const plat_bus_opts_t *opts)
{
    if (!loop || !opts || !opts->address || !opts->on_message ||
        plat_id_kind(opts->identity) == PLAT_ID_INVALID) {
        errno = EINVAL;
        return NULL;
    }
    plat_bus_t *bus = calloc(1, sizeof *bus);
    if (!bus)
        return NULL;
    bus->loop = loop;
    bus->role = opts->role;
    snprintf(bus->identity, sizeof bus->identity, "%s", opts->identity);
    snprintf(bus->boot_id, sizeof bus->boot_id, "%s", opts->boot_id ? opts->boot_id : "");
    bus->max_msg_size =
        opts->endpoint.max_msg_size ? opts->endpoint.max_msg_size : PLAT_MAX_MSG_SIZE_DEFAULT;
    bus->on_message = opts->on_message;
    bus->on_drop = opts->on_drop;
    bus->arg = opts->arg;
    bus->allow_peer_to_peer = opts->role != PLAT_ENDPOINT_ROUTER || !opts->platform_only;
    bus->rate_per_sec = opts->rate_per_sec;
    bus->rate_burst = opts->rate_burst ? opts->rate_burst : opts->rate_per_sec;
    bus->max_pending = opts->max_pending;
    bus->curve = opts->role == PLAT_ENDPOINT_ROUTER && opts->endpoint.curve_secret;
    if (opts->role == PLAT_ENDPOINT_ROUTER) {
        bus->peers = zhashx_new();
        if (!bus->peers)
            goto fail;
        zhashx_set_destructor(bus->peers, peer_free);
    }
    if (opts->role == PLAT_ENDPOINT_ROUTER) {
        bus->ep = plat_endpoint_router_new(opts->address, &opts->endpoint);
    } else {
        char route[PLAT_ID_MAX + 1];
        int rrc = plat_route_new(opts->identity, route);
        errno = -rrc;
        bus->ep = rrc < 0 ? NULL : plat_endpoint_dealer_new(route, opts->address, &opts->endpoint);
        explicit_bzero(route, sizeof route);
    }
    if (!bus->ep)
        goto fail;
    bus->sync = plat_sync_new(loop);
    if (!bus->sync)
        goto fail;
    bus->watch = plat_uvzmq_new(loop, plat_endpoint_handle(bus->ep), 0, on_readable, bus);
    if (!bus->watch)
        goto fail;
    return bus;
fail:;
    int e = errno ? errno : ENOMEM;
    plat_sync_destroy(&bus->sync);
    plat_endpoint_destroy(&bus->ep);
    zhashx_destroy(&bus->peers);
    free(bus);
    errno = e;
    return NULL;
}

void plat_bus_destroy(plat_bus_t **busp)
{
    if (!busp || !*busp)
        return;
    plat_bus_t *bus = *busp;
    *busp = NULL;
    plat_sync_destroy(&bus->sync);
    plat_uvzmq_close(&bus->watch);
    plat_endpoint_destroy(&bus->ep);
    zhashx_destroy(&bus->peers);
    free(bus);
}

const char *plat_bus_identity(const plat_bus_t *bus) { return bus->identity; }
const char *plat_bus_boot_id(const plat_bus_t *bus) { return bus->boot_id; }
const plat_bus_stats_t *plat_bus_stats(const plat_bus_t *bus) { return &bus->stats; }
plat_sync_t *plat_bus_sync(plat_bus_t *bus) { return bus->sync; }
plat_endpoint_t *plat_bus_endpoint(plat_bus_t *bus) { return bus->ep; }

/* Replace a string field of a message the bus was handed (every part
 * malloc'd, or protobuf-c's static empty default). */
static int set_str(char **field, const char *value)
{
    char *v = strdup(value);
    if (!v)
        return -ENOMEM;
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = v;
    return 0;
}

static int ensure_endpoint(Plat__Endpoint **ep)
{
    if (*ep)
        return 0;
    *ep = malloc(sizeof **ep);
    if (!*ep)
        return -ENOMEM;
    plat__endpoint__init(*ep);
    return 0;
}

static int fill_header(plat_bus_t *bus, Plat__PlatformMessage *msg, const char *dst,
                       Plat__MessageKind kind, uint64_t seq, uint32_t timeout_ms)
{
    if (!msg || !dst)
        return -EINVAL;
    if (!msg->header) {
        msg->header = malloc(sizeof *msg->header);
        if (!msg->header)
            return -ENOMEM;
        plat__header__init(msg->header);
    }
    Plat__Header *h = msg->header;
    if (ensure_endpoint(&h->source) || ensure_endpoint(&h->destination) ||
        set_str(&h->source->id, bus->identity) || set_str(&h->destination->id, dst) ||
        set_str(&h->boot_id, bus->boot_id))
        return -ENOMEM;
    h->seq_no = seq;
    h->kind = kind;
    h->timeout_ms = timeout_ms;
    h->sent_at_ms = plat_now_ms();
    return 0;
}

static int send_encoded(plat_bus_t *bus, const char *peer, const Plat__PlatformMessage *msg)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = plat_envelope_encode(msg, bus->max_msg_size, &buf, &len);
    if (rc == 0) {
        const char *route = route_of(bus, peer);
        rc = route ? plat_endpoint_send(bus->ep, route, buf, len) : -EHOSTUNREACH;
        free(buf);
    }
    if (rc == 0) {
        bus->stats.tx++;
        bus->stats.tx_by_channel[channel_index(msg->channel_case)]++;
        if (bus->on_tx)
            bus->on_tx(bus, msg, len, bus->on_tx_arg);
    } else {
        bus->stats.tx_failed++;
    }
    plat_uvzmq_kick(bus->watch);
    return rc;
}

void plat_bus_set_tx_observer(plat_bus_t *bus, plat_bus_tx_cb cb, void *arg)
{
    bus->on_tx = cb;
    bus->on_tx_arg = arg;
}

int plat_bus_send(plat_bus_t *bus, const char *dst, Plat__PlatformMessage *msg)
{
    int rc = fill_header(bus, msg, dst, PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT, ++bus->next_seq, 0);
    return rc < 0 ? rc : send_encoded(bus, dst, msg);
}

int64_t plat_bus_request(plat_bus_t *bus, const char *dst, Plat__PlatformMessage *msg,
                         uint32_t timeout_ms, plat_bus_reply_cb cb, void *arg)
{
    if (!cb)
        return -EINVAL;
    uint64_t seq = ++bus->next_seq;
    int rc = fill_header(bus, msg, dst, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST, seq, timeout_ms);
    if (rc < 0)
        return rc;
    rc = send_encoded(bus, dst, msg);
    if (rc < 0)
        return rc;
    /* Single-threaded: the reply cannot be handled before we return to the
     * loop, so registering after a successful send is race-free and keeps
     * failed sends out of the table. */
    rc = plat_sync_add(bus->sync, dst, seq, timeout_ms, cb, arg);
    return rc < 0 ? rc : (int64_t)seq;
}

/* `admitted`: the request was handed to the owner and counts as pending
 * for its sender (limits); a refusal answered by the bus itself does not,
 * and must not clear an admitted request that reuses its seq_no. */
static int send_reply(plat_bus_t *bus, const Plat__PlatformMessage *request,
                      Plat__PlatformMessage *reply, bool admitted)
{
    if (!request || !request->header || !request->header->source)
        return -EINVAL;
    const char *dst = request->header->source->id;
    if (admitted)
        peer_answered(bus, dst, request->header->seq_no);
    int rc = fill_header(bus, reply, dst, PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY,
                         request->header->seq_no, 0);
    return rc < 0 ? rc : send_encoded(bus, dst, reply);
}

int plat_bus_reply(plat_bus_t *bus, const Plat__PlatformMessage *request,
                   Plat__PlatformMessage *reply)
{
    return send_reply(bus, request, reply, true);
}

static int reply_error(plat_bus_t *bus, const Plat__PlatformMessage *request, int code,
                       const char *message, const char *detail, bool admitted)
{
    Plat__PlatformMessage *r = plat_msg_new_empty();
    if (!r)
        return -ENOMEM;
    int rc = plat_msg_set_error(r, code, message, detail);
    if (rc == 0)
        rc = send_reply(bus, request, r, admitted);
    plat_envelope_free(&r);
    return rc;
}

int plat_bus_reply_error(plat_bus_t *bus, const Plat__PlatformMessage *request, int code,
                         const char *message, const char *detail)
{
    return reply_error(bus, request, code, message, detail, true);
}

int plat_bus_forward(plat_bus_t *bus, const char *peer, const uint8_t *raw, size_t len)
{
    const char *route = route_of(bus, peer);
    int rc = route ? plat_endpoint_send(bus->ep, route, raw, len) : -EHOSTUNREACH;
    if (rc == 0)
        bus->stats.forwarded++;
    else
        bus->stats.tx_failed++;
    plat_uvzmq_kick(bus->watch);
    return rc;
}
