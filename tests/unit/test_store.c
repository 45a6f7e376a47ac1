/* platformd's state store: open/create/migrate/refuse, CRUD of every table,
 * constraints, batches, and durability across a SIGKILL. Each test works in
 * its own temp dir. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"

typedef struct {
    char dir[64];
    char path[128];
    pd_store_t *store;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/state.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    pd_store_close(&f->store);
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static pd_store_t *open_ok(fixture_t *f)
{
    char why[512] = "x";
    int r = pd_store_open(f->path, &f->store, why, sizeof why);
    if (r != 0)
        print_error("open: %d %s\n", r, why);
    assert_int_equal(r, 0);
    assert_non_null(f->store);
    assert_string_equal(why, "");
    return f->store;
}

static void reopen(fixture_t *f)
{
    pd_store_close(&f->store);
    assert_null(f->store);
    open_ok(f);
}

static pd_store_package_t pkg(const char *id, const char *version)
{
    pd_store_package_t p;
    memset(&p, 0, sizeof p);
    snprintf(p.id, sizeof p.id, "%s", id);
    snprintf(p.version, sizeof p.version, "%s", version);
    snprintf(p.language, sizeof p.language, "c");
    snprintf(p.runtime_version, sizeof p.runtime_version, "1");
    snprintf(p.entry, sizeof p.entry, "lib%s.so", id);
    snprintf(p.host_mode, sizeof p.host_mode, "highPerformance");
    snprintf(p.digest, sizeof p.digest, "sha256:abc");
    p.manifest_json = (char *)"{\"id\":\"x\"}";
    return p;
}

static pd_store_instance_t inst(const char *uuid, const char *plugin, const char *version,
                                const char *org, const char *state)
{
    pd_store_instance_t i;
    memset(&i, 0, sizeof i);
    snprintf(i.uuid, sizeof i.uuid, "%s", uuid);
    snprintf(i.plugin, sizeof i.plugin, "%s", plugin);
    snprintf(i.version, sizeof i.version, "%s", version);
    snprintf(i.org, sizeof i.org, "%s", org);
    snprintf(i.actual_state, sizeof i.actual_state, "%s", state);
    snprintf(i.desired_state, sizeof i.desired_state, "%s", state);
    snprintf(i.host_mode, sizeof i.host_mode, "powerSave");
    i.config_json = (char *)"{\"greeting\":\"hi\"}";
    return i;
}

/* A store with hello@1.0.0 and hello@2.0.0 registered. */
static pd_store_t *with_packages(fixture_t *f)
{
    pd_store_t *s = open_ok(f);
    pd_store_package_t p1 = pkg("hello", "1.0.0"), p2 = pkg("hello", "2.0.0");
    assert_int_equal(pd_store_put_package(s, &p1), 0);
    assert_int_equal(pd_store_put_package(s, &p2), 0);
    return s;
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (int)(st.st_mode & 07777);
}

static int count_instances(pd_store_t *s, const char *org);

/* --- open, schema, refusals -------------------------------------------- */

static void test_create_reopen_keeps_data(void **state)
{
    fixture_t *f = *state;
    pd_store_t *s = with_packages(f);
    pd_store_instance_t i = inst(U1, "hello", "1.0.0", "acme", PD_STATE_INSTALLED);
    assert_int_equal(pd_store_insert_instance(s, &i), 0);
    assert_int_equal(pd_store_kv_set(s, "boot_id", "b1"), 0);
    reopen(f);

    pd_store_package_t p;
    assert_int_equal(pd_store_get_package(f->store, "hello", "2.0.0", &p), 0);
    assert_string_equal(p.entry, "libhello.so");
    pd_store_package_clear(&p);
    pd_store_instance_t got;
    assert_int_equal(pd_store_get_instance(f->store, U1, &got), 0);
    assert_string_equal(got.org, "acme");
    pd_store_instance_clear(&got);
    char *v = NULL;
    assert_int_equal(pd_store_kv_get(f->store, "boot_id", &v), 0);
    assert_string_equal(v, "b1");
    free(v);
}

static void test_pragmas_and_mode(void **state)
{
    fixture_t *f = *state;
    umask(022);
    pd_store_t *s = open_ok(f);
    pd_store_info_t info;
    assert_int_equal(pd_store_info(s, &info), 0);
    assert_int_equal(info.schema_version, pd_store_schema_version());
    assert_true(pd_store_schema_version() >= 1);
    assert_string_equal(info.journal_mode, "wal");
    assert_int_equal(info.synchronous, 2); /* FULL */
    assert_true(info.foreign_keys);

    /* Seen from another connection: the persistent settings. */
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), pd_store_schema_version());
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* 0600, and so are the WAL files SQLite creates beside it. */
    assert_int_equal(file_mode(f->path), 0600);
    pd_store_package_t p = pkg("hello", "1.0.0");
    assert_int_equal(pd_store_put_package(s, &p), 0);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(file_mode(wal), 0600);
}

static void test_migrate_empty_file(void **state)
{
    fixture_t *f = *state;
    int fd = open(f->path, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chmod(f->path, 0644), 0);
    pd_store_t *s = open_ok(f);
    assert_int_equal(file_mode(f->path), 0600); /* narrowed */
    pd_store_info_t info;
    assert_int_equal(pd_store_info(s, &info), 0);
    assert_int_equal(info.schema_version, pd_store_schema_version());
    /* The schema is there and usable. */
    pd_store_package_t p = pkg("hello", "1.0.0");
    assert_int_equal(pd_store_put_package(s, &p), 0);
    /* Reopening an up-to-date file migrates nothing and keeps the data. */
    reopen(f);
    assert_int_equal(pd_store_get_package(f->store, "hello", "1.0.0", &p), 0);
    pd_store_package_clear(&p);
}

static void test_newer_version_refused(void **state)
{
    fixture_t *f = *state;
    open_ok(f);
    pd_store_close(&f->store);
    char sql[64];
    int newer = pd_store_schema_version() + 1;
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", newer);
    raw_exec(f->path, sql);

    char why[512] = "";
    pd_store_t *s = (pd_store_t *)0x1;
    assert_int_equal(pd_store_open(f->path, &s, why, sizeof why), -EPROTONOSUPPORT);
    assert_null(s);
    assert_non_null(strstr(why, f->path));
    assert_non_null(strstr(why, "newer"));
    /* Never downgraded. */
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), newer);
}

static void test_garbage_file_refused(void **state)
{
    fixture_t *f = *state;
    static const char junk[] = "this is not a database, just a text file that happens to be "
                               "long enough to hold a header, and then some more text.\n";
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    for (int k = 0; k < 20; k++)
        fputs(junk, fp);
    fclose(fp);
    struct stat before;
    assert_int_equal(stat(f->path, &before), 0);

    char why[512] = "";
    pd_store_t *s = NULL;
    assert_int_equal(pd_store_open(f->path, &s, why, sizeof why), -EBADMSG);
    assert_null(s);
    assert_non_null(strstr(why, f->path));
    assert_non_null(strstr(why, "not an SQLite database"));

    /* Left untouched: same size, same first bytes, no WAL beside it. */
    struct stat after;
    assert_int_equal(stat(f->path, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    fp = fopen(f->path, "r");
    char head[sizeof junk];
    assert_non_null(fgets(head, sizeof head, fp));
    fclose(fp);
    assert_string_equal(head, junk);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(access(wal, F_OK), -1);
}

static void test_foreign_database_refused(void **state)
{
    fixture_t *f = *state;
    raw_exec(f->path, "CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('x');");
    char why[512] = "";
    pd_store_t *s = NULL;
    assert_int_equal(pd_store_open(f->path, &s, why, sizeof why), -EBADMSG);
    assert_null(s);
    assert_non_null(strstr(why, "another application"));
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM songs"), 1);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 0);
}

static void test_open_bad_args(void **state)
{
    fixture_t *f = *state;
    char why[512];
    pd_store_t *s = NULL;
    assert_int_equal(pd_store_open(NULL, &s, why, sizeof why), -EINVAL);
    assert_int_equal(pd_store_open("", &s, why, sizeof why), -EINVAL);
    assert_int_equal(pd_store_open(f->path, NULL, why, sizeof why), -EINVAL);
    assert_int_equal(pd_store_open(f->dir, &s, why, sizeof why), -EISDIR);
    assert_non_null(strstr(why, f->dir));
    assert_int_equal(mkfifo(f->path, 0600), 0); /* opened O_RDWR, a FIFO does not block */
    assert_int_equal(pd_store_open(f->path, &s, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "not a regular file"));
    unlink(f->path);
    char missing[200];
    snprintf(missing, sizeof missing, "%s/no/such/dir/state.db", f->dir);
    assert_int_equal(pd_store_open(missing, &s, why, sizeof why), -ENOENT);
    assert_non_null(strstr(why, missing));
    assert_null(s);
    /* why may be NULL */
    assert_int_equal(pd_store_open(missing, &s, NULL, 0), -ENOENT);
    pd_store_close(NULL);
    pd_store_close(&s);
}

/* --- packages ---------------------------------------------------------- */

typedef struct {
    int n;
    int stop_at;
    char ids[8][200];
} seen_t;

static int pkg_cb(const pd_store_package_t *p, void *arg)
{
    seen_t *seen = arg;
    snprintf(seen->ids[seen->n], sizeof seen->ids[0], "%s@%s", p->id, p->version);
    assert_non_null(p->manifest_json);
    seen->n++;
    return seen->n == seen->stop_at ? 42 : 0;
}

static void test_package_crud(void **state)
{
    fixture_t *f = *state;
    pd_store_t *s = open_ok(f);
    pd_store_package_t a = pkg("zeta", "1.0.0"), b = pkg("alpha", "0.2.0"),
                       c = pkg("alpha", "0.10.0");
    a.registered_at = 1234;
    assert_int_equal(pd_store_put_package(s, &a), 0);
    assert_int_equal(pd_store_put_package(s, &b), 0);
    assert_int_equal(pd_store_put_package(s, &c), 0);

    /* Immutable per (id, version). */
    pd_store_package_t dup = pkg("zeta", "1.0.0");
    snprintf(dup.entry, sizeof dup.entry, "other.so");
    assert_int_equal(pd_store_put_package(s, &dup), -EEXIST);
    assert_non_null(strstr(pd_store_why(s), "zeta@1.0.0"));

    pd_store_package_t got;
    assert_int_equal(pd_store_get_package(s, "zeta", "1.0.0", &got), 0);
    assert_string_equal(got.id, "zeta");
    assert_string_equal(got.version, "1.0.0");
    assert_string_equal(got.language, "c");
    assert_string_equal(got.runtime_version, "1");
    assert_string_equal(got.entry, "libzeta.so");
    assert_string_equal(got.host_mode, "highPerformance");
    assert_string_equal(got.digest, "sha256:abc");
    assert_string_equal(got.manifest_json, "{\"id\":\"x\"}");
    assert_int_equal(got.registered_at, 1234);
    pd_store_package_clear(&got);
    assert_null(got.manifest_json);
    assert_int_equal(pd_store_get_package(s, "alpha", "0.2.0", &got), 0);
    assert_true(got.registered_at > 1000000000000LL); /* defaulted to now */
    pd_store_package_clear(&got);

    assert_int_equal(pd_store_get_package(s, "zeta", "9.9.9", &got), -ENOENT);
    assert_null(got.manifest_json);
    assert_string_equal(pd_store_why(s), "package zeta@9.9.9 is not registered");

    seen_t seen = {0};
    assert_int_equal(pd_store_list_packages(s, pkg_cb, &seen), 0);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.ids[0], "alpha@0.10.0");
    assert_string_equal(seen.ids[1], "alpha@0.2.0");
    assert_string_equal(seen.ids[2], "zeta@1.0.0");
    seen_t stop = {.stop_at = 2};
    assert_int_equal(pd_store_list_packages(s, pkg_cb, &stop), 42);
    assert_int_equal(stop.n, 2);

    /* Refused inputs. */
    pd_store_package_t bad = pkg("x", "1");
    bad.manifest_json = NULL;
    assert_int_equal(pd_store_put_package(s, &bad), -EINVAL);
    bad = pkg("", "1");
    assert_int_equal(pd_store_put_package(s, &bad), -EINVAL); /* CHECK id <> '' */
    bad = pkg("x", "1");
    memset(bad.id, 'a', sizeof bad.id); /* unterminated */
    assert_int_equal(pd_store_put_package(s, &bad), -EINVAL);
    assert_int_equal(pd_store_list_packages(s, NULL, NULL), -EINVAL);
}

/* --- instances --------------------------------------------------------- */

static void test_instance_crud(void **state)
{
    fixture_t *f = *state;
    pd_store_t *s = with_packages(f);
    pd_store_instance_t i = inst(U1, "hello", "1.0.0", "acme", PD_STATE_INSTALLED);
    i.created_at = 777;
    assert_int_equal(pd_store_insert_instance(s, &i), 0);
    assert_int_equal(pd_store_insert_instance(s, &i), -EEXIST);
    assert_non_null(strstr(pd_store_why(s), U1));

    pd_store_instance_t got;
    assert_int_equal(pd_store_get_instance(s, U1, &got), 0);
    assert_string_equal(got.uuid, U1);
    assert_string_equal(got.plugin, "hello");
    assert_string_equal(got.version, "1.0.0");
    assert_string_equal(got.org, "acme");
    assert_string_equal(got.config_json, "{\"greeting\":\"hi\"}");
    assert_string_equal(got.actual_state, "installed");
    assert_string_equal(got.desired_state, "installed");
    assert_string_equal(got.host_mode, "powerSave");
    assert_string_equal(got.last_error, "");
    assert_string_equal(got.previous_version, "");
    assert_int_equal(got.crash_count, 0);
    assert_int_equal(got.created_at, 777);
    assert_true(got.updated_at > 1000000000000LL);
    pd_store_instance_clear(&got);

    /* State: NULL keeps, last_error set then cleared. */
    assert_int_equal(pd_store_update_instance_state(s, U1, NULL, "running", NULL), 0);
    assert_int_equal(pd_store_get_instance(s, U1, &got), 0);
    assert_string_equal(got.actual_state, "installed");
    assert_string_equal(got.desired_state, "running");
    pd_store_instance_clear(&got);
    assert_int_equal(pd_store_update_instance_state(s, U1, "failed", NULL, "start timed out"), 0);
    assert_int_equal(pd_store_get_instance(s, U1, &got), 0);
    assert_string_equal(got.actual_state, "failed");
    assert_string_equal(got.desired_state, "running");
    assert_string_equal(got.last_error, "start timed out");
    pd_store_instance_clear(&got);
    assert_int_equal(pd_store_update_instance_state(s, U1, "running", NULL, ""), 0);
    assert_int_equal(pd_store_get_instance(s, U1, &got), 0);
    assert_string_equal(got.last_error, "");
    pd_store_instance_clear(&got);

    /* A long error is cut to the field, on a character boundary. */
    char longerr[1000];
    memset(longerr, 'e', sizeof longerr - 1);
    longerr[sizeof longerr - 1] = '\0';
    memcpy(longerr + PD_STORE_ERROR_MAX - 1, "\xc3\xa9", 2); /* 'é' straddles the limit */
    assert_int_equal(pd_store_update_instance_state(s, U1, NULL, NULL, longerr), 0);
    assert_int_equal(pd_store_get_instance(s, U1, &got), 0);
    assert_int_equal(strlen(got.last_error), PD_STORE_ERROR_MAX - 1);
    pd_store_instance_clear(&got);

    /* General update: an upgrade to 2.0.0 remembering 1.0.0. */
    pd_store_instance_t up = inst(U1, "ignored", "2.0.0", "ignored", PD_STATE_STOPPED);
    snprintf(up.previous_version, sizeof up.previous_version, "1.0.0");
    snprintf(up.last_error, sizeof up.last_error, "oops");
    snprintf(up.host_mode, sizeof up.host_mode, "highPerformance");
    up.config_json = NULL; /* -> "{}" */
    up.crash_count = 3;
    assert_int_equal(pd_store_update_instance(s, &up), 0);
    assert_int_equal(pd_store_get_instance(s, U1, &got), 0);
    assert_string_equal(got.plugin, "hello"); /* immutable */
    assert_string_equal(got.org, "acme");     /* immutable */
    assert_int_equal(got.created_at, 777);    /* immutable */
    assert_string_equal(got.version, "2.0.0");
    assert_string_equal(got.previous_version, "1.0.0");
    assert_string_equal(got.config_json, "{}");
    assert_string_equal(got.actual_state, "stopped");
    assert_string_equal(got.host_mode, "highPerformance");
    assert_string_equal(got.last_error, "oops");
    assert_int_equal(got.crash_count, 3);
    pd_store_instance_clear(&got);

    /* Unknown uuid. */
    assert_int_equal(pd_store_update_instance_state(s, U2, "running", NULL, NULL), -ENOENT);
    assert_non_null(strstr(pd_store_why(s), U2));
    pd_store_instance_t other = inst(U2, "hello", "1.0.0", "acme", PD_STATE_INSTALLED);
    assert_int_equal(pd_store_update_instance(s, &other), -ENOENT);
    assert_int_equal(pd_store_get_instance(s, U2, &got), -ENOENT);
    assert_null(got.config_json);

    assert_int_equal(pd_store_delete_instance(s, U1), 0);
    assert_int_equal(pd_store_delete_instance(s, U1), -ENOENT);
    assert_int_equal(pd_store_get_instance(s, U1, &got), -ENOENT);
    assert_int_equal(count_instances(s, NULL), 0);
}

typedef struct {
    int n;
    char uuids[8][PLAT_UUID_LEN + 1];
} inst_seen_t;

static int inst_cb(const pd_store_instance_t *i, void *arg)
{
    inst_seen_t *seen = arg;
    if (seen->n < 8)
        snprintf(seen->uuids[seen->n], sizeof seen->uuids[0], "%s", i->uuid);
    seen->n++;
    return 0;
}

static int count_instances(pd_store_t *s, const char *org)
{
    inst_seen_t seen = {0};
    assert_int_equal(pd_store_list_instances(s, org, inst_cb, &seen), 0);
    return seen.n;
}

static void test_list_by_org(void **state)
{
    fixture_t *f = *state;
    pd_store_t *s = with_packages(f);
    pd_store_instance_t a = inst(U3, "hello", "1.0.0", "acme", PD_STATE_INSTALLED),
                        b = inst(U1, "hello", "1.0.0", "globex", PD_STATE_INSTALLED),
                        c = inst(U2, "hello", "2.0.0", "acme", PD_STATE_RUNNING);
    a.created_at = 1;
    b.created_at = 2;
    c.created_at = 3;
    assert_int_equal(pd_store_insert_instance(s, &a), 0);
    assert_int_equal(pd_store_insert_instance(s, &b), 0);
    assert_int_equal(pd_store_insert_instance(s, &c), 0);

    inst_seen_t seen = {0};
    assert_int_equal(pd_store_list_instances(s, "acme", inst_cb, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.uuids[0], U3); /* creation order */
    assert_string_equal(seen.uuids[1], U2);
    assert_int_equal(count_instances(s, "globex"), 1);
    assert_int_equal(count_instances(s, "initech"), 0);
    assert_int_equal(count_instances(s, NULL), 3);
}

/* A callback may write through the store, but not re-enter its own list. */
static int reenter_cb(const pd_store_instance_t *i, void *arg)
{
    pd_store_t *s = arg;
    assert_int_equal(pd_store_update_instance_state(s, i->uuid, "running", NULL, NULL), 0);
    assert_int_equal(pd_store_list_instances(s, "acme", inst_cb, &(inst_seen_t){0}), -EBUSY);
    assert_non_null(strstr(pd_store_why(s), "in use"));
    /* Another list is a different statement: fine. */
    assert_int_equal(count_instances(s, NULL), 2);
    return 0;
}

static void test_list_callback_reentry(void **state)
{
    fixture_t *f = *state;
    pd_store_t *s = with_packages(f);
    pd_store_instance_t a = inst(U1, "hello", "1.0.0", "acme", PD_STATE_STOPPED),
                        b = inst(U2, "hello", "1.0.0", "acme", PD_STATE_STOPPED);
    assert_int_equal(pd_store_insert_instance(s, &a), 0);
    assert_int_equal(pd_store_insert_instance(s, &b), 0);
    assert_int_equal(pd_store_list_instances(s, "acme", reenter_cb, s), 0);
    pd_store_instance_t got;
    assert_int_equal(pd_store_get_instance(s, U2, &got), 0);
    assert_string_equal(got.actual_state, "running");
    pd_store_instance_clear(&got);
    /* The guard is released after the list. */
    assert_int_equal(count_instances(s, NULL), 2);
}

static void test_fk_refusal(void **state)
{
    fixture_t *f = *state;
    pd_store_t *s = with_packages(f);
    pd_store_instance_t i = inst(U1, "nope", "1.0.0", "acme", PD_STATE_INSTALLED);
    assert_int_equal(pd_store_insert_instance(s, &i), -ENOENT);
    assert_non_null(strstr(pd_store_why(s), "nope@1.0.0 is not registered"));
    i = inst(U1, "hello", "3.0.0", "acme", PD_STATE_INSTALLED);
    assert_int_equal(pd_store_insert_instance(s, &i), -ENOENT);
    i = inst(U1, "hello", "2.0.0", "acme", PD_STATE_INSTALLED);
    snprintf(i.previous_version, sizeof i.previous_version, "0.0.1");
    assert_int_equal(pd_store_insert_instance(s, &i), -ENOENT);
    assert_int_equal(count_instances(s, NULL), 0);

    i.previous_version[0] = '\0';
    assert_int_equal(pd_store_insert_instance(s, &i), 0);
    pd_store_instance_t up = i;
    snprintf(up.version, sizeof up.version, "9.9.9");
    assert_int_equal(pd_store_update_instance(s, &up), -ENOENT);
    assert_non_null(strstr(pd_store_why(s), "9.9.9"));
    pd_store_instance_t got;
    assert_int_equal(pd_store_get_instance(s, U1, &got), 0);
    assert_string_equal(got.version, "2.0.0");
    pd_store_instance_clear(&got);
}

static void test_check_refusal(void **state)
{
    fixture_t *f = *state;
    pd_store_t *s = with_packages(f);
    pd_store_instance_t i = inst(U1, "hello", "1.0.0", "acme", "bogus");
    assert_int_equal(pd_store_insert_instance(s, &i), -EINVAL);
    assert_non_null(strstr(pd_store_why(s), "actual_state_known"));
    i = inst(U1, "hello", "1.0.0", "acme", PD_STATE_INSTALLED);
    snprintf(i.desired_state, sizeof i.desired_state, "Running"); /* case matters */
    assert_int_equal(pd_store_insert_instance(s, &i), -EINVAL);
    i = inst(U1, "hello", "1.0.0", "", PD_STATE_INSTALLED);
    assert_int_equal(pd_store_insert_instance(s, &i), -EINVAL);
    i = inst("short", "hello", "1.0.0", "acme", PD_STATE_INSTALLED);
    assert_int_equal(pd_store_insert_instance(s, &i), -EINVAL);
    i = inst(U1, "hello", "1.0.0", "acme", PD_STATE_INSTALLED);
    i.crash_count = -1;
    assert_int_equal(pd_store_insert_instance(s, &i), -EINVAL);
    memset(i.uuid, 'a', sizeof i.uuid); /* unterminated */
    assert_int_equal(pd_store_insert_instance(s, &i), -EINVAL);
    assert_int_equal(count_instances(s, NULL), 0);

    /* Every known state is accepted, both ways. */
    static const char *const states[] = {PD_STATE_INSTALLED,  PD_STATE_ENABLED, PD_STATE_DISABLED,
                                         PD_STATE_RUNNING,    PD_STATE_STOPPED, PD_STATE_FAILED,
                                         PD_STATE_UNINSTALLED};
    i = inst(U1, "hello", "1.0.0", "acme", PD_STATE_INSTALLED);
    assert_int_equal(pd_store_insert_instance(s, &i), 0);
    for (size_t k = 0; k < sizeof states / sizeof states[0]; k++)
        assert_int_equal(pd_store_update_instance_state(s, U1, states[k], states[k], NULL), 0);

    /* A bad state on update changes nothing. */
    assert_int_equal(pd_store_update_instance_state(s, U1, "exploded", NULL, "x"), -EINVAL);
    assert_int_equal(pd_store_update_instance_state(s, U1, NULL, "", NULL), -EINVAL);
    pd_store_instance_t got;
    assert_int_equal(pd_store_get_instance(s, U1, &got), 0);
    assert_string_equal(got.actual_state, "uninstalled");
    assert_string_equal(got.last_error, "");
    pd_store_instance_clear(&got);
}

static void test_stored_value_too_long(void **state)
{
    fixture_t *f = *state;
    pd_store_t *s = with_packages(f);
    pd_store_instance_t i = inst(U1, "hello", "1.0.0", "acme", PD_STATE_INSTALLED);
    assert_int_equal(pd_store_insert_instance(s, &i), 0);
    /* Someone edits the file by hand beyond what the struct holds. */
    raw_exec(f->path, "UPDATE instances SET org = printf('%.200c', 'o')");
    pd_store_instance_t got;
    assert_int_equal(pd_store_get_instance(s, U1, &got), -EOVERFLOW);
    assert_null(got.config_json);
    assert_non_null(strstr(pd_store_why(s), "org"));
}

/* --- actions and kv ---------------------------------------------------- */

typedef struct {
    int n;
    pd_store_action_t acts[8];
} act_seen_t;

static int act_cb(const pd_store_action_t *a, void *arg)
{
    act_seen_t *seen = arg;
    if (seen->n < 8)
        seen->acts[seen->n] = *a;
    seen->n++;
    return 0;
}

static void test_actions(void **state)
{
    fixture_t *f = *state;
    pd_store_t *s = with_packages(f);
    pd_store_instance_t i = inst(U1, "hello", "1.0.0", "acme", PD_STATE_RUNNING);
    assert_int_equal(pd_store_insert_instance(s, &i), 0);
    assert_int_equal(pd_store_record_action(s, U1, "start", "ok", NULL), 0);
    assert_int_equal(pd_store_record_action(s, U2, "install", "ok", ""), 0);
    assert_int_equal(pd_store_record_action(s, U1, "restart", "ok", "host exited signal=11"), 0);
    assert_int_equal(pd_store_record_action(s, U1, "stop", "error", "timeout"), 0);

    act_seen_t seen = {0};
    assert_int_equal(pd_store_list_actions(s, U1, 0, act_cb, &seen), 0);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.acts[0].action, "stop"); /* newest first */
    assert_string_equal(seen.acts[0].result, "error");
    assert_string_equal(seen.acts[0].error, "timeout");
    assert_string_equal(seen.acts[1].action, "restart");
    assert_string_equal(seen.acts[1].error, "host exited signal=11");
    assert_string_equal(seen.acts[2].action, "start");
    assert_string_equal(seen.acts[2].error, "");
    assert_string_equal(seen.acts[2].uuid, U1);
    assert_true(seen.acts[0].id > seen.acts[1].id);
    assert_true(seen.acts[2].at > 1000000000000LL);

    seen = (act_seen_t){0};
    assert_int_equal(pd_store_list_actions(s, NULL, 3, act_cb, &seen), 0);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.acts[1].action, "restart");
    assert_string_equal(seen.acts[2].uuid, U2);

    /* Kept after the instance goes. */
    assert_int_equal(pd_store_delete_instance(s, U1), 0);
    seen = (act_seen_t){0};
    assert_int_equal(pd_store_list_actions(s, U1, 0, act_cb, &seen), 0);
    assert_int_equal(seen.n, 3);

    /* Bad input. */
    assert_int_equal(pd_store_record_action(s, NULL, "x", "ok", NULL), -EINVAL);
    assert_int_equal(pd_store_record_action(s, U1, "", "ok", NULL), -EINVAL);
    assert_int_equal(
        pd_store_record_action(s, U1, "a-very-long-action-name-beyond-32-bytes", "ok", NULL),
        -EINVAL);
    assert_int_equal(pd_store_record_action(s, U1, "x", NULL, NULL), -EINVAL);

    /* Prune: all are older than a time in the future. */
    int64_t deleted = 0;
    assert_int_equal(pd_store_prune_actions(s, 0, &deleted), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(pd_store_prune_actions(s, INT64_MAX, &deleted), 0);
    assert_int_equal(deleted, 4);
    seen = (act_seen_t){0};
    assert_int_equal(pd_store_list_actions(s, NULL, 0, act_cb, &seen), 0);
    assert_int_equal(seen.n, 0);
    /* Ids are never reused after a prune. */
    assert_int_equal(pd_store_record_action(s, U1, "start", "ok", NULL), 0);
    assert_int_equal(pd_store_list_actions(s, NULL, 0, act_cb, &seen), 0);
    assert_int_equal(seen.acts[0].id, 5);
}

static void test_kv(void **state)
{
    fixture_t *f = *state;
    pd_store_t *s = open_ok(f);
    char *v = (char *)0x1;
    assert_int_equal(pd_store_kv_get(s, "boot_id", &v), -ENOENT);
    assert_null(v);
    assert_int_equal(pd_store_kv_set(s, "boot_id", "one"), 0);
    assert_int_equal(pd_store_kv_set(s, "boot_id", "two"), 0);
    assert_int_equal(pd_store_kv_get(s, "boot_id", &v), 0);
    assert_string_equal(v, "two");
    free(v);
    assert_int_equal(pd_store_kv_set(s, "empty", ""), 0);
    assert_int_equal(pd_store_kv_get(s, "empty", &v), 0);
    assert_string_equal(v, "");
    free(v);
    assert_int_equal(pd_store_kv_delete(s, "boot_id"), 0);
    assert_int_equal(pd_store_kv_delete(s, "boot_id"), -ENOENT);
    assert_int_equal(pd_store_kv_set(s, "", "x"), -EINVAL);
    assert_int_equal(pd_store_kv_set(s, "k", NULL), -EINVAL);
}

/* --- transactions ------------------------------------------------------ */

static void test_transaction_rollback(void **state)
{
    fixture_t *f = *state;
    pd_store_t *s = open_ok(f);
    assert_int_equal(pd_store_commit(s), -EINVAL);
    assert_int_equal(pd_store_rollback(s), 0); /* none open: no-op */

    assert_int_equal(pd_store_begin(s), 0);
    assert_int_equal(pd_store_begin(s), -EBUSY);
    pd_store_package_t p = pkg("hello", "1.0.0");
    assert_int_equal(pd_store_put_package(s, &p), 0);
    pd_store_instance_t i = inst(U1, "hello", "1.0.0", "acme", PD_STATE_INSTALLED);
    assert_int_equal(pd_store_insert_instance(s, &i), 0);
    /* A refused statement inside the batch undoes only itself. */
    pd_store_instance_t bad = inst(U2, "hello", "1.0.0", "acme", "bogus");
    assert_int_equal(pd_store_insert_instance(s, &bad), -EINVAL);
    assert_int_equal(pd_store_record_action(s, U1, "install", "ok", NULL), 0);
    assert_int_equal(pd_store_kv_set(s, "k", "v"), 0);
    assert_int_equal(count_instances(s, NULL), 1); /* visible inside */
    assert_int_equal(pd_store_rollback(s), 0);

    pd_store_package_t got;
    assert_int_equal(pd_store_get_package(s, "hello", "1.0.0", &got), -ENOENT);
    assert_int_equal(count_instances(s, NULL), 0);
    act_seen_t seen = {0};
    assert_int_equal(pd_store_list_actions(s, NULL, 0, act_cb, &seen), 0);
    assert_int_equal(seen.n, 0);
    char *v = NULL;
    assert_int_equal(pd_store_kv_get(s, "k", &v), -ENOENT);

    /* A committed batch stays, across a reopen. */
    assert_int_equal(pd_store_begin(s), 0);
    assert_int_equal(pd_store_put_package(s, &p), 0);
    assert_int_equal(pd_store_insert_instance(s, &i), 0);
    assert_int_equal(pd_store_commit(s), 0);
    reopen(f);
    assert_int_equal(count_instances(f->store, NULL), 1);

    /* Closing with an open batch rolls it back. */
    assert_int_equal(pd_store_begin(f->store), 0);
    assert_int_equal(pd_store_delete_instance(f->store, U1), 0);
    reopen(f);
    assert_int_equal(count_instances(f->store, NULL), 1);
}

/* --- durability -------------------------------------------------------- */

/* In a child: open, run `what`, then die by SIGKILL without closing. */
enum { CHILD_STATE, CHILD_BATCH_COMMITTED, CHILD_BATCH_OPEN };

static void child_then_kill(const char *path, int what)
{
    pd_store_t *s = NULL;
    if (pd_store_open(path, &s, NULL, 0) != 0)
        _exit(2);
    int r = 0;
    pd_store_instance_t i = inst(U2, "hello", "1.0.0", "acme", PD_STATE_STOPPED);
    switch (what) {
    case CHILD_STATE:
        r = pd_store_update_instance_state(s, U1, PD_STATE_RUNNING, PD_STATE_RUNNING, NULL);
        if (r == 0)
            r = pd_store_record_action(s, U1, "start", "ok", NULL);
        break;
    case CHILD_BATCH_COMMITTED:
    case CHILD_BATCH_OPEN:
        r = pd_store_begin(s);
        if (r == 0)
            r = pd_store_insert_instance(s, &i);
        if (r == 0 && what == CHILD_BATCH_COMMITTED)
            r = pd_store_commit(s);
        break;
    }
    if (r != 0)
        _exit(3);
    raise(SIGKILL); /* acknowledged, then killed like kill -9 */
    _exit(4);
}

static void run_child(fixture_t *f, int what)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_then_kill(f->path, what);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void test_durable_across_kill(void **state)
{
    fixture_t *f = *state;
    pd_store_t *s = with_packages(f);
    pd_store_instance_t i = inst(U1, "hello", "1.0.0", "acme", PD_STATE_STOPPED);
    assert_int_equal(pd_store_insert_instance(s, &i), 0);
    pd_store_close(&f->store); /* no connection crosses fork() */

    run_child(f, CHILD_STATE);
    open_ok(f);
    pd_store_instance_t got;
    assert_int_equal(pd_store_get_instance(f->store, U1, &got), 0);
    assert_string_equal(got.actual_state, "running");
    assert_string_equal(got.desired_state, "running");
    pd_store_instance_clear(&got);
    act_seen_t seen = {0};
    assert_int_equal(pd_store_list_actions(f->store, U1, 0, act_cb, &seen), 0);
    assert_int_equal(seen.n, 1);
    pd_store_close(&f->store);

    /* An unacknowledged (uncommitted) batch is gone; a committed one stays. */
    run_child(f, CHILD_BATCH_OPEN);
    open_ok(f);
    assert_int_equal(pd_store_get_instance(f->store, U2, &got), -ENOENT);
    pd_store_close(&f->store);
    run_child(f, CHILD_BATCH_COMMITTED);
    open_ok(f);
    assert_int_equal(pd_store_get_instance(f->store, U2, &got), 0);
    assert_string_equal(got.actual_state, "stopped");
    pd_store_instance_clear(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pragmas_and_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_database_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_package_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instance_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_by_org, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_callback_reentry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fk_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stored_value_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transaction_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_across_kill, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
