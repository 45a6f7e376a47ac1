/* Pending requests keyed by (peer, seq_no), one uv timer each. */
#include "plat/sync.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "plat/id.h"

typedef struct {
    uv_timer_t timer;
    plat_sync_t *owner;
    char key[PLAT_ID_MAX + 24];
    size_t peer_len;
    plat_sync_cb cb;
    void *arg;
    uint64_t added_ns; /* uv_hrtime() at plat_sync_add */
} entry_t;

struct plat_sync {
    uv_loop_t *loop;
    zhashx_t *pending; /* key "peer\x1fseq" -> entry_t* (not owned by the hash) */
    bool destroying;
    plat_sync_stats_t stats;
    plat_sync_reply_observer observer;
    void *observer_arg;
};

const double plat_sync_bucket_le[PLAT_SYNC_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

static void count(plat_sync_t *s, const entry_t *e, int status)
{
    if (status == -ETIMEDOUT) {
        s->stats.timeouts++;
        return;
    }
    if (status != 0) {
        s->stats.failed++;
        return;
    }
    uint64_t now = uv_hrtime();
    uint64_t ns = now > e->added_ns ? now - e->added_ns : 0;
    double secs = (double)ns / 1e9;
    size_t b = 0;
    while (b < PLAT_SYNC_BUCKETS && secs > plat_sync_bucket_le[b])
        b++;
    s->stats.bucket[b]++;
    s->stats.replies++;
    s->stats.sum_ns += ns;
}

static void make_key(char *key, size_t size, const char *peer, uint64_t seq)
{
    snprintf(key, size, "%s\x1f%" PRIu64, peer, seq);
}

plat_sync_t *plat_sync_new(uv_loop_t *loop)
{
    plat_sync_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->pending = zhashx_new();
    if (!s->pending) {
        free(s);
        return NULL;
    }
    return s;
}

static void on_timer_closed(uv_handle_t *h) { free(h->data); }

/* Remove `e` from the table and run its callback once; its memory goes
 * with the timer's close callback. */
static void complete(entry_t *e, int status, const Plat__PlatformMessage *reply)
{
    plat_sync_t *s = e->owner;
    count(s, e, status);
    zhashx_delete(s->pending, e->key);
    uv_timer_stop(&e->timer);
    uv_close((uv_handle_t *)&e->timer, on_timer_closed);
    e->cb(status, reply, e->arg);
}

static void on_timeout(uv_timer_t *t)
{
    complete(t->data, -ETIMEDOUT, NULL);
}

int plat_sync_add(plat_sync_t *s, const char *peer, uint64_t seq, uint32_t timeout_ms,
                  plat_sync_cb cb, void *arg)
{
    if (!s || !peer || !*peer || strlen(peer) > PLAT_ID_MAX || !cb)
        return -EINVAL;
    if (s->destroying)
        return -ECANCELED;
    entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    make_key(e->key, sizeof e->key, peer, seq);
    if (zhashx_lookup(s->pending, e->key)) {
        free(e);
        return -EEXIST;
    }
    e->owner = s;
    e->peer_len = strlen(peer);
    e->cb = cb;
    e->arg = arg;
    e->added_ns = uv_hrtime();
    uv_timer_init(s->loop, &e->timer);
    e->timer.data = e;
    if (zhashx_insert(s->pending, e->key, e) != 0) {
        uv_close((uv_handle_t *)&e->timer, on_timer_closed);
        return -ENOMEM;
    }
    uv_timer_start(&e->timer, on_timeout, timeout_ms, 0);
    s->stats.added++;
    return 0;
}

int plat_sync_resolve(plat_sync_t *s, const char *peer, uint64_t seq,
                      const Plat__PlatformMessage *reply)
{
    char key[PLAT_ID_MAX + 24];
    make_key(key, sizeof key, peer, seq);
    entry_t *e = zhashx_lookup(s->pending, key);
    if (!e)
        return -ENOENT;
    if (s->observer)
        s->observer(peer, seq, reply, s->observer_arg);
    complete(e, 0, reply);
    return 0;
}

int plat_sync_fail(plat_sync_t *s, const char *peer, uint64_t seq, int status)
{
    char key[PLAT_ID_MAX + 24];
    make_key(key, sizeof key, peer, seq);
    entry_t *e = zhashx_lookup(s->pending, key);
    if (!e)
        return -ENOENT;
    complete(e, status, NULL);
    return 0;
}

void plat_sync_fail_peer(plat_sync_t *s, const char *peer, int status)
{
    /* Collect first: callbacks may add or complete other entries. */
    zlistx_t *keys = zhashx_keys(s->pending);
    if (!keys)
        return;
    size_t plen = peer ? strlen(peer) : 0;
    for (const char *k = zlistx_first(keys); k; k = zlistx_next(keys)) {
        entry_t *e = zhashx_lookup(s->pending, k);
        if (!e)
            continue;
        if (peer && !(e->peer_len == plen && strncmp(e->key, peer, plen) == 0))
            continue;
        complete(e, status, NULL);
    }
    zlistx_destroy(&keys);
}

size_t plat_sync_pending(const plat_sync_t *s) { return s ? zhashx_size(s->pending) : 0; }

plat_sync_stats_t plat_sync_stats(const plat_sync_t *s)
{
    return s ? s->stats : (plat_sync_stats_t){0};
}

uint64_t plat_sync_oldest_pending_ms(const plat_sync_t *s)
{
    if (!s)
        return 0;
    uint64_t now = uv_hrtime(), oldest = now;
    for (entry_t *e = zhashx_first(s->pending); e; e = zhashx_next(s->pending))
        if (e->added_ns < oldest)
            oldest = e->added_ns;
    return (now - oldest) / 1000000u;
}

void plat_sync_set_reply_observer(plat_sync_t *s, plat_sync_reply_observer fn, void *arg)
{
    if (!s)
        return;
    s->observer = fn;
    s->observer_arg = arg;
}

void plat_sync_destroy(plat_sync_t **sp)
{
    if (!sp || !*sp)
        return;
    plat_sync_t *s = *sp;
    *sp = NULL;
    s->destroying = true;
    plat_sync_fail_peer(s, NULL, -ECANCELED);
    zhashx_destroy(&s->pending);
    free(s);
}
