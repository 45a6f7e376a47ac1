/* fsprobe: a test plugin that tries what the hosts' Landlock sandbox must
 * refuse (test_it_landlock, docs/security-sandbox.md). An invoke of path
 * "/probe" takes one probe per body line and answers 200 with one line per
 * probe, "<probe>: ok" or "<probe>: errno=<n> <text>":
 *   open <path>   open(2) the file read-only and read a byte
 *   write <path>  open(2) the file for writing (created if missing)
 *   kill <pid>    kill(pid, 0)
 *   connect <port>  a TCP connect(2) to 127.0.0.1:<port>
 *   self          open the plugin's own shared object (from the package store)
 * Any other path answers 200 "ok". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openplatform/plugin.h>

static void put(char *out, size_t size, size_t *used, const char *probe, int err)
{
    if (*used >= size)
        return;
    int w =
        err ? snprintf(out + *used, size - *used, "%s: errno=%d %s\n", probe, err, strerror(err))
            : snprintf(out + *used, size - *used, "%s: ok\n", probe);
    if (w > 0)
        *used += (size_t)w;
    if (*used >= size)
        *used = size - 1;
}

static int try_open(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    char c;
    int err = 0;
    if ((flags & O_ACCMODE) == O_RDONLY && read(fd, &c, 1) < 0)
        err = errno;
    close(fd);
    return err;
}

static int run_probe(const char *line)
{
    if (strncmp(line, "open ", 5) == 0)
        return try_open(line + 5, O_RDONLY);
    if (strncmp(line, "write ", 6) == 0)
        return try_open(line + 6, O_WRONLY | O_CREAT);
    if (strncmp(line, "kill ", 5) == 0) {
        pid_t pid = (pid_t)atoi(line + 5);
        if (pid <= 0)
            return EINVAL;
        return kill(pid, 0) == 0 ? 0 : errno;
    }
    if (strncmp(line, "connect ", 8) == 0) {
        int port = atoi(line + 8);
        if (port <= 0 || port > 65535)
            return EINVAL;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return errno;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int err = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : errno;
        close(fd);
        return err;
    }
    if (strcmp(line, "self") == 0) {
        Dl_info info;
        if (!dladdr((void *)run_probe, &info) || !info.dli_fname)
            return ENOENT;
        return try_open(info.dli_fname, O_RDONLY);
    }
    return EINVAL;
}

static int fsprobe_event(op_ctx_t *ctx, const op_request_t *req, op_response_t *resp)
{
    (void)ctx;
    char out[4096] = "ok";
    size_t used = 2;
    if (strcmp(req->path, "/probe") == 0) {
        out[0] = '\0';
        used = 0;
        char *body = strndup(req->body ? (const char *)req->body : "", req->body_len);
        if (!body)
            return -ENOMEM;
        char *save = NULL;
        for (char *l = strtok_r(body, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
            put(out, sizeof out, &used, l, run_probe(l));
        free(body);
    }
    op_response_set_status(resp, 200);
    op_response_add_header(resp, "Content-Type", "text/plain");
    return op_response_set_body(resp, out, used);
}

OP_PLUGIN_DEFINE(.name = "fsprobe", .on_event = fsprobe_event);
