"""slowstart-py: its start hook sleeps 30 s (config "start_sleep_ms") —
longer than the platform's action timeout — so the platform must time the
action out and kill the host (the twin of examples/slowstart)."""

import time

import openplatform as op


def start(ctx):
    ms = ctx.config.get("start_sleep_ms", 30000)
    ctx.log("start: sleeping %d ms" % ms, op.NOTICE)
    time.sleep(ms / 1000.0)
    ctx.log("start: done", op.NOTICE)


def on_event(ctx, request):
    return "started at last"
