"""The host's end of the bus: one ZeroMQ DEALER to the platform's ROUTER,
PlatformMessage envelopes (generated *_pb2 modules), and the table of
requests waiting for their reply. Bus thread only (ZeroMQ sockets are not
thread-safe); docs/protocol.md is the contract."""

import errno
import itertools
import re
import secrets
import time

import zmq

import ability_pb2
import common_pb2
import control_pb2
import platform_pb2
import plugin_pb2
import resource_pb2
import router_pb2

from . import log

EVENT = router_pb2.MESSAGE_KIND_EVENT
REQUEST = router_pb2.MESSAGE_KIND_REQUEST
REPLY = router_pb2.MESSAGE_KIND_REPLY

PLATFORM_ID = "platform"
MAX_MSG_SIZE_DEFAULT = 4 * 1024 * 1024

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_UUID_RE = re.compile("^" + _UUID + "$")
_HOST_RE = re.compile("^host-" + _UUID + "$")
_HOSTBOOT_RE = re.compile(r"^hostboot-[a-z0-9][a-z0-9._-]{0,63}$")

ROUTE_SEP = "/"
ROUTE_TOKEN_LEN = 32  # lowercase hex characters of a 128-bit random token


_monitor_seq = itertools.count(1)


def route_for(identity):
    """The routing id this endpoint announces: "<id>/<token>", a fresh
    random token per socket (libplatcommon plat_route_new)."""
    return identity + ROUTE_SEP + secrets.token_hex(ROUTE_TOKEN_LEN // 2)


# The protobuf modules, re-exported for the rest of the host.
pb = {
    "ability": ability_pb2, "common": common_pb2, "control": control_pb2,
    "platform": platform_pb2, "plugin": plugin_pb2, "resource": resource_pb2,
    "router": router_pb2,
}


def uuid_valid(s):
    return bool(s) and _UUID_RE.match(s) is not None


def id_kind(s):
    """"platform", "hostboot", "host" or None (as plat_id_kind)."""
    if not s or len(s) > 80:
        return None
    if s == PLATFORM_ID:
        return "platform"
    if _HOSTBOOT_RE.match(s):
        return "hostboot"
    if _HOST_RE.match(s):
        return "host"
    return None


def now_ms():
    return int(time.time() * 1000)


def mono_ms():
    return int(time.monotonic() * 1000)


def channel_name(m):
    ch = m.WhichOneof("channel")
    return "host_boot" if ch == "host_boot" else (ch or "none")


def validate(m):
    """None when `m` is a valid envelope, else why (plat_envelope_validate)."""
    if not m.HasField("header"):
        return "header missing"
    h = m.header
    if not h.HasField("source") or id_kind(h.source.id) is None:
        return "source id invalid"
    if not h.HasField("destination") or id_kind(h.destination.id) is None:
        return "destination id invalid"
    if h.kind not in (EVENT, REQUEST, REPLY):
        return "unknown message kind"
    if h.kind != EVENT and h.seq_no == 0:
        return "request or reply without seq_no"
    ch = m.WhichOneof("channel")
    if ch is None:
        if not (h.kind == REPLY and h.HasField("error")):
            return "no channel set"
        return None
    if getattr(m, ch).WhichOneof("body") is None:
        return "channel body not set"
    return None


def error_message(code, message="", detail=""):
    return common_pb2.ErrorMessage(code=code, message=message or "", detail=detail or "")


class Bus:
    """A DEALER with routing id `identity` connected to `address`.

    curve: None, or (secret_z85, server_public_z85): a CURVE client."""

    def __init__(self, identity, address, boot_id, curve=None, max_msg_size=MAX_MSG_SIZE_DEFAULT):
        self.identity = identity
        self.boot_id = boot_id
        self.max_msg_size = max_msg_size
        self.next_seq = 0
        self.pending = {}  # (peer, seq) -> [deadline_mono_ms, callback]
        self.stats = {"rx": 0, "tx": 0, "dropped": 0}
        self.zctx = zmq.Context.instance()
        s = self.zctx.socket(zmq.DEALER)
        monitor = None
        try:
            s.setsockopt(zmq.MAXMSGSIZE, max_msg_size)
            s.setsockopt(zmq.SNDHWM, 1000)
            s.setsockopt(zmq.RCVHWM, 1000)
            s.setsockopt(zmq.LINGER, 0)
            # The route "<id>/<token>" (libplatcommon id.h): the random token
            # keeps another key from taking this endpoint's route over.
            s.setsockopt(zmq.ROUTING_ID, route_for(identity).encode())
            if curve:
                secret, server = curve
                public = zmq.curve_public(secret.encode())
                s.setsockopt(zmq.CURVE_SERVERKEY, server.encode())
                s.setsockopt(zmq.CURVE_PUBLICKEY, public)
                s.setsockopt(zmq.CURVE_SECRETKEY, secret.encode())
            # Handshake events of the socket: a handshake after the first is
            # a new connection to the platform (restarted, or the connection
            # broke), which learns our route only from what we send next.
            # Watched before connecting, so the first one is never missed.
            addr = "inproc://openplatform-monitor-%d" % next(_monitor_seq)
            monitor = self.zctx.socket(zmq.PAIR)
            monitor.setsockopt(zmq.LINGER, 0)
            monitor.connect(addr)
            s.monitor(addr, zmq.EVENT_HANDSHAKE_SUCCEEDED)
            s.connect(address)
        except Exception:
            if monitor is not None:
                monitor.close(0)
            s.close(0)
            raise
        self.sock = s
        self.monitor = monitor
        self.handshakes = 0

    def new_connections(self):
        """Handshakes completed since the last call that were not the first
        connection (without blocking)."""
        n = 0
        while self.monitor is not None:
            try:
                frames = self.monitor.recv_multipart(zmq.DONTWAIT)
            except zmq.Again:
                break
            if len(frames[0]) >= 2 and \
                    int.from_bytes(frames[0][:2], "little") == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.handshakes += 1
                if self.handshakes > 1:
                    n += 1
        return n

    def close(self):
        """Close the socket; pending requests complete with -ECANCELED."""
        if self.monitor is not None:
            self.sock.disable_monitor()
            self.monitor.close(0)
            self.monitor = None
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None
        pending, self.pending = self.pending, {}
        for _, cb in pending.values():
            cb(-errno.ECANCELED, None)

    # ---- sending ----------------------------------------------------------

    def _fill_header(self, m, dst, kind, seq, timeout_ms):
        h = m.header
        h.source.id = self.identity
        h.destination.id = dst
        h.seq_no = seq
        h.kind = kind
        h.boot_id = self.boot_id
        h.sent_at_ms = now_ms()
        h.timeout_ms = timeout_ms

    def _send(self, m):
        if self.sock is None:
            return -errno.ENOTCONN
        data = m.SerializeToString()
        if len(data) > self.max_msg_size:
            return -errno.EMSGSIZE
        try:
            self.sock.send(data, zmq.DONTWAIT)
        except zmq.Again:
            return -errno.EAGAIN
        except zmq.ZMQError as e:
            return -(e.errno or errno.EIO)
        self.stats["tx"] += 1
        return 0

    def send(self, dst, m):
        """An EVENT."""
        self.next_seq += 1
        self._fill_header(m, dst, EVENT, self.next_seq, 0)
        return self._send(m)

    def request(self, dst, m, timeout_ms, cb):
        """A REQUEST; cb(status, reply) runs exactly once on this thread:
        status 0 with the REPLY, -ETIMEDOUT, or -ECANCELED at close.
        Returns the seq_no (> 0) or a negative errno (cb never runs)."""
        self.next_seq += 1
        seq = self.next_seq
        self._fill_header(m, dst, REQUEST, seq, timeout_ms)
        rc = self._send(m)
        if rc < 0:
            return rc
        self.pending[(dst, seq)] = [mono_ms() + timeout_ms, cb]
        return seq

    def reply(self, request, m):
        self._fill_header(m, request.header.source.id, REPLY, request.header.seq_no, 0)
        return self._send(m)

    def reply_error(self, request, code, message, detail=""):
        m = platform_pb2.PlatformMessage()
        m.header.error.CopyFrom(error_message(code, message, detail))
        return self.reply(request, m)

    # ---- receiving ----------------------------------------------------------

    def receive(self, on_message, on_drop):
        """Handle every message waiting, without blocking: replies complete
        their request, anything else goes to on_message(m). Dropped ones go
        to on_drop(why, m_or_None)."""
        while self.sock is not None:
            try:
                frames = self.sock.recv_multipart(zmq.DONTWAIT, copy=True)
            except zmq.Again:
                return
            except zmq.ZMQError as e:
                log.warn("bus", "receive failed: %s" % e)
                return
            if len(frames) != 1:
                self.stats["dropped"] += 1
                on_drop("wrong frames", None)
                continue
            m = platform_pb2.PlatformMessage()
            try:
                m.ParseFromString(frames[0])
            except Exception:  # google.protobuf.message.DecodeError and friends
                self.stats["dropped"] += 1
                on_drop("undecodable", None)
                continue
            why = validate(m)
            if why:
                self.stats["dropped"] += 1
                on_drop("invalid envelope (%s)" % why, m if m.HasField("header") else None)
                continue
            h = m.header
            if h.destination.id != self.identity:
                self.stats["dropped"] += 1
                on_drop("misdirected (destination is not this endpoint)", m)
                continue
            self.stats["rx"] += 1
            if h.kind == REPLY:
                entry = self.pending.pop((h.source.id, h.seq_no), None)
                if entry is None and h.source.id == PLATFORM_ID and h.HasField("error") \
                        and id_kind(h.error.detail) not in (None, "platform"):
                    # The platform refused to deliver our request to the
                    # endpoint it names: that is the answer (protocol.md).
                    entry = self.pending.pop((h.error.detail, h.seq_no), None)
                if entry is None:
                    self.stats["dropped"] += 1
                    on_drop("late reply (no request pending)", m)
                    continue
                entry[1](0, m)
                continue
            on_message(m)
            if self.sock is None:
                return  # the callback closed the bus

    # ---- timeouts -------------------------------------------------------------

    def expire(self, now):
        """Time out pending requests due by `now` (mono ms)."""
        due = [k for k, v in self.pending.items() if v[0] <= now]
        for k in due:
            entry = self.pending.pop(k, None)
            if entry is not None:
                entry[1](-errno.ETIMEDOUT, None)

    def next_deadline(self):
        return min((v[0] for v in self.pending.values()), default=None)
