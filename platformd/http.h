/* The HTTP API's request/reply types, shared by the route modules
 * (httpapi.c: status, hosts; api_plugins.c: packages, instances, orgs).
 * A route answers at once, or suspends the request and finishes it later
 * from the loop (lifecycle actions, invoke). */
#ifndef PLATFORMD_HTTP_H
#define PLATFORMD_HTTP_H

#include <jansson.h>
#include <stddef.h>

#include "platformd.h"

typedef struct {
    int status;     /* 0 only for PD_HTTP_PENDING */
    json_t *body;   /* owned; sent as application/json */
    char *raw;      /* owned, malloc'd; sent instead of body when not NULL */
    size_t raw_len;
    char content_type[128]; /* for raw */
} pd_http_reply_t;

#define PD_HTTP_PENDING ((pd_http_reply_t){0})

typedef struct pd_http_pending pd_http_pending_t;

typedef struct {
    pd_t *pd;
    const char *method;
    const char *url;
    const char *params[2]; /* the {…} segments of the route, in order */
    json_t *body;          /* parsed JSON body (POST with a JSON route), else NULL */
    const char *raw;       /* the body bytes as received ("" when none) */
    size_t raw_len;
    void *conn;            /* struct MHD_Connection */
    void *state;           /* the connection's state (httpapi.c) */
} pd_http_req_t;

typedef pd_http_reply_t (*pd_route_fn)(pd_http_req_t *req);

/* {"error":{"code":code,"message":message}} with `status`. */
pd_http_reply_t pd_http_error(int status, const char *code, const char *message);
/* 200/201/202 with a JSON body (stolen). */
pd_http_reply_t pd_http_json(int status, json_t *body);
/* A query-string argument, NULL when absent. */
const char *pd_http_query(pd_http_req_t *req, const char *key);
/* A request header, NULL when absent. */
const char *pd_http_header(pd_http_req_t *req, const char *name);

/* Suspend `req` (the route then returns PD_HTTP_PENDING) and finish it
 * later, exactly once, with pd_http_finish. */
pd_http_pending_t *pd_http_suspend(pd_http_req_t *req);
void pd_http_finish(pd_http_pending_t *p, pd_http_reply_t reply);

/* Routes of api_plugins.c. */
pd_http_reply_t pd_api_post_packages(pd_http_req_t *req);
pd_http_reply_t pd_api_get_packages(pd_http_req_t *req);
pd_http_reply_t pd_api_post_instances(pd_http_req_t *req);
pd_http_reply_t pd_api_get_instances(pd_http_req_t *req);
pd_http_reply_t pd_api_get_instance(pd_http_req_t *req);
pd_http_reply_t pd_api_instance_action(pd_http_req_t *req);
pd_http_reply_t pd_api_invoke(pd_http_req_t *req);
pd_http_reply_t pd_api_org_action(pd_http_req_t *req);
pd_http_reply_t pd_api_get_instance_actions(pd_http_req_t *req);

/* Routes of metrics.c (GET /metrics) and api_diag.c (GET /api/v1/diag,
 * GET|POST /api/v1/trace, GET /api/v1/hosts/{id}/log). */
pd_http_reply_t pd_api_get_metrics(pd_http_req_t *req);
pd_http_reply_t pd_api_get_diag(pd_http_req_t *req);
pd_http_reply_t pd_api_get_trace(pd_http_req_t *req);
pd_http_reply_t pd_api_post_trace(pd_http_req_t *req);
pd_http_reply_t pd_api_get_host_log(pd_http_req_t *req);

#endif
