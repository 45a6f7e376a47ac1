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
        /* Security (docs/security.md). */
        bool curve;                 /* CURVE + ZAP on the ROUTER, default true */
        char *secret_key_file;      /* platform's secret key (0600), default
                                       "state/keys/platform.key" */
        char *authorized_keys_file; /* {"hostboot-<name>"|"host-<uuid>": "<Z85 public key>"},
                                       default "state/keys/authorized.json" */
        bool allow_peer_to_peer;    /* forward between endpoints, default false */
        int64_t auth_grace_ms;      /* an unknown key waits this long for its host's key,
                                       default 10000 */
        int64_t rate_per_sec;       /* per-peer messages/s (not replies), 0 = unlimited,
                                       default 2000 */
        int64_t rate_burst;         /* token bucket size, default 4000 */
        int64_t max_pending_per_peer; /* unanswered requests per peer, 0 = unlimited,
                                         default 1024 */
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
        int64_t ring_lines;   /* last lines kept per component for diag, 0..10000, default 100 */
    } log;
    struct {
        /* Tracing switch at start (trace.c; also POST /api/v1/trace). */
        char **instances;     /* instance UUIDs traced, default none */
        size_t n_instances;
        char **hosts;         /* host ids traced, default none */
        size_t n_hosts;
    } trace;
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
    struct {
        /* Outbound HTTP of plugins (res_http.c). */
        int64_t http_connect_timeout_ms; /* default 2000 */
        int64_t http_timeout_ms;         /* whole request incl. redirects, default 10000 */
        int64_t http_max_bytes;          /* response body cap, default 4194304 */
        int64_t http_max_redirects;      /* followed (each checked), default 5 */
        /* DB and File of plugins (res_db.c, res_file.c, resource.c). */
        int64_t db_timeout_ms;           /* statement time limit, default 2000 */
        int64_t db_max_rows;             /* rows in one result, default 10000 */
        int64_t db_max_bytes;            /* one result, default 4194304 */
        int64_t db_max_file_bytes;       /* DB file quota of an instance, default 268435456 */
        int64_t file_max_bytes;          /* one file, default 16777216 */
        int64_t file_quota_bytes;        /* all files of one instance, default 268435456 */
    } resources;
    struct {
        /* Plugin web services (websvc.c). */
        int64_t health_interval_ms;      /* between health checks, default 2000 */
        int64_t health_timeout_ms;       /* one health check, default 1000 */
        int64_t unhealthy_after;         /* failed checks in a row, default 2 */
        int64_t max_body_bytes;          /* proxied request/response body, default 8388608 */
        int64_t proxy_timeout_ms;        /* one proxied request, default 30000 */
    } services;
} pd_config_t;

/* The key table (NULL-key terminated). */
extern const plat_cfg_field_t pd_config_table[];

/* Load `path` into *cfg (zeroed by this call). 0 or -errno with *err set. */
int pd_config_load(const char *path, pd_config_t *cfg, plat_cfg_error_t *err);
void pd_config_free(pd_config_t *cfg);

#endif
