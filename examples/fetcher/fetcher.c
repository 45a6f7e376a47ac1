/* fetcher: fetches a URL through the platform's outbound HTTP resource
 * (op_http_request) on every invoke and answers with what came back.
 *
 *   URL      the invoke's body when it has one, else the config's "url"
 *   method   the config's "method" (default GET)
 *   answer   the upstream status, Content-Type and body; when the platform
 *            refuses or the request fails, a JSON error
 *            {"error":"EACCES","code":-13,"message":"..."} with status 403
 *            (denied by the manifest), 504 (timeout) or 502 (anything else:
 *            too large, connection refused, ...)
 *
 * The manifest's permissions.http decides what it may reach (here local
 * servers only: "127.0.0.1:*", "localhost:*"); the platform checks every
 * redirect against it too. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openplatform/plugin.h>

static const char *errno_name(int code)
{
    switch (-code) {
    case EACCES:
        return "EACCES";
    case ETIMEDOUT:
        return "ETIMEDOUT";
    case EFBIG:
        return "EFBIG";
    case ECONNREFUSED:
        return "ECONNREFUSED";
    case EHOSTUNREACH:
        return "EHOSTUNREACH";
    case EINVAL:
        return "EINVAL";
    case ELOOP:
        return "ELOOP";
    case ENOTCONN:
        return "ENOTCONN";
    case ENOSYS:
        return "ENOSYS";
    default:
        return "EIO";
    }
}

static int answer_error(op_ctx_t *ctx, op_response_t *resp, int code)
{
    json_t *j = json_pack("{s:s, s:i, s:s}", "error", errno_name(code), "code", code, "message",
                          op_last_error(ctx));
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return -ENOMEM;
    op_response_set_status(resp, code == -EACCES ? 403 : code == -ETIMEDOUT ? 504 : 502);
    op_response_add_header(resp, "Content-Type", "application/json");
    int rc = op_response_set_body(resp, text, strlen(text));
    free(text);
    return rc;
}

static int fetcher_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    char url[2048], method[16];
    json_t *cfg = json_loads(op_config(ctx), 0, NULL);
    const char *curl = json_string_value(json_object_get(cfg, "url"));
    const char *cmethod = json_string_value(json_object_get(cfg, "method"));
    snprintf(method, sizeof method, "%s", cmethod && cmethod[0] ? cmethod : "GET");
    if (req->body_len)
        snprintf(url, sizeof url, "%.*s", (int)req->body_len, (const char *)req->body);
    else
        snprintf(url, sizeof url, "%s", curl ? curl : "");
    json_decref(cfg);
    if (!url[0]) {
        op_response_set_status(resp, 400);
        static const char msg[] = "no URL: send one as the body, or set config url\n";
        return op_response_set_body(resp, msg, sizeof msg - 1);
    }

    op_http_response_t *up = NULL;
    int rc = op_http_request(ctx, method, url, NULL, 0, NULL, 0, &up);
    if (rc < 0) {
        op_log(ctx, OP_LOG_INFO, "%s %s failed: %s (%d)", method, url, op_last_error(ctx), rc);
        return answer_error(ctx, resp, rc);
    }
    op_log(ctx, OP_LOG_DEBUG, "%s %s -> %u, %zu bytes", method, url, up->status, up->body_len);
    op_response_set_status(resp, up->status >= 100 && up->status <= 599 ? up->status : 502);
    for (size_t i = 0; i < up->n_headers; i++)
        if (strcasecmp(up->headers[i].name, "Content-Type") == 0)
            op_response_add_header(resp, "Content-Type", up->headers[i].value);
    rc = op_response_set_body(resp, up->body, up->body_len);
    op_http_response_free(up);
    return rc;
}

OP_PLUGIN_DEFINE(.name = "fetcher", .on_event = fetcher_event);
