"""crashy-py: an invoke of path "/crash" kills its host with SIGSEGV, on
purpose, to exercise crash handling (the twin of examples/crashy). Any
other path answers 200 "ok"."""

import os
import signal

import openplatform as op


def on_event(ctx, request):
    if request.path == "/crash":
        ctx.log("crashing on purpose (SIGSEGV)", op.WARNING)
        os.kill(os.getpid(), signal.SIGSEGV)
    return op.Response(200, {"Content-Type": "text/plain"}, "ok")
