/* platformctl's HTTP client: one blocking request to platformd over libcurl.
 * Never goes through a proxy; the caller owns every returned buffer. */
#ifndef PLATFORMCTL_HTTP_H
#define PLATFORMCTL_HTTP_H

#include <stddef.h>

/* What came back. `status` is 0 when no response came (then `error` says
 * why); `body` is NUL-terminated for convenience (len excludes the NUL). */
typedef struct {
    long status;            /* HTTP status, 0 on a transport failure */
    char *body;             /* owned, malloc'd, never NULL after ctl_http_request */
    size_t len;             /* bytes in body */
    char content_type[128]; /* "" when the server sent none */
    char error[256];        /* transport failure text (status 0) */
} ctl_response_t;

typedef struct {
    const char *method;       /* "GET", "POST", "DELETE" */
    const char *url;          /* full URL */
    const char *token;        /* bearer token, NULL for none */
    const char *content_type; /* of the request body, NULL for none */
    const char *body;         /* request body, NULL for none (POST then sends 0 bytes) */
    size_t body_len;
    long timeout_ms; /* whole request */
} ctl_request_t;

/* Perform `req`. Returns 0 when a response came (any status), -EIO on a
 * transport failure (resp->error says why), -ENOMEM. `resp` is filled in
 * either case; free it with ctl_response_clear. */
int ctl_http_request(const ctl_request_t *req, ctl_response_t *resp);

void ctl_response_clear(ctl_response_t *resp);

/* URL-escape one path segment or query value; malloc'd, NULL on ENOMEM. */
char *ctl_http_escape(const char *s);

#endif
