"""hello-py 1.0.0: the Python twin of examples/hello. Answers every invoke
with "hello, <name>", where <name> is the instance config's "greeting_name"
(default "world").

    config:  {"greeting_name": "Ada"}
    invoke:  any method and path  ->  200 text/plain "hello, Ada"
"""

import errno

import openplatform as op


def greeting_name(ctx):
    name = ctx.config.get("greeting_name")
    if name is not None and not isinstance(name, str):
        raise op.PluginError(-errno.EINVAL, "greeting_name must be a string")
    return name or "world"


def install(ctx):
    # Refuse a bad config early.
    ctx.log("installed for org %s, greeting %s" % (ctx.org, greeting_name(ctx)))


def start(ctx):
    ctx.log("hello %s started" % ctx.plugin_version)


def stop(ctx):
    ctx.log("hello %s stopped" % ctx.plugin_version)


def on_event(ctx, request):
    text = "hello, %s" % greeting_name(ctx)
    ctx.log("%s %s -> %s" % (request.method, request.path, text), op.DEBUG)
    return op.Response(200, {"Content-Type": "text/plain; charset=utf-8"}, text)

# Hooks left out (uninstall, enable, disable, upgrade) have nothing to do.
