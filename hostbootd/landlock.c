/* The hosts' Landlock sandbox (see landlock.h). */
#include "landlock.h"
#include "plat/why.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Debian's <linux/landlock.h> may predate the kernel: the later rights and
 * the larger ruleset attribute are spelled out here (values are ABI). */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

/* struct landlock_ruleset_attr as of ABI 6; an older kernel accepts it as
 * long as the members it does not know are zero. */
struct hb_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net; /* CONNECT_TCP when a bus port is given (ABI >= 4) */
    uint64_t scoped;
};

#ifndef LANDLOCK_ACCESS_NET_CONNECT_TCP
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#define LANDLOCK_RULE_NET_PORT 2
struct landlock_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
};
#endif

#define FS_ABI1                                                                                    \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |   \
     LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |                                 \
     LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | \
     LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |   \
     LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM)

/* Rights that apply to a file that is not a directory. */
#define FS_FILE                                                                                    \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |   \
     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

const char *const hb_landlock_etc_files[] = {
    "/etc/ld.so.cache",
    "/etc/ld.so.preload",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/protocols",
    "/etc/services",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/resolv.conf",
    "/etc/passwd",
    "/etc/group",
    NULL,
};

/* Read + execute beneath: the system's programs and libraries. On a
 * merged-/usr system /lib, /lib64, /bin and /sbin are symlinks into /usr
 * (opening them follows the link: the same rule again). */
static const char *const system_dirs[] = {"/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"};

int hb_landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (v < 0)
        return errno == ENOSYS ? -ENOSYS : -EOPNOTSUPP;
    return v > 0 ? (int)v : -EOPNOTSUPP;
}

uint64_t hb_landlock_fs_handled(int abi)
{
    if (abi < 1)
        return 0;
    uint64_t fs = FS_ABI1;
    if (abi >= 2)
        fs |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return fs;
}

uint64_t hb_landlock_scoped(int abi)
{
    return abi >= 6 ? LANDLOCK_SCOPE_SIGNAL | LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET : 0;
}

uint64_t hb_landlock_rule_access(hb_landlock_access_t access, int abi, bool dir)
{
    uint64_t a = 0;
    switch (access) {
    case HB_LANDLOCK_READ_EXEC:
        a = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_EXECUTE;
        break;
    case HB_LANDLOCK_READ:
        a = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
        break;
    case HB_LANDLOCK_DEV_RW:
        a = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
            LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV;
        break;
    case HB_LANDLOCK_DEV_R:
        a = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_IOCTL_DEV;
        break;
    case HB_LANDLOCK_PRIVATE:
        a = ~(uint64_t)(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                        LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_IOCTL_DEV);
        break;
    }
    a &= hb_landlock_fs_handled(abi);
    return dir ? a : a & FS_FILE;
}

/* Add one rule; a path that is not there (or not ours to open) is skipped:
 * *added stays false. */
static int add_rule(int ruleset, int abi, const hb_landlock_rule_t *r, bool *added, char *why,
                    size_t why_size)
{
    *added = false;
    int fd = open(r->path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == EACCES || errno == ELOOP)
            return 0;
        return plat_why(why, why_size, -errno, "open %.200s: %s", r->path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return plat_why(why, why_size, -e, "stat %.200s: %s", r->path, strerror(e));
    }
    struct landlock_path_beneath_attr pb = {
        .allowed_access = hb_landlock_rule_access(r->access, abi, S_ISDIR(st.st_mode)),
        .parent_fd = fd,
    };
    int rc = 0;
    if (pb.allowed_access &&
        syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0)
        rc = plat_why(why, why_size, -errno, "landlock_add_rule %.200s: %s", r->path,
                      strerror(errno));
    else
        *added = pb.allowed_access != 0;
    close(fd);
    return rc;
}

int hb_landlock_restrict(int abi, const hb_landlock_rule_t *rules, size_t n,
                         unsigned connect_port, size_t *n_applied, char *why, size_t why_size)
{
    if (why && why_size)
        why[0] = '\0';
    if (n_applied)
        *n_applied = 0;
    if (abi < 1)
        return plat_why(why, why_size, -EOPNOTSUPP, "the kernel has no Landlock");
    bool net = connect_port > 0 && connect_port < 65536 && abi >= 4;
    struct hb_ruleset_attr attr = {
        .handled_access_fs = hb_landlock_fs_handled(abi),
        .handled_access_net = net ? LANDLOCK_ACCESS_NET_CONNECT_TCP : 0,
        .scoped = hb_landlock_scoped(abi),
    };
    /* Sized for what the ABI knows: an ABI-1..3 kernel knows the first
     * member only, 4..5 the first two. */
    size_t size = abi >= 6 ? sizeof attr : abi >= 4 ? 2 * sizeof(uint64_t) : sizeof(uint64_t);
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (ruleset < 0)
        return plat_why(why, why_size, -errno, "landlock_create_ruleset (abi %d): %s", abi,
                        strerror(errno));
    int rc = 0;
    size_t added = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        bool one = false;
        rc = add_rule(ruleset, abi, &rules[i], &one, why, why_size);
        added += one;
    }
    /* TCP: connect to the one port given (the bus), nowhere else. */
    struct landlock_net_port_attr np = {.allowed_access = LANDLOCK_ACCESS_NET_CONNECT_TCP,
                                        .port = connect_port};
    if (rc == 0 && net &&
        syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_NET_PORT, &np, 0) != 0)
        rc = plat_why(why, why_size, -errno, "landlock_add_rule tcp port %u: %s", connect_port,
                      strerror(errno));
    if (rc == 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
        rc = plat_why(why, why_size, -errno, "landlock_restrict_self: %s", strerror(errno));
    close(ruleset);
    if (rc == 0 && n_applied)
        *n_applied = added;
    return rc;
}

static void parent_dir(const char *path, char *out, size_t size)
{
    snprintf(out, size, "%s", path ? path : "");
    char *slash = strrchr(out, '/');
    if (!slash)
        out[0] = '\0';
    else if (slash == out)
        out[1] = '\0'; /* "/prog" -> "/" */
    else
        *slash = '\0';
}

int hb_landlock_apply_host(hb_landlock_mode_t mode, int abi, const char *program,
                           const char *workdir, const char *const *read_paths, size_t n_read,
                           unsigned connect_port, bool *applied, char *why, size_t why_size)
{
    *applied = false;
    if (why && why_size)
        why[0] = '\0';
    if (mode == HB_LANDLOCK_OFF)
        return plat_why(why, why_size, 0, "landlock off");
    if (abi < 1) {
        int rc = abi < 0 ? abi : -EOPNOTSUPP;
        if (mode == HB_LANDLOCK_REQUIRED)
            return plat_why(why, why_size, rc,
                            "landlock required but unavailable (%s): the host is not started",
                            strerror(-rc));
        return plat_why(why, why_size, 0,
                        "landlock unavailable (%s): hosts can read every file their user can",
                        strerror(-rc));
    }
    if (n_read > HB_LANDLOCK_MAX_PATHS)
        return plat_why(why, why_size, -E2BIG, "more than %d landlock read paths",
                        HB_LANDLOCK_MAX_PATHS);
    hb_landlock_rule_t rules[HB_LANDLOCK_MAX_PATHS + 32];
    size_t n = 0;
    for (size_t i = 0; i < sizeof system_dirs / sizeof system_dirs[0]; i++)
        rules[n++] = (hb_landlock_rule_t){system_dirs[i], HB_LANDLOCK_READ_EXEC};
    for (size_t i = 0; hb_landlock_etc_files[i]; i++)
        rules[n++] = (hb_landlock_rule_t){hb_landlock_etc_files[i], HB_LANDLOCK_READ};
    /* /proc: the runtimes read /proc/self (and LeakSanitizer its maps at
     * exit); another process's secrets there are behind ptrace checks,
     * which Landlock tightens to the host's own domain. */
    rules[n++] = (hb_landlock_rule_t){"/proc", HB_LANDLOCK_READ};
    /* libuv and libzmq count CPUs there. */
    rules[n++] = (hb_landlock_rule_t){"/sys/devices/system/cpu", HB_LANDLOCK_READ};
    rules[n++] = (hb_landlock_rule_t){"/dev/null", HB_LANDLOCK_DEV_RW};
    rules[n++] = (hb_landlock_rule_t){"/dev/zero", HB_LANDLOCK_DEV_R};
    rules[n++] = (hb_landlock_rule_t){"/dev/urandom", HB_LANDLOCK_DEV_R};
    /* The runtime's directory: the program itself and, for the Python
     * host, the host package and SDK installed beside its script. */
    char progdir[PATH_MAX];
    parent_dir(program, progdir, sizeof progdir);
    if (progdir[0])
        rules[n++] = (hb_landlock_rule_t){progdir, HB_LANDLOCK_READ_EXEC};
    for (size_t i = 0; i < n_read; i++)
        if (read_paths[i] && read_paths[i][0])
            rules[n++] = (hb_landlock_rule_t){read_paths[i], HB_LANDLOCK_READ_EXEC};
    if (workdir && workdir[0])
        rules[n++] = (hb_landlock_rule_t){workdir, HB_LANDLOCK_PRIVATE};
    int rc = hb_landlock_restrict(abi, rules, n, connect_port, NULL, why, why_size);
    if (rc == 0)
        *applied = true;
    return rc;
}

const char *hb_landlock_mode_name(hb_landlock_mode_t mode)
{
    switch (mode) {
    case HB_LANDLOCK_ON:
        return "on";
    case HB_LANDLOCK_REQUIRED:
        return "required";
    case HB_LANDLOCK_OFF:
        break;
    }
    return "off";
}

int hb_landlock_mode_parse(const char *s, hb_landlock_mode_t *mode)
{
    static const hb_landlock_mode_t all[] = {HB_LANDLOCK_OFF, HB_LANDLOCK_ON, HB_LANDLOCK_REQUIRED};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, hb_landlock_mode_name(all[i])) == 0) {
            *mode = all[i];
            return 0;
        }
    return -EINVAL;
}

void hb_landlock_describe(int abi, char *out, size_t size)
{
    static const struct {
        uint64_t bit;
        const char *name;
    } fs[] = {
        {LANDLOCK_ACCESS_FS_EXECUTE, "execute"},
        {LANDLOCK_ACCESS_FS_WRITE_FILE, "write_file"},
        {LANDLOCK_ACCESS_FS_READ_FILE, "read_file"},
        {LANDLOCK_ACCESS_FS_READ_DIR, "read_dir"},
        {LANDLOCK_ACCESS_FS_REMOVE_DIR, "remove_dir"},
        {LANDLOCK_ACCESS_FS_REMOVE_FILE, "remove_file"},
        {LANDLOCK_ACCESS_FS_MAKE_CHAR, "make_char"},
        {LANDLOCK_ACCESS_FS_MAKE_DIR, "make_dir"},
        {LANDLOCK_ACCESS_FS_MAKE_REG, "make_reg"},
        {LANDLOCK_ACCESS_FS_MAKE_SOCK, "make_sock"},
        {LANDLOCK_ACCESS_FS_MAKE_FIFO, "make_fifo"},
        {LANDLOCK_ACCESS_FS_MAKE_BLOCK, "make_block"},
        {LANDLOCK_ACCESS_FS_MAKE_SYM, "make_sym"},
        {LANDLOCK_ACCESS_FS_REFER, "refer"},
        {LANDLOCK_ACCESS_FS_TRUNCATE, "truncate"},
        {LANDLOCK_ACCESS_FS_IOCTL_DEV, "ioctl_dev"},
    };
    size_t used = 0;
    out[0] = '\0';
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (used < size) {                                                                         \
            int w_ = snprintf(out + used, size - used, __VA_ARGS__);                               \
            used += w_ > 0 ? (size_t)w_ : 0;                                                       \
        }                                                                                          \
    } while (0)
    uint64_t h = hb_landlock_fs_handled(abi);
    if (!h) {
        PUT("nothing");
        return;
    }
    PUT("filesystem (");
    bool first = true;
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
        if (h & fs[i].bit) {
            PUT("%s%s", first ? "" : ",", fs[i].name);
            first = false;
        }
    PUT(")");
    uint64_t sc = hb_landlock_scoped(abi);
    if (sc)
        PUT(", scoped (signal,abstract_unix_socket)");
    else
        PUT(", no scoping (ABI < 6: a host can still signal its user's processes)");
#undef PUT
}
