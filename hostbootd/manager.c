/* hostbootd's root object. */
#include "manager.h"

#include "plat/keys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

typedef struct {
    Plat__PlatformMessage *report;
    int rc;
} add_host_ctx_t;

/* Host.public_key: the 32 raw bytes of a Z85 key. */
static int set_public_key(Plat__Host *host, const char *z85)
{
    uint8_t *bin = malloc(PLAT_KEY_BIN_LEN);
    if (!bin)
        return -ENOMEM;
    if (plat_key_to_bin(z85, bin) != 0) {
        free(bin);
        return -EINVAL;
    }
    if (host->public_key.data)
        free(host->public_key.data);
    host->public_key.data = bin;
    host->public_key.len = PLAT_KEY_BIN_LEN;
    return 0;
}

static void add_host(const hb_host_info_t *h, void *arg)
{
    add_host_ctx_t *ctx = arg;
    if (ctx->rc == 0 && !h->stopping)
        ctx->rc = plat_msg_report_add_host(ctx->report, h->host_id, h->pid, h->language,
                                           h->version, h->mode);
    /* Its CURVE key: a restarted platform re-admits it from this report. */
    Plat__ReportMessage *r = ctx->report->host_boot->report;
    if (ctx->rc == 0 && !h->stopping && h->public_key && h->public_key[0] && r->n_hosts)
        ctx->rc = set_public_key(r->hosts[r->n_hosts - 1], h->public_key);
}

/* REGISTER report: who we are, what we can start, which hosts we own (so a
 * restarted platform learns them again). */
static Plat__PlatformMessage *build_registration(void *arg)
{
    hb_manager_t *m = arg;
    plat_runtime_t rts[m->cfg->n_runtimes ? m->cfg->n_runtimes : 1];
    for (size_t i = 0; i < m->cfg->n_runtimes; i++) {
        rts[i].language = m->cfg->runtimes[i].language;
        rts[i].version = m->cfg->runtimes[i].version;
    }
    add_host_ctx_t ctx = {
        plat_msg_hostboot_register(m->cfg->name, PLAT_VERSION, rts, m->cfg->n_runtimes), 0};
    if (ctx.report && m->spawner)
        hb_spawner_foreach(m->spawner, add_host, &ctx);
    /* Where the hosts' output goes, absolute, for `platformctl logs`
     * (docs/logging.md). */
    char cwd[2048] = "", dir[4096];
    if (m->cfg->log.dir[0] != '/' && !getcwd(cwd, sizeof cwd))
        cwd[0] = 0;
    size_t cl = strlen(cwd);
    snprintf(dir, sizeof dir, "%s%s%s/hosts", cwd, cl && cwd[cl - 1] != '/' ? "/" : "",
             m->cfg->log.dir);
    char *log_dir = ctx.report ? strdup(dir) : NULL;
    if (log_dir)
        ctx.report->host_boot->report->log_dir = log_dir;
    else if (ctx.report)
        ctx.rc = -ENOMEM;
    if (ctx.rc < 0)
        plat_envelope_free(&ctx.report);
    return ctx.report;
}

/* Every exit, expected or not, is reported to the platform at once. */
static void on_host_exit(const hb_exit_t *x, void *arg)
{
    hb_manager_t *m = arg;
    if (!m->link)
        return;
    Plat__PlatformMessage *r = plat_msg_hostboot_host_exited(
        m->cfg->name, x->host_id, x->pid, (int32_t)x->exit_status, x->term_signal);
    int rc = r ? plat_bus_send(plat_link_bus(m->link), PLAT_PLATFORM_ID, r) : -ENOMEM;
    if (rc < 0)
        plat_log_err("manager", "host exit not reported: %s host=%s pid=%d", strerror(-rc),
                     x->host_id, (int)x->pid);
    plat_envelope_free(&r);
}

static int reply(hb_manager_t *m, const Plat__PlatformMessage *req, Plat__PlatformMessage *resp)
{
    int rc = resp ? plat_bus_reply(plat_link_bus(m->link), req, resp) : -ENOMEM;
    if (rc < 0)
        plat_log_err("manager", "host lifecycle reply not sent: %s seq=%llu", strerror(-rc),
                     (unsigned long long)req->header->seq_no);
    plat_envelope_free(&resp);
    return rc;
}

static void on_lifecycle(hb_manager_t *m, const Plat__PlatformMessage *req)
{
    const Plat__HostLifeCycleRequestMessage *r = req->host_boot->host_life_cycle_request;
    const Plat__HostDescriptor *d = r->host;
    const char *id = d ? d->id : "";
    if (r->action == PLAT__HOST_LIFE_CYCLE_REQUEST_MESSAGE__ACTION__START) {
        char why[512];
        int32_t pid = 0;
        int rc = d ? hb_spawner_start(m->spawner, d->id, d->language, d->version, d->mode, &pid,
                                      why, sizeof why)
                   : (snprintf(why, sizeof why, "no host descriptor"), -EINVAL);
        if (rc < 0) {
            plat_log_warn("manager", "host not started: %s host=%s code=%d", why, id, rc);
            Plat__PlatformMessage *resp = plat_msg_host_lifecycle_response(
                id, 0, PLAT__HOST_STATE__HOST_STATE_EXITED, m->id, rc, "host not started", why);
            /* -EEXIST: a retry of a start whose answer was lost — the
             * running host's key goes with it, or it is never admitted. */
            const char *key = rc == -EEXIST ? hb_spawner_public_key(m->spawner, id) : NULL;
            Plat__HostLifeCycleResponseMessage *lr =
                resp ? resp->host_boot->host_life_cycle_response : NULL;
            if (key && lr && lr->host && set_public_key(lr->host, key) != 0)
                plat_envelope_free(&resp);
            rc = reply(m, req, resp);
            if (key) /* a host whose first answer was never sent still waits for its key */
                hb_spawner_release_key(m->spawner, id, rc == 0);
            return;
        }
        Plat__PlatformMessage *resp = plat_msg_host_lifecycle_response(
            id, pid, PLAT__HOST_STATE__HOST_STATE_STARTING, m->id, 0, NULL, NULL);
        /* The platform admits exactly this key as this host (ZAP). */
        const char *key = hb_spawner_public_key(m->spawner, id);
        Plat__HostLifeCycleResponseMessage *lr =
            resp ? resp->host_boot->host_life_cycle_response : NULL;
        if (key && lr && lr->host && set_public_key(lr->host, key) != 0)
            plat_envelope_free(&resp);
        /* Only once the platform has been sent the public key may the host
         * read its secret and connect (a host knocking first would be held
         * in the ZAP wait queue, which a flood of made-up keys can fill);
         * not sent, the platform could never admit it: no key, it exits. */
        rc = reply(m, req, resp);
        hb_spawner_release_key(m->spawner, id, rc == 0);
        return;
    }
    if (r->action == PLAT__HOST_LIFE_CYCLE_REQUEST_MESSAGE__ACTION__DELETE) {
        int rc = hb_spawner_delete(m->spawner, id, r->host_pid);
        if (rc < 0) {
            plat_log_warn("manager", "delete of an unknown host host=%s pid=%d", id,
                          (int)r->host_pid);
            reply(m, req,
                  plat_msg_host_lifecycle_response(id, r->host_pid,
                                                   PLAT__HOST_STATE__HOST_STATE_UNKNOWN, m->id, rc,
                                                   "no such host", id));
            return;
        }
        reply(m, req,
              plat_msg_host_lifecycle_response(id, r->host_pid,
                                               PLAT__HOST_STATE__HOST_STATE_STOPPING, m->id, 0,
                                               NULL, NULL));
        return;
    }
    reply(m, req,
          plat_msg_host_lifecycle_response(id, 0, PLAT__HOST_STATE__HOST_STATE_UNKNOWN, m->id,
                                           -EINVAL, "unknown host lifecycle action", NULL));
}

static void send_heartbeat(hb_manager_t *m)
{
    if (plat_link_state(m->link) != PLAT_LINK_REGISTERED)
        return;
    Plat__PlatformMessage *hb =
        plat_msg_hostboot_heartbeat(m->cfg->name, (uint32_t)hb_spawner_count(m->spawner),
                                plat_mono_ms() - m->started_ms);
    int rc = hb ? plat_bus_send(plat_link_bus(m->link), PLAT_PLATFORM_ID, hb) : -ENOMEM;
    if (rc < 0)
        plat_log_warn("manager", "heartbeat not sent: %s id=%s", strerror(-rc), m->id);
    plat_envelope_free(&hb);
}

static void on_heartbeat(uv_timer_t *t) { send_heartbeat(t->data); }

/* From the loop itself: a stuck loop stops the pings and systemd restarts
 * us (KillMode=process: the hosts stay). */
static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    sd_notify(0, "WATCHDOG=1");
}

/* The link's operator-facing events, logged as ours. */
static void on_link_log(plat_log_level_t level, const char *line, void *arg)
{
    (void)arg;
    plat_log(level, "link", "%s", line);
}

static void on_link_state(plat_link_state_t state, const char *platform_boot_id, void *arg)
{
    hb_manager_t *m = arg;
    if (state == PLAT_LINK_REGISTERED) {
        uint32_t every = plat_link_heartbeat_interval_ms(m->link);
        uv_timer_start(&m->heartbeat, on_heartbeat, every, every);
        sd_notifyf(0, "STATUS=registered with platform boot %s", platform_boot_id);
    } else {
        uv_timer_stop(&m->heartbeat);
        sd_notifyf(0, "STATUS=%s", plat_link_state_name(state));
    }
}

static void on_message(plat_bus_t *bus, const plat_bus_rx_t *rx, void *arg)
{
    hb_manager_t *m = arg;
    const Plat__PlatformMessage *msg = rx->msg;
    if (msg->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST &&
        msg->channel_case == PLAT__PLATFORM_MESSAGE__CHANNEL_HOST_BOOT &&
        msg->host_boot->body_case == PLAT__HOST_BOOT_MESSAGE__BODY_HOST_LIFE_CYCLE_REQUEST) {
        if (m->stopping) {
            plat_bus_reply_error(bus, msg, -ESHUTDOWN, "hostbootd is stopping", m->id);
            return;
        }
        on_lifecycle(m, msg);
        return;
    }
    plat_log_warn("manager", "message not handled by this hostbootd channel=%s kind=%d from=%s "
                             "seq=%llu id=%s",
                  plat_channel_name(msg->channel_case), (int)msg->header->kind,
                  msg->header->source->id, (unsigned long long)msg->header->seq_no, m->id);
    if (msg->header->kind == PLAT__MESSAGE_KIND__MESSAGE_KIND_REQUEST)
        plat_bus_reply_error(bus, msg, -EOPNOTSUPP, "not handled by hostbootd",
                             plat_channel_name(msg->channel_case));
}

static void on_closed(uv_handle_t *h)
{
    hb_manager_t *m = h->data;
    m->handles_open--;
}

static void on_signal(uv_signal_t *s, int signum)
{
    hb_manager_t *m = s->data;
    if (signum == SIGINT && ++m->sigint_count > 1) {
        plat_log_warn("manager", "second SIGINT: exiting at once");
        _exit(130);
    }
    plat_log_notice("manager", "%s received: stopping id=%s",
                    signum == SIGTERM ? "SIGTERM" : "SIGINT", m->id);
    hb_manager_stop(m);
}

int hb_manager_start(hb_manager_t *m, uv_loop_t *loop, const hb_config_t *cfg)
{
    memset(m, 0, sizeof *m);
    m->loop = loop;
    m->cfg = cfg;
    m->started_ms = plat_mono_ms();
    snprintf(m->id, sizeof m->id, "%s%s", PLAT_HOSTBOOT_PREFIX, cfg->name);
    int rc = plat_uuid_new(m->boot_id);
    if (rc < 0)
        return rc;
    /* CURVE: our key pair and the platform's public key, from files;
     * refused (naming the file) unless the secret one is 0600 and ours. */
    plat_keypair_t kp;
    char server_key[PLAT_KEY_Z85_LEN + 1] = "";
    memset(&kp, 0, sizeof kp);
    if (cfg->bus.curve) {
        char why[512];
        rc = plat_keys_load_secret(cfg->bus.secret_key_file, &kp, why, sizeof why);
        if (rc == 0)
            rc = plat_keys_load_public(cfg->platform.public_key_file, server_key, why,
                                       sizeof why);
        if (rc < 0) {
            plat_log_err("manager", "cannot use the bus keys: %s (create them with "
                                    "`platformctl keygen`, docs/security.md)",
                         why);
            plat_keys_wipe(&kp);
            return rc;
        }
        plat_log_notice("manager", "bus secured with CURVE public_key=%s platform_key=%s",
                        kp.public_z85, server_key);
    } else {
        plat_log_warn("manager", "bus.curve is off: plaintext bus, hosts get no keys");
    }
    plat_link_opts_t lo = {
        .identity = m->id,
        .platform_address = cfg->platform.endpoint,
        .endpoint = {.max_msg_size = (size_t)cfg->bus.max_msg_size,
                     .sndhwm = (int)cfg->bus.sndhwm,
                     .rcvhwm = (int)cfg->bus.rcvhwm,
                     .curve_secret = cfg->bus.curve ? kp.secret_z85 : NULL,
                     .curve_server_key = cfg->bus.curve ? server_key : NULL},
        .boot_id = m->boot_id,
        .register_timeout_ms = (uint32_t)cfg->reg.timeout_ms,
        .retry_initial_ms = (uint32_t)cfg->reg.retry_initial_ms,
        .retry_max_ms = (uint32_t)cfg->reg.retry_max_ms,
        .build_registration = build_registration,
        .on_state = on_link_state,
        .on_log = on_link_log,
        .on_message = on_message,
        .arg = m,
    };
    m->spawner = hb_spawner_new(loop, cfg, m->id, cfg->platform.endpoint, on_host_exit, m);
    if (!m->spawner) {
        rc = -errno;
        plat_log_err("manager", "cannot set up host spawning: %s", strerror(errno));
        plat_keys_wipe(&kp);
        return rc;
    }
    if (cfg->bus.curve)
        hb_spawner_set_platform_key(m->spawner, server_key);
    uv_timer_init(loop, &m->heartbeat);
    m->heartbeat.data = m;
    m->handles_open++;
    m->link = plat_link_new(loop, &lo);
    plat_keys_wipe(&kp); /* the socket has its copy */
    if (!m->link) {
        rc = -errno;
        plat_log_err("manager", "cannot connect to the platform: %s endpoint=%s",
                     strerror(errno), cfg->platform.endpoint);
        uv_close((uv_handle_t *)&m->heartbeat, on_closed);
        hb_spawner_destroy(&m->spawner);
        return rc;
    }
    size_t adopted = hb_spawner_adopt(m->spawner);
    if (adopted)
        plat_log_notice("manager", "adopted %zu hosts of the previous hostbootd", adopted);
    uv_signal_init(loop, &m->sig_term);
    uv_signal_init(loop, &m->sig_int);
    m->sig_term.data = m->sig_int.data = m;
    m->handles_open += 2;
    uv_signal_start(&m->sig_term, on_signal, SIGTERM);
    uv_signal_start(&m->sig_int, on_signal, SIGINT);
    uv_timer_init(loop, &m->watchdog);
    m->watchdog.data = m;
    m->handles_open++;
    uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec >= 2000)
        uv_timer_start(&m->watchdog, on_watchdog, wd_usec / 2000, wd_usec / 2000);
    sd_notify(0, "READY=1\nSTATUS=registering");
    plat_log_notice("manager", "hostbootd %s started id=%s boot_id=%s platform=%s runtimes=%zu",
                    PLAT_VERSION, m->id, m->boot_id, cfg->platform.endpoint, cfg->n_runtimes);
    if ((!cfg->hosts.user || !cfg->hosts.user[0]) && !cfg->hosts.landlock.enabled)
        plat_log_warn("manager", "plugin hosts run as hostbootd's own user (hosts.user is empty) "
                                 "without Landlock: plugin code can read every file this user "
                                 "can, bus keys and the API token included; set hosts.user to a "
                                 "dedicated user or enable hosts.landlock uid=%d",
                      (int)geteuid());
    else if (!cfg->hosts.user || !cfg->hosts.user[0])
        plat_log_notice("manager", "plugin hosts run as hostbootd's own user (hosts.user is "
                                   "empty); Landlock confines their files and signals, a "
                                   "dedicated user is still advised uid=%d",
                        (int)geteuid());
    return 0;
}

/* All hosts are gone (their exits reported): close everything else. */
static void on_hosts_stopped(void *arg)
{
    hb_manager_t *m = arg;
    hb_spawner_destroy(&m->spawner);
    plat_link_destroy(&m->link);
}

/* Hosts first — terminated, reaped and reported while the link is still
 * up — then the rest. */
void hb_manager_stop(hb_manager_t *m)
{
    if (m->stopping)
        return;
    m->stopping = true;
    sd_notify(0, "STOPPING=1");
    hb_spawner_stop_all(m->spawner, on_hosts_stopped, m);
    uv_close((uv_handle_t *)&m->heartbeat, on_closed);
    uv_close((uv_handle_t *)&m->watchdog, on_closed);
    uv_close((uv_handle_t *)&m->sig_term, on_closed);
    uv_close((uv_handle_t *)&m->sig_int, on_closed);
}
