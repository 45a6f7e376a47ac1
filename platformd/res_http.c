/* Outbound HTTP for plugins (see res_http.h): policy checks, manual
 * redirects, limits, typed errors; the transfers run on curlmulti. */
#include "res_http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "curlmulti.h"

#define KIND PLAT__RESOURCE_KIND__RESOURCE_KIND_HTTP
#define MAX_HEADERS 256               /* response headers kept */
#define MAX_HEADER_BYTES (256 * 1024) /* all response header lines of one response */

typedef struct {
    char *name;
    char *value;
} hdr_t;

typedef struct {
    pd_t *pd;
    char instance[PLAT_UUID_LEN + 1];
    pd_manifest_t perms; /* only http / n_http set (copies) */
    char method[8];
    char *body; /* request body (owned) */
    size_t body_len;
    hdr_t *hdrs; /* request headers as given (owned) */
    size_t n_hdrs;
    CURLU *url; /* current target */
    CURL *easy;
    struct curl_slist *slist;
    int redirects;
    uint64_t deadline_ms;
    /* the response being received */
    char *rbody;
    size_t rlen, rcap;
    bool too_big;
    hdr_t rh[MAX_HEADERS];
    size_t n_rh;
    size_t rh_bytes;
    char *location;
    char errbuf[CURL_ERROR_SIZE];
    unsigned api_port, bus_port; /* platformd's own, never reached (addr check) */
    bool addr_refused;           /* this hop: an address was refused (addr_why) */
    char addr_why[512];
    pd_res_http_done_fn done;
    void *arg;
} rq_t;

static void hdrs_free(hdr_t *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
}

static void reset_response(rq_t *rq)
{
    hdrs_free(rq->rh, rq->n_rh);
    rq->n_rh = 0;
    rq->rh_bytes = 0;
    rq->rlen = 0;
    rq->too_big = false;
    free(rq->location);
    rq->location = NULL;
}

static void rq_free(rq_t *rq)
{
    if (!rq)
        return;
    reset_response(rq);
    free(rq->rbody);
    if (rq->easy)
        curl_easy_cleanup(rq->easy);
    curl_slist_free_all(rq->slist);
    curl_url_cleanup(rq->url);
    hdrs_free(rq->hdrs, rq->n_hdrs);
    free(rq->hdrs);
    free(rq->body);
    for (size_t i = 0; i < rq->perms.n_http; i++)
        free(rq->perms.http[i]);
    free(rq->perms.http);
    free(rq);
}

static void count(pd_t *pd, int err)
{
    if (err == 0) {
        pd->metrics.resource_ok[KIND]++;
    } else {
        pd->metrics.resource_failed[KIND]++;
        if (err == -EACCES)
            pd->metrics.resource_denied[KIND]++;
    }
}

/* The one exit of an accepted request. */
static void finish(rq_t *rq, int err, const char *why, Plat__HttpResponse *resp)
{
    pd_t *pd = rq->pd;
    count(pd, err);
    if (pd->res_http_active)
        pd->res_http_active--;
    if (err && err != -EACCES)
        plat_log_info("res_http", "http request failed: %s instance=%s", why, rq->instance);
    rq->done(rq->arg, err, why, resp);
    rq_free(rq);
}

/* ---- policy ----------------------------------------------------------- */

static bool is_tchar(int c)
{
    return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c);
}

static bool valid_header(const char *name, const char *value)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!is_tchar((unsigned char)*p))
            return false;
    for (const char *p = value ? value : ""; *p; p++)
        if (*p == '\r' || *p == '\n')
            return false;
    return true;
}

/* Headers curl (or the connection) owns: silently not forwarded. */
static bool dropped_header(const char *name)
{
    static const char *const names[] = {
        "content-length", "transfer-encoding", "connection",       "keep-alive",          "te",
        "trailer",        "upgrade",           "proxy-connection", "proxy-authorization", "expect"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

/* 0 if `u` is an http(s) URL whose host:port the manifest allows; else
 * -EINVAL (not http/https, no host) or -EACCES, with why. */
static int check_target(rq_t *rq, CURLU *u, char *why, size_t size)
{
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = 0;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        snprintf(why, size, "only http and https URLs are allowed");
        rc = -EINVAL;
    } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        snprintf(why, size, "URL has no host");
        rc = -EINVAL;
    } else if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(why, size, "URL has no port");
        rc = -EINVAL;
    } else {
        unsigned long p = strtoul(port, NULL, 10);
        if (!pd_manifest_http_allowed(&rq->perms, host, (unsigned)p)) {
            snprintf(why, size, "%.200s:%lu is not in the manifest's permissions.http", host, p);
            rc = -EACCES;
        }
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    return rc;
}

static void log_denied(rq_t *rq, const char *why)
{
    plat_log_warn("res_http", "http request denied: %s instance=%s", why, rq->instance);
}

/* ---- address policy (DNS rebinding) ------------------------------------ */

typedef enum {
    ADDR_PUBLIC,
    ADDR_LOOPBACK,
    ADDR_LINK_LOCAL,
    ADDR_PRIVATE,
    ADDR_UNSPECIFIED,
    ADDR_MULTICAST,
    ADDR_RESERVED,
} addr_class_t;

static const char *const g_class_names[] = {"public",      "loopback",  "link-local", "private",
                                            "unspecified", "multicast", "reserved"};

/* An address normalized: IPv4-mapped IPv6 becomes IPv4. */
typedef struct {
    int family;  /* AF_INET or AF_INET6 */
    uint32_t v4; /* host order */
    struct in6_addr v6;
    unsigned port;
} addr_t;

static addr_class_t class_v4(uint32_t a)
{
    if ((a >> 24) == 127)
        return ADDR_LOOPBACK;
    if ((a >> 24) == 0)
        return ADDR_UNSPECIFIED; /* 0/8 "this network": 0.0.0.0 reaches this host */
    if ((a >> 24) == 10 || (a & 0xfff00000u) == 0xac100000u || /* 172.16/12 */
        (a & 0xffff0000u) == 0xc0a80000u ||                    /* 192.168/16 */
        (a & 0xffc00000u) == 0x64400000u)                      /* 100.64/10 CGNAT */
        return ADDR_PRIVATE;
    if ((a & 0xffff0000u) == 0xa9fe0000u) /* 169.254/16 */
        return ADDR_LINK_LOCAL;
    if ((a & 0xf0000000u) == 0xe0000000u) /* 224/4 */
        return ADDR_MULTICAST;
    if ((a & 0xf0000000u) == 0xf0000000u) /* 240/4, 255.255.255.255 */
        return ADDR_RESERVED;
    return ADDR_PUBLIC;
}

static uint32_t v4_of(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static addr_class_t addr_class(const addr_t *a)
{
    if (a->family == AF_INET)
        return class_v4(a->v4);
    const struct in6_addr *x = &a->v6;
    const uint8_t *b = x->s6_addr;
    if (IN6_IS_ADDR_LOOPBACK(x))
        return ADDR_LOOPBACK;
    if (IN6_IS_ADDR_UNSPECIFIED(x))
        return ADDR_UNSPECIFIED;
    if (IN6_IS_ADDR_LINKLOCAL(x))
        return ADDR_LINK_LOCAL;
    if ((b[0] & 0xfe) == 0xfc || IN6_IS_ADDR_SITELOCAL(x)) /* fc00::/7, fec0::/10 */
        return ADDR_PRIVATE;
    if (IN6_IS_ADDR_MULTICAST(x))
        return ADDR_MULTICAST;
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b}; /* 64:ff9b::/96 */
    if (memcmp(b, nat64, 12) == 0)
        return class_v4(v4_of(b + 12));
    return ADDR_PUBLIC;
}

static int addr_from_sockaddr(const struct sockaddr *sa, addr_t *a)
{
    memset(a, 0, sizeof *a);
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof sin);
        a->family = AF_INET;
        a->v4 = ntohl(sin.sin_addr.s_addr);
        a->port = ntohs(sin.sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof sin6);
        a->port = ntohs(sin6.sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
            a->family = AF_INET;
            a->v4 = v4_of(sin6.sin6_addr.s6_addr + 12);
        } else {
            a->family = AF_INET6;
            a->v6 = sin6.sin6_addr;
        }
        return 0;
    }
    return -EINVAL;
}

static void addr_format(const addr_t *a, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->family == AF_INET) {
        struct in_addr in = {.s_addr = htonl(a->v4)};
        inet_ntop(AF_INET, &in, ip, sizeof ip);
        snprintf(buf, size, "%s:%u", ip, a->port);
    } else {
        inet_ntop(AF_INET6, &a->v6, ip, sizeof ip);
        snprintf(buf, size, "[%s]:%u", ip, a->port);
    }
}

/* Does some pattern with a matching port name `a` literally (or, for
 * loopback, as "localhost")? */
static bool named_by_pattern(const pd_manifest_t *perms, const addr_t *a, addr_class_t cls)
{
    for (size_t i = 0; perms && i < perms->n_http; i++) {
        const char *pat = perms->http[i];
        const char *colon = pat ? strrchr(pat, ':') : NULL;
        if (!colon)
            continue;
        if (strcmp(colon + 1, "*") != 0) {
            char *end;
            unsigned long p = strtoul(colon + 1, &end, 10);
            if (*end || end == colon + 1 || p != a->port)
                continue;
        }
        char host[64];
        size_t hn = (size_t)(colon - pat);
        if (hn >= sizeof host)
            continue;
        memcpy(host, pat, hn);
        host[hn] = 0;
        if (cls == ADDR_LOOPBACK && strcasecmp(host, "localhost") == 0)
            return true;
        struct in_addr in;
        if (a->family == AF_INET && inet_pton(AF_INET, host, &in) == 1 && ntohl(in.s_addr) == a->v4)
            return true;
    }
    return false;
}

int pd_res_http_addr_check(const struct sockaddr *sa, const pd_manifest_t *perms, unsigned api_port,
                           unsigned bus_port, char *why, size_t size)
{
    addr_t a;
    if (!sa || addr_from_sockaddr(sa, &a) < 0) {
        snprintf(why, size, "not an IPv4 or IPv6 address");
        return -EINVAL;
    }
    char txt[INET6_ADDRSTRLEN + 16];
    addr_format(&a, txt, sizeof txt);
    addr_class_t cls = addr_class(&a);
    if ((cls == ADDR_LOOPBACK || cls == ADDR_UNSPECIFIED) && a.port &&
        (a.port == api_port || a.port == bus_port)) {
        snprintf(why, size, "%s is platformd's own %s: never reachable through the platform", txt,
                 a.port == api_port ? "HTTP API" : "bus");
        return -EACCES;
    }
    if (cls == ADDR_PUBLIC || named_by_pattern(perms, &a, cls))
        return 0;
    snprintf(why, size,
             "%s is a %s address and no permissions.http pattern names it (only the address "
             "itself%s does)",
             txt, g_class_names[cls], cls == ADDR_LOOPBACK ? " or localhost" : "");
    return -EACCES;
}

/* platformd's own ports: the API's and the bus endpoint's ("tcp://h:PORT"). */
static void own_ports(const pd_config_t *cfg, unsigned *api, unsigned *bus)
{
    *api = cfg->http.port > 0 && cfg->http.port <= 65535 ? (unsigned)cfg->http.port : 0;
    *bus = 0;
    const char *colon = cfg->bus.endpoint ? strrchr(cfg->bus.endpoint, ':') : NULL;
    if (colon) {
        char *end;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (!*end && end != colon + 1 && p <= 65535)
            *bus = (unsigned)p;
    }
}

/* The check for this hop's connection to `sa`; a refusal is remembered
 * (the first why) for on_done. */
static bool addr_refused(rq_t *rq, const struct sockaddr *sa)
{
    char sub[400];
    if (pd_res_http_addr_check(sa, &rq->perms, rq->api_port, rq->bus_port, sub, sizeof sub) == 0)
        return false;
    if (!rq->addr_refused) {
        char *host = NULL;
        curl_url_get(rq->url, CURLUPART_HOST, &host, 0);
        snprintf(rq->addr_why, sizeof rq->addr_why, "connecting to %.100s refused: %.380s",
                 host ? host : "?", sub);
        curl_free(host);
        rq->addr_refused = true;
    }
    return true;
}

/* ---- curl callbacks --------------------------------------------------- */

/* Every new connection: the resolved address is checked before the socket
 * exists; CURL_SOCKET_BAD makes curl try the next address or fail. */
static curl_socket_t on_opensocket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    rq_t *rq = arg;
    (void)purpose;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    size_t n = a->addrlen < sizeof ss ? a->addrlen : sizeof ss;
    memcpy(&ss, &a->addr, n);
    if (addr_refused(rq, (const struct sockaddr *)&ss))
        return CURL_SOCKET_BAD;
    int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

#if LIBCURL_VERSION_NUM >= 0x075000
/* Before the request goes out, also on a reused connection (the multi
 * handle's connection cache): the peer checked again. */
static int on_prereq(void *arg, char *ip, char *local_ip, int port, int local_port)
{
    rq_t *rq = arg;
    (void)local_ip, (void)local_port;
    char buf[INET6_ADDRSTRLEN + 1];
    snprintf(buf, sizeof buf, "%s", ip ? ip : "");
    char *zone = strchr(buf, '%');
    if (zone)
        *zone = 0;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
    } else {
        if (!rq->addr_refused) {
            snprintf(rq->addr_why, sizeof rq->addr_why,
                     "connected to an address that cannot be checked (\"%.64s\")", ip ? ip : "");
            rq->addr_refused = true;
        }
        return CURL_PREREQFUNC_ABORT;
    }
    return addr_refused(rq, (const struct sockaddr *)&ss) ? CURL_PREREQFUNC_ABORT
                                                          : CURL_PREREQFUNC_OK;
}
#endif

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    rq_t *rq = arg;
    size_t len = size * n;
    size_t max = (size_t)rq->pd->cfg->resources.http_max_bytes;
    if (rq->rlen + len > max) {
        rq->too_big = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (rq->rlen + len > rq->rcap) {
        size_t cap = rq->rcap ? rq->rcap : 4096;
        while (cap < rq->rlen + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *b = realloc(rq->rbody, cap);
        if (!b)
            return 0;
        rq->rbody = b;
        rq->rcap = cap;
    }
    memcpy(rq->rbody + rq->rlen, data, len);
    rq->rlen += len;
    return len;
}

static char *dup_trimmed(const char *s, size_t n)
{
    while (n && (s[0] == ' ' || s[0] == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    return strndup(s, n);
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    rq_t *rq = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        reset_response(rq); /* a new response (1xx before, or a new hop) */
        return len;
    }
    rq->rh_bytes += len;
    if (rq->rh_bytes > MAX_HEADER_BYTES) {
        rq->too_big = true;
        return 0;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line || rq->n_rh == MAX_HEADERS)
        return len; /* the blank line, a continuation, or too many */
    char *name = strndup(line, (size_t)(colon - line));
    char *value = dup_trimmed(colon + 1, len - (size_t)(colon - line) - 1);
    if (!name || !value) {
        free(name);
        free(value);
        return 0;
    }
    if (strcasecmp(name, "location") == 0 && !rq->location)
        rq->location = strdup(value);
    rq->rh[rq->n_rh++] = (hdr_t){name, value};
    return len;
}

/* ---- one hop ---------------------------------------------------------- */

static void on_done(void *arg, CURL *easy, CURLcode rc, bool cancelled);

static int build_slist(rq_t *rq)
{
    curl_slist_free_all(rq->slist);
    rq->slist = NULL;
    bool have_ctype = false;
    for (size_t i = 0; i < rq->n_hdrs; i++) {
        const hdr_t *h = &rq->hdrs[i];
        if (strcasecmp(h->name, "content-type") == 0)
            have_ctype = true;
        size_t len = strlen(h->name) + strlen(h->value) + 3;
        char *line = malloc(len);
        if (!line)
            return -ENOMEM;
        /* "Name;" sends an empty header ("Name:" would remove it). */
        if (h->value[0])
            snprintf(line, len, "%s: %s", h->name, h->value);
        else
            snprintf(line, len, "%s;", h->name);
        struct curl_slist *s = curl_slist_append(rq->slist, line);
        free(line);
        if (!s)
            return -ENOMEM;
        rq->slist = s;
    }
    /* No "Expect: 100-continue" round trip, no invented Content-Type. */
    struct curl_slist *s = curl_slist_append(rq->slist, "Expect:");
    if (!s)
        return -ENOMEM;
    rq->slist = s;
    if (!have_ctype) {
        s = curl_slist_append(rq->slist, "Content-Type:");
        if (!s)
            return -ENOMEM;
        rq->slist = s;
    }
    return 0;
}

/* Start a transfer to rq->url. 0 or -errno (with why). */
static int start_hop(rq_t *rq, char *why, size_t size)
{
    const pd_config_t *cfg = rq->pd->cfg;
    uint64_t now = plat_mono_ms();
    if (now >= rq->deadline_ms) {
        snprintf(why, size, "timed out after %lld ms", (long long)cfg->resources.http_timeout_ms);
        return -ETIMEDOUT;
    }
    long remaining = (long)(rq->deadline_ms - now);
    long connect = (long)cfg->resources.http_connect_timeout_ms;
    if (connect > remaining)
        connect = remaining;
    int rc = build_slist(rq);
    if (rc < 0) {
        snprintf(why, size, "out of memory");
        return rc;
    }
    if (rq->easy)
        curl_easy_cleanup(rq->easy);
    CURL *e = rq->easy = curl_easy_init();
    if (!e) {
        snprintf(why, size, "out of memory");
        return -ENOMEM;
    }
    rq->errbuf[0] = 0;
    rq->addr_refused = false;
    rq->addr_why[0] = 0;
    reset_response(rq);
    curl_easy_setopt(e, CURLOPT_CURLU, rq->url);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, rq);
#if LIBCURL_VERSION_NUM >= 0x075000
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, rq);
#endif
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never a proxy from the environment */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, remaining);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cfg->resources.http_max_bytes);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, rq);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, rq);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, rq->errbuf);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, rq->slist);
    if (strcmp(rq->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(rq->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
        if (strcmp(rq->method, "DELETE") != 0 || rq->body_len) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        }
    }
    rc = pd_curlm_add(rq->pd->curlm, e, on_done, rq);
    if (rc < 0) {
        snprintf(why, size, "%s", rc == -ECANCELED ? "platformd is stopping" : strerror(-rc));
        return rc;
    }
    return 0;
}

static bool same_origin(CURLU *a, CURLU *b)
{
    static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
    bool same = true;
    for (size_t i = 0; i < 3 && same; i++) {
        char *x = NULL, *y = NULL;
        unsigned flags = parts[i] == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0;
        curl_url_get(a, parts[i], &x, flags);
        curl_url_get(b, parts[i], &y, flags);
        same = x && y && strcasecmp(x, y) == 0;
        curl_free(x);
        curl_free(y);
    }
    return same;
}

static void drop_request_header(rq_t *rq, const char *name)
{
    size_t j = 0;
    for (size_t i = 0; i < rq->n_hdrs; i++) {
        if (strcasecmp(rq->hdrs[i].name, name) == 0) {
            free(rq->hdrs[i].name);
            free(rq->hdrs[i].value);
        } else {
            rq->hdrs[j++] = rq->hdrs[i];
        }
    }
    rq->n_hdrs = j;
}

/* A 3xx with a Location: check and follow it. 0 (next hop started) or
 * -errno with why. */
static int follow(rq_t *rq, long status, char *why, size_t size)
{
    const pd_config_t *cfg = rq->pd->cfg;
    if (rq->redirects >= cfg->resources.http_max_redirects) {
        snprintf(why, size, "more than %lld redirects",
                 (long long)cfg->resources.http_max_redirects);
        return -ELOOP;
    }
    CURLU *next = curl_url_dup(rq->url);
    if (!next) {
        snprintf(why, size, "out of memory");
        return -ENOMEM;
    }
    /* A relative Location is resolved against the current URL. */
    CURLUcode uc = curl_url_set(next, CURLUPART_URL, rq->location, 0);
    if (uc != CURLUE_OK) {
        snprintf(why, size, "redirect to a bad URL \"%.200s\": %s", rq->location,
                 curl_url_strerror(uc));
        curl_url_cleanup(next);
        return -EIO;
    }
    curl_url_set(next, CURLUPART_FRAGMENT, NULL, 0);
    char sub[400];
    int rc = check_target(rq, next, sub, sizeof sub);
    if (rc < 0) {
        snprintf(why, size, "redirect to \"%.200s\" refused: %.300s", rq->location, sub);
        curl_url_cleanup(next);
        return -EACCES;
    }
    if (!same_origin(rq->url, next)) {
        drop_request_header(rq, "authorization");
        drop_request_header(rq, "cookie");
    }
    bool to_get = (status == 303 && strcmp(rq->method, "HEAD") != 0) ||
                  ((status == 301 || status == 302) && strcmp(rq->method, "POST") == 0);
    if (to_get) {
        strcpy(rq->method, "GET");
        free(rq->body);
        rq->body = NULL;
        rq->body_len = 0;
        drop_request_header(rq, "content-type");
    }
    curl_easy_cleanup(rq->easy); /* uses rq->url: clean it up first */
    rq->easy = NULL;
    curl_url_cleanup(rq->url);
    rq->url = next;
    rq->redirects++;
    return start_hop(rq, why, size);
}

static int map_curl_error(rq_t *rq, CURLcode rc, char *why, size_t size)
{
    const pd_config_t *cfg = rq->pd->cfg;
    const char *detail = rq->errbuf[0] ? rq->errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (rc == CURLE_FILESIZE_EXCEEDED || rq->too_big) {
            snprintf(why, size, "response larger than %lld bytes",
                     (long long)cfg->resources.http_max_bytes);
            return -EFBIG;
        }
        break;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(why, size, "timed out: %s", detail);
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT: {
        long oserr = 0;
        curl_easy_getinfo(rq->easy, CURLINFO_OS_ERRNO, &oserr);
        snprintf(why, size, "connect failed: %s", detail);
        return oserr == ECONNREFUSED ? -ECONNREFUSED : -EHOSTUNREACH;
    }
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(why, size, "cannot resolve: %s", detail);
        return -EHOSTUNREACH;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        snprintf(why, size, "bad URL: %s", detail);
        return -EINVAL;
    default:
        break;
    }
    snprintf(why, size, "transfer failed: %s", detail);
    return -EIO;
}

static void on_done(void *arg, CURL *easy, CURLcode rc, bool cancelled)
{
    (void)easy;
    rq_t *rq = arg;
    char why[1024] = "";
    if (cancelled) {
        finish(rq, -ECANCELED, "platformd is stopping", NULL);
        return;
    }
    if (rc != CURLE_OK && rq->addr_refused) {
        /* An address was refused (and no other one worked). */
        log_denied(rq, rq->addr_why);
        finish(rq, -EACCES, rq->addr_why, NULL);
        return;
    }
    if (rc != CURLE_OK) {
        int err = map_curl_error(rq, rc, why, sizeof why);
        finish(rq, err, why, NULL);
        return;
    }
    long status = 0;
    curl_easy_getinfo(rq->easy, CURLINFO_RESPONSE_CODE, &status);
    bool redirect =
        status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    if (redirect && rq->location) {
        int err = follow(rq, status, why, sizeof why);
        if (err < 0) {
            if (err == -EACCES)
                log_denied(rq, why);
            finish(rq, err, why, NULL);
        }
        return;
    }
    Plat__HttpHeader hv[MAX_HEADERS];
    Plat__HttpHeader *hp[MAX_HEADERS];
    for (size_t i = 0; i < rq->n_rh; i++) {
        plat__http_header__init(&hv[i]);
        hv[i].name = rq->rh[i].name;
        hv[i].value = rq->rh[i].value;
        hp[i] = &hv[i];
    }
    Plat__HttpResponse resp;
    plat__http_response__init(&resp);
    resp.status = (uint32_t)status;
    resp.n_headers = rq->n_rh;
    resp.headers = rq->n_rh ? hp : NULL;
    resp.body.data = (uint8_t *)(rq->rbody ? rq->rbody : ""); /* never NULL */
    resp.body.len = rq->rlen;
    plat_log_debug("res_http", "http %s -> %ld (%zu bytes) instance=%s", rq->method, status,
                   rq->rlen, rq->instance);
    finish(rq, 0, "", &resp);
}

/* ---- entry ------------------------------------------------------------ */

/* Refused before anything started: counted, logged, done not called. */
static int refuse(pd_t *pd, rq_t *rq, const char *instance, int err, const char *why)
{
    count(pd, err);
    if (err == -EACCES)
        plat_log_warn("res_http", "http request denied: %s instance=%s", why,
                      instance ? instance : "?");
    else
        plat_log_info("res_http", "http request refused: %s instance=%s", why,
                      instance ? instance : "?");
    rq_free(rq);
    return err;
}

int pd_res_http_request(pd_t *pd, const char *instance, const pd_manifest_t *manifest,
                        const Plat__HttpRequest *req, pd_res_http_done_fn done, void *arg)
{
    if (!pd || !req || !done)
        return -EINVAL;
    if (!pd->curlm)
        return refuse(pd, NULL, instance, -ECANCELED, "the curl module is not running");
    rq_t *rq = calloc(1, sizeof *rq);
    if (!rq)
        return refuse(pd, NULL, instance, -ENOMEM, "out of memory");
    rq->pd = pd;
    rq->done = done;
    rq->arg = arg;
    snprintf(rq->instance, sizeof rq->instance, "%s", instance ? instance : "");
    char why[1024] = "";

    /* The instance's patterns, copied (redirects are checked later). */
    size_t n = manifest ? manifest->n_http : 0;
    if (n && !(rq->perms.http = calloc(n, sizeof *rq->perms.http)))
        return refuse(pd, rq, instance, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!(rq->perms.http[i] = strdup(manifest->http[i])))
            return refuse(pd, rq, instance, -ENOMEM, "out of memory");
        rq->perms.n_http = i + 1;
    }

    const char *m = req->method && req->method[0] ? req->method : "GET";
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"};
    bool known = false;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0] && !known; i++)
        known = strcmp(m, methods[i]) == 0;
    if (!known) {
        snprintf(why, sizeof why,
                 "method \"%.16s\" not one of GET, POST, PUT, DELETE, PATCH, "
                 "HEAD",
                 m);
        return refuse(pd, rq, instance, -EINVAL, why);
    }
    snprintf(rq->method, sizeof rq->method, "%s", m);
    if (req->body.len && (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0))
        return refuse(pd, rq, instance, -EINVAL, "a GET or HEAD request has no body");

    rq->url = curl_url();
    if (!rq->url)
        return refuse(pd, rq, instance, -ENOMEM, "out of memory");
    CURLUcode uc = curl_url_set(rq->url, CURLUPART_URL, req->url ? req->url : "", 0);
    if (uc != CURLUE_OK) {
        snprintf(why, sizeof why, "bad URL \"%.200s\": %s", req->url ? req->url : "",
                 curl_url_strerror(uc));
        return refuse(pd, rq, instance, -EINVAL, why);
    }
    curl_url_set(rq->url, CURLUPART_FRAGMENT, NULL, 0);
    int rc = check_target(rq, rq->url, why, sizeof why);
    if (rc < 0)
        return refuse(pd, rq, instance, rc, why);

    if (req->n_headers && !(rq->hdrs = calloc(req->n_headers, sizeof *rq->hdrs)))
        return refuse(pd, rq, instance, -ENOMEM, "out of memory");
    for (size_t i = 0; i < req->n_headers; i++) {
        const Plat__HttpHeader *h = req->headers[i];
        const char *value = h->value ? h->value : "";
        if (!valid_header(h->name, value)) {
            snprintf(why, sizeof why, "bad header \"%.64s\"", h->name ? h->name : "");
            return refuse(pd, rq, instance, -EINVAL, why);
        }
        if (strcasecmp(h->name, "host") == 0)
            return refuse(pd, rq, instance, -EINVAL, "the Host header comes from the URL");
        if (dropped_header(h->name))
            continue;
        hdr_t *d = &rq->hdrs[rq->n_hdrs];
        d->name = strdup(h->name);
        d->value = strdup(value);
        rq->n_hdrs++;
        if (!d->name || !d->value)
            return refuse(pd, rq, instance, -ENOMEM, "out of memory");
    }
    if (req->body.len) {
        if (!(rq->body = malloc(req->body.len)))
            return refuse(pd, rq, instance, -ENOMEM, "out of memory");
        memcpy(rq->body, req->body.data, req->body.len);
        rq->body_len = req->body.len;
    }

    own_ports(pd->cfg, &rq->api_port, &rq->bus_port);
    rq->deadline_ms = plat_mono_ms() + (uint64_t)pd->cfg->resources.http_timeout_ms;
    rc = start_hop(rq, why, sizeof why);
    if (rc < 0)
        return refuse(pd, rq, instance, rc, why);
    pd->res_http_active++;
    return 0;
}

size_t pd_res_http_active(pd_t *pd)
{
    return pd ? pd->res_http_active : 0;
}
