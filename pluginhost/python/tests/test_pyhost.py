"""Checks of the Python plugin host without platformd: this test plays the
platform (a ROUTER on a free loopback port) and starts the real
pluginhost-py --dev against it, then drives the protocol by hand:
registration, pings, lifecycle actions, events, resource and ability calls
(answered by the test), hook errors, the entry confinement, restart
detection, Control.shutdown and SIGTERM.

    python3 test_pyhost.py <build dir of pluginhost/python>

Every wait polls with a deadline; nothing sleeps a fixed time."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
import uuid

RUNTIME = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else ".")
sys.path[:0] = [RUNTIME, os.path.join(RUNTIME, "_pb")]
sys.dont_write_bytecode = True

import zmq  # noqa: E402

import platform_pb2  # noqa: E402
import plugin_pb2  # noqa: E402
import resource_pb2  # noqa: E402
import ability_pb2  # noqa: E402
import common_pb2  # noqa: E402
import router_pb2  # noqa: E402

HOST_BIN = os.path.join(RUNTIME, "pluginhost-py")
DEADLINE = 15.0
EVENT, REQUEST, REPLY = (router_pb2.MESSAGE_KIND_EVENT, router_pb2.MESSAGE_KIND_REQUEST,
                         router_pb2.MESSAGE_KIND_REPLY)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class FakePlatform:
    """A ROUTER playing platformd; with `curve_secret` a CURVE server (no
    ZAP handler: any client that knows the key gets in)."""

    def __init__(self, endpoint=None, curve_secret=None):
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve_secret:
            self.sock.setsockopt(zmq.CURVE_SERVER, 1)
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, curve_secret)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.endpoint = endpoint or "tcp://127.0.0.1:%d" % free_port()
        self.sock.bind(self.endpoint)
        self.boot_id = str(uuid.uuid4())
        self.seq = 0
        self.routes = {}  # endpoint id -> the routing id it announced
        self.interval_ms = 200
        self.miss = 3

    def close(self):
        self.sock.close(0)

    def send(self, peer, m, kind, seq=None, dst=None):
        if seq is None:
            self.seq += 1
            seq = self.seq
        h = m.header
        h.source.id = "platform"
        h.destination.id = dst or peer
        h.seq_no = seq
        h.kind = kind
        h.boot_id = self.boot_id
        h.sent_at_ms = int(time.time() * 1000)
        if kind == REQUEST:
            h.timeout_ms = 5000
        route = self.routes.get(peer, peer)  # a host announces "<id>/<token>"
        self.sock.send_multipart([route.encode(), m.SerializeToString()])
        return seq

    def reply(self, req, m):
        return self.send(req.header.source.id, m, REPLY, seq=req.header.seq_no)

    def recv(self, timeout=DEADLINE, answer_pings=False):
        """The next message from a host: (peer, PlatformMessage) or None."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                return None
            peer, data = self.sock.recv_multipart()
            m = platform_pb2.PlatformMessage()
            m.ParseFromString(data)
            route = peer.decode()
            ident = route.split("/", 1)[0]
            assert m.header.source.id == ident, (route, m.header.source.id)
            self.routes[ident] = route
            return ident, m

    def expect(self, pred, what, timeout=DEADLINE, on_other=None):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.recv(end - time.monotonic())
            if got is None:
                break
            peer, m = got
            if pred(m):
                return m
            if on_other:
                on_other(m)
        raise AssertionError("timed out waiting for %s" % what)

    def ack(self, ready):
        a = platform_pb2.PlatformMessage()
        a.control.register_ack.boot_id = self.boot_id
        a.control.register_ack.heartbeat_interval_ms = self.interval_ms
        a.control.register_ack.heartbeat_miss = self.miss
        self.reply(ready, a)


def is_ready(m):
    return m.WhichOneof("channel") == "control" and m.control.WhichOneof("body") == "ready"


def write_package(root, name, source, entry="plugin.py"):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, entry), "w") as f:
        f.write(textwrap.dedent(source))
    return d


HELLO = """
    import openplatform as op
    calls = []
    def install(ctx):
        ctx.user_data = {"n": 0}
        ctx.log("install org=%s" % ctx.org)
    def start(ctx):
        ctx.user_data["n"] += 1
    def upgrade(ctx, from_version):
        if from_version != "0.9.0":
            raise op.PluginError(-22, "only from 0.9.0")
    def on_event(ctx, req):
        if req.path == "/boom":
            raise ValueError("kaboom")
        if req.path == "/tuple":
            return 201, [("X-A", "1")], b"tuple"
        if req.path == "/neg":
            return -13
        if req.path == "/badstatus":
            return op.Response(42)
        if req.path == "/db":
            r = ctx.db_exec("SELECT ?1, ?2, ?3, ?4, ?5", (None, 7, 1.5, "t", b"b"))
            return op.Response(200, {}, repr((r.columns, r.rows, r.changes)))
        if req.path == "/dberr":
            try:
                ctx.db_exec("SELEC")
            except op.ResourceError as e:
                return op.Response(200, {}, "%d %s" % (e.code, e.message))
        if req.path == "/task":
            ctx.task_register("tick", "* * * * *")
            return "registered"
        name = ctx.config.get("greeting_name", "world")
        return op.Response(200, {"Content-Type": "text/plain"},
                           "hello, %s n=%d body=%s" % (name, ctx.user_data["n"], req.text))
    def on_task(ctx, task):
        ctx.log("task %s missed=%s" % (task.name, task.missed))
        if task.name == "bad":
            return -5
"""


class HostTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.plat = FakePlatform()
        self.host_id = "host-" + str(uuid.uuid4())
        self.log_path = os.path.join(self.tmp.name, "host.log")
        self.proc = None

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.plat.close()
        if self._outcome_failed():
            sys.stderr.write(self.read_log())
        self.tmp.cleanup()

    def _outcome_failed(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return True
        return any(t is self for t, _ in list(result.failures) + list(result.errors))

    def read_log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def start_host(self, *extra):
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [HOST_BIN, "--dev", "--platform", self.plat.endpoint, "--host-id", self.host_id,
             "--log-level", "debug"] + list(extra),
            stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        logf.close()

    def register(self):
        ready = self.plat.expect(is_ready, "Control.ready")
        self.assertEqual(ready.header.kind, REQUEST)
        self.assertEqual(ready.header.source.id, self.host_id)
        self.assertEqual(ready.header.destination.id, "platform")
        r = ready.control.ready
        self.assertTrue(r.dev)
        self.assertEqual(r.host.id, self.host_id)
        self.assertEqual(r.host.pid, self.proc.pid)
        self.assertEqual(r.host.descriptor.language, "python")
        self.assertEqual(r.host.descriptor.version, "3")
        self.assertEqual(r.host.descriptor.mode, "dev")
        self.plat.ack(ready)
        return ready

    def ping(self, boot_id=None):
        m = platform_pb2.PlatformMessage()
        m.control.ping.boot_id = boot_id or self.plat.boot_id
        seq = self.plat.send(self.host_id, m, REQUEST)
        return self.plat.expect(lambda x: x.header.kind == REPLY and x.header.seq_no == seq,
                                "pong %d" % seq)

    def action(self, action, pkg, version="1.0.0", config=None, from_version="", entry="plugin.py",
               plugin="p", instance="11111111-1111-4111-8111-111111111111", answer=None):
        m = platform_pb2.PlatformMessage()
        a = m.plugin.action
        a.instance = instance
        a.action = action
        a.plugin = plugin
        a.version = version
        a.package_dir = pkg
        a.entry = entry
        a.config_json = json.dumps(config or {"greeting_name": "Ada"})
        a.from_version = from_version
        a.org = "acme"
        a.timeout_ms = 5000
        seq = self.plat.send(self.host_id, m, REQUEST)
        r = self.plat.expect(lambda x: x.header.kind == REPLY and x.header.seq_no == seq,
                             "action result %d" % seq, on_other=answer)
        self.assertEqual(r.plugin.WhichOneof("body"), "action_result")
        return r.plugin.action_result

    def event(self, path, body=b"x", instance="11111111-1111-4111-8111-111111111111",
              answer=None):
        m = platform_pb2.PlatformMessage()
        e = m.plugin.event
        e.instance = instance
        e.method = "POST"
        e.path = path
        e.body = body
        e.headers.add(name="Content-Type", value="text/plain")
        seq = self.plat.send(self.host_id, m, REQUEST)
        r = self.plat.expect(lambda x: x.header.kind == REPLY and x.header.seq_no == seq,
                             "event response %d" % seq, on_other=answer)
        self.assertEqual(r.plugin.WhichOneof("body"), "response")
        return r.plugin.response

    def wait_exit(self, timeout=DEADLINE):
        return self.proc.wait(timeout)

    # ---- tests ----------------------------------------------------------------

    def test_usage_errors(self):
        for args in (["--platform", "tcp://127.0.0.1:1"],
                     ["--dev"],
                     ["--dev", "--platform", "tcp://x:1", "--hostboot", "hostboot-a"],
                     ["--platform", "tcp://x:1", "--host-id", "host-1", "--dev"],
                     ["--platform", "tcp://x:1", "--host-id", self.host_id,
                      "--hostboot", "hostboot-a", "--mode", "dev"],
                     ["--dev", "--platform", "tcp://x:1", "--platform-lost-exit-ms", "-1"],
                     ["--dev", "--platform", "tcp://x:1", "--log-level", "loud"],
                     ["--nope"]):
            p = subprocess.run([HOST_BIN] + args, capture_output=True, timeout=DEADLINE)
            self.assertEqual(p.returncode, 64, (args, p.stderr))
            self.assertIn(b"usage:", p.stderr)
        p = subprocess.run([HOST_BIN, "--version"], capture_output=True, timeout=DEADLINE)
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith(b"pluginhost-py "))

    def test_register_ping_lifecycle_event(self):
        pkg = write_package(self.tmp.name, "hello", HELLO)
        self.start_host()
        self.register()
        pong = self.ping()
        self.assertEqual(pong.control.pong.state, common_pb2.HOST_STATE_READY)
        r = self.action(plugin_pb2.PLUGIN_ACTION_INSTALL, pkg)
        self.assertFalse(r.HasField("error"), r)
        r = self.action(plugin_pb2.PLUGIN_ACTION_START, pkg)
        self.assertFalse(r.HasField("error"), r)
        resp = self.event("/x", b"ping")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"hello, Ada n=1 body=ping")
        self.assertEqual([(h.name, h.value) for h in resp.headers],
                         [("Content-Type", "text/plain")])
        resp = self.event("/tuple")
        self.assertEqual((resp.status, resp.body), (201, b"tuple"))
        # errors of on_event
        resp = self.event("/boom")
        self.assertEqual(resp.status, 500)
        self.assertEqual(resp.error.code, -errno.EIO)
        self.assertIn("ValueError: kaboom", resp.error.message)
        resp = self.event("/neg")
        self.assertEqual(resp.error.code, -errno.EACCES)
        resp = self.event("/badstatus")
        self.assertEqual(resp.error.code, -errno.EPROTO)
        # unknown instance: refused before any hook
        resp = self.event("/x", instance="22222222-2222-4222-8222-222222222222")
        self.assertEqual(resp.error.code, -errno.ENOENT)
        # upgrade failing with a PluginError code
        r = self.action(plugin_pb2.PLUGIN_ACTION_UPGRADE, pkg, version="1.0.0",
                        from_version="0.1.0")
        self.assertEqual(r.error.code, -errno.EINVAL)
        self.assertIn("only from 0.9.0", r.error.message)
        log = self.read_log()
        self.assertIn("Traceback (most recent call last)", log)
        self.assertIn("kaboom", log)
        # the instance is listed as loaded when re-registering (new platform boot)
        old = self.plat.boot_id
        self.plat.boot_id = str(uuid.uuid4())
        self.ping(boot_id=self.plat.boot_id)
        ready = self.plat.expect(is_ready, "re-registration after a new boot id")
        self.assertNotEqual(old, self.plat.boot_id)
        self.assertEqual(list(ready.control.ready.host.instances),
                         ["11111111-1111-4111-8111-111111111111"])
        self.plat.ack(ready)
        # uninstall drops it
        r = self.action(plugin_pb2.PLUGIN_ACTION_UNINSTALL, pkg)
        self.assertFalse(r.HasField("error"), r)
        resp = self.event("/x")
        self.assertEqual(resp.error.code, -errno.ENOENT)
        # SIGTERM: exit 0
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.wait_exit(), 0)

    def test_resource_and_ability_calls(self):
        pkg = write_package(self.tmp.name, "hello", HELLO)
        self.start_host()
        self.register()
        self.assertFalse(self.action(plugin_pb2.PLUGIN_ACTION_INSTALL, pkg).HasField("error"))
        seen = []

        def answer(m):
            ch = m.WhichOneof("channel")
            if ch == "resource":
                rq = m.resource.request
                seen.append(rq)
                self.assertEqual(m.header.kind, REQUEST)
                self.assertEqual(rq.instance, "11111111-1111-4111-8111-111111111111")
                self.assertEqual(rq.kind, resource_pb2.RESOURCE_KIND_DB)
                out = platform_pb2.PlatformMessage()
                if rq.db.sql == "SELEC":
                    out.resource.response.error.code = -errno.EINVAL
                    out.resource.response.error.message = "near SELEC: syntax error"
                else:
                    vals = [v.WhichOneof("value") for v in rq.db.params]
                    self.assertEqual(vals, ["null", "integer", "real", "text", "blob"])
                    r = out.resource.response.db
                    r.columns.extend(["a", "b"])
                    row = r.rows.add()
                    row.values.add().integer = 7
                    row.values.add().null = True
                    r.changes = 0
                self.plat.reply(m, out)
            elif ch == "ability":
                rg = m.ability.register
                self.assertEqual((rg.kind, rg.name, rg.cron),
                                 (ability_pb2.ABILITY_KIND_TASK, "tick", "* * * * *"))
                out = platform_pb2.PlatformMessage()
                out.ability.result.SetInParent()
                self.plat.reply(m, out)
            elif ch == "control" and m.control.WhichOneof("body") == "ping":
                pass

        resp = self.event("/db", answer=answer)
        self.assertEqual(resp.body, b"(['a', 'b'], [(7, None)], 0)")
        resp = self.event("/dberr", answer=answer)
        self.assertEqual(resp.body, b"-22 near SELEC: syntax error")
        resp = self.event("/task", answer=answer)
        self.assertEqual(resp.body, b"registered")
        self.assertEqual(len(seen), 2)
        # a trigger runs on_task
        for name, code in (("tick", 0), ("bad", -errno.EIO)):
            m = platform_pb2.PlatformMessage()
            t = m.ability.trigger
            t.instance = "11111111-1111-4111-8111-111111111111"
            t.kind = ability_pb2.ABILITY_KIND_TASK
            t.name = name
            seq = self.plat.send(self.host_id, m, REQUEST)
            r = self.plat.expect(lambda x: x.header.kind == REPLY and x.header.seq_no == seq,
                                 "trigger result")
            self.assertEqual(r.ability.result.error.code, code)
        # a platform that refuses the channel: header error
        def refuse(m):
            if m.WhichOneof("channel") == "resource":
                out = platform_pb2.PlatformMessage()
                out.header.error.code = -errno.EOPNOTSUPP
                out.header.error.message = "channel not handled by the platform"
                self.plat.reply(m, out)
        resp = self.event("/dberr", answer=refuse)
        self.assertEqual(resp.body, b"-95 channel not handled by the platform")

    def test_busy_pong_and_entry_confinement(self):
        slow = write_package(self.tmp.name, "slow", """
            import time
            def start(ctx):
                time.sleep(ctx.config["sleep_ms"] / 1000.0)
        """)
        outside = write_package(self.tmp.name, "outside", "def install(ctx): pass\n")
        escaping = os.path.join(self.tmp.name, "escaping")
        os.makedirs(escaping)
        os.symlink(os.path.join(outside, "plugin.py"), os.path.join(escaping, "plugin.py"))
        broken = write_package(self.tmp.name, "broken", "def install(ctx)\n")
        self.start_host()
        self.register()
        r = self.action(plugin_pb2.PLUGIN_ACTION_INSTALL, escaping, plugin="esc")
        self.assertEqual(r.error.code, -errno.ENOEXEC)
        self.assertIn("leads out of the package", r.error.message)
        r = self.action(plugin_pb2.PLUGIN_ACTION_INSTALL, broken, plugin="broken")
        self.assertEqual(r.error.code, -errno.ENOEXEC)
        self.assertIn("SyntaxError", r.error.message)
        r = self.action(plugin_pb2.PLUGIN_ACTION_INSTALL, slow, entry="../outside/plugin.py",
                        plugin="dots")
        self.assertEqual(r.error.code, -errno.ENOEXEC)
        self.assertFalse(os.path.exists(os.path.join(slow, "__pycache__")))
        # a long hook: the host answers pings BUSY meanwhile, then READY
        m = platform_pb2.PlatformMessage()
        a = m.plugin.action
        a.instance = "33333333-3333-4333-8333-333333333333"
        a.action = plugin_pb2.PLUGIN_ACTION_START
        a.plugin, a.version, a.package_dir, a.entry = "slow", "1.0.0", slow, "plugin.py"
        a.config_json = json.dumps({"sleep_ms": 1500})
        seq = self.plat.send(self.host_id, m, REQUEST)
        saw_busy = False
        end = time.monotonic() + DEADLINE
        done = False
        while not done and time.monotonic() < end:
            p = platform_pb2.PlatformMessage()
            p.control.ping.boot_id = self.plat.boot_id
            pseq = self.plat.send(self.host_id, p, REQUEST)
            while True:
                got = self.plat.recv(DEADLINE)
                self.assertIsNotNone(got)
                x = got[1]
                if x.header.seq_no == seq and x.header.kind == REPLY and \
                        x.WhichOneof("channel") == "plugin":
                    self.assertFalse(x.plugin.action_result.HasField("error"))
                    done = True
                    continue
                if x.header.seq_no == pseq:
                    saw_busy |= x.control.pong.state == common_pb2.HOST_STATE_BUSY
                    break
        self.assertTrue(done)
        self.assertTrue(saw_busy, "a pong said BUSY while the hook ran")
        self.assertEqual(self.ping().control.pong.state, common_pb2.HOST_STATE_READY)

    def test_relative_import_inside_the_package(self):
        pkg = write_package(self.tmp.name, "rel", """
            from . import helper
            def on_event(ctx, req):
                return helper.VALUE
        """)
        with open(os.path.join(pkg, "helper.py"), "w") as f:
            f.write("VALUE = 'from the helper'\n")
        # same id, another version, another helper: each version its own module
        pkg2 = write_package(self.tmp.name, "rel2", """
            from . import helper
            def on_event(ctx, req):
                return helper.VALUE
        """)
        with open(os.path.join(pkg2, "helper.py"), "w") as f:
            f.write("VALUE = 'version 2'\n")
        self.start_host()
        self.register()
        self.assertFalse(self.action(plugin_pb2.PLUGIN_ACTION_INSTALL, pkg,
                                     plugin="rel-x").HasField("error"))
        self.assertEqual(self.event("/").body, b"from the helper")
        r = self.action(plugin_pb2.PLUGIN_ACTION_UPGRADE, pkg2, version="2.0.0",
                        from_version="1.0.0", plugin="rel-x")
        self.assertFalse(r.HasField("error"), r)
        self.assertEqual(self.event("/").body, b"version 2")
        self.assertNotIn("__pycache__", os.listdir(pkg))

    def test_shutdown_and_platform_lost(self):
        self.start_host()
        self.register()
        m = platform_pb2.PlatformMessage()
        m.control.shutdown.reason = "test"
        self.plat.send(self.host_id, m, EVENT)
        self.assertEqual(self.wait_exit(), 0)
        self.assertIn("the platform asked this host to exit: test", self.read_log())

    def test_spawned_exits_when_platform_lost(self):
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [HOST_BIN, "--platform", self.plat.endpoint, "--host-id", self.host_id,
             "--hostboot", "hostboot-t", "--mode", "powerSave", "--platform-lost-exit-ms", "300"],
            stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        logf.close()
        ready = self.plat.expect(is_ready, "Control.ready")
        self.assertEqual(ready.control.ready.host.hostboot, "hostboot-t")
        self.assertFalse(ready.control.ready.dev)
        self.assertEqual(ready.control.ready.host.descriptor.mode, "powerSave")
        self.plat.ack(ready)
        # silence: lost after interval*miss = 600 ms, exits 75 300 ms later
        self.assertEqual(self.wait_exit(), 75)

    def test_curve_key_from_fd(self):
        self.plat.close()
        server_pub, server_sec = zmq.curve_keypair()
        self.plat = FakePlatform(curve_secret=server_sec)
        host_pub, host_sec = zmq.curve_keypair()
        r, w = os.pipe()
        os.write(w, host_sec + b"\n")
        os.close(w)
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [HOST_BIN, "--platform", self.plat.endpoint, "--host-id", self.host_id,
             "--hostboot", "hostboot-t", "--mode", "highPerformance",
             "--key-fd", str(r), "--platform-key", server_pub.decode()],
            stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, pass_fds=(r,))
        logf.close()
        os.close(r)
        ready = self.plat.expect(is_ready, "Control.ready over CURVE")
        self.assertEqual(ready.header.source.id, self.host_id)
        self.assertIn("bus secured with CURVE public_key=%s" % host_pub.decode(), self.read_log())
        self.plat.ack(ready)
        self.assertEqual(self.ping().control.pong.state, common_pb2.HOST_STATE_READY)
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.wait_exit(), 0)

    def test_bad_keys(self):
        server_pub, _ = zmq.curve_keypair()
        _, host_sec = zmq.curve_keypair()
        key = os.path.join(self.tmp.name, "host.key")
        with open(key, "wb") as f:
            f.write(host_sec + b"\n")
        os.chmod(key, 0o644)
        base = [HOST_BIN, "--dev", "--platform", self.plat.endpoint, "--host-id", self.host_id]
        p = subprocess.run(base + ["--key-file", key, "--platform-key", server_pub.decode()],
                           capture_output=True, timeout=DEADLINE)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(b"must be 0600", p.stderr)
        p = subprocess.run(base + ["--key-file", key], capture_output=True, timeout=DEADLINE)
        self.assertEqual(p.returncode, 64, p.stderr)
        os.chmod(key, 0o600)
        p = subprocess.run(base + ["--key-file", key, "--platform-key", "short"],
                           capture_output=True, timeout=DEADLINE)
        self.assertEqual(p.returncode, 78, p.stderr)

    def test_unhandled_request_is_refused(self):
        self.start_host()
        self.register()
        m = platform_pb2.PlatformMessage()
        m.resource.request.instance = "x"
        seq = self.plat.send(self.host_id, m, REQUEST)
        r = self.plat.expect(lambda x: x.header.seq_no == seq and x.header.kind == REPLY,
                             "error reply")
        self.assertEqual(r.header.error.code, -errno.EOPNOTSUPP)
        self.assertIsNone(r.WhichOneof("channel"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
