"""pluginhost-py: the command line of the Python plugin host, the same as
the C pluginhost's (docs/pluginhost.md, docs/python-host.md):

    by hand:        pluginhost-py --dev --platform EP [--host-id ID]
    from hostbootd: pluginhost-py --platform EP --host-id ID --hostboot HB --mode MODE
                                  [--platform-lost-exit-ms N] [--key-fd N --platform-key Z85]

The CURVE secret key never comes in argv or the environment: from an
inherited pipe (--key-fd, hostbootd) or a 0600 file (--key-file, dev).

Usage errors exit 64 (EX_USAGE) with a message on stderr."""

import sys
import uuid

from . import keys, log

EX_USAGE = 64
EX_CONFIG = 78

USAGE = """\
usage: pluginhost-py --dev --platform ENDPOINT [--host-id host-<uuid>] [--log-level L]
       pluginhost-py --platform ENDPOINT --host-id host-<uuid> --hostboot hostboot-<name>
                     --mode highPerformance|powerSave [--platform-lost-exit-ms N]
  --dev                     developer mode: started by hand, registers by itself
  --platform EP             the platform's bus, e.g. tcp://127.0.0.1:7700
  --host-id ID              this host's id (--dev default: a new random one)
  --hostboot ID             the hostboot that spawned this host
  --mode MODE               host mode given by the platform
  --platform-lost-exit-ms N exit after losing the platform for N ms (0 = never)
  --log-level LEVEL         err|warning|notice|info|debug (default info)
  --key-fd N                read this host's CURVE secret key from fd N (hostbootd)
  --platform-key Z85        the platform's CURVE public key
  --key-file FILE           dev: this host's CURVE secret key (mode 0600); its
                            public key must be authorized for --host-id in
                            platformd's bus.authorized_keys_file
  --platform-key-file FILE  dev: the platform's CURVE public key
  without keys the host connects in plaintext (platformd bus.curve false)
"""

# name -> takes an argument
OPTIONS = {
    "dev": False, "platform": True, "host-id": True, "hostboot": True, "mode": True,
    "platform-lost-exit-ms": True, "log-level": True, "key-fd": True, "platform-key": True,
    "key-file": True, "platform-key-file": True, "version": False, "help": False,
}


class UsageError(Exception):
    pass


def _parse(argv):
    """getopt_long-like: --name VALUE, --name=VALUE, unambiguous prefixes."""
    opts = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("--") or a == "--":
            break
        name, eq, value = a[2:].partition("=")
        matches = [o for o in OPTIONS if o == name] or [o for o in OPTIONS if o.startswith(name)]
        if len(matches) != 1:
            raise UsageError("%s option: %s" % ("ambiguous" if matches else "unknown", a))
        name = matches[0]
        if OPTIONS[name]:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError("option --%s needs an argument" % name)
                value = argv[i]
            opts[name] = value
        else:
            if eq:
                raise UsageError("option --%s takes no argument" % name)
            opts[name] = True
        i += 1
    if i < len(argv):
        raise UsageError("unexpected argument: %s" % argv[i])
    return opts


def _usage_error(what):
    log.err("main", what)
    sys.stderr.write(USAGE)
    return EX_USAGE


def main(argv, build_version):
    log.init("pluginhost-py")
    try:
        o = _parse(argv)
    except UsageError as e:
        return _usage_error(str(e))
    if o.get("version"):
        print("pluginhost-py %s" % build_version)
        return 0
    if o.get("help"):
        sys.stdout.write(USAGE)
        return 0
    from .bus import id_kind  # imports zmq and the generated modules

    platform = o.get("platform")
    host_id = o.get("host-id")
    hostboot = o.get("hostboot")
    mode = o.get("mode")
    dev = bool(o.get("dev"))
    lost = o.get("platform-lost-exit-ms", "0")
    if not lost.isdigit():
        return _usage_error("bad --platform-lost-exit-ms: %s" % lost)
    lost_ms = int(lost)
    if not platform:
        return _usage_error("--platform is required (e.g. tcp://127.0.0.1:7700)")
    level = o.get("log-level")
    if level is not None:
        lv = log.level_from_name(level)
        if lv is None:
            return _usage_error("bad --log-level (use err, warning, notice, info or debug): %s"
                                % level)
        log.set_level(lv)
    if host_id is not None and id_kind(host_id) != "host":
        return _usage_error("bad --host-id: must be host-<uuid> with a lowercase canonical "
                            "UUID: %s" % host_id)
    if dev:
        if hostboot is not None or (mode is not None and mode != "dev"):
            return _usage_error("--dev hosts have no --hostboot and no other --mode")
        mode, hostboot = "dev", ""
    else:
        if host_id is None:
            return _usage_error("--host-id is required unless --dev")
        if hostboot is None or id_kind(hostboot) != "hostboot":
            return _usage_error("--hostboot hostboot-<name> is required unless --dev%s"
                                % (": " + hostboot if hostboot else ""))
        if mode not in ("highPerformance", "powerSave"):
            return _usage_error("--mode must be highPerformance or powerSave unless --dev%s"
                                % (": " + mode if mode else ""))
    # CURVE keys: both or neither (as the C pluginhost).
    key_fd, key_file = o.get("key-fd"), o.get("key-file")
    platform_key, platform_key_file = o.get("platform-key"), o.get("platform-key-file")
    if key_fd is not None and (not key_fd.isdigit() or not 3 <= int(key_fd) <= 1023):
        return _usage_error("bad --key-fd: %s" % key_fd)
    if key_fd is not None and key_file is not None:
        return _usage_error("--key-fd and --key-file exclude each other")
    if platform_key is not None and platform_key_file is not None:
        return _usage_error("--platform-key and --platform-key-file exclude each other")
    have_secret = key_fd is not None or key_file is not None
    have_server = platform_key is not None or platform_key_file is not None
    if have_secret != have_server:
        return _usage_error("a CURVE key needs the platform's key too (--key-fd/--key-file with "
                            "--platform-key/--platform-key-file)")
    if key_file is not None and host_id is None:
        return _usage_error("--key-file needs --host-id: the key is authorized for one id")
    curve = None
    if have_secret:
        try:
            secret = (keys.read_fd(int(key_fd)) if key_fd is not None
                      else keys.load_secret(key_file))
            server = (platform_key if platform_key is not None
                      else keys.load_public(platform_key_file))
            if not keys.z85_valid(server):
                raise keys.KeyError_("--platform-key is not a Z85 public key")
            public = keys.public_of(secret)
        except keys.KeyError_ as e:
            log.err("main", "cannot use the CURVE keys: %s" % e)
            return EX_CONFIG
        log.info("main", "bus secured with CURVE public_key=%s" % public)
        curve = (secret, server)
    elif not dev:
        log.warn("main", "no CURVE key given: connecting in plaintext")
    if host_id is None:
        host_id = "host-" + str(uuid.uuid4())

    from .host import Host
    try:
        h = Host(host_id, platform, mode, dev, hostboot, lost_ms, build_version, curve=curve)
    except Exception as e:  # zmq.ZMQError: a bad endpoint or key
        log.err("host", "cannot connect to the platform: %s platform=%s id=%s"
                % (e, platform, host_id))
        return 1
    return h.run()
