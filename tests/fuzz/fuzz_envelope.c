/* Fuzz target: the envelope codec (plat_envelope_decode + validate), what
 * every bus endpoint runs first on every frame it receives.
 *
 * Beyond "no crash, no leak, no UB", it checks the codec's contract
 * (plat/envelope.h) and aborts when it is broken:
 *   - a failure is exactly one of -EMSGSIZE/-EBADMSG/-EPROTO, with *out
 *     NULL and a reason;
 *   - an accepted message validates again, has the ids validate promised,
 *     and survives encode → decode → encode with the same bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat/plat.h"

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz_envelope: contract broken: %s (%s:%d)\n", #cond,     \
                    __FILE__, __LINE__);                                               \
            abort();                                                                   \
        }                                                                              \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Plat__PlatformMessage *m = NULL;
    const char *why = NULL;
    int rc = plat_envelope_decode(data, size, 0, &m, &why);
    if (rc < 0) {
        CHECK(m == NULL);
        CHECK(why != NULL && *why);
        CHECK(rc == -EMSGSIZE || rc == -EBADMSG || rc == -EPROTO || rc == -ENOMEM);
        /* A small size limit must refuse anything longer, before parsing. */
        if (size > 1) {
            rc = plat_envelope_decode(data, size, size - 1, &m, &why);
            CHECK(rc == -EMSGSIZE && m == NULL);
        }
        return 0;
    }
    CHECK(m != NULL && m->header != NULL);
    CHECK(plat_envelope_validate(m, &why) == 0 && why == NULL);
    CHECK(plat_id_kind(m->header->source->id) != PLAT_ID_INVALID);
    CHECK(plat_id_kind(m->header->destination->id) != PLAT_ID_INVALID);
    CHECK(strcmp(plat_channel_name(m->channel_case), "none") != 0 ||
          m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL__NOT_SET);

    uint8_t *buf1 = NULL, *buf2 = NULL;
    size_t len1 = 0, len2 = 0;
    rc = plat_envelope_encode(m, 0, &buf1, &len1);
    CHECK(rc == 0 && buf1);
    Plat__PlatformMessage *m2 = NULL;
    rc = plat_envelope_decode(buf1, len1, 0, &m2, &why);
    CHECK(rc == 0 && m2);
    rc = plat_envelope_encode(m2, 0, &buf2, &len2);
    CHECK(rc == 0 && len1 == len2 && memcmp(buf1, buf2, len1) == 0);
    /* A limit below the packed size refuses to encode. */
    if (len1 > 1) {
        uint8_t *b3 = NULL;
        size_t l3 = 0;
        CHECK(plat_envelope_encode(m2, len1 - 1, &b3, &l3) == -EMSGSIZE && b3 == NULL);
    }
    free(buf1);
    free(buf2);
    plat_envelope_free(&m2);
    plat_envelope_free(&m);
    CHECK(m == NULL);
    return 0;
}
