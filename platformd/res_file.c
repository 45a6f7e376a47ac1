/* Resource channel, File kind (see res_file.h). */
#include "res_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "plat/io.h"
#include "plat/why.h"

/* Recursion bound of the usage walk and of remove_tree (directories this
 * module creates are at most PD_RES_FILE_MAX_DEPTH deep). */
#define WALK_MAX_DEPTH 128

/* ---- textual check ------------------------------------------------------ */

int pd_res_file_check_path(const char *path, size_t len, bool allow_empty, char *why,
                           size_t why_size)
{
    if (!path && len) {
        return plat_why(why, why_size, -EINVAL, "no path");
    }
    if (len == 0) {
        if (allow_empty)
            return 0;
        return plat_why(why, why_size, -EINVAL, "empty path");
    }
    if (memchr(path, '\0', len)) {
        return plat_why(why, why_size, -EINVAL, "NUL byte in the path");
    }
    if (len > PATH_MAX - 1) {
        return plat_why(why, why_size, -EINVAL, "path longer than %d bytes", PATH_MAX - 1);
    }
    /* Escape attempts first, so that they are reported (and counted) as
     * denials even when the path is also malformed. */
    if (path[0] == '/') {
        return plat_why(why, why_size, -EACCES, "absolute path refused");
    }
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        if (j - i == 2 && path[i] == '.' && path[i + 1] == '.') {
            return plat_why(why, why_size, -EACCES, "'..' component refused");
        }
        i = j + 1;
    }
    size_t depth = 0;
    for (size_t i = 0; i <= len;) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        size_t n = j - i;
        if (n == 0) {
            return plat_why(why, why_size, -EINVAL,
                            "empty component (leading, trailing or double '/')");
        }
        if (n == 1 && path[i] == '.') {
            return plat_why(why, why_size, -EINVAL, "'.' component refused");
        }
        if (n > NAME_MAX) {
            return plat_why(why, why_size, -EINVAL, "component longer than %d bytes", NAME_MAX);
        }
        for (size_t k = i; k < j; k++) {
            unsigned char c = (unsigned char)path[k];
            if (c < 0x20 || c == 0x7f) {
                return plat_why(why, why_size, -EINVAL, "control character in the path");
            }
        }
        if (n >= sizeof PD_RES_FILE_TMP_PREFIX - 1 &&
            memcmp(path + i, PD_RES_FILE_TMP_PREFIX, sizeof PD_RES_FILE_TMP_PREFIX - 1) == 0) {
            return plat_why(why, why_size, -EINVAL, "names starting with %s are reserved",
                            PD_RES_FILE_TMP_PREFIX);
        }
        if (++depth > PD_RES_FILE_MAX_DEPTH) {
            return plat_why(why, why_size, -EINVAL, "more than %d components",
                            PD_RES_FILE_MAX_DEPTH);
        }
        if (j == len)
            break;
        i = j + 1;
    }
    return 0;
}

/* ---- confined opens ----------------------------------------------------- */

static int map_open_errno(int e, char *why, size_t why_size)
{
    switch (e) {
    case EXDEV:
        return plat_why(why, why_size, -EACCES, "path leads outside the instance directory");
    case ELOOP:
        return plat_why(why, why_size, -EACCES,
                        "symbolic link refused (loop, magic link, or no openat2)");
    case ENOENT:
        return plat_why(why, why_size, -ENOENT, "no such file or directory");
    case ENOTDIR:
        return plat_why(why, why_size, -ENOTDIR, "a path component is not a directory");
    default:
        return plat_why(why, why_size, -e, "%s", strerror(e));
    }
}

/* The walk without openat2: one component at a time, no symbolic link. */
static int walk_open(int dirfd, const char *rel, int flags, char *why, size_t why_size)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", rel);
    int cur = dirfd;
    char *save = NULL;
    char *comp = strtok_r(buf, "/", &save);
    while (comp) {
        char *next = strtok_r(NULL, "/", &save);
        int f = next ? O_RDONLY | O_DIRECTORY : flags;
        int fd = openat(cur, comp, f | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        if (fd < 0 && (e == ENOTDIR || e == ELOOP)) {
            struct stat st;
            if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                e = ELOOP;
        }
        if (cur != dirfd)
            close(cur);
        if (fd < 0)
            return map_open_errno(e, why, why_size);
        cur = fd;
        comp = next;
    }
    if (cur == dirfd) /* "" */
        cur = openat(dirfd, ".", flags | O_CLOEXEC);
    return cur < 0 ? map_open_errno(errno, why, why_size) : cur;
}

/* Open `rel` (checked by pd_res_file_check_path, "" = dirfd itself)
 * beneath dirfd. `flags` never has O_CREAT. fd or -errno with why. */
static int safe_open(int dirfd, const char *rel, int flags, bool no_openat2, char *why,
                     size_t why_size)
{
    if (!*rel) {
        int fd = openat(dirfd, ".", flags | O_CLOEXEC);
        return fd < 0 ? map_open_errno(errno, why, why_size) : fd;
    }
#ifdef SYS_openat2
    if (!no_openat2) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = (uint64_t)(flags | O_CLOEXEC);
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        for (int tries = 0; tries < 16; tries++) {
            long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
            if (fd >= 0)
                return (int)fd;
            if (errno == EAGAIN) /* a concurrent rename: the kernel asks to retry */
                continue;
            if (errno == ENOSYS)
                break;
            return map_open_errno(errno, why, why_size);
        }
    }
#else
    (void)no_openat2;
#endif
    return walk_open(dirfd, rel, flags, why, why_size);
}

/* Open (creating them 0700 as needed) the directories of `rel` beneath
 * root, one component at a time. fd or -errno with why. */
static int ensure_dirs(int root, const char *rel, bool no_openat2, char *why, size_t why_size)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", rel);
    int cur = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0)
        return map_open_errno(errno, why, why_size);
    char *save = NULL;
    for (char *comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
        int fd = safe_open(cur, comp, O_RDONLY | O_DIRECTORY, no_openat2, why, why_size);
        if (fd == -ENOENT) {
            if (mkdirat(cur, comp, 0700) < 0 && errno != EEXIST) {
                int e = errno;
                close(cur);
                return map_open_errno(e, why, why_size);
            }
            fd = safe_open(cur, comp, O_RDONLY | O_DIRECTORY, no_openat2, why, why_size);
        }
        close(cur);
        if (fd < 0)
            return fd;
        cur = fd;
    }
    return cur;
}

/* Split "a/b/c" into parent "a/b" and name "c" (parent "" for "c"). */
static void split_path(const char *path, char parent[PATH_MAX], const char **name)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        parent[0] = '\0';
        *name = path;
        return;
    }
    size_t n = (size_t)(slash - path);
    memcpy(parent, path, n);
    parent[n] = '\0';
    *name = slash + 1;
}

/* ---- usage -------------------------------------------------------------- */

static int usage_walk(int dfd, int depth, uint64_t *bytes, uint64_t *entries)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue;
            rc = -errno;
            break;
        }
        (*entries)++;
        if (S_ISREG(st.st_mode)) {
            *bytes += (uint64_t)st.st_size;
        } else if (S_ISDIR(st.st_mode) && depth < WALK_MAX_DEPTH) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                continue; /* vanished or not ours to read: not counted */
            rc = usage_walk(sub, depth + 1, bytes, entries);
            close(sub);
        }
    }
    if (rc == 0 && errno != 0 && !de)
        rc = -errno;
    closedir(d);
    return rc;
}

int pd_res_file_usage(int root_fd, uint64_t *bytes, uint64_t *entries)
{
    *bytes = 0;
    *entries = 0;
    return usage_walk(root_fd, 0, bytes, entries);
}

/* ---- results ------------------------------------------------------------ */

void pd_res_file_result_free(Plat__FileResult **r)
{
    if (!r || !*r)
        return;
    protobuf_c_message_free_unpacked(&(*r)->base, NULL);
    *r = NULL;
}

static Plat__FileResult *result_new(void)
{
    Plat__FileResult *r = malloc(sizeof *r);
    if (r)
        plat__file_result__init(r);
    return r;
}

/* ---- ops ---------------------------------------------------------------- */

static int op_read(int root, const char *path, const pd_res_file_opts_t *o, Plat__FileResult *r,
                   char *why, size_t why_size)
{
    /* O_NONBLOCK: a FIFO placed in the directory must not block the open. */
    int fd = safe_open(root, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, o->no_openat2, why, why_size);
    if (fd < 0)
        return fd;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        (void)plat_why(why, why_size, 0, "%s", strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        (void)plat_why(why, why_size, 0, "is a directory");
    } else if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        (void)plat_why(why, why_size, 0, "not a regular file");
    }
    uint64_t cap = o->max_file_bytes > 0 ? (uint64_t)o->max_file_bytes : UINT64_MAX;
    if (rc == 0 && (uint64_t)st.st_size > cap) {
        rc = -EFBIG;
        (void)plat_why(why, why_size, 0, "file larger than %llu bytes", (unsigned long long)cap);
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    /* Read what is there now (the size may have changed since fstat),
     * never more than the cap. */
    size_t have = 0, alloc = (size_t)st.st_size + 1;
    uint8_t *buf = malloc(alloc);
    while (buf) {
        if (have == alloc) {
            if ((uint64_t)have > cap) {
                rc = -EFBIG;
                (void)plat_why(why, why_size, 0, "file larger than %llu bytes",
                               (unsigned long long)cap);
                break;
            }
            size_t nalloc = alloc * 2;
            uint8_t *nb = realloc(buf, nalloc);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            alloc = nalloc;
        }
        ssize_t n = read(fd, buf + have, alloc - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            (void)plat_why(why, why_size, 0, "read: %s", strerror(errno));
            break;
        }
        if (n == 0)
            break;
        have += (size_t)n;
    }
    close(fd);
    if (!buf) {
        return plat_why(why, why_size, -ENOMEM, "out of memory");
    }
    if (rc == 0 && (uint64_t)have > cap) {
        rc = -EFBIG;
        (void)plat_why(why, why_size, 0, "file larger than %llu bytes", (unsigned long long)cap);
    }
    if (rc < 0) {
        free(buf);
        return rc;
    }
    r->data.data = buf;
    r->data.len = have;
    return 0;
}

static int op_write(int root, const char *path, const uint8_t *data, size_t len,
                    const pd_res_file_opts_t *o, char *why, size_t why_size)
{
    if (o->max_file_bytes > 0 && (uint64_t)len > (uint64_t)o->max_file_bytes) {
        return plat_why(why, why_size, -EFBIG, "file larger than %lld bytes",
                        (long long)o->max_file_bytes);
    }
    uint64_t used = 0, entries = 0;
    int rc = pd_res_file_usage(root, &used, &entries);
    if (rc < 0) {
        return plat_why(why, why_size, rc, "usage: %s", strerror(-rc));
    }
    /* Upper bound of the entries this write adds: every component. */
    size_t ncomp = 1;
    for (const char *p = path; *p; p++)
        ncomp += *p == '/';
    if (entries + ncomp > PD_RES_FILE_MAX_ENTRIES) {
        return plat_why(why, why_size, -EDQUOT, "more than %d files and directories",
                        PD_RES_FILE_MAX_ENTRIES);
    }
    char parent[PATH_MAX];
    const char *name;
    split_path(path, parent, &name);
    int pfd = ensure_dirs(root, parent, o->no_openat2, why, why_size);
    if (pfd < 0)
        return pfd;
    struct stat st;
    uint64_t old = 0;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) {
            close(pfd);
            return plat_why(why, why_size, -EISDIR, "is a directory");
        }
        if (S_ISREG(st.st_mode))
            old = (uint64_t)st.st_size;
    } else if (errno != ENOENT) {
        rc = map_open_errno(errno, why, why_size);
        close(pfd);
        return rc;
    }
    if (o->quota_bytes > 0 && used - old + len > (uint64_t)o->quota_bytes) {
        close(pfd);
        return plat_why(why, why_size, -EDQUOT, "instance quota of %lld bytes exceeded (%llu used)",
                        (long long)o->quota_bytes, (unsigned long long)used);
    }
    char tmp[sizeof PD_RES_FILE_TMP_PREFIX + 24];
    int fd = -1;
    for (int tries = 0; tries < 8 && fd < 0; tries++) {
        uint64_t rnd = 0;
        if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
            rnd = (uint64_t)getpid() * 2654435761u + (uint64_t)tries;
        snprintf(tmp, sizeof tmp, "%s%016llx", PD_RES_FILE_TMP_PREFIX, (unsigned long long)rnd);
        fd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        rc = -errno;
        (void)plat_why(why, why_size, 0, "temp file: %s", strerror(errno));
        close(pfd);
        return rc;
    }
    rc = plat_write_all(fd, data, len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(pfd, tmp, pfd, name) < 0)
        rc = -errno;
    if (rc < 0) {
        (void)plat_why(why, why_size, 0, "write: %s", strerror(-rc));
        unlinkat(pfd, tmp, 0);
    } else {
        fsync(pfd); /* the rename itself */
    }
    close(pfd);
    return rc;
}

static int entry_cmp(const void *a, const void *b)
{
    const Plat__FileEntry *x = *(Plat__FileEntry *const *)a;
    const Plat__FileEntry *y = *(Plat__FileEntry *const *)b;
    return strcmp(x->name, y->name);
}

static int op_list(int root, const char *path, const pd_res_file_opts_t *o, Plat__FileResult *r,
                   char *why, size_t why_size)
{
    int fd = safe_open(root, path, O_RDONLY | O_DIRECTORY, o->no_openat2, why, why_size);
    if (fd < 0)
        return fd;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return plat_why(why, why_size, -e, "%s", strerror(e));
    }
    int rc = 0;
    size_t cap = 0;
    struct dirent *de;
    while ((errno = 0, de = readdir(d))) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
            strncmp(n, PD_RES_FILE_TMP_PREFIX, sizeof PD_RES_FILE_TMP_PREFIX - 1) == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* vanished */
        if (r->n_entries >= PD_RES_FILE_LIST_MAX) {
            rc = -EFBIG;
            (void)plat_why(why, why_size, 0, "more than %d entries", PD_RES_FILE_LIST_MAX);
            break;
        }
        if (r->n_entries == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            Plat__FileEntry **ne = realloc(r->entries, ncap * sizeof *ne);
            if (!ne) {
                rc = -ENOMEM;
                break;
            }
            r->entries = ne;
            cap = ncap;
        }
        Plat__FileEntry *e = malloc(sizeof *e);
        if (!e) {
            rc = -ENOMEM;
            break;
        }
        plat__file_entry__init(e);
        e->name = strdup(n);
        if (!e->name) {
            free(e);
            rc = -ENOMEM;
            break;
        }
        e->dir = S_ISDIR(st.st_mode);
        e->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
        r->entries[r->n_entries++] = e;
    }
    if (rc == 0 && !de && errno != 0) {
        rc = -errno;
        (void)plat_why(why, why_size, 0, "readdir: %s", strerror(errno));
    }
    if (rc == -ENOMEM)
        (void)plat_why(why, why_size, 0, "out of memory");
    closedir(d);
    if (rc == 0 && r->n_entries > 1)
        qsort(r->entries, r->n_entries, sizeof *r->entries, entry_cmp);
    return rc;
}

static int op_delete(int root, const char *path, const pd_res_file_opts_t *o, char *why,
                     size_t why_size)
{
    char parent[PATH_MAX];
    const char *name;
    split_path(path, parent, &name);
    int pfd = safe_open(root, parent, O_RDONLY | O_DIRECTORY, o->no_openat2, why, why_size);
    if (pfd < 0)
        return pfd;
    struct stat st;
    int rc = 0;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = map_open_errno(errno, why, why_size);
    } else if (unlinkat(pfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0) {
        rc = -errno;
        if (rc == -EEXIST)
            rc = -ENOTEMPTY;
        (void)plat_why(why, why_size, 0, "%s",
                       rc == -ENOTEMPTY ? "directory not empty" : strerror(-rc));
    }
    close(pfd);
    return rc;
}

int pd_res_file_exec(int root_fd, const Plat__FileRequest *req, const pd_res_file_opts_t *opts,
                     Plat__FileResult **out, char *why, size_t why_size)
{
    *out = NULL;
    static const pd_res_file_opts_t none = {0};
    const pd_res_file_opts_t *o = opts ? opts : &none;
    if (!req) {
        return plat_why(why, why_size, -EINVAL, "no request");
    }
    const char *path = req->path ? req->path : "";
    bool is_list = req->op == PLAT__FILE_OP__FILE_OP_LIST;
    int rc = pd_res_file_check_path(path, strlen(path), is_list, why, why_size);
    if (rc < 0)
        return rc;
    Plat__FileResult *r = result_new();
    if (!r) {
        return plat_why(why, why_size, -ENOMEM, "out of memory");
    }
    switch (req->op) {
    case PLAT__FILE_OP__FILE_OP_READ:
        rc = op_read(root_fd, path, o, r, why, why_size);
        break;
    case PLAT__FILE_OP__FILE_OP_WRITE:
        rc = op_write(root_fd, path, req->data.data, req->data.len, o, why, why_size);
        break;
    case PLAT__FILE_OP__FILE_OP_LIST:
        rc = op_list(root_fd, path, o, r, why, why_size);
        break;
    case PLAT__FILE_OP__FILE_OP_DELETE:
        rc = op_delete(root_fd, path, o, why, why_size);
        break;
    default:
        (void)plat_why(why, why_size, 0, "unknown file op %d", (int)req->op);
        rc = -EINVAL;
        break;
    }
    if (rc < 0) {
        pd_res_file_result_free(&r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- removal ------------------------------------------------------------ */

static int rm_contents(int dfd, int depth)
{
    if (depth > WALK_MAX_DEPTH)
        return -ELOOP;
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                rc = -errno;
                continue;
            }
            int r = rm_contents(sub, depth + 1);
            close(sub);
            if (r < 0)
                rc = r;
            if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                rc = -errno;
        } else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
            rc = -errno;
        }
    }
    closedir(d);
    return rc;
}

int pd_res_file_remove_tree(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno == ENOTDIR || errno == ELOOP)
            return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
        return -errno;
    }
    int rc = rm_contents(fd, 0);
    close(fd);
    if (rmdir(path) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    return rc;
}
