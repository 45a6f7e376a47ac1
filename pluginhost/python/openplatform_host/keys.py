"""CURVE keys as libplatcommon/keys.c handles them: Z85 text, a secret key
file must be private (regular, not a symlink, owned by us, no group/other
bits), a key pipe is read to EOF and closed."""

import os
import stat

import zmq
import zmq.utils.z85

Z85_LEN = 40


class KeyError_(Exception):  # noqa: N801 - not the builtin KeyError
    pass


def z85_valid(s):
    if not isinstance(s, str) or len(s) != Z85_LEN:
        return False
    try:
        return len(zmq.utils.z85.decode(s.encode("ascii"))) == 32
    except Exception:
        return False


def public_of(secret):
    try:
        return zmq.curve_public(secret.encode("ascii")).decode("ascii")
    except Exception as e:
        raise KeyError_("not a CURVE secret key: %s" % e) from None


def _one_line(data, what):
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyError_("%s is not Z85 text" % what) from None
    key = text[:-1] if text.endswith("\n") else text
    if not z85_valid(key):
        raise KeyError_("%s does not hold a 40-character Z85 key" % what)
    return key


def read_fd(fd):
    """The secret key on an inherited pipe, read until EOF; fd closed."""
    chunks, n = [], 0
    try:
        while True:
            try:
                b = os.read(fd, 256)
            except InterruptedError:
                continue
            except OSError as e:
                raise KeyError_("key fd %d: %s" % (fd, e.strerror)) from None
            if not b:
                break
            chunks.append(b)
            n += len(b)
            if n > 256:
                raise KeyError_("key fd %d holds more than a key" % fd)
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    return _one_line(b"".join(chunks), "key fd %d" % fd)


def check_private(path):
    try:
        st = os.lstat(path)
    except OSError as e:
        raise KeyError_("%s: %s" % (path, e.strerror)) from None
    if stat.S_ISLNK(st.st_mode):
        raise KeyError_("%s is a symbolic link" % path)
    if not stat.S_ISREG(st.st_mode):
        raise KeyError_("%s is not a regular file" % path)
    if st.st_uid != os.geteuid():
        raise KeyError_("%s is owned by uid %d, not %d" % (path, st.st_uid, os.geteuid()))
    if st.st_mode & 0o077:
        raise KeyError_("%s has mode %04o: a secret key file must be 0600"
                        % (path, stat.S_IMODE(st.st_mode)))


def _read_key_file(path):
    try:
        with open(path, "rb") as f:
            data = f.read(256)
    except OSError as e:
        raise KeyError_("%s: %s" % (path, e.strerror)) from None
    return _one_line(data, path)


def load_secret(path):
    check_private(path)
    return _read_key_file(path)


def load_public(path):
    return _read_key_file(path)
