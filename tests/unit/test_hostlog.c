/* hostbootd/hostlog: a host's output file — create and append, id checks, rotation at the cap,
 * huge chunks, keep=0, reopen, symlink/FIFO refusal, note() lines, and the drop-on-error path. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hostlog.h"
#include "plat/log.h"

#define HOST "host-0b5e6a43-1f4e-4c1a-9a53-2d3c4b5a6978"

static char g_root[64];
static int g_ndir;
static int g_nfd; /* open fds before the tests: none may leak */

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    umask(022);
    g_nfd = count_fds();
    snprintf(g_root, sizeof g_root, "/tmp/plat-test-hostlog-XXXXXX");
    return mkdtemp(g_root) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    int leaked = count_fds() - g_nfd;
    if (leaked != 0)
        fprintf(stderr, "test_hostlog: %d fd(s) leaked\n", leaked);
    return nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 && leaked == 0 ? 0 : -1;
}

/* A fresh (not yet existing) log dir per test: <root>/t<N>/hosts. */
static void new_dir(char *out, size_t size)
{
    snprintf(out, size, "%s/t%d/hosts", g_root, g_ndir++);
}

static void log_path(char *out, size_t size, const char *dir, unsigned n)
{
    if (n == 0)
        snprintf(out, size, "%s/%s.log", dir, HOST);
    else
        snprintf(out, size, "%s/%s.log.%u", dir, HOST, n);
}

/* Size of <dir>/<HOST>.log[.n], or -1 when it does not exist. */
static long long file_size(const char *dir, unsigned n)
{
    char p[256];
    log_path(p, sizeof p, dir, n);
    struct stat st;
    return lstat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* Whole contents of a log file (NUL-terminated, caller frees); *len = size. */
static char *slurp(const char *dir, unsigned n, size_t *len)
{
    char p[256];
    log_path(p, sizeof p, dir, n);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long sz = ftell(fp);
    assert_true(sz >= 0);
    rewind(fp);
    char *buf = malloc((size_t)sz + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
    buf[sz] = '\0';
    fclose(fp);
    if (len)
        *len = (size_t)sz;
    return buf;
}

static void assert_contents(const char *dir, unsigned n, const char *want, size_t want_len)
{
    size_t len;
    char *got = slurp(dir, n, &len);
    assert_int_equal(len, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
}

static int count_dir_entries(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *fp = popen(cmd, "r");
    assert_non_null(fp);
    int n = -1;
    assert_int_equal(fscanf(fp, "%d", &n), 1);
    pclose(fp);
    return n;
}

static void test_create_and_append(void **state)
{
    (void)state;
    char dir[128];
    new_dir(dir, sizeof dir);
    hb_hostlog_opts_t o = {0};
    hb_hostlog_t *l = hb_hostlog_open(dir, HOST, &o);
    assert_non_null(l);

    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0750);
    char parent[128];
    snprintf(parent, sizeof parent, "%s/t%d", g_root, g_ndir - 1);
    assert_int_equal(stat(parent, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0750);
    char p[256];
    log_path(p, sizeof p, dir, 0);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_size, 0);

    assert_int_equal(hb_hostlog_write(l, "hello\n", 6), 0);
    assert_int_equal(hb_hostlog_write(l, "world\n", 6), 0);
    assert_int_equal(hb_hostlog_write(l, "", 0), 0);
    assert_int_equal(hb_hostlog_bytes_written(l), 12);
    assert_int_equal(hb_hostlog_bytes_dropped(l), 0);
    assert_contents(dir, 0, "hello\nworld\n", 12);

    /* The fd must not leak into spawned hosts. */
    int fd = -1;
    char link[64], target[300];
    for (int i = 3; i < 1024 && fd < 0; i++) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", i);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strcmp(target, p) == 0)
                fd = i;
        }
    }
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

    hb_hostlog_close(&l);
    assert_null(l);
    hb_hostlog_close(&l); /* NULL-safe */
    hb_hostlog_close(NULL);

    /* Reopening appends. */
    l = hb_hostlog_open(dir, HOST, NULL);
    assert_non_null(l);
    assert_int_equal(hb_hostlog_write(l, "again\n", 6), 0);
    assert_int_equal(hb_hostlog_bytes_written(l), 6);
    assert_contents(dir, 0, "hello\nworld\nagain\n", 18);
    hb_hostlog_close(&l);

    /* NULL arguments. */
    assert_int_equal(hb_hostlog_write(NULL, "x", 1), -EINVAL);
    assert_int_equal(hb_hostlog_note(NULL, "x"), -EINVAL);
    assert_int_equal(hb_hostlog_bytes_written(NULL), 0);
    assert_int_equal(hb_hostlog_bytes_dropped(NULL), 0);
}

static void test_bad_ids_refused(void **state)
{
    (void)state;
    char dir[128];
    new_dir(dir, sizeof dir);
    static const char *const bad[] = {
        "../x",
        "host-../../etc",
        "",
        "platform",
        "hostboot-a",
        "host-",
        "host-0B5E6A43-1F4E-4C1A-9A53-2D3C4B5A6978",  /* not lowercase */
        "host-0b5e6a43-1f4e-4c1a-9a53-2d3c4b5a6978/", /* trailing slash */
        "host-0b5e6a43-1f4e-4c1a-9a53-2d3c4b5a697",   /* short */
        "/etc/passwd",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_null(hb_hostlog_open(dir, bad[i], NULL));
        assert_int_equal(errno, EINVAL);
    }
    errno = 0;
    assert_null(hb_hostlog_open(dir, NULL, NULL));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hb_hostlog_open(NULL, HOST, NULL));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(hb_hostlog_open("", HOST, NULL));
    assert_int_equal(errno, EINVAL);
    hb_hostlog_opts_t o = {.max_bytes = 100, .keep = HB_HOSTLOG_KEEP_MAX + 1};
    errno = 0;
    assert_null(hb_hostlog_open(dir, HOST, &o));
    assert_int_equal(errno, EINVAL);
    /* Refused before touching the file system. */
    struct stat st;
    assert_int_equal(stat(dir, &st), -1);

    /* A directory path that is a file. */
    char file[100];
    snprintf(file, sizeof file, "%s/t%d", g_root, g_ndir++);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(dir, sizeof dir, "%s/hosts", file);
    errno = 0;
    assert_null(hb_hostlog_open(dir, HOST, NULL));
    assert_int_equal(errno, ENOTDIR);
}

/* 50 MiB in 64 KiB chunks, cap 1 MiB, keep 3: exactly four files, each full, the newest data. */
static void test_rotation_at_cap(void **state)
{
    (void)state;
    char dir[128];
    new_dir(dir, sizeof dir);
    const size_t chunk = 64 * 1024, total = 50u * 1024 * 1024;
    const unsigned nchunks = (unsigned)(total / chunk);
    hb_hostlog_opts_t o = {.max_bytes = 1024 * 1024, .keep = 3};
    hb_hostlog_t *l = hb_hostlog_open(dir, HOST, &o);
    assert_non_null(l);
    char *buf = malloc(chunk);
    assert_non_null(buf);
    for (unsigned i = 0; i < nchunks; i++) {
        memset(buf, 'a' + (int)(i % 26), chunk);
        snprintf(buf, 16, "chunk %08u", i); /* first 15 bytes name the chunk */
        buf[chunk - 1] = '\n';
        assert_int_equal(hb_hostlog_write(l, buf, chunk), 0);
    }
    free(buf);
    assert_int_equal(hb_hostlog_bytes_written(l), total);
    assert_int_equal(hb_hostlog_bytes_dropped(l), 0);

    /* Each file is full (64 KiB divides 1 MiB) and holds the chunks in order, newest in .log. */
    const unsigned per_file = (unsigned)(o.max_bytes / chunk);
    for (unsigned n = 0; n <= 3; n++) {
        assert_int_equal(file_size(dir, n), (long long)o.max_bytes);
        size_t len;
        char *got = slurp(dir, n, &len);
        unsigned first = nchunks - (n + 1) * per_file;
        for (unsigned k = 0; k < per_file; k++) {
            char want[16];
            snprintf(want, sizeof want, "chunk %08u", first + k);
            assert_memory_equal(got + k * chunk, want, 15);
        }
        free(got);
    }
    assert_int_equal(file_size(dir, 4), -1);
    assert_int_equal(count_dir_entries(dir), 4);
    hb_hostlog_close(&l);
}

/* One chunk several times the cap is split across files; none exceeds the cap. */
static void test_huge_chunk(void **state)
{
    (void)state;
    char dir[128];
    new_dir(dir, sizeof dir);
    hb_hostlog_opts_t o = {.max_bytes = 1000, .keep = 2};
    hb_hostlog_t *l = hb_hostlog_open(dir, HOST, &o);
    assert_non_null(l);
    char big[3500];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('A' + (i / 100) % 26);
    assert_int_equal(hb_hostlog_write(l, "small\n", 6), 0);
    /* It does not fit next to "small\n": rotate first, then 1000 + 1000 + 1000 + 500. */
    assert_int_equal(hb_hostlog_write(l, big, sizeof big), 0);
    assert_int_equal(hb_hostlog_bytes_written(l), 6 + sizeof big);
    assert_contents(dir, 0, big + 3000, 500);
    assert_contents(dir, 1, big + 2000, 1000);
    assert_contents(dir, 2, big + 1000, 1000);
    assert_int_equal(file_size(dir, 3), -1);
    assert_int_equal(count_dir_entries(dir), 3);

    /* A chunk that fits in the current file does not rotate. */
    assert_int_equal(hb_hostlog_write(l, big, 500), 0);
    assert_int_equal(file_size(dir, 0), 1000);
    assert_contents(dir, 1, big + 2000, 1000);
    /* The next byte does not fit: rotate. */
    assert_int_equal(hb_hostlog_write(l, "z", 1), 0);
    assert_contents(dir, 0, "z", 1);
    assert_int_equal(file_size(dir, 1), 1000);
    assert_contents(dir, 2, big + 2000, 1000);
    hb_hostlog_close(&l);
}

static void test_keep_zero(void **state)
{
    (void)state;
    char dir[128];
    new_dir(dir, sizeof dir);
    hb_hostlog_opts_t o = {.max_bytes = 100, .keep = 0};
    hb_hostlog_t *l = hb_hostlog_open(dir, HOST, &o);
    assert_non_null(l);
    char a[60], b[60], c[250];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    for (size_t i = 0; i < sizeof c; i++)
        c[i] = (char)('0' + i / 10 % 10);
    assert_int_equal(hb_hostlog_write(l, a, sizeof a), 0);
    assert_int_equal(hb_hostlog_write(l, b, sizeof b), 0);
    assert_contents(dir, 0, b, sizeof b);
    assert_int_equal(hb_hostlog_write(l, c, sizeof c), 0);
    assert_contents(dir, 0, c + 200, 50);
    assert_int_equal(file_size(dir, 1), -1);
    assert_int_equal(count_dir_entries(dir), 1);
    assert_int_equal(hb_hostlog_bytes_written(l), 60 + 60 + 250);
    /* O_APPEND after the truncation: the next write lands at the end, not at an old offset. */
    assert_int_equal(hb_hostlog_write(l, "x", 1), 0);
    assert_int_equal(file_size(dir, 0), 51);
    hb_hostlog_close(&l);
}

static void test_reopen_continues_size(void **state)
{
    (void)state;
    char dir[128];
    new_dir(dir, sizeof dir);
    hb_hostlog_opts_t o = {.max_bytes = 100, .keep = 1};
    char a[80], b[30];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    hb_hostlog_t *l = hb_hostlog_open(dir, HOST, &o);
    assert_non_null(l);
    assert_int_equal(hb_hostlog_write(l, a, sizeof a), 0);
    hb_hostlog_close(&l);

    l = hb_hostlog_open(dir, HOST, &o);
    assert_non_null(l);
    assert_int_equal(hb_hostlog_write(l, b, sizeof b), 0); /* 80 + 30 > 100 */
    assert_contents(dir, 1, a, sizeof a);
    assert_contents(dir, 0, b, sizeof b);
    assert_int_equal(hb_hostlog_bytes_written(l), 30);
    hb_hostlog_close(&l);

    /* A file already above a (smaller) cap is rotated by the first write. */
    char c[300];
    memset(c, 'c', sizeof c);
    o.max_bytes = 1000;
    l = hb_hostlog_open(dir, HOST, &o);
    assert_non_null(l);
    assert_int_equal(hb_hostlog_write(l, c, sizeof c), 0);
    hb_hostlog_close(&l);
    o.max_bytes = 200;
    l = hb_hostlog_open(dir, HOST, &o);
    assert_non_null(l);
    assert_int_equal(hb_hostlog_write(l, "d", 1), 0);
    assert_int_equal(file_size(dir, 1), 330);
    assert_contents(dir, 0, "d", 1);
    hb_hostlog_close(&l);
}

/* Rotated files above `keep` (from a run with a larger keep) are removed at open. */
static void test_stale_rotations_removed(void **state)
{
    (void)state;
    char dir[128];
    new_dir(dir, sizeof dir);
    hb_hostlog_opts_t o = {.max_bytes = 10, .keep = 5};
    hb_hostlog_t *l = hb_hostlog_open(dir, HOST, &o);
    assert_non_null(l);
    for (int i = 0; i < 6; i++)
        assert_int_equal(hb_hostlog_write(l, "0123456789", 10), 0);
    hb_hostlog_close(&l);
    for (unsigned n = 0; n <= 5; n++)
        assert_int_equal(file_size(dir, n), 10);

    o.keep = 2;
    l = hb_hostlog_open(dir, HOST, &o);
    assert_non_null(l);
    assert_int_equal(count_dir_entries(dir), 3);
    assert_int_equal(file_size(dir, 3), -1);
    hb_hostlog_close(&l);
}

/* When the current file cannot be renamed away, it is truncated: the cap still holds. */
static void test_rotation_rename_fails(void **state)
{
    (void)state;
    char dir[128], p[256];
    new_dir(dir, sizeof dir);
    hb_hostlog_opts_t o = {.max_bytes = 100, .keep = 1};
    hb_hostlog_t *l = hb_hostlog_open(dir, HOST, &o);
    assert_non_null(l);
    log_path(p, sizeof p, dir, 1);
    assert_int_equal(mkdir(p, 0700), 0); /* rename(file, dir) fails with EISDIR */
    char a[80], b[80];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    assert_int_equal(hb_hostlog_write(l, a, sizeof a), 0);
    assert_int_equal(hb_hostlog_write(l, b, sizeof b), 0);
    assert_contents(dir, 0, b, sizeof b);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(hb_hostlog_bytes_dropped(l), 0);
    hb_hostlog_close(&l);
}

static void test_symlink_and_fifo_refused(void **state)
{
    (void)state;
    char dir[128], p[256], target[256];
    new_dir(dir, sizeof dir);
    hb_hostlog_t *l = hb_hostlog_open(dir, HOST, NULL); /* creates the dir */
    assert_non_null(l);
    hb_hostlog_close(&l);
    log_path(p, sizeof p, dir, 0);
    assert_int_equal(unlink(p), 0);

    snprintf(target, sizeof target, "%s/target", dir);
    FILE *fp = fopen(target, "w");
    assert_non_null(fp);
    fputs("precious\n", fp);
    fclose(fp);
    assert_int_equal(symlink(target, p), 0);
    errno = 0;
    assert_null(hb_hostlog_open(dir, HOST, NULL));
    assert_int_equal(errno, ELOOP);
    /* A dangling symlink is not followed either (it would create the target). */
    assert_int_equal(unlink(p), 0);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/created-through-link", dir);
    assert_int_equal(symlink(missing, p), 0);
    errno = 0;
    assert_null(hb_hostlog_open(dir, HOST, NULL));
    assert_int_equal(errno, ELOOP);
    struct stat st;
    assert_int_equal(lstat(missing, &st), -1);
    fp = fopen(target, "r");
    assert_non_null(fp);
    char line[32] = "";
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    assert_string_equal(line, "precious\n");
    assert_int_equal(unlink(p), 0);

    /* A FIFO must not block the open, with or without a reader. */
    assert_int_equal(mkfifo(p, 0600), 0);
    errno = 0;
    assert_null(hb_hostlog_open(dir, HOST, NULL));
    assert_int_equal(errno, ENXIO);
    int rd = open(p, O_RDONLY | O_NONBLOCK);
    assert_true(rd >= 0);
    errno = 0;
    assert_null(hb_hostlog_open(dir, HOST, NULL));
    assert_int_equal(errno, EINVAL);
    close(rd);
    assert_int_equal(unlink(p), 0);

    /* A directory at the log path. */
    assert_int_equal(mkdir(p, 0700), 0);
    errno = 0;
    assert_null(hb_hostlog_open(dir, HOST, NULL));
    assert_int_equal(errno, EISDIR);
    assert_int_equal(rmdir(p), 0);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ hostbootd: " */
static void assert_stamp(const char *s)
{
    static const char shape[] = "####-##-##T##:##:##.###Z hostbootd: ";
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        if (shape[i] == '#')
            assert_true(s[i] >= '0' && s[i] <= '9');
        else
            assert_int_equal(s[i], shape[i]);
    }
}

static void test_note_format(void **state)
{
    (void)state;
    char dir[128];
    new_dir(dir, sizeof dir);
    hb_hostlog_t *l = hb_hostlog_open(dir, HOST, NULL);
    assert_non_null(l);
    assert_int_equal(hb_hostlog_note(l, "host exited status=%d", 0), 0);
    size_t len;
    char *got = slurp(dir, 0, &len);
    const size_t stamp_len = strlen("2026-11-25T10:11:12.345Z hostbootd: ");
    assert_int_equal(len, stamp_len + strlen("host exited status=0\n"));
    assert_stamp(got);
    assert_string_equal(got + stamp_len, "host exited status=0\n");
    free(got);

    /* After output that did not end a line, the note starts its own line. */
    assert_int_equal(hb_hostlog_write(l, "partial", 7), 0);
    assert_int_equal(hb_hostlog_note(l, "host killed signal=%s", "SIGKILL"), 0);
    got = slurp(dir, 0, &len);
    char *second = got + stamp_len + strlen("host exited status=0\n");
    assert_memory_equal(second, "partial\n", 8);
    assert_stamp(second + 8);
    assert_string_equal(second + 8 + stamp_len, "host killed signal=SIGKILL\n");
    free(got);

    /* A note longer than any stack buffer is written whole. */
    char *text = malloc(5000);
    assert_non_null(text);
    memset(text, 'x', 4999);
    text[4999] = '\0';
    uint64_t before = hb_hostlog_bytes_written(l);
    assert_int_equal(hb_hostlog_note(l, "%s", text), 0);
    assert_int_equal(hb_hostlog_bytes_written(l) - before, stamp_len + 4999 + 1);
    got = slurp(dir, 0, &len);
    assert_memory_equal(got + len - 5000, text, 4999);
    assert_int_equal(got[len - 1], '\n');
    free(got);
    free(text);
    hb_hostlog_close(&l);
}

/* Reads everything the log module wrote to the pipe so far. */
static size_t drain(int fd, char *out, size_t size)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, out + n, size - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = '\0';
    return n;
}

static int count_substr(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* A file that cannot grow (RLIMIT_FSIZE → EFBIG, as a full disk gives ENOSPC): data is dropped
 * and counted, one warning per episode, a notice when writes succeed again. */
static void test_write_failure_drops(void **state)
{
    (void)state;
    char dir[128];
    new_dir(dir, sizeof dir);
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
    plat_log_set_journal(0);
    plat_log_set_fd(pfd[1]);

    hb_hostlog_t *l = hb_hostlog_open(dir, HOST, NULL);
    assert_non_null(l);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_sa;
    assert_int_equal(sigaction(SIGXFSZ, &ign, &old_sa), 0);
    struct rlimit old_rl, rl;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_rl), 0);
    rl = old_rl;
    rl.rlim_cur = 1000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);

    char buf[600];
    memset(buf, 'q', sizeof buf);
    int r1 = hb_hostlog_write(l, buf, sizeof buf);
    int r2 = hb_hostlog_write(l, buf, sizeof buf); /* 400 stored, 200 dropped */
    int r3 = hb_hostlog_write(l, buf, 100);
    int r4 = hb_hostlog_note(l, "host exited status=1");

    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_rl), 0);
    assert_int_equal(r1, 0);
    assert_int_equal(r2, -EFBIG);
    assert_int_equal(r3, -EFBIG);
    assert_int_equal(r4, -EFBIG);
    /* The last stored byte was 'q', so the note would have started with its own '\n'. */
    size_t note_len = 1 + strlen("2026-11-25T10:11:12.345Z hostbootd: host exited status=1\n");
    assert_int_equal(hb_hostlog_bytes_written(l), 1000);
    assert_int_equal(hb_hostlog_bytes_dropped(l), 200 + 100 + note_len);
    assert_int_equal(file_size(dir, 0), 1000);

    char out[4096];
    drain(pfd[0], out, sizeof out);
    assert_int_equal(count_substr(out, "warning hostbootd/hostlog"), 1);
    assert_int_equal(count_substr(out, "host=" HOST), 1);
    assert_non_null(strstr(out, strerror(EFBIG)));

    /* Recovered: the write succeeds and the episode's loss is reported once. */
    assert_int_equal(hb_hostlog_write(l, "ok\n", 3), 0);
    assert_int_equal(hb_hostlog_write(l, "ok\n", 3), 0);
    drain(pfd[0], out, sizeof out);
    char want[64];
    snprintf(want, sizeof want, "dropped=%zu host=" HOST, 300 + note_len);
    assert_int_equal(count_substr(out, want), 1);
    assert_int_equal(count_substr(out, "warning"), 0);
    assert_int_equal(hb_hostlog_bytes_written(l), 1006);

    hb_hostlog_close(&l);
    assert_int_equal(sigaction(SIGXFSZ, &old_sa, NULL), 0);
    plat_log_set_fd(2);
    close(pfd[0]);
    close(pfd[1]);
}

int main(void)
{
    plat_log_init("hostbootd");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_append),
        cmocka_unit_test(test_bad_ids_refused),
        cmocka_unit_test(test_rotation_at_cap),
        cmocka_unit_test(test_huge_chunk),
        cmocka_unit_test(test_keep_zero),
        cmocka_unit_test(test_reopen_continues_size),
        cmocka_unit_test(test_stale_rotations_removed),
        cmocka_unit_test(test_rotation_rename_fails),
        cmocka_unit_test(test_symlink_and_fifo_refused),
        cmocka_unit_test(test_note_format),
        cmocka_unit_test(test_write_failure_drops),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
