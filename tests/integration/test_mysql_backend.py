"""The MariaDB backend: schema commands, an IndiMail-made database, an unreachable or crashing server,
and hostile input. Runs against the fixture's server (QV_MYSQL_DIR); the crash test starts its own."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from qvtest import SOURCE_DIR, Home, HomeTestCase, sql, tool

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


class MysqlTestCase(HomeTestCase):
    def setUp(self):
        self.home = Home("mysql")
        self.addCleanup(self.home.cleanup)


class Schema(MysqlTestCase):
    def test_init_is_idempotent_and_status_counts_rows(self):
        h = self.home
        p = self.ok(h.run("qmailctl", "db", "init", "--json"))
        self.assertEqual(json.loads(p.stdout)["created"], ["indimail", "indibak", "valias", "lastauth", "relay",
                                                            "vfilter", "qvdomain", "qvdomain_removed",
                                                            "hostcntrl", "qvhost", "aliasdomain"])
        p = self.ok(h.run("qmailctl", "db", "init", "--json"))
        self.assertEqual(json.loads(p.stdout)["created"], [])
        self.ok(h.run("vadddomain", "example.com", "-r", "10"))
        st = json.loads(self.ok(h.run("qmailctl", "db", "status", "--json")).stdout)
        self.assertTrue(st["version"].startswith("10."))
        self.assertEqual(st["database"], h.database)
        rows = {t["table"]: (t["exists"], t["rows"], t.get("engine")) for t in st["tables"]}
        self.assertEqual(rows["indimail"], (True, 1, "InnoDB"))
        self.assertEqual(rows["valias"], (True, 2, "InnoDB"))
        self.assertEqual(rows["qvdomain"], (True, 1, "InnoDB"))  # the domain, shared with other hosts
        text = self.ok(h.run("qmailctl", "db", "status")).stdout.decode()
        self.assertIn("indimail: 1 rows, InnoDB", text)
        self.assertNotIn("qvtest-password", text)

    def test_status_of_a_missing_database(self):
        p = self.home.run("qmailctl", "db", "status", env=self.home.env(MYSQL_DATABASE="no_such_db_here"))
        self.assertEqual(p.returncode, 78)
        self.assertIn(b"qmailctl db init", p.stderr)

    def test_backend_is_shown(self):
        h = self.home
        self.ok(h.run("vadddomain", "example.com", "-r", "10"))
        self.assertEqual(json.loads(h.run("vdominfo", "--json").stdout)["store"], "mysql")
        self.assertEqual(json.loads(h.run("qmailctl", "check", "--json").stdout.splitlines()[-1])["store"], "mysql")


class IndimailDatabase(MysqlTestCase):
    def test_tables_made_by_indimail(self):
        h = self.home
        with open(os.path.join(FIXTURES, "indimail-tables.sql")) as f:
            sql(f.read(), h.database)
        # init leaves IndiMail's tables alone and adds only what is missing
        created = json.loads(self.ok(h.run("qmailctl", "db", "init", "--json")).stdout)["created"]
        self.assertEqual(created, ["lastauth", "relay", "vfilter", "qvdomain", "qvdomain_removed", "hostcntrl",
                                   "qvhost", "aliasdomain"])
        self.assertIn("latin1", h.rows("SHOW CREATE TABLE indimail")[0][1])
        # a mailbox IndiMail wrote: NO_SMTP (0x200) in pw_gid, a size,count quota
        self.ok(h.run("vadddomain", "example.com", "-r", "10"))
        h.rows("INSERT INTO indimail (pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell) "
               "VALUES ('old', 'example.com', '$1$abcdefgh$0123456789abcdefghijkl', 1, 512, 'Old User', "
               "'%s', '5242880S,100C')" % h.path("home/L2P/example.com/old"))
        info = json.loads(self.ok(h.run("vuserinfo", "--json", "old@example.com")).stdout)
        self.assertEqual((info["flags"], info["quota_bytes"], info["quota_count"], info["hash"]),
                         (["no-smtp"], 5242880, 100, "MD5"))
        dom = json.loads(self.ok(h.run("vdominfo", "--json", "example.com")).stdout)
        self.assertEqual((dom["users"], dom["aliases"]), (2, ["abuse", "mailer-daemon"]))
        # rows qvmail wrote are what IndiMail's tools read
        r = h.rows("SELECT pw_name, pw_uid, pw_gid, pw_gecos, pw_shell, scram FROM indimail "
                   "WHERE pw_name = 'postmaster'")
        self.assertEqual(r, [["postmaster", "1", "0", "Postmaster", "NOQUOTA", None]])
        self.ok(h.run("vdeldomain", "example.com"))
        self.assertEqual(h.rows("SELECT COUNT(*) FROM indimail"), [["0"]])
        self.assertEqual(h.rows("SELECT COUNT(*) FROM valias"), [["0"]])

    def test_four_byte_utf8_in_a_latin1_table_is_refused(self):
        h = self.home
        with open(os.path.join(FIXTURES, "indimail-tables.sql")) as f:
            sql(f.read(), h.database)  # the fixture server's default character set is latin1
        self.ok(h.run("vadddomain", "example.com", "-r", "10"))
        before = h.snapshot()
        p = h.run("vadduser", "joe@example.com", "-r", "10", "-c", "Joe \U0001F600")
        self.assertEqual(p.returncode, 65, p.stderr)
        self.assertEqual(h.snapshot(), before)


class Unreachable(MysqlTestCase):
    def commands(self):
        return [["vadddomain", "new.example", "-r", "10"], ["vdominfo"], ["vadduser", "joe@example.com", "-r", "10"],
                ["vdeldomain", "example.com"], ["qmailctl", "check"], ["qmailctl", "db", "status"]]

    def test_server_down_and_wrong_password(self):
        h = self.home
        self.ok(h.run("vadddomain", "example.com", "-r", "10"))
        rows = h.rows("SELECT * FROM indimail")
        right = h.read("control/host.mysql")
        for label, line in (("no server", "localhost:qvmail:qvtest-password:%s\n" % h.path("no-such.sock")),
                            ("wrong password", right.decode().replace("qvtest-password", "Wr0ng-Secret"))):
            h.write("control/host.mysql", line)
            before = h.snapshot()
            for cmd in self.commands():
                with self.subTest(case=label, command=cmd[0]):
                    t = time.monotonic()
                    p = h.run(*cmd)
                    self.assertLess(time.monotonic() - t, 5.0)
                    self.assertEqual(p.returncode, 69, p.stderr)
                    err = p.stderr.decode()
                    self.assertEqual(err.count("\n"), 1, err)
                    self.assertIn("MariaDB at localhost", err)
                    self.assertNotIn("Wr0ng-Secret", err)
                    self.assertNotIn("qvtest-password", err)
            self.assertEqual(h.snapshot(), before)
        h.write("control/host.mysql", right)
        self.assertEqual(h.rows("SELECT * FROM indimail"), rows)

    def test_a_server_that_never_answers_times_out(self):
        h = self.home
        path = h.path("silent.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen(5)
        accepted = []
        threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
        h.write("control/host.mysql", "localhost:qvmail:x:%s\n" % path)
        before = h.snapshot()
        t = time.monotonic()
        p = h.run("vadddomain", "new.example", "-r", "10")
        elapsed = time.monotonic() - t
        listener.close()
        self.assertEqual(p.returncode, 69, p.stderr)
        self.assertGreater(elapsed, 4.0)   # the connect timeout is 5 seconds ...
        self.assertLess(elapsed, 10.0)     # ... and it is kept
        self.assertIn(path.encode(), p.stderr)
        self.assertEqual(h.snapshot(), before)


class Crash(unittest.TestCase):
    """The server dies while vadddomain waits inside its transaction."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="qvmdb.")
        subprocess.run([os.path.join(SOURCE_DIR, "scripts", "mariadb-fixture"), "start", self.dir], check=True,
                       capture_output=True)
        self.addCleanup(subprocess.run, [os.path.join(SOURCE_DIR, "scripts", "mariadb-fixture"), "stop", self.dir])
        with open(os.path.join(self.dir, "socket")) as f:
            self.sock = f.read().strip()
        self.home = Home("files")
        self.addCleanup(self.home.cleanup)
        self.home.database = None
        self.home.write("control/host.mysql", "localhost:qvmail:qvtest-password:%s\n" % self.sock)
        self.env = self.home.env(MYSQL_DATABASE="crashtest")

    def root_sql(self, statement):
        return subprocess.run(["mariadb", "--no-defaults", "--socket=" + self.sock, "-u", "root", "-N", "-B",
                               "crashtest", "-e", statement], capture_output=True, check=True).stdout.decode()

    def wait_for(self, count_query, process=None):
        """Polls until the query counts one row; fails early if `process` ends meanwhile."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.root_sql(count_query).strip() == "1":
                return
            if process is not None and process.poll() is not None:
                self.fail("the command ended before it was caught waiting: %r" % (process.communicate(),))
            time.sleep(0.05)
        self.fail("timed out waiting for: " + count_query)

    def test_killing_the_server_mid_add_leaves_no_trace(self):
        h = self.home
        self.assertEqual(h.run("vadddomain", "first.example", "-r", "10", env=self.env).returncode, 0)
        before = h.snapshot()
        # Hold a write lock on the users table so that the next add stops inside its transaction.
        holder = subprocess.Popen(["mariadb", "--no-defaults", "--socket=" + self.sock, "-u", "root", "crashtest"],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        holder.stdin.write(b"LOCK TABLES indimail WRITE; SELECT SLEEP(120);\n")
        holder.stdin.flush()
        self.addCleanup(holder.kill)
        self.wait_for("SELECT COUNT(*) FROM information_schema.processlist WHERE state = 'User sleep'")
        add = subprocess.Popen([tool("vadddomain"), "second.example", "-r", "10"], env=self.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.wait_for("SELECT COUNT(*) FROM information_schema.processlist "
                      "WHERE info LIKE 'INSERT INTO indimail%' AND state LIKE 'Waiting%'", add)
        with open(os.path.join(self.dir, "mysqld.pid")) as f:
            os.kill(int(f.read()), signal.SIGKILL)
        out, err = add.communicate(timeout=60)
        self.assertEqual(add.returncode, 69, err)
        self.assertEqual(h.snapshot(), before)  # no directory, no assign line, no control entry
        subprocess.run([os.path.join(SOURCE_DIR, "scripts", "mariadb-fixture"), "run", self.dir], check=True,
                       capture_output=True)
        self.assertEqual(self.root_sql("SELECT pw_domain FROM indimail ORDER BY 1").split(), ["first.example"])
        self.assertEqual(self.root_sql("SELECT COUNT(*) FROM valias WHERE domain = 'second.example'").strip(), "0")
        p = h.run("qmailctl", "check", env=self.env)
        self.assertEqual(p.returncode, 0, p.stdout)


class HostileInput(MysqlTestCase):
    VALUES = ["O'Brien", 'say "hi"', "back\\slash\\", "100% _under_", "x', pw_gid='999", '"; DROP TABLE indimail; --',
              "Ünïcödé ñame", "emoji \U0001F600 4 bytes", "`tick` ${HOME} $(id)"]

    def test_every_value_reaches_the_table_literally(self):
        h = self.home
        self.ok(h.run("vadddomain", "example.com", "-r", "10"))
        for i, value in enumerate(self.VALUES):
            with self.subTest(value=value):
                addr = "u%d@example.com" % i
                self.ok(h.run("vadduser", addr, "-r", "10", "-c", value))
                self.assertEqual(json.loads(h.run("vuserinfo", "--json", addr).stdout)["gecos"], value)
                stored = h.rows("SELECT HEX(pw_gecos), pw_gid FROM indimail WHERE pw_name = 'u%d'" % i)
                self.assertEqual(stored, [[value.encode().hex().upper(), "0"]])
                self.ok(h.run("vmoduser", "-c", value + "!", addr))
                self.assertEqual(json.loads(h.run("vuserinfo", "--json", addr).stdout)["gecos"], value + "!")
        self.assertEqual(h.rows("SELECT COUNT(*) FROM indimail"), [[str(len(self.VALUES) + 1)]])

    def test_underscore_and_percent_are_not_wildcards(self):
        h = self.home
        self.ok(h.run("vadddomain", "example.com", "-r", "10"))
        self.ok(h.run("vadduser", "a_b@example.com", "-r", "10"))
        self.ok(h.run("vadduser", "axb@example.com", "-r", "10"))
        self.assertEqual(h.run("vuserinfo", "a_x@example.com").returncode, 67)
        self.assertEqual(h.run("vadduser", "a%b@example.com", "-r", "10").returncode, 65)
        self.ok(h.run("vdeluser", "a_b@example.com"))
        self.assertEqual(h.rows("SELECT pw_name FROM indimail ORDER BY 1"), [["axb"], ["postmaster"]])

    def test_over_long_and_control_characters_are_refused(self):
        h = self.home
        self.ok(h.run("vadddomain", "example.com", "-r", "10"))
        before = h.snapshot()
        for args in (["-c", "x" * 49], ["-c", "tab\there"], ["-c", "colon:inside"]):
            with self.subTest(args=args):
                p = h.run("vadduser", "joe@example.com", "-r", "10", *args)
                self.assertEqual(p.returncode, 65, p.stderr)
        # a base path longer than the domain's row and IndiMail's pw_dir (156 characters) take cannot be stored
        long_base = h.path("b" * 150)
        p = h.run("vadddomain", "long.example", "-r", "10", "-B", long_base)
        self.assertEqual(p.returncode, 65, p.stderr)
        self.assertIn(b"Data too long for column 'base_path'", p.stderr)
        self.assertEqual(h.snapshot(), before)


if __name__ == "__main__":
    unittest.main()
