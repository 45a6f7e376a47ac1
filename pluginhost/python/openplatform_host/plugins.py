"""The plugin runner of a Python host: loads plugin entry files and runs
their hooks for Plugin.action, Plugin.event and Ability.trigger requests —
the Python twin of pluginhost/plugins.c, with the same rules:

* instances are kept by UUID: a context (config, org, user data, the
  loaded plugin) is created by the first action for an instance and
  dropped by a successful UNINSTALL;
* an entry is loaded once per (plugin, version) — a .py file inside
  package_dir, imported with importlib from that path under a private
  module name (a package whose only search location is package_dir, so
  relative imports stay inside it) — and never unloaded;
* every hook, the loading itself included (it runs the module's code),
  runs on a worker thread, never on the bus thread; the hooks of one
  instance run one at a time, in arrival order;
* completion is handed back to the bus thread, which replies.

Bus thread only, except where noted."""

import collections
import errno
import hashlib
import importlib.util
import os
import re
import sys
import threading
import traceback

import openplatform as op

from . import log
from .bus import pb
from .context import HookContext

_plugin = pb["plugin"]
_platform = pb["platform"]
_ability = pb["ability"]

# As PH_MAX_RESPONSE_BODY: the reply must fit one bus message.
MAX_RESPONSE_BODY = 4 * 1024 * 1024 - 64 * 1024

ACTIONS = {
    _plugin.PLUGIN_ACTION_INSTALL: "install",
    _plugin.PLUGIN_ACTION_UNINSTALL: "uninstall",
    _plugin.PLUGIN_ACTION_ENABLE: "enable",
    _plugin.PLUGIN_ACTION_DISABLE: "disable",
    _plugin.PLUGIN_ACTION_UPGRADE: "upgrade",
    _plugin.PLUGIN_ACTION_START: "start",
    _plugin.PLUGIN_ACTION_STOP: "stop",
}
HOOKS = ("install", "uninstall", "enable", "disable", "upgrade", "start", "stop", "on_event",
         "on_task")

_HEADER_NAME_BAD = re.compile(r"[\r\n: ]")


def _strerror(code):
    try:
        return os.strerror(-code)
    except (ValueError, OverflowError):
        return "error %d" % code


class Failure(Exception):
    """A job's error: code (negative errno) and a one-line message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Lib:
    """A loaded entry; never unloaded."""

    def __init__(self, plugin, version, path, package_dir, module, hooks):
        self.plugin = plugin
        self.version = version
        self.path = path
        self.package_dir = package_dir
        self.module = module
        self.hooks = hooks


class Instance:
    def __init__(self, iid):
        self.id = iid
        self.org = ""
        self.config_json = "{}"
        self.user_data = None
        self.lib = None        # committed plugin version; None before the first success
        self.queue = collections.deque()  # jobs; queue[0] is running when busy
        self.busy = False


class Job:
    """One request for one instance: kind "action", "event" or "task"."""

    def __init__(self, kind, req, done):
        self.kind = kind
        self.req = req          # PluginActionRequest / PluginEvent / AbilityTrigger
        self.done = done        # done(code, message, reply PlatformMessage) on the bus thread
        self.inst = None
        self.lib = None         # the version an action ran in
        self.code = 0
        self.message = ""
        self.status = 200
        self.headers = []
        self.body = b""


def _log_traceback(what, exc):
    """The traceback of a hook's exception, one log line per line."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    log.warn("plugins", "%s: traceback follows" % what)
    for chunk in lines:
        for line in chunk.rstrip("\n").split("\n"):
            log.warn("traceback", line)


def _loaded_hook(inst, name):
    """The plugin loaded for `inst` and its hook `name`, or a Failure:
    -ENOENT when nothing is loaded yet, -EOPNOTSUPP without that hook."""
    lib = inst.lib
    if lib is None:
        raise Failure(-errno.ENOENT, "instance %s has no plugin loaded (no action "
                      "succeeded yet)" % inst.id)
    fn = lib.hooks.get(name)
    if fn is None:
        raise Failure(-errno.EOPNOTSUPP, "%s %s has no %s hook" % (lib.plugin, lib.version, name))
    return lib, fn


def _module_name(plugin, version):
    """A private, unique module name per (plugin, version)."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", "%s_%s" % (plugin, version))
    digest = hashlib.sha1(("%s\0%s" % (plugin, version)).encode()).hexdigest()[:10]
    return "openplatform_plugin_%s_%s" % (safe, digest)


class Runner:
    def __init__(self, host):
        self.host = host
        self.instances = {}
        self.n_running = 0
        self.closing = False
        self.libs = {}                 # (plugin, version) -> Lib; guarded by lib_lock
        self.lib_lock = threading.Lock()

    # ---- loading (worker threads, under lib_lock) -----------------------------

    def _load(self, r):
        pid, ver = r.plugin, r.version
        if not r.package_dir.startswith("/"):
            raise Failure(-errno.ENOEXEC, "package_dir of %s %s is not an absolute path: '%s'"
                          % (pid, ver, r.package_dir))
        if not r.entry or r.entry.startswith("/"):
            raise Failure(-errno.ENOEXEC, "entry of %s %s must be a path relative to the "
                          "package: '%s'" % (pid, ver, r.entry))
        try:
            dir_real = os.path.realpath(r.package_dir, strict=True)
            if not os.path.isdir(dir_real):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        except OSError as e:
            raise Failure(-errno.ENOEXEC, "cannot resolve package_dir %s: %s"
                          % (r.package_dir, e.strerror or e)) from None
        try:
            entry_real = os.path.realpath(os.path.join(dir_real, r.entry), strict=True)
        except OSError as e:
            raise Failure(-errno.ENOEXEC, "cannot resolve entry %s of %s %s: %s"
                          % (r.entry, pid, ver, e.strerror or e)) from None
        if os.path.commonpath([dir_real, entry_real]) != dir_real or entry_real == dir_real:
            raise Failure(-errno.ENOEXEC, "entry %s of %s %s leads out of the package "
                          "directory (to %s)" % (r.entry, pid, ver, entry_real))
        if not entry_real.endswith(".py") or not os.path.isfile(entry_real):
            raise Failure(-errno.ENOEXEC, "entry %s of %s %s is not a Python source file "
                          "(.py)" % (r.entry, pid, ver))
        name = _module_name(pid, ver)
        try:
            spec = importlib.util.spec_from_file_location(
                name, entry_real, submodule_search_locations=[dir_real])
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except BaseException as e:  # SyntaxError, ImportError, anything its code raises
            sys.modules.pop(name, None)
            _log_traceback("loading %s of %s %s failed" % (r.entry, pid, ver), e)
            raise Failure(-errno.ENOEXEC, "cannot load %s of %s %s: %s: %s"
                          % (r.entry, pid, ver, type(e).__name__, e)) from None
        api = getattr(module, "OPENPLATFORM_API", op.API_VERSION)
        if api != op.API_VERSION:
            raise Failure(-errno.EPROTO, "%s %s (%s) is written for plugin API version %r, "
                          "this host runs API version %d" % (pid, ver, r.entry, api,
                                                             op.API_VERSION))
        target = getattr(module, "plugin", None) or module
        hooks = {}
        for h in HOOKS:
            fn = getattr(target, h, None)
            if fn is None:
                continue
            if not callable(fn):
                raise Failure(-errno.EPROTO, "%s of %s %s is not callable (%s)"
                              % (h, pid, ver, type(fn).__name__))
            hooks[h] = fn
        lib = Lib(pid, ver, entry_real, dir_real, module, hooks)
        log.info("plugins", "loaded plugin=%s version=%s hooks=%s path=%s"
                 % (pid, ver, ",".join(sorted(hooks)) or "-", entry_real))
        return lib

    def _lib_get(self, r):
        with self.lib_lock:
            lib = self.libs.get((r.plugin, r.version))
            if lib is None:
                lib = self._load(r)
                self.libs[(r.plugin, r.version)] = lib
            return lib

    # ---- hooks (worker threads) -----------------------------------------------

    def _call_hook(self, what, fn, *args):
        """Run a hook; its result, or Failure for an exception."""
        try:
            return fn(*args)
        except op.PluginError as e:
            if not isinstance(e, op.ResourceError):
                # A deliberate failure: no traceback needed, the message says it.
                raise Failure(e.code, "%s failed: %s" % (what, e.message)) from None
            _log_traceback("%s raised %s" % (what, type(e).__name__), e)
            raise Failure(e.code, "%s failed: %s" % (what, e.message)) from None
        except BaseException as e:  # SystemExit too: a hook must not end its thread silently
            _log_traceback("%s raised %s" % (what, type(e).__name__), e)
            raise Failure(-errno.EIO, "%s raised %s: %s" % (what, type(e).__name__, e)) from None

    @staticmethod
    def _check_rc(what, rc):
        """The hook result as the C hooks' int: None/True/0 succeed."""
        if rc is None or rc is True:
            return
        if rc is False:
            raise Failure(-errno.EIO, "%s returned False" % what)
        if isinstance(rc, int):
            if rc > 0:
                raise Failure(-errno.EPROTO, "%s returned %d (must be None, 0 or a negative "
                              "errno)" % (what, rc))
            if rc < 0:
                raise Failure(rc, "%s failed: %s" % (what, _strerror(rc)))
            return
        raise Failure(-errno.EPROTO, "%s returned a %s (must be None or a negative errno)"
                      % (what, type(rc).__name__))

    def _run_action(self, job):
        r = job.req
        lib = self._lib_get(r)
        job.lib = lib
        name = ACTIONS[r.action]
        fn = lib.hooks.get(name)
        if fn is None:
            return
        ctx = HookContext(self, job.inst, lib)
        what = "%s hook of %s %s" % (name, lib.plugin, lib.version)
        if r.action == _plugin.PLUGIN_ACTION_UPGRADE:
            rc = self._call_hook(what, fn, ctx, r.from_version)
        else:
            rc = self._call_hook(what, fn, ctx)
        self._check_rc(what, rc)

    def _run_event(self, job):
        inst, ev = job.inst, job.req
        lib, fn = _loaded_hook(inst, "on_event")
        req = op.Request(ev.method, ev.path, [(h.name, h.value) for h in ev.headers], ev.body)
        what = "on_event of %s %s" % (lib.plugin, lib.version)
        res = self._call_hook(what, fn, HookContext(self, inst, lib), req)
        status, headers, body = 200, [], b""
        if isinstance(res, op.Response):
            status, headers, body = res.status, res.header_list(), res.body_bytes()
        elif isinstance(res, tuple):
            if len(res) == 3:
                r3 = op.Response(*res)
            elif len(res) == 2:
                r3 = op.Response(res[0], None, res[1])
            else:
                raise Failure(-errno.EPROTO, "%s returned a tuple of %d (want (status, "
                              "headers, body))" % (what, len(res)))
            status, headers, body = r3.status, r3.header_list(), r3.body_bytes()
        elif isinstance(res, (bytes, bytearray, memoryview, str)):
            body = op.Response(body=res).body_bytes()
        elif isinstance(res, int) and not isinstance(res, bool) and res < 0:
            raise Failure(res, "%s failed: %s" % (what, _strerror(res)))
        elif isinstance(res, int) and not isinstance(res, bool):
            status = res
        elif res is not None:
            raise Failure(-errno.EPROTO, "%s returned a %s (want a Response, (status, "
                          "headers, body), bytes or str)" % (what, type(res).__name__))
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise Failure(-errno.EPROTO, "%s answered status %r (must be 100..599)"
                          % (what, status))
        out = []
        for n, v in headers:
            n, v = str(n), "" if v is None else str(v)
            if not n or _HEADER_NAME_BAD.search(n) or "\r" in v or "\n" in v:
                raise Failure(-errno.EINVAL, "%s answered a bad header %r" % (what, n))
            out.append((n, v))
        if len(body) > MAX_RESPONSE_BODY:
            raise Failure(-errno.EMSGSIZE, "%s answered %d bytes (at most %d)"
                          % (what, len(body), MAX_RESPONSE_BODY))
        job.status, job.headers, job.body = status, out, body

    def _run_task(self, job):
        inst, t = job.inst, job.req
        lib, fn = _loaded_hook(inst, "on_task")
        what = "on_task %s of %s %s" % (t.name, lib.plugin, lib.version)
        rc = self._call_hook(what, fn, HookContext(self, inst, lib),
                             op.Task(t.name, t.scheduled_unix_ms, t.missed))
        self._check_rc(what, rc)

    def _work(self, job):
        """Worker thread: run the job, hand the completion to the bus thread."""
        try:
            if job.kind == "action":
                self._run_action(job)
            elif job.kind == "event":
                self._run_event(job)
            else:
                self._run_task(job)
        except Failure as f:
            job.code, job.message = f.code, f.message
        except BaseException as e:  # a bug of ours: still answer
            _log_traceback("hook runner", e)
            job.code, job.message = -errno.EIO, "internal error: %s" % e
        self.host.post(lambda: self._after(job))

    # ---- instances and queues (bus thread) ------------------------------------

    def _reply_for(self, job):
        m = _platform.PlatformMessage()
        if job.kind == "action":
            r = m.plugin.action_result
            r.SetInParent()
            if job.code:
                r.error.code = job.code
                r.error.message = job.message
                r.error.detail = job.inst.id
        elif job.kind == "event":
            r = m.plugin.response
            if job.code:
                r.status = 500
                r.error.code = job.code
                r.error.message = job.message
            else:
                r.status = job.status or 200
                r.body = job.body
                for n, v in job.headers:
                    r.headers.add(name=n, value=v)
        else:
            r = m.ability.result
            r.SetInParent()
            if job.code:
                r.error.code = job.code
                r.error.message = job.message
                r.error.detail = job.inst.id
        return m

    def _complete(self, job):
        job.done(job.code, job.message, self._reply_for(job))

    def _kick(self, inst):
        while not inst.busy and inst.queue:
            job = inst.queue[0]
            if job.kind == "action":
                # The hook sees the config and org the platform sent with it.
                inst.config_json = job.req.config_json or "{}"
                inst.org = job.req.org
            inst.busy = True
            self.n_running += 1
            t = threading.Thread(target=self._work, args=(job,), daemon=True,
                                 name="hook-%s" % inst.id[:8])
            try:
                t.start()
            except RuntimeError as e:  # cannot start a thread
                inst.busy = False
                self.n_running -= 1
                inst.queue.popleft()
                job.code, job.message = -errno.EIO, "cannot start the hook: %s" % e
                self._complete(job)

    def _log_result(self, job):
        iid = job.inst.id
        if job.kind == "event":
            if job.code:
                log.warn("plugins", "event failed: %s code=%d instance=%s"
                         % (job.message, job.code, iid))
            else:
                log.debug("plugins", "event answered status=%d bytes=%d instance=%s"
                          % (job.status, len(job.body), iid))
            return
        if job.kind == "task":
            if job.code:
                log.warn("plugins", "task failed: %s code=%d task=%s instance=%s"
                         % (job.message, job.code, job.req.name, iid))
            else:
                log.info("plugins", "task done task=%s instance=%s" % (job.req.name, iid))
            return
        r = job.req
        name = ACTIONS.get(r.action, "unknown")
        if job.code:
            log.warn("plugins", "%s failed: %s code=%d instance=%s plugin=%s version=%s"
                     % (name, job.message, job.code, iid, r.plugin, r.version))
        else:
            log.info("plugins", "%s done instance=%s plugin=%s version=%s"
                     % (name, iid, r.plugin, r.version))

    def _after(self, job):
        inst = job.inst
        inst.busy = False
        self.n_running -= 1
        inst.queue.popleft()
        drop = False
        if job.kind == "action" and job.lib is not None:
            # The version a hook ran in becomes the instance's, except after a
            # failed upgrade: the old one stays, for the rollback.
            a = job.req.action
            if job.code == 0 or a != _plugin.PLUGIN_ACTION_UPGRADE:
                inst.lib = job.lib
            drop = job.code == 0 and a == _plugin.PLUGIN_ACTION_UNINSTALL
        self._log_result(job)
        self._complete(job)
        if drop:
            # Uninstalled: a request already queued for the same id starts
            # from a fresh context.
            inst.lib = None
            inst.user_data = None
        if self.closing:
            while inst.queue:
                j = inst.queue.popleft()
                j.code, j.message = -errno.ECANCELED, "cancelled: the plugin host is stopping"
                self._complete(j)
        else:
            self._kick(inst)
        if not inst.busy and not inst.queue and (drop or inst.lib is None):
            if self.instances.get(inst.id) is inst:
                del self.instances[inst.id]  # nothing ever loaded, or uninstalled

    def _enqueue(self, inst, job):
        job.inst = inst
        inst.queue.append(job)
        self._kick(inst)

    # ---- public (bus thread) ----------------------------------------------------

    def action(self, req, done):
        """Queue one lifecycle hook. 0, or -EINVAL with nothing queued."""
        if self.closing or not req.instance or req.action not in ACTIONS:
            return -errno.EINVAL
        inst = self.instances.get(req.instance)
        if inst is None:
            inst = self.instances[req.instance] = Instance(req.instance)
        log.debug("plugins", "%s queued instance=%s plugin=%s version=%s"
                  % (ACTIONS[req.action], req.instance, req.plugin, req.version))
        self._enqueue(inst, Job("action", req, done))
        return 0

    def event(self, ev, done):
        """Queue one event for on_event. 0, -ENOENT (no such instance here) or
        -EINVAL."""
        if self.closing or not ev.instance:
            return -errno.EINVAL
        inst = self.instances.get(ev.instance)
        if inst is None:
            return -errno.ENOENT
        self._enqueue(inst, Job("event", ev, done))
        return 0

    def task(self, trig, done):
        """Queue one due task for on_task. 0, -ENOENT or -EINVAL."""
        if self.closing or not trig.instance or trig.kind != _ability.ABILITY_KIND_TASK:
            return -errno.EINVAL
        inst = self.instances.get(trig.instance)
        if inst is None:
            return -errno.ENOENT
        self._enqueue(inst, Job("task", trig, done))
        return 0

    def busy(self):
        return self.n_running > 0

    def loaded_instances(self):
        """Every instance whose plugin is loaded here, for the ready report."""
        return sorted(i.id for i in self.instances.values() if i.lib is not None)

    def close(self):
        """Stop: queued jobs complete with -ECANCELED; running hooks finish
        (the host waits for them: n_running)."""
        if self.closing:
            return
        self.closing = True
        for inst in list(self.instances.values()):
            keep = 1 if inst.busy else 0
            while len(inst.queue) > keep:
                j = inst.queue.pop()
                j.code, j.message = -errno.ECANCELED, "cancelled: the plugin host is stopping"
                self._complete(j)
