/* bench_spawn: spawn-to-ready time of plugin hosts through the platform,
 * against a bare fork/exec baseline, plus the memory an idle host costs.
 * A benchmark, not a test (issue 3; docs/performance.md).
 *
 *   1. baseline: a ROUTER on a free loopback port; N times fork + exec
 *      bench_minimal (connects a DEALER, sends its pid, exits) and time
 *      fork -> message received.
 *   2. platform: platformd + hostbootd on free loopback ports in a private
 *      temp dir; POST N hosts in batches of B (a batch is started back to
 *      back, then awaited), collecting each host's "startup_ms" (measured by
 *      platformd: start request -> the host's own ready report) and the
 *      client-side POST -> "ready" seen time and the host's CPU time then;
 *      with all N ready, VmRSS / RssAnon / Pss of every host and the daemons;
 *      then DELETE all and wait until every one is "exited".
 *
 * Everything it starts is killed by PID on every exit path: the daemons
 * (SIGTERM, then SIGKILL) and any orphaned host (the driver is a child
 * subreaper, so hosts of a dead hostbootd become its children). Should the
 * driver itself be killed, PR_SET_PDEATHSIG takes the daemons down and the
 * hosts exit on their own after hosts.platform_lost_exit_ms.
 * Exit status 0 on success, 1 on any failure (message on stderr), 2 on usage. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "testports.h"

#define HOSTBOOT_NAME "bench"
#define HOSTBOOT_ID "hostboot-" HOSTBOOT_NAME
#define UP_DEADLINE_MS 10000     /* daemons healthy / registered */
#define BASELINE_RECV_MS 5000    /* one baseline child's message */
#define BATCH_DEADLINE_MS 60000  /* one batch of hosts ready */
#define DELETE_DEADLINE_MS 60000 /* all hosts exited */
#define STOP_DEADLINE_MS 10000   /* a daemon exits on SIGTERM */
#define HTTP_TIMEOUT_MS 10000
#define HOST_ID_MAX 64

/* ---- options ---------------------------------------------------------------- */

typedef struct {
    const char *platformd, *hostbootd, *pluginhost, *minimal;
    int hosts;    /* hosts through the platform */
    int batch;    /* started back to back, then awaited */
    int baseline; /* baseline fork/execs */
    int warmup;   /* unmeasured baseline runs first */
    int poll_ms;  /* client-side poll interval */
    bool keep;    /* keep the temp dir */
} opts_t;

/* ---- state for cleanup -------------------------------------------------------- */

typedef struct {
    const char *name;
    pid_t pid; /* 0: not started */
    bool reaped;
    int status;
    char log[PATH_MAX];
} proc_t;

enum { P_PLATFORMD, P_HOSTBOOTD, P__COUNT };
static proc_t g_procs[P__COUNT] = {{.name = "platformd"}, {.name = "hostbootd"}};
static pid_t g_child;   /* the baseline child in flight, 0 if none */
static char g_dir[256]; /* short: paths under it fit PATH_MAX */
static bool g_keep;
static volatile sig_atomic_t g_stop;
static CURL *g_curl;
static int g_http_port;

static void cleanup(bool ok);

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    cleanup(false);
    exit(1);
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* ---- time ----------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double ms_since(uint64_t t0)
{
    return (double)(now_ns() - t0) / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- processes ----------------------------------------------------------------- */

/* Reap p if it has exited; true while it is still running. */
static bool proc_running(proc_t *p)
{
    if (!p->pid || p->reaped)
        return false;
    pid_t r = waitpid(p->pid, &p->status, WNOHANG);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->reaped = true;
        return false;
    }
    return true;
}

static void describe_status(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "wait status 0x%x", (unsigned)status);
}

/* Fail when the user interrupted us or a daemon died under us. */
static void check_alive(void)
{
    if (g_stop)
        fail("interrupted");
    for (int i = 0; i < P__COUNT; i++) {
        proc_t *p = &g_procs[i];
        if (p->pid && !p->reaped && !proc_running(p)) {
            char st[64];
            describe_status(p->status, st, sizeof st);
            fail("%s (pid %d) died during the run: %s; its log: %s", p->name, (int)p->pid, st,
                 p->log);
        }
    }
}

/* fork + exec with stdin /dev/null, stdout/stderr to `log`, cwd `dir`, no
 * other fds, and SIGKILL should the driver die. */
static void proc_start(proc_t *p, char *const argv[], const char *dir)
{
    snprintf(p->log, sizeof p->log, "%s/%s.log", g_dir, p->name);
    int logfd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (logfd < 0 || nullfd < 0)
        fail("open %s: %s", p->log, strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid == 0) {
        /* Own process group: a Ctrl-C at the terminal reaches only the
         * driver, which then stops the daemons in order. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent || setpgid(0, 0) != 0)
            _exit(127);
        if (chdir(dir) != 0 || dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
            _exit(127);
        close_range(3, ~0U, 0);
        execv(argv[0], argv);
        static const char msg[] = "bench: execv failed\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    close(logfd);
    close(nullfd);
    p->pid = pid;
}

/* SIGTERM, wait STOP_DEADLINE_MS, then SIGKILL. True if it exited 0 by itself
 * (or had already been reaped with status 0). */
static bool proc_stop(proc_t *p)
{
    if (!p->pid)
        return true;
    if (!p->reaped) {
        kill(p->pid, SIGTERM);
        uint64_t t0 = now_ns();
        while (proc_running(p) && ms_since(t0) < STOP_DEADLINE_MS)
            sleep_ms(10);
        if (!p->reaped) {
            fprintf(stderr, "bench: %s (pid %d) ignored SIGTERM for %d ms, killing it\n", p->name,
                    (int)p->pid, STOP_DEADLINE_MS);
            kill(p->pid, SIGKILL);
            if (waitpid(p->pid, &p->status, 0) == p->pid)
                p->reaped = true;
            return false;
        }
    }
    if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
        char st[64];
        describe_status(p->status, st, sizeof st);
        fprintf(stderr, "bench: %s (pid %d) ended with %s; its log: %s\n", p->name, (int)p->pid, st,
                p->log);
        return false;
    }
    return true;
}

/* Parent pid, comm and state of `pid` from /proc/<pid>/stat (comm and state
 * may be NULL); false if it is gone. */
static bool proc_stat(pid_t pid, pid_t *ppid, char *comm, size_t comm_size, char *state_out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren < open_paren)
        return false;
    if (comm)
        snprintf(comm, comm_size, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
    char state;
    int pp;
    if (sscanf(close_paren + 1, " %c %d", &state, &pp) != 2)
        return false;
    *ppid = pp;
    if (state_out)
        *state_out = state;
    return true;
}

/* Pids of the live processes whose parent is `parent` (named `comm` if not
 * NULL). Returns how many were found, up to max. */
static size_t children_of(pid_t parent, const char *comm, pid_t *out, size_t max)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        pid_t pp;
        char name[64];
        if (proc_stat((pid_t)pid, &pp, name, sizeof name, NULL) && pp == parent &&
            (!comm || strcmp(name, comm) == 0))
            out[n++] = (pid_t)pid;
    }
    closedir(d);
    return n;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Kill and reap everything we started, by PID; idempotent. `ok`: the run
 * succeeded so far (then the daemons must exit 0 on SIGTERM). */
static void cleanup(bool ok)
{
    static bool done;
    if (done)
        return;
    done = true;
    bool clean = true;
    if (g_child > 0) {
        kill(g_child, SIGKILL);
        waitpid(g_child, NULL, 0);
        g_child = 0;
    }
    /* hostbootd first: on SIGTERM it terminates and reaps its hosts. */
    clean &= proc_stop(&g_procs[P_HOSTBOOTD]);
    clean &= proc_stop(&g_procs[P_PLATFORMD]);
    /* Hosts orphaned by a killed hostbootd were reparented to us (child
     * subreaper): SIGKILL each once, by pid, and reap them all. */
    uint64_t t0 = now_ns();
    static pid_t killed_pids[1024];
    size_t killed = 0;
    for (;;) {
        pid_t kids[256];
        size_t n = children_of(getpid(), NULL, kids, 256);
        for (size_t i = 0; i < n; i++) {
            char state = 0;
            pid_t pp;
            bool again = false;
            for (size_t k = 0; k < killed && !again; k++)
                again = killed_pids[k] == kids[i];
            if (!again && proc_stat(kids[i], &pp, NULL, 0, &state) && state != 'Z' &&
                kill(kids[i], SIGKILL) == 0) {
                fprintf(stderr, "bench: killed leftover process pid %d\n", (int)kids[i]);
                if (killed < sizeof killed_pids / sizeof killed_pids[0])
                    killed_pids[killed++] = kids[i];
            }
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (n == 0 || ms_since(t0) > STOP_DEADLINE_MS)
            break;
        sleep_ms(10);
    }
    if (killed)
        clean = false;
    if (g_curl) {
        curl_easy_cleanup(g_curl);
        g_curl = NULL;
    }
    if (g_dir[0]) {
        if (ok && clean && !g_keep)
            nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        else
            fprintf(stderr, "bench: logs and configs kept in %s\n", g_dir);
    }
    if (ok && !clean) {
        fprintf(stderr, "bench: error: the daemons did not shut down cleanly\n");
        exit(1);
    }
}

/* ---- HTTP ---------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
} buf_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    buf_t *b = arg;
    size_t n = size * nmemb;
    char *d = realloc(b->data, b->len + n + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, ptr, n);
    b->data = d;
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

/* One request to the API (kept-alive connection). Returns the HTTP status,
 * or -1 when no response came (*err set). *out: the parsed JSON body (NULL
 * when it is not JSON); pass NULL to ignore it. */
static long http(const char *method, const char *path, const char *body, json_t **out, char *err,
                 size_t err_size)
{
    if (out)
        *out = NULL;
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_http_port, path);
    buf_t b = {0};
    struct curl_slist *hdr = NULL;
    curl_easy_reset(g_curl); /* keeps the connection cache */
    curl_easy_setopt(g_curl, CURLOPT_URL, url);
    curl_easy_setopt(g_curl, CURLOPT_PROXY, ""); /* never an http_proxy from the env */
    curl_easy_setopt(g_curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(g_curl, CURLOPT_TIMEOUT_MS, (long)HTTP_TIMEOUT_MS);
    curl_easy_setopt(g_curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(g_curl, CURLOPT_WRITEDATA, &b);
    if (strcmp(method, "POST") == 0) {
        hdr = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(g_curl, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(g_curl, CURLOPT_POSTFIELDS, body ? body : "");
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(g_curl, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(g_curl);
    curl_slist_free_all(hdr);
    long status = -1;
    if (rc != CURLE_OK) {
        snprintf(err, err_size, "%s %s: %s", method, url, curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(g_curl, CURLINFO_RESPONSE_CODE, &status);
        if (out && b.data)
            *out = json_loadb(b.data, b.len, 0, NULL);
        snprintf(err, err_size, "%s %s -> %ld %.300s", method, url, status, b.data ? b.data : "");
    }
    free(b.data);
    return status;
}

/* A request that must answer `want` with a JSON body (returned, owned). */
static json_t *http_must(const char *method, const char *path, const char *body, long want)
{
    char err[512];
    json_t *out;
    long st = http(method, path, body, &out, err, sizeof err);
    if (st != want || !out) {
        json_decref(out);
        fail("%s (wanted %ld with a JSON body)", err, want);
    }
    return out;
}

/* ---- /proc memory ------------------------------------------------------------- */

/* "Key:   123 kB" from /proc/<pid>/<file>; -1 if absent. */
static long proc_kb(pid_t pid, const char *file, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t klen = strlen(key);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kb = strtol(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* User + system CPU time of `pid` in ms (/proc/<pid>/stat); -1 if gone. */
static double proc_cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    /* after the comm: state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (!p ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* ---- statistics ---------------------------------------------------------------- */

typedef struct {
    size_t n;
    double median, p99, mean, min, max;
} stats_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median (mean of the middle two for even n) and nearest-rank p99. */
static stats_t stats_of(const double *v, size_t n)
{
    stats_t s = {.n = n};
    if (n == 0)
        return s;
    double *c = malloc(n * sizeof *c);
    if (!c)
        fail("out of memory");
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_double);
    s.median = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    size_t rank = (99 * n + 99) / 100; /* ceil(0.99 n), 1-based */
    s.p99 = c[(rank ? rank : 1) - 1];
    s.min = c[0];
    s.max = c[n - 1];
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += c[i];
    s.mean = sum / (double)n;
    free(c);
    return s;
}

/* ---- 1. baseline -------------------------------------------------------------- */

/* ms[i]: fork -> message received; cpu[i]: the child's CPU time, fork to exit. */
static void run_baseline(const opts_t *o, double *ms, double *cpu)
{
    void *ctx = zmq_ctx_new();
    void *router = ctx ? zmq_socket(ctx, ZMQ_ROUTER) : NULL;
    if (!router)
        fail("zmq ROUTER: %s", zmq_strerror(zmq_errno()));
    int timeout = BASELINE_RECV_MS, linger = 0;
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    char ep[64];
    int bound = -1;
    for (int tries = 0; tries < 20 && bound != 0; tries++)
        if (plat_test_free_endpoint(ep, sizeof ep) > 0)
            bound = zmq_bind(router, ep);
    if (bound != 0)
        fail("cannot bind a ROUTER on a free loopback port: %s", zmq_strerror(zmq_errno()));

    char *argv[] = {(char *)o->minimal, ep, NULL};
    pid_t parent = getpid();
    for (int i = -o->warmup; i < o->baseline; i++) {
        check_alive();
        uint64_t t0 = now_ns();
        pid_t pid = fork();
        if (pid < 0)
            fail("fork: %s", strerror(errno));
        if (pid == 0) {
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
                _exit(127);
            execv(argv[0], argv);
            _exit(127);
        }
        g_child = pid;
        char id[256], payload[64];
        int n;
        for (;;) {
            n = zmq_recv(router, id, sizeof id, 0);
            if (n >= 0 || zmq_errno() != EINTR)
                break;
            check_alive();
        }
        if (n < 0)
            fail("baseline: child pid %d sent nothing within %d ms: %s", (int)pid, BASELINE_RECV_MS,
                 zmq_strerror(zmq_errno()));
        int more = 0;
        size_t more_size = sizeof more;
        zmq_getsockopt(router, ZMQ_RCVMORE, &more, &more_size);
        n = more ? zmq_recv(router, payload, sizeof payload - 1, 0) : -1;
        double t = ms_since(t0);
        if (n < 0 || n >= (int)sizeof payload)
            fail("baseline: malformed message from pid %d", (int)pid);
        payload[n] = 0;
        if (strtol(payload, NULL, 10) != pid)
            fail("baseline: expected a message from pid %d, got \"%s\"", (int)pid, payload);
        int status;
        struct rusage ru;
        if (wait4(pid, &status, 0, &ru) != pid)
            fail("baseline: waitpid %d: %s", (int)pid, strerror(errno));
        g_child = 0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char st[64];
            describe_status(status, st, sizeof st);
            fail("baseline: %s ended with %s", o->minimal, st);
        }
        if (i >= 0) {
            ms[i] = t;
            cpu[i] = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
                     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
        }
    }
    zmq_close(router);
    zmq_ctx_term(ctx);
}

/* ---- 2. platform ----------------------------------------------------------------- */

typedef struct {
    char id[HOST_ID_MAX];
    pid_t pid;
    uint64_t posted_ns;
    double client_ms;  /* POST -> "ready" first seen */
    double startup_ms; /* platformd's figure */
    double cpu_ms;     /* the host's CPU time when first seen ready */
    bool ready, exited;
} host_t;

typedef struct {
    double host_rss_median, host_rss_mean, host_anon_median, host_pss_mean;
    long pd_idle, hb_idle, pd_busy, hb_busy; /* VmRSS kB */
    double host_cpu_median, host_cpu_mean;   /* CPU ms of a host until measured (idle) */
    double pd_cpu, hb_cpu; /* CPU ms of the daemons while the hosts were started */
} mem_t;

static const char *write_file(const char *name, json_t *root)
{
    static char paths[2][PATH_MAX];
    static int next;
    char *path = paths[next++ % 2];
    snprintf(path, PATH_MAX, "%s/%s", g_dir, name);
    if (json_dump_file(root, path, JSON_INDENT(2)) != 0)
        fail("cannot write %s", path);
    json_decref(root);
    return path;
}

static void wait_healthy(void)
{
    uint64_t t0 = now_ns();
    char err[512];
    for (;;) {
        check_alive();
        json_t *body;
        long st = http("GET", "/healthz", NULL, &body, err, sizeof err);
        json_decref(body);
        if (st == 200)
            return;
        if (ms_since(t0) > UP_DEADLINE_MS)
            fail("platformd not healthy within %d ms: %s", UP_DEADLINE_MS, err);
        sleep_ms(20);
    }
}

static void wait_hostboot(void)
{
    uint64_t t0 = now_ns();
    for (;;) {
        check_alive();
        json_t *body = http_must("GET", "/api/v1/hostboots", NULL, 200);
        size_t i;
        json_t *hb;
        bool ready = false;
        json_array_foreach(json_object_get(body, "hostboots"), i, hb)
        {
            if (strcmp(json_string_value(json_object_get(hb, "id")) ?: "", HOSTBOOT_ID) == 0 &&
                strcmp(json_string_value(json_object_get(hb, "state")) ?: "", "ready") == 0)
                ready = true;
        }
        json_decref(body);
        if (ready)
            return;
        if (ms_since(t0) > UP_DEADLINE_MS)
            fail("%s not registered within %d ms; see %s", HOSTBOOT_ID, UP_DEADLINE_MS,
                 g_procs[P_HOSTBOOTD].log);
        sleep_ms(20);
    }
}

static void post_host(host_t *h)
{
    h->posted_ns = now_ns();
    json_t *r = http_must("POST", "/api/v1/hosts", "{\"language\":\"c\",\"version\":\"1\"}", 202);
    const char *id = json_string_value(json_object_get(json_object_get(r, "host"), "id"));
    if (!id || strlen(id) >= HOST_ID_MAX)
        fail("POST /api/v1/hosts answered 202 without a host id");
    snprintf(h->id, sizeof h->id, "%s", id);
    json_decref(r);
}

static void fail_host(const host_t *h, json_t *o, const char *state)
{
    char *text = json_dumps(o, JSON_COMPACT);
    fprintf(stderr, "bench: host %s: %s\n", h->id, text ? text : "?");
    free(text);
    fail("host %s ended up \"%s\" instead of ready/exited; see %s and %s/logs/hosts/%s.log", h->id,
         state, g_procs[P_HOSTBOOTD].log, g_dir, h->id);
}

/* Poll GET /api/v1/hosts until every host in h[0..n) is ready (want_exited
 * false) or exited (true). */
static void await_hosts(host_t *h, size_t n, bool want_exited, int poll_ms, int deadline_ms)
{
    uint64_t t0 = now_ns();
    size_t pending = n;
    while (pending) {
        check_alive();
        json_t *body = http_must("GET", "/api/v1/hosts", NULL, 200);
        uint64_t seen = now_ns();
        json_t *list = json_object_get(body, "hosts");
        size_t idx;
        json_t *o;
        json_array_foreach(list, idx, o)
        {
            const char *id = json_string_value(json_object_get(o, "id"));
            const char *state = json_string_value(json_object_get(o, "state"));
            if (!id || !state)
                continue;
            host_t *x = NULL;
            for (size_t i = 0; i < n && !x; i++)
                if (strcmp(h[i].id, id) == 0)
                    x = &h[i];
            if (!x || (want_exited ? x->exited : x->ready))
                continue;
            if (!want_exited && strcmp(state, "ready") == 0) {
                json_t *su = json_object_get(o, "startup_ms");
                json_int_t pid = json_integer_value(json_object_get(o, "pid"));
                if (!json_is_integer(su) || pid <= 0)
                    fail_host(x, o, "ready without startup_ms/pid");
                x->ready = true;
                x->pid = (pid_t)pid;
                x->startup_ms = (double)json_integer_value(su);
                x->client_ms = (double)(seen - x->posted_ns) / 1e6;
                x->cpu_ms = proc_cpu_ms(x->pid);
                pending--;
            } else if (want_exited && strcmp(state, "exited") == 0) {
                x->exited = true;
                pending--;
            } else if (strcmp(state, "starting") && strcmp(state, "ready") &&
                       strcmp(state, "stopping")) {
                fail_host(x, o, state);
            }
        }
        json_decref(body);
        if (!pending)
            break;
        if (ms_since(t0) > deadline_ms)
            fail("%zu of %zu hosts not %s within %d ms; see %s", pending, n,
                 want_exited ? "exited" : "ready", deadline_ms, g_procs[P_HOSTBOOTD].log);
        sleep_ms(poll_ms);
    }
}

static void delete_hosts(host_t *h, size_t n, int poll_ms)
{
    char path[128];
    for (size_t i = 0; i < n; i++) {
        check_alive();
        snprintf(path, sizeof path, "/api/v1/hosts/%s", h[i].id);
        json_decref(http_must("DELETE", path, NULL, 202));
    }
    await_hosts(h, n, true, poll_ms, DELETE_DEADLINE_MS);
}

static void measure_memory(const host_t *h, size_t n, mem_t *m)
{
    double *rss = calloc(n, sizeof *rss), *anon = calloc(n, sizeof *anon),
           *cpu = calloc(n, sizeof *cpu);
    double pss_sum = 0;
    if (!rss || !anon || !cpu)
        fail("out of memory");
    pid_t hb = g_procs[P_HOSTBOOTD].pid;
    for (size_t i = 0; i < n; i++) {
        pid_t ppid;
        char comm[64];
        if (!proc_stat(h[i].pid, &ppid, comm, sizeof comm, NULL))
            fail("host %s: pid %d is gone although the platform lists it ready", h[i].id,
                 (int)h[i].pid);
        if (ppid != hb || strcmp(comm, "pluginhost") != 0)
            fail("host %s: pid %d is \"%s\" with parent %d, not a pluginhost of hostbootd %d",
                 h[i].id, (int)h[i].pid, comm, (int)ppid, (int)hb);
        long r = proc_kb(h[i].pid, "status", "VmRSS");
        long a = proc_kb(h[i].pid, "status", "RssAnon");
        long p = proc_kb(h[i].pid, "smaps_rollup", "Pss");
        cpu[i] = h[i].cpu_ms;
        if (r < 0 || a < 0 || p < 0 || cpu[i] < 0)
            fail("cannot read the memory of host pid %d from /proc", (int)h[i].pid);
        rss[i] = (double)r;
        anon[i] = (double)a;
        pss_sum += (double)p;
    }
    stats_t rs = stats_of(rss, n), as = stats_of(anon, n), cs = stats_of(cpu, n);
    m->host_cpu_median = cs.median;
    m->host_cpu_mean = cs.mean;
    m->host_rss_median = rs.median;
    m->host_rss_mean = rs.mean;
    m->host_anon_median = as.median;
    m->host_pss_mean = pss_sum / (double)n;
    m->pd_busy = proc_kb(g_procs[P_PLATFORMD].pid, "status", "VmRSS");
    m->hb_busy = proc_kb(hb, "status", "VmRSS");
    free(rss);
    free(anon);
    free(cpu);
}

static void run_platform(const opts_t *o, host_t *hosts, mem_t *mem)
{
    int bus_port = plat_test_free_port();
    do
        g_http_port = plat_test_free_port();
    while (g_http_port == bus_port && g_http_port > 0);
    if (bus_port < 0 || g_http_port < 0)
        fail("no free loopback port");
    char bus[64];
    snprintf(bus, sizeof bus, "tcp://127.0.0.1:%d", bus_port);

    const char *pd_cfg =
        write_file("platformd.json", json_pack("{s:{s:s}, s:{s:s, s:i}, s:{s:s}}", "bus",
                                               "endpoint", bus, "http", "address", "127.0.0.1",
                                               "port", g_http_port, "log", "level", "warning"));
    char logs[PATH_MAX], work[PATH_MAX];
    snprintf(logs, sizeof logs, "%s/logs", g_dir);
    snprintf(work, sizeof work, "%s/hosts", g_dir);
    const char *hb_cfg = write_file(
        "hostbootd.json",
        json_pack("{s:s, s:{s:s}, s:[{s:s, s:s, s:s}], s:{s:s, s:s}, s:{s:s, s:i, s:i}}", "name",
                  HOSTBOOT_NAME, "platform", "endpoint", bus, "runtimes", "language", "c",
                  "version", "1", "path", o->pluginhost, "log", "level", "warning", "dir", logs,
                  "hosts", "work_dir", work, "grace_ms", 2000, "platform_lost_exit_ms", 5000));

    char *pd_argv[] = {(char *)o->platformd, "--config", (char *)pd_cfg, NULL};
    proc_start(&g_procs[P_PLATFORMD], pd_argv, g_dir);
    wait_healthy();
    char *hb_argv[] = {(char *)o->hostbootd, "--config", (char *)hb_cfg, NULL};
    proc_start(&g_procs[P_HOSTBOOTD], hb_argv, g_dir);
    wait_hostboot();
    mem->pd_idle = proc_kb(g_procs[P_PLATFORMD].pid, "status", "VmRSS");
    mem->hb_idle = proc_kb(g_procs[P_HOSTBOOTD].pid, "status", "VmRSS");

    /* One unmeasured host first, as the baseline has its warm-up runs. */
    host_t warm = {0};
    post_host(&warm);
    await_hosts(&warm, 1, false, o->poll_ms, BATCH_DEADLINE_MS);
    delete_hosts(&warm, 1, o->poll_ms);

    double pd_cpu0 = proc_cpu_ms(g_procs[P_PLATFORMD].pid);
    double hb_cpu0 = proc_cpu_ms(g_procs[P_HOSTBOOTD].pid);
    for (int b = 0; b < o->hosts; b += o->batch) {
        int n = o->hosts - b < o->batch ? o->hosts - b : o->batch;
        for (int i = 0; i < n; i++) {
            check_alive();
            post_host(&hosts[b + i]);
        }
        await_hosts(&hosts[b], (size_t)n, false, o->poll_ms, BATCH_DEADLINE_MS);
    }
    mem->pd_cpu = proc_cpu_ms(g_procs[P_PLATFORMD].pid) - pd_cpu0;
    mem->hb_cpu = proc_cpu_ms(g_procs[P_HOSTBOOTD].pid) - hb_cpu0;
    measure_memory(hosts, (size_t)o->hosts, mem);
    delete_hosts(hosts, (size_t)o->hosts, o->poll_ms);

    /* "exited" is reported after hostbootd reaped the host: none may remain. */
    pid_t left[16];
    size_t n_left = children_of(g_procs[P_HOSTBOOTD].pid, "pluginhost", left, 16);
    if (n_left)
        fail("%zu pluginhost processes still running after all hosts were reported exited "
             "(first pid %d)",
             n_left, (int)left[0]);
}

/* ---- main ---------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_spawn [--hosts N] [--batch N] [--baseline N] [--warmup N]\n"
                 "                   [--poll-ms N] [--keep] [--platformd BIN] [--hostbootd BIN]\n"
                 "                   [--pluginhost BIN] [--minimal BIN]\n"
                 "  --hosts N      hosts started through the platform (default 200)\n"
                 "  --batch N      hosts started back to back before awaiting them (default 20)\n"
                 "  --baseline N   baseline fork/execs of bench_minimal (default 200)\n"
                 "  --warmup N     unmeasured baseline runs first (default 5)\n"
                 "  --poll-ms N    client-side polling interval of GET /api/v1/hosts (default 10)\n"
                 "  --keep         keep the temp dir (configs, daemon and host logs)\n"
                 "  binaries default to the ones of this build tree\n");
}

static int int_arg(const char *s, int min, int max)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max) {
        fprintf(stderr, "bench: bad number \"%s\" (%d..%d)\n", s, min, max);
        usage(stderr);
        exit(2);
    }
    return (int)v;
}

/* The first three fields of /proc/loadavg. */
static void loadavg(char *buf, size_t size)
{
    snprintf(buf, size, "?");
    FILE *f = fopen("/proc/loadavg", "re");
    if (!f)
        return;
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(buf, size, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

static void print_stats(const char *label, stats_t s)
{
    printf("  %-44s %5zu %8.2f %8.2f %8.2f %8.2f %8.2f\n", label, s.n, s.median, s.p99, s.mean,
           s.min, s.max);
}

int main(int argc, char **argv)
{
    opts_t o = {.platformd = BENCH_PLATFORMD_BIN,
                .hostbootd = BENCH_HOSTBOOTD_BIN,
                .pluginhost = BENCH_PLUGINHOST_BIN,
                .minimal = BENCH_MINIMAL_BIN,
                .hosts = 200,
                .batch = 20,
                .baseline = 200,
                .warmup = 5,
                .poll_ms = 10};
    static const struct option opts[] = {
        {"hosts", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},
        {"baseline", required_argument, NULL, 'B'},
        {"warmup", required_argument, NULL, 'w'},
        {"poll-ms", required_argument, NULL, 'p'},
        {"keep", no_argument, NULL, 'k'},
        {"platformd", required_argument, NULL, 'P'},
        {"hostbootd", required_argument, NULL, 'H'},
        {"pluginhost", required_argument, NULL, 'E'},
        {"minimal", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.hosts = int_arg(optarg, 1, 5000);
            break;
        case 'b':
            o.batch = int_arg(optarg, 1, 5000);
            break;
        case 'B':
            o.baseline = int_arg(optarg, 1, 100000);
            break;
        case 'w':
            o.warmup = int_arg(optarg, 0, 1000);
            break;
        case 'p':
            o.poll_ms = int_arg(optarg, 1, 1000);
            break;
        case 'k':
            o.keep = true;
            break;
        case 'P':
            o.platformd = optarg;
            break;
        case 'H':
            o.hostbootd = optarg;
            break;
        case 'E':
            o.pluginhost = optarg;
            break;
        case 'M':
            o.minimal = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    const char *bins[] = {o.platformd, o.hostbootd, o.pluginhost, o.minimal};
    for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++)
        if (access(bins[i], X_OK) != 0) {
            fprintf(stderr, "bench: error: %s is not executable: %s\n", bins[i], strerror(errno));
            return 1;
        }
    g_keep = o.keep;

    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits wake up */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    unsetenv("JOURNAL_STREAM"); /* daemons log plain lines into their log files */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        fprintf(stderr, "bench: warning: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));

    const char *tmp = getenv("TMPDIR");
    if (snprintf(g_dir, sizeof g_dir, "%s/plat-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
        (int)sizeof g_dir) {
        fprintf(stderr, "bench: error: TMPDIR too long: %s\n", tmp);
        return 1;
    }
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "bench: error: mkdtemp %s: %s\n", g_dir, strerror(errno));
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(g_curl = curl_easy_init()))
        fail("libcurl init failed");

    double *base = calloc((size_t)o.baseline, sizeof *base);
    double *base_cpu = calloc((size_t)o.baseline, sizeof *base_cpu);
    host_t *hosts = calloc((size_t)o.hosts, sizeof *hosts);
    double *startup = calloc((size_t)o.hosts, sizeof *startup);
    double *client = calloc((size_t)o.hosts, sizeof *client);
    if (!base || !base_cpu || !hosts || !startup || !client)
        fail("out of memory");

    struct utsname u;
    uname(&u);
    char load0[64], load1[64];
    loadavg(load0, sizeof load0);
    printf("bench_spawn: %s %s %s, %ld CPUs, load average %s\n"
           "bench_spawn: %d baseline runs (+%d warm-up), %d hosts (+1 warm-up) in batches of %d\n",
           u.sysname, u.release, u.machine, sysconf(_SC_NPROCESSORS_ONLN), load0, o.baseline,
           o.warmup, o.hosts, o.batch);
    fflush(stdout);

    uint64_t t0 = now_ns();
    run_baseline(&o, base, base_cpu);
    double base_s = ms_since(t0) / 1000;
    mem_t mem = {0};
    t0 = now_ns();
    run_platform(&o, hosts, &mem);
    double plat_s = ms_since(t0) / 1000;
    cleanup(true);

    for (int i = 0; i < o.hosts; i++) {
        startup[i] = hosts[i].startup_ms;
        client[i] = hosts[i].client_ms;
    }
    stats_t sb = stats_of(base, (size_t)o.baseline);
    stats_t ss = stats_of(startup, (size_t)o.hosts);
    stats_t sc = stats_of(client, (size_t)o.hosts);
    char label[64];

    printf("\nspawn-to-ready (ms)                                n   median      p99     mean"
           "      min      max\n");
    print_stats("baseline: fork/exec + DEALER send", sb);
    print_stats("platform: startup_ms (platformd, 1 ms res.)", ss);
    snprintf(label, sizeof label, "platform: POST -> ready seen (%d ms polls)", o.poll_ms);
    print_stats(label, sc);
    printf("\nratio platform/baseline                        median      p99\n");
    printf("  %-44s %8.1fx %7.1fx\n", "startup_ms / baseline", ss.median / sb.median,
           ss.p99 / sb.p99);
    printf("  %-44s %8.1fx %7.1fx\n", "POST -> ready seen / baseline", sc.median / sb.median,
           sc.p99 / sb.p99);
    printf("\nRSS per idle host (kB, %d hosts)               median     mean\n", o.hosts);
    printf("  %-44s %8.0f %8.0f\n", "VmRSS", mem.host_rss_median, mem.host_rss_mean);
    printf("  %-44s %8.0f %8s\n", "RssAnon (private: heap, stacks)", mem.host_anon_median, "");
    printf("  %-44s %8s %8.0f\n", "Pss (shared pages split among sharers)", "", mem.host_pss_mean);
    printf("\ndaemons VmRSS (kB)                            no hosts  %4d hosts\n", o.hosts);
    printf("  %-44s %8ld %10ld\n", "platformd", mem.pd_idle, mem.pd_busy);
    printf("  %-44s %8ld %10ld\n", "hostbootd", mem.hb_idle, mem.hb_busy);
    stats_t sbc = stats_of(base_cpu, (size_t)o.baseline);
    printf("\nCPU time (ms)                                  median     mean    total\n");
    printf("  %-44s %8.1f %8.1f %8.0f\n", "baseline child, fork to exit", sbc.median, sbc.mean,
           sbc.mean * o.baseline);
    printf("  %-44s %8.0f %8.0f %8.0f\n", "host, fork to ready (10 ms ticks)", mem.host_cpu_median,
           mem.host_cpu_mean, mem.host_cpu_mean * o.hosts);
    printf("  %-44s %8s %8.1f %8.0f\n", "platformd while starting, per host", "",
           mem.pd_cpu / o.hosts, mem.pd_cpu);
    printf("  %-44s %8s %8.1f %8.0f\n", "hostbootd while starting, per host", "",
           mem.hb_cpu / o.hosts, mem.hb_cpu);
    loadavg(load1, sizeof load1);
    printf("\nwall time: baseline %.1f s, platform (start, measure, delete) %.1f s; "
           "load average at the end %s\n",
           base_s, plat_s, load1);

    free(base);
    free(base_cpu);
    free(hosts);
    free(startup);
    free(client);
    curl_global_cleanup();
    return 0;
}
