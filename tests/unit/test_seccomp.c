/* hostbootd's seccomp filter: each test forks a child that installs the
 * filter and then tries something; the parent checks how the child ended
 * (a denied call = killed by SIGSYS; an allowed one = normal exit). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hbconfig.h"
#include "seccomp.h"

/* What the child does after the filter is in. Returns its exit code. */
typedef int (*child_fn)(void);

/* Fork, apply `arg` (hb_seccomp_apply_arg form) in the child, run fn.
 * Returns the wait status. Exit code 100 = the filter could not be applied. */
static int run_child(const char *arg, child_fn fn)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char why[256];
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            _exit(101);
        if (hb_seccomp_apply_arg(arg, why, sizeof why) != 0) {
            fprintf(stderr, "apply: %s\n", why);
            _exit(100);
        }
        _exit(fn());
    }
    int st = 0;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    assert_int_equal(r, pid);
    return st;
}

static void assert_sigsys(int st)
{
    if (!WIFSIGNALED(st))
        fail_msg("child not killed: exited %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void assert_exit(int st, int code)
{
    if (!WIFEXITED(st))
        fail_msg("child killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    assert_int_equal(WEXITSTATUS(st), code);
}

static int do_ptrace(void)
{
    ptrace(PTRACE_TRACEME, 0, NULL, NULL);
    return 0;
}

static int do_mount(void)
{
    mount("none", "/tmp", "tmpfs", 0, NULL);
    return 0;
}

static int do_bpf(void)
{
    syscall(SYS_bpf, 0, NULL, 0);
    return 0;
}

static int do_unshare(void)
{
    unshare(CLONE_NEWUSER);
    return 0;
}

/* clone(2) with a namespace flag: the way around a denied unshare. */
static int do_clone_newuser(void)
{
    long r = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);
    if (r == 0)
        _exit(0);
    return 0;
}

/* Ordinary work: files, time, pids, memory, fork and wait, and clone3
 * answered ENOSYS (the C library falls back to clone). */
static int do_allowed(void)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "x", 1) != 1 || close(fd) != 0)
        return 1;
    if (getpid() <= 0)
        return 2;
    void *p = malloc(1 << 20);
    if (!p)
        return 3;
    memset(p, 1, 1 << 20);
    free(p);
    pid_t c = fork();
    if (c < 0)
        return 4;
    if (c == 0)
        _exit(7);
    int st = 0;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
        return 5;
#ifdef SYS_clone3
    errno = 0;
    if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
        return 6;
#endif
    return 0;
}

/* ptrace is allowed when the list does not name it. */
static int do_ptrace_allowed(void)
{
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
        return 1;
    return 0;
}

static bool default_has(const char *name)
{
    for (size_t i = 0; hb_seccomp_default_deny[i]; i++)
        if (strcmp(hb_seccomp_default_deny[i], name) == 0)
            return true;
    return false;
}

static void test_default_kills_ptrace(void **state)
{
    (void)state;
    /* A sanitizer build leaves ptrace out of the default (LeakSanitizer
     * needs it at exit): there it is denied by name. */
    assert_sigsys(run_child(default_has("ptrace") ? "default" : "ptrace,mount", do_ptrace));
}

static void test_default_kills_mount(void **state)
{
    (void)state;
    assert_sigsys(run_child("default", do_mount));
}

static void test_default_kills_bpf_and_unshare(void **state)
{
    (void)state;
    assert_sigsys(run_child("default", do_bpf));
    assert_sigsys(run_child("default", do_unshare));
    assert_sigsys(run_child("default", do_clone_newuser));
}

static void test_default_allows_ordinary_work(void **state)
{
    (void)state;
    assert_exit(run_child("default", do_allowed), 0);
}

static void test_custom_list(void **state)
{
    (void)state;
    /* Only mount denied: ptrace works, mount kills. */
    assert_exit(run_child("mount", do_ptrace_allowed), 0);
    assert_sigsys(run_child("mount,umount2", do_mount));
    /* "none" installs nothing: ptrace and clone3 behave as without a filter. */
    assert_exit(run_child("none", do_ptrace_allowed), 0);
}

#if defined(__x86_64__)
/* The x32 ABI reaches the same calls by other numbers: killed as a bad
 * architecture instead of slipping past the list. */
static int do_x32(void)
{
    syscall(0x40000000L | SYS_getpid);
    return 0;
}

static void test_x32_abi_killed(void **state)
{
    (void)state;
    assert_sigsys(run_child("mount", do_x32));
}
#endif

static void test_unknown_name_refused(void **state)
{
    (void)state;
    char why[128];
    const char *bad[] = {"ptrace", "no_such_call"};
    assert_int_equal(hb_seccomp_check(bad, 2, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "no_such_call"));
    /* apply refuses before installing anything (in a child, to be safe). */
    assert_exit(run_child("mount,no_such_call", do_ptrace_allowed), 100);
    assert_int_equal(hb_seccomp_apply_arg("", why, sizeof why), -EINVAL);
    assert_int_equal(hb_seccomp_apply_arg(",,", why, sizeof why), -EINVAL);

    assert_true(hb_seccomp_name_known("ptrace"));
    assert_true(hb_seccomp_name_known("kexec_file_load"));
    assert_false(hb_seccomp_name_known(""));
    assert_false(hb_seccomp_name_known("101")); /* numbers resolve in libseccomp */
    assert_false(hb_seccomp_name_known("Ptrace"));
    assert_false(hb_seccomp_name_known("ptrace,mount"));
    assert_false(hb_seccomp_name_known(NULL));
    /* Every default name is known. */
    assert_int_equal(hb_seccomp_check(NULL, 0, why, sizeof why), 0);
    assert_int_equal(hb_seccomp_default_count(), default_has("ptrace") ? 28 : 27);
    assert_true(default_has("mount") && default_has("kexec_load") && default_has("bpf") &&
                default_has("init_module") && default_has("ioperm") &&
                    default_has("process_vm_readv") && default_has("process_vm_writev"));
#if !defined(__SANITIZE_ADDRESS__)
    assert_true(default_has("ptrace"));
#endif
}

static void test_join(void **state)
{
    (void)state;
    char out[64];
    const char *names[] = {"ptrace", "mount"};
    assert_int_equal(hb_seccomp_join(names, 2, out, sizeof out), 0);
    assert_string_equal(out, "ptrace,mount");
    assert_int_equal(hb_seccomp_join(NULL, 0, out, sizeof out), 0);
    assert_string_equal(out, "default");
    assert_int_equal(hb_seccomp_join(names, 2, out, 8), -ENAMETOOLONG);
    assert_string_equal(out, "");
}

/* ---- hostbootd's config keys hosts.seccomp.{enabled,deny} ---------------- */

static int load_cfg(const char *text, hb_config_t *c, plat_cfg_error_t *err)
{
    char path[] = "/tmp/plat-test-seccomp-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int r = hb_config_load(path, c, err);
    unlink(path);
    return r;
}

static void test_config_keys(void **state)
{
    (void)state;
    hb_config_t c;
    plat_cfg_error_t err;
    /* Defaults: on, the default list (no names given). */
    assert_int_equal(load_cfg("{}", &c, &err), 0);
    assert_true(c.hosts.seccomp.enabled);
    assert_int_equal(c.hosts.seccomp.n_deny, 0);
    hb_config_free(&c);

    assert_int_equal(load_cfg("{\"hosts\":{\"seccomp\":{\"enabled\":false,"
                              "\"deny\":[\"ptrace\",\"mount\"]}}}",
                              &c, &err),
                     0);
    assert_false(c.hosts.seccomp.enabled);
    assert_int_equal(c.hosts.seccomp.n_deny, 2);
    assert_string_equal(c.hosts.seccomp.deny[1], "mount");
    char joined[64];
    assert_int_equal(hb_seccomp_join((const char *const *)c.hosts.seccomp.deny,
                                     c.hosts.seccomp.n_deny, joined, sizeof joined),
                     0);
    assert_string_equal(joined, "ptrace,mount");
    hb_config_free(&c);

    /* An unknown name is refused, named, at hosts.seccomp. */
    assert_int_equal(load_cfg("{\"hosts\":{\"seccomp\":{\"deny\":[\"ptrace\",\"no_such_call\"]}}}",
                              &c, &err),
                     -EINVAL);
    assert_string_equal(err.key, "hosts.seccomp");
    assert_non_null(strstr(err.reason, "no_such_call"));
    /* Wrong types. */
    assert_int_equal(load_cfg("{\"hosts\":{\"seccomp\":{\"deny\":[1]}}}", &c, &err), -EINVAL);
    assert_string_equal(err.key, "hosts.seccomp.deny[0]");
    assert_int_equal(load_cfg("{\"hosts\":{\"seccomp\":{\"enabled\":\"yes\"}}}", &c, &err),
                     -EINVAL);
    assert_int_equal(load_cfg("{\"hosts\":{\"seccomp\":{\"denied\":[]}}}", &c, &err), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_kills_ptrace),
        cmocka_unit_test(test_default_kills_mount),
        cmocka_unit_test(test_default_kills_bpf_and_unshare),
        cmocka_unit_test(test_default_allows_ordinary_work),
        cmocka_unit_test(test_custom_list),
#if defined(__x86_64__)
        cmocka_unit_test(test_x32_abi_killed),
#endif
        cmocka_unit_test(test_unknown_name_refused),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
