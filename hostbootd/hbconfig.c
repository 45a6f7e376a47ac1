/* hostbootd's configuration table (see hbconfig.h). Defaults live here and
 * in config/hostbootd.json, nowhere else. */
#include "hbconfig.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "plat/id.h"
#include "seccomp.h"

/* Offset of a member of one of hb_config_t's nested structs, relative to that
 * nested struct (what a child table needs). */
#define HB_OFF(sect, field) (offsetof(hb_config_t, sect.field) - offsetof(hb_config_t, sect))

static int validate_name(const void *value, const char **why)
{
    if (plat_hostboot_name_valid(*(const char *const *)value))
        return 0;
    *why = "must match [a-z0-9][a-z0-9._-]{0,63}";
    return -EINVAL;
}

static int validate_language(const void *value, const char **why)
{
    const char *s = *(const char *const *)value;
    size_t n = strlen(s);
    bool ok = n >= 1 && n <= 32;
    for (size_t i = 0; ok && i < n; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_';
    if (ok)
        return 0;
    *why = "must match [a-z0-9_]{1,32}";
    return -EINVAL;
}

static int validate_version(const void *value, const char **why)
{
    size_t n = strlen(*(const char *const *)value);
    if (n >= 1 && n <= 32)
        return 0;
    *why = "must be 1 to 32 characters";
    return -EINVAL;
}

static int validate_path(const void *value, const char **why)
{
    if ((*(const char *const *)value)[0] != '\0')
        return 0;
    *why = "must not be empty";
    return -EINVAL;
}

static const plat_cfg_field_t hb_platform_table[] = {
    {.key = "endpoint",
     .type = PLAT_CFG_STRING,
     .offset = HB_OFF(platform, endpoint),
     .def_str = "tcp://127.0.0.1:7700",
     .validate = plat_cfg_validate_loopback_endpoint,
     .doc = "platformd's bus endpoint to connect to; loopback tcp only"},
    {.key = "public_key_file",
     .type = PLAT_CFG_STRING,
     .offset = HB_OFF(platform, public_key_file),
     .def_str = "state/keys/platform.pub",
     .doc = "platformd's CURVE public key (Z85), used when bus.curve is on"},
    {0},
};

static const plat_cfg_field_t hb_bus_table[] = {
    {.key = "max_msg_size",
     .type = PLAT_CFG_INT,
     .offset = HB_OFF(bus, max_msg_size),
     .def_int = 4194304,
     .min = 1024,
     .max = 67108864,
     .doc = "largest bus message in bytes (ZMQ_MAXMSGSIZE)"},
    {.key = "sndhwm",
     .type = PLAT_CFG_INT,
     .offset = HB_OFF(bus, sndhwm),
     .def_int = 1000,
     .min = 1,
     .max = 1000000,
     .doc = "send high-water mark, messages queued"},
    {.key = "rcvhwm",
     .type = PLAT_CFG_INT,
     .offset = HB_OFF(bus, rcvhwm),
     .def_int = 1000,
     .min = 1,
     .max = 1000000,
     .doc = "receive high-water mark, messages queued"},
    {.key = "curve",
     .type = PLAT_CFG_BOOL,
     .offset = HB_OFF(bus, curve),
     .def_bool = true,
     .doc = "connect with CURVE (this hostboot's key must be authorized in platformd's "
            "bus.authorized_keys_file) and give every host a fresh key pair; false = "
            "plaintext (platformd's bus.curve must be off too)"},
    {.key = "secret_key_file",
     .type = PLAT_CFG_STRING,
     .offset = HB_OFF(bus, secret_key_file),
     .def_str = "state/keys/hostboot.key",
     .doc = "this hostboot's CURVE secret key (Z85, mode 0600, owned by the service user); "
            "create with `platformctl keygen`"},
    {0},
};

static const plat_cfg_field_t hb_register_table[] = {
    {.key = "timeout_ms",
     .type = PLAT_CFG_INT,
     .offset = HB_OFF(reg, timeout_ms),
     .def_int = 2000,
     .min = 10,
     .max = 600000,
     .doc = "milliseconds to wait for the reply to one registration attempt"},
    {.key = "retry_initial_ms",
     .type = PLAT_CFG_INT,
     .offset = HB_OFF(reg, retry_initial_ms),
     .def_int = 200,
     .min = 10,
     .max = 600000,
     .doc = "first backoff in milliseconds before retrying registration (doubles each time)"},
    {.key = "retry_max_ms",
     .type = PLAT_CFG_INT,
     .offset = HB_OFF(reg, retry_max_ms),
     .def_int = 5000,
     .min = 10,
     .max = 600000,
     .doc = "cap in milliseconds of the registration backoff"},
    {0},
};

static const plat_cfg_field_t hb_runtime_table[] = {
    {.key = "language",
     .type = PLAT_CFG_STRING,
     .offset = offsetof(hb_runtime_cfg_t, language),
     .required = true,
     .validate = validate_language,
     .doc = "plugin language this runtime hosts, [a-z0-9_]{1,32}"},
    {.key = "version",
     .type = PLAT_CFG_STRING,
     .offset = offsetof(hb_runtime_cfg_t, version),
     .required = true,
     .validate = validate_version,
     .doc = "runtime version, 1 to 32 characters"},
    {.key = "path",
     .type = PLAT_CFG_STRING,
     .offset = offsetof(hb_runtime_cfg_t, path),
     .required = true,
     .validate = validate_path,
     .doc = "host executable (absolute, or relative to the working directory)"},
    {0},
};

static const plat_cfg_field_t hb_log_table[] = {
    {.key = "level",
     .type = PLAT_CFG_STRING,
     .offset = HB_OFF(log, level),
     .def_str = "info",
     .validate = plat_cfg_validate_log_level,
     .doc = "lowest level logged: err, warning, notice, info or debug"},
    {.key = "dir",
     .type = PLAT_CFG_STRING,
     .offset = HB_OFF(log, dir),
     .def_str = "logs",
     .validate = validate_path,
     .doc = "directory for host output logs, written to <dir>/hosts/<host-id>.log"},
    {0},
};

#define HB_LIM(field) (offsetof(hb_config_t, hosts.limits.field) - offsetof(hb_config_t, hosts.limits))

static const plat_cfg_field_t hb_limits_table[] = {
    {.key = "as_bytes",
     .type = PLAT_CFG_INT,
     .offset = HB_LIM(as_bytes),
     .def_int = 0,
     .min = 0,
     .max = INT64_MAX,
     .doc = "address-space limit of each host in bytes (RLIMIT_AS); 0 = inherit"},
    {.key = "nofile",
     .type = PLAT_CFG_INT,
     .offset = HB_LIM(nofile),
     .def_int = 1024,
     .min = 0,
     .max = 1048576,
     .doc = "open-file limit of each host (RLIMIT_NOFILE); 0 = inherit"},
    {.key = "nproc",
     .type = PLAT_CFG_INT,
     .offset = HB_LIM(nproc),
     .def_int = 0,
     .min = 0,
     .max = 4194304,
     .doc = "process limit of the hosts' user (RLIMIT_NPROC); 0 = inherit"},
    {.key = "cpu_s",
     .type = PLAT_CFG_INT,
     .offset = HB_LIM(cpu_s),
     .def_int = 0,
     .min = 0,
     .max = 31536000,
     .doc = "CPU-time limit of each host in seconds (RLIMIT_CPU); 0 = inherit"},
    {0},
};

#define HB_SEC(field) (offsetof(hb_config_t, hosts.seccomp.field) - offsetof(hb_config_t, hosts.seccomp))

/* hosts.seccomp as a whole (the deny list's count lives beside it): every
 * name must be a system call libseccomp knows; the reason names it. */
static int validate_seccomp(const void *value, const char **why)
{
    static __thread char reason[128];
    const char *const *deny =
        (const char *const *)*(char **const *)((const char *)value + HB_SEC(deny));
    size_t n = *(const size_t *)((const char *)value + HB_SEC(n_deny));
    if (n == 0 || hb_seccomp_check(deny, n, reason, sizeof reason) == 0)
        return 0;
    *why = reason;
    return -EINVAL;
}

static const plat_cfg_field_t hb_seccomp_table[] = {
    {.key = "enabled",
     .type = PLAT_CFG_BOOL,
     .offset = HB_SEC(enabled),
     .def_bool = true,
     .doc = "install the seccomp deny-list filter in every host (docs/security-sandbox.md)"},
    {.key = "deny",
     .type = PLAT_CFG_STRING_ARRAY,
     .offset = HB_SEC(deny),
     .count_offset = HB_SEC(n_deny),
     .doc = "system calls that kill the host; empty or absent = the default list"},
    {0},
};

#define HB_LL(field)                                                                               \
    (offsetof(hb_config_t, hosts.landlock.field) - offsetof(hb_config_t, hosts.landlock))
#define HB_LL_MAX_READ_PATHS 32 /* landlock.h takes up to HB_LANDLOCK_MAX_PATHS */

/* hosts.landlock as a whole: the extra read paths are non-empty, short
 * enough for a path, at most HB_LL_MAX_READ_PATHS. */
static int validate_landlock(const void *value, const char **why)
{
    const char *const *paths =
        (const char *const *)*(char **const *)((const char *)value + HB_LL(read_paths));
    size_t n = *(const size_t *)((const char *)value + HB_LL(n_read_paths));
    if (n > HB_LL_MAX_READ_PATHS) {
        *why = "at most 32 read_paths";
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if (!paths[i] || !paths[i][0] || strlen(paths[i]) >= 1024) {
            *why = "read_paths must be non-empty paths shorter than 1024 characters";
            return -EINVAL;
        }
    const char *pkg = *(char *const *)((const char *)value + HB_LL(packages_dir));
    if (pkg && strlen(pkg) >= 1024) {
        *why = "packages_dir must be shorter than 1024 characters";
        return -EINVAL;
    }
    return 0;
}

static const plat_cfg_field_t hb_landlock_table[] = {
    {.key = "enabled",
     .type = PLAT_CFG_BOOL,
     .offset = HB_LL(enabled),
     .def_bool = true,
     .doc = "confine every host with Landlock: it reads only system files, its runtime, the "
            "package store and read_paths, writes only its work dir, signals nobody outside "
            "(docs/security-sandbox.md)"},
    {.key = "required",
     .type = PLAT_CFG_BOOL,
     .offset = HB_LL(required),
     .def_bool = false,
     .doc = "a kernel without Landlock fails every host start; false = warn once at start and "
            "spawn hosts without it"},
    {.key = "packages_dir",
     .type = PLAT_CFG_STRING,
     .offset = HB_LL(packages_dir),
     .def_str = "state/packages",
     .validate = validate_path,
     .doc = "platformd's package store (<state.dir>/packages), which hosts load plugins from"},
    {.key = "read_paths",
     .type = PLAT_CFG_STRING_ARRAY,
     .offset = HB_LL(read_paths),
     .count_offset = HB_LL(n_read_paths),
     .doc = "extra files or directories hosts may read (and execute), at most 32"},
    {.key = "bus_only",
     .type = PLAT_CFG_BOOL,
     .offset = HB_LL(bus_only),
     .def_bool = true,
     .doc = "hosts may open TCP connections to the platform's bus port only (kernel Landlock "
            "ABI 4 or later): plugin code reaches the network through the HTTP resource and "
            "its manifest allow-list; false = any TCP connection"},
    {0},
};

static const plat_cfg_field_t hb_hosts_table[] = {
    {.key = "grace_ms",
     .type = PLAT_CFG_INT,
     .offset = HB_OFF(hosts, grace_ms),
     .def_int = 5000,
     .min = 0,
     .max = 600000,
     .doc = "milliseconds between SIGTERM and SIGKILL when a host is deleted"},
    {.key = "work_dir",
     .type = PLAT_CFG_STRING,
     .offset = HB_OFF(hosts, work_dir),
     .def_str = "hosts",
     .validate = validate_path,
     .doc = "each host runs in its own private directory <work_dir>/<host-id>"},
    {.key = "user",
     .type = PLAT_CFG_STRING,
     .offset = HB_OFF(hosts, user),
     .def_str = "",
     .doc = "unprivileged user the hosts run as; \"\" = hostbootd's own user"},
    {.key = "group",
     .type = PLAT_CFG_STRING,
     .offset = HB_OFF(hosts, group),
     .def_str = "",
     .doc = "group the hosts run as; \"\" = the user's primary group"},
    {.key = "log_max_bytes",
     .type = PLAT_CFG_INT,
     .offset = HB_OFF(hosts, log_max_bytes),
     .def_int = 10485760,
     .min = 4096,
     .max = 1073741824,
     .doc = "a host's output log is rotated when it reaches this many bytes"},
    {.key = "log_keep",
     .type = PLAT_CFG_INT,
     .offset = HB_OFF(hosts, log_keep),
     .def_int = 3,
     .min = 0,
     .max = 100,
     .doc = "rotated output logs kept per host (<host-id>.log.1 ... .log.N)"},
    {.key = "platform_lost_exit_ms",
     .type = PLAT_CFG_INT,
     .offset = HB_OFF(hosts, platform_lost_exit_ms),
     .def_int = 60000,
     .min = 0,
     .max = 86400000,
     .doc = "a spawned host that has lost the platform this long exits by itself; 0 = never"},
    {.key = "limits",
     .type = PLAT_CFG_OBJECT,
     .offset = HB_OFF(hosts, limits),
     .children = hb_limits_table,
     .doc = "resource limits applied to every host"},
    {.key = "seccomp",
     .type = PLAT_CFG_OBJECT,
     .offset = HB_OFF(hosts, seccomp),
     .children = hb_seccomp_table,
     .validate = validate_seccomp,
     .doc = "system-call filter of every host"},
    {.key = "landlock",
     .type = PLAT_CFG_OBJECT,
     .offset = HB_OFF(hosts, landlock),
     .children = hb_landlock_table,
     .validate = validate_landlock,
     .doc = "file-system and signal sandbox of every host"},
    {0},
};

const plat_cfg_field_t hb_config_table[] = {
    {.key = "name",
     .type = PLAT_CFG_STRING,
     .offset = offsetof(hb_config_t, name),
     .def_str = "local",
     .validate = validate_name,
     .doc = "this hostboot's name; its bus id is hostboot-<name>"},
    {.key = "platform",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(hb_config_t, platform),
     .children = hb_platform_table,
     .doc = "where platformd is"},
    {.key = "bus",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(hb_config_t, bus),
     .children = hb_bus_table,
     .doc = "bus socket limits"},
    {.key = "register",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(hb_config_t, reg),
     .children = hb_register_table,
     .doc = "registration with platformd"},
    {.key = "runtimes",
     .type = PLAT_CFG_OBJECT_ARRAY,
     .offset = offsetof(hb_config_t, runtimes),
     .children = hb_runtime_table,
     .elem_size = sizeof(hb_runtime_cfg_t),
     .count_offset = offsetof(hb_config_t, n_runtimes),
     .doc = "runtimes this hostboot can spawn hosts with, {language, version, path} each"},
    {.key = "log",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(hb_config_t, log),
     .children = hb_log_table,
     .doc = "logging"},
    {.key = "hosts",
     .type = PLAT_CFG_OBJECT,
     .offset = offsetof(hb_config_t, hosts),
     .children = hb_hosts_table,
     .doc = "how plugin hosts are spawned, isolated, logged and stopped"},
    {0},
};

int hb_config_load(const char *path, hb_config_t *cfg, plat_cfg_error_t *err)
{
    memset(cfg, 0, sizeof *cfg);
    if (!path) { /* no file: the embedded defaults */
        plat_cfg_defaults(hb_config_table, cfg);
        return 0;
    }
    return plat_cfg_load_file(path, hb_config_table, cfg, err);
}

void hb_config_free(hb_config_t *cfg)
{
    if (!cfg)
        return;
    plat_cfg_free(hb_config_table, cfg);
    memset(cfg, 0, sizeof *cfg);
}
