/* Scheduled tasks: registrations and the timer (see tasks.h). */
#include "tasks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "plat/plat.h"

/* The timer never sleeps longer than this, so that a wall-clock jump
 * (NTP step, suspend) is noticed within a minute. */
#define TASKS_MAX_SLEEP_MS 60000

typedef struct task {
    struct task *next;
    char instance[PLAT_UUID_LEN + 1];
    char name[PD_TASKS_NAME_MAX + 1];
    char cron[PD_STORE_CRON_MAX + 1];
    pd_cron_t c;
    int64_t next_due;    /* unix ms; -1 = never again */
    int64_t last_run;    /* scheduled time of the last run; 0 = none */
    bool missed_pending; /* fire once at start, missed = true */
    int64_t missed_at;   /* ...scheduled at this (the stored next_due) */
    uint64_t run_id;     /* the run in flight; 0 = none */
    uint64_t runs;       /* runs fired by this process */
} task_t;

/* A run started by fire and not yet ended (outlives its task if that is
 * unregistered meanwhile). */
typedef struct run {
    struct run *next;
    uint64_t id;
} run_t;

struct pd_tasks {
    pd_tasks_opts_t o;
    task_t *tasks;
    run_t *runs; /* runs in flight */
    uv_timer_t timer;
    uint64_t last_run_id;
    bool in_run; /* run_due is on the stack */
    bool again;  /* ...and was asked to run again */
    bool closing;
};

static int64_t now_ms(const pd_tasks_t *t)
{
    return t->o.now ? t->o.now(t->o.now_arg) : (int64_t)plat_now_ms();
}

static void count(const pd_tasks_t *t, size_t field_offset)
{
    if (t->o.metrics)
        (*(uint64_t *)((char *)t->o.metrics + field_offset))++;
}
#define COUNT(t, field) count((t), offsetof(pd_metrics_t, field))

static task_t *find(const pd_tasks_t *t, const char *instance, const char *name)
{
    for (task_t *k = t->tasks; k; k = k->next)
        if (strcmp(k->instance, instance) == 0 && strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

static task_t *find_run(const pd_tasks_t *t, uint64_t run_id)
{
    for (task_t *k = t->tasks; k; k = k->next)
        if (k->run_id == run_id)
            return k;
    return NULL;
}

/* Remove run `id` from the runs in flight; false when it was not there. */
static bool run_forget(pd_tasks_t *t, uint64_t id)
{
    for (run_t **pp = &t->runs; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            run_t *r = *pp;
            *pp = r->next;
            free(r);
            return true;
        }
    return false;
}

static void unlink_task(pd_tasks_t *t, task_t *k)
{
    for (task_t **pp = &t->tasks; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            return;
        }
}

bool pd_tasks_name_valid(const char *name)
{
    if (!name)
        return false;
    size_t n = strlen(name);
    if (n < 1 || n > PD_TASKS_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Write a task's run bookkeeping; a failure is logged, not fatal (the run
 * is still delivered; a restart may then fire it once more as missed). */
static void persist_run(pd_tasks_t *t, const task_t *k, const char *result)
{
    if (!t->o.store)
        return;
    int rc = pd_store_update_task_run(t->o.store, k->instance, k->name, k->next_due, k->last_run,
                                      result);
    if (rc < 0 && rc != -ENOENT)
        plat_log_err("tasks", "cannot record the task run: %s, ignoring instance=%s task=%s",
                     pd_store_why(t->o.store), k->instance, k->name);
}

/* ---- the timer ---------------------------------------------------------- */

static void on_timer(uv_timer_t *h);

static void arm(pd_tasks_t *t)
{
    if (t->closing)
        return;
    int64_t now = now_ms(t);
    int64_t due = -1;
    for (const task_t *k = t->tasks; k; k = k->next) {
        int64_t d = k->missed_pending ? now : k->next_due;
        if (d >= 0 && (due < 0 || d < due))
            due = d;
    }
    if (due < 0) {
        uv_timer_stop(&t->timer);
        return;
    }
    int64_t delay = due > now ? due - now : 0;
    if (delay > TASKS_MAX_SLEEP_MS)
        delay = TASKS_MAX_SLEEP_MS;
    uv_timer_start(&t->timer, on_timer, (uint64_t)delay, 0);
}

/* One due task: advance it, then deliver (or skip) the run. */
static void fire_one(pd_tasks_t *t, task_t *k, int64_t now)
{
    bool missed = k->missed_pending;
    int64_t scheduled = missed ? k->missed_at : k->next_due;
    k->missed_pending = false;
    /* From now: runs missed in between (a stall) are not queued. */
    k->next_due = pd_cron_next(&k->c, now > scheduled ? now : scheduled);
    if (k->run_id) {
        COUNT(t, task_skipped);
        plat_log_warn("tasks",
                      "task run skipped: the previous run is still in flight "
                      "instance=%s task=%s scheduled_ms=%lld",
                      k->instance, k->name, (long long)scheduled);
        persist_run(t, k, "skipped");
        return;
    }
    k->last_run = scheduled;
    k->runs++;
    run_t *run = malloc(sizeof *run);
    if (!run) {
        COUNT(t, task_failures);
        plat_log_err("tasks", "task run failed: out of memory instance=%s task=%s", k->instance,
                     k->name);
        return;
    }
    uint64_t run_id = ++t->last_run_id;
    run->id = run_id;
    run->next = t->runs;
    t->runs = run;
    k->run_id = run_id;
    persist_run(t, k, "running");
    if (missed) {
        COUNT(t, task_missed);
        plat_log_notice("tasks",
                        "firing a run missed while the platform was down "
                        "instance=%s task=%s scheduled_ms=%lld late_ms=%lld",
                        k->instance, k->name, (long long)scheduled, (long long)(now - scheduled));
    } else {
        plat_log_debug("tasks", "task due instance=%s task=%s scheduled_ms=%lld", k->instance,
                       k->name, (long long)scheduled);
    }
    char instance[PLAT_UUID_LEN + 1], name[PD_TASKS_NAME_MAX + 1];
    snprintf(instance, sizeof instance, "%s", k->instance);
    snprintf(name, sizeof name, "%s", k->name);
    int rc = t->o.fire(t, run_id, instance, name, scheduled, missed, t->o.fire_arg);
    if (rc == 0)
        return;
    /* Nothing started: the task may be gone meanwhile, look it up again. */
    run_forget(t, run_id);
    k = find_run(t, run_id);
    if (k)
        k->run_id = 0;
    if (rc == -EPERM || rc == -ENOENT) {
        COUNT(t, task_skipped);
        plat_log_info("tasks",
                      "task run skipped: the instance is not running instance=%s "
                      "task=%s scheduled_ms=%lld",
                      instance, name, (long long)scheduled);
        if (k)
            persist_run(t, k, "skipped");
    } else {
        COUNT(t, task_failures);
        plat_log_warn("tasks", "task run failed: %s instance=%s task=%s scheduled_ms=%lld",
                      strerror(-rc), instance, name, (long long)scheduled);
        if (k)
            persist_run(t, k, "error");
    }
}

static void run_due(pd_tasks_t *t)
{
    if (t->in_run) { /* a fire callback poked us: finish this pass first */
        t->again = true;
        return;
    }
    t->in_run = true;
    do {
        t->again = false;
        int64_t now = now_ms(t);
        /* Each fire_one moves its task past now, so this ends; the list
         * is scanned afresh each time because a fire may change it. */
        for (;;) {
            task_t *due = NULL;
            for (task_t *k = t->tasks; k && !due; k = k->next)
                if (k->missed_pending || (k->next_due >= 0 && k->next_due <= now))
                    due = k;
            if (!due || t->closing)
                break;
            fire_one(t, due, now);
        }
    } while (t->again && !t->closing);
    t->in_run = false;
    arm(t);
}

static void on_timer(uv_timer_t *h)
{
    run_due(h->data);
}

void pd_tasks_poke(pd_tasks_t *t)
{
    if (t)
        run_due(t);
}

/* ---- registrations ------------------------------------------------------- */

static task_t *task_new(const char *instance, const char *name, const char *cron,
                        const pd_cron_t *c)
{
    task_t *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    snprintf(k->instance, sizeof k->instance, "%s", instance);
    snprintf(k->name, sizeof k->name, "%s", name);
    snprintf(k->cron, sizeof k->cron, "%s", cron);
    k->c = *c;
    return k;
}

typedef struct {
    pd_tasks_t *t;
    int64_t now;
    size_t loaded, missed, bad;
} load_t;

static int load_one(const pd_store_task_t *st, void *arg)
{
    load_t *l = arg;
    pd_cron_t c;
    char why[256];
    if (!pd_tasks_name_valid(st->name) || !plat_uuid_valid(st->instance) ||
        pd_cron_parse(st->cron, &c, why, sizeof why) < 0) {
        l->bad++;
        plat_log_warn("tasks",
                      "stored task ignored: invalid name or cron (%s) instance=%s "
                      "task=%s",
                      st->cron, st->instance, st->name);
        return 0;
    }
    task_t *k = task_new(st->instance, st->name, st->cron, &c);
    if (!k)
        return -ENOMEM;
    k->last_run = st->last_run;
    int64_t next_now = pd_cron_next(&c, l->now);
    if (st->next_due >= 0 && st->next_due < l->now) {
        k->missed_pending = true; /* fired once, then next_now */
        k->missed_at = st->next_due;
        k->next_due = next_now;
        l->missed++;
    } else if (st->next_due < 0 || (next_now >= 0 && st->next_due > next_now)) {
        k->next_due = next_now; /* the clock went back: do not wait for the old date */
    } else {
        k->next_due = st->next_due;
    }
    k->next = l->t->tasks;
    l->t->tasks = k;
    l->loaded++;
    return 0;
}

pd_tasks_t *pd_tasks_new(const pd_tasks_opts_t *opts, char *why, size_t why_size)
{
    if (!opts || !opts->loop || !opts->fire) {
        snprintf(why, why_size, "tasks: loop and fire callback are required");
        return NULL;
    }
    pd_tasks_t *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    t->o = *opts;
    if (!t->o.max_per_instance)
        t->o.max_per_instance = PD_TASKS_PER_INSTANCE_DEFAULT;
    if (t->o.store) {
        load_t l = {.t = t, .now = now_ms(t)};
        int rc = pd_store_list_tasks(t->o.store, NULL, load_one, &l);
        if (rc < 0) {
            snprintf(why, why_size, "cannot load the scheduled tasks: %s",
                     rc == -ENOMEM ? "out of memory" : pd_store_why(t->o.store));
            while (t->tasks) {
                task_t *k = t->tasks;
                t->tasks = k->next;
                free(k);
            }
            free(t);
            return NULL;
        }
        if (l.loaded || l.bad)
            plat_log_info("tasks",
                          "scheduled tasks loaded: %zu, of which %zu missed a run "
                          "while the platform was down (fired once now); %zu ignored",
                          l.loaded, l.missed, l.bad);
    }
    uv_timer_init(t->o.loop, &t->timer);
    t->timer.data = t;
    arm(t);
    return t;
}

static void free_tasks(uv_handle_t *h)
{
    free(h->data);
}

void pd_tasks_destroy(pd_tasks_t **tp)
{
    if (!tp || !*tp)
        return;
    pd_tasks_t *t = *tp;
    *tp = NULL;
    t->closing = true;
    while (t->tasks) {
        task_t *k = t->tasks;
        t->tasks = k->next;
        free(k);
    }
    while (t->runs) {
        run_t *r = t->runs;
        t->runs = r->next;
        free(r);
    }
    uv_close((uv_handle_t *)&t->timer, free_tasks);
}

static size_t count_of(const pd_tasks_t *t, const char *instance)
{
    size_t n = 0;
    for (const task_t *k = t->tasks; k; k = k->next)
        n += !instance || strcmp(k->instance, instance) == 0;
    return n;
}

int pd_tasks_register(pd_tasks_t *t, const char *instance, const char *name, const char *cron,
                      char *why, size_t why_size)
{
    if (!t || !instance || !plat_uuid_valid(instance)) {
        snprintf(why, why_size, "instance: not an instance id");
        return -EINVAL;
    }
    if (!pd_tasks_name_valid(name)) {
        snprintf(why, why_size, "name: must be 1-%d characters of A-Z a-z 0-9 _ . -",
                 PD_TASKS_NAME_MAX);
        return -EINVAL;
    }
    pd_cron_t c;
    char cwhy[200];
    if (pd_cron_parse(cron, &c, cwhy, sizeof cwhy) < 0) {
        snprintf(why, why_size, "cron: %s", cwhy);
        return -EINVAL;
    }
    int64_t now = now_ms(t);
    int64_t next = pd_cron_next(&c, now);
    if (next < 0) {
        snprintf(why, why_size, "cron: \"%s\" never fires", cron);
        return -EINVAL;
    }
    task_t *k = find(t, instance, name);
    if (!k && count_of(t, instance) >= t->o.max_per_instance) {
        snprintf(why, why_size, "the instance has %zu tasks already, the most allowed",
                 t->o.max_per_instance);
        return -ENOSPC;
    }
    if (t->o.store) {
        pd_store_task_t st = {0};
        snprintf(st.instance, sizeof st.instance, "%s", instance);
        snprintf(st.name, sizeof st.name, "%s", name);
        snprintf(st.cron, sizeof st.cron, "%s", cron);
        st.next_due = next;
        int rc = pd_store_put_task(t->o.store, &st);
        if (rc < 0) {
            snprintf(why, why_size, "%s",
                     rc == -ENOENT ? "no such instance" : pd_store_why(t->o.store));
            return rc;
        }
    }
    bool replaced = k != NULL;
    if (!k) {
        k = task_new(instance, name, cron, &c);
        if (!k) {
            /* Recorded but not scheduled: the next start picks it up. */
            snprintf(why, why_size, "out of memory");
            return -ENOMEM;
        }
        k->next = t->tasks;
        t->tasks = k;
    } else {
        snprintf(k->cron, sizeof k->cron, "%s", cron);
        k->c = c;
        k->missed_pending = false;
    }
    k->next_due = next;
    plat_log_info("tasks", "task %s instance=%s task=%s cron=\"%s\" next_due_ms=%lld",
                  replaced ? "replaced" : "registered", instance, name, cron, (long long)next);
    if (!t->in_run)
        arm(t);
    return 0;
}

int pd_tasks_unregister(pd_tasks_t *t, const char *instance, const char *name)
{
    if (!t || !instance || !name)
        return -EINVAL;
    task_t *k = find(t, instance, name);
    if (t->o.store) {
        int rc = pd_store_delete_task(t->o.store, instance, name);
        if (rc < 0 && !(rc == -ENOENT && k))
            return rc;
    } else if (!k) {
        return -ENOENT;
    }
    if (k) {
        unlink_task(t, k);
        free(k);
    }
    plat_log_info("tasks", "task unregistered instance=%s task=%s", instance, name);
    if (!t->in_run)
        arm(t);
    return 0;
}

int pd_tasks_forget_instance(pd_tasks_t *t, const char *instance)
{
    if (!t || !instance)
        return -EINVAL;
    if (t->o.store) {
        int rc = pd_store_delete_tasks_of(t->o.store, instance, NULL);
        if (rc < 0)
            return rc;
    }
    int n = 0;
    for (task_t **pp = &t->tasks; *pp;) {
        task_t *k = *pp;
        if (strcmp(k->instance, instance) == 0) {
            *pp = k->next;
            free(k);
            n++;
        } else {
            pp = &k->next;
        }
    }
    if (n)
        plat_log_info("tasks", "tasks removed with their instance instance=%s tasks=%d", instance,
                      n);
    if (!t->in_run)
        arm(t);
    return n;
}

void pd_tasks_run_done(pd_tasks_t *t, uint64_t run_id, int status, const char *why)
{
    if (!t || !run_id || !run_forget(t, run_id))
        return; /* unknown, or ended already */
    task_t *k = find_run(t, run_id);
    if (status == -ECANCELED) { /* platform stopping: neither success nor failure */
        if (k)
            k->run_id = 0;
        return;
    }
    /* -EPERM / -ENOENT: not delivered (the instance is not running, or
     * gone), the same as when fire() returns them: skipped, not failed. */
    bool skipped = status == -EPERM || status == -ENOENT;
    if (status == 0) {
        COUNT(t, task_runs);
    } else if (skipped) {
        COUNT(t, task_skipped);
        plat_log_info("tasks", "task run skipped: %s instance=%s task=%s",
                      why && why[0] ? why : "the instance is not running", k ? k->instance : "-",
                      k ? k->name : "-");
    } else {
        COUNT(t, task_failures);
        plat_log_warn("tasks", "task run failed: %s (%d) instance=%s task=%s", why ? why : "",
                      status, k ? k->instance : "-", k ? k->name : "-");
    }
    if (!k)
        return;
    k->run_id = 0;
    persist_run(t, k, status == 0 ? "ok" : skipped ? "skipped" : "error");
}

int pd_tasks_get(const pd_tasks_t *t, const char *instance, const char *name, pd_task_info_t *out)
{
    const task_t *k = t && instance && name ? find(t, instance, name) : NULL;
    if (!k)
        return -ENOENT;
    memset(out, 0, sizeof *out);
    snprintf(out->instance, sizeof out->instance, "%s", k->instance);
    snprintf(out->name, sizeof out->name, "%s", k->name);
    snprintf(out->cron, sizeof out->cron, "%s", k->cron);
    out->next_due = k->next_due;
    out->last_run = k->last_run;
    out->in_flight = k->run_id != 0;
    out->missed_pending = k->missed_pending;
    out->runs = k->runs;
    return 0;
}

size_t pd_tasks_count(const pd_tasks_t *t, const char *instance)
{
    return t ? count_of(t, instance) : 0;
}

int64_t pd_tasks_next_due(const pd_tasks_t *t)
{
    if (!t)
        return -1;
    int64_t due = -1;
    for (const task_t *k = t->tasks; k; k = k->next) {
        int64_t d = k->missed_pending ? (k->missed_at >= 0 ? k->missed_at : 0) : k->next_due;
        if (d >= 0 && (due < 0 || d < due))
            due = d;
    }
    return due;
}
