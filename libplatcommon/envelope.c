/* The one codec for PlatformMessage. */
#include "plat/envelope.h"

#include <errno.h>
#include <stdlib.h>

#include "plat/id.h"

/* The body of the set channel: every channel message is a oneof "body";
 * its case field is the first member after the ProtobufCMessage base in
 * each generated struct, so read it generically via the descriptor. */
static const ProtobufCMessage *channel_body(const Plat__PlatformMessage *m, int *body_case)
{
    const ProtobufCMessage *ch = NULL;
    switch (m->channel_case) {
    case PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL:
        ch = m->control ? &m->control->base : NULL;
        *body_case = m->control ? (int)m->control->body_case : 0;
        break;
    case PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN:
        ch = m->plugin ? &m->plugin->base : NULL;
        *body_case = m->plugin ? (int)m->plugin->body_case : 0;
        break;
    case PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE:
        ch = m->resource ? &m->resource->base : NULL;
        *body_case = m->resource ? (int)m->resource->body_case : 0;
        break;
    case PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY:
        ch = m->ability ? &m->ability->base : NULL;
        *body_case = m->ability ? (int)m->ability->body_case : 0;
        break;
    case PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT:
        ch = m->host_boot ? &m->host_boot->base : NULL;
        *body_case = m->host_boot ? (int)m->host_boot->body_case : 0;
        break;
    default:
        *body_case = 0;
        break;
    }
    return ch;
}

int plat_envelope_validate(const Plat__PlatformMessage *m, const char **why)
{
    const char *w = NULL;
    const Plat__Header *h = m ? m->header : NULL;
    if (!m)
        w = "message missing";
    else if (!h)
        w = "header missing";
    else if (!h->source || plat_id_kind(h->source->id) == PLAT_ID_INVALID)
        w = "source id invalid";
    else if (!h->destination || plat_id_kind(h->destination->id) == PLAT_ID_INVALID)
        w = "destination id invalid";
    else if (h->kind != PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT &&
             h->kind != PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST &&
             h->kind != PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY)
        w = "unknown message kind";
    else if (h->kind != PLAT__MESSAGE_KIND__MESSAGE_KIND_EVENT && h->seq_no == 0)
        w = "request or reply without seq_no";
    else if (m->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL__NOT_SET) {
        if (!(h->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REPLY && h->error))
            w = "no channel set";
    } else {
        int body_case = 0;
        if (!channel_body(m, &body_case))
            w = "unknown channel";
        else if (body_case == 0)
            w = "channel body not set";
    }
    if (why)
        *why = w;
    return w ? -EPROTO : 0;
}

/* protobuf-c keeps an unknown field of field number 0 (which no encoder may
 * write) and writes it back on encode, producing bytes no decoder takes:
 * such a message is garbage. Unknown fields with valid numbers (a newer
 * peer's additions) stay accepted. Walks every sub-message. */
static bool has_invalid_unknown(const ProtobufCMessage *msg, int depth)
{
    if (!msg || depth > 32)
        return depth > 32;
    for (unsigned i = 0; i < msg->n_unknown_fields; i++)
        if (msg->unknown_fields[i].tag == 0)
            return true;
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)msg;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)(const void *)(base + f->quantifier_offset);
            if (which != f->id)
                continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)(base + f->quantifier_offset);
            ProtobufCMessage *const *arr =
                *(ProtobufCMessage *const *const *)(const void *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (has_invalid_unknown(arr[k], depth + 1))
                    return true;
        } else {
            const ProtobufCMessage *sub =
                *(const ProtobufCMessage *const *)(const void *)(base + f->offset);
            if (has_invalid_unknown(sub, depth + 1))
                return true;
        }
    }
    return false;
}

int plat_envelope_decode(const uint8_t *buf, size_t len, size_t max_size,
                         Plat__PlatformMessage **out, const char **why)
{
    *out = NULL;
    if (!max_size)
        max_size = PLAT_MAX_MSG_SIZE_DEFAULT;
    if (len > max_size) {
        if (why)
            *why = "message larger than the size limit";
        return -EMSGSIZE;
    }
    if (len == 0) {
        /* protobuf would accept zero bytes as an all-default message; it
         * cannot be a valid envelope, and "empty" is the truer reason. */
        if (why)
            *why = "empty message";
        return -EBADMSG;
    }
    Plat__PlatformMessage *m = plat__platform_message__unpack(NULL, len, buf);
    if (m && has_invalid_unknown(&m->base, 0)) {
        plat__platform_message__free_unpacked(m, NULL);
        m = NULL;
    }
    if (!m) {
        if (why)
            *why = "not a PlatformMessage (truncated or garbage)";
        return -EBADMSG;
    }
    int rc = plat_envelope_validate(m, why);
    if (rc < 0) {
        plat__platform_message__free_unpacked(m, NULL);
        return rc;
    }
    *out = m;
    return 0;
}

int plat_envelope_encode(const Plat__PlatformMessage *m, size_t max_size, uint8_t **buf,
                         size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (!max_size)
        max_size = PLAT_MAX_MSG_SIZE_DEFAULT;
    int rc = plat_envelope_validate(m, NULL);
    if (rc < 0)
        return rc;
    size_t n = plat__platform_message__get_packed_size(m);
    if (n > max_size)
        return -EMSGSIZE;
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return -ENOMEM;
    plat__platform_message__pack(m, b);
    *buf = b;
    *len = n;
    return 0;
}

void plat_envelope_free(Plat__PlatformMessage **m)
{
    if (!m || !*m)
        return;
    /* Decoded and built messages are both allocated part by part with the
     * system allocator, which is what free_unpacked(NULL) releases. */
    protobuf_c_message_free_unpacked(&(*m)->base, NULL);
    *m = NULL;
}

const char *plat_channel_name(Plat__PlatformMessage__ChannelCase c)
{
    switch (c) {
    case PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL:
        return "control";
    case PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN:
        return "plugin";
    case PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE:
        return "resource";
    case PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY:
        return "ability";
    case PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT:
        return "host_boot";
    default:
        return "none";
    }
}
