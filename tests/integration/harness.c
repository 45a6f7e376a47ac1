#include "harness.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "plat/keys.h"
#include "plat/plat.h"
#include "testports.h"

#define IT_MAX_PROCS 32
#define IT_MAX_FILES 32
#define IT_MAX_CLIENTS 8
#define IT_POLL_MS 20
#define IT_LOG_TAIL 40

extern char **environ;

struct it_client {
    it_env_t *env;
    void *sock;                      /* libzmq DEALER, owned */
    char id[PLAT_ID_MAX + 1];        /* endpoint id (its route: id/token) */
    char boot_id[PLAT_UUID_LEN + 1]; /* this client's boot id */
    char platform_boot_id[PLAT_UUID_LEN + 1];
    uint64_t seq;                    /* last seq_no used */
    unsigned pings;                  /* pings answered */
};

struct it_env {
    char dir[IT_PATH_MAX];                /* temp dir, removed at destroy */
    int bus_port, http_port, spare_port;  /* distinct free loopback ports */
    char bus_endpoint[64];
    char http_base[64];                   /* "http://127.0.0.1:<port>" */
    it_proc_t *procs[IT_MAX_PROCS];       /* owned */
    size_t n_procs;
    char *files[IT_MAX_FILES];            /* paths returned by it_write_file, owned */
    size_t n_files;
    it_client_t *clients[IT_MAX_CLIENTS]; /* live clients, owned */
    void *zctx;                           /* libzmq context of the clients, owned */
    int fd_baseline;                      /* open fds of this process at it_new */
    bool strict_logs;                     /* fail on any "err" log line */
    /* CURVE (docs/security.md): the platform's key pair and every key the
     * env authorized, {id: public key} in <dir>/keys/authorized.json;
     * secrets kept here by id for clients and dev hosts. */
    plat_keypair_t platform_key;
    json_t *authorized;                   /* id -> public key */
    json_t *secrets;                      /* id -> secret key */
    char keys_dir[IT_PATH_MAX];
};

/* PIDs started and not yet reaped, across every env: the atexit handler
 * SIGKILLs them so that no daemon outlives the test process. */
static pid_t g_live[IT_MAX_PROCS * 4];
static bool g_atexit_set;

static void live_add(pid_t pid)
{
    for (size_t i = 0; i < sizeof g_live / sizeof g_live[0]; i++)
        if (g_live[i] == 0) {
            g_live[i] = pid;
            return;
        }
}

static void live_remove(pid_t pid)
{
    for (size_t i = 0; i < sizeof g_live / sizeof g_live[0]; i++)
        if (g_live[i] == pid)
            g_live[i] = 0;
}

static void kill_all_live(void)
{
    for (size_t i = 0; i < sizeof g_live / sizeof g_live[0]; i++)
        if (g_live[i] > 0) {
            kill(g_live[i], SIGKILL);
            waitpid(g_live[i], NULL, 0);
            g_live[i] = 0;
        }
}

static const char *remember_path(it_env_t *env, const char *path);

uint64_t it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

const char *it_log_level(void)
{
    const char *l = getenv("PLAT_IT_LOG_LEVEL");
    return l && *l ? l : "info";
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

static int pick_port(const int *taken, size_t n_taken)
{
    for (int tries = 0; tries < 100; tries++) {
        int p = plat_test_free_port();
        if (p <= 0)
            return -1;
        bool dup = false;
        for (size_t i = 0; i < n_taken; i++)
            dup = dup || taken[i] == p;
        if (!dup)
            return p;
    }
    return -1;
}

it_env_t *it_new(void)
{
    if (!g_atexit_set) {
        atexit(kill_all_live);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        g_atexit_set = true;
    }
    it_env_t *env = calloc(1, sizeof *env);
    assert_non_null(env);
    const char *tmp = getenv("TMPDIR");
    snprintf(env->dir, sizeof env->dir, "%s/plat-it-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(env->dir))
        fail_msg("mkdtemp %s: %s", env->dir, strerror(errno));
    int taken[3] = {0};
    env->bus_port = taken[0] = pick_port(taken, 0);
    env->http_port = taken[1] = pick_port(taken, 1);
    env->spare_port = taken[2] = pick_port(taken, 2);
    assert_true(env->bus_port > 0 && env->bus_port < 32768);
    assert_true(env->http_port > 0 && env->http_port < 32768);
    assert_true(env->spare_port > 0 && env->spare_port < 32768);
    snprintf(env->bus_endpoint, sizeof env->bus_endpoint, "tcp://127.0.0.1:%d", env->bus_port);
    snprintf(env->http_base, sizeof env->http_base, "http://127.0.0.1:%d", env->http_port);
    /* CURVE on in every test: the platform's key pair and an (empty)
     * authorized keys file, both in the temp dir. */
    if (snprintf(env->keys_dir, sizeof env->keys_dir, "%.400s/keys", env->dir) >=
        (int)sizeof env->keys_dir)
        fail_msg("path too long: %s/keys", env->dir);
    if (mkdir(env->keys_dir, 0700) != 0)
        fail_msg("mkdir %s: %s", env->keys_dir, strerror(errno));
    assert_int_equal(plat_keys_new(&env->platform_key), 0);
    char secret[IT_PATH_MAX + 32], pub[IT_PATH_MAX + 32], why[512];
    snprintf(secret, sizeof secret, "%s/platform.key", env->keys_dir);
    snprintf(pub, sizeof pub, "%s/platform.pub", env->keys_dir);
    if (plat_keys_save(secret, pub, &env->platform_key, true, why, sizeof why) != 0)
        fail_msg("platform key: %s", why);
    env->authorized = json_object();
    env->secrets = json_object();
    assert_non_null(env->authorized);
    assert_non_null(env->secrets);
    it_authorize_key(env, NULL, NULL);
    env->fd_baseline = count_fds();
    return env;
}

const char *it_platform_public_key(const it_env_t *env) { return env->platform_key.public_z85; }

void it_authorize_key(it_env_t *env, const char *id, const char *public_z85)
{
    if (id)
        assert_int_equal(json_object_set_new(env->authorized, id, json_string(public_z85)), 0);
    char path[IT_PATH_MAX + 32], tmp[IT_PATH_MAX + 48];
    snprintf(path, sizeof path, "%s/authorized.json", env->keys_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(env->authorized, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 ||
        chmod(tmp, 0644) != 0 || rename(tmp, path) != 0)
        fail_msg("write %s: %s", path, strerror(errno));
}

const char *it_key_for(it_env_t *env, const char *id, bool authorize)
{
    json_t *have = json_object_get(env->secrets, id);
    if (have)
        return json_string_value(have);
    plat_keypair_t kp;
    assert_int_equal(plat_keys_new(&kp), 0);
    assert_int_equal(json_object_set_new(env->secrets, id, json_string(kp.secret_z85)), 0);
    if (authorize)
        it_authorize_key(env, id, kp.public_z85);
    plat_keys_wipe(&kp);
    return json_string_value(json_object_get(env->secrets, id));
}

const char *it_key_file(it_env_t *env, const char *id)
{
    const char *secret = it_key_for(env, id, true);
    plat_keypair_t kp;
    memset(&kp, 0, sizeof kp);
    snprintf(kp.secret_z85, sizeof kp.secret_z85, "%s", secret);
    assert_int_equal(plat_keys_derive_public(&kp), 0);
    char path[IT_PATH_MAX + 80], why[512];
    snprintf(path, sizeof path, "%s/%s.key", env->keys_dir, id);
    if (plat_keys_save(path, NULL, &kp, true, why, sizeof why) != 0)
        fail_msg("key file: %s", why);
    plat_keys_wipe(&kp);
    return remember_path(env, path);
}

const char *it_dir(const it_env_t *env) { return env->dir; }
int it_bus_port(const it_env_t *env) { return env->bus_port; }
int it_http_port(const it_env_t *env) { return env->http_port; }
const char *it_bus_endpoint(const it_env_t *env) { return env->bus_endpoint; }
void it_set_strict_logs(it_env_t *env, bool strict) { env->strict_logs = strict; }

/* ---- files ---------------------------------------------------------- */

static const char *remember_path(it_env_t *env, const char *path)
{
    for (size_t i = 0; i < env->n_files; i++)
        if (strcmp(env->files[i], path) == 0)
            return env->files[i];
    assert_true(env->n_files < IT_MAX_FILES);
    env->files[env->n_files] = strdup(path);
    assert_non_null(env->files[env->n_files]);
    return env->files[env->n_files++];
}

const char *it_write_file(it_env_t *env, const char *name, const char *content)
{
    char path[IT_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", env->dir, name) >= (int)sizeof path)
        fail_msg("path too long: %s/%s", env->dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("write %s: %s", path, strerror(errno));
    size_t len = strlen(content);
    bool ok = fwrite(content, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        fail_msg("write %s failed", path);
    return remember_path(env, path);
}

/* Merge `extra` into root at top level, replacing — except the objects
 * "bus" and "platform", merged key by key so that a test setting one bus
 * key keeps the harness's endpoint and keys. */
static void merge_extra(json_t *root, json_t *extra)
{
    const char *k;
    json_t *v;
    json_object_foreach(extra, k, v)
    {
        json_t *mine = json_object_get(root, k);
        if ((strcmp(k, "bus") == 0 || strcmp(k, "platform") == 0) && json_is_object(mine) &&
            json_is_object(v)) {
            json_t *copy = json_deep_copy(mine);
            assert_non_null(copy);
            assert_int_equal(json_object_update(copy, v), 0);
            assert_int_equal(json_object_set_new(root, k, copy), 0);
        } else {
            assert_int_equal(json_object_set(root, k, v), 0);
        }
    }
}

static const char *write_json(it_env_t *env, const char *name, json_t *root, json_t *extra)
{
    if (extra)
        merge_extra(root, extra);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    assert_non_null(text);
    const char *path = it_write_file(env, name, text);
    free(text);
    json_decref(root);
    return path;
}

const char *it_platformd_config(it_env_t *env, int heartbeat_interval_ms, int heartbeat_miss,
                                json_t *extra)
{
    /* The platform's state (SQLite, package store) lives in the temp dir:
     * tests never share or leave state behind. */
    char state[IT_PATH_MAX + 16];
    snprintf(state, sizeof state, "%s/platform-state", env->dir);
    char secret[IT_PATH_MAX + 32], authorized[IT_PATH_MAX + 32];
    snprintf(secret, sizeof secret, "%s/platform.key", env->keys_dir);
    snprintf(authorized, sizeof authorized, "%s/authorized.json", env->keys_dir);
    /* allow_peer_to_peer: test_it_routing plays hosts that talk to each
     * other; test_it_security checks the default (false). */
    json_t *root = json_pack("{s:{s:s, s:i, s:i, s:i, s:b, s:s, s:s, s:b}, s:{s:i, s:i}, "
                             "s:{s:s, s:i}, s:{s:s}, s:{s:s}}",
                             "bus", "endpoint", env->bus_endpoint, "max_msg_size", 1048576,
                             "sndhwm", 1000, "rcvhwm", 1000, "curve", 1, "secret_key_file",
                             secret, "authorized_keys_file", authorized, "allow_peer_to_peer", 1,
                             "heartbeat", "interval_ms", heartbeat_interval_ms, "miss",
                             heartbeat_miss,
                             "http", "address", "127.0.0.1", "port", env->http_port,
                             "log", "level", it_log_level(), "state", "dir", state);
    assert_non_null(root);
    return write_json(env, "platformd.json", root, extra);
}

const char *it_hostbootd_config(it_env_t *env, const char *name, json_t *extra)
{
    /* This hostboot's key, authorized as hostboot-<name>. */
    char hb_id[128], pub[IT_PATH_MAX + 32];
    snprintf(hb_id, sizeof hb_id, "hostboot-%s", name);
    const char *key_file = plat_hostboot_name_valid(name) ? it_key_file(env, hb_id) : "";
    snprintf(pub, sizeof pub, "%s/platform.pub", env->keys_dir);
    json_t *root = json_pack(
        "{s:s, s:{s:s, s:s}, s:{s:b, s:s}, s:{s:i, s:i, s:i}, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}], "
        "s:{s:s}}",
        "name", name, "platform", "endpoint", env->bus_endpoint, "public_key_file", pub, "bus",
        "curve", 1, "secret_key_file", key_file,
        "register", "timeout_ms", 500, "retry_initial_ms", 50, "retry_max_ms", 500,
        "runtimes", "language", "c", "version", "1", "path", PLUGINHOST_BIN,
        "language", "python", "version", "3", "path", PYHOST_BIN,
        "log", "level", it_log_level());
    assert_non_null(root);
    if (extra)
        merge_extra(root, extra);
    /* Nothing a test starts writes outside its temp dir: hostbootd's
     * defaults ("logs", "hosts") are relative to the test's cwd. */
    static const struct {
        const char *object, *key, *sub;
    } inside[] = {{"log", "dir", IT_HOSTBOOT_LOG_DIR}, {"hosts", "work_dir", IT_HOSTS_WORK_DIR}};
    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++) {
        json_t *obj = json_object_get(root, inside[i].object);
        if (obj && !json_is_object(obj))
            continue; /* a test of a bad config: leave it bad */
        if (obj && json_object_get(obj, inside[i].key))
            continue;
        /* A copy: `extra`'s objects stay the caller's, unchanged. */
        json_t *copy = obj ? json_deep_copy(obj) : json_object();
        char path[IT_PATH_MAX + 32];
        if (snprintf(path, sizeof path, "%s/%s", env->dir, inside[i].sub) >= (int)sizeof path)
            fail_msg("path too long: %s/%s", env->dir, inside[i].sub);
        assert_non_null(copy);
        assert_int_equal(json_object_set_new(copy, inside[i].key, json_string(path)), 0);
        assert_int_equal(json_object_set_new(root, inside[i].object, copy), 0);
    }
    /* The hosts' Landlock sandbox (docs/security-sandbox.md) lets them read
     * platformd's package store, which is in the temp dir: its path goes
     * into hosts.landlock.packages_dir unless `extra` sets it. */
    json_t *hosts = json_object_get(root, "hosts");
    if (json_is_object(hosts)) {
        json_t *copy = json_deep_copy(hosts); /* may be `extra`'s: leave that alone */
        assert_non_null(copy);
        json_t *ll = json_object_get(copy, "landlock");
        if (!ll) {
            ll = json_object();
            assert_int_equal(json_object_set_new(copy, "landlock", ll), 0);
        }
        if (json_is_object(ll) && !json_object_get(ll, "packages_dir")) {
            char store[IT_PATH_MAX + 32];
            snprintf(store, sizeof store, "%s/platform-state/packages", env->dir);
            assert_int_equal(json_object_set_new(ll, "packages_dir", json_string(store)), 0);
        }
        assert_int_equal(json_object_set_new(root, "hosts", copy), 0);
    }
    return write_json(env, "hostbootd.json", root, NULL);
}

/* ---- processes ------------------------------------------------------ */

/* environ without JOURNAL_STREAM, so the daemons log plain lines with
 * timestamps even when ctest itself runs under systemd. malloc'd array of
 * borrowed strings. */
static char **child_environ(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 1, sizeof *envp);
    assert_non_null(envp);
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "JOURNAL_STREAM=", 15) != 0)
            envp[j++] = environ[i];
    return envp;
}

it_proc_t *it_spawn(it_env_t *env, const char *name, char *const argv[])
{
    assert_true(env->n_procs < IT_MAX_PROCS);
    it_proc_t *p = calloc(1, sizeof *p);
    assert_non_null(p);
    snprintf(p->name, sizeof p->name, "%s", name);
    int n = 1;
    for (size_t i = 0; i < env->n_procs; i++)
        if (strcmp(env->procs[i]->name, name) == 0)
            n++;
    if (snprintf(p->log, sizeof p->log, "%s/%s-%d.log", env->dir, name, n) >= (int)sizeof p->log)
        fail_msg("path too long: %s/%s", env->dir, name);
    int logfd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (logfd < 0 || nullfd < 0)
        fail_msg("open %s: %s", p->log, strerror(errno));
    char **envp = child_environ();
    pid_t parent = getpid();

    p->started_ms = it_now_ms();
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        /* Child: async-signal-safe calls only. PDEATHSIG kills the daemon
         * should the test process die without running its cleanup. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
            _exit(127);
        close_range(3, ~0U, 0);
        execve(argv[0], argv, envp);
        static const char msg[] = "it_spawn: execve failed\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    free(envp);
    close(logfd);
    close(nullfd);
    p->pid = pid;
    live_add(pid);
    env->procs[env->n_procs++] = p;
    return p;
}

it_proc_t *it_start_platformd(it_env_t *env, const char *config_path)
{
    char *argv[] = {PLATFORMD_BIN, "--config", (char *)config_path, "--log-level",
                    (char *)it_log_level(), NULL};
    return it_spawn(env, "platformd", argv);
}

it_proc_t *it_start_hostbootd(it_env_t *env, const char *config_path)
{
    char *argv[] = {HOSTBOOTD_BIN, "--config", (char *)config_path, NULL};
    return it_spawn(env, "hostbootd", argv);
}

it_proc_t *it_start_pluginhost_dev(it_env_t *env, const char *host_id)
{
    /* A dev host's key pair: authorized by the "operator" for its id. */
    const char *key = it_key_file(env, host_id);
    char pub[IT_PATH_MAX + 32];
    snprintf(pub, sizeof pub, "%s/platform.pub", env->keys_dir);
    char *argv[] = {PLUGINHOST_BIN, "--dev", "--platform", env->bus_endpoint, "--host-id",
                    (char *)host_id, "--key-file", (char *)key, "--platform-key-file", pub, NULL};
    return it_spawn(env, "pluginhost", argv);
}

static void reaped(it_proc_t *p, int status)
{
    p->exited = true;
    p->status = status;
    live_remove(p->pid);
}

bool it_alive(it_proc_t *p)
{
    if (p->exited)
        return false;
    int status;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) {
        reaped(p, status);
        return false;
    }
    return true;
}

/* Wait for exit until the deadline, polling; true when reaped. */
static bool wait_reaped(it_proc_t *p, int timeout_ms)
{
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        if (!it_alive(p))
            return true;
        if (it_now_ms() >= deadline)
            return false;
        sleep_ms(5);
    }
}

static void describe_status(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "status 0x%x", status);
}

char *it_read_log(const it_proc_t *p)
{
    FILE *f = fopen(p->log, "r");
    if (!f)
        return strdup("");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nb = realloc(buf, cap);
            assert_non_null(nb);
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!buf)
        return strdup("");
    buf[len] = 0;
    return buf;
}

void it_hostbootd_config_refused(it_env_t *env, json_t *hb_extra, ...)
{
    const char *cfg = it_hostbootd_config(env, IT_HOSTBOOT_NAME, hb_extra);
    json_decref(hb_extra);
    it_proc_t *p = it_start_hostbootd(env, cfg);
    int st = it_wait_exit(p, IT_DEADLINE_MS);
    IT_CHECK(env, WIFEXITED(st) && WEXITSTATUS(st) == 78, "hostbootd exits 78 (status 0x%x)", st);
    char *log = it_read_log(p);
    va_list ap;
    va_start(ap, hb_extra);
    const char *missing = NULL;
    for (const char *n = va_arg(ap, const char *); n && !missing; n = va_arg(ap, const char *))
        if (!strstr(log, n))
            missing = n;
    va_end(ap);
    if (missing)
        fprintf(stderr, "hostbootd log:\n%s\n", log);
    free(log);
    IT_CHECK(env, !missing, "the refusal names %s", missing ? missing : "");
}

json_t *it_register_package(it_env_t *env, const char *path, const char *id)
{
    json_t *body = it_post_ok(env, "/api/v1/packages", json_pack("{s:s}", "path", path), 201);
    IT_CHECK(env, strcmp(it_json_str(body, "package.id"), id) == 0, "package id %s (got %s)", id,
             it_json_str(body, "package.id"));
    return body;
}

json_t *it_get_instance(it_env_t *env, const char *uuid)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/instances/%s", uuid);
    json_t *body = it_get_json(env, path);
    json_t *inst = json_object_get(body, "instance");
    IT_CHECK(env, json_is_object(inst), "GET %s holds the instance", path);
    json_incref(inst);
    json_decref(body);
    return inst;
}

int it_log_count(const it_proc_t *p, const char *needle)
{
    char *log = it_read_log(p);
    int n = 0;
    for (const char *at = log; at && (at = strstr(at, needle)); at += strlen(needle))
        n++;
    free(log);
    return n;
}

static void dump_log(const it_proc_t *p, int lines)
{
    char *text = it_read_log(p);
    size_t len = strlen(text);
    const char *start = text;
    int seen = 0;
    for (size_t i = len; i > 0; i--)
        if (text[i - 1] == '\n' && i != len && ++seen >= lines) {
            start = text + i;
            break;
        }
    fprintf(stderr, "---- %s pid=%d %s (last %d lines) ----\n%s%s", p->name, (int)p->pid, p->log,
            lines, start, (len && text[len - 1] != '\n') ? "\n" : "");
    free(text);
}

void it_dump_logs(const it_env_t *env, int lines)
{
    for (size_t i = 0; i < env->n_procs; i++)
        dump_log(env->procs[i], lines);
}

void it_fail_at(const it_env_t *env, const char *file, int line, const char *fmt, ...)
{
    if (env)
        it_dump_logs(env, IT_LOG_TAIL);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_error("%s:%d: %s\n", file, line, msg);
    _fail(file, line);
    abort(); /* _fail longjmps out of the test; never reached */
}

int it_wait_exit(it_proc_t *p, int timeout_ms)
{
    if (!wait_reaped(p, timeout_ms)) {
        kill(p->pid, SIGKILL);
        wait_reaped(p, IT_STOP_DEADLINE_MS);
        dump_log(p, IT_LOG_TAIL);
        fail_msg("%s pid=%d did not exit within %d ms", p->name, (int)p->pid, timeout_ms);
    }
    return p->status;
}

/* SIGTERM and wait; returns 0 or writes why into buf and returns -1. */
static int stop_proc(it_proc_t *p, int timeout_ms, char *why, size_t size)
{
    if (p->exited) {
        char st[64];
        describe_status(p->status, st, sizeof st);
        snprintf(why, size, "%s pid=%d had already exited (%s)", p->name, (int)p->pid, st);
        return -1;
    }
    uint64_t t0 = it_now_ms();
    kill(p->pid, SIGTERM);
    if (!wait_reaped(p, timeout_ms)) {
        kill(p->pid, SIGKILL);
        wait_reaped(p, IT_STOP_DEADLINE_MS);
        snprintf(why, size, "%s pid=%d did not exit within %d ms of SIGTERM (killed)", p->name,
                 (int)p->pid, timeout_ms);
        return -1;
    }
    if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
        char st[64];
        describe_status(p->status, st, sizeof st);
        snprintf(why, size, "%s pid=%d ended with %s after SIGTERM (want exit 0)", p->name,
                 (int)p->pid, st);
        return -1;
    }
    print_message("stopped %s pid=%d in %llu ms\n", p->name, (int)p->pid,
                  (unsigned long long)(it_now_ms() - t0));
    return 0;
}

void it_stop(it_proc_t *p, int timeout_ms)
{
    char why[256];
    if (stop_proc(p, timeout_ms, why, sizeof why) != 0) {
        dump_log(p, IT_LOG_TAIL);
        fail_msg("%s", why);
    }
}

void it_kill9(it_proc_t *p)
{
    if (p->exited)
        return;
    kill(p->pid, SIGKILL);
    if (!wait_reaped(p, IT_STOP_DEADLINE_MS))
        fail_msg("%s pid=%d survived SIGKILL", p->name, (int)p->pid);
}

/* ---- teardown checks ------------------------------------------------ */

static const char *const g_bad_markers[] = {
    "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
    "WARNING: ThreadSanitizer", "AddressSanitizer:DEADLYSIGNAL",
};

/* Append to `errs` each sanitizer report (and, when strict, each line at
 * level err) found in p's log. Returns the number found. */
static int scan_log(const it_proc_t *p, bool strict, char *errs, size_t size)
{
    char *text = it_read_log(p);
    int found = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        bool bad = false;
        for (size_t i = 0; i < sizeof g_bad_markers / sizeof g_bad_markers[0]; i++)
            bad = bad || strstr(line, g_bad_markers[i]) != NULL;
        if (!bad && strict) {
            /* "<timestamp> err <daemon>/<component> ..." */
            const char *sp = strchr(line, ' ');
            bad = sp && strncmp(sp + 1, "err ", 4) == 0;
        }
        if (bad) {
            found++;
            size_t used = strlen(errs);
            snprintf(errs + used, size - used, "  %s: %.300s\n", p->name, line);
        }
    }
    free(text);
    return found;
}

/* Zombies whose parent is this process: a child somebody forgot to reap. */
static int count_zombie_children(char *errs, size_t size)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    pid_t self = getpid();
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%.32s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = 0;
        /* "pid (comm) S ppid ...": comm may hold spaces and parentheses. */
        char *rp = strrchr(buf, ')');
        char state;
        int ppid;
        if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
            continue;
        if (state == 'Z' && ppid == self) {
            n++;
            size_t used = strlen(errs);
            snprintf(errs + used, size - used, "  zombie child pid=%s\n", e->d_name);
        }
    }
    closedir(d);
    return n;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int it_setup(void **state)
{
    *state = it_new();
    return 0;
}

int it_teardown(void **state)
{
    it_env_t *env = *state;
    it_destroy(&env);
    *state = NULL;
    return 0;
}

void it_destroy(it_env_t **envp)
{
    if (!envp || !*envp)
        return;
    it_env_t *env = *envp;
    *envp = NULL;
    char errs[8192] = "";
    int n_err = 0;

    for (size_t i = 0; i < IT_MAX_CLIENTS; i++)
        if (env->clients[i])
            it_client_destroy(&env->clients[i]);
    if (env->zctx) {
        zmq_ctx_term(env->zctx);
        env->zctx = NULL;
    }

    /* Peers first, platformd last, so nobody logs a lost platform while the
     * platform is the one being stopped. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t k = env->n_procs; k > 0; k--) {
            it_proc_t *p = env->procs[k - 1];
            bool is_platform = strcmp(p->name, "platformd") == 0;
            if (p->exited || is_platform != (pass == 1))
                continue;
            char why[256];
            if (stop_proc(p, IT_STOP_DEADLINE_MS, why, sizeof why) != 0) {
                n_err++;
                size_t used = strlen(errs);
                snprintf(errs + used, sizeof errs - used, "  %s\n", why);
            }
        }
    for (size_t i = 0; i < env->n_procs; i++)
        n_err += scan_log(env->procs[i], env->strict_logs, errs, sizeof errs);
    n_err += count_zombie_children(errs, sizeof errs);
    int fds = count_fds();
    if (env->fd_baseline >= 0 && fds > env->fd_baseline) {
        n_err++;
        size_t used = strlen(errs);
        snprintf(errs + used, sizeof errs - used, "  fd leak: %d open fds, %d at start\n", fds,
                 env->fd_baseline);
    }

    bool keep = n_err > 0 || (getenv("PLAT_IT_KEEP") && strcmp(getenv("PLAT_IT_KEEP"), "1") == 0);
    if (n_err > 0)
        it_dump_logs(env, IT_LOG_TAIL);
    if (keep)
        fprintf(stderr, "integration: kept %s\n", env->dir);
    else
        nftw(env->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    for (size_t i = 0; i < env->n_procs; i++)
        free(env->procs[i]);
    for (size_t i = 0; i < env->n_files; i++)
        free(env->files[i]);
    json_decref(env->authorized);
    json_decref(env->secrets);
    plat_keys_wipe(&env->platform_key);
    free(env);
    if (n_err > 0)
        fail_msg("teardown found %d problem(s):\n%s", n_err, errs);
}

/* ---- HTTP ----------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
} buf_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    buf_t *b = arg;
    size_t n = size * nmemb;
    char *nd = realloc(b->data, b->len + n + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, ptr, n);
    b->data = nd;
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

void it_auth_header(const it_env_t *env, char *out, size_t size)
{
    char tpath[IT_PATH_MAX + 32], tok[160] = "";
    snprintf(tpath, sizeof tpath, "%s/platform-state/api-token", env->dir);
    FILE *f = fopen(tpath, "r");
    if (f) {
        if (!fgets(tok, sizeof tok, f))
            tok[0] = 0;
        fclose(f);
    }
    tok[strcspn(tok, "\r\n")] = 0;
    if (tok[0])
        snprintf(out, size, "Authorization: Bearer %s", tok);
    else
        out[0] = 0;
}

/* Mutating routes need the platform's bearer token, which platformd
 * created in its state dir. */
static bool needs_token(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

/* The headers every request of the harness sends (NULL when none): the
 * token for `method`, then, with a body, its Content-Type (may be NULL) and
 * an empty Expect (no 100-continue round trip). */
static struct curl_slist *request_headers(const it_env_t *env, const char *method, bool has_body,
                                          const char *content_type)
{
    struct curl_slist *headers = NULL;
    if (needs_token(method)) {
        char auth[256];
        it_auth_header(env, auth, sizeof auth);
        if (auth[0]) {
            headers = curl_slist_append(headers, auth);
            assert_non_null(headers);
        }
    }
    if (has_body) {
        if (content_type) {
            char ct[128];
            snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
            headers = curl_slist_append(headers, ct);
            assert_non_null(headers);
        }
        headers = curl_slist_append(headers, "Expect:");
        assert_non_null(headers);
    }
    return headers;
}

/* Options every transfer of the harness sets. */
static void common_opts(CURL *c, long timeout_ms, long connect_ms, buf_t *b)
{
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* never through $http_proxy */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
}

/* `method` <path> with `len` bytes of `body` (NULL: none). Returns the HTTP
 * status or a negative errno; the response body into *b (caller frees
 * b->data, also on error). */
static int http_do(const it_env_t *env, const char *method, const char *path, const void *body,
                   size_t len, const char *content_type, long timeout_ms, long connect_ms,
                   buf_t *b)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", env->http_base, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *headers = request_headers(env, method, body != NULL, content_type);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    if (headers)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    common_opts(c, timeout_ms, connect_ms, b);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK)
        return rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
    return (int)status;
}

int it_http_get(const it_env_t *env, const char *path, json_t **body)
{
    return it_http_request(env, "GET", path, NULL, body);
}

int it_http_request(const it_env_t *env, const char *method, const char *path, json_t *body,
                    json_t **resp)
{
    if (resp)
        *resp = NULL;
    char *text = NULL;
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        assert_non_null(text);
    }
    buf_t b = {0};
    /* Lifecycle actions answer when done (a host start, a hook): allow
     * them the platform's own timeouts. */
    int st = http_do(env, method, path, text, text ? strlen(text) : 0, "application/json",
                     strcmp(method, "GET") == 0 ? 3000L : 60000L, 1000L, &b);
    free(text);
    if (st >= 0 && resp && b.data)
        *resp = json_loadb(b.data, b.len, 0, NULL);
    free(b.data);
    return st;
}

int it_http_raw(const it_env_t *env, const char *method, const char *path, const void *body,
                size_t len, const char *content_type, char **resp_body, size_t *resp_len)
{
    buf_t b = {0};
    int st = http_do(env, method, path, body, len, content_type, 60000L, 2000L, &b);
    if (resp_len)
        *resp_len = b.len;
    if (resp_body) {
        *resp_body = b.data ? b.data : strdup("");
        assert_non_null(*resp_body);
    } else {
        free(b.data);
    }
    return st;
}

struct it_http_bg {
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    buf_t b;
    bool done;
    long status;
    CURLcode rc;
};

it_http_bg_t *it_http_bg_start(const it_env_t *env, const char *path, const char *json_text,
                               long timeout_ms)
{
    it_http_bg_t *bg = calloc(1, sizeof *bg);
    assert_non_null(bg);
    char url[1024];
    snprintf(url, sizeof url, "%s%s", env->http_base, path);
    bg->headers = request_headers(env, "POST", true, "application/json");
    bg->easy = curl_easy_init();
    bg->multi = curl_multi_init();
    assert_non_null(bg->easy);
    assert_non_null(bg->multi);
    curl_easy_setopt(bg->easy, CURLOPT_URL, url);
    curl_easy_setopt(bg->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(bg->easy, CURLOPT_COPYPOSTFIELDS, json_text);
    curl_easy_setopt(bg->easy, CURLOPT_HTTPHEADER, bg->headers);
    common_opts(bg->easy, timeout_ms, 2000L, &bg->b);
    curl_multi_add_handle(bg->multi, bg->easy);
    return bg;
}

bool it_http_bg_poll(it_http_bg_t *bg, int wait_ms)
{
    if (bg->done)
        return true;
    int running = 0;
    curl_multi_perform(bg->multi, &running);
    if (running)
        curl_multi_poll(bg->multi, NULL, 0, wait_ms, NULL);
    curl_multi_perform(bg->multi, &running);
    int left = 0;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(bg->multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE) {
            bg->done = true;
            bg->rc = msg->data.result;
            if (bg->rc == CURLE_OK)
                curl_easy_getinfo(bg->easy, CURLINFO_RESPONSE_CODE, &bg->status);
        }
    return bg->done;
}

int it_http_bg_finish(it_http_bg_t **bgp, json_t **resp)
{
    it_http_bg_t *bg = *bgp;
    *bgp = NULL;
    while (!it_http_bg_poll(bg, 50))
        ; /* bounded by CURLOPT_TIMEOUT_MS */
    if (resp)
        *resp = bg->b.data ? json_loadb(bg->b.data, bg->b.len, 0, NULL) : NULL;
    curl_multi_remove_handle(bg->multi, bg->easy);
    curl_easy_cleanup(bg->easy);
    curl_multi_cleanup(bg->multi);
    curl_slist_free_all(bg->headers);
    free(bg->b.data);
    int st = bg->rc == CURLE_OK                   ? (int)bg->status
             : bg->rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
                                                  : -ECONNRESET;
    free(bg);
    return st;
}

int it_http_post(const it_env_t *env, const char *path, json_t *body, json_t **resp)
{
    return it_http_request(env, "POST", path, body, resp);
}

json_t *it_post_ok(it_env_t *env, const char *path, json_t *req, int want)
{
    json_t *body = NULL;
    int st = it_http_post(env, path, req, &body);
    json_decref(req);
    if (st != want) {
        char *dump = body ? json_dumps(body, JSON_COMPACT) : NULL;
        fprintf(stderr, "POST %s: %d %s\n", path, st, dump ? dump : "(no JSON)");
        free(dump);
    }
    IT_CHECK(env, st == want, "POST %s: %d (got %d)", path, want, st);
    return body;
}

int it_http_delete(const it_env_t *env, const char *path, json_t **resp)
{
    return it_http_request(env, "DELETE", path, NULL, resp);
}

json_t *it_get_json(const it_env_t *env, const char *path)
{
    json_t *body = NULL;
    int st = it_http_get(env, path, &body);
    if (st != 200 || !body || !json_is_object(body))
        it_fail(env, "GET %s: status %d, %s", path, st, body ? "json" : "no JSON body");
    return body;
}

/* A process that exited without being asked to: fail now with its log. */
static void check_no_unexpected_exit(it_env_t *env)
{
    for (size_t i = 0; i < env->n_procs; i++) {
        it_proc_t *p = env->procs[i];
        if (!p->exited && !it_alive(p)) {
            char st[64];
            describe_status(p->status, st, sizeof st);
            it_fail(env, "%s pid=%d exited unexpectedly (%s)", p->name, (int)p->pid, st);
        }
    }
}

/* Wait one poll interval; bus clients answer pings meanwhile. */
static void poll_pause(it_env_t *env)
{
    zmq_pollitem_t items[IT_MAX_CLIENTS];
    int n = 0;
    for (size_t i = 0; i < IT_MAX_CLIENTS; i++)
        if (env->clients[i])
            items[n++] = (zmq_pollitem_t){.socket = env->clients[i]->sock, .events = ZMQ_POLLIN};
    if (n == 0) {
        sleep_ms(IT_POLL_MS);
        return;
    }
    uint64_t end = it_now_ms() + IT_POLL_MS;
    for (uint64_t now = it_now_ms(); now < end; now = it_now_ms()) {
        if (zmq_poll(items, n, (long)(end - now)) > 0)
            for (size_t i = 0; i < IT_MAX_CLIENTS; i++)
                if (env->clients[i])
                    it_client_pump(env->clients[i]);
    }
}

uint64_t it_wait_healthy(it_env_t *env, int timeout_ms)
{
    uint64_t t0 = it_now_ms();
    int st = 0;
    json_t *body = NULL;
    for (;;) {
        check_no_unexpected_exit(env);
        st = it_http_get(env, "/healthz", &body);
        bool ok = st == 200 && body &&
                  json_is_string(json_object_get(body, "status")) &&
                  strcmp(json_string_value(json_object_get(body, "status")), "ok") == 0;
        json_decref(body);
        body = NULL;
        if (ok)
            return it_now_ms() - t0;
        if (st == 200)
            it_fail(env, "GET /healthz answered 200 without {\"status\":\"ok\"}");
        if (it_now_ms() - t0 >= (uint64_t)timeout_ms)
            it_fail(env, "platformd not healthy within %d ms (last: %d)", timeout_ms, st);
        poll_pause(env);
    }
}

uint64_t it_wait_json(it_env_t *env, const char *path, it_json_pred pred, void *arg,
                      int timeout_ms, const char *what)
{
    uint64_t t0 = it_now_ms();
    for (;;) {
        check_no_unexpected_exit(env);
        json_t *body = NULL;
        int st = it_http_get(env, path, &body);
        bool ok = st == 200 && body && pred(body, arg);
        if (ok) {
            json_decref(body);
            return it_now_ms() - t0;
        }
        if (it_now_ms() - t0 >= (uint64_t)timeout_ms) {
            char *dump = body ? json_dumps(body, JSON_COMPACT) : NULL;
            fprintf(stderr, "last GET %s: %d %s\n", path, st, dump ? dump : "(no JSON)");
            free(dump);
            json_decref(body);
            it_fail(env, "timed out after %d ms waiting for: %s", timeout_ms, what);
        }
        json_decref(body);
        poll_pause(env);
    }
}

json_t *it_json_find(json_t *arr, const char *key, const char *value)
{
    size_t i;
    json_t *el;
    if (!json_is_array(arr))
        return NULL;
    json_array_foreach(arr, i, el)
    {
        json_t *v = json_object_get(el, key);
        if (json_is_string(v) && strcmp(json_string_value(v), value) == 0)
            return el;
    }
    return NULL;
}

json_t *it_json_path(json_t *root, const char *dotted)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", dotted);
    json_t *cur = root;
    char *save = NULL;
    for (char *k = strtok_r(buf, ".", &save); k && cur; k = strtok_r(NULL, ".", &save))
        cur = json_object_get(cur, k);
    return cur;
}

const char *it_json_str(json_t *root, const char *dotted)
{
    json_t *v = it_json_path(root, dotted);
    return json_is_string(v) ? json_string_value(v) : "";
}

int64_t it_json_int(json_t *root, const char *dotted, int64_t def)
{
    json_t *v = it_json_path(root, dotted);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

int64_t it_status_int(it_env_t *env, const char *dotted)
{
    json_t *body = it_get_json(env, "/api/v1/status");
    json_t *v = it_json_path(body, dotted);
    if (!json_is_integer(v)) {
        char *dump = json_dumps(body, JSON_COMPACT);
        fprintf(stderr, "/api/v1/status: %s\n", dump ? dump : "?");
        free(dump);
        json_decref(body);
        it_fail(env, "/api/v1/status has no integer %s", dotted);
    }
    int64_t n = json_integer_value(v);
    json_decref(body);
    return n;
}

static bool state_in_list(json_t *body, const char *list, void *arg)
{
    const it_match_t *m = arg;
    json_t *el = it_json_find(json_object_get(body, list), "id", m->id);
    json_t *st = el ? json_object_get(el, "state") : NULL;
    return json_is_string(st) && strcmp(json_string_value(st), m->state) == 0;
}

bool it_pred_hostboot_state(json_t *body, void *arg)
{
    return state_in_list(body, "hostboots", arg);
}

bool it_pred_host_state(json_t *body, void *arg)
{
    return state_in_list(body, "hosts", arg);
}

bool it_pred_status_boot_changed(json_t *body, void *arg)
{
    const it_match_t *m = arg;
    json_t *b = json_object_get(body, "boot_id");
    return json_is_string(b) && plat_uuid_valid(json_string_value(b)) &&
           (!m->not_boot_id || strcmp(json_string_value(b), m->not_boot_id) != 0);
}

bool it_pred_host_id_state(json_t *body, void *arg)
{
    const it_match_t *m = arg;
    json_t *st = it_json_path(body, "host.state");
    return json_is_string(st) && strcmp(json_string_value(st), m->state) == 0;
}

json_t *it_wait_host_state(it_env_t *env, const char *host_id, const char *state, int timeout_ms,
                           uint64_t *elapsed_ms)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/hosts/%s", host_id);
    uint64_t t0 = it_now_ms();
    for (;;) {
        check_no_unexpected_exit(env);
        json_t *body = NULL;
        int st = it_http_get(env, path, &body);
        json_t *host = st == 200 ? json_object_get(body, "host") : NULL;
        json_t *sv = host ? json_object_get(host, "state") : NULL;
        const char *cur = json_is_string(sv) ? json_string_value(sv) : NULL;
        if (cur && strcmp(cur, state) == 0) {
            json_incref(host);
            json_decref(body);
            if (elapsed_ms)
                *elapsed_ms = it_now_ms() - t0;
            return host;
        }
        bool ended = cur && (strcmp(cur, "exited") == 0 || strcmp(cur, "failed") == 0);
        bool late = it_now_ms() - t0 >= (uint64_t)timeout_ms;
        if (st == 404 || ended || late) {
            char *dump = body ? json_dumps(body, JSON_COMPACT) : NULL;
            fprintf(stderr, "last GET %s: %d %s\n", path, st, dump ? dump : "(no JSON)");
            free(dump);
            json_decref(body);
            if (st == 404)
                it_fail(env, "host %s unknown to the platform (waiting for \"%s\")", host_id,
                        state);
            if (ended)
                it_fail(env, "host %s ended \"%s\" while waiting for \"%s\"", host_id, cur,
                        state);
            it_fail(env, "timed out after %d ms waiting for host %s to be \"%s\"", timeout_ms,
                    host_id, state);
        }
        json_decref(body);
        poll_pause(env);
    }
}

/* ---- bus client ----------------------------------------------------- */

void it_new_host_id(char out[64])
{
    char uuid[PLAT_UUID_LEN + 1];
    assert_int_equal(plat_uuid_new(uuid), 0);
    snprintf(out, 64, "host-%s", uuid);
}

it_client_t *it_client_new(it_env_t *env, const char *identity)
{
    /* An authorized key for its identity (ids we cannot authorize get an
     * unknown key: the platform refuses them at the handshake). */
    bool valid = plat_id_kind(identity) == PLAT_ID_HOST ||
                 plat_id_kind(identity) == PLAT_ID_HOSTBOOT;
    const char *secret = valid ? it_key_for(env, identity, true) : NULL;
    plat_keypair_t kp;
    if (!secret) {
        assert_int_equal(plat_keys_new(&kp), 0);
        secret = kp.secret_z85;
    }
    return it_client_new_curve(env, identity, secret, env->platform_key.public_z85);
}

it_client_t *it_client_new_curve(it_env_t *env, const char *identity, const char *secret_z85,
                                 const char *server_z85)
{
    return it_client_new_route(env, identity, NULL, secret_z85, server_z85);
}

it_client_t *it_client_new_route(it_env_t *env, const char *identity, const char *route,
                                 const char *secret_z85, const char *server_z85)
{
    char fresh[PLAT_ID_MAX + 1];
    if (!route)
        route = plat_route_new(identity, fresh) == 0 ? fresh : identity;
    size_t slot = IT_MAX_CLIENTS;
    for (size_t i = 0; i < IT_MAX_CLIENTS && slot == IT_MAX_CLIENTS; i++)
        if (!env->clients[i])
            slot = i;
    assert_true(slot < IT_MAX_CLIENTS);
    if (!env->zctx) {
        env->zctx = zmq_ctx_new();
        assert_non_null(env->zctx);
    }
    it_client_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->env = env;
    snprintf(c->id, sizeof c->id, "%s", identity);
    assert_int_equal(plat_uuid_new(c->boot_id), 0);
    c->sock = zmq_socket(env->zctx, ZMQ_DEALER);
    assert_non_null(c->sock);
    int linger = 0;
    assert_int_equal(zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal(zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, route, strlen(route)), 0);
    if (secret_z85) {
        plat_keypair_t kp;
        memset(&kp, 0, sizeof kp);
        snprintf(kp.secret_z85, sizeof kp.secret_z85, "%s", secret_z85);
        assert_int_equal(plat_keys_derive_public(&kp), 0);
        assert_int_equal(zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server_z85, 40), 0);
        assert_int_equal(zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, kp.public_z85, 40), 0);
        assert_int_equal(zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, kp.secret_z85, 40), 0);
        plat_keys_wipe(&kp);
    }
    assert_int_equal(zmq_connect(c->sock, env->bus_endpoint), 0);
    env->clients[slot] = c;
    return c;
}

void it_client_destroy(it_client_t **cp)
{
    if (!cp || !*cp)
        return;
    it_client_t *c = *cp;
    *cp = NULL;
    for (size_t i = 0; i < IT_MAX_CLIENTS; i++)
        if (c->env->clients[i] == c)
            c->env->clients[i] = NULL;
    zmq_close(c->sock);
    free(c);
}

const char *it_client_id(const it_client_t *c) { return c->id; }
const char *it_client_boot_id(const it_client_t *c) { return c->boot_id; }
uint64_t it_client_next_seq(it_client_t *c) { return ++c->seq; }
unsigned it_client_pings(const it_client_t *c) { return c->pings; }

/* Replace a protobuf-c string field: builders malloc every string, the
 * generated defaults point at protobuf_c_empty_string (never freed). */
static void set_str(char **field, const char *value)
{
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = strdup(value);
    assert_non_null(*field);
}

static Plat__Endpoint *ensure_endpoint(Plat__Endpoint **ep)
{
    if (!*ep) {
        *ep = malloc(sizeof **ep);
        assert_non_null(*ep);
        plat__endpoint__init(*ep);
    }
    return *ep;
}

void it_client_encode(it_client_t *c, Plat__PlatformMessage *m, const char *src, const char *dst,
                      uint64_t seq, Plat__MessageKind kind, uint8_t **buf, size_t *len)
{
    if (!m->header) {
        m->header = malloc(sizeof *m->header);
        assert_non_null(m->header);
        plat__header__init(m->header);
    }
    Plat__Header *h = m->header;
    set_str(&ensure_endpoint(&h->source)->id, src);
    set_str(&ensure_endpoint(&h->destination)->id, dst);
    set_str(&h->boot_id, c->boot_id);
    h->seq_no = seq;
    h->kind = kind;
    h->sent_at_ms = plat_now_ms();
    if (kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
        h->timeout_ms = 2000;
    int rc = plat_envelope_encode(m, 0, buf, len);
    if (rc != 0)
        it_fail(c->env, "encode failed: %d", rc);
}

void it_client_send(it_client_t *c, Plat__PlatformMessage *m, const char *src, const char *dst,
                    uint64_t seq, Plat__MessageKind kind, uint8_t **raw, size_t *raw_len)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    it_client_encode(c, m, src, dst, seq, kind, &buf, &len);
    if (zmq_send(c->sock, buf, len, 0) != (int)len)
        it_fail(c->env, "zmq_send: %s", zmq_strerror(zmq_errno()));
    if (raw) {
        *raw = buf;
        *raw_len = len;
    } else {
        free(buf);
    }
}

void it_client_send_frames(it_client_t *c, const void *const frames[], const size_t lens[],
                           size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (zmq_send(c->sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) != (int)lens[i])
            it_fail(c->env, "zmq_send: %s", zmq_strerror(zmq_errno()));
}

static bool is_ping(const Plat__PlatformMessage *m)
{
    return m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL && m->control &&
           m->control->body_case == PLAT__CONTROL_MESSAGE__BODY_PING &&
           m->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST;
}

static void answer_ping(it_client_t *c, const Plat__PlatformMessage *ping)
{
    Plat__PlatformMessage *pong = plat_msg_pong(PLAT__HOST_STATE__HOST_STATE_READY);
    assert_non_null(pong);
    it_client_send(c, pong, c->id, ping->header->source->id, ping->header->seq_no,
                   PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY, NULL, NULL);
    plat_envelope_free(&pong);
    c->pings++;
}

/* Receive one message without blocking: 1 and *out (a non-ping), 0 when
 * nothing (more) is waiting. Pings are answered and skipped. */
static int recv_one(it_client_t *c, Plat__PlatformMessage **out, uint8_t **raw, size_t *raw_len)
{
    for (;;) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, c->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            if (zmq_errno() == EAGAIN)
                return 0;
            it_fail(c->env, "zmq_msg_recv: %s", zmq_strerror(zmq_errno()));
        }
        if (zmq_msg_more(&frame)) {
            zmq_msg_close(&frame);
            it_fail(c->env, "%s received a multi-frame message", c->id);
        }
        Plat__PlatformMessage *m = NULL;
        const char *why = NULL;
        const uint8_t *data = zmq_msg_data(&frame);
        size_t len = zmq_msg_size(&frame);
        int rc = plat_envelope_decode(data, len, 0, &m, &why);
        if (rc != 0) {
            zmq_msg_close(&frame);
            it_fail(c->env, "%s received an invalid message: %d (%s)", c->id, rc,
                    why ? why : "?");
        }
        if (is_ping(m)) {
            snprintf(c->platform_boot_id, sizeof c->platform_boot_id, "%s",
                     m->control->ping->boot_id);
            answer_ping(c, m);
            plat_envelope_free(&m);
            zmq_msg_close(&frame);
            continue;
        }
        if (raw) {
            *raw = malloc(len ? len : 1);
            assert_non_null(*raw);
            memcpy(*raw, data, len);
            *raw_len = len;
        }
        zmq_msg_close(&frame);
        *out = m;
        return 1;
    }
}

int it_client_recv(it_client_t *c, int timeout_ms, Plat__PlatformMessage **out, uint8_t **raw,
                   size_t *raw_len)
{
    *out = NULL;
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        if (recv_one(c, out, raw, raw_len) == 1)
            return 0;
        uint64_t now = it_now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        zmq_pollitem_t item = {.socket = c->sock, .events = ZMQ_POLLIN};
        zmq_poll(&item, 1, (long)(deadline - now));
    }
}

size_t it_client_drain(it_client_t *c)
{
    size_t n = 0;
    for (;;) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        int rc = zmq_msg_recv(&frame, c->sock, ZMQ_DONTWAIT);
        zmq_msg_close(&frame);
        if (rc < 0)
            return n;
        n++;
    }
}

void it_client_pump(it_client_t *c)
{
    /* Anything but a ping arriving while nobody waits for it is a test
     * failure: every expected message is received explicitly. */
    Plat__PlatformMessage *m = NULL;
    if (recv_one(c, &m, NULL, NULL) == 1) {
        const Plat__Header *h = m->header;
        char desc[256];
        snprintf(desc, sizeof desc, "from %s kind %d seq %llu channel %s", h->source->id,
                 (int)h->kind, (unsigned long long)h->seq_no,
                 plat_channel_name(m->channel_case));
        plat_envelope_free(&m);
        it_fail(c->env, "%s received an unexpected message %s", c->id, desc);
    }
}

const char *it_client_register(it_client_t *c, uint32_t *hb_interval_ms, uint32_t *hb_miss)
{
    Plat__PlatformMessage *m =
        plat_msg_host_ready(c->id, (int32_t)getpid(), "c", "1", "dev", PLAT_VERSION, 1);
    assert_non_null(m);
    uint64_t seq = it_client_next_seq(c);
    it_client_send(c, m, c->id, PLAT_PLATFORM_ID, seq, PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST,
                   NULL, NULL);
    plat_envelope_free(&m);
    Plat__PlatformMessage *r = NULL;
    if (it_client_recv(c, IT_DEADLINE_MS, &r, NULL, NULL) != 0)
        it_fail(c->env, "%s: no answer to Control.ready", c->id);
    const Plat__Header *h = r->header;
    bool ok = h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY && h->seq_no == seq &&
              !h->error && strcmp(h->source->id, PLAT_PLATFORM_ID) == 0 &&
              strcmp(h->destination->id, c->id) == 0 &&
              r->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL &&
              r->control->body_case == PLAT__CONTROL_MESSAGE__BODY_REGISTER_ACK &&
              plat_uuid_valid(r->control->register_ack->boot_id);
    if (!ok) {
        char why[256];
        snprintf(why, sizeof why, "kind %d seq %llu (want %llu) error %d %s channel %s",
                 (int)h->kind, (unsigned long long)h->seq_no, (unsigned long long)seq,
                 h->error ? h->error->code : 0, h->error ? h->error->message : "",
                 plat_channel_name(r->channel_case));
        plat_envelope_free(&r);
        it_fail(c->env, "%s: Control.ready not answered by register_ack: %s", c->id, why);
    }
    snprintf(c->platform_boot_id, sizeof c->platform_boot_id, "%s",
             r->control->register_ack->boot_id);
    if (hb_interval_ms)
        *hb_interval_ms = r->control->register_ack->heartbeat_interval_ms;
    if (hb_miss)
        *hb_miss = r->control->register_ack->heartbeat_miss;
    plat_envelope_free(&r);
    return c->platform_boot_id;
}

/* ---- the usual trio ------------------------------------------------- */

uint64_t it_suite_wait_ready(it_env_t *env, const it_suite_t *s, int timeout_ms)
{
    uint64_t t0 = it_now_ms();
    it_match_t hb = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_match_t host = {.id = s->host_id, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &hb, timeout_ms,
                 IT_HOSTBOOT_ID " listed ready");
    uint64_t spent = it_now_ms() - t0;
    int left = timeout_ms > (int)spent ? timeout_ms - (int)spent : 1;
    it_wait_json(env, "/api/v1/hosts", it_pred_host_state, &host, left, "dev host listed ready");
    return it_now_ms() - t0;
}

void it_suite_start(it_env_t *env, it_suite_t *s, int heartbeat_interval_ms, int heartbeat_miss)
{
    memset(s, 0, sizeof *s);
    s->platformd_config = it_platformd_config(env, heartbeat_interval_ms, heartbeat_miss, NULL);
    s->hostbootd_config = it_hostbootd_config(env, IT_HOSTBOOT_NAME, NULL);
    it_new_host_id(s->host_id);

    s->t0 = it_now_ms();
    s->platformd = it_start_platformd(env, s->platformd_config);
    s->hostbootd = it_start_hostbootd(env, s->hostbootd_config);
    s->pluginhost = it_start_pluginhost_dev(env, s->host_id);

    it_wait_healthy(env, IT_DEADLINE_MS);
    s->healthy_ms = it_now_ms() - s->t0;
    it_match_t hb = {.id = IT_HOSTBOOT_ID, .state = "ready"};
    it_match_t host = {.id = s->host_id, .state = "ready"};
    it_wait_json(env, "/api/v1/hostboots", it_pred_hostboot_state, &hb, IT_DEADLINE_MS,
                 IT_HOSTBOOT_ID " listed ready");
    s->hostboot_ready_ms = it_now_ms() - s->t0;
    it_wait_json(env, "/api/v1/hosts", it_pred_host_state, &host, IT_DEADLINE_MS,
                 "dev host listed ready");
    s->host_ready_ms = it_now_ms() - s->t0;
    print_message("suite up: healthy %llu ms, hostboot ready %llu ms, host ready %llu ms "
                  "after spawn\n",
                  (unsigned long long)s->healthy_ms, (unsigned long long)s->hostboot_ready_ms,
                  (unsigned long long)s->host_ready_ms);
}
