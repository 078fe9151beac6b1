"""Shared helpers for the integration tests: a scratch QMAILHOME and the built commands."""
import os
import shutil
import subprocess
import tempfile
import unittest

BIN = os.environ.get("QV_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))
SOURCE_DIR = os.environ.get("QV_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def tool(name):
    return os.path.join(BIN, name)


def require_programs(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise RuntimeError("missing reference programs: %s (scripts/test installs them)" % ", ".join(missing))


class Home:
    """A scratch QMAILHOME with etc/ and control/."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="qvhome.")
        os.chmod(self.root, 0o755)  # tests also run commands as an unprivileged user
        self.etc = os.path.join(self.root, "etc")
        self.control = os.path.join(self.root, "control")
        os.makedirs(self.etc)
        os.makedirs(self.control)

    def cleanup(self):
        subprocess.run(["chmod", "-R", "u+rwX", self.root], check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write(self, rel, data, mode=None):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data.encode("latin-1") if isinstance(data, str) else data)
        if mode is not None:
            os.chmod(p, mode)
        return p

    def read(self, rel):
        with open(self.path(rel), "rb") as f:
            return f.read()

    def env(self, **extra):
        e = dict(os.environ)
        for k in ("CONTROLDIR", "TCP_FILE", "ASSIGNDIR", "DOMAINDIR", "BASE_PATH", "QUEUEDIR", "SERVICEDIR"):
            e.pop(k, None)
        e["QMAILHOME"] = self.root
        e.update(extra)
        return e

    def run(self, *args, env=None, user=None, input=None, timeout=120):
        cmd = [tool(args[0])] + list(args[1:])
        if user is not None:
            cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
        return subprocess.run(cmd, env=env or self.env(), input=input, capture_output=True, timeout=timeout)

    def listing(self, rel):
        return sorted(os.listdir(self.path(rel)))


class HomeTestCase(unittest.TestCase):
    def setUp(self):
        self.home = Home()
        self.addCleanup(self.home.cleanup)


NOBODY = 65534


def snapshot(root, skip=(".qvmail.lock",)):
    """Every path below root with its type, mode, owner and content (files) or target (links)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if rel in skip:
                continue
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", oct(st.st_mode & 0o7777), st.st_uid, st.st_gid)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", oct(st.st_mode & 0o7777), st.st_uid, st.st_gid, f.read())
    return out


def sbindir():
    return os.environ.get("QV_SBINDIR", "/usr/local/sbin")
