/* platformd's durable state (ARCHITECTURE.md section 10): one SQLite file
 * in WAL mode holding registered packages, instances with their actual and
 * desired state, an audit trail of actions, a small key/value table, and
 * (schema v2) the instances' scheduled tasks and web-service registrations.
 *
 * Durability: every write runs in a transaction (its own, or the caller's
 * pd_store_begin .. pd_store_commit batch) with synchronous=FULL, so a call
 * that returned 0 — or a pd_store_commit that returned 0 — is on disk and
 * survives kill -9 and power loss. Acknowledge to clients only after that.
 *
 * Pure storage: no loop, no bus, no logging above debug. The store does not
 * judge state transitions (the lifecycle module does); it only refuses
 * state names it does not know (CHECK constraints), instances whose package
 * is not registered (foreign key) and duplicate keys.
 *
 * Threads: one pd_store_t is used by one thread at a time (platformd's loop
 * thread). Several processes may open the same file (SQLite locks it).
 *
 * Errors: every int function returns 0 or a negative errno:
 *   -EINVAL    bad argument, or a value refused by a CHECK / NOT NULL
 *              constraint (e.g. an unknown state name)
 *   -ENOENT    no such row; or the package an instance names (plugin,
 *              version or previous_version) is not registered
 *   -EEXIST    the key exists (packages are immutable per (id, version))
 *   -EBUSY     the file is locked by another process past busy_timeout,
 *              a transaction is already open, or a list callback called the
 *              same list function again
 *   -EBADMSG   the file is not a (platformd) SQLite database, or is corrupt
 *   -EPROTONOSUPPORT  the file's schema is newer than this code
 *   -EOVERFLOW a stored value does not fit its fixed-size field
 *   -ENOMEM, -ENOSPC, -EROFS, -EIO, -EACCES ... from the system
 * and pd_store_why() says why, naming the row or the file.
 *
 * Strings: fixed-size fields are NUL-terminated; "" means "none" for the
 * optional ones (stored as NULL). Times are ms since the epoch
 * (CLOCK_REALTIME, plat_now_ms()). */
#ifndef PLATFORMD_STORE_H
#define PLATFORMD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plat/id.h"

#define PD_STORE_ID_MAX 128     /* plugin id, org, kv key; without the NUL */
#define PD_STORE_VERSION_MAX 64 /* package version (semver) */
#define PD_STORE_FIELD_MAX 32   /* language, runtime version, host mode, state, action, result */
#define PD_STORE_ENTRY_MAX 255  /* package entry path */
#define PD_STORE_DIGEST_MAX 128 /* package digest, e.g. "sha256:<64 hex>" */
#define PD_STORE_ERROR_MAX 255  /* last_error / action error (longer ones are truncated) */

/* Instance state names (both actual and desired). Anything else is refused
 * with -EINVAL. */
#define PD_STATE_INSTALLED "installed"
#define PD_STATE_ENABLED "enabled"
#define PD_STATE_DISABLED "disabled"
#define PD_STATE_RUNNING "running"
#define PD_STATE_STOPPED "stopped"
#define PD_STATE_FAILED "failed"
#define PD_STATE_UNINSTALLED "uninstalled"

/* A registered package; immutable once put. */
typedef struct {
    char id[PD_STORE_ID_MAX + 1];                 /* manifest id */
    char version[PD_STORE_VERSION_MAX + 1];       /* manifest version */
    char language[PD_STORE_FIELD_MAX + 1];        /* "c", ... */
    char runtime_version[PD_STORE_FIELD_MAX + 1]; /* may be "" */
    char entry[PD_STORE_ENTRY_MAX + 1];           /* e.g. "libhello.so", relative to the package */
    char host_mode[PD_STORE_FIELD_MAX + 1];       /* "highPerformance", "powerSave", "dev" */
    char *manifest_json;                          /* whole manifest; malloc'd, see below */
    char digest[PD_STORE_DIGEST_MAX + 1];         /* of the stored copy; may be "" */
    int64_t registered_at;                        /* ms; 0 on put = now */
} pd_store_package_t;

/* A plugin instance. */
typedef struct {
    char uuid[PLAT_UUID_LEN + 1];                    /* lowercase canonical UUID, the key */
    char plugin[PD_STORE_ID_MAX + 1];                /* package id   } must name a */
    char version[PD_STORE_VERSION_MAX + 1];          /* package version } registered package */
    char org[PD_STORE_ID_MAX + 1];                   /* owning organisation, non-empty */
    char *config_json;                               /* malloc'd, see below; NULL on write = "{}" */
    char actual_state[PD_STORE_FIELD_MAX + 1];       /* PD_STATE_* : what is */
    char desired_state[PD_STORE_FIELD_MAX + 1];      /* PD_STATE_* : what the operator asked */
    char host_mode[PD_STORE_FIELD_MAX + 1];          /* mode this instance runs in */
    char last_error[PD_STORE_ERROR_MAX + 1];         /* "" = none */
    int32_t crash_count;                             /* crashes in the current window, >= 0 */
    int64_t created_at;                              /* ms; 0 on insert = now */
    int64_t updated_at;                              /* ms; set by the store on every write */
    char previous_version[PD_STORE_VERSION_MAX + 1]; /* "" = none; upgrade rollback target */
} pd_store_instance_t;

/* One audit record: an action on an instance (lifecycle action, restart,
 * crash...) and how it ended. Kept when the instance is deleted. */
typedef struct {
    int64_t id;                          /* increasing, never reused */
    char uuid[PLAT_UUID_LEN + 1];        /* instance */
    char action[PD_STORE_FIELD_MAX + 1]; /* "start", "restart", "crash", ... */
    char result[PD_STORE_FIELD_MAX + 1]; /* "ok", "error", ... */
    char error[PD_STORE_ERROR_MAX + 1];  /* reason / error text; "" = none */
    int64_t at;                          /* ms when recorded */
} pd_store_action_t;

/* What the connection runs with (for diag and tests). */
typedef struct {
    int schema_version;    /* PRAGMA user_version */
    char journal_mode[16]; /* "wal" */
    int synchronous;       /* 2 = FULL */
    bool foreign_keys;     /* enforced */
} pd_store_info_t;

/* Ownership of the JSON strings:
 *  - on write (put/insert/update) the store only reads the struct; the caller
 *    keeps ownership of everything;
 *  - pd_store_get_package / pd_store_get_instance fill caller storage and
 *    malloc the JSON string: free it with pd_store_package_clear /
 *    pd_store_instance_clear (or free()). On error nothing is allocated;
 *  - a list callback receives a struct borrowed for the duration of the
 *    call: copy what you keep. A callback returns 0 to go on; a non-zero
 *    value stops the listing and is returned by the list function. It may
 *    call other store functions, but not the list function it runs under
 *    (-EBUSY). */
typedef int (*pd_store_package_cb)(const pd_store_package_t *pkg, void *arg);
typedef int (*pd_store_instance_cb)(const pd_store_instance_t *inst, void *arg);
typedef int (*pd_store_action_cb)(const pd_store_action_t *act, void *arg);

typedef struct pd_store pd_store_t;

/* Schema version this code writes (the newest migration). */
int pd_store_schema_version(void);

/* Open (or create, mode 0600) the state file at `path`, migrate it to the
 * newest schema, one transaction per migration step. A file that is not a
 * platformd database (-EBADMSG) or has a newer schema (-EPROTONOSUPPORT) is
 * refused untouched: never downgraded. An existing file readable by group or
 * others is narrowed to 0600. On failure *store is NULL and `why` (if not
 * NULL) names the path and the cause. */
int pd_store_open(const char *path, pd_store_t **store, char *why, size_t why_size);

/* Close and free; accepts NULL and *store == NULL; sets *store = NULL. An
 * open transaction is rolled back. */
void pd_store_close(pd_store_t **store);

/* Why the last failing call on `store` failed ("" after a success). Valid
 * until the next call on the store. */
const char *pd_store_why(const pd_store_t *store);

int pd_store_info(pd_store_t *store, pd_store_info_t *info);

/* Batches: all writes between begin and commit become durable together (or
 * not at all on rollback / crash). begin while one is open: -EBUSY. commit
 * without one: -EINVAL. If commit fails the transaction may still be open:
 * call rollback. rollback without one is a no-op (0), so error paths can
 * always call it. A failing statement inside a batch undoes only itself. */
int pd_store_begin(pd_store_t *store);
int pd_store_commit(pd_store_t *store);
int pd_store_rollback(pd_store_t *store);

/* Packages. put: -EEXIST when (id, version) is registered already. */
int pd_store_put_package(pd_store_t *store, const pd_store_package_t *pkg);
int pd_store_get_package(pd_store_t *store, const char *id, const char *version,
                         pd_store_package_t *out);
/* Ordered by id, then version (as text). */
int pd_store_list_packages(pd_store_t *store, pd_store_package_cb cb, void *arg);
void pd_store_package_clear(pd_store_package_t *pkg);

/* Instances. insert: -EEXIST for a known uuid, -ENOENT for an unregistered
 * package; crash_count and created_at are taken from `inst` (created_at 0 =
 * now), updated_at is now. */
int pd_store_insert_instance(pd_store_t *store, const pd_store_instance_t *inst);
int pd_store_get_instance(pd_store_t *store, const char *uuid, pd_store_instance_t *out);
/* All instances, or those of `org` when not NULL; ordered by created_at
 * then uuid. */
int pd_store_list_instances(pd_store_t *store, const char *org, pd_store_instance_cb cb, void *arg);
/* Set actual and/or desired state (NULL keeps the current value) and
 * last_error (NULL or "" clears it). -ENOENT for an unknown uuid. */
int pd_store_update_instance_state(pd_store_t *store, const char *uuid, const char *actual,
                                   const char *desired, const char *last_error);
/* Rewrite every mutable field of the instance `inst->uuid` from `inst`:
 * version, config_json, actual/desired state, host_mode, last_error,
 * crash_count, previous_version. plugin, org and created_at are immutable
 * and ignored. -ENOENT for an unknown uuid or unregistered version. */
int pd_store_update_instance(pd_store_t *store, const pd_store_instance_t *inst);
/* -ENOENT for an unknown uuid. Its action records are kept. */
int pd_store_delete_instance(pd_store_t *store, const char *uuid);
void pd_store_instance_clear(pd_store_instance_t *inst);

/* Audit trail. `error` may be NULL; longer than PD_STORE_ERROR_MAX bytes is
 * truncated. The uuid need not name a live instance. */
int pd_store_record_action(pd_store_t *store, const char *uuid, const char *action,
                           const char *result, const char *error);
/* Newest first; `uuid` NULL = every instance; limit <= 0 = no limit. */
int pd_store_list_actions(pd_store_t *store, const char *uuid, int limit, pd_store_action_cb cb,
                          void *arg);
/* Delete action records older than `before_ms`; *deleted (if not NULL)
 * gets the count. */
int pd_store_prune_actions(pd_store_t *store, int64_t before_ms, int64_t *deleted);

/* Key/value strings for small things (e.g. the last boot id). get: -ENOENT
 * when absent; *value is malloc'd, the caller frees it. delete: -ENOENT
 * when absent. */
int pd_store_kv_set(pd_store_t *store, const char *key, const char *value);
int pd_store_kv_get(pd_store_t *store, const char *key, char **value);
int pd_store_kv_delete(pd_store_t *store, const char *key);

/* ---- scheduled tasks and web services (schema v2, docs/tasks.md) ------ */

#define PD_STORE_TASK_NAME_MAX 64  /* task name, [A-Za-z0-9_.-] (checked by the caller) */
#define PD_STORE_CRON_MAX 255      /* cron expression */
#define PD_STORE_HEALTH_PATH_MAX 255

/* A task registration of an instance; (instance, name) is the key. Rows go
 * with their instance (deleting the instance deletes them). */
typedef struct {
    char instance[PLAT_UUID_LEN + 1];            /* an existing instance (-ENOENT else) */
    char name[PD_STORE_TASK_NAME_MAX + 1];       /* non-empty */
    char cron[PD_STORE_CRON_MAX + 1];            /* as registered, non-empty */
    int64_t next_due;                            /* ms: the next run due */
    int64_t last_run;                            /* ms: scheduled time of the last run; 0 none */
    char last_result[PD_STORE_FIELD_MAX + 1];    /* "ok", "error", "skipped", "" */
    int64_t created_at;                          /* ms; 0 on put = now */
} pd_store_task_t;

/* The web service of an instance (one per instance). */
typedef struct {
    char instance[PLAT_UUID_LEN + 1];
    uint32_t port;                                  /* 1..65535 */
    char health_path[PD_STORE_HEALTH_PATH_MAX + 1]; /* non-empty, e.g. "/health" */
    int64_t registered_at;                          /* ms; 0 on put = now */
} pd_store_service_t;

typedef int (*pd_store_task_cb)(const pd_store_task_t *task, void *arg);
typedef int (*pd_store_service_cb)(const pd_store_service_t *svc, void *arg);

/* Insert, or replace the cron and next_due of an existing (instance, name)
 * (its created_at and last run are kept). -ENOENT: no such instance. */
int pd_store_put_task(pd_store_t *store, const pd_store_task_t *task);
/* Record a run: next_due, last_run and last_result. -ENOENT: no such task. */
int pd_store_update_task_run(pd_store_t *store, const char *instance, const char *name,
                             int64_t next_due, int64_t last_run, const char *last_result);
/* -ENOENT: no such task. */
int pd_store_delete_task(pd_store_t *store, const char *instance, const char *name);
/* Every task of `instance` (none is fine); *deleted (may be NULL) = how many. */
int pd_store_delete_tasks_of(pd_store_t *store, const char *instance, int64_t *deleted);
/* All tasks (instance NULL) ordered by instance then name, or those of one
 * instance ordered by name. */
int pd_store_list_tasks(pd_store_t *store, const char *instance, pd_store_task_cb cb, void *arg);

/* Insert or replace the instance's service. -ENOENT: no such instance;
 * -EINVAL: port out of 1..65535 or empty health path. */
int pd_store_put_service(pd_store_t *store, const pd_store_service_t *svc);
/* -ENOENT: the instance has none. */
int pd_store_delete_service(pd_store_t *store, const char *instance);
/* Ordered by instance. */
int pd_store_list_services(pd_store_t *store, pd_store_service_cb cb, void *arg);

#endif
