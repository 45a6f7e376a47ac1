/* Resource channel, DB kind (see res_db.h). */
#include "res_db.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "plat/id.h"
#include "plat/why.h"

/* VM instructions between two looks at the clock. */
#define PROGRESS_STEPS 1000

/* SQLITE_LIMIT_LENGTH (largest string, blob or row) is the result byte cap
 * plus this much, so that no single value bigger than a result may be is
 * ever built in memory (randomblob(1e9), zeroblob(), replace(), ...). */
#define LENGTH_SLACK (64 * 1024)

struct pd_res_db {
    sqlite3 *db;
    char deny_why[160];   /* set by the authorizer when it denies */
    uint64_t deadline_ms; /* monotonic; 0 = none */
    bool timed_out;       /* the progress handler stopped the statement */
    bool stepping;        /* inside sqlite3_step (not prepare) */
    int max_length;       /* SQLITE_LIMIT_LENGTH as compiled (upper bound) */
    int64_t page_size;    /* of the main database */
    int64_t quota_bytes;  /* max_file_bytes in force (max_page_count set) */
    int64_t quota_pages;  /* what SQLite accepted as max_page_count */
};

/* SQLite's primary result code as a negative errno. SQLITE_INTERRUPT can
 * only come from our own progress handler. */
static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_INTERRUPT:
        return -ETIMEDOUT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        return -EIO;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_TOOBIG:
        return -EFBIG;
    case SQLITE_PERM:
        return -EPERM;
    default:
        return -EINVAL; /* ERROR, CONSTRAINT, MISMATCH, RANGE, SCHEMA... */
    }
}

/* Read-only pragmas a plugin may run (schema introspection), plus
 * user_version, which is application data kept in the file header (a
 * plugin's schema migrations need it), not a connection setting, plus
 * reads of page_size (the rtree and fts3/4 modules read it when they
 * create a table) and data_version (fts5 reads it). */
static bool pragma_allowed(const char *name, const char *arg)
{
    static const char *const read_only[] = {
        "table_info",  "table_xinfo",      "table_list",        "index_list", "index_info",
        "index_xinfo", "foreign_key_list", "foreign_key_check", NULL,
    };
    if (!name)
        return false;
    if (strcasecmp(name, "user_version") == 0)
        return true;
    if (strcasecmp(name, "page_size") == 0 || strcasecmp(name, "data_version") == 0)
        return arg == NULL;
    for (const char *const *p = read_only; *p; p++)
        if (strcasecmp(name, *p) == 0)
            return true;
    return false;
}

/* SQL functions a plugin may not call. fts3_tokenizer() with one argument
 * returns a pointer into libsqlite3 and with two registers a tokenizer
 * from a blob taken as a C pointer (a crash, or code execution, in
 * platformd); SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER 0 does not stop it for a
 * bound parameter. fts5() hands out the fts5 C API (only through a bound
 * pointer, which a request cannot make, denied anyway). The others are not
 * in the library as Debian builds it; listed in case a build has them. */
static bool function_denied(const char *name)
{
    static const char *const denied[] = {
        "load_extension", "fts3_tokenizer",     "fts5", "readfile", "writefile",
        "edit",           "icu_load_collation", NULL,
    };
    if (!name)
        return true;
    for (const char *const *p = denied; *p; p++)
        if (strcasecmp(name, *p) == 0)
            return true;
    return false;
}

static int authorizer(void *arg, int action, const char *a1, const char *a2, const char *a3,
                      const char *a4)
{
    (void)a3;
    (void)a4;
    pd_res_db_t *d = arg;
    switch (action) {
    case SQLITE_ATTACH:
        /* Plain VACUUM attaches a new private temporary database (empty
         * file name) while it runs; a plugin's own ATTACH is checked at
         * prepare time, never while stepping, and VACUUM INTO names a
         * file. */
        if (d->stepping && a1 && a1[0] == '\0')
            return SQLITE_OK;
        snprintf(d->deny_why, sizeof d->deny_why, "ATTACH denied");
        return SQLITE_DENY;
    case SQLITE_DETACH:
        snprintf(d->deny_why, sizeof d->deny_why, "DETACH denied");
        return SQLITE_DENY;
    case SQLITE_FUNCTION:
        /* a1 is NULL, a2 the function name. */
        if (function_denied(a2)) {
            snprintf(d->deny_why, sizeof d->deny_why, "%.64s() denied", a2 ? a2 : "?");
            return SQLITE_DENY;
        }
        return SQLITE_OK;
    case SQLITE_PRAGMA:
        if (pragma_allowed(a1, a2))
            return SQLITE_OK;
        snprintf(d->deny_why, sizeof d->deny_why, "PRAGMA %.64s denied", a1 ? a1 : "?");
        return SQLITE_DENY;
    default:
        return SQLITE_OK;
    }
}

static int progress(void *arg)
{
    pd_res_db_t *d = arg;
    if (d->deadline_ms && plat_mono_ms() >= d->deadline_ms) {
        d->timed_out = true;
        return 1;
    }
    return 0;
}

/* First column of the first row of `sql` as an integer; -1 on error. Runs
 * without the authorizer only when it is not installed yet or was taken
 * off by the caller. */
static int64_t pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && st &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* PRAGMA max_page_count of main and temp from a byte quota (the
 * authorizer must be off). SQLite never sets it below the current page
 * count. */
static int set_quota(pd_res_db_t *d, int64_t bytes)
{
    int64_t pages = bytes / d->page_size;
    if (pages < 1)
        pages = 1;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)pages);
    int64_t got = pragma_int(d->db, sql);
    if (got <= 0)
        return sqlite3_errcode(d->db) != SQLITE_OK ? sqlite3_errcode(d->db) : SQLITE_ERROR;
    /* TEMP tables get the same quota (a file of their own). */
    snprintf(sql, sizeof sql, "PRAGMA temp.max_page_count = %lld", (long long)pages);
    if (pragma_int(d->db, sql) <= 0)
        return sqlite3_errcode(d->db) != SQLITE_OK ? sqlite3_errcode(d->db) : SQLITE_ERROR;
    d->quota_bytes = bytes;
    d->quota_pages = got;
    return SQLITE_OK;
}

int pd_res_db_open(const char *path, pd_res_db_t **out, char *why, size_t why_size)
{
    *out = NULL;
    if (!path || !*path) {
        return plat_why(why, why_size, -EINVAL, "no database path");
    }
    /* Create the file ourselves so that it is 0600 (SQLite gives its
     * journal files the database's mode) and never a symlink. */
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        return plat_why(why, why_size, e == ELOOP ? -EACCES : -e, "%s: %s", path, strerror(e));
    }
    close(fd);
    pd_res_db_t *d = calloc(1, sizeof *d);
    if (!d) {
        return plat_why(why, why_size, -ENOMEM, "out of memory");
    }
    int rc = sqlite3_open_v2(
        path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        (void)plat_why(why, why_size, 0, "%s: %s", path,
                       d->db ? sqlite3_errmsg(d->db) : "out of memory");
        int err = map_rc(rc);
        sqlite3_close(d->db);
        free(d);
        return err == -EINVAL ? -EIO : err;
    }
    sqlite3 *db = d->db;
    sqlite3_extended_result_codes(db, 0);
    int off = 0, on = 1;
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, &off);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &off);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, &off);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    d->max_length = sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1);
    sqlite3_busy_timeout(db, 1000);
    /* Settings the plugin cannot change itself (PRAGMAs are denied). */
    char *err = NULL;
    rc = sqlite3_exec(db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                      "PRAGMA foreign_keys=ON;",
                      NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        (void)plat_why(why, why_size, 0, "%s: %s", path, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        sqlite3_close(db);
        free(d);
        return map_rc(rc) == -EINVAL ? -EBADMSG : map_rc(rc);
    }
    d->page_size = pragma_int(db, "PRAGMA page_size");
    if (d->page_size <= 0)
        d->page_size = 4096;
    rc = set_quota(d, PD_RES_DB_MAX_FILE_BYTES_DEFAULT);
    if (rc != SQLITE_OK) {
        (void)plat_why(why, why_size, 0, "%s: max_page_count: %s", path, sqlite3_errstr(rc));
        sqlite3_close(db);
        free(d);
        return map_rc(rc) == -EINVAL ? -EBADMSG : map_rc(rc);
    }
    sqlite3_set_authorizer(db, authorizer, d);
    sqlite3_progress_handler(db, PROGRESS_STEPS, progress, d);
    *out = d;
    return 0;
}

void pd_res_db_close(pd_res_db_t **dp)
{
    if (!dp || !*dp)
        return;
    pd_res_db_t *d = *dp;
    *dp = NULL;
    /* Statements are always finalized by exec, so close cannot be busy. */
    sqlite3_close(d->db);
    free(d);
}

/* ---- results ------------------------------------------------------------ */

static Plat__DbValue *value_new(void)
{
    Plat__DbValue *v = malloc(sizeof *v);
    if (v)
        plat__db_value__init(v);
    return v;
}

/* Column `i` of the current row as a new DbValue in *out; adds its
 * approximate encoded size to *bytes. A text or blob that would take *bytes
 * past max_bytes is not copied: -EFBIG. -ENOMEM on OOM. */
static int column_value(sqlite3_stmt *st, int i, uint64_t *bytes, uint64_t max_bytes,
                        Plat__DbValue **out)
{
    *out = NULL;
    int type = sqlite3_column_type(st, i);
    if (type == SQLITE_TEXT || type == SQLITE_BLOB) {
        /* The size as stored: no conversion (UTF-8 text stays UTF-8) and a
         * zeroblob is not expanded by asking. */
        uint64_t n = (uint64_t)sqlite3_column_bytes(st, i);
        if (n + 8 > max_bytes || *bytes + n + 8 > max_bytes)
            return -EFBIG;
    }
    Plat__DbValue *v = value_new();
    if (!v)
        return -ENOMEM;
    switch (type) {
    case SQLITE_INTEGER:
        v->value_case = PLAT__DB_VALUE__VALUE_INTEGER;
        v->integer = sqlite3_column_int64(st, i);
        *bytes += 12;
        break;
    case SQLITE_FLOAT:
        v->value_case = PLAT__DB_VALUE__VALUE_REAL;
        v->real = sqlite3_column_double(st, i);
        *bytes += 11;
        break;
    case SQLITE_TEXT: {
        const unsigned char *t = sqlite3_column_text(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        v->value_case = PLAT__DB_VALUE__VALUE_TEXT;
        v->text = malloc(n + 1);
        if (!v->text) {
            free(v);
            return -ENOMEM;
        }
        if (n)
            memcpy(v->text, t, n);
        v->text[n] = '\0';
        *bytes += n + 8;
        break;
    }
    case SQLITE_BLOB: {
        const void *b = sqlite3_column_blob(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        v->value_case = PLAT__DB_VALUE__VALUE_BLOB;
        v->blob.len = n;
        v->blob.data = malloc(n ? n : 1);
        if (!v->blob.data) {
            free(v);
            return -ENOMEM;
        }
        if (n)
            memcpy(v->blob.data, b, n);
        *bytes += n + 8;
        break;
    }
    default:
        v->value_case = PLAT__DB_VALUE__VALUE_NULL;
        v->null = 1;
        *bytes += 4;
        break;
    }
    *out = v;
    return 0;
}

void pd_res_db_result_free(Plat__DbExecResult **r)
{
    if (!r || !*r)
        return;
    protobuf_c_message_free_unpacked(&(*r)->base, NULL);
    *r = NULL;
}

/* ---- exec --------------------------------------------------------------- */

static int bind_params(sqlite3_stmt *st, const Plat__DbExecRequest *req, char *why, size_t why_size)
{
    int want = sqlite3_bind_parameter_count(st);
    if ((size_t)want != req->n_params) {
        return plat_why(why, why_size, -EINVAL, "the statement takes %d parameter(s), %zu given",
                        want, req->n_params);
    }
    for (size_t i = 0; i < req->n_params; i++) {
        const Plat__DbValue *v = req->params[i];
        int col = (int)i + 1, rc;
        switch (v ? v->value_case : PLAT__DB_VALUE__VALUE__NOT_SET) {
        case PLAT__DB_VALUE__VALUE_NULL:
            rc = sqlite3_bind_null(st, col);
            break;
        case PLAT__DB_VALUE__VALUE_INTEGER:
            rc = sqlite3_bind_int64(st, col, v->integer);
            break;
        case PLAT__DB_VALUE__VALUE_REAL:
            rc = sqlite3_bind_double(st, col, v->real);
            break;
        case PLAT__DB_VALUE__VALUE_TEXT:
            rc = sqlite3_bind_text(st, col, v->text ? v->text : "", -1, SQLITE_TRANSIENT);
            break;
        case PLAT__DB_VALUE__VALUE_BLOB:
            /* A zero-length blob with a NULL pointer would bind NULL. */
            rc = v->blob.len
                     ? sqlite3_bind_blob64(st, col, v->blob.data, v->blob.len, SQLITE_TRANSIENT)
                     : sqlite3_bind_zeroblob(st, col, 0);
            break;
        default:
            return plat_why(why, why_size, -EINVAL, "parameter %zu has no value", i + 1);
        }
        if (rc != SQLITE_OK) {
            return plat_why(why, why_size, map_rc(rc), "parameter %zu: %s", i + 1,
                            sqlite3_errstr(rc));
        }
    }
    return 0;
}

/* True when `tail` (what follows the first statement) holds another
 * statement (or something SQLite cannot parse). */
static bool has_more_statements(pd_res_db_t *d, const char *tail)
{
    while (tail && *tail) {
        sqlite3_stmt *st = NULL;
        const char *next = NULL;
        int rc = sqlite3_prepare_v2(d->db, tail, -1, &st, &next);
        if (rc != SQLITE_OK || st) {
            sqlite3_finalize(st);
            return true;
        }
        if (!next || next == tail)
            break;
        tail = next; /* only whitespace, comments or ';' so far */
    }
    return false;
}

static int grow_rows(Plat__DbExecResult *r, size_t *cap)
{
    if (r->n_rows < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    Plat__DbRow **rows = realloc(r->rows, ncap * sizeof *rows);
    if (!rows)
        return -ENOMEM;
    r->rows = rows;
    *cap = ncap;
    return 0;
}

int pd_res_db_exec(pd_res_db_t *d, const Plat__DbExecRequest *req, const pd_res_db_limits_t *lim,
                   Plat__DbExecResult **out, char *why, size_t why_size)
{
    *out = NULL;
    if (!d || !req || !req->sql || !*req->sql) {
        return plat_why(why, why_size, -EINVAL, "no SQL");
    }
    d->deny_why[0] = '\0';
    d->deadline_ms = 0;
    d->timed_out = false;
    d->stepping = false;
    uint64_t max_bytes = lim && lim->max_bytes > 0 ? (uint64_t)lim->max_bytes : UINT64_MAX;
    uint64_t max_rows = lim && lim->max_rows > 0 ? (uint64_t)lim->max_rows : UINT64_MAX;
    /* No value (nor SQL text, nor row) bigger than a result may be. */
    int length = d->max_length;
    if (max_bytes < (uint64_t)d->max_length - LENGTH_SLACK)
        length = (int)max_bytes + LENGTH_SLACK;
    sqlite3_limit(d->db, SQLITE_LIMIT_LENGTH, length);
    int64_t quota =
        lim && lim->max_file_bytes > 0 ? lim->max_file_bytes : PD_RES_DB_MAX_FILE_BYTES_DEFAULT;
    if (quota != d->quota_bytes) {
        sqlite3_set_authorizer(d->db, NULL, NULL);
        int qrc = set_quota(d, quota);
        sqlite3_set_authorizer(d->db, authorizer, d);
        if (qrc != SQLITE_OK) {
            return plat_why(why, why_size, map_rc(qrc) == -EINVAL ? -EIO : map_rc(qrc),
                            "setting the database quota: %s", sqlite3_errstr(qrc));
        }
    }
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(d->db, req->sql, -1, &st, &tail);
    if (rc != SQLITE_OK) {
        if (d->deny_why[0]) {
            return plat_why(why, why_size, -EACCES, "%s", d->deny_why);
        }
        return plat_why(why, why_size, map_rc(rc) == -ETIMEDOUT ? -EINVAL : map_rc(rc), "%s",
                        sqlite3_errmsg(d->db));
    }
    if (!st) {
        return plat_why(why, why_size, -EINVAL, "no statement (empty or only comments)");
    }
    if (has_more_statements(d, tail)) {
        sqlite3_finalize(st);
        return plat_why(why, why_size, -EINVAL, "only one statement per request");
    }
    int err = bind_params(st, req, why, why_size);
    if (err < 0) {
        sqlite3_finalize(st);
        return err;
    }
    Plat__DbExecResult *r = malloc(sizeof *r);
    if (!r) {
        sqlite3_finalize(st);
        return plat_why(why, why_size, -ENOMEM, "out of memory");
    }
    plat__db_exec_result__init(r);
    uint64_t bytes = 0;
    int ncol = sqlite3_column_count(st);
    if (ncol > 0) {
        r->columns = calloc((size_t)ncol, sizeof *r->columns);
        if (!r->columns) {
            err = -ENOMEM;
            goto fail;
        }
        for (int i = 0; i < ncol; i++) {
            const char *name = sqlite3_column_name(st, i);
            r->columns[i] = strdup(name ? name : "");
            if (!r->columns[i]) {
                err = -ENOMEM;
                goto fail;
            }
            r->n_columns++;
            bytes += strlen(r->columns[i]) + 4;
        }
    }
    size_t cap = 0;
    if (lim && lim->timeout_ms > 0)
        d->deadline_ms = plat_mono_ms() + (uint64_t)lim->timeout_ms;
    /* Plain VACUUM attaches its temporary copy while it steps (the
     * authorizer lets only that through). */
    sqlite3_limit(d->db, SQLITE_LIMIT_ATTACHED, 1);
    d->stepping = true;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (r->n_rows + 1 > max_rows) {
            (void)plat_why(why, why_size, 0, "more than %llu rows", (unsigned long long)max_rows);
            err = -EFBIG;
            goto fail;
        }
        if (grow_rows(r, &cap) < 0) {
            err = -ENOMEM;
            goto fail;
        }
        Plat__DbRow *row = malloc(sizeof *row);
        if (!row) {
            err = -ENOMEM;
            goto fail;
        }
        plat__db_row__init(row);
        r->rows[r->n_rows++] = row;
        bytes += 6;
        if (ncol > 0) {
            row->values = calloc((size_t)ncol, sizeof *row->values);
            if (!row->values) {
                err = -ENOMEM;
                goto fail;
            }
        }
        for (int i = 0; i < ncol; i++) {
            Plat__DbValue *v = NULL;
            err = column_value(st, i, &bytes, max_bytes, &v);
            if (err == -EFBIG) {
                (void)plat_why(why, why_size, 0, "result larger than %llu bytes",
                               (unsigned long long)max_bytes);
                goto fail;
            }
            if (err < 0)
                goto fail;
            row->values[row->n_values++] = v;
        }
        if (bytes > max_bytes) {
            (void)plat_why(why, why_size, 0, "result larger than %llu bytes",
                           (unsigned long long)max_bytes);
            err = -EFBIG;
            goto fail;
        }
    }
    if (rc != SQLITE_DONE) {
        if (d->timed_out) {
            (void)plat_why(why, why_size, 0, "statement time limit of %lld ms reached",
                           (long long)lim->timeout_ms);
            err = -ETIMEDOUT;
        } else if (d->deny_why[0]) {
            (void)plat_why(why, why_size, 0, "%s", d->deny_why);
            err = -EACCES;
        } else if ((rc & 0xff) == SQLITE_FULL) {
            (void)plat_why(why, why_size, 0,
                           "database full: quota of %lld bytes reached (or disk full)",
                           (long long)(d->quota_pages * d->page_size));
            err = -EDQUOT;
        } else if ((rc & 0xff) == SQLITE_TOOBIG) {
            (void)plat_why(why, why_size, 0, "%s (limit %d bytes)", sqlite3_errmsg(d->db),
                           sqlite3_limit(d->db, SQLITE_LIMIT_LENGTH, -1));
            err = -EFBIG;
        } else {
            (void)plat_why(why, why_size, 0, "%s", sqlite3_errmsg(d->db));
            err = map_rc(rc);
            if (err == 0 || err == -ETIMEDOUT)
                err = -EIO;
        }
        goto fail;
    }
    r->changes = sqlite3_stmt_readonly(st) ? 0 : (int64_t)sqlite3_changes64(d->db);
    r->last_insert_id = (int64_t)sqlite3_last_insert_rowid(d->db);
    d->deadline_ms = 0;
    d->stepping = false;
    sqlite3_limit(d->db, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_finalize(st);
    *out = r;
    return 0;
fail:
    if (err == -ENOMEM)
        (void)plat_why(why, why_size, 0, "out of memory");
    d->deadline_ms = 0;
    d->stepping = false;
    sqlite3_limit(d->db, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_finalize(st);
    pd_res_db_result_free(&r);
    return err;
}
