/* benchpeer: a bus peer for the benchmark drivers — a plain ZeroMQ DEALER
 * that speaks the real envelope (libplatcommon builders and codec), as a
 * plugin host would, without a libuv loop: the drivers poll many of them
 * from one thread and count every message.
 *
 * A peer registers as a dev host (Control.ready, REQUEST; the platform
 * answers register_ack) and answers the platform's pings with pongs in
 * bench_peer_recv, so it stays "ready" for as long as the driver polls it.
 *
 * With CURVE (the platform's default) a peer is a CURVE client with a key
 * pair of its own, authorized for its id in platformd's authorized keys
 * file, as an operator authorizes a dev host (docs/security.md). Create
 * many peers first, then connect them: the file is written once, by the
 * first bench_peer_connect after keys were added. */
#ifndef PLAT_BENCHPEER_H
#define PLAT_BENCHPEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.pb-c.h"

typedef struct bench_peer bench_peer_t;

/* A DEALER with routing id `id` ("host-<uuid>"; NULL: a new random one)
 * for `endpoint`, not connected yet. `server_z85`: the platform's public key
 * (bench_platform_public_key()) — the peer gets a fresh key pair, set on
 * the socket and added to the authorized keys as `id` (bench_authorize);
 * NULL: a plaintext peer. Fails the run on error. */
bench_peer_t *bench_peer_new(void *zctx, const char *endpoint, const char *id,
                             const char *server_z85);

/* Writes the authorized keys file if keys were added (bench_authorized_flush),
 * then connects. Fails the run on error. */
void bench_peer_connect(bench_peer_t *p);
void bench_peer_destroy(bench_peer_t **p);

const char *bench_peer_id(const bench_peer_t *p);
void *bench_peer_socket(bench_peer_t *p);

/* Control.ready as a dev host, then wait (up to timeout_ms, answering
 * pings) for the register_ack. Fails the run otherwise. */
void bench_peer_register(bench_peer_t *p, int timeout_ms);

/* Fill the header (source = own id, destination `dst`, kind, seq_no —
 * 0: the next of this peer's counter — boot id, sent time) and send `m`
 * encoded; `m` stays the caller's. Returns the seq_no used. */
uint64_t bench_peer_send(bench_peer_t *p, Plat__PlatformMessage *m, const char *dst,
                         Plat__MessageKind kind, uint64_t seq_no);

/* Receive one message without blocking: 1 and *out (free with
 * plat_envelope_free) for anything but a ping; pings are answered with a
 * pong and counted, then 0 is returned; 0 when nothing is queued. Fails
 * the run on an undecodable message. */
int bench_peer_recv(bench_peer_t *p, Plat__PlatformMessage **out);

/* Pings answered so far. */
uint64_t bench_peer_pings(const bench_peer_t *p);

#endif
