/* libcurl's multi interface driven by platformd's libuv loop: one uv_poll
 * per socket curl asks to watch (CURLMOPT_SOCKETFUNCTION), one uv_timer for
 * curl's timeout (CURLMOPT_TIMERFUNCTION), completions read with
 * curl_multi_info_read. Shared by res_http.c (plugin outbound HTTP) and
 * websvc.c (web-service proxy and health checks). Loop thread only.
 *
 * The module "curl" (manager.c g_modules) creates pd->curlm at start and
 * closes it at stop; after stop pd->curlm is NULL. It also starts and
 * stops the web services (websvc.h), which need pd->curlm. */
#ifndef PLATFORMD_CURLMULTI_H
#define PLATFORMD_CURLMULTI_H

#include <curl/curl.h>
#include <stdbool.h>
#include <uv.h>

struct pd;
typedef struct pd_curlm pd_curlm_t;

/* A transfer ended: `rc` is curl's result (CURLE_OK: check the response
 * code yourself). `cancelled` is true when the multi is being closed (rc is
 * then CURLE_ABORTED_BY_CALLBACK). The easy handle has been removed from
 * the multi and still belongs to the caller, who may clean it up or add it
 * (or another) again from the callback. */
typedef void (*pd_curlm_done_fn)(void *arg, CURL *easy, CURLcode rc, bool cancelled);

pd_curlm_t *pd_curlm_new(uv_loop_t *loop);
/* Start a transfer. 0, or -EINVAL / -ENOMEM / -ECANCELED (closing); `done`
 * runs exactly once, later, when 0 was returned. */
int pd_curlm_add(pd_curlm_t *m, CURL *easy, pd_curlm_done_fn done, void *arg);
/* Stop a transfer without calling its `done`. No-op if unknown. */
void pd_curlm_cancel(pd_curlm_t *m, CURL *easy);
/* Transfers in flight (tests, diag). */
size_t pd_curlm_active(const pd_curlm_t *m);
/* Every transfer still in flight gets done(..., cancelled = true); then the
 * handles close (memory goes when the loop has run). NULL-safe; sets *m NULL. */
void pd_curlm_close(pd_curlm_t **m);

/* manager.c module "curl": curl_global_init once, pd->curlm, pd->websvc. */
int pd_curl_start(struct pd *pd);
void pd_curl_stop(struct pd *pd);

#endif
