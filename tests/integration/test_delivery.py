"""Delivery end to end: qmail-smtpd (or qmail-queue) -> the queue -> qmail-send -> Maildirs, aliases, the
domain's handler, vfilter rules, qmail-remote to a real SMTP sink (aiosmtpd) on loopback, and bounces."""
import os
import random
import re
import signal
import smtplib
import subprocess
import threading
import time
import unittest

from qvtest import login, tool
from smtptest import JOE, JOE_PASSWORD, TIM, MailHost, Sink

MESSAGE = b"From: Sender <sender@remote.test>\nTo: joe@example.com\nSubject: %s\n\nHello,\n.dot line\nbye\n"


def message(subject="hello"):
    return MESSAGE.replace(b"%s", subject.encode())


class DeliveryCase(unittest.TestCase):
    def setUp(self):
        self.host = MailHost()
        self.addCleanup(self.host.cleanup)
        self.sinks = []

    def sink(self, **kw):
        s = Sink(**kw)
        self.sinks.append(s)
        self.addCleanup(s.stop)
        return s

    def owner(self):
        """The domain's uid and gid, from users/assign."""
        for line in self.host.home.read("users/assign").decode().splitlines():
            if line.startswith("+example.com-:"):
                f = line.split(":")
                return int(f[2]), int(f[3])
        raise AssertionError("example.com is not in users/assign")

    def queued(self):
        """The messages queued (an incomplete message file, left by a writer killed before its commit or by
        qmail-send killed while removing a finished message, is not queued)."""
        return [m for m in self.host.queue() if m["state"] != "incomplete"]

    def wait_empty(self, timeout=30):
        self.host.wait_for(lambda: not self.queued(), "an empty queue", timeout)

    def inject(self, sender, recipients, msg=None, env=None):
        code = self.host.inject(sender, recipients, msg or message(), env=env)
        self.assertEqual(code, 0)

    def joe(self):
        return self.host.maildir_messages(self.host.mailbox(JOE))

    def log_lines(self, pattern):
        return [l for l in self.host.send_log().splitlines() if re.search(pattern, l)]


class MailboxDelivery(DeliveryCase):
    def test_smtp_to_maildir(self):
        """A message sent over SMTP lands in the mailbox's Maildir with Return-Path and Delivered-To."""
        self.host.start()
        self.host.start_send()
        with smtplib.SMTP("127.0.0.1", self.host.port, timeout=30) as s:
            s.sendmail("sender@remote.test", [JOE], message("over smtp").replace(b"\n", b"\r\n"))
        got = self.host.wait_for(self.joe, "joe's mail")
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].startswith(b"Return-Path: <sender@remote.test>\nDelivered-To: joe@example.com\n"),
                        got[0][:200])
        self.assertIn(b"Received: (qmail ", got[0])
        self.assertIn(b"Subject: over smtp\n", got[0])
        self.assertIn(b"\n.dot line\n", got[0])
        self.wait_empty()
        pattern = r"^delivery \d+: msg \d+ local example\.com-joe@example\.com: success: "
        lines = self.host.wait_for(lambda: self.log_lines(pattern), "its log line")
        self.assertEqual(len(lines), 1, self.host.send_log())
        self.assertRegex(lines[0], r"\(\d+\.\d{3} s\)$")
        maildir = self.host.mailbox(JOE)
        self.assertEqual(os.listdir(os.path.join(maildir, "tmp")), [])
        name = os.listdir(os.path.join(maildir, "new"))[0]
        st = os.stat(os.path.join(maildir, "new", name))
        self.assertEqual((st.st_uid, st.st_gid), self.owner(), "delivered as the domain's owner")

    def test_queued_before_start_and_alias(self):
        """Mail queued while qmail-send is down is delivered when it starts; abuse@ (an alias) reaches
        postmaster."""
        self.inject("sender@remote.test", ["abuse@example.com", JOE])
        self.host.start_send()
        pm = self.host.mailbox("postmaster@example.com")
        got = self.host.wait_for(lambda: self.host.maildir_messages(pm), "postmaster's mail")
        self.assertIn(b"Delivered-To: abuse@example.com\n", got[0])
        self.host.wait_for(self.joe, "joe's mail")
        self.wait_empty()

    def test_valias_alias_reaches_each_target(self):
        """An alias made with valias (two forwards and a Maildir of the domain) delivers a copy to each."""
        run = self.host.home.run
        for line in ("&" + JOE, TIM, "./sales/Maildir/"):
            p = run("valias", "-i", line, "sales@example.com")
            self.assertEqual(p.returncode, 0, p.stderr)
        archive = os.path.join(self.host.home.path("domains/example.com"), "sales/Maildir")
        for sub in ("", "/new", "/cur", "/tmp"):
            os.makedirs(archive + sub)
        uid, gid = self.owner()
        for sub in ("", "/new", "/cur", "/tmp"):
            os.chown(archive + sub, uid, gid)
        self.host.start_send()
        self.inject("sender@remote.test", ["sales@example.com"])
        for who in (self.joe, lambda: self.host.maildir_messages(self.host.mailbox(TIM)),
                    lambda: self.host.maildir_messages(archive)):
            got = self.host.wait_for(who, "a copy for each of the alias's lines")
            self.assertIn(b"Delivered-To: sales@example.com\n", got[0])
        self.wait_empty()

    def test_alias_domain_delivers_to_the_real_mailbox(self):
        """After vaddaliasdomain, mail to joe@alias.example over SMTP lands in joe@example.com's Maildir."""
        p = self.host.home.run("vaddaliasdomain", "alias.example", "example.com")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.host.start()
        self.host.start_send()
        with smtplib.SMTP("127.0.0.1", self.host.port, timeout=30) as s:
            s.sendmail("sender@remote.test", ["joe@alias.example"], message("to the alias domain").replace(b"\n", b"\r\n"))
            with self.assertRaises(smtplib.SMTPRecipientsRefused):  # an unknown mailbox: refused at RCPT
                s.sendmail("sender@remote.test", ["nobody@alias.example"], message("nobody").replace(b"\n", b"\r\n"))
        got = self.host.wait_for(self.joe, "joe's mail through the alias domain")
        self.assertIn(b"Subject: to the alias domain", got[0])
        self.wait_empty()

    def test_renamed_mailbox_gets_mail_and_logs_in(self):
        """After vrenameuser joe jim, mail to jim over SMTP lands in the moved Maildir (joe's mail with it),
        jim logs in with joe's password, and joe is refused at RCPT."""
        self.host.start()
        self.host.start_send()
        self.inject("sender@remote.test", [JOE], message("before the rename"))
        self.host.wait_for(self.joe, "joe's mail")
        self.wait_empty()
        p = self.host.home.run("vrenameuser", JOE, "jim@example.com")
        self.assertEqual(p.returncode, 0, p.stderr)
        with smtplib.SMTP("127.0.0.1", self.host.port, timeout=30) as s:
            s.sendmail("sender@remote.test", ["jim@example.com"], message("after the rename").replace(b"\n", b"\r\n"))
            with self.assertRaises(smtplib.SMTPRecipientsRefused):
                s.sendmail("sender@remote.test", [JOE], message("old name").replace(b"\n", b"\r\n"))
        jim = self.host.mailbox("jim@example.com")
        got = self.host.wait_for(lambda: len(self.host.maildir_messages(jim)) == 2 and self.host.maildir_messages(jim),
                                 "jim's mail")
        self.assertEqual(sorted(b"Subject: before" in m for m in got), [False, True])
        self.assertIn(b"Delivered-To: jim@example.com\n", [m for m in got if b"after the rename" in m][0])
        self.wait_empty()
        self.assertEqual(login(self.host.home, "jim@example.com", JOE_PASSWORD).returncode, 0)
        self.assertEqual(login(self.host.home, JOE, JOE_PASSWORD).returncode, 1)

    def test_loop_is_bounced(self):
        """A message that already carries the mailbox's Delivered-To line is a loop: bounced, not delivered."""
        self.host.start_send()
        self.inject("tim@example.com", [JOE], b"Delivered-To: joe@example.com\n" + message("loop"))
        bounce = self.host.wait_for(lambda: self.host.maildir_messages(self.host.mailbox(TIM)), "the bounce")
        self.assertIn(b"looping", bounce[0])
        self.assertEqual(self.joe(), [])

    def test_qmaillocal_runs_the_program(self):
        """QMAILLOCAL (here a script recording its arguments, then running vdelivermail): the program gets
        qmail-local's ten arguments, in the domain's directory as its owner, and delivers the same way."""
        shared = self.host.home.path("qmaillocal")
        os.makedirs(shared)
        os.chmod(shared, 0o1777)  # the program runs as the domain's owner
        args = os.path.join(shared, "args")
        wrapper = self.host.home.write("qmaillocal.sh", '#!/bin/sh\nprintf "%%s\\0" "$@" > %s\n'
                                       '{ pwd; id -u; } > %s.where\nexec %s "$@"\n' % (args, args, tool("vdelivermail")),
                                       mode=0o755)
        self.host.start_send(env=self.host.env(QMAILLOCAL=wrapper))
        self.assertIn("QMAILLOCAL", self.host.send_log())
        self.inject("sender@remote.test", [JOE])
        got = self.host.wait_for(self.joe, "joe's mail")
        self.assertIn(b"Delivered-To: joe@example.com\n", got[0])
        argv = open(args).read().split("\0")[:-1]
        domain_dir = [l.split(":")[4] for l in self.host.home.read("users/assign").decode().splitlines()
                      if l.startswith("+example.com-:")][0]
        # qmail-local's: -- user homedir local dash ext domain sender aliasempty qqeh
        self.assertEqual(argv, ["--", "example.com", domain_dir, "example.com-joe", "-", "joe", "example.com",
                                "sender@remote.test", "./Maildir/", ""])
        cwd, uid = open(args + ".where").read().split()
        self.assertEqual((os.path.realpath(cwd), int(uid)), (os.path.realpath(domain_dir), self.owner()[0]))

    def test_term_finishes_and_restart_resumes(self):
        self.host.start_send()
        self.host.send.p.send_signal(signal.SIGTERM)
        self.assertEqual(self.host.send.p.wait(20), 0)
        self.assertIn("status: exiting", self.host.send_log())
        self.inject("sender@remote.test", [JOE])
        self.host.start_send()
        self.host.wait_for(self.joe, "joe's mail after a restart")


class Handlers(DeliveryCase):
    """The five forms of the domain's handler for an address nobody has (queued with qmail-queue, since
    qmail-smtpd refuses such recipients at RCPT when the handler bounces)."""

    def handler(self, text):
        self.host.run_ok("vmoddomain", "-h", text, "example.com")

    def test_delete(self):
        self.handler("delete")
        self.host.start_send()
        self.inject("tim@example.com", ["nobody@example.com"])
        self.wait_empty()
        self.host.wait_for(lambda: self.log_lines(r"nobody@example\.com: success: .*discarded"), "its log line")
        self.assertEqual(self.host.maildir_messages(self.host.mailbox(TIM)), [], "no bounce")

    def test_inactive_mailbox_bounces_as_inactive(self):
        """A mailbox made inactive (vmoduser --inactive, as vdeloldusers does) bounces its mail saying so, and
        takes mail again once active."""
        maildir = self.host.mailbox(JOE)
        self.host.run_ok("vmoduser", "--inactive", JOE)
        self.host.start_send()
        self.inject("tim@example.com", [JOE], message("to the inactive"))
        bounce = self.host.wait_for(lambda: self.host.maildir_messages(self.host.mailbox(TIM)), "the bounce")[0]
        self.assertIn(b"<joe@example.com>:\naccount joe@example.com is inactive. (#5.1.3)\n", bounce)
        self.assertEqual(self.host.maildir_messages(maildir), [], "kept out of the inactive mailbox")
        self.wait_empty()
        self.host.run_ok("vmoduser", "--active", JOE)
        self.inject("tim@example.com", [JOE], message("active again"))
        self.assertIn(b"Subject: active again", self.host.wait_for(self.joe, "joe's mail")[0])
        self.wait_empty()

    def test_bounce_no_mailbox(self):
        self.handler("bounce-no-mailbox")
        self.host.start_send()
        self.inject("tim@example.com", ["nobody@example.com"])
        bounce = self.host.wait_for(lambda: self.host.maildir_messages(self.host.mailbox(TIM)), "the bounce")[0]
        self.assertIn(b"Return-Path: <>\n", bounce)
        self.assertIn(b"From: MAILER-DAEMON@mail.example.com\n", bounce)
        self.assertIn(b"Subject: failure notice\n", bounce)
        self.assertIn(b"Hi. This is the qmail-send program at mail.example.com.\n", bounce)
        self.assertIn(b"<nobody@example.com>:\nno account nobody@example.com here by that name. (#5.1.1)\n", bounce)
        self.assertIn(b"--- Below this line is a copy of the message.\n\nReturn-Path: <tim@example.com>\n", bounce)
        self.wait_empty()

    def test_maildir_path(self):
        catchall = self.host.home.path("catchall", "Maildir")
        for d in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(catchall, d))
        uid, gid = self.owner()
        for root, dirs, _ in os.walk(self.host.home.path("catchall")):
            os.chown(root, uid, gid)
        self.handler(catchall + "/")
        self.host.start_send()
        self.inject("tim@example.com", ["nobody@example.com"])
        got = self.host.wait_for(lambda: self.host.maildir_messages(catchall), "the catch-all's mail")
        self.assertIn(b"Delivered-To: nobody@example.com\n", got[0])

    def test_forward(self):
        self.handler(JOE)
        self.host.start_send()
        self.inject("tim@example.com", ["nobody@example.com"])
        got = self.host.wait_for(self.joe, "the forward")
        self.assertIn(b"Delivered-To: nobody@example.com\n", got[0])
        self.assertTrue(got[0].startswith(b"Return-Path: <tim@example.com>\n"), "the sender is kept")
        self.wait_empty()

    def test_route(self):
        sink = self.sink()
        self.handler("example.com:127.0.0.1:%d" % sink.port)
        self.host.start_send()
        self.inject("tim@example.com", ["nobody@example.com"])
        self.host.wait_for(lambda: sink.messages, "the sink's message")
        m = sink.messages[0]
        self.assertEqual((m["from"], m["to"]), ("tim@example.com", ["nobody@example.com"]))
        self.assertIn(b"Subject: hello", m["data"])
        self.wait_empty()


class Filters(DeliveryCase):
    def test_folder_and_discard(self):
        """vfilter rules: one files into a folder, one discards; other mail reaches the inbox."""
        self.host.run_ok("vmoddomain", "-f", "1", "-h", "bounce-no-mailbox", "example.com")
        self.host.run_ok("vcfilter", "-i", "-t", "spam", "-h", "Subject", "-c", "contains", "-k", "SPAM",
                         "-f", "Spam", JOE)
        self.host.run_ok("vcfilter", "-i", "-t", "junk", "-h", "Subject", "-c", "contains", "-k", "junk",
                         "-f", "/NoDeliver", JOE)
        self.host.start_send()
        for subject in ("buy SPAM now", "some junk", "a letter"):
            self.inject("sender@remote.test", [JOE], message(subject))
        self.wait_empty()
        maildir = self.host.mailbox(JOE)
        inbox = self.host.maildir_messages(maildir)
        spam = self.host.maildir_messages(os.path.join(maildir, ".Spam"))
        self.assertEqual(len(inbox), 1)
        self.assertIn(b"Subject: a letter", inbox[0])
        self.assertEqual(len(spam), 1)
        self.assertIn(b"Subject: buy SPAM now", spam[0])
        self.host.wait_for(lambda: self.log_lines(r"success: filter rule 2 of joe@example\.com"), "its log line")

    def test_vfilter_program_bounce_rule(self):
        """The vfilter program, as a .qmail-default line runs it: a bounce rule refuses the message (100)."""
        self.host.run_ok("vcfilter", "-i", "-t", "nope", "-h", "Subject", "-c", "contains", "-k", "refuse",
                         "-f", "/NoDeliver", "-b", "1", JOE)
        env = self.host.env(EXT="joe", HOST="example.com", SENDER="tim@example.com")
        p = subprocess.run([tool("vfilter"), "", "bounce-no-mailbox"], input=message("refuse this"), env=env,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 100, p.stdout)
        self.assertIn(b"refused by filter rule", p.stdout)
        p = subprocess.run([tool("vfilter"), "", "bounce-no-mailbox"], input=message("fine"), env=env,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(len(self.joe()), 1)


class Remote(DeliveryCase):
    def route_to(self, sink, domain="remote.test"):
        self.host.home.write("control/smtproutes", "%s:127.0.0.1:%d\n" % (domain, sink.port))

    def test_smtproutes_and_outgoingip(self):
        """Remote mail goes through smtproutes to the sink, from addresses of outgoingip.<host>."""
        sink = self.sink()
        self.route_to(sink)
        self.host.home.write("control/outgoingip.remote.test", "# three sources\n127.0.0.2\n127.0.0.3\n127.0.0.4\n")
        self.host.start_send()
        for i in range(12):
            self.inject(JOE, ["user%d@remote.test" % i])
        self.host.wait_for(lambda: len(sink.messages) == 12, "12 messages at the sink", 60)
        peers = {m["peer"] for m in sink.messages}
        self.assertTrue(peers <= {"127.0.0.2", "127.0.0.3", "127.0.0.4"}, peers)
        self.assertGreater(len(peers), 1, "the source address is drawn at random")
        self.assertEqual(sorted(m["to"][0] for m in sink.messages), sorted("user%d@remote.test" % i for i in range(12)))
        self.wait_empty()
        self.host.wait_for(lambda: len(self.log_lines(r" remote user\d+@remote\.test: success: ")) == 12,
                           "12 log lines")

    def test_balance_outgoing_as_qmailremote(self):
        """IndiMail's balance_outgoing script (the seed's, read from ../shared/reference/indimail-posts.md,
        with only its paths changed) as QMAILREMOTE: it picks the source address and runs qmail-remote."""
        posts = os.path.join(os.environ.get("QV_SOURCE_DIR", "../.."), "..", "shared", "reference", "indimail-posts.md")
        if not os.path.exists(posts):
            self.skipTest("no %s beside the checkout (CI has it)" % posts)
        text = open(posts).read()
        script = re.search(r"The script `balance_outgoing`.*?```sh\n(.*?)```", text, re.S).group(1)
        # its paths: bash (it uses arrays despite #!/bin/sh), QMAILHOME, the built qmail-remote
        script = script.replace("#!/bin/sh", "#!/bin/bash").replace("/var/indimail", self.host.home.root)
        script = script.replace('PROG="bin/qmail-remote"', 'PROG="%s"' % tool("qmail-remote"))
        wrapper = self.host.home.write("bin/balance_outgoing", script, mode=0o755)
        sink = self.sink()
        self.route_to(sink)
        self.host.home.write("control/outgoingip.remote.test", "127.0.0.6\n127.0.0.7\n")
        # OUTGOINGIP would win in qmail-remote itself; the script replaces it with one of the file's
        self.host.start_send(env=self.host.env(QMAILREMOTE=wrapper, OUTGOINGIP="127.0.0.9"))
        for i in range(8):
            self.inject(JOE, ["b%d@remote.test" % i])
        self.host.wait_for(lambda: len(sink.messages) == 8, "8 messages at the sink", 60)
        peers = {m["peer"] for m in sink.messages}
        self.assertTrue(peers <= {"127.0.0.6", "127.0.0.7"}, peers)
        self.wait_empty()

    def test_permanent_failure_bounces(self):
        sink = self.sink()
        sink.replies["bad@remote.test"] = ["550 5.1.1 no such user here"]
        self.route_to(sink)
        self.host.start_send()
        self.inject(JOE, ["bad@remote.test"])
        bounce = self.host.wait_for(self.joe, "the bounce")[0]
        self.assertIn(b"<bad@remote.test>:\n", bounce)
        self.assertIn(b"550 5.1.1 no such user here", bounce)
        self.assertIn(b"This is a permanent error", bounce)
        self.wait_empty()

    def test_temporary_failure_is_retried(self):
        sink = self.sink()
        sink.replies["later@remote.test"] = ["451 4.3.0 try again later"]
        self.route_to(sink)
        self.host.start_send()
        self.inject(JOE, ["later@remote.test"])
        self.host.wait_for(lambda: self.log_lines(r"later@remote\.test: deferral: "), "a deferral")
        self.assertEqual(len(self.queued()), 1, "still queued")
        self.host.run_ok("qmailctl", "queue", "flush")
        self.host.wait_for(lambda: sink.messages, "the retried delivery")
        self.wait_empty()
        self.assertEqual(self.joe(), [], "no bounce")

    def test_double_bounce_goes_to_postmaster(self):
        sink = self.sink()
        sink.replies["bad@remote.test"] = ["550 5.1.1 no"]
        self.route_to(sink)
        self.host.home.write("control/doublebouncehost", "example.com\n")
        self.host.start_send()
        self.inject("", ["bad@remote.test"])
        pm = self.host.mailbox("postmaster@example.com")
        got = self.host.wait_for(lambda: self.host.maildir_messages(pm), "the double bounce")[0]
        self.assertIn(b"Return-Path: <#@[]>\n", got)
        self.assertIn(b"the bounce bounced", got)
        self.wait_empty()


class BounceHooks(DeliveryCase):
    def failing(self, **env):
        """qmail-send with `env`, and a message from joe to an address the domain bounces."""
        self.host.start_send(env=self.host.env(**env))
        self.inject(JOE, ["nobody@example.com"])

    def test_bounceprocessor_five_arguments(self):
        out = self.host.home.path("processor.out")
        script = self.host.home.write("processor.sh", '#!/bin/sh\nprintf "%%s\\0" "$#" "$@" > %s\nexit 0\n' % out,
                                      mode=0o755)
        self.failing(BOUNCEPROCESSOR=script)
        bounce = self.host.wait_for(self.joe, "the bounce")
        self.assertEqual(len(bounce), 1, "exit 0: injected")
        args = open(out).read().split("\0")
        self.assertEqual(args[0], "5")
        self.assertTrue(args[1].endswith("/queue/bounce/" + args[1].rsplit("/", 1)[1]), args)
        self.assertIn("no account nobody@example.com here by that name", args[2])
        self.assertEqual(args[3:6], ["", "nobody@example.com", JOE])

    def test_bounceprocessor_discards(self):
        script = self.host.home.write("processor.sh", "#!/bin/sh\nexit 1\n", mode=0o755)
        self.failing(BOUNCEPROCESSOR=script)
        self.wait_empty()
        # qmail-send writes its log once per pass: the line may follow the queue's emptying by a moment
        self.host.wait_for(lambda: self.log_lines(r"bounce processor .*exit=1: discard"), "the processor's log line")
        self.assertEqual(self.joe(), [])

    def test_bouncequeue_nullqueue_drops(self):
        self.failing(BOUNCEQUEUE=tool("qmail-nullqueue"))
        self.wait_empty()
        self.host.wait_for(lambda: self.log_lines(r"bounce msg \d+ to <joe@example\.com> through .*qmail-nullqueue"),
                           "its log line")
        time.sleep(0.5)
        self.assertEqual(self.joe(), [])

    def test_envrules_switch_controldir_for_one_sender(self):
        self.host.home.write("control2/bouncefrom", "special-daemon\n")
        self.host.home.write("control2/me", "mail.example.com\n")
        self.host.home.write("control/bounce.envrules", "joe@*:CONTROLDIR=control2\n")
        self.host.start_send()
        self.inject(JOE, ["nobody@example.com"])
        self.inject(TIM, ["nobody@example.com"])
        joe = self.host.wait_for(self.joe, "joe's bounce")[0]
        tim = self.host.wait_for(lambda: self.host.maildir_messages(self.host.mailbox(TIM)), "tim's bounce")[0]
        self.assertIn(b"From: special-daemon@mail.example.com\n", joe)
        self.assertIn(b"From: MAILER-DAEMON@mail.example.com\n", tim)
        self.host.wait_for(lambda: self.log_lines(r"bounce\.envrules line 1 sets CONTROLDIR=control2"), "its log line")

    def test_quota_defers_then_bounces_after_queuelifetime(self):
        self.host.run_ok("vmoduser", "-q", "1000", TIM)
        self.host.home.write("control/queuelifetime", "3\n")
        self.host.start_send()
        self.inject(JOE, [TIM], message("big") + b"x" * 4000 + b"\n")
        self.host.wait_for(lambda: self.log_lines(r"tim@example\.com: deferral: .*over its quota"), "a deferral")
        self.assertEqual(self.joe(), [])
        time.sleep(4.5)  # past queuelifetime, counted in whole seconds
        self.host.run_ok("qmailctl", "queue", "flush")
        bounce = self.host.wait_for(self.joe, "the bounce after queuelifetime")[0]
        self.assertIn(b"over its quota", bounce)
        self.assertIn(b"I'm not going to try again; this message has been in the queue too long.", bounce)
        self.wait_empty()


class NoLoss(DeliveryCase):
    """kill -9 of qmail-send (restarted at once, as a supervisor would) and of qmail-remote at random
    moments while messages are queued and delivered, half to a local mailbox and half to a remote sink:
    after a last clean run, every message is delivered; duplicates (qmail's window: delivered, not yet
    marked) are counted and kept rare. QV_CRASH_MESSAGES sets the load (default 2000)."""
    MESSAGES = int(os.environ.get("QV_CRASH_MESSAGES", "2000"))

    def test_kill_nine(self):
        h = self.host
        sink = self.sink()
        h.home.write("control/smtproutes", "remote.test:127.0.0.1:%d\n" % sink.port)
        kills_log = h.home.path("kills.log")
        # qmail-remote killed at a random moment in a third of its runs
        wrapper = h.home.write("remote.sh", """#!/bin/sh
r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
if [ $((r % 3)) = 0 ]; then
    (sleep 0.0$((r % 10)); kill -9 $$ 2>/dev/null && echo qmail-remote >> @LOG@) &
fi
exec @QR@ "$@"
""".replace("@LOG@", kills_log).replace("@QR@", tool("qmail-remote")), mode=0o755)
        env = h.env(QMAILREMOTE=wrapper)
        h.start_queued()
        h.start_send(env=env)
        stop = threading.Event()
        send_kills = [0]

        def kill_the_sender():
            rng = random.Random(7)
            while not stop.is_set():
                time.sleep(rng.uniform(0.1, 0.6))
                os.kill(h.send.p.pid, signal.SIGKILL)
                h.send.p.wait()
                send_kills[0] += 1
                h.processes.remove(h.send)
                h.start_send(env=env)

        def token(i):
            return "msg-%05d" % i

        def inject_all():
            for i in range(self.MESSAGES):
                rcpt = JOE if i % 2 == 0 else "r%d@remote.test" % i
                body = ("Subject: %s\nX-Token: %s\n\n%s\nend\n" % (token(i), token(i), "x" * (i % 500))).encode()
                self.assertEqual(h.inject("sender@remote.test", [rcpt], body), 0)

        killer = threading.Thread(target=kill_the_sender)
        killer.start()
        try:
            inject_all()
            # the kills go on while most of the mail is delivered, for at most a minute more: a slow build
            # (the sanitizers) killed this often may make little headway, and the deliveries that
            # qmail-remote's deaths deferred wait for qmail's retry schedule (the last run flushes them)
            deadline = time.monotonic() + 60
            while len(self.queued()) >= self.MESSAGES // 20 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            killer.join()
        # the last run, undisturbed, with the real qmail-remote
        h.send.stop()
        h.processes.remove(h.send)
        h.start_send()
        h.run_ok("qmailctl", "queue", "flush")
        h.wait_for(lambda: not self.queued(), "an empty queue", 600)
        seen, dup, astray = {}, {"local": 0, "remote": 0}, []
        remote = [(m["data"], m["to"]) for m in sink.messages]
        for where, texts in (("local", [(m, [JOE]) for m in self.joe()]), ("remote", remote)):
            for m, to in texts:
                m = m.replace(b"\r\n", b"\n")
                t = re.search(rb"X-Token: (msg-\d+)", m).group(1).decode()
                # each message whole and to its own recipient (files reused from pool/ never mixed up)
                i = int(t[4:])
                whole = m.endswith(b"\n\n" + b"x" * (i % 500) + b"\nend\n")
                if to != [JOE if i % 2 == 0 else "r%d@remote.test" % i] or not whole:
                    astray.append((t, to))
                dup[where] += t in seen
                seen[t] = seen.get(t, 0) + 1
        missing = [token(i) for i in range(self.MESSAGES) if token(i) not in seen]
        duplicates = dup["local"] + dup["remote"]
        remote_kills = h.home.read("kills.log").decode().split().count("qmail-remote") if os.path.exists(kills_log) else 0
        leftovers = len(self.host.queue())
        print("\nNoLoss: %d messages, kills: qmail-send %d, qmail-remote %d; missing %d; duplicates %d local, %d "
              "remote; leftover message files (removed after 36 h) %d" % (self.MESSAGES, send_kills[0], remote_kills,
                                                                          len(missing), dup["local"], dup["remote"],
                                                                          leftovers))
        self.assertEqual(missing, [])
        self.assertEqual(astray, [])
        self.assertGreaterEqual(send_kills[0], 5)
        self.assertGreaterEqual(remote_kills, 5)
        # each kill of qmail-remote after the sink took the message, and each kill of qmail-send between a
        # delivery and its mark (at most the deliveries under way), may deliver a message twice
        self.assertLessEqual(duplicates, remote_kills + send_kills[0] * 30, "duplicates beyond qmail's window")


if __name__ == "__main__":
    unittest.main()
