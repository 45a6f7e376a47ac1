/* plat/log.h: line formats (plain and journal), level filtering, level
 * names, and one write(2) per line. Output goes to a SOCK_DGRAM socketpair:
 * every write(2) becomes one datagram, so a line split over two writes
 * shows up as two datagrams. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "plat/id.h"
#include "plat/log.h"

#define DAEMON "utestd"

static int sv[2] = {-1, -1};

static int setup(void **state)
{
    (void)state;
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    plat_log_init(DAEMON);
    plat_log_set_fd(sv[0]);
    plat_log_set_journal(0);
    plat_log_set_level(PLAT_LOG_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    plat_log_set_fd(2);
    plat_log_set_journal(-1);
    plat_log_set_level(PLAT_LOG_INFO);
    close(sv[0]);
    close(sv[1]);
    sv[0] = sv[1] = -1;
    return 0;
}

/* One datagram = one write(2); returns its length, -1 when none waits. */
static ssize_t read_write(char *buf, size_t size)
{
    ssize_t n = recv(sv[1], buf, size - 1, MSG_DONTWAIT);
    if (n >= 0)
        buf[n] = '\0';
    else
        assert_int_equal(errno, EAGAIN);
    return n;
}

static void assert_nothing_written(void)
{
    char buf[64];
    assert_int_equal(read_write(buf, sizeof buf), -1);
}

static void assert_matches(const char *s, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("line '%s' does not match /%s/", s, pattern);
}

static void test_plain_format(void **state)
{
    char buf[4096];
    uint64_t before = plat_now_ms();
    plat_log(PLAT_LOG_INFO, "router", "registered endpoint id=%s", "hostboot-a");
    uint64_t after = plat_now_ms();
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_matches(buf, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                        "info " DAEMON "/router registered endpoint id=hostboot-a\n$");
    assert_nothing_written(); /* the whole line came in one write */

    /* The timestamp is UTC wall-clock time, to the millisecond. */
    struct tm tm = {0};
    int ms = -1;
    assert_non_null(strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm));
    assert_int_equal(sscanf(buf + 20, "%3d", &ms), 1);
    uint64_t ts = (uint64_t)timegm(&tm) * 1000u + (uint64_t)ms;
    assert_true(ts + 1 >= before); /* +1: clocks read around the call */
    assert_true(ts <= after + 1);
}

static void test_journal_format(void **state)
{
    char buf[4096];
    plat_log_set_journal(1);
    plat_log_info("router", "registered endpoint id=%s", "hostboot-a");
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_string_equal(buf, "<6>info " DAEMON "/router registered endpoint id=hostboot-a\n");
    assert_nothing_written();

    plat_log_err("bus", "send failed rc=%d", -113);
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_string_equal(buf, "<3>err " DAEMON "/bus send failed rc=-113\n");

    plat_log_warn("bus", "w");
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_string_equal(buf, "<4>warning " DAEMON "/bus w\n");

    plat_log_notice("bus", "n");
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_string_equal(buf, "<5>notice " DAEMON "/bus n\n");

    /* Back to plain: the timestamp returns. */
    plat_log_set_journal(0);
    plat_log_info("x", "y");
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_matches(buf, "^[0-9-]{10}T[0-9:]{8}\\.[0-9]{3}Z info " DAEMON "/x y\n$");
}

static void test_detect_without_journal_stream(void **state)
{
    char buf[4096];
    unsetenv("JOURNAL_STREAM");
    plat_log_set_journal(-1);
    plat_log_info("x", "detect");
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_matches(buf, "^[0-9-]{10}T[0-9:]{8}\\.[0-9]{3}Z info " DAEMON "/x detect\n$");
}

static void test_level_filter(void **state)
{
    char buf[4096];
    assert_int_equal(plat_log_get_level(), PLAT_LOG_INFO);
    plat_log_set_journal(1);

    /* Default INFO: debug is discarded, info passes. */
    plat_log_debug("x", "hidden");
    assert_nothing_written();
    plat_log_info("x", "shown");
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_string_equal(buf, "<6>info " DAEMON "/x shown\n");

    plat_log_set_level(PLAT_LOG_WARNING);
    assert_int_equal(plat_log_get_level(), PLAT_LOG_WARNING);
    plat_log_info("x", "hidden");
    plat_log_notice("x", "hidden");
    assert_nothing_written();
    plat_log_warn("x", "w");
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_string_equal(buf, "<4>warning " DAEMON "/x w\n");
    plat_log_err("x", "e");
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_string_equal(buf, "<3>err " DAEMON "/x e\n");

    plat_log_set_level(PLAT_LOG_ERR);
    plat_log_warn("x", "hidden");
    assert_nothing_written();

    plat_log_set_level(PLAT_LOG_DEBUG);
    assert_int_equal(plat_log_get_level(), PLAT_LOG_DEBUG);
    plat_log_debug("x", "d %d", 7);
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_string_equal(buf, "<7>debug " DAEMON "/x d 7\n");
}

static void test_level_names(void **state)
{
    static const struct {
        plat_log_level_t level;
        const char *name;
    } t[] = {
        {PLAT_LOG_ERR, "err"},   {PLAT_LOG_WARNING, "warning"}, {PLAT_LOG_NOTICE, "notice"},
        {PLAT_LOG_INFO, "info"}, {PLAT_LOG_DEBUG, "debug"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        assert_string_equal(plat_log_level_name(t[i].level), t[i].name);
        assert_int_equal(plat_log_level_from_name(t[i].name), (int)t[i].level);
        assert_int_equal(plat_log_level_from_name(plat_log_level_name(t[i].level)),
                         (int)t[i].level);
    }
    assert_int_equal(plat_log_level_from_name("bogus"), -EINVAL);
    assert_int_equal(plat_log_level_from_name(""), -EINVAL);
    assert_int_equal(plat_log_level_from_name("infox"), -EINVAL);
    assert_int_equal(plat_log_level_from_name("inf"), -EINVAL);
    assert_int_equal(plat_log_level_from_name("debug "), -EINVAL);
    assert_int_equal(plat_log_level_from_name(NULL), -EINVAL);
}

static void vlog_helper(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    plat_logv(PLAT_LOG_NOTICE, "v", fmt, ap);
    va_end(ap);
}

static void test_logv(void **state)
{
    char buf[4096];
    plat_log_set_journal(1);
    vlog_helper("a=%d b=%s", 1, "two");
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_string_equal(buf, "<5>notice " DAEMON "/v a=1 b=two\n");
}

static void test_daemon_name_truncated(void **state)
{
    char buf[4096];
    const char *longname = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"; /* 42 chars */
    char local[64];
    snprintf(local, sizeof local, "%s", longname);
    plat_log_init(local);
    memset(local, 'Z', 40); /* copied, not referenced */
    plat_log_set_journal(1);
    plat_log_info("c", "m");
    assert_true(read_write(buf, sizeof buf) > 0);
    assert_string_equal(buf, "<6>info abcdefghijklmnopqrstuvwxyz01234/c m\n");
    plat_log_init(DAEMON);
}

/* A long line still leaves in one write and ends with exactly one newline. */
static void test_long_line_one_write(void **state)
{
    static char msg[3001];
    memset(msg, 'q', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    static char buf[65536];
    plat_log_set_journal(1);
    plat_log_info("c", "%s", msg);
    ssize_t n = read_write(buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(buf[n - 1], '\n');
    assert_null(memchr(buf, '\n', (size_t)n - 1));
    assert_memory_equal(buf, "<6>info " DAEMON "/c qqqq", strlen("<6>info " DAEMON "/c qqqq"));
    assert_nothing_written();
}

/* Many lines: each is its own single datagram. */
static void test_one_write_per_line(void **state)
{
    char buf[4096];
    plat_log_set_journal(1);
    for (int i = 0; i < 50; i++)
        plat_log_info("c", "line %d id=%s", i, "platform");
    for (int i = 0; i < 50; i++) {
        char want[128];
        snprintf(want, sizeof want, "<6>info " DAEMON "/c line %d id=platform\n", i);
        assert_true(read_write(buf, sizeof buf) > 0);
        assert_string_equal(buf, want);
    }
    assert_nothing_written();
}

/* ---- the in-memory ring ------------------------------------------------ */

typedef struct {
    char comp[400][40];
    char line[400][256];
    size_t n;
    bool log_inside; /* log a line from the callback (must not deadlock) */
} ring_seen_t;

static void collect(const char *component, const char *line, void *arg)
{
    ring_seen_t *r = arg;
    if (r->n < 400) {
        snprintf(r->comp[r->n], sizeof r->comp[0], "%s", component);
        snprintf(r->line[r->n], sizeof r->line[0], "%s", line);
    }
    r->n++;
    if (r->log_inside)
        plat_log_info("inside", "logged from the ring callback");
}

static void drain(void)
{
    char buf[4096];
    while (read_write(buf, sizeof buf) > 0) {
    }
}

static void test_ring(void **state)
{
    (void)state;
    static ring_seen_t seen;
    memset(&seen, 0, sizeof seen);
    /* off by default: nothing kept */
    assert_int_equal(plat_log_ring_size(), 0);
    plat_log_info("a", "before id=%d", 0);
    assert_int_equal(plat_log_ring_foreach(collect, &seen), 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(plat_log_ring_foreach(NULL, NULL), -EINVAL);
    assert_int_equal(plat_log_ring_enable(PLAT_LOG_RING_LINES_MAX + 1), -EINVAL);

    assert_int_equal(plat_log_ring_enable(3), 0);
    assert_int_equal(plat_log_ring_size(), 3);
    for (int i = 0; i < 5; i++)
        plat_log_info("b", "line %d id=x", i);
    plat_log_debug("b", "filtered by level");
    plat_log_set_journal(1); /* the ring keeps timestamps in journal mode too */
    plat_log_warn("a", "only line key=\"v\"");
    drain();
    assert_int_equal(plat_log_ring_foreach(collect, &seen), 0);
    assert_int_equal(seen.n, 4);
    /* components in name order, lines oldest first, the last 3 kept */
    assert_string_equal(seen.comp[0], "a");
    assert_matches(seen.line[0], "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z warning " DAEMON
                                 "/a only line key=\"v\"$");
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "Z info " DAEMON "/b line %d id=x", i + 2);
        assert_string_equal(seen.comp[1 + i], "b");
        assert_non_null(strstr(seen.line[1 + i], want));
    }

    /* a new size drops what was kept; 0 frees it */
    assert_int_equal(plat_log_ring_enable(2), 0);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(plat_log_ring_foreach(collect, &seen), 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(plat_log_ring_enable(0), 0);
    plat_log_info("a", "after id=1");
    drain();
    assert_int_equal(plat_log_ring_foreach(collect, &seen), 0);
    assert_int_equal(seen.n, 0);
}

/* More components than rings: the last ones share "(other)". A callback
 * may log (the ring is copied before it runs). */
static void test_ring_components(void **state)
{
    (void)state;
    static ring_seen_t seen;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(plat_log_ring_enable(2), 0);
    for (int i = 0; i < 70; i++) {
        char comp[48];
        /* long names are kept truncated to 31 characters and still match */
        snprintf(comp, sizeof comp, "c%02d-a-component-name-longer-than-31", i);
        plat_log_info(comp, "one id=%d", i);
        plat_log_info(comp, "two id=%d", i);
        drain();
    }
    seen.log_inside = true;
    assert_int_equal(plat_log_ring_foreach(collect, &seen), 0);
    /* 63 named rings of 2 lines, and "(other)" (sorted first) with the
     * last 2 lines of the components that found no ring */
    assert_int_equal(seen.n, 64 * 2);
    assert_string_equal(seen.comp[0], "(other)");
    assert_non_null(strstr(seen.line[1], "c69-a-component-name-longer-than-31 two id=69"));
    assert_int_equal(strlen(seen.comp[2]), 31);
    assert_string_equal(seen.comp[2], "c00-a-component-name-longer-tha");
    assert_non_null(strstr(seen.line[3], "/c00-a-component-name-longer-than-31 two id=0"));
    drain();
    assert_int_equal(plat_log_ring_enable(0), 0);
}

#define RING_THREADS 4
#define RING_LINES 2000

static void *ring_writer(void *arg)
{
    char comp[16];
    snprintf(comp, sizeof comp, "t%d", (int)(intptr_t)arg);
    for (int i = 0; i < RING_LINES; i++)
        plat_log_info(comp, "line %d", i);
    return NULL;
}

typedef struct {
    int per_comp[RING_THREADS];
    int last[RING_THREADS];
    bool ordered;
} thr_seen_t;

static void check_thread_line(const char *component, const char *line, void *arg)
{
    thr_seen_t *t = arg;
    int c = component[1] - '0';
    const char *p = strstr(line, " line ");
    assert_non_null(p);
    int n = atoi(p + 6);
    if (t->per_comp[c] && n != t->last[c] + 1)
        t->ordered = false;
    t->last[c] = n;
    t->per_comp[c]++;
}

/* Writers on several threads while a reader copies the ring: every line is
 * whole, each component keeps its last N in order (run under TSan/ASan). */
static void test_ring_threads(void **state)
{
    (void)state;
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert_true(devnull >= 0);
    plat_log_set_fd(devnull);
    assert_int_equal(plat_log_ring_enable(100), 0);
    pthread_t th[RING_THREADS];
    for (int i = 0; i < RING_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ring_writer, (void *)(intptr_t)i), 0);
    for (int k = 0; k < 20; k++) {
        thr_seen_t mid = {.ordered = true};
        assert_int_equal(plat_log_ring_foreach(check_thread_line, &mid), 0);
        assert_true(mid.ordered);
    }
    for (int i = 0; i < RING_THREADS; i++)
        pthread_join(th[i], NULL);
    thr_seen_t end = {.ordered = true};
    assert_int_equal(plat_log_ring_foreach(check_thread_line, &end), 0);
    assert_true(end.ordered);
    for (int i = 0; i < RING_THREADS; i++) {
        assert_int_equal(end.per_comp[i], 100);
        assert_int_equal(end.last[i], RING_LINES - 1);
    }
    assert_int_equal(plat_log_ring_enable(0), 0);
    plat_log_set_fd(sv[0]);
    close(devnull);
}

int main(void)
{
    unsetenv("JOURNAL_STREAM");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_without_journal_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_name_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_line_one_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_write_per_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_components, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
