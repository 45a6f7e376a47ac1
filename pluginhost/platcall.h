/* The bridge from plugin code to the platform: a hook, on a threadpool
 * worker, makes a resource or ability call; the request is handed to the
 * loop thread (a mutex-protected queue and a uv_async), which sends it as a
 * bus REQUEST to the platform and, when the REPLY (or a timeout, or the
 * end) comes, wakes the waiting worker (a condition variable) with a copy
 * of it. The loop thread never blocks.
 *
 * A call fails with:
 *   -ECANCELED   the host is stopping (ph_platcall_shutdown was called);
 *   -ENOTCONN    the host is not registered with the platform, or lost it
 *                while the call was pending;
 *   -ETIMEDOUT   no answer within the bridge's timeout;
 *   the platform's error code (header.error) when it refused the request.
 *
 * Lifetime: the host creates it and hands it to the plugin runner
 * (ph_plugins_set_platcall), which frees it with itself — after the last
 * hook, so a worker never sees it freed. */
#ifndef PLUGINHOST_PLATCALL_H
#define PLUGINHOST_PLATCALL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "plat/plat.h"

/* How long a worker waits for the platform's answer. Generous: the
 * platform bounds each resource itself (statement time limit, HTTP
 * timeouts), and the hook's own action timeout bounds the hook. */
#define PH_PLATCALL_TIMEOUT_MS 60000u

typedef struct ph_platcall ph_platcall_t;

/* Loop thread. NULL on allocation failure. timeout_ms 0 = the default. */
ph_platcall_t *ph_platcall_new(uv_loop_t *loop, uint32_t timeout_ms);

/* Loop thread: the link requests are sent on (NULL: none yet / gone). */
void ph_platcall_set_link(ph_platcall_t *pc, plat_link_t *link);

/* Loop thread: the link lost the platform — calls in flight fail with
 * -ENOTCONN now rather than at their timeout. */
void ph_platcall_link_lost(ph_platcall_t *pc);

/* Loop thread: the host is stopping. Queued calls and later ones fail with
 * -ECANCELED; calls in flight end when the link is destroyed (its bus
 * cancels them). NULL-safe. */
void ph_platcall_shutdown(ph_platcall_t *pc);

/* Loop thread, when no worker can call any more. NULL-safe; *pc = NULL. */
void ph_platcall_free(ph_platcall_t **pc);

/* Worker thread: send `*req` (a message built with plat_msg_new, taken:
 * *req is set to NULL) and wait. On 0, *reply is the platform's REPLY
 * (the caller frees it with plat_envelope_free). On error, `err` (may be
 * NULL) gets one line for humans. Never call it on the loop thread. */
int ph_platcall_call(ph_platcall_t *pc, Plat__PlatformMessage **req,
                     Plat__PlatformMessage **reply, char *err, size_t err_size);

#endif
