"""One log line per event, in the format of libplatcommon's plat_log:

    2026-11-26T10:00:00.123Z info pluginhost-py/host message key=value

written with a single write(2) to stderr (hostbootd captures it into the
host's log file). Under systemd (JOURNAL_STREAM names our stderr) the
journal prefix "<level>" is used instead of the timestamp, as plat_log does.
Safe from any thread."""

import os
import time

ERR, WARNING, NOTICE, INFO, DEBUG = 3, 4, 5, 6, 7
_NAMES = {ERR: "err", WARNING: "warning", NOTICE: "notice", INFO: "info", DEBUG: "debug"}
_LEVELS = {v: k for k, v in _NAMES.items()}
_LINE_MAX = 2048

_daemon = "pluginhost-py"
_level = INFO
_journal = False
_fd = 2


def _detect_journal(fd):
    js = os.environ.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in js.split(":", 1))
        st = os.fstat(fd)
    except (ValueError, OSError):
        return False
    return st.st_dev == dev and st.st_ino == ino


def init(daemon):
    global _daemon, _journal
    _daemon = daemon
    _journal = _detect_journal(_fd)


def level_from_name(name):
    """The level for "err".."debug", or None."""
    return _LEVELS.get(name)


def set_level(level):
    global _level
    _level = min(max(level, ERR), DEBUG)


def get_level():
    return _level


def log(level, component, text):
    if level > _level:
        return
    level = min(max(level, ERR), DEBUG)
    if _journal:
        prefix = "<%d>%s %s/%s " % (level, _NAMES[level], _daemon, component)
    else:
        now = time.time()
        tm = time.gmtime(now)
        prefix = "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s/%s " % (
            tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
            int(now * 1000) % 1000, _NAMES[level], _daemon, component)
    # One event, one line: embedded newlines would split it.
    line = (prefix + str(text)).replace("\n", " ").replace("\r", " ").rstrip(" ")
    data = line.encode("utf-8", "replace")[:_LINE_MAX - 2] + b"\n"
    while True:
        try:
            os.write(_fd, data)
            return
        except InterruptedError:
            continue
        except OSError:
            return  # a closed log pipe must not kill the host


def err(component, text):
    log(ERR, component, text)


def warn(component, text):
    log(WARNING, component, text)


def notice(component, text):
    log(NOTICE, component, text)


def info(component, text):
    log(INFO, component, text)


def debug(component, text):
    log(DEBUG, component, text)
