/* Resource channel, DB kind (ARCHITECTURE.md section 8): one SQLite file
 * per plugin instance, one statement per request with bound parameters,
 * typed rows out. docs/resources.md is the reference.
 *
 * Policy, set on every connection this module opens:
 *   - an authorizer denies ATTACH, DETACH, the load_extension() function
 *     and every PRAGMA except a read-only allow-list (table_info,
 *     table_xinfo, table_list, index_list, index_info, index_xinfo,
 *     foreign_key_list, foreign_key_check, and user_version read or set);
 *   - SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION 0, SQLITE_LIMIT_ATTACHED 0
 *     (which also stops VACUUM INTO), SQLITE_DBCONFIG_DEFENSIVE 1,
 *     SQLITE_DBCONFIG_TRUSTED_SCHEMA 0;
 *   - a statement time limit (progress handler with a deadline), a row cap
 *     and a result byte cap.
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
 *   -EFBIG      more rows than max_rows or more bytes than max_bytes
 *   -EBUSY, -ENOSPC, -EIO, -EROFS, -EBADMSG (corrupt), -ENOMEM from SQLite */
#ifndef PLATFORMD_RES_DB_H
#define PLATFORMD_RES_DB_H

#include <stddef.h>
#include <stdint.h>

#include "resource.pb-c.h"

typedef struct {
    int64_t timeout_ms; /* statement time limit; <= 0 = none */
    int64_t max_rows;   /* rows in a result; <= 0 = none */
    int64_t max_bytes;  /* approximate encoded size of a result; <= 0 = none */
} pd_res_db_limits_t;

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
