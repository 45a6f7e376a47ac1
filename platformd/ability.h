/* The Ability channel on the platform side (proto/ability.proto,
 * docs/tasks.md):
 *   host -> platform  AbilityRegister / AbilityUnregister (REQUEST),
 *                     answered AbilityResult: TASK registrations go to the
 *                     scheduler (tasks.h), SERVICE ones to websvc.h; both
 *                     committed to the store before the reply;
 *   platform -> host  AbilityTrigger (REQUEST) when a task is due, sent by
 *                     the lifecycle (pd_lifecycle_trigger), answered
 *                     AbilityResult by the plugin's task hook.
 * A host may only speak for instances attached to it, and a registration
 * must be declared by the instance's manifest `abilities` (a task ability
 * with the task's name or "*"; a service ability with the port or "*";
 * never a port < 1024 or platformd's HTTP or bus port; docs/packages.md):
 * -EACCES otherwise, logged with instance=<uuid> and counted in
 * ability_denied.
 *
 * The handler, module start/stop and pd_ability_forget_instance are
 * declared in platformd.h; this header holds the channel's message
 * builders (the one place that fills Ability protobuf structs). */
#ifndef PLATFORMD_ABILITY_H
#define PLATFORMD_ABILITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.pb-c.h"

/* AbilityTrigger{TASK} REQUEST body; free with plat_envelope_free. NULL on
 * allocation failure. */
Plat__PlatformMessage *pd_ability_msg_trigger(const char *instance, const char *name,
                                              int64_t scheduled_ms, bool missed);

/* AbilityResult REPLY body: code 0 = success (no error), else
 * error{code, message, detail}. */
Plat__PlatformMessage *pd_ability_msg_result(int code, const char *message, const char *detail);

/* The outcome carried by a reply to an Ability request: 0, or the error
 * code (header error first, then AbilityResult.error; -EPROTO when the
 * reply is something else) with `why` filled. */
int pd_ability_reply_error(const Plat__PlatformMessage *reply, char *why, size_t why_size);

#endif
