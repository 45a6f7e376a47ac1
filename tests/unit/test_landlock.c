/* hostbootd's Landlock sandbox (landlock.h): the ABI masks, the modes, a
 * kernel without Landlock, and — in forked children that restrict
 * themselves — what a host can and cannot open, execute and signal. The
 * tests run as root here: every refusal they check is Landlock's doing.
 * The kernel-side tests are skipped when the kernel has no Landlock (the
 * scope tests below ABI 6). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hbconfig.h"
#include "landlock.h"
#include "spawner.h"

/* ---- fixtures -------------------------------------------------------------- */

typedef struct {
    char root[200];    /* mkdtemp */
    char allowed[256]; /* <root>/allowed, with file "f" */
    char denied[256];  /* <root>/denied, with file "f" */
    char work[256];    /* <root>/work: the private work dir */
    char allowed_f[300], denied_f[300];
} dirs_t;

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int setup_dirs(void **state)
{
    dirs_t *d = calloc(1, sizeof *d);
    assert_non_null(d);
    const char *tmp = getenv("TMPDIR");
    snprintf(d->root, sizeof d->root, "%.150s/test_landlock.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(d->root));
    snprintf(d->allowed, sizeof d->allowed, "%s/allowed", d->root);
    snprintf(d->denied, sizeof d->denied, "%s/denied", d->root);
    snprintf(d->work, sizeof d->work, "%s/work", d->root);
    assert_int_equal(mkdir(d->allowed, 0755), 0);
    assert_int_equal(mkdir(d->denied, 0755), 0);
    assert_int_equal(mkdir(d->work, 0700), 0);
    snprintf(d->allowed_f, sizeof d->allowed_f, "%s/f", d->allowed);
    snprintf(d->denied_f, sizeof d->denied_f, "%s/f", d->denied);
    write_file(d->allowed_f, "readable\n", 0644);
    write_file(d->denied_f, "secret\n", 0600);
    *state = d;
    return 0;
}

static int teardown_dirs(void **state)
{
    dirs_t *d = *state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->root);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", d->root);
    free(d);
    return 0;
}

static int wait_child(pid_t pid)
{
    int st = 0;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    assert_int_equal(r, pid);
    return st;
}

static void assert_exit0(int st)
{
    if (!WIFEXITED(st))
        fail_msg("child killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    if (WEXITSTATUS(st) != 0)
        fail_msg("child check %d failed (see its message above)", WEXITSTATUS(st));
}

/* In a child: fail check number `n` with a message. */
#define CHILD_CHECK(n, cond, ...)                                                                  \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            int e_ = errno;                                                                        \
            fprintf(stderr, "child check %d failed: ", (n));                                       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, " (errno %d %s)\n", e_, strerror(e_));                                 \
            _exit(n);                                                                              \
        }                                                                                          \
    } while (0)

/* In a child: NO_NEW_PRIVS, then the host's rules with `allowed` as the
 * one extra read path and `work` as the private dir. */
static void child_restrict(const dirs_t *d, hb_landlock_mode_t mode)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        _exit(100);
    const char *read[] = {d->allowed};
    bool applied = false;
    char why[256];
    int rc = hb_landlock_apply_host(mode, hb_landlock_abi(), "/usr/bin/true", d->work, read, 1,
                                    0, &applied, why, sizeof why);
    if (rc != 0 || !applied) {
        fprintf(stderr, "apply: %d %s\n", rc, why);
        _exit(101);
    }
}

static bool have_landlock(int min_abi)
{
    int abi = hb_landlock_abi();
    if (abi < min_abi) {
        print_message("landlock ABI %d < %d here: skipped\n", abi, min_abi);
        return false;
    }
    return true;
}

static int open_errno(const char *path, int flags)
{
    errno = 0;
    int fd = open(path, flags | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return errno;
}

/* ---- pure functions -------------------------------------------------------- */

static void test_abi_masks(void **state)
{
    (void)state;
    assert_true(hb_landlock_fs_handled(0) == 0);
    assert_true(hb_landlock_fs_handled(-ENOSYS) == 0);
    assert_true(hb_landlock_fs_handled(1) == 0x1fffULL); /* 13 rights of ABI 1 */
    assert_true(hb_landlock_fs_handled(2) == 0x3fffULL); /* + refer */
    assert_true(hb_landlock_fs_handled(3) == 0x7fffULL); /* + truncate */
    assert_true(hb_landlock_fs_handled(4) == 0x7fffULL); /* ABI 4 adds network only */
    assert_true(hb_landlock_fs_handled(5) == 0xffffULL); /* + ioctl_dev */
    assert_true(hb_landlock_fs_handled(7) == 0xffffULL);
    /* An ABI newer than the code: every right it knows, nothing unknown. */
    assert_true(hb_landlock_fs_handled(99) == 0xffffULL);
    assert_true(hb_landlock_scoped(5) == 0);
    assert_true(hb_landlock_scoped(0) == 0);
    assert_true(hb_landlock_scoped(6) == 0x3ULL); /* abstract unix socket | signal */
    assert_true(hb_landlock_scoped(99) == 0x3ULL);

    /* read + execute: read_file|read_dir|execute; on a file read_dir drops */
    assert_true(hb_landlock_rule_access(HB_LANDLOCK_READ_EXEC, 7, true) == 0xdULL);
    assert_true(hb_landlock_rule_access(HB_LANDLOCK_READ_EXEC, 7, false) == 0x5ULL);
    assert_true(hb_landlock_rule_access(HB_LANDLOCK_READ, 7, false) == 0x4ULL);
    /* /dev/null: truncate and ioctl_dev only where the ABI has them */
    assert_true(hb_landlock_rule_access(HB_LANDLOCK_DEV_RW, 1, false) == 0x6ULL);
    assert_true(hb_landlock_rule_access(HB_LANDLOCK_DEV_RW, 3, false) == 0x4006ULL);
    assert_true(hb_landlock_rule_access(HB_LANDLOCK_DEV_RW, 7, false) == 0xc006ULL);
    assert_true(hb_landlock_rule_access(HB_LANDLOCK_DEV_R, 7, false) == 0x8004ULL);
    /* the work dir: everything handled but execute, mknod of devices,
     * ioctl on devices */
    uint64_t priv = hb_landlock_rule_access(HB_LANDLOCK_PRIVATE, 7, true);
    assert_true((priv & 0x1ULL) == 0);       /* execute */
    assert_true((priv & (1ULL << 6)) == 0);  /* make_char */
    assert_true((priv & (1ULL << 11)) == 0); /* make_block */
    assert_true((priv & (1ULL << 15)) == 0); /* ioctl_dev */
    assert_true((priv & 0x2ULL) && (priv & (1ULL << 8)) && (priv & (1ULL << 14)));
    assert_true((priv & ~hb_landlock_fs_handled(7)) == 0);
    assert_true(hb_landlock_rule_access(HB_LANDLOCK_PRIVATE, 1, true) == (0x1fffULL & ~0x841ULL));
    /* nothing at all without Landlock */
    assert_true(hb_landlock_rule_access(HB_LANDLOCK_READ_EXEC, 0, true) == 0);

    char text[512];
    hb_landlock_describe(7, text, sizeof text);
    assert_non_null(strstr(text, "ioctl_dev"));
    assert_non_null(strstr(text, "scoped (signal,abstract_unix_socket)"));
    hb_landlock_describe(3, text, sizeof text);
    assert_non_null(strstr(text, "truncate"));
    assert_null(strstr(text, "ioctl_dev"));
    assert_non_null(strstr(text, "no scoping"));
    hb_landlock_describe(0, text, sizeof text);
    assert_string_equal(text, "nothing");
    hb_landlock_describe(7, text, 8); /* truncated, still terminated */
    assert_int_equal(strlen(text), 7);
}

static void test_modes(void **state)
{
    (void)state;
    hb_landlock_mode_t m = HB_LANDLOCK_OFF;
    assert_int_equal(hb_landlock_mode_parse("on", &m), 0);
    assert_int_equal(m, HB_LANDLOCK_ON);
    assert_int_equal(hb_landlock_mode_parse("required", &m), 0);
    assert_int_equal(m, HB_LANDLOCK_REQUIRED);
    assert_int_equal(hb_landlock_mode_parse("off", &m), 0);
    assert_int_equal(m, HB_LANDLOCK_OFF);
    assert_int_equal(hb_landlock_mode_parse("yes", &m), -EINVAL);
    assert_int_equal(hb_landlock_mode_parse("", &m), -EINVAL);
    assert_int_equal(hb_landlock_mode_parse(NULL, &m), -EINVAL);
    assert_string_equal(hb_landlock_mode_name(HB_LANDLOCK_REQUIRED), "required");
}

/* A kernel without Landlock (played by passing its ABI answer), and the
 * mode "off": nothing is applied, "required" refuses. All in this process:
 * none of these restricts anything. */
static void test_unavailable_and_off(void **state)
{
    (void)state;
    bool applied = true;
    char why[256];
    int rc = hb_landlock_apply_host(HB_LANDLOCK_ON, -EOPNOTSUPP, "/usr/bin/true", "/tmp", NULL, 0,
                                    0, &applied, why, sizeof why);
    assert_int_equal(rc, 0);
    assert_false(applied);
    assert_non_null(strstr(why, "landlock unavailable"));
    assert_non_null(strstr(why, "hosts can read every file their user can"));

    applied = true;
    rc = hb_landlock_apply_host(HB_LANDLOCK_REQUIRED, -ENOSYS, "/usr/bin/true", "/tmp", NULL, 0,
                                0, &applied, why, sizeof why);
    assert_int_equal(rc, -ENOSYS);
    assert_false(applied);
    assert_non_null(strstr(why, "landlock required but unavailable"));

    rc = hb_landlock_apply_host(HB_LANDLOCK_REQUIRED, 0, "/usr/bin/true", "/tmp", NULL, 0, 0, &applied,
                                why, sizeof why);
    assert_int_equal(rc, -EOPNOTSUPP);

    applied = true;
    rc = hb_landlock_apply_host(HB_LANDLOCK_OFF, hb_landlock_abi(), "/usr/bin/true", "/tmp", NULL,
                                0, 0, &applied, why, sizeof why);
    assert_int_equal(rc, 0);
    assert_false(applied);

    size_t n = 99;
    hb_landlock_rule_t r = {"/usr", HB_LANDLOCK_READ_EXEC};
    assert_int_equal(hb_landlock_restrict(0, &r, 1, 0, &n, why, sizeof why), -EOPNOTSUPP);
    assert_int_equal(n, 0);

    /* too many read paths for one wrapper */
    const char *many[HB_LANDLOCK_MAX_PATHS + 1];
    for (size_t i = 0; i < HB_LANDLOCK_MAX_PATHS + 1; i++)
        many[i] = "/usr";
    rc = hb_landlock_apply_host(HB_LANDLOCK_ON, 7, "/usr/bin/true", "/tmp", many,
                                HB_LANDLOCK_MAX_PATHS + 1, 0, &applied, why, sizeof why);
    assert_int_equal(rc, -E2BIG);
    assert_false(applied);

    /* whatever this kernel says, it is a version or one of the two errors */
    int abi = hb_landlock_abi();
    assert_true(abi >= 1 || abi == -ENOSYS || abi == -EOPNOTSUPP);
}

/* ---- the filesystem, in restricted children ---------------------------------- */

static void test_files(void **state)
{
    dirs_t *d = *state;
    if (!have_landlock(1))
        skip();
    /* Without the sandbox (this process, root) everything below is open. */
    assert_int_equal(open_errno(d->denied_f, O_RDONLY), 0);
    assert_int_equal(open_errno("/etc", O_RDONLY | O_DIRECTORY), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_restrict(d, HB_LANDLOCK_ON);
        char buf[32] = {0};
        int fd = open(d->allowed_f, O_RDONLY | O_CLOEXEC);
        CHILD_CHECK(1, fd >= 0, "read the allowed file");
        CHILD_CHECK(2, read(fd, buf, sizeof buf - 1) == 9 && strcmp(buf, "readable\n") == 0,
                    "its content");
        close(fd);
        CHILD_CHECK(3, open_errno(d->denied_f, O_RDONLY) == EACCES, "the other dir's file");
        CHILD_CHECK(4, open_errno(d->denied, O_RDONLY | O_DIRECTORY) == EACCES,
                    "list the other dir");
        CHILD_CHECK(5, open_errno(d->allowed_f, O_WRONLY) == EACCES, "write the allowed file");
        char newf[320];
        snprintf(newf, sizeof newf, "%s/new", d->allowed);
        CHILD_CHECK(6, open_errno(newf, O_WRONLY | O_CREAT) == EACCES, "create in the allowed dir");
        CHILD_CHECK(7, unlink(d->allowed_f) != 0 && errno == EACCES, "unlink in the allowed dir");
        CHILD_CHECK(8, mkdir(newf, 0700) != 0 && errno == EACCES, "mkdir in the allowed dir");
        /* /etc: the listed files only, not the directory */
        CHILD_CHECK(9, open_errno("/etc/passwd", O_RDONLY) == 0, "read /etc/passwd");
        CHILD_CHECK(10, open_errno("/etc", O_RDONLY | O_DIRECTORY) == EACCES, "list /etc");
        CHILD_CHECK(11, open_errno("/etc/passwd", O_WRONLY) == EACCES, "write /etc/passwd");
        /* system libraries, /proc, devices */
        CHILD_CHECK(12, open_errno("/usr/bin", O_RDONLY | O_DIRECTORY) == 0, "list /usr/bin");
        CHILD_CHECK(13, open_errno("/proc/self/status", O_RDONLY) == 0, "read /proc/self");
        CHILD_CHECK(14, open_errno("/dev/null", O_WRONLY | O_TRUNC) == 0, "write /dev/null");
        CHILD_CHECK(15, open_errno("/dev/urandom", O_RDONLY) == 0, "read /dev/urandom");
        CHILD_CHECK(16, open_errno("/dev/urandom", O_WRONLY) == EACCES, "write /dev/urandom");
        CHILD_CHECK(17, open_errno("/tmp", O_RDONLY | O_DIRECTORY) == EACCES, "list /tmp");
        /* the private work dir: read, write, create, remove */
        char wf[320];
        snprintf(wf, sizeof wf, "%s/scratch", d->work);
        CHILD_CHECK(18, open_errno(wf, O_WRONLY | O_CREAT | O_TRUNC) == 0, "create in work");
        CHILD_CHECK(19, unlink(wf) == 0, "unlink in work");
        /* a symlink in the work dir does not lead out */
        snprintf(wf, sizeof wf, "%s/link", d->work);
        CHILD_CHECK(20, symlink(d->denied_f, wf) == 0, "symlink in work");
        CHILD_CHECK(21, open_errno(wf, O_RDONLY) == EACCES, "read through the symlink");
        /* nor a hard link of the secret */
        snprintf(wf, sizeof wf, "%s/hard", d->work);
        CHILD_CHECK(22, link(d->denied_f, wf) != 0, "hard link of the secret");
        _exit(0);
    }
    assert_exit0(wait_child(pid));
}

/* Execution: /usr yes, the work dir (writable) no. */
static void test_exec(void **state)
{
    dirs_t *d = *state;
    if (!have_landlock(1))
        skip();
    char copy[320];
    snprintf(copy, sizeof copy, "%s/true", d->work);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "cp /bin/true '%s'", copy);
    assert_int_equal(system(cmd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_restrict(d, HB_LANDLOCK_REQUIRED);
        pid_t g = fork();
        CHILD_CHECK(1, g >= 0, "fork");
        if (g == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(99);
        }
        int st = 0;
        CHILD_CHECK(2, waitpid(g, &st, 0) == g && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                    "exec /bin/true (status 0x%x)", st);
        execl(copy, "true", (char *)NULL);
        CHILD_CHECK(3, errno == EACCES, "exec a binary from the work dir");
        _exit(0);
    }
    assert_exit0(wait_child(pid));
}

/* ---- scoping (ABI 6) ----------------------------------------------------------- */

static void test_signal_scope(void **state)
{
    dirs_t *d = *state;
    if (!have_landlock(6))
        skip();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pid_t parent = getppid();
        CHILD_CHECK(1, kill(parent, 0) == 0, "signal the parent before the sandbox");
        child_restrict(d, HB_LANDLOCK_ON);
        errno = 0;
        CHILD_CHECK(2, kill(parent, 0) == -1 && errno == EPERM, "kill(parent, 0) refused");
        CHILD_CHECK(3, kill(parent, SIGUSR1) == -1 && errno == EPERM,
                    "kill(parent, SIGUSR1) refused");
        CHILD_CHECK(4, kill(1, 0) == -1 && errno == EPERM, "kill(1, 0) refused");
        CHILD_CHECK(5, kill(getpid(), 0) == 0, "signal itself");
        /* its own children are in its domain */
        pid_t g = fork();
        CHILD_CHECK(6, g >= 0, "fork");
        if (g == 0) {
            pause();
            _exit(0);
        }
        CHILD_CHECK(7, kill(g, SIGKILL) == 0, "kill its own child");
        int st = 0;
        CHILD_CHECK(8, waitpid(g, &st, 0) == g && WIFSIGNALED(st), "the child died");
        _exit(0);
    }
    assert_exit0(wait_child(pid));
}

/* A loopback TCP listener on a free port; *port gets it. */
static int listener(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int connect_errno(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    errno = 0;
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

/* hosts.landlock.bus_only: TCP connect to the bus port only. */
static void test_tcp_connect_bus_port_only(void **state)
{
    dirs_t *d = *state;
    if (!have_landlock(4))
        skip();
    unsigned bus = 0, other = 0;
    int lb = listener(&bus), lo = listener(&other);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        CHILD_CHECK(1, connect_errno(other) == 0, "connect anywhere before the sandbox");
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            _exit(100);
        bool applied = false;
        char why[256];
        const char *read[] = {d->allowed};
        CHILD_CHECK(2,
                    hb_landlock_apply_host(HB_LANDLOCK_ON, hb_landlock_abi(), "/usr/bin/true",
                                           d->work, read, 1, bus, &applied, why,
                                           sizeof why) == 0 &&
                        applied,
                    "apply: %s", why);
        CHILD_CHECK(3, connect_errno(bus) == 0, "connect to the bus port");
        CHILD_CHECK(4, connect_errno(other) == EACCES, "connect elsewhere refused");
        CHILD_CHECK(5, connect_errno(80) == EACCES, "connect to port 80 refused");
        _exit(0);
    }
    assert_exit0(wait_child(pid));
    /* without a port, TCP is left alone */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_restrict(d, HB_LANDLOCK_ON);
        CHILD_CHECK(1, connect_errno(other) == 0, "connect anywhere without bus_only");
        _exit(0);
    }
    assert_exit0(wait_child(pid));
    close(lb);
    close(lo);
}

static void test_abstract_socket_scope(void **state)
{
    dirs_t *d = *state;
    if (!have_landlock(6))
        skip();
    /* An abstract socket of this (unsandboxed) process. */
    int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(srv >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int len = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "hb-landlock-test-%d", (int)getpid());
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
    assert_int_equal(bind(srv, (struct sockaddr *)&a, alen), 0);
    assert_int_equal(listen(srv, 4), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHILD_CHECK(1, c >= 0 && connect(c, (struct sockaddr *)&a, alen) == 0,
                    "connect before the sandbox");
        close(c);
        child_restrict(d, HB_LANDLOCK_ON);
        c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHILD_CHECK(2, c >= 0, "socket");
        errno = 0;
        CHILD_CHECK(3, connect(c, (struct sockaddr *)&a, alen) == -1 && errno == EPERM,
                    "connect to an outside abstract socket refused");
        _exit(0);
    }
    int st = wait_child(pid);
    close(srv);
    assert_exit0(st);
}

/* ---- the exec wrapper ---------------------------------------------------------- */

/* hostbootd --exec-host with the Landlock options, as the spawner builds
 * them: cat of the allowed file exits 0, of the other file 1. */
static int run_wrapper(const dirs_t *d, const char *mode, const char *file)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null < 0 || dup2(null, 1) < 0 || chdir(d->work) != 0)
            _exit(120);
        char *argv[] = {"hostbootd",
                        "--exec-host",
                        "--landlock",
                        (char *)mode,
                        "--landlock-read",
                        (char *)d->allowed,
                        "--seccomp",
                        "none",
                        "0",
                        "0",
                        "0",
                        "0",
                        "--",
                        "/bin/cat",
                        (char *)file,
                        NULL};
        _exit(hb_exec_host_main((int)(sizeof argv / sizeof argv[0]) - 1, argv));
    }
    int st = wait_child(pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void test_exec_wrapper(void **state)
{
    dirs_t *d = *state;
    /* Off: the wrapper leaves files alone (root reads everything). */
    assert_int_equal(run_wrapper(d, "off", d->denied_f), 0);
    if (!have_landlock(1))
        skip();
    assert_int_equal(run_wrapper(d, "on", d->allowed_f), 0);
    assert_int_equal(run_wrapper(d, "required", d->allowed_f), 0);
    assert_int_equal(run_wrapper(d, "on", d->denied_f), 1);       /* cat: Permission denied */
    assert_int_equal(run_wrapper(d, "bogus", d->allowed_f), 127); /* bad --landlock */
}

/* ---- configuration -------------------------------------------------------------- */

static int load(const char *json, hb_config_t *c, plat_cfg_error_t *err)
{
    memset(c, 0, sizeof *c);
    return plat_cfg_load_string("test.json", json, hb_config_table, c, err);
}

static void expect_refused(const char *json, const char *key)
{
    hb_config_t c;
    plat_cfg_error_t err;
    int rc = load(json, &c, &err);
    if (rc != -EINVAL)
        fail_msg("accepted: %s", json);
    if (strcmp(err.key, key) != 0)
        fail_msg("error key \"%s\" (reason %s), expected \"%s\"", err.key, err.reason, key);
}

static void test_config(void **state)
{
    (void)state;
    hb_config_t c;
    plat_cfg_error_t err;
    assert_int_equal(hb_config_load(NULL, &c, &err), 0);
    assert_true(c.hosts.landlock.enabled);
    assert_false(c.hosts.landlock.required);
    assert_string_equal(c.hosts.landlock.packages_dir, "state/packages");
    assert_int_equal(c.hosts.landlock.n_read_paths, 0);
    assert_true(c.hosts.landlock.bus_only);
    hb_config_free(&c);

    assert_int_equal(load("{\"hosts\": {\"landlock\": {\"enabled\": false, \"required\": true, "
                          "\"packages_dir\": \"/var/lib/op/packages\", "
                          "\"read_paths\": [\"/opt/x\", \"rel/y\"]}}}",
                          &c, &err),
                     0);
    assert_false(c.hosts.landlock.enabled);
    assert_true(c.hosts.landlock.required);
    assert_string_equal(c.hosts.landlock.packages_dir, "/var/lib/op/packages");
    assert_int_equal(c.hosts.landlock.n_read_paths, 2);
    assert_string_equal(c.hosts.landlock.read_paths[1], "rel/y");
    hb_config_free(&c);

    expect_refused("{\"hosts\": {\"landlock\": {\"enable\": true}}}", "hosts.landlock.enable");
    expect_refused("{\"hosts\": {\"landlock\": {\"enabled\": 1}}}", "hosts.landlock.enabled");
    expect_refused("{\"hosts\": {\"landlock\": {\"read_paths\": \"/opt\"}}}",
                   "hosts.landlock.read_paths");
    expect_refused("{\"hosts\": {\"landlock\": {\"read_paths\": [\"\"]}}}", "hosts.landlock");
    expect_refused("{\"hosts\": {\"landlock\": {\"packages_dir\": \"\"}}}",
                   "hosts.landlock.packages_dir");
    char many[2048] = "{\"hosts\": {\"landlock\": {\"read_paths\": [";
    for (int i = 0; i < 33; i++)
        strcat(many, i ? ", \"/p\"" : "\"/p\"");
    strcat(many, "]}}}");
    expect_refused(many, "hosts.landlock");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abi_masks),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_unavailable_and_off),
        cmocka_unit_test_setup_teardown(test_files, setup_dirs, teardown_dirs),
        cmocka_unit_test_setup_teardown(test_exec, setup_dirs, teardown_dirs),
        cmocka_unit_test_setup_teardown(test_signal_scope, setup_dirs, teardown_dirs),
        cmocka_unit_test_setup_teardown(test_abstract_socket_scope, setup_dirs, teardown_dirs),
        cmocka_unit_test_setup_teardown(test_tcp_connect_bus_port_only, setup_dirs,
                                        teardown_dirs),
        cmocka_unit_test_setup_teardown(test_exec_wrapper, setup_dirs, teardown_dirs),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
