/* platformd's counters: one struct inside pd_t, incremented in place by
 * the module that sees the event (loop thread only, so plain integers),
 * rendered by /metrics and /api/v1/diag (metrics.c). Counters never go
 * down; gauges (hosts by state, ...) are read from their owners when
 * rendering, not kept here. */
#ifndef PLATFORMD_METRICS_H
#define PLATFORMD_METRICS_H

#include <stdint.h>

/* Indexed by Plat__ResourceKind (0 unknown, 1 db, 2 http, 3 file). */
#define PD_METRICS_RES_KINDS 4

typedef struct {
    /* Resource channel: every request answered, by kind and outcome, and
     * the subset refused by policy (manifest, authorizer, sandbox). */
    uint64_t resource_ok[PD_METRICS_RES_KINDS];
    uint64_t resource_failed[PD_METRICS_RES_KINDS];
    uint64_t resource_denied[PD_METRICS_RES_KINDS];
    /* Abilities. */
    uint64_t task_runs;          /* triggers delivered and answered OK */
    uint64_t task_failures;      /* triggers that failed (host down, hook error) */
    uint64_t task_missed;        /* missed runs fired late after a restart */
    uint64_t task_skipped;       /* runs not delivered: previous run in flight, or the
                                    instance not running */
    uint64_t ability_denied;     /* Ability requests refused: instance not on the sender, or
                                    not declared in its manifest (port, task name) */
    uint64_t service_proxied;    /* /plugins/{uuid}/svc requests answered by a plugin */
    uint64_t service_unavailable;/* answered 503 (unhealthy / not registered) */
    uint64_t service_health_failures; /* failed health checks */
    /* Bus and hosts. */
    uint64_t heartbeats_missed;  /* endpoints found silent past the miss limit */
    uint64_t instance_restarts;  /* crash-policy restarts */
    uint64_t trace_lines;        /* messages logged by the tracing switch */
    /* Bus security (zap.c). */
    uint64_t bus_auth_admitted;    /* ZAP: connections admitted */
    uint64_t bus_auth_refused;     /* ZAP: unknown keys refused */
    uint64_t bus_handshake_failed; /* handshakes failed (no CURVE, wrong server key) */
} pd_metrics_t;

#endif
