/* CURVE key pairs as Z85 files. See keys.h. */
#include "plat/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "plat/io.h"

void plat_keys_wipe(plat_keypair_t *kp)
{
    if (kp)
        explicit_bzero(kp, sizeof *kp);
}

bool plat_key_z85_valid(const char *z85)
{
    uint8_t bin[PLAT_KEY_BIN_LEN];
    return plat_key_to_bin(z85, bin) == 0;
}

int plat_key_to_bin(const char *z85, uint8_t out[PLAT_KEY_BIN_LEN])
{
    if (!z85 || strlen(z85) != PLAT_KEY_Z85_LEN)
        return -EINVAL;
    return zmq_z85_decode(out, z85) ? 0 : -EINVAL;
}

int plat_key_from_bin(const uint8_t *bin, size_t len, char out[PLAT_KEY_Z85_LEN + 1])
{
    out[0] = 0;
    if (!bin || len != PLAT_KEY_BIN_LEN)
        return -EINVAL;
    return zmq_z85_encode(out, bin, len) ? 0 : -EINVAL;
}

int plat_keys_new(plat_keypair_t *kp)
{
    memset(kp, 0, sizeof *kp);
    if (!zmq_has("curve"))
        return -ENOTSUP;
    if (zmq_curve_keypair(kp->public_z85, kp->secret_z85) != 0)
        return -EIO;
    return 0;
}

int plat_keys_derive_public(plat_keypair_t *kp)
{
    if (!plat_key_z85_valid(kp->secret_z85))
        return -EINVAL;
    return zmq_curve_public(kp->public_z85, kp->secret_z85) == 0 ? 0 : -EINVAL;
}

/* Write `line` + "\n" to `path` with `mode`, atomically; unless `replace`,
 * an existing `path` (even one created after the caller looked) is kept
 * and -EEXIST returned (link(2) never replaces, rename(2) does). */
static int write_key_file(const char *path, const char *line, mode_t mode, bool replace, char *why,
                          size_t why_size)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        snprintf(why, why_size, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        int e = errno;
        snprintf(why, why_size, "%s: cannot create: %s", tmp, strerror(e));
        return -e;
    }
    char buf[PLAT_KEY_Z85_LEN + 2];
    snprintf(buf, sizeof buf, "%s\n", line);
    int rc = fchmod(fd, mode) == 0 ? 0 : -errno;
    if (rc == 0)
        rc = plat_write_all(fd, buf, strlen(buf));
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    explicit_bzero(buf, sizeof buf);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && replace && rename(tmp, path) != 0)
        rc = -errno;
    if (rc == 0 && !replace) {
        if (link(tmp, path) != 0) {
            rc = -errno;
            /* A file system without hard links: the caller's own check
             * for an existing file stands. */
            if ((rc == -EPERM || rc == -EOPNOTSUPP || rc == -ENOSYS) && rename(tmp, path) == 0)
                rc = 0;
        }
        unlink(tmp);
        if (rc == -EEXIST) {
            snprintf(why, why_size, "%s: exists (not replaced)", path);
            return rc;
        }
    }
    if (rc < 0) {
        snprintf(why, why_size, "%s: cannot write: %s", path, strerror(-rc));
        unlink(tmp);
    }
    return rc;
}

int plat_keys_save(const char *secret_path, const char *public_path, const plat_keypair_t *kp,
                   bool overwrite, char *why, size_t why_size)
{
    if (!plat_key_z85_valid(kp->secret_z85) || !plat_key_z85_valid(kp->public_z85)) {
        snprintf(why, why_size, "not a key pair");
        return -EINVAL;
    }
    struct stat st;
    if (!overwrite && lstat(secret_path, &st) == 0) {
        snprintf(why, why_size, "%s: exists (not replaced)", secret_path);
        return -EEXIST;
    }
    int rc = write_key_file(secret_path, kp->secret_z85, 0600, overwrite, why, why_size);
    if (rc == 0 && public_path)
        rc = write_key_file(public_path, kp->public_z85, 0644, true, why, why_size);
    return rc;
}

/* Why the file behind `fd` (opened from `path`) is not private, or 0. */
static int check_private_fd(int fd, const char *path, char *why, size_t why_size)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        snprintf(why, why_size, "%s: %s", path, strerror(e));
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_size, "%s: not a regular file", path);
        return -EPERM;
    }
    if (st.st_uid != geteuid()) {
        snprintf(why, why_size, "%s: owned by uid %d, not by this user (uid %d)", path,
                 (int)st.st_uid, (int)geteuid());
        return -EPERM;
    }
    if (st.st_mode & 077) {
        snprintf(why, why_size, "%s: mode %04o, must be 0600 (no group or other access)", path,
                 (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* Open first, then check what was opened (fstat), so that the file checked
 * is the file read: no window for swapping the path between the two.
 * O_NOFOLLOW refuses a symlink (ELOOP), O_NONBLOCK keeps a FIFO from
 * blocking the open until some writer comes, O_NOCTTY a terminal from
 * becoming ours. */
int plat_keys_open_private(const char *path, char *why, size_t why_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP) {
            snprintf(why, why_size, "%s: not a regular file (a symbolic link)", path);
            return -EPERM;
        }
        snprintf(why, why_size, "%s: %s", path, strerror(e));
        return -e;
    }
    int rc = check_private_fd(fd, path, why, why_size);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int plat_keys_check_private(const char *path, char *why, size_t why_size)
{
    int fd = plat_keys_open_private(path, why, why_size);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

/* The whole of a key file (at most size - 1 bytes) into buf, trailing
 * line ends and spaces trimmed. A file with more, or with a NUL byte,
 * yields "" (which no key check accepts): either would otherwise hide
 * content after the key. */
static int read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    for (;;) {
        char extra;
        bool full = n + 1 >= size;
        ssize_t r = full ? read(fd, &extra, 1) : read(fd, buf + n, size - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        if (full) {
            buf[0] = 0;
            return 0;
        }
        n += (size_t)r;
    }
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        buf[0] = 0;
        return 0;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = 0;
    return 0;
}

/* A secret key from `fd` (closed here) into *kp, its public key derived.
 * `from` names the source in why ("<path>" or "key fd N"), `not_a_key` is
 * what why says after it when the content is no secret key. */
static int read_secret(int fd, const char *from, const char *not_a_key, plat_keypair_t *kp,
                       char *why, size_t why_size)
{
    memset(kp, 0, sizeof *kp);
    char buf[128];
    int rc = read_line(fd, buf, sizeof buf);
    close(fd);
    if (rc == 0 && strlen(buf) == PLAT_KEY_Z85_LEN)
        memcpy(kp->secret_z85, buf, PLAT_KEY_Z85_LEN + 1);
    explicit_bzero(buf, sizeof buf);
    if (rc < 0) {
        snprintf(why, why_size, "%s: %s", from, strerror(-rc));
        return rc;
    }
    if (plat_keys_derive_public(kp) != 0) {
        plat_keys_wipe(kp);
        snprintf(why, why_size, "%s: %s", from, not_a_key);
        return -EINVAL;
    }
    return 0;
}

int plat_keys_load_secret(const char *path, plat_keypair_t *kp, char *why, size_t why_size)
{
    memset(kp, 0, sizeof *kp);
    int fd = plat_keys_open_private(path, why, why_size);
    if (fd < 0)
        return fd;
    return read_secret(fd, path, "not a Z85 CURVE secret key (one line of 40 characters)", kp, why,
                       why_size);
}

int plat_keys_load_public(const char *path, char out[PLAT_KEY_Z85_LEN + 1], char *why,
                          size_t why_size)
{
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(why, why_size, "%s: %s", path, strerror(e));
        return -e;
    }
    char buf[128];
    int rc = read_line(fd, buf, sizeof buf);
    close(fd);
    if (rc < 0) {
        snprintf(why, why_size, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (!plat_key_z85_valid(buf)) {
        snprintf(why, why_size, "%s: not a Z85 CURVE public key (one line of 40 characters)", path);
        return -EINVAL;
    }
    memcpy(out, buf, PLAT_KEY_Z85_LEN + 1);
    return 0;
}

int plat_keys_read_fd(int fd, plat_keypair_t *kp, char *why, size_t why_size)
{
    char from[32];
    snprintf(from, sizeof from, "key fd %d", fd);
    return read_secret(fd, from, "did not carry a Z85 CURVE secret key", kp, why, why_size);
}
