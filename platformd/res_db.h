/* Resource channel, DB kind (ARCHITECTURE.md section 8): one SQLite file
 * per plugin instance, one statement per request with bound parameters,
 * typed rows out. docs/resources.md is the reference.
 *
 * Policy, set on every connection this module opens:
 *   - an authorizer denies ATTACH (but for the private temporary database
 *     plain VACUUM attaches while it runs; VACUUM INTO is denied), DETACH,
 *     the functions load_extension(), fts3_tokenizer(), fts5() (and
 *     readfile(), writefile(), edit(), icu_load_collation() where a build
 *     has them) and every PRAGMA except a read-only allow-list (table_info,
 *     table_xinfo, table_list, index_list, index_info, index_xinfo,
 *     foreign_key_list, foreign_key_check, page_size and data_version read,
 *     and user_version read or set);
 *   - SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION 0, SQLITE_DBCONFIG_ENABLE_FTS3_
 *     TOKENIZER 0, SQLITE_LIMIT_ATTACHED 0 (1 only while a statement steps),
 *     SQLITE_DBCONFIG_DEFENSIVE 1, SQLITE_DBCONFIG_TRUSTED_SCHEMA 0;
 *   - a statement time limit (progress handler with a deadline), a row cap
 *     and a result byte cap; SQLITE_LIMIT_LENGTH (largest value, row or SQL
 *     text) is the byte cap + 64 KiB, so no bigger value is ever built;
 *   - a file quota: PRAGMA max_page_count from max_file_bytes.
 *
 * Pure SQLite: no loop, no bus, no logging. A connection is used by one
 * thread at a time (the caller serializes; the resource channel runs one
 * operation per instance at a time on the libuv thread pool).
 *
 * Errors (negative errno, `why` one line, NUL-terminated when size > 0):
 *   -EINVAL     bad request: empty SQL, more than one statement, syntax,
 *               parameter count or type, constraint violation
 *   -EACCES     denied by the authorizer (why names what: "ATTACH denied")
 *   -ETIMEDOUT  the statement ran past the time limit (rolled back by SQLite)
 *   -EFBIG      more rows than max_rows or more bytes than max_bytes, or
 *               one value (or the SQL text) over max_bytes + 64 KiB
 *   -EDQUOT     the database file reached max_file_bytes (SQLITE_FULL: a
 *               full disk gives it too)
 *   -EBUSY, -EIO, -EROFS, -EBADMSG (corrupt), -ENOMEM from SQLite; -ENOSPC
 *   only from pd_res_db_open */
#ifndef PLATFORMD_RES_DB_H
#define PLATFORMD_RES_DB_H

#include <stddef.h>
#include <stdint.h>

#include "resource.pb-c.h"

typedef struct {
    int64_t timeout_ms;     /* statement time limit; <= 0 = none */
    int64_t max_rows;       /* rows in a result; <= 0 = none */
    int64_t max_bytes;      /* approximate encoded size of a result; <= 0 = none */
    int64_t max_file_bytes; /* database file quota; <= 0 = the default below */
} pd_res_db_limits_t;

/* The quota when max_file_bytes <= 0 (resources.db_max_file_bytes). */
#define PD_RES_DB_MAX_FILE_BYTES_DEFAULT (256LL * 1024 * 1024)

typedef struct pd_res_db pd_res_db_t;

/* Open (create, 0600) the database at `path` with the policy above. A
 * symbolic link at `path` is refused. 0 and *out, or -errno with why. */
int pd_res_db_open(const char *path, pd_res_db_t **out, char *why, size_t why_size);

/* Close (an open transaction is rolled back); NULL-safe; sets *db = NULL. */
void pd_res_db_close(pd_res_db_t **db);

/* Run the one statement of req->sql with req->params bound to ?1..?N (the
 * count must match the statement's parameters). On success *out is a new
 * result (every part malloc'd: it may be attached to a message freed by
 * plat_envelope_free, or freed with pd_res_db_result_free): columns, typed
 * rows, changes and last_insert_id. On failure *out is NULL. */
int pd_res_db_exec(pd_res_db_t *db, const Plat__DbExecRequest *req,
                   const pd_res_db_limits_t *limits, Plat__DbExecResult **out, char *why,
                   size_t why_size);

/* Free a result from pd_res_db_exec; NULL-safe; sets *r = NULL. */
void pd_res_db_result_free(Plat__DbExecResult **r);

#endif
