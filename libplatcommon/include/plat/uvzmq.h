/* The one adapter between a libuv loop and a ZeroMQ socket.
 *
 * ZMQ_FD is edge-triggered and is only a wake-up hint: after any send or
 * receive the socket may hold messages without the fd firing again. Shape:
 * a uv_poll on ZMQ_FD only wakes the loop; a uv_check reads ZMQ_EVENTS and
 * calls `read_cb` while ZMQ_POLLIN is set, up to `budget` messages per loop
 * iteration; a uv_prepare starts a uv_idle (so the loop does not block) when
 * ZMQ_EVENTS still shows input after the budget ran out. ZMQ_FD is never
 * read or closed here. Loop thread only. */
#ifndef PLAT_UVZMQ_H
#define PLAT_UVZMQ_H

#include <uv.h>

typedef struct plat_uvzmq plat_uvzmq_t;

/* Receive at most one message with ZMQ_DONTWAIT. Return 1 when one was
 * consumed, 0 when none was waiting (EAGAIN), a negative errno on a socket
 * error (the adapter stops draining for this iteration). */
typedef int (*plat_uvzmq_read_cb)(void *arg);

/* Watch libzmq socket `zsocket` on `loop`. `budget` 0 = 256. The watcher is
 * active at once. NULL on failure. */
plat_uvzmq_t *plat_uvzmq_new(uv_loop_t *loop, void *zsocket, unsigned budget,
                             plat_uvzmq_read_cb read_cb, void *arg);

/* Call after sending on the socket: re-checks ZMQ_EVENTS on the next loop
 * iteration so input that arrived meanwhile is not stranded. Cheap. (The
 * uv_prepare re-checks before every block anyway; the kick is a hint.) */
void plat_uvzmq_kick(plat_uvzmq_t *w);

/* Stop and uv_close every handle; memory is freed by the close callbacks,
 * so the loop must run once more. The socket may be destroyed right after
 * this returns. NULL-safe; sets *w = NULL. */
void plat_uvzmq_close(plat_uvzmq_t **w);

#endif
