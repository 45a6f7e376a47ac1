/* platformctl: a command-line client of platformd's HTTP API.
 * main parses the command line, finds the command in commands.c's table and
 * runs it; this file also holds the one API call every command goes through
 * and the mapping of its outcome to an exit code (docs/platformctl.md). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

#ifndef PLATFORMCTL_VERSION
#define PLATFORMCTL_VERSION "0.0.0"
#endif

#define DEFAULT_API "http://127.0.0.1:7780"
#define DEFAULT_TOKEN_FILE "./state/api-token"
#define DEFAULT_TIMEOUT_S 60
#define TOKEN_MAX 256

/* Command options by name; the index is the OPT_ bit number. */
static const char *const g_opt_names[] = {"--mode",   "--hostboot", "--config",
                                          "--org",    "--version",  "--path",
                                          "--method", "--data",     "--content-type",
                                          "--follow"};

static int bit_index(unsigned bit)
{
    int i = 0;
    while (bit > 1) {
        bit >>= 1;
        i++;
    }
    return i;
}

const char *ctl_opt(const ctl_t *c, unsigned bit)
{
    return c->opt[bit_index(bit)];
}

const char *ctl_esc(ctl_t *c, const char *s)
{
    if (c->n_pool == CTL_POOL)
        return NULL;
    char *e = ctl_http_escape(s);
    if (e)
        c->pool[c->n_pool++] = e;
    return e;
}

int ctl_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("platformctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry 'platformctl --help'.\n", stderr);
    va_end(ap);
    return CTL_EXIT_USAGE;
}

char *ctl_read_file(const char *path, size_t *len)
{
    int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 == cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                errno = ENOMEM;
                break;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            buf = NULL;
            errno = e;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    int e = errno;
    close(fd);
    errno = e;
    if (buf) {
        buf[n] = 0;
        if (len)
            *len = n;
    }
    return buf;
}

/* The bearer token (first line of the token file) into out. */
static int load_token(const ctl_t *c, char *out, size_t size)
{
    size_t len = 0;
    char *text = ctl_read_file(c->token_file, &len);
    if (!text) {
        fprintf(stderr,
                "platformctl: cannot read the API token file %s: %s (use --token-file or "
                "PLATFORMCTL_TOKEN_FILE)\n",
                c->token_file, strerror(errno));
        return CTL_EXIT_AUTH;
    }
    text[strcspn(text, "\r\n")] = 0;
    bool ok = text[0] && strlen(text) < size;
    if (ok)
        snprintf(out, size, "%s", text);
    explicit_bzero(text, len);
    free(text);
    if (!ok) {
        fprintf(stderr, "platformctl: the API token file %s holds no usable token\n",
                c->token_file);
        return CTL_EXIT_AUTH;
    }
    return CTL_EXIT_OK;
}

static void print_json(json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', stdout);
}

int ctl_http_failure(const ctl_t *c, const ctl_response_t *resp)
{
    json_t *body = json_loadb(resp->body, resp->len, 0, NULL);
    json_t *err = json_object_get(body, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    char text[256] = "";
    if (!msg) {
        /* Not our error shape: the first line of whatever came. */
        snprintf(text, sizeof text, "%.*s", (int)strcspn(resp->body, "\r\n"), resp->body);
        msg = text[0] ? text : "(no message)";
    }
    if (c->json && body)
        print_json(body);
    fflush(stdout);
    fprintf(stderr, "platformctl: %ld %s: %s\n", resp->status, code ? code : "http_error", msg);
    json_decref(body);
    switch (resp->status) {
    case 401:
        return CTL_EXIT_AUTH;
    case 404:
        return CTL_EXIT_NOT_FOUND;
    case 409:
        return CTL_EXIT_CONFLICT;
    default:
        return CTL_EXIT_API;
    }
}

int ctl_call_raw(ctl_t *c, const char *method, const char *path, const char *content_type,
                 const char *body, size_t body_len, ctl_response_t *resp)
{
    memset(resp, 0, sizeof *resp);
    if (!path) {
        fprintf(stderr, "platformctl: out of memory\n");
        return CTL_EXIT_API;
    }
    char token[TOKEN_MAX] = "";
    bool mutating = strcmp(method, "GET") != 0;
    if (mutating) {
        int rc = load_token(c, token, sizeof token);
        if (rc != CTL_EXIT_OK)
            return rc;
    }
    size_t ulen = strlen(c->api) + strlen(path) + 1;
    char *url = malloc(ulen);
    if (!url) {
        fprintf(stderr, "platformctl: out of memory\n");
        return CTL_EXIT_API;
    }
    snprintf(url, ulen, "%s%s", c->api, path);
    ctl_request_t req = {.method = method,
                         .url = url,
                         .token = mutating ? token : NULL,
                         .content_type = content_type,
                         .body = body,
                         .body_len = body_len,
                         .timeout_ms = c->timeout_ms};
    int rc = ctl_http_request(&req, resp);
    explicit_bzero(token, sizeof token);
    if (rc == -EIO) {
        fprintf(stderr, "platformctl: cannot reach the API at %s: %s\n", c->api, resp->error);
        rc = CTL_EXIT_UNREACHABLE;
    } else if (rc < 0) {
        fprintf(stderr, "platformctl: %s %s: out of memory\n", method, url);
        rc = CTL_EXIT_API;
    }
    free(url);
    if (rc != 0)
        ctl_response_clear(resp);
    return rc;
}

int ctl_call(ctl_t *c, const char *method, const char *path, json_t *body, json_t **out)
{
    *out = NULL;
    char *text = NULL;
    if (body && !(text = json_dumps(body, JSON_COMPACT))) {
        fprintf(stderr, "platformctl: out of memory\n");
        return CTL_EXIT_API;
    }
    ctl_response_t resp;
    int rc = ctl_call_raw(c, method, path, text ? "application/json" : NULL, text,
                          text ? strlen(text) : 0, &resp);
    free(text);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (resp.status < 200 || resp.status > 299) {
        rc = ctl_http_failure(c, &resp);
    } else {
        json_error_t jerr;
        *out = json_loadb(resp.body, resp.len, 0, &jerr);
        if (!*out) {
            fprintf(stderr, "platformctl: %ld bad_response: the API answered with no JSON (%s)\n",
                    resp.status, jerr.text);
            rc = CTL_EXIT_API;
        } else if (c->json) {
            print_json(*out);
        }
    }
    ctl_response_clear(&resp);
    return rc;
}

/* ---- command line --------------------------------------------------- */

static void usage(FILE *out)
{
    fputs("Usage: platformctl [OPTIONS] COMMAND [ARGS] [COMMAND OPTIONS]\n"
          "\n"
          "A client of platformd's HTTP API.\n"
          "\n"
          "Options (anywhere on the line):\n"
          "  --api URL          API base URL (env PLATFORMCTL_API; default " DEFAULT_API ")\n"
          "  --token-file PATH  bearer token for mutating commands (env PLATFORMCTL_TOKEN_FILE;\n"
          "                     default " DEFAULT_TOKEN_FILE ")\n"
          "  --json             print the API's JSON response instead of a table\n"
          "  --timeout S        seconds to wait for an answer (default 60)\n"
          "  --help             this text; COMMAND --help for one command\n"
          "  --version          print platformctl's version (before COMMAND)\n"
          "\n"
          "Commands:\n",
          out);
    for (const ctl_cmd_t *cmd = ctl_commands; cmd->name; cmd++) {
        char line[160];
        snprintf(line, sizeof line, "%s%s%s", cmd->name, cmd->args[0] ? " " : "", cmd->args);
        if (strlen(line) > 50)
            fprintf(out, "  %s\n  %-50s %s\n", line, "", cmd->help);
        else
            fprintf(out, "  %-50s %s\n", line, cmd->help);
    }
    fputs("\n"
          "Exit codes: 0 ok, 1 API error, 2 usage error, 3 cannot reach the API,\n"
          "4 not found (404), 5 conflict or invalid transition (409), 6 unauthorized\n"
          "(401, or the token file cannot be read). invoke: 0 when the plugin answered\n"
          "2xx, 1 otherwise. See docs/platformctl.md.\n"
          "\n"
          "  platformctl keygen --secret FILE [--public FILE] [--force]\n"
          "                     create a CURVE key pair for the bus (local; docs/security.md)\n",
          out);
}

static const char *const g_global_with_value[] = {"--api", "--token-file", "--timeout"};

/* "--name=value" or "--name value": the value, advancing *i; NULL (after a
 * usage message) when missing. */
static const char *option_value(int argc, char **argv, int *i, const char *name, bool *bad)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc) {
        ctl_usage_error("option %s needs a value", name);
        *bad = true;
        return NULL;
    }
    return argv[++*i];
}

static bool option_is(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == 0 || arg[n] == '=');
}

static int set_global(ctl_t *c, const char *name, const char *value)
{
    if (strcmp(name, "--api") == 0) {
        size_t n = strlen(value);
        while (n > 0 && value[n - 1] == '/')
            n--;
        if (n == 0 || n >= sizeof c->api)
            return ctl_usage_error("bad --api URL \"%s\"", value);
        snprintf(c->api, sizeof c->api, "%.*s", (int)n, value);
    } else if (strcmp(name, "--token-file") == 0) {
        if (!value[0])
            return ctl_usage_error("--token-file needs a path");
        c->token_file = value;
    } else {
        char *end;
        errno = 0;
        double s = strtod(value, &end);
        if (errno || end == value || *end || !(s > 0) || s > 86400)
            return ctl_usage_error("bad --timeout \"%s\" (seconds, > 0, at most 86400)", value);
        c->timeout_ms = (long)(s * 1000.0);
        if (c->timeout_ms < 1)
            c->timeout_ms = 1;
    }
    return CTL_EXIT_OK;
}

/* Number of words in a command name. */
static int words(const char *name)
{
    return strchr(name, ' ') ? 2 : 1;
}

static const ctl_cmd_t *find_command(char **pos, int npos)
{
    for (const ctl_cmd_t *cmd = ctl_commands; cmd->name; cmd++) {
        const char *sp = strchr(cmd->name, ' ');
        if (!sp) {
            if (strcmp(cmd->name, pos[0]) == 0)
                return cmd;
            continue;
        }
        size_t l = (size_t)(sp - cmd->name);
        if (npos >= 2 && strlen(pos[0]) == l && strncmp(cmd->name, pos[0], l) == 0 &&
            strcmp(sp + 1, pos[1]) == 0)
            return cmd;
    }
    return NULL;
}

/* The subcommands of a two-word group ("get, start, delete"), or "" when
 * `word` names no group. */
static void group_words(const char *word, char *out, size_t size)
{
    out[0] = 0;
    for (const ctl_cmd_t *cmd = ctl_commands; cmd->name; cmd++) {
        const char *sp = strchr(cmd->name, ' ');
        size_t l = sp ? (size_t)(sp - cmd->name) : 0;
        if (sp && strlen(word) == l && strncmp(cmd->name, word, l) == 0) {
            size_t used = strlen(out);
            snprintf(out + used, size - used, "%s%s", used ? ", " : "", sp + 1);
        }
    }
}

static void ctl_clear(ctl_t *c)
{
    for (size_t i = 0; i < c->n_pool; i++)
        free(c->pool[i]);
    c->n_pool = 0;
}

static int run(int argc, char **argv)
{
    ctl_t c = {.timeout_ms = DEFAULT_TIMEOUT_S * 1000L};
    const char *env_api = getenv("PLATFORMCTL_API");
    const char *env_token = getenv("PLATFORMCTL_TOKEN_FILE");
    int rc = set_global(&c, "--api", env_api && env_api[0] ? env_api : DEFAULT_API);
    if (rc != CTL_EXIT_OK)
        return rc;
    c.token_file = env_token && env_token[0] ? env_token : DEFAULT_TOKEN_FILE;

    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) {
        fprintf(stderr, "platformctl: out of memory\n");
        return CTL_EXIT_API;
    }
    int npos = 0;
    bool help = false, bad = false, only_positional = false;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == 0) { /* "-" is an argument */
            pos[npos++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help = true;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            c.json = true;
            continue;
        }
        if (strcmp(a, "--version") == 0 && npos == 0) {
            printf("platformctl %s\n", PLATFORMCTL_VERSION);
            free(pos);
            return CTL_EXIT_OK;
        }
        if (strcmp(a, "--follow") == 0 || strcmp(a, "-f") == 0) { /* a flag, no value */
            c.opt[bit_index(OPT_FOLLOW)] = "";
            c.opts_given |= OPT_FOLLOW;
            continue;
        }
        bool known = false;
        for (size_t g = 0; g < sizeof g_global_with_value / sizeof *g_global_with_value; g++) {
            if (option_is(a, g_global_with_value[g])) {
                known = true;
                const char *v = option_value(argc, argv, &i, g_global_with_value[g], &bad);
                if (v && set_global(&c, g_global_with_value[g], v) != CTL_EXIT_OK)
                    bad = true;
                break;
            }
        }
        for (size_t o = 0; !known && o < sizeof g_opt_names / sizeof *g_opt_names; o++) {
            if (option_is(a, g_opt_names[o])) {
                known = true;
                const char *v = option_value(argc, argv, &i, g_opt_names[o], &bad);
                c.opt[o] = v;
                c.opts_given |= 1u << o;
            }
        }
        if (!known) {
            ctl_usage_error("unknown option \"%s\"", a);
            bad = true;
        }
    }
    const ctl_cmd_t *cmd = NULL;
    if (bad) {
        rc = CTL_EXIT_USAGE;
    } else if (npos == 0) {
        if (help) {
            usage(stdout);
            rc = CTL_EXIT_OK;
        } else {
            rc = ctl_usage_error("no command given");
        }
    } else if (!(cmd = find_command(pos, npos))) {
        char group[128];
        group_words(pos[0], group, sizeof group);
        if (group[0] && npos >= 2)
            rc =
                ctl_usage_error("unknown command \"%s %s\" (%s %s)", pos[0], pos[1], pos[0], group);
        else if (group[0])
            rc = ctl_usage_error("\"%s\" needs a subcommand: %s", pos[0], group);
        else
            rc = ctl_usage_error("unknown command \"%s\"", pos[0]);
    } else if (help) {
        printf("Usage: platformctl [OPTIONS] %s%s%s\n  %s\n", cmd->name, cmd->args[0] ? " " : "",
               cmd->args, cmd->help);
        rc = CTL_EXIT_OK;
    } else if (npos - words(cmd->name) != cmd->nargs) {
        rc = ctl_usage_error("usage: platformctl %s %s", cmd->name, cmd->args);
    } else if (c.opts_given & ~cmd->opts) {
        unsigned extra = c.opts_given & ~cmd->opts;
        rc = ctl_usage_error("option %s does not apply to \"%s\"",
                             g_opt_names[bit_index(extra & -extra)], cmd->name);
    } else {
        rc = cmd->run(&c, pos + words(cmd->name));
    }
    fflush(stdout);
    ctl_clear(&c);
    free(pos);
    return rc;
}

int main(int argc, char **argv)
{
    /* Local, no API: a CURVE key pair for the bus (keygen.c). */
    if (argc > 1 && strcmp(argv[1], "keygen") == 0)
        return ctl_keygen_main(argc - 2, argv + 2);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "platformctl: cannot initialise libcurl\n");
        return CTL_EXIT_API;
    }
    int rc = run(argc, argv);
    curl_global_cleanup();
    return rc;
}
