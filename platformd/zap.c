/* The ZAP handler of the CURVE bus. See zap.h. */
#include "zap.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "plat/keys.h"
#include "platformd.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES_MAX 12
#define LOG_EVERY_MS 1000         /* refusals, handshake failures: a line a second at most */
#define PENDING_MAX 1024
#define PENDING_PER_EXPECTED 16   /* wait-queue places per host key expected */
#define PENDING_TICK_MS 50
#define AUTH_FILE_MAX (4 << 20)   /* bytes of bus.authorized_keys_file */

/* One kind of event a flood can repeat (a refusal, a failed handshake):
 * the first is logged at once, later ones within LOG_EVERY_MS are counted
 * and summed up in one line when that second is over (zap->log_timer). */
typedef struct {
    uint64_t last_ms;   /* last line written, 0 = never */
    unsigned unlogged;  /* events since, not logged */
    char last[256];     /* the last unlogged event's details */
} log_limit_t;

/* A request for a key not (yet) admitted, answered when the key is
 * admitted or its grace time is over. */
typedef struct {
    char rid[256], reqid[256];
    size_t rid_len, reqid_len;
    char key[PLAT_KEY_Z85_LEN + 1];
    char addr[128];
    uint64_t deadline_ms;
} zap_pending_t;

/* A hostboot whose REGISTER report (listing its hosts with their keys) is
 * awaited: since platformd started, or since the hostboot's key was last
 * admitted (it (re)connected). Hosts that outlived a platformd restart
 * reconnect at about the same time as their hostboot and may come first. */
typedef struct {
    uint64_t since_ms;
} awaited_report_t;

typedef enum { KEY_AUTHORIZED, KEY_HOST } key_kind_t;

typedef struct {
    char id[PLAT_ID_MAX + 1];
    key_kind_t kind;
    char hostboot[PLAT_ID_MAX + 1]; /* KEY_HOST: who reported it */
} key_entry_t;

struct pd_zap {
    pd_t *pd;
    plat_keypair_t server;
    zsock_t *rep;             /* ROUTER: answers may be deferred */
    plat_uvzmq_t *watch;
    zap_pending_t *pending;
    size_t n_pending;
    uv_timer_t *tick;         /* expires pending requests; closed by its callback */
    zsock_t *mon;             /* PAIR end of the ROUTER's monitor */
    plat_uvzmq_t *mon_watch;
    bool monitoring;
    zhashx_t *by_key;         /* Z85 public key -> key_entry_t* (owned) */
    zhashx_t *host_keys;      /* host id -> Z85 key (owned string) */
    char auth_path[4096];
    struct timespec auth_mtime;
    ino_t auth_ino;
    off_t auth_size;
    bool auth_seen;
    struct {
        struct timespec mtime;
        ino_t ino;
        off_t size;
        int err;
        bool set;
    } auth_bad;               /* the last file refused: not re-read (nor logged) until it changes */
    unsigned expected_hosts;  /* START requests whose answer (with the key) is awaited */
    zhashx_t *awaited;        /* hostboot id -> awaited_report_t (owned) */
    log_limit_t refusal_log, handshake_log;
    uv_timer_t *log_timer;    /* writes the per-second summaries; closed by its callback */
    pd_zap_stats_t st;
};

static void *dup_str(const void *s) { return strdup(s); }

static void free_entry(void **item)
{
    free(*item);
    *item = NULL;
}

/* ---- authorized keys file ------------------------------------------------ */

static void remove_authorized(pd_zap_t *z)
{
    zlistx_t *keys = zhashx_keys(z->by_key);
    for (const char *k = keys ? zlistx_first(keys) : NULL; k; k = zlistx_next(keys)) {
        key_entry_t *e = zhashx_lookup(z->by_key, k);
        if (e && e->kind == KEY_AUTHORIZED)
            zhashx_delete(z->by_key, k);
    }
    zlistx_destroy(&keys);
    z->st.authorized_keys = 0;
}

/* (Re)load the authorized keys. A missing file authorizes nobody; a file
 * others may write, or a malformed one, is refused naming the file (at
 * start: platformd does not start; later: the previous table stays). */
static bool same_version(const struct stat *st, ino_t ino, off_t size, struct timespec mtime)
{
    return st->st_ino == ino && st->st_size == size && st->st_mtim.tv_sec == mtime.tv_sec &&
           st->st_mtim.tv_nsec == mtime.tv_nsec;
}

/* Remember a refused version of the file: every unknown key re-checks the
 * file (a dev host may just have been authorized), and a flood of them must
 * not re-parse and re-log a broken file each time. */
static int auth_refused(pd_zap_t *z, const struct stat *st, int err)
{
    z->auth_bad.set = true;
    z->auth_bad.ino = st->st_ino;
    z->auth_bad.size = st->st_size;
    z->auth_bad.mtime = st->st_mtim;
    z->auth_bad.err = err;
    return err;
}

static int load_authorized(pd_zap_t *z, bool at_start)
{
    struct stat st;
    if (stat(z->auth_path, &st) != 0) {
        int e = errno;
        if (e != ENOENT) {
            /* Logged once per distinct error, not per unknown key. */
            if (at_start || !z->auth_bad.set || z->auth_bad.err != -e) {
                plat_log_err("zap", "cannot read the authorized keys: %s file=%s", strerror(e),
                             z->auth_path);
                memset(&z->auth_bad, 0, sizeof z->auth_bad);
                z->auth_bad.set = true;
                z->auth_bad.err = -e;
            }
            return -e;
        }
        if (z->auth_seen || at_start)
            plat_log_warn("zap", "no authorized keys file: no hostboot or dev host can connect "
                                 "file=%s",
                          z->auth_path);
        remove_authorized(z);
        z->auth_seen = false;
        z->auth_bad.set = false;
        return 0;
    }
    if (z->auth_seen && same_version(&st, z->auth_ino, z->auth_size, z->auth_mtime))
        return 0; /* unchanged */
    if (!at_start && z->auth_bad.set && z->auth_bad.err != 0 &&
        same_version(&st, z->auth_bad.ino, z->auth_bad.size, z->auth_bad.mtime))
        return z->auth_bad.err; /* the version refused already */
    /* Check what is read: open, then fstat the descriptor (a path swapped
     * after a stat would otherwise be read unchecked). Non-blocking: a FIFO
     * there must not hang the loop. */
    int fd = open(z->auth_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        plat_log_err("zap", "cannot read the authorized keys: %s file=%s", strerror(e),
                     z->auth_path);
        return -e;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022)) {
        close(fd);
        plat_log_err("zap", "authorized keys file refused: it must be a regular file owned by "
                            "uid %d and writable by nobody else (mode %04o, uid %d) file=%s",
                     (int)geteuid(), (unsigned)(st.st_mode & 07777), (int)st.st_uid,
                     z->auth_path);
        return auth_refused(z, &st, -EPERM);
    }
    if (st.st_size > AUTH_FILE_MAX) {
        close(fd);
        plat_log_err("zap", "authorized keys file refused: larger than %d bytes (%lld) file=%s",
                     AUTH_FILE_MAX, (long long)st.st_size, z->auth_path);
        return auth_refused(z, &st, -EFBIG);
    }
    json_error_t jerr;
    json_t *root = json_loadfd(fd, 0, &jerr);
    close(fd);
    if (!json_is_object(root)) {
        plat_log_err("zap", "authorized keys file is not a JSON object {id: key}: %s file=%s "
                            "line=%d",
                     root ? "not an object" : jerr.text, z->auth_path, jerr.line);
        json_decref(root);
        return auth_refused(z, &st, -EINVAL);
    }
    /* Validate all before replacing anything. */
    const char *id;
    json_t *v;
    json_object_foreach(root, id, v)
    {
        plat_id_kind_t k = plat_id_kind(id);
        if ((k != PLAT_ID_HOSTBOOT && k != PLAT_ID_HOST) || !json_is_string(v) ||
            !plat_key_z85_valid(json_string_value(v))) {
            plat_log_err("zap", "authorized keys file: entry \"%.80s\" must map a hostboot-<name> "
                                "or host-<uuid> id to a Z85 public key file=%s",
                         id, z->auth_path);
            json_decref(root);
            return auth_refused(z, &st, -EINVAL);
        }
    }
    remove_authorized(z);
    json_object_foreach(root, id, v)
    {
        const char *key = json_string_value(v);
        key_entry_t *old = zhashx_lookup(z->by_key, key);
        if (old) {
            plat_log_err("zap", "authorized key of %s is already admitted as %s: ignored file=%s",
                         id, old->id, z->auth_path);
            continue;
        }
        key_entry_t *e = calloc(1, sizeof *e);
        if (!e)
            break;
        snprintf(e->id, sizeof e->id, "%s", id);
        e->kind = KEY_AUTHORIZED;
        zhashx_insert(z->by_key, key, e);
        z->st.authorized_keys++;
    }
    json_decref(root);
    z->auth_seen = true;
    z->auth_bad.set = false;
    z->auth_ino = st.st_ino;
    z->auth_size = st.st_size;
    z->auth_mtime = st.st_mtim;
    plat_log_info("zap", "authorized keys loaded keys=%zu file=%s", z->st.authorized_keys,
                  z->auth_path);
    return 0;
}

/* ---- flood-proof logging ------------------------------------------------- */

static void on_log_timer(uv_timer_t *t);

/* True when the event is to be logged now; otherwise it is counted (with
 * `detail`) for the summary line, and the summary timer armed. */
static bool log_now(pd_zap_t *z, log_limit_t *l, const char *detail)
{
    uint64_t now = plat_mono_ms();
    if (!l->last_ms || now - l->last_ms >= LOG_EVERY_MS) {
        l->last_ms = now;
        return true;
    }
    l->unlogged++;
    snprintf(l->last, sizeof l->last, "%s", detail);
    if (z->log_timer && !uv_is_active((uv_handle_t *)z->log_timer))
        uv_timer_start(z->log_timer, on_log_timer, l->last_ms + LOG_EVERY_MS - now, 0);
    return false;
}

/* Summary lines for the limiters whose second is over (all when `force`);
 * the timer re-armed for the others. */
static void flush_summaries(pd_zap_t *z, bool force)
{
    uint64_t now = plat_mono_ms();
    uint64_t next = 0; /* ms until the earliest summary still due */
    log_limit_t *l = &z->refusal_log;
    if (l->unlogged && (force || now - l->last_ms >= LOG_EVERY_MS)) {
        plat_log_warn("zap", "connection refused: %s (and %u more refusals not logged in the "
                             "last second) refused_total=%llu",
                      l->last, l->unlogged - 1, (unsigned long long)z->st.refused);
        l->unlogged = 0;
        l->last_ms = now;
    } else if (l->unlogged) {
        next = l->last_ms + LOG_EVERY_MS - now;
    }
    l = &z->handshake_log;
    if (l->unlogged && (force || now - l->last_ms >= LOG_EVERY_MS)) {
        plat_log_warn("zap", "bus handshake failed (no CURVE, wrong server key, or not ZMTP) "
                             "%u times not logged in the last second, last: %s "
                             "handshake_failed_total=%llu",
                      l->unlogged, l->last, (unsigned long long)z->st.handshake_failed);
        l->unlogged = 0;
        l->last_ms = now;
    } else if (l->unlogged) {
        uint64_t due = l->last_ms + LOG_EVERY_MS - now;
        next = next && next < due ? next : due;
    }
    if (next && z->log_timer && !force)
        uv_timer_start(z->log_timer, on_log_timer, next, 0);
}

static void on_log_timer(uv_timer_t *t) { flush_summaries(t->data, false); }

static void on_handle_closed(uv_handle_t *h) { free(h); }

/* ---- ZAP requests --------------------------------------------------------- */

static void refused_log(pd_zap_t *z, const char *why, const char *address, const char *key)
{
    z->st.refused++;
    char detail[256];
    snprintf(detail, sizeof detail, "%s address=%s key=%s", why, address, key);
    if (log_now(z, &z->refusal_log, detail))
        plat_log_warn("zap", "connection refused: %s refused_total=%llu", detail,
                      (unsigned long long)z->st.refused);
}

static void zap_reply(pd_zap_t *z, const char *rid, size_t rid_len, const char *request_id,
                      size_t request_id_len, const char *status, const char *text,
                      const char *user_id)
{
    void *s = zsock_resolve(z->rep);
    zmq_send(s, rid, rid_len, ZMQ_SNDMORE);
    zmq_send(s, "", 0, ZMQ_SNDMORE);
    zmq_send(s, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(s, request_id, request_id_len, ZMQ_SNDMORE);
    zmq_send(s, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(s, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(s, user_id, strlen(user_id), ZMQ_SNDMORE);
    zmq_send(s, "", 0, 0);
    plat_uvzmq_kick(z->watch);
}

/* ---- what may still be admitted -------------------------------------------- */

/* Await `hostboot_id`'s REGISTER report from now (for auth_grace_ms). */
static void await_report(pd_zap_t *z, const char *hostboot_id, uint64_t now)
{
    if (!z->pd->cfg->bus.auth_grace_ms)
        return;
    awaited_report_t *a = zhashx_lookup(z->awaited, hostboot_id);
    if (!a) {
        a = calloc(1, sizeof *a);
        if (!a)
            return;
        zhashx_insert(z->awaited, hostboot_id, a);
    }
    a->since_ms = now;
}

/* Is some hostboot's REGISTER report (with its hosts' keys) still awaited?
 * Forgets those that reported since, or whose grace time is over. Costs
 * nothing while none is awaited (the common case, and any flood's). */
static bool reports_awaited(pd_zap_t *z, uint64_t now)
{
    if (!zhashx_size(z->awaited))
        return false;
    uint64_t grace = (uint64_t)z->pd->cfg->bus.auth_grace_ms;
    zlistx_t *ids = zhashx_keys(z->awaited);
    bool any = false;
    for (const char *id = ids ? zlistx_first(ids) : NULL; id; id = zlistx_next(ids)) {
        const awaited_report_t *a = zhashx_lookup(z->awaited, id);
        const pd_endpoint_t *ep = z->pd->reg ? pd_registry_find(z->pd->reg, id) : NULL;
        bool reported = ep && ep->kind == PD_EP_HOSTBOOT && ep->last_report_ms >= a->since_ms;
        if (reported || now >= a->since_ms + grace)
            zhashx_delete(z->awaited, id);
        else
            any = true;
    }
    zlistx_destroy(&ids);
    return any;
}

/* How many unknown keys may wait now: none unless a host key is expected
 * (a START answer, or a hostboot's REGISTER report, pending), then a small
 * multiple of what is expected. */
static size_t pending_cap(pd_zap_t *z, uint64_t now)
{
    if (!z->pd->cfg->bus.auth_grace_ms)
        return 0;
    if (reports_awaited(z, now))
        return PENDING_MAX; /* a restart: every host of the hostboot may reconnect */
    size_t cap = (size_t)z->expected_hosts * PENDING_PER_EXPECTED;
    return cap < PENDING_MAX ? cap : PENDING_MAX;
}

static void admit(pd_zap_t *z, const zap_pending_t *r, const key_entry_t *e)
{
    z->st.admitted++;
    z->pd->metrics.bus_auth_admitted++;
    plat_log_debug("zap", "admitted id=%s address=%s key=%s", e->id, r->addr, r->key);
    /* A hostboot (re)connecting reports its hosts (and their keys) next. */
    if (e->kind == KEY_AUTHORIZED && plat_id_kind(e->id) == PLAT_ID_HOSTBOOT)
        await_report(z, e->id, plat_mono_ms());
    zap_reply(z, r->rid, r->rid_len, r->reqid, r->reqid_len, "200", "OK", e->id);
}

static void refuse(pd_zap_t *z, const zap_pending_t *r, const char *why)
{
    refused_log(z, why, r->addr, r->key);
    z->pd->metrics.bus_auth_refused++;
    zap_reply(z, r->rid, r->rid_len, r->reqid, r->reqid_len, "400", why, "");
}

/* Answer what can be answered: admitted keys now; 400 for those whose
 * grace time is over, and for the newest beyond what may wait now (all of
 * them once no host key is expected any more). */
static void settle_pending(pd_zap_t *z, bool reload)
{
    if (!z->n_pending)
        return;
    if (reload)
        load_authorized(z, false);
    uint64_t now = plat_mono_ms();
    size_t cap = pending_cap(z, now);
    size_t j = 0;
    for (size_t i = 0; i < z->n_pending; i++) {
        zap_pending_t *r = &z->pending[i];
        key_entry_t *e = zhashx_lookup(z->by_key, r->key);
        if (e)
            admit(z, r, e);
        else if (now >= r->deadline_ms)
            refuse(z, r, "unknown key (not reported within bus.auth_grace_ms)");
        else if (j >= cap)
            refuse(z, r, "unknown key (no host key expected any more)");
        else
            z->pending[j++] = *r;
    }
    z->n_pending = j;
    z->st.pending = j;
    if (!j)
        uv_timer_stop(z->tick);
}

static void on_tick(uv_timer_t *t) { settle_pending(t->data, true); }

static size_t frame_copy(zmq_msg_t *f, char *out, size_t size)
{
    size_t n = zmq_msg_size(f) < size ? zmq_msg_size(f) : size - 1;
    memcpy(out, zmq_msg_data(f), n);
    out[n] = 0;
    return n;
}

static int on_zap_readable(void *arg)
{
    pd_zap_t *z = arg;
    void *s = zsock_resolve(z->rep);
    zmq_msg_t f[ZAP_FRAMES_MAX];
    size_t n = 0;
    bool more = true;
    int rc = 1;
    while (more) {
        zmq_msg_t tmp;
        zmq_msg_init(&tmp);
        if (zmq_msg_recv(&tmp, s, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(&tmp);
            rc = n == 0 && e == EAGAIN ? 0 : -e;
            break;
        }
        more = zmq_msg_more(&tmp);
        if (n < ZAP_FRAMES_MAX)
            f[n++] = tmp;
        else
            zmq_msg_close(&tmp);
    }
    if (rc <= 0 && n == 0)
        return rc;
    /* [peer][""] version, request id, domain, address, identity, mechanism,
     * credentials */
    zap_pending_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.key, sizeof r.key, "-");
    char mech[16] = "", domain[64] = "", version[8] = "";
    if (n >= 1)
        r.rid_len = frame_copy(&f[0], r.rid, sizeof r.rid);
    if (n >= 3)
        frame_copy(&f[2], version, sizeof version);
    if (n >= 4)
        r.reqid_len = frame_copy(&f[3], r.reqid, sizeof r.reqid);
    if (n >= 5)
        frame_copy(&f[4], domain, sizeof domain);
    if (n >= 6)
        frame_copy(&f[5], r.addr, sizeof r.addr);
    if (n >= 8)
        frame_copy(&f[7], mech, sizeof mech);
    bool ok_shape = n == 9 && zmq_msg_size(&f[1]) == 0 && strcmp(version, "1.0") == 0 &&
                    strcmp(mech, "CURVE") == 0 && strcmp(domain, PLAT_ZAP_DOMAIN) == 0 &&
                    plat_key_from_bin(zmq_msg_data(&f[8]), zmq_msg_size(&f[8]), r.key) == 0;
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    if (n < 2)
        return 1; /* not even an envelope: nothing to answer */
    if (!ok_shape) {
        refuse(z, &r, "bad request");
        return 1;
    }
    key_entry_t *e = zhashx_lookup(z->by_key, r.key);
    if (!e && load_authorized(z, false) == 0)
        e = zhashx_lookup(z->by_key, r.key);
    if (e) {
        admit(z, &r, e);
        return 1;
    }
    /* A spawned host may connect before its hostboot's answer (with its
     * key) reaches us, and after a platform restart before its hostboot
     * re-registered: libzmq never retries a refused handshake (the client
     * socket gives that endpoint up), so such a key waits a little for its
     * host to be reported -- but only while a host key is expected, and
     * only a few per expected key: anyone who has the platform's public key
     * can make up keys, and must not fill the queue for the real hosts. */
    uint64_t now = plat_mono_ms();
    size_t cap = pending_cap(z, now);
    if (!cap) {
        z->st.refused_unexpected++;
        refuse(z, &r, "unknown key (no host key expected)");
        return 1;
    }
    if (z->n_pending >= cap) {
        z->st.refused_queue_full++;
        refuse(z, &r, "unknown key (wait queue full)");
        return 1;
    }
    r.deadline_ms = now + (uint64_t)z->pd->cfg->bus.auth_grace_ms;
    z->pending[z->n_pending++] = r;
    z->st.pending = z->n_pending;
    if (!uv_is_active((uv_handle_t *)z->tick))
        uv_timer_start(z->tick, on_tick, PENDING_TICK_MS, PENDING_TICK_MS);
    return 1;
}

/* ---- handshake monitor ---------------------------------------------------- */

#define MONITOR_EVENTS                                                                        \
    (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |            \
     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

static int on_monitor_readable(void *arg)
{
    pd_zap_t *z = arg;
    void *s = zsock_resolve(z->mon);
    zmq_msg_t ev, addr;
    zmq_msg_init(&ev);
    if (zmq_msg_recv(&ev, s, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&ev);
        return e == EAGAIN ? 0 : -e;
    }
    uint16_t event = 0;
    uint32_t value = 0;
    if (zmq_msg_size(&ev) >= 6) {
        memcpy(&event, zmq_msg_data(&ev), 2);
        memcpy(&value, (const uint8_t *)zmq_msg_data(&ev) + 2, 4);
    }
    bool more = zmq_msg_more(&ev);
    zmq_msg_close(&ev);
    char where[128] = "";
    if (more) {
        zmq_msg_init(&addr);
        if (zmq_msg_recv(&addr, s, ZMQ_DONTWAIT) >= 0)
            snprintf(where, sizeof where, "%.*s", (int)zmq_msg_size(&addr),
                     (const char *)zmq_msg_data(&addr));
        zmq_msg_close(&addr);
    }
    if (event & (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)) {
        z->st.handshake_failed++;
        z->pd->metrics.bus_handshake_failed++;
        char detail[200];
        snprintf(detail, sizeof detail, "event=0x%x detail=0x%x endpoint=%s", (unsigned)event,
                 (unsigned)value, where);
        if (log_now(z, &z->handshake_log, detail))
            plat_log_warn("zap", "bus handshake failed (no CURVE, wrong server key, or not ZMTP) "
                                 "%s handshake_failed_total=%llu",
                          detail, (unsigned long long)z->st.handshake_failed);
    }
    /* HANDSHAKE_FAILED_AUTH: ZAP refused it, already counted there. */
    return 1;
}

int pd_zap_monitor_start(pd_t *pd)
{
    pd_zap_t *z = pd->zap;
    if (!z || !pd->bus)
        return 0;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://plat-bus-monitor-%p", (void *)z);
    void *router = plat_endpoint_handle(plat_bus_endpoint(pd->bus));
    if (zmq_socket_monitor(router, ep, MONITOR_EVENTS) != 0) {
        plat_log_warn("zap", "no handshake monitor: %s", strerror(errno));
        return 0; /* counting only: not fatal */
    }
    z->monitoring = true;
    z->mon = zsock_new(ZMQ_PAIR);
    if (!z->mon || zmq_connect(zsock_resolve(z->mon), ep) != 0) {
        plat_log_warn("zap", "no handshake monitor: cannot connect %s", ep);
        return 0;
    }
    z->mon_watch = plat_uvzmq_new(pd->loop, zsock_resolve(z->mon), 0, on_monitor_readable, z);
    return 0;
}

void pd_zap_monitor_stop(pd_t *pd)
{
    pd_zap_t *z = pd->zap;
    if (!z)
        return;
    plat_uvzmq_close(&z->mon_watch);
    if (z->monitoring && pd->bus)
        zmq_socket_monitor(plat_endpoint_handle(plat_bus_endpoint(pd->bus)), NULL, 0);
    z->monitoring = false;
    zsock_destroy(&z->mon);
}

/* ---- lifetime ------------------------------------------------------------- */

static void zap_free(pd_zap_t *z)
{
    if (z->tick)
        uv_close((uv_handle_t *)z->tick, on_handle_closed);
    if (z->log_timer) {
        flush_summaries(z, true); /* what the last second refused is not lost */
        uv_close((uv_handle_t *)z->log_timer, on_handle_closed);
    }
    free(z->pending);
    plat_uvzmq_close(&z->watch);
    zsock_destroy(&z->rep);
    zhashx_destroy(&z->by_key);
    zhashx_destroy(&z->host_keys);
    zhashx_destroy(&z->awaited);
    plat_keys_wipe(&z->server);
    free(z);
}

int pd_zap_start(pd_t *pd)
{
    const pd_config_t *cfg = pd->cfg;
    if (!cfg->bus.curve) {
        plat_log_warn("zap", "bus.curve is off: the bus is plaintext and unauthenticated — any "
                             "local process can connect and claim any id");
        return 0;
    }
    pd_zap_t *z = calloc(1, sizeof *z);
    if (!z)
        return -ENOMEM;
    z->pd = pd;
    char why[512];
    int rc = plat_keys_load_secret(cfg->bus.secret_key_file, &z->server, why, sizeof why);
    if (rc < 0) {
        plat_log_err("zap", "cannot use the platform's secret key: %s (create it with "
                            "`platformctl keygen --secret %s --public <file>`)",
                     why, cfg->bus.secret_key_file);
        free(z);
        return rc;
    }
    snprintf(z->auth_path, sizeof z->auth_path, "%s", cfg->bus.authorized_keys_file);
    z->by_key = zhashx_new();
    z->host_keys = zhashx_new();
    z->awaited = zhashx_new();
    if (!z->by_key || !z->host_keys || !z->awaited) {
        zap_free(z);
        return -ENOMEM;
    }
    zhashx_set_destructor(z->awaited, free_entry);
    zhashx_set_destructor(z->by_key, free_entry);
    zhashx_set_destructor(z->host_keys, free_entry);
    zhashx_set_duplicator(z->host_keys, dup_str);
    rc = load_authorized(z, true);
    if (rc < 0) {
        zap_free(z);
        return rc;
    }
    z->pending = calloc(PENDING_MAX, sizeof *z->pending);
    z->tick = calloc(1, sizeof *z->tick);
    z->log_timer = calloc(1, sizeof *z->log_timer);
    if (!z->pending || !z->tick || !z->log_timer) {
        free(z->tick);
        z->tick = NULL;
        free(z->log_timer);
        z->log_timer = NULL;
        zap_free(z);
        return -ENOMEM;
    }
    uv_timer_init(pd->loop, z->tick);
    z->tick->data = z;
    uv_timer_init(pd->loop, z->log_timer);
    z->log_timer->data = z;
    /* Hosts that outlived a previous platformd reconnect now, maybe before
     * their hostboot re-registered with their keys: await every authorized
     * hostboot's report (for auth_grace_ms, or until it came). */
    uint64_t now = plat_mono_ms();
    for (key_entry_t *e = zhashx_first(z->by_key); e; e = zhashx_next(z->by_key))
        if (e->kind == KEY_AUTHORIZED && plat_id_kind(e->id) == PLAT_ID_HOSTBOOT)
            await_report(z, e->id, now);
    /* A ROUTER, not a REP: an answer may wait (auth_grace_ms) while later
     * requests are answered. libzmq's ZAP requests carry the empty
     * delimiter a ROUTER needs. */
    z->rep = zsock_new(ZMQ_ROUTER);
    if (!z->rep || zmq_bind(zsock_resolve(z->rep), ZAP_ENDPOINT) != 0) {
        rc = -(errno ? errno : ENOMEM);
        plat_log_err("zap", "cannot bind the ZAP handler: %s endpoint=%s", strerror(-rc),
                     ZAP_ENDPOINT);
        zap_free(z);
        return rc;
    }
    z->watch = plat_uvzmq_new(pd->loop, zsock_resolve(z->rep), 0, on_zap_readable, z);
    if (!z->watch) {
        zap_free(z);
        return -ENOMEM;
    }
    pd->zap = z;
    plat_log_notice("zap", "bus secured with CURVE public_key=%s authorized_keys=%zu file=%s",
                    z->server.public_z85, z->st.authorized_keys, z->auth_path);
    return 0;
}

void pd_zap_stop(pd_t *pd)
{
    if (!pd->zap)
        return;
    pd_zap_monitor_stop(pd);
    zap_free(pd->zap);
    pd->zap = NULL;
}

const char *pd_zap_secret(const pd_t *pd) { return pd->zap ? pd->zap->server.secret_z85 : NULL; }

int pd_zap_admit_host(pd_t *pd, const char *host_id, const uint8_t *key, size_t len,
                      const char *hostboot)
{
    pd_zap_t *z = pd->zap;
    if (!z)
        return 0;
    char z85[PLAT_KEY_Z85_LEN + 1];
    if (plat_id_kind(host_id) != PLAT_ID_HOST || plat_key_from_bin(key, len, z85) != 0) {
        plat_log_warn("zap", "host key not admitted: not a host id and a 32-byte key id=%s "
                             "hostboot=%s key_len=%zu",
                      host_id, hostboot, len);
        return -EINVAL;
    }
    /* A hostboot speaks for its own hosts only. */
    const pd_endpoint_t *ep = pd_registry_find(pd->reg, host_id);
    if (ep && (ep->kind != PD_EP_HOST || strcmp(ep->hostboot, hostboot) != 0)) {
        plat_log_err("zap", "host key not admitted: the host is not this hostboot's id=%s "
                            "hostboot=%s owner=%s",
                     host_id, hostboot, ep->hostboot[0] ? ep->hostboot : "-");
        return -EPERM;
    }
    key_entry_t *e = zhashx_lookup(z->by_key, z85);
    if (e && strcmp(e->id, host_id) == 0)
        return 0; /* known already (re-registration) */
    if (e) {
        plat_log_err("zap", "host key not admitted: the key is already admitted as %s id=%s "
                            "hostboot=%s",
                     e->id, host_id, hostboot);
        return -EEXIST;
    }
    /* One key per host: a new one replaces the old. */
    pd_zap_forget_host(pd, host_id);
    e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    snprintf(e->id, sizeof e->id, "%s", host_id);
    snprintf(e->hostboot, sizeof e->hostboot, "%s", hostboot);
    e->kind = KEY_HOST;
    zhashx_insert(z->by_key, z85, e);
    zhashx_insert(z->host_keys, host_id, z85);
    z->st.host_keys = zhashx_size(z->host_keys);
    settle_pending(z, false); /* it may be waiting already */
    plat_log_info("zap", "host key admitted id=%s hostboot=%s key=%s", host_id, hostboot, z85);
    return 0;
}

void pd_zap_forget_host(pd_t *pd, const char *host_id)
{
    pd_zap_t *z = pd->zap;
    if (!z)
        return;
    const char *k = zhashx_lookup(z->host_keys, host_id);
    if (!k)
        return;
    key_entry_t *e = zhashx_lookup(z->by_key, k);
    if (e && e->kind == KEY_HOST && strcmp(e->id, host_id) == 0)
        zhashx_delete(z->by_key, k);
    plat_log_debug("zap", "host key forgotten id=%s key=%s", host_id, k);
    if (pd->bus)
        plat_bus_forget_peer(pd->bus, host_id); /* and its route: nobody holds that key now */
    zhashx_delete(z->host_keys, host_id);
    z->st.host_keys = zhashx_size(z->host_keys);
}

pd_zap_stats_t pd_zap_stats(const pd_t *pd)
{
    pd_zap_stats_t none = {0};
    return pd->zap ? pd->zap->st : none;
}

void pd_zap_expect_host(pd_t *pd)
{
    pd_zap_t *z = pd->zap;
    if (!z)
        return;
    z->expected_hosts++;
    z->st.expected_hosts = z->expected_hosts;
}

void pd_zap_expect_done(pd_t *pd)
{
    pd_zap_t *z = pd->zap;
    if (!z)
        return;
    if (z->expected_hosts)
        z->expected_hosts--;
    else
        plat_log_warn("zap", "host key expectation ended twice (a bug): ignored");
    z->st.expected_hosts = z->expected_hosts;
    settle_pending(z, false); /* what waited for it alone is refused now */
}
