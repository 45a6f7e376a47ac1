/* The bridge from hooks (threadpool workers) to the platform (loop thread). */
#include "platcall.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One call. Lives on the calling worker's stack: the loop thread must not
 * touch it once `done` is set (the worker returns and the frame is gone). */
typedef struct call {
    struct ph_platcall *pc;
    Plat__PlatformMessage *req;      /* until sent (the loop frees it) */
    Plat__PlatformMessage *reply;    /* copy of the REPLY, for the worker */
    int status;
    char err[256];
    bool done;
    int64_t seq;                     /* in flight: the bus seq_no */
    struct call *next;               /* queued (under lock) */
    struct call *in_prev, *in_next;  /* in flight (loop thread) */
} call_t;

struct ph_platcall {
    uv_loop_t *loop;
    uv_async_t async;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    call_t *head, *tail; /* queued, under lock */
    bool closed;         /* under lock */
    call_t *inflight;    /* loop thread */
    plat_link_t *link;   /* loop thread */
    uint32_t timeout_ms;
};

/* Loop thread: finish a call and wake its worker. */
static void complete(ph_platcall_t *pc, call_t *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void complete(ph_platcall_t *pc, call_t *c, int status, const char *fmt, ...)
{
    plat_envelope_free(&c->req);
    pthread_mutex_lock(&pc->lock);
    c->status = status;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, sizeof c->err, fmt, ap);
        va_end(ap);
    }
    c->done = true;
    pthread_cond_broadcast(&pc->cond);
    pthread_mutex_unlock(&pc->lock);
}

static void inflight_remove(ph_platcall_t *pc, call_t *c)
{
    if (c->in_prev)
        c->in_prev->in_next = c->in_next;
    else if (pc->inflight == c)
        pc->inflight = c->in_next;
    if (c->in_next)
        c->in_next->in_prev = c->in_prev;
    c->in_prev = c->in_next = NULL;
}

/* A faithful deep copy (the bus only lends the reply to the callback). */
static Plat__PlatformMessage *copy_message(const Plat__PlatformMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(&m->base);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return NULL;
    protobuf_c_message_pack(&m->base, buf);
    Plat__PlatformMessage *copy = plat__platform_message__unpack(NULL, len, buf);
    free(buf);
    return copy;
}

static void on_reply(int status, const Plat__PlatformMessage *reply, void *arg)
{
    call_t *c = arg;
    ph_platcall_t *pc = c->pc;
    inflight_remove(pc, c);
    if (status == -ETIMEDOUT) {
        complete(pc, c, status, "no answer from the platform within %u ms", pc->timeout_ms);
        return;
    }
    if (status == -ECANCELED) {
        complete(pc, c, status, "the plugin host is stopping");
        return;
    }
    if (status == -ENOTCONN) {
        complete(pc, c, status, "the plugin host lost the platform");
        return;
    }
    if (status < 0 || !reply) {
        complete(pc, c, status < 0 ? status : -EIO, "the platform call failed: %s",
                 strerror(status < 0 ? -status : EIO));
        return;
    }
    const Plat__ErrorMessage *e = reply->header ? reply->header->error : NULL;
    if (e && e->code != 0) {
        complete(pc, c, e->code < 0 ? e->code : -EIO, "%s%s%s",
                 e->message && e->message[0] ? e->message : "refused by the platform",
                 e->detail && e->detail[0] ? ": " : "", e->detail ? e->detail : "");
        return;
    }
    c->reply = copy_message(reply);
    if (!c->reply)
        complete(pc, c, -ENOMEM, "out of memory copying the platform's answer");
    else
        complete(pc, c, 0, NULL);
}

/* Loop thread: send one queued call, or fail it. */
static void send_call(ph_platcall_t *pc, call_t *c)
{
    if (!pc->link) {
        complete(pc, c, -ENOTCONN, "the plugin host has no link to the platform");
        return;
    }
    if (plat_link_state(pc->link) != PLAT_LINK_REGISTERED) {
        complete(pc, c, -ENOTCONN, "the plugin host is not registered with the platform (%s)",
                 plat_link_state_name(plat_link_state(pc->link)));
        return;
    }
    int64_t seq = plat_bus_request(plat_link_bus(pc->link), PLAT_PLATFORM_ID, c->req,
                                   pc->timeout_ms, on_reply, c);
    plat_envelope_free(&c->req);
    if (seq < 0) {
        complete(pc, c, (int)seq, "cannot send the request to the platform: %s",
                 strerror((int)-seq));
        return;
    }
    c->seq = seq;
    c->in_prev = NULL;
    c->in_next = pc->inflight;
    if (pc->inflight)
        pc->inflight->in_prev = c;
    pc->inflight = c;
}

static void on_async(uv_async_t *a)
{
    ph_platcall_t *pc = a->data;
    pthread_mutex_lock(&pc->lock);
    call_t *c = pc->head;
    pc->head = pc->tail = NULL;
    bool closed = pc->closed;
    pthread_mutex_unlock(&pc->lock);
    while (c) {
        call_t *next = c->next; /* read before completing */
        if (closed)
            complete(pc, c, -ECANCELED, "the plugin host is stopping");
        else
            send_call(pc, c);
        c = next;
    }
}

/* Fail every call in flight with `status` through the bus's synchronizer
 * (which runs on_reply once and forgets the request). */
static void fail_inflight(ph_platcall_t *pc, int status)
{
    while (pc->inflight) {
        call_t *c = pc->inflight;
        if (!pc->link || plat_sync_fail(plat_bus_sync(plat_link_bus(pc->link)), PLAT_PLATFORM_ID,
                                        (uint64_t)c->seq, status) < 0) {
            inflight_remove(pc, c);
            complete(pc, c, status, "%s",
                     status == -ECANCELED ? "the plugin host is stopping"
                                          : "the plugin host lost the platform");
        }
    }
}

ph_platcall_t *ph_platcall_new(uv_loop_t *loop, uint32_t timeout_ms)
{
    ph_platcall_t *pc = calloc(1, sizeof *pc);
    if (!pc)
        return NULL;
    pc->loop = loop;
    pc->timeout_ms = timeout_ms ? timeout_ms : PH_PLATCALL_TIMEOUT_MS;
    if (uv_async_init(loop, &pc->async, on_async) < 0) {
        free(pc);
        return NULL;
    }
    pc->async.data = pc;
    pthread_mutex_init(&pc->lock, NULL);
    pthread_cond_init(&pc->cond, NULL);
    return pc;
}

void ph_platcall_set_link(ph_platcall_t *pc, plat_link_t *link)
{
    if (pc)
        pc->link = link;
}

void ph_platcall_link_lost(ph_platcall_t *pc)
{
    if (pc)
        fail_inflight(pc, -ENOTCONN);
}

void ph_platcall_shutdown(ph_platcall_t *pc)
{
    if (!pc)
        return;
    pthread_mutex_lock(&pc->lock);
    pc->closed = true;
    call_t *c = pc->head;
    pc->head = pc->tail = NULL;
    pthread_mutex_unlock(&pc->lock);
    while (c) {
        call_t *next = c->next;
        complete(pc, c, -ECANCELED, "the plugin host is stopping");
        c = next;
    }
    fail_inflight(pc, -ECANCELED);
    pc->link = NULL;
}

static void on_closed(uv_handle_t *h)
{
    ph_platcall_t *pc = h->data;
    pthread_mutex_destroy(&pc->lock);
    pthread_cond_destroy(&pc->cond);
    free(pc);
}

void ph_platcall_free(ph_platcall_t **pp)
{
    if (!pp || !*pp)
        return;
    ph_platcall_t *pc = *pp;
    *pp = NULL;
    ph_platcall_shutdown(pc);
    uv_close((uv_handle_t *)&pc->async, on_closed);
}

int ph_platcall_call(ph_platcall_t *pc, Plat__PlatformMessage **req,
                     Plat__PlatformMessage **reply, char *err, size_t err_size)
{
    call_t c;
    memset(&c, 0, sizeof c);
    c.pc = pc;
    c.req = req ? *req : NULL;
    if (req)
        *req = NULL;
    if (reply)
        *reply = NULL;
    if (err && err_size)
        err[0] = '\0';
    if (!pc || !c.req) {
        plat_envelope_free(&c.req);
        if (err)
            snprintf(err, err_size, "%s",
                     pc ? "out of memory" : "this plugin runner has no link to the platform");
        return pc ? -ENOMEM : -ENOSYS;
    }
    pthread_mutex_lock(&pc->lock);
    if (pc->closed) {
        pthread_mutex_unlock(&pc->lock);
        plat_envelope_free(&c.req);
        if (err)
            snprintf(err, err_size, "the plugin host is stopping");
        return -ECANCELED;
    }
    if (pc->tail)
        pc->tail->next = &c;
    else
        pc->head = &c;
    pc->tail = &c;
    pthread_mutex_unlock(&pc->lock);
    uv_async_send(&pc->async);
    pthread_mutex_lock(&pc->lock);
    while (!c.done)
        pthread_cond_wait(&pc->cond, &pc->lock);
    pthread_mutex_unlock(&pc->lock);
    if (c.status < 0) {
        if (err)
            snprintf(err, err_size, "%s", c.err[0] ? c.err : strerror(-c.status));
        plat_envelope_free(&c.reply);
        return c.status;
    }
    if (reply)
        *reply = c.reply;
    else
        plat_envelope_free(&c.reply);
    return 0;
}
