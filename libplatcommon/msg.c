/* PlatformMessage builders: every part malloc'd, header allocated. */
#include "plat/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plat/envelope.h"

char *plat_msg_strdup(const char *s) { return strdup(s ? s : ""); }

/* malloc + generated init, in one place. */
#define NEW(type, init_fn)                                                                    \
    ({                                                                                        \
        type *p_ = malloc(sizeof(type));                                                      \
        if (p_)                                                                               \
            init_fn(p_);                                                                      \
        p_;                                                                                   \
    })

Plat__PlatformMessage *plat_msg_new_empty(void)
{
    Plat__PlatformMessage *m = NEW(Plat__PlatformMessage, plat__platform_message__init);
    if (!m)
        return NULL;
    m->header = NEW(Plat__Header, plat__header__init);
    if (m->header) {
        m->header->source = NEW(Plat__Endpoint, plat__endpoint__init);
        m->header->destination = NEW(Plat__Endpoint, plat__endpoint__init);
    }
    if (!m->header || !m->header->source || !m->header->destination)
        plat_envelope_free(&m);
    return m;
}

Plat__PlatformMessage *plat_msg_new(Plat__PlatformMessage__ChannelCase ch)
{
    Plat__PlatformMessage *m = plat_msg_new_empty();
    if (!m)
        return NULL;
    void *chm = NULL;
    switch (ch) {
    case PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL:
        chm = m->control = NEW(Plat__ControlMessage, plat__control_message__init);
        break;
    case PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN:
        chm = m->plugin = NEW(Plat__PluginMessage, plat__plugin_message__init);
        break;
    case PLAT__PLATFORM_MESSAGE__CHANNEL_RESOURCE:
        chm = m->resource = NEW(Plat__ResourceMessage, plat__resource_message__init);
        break;
    case PLAT__PLATFORM_MESSAGE__CHANNEL_ABILITY:
        chm = m->ability = NEW(Plat__AbilityMessage, plat__ability_message__init);
        break;
    case PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT:
        chm = m->host_boot = NEW(Plat__HostBootMessage, plat__host_boot_message__init);
        break;
    default:
        errno = EINVAL;
        plat_envelope_free(&m);
        return NULL;
    }
    if (!chm) {
        plat_envelope_free(&m);
        return NULL;
    }
    m->channel_case = ch;
    return m;
}

Plat__PlatformMessage *plat_msg_ping(const char *boot_id)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL);
    if (!m)
        return NULL;
    Plat__Ping *p = NEW(Plat__Ping, plat__ping__init);
    if (!p || !(p->boot_id = plat_msg_strdup(boot_id))) {
        free(p);
        plat_envelope_free(&m);
        return NULL;
    }
    m->control->body_case = PLAT__CONTROL_MESSAGE__BODY_PING;
    m->control->ping = p;
    return m;
}

Plat__PlatformMessage *plat_msg_pong(Plat__HostState state)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL);
    if (!m)
        return NULL;
    Plat__Pong *p = NEW(Plat__Pong, plat__pong__init);
    if (!p) {
        plat_envelope_free(&m);
        return NULL;
    }
    p->state = state;
    m->control->body_case = PLAT__CONTROL_MESSAGE__BODY_PONG;
    m->control->pong = p;
    return m;
}

Plat__PlatformMessage *plat_msg_shutdown(const char *reason)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL);
    if (!m)
        return NULL;
    Plat__Shutdown *sd = NEW(Plat__Shutdown, plat__shutdown__init);
    if (!sd) {
        plat_envelope_free(&m);
        return NULL;
    }
    m->control->body_case = PLAT__CONTROL_MESSAGE__BODY_SHUTDOWN;
    m->control->shutdown = sd;
    if (!(sd->reason = plat_msg_strdup(reason)))
        plat_envelope_free(&m);
    return m;
}

Plat__PlatformMessage *plat_msg_register_ack(const char *boot_id, uint32_t heartbeat_interval_ms,
                                             uint32_t heartbeat_miss)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL);
    if (!m)
        return NULL;
    Plat__RegisterAck *a = NEW(Plat__RegisterAck, plat__register_ack__init);
    if (!a || !(a->boot_id = plat_msg_strdup(boot_id))) {
        free(a);
        plat_envelope_free(&m);
        return NULL;
    }
    a->heartbeat_interval_ms = heartbeat_interval_ms;
    a->heartbeat_miss = heartbeat_miss;
    m->control->body_case = PLAT__CONTROL_MESSAGE__BODY_REGISTER_ACK;
    m->control->register_ack = a;
    return m;
}

Plat__PlatformMessage *plat_msg_host_ready(const char *host_id, int32_t pid, const char *language,
                                           const char *version, const char *mode,
                                           const char *build_version, int dev)
{
    Plat__PlatformMessage *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_CONTROL);
    if (!m)
        return NULL;
    Plat__HostReady *r = NEW(Plat__HostReady, plat__host_ready__init);
    if (!r) {
        plat_envelope_free(&m);
        return NULL;
    }
    /* Attach first so that one free releases whatever was built. */
    m->control->body_case = PLAT__CONTROL_MESSAGE__BODY_READY;
    m->control->ready = r;
    r->dev = dev != 0;
    if (!(r->version = plat_msg_strdup(build_version)) ||
        !(r->host = NEW(Plat__Host, plat__host__init)) || !(r->host->id = plat_msg_strdup(host_id)) ||
        !(r->host->descriptor = NEW(Plat__HostDescriptor, plat__host_descriptor__init)) ||
        !(r->host->descriptor->id = plat_msg_strdup(host_id)) ||
        !(r->host->descriptor->language = plat_msg_strdup(language)) ||
        !(r->host->descriptor->version = plat_msg_strdup(version)) ||
        !(r->host->descriptor->mode = plat_msg_strdup(mode))) {
        plat_envelope_free(&m);
        return NULL;
    }
    r->host->pid = pid;
    r->host->state = PLAT__HOST_STATE__HOST_STATE_READY;
    return m;
}

static Plat__HostBootMessage *hostboot_body(Plat__PlatformMessage **m)
{
    *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT);
    return *m ? (*m)->host_boot : NULL;
}

Plat__PlatformMessage *plat_msg_hostboot_register(const char *name, const char *version,
                                                  const plat_runtime_t *runtimes,
                                                  size_t n_runtimes)
{
    Plat__PlatformMessage *m;
    Plat__HostBootMessage *hb = hostboot_body(&m);
    if (!hb)
        return NULL;
    Plat__ReportMessage *r = NEW(Plat__ReportMessage, plat__report_message__init);
    if (!r) {
        plat_envelope_free(&m);
        return NULL;
    }
    hb->body_case = PLAT__HOST_BOOT_MESSAGE__BODY_REPORT;
    hb->report = r;
    r->kind = PLAT__REPORT_MESSAGE__KIND__REGISTER;
    if (!(r->name = plat_msg_strdup(name)) || !(r->version = plat_msg_strdup(version))) {
        plat_envelope_free(&m);
        return NULL;
    }
    if (n_runtimes) {
        r->runtimes = calloc(n_runtimes, sizeof *r->runtimes);
        if (!r->runtimes) {
            plat_envelope_free(&m);
            return NULL;
        }
        for (size_t i = 0; i < n_runtimes; i++) {
            Plat__Runtime *rt = NEW(Plat__Runtime, plat__runtime__init);
            if (!rt) {
                plat_envelope_free(&m);
                return NULL;
            }
            r->runtimes[r->n_runtimes++] = rt;
            if (!(rt->language = plat_msg_strdup(runtimes[i].language)) ||
                !(rt->version = plat_msg_strdup(runtimes[i].version))) {
                plat_envelope_free(&m);
                return NULL;
            }
        }
    }
    return m;
}

Plat__PlatformMessage *plat_msg_hostboot_heartbeat(const char *name, uint32_t host_count,
                                                   uint64_t uptime_ms)
{
    Plat__PlatformMessage *m;
    Plat__HostBootMessage *hb = hostboot_body(&m);
    if (!hb)
        return NULL;
    Plat__HeartbeatMessage *h = NEW(Plat__HeartbeatMessage, plat__heartbeat_message__init);
    if (!h) {
        plat_envelope_free(&m);
        return NULL;
    }
    hb->body_case = PLAT__HOST_BOOT_MESSAGE__BODY_HEARTBEAT;
    hb->heartbeat = h;
    h->host_count = host_count;
    h->uptime_ms = uptime_ms;
    if (!(h->name = plat_msg_strdup(name))) {
        plat_envelope_free(&m);
        return NULL;
    }
    return m;
}

Plat__PlatformMessage *plat_msg_hostboot_host_exited(const char *name, const char *host_id,
                                                     int32_t pid, int32_t exit_status,
                                                     int32_t term_signal)
{
    Plat__PlatformMessage *m;
    Plat__HostBootMessage *hb = hostboot_body(&m);
    if (!hb)
        return NULL;
    Plat__ReportMessage *r = NEW(Plat__ReportMessage, plat__report_message__init);
    if (!r) {
        plat_envelope_free(&m);
        return NULL;
    }
    hb->body_case = PLAT__HOST_BOOT_MESSAGE__BODY_REPORT;
    hb->report = r;
    r->kind = PLAT__REPORT_MESSAGE__KIND__HOST_EXITED;
    if (!(r->name = plat_msg_strdup(name)) || !(r->exit = NEW(Plat__HostExit, plat__host_exit__init)) ||
        !(r->exit->host_id = plat_msg_strdup(host_id))) {
        plat_envelope_free(&m);
        return NULL;
    }
    r->exit->pid = pid;
    r->exit->exit_status = exit_status;
    r->exit->term_signal = term_signal;
    return m;
}

/* A Host {id, pid, descriptor{id, language, version, mode}}; NULL on OOM. */
static Plat__Host *new_host(const char *host_id, int32_t pid, const char *language,
                            const char *version, const char *mode)
{
    Plat__Host *h = NEW(Plat__Host, plat__host__init);
    if (!h)
        return NULL;
    h->pid = pid;
    if (!(h->id = plat_msg_strdup(host_id)) ||
        !(h->descriptor = NEW(Plat__HostDescriptor, plat__host_descriptor__init)) ||
        !(h->descriptor->id = plat_msg_strdup(host_id)) ||
        !(h->descriptor->language = plat_msg_strdup(language)) ||
        !(h->descriptor->version = plat_msg_strdup(version)) ||
        !(h->descriptor->mode = plat_msg_strdup(mode))) {
        protobuf_c_message_free_unpacked(&h->base, NULL);
        return NULL;
    }
    return h;
}

int plat_msg_report_add_host(Plat__PlatformMessage *m, const char *host_id, int32_t pid,
                             const char *language, const char *version, const char *mode)
{
    if (!m || m->channel_case != PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT ||
        m->host_boot->body_case != PLAT__HOST_BOOT_MESSAGE__BODY_REPORT)
        return -EINVAL;
    Plat__ReportMessage *r = m->host_boot->report;
    Plat__Host **hosts = realloc(r->hosts, (r->n_hosts + 1) * sizeof *hosts);
    if (!hosts)
        return -ENOMEM;
    r->hosts = hosts;
    Plat__Host *h = new_host(host_id, pid, language, version, mode);
    if (!h)
        return -ENOMEM;
    h->state = PLAT__HOST_STATE__HOST_STATE_READY;
    r->hosts[r->n_hosts++] = h;
    return 0;
}

Plat__PlatformMessage *plat_msg_host_lifecycle_request(Plat__HostLifeCycleRequestMessage__Action a,
                                                       const char *host_id, const char *language,
                                                       const char *version, const char *mode,
                                                       int32_t pid)
{
    Plat__PlatformMessage *m;
    Plat__HostBootMessage *hb = hostboot_body(&m);
    if (!hb)
        return NULL;
    Plat__HostLifeCycleRequestMessage *r =
        NEW(Plat__HostLifeCycleRequestMessage, plat__host_life_cycle_request_message__init);
    if (!r) {
        plat_envelope_free(&m);
        return NULL;
    }
    hb->body_case = PLAT__HOST_BOOT_MESSAGE__BODY_HOST_LIFE_CYCLE_REQUEST;
    hb->host_life_cycle_request = r;
    r->action = a;
    r->host_pid = pid;
    Plat__Host *h = new_host(host_id, pid, language, version, mode);
    if (!h) {
        plat_envelope_free(&m);
        return NULL;
    }
    /* The request carries the descriptor; the Host wrapper is only used to
     * build it, so keep the descriptor and drop the rest. */
    r->host = h->descriptor;
    h->descriptor = NULL;
    protobuf_c_message_free_unpacked(&h->base, NULL);
    return m;
}

Plat__PlatformMessage *plat_msg_host_lifecycle_response(const char *host_id, int32_t pid,
                                                        Plat__HostState state,
                                                        const char *hostboot, int code,
                                                        const char *message, const char *detail)
{
    Plat__PlatformMessage *m;
    Plat__HostBootMessage *hb = hostboot_body(&m);
    if (!hb)
        return NULL;
    Plat__HostLifeCycleResponseMessage *r =
        NEW(Plat__HostLifeCycleResponseMessage, plat__host_life_cycle_response_message__init);
    if (!r) {
        plat_envelope_free(&m);
        return NULL;
    }
    hb->body_case = PLAT__HOST_BOOT_MESSAGE__BODY_HOST_LIFE_CYCLE_RESPONSE;
    hb->host_life_cycle_response = r;
    if (!(r->host = NEW(Plat__Host, plat__host__init)) || !(r->host->id = plat_msg_strdup(host_id)) ||
        !(r->host->hostboot = plat_msg_strdup(hostboot))) {
        plat_envelope_free(&m);
        return NULL;
    }
    r->host->pid = pid;
    r->host->state = state;
    if (code) {
        if (!(r->error = NEW(Plat__ErrorMessage, plat__error_message__init)) ||
            !(r->error->message = plat_msg_strdup(message)) ||
            !(r->error->detail = plat_msg_strdup(detail))) {
            plat_envelope_free(&m);
            return NULL;
        }
        r->error->code = code;
    }
    return m;
}

int plat_msg_set_error(Plat__PlatformMessage *m, int code, const char *message,
                       const char *detail)
{
    if (!m || !m->header)
        return -EINVAL;
    Plat__ErrorMessage *e = NEW(Plat__ErrorMessage, plat__error_message__init);
    if (!e)
        return -ENOMEM;
    e->code = code;
    if (!(e->message = plat_msg_strdup(message)) || !(e->detail = plat_msg_strdup(detail))) {
        protobuf_c_message_free_unpacked(&e->base, NULL);
        return -ENOMEM;
    }
    if (m->header->error)
        protobuf_c_message_free_unpacked(&m->header->error->base, NULL);
    m->header->error = e;
    return 0;
}

/* ---- Plugin channel ---------------------------------------------------- */

static Plat__PluginMessage *plugin_body(Plat__PlatformMessage **m)
{
    *m = plat_msg_new(PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN);
    return *m ? (*m)->plugin : NULL;
}

/* A malloc'd copy of `len` bytes into a bytes field (NULL/0 stays empty).
 * 0 or -ENOMEM. */
static int set_bytes(ProtobufCBinaryData *bd, const uint8_t *data, size_t len)
{
    bd->data = NULL;
    bd->len = 0;
    if (!data || !len)
        return 0;
    bd->data = malloc(len);
    if (!bd->data)
        return -ENOMEM;
    memcpy(bd->data, data, len);
    bd->len = len;
    return 0;
}

/* Append a header {name, value} to a repeated HttpHeader field. */
static int add_header(Plat__HttpHeader ***headers, size_t *n, const char *name, const char *value)
{
    Plat__HttpHeader **hs = realloc(*headers, (*n + 1) * sizeof *hs);
    if (!hs)
        return -ENOMEM;
    *headers = hs;
    Plat__HttpHeader *h = NEW(Plat__HttpHeader, plat__http_header__init);
    if (!h)
        return -ENOMEM;
    if (!(h->name = plat_msg_strdup(name)) || !(h->value = plat_msg_strdup(value))) {
        protobuf_c_message_free_unpacked(&h->base, NULL);
        return -ENOMEM;
    }
    hs[(*n)++] = h;
    return 0;
}

static Plat__ErrorMessage *new_error(int code, const char *message, const char *detail)
{
    Plat__ErrorMessage *e = NEW(Plat__ErrorMessage, plat__error_message__init);
    if (!e)
        return NULL;
    e->code = code;
    if (!(e->message = plat_msg_strdup(message)) || !(e->detail = plat_msg_strdup(detail))) {
        protobuf_c_message_free_unpacked(&e->base, NULL);
        return NULL;
    }
    return e;
}

Plat__PlatformMessage *plat_msg_plugin_action(const char *instance, Plat__PluginAction action,
                                              const char *plugin, const char *version,
                                              const char *package_dir, const char *entry,
                                              const char *config_json, const char *from_version,
                                              const char *org, uint32_t timeout_ms)
{
    Plat__PlatformMessage *m;
    Plat__PluginMessage *pm = plugin_body(&m);
    if (!pm)
        return NULL;
    Plat__PluginActionRequest *r = NEW(Plat__PluginActionRequest, plat__plugin_action_request__init);
    if (!r) {
        plat_envelope_free(&m);
        return NULL;
    }
    pm->body_case = PLAT__PLUGIN_MESSAGE__BODY_ACTION;
    pm->action = r;
    r->action = action;
    r->timeout_ms = timeout_ms;
    if (!(r->instance = plat_msg_strdup(instance)) || !(r->plugin = plat_msg_strdup(plugin)) ||
        !(r->version = plat_msg_strdup(version)) ||
        !(r->package_dir = plat_msg_strdup(package_dir)) || !(r->entry = plat_msg_strdup(entry)) ||
        !(r->config_json = plat_msg_strdup(config_json)) ||
        !(r->from_version = plat_msg_strdup(from_version)) || !(r->org = plat_msg_strdup(org))) {
        plat_envelope_free(&m);
        return NULL;
    }
    return m;
}

Plat__PlatformMessage *plat_msg_plugin_event(const char *instance, const char *method,
                                             const char *path,
                                             const Plat__HttpHeader *const *headers,
                                             size_t n_headers, const uint8_t *body,
                                             size_t body_len)
{
    Plat__PlatformMessage *m;
    Plat__PluginMessage *pm = plugin_body(&m);
    if (!pm)
        return NULL;
    Plat__PluginEvent *e = NEW(Plat__PluginEvent, plat__plugin_event__init);
    if (!e) {
        plat_envelope_free(&m);
        return NULL;
    }
    pm->body_case = PLAT__PLUGIN_MESSAGE__BODY_EVENT;
    pm->event = e;
    if (!(e->instance = plat_msg_strdup(instance)) || !(e->method = plat_msg_strdup(method)) ||
        !(e->path = plat_msg_strdup(path)) || set_bytes(&e->body, body, body_len) < 0) {
        plat_envelope_free(&m);
        return NULL;
    }
    for (size_t i = 0; headers && i < n_headers; i++) {
        if (!headers[i])
            continue;
        if (add_header(&e->headers, &e->n_headers, headers[i]->name, headers[i]->value) < 0) {
            plat_envelope_free(&m);
            return NULL;
        }
    }
    return m;
}

Plat__PlatformMessage *plat_msg_plugin_action_result(int code, const char *message,
                                                     const char *detail)
{
    Plat__PlatformMessage *m;
    Plat__PluginMessage *pm = plugin_body(&m);
    if (!pm)
        return NULL;
    Plat__PluginActionResult *r = NEW(Plat__PluginActionResult, plat__plugin_action_result__init);
    if (!r) {
        plat_envelope_free(&m);
        return NULL;
    }
    pm->body_case = PLAT__PLUGIN_MESSAGE__BODY_ACTION_RESULT;
    pm->action_result = r;
    if (code && !(r->error = new_error(code, message, detail))) {
        plat_envelope_free(&m);
        return NULL;
    }
    return m;
}

Plat__PlatformMessage *plat_msg_plugin_response(uint32_t status, const char *content_type,
                                                const uint8_t *body, size_t len, int code,
                                                const char *message)
{
    Plat__PlatformMessage *m;
    Plat__PluginMessage *pm = plugin_body(&m);
    if (!pm)
        return NULL;
    Plat__PluginEventResponse *r =
        NEW(Plat__PluginEventResponse, plat__plugin_event_response__init);
    if (!r) {
        plat_envelope_free(&m);
        return NULL;
    }
    pm->body_case = PLAT__PLUGIN_MESSAGE__BODY_RESPONSE;
    pm->response = r;
    r->status = status;
    if (set_bytes(&r->body, body, len) < 0 ||
        (content_type && content_type[0] &&
         add_header(&r->headers, &r->n_headers, "Content-Type", content_type) < 0) ||
        (code && !(r->error = new_error(code, message, NULL)))) {
        plat_envelope_free(&m);
        return NULL;
    }
    return m;
}

int plat_msg_plugin_response_add_header(Plat__PlatformMessage *m, const char *name,
                                        const char *value)
{
    if (!m || m->channel_case != PLAT__PLATFORM_MESSAGE__CHANNEL_PLUGIN ||
        m->plugin->body_case != PLAT__PLUGIN_MESSAGE__BODY_RESPONSE || !name)
        return -EINVAL;
    Plat__PluginEventResponse *r = m->plugin->response;
    return add_header(&r->headers, &r->n_headers, name, value);
}
