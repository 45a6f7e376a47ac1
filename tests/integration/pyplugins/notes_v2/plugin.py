"""notes-py 1.1.0: examples/notes-py (1.0.0) plus what an upgrade adds, for
the tests (test_it_platformctl): its upgrade hook accepts only 1.0.x, keeps
the notes table as it is and records the version it came from in a new
`meta` table.

    invoke path        body          answer
    /add               the note      201 {"id": 1}
    /get/<id>                        200 the note (text/plain), 404 if none
    /count                           200 {"count": 2}
    /version                         200 notes-py 1.1.0 (text/plain)
    /meta/<key>                      200 the value (text/plain), 404 if none
"""

import errno
import json
import time

import openplatform as op

SCHEMA = ("CREATE TABLE IF NOT EXISTS notes ("
          " id INTEGER PRIMARY KEY,"
          " text TEXT NOT NULL,"
          " created_ms INTEGER NOT NULL)")
META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def _json(status, value):
    return op.Response(status, {"Content-Type": "application/json"}, json.dumps(value))


def _text(status, value):
    return op.Response(status, {"Content-Type": "text/plain; charset=utf-8"}, value)


def _note_id(path, prefix):
    try:
        return int(path[len(prefix):])
    except ValueError:
        raise op.PluginError(-errno.EINVAL, "bad note id in %s" % path) from None


class Notes(op.Plugin):
    def install(self, ctx):
        ctx.db_exec(SCHEMA)
        ctx.db_exec(META)

    def upgrade(self, ctx, from_version):
        if not from_version.startswith("1.0."):
            raise op.PluginError(-errno.EINVAL,
                                 "cannot upgrade from %s: only 1.0.x" % from_version)
        ctx.db_exec(SCHEMA)
        ctx.db_exec(META)
        ctx.db_exec("INSERT OR REPLACE INTO meta(key, value) VALUES ('upgraded_from', ?1)",
                    (from_version,))
        ctx.log("upgraded from %s to %s" % (from_version, ctx.plugin_version), op.NOTICE)

    def start(self, ctx):
        n = ctx.db_exec("SELECT count(*) FROM notes").scalar(0)
        ctx.log("started with %d notes" % n)

    def on_event(self, ctx, request):
        path = request.path
        if path == "/add":
            text = request.text
            if not text:
                return _json(400, {"error": "empty note"})
            r = ctx.db_exec("INSERT INTO notes(text, created_ms) VALUES (?1, ?2)",
                            (text, int(time.time() * 1000)))
            return _json(201, {"id": r.last_insert_id})
        if path.startswith("/get/"):
            r = ctx.db_exec("SELECT text FROM notes WHERE id = ?1",
                            (_note_id(path, "/get/"),))
            if not r.rows:
                return _json(404, {"error": "no such note"})
            return _text(200, r.scalar())
        if path == "/count":
            return _json(200, {"count": ctx.db_exec("SELECT count(*) FROM notes").scalar(0)})
        if path == "/version":
            return _text(200, "notes-py " + ctx.plugin_version)
        if path.startswith("/meta/"):
            r = ctx.db_exec("SELECT value FROM meta WHERE key = ?1", (path[len("/meta/"):],))
            if not r.rows:
                return _json(404, {"error": "no such key"})
            return _text(200, r.scalar())
        return _json(404, {"error": "unknown path %s" % path})


plugin = Notes()
