/* platformctl's commands: one function per command, each one API route
 * (platformd/httpapi.c, platformd/api_plugins.c), and the table main
 * dispatches through. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "table.h"

/* "/api/v1/<a>/<b>..." with each segment escaped; NULL on ENOMEM (ctl_call
 * reports it). Owned by c. */
static const char *api_path(ctl_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static const char *api_path(ctl_t *c, const char *fmt, ...)
{
    if (c->n_pool == CTL_POOL)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    char *p = NULL;
    int n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    c->pool[c->n_pool++] = p;
    return p;
}

/* An escaped segment, "" when out of memory (the path then fails to match
 * any route rather than crashing; practically unreachable). */
static const char *seg(ctl_t *c, const char *s)
{
    const char *e = ctl_esc(c, s);
    return e ? e : "";
}

/* ---- output helpers ----------------------------------------------------- */

/* A duration in ms as "850ms", "12.3s", "5m03s", "2h05m", "3d04h". */
static void fmt_duration(json_t *v, char *out, size_t size)
{
    if (!json_is_integer(v)) {
        snprintf(out, size, "-");
        return;
    }
    long long ms = (long long)json_integer_value(v);
    long long s = ms / 1000;
    if (ms < 1000)
        snprintf(out, size, "%lldms", ms);
    else if (s < 60)
        snprintf(out, size, "%lld.%llds", s, (ms % 1000) / 100);
    else if (s < 3600)
        snprintf(out, size, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, size, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
    else
        snprintf(out, size, "%lldd%02lldh", s / 86400, (s % 86400) / 3600);
}

/* Wall-clock ms since the epoch as UTC "2024-05-01T12:00:00Z". */
static void fmt_time(json_t *v, char *out, size_t size)
{
    if (!json_is_integer(v)) {
        snprintf(out, size, "-");
        return;
    }
    time_t t = (time_t)(json_integer_value(v) / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, size, "-");
}

static int oom(void)
{
    fprintf(stderr, "platformctl: out of memory\n");
    return CTL_EXIT_API;
}

/* Print `list` (an array of objects) as a table: column i shows member
 * keys[i] of each element. */
static int print_list(json_t *list, size_t ncols, const char *const *headers,
                      const char *const *keys)
{
    ctl_table_t *t = ctl_table_new(ncols, headers);
    if (!t)
        return oom();
    size_t i;
    json_t *item;
    int rc = 0;
    json_array_foreach(list, i, item)
    {
        char *cells[16] = {0};
        for (size_t k = 0; k < ncols && rc == 0; k++)
            if (!(cells[k] = ctl_cell(json_object_get(item, keys[k]))))
                rc = -ENOMEM;
        if (rc == 0)
            rc = ctl_table_add(t, (const char *const *)cells);
        for (size_t k = 0; k < ncols; k++)
            free(cells[k]);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
    return rc < 0 ? oom() : CTL_EXIT_OK;
}

/* Member `key` of the answer, which must be of `type` (JSON_OBJECT,
 * JSON_ARRAY); NULL after an error line otherwise. */
static json_t *member(json_t *root, const char *key, json_type type)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_typeof(v) != type) {
        fprintf(stderr, "platformctl: 200 bad_response: the answer has no \"%s\" %s\n", key,
                type == JSON_ARRAY ? "array" : "object");
        return NULL;
    }
    return v;
}

/* Call, then show member `key` as a key/value listing. */
static int call_show(ctl_t *c, const char *method, const char *path, json_t *body, const char *key)
{
    json_t *out;
    int rc = ctl_call(c, method, path, body, &out);
    json_decref(body);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(out);
        return rc;
    }
    json_t *obj = member(out, key, JSON_OBJECT);
    if (obj)
        ctl_print_object(obj, stdout);
    else
        rc = CTL_EXIT_API;
    json_decref(out);
    return rc;
}

/* ---- status, hostboots, hosts ---------------------------------------------- */

static int cmd_status(ctl_t *c, char **args)
{
    json_t *out;
    int rc = ctl_call(c, "GET", "/api/v1/status", NULL, &out);
    if (rc == CTL_EXIT_OK && !c->json) {
        char up[32];
        fmt_duration(json_object_get(out, "uptime_ms"), up, sizeof up);
        json_object_set_new(out, "uptime", json_string(up));
        json_object_del(out, "uptime_ms");
        ctl_print_object(out, stdout);
    }
    json_decref(out);
    return rc;
}

static int cmd_hostboots(ctl_t *c, char **args)
{
    json_t *out;
    int rc = ctl_call(c, "GET", "/api/v1/hostboots", NULL, &out);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(out);
        return rc;
    }
    json_t *list = member(out, "hostboots", JSON_ARRAY);
    static const char *const headers[] = {"ID",       "NAME",  "VERSION",  "STATE",
                                          "RUNTIMES", "HOSTS", "HEARTBEAT"};
    ctl_table_t *t = list ? ctl_table_new(7, headers) : NULL;
    rc = !list ? CTL_EXIT_API : !t ? oom() : CTL_EXIT_OK;
    size_t i;
    json_t *hb;
    json_array_foreach(rc == CTL_EXIT_OK ? list : NULL, i, hb)
    {
        char runtimes[512] = "", hosts[32], beat[32];
        size_t j;
        json_t *r;
        json_array_foreach(json_object_get(hb, "runtimes"), j, r)
        {
            size_t used = strlen(runtimes);
            snprintf(runtimes + used, sizeof runtimes - used, "%s%s/%s", used ? "," : "",
                     json_string_value(json_object_get(r, "language")) ?: "?",
                     json_string_value(json_object_get(r, "version")) ?: "?");
        }
        snprintf(hosts, sizeof hosts, "%zu", json_array_size(json_object_get(hb, "hosts")));
        fmt_duration(json_object_get(hb, "last_heartbeat_age_ms"), beat, sizeof beat);
        const char *cells[] = {json_string_value(json_object_get(hb, "id")),
                               json_string_value(json_object_get(hb, "name")),
                               json_string_value(json_object_get(hb, "version")),
                               json_string_value(json_object_get(hb, "state")),
                               runtimes[0] ? runtimes : NULL,
                               hosts,
                               beat};
        if (ctl_table_add(t, cells) < 0) {
            rc = oom();
            break;
        }
    }
    if (rc == CTL_EXIT_OK)
        ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
    json_decref(out);
    return rc;
}

static int cmd_hosts(ctl_t *c, char **args)
{
    json_t *out;
    int rc = ctl_call(c, "GET", "/api/v1/hosts", NULL, &out);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(out);
        return rc;
    }
    json_t *list = member(out, "hosts", JSON_ARRAY);
    static const char *const headers[] = {"ID",       "STATE", "MODE",  "RUNTIME",
                                          "HOSTBOOT", "PID",   "UPTIME"};
    ctl_table_t *t = list ? ctl_table_new(7, headers) : NULL;
    rc = !list ? CTL_EXIT_API : !t ? oom() : CTL_EXIT_OK;
    size_t i;
    json_t *h;
    json_array_foreach(rc == CTL_EXIT_OK ? list : NULL, i, h)
    {
        char runtime[160], pid[32], up[32];
        snprintf(runtime, sizeof runtime, "%s/%s",
                 json_string_value(json_object_get(h, "language")) ?: "?",
                 json_string_value(json_object_get(h, "version")) ?: "?");
        snprintf(pid, sizeof pid, "%lld", (long long)json_integer_value(json_object_get(h, "pid")));
        fmt_duration(json_object_get(h, "uptime_ms"), up, sizeof up);
        const char *mode = json_string_value(json_object_get(h, "mode"));
        const char *cells[] = {json_string_value(json_object_get(h, "id")),
                               json_string_value(json_object_get(h, "state")),
                               json_is_true(json_object_get(h, "dev")) ? "dev" : mode,
                               runtime,
                               json_string_value(json_object_get(h, "hostboot")),
                               pid,
                               up};
        if (ctl_table_add(t, cells) < 0) {
            rc = oom();
            break;
        }
    }
    if (rc == CTL_EXIT_OK)
        ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
    json_decref(out);
    return rc;
}

static int cmd_host_get(ctl_t *c, char **args)
{
    return call_show(c, "GET", api_path(c, "/api/v1/hosts/%s", seg(c, args[0])), NULL, "host");
}

static int cmd_host_start(ctl_t *c, char **args)
{
    json_t *body = json_pack("{s:s, s:s}", "language", args[0], "version", args[1]);
    if (!body)
        return oom();
    if (ctl_opt(c, OPT_MODE))
        json_object_set_new(body, "mode", json_string(ctl_opt(c, OPT_MODE)));
    if (ctl_opt(c, OPT_HOSTBOOT))
        json_object_set_new(body, "hostboot", json_string(ctl_opt(c, OPT_HOSTBOOT)));
    return call_show(c, "POST", "/api/v1/hosts", body, "host");
}

static int cmd_host_delete(ctl_t *c, char **args)
{
    return call_show(c, "DELETE", api_path(c, "/api/v1/hosts/%s", seg(c, args[0])), NULL, "host");
}

/* ---- packages ------------------------------------------------------------ */

static int cmd_package_register(ctl_t *c, char **args)
{
    /* platformd resolves the path in its own working directory: send ours,
     * absolute. */
    char abs[PATH_MAX];
    if (!realpath(args[0], abs)) {
        fprintf(stderr, "platformctl: package directory %s: %s\n", args[0], strerror(errno));
        return CTL_EXIT_USAGE;
    }
    json_t *body = json_pack("{s:s}", "path", abs);
    if (!body)
        return oom();
    return call_show(c, "POST", "/api/v1/packages", body, "package");
}

static int cmd_packages(ctl_t *c, char **args)
{
    json_t *out;
    int rc = ctl_call(c, "GET", "/api/v1/packages", NULL, &out);
    if (rc == CTL_EXIT_OK && !c->json) {
        json_t *list = member(out, "packages", JSON_ARRAY);
        static const char *const headers[] = {"ID",   "VERSION", "LANGUAGE", "RUNTIME",
                                              "MODE", "ENTRY",   "DIGEST"};
        static const char *const keys[] = {"id",        "version", "language", "runtime_version",
                                           "host_mode", "entry",   "digest"};
        rc = list ? print_list(list, 7, headers, keys) : CTL_EXIT_API;
    }
    json_decref(out);
    return rc;
}

/* ---- instances ----------------------------------------------------------- */

static const char *const g_inst_headers[] = {"UUID", "PLUGIN", "VERSION", "ORG", "STATE", "HOST"};
static const char *const g_inst_keys[] = {"uuid", "plugin", "version", "org", "state", "host"};

/* --config JSON|@file as a JSON object; NULL after a usage message. */
static json_t *config_arg(const char *arg, int *rc)
{
    char *text = NULL;
    const char *src = arg;
    if (arg[0] == '@') {
        if (!(text = ctl_read_file(arg + 1, NULL))) {
            *rc = ctl_usage_error("--config: cannot read %s: %s", arg + 1, strerror(errno));
            return NULL;
        }
        src = text;
    }
    json_error_t jerr;
    json_t *cfg = json_loads(src, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!json_is_object(cfg)) {
        if (cfg)
            *rc = ctl_usage_error("--config must be a JSON object");
        else
            *rc = ctl_usage_error("--config is not JSON: %s (line %d, column %d)", jerr.text,
                                  jerr.line, jerr.column);
        json_decref(cfg);
        return NULL;
    }
    return cfg;
}

static int cmd_install(ctl_t *c, char **args)
{
    json_t *cfg = NULL;
    int rc = CTL_EXIT_OK;
    if (ctl_opt(c, OPT_CONFIG) && !(cfg = config_arg(ctl_opt(c, OPT_CONFIG), &rc)))
        return rc;
    json_t *body =
        json_pack("{s:s, s:s, s:s}", "plugin", args[0], "version", args[1], "org", args[2]);
    if (!body) {
        json_decref(cfg);
        return oom();
    }
    if (cfg)
        json_object_set_new(body, "config", cfg);
    return call_show(c, "POST", "/api/v1/instances", body, "instance");
}

static int cmd_instances(ctl_t *c, char **args)
{
    const char *org = ctl_opt(c, OPT_ORG);
    const char *path =
        org ? api_path(c, "/api/v1/instances?org=%s", seg(c, org)) : "/api/v1/instances";
    json_t *out;
    int rc = ctl_call(c, "GET", path, NULL, &out);
    if (rc == CTL_EXIT_OK && !c->json) {
        json_t *list = member(out, "instances", JSON_ARRAY);
        rc = list ? print_list(list, 6, g_inst_headers, g_inst_keys) : CTL_EXIT_API;
    }
    json_decref(out);
    return rc;
}

static int cmd_instance_get(ctl_t *c, char **args)
{
    return call_show(c, "GET", api_path(c, "/api/v1/instances/%s", seg(c, args[0])), NULL,
                     "instance");
}

static int cmd_instance_actions(ctl_t *c, char **args)
{
    json_t *out;
    int rc = ctl_call(c, "GET", api_path(c, "/api/v1/instances/%s/actions", seg(c, args[0])), NULL,
                      &out);
    if (rc != CTL_EXIT_OK || c->json) {
        json_decref(out);
        return rc;
    }
    json_t *list = member(out, "actions", JSON_ARRAY);
    static const char *const headers[] = {"ID", "ACTION", "RESULT", "AT", "ERROR"};
    ctl_table_t *t = list ? ctl_table_new(5, headers) : NULL;
    rc = !list ? CTL_EXIT_API : !t ? oom() : CTL_EXIT_OK;
    size_t i;
    json_t *a;
    json_array_foreach(rc == CTL_EXIT_OK ? list : NULL, i, a)
    {
        char id[32], at[32];
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(a, "id")));
        fmt_time(json_object_get(a, "at"), at, sizeof at);
        const char *err = json_string_value(json_object_get(a, "error"));
        const char *cells[] = {id, json_string_value(json_object_get(a, "action")),
                               json_string_value(json_object_get(a, "result")), at,
                               err && err[0] ? err : NULL};
        if (ctl_table_add(t, cells) < 0) {
            rc = oom();
            break;
        }
    }
    if (rc == CTL_EXIT_OK)
        ctl_table_print(t, stdout);
    ctl_table_destroy(&t);
    json_decref(out);
    return rc;
}

/* POST /api/v1/instances/{uuid}/{action}; shows the instance as one row. */
static int instance_action(ctl_t *c, const char *uuid, const char *action, json_t *body)
{
    json_t *out;
    int rc = ctl_call(c, "POST", api_path(c, "/api/v1/instances/%s/%s", seg(c, uuid), action), body,
                      &out);
    json_decref(body);
    if (rc == CTL_EXIT_OK && !c->json) {
        json_t *inst = json_object_get(out, "instance");
        if (json_is_true(json_object_get(out, "removed")) && !json_is_object(inst)) {
            printf("removed %s\n", uuid);
        } else if (json_is_object(inst)) {
            json_t *one = json_pack("[O]", inst);
            rc = one ? print_list(one, 6, g_inst_headers, g_inst_keys) : oom();
            json_decref(one);
        } else {
            rc = member(out, "instance", JSON_OBJECT) ? CTL_EXIT_OK : CTL_EXIT_API;
        }
    }
    json_decref(out);
    return rc;
}

static int cmd_enable(ctl_t *c, char **args)
{
    return instance_action(c, args[0], "enable", NULL);
}
static int cmd_disable(ctl_t *c, char **args)
{
    return instance_action(c, args[0], "disable", NULL);
}
static int cmd_start(ctl_t *c, char **args)
{
    return instance_action(c, args[0], "start", NULL);
}
static int cmd_stop(ctl_t *c, char **args)
{
    return instance_action(c, args[0], "stop", NULL);
}
static int cmd_uninstall(ctl_t *c, char **args)
{
    return instance_action(c, args[0], "uninstall", NULL);
}

static int cmd_upgrade(ctl_t *c, char **args)
{
    json_t *body = json_pack("{s:s}", "version", args[1]);
    return body ? instance_action(c, args[0], "upgrade", body) : oom();
}

/* ---- org batch actions ---------------------------------------------------------- */

static int cmd_org(ctl_t *c, char **args)
{
    static const char *const actions[] = {"enable",  "disable",   "start", "stop",
                                          "upgrade", "uninstall", NULL};
    const char *action = args[1];
    bool known = false;
    for (const char *const *a = actions; *a && !known; a++)
        known = strcmp(*a, action) == 0;
    if (!known)
        return ctl_usage_error("unknown org action \"%s\" (enable, disable, start, stop, "
                               "upgrade, uninstall)",
                               action);
    const char *version = ctl_opt(c, OPT_VERSION);
    bool upgrade = strcmp(action, "upgrade") == 0;
    if (upgrade != (version != NULL))
        return ctl_usage_error(upgrade ? "org ... upgrade needs --version V"
                                       : "--version applies to upgrade only");
    json_t *body = version ? json_pack("{s:s}", "version", version) : NULL;
    if (version && !body)
        return oom();
    json_t *out;
    int rc =
        ctl_call(c, "POST", api_path(c, "/api/v1/orgs/%s/%s", seg(c, args[0]), action), body, &out);
    json_decref(body);
    if (rc != CTL_EXIT_OK) {
        json_decref(out);
        return rc;
    }
    json_int_t failed = json_integer_value(json_object_get(out, "failed"));
    if (!c->json) {
        printf("org %s %s: %lld instances, %lld ok, %lld failed\n", args[0], action,
               (long long)json_integer_value(json_object_get(out, "total")),
               (long long)json_integer_value(json_object_get(out, "ok")), (long long)failed);
        json_t *list = member(out, "results", JSON_ARRAY);
        static const char *const headers[] = {"UUID", "OK", "STATUS", "STATE", "ERROR"};
        static const char *const keys[] = {"uuid", "ok", "status", "state", "error"};
        rc = list ? print_list(list, 5, headers, keys) : CTL_EXIT_API;
    }
    json_decref(out);
    if (rc == CTL_EXIT_OK && failed > 0) {
        fprintf(stderr, "platformctl: org %s %s: %lld instance(s) failed\n", args[0], action,
                (long long)failed);
        rc = CTL_EXIT_API;
    }
    return rc;
}

/* ---- invoke ------------------------------------------------------------------------ */

/* True when `resp` is the platform's own error ({"error":{"code",...}} as
 * application/json), not an answer of the plugin. */
static bool platform_error(const ctl_response_t *resp)
{
    if (resp->status >= 200 && resp->status <= 299)
        return false;
    if (strncmp(resp->content_type, "application/json", 16) != 0)
        return false;
    json_t *body = json_loadb(resp->body, resp->len, 0, NULL);
    json_t *err = json_object_get(body, "error");
    bool ours = json_object_size(body) == 1 && json_is_string(json_object_get(err, "code")) &&
                json_is_string(json_object_get(err, "message"));
    json_decref(body);
    return ours;
}

static int cmd_invoke(ctl_t *c, char **args)
{
    const char *ipath = ctl_opt(c, OPT_PATH), *method = ctl_opt(c, OPT_METHOD);
    const char *data = ctl_opt(c, OPT_DATA), *ctype = ctl_opt(c, OPT_CONTENT_TYPE);
    char *file = NULL;
    size_t len = data ? strlen(data) : 0;
    if (data && data[0] == '@') {
        if (!(file = ctl_read_file(data + 1, &len)))
            return ctl_usage_error("--data: cannot read %s: %s", data + 1, strerror(errno));
        data = file;
    }
    if (ipath && ipath[0] != '/') {
        free(file);
        return ctl_usage_error("--path must start with '/'");
    }
    const char *path = api_path(c, "/api/v1/instances/%s/invoke%s%s%s%s%s", seg(c, args[0]),
                                ipath || method ? "?" : "", ipath ? "path=" : "",
                                ipath ? seg(c, ipath) : "", ipath && method ? "&" : "",
                                method ? api_path(c, "method=%s", seg(c, method)) : "");
    ctl_response_t resp;
    int rc =
        ctl_call_raw(c, "POST", path, ctype ? ctype : (data ? "application/octet-stream" : NULL),
                     data, len, &resp);
    free(file);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (platform_error(&resp)) {
        rc = ctl_http_failure(c, &resp);
    } else {
        /* The plugin's answer, byte for byte. */
        if (resp.len && fwrite(resp.body, 1, resp.len, stdout) != resp.len) {
            fprintf(stderr, "platformctl: writing the answer: %s\n", strerror(errno));
            rc = CTL_EXIT_API;
        } else if (resp.status < 200 || resp.status > 299) {
            fflush(stdout);
            fprintf(stderr, "platformctl: the plugin answered %ld\n", resp.status);
            rc = CTL_EXIT_API;
        }
    }
    ctl_response_clear(&resp);
    return rc;
}

/* ---- the table --------------------------------------------------------------------- */

const ctl_cmd_t ctl_commands[] = {
    {"status", "", 0, 0, cmd_status, "platform version, uptime and counters"},
    {"hostboots", "", 0, 0, cmd_hostboots, "list host managers"},
    {"hosts", "", 0, 0, cmd_hosts, "list plugin hosts"},
    {"host get", "ID", 1, 0, cmd_host_get, "show one host"},
    {"host start", "LANG VERSION [--mode M] [--hostboot ID]", 2, OPT_MODE | OPT_HOSTBOOT,
     cmd_host_start, "start a host"},
    {"host delete", "ID", 1, 0, cmd_host_delete, "stop a host"},
    {"package register", "DIR", 1, 0, cmd_package_register,
     "register the package in DIR (copied into the store)"},
    {"packages", "", 0, 0, cmd_packages, "list registered packages"},
    {"install", "PLUGIN VERSION ORG [--config JSON|@file]", 3, OPT_CONFIG, cmd_install,
     "install an instance of a plugin for an org"},
    {"instances", "[--org ORG]", 0, OPT_ORG, cmd_instances, "list instances"},
    {"instance get", "UUID", 1, 0, cmd_instance_get, "show one instance"},
    {"instance actions", "UUID", 1, 0, cmd_instance_actions, "an instance's recent actions"},
    {"enable", "UUID", 1, 0, cmd_enable, "enable an instance"},
    {"disable", "UUID", 1, 0, cmd_disable, "disable an instance"},
    {"start", "UUID", 1, 0, cmd_start, "start an instance"},
    {"stop", "UUID", 1, 0, cmd_stop, "stop an instance"},
    {"uninstall", "UUID", 1, 0, cmd_uninstall, "uninstall (remove) an instance"},
    {"upgrade", "UUID VERSION", 2, 0, cmd_upgrade, "upgrade an instance to VERSION"},
    {"org", "ORG ACTION [--version V]", 2, OPT_VERSION, cmd_org,
     "one action on every instance of ORG"},
    {"invoke", "UUID [--path P] [--method M] [--data STRING|@file] [--content-type T]", 1,
     OPT_PATH | OPT_METHOD | OPT_DATA | OPT_CONTENT_TYPE, cmd_invoke,
     "send an event to an instance; prints the plugin's answer"},
    {"diag", "", 0, 0, ctl_cmd_diag, "everything the platform knows about itself, for debugging"},
    {"logs", "HOST_ID [--follow]", 1, OPT_FOLLOW, ctl_cmd_logs,
     "a host's captured output (--follow: keep reading until the host ends)"},
    {"trace", "ID on|off", 2, 0, ctl_cmd_trace,
     "log the bus messages of an instance or host (host-<uuid>) in platformd's log"},
    {NULL, NULL, 0, 0, NULL, NULL},
};
