/* Resource channel, File kind (res_file.c) and the channel's own checks
 * (resource.c): a corpus of escaping paths (.., absolute, encoded, long,
 * NUL, symlinks to /etc, loops, a directory symlink in the middle, trailing
 * slash tricks) refused through openat2 and through the openat() walk;
 * normal write/read/list/delete; the file cap and the instance quota;
 * instance data removal; the handler's refusals and counters. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "platformd.h"
#include "res_file.h"
#include "resource.h"
#include "testports.h"

#define SECRET "top secret\n"
#define U1 "11111111-1111-4111-8111-111111111111"

typedef struct {
    char dir[64];      /* the test's temp dir */
    char root[128];    /* <dir>/inst/files: the sandbox */
    char outside[128]; /* <dir>/outside: must stay untouched */
    int root_fd;
    pd_res_file_opts_t o;
    char why[256];
} fixture_t;

static void write_file(const char *path, const char *data)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(data, fp);
    fclose(fp);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_res_file.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/inst", f->dir);
    mkdir(p, 0700);
    snprintf(f->root, sizeof f->root, "%s/inst/files", f->dir);
    mkdir(f->root, 0700);
    snprintf(f->outside, sizeof f->outside, "%s/outside", f->dir);
    mkdir(f->outside, 0700);
    snprintf(p, sizeof p, "%s/secret.txt", f->outside);
    write_file(p, SECRET);
    f->root_fd = open(f->root, O_RDONLY | O_DIRECTORY);
    f->o.max_file_bytes = 1 << 20;
    f->o.quota_bytes = 4 << 20;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    close(f->root_fd);
    pd_res_file_remove_tree(f->dir);
    free(f);
    return 0;
}

/* ---- requests -------------------------------------------------------------- */

static int do_op(fixture_t *f, Plat__FileOp op, const char *path, const void *data, size_t len,
                 Plat__FileResult **out)
{
    Plat__FileRequest req = PLAT__FILE_REQUEST__INIT;
    req.op = op;
    req.path = (char *)path;
    req.data.data = (uint8_t *)data;
    req.data.len = len;
    Plat__FileResult *r = NULL;
    f->why[0] = '\0';
    int rc = pd_res_file_exec(f->root_fd, &req, &f->o, &r, f->why, sizeof f->why);
    if (rc < 0) {
        assert_null(r);
        assert_true(f->why[0] != '\0');
    } else {
        assert_non_null(r);
    }
    if (out)
        *out = r;
    else
        pd_res_file_result_free(&r);
    return rc;
}

static int fwrite_s(fixture_t *f, const char *path, const char *s)
{
    return do_op(f, PLAT__FILE_OP__FILE_OP_WRITE, path, s, strlen(s), NULL);
}

/* Read `path` and compare with `want`. */
static void expect_content(fixture_t *f, const char *path, const char *want)
{
    Plat__FileResult *r = NULL;
    int rc = do_op(f, PLAT__FILE_OP__FILE_OP_READ, path, NULL, 0, &r);
    if (rc != 0)
        fail_msg("read %s: %d %s", path, rc, f->why);
    assert_int_equal(r->data.len, strlen(want));
    assert_memory_equal(r->data.data, want, strlen(want));
    pd_res_file_result_free(&r);
}

static void mk_link(fixture_t *f, const char *target, const char *name)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", f->root, name);
    if (symlink(target, p) != 0)
        fail_msg("symlink %s -> %s: %s", p, target, strerror(errno));
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- the corpus -------------------------------------------------------------- */

typedef struct {
    const char *path; /* NULL: use `bytes` and `len` (NUL inside) */
    const char *bytes;
    size_t len;
    Plat__FileOp op;
    int want;
} esc_t;

#define R PLAT__FILE_OP__FILE_OP_READ
#define W PLAT__FILE_OP__FILE_OP_WRITE
#define L PLAT__FILE_OP__FILE_OP_LIST
#define D PLAT__FILE_OP__FILE_OP_DELETE

/* Links placed in the sandbox by "someone else" (plugins cannot make links). */
static void make_links(fixture_t *f)
{
    char p[PATH_MAX];
    mk_link(f, "/etc", "etc_link");
    mk_link(f, "/etc/passwd", "etc_passwd");
    mk_link(f, "loop_b", "loop_a");
    mk_link(f, "loop_a", "loop_b");
    mk_link(f, "self_loop", "self_loop");
    mk_link(f, "../../outside", "out_dir");
    mk_link(f, f->outside, "out_abs");
    mk_link(f, "/proc/self/root", "proc_link");
    mk_link(f, "..", "dotdot_link");
    snprintf(p, sizeof p, "%s/sub", f->root);
    mkdir(p, 0700);
    mk_link(f, "../..", "sub/up");
    mk_link(f, "/tmp", "sub/mid");
    mk_link(f, "/dev/null", "devnull");
}

static void run_corpus(fixture_t *f)
{
    make_links(f);
    static char long_path[PATH_MAX + 64];
    static char long_name[NAME_MAX + 2];
    static char deep[PD_RES_FILE_MAX_DEPTH * 2 + 8];
    memset(long_path, 0, sizeof long_path);
    for (size_t i = 0; i + 2 < PATH_MAX + 10; i += 2)
        memcpy(long_path + i, "a/", 2);
    strcat(long_path, "x");
    memset(long_name, 'n', NAME_MAX + 1);
    long_name[NAME_MAX + 1] = '\0';
    deep[0] = '\0';
    for (int i = 0; i <= PD_RES_FILE_MAX_DEPTH; i++)
        strcat(deep, "d/");
    strcat(deep, "x");
    char abs_secret[PATH_MAX];
    snprintf(abs_secret, sizeof abs_secret, "%s/secret.txt", f->outside);

    const esc_t corpus[] = {
        /* .. in every position */
        {"../outside/secret.txt", NULL, 0, R, -EACCES},
        {"..", NULL, 0, L, -EACCES},
        {"../../../../../../etc/passwd", NULL, 0, R, -EACCES},
        {"a/../../outside/secret.txt", NULL, 0, R, -EACCES},
        {"a/b/../../..", NULL, 0, L, -EACCES},
        {"sub/..", NULL, 0, L, -EACCES},
        {"../outside/new.txt", NULL, 0, W, -EACCES},
        {"x/../../outside/new.txt", NULL, 0, W, -EACCES},
        {"../outside/secret.txt", NULL, 0, D, -EACCES},
        {"etc_link/../x", NULL, 0, R, -EACCES},
        {"sub/./../..", NULL, 0, L, -EACCES},
        {"../", NULL, 0, L, -EACCES},
        /* absolute */
        {"/etc/passwd", NULL, 0, R, -EACCES},
        {"/", NULL, 0, L, -EACCES},
        {"//etc/passwd", NULL, 0, R, -EACCES},
        {abs_secret, NULL, 0, R, -EACCES},
        {"/tmp/evil", NULL, 0, W, -EACCES},
        {abs_secret, NULL, 0, D, -EACCES},
        /* NUL, long, deep, malformed */
        {NULL, "..\0/etc/passwd", 14, R, -EINVAL},
        {NULL, "ok\0/../../etc/passwd", 20, R, -EINVAL},
        {long_path, NULL, 0, R, -EINVAL},
        {long_path, NULL, 0, W, -EINVAL},
        {long_name, NULL, 0, W, -EINVAL},
        {deep, NULL, 0, W, -EINVAL},
        {"", NULL, 0, R, -EINVAL},
        {"", NULL, 0, W, -EINVAL},
        {"", NULL, 0, D, -EINVAL},
        {"etc_link/", NULL, 0, L, -EINVAL},
        {"sub/", NULL, 0, L, -EINVAL},
        {"sub//up", NULL, 0, L, -EINVAL},
        {"./etc_link", NULL, 0, L, -EINVAL},
        {".", NULL, 0, L, -EINVAL},
        {"sub/\n../x", NULL, 0, W, -EINVAL},
        {".plat-tmp-0000000000000000", NULL, 0, W, -EINVAL},
        /* symbolic links leading out */
        {"etc_link/passwd", NULL, 0, R, -EACCES},
        {"etc_link", NULL, 0, L, -EACCES},
        {"etc_link/evil", NULL, 0, W, -EACCES},
        {"etc_link/passwd", NULL, 0, D, -EACCES},
        {"etc_passwd", NULL, 0, R, -EACCES},
        {"out_dir/secret.txt", NULL, 0, R, -EACCES},
        {"out_dir", NULL, 0, L, -EACCES},
        {"out_dir/new.txt", NULL, 0, W, -EACCES},
        {"out_dir/secret.txt", NULL, 0, D, -EACCES},
        {"out_abs/secret.txt", NULL, 0, R, -EACCES},
        {"out_abs/deeper/new.txt", NULL, 0, W, -EACCES},
        {"proc_link/etc/passwd", NULL, 0, R, -EACCES},
        {"proc_link", NULL, 0, L, -EACCES},
        {"dotdot_link/outside/secret.txt", NULL, 0, R, -EACCES},
        {"dotdot_link", NULL, 0, L, -EACCES},
        {"devnull", NULL, 0, R, -EACCES},
        /* a directory symlink in the middle */
        {"sub/up/outside/secret.txt", NULL, 0, R, -EACCES},
        {"sub/up", NULL, 0, L, -EACCES},
        {"sub/mid/evil", NULL, 0, W, -EACCES},
        {"sub/mid/x/y/z", NULL, 0, W, -EACCES},
        /* loops */
        {"loop_a", NULL, 0, R, -EACCES},
        {"loop_a/x", NULL, 0, W, -EACCES},
        {"self_loop/x", NULL, 0, R, -EACCES},
        {"self_loop", NULL, 0, L, -EACCES},
        /* encoded forms are plain names: nothing outside is reached */
        {"%2e%2e/%2e%2e/etc/passwd", NULL, 0, R, -ENOENT},
        {"..%2f..%2fetc%2fpasswd", NULL, 0, R, -ENOENT},
        {"%2e%2e", NULL, 0, L, -ENOENT},
        {"..\\..\\etc\\passwd", NULL, 0, R, -ENOENT},
        {"\xc0\xae\xc0\xae/etc/passwd", NULL, 0, R, -ENOENT},
        {"...", NULL, 0, R, -ENOENT},
    };
    size_t n = sizeof corpus / sizeof corpus[0];
    assert_true(n >= 30);
    for (size_t i = 0; i < n; i++) {
        const esc_t *e = &corpus[i];
        int rc;
        if (!e->path) { /* carries a NUL: only the text check can see it */
            rc = pd_res_file_check_path(e->bytes, e->len, false, f->why, sizeof f->why);
        } else {
            rc = do_op(f, e->op, e->path, "evil", 4, NULL);
        }
        if (rc != e->want)
            fail_msg("corpus[%zu] op %d \"%.60s\": got %d (%s), want %d", i, (int)e->op,
                     e->path ? e->path : e->bytes, rc, f->why, e->want);
    }
}

static void check_outside_untouched(fixture_t *f)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/secret.txt", f->outside);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    char buf[64] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    assert_int_equal(n, strlen(SECRET));
    assert_string_equal(buf, SECRET);
    assert_int_equal(count_entries(f->outside), 1);
    assert_int_equal(access("/tmp/evil", F_OK), -1);
    assert_int_equal(access("/etc/evil", F_OK), -1);
}

static void test_corpus_openat2(void **state)
{
    fixture_t *f = *state;
    f->o.no_openat2 = false;
    run_corpus(f);
    check_outside_untouched(f);
}

static void test_corpus_walk(void **state)
{
    fixture_t *f = *state;
    f->o.no_openat2 = true;
    run_corpus(f);
    check_outside_untouched(f);
}

/* ---- normal operations ----------------------------------------------------- */

static void test_write_read_list_delete(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(fwrite_s(f, "a.txt", "hello"), 0);
    expect_content(f, "a.txt", "hello");
    /* Replace. */
    assert_int_equal(fwrite_s(f, "a.txt", "bye"), 0);
    expect_content(f, "a.txt", "bye");
    /* Empty file, binary data. */
    assert_int_equal(do_op(f, W, "empty", NULL, 0, NULL), 0);
    expect_content(f, "empty", "");
    static const uint8_t bin[] = {0, 1, 2, 0xff, 0};
    assert_int_equal(do_op(f, W, "bin", bin, sizeof bin, NULL), 0);
    Plat__FileResult *r = NULL;
    assert_int_equal(do_op(f, R, "bin", NULL, 0, &r), 0);
    assert_int_equal(r->data.len, sizeof bin);
    assert_memory_equal(r->data.data, bin, sizeof bin);
    pd_res_file_result_free(&r);
    /* Parents are created, 0700. */
    assert_int_equal(fwrite_s(f, "d1/d2/deep.txt", "deep"), 0);
    expect_content(f, "d1/d2/deep.txt", "deep");
    char p[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof p, "%s/d1/d2", f->root);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(p, sizeof p, "%s/d1/d2/deep.txt", f->root);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Odd but legal names stay inside. */
    assert_int_equal(fwrite_s(f, "%2e%2e", "literal"), 0);
    assert_int_equal(fwrite_s(f, "..foo", "dots"), 0);
    expect_content(f, "%2e%2e", "literal");

    /* List the root: sorted, sizes, dir flags; no temp files. */
    assert_int_equal(do_op(f, L, "", NULL, 0, &r), 0);
    const char *want[] = {"%2e%2e", "..foo", "a.txt", "bin", "d1", "empty"};
    assert_int_equal(r->n_entries, 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(r->entries[i]->name, want[i]);
    assert_int_equal(r->entries[2]->size, 3);
    assert_false(r->entries[2]->dir);
    assert_true(r->entries[4]->dir);
    pd_res_file_result_free(&r);
    assert_int_equal(do_op(f, L, "d1/d2", NULL, 0, &r), 0);
    assert_int_equal(r->n_entries, 1);
    assert_string_equal(r->entries[0]->name, "deep.txt");
    assert_int_equal(r->entries[0]->size, 4);
    pd_res_file_result_free(&r);
    /* A temp file left by a crash is not listed. */
    snprintf(p, sizeof p, "%s/.plat-tmp-deadbeef", f->root);
    write_file(p, "x");
    assert_int_equal(do_op(f, L, "", NULL, 0, &r), 0);
    assert_int_equal(r->n_entries, 6);
    pd_res_file_result_free(&r);

    /* Errors. */
    assert_int_equal(do_op(f, R, "missing", NULL, 0, NULL), -ENOENT);
    assert_int_equal(do_op(f, R, "d1", NULL, 0, NULL), -EISDIR);
    assert_int_equal(fwrite_s(f, "d1", "x"), -EISDIR);
    assert_int_equal(do_op(f, L, "a.txt", NULL, 0, NULL), -ENOTDIR);
    assert_int_equal(fwrite_s(f, "a.txt/x", "x"), -ENOTDIR);
    assert_int_equal(do_op(f, L, "nodir", NULL, 0, NULL), -ENOENT);
    assert_int_equal(do_op(f, D, "missing", NULL, 0, NULL), -ENOENT);
    assert_int_equal(do_op(f, D, "d1", NULL, 0, NULL), -ENOTEMPTY);
    assert_int_equal(do_op(f, (Plat__FileOp)99, "a.txt", NULL, 0, NULL), -EINVAL);

    /* A FIFO is not read (and does not block the open). */
    snprintf(p, sizeof p, "%s/fifo", f->root);
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_int_equal(do_op(f, R, "fifo", NULL, 0, NULL), -EINVAL);
    f->o.no_openat2 = true;
    assert_int_equal(do_op(f, R, "fifo", NULL, 0, NULL), -EINVAL);
    f->o.no_openat2 = false;
    assert_int_equal(do_op(f, D, "fifo", NULL, 0, NULL), 0);

    /* Delete. */
    assert_int_equal(do_op(f, D, "d1/d2/deep.txt", NULL, 0, NULL), 0);
    assert_int_equal(do_op(f, D, "d1/d2", NULL, 0, NULL), 0);
    assert_int_equal(do_op(f, D, "d1", NULL, 0, NULL), 0);
    assert_int_equal(do_op(f, D, "a.txt", NULL, 0, NULL), 0);
    assert_int_equal(do_op(f, R, "a.txt", NULL, 0, NULL), -ENOENT);
    /* Deleting a link removes the link, not its target. */
    mk_link(f, "/etc/passwd", "plink");
    assert_int_equal(do_op(f, D, "plink", NULL, 0, NULL), 0);
    assert_int_equal(access("/etc/passwd", F_OK), 0);
    /* Writing over a link replaces the link, never writes through it. */
    char target[PATH_MAX];
    snprintf(target, sizeof target, "%s/secret.txt", f->outside);
    mk_link(f, target, "wlink");
    assert_int_equal(fwrite_s(f, "wlink", "mine"), 0);
    snprintf(p, sizeof p, "%s/wlink", f->root);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    check_outside_untouched(f);
}

static void test_inner_symlink(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(fwrite_s(f, "real/f.txt", "inside"), 0);
    mk_link(f, "real", "alias");
    /* openat2 follows a link that stays beneath the root (where the
     * kernel has it); the walk refuses every link. */
    f->o.no_openat2 = false;
    int rc = do_op(f, R, "alias/f.txt", NULL, 0, NULL);
    assert_true(rc == 0 || rc == -EACCES);
    f->o.no_openat2 = true;
    assert_int_equal(do_op(f, R, "alias/f.txt", NULL, 0, NULL), -EACCES);
    assert_int_equal(do_op(f, L, "alias", NULL, 0, NULL), -EACCES);
}

static void test_file_cap(void **state)
{
    fixture_t *f = *state;
    f->o.max_file_bytes = 100;
    char buf[201];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(do_op(f, W, "ok", buf, 100, NULL), 0);
    assert_int_equal(do_op(f, W, "big", buf, 101, NULL), -EFBIG);
    assert_int_equal(do_op(f, R, "big", NULL, 0, NULL), -ENOENT);
    /* A file that got big some other way cannot be read whole. */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/placed", f->root);
    buf[200] = '\0';
    write_file(p, buf);
    assert_int_equal(do_op(f, R, "placed", NULL, 0, NULL), -EFBIG);
    /* A failed write leaves no temp file behind. */
    assert_int_equal(count_entries(f->root), 2);
}

static void test_quota(void **state)
{
    fixture_t *f = *state;
    f->o.quota_bytes = 1000;
    char buf[1001];
    memset(buf, 'q', sizeof buf);
    assert_int_equal(do_op(f, W, "one", buf, 600, NULL), 0);
    assert_int_equal(do_op(f, W, "dir/two", buf, 600, NULL), -EDQUOT);
    assert_non_null(strstr(f->why, "quota"));
    /* Replacing a file counts only the new size. */
    assert_int_equal(do_op(f, W, "one", buf, 900, NULL), 0);
    assert_int_equal(do_op(f, W, "dir/two", buf, 100, NULL), 0);
    assert_int_equal(do_op(f, W, "three", buf, 1, NULL), -EDQUOT);
    uint64_t bytes = 0, entries = 0;
    assert_int_equal(pd_res_file_usage(f->root_fd, &bytes, &entries), 0);
    assert_int_equal(bytes, 1000);
    assert_int_equal(entries, 3); /* one, dir, dir/two */
    /* Deleting frees room. */
    assert_int_equal(do_op(f, D, "one", NULL, 0, NULL), 0);
    assert_int_equal(do_op(f, W, "three", buf, 900, NULL), 0);
}

static void test_remove_tree(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(fwrite_s(f, "a/b/c/d.txt", "x"), 0);
    mk_link(f, f->outside, "a/out");
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/inst", f->dir);
    assert_int_equal(pd_res_file_remove_tree(p), 0);
    assert_int_equal(access(p, F_OK), -1);
    check_outside_untouched(f);                      /* the link was removed, not followed */
    assert_int_equal(pd_res_file_remove_tree(p), 0); /* missing is fine */
}

/* ---- the channel (resource.c) without daemons ------------------------------ */

typedef struct {
    pd_config_t cfg;
    pd_t pd;
    uv_loop_t loop;
    char dir[64];
} chan_t;

static int chan_setup(void **state)
{
    chan_t *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    snprintf(c->dir, sizeof c->dir, "/tmp/test_res_chan.XXXXXX");
    if (!mkdtemp(c->dir) || pd_config_load(NULL, &c->cfg, NULL) != 0) {
        free(c);
        return -1;
    }
    free(c->cfg.state.dir);
    c->cfg.state.dir = strdup(c->dir);
    uv_loop_init(&c->loop);
    c->pd.loop = &c->loop;
    c->pd.cfg = &c->cfg;
    *state = c;
    return 0;
}

static int chan_teardown(void **state)
{
    chan_t *c = *state;
    pd_resources_stop(&c->pd);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    pd_res_file_remove_tree(c->dir);
    pd_config_free(&c->cfg);
    free(c);
    return 0;
}

static Plat__PlatformMessage *resource_request(const char *instance, Plat__ResourceKind kind)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE);
    assert_non_null(m);
    m->header->kind = PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST;
    m->header->seq_no = 1;
    Plat__ResourceRequest *rq = malloc(sizeof *rq);
    assert_non_null(rq);
    plat__resource_request__init(rq);
    rq->instance = strdup(instance);
    rq->kind = kind;
    m->resource->body_case = PLAT__RESOURCE_MESSAGE__BODY_REQUEST;
    m->resource->request = rq;
    if (kind == PLAT__RESOURCE_KIND__RESOURCE_KIND_DB) {
        Plat__DbExecRequest *db = malloc(sizeof *db);
        plat__db_exec_request__init(db);
        db->sql = strdup("SELECT 1");
        rq->op_case = PLAT__RESOURCE_REQUEST__OP_DB;
        rq->db = db;
    }
    return m;
}

static void test_channel_refusals_counted(void **state)
{
    chan_t *c = *state;
    assert_int_equal(pd_resources_start(&c->pd), 0);
    pd_endpoint_t host;
    memset(&host, 0, sizeof host);
    snprintf(host.id, sizeof host.id, "host-22222222-2222-4222-8222-222222222222");
    host.kind = PD_EP_HOST;
    host.host_state = PD_HOST_READY;
    unsigned db = PLAT__RESOURCE_KIND__RESOURCE_KIND_DB;

    /* No lifecycle: the instance is attached to no host. */
    Plat__PlatformMessage *m = resource_request(U1, PLAT__RESOURCE_KIND__RESOURCE_KIND_DB);
    plat_bus_rx_t rx = {.peer = host.id, .msg = m};
    pd_resource_handle(&c->pd, &rx, &host);
    assert_int_equal(c->pd.metrics.resource_denied[db], 1);
    assert_int_equal(c->pd.metrics.resource_failed[db], 1);
    assert_int_equal(c->pd.metrics.resource_ok[db], 0);

    /* A hostboot may not use resources at all. */
    pd_endpoint_t hb = host;
    snprintf(hb.id, sizeof hb.id, "hostboot-x");
    hb.kind = PD_EP_HOSTBOOT;
    pd_resource_handle(&c->pd, &rx, &hb);
    assert_int_equal(c->pd.metrics.resource_denied[db], 2);

    /* Not a UUID: a bad request, not a denial. */
    free(m->resource->request->instance);
    m->resource->request->instance = strdup("../../etc");
    pd_resource_handle(&c->pd, &rx, &host);
    assert_int_equal(c->pd.metrics.resource_denied[db], 2);
    assert_int_equal(c->pd.metrics.resource_failed[db], 3);
    plat_envelope_free(&m);

    /* Events and replies are dropped, not counted. */
    m = resource_request(U1, PLAT__RESOURCE_KIND__RESOURCE_KIND_DB);
    m->header->kind = PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT;
    rx.msg = m;
    pd_resource_handle(&c->pd, &rx, &host);
    assert_int_equal(c->pd.metrics.resource_failed[db], 3);
    plat_envelope_free(&m);
    assert_int_equal(pd_resources_pending(&c->pd), 0);
}

/* The refusal goes back over a real bus as a ResourceResponse. */
typedef struct {
    chan_t *c;
    pd_endpoint_t host;
    int replies;
    int code;
    int header_code;
    char message[128];
} wire_t;

static void router_on_message(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg)
{
    (void)bus;
    wire_t *w = arg;
    pd_resource_handle(&w->c->pd, rx, &w->host);
}

static void on_reply(int status, const Plat__PlatformMessage *reply, void *arg)
{
    wire_t *w = arg;
    w->replies++;
    assert_int_equal(status, 0);
    assert_int_equal(reply->channel_case, PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE);
    assert_int_equal(reply->resource->body_case, PLAT__RESOURCE_MESSAGE__BODY_RESPONSE);
    const Plat__ResourceResponse *r = reply->resource->response;
    assert_non_null(r->error);
    w->code = r->error->code;
    snprintf(w->message, sizeof w->message, "%s", r->error->message);
    assert_string_equal(r->error->detail, U1);
    w->header_code = reply->header->error ? reply->header->error->code : 0;
}

static void test_channel_reply_over_bus(void **state)
{
    chan_t *c = *state;
    assert_int_equal(pd_resources_start(&c->pd), 0);
    wire_t w = {.c = c};
    char addr[64], boot[PLAT_UUID_LEN + 1];
    assert_true(plat_test_free_endpoint(addr, sizeof addr) > 0);
    plat_uuid_new(boot);
    snprintf(w.host.id, sizeof w.host.id, "host-22222222-2222-4222-8222-222222222222");
    w.host.kind = PD_EP_HOST;
    w.host.host_state = PD_HOST_READY;
    plat_bus_opts_t ro = {.role = PLAT_ENDPOINT_ROUTER,
                          .identity = PLAT_PLATFORM_ID,
                          .address = addr,
                          .boot_id = boot,
                          .on_message = router_on_message,
                          .arg = &w};
    c->pd.bus = plat_bus_new(&c->loop, &ro);
    assert_non_null(c->pd.bus);
    plat_bus_opts_t dopt = {.role = PLAT_ENDPOINT_DEALER,
                            .identity = w.host.id,
                            .address = addr,
                            .boot_id = boot,
                            .on_message = router_on_message,
                            .arg = &w};
    plat_bus_t *dealer = plat_bus_new(&c->loop, &dopt);
    assert_non_null(dealer);

    Plat__PlatformMessage *m = resource_request(U1, PLAT__RESOURCE_KIND__RESOURCE_KIND_DB);
    assert_true(plat_bus_request(dealer, PLAT_PLATFORM_ID, m, 10000, on_reply, &w) > 0);
    plat_envelope_free(&m);
    uint64_t end = plat_mono_ms() + 10000;
    while (w.replies < 1 && plat_mono_ms() < end)
        uv_run(&c->loop, UV_RUN_ONCE);
    assert_int_equal(w.replies, 1);
    assert_int_equal(w.code, -EACCES);
    assert_int_equal(w.header_code, -EACCES);
    assert_non_null(strstr(w.message, "not attached"));
    assert_int_equal(c->pd.metrics.resource_denied[PLAT__RESOURCE_KIND__RESOURCE_KIND_DB], 1);
    plat_bus_destroy(&dealer);
    plat_bus_destroy(&c->pd.bus);
}

static void test_forget_removes_instance_data(void **state)
{
    chan_t *c = *state;
    assert_int_equal(pd_resources_start(&c->pd), 0);
    char dir[PATH_MAX], p[PATH_MAX + 64];
    assert_int_equal(pd_resources_instance_dir(&c->pd, U1, dir, sizeof dir), 0);
    assert_non_null(strstr(dir, "/instances/" U1));
    assert_int_equal(pd_resources_instance_dir(&c->pd, "nope", dir, sizeof dir), -EINVAL);
    assert_int_equal(pd_resources_instance_dir(&c->pd, U1, dir, sizeof dir), 0);
    struct stat st;
    snprintf(p, sizeof p, "%s/%s/instances", c->dir, "");
    snprintf(p, sizeof p, "%s/instances", c->dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(p, sizeof p, "%s/files", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/files/f.txt", dir);
    write_file(p, "data");
    snprintf(p, sizeof p, "%s/db.sqlite", dir);
    write_file(p, "");

    pd_resources_forget_instance(&c->pd, U1);
    assert_int_equal(pd_resources_pending(&c->pd), 1);
    /* Poll the loop until the removal ran (it is on the thread pool). */
    for (int i = 0; i < 100000 && pd_resources_pending(&c->pd) > 0; i++)
        uv_run(&c->loop, UV_RUN_ONCE);
    assert_int_equal(pd_resources_pending(&c->pd), 0);
    assert_int_equal(access(dir, F_OK), -1);
    /* Forgetting an unknown or invalid instance is harmless. */
    pd_resources_forget_instance(&c->pd, "not-a-uuid");
    pd_resources_forget_instance(&c->pd, U1);
    for (int i = 0; i < 100000 && pd_resources_pending(&c->pd) > 0; i++)
        uv_run(&c->loop, UV_RUN_ONCE);

    /* With the module stopped the removal happens at once. */
    pd_resources_stop(&c->pd);
    assert_null(c->pd.resources);
    assert_int_equal(mkdir(dir, 0700), 0);
    pd_resources_forget_instance(&c->pd, U1);
    assert_int_equal(access(dir, F_OK), -1);
}

int main(void)
{
    zsys_handler_set(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_corpus_openat2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corpus_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_read_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inner_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_refusals_counted, chan_setup, chan_teardown),
        cmocka_unit_test_setup_teardown(test_channel_reply_over_bus, chan_setup, chan_teardown),
        cmocka_unit_test_setup_teardown(test_forget_removes_instance_data, chan_setup,
                                        chan_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
