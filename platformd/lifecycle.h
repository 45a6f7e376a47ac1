/* Plugin instances: the state machine of ARCHITECTURE.md section 7, run
 * through the host modes (modes.h) on hosts from hosts.c, persisted in the
 * store before anything is acknowledged.
 *
 *   install:   (new)                                  -> installed
 *   enable:    installed, disabled                    -> enabled
 *   disable:   enabled, stopped                       -> disabled
 *   start:     enabled, stopped, failed               -> running
 *   stop:      running                                -> stopped
 *   upgrade:   installed, enabled, disabled, stopped, running -> same state,
 *              new version (running: stop, upgrade, start; any failure rolls
 *              back to the old version and its state)
 *   uninstall: installed, enabled, disabled, stopped, failed -> removed
 *
 * An action invalid for the current state, or for an instance with an action
 * in flight, is refused (-EBUSY / -EPERM → HTTP 409) without touching a host.
 * Loop thread only. */
#ifndef PLATFORMD_LIFECYCLE_H
#define PLATFORMD_LIFECYCLE_H

#include <jansson.h>

#include "modes.h"
#include "store.h"

struct pd;
typedef struct pd_lifecycle pd_lifecycle_t;

/* Completion of an action: status 0 and the instance as it is now (NULL
 * after a successful uninstall), or a negative errno and a reason:
 *   -ENOENT unknown instance/package, -EPERM invalid transition, -EBUSY an
 *   action in flight, -ENOTCONN no dev host, -ENOENT/-ENOEXEC no runtime,
 *   -ETIMEDOUT hook overran (host killed), -ECHILD host died, other: the
 *   hook's own error code. `inst` is borrowed for the call. */
typedef void (*pd_action_cb)(int status, const char *why, const pd_store_instance_t *inst,
                             void *arg);

pd_lifecycle_t *pd_lifecycle_new(struct pd *pd, char *why, size_t why_size);
/* Cancel actions in flight (callbacks run with -ECANCELED) and close. */
void pd_lifecycle_destroy(pd_lifecycle_t **lc);

pd_store_t *pd_lifecycle_store(pd_lifecycle_t *lc);
const char *pd_lifecycle_packages_dir(const pd_lifecycle_t *lc);

/* Register the package directory `path` (copied into the store, immutable
 * per (id, version)). 0 (new) or 1 (already registered, same content) and
 * *out filled as recorded, or -errno with why. */
int pd_lifecycle_register_package(pd_lifecycle_t *lc, const char *path, pd_store_package_t *out,
                                  char *why, size_t why_size);

/* Install a new instance of (plugin, version) for `org` with `config_json`
 * (a JSON object text, NULL = "{}"). Returns 0 when the action started
 * (cb runs later) or -errno at once (cb not called). */
int pd_lifecycle_install(pd_lifecycle_t *lc, const char *plugin, const char *version,
                         const char *org, const char *config_json, pd_action_cb cb, void *arg,
                         char *why, size_t why_size);

/* Run `action` (not install) on instance `uuid`; `version` only for
 * upgrade. Same return contract as install. */
int pd_lifecycle_act(pd_lifecycle_t *lc, const char *uuid, pd_action_t action,
                     const char *version, pd_action_cb cb, void *arg, char *why, size_t why_size);

/* Completion of an invoke: HTTP-like status, content type and body from the
 * plugin, or a negative errno (-ENOENT unknown instance, -EPERM not running,
 * -ETIMEDOUT, -ECHILD host died...). */
typedef void (*pd_invoke_cb)(int status, const char *why, uint32_t http_status,
                             const char *content_type, const uint8_t *body, size_t len,
                             void *arg);
int pd_lifecycle_invoke(pd_lifecycle_t *lc, const char *uuid, const char *method,
                        const char *path, const char *content_type, const uint8_t *body,
                        size_t len, pd_invoke_cb cb, void *arg, char *why, size_t why_size);

/* ---- task triggers (Ability channel; docs/tasks.md) -------------------- */

/* End of a trigger: 0 = the plugin handled it; else -ETIMEDOUT (no answer
 * within plugins.action_timeout_ms, or no host in time), -ECHILD (its host
 * died), -EPERM (the instance stopped meanwhile), -ECANCELED (platform
 * stopping or pd_lifecycle_cancel_triggers), or the plugin's own code.
 * `why` is borrowed for the call. */
typedef void (*pd_trigger_cb)(int status, const char *why, void *arg);

/* Deliver AbilityTrigger{TASK, name, scheduled_ms, missed} to instance
 * `uuid` as a request to its host. Only a running instance gets it: -EPERM
 * at once otherwise (-ENOENT unknown instance), cb not called. A running
 * instance without a host (its host was reaped, or platformd restarted and
 * has not brought it back yet) waits: for the reconciliation after a
 * restart, for an action in flight on it, else a host is started for it
 * through the usual start action of its mode. A trigger waits at most
 * start_timeout + ready_timeout + action_timeout + a heartbeat window
 * (hosts.*, plugins.*, heartbeat.*). Returns 0 when under way: cb runs
 * exactly once, later or already before this returns (e.g. the host is
 * not reachable on the bus). */
int pd_lifecycle_trigger(pd_lifecycle_t *lc, const char *uuid, const char *name,
                         int64_t scheduled_ms, bool missed, pd_trigger_cb cb, void *arg,
                         char *why, size_t why_size);

/* Run the callback of every trigger whose callback is `cb` now with
 * -ECANCELED, and forget it (for a module that stops before the
 * lifecycle). */
void pd_lifecycle_cancel_triggers(pd_lifecycle_t *lc, pd_trigger_cb cb);

/* True when instance `uuid` is attached to host `host_id` (its actions
 * run there): the check that a host speaks for an instance. */
bool pd_lifecycle_instance_on_host(pd_lifecycle_t *lc, const char *uuid, const char *host_id);

/* A host ended (exited or failed): its instances lose it; running ones go
 * to failed with `why`. */
void pd_lifecycle_host_gone(pd_lifecycle_t *lc, const char *host_id, const char *why);

/* After a platform restart: bring back every instance whose desired state
 * is running and that no re-registered host brought along (see adopt). */
void pd_lifecycle_reconcile(pd_lifecycle_t *lc);

/* Run pd_lifecycle_reconcile once, `delay_ms` from now (hosts of the
 * previous platform run get that long to re-register and be adopted). */
void pd_lifecycle_schedule_reconcile(pd_lifecycle_t *lc, uint64_t delay_ms);

/* A spawned host this platform did not start re-registered, reporting the
 * instances it holds: adopt it with those that should run and run nowhere
 * else (they are running again, no hook is called). Returns how many were
 * adopted; 0 = the host is of no use (the caller stops it). */
size_t pd_lifecycle_adopt_host(pd_lifecycle_t *lc, const char *host_id, const char *language,
                               const char *version, const char *mode,
                               const char *const *instances, size_t n);

/* Ids of the instances attached to `host_id` (new JSON array). */
json_t *pd_lifecycle_host_instances(pd_lifecycle_t *lc, const char *host_id);
/* True when the host is one the lifecycle placed instances on. */
bool pd_lifecycle_knows_host(pd_lifecycle_t *lc, const char *host_id);

/* JSON view of an instance (new reference); adds "host" and "busy". */
json_t *pd_lifecycle_instance_json(pd_lifecycle_t *lc, const pd_store_instance_t *inst);

#endif
