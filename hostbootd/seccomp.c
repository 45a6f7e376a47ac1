/* The hosts' seccomp deny-list filter (see seccomp.h). */
#include "seccomp.h"
#include "plat/why.h"

#include <errno.h>
#include <sched.h>
#include PLAT_LIBSECCOMP_H /* libseccomp (see CMakeLists.txt) */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* LeakSanitizer stops the world with ptrace when a process exits: in a
 * sanitizer build (tests only) the default list leaves ptrace out, or every
 * host would be killed at exit. */
#if defined(__SANITIZE_ADDRESS__)
#define HB_SECCOMP_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define HB_SECCOMP_SANITIZER 1
#endif
#endif

const char *const hb_seccomp_default_deny[] = {
#ifndef HB_SECCOMP_SANITIZER
    "ptrace",
#endif
    "mount",        "umount2",      "kexec_load",      "kexec_file_load", "bpf",
    "init_module",  "finit_module", "delete_module",   "reboot",          "swapon",
    "swapoff",      "pivot_root",   "chroot",          "setns",           "unshare",
    "open_by_handle_at", "perf_event_open", "userfaultfd", "keyctl",      "add_key",
    "request_key",  "acct",         "quotactl",        "iopl",            "ioperm",
    /* reading or writing another process's memory (a host holds its bus
     * key in memory; hosts may share a user) */
    "process_vm_readv", "process_vm_writev",
    NULL,
};

size_t hb_seccomp_default_count(void)
{
    size_t n = 0;
    while (hb_seccomp_default_deny[n])
        n++;
    return n;
}

bool hb_seccomp_name_known(const char *name)
{
    if (!name || !*name || strlen(name) > HB_SECCOMP_NAME_MAX)
        return false;
    /* Only [a-z0-9_]: libseccomp also resolves odd spellings such as
     * decimal numbers, which a config should not rely on. */
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    if (name[0] >= '0' && name[0] <= '9')
        return false;
    /* A name that exists on another architecture only resolves to a
     * negative pseudo number; only a name unknown everywhere is an error. */
    return seccomp_syscall_resolve_name(name) != __NR_SCMP_ERROR;
}

static void default_list(const char *const **deny, size_t *n)
{
    if (!*deny || *n == 0) {
        *deny = hb_seccomp_default_deny;
        *n = hb_seccomp_default_count();
    }
}

int hb_seccomp_check(const char *const *deny, size_t n, char *why, size_t why_size)
{
    default_list(&deny, &n);
    if (n > HB_SECCOMP_MAX_NAMES)
        return plat_why(why, why_size, -EINVAL, "more than %d system calls", HB_SECCOMP_MAX_NAMES);
    for (size_t i = 0; i < n; i++)
        if (!hb_seccomp_name_known(deny[i]))
            return plat_why(why, why_size, -EINVAL, "unknown system call \"%.64s\"",
                            deny[i] ? deny[i] : "");
    return 0;
}

/* clone(2) flags that make a namespace (CLONE_NEWTIME is clone3-only). */
static const unsigned long clone_ns_flags[] = {
    CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
    CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
};

static int add_rules(scmp_filter_ctx ctx, uint32_t kill, const char *const *deny, size_t n,
                     char *why, size_t why_size)
{
    bool unshare = false;
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(deny[i]);
        if (nr == __NR_SCMP_ERROR)
            return plat_why(why, why_size, -EINVAL, "unknown system call \"%.64s\"", deny[i]);
        if (nr < 0)
            continue; /* not a system call on this architecture */
        int rc = seccomp_rule_add(ctx, kill, nr, 0);
        if (rc < 0 && rc != -EEXIST) /* a name listed twice */
            return plat_why(why, why_size, rc, "seccomp_rule_add %s: %s", deny[i], strerror(-rc));
        if (strcmp(deny[i], "unshare") == 0)
            unshare = true;
    }
    if (!unshare)
        return 0;
    for (size_t i = 0; i < sizeof clone_ns_flags / sizeof clone_ns_flags[0]; i++) {
        int rc = seccomp_rule_add(ctx, kill, SCMP_SYS(clone), 1,
                                  SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns_flags[i],
                                          clone_ns_flags[i]));
        if (rc < 0)
            return plat_why(why, why_size, rc, "seccomp_rule_add clone: %s", strerror(-rc));
    }
    int nr3 = seccomp_syscall_resolve_name("clone3");
    if (nr3 >= 0) {
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr3, 0);
        if (rc < 0)
            return plat_why(why, why_size, rc, "seccomp_rule_add clone3: %s", strerror(-rc));
    }
    return 0;
}

int hb_seccomp_apply(const char *const *deny, size_t n, char *why, size_t why_size)
{
    if (why && why_size)
        why[0] = '\0';
    default_list(&deny, &n);
    int rc = hb_seccomp_check(deny, n, why, why_size);
    if (rc < 0)
        return rc;
    /* API level 3 (kernel >= 4.14) has SECCOMP_RET_KILL_PROCESS. */
    uint32_t kill = seccomp_api_get() >= 3 ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_KILL;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return plat_why(why, why_size, -ENOMEM, "seccomp_init failed");
    /* Another ABI (i386 int 0x80, x32) would reach the denied calls by other
     * numbers: kill on any architecture but the native one. */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, kill);
    if (rc < 0)
        plat_why(why, why_size, rc, "seccomp_attr_set ACT_BADARCH: %s", strerror(-rc));
    /* Loading sets PR_SET_NO_NEW_PRIVS first (libseccomp's default, made
     * explicit): an unprivileged process cannot install a filter without. */
    else if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1)) < 0)
        plat_why(why, why_size, rc, "seccomp_attr_set CTL_NNP: %s", strerror(-rc));
    else
        rc = add_rules(ctx, kill, deny, n, why, why_size);
    if (rc == 0) {
        rc = seccomp_load(ctx);
        if (rc < 0)
            plat_why(why, why_size, rc, "seccomp_load: %s", strerror(-rc));
    }
    seccomp_release(ctx);
    return rc;
}

int hb_seccomp_join(const char *const *deny, size_t n, char *out, size_t size)
{
    if (!size)
        return -ENAMETOOLONG;
    if (!deny || n == 0)
        return snprintf(out, size, "default") < (int)size ? 0 : -ENAMETOOLONG;
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + used, size - used, "%s%s", i ? "," : "", deny[i]);
        if (w < 0 || (size_t)w >= size - used) {
            out[0] = '\0';
            return -ENAMETOOLONG;
        }
        used += (size_t)w;
    }
    return 0;
}

int hb_seccomp_apply_arg(const char *arg, char *why, size_t why_size)
{
    if (why && why_size)
        why[0] = '\0';
    if (!arg || !*arg)
        return plat_why(why, why_size, -EINVAL, "empty seccomp argument");
    if (strcmp(arg, "none") == 0)
        return 0;
    if (strcmp(arg, "default") == 0)
        return hb_seccomp_apply(NULL, 0, why, why_size);
    char *copy = strdup(arg);
    const char **names = calloc(HB_SECCOMP_MAX_NAMES, sizeof *names);
    int rc = 0;
    size_t n = 0;
    if (!copy || !names) {
        rc = plat_why(why, why_size, -ENOMEM, "out of memory");
    } else {
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (n == HB_SECCOMP_MAX_NAMES) {
                rc = plat_why(why, why_size, -EINVAL, "more than %d system calls",
                              HB_SECCOMP_MAX_NAMES);
                break;
            }
            names[n++] = t;
        }
        if (rc == 0 && n == 0)
            rc = plat_why(why, why_size, -EINVAL, "no system call named in \"%.64s\"", arg);
        if (rc == 0)
            rc = hb_seccomp_apply(names, n, why, why_size);
    }
    free(names);
    free(copy);
    return rc;
}
