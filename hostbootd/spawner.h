/* hostbootd's plugin hosts: spawn (uv_spawn through the exec wrapper that
 * applies rlimits and PR_SET_NO_NEW_PRIVS), capture output into per-host
 * logs, signal through pidfds, reap (libuv for our children, a sweep for
 * orphans adopted as subreaper), and report every exit. Loop thread only. */
#ifndef HOSTBOOTD_SPAWNER_H
#define HOSTBOOTD_SPAWNER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hbconfig.h"
#include "plat/id.h"

typedef struct hb_spawner hb_spawner_t;

typedef struct {
    const char *host_id;
    int32_t pid;
    const char *language, *version, *mode;
    int64_t exit_status; /* when term_signal == 0 */
    int term_signal;
    uint64_t ran_ms;
    uint64_t log_bytes;
} hb_exit_t;

typedef void (*hb_exit_cb)(const hb_exit_t *x, void *arg);

typedef struct {
    const char *host_id;
    int32_t pid;
    const char *language, *version, *mode;
    bool stopping;
    const char *public_key; /* Z85 CURVE public key, "" when none */
} hb_host_info_t;

/* The fd number a spawned host reads its CURVE secret key from
 * (pluginhost --key-fd). */
#define HB_KEY_FD 3

/* `hostboot_id` and `platform_endpoint` are passed to every host. */
hb_spawner_t *hb_spawner_new(uv_loop_t *loop, const hb_config_t *cfg, const char *hostboot_id,
                             const char *platform_endpoint, hb_exit_cb on_exit, void *arg);

/* CURVE: give every host spawned from now on a fresh key pair (secret on
 * an inherited pipe, fd HB_KEY_FD, announced as --key-fd; the platform's
 * public key as --platform-key). NULL = none. 0 or -EINVAL. */
int hb_spawner_set_platform_key(hb_spawner_t *s, const char *platform_public_z85);

/* Hand a just spawned host its secret key (CURVE): the spawner holds it
 * until then, and the host waits for it on fd HB_KEY_FD. Call once the
 * platform has been sent the host's public key (HostLifeCycleResponse), so
 * the key is admitted before the host can connect with it; with
 * `hand_over` false (the answer could not be sent) the key is dropped and
 * the pipe closed: the host reads end-of-file and exits. 0, -ENOENT (no
 * such host, or nothing held), or -errno of the write (the host is gone). */
int hb_spawner_release_key(hb_spawner_t *s, const char *host_id, bool hand_over);

/* A live host's public key (Z85), NULL when it has none or is unknown. */
const char *hb_spawner_public_key(hb_spawner_t *s, const char *host_id);

/* Spawn a host. Returns 0 and *pid, or a negative errno with why[] set:
 *   -ENOENT   no runtime configured for (language, version)
 *   -ENOEXEC  the runtime's binary is missing or not executable
 *   -EINVAL   bad host id or mode
 *   -EEXIST   a host with this id is running
 *   other     spawn failures (-EAGAIN, -ENOMEM, -EMFILE...): may succeed on retry */
int hb_spawner_start(hb_spawner_t *s, const char *host_id, const char *language,
                     const char *version, const char *mode, int32_t *pid, char *why,
                     size_t why_size);

/* SIGTERM now, SIGKILL after hosts.grace_ms. `pid` 0 = any. 0 or -ENOENT
 * (no such host, or the pid does not match). The exit is reported later. */
int hb_spawner_delete(hb_spawner_t *s, const char *host_id, int32_t pid);

/* Adopt the hosts a previous hostbootd left running (listed in
 * <hosts.work_dir>/hosts.json, checked by pid and start time): they are
 * watched through pidfds (exits reported, status -1 = unknown), can be
 * deleted, and are listed in the registration. Hosts that died meanwhile
 * are reported as exited. Call once the exit callback can report.
 * Returns how many were adopted. */
size_t hb_spawner_adopt(hb_spawner_t *s);

size_t hb_spawner_count(const hb_spawner_t *s);
void hb_spawner_foreach(hb_spawner_t *s, void (*fn)(const hb_host_info_t *h, void *arg),
                        void *arg);

/* Terminate every host (SIGTERM, grace, SIGKILL) and call `done` once all
 * are reaped (at once when there are none). */
void hb_spawner_stop_all(hb_spawner_t *s, void (*done)(void *arg), void *arg);

/* Free; every host must have exited (after stop_all's done). The loop must
 * run afterwards for close callbacks. NULL-safe. */
void hb_spawner_destroy(hb_spawner_t **s);

/* The exec wrapper: `hostbootd --exec-host [--keep-fd N] ... AS NOFILE NPROC CPU -- PATH ARGS...`
 * (--keep-fd N: the host's key pipe, the one fd above stdio kept open)
 * applies the limits (0 = inherit), PR_SET_NO_NEW_PRIVS, closes every fd
 * above 2 and execs PATH. Returns only on failure (exit code 127). */
int hb_exec_host_main(int argc, char **argv);

#endif
