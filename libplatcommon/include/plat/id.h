/* Endpoint ids, UUIDs, boot ids, clocks. */
#ifndef PLAT_ID_H
#define PLAT_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLAT_ID_MAX 128          /* longest endpoint id, without the NUL */
#define PLAT_UUID_LEN 36         /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
#define PLAT_PLATFORM_ID "platform"
#define PLAT_HOSTBOOT_PREFIX "hostboot-"
#define PLAT_HOST_PREFIX "host-"

typedef enum {
    PLAT_ID_INVALID = 0,
    PLAT_ID_PLATFORM, /* "platform" */
    PLAT_ID_HOSTBOOT, /* "hostboot-<name>", name = [a-z0-9._-]{1,64}, starting alnum */
    PLAT_ID_HOST,     /* "host-<uuid>", lowercase canonical UUID */
} plat_id_kind_t;

/* Classify an endpoint id; anything malformed (NULL, empty, too long, bad
 * characters) is PLAT_ID_INVALID. */
plat_id_kind_t plat_id_kind(const char *id);

/* True when `name` is a valid hostboot name (the part after "hostboot-"). */
bool plat_hostboot_name_valid(const char *name);

/* True when `s` is a lowercase canonical UUID. */
bool plat_uuid_valid(const char *s);

/* Write a random (v4) UUID + NUL into out[PLAT_UUID_LEN + 1]. 0 or -errno. */
int plat_uuid_new(char out[PLAT_UUID_LEN + 1]);

/* Milliseconds of CLOCK_REALTIME / CLOCK_MONOTONIC. */
uint64_t plat_now_ms(void);
uint64_t plat_mono_ms(void);

#endif
