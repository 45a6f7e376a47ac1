/* badsys: a test plugin that makes a system call the hosts' seccomp filter
 * denies (test_it_seccomp, docs/security-sandbox.md). An invoke of path
 * "/mount" calls mount(2) on a directory that does not exist (harmless
 * even as root without a filter: ENOENT), "/bpf" calls bpf(2); under the
 * filter either kills the host with SIGSYS before the call returns. Without
 * a filter the call's errno is answered, 200 "mount: <error>". Any other
 * path answers 200 "ok". */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openplatform/plugin.h>

static int badsys_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    char text[128] = "ok";
    long r = 0;
    if (strcmp(req->path, "/mount") == 0) {
        op_log(ctx, OP_LOG_WARNING, "calling mount(2), denied by the seccomp filter");
        r = syscall(SYS_mount, "none", "/nonexistent-badsys-target", "tmpfs", 0UL, NULL);
        snprintf(text, sizeof text, "mount: %s", r == 0 ? "ok" : strerror(errno));
    } else if (strcmp(req->path, "/bpf") == 0) {
        op_log(ctx, OP_LOG_WARNING, "calling bpf(2), denied by the seccomp filter");
        r = syscall(SYS_bpf, 0, NULL, 0);
        snprintf(text, sizeof text, "bpf: %s", r == 0 ? "ok" : strerror(errno));
    }
    op_response_set_status(resp, 200);
    op_response_add_header(resp, "Content-Type", "text/plain");
    return op_response_set_body(resp, text, strlen(text));
}

OP_PLUGIN_DEFINE(.name = "badsys", .on_event = badsys_event);
