/* platformd's durable state on SQLite; see store.h and docs/state.md. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

/* "Plat" — marks the file as ours, so a foreign SQLite file is refused
 * instead of migrated. */
#define PD_STORE_APPLICATION_ID 0x506c6174

/* The schema, one script per version: migrations[i] takes a file from
 * version i to i + 1. Scripts are frozen once released: change the schema
 * only by appending a script (docs/state.md, "Migrations"). */
static const char *const migrations[] = {
    /* v1 */
    "PRAGMA application_id = 1349280116;" /* PD_STORE_APPLICATION_ID */
    "CREATE TABLE packages ("
    "  id TEXT NOT NULL CHECK (id <> ''),"
    "  version TEXT NOT NULL CHECK (version <> ''),"
    "  language TEXT NOT NULL CHECK (language <> ''),"
    "  runtime_version TEXT NOT NULL,"
    "  entry TEXT NOT NULL CHECK (entry <> ''),"
    "  host_mode TEXT NOT NULL CHECK (host_mode <> ''),"
    "  manifest_json TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  registered_at INTEGER NOT NULL,"
    "  PRIMARY KEY (id, version)"
    ");"
    "CREATE TABLE instances ("
    "  uuid TEXT PRIMARY KEY NOT NULL CHECK (length(uuid) = 36),"
    "  plugin TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  org TEXT NOT NULL CHECK (org <> ''),"
    "  config_json TEXT NOT NULL DEFAULT '{}',"
    "  actual_state TEXT NOT NULL CONSTRAINT actual_state_known CHECK (actual_state IN"
    "    ('installed','enabled','disabled','running','stopped','failed','uninstalled')),"
    "  desired_state TEXT NOT NULL CONSTRAINT desired_state_known CHECK (desired_state IN"
    "    ('installed','enabled','disabled','running','stopped','failed','uninstalled')),"
    "  host_mode TEXT NOT NULL CHECK (host_mode <> ''),"
    "  last_error TEXT,"
    "  crash_count INTEGER NOT NULL DEFAULT 0 CHECK (crash_count >= 0),"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  previous_version TEXT,"
    "  FOREIGN KEY (plugin, version) REFERENCES packages (id, version),"
    "  FOREIGN KEY (plugin, previous_version) REFERENCES packages (id, version)"
    ");"
    "CREATE INDEX instances_org ON instances (org, created_at);"
    "CREATE INDEX instances_package ON instances (plugin, version);"
    "CREATE INDEX instances_previous ON instances (plugin, previous_version);"
    "CREATE TABLE actions ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  uuid TEXT NOT NULL,"
    "  action TEXT NOT NULL CHECK (action <> ''),"
    "  result TEXT NOT NULL,"
    "  error TEXT,"
    "  at INTEGER NOT NULL"
    ");"
    "CREATE INDEX actions_uuid ON actions (uuid, id);"
    "CREATE INDEX actions_at ON actions (at);"
    "CREATE TABLE kv ("
    "  key TEXT PRIMARY KEY NOT NULL,"
    "  value TEXT NOT NULL"
    ");",
    /* v2: scheduled tasks and web-service registrations (docs/tasks.md).
     * They go with their instance (ON DELETE CASCADE). */
    "CREATE TABLE tasks ("
    "  instance TEXT NOT NULL REFERENCES instances (uuid) ON DELETE CASCADE,"
    "  name TEXT NOT NULL CHECK (name <> ''),"
    "  cron TEXT NOT NULL CHECK (cron <> ''),"
    "  next_due INTEGER NOT NULL,"
    "  last_run INTEGER NOT NULL DEFAULT 0,"
    "  last_result TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (instance, name)"
    ");"
    "CREATE TABLE services ("
    "  instance TEXT PRIMARY KEY NOT NULL REFERENCES instances (uuid) ON DELETE CASCADE,"
    "  port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),"
    "  health_path TEXT NOT NULL CHECK (health_path <> ''),"
    "  registered_at INTEGER NOT NULL"
    ");",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

#define PKG_COLS                                                                                   \
    "id, version, language, runtime_version, entry, host_mode, manifest_json, digest, "            \
    "registered_at"
#define INST_COLS                                                                                  \
    "uuid, plugin, version, org, config_json, actual_state, desired_state, host_mode, "            \
    "last_error, crash_count, created_at, updated_at, previous_version"
#define ACT_COLS "id, uuid, action, result, error, at"
#define TASK_COLS "instance, name, cron, next_due, last_run, last_result, created_at"
#define SVC_COLS "instance, port, health_path, registered_at"

/* Every statement the store runs after open; prepared on first use, kept. */
enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_PUT_PACKAGE,
    ST_GET_PACKAGE,
    ST_LIST_PACKAGES,
    ST_INSERT_INSTANCE,
    ST_GET_INSTANCE,
    ST_LIST_INSTANCES,
    ST_LIST_INSTANCES_ORG,
    ST_UPDATE_STATE,
    ST_UPDATE_INSTANCE,
    ST_DELETE_INSTANCE,
    ST_RECORD_ACTION,
    ST_LIST_ACTIONS,
    ST_LIST_ACTIONS_UUID,
    ST_PRUNE_ACTIONS,
    ST_KV_SET,
    ST_KV_GET,
    ST_KV_DELETE,
    ST_PUT_TASK,
    ST_UPDATE_TASK_RUN,
    ST_DELETE_TASK,
    ST_DELETE_TASKS_OF,
    ST_LIST_TASKS,
    ST_LIST_TASKS_OF,
    ST_PUT_SERVICE,
    ST_DELETE_SERVICE,
    ST_LIST_SERVICES,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PUT_PACKAGE] = "INSERT INTO packages (" PKG_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [ST_GET_PACKAGE] = "SELECT " PKG_COLS " FROM packages WHERE id = ?1 AND version = ?2",
    [ST_LIST_PACKAGES] = "SELECT " PKG_COLS " FROM packages ORDER BY id, version",
    [ST_INSERT_INSTANCE] =
        "INSERT INTO instances (" INST_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
    [ST_GET_INSTANCE] = "SELECT " INST_COLS " FROM instances WHERE uuid = ?1",
    [ST_LIST_INSTANCES] = "SELECT " INST_COLS " FROM instances ORDER BY created_at, uuid",
    [ST_LIST_INSTANCES_ORG] =
        "SELECT " INST_COLS " FROM instances WHERE org = ?1 ORDER BY created_at, uuid",
    [ST_UPDATE_STATE] = "UPDATE instances SET actual_state = coalesce(?2, actual_state),"
                        " desired_state = coalesce(?3, desired_state), last_error = ?4,"
                        " updated_at = ?5 WHERE uuid = ?1",
    [ST_UPDATE_INSTANCE] = "UPDATE instances SET version = ?2, config_json = ?3,"
                           " actual_state = ?4, desired_state = ?5, host_mode = ?6,"
                           " last_error = ?7, crash_count = ?8, previous_version = ?9,"
                           " updated_at = ?10 WHERE uuid = ?1",
    [ST_DELETE_INSTANCE] = "DELETE FROM instances WHERE uuid = ?1",
    [ST_RECORD_ACTION] = "INSERT INTO actions (uuid, action, result, error, at)"
                         " VALUES (?1,?2,?3,?4,?5)",
    [ST_LIST_ACTIONS] = "SELECT " ACT_COLS " FROM actions ORDER BY id DESC LIMIT ?1",
    [ST_LIST_ACTIONS_UUID] =
        "SELECT " ACT_COLS " FROM actions WHERE uuid = ?2 ORDER BY id DESC LIMIT ?1",
    [ST_PRUNE_ACTIONS] = "DELETE FROM actions WHERE at < ?1",
    [ST_KV_SET] = "INSERT INTO kv (key, value) VALUES (?1, ?2)"
                  " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [ST_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
    [ST_KV_DELETE] = "DELETE FROM kv WHERE key = ?1",
    /* Replacing a task keeps its created_at and last run. */
    [ST_PUT_TASK] = "INSERT INTO tasks (" TASK_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7)"
                    " ON CONFLICT (instance, name) DO UPDATE SET cron = excluded.cron,"
                    " next_due = excluded.next_due",
    [ST_UPDATE_TASK_RUN] = "UPDATE tasks SET next_due = ?3, last_run = ?4, last_result = ?5"
                           " WHERE instance = ?1 AND name = ?2",
    [ST_DELETE_TASK] = "DELETE FROM tasks WHERE instance = ?1 AND name = ?2",
    [ST_DELETE_TASKS_OF] = "DELETE FROM tasks WHERE instance = ?1",
    [ST_LIST_TASKS] = "SELECT " TASK_COLS " FROM tasks ORDER BY instance, name",
    [ST_LIST_TASKS_OF] = "SELECT " TASK_COLS " FROM tasks WHERE instance = ?1 ORDER BY name",
    [ST_PUT_SERVICE] = "INSERT INTO services (" SVC_COLS ") VALUES (?1,?2,?3,?4)"
                       " ON CONFLICT (instance) DO UPDATE SET port = excluded.port,"
                       " health_path = excluded.health_path,"
                       " registered_at = excluded.registered_at",
    [ST_DELETE_SERVICE] = "DELETE FROM services WHERE instance = ?1",
    [ST_LIST_SERVICES] = "SELECT " SVC_COLS " FROM services ORDER BY instance",
};

struct pd_store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmts[ST_COUNT];
    bool in_use[ST_COUNT]; /* a list is stepping it (re-entrancy guard) */
    char why[512];
};

int pd_store_schema_version(void)
{
    return N_MIGRATIONS;
}

/* --- errors ------------------------------------------------------------ */

/* Map an (extended) SQLite result code to -errno (STYLE: at the edge). */
static int map_rc(sqlite3 *db, int rc)
{
    int sys = db ? sqlite3_system_errno(db) : 0;
    switch (rc) {
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return -ENOENT;
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return -EEXIST;
    default:
        break;
    }
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
        return -EINVAL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_TOOBIG:
        return -E2BIG;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EPERM;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return -EBADMSG;
    case SQLITE_CANTOPEN:
        return sys > 0 ? -sys : -EACCES;
    case SQLITE_IOERR:
        return sys > 0 ? -sys : -EIO;
    default:
        return -EIO;
    }
}

static int fail(pd_store_t *s, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(pd_store_t *s, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
    return err;
}

/* A failed step/exec: map it and say "<what>: <sqlite message>". */
static int fail_sql(pd_store_t *s, int rc, const char *what)
{
    return fail(s, map_rc(s->db, rc), "%s: %s", what, sqlite3_errmsg(s->db));
}

/* --- statements and columns ------------------------------------------- */

static int stmt_get(pd_store_t *s, int id, sqlite3_stmt **out)
{
    if (s->in_use[id])
        return fail(s, -EBUSY, "statement in use: a list callback called the same list");
    if (!s->stmts[id]) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmts[id], NULL);
        if (rc != SQLITE_OK)
            return fail_sql(s, rc, "prepare");
    }
    s->in_use[id] = true;
    *out = s->stmts[id];
    return 0;
}

static void stmt_put(pd_store_t *s, int id)
{
    sqlite3_reset(s->stmts[id]);
    sqlite3_clear_bindings(s->stmts[id]);
    s->in_use[id] = false;
}

/* Bind helpers: text is SQLITE_STATIC — it outlives the step. */
static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* "" or NULL -> NULL (optional fields). */
static int bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    return v && v[0] ? bind_text(st, i, v) : sqlite3_bind_null(st, i);
}

/* At most `max` bytes, cut on a UTF-8 character boundary. */
static int bind_trunc(sqlite3_stmt *st, int i, const char *v, size_t max)
{
    if (!v || !v[0])
        return sqlite3_bind_null(st, i);
    size_t n = strnlen(v, max + 1);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
            n--;
    }
    return sqlite3_bind_text(st, i, v, (int)n, SQLITE_STATIC);
}

/* Copy a text column into a fixed field; NULL -> "". */
static int col_copy(pd_store_t *s, sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (!v) {
        dst[0] = '\0';
        return 0;
    }
    if (n >= cap)
        return fail(s, -EOVERFLOW, "column %s holds %zu bytes, more than %zu",
                    sqlite3_column_name(st, col), n, cap - 1);
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

static int col_dup(pd_store_t *s, sqlite3_stmt *st, int col, char **dst)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    *dst = strdup(v ? (const char *)v : "");
    return *dst ? 0 : fail(s, -ENOMEM, "out of memory");
}

/* A fixed-size input field must be NUL-terminated inside its array. */
#define FIELD_OK(f) (memchr((f), '\0', sizeof(f)) != NULL)

static bool str_ok(const char *v, size_t max)
{
    return v && strnlen(v, max + 1) <= max;
}

/* Run a statement that returns no rows. */
static int run(pd_store_t *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    return fail_sql(s, rc, what);
}

static void begin_call(pd_store_t *s)
{
    s->why[0] = '\0';
}

/* One row of a listing: read it and hand it to the caller's callback;
 * non-zero stops the listing and is returned by each_row. */
typedef int (*row_fn)(pd_store_t *s, sqlite3_stmt *st, void *ctx);

/* Step a bound statement to its end, calling `fn` on each row. */
static int each_row(pd_store_t *s, sqlite3_stmt *st, const char *what, row_fn fn, void *ctx)
{
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            return 0;
        if (rc != SQLITE_ROW)
            return fail_sql(s, rc, what);
        int r = fn(s, st, ctx);
        if (r != 0)
            return r;
    }
}

/* --- open / close ------------------------------------------------------ */

static int exec_sql(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* One integer from a PRAGMA or SELECT without parameters. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_NOTFOUND;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int query_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *v = sqlite3_column_text(st, 0);
            snprintf(out, cap, "%s", v ? (const char *)v : "");
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_NOTFOUND;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* Does `sql` (a PRAGMA check) return any row? */
static int query_any(sqlite3 *db, const char *sql, bool *any)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        *any = rc == SQLITE_ROW;
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Create the file 0600 ourselves (SQLite would use 0644 & ~umask, and gives
 * the -wal/-shm files the database file's mode). */
static int prepare_file(pd_store_t *s, bool *created)
{
    *created = false;
    int fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        *created = true;
    } else if (errno == EEXIST) {
        fd = open(s->path, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) {
        int e = errno;
        return fail(s, -e, "%s: cannot open: %s", s->path, strerror(e));
    }
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        r = fail(s, -e, "%s: cannot stat: %s", s->path, strerror(e));
    } else if (!S_ISREG(st.st_mode)) {
        r = fail(s, -EINVAL, "%s: not a regular file", s->path);
    } else if ((st.st_mode & 077) && fchmod(fd, 0600) < 0) {
        int e = errno;
        r = fail(s, -e, "%s: cannot narrow mode to 0600: %s", s->path, strerror(e));
    }
    close(fd);
    return r;
}

/* A new file's directory entry must be durable too. */
static int sync_parent_dir(pd_store_t *s)
{
    char *copy = strdup(s->path);
    if (!copy)
        return fail(s, -ENOMEM, "out of memory");
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = 0;
    if (fd < 0 || fsync(fd) < 0) {
        int e = errno;
        r = fail(s, -e, "%s: cannot sync its directory: %s", s->path, strerror(e));
    }
    if (fd >= 0)
        close(fd);
    free(copy);
    return r;
}

static int migrate(pd_store_t *s)
{
    for (;;) {
        int rc = exec_sql(s->db, "BEGIN IMMEDIATE");
        if (rc != SQLITE_OK)
            return fail(s, map_rc(s->db, rc), "%s: cannot start migration: %s", s->path,
                        sqlite3_errmsg(s->db));
        /* Re-read under the write lock: another process may have migrated. */
        int64_t v = 0;
        rc = query_int(s->db, "PRAGMA user_version", &v);
        if (rc != SQLITE_OK)
            goto sql_error;
        if (v > N_MIGRATIONS) {
            exec_sql(s->db, "ROLLBACK");
            return fail(s, -EPROTONOSUPPORT,
                        "%s: schema version %lld is newer than this platformd knows (%d); "
                        "refusing to open it (no downgrade)",
                        s->path, (long long)v, N_MIGRATIONS);
        }
        if (v == N_MIGRATIONS) {
            rc = exec_sql(s->db, "COMMIT");
            if (rc != SQLITE_OK)
                goto sql_error;
            return 0;
        }
        rc = exec_sql(s->db, migrations[v]);
        if (rc != SQLITE_OK)
            goto sql_error;
        /* Migrations run with foreign keys off (table rebuilds need it);
         * check what they left before committing. */
        bool broken = false;
        rc = query_any(s->db, "PRAGMA foreign_key_check", &broken);
        if (rc != SQLITE_OK)
            goto sql_error;
        if (broken) {
            exec_sql(s->db, "ROLLBACK");
            return fail(s, -EBADMSG,
                        "%s: migration to schema version %lld leaves broken "
                        "foreign keys; nothing changed",
                        s->path, (long long)v + 1);
        }
        /* PRAGMA takes no parameters; the value is our own constant. */
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)v + 1);
        rc = exec_sql(s->db, sql);
        if (rc == SQLITE_OK)
            rc = exec_sql(s->db, "COMMIT");
        if (rc != SQLITE_OK)
            goto sql_error;
        continue;
    sql_error:;
        int err = fail(s, map_rc(s->db, rc), "%s: migration to schema version %lld failed: %s",
                       s->path, (long long)v + 1, sqlite3_errmsg(s->db));
        if (!sqlite3_get_autocommit(s->db))
            exec_sql(s->db, "ROLLBACK");
        return err;
    }
}

static int configure(pd_store_t *s)
{
    sqlite3 *db = s->db;
    int64_t app_id = 0, version = 0, n_objects = 0;

    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 5000);

    /* The first read of the file: a non-database fails here, untouched. */
    int rc = query_int(db, "PRAGMA application_id", &app_id);
    if (rc == SQLITE_OK)
        rc = query_int(db, "PRAGMA user_version", &version);
    if (rc == SQLITE_OK)
        rc = query_int(db, "SELECT count(*) FROM sqlite_master", &n_objects);
    if (rc != SQLITE_OK) {
        int err = map_rc(db, rc);
        if (err == -EBADMSG)
            return fail(s, err, "%s: not an SQLite database or corrupt (%s); refusing it", s->path,
                        sqlite3_errmsg(db));
        return fail(s, err, "%s: cannot read: %s", s->path, sqlite3_errmsg(db));
    }
    if (app_id != PD_STORE_APPLICATION_ID && (app_id != 0 || version != 0 || n_objects != 0))
        return fail(s, -EBADMSG,
                    "%s: an SQLite database of another application (application_id %lld, "
                    "user_version %lld); refusing it",
                    s->path, (long long)app_id, (long long)version);
    if (version > N_MIGRATIONS)
        return fail(s, -EPROTONOSUPPORT,
                    "%s: schema version %lld is newer than this platformd knows (%d); "
                    "refusing to open it (no downgrade)",
                    s->path, (long long)version, N_MIGRATIONS);

    char mode[16] = "";
    rc = query_text(db, "PRAGMA journal_mode = WAL", mode, sizeof mode);
    if (rc != SQLITE_OK)
        return fail(s, map_rc(db, rc), "%s: cannot set WAL mode: %s", s->path, sqlite3_errmsg(db));
    if (strcmp(mode, "wal") != 0)
        return fail(s, -ENOTSUP, "%s: WAL mode refused (journal_mode is %s)", s->path, mode);
    /* FULL: in WAL mode the log is synced at every commit, so a commit that
     * returned is durable; NORMAL could lose the last ones on power loss. */
    rc = exec_sql(db, "PRAGMA synchronous = FULL");
    if (rc == SQLITE_OK)
        rc = exec_sql(db, "PRAGMA foreign_keys = OFF");
    if (rc != SQLITE_OK)
        return fail(s, map_rc(db, rc), "%s: cannot configure: %s", s->path, sqlite3_errmsg(db));

    int r = migrate(s);
    if (r < 0)
        return r;

    int64_t fk = 0;
    rc = exec_sql(db, "PRAGMA foreign_keys = ON");
    if (rc == SQLITE_OK)
        rc = query_int(db, "PRAGMA foreign_keys", &fk);
    if (rc != SQLITE_OK || fk != 1)
        return fail(s, rc != SQLITE_OK ? map_rc(db, rc) : -ENOTSUP,
                    "%s: cannot enforce foreign keys: %s", s->path,
                    rc != SQLITE_OK ? sqlite3_errmsg(db) : "not supported by this SQLite");
    return 0;
}

int pd_store_open(const char *path, pd_store_t **store, char *why, size_t why_size)
{
    if (why && why_size)
        why[0] = '\0';
    if (!store)
        return -EINVAL;
    *store = NULL;
    if (!path || !path[0]) {
        if (why && why_size)
            snprintf(why, why_size, "no state file path");
        return -EINVAL;
    }

    pd_store_t *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        if (why && why_size)
            snprintf(why, why_size, "%s: out of memory", path);
        return -ENOMEM;
    }

    bool created = false;
    int r = prepare_file(s, &created);
    if (r == 0) {
        /* NOMUTEX: one thread uses a store at a time. */
        int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK)
            r = fail(s, map_rc(s->db, rc), "%s: cannot open: %s", path,
                     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    }
    if (r == 0)
        r = configure(s);
    if (r == 0 && created)
        r = sync_parent_dir(s);
    if (r < 0) {
        if (why && why_size)
            snprintf(why, why_size, "%s", s->why);
        pd_store_close(&s);
        return r;
    }
    s->why[0] = '\0';
    *store = s;
    return 0;
}

void pd_store_close(pd_store_t **store)
{
    if (!store || !*store)
        return;
    pd_store_t *s = *store;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    /* Rolls back an open transaction; the last connection checkpoints. */
    sqlite3_close(s->db);
    free(s->path);
    free(s);
    *store = NULL;
}

const char *pd_store_why(const pd_store_t *store)
{
    return store ? store->why : "no store";
}

int pd_store_info(pd_store_t *s, pd_store_info_t *info)
{
    if (!s || !info)
        return -EINVAL;
    begin_call(s);
    memset(info, 0, sizeof *info);
    int64_t v = 0, sync = 0, fk = 0;
    int rc = query_int(s->db, "PRAGMA user_version", &v);
    if (rc == SQLITE_OK)
        rc = query_int(s->db, "PRAGMA synchronous", &sync);
    if (rc == SQLITE_OK)
        rc = query_int(s->db, "PRAGMA foreign_keys", &fk);
    if (rc == SQLITE_OK)
        rc =
            query_text(s->db, "PRAGMA journal_mode", info->journal_mode, sizeof info->journal_mode);
    if (rc != SQLITE_OK)
        return fail_sql(s, rc, "info");
    info->schema_version = (int)v;
    info->synchronous = (int)sync;
    info->foreign_keys = fk == 1;
    return 0;
}

/* --- transactions ------------------------------------------------------ */

static int simple(pd_store_t *s, int id, const char *what)
{
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, id, &st);
    if (r < 0)
        return r;
    r = run(s, st, what);
    stmt_put(s, id);
    return r;
}

int pd_store_begin(pd_store_t *s)
{
    if (!s)
        return -EINVAL;
    begin_call(s);
    if (!sqlite3_get_autocommit(s->db))
        return fail(s, -EBUSY, "begin: a transaction is already open");
    return simple(s, ST_BEGIN, "begin");
}

int pd_store_commit(pd_store_t *s)
{
    if (!s)
        return -EINVAL;
    begin_call(s);
    if (sqlite3_get_autocommit(s->db))
        return fail(s, -EINVAL, "commit: no transaction is open");
    return simple(s, ST_COMMIT, "commit");
}

int pd_store_rollback(pd_store_t *s)
{
    if (!s)
        return -EINVAL;
    begin_call(s);
    if (sqlite3_get_autocommit(s->db))
        return 0; /* none open (or SQLite already rolled it back after an error) */
    return simple(s, ST_ROLLBACK, "rollback");
}

/* --- packages ---------------------------------------------------------- */

void pd_store_package_clear(pd_store_package_t *pkg)
{
    if (!pkg)
        return;
    free(pkg->manifest_json);
    memset(pkg, 0, sizeof *pkg);
}

int pd_store_put_package(pd_store_t *s, const pd_store_package_t *p)
{
    if (!s || !p)
        return -EINVAL;
    begin_call(s);
    if (!FIELD_OK(p->id) || !FIELD_OK(p->version) || !FIELD_OK(p->language) ||
        !FIELD_OK(p->runtime_version) || !FIELD_OK(p->entry) || !FIELD_OK(p->host_mode) ||
        !FIELD_OK(p->digest) || !p->manifest_json)
        return fail(s, -EINVAL, "put package: unterminated field or no manifest");
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_PUT_PACKAGE, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, p->id);
    bind_text(st, 2, p->version);
    bind_text(st, 3, p->language);
    bind_text(st, 4, p->runtime_version);
    bind_text(st, 5, p->entry);
    bind_text(st, 6, p->host_mode);
    bind_text(st, 7, p->manifest_json);
    bind_text(st, 8, p->digest);
    sqlite3_bind_int64(st, 9, p->registered_at ? p->registered_at : (int64_t)plat_now_ms());
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        r = 0;
    else if (map_rc(s->db, rc) == -EEXIST)
        r = fail(s, -EEXIST, "package %s@%s is registered already", p->id, p->version);
    else
        r = fail(s, map_rc(s->db, rc), "put package %s@%s: %s", p->id, p->version,
                 sqlite3_errmsg(s->db));
    stmt_put(s, ST_PUT_PACKAGE);
    return r;
}

static int read_package(pd_store_t *s, sqlite3_stmt *st, pd_store_package_t *p)
{
    memset(p, 0, sizeof *p);
    int r = col_copy(s, st, 0, p->id, sizeof p->id);
    if (!r)
        r = col_copy(s, st, 1, p->version, sizeof p->version);
    if (!r)
        r = col_copy(s, st, 2, p->language, sizeof p->language);
    if (!r)
        r = col_copy(s, st, 3, p->runtime_version, sizeof p->runtime_version);
    if (!r)
        r = col_copy(s, st, 4, p->entry, sizeof p->entry);
    if (!r)
        r = col_copy(s, st, 5, p->host_mode, sizeof p->host_mode);
    if (!r)
        r = col_copy(s, st, 7, p->digest, sizeof p->digest);
    p->registered_at = sqlite3_column_int64(st, 8);
    if (!r)
        r = col_dup(s, st, 6, &p->manifest_json);
    return r;
}

int pd_store_get_package(pd_store_t *s, const char *id, const char *version,
                         pd_store_package_t *out)
{
    if (!s || !id || !version || !out)
        return -EINVAL;
    begin_call(s);
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_GET_PACKAGE, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, id);
    bind_text(st, 2, version);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        r = read_package(s, st, out);
    else if (rc == SQLITE_DONE)
        r = fail(s, -ENOENT, "package %s@%s is not registered", id, version);
    else
        r = fail_sql(s, rc, "get package");
    stmt_put(s, ST_GET_PACKAGE);
    if (r < 0)
        pd_store_package_clear(out);
    return r;
}

typedef struct {
    pd_store_package_cb cb;
    void *arg;
} package_rows_t;

static int package_row(pd_store_t *s, sqlite3_stmt *st, void *ctx)
{
    package_rows_t *c = ctx;
    pd_store_package_t p;
    int r = read_package(s, st, &p);
    if (r == 0)
        r = c->cb(&p, c->arg);
    pd_store_package_clear(&p);
    return r;
}

int pd_store_list_packages(pd_store_t *s, pd_store_package_cb cb, void *arg)
{
    if (!s || !cb)
        return -EINVAL;
    begin_call(s);
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_LIST_PACKAGES, &st);
    if (r < 0)
        return r;
    r = each_row(s, st, "list packages", package_row, &(package_rows_t){cb, arg});
    stmt_put(s, ST_LIST_PACKAGES);
    return r;
}

/* --- instances --------------------------------------------------------- */

void pd_store_instance_clear(pd_store_instance_t *inst)
{
    if (!inst)
        return;
    free(inst->config_json);
    memset(inst, 0, sizeof *inst);
}

static bool instance_fields_ok(const pd_store_instance_t *i)
{
    return FIELD_OK(i->uuid) && FIELD_OK(i->plugin) && FIELD_OK(i->version) && FIELD_OK(i->org) &&
           FIELD_OK(i->actual_state) && FIELD_OK(i->desired_state) && FIELD_OK(i->host_mode) &&
           FIELD_OK(i->last_error) && FIELD_OK(i->previous_version);
}

/* Say which constraint refused an instance write. */
static int fail_instance(pd_store_t *s, int rc, const char *what, const pd_store_instance_t *i,
                         const char *uuid)
{
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        if (i && i->previous_version[0])
            return fail(s, -ENOENT,
                        "%s %s: package %s@%s (or previous version %s) is not "
                        "registered",
                        what, uuid, i->plugin, i->version, i->previous_version);
        if (i)
            return fail(s, -ENOENT, "%s %s: package %s@%s is not registered", what, uuid, i->plugin,
                        i->version);
    }
    if (map_rc(s->db, rc) == -EEXIST)
        return fail(s, -EEXIST, "%s %s: instance exists already", what, uuid);
    return fail(s, map_rc(s->db, rc), "%s %s: %s", what, uuid, sqlite3_errmsg(s->db));
}

int pd_store_insert_instance(pd_store_t *s, const pd_store_instance_t *i)
{
    if (!s || !i)
        return -EINVAL;
    begin_call(s);
    if (!instance_fields_ok(i))
        return fail(s, -EINVAL, "insert instance: unterminated field");
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_INSERT_INSTANCE, &st);
    if (r < 0)
        return r;
    int64_t now = (int64_t)plat_now_ms();
    bind_text(st, 1, i->uuid);
    bind_text(st, 2, i->plugin);
    bind_text(st, 3, i->version);
    bind_text(st, 4, i->org);
    bind_text(st, 5, i->config_json ? i->config_json : "{}");
    bind_text(st, 6, i->actual_state);
    bind_text(st, 7, i->desired_state);
    bind_text(st, 8, i->host_mode);
    bind_opt(st, 9, i->last_error);
    sqlite3_bind_int(st, 10, i->crash_count);
    sqlite3_bind_int64(st, 11, i->created_at ? i->created_at : now);
    sqlite3_bind_int64(st, 12, now);
    bind_opt(st, 13, i->previous_version);
    int rc = sqlite3_step(st);
    r = rc == SQLITE_DONE ? 0 : fail_instance(s, rc, "insert instance", i, i->uuid);
    stmt_put(s, ST_INSERT_INSTANCE);
    return r;
}

static int read_instance(pd_store_t *s, sqlite3_stmt *st, pd_store_instance_t *i)
{
    memset(i, 0, sizeof *i);
    int r = col_copy(s, st, 0, i->uuid, sizeof i->uuid);
    if (!r)
        r = col_copy(s, st, 1, i->plugin, sizeof i->plugin);
    if (!r)
        r = col_copy(s, st, 2, i->version, sizeof i->version);
    if (!r)
        r = col_copy(s, st, 3, i->org, sizeof i->org);
    if (!r)
        r = col_copy(s, st, 5, i->actual_state, sizeof i->actual_state);
    if (!r)
        r = col_copy(s, st, 6, i->desired_state, sizeof i->desired_state);
    if (!r)
        r = col_copy(s, st, 7, i->host_mode, sizeof i->host_mode);
    if (!r)
        r = col_copy(s, st, 8, i->last_error, sizeof i->last_error);
    i->crash_count = sqlite3_column_int(st, 9);
    i->created_at = sqlite3_column_int64(st, 10);
    i->updated_at = sqlite3_column_int64(st, 11);
    if (!r)
        r = col_copy(s, st, 12, i->previous_version, sizeof i->previous_version);
    if (!r)
        r = col_dup(s, st, 4, &i->config_json);
    return r;
}

int pd_store_get_instance(pd_store_t *s, const char *uuid, pd_store_instance_t *out)
{
    if (!s || !uuid || !out)
        return -EINVAL;
    begin_call(s);
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_GET_INSTANCE, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, uuid);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        r = read_instance(s, st, out);
    else if (rc == SQLITE_DONE)
        r = fail(s, -ENOENT, "no instance %s", uuid);
    else
        r = fail_sql(s, rc, "get instance");
    stmt_put(s, ST_GET_INSTANCE);
    if (r < 0)
        pd_store_instance_clear(out);
    return r;
}

typedef struct {
    pd_store_instance_cb cb;
    void *arg;
} instance_rows_t;

static int instance_row(pd_store_t *s, sqlite3_stmt *st, void *ctx)
{
    instance_rows_t *c = ctx;
    pd_store_instance_t i;
    int r = read_instance(s, st, &i);
    if (r == 0)
        r = c->cb(&i, c->arg);
    pd_store_instance_clear(&i);
    return r;
}

int pd_store_list_instances(pd_store_t *s, const char *org, pd_store_instance_cb cb, void *arg)
{
    if (!s || !cb)
        return -EINVAL;
    begin_call(s);
    int id = org ? ST_LIST_INSTANCES_ORG : ST_LIST_INSTANCES;
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, id, &st);
    if (r < 0)
        return r;
    if (org)
        bind_text(st, 1, org);
    r = each_row(s, st, "list instances", instance_row, &(instance_rows_t){cb, arg});
    stmt_put(s, id);
    return r;
}

/* UPDATE/DELETE of one instance by uuid: no row -> -ENOENT. */
static int finish_one(pd_store_t *s, int rc, const char *what, const pd_store_instance_t *i,
                      const char *uuid)
{
    if (rc != SQLITE_DONE)
        return fail_instance(s, rc, what, i, uuid);
    if (sqlite3_changes(s->db) == 0)
        return fail(s, -ENOENT, "%s: no instance %s", what, uuid);
    return 0;
}

int pd_store_update_instance_state(pd_store_t *s, const char *uuid, const char *actual,
                                   const char *desired, const char *last_error)
{
    if (!s || !uuid)
        return -EINVAL;
    begin_call(s);
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_UPDATE_STATE, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, uuid);
    bind_text(st, 2, actual);
    bind_text(st, 3, desired);
    bind_trunc(st, 4, last_error, PD_STORE_ERROR_MAX);
    sqlite3_bind_int64(st, 5, (int64_t)plat_now_ms());
    r = finish_one(s, sqlite3_step(st), "update instance state", NULL, uuid);
    stmt_put(s, ST_UPDATE_STATE);
    return r;
}

int pd_store_update_instance(pd_store_t *s, const pd_store_instance_t *i)
{
    if (!s || !i)
        return -EINVAL;
    begin_call(s);
    if (!instance_fields_ok(i))
        return fail(s, -EINVAL, "update instance: unterminated field");
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_UPDATE_INSTANCE, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, i->uuid);
    bind_text(st, 2, i->version);
    bind_text(st, 3, i->config_json ? i->config_json : "{}");
    bind_text(st, 4, i->actual_state);
    bind_text(st, 5, i->desired_state);
    bind_text(st, 6, i->host_mode);
    bind_opt(st, 7, i->last_error);
    sqlite3_bind_int(st, 8, i->crash_count);
    bind_opt(st, 9, i->previous_version);
    sqlite3_bind_int64(st, 10, (int64_t)plat_now_ms());
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        /* plugin comes from the row, not from `i`: name what was asked. */
        r = fail(s, -ENOENT,
                 "update instance %s: version %s (or previous version %s) of its "
                 "package is not registered",
                 i->uuid, i->version, i->previous_version[0] ? i->previous_version : "-");
    } else {
        r = finish_one(s, rc, "update instance", i, i->uuid);
    }
    stmt_put(s, ST_UPDATE_INSTANCE);
    return r;
}

int pd_store_delete_instance(pd_store_t *s, const char *uuid)
{
    if (!s || !uuid)
        return -EINVAL;
    begin_call(s);
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_DELETE_INSTANCE, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, uuid);
    r = finish_one(s, sqlite3_step(st), "delete instance", NULL, uuid);
    stmt_put(s, ST_DELETE_INSTANCE);
    return r;
}

/* --- actions ----------------------------------------------------------- */

int pd_store_record_action(pd_store_t *s, const char *uuid, const char *action, const char *result,
                           const char *error)
{
    if (!s)
        return -EINVAL;
    begin_call(s);
    if (!str_ok(uuid, PLAT_UUID_LEN) || !uuid[0] || !str_ok(action, PD_STORE_FIELD_MAX) ||
        !str_ok(result, PD_STORE_FIELD_MAX))
        return fail(s, -EINVAL, "record action: missing or too long uuid, action or result");
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_RECORD_ACTION, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, uuid);
    bind_text(st, 2, action);
    bind_text(st, 3, result);
    bind_trunc(st, 4, error, PD_STORE_ERROR_MAX);
    sqlite3_bind_int64(st, 5, (int64_t)plat_now_ms());
    int rc = sqlite3_step(st);
    r = rc == SQLITE_DONE ? 0
                          : fail(s, map_rc(s->db, rc), "record action %s on %s: %s", action, uuid,
                                 sqlite3_errmsg(s->db));
    stmt_put(s, ST_RECORD_ACTION);
    return r;
}

typedef struct {
    pd_store_action_cb cb;
    void *arg;
} action_rows_t;

static int action_row(pd_store_t *s, sqlite3_stmt *st, void *ctx)
{
    action_rows_t *c = ctx;
    pd_store_action_t a;
    memset(&a, 0, sizeof a);
    a.id = sqlite3_column_int64(st, 0);
    int r = col_copy(s, st, 1, a.uuid, sizeof a.uuid);
    if (!r)
        r = col_copy(s, st, 2, a.action, sizeof a.action);
    if (!r)
        r = col_copy(s, st, 3, a.result, sizeof a.result);
    if (!r)
        r = col_copy(s, st, 4, a.error, sizeof a.error);
    a.at = sqlite3_column_int64(st, 5);
    return r ? r : c->cb(&a, c->arg);
}

int pd_store_list_actions(pd_store_t *s, const char *uuid, int limit, pd_store_action_cb cb,
                          void *arg)
{
    if (!s || !cb)
        return -EINVAL;
    begin_call(s);
    int id = uuid ? ST_LIST_ACTIONS_UUID : ST_LIST_ACTIONS;
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, id, &st);
    if (r < 0)
        return r;
    sqlite3_bind_int(st, 1, limit > 0 ? limit : -1); /* LIMIT -1 = none */
    if (uuid)
        bind_text(st, 2, uuid);
    r = each_row(s, st, "list actions", action_row, &(action_rows_t){cb, arg});
    stmt_put(s, id);
    return r;
}

int pd_store_prune_actions(pd_store_t *s, int64_t before_ms, int64_t *deleted)
{
    if (!s)
        return -EINVAL;
    begin_call(s);
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_PRUNE_ACTIONS, &st);
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, before_ms);
    r = run(s, st, "prune actions");
    if (r == 0 && deleted)
        *deleted = sqlite3_changes(s->db);
    stmt_put(s, ST_PRUNE_ACTIONS);
    return r;
}

/* --- kv ---------------------------------------------------------------- */

int pd_store_kv_set(pd_store_t *s, const char *key, const char *value)
{
    if (!s)
        return -EINVAL;
    begin_call(s);
    if (!str_ok(key, PD_STORE_ID_MAX) || !key[0] || !value)
        return fail(s, -EINVAL, "kv set: missing or too long key, or no value");
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_KV_SET, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, key);
    bind_text(st, 2, value);
    r = run(s, st, "kv set");
    stmt_put(s, ST_KV_SET);
    return r;
}

int pd_store_kv_get(pd_store_t *s, const char *key, char **value)
{
    if (!s || !key || !value)
        return -EINVAL;
    begin_call(s);
    *value = NULL;
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_KV_GET, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        r = col_dup(s, st, 0, value);
    else if (rc == SQLITE_DONE)
        r = fail(s, -ENOENT, "no key %s", key);
    else
        r = fail_sql(s, rc, "kv get");
    stmt_put(s, ST_KV_GET);
    return r;
}

int pd_store_kv_delete(pd_store_t *s, const char *key)
{
    if (!s || !key)
        return -EINVAL;
    begin_call(s);
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_KV_DELETE, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, key);
    r = run(s, st, "kv delete");
    if (r == 0 && sqlite3_changes(s->db) == 0)
        r = fail(s, -ENOENT, "no key %s", key);
    stmt_put(s, ST_KV_DELETE);
    return r;
}

/* --- tasks and services ------------------------------------------------- */

static bool task_fields_ok(const pd_store_task_t *t)
{
    return FIELD_OK(t->instance) && FIELD_OK(t->name) && FIELD_OK(t->cron) &&
           FIELD_OK(t->last_result) && t->instance[0] && t->name[0] && t->cron[0];
}

/* A write naming an instance: the foreign key says "no such instance". */
static int fail_owned(pd_store_t *s, int rc, const char *what, const char *instance)
{
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return fail(s, -ENOENT, "%s: no instance %s", what, instance);
    return fail(s, map_rc(s->db, rc), "%s (instance %s): %s", what, instance,
                sqlite3_errmsg(s->db));
}

int pd_store_put_task(pd_store_t *s, const pd_store_task_t *t)
{
    if (!s || !t)
        return -EINVAL;
    begin_call(s);
    if (!task_fields_ok(t))
        return fail(s, -EINVAL, "put task: missing or unterminated instance, name or cron");
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_PUT_TASK, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, t->instance);
    bind_text(st, 2, t->name);
    bind_text(st, 3, t->cron);
    sqlite3_bind_int64(st, 4, t->next_due);
    sqlite3_bind_int64(st, 5, t->last_run);
    bind_opt(st, 6, t->last_result);
    sqlite3_bind_int64(st, 7, t->created_at ? t->created_at : (int64_t)plat_now_ms());
    int rc = sqlite3_step(st);
    r = rc == SQLITE_DONE ? 0 : fail_owned(s, rc, "put task", t->instance);
    stmt_put(s, ST_PUT_TASK);
    return r;
}

int pd_store_update_task_run(pd_store_t *s, const char *instance, const char *name,
                             int64_t next_due, int64_t last_run, const char *last_result)
{
    if (!s || !instance || !name)
        return -EINVAL;
    begin_call(s);
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_UPDATE_TASK_RUN, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, instance);
    bind_text(st, 2, name);
    sqlite3_bind_int64(st, 3, next_due);
    sqlite3_bind_int64(st, 4, last_run);
    bind_trunc(st, 5, last_result, PD_STORE_FIELD_MAX);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        r = fail_sql(s, rc, "update task run");
    else if (sqlite3_changes(s->db) == 0)
        r = fail(s, -ENOENT, "update task run: no task %s of instance %s", name, instance);
    stmt_put(s, ST_UPDATE_TASK_RUN);
    return r;
}

int pd_store_delete_task(pd_store_t *s, const char *instance, const char *name)
{
    if (!s || !instance || !name)
        return -EINVAL;
    begin_call(s);
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_DELETE_TASK, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, instance);
    bind_text(st, 2, name);
    r = run(s, st, "delete task");
    if (r == 0 && sqlite3_changes(s->db) == 0)
        r = fail(s, -ENOENT, "delete task: no task %s of instance %s", name, instance);
    stmt_put(s, ST_DELETE_TASK);
    return r;
}

int pd_store_delete_tasks_of(pd_store_t *s, const char *instance, int64_t *deleted)
{
    if (!s || !instance)
        return -EINVAL;
    begin_call(s);
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_DELETE_TASKS_OF, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, instance);
    r = run(s, st, "delete tasks");
    if (r == 0 && deleted)
        *deleted = sqlite3_changes(s->db);
    stmt_put(s, ST_DELETE_TASKS_OF);
    return r;
}

typedef struct {
    pd_store_task_cb cb;
    void *arg;
} task_rows_t;

static int task_row(pd_store_t *s, sqlite3_stmt *st, void *ctx)
{
    task_rows_t *c = ctx;
    pd_store_task_t t;
    memset(&t, 0, sizeof t);
    int r = col_copy(s, st, 0, t.instance, sizeof t.instance);
    if (!r)
        r = col_copy(s, st, 1, t.name, sizeof t.name);
    if (!r)
        r = col_copy(s, st, 2, t.cron, sizeof t.cron);
    t.next_due = sqlite3_column_int64(st, 3);
    t.last_run = sqlite3_column_int64(st, 4);
    if (!r)
        r = col_copy(s, st, 5, t.last_result, sizeof t.last_result);
    t.created_at = sqlite3_column_int64(st, 6);
    return r ? r : c->cb(&t, c->arg);
}

int pd_store_list_tasks(pd_store_t *s, const char *instance, pd_store_task_cb cb, void *arg)
{
    if (!s || !cb)
        return -EINVAL;
    begin_call(s);
    int id = instance ? ST_LIST_TASKS_OF : ST_LIST_TASKS;
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, id, &st);
    if (r < 0)
        return r;
    if (instance)
        bind_text(st, 1, instance);
    r = each_row(s, st, "list tasks", task_row, &(task_rows_t){cb, arg});
    stmt_put(s, id);
    return r;
}

int pd_store_put_service(pd_store_t *s, const pd_store_service_t *v)
{
    if (!s || !v)
        return -EINVAL;
    begin_call(s);
    if (!FIELD_OK(v->instance) || !FIELD_OK(v->health_path) || !v->instance[0] ||
        !v->health_path[0] || v->port < 1 || v->port > 65535)
        return fail(s, -EINVAL, "put service: missing instance or health path, or bad port");
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_PUT_SERVICE, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, v->instance);
    sqlite3_bind_int(st, 2, (int)v->port);
    bind_text(st, 3, v->health_path);
    sqlite3_bind_int64(st, 4, v->registered_at ? v->registered_at : (int64_t)plat_now_ms());
    int rc = sqlite3_step(st);
    r = rc == SQLITE_DONE ? 0 : fail_owned(s, rc, "put service", v->instance);
    stmt_put(s, ST_PUT_SERVICE);
    return r;
}

int pd_store_delete_service(pd_store_t *s, const char *instance)
{
    if (!s || !instance)
        return -EINVAL;
    begin_call(s);
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_DELETE_SERVICE, &st);
    if (r < 0)
        return r;
    bind_text(st, 1, instance);
    r = run(s, st, "delete service");
    if (r == 0 && sqlite3_changes(s->db) == 0)
        r = fail(s, -ENOENT, "delete service: instance %s has none", instance);
    stmt_put(s, ST_DELETE_SERVICE);
    return r;
}

typedef struct {
    pd_store_service_cb cb;
    void *arg;
} service_rows_t;

static int service_row(pd_store_t *s, sqlite3_stmt *st, void *ctx)
{
    service_rows_t *c = ctx;
    pd_store_service_t v;
    memset(&v, 0, sizeof v);
    int r = col_copy(s, st, 0, v.instance, sizeof v.instance);
    v.port = (uint32_t)sqlite3_column_int(st, 1);
    if (!r)
        r = col_copy(s, st, 2, v.health_path, sizeof v.health_path);
    v.registered_at = sqlite3_column_int64(st, 3);
    return r ? r : c->cb(&v, c->arg);
}

int pd_store_list_services(pd_store_t *s, pd_store_service_cb cb, void *arg)
{
    if (!s || !cb)
        return -EINVAL;
    begin_call(s);
    sqlite3_stmt *st = NULL;
    int r = stmt_get(s, ST_LIST_SERVICES, &st);
    if (r < 0)
        return r;
    r = each_row(s, st, "list services", service_row, &(service_rows_t){cb, arg});
    stmt_put(s, ST_LIST_SERVICES);
    return r;
}
