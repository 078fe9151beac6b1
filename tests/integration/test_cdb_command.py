"""qmailctl cdb as an administrator meets it: statuses, exit codes, bad input, permissions, locking,
the control-file databases, and concurrent runs."""
import fcntl
import json
import os
import subprocess
import threading
import time
import unittest

from qvtest import NOBODY, HomeTestCase, require_programs, tool

require_programs("cdb", "setpriv")

RULES = "127.0.0.1:allow,RELAYCLIENT=\"\"\n10.:allow,RELAYCLIENT=\"\"\n:allow\n"


def cdbmake_text(records):
    """tinycdb's cdbmake input for (key, value) byte pairs."""
    out = b""
    for k, v in records:
        out += b"+%d,%d:%s->%s\n" % (len(k), len(v), k, v)
    return out + b"\n"


class Statuses(HomeTestCase):
    def test_rebuild_then_up_to_date_then_changed(self):
        h = self.home
        h.write("etc/tcp.smtp", RULES)
        p = h.run("qmailctl", "cdb", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual((r["database"], r["status"], r["reason"], r["records"]), ("tcp.smtp", "rebuilt", "no cdb yet", 3))
        self.assertEqual(r["bytes"], os.path.getsize(h.path("etc/tcp.smtp.cdb")))
        st = os.stat(h.path("etc/tcp.smtp.cdb"))

        p = h.run("qmailctl", "cdb")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout.decode(), r"^tcp\.smtp\s+up to date\s+3 records\s+%d bytes\s+etc/tcp\.smtp\.cdb\n$" % r["bytes"])
        self.assertEqual(os.stat(h.path("etc/tcp.smtp.cdb")).st_ino, st.st_ino)

        future = time.time() + 5
        os.utime(h.path("etc/tcp.smtp"), (future, future))
        p = h.run("qmailctl", "cdb")
        self.assertIn("rebuilt", p.stdout.decode())
        self.assertIn("source changed", p.stdout.decode())
        self.assertNotEqual(os.stat(h.path("etc/tcp.smtp.cdb")).st_ino, st.st_ino)

    def test_one_line_per_database_and_only_named_ones(self):
        h = self.home
        h.write("etc/tcp.smtp", RULES)
        h.write("etc/tcp.pop3", ":allow\n")
        h.write("control/morercpthosts", "example.com\n")
        h.write("control/relaymailfrom", "boss@example.com\n")
        p = h.run("qmailctl", "cdb", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        names = [json.loads(l)["database"] for l in p.stdout.splitlines()]
        self.assertEqual(names, ["tcp.smtp", "tcp.pop3", "morercpthosts", "relaymailfrom"])
        p = h.run("qmailctl", "cdb", "--force", "morercpthosts")
        self.assertEqual(len(p.stdout.splitlines()), 1)
        self.assertTrue(p.stdout.startswith(b"morercpthosts "))

    def test_check_and_dry_run_write_nothing(self):
        h = self.home
        h.write("etc/tcp.smtp", RULES)
        p = h.run("qmailctl", "cdb", "--check", "--json")
        self.assertEqual(p.returncode, 0)
        r = json.loads(p.stdout)
        self.assertEqual((r["status"], r["up_to_date"], r["records"]), ("valid", False, 3))
        p = h.run("qmailctl", "cdb", "--dry-run")
        self.assertIn("would rebuild", p.stdout.decode())
        self.assertEqual(h.listing("etc"), ["tcp.smtp"])
        self.assertFalse(os.path.exists(h.path(".qvmail.lock")))

    def test_a_damaged_cdb_is_rebuilt(self):
        h = self.home
        h.write("etc/tcp.smtp", RULES)
        h.run("qmailctl", "cdb")
        good = h.read("etc/tcp.smtp.cdb")
        with open(h.path("etc/tcp.smtp.cdb"), "r+b") as f:
            f.truncate(2100)
        p = h.run("qmailctl", "cdb")
        self.assertIn("cdb damaged", p.stdout.decode())
        self.assertEqual(h.read("etc/tcp.smtp.cdb"), good)

    def test_mode_and_owner_of_the_cdb_are_kept(self):
        h = self.home
        h.write("etc/tcp.smtp", RULES)
        h.run("qmailctl", "cdb")
        os.chmod(h.path("etc/tcp.smtp.cdb"), 0o664)
        os.chown(h.path("etc/tcp.smtp.cdb"), 123, 456)
        h.run("qmailctl", "cdb", "--force")
        st = os.stat(h.path("etc/tcp.smtp.cdb"))
        self.assertEqual((st.st_mode & 0o7777, st.st_uid, st.st_gid), (0o664, 123, 456))


class ControlDatabases(HomeTestCase):
    def test_morercpthosts_as_qmail_newmrh(self):
        h = self.home
        h.write("control/morercpthosts", "Example.COM \n# comment\n\nexample.org\t\nEXAMPLE.net")
        p = h.run("qmailctl", "cdb", "morercpthosts")
        self.assertEqual(p.returncode, 0, p.stderr)
        expected = cdbmake_text([(b"example.com", b""), (b"example.org", b""), (b"example.net", b"")])
        subprocess.run(["cdb", "-c", h.path("ref.cdb")], input=expected, check=True)
        self.assertEqual(h.read("control/morercpthosts.cdb"), h.read("ref.cdb"))
        self.assertEqual(h.run("qmailctl", "cdb", "-l", "EXAMPLE.ORG", "morercpthosts").returncode, 0)
        p = h.run("qmailctl", "cdb", "-l", "example.info", "morercpthosts")
        self.assertEqual((p.returncode, p.stdout), (1, b"morercpthosts: example.info: not found\n"))

    def test_relaymailfrom(self):
        h = self.home
        h.write("control/relaymailfrom", "Boss@Example.com\n@partner.example\n")
        self.assertEqual(h.run("qmailctl", "cdb").returncode, 0)
        dump = subprocess.run(["cdb", "-d", h.path("control/relaymailfrom.cdb")], capture_output=True).stdout
        self.assertEqual(dump, b"+16,0:boss@example.com->\n+16,0:@partner.example->\n\n")


class BadInput(HomeTestCase):
    def test_bad_line_names_file_line_and_text_and_changes_nothing(self):
        h = self.home
        h.write("etc/tcp.smtp", RULES)
        h.run("qmailctl", "cdb")
        before = h.read("etc/tcp.smtp.cdb")
        h.write("etc/tcp.smtp", RULES + "192.168.:allow,RELAYCLIENT=yes\n")
        future = time.time() + 5
        os.utime(h.path("etc/tcp.smtp"), (future, future))
        p = h.run("qmailctl", "cdb")
        self.assertEqual(p.returncode, 65)
        self.assertEqual(p.stdout, b"")
        err = p.stderr.decode()
        self.assertEqual(err.count("\n"), 1)
        self.assertTrue(err.startswith("qmailctl: " + h.path("etc/tcp.smtp") + ":4: "), err)
        self.assertIn("192.168.:allow,RELAYCLIENT=yes", err)
        self.assertEqual(h.read("etc/tcp.smtp.cdb"), before)
        self.assertEqual(h.listing("etc"), ["tcp.smtp", "tcp.smtp.cdb"])

        p = h.run("qmailctl", "cdb", "--json")
        e = json.loads(p.stderr)
        self.assertEqual((e["program"], e["database"], e["exit"], e["line"]), ("qmailctl", "tcp.smtp", 65, 4))
        self.assertEqual(e["file"], h.path("etc/tcp.smtp"))

    def test_other_databases_are_still_rebuilt(self):
        h = self.home
        h.write("etc/tcp.smtp", "bad line:\n")
        h.write("control/morercpthosts", "example.com\n")
        p = h.run("qmailctl", "cdb")
        self.assertEqual(p.returncode, 65)
        self.assertTrue(os.path.exists(h.path("control/morercpthosts.cdb")))

    def test_missing_named_source(self):
        p = self.home.run("qmailctl", "cdb", "relaymailfrom")
        self.assertEqual(p.returncode, 66)
        self.assertIn(self.home.path("control/relaymailfrom"), p.stderr.decode())

    def test_unreadable_source(self):
        h = self.home
        h.write("etc/tcp.smtp", RULES, mode=0o600)
        p = h.run("qmailctl", "cdb", "--lock-wait", "0", "--check", user=NOBODY)
        self.assertEqual(p.returncode, 66, p.stderr)
        self.assertIn("Permission denied", p.stderr.decode())

    def test_unwritable_directory(self):
        h = self.home
        h.write("etc/tcp.smtp", RULES, mode=0o644)
        h.run("qmailctl", "cdb")
        before = h.read("etc/tcp.smtp.cdb")
        future = time.time() + 5
        os.utime(h.path("etc/tcp.smtp"), (future, future))
        os.chown(h.path(".qvmail.lock"), NOBODY, NOBODY)  # so that only the directory is in the way
        p = h.run("qmailctl", "cdb", user=NOBODY)
        self.assertEqual(p.returncode, 73, p.stderr)
        self.assertIn(h.path("etc"), p.stderr.decode())
        self.assertEqual(h.read("etc/tcp.smtp.cdb"), before)
        self.assertEqual(h.listing("etc"), ["tcp.smtp", "tcp.smtp.cdb"])

    def test_missing_qmailhome(self):
        p = self.home.run("qmailctl", "cdb", env=self.home.env(QMAILHOME=self.home.path("nowhere")))
        self.assertEqual(p.returncode, 78)
        self.assertIn("nowhere", p.stderr.decode())

    def test_usage_errors(self):
        for args in (["cdb", "no-such-db"], ["cdb", "--no-such-option"], ["cdb", "--lookup", "1.2.3.4", "--check"],
                     ["cdb", "--host", "x"], ["no-such-command"], ["cdb", "--lookup", "1.2.3.4", "a", "b"]):
            with self.subTest(args=args):
                p = self.home.run("qmailctl", *args)
                self.assertEqual(p.returncode, 64, p.stderr)
                self.assertEqual(p.stderr.count(b"\n"), 1, p.stderr)
                self.assertTrue(p.stderr.startswith(b"qmailctl: "))

    def test_lookup_without_a_cdb(self):
        p = self.home.run("qmailctl", "cdb", "--lookup", "1.2.3.4")
        self.assertEqual(p.returncode, 66)
        self.assertIn("qmailctl cdb", p.stderr.decode())


class Locking(HomeTestCase):
    def test_held_lock_gives_a_temporary_failure(self):
        h = self.home
        h.write("etc/tcp.smtp", RULES)
        with open(h.path(".qvmail.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            p = h.run("qmailctl", "cdb", "--lock-wait", "0")
            self.assertEqual(p.returncode, 75)
            self.assertIn("lock", p.stderr.decode())
            self.assertFalse(os.path.exists(h.path("etc/tcp.smtp.cdb")))
            # --check writes nothing and takes no lock
            self.assertEqual(h.run("qmailctl", "cdb", "--check").returncode, 0)

    def test_concurrent_runs_never_tear_the_file(self):
        h = self.home
        rules = "".join("10.%d.%d.:allow,RELAYCLIENT=\"\",N=\"%d\"\n" % (i // 256, i % 256, i) for i in range(20000))
        h.write("etc/tcp.smtp", rules)
        self.assertEqual(h.run("qmailctl", "cdb").returncode, 0)
        expected = h.read("etc/tcp.smtp.cdb")
        stop = threading.Event()
        bad = []
        reads = [0]

        def reader():
            while not stop.is_set():
                data = h.read("etc/tcp.smtp.cdb")
                reads[0] += 1
                if data != expected:
                    bad.append(len(data))

        t = threading.Thread(target=reader)
        t.start()
        try:
            procs = []
            for _ in range(6):
                loop = "for i in 1 2 3; do '%s' cdb --force -q || exit 1; done" % tool("qmailctl")
                procs += [subprocess.Popen(["/bin/sh", "-c", loop], env=h.env(), stdout=subprocess.DEVNULL)
                          for _ in range(2)]
                for p in procs:
                    self.assertEqual(p.wait(timeout=120), 0)
                procs = []
        finally:
            stop.set()
            t.join()
        self.assertEqual(bad, [])
        self.assertGreater(reads[0], 20)  # the reader really ran alongside the writers
        self.assertEqual(h.read("etc/tcp.smtp.cdb"), expected)
        self.assertEqual(h.listing("etc"), ["tcp.smtp", "tcp.smtp.cdb"])


if __name__ == "__main__":
    unittest.main()
