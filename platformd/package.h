/* Plugin packages (ARCHITECTURE.md section 7): the manifest validator and
 * the immutable package store. docs/packages.md is the reference for the
 * manifest format and the store layout.
 *
 * Pure files and JSON: no loop, no bus, no logging above debug. Every
 * function is synchronous and may block on the disk (a registration copies
 * up to 256 MiB), so the daemon calls pd_package_register off the loop.
 *
 * Errors: functions return 0 or a negative errno code; `why` (may be NULL,
 * `size` bytes, always NUL-terminated when size > 0) receives one line an
 * operator can act on. Manifest refusals name the file and the field's JSON
 * path: "manifest.json: abilities[1].spec: ...". */
#ifndef PLATFORMD_PACKAGE_H
#define PLATFORMD_PACKAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modes.h"

#define PD_MANIFEST_FILE "manifest.json"
#define PD_MANIFEST_MAX_BYTES (64 * 1024)       /* larger manifest files are refused */
#define PD_PKG_ID_MAX 64                        /* id length, without the NUL */
#define PD_PKG_VERSION_MAX 128                  /* version length, without the NUL */
#define PD_PKG_ENTRY_MAX 255                    /* entry path length */
#define PD_PKG_MAX_ENTRIES 1000                 /* files + directories in a package */
#define PD_PKG_MAX_BYTES (256ull * 1024 * 1024) /* sum of file sizes */
#define PD_PKG_MAX_DEPTH 32                     /* directory nesting below the package root */
#define PD_PKG_DIGEST_FILE ".digest"            /* in each stored version directory */
#define PD_SHA256_HEX_LEN 64

typedef enum {
    PD_ABILITY_TASK = 0, /* "task": spec is a 5-field cron expression */
    PD_ABILITY_SERVICE,  /* "service": spec is "<port>/<health path>", port "*" = any */
} pd_ability_kind_t;

/* What a plugin may register on the Ability channel (ability.c enforces
 * it): a task whose name equals a task ability's name ("*": any name), a
 * service on the port of a service ability (port 0: any allowed port). */
typedef struct {
    pd_ability_kind_t kind;
    char *name;        /* owned; [a-z0-9_-]{1,64}, unique within the manifest;
                          a task's may be "*" (any task name) */
    char *spec;        /* owned; as written in the manifest */
    unsigned port;     /* service only: 1..65535, 0 = "*" any port (0 for tasks) */
    char *health_path; /* service only, owned: starts with "/" (NULL for tasks) */
} pd_ability_t;

/* A validated manifest. Every pointer is owned by the struct and released
 * by pd_manifest_free; optional fields absent from the file are NULL/0. */
typedef struct {
    char *id;              /* [a-z0-9][a-z0-9._-]{0,63} */
    char *version;         /* semver 2.0.0, at most PD_PKG_VERSION_MAX chars */
    char *language;        /* [a-z0-9_]{1,32} */
    char *runtime_version; /* [A-Za-z0-9._-]{1,32} */
    char *entry;           /* relative path of a regular file inside the package */
    pd_mode_t host_mode;   /* default PD_MODE_HIGH_PERFORMANCE */
    char **http;           /* permissions.http: "host:port" patterns */
    size_t n_http;
    bool files; /* permissions.files */
    bool db;    /* permissions.db */
    pd_ability_t *abilities;
    size_t n_abilities;
    char *description;    /* NULL if absent */
    char *config_schema;  /* compact JSON text of the object, NULL if absent */
    char *default_config; /* compact JSON text of the object, NULL if absent */
} pd_manifest_t;

/* Read and validate <dir>/manifest.json into *m (which is overwritten, not
 * freed first). The entry file is checked against `dir`: it must resolve,
 * symlinks followed, to a regular file inside `dir`. On failure *m is left
 * zeroed (nothing to free) and `why` names the field. -ENOENT (no manifest),
 * -EFBIG (over 64 KiB), -EINVAL (invalid), other -errno for I/O errors. */
int pd_manifest_load(const char *dir, pd_manifest_t *m, char *why, size_t size);

/* Release what *m owns and zero it. Accepts NULL and a zeroed struct. */
void pd_manifest_free(pd_manifest_t *m);

/* True if `s` is a semantic version 2.0.0 string (MAJOR.MINOR.PATCH, optional
 * -prerelease and +build) of at most PD_PKG_VERSION_MAX chars. */
bool pd_semver_valid(const char *s);

/* Semver 2.0.0 precedence of a against b: *cmp < 0, 0 or > 0. Build metadata
 * is ignored ("1.0.0+a" and "1.0.0+b" compare equal). 0, or -EINVAL if
 * either string is not a valid version (*cmp untouched). */
int pd_semver_compare(const char *a, const char *b, int *cmp);

/* True if the manifest's permissions.http allows a request to host:port.
 * "*.example.com" matches any name ending in ".example.com" (not
 * "example.com" itself); hosts compare case-insensitively; port "*" matches
 * any port. */
bool pd_manifest_http_allowed(const pd_manifest_t *m, const char *host, unsigned port);

/* SHA-256 of `len` bytes as 64 lowercase hex chars + NUL into out. Exposed
 * for tests and for checking a stored digest; not a general crypto API. */
void pd_sha256_hex(const void *data, size_t len, char out[PD_SHA256_HEX_LEN + 1]);

/* Validate the package in src_dir and copy it into the store as
 * <store_dir>/<id>/<version>/, atomically (copied into
 * <store_dir>/.tmp-XXXXXX, validated again there, then rename()d into
 * place; the temp dir is removed on any failure). store_dir is created if
 * missing (its parent must exist). Only regular files and directories are
 * accepted: any symlink, device, fifo or socket is refused, as are more than
 * PD_PKG_MAX_ENTRIES entries, more than PD_PKG_MAX_BYTES, nesting deeper than
 * PD_PKG_MAX_DEPTH and a top-level ".digest". Files are stored 0755 if the
 * source had any x bit, else 0644; directories 0755.
 *
 * A stored version never changes. Registering an (id, version) already
 * stored with the same content digest returns 0 with why = "already
 * registered"; with different content -EEXIST ("... bump the version").
 * A new registration returns 0 with why = "registered".
 * If `out` is non-NULL it receives the stored manifest (caller frees with
 * pd_manifest_free; zeroed on failure).
 * Errors: -EINVAL (bad manifest or package content), -E2BIG (too many
 * entries or too deep), -EFBIG (too large), -EEXIST, other -errno for I/O. */
int pd_package_register(const char *store_dir, const char *src_dir, pd_manifest_t *out, char *why,
                        size_t size);

/* "<store_dir>/<id>/<version>" (malloc'd, caller frees) if that package is
 * registered; NULL otherwise with errno EINVAL (id or version not valid)
 * or ENOENT (not registered) or ENOMEM. */
char *pd_package_path(const char *store_dir, const char *id, const char *version);

/* Called once per registered package; a non-zero return stops the walk and
 * is returned by pd_package_list. `digest` is the stored content digest
 * (64 hex chars). Pointers are valid for the call only. */
typedef int (*pd_package_cb)(const char *id, const char *version, const char *digest, void *user);

/* Every registered package, ordered by id (bytewise), then by version
 * precedence (ties broken bytewise). Temp dirs and anything that is not a
 * complete registration are skipped. A missing store is empty. 0 after the
 * whole walk, the callback's non-zero value, or -errno. */
int pd_package_list(const char *store_dir, pd_package_cb cb, void *user);

/* Remove <store_dir>/.tmp-* left behind by a process killed mid-registration.
 * Call at start-up, before any registration runs. Returns the number of
 * temp dirs removed, or -errno. A missing store is 0. */
int pd_package_store_clean(const char *store_dir);

#endif
