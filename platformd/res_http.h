/* Resource channel, HTTP kind (ARCHITECTURE.md section 8): a plugin's
 * outbound HTTP request, run by libcurl on the loop (curlmulti.h).
 *
 * Policy: only http:// and https:// URLs whose host:port matches one of the
 * instance's manifest permissions.http patterns (pd_manifest_http_allowed).
 * Redirects are not followed by curl: a 301/302/303/307/308 with a Location
 * is followed here, up to resources.http_max_redirects, each target checked
 * against the same patterns (a relative Location resolved against the
 * current URL). 303 (and 301/302 after a POST) continue as GET without
 * body; Authorization and Cookie headers are dropped when the origin
 * changes. No proxy from the environment. Limits from pd->cfg->resources:
 * http_connect_timeout_ms, http_timeout_ms (total, over all redirects),
 * http_max_bytes (response body).
 *
 * Every call is counted in pd->metrics.resource_ok / resource_failed
 * [PLAT__RESOURCE_KIND__RESOURCE_KIND_HTTP], denials also in
 * resource_denied and logged with instance=<uuid>. The caller (resource
 * channel) must not count them again. */
#ifndef PLATFORMD_RES_HTTP_H
#define PLATFORMD_RES_HTTP_H

#include "package.h"
#include "platformd.h"
#include "resource.pb-c.h"

/* The outcome, exactly once per accepted request:
 *   err 0 and resp set (any HTTP status, redirects already followed), or
 *   err < 0, resp NULL, `why` one line:
 *     -EACCES       target (or a redirect's target) not allowed
 *     -ETIMEDOUT    connect or total timeout
 *     -EFBIG        response body over resources.http_max_bytes
 *     -ECONNREFUSED connection refused
 *     -EHOSTUNREACH name not resolved / host unreachable / other connect failure
 *     -ELOOP        more than resources.http_max_redirects redirects
 *     -EINVAL       bad URL, method or header
 *     -EIO          any other transfer error (TLS, reset...; `why` says)
 *     -ECANCELED    platformd is stopping
 * `resp` and `why` are valid only during the call. */
typedef void (*pd_res_http_done_fn)(void *arg, int err, const char *why, Plat__HttpResponse *resp);

/* Start `req` for `instance` (uuid, for logs) under the permissions of
 * `manifest` (its http patterns are copied: the manifest need only live
 * during the call). Methods: GET, POST, PUT, DELETE, PATCH, HEAD ("" = GET).
 * Returns 0 (done runs later, exactly once) or a negative errno at once
 * (done not called; the call is counted all the same): -EACCES, -EINVAL,
 * -ENOMEM, -ECANCELED (the curl module is not running). */
int pd_res_http_request(pd_t *pd, const char *instance, const pd_manifest_t *manifest,
                        const Plat__HttpRequest *req, pd_res_http_done_fn done, void *arg);

/* Requests in flight (tests, diag). */
size_t pd_res_http_active(pd_t *pd);

#endif
