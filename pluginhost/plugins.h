/* The plugin runner of a host: loads plugin shared objects and runs their
 * hooks for Plugin.action and Plugin.event requests.
 *
 * Instances are kept by UUID: a context (config, org, user data, the loaded
 * plugin) is created by the first action for an instance and dropped by a
 * successful UNINSTALL. A shared object is loaded once per (plugin,
 * version) — dlopen(package_dir/entry, RTLD_NOW|RTLD_LOCAL), the entry
 * resolved inside package_dir — and never unloaded (dlclose under running
 * code is unsafe). Every hook, the loading itself included (it runs the
 * plugin's constructors), runs on the libuv threadpool, never on the loop
 * thread; the hooks of one instance run one at a time, in arrival order.
 *
 * Loop thread only, except where noted. */
#ifndef PLUGINHOST_PLUGINS_H
#define PLUGINHOST_PLUGINS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "plat/plat.h"
#include "platcall.h"

typedef struct ph_plugins ph_plugins_t;

/* Completion of one request, on the loop thread, exactly once.
 *   code     0, or the error: the hook's negative return value, -ENOEXEC
 *            (the shared object cannot be loaded: bad path, entry outside
 *            the package, dlopen failure), -EPROTO (ABI mismatch, no
 *            descriptor symbol, a hook returning a positive value),
 *            -EOPNOTSUPP (event for a plugin without on_event), -ECANCELED
 *            (the runner was closed before the hook ran), -ENOMEM;
 *   message  one line for humans, "" when code == 0; valid during the call;
 *   reply    the REPLY body to send: Plugin.action_result for an action,
 *            Plugin.response for an event (status, headers, body, error),
 *            Ability.result for a task.
 *            Borrowed: the runner frees it after the call. NULL only when it
 *            could not be built (out of memory). */
typedef void (*ph_done_cb)(int code, const char *message, Plat__PlatformMessage *reply,
                           void *arg);

/* NULL on allocation failure. */
ph_plugins_t *ph_plugins_new(uv_loop_t *loop);

/* Stop: requests not yet started complete with -ECANCELED (their callbacks
 * run now or from the loop); hooks already running finish, their callbacks
 * run, and the runner frees itself after the last one — so the loop must
 * keep running. Loaded shared objects stay loaded. NULL-safe; sets *p = NULL. */
void ph_plugins_close(ph_plugins_t **p);

/* Queue one lifecycle hook. The request is copied. Returns 0 (`cb` will
 * run) or, with nothing queued and `cb` never called, -EINVAL (no instance
 * id, unknown action) or -ENOMEM. */
int ph_plugins_action(ph_plugins_t *p, const Plat__PluginActionRequest *req, ph_done_cb cb,
                      void *arg);

/* Queue one event for on_event. The event is copied. Returns 0 (`cb` will
 * run) or, with nothing queued, -ENOENT (no such instance in this host),
 * -EINVAL or -ENOMEM. */
int ph_plugins_event(ph_plugins_t *p, const Plat__PluginEvent *ev, ph_done_cb cb, void *arg);

/* Queue one run of on_task for an Ability.trigger. Copied. Returns 0
 * (`cb` will run; the reply is an Ability.result, -EOPNOTSUPP when the
 * plugin has no on_task — ABI 1 or left NULL) or, with nothing queued,
 * -ENOENT (no such instance in this host), -EINVAL or -ENOMEM. */
int ph_plugins_task(ph_plugins_t *p, const Plat__AbilityTrigger *t, ph_done_cb cb, void *arg);

/* Give the runner the bridge its hooks' resource and ability calls go
 * through (owned from now on: freed with the runner, after the last hook).
 * Without one those calls answer -ENOSYS. */
void ph_plugins_set_platcall(ph_plugins_t *p, ph_platcall_t *pc);

/* The bridge given to ph_plugins_set_platcall (NULL if none). */
ph_platcall_t *ph_plugins_platcall(const ph_plugins_t *p);

/* A hook is running (the host reports BUSY in Pong). */
bool ph_plugins_busy(const ph_plugins_t *p);

/* Number of instance contexts held. */
size_t ph_plugins_instance_count(const ph_plugins_t *p);

/* The instance is known to this host. */
bool ph_plugins_has_instance(const ph_plugins_t *p, const char *instance);

/* Every instance whose plugin is loaded here (a hook of it succeeded), for
 * the ready report: a restarted platform adopts this host with them. */
void ph_plugins_foreach_loaded(const ph_plugins_t *p, void (*fn)(const char *instance, void *arg),
                               void *arg);

/* Largest body a plugin's response may carry (so the reply fits a bus
 * message). */
#define PH_MAX_RESPONSE_BODY (PLAT_MAX_MSG_SIZE_DEFAULT - 64u * 1024u)

#endif
