/* Plugin host processes: spawn, capture, signal, reap, report. */
#include "spawner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "hostlog.h"
#include "landlock.h"
#include "plat/keys.h"
#include "seccomp.h"
#include "plat/log.h"

#define READ_CHUNK 65536
#define DRAIN_MS 200 /* output still read after an exit before the pipes close */

typedef struct host host_t;

struct host {
    host_t *next;
    hb_spawner_t *sp;
    char id[PLAT_ID_MAX + 1];
    char language[33], version[33], mode[32];
    uv_process_t proc;     /* our child ... */
    uv_poll_t pidpoll;     /* ... or adopted: its pidfd turns readable at exit */
    bool adopted;          /* spawned by an earlier hostbootd, not our child */
    unsigned long long starttime; /* /proc/<pid>/stat field 22: tells pid reuse apart */
    uv_pipe_t out, err;
    uv_timer_t timer; /* grace period, then output drain */
    int pidfd;
    char public_key[PLAT_KEY_Z85_LEN + 1]; /* its CURVE public key; "" without CURVE */
    /* Its secret key, held until hb_spawner_release_key writes it into the
     * write end of the host's key pipe (the host blocks reading fd 3). */
    int key_wfd;
    char key_secret[PLAT_KEY_Z85_LEN + 1];
    int32_t pid;
    hb_hostlog_t *log;
    uint64_t started_ms;
    bool exited, stopping, pipes_closed;
    int open_handles;
    char buf[READ_CHUNK];
};

struct hb_spawner {
    uv_loop_t *loop;
    const hb_config_t *cfg;
    char hostboot_id[PLAT_ID_MAX + 1];
    char platform[256];
    char self_exe[PATH_MAX];
    char host_log_dir[PATH_MAX];
    hb_exit_cb on_exit;
    void *arg;
    host_t *live; /* not yet exited */
    size_t n_live;
    uv_signal_t sigchld;
    bool set_ids;
    uid_t uid;
    gid_t gid;
    void (*done)(void *arg);
    void *done_arg;
    char state_path[PATH_MAX]; /* <hosts.work_dir>/hosts.json: who runs, for a successor */
    char platform_key[PLAT_KEY_Z85_LEN + 1]; /* CURVE: the platform's public key, else "" */
    int landlock_abi; /* the kernel's Landlock ABI at start, or -errno (landlock.h) */
};

/* ---- the exec wrapper (runs in the child, before the runtime) ---------- */

static int parse_limit(const char *s, rlim_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !*s || *end || s[0] == '-')
        return -1;
    *out = (rlim_t)v;
    return 0;
}

int hb_exec_host_main(int argc, char **argv)
{
    /* argv: hostbootd --exec-host [--keep-fd N]
     *       [--landlock MODE [--landlock-read P]... [--landlock-connect PORT]]
     *       [--seccomp ARG] AS NOFILE NPROC CPU -- PATH ARGS... */
    static const int res[4] = {RLIMIT_AS, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_CPU};
    static const char *const names[4] = {"RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_NPROC",
                                         "RLIMIT_CPU"};
    /* Optional first: --keep-fd N (the host's key pipe: the one fd above
     * stdio that survives), then the Landlock options, then --seccomp ARG
     * (seccomp.h hb_seccomp_apply_arg form). */
    int keep_fd = -1;
    if (argc > 3 && strcmp(argv[2], "--keep-fd") == 0) {
        char *end = NULL;
        long v = strtol(argv[3], &end, 10);
        if (!*argv[3] || *end || v < 3 || v > 1023) {
            fprintf(stderr, "hostbootd --exec-host: bad --keep-fd %s\n", argv[3]);
            return 127;
        }
        keep_fd = (int)v;
        argc -= 2;
        argv += 2;
    }
    /* Then --landlock MODE (landlock.h hb_landlock_mode_parse), its extra
     * read paths, each --landlock-read PATH (absolute), and the one TCP
     * port hosts may connect to, --landlock-connect PORT (the bus). */
    hb_landlock_mode_t landlock = HB_LANDLOCK_OFF;
    const char *ll_read[HB_LANDLOCK_MAX_PATHS];
    size_t n_ll_read = 0;
    unsigned ll_port = 0;
    while (argc > 3 && (strcmp(argv[2], "--landlock") == 0 ||
                        strcmp(argv[2], "--landlock-read") == 0 ||
                        strcmp(argv[2], "--landlock-connect") == 0)) {
        if (strcmp(argv[2], "--landlock-connect") == 0) {
            char *end = NULL;
            long v = strtol(argv[3], &end, 10);
            if (!*argv[3] || *end || v < 1 || v > 65535) {
                fprintf(stderr, "hostbootd --exec-host: bad --landlock-connect %s\n", argv[3]);
                return 127;
            }
            ll_port = (unsigned)v;
        } else if (strcmp(argv[2], "--landlock") == 0) {
            if (hb_landlock_mode_parse(argv[3], &landlock) != 0) {
                fprintf(stderr, "hostbootd --exec-host: bad --landlock %s\n", argv[3]);
                return 127;
            }
        } else {
            if (n_ll_read == HB_LANDLOCK_MAX_PATHS || argv[3][0] != '/') {
                fprintf(stderr, "hostbootd --exec-host: bad --landlock-read %s\n", argv[3]);
                return 127;
            }
            ll_read[n_ll_read++] = argv[3];
        }
        argc -= 2;
        argv += 2;
    }
    const char *seccomp = NULL;
    if (argc > 3 && strcmp(argv[2], "--seccomp") == 0) {
        seccomp = argv[3];
        argc -= 2;
        argv += 2;
    }
    if (argc < 8 || strcmp(argv[6], "--") != 0) {
        fprintf(stderr, "hostbootd --exec-host: usage: AS NOFILE NPROC CPU -- PATH ARGS...\n");
        return 127;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        fprintf(stderr, "hostbootd --exec-host: PR_SET_NO_NEW_PRIVS: %s\n", strerror(errno));
        return 127;
    }
    /* Landlock first (it needs NO_NEW_PRIVS, and its system calls must
     * come before any seccomp list that might deny them), then the seccomp
     * filter; both before the limits: building them allocates and opens
     * files, which a small RLIMIT_AS or RLIMIT_NOFILE may forbid. The
     * calls below are allowed by both. */
    char why[256];
    if (landlock != HB_LANDLOCK_OFF) {
        char cwd[PATH_MAX];
        bool applied = false;
        if (hb_landlock_apply_host(landlock, hb_landlock_abi(), argv[7],
                                   getcwd(cwd, sizeof cwd) ? cwd : NULL, ll_read, n_ll_read,
                                   ll_port, &applied, why, sizeof why) != 0) {
            fprintf(stderr, "hostbootd --exec-host: %s\n", why);
            return 127;
        }
        if (!applied)
            fprintf(stderr, "hostbootd --exec-host: %s\n", why);
    }
    if (seccomp && hb_seccomp_apply_arg(seccomp, why, sizeof why) != 0) {
        fprintf(stderr, "hostbootd --exec-host: seccomp: %s\n", why);
        return 127;
    }
    for (int i = 0; i < 4; i++) {
        rlim_t v;
        if (parse_limit(argv[2 + i], &v) != 0) {
            fprintf(stderr, "hostbootd --exec-host: bad limit %s\n", argv[2 + i]);
            return 127;
        }
        if (v == 0)
            continue;
        struct rlimit rl = {v, v};
        if (setrlimit(res[i], &rl) != 0) {
            fprintf(stderr, "hostbootd --exec-host: setrlimit %s=%llu: %s\n", names[i],
                    (unsigned long long)v, strerror(errno));
            return 127;
        }
    }
    /* No core files: a host's memory holds its bus secret key. */
    struct rlimit no_core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &no_core) != 0) {
        fprintf(stderr, "hostbootd --exec-host: setrlimit RLIMIT_CORE=0: %s\n", strerror(errno));
        return 127;
    }
    /* Nothing of hostbootd's leaks into the host: stdio only (and the key
     * pipe, which the host reads and closes). */
    if (keep_fd < 0) {
        if (close_range(3, ~0U, 0) != 0)
            for (int fd = 3; fd < 1024; fd++)
                close(fd);
    } else {
        if (keep_fd > 3 && close_range(3, (unsigned)keep_fd - 1, 0) != 0)
            for (int fd = 3; fd < keep_fd; fd++)
                close(fd);
        if (close_range((unsigned)keep_fd + 1, ~0U, 0) != 0)
            for (int fd = keep_fd + 1; fd < 1024; fd++)
                close(fd);
    }
    execv(argv[7], argv + 7);
    fprintf(stderr, "hostbootd --exec-host: cannot exec %s: %s\n", argv[7], strerror(errno));
    return 127;
}

/* ---- helpers ------------------------------------------------------------- */

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int send_signal(host_t *h, int sig)
{
    if (h->pidfd >= 0) {
        if (syscall(SYS_pidfd_send_signal, h->pidfd, sig, NULL, 0) == 0)
            return 0;
        return -errno;
    }
    if (h->adopted)
        return -ESRCH;
    /* Unreaped child: its pid cannot have been reused yet. */
    return uv_process_kill(&h->proc, sig);
}

static host_t *find_live(hb_spawner_t *s, const char *id)
{
    for (host_t *h = s->live; h; h = h->next)
        if (strcmp(h->id, id) == 0)
            return h;
    return NULL;
}

static void unlink_live(hb_spawner_t *s, host_t *h)
{
    for (host_t **pp = &s->live; *pp; pp = &(*pp)->next)
        if (*pp == h) {
            *pp = h->next;
            s->n_live--;
            return;
        }
}

/* Forget the secret not handed over yet (closing the pipe: a host still
 * waiting for it reads end-of-file and exits). */
static void key_drop(host_t *h)
{
    if (h->key_wfd >= 0)
        close(h->key_wfd);
    h->key_wfd = -1;
    explicit_bzero(h->key_secret, sizeof h->key_secret);
}

static void on_host_handle_closed(uv_handle_t *handle)
{
    host_t *h = handle->data;
    if (--h->open_handles == 0) {
        key_drop(h);
        hb_hostlog_close(&h->log);
        free(h);
    }
}

static void close_pipes(host_t *h)
{
    if (h->pipes_closed)
        return;
    h->pipes_closed = true;
    if (!uv_is_closing((uv_handle_t *)&h->out))
        uv_close((uv_handle_t *)&h->out, on_host_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&h->err))
        uv_close((uv_handle_t *)&h->err, on_host_handle_closed);
}

/* ---- output -------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    host_t *h = handle->data;
    *buf = uv_buf_init(h->buf, sizeof h->buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    host_t *h = stream->data;
    if (nread > 0) {
        hb_hostlog_write(h->log, buf->base, (size_t)nread);
        return;
    }
    if (nread < 0) {
        /* EOF or error: this stream is done. */
        uv_read_stop(stream);
        if (!uv_is_closing((uv_handle_t *)stream))
            uv_close((uv_handle_t *)stream, on_host_handle_closed);
    }
}

/* ---- exits ---------------------------------------------------------------- */

static void on_drained(uv_timer_t *t)
{
    host_t *h = t->data;
    close_pipes(h);
    uv_close((uv_handle_t *)&h->timer, on_host_handle_closed);
}

static void save_state(hb_spawner_t *s);
static unsigned long long proc_starttime(pid_t pid);

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* A host's private directory lives as long as the host: gone with it.
 * FTW_PHYS: symlinks the host left are removed, never followed. */
static void remove_workdir(const hb_spawner_t *s, const char *host_id)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/%s", s->cfg->hosts.work_dir, host_id) >= (int)sizeof dir)
        return;
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        plat_log_warn("spawner", "cannot remove a host's work directory: %s dir=%s",
                      strerror(errno), dir);
}

/* Bookkeeping and report of an exit. An adopted host is not our child:
 * its status cannot be known (reported as status -1). */
static void host_exited(host_t *h, int64_t exit_status, int term_signal)
{
    key_drop(h); /* a key never handed over dies with the host */
    hb_spawner_t *s = h->sp;
    h->exited = true;
    unlink_live(s, h);
    if (h->pidfd >= 0) {
        close(h->pidfd);
        h->pidfd = -1;
    }
    uint64_t ran = plat_mono_ms() - h->started_ms;
    if (term_signal)
        hb_hostlog_note(h->log, "host exited: killed by signal %d (%s) after %llu ms", term_signal,
                        strsignal(term_signal), (unsigned long long)ran);
    else if (h->adopted)
        hb_hostlog_note(h->log, "host exited (adopted: status unknown) after %llu ms",
                        (unsigned long long)ran);
    else
        hb_hostlog_note(h->log, "host exited: status %lld after %llu ms", (long long)exit_status,
                        (unsigned long long)ran);
    plat_log(h->stopping || (term_signal == 0 && exit_status == 0) ? PLAT_LOG_NOTICE
                                                                   : PLAT_LOG_WARNING,
             "spawner", "host exited%s id=%s pid=%d status=%lld signal=%d ran_ms=%llu%s",
             h->stopping ? " (deleted)" : " unexpectedly", h->id, (int)h->pid,
             (long long)exit_status, term_signal, (unsigned long long)ran,
             h->adopted ? " adopted=1" : "");
    hb_exit_t x = {
        .host_id = h->id,
        .pid = h->pid,
        .language = h->language,
        .version = h->version,
        .mode = h->mode,
        .exit_status = term_signal ? 0 : exit_status,
        .term_signal = term_signal,
        .ran_ms = ran,
        .log_bytes = hb_hostlog_bytes_written(h->log),
    };
    if (s->on_exit)
        s->on_exit(&x, s->arg);
    save_state(s);
    remove_workdir(s, h->id);
    /* Keep reading what the host wrote just before it died, briefly: a
     * grandchild holding the pipes open must not keep them forever. */
    uv_timer_stop(&h->timer);
    uv_timer_start(&h->timer, on_drained, DRAIN_MS, 0);
    if (s->done && s->n_live == 0) {
        void (*done)(void *) = s->done;
        s->done = NULL;
        done(s->done_arg);
    }
}

static void on_process_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    host_t *h = proc->data;
    uv_close((uv_handle_t *)proc, on_host_handle_closed);
    host_exited(h, exit_status, term_signal);
}

static void on_pidfd(uv_poll_t *p, int status, int events)
{
    (void)status, (void)events;
    host_t *h = p->data;
    uv_close((uv_handle_t *)p, on_host_handle_closed);
    host_exited(h, -1, 0);
}

static void on_grace_over(uv_timer_t *t)
{
    host_t *h = t->data;
    if (h->exited)
        return;
    plat_log_warn("spawner", "host still running after %lld ms grace: SIGKILL id=%s pid=%d",
                  (long long)h->sp->cfg->hosts.grace_ms, h->id, (int)h->pid);
    int rc = send_signal(h, SIGKILL);
    if (rc < 0 && rc != -ESRCH)
        plat_log_err("spawner", "SIGKILL failed: %s id=%s pid=%d", strerror(-rc), h->id,
                     (int)h->pid);
}

/* Orphans: as subreaper, hostbootd adopts what its hosts leave behind.
 * libuv reaps the hosts it spawned; anything else among our children is
 * reaped here so no zombie survives. */
static bool is_host_pid(hb_spawner_t *s, pid_t pid)
{
    for (host_t *h = s->live; h; h = h->next)
        if (h->pid == pid)
            return true;
    return false;
}

static void reap_orphans(hb_spawner_t *s)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], list[4096];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, list, sizeof list - 1);
        close(fd);
        if (n <= 0)
            continue;
        list[n] = 0;
        char *save = NULL;
        for (char *tok = strtok_r(list, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
            pid_t pid = (pid_t)atoi(tok);
            if (pid <= 0 || is_host_pid(s, pid))
                continue;
            int status = 0;
            if (waitpid(pid, &status, WNOHANG) == pid)
                plat_log_info("spawner", "reaped an orphan pid=%d status=0x%x", (int)pid, status);
        }
    }
    closedir(d);
}

static void on_sigchld(uv_signal_t *sig, int signum)
{
    (void)signum;
    reap_orphans(sig->data);
}

/* ---- public ---------------------------------------------------------------- */

static int resolve_ids(hb_spawner_t *s)
{
    const char *user = s->cfg->hosts.user, *group = s->cfg->hosts.group;
    if ((!user || !*user) && (!group || !*group))
        return 0;
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (user && *user) {
        struct passwd *pw = getpwnam(user);
        if (!pw) {
            plat_log_err("spawner", "hosts.user \"%s\" does not exist", user);
            return -ENOENT;
        }
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    if (group && *group) {
        struct group *gr = getgrnam(group);
        if (!gr) {
            plat_log_err("spawner", "hosts.group \"%s\" does not exist", group);
            return -ENOENT;
        }
        gid = gr->gr_gid;
    }
    if (uid == getuid() && gid == getgid())
        return 0;
    if (geteuid() != 0) {
        plat_log_err("spawner", "hosts.user/hosts.group need hostbootd to run as root "
                                "(uid=%d gid=%d wanted)",
                     (int)uid, (int)gid);
        return -EPERM;
    }
    s->set_ids = true;
    s->uid = uid;
    s->gid = gid;
    return 0;
}

/* Once at start: what the hosts' Landlock sandbox enforces here. */
static void log_landlock(const hb_spawner_t *s)
{
    const hb_config_t *c = s->cfg;
    if (!c->hosts.landlock.enabled) {
        plat_log_warn("spawner", "landlock off (hosts.landlock.enabled is false): hosts can read "
                                 "every file their user can");
        return;
    }
    if (s->landlock_abi < 1) {
        if (c->hosts.landlock.required)
            plat_log_err("spawner", "landlock required but unavailable (%s): no host will start",
                         strerror(-s->landlock_abi));
        else
            plat_log_warn("spawner", "landlock unavailable: hosts can read every file their "
                                     "user can (%s)",
                          strerror(-s->landlock_abi));
        return;
    }
    char what[512];
    hb_landlock_describe(s->landlock_abi, what, sizeof what);
    plat_log_info("spawner", "landlock on: hosts read only system files, their runtime, the "
                             "package store and read_paths, write only their work dir; "
                             "enforced: %s abi=%d required=%d packages_dir=%s read_paths=%zu "
                             "tcp_connect=%s",
                  what, s->landlock_abi, (int)c->hosts.landlock.required,
                  c->hosts.landlock.packages_dir, c->hosts.landlock.n_read_paths,
                  !c->hosts.landlock.bus_only ? "any"
                  : s->landlock_abi >= 4     ? "bus port only"
                                             : "any (ABI < 4)");
}

hb_spawner_t *hb_spawner_new(uv_loop_t *loop, const hb_config_t *cfg, const char *hostboot_id,
                             const char *platform_endpoint, hb_exit_cb on_exit_cb, void *arg)
{
    hb_spawner_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->cfg = cfg;
    s->on_exit = on_exit_cb;
    s->arg = arg;
    snprintf(s->hostboot_id, sizeof s->hostboot_id, "%s", hostboot_id);
    snprintf(s->platform, sizeof s->platform, "%s", platform_endpoint);
    ssize_t n = readlink("/proc/self/exe", s->self_exe, sizeof s->self_exe - 1);
    if (n <= 0) {
        int e = errno;
        free(s);
        errno = e;
        return NULL;
    }
    s->self_exe[n] = 0;
    if (snprintf(s->host_log_dir, sizeof s->host_log_dir, "%s/hosts", cfg->log.dir) >=
        (int)sizeof s->host_log_dir) {
        free(s);
        errno = ENAMETOOLONG;
        return NULL;
    }
    if (snprintf(s->state_path, sizeof s->state_path, "%s/hosts.json", cfg->hosts.work_dir) >=
            (int)sizeof s->state_path ||
        mkdir_p(cfg->hosts.work_dir, 0755) < 0)
        s->state_path[0] = 0;
    int rc = resolve_ids(s);
    if (rc < 0) {
        free(s);
        errno = -rc;
        return NULL;
    }
    s->landlock_abi = hb_landlock_abi();
    log_landlock(s);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        plat_log_warn("spawner", "cannot become subreaper: %s", strerror(errno));
    uv_signal_init(loop, &s->sigchld);
    s->sigchld.data = s;
    uv_signal_start(&s->sigchld, on_sigchld, SIGCHLD);
    return s;
}

static const hb_runtime_cfg_t *runtime_for(const hb_config_t *cfg, const char *language,
                                           const char *version)
{
    for (size_t i = 0; i < cfg->n_runtimes; i++)
        if (strcmp(cfg->runtimes[i].language, language) == 0 &&
            strcmp(cfg->runtimes[i].version, version) == 0)
            return &cfg->runtimes[i];
    return NULL;
}

/* Environment of a host: a fixed minimum, plus sanitizer settings so that
 * an instrumented build behaves the same in its hosts. */
static void host_env(char **env, size_t cap, char *home, size_t home_size, const char *workdir)
{
    size_t n = 0;
    env[n++] = "PATH=/usr/local/bin:/usr/bin:/bin";
    snprintf(home, home_size, "HOME=%s", workdir);
    env[n++] = home;
    static const char *const pass[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TZ",
                                       "LANG"};
    for (size_t i = 0; i < sizeof pass / sizeof pass[0] && n + 1 < cap; i++) {
        for (char **e = environ; *e; e++) {
            size_t len = strlen(pass[i]);
            if (strncmp(*e, pass[i], len) == 0 && (*e)[len] == '=') {
                env[n++] = *e;
                break;
            }
        }
    }
    env[n] = NULL;
}

int hb_spawner_start(hb_spawner_t *s, const char *host_id, const char *language,
                     const char *version, const char *mode, int32_t *pid, char *why,
                     size_t why_size)
{
    why[0] = 0;
    if (plat_id_kind(host_id) != PLAT_ID_HOST) {
        snprintf(why, why_size, "bad host id \"%.80s\"", host_id);
        return -EINVAL;
    }
    if (strcmp(mode, "highPerformance") != 0 && strcmp(mode, "powerSave") != 0) {
        snprintf(why, why_size, "mode \"%.40s\" cannot be spawned (highPerformance or powerSave; "
                                "dev hosts are started by hand)", mode);
        return -EINVAL;
    }
    const hb_runtime_cfg_t *rt = runtime_for(s->cfg, language, version);
    if (!rt) {
        snprintf(why, why_size, "no runtime for language \"%.40s\" version \"%.40s\"", language,
                 version);
        return -ENOENT;
    }
    char path[PATH_MAX];
    if (!realpath(rt->path, path) || access(path, X_OK) != 0) {
        snprintf(why, why_size, "runtime binary %.200s for %.40s/%.40s: %s", rt->path, language,
                 version, strerror(errno));
        return -ENOEXEC;
    }
    if (find_live(s, host_id)) {
        snprintf(why, why_size, "host %s is already running", host_id);
        return -EEXIST;
    }
    const char *landlock = s->cfg->hosts.landlock.enabled ? "on" : NULL;
    if (landlock && s->landlock_abi < 1) {
        if (s->cfg->hosts.landlock.required) {
            snprintf(why, why_size, "landlock required (hosts.landlock.required) but the kernel "
                                    "has none: %s", strerror(-s->landlock_abi));
            return -EOPNOTSUPP;
        }
        landlock = NULL; /* warned once at start */
    } else if (landlock && s->cfg->hosts.landlock.required) {
        landlock = "required";
    }
    char workdir[PATH_MAX];
    if (snprintf(workdir, sizeof workdir, "%s/%s", s->cfg->hosts.work_dir, host_id) >=
        (int)sizeof workdir) {
        snprintf(why, why_size, "work directory path too long");
        return -ENAMETOOLONG;
    }
    int rc = mkdir_p(s->cfg->hosts.work_dir, 0755);
    if (rc == 0 && mkdir(workdir, 0700) != 0 && errno != EEXIST)
        rc = -errno;
    if (rc == 0 && s->set_ids && chown(workdir, s->uid, s->gid) != 0)
        rc = -errno;
    if (rc < 0) {
        snprintf(why, why_size, "work directory %.200s: %s", workdir, strerror(-rc));
        return rc;
    }

    host_t *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(why, why_size, "out of memory");
        return -ENOMEM;
    }
    h->sp = s;
    h->pidfd = -1;
    h->key_wfd = -1;
    snprintf(h->id, sizeof h->id, "%s", host_id);
    snprintf(h->language, sizeof h->language, "%s", language);
    snprintf(h->version, sizeof h->version, "%s", version);
    snprintf(h->mode, sizeof h->mode, "%s", mode);
    hb_hostlog_opts_t lo = {.max_bytes = (uint64_t)s->cfg->hosts.log_max_bytes,
                            .keep = (unsigned)s->cfg->hosts.log_keep};
    h->log = hb_hostlog_open(s->host_log_dir, host_id, &lo);
    if (!h->log) {
        rc = -errno;
        snprintf(why, why_size, "host log in %.200s: %s", s->host_log_dir, strerror(errno));
        free(h);
        return rc;
    }

    char lim[4][24], lost[24];
    snprintf(lim[0], sizeof lim[0], "%lld", (long long)s->cfg->hosts.limits.as_bytes);
    snprintf(lim[1], sizeof lim[1], "%lld", (long long)s->cfg->hosts.limits.nofile);
    snprintf(lim[2], sizeof lim[2], "%lld", (long long)s->cfg->hosts.limits.nproc);
    snprintf(lim[3], sizeof lim[3], "%lld", (long long)s->cfg->hosts.limits.cpu_s);
    snprintf(lost, sizeof lost, "%lld", (long long)s->cfg->hosts.platform_lost_exit_ms);
    char seccomp[HB_SECCOMP_MAX_NAMES * (HB_SECCOMP_NAME_MAX + 1)] = "none"; /* fits any list */
    if (s->cfg->hosts.seccomp.enabled &&
        hb_seccomp_join((const char *const *)s->cfg->hosts.seccomp.deny,
                        s->cfg->hosts.seccomp.n_deny, seccomp, sizeof seccomp) < 0)
        snprintf(seccomp, sizeof seccomp, "default");
    /* CURVE: a fresh key pair for this host. The secret goes down a pipe
     * that becomes the host's fd KEY_FD (never argv or the environment);
     * only the fd number and the platform's public key are in argv. It is
     * written only once the platform has been sent the public key
     * (hb_spawner_release_key): the host cannot knock before its key is
     * on its way to the ZAP handler. The write end is close-on-exec. */
    plat_keypair_t kp;
    memset(&kp, 0, sizeof kp);
    int keyp[2] = {-1, -1};
    if (s->platform_key[0]) {
        rc = plat_keys_new(&kp);
        if (rc == 0 && pipe2(keyp, O_CLOEXEC) != 0)
            rc = -errno;
        if (rc == 0) {
            h->key_wfd = keyp[1];
            memcpy(h->key_secret, kp.secret_z85, sizeof h->key_secret);
        } else if (keyp[1] >= 0) {
            close(keyp[1]);
        }
        if (rc < 0) {
            if (keyp[0] >= 0)
                close(keyp[0]);
            plat_keys_wipe(&kp);
            snprintf(why, why_size, "cannot give the host a key: %s", strerror(-rc));
            hb_hostlog_close(&h->log);
            free(h);
            return rc;
        }
        snprintf(h->public_key, sizeof h->public_key, "%s", kp.public_z85);
        plat_keys_wipe(&kp);
    }
    char key_fd_arg[8];
    snprintf(key_fd_arg, sizeof key_fd_arg, "%d", HB_KEY_FD);
    /* Landlock: the package store and read_paths made absolute (the
     * wrapper runs in the work dir). One missing now is left out, loudly:
     * the host cannot read it. */
    const hb_config_t *c = s->cfg;
    size_t n_ll = 0, ll_cap = landlock ? 1 + c->hosts.landlock.n_read_paths : 0;
    char(*ll_paths)[PATH_MAX] = ll_cap ? calloc(ll_cap, PATH_MAX) : NULL;
    /* hosts.landlock.bus_only: the bus port, the one TCP port hosts may
     * connect to ("tcp://127.0.0.1:7700" -> "7700"; validated by the config). */
    char bus_port[8] = "";
    const char *colon = strrchr(s->platform, ':');
    if (landlock && c->hosts.landlock.bus_only && colon && strlen(colon + 1) < sizeof bus_port)
        snprintf(bus_port, sizeof bus_port, "%s", colon + 1);
    char **args = calloc(36 + 2 * ll_cap, sizeof *args);
    if (!args || (ll_cap && !ll_paths)) {
        free(args);
        free(ll_paths);
        if (keyp[0] >= 0)
            close(keyp[0]);
        key_drop(h);
        snprintf(why, why_size, "out of memory");
        hb_hostlog_close(&h->log);
        free(h);
        return -ENOMEM;
    }
    for (size_t i = 0; i < ll_cap; i++) {
        const char *p =
            i == 0 ? c->hosts.landlock.packages_dir : c->hosts.landlock.read_paths[i - 1];
        if (realpath(p, ll_paths[n_ll]))
            n_ll++;
        else
            plat_log_warn("spawner", "landlock: hosts cannot read %s (%s) id=%s path=%s",
                          i == 0 ? "the package store hosts.landlock.packages_dir"
                                 : "a hosts.landlock.read_paths entry",
                          strerror(errno), host_id, p);
    }
    size_t na = 0;
    args[na++] = s->self_exe;
    args[na++] = "--exec-host";
    if (keyp[0] >= 0) {
        args[na++] = "--keep-fd";
        args[na++] = key_fd_arg;
    }
    if (landlock) {
        args[na++] = "--landlock";
        args[na++] = (char *)landlock;
        for (size_t i = 0; i < n_ll; i++) {
            args[na++] = "--landlock-read";
            args[na++] = ll_paths[i];
        }
        if (bus_port[0]) {
            args[na++] = "--landlock-connect";
            args[na++] = bus_port;
        }
    }
    char *const tail[] = {"--seccomp", seccomp, lim[0], lim[1], lim[2], lim[3], "--", path,
                          "--platform", s->platform, "--host-id", h->id, "--hostboot",
                          s->hostboot_id, "--mode", h->mode, "--platform-lost-exit-ms", lost};
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
        args[na++] = tail[i];
    if (keyp[0] >= 0) {
        args[na++] = "--key-fd";
        args[na++] = key_fd_arg;
        args[na++] = "--platform-key";
        args[na++] = s->platform_key;
    }
    args[na] = NULL;
    char *env[16], home[PATH_MAX + 8];
    char abs_workdir[PATH_MAX];
    if (!realpath(workdir, abs_workdir))
        snprintf(abs_workdir, sizeof abs_workdir, "%s", workdir);
    host_env(env, sizeof env / sizeof env[0], home, sizeof home, abs_workdir);

    uv_pipe_init(s->loop, &h->out, 0);
    uv_pipe_init(s->loop, &h->err, 0);
    uv_timer_init(s->loop, &h->timer);
    h->out.data = h->err.data = h->timer.data = h->proc.data = h;
    uv_stdio_container_t stdio[HB_KEY_FD + 1] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&h->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&h->err},
        {.flags = UV_INHERIT_FD, .data.fd = keyp[0]},
    };
    uv_process_options_t po = {
        .exit_cb = on_process_exit,
        .file = s->self_exe,
        .args = args,
        .env = env,
        .cwd = abs_workdir,
        /* Own session: a terminal's Ctrl-C reaches hostbootd, which stops
         * its hosts itself, not the hosts directly. */
        .flags = UV_PROCESS_DETACHED | (s->set_ids ? UV_PROCESS_SETUID | UV_PROCESS_SETGID : 0),
        .stdio_count = keyp[0] >= 0 ? HB_KEY_FD + 1 : 3,
        .stdio = stdio,
        .uid = s->uid,
        .gid = s->gid,
    };
    h->started_ms = plat_mono_ms();
    rc = uv_spawn(s->loop, &h->proc, &po);
    free(args);
    free(ll_paths);
    if (keyp[0] >= 0)
        close(keyp[0]); /* the child has its copy (or none: spawn failed) */
    if (rc < 0) {
        snprintf(why, why_size, "spawn %.200s: %s", path, uv_strerror(rc));
        hb_hostlog_note(h->log, "spawn failed: %s", uv_strerror(rc));
        /* uv_spawn leaves the process handle initialised on failure. */
        h->open_handles = 4;
        h->pipes_closed = true;
        uv_close((uv_handle_t *)&h->proc, on_host_handle_closed);
        uv_close((uv_handle_t *)&h->out, on_host_handle_closed);
        uv_close((uv_handle_t *)&h->err, on_host_handle_closed);
        uv_close((uv_handle_t *)&h->timer, on_host_handle_closed);
        return rc;
    }
    h->open_handles = 4;
    h->pid = (int32_t)h->proc.pid;
    h->pidfd = (int)syscall(SYS_pidfd_open, h->proc.pid, 0);
    if (h->pidfd < 0)
        plat_log_debug("spawner", "pidfd_open failed (%s): signalling by pid id=%s pid=%d",
                       strerror(errno), h->id, (int)h->pid);
    uv_read_start((uv_stream_t *)&h->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&h->err, on_alloc, on_read);
    h->starttime = proc_starttime(h->proc.pid);
    h->next = s->live;
    s->live = h;
    s->n_live++;
    save_state(s);
    hb_hostlog_note(h->log, "host started: pid %d, %s/%s, mode %s", (int)h->pid, language,
                    version, mode);
    plat_log_notice("spawner", "host spawned id=%s pid=%d language=%s version=%s mode=%s path=%s",
                    h->id, (int)h->pid, language, version, mode, path);
    *pid = h->pid;
    return 0;
}

/* ---- surviving a hostbootd restart --------------------------------------- */

static unsigned long long proc_starttime(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    /* After the ")" closing comm: field 3 (state) ... field 22 (starttime). */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    p++;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* Who runs, written atomically after every spawn and exit, so that a
 * hostbootd restarted by systemd (KillMode=process keeps the hosts) can
 * adopt them. */
static void save_state(hb_spawner_t *s)
{
    if (!s->state_path[0])
        return;
    json_t *arr = json_array();
    for (host_t *h = s->live; h; h = h->next)
        json_array_append_new(arr, json_pack("{s:s, s:i, s:I, s:s, s:s, s:s, s:s}", "id", h->id,
                                             "pid", (int)h->pid, "starttime",
                                             (json_int_t)h->starttime, "language", h->language,
                                             "version", h->version, "mode", h->mode,
                                             "public_key", h->public_key));
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->state_path);
    if (json_dump_file(arr, tmp, JSON_COMPACT) != 0 || rename(tmp, s->state_path) != 0)
        plat_log_warn("spawner", "cannot save the host list: %s path=%s", strerror(errno),
                      s->state_path);
    json_decref(arr);
}

/* A host of the previous hostbootd: watched through its pidfd (exits are
 * still reported, with status unknown), signalled through it, listed in our
 * registration. Its output went to the previous hostbootd and is lost. */
static int adopt_one(hb_spawner_t *s, const char *id, pid_t pid, unsigned long long starttime,
                     const char *language, const char *version, const char *mode,
                     const char *public_key)
{
    if (plat_id_kind(id) != PLAT_ID_HOST || pid <= 0 || find_live(s, id))
        return -EINVAL;
    if (!starttime || proc_starttime(pid) != starttime)
        return -ESRCH; /* gone (or the pid now belongs to someone else) */
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        return -errno;
    host_t *h = calloc(1, sizeof *h);
    if (!h) {
        close(pidfd);
        return -ENOMEM;
    }
    h->sp = s;
    h->adopted = true;
    h->pidfd = pidfd;
    h->key_wfd = -1; /* an adopted host has its key already */
    h->pid = (int32_t)pid;
    h->starttime = starttime;
    h->started_ms = plat_mono_ms();
    h->pipes_closed = true;
    snprintf(h->id, sizeof h->id, "%s", id);
    snprintf(h->language, sizeof h->language, "%s", language);
    snprintf(h->version, sizeof h->version, "%s", version);
    snprintf(h->mode, sizeof h->mode, "%s", mode);
    /* Its key, so that a restarted platform re-admits it (REGISTER). */
    if (public_key && plat_key_z85_valid(public_key))
        snprintf(h->public_key, sizeof h->public_key, "%s", public_key);
    hb_hostlog_opts_t lo = {.max_bytes = (uint64_t)s->cfg->hosts.log_max_bytes,
                            .keep = (unsigned)s->cfg->hosts.log_keep};
    h->log = hb_hostlog_open(s->host_log_dir, id, &lo);
    uv_poll_init(s->loop, &h->pidpoll, pidfd);
    uv_timer_init(s->loop, &h->timer);
    h->pidpoll.data = h->timer.data = h;
    h->open_handles = 2;
    uv_poll_start(&h->pidpoll, UV_READABLE, on_pidfd);
    h->next = s->live;
    s->live = h;
    s->n_live++;
    hb_hostlog_note(h->log, "host adopted by a new hostbootd (pid %d); its output is no longer "
                            "captured",
                    (int)getpid());
    plat_log_notice("spawner", "adopted a host of the previous hostbootd id=%s pid=%d mode=%s", id,
                    (int)pid, mode);
    return 0;
}

size_t hb_spawner_adopt(hb_spawner_t *s)
{
    json_error_t jerr;
    json_t *arr = s->state_path[0] ? json_load_file(s->state_path, 0, &jerr) : NULL;
    size_t n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "id"));
        json_int_t pid = json_integer_value(json_object_get(e, "pid"));
        json_int_t st = json_integer_value(json_object_get(e, "starttime"));
        const char *lang = json_string_value(json_object_get(e, "language"));
        const char *ver = json_string_value(json_object_get(e, "version"));
        const char *mode = json_string_value(json_object_get(e, "mode"));
        if (!id || !lang || !ver || !mode)
            continue;
        const char *key = json_string_value(json_object_get(e, "public_key"));
        int rc = adopt_one(s, id, (pid_t)pid, (unsigned long long)st, lang, ver, mode, key);
        if (rc == 0)
            n++;
        else if (rc == -ESRCH && s->on_exit) {
            /* It died while no hostbootd watched: report it now. */
            plat_log_warn("spawner", "host of the previous hostbootd is gone id=%s pid=%d", id,
                          (int)pid);
            hb_exit_t x = {.host_id = id, .pid = (int32_t)pid, .language = lang,
                           .version = ver, .mode = mode, .exit_status = -1};
            s->on_exit(&x, s->arg);
        }
    }
    json_decref(arr);
    save_state(s);
    return n;
}

int hb_spawner_delete(hb_spawner_t *s, const char *host_id, int32_t pid)
{
    host_t *h = find_live(s, host_id);
    if (!h || (pid && pid != h->pid))
        return -ENOENT;
    if (h->stopping)
        return 0;
    h->stopping = true;
    int64_t grace = s->cfg->hosts.grace_ms;
    int rc = send_signal(h, grace > 0 ? SIGTERM : SIGKILL);
    plat_log_info("spawner", "stopping host: %s sent id=%s pid=%d grace_ms=%lld",
                  grace > 0 ? "SIGTERM" : "SIGKILL", h->id, (int)h->pid, (long long)grace);
    if (rc < 0 && rc != -ESRCH)
        plat_log_err("spawner", "signal failed: %s id=%s pid=%d", strerror(-rc), h->id,
                     (int)h->pid);
    if (grace > 0)
        uv_timer_start(&h->timer, on_grace_over, (uint64_t)grace, 0);
    return 0;
}

size_t hb_spawner_count(const hb_spawner_t *s) { return s->n_live; }

int hb_spawner_set_platform_key(hb_spawner_t *s, const char *platform_public_z85)
{
    if (!platform_public_z85) {
        s->platform_key[0] = 0;
        return 0;
    }
    if (!plat_key_z85_valid(platform_public_z85))
        return -EINVAL;
    snprintf(s->platform_key, sizeof s->platform_key, "%s", platform_public_z85);
    return 0;
}

int hb_spawner_release_key(hb_spawner_t *s, const char *host_id, bool hand_over)
{
    host_t *h = find_live(s, host_id);
    if (!h || h->key_wfd < 0)
        return -ENOENT;
    if (!hand_over) {
        key_drop(h);
        plat_log_warn("spawner", "host key withheld (the platform was not told it): the host "
                                 "reads end-of-file and exits id=%s pid=%d",
                      h->id, (int)h->pid);
        return 0;
    }
    char line[PLAT_KEY_Z85_LEN + 2];
    snprintf(line, sizeof line, "%s\n", h->key_secret);
    /* 41 bytes into an empty pipe: never blocks, never short. A host that
     * died meanwhile gets EPIPE (SIGPIPE is ignored by the daemon). */
    ssize_t n = write(h->key_wfd, line, strlen(line));
    int rc = n == (ssize_t)strlen(line) ? 0 : n < 0 ? -errno : -EIO;
    explicit_bzero(line, sizeof line);
    key_drop(h);
    if (rc < 0)
        plat_log_warn("spawner", "cannot hand the host its key: %s id=%s pid=%d", strerror(-rc),
                      h->id, (int)h->pid);
    return rc;
}

const char *hb_spawner_public_key(hb_spawner_t *s, const char *host_id)
{
    host_t *h = find_live(s, host_id);
    return h && h->public_key[0] ? h->public_key : NULL;
}

void hb_spawner_foreach(hb_spawner_t *s, void (*fn)(const hb_host_info_t *h, void *arg),
                        void *arg)
{
    for (host_t *h = s->live; h; h = h->next) {
        hb_host_info_t info = {h->id,       h->pid,      h->language, h->version,
                               h->mode,     h->stopping, h->public_key};
        fn(&info, arg);
    }
}

void hb_spawner_stop_all(hb_spawner_t *s, void (*done)(void *arg), void *arg)
{
    if (s->n_live == 0) {
        done(arg);
        return;
    }
    s->done = done;
    s->done_arg = arg;
    plat_log_notice("spawner", "stopping %zu hosts", s->n_live);
    for (host_t *h = s->live; h; h = h->next)
        hb_spawner_delete(s, h->id, 0);
}

/* The signal handle lives inside the spawner: free both on its close. */
static void free_spawner(uv_handle_t *h) { free(h->data); }

void hb_spawner_destroy(hb_spawner_t **sp)
{
    if (!sp || !*sp)
        return;
    hb_spawner_t *s = *sp;
    *sp = NULL;
    if (s->n_live)
        plat_log_err("spawner", "destroyed with %zu hosts still running", s->n_live);
    uv_close((uv_handle_t *)&s->sigchld, free_spawner);
}
