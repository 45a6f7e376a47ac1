/* The tracing switch: which ids are traced, matching, one log line per
 * traced message. See trace.h. */
#include "trace.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Requests of a traced instance whose reply is still to come: replies
 * carry no instance field, so they are matched by (peer, seq_no, the
 * direction the reply will travel). A small ring: a reply that comes after
 * PD_TRACE_PENDING later traced requests is not traced. */
#define PD_TRACE_PENDING 256

typedef struct {
    char peer[PLAT_ID_MAX + 1];
    uint64_t seq;
    bool reply_is_tx; /* the reply is sent by the platform */
    char instance[PLAT_UUID_LEN + 1];
} pending_t;

struct pd_trace {
    char instances[PD_TRACE_MAX][PLAT_UUID_LEN + 1];
    size_t n_instances;
    char hosts[PD_TRACE_MAX][PLAT_ID_MAX + 1];
    size_t n_hosts;
    pending_t pending[PD_TRACE_PENDING];
    size_t next_pending;
};

pd_trace_t *pd_trace_new(void) { return calloc(1, sizeof(pd_trace_t)); }

void pd_trace_destroy(pd_trace_t **t)
{
    if (!t || !*t)
        return;
    free(*t);
    *t = NULL;
}

/* Index of `id` in the kind's list, -1 when absent. */
static int find(const pd_trace_t *t, pd_trace_kind_t kind, const char *id)
{
    size_t n = kind == PD_TRACE_INSTANCE ? t->n_instances : t->n_hosts;
    for (size_t i = 0; i < n; i++) {
        const char *have = kind == PD_TRACE_INSTANCE ? t->instances[i] : t->hosts[i];
        if (strcmp(have, id) == 0)
            return (int)i;
    }
    return -1;
}

bool pd_trace_is_on(const pd_trace_t *t, pd_trace_kind_t kind, const char *id)
{
    return t && id && find(t, kind, id) >= 0;
}

int pd_trace_set(pd_trace_t *t, pd_trace_kind_t kind, const char *id, bool on)
{
    if (!t || !id)
        return -EINVAL;
    if (kind == PD_TRACE_INSTANCE ? !plat_uuid_valid(id) : plat_id_kind(id) != PLAT_ID_HOST)
        return -EINVAL;
    int at = find(t, kind, id);
    size_t *n = kind == PD_TRACE_INSTANCE ? &t->n_instances : &t->n_hosts;
    if (on) {
        if (at >= 0)
            return 0;
        if (*n == PD_TRACE_MAX)
            return -ENOSPC;
        if (kind == PD_TRACE_INSTANCE)
            snprintf(t->instances[*n], sizeof t->instances[0], "%s", id);
        else
            snprintf(t->hosts[*n], sizeof t->hosts[0], "%s", id);
        (*n)++;
        return 0;
    }
    if (at < 0)
        return 0;
    /* Keep the order: listings show ids in the order they were switched on. */
    if (kind == PD_TRACE_INSTANCE)
        memmove(t->instances[at], t->instances[at + 1],
                (*n - (size_t)at - 1) * sizeof t->instances[0]);
    else
        memmove(t->hosts[at], t->hosts[at + 1], (*n - (size_t)at - 1) * sizeof t->hosts[0]);
    (*n)--;
    return 0;
}

json_t *pd_trace_json(pd_t *pd)
{
    json_t *inst = json_array(), *hosts = json_array();
    const pd_trace_t *t = pd->trace;
    for (size_t i = 0; t && i < t->n_instances; i++)
        json_array_append_new(inst, json_string(t->instances[i]));
    for (size_t i = 0; t && i < t->n_hosts; i++)
        json_array_append_new(hosts, json_string(t->hosts[i]));
    return json_pack("{s:o, s:o, s:I}", "instances", inst, "hosts", hosts, "lines",
                     (json_int_t)pd->metrics.trace_lines);
}

const char *pd_trace_instance_of(const Plat__PlatformMessage *m)
{
    const char *id = NULL;
    switch (m->channel_case) {
    case PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN:
        if (!m->plugin)
            break;
        if (m->plugin->body_case == PLAT__PLUGIN_MESSAGE__BODY_EVENT && m->plugin->event)
            id = m->plugin->event->instance;
        else if (m->plugin->body_case == PLAT__PLUGIN_MESSAGE__BODY_ACTION && m->plugin->action)
            id = m->plugin->action->instance;
        break;
    case PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE:
        if (m->resource && m->resource->body_case == PLAT__RESOURCE_MESSAGE__BODY_REQUEST &&
            m->resource->request)
            id = m->resource->request->instance;
        break;
    case PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY:
        if (!m->ability)
            break;
        if (m->ability->body_case == PLAT__ABILITY_MESSAGE__BODY_REGISTER && m->ability->register_)
            id = m->ability->register_->instance;
        else if (m->ability->body_case == PLAT__ABILITY_MESSAGE__BODY_UNREGISTER &&
                 m->ability->unregister)
            id = m->ability->unregister->instance;
        else if (m->ability->body_case == PLAT__ABILITY_MESSAGE__BODY_TRIGGER &&
                 m->ability->trigger)
            id = m->ability->trigger->instance;
        break;
    default:
        break;
    }
    return id && *id ? id : NULL;
}

static const char *kind_name(Plat__MessageKind k)
{
    switch (k) {
    case PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST:
        return "request";
    case PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY:
        return "reply";
    default:
        return "event";
    }
}

static pending_t *find_pending(pd_trace_t *t, const char *peer, uint64_t seq, bool reply_is_tx)
{
    for (size_t i = 0; i < PD_TRACE_PENDING; i++) {
        pending_t *p = &t->pending[i];
        if (p->seq == seq && p->reply_is_tx == reply_is_tx && p->peer[0] &&
            strcmp(p->peer, peer) == 0)
            return p;
    }
    return NULL;
}

static void remember(pd_trace_t *t, const char *peer, uint64_t seq, bool reply_is_tx,
                     const char *instance)
{
    pending_t *p = &t->pending[t->next_pending];
    t->next_pending = (t->next_pending + 1) % PD_TRACE_PENDING;
    snprintf(p->peer, sizeof p->peer, "%s", peer);
    p->seq = seq;
    p->reply_is_tx = reply_is_tx;
    snprintf(p->instance, sizeof p->instance, "%s", instance);
}

/* The match that makes `m` traced ("instance:<uuid>" / "host:<id>"), or
 * false. `tx`: sent by the platform. Remembers traced requests so that
 * their replies match too. */
static bool match(pd_trace_t *t, const Plat__PlatformMessage *m, bool tx, char *why,
                  size_t size)
{
    const Plat__Header *h = m->header;
    const char *src = h->source->id, *dst = h->destination->id;
    /* The other end, seen from the platform. */
    const char *peer = tx ? dst : src;
    const char *inst = pd_trace_instance_of(m);
    bool traced = false;
    if (inst && find(t, PD_TRACE_INSTANCE, inst) >= 0) {
        snprintf(why, size, "instance:%s", inst);
        traced = true;
        if (h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
            remember(t, peer, h->seq_no, !tx, inst);
    } else if (h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY) {
        pending_t *p = find_pending(t, peer, h->seq_no, tx);
        if (p) {
            snprintf(why, size, "instance:%s", p->instance);
            p->peer[0] = 0; /* one reply per request */
            traced = find(t, PD_TRACE_INSTANCE, p->instance) >= 0;
        }
    }
    if (!traced && find(t, PD_TRACE_HOST, src) >= 0) {
        snprintf(why, size, "host:%s", src);
        traced = true;
    } else if (!traced && find(t, PD_TRACE_HOST, dst) >= 0) {
        snprintf(why, size, "host:%s", dst);
        traced = true;
    }
    return traced;
}

static void trace(pd_t *pd, const Plat__PlatformMessage *m, size_t size, bool tx)
{
    pd_trace_t *t = pd->trace;
    if (!t || (t->n_instances == 0 && t->n_hosts == 0) || !m || !m->header ||
        !m->header->source || !m->header->destination)
        return;
    char why[PLAT_ID_MAX + 16];
    if (!match(t, m, tx, why, sizeof why))
        return;
    const Plat__Header *h = m->header;
    pd->metrics.trace_lines++;
    plat_log_info("trace", "message dir=%s source=%s destination=%s seq=%llu kind=%s channel=%s "
                           "size=%zu match=%s",
                  tx ? "tx" : "rx", h->source->id, h->destination->id,
                  (unsigned long long)h->seq_no, kind_name(h->kind),
                  plat_channel_name(m->channel_case), size, why);
}

void pd_trace_rx(pd_t *pd, const Plat__PlatformMessage *m, size_t size)
{
    trace(pd, m, size, false);
}

void pd_trace_tx(pd_t *pd, const Plat__PlatformMessage *m, size_t size)
{
    trace(pd, m, size, true);
}

void pd_trace_on_tx(plat_bus_t *bus, const Plat__PlatformMessage *m, size_t size, void *arg)
{
    (void)bus;
    trace(arg, m, size, true);
}

void pd_trace_on_reply(const char *peer, uint64_t seq, const Plat__PlatformMessage *reply,
                       void *arg)
{
    (void)peer;
    (void)seq;
    pd_t *pd = arg;
    if (reply && pd->trace && (pd->trace->n_instances || pd->trace->n_hosts))
        trace(pd, reply, plat__platform_message__get_packed_size(reply), false);
}
