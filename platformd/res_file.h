/* Resource channel, File kind (ARCHITECTURE.md section 8): read, write,
 * list and delete under one instance's own directory (its files/ dir,
 * given as an open directory fd). docs/resources.md is the reference.
 *
 * Paths are checked as text before anything touches the file system
 * (pd_res_file_check_path): relative, '/'-separated, canonical.
 *   -EACCES  absolute ("/..."), or any ".." component (escape attempts)
 *   -EINVAL  NUL byte, longer than PATH_MAX - 1, a component longer than
 *            NAME_MAX, an empty component (leading, trailing or double
 *            '/'), a "." component, a control character (0x01-0x1f, 0x7f),
 *            more than PD_RES_FILE_MAX_DEPTH components, or a component
 *            starting with ".plat-tmp-" (reserved for atomic writes)
 * Nothing is decoded: "%2e%2e" or "..\\x" are ordinary names.
 *
 * Then every open goes through openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS) relative to the root fd: a symbolic link may
 * point elsewhere inside the directory, one that leads out (absolute, or
 * through "..") is refused with -EACCES, and so is a link loop (ELOOP →
 * -EACCES). When the kernel has no openat2 (ENOSYS), the path is walked
 * one component at a time with openat(O_NOFOLLOW): then every symbolic
 * link is refused (-EACCES), inside or not.
 *
 * Ops:
 *   READ    a regular file, at most max_file_bytes (-EFBIG), -EISDIR on a
 *           directory, -ENOENT when missing
 *   WRITE   create or replace, atomically (a temp file in the same
 *           directory, fsync, rename); missing parent directories are
 *           created (0700); -EFBIG over max_file_bytes; -EDQUOT when the
 *           instance would use more than quota_bytes (sum of the sizes of
 *           its regular files, the replaced file not counted) or hold more
 *           than PD_RES_FILE_MAX_ENTRIES files and directories; -EISDIR
 *           when the path is a directory
 *   LIST    a directory ("" = the root): entries sorted by name, with size
 *           (regular files) and dir flag; temp files are hidden
 *   DELETE  a file (or a symbolic link itself) or an empty directory;
 *           -ENOTEMPTY, -ENOENT
 * A path through something that is not a directory: -ENOTDIR.
 *
 * Pure file system: no loop, no bus, no logging. Blocking: run it off the
 * loop. One operation per root at a time (the caller serializes). */
#ifndef PLATFORMD_RES_FILE_H
#define PLATFORMD_RES_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resource.pb-c.h"

#define PD_RES_FILE_MAX_DEPTH 64      /* components in a path */
#define PD_RES_FILE_MAX_ENTRIES 10000 /* files + directories per instance */
#define PD_RES_FILE_LIST_MAX 10000    /* entries in one LIST answer */
#define PD_RES_FILE_TMP_PREFIX ".plat-tmp-"

typedef struct {
    int64_t max_file_bytes; /* one file; <= 0 = none */
    int64_t quota_bytes;    /* the whole directory; <= 0 = none */
    bool no_openat2;        /* force the openat() walk (tests) */
} pd_res_file_opts_t;

/* The textual check above on `len` bytes of `path` (which need not be
 * NUL-terminated). `allow_empty`: "" is fine (LIST of the root). 0, -EACCES
 * or -EINVAL with why. */
int pd_res_file_check_path(const char *path, size_t len, bool allow_empty, char *why,
                           size_t why_size);

/* Run one request under `root_fd` (an O_DIRECTORY fd of the instance's
 * files/ directory; not closed). 0 and *out (every part malloc'd: attach it
 * to a message freed by plat_envelope_free, or free it with
 * pd_res_file_result_free; an empty result for WRITE and DELETE), or -errno
 * with why and *out NULL. */
int pd_res_file_exec(int root_fd, const Plat__FileRequest *req, const pd_res_file_opts_t *opts,
                     Plat__FileResult **out, char *why, size_t why_size);

void pd_res_file_result_free(Plat__FileResult **r);

/* Bytes of regular files and number of entries under root_fd (symbolic
 * links are not followed). 0 or -errno. */
int pd_res_file_usage(int root_fd, uint64_t *bytes, uint64_t *entries);

/* Remove `path` and everything under it (no symbolic link followed).
 * 0 (also when it does not exist) or -errno. */
int pd_res_file_remove_tree(const char *path);

#endif
