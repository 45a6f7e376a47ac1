/* The hosts' seccomp filter (libseccomp): a deny-list of dangerous system
 * calls, installed by the exec wrapper (`hostbootd --exec-host`) with
 * PR_SET_NO_NEW_PRIVS before it sets the rlimits and execs the runtime
 * (building the filter allocates, which a small RLIMIT_AS may forbid), so
 * it binds the host and everything the host ever execs or forks.
 * docs/security-sandbox.md is the reference.
 *
 * The filter allows every system call except the denied ones. A denied call
 * kills the whole process at once (SCMP_ACT_KILL_PROCESS, as if by an
 * uncatchable SIGSYS: hostbootd reports the host's exit with signal 31) —
 * not an error return, so a plugin cannot probe the list and carry on, and
 * the operator sees the attempt in the exit report. On kernels older than
 * 4.14 (no KILL_PROCESS) the action falls back to killing the thread.
 * System calls made through another ABI (i386 `int 0x80`, x32 on x86_64)
 * kill the process too, so the list cannot be bypassed that way.
 *
 * When "unshare" is denied, the same namespaces cannot be made through
 * clone(2) either: clone with any CLONE_NEW* flag kills the process, and
 * clone3 (whose flags a filter cannot read) fails with ENOSYS, which makes
 * the C library fall back to clone.
 *
 * No logging (the wrapper runs in the child with stderr going to the host
 * log): failures are returned with a reason in `why`. */
#ifndef HOSTBOOTD_SECCOMP_H
#define HOSTBOOTD_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>

#define HB_SECCOMP_MAX_NAMES 256 /* names in one deny list */
#define HB_SECCOMP_NAME_MAX 63   /* characters of one name */

/* The default deny list (used when the config gives none), NULL-terminated. */
extern const char *const hb_seccomp_default_deny[];
/* How many names hb_seccomp_default_deny holds. */
size_t hb_seccomp_default_count(void);

/* True when `name` is a system call libseccomp knows (on any architecture:
 * a name missing on this one is accepted and skipped by the filter). */
bool hb_seccomp_name_known(const char *name);

/* Check a deny list: 0, or -EINVAL with why = "unknown system call \"x\""
 * (or a too-long list / name). `deny` NULL or n == 0 is the default list. */
int hb_seccomp_check(const char *const *deny, size_t n, char *why, size_t why_size);

/* Install the filter on the calling process (its threads created later
 * inherit it). `deny` NULL or n == 0 = hb_seccomp_default_deny. Sets
 * PR_SET_NO_NEW_PRIVS first (required to install a filter unprivileged;
 * irreversible too). Returns 0, -EINVAL
 * (unknown name, why names it), -ENOMEM, or libseccomp's -errno from
 * loading (why says "seccomp_load: ..."). Irreversible. */
int hb_seccomp_apply(const char *const *deny, size_t n, char *why, size_t why_size);

/* The wrapper's argument form: "none" (no filter), "default" (the default
 * list) or names separated by commas. Writes it for `deny`/`n` (n == 0 =
 * "default") into out; 0 or -ENAMETOOLONG if `size` is too small. */
int hb_seccomp_join(const char *const *deny, size_t n, char *out, size_t size);

/* Parse that form and apply it ("none" applies nothing and returns 0). */
int hb_seccomp_apply_arg(const char *arg, char *why, size_t why_size);

#endif
