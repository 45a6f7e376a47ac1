/* hostbootd's configuration: the key table and the struct it fills. */
#ifndef HOSTBOOTD_HBCONFIG_H
#define HOSTBOOTD_HBCONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "plat/config.h"

typedef struct {
    char *language; /* required, [a-z0-9_]{1,32} */
    char *version;  /* required, non-empty, <= 32 chars */
    char *path;     /* required, the host executable (absolute, or relative to cwd) */
} hb_runtime_cfg_t;

typedef struct {
    char *name;               /* default "local"; plat_hostboot_name_valid */
    struct {
        char *endpoint;       /* default "tcp://127.0.0.1:7700"; loopback tcp only */
        char *public_key_file; /* the platform's CURVE public key, default
                                  "state/keys/platform.pub" (bus.curve) */
    } platform;
    struct {
        int64_t max_msg_size; /* 1024..67108864, default 4194304 */
        int64_t sndhwm;       /* 1..1000000, default 1000 */
        int64_t rcvhwm;       /* 1..1000000, default 1000 */
        bool curve;           /* CURVE client (and per-host keys), default true */
        char *secret_key_file; /* this hostboot's secret key (0600), default
                                  "state/keys/hostboot.key" */
    } bus;
    struct {
        int64_t timeout_ms;       /* one registration attempt, 10..600000, default 2000 */
        int64_t retry_initial_ms; /* first backoff, 10..600000, default 200 */
        int64_t retry_max_ms;     /* backoff cap, 10..600000, default 5000 */
    } reg;                        /* JSON key "register" */
    hb_runtime_cfg_t *runtimes;   /* JSON "runtimes": array of objects; default: none */
    size_t n_runtimes;
    struct {
        char *level;              /* default "info" */
        char *dir;                /* default "logs"; host output in <dir>/hosts/<host-id>.log */
    } log;
    struct {
        int64_t grace_ms;         /* SIGTERM → SIGKILL grace, 0..600000, default 5000 */
        char *work_dir;           /* per-host private dirs <work_dir>/<host-id>, default "hosts" */
        char *user;               /* run hosts as this user ("" = as hostbootd) */
        char *group;              /* and group ("" = the user's primary group) */
        int64_t log_max_bytes;    /* rotate a host log at this size, default 10 MiB */
        int64_t log_keep;         /* rotated host logs kept, default 3 */
        int64_t platform_lost_exit_ms; /* a host that lost the platform this long exits;
                                          0 = never; default 60000 */
        struct {
            int64_t as_bytes;     /* RLIMIT_AS, 0 = inherit */
            int64_t nofile;       /* RLIMIT_NOFILE, 0 = inherit; default 1024 */
            int64_t nproc;        /* RLIMIT_NPROC, 0 = inherit */
            int64_t cpu_s;        /* RLIMIT_CPU seconds, 0 = inherit */
        } limits;
        struct {
            bool enabled;         /* seccomp deny-list filter on every host, default true */
            char **deny;          /* system call names; none given = the default list
                                     (seccomp.h hb_seccomp_default_deny) */
            size_t n_deny;
        } seccomp;
        struct {
            bool enabled;         /* Landlock sandbox on every host, default true */
            bool required;        /* no Landlock in the kernel = hosts fail to start;
                                     default false (warn once, spawn without) */
            char *packages_dir;   /* platformd's package store, readable by hosts;
                                     default "state/packages" */
            char **read_paths;    /* extra files/dirs hosts may read (and execute) */
            size_t n_read_paths;
            bool bus_only;        /* TCP connect only to the platform's bus port (ABI >= 4),
                                     default true */
        } landlock;               /* landlock.h, docs/security-sandbox.md */
    } hosts;
} hb_config_t;

extern const plat_cfg_field_t hb_config_table[];

/* Load `path` into *cfg (zeroed by this call). 0 or -errno with *err set. */
int hb_config_load(const char *path, hb_config_t *cfg, plat_cfg_error_t *err);
void hb_config_free(hb_config_t *cfg);

#endif
