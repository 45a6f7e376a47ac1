/* Small system I/O helpers shared by the daemons. */
#ifndef PLAT_IO_H
#define PLAT_IO_H

#include <stddef.h>

/* Write all `len` bytes of `buf` to `fd`, retrying short writes and EINTR.
 * 0 or -errno. */
int plat_write_all(int fd, const void *buf, size_t len);

#endif
