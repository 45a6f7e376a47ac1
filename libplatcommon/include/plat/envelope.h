/* The one codec for PlatformMessage: pack, unpack, validate, free. */
#ifndef PLAT_ENVELOPE_H
#define PLAT_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "platform.pb-c.h"

#define PLAT_MAX_MSG_SIZE_DEFAULT (4u * 1024u * 1024u)

/* Validate a message (decoded or built): header present; source and
 * destination present with ids that plat_id_kind() accepts; a known kind;
 * a REQUEST or REPLY has seq_no > 0; exactly one channel set, with its body
 * set — except that a REPLY carrying header.error may have no channel. Returns 0 or -EPROTO with *why set to a
 * static string naming what is wrong ("header missing", "source id
 * invalid", "no channel set", ...). `why` may be NULL. */
int plat_envelope_validate(const Plat__PlatformMessage *m, const char **why);

/* Decode and validate `len` bytes. Returns 0 and *out (owned by the caller,
 * free with plat_envelope_free) or:
 *   -EMSGSIZE  len > max_size (max_size 0 = PLAT_MAX_MSG_SIZE_DEFAULT)
 *   -EBADMSG   not a PlatformMessage (truncated, garbage, or zero bytes)
 *   -EPROTO    decodes but fails plat_envelope_validate
 *   -ENOMEM
 * *out is NULL on failure; *why (may be NULL) names the reason. */
int plat_envelope_decode(const uint8_t *buf, size_t len, size_t max_size,
                         Plat__PlatformMessage **out, const char **why);

/* Validate and pack into a malloc'd buffer (*buf owned by the caller).
 * Returns 0, -EPROTO (invalid), -EMSGSIZE (packed size > max_size) or -ENOMEM. */
int plat_envelope_encode(const Plat__PlatformMessage *m, size_t max_size, uint8_t **buf,
                         size_t *len);

/* Free a decoded message, or one built by plat_msg_* (everything malloc'd).
 * NULL-safe; sets *m = NULL. */
void plat_envelope_free(Plat__PlatformMessage **m);

/* "control", "plugin", "resource", "ability", "host_boot", "none". */
const char *plat_channel_name(Plat__PlatformMessage__ChannelCase c);

#endif
