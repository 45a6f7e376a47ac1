/* Plugin packages: manifest validation and the immutable store (see
 * package.h and docs/packages.md). */
#include "package.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "plat/io.h"
#include "plat/log.h"
#include "plat/why.h"

#define LOG_COMP "package"
#define HTTP_PATTERNS_MAX 64
#define HTTP_PATTERN_MAX 260
#define ABILITIES_MAX 64
#define ABILITY_SPEC_MAX 256
#define DESCRIPTION_MAX 1024
#define COPY_BUF (64 * 1024)

/* ---------------------------------------------------------------------- */
/* SHA-256 (FIPS 180-4). Small and local: the digest only identifies package
 * content; no crypto library is among our dependencies. */

typedef struct {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    uint8_t buf[64];
    size_t n; /* bytes in buf */
} sha256_t;

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_init(sha256_t *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->len = 0;
    s->n = 0;
}

static void sha256_block(sha256_t *s, const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
    uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) + ((e & f) ^ (~e & g)) +
                      sha_k[i] + w[i];
        uint32_t t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
    s->h[5] += f;
    s->h[6] += g;
    s->h[7] += h;
}

static void sha256_update(sha256_t *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->len += len;
    if (s->n) {
        size_t take = 64 - s->n < len ? 64 - s->n : len;
        memcpy(s->buf + s->n, p, take);
        s->n += take;
        p += take;
        len -= take;
        if (s->n < 64)
            return;
        sha256_block(s, s->buf);
        s->n = 0;
    }
    for (; len >= 64; p += 64, len -= 64)
        sha256_block(s, p);
    memcpy(s->buf, p, len);
    s->n = len;
}

static void sha256_final_hex(sha256_t *s, char out[PD_SHA256_HEX_LEN + 1])
{
    uint64_t bits = s->len * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (s->n < 56 ? 56 : 120) - s->n;
    for (int i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(s, pad, padlen + 8);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) {
            uint8_t byte = (uint8_t)(s->h[i] >> (24 - 8 * j));
            out[8 * i + 2 * j] = hex[byte >> 4];
            out[8 * i + 2 * j + 1] = hex[byte & 15];
        }
    out[PD_SHA256_HEX_LEN] = '\0';
}

void pd_sha256_hex(const void *data, size_t len, char out[PD_SHA256_HEX_LEN + 1])
{
    sha256_t s;
    sha256_init(&s);
    sha256_update(&s, data, len);
    sha256_final_hex(&s, out);
}

/* ---------------------------------------------------------------------- */
/* Character classes and small syntaxes. */

static bool is_lower_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(int c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > PD_PKG_ID_MAX || !is_lower_alnum((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_lower_alnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return false;
    return true;
}

/* Every char of s in the class, length in [min, max]. */
static bool valid_chars(const char *s, size_t min, size_t max, bool upper, const char *extra)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (!(upper ? is_alnum(c) : is_lower_alnum(c)) && !strchr(extra, c))
            return false;
    }
    return true;
}

/* Digits with no leading zero (a lone "0" is fine). */
static bool numeric_ident(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_digit((unsigned char)s[i]))
            return false;
    return n == 1 || s[0] != '0';
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit((unsigned char)s[i]))
            return false;
    return true;
}

/* ---------------------------------------------------------------------- */
/* Semantic versions 2.0.0. */

typedef struct {
    const char *core[3];
    size_t core_len[3];
    const char *pre; /* after '-', NULL if none */
    size_t pre_len;
} semver_t;

/* Dot-separated non-empty [0-9A-Za-z-] identifiers; numeric ones without
 * leading zeros if `strict_numeric`. Returns the length consumed. */
static size_t ident_list(const char *s, bool strict_numeric, bool *ok)
{
    size_t i = 0;
    *ok = false;
    for (;;) {
        size_t start = i;
        while (is_alnum((unsigned char)s[i]) || s[i] == '-')
            i++;
        if (i == start)
            return i;
        if (strict_numeric && all_digits(s + start, i - start) &&
            !numeric_ident(s + start, i - start))
            return i;
        if (s[i] != '.')
            break;
        i++;
    }
    *ok = true;
    return i;
}

static bool semver_parse(const char *s, semver_t *v)
{
    if (!s || strlen(s) > PD_PKG_VERSION_MAX)
        return false;
    const char *p = s;
    for (int k = 0; k < 3; k++) {
        size_t n = 0;
        while (is_digit((unsigned char)p[n]))
            n++;
        if (!numeric_ident(p, n))
            return false;
        v->core[k] = p;
        v->core_len[k] = n;
        p += n;
        if (k < 2) {
            if (*p != '.')
                return false;
            p++;
        }
    }
    v->pre = NULL;
    v->pre_len = 0;
    bool ok;
    if (*p == '-') {
        p++;
        size_t n = ident_list(p, true, &ok);
        if (!ok)
            return false;
        v->pre = p;
        v->pre_len = n;
        p += n;
    }
    if (*p == '+') {
        p++;
        p += ident_list(p, false, &ok);
        if (!ok)
            return false;
    }
    return *p == '\0';
}

bool pd_semver_valid(const char *s)
{
    semver_t v;
    return semver_parse(s, &v);
}

/* Numeric identifiers without leading zeros: longer is bigger. */
static int cmp_numeric(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return an < bn ? -1 : 1;
    int c = memcmp(a, b, an);
    return (c > 0) - (c < 0);
}

static int cmp_prerelease(const char *a, size_t an, const char *b, size_t bn)
{
    size_t i = 0, j = 0;
    while (i < an && j < bn) {
        size_t ie = i, je = j;
        while (ie < an && a[ie] != '.')
            ie++;
        while (je < bn && b[je] != '.')
            je++;
        bool anum = all_digits(a + i, ie - i), bnum = all_digits(b + j, je - j);
        int c;
        if (anum && bnum) {
            c = cmp_numeric(a + i, ie - i, b + j, je - j);
        } else if (anum != bnum) {
            c = anum ? -1 : 1; /* numeric identifiers sort before alphanumeric ones */
        } else {
            size_t n = ie - i < je - j ? ie - i : je - j;
            c = memcmp(a + i, b + j, n);
            c = c ? (c > 0) - (c < 0) : (ie - i == je - j ? 0 : (ie - i < je - j ? -1 : 1));
        }
        if (c)
            return c;
        i = ie < an ? ie + 1 : ie;
        j = je < bn ? je + 1 : je;
    }
    /* A larger set of identifiers wins when all before are equal. */
    if (i < an)
        return 1;
    if (j < bn)
        return -1;
    return 0;
}

int pd_semver_compare(const char *a, const char *b, int *cmp)
{
    semver_t va, vb;
    if (!cmp || !semver_parse(a, &va) || !semver_parse(b, &vb))
        return -EINVAL;
    for (int k = 0; k < 3; k++) {
        int c = cmp_numeric(va.core[k], va.core_len[k], vb.core[k], vb.core_len[k]);
        if (c) {
            *cmp = c;
            return 0;
        }
    }
    if (!va.pre || !vb.pre) /* a release outranks its prereleases */
        *cmp = va.pre ? -1 : (vb.pre ? 1 : 0);
    else
        *cmp = cmp_prerelease(va.pre, va.pre_len, vb.pre, vb.pre_len);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* permissions.http patterns: "host:port", host a DNS name or "*.<name>",
 * port 1..65535 or "*". */

static bool valid_hostname(const char *s, size_t n)
{
    if (n < 1 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
                return false;
            label = 0;
        } else if (is_alnum((unsigned char)s[i]) || s[i] == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

static bool parse_port(const char *s, size_t n, unsigned *port)
{
    if (n < 1 || n > 5 || !numeric_ident(s, n) || s[0] == '0')
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    if (v < 1 || v > 65535)
        return false;
    *port = v;
    return true;
}

static bool valid_http_pattern(const char *s)
{
    size_t n = strlen(s);
    const char *colon = strrchr(s, ':');
    if (n > HTTP_PATTERN_MAX || !colon)
        return false;
    size_t hn = (size_t)(colon - s), pn = n - hn - 1;
    unsigned port;
    if (!(pn == 1 && colon[1] == '*') && !parse_port(colon + 1, pn, &port))
        return false;
    if (hn > 2 && s[0] == '*' && s[1] == '.')
        return valid_hostname(s + 2, hn - 2);
    return valid_hostname(s, hn);
}

bool pd_manifest_http_allowed(const pd_manifest_t *m, const char *host, unsigned port)
{
    if (!m || !host || port < 1 || port > 65535)
        return false;
    size_t hlen = strlen(host);
    if (!valid_hostname(host, hlen))
        return false;
    for (size_t i = 0; i < m->n_http; i++) {
        const char *pat = m->http[i];
        const char *colon = strrchr(pat, ':');
        if (!colon)
            continue;
        unsigned pport;
        if (strcmp(colon + 1, "*") != 0 &&
            (!parse_port(colon + 1, strlen(colon + 1), &pport) || pport != port))
            continue;
        size_t pn = (size_t)(colon - pat);
        if (pat[0] == '*') {
            /* "*.example.com": host must end in ".example.com" with a label before. */
            size_t sn = pn - 1; /* ".example.com" */
            if (hlen > sn && strncasecmp(host + hlen - sn, pat + 1, sn) == 0)
                return true;
        } else if (hlen == pn && strncasecmp(host, pat, pn) == 0) {
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------------- */
/* Manifest fields. Each validator gets the JSON value (never NULL) and
 * fills its part of the manifest; refusals go through bad(). */

static int bad(char *why, size_t size, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(char *why, size_t size, const char *path, const char *fmt, ...)
{
    if (why && size > 0) {
        char reason[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        snprintf(why, size, PD_MANIFEST_FILE ": %s: %s", path, reason);
    }
    return -EINVAL;
}

typedef int (*field_fn)(json_t *v, pd_manifest_t *m, const char *dir, char *why, size_t size);

static int dup_into(char **dst, const char *s)
{
    *dst = strdup(s);
    return *dst ? 0 : -ENOMEM;
}

static int f_id(json_t *v, pd_manifest_t *m, const char *dir, char *why, size_t size)
{
    if (!json_is_string(v))
        return bad(why, size, "id", "must be a string");
    if (!valid_id(json_string_value(v)))
        return bad(why, size, "id",
                   "not a valid id (1-64 of a-z 0-9 . _ -, starting with a-z or 0-9)");
    return dup_into(&m->id, json_string_value(v));
}

static int f_version(json_t *v, pd_manifest_t *m, const char *dir, char *why, size_t size)
{
    if (!json_is_string(v))
        return bad(why, size, "version", "must be a string");
    const char *s = json_string_value(v);
    if (strlen(s) > PD_PKG_VERSION_MAX)
        return bad(why, size, "version", "longer than %d characters", PD_PKG_VERSION_MAX);
    if (!pd_semver_valid(s))
        return bad(why, size, "version", "not a semantic version (MAJOR.MINOR.PATCH)");
    return dup_into(&m->version, s);
}

static int f_language(json_t *v, pd_manifest_t *m, const char *dir, char *why, size_t size)
{
    if (!json_is_string(v))
        return bad(why, size, "language", "must be a string");
    if (!valid_chars(json_string_value(v), 1, 32, false, "_"))
        return bad(why, size, "language", "not a valid language (1-32 of a-z 0-9 _)");
    return dup_into(&m->language, json_string_value(v));
}

static int f_runtime_version(json_t *v, pd_manifest_t *m, const char *dir, char *why, size_t size)
{
    if (!json_is_string(v))
        return bad(why, size, "runtime_version", "must be a string");
    if (!valid_chars(json_string_value(v), 1, 32, true, "._-"))
        return bad(why, size, "runtime_version",
                   "not a valid runtime version (1-32 of A-Z a-z 0-9 . _ -)");
    return dup_into(&m->runtime_version, json_string_value(v));
}

/* The entry path, syntactically, then on disk: after resolving symlinks it
 * must be a regular file under the package's own resolved directory. */
static int f_entry(json_t *v, pd_manifest_t *m, const char *dir, char *why, size_t size)
{
    if (!json_is_string(v))
        return bad(why, size, "entry", "must be a string");
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    if (n == 0)
        return bad(why, size, "entry", "must not be empty");
    if (n > PD_PKG_ENTRY_MAX)
        return bad(why, size, "entry", "longer than %d characters", PD_PKG_ENTRY_MAX);
    if (s[0] == '/')
        return bad(why, size, "entry", "must be a relative path inside the package, not absolute");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\')
            return bad(why, size, "entry", "must not contain a backslash");
        if (c < 0x20 || c == 0x7f)
            return bad(why, size, "entry", "must not contain control characters");
    }
    for (const char *seg = s;;) {
        const char *end = strchr(seg, '/');
        size_t sn = end ? (size_t)(end - seg) : strlen(seg);
        if (sn == 0)
            return bad(why, size, "entry", "empty path segment");
        if (sn == 2 && seg[0] == '.' && seg[1] == '.')
            return bad(why, size, "entry", "must not contain \"..\" (escapes the package)");
        if (sn == 1 && seg[0] == '.')
            return bad(why, size, "entry", "must not contain \".\" segments");
        if (!end)
            break;
        seg = end + 1;
    }

    char full[PATH_MAX];
    if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, s) >= sizeof full)
        return bad(why, size, "entry", "path too long");
    char *root = realpath(dir, NULL);
    if (!root)
        return plat_why(why, size, -errno, "package directory: %s", strerror(errno));
    int rc = 0;
    char *res = realpath(full, NULL);
    struct stat st;
    if (!res) {
        rc = errno == ENOENT || errno == ENOTDIR
                 ? bad(why, size, "entry", "no such file in the package: %s", s)
                 : bad(why, size, "entry", "cannot resolve %s: %s", s, strerror(errno));
    } else {
        size_t rn = strlen(root);
        bool inside = strcmp(root, "/") == 0 || (strncmp(res, root, rn) == 0 && res[rn] == '/');
        if (!inside)
            rc = bad(why, size, "entry", "resolves outside the package (symbolic link): %s", s);
        else if (stat(res, &st) != 0 || !S_ISREG(st.st_mode))
            rc = bad(why, size, "entry", "not a regular file: %s", s);
        else
            rc = dup_into(&m->entry, s);
    }
    free(res);
    free(root);
    return rc;
}

static int f_host_mode(json_t *v, pd_manifest_t *m, const char *dir, char *why, size_t size)
{
    static const pd_mode_t modes[] = {PD_MODE_HIGH_PERFORMANCE, PD_MODE_POWER_SAVE, PD_MODE_DEV};
    const char *s = json_string_value(v);
    for (size_t i = 0; s && i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(s, pd_mode_name(modes[i])) == 0) {
            m->host_mode = modes[i];
            return 0;
        }
    return bad(why, size, "host_mode",
               "must be one of \"highPerformance\", \"powerSave\", \"dev\"");
}

static int f_permissions(json_t *v, pd_manifest_t *m, const char *dir, char *why, size_t size)
{
    if (!json_is_object(v))
        return bad(why, size, "permissions", "must be an object");
    const char *key;
    json_t *val;
    char path[128];
    json_object_foreach(v, key, val)
    {
        if (strcmp(key, "files") == 0 || strcmp(key, "db") == 0) {
            if (!json_is_boolean(val)) {
                snprintf(path, sizeof path, "permissions.%s", key);
                return bad(why, size, path, "must be true or false");
            }
            *(key[0] == 'f' ? &m->files : &m->db) = json_is_true(val);
        } else if (strcmp(key, "http") == 0) {
            size_t n = json_array_size(val);
            if (!json_is_array(val))
                return bad(why, size, "permissions.http",
                           "must be an array of \"host:port\" strings");
            if (n > HTTP_PATTERNS_MAX)
                return bad(why, size, "permissions.http", "more than %d patterns",
                           HTTP_PATTERNS_MAX);
            if (n && !(m->http = calloc(n, sizeof *m->http)))
                return -ENOMEM;
            for (size_t i = 0; i < n; i++) {
                const char *s = json_string_value(json_array_get(val, i));
                if (!s || !valid_http_pattern(s)) {
                    snprintf(path, sizeof path, "permissions.http[%zu]", i);
                    return bad(why, size, path,
                               "not a \"host:port\" pattern (host a DNS name or "
                               "\"*.domain\", port 1-65535 or \"*\")");
                }
                if (dup_into(&m->http[i], s))
                    return -ENOMEM;
                m->n_http = i + 1;
            }
        } else {
            snprintf(path, sizeof path, "permissions.%.64s", key);
            return bad(why, size, path, "unknown key (known: http, files, db)");
        }
    }
    return 0;
}

/* Five whitespace-separated fields of [0-9*,/-]; the scheduler checks ranges. */
static bool valid_cron(const char *s)
{
    int fields = 0;
    for (const char *p = s; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        fields++;
        for (; *p && *p != ' ' && *p != '\t'; p++)
            if (!is_digit((unsigned char)*p) && !strchr("*,/-", *p))
                return false;
    }
    return fields == 5;
}

static int f_ability(json_t *a, size_t idx, pd_ability_t *ab, char *why, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "abilities[%zu]", idx);
    if (!json_is_object(a))
        return bad(why, size, path, "must be an object with kind, name and spec");
    const char *key;
    json_t *val;
    json_object_foreach(a, key, val)
    {
        if (strcmp(key, "kind") && strcmp(key, "name") && strcmp(key, "spec")) {
            snprintf(path, sizeof path, "abilities[%zu].%.32s", idx, key);
            return bad(why, size, path, "unknown key (known: kind, name, spec)");
        }
    }
    static const char *const keys[] = {"kind", "name", "spec"};
    for (size_t k = 0; k < 3; k++)
        if (!json_object_get(a, keys[k])) {
            snprintf(path, sizeof path, "abilities[%zu].%s", idx, keys[k]);
            return bad(why, size, path, "required");
        }

    const char *kind = json_string_value(json_object_get(a, "kind"));
    snprintf(path, sizeof path, "abilities[%zu].kind", idx);
    if (kind && strcmp(kind, "task") == 0)
        ab->kind = PD_ABILITY_TASK;
    else if (kind && strcmp(kind, "service") == 0)
        ab->kind = PD_ABILITY_SERVICE;
    else
        return bad(why, size, path, "must be \"task\" or \"service\"");

    const char *name = json_string_value(json_object_get(a, "name"));
    snprintf(path, sizeof path, "abilities[%zu].name", idx);
    /* "*" (tasks only): any task name may be registered. */
    bool any_name = ab->kind == PD_ABILITY_TASK && name && strcmp(name, "*") == 0;
    if (!name || (!any_name && !valid_chars(name, 1, 64, false, "_-")))
        return bad(why, size, path,
                   "not a valid name (1-64 of a-z 0-9 _ -, or \"*\" for a task: any name)");

    const char *spec = json_string_value(json_object_get(a, "spec"));
    snprintf(path, sizeof path, "abilities[%zu].spec", idx);
    if (!spec)
        return bad(why, size, path, "must be a string");
    if (strlen(spec) > ABILITY_SPEC_MAX)
        return bad(why, size, path, "longer than %d characters", ABILITY_SPEC_MAX);
    const char *slash = strchr(spec, '/');
    if (ab->kind == PD_ABILITY_TASK) {
        if (!valid_cron(spec))
            return bad(why, size, path,
                       "not a 5-field cron expression (minute hour day month weekday; "
                       "digits and * , - /)");
    } else {
        /* "*" for the port: any port (ab->port stays 0). */
        bool ok = slash && ((slash - spec == 1 && spec[0] == '*') ||
                            parse_port(spec, (size_t)(slash - spec), &ab->port));
        for (const char *p = slash; ok && *p; p++)
            ok = *p > 0x20 && *p < 0x7f;
        if (!ok)
            return bad(why, size, path,
                       "not \"<port>/<health path>\" (port 1-65535 or *, path printable, "
                       "no spaces)");
        if (!(ab->health_path = strdup(slash)))
            return -ENOMEM;
    }
    if (!(ab->name = strdup(name)) || !(ab->spec = strdup(spec)))
        return -ENOMEM;
    return 0;
}

static int f_abilities(json_t *v, pd_manifest_t *m, const char *dir, char *why, size_t size)
{
    if (!json_is_array(v))
        return bad(why, size, "abilities", "must be an array");
    size_t n = json_array_size(v);
    if (n > ABILITIES_MAX)
        return bad(why, size, "abilities", "more than %d abilities", ABILITIES_MAX);
    if (n && !(m->abilities = calloc(n, sizeof *m->abilities)))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        m->n_abilities = i + 1; /* so pd_manifest_free sees a half-filled entry */
        int rc = f_ability(json_array_get(v, i), i, &m->abilities[i], why, size);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->abilities[j].name, m->abilities[i].name) == 0) {
                char path[64];
                snprintf(path, sizeof path, "abilities[%zu].name", i);
                return bad(why, size, path, "duplicate of abilities[%zu].name \"%s\"", j,
                           m->abilities[j].name);
            }
    }
    return 0;
}

static int f_description(json_t *v, pd_manifest_t *m, const char *dir, char *why, size_t size)
{
    if (!json_is_string(v))
        return bad(why, size, "description", "must be a string");
    if (json_string_length(v) > DESCRIPTION_MAX)
        return bad(why, size, "description", "longer than %d bytes", DESCRIPTION_MAX);
    return dup_into(&m->description, json_string_value(v));
}

static int json_text(json_t *v, const char *name, char **dst, char *why, size_t size)
{
    if (!json_is_object(v))
        return bad(why, size, name, "must be an object");
    *dst = json_dumps(v, JSON_COMPACT);
    return *dst ? 0 : -ENOMEM;
}

static int f_config_schema(json_t *v, pd_manifest_t *m, const char *dir, char *why, size_t size)
{
    return json_text(v, "config_schema", &m->config_schema, why, size);
}

static int f_default_config(json_t *v, pd_manifest_t *m, const char *dir, char *why, size_t size)
{
    return json_text(v, "default_config", &m->default_config, why, size);
}

/* The manifest's top level, validated in this order. */
static const struct {
    const char *key;
    bool required;
    field_fn fn;
} manifest_fields[] = {
    {"id", true, f_id},
    {"version", true, f_version},
    {"language", true, f_language},
    {"runtime_version", true, f_runtime_version},
    {"entry", true, f_entry},
    {"host_mode", false, f_host_mode},
    {"permissions", false, f_permissions},
    {"abilities", false, f_abilities},
    {"description", false, f_description},
    {"config_schema", false, f_config_schema},
    {"default_config", false, f_default_config},
};
#define N_MANIFEST_FIELDS (sizeof manifest_fields / sizeof manifest_fields[0])

void pd_manifest_free(pd_manifest_t *m)
{
    if (!m)
        return;
    free(m->id);
    free(m->version);
    free(m->language);
    free(m->runtime_version);
    free(m->entry);
    for (size_t i = 0; i < m->n_http; i++)
        free(m->http[i]);
    free(m->http);
    for (size_t i = 0; i < m->n_abilities; i++) {
        free(m->abilities[i].name);
        free(m->abilities[i].spec);
        free(m->abilities[i].health_path);
    }
    free(m->abilities);
    free(m->description);
    free(m->config_schema);
    free(m->default_config);
    memset(m, 0, sizeof *m);
}

static int manifest_from_json(json_t *root, const char *dir, pd_manifest_t *m, char *why,
                              size_t size)
{
    if (!json_is_object(root))
        return plat_why(why, size, -EINVAL, PD_MANIFEST_FILE ": must be a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        size_t i = 0;
        while (i < N_MANIFEST_FIELDS && strcmp(key, manifest_fields[i].key) != 0)
            i++;
        if (i == N_MANIFEST_FIELDS) {
            char path[80];
            snprintf(path, sizeof path, "%.64s", key);
            return bad(why, size, path, "unknown key");
        }
    }
    m->host_mode = PD_MODE_HIGH_PERFORMANCE;
    for (size_t i = 0; i < N_MANIFEST_FIELDS; i++) {
        json_t *v = json_object_get(root, manifest_fields[i].key);
        if (!v) {
            if (manifest_fields[i].required)
                return bad(why, size, manifest_fields[i].key, "required");
            continue;
        }
        int rc = manifest_fields[i].fn(v, m, dir, why, size);
        if (rc == -ENOMEM)
            return plat_why(why, size, rc, PD_MANIFEST_FILE ": out of memory");
        if (rc)
            return rc;
    }
    return 0;
}

int pd_manifest_load(const char *dir, pd_manifest_t *m, char *why, size_t size)
{
    if (why && size)
        why[0] = '\0';
    if (!dir || !m)
        return plat_why(why, size, -EINVAL, "no package directory");
    memset(m, 0, sizeof *m);
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/" PD_MANIFEST_FILE, dir) >= sizeof path)
        return plat_why(why, size, -ENAMETOOLONG, "package directory: path too long");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return plat_why(why, size, -ENOENT, PD_MANIFEST_FILE ": not found in the package");
        if (e == ELOOP)
            return plat_why(why, size, -EINVAL, PD_MANIFEST_FILE ": must not be a symbolic link");
        return plat_why(why, size, -e, PD_MANIFEST_FILE ": %s", strerror(e));
    }
    struct stat st;
    char *buf = NULL;
    ssize_t n = 0;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = plat_why(why, size, -errno, PD_MANIFEST_FILE ": %s", strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = plat_why(why, size, -EINVAL, PD_MANIFEST_FILE ": not a regular file");
    } else if (st.st_size > PD_MANIFEST_MAX_BYTES) {
        rc = plat_why(why, size, -EFBIG, PD_MANIFEST_FILE ": larger than %d bytes",
                      PD_MANIFEST_MAX_BYTES);
    } else if (!(buf = malloc(PD_MANIFEST_MAX_BYTES + 1))) {
        rc = plat_why(why, size, -ENOMEM, PD_MANIFEST_FILE ": out of memory");
    } else {
        /* Read one byte past the limit: the file may have grown since fstat. */
        while (n <= PD_MANIFEST_MAX_BYTES) {
            ssize_t r = read(fd, buf + n, (size_t)(PD_MANIFEST_MAX_BYTES + 1 - n));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                rc = plat_why(why, size, -errno, PD_MANIFEST_FILE ": %s", strerror(errno));
                break;
            }
            if (r == 0)
                break;
            n += r;
        }
        if (!rc && n > PD_MANIFEST_MAX_BYTES)
            rc = plat_why(why, size, -EFBIG, PD_MANIFEST_FILE ": larger than %d bytes",
                          PD_MANIFEST_MAX_BYTES);
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    json_error_t err;
    json_t *root = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    free(buf);
    if (!root)
        return plat_why(why, size, -EINVAL, PD_MANIFEST_FILE ": line %d column %d: %s", err.line,
                        err.column, err.text);
    rc = manifest_from_json(root, dir, m, why, size);
    json_decref(root);
    if (rc)
        pd_manifest_free(m);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* The store. */

/* One registration's copy walk: digest, counters, the current relative path. */
typedef struct {
    sha256_t sha;
    size_t entries;
    uint64_t bytes;
    char rel[PATH_MAX];
    uint8_t *buf; /* COPY_BUF bytes */
    char *why;
    size_t size;
} walk_t;

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Names in the directory open at fd (not consumed), "." and ".." excluded,
 * sorted bytewise so the digest does not depend on readdir order. Stops
 * after max + 1 names (0: no limit) so a caller can refuse a huge directory
 * without listing all of it. */
static int list_names(int fd, size_t max, char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0)
        return -errno;
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return -e;
    }
    rewinddir(d);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                rc = -ENOMEM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = -ENOMEM;
            break;
        }
        n++;
        if (max && n > max)
            break;
        errno = 0;
    }
    if (!rc && errno)
        rc = -errno;
    closedir(d);
    if (rc) {
        free_names(names, n);
        return rc;
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_strp);
    *out = names;
    *count = n;
    return 0;
}

static void hash_u64(sha256_t *s, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    sha256_update(s, b, 8);
}

/* Copy one regular file (already open as sfd, size st_size) to dfd/name,
 * hashing "f" path NUL mode NUL u64(size) content. */
static int copy_file(walk_t *w, int sfd, const struct stat *st, int dfd, const char *name)
{
    mode_t mode = (st->st_mode & 0111) ? 0755 : 0644;
    uint64_t size = (uint64_t)st->st_size;
    if (w->bytes + size > PD_PKG_MAX_BYTES)
        return plat_why(w->why, w->size, -EFBIG, "package: larger than %llu MiB",
                        PD_PKG_MAX_BYTES >> 20);
    w->bytes += size;
    sha256_update(&w->sha, "f", 1);
    sha256_update(&w->sha, w->rel, strlen(w->rel) + 1);
    sha256_update(&w->sha, mode == 0755 ? "755" : "644", 4);
    hash_u64(&w->sha, size);

    int ofd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (ofd < 0)
        return plat_why(w->why, w->size, -errno, "store: %s: %s", w->rel, strerror(errno));
    int rc = 0;
    uint64_t done = 0;
    for (;;) {
        ssize_t r = read(sfd, w->buf, COPY_BUF);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = plat_why(w->why, w->size, -errno, "package: %s: %s", w->rel, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        if (done + (uint64_t)r > size) {
            rc = -EAGAIN;
            break;
        }
        sha256_update(&w->sha, w->buf, (size_t)r);
        done += (uint64_t)r;
        if ((rc = plat_write_all(ofd, w->buf, (size_t)r))) {
            plat_why(w->why, w->size, rc, "store: %s: %s", w->rel, strerror(-rc));
            break;
        }
    }
    if (rc == -EAGAIN || (!rc && done != size))
        rc = plat_why(w->why, w->size, -EAGAIN, "package: %s: changed while being copied", w->rel);
    if (!rc && fchmod(ofd, mode) != 0)
        rc = plat_why(w->why, w->size, -errno, "store: %s: %s", w->rel, strerror(errno));
    if (close(ofd) != 0 && !rc)
        rc = plat_why(w->why, w->size, -errno, "store: %s: %s", w->rel, strerror(errno));
    return rc;
}

/* Copy the directory open at sfd into the (empty) directory open at dfd. */
static int walk_dir(walk_t *w, int sfd, int dfd, int depth)
{
    char **names;
    size_t n;
    int rc = list_names(sfd, PD_PKG_MAX_ENTRIES, &names, &n);
    if (rc)
        return plat_why(w->why, w->size, rc, "package: %s: %s", depth ? w->rel : ".",
                        strerror(-rc));
    size_t rel_len = strlen(w->rel);
    for (size_t i = 0; i < n && !rc; i++) {
        const char *name = names[i];
        if (depth == 0 && strcmp(name, PD_PKG_DIGEST_FILE) == 0) {
            rc = plat_why(w->why, w->size, -EINVAL,
                          "package: " PD_PKG_DIGEST_FILE ": reserved name, not allowed");
            break;
        }
        if ((size_t)snprintf(w->rel + rel_len, sizeof w->rel - rel_len, "%s%s", rel_len ? "/" : "",
                             name) >= sizeof w->rel - rel_len) {
            rc = plat_why(w->why, w->size, -ENAMETOOLONG, "package: path too long");
            break;
        }
        if (++w->entries > PD_PKG_MAX_ENTRIES) {
            rc = plat_why(w->why, w->size, -E2BIG, "package: more than %d files and directories",
                          PD_PKG_MAX_ENTRIES);
            break;
        }
        struct stat st;
        if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = plat_why(w->why, w->size, -errno, "package: %s: %s", w->rel, strerror(errno));
        } else if (S_ISLNK(st.st_mode)) {
            rc = plat_why(w->why, w->size, -EINVAL,
                          "package: %s: symbolic links are not allowed in a package", w->rel);
        } else if (S_ISDIR(st.st_mode)) {
            if (depth + 1 > PD_PKG_MAX_DEPTH) {
                rc = plat_why(w->why, w->size, -E2BIG,
                              "package: %s: directories nested deeper than %d", w->rel,
                              PD_PKG_MAX_DEPTH);
                break;
            }
            sha256_update(&w->sha, "d", 1);
            sha256_update(&w->sha, w->rel, strlen(w->rel) + 1);
            int csfd = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int cdfd = -1;
            if (csfd < 0) {
                rc = plat_why(w->why, w->size, -errno, "package: %s: %s", w->rel, strerror(errno));
            } else if (mkdirat(dfd, name, 0700) != 0 ||
                       (cdfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) <
                           0) {
                rc = plat_why(w->why, w->size, -errno, "store: %s: %s", w->rel, strerror(errno));
            } else {
                rc = walk_dir(w, csfd, cdfd, depth + 1);
                if (!rc && fchmod(cdfd, 0755) != 0)
                    rc =
                        plat_why(w->why, w->size, -errno, "store: %s: %s", w->rel, strerror(errno));
            }
            if (csfd >= 0)
                close(csfd);
            if (cdfd >= 0)
                close(cdfd);
        } else if (S_ISREG(st.st_mode)) {
            /* O_NONBLOCK: if it was swapped for a fifo since fstatat, do not hang. */
            int fd = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            struct stat st2;
            if (fd < 0) {
                rc = plat_why(w->why, w->size, errno == ELOOP ? -EINVAL : -errno, "package: %s: %s",
                              w->rel,
                              errno == ELOOP ? "symbolic links are not allowed in a package"
                                             : strerror(errno));
            } else if (fstat(fd, &st2) != 0 || !S_ISREG(st2.st_mode)) {
                rc = plat_why(w->why, w->size, -EAGAIN, "package: %s: changed while being copied",
                              w->rel);
            } else {
                rc = copy_file(w, fd, &st2, dfd, name);
            }
            if (fd >= 0)
                close(fd);
        } else {
            rc = plat_why(w->why, w->size, -EINVAL, "package: %s: not a regular file or directory",
                          w->rel);
        }
        w->rel[rel_len] = '\0';
    }
    w->rel[rel_len] = '\0';
    free_names(names, n);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path); /* best effort; a leftover is removed by pd_package_store_clean */
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The digest stored in dir/.digest: 0, -ENOENT, -EINVAL (malformed), -errno. */
static int read_digest_at(int dirfd, const char *dir, char out[PD_SHA256_HEX_LEN + 1])
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/" PD_PKG_DIGEST_FILE, dir) >= sizeof path)
        return -ENAMETOOLONG;
    int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? -EINVAL : -errno;
    char buf[PD_SHA256_HEX_LEN + 2];
    ssize_t n;
    do
        n = read(fd, buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    if (n < PD_SHA256_HEX_LEN || n > PD_SHA256_HEX_LEN + 1 ||
        (n == PD_SHA256_HEX_LEN + 1 && buf[PD_SHA256_HEX_LEN] != '\n'))
        return -EINVAL;
    for (int i = 0; i < PD_SHA256_HEX_LEN; i++)
        if (!strchr("0123456789abcdef", buf[i]) || !buf[i])
            return -EINVAL;
    memcpy(out, buf, PD_SHA256_HEX_LEN);
    out[PD_SHA256_HEX_LEN] = '\0';
    return 0;
}

static int write_digest(int dfd, const char *hex)
{
    int fd =
        openat(dfd, PD_PKG_DIGEST_FILE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    char line[PD_SHA256_HEX_LEN + 1];
    memcpy(line, hex, PD_SHA256_HEX_LEN);
    line[PD_SHA256_HEX_LEN] = '\n';
    int rc = plat_write_all(fd, line, sizeof line);
    if (!rc && fchmod(fd, 0644) != 0)
        rc = -errno;
    if (close(fd) != 0 && !rc)
        rc = -errno;
    return rc;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static int mkdir_ok(const char *path)
{
    if (mkdir(path, 0755) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* realpath() of a path whose last component may not exist yet (malloc'd). */
static char *resolve_maybe_missing(const char *path)
{
    char *r = realpath(path, NULL);
    if (r || errno != ENOENT)
        return r;
    char parent[PATH_MAX];
    if ((size_t)snprintf(parent, sizeof parent, "%s", path) >= sizeof parent) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    const char *base = slash ? slash + 1 : parent;
    char *pr = realpath(slash ? (slash == parent ? "/" : (*slash = '\0', parent)) : ".", NULL);
    if (!pr)
        return NULL;
    char *out = NULL;
    if (asprintf(&out, "%s/%s", strcmp(pr, "/") == 0 ? "" : pr, base) < 0)
        out = NULL;
    free(pr);
    return out;
}

/* Registered (id, version) found at `final`: same digest or not. */
static int compare_existing(const char *final, const char *digest, const char *id,
                            const char *version, char *why, size_t size)
{
    char have[PD_SHA256_HEX_LEN + 1];
    int rc = read_digest_at(AT_FDCWD, final, have);
    if (rc)
        return plat_why(why, size, -EEXIST,
                        "%s %s: stored copy has no valid " PD_PKG_DIGEST_FILE
                        " (%s); remove %s by hand",
                        id, version, strerror(-rc), final);
    if (strcmp(have, digest) != 0)
        return plat_why(why, size, -EEXIST,
                        "%s %s: id version already registered with different content; bump the "
                        "version",
                        id, version);
    return plat_why(why, size, 0, "already registered");
}

int pd_package_register(const char *store_dir, const char *src_dir, pd_manifest_t *out, char *why,
                        size_t size)
{
    if (why && size)
        why[0] = '\0';
    if (out)
        memset(out, 0, sizeof *out);
    if (!store_dir || !src_dir || !*store_dir || !*src_dir)
        return plat_why(why, size, -EINVAL, "no store or package directory");

    pd_manifest_t first = {0}, stored = {0};
    int rc = pd_manifest_load(src_dir, &first, why, size);
    if (rc)
        return rc;

    char tmp[PATH_MAX], iddir[PATH_MAX], final[PATH_MAX];
    char *src_real = NULL, *store_real = NULL;
    int sfd = -1, dfd = -1;
    bool have_tmp = false;
    walk_t *w = NULL;

    /* Checked before the store is created, so a refused store is not left
     * behind inside the package. */
    src_real = realpath(src_dir, NULL);
    store_real = resolve_maybe_missing(store_dir);
    if (!src_real || !store_real) {
        rc = plat_why(why, size, -errno, "cannot resolve %s: %s", src_real ? store_dir : src_dir,
                      strerror(errno));
        goto out;
    }
    size_t sn = strlen(src_real);
    if (strncmp(store_real, src_real, sn) == 0 &&
        (store_real[sn] == '\0' || store_real[sn] == '/' || sn == 1)) {
        rc = plat_why(why, size, -EINVAL, "the store directory is inside the package directory");
        goto out;
    }
    if ((rc = mkdir_ok(store_dir))) {
        plat_why(why, size, rc, "store %s: %s", store_dir, strerror(-rc));
        goto out;
    }
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.tmp-XXXXXX", store_dir) >= sizeof tmp ||
        (size_t)snprintf(iddir, sizeof iddir, "%s/%s", store_dir, first.id) >= sizeof iddir ||
        (size_t)snprintf(final, sizeof final, "%s/%s", iddir, first.version) >= sizeof final) {
        rc = plat_why(why, size, -ENAMETOOLONG, "store: path too long");
        goto out;
    }
    if (!mkdtemp(tmp)) {
        rc = plat_why(why, size, -errno, "store: cannot create a temp dir: %s", strerror(errno));
        goto out;
    }
    have_tmp = true;
    sfd = open(src_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0 || dfd < 0) {
        rc = plat_why(why, size, -errno, "%s: %s", sfd < 0 ? src_dir : tmp, strerror(errno));
        goto out;
    }
    w = calloc(1, sizeof *w);
    if (!w || !(w->buf = malloc(COPY_BUF))) {
        rc = plat_why(why, size, -ENOMEM, "out of memory");
        goto out;
    }
    w->why = why;
    w->size = size;
    sha256_init(&w->sha);
    if ((rc = walk_dir(w, sfd, dfd, 0)))
        goto out;
    char digest[PD_SHA256_HEX_LEN + 1];
    sha256_final_hex(&w->sha, digest);
    /* One syncfs() instead of an fsync() per file: everything copied is on
     * disk before the rename makes it visible. */
    if ((rc = write_digest(dfd, digest)) || fchmod(dfd, 0755) != 0 || syncfs(dfd) != 0) {
        rc = rc ? rc : -errno;
        plat_why(why, size, rc, "store: %s", strerror(-rc));
        goto out;
    }

    /* Validate what is stored, not what the source holds now: the source
     * may have changed between the first check and the copy. */
    if ((rc = pd_manifest_load(tmp, &stored, why, size)))
        goto out;
    if (strcmp(stored.id, first.id) != 0 || strcmp(stored.version, first.version) != 0) {
        rc = plat_why(why, size, -EAGAIN, "package: manifest.json changed while registering");
        goto out;
    }

    if ((rc = mkdir_ok(iddir))) {
        plat_why(why, size, rc, "store %s: %s", iddir, strerror(-rc));
        goto out;
    }
    struct stat st;
    if (lstat(final, &st) == 0) {
        rc = compare_existing(final, digest, first.id, first.version, why, size);
        goto out;
    }
    if (rename(tmp, final) != 0) {
        if (errno == EEXIST || errno == ENOTEMPTY) /* registered concurrently */
            rc = compare_existing(final, digest, first.id, first.version, why, size);
        else
            rc = plat_why(why, size, -errno, "store: rename into %s: %s", final, strerror(errno));
        goto out;
    }
    have_tmp = false;
    if ((rc = fsync_path(iddir)) || (rc = fsync_path(store_dir))) {
        plat_why(why, size, rc, "store: %s", strerror(-rc));
        goto out;
    }
    plat_log_debug(LOG_COMP, "registered package id=%s version=%s digest=%s", first.id,
                   first.version, digest);
    plat_why(why, size, 0, "registered");

out:
    if (sfd >= 0)
        close(sfd);
    if (dfd >= 0)
        close(dfd);
    if (have_tmp)
        rm_tree(tmp);
    if (w)
        free(w->buf);
    free(w);
    free(src_real);
    free(store_real);
    pd_manifest_free(&first);
    if (rc == 0 && out)
        *out = stored;
    else
        pd_manifest_free(&stored);
    return rc;
}

char *pd_package_path(const char *store_dir, const char *id, const char *version)
{
    if (!store_dir || !id || !version || !valid_id(id) || !pd_semver_valid(version)) {
        errno = EINVAL;
        return NULL;
    }
    char *path = NULL;
    if (asprintf(&path, "%s/%s/%s", store_dir, id, version) < 0) {
        errno = ENOMEM;
        return NULL;
    }
    char digest[PD_SHA256_HEX_LEN + 1];
    if (read_digest_at(AT_FDCWD, path, digest) != 0) {
        free(path);
        errno = ENOENT;
        return NULL;
    }
    return path;
}

static int cmp_version(const void *a, const void *b)
{
    const char *va = *(char *const *)a, *vb = *(char *const *)b;
    int c = 0;
    if (pd_semver_compare(va, vb, &c) != 0 || c == 0)
        c = strcmp(va, vb);
    return c;
}

int pd_package_list(const char *store_dir, pd_package_cb cb, void *user)
{
    if (!store_dir || !cb)
        return -EINVAL;
    int sfd = open(store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0)
        return errno == ENOENT ? 0 : -errno;
    char **ids = NULL;
    size_t n_ids = 0;
    int rc = list_names(sfd, 0, &ids, &n_ids);
    for (size_t i = 0; !rc && i < n_ids; i++) {
        if (!valid_id(ids[i]))
            continue;
        int ifd = openat(sfd, ids[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (ifd < 0)
            continue; /* not a directory: not ours */
        char **vers = NULL;
        size_t n_vers = 0;
        rc = list_names(ifd, 0, &vers, &n_vers);
        size_t keep = 0;
        for (size_t j = 0; !rc && j < n_vers; j++) {
            if (pd_semver_valid(vers[j]))
                vers[keep++] = vers[j];
            else
                free(vers[j]);
        }
        if (!rc && keep)
            qsort(vers, keep, sizeof *vers, cmp_version);
        for (size_t j = 0; !rc && j < keep; j++) {
            char digest[PD_SHA256_HEX_LEN + 1];
            if (read_digest_at(ifd, vers[j], digest) == 0) /* else incomplete: skip */
                rc = cb(ids[i], vers[j], digest, user);
        }
        free_names(vers, keep);
        close(ifd);
    }
    free_names(ids, n_ids);
    close(sfd);
    return rc;
}

int pd_package_store_clean(const char *store_dir)
{
    if (!store_dir)
        return -EINVAL;
    DIR *d = opendir(store_dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, ".tmp-", 5) != 0)
            continue;
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", store_dir, de->d_name) >= sizeof path)
            continue;
        rm_tree(path);
        removed++;
    }
    closedir(d);
    return removed;
}
