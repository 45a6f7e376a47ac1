/* Endpoint ids, UUIDs and clocks. */
#include "plat/id.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool plat_hostboot_name_valid(const char *name)
{
    if (!name || !is_lower_alnum(name[0]))
        return false;
    size_t n = strlen(name);
    if (n > 64)
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_lower_alnum(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
            return false;
    return true;
}

bool plat_uuid_valid(const char *s)
{
    if (!s || strlen(s) != PLAT_UUID_LEN)
        return false;
    for (size_t i = 0; i < PLAT_UUID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

plat_id_kind_t plat_id_kind(const char *id)
{
    if (!id || !*id || strlen(id) > PLAT_ID_MAX)
        return PLAT_ID_INVALID;
    if (strcmp(id, PLAT_PLATFORM_ID) == 0)
        return PLAT_ID_PLATFORM;
    if (strncmp(id, PLAT_HOSTBOOT_PREFIX, strlen(PLAT_HOSTBOOT_PREFIX)) == 0)
        return plat_hostboot_name_valid(id + strlen(PLAT_HOSTBOOT_PREFIX)) ? PLAT_ID_HOSTBOOT
                                                                            : PLAT_ID_INVALID;
    if (strncmp(id, PLAT_HOST_PREFIX, strlen(PLAT_HOST_PREFIX)) == 0)
        return plat_uuid_valid(id + strlen(PLAT_HOST_PREFIX)) ? PLAT_ID_HOST : PLAT_ID_INVALID;
    return PLAT_ID_INVALID;
}

int plat_random_bytes(void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom((unsigned char *)buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    return 0;
}

int plat_route_new(const char *id, char out[PLAT_ID_MAX + 1])
{
    out[0] = 0;
    if (plat_id_kind(id) == PLAT_ID_INVALID)
        return -EINVAL;
    size_t n = strlen(id);
    if (n + 1 + PLAT_ROUTE_TOKEN_LEN > PLAT_ID_MAX)
        return -ENAMETOOLONG;
    unsigned char t[PLAT_ROUTE_TOKEN_LEN / 2];
    int rc = plat_random_bytes(t, sizeof t);
    if (rc < 0)
        return rc;
    static const char hex[] = "0123456789abcdef";
    memcpy(out, id, n);
    out[n++] = PLAT_ROUTE_SEP;
    for (size_t i = 0; i < sizeof t; i++) {
        out[n++] = hex[t[i] >> 4];
        out[n++] = hex[t[i] & 15];
    }
    out[n] = 0;
    explicit_bzero(t, sizeof t);
    return 0;
}

int plat_route_parse(const char *route, char id_out[PLAT_ID_MAX + 1], bool *has_token)
{
    id_out[0] = 0;
    *has_token = false;
    const char *sep = route ? strchr(route, PLAT_ROUTE_SEP) : NULL;
    size_t n = sep ? (size_t)(sep - route) : (route ? strlen(route) : 0);
    if (n == 0 || n > PLAT_ID_MAX)
        return -EINVAL;
    if (sep) {
        const char *t = sep + 1;
        if (strlen(t) != PLAT_ROUTE_TOKEN_LEN)
            return -EINVAL;
        for (size_t i = 0; i < PLAT_ROUTE_TOKEN_LEN; i++)
            if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
                return -EINVAL;
        *has_token = true;
    }
    memcpy(id_out, route, n);
    id_out[n] = 0;
    return 0;
}

int plat_uuid_new(char out[PLAT_UUID_LEN + 1])
{
    unsigned char b[16];
    int rc = plat_random_bytes(b, sizeof b);
    if (rc < 0)
        return rc;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, PLAT_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return 0;
}

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t plat_now_ms(void) { return clock_ms(CLOCK_REALTIME); }
uint64_t plat_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
