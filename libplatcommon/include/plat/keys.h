/* CURVE key pairs for the bus (ARCHITECTURE.md section 4): create, load
 * and save them as Z85 text files. A secret key file holds one line, the
 * 40-character Z85 secret key; it must be a regular file, mode 0600 (no
 * group/other bits), owned by the running user — anything else is refused
 * with a reason naming the file. A public key file holds one line, the Z85
 * public key (mode 0644). Key material passes through these functions only
 * in stack buffers that are wiped after use. */
#ifndef PLAT_KEYS_H
#define PLAT_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLAT_KEY_Z85_LEN 40 /* a 32-byte key in Z85 */
#define PLAT_KEY_BIN_LEN 32

typedef struct {
    char public_z85[PLAT_KEY_Z85_LEN + 1];
    char secret_z85[PLAT_KEY_Z85_LEN + 1];
} plat_keypair_t;

/* A fresh key pair (zmq_curve_keypair). 0 or -ENOTSUP (libzmq built
 * without CURVE) / -EIO. */
int plat_keys_new(plat_keypair_t *kp);

/* True when `z85` is exactly 40 characters that decode to a key. */
bool plat_key_z85_valid(const char *z85);

/* Z85 <-> 32 raw bytes (the Host.public_key protobuf field). 0 or -EINVAL. */
int plat_key_to_bin(const char *z85, uint8_t out[PLAT_KEY_BIN_LEN]);
int plat_key_from_bin(const uint8_t *bin, size_t len, char out[PLAT_KEY_Z85_LEN + 1]);

/* Fill kp->public_z85 from kp->secret_z85. 0 or -EINVAL. */
int plat_keys_derive_public(plat_keypair_t *kp);

/* Write the secret key to `secret_path` (created 0600, atomically through a
 * temporary file) and, when `public_path` is not NULL, the public key to
 * `public_path` (0644). Refuses to replace an existing secret file unless
 * `overwrite`. 0 or -errno with why[] set. */
int plat_keys_save(const char *secret_path, const char *public_path, const plat_keypair_t *kp,
                   bool overwrite, char *why, size_t why_size);

/* Check that `path` is a private file: regular, not a symlink, owned by
 * the effective uid, no group/other permission bits. 0 or -EPERM/-errno
 * with why[] naming the file and what is wrong. (Opens and fstat()s it: a
 * FIFO or device is never waited on.) */
int plat_keys_check_private(const char *path, char *why, size_t why_size);

/* The same check, race-free: open `path` (read-only, O_CLOEXEC, no symlink
 * followed, non-blocking so a FIFO cannot hang the caller), then fstat()
 * the descriptor. Returns the open fd (the caller reads the checked file
 * from it and closes it), or -EPERM/-errno with why[] as above. */
int plat_keys_open_private(const char *path, char *why, size_t why_size);

/* Load a secret key file (checked with plat_keys_check_private) and derive
 * the public key. 0 or -errno with why[] naming the file. */
int plat_keys_load_secret(const char *path, plat_keypair_t *kp, char *why, size_t why_size);

/* Load a public key file. 0 or -errno with why[] naming the file. */
int plat_keys_load_public(const char *path, char out[PLAT_KEY_Z85_LEN + 1], char *why,
                          size_t why_size);

/* Read a secret key (Z85, optional trailing newline) from an inherited
 * pipe `fd` until EOF, then close it. 0 or -errno with why[] set. */
int plat_keys_read_fd(int fd, plat_keypair_t *kp, char *why, size_t why_size);

/* Wipe a key pair (explicit_bzero). */
void plat_keys_wipe(plat_keypair_t *kp);

#endif
