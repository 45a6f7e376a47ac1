/* platformd's ZAP handler (RFC 27) for the CURVE bus: a REP socket on
 * inproc://zeromq.zap.01 in the bus's (czmq) context, driven by the loop
 * through plat_uvzmq. It admits exactly
 *   - the keys of bus.authorized_keys_file ({endpoint id: Z85 public key}:
 *     the hostboots, and dev hosts an operator authorized), re-read when the
 *     file changes, and
 *   - the per-host keys the hostboots report (HostLifeCycleResponse and
 *     REGISTER reports: Host.public_key), each as exactly that host id,
 *     forgotten when the host exits;
 * and answers each admitted key's endpoint id as ZAP User-Id, which the bus
 * then binds every message to. An unknown key is refused (ZAP 400, counted)
 * at once unless a host key is expected: a START sent to a hostboot whose
 * answer (carrying the new host's key) is not handled yet
 * (pd_zap_expect_host / pd_zap_expect_done), or a hostboot's REGISTER
 * report (carrying its hosts' keys) awaited after platformd started or
 * the hostboot (re)connected. Then it waits up to bus.auth_grace_ms for its
 * host to be reported (a host may connect before that answer or report is
 * handled, and libzmq never retries a refused handshake), in a queue of at
 * most PENDING_PER_EXPECTED places per expected START (PENDING_MAX while
 * a report is awaited); beyond that it is refused. The socket is a ROUTER
 * so that a waiting request does not hold up the others.
 * A socket monitor on the ROUTER counts failed handshakes (a client without
 * CURVE, or with the wrong server key). Refusals and failed handshakes are
 * logged at most once a second (a summary line for the rest). Loop thread
 * only. */
#ifndef PLATFORMD_ZAP_H
#define PLATFORMD_ZAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct pd pd_t;
typedef struct pd_zap pd_zap_t;

/* Before the bus is bound: with bus.curve on, load the platform's secret
 * key (refused unless 0600 and ours, naming the file) and the authorized
 * keys, and bind the handler. With bus.curve off, logs a warning and
 * leaves pd->zap NULL. 0 or -errno (logged). */
int pd_zap_start(pd_t *pd);
/* After the bus is destroyed. Idempotent. */
void pd_zap_stop(pd_t *pd);

/* The platform's secret key for the ROUTER, NULL when CURVE is off. */
const char *pd_zap_secret(const pd_t *pd);

/* The g_modules pair: the handshake monitor on the bound ROUTER. */
int pd_zap_monitor_start(pd_t *pd);
void pd_zap_monitor_stop(pd_t *pd);

/* Admit `key` (32 raw bytes) as host `host_id`, reported by `hostboot`.
 * Refused (logged) when the key is bound to another id. 0, -EINVAL,
 * -EEXIST; 0 when CURVE is off (nothing to do). */
int pd_zap_admit_host(pd_t *pd, const char *host_id, const uint8_t *key, size_t len,
                      const char *hostboot);
/* The host ended: its key no longer admits anyone. */
void pd_zap_forget_host(pd_t *pd, const char *host_id);

/* A START request went to a hostboot: a new host's key is expected (its
 * connection may come first and wait). Call pd_zap_expect_done exactly
 * once for each call, when the answer was handled (after
 * pd_zap_admit_host) or the start is given up (error, timeout, hostboot
 * lost, deleted, platform stopping). No-ops when CURVE is off. */
void pd_zap_expect_host(pd_t *pd);
void pd_zap_expect_done(pd_t *pd);

typedef struct {
    uint64_t admitted;         /* ZAP 200 */
    uint64_t refused;          /* ZAP 400: unknown key, wrong mechanism, bad request */
    uint64_t handshake_failed; /* monitor: no CURVE, wrong server key, ... */
    size_t host_keys;          /* per-host keys admitted now */
    size_t authorized_keys;    /* keys from bus.authorized_keys_file */
    uint64_t refused_unexpected; /* of refused: unknown key while no host key was expected */
    uint64_t refused_queue_full; /* of refused: unknown key, wait queue full */
    size_t pending;            /* unknown keys waiting now */
    unsigned expected_hosts;   /* START answers awaited now */
} pd_zap_stats_t;
/* Zeros when CURVE is off. */
pd_zap_stats_t pd_zap_stats(const pd_t *pd);

#endif
