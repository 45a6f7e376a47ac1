/* The endpoint registry: a sorted array of entries (bsearch by id). */
#include "registry.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const g_host_states[] = {
    [PD_HOST_STARTING] = "starting", [PD_HOST_READY] = "ready",   [PD_HOST_STOPPING] = "stopping",
    [PD_HOST_EXITED] = "exited",     [PD_HOST_FAILED] = "failed",
};

const char *pd_host_state_name(pd_host_state_t s)
{
    return (unsigned)s < sizeof g_host_states / sizeof g_host_states[0] ? g_host_states[s]
                                                                         : "unknown";
}

bool pd_endpoint_registered(const pd_endpoint_t *ep)
{
    return ep && (ep->kind == PD_EP_HOSTBOOT || ep->host_state == PD_HOST_READY ||
                  ep->host_state == PD_HOST_STOPPING);
}

static bool host_ended(const pd_endpoint_t *ep)
{
    return ep->kind == PD_EP_HOST &&
           (ep->host_state == PD_HOST_EXITED || ep->host_state == PD_HOST_FAILED);
}

struct pd_registry {
    pd_endpoint_t **items; /* sorted by id */
    size_t n, cap;
};

pd_registry_t *pd_registry_new(void) { return calloc(1, sizeof(pd_registry_t)); }

void pd_registry_destroy(pd_registry_t **reg)
{
    if (!reg || !*reg)
        return;
    for (size_t i = 0; i < (*reg)->n; i++)
        free((*reg)->items[i]);
    free((*reg)->items);
    free(*reg);
    *reg = NULL;
}

/* Index of `id`, or -(insertion point) - 1. */
static ptrdiff_t search(const pd_registry_t *reg, const char *id)
{
    size_t lo = 0, hi = reg->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(reg->items[mid]->id, id);
        if (c == 0)
            return (ptrdiff_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(ptrdiff_t)lo - 1;
}

pd_endpoint_t *pd_registry_find(pd_registry_t *reg, const char *id)
{
    if (!id)
        return NULL;
    ptrdiff_t i = search(reg, id);
    return i >= 0 ? reg->items[i] : NULL;
}

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* The entry for `id`, created (zeroed, registered now) when new. */
static pd_endpoint_t *get_or_add(pd_registry_t *reg, const char *id, pd_ep_kind_t kind,
                                 uint64_t now_ms, bool *was_known)
{
    ptrdiff_t i = search(reg, id);
    if (i >= 0) {
        if (was_known)
            *was_known = true;
        pd_endpoint_t *ep = reg->items[i];
        ep->kind = kind;
        return ep;
    }
    if (was_known)
        *was_known = false;
    if (reg->n == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 16;
        pd_endpoint_t **items = realloc(reg->items, cap * sizeof *items);
        if (!items)
            return NULL;
        reg->items = items;
        reg->cap = cap;
    }
    pd_endpoint_t *ep = calloc(1, sizeof *ep);
    if (!ep)
        return NULL;
    copy(ep->id, sizeof ep->id, id);
    ep->kind = kind;
    ep->registered_ms = now_ms;
    size_t at = (size_t)(-i - 1);
    memmove(reg->items + at + 1, reg->items + at, (reg->n - at) * sizeof *reg->items);
    reg->items[at] = ep;
    reg->n++;
    return ep;
}

pd_endpoint_t *pd_registry_put_hostboot(pd_registry_t *reg, const char *id, const char *name,
                                        const char *version, const char *boot_id,
                                        const plat_runtime_t *runtimes, size_t n_runtimes,
                                        uint64_t now_ms, bool *was_known)
{
    if (plat_id_kind(id) != PLAT_ID_HOSTBOOT)
        return NULL;
    pd_endpoint_t *ep = get_or_add(reg, id, PD_EP_HOSTBOOT, now_ms, was_known);
    if (!ep)
        return NULL;
    copy(ep->name, sizeof ep->name, name);
    copy(ep->version, sizeof ep->version, version);
    copy(ep->boot_id, sizeof ep->boot_id, boot_id);
    ep->n_runtimes = n_runtimes < PD_RUNTIMES_MAX ? n_runtimes : PD_RUNTIMES_MAX;
    for (size_t i = 0; i < ep->n_runtimes; i++) {
        copy(ep->runtimes[i].language, sizeof ep->runtimes[i].language, runtimes[i].language);
        copy(ep->runtimes[i].version, sizeof ep->runtimes[i].version, runtimes[i].version);
    }
    ep->lost = false;
    ep->last_seen_ms = now_ms;
    return ep;
}

pd_endpoint_t *pd_registry_add_starting_host(pd_registry_t *reg, const char *id,
                                             const char *language, const char *runtime_version,
                                             const char *mode, const char *hostboot,
                                             uint64_t now_ms)
{
    if (plat_id_kind(id) != PLAT_ID_HOST || plat_id_kind(hostboot) != PLAT_ID_HOSTBOOT) {
        errno = EINVAL;
        return NULL;
    }
    if (pd_registry_find(reg, id)) {
        errno = EEXIST;
        return NULL;
    }
    pd_endpoint_t *ep = get_or_add(reg, id, PD_EP_HOST, now_ms, NULL);
    if (!ep) {
        errno = ENOMEM;
        return NULL;
    }
    copy(ep->language, sizeof ep->language, language);
    copy(ep->runtime_version, sizeof ep->runtime_version, runtime_version);
    copy(ep->mode, sizeof ep->mode, mode);
    copy(ep->hostboot, sizeof ep->hostboot, hostboot);
    ep->host_state = PD_HOST_STARTING;
    ep->started_ms = now_ms;
    ep->last_seen_ms = now_ms;
    return ep;
}

void pd_registry_host_exited(pd_endpoint_t *ep, int32_t exit_status, int32_t term_signal,
                             uint64_t now_ms)
{
    ep->host_state = PD_HOST_EXITED;
    ep->exit_status = exit_status;
    ep->term_signal = term_signal;
    ep->ended_ms = now_ms;
    ep->lost = false;
}

void pd_registry_host_failed(pd_endpoint_t *ep, int code, const char *why, uint64_t now_ms)
{
    ep->host_state = PD_HOST_FAILED;
    ep->error_code = code;
    copy(ep->error, sizeof ep->error, why);
    ep->ended_ms = now_ms;
    ep->lost = false;
}

size_t pd_registry_prune(pd_registry_t *reg, uint64_t now_ms, uint64_t keep_ms)
{
    size_t removed = 0;
    for (size_t i = 0; i < reg->n;) {
        pd_endpoint_t *ep = reg->items[i];
        if (host_ended(ep) && now_ms >= ep->ended_ms && now_ms - ep->ended_ms > keep_ms) {
            free(ep);
            memmove(reg->items + i, reg->items + i + 1, (reg->n - i - 1) * sizeof *reg->items);
            reg->n--;
            removed++;
        } else {
            i++;
        }
    }
    return removed;
}

pd_endpoint_t *pd_registry_put_host(pd_registry_t *reg, const char *id, int32_t pid,
                                    const char *language, const char *runtime_version,
                                    const char *mode, bool dev, const char *hostboot,
                                    const char *version, const char *boot_id, uint64_t now_ms,
                                    bool *was_known)
{
    if (plat_id_kind(id) != PLAT_ID_HOST)
        return NULL;
    bool known = false;
    pd_endpoint_t *ep = get_or_add(reg, id, PD_EP_HOST, now_ms, &known);
    if (!ep)
        return NULL;
    if (was_known)
        *was_known = known;
    if (!known || host_ended(ep)) {
        /* New to us (a dev host, or a host surviving a platform restart),
         * or an id reused after an exit: a fresh record. */
        ep->started_ms = now_ms;
        ep->ended_ms = 0;
        ep->exit_status = ep->term_signal = 0;
        ep->error_code = 0;
        ep->error[0] = 0;
        ep->told_to_exit = false;
        ep->host_state = PD_HOST_READY;
    } else if (ep->host_state == PD_HOST_STARTING) {
        ep->host_state = PD_HOST_READY;
    }
    if (!ep->ready_ms)
        ep->ready_ms = now_ms;
    if (ep->hostboot[0] && hostboot && strcmp(ep->hostboot, hostboot) != 0)
        hostboot = ep->hostboot; /* the platform's record of who spawned it wins */
    ep->pid = pid;
    copy(ep->language, sizeof ep->language, language);
    copy(ep->runtime_version, sizeof ep->runtime_version, runtime_version);
    copy(ep->mode, sizeof ep->mode, mode);
    ep->dev = dev;
    copy(ep->hostboot, sizeof ep->hostboot, hostboot);
    copy(ep->version, sizeof ep->version, version);
    copy(ep->boot_id, sizeof ep->boot_id, boot_id);
    ep->lost = false;
    ep->last_seen_ms = now_ms;
    return ep;
}

pd_endpoint_t *pd_registry_touch(pd_registry_t *reg, const char *id, uint64_t now_ms,
                                 bool *came_back)
{
    pd_endpoint_t *ep = pd_registry_find(reg, id);
    if (!pd_endpoint_registered(ep))
        ep = NULL;
    if (came_back)
        *came_back = ep && ep->lost;
    if (ep) {
        ep->last_seen_ms = now_ms;
        ep->lost = false;
    }
    return ep;
}

size_t pd_registry_mark_lost(pd_registry_t *reg, uint64_t now_ms, uint64_t silence_ms,
                             void (*on_lost)(const pd_endpoint_t *ep, uint64_t silent_ms,
                                             void *arg),
                             void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < reg->n; i++) {
        pd_endpoint_t *ep = reg->items[i];
        uint64_t silent = now_ms > ep->last_seen_ms ? now_ms - ep->last_seen_ms : 0;
        if (ep->lost || silent <= silence_ms || !pd_endpoint_registered(ep))
            continue;
        ep->lost = true;
        n++;
        if (on_lost)
            on_lost(ep, silent, arg);
    }
    return n;
}

void pd_registry_forgive(pd_registry_t *reg, uint64_t deaf_ms, uint64_t now_ms)
{
    for (size_t i = 0; i < reg->n; i++) {
        pd_endpoint_t *ep = reg->items[i];
        if (!pd_endpoint_registered(ep) || ep->lost)
            continue;
        uint64_t seen = ep->last_seen_ms + deaf_ms;
        ep->last_seen_ms = seen < now_ms ? seen : now_ms;
    }
}

int pd_registry_remove(pd_registry_t *reg, const char *id)
{
    ptrdiff_t i = search(reg, id);
    if (i < 0)
        return -ENOENT;
    free(reg->items[i]);
    memmove(reg->items + i, reg->items + i + 1, (reg->n - (size_t)i - 1) * sizeof *reg->items);
    reg->n--;
    return 0;
}

pd_counts_t pd_registry_counts(const pd_registry_t *reg)
{
    pd_counts_t c = {0};
    for (size_t i = 0; i < reg->n; i++) {
        const pd_endpoint_t *ep = reg->items[i];
        if (ep->kind == PD_EP_HOSTBOOT) {
            c.hostboots++;
            c.hostboots_lost += ep->lost;
        } else if (host_ended(ep)) {
            c.hosts_ended++;
        } else {
            c.hosts++;
            c.hosts_lost += ep->lost;
        }
    }
    return c;
}

void pd_registry_foreach(pd_registry_t *reg, void (*fn)(const pd_endpoint_t *ep, void *arg),
                         void *arg)
{
    for (size_t i = 0; i < reg->n; i++)
        fn(reg->items[i], arg);
}

size_t pd_registry_size(const pd_registry_t *reg) { return reg->n; }
