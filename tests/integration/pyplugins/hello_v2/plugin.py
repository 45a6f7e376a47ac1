"""hello-py 2.0.0: answers "hello v2, <name>"; its upgrade hook accepts any
1.x version (the twin of examples/hello_v2)."""

import errno

import openplatform as op


def upgrade(ctx, from_version):
    if not from_version.startswith("1."):
        raise op.PluginError(-errno.EINVAL, "cannot upgrade from %s: only 1.x" % from_version)
    ctx.log("upgraded from %s to %s" % (from_version, ctx.plugin_version), op.NOTICE)


def on_event(ctx, request):
    name = ctx.config.get("greeting_name") or "world"
    return op.Response(200, {"Content-Type": "text/plain; charset=utf-8"}, "hello v2, " + name)
