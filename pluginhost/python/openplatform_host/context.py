"""The context a hook receives: openplatform.Context implemented on top of
the host's synchronous platform calls (Host.call, any thread)."""

import errno
import json

import openplatform as op

from . import log
from .bus import pb

_resource = pb["resource"]
_ability = pb["ability"]
_platform = pb["platform"]
_plugin = pb["plugin"]

# As the C host's PH_PLATCALL_TIMEOUT_MS: the platform bounds each resource
# itself; the hook's action timeout bounds the hook.
CALL_TIMEOUT_MS = 60000


def _db_value(v):
    dv = _resource.DbValue()
    if v is None:
        dv.null = True
    elif isinstance(v, bool):
        dv.integer = int(v)
    elif isinstance(v, int):
        dv.integer = v
    elif isinstance(v, float):
        dv.real = v
    elif isinstance(v, str):
        dv.text = v
    elif isinstance(v, (bytes, bytearray, memoryview)):
        dv.blob = bytes(v)
    else:
        raise TypeError("cannot bind a %s as an SQL value (None, bool, int, float, str, bytes)"
                        % type(v).__name__)
    return dv


def _py_value(dv):
    which = dv.WhichOneof("value")
    if which is None or which == "null":
        return None
    return getattr(dv, which)


def _text(s, what):
    if not isinstance(s, str):
        raise TypeError("%s must be a str, not %s" % (what, type(s).__name__))
    return s


class HookContext(op.Context):
    """One per hook run; valid during that hook only."""

    def __init__(self, runner, inst, lib):
        self._runner = runner
        self._inst = inst
        self._lib = lib
        self._config = None
        self.instance_id = inst.id
        self.org = inst.org
        self.config_json = inst.config_json
        self.plugin_id = lib.plugin
        self.plugin_version = lib.version
        self.package_dir = lib.package_dir

    # ---- context ----------------------------------------------------------

    @property
    def config(self):
        if self._config is None:
            cfg = json.loads(self.config_json or "{}")
            if not isinstance(cfg, dict):
                raise ValueError("the instance config is not a JSON object")
            self._config = cfg
        return self._config

    @property
    def user_data(self):
        return self._inst.user_data

    @user_data.setter
    def user_data(self, value):
        self._inst.user_data = value

    def log(self, message, level=op.INFO):
        log.log(level, "plugin", "%s instance=%s plugin=%s version=%s" % (
            message, self.instance_id, self.plugin_id, self.plugin_version))

    # ---- calls ------------------------------------------------------------

    def _call(self, channel, body, timeout_ms):
        """Send `body` (a ResourceRequest or an ability message) and wait.
        Returns the REPLY's channel body; raises ResourceError."""
        m = _platform.PlatformMessage()
        if channel == "resource":
            m.resource.request.CopyFrom(body)
        else:
            getattr(m.ability, channel).CopyFrom(body)
        timeout_ms = int(timeout_ms or CALL_TIMEOUT_MS)
        status, reply, why = self._runner.host.call(m, timeout_ms)
        if status < 0:
            raise op.ResourceError(status, why)
        h = reply.header
        if h.HasField("error") and h.error.code:
            raise op.ResourceError(h.error.code, h.error.message, h.error.detail)
        return reply

    def _resource_call(self, kind, field, op_msg, timeout_ms=None):
        req = _resource.ResourceRequest(instance=self.instance_id, kind=kind)
        getattr(req, field).CopyFrom(op_msg)
        reply = self._call("resource", req, timeout_ms)
        if reply.WhichOneof("channel") != "resource" or \
                reply.resource.WhichOneof("body") != "response":
            raise op.ResourceError(-errno.EPROTO, "the platform answered a %s request with %s"
                                   % (field, reply.WhichOneof("channel")))
        resp = reply.resource.response
        if resp.HasField("error") and resp.error.code:
            raise op.ResourceError(resp.error.code, resp.error.message, resp.error.detail)
        return resp

    def _ability_call(self, field, msg):
        reply = self._call(field, msg, None)
        if reply.WhichOneof("channel") == "ability" and \
                reply.ability.WhichOneof("body") == "result":
            e = reply.ability.result.error
            if reply.ability.result.HasField("error") and e.code:
                raise op.ResourceError(e.code, e.message, e.detail)

    # ---- resources --------------------------------------------------------

    def db_exec(self, sql, params=(), timeout_ms=None):
        req = _resource.DbExecRequest(sql=_text(sql, "sql"))
        for p in params:
            req.params.append(_db_value(p))
        resp = self._resource_call(_resource.RESOURCE_KIND_DB, "db", req, timeout_ms)
        r = resp.db
        rows = [tuple(_py_value(v) for v in row.values) for row in r.rows]
        return op.DbResult(list(r.columns), rows, r.changes, r.last_insert_id)

    def http_request(self, method, url, headers=None, body=b"", timeout_ms=None):
        req = _resource.HttpRequest(method=_text(method, "method"), url=_text(url, "url"))
        hs = headers.items() if isinstance(headers, dict) else (headers or ())
        for n, v in hs:
            req.headers.append(_plugin.HttpHeader(name=str(n), value=str(v)))
        if isinstance(body, str):
            body = body.encode("utf-8")
        req.body = bytes(body or b"")
        resp = self._resource_call(_resource.RESOURCE_KIND_HTTP, "http", req, timeout_ms)
        r = resp.http
        return op.HttpResponse(r.status, [(h.name, h.value) for h in r.headers], r.body)

    def _file(self, fop, path, data=b""):
        req = _resource.FileRequest(op=fop, path=_text(path, "path"), data=data)
        return self._resource_call(_resource.RESOURCE_KIND_FILE, "file", req).file

    def file_read(self, path):
        return bytes(self._file(_resource.FILE_OP_READ, path).data)

    def file_write(self, path, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._file(_resource.FILE_OP_WRITE, path, bytes(data))

    def file_list(self, path=""):
        r = self._file(_resource.FILE_OP_LIST, path)
        return [op.FileEntry(e.name, e.size, e.dir) for e in r.entries]

    def file_delete(self, path):
        self._file(_resource.FILE_OP_DELETE, path)

    # ---- abilities --------------------------------------------------------

    def task_register(self, name, cron):
        self._ability_call("register", _ability.AbilityRegister(
            instance=self.instance_id, kind=_ability.ABILITY_KIND_TASK,
            name=_text(name, "name"), cron=_text(cron, "cron")))

    def task_unregister(self, name):
        self._ability_call("unregister", _ability.AbilityUnregister(
            instance=self.instance_id, kind=_ability.ABILITY_KIND_TASK, name=_text(name, "name")))

    def service_register(self, port, health_path="/health"):
        port = int(port)
        if not 0 < port < 65536:
            raise op.ResourceError(-errno.EINVAL, "port must be 1..65535", "port")
        self._ability_call("register", _ability.AbilityRegister(
            instance=self.instance_id, kind=_ability.ABILITY_KIND_SERVICE, name="", port=port,
            health_path=_text(health_path, "health_path")))

    def service_unregister(self):
        self._ability_call("unregister", _ability.AbilityUnregister(
            instance=self.instance_id, kind=_ability.ABILITY_KIND_SERVICE, name=""))
