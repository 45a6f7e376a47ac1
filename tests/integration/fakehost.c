/* A misbehaving "runtime" for the host integration tests: hostbootd spawns
 * it like a plugin host (with --platform, --host-id, ... which it ignores);
 * it never talks to the platform, so it is never "ready". Built once per
 * behaviour with FAKEHOST_MODE_<MODE> defined:
 *   flood: writes FAKEHOST_FLOOD_BYTES (50 MiB) to stdout in 64 KiB chunks of
 *          numbered lines, then a line "FLOOD-DONE <bytes>", then waits for
 *          SIGTERM and exits 0;
 *   hog:   mallocs and touches memory 1 MiB at a time until the address-space
 *          limit stops it: malloc fails → a line on stderr, then abort()
 *          (SIGABRT); an rlimit that was not applied ends it with status 99
 *          after FAKEHOST_HOG_MAX_MIB instead of eating the machine.
 * No platform library, no sanitizer (an ASan runtime could not even start
 * under a 64 MiB RLIMIT_AS). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAKEHOST_CHUNK (64 * 1024)
#define FAKEHOST_FLOOD_BYTES (50L * 1024 * 1024)
#define FAKEHOST_HOG_STEP (1024 * 1024)
#define FAKEHOST_HOG_MAX_MIB 512
#define FAKEHOST_HOG_NOT_LIMITED 99

static volatile sig_atomic_t g_term;

static void on_term(int sig)
{
    (void)sig;
    g_term = 1;
}

__attribute__((unused)) static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

__attribute__((unused)) static void wait_for_term(void)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    while (!g_term)
        sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

#if defined(FAKEHOST_MODE_FLOOD)
static int run(void)
{
    static char chunk[FAKEHOST_CHUNK];
    long written = 0;
    for (long n = 0; written < FAKEHOST_FLOOD_BYTES; n++) {
        /* 64-byte lines "flood chunk NNNNNN line NNNN xxx...\n" */
        for (size_t off = 0; off < sizeof chunk; off += 64) {
            int len = snprintf(chunk + off, 64, "flood chunk %06ld line %04zu ", n, off / 64);
            memset(chunk + off + len, 'x', (size_t)(63 - len));
            chunk[off + 63] = '\n';
        }
        if (write_all(1, chunk, sizeof chunk) != 0) {
            fprintf(stderr, "fakehost flood: write: %s\n", strerror(errno));
            return 2;
        }
        written += (long)sizeof chunk;
    }
    char done[64];
    int len = snprintf(done, sizeof done, "FLOOD-DONE %ld\n", written);
    if (write_all(1, done, (size_t)len) != 0)
        return 2;
    wait_for_term();
    return 0;
}
#elif defined(FAKEHOST_MODE_HOG)
static int run(void)
{
    for (long mib = 0; mib < FAKEHOST_HOG_MAX_MIB; mib++) {
        char *p = malloc(FAKEHOST_HOG_STEP);
        if (!p) {
            fprintf(stderr, "fakehost hog: malloc failed after %ld MiB\n", mib);
            abort();
        }
        memset(p, 0xa5, FAKEHOST_HOG_STEP); /* touch it: really use the memory */
        /* never freed: the point is to grow */
    }
    fprintf(stderr, "fakehost hog: %d MiB and still alive: no memory limit applied\n",
            FAKEHOST_HOG_MAX_MIB);
    return FAKEHOST_HOG_NOT_LIMITED;
}
#else
#error "define FAKEHOST_MODE_FLOOD or FAKEHOST_MODE_HOG"
#endif

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    return run();
}
