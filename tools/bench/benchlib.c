/* benchlib: daemons, HTTP client, /proc readers and statistics shared by the
 * benchmark drivers (see benchlib.h). */
#include "benchlib.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plat/keys.h"
#include "testports.h"

#define UP_DEADLINE_MS 10000   /* daemons healthy / registered */
#define STOP_DEADLINE_MS 10000 /* a daemon exits on SIGTERM */
#define TOKEN_MAX 128

typedef struct {
    const char *name;
    pid_t pid; /* 0: not started */
    bool reaped;
    int status;
    char log[PATH_MAX];
} proc_t;

enum { P_PLATFORMD, P_HOSTBOOTD, P__COUNT };
static proc_t g_procs[P__COUNT] = {{.name = "platformd"}, {.name = "hostbootd"}};
static pid_t g_child;       /* a driver's own child in flight, 0 if none */
static pid_t g_children[8]; /* bench_add_child: 0 = free slot */
static char g_dir[256];     /* short: paths under it fit PATH_MAX */
static bool g_keep;
static volatile sig_atomic_t g_stop;
static CURL *g_curl;
static int g_http_port;
static char g_bus_endpoint[64]; /* platformd's ROUTER */
static char g_token[TOKEN_MAX];
/* CURVE: <temp>/keys, the platform's public key, the authorized keys. */
static char g_keys_dir[PATH_MAX];
static char g_authorized_path[PATH_MAX];
static char g_platform_public[PLAT_KEY_Z85_LEN + 1];
static json_t *g_authorized; /* id -> Z85 public key */
static bool g_authorized_dirty;

/* ---- time ------------------------------------------------------------------ */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_ms_since(uint64_t t0)
{
    return (double)(bench_now_ns() - t0) / 1e6;
}

void bench_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the run ------------------------------------------------------------------ */

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

void bench_init(bool keep)
{
    g_keep = keep;
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
        exit(1);
    }
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "bench: error: mkdtemp %s: %s\n", g_dir, strerror(errno));
        exit(1);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(g_curl = curl_easy_init()))
        bench_fail("libcurl init failed");
}

const char *bench_dir(void)
{
    return g_dir;
}

void bench_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    bench_cleanup(false);
    exit(1);
}

void bench_set_child(pid_t pid)
{
    g_child = pid;
}

void bench_add_child(pid_t pid)
{
    for (size_t i = 0; i < sizeof g_children / sizeof g_children[0]; i++)
        if (!g_children[i]) {
            g_children[i] = pid;
            return;
        }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    bench_fail("more than %zu children of the driver at once",
               sizeof g_children / sizeof g_children[0]);
}

void bench_forget_child(pid_t pid)
{
    for (size_t i = 0; i < sizeof g_children / sizeof g_children[0]; i++)
        if (g_children[i] == pid)
            g_children[i] = 0;
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

void bench_describe_status(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "wait status 0x%x", (unsigned)status);
}

void bench_check_alive(void)
{
    if (g_stop)
        bench_fail("interrupted");
    for (int i = 0; i < P__COUNT; i++) {
        proc_t *p = &g_procs[i];
        if (p->pid && !p->reaped && !proc_running(p)) {
            char st[64];
            bench_describe_status(p->status, st, sizeof st);
            bench_fail("%s (pid %d) died during the run: %s; its log: %s", p->name, (int)p->pid, st,
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
        bench_fail("open %s: %s", p->log, strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        bench_fail("fork: %s", strerror(errno));
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
        uint64_t t0 = bench_now_ns();
        while (proc_running(p) && bench_ms_since(t0) < STOP_DEADLINE_MS)
            bench_sleep_ms(10);
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
        bench_describe_status(p->status, st, sizeof st);
        fprintf(stderr, "bench: %s (pid %d) ended with %s; its log: %s\n", p->name, (int)p->pid, st,
                p->log);
        return false;
    }
    return true;
}

bool bench_proc_stat(pid_t pid, pid_t *ppid, char *comm, size_t comm_size, char *state_out)
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

size_t bench_children_of(pid_t parent, const char *comm, pid_t *out, size_t max)
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
        if (bench_proc_stat((pid_t)pid, &pp, name, sizeof name, NULL) && pp == parent &&
            (!comm || strcmp(name, comm) == 0))
            out[n++] = (pid_t)pid;
    }
    closedir(d);
    return n;
}

long bench_proc_kb(pid_t pid, const char *file, const char *key)
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

double bench_proc_cpu_ms(pid_t pid)
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

double bench_proc_runtime_ms(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    unsigned long long total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p2[128];
        snprintf(p2, sizeof p2, "/proc/%d/task/%.20s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(p2, "re");
        if (!f)
            continue; /* the thread just exited */
        unsigned long long ns;
        if (fscanf(f, "%llu", &ns) == 1)
            total += ns;
        fclose(f);
    }
    closedir(d);
    return (double)total / 1e6;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void bench_cleanup(bool ok)
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
    for (size_t i = 0; i < sizeof g_children / sizeof g_children[0]; i++)
        if (g_children[i] > 0) {
            kill(g_children[i], SIGKILL);
            waitpid(g_children[i], NULL, 0);
            g_children[i] = 0;
        }
    /* hostbootd first: on SIGTERM it terminates and reaps its hosts. */
    clean &= proc_stop(&g_procs[P_HOSTBOOTD]);
    clean &= proc_stop(&g_procs[P_PLATFORMD]);
    /* Hosts orphaned by a killed hostbootd were reparented to us (child
     * subreaper): SIGKILL each once, by pid, and reap them all. */
    uint64_t t0 = bench_now_ns();
    static pid_t killed_pids[1024];
    size_t killed = 0;
    for (;;) {
        pid_t kids[256];
        size_t n = bench_children_of(getpid(), NULL, kids, 256);
        for (size_t i = 0; i < n; i++) {
            char state = 0;
            pid_t pp;
            bool again = false;
            for (size_t k = 0; k < killed && !again; k++)
                again = killed_pids[k] == kids[i];
            if (!again && bench_proc_stat(kids[i], &pp, NULL, 0, &state) && state != 'Z' &&
                kill(kids[i], SIGKILL) == 0) {
                fprintf(stderr, "bench: killed leftover process pid %d\n", (int)kids[i]);
                if (killed < sizeof killed_pids / sizeof killed_pids[0])
                    killed_pids[killed++] = kids[i];
            }
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (n == 0 || bench_ms_since(t0) > STOP_DEADLINE_MS)
            break;
        bench_sleep_ms(10);
    }
    if (killed)
        clean = false;
    if (g_curl) {
        curl_easy_cleanup(g_curl);
        g_curl = NULL;
    }
    curl_global_cleanup();
    json_decref(g_authorized);
    g_authorized = NULL;
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

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    bench_reply_t *r = arg;
    size_t n = size * nmemb;
    char *d = realloc(r->body, r->len + n + 1);
    if (!d)
        return 0;
    memcpy(d + r->len, ptr, n);
    r->body = d;
    r->len += n;
    r->body[r->len] = 0;
    return n;
}

/* Aborts a transfer in flight on Ctrl-C (a long org action would otherwise
 * hold the driver for its whole timeout). */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)arg, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return g_stop ? 1 : 0;
}

long bench_request(const char *method, const char *path, const char *body, int timeout_ms,
                   bench_reply_t *r)
{
    memset(r, 0, sizeof *r);
    r->status = -1;
    char url[384], auth[TOKEN_MAX + 32];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_http_port, path);
    struct curl_slist *hdr = NULL;
    curl_easy_reset(g_curl); /* keeps the connection cache */
    curl_easy_setopt(g_curl, CURLOPT_URL, url);
    curl_easy_setopt(g_curl, CURLOPT_PROXY, ""); /* never an http_proxy from the env */
    curl_easy_setopt(g_curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(g_curl, CURLOPT_TIMEOUT_MS,
                     (long)(timeout_ms > 0 ? timeout_ms : BENCH_HTTP_TIMEOUT_MS));
    curl_easy_setopt(g_curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(g_curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(g_curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(g_curl, CURLOPT_NOPROGRESS, 0L);
    if (strcmp(method, "GET") != 0) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", g_token);
        hdr = curl_slist_append(hdr, auth);
    }
    if (strcmp(method, "POST") == 0) {
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        curl_easy_setopt(g_curl, CURLOPT_POSTFIELDS, body ? body : "");
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(g_curl, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(g_curl, CURLOPT_HTTPHEADER, hdr);
    CURLcode rc = curl_easy_perform(g_curl);
    curl_slist_free_all(hdr);
    if (rc != CURLE_OK) {
        snprintf(r->err, sizeof r->err, "%.8s %.384s: %.100s", method, url, curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(g_curl, CURLINFO_RESPONSE_CODE, &r->status);
        snprintf(r->err, sizeof r->err, "%.8s %.384s -> %ld %.300s", method, url, r->status,
                 r->body ? r->body : "");
    }
    return r->status;
}

void bench_reply_clear(bench_reply_t *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

json_t *bench_http_must(const char *method, const char *path, const char *body, long want,
                        int timeout_ms)
{
    bench_reply_t r;
    long st = bench_request(method, path, body, timeout_ms, &r);
    json_t *out = r.body ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    if (st != want || !out) {
        char err[sizeof r.err];
        snprintf(err, sizeof err, "%s", r.err);
        bench_reply_clear(&r);
        json_decref(out);
        if (st < 0)
            bench_check_alive(); /* a dead daemon is the better message */
        bench_fail("%s (wanted %ld with a JSON body)", err, want);
    }
    bench_reply_clear(&r);
    return out;
}

/* ---- the platform ----------------------------------------------------------------- */

const char *bench_platform_bus_endpoint(void)
{
    return g_bus_endpoint;
}

pid_t bench_platformd_pid(void)
{
    return g_procs[P_PLATFORMD].pid;
}

pid_t bench_hostbootd_pid(void)
{
    return g_procs[P_HOSTBOOTD].pid;
}

const char *bench_platformd_log(void)
{
    return g_procs[P_PLATFORMD].log;
}

const char *bench_hostbootd_log(void)
{
    return g_procs[P_HOSTBOOTD].log;
}

void bench_write_json(const char *name, json_t *root, char *path, size_t path_size)
{
    snprintf(path, path_size, "%s/%s", g_dir, name);
    if (!root || json_dump_file(root, path, JSON_INDENT(2)) != 0)
        bench_fail("cannot write %s", path);
    json_decref(root);
}

static void wait_healthy(void)
{
    uint64_t t0 = bench_now_ns();
    for (;;) {
        bench_check_alive();
        bench_reply_t r;
        long st = bench_request("GET", "/healthz", NULL, 0, &r);
        bench_reply_clear(&r);
        if (st == 200)
            return;
        if (bench_ms_since(t0) > UP_DEADLINE_MS)
            bench_fail("platformd not healthy within %d ms: %s; its log: %s", UP_DEADLINE_MS, r.err,
                       g_procs[P_PLATFORMD].log);
        bench_sleep_ms(20);
    }
}

/* The token platformd created in its state dir before serving the API. */
static void read_token(const char *state_dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%.4000s/api-token", state_dir);
    FILE *f = fopen(path, "re");
    if (!f)
        bench_fail("cannot read the API token %s: %s", path, strerror(errno));
    if (!fgets(g_token, sizeof g_token, f))
        g_token[0] = 0;
    fclose(f);
    g_token[strcspn(g_token, "\r\n")] = 0;
    if (!g_token[0])
        bench_fail("the API token file %s is empty", path);
}

static void wait_hostboot(void)
{
    uint64_t t0 = bench_now_ns();
    for (;;) {
        bench_check_alive();
        json_t *body = bench_http_must("GET", "/api/v1/hostboots", NULL, 200, 0);
        size_t i;
        json_t *hb;
        bool ready = false;
        json_array_foreach(json_object_get(body, "hostboots"), i, hb)
        {
            if (strcmp(json_string_value(json_object_get(hb, "id")) ?: "", BENCH_HOSTBOOT_ID) ==
                    0 &&
                strcmp(json_string_value(json_object_get(hb, "state")) ?: "", "ready") == 0)
                ready = true;
        }
        json_decref(body);
        if (ready)
            return;
        if (bench_ms_since(t0) > UP_DEADLINE_MS)
            bench_fail("%s not registered within %d ms; see %s", BENCH_HOSTBOOT_ID, UP_DEADLINE_MS,
                       g_procs[P_HOSTBOOTD].log);
        bench_sleep_ms(20);
    }
}

/* ---- CURVE keys ------------------------------------------------------------------- */

const char *bench_platform_public_key(void)
{
    return g_platform_public;
}

void bench_authorize(const char *id, const char *public_z85)
{
    if (!g_authorized && !(g_authorized = json_object()))
        bench_fail("out of memory");
    if (json_object_set_new(g_authorized, id, json_string(public_z85)) != 0)
        bench_fail("cannot authorize %s", id);
    g_authorized_dirty = true;
}

size_t bench_authorized_flush(void)
{
    if (!g_authorized || !g_authorized_dirty)
        return g_authorized ? json_object_size(g_authorized) : 0;
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%.4000s.tmp", g_authorized_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        bench_fail("open %s: %s", tmp, strerror(errno));
    int rc = json_dumpfd(g_authorized, fd, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (close(fd) != 0 || rc != 0 || rename(tmp, g_authorized_path) != 0)
        bench_fail("cannot write %s: %s", g_authorized_path, strerror(errno));
    g_authorized_dirty = false;
    return json_object_size(g_authorized);
}

/* A fresh key pair saved as <keys>/<name>.key (0600) and, when `pub`, the
 * public key as <keys>/<name>.pub. */
static void make_key(const char *name, bool pub, plat_keypair_t *kp, char *secret_path,
                     size_t secret_size, char *public_path, size_t public_size)
{
    int rc = plat_keys_new(kp);
    if (rc < 0)
        bench_fail("cannot make a CURVE key pair: %s (libzmq without CURVE?)", strerror(-rc));
    snprintf(secret_path, secret_size, "%.4000s/%s.key", g_keys_dir, name);
    if (pub)
        snprintf(public_path, public_size, "%.4000s/%s.pub", g_keys_dir, name);
    char why[512];
    if (plat_keys_save(secret_path, pub ? public_path : NULL, kp, false, why, sizeof why) != 0)
        bench_fail("cannot save the %s key: %s", name, why);
}

/* json_object_update, but object members present on both sides are
 * merged key by key (one level). */
static void merge_config(json_t *root, json_t *extra)
{
    const char *k;
    json_t *v;
    json_object_foreach(extra, k, v)
    {
        json_t *mine = json_object_get(root, k);
        if (json_is_object(mine) && json_is_object(v))
            json_object_update(mine, v);
        else
            json_object_set(root, k, v);
    }
}

void bench_platform_start(bench_platform_t *p)
{
    int bus_port = plat_test_free_port();
    do
        g_http_port = plat_test_free_port();
    while (g_http_port == bus_port && g_http_port > 0);
    if (bus_port < 0 || g_http_port < 0)
        bench_fail("no free loopback port");
    char *bus = g_bus_endpoint;
    snprintf(g_bus_endpoint, sizeof g_bus_endpoint, "tcp://127.0.0.1:%d", bus_port);

    char state[PATH_MAX], logs[PATH_MAX], work[PATH_MAX];
    snprintf(state, sizeof state, "%s/state", g_dir);
    snprintf(logs, sizeof logs, "%s/logs", g_dir);
    snprintf(work, sizeof work, "%s/hosts", g_dir);
    if (mkdir(state, 0700) != 0)
        bench_fail("mkdir %s: %s", state, strerror(errno));

    /* CURVE, as by default (docs/security.md): the platform's key pair,
     * hostbootd's, and hostbootd's public key authorized as hostboot-bench. */
    snprintf(g_keys_dir, sizeof g_keys_dir, "%.4000s/keys", g_dir);
    snprintf(g_authorized_path, sizeof g_authorized_path, "%.4000s/authorized.json", g_keys_dir);
    if (mkdir(g_keys_dir, 0700) != 0)
        bench_fail("mkdir %s: %s", g_keys_dir, strerror(errno));
    char pd_secret[PATH_MAX], pd_public[PATH_MAX], hb_secret[PATH_MAX];
    plat_keypair_t kp;
    make_key("platform", true, &kp, pd_secret, sizeof pd_secret, pd_public, sizeof pd_public);
    snprintf(g_platform_public, sizeof g_platform_public, "%s", kp.public_z85);
    make_key("hostboot", false, &kp, hb_secret, sizeof hb_secret, NULL, 0);
    bench_authorize(BENCH_HOSTBOOT_ID, kp.public_z85);
    plat_keys_wipe(&kp);
    bench_authorized_flush();

    const char *level = p->log_level ? p->log_level : "warning";
    json_t *pd = json_pack(
        "{s:{s:s, s:b, s:s, s:s}, s:{s:s, s:i}, s:{s:s}, s:{s:s}}", "bus", "endpoint", bus, "curve",
        1, "secret_key_file", pd_secret, "authorized_keys_file", g_authorized_path, "http",
        "address", "127.0.0.1", "port", g_http_port, "log", "level", level, "state", "dir", state);
    if (!pd)
        bench_fail("out of memory");
    if (p->platformd_extra) {
        merge_config(pd, p->platformd_extra);
        json_decref(p->platformd_extra);
        p->platformd_extra = NULL;
    }
    char pd_cfg[PATH_MAX], hb_cfg[PATH_MAX];
    bench_write_json("platformd.json", pd, pd_cfg, sizeof pd_cfg);
    bench_write_json(
        "hostbootd.json",
        json_pack("{s:s, s:{s:s, s:s}, s:{s:b, s:s}, s:[{s:s, s:s, s:s}], s:{s:s, s:s}, "
                  "s:{s:s, s:i, s:i}}",
                  "name", BENCH_HOSTBOOT_NAME, "platform", "endpoint", bus, "public_key_file",
                  pd_public, "bus", "curve", 1, "secret_key_file", hb_secret, "runtimes",
                  "language", "c", "version", "1", "path", p->pluginhost, "log", "level", level,
                  "dir", logs, "hosts", "work_dir", work, "grace_ms", 2000, "platform_lost_exit_ms",
                  5000),
        hb_cfg, sizeof hb_cfg);

    char *pd_argv[] = {(char *)p->platformd, "--config", pd_cfg, NULL};
    proc_start(&g_procs[P_PLATFORMD], pd_argv, g_dir);
    wait_healthy();
    read_token(state);
    char *hb_argv[] = {(char *)p->hostbootd, "--config", hb_cfg, NULL};
    proc_start(&g_procs[P_HOSTBOOTD], hb_argv, g_dir);
    wait_hostboot();
}

/* ---- statistics and output -------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bench_stats_t bench_stats_of(const double *v, size_t n)
{
    bench_stats_t s = {.n = n};
    if (n == 0)
        return s;
    double *c = malloc(n * sizeof *c);
    if (!c)
        bench_fail("out of memory");
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

void bench_print_stats(const char *label, bench_stats_t s)
{
    printf("  %-44s %5zu %8.2f %8.2f %8.2f %8.2f %8.2f\n", label, s.n, s.median, s.p99, s.mean,
           s.min, s.max);
}

void bench_loadavg(char *buf, size_t size)
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

int bench_int_arg(const char *s, int min, int max, void (*usage)(FILE *))
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
