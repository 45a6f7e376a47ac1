/* A plugin host process: its link to the platform, and the plugin runner
 * (plugins.h) that Plugin.action and Plugin.event requests are handed to.
 * The loop thread talks to the platform only; plugin code runs on the
 * libuv threadpool, and Pong says BUSY while a hook runs. */
#ifndef PLUGINHOST_HOST_H
#define PLUGINHOST_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "plat/plat.h"
#include "plugins.h"

#define PH_LANGUAGE "c"
#define PH_RUNTIME_VERSION "1"

typedef struct {
    const char *host_id;          /* "host-<uuid>" */
    const char *platform_address; /* "tcp://127.0.0.1:7700" */
    const char *mode;             /* "dev", "highPerformance", "powerSave" */
    bool dev;                     /* started by hand */
    const char *hostboot;         /* spawning hostboot's id; "" for dev hosts */
    uint64_t platform_lost_exit_ms; /* exit after losing the platform this long; 0 = never */
} ph_host_opts_t;

typedef struct {
    uv_loop_t *loop;
    ph_host_opts_t opts;
    char id[PLAT_ID_MAX + 1];
    char boot_id[PLAT_UUID_LEN + 1];
    plat_link_t *link;
    ph_plugins_t *plugins; /* instance contexts and hook runner */
    uv_signal_t sig_term, sig_int;
    uv_timer_t lost_timer; /* platform_lost_exit_ms */
    int exit_code;         /* what main returns */
    unsigned sigint_count;
    bool stopping;
} ph_host_t;

int ph_host_start(ph_host_t *h, uv_loop_t *loop, const ph_host_opts_t *opts);
void ph_host_stop(ph_host_t *h);

#endif
