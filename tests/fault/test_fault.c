/* Fault injection (issue 9): a driver performs lifecycle actions over many
 * plugin instances on the real daemons while it kill -9s platformd,
 * hostbootd and random plugin hosts at random moments (during an action in
 * flight), restarts the daemons, and then checks the invariants:
 *
 *  1. every instance is as the API last acknowledged it: an instance last
 *     acknowledged "running" is running again within a bounded time (the
 *     crash policy or the platform's reconciliation bring it back), any other
 *     acknowledged state is exactly what GET shows; no instance lost, none
 *     appeared;
 *  2. every live pluginhost process of this test is listed by the platform
 *     (same id and pid) as ready or stopping, and every host listed ready has
 *     a live process;
 *  3. no zombie whose parent is this test or the current hostbootd;
 *  4. no instance on two live hosts at once: the hosts' instance lists share
 *     none, every instance's host is a ready host, and every ready
 *     highPerformance host carries exactly one instance (a second host for
 *     an instance, or a host nobody can stop, shows as one with none).
 * The checks poll until all hold at one moment, within CHECK_DEADLINE_MS,
 * after one last fault injected with no action in flight. Also: no
 * sanitizer report in any host's log, and (at teardown, after the harness
 * stopped the daemons) no pluginhost of this test left running — any left
 * is killed by pid and fails the test.
 *
 * An action whose answer is lost to a fault (a 5xx, or no answer when
 * platformd died) has an unknown outcome: once the fault is recovered the
 * driver reads the instance and, as an operator would, repeats what was
 * asked until the platform acknowledges a state (lifecycle.md, "An action
 * that was in flight when platformd died is not resumed").
 *
 * Deterministic given a seed (the driver's choices; timing is not):
 *   PLAT_FAULT_SEED     seed (default FAULT_SEED_DEFAULT), printed
 *   PLAT_FAULT_ACTIONS  lifecycle actions (default 200)
 *   PLAT_FAULT_KINDS    the kinds of fault, a list of platformd, hostbootd, host
 *                       (default all three)
 *   PLAT_FAULT_VERBOSE  1: print every action
 * The action log is written to <temp dir>/actions.log (the dir is kept when
 * the test fails, or with PLAT_IT_KEEP=1). Prints one summary line:
 *   fault: seed=S actions=N (ok=.. conflict=.. failed-during-fault=..) kills: ...
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "plat/plat.h"

#ifndef EXAMPLES_DIR
#error "EXAMPLES_DIR (the built example packages) must be defined"
#endif

#define FAULT_SEED_DEFAULT 20261126u
#define FAULT_ACTIONS_DEFAULT 200
#define FAULT_INSTANCES 20 /* installed at the start: 12 highPerformance, 8 powerSave */
#define FAULT_EVERY_MIN 15 /* a fault every 15..35 actions (~25) */
#define FAULT_EVERY_SPAN 21
#define KILL_WINDOW_MS 400  /* the kill lands 0..400 ms after the action was sent */
#define UNINSTALL_ONE_IN 40 /* uninstall is rare (a replacement is installed) */
#define MAX_INST 128
#define MAX_DAEMON_RESTARTS 26 /* the harness registers at most 32 processes */

#define HB_INTERVAL_MS 200
#define HB_MISS 5
#define REQUEST_TIMEOUT_MS 90000L /* one action, a fault in its middle included */
#define RECOVER_DEADLINE_MS 30000 /* a restarted daemon serving / registered again */
#define QUIET_DEADLINE_MS 30000   /* an instance with no action in flight */
#define CHECK_DEADLINE_MS 45000   /* the invariants all hold */
#define SETTLE_TRIES 8

/* ---- the model -------------------------------------------------------------- */

typedef struct {
    char uuid[64];
    char plugin[16];
    char state[16];  /* as acknowledged (or observed after an unknown outcome) */
    bool removed;    /* uninstall acknowledged (or 404 after an unknown outcome) */
    bool pending;    /* outcome unknown: read it back once the fault is over */
    bool unresolved; /* could not be brought to an acknowledged state */
    bool observed;   /* state read back, not from an action's answer */
} inst_t;

typedef enum { K_PLATFORMD, K_HOSTBOOTD, K_HOST, K_N } kind_t;
static const char *const g_kind_name[K_N] = {"platformd", "hostbootd", "host"};

typedef struct {
    kind_t kind;
    int delay_ms;
    int pidfd; /* K_HOST */
    pid_t host_pid;
    char host_id[64];
    char old_boot[64]; /* K_HOSTBOOTD: the killed hostbootd's boot id */
    bool injected;
    bool skipped; /* nothing to kill (no ready host) */
} fault_t;

typedef struct {
    it_env_t *env;
    it_proc_t *pd, *hb;
    const char *pd_cfg, *hb_cfg;
    int daemon_restarts;
    inst_t inst[MAX_INST];
    size_t n_inst;
    bool discover; /* an install's answer was lost: look for new uuids */
    FILE *log;     /* actions.log */
    bool verbose;
    uint64_t rng;
    unsigned seed;
    /* counters */
    unsigned actions, ok, conflict, failed_fault, failed_other, settle_actions, installs,
        uninstalls;
    unsigned kills[K_N], skipped_host_kills, unresolved;
    unsigned landed_in_flight;       /* kills that hit an action in flight */
    uint64_t sum_action_ms, n_timed; /* durations of actions without a fault */
    bool kind_on[K_N];               /* the kinds of fault injected */
} fx_t;

static char g_endpoint[64]; /* for the sweep after teardown */
static FILE *g_log;         /* actions.log, closed at teardown */
static bool g_passed;       /* the test body ran to its end */

/* ---- small helpers ------------------------------------------------------------ */

static uint64_t rnd(fx_t *fx)
{
    /* xorshift64* */
    fx->rng ^= fx->rng >> 12;
    fx->rng ^= fx->rng << 25;
    fx->rng ^= fx->rng >> 27;
    return fx->rng * 2685821657736338717ull;
}

static unsigned rnd_below(fx_t *fx, unsigned n)
{
    return n ? (unsigned)(rnd(fx) % n) : 0;
}

static void flog(fx_t *fx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void flog(fx_t *fx, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (fx->log) {
        fprintf(fx->log, "%llu %s\n", (unsigned long long)it_now_ms(), line);
        fflush(fx->log);
    }
    if (fx->verbose)
        print_message("%s\n", line);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static unsigned env_uint(const char *name, unsigned def)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return def;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    return end && *end == 0 ? (unsigned)v : def;
}

/* ---- processes --------------------------------------------------------------- */

/* "pid (comm) S ppid ...": state and ppid; false when gone. */
static bool proc_stat(pid_t pid, char *state, pid_t *ppid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return false;
    buf[len] = 0;
    char *rp = strrchr(buf, ')');
    int pp = 0;
    if (!rp || sscanf(rp + 1, " %c %d", state, &pp) != 2)
        return false;
    *ppid = (pid_t)pp;
    return true;
}

/* A pluginhost of this test: argv[0] is a pluginhost, the bus endpoint is
 * one of its arguments; its --host-id into host_id[64]. */
static bool our_pluginhost(pid_t pid, const char *endpoint, char host_id[64])
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return false;
    buf[len] = 0;
    const char *argv0 = buf;
    const char *base = strrchr(argv0, '/');
    base = base ? base + 1 : argv0;
    if (strcmp(base, "pluginhost") != 0)
        return false;
    bool ours = false;
    host_id[0] = 0;
    const char *prev = NULL;
    for (const char *a = buf; a < buf + len; a += strlen(a) + 1) {
        if (strcmp(a, endpoint) == 0)
            ours = true;
        if (prev && strcmp(prev, "--host-id") == 0 && strlen(a) < 64)
            memcpy(host_id, a, strlen(a) + 1);
        prev = a;
    }
    return ours;
}

typedef struct {
    pid_t pid;
    char host_id[64];
} live_host_t;

#define MAX_LIVE 256

/* Live (not zombie) pluginhost processes of this test. */
static size_t scan_pluginhosts(const char *endpoint, live_host_t *out, size_t max)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        pid_t pid = (pid_t)atoi(e->d_name);
        char st;
        pid_t ppid;
        if (!proc_stat(pid, &st, &ppid) || st == 'Z')
            continue;
        char id[64];
        if (our_pluginhost(pid, endpoint, id)) {
            out[n].pid = pid;
            snprintf(out[n].host_id, sizeof out[n].host_id, "%s", id);
            n++;
        }
    }
    closedir(d);
    return n;
}

/* Zombies whose parent is one of `parents`; described into why. */
static unsigned count_zombies(const pid_t *parents, size_t n_parents, char *why, size_t size)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char st;
        pid_t ppid;
        if (!proc_stat((pid_t)atoi(e->d_name), &st, &ppid) || st != 'Z')
            continue;
        for (size_t i = 0; i < n_parents; i++)
            if (parents[i] > 0 && ppid == parents[i]) {
                n++;
                size_t used = strlen(why);
                snprintf(why + used, size - used, "zombie pid=%s ppid=%d; ", e->d_name, (int)ppid);
            }
    }
    closedir(d);
    return n;
}

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_kill(int pidfd)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}

/* ---- setup ----------------------------------------------------------------------- */

static void copy_file(it_env_t *env, const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    IT_CHECK(env, in >= 0, "open %s: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    IT_CHECK(env, out >= 0, "create %s: %s", to, strerror(errno));
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        IT_CHECK(env, write(out, buf, (size_t)n) == n, "write %s: %s", to, strerror(errno));
    IT_CHECK(env, n == 0, "read %s: %s", from, strerror(errno));
    close(in);
    IT_CHECK(env, close(out) == 0, "close %s", to);
}

/* The hello package as "hello-ps" in powerSave mode (as test_it_lifecycle). */
static void make_hello_ps(it_env_t *env, char *out, size_t size)
{
    snprintf(out, size, "%s/hello-ps", it_dir(env));
    IT_CHECK(env, mkdir(out, 0750) == 0, "mkdir %s: %s", out, strerror(errno));
    char from[IT_PATH_MAX], to[IT_PATH_MAX + 64];
    snprintf(from, sizeof from, "%s/hello/libhello.so", EXAMPLES_DIR);
    snprintf(to, sizeof to, "%s/libhello.so", out);
    copy_file(env, from, to);
    json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", "hello-ps", "version",
                          "1.0.0", "language", "c", "runtime_version", "1", "entry", "libhello.so",
                          "host_mode", "powerSave", "description", "hello in powerSave mode");
    assert_non_null(m);
    snprintf(to, sizeof to, "%s/manifest.json", out);
    IT_CHECK(env, json_dump_file(m, to, JSON_INDENT(2)) == 0, "write %s", to);
    json_decref(m);
}

static void register_package(it_env_t *env, const char *path, const char *id)
{
    json_t *req = json_pack("{s:s}", "path", path);
    json_t *body = NULL;
    int st = it_http_post(env, "/api/v1/packages", req, &body);
    json_decref(req);
    IT_CHECK(env, st == 201 && strcmp(it_json_str(body, "package.id"), id) == 0,
             "register %s: 201 with id %s (got %d, %s)", path, id, st,
             it_json_str(body, "package.id"));
    json_decref(body);
}

/* ---- waiting for recovery ---------------------------------------------------- */

typedef struct {
    const char *old_boot; /* NULL: any */
} hb_match_t;

static bool pred_hostboot_back(json_t *body, void *arg)
{
    const hb_match_t *m = arg;
    json_t *hb = it_json_find(json_object_get(body, "hostboots"), "id", IT_HOSTBOOT_ID);
    if (!hb || strcmp(it_json_str(hb, "state"), "ready") != 0)
        return false;
    return !m->old_boot || strcmp(it_json_str(hb, "boot_id"), m->old_boot) != 0;
}

static void wait_hostboot(fx_t *fx, const char *old_boot)
{
    hb_match_t m = {old_boot};
    it_wait_json(fx->env, "/api/v1/hostboots", pred_hostboot_back, &m, RECOVER_DEADLINE_MS,
                 old_boot ? "the restarted hostbootd registered (new boot id)"
                          : IT_HOSTBOOT_ID " registered");
}

static void hostboot_boot_id(fx_t *fx, char out[64])
{
    json_t *body = it_get_json(fx->env, "/api/v1/hostboots");
    json_t *hb = it_json_find(json_object_get(body, "hostboots"), "id", IT_HOSTBOOT_ID);
    snprintf(out, 64, "%s", it_json_str(hb, "boot_id"));
    json_decref(body);
}

/* ---- faults ---------------------------------------------------------------------- */

static void plan_fault(fx_t *fx, fault_t *f)
{
    memset(f, 0, sizeof *f);
    f->pidfd = -1;
    f->kind = (kind_t)rnd_below(fx, K_N);
    for (int k = 0; k < K_N && !fx->kind_on[f->kind]; k++) /* PLAT_FAULT_KINDS */
        f->kind = (kind_t)((f->kind + 1) % K_N);
    /* The kill lands at a random fraction of a typical action's duration
     * (measured), so that most land while the action is in flight. */
    unsigned frac = rnd_below(fx, 1000);
    uint64_t window = fx->n_timed ? fx->sum_action_ms / fx->n_timed * 3 / 2 : KILL_WINDOW_MS;
    if (window < 5)
        window = 5;
    if (window > KILL_WINDOW_MS)
        window = KILL_WINDOW_MS;
    f->delay_ms = (int)(window * frac / 1000);
    if (f->kind != K_HOST && fx->daemon_restarts >= MAX_DAEMON_RESTARTS) {
        f->kind = K_HOST; /* no room for another daemon process in the harness */
        if (!fx->kind_on[K_HOST]) {
            f->skipped = true;
            return;
        }
    }
    if (f->kind == K_HOSTBOOTD)
        hostboot_boot_id(fx, f->old_boot);
    if (f->kind != K_HOST)
        return;
    /* A random ready host: pinned by a pidfd now, so the kill cannot hit a
     * reused pid later. */
    json_t *body = it_get_json(fx->env, "/api/v1/hosts");
    json_t *hosts = json_object_get(body, "hosts");
    json_t *cand[MAX_LIVE];
    size_t n = 0, i;
    json_t *h;
    json_array_foreach(hosts, i, h)
    {
        json_t *pid = json_object_get(h, "pid");
        if (n < MAX_LIVE && strcmp(it_json_str(h, "state"), "ready") == 0 &&
            !json_is_true(json_object_get(h, "dev")) && json_is_integer(pid) &&
            json_integer_value(pid) > 0)
            cand[n++] = h;
    }
    unsigned pick = rnd_below(fx, (unsigned)(n ? n : 1));
    if (n == 0) {
        f->skipped = true;
        json_decref(body);
        return;
    }
    f->host_pid = (pid_t)json_integer_value(json_object_get(cand[pick], "pid"));
    snprintf(f->host_id, sizeof f->host_id, "%s", it_json_str(cand[pick], "id"));
    json_decref(body);
    f->pidfd = pidfd_open_(f->host_pid);
    char id[64];
    if (f->pidfd < 0 || !our_pluginhost(f->host_pid, it_bus_endpoint(fx->env), id) ||
        strcmp(id, f->host_id) != 0) {
        if (f->pidfd >= 0)
            close(f->pidfd);
        f->pidfd = -1;
        f->skipped = true; /* it ended meanwhile */
    }
}

static void inject(fx_t *fx, fault_t *f)
{
    f->injected = true;
    switch (f->kind) {
    case K_PLATFORMD:
        it_kill9(fx->pd);
        fx->pd = it_start_platformd(fx->env, fx->pd_cfg);
        fx->daemon_restarts++;
        fx->kills[K_PLATFORMD]++;
        flog(fx, "FAULT kill -9 platformd; restarted as pid=%d", (int)fx->pd->pid);
        break;
    case K_HOSTBOOTD:
        it_kill9(fx->hb);
        fx->hb = it_start_hostbootd(fx->env, fx->hb_cfg);
        fx->daemon_restarts++;
        fx->kills[K_HOSTBOOTD]++;
        flog(fx, "FAULT kill -9 hostbootd; restarted as pid=%d", (int)fx->hb->pid);
        break;
    case K_HOST:
        if (f->skipped) {
            fx->skipped_host_kills++;
            flog(fx, "FAULT kill -9 host: no ready host to kill");
            break;
        }
        if (pidfd_kill(f->pidfd) == 0) {
            fx->kills[K_HOST]++;
            flog(fx, "FAULT kill -9 host %s pid=%d", f->host_id, (int)f->host_pid);
        } else {
            fx->skipped_host_kills++;
            f->skipped = true;
            flog(fx, "FAULT kill -9 host %s pid=%d: already gone (%s)", f->host_id,
                 (int)f->host_pid, strerror(errno));
        }
        close(f->pidfd);
        f->pidfd = -1;
        break;
    default:
        break;
    }
}

/* Wait until the killed daemon's successor serves again. */
static void recover(fx_t *fx, const fault_t *f)
{
    uint64_t t0 = it_now_ms();
    if (f->kind == K_PLATFORMD) {
        it_wait_healthy(fx->env, RECOVER_DEADLINE_MS);
        wait_hostboot(fx, NULL);
    } else if (f->kind == K_HOSTBOOTD) {
        wait_hostboot(fx, f->old_boot);
    }
    if (f->kind != K_HOST)
        flog(fx, "RECOVERED from the %s kill in %llu ms", g_kind_name[f->kind],
             (unsigned long long)(it_now_ms() - t0));
}

/* ---- actions ------------------------------------------------------------------- */

static size_t add_inst(fx_t *fx, const char *uuid, const char *plugin, const char *state)
{
    IT_CHECK(fx->env, fx->n_inst < MAX_INST, "too many instances");
    inst_t *in = &fx->inst[fx->n_inst];
    memset(in, 0, sizeof *in);
    snprintf(in->uuid, sizeof in->uuid, "%s", uuid);
    snprintf(in->plugin, sizeof in->plugin, "%s", plugin);
    snprintf(in->state, sizeof in->state, "%s", state);
    return fx->n_inst++;
}

static inst_t *find_inst(fx_t *fx, const char *uuid)
{
    for (size_t i = 0; i < fx->n_inst; i++)
        if (strcmp(fx->inst[i].uuid, uuid) == 0)
            return &fx->inst[i];
    return NULL;
}

/* POST path body, with `f` (may be NULL) injected at its moment; recovers
 * from the fault before returning. Returns the status, *resp the body. */
static int request(fx_t *fx, const char *path, const char *body, fault_t *f, json_t **resp)
{
    it_http_bg_t *r = it_http_bg_start(fx->env, path, body, REQUEST_TIMEOUT_MS);
    uint64_t t0 = it_now_ms();
    while (!it_http_bg_poll(r, f && !f->injected ? 2 : 10))
        if (f && !f->injected && it_now_ms() - t0 >= (uint64_t)f->delay_ms) {
            inject(fx, f);
            fx->landed_in_flight += !f->skipped;
        }
    if (f && !f->injected)
        inject(fx, f); /* the action was quicker: the kill lands right after it */
    else if (!f) {
        fx->sum_action_ms += it_now_ms() - t0;
        fx->n_timed++;
    }
    int st = it_http_bg_finish(&r, resp);
    if (f)
        recover(fx, f);
    return st;
}

/* Record an action's answer in the model. */
static void apply(fx_t *fx, inst_t *in, const char *action, int st, json_t *resp, bool fault,
                  bool settling)
{
    fx->actions += !settling;
    fx->settle_actions += settling;
    char *dump = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    flog(fx, "%s %s %s %s (%s) -> %d %.300s", settling ? "SETTLE" : "ACTION", action, in->uuid,
         in->plugin, in->state, st, dump ? dump : "(no JSON)");
    free(dump);
    if (st == 200 || st == 201) {
        fx->ok += !settling;
        if (strcmp(action, "uninstall") == 0) {
            in->removed = true;
            fx->uninstalls++;
        } else {
            const char *s = it_json_str(resp, "instance.state");
            IT_CHECK(fx->env, *s, "%s %s answered %d without the instance", action, in->uuid, st);
            snprintf(in->state, sizeof in->state, "%s", s);
        }
        in->pending = false;
        in->observed = false;
        in->unresolved = false;
        return;
    }
    if (st == 409) {
        fx->conflict += !settling;
        return;
    }
    IT_CHECK(fx->env, st < 400 || st >= 500, "%s %s: unexpected %d", action, in->uuid, st);
    if (!settling && fault)
        fx->failed_fault++;
    else if (!settling)
        fx->failed_other++;
    in->pending = true;
}

static int act(fx_t *fx, inst_t *in, const char *action, fault_t *f, bool settling)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s/%s", in->uuid, action);
    json_t *resp = NULL;
    int st = request(fx, path, "{}", f, &resp);
    apply(fx, in, action, st, resp, f != NULL, settling);
    json_decref(resp);
    return st;
}

/* Install one instance; NULL when its answer was lost (then fx->discover). */
static inst_t *install(fx_t *fx, const char *plugin, fault_t *f, bool must)
{
    json_t *req = json_pack("{s:s, s:s, s:s, s:{s:s}}", "plugin", plugin, "version", "1.0.0", "org",
                            "fault", "config", "greeting_name", plugin);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    assert_non_null(text);
    json_t *resp = NULL;
    int st = request(fx, "/api/v1/instances", text, f, &resp);
    free(text);
    fx->installs++;
    const char *uuid = it_json_str(resp, "instance.uuid");
    if (must)
        IT_CHECK(fx->env, st == 201 && plat_uuid_valid(uuid), "install %s: 201 (got %d)", plugin,
                 st);
    inst_t *in = NULL;
    if (plat_uuid_valid(uuid)) {
        in = &fx->inst[add_inst(fx, uuid, plugin, "installed")];
        apply(fx, in, "install", st, resp, f != NULL, false);
    } else {
        fx->actions++;
        if (f)
            fx->failed_fault++;
        else
            fx->failed_other++;
        fx->discover = true;
        flog(fx, "ACTION install %s -> %d: answer lost", plugin, st);
    }
    json_decref(resp);
    return in;
}

/* GET the instance until no action is in flight and no automatic restart is
 * pending; NULL on 404 (uninstalled). */
static json_t *wait_quiet(fx_t *fx, const char *uuid)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s", uuid);
    uint64_t t0 = it_now_ms();
    for (;;) {
        json_t *body = NULL;
        int st = it_http_get(fx->env, path, &body);
        if (st == 404) {
            json_decref(body);
            return NULL;
        }
        json_t *inst = st == 200 ? json_object_get(body, "instance") : NULL;
        if (inst && json_is_false(json_object_get(inst, "busy")) &&
            json_is_null(json_object_get(inst, "restart_in_ms"))) {
            json_incref(inst);
            json_decref(body);
            return inst;
        }
        json_decref(body);
        IT_CHECK(fx->env, it_now_ms() - t0 < QUIET_DEADLINE_MS,
                 "instance %s still busy after %d ms (last GET %d)", uuid, QUIET_DEADLINE_MS, st);
        sleep_ms(50);
    }
}

/* What an operator does to get `desired` from `state`; NULL: nothing valid. */
static const char *corrective(const char *state, const char *desired)
{
    bool failed = strcmp(state, "failed") == 0;
    if (strcmp(desired, "uninstalled") == 0)
        return strcmp(state, "running") == 0 ? "stop" : "uninstall";
    if (failed)
        return "start";
    if (strcmp(desired, "running") == 0)
        return strcmp(state, "enabled") == 0 || strcmp(state, "stopped") == 0 ? "start" : "enable";
    if (strcmp(desired, "stopped") == 0)
        return strcmp(state, "running") == 0 ? "stop" : NULL;
    if (strcmp(desired, "enabled") == 0)
        return strcmp(state, "installed") == 0 || strcmp(state, "disabled") == 0 ? "enable" : NULL;
    if (strcmp(desired, "disabled") == 0)
        return strcmp(state, "enabled") == 0 || strcmp(state, "stopped") == 0 ? "disable" : NULL;
    return NULL;
}

/* An instance whose last action's outcome is unknown: read it back and, if
 * it is not where it was asked to be, repeat the action until acknowledged. */
static void settle(fx_t *fx, inst_t *in)
{
    for (int attempt = 0; attempt < SETTLE_TRIES; attempt++) {
        json_t *inst = wait_quiet(fx, in->uuid);
        if (!inst) {
            in->removed = true;
            in->pending = false;
            flog(fx, "SETTLE %s: gone (404)", in->uuid);
            return;
        }
        char st[16], desired[16];
        snprintf(st, sizeof st, "%s", it_json_str(inst, "state"));
        snprintf(desired, sizeof desired, "%s", it_json_str(inst, "desired_state"));
        json_decref(inst);
        snprintf(in->state, sizeof in->state, "%s", st);
        if (strcmp(st, desired) == 0) {
            in->pending = false;
            in->observed = true;
            flog(fx, "SETTLE %s: reads %s as desired", in->uuid, st);
            return;
        }
        const char *fix = corrective(st, desired);
        if (!fix)
            break;
        act(fx, in, fix, NULL, true);
        if (!in->pending)
            return;
        if (in->removed)
            return;
    }
    in->pending = false;
    in->unresolved = true;
    fx->unresolved++;
    flog(fx, "SETTLE %s: left unresolved in %s", in->uuid, in->state);
}

/* After an install whose answer was lost: adopt uuids the model lacks. */
static void discover(fx_t *fx)
{
    fx->discover = false;
    json_t *body = it_get_json(fx->env, "/api/v1/instances");
    size_t i;
    json_t *el;
    json_array_foreach(json_object_get(body, "instances"), i, el)
    {
        const char *uuid = it_json_str(el, "uuid");
        if (!find_inst(fx, uuid)) {
            inst_t *in =
                &fx->inst[add_inst(fx, uuid, it_json_str(el, "plugin"), it_json_str(el, "state"))];
            in->pending = true;
            flog(fx, "DISCOVER %s %s (an install whose answer was lost)", uuid, in->plugin);
        }
    }
    json_decref(body);
}

static void settle_all(fx_t *fx)
{
    if (fx->discover)
        discover(fx);
    for (size_t i = 0; i < fx->n_inst; i++)
        if (fx->inst[i].pending && !fx->inst[i].removed)
            settle(fx, &fx->inst[i]);
}

/* A valid action for the (believed) state. */
static const char *pick_action(fx_t *fx, const char *state)
{
    bool un = rnd_below(fx, UNINSTALL_ONE_IN) == 0;
    unsigned r = rnd_below(fx, 3);
    if (strcmp(state, "running") == 0)
        return "stop";
    if (un)
        return "uninstall";
    if (strcmp(state, "installed") == 0 || strcmp(state, "disabled") == 0)
        return "enable";
    if (strcmp(state, "enabled") == 0 || strcmp(state, "stopped") == 0)
        return r < 2 ? "start" : "disable";
    return "start"; /* failed */
}

/* ---- invariants ---------------------------------------------------------------- */

typedef struct {
    unsigned instances, processes, hosts, zombie_parents, placements, hp_hosts, lost;
} checked_t;

static void add_why(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_why(char *why, size_t size, const char *fmt, ...)
{
    size_t used = strlen(why);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why + used, size - used, fmt, ap);
    va_end(ap);
}

/* All four invariants at one moment; false with the reasons in why. */
static bool check_all(fx_t *fx, checked_t *c, char *why, size_t size)
{
    memset(c, 0, sizeof *c);
    why[0] = 0;
    bool ok = true;

    /* 1. instances as acknowledged */
    json_t *ibody = NULL;
    int st = it_http_get(fx->env, "/api/v1/instances", &ibody);
    json_t *list = st == 200 ? json_object_get(ibody, "instances") : NULL;
    if (!json_is_array(list)) {
        add_why(why, size, "GET /api/v1/instances: %d; ", st);
        json_decref(ibody);
        return false;
    }
    for (size_t i = 0; i < fx->n_inst; i++) {
        const inst_t *in = &fx->inst[i];
        json_t *el = it_json_find(list, "uuid", in->uuid);
        if (in->removed) {
            if (el) {
                ok = false;
                add_why(why, size, "%s uninstalled but listed; ", in->uuid);
            }
            continue;
        }
        if (in->unresolved)
            continue;
        c->instances++;
        if (!el) {
            ok = false;
            add_why(why, size, "%s (%s) lost; ", in->uuid, in->state);
            continue;
        }
        const char *s = it_json_str(el, "state"), *d = it_json_str(el, "desired_state");
        if (strcmp(s, in->state) != 0 || strcmp(d, in->state) != 0 ||
            !json_is_false(json_object_get(el, "busy"))) {
            ok = false;
            add_why(why, size, "%s %s: want %s, is %s/%s%s (%s); ", in->uuid, in->plugin, in->state,
                    s, d, json_is_true(json_object_get(el, "busy")) ? " busy" : "",
                    it_json_str(el, "last_error"));
        }
    }
    size_t i;
    json_t *el;
    json_array_foreach(list, i, el)
    {
        if (!find_inst(fx, it_json_str(el, "uuid"))) {
            ok = false;
            add_why(why, size, "%s listed but never installed by the driver; ",
                    it_json_str(el, "uuid"));
        }
    }

    /* 2. processes <-> hosts */
    json_t *body = NULL;
    st = it_http_get(fx->env, "/api/v1/hosts", &body);
    json_t *hosts = st == 200 ? json_object_get(body, "hosts") : NULL;
    if (!json_is_array(hosts)) {
        add_why(why, size, "GET /api/v1/hosts: %d; ", st);
        json_decref(body);
        json_decref(ibody);
        return false;
    }
    static live_host_t live[MAX_LIVE];
    size_t n_live = scan_pluginhosts(it_bus_endpoint(fx->env), live, MAX_LIVE);
    for (size_t k = 0; k < n_live; k++) {
        c->processes++;
        json_t *h = it_json_find(hosts, "id", live[k].host_id);
        const char *hs = h ? it_json_str(h, "state") : "";
        json_t *pid = h ? json_object_get(h, "pid") : NULL;
        if (!h || (strcmp(hs, "ready") != 0 && strcmp(hs, "stopping") != 0) ||
            !json_is_integer(pid) || json_integer_value(pid) != live[k].pid) {
            ok = false;
            add_why(why, size, "live pluginhost pid=%d %s is %s%s (listed pid %lld); ",
                    (int)live[k].pid, live[k].host_id, h ? "listed " : "not listed", hs,
                    json_is_integer(pid) ? (long long)json_integer_value(pid) : -1LL);
        }
    }
    json_t *h;
    json_array_foreach(hosts, i, h)
    {
        if (strcmp(it_json_str(h, "state"), "ready") != 0)
            continue;
        c->hosts++;
        json_t *pid = json_object_get(h, "pid");
        bool found = false;
        for (size_t k = 0; k < n_live && !found; k++)
            found = json_is_integer(pid) && live[k].pid == json_integer_value(pid) &&
                    strcmp(live[k].host_id, it_json_str(h, "id")) == 0;
        if (!found) {
            ok = false;
            add_why(why, size, "host %s listed ready but pid %lld is not a live pluginhost; ",
                    it_json_str(h, "id"),
                    json_is_integer(pid) ? (long long)json_integer_value(pid) : -1LL);
        }
    }

    /* 4. no instance on two live hosts, no second host for a highPerformance
     * instance: (a) the hosts' own instance lists never share an instance;
     * (b) an instance's host is a ready host; a ready highPerformance host
     * carries exactly one instance (one with none left over would be a
     * duplicate or a leak). */
    json_array_foreach(hosts, i, h)
    {
        const char *hs = it_json_str(h, "state");
        if (strcmp(hs, "ready") != 0 && strcmp(hs, "stopping") != 0)
            continue;
        size_t j;
        json_t *u;
        json_array_foreach(json_object_get(h, "instances"), j, u)
        {
            c->placements++;
            const char *uuid = json_is_string(u) ? json_string_value(u) : it_json_str(u, "uuid");
            size_t k;
            json_t *h2;
            json_array_foreach(hosts, k, h2)
            {
                const char *hs2 = it_json_str(h2, "state");
                if (k <= i || (strcmp(hs2, "ready") != 0 && strcmp(hs2, "stopping") != 0))
                    continue;
                size_t m;
                json_t *u2;
                json_array_foreach(json_object_get(h2, "instances"), m, u2)
                {
                    const char *uuid2 =
                        json_is_string(u2) ? json_string_value(u2) : it_json_str(u2, "uuid");
                    if (*uuid && strcmp(uuid, uuid2) == 0) {
                        ok = false;
                        add_why(why, size, "instance %s on two live hosts %s (%s) and %s (%s); ",
                                uuid, it_json_str(h, "id"), it_json_str(h, "mode"),
                                it_json_str(h2, "id"), it_json_str(h2, "mode"));
                    }
                }
            }
        }
    }
    json_array_foreach(list, i, el)
    {
        json_t *hv = json_object_get(el, "host");
        if (!json_is_string(hv))
            continue;
        c->placements++;
        json_t *hh = it_json_find(hosts, "id", json_string_value(hv));
        if (!hh || strcmp(it_json_str(hh, "state"), "ready") != 0) {
            ok = false;
            add_why(why, size, "instance %s is on host %s, which is %s; ", it_json_str(el, "uuid"),
                    json_string_value(hv), hh ? it_json_str(hh, "state") : "not listed");
        }
    }
    json_array_foreach(hosts, i, h)
    {
        if (strcmp(it_json_str(h, "state"), "ready") != 0 ||
            strcmp(it_json_str(h, "mode"), "highPerformance") != 0)
            continue;
        c->hp_hosts++;
        unsigned n_on = 0;
        size_t j;
        json_t *in;
        json_array_foreach(list, j, in)
        {
            json_t *hv = json_object_get(in, "host");
            n_on += json_is_string(hv) && strcmp(json_string_value(hv), it_json_str(h, "id")) == 0;
        }
        if (n_on != 1) {
            ok = false;
            add_why(why, size, "ready highPerformance host %s carries %u instances; ",
                    it_json_str(h, "id"), n_on);
        }
    }
    /* Listed as lost yet no process: reported, not an invariant. */
    json_array_foreach(hosts, i, h)
    {
        c->lost += strcmp(it_json_str(h, "state"), "lost") == 0;
    }
    json_decref(body);
    json_decref(ibody);

    /* 3. zombies */
    pid_t parents[2] = {getpid(), fx->hb && it_alive(fx->hb) ? fx->hb->pid : 0};
    c->zombie_parents = parents[1] ? 2 : 1;
    if (count_zombies(parents, 2, why + strlen(why), size - strlen(why)) > 0)
        ok = false;
    return ok;
}

/* <dir>/<tag>-{hosts,instances,hostboots}.json for the diagnosis. */
static void dump_state(fx_t *fx, const char *tag)
{
    static const char *const what[] = {"hosts", "instances", "hostboots"};
    for (size_t i = 0; i < sizeof what / sizeof what[0]; i++) {
        char url[64], file[IT_PATH_MAX + 64];
        snprintf(url, sizeof url, "/api/v1/%s", what[i]);
        snprintf(file, sizeof file, "%s/%s-%s.json", it_dir(fx->env), tag, what[i]);
        json_t *body = NULL;
        if (it_http_get(fx->env, url, &body) == 200 && body)
            json_dump_file(body, file, JSON_INDENT(1));
        json_decref(body);
    }
}

/* Sanitizer reports in the hosts' own logs (the harness scans the daemons'
 * logs at teardown, not these): "" when none, else the first one. */
static void scan_host_logs(fx_t *fx, char *found, size_t size, unsigned *n_logs)
{
    static const char *const markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                          "runtime error:", "AddressSanitizer:DEADLYSIGNAL"};
    found[0] = 0;
    *n_logs = 0;
    char dir[IT_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s/hosts", it_dir(fx->env), IT_HOSTBOOT_LOG_DIR);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && !found[0]) {
        if (e->d_name[0] == '.')
            continue;
        char path[IT_PATH_MAX + 384];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        (*n_logs)++;
        char line[1024];
        while (fgets(line, sizeof line, f) && !found[0])
            for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
                if (strstr(line, markers[i])) {
                    snprintf(found, size, "%s: %.300s", e->d_name, line);
                    break;
                }
        fclose(f);
    }
    closedir(d);
}

/* ---- the test ------------------------------------------------------------------ */

static int setup(void **state)
{
    *state = it_new();
    return 0;
}

/* After the harness stopped everything: no pluginhost of this test may be
 * left (a clean hostbootd stop ends its hosts, adopted ones included).
 * Whatever is left is killed by pid, then the test fails. */
static int teardown(void **state)
{
    it_env_t *env = *state;
    if (g_log)
        fclose(g_log);
    g_log = NULL;
    if (!g_passed) /* keep the logs and actions.log of a failed run */
        setenv("PLAT_IT_KEEP", "1", 1);
    it_destroy(&env);
    if (!g_endpoint[0])
        return 0;
    live_host_t left[MAX_LIVE];
    size_t n = 0;
    for (int tries = 0; tries < 100; tries++) {
        n = scan_pluginhosts(g_endpoint, left, MAX_LIVE);
        if (n == 0)
            break;
        sleep_ms(50);
    }
    for (size_t i = 0; i < n; i++) {
        int fd = pidfd_open_(left[i].pid);
        char id[64];
        if (fd >= 0 && our_pluginhost(left[i].pid, g_endpoint, id))
            pidfd_kill(fd);
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "fault: pluginhost pid=%d %s outlived hostbootd: killed\n",
                (int)left[i].pid, left[i].host_id);
    }
    g_endpoint[0] = 0;
    if (n)
        fail_msg("%zu pluginhost process(es) outlived the test's hostbootd", n);
    return 0;
}

static void test_fault_injection(void **state)
{
    it_env_t *env = *state;
    static fx_t fxs;
    fx_t *fx = &fxs;
    memset(fx, 0, sizeof *fx);
    fx->env = env;
    fx->seed = env_uint("PLAT_FAULT_SEED", FAULT_SEED_DEFAULT);
    unsigned n_actions = env_uint("PLAT_FAULT_ACTIONS", FAULT_ACTIONS_DEFAULT);
    fx->verbose = env_uint("PLAT_FAULT_VERBOSE", 0) != 0;
    const char *kinds = getenv("PLAT_FAULT_KINDS");
    for (int k = 0; k < K_N; k++)
        fx->kind_on[k] = !kinds || !*kinds || strstr(kinds, g_kind_name[k]) != NULL;
    IT_CHECK(env, fx->kind_on[0] || fx->kind_on[1] || fx->kind_on[2],
             "PLAT_FAULT_KINDS=%s names none of platformd, hostbootd, host", kinds);
    /* splitmix64 of the seed: never 0 */
    uint64_t z = (uint64_t)fx->seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    fx->rng = (z ^ (z >> 31)) | 1;
    snprintf(g_endpoint, sizeof g_endpoint, "%s", it_bus_endpoint(env));
    char logpath[IT_PATH_MAX + 16];
    snprintf(logpath, sizeof logpath, "%s/actions.log", it_dir(env));
    fx->log = g_log = fopen(logpath, "w");
    print_message("fault: seed=%u actions=%u kinds=%s%s%s (PLAT_FAULT_SEED, PLAT_FAULT_ACTIONS, "
                  "PLAT_FAULT_KINDS); log %s\n",
                  fx->seed, n_actions, fx->kind_on[K_PLATFORMD] ? "platformd," : "",
                  fx->kind_on[K_HOSTBOOTD] ? "hostbootd," : "", fx->kind_on[K_HOST] ? "host" : "",
                  logpath);

    /* platformd: the crash policy never gives up during the run; hosts have
     * time to start under a sanitizer on a loaded machine. */
    json_t *extra = json_pack("{s:{s:i, s:i, s:i, s:i}, s:{s:i}}", "plugins", "restart_initial_ms",
                              200, "restart_max_ms", 1000, "crash_limit", 1000, "idle_ms", 2000,
                              "hosts", "ready_timeout_ms", 30000);
    assert_non_null(extra);
    fx->pd_cfg = it_platformd_config(env, HB_INTERVAL_MS, HB_MISS, extra);
    json_decref(extra);
    fx->hb_cfg = it_hostbootd_config(env, IT_HOSTBOOT_NAME, NULL);
    fx->pd = it_start_platformd(env, fx->pd_cfg);
    fx->hb = it_start_hostbootd(env, fx->hb_cfg);
    it_wait_healthy(env, RECOVER_DEADLINE_MS);
    wait_hostboot(fx, NULL);

    char path[IT_PATH_MAX];
    snprintf(path, sizeof path, "%s/hello", EXAMPLES_DIR);
    register_package(env, path, "hello");
    make_hello_ps(env, path, sizeof path);
    register_package(env, path, "hello-ps");

    uint64_t t0 = it_now_ms();
    for (unsigned k = 0; k < FAULT_INSTANCES; k++)
        install(fx, k % 5 < 3 ? "hello" : "hello-ps", NULL, true);
    fx->actions = fx->ok = fx->installs = 0; /* the setup installs are not counted */

    unsigned next_fault = FAULT_EVERY_MIN + rnd_below(fx, FAULT_EVERY_SPAN);
    for (unsigned a = 0; a < n_actions; a++) {
        fault_t f, *fp = NULL;
        if (a == next_fault) {
            plan_fault(fx, &f);
            fp = &f;
            next_fault = a + FAULT_EVERY_MIN + rnd_below(fx, FAULT_EVERY_SPAN);
        }
        size_t alive[MAX_INST], n_alive = 0;
        for (size_t i = 0; i < fx->n_inst; i++)
            if (!fx->inst[i].removed)
                alive[n_alive++] = i;
        IT_CHECK(env, n_alive > 0, "no instance left");
        inst_t *in = &fx->inst[alive[rnd_below(fx, (unsigned)n_alive)]];
        const char *action = pick_action(fx, in->state);
        if (fp)
            flog(fx, "FAULT planned: kill -9 %s %d ms into the next action", g_kind_name[fp->kind],
                 fp->delay_ms);
        act(fx, in, action, fp, false);
        settle_all(fx);
        if (in->removed) /* keep the population: a replacement */
            install(fx, rnd_below(fx, 5) < 3 ? "hello" : "hello-ps", NULL, false);
        settle_all(fx);
    }
    /* One last fault with no action in flight, so that the checks below
     * also see the recovery itself (the crash policy, the reconciliation,
     * the adoption) within their bound. */
    fault_t last;
    plan_fault(fx, &last);
    flog(fx, "FAULT planned: kill -9 %s after the last action", g_kind_name[last.kind]);
    inject(fx, &last);
    recover(fx, &last);
    settle_all(fx);
    uint64_t t_loop = it_now_ms() - t0;

    /* Whatever is down comes back (each fault was recovered already: this
     * only proves both daemons serve), then the invariants within a bound. */
    IT_CHECK(env, it_alive(fx->pd), "platformd is running");
    IT_CHECK(env, it_alive(fx->hb), "hostbootd is running");
    it_wait_healthy(env, RECOVER_DEADLINE_MS);
    wait_hostboot(fx, NULL);
    uint64_t t1 = it_now_ms();
    checked_t c;
    char why[8192];
    unsigned passes = 0;
    for (;;) {
        passes++;
        if (check_all(fx, &c, why, sizeof why))
            break;
        if (it_now_ms() - t1 >= CHECK_DEADLINE_MS) {
            flog(fx, "INVARIANTS FAILED: %s", why);
            dump_state(fx, "failed");
            it_fail(env, "fault (seed %u): invariants still broken after %d ms: %s", fx->seed,
                    CHECK_DEADLINE_MS, why);
        }
        sleep_ms(100);
    }
    uint64_t t_check = it_now_ms() - t1;
    dump_state(fx, "final");
    char report[1024];
    unsigned n_logs = 0;
    scan_host_logs(fx, report, sizeof report, &n_logs);
    IT_CHECK(env, !report[0], "a sanitizer report in a host log: %s", report);
    unsigned n_checks =
        c.instances + c.processes + c.hosts + c.zombie_parents + c.placements + c.hp_hosts;
    char summary[1536];
    snprintf(summary, sizeof summary,
             "fault: seed=%u actions=%u (ok=%u conflict=%u failed-during-fault=%u "
             "failed-other=%u; installs=%u uninstalls=%u; settle=%u unresolved=%u) "
             "kills: platformd=%u hostbootd=%u host=%u (during an action=%u, host kills "
             "skipped=%u) invariants checked: %u (instances as acknowledged=%u, live "
             "processes known=%u, ready hosts alive=%u, zombie scans=%u, placements=%u, "
             "highPerformance hosts with one instance=%u) hold after %llu ms (%u passes); "
             "no sanitizer report in %u host logs; hosts listed lost=%u; loop %llu ms",
             fx->seed, fx->actions, fx->ok, fx->conflict, fx->failed_fault, fx->failed_other,
             fx->installs, fx->uninstalls, fx->settle_actions, fx->unresolved,
             fx->kills[K_PLATFORMD], fx->kills[K_HOSTBOOTD], fx->kills[K_HOST],
             fx->landed_in_flight, fx->skipped_host_kills, n_checks, c.instances, c.processes,
             c.hosts, c.zombie_parents, c.placements, c.hp_hosts, (unsigned long long)t_check,
             passes, n_logs, c.lost, (unsigned long long)t_loop);
    flog(fx, "%s", summary);
    printf("%s\n", summary);
    fflush(stdout);
    IT_CHECK(env, fx->unresolved == 0, "%u instance(s) could not be settled (see actions.log)",
             fx->unresolved);

    g_passed = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fault_injection, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
