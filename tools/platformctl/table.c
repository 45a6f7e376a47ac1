#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "table.h"

struct ctl_table {
    size_t ncols;
    const char *const *headers;
    char **cells; /* rows * ncols, row-major */
    size_t rows, cap;
};

ctl_table_t *ctl_table_new(size_t ncols, const char *const *headers)
{
    ctl_table_t *t = calloc(1, sizeof *t);
    if (t) {
        t->ncols = ncols;
        t->headers = headers;
    }
    return t;
}

void ctl_table_destroy(ctl_table_t **tp)
{
    if (!tp || !*tp)
        return;
    ctl_table_t *t = *tp;
    for (size_t i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
    *tp = NULL;
}

int ctl_table_add(ctl_table_t *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * t->ncols * sizeof *c);
        if (!c)
            return -ENOMEM;
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + t->rows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "-");
        if (!row[i]) {
            while (i-- > 0)
                free(row[i]);
            return -ENOMEM;
        }
    }
    t->rows++;
    return 0;
}

static void print_row(const ctl_table_t *t, const char *const *row, const size_t *w, FILE *out)
{
    for (size_t i = 0; i < t->ncols; i++) {
        if (i + 1 < t->ncols)
            fprintf(out, "%-*s  ", (int)w[i], row[i]);
        else
            fprintf(out, "%s\n", row[i]);
    }
}

void ctl_table_print(const ctl_table_t *t, FILE *out)
{
    size_t w[t->ncols ? t->ncols : 1];
    for (size_t i = 0; i < t->ncols; i++) {
        w[i] = strlen(t->headers[i]);
        for (size_t r = 0; r < t->rows; r++) {
            size_t l = strlen(t->cells[r * t->ncols + i]);
            if (l > w[i])
                w[i] = l;
        }
    }
    print_row(t, t->headers, w, out);
    for (size_t r = 0; r < t->rows; r++)
        print_row(t, (const char *const *)t->cells + r * t->ncols, w, out);
}

static bool all_strings(json_t *arr)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v))
            return false;
    }
    return true;
}

char *ctl_cell(json_t *v)
{
    if (!v || json_is_null(v))
        return strdup("-");
    if (json_is_string(v))
        return strdup(json_string_value(v)[0] ? json_string_value(v) : "-");
    if (json_is_array(v) && all_strings(v)) {
        if (json_array_size(v) == 0)
            return strdup("-");
        size_t len = 1, i;
        json_t *e;
        json_array_foreach(v, i, e) len += strlen(json_string_value(e)) + 1;
        char *s = malloc(len), *p = s;
        if (!s)
            return NULL;
        json_array_foreach(v, i, e)
        {
            size_t l = strlen(json_string_value(e));
            if (i)
                *p++ = ',';
            memcpy(p, json_string_value(e), l);
            p += l;
        }
        *p = 0;
        return s;
    }
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Wall-clock ms since the epoch (the API's "*_at" members) as UTC. */
static char *utc(json_t *v)
{
    char buf[32];
    time_t t = (time_t)(json_integer_value(v) / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return ctl_cell(v);
    return strdup(buf);
}

static int flatten(ctl_table_t *t, const char *prefix, json_t *obj)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t n = strlen(prefix) + strlen(key) + 2;
        char *name = malloc(n);
        if (!name)
            return -ENOMEM;
        snprintf(name, n, "%s%s%s", prefix, prefix[0] ? "." : "", key);
        int rc;
        /* Empty objects (a plugin's "config": {}) print as "{}". */
        if (json_is_object(v) && json_object_size(v) > 0) {
            rc = flatten(t, name, v);
        } else {
            char *cell = ends_with(key, "_at") && json_integer_value(v) > 0 ? utc(v) : ctl_cell(v);
            rc = cell ? ctl_table_add(t, (const char *const[]){name, cell}) : -ENOMEM;
            free(cell);
        }
        free(name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void ctl_print_object(json_t *obj, FILE *out)
{
    static const char *const headers[] = {"KEY", "VALUE"};
    ctl_table_t *t = ctl_table_new(2, headers);
    if (!t || flatten(t, "", obj) < 0) {
        ctl_table_destroy(&t);
        /* Out of memory: the JSON is still worth showing. */
        json_dumpf(obj, out, JSON_INDENT(2));
        fputc('\n', out);
        return;
    }
    /* Key/value listings read better without a header row. */
    size_t w = 0;
    for (size_t r = 0; r < t->rows; r++) {
        size_t l = strlen(t->cells[r * 2]);
        w = l > w ? l : w;
    }
    for (size_t r = 0; r < t->rows; r++)
        fprintf(out, "%-*s  %s\n", (int)w, t->cells[r * 2], t->cells[r * 2 + 1]);
    ctl_table_destroy(&t);
}
