"""raising-py: the hooks named in the config's "raise_in" list raise a
ValueError from a helper function (so the traceback has two frames);
on_event raises for path /raise. Everything else succeeds."""


def _check_inventory(hook):
    raise ValueError("inventory %s refused: shelf 7 is missing" % hook)


def _maybe_raise(ctx, hook):
    if hook in ctx.config.get("raise_in", []):
        _check_inventory(hook)


def install(ctx):
    _maybe_raise(ctx, "install")


def enable(ctx):
    _maybe_raise(ctx, "enable")


def start(ctx):
    _maybe_raise(ctx, "start")


def on_event(ctx, request):
    if request.path == "/raise":
        raise KeyError("no such shelf")
    return "fine"
