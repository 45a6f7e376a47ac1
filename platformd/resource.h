/* The Resource channel (ARCHITECTURE.md section 8): plugin hosts ask the
 * platform to act for one of their instances. docs/resources.md is the
 * reference.
 *
 *   pd_resource_handle (platformd.h, the router's handler) takes REQUESTs
 *   only from a registered plugin host, for an instance attached to that
 *   host (the lifecycle's host map) — else -EACCES, logged with instance
 *   and host, counted in pd->metrics.resource_denied[kind]. Then the
 *   manifest of the instance's package must grant the kind
 *   (permissions.db, permissions.files; HTTP: permissions.http, checked by
 *   res_http.c).
 *
 *   DB and FILE run on the libuv thread pool, one operation at a time per
 *   instance (a FIFO queue per instance, at most PD_RES_QUEUE_MAX waiting:
 *   more is -EAGAIN), and are answered from the loop with a
 *   ResourceResponse (result, or error — also set in header.error).
 *   HTTP goes to res_http.c (pd_res_http_request) on the loop.
 *
 * Instance data: <state.dir>/instances/<uuid>/ (0700) holding db.sqlite
 * (opened on the first DB request, kept open, closed on forget and at
 * stop) and files/ (0700). pd_resources_forget_instance (platformd.h)
 * removes both (uninstall).
 *
 * Module "resources" in manager.c: pd_resources_start / pd_resources_stop
 * (platformd.h). Stop answers queued requests -ECANCELED; operations
 * already on the thread pool finish (a statement at most db_timeout_ms) and
 * are not answered. Loop thread only. */
#ifndef PLATFORMD_RESOURCE_H
#define PLATFORMD_RESOURCE_H

#include <stddef.h>

#include "package.h"
#include "platformd.h"

#define PD_RES_QUEUE_MAX 64 /* requests waiting per instance */
/* Room left in a bus message for everything but a result's payload. */
#define PD_RES_REPLY_OVERHEAD (64u * 1024u)

/* The manifest of the package instance `uuid` runs now (store: instance ->
 * (plugin, version) -> package directory -> manifest.json). Fills *out
 * (free with pd_manifest_free). 0, -ENOENT (unknown instance or package),
 * -ECANCELED (no lifecycle), or pd_manifest_load's errors; `why` says. */
int pd_resources_manifest(pd_t *pd, const char *uuid, pd_manifest_t *out, char *why,
                          size_t why_size);

/* The directory of instance `uuid`'s data: "<state.dir>/instances/<uuid>"
 * into out. 0 or -EINVAL (bad uuid) / -ENAMETOOLONG. */
int pd_resources_instance_dir(const pd_t *pd, const char *uuid, char *out, size_t size);

/* Operations on the thread pool or queued, all instances (tests, diag). */
size_t pd_resources_pending(const pd_t *pd);

#endif
