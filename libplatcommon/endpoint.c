/* ROUTER / DEALER endpoints on czmq sockets. */
#include "plat/endpoint.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plat/envelope.h"
#include "plat/keys.h"

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

/* Process-wide CURVE client keys (plat_endpoint_set_default_curve). */
static char g_default_secret[PLAT_KEY_Z85_LEN + 1];
static char g_default_server[PLAT_KEY_Z85_LEN + 1];

int plat_endpoint_set_default_curve(const char *secret_z85, const char *server_public_z85)
{
    if (!secret_z85 && !server_public_z85) {
        explicit_bzero(g_default_secret, sizeof g_default_secret);
        g_default_server[0] = 0;
        return 0;
    }
    if (!plat_key_z85_valid(secret_z85) || !plat_key_z85_valid(server_public_z85))
        return -EINVAL;
    memcpy(g_default_secret, secret_z85, sizeof g_default_secret);
    memcpy(g_default_server, server_public_z85, sizeof g_default_server);
    return 0;
}

/* The socket monitor, before bind/connect; 0 or -errno. */
static int apply_monitor(void *s, const plat_endpoint_opts_t *opts)
{
    if (!opts || !opts->monitor_addr)
        return 0;
    return zmq_socket_monitor(s, opts->monitor_addr, opts->monitor_events) == 0 ? 0 : -errno;
}

/* CURVE server (ROUTER) or client (DEALER) options; 0 or -EINVAL. */
static int apply_curve(void *s, plat_endpoint_role_t role, const plat_endpoint_opts_t *opts)
{
    const char *secret = opts ? opts->curve_secret : NULL;
    const char *server = opts ? opts->curve_server_key : NULL;
    if (role == PLAT_ENDPOINT_DEALER && !secret && !server && g_default_secret[0]) {
        secret = g_default_secret;
        server = g_default_server;
    }
    if (!secret && !server)
        return 0;
    plat_keypair_t kp;
    memset(&kp, 0, sizeof kp);
    if (!plat_key_z85_valid(secret) ||
        (role == PLAT_ENDPOINT_DEALER && !plat_key_z85_valid(server)))
        return -EINVAL;
    memcpy(kp.secret_z85, secret, sizeof kp.secret_z85);
    int rc = plat_keys_derive_public(&kp);
    if (rc == 0 && role == PLAT_ENDPOINT_ROUTER) {
        int one = 1;
        rc = zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, PLAT_ZAP_DOMAIN, strlen(PLAT_ZAP_DOMAIN)) ||
                     zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) ||
                     zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, kp.secret_z85, PLAT_KEY_Z85_LEN)
                 ? -errno
                 : 0;
    } else if (rc == 0) {
        rc = zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server, PLAT_KEY_Z85_LEN) ||
                     zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, kp.public_z85, PLAT_KEY_Z85_LEN) ||
                     zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, kp.secret_z85, PLAT_KEY_Z85_LEN)
                 ? -errno
                 : 0;
    }
    plat_keys_wipe(&kp);
    return rc;
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
    int crc = apply_curve(zsock_resolve(ep->sock), PLAT_ENDPOINT_ROUTER, opts);
    if (crc == 0)
        crc = apply_monitor(zsock_resolve(ep->sock), opts);
    if (crc < 0 || zmq_bind(zsock_resolve(ep->sock), bind_addr) != 0) {
        int e = crc < 0 ? -crc : errno;
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
    int crc = apply_curve(zsock_resolve(ep->sock), PLAT_ENDPOINT_DEALER, opts);
    if (crc == 0)
        crc = apply_monitor(zsock_resolve(ep->sock), opts);
    if (crc < 0 || zmq_connect(zsock_resolve(ep->sock), connect_addr) != 0) {
        int e = crc < 0 ? -crc : errno;
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

/* One frame; a signal arriving during the call (EINTR) is not a failure:
 * try again (a lost HOST_EXITED report was traced to it). */
static int send_frame(void *s, const void *buf, size_t len, int flags)
{
    while (zmq_send(s, buf, len, flags | ZMQ_DONTWAIT) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

int plat_endpoint_send(plat_endpoint_t *ep, const char *peer, const void *buf, size_t len)
{
    void *s = zsock_resolve(ep->sock);
    if (ep->role == PLAT_ENDPOINT_ROUTER) {
        if (!peer || !*peer)
            return -EINVAL;
        int rc = send_frame(s, peer, strlen(peer), ZMQ_SNDMORE);
        if (rc < 0)
            return rc;
    }
    return send_frame(s, buf, len, 0);
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
    int got;
    while ((got = zmq_msg_recv(&first, s, ZMQ_DONTWAIT)) < 0 && errno == EINTR)
        ;
    if (got < 0) {
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
        while ((got = zmq_msg_recv(&first, s, ZMQ_DONTWAIT)) < 0 && errno == EINTR)
            ;
        if (got < 0) {
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
