/* plat/keys.h: CURVE key pairs as Z85 files. A fresh pair saved (secret
 * 0600, public 0644, atomically, never replacing a secret unless asked)
 * loads back equal; the public key is the one libzmq derives from the
 * secret; a secret file that is not private (group/other bits, another
 * owner, a symlink, not a regular file) is refused naming the file; a
 * malformed Z85 key (wrong length, a character outside Z85, a value past
 * 2^32, trailing garbage) is refused; a missing file is -ENOENT; a key read
 * from a pipe closes the pipe. Every test works in its own mkdtemp dir. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "plat/keys.h"

typedef struct {
    char dir[64];
    char secret[128];
    char pub[128];
    char why[512];
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_keys.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->secret, sizeof f->secret, "%s/k.key", f->dir);
    snprintf(f->pub, sizeof f->pub, "%s/k.pub", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            if (unlink(p) != 0)
                rmdir(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Write `len` bytes to `path` with `mode` (exactly: fchmod after create). */
static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static void write_str(const char *path, const char *s, mode_t mode)
{
    write_file(path, s, strlen(s), mode);
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static size_t read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, size - 1);
    assert_true(n >= 0);
    buf[n] = 0;
    close(fd);
    return (size_t)n;
}

static unsigned dir_entries(const char *dir)
{
    unsigned n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* why[] names the file and says `what`. */
static void assert_why(const fx_t *f, const char *path, const char *what)
{
    if (!strstr(f->why, path))
        fail_msg("reason does not name %s: \"%s\"", path, f->why);
    if (what && !strstr(f->why, what))
        fail_msg("reason does not say \"%s\": \"%s\"", what, f->why);
}

static void new_pair(plat_keypair_t *kp)
{
    assert_int_equal(plat_keys_new(kp), 0);
    assert_int_equal(strlen(kp->public_z85), PLAT_KEY_Z85_LEN);
    assert_int_equal(strlen(kp->secret_z85), PLAT_KEY_Z85_LEN);
    assert_true(plat_key_z85_valid(kp->public_z85));
    assert_true(plat_key_z85_valid(kp->secret_z85));
}

/* ---- tests ---- */

static void test_new_save_load(void **state)
{
    fx_t *f = *state;
    plat_keypair_t kp, back;
    new_pair(&kp);
    /* modes are exact whatever the umask */
    mode_t old = umask(0077);
    int rc = plat_keys_save(f->secret, f->pub, &kp, false, f->why, sizeof f->why);
    umask(old);
    assert_int_equal(rc, 0);
    assert_int_equal(file_mode(f->secret), 0600);
    assert_int_equal(file_mode(f->pub), 0644);
    struct stat st;
    assert_int_equal(lstat(f->secret, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_uid, geteuid());

    /* one line each, the Z85 key and a newline */
    char buf[128], want[64];
    snprintf(want, sizeof want, "%s\n", kp.secret_z85);
    read_file(f->secret, buf, sizeof buf);
    assert_string_equal(buf, want);
    snprintf(want, sizeof want, "%s\n", kp.public_z85);
    read_file(f->pub, buf, sizeof buf);
    assert_string_equal(buf, want);
    /* no temporary file left behind */
    assert_int_equal(dir_entries(f->dir), 2);

    memset(&back, 'x', sizeof back);
    assert_int_equal(plat_keys_load_secret(f->secret, &back, f->why, sizeof f->why), 0);
    assert_string_equal(back.secret_z85, kp.secret_z85);
    assert_string_equal(back.public_z85, kp.public_z85); /* derived on load */
    char pub[PLAT_KEY_Z85_LEN + 1];
    assert_int_equal(plat_keys_load_public(f->pub, pub, f->why, sizeof f->why), 0);
    assert_string_equal(pub, kp.public_z85);
    assert_int_equal(plat_keys_check_private(f->secret, f->why, sizeof f->why), 0);

    /* a secret without a public file */
    char only[160];
    snprintf(only, sizeof only, "%s/only.key", f->dir);
    assert_int_equal(plat_keys_save(only, NULL, &kp, false, f->why, sizeof f->why), 0);
    assert_int_equal(file_mode(only), 0600);
    assert_int_equal(dir_entries(f->dir), 3);

    /* two fresh pairs differ */
    plat_keypair_t kp2;
    new_pair(&kp2);
    assert_string_not_equal(kp2.secret_z85, kp.secret_z85);
    assert_string_not_equal(kp2.public_z85, kp.public_z85);
    plat_keys_wipe(&kp2);
    plat_keys_wipe(&back);
}

static void test_save_never_replaces(void **state)
{
    fx_t *f = *state;
    plat_keypair_t a, b, back;
    new_pair(&a);
    new_pair(&b);
    assert_int_equal(plat_keys_save(f->secret, f->pub, &a, false, f->why, sizeof f->why), 0);
    f->why[0] = 0;
    assert_int_equal(plat_keys_save(f->secret, f->pub, &b, false, f->why, sizeof f->why),
                     -EEXIST);
    assert_why(f, f->secret, "exists");
    assert_int_equal(plat_keys_load_secret(f->secret, &back, f->why, sizeof f->why), 0);
    assert_string_equal(back.secret_z85, a.secret_z85);
    char pub[PLAT_KEY_Z85_LEN + 1];
    assert_int_equal(plat_keys_load_public(f->pub, pub, f->why, sizeof f->why), 0);
    assert_string_equal(pub, a.public_z85); /* the public file untouched too */

    /* a symlink where the secret goes counts as existing */
    char link[160];
    snprintf(link, sizeof link, "%s/link.key", f->dir);
    assert_int_equal(symlink("/nonexistent/target", link), 0);
    assert_int_equal(plat_keys_save(link, NULL, &b, false, f->why, sizeof f->why), -EEXIST);

    /* --force */
    assert_int_equal(plat_keys_save(f->secret, f->pub, &b, true, f->why, sizeof f->why), 0);
    assert_int_equal(plat_keys_load_secret(f->secret, &back, f->why, sizeof f->why), 0);
    assert_string_equal(back.secret_z85, b.secret_z85);
    assert_int_equal(plat_keys_load_public(f->pub, pub, f->why, sizeof f->why), 0);
    assert_string_equal(pub, b.public_z85);
    assert_int_equal(file_mode(f->secret), 0600);
    /* overwriting a file that was 0644 leaves it 0600 (a new inode) */
    assert_int_equal(chmod(f->secret, 0644), 0);
    assert_int_equal(plat_keys_save(f->secret, NULL, &a, true, f->why, sizeof f->why), 0);
    assert_int_equal(file_mode(f->secret), 0600);
    assert_int_equal(dir_entries(f->dir), 3); /* key, pub, link: no temporaries */
}

static void test_save_errors(void **state)
{
    fx_t *f = *state;
    plat_keypair_t kp;
    new_pair(&kp);

    /* not a key pair */
    plat_keypair_t bad = kp;
    bad.secret_z85[5] = '~';
    assert_int_equal(plat_keys_save(f->secret, NULL, &bad, false, f->why, sizeof f->why),
                     -EINVAL);
    bad = kp;
    bad.public_z85[0] = 0;
    assert_int_equal(plat_keys_save(f->secret, NULL, &bad, false, f->why, sizeof f->why),
                     -EINVAL);
    assert_int_equal(access(f->secret, F_OK), -1);

    /* a directory that does not exist */
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir.key", f->dir);
    f->why[0] = 0;
    assert_int_equal(plat_keys_save(nodir, NULL, &kp, false, f->why, sizeof f->why), -ENOENT);
    assert_why(f, "/no/such/dir.key", NULL);

    /* the public file cannot be written: the secret is, the error says so */
    char pubdir[160];
    snprintf(pubdir, sizeof pubdir, "%s/nodir/k.pub", f->dir);
    f->why[0] = 0;
    assert_int_equal(plat_keys_save(f->secret, pubdir, &kp, false, f->why, sizeof f->why),
                     -ENOENT);
    assert_why(f, "nodir/k.pub", NULL);
    assert_int_equal(dir_entries(f->dir), 1);
    plat_keys_wipe(&kp);
}

static void test_secret_mode_refused(void **state)
{
    fx_t *f = *state;
    plat_keypair_t kp, back;
    new_pair(&kp);
    assert_int_equal(plat_keys_save(f->secret, NULL, &kp, false, f->why, sizeof f->why), 0);

    static const mode_t bad[] = {0640, 0604, 0660, 0644, 0610, 0601, 0602, 0620, 0666, 0700 | 04};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(chmod(f->secret, bad[i]), 0);
        f->why[0] = 0;
        memset(&back, 'x', sizeof back);
        assert_int_equal(plat_keys_load_secret(f->secret, &back, f->why, sizeof f->why), -EPERM);
        assert_why(f, f->secret, "mode");
        char m[16];
        snprintf(m, sizeof m, "%04o", (unsigned)bad[i]);
        assert_why(f, f->secret, m);
        /* nothing of the key handed out */
        assert_int_equal(back.secret_z85[0], 0);
        assert_int_equal(back.public_z85[0], 0);
        f->why[0] = 0;
        assert_int_equal(plat_keys_check_private(f->secret, f->why, sizeof f->why), -EPERM);
        assert_why(f, f->secret, "mode");
    }
    /* owner-only modes are private */
    static const mode_t good[] = {0600, 0400, 0700};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(chmod(f->secret, good[i]), 0);
        assert_int_equal(plat_keys_load_secret(f->secret, &back, f->why, sizeof f->why), 0);
        assert_string_equal(back.secret_z85, kp.secret_z85);
    }
    plat_keys_wipe(&kp);
    plat_keys_wipe(&back);
}

static void test_secret_not_regular_refused(void **state)
{
    fx_t *f = *state;
    plat_keypair_t kp, back;
    new_pair(&kp);
    assert_int_equal(plat_keys_save(f->secret, NULL, &kp, false, f->why, sizeof f->why), 0);

    /* a symlink to a perfectly private key file */
    char link[160];
    snprintf(link, sizeof link, "%s/link.key", f->dir);
    assert_int_equal(symlink(f->secret, link), 0);
    f->why[0] = 0;
    assert_int_equal(plat_keys_load_secret(link, &back, f->why, sizeof f->why), -EPERM);
    assert_why(f, link, "not a regular file");
    assert_int_equal(back.secret_z85[0], 0);

    /* a directory, a fifo */
    char sub[160], fifo[160];
    snprintf(sub, sizeof sub, "%s/sub", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    f->why[0] = 0;
    assert_int_equal(plat_keys_load_secret(sub, &back, f->why, sizeof f->why), -EPERM);
    assert_why(f, sub, "not a regular file");
    snprintf(fifo, sizeof fifo, "%s/fifo", f->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    f->why[0] = 0;
    assert_int_equal(plat_keys_check_private(fifo, f->why, sizeof f->why), -EPERM);
    assert_why(f, fifo, "not a regular file");
    plat_keys_wipe(&kp);
}

static void test_secret_other_owner_refused(void **state)
{
    fx_t *f = *state;
    if (geteuid() != 0) {
        print_message("skipped: needs root to give a file to another user\n");
        skip();
    }
    struct passwd *pw = getpwnam("nobody");
    uid_t other = pw ? pw->pw_uid : 65534;
    gid_t other_g = pw ? pw->pw_gid : 65534;
    plat_keypair_t kp, back;
    new_pair(&kp);
    assert_int_equal(plat_keys_save(f->secret, NULL, &kp, false, f->why, sizeof f->why), 0);
    assert_int_equal(chown(f->secret, other, other_g), 0);
    assert_int_equal(chmod(f->secret, 0600), 0);
    f->why[0] = 0;
    assert_int_equal(plat_keys_load_secret(f->secret, &back, f->why, sizeof f->why), -EPERM);
    assert_why(f, f->secret, "owned by uid");
    char uid[32];
    snprintf(uid, sizeof uid, "uid %d", (int)other);
    assert_why(f, f->secret, uid);
    assert_int_equal(back.secret_z85[0], 0);
    f->why[0] = 0;
    assert_int_equal(plat_keys_check_private(f->secret, f->why, sizeof f->why), -EPERM);
    assert_why(f, f->secret, "owned by uid");
    /* back to us: accepted again */
    assert_int_equal(chown(f->secret, geteuid(), getegid()), 0);
    assert_int_equal(plat_keys_load_secret(f->secret, &back, f->why, sizeof f->why), 0);
    assert_string_equal(back.secret_z85, kp.secret_z85);
    plat_keys_wipe(&kp);
    plat_keys_wipe(&back);
}

static void test_missing_file(void **state)
{
    fx_t *f = *state;
    plat_keypair_t back;
    char pub[PLAT_KEY_Z85_LEN + 1];
    f->why[0] = 0;
    assert_int_equal(plat_keys_load_secret(f->secret, &back, f->why, sizeof f->why), -ENOENT);
    assert_why(f, f->secret, NULL);
    f->why[0] = 0;
    assert_int_equal(plat_keys_check_private(f->secret, f->why, sizeof f->why), -ENOENT);
    assert_why(f, f->secret, NULL);
    f->why[0] = 0;
    memset(pub, 'x', sizeof pub);
    assert_int_equal(plat_keys_load_public(f->pub, pub, f->why, sizeof f->why), -ENOENT);
    assert_why(f, f->pub, NULL);
    assert_int_equal(pub[0], 0);
}

/* Secret-file contents that must be refused (-EINVAL naming the file),
 * given a valid key `k`. */
static void assert_secret_refused(fx_t *f, const void *data, size_t len, const char *label)
{
    write_file(f->secret, data, len, 0600);
    plat_keypair_t back;
    memset(&back, 'x', sizeof back);
    f->why[0] = 0;
    int rc = plat_keys_load_secret(f->secret, &back, f->why, sizeof f->why);
    if (rc != -EINVAL)
        fail_msg("%s: secret file accepted or wrong error (%d)", label, rc);
    assert_why(f, f->secret, "not a Z85");
    assert_int_equal(back.secret_z85[0], 0);
    assert_int_equal(back.public_z85[0], 0);
}

static void assert_public_refused(fx_t *f, const char *content, const char *label)
{
    write_str(f->pub, content, 0644);
    char pub[PLAT_KEY_Z85_LEN + 1];
    memset(pub, 'x', sizeof pub);
    f->why[0] = 0;
    int rc = plat_keys_load_public(f->pub, pub, f->why, sizeof f->why);
    if (rc != -EINVAL)
        fail_msg("%s: public file accepted or wrong error (%d)", label, rc);
    assert_why(f, f->pub, "not a Z85");
    assert_int_equal(pub[0], 0);
}

static void test_malformed_z85_refused(void **state)
{
    fx_t *f = *state;
    plat_keypair_t kp;
    new_pair(&kp);
    const char *k = kp.secret_z85;
    char buf[512];

    assert_secret_refused(f, "", 0, "empty");
    assert_secret_refused(f, "\n", 1, "newline only");
    assert_secret_refused(f, k, 39, "39 characters");
    snprintf(buf, sizeof buf, "%sA", k);
    assert_secret_refused(f, buf, strlen(buf), "41 characters");
    snprintf(buf, sizeof buf, "%s%s", k, k);
    assert_secret_refused(f, buf, strlen(buf), "two keys on a line");
    /* characters outside the Z85 alphabet, each at a few positions */
    static const char bad_chars[] = {'~', '"', '\'', ',', ';', '\\', '_', '`', '|', '\t', 0x7f};
    for (size_t i = 0; i < sizeof bad_chars; i++) {
        for (int pos = 0; pos < PLAT_KEY_Z85_LEN; pos += 13) {
            snprintf(buf, sizeof buf, "%s\n", k);
            buf[pos] = bad_chars[i];
            char label[64];
            snprintf(label, sizeof label, "char 0x%02x at %d", (unsigned)(uint8_t)bad_chars[i],
                     pos);
            assert_secret_refused(f, buf, strlen(buf), label);
        }
    }
    /* a non-ASCII byte */
    snprintf(buf, sizeof buf, "%s\n", k);
    buf[20] = (char)0xc3;
    assert_secret_refused(f, buf, strlen(buf), "byte 0xc3");
    /* Z85 digits whose value is over 2^32 ('#' is 84: 85^5 - 1 > 2^32 - 1) */
    snprintf(buf, sizeof buf, "#####%s\n", k + 5);
    assert_secret_refused(f, buf, strlen(buf), "group value over 2^32");
    /* trailing garbage after the key and its newline */
    snprintf(buf, sizeof buf, "%s\nx", k);
    assert_secret_refused(f, buf, strlen(buf), "garbage after newline");
    snprintf(buf, sizeof buf, "%s\n%s\n", k, k);
    assert_secret_refused(f, buf, strlen(buf), "two lines");
    snprintf(buf, sizeof buf, "%s x\n", k);
    assert_secret_refused(f, buf, strlen(buf), "garbage after a space");
    snprintf(buf, sizeof buf, " %s\n", k);
    assert_secret_refused(f, buf, strlen(buf), "leading space");
    snprintf(buf, sizeof buf, "%s\n", k);
    memset(buf + strlen(buf), 'y', 200);
    buf[PLAT_KEY_Z85_LEN + 1 + 200] = 0;
    assert_secret_refused(f, buf, strlen(buf), "long garbage after the newline");
    /* content hidden from a string comparison: after a NUL byte, or after
     * more line ends than one read of a key file takes */
    size_t n = (size_t)snprintf(buf, sizeof buf, "%s", k);
    memcpy(buf + n, "\0GARBAGE\n", 9);
    assert_secret_refused(f, buf, n + 9, "NUL then garbage");
    n = (size_t)snprintf(buf, sizeof buf, "%s", k);
    memset(buf + n, '\n', 87);
    memcpy(buf + n + 87, "GARBAGE", 7);
    assert_secret_refused(f, buf, n + 87 + 7, "87 newlines then garbage");

    /* the accepted shapes: the key with or without a final newline (CRLF
     * too) */
    plat_keypair_t back;
    static const char *const ok_suffix[] = {"", "\n", "\r\n"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(buf, sizeof buf, "%s%s", k, ok_suffix[i]);
        write_str(f->secret, buf, 0600);
        assert_int_equal(plat_keys_load_secret(f->secret, &back, f->why, sizeof f->why), 0);
        assert_string_equal(back.secret_z85, kp.secret_z85);
        assert_string_equal(back.public_z85, kp.public_z85);
    }

    /* the public file: same rules, no privacy required */
    assert_public_refused(f, "", "empty");
    snprintf(buf, sizeof buf, "%.39s\n", kp.public_z85);
    assert_public_refused(f, buf, "39 characters");
    snprintf(buf, sizeof buf, "%s~\n", kp.public_z85);
    assert_public_refused(f, buf, "41 characters");
    snprintf(buf, sizeof buf, "%s\n", kp.public_z85);
    buf[7] = '|';
    assert_public_refused(f, buf, "invalid character");
    snprintf(buf, sizeof buf, "%s\ngarbage\n", kp.public_z85);
    assert_public_refused(f, buf, "trailing garbage");
    char pub[PLAT_KEY_Z85_LEN + 1];
    snprintf(buf, sizeof buf, "%s\n", kp.public_z85);
    write_str(f->pub, buf, 0644);
    assert_int_equal(plat_keys_load_public(f->pub, pub, f->why, sizeof f->why), 0);
    assert_string_equal(pub, kp.public_z85);
    plat_keys_wipe(&kp);
    plat_keys_wipe(&back);
}

static void test_derive_and_convert(void **state)
{
    (void)state;
    for (int i = 0; i < 8; i++) {
        plat_keypair_t kp, d;
        new_pair(&kp);
        /* the public key of a pair is the one libzmq derives from its secret */
        char z[PLAT_KEY_Z85_LEN + 1];
        assert_int_equal(zmq_curve_public(z, kp.secret_z85), 0);
        assert_string_equal(z, kp.public_z85);
        memset(&d, 0, sizeof d);
        memcpy(d.secret_z85, kp.secret_z85, sizeof d.secret_z85);
        memset(d.public_z85, 'q', PLAT_KEY_Z85_LEN);
        assert_int_equal(plat_keys_derive_public(&d), 0);
        assert_string_equal(d.public_z85, kp.public_z85);

        /* Z85 <-> 32 bytes */
        uint8_t bin[PLAT_KEY_BIN_LEN], ref[PLAT_KEY_BIN_LEN];
        assert_int_equal(plat_key_to_bin(kp.public_z85, bin), 0);
        assert_non_null(zmq_z85_decode(ref, kp.public_z85));
        assert_memory_equal(bin, ref, sizeof bin);
        char back[PLAT_KEY_Z85_LEN + 1];
        assert_int_equal(plat_key_from_bin(bin, sizeof bin, back), 0);
        assert_string_equal(back, kp.public_z85);
        plat_keys_wipe(&kp);
    }
    plat_keypair_t bad;
    memset(&bad, 0, sizeof bad);
    assert_int_equal(plat_keys_derive_public(&bad), -EINVAL); /* empty */
    snprintf(bad.secret_z85, sizeof bad.secret_z85, "%040d", 0);
    bad.secret_z85[3] = '~';
    assert_int_equal(plat_keys_derive_public(&bad), -EINVAL);

    uint8_t bin[PLAT_KEY_BIN_LEN] = {0};
    char out[PLAT_KEY_Z85_LEN + 1];
    assert_int_equal(plat_key_to_bin(NULL, bin), -EINVAL);
    assert_int_equal(plat_key_to_bin("short", bin), -EINVAL);
    assert_false(plat_key_z85_valid(NULL));
    assert_false(plat_key_z85_valid(""));
    memset(out, 'x', sizeof out);
    assert_int_equal(plat_key_from_bin(bin, 31, out), -EINVAL);
    assert_int_equal(out[0], 0);
    assert_int_equal(plat_key_from_bin(NULL, 32, out), -EINVAL);
    assert_int_equal(plat_key_from_bin(bin, 33, out), -EINVAL);
    /* all-zero bytes are a (useless but well-formed) key */
    assert_int_equal(plat_key_from_bin(bin, 32, out), 0);
    assert_true(plat_key_z85_valid(out));

    /* wipe */
    plat_keypair_t kp;
    new_pair(&kp);
    plat_keys_wipe(&kp);
    const uint8_t *p = (const uint8_t *)&kp;
    for (size_t i = 0; i < sizeof kp; i++)
        assert_int_equal(p[i], 0);
    plat_keys_wipe(NULL);
}

static bool fd_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

static void test_read_fd(void **state)
{
    fx_t *f = *state;
    plat_keypair_t kp, back;
    new_pair(&kp);
    char line[64];
    snprintf(line, sizeof line, "%s\n", kp.secret_z85);

    /* the key and a newline, then EOF */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], line, strlen(line)), (ssize_t)strlen(line));
    close(p[1]);
    assert_int_equal(plat_keys_read_fd(p[0], &back, f->why, sizeof f->why), 0);
    assert_false(fd_open(p[0])); /* closed */
    assert_string_equal(back.secret_z85, kp.secret_z85);
    assert_string_equal(back.public_z85, kp.public_z85);

    /* garbage: refused, fd closed, nothing handed out */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "not a key\n", 10), 10);
    close(p[1]);
    f->why[0] = 0;
    memset(&back, 'x', sizeof back);
    assert_int_equal(plat_keys_read_fd(p[0], &back, f->why, sizeof f->why), -EINVAL);
    assert_false(fd_open(p[0]));
    assert_non_null(strstr(f->why, "key fd"));
    assert_int_equal(back.secret_z85[0], 0);
    assert_int_equal(back.public_z85[0], 0);

    /* the writer closes without writing */
    assert_int_equal(pipe(p), 0);
    close(p[1]);
    assert_int_equal(plat_keys_read_fd(p[0], &back, f->why, sizeof f->why), -EINVAL);
    assert_false(fd_open(p[0]));

    /* not an fd */
    assert_int_equal(plat_keys_read_fd(-1, &back, f->why, sizeof f->why), -EBADF);
    assert_non_null(strstr(f->why, "key fd -1"));
    plat_keys_wipe(&kp);
}

/* The file checked is the file read: plat_keys_open_private hands out the
 * descriptor it fstat()ed, so swapping the path afterwards changes nothing
 * (the old lstat-then-open could be raced). A symlink to a good key, a
 * FIFO (without anyone writing: must not hang), a directory and a 0640
 * file are refused through every entry point, naming the file. */
static void test_open_private_checks_what_it_reads(void **state)
{
    fx_t *f = *state;
    plat_keypair_t kp, other, back;
    new_pair(&kp);
    new_pair(&other);
    assert_int_equal(plat_keys_save(f->secret, NULL, &kp, false, f->why, sizeof f->why), 0);

    int fd = plat_keys_open_private(f->secret, f->why, sizeof f->why);
    assert_true(fd >= 0);
    /* the path now names another file (a world-readable one, even) */
    char swap[160];
    snprintf(swap, sizeof swap, "%s/swap.key", f->dir);
    char line[64];
    snprintf(line, sizeof line, "%s\n", other.secret_z85);
    write_str(swap, line, 0644);
    assert_int_equal(rename(swap, f->secret), 0);
    assert_int_equal(plat_keys_read_fd(fd, &back, f->why, sizeof f->why), 0);
    assert_string_equal(back.secret_z85, kp.secret_z85); /* the checked file's key */
    /* and the swapped-in file, opened afresh, is refused for its mode */
    f->why[0] = 0;
    assert_int_equal(plat_keys_open_private(f->secret, f->why, sizeof f->why), -EPERM);
    assert_why(f, f->secret, "0644");
    assert_int_equal(unlink(f->secret), 0);

    assert_int_equal(plat_keys_save(f->secret, NULL, &kp, false, f->why, sizeof f->why), 0);
    char link[160], fifo[160], sub[160];
    snprintf(link, sizeof link, "%s/link.key", f->dir);
    snprintf(fifo, sizeof fifo, "%s/fifo.key", f->dir);
    snprintf(sub, sizeof sub, "%s/sub.key", f->dir);
    assert_int_equal(symlink(f->secret, link), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    /* A blocking open of the FIFO would wait for a writer forever: the
     * alarm turns such a hang into a failure instead of a stuck test. */
    alarm(30);
    const char *bad[] = {link, fifo, sub};
    for (size_t i = 0; i < 3; i++) {
        f->why[0] = 0;
        memset(&back, 'x', sizeof back);
        assert_int_equal(plat_keys_load_secret(bad[i], &back, f->why, sizeof f->why), -EPERM);
        assert_why(f, bad[i], "not a regular file");
        assert_int_equal(back.secret_z85[0], 0);
        f->why[0] = 0;
        assert_int_equal(plat_keys_check_private(bad[i], f->why, sizeof f->why), -EPERM);
        assert_why(f, bad[i], "not a regular file");
        f->why[0] = 0;
        assert_int_equal(plat_keys_open_private(bad[i], f->why, sizeof f->why), -EPERM);
        assert_why(f, bad[i], "not a regular file");
    }
    alarm(0);
    assert_int_equal(unlink(link), 0);
    assert_int_equal(unlink(fifo), 0);
    assert_int_equal(rmdir(sub), 0);

    /* 0640: refused with the mode in the message, no fd left open */
    assert_int_equal(chmod(f->secret, 0640), 0);
    int before = open("/dev/null", O_RDONLY);
    assert_true(before >= 0);
    close(before);
    f->why[0] = 0;
    assert_int_equal(plat_keys_open_private(f->secret, f->why, sizeof f->why), -EPERM);
    assert_why(f, f->secret, "mode 0640");
    f->why[0] = 0;
    assert_int_equal(plat_keys_load_secret(f->secret, &back, f->why, sizeof f->why), -EPERM);
    assert_why(f, f->secret, "mode 0640");
    int after = open("/dev/null", O_RDONLY);
    assert_int_equal(after, before); /* lowest free fd unchanged: nothing leaked */
    close(after);
    /* a missing file: -ENOENT naming it */
    f->why[0] = 0;
    assert_int_equal(plat_keys_open_private(swap, f->why, sizeof f->why), -ENOENT);
    assert_why(f, swap, NULL);
    plat_keys_wipe(&kp);
    plat_keys_wipe(&other);
    plat_keys_wipe(&back);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_new_save_load),
        T(test_save_never_replaces),
        T(test_save_errors),
        T(test_secret_mode_refused),
        T(test_secret_not_regular_refused),
        T(test_secret_other_owner_refused),
        T(test_missing_file),
        T(test_malformed_z85_refused),
        T(test_derive_and_convert),
        T(test_read_fd),
        T(test_open_private_checks_what_it_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
