"""vchkpass as Dovecot's checkpassword passdb: a real Dovecot from Debian's packages, started unprivileged
(as nobody when the tests run as root) from a scratch directory and listening on loopback ports, logs
IMAP and POP3 clients in through vchkpass and opens their Maildirs. Runs against both stores
(QV_BACKEND)."""
import grp
import imaplib
import json
import os
import poplib
import pwd
import shutil
import signal
import socket
import subprocess
import time
import unittest

from qvtest import BACKEND, NOBODY, HomeTestCase, as_user, free_port, require_programs, scratch_dir, shared_bin

require_programs("dovecot", "doveadm", "setpriv")

MYSQL = BACKEND == "mysql"
ROOT = os.geteuid() == 0
# Dovecot and everything it runs (its auth process, hence vchkpass) run as this user, who owns the
# domain: as root, nobody; otherwise whoever runs the tests.
UID = NOBODY if ROOT else os.geteuid()
USER = pwd.getpwuid(UID)
# IndiMail's service files set OPEN_SMTP to their own file; the value must not decide where grants go.
INDIMAIL_OPEN_SMTP = "/etc/indimail/tcp/open-smtp"

CONFIG = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
# no address-space limit: vchkpass built with AddressSanitizer reserves terabytes of shadow memory, and the
# auth process's default 256M limit, which its checkpassword children inherit, would kill it at start
default_vsz_limit = 0
mail_location = maildir:~/Maildir
import_environment = TZ {environment}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = checkpassword
  args = {vchkpass}
}}
userdb {{
{userdb}
}}
"""


class Dovecot:
    """A Dovecot master with its configuration, sockets, state and log in a scratch directory."""

    def __init__(self, home, userdb="prefetch"):
        self.dir = scratch_dir("qvdc.")  # short: Dovecot's unix sockets live under it
        for sub in ("run", "state"):
            os.mkdir(os.path.join(self.dir, sub))
        for p in (self.dir, os.path.join(self.dir, "run"), os.path.join(self.dir, "state")):
            os.chown(p, UID, USER.pw_gid)
        vchkpass = os.path.join(shared_bin(), "vchkpass")
        environment = {"QMAILHOME": home.root, "OPEN_SMTP": INDIMAIL_OPEN_SMTP}
        if home.database:
            environment["MYSQL_DATABASE"] = home.database
        # prefetch takes the fields of the passdb's reply; after it, as vchkpass(8) shows, a checkpassword
        # userdb serves the lookups that come without a login
        userdb_lines = "  driver = prefetch"
        if userdb == "prefetch+checkpassword":
            userdb_lines += "\n}\nuserdb {\n  driver = checkpassword\n  args = " + vchkpass
        self.settings = dict(dir=self.dir, user=USER.pw_name, group=grp.getgrgid(USER.pw_gid).gr_name,
                             environment=" ".join("%s=%s" % kv for kv in environment.items()),
                             vchkpass=vchkpass, userdb=userdb_lines)
        self.config = os.path.join(self.dir, "dovecot.conf")
        self.log = os.path.join(self.dir, "dovecot.log")

    def start(self):
        for attempt in range(5):  # a port found free may be taken by another test before Dovecot binds it
            self.imap_port, self.pop3_port = free_port(), free_port()
            with open(self.config, "w") as f:
                f.write(CONFIG.format(imap=self.imap_port, pop3=self.pop3_port, **self.settings))
            cmd = ["/usr/sbin/dovecot", "-c", self.config]
            # the master goes to the background, its children keeping its descriptors: a file, not a pipe
            with open(os.path.join(self.dir, "dovecot.out"), "w+") as out:
                p = subprocess.run(as_user(UID, cmd) if ROOT else cmd, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=out, timeout=60)
                out.seek(0)
                output = out.read()
            if p.returncode == 0:
                break
            if "Address already in use" not in output + self.read_log():
                raise RuntimeError("dovecot did not start: %s %s" % (output, self.read_log()))
        deadline = time.monotonic() + 30
        for port in (self.imap_port, self.pop3_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("dovecot does not listen on %d: %s" % (port, self.read_log()))
                    time.sleep(0.05)

    def stop(self):
        pidfile = os.path.join(self.dir, "run", "master.pid")
        try:
            with open(pidfile) as f:
                pid = int(f.read())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and _running(pid):
                time.sleep(0.05)
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass  # not running, or gone
        shutil.rmtree(self.dir, ignore_errors=True)

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def imap(self, user, password):
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=30)
        try:
            m.login(user, password)
        except BaseException:
            m.shutdown()
            raise
        return m

    def pop3(self, user, password):
        p = poplib.POP3("127.0.0.1", self.pop3_port, timeout=30)
        try:
            p.user(user)
            p.pass_(password)
        except BaseException:
            p.close()
            raise
        return p


def _running(pid):
    """Whether the process runs (the master daemonized: a zombie waits for an init that may be slow)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


MESSAGE = b"From: alice@example.net\r\nTo: joe@example.com\r\nSubject: placed by the test\r\n\r\nhello\r\n"


class DovecotCase(HomeTestCase):
    userdb = "prefetch"

    def setUp(self):
        super().setUp()
        h = self.home
        owner = ["-i", str(UID), "-g", str(USER.pw_gid)]
        self.ok(h.run("vadddomain", "example.com", "-r", "10", *owner))
        self.ok(h.run("vadduser", "joe@example.com", "--password-stdin", input=b"joe-password\n"))
        # the files store's grants: Dovecot's auth process (this user) writes etc/open-smtp and the cdb
        os.chown(h.path("etc"), UID, USER.pw_gid)
        self.maildir = os.path.join(h.user_record("example.com", "joe")[5], "Maildir")
        self.dovecot = Dovecot(h, self.userdb)
        self.addCleanup(self.dovecot.stop)
        self.dovecot.start()

    def place_message(self):
        path = os.path.join(self.maildir, "new", "1700000000.M1P1.test")
        with open(path, "wb") as f:
            f.write(MESSAGE)
        os.chown(path, UID, USER.pw_gid)

    def assertImapRefused(self, password, reason):
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            self.dovecot.imap("joe@example.com", password)
        self.assertIn(reason, str(cm.exception))

    def assertPop3Refused(self, password, reason):
        with self.assertRaises(poplib.error_proto) as cm:
            self.dovecot.pop3("joe@example.com", password)
        self.assertIn(reason, str(cm.exception))

    def relay_decision(self):
        p = self.home.run("qmailctl", "relay", "test", "127.0.0.1", "--sender", "joe@example.com", "--json")
        self.assertIn(p.returncode, (0, 1), p.stderr)
        return json.loads(p.stdout)


class Logins(DovecotCase):
    def test_imap_and_pop3_open_the_maildir(self):
        self.place_message()
        m = self.dovecot.imap("joe@example.com", "joe-password")
        typ, data = m.select("INBOX")
        self.assertEqual((typ, data), ("OK", [b"1"]))
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn(b"Subject: placed by the test", data[0][1])
        m.logout()
        p = self.dovecot.pop3("joe@example.com", "joe-password")
        self.assertEqual(p.stat(), (1, len(MESSAGE)))
        self.assertIn(b"hello", b"\n".join(p.retr(1)[1]))
        p.quit()
        # the sessions ran as the domain's owner: the files Dovecot made in the Maildir are its
        st = os.stat(os.path.join(self.maildir, "dovecot-uidlist"))
        self.assertEqual((st.st_uid, st.st_gid), (UID, USER.pw_gid))
        self.assertNotIn("returned 0 as uid", self.dovecot.read_log())

    def test_a_wrong_password_is_refused(self):
        self.assertImapRefused("wrong", "AUTHENTICATIONFAILED")
        self.assertPop3Refused("wrong", "Authentication failed")
        self.assertImapRefused("joe-password-not", "AUTHENTICATIONFAILED")
        self.assertIn("vchkpass: imap login refused from 127.0.0.1: wrong password for joe@example.com",
                      self.dovecot.read_log())

    def test_no_pop_refuses_pop3_while_imap_works(self):
        self.ok(self.home.run("vmoduser", "-p", "joe@example.com"))
        self.assertPop3Refused("joe-password", "Authentication failed")
        self.dovecot.imap("joe@example.com", "joe-password").logout()
        self.assertIn("pop3 is disabled for joe@example.com", self.dovecot.read_log())
        self.ok(self.home.run("vmoduser", "--clear", "no-pop", "-i", "joe@example.com"))
        self.assertImapRefused("joe-password", "AUTHENTICATIONFAILED")
        self.dovecot.pop3("joe@example.com", "joe-password").quit()

    def test_a_login_lets_the_client_relay(self):
        self.assertEqual(self.relay_decision()["verdict"], "refused")
        self.dovecot.imap("joe@example.com", "joe-password").logout()
        d = self.relay_decision()
        self.assertEqual((d["verdict"], d["mechanism"]), ("relay", "relay-grant"), d["trace"])
        self.assertFalse(os.path.exists(INDIMAIL_OPEN_SMTP))
        if not MYSQL:
            self.assertIn(b"127.0.0.1:allow", self.home.read("etc/open-smtp"))

    def test_no_relay_records_no_grant(self):
        self.ok(self.home.run("vmoduser", "-r", "joe@example.com"))
        self.dovecot.pop3("joe@example.com", "joe-password").quit()
        self.assertEqual(self.relay_decision()["verdict"], "refused")

    @unittest.skipUnless(ROOT, "needs a store that Dovecot's user cannot read")
    def test_a_store_it_cannot_read_is_a_temporary_failure(self):
        h = self.home
        if MYSQL:
            unreadable = [h.path("control/host.mysql")]
        else:
            unreadable = [h.path("domains/example.com/vpasswd"), h.path("domains/example.com/vpasswd.cdb")]
        for p in unreadable:
            os.chown(p, 0, 0)
            os.chmod(p, 0o600)
        self.assertImapRefused("joe-password", "UNAVAILABLE")      # "Temporary authentication failure"
        self.assertPop3Refused("joe-password", "[SYS/TEMP]")
        log = self.dovecot.read_log()
        self.assertIn("vchkpass: imap login from 127.0.0.1: temporary failure: cannot open %s: Permission denied"
                      % unreadable[-1], log)
        self.assertNotIn("no mailbox", log)


class CheckpasswordUserdb(DovecotCase):
    """vchkpass(8)'s configuration: a prefetch userdb, then a checkpassword one that Dovecot asks, without
    a password, for lookups that come without a login."""
    userdb = "prefetch+checkpassword"

    def doveadm_user(self, user):
        return subprocess.run(["doveadm", "-c", self.dovecot.config, "user", user], capture_output=True, timeout=60)

    def test_userdb_lookups(self):
        p = self.doveadm_user("joe@example.com")
        self.assertEqual(p.returncode, 0, p.stderr)
        fields = dict(line.split("\t", 1) for line in p.stdout.decode().splitlines()[1:] if "\t" in line)
        home = self.home.user_record("example.com", "joe")[5]
        self.assertEqual(fields, {"uid": str(UID), "gid": str(USER.pw_gid), "home": home,
                                  "mail": "maildir:%s/Maildir" % home})
        p = self.doveadm_user("ghost@example.com")
        self.assertEqual(p.returncode, 67, p.stderr)     # doveadm: user unknown
        self.assertIn(b"user ghost@example.com doesn't exist", p.stdout + p.stderr)

    def test_a_login_opens_the_maildir(self):
        self.place_message()
        m = self.dovecot.imap("joe@example.com", "joe-password")
        self.assertEqual(m.select("INBOX"), ("OK", [b"1"]))
        m.logout()


if __name__ == "__main__":
    unittest.main()
