"""The Python plugin host process: its link to the platform and the bus
thread's loop — the twin of pluginhost/host.c with libplatcommon/link.c.

The main thread owns the socket and never runs plugin code: it registers
(Control.ready as a REQUEST, answered Control.register_ack), answers pings
with a pong (BUSY while a hook runs), notices a lost platform (silent for
heartbeat_miss intervals) or a restarted one (a ping with another boot id)
and re-registers with backoff, obeys Control.shutdown, hands Plugin and
Ability requests to the runner (plugins.Runner) and sends the plugins'
platform calls. Worker threads reach it through post() (a queue plus a
wake-up pipe the loop polls)."""

import errno
import os
import queue
import signal
import sys
import threading
import uuid

import zmq

from . import log
from .bus import Bus, PLATFORM_ID, REQUEST, mono_ms, pb, uuid_valid
from .plugins import Runner

LANGUAGE = "python"
RUNTIME_VERSION = "3"

REGISTERING, REGISTERED, LOST = "registering", "registered", "lost"

_control = pb["control"]
_common = pb["common"]
_platform = pb["platform"]


class _Call:
    """A platform call of a worker thread, completed on the bus thread."""

    __slots__ = ("event", "status", "reply", "why")

    def __init__(self):
        self.event = threading.Event()
        self.status = -errno.ETIMEDOUT
        self.reply = None
        self.why = ""

    def complete(self, status, reply, why=""):
        if self.event.is_set():
            return
        self.status, self.reply, self.why = status, reply, why
        self.event.set()


class Host:
    def __init__(self, host_id, platform, mode, dev, hostboot, platform_lost_exit_ms,
                 build_version, curve=None, register_timeout_ms=2000, retry_initial_ms=200,
                 retry_max_ms=5000):
        self.id = host_id
        self.platform = platform
        self.mode = mode
        self.dev = dev
        self.hostboot = hostboot or ""
        self.platform_lost_exit_ms = platform_lost_exit_ms
        self.build_version = build_version
        self.boot_id = str(uuid.uuid4())
        self.exit_code = 0
        self.stopping = False
        self.sigint_count = 0
        self.signalled = 0
        # link
        self.register_timeout_ms = register_timeout_ms
        self.retry_initial_ms = retry_initial_ms
        self.retry_max_ms = max(retry_max_ms, retry_initial_ms)
        self.state = REGISTERING
        self.platform_boot_id = ""
        self.interval_ms = 1000
        self.miss = 3
        self.backoff_ms = retry_initial_ms
        self.attempt_pending = False
        self.attempts = 0
        self.retry_at = None
        self.lost_exit_at = None
        self.last_rx = mono_ms()
        # cross-thread
        self.outbox = queue.SimpleQueue()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.calls = set()  # _Call in flight (bus thread)
        self.runner = Runner(self)
        self.bus = Bus(host_id, platform, self.boot_id, curve=curve)

    # ---- cross-thread -----------------------------------------------------------

    def post(self, fn):
        """Any thread: run fn() on the bus thread."""
        self.outbox.put(fn)
        try:
            os.write(self.wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # the pipe is full: the loop wakes anyway

    def call(self, m, timeout_ms):
        """Worker thread: send the REQUEST `m` to the platform and wait.
        Returns (status, reply, why): 0 with the REPLY, or a negative errno
        (-ENOTCONN, -ECANCELED, -ETIMEDOUT) and one line for humans."""
        c = _Call()
        self.post(lambda: self._start_call(c, m, timeout_ms))
        # The bus thread times the request out; the margin only guards
        # against a bus thread that never runs again.
        if not c.event.wait(timeout_ms / 1000.0 + 5.0):
            return -errno.ETIMEDOUT, None, "no answer from the platform within %d ms" % timeout_ms
        return c.status, c.reply, c.why

    def _start_call(self, c, m, timeout_ms):
        if self.stopping or self.bus is None:
            c.complete(-errno.ECANCELED, None, "the plugin host is stopping")
            return
        if self.state != REGISTERED:
            c.complete(-errno.ENOTCONN, None, "the plugin host is not registered with the "
                       "platform (%s)" % self.state)
            return

        def on_reply(status, reply):
            self.calls.discard(c)
            if status == -errno.ETIMEDOUT:
                c.complete(status, None, "no answer from the platform within %d ms" % timeout_ms)
            elif status == -errno.ECANCELED:
                c.complete(status, None, "the plugin host is stopping")
            elif status < 0:
                c.complete(status, None, os.strerror(-status))
            else:
                c.complete(0, reply)

        self.calls.add(c)
        rc = self.bus.request(PLATFORM_ID, m, timeout_ms, on_reply)
        if rc < 0:
            self.calls.discard(c)
            c.complete(rc, None, "cannot send to the platform: %s" % os.strerror(-rc))

    def _fail_calls(self, status, why):
        calls, self.calls = self.calls, set()
        for c in calls:
            c.complete(status, None, why)

    # ---- link -------------------------------------------------------------------

    def _build_registration(self):
        m = _platform.PlatformMessage()
        r = m.control.ready
        r.version = self.build_version
        r.dev = self.dev
        h = r.host
        h.id = self.id
        h.pid = os.getpid()
        h.descriptor.id = self.id
        h.descriptor.language = LANGUAGE
        h.descriptor.version = RUNTIME_VERSION
        h.descriptor.mode = self.mode
        h.hostboot = self.hostboot
        h.state = _common.HOST_STATE_READY
        # The instances it holds: a restarted platform can adopt them here.
        h.instances.extend(self.runner.loaded_instances())
        return m

    def _set_state(self, s):
        if self.state == s:
            return
        self.state = s
        if s != REGISTERED:
            # Calls in flight will not be answered by this registration.
            self._fail_calls(-errno.ENOTCONN, "the plugin host lost the platform")
        if not self.platform_lost_exit_ms or self.stopping:
            return
        if s == REGISTERED:
            self.lost_exit_at = None
        elif s == LOST:
            self.lost_exit_at = mono_ms() + self.platform_lost_exit_ms

    def _schedule_retry(self):
        if self.stopping:
            return
        wait = self.backoff_ms
        self.backoff_ms = min(self.backoff_ms * 2, self.retry_max_ms)
        self.retry_at = mono_ms() + wait

    def _attempt(self):
        if self.stopping or self.attempt_pending:
            return
        self.retry_at = None
        self.attempts += 1
        rc = self.bus.request(PLATFORM_ID, self._build_registration(), self.register_timeout_ms,
                              self._on_register_reply)
        if rc < 0:
            log.warn("link", "registration not sent: %s, retrying in %d ms id=%s"
                     % (os.strerror(-rc), self.backoff_ms, self.id))
            self._schedule_retry()
            return
        self.attempt_pending = True
        log.debug("link", "registration sent id=%s seq=%d attempt=%d"
                  % (self.id, rc, self.attempts))

    def _on_register_reply(self, status, reply):
        self.attempt_pending = False
        if self.stopping or status == -errno.ECANCELED:
            return
        if status == 0:
            self.last_rx = mono_ms()
        ack = None
        if status == 0 and not reply.header.HasField("error") and \
                reply.WhichOneof("channel") == "control" and \
                reply.control.WhichOneof("body") == "register_ack":
            ack = reply.control.register_ack
        if ack is None or not uuid_valid(ack.boot_id):
            if status == -errno.ETIMEDOUT:
                log.warn("link", "registration not answered within %d ms, retrying in %d ms "
                         "id=%s platform=%s attempt=%d" % (self.register_timeout_ms,
                                                           self.backoff_ms, self.id,
                                                           self.platform, self.attempts))
            elif status == 0 and reply.header.HasField("error"):
                e = reply.header.error
                log.warn("link", "registration refused: %s (%d) %s, retrying in %d ms id=%s"
                         % (e.message, e.code, e.detail, self.backoff_ms, self.id))
            else:
                log.warn("link", "registration answered without a valid register_ack "
                         "(status %d), retrying in %d ms id=%s"
                         % (status, self.backoff_ms, self.id))
            self._schedule_retry()
            return
        self._accept_ack(ack, False)

    def _accept_ack(self, ack, late):
        """The platform admitted us (late: the ack answers an attempt that had
        already timed out, as libplatcommon/link.c does)."""
        if self.state == REGISTERED and self.platform_boot_id == ack.boot_id:
            return  # the answer to another attempt of the same registration
        self.retry_at = None
        restarted = bool(self.platform_boot_id) and self.platform_boot_id != ack.boot_id
        self.platform_boot_id = ack.boot_id
        if ack.heartbeat_interval_ms:
            self.interval_ms = ack.heartbeat_interval_ms
        if ack.heartbeat_miss:
            self.miss = ack.heartbeat_miss
        self.backoff_ms = self.retry_initial_ms
        self.attempts = 0
        log.notice("link", "registered with the platform%s%s id=%s platform_boot_id=%s "
                   "heartbeat_interval_ms=%d heartbeat_miss=%d"
                   % (" (new platform boot)" if restarted else "",
                      " (answer to an earlier attempt)" if late else "", self.id,
                      self.platform_boot_id, self.interval_ms, self.miss))
        self._set_state(REGISTERED)

    def _reregister(self, s):
        self._set_state(s)
        self.retry_at = None
        self.backoff_ms = self.retry_initial_ms
        self._attempt()

    def _watchdog(self, now):
        if self.state != REGISTERED or self.stopping:
            return
        silent = now - self.last_rx
        limit = self.interval_ms * self.miss
        if silent > limit:
            log.warn("link", "platform silent for %d ms (limit %d), re-registering id=%s "
                     "platform_boot_id=%s" % (silent, limit, self.id, self.platform_boot_id))
            self._reregister(LOST)

    def _answer_ping(self, m):
        pong = _platform.PlatformMessage()
        pong.control.pong.state = (_common.HOST_STATE_BUSY if self.runner.busy()
                                   else _common.HOST_STATE_READY)
        rc = self.bus.reply(m, pong)
        if rc < 0:
            log.warn("link", "pong not sent: %s id=%s" % (os.strerror(-rc), self.id))
        boot = m.control.ping.boot_id
        if self.state == REGISTERED and boot and boot != self.platform_boot_id:
            log.notice("link", "platform restarted (boot id %s, was %s), re-registering id=%s"
                       % (boot, self.platform_boot_id, self.id))
            self._reregister(REGISTERING)

    # ---- messages ---------------------------------------------------------------

    def _send_reply(self, request, reply):
        if self.bus is None:
            log.debug("host", "stopping: reply not sent seq=%d id=%s"
                      % (request.header.seq_no, self.id))
            return
        rc = self.bus.reply(request, reply)
        if rc < 0:
            log.warn("host", "cannot send the plugin reply: %s, ignoring seq=%d to=%s id=%s"
                     % (os.strerror(-rc), request.header.seq_no, request.header.source.id,
                        self.id))

    def _on_plugin_request(self, m):
        body = m.plugin.WhichOneof("body")
        is_action = body == "action"
        req = m.plugin.action if is_action else m.plugin.event

        def done(code, message, reply):
            self._send_reply(m, reply)

        rc = self.runner.action(req, done) if is_action else self.runner.event(req, done)
        if rc == 0:
            return
        msg = ("no such instance in this host" if rc == -errno.ENOENT
               else "invalid plugin request" if rc == -errno.EINVAL else os.strerror(-rc))
        log.warn("host", "plugin %s refused: %s instance=%s seq=%d id=%s"
                 % ("action" if is_action else "event", msg, req.instance,
                    m.header.seq_no, self.id))
        reply = _platform.PlatformMessage()
        if is_action:
            r = reply.plugin.action_result
            r.error.code, r.error.message, r.error.detail = rc, msg, req.instance
        else:
            r = reply.plugin.response
            r.error.code, r.error.message = rc, msg
        self._send_reply(m, reply)

    def _on_trigger(self, m):
        trig = m.ability.trigger

        def done(code, message, reply):
            self._send_reply(m, reply)

        rc = self.runner.task(trig, done)
        if rc == 0:
            return
        msg = ("no such instance in this host" if rc == -errno.ENOENT
               else "invalid ability trigger")
        log.warn("host", "task trigger refused: %s task=%s instance=%s seq=%d id=%s"
                 % (msg, trig.name, trig.instance, m.header.seq_no, self.id))
        reply = _platform.PlatformMessage()
        r = reply.ability.result
        r.error.code, r.error.message, r.error.detail = rc, msg, trig.instance
        self._send_reply(m, reply)

    def _on_message(self, m):
        self.last_rx = mono_ms()
        ch = m.WhichOneof("channel")
        body = getattr(m, ch).WhichOneof("body") if ch else None
        kind = m.header.kind
        if ch == "control" and body == "ping" and kind == REQUEST:
            self._answer_ping(m)
            return
        if ch == "control" and body == "shutdown":
            log.notice("host", "the platform asked this host to exit: %s id=%s"
                       % (m.control.shutdown.reason, self.id))
            self.stop()
            return
        if ch == "plugin" and kind == REQUEST and body in ("action", "event"):
            self._on_plugin_request(m)
            return
        if ch == "ability" and kind == REQUEST and body == "trigger":
            self._on_trigger(m)
            return
        log.warn("host", "message not handled by this host channel=%s kind=%d from=%s seq=%d "
                 "id=%s" % (ch or "none", kind, m.header.source.id, m.header.seq_no, self.id))
        if kind == REQUEST:
            self.bus.reply_error(m, -errno.EOPNOTSUPP, "not handled by this plugin host",
                                 ch or "none")

    def _on_drop(self, why, m):
        late = why.startswith("late reply")
        # Attempts queued while the platform was down are all answered late
        # once it is back: such an ack still admits us.
        if late and m is not None and not self.stopping and \
                not m.header.HasField("error") and \
                m.WhichOneof("channel") == "control" and \
                m.control.WhichOneof("body") == "register_ack" and \
                uuid_valid(m.control.register_ack.boot_id):
            self.last_rx = mono_ms()
            self._accept_ack(m.control.register_ack, True)
            return
        (log.info if late else log.warn)(
            "link", "dropped message from the platform: %s id=%s seq=%d"
            % (why, self.id, m.header.seq_no if m is not None else 0))

    # ---- lifecycle --------------------------------------------------------------

    def _on_signal(self, signum, frame):
        if signum == signal.SIGINT:
            self.sigint_count += 1
            if self.sigint_count > 1:
                log.warn("host", "second SIGINT: exiting at once")
                os._exit(130)
        # Acted on by the loop, not here: the handler may run inside a poll
        # of the socket that stop() closes.
        self.signalled = signum

    def stop(self):
        if self.stopping:
            return
        self.stopping = True
        self.retry_at = None
        self.lost_exit_at = None
        bus, self.bus = self.bus, None
        if bus is not None:
            bus.close()  # pending requests (registration, calls) end -ECANCELED
        self._fail_calls(-errno.ECANCELED, "the plugin host is stopping")
        # Queued hooks are cancelled (no reply: the link is gone); a running
        # hook finishes first, which keeps the loop alive until it returns.
        self.runner.close()

    def _drain_outbox(self):
        try:
            while os.read(self.wake_r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass
        while True:
            try:
                fn = self.outbox.get_nowait()
            except queue.Empty:
                return
            fn()

    def _next_timeout(self, now):
        deadlines = []
        if self.bus is not None:
            d = self.bus.next_deadline()
            if d is not None:
                deadlines.append(d)
        if self.retry_at is not None:
            deadlines.append(self.retry_at)
        if self.lost_exit_at is not None:
            deadlines.append(self.lost_exit_at)
        if self.state == REGISTERED and not self.stopping:
            # Check silence several times per interval (as link.c does).
            deadlines.append(now + max(self.interval_ms // 4, 1))
        if not deadlines:
            return 1000
        return max(0, min(min(deadlines) - now, 1000))

    def run(self):
        """The loop; returns the exit code."""
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        log.notice("host", "pluginhost-py %s started id=%s pid=%d mode=%s hostboot=%s "
                   "platform=%s python=%s" % (self.build_version, self.id, os.getpid(),
                                              self.mode, self.hostboot or "-", self.platform,
                                              ".".join(map(str, sys.version_info[:3]))))
        log.info("link", "registering with the platform id=%s address=%s"
                 % (self.id, self.platform))
        self._attempt()
        poller = zmq.Poller()
        poller.register(self.bus.sock, zmq.POLLIN)
        poller.register(self.bus.monitor, zmq.POLLIN)
        poller.register(self.wake_r, zmq.POLLIN)
        sock, monitor = self.bus.sock, self.bus.monitor
        while True:
            if self.stopping and self.runner.n_running == 0:
                break
            if self.bus is None and sock is not None:
                poller.unregister(sock)  # closed by stop()
                poller.unregister(monitor)
                sock = monitor = None
            now = mono_ms()
            try:
                poller.poll(self._next_timeout(now))
            except zmq.ZMQError as e:
                if e.errno != errno.EINTR:
                    raise
            if self.signalled and not self.stopping:
                log.notice("host", "%s received: stopping id=%s" % (
                    "SIGTERM" if self.signalled == signal.SIGTERM else "SIGINT", self.id))
                self.stop()
            self._drain_outbox()
            if self.bus is not None:
                self.bus.receive(self._on_message, self._on_drop)
            if self.bus is not None and self.bus.new_connections() and \
                    self.state == REGISTERED and not self.stopping:
                # A new connection: a restarted platform knows neither us
                # nor our route until we speak (same as libplatcommon link.c).
                log.notice("link", "connected to the platform again, re-registering id=%s "
                           "platform_boot_id=%s" % (self.id, self.platform_boot_id))
                self._reregister(REGISTERING)
            now = mono_ms()
            if self.bus is not None:
                self.bus.expire(now)
            if self.retry_at is not None and now >= self.retry_at:
                self._attempt()
            self._watchdog(now)
            if self.lost_exit_at is not None and now >= self.lost_exit_at and not self.stopping:
                log.err("host", "platform lost for %d ms: exiting id=%s"
                        % (self.platform_lost_exit_ms, self.id))
                self.exit_code = 75  # EX_TEMPFAIL
                self.stop()
        log.notice("main", "pluginhost-py stopped id=%s" % self.id)
        return self.exit_code
