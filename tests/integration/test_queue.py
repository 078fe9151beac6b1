"""The queue: qmail-queue's interface (descriptors, envelope, exit codes), qmail-queued, qmail-nullqueue,
qmailctl queue init|stat|list, and no loss when processes are killed at random."""
import json
import os
import random
import re
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import threading
import time
import unittest

from qvtest import HomeTestCase, tool
from smtptest import JOE, MailHost, Process

RECEIVED = rb"^Received: \(qmail (\d+) invoked by uid %d\); \d+ \w{3} \d{4} \d\d:\d\d:\d\d -0000\n"


def envelope(sender, *recipients):
    return b"F" + sender.encode() + b"\0" + b"".join(b"T" + r.encode() + b"\0" for r in recipients) + b"\0"


class QueueCase(HomeTestCase):
    def setUp(self):
        super().setUp()
        self.ok(self.home.run("qmailctl", "queue", "init", "--quiet"))
        self.processes = []
        self.addCleanup(lambda: [p.stop() for p in self.processes])

    def qmail_queue(self, message, env_bytes, program="qmail-queue", env=None):
        """Runs the program with the message on descriptor 0 and the envelope on 1; its exit code."""
        with tempfile.TemporaryFile() as envelope_file:  # a file, not a pipe: an envelope may be megabytes
            envelope_file.write(env_bytes)
            envelope_file.seek(0)
            p = subprocess.run([tool(program)], input=message, stdout=envelope_file, stderr=subprocess.PIPE,
                               env=env or self.home.env(), timeout=60)
        return p.returncode

    def queue(self):
        p = self.ok(self.home.run("qmailctl", "queue", "list", "--json"))
        return [json.loads(l) for l in p.stdout.splitlines()]

    def mess(self, n):
        return self.home.read("queue/mess/%d/%d" % (n % 23, n))

    def start_queued(self):
        q = Process([tool("qmail-queued")], self.home.env(), self.home.path("queued.log"))
        self.processes.append(q)
        sock = self.home.path("run/qmail-queued.sock")
        for _ in range(2000):
            if os.path.exists(sock):
                return q
            time.sleep(0.01)
        self.fail("qmail-queued did not start: " + q.read_log())


class QmailQueue(QueueCase):
    def check_queued(self, via_daemon):
        code = self.qmail_queue(b"Subject: x\n\nbody\n", envelope("a@example.net", "joe@example.com", "b@remote.example"))
        self.assertEqual(code, 0)
        [m] = self.queue()
        self.assertEqual((m["state"], m["sender"]), ("todo", "a@example.net"))
        self.assertEqual([r["address"] for r in m["recipients"]], ["joe@example.com", "b@remote.example"])
        text = self.mess(m["number"])
        self.assertRegex(text, RECEIVED % os.getuid())
        self.assertTrue(text.endswith(b"Subject: x\n\nbody\n"))
        # notqmail's files: mess/N has inode N; todo/N is the envelope qmail-send reads
        st = os.stat(self.home.path("queue/mess/%d/%d" % (m["number"] % 23, m["number"])))
        self.assertEqual(st.st_ino, m["number"])
        todo = self.home.read("queue/todo/%d" % m["number"])
        self.assertEqual(todo, b"u%d\0p%s\0Fa@example.net\0Tjoe@example.com\0Tb@remote.example\0" %
                         (os.getuid(), re.match(RECEIVED % os.getuid(), text).group(1)))
        self.assertEqual(os.listdir(self.home.path("queue/pid")), [])
        return m

    def test_alone(self):
        self.check_queued(False)

    def test_through_qmail_queued(self):
        q = self.start_queued()
        # the socket's directory, made by qmail-queued, is one every local user may reach
        self.assertEqual(stat.S_IMODE(os.stat(self.home.path("run")).st_mode), 0o755)
        self.check_queued(True)
        q.stop()
        self.assertRegex(q.read_log(), r"stopped: 1 messages in 1 batches, 2 flushes")

    def test_an_envelope_of_thousands_of_recipients(self):
        # larger than a data frame may be: the envelope is taken up to qmail-queue's own limit
        recipients = ["r%04d.%s@remote.example" % (i, "x" * 480) for i in range(2500)]
        for daemon in (False, True):
            if daemon:
                self.start_queued()
            self.assertEqual(self.qmail_queue(b"Subject: many\n\nx\n", envelope("a@example.net", *recipients)), 0)
        self.assertEqual([len(m["recipients"]) for m in self.queue()], [2500, 2500])

    def test_exit_codes(self):
        for daemon in (False, True):
            if daemon:
                self.start_queued()
            self.assertEqual(self.qmail_queue(b"x\n", b"Fa@b\0Tc@d\0"), 54)                # cut short: read error
            self.assertEqual(self.qmail_queue(b"x\n", b"Xa@b\0\0"), 91)                    # not F first
            self.assertEqual(self.qmail_queue(b"x\n", envelope("a@b", "c@d") + b"junk"), 91)
            self.assertEqual(self.qmail_queue(b"x\n", envelope("a" * 1003 + "@b", "c@d")), 11)  # too long: permanent
            self.assertEqual(self.queue(), [])  # nothing left behind, complete or not
            self.assertEqual(os.listdir(self.home.path("queue/intd")), [])

    def test_no_queue(self):
        self.assertEqual(self.qmail_queue(b"x\n", envelope("a@b", "c@d"), env=self.home.env(QUEUEDIR="/nonexistent/q")), 62)

    def test_nullqueue(self):
        self.assertEqual(self.qmail_queue(b"x\n", envelope("a@b", "c@d"), program="qmail-nullqueue"), 0)
        self.assertEqual(self.queue(), [])

    def test_a_client_that_goes_away_queues_nothing(self):
        q = self.start_queued()
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.home.path("run/qmail-queued.sock"))
        s.sendall(b"M\0\0\0\x05hello")
        s.close()
        time.sleep(0.3)
        self.assertEqual(self.queue(), [])
        self.assertEqual(os.listdir(self.home.path("queue/intd")), [])
        # a second writer for the same socket is refused; qmail-queued without a queue says so
        p = subprocess.run([tool("qmail-queued")], env=self.home.env(), capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 75, p.stderr)
        p = subprocess.run([tool("qmail-queued")], env=self.home.env(QUEUEDIR="/nonexistent/q"),
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 66, p.stderr)
        self.assertIn(b"no queue at /nonexistent/q", p.stderr)
        q.stop()


class QmailctlQueue(QueueCase):
    def test_init_is_idempotent_and_says_so(self):
        q = self.home.path("queue")
        self.assertEqual(oct(os.stat(q).st_mode & 0o7777), "0o750")
        modes = {"pid": 0o700, "intd": 0o700, "todo": 0o750, "bounce": 0o700, "mess/0": 0o750, "mess/22": 0o750,
                 "info/5": 0o700, "local/5": 0o700, "remote/22": 0o700, "lock": 0o750}
        for d, mode in modes.items():
            self.assertEqual(os.stat(os.path.join(q, d)).st_mode & 0o7777, mode, d)
        self.assertFalse(os.path.exists(os.path.join(q, "mess/23")))
        self.assertTrue(stat.S_ISFIFO(os.stat(os.path.join(q, "lock/trigger")).st_mode))
        self.assertEqual(os.path.getsize(os.path.join(q, "lock/tcpto")), 1024)
        before = self.home.snapshot()
        p = self.ok(self.home.run("qmailctl", "queue", "init"))
        self.assertIn(b"is complete: nothing to do", p.stdout)
        self.assertEqual(self.home.snapshot(), before)
        # a mode put right; --dry-run only says so
        os.chmod(os.path.join(q, "todo"), 0o777)
        p = self.ok(self.home.run("qmailctl", "queue", "init", "--dry-run", "--json"))
        j = json.loads(p.stdout)
        self.assertEqual(j["status"], "dry-run")
        self.assertIn("set the mode of %s/todo to 0750 (was 0777)" % q, j["steps"])
        self.assertEqual(os.stat(os.path.join(q, "todo")).st_mode & 0o7777, 0o777)
        self.ok(self.home.run("qmailctl", "queue", "init"))
        self.assertEqual(os.stat(os.path.join(q, "todo")).st_mode & 0o7777, 0o750)
        # something in the way is refused, and named
        os.rmdir(os.path.join(q, "bounce"))
        self.home.write("queue/bounce", "not a directory")
        p = self.home.run("qmailctl", "queue", "init")
        self.assertEqual(p.returncode, 73)
        self.assertIn(b"bounce exists and is not a directory", p.stderr)

    def run_on_terminal(self, *args):
        """Runs qmailctl with its standard error on a terminal (a pty); returns (exit, stdout, what the
        terminal got)."""
        import pty
        master, slave = pty.openpty()
        p = subprocess.Popen([tool("qmailctl")] + list(args), env=self.home.env(QV_PROGRESS_DELAY="0"),
                             stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        out = p.stdout.read()
        p.stdout.close()
        p.wait(60)
        term = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the pty is closed: all read
                break
            if not chunk:
                break
            term += chunk
        os.close(master)
        return p.returncode, out, term

    def test_progress_only_on_a_terminal(self):
        for i in range(300):
            self.assertEqual(self.qmail_queue(b"m\n", envelope("a@example.net", "x%d@y.example" % i)), 0)
        code, out, term = self.run_on_terminal("queue", "stat")
        self.assertEqual(code, 0)
        self.assertIn(b"\rqmailctl queue stat: messages read: 0 of 300 (0%)\x1b[K", term)
        self.assertTrue(term.endswith(b"\r\x1b[K"), term)  # erased before the result
        self.assertIn(b"messages in queue: 300\n", out)
        self.assertNotIn(b"\r", out)
        # never with --json
        for args in (("queue", "list", "--json"), ("status", "--json"), ("queue", "stat", "--json")):
            code, out, term = self.run_on_terminal(*args)
            self.assertEqual(term, b"", args)
        # nor when standard error is not a terminal
        p = self.home.run("qmailctl", "queue", "stat", env=self.home.env(QV_PROGRESS_DELAY="0"))
        self.assertEqual(p.stderr, b"")

    def test_stat_and_list(self):
        self.assertEqual(self.qmail_queue(b"one\n", envelope("a@example.net", "x@y.example")), 0)
        self.assertEqual(self.qmail_queue(b"two two\n", envelope("", "p@q.example", "r@s.example")), 0)
        st = json.loads(self.ok(self.home.run("qmailctl", "queue", "stat", "--json")).stdout)
        self.assertEqual((st["messages"], st["todo"], st["recipients"], st["incomplete"]), (2, 2, 3, 0))
        text = self.ok(self.home.run("qmailctl", "queue", "stat")).stdout.decode()
        self.assertIn("messages in queue: 2\nmessages in queue but not yet preprocessed: 2\n", text)
        listing = self.ok(self.home.run("qmailctl", "queue", "list")).stdout.decode()
        self.assertRegex(listing, r"#\d+  \d+  <a@example.net>  \d+ s  \(todo\)\n\tx@y.example\n")
        self.assertRegex(listing, r"<>  \d+ s  \(todo\)\n\tp@q.example\n\tr@s.example\n")
        # anyone's bytes in an address reach the terminal escaped
        self.assertEqual(self.qmail_queue(b"three\n", envelope("\x1b[2Jevil@example.net", "t@u.example")), 0)
        listing = self.ok(self.home.run("qmailctl", "queue", "list")).stdout.decode()
        self.assertNotIn("\x1b", listing)
        self.assertIn("[2Jevil@example.net>", listing)
        # a message being written (mess/ and intd/, no todo/ link) is not queued, and is told apart
        self.home.write("queue/mess/1/24", "half")
        self.home.write("queue/intd/24", b"u0\0p1\0Fhalf@example.net\0")
        st = json.loads(self.ok(self.home.run("qmailctl", "queue", "stat", "--json")).stdout)
        self.assertEqual((st["messages"], st["incomplete"]), (3, 1))
        self.assertIn("incomplete", [m["state"] for m in self.queue()])
        p = self.home.run("qmailctl", "queue", "stat", env=self.home.env(QUEUEDIR="/nonexistent/q"))
        self.assertEqual(p.returncode, 66)


class NoLoss(unittest.TestCase):
    """2,000 messages over SMTP while kill -9 hits qmail-smtpd, qmail-queue and qmail-queued at random:
    every message acknowledged with 250 is queued, complete and parseable, and nothing half-written is
    ever queued."""
    MESSAGES = 2000

    def setUp(self):
        self.host = MailHost()
        self.addCleanup(self.host.cleanup)

    def test_kill_nine(self):
        h = self.host
        h.set_rules('127.0.0.1:allow,RELAYCLIENT=""\n')
        # kill -9 at a random moment: a third of the qmail-smtpd sessions, and a third of the sessions run
        # qmail-queue (QMAILQUEUE) of which a third are killed in turn; the killers leave a mark in a log
        kills_log = h.home.path("kills.log")
        h.home.write("smtpd.sh", """#!/bin/sh
r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
if [ $((r % 3)) = 0 ]; then
    (sleep 0.0$((r % 30)); kill -9 $$ 2>/dev/null && echo qmail-smtpd >> @LOG@) &
fi
if [ $((r / 3 % 3)) = 0 ]; then QMAILQUEUE=@QQ@; export QMAILQUEUE; fi
exec @SMTPD@
""".replace("@LOG@", kills_log).replace("@QQ@", h.home.path("qq.sh")).replace("@SMTPD@", tool("qmail-smtpd")),
                     mode=0o755)
        h.home.write("qq.sh", """#!/bin/sh
r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
if [ $((r % 3)) = 0 ]; then
    (sleep 0.0$((r % 20)); kill -9 $$ 2>/dev/null && echo qmail-queue >> @LOG@) &
fi
exec @QQ@
""".replace("@LOG@", kills_log).replace("@QQ@", tool("qmail-queue")), mode=0o755)
        h.start_queued()
        h.start_program(h.home.path("smtpd.sh"))
        stop = threading.Event()
        daemon_kills = [0]

        def kill_the_writer():  # and restart it, as a supervisor would, a moment later
            rng = random.Random(1)
            while not stop.is_set():
                time.sleep(rng.uniform(0.05, 0.4))
                try:
                    os.kill(h.queued.p.pid, signal.SIGKILL)
                    daemon_kills[0] += 1
                except ProcessLookupError:
                    pass
                h.queued.p.wait()
                time.sleep(rng.uniform(0, 0.1))  # meanwhile qmail-queue writes alone
                h.start_queued()

        acked, lock = [], threading.Lock()

        def client(first):
            for i in range(first, self.MESSAGES, 4):
                token = "msg-%05d" % i
                body = "Subject: %s\r\nX-Token: %s\r\n\r\n%s\r\nend-of-%s\r\n" % (token, token, "x" * (i % 700), token)
                try:
                    s = smtplib.SMTP("127.0.0.1", h.port, timeout=30)
                    s.sendmail("a@example.net", ["r%d@remote.example" % i], body)
                    with lock:
                        acked.append(token)
                    s.quit()
                except (smtplib.SMTPException, OSError):
                    pass

        killer = threading.Thread(target=kill_the_writer)
        clients = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        killer.start()
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        stop.set()
        killer.join()
        h.stop()
        kills = {"qmail-queued": daemon_kills[0], "qmail-smtpd": 0, "qmail-queue": 0}
        if os.path.exists(kills_log):
            for name in h.home.read("kills.log").decode().split():
                kills[name] += 1
        self.assertTrue(all(n >= 10 for n in kills.values()), kills)
        self.assertGreater(len(acked), self.MESSAGES // 3, (len(acked), kills))
        queued = {}
        for m in h.queue():
            if m["state"] == "incomplete":
                continue
            text = h.message_text(m["number"])
            token = re.search(rb"X-Token: (msg-\d+)\n", text)
            self.assertIsNotNone(token, text[:300])
            token = token.group(1).decode()
            # complete: the whole body to its last line, and the envelope it was sent with
            self.assertTrue(text.endswith(("end-of-%s\n" % token).encode()), text[-200:])
            self.assertEqual(m["sender"], "a@example.net")
            self.assertEqual([r["address"] for r in m["recipients"]], ["r%d@remote.example" % int(token[4:])])
            queued[token] = m["number"]
        lost = [t for t in acked if t not in queued]
        self.assertEqual(lost, [], "acknowledged but not queued (kills: %r)" % kills)
        st = json.loads(h.run_ok("qmailctl", "queue", "stat", "--json").stdout)
        self.assertEqual(st["todo"], len(os.listdir(h.home.path("queue/todo"))))
        self.assertEqual(st["messages"], len(queued))
        print("\n  no loss: %d sent, %d acknowledged, %d queued (a message can be queued although its client"
              " was not told), kills %r" % (self.MESSAGES, len(acked), len(queued), kills))


if __name__ == "__main__":
    unittest.main()
