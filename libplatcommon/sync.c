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
} entry_t;

struct plat_sync {
    uv_loop_t *loop;
    zhashx_t *pending; /* key "peer\x1fseq" -> entry_t* (not owned by the hash) */
    bool destroying;
};

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
    uv_timer_init(s->loop, &e->timer);
    e->timer.data = e;
    if (zhashx_insert(s->pending, e->key, e) != 0) {
        uv_close((uv_handle_t *)&e->timer, on_timer_closed);
        return -ENOMEM;
    }
    uv_timer_start(&e->timer, on_timeout, timeout_ms, 0);
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
