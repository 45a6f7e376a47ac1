/* ROUTER and DEALER sockets (czmq zsock_t underneath) with the options the
 * contract requires: ZMQ_ROUTER_MANDATORY and ZMQ_ROUTER_HANDOVER on the
 * ROUTER, ZMQ_MAXMSGSIZE, send/receive high-water marks, linger. Frames are
 * moved as zmq_msg_t so no payload is copied. Not thread-safe: one thread
 * owns an endpoint. */
#ifndef PLAT_ENDPOINT_H
#define PLAT_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "id.h"

typedef struct plat_endpoint plat_endpoint_t;

typedef struct {
    size_t max_msg_size; /* ZMQ_MAXMSGSIZE per frame; 0 = PLAT_MAX_MSG_SIZE_DEFAULT */
    int sndhwm;          /* 0 = 1000 */
    int rcvhwm;          /* 0 = 1000 */
    int linger_ms;       /* on destroy; default 0 */
    /* CURVE (Z85 keys, 40 characters; NULL = plaintext). ROUTER: with
     * curve_secret set it is a CURVE server in ZAP domain
     * PLAT_ZAP_DOMAIN — a ZAP handler must be bound on
     * inproc://zeromq.zap.01 in the czmq context first, or CURVE admits
     * any client that knows the public key. DEALER: with curve_secret and
     * curve_server_key set it is a CURVE client of that server; when both
     * are NULL the process default (plat_endpoint_set_default_curve) is
     * used. The strings are copied into the socket at creation. */
    const char *curve_secret;     /* own secret key */
    const char *curve_server_key; /* DEALER: the ROUTER's public key */
    /* Socket events (ZMQ_EVENT_* mask) published on inproc address
     * `monitor_addr` (zmq_socket_monitor), set up before the socket binds
     * or connects so no event is missed: connect a PAIR to it first.
     * NULL = none. */
    const char *monitor_addr;
    int monitor_events;
} plat_endpoint_opts_t;

#define PLAT_ZAP_DOMAIN "platform"

/* Process-wide CURVE client keys for DEALERs created without their own
 * (e.g. by a library that builds its endpoint options itself). NULL,NULL
 * clears. Copied. Returns 0 or -EINVAL for a malformed key. */
int plat_endpoint_set_default_curve(const char *secret_z85, const char *server_public_z85);

typedef enum {
    PLAT_ENDPOINT_ROUTER,
    PLAT_ENDPOINT_DEALER,
} plat_endpoint_role_t;

/* Bind a ROUTER on `bind_addr` ("tcp://127.0.0.1:7700"). NULL on failure
 * with errno set (EADDRINUSE, EINVAL...). `opts` may be NULL. */
plat_endpoint_t *plat_endpoint_router_new(const char *bind_addr, const plat_endpoint_opts_t *opts);

/* Connect a DEALER with routing id `identity` to `connect_addr`. -EINVAL
 * (errno) for malformed CURVE keys. */
plat_endpoint_t *plat_endpoint_dealer_new(const char *identity, const char *connect_addr,
                                          const plat_endpoint_opts_t *opts);

/* NULL-safe; sets *ep = NULL. The caller must have closed any uv watcher on
 * the socket first (plat_uvzmq_close). */
void plat_endpoint_destroy(plat_endpoint_t **ep);

plat_endpoint_role_t plat_endpoint_role(const plat_endpoint_t *ep);

/* The underlying libzmq socket handle (for plat_uvzmq and socket options). */
void *plat_endpoint_handle(plat_endpoint_t *ep);

/* Send one payload, non-blocking. ROUTER: to routing id `peer`; DEALER:
 * `peer` ignored. Returns 0, -EHOSTUNREACH (ROUTER: no such peer),
 * -EAGAIN (high-water mark reached), or another -errno. */
int plat_endpoint_send(plat_endpoint_t *ep, const char *peer, const void *buf, size_t len);

/* Receive one message, non-blocking. On 0, `payload` (which must be
 * zmq_msg_init'ed by the caller or not — recv initialises it) holds the
 * payload frame and the caller must zmq_msg_close it; on a ROUTER
 * peer[] holds the routing id (NUL-terminated), on a DEALER peer[0] = 0.
 * Returns -EAGAIN when nothing is waiting; -EPROTO when the message had the
 * wrong number of frames or a routing id longer than PLAT_ID_MAX (it was
 * drained and dropped whole; peer[] is set when known); other -errno. */
int plat_endpoint_recv(plat_endpoint_t *ep, char peer[PLAT_ID_MAX + 1], zmq_msg_t *payload);

#endif
