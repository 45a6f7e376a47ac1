/* A bus endpoint on a libuv loop: endpoint + uvzmq watcher + synchronizer +
 * per-sender SeqNo counter. It fills headers, matches replies to requests,
 * and hands every other valid message to the owner's callback.
 *
 * Receive path, in order:
 *   1. frame count / size checks (endpoint), then plat_envelope_decode;
 *      failures are dropped and reported through on_drop;
 *   2. ROUTER only: the routing id is a route "<id>/<token>" (id.h,
 *      plat_route_new; a bare "<id>" on a plaintext bus); header.source.id
 *      must equal the connection's identity (the route's id, or its ZAP
 *      User-Id once CURVE is on), and with CURVE the route's id must equal
 *      the User-Id too — else dropped as PLAT_BUS_DROP_SPOOFED — and carry a
 *      token — else PLAT_BUS_DROP_NO_ROUTE_TOKEN. A message that passes binds
 *      its route to the identity: the bus sends to that identity through the
 *      last such route only (with CURVE, an identity that sent nothing yet
 *      is unroutable, -EHOSTUNREACH). DEALERs made by plat_bus_new announce
 *      a fresh route;
 *   2b. ROUTER with platform_only: an endpoint other than the platform may
 *      address only the platform — else PLAT_BUS_DROP_FORBIDDEN
 *      (a request is answered -EACCES);
 *   2c. ROUTER only, for every message but a REPLY: the sender's token
 *      bucket (rate_per_sec, rate_burst) — else PLAT_BUS_DROP_RATE_LIMITED;
 *      and for a REQUEST to the platform, fewer than max_pending requests of
 *      that sender still unanswered — else PLAT_BUS_DROP_BUSY. Both answer
 *      a request -EBUSY (at most a few such answers per second per peer, so
 *      a flood costs the platform little and the other peers, fair-queued
 *      by the ROUTER, keep flowing);
 *   3. a REPLY whose destination is this endpoint resolves its pending
 *      request by (source id, seq_no); on a DEALER, an error reply from the
 *      platform that names another endpoint in error.detail (the platform
 *      refused to deliver our request there: forbidden, unreachable, busy)
 *      resolves the request pending for (that endpoint, seq_no); a reply
 *      with nothing pending is dropped as PLAT_BUS_DROP_LATE_REPLY;
 *   4. everything else goes to on_message (on a ROUTER that includes
 *      messages for other destinations: the owner decides to forward).
 * Loop thread only. */
#ifndef PLAT_BUS_H
#define PLAT_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <zmq.h>

#include "endpoint.h"
#include "id.h"
#include "platform.pb-c.h"
#include "sync.h"

typedef struct plat_bus plat_bus_t;

typedef enum {
    PLAT_BUS_DROP_FRAMES = 0,   /* wrong frame count / oversized routing id */
    PLAT_BUS_DROP_TOO_BIG,      /* -EMSGSIZE from decode */
    PLAT_BUS_DROP_UNDECODABLE,  /* -EBADMSG */
    PLAT_BUS_DROP_INVALID,      /* -EPROTO: decodes, fails validation */
    PLAT_BUS_DROP_SPOOFED,      /* source id != authenticated identity */
    PLAT_BUS_DROP_LATE_REPLY,   /* reply with no pending request */
    PLAT_BUS_DROP_MISDIRECTED,  /* DEALER: destination is not us */
    PLAT_BUS_DROP_FORBIDDEN,    /* ROUTER: a peer addressed another peer */
    PLAT_BUS_DROP_RATE_LIMITED, /* ROUTER: over the peer's request rate */
    PLAT_BUS_DROP_BUSY,         /* ROUTER: too many requests pending from the peer */
    PLAT_BUS_DROP_NO_ROUTE_TOKEN, /* ROUTER with CURVE: routing id without a token */
    PLAT_BUS_DROP__COUNT
} plat_bus_drop_t;

/* A received message, borrowed for the duration of the callback. */
typedef struct {
    const char *peer;                 /* authenticated identity of the
                                         connection (ROUTER); "platform" on a
                                         DEALER */
    const Plat__PlatformMessage *msg; /* decoded and validated */
    const uint8_t *raw;               /* the encoded bytes, for forwarding */
    size_t raw_len;
} plat_bus_rx_t;

typedef void (*plat_bus_message_cb)(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg);

/* `peer` may be "" when unknown, `msg` NULL when undecodable, `why` static. */
typedef void (*plat_bus_drop_cb)(plat_bus_t *bus, plat_bus_drop_t reason, const char *peer,
                                 const Plat__PlatformMessage *msg, const char *why, void *arg);

typedef struct {
    uint64_t rx;                         /* valid messages received */
    uint64_t tx;                         /* messages sent */
    uint64_t tx_failed;                  /* sends that failed (unroutable, HWM) */
    uint64_t forwarded;                  /* plat_bus_forward successes */
    uint64_t dropped[PLAT_BUS_DROP__COUNT];
    uint64_t rx_by_channel[36];          /* indexed by ChannelCase (0..35) */
    uint64_t tx_by_channel[36];
} plat_bus_stats_t;

typedef struct {
    plat_endpoint_role_t role;
    const char *identity;       /* own endpoint id: "platform", "hostboot-x", "host-<uuid>" */
    const char *address;        /* ROUTER: bind address; DEALER: connect address */
    plat_endpoint_opts_t endpoint;
    const char *boot_id;        /* this process's boot id (copied) */
    plat_bus_message_cb on_message;
    plat_bus_drop_cb on_drop;   /* optional */
    void *arg;                  /* passed to both callbacks */
    /* ROUTER limits (0 = unlimited); see the receive path above. */
    uint32_t rate_per_sec;      /* messages (not replies) per second per peer */
    uint32_t rate_burst;        /* bucket size; 0 = rate_per_sec */
    uint32_t max_pending;       /* unanswered requests to the platform per peer */
    bool platform_only;         /* ROUTER: peers may address this ROUTER only (no
                                   forwarding between them) */
} plat_bus_opts_t;

/* Create, bind/connect and start watching. NULL on failure (errno set). */
plat_bus_t *plat_bus_new(uv_loop_t *loop, const plat_bus_opts_t *opts);

/* Fail every pending request with -ECANCELED (callbacks run), close the
 * watcher and the socket. Memory still referenced by uv handles is freed by
 * their close callbacks, so the loop must run afterwards. NULL-safe. */
void plat_bus_destroy(plat_bus_t **bus);

const char *plat_bus_identity(const plat_bus_t *bus);
const char *plat_bus_boot_id(const plat_bus_t *bus);
const plat_bus_stats_t *plat_bus_stats(const plat_bus_t *bus);
plat_sync_t *plat_bus_sync(plat_bus_t *bus);
plat_endpoint_t *plat_bus_endpoint(plat_bus_t *bus);

/* Completion of a request: see plat_sync_cb (0 with the reply,
 * -ETIMEDOUT, -ECANCELED). A send that fails is reported by
 * plat_bus_request's return value instead, and the callback never runs. */
typedef plat_sync_cb plat_bus_reply_cb;

/* Fill msg's header (source = own id, destination = dst, next seq_no,
 * kind = EVENT, boot_id, sent_at_ms) and send. `msg` stays the caller's.
 * ROUTER: sent to the route of `dst` (receive path 2). Returns 0 or -errno (-EHOSTUNREACH for
 * an unknown peer on a ROUTER, -EAGAIN at the HWM, -EPROTO invalid). */
int plat_bus_send(plat_bus_t *bus, const char *dst, Plat__PlatformMessage *msg);

/* Same with kind = REQUEST and header.timeout_ms; `cb` runs exactly once:
 * with the reply, on timeout, or on destroy. Returns the
 * seq_no used (> 0) or a negative errno if nothing could be sent (then
 * `cb` is NOT called). */
int64_t plat_bus_request(plat_bus_t *bus, const char *dst, Plat__PlatformMessage *msg,
                         uint32_t timeout_ms, plat_bus_reply_cb cb, void *arg);

/* Answer `request` (kind = REPLY, seq_no = request's, destination =
 * request's source). `reply` stays the caller's. */
int plat_bus_reply(plat_bus_t *bus, const Plat__PlatformMessage *request,
                   Plat__PlatformMessage *reply);

/* Answer `request` with a REPLY that carries only header.error. */
int plat_bus_reply_error(plat_bus_t *bus, const Plat__PlatformMessage *request, int code,
                         const char *message, const char *detail);

/* ROUTER: send already-encoded bytes unchanged to the route of `peer`.
 * Returns 0, -EHOSTUNREACH, -EAGAIN. */
int plat_bus_forward(plat_bus_t *bus, const char *peer, const uint8_t *raw, size_t len);

/* ROUTER: forget what the bus keeps of `peer` (its route, its limits),
 * e.g. once its key is revoked; it is unroutable until it speaks again. */
void plat_bus_forget_peer(plat_bus_t *bus, const char *peer);

/* Requests of `peer` to this ROUTER not answered yet (max_pending). */
unsigned plat_bus_pending(const plat_bus_t *bus, const char *peer);

/* Observer of every message this bus sends itself (plat_bus_send,
 * plat_bus_request, plat_bus_reply, plat_bus_reply_error; not
 * plat_bus_forward, whose bytes the receive path already saw), called after
 * a successful send with the message and its encoded length. One observer;
 * NULL removes it. Used by platformd's tracing switch. */
typedef void (*plat_bus_tx_cb)(plat_bus_t *bus, const Plat__PlatformMessage *msg, size_t len,
                               void *arg);
void plat_bus_set_tx_observer(plat_bus_t *bus, plat_bus_tx_cb cb, void *arg);

/* Human-readable name of a drop reason ("spoofed source", ...), and its
 * key for metric labels ("spoofed", ...); "unknown" when out of range. */
const char *plat_bus_drop_name(plat_bus_drop_t reason);
const char *plat_bus_drop_key(plat_bus_drop_t reason);

#endif
