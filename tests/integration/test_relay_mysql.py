"""Relay grants on a real MariaDB: clearopensmtp's batches and counts, a server that is down, two
instances at once, and two mail hosts sharing one database."""
import fcntl
import json
import os
import subprocess
import time
import unittest

from qvtest import Home, HomeTestCase, tool


def now():
    return int(time.time())


class MysqlRelayCase(HomeTestCase):
    def setUp(self):
        self.home = Home("mysql")
        self.addCleanup(self.home.cleanup)
        self.ok(self.home.run("qmailctl", "db", "init"))
        self.home.write("etc/tcp.smtp", "127.0.0.1:allow,RELAYCLIENT=\"\"\n")

    def fill(self, stale, fresh, first=1):
        """Adds `stale` grants two hours old and `fresh` ones a minute old (MariaDB's sequence engine)."""
        for count, age, start in ((stale, 7200, first), (fresh, 60, first + stale)):
            if count:
                self.home.rows(
                    "INSERT INTO relay (email, ipaddr, timestamp) SELECT CONCAT('u', seq, '@example.com'), "
                    "CONCAT('10.', seq DIV 65536, '.', seq DIV 256 MOD 256, '.', seq MOD 256), UNIX_TIMESTAMP() - %d "
                    "FROM seq_%d_to_%d" % (age, start, start + count - 1))

    def count(self, where="1"):
        return int(self.home.rows("SELECT COUNT(*) FROM relay WHERE " + where)[0][0])


class ClearOpenSmtpOnMariaDB(MysqlRelayCase):
    def test_exact_counts_in_batches(self):
        h = self.home
        self.fill(stale=500, fresh=500)
        p = self.ok(h.run("clearopensmtp", "--json", "--batch", "100"))
        j = json.loads(p.stdout)
        self.assertEqual((j["deleted"], j["kept"], j["batches"], j["rules_rebuilt"], j["store"]),
                         (500, 500, 6, True, "table relay"))
        self.assertEqual(self.count(), 500)
        self.assertEqual(self.count("timestamp <= UNIX_TIMESTAMP() - 3600"), 0)
        # the survivors are exactly the fresh rows
        self.assertEqual(self.count("CAST(SUBSTRING(email, 2) AS UNSIGNED) > 500"), 500)
        j = json.loads(self.ok(h.run("clearopensmtp", "--json")).stdout)
        self.assertEqual((j["deleted"], j["kept"], j["batches"]), (0, 500, 1))
        # a dry run counts and deletes nothing
        h.rows("UPDATE relay SET timestamp = timestamp - 7200 WHERE ipaddr LIKE '10.0.2.%'")
        j = json.loads(self.ok(h.run("clearopensmtp", "--json", "--dry-run")).stdout)
        self.assertEqual((j["status"], j["deleted"], j["kept"]), ("dry-run", 256, 244))
        self.assertEqual(self.count(), 500)

    def test_server_down_exits_69_and_touches_no_file(self):
        h = self.home
        self.fill(stale=3, fresh=2)
        self.ok(h.run("clearopensmtp"))  # the lock file and the cdb exist, as after any earlier run
        right = h.read("control/host.mysql")
        h.write("control/host.mysql", "localhost:qvmail:qvtest-password:%s\n" % h.path("no-such.sock"))
        before = h.snapshot()
        times = {f: os.stat(h.path(f)).st_mtime_ns for f in ("etc/tcp.smtp.cdb", ".clearopensmtp.lock")}
        for args in ([], ["-s"], ["--json"]):
            with self.subTest(args=args):
                p = h.run("clearopensmtp", *args)
                self.assertEqual(p.returncode, 69, p.stderr)
                err = p.stderr.decode()
                self.assertEqual(err.count("\n"), 1, err)
                self.assertIn("MariaDB at localhost", err)
                self.assertEqual(p.stdout, b"")
        self.assertEqual(h.snapshot(), before)
        self.assertEqual({f: os.stat(h.path(f)).st_mtime_ns for f in times}, times)
        # -t needs no database
        self.ok(h.run("clearopensmtp", "-t"))
        h.write("control/host.mysql", right)
        self.assertEqual(self.count(), 2)  # the first run removed the 3 stale grants

    def test_two_instances_one_runs_one_exits_75(self):
        h = self.home
        self.fill(stale=60000, fresh=10)
        first = subprocess.Popen([tool("clearopensmtp"), "--json", "--batch", "50"], env=h.env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # wait until the first one is deleting: it holds the lock from before its first statement
        deadline = time.monotonic() + 60
        while self.count() == 60010 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertIsNone(first.poll(), "the first clearopensmtp finished too soon to test")
        t = time.monotonic()
        second = h.run("clearopensmtp", "--json")
        self.assertLess(time.monotonic() - t, 2.0)
        out, err = first.communicate(timeout=300)
        self.assertEqual(second.returncode, 75, second.stderr)
        self.assertIn(b"another clearopensmtp is running", second.stderr)
        self.assertEqual(first.returncode, 0, err)
        j = json.loads(out)
        self.assertEqual((j["deleted"], j["kept"]), (60000, 10))
        self.assertEqual(self.count(), 10)

    def test_held_lock(self):
        h = self.home
        with open(h.path(".clearopensmtp.lock"), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            self.assertEqual(h.run("clearopensmtp").returncode, 75)


class TwoHostsOneDatabase(HomeTestCase):
    """A POP/IMAP host and an SMTP host whose host.mysql name the same database."""

    def setUp(self):
        self.pop = Home("mysql")
        self.addCleanup(self.pop.cleanup)
        self.smtp = Home("mysql")
        self.addCleanup(self.smtp.cleanup)
        # the SMTP host uses the POP host's database
        self.smtp.rows("DROP DATABASE IF EXISTS %s" % self.smtp.database)
        self.smtp.database = self.pop.database
        self.ok(self.pop.run("vadddomain", "example.com", "-r", "10"))
        self.smtp.write("control/rcpthosts", "example.com\n")
        self.ok(self.pop.run("vadduser", "tim@example.com", "--password-stdin", input=b"tim-password\n"))

    def relay_test(self, host, *args):
        p = host.run("qmailctl", "relay", "test", "198.51.100.23", "--rcpt", "someone@remote.example", "--json", *args)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        return p.returncode, json.loads(p.stdout)

    def pop_login(self, password):
        r, w = os.pipe()
        os.write(w, b"tim@example.com\0" + password + b"\0\0")
        os.close(w)
        r2 = fcntl.fcntl(r, fcntl.F_DUPFD, 4)
        os.close(r)
        env = self.pop.env(TCPREMOTEIP="198.51.100.23", OPEN_SMTP=self.pop.path("etc/open-smtp"))
        try:
            return subprocess.run(["sh", "-c", 'exec "$@" 3<&%d %d<&-' % (r2, r2), "sh", tool("vchkpass"), "-s",
                                   "pop3", "true"], env=env, pass_fds=(r2,), capture_output=True)
        finally:
            os.close(r2)

    def test_a_login_on_one_host_lets_the_sender_relay_through_the_other(self):
        code, d = self.relay_test(self.smtp, "--sender", "tim@example.com")
        self.assertEqual((code, d["verdict"]), (1, "refused"))
        self.assertEqual(self.pop_login(b"wrong").returncode, 1)
        self.assertEqual(self.relay_test(self.smtp, "--sender", "tim@example.com")[0], 1)
        self.ok(self.pop_login(b"tim-password"))

        code, d = self.relay_test(self.smtp, "--sender", "tim@example.com")
        self.assertEqual((code, d["mechanism"], d["source"]), (0, "relay-grant", "table relay"))
        self.assertEqual(d["text"], "tim@example.com 198.51.100.23")
        self.assertEqual(self.relay_test(self.smtp, "--sender", "eve@example.com")[0], 1)  # keyed on the sender too
        # the grant is seen from both hosts, and a fresh one survives clearopensmtp on either
        for h in (self.pop, self.smtp):
            j = json.loads(self.ok(h.run("clearopensmtp", "--json")).stdout)
            self.assertEqual((j["deleted"], j["kept"]), (0, 1))
        # an hour later, clearopensmtp on the SMTP host expires it for both
        self.pop.rows("UPDATE relay SET timestamp = timestamp - 3700")
        j = json.loads(self.ok(self.smtp.run("clearopensmtp", "--json")).stdout)
        self.assertEqual((j["deleted"], j["kept"]), (1, 0))
        self.assertEqual(self.ok(self.pop.run("qmailctl", "relay", "grants", "--all")).stdout, b"")
        self.assertEqual(self.relay_test(self.smtp, "--sender", "tim@example.com")[0], 1)
        self.assertEqual(self.relay_test(self.pop, "--sender", "tim@example.com")[0], 1)

    def test_vchkpass_with_the_server_down_is_a_temporary_failure(self):
        self.pop.write("control/host.mysql", "localhost:qvmail:qvtest-password:%s\n" % self.pop.path("none.sock"))
        p = self.pop_login(b"tim-password")
        self.assertEqual(p.returncode, 111, p.stderr)
        self.assertIn(b"temporary failure", p.stderr)


if __name__ == "__main__":
    unittest.main()
