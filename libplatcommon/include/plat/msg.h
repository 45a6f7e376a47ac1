/* Builders for PlatformMessage: one place per channel body, so call sites
 * never fill protobuf-c structs by hand. Every builder returns a message
 * whose every part is malloc'd (free it with plat_envelope_free), with the
 * header allocated (source/destination endpoints allocated) and left for
 * the bus to fill. String fields not given a value — the header ids among
 * them — hold protobuf-c's static empty default (protobuf_c_empty_string),
 * which must be replaced, never freed. NULL on allocation failure. */
#ifndef PLAT_MSG_H
#define PLAT_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "platform.pb-c.h"

typedef struct {
    const char *language;
    const char *version;
} plat_runtime_t;

/* An empty message of channel `ch` with the channel's message allocated and
 * its body unset (body_case NOT_SET). */
Plat__PlatformMessage *plat_msg_new(Plat__PlatformMessage__ChannelCase ch);

/* An empty message with no channel at all (for pure error replies). */
Plat__PlatformMessage *plat_msg_new_empty(void);

/* Control */
Plat__PlatformMessage *plat_msg_ping(const char *boot_id);
Plat__PlatformMessage *plat_msg_pong(Plat__HostState state);
Plat__PlatformMessage *plat_msg_register_ack(const char *boot_id, uint32_t heartbeat_interval_ms,
                                             uint32_t heartbeat_miss);
/* The host's own ready report. `language`, `version`, `mode` may be NULL. */
Plat__PlatformMessage *plat_msg_host_ready(const char *host_id, int32_t pid, const char *language,
                                           const char *version, const char *mode,
                                           const char *build_version, int dev);

/* Control.shutdown: the platform tells a host to exit. */
Plat__PlatformMessage *plat_msg_shutdown(const char *reason);

/* HostBoot */
Plat__PlatformMessage *plat_msg_hostboot_register(const char *name, const char *version,
                                                  const plat_runtime_t *runtimes,
                                                  size_t n_runtimes);
Plat__PlatformMessage *plat_msg_hostboot_heartbeat(const char *name, uint32_t host_count,
                                                   uint64_t uptime_ms);

/* HostBoot.report HOST_EXITED for one host (an EVENT). */
Plat__PlatformMessage *plat_msg_hostboot_host_exited(const char *name, const char *host_id,
                                                     int32_t pid, int32_t exit_status,
                                                     int32_t term_signal);

/* Add a host this hostboot owns to a REGISTER report built by
 * plat_msg_hostboot_register. 0 or -ENOMEM / -EINVAL. */
int plat_msg_report_add_host(Plat__PlatformMessage *report, const char *host_id, int32_t pid,
                             const char *language, const char *version, const char *mode);

/* HostBoot.host_life_cycle_request: START a host described by (host_id,
 * language, version, mode), or DELETE host `host_id` (pid may be 0). */
Plat__PlatformMessage *plat_msg_host_lifecycle_request(Plat__HostLifeCycleRequestMessage__Action a,
                                                       const char *host_id, const char *language,
                                                       const char *version, const char *mode,
                                                       int32_t pid);

/* HostBoot.host_life_cycle_response: the host (id, pid, state, owning
 * hostboot) on success, or an error (code < 0, message, detail) — then
 * host carries only the id. */
Plat__PlatformMessage *plat_msg_host_lifecycle_response(const char *host_id, int32_t pid,
                                                        Plat__HostState state,
                                                        const char *hostboot, int code,
                                                        const char *message, const char *detail);

/* Plugin */
/* Plugin.action REQUEST (platform -> host): run one lifecycle hook of one
 * instance. Every string may be NULL (sent as ""). */
Plat__PlatformMessage *plat_msg_plugin_action(const char *instance, Plat__PluginAction action,
                                              const char *plugin, const char *version,
                                              const char *package_dir, const char *entry,
                                              const char *config_json, const char *from_version,
                                              const char *org, uint32_t timeout_ms);

/* Plugin.event REQUEST (platform -> host). `headers` may be NULL (NULL
 * entries are skipped); the headers and `body` are copied. */
Plat__PlatformMessage *plat_msg_plugin_event(const char *instance, const char *method,
                                             const char *path,
                                             const Plat__HttpHeader *const *headers,
                                             size_t n_headers, const uint8_t *body,
                                             size_t body_len);

/* Plugin.action_result REPLY (host -> platform): code 0 = the hook
 * succeeded (no error), else error{code, message, detail}. */
Plat__PlatformMessage *plat_msg_plugin_action_result(int code, const char *message,
                                                     const char *detail);

/* Plugin.response REPLY (host -> platform): status, a Content-Type header
 * when `content_type` is non-empty, a copy of `body`, and error{code,
 * message} when code != 0. */
Plat__PlatformMessage *plat_msg_plugin_response(uint32_t status, const char *content_type,
                                                const uint8_t *body, size_t len, int code,
                                                const char *message);

/* Append a header to a message built by plat_msg_plugin_response.
 * 0, -EINVAL (not a Plugin.response, NULL name) or -ENOMEM. */
int plat_msg_plugin_response_add_header(Plat__PlatformMessage *m, const char *name,
                                        const char *value);

/* Set header.error on `m` (replacing any). `message`/`detail` may be NULL.
 * Returns 0 or -ENOMEM. */
int plat_msg_set_error(Plat__PlatformMessage *m, int code, const char *message,
                       const char *detail);

/* strdup that maps NULL to "" — for filling string fields. NULL on OOM. */
char *plat_msg_strdup(const char *s);

#endif
