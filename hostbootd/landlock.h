/* The hosts' Landlock sandbox: which files a plugin host may open, and
 * whom it may signal. Installed by the exec wrapper (`hostbootd
 * --exec-host`) after PR_SET_NO_NEW_PRIVS and before the seccomp filter,
 * so it binds the host and everything it ever forks or execs, whatever its
 * uid (root included). docs/security-sandbox.md is the reference.
 *
 * The ruleset handles every filesystem right the running kernel's Landlock
 * ABI knows (best effort: REFER from ABI 2, TRUNCATE from 3, IOCTL_DEV from
 * 5 are handled only when the kernel has them) and allows:
 *   - read + execute beneath the system directories (/usr, /lib*, /bin,
 *     /sbin), the runtime's own directory and the extra read paths
 *     (the package store, hosts.landlock.read_paths);
 *   - read of /proc, /sys/devices/system/cpu and a short list of public
 *     /etc files (hb_landlock_etc_files), never /etc as a whole;
 *   - /dev/null read + write, /dev/zero and /dev/urandom read;
 *   - everything but execute beneath the host's own work directory.
 * From ABI 6 the domain is also scoped: no signal to, and no connection to
 * an abstract unix socket of, a process outside it (platformd, hostbootd,
 * other hosts).
 *
 * No logging (the wrapper runs in the child with stderr going to the host
 * log): failures are returned with a reason in `why`. */
#ifndef HOSTBOOTD_LANDLOCK_H
#define HOSTBOOTD_LANDLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Extra read paths one wrapper accepts (the config allows fewer). */
#define HB_LANDLOCK_MAX_PATHS 64

/* What a rule allows beneath (directory) or on (file) its path. */
typedef enum {
    HB_LANDLOCK_READ_EXEC, /* READ_FILE, READ_DIR, EXECUTE */
    HB_LANDLOCK_READ,      /* READ_FILE, READ_DIR */
    HB_LANDLOCK_DEV_RW,    /* READ_FILE, WRITE_FILE, TRUNCATE, IOCTL_DEV (a device node) */
    HB_LANDLOCK_DEV_R,     /* READ_FILE, IOCTL_DEV (a device node) */
    HB_LANDLOCK_PRIVATE,   /* every right but EXECUTE and MAKE_CHAR/BLOCK (own work dir) */
} hb_landlock_access_t;

typedef struct {
    const char *path; /* absolute; a missing path is skipped */
    hb_landlock_access_t access;
} hb_landlock_rule_t;

/* The wrapper's modes. */
typedef enum {
    HB_LANDLOCK_OFF,      /* nothing applied */
    HB_LANDLOCK_ON,       /* applied when the kernel has Landlock, else skipped */
    HB_LANDLOCK_REQUIRED, /* applied, or the host does not start */
} hb_landlock_mode_t;

/* The /etc files a host may read (NULL-terminated): what the C library,
 * libzmq and Python open (found with strace on both runtimes). */
extern const char *const hb_landlock_etc_files[];

/* The highest Landlock ABI the running kernel offers (>= 1), or -ENOSYS
 * (kernel built without it) / -EOPNOTSUPP (disabled at boot). */
int hb_landlock_abi(void);

/* The filesystem rights handled at `abi`: 0 below 1; an ABI newer than
 * this code knows gets every right it knows. */
uint64_t hb_landlock_fs_handled(int abi);

/* The scopes set at `abi`: signal + abstract unix socket from 6, else 0. */
uint64_t hb_landlock_scoped(int abi);

/* The rights a rule of `access` gets at `abi` on a directory (`dir`) or on
 * another file (only file rights are valid there). */
uint64_t hb_landlock_rule_access(hb_landlock_access_t access, int abi, bool dir);

/* Build a ruleset for `abi` from `rules` (missing paths skipped) and
 * restrict the calling process with it. Needs PR_SET_NO_NEW_PRIVS (or
 * CAP_SYS_ADMIN). `abi` is normally hb_landlock_abi(); below 1 nothing is
 * done and -EOPNOTSUPP returned. With `connect_port` (1..65535) and ABI >= 4
 * TCP connect() is allowed to that port only (EACCES elsewhere); 0 leaves
 * TCP alone. *n_applied (may be NULL) gets the number of path rules added.
 * 0, or -errno with why set. Irreversible. */
int hb_landlock_restrict(int abi, const hb_landlock_rule_t *rules, size_t n,
                         unsigned connect_port, size_t *n_applied, char *why, size_t why_size);

/* The wrapper's whole job: the host's rules (system paths, /etc files,
 * /proc, devices, the directory of `program`, each of `read_paths` with
 * read + execute, `workdir` private; TCP connect to `connect_port` only
 * when not 0) for the kernel's ABI, as `mode` asks.
 * `abi` is hb_landlock_abi() (a parameter so that tests can play a kernel
 * without Landlock). Returns 0 with *applied true (restricted) or false
 * (mode OFF, or ON on a kernel without Landlock: why says so); -EOPNOTSUPP
 * / -ENOSYS when REQUIRED and unavailable; another -errno when the kernel
 * refused the ruleset. why is always set ("" when applied). */
int hb_landlock_apply_host(hb_landlock_mode_t mode, int abi, const char *program,
                           const char *workdir, const char *const *read_paths, size_t n_read,
                           unsigned connect_port, bool *applied, char *why, size_t why_size);

/* "off", "on", "required" <-> mode; parse returns 0 or -EINVAL. */
const char *hb_landlock_mode_name(hb_landlock_mode_t mode);
int hb_landlock_mode_parse(const char *s, hb_landlock_mode_t *mode);

/* One line for hostbootd's start log: what `abi` enforces, e.g.
 * "filesystem (execute, write_file, ... ioctl_dev), scoped (signal,
 * abstract_unix_socket)". */
void hb_landlock_describe(int abi, char *out, size_t size);

#endif
