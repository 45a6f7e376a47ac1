"""hello-py 2.1.0 with a broken migration: its upgrade hook always fails
with -EIO, so the platform must roll back (the twin of
examples/hello_bad_upgrade)."""

import errno

import openplatform as op


def upgrade(ctx, from_version):
    raise op.PluginError(-errno.EIO, "migration from %s is broken" % from_version)


def on_event(ctx, request):
    return "hello v2.1 (should never answer: its upgrade fails)"
