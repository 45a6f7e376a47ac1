/* The tracing switch (ARCHITECTURE.md section 11, docs/diagnostics.md):
 * while an instance or a host is traced, every bus message of it that the
 * platform sees is logged as one line (component "trace")
 *   info platformd/trace message dir=rx source=host-… destination=platform
 *        seq=12 kind=request channel=resource size=118 match=instance:<uuid>
 * and counted in pd->metrics.trace_lines.
 *
 * A message is the host's when its header source or destination is the
 * host id; it is the instance's when its body names the instance
 * (PluginEvent, PluginActionRequest, ResourceRequest, AbilityRegister/
 * Unregister/Trigger), or when it is the reply to such a request (matched by
 * peer and seq_no — replies carry no instance field).
 *
 * Where messages are seen:
 *   rx   every message reaching the router (pd_router_on_message), which
 *        includes messages forwarded between endpoints;
 *   rx   replies to the platform's own requests (a plat_sync reply observer:
 *        the bus consumes those before the router);
 *   tx   every message the platform sends itself (events, requests —
 *        lifecycle hooks, invokes, pings, task triggers — and replies,
 *        resource and ability answers and error replies included): the
 *        bus's tx observer (plat_bus_set_tx_observer) calls pd_trace_on_tx.
 *
 * Switched by config (trace.instances, trace.hosts) and by the API
 * (POST /api/v1/trace). Loop thread only. */
#ifndef PLATFORMD_TRACE_H
#define PLATFORMD_TRACE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platformd.h"

#define PD_TRACE_MAX 64 /* traced ids of each kind */

typedef struct pd_trace pd_trace_t;

typedef enum {
    PD_TRACE_INSTANCE,
    PD_TRACE_HOST,
} pd_trace_kind_t;

/* Owned by pd->trace; NULL on ENOMEM. */
pd_trace_t *pd_trace_new(void);
void pd_trace_destroy(pd_trace_t **t);

/* Switch tracing of `id` on or off. 0 (also when already in that state),
 * -EINVAL (not an instance UUID / host id), -ENOSPC (PD_TRACE_MAX ids). */
int pd_trace_set(pd_trace_t *t, pd_trace_kind_t kind, const char *id, bool on);
bool pd_trace_is_on(const pd_trace_t *t, pd_trace_kind_t kind, const char *id);

/* {"instances":[…],"hosts":[…],"lines":N} (new reference). */
json_t *pd_trace_json(pd_t *pd);

/* The instance a message's body names, or NULL. */
const char *pd_trace_instance_of(const Plat__PlatformMessage *m);

/* A message seen by the platform: logged when it matches. `dir` "rx" or
 * "tx"; `size` its encoded length in bytes. */
void pd_trace_rx(pd_t *pd, const Plat__PlatformMessage *m, size_t size);
void pd_trace_tx(pd_t *pd, const Plat__PlatformMessage *m, size_t size);

/* Installed as the bus's tx observer by pd_diag_start (arg = pd). */
void pd_trace_on_tx(plat_bus_t *bus, const Plat__PlatformMessage *m, size_t size, void *arg);

/* Installed on the bus's synchronizer by pd_diag_start (arg = pd). */
void pd_trace_on_reply(const char *peer, uint64_t seq, const Plat__PlatformMessage *reply,
                       void *arg);


#endif
