/* Shared by the fuzz targets, the replay driver and the corpus generator:
 * the router target's input format and the ids its fake peers use, and a
 * helper that fills a built message's header and encodes it. */
#ifndef PLAT_FUZZ_COMMON_H
#define PLAT_FUZZ_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plat/plat.h"

/* fuzz_router's two peers, registered before any input runs. */
#define FUZZ_HOSTBOOT_NAME "fuzz"
#define FUZZ_HOSTBOOT_ID "hostboot-fuzz"
#define FUZZ_HOST_ID "host-00000000-0000-4000-8000-000000000001"
/* An id nobody registers (forwarding to it fails). */
#define FUZZ_OTHER_HOST_ID "host-00000000-0000-4000-8000-0000000000ff"
#define FUZZ_BOOT_ID "00000000-0000-4000-8000-00000000b007"

/* fuzz_router input: records, each
 *   u8 flags (bit 0: sent by the host, else by the hostboot;
 *             bit 1: sent as two frames, an empty one first)
 *   u16 length, little endian
 *   length bytes: one bus frame (normally an encoded PlatformMessage)
 * A record longer than what is left is cut to what is left. At most
 * FUZZ_ROUTER_MAX_RECORDS records are sent per input. */
#define FUZZ_ROUTER_FROM_HOST 0x01
#define FUZZ_ROUTER_TWO_FRAMES 0x02
#define FUZZ_ROUTER_MAX_RECORDS 16

/* Replace a protobuf-c string field (built messages hold the static empty
 * default, which must not be freed). Returns 0 or -ENOMEM. */
static inline int fuzz_set_str(char **field, const char *value)
{
    char *s = strdup(value);
    if (!s)
        return -ENOMEM;
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = s;
    return 0;
}

/* Fill m's header as the bus would and encode it (*buf malloc'd). */
static inline int fuzz_encode(Plat__PlatformMessage *m, const char *src, const char *dst,
                              uint64_t seq, Plat__MessageKind kind, uint8_t **buf, size_t *len)
{
    Plat__Header *h = m->header;
    if (!h || !h->source || !h->destination)
        return -EINVAL;
    if (fuzz_set_str(&h->source->id, src) || fuzz_set_str(&h->destination->id, dst) ||
        fuzz_set_str(&h->boot_id, FUZZ_BOOT_ID))
        return -ENOMEM;
    h->seq_no = seq;
    h->kind = kind;
    h->sent_at_ms = 1764000000000ull;
    if (kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
        h->timeout_ms = 2000;
    return plat_envelope_encode(m, 0, buf, len);
}

#endif
