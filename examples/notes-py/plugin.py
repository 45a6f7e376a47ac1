"""notes-py 1.0.0: notes kept in the instance's own SQLite database, through
the platform's DB resource (ctx.db_exec). The data outlives hosts, restarts
of the platform and stop/start: it is in the platform's per-instance
database, not in the plugin's memory.

    invoke path        body          answer
    /add               the note      201 {"id": 1}
    /list                            200 [{"id": 1, "text": "...", "created_ms": ...}]
    /get/<id>                        200 the note (text/plain), 404 if none
    /delete/<id>                     200 {"deleted": 1}
    /count                           200 {"count": 2}

Any HTTP method does; the path decides. Written as a class with one
instance named `plugin`, to show that style (hello-py uses functions)."""

import errno
import json
import time

import openplatform as op

SCHEMA = ("CREATE TABLE IF NOT EXISTS notes ("
          " id INTEGER PRIMARY KEY,"
          " text TEXT NOT NULL,"
          " created_ms INTEGER NOT NULL)")


def _json(status, value):
    return op.Response(status, {"Content-Type": "application/json"}, json.dumps(value))


def _note_id(path, prefix):
    try:
        return int(path[len(prefix):])
    except ValueError:
        raise op.PluginError(-errno.EINVAL, "bad note id in %s" % path) from None


class Notes(op.Plugin):
    def install(self, ctx):
        ctx.db_exec(SCHEMA)
        ctx.log("notes table ready")

    def upgrade(self, ctx, from_version):
        ctx.db_exec(SCHEMA)  # nothing to migrate yet: 1.x has one schema

    def start(self, ctx):
        # The table exists since install; checking here makes a broken
        # database fail the start rather than the first invoke.
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
        if path == "/list":
            r = ctx.db_exec("SELECT id, text, created_ms FROM notes ORDER BY id")
            return _json(200, r.dicts())
        if path.startswith("/get/"):
            r = ctx.db_exec("SELECT text FROM notes WHERE id = ?1",
                            (_note_id(path, "/get/"),))
            if not r.rows:
                return _json(404, {"error": "no such note"})
            return op.Response(200, {"Content-Type": "text/plain; charset=utf-8"}, r.scalar())
        if path.startswith("/delete/"):
            r = ctx.db_exec("DELETE FROM notes WHERE id = ?1", (_note_id(path, "/delete/"),))
            return _json(200, {"deleted": r.changes})
        if path == "/count":
            return _json(200, {"count": ctx.db_exec("SELECT count(*) FROM notes").scalar(0)})
        return _json(404, {"error": "unknown path %s" % path})


plugin = Notes()
