/* libcurl's multi interface on the libuv loop (see curlmulti.h).
 *
 * curl tells us which sockets to watch (socket callback) and when to call
 * it back (timer callback); we answer with curl_multi_socket_action from
 * uv_poll and uv_timer callbacks, then drain curl_multi_info_read for
 * finished transfers. curl must never be re-entered from its own
 * callbacks, so the timer callback only (re)arms a uv_timer. */
#include "curlmulti.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "platformd.h"
#include "websvc.h"

/* One socket curl watches. Closed (and freed) when curl says REMOVE. */
typedef struct {
    uv_poll_t poll;
    curl_socket_t fd;
    pd_curlm_t *m;
} sock_t;

/* One transfer in flight. */
typedef struct xfer {
    struct xfer *next, *prev;
    CURL *easy;
    pd_curlm_done_fn done;
    void *arg;
} xfer_t;

struct pd_curlm {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    xfer_t *xfers;
    size_t active;
    bool closing;
};

static void check_done(pd_curlm_t *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        xfer_t *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(m->multi, easy);
        if (!x)
            continue;
        if (x->prev)
            x->prev->next = x->next;
        else
            m->xfers = x->next;
        if (x->next)
            x->next->prev = x->prev;
        m->active--;
        pd_curlm_done_fn done = x->done;
        void *arg = x->arg;
        free(x);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        done(arg, easy, rc, false);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_t *s = p->data;
    pd_curlm_t *m = s->m;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(m->multi, s->fd, flags, &running);
    check_done(m);
}

static void on_timer(uv_timer_t *t)
{
    pd_curlm_t *m = t->data;
    int running;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(m);
}

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

/* CURLMOPT_SOCKETFUNCTION */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    pd_curlm_t *m = userp;
    sock_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_sock_closed);
            curl_multi_assign(m->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->fd = fd;
        s->m = m;
        if (uv_poll_init_socket(m->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        curl_multi_assign(m->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: only arm the uv timer (no curl calls from here). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    pd_curlm_t *m = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&m->timer);
    else
        uv_timer_start(&m->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

pd_curlm_t *pd_curlm_new(uv_loop_t *loop)
{
    pd_curlm_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->loop = loop;
    m->multi = curl_multi_init();
    if (!m->multi) {
        free(m);
        return NULL;
    }
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    return m;
}

int pd_curlm_add(pd_curlm_t *m, CURL *easy, pd_curlm_done_fn done, void *arg)
{
    if (!m || m->closing)
        return -ECANCELED;
    if (!easy || !done)
        return -EINVAL;
    xfer_t *x = calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    x->easy = easy;
    x->done = done;
    x->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
    CURLMcode mc = curl_multi_add_handle(m->multi, easy);
    if (mc != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
    }
    x->next = m->xfers;
    if (m->xfers)
        m->xfers->prev = x;
    m->xfers = x;
    m->active++;
    return 0;
}

static xfer_t *unlink_easy(pd_curlm_t *m, CURL *easy)
{
    for (xfer_t *x = m->xfers; x; x = x->next) {
        if (x->easy != easy)
            continue;
        if (x->prev)
            x->prev->next = x->next;
        else
            m->xfers = x->next;
        if (x->next)
            x->next->prev = x->prev;
        m->active--;
        curl_multi_remove_handle(m->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        return x;
    }
    return NULL;
}

void pd_curlm_cancel(pd_curlm_t *m, CURL *easy)
{
    if (!m || !easy)
        return;
    free(unlink_easy(m, easy));
}

size_t pd_curlm_active(const pd_curlm_t *m)
{
    return m ? m->active : 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    pd_curlm_t *m = h->data;
    free(m);
}

void pd_curlm_close(pd_curlm_t **mp)
{
    if (!mp || !*mp)
        return;
    pd_curlm_t *m = *mp;
    *mp = NULL;
    m->closing = true;
    /* A done callback may start more (refused: closing) or cancel others. */
    while (m->xfers) {
        xfer_t *x = m->xfers;
        CURL *easy = x->easy;
        unlink_easy(m, easy);
        pd_curlm_done_fn done = x->done;
        void *arg = x->arg;
        free(x);
        done(arg, easy, CURLE_ABORTED_BY_CALLBACK, true);
    }
    /* Sockets still watched get CURL_POLL_REMOVE from the cleanup. */
    curl_multi_cleanup(m->multi);
    m->multi = NULL;
    uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}

/* ---- module "curl" ---------------------------------------------------- */

int pd_curl_start(pd_t *pd)
{
    static bool global_done;
    if (!global_done) {
        CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK) {
            plat_log_err("curl", "curl_global_init failed: %s", curl_easy_strerror(rc));
            return -EIO;
        }
        global_done = true;
    }
    pd->curlm = pd_curlm_new(pd->loop);
    if (!pd->curlm)
        return -ENOMEM;
    int rc = pd_websvc_start(pd);
    if (rc < 0) {
        pd_curlm_close(&pd->curlm);
        return rc;
    }
    plat_log_debug("curl", "libcurl %s on the loop", curl_version_info(CURLVERSION_NOW)->version);
    return 0;
}

/* Web services first (their calls are answered 503), then every transfer
 * left (plugin requests: -ECANCELED). */
void pd_curl_stop(pd_t *pd)
{
    pd_websvc_stop(pd);
    pd_curlm_close(&pd->curlm);
}
