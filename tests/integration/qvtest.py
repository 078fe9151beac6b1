"""Shared helpers for the integration tests: a scratch QMAILHOME and the built commands."""
import atexit
import fcntl
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import unittest

BIN = os.environ.get("QV_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))
SOURCE_DIR = os.environ.get("QV_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def tool(name):
    """A built program. When the build tree is not reachable by every user (a checkout under /root), the
    copy in shared_bin(): the MTA runs programs as a domain's owner, qmailq or qmailr, as it would from
    /usr/sbin."""
    if not _bin_reachable:
        _bin_reachable.append(reachable_by_all(BIN))  # asked once, not for every program run
    return os.path.join(BIN if _bin_reachable[0] else shared_bin(), name)


_bin_reachable = []


def require_programs(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise RuntimeError("missing reference programs: %s (scripts/test installs them)" % ", ".join(missing))


def reachable_by_all(path):
    """Whether every user may reach `path`: each directory from / down to it searchable by others."""
    p = os.path.abspath(path)
    while True:
        if not os.stat(p).st_mode & stat.S_IXOTH:
            return False
        if p == "/":
            return True
        p = os.path.dirname(p)


def scratch_dir(prefix):
    """A new directory (mode 0755) for a test's files, in the temporary directory when every user may
    reach it, else in /tmp: tests run commands and servers as another user, who must reach it wherever
    the checkout lies and whatever TMPDIR says."""
    base = tempfile.gettempdir()
    d = tempfile.mkdtemp(prefix=prefix, dir=base if reachable_by_all(base) else "/tmp")
    os.chmod(d, 0o755)
    return d


_shared_bin = []


def shared_bin():
    """The built programs (the qvmail binary and its links, the MTA programs; not the test and fuzz
    binaries), linked (else copied) once per test process into a directory every user may reach: a test
    that runs a program as another user must not depend on the build tree being reachable (a checkout
    under /root, mode 0700, is not)."""
    if not _shared_bin:
        d = scratch_dir("qvbin.")
        atexit.register(shutil.rmtree, d, True)
        for name in os.listdir(BIN):
            p, to = os.path.join(BIN, name), os.path.join(d, name)
            if os.path.islink(p):
                os.symlink(os.readlink(p), to)
            elif os.path.isfile(p) and os.access(p, os.X_OK) and not name.startswith(("fuzz_", "qv_")):
                try:
                    os.link(p, to)  # the same file, mode 0755: no copy of its megabytes
                except OSError:
                    shutil.copy2(p, to)
        _shared_bin.append(d)
    return _shared_bin[0]


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BACKEND = os.environ.get("QV_BACKEND", "files")
MYSQL_USER, MYSQL_PASSWORD = "qvmail", "qvtest-password"  # made by scripts/mariadb-fixture


def mysql_socket():
    with open(os.path.join(os.environ["QV_MYSQL_DIR"], "socket")) as f:
        return f.read().strip()


def sql(statement, database=None):
    """Runs SQL as the fixture server's root; returns rows of text columns (NULL as None)."""
    cmd = ["mariadb", "--no-defaults", "--socket=" + mysql_socket(), "-u", "root", "-N", "-B", "-e", statement]
    if database:
        cmd.insert(-2, database)
    out = subprocess.run(cmd, capture_output=True, check=True).stdout.decode("utf-8", "surrogateescape")
    return [[None if c == "NULL" else c for c in line.split("\t")] for line in out.splitlines()]


_db_counter = [0]


class Home:
    """A scratch QMAILHOME with etc/ and control/; with QV_BACKEND=mysql, also a fresh database on the
    fixture's MariaDB server, selected through control/host.mysql."""

    def __init__(self, backend=None):
        self.backend = backend or BACKEND
        self.root = scratch_dir("qvhome.")  # tests also run commands as an unprivileged user
        self.etc = os.path.join(self.root, "etc")
        self.control = os.path.join(self.root, "control")
        os.makedirs(self.etc)
        os.makedirs(self.control)
        self.database = None
        if self.backend == "mysql":
            _db_counter[0] += 1
            self.database = "qvt_%d_%d" % (os.getpid(), _db_counter[0])
            sql("DROP DATABASE IF EXISTS %s; CREATE DATABASE %s" % (self.database, self.database))
            self.write("control/host.mysql", "localhost:%s:%s:%s\n" % (MYSQL_USER, MYSQL_PASSWORD, mysql_socket()))

    def cleanup(self):
        subprocess.run(["chmod", "-R", "u+rwX", self.root], check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        if self.database:
            sql("DROP DATABASE IF EXISTS %s" % self.database)

    def snapshot(self):
        return snapshot(self.root, home=self)

    def rows(self, statement):
        return sql(statement, self.database)

    def user_record(self, domain, user):
        """[name, passwd, uid, gid, gecos, dir, quota] of a mailbox, from whichever store is in use."""
        if self.backend == "mysql":
            r = self.rows("SELECT pw_name, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell FROM indimail "
                          "WHERE pw_name = '%s' AND pw_domain = '%s'" % (user, domain))
            return r[0] if r else None
        domain_dir = self.path("domains", domain)
        if os.path.exists(self.path("users/assign")):  # the domain may live elsewhere (vadddomain -d)
            for line in self.read("users/assign").decode().splitlines():
                if line.startswith("+%s-:" % domain):
                    domain_dir = line.split(":")[4]
        path = os.path.join(domain_dir, "vpasswd")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            for line in f.read().splitlines():
                fields = line.split(":")
                if fields[0] == user:
                    return fields
        return None

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
        for k in ("CONTROLDIR", "TCP_FILE", "ASSIGNDIR", "DOMAINDIR", "BASE_PATH", "QUEUEDIR", "SERVICEDIR",
                  "QUEUED_SOCKET", "QMAILQUEUE", "OPEN_SMTP", "RELAYCLIENT", "CHECKRELAY", "SERVICE", "AUTHORIZED"):
            e.pop(k, None)
        e["QMAILHOME"] = self.root
        for k in ("MYSQL_READ_DEFAULT_FILE", "MYSQL_READ_DEFAULT_GROUP", "MYSQL_DATABASE"):
            e.pop(k, None)
        if self.database:
            e["MYSQL_DATABASE"] = self.database
        e.update(extra)
        return e

    def run(self, *args, env=None, user=None, input=None, timeout=120):
        """Runs a built command in this home; with `user` (a uid), as that user and group, from a copy
        of the commands that user can reach."""
        cmd = [tool(args[0])] + list(args[1:])
        if user is not None:
            cmd = as_user(user, [os.path.join(shared_bin(), args[0])] + list(args[1:]))
        return subprocess.run(cmd, env=env or self.env(), input=input, capture_output=True, timeout=timeout)

    def listing(self, rel):
        return sorted(os.listdir(self.path(rel)))


class HomeTestCase(unittest.TestCase):
    def setUp(self):
        self.home = Home()
        self.addCleanup(self.home.cleanup)

    def ok(self, p):
        """Asserts that a finished command exited 0 (showing its stderr if not); returns it."""
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p


NOBODY = 65534


def as_user(uid, cmd):
    """`cmd` run with uid and gid `uid` and no supplementary groups (through setpriv)."""
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + cmd


def snapshot(root, skip=(".qvmail.lock",), home=None):
    """Every path below root with its type, mode, owner and content (files) or target (links); with a
    MySQL home, the rows of its tables too (keys "db:<table>")."""
    out = {}
    if home is not None and home.database:
        for table in ("indimail", "indibak", "valias", "vfilter", "lastauth", "relay", "qvdomain", "qvdomain_removed",
                      "hostcntrl", "qvhost", "aliasdomain"):
            try:
                out["db:" + table] = sorted(map(tuple, home.rows("SELECT * FROM " + table)))
            except subprocess.CalledProcessError:
                out["db:" + table] = "missing"
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
            elif not stat.S_ISREG(st.st_mode):
                out[rel] = ("special", oct(st.st_mode))
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", oct(st.st_mode & 0o7777), st.st_uid, st.st_gid, f.read())
    return out


def sbindir():
    return os.environ.get("QV_SBINDIR", "/usr/local/sbin")


def login(home, address, password, service="imap", ip="10.1.2.3", grant=False, user=None, env=None):
    """A checkpassword login of `address` through vchkpass (descriptor 3, as Dovecot gives it; as the uid
    `user`, when given); returns the process."""
    r0, w = os.pipe()
    os.write(w, address.encode() + b"\0" + password.encode() + b"\0\0")
    os.close(w)
    r = fcntl.fcntl(r0, fcntl.F_DUPFD, 4)
    os.close(r0)
    argv = [tool("vchkpass") if user is None else os.path.join(shared_bin(), "vchkpass"), "-s", service]
    if grant:
        argv.append("--grant")
    argv += ["--", "true"]
    if user is not None:
        argv = as_user(user, argv)
    argv = ["sh", "-c", 'exec "$@" 3<&%d %d<&-' % (r, r), "sh"] + argv
    try:
        return subprocess.run(argv, env=home.env(TCPREMOTEIP=ip, **(env or {})), capture_output=True, pass_fds=(r,),
                              timeout=60)
    finally:
        os.close(r)
