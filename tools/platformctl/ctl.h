/* platformctl internals shared by main (platformctl.c: options, the API
 * call and its error mapping) and the commands (commands.c). */
#ifndef PLATFORMCTL_CTL_H
#define PLATFORMCTL_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* Exit codes (docs/platformctl.md): scripts rely on them. */
enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_API = 1,         /* any other HTTP error, a bad response, a failed batch item */
    CTL_EXIT_USAGE = 2,       /* bad command line, unreadable input file */
    CTL_EXIT_UNREACHABLE = 3, /* no response: refused, timed out, bad URL */
    CTL_EXIT_NOT_FOUND = 4,   /* 404 */
    CTL_EXIT_CONFLICT = 5,    /* 409: invalid transition, busy, conflict */
    CTL_EXIT_AUTH = 6,        /* 401, or the token file cannot be read */
};

/* Command options: which ones a command accepts. */
enum {
    OPT_MODE = 1 << 0,
    OPT_HOSTBOOT = 1 << 1,
    OPT_CONFIG = 1 << 2,
    OPT_ORG = 1 << 3,
    OPT_VERSION = 1 << 4,
    OPT_PATH = 1 << 5,
    OPT_METHOD = 1 << 6,
    OPT_DATA = 1 << 7,
    OPT_CONTENT_TYPE = 1 << 8,
    OPT_FOLLOW = 1 << 9, /* a flag without a value (logs --follow) */
};

#define CTL_POOL 8

/* The parsed command line. Strings are borrowed from argv/environ except
 * those in `pool`. */
typedef struct {
    char api[1024];         /* base URL without trailing '/' */
    const char *token_file; /* for mutating requests */
    bool json;              /* print the response JSON as received */
    long timeout_ms;
    const char *opt[10];  /* command options, indexed by the OPT_ bit number */
    unsigned opts_given;  /* OPT_ bits seen */
    char *pool[CTL_POOL]; /* escaped path segments, freed at exit */
    size_t n_pool;
} ctl_t;

/* The value of command option `bit` (one OPT_ flag), NULL when not given. */
const char *ctl_opt(const ctl_t *c, unsigned bit);

/* `s` escaped for a URL path segment or query value; owned by c (NULL on
 * ENOMEM, which ctl_call then reports). */
const char *ctl_esc(ctl_t *c, const char *s);

/* Print a usage error ("platformctl: <message>", then a hint) to stderr;
 * returns CTL_EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One JSON API call: `path` under the API base ("/api/v1/..."), `body`
 * (borrowed, may be NULL) sent as JSON. On a 2xx JSON answer returns
 * CTL_EXIT_OK and *out (owned by the caller) — already printed when --json.
 * Otherwise prints the error line and returns the exit code. Mutating
 * methods send the token from the token file. */
int ctl_call(ctl_t *c, const char *method, const char *path, json_t *body, json_t **out);

/* A raw call (invoke): like ctl_call but the response is returned as is in
 * *resp (caller clears it) whenever one came; returns CTL_EXIT_OK then, or
 * the exit code of a failure to send (token, transport) after printing it. */
int ctl_call_raw(ctl_t *c, const char *method, const char *path, const char *content_type,
                 const char *body, size_t body_len, ctl_response_t *resp);

/* The exit code for an HTTP error status, after printing its error line
 * from `resp`'s body ({"error":{"code","message"}} or plain text). */
int ctl_http_failure(const ctl_t *c, const ctl_response_t *resp);

/* Read a whole file ("-" = stdin) into a malloc'd NUL-terminated buffer;
 * NULL with errno set. */
char *ctl_read_file(const char *path, size_t *len);

/* ---- commands (commands.c) ------------------------------------------ */

typedef int (*ctl_cmd_fn)(ctl_t *c, char **args);

typedef struct {
    const char *name; /* one or two words: "instances", "host get" */
    const char *args; /* usage of the positional arguments and options */
    int nargs;        /* positional arguments after the name */
    unsigned opts;    /* OPT_ flags accepted */
    ctl_cmd_fn run;
    const char *help; /* one line */
} ctl_cmd_t;

/* The command table, terminated by a NULL name. */
extern const ctl_cmd_t ctl_commands[];

/* keygen.c: `platformctl keygen ARGS` (args after "keygen"). */
int ctl_keygen_main(int argc, char **argv);

/* diag.c: `diag`, `logs ID [--follow]`, `trace ID on|off`. */
int ctl_cmd_diag(ctl_t *c, char **args);
int ctl_cmd_logs(ctl_t *c, char **args);
int ctl_cmd_trace(ctl_t *c, char **args);

#endif
