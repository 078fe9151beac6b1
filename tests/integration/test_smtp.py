"""qmail-smtpd under the real tcpserver, talking to real clients (Python's smtplib, swaks and a bare
socket), handing messages to qmail-queued or qmail-queue: the conversation, SMTP AUTH through vchkpass,
STARTTLS, the limits, the relay decision of every mechanism and the open-relay probes. Runs against both
stores (QV_BACKEND)."""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
import unittest

from qvtest import BACKEND, SOURCE_DIR, require_programs, tool
from smtptest import JOE, JOE_PASSWORD, TIM, TIM_PASSWORD, MailHost, RawClient

require_programs("tcpserver", "swaks", "openssl")

MYSQL = BACKEND == "mysql"
MESSAGE = "From: alice@example.net\r\nTo: joe@example.com\r\nSubject: test\r\n\r\nhello\r\n"


class SmtpCase(unittest.TestCase):
    smtpd_args = ()
    queued = True

    def setUp(self):
        self.host = MailHost()
        self.addCleanup(self.host.cleanup)
        self.configure()
        self.host.start(*self.smtpd_args, queued=self.queued)

    def configure(self):
        """Changes to the host before qmail-smtpd starts."""

    def smtp(self, **kw):
        s = smtplib.SMTP("127.0.0.1", self.host.port, timeout=30, **kw)
        self.addCleanup(s.close)
        return s

    def raw(self):
        c = RawClient(self.host.port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        return c

    def queued_messages(self):
        return [m for m in self.host.queue() if m["state"] != "incomplete"]

    def assertQueued(self, count):
        q = self.queued_messages()
        self.assertEqual(len(q), count, q)
        return q


class Conversation(SmtpCase):
    def test_a_plain_message_is_queued(self):
        s = self.smtp()
        self.assertEqual(s.ehlo("client.example.net")[0], 250)
        for ext in ("pipelining", "8bitmime", "size", "enhancedstatuscodes"):
            self.assertTrue(s.has_extn(ext), ext)
        self.assertFalse(s.has_extn("auth"))      # no checkpassword program given
        self.assertFalse(s.has_extn("starttls"))  # no control/servercert.pem
        s.sendmail("alice@example.net", [JOE], MESSAGE)
        s.quit()
        [m] = self.assertQueued(1)
        self.assertEqual((m["sender"], [r["address"] for r in m["recipients"]], m["state"]),
                         ("alice@example.net", [JOE], "todo"))
        text = self.host.message_text(m["number"])
        # qmail-queue's Received line, then qmail-smtpd's, then the message with LF line ends
        self.assertRegex(text, rb"^Received: \(qmail \d+ invoked by uid \d+\); ")
        self.assertIn(b"Received: from unknown (HELO client.example.net) (127.0.0.1)\n  by mail.example.com with ESMTP; ",
                      text)
        self.assertTrue(text.endswith(b"Subject: test\n\nhello\n"), text)
        self.assertRegex(self.host.log(), r"accepted message from <alice@example.net> to 1 recipient \(<joe@example"
                                          r".com>\), \d+ bytes, qp \d+ via qmail-queued")
        # queue stat agrees with the files: todo/ and mess/ as qmail-qstat counts them
        st = json.loads(self.host.run_ok("qmailctl", "queue", "stat", "--json").stdout)
        todo = os.listdir(self.host.home.path("queue/todo"))
        mess = [f for d in os.listdir(self.host.home.path("queue/mess"))
                for f in os.listdir(self.host.home.path("queue/mess", d))]
        self.assertEqual((st["messages"], st["todo"], st["recipients"]), (len(mess), len(todo), 1))

    def test_swaks(self):
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.host.port), "--from",
                            "alice@example.net", "--to", JOE, "--header", "Subject: from swaks", "--body", "swaks body"],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
        self.assertIn(b"250 2.0.0 ok", p.stdout)
        [m] = self.assertQueued(1)
        self.assertIn(b"Subject: from swaks", self.host.message_text(m["number"]))

    def test_pipelined_commands(self):
        c = self.raw()
        c.send(b"EHLO x\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<joe@example.com>\r\nRCPT TO:<nobody@example.com>\r\n"
               b"RCPT TO:<tim@example.com>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(6)]
        self.assertEqual(codes, [250, 250, 250, 550, 250, 354])
        c.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\nVRFY joe\r\nHELP\r\nFOO\r\nQUIT\r\n")
        self.assertEqual([c.reply()[0] for _ in range(7)], [250, 250, 250, 252, 214, 502, 221])
        [m] = self.assertQueued(1)
        self.assertEqual(sorted(r["address"] for r in m["recipients"]), [JOE, TIM])

    def test_eight_bit_content_and_dots(self):
        body = "Subject: caf\u00e9 \u00fcber\r\nX-8bit: \u00ff\r\n\r\n.leading dot\r\n..two\r\n\u00e9t\u00e9\r\n"
        c = self.raw()
        for line, code in (("EHLO x", 250), ("MAIL FROM:<a@example.net> BODY=8BITMIME", 250),
                           ("RCPT TO:<joe@example.com>", 250), ("DATA", 354)):
            self.assertEqual(c.command(line)[0], code, line)
        stuffed = body.replace("\r\n.", "\r\n..")
        c.send(stuffed.encode("utf-8") + b".\r\n")
        self.assertEqual(c.reply()[0], 250)
        [m] = self.assertQueued(1)
        text = self.host.message_text(m["number"])
        self.assertTrue(text.endswith(body.replace("\r\n", "\n").encode("utf-8")), text)

    def test_commands_out_of_order(self):
        c = self.raw()
        self.assertEqual(c.command("DATA")[0], 503)                       # no MAIL
        self.assertEqual(c.command("RCPT TO:<joe@example.com>")[0], 503)  # no MAIL
        self.assertEqual(c.command("MAIL FROM:<a@example.net>")[0], 250)
        self.assertEqual(c.command("MAIL FROM:<a@example.net>")[1], "503 5.5.1 nested MAIL command")
        self.assertEqual(c.command("DATA")[1], "503 5.5.1 RCPT first")
        self.assertEqual(c.command("RCPT TO:<nobody@example.com>")[0], 550)
        self.assertEqual(c.command("DATA")[1], "554 5.5.1 no valid recipients")
        self.assertEqual(c.command("RSET")[0], 250)
        for bad in ("MAIL FROM:a@example.net>", "MAIL TO:<a@example.net>", "MAIL FROM:<a@b> SIZE", "MAIL FROM:<\"x>"):
            self.assertIn(c.command(bad)[0], (501, 555), bad)
        self.assertEqual(c.command("MAIL FROM:<a@example.net> FOO=1")[1], "555 5.5.4 unrecognized parameter FOO")
        self.assertEqual(c.command("MAIL FROM:<>")[0], 250)               # the null sender (bounces)
        self.assertEqual(c.command("RCPT TO:<>")[0], 553)
        self.assertEqual(c.command("RCPT TO:<postmaster>")[0], 250)      # no domain: local, as qmail
        self.assertEqual(c.command("QUIT")[0], 221)

    def test_a_line_too_long(self):
        c = self.raw()
        self.assertEqual(c.command("NOOP " + "x" * 5000), (500, "500 5.5.2 line too long"))
        self.assertEqual(c.command("NOOP")[0], 250)  # the session goes on
        # message lines may be long (qmail takes them): a 20,000-byte line is queued whole
        long_line = "y" * 20000
        for line in ("MAIL FROM:<a@example.net>", "RCPT TO:<joe@example.com>", "DATA"):
            c.command(line)
        c.send(("Subject: long\r\n\r\n" + long_line + "\r\n.\r\n").encode())
        self.assertEqual(c.reply()[0], 250)
        [m] = self.assertQueued(1)
        self.assertIn(long_line.encode() + b"\n", self.host.message_text(m["number"]))

    def test_bare_lf_ends_the_session_and_queues_nothing(self):
        c = self.raw()
        for line in ("HELO x", "MAIL FROM:<a@example.net>", "RCPT TO:<joe@example.com>", "DATA"):
            c.command(line)
        c.send(b"Subject: bare\r\n\r\nline one\nline two\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(code, 421)  # qmail says 451; the connection closes, so RFC 5321's 421
        self.assertIn("smtplf", text)
        self.assertTrue(c.closed())
        self.assertQueued(0)
        self.assertIn("a bare LF in the message", self.host.log())

    def test_too_many_hops(self):
        c = self.raw()
        for line in ("HELO x", "MAIL FROM:<a@example.net>", "RCPT TO:<joe@example.com>", "DATA"):
            c.command(line)
        c.send(b"".join(b"Received: from hop%d\r\n" % i for i in range(60)) +
               b"".join(b"Delivered-To: x%d@example.com\r\n" % i for i in range(40)) + b"\r\nloop\r\n.\r\n")
        self.assertEqual(c.reply(), (554, "554 5.4.6 too many hops, this message is looping"))
        self.assertQueued(0)

    def test_qmailqueue_is_honoured(self):
        # the null queue accepts and queues nothing
        self.host.stop()
        self.host.start(queued=False, env=self.host.env(QMAILQUEUE=tool("qmail-nullqueue")))
        s = self.smtp()
        s.sendmail("a@example.net", [JOE], MESSAGE)
        self.assertQueued(0)
        # a queue program's permanent refusal (31), and its own text (82, on descriptor 6)
        script = self.host.home.write("refuse.sh", "#!/bin/sh\ncat >/dev/null; cat <&1 >/dev/null\n"
                                      "[ -n \"$CUSTOM\" ] && { printf 'Dno thanks (#5.7.0)' >&6; exit 82; }\nexit 31\n",
                                      mode=0o755)
        for extra, code, text in (({}, 554, "554 5.3.0 mail server permanently rejected message"),
                                  ({"CUSTOM": "1"}, 554, "554 5.7.0 no thanks")):
            self.host.stop()
            self.host.start(queued=False, env=self.host.env(QMAILQUEUE=script, **extra))
            c = self.raw()
            for line in ("HELO x", "MAIL FROM:<a@example.net>", "RCPT TO:<joe@example.com>", "DATA"):
                c.command(line)
            c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
            self.assertEqual(c.reply(), (code, text))

    def test_at_most_a_thousand_recipients_by_default(self):
        c = self.raw()
        c.command("MAIL FROM:<a@example.net>")
        c.send(b"RCPT TO:<joe@example.com>\r\n" * 1001)
        replies = [c.reply()[0] for _ in range(1001)]
        self.assertEqual(replies, [250] * 1000 + [452])

    def test_without_qmail_queued_qmail_queue_writes_alone(self):
        self.host.stop()
        self.host.start(queued=False)
        s = self.smtp()
        s.sendmail("a@example.net", [JOE, TIM], MESSAGE)
        [m] = self.assertQueued(1)
        self.assertEqual(len(m["recipients"]), 2)
        self.assertRegex(self.host.log(), r"accepted message .* via \S+/qmail-queue")


class Limits(SmtpCase):
    def configure(self):
        h = self.host.home
        h.write("control/databytes", "1000\n")
        h.write("control/maxrecipients", "3\n")
        h.write("control/timeoutsmtpd", "2\n")
        h.write("control/smtpgreeting", "mx.example.com Welcome\n")

    def test_greeting_and_size(self):
        c = self.raw()
        code, text = c.command("EHLO x")
        self.assertIn("250-mx.example.com Welcome", text)
        self.assertIn("250-SIZE 1000", text)
        self.assertEqual(c.command("MAIL FROM:<a@example.net> SIZE=5000")[1],
                         "552 5.3.4 sorry, that message size exceeds my databytes limit")
        self.assertEqual(c.command("MAIL FROM:<a@example.net> SIZE=500")[0], 250)
        c.command("RCPT TO:<joe@example.com>")
        c.command("DATA")
        c.send(b"Subject: big\r\n\r\n" + b"z" * 1200 + b"\r\n.\r\n")
        self.assertEqual(c.reply(), (552, "552 5.3.4 sorry, that message size exceeds my databytes limit"))
        self.assertQueued(0)
        # the session goes on; a message within the limit is taken
        for line, code in (("MAIL FROM:<a@example.net>", 250), ("RCPT TO:<joe@example.com>", 250), ("DATA", 354)):
            self.assertEqual(c.command(line)[0], code)
        c.send(b"Subject: small\r\n\r\nsmall\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertQueued(1)

    def test_too_many_recipients(self):
        c = self.raw()
        c.command("MAIL FROM:<a@example.net>")
        codes = [c.command("RCPT TO:<%s>" % r)[0] for r in (JOE, TIM, "postmaster@example.com", "abuse@example.com")]
        self.assertEqual(codes, [250, 250, 250, 452])
        self.assertIn("452 4.5.3 too many recipients", self.host.log())

    def test_a_client_that_stops_talking(self):
        c = self.raw()
        c.command("HELO x")
        t0 = time.monotonic()
        self.assertEqual(c.reply(), (421, "421 4.4.2 timeout, closing the connection"))
        self.assertTrue(c.closed())
        self.assertGreater(time.monotonic() - t0, 1.5)
        # also in the middle of a message: nothing queued
        c = self.raw()
        for line in ("HELO x", "MAIL FROM:<a@example.net>", "RCPT TO:<joe@example.com>", "DATA"):
            c.command(line)
        c.send(b"Subject: half\r\n\r\nhalf a mess")
        self.assertEqual(c.reply()[0], 421)
        self.assertQueued(0)


def make_certificate(path):
    key, crt = path + ".key", path + ".crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=mail.example.com", "-keyout", key, "-out", crt], check=True, capture_output=True)
    with open(path, "wb") as out:
        for f in (crt, key):
            with open(f, "rb") as i:
                out.write(i.read())


def cram_digest(password, challenge):
    return hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()


class Auth(SmtpCase):
    def configure(self):
        make_certificate(self.host.home.path("control/servercert.pem"))

    @property
    def smtpd_args(self):
        return ("mail.example.com", tool("vchkpass"), "/bin/true")

    def tls(self, s):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo()

    def test_the_rfc2195_algorithm(self):
        # the vector itself, as the test computes every CRAM-MD5 response below
        self.assertEqual(cram_digest("tanstaaftanstaaf", b"<1896.697170952@postoffice.reston.mci.net>"),
                         "b913a602c7eda7a495b4e6e7334d3890")

    def test_plain_and_login_only_after_starttls(self):
        s = self.smtp()
        s.ehlo()
        self.assertTrue(s.has_extn("starttls"))
        self.assertEqual(s.esmtp_features["auth"].split(), ["CRAM-MD5"])
        code, _ = s.docmd("AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (JOE, JOE_PASSWORD)).encode()).decode())
        self.assertEqual(code, 538)
        self.tls(s)
        self.assertFalse(s.has_extn("starttls"))
        self.assertEqual(s.esmtp_features["auth"].split(), ["PLAIN", "LOGIN", "CRAM-MD5"])
        s.login(JOE, JOE_PASSWORD)  # smtplib picks CRAM-MD5 first; the others below
        s.sendmail(JOE, ["someone@remote.example"], MESSAGE)  # authenticated: may relay
        [m] = self.assertQueued(1)
        self.assertIn(b" with ESMTPSA; ", self.host.message_text(m["number"]))

    def test_submission_takes_mail_only_after_auth(self):
        # REQUIREAUTH from the variables of the service on this port (qmailctl init sets it for 587)
        variable = "service/qmail-smtpd.%d/variables/REQUIREAUTH" % self.host.port
        self.host.home.write(variable, "1\n")
        s = self.smtp()
        s.ehlo()
        self.assertEqual(s.docmd("MAIL FROM:<%s>" % JOE), (530, b"5.7.0 authentication required"))
        self.tls(s)
        s.login(JOE, JOE_PASSWORD)
        s.sendmail(JOE, ["joe@example.com"], MESSAGE)
        self.assertQueued(1)
        # an empty file unsets it, as envdir does
        self.host.home.write(variable, "\n")
        s = self.smtp()
        s.ehlo()
        self.assertEqual(s.docmd("MAIL FROM:<a@remote.example>")[0], 250)

    def test_each_method(self):
        for method in ("PLAIN", "LOGIN", "CRAM-MD5"):
            s = self.smtp()
            s.ehlo()
            self.tls(s)
            s.user, s.password = TIM, TIM_PASSWORD
            code, text = s.auth(method, getattr(s, "auth_" + method.lower().replace("-", "_")), initial_response_ok=False)
            self.assertEqual(code, 235, (method, text))
            self.assertEqual(s.docmd("AUTH PLAIN")[0], 503)  # AUTH twice
            s.quit()
        # PLAIN with its initial response, and a wrong password
        s = self.smtp()
        s.ehlo()
        self.tls(s)
        bad = base64.b64encode(("\0%s\0wrong" % TIM).encode()).decode()
        self.assertEqual(s.docmd("AUTH PLAIN " + bad), (535, b"5.7.8 authentication failed"))
        good = base64.b64encode(("\0%s\0%s" % (TIM, TIM_PASSWORD)).encode()).decode()
        self.assertEqual(s.docmd("AUTH PLAIN " + good)[0], 235)
        self.assertIn("AUTH PLAIN of tim@example.com failed", self.host.log())

    def test_cram_md5_without_tls(self):
        c = self.raw()
        c.command("EHLO x")
        code, text = c.command("AUTH CRAM-MD5")
        self.assertEqual(code, 334)
        challenge = base64.b64decode(text[4:])
        self.assertRegex(challenge, rb"^<\d+\.\d+@mail\.example\.com>$")
        resp = base64.b64encode(("%s %s" % (TIM, cram_digest(TIM_PASSWORD, challenge))).encode())
        self.assertEqual(c.command(resp.decode()), (235, "235 2.7.0 ok, go ahead"))
        # joe has no CRAM-MD5 credentials (added without -C): refused
        c2 = self.raw()
        c2.command("EHLO x")
        challenge = base64.b64decode(c2.command("AUTH CRAM-MD5")[1][4:])
        resp = base64.b64encode(("%s %s" % (JOE, cram_digest(JOE_PASSWORD, challenge))).encode())
        self.assertEqual(c2.command(resp.decode())[0], 535)

    def test_bad_exchanges(self):
        c = self.raw()
        c.command("EHLO x")
        self.assertEqual(c.command("AUTH CRAM-MD5")[0], 334)
        self.assertEqual(c.command("not base64!"), (501, "501 5.5.2 malformed auth input"))
        self.assertEqual(c.command("AUTH CRAM-MD5")[0], 334)
        self.assertEqual(c.command("*"), (501, "501 5.0.0 auth exchange cancelled"))
        self.assertEqual(c.command("AUTH DIGEST-MD5")[0], 504)
        self.assertEqual(c.command("AUTH CRAM-MD5")[0], 334)
        self.assertEqual(c.command(base64.b64encode(b"no-digest").decode())[0], 501)
        self.assertEqual(c.command("MAIL FROM:<a@example.net>")[0], 250)
        self.assertEqual(c.command("AUTH CRAM-MD5")[1], "503 5.5.1 no auth during a mail transaction")

    def test_a_certificate_that_cannot_be_used(self):
        self.host.home.write("control/servercert.pem", "not a certificate\n")
        c = self.raw()
        self.assertIn("STARTTLS", c.command("EHLO x")[1])  # the file is there
        self.assertEqual(c.command("STARTTLS"), (454, "454 4.7.0 TLS not available"))  # never 220, then nothing
        self.assertNotIn("STARTTLS", c.command("EHLO x")[1])
        self.assertEqual(c.command("NOOP")[0], 250)
        self.assertIn("servercert.pem: not a usable certificate and key", self.host.log())

    def test_swaks_starttls_and_auth(self):
        for method in ("PLAIN", "LOGIN", "CRAM-MD5"):
            p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.host.port), "--tls",
                                "--auth", method, "--auth-user", TIM, "--auth-password", TIM_PASSWORD,
                                "--from", TIM, "--to", "friend@remote.example"],
                               capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, (method, p.stdout.decode()[-2000:]))
            self.assertIn(b"235 2.7.0", p.stdout)
        self.assertQueued(3)

    def test_no_relay_mailbox_may_send_locally_only(self):
        self.host.run_ok("vmoduser", "-r", JOE)  # NO_RELAY: vchkpass exits 3
        s = self.smtp()
        s.ehlo()
        self.tls(s)
        s.login(JOE, JOE_PASSWORD)
        with self.assertRaises(smtplib.SMTPRecipientsRefused):
            s.sendmail(JOE, ["someone@remote.example"], MESSAGE)
        s.sendmail(JOE, [TIM], MESSAGE)
        self.assertIn("authenticated, may not relay (NO_RELAY)", self.host.log())


class StoreTrouble(SmtpCase):
    """A recipient check that cannot read the store answers 451, never 550."""

    def test_unreadable_store(self):
        if MYSQL:
            self.host.home.write("control/host.mysql", "localhost:qvmail:x:/nonexistent/mysqld.sock\n")
        else:
            shutil.move(self.host.home.path("domains/example.com/vpasswd"), self.host.home.path("vpasswd.away"))
            os.mkdir(self.host.home.path("domains/example.com/vpasswd"))  # a directory: cannot be read as a file
            os.remove(self.host.home.path("domains/example.com/vpasswd.cdb"))
        c = self.raw()
        c.command("MAIL FROM:<a@example.net>")
        code, text = c.command("RCPT TO:<joe@example.com>")
        self.assertEqual(code, 451, text)
        self.assertIn("cannot read the configuration", text)


# ---- the relay decision, mechanism by mechanism, over SMTP ----

class Relay(SmtpCase):
    REMOTE = "friend@remote.example"

    def rcpt(self, recipient, sender="someone@outside.example", ehlo="client.example.net"):
        """The reply to RCPT TO:<recipient> in a fresh session."""
        c = self.raw()
        c.command("EHLO " + ehlo)
        self.assertEqual(c.command("MAIL FROM:<%s>" % sender)[0], 250)
        return c.command("RCPT TO:<%s>" % recipient)

    def relay_test(self, *args):
        p = self.host.home.run("qmailctl", "relay", "test", "127.0.0.1", "--json", *args)
        return json.loads(p.stdout)

    def assertRelays(self, sender="someone@outside.example", mechanism=None):
        self.assertEqual(self.rcpt(self.REMOTE, sender)[0], 250, self.host.log())
        d = self.relay_test("--sender", sender, "--rcpt", self.REMOTE)
        self.assertEqual(d["verdict"], "relay", d["trace"])  # qmailctl relay test says the same
        if mechanism:
            self.assertEqual(d["mechanism"], mechanism)

    def assertNoRelay(self, sender="someone@outside.example"):
        code, text = self.rcpt(self.REMOTE, sender)
        self.assertEqual((code, text), (553, "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts"))
        self.assertFalse(self.relay_test("--sender", sender, "--rcpt", self.REMOTE)["allowed"])

    def restart(self):
        self.host.stop()
        self.host.start("mail.example.com", tool("vchkpass"), "/bin/true", env=self.host.env(CHECKRELAY="1"))

    def test_no_mechanism(self):
        self.assertNoRelay()
        self.assertEqual(self.rcpt(JOE)[0], 250)  # ours: accepted without relaying

    def test_tcp_smtp(self):
        self.host.set_rules('127.0.0.1:allow,RELAYCLIENT=""\n')
        self.assertRelays(mechanism="tcp.smtp")
        self.host.set_rules('127.0.0.1:allow,RELAYCLIENT="@fix.me"\n')
        s = self.smtp()
        s.sendmail("a@example.net", ["friend@remote.example"], MESSAGE)
        [m] = self.assertQueued(1)
        self.assertEqual(m["recipients"][0]["address"], "friend@remote.example@fix.me")  # RELAYCLIENT is appended

    def test_relayclients(self):
        self.host.run_ok("qmailctl", "relay", "clients", "add", "127.0.0.")
        self.assertRelays(mechanism="relayclients")

    def test_relaydomains(self):
        # tcpserver -H does not look names up: a rule gives the client its name, as DNS would
        self.host.set_rules('127.0.0.1:allow,TCPREMOTEHOST="gw.partner.example"\n')
        self.assertNoRelay()
        self.host.run_ok("qmailctl", "relay", "domains", "add", ".partner.example")
        self.assertEqual(self.rcpt(self.REMOTE)[0], 250)

    def test_relaymailfrom(self):
        self.host.run_ok("qmailctl", "relay", "mailfrom", "add", "@news.example.com")
        self.assertRelays(sender="letter@news.example.com", mechanism="relaymailfrom")
        self.assertNoRelay(sender="letter@other.example.com")

    def test_smtp_auth(self):
        self.restart()
        s = self.smtp()
        s.ehlo()
        with self.assertRaises(smtplib.SMTPRecipientsRefused):
            s.sendmail(JOE, [self.REMOTE], MESSAGE)
        s.login(TIM, TIM_PASSWORD)  # CRAM-MD5 without TLS
        s.sendmail(TIM, [self.REMOTE], MESSAGE)
        self.assertQueued(1)

    def test_pop_before_smtp_grant(self):
        self.restart()
        self.assertNoRelay(sender=JOE)
        self.host.run_ok("qmailctl", "relay", "grant", JOE, "127.0.0.1")
        self.assertRelays(sender=JOE, mechanism="relay-grant")
        if MYSQL:  # the relay table is keyed on the sender too (IndiMail's CHECKRELAY)
            self.assertNoRelay(sender="someone@outside.example")

    def test_no_rcpthosts_fails_closed(self):
        os.remove(self.host.home.path("control/rcpthosts"))
        code, _ = self.rcpt(JOE)
        self.assertEqual(code, 553)   # qmail would take everything

    def test_unknown_mailboxes_are_refused_at_rcpt(self):
        self.assertEqual(self.rcpt("nobody@example.com"), (550, "550 5.1.1 sorry, no mailbox here by that name"))
        for r in ("postmaster@example.com", "abuse@example.com", "mailer-daemon@example.com", "JOE@Example.COM"):
            self.assertEqual(self.rcpt(r)[0], 250, r)
        # a catch-all takes every name
        self.host.run_ok("vmoddomain", "-h", JOE, "example.com")
        self.assertEqual(self.rcpt("nobody@example.com")[0], 250)
        self.host.run_ok("vmoddomain", "-h", "delete", "example.com")
        self.assertEqual(self.rcpt("nobody@example.com")[0], 250)
        self.host.run_ok("vmoddomain", "-h", "bounce-no-mailbox", "example.com")
        self.assertEqual(self.rcpt("nobody@example.com")[0], 550)
        # qmail-local's .qmail-<name>-default
        if not MYSQL:
            self.host.home.write("domains/example.com/.qmail-list-default", "&joe@example.com\n")
            self.assertEqual(self.rcpt("list-anything@example.com")[0], 250)

    def test_badmailfrom_whatever_the_case(self):
        self.host.home.write("control/badmailfrom", "Spammer@Outside.Example\n@Junk.Example\n")
        for sender in ("spammer@outside.example", "SPAMMER@Outside.example", "anyone@JUNK.example"):
            self.assertEqual(self.rcpt(JOE, sender),
                             (553, "553 5.7.1 sorry, your envelope sender is in my badmailfrom list"), sender)
        self.assertEqual(self.rcpt(JOE, "friend@outside.example")[0], 250)
        self.assertIn("from <anyone@JUNK.example>: 553 5.7.1", self.host.log())

    def test_an_address_without_a_domain(self):
        # qualified with control/me, which is not in rcpthosts: refused, but <postmaster> is always taken
        self.assertEqual(self.rcpt("joe")[0], 553)
        self.assertEqual(self.rcpt("Postmaster")[0], 250)
        # qualified with control/envnoathost: checked as any address of that domain, queued qualified
        self.host.home.write("control/envnoathost", "Example.COM\n")
        self.assertEqual(self.rcpt("nobody"), (550, "550 5.1.1 sorry, no mailbox here by that name"))
        c = self.raw()
        for line, code in (("HELO x", 250), ("MAIL FROM:<a@outside.example>", 250), ("RCPT TO:<joe>", 250),
                           ("DATA", 354)):
            self.assertEqual(c.command(line)[0], code, line)
        c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        [m] = self.assertQueued(1)
        self.assertEqual([r["address"] for r in m["recipients"]], ["joe@example.com"])

    def test_guessing_mailboxes_ends_the_session(self):
        c = self.raw()
        c.command("HELO x")
        c.command("MAIL FROM:<a@outside.example>")
        for i in range(19):
            self.assertEqual(c.command("RCPT TO:<guess%d@example.com>" % i)[0], 550)
        self.assertEqual(c.command("RCPT TO:<joe@example.com>")[0], 250)  # a good one does not count
        c.send(b"RCPT TO:<guess19@example.com>\r\n")
        self.assertEqual(c.reply()[0], 550)
        self.assertEqual(c.reply(), (421, "421 4.7.0 too many errors, closing the connection"))
        self.assertTrue(c.closed())

    def test_open_relay_probes(self):
        """The standard probe families, from a client with no relay rights: none gets 250."""
        probes = ["friend@remote.example", '"friend@remote.example"', "friend%remote.example@example.com",
                  "friend%remote.example", "friend@remote.example@example.com", '"friend@remote.example"@example.com',
                  "@example.com:friend@remote.example", "@[127.0.0.1]:friend@remote.example", "remote.example!friend",
                  "remote.example!friend@example.com", "friend@remote.example.", "friend@[192.0.2.1]",
                  "friend@example.com.", "friend@EXAMPLE.com@remote.example"]
        for p in probes:
            code, text = self.rcpt(p)
            self.assertIn(code, (550, 553), (p, text))
        self.assertQueued(0)


if __name__ == "__main__":
    unittest.main()
