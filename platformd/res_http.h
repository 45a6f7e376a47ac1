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
 * changes. No proxy from the environment.
 *
 * The name check is not enough (a name may resolve anywhere: DNS
 * rebinding), so the address curl is about to connect to is checked too,
 * before a byte is sent (pd_res_http_addr_check, from curl's
 * open-socket callback, and again for a reused connection before the
 * request goes out). Limits from pd->cfg->resources:
 * http_connect_timeout_ms, http_timeout_ms (total, over all redirects),
 * http_max_bytes (response body).
 *
 * Every call is counted in pd->metrics.resource_ok / resource_failed
 * [PLAT__RESOURCE_KIND__RESOURCE_KIND_HTTP], denials also in
 * resource_denied and logged with instance=<uuid>. The caller (resource
 * channel) must not count them again. */
#ifndef PLATFORMD_RES_HTTP_H
#define PLATFORMD_RES_HTTP_H

#include <sys/socket.h>

#include "package.h"
#include "platformd.h"
#include "resource.pb-c.h"

/* The outcome, exactly once per accepted request:
 *   err 0 and resp set (any HTTP status, redirects already followed), or
 *   err < 0, resp NULL, `why` one line:
 *     -EACCES       target (or a redirect's target) not allowed, by name or
 *                   by the address it resolved to (pd_res_http_addr_check)
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

/* The connect-time rule for the address `sa` (AF_INET or AF_INET6, with
 * its port) under the http patterns of `perms` (the name check,
 * pd_manifest_http_allowed, is separate and comes first):
 *  - an internal address -- loopback 127/8 and ::1, link-local 169.254/16
 *    and fe80::/10, private 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT)
 *    and fc00::/7 (and the old site-local fec0::/10), unspecified 0/8 and
 *    ::, multicast 224/4 and ff00::/8, reserved 240/4 (broadcast included);
 *    IPv4-mapped IPv6 as its IPv4 -- is refused unless a pattern whose
 *    port matches names that address literally ("10.0.0.5:8080",
 *    "127.0.0.1:*") or, for a loopback address, is "localhost:<port>";
 *  - a loopback or unspecified address on `api_port` (platformd's HTTP
 *    API) or `bus_port` (its bus) is refused whatever the patterns say: the
 *    platform is never reachable through itself (0 = no such port);
 *  - any other (public) address is allowed.
 * Returns 0, or -EACCES with a one-line why ("10.1.2.3:80 is a private
 * address ..."), or -EINVAL for another address family. */
int pd_res_http_addr_check(const struct sockaddr *sa, const pd_manifest_t *perms, unsigned api_port,
                           unsigned bus_port, char *why, size_t size);

/* Requests in flight (tests, diag). */
size_t pd_res_http_active(pd_t *pd);

#endif
