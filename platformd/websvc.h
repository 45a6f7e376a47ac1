/* Plugin web services (ARCHITECTURE.md section 8): an instance registers a
 * loopback port and a health path (Ability channel, SERVICE kind); the
 * platform proxies ANY /plugins/{uuid}/svc/<path> to
 * http://127.0.0.1:<port>/<path> (httpapi.c), health-checks the service
 * every services.health_interval_ms (GET health_path, 2xx = healthy,
 * services.health_timeout_ms), and after services.unhealthy_after failed
 * checks in a row answers 503 until a check succeeds again. State changes
 * are logged (one line each) and counted. Loop thread only.
 *
 * Started and stopped by the module "curl" (curlmulti.h): pd->websvc. */
#ifndef PLATFORMD_WEBSVC_H
#define PLATFORMD_WEBSVC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "platformd.h"

typedef struct pd_websvc pd_websvc_t;

/* Register (or replace) the one service of `instance`: health checks start
 * at once; until the first one succeeds the service is "starting" (503).
 * 0, -EINVAL (port 0, health_path not "/..." or with control characters,
 * instance not a UUID), -ENOMEM, -ECANCELED (module not running). */
int pd_websvc_register(pd_t *pd, const char *instance, uint16_t port, const char *health_path);
/* Forget it (checks and proxied requests in flight are dropped: those get
 * 503). No-op when not registered. */
void pd_websvc_unregister(pd_t *pd, const char *instance);

/* Health for diag and platformctl: for one instance an object
 *   {"instance","port","health_path","state":"starting|healthy|unhealthy",
 *    "consecutive_failures","checks","checks_failed","transitions",
 *    "last_check_age_ms","last_error","proxied"}
 * (json null when not registered); for NULL an array of all of them.
 * New reference. */
json_t *pd_websvc_json(pd_t *pd, const char *instance_or_null);

/* ---- for httpapi.c: the proxy ----------------------------------------- */

typedef struct {
    const char *name;
    const char *value;
} pd_websvc_header_t;

/* The proxied answer: `status` 100..599 with the service's headers
 * (hop-by-hop ones and Content-Length already removed) and body; or the
 * platform's own error: status 404/413/502/503/504 with `headers` empty and
 * `body` a JSON {"error":{...}} (is_error true). Valid during the call. */
typedef struct {
    unsigned status;
    bool is_error;
    const pd_websvc_header_t *headers;
    size_t n_headers;
    const char *body;
    size_t body_len;
} pd_websvc_reply_t;

typedef void (*pd_websvc_reply_fn)(void *arg, const pd_websvc_reply_t *reply);

/* Proxy one request for `instance`: `target` is the raw path and query
 * after "/svc" ("" or starting with "/" or "?"), headers as received
 * (hop-by-hop ones are dropped here). `reply` runs exactly once — possibly
 * before this returns (404, 503...). Returns a handle for
 * pd_websvc_proxy_abort (NULL if already answered). */
typedef struct pd_websvc_call pd_websvc_call_t;
pd_websvc_call_t *pd_websvc_proxy(pd_t *pd, const char *instance, const char *method,
                                  const char *target, const pd_websvc_header_t *headers,
                                  size_t n_headers, const char *body, size_t body_len,
                                  pd_websvc_reply_fn reply, void *arg);
/* The client went away: drop the call; `reply` is not called. */
void pd_websvc_proxy_abort(pd_t *pd, pd_websvc_call_t *call);

/* The largest request body the proxy accepts (services.max_body_bytes). */
size_t pd_websvc_max_body(pd_t *pd);

/* Called by pd_curl_start / pd_curl_stop (pd->curlm must exist). */
int pd_websvc_start(pd_t *pd);
void pd_websvc_stop(pd_t *pd);

#endif
