"""qmailctl init: a mail host laid out from nothing (accounts, control files, tcp.smtp and its cdb, the
queue, the services' variables), idempotent, never rewriting an edited file. The system accounts are
made in a copy-on-write /etc of the test's own (an overlay in a private mount namespace), so the
machine's users and groups are never touched."""
import json
import os
import shutil
import stat
import subprocess
import unittest

from qvtest import NOBODY, as_user, scratch_dir, shared_bin, snapshot, tool

ACCOUNTS = {"indimail": "indimail", "qmaild": "nofiles", "qmailq": "qmail", "qmails": "qmail", "qmailr": "qmail"}
CONTROL = {"me": b"mail.example.com\n", "defaultdomain": b"example.com\n", "rcpthosts": b"mail.example.com\n",
           "databytes": b"26214400\n", "concurrencylocal": b"10\n", "concurrencyremote": b"20\n"}


def clean_env(root):
    """This environment without any location but QMAILHOME=root."""
    e = {k: v for k, v in os.environ.items()
         if k not in ("CONTROLDIR", "TCP_FILE", "ASSIGNDIR", "DOMAINDIR", "BASE_PATH", "QUEUEDIR", "SERVICEDIR",
                      "QUEUED_SOCKET", "QMAILQUEUE", "MYSQL_READ_DEFAULT_FILE", "MYSQL_READ_DEFAULT_GROUP")}
    e["QMAILHOME"] = root
    return e


class PrivateEtc:
    """Runs commands with /etc overlaid by a scratch upper directory: what useradd and groupadd write
    there is seen by every command run through it, and by nothing else on the machine."""

    def __init__(self):
        self.dir = scratch_dir("qvetc.")
        os.mkdir(os.path.join(self.dir, "upper"))
        os.mkdir(os.path.join(self.dir, "work"))

    def wrap(self, cmd):
        mount = ("mount -t overlay overlay -o lowerdir=/etc,upperdir=%s/upper,workdir=%s/work /etc && exec \"$@\""
                 % (self.dir, self.dir))
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh"] + cmd

    def getent(self, database, name):
        p = subprocess.run(self.wrap(["getent", database, name]), capture_output=True)
        return p.stdout.decode().strip().split(":") if p.returncode == 0 else None

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(os.geteuid() == 0, "creating system accounts needs root (CI runs as root)")
class Init(unittest.TestCase):
    def setUp(self):
        self.etc = PrivateEtc()
        self.addCleanup(self.etc.cleanup)
        self.base = scratch_dir("qvinit.")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.root = os.path.join(self.base, "indimail")  # not there yet: init makes it

    def env(self):
        return clean_env(self.root)

    def run_tool(self, *args, input=None):
        return subprocess.run(self.etc.wrap([tool(args[0])] + list(args[1:])), env=self.env(), input=input,
                              capture_output=True, timeout=120)

    def init(self, *args):
        p = self.run_tool("qmailctl", "init", *args)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p

    def read(self, rel):
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()

    def test_a_host_from_nothing(self):
        p = self.init("--hostname", "Mail.Example.COM", "--json")
        r = json.loads(p.stdout)
        self.assertEqual((r["status"], r["hostname"], r["kept"]), ("done", "mail.example.com", []))
        # the accounts, IndiMail's names, each in its group, no shell
        for user, group in ACCOUNTS.items():
            pw = self.etc.getent("passwd", user)
            self.assertIsNotNone(pw, user)
            self.assertEqual(self.etc.getent("group", group)[2], pw[3], user)
            self.assertEqual(pw[6], "/usr/sbin/nologin")
            self.assertLess(int(pw[2]), 1000, "a system account: " + user)
            self.assertEqual(self.etc.getent("shadow", user)[1][:1], "!", "no password: " + user)
        for name, content in CONTROL.items():
            self.assertEqual(self.read("control/" + name), content, name)
        # tcp.smtp lets the host itself relay, compiled as tcprules would
        lookup = self.run_tool("qmailctl", "cdb", "--lookup", "127.0.0.1", "--json")
        self.assertEqual(lookup.returncode, 0, lookup.stderr.decode())
        j = json.loads(lookup.stdout)
        self.assertEqual((j["decision"], j["env"]), ("allow", [{"name": "RELAYCLIENT", "value": ""}]))
        self.assertEqual(json.loads(self.run_tool("qmailctl", "cdb", "--lookup", "192.0.2.1", "--json").stdout)["env"], [])
        # the queue, complete, belonging to qmailq and qmails
        again = self.run_tool("qmailctl", "queue", "init")
        self.assertIn(b"nothing to do", again.stdout, again.stderr)
        st = os.stat(os.path.join(self.root, "queue"))
        self.assertEqual((st.st_uid, st.st_gid), (int(self.etc.getent("passwd", "qmailq")[2]),
                                                  int(self.etc.getent("group", "qmail")[2])))
        self.assertEqual(os.stat(os.path.join(self.root, "queue/info")).st_uid, int(self.etc.getent("passwd", "qmails")[2]))
        self.assertEqual(os.stat(os.path.join(self.root, "run")).st_uid, st.st_uid)  # qmail-queued's socket
        # the services' variables: submission (587) takes mail only after AUTH
        self.assertEqual(self.read("service/qmail-smtpd.587/variables/REQUIREAUTH"), b"1\n")
        self.assertTrue(os.path.isdir(os.path.join(self.root, "service/qmail-send/variables")))
        # a domain added now belongs to the indimail account
        self.assertEqual(self.run_tool("vadddomain", "example.com", "-r", "12").returncode, 0)
        st = os.stat(os.path.join(self.root, "domains/example.com"))
        self.assertEqual(st.st_uid, int(self.etc.getent("passwd", "indimail")[2]))
        check = self.run_tool("qmailctl", "check")
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_a_second_run_changes_nothing(self):
        self.init("--hostname", "mail.example.com")
        before = snapshot(self.root)
        etc_before = sorted(os.listdir(os.path.join(self.etc.dir, "upper")))
        p = self.init()
        self.assertIn(b"is complete: nothing to do", p.stdout)
        p = self.init("--json")
        self.assertEqual(json.loads(p.stdout)["status"], "unchanged")
        self.assertEqual(snapshot(self.root), before)
        self.assertEqual(sorted(os.listdir(os.path.join(self.etc.dir, "upper"))), etc_before)

    def test_an_edited_file_is_never_rewritten(self):
        self.init("--hostname", "mail.example.com")
        with open(os.path.join(self.root, "control/databytes"), "w") as f:
            f.write("1000000\n")
        with open(os.path.join(self.root, "etc/tcp.smtp"), "w") as f:
            f.write("127.:allow,RELAYCLIENT=\"\"\n10.1.:allow,RELAYCLIENT=\"\"\n")
        os.unlink(os.path.join(self.root, "control/concurrencylocal"))
        os.unlink(os.path.join(self.root, "etc/tcp.smtp.cdb"))
        p = self.init("--hostname", "other.example.org", "--json")
        r = json.loads(p.stdout)
        self.assertEqual(r["status"], "done")
        self.assertEqual(sorted(r["kept"]), ["control/databytes", "etc/tcp.smtp"])
        self.assertIn(b"--hostname other.example.org is not applied", p.stderr)
        self.assertEqual(self.read("control/databytes"), b"1000000\n")
        self.assertEqual(self.read("control/me"), b"mail.example.com\n")
        self.assertEqual(self.read("control/concurrencylocal"), b"10\n")  # missing: written again
        # the administrator's rules, compiled again
        j = json.loads(self.run_tool("qmailctl", "cdb", "--lookup", "10.1.2.3", "--json").stdout)
        self.assertEqual(j["rule"], "10.1.")
        p = self.init()
        self.assertIn(b"kept as it is: control/databytes", p.stdout)

    def test_a_strict_umask_still_gives_reachable_directories(self):
        p = subprocess.run(self.etc.wrap(["sh", "-c", 'umask 077 && exec "$0" init --hostname mail.example.com',
                                          tool("qmailctl")]), env=self.env(), capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        for d in ("", "control", "etc", "run", "service", "service/qmail-smtpd.587/variables"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.root, d)).st_mode), 0o755, d)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.root, "control/me")).st_mode), 0o644)

    def test_rules_that_do_not_compile_keep_their_old_cdb(self):
        self.init("--hostname", "mail.example.com")
        cdb = self.read("etc/tcp.smtp.cdb")
        with open(os.path.join(self.root, "etc/tcp.smtp"), "a") as f:
            f.write("10.0.0.:allow,RELAYCLIENT=yes\n")  # a value without quotes: tcprules refuses it
        p = self.init()
        self.assertIn(b"tcp.smtp:", p.stderr)
        self.assertIn(b"etc/tcp.smtp.cdb left as it was", p.stderr)
        self.assertEqual(self.read("etc/tcp.smtp.cdb"), cdb)

    def test_dry_run_and_bad_input_change_nothing(self):
        p = self.init("--dry-run", "--hostname", "mail.example.com")
        self.assertIn(b"would create the system user qmaild", p.stdout)
        self.assertIn(b"would write control/me", p.stdout)
        self.assertFalse(os.path.exists(self.root))
        self.assertEqual(os.listdir(os.path.join(self.etc.dir, "upper")), [])
        for bad in ("not a name", "-x.example.com", "single"):
            p = self.run_tool("qmailctl", "init", "--hostname", bad)
            self.assertEqual(p.returncode, 65, p.stderr)
            self.assertIn(b"--hostname", p.stderr)
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertFalse(os.path.exists(self.root))
        self.assertEqual(os.listdir(os.path.join(self.etc.dir, "upper")), [])


class InitUnprivileged(unittest.TestCase):
    def test_everything_belongs_to_the_caller(self):
        base = scratch_dir("qvinit.")
        self.addCleanup(shutil.rmtree, base, True)
        os.chown(base, NOBODY, NOBODY)
        root = os.path.join(base, "home")
        env = clean_env(root)
        p = subprocess.run(as_user(NOBODY, [os.path.join(shared_bin(), "qmailctl"), "init", "--hostname",
                                            "mail.example.com"]), env=env, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"not run as root: no system accounts are created", p.stderr)
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                self.assertEqual(os.lstat(os.path.join(dirpath, n)).st_uid, NOBODY, n)
        self.assertTrue(stat.S_ISFIFO(os.stat(os.path.join(root, "queue/lock/trigger")).st_mode))


if __name__ == "__main__":
    unittest.main()
