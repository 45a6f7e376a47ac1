"""hanging-py: its start hook never returns (it waits on an event nobody
sets), so the platform must time the start out and kill the host."""

import threading

import openplatform as op

_never = threading.Event()


def start(ctx):
    ctx.log("start: waiting forever", op.NOTICE)
    while not _never.wait(3600):
        pass


def on_event(ctx, request):
    return "unreachable"
