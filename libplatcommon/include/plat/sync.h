/* Request/response synchronizer: pending requests keyed by (peer, seq_no),
 * each with a deadline. A reply resolves its entry once; a timeout fails it
 * with -ETIMEDOUT; a reply that finds no entry (late or unknown) is
 * reported as -ENOENT so the caller can log and drop it. No entry outlives
 * its callback. Loop thread only. */
#ifndef PLAT_SYNC_H
#define PLAT_SYNC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "platform.pb-c.h"

typedef struct plat_sync plat_sync_t;

/* Completion. status 0: `reply` is the reply (borrowed: valid only during
 * the call; it may carry header.error). status -ETIMEDOUT: no reply in
 * time; -ECANCELED: the synchronizer is shutting down. reply NULL then. */
typedef void (*plat_sync_cb)(int status, const Plat__PlatformMessage *reply, void *arg);

plat_sync_t *plat_sync_new(uv_loop_t *loop);

/* Every pending entry fails with -ECANCELED (callbacks run inside), then
 * handles are closed (memory freed once the loop runs). NULL-safe. */
void plat_sync_destroy(plat_sync_t **s);

/* Register a pending request. `peer` is copied. Returns 0, -EEXIST (same
 * (peer, seq) pending), -EINVAL, -ENOMEM. */
int plat_sync_add(plat_sync_t *s, const char *peer, uint64_t seq, uint32_t timeout_ms,
                  plat_sync_cb cb, void *arg);

/* Deliver a reply from `peer` for `seq`: runs the callback with status 0
 * and removes the entry. Returns 0, or -ENOENT when nothing was pending. */
int plat_sync_resolve(plat_sync_t *s, const char *peer, uint64_t seq,
                      const Plat__PlatformMessage *reply);

/* Fail one pending request now with `status` (e.g. -EHOSTUNREACH when the
 * send failed). Returns 0 or -ENOENT. */
int plat_sync_fail(plat_sync_t *s, const char *peer, uint64_t seq, int status);

/* Fail every pending request whose peer is `peer` (NULL = all). */
void plat_sync_fail_peer(plat_sync_t *s, const char *peer, int status);

size_t plat_sync_pending(const plat_sync_t *s);

/* ---- statistics (for /metrics and diag) ------------------------------- */

/* Upper bounds (seconds) of the latency histogram's finite buckets, in
 * increasing order; a last, implicit bucket is +Inf. */
#define PLAT_SYNC_BUCKETS 14
extern const double plat_sync_bucket_le[PLAT_SYNC_BUCKETS];

typedef struct {
    /* Requests answered by a reply (status 0), by time from plat_sync_add to
     * the reply: bucket[i] counts those with duration <= le[i] and > le[i-1]
     * (not cumulative); bucket[PLAT_SYNC_BUCKETS] those above every bound. */
    uint64_t bucket[PLAT_SYNC_BUCKETS + 1];
    uint64_t replies;   /* sum of bucket[] */
    uint64_t sum_ns;    /* total duration of those, nanoseconds */
    uint64_t timeouts;  /* completed with -ETIMEDOUT */
    uint64_t failed;    /* completed otherwise (plat_sync_fail*, -ECANCELED) */
    uint64_t added;     /* plat_sync_add successes */
} plat_sync_stats_t;

/* Counters since plat_sync_new (all zero for NULL). */
plat_sync_stats_t plat_sync_stats(const plat_sync_t *s);

/* Age in ms of the oldest pending request (0 when none). */
uint64_t plat_sync_oldest_pending_ms(const plat_sync_t *s);

/* Called by plat_sync_resolve with every reply that matched a pending
 * request, before its callback (platformd's tracing). NULL turns it off. */
typedef void (*plat_sync_reply_observer)(const char *peer, uint64_t seq,
                                         const Plat__PlatformMessage *reply, void *arg);
void plat_sync_set_reply_observer(plat_sync_t *s, plat_sync_reply_observer fn, void *arg);

#endif
