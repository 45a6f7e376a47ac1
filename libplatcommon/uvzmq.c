/* The one libuv <-> ZeroMQ adapter. See uvzmq.h for the shape. */
#include "plat/uvzmq.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <zmq.h>

#include "plat/log.h"

struct plat_uvzmq {
    void *zsock;
    unsigned budget;
    plat_uvzmq_read_cb read_cb;
    void *arg;
    uv_poll_t poll;
    uv_check_t check;
    uv_prepare_t prepare;
    uv_idle_t idle;
    int open_handles;
    bool closing;
};

static bool readable(plat_uvzmq_t *w)
{
    int events = 0;
    size_t len = sizeof events;
    if (zmq_getsockopt(w->zsock, ZMQ_EVENTS, &events, &len) != 0)
        return false;
    return (events & ZMQ_POLLIN) != 0;
}

/* Read up to the budget; the owner's callback may close us meanwhile. */
static void drain(plat_uvzmq_t *w)
{
    for (unsigned i = 0; i < w->budget && !w->closing; i++) {
        int rc = w->read_cb(w->arg);
        if (rc <= 0) {
            if (rc < 0 && rc != -EAGAIN)
                plat_log_warn("uvzmq", "socket read failed: %s", zmq_strerror(-rc));
            return;
        }
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)events;
    /* Only a wake-up: the check handle after this poll phase drains. On an
     * error libuv has stopped the poll, and input would only be seen when
     * something else wakes the loop: say so (never seen with libzmq's
     * eventfd/socketpair signaler). */
    if (status < 0)
        plat_log_err("uvzmq", "poll on ZMQ_FD failed, watcher stopped: %s", uv_strerror(status));
    (void)h;
}

static void on_check(uv_check_t *h)
{
    plat_uvzmq_t *w = h->data;
    drain(w);
}

static void on_idle(uv_idle_t *h) { (void)h; }

/* Runs right before the loop may block (after timers, pending and idle
 * callbacks; uv_backend_timeout is computed after it), so every send or
 * recv the owner did since the last look is covered: the invariant is "the
 * loop never blocks while ZMQ_EVENTS shows POLLIN", not "a kick after every
 * send" (tests/unit/test_uvzmq.c, the lost-wake-up tests). */
static void on_prepare(uv_prepare_t *h)
{
    plat_uvzmq_t *w = h->data;
    if (w->closing)
        return;
    /* Reading ZMQ_EVENTS also re-arms the edge-triggered ZMQ_FD. Input left
     * over (budget spent, or arrived while we were sending) must not wait
     * for an edge that will never come: keep the loop from blocking. */
    if (readable(w))
        uv_idle_start(&w->idle, on_idle);
    else
        uv_idle_stop(&w->idle);
}

plat_uvzmq_t *plat_uvzmq_new(uv_loop_t *loop, void *zsocket, unsigned budget,
                             plat_uvzmq_read_cb read_cb, void *arg)
{
    int fd = -1;
    size_t len = sizeof fd;
    if (!zsocket || !read_cb || zmq_getsockopt(zsocket, ZMQ_FD, &fd, &len) != 0) {
        errno = EINVAL;
        return NULL;
    }
    plat_uvzmq_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->zsock = zsocket;
    w->budget = budget ? budget : 256;
    w->read_cb = read_cb;
    w->arg = arg;
    int rc = uv_poll_init(loop, &w->poll, fd);
    if (rc != 0) {
        free(w);
        errno = -rc;
        return NULL;
    }
    uv_check_init(loop, &w->check);
    uv_prepare_init(loop, &w->prepare);
    uv_idle_init(loop, &w->idle);
    w->poll.data = w->check.data = w->prepare.data = w->idle.data = w;
    w->open_handles = 4;
    uv_poll_start(&w->poll, UV_READABLE, on_poll);
    uv_check_start(&w->check, on_check);
    uv_prepare_start(&w->prepare, on_prepare);
    /* Messages may already be queued: look once before blocking. */
    uv_idle_start(&w->idle, on_idle);
    return w;
}

void plat_uvzmq_kick(plat_uvzmq_t *w)
{
    if (w && !w->closing)
        uv_idle_start(&w->idle, on_idle);
}

static void on_closed(uv_handle_t *h)
{
    plat_uvzmq_t *w = h->data;
    if (--w->open_handles == 0)
        free(w);
}

void plat_uvzmq_close(plat_uvzmq_t **wp)
{
    if (!wp || !*wp)
        return;
    plat_uvzmq_t *w = *wp;
    *wp = NULL;
    w->closing = true;
    uv_close((uv_handle_t *)&w->poll, on_closed);
    uv_close((uv_handle_t *)&w->check, on_closed);
    uv_close((uv_handle_t *)&w->prepare, on_closed);
    uv_close((uv_handle_t *)&w->idle, on_closed);
}
