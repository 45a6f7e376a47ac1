/* ROUTER / DEALER endpoints on czmq sockets. */
#include "plat/endpoint.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plat/envelope.h"

struct plat_endpoint {
    zsock_t *sock;
    plat_endpoint_role_t role;
};

static void apply_opts(zsock_t *s, const plat_endpoint_opts_t *opts)
{
    size_t max = opts && opts->max_msg_size ? opts->max_msg_size : PLAT_MAX_MSG_SIZE_DEFAULT;
    int64_t max64 = (int64_t)max;
    zmq_setsockopt(zsock_resolve(s), ZMQ_MAXMSGSIZE, &max64, sizeof max64);
    zsock_set_sndhwm(s, opts && opts->sndhwm > 0 ? opts->sndhwm : 1000);
    zsock_set_rcvhwm(s, opts && opts->rcvhwm > 0 ? opts->rcvhwm : 1000);
    zsock_set_linger(s, opts ? opts->linger_ms : 0);
}

/* czmq installs its own SIGINT/SIGTERM handlers on first use unless told
 * not to; signals belong to the daemon's libuv loop. */
static void czmq_quiet(void)
{
    static bool done;
    if (!done) {
        zsys_handler_set(NULL);
        done = true;
    }
}

plat_endpoint_t *plat_endpoint_router_new(const char *bind_addr, const plat_endpoint_opts_t *opts)
{
    czmq_quiet();
    plat_endpoint_t *ep = calloc(1, sizeof *ep);
    if (!ep)
        return NULL;
    ep->role = PLAT_ENDPOINT_ROUTER;
    ep->sock = zsock_new(ZMQ_ROUTER);
    if (!ep->sock) {
        free(ep);
        errno = ENOMEM;
        return NULL;
    }
    apply_opts(ep->sock, opts);
    zsock_set_router_mandatory(ep->sock, 1);
    zsock_set_router_handover(ep->sock, 1);
    if (zmq_bind(zsock_resolve(ep->sock), bind_addr) != 0) {
        int e = errno;
        zsock_destroy(&ep->sock);
        free(ep);
        errno = e;
        return NULL;
    }
    return ep;
}

plat_endpoint_t *plat_endpoint_dealer_new(const char *identity, const char *connect_addr,
                                          const plat_endpoint_opts_t *opts)
{
    czmq_quiet();
    if (!identity || !*identity || strlen(identity) > PLAT_ID_MAX) {
        errno = EINVAL;
        return NULL;
    }
    plat_endpoint_t *ep = calloc(1, sizeof *ep);
    if (!ep)
        return NULL;
    ep->role = PLAT_ENDPOINT_DEALER;
    ep->sock = zsock_new(ZMQ_DEALER);
    if (!ep->sock) {
        free(ep);
        errno = ENOMEM;
        return NULL;
    }
    apply_opts(ep->sock, opts);
    zmq_setsockopt(zsock_resolve(ep->sock), ZMQ_ROUTING_ID, identity, strlen(identity));
    if (zmq_connect(zsock_resolve(ep->sock), connect_addr) != 0) {
        int e = errno;
        zsock_destroy(&ep->sock);
        free(ep);
        errno = e;
        return NULL;
    }
    return ep;
}

void plat_endpoint_destroy(plat_endpoint_t **ep)
{
    if (!ep || !*ep)
        return;
    zsock_destroy(&(*ep)->sock);
    free(*ep);
    *ep = NULL;
}

plat_endpoint_role_t plat_endpoint_role(const plat_endpoint_t *ep) { return ep->role; }

void *plat_endpoint_handle(plat_endpoint_t *ep) { return zsock_resolve(ep->sock); }

int plat_endpoint_send(plat_endpoint_t *ep, const char *peer, const void *buf, size_t len)
{
    void *s = zsock_resolve(ep->sock);
    if (ep->role == PLAT_ENDPOINT_ROUTER) {
        if (!peer || !*peer)
            return -EINVAL;
        if (zmq_send(s, peer, strlen(peer), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
            return -errno;
    }
    if (zmq_send(s, buf, len, ZMQ_DONTWAIT) < 0)
        return -errno;
    return 0;
}

static bool more(zmq_msg_t *m) { return zmq_msg_more(m) != 0; }

/* Throw away the rest of a multipart message. */
static void drain(void *s, zmq_msg_t *m)
{
    while (more(m)) {
        zmq_msg_close(m);
        zmq_msg_init(m);
        if (zmq_msg_recv(m, s, ZMQ_DONTWAIT) < 0)
            break;
    }
    zmq_msg_close(m);
}

int plat_endpoint_recv(plat_endpoint_t *ep, char peer[PLAT_ID_MAX + 1], zmq_msg_t *payload)
{
    void *s = zsock_resolve(ep->sock);
    peer[0] = 0;
    zmq_msg_t first;
    zmq_msg_init(&first);
    if (zmq_msg_recv(&first, s, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&first);
        return -e;
    }
    if (ep->role == PLAT_ENDPOINT_ROUTER) {
        size_t idlen = zmq_msg_size(&first);
        bool id_ok = idlen > 0 && idlen <= PLAT_ID_MAX;
        if (id_ok) {
            memcpy(peer, zmq_msg_data(&first), idlen);
            peer[idlen] = 0;
            /* an id with a NUL inside is no id of ours */
            id_ok = strlen(peer) == idlen;
        }
        if (!id_ok || !more(&first)) {
            drain(s, &first);
            return -EPROTO;
        }
        zmq_msg_close(&first);
        zmq_msg_init(&first);
        if (zmq_msg_recv(&first, s, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(&first);
            return -e;
        }
    }
    if (more(&first)) {
        drain(s, &first);
        return -EPROTO;
    }
    zmq_msg_init(payload);
    zmq_msg_move(payload, &first);
    zmq_msg_close(&first);
    return 0;
}
