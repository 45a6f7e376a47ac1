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

/* ZeroMQ routing ids ("routes"). A DEALER announces "<id>/<token>": its
 * endpoint id, '/', and PLAT_ROUTE_TOKEN_LEN lowercase hex characters of a
 * fresh 128-bit random token. The ROUTER binds the route to the key that
 * authenticated the connection (bus.h, receive path 2) and sends to the
 * route, never to the bare id: the token keeps another key from announcing
 * the same routing id and taking the route over (ROUTER_HANDOVER).
 * Every valid endpoint id (at most 73 characters) leaves room for the token
 * within PLAT_ID_MAX, so a route fits the same buffers as an id. */
#define PLAT_ROUTE_SEP '/'
#define PLAT_ROUTE_TOKEN_LEN 32

/* "<id>/<token>" into out[PLAT_ID_MAX + 1]. 0, -EINVAL (invalid id),
 * -ENAMETOOLONG, or -errno from getrandom. */
int plat_route_new(const char *id, char out[PLAT_ID_MAX + 1]);

/* Split a routing id: its endpoint id part (before PLAT_ROUTE_SEP, or the
 * whole of it) into id_out and whether a well-formed token follows.
 * -EINVAL when the id part is empty or too long, or when something other
 * than a token follows the separator. */
int plat_route_parse(const char *route, char id_out[PLAT_ID_MAX + 1], bool *has_token);

/* Fill buf with len bytes from getrandom(2). 0 or -errno. */
int plat_random_bytes(void *buf, size_t len);

/* Milliseconds of CLOCK_REALTIME / CLOCK_MONOTONIC. */
uint64_t plat_now_ms(void);
uint64_t plat_mono_ms(void);

#endif
