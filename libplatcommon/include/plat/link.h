/* An endpoint's link to the platform (used by hostbootd and pluginhost):
 * a DEALER bus that registers itself, answers the platform's Ping with
 * Pong, notices a lost platform (no message for heartbeat_miss intervals)
 * or a restarted one (Ping with another boot id) and re-registers with
 * backoff until it is admitted again. Loop thread only. */
#ifndef PLAT_LINK_H
#define PLAT_LINK_H

#include <stdint.h>
#include <uv.h>

#include "bus.h"
#include "log.h"

typedef struct plat_link plat_link_t;

typedef enum {
    PLAT_LINK_REGISTERING, /* trying to (re-)register */
    PLAT_LINK_REGISTERED,  /* the platform acknowledged us */
    PLAT_LINK_LOST,        /* the platform went silent; re-registering */
} plat_link_state_t;

typedef struct {
    const char *identity;          /* own endpoint id */
    const char *platform_address;  /* "tcp://127.0.0.1:7700" */
    plat_endpoint_opts_t endpoint;
    const char *boot_id;           /* own boot id */
    uint32_t register_timeout_ms;  /* one registration attempt; 0 = 2000 */
    uint32_t retry_initial_ms;     /* first backoff; 0 = 200 */
    uint32_t retry_max_ms;         /* backoff cap; 0 = 5000 */
    uint32_t heartbeat_interval_ms;/* assumed until RegisterAck says; 0 = 1000 */
    uint32_t heartbeat_miss;       /* assumed until RegisterAck says; 0 = 3 */
    /* Build the registration REQUEST body (a hostboot Report or a Control
     * HostReady); the link frees it after sending. */
    Plat__PlatformMessage *(*build_registration)(void *arg);
    /* State changes; `platform_boot_id` is the new platform's boot id on
     * REGISTERED, else NULL. Optional. */
    void (*on_state)(plat_link_state_t state, const char *platform_boot_id, void *arg);
    /* The host state to put in Pong; optional (UNKNOWN). */
    Plat__HostState (*pong_state)(void *arg);
    /* Every message but Ping. Optional. */
    plat_bus_message_cb on_message;
    plat_bus_drop_cb on_drop;      /* optional */
    /* Events an operator should see (registered, registration failed and
     * when it is retried, platform silent or restarted), as one formatted
     * line with the ids; the owner logs it. NULL: logged at debug. */
    void (*on_log)(plat_log_level_t level, const char *line, void *arg);
    void *arg;
} plat_link_opts_t;

/* Create and start registering at once. NULL on failure (errno set). */
plat_link_t *plat_link_new(uv_loop_t *loop, const plat_link_opts_t *opts);

/* Stop timers, destroy the bus (pending requests -ECANCELED). The loop must
 * run afterwards for close callbacks. NULL-safe. */
void plat_link_destroy(plat_link_t **link);

plat_link_state_t plat_link_state(const plat_link_t *link);
plat_bus_t *plat_link_bus(plat_link_t *link);
/* Boot id of the platform we are registered with, "" before the first ack. */
const char *plat_link_platform_boot_id(const plat_link_t *link);
const char *plat_link_state_name(plat_link_state_t state);
/* The heartbeat interval in force: the platform's (from RegisterAck) once
 * registered, else the assumed one. */
uint32_t plat_link_heartbeat_interval_ms(const plat_link_t *link);

#endif
