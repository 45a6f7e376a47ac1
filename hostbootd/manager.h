/* hostbootd's root object: the link to the platform, its heartbeats and
 * the plugin hosts it spawns (spawner.h) and the signal handlers, on one
 * libuv loop. */
#ifndef HOSTBOOTD_MANAGER_H
#define HOSTBOOTD_MANAGER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "hbconfig.h"
#include "spawner.h"
#include "plat/plat.h"

typedef struct {
    uv_loop_t *loop;
    const hb_config_t *cfg;
    char id[PLAT_ID_MAX + 1]; /* "hostboot-<name>" */
    char boot_id[PLAT_UUID_LEN + 1];
    uint64_t started_ms;
    plat_link_t *link;
    hb_spawner_t *spawner;
    uv_timer_t heartbeat;
    uv_timer_t watchdog; /* systemd WATCHDOG=1, when the unit sets WatchdogSec= */
    uv_signal_t sig_term, sig_int;
    int handles_open;
    unsigned sigint_count;
    bool stopping;
} hb_manager_t;

int hb_manager_start(hb_manager_t *m, uv_loop_t *loop, const hb_config_t *cfg);
void hb_manager_stop(hb_manager_t *m);

#endif
