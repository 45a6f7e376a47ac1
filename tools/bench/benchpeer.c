/* benchpeer: see benchpeer.h. */
#include "benchpeer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "benchlib.h"
#include "plat/keys.h"
#include "plat/plat.h"

struct bench_peer {
    void *sock;
    char id[PLAT_ID_MAX + 1];
    char boot_id[PLAT_UUID_LEN + 1];
    uint64_t seq;
    uint64_t pings;
    char endpoint[256];
};

bench_peer_t *bench_peer_new(void *zctx, const char *endpoint, const char *id,
                             const char *server_z85)
{
    bench_peer_t *p = calloc(1, sizeof *p);
    if (!p)
        bench_fail("out of memory");
    if (id) {
        snprintf(p->id, sizeof p->id, "%s", id);
    } else {
        char uuid[PLAT_UUID_LEN + 1];
        if (plat_uuid_new(uuid) < 0)
            bench_fail("cannot make a uuid");
        snprintf(p->id, sizeof p->id, "host-%s", uuid);
    }
    if (plat_uuid_new(p->boot_id) < 0)
        bench_fail("cannot make a boot id");
    p->sock = zmq_socket(zctx, ZMQ_DEALER);
    int linger = 0, hwm = 100000;
    snprintf(p->endpoint, sizeof p->endpoint, "%s", endpoint);
    char route[PLAT_ID_MAX + 1];
    if (plat_route_new(p->id, route) < 0)
        bench_fail("peer %s: cannot make a route", p->id);
    if (!p->sock || zmq_setsockopt(p->sock, ZMQ_ROUTING_ID, route, strlen(route)) != 0 ||
        zmq_setsockopt(p->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(p->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(p->sock, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0)
        bench_fail("peer %s: socket: %s", p->id, zmq_strerror(zmq_errno()));
    if (server_z85) {
        plat_keypair_t kp;
        int rc = plat_keys_new(&kp);
        if (rc < 0)
            bench_fail("peer %s: cannot make a key pair: %s", p->id, strerror(-rc));
        if (zmq_setsockopt(p->sock, ZMQ_CURVE_SERVERKEY, server_z85, PLAT_KEY_Z85_LEN) != 0 ||
            zmq_setsockopt(p->sock, ZMQ_CURVE_PUBLICKEY, kp.public_z85, PLAT_KEY_Z85_LEN) != 0 ||
            zmq_setsockopt(p->sock, ZMQ_CURVE_SECRETKEY, kp.secret_z85, PLAT_KEY_Z85_LEN) != 0)
            bench_fail("peer %s: CURVE: %s", p->id, zmq_strerror(zmq_errno()));
        bench_authorize(p->id, kp.public_z85);
        plat_keys_wipe(&kp);
    }
    return p;
}

void bench_peer_connect(bench_peer_t *p)
{
    bench_authorized_flush();
    if (zmq_connect(p->sock, p->endpoint) != 0)
        bench_fail("peer %s: cannot connect to %s: %s", p->id, p->endpoint,
                   zmq_strerror(zmq_errno()));
}

void bench_peer_destroy(bench_peer_t **pp)
{
    if (!pp || !*pp)
        return;
    zmq_close((*pp)->sock);
    free(*pp);
    *pp = NULL;
}

const char *bench_peer_id(const bench_peer_t *p)
{
    return p->id;
}

void *bench_peer_socket(bench_peer_t *p)
{
    return p->sock;
}

uint64_t bench_peer_pings(const bench_peer_t *p)
{
    return p->pings;
}

/* Replace a protobuf-c string field (static empty default or ours). */
static void set_str(char **field, const char *v)
{
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = strdup(v);
    if (!*field)
        bench_fail("out of memory");
}

static Plat__Endpoint *endpoint_of(Plat__Endpoint **e)
{
    if (!*e) {
        *e = malloc(sizeof **e);
        if (!*e)
            bench_fail("out of memory");
        plat__endpoint__init(*e);
    }
    return *e;
}

uint64_t bench_peer_send(bench_peer_t *p, Plat__PlatformMessage *m, const char *dst,
                         Plat__MessageKind kind, uint64_t seq_no)
{
    if (!m->header) {
        m->header = malloc(sizeof *m->header);
        if (!m->header)
            bench_fail("out of memory");
        plat__header__init(m->header);
    }
    Plat__Header *h = m->header;
    set_str(&endpoint_of(&h->source)->id, p->id);
    set_str(&endpoint_of(&h->destination)->id, dst);
    set_str(&h->boot_id, p->boot_id);
    h->seq_no = seq_no ? seq_no : ++p->seq;
    h->kind = kind;
    h->sent_at_ms = plat_now_ms();
    h->timeout_ms = kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST ? 10000 : 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = plat_envelope_encode(m, 0, &buf, &len);
    if (rc < 0)
        bench_fail("peer %s: encode: %s", p->id, strerror(-rc));
    if (zmq_send(p->sock, buf, len, 0) != (int)len)
        bench_fail("peer %s: send: %s", p->id, zmq_strerror(zmq_errno()));
    free(buf);
    return h->seq_no;
}

static bool is_control(const Plat__PlatformMessage *m, Plat__ControlMessage__BodyCase c)
{
    return m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL && m->control &&
           m->control->body_case == c;
}

int bench_peer_recv(bench_peer_t *p, Plat__PlatformMessage **out)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, p->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        if (zmq_errno() == EAGAIN)
            return 0;
        bench_fail("peer %s: recv: %s", p->id, zmq_strerror(zmq_errno()));
    }
    Plat__PlatformMessage *m = NULL;
    const char *why = NULL;
    int rc = plat_envelope_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), 0, &m, &why);
    zmq_msg_close(&msg);
    if (rc < 0)
        bench_fail("peer %s: undecodable message: %s (%s)", p->id, strerror(-rc), why ? why : "-");
    if (is_control(m, PLAT__CONTROL_MESSAGE__BODY_PING) &&
        m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST) {
        Plat__PlatformMessage *pong = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
        if (!pong)
            bench_fail("out of memory");
        bench_peer_send(p, pong, m->header->source->id, PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY,
                        m->header->seq_no);
        plat_envelope_free(&pong);
        plat_envelope_free(&m);
        p->pings++;
        return 0;
    }
    *out = m;
    return 1;
}

void bench_peer_register(bench_peer_t *p, int timeout_ms)
{
    Plat__PlatformMessage *r =
        plat_msg_host_ready(p->id, (int32_t)getpid(), "c", "1", "dev", PLAT_VERSION, 1);
    if (!r)
        bench_fail("out of memory");
    uint64_t seq =
        bench_peer_send(p, r, PLAT_PLATFORM_ID, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST, 0);
    plat_envelope_free(&r);
    uint64_t t0 = bench_now_ns();
    while (bench_ms_since(t0) < timeout_ms) {
        bench_check_alive();
        zmq_pollitem_t it = {.socket = p->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 50) < 0 && zmq_errno() != EINTR)
            bench_fail("poll: %s", zmq_strerror(zmq_errno()));
        Plat__PlatformMessage *m = NULL;
        while (bench_peer_recv(p, &m) == 1) {
            bool ack = m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY &&
                       m->header->seq_no == seq;
            const Plat__ErrorMessage *e = m->header->error;
            if (ack && e && e->code != 0)
                bench_fail("peer %s: registration refused: %s (%s)", p->id, e->message, e->detail);
            plat_envelope_free(&m);
            if (ack)
                return;
        }
    }
    bench_fail("peer %s: no register_ack within %d ms", p->id, timeout_ms);
}
