/* Host modes and the host<->instances map: two sorted arrays of owned
 * records (bsearch by id). Instances point at their host record; a host
 * record is freed only after every instance left it. Sizes are hundreds,
 * so per-host listings just scan the instance array. */
#include "modes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct host {
    char id[PD_HOSTMAP_ID_MAX + 1];
    char language[PD_HOSTMAP_FIELD_MAX + 1];
    char version[PD_HOSTMAP_FIELD_MAX + 1];
    pd_mode_t mode;
    bool retiring;          /* being deleted: never chosen, no attach */
    size_t n_instances;     /* attached instances */
    size_t n_running;       /* of which running */
    size_t n_busy;          /* of which with an action in flight */
    uint64_t added_ms;      /* when added */
    uint64_t idle_since_ms; /* last transition to idle (no running, no busy) */
} host_t;

typedef struct inst {
    char id[PD_HOSTMAP_ID_MAX + 1];
    host_t *host; /* never NULL: an instance record exists only while attached */
    bool running; /* counted in host->n_running */
    bool busy;    /* counted in host->n_busy */
} inst_t;

/* A sorted array of pointers to records whose first member is the id. */
typedef struct {
    void **items;
    size_t n, cap;
} vec_t;

struct pd_hostmap {
    vec_t hosts;     /* host_t *, sorted by id */
    vec_t instances; /* inst_t *, sorted by id */
};

/* ---- names ----------------------------------------------------------- */

static const char *const mode_names[] = {
    [PD_MODE_HIGH_PERFORMANCE] = "highPerformance",
    [PD_MODE_POWER_SAVE] = "powerSave",
    [PD_MODE_DEV] = "dev",
};

static const char *const action_names[PD_ACTION_COUNT] = {
    [PD_ACTION_INSTALL] = "install", [PD_ACTION_UNINSTALL] = "uninstall",
    [PD_ACTION_ENABLE] = "enable",   [PD_ACTION_DISABLE] = "disable",
    [PD_ACTION_UPGRADE] = "upgrade", [PD_ACTION_START] = "start",
    [PD_ACTION_STOP] = "stop",
};

#define N_MODES (sizeof(mode_names) / sizeof(mode_names[0]))

static bool mode_ok(pd_mode_t m)
{
    return (unsigned)m < N_MODES;
}

static bool action_ok(pd_action_t a)
{
    return (unsigned)a < PD_ACTION_COUNT;
}

int pd_mode_parse(const char *s, pd_mode_t *out)
{
    if (!out)
        return -EINVAL;
    if (!s || !*s) {
        *out = PD_MODE_HIGH_PERFORMANCE;
        return 0;
    }
    for (size_t i = 0; i < N_MODES; i++)
        if (strcmp(s, mode_names[i]) == 0) {
            *out = (pd_mode_t)i;
            return 0;
        }
    return -EINVAL;
}

const char *pd_mode_name(pd_mode_t mode)
{
    return mode_ok(mode) ? mode_names[mode] : "?";
}

int pd_action_parse(const char *s, pd_action_t *out)
{
    if (!s || !out)
        return -EINVAL;
    for (size_t i = 0; i < PD_ACTION_COUNT; i++)
        if (strcmp(s, action_names[i]) == 0) {
            *out = (pd_action_t)i;
            return 0;
        }
    return -EINVAL;
}

const char *pd_action_name(pd_action_t action)
{
    return action_ok(action) ? action_names[action] : "?";
}

/* ---- id lists ---------------------------------------------------------- */

void pd_idlist_clear(pd_idlist_t *l)
{
    if (!l)
        return;
    free(l->ids);
    l->ids = NULL;
    l->n = l->cap = 0;
}

/* Make room for `more` further ids. 0 or -ENOMEM (list unchanged). */
static int idlist_reserve(pd_idlist_t *l, size_t more)
{
    if (!l || l->cap - l->n >= more)
        return 0;
    size_t cap = l->cap ? l->cap : 8;
    while (cap - l->n < more)
        cap *= 2;
    void *p = realloc(l->ids, cap * sizeof(*l->ids));
    if (!p)
        return -ENOMEM;
    l->ids = p;
    l->cap = cap;
    return 0;
}

/* Append after a successful reserve. */
static void idlist_push(pd_idlist_t *l, const char *id)
{
    if (l)
        snprintf(l->ids[l->n++], sizeof(l->ids[0]), "%s", id);
}

/* ---- sorted vectors ---------------------------------------------------- */

/* Records start with their id (char[]), so the pointer is the id. */
static const char *item_id(const void *item)
{
    return (const char *)item;
}

/* Index of `id`, or -(insertion point) - 1. */
static ptrdiff_t vec_search(const vec_t *v, const char *id)
{
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(item_id(v->items[mid]), id);
        if (c == 0)
            return (ptrdiff_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(ptrdiff_t)lo - 1;
}

static void *vec_find(const vec_t *v, const char *id)
{
    ptrdiff_t i = vec_search(v, id);
    return i >= 0 ? v->items[i] : NULL;
}

/* Insert `item` at position `at` (from vec_search). 0 or -ENOMEM. */
static int vec_insert(vec_t *v, size_t at, void *item)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void **p = realloc(v->items, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        v->items = p;
        v->cap = cap;
    }
    memmove(&v->items[at + 1], &v->items[at], (v->n - at) * sizeof(*v->items));
    v->items[at] = item;
    v->n++;
    return 0;
}

static void vec_remove_at(vec_t *v, size_t at)
{
    memmove(&v->items[at], &v->items[at + 1], (v->n - at - 1) * sizeof(*v->items));
    v->n--;
}

/* ---- the map ----------------------------------------------------------- */

pd_hostmap_t *pd_hostmap_new(void)
{
    return calloc(1, sizeof(pd_hostmap_t));
}

void pd_hostmap_destroy(pd_hostmap_t **map)
{
    if (!map || !*map)
        return;
    pd_hostmap_t *m = *map;
    for (size_t i = 0; i < m->instances.n; i++)
        free(m->instances.items[i]);
    for (size_t i = 0; i < m->hosts.n; i++)
        free(m->hosts.items[i]);
    free(m->instances.items);
    free(m->hosts.items);
    free(m);
    *map = NULL;
}

static bool host_id_ok(const char *id)
{
    return plat_id_kind(id) == PLAT_ID_HOST;
}

static bool instance_id_ok(const char *id)
{
    return id && plat_uuid_valid(id);
}

static bool field_ok(const char *s)
{
    return s && *s && strlen(s) <= PD_HOSTMAP_FIELD_MAX;
}

static bool host_idle(const host_t *h)
{
    return h->n_running == 0 && h->n_busy == 0;
}

/* Call after changing h's counters: start the idle clock when it just
 * became idle. */
static void host_note(host_t *h, bool was_idle, uint64_t now_ms)
{
    if (!was_idle && host_idle(h))
        h->idle_since_ms = now_ms;
}

static host_t *find_host(const pd_hostmap_t *map, const char *id)
{
    return id ? vec_find(&map->hosts, id) : NULL;
}

static inst_t *find_inst(const pd_hostmap_t *map, const char *id)
{
    return id ? vec_find(&map->instances, id) : NULL;
}

int pd_hostmap_add_host(pd_hostmap_t *map, const char *host_id, const char *language,
                        const char *version, pd_mode_t mode, uint64_t now_ms)
{
    if (!map || !host_id_ok(host_id) || !field_ok(language) || !field_ok(version) || !mode_ok(mode))
        return -EINVAL;
    ptrdiff_t at = vec_search(&map->hosts, host_id);
    if (at >= 0)
        return -EEXIST;
    host_t *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    snprintf(h->id, sizeof(h->id), "%s", host_id);
    snprintf(h->language, sizeof(h->language), "%s", language);
    snprintf(h->version, sizeof(h->version), "%s", version);
    h->mode = mode;
    h->added_ms = now_ms;
    h->idle_since_ms = now_ms;
    if (vec_insert(&map->hosts, (size_t)(-at - 1), h) < 0) {
        free(h);
        return -ENOMEM;
    }
    return 0;
}

/* Remove the instance at index `i` of map->instances and update its host. */
static void drop_instance_at(pd_hostmap_t *map, size_t i, uint64_t now_ms)
{
    inst_t *in = map->instances.items[i];
    host_t *h = in->host;
    bool was_idle = host_idle(h);
    h->n_instances--;
    if (in->running)
        h->n_running--;
    if (in->busy)
        h->n_busy--;
    host_note(h, was_idle, now_ms);
    vec_remove_at(&map->instances, i);
    free(in);
}

/* Detach every instance of `h` (ids appended to `out`). -ENOMEM before any
 * change when `out` cannot hold them. Returns the number detached. The idle
 * clock is left alone when the host was already idle; a host losing its
 * last running instance here goes idle at `now_ms`. */
static int detach_all(pd_hostmap_t *map, host_t *h, pd_idlist_t *out, uint64_t now_ms)
{
    if (idlist_reserve(out, h->n_instances) < 0)
        return -ENOMEM;
    int n = 0;
    for (size_t i = 0; i < map->instances.n;) {
        inst_t *in = map->instances.items[i];
        if (in->host != h) {
            i++;
            continue;
        }
        idlist_push(out, in->id);
        drop_instance_at(map, i, now_ms);
        n++;
    }
    return n;
}

int pd_hostmap_remove_host(pd_hostmap_t *map, const char *host_id, pd_idlist_t *detached)
{
    if (!map || !host_id_ok(host_id))
        return -EINVAL;
    ptrdiff_t at = vec_search(&map->hosts, host_id);
    if (at < 0)
        return -ENOENT;
    host_t *h = map->hosts.items[at];
    int n = detach_all(map, h, detached, 0);
    if (n < 0)
        return n;
    vec_remove_at(&map->hosts, (size_t)at);
    free(h);
    return n;
}

int pd_hostmap_retire(pd_hostmap_t *map, const char *host_id, pd_idlist_t *detached)
{
    if (!map || !host_id_ok(host_id))
        return -EINVAL;
    host_t *h = find_host(map, host_id);
    if (!h)
        return -ENOENT;
    /* The idle clock of a retiring host no longer matters. */
    int n = detach_all(map, h, detached, h->idle_since_ms);
    if (n >= 0)
        h->retiring = true;
    return n;
}

/* Can a new instance be attached to `h`? 0 or the attach error. */
static int attach_check(const host_t *h)
{
    if (h->retiring)
        return -ESHUTDOWN;
    /* highPerformance: one instance per host. */
    if (h->mode == PD_MODE_HIGH_PERFORMANCE && h->n_instances > 0)
        return -EBUSY;
    return 0;
}

/* Attach (no checks beyond allocation) with the given marks. */
static int do_attach(pd_hostmap_t *map, size_t at, const char *instance_id, host_t *h, bool running,
                     bool busy, uint64_t now_ms)
{
    inst_t *in = calloc(1, sizeof(*in));
    if (!in)
        return -ENOMEM;
    snprintf(in->id, sizeof(in->id), "%s", instance_id);
    in->host = h;
    in->running = running;
    in->busy = busy;
    if (vec_insert(&map->instances, at, in) < 0) {
        free(in);
        return -ENOMEM;
    }
    bool was_idle = host_idle(h);
    h->n_instances++;
    h->n_running += running;
    h->n_busy += busy;
    host_note(h, was_idle, now_ms);
    return 0;
}

int pd_hostmap_attach(pd_hostmap_t *map, const char *instance_id, const char *host_id, bool running,
                      uint64_t now_ms)
{
    if (!map || !instance_id_ok(instance_id) || !host_id_ok(host_id))
        return -EINVAL;
    host_t *h = find_host(map, host_id);
    if (!h)
        return -ENOENT;
    ptrdiff_t at = vec_search(&map->instances, instance_id);
    if (at >= 0)
        return -EEXIST;
    int rc = attach_check(h);
    if (rc < 0)
        return rc;
    return do_attach(map, (size_t)(-at - 1), instance_id, h, running, false, now_ms);
}

int pd_hostmap_detach(pd_hostmap_t *map, const char *instance_id, uint64_t now_ms)
{
    if (!map || !instance_id_ok(instance_id))
        return -EINVAL;
    ptrdiff_t at = vec_search(&map->instances, instance_id);
    if (at < 0)
        return -ENOENT;
    drop_instance_at(map, (size_t)at, now_ms);
    return 0;
}

int pd_hostmap_set_running(pd_hostmap_t *map, const char *instance_id, bool running,
                           uint64_t now_ms)
{
    if (!map || !instance_id_ok(instance_id))
        return -EINVAL;
    inst_t *in = find_inst(map, instance_id);
    if (!in)
        return -ENOENT;
    if (in->running == running)
        return 0;
    host_t *h = in->host;
    bool was_idle = host_idle(h);
    in->running = running;
    if (running)
        h->n_running++;
    else
        h->n_running--;
    host_note(h, was_idle, now_ms);
    return 0;
}

int pd_hostmap_begin(pd_hostmap_t *map, const char *instance_id, const char *host_id,
                     uint64_t now_ms)
{
    if (!map || !instance_id_ok(instance_id) || !host_id_ok(host_id))
        return -EINVAL;
    host_t *h = find_host(map, host_id);
    if (!h)
        return -ENOENT;
    ptrdiff_t at = vec_search(&map->instances, instance_id);
    if (at >= 0) {
        inst_t *in = map->instances.items[at];
        if (in->host != h)
            return -EEXIST;
        if (in->busy)
            return -EALREADY;
        bool was_idle = host_idle(h);
        in->busy = true;
        h->n_busy++;
        host_note(h, was_idle, now_ms);
        return 0;
    }
    int rc = attach_check(h);
    if (rc < 0)
        return rc;
    return do_attach(map, (size_t)(-at - 1), instance_id, h, false, true, now_ms);
}

int pd_hostmap_end(pd_hostmap_t *map, const char *instance_id, uint64_t now_ms)
{
    if (!map || !instance_id_ok(instance_id))
        return -EINVAL;
    inst_t *in = find_inst(map, instance_id);
    if (!in)
        return -ENOENT;
    if (!in->busy)
        return 0;
    host_t *h = in->host;
    bool was_idle = host_idle(h);
    in->busy = false;
    h->n_busy--;
    host_note(h, was_idle, now_ms);
    return 0;
}

int pd_hostmap_host_of(const pd_hostmap_t *map, const char *instance_id,
                       char out[PD_HOSTMAP_ID_MAX + 1])
{
    if (out)
        out[0] = '\0';
    if (!map || !out || !instance_id_ok(instance_id))
        return -EINVAL;
    const inst_t *in = find_inst(map, instance_id);
    if (!in)
        return -ENOENT;
    snprintf(out, PD_HOSTMAP_ID_MAX + 1, "%s", in->host->id);
    return 0;
}

int pd_hostmap_instance_info(const pd_hostmap_t *map, const char *instance_id,
                             pd_hostmap_instance_t *out)
{
    if (!map || !out || !instance_id_ok(instance_id))
        return -EINVAL;
    const inst_t *in = find_inst(map, instance_id);
    if (!in)
        return -ENOENT;
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", in->id);
    snprintf(out->host_id, sizeof(out->host_id), "%s", in->host->id);
    out->running = in->running;
    out->busy = in->busy;
    return 0;
}

int pd_hostmap_host_info(const pd_hostmap_t *map, const char *host_id, pd_hostmap_host_t *out)
{
    if (!map || !out || !host_id_ok(host_id))
        return -EINVAL;
    const host_t *h = find_host(map, host_id);
    if (!h)
        return -ENOENT;
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", h->id);
    snprintf(out->language, sizeof(out->language), "%s", h->language);
    snprintf(out->version, sizeof(out->version), "%s", h->version);
    out->mode = h->mode;
    out->retiring = h->retiring;
    out->n_instances = h->n_instances;
    out->n_running = h->n_running;
    out->n_busy = h->n_busy;
    out->added_ms = h->added_ms;
    out->idle = host_idle(h);
    out->idle_since_ms = h->idle_since_ms;
    return 0;
}

int pd_hostmap_instances(const pd_hostmap_t *map, const char *host_id, pd_idlist_t *out)
{
    if (!map || !host_id_ok(host_id))
        return -EINVAL;
    const host_t *h = find_host(map, host_id);
    if (!h)
        return -ENOENT;
    if (idlist_reserve(out, h->n_instances) < 0)
        return -ENOMEM;
    /* The instance array is sorted, so the output is in id order. */
    for (size_t i = 0; i < map->instances.n; i++) {
        const inst_t *in = map->instances.items[i];
        if (in->host == h)
            idlist_push(out, in->id);
    }
    return (int)h->n_instances;
}

int pd_hostmap_hosts(const pd_hostmap_t *map, pd_idlist_t *out)
{
    if (!map)
        return -EINVAL;
    if (idlist_reserve(out, map->hosts.n) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < map->hosts.n; i++)
        idlist_push(out, item_id(map->hosts.items[i]));
    return (int)map->hosts.n;
}

size_t pd_hostmap_n_hosts(const pd_hostmap_t *map)
{
    return map ? map->hosts.n : 0;
}

size_t pd_hostmap_n_instances(const pd_hostmap_t *map)
{
    return map ? map->instances.n : 0;
}

static bool idle_due(const host_t *h, uint64_t now_ms, uint64_t idle_ms)
{
    if (h->mode != PD_MODE_POWER_SAVE || h->retiring || !host_idle(h))
        return false;
    /* A clock going backwards (it should not: CLOCK_MONOTONIC) counts as not due. */
    return now_ms >= h->idle_since_ms && now_ms - h->idle_since_ms >= idle_ms;
}

int pd_hostmap_idle(const pd_hostmap_t *map, uint64_t now_ms, uint64_t idle_ms, pd_idlist_t *out)
{
    if (!map)
        return -EINVAL;
    size_t n = 0;
    for (size_t i = 0; i < map->hosts.n; i++)
        n += idle_due(map->hosts.items[i], now_ms, idle_ms);
    if (idlist_reserve(out, n) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < map->hosts.n; i++) {
        const host_t *h = map->hosts.items[i];
        if (idle_due(h, now_ms, idle_ms))
            idlist_push(out, h->id);
    }
    return (int)n;
}

/* ---- mode decisions ---------------------------------------------------- */

static pd_mode_choice_t choice_error(int error, const char *reason)
{
    pd_mode_choice_t c = {.kind = PD_CHOICE_ERROR, .error = error, .reason = reason};
    return c;
}

static void choice_use(pd_mode_choice_t *c, const char *host_id, bool attached)
{
    c->kind = PD_CHOICE_USE;
    snprintf(c->host_id, sizeof(c->host_id), "%s", host_id);
    c->attached = attached;
}

/* The instance leaves `own` (its current host, may be NULL). */
static void choice_leave(pd_mode_choice_t *c, const host_t *own)
{
    if (!own)
        return;
    snprintf(c->leave_host, sizeof(c->leave_host), "%s", own->id);
    c->kill_leave_host = own->mode == PD_MODE_HIGH_PERFORMANCE;
}

static bool same_runtime(const host_t *h, const char *language, const char *version)
{
    return strcmp(h->language, language) == 0 && strcmp(h->version, version) == 0;
}

/* The fullest non-retiring powerSave host of (language, version) with
 * room; ties to the smallest id (hosts are in id order, so the first
 * seen wins). NULL when none. */
static const host_t *pick_shared(const pd_hostmap_t *map, const char *language, const char *version,
                                 size_t max)
{
    const host_t *best = NULL;
    for (size_t i = 0; i < map->hosts.n; i++) {
        const host_t *h = map->hosts.items[i];
        if (h->mode != PD_MODE_POWER_SAVE || h->retiring || h->n_instances >= max ||
            !same_runtime(h, language, version))
            continue;
        if (!best || h->n_instances > best->n_instances)
            best = h;
    }
    return best;
}

pd_mode_choice_t pd_mode_choose(const pd_hostmap_t *map, pd_mode_t mode, pd_action_t action,
                                const char *instance_id, const char *language, const char *version,
                                const pd_mode_opts_t *opts, const char *const *dev_hosts,
                                size_t n_dev_hosts)
{
    if (!map || !mode_ok(mode) || !action_ok(action) || !instance_id_ok(instance_id) ||
        !field_ok(language) || !field_ok(version))
        return choice_error(-EINVAL, "invalid argument");
    const inst_t *in = find_inst(map, instance_id);
    const host_t *own = in ? in->host : NULL;
    pd_mode_choice_t c = {.kind = PD_CHOICE_SPAWN};

    switch (mode) {
    case PD_MODE_HIGH_PERFORMANCE:
        if ((action == PD_ACTION_START || action == PD_ACTION_STOP) && own &&
            own->mode == PD_MODE_HIGH_PERFORMANCE && !own->retiring &&
            same_runtime(own, language, version)) {
            choice_use(&c, own->id, true);
            return c;
        }
        choice_leave(&c, own);
        return c; /* SPAWN */

    case PD_MODE_POWER_SAVE: {
        if (!opts || opts->max_instances_per_host < 1)
            return choice_error(-EINVAL, "max_instances_per_host must be at least 1");
        if (own && own->mode == PD_MODE_POWER_SAVE && !own->retiring &&
            same_runtime(own, language, version)) {
            choice_use(&c, own->id, true);
            return c;
        }
        choice_leave(&c, own);
        const host_t *h = pick_shared(map, language, version, opts->max_instances_per_host);
        if (h)
            choice_use(&c, h->id, false);
        return c; /* SPAWN when no shared host has room */
    }

    case PD_MODE_DEV: {
        if (own && own->mode == PD_MODE_DEV && !own->retiring &&
            strcmp(own->language, language) == 0) {
            choice_use(&c, own->id, true);
            return c;
        }
        const char *best = NULL;
        for (size_t i = 0; dev_hosts && i < n_dev_hosts; i++) {
            const char *id = dev_hosts[i];
            if (!host_id_ok(id))
                continue;
            const host_t *h = find_host(map, id);
            if (h && (h->mode != PD_MODE_DEV || h->retiring))
                continue;
            if (!best || strcmp(id, best) < 0)
                best = id;
        }
        if (!best)
            return choice_error(-ENOTCONN, "no dev host connected");
        choice_leave(&c, own);
        choice_use(&c, best, false);
        c.add_first = find_host(map, best) == NULL;
        return c;
    }
    }
    return choice_error(-EINVAL, "invalid argument"); /* unreachable: mode_ok() */
}

bool pd_mode_keep_after(pd_mode_t mode, pd_action_t action, bool success)
{
    if (!mode_ok(mode) || !action_ok(action))
        return true;
    if (mode != PD_MODE_HIGH_PERFORMANCE)
        return true;
    return success && (action == PD_ACTION_START || action == PD_ACTION_ENABLE);
}

int pd_mode_finish(pd_hostmap_t *map, pd_action_t action, const char *instance_id, bool success,
                   uint64_t now_ms, char kill_host[PD_HOSTMAP_ID_MAX + 1])
{
    if (kill_host)
        kill_host[0] = '\0';
    if (!map || !action_ok(action) || !instance_id_ok(instance_id))
        return -EINVAL;
    ptrdiff_t at = vec_search(&map->instances, instance_id);
    if (at < 0)
        return -ENOENT;
    inst_t *in = map->instances.items[at];
    host_t *h = in->host;
    /* The rules of the host's mode: a shared host is never killed because
     * of one instance's action, whatever the caller believes. */
    pd_mode_t mode = h->mode;

    /* Running first, then clear busy, so a host never looks idle between
     * the two (its idle clock starts at now_ms either way). */
    if (action == PD_ACTION_START)
        pd_hostmap_set_running(map, instance_id, success, now_ms);
    else if (action == PD_ACTION_STOP && success)
        pd_hostmap_set_running(map, instance_id, false, now_ms);
    pd_hostmap_end(map, instance_id, now_ms);

    if (success &&
        (action == PD_ACTION_UNINSTALL || (action == PD_ACTION_STOP && mode == PD_MODE_POWER_SAVE)))
        pd_hostmap_detach(map, instance_id, now_ms);

    if (pd_mode_keep_after(mode, action, success))
        return 0;
    /* `h` is still in the map: instances never free hosts. */
    int rc = pd_hostmap_retire(map, h->id, NULL);
    if (rc < 0)
        return rc;
    if (kill_host)
        snprintf(kill_host, PD_HOSTMAP_ID_MAX + 1, "%s", h->id);
    return 1;
}
