"""Open Platform plugin SDK for Python — the one module a plugin author imports.

A Python plugin is a package directory with a manifest.json
("language": "python", "runtime_version": "3", "entry": "plugin.py") and
its entry file. The entry defines its hooks either as module-level
functions or as methods of an object named ``plugin``::

    import openplatform as op

    def install(ctx):
        ctx.log("installed for org %s" % ctx.org)

    def on_event(ctx, request):
        name = ctx.config.get("greeting_name") or "world"
        return op.Response(200, {"Content-Type": "text/plain"}, "hello, " + name)

or::

    class Hello(op.Plugin):
        def start(self, ctx): ...
        def on_event(self, ctx, request): ...

    plugin = Hello()

Hooks (all optional; a missing hook is "nothing to do", except on_event
and on_task, whose absence makes every event / task run fail):

    install(ctx)      uninstall(ctx)    enable(ctx)      disable(ctx)
    upgrade(ctx, from_version)          start(ctx)       stop(ctx)
    on_event(ctx, request) -> Response | (status, headers, body) | bytes | str
    on_task(ctx, task)

A hook succeeds when it returns (None, 0 or True). It fails when it raises
(the action's error is the exception; a PluginError carries its own errno
code, any other exception is -EIO, and the traceback goes to the host log)
or returns a negative errno value as the C SDK's hooks do.

Threading: hooks run on worker threads of the host, never on the thread
that talks to the platform, so a slow hook leaves the host "busy", not
"dead" (a hook that overruns the action timeout gets its host killed).
Hooks of one instance never run concurrently; hooks of different instances
of the same plugin (powerSave hosts hold several) may — keep per-instance
state in ``ctx.user_data`` and lock anything module-global yourself.

Every resource call (ctx.db_exec, ctx.http_request, ctx.file_*) and
ability call (ctx.task_register, ctx.service_register, ...) is a
synchronous request to the platform, which enforces the manifest's
permissions. A failure raises ResourceError with a negative errno code:

    -EACCES        denied by the manifest, the DB authorizer or the sandbox
    -ETIMEDOUT     statement time limit, HTTP timeout, or no answer
    -EFBIG         result, response or file over its cap (-EDQUOT: quota)
    -ECONNREFUSED / -EHOSTUNREACH   HTTP connect failed
    -EINVAL        bad request (SQL syntax, bad path, URL, method, cron)
    -ENOENT        no such file
    -ENOTCONN      the host has lost the platform for now
    -ECANCELED     the host is stopping
    -EOPNOTSUPP    the platform does not offer this resource

See docs/python-host.md."""

import errno as _errno
import json as _json

API_VERSION = 1

# Log levels: syslog priorities, as in the C SDK.
ERR, WARNING, NOTICE, INFO, DEBUG = 3, 4, 5, 6, 7

__all__ = [
    "API_VERSION", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG", "PluginError",
    "ResourceError", "Plugin", "Context", "Request", "Response", "DbResult",
    "HttpResponse", "FileEntry", "Task",
]


class PluginError(Exception):
    """Raise from a hook to fail the action with a chosen errno code.

    ``code`` is a negative errno value (a positive one is negated), e.g.
    ``raise PluginError(-errno.EINVAL, "greeting_name must be a string")``."""

    def __init__(self, code=-_errno.EIO, message="", detail=""):
        code = int(code)
        self.code = -code if code > 0 else (code or -_errno.EIO)
        self.message = message or _errno.errorcode.get(-self.code, "error")
        self.detail = detail
        super().__init__(self.message)


class ResourceError(PluginError):
    """A resource or ability call failed: ``code`` (negative errno),
    ``message`` (the platform's one-line reason) and ``detail``."""


class Plugin:
    """Optional base class: every hook does nothing. Subclass it and assign
    an instance to the module attribute ``plugin``."""

    def install(self, ctx):
        pass

    def uninstall(self, ctx):
        pass

    def enable(self, ctx):
        pass

    def disable(self, ctx):
        pass

    def upgrade(self, ctx, from_version):
        pass

    def start(self, ctx):
        pass

    def stop(self, ctx):
        pass


class _HeadersBody:
    """What an HTTP request and an HTTP response share: ``headers`` (a list
    of (name, value) pairs, as sent) and ``body`` (bytes)."""

    __slots__ = ()

    def header(self, name, default=None):
        """The first header called ``name`` (case-insensitive)."""
        low = name.lower()
        for n, v in self.headers:
            if n.lower() == low:
                return v
        return default

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")


class Request(_HeadersBody):
    """An event for the instance: an HTTP invoke as method, path, headers
    (a list of (name, value) pairs, as sent) and body (bytes)."""

    __slots__ = ("method", "path", "headers", "body")

    def __init__(self, method="", path="", headers=(), body=b""):
        self.method = method
        self.path = path
        self.headers = list(headers)
        self.body = bytes(body)

    def json(self):
        return _json.loads(self.body.decode("utf-8")) if self.body else None

    def __repr__(self):
        return "Request(%r, %r, %d headers, %d bytes)" % (
            self.method, self.path, len(self.headers), len(self.body))


class Response:
    """What on_event returns: ``status`` (100..599, default 200),
    ``headers`` (a dict or a list of (name, value) pairs) and ``body``
    (bytes, or str sent as UTF-8)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status=200, headers=None, body=b""):
        self.status = status
        self.headers = headers if headers is not None else []
        self.body = body

    def header_list(self):
        h = self.headers
        return list(h.items()) if isinstance(h, dict) else list(h)

    def body_bytes(self):
        b = self.body
        if b is None:
            return b""
        return b.encode("utf-8") if isinstance(b, str) else bytes(b)


class DbResult:
    """The result of one statement: ``columns`` (names), ``rows`` (a list
    of tuples of None / int / float / str / bytes), ``changes`` (rows a
    write changed) and ``last_insert_id``. Iterating yields the rows."""

    __slots__ = ("columns", "rows", "changes", "last_insert_id")

    def __init__(self, columns=(), rows=(), changes=0, last_insert_id=0):
        self.columns = list(columns)
        self.rows = list(rows)
        self.changes = changes
        self.last_insert_id = last_insert_id

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    def dicts(self):
        """The rows as dicts keyed by column name."""
        return [dict(zip(self.columns, r)) for r in self.rows]

    def scalar(self, default=None):
        """The first cell of the first row."""
        return self.rows[0][0] if self.rows and self.rows[0] else default


class HttpResponse(_HeadersBody):
    """An outbound HTTP response, whatever its status."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status=0, headers=(), body=b""):
        self.status = status
        self.headers = list(headers)
        self.body = bytes(body)

    def json(self):
        return _json.loads(self.body.decode("utf-8"))


class FileEntry:
    """One entry of ctx.file_list."""

    __slots__ = ("name", "size", "dir")

    def __init__(self, name, size=0, dir=False):  # noqa: A002 - the protocol's name
        self.name = name
        self.size = size
        self.dir = dir

    def __repr__(self):
        return "FileEntry(%r, %d%s)" % (self.name, self.size, ", dir" if self.dir else "")


class Task:
    """A due scheduled task, given to on_task: its ``name``, the time it was
    due (``scheduled_unix_ms``) and ``missed`` (it fires late, once, for runs
    missed while the platform was down)."""

    __slots__ = ("name", "scheduled_unix_ms", "missed")

    def __init__(self, name, scheduled_unix_ms=0, missed=False):
        self.name = name
        self.scheduled_unix_ms = scheduled_unix_ms
        self.missed = missed


class Context:
    """The instance's context, passed to every hook. Valid during the hook
    only (do not keep it, nor use it from another thread). The host provides
    the implementation; this class documents it.

    Attributes:
        instance_id     the instance's UUID
        org             the organisation it belongs to
        plugin_id       the package id
        plugin_version  the version this hook runs in (in upgrade: the new one)
        package_dir     the stored package directory (read-only)
        config          the instance's configuration, a dict (parsed JSON)
        config_json     the same as JSON text
        user_data       anything the plugin keeps per instance across hooks,
                        for as long as the instance lives in this host
                        (lost when the host exits); None until set
    """

    instance_id = ""
    org = ""
    plugin_id = ""
    plugin_version = ""
    package_dir = ""
    config_json = "{}"
    user_data = None

    @property
    def config(self):
        raise NotImplementedError

    def log(self, message, level=INFO):
        """One log line in the host's log, tagged with the instance."""
        raise NotImplementedError

    # ---- resources ------------------------------------------------------

    def db_exec(self, sql, params=(), timeout_ms=None):
        """Run one statement with bound parameters (?1, ?2 ... in order;
        None, bool, int, float, str, bytes) in the instance's own SQLite
        database. Returns a DbResult."""
        raise NotImplementedError

    def http_request(self, method, url, headers=None, body=b"", timeout_ms=None):
        """An outbound HTTP request through the platform to a target the
        manifest's permissions.http allows. Returns an HttpResponse."""
        raise NotImplementedError

    def file_read(self, path):
        """The content (bytes) of a file under the instance's directory."""
        raise NotImplementedError

    def file_write(self, path, data):
        """Create or replace a file (bytes, or str written as UTF-8)."""
        raise NotImplementedError

    def file_list(self, path=""):
        """The entries (FileEntry) of a directory, "" = the root."""
        raise NotImplementedError

    def file_delete(self, path):
        """Remove a file or an empty directory."""
        raise NotImplementedError

    # ---- abilities ------------------------------------------------------

    def task_register(self, name, cron):
        """Register (or replace) the scheduled task ``name`` with a 5-field
        cron expression; on_task runs when it is due."""
        raise NotImplementedError

    def task_unregister(self, name):
        raise NotImplementedError

    def service_register(self, port, health_path="/health"):
        """Register the plugin's web service listening on loopback ``port``;
        the platform proxies /plugins/<uuid>/svc/... to it."""
        raise NotImplementedError

    def service_unregister(self):
        raise NotImplementedError
