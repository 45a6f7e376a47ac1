/* Declarative JSON configuration (see plat/config.h).
 *
 * Loading: parse with jansson, fill the table's defaults, then walk the JSON
 * object in document order (so the first error reported is the first one in
 * the file), then check required keys in table order. Any failure frees what
 * was allocated and zeroes every field the table describes. */
#include "plat/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "plat/log.h"

#define FIELD_PTR(base, f) ((void *)((char *)(base) + (f)->offset))
#define COUNT_PTR(base, f) ((size_t *)(void *)((char *)(base) + (f)->count_offset))

/* ---- errors ---------------------------------------------------------- */

static void err_set(plat_cfg_error_t *err, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_set(plat_cfg_error_t *err, const char *key, const char *fmt, ...)
{
    va_list ap;
    snprintf(err->key, sizeof err->key, "%s", key ? key : "");
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof err->reason, fmt, ap);
    va_end(ap);
}

static void err_init(plat_cfg_error_t *err, const char *file)
{
    memset(err, 0, sizeof *err);
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

static const char *cfg_type_name(plat_cfg_type_t t)
{
    switch (t) {
    case PLAT_CFG_STRING:
        return "string";
    case PLAT_CFG_INT:
        return "integer";
    case PLAT_CFG_BOOL:
        return "boolean";
    case PLAT_CFG_OBJECT:
        return "object";
    case PLAT_CFG_STRING_ARRAY:
    case PLAT_CFG_OBJECT_ARRAY:
        return "array";
    }
    return "unknown";
}

/* Key paths longer than the error's key buffer are cut short; the
 * truncation is deliberate (a prefix still locates the key). */
static void path_join(char *dst, size_t size, const char *parent, const char *key)
{
    int n = parent[0] ? snprintf(dst, size, "%s.%s", parent, key) : snprintf(dst, size, "%s", key);
    if (n < 0 && size > 0)
        dst[0] = '\0';
}

static void path_index(char *dst, size_t size, const char *parent, size_t i)
{
    int n = snprintf(dst, size, "%s[%zu]", parent, i);
    if (n < 0 && size > 0)
        dst[0] = '\0';
}

/* ---- defaults and free ---------------------------------------------- */

/* 0 or -ENOMEM (a STRING default could not be copied). */
static int fill_defaults(const plat_cfg_field_t *table, void *base)
{
    for (const plat_cfg_field_t *f = table; f->key; f++) {
        void *p = FIELD_PTR(base, f);
        switch (f->type) {
        case PLAT_CFG_STRING: {
            char **s = p;
            free(*s);
            *s = NULL;
            if (f->def_str) {
                *s = strdup(f->def_str);
                if (!*s)
                    return -ENOMEM;
            }
            break;
        }
        case PLAT_CFG_INT:
            *(int64_t *)p = f->def_int;
            break;
        case PLAT_CFG_BOOL:
            *(bool *)p = f->def_bool;
            break;
        case PLAT_CFG_OBJECT:
            if (f->children) {
                int r = fill_defaults(f->children, p);
                if (r < 0)
                    return r;
            }
            break;
        case PLAT_CFG_STRING_ARRAY:
        case PLAT_CFG_OBJECT_ARRAY:
            /* Arrays default to empty. */
            break;
        }
    }
    return 0;
}

void plat_cfg_defaults(const plat_cfg_field_t *table, void *out)
{
    if (!table || !out)
        return;
    /* Out of memory here leaves that string NULL; loading reports -ENOMEM. */
    (void)fill_defaults(table, out);
}

void plat_cfg_free(const plat_cfg_field_t *table, void *out)
{
    if (!table || !out)
        return;
    for (const plat_cfg_field_t *f = table; f->key; f++) {
        void *p = FIELD_PTR(out, f);
        switch (f->type) {
        case PLAT_CFG_STRING: {
            char **s = p;
            free(*s);
            *s = NULL;
            break;
        }
        case PLAT_CFG_INT:
            *(int64_t *)p = 0;
            break;
        case PLAT_CFG_BOOL:
            *(bool *)p = false;
            break;
        case PLAT_CFG_OBJECT:
            if (f->children)
                plat_cfg_free(f->children, p);
            break;
        case PLAT_CFG_STRING_ARRAY: {
            char ***arr = p;
            size_t *n = COUNT_PTR(out, f);
            if (*arr)
                for (size_t i = 0; i < *n; i++)
                    free((*arr)[i]);
            free(*arr);
            *arr = NULL;
            *n = 0;
            break;
        }
        case PLAT_CFG_OBJECT_ARRAY: {
            void **arr = p;
            size_t *n = COUNT_PTR(out, f);
            if (*arr && f->children)
                for (size_t i = 0; i < *n; i++)
                    plat_cfg_free(f->children, (char *)*arr + i * f->elem_size);
            free(*arr);
            *arr = NULL;
            *n = 0;
            break;
        }
        }
    }
}

/* ---- loading --------------------------------------------------------- */

static int load_object(const plat_cfg_field_t *table, const json_t *obj, void *base,
                       const char *path, plat_cfg_error_t *err);

static int run_validator(const plat_cfg_field_t *f, const void *p, const char *path,
                         plat_cfg_error_t *err)
{
    const char *why = NULL;
    if (!f->validate || f->validate(p, &why) == 0)
        return 0;
    err_set(err, path, "%s", why ? why : "invalid value");
    return -EINVAL;
}

static int type_error(const plat_cfg_field_t *f, const json_t *v, const char *path,
                      plat_cfg_error_t *err)
{
    err_set(err, path, "expected %s, got %s", cfg_type_name(f->type), json_type_name(v));
    return -EINVAL;
}

static int oom(const char *path, plat_cfg_error_t *err)
{
    err_set(err, path, "out of memory");
    return -ENOMEM;
}

static int load_value(const plat_cfg_field_t *f, const json_t *v, void *base, const char *path,
                      plat_cfg_error_t *err)
{
    void *p = FIELD_PTR(base, f);
    switch (f->type) {
    case PLAT_CFG_STRING: {
        if (!json_is_string(v))
            return type_error(f, v, path, err);
        char *s = strdup(json_string_value(v));
        if (!s)
            return oom(path, err);
        free(*(char **)p);
        *(char **)p = s;
        return run_validator(f, p, path, err);
    }
    case PLAT_CFG_INT: {
        if (!json_is_integer(v))
            return type_error(f, v, path, err);
        int64_t n = (int64_t)json_integer_value(v);
        if (f->min < f->max && (n < f->min || n > f->max)) {
            err_set(err, path, "out of range %" PRId64 "..%" PRId64, f->min, f->max);
            return -EINVAL;
        }
        *(int64_t *)p = n;
        return run_validator(f, p, path, err);
    }
    case PLAT_CFG_BOOL:
        if (!json_is_boolean(v))
            return type_error(f, v, path, err);
        *(bool *)p = json_is_true(v);
        return run_validator(f, p, path, err);
    case PLAT_CFG_OBJECT: {
        if (!json_is_object(v))
            return type_error(f, v, path, err);
        int r = f->children ? load_object(f->children, v, p, path, err) : 0;
        return r < 0 ? r : run_validator(f, p, path, err);
    }
    case PLAT_CFG_STRING_ARRAY: {
        if (!json_is_array(v))
            return type_error(f, v, path, err);
        char ***arr = p;
        size_t *count = COUNT_PTR(base, f);
        size_t n = json_array_size(v);
        /* Replace whatever was there (arrays default to empty). */
        for (size_t i = 0; *arr && i < *count; i++)
            free((*arr)[i]);
        free(*arr);
        *arr = NULL;
        *count = 0;
        if (n > 0) {
            *arr = calloc(n, sizeof **arr);
            if (!*arr)
                return oom(path, err);
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(v, i);
            char epath[sizeof err->key];
            path_index(epath, sizeof epath, path, i);
            if (!json_is_string(e)) {
                err_set(err, epath, "expected string, got %s", json_type_name(e));
                return -EINVAL;
            }
            (*arr)[i] = strdup(json_string_value(e));
            if (!(*arr)[i])
                return oom(epath, err);
            *count = i + 1;
        }
        return run_validator(f, p, path, err);
    }
    case PLAT_CFG_OBJECT_ARRAY: {
        if (!json_is_array(v))
            return type_error(f, v, path, err);
        void **arr = p;
        size_t *count = COUNT_PTR(base, f);
        size_t n = json_array_size(v);
        if (*arr && f->children)
            for (size_t i = 0; i < *count; i++)
                plat_cfg_free(f->children, (char *)*arr + i * f->elem_size);
        free(*arr);
        *arr = NULL;
        *count = 0;
        if (n > 0) {
            *arr = calloc(n, f->elem_size ? f->elem_size : 1);
            if (!*arr)
                return oom(path, err);
            /* Count covers every (zeroed) element so a failure frees them all. */
            *count = n;
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(v, i);
            void *elem = (char *)*arr + i * f->elem_size;
            char epath[sizeof err->key];
            path_index(epath, sizeof epath, path, i);
            if (!json_is_object(e)) {
                err_set(err, epath, "expected object, got %s", json_type_name(e));
                return -EINVAL;
            }
            if (!f->children)
                continue;
            if (fill_defaults(f->children, elem) < 0)
                return oom(epath, err);
            int r = load_object(f->children, e, elem, epath, err);
            if (r < 0)
                return r;
        }
        return run_validator(f, p, path, err);
    }
    }
    err_set(err, path, "unsupported field type");
    return -EINVAL;
}

/* Check required keys of a table whose object is absent (obj NULL) or lacks
 * them, recursing into absent nested objects (treated as "{}"). */
static int check_required(const plat_cfg_field_t *table, const json_t *obj, const char *path,
                          plat_cfg_error_t *err)
{
    for (const plat_cfg_field_t *f = table; f->key; f++) {
        if (obj && json_object_get(obj, f->key))
            continue;
        char fpath[sizeof err->key];
        path_join(fpath, sizeof fpath, path, f->key);
        if (f->required) {
            err_set(err, fpath, "required key missing");
            return -EINVAL;
        }
        if (f->type == PLAT_CFG_OBJECT && f->children) {
            int r = check_required(f->children, NULL, fpath, err);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int load_object(const plat_cfg_field_t *table, const json_t *obj, void *base,
                       const char *path, plat_cfg_error_t *err)
{
    const char *key;
    json_t *v;
    /* Document order (jansson keeps insertion order). json_object_foreach
     * takes a non-const object but does not modify it. */
    json_object_foreach((json_t *)obj, key, v)
    {
        const plat_cfg_field_t *f = table;
        while (f->key && strcmp(f->key, key) != 0)
            f++;
        char fpath[sizeof err->key];
        path_join(fpath, sizeof fpath, path, key);
        if (!f->key) {
            err_set(err, fpath, "unknown key");
            return -EINVAL;
        }
        int r = load_value(f, v, base, fpath, err);
        if (r < 0)
            return r;
    }
    return check_required(table, obj, path, err);
}

static int load_root(json_t *root, const plat_cfg_field_t *table, void *out, plat_cfg_error_t *err)
{
    int r;
    if (!json_is_object(root)) {
        err_set(err, "", "expected object, got %s", json_type_name(root));
        r = -EINVAL;
    } else if (fill_defaults(table, out) < 0) {
        r = oom("", err);
    } else {
        r = load_object(table, root, out, "", err);
    }
    if (r < 0)
        plat_cfg_free(table, out);
    return r;
}

static int syntax_error(const json_error_t *jerr, plat_cfg_error_t *err)
{
    err->line = jerr->line > 0 ? jerr->line : 0;
    err->column = jerr->column > 0 ? jerr->column : 0;
    err_set(err, "", "%s", jerr->text);
    return json_error_code(jerr) == json_error_out_of_memory ? -ENOMEM : -EINVAL;
}

int plat_cfg_load_file(const char *path, const plat_cfg_field_t *table, void *out,
                       plat_cfg_error_t *err)
{
    plat_cfg_error_t local;
    if (!err)
        err = &local;
    err_init(err, path);
    if (!path || !table || !out) {
        err_set(err, "", "invalid argument");
        return -EINVAL;
    }
    /* Open it ourselves so a missing file is told apart from bad JSON. */
    FILE *fp = fopen(path, "re");
    if (!fp) {
        int e = errno ? errno : EIO;
        err_set(err, "", "cannot open: %s", strerror(e));
        plat_cfg_free(table, out);
        return -e;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(fp);
        err_set(err, "", "cannot open: %s", strerror(EISDIR));
        plat_cfg_free(table, out);
        return -EISDIR;
    }
    json_error_t jerr;
    json_t *root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
    fclose(fp);
    if (!root) {
        plat_cfg_free(table, out);
        return syntax_error(&jerr, err);
    }
    int r = load_root(root, table, out, err);
    json_decref(root);
    return r;
}

int plat_cfg_load_string(const char *name, const char *json, const plat_cfg_field_t *table,
                         void *out, plat_cfg_error_t *err)
{
    plat_cfg_error_t local;
    if (!err)
        err = &local;
    err_init(err, name ? name : "<string>");
    if (!json || !table || !out) {
        err_set(err, "", "invalid argument");
        return -EINVAL;
    }
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        plat_cfg_free(table, out);
        return syntax_error(&jerr, err);
    }
    int r = load_root(root, table, out, err);
    json_decref(root);
    return r;
}

int plat_cfg_error_format(const plat_cfg_error_t *err, char *buf, size_t size)
{
    if (!err)
        return snprintf(buf, size, "%s", "");
    char pos[48] = "";
    /* jansson reports column 0 at end of input; keep it, like it does. */
    if (err->line > 0)
        snprintf(pos, sizeof pos, ":%d:%d", err->line, err->column);
    if (err->key[0] != '\0')
        return snprintf(buf, size, "%s%s: %s: %s", err->file, pos, err->key, err->reason);
    return snprintf(buf, size, "%s%s: %s", err->file, pos, err->reason);
}

/* ---- shared validators ---------------------------------------------- */

/* Parse a decimal number of at most `maxdigits` digits in [0, max]; returns
 * the number of characters used, 0 on failure. */
static size_t parse_uint(const char *s, unsigned long max, size_t maxdigits, unsigned long *out)
{
    size_t i = 0;
    unsigned long v = 0;
    while (s[i] >= '0' && s[i] <= '9') {
        if (i >= maxdigits)
            return 0;
        v = v * 10 + (unsigned long)(s[i] - '0');
        i++;
    }
    if (i == 0 || v > max)
        return 0;
    *out = v;
    return i;
}

/* True when s[0..len) is a dotted quad 127.x.y.z. */
static bool is_loopback_ipv4(const char *s, size_t len)
{
    size_t pos = 0;
    for (int part = 0; part < 4; part++) {
        unsigned long v;
        if (part > 0) {
            if (pos >= len || s[pos] != '.')
                return false;
            pos++;
        }
        size_t n = parse_uint(s + pos, 255, 3, &v);
        if (n == 0 || pos + n > len)
            return false;
        /* Reject leading zeros ("0127"-style octal ambiguity). */
        if (n > 1 && s[pos] == '0')
            return false;
        if (part == 0 && v != 127)
            return false;
        pos += n;
    }
    return pos == len;
}

static bool is_localhost(const char *s, size_t len)
{
    return len == 9 && memcmp(s, "localhost", 9) == 0;
}

int plat_cfg_validate_loopback_endpoint(const void *value, const char **why)
{
    static const char reason[] = "must be a loopback tcp endpoint (tcp://127.0.0.1:PORT)";
    const char *s = value ? *(const char *const *)value : NULL;
    if (why)
        *why = reason;
    if (!s || strncmp(s, "tcp://", 6) != 0)
        return -EINVAL;
    const char *host = s + 6;
    const char *colon = strrchr(host, ':');
    if (!colon)
        return -EINVAL;
    size_t hlen = (size_t)(colon - host);
    bool ok = (hlen == 5 && memcmp(host, "[::1]", 5) == 0) || is_localhost(host, hlen) ||
              is_loopback_ipv4(host, hlen);
    if (!ok)
        return -EINVAL;
    unsigned long port;
    const char *ps = colon + 1;
    size_t n = parse_uint(ps, 65535, 5, &port);
    if (n == 0 || ps[n] != '\0' || port == 0 || (n > 1 && ps[0] == '0'))
        return -EINVAL;
    if (why)
        *why = NULL;
    return 0;
}

int plat_cfg_validate_loopback_address(const void *value, const char **why)
{
    static const char reason[] = "must be a loopback address (127.0.0.1, ::1 or localhost)";
    const char *s = value ? *(const char *const *)value : NULL;
    if (why)
        *why = reason;
    if (!s)
        return -EINVAL;
    size_t len = strlen(s);
    if (strcmp(s, "::1") == 0 || is_localhost(s, len) || is_loopback_ipv4(s, len)) {
        if (why)
            *why = NULL;
        return 0;
    }
    return -EINVAL;
}

int plat_cfg_validate_log_level(const void *value, const char **why)
{
    const char *s = value ? *(const char *const *)value : NULL;
    if (s && plat_log_level_from_name(s) >= 0) {
        if (why)
            *why = NULL;
        return 0;
    }
    if (why)
        *why = "must be one of err, warning, notice, info, debug";
    return -EINVAL;
}
