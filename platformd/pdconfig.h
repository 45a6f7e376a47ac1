/* platformd's configuration: the key table and the struct it fills.
 * Every key has a default, so an empty object "{}" is a valid config. */
#ifndef PLATFORMD_PDCONFIG_H
#define PLATFORMD_PDCONFIG_H

#include <stdint.h>

#include "plat/config.h"

typedef struct {
    struct {
        char *endpoint;       /* "tcp://127.0.0.1:7700"; loopback tcp only */
        int64_t max_msg_size; /* bytes per message, 1024..67108864, default 4194304 */
        int64_t sndhwm;       /* 1..1000000, default 10000 */
        int64_t rcvhwm;       /* 1..1000000, default 10000 */
    } bus;
    struct {
        int64_t interval_ms;  /* 10..600000, default 1000 */
        int64_t miss;         /* 1..100, default 3 */
    } heartbeat;
    struct {
        char *address;        /* loopback address only, default "127.0.0.1" */
        int64_t port;         /* 1..65535, default 7780 */
        char *token_file;     /* bearer token for mutating routes; "" = <state.dir>/api-token,
                                 created (0600) when missing */
    } http;
    struct {
        char *level;          /* err|warning|notice|info|debug, default "info" */
    } log;
    struct {
        int64_t start_timeout_ms; /* wait for a hostboot's HostLifeCycleResponse, default 5000 */
        int64_t ready_timeout_ms; /* then for the host's own ready report, default 10000 */
        int64_t start_tries;      /* attempts for failures that may succeed on retry, 1..5 */
        int64_t exited_keep_ms;   /* exited/failed hosts stay listed this long, default 60000 */
    } hosts;
    struct {
        char *dir;            /* state directory: platform.db, packages/; default "state" */
    } state;
    struct {
        int64_t action_timeout_ms;      /* a lifecycle hook overrunning this gets its host
                                           killed, default 10000 */
        int64_t max_instances_per_host; /* powerSave sharing, default 8 */
        int64_t idle_ms;                /* powerSave: an idle host is stopped after this,
                                           default 30000 */
        int64_t batch_concurrency;      /* org batch actions in flight, default 16 */
        /* Crash policy (ARCHITECTURE.md section 7). */
        int64_t restart_initial_ms;     /* first restart delay after a crash, default 1000;
                                           0 = never restart automatically */
        int64_t restart_max_ms;         /* cap of the doubling delay, default 60000 */
        int64_t restart_stable_ms;      /* up this long = the crash count resets, default 60000 */
        int64_t crash_limit;            /* crashes within crash_window_ms → failed, default 5 */
        int64_t crash_window_ms;        /* default 300000 */
        int64_t failed_retry_ms;        /* then retried this slowly, default 600000; 0 = never */
    } plugins;
} pd_config_t;

/* The key table (NULL-key terminated). */
extern const plat_cfg_field_t pd_config_table[];

/* Load `path` into *cfg (zeroed by this call). 0 or -errno with *err set. */
int pd_config_load(const char *path, pd_config_t *cfg, plat_cfg_error_t *err);
void pd_config_free(pd_config_t *cfg);

#endif
