/* Declarative JSON configuration: a table per file describes every key
 * (type, where it lands in the target struct, default, range, validator).
 * Loading parses with jansson into a fresh struct, applies defaults, checks
 * every key, and only then returns it; errors name the file, line:column
 * (when jansson knows it), the key path ("bus.max_msg_size") and the reason.
 * Unknown keys and wrong types are errors. */
#ifndef PLAT_CONFIG_H
#define PLAT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* sysexits.h EX_CONFIG: what a daemon exits with on any config error. */
#define PLAT_EX_CONFIG 78

typedef enum {
    PLAT_CFG_STRING,       /* char * (owned by the struct; freed by plat_cfg_free) */
    PLAT_CFG_INT,          /* int64_t, range [min, max] checked when min < max */
    PLAT_CFG_BOOL,         /* bool */
    PLAT_CFG_OBJECT,       /* nested struct at `offset`, described by `children` */
    PLAT_CFG_STRING_ARRAY, /* char ** at `offset`, size_t count at `count_offset` */
    PLAT_CFG_OBJECT_ARRAY, /* void * array of `elem_size` elements described by
                              `children`, size_t count at `count_offset` */
} plat_cfg_type_t;

typedef struct plat_cfg_field plat_cfg_field_t;

/* Optional extra check of one parsed value (`value` points at the field in
 * the struct). Return 0, or -EINVAL and set *why to a static reason. */
typedef int (*plat_cfg_validate_fn)(const void *value, const char **why);

struct plat_cfg_field {
    const char *key;                 /* JSON key; NULL terminates the table */
    plat_cfg_type_t type;
    size_t offset;                   /* offsetof(struct, field) */
    bool required;                   /* missing key is an error (else default) */
    const char *def_str;             /* STRING default (strdup'd), may be NULL */
    int64_t def_int;                 /* INT default */
    bool def_bool;                   /* BOOL default */
    int64_t min, max;                /* INT inclusive range when min < max */
    plat_cfg_validate_fn validate;   /* optional */
    const plat_cfg_field_t *children; /* OBJECT / OBJECT_ARRAY element table */
    size_t elem_size;                /* OBJECT_ARRAY element size */
    size_t count_offset;             /* *_ARRAY: offsetof the size_t count */
    const char *doc;                 /* one line for docs and --help-config */
};

typedef struct {
    char file[256];   /* path as given */
    int line;         /* 1-based; 0 when not known */
    int column;       /* 1-based; 0 when not known */
    char key[256];    /* key path, e.g. "bus.hwm" or "runtimes[1].path"; "" for syntax */
    char reason[256]; /* e.g. "unknown key", "expected integer, got string" */
} plat_cfg_error_t;

/* Fill `out` (all zero before) with the table's defaults. */
void plat_cfg_defaults(const plat_cfg_field_t *table, void *out);

/* Load `path` into `out` (must be zeroed by the caller). On success returns 0
 * and `out` owns its strings/arrays (release with plat_cfg_free). On failure
 * returns -ENOENT (missing file), -EINVAL (syntax, unknown key, type, range,
 * validator), -ENOMEM; fills *err; `out` is left freed and zeroed. */
int plat_cfg_load_file(const char *path, const plat_cfg_field_t *table, void *out,
                       plat_cfg_error_t *err);

/* Same, from a string; `name` stands in for the file name in errors. */
int plat_cfg_load_string(const char *name, const char *json, const plat_cfg_field_t *table,
                         void *out, plat_cfg_error_t *err);

/* Free what loading allocated in `out` and zero it. NULL-safe. */
void plat_cfg_free(const plat_cfg_field_t *table, void *out);

/* "file:line:col: key: reason" (line/col and key omitted when unknown).
 * Returns snprintf's result. */
int plat_cfg_error_format(const plat_cfg_error_t *err, char *buf, size_t size);

/* Shared validators (plat_cfg_validate_fn) for STRING fields. */
/* "tcp://<loopback IPv4 or [::1] or localhost>:<port 1..65535>" */
int plat_cfg_validate_loopback_endpoint(const void *value, const char **why);
/* "127.x.y.z", "::1" or "localhost" */
int plat_cfg_validate_loopback_address(const void *value, const char **why);
/* one of plat_log_level_from_name's names */
int plat_cfg_validate_log_level(const void *value, const char **why);

#endif
