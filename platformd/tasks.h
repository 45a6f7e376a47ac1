/* Scheduled tasks: the plugin instances' cron registrations and the one
 * timer that fires them (ARCHITECTURE.md section 8, docs/tasks.md).
 *
 * One uv_timer is armed for the earliest due task. When a task comes due
 * the module calls the `fire` callback (platformd: deliver an
 * AbilityTrigger to the instance through the lifecycle) and expects the
 * run's end through pd_tasks_run_done. Rules:
 *   - at most one run of a task is in flight: a task due while its previous
 *     run is still running is skipped (logged, counted in task_skipped);
 *   - a run that comes due late (the loop stalled, the clock jumped) fires
 *     once, and the next run is computed from now: runs are never queued;
 *   - missed runs: when the module starts, every task whose stored next_due
 *     is in the past (platformd was down at the time) fires ONCE with
 *     missed = true and scheduled_ms = that next_due, then is scheduled
 *     normally; task_missed counts them;
 *   - next_due is committed to the store before each run is delivered, so a
 *     run is delivered at most once, even across a crash.
 *
 * The clock is injectable (opts.now, unix ms) for unit tests: after moving
 * a fake clock, call pd_tasks_poke to run what became due.
 *
 * Loop thread only. */
#ifndef PLATFORMD_TASKS_H
#define PLATFORMD_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "metrics.h"
#include "store.h"

#define PD_TASKS_NAME_MAX PD_STORE_TASK_NAME_MAX /* 64 */
#define PD_TASKS_PER_INSTANCE_DEFAULT 64

typedef struct pd_tasks pd_tasks_t;

/* Wall clock in unix ms. */
typedef int64_t (*pd_tasks_now_fn)(void *arg);

/* A run is due: deliver it. Return 0 when the delivery started — then call
 * pd_tasks_run_done(t, run_id, ...) exactly once, later or even before
 * returning — or a negative errno when nothing was started: -EPERM /
 * -ENOENT = skipped (the instance is not running / gone), anything else =
 * a failed run. Strings are borrowed for the call. */
typedef int (*pd_tasks_fire_fn)(pd_tasks_t *t, uint64_t run_id, const char *instance,
                                const char *name, int64_t scheduled_ms, bool missed, void *arg);

typedef struct {
    uv_loop_t *loop;     /* required */
    pd_store_t *store;   /* NULL: registrations live in memory only */
    pd_tasks_now_fn now; /* NULL: plat_now_ms() */
    void *now_arg;
    pd_tasks_fire_fn fire; /* required */
    void *fire_arg;
    size_t max_per_instance; /* 0: PD_TASKS_PER_INSTANCE_DEFAULT */
    pd_metrics_t *metrics;   /* counters to bump; NULL: none */
} pd_tasks_opts_t;

/* A new scheduler with the tasks in the store (if any) loaded; missed runs
 * are fired from the loop (not from this call). NULL with `why` on error
 * (store unreadable, out of memory). Stored tasks whose cron no longer
 * parses are logged and ignored. */
pd_tasks_t *pd_tasks_new(const pd_tasks_opts_t *opts, char *why, size_t why_size);

/* Stop the timer and free everything (memory goes when the loop has run
 * the timer's close callback). Runs in flight are forgotten: a later
 * pd_tasks_run_done would be a use after free, so cancel them first.
 * NULL-safe; sets *t = NULL. */
void pd_tasks_destroy(pd_tasks_t **t);

/* Is `name` a valid task name: 1-64 of [A-Za-z0-9_.-]? */
bool pd_tasks_name_valid(const char *name);

/* Register (or replace: same instance and name) a task; committed to the
 * store before returning 0. Errors, with `why`:
 *   -EINVAL  bad instance id, bad name, or a cron expression that does not
 *            parse (why is the parser's message, naming the field) or that
 *            never fires;
 *   -ENOSPC  the instance has max_per_instance tasks already;
 *   -ENOENT  the store knows no such instance;
 *   other    the store's error. */
int pd_tasks_register(pd_tasks_t *t, const char *instance, const char *name, const char *cron,
                      char *why, size_t why_size);

/* Remove one task (committed). 0, -ENOENT (no such task), or the store's
 * error. A run in flight finishes unaccounted to the task. */
int pd_tasks_unregister(pd_tasks_t *t, const char *instance, const char *name);

/* Remove every task of `instance` (uninstall). Returns how many (>= 0) or
 * the store's error. */
int pd_tasks_forget_instance(pd_tasks_t *t, const char *instance);

/* The end of run `run_id` (from fire): status 0 = the plugin handled it,
 * else why it failed; -ECANCELED (platform stopping) counts as neither.
 * Counted even when the task was unregistered meanwhile; a run id that is
 * unknown or already ended is ignored. */
void pd_tasks_run_done(pd_tasks_t *t, uint64_t run_id, int status, const char *why);

/* Run what is due now (by the injected clock) and re-arm the timer. */
void pd_tasks_poke(pd_tasks_t *t);

/* A copy of one task's state. */
typedef struct {
    char instance[PLAT_UUID_LEN + 1];
    char name[PD_TASKS_NAME_MAX + 1];
    char cron[PD_STORE_CRON_MAX + 1];
    int64_t next_due;    /* unix ms; -1 when it never fires again */
    int64_t last_run;    /* scheduled time of the last run; 0 = none */
    bool in_flight;      /* a run is being delivered */
    bool missed_pending; /* a missed run waits to fire */
    uint64_t runs;       /* runs fired since start (this process) */
} pd_task_info_t;

/* 0 and *out, or -ENOENT. */
int pd_tasks_get(const pd_tasks_t *t, const char *instance, const char *name, pd_task_info_t *out);

/* Number of tasks of `instance` (NULL: all). */
size_t pd_tasks_count(const pd_tasks_t *t, const char *instance);

/* When the timer fires next (unix ms by the injected clock), -1 = idle. */
int64_t pd_tasks_next_due(const pd_tasks_t *t);

#endif
