/* One libcurl easy handle per request: platformctl makes one call per run. */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* A plugin may answer invoke with a large body; stop somewhere sane. */
#define RESPONSE_MAX (256L * 1024 * 1024)

typedef struct {
    char *data;
    size_t len, cap;
    int failed; /* -ENOMEM or -EFBIG */
} buf_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    buf_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n + 1 > (size_t)RESPONSE_MAX) {
        b->failed = -EFBIG;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = -ENOMEM;
            return 0;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

int ctl_http_request(const ctl_request_t *req, ctl_response_t *resp)
{
    memset(resp, 0, sizeof *resp);
    CURL *c = curl_easy_init();
    if (!c)
        return -ENOMEM;
    struct curl_slist *headers = NULL;
    char auth[512], ctype[256];
    buf_t b = {0};
    bool ok = true;
    if (req->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", req->token);
        ok = ok && (headers = curl_slist_append(headers, auth)) != NULL;
    }
    if (req->content_type) {
        snprintf(ctype, sizeof ctype, "Content-Type: %s", req->content_type);
        ok = ok && (headers = curl_slist_append(headers, ctype)) != NULL;
    }
    /* No "Expect: 100-continue" round trip for larger bodies. */
    ok = ok && (headers = curl_slist_append(headers, "Expect:")) != NULL;
    if (!ok) {
        curl_slist_free_all(headers);
        curl_easy_cleanup(c);
        return -ENOMEM;
    }
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(req->method, "POST") == 0) {
        /* Always a body (maybe empty), so Content-Length is sent. */
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* the API is local: never via $http_proxy */
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     req->timeout_ms < 10000 ? req->timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "platformctl");
    CURLcode rc = curl_easy_perform(c);
    int ret = 0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
        char *ct = NULL;
        if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            snprintf(resp->content_type, sizeof resp->content_type, "%s", ct);
    } else if (b.failed == -ENOMEM) {
        ret = -ENOMEM;
    } else {
        resp->status = 0;
        snprintf(resp->error, sizeof resp->error, "%s",
                 b.failed == -EFBIG ? "response larger than 256 MiB" : curl_easy_strerror(rc));
        ret = -EIO;
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    if (!b.data && ret != -ENOMEM) {
        b.data = calloc(1, 1);
        if (!b.data)
            ret = -ENOMEM;
    }
    resp->body = b.data;
    resp->len = b.len;
    return ret;
}

void ctl_response_clear(ctl_response_t *resp)
{
    if (!resp)
        return;
    free(resp->body);
    memset(resp, 0, sizeof *resp);
}

char *ctl_http_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e)
        return NULL;
    char *out = strdup(e); /* callers free() it, not curl_free() */
    curl_free(e);
    return out;
}
