/* Host modes and the host<->instances map (ARCHITECTURE.md section 6).
 *
 * Pure data: no I/O, no loop, no bus, no logging, no clock (times are
 * CLOCK_MONOTONIC ms passed in by the caller). Lifecycle code asks this
 * module which host an action runs on and whether that host survives the
 * action, without knowing the plugin's mode.
 *
 * Lifetimes: nothing returned here points into the map. Ids and host
 * records are copied into caller storage (fixed buffers or a pd_idlist_t the
 * caller owns), so they stay valid whatever the map does afterwards.
 *
 * Ids: instance ids are lowercase canonical UUIDs; host ids are
 * "host-<uuid>" (plat_id_kind() == PLAT_ID_HOST). Anything else is -EINVAL.
 *
 * The intended sequence for one action on one instance:
 *
 *   c = pd_mode_choose(map, mode, action, inst, lang, ver, &opts, devs, n);
 *   ERROR -> fail the API call with c.error / c.reason, nothing changed.
 *   if (c.leave_host[0]) {            // the instance moves off its host
 *       pd_hostmap_detach(map, inst, now);
 *       if (c.kill_leave_host) { pd_hostmap_retire(map, c.leave_host, ...); delete it; }
 *   }
 *   SPAWN -> spawn a host, then pd_hostmap_add_host(map, new_id, lang, ver, mode, now)
 *   USE   -> if (c.add_first) pd_hostmap_add_host(map, c.host_id, lang, ver, mode, now)
 *   pd_hostmap_begin(map, inst, host, now);      // attach + "action in flight"
 *   ... run the action on the host ...
 *   if (pd_mode_finish(map, action, inst, ok, now, kill) == 1) delete host `kill`;
 *
 * Between choose and begin for a USE choice, do not yield to the loop (the
 * daemon is single-threaded, so the choice stays true). A SPAWN waits for the
 * new host; two concurrent powerSave SPAWNs for the same (language, version)
 * may each spawn a host — harmless, the spare one idles out.
 *
 * Attach rule (documented choice): attaching an instance that is already
 * attached — to the same host or another — is -EEXIST; there is no implicit
 * move. pd_mode_choose says when to leave the current host (leave_host). */
#ifndef PLATFORMD_MODES_H
#define PLATFORMD_MODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plat/id.h"

#define PD_HOSTMAP_ID_MAX PLAT_ID_MAX /* longest instance or host id, without the NUL */
#define PD_HOSTMAP_FIELD_MAX 32       /* longest language / version, without the NUL */

typedef enum {
    PD_MODE_HIGH_PERFORMANCE = 0, /* "highPerformance" (the default) */
    PD_MODE_POWER_SAVE,           /* "powerSave" */
    PD_MODE_DEV,                  /* "dev" */
} pd_mode_t;

typedef enum {
    PD_ACTION_INSTALL = 0,
    PD_ACTION_UNINSTALL,
    PD_ACTION_ENABLE,
    PD_ACTION_DISABLE,
    PD_ACTION_UPGRADE,
    PD_ACTION_START,
    PD_ACTION_STOP,
} pd_action_t;

#define PD_ACTION_COUNT 7

/* Parse a manifest mode. NULL or "" -> PD_MODE_HIGH_PERFORMANCE (the
 * default); "highPerformance" | "powerSave" | "dev" (exact case) -> that
 * mode; anything else -> -EINVAL and *out untouched. 0 on success. */
int pd_mode_parse(const char *s, pd_mode_t *out);

/* The manifest spelling of `mode`; "?" for an out-of-range value. Static. */
const char *pd_mode_name(pd_mode_t mode);

/* Parse "install" | "uninstall" | "enable" | "disable" | "upgrade" |
 * "start" | "stop" (exact case). 0, or -EINVAL and *out untouched. */
int pd_action_parse(const char *s, pd_action_t *out);

/* The spelling of `action`; "?" for an out-of-range value. Static. */
const char *pd_action_name(pd_action_t action);

/* ---- owned id lists ------------------------------------------------- */

/* A list of ids copied out of the map; the caller owns it. Start from
 * {0} (or PD_IDLIST_INIT) and free with pd_idlist_clear(). Functions that
 * fill one append to it. */
typedef struct {
    char (*ids)[PD_HOSTMAP_ID_MAX + 1]; /* ids[0..n) */
    size_t n;                           /* number of ids */
    size_t cap;                         /* allocated slots */
} pd_idlist_t;

/* clang-format off */
#define PD_IDLIST_INIT {NULL, 0, 0}
/* clang-format on */

/* Free the ids and zero the list. Accepts NULL. */
void pd_idlist_clear(pd_idlist_t *l);

/* ---- the host<->instances map ---------------------------------------- */

typedef struct pd_hostmap pd_hostmap_t;

/* A copy of one host's record (see pd_hostmap_host_info). */
typedef struct {
    char id[PD_HOSTMAP_ID_MAX + 1];
    char language[PD_HOSTMAP_FIELD_MAX + 1];
    char version[PD_HOSTMAP_FIELD_MAX + 1];
    pd_mode_t mode;         /* the mode it was added for */
    bool retiring;          /* pd_hostmap_retire()d: being deleted, never chosen */
    size_t n_instances;     /* attached instances */
    size_t n_running;       /* of which marked running */
    size_t n_busy;          /* of which with an action in flight (pd_hostmap_begin) */
    uint64_t added_ms;      /* when pd_hostmap_add_host() was called */
    bool idle;              /* n_running == 0 && n_busy == 0 */
    uint64_t idle_since_ms; /* when it last became idle; meaningful when `idle` */
} pd_hostmap_host_t;

/* A copy of one instance's record (see pd_hostmap_instance_info). */
typedef struct {
    char id[PD_HOSTMAP_ID_MAX + 1];
    char host_id[PD_HOSTMAP_ID_MAX + 1]; /* the host it is attached to */
    bool running;                        /* marked running */
    bool busy;                           /* an action is in flight */
} pd_hostmap_instance_t;

/* An empty map, owned by the caller; NULL on OOM. */
pd_hostmap_t *pd_hostmap_new(void);

/* Free the map and everything in it; accepts NULL or *map == NULL, sets
 * *map = NULL. */
void pd_hostmap_destroy(pd_hostmap_t **map);

/* A live host joined: `host_id` runs (language, version) for `mode`. It
 * starts with no instances, idle since now_ms. 0; -EINVAL (bad id, NULL or
 * empty or over-long language/version, bad mode); -EEXIST (already in the
 * map); -ENOMEM. */
int pd_hostmap_add_host(pd_hostmap_t *map, const char *host_id, const char *language,
                        const char *version, pd_mode_t mode, uint64_t now_ms);

/* The host exited (or is gone): forget it and detach all its instances,
 * appending their ids (in id order) to `detached` when not NULL. Returns
 * the number of instances detached (>= 0); -EINVAL (bad id); -ENOENT (not
 * in the map); -ENOMEM (only when `detached` could not grow; nothing
 * changed then). */
int pd_hostmap_remove_host(pd_hostmap_t *map, const char *host_id, pd_idlist_t *detached);

/* The caller decided to delete the host (pd_mode_finish said so, or
 * pd_hostmap_idle listed it): mark it retiring and detach all its
 * instances (ids appended to `detached` when not NULL) — they die with it.
 * A retiring host stays in the map (listed, never chosen, attach refused
 * with -ESHUTDOWN) until pd_hostmap_remove_host() on its exit report.
 * Returns the number detached; -EINVAL; -ENOENT; -ENOMEM as above.
 * Retiring a retiring host is fine (returns 0). */
int pd_hostmap_retire(pd_hostmap_t *map, const char *host_id, pd_idlist_t *detached);

/* Attach `instance_id` to `host_id`, marked `running` or not, no action in
 * flight. 0; -EINVAL (bad ids); -ENOENT (host not in the map); -ESHUTDOWN
 * (host retiring); -EEXIST (instance already attached, to this or another
 * host: detach first); -EBUSY (a highPerformance host already holds another
 * instance); -ENOMEM. Does not check powerSave capacity (pd_mode_choose
 * does). */
int pd_hostmap_attach(pd_hostmap_t *map, const char *instance_id, const char *host_id, bool running,
                      uint64_t now_ms);

/* Detach `instance_id` from its host (running and busy go with it). 0;
 * -EINVAL; -ENOENT (not attached). */
int pd_hostmap_detach(pd_hostmap_t *map, const char *instance_id, uint64_t now_ms);

/* Mark an attached instance running or not. 0; -EINVAL; -ENOENT. */
int pd_hostmap_set_running(pd_hostmap_t *map, const char *instance_id, bool running,
                           uint64_t now_ms);

/* An action on `instance_id` starts on `host_id`: attach it there if it is
 * not attached (not running), then mark it busy so the host is not idle
 * while the action runs. 0; -EINVAL; -ENOENT (host unknown); -ESHUTDOWN;
 * -EEXIST (attached to another host); -EALREADY (an action is already in
 * flight for it); -EBUSY (highPerformance host holds another instance);
 * -ENOMEM. Nothing changes on error. */
int pd_hostmap_begin(pd_hostmap_t *map, const char *instance_id, const char *host_id,
                     uint64_t now_ms);

/* Clear the "action in flight" mark without any other change (use when an
 * action is abandoned before pd_mode_finish). 0; -EINVAL; -ENOENT (not
 * attached). Clearing a non-busy instance is fine. */
int pd_hostmap_end(pd_hostmap_t *map, const char *instance_id, uint64_t now_ms);

/* Copy the id of the host `instance_id` is attached to into out (which
 * must hold PD_HOSTMAP_ID_MAX + 1 bytes). 0; -EINVAL; -ENOENT (not
 * attached; out set to ""). */
int pd_hostmap_host_of(const pd_hostmap_t *map, const char *instance_id,
                       char out[PD_HOSTMAP_ID_MAX + 1]);

/* Copy an instance's record. 0; -EINVAL; -ENOENT (not attached). */
int pd_hostmap_instance_info(const pd_hostmap_t *map, const char *instance_id,
                             pd_hostmap_instance_t *out);

/* Copy a host's record. 0; -EINVAL; -ENOENT. */
int pd_hostmap_host_info(const pd_hostmap_t *map, const char *host_id, pd_hostmap_host_t *out);

/* Append the ids of the instances attached to `host_id`, in id order, to
 * `out` (NULL: only count). Returns how many (>= 0); -EINVAL; -ENOENT;
 * -ENOMEM. */
int pd_hostmap_instances(const pd_hostmap_t *map, const char *host_id, pd_idlist_t *out);

/* Append every host id (retiring ones too), in id order, to `out` (NULL:
 * only count). Returns how many; -ENOMEM. */
int pd_hostmap_hosts(const pd_hostmap_t *map, pd_idlist_t *out);

/* Number of hosts / attached instances in the map. */
size_t pd_hostmap_n_hosts(const pd_hostmap_t *map);
size_t pd_hostmap_n_instances(const pd_hostmap_t *map);

/* Append, in id order, the powerSave hosts that are not retiring and have
 * been idle (no running instance, no action in flight) since at least
 * `idle_ms` before now_ms (idle_since_ms + idle_ms <= now_ms). Only
 * powerSave hosts idle out: highPerformance hosts die by pd_mode_finish,
 * dev hosts are never killed. This only lists; retire each one you delete.
 * Returns how many (>= 0); -ENOMEM. `out` NULL: only count. */
int pd_hostmap_idle(const pd_hostmap_t *map, uint64_t now_ms, uint64_t idle_ms, pd_idlist_t *out);

/* ---- mode decisions --------------------------------------------------- */

typedef struct {
    size_t max_instances_per_host; /* powerSave: instances per shared host, >= 1 */
} pd_mode_opts_t;

typedef enum {
    PD_CHOICE_USE = 0, /* run the action on host_id (already in the map unless add_first) */
    PD_CHOICE_SPAWN,   /* spawn a new host for (language, version), then use it */
    PD_CHOICE_ERROR,   /* the action cannot run: error / reason */
} pd_choice_kind_t;

typedef struct {
    pd_choice_kind_t kind;
    char host_id[PD_HOSTMAP_ID_MAX + 1];    /* USE: the host; "" otherwise */
    bool attached;                          /* USE: the instance is already attached to it */
    bool add_first;                         /* USE (dev only): host not in the map yet:
                                               pd_hostmap_add_host() it before begin */
    char leave_host[PD_HOSTMAP_ID_MAX + 1]; /* the instance's current host, when it must
                                               detach from it first; "" otherwise */
    bool kill_leave_host;                   /* leave_host is highPerformance: retire and
                                               delete it (it held only this instance) */
    int error;                              /* ERROR: -EINVAL (bad argument), -ENOTCONN
                                               (dev: no dev host connected); 0 otherwise */
    const char *reason;                     /* ERROR: static, human-readable; NULL otherwise */
} pd_mode_choice_t;

/* Decide where `action` on `instance_id` (a plugin of runtime (language,
 * version)) runs in `mode`. Does not change the map.
 *
 * highPerformance: start/stop use the instance's own host when it is a
 *   highPerformance host of the same (language, version); otherwise (and for
 *   every other action) SPAWN. Leaving a host is reported in leave_host.
 * powerSave: the instance's own host when it is a powerSave host of the same
 *   (language, version); else the live, non-retiring powerSave host of that
 *   (language, version) with the most instances that still has room
 *   (n_instances < opts->max_instances_per_host), ties to the smallest id;
 *   else SPAWN. `opts` is required (NULL or max 0 -> ERROR -EINVAL).
 * dev: never SPAWN. The instance's own host when it is a non-retiring dev
 *   host of the same language; else the smallest-id entry of
 *   dev_hosts[0..n_dev_hosts) (host ids; invalid ids, and ids the map holds
 *   as non-dev or retiring hosts, are skipped; the caller filters by
 *   language); none -> ERROR -ENOTCONN "no dev host connected".
 *
 * Bad arguments (NULL map, invalid instance id, empty or over-long
 * language/version, out-of-range mode/action) -> ERROR -EINVAL. */
pd_mode_choice_t pd_mode_choose(const pd_hostmap_t *map, pd_mode_t mode, pd_action_t action,
                                const char *instance_id, const char *language, const char *version,
                                const pd_mode_opts_t *opts, const char *const *dev_hosts,
                                size_t n_dev_hosts);

/* Does the host survive `action` (which ended with `success`)?
 * highPerformance: only after a successful start or enable. powerSave: yes
 * (idle reaping kills it later). dev: always. Out-of-range values: true
 * (never kill on nonsense). */
bool pd_mode_keep_after(pd_mode_t mode, pd_action_t action, bool success);

/* Record the end of `action` on `instance_id` (attached by
 * pd_hostmap_begin) and apply the rules of the mode of the host it ran on
 * (the mode given to pd_hostmap_add_host, so the caller need not know it):
 *   - start: running = success; stop that succeeded: running = false;
 *   - the "action in flight" mark is cleared;
 *   - uninstall that succeeded: the instance is detached (it no longer
 *     exists); on a powerSave host a successful stop also detaches it,
 *     freeing its slot on the shared host;
 *   - when !pd_mode_keep_after(host mode, action, success), the host is
 *     retired (its instances detached) and its id copied into kill_host.
 * kill_host may be NULL, else it holds PD_HOSTMAP_ID_MAX + 1 bytes and is
 * set to "" when there is nothing to kill. Returns 1 when the caller must
 * delete kill_host, 0 when not, -EINVAL, -ENOENT (instance not attached;
 * nothing changed). */
int pd_mode_finish(pd_hostmap_t *map, pd_action_t action, const char *instance_id, bool success,
                   uint64_t now_ms, char kill_host[PD_HOSTMAP_ID_MAX + 1]);

#endif
