/* What platformd knows about the endpoints on its bus: registered
 * hostboots and hosts, their descriptors and liveness. Pure data — no I/O,
 * no loop — so it is unit-tested alone. Times are CLOCK_MONOTONIC ms passed
 * in by the caller. */
#ifndef PLATFORMD_REGISTRY_H
#define PLATFORMD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plat/id.h"
#include "plat/msg.h"

#define PD_NAME_MAX 64
#define PD_FIELD_MAX 32
#define PD_RUNTIMES_MAX 16

typedef enum {
    PD_EP_HOSTBOOT,
    PD_EP_HOST,
} pd_ep_kind_t;

/* A host's lifecycle as the platform sees it. Liveness ("lost") is
 * tracked apart, in pd_endpoint_t.lost, for READY and STOPPING hosts. */
typedef enum {
    PD_HOST_STARTING, /* spawn requested, waiting for its own ready report */
    PD_HOST_READY,    /* registered itself (Control.ready) */
    PD_HOST_STOPPING, /* delete requested */
    PD_HOST_EXITED,   /* its hostboot reported the exit */
    PD_HOST_FAILED,   /* never became ready (error says why) */
} pd_host_state_t;

const char *pd_host_state_name(pd_host_state_t s);

typedef struct {
    char language[PD_FIELD_MAX + 1];
    char version[PD_FIELD_MAX + 1];
} pd_runtime_t;

typedef struct {
    char id[PLAT_ID_MAX + 1];
    pd_ep_kind_t kind;
    bool lost;
    uint64_t registered_ms; /* first registration (kept across re-registrations) */
    uint64_t last_seen_ms;  /* last message from it */
    char boot_id[PLAT_UUID_LEN + 1];
    char version[PD_FIELD_MAX + 1]; /* hostbootd / pluginhost build version */
    /* hostboot */
    char name[PD_NAME_MAX + 1];
    pd_runtime_t runtimes[PD_RUNTIMES_MAX];
    size_t n_runtimes;
    /* host */
    int32_t pid;
    char language[PD_FIELD_MAX + 1];
    char runtime_version[PD_FIELD_MAX + 1];
    char mode[PD_FIELD_MAX + 1];
    bool dev;
    char hostboot[PLAT_ID_MAX + 1]; /* owner; "" for dev hosts */
    pd_host_state_t host_state;
    bool told_to_exit;    /* sent Control.shutdown: no hostboot will report its exit */
    uint64_t started_ms;  /* spawn requested (or first ready for hosts not spawned by us) */
    uint64_t ready_ms;    /* 0 until ready */
    uint64_t ended_ms;    /* exited or failed; 0 before */
    int32_t exit_status;
    int32_t term_signal;
    int error_code;       /* FAILED: negative errno */
    char error[256];      /* FAILED: why */
    /* Diagnostics (router.c records them; GET /api/v1/diag shows them). */
    uint64_t messages_rx;          /* messages received from it */
    uint64_t last_report_ms;       /* hostboot: its last HostBoot report */
    char last_report_kind[16];     /* hostboot: "register", "host_exited" */
    uint64_t last_heartbeat_ms;    /* hostboot: its last HostBoot heartbeat, 0 = none yet */
    uint32_t heartbeat_hosts;      /* hostboot: host_count of that heartbeat */
    uint64_t heartbeat_uptime_ms;  /* hostboot: uptime_ms of that heartbeat */
    char log_dir[512];             /* hostboot: absolute dir of its hosts' logs ("" unknown) */
} pd_endpoint_t;

/* True for endpoints that may talk on the bus: hostboots, and hosts that
 * are READY or STOPPING. */
bool pd_endpoint_registered(const pd_endpoint_t *ep);

typedef struct pd_registry pd_registry_t;

pd_registry_t *pd_registry_new(void);
void pd_registry_destroy(pd_registry_t **reg);

/* Register (or re-register) a hostboot. Strings are truncated to their
 * fields; at most PD_RUNTIMES_MAX runtimes are kept. A re-registration
 * keeps registered_ms and clears `lost`. Returns the entry, NULL on OOM or
 * when `id` is not a hostboot id. *was_known tells whether it existed. */
pd_endpoint_t *pd_registry_put_hostboot(pd_registry_t *reg, const char *id, const char *name,
                                        const char *version, const char *boot_id,
                                        const plat_runtime_t *runtimes, size_t n_runtimes,
                                        uint64_t now_ms, bool *was_known);

/* Register (or re-register) a host. NULL when `id` is not a host id. */
pd_endpoint_t *pd_registry_put_host(pd_registry_t *reg, const char *id, int32_t pid,
                                    const char *language, const char *runtime_version,
                                    const char *mode, bool dev, const char *hostboot,
                                    const char *version, const char *boot_id, uint64_t now_ms,
                                    bool *was_known);

/* A host the platform asked `hostboot` to spawn: STARTING until its ready
 * report. -EEXIST when the id is taken; NULL + errno otherwise. */
pd_endpoint_t *pd_registry_add_starting_host(pd_registry_t *reg, const char *id,
                                             const char *language, const char *runtime_version,
                                             const char *mode, const char *hostboot,
                                             uint64_t now_ms);

/* The host ended: EXITED with its status/signal, or FAILED with a reason. */
void pd_registry_host_exited(pd_endpoint_t *ep, int32_t exit_status, int32_t term_signal,
                             uint64_t now_ms);
void pd_registry_host_failed(pd_endpoint_t *ep, int code, const char *why, uint64_t now_ms);

/* Forget EXITED/FAILED hosts that ended more than keep_ms ago. Returns how
 * many were removed. */
size_t pd_registry_prune(pd_registry_t *reg, uint64_t now_ms, uint64_t keep_ms);

pd_endpoint_t *pd_registry_find(pd_registry_t *reg, const char *id);

/* A message came from `id`: refresh last_seen_ms and clear `lost`.
 * Returns the entry (NULL when not registered, see pd_endpoint_registered);
 * *came_back is set when it had been lost. */
pd_endpoint_t *pd_registry_touch(pd_registry_t *reg, const char *id, uint64_t now_ms,
                                 bool *came_back);

/* Mark lost every registered endpoint silent for more than `silence_ms`; calls
 * `on_lost` for each newly lost one. Returns how many were newly lost. */
size_t pd_registry_mark_lost(pd_registry_t *reg, uint64_t now_ms, uint64_t silence_ms,
                             void (*on_lost)(const pd_endpoint_t *ep, uint64_t silent_ms,
                                             void *arg),
                             void *arg);

/* The platform itself could not listen for `deaf_ms` (its loop stalled):
 * that time does not count against anyone — every registered endpoint's
 * last_seen_ms moves forward by it, at most to now_ms. */
void pd_registry_forgive(pd_registry_t *reg, uint64_t deaf_ms, uint64_t now_ms);

/* Forget `id`. 0 or -ENOENT. */
int pd_registry_remove(pd_registry_t *reg, const char *id);

/* hosts: every host not EXITED or FAILED; hosts_lost: those lost. */
typedef struct {
    size_t hostboots, hostboots_lost, hosts, hosts_lost, hosts_ended;
} pd_counts_t;
pd_counts_t pd_registry_counts(const pd_registry_t *reg);

/* Every endpoint in id order (stable listings). `fn` must not modify the
 * registry. */
void pd_registry_foreach(pd_registry_t *reg, void (*fn)(const pd_endpoint_t *ep, void *arg),
                         void *arg);

size_t pd_registry_size(const pd_registry_t *reg);

#endif
