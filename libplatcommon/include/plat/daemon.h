/* What platformd and hostbootd share around main(): the command line
 * (--config, --log-level, --version, --help), the one "config error" line
 * with exit 78, the log level, and running the loop to its end. */
#ifndef PLAT_DAEMON_H
#define PLAT_DAEMON_H

#include <uv.h>

#include "config.h"

typedef struct {
    const char *config_path; /* NULL: the embedded defaults */
    const char *log_level;   /* NULL: the config's */
} plat_daemon_args_t;

/* plat_log_init(name), SIGPIPE ignored (a closed pipe or peer is an error
 * return, not a death), then the command line. Returns -1 to go on, or the
 * exit code to return: 0 after --version/--help, EX_USAGE (64) for bad
 * usage (logged). `doc_file` names the config's documentation. */
int plat_daemon_args(int argc, char **argv, const char *name, const char *doc_file,
                     plat_daemon_args_t *out);

/* Log the one "config error: FILE:LINE:COL: key: reason" line; returns
 * PLAT_EX_CONFIG for main to exit with. */
int plat_daemon_config_error(const plat_cfg_error_t *err);

/* --log-level when given, else the config's level. */
void plat_daemon_set_log_level(const plat_daemon_args_t *args, const char *config_level);

/* Run `loop` until its last handle is closed, then close it (warning when
 * something was left open). */
void plat_daemon_run(uv_loop_t *loop);

#endif
