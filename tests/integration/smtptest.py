"""A mail host for the SMTP tests: a scratch QMAILHOME with a domain, a queue, qmail-queued (optional)
and qmail-smtpd under the real tcpserver on a loopback port."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

from qvtest import Home, free_port, sql, tool

# qmail-smtpd's RFC 2195 credentials, for CRAM-MD5 (vadduser -C keeps the clear text)
TIM, TIM_PASSWORD = "tim@example.com", "tanstaaftanstaaf"
JOE, JOE_PASSWORD = "joe@example.com", "joe-password"


def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


class Process:
    """A background program with its stderr in a file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv, env, log, stdout=False):
        self.log = log
        with open(log, "ab") as err:
            self.p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                      stdout=err if stdout else subprocess.DEVNULL, stderr=err,
                                      start_new_session=True)

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()

    def read_log(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")


class MailHost:
    """QMAILHOME with example.com (joe, tim with CRAM-MD5 credentials), control/me, a queue, the rules
    compiled; start() runs qmail-queued (unless queued=False) and qmail-smtpd under tcpserver."""

    def __init__(self, backend=None, share=None, me="mail.example.com"):
        """`share`: another MailHost whose MariaDB database this one shares (a second host of a cluster:
        example.com comes from the database through qmailctl sync)."""
        self.home = h = Home(backend)
        self.processes = []
        if share is not None:
            sql("DROP DATABASE IF EXISTS %s" % h.database)
            h.database = share.home.database
            h.write("control/me", me + "\n")
            self.run_ok("qmailctl", "sync")
        else:
            self.run_ok("vadddomain", "example.com", "-r", "10")
            self.run_ok("vadduser", JOE, "--password-stdin", input=(JOE_PASSWORD + "\n").encode())
            self.run_ok("vadduser", TIM, "-C", "--password-stdin", input=(TIM_PASSWORD + "\n").encode())
            h.write("control/me", me + "\n")
        self.run_ok("qmailctl", "queue", "init", "--quiet")
        h.write("etc/tcp.smtp", "")
        self.run_ok("qmailctl", "cdb", "--quiet")
        self.port = None
        self.smtpd_log = h.path("smtpd.log")
        self.queued = None

    def run_ok(self, *args, **kw):
        p = self.home.run(*args, **kw)
        if p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr.decode()))
        return p

    def env(self, **extra):
        return self.home.env(**extra)

    def start_queued(self):
        self.queued = Process([tool("qmail-queued")], self.env(), self.home.path("queued.log"))
        self.processes.append(self.queued)
        sock = self.home.path("run/qmail-queued.sock")
        deadline = time.monotonic() + 20
        while not os.path.exists(sock):
            if self.queued.p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("qmail-queued did not start: " + self.queued.read_log())
            time.sleep(0.01)

    def start_send(self, env=None):
        """qmail-send, its log (standard output) in send.log."""
        started = self.send_log().count("status: qmail-send starting")
        self.send = Process([tool("qmail-send")], env or self.env(), self.home.path("send.log"), stdout=True)
        self.processes.insert(0, self.send)  # stopped last
        deadline = time.monotonic() + 20
        while self.send_log().count("status: qmail-send starting") == started:
            if self.send.p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("qmail-send did not start: " + self.send_log())
            time.sleep(0.01)

    def send_log(self):
        try:
            with open(self.home.path("send.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, predicate, what, timeout=30):
        """Polls `predicate` until it is true; fails naming `what`, with qmail-send's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = predicate()
            if v:
                return v
            time.sleep(0.02)
        raise AssertionError("timed out waiting for %s; qmail-send's log:\n%s" % (what, self.send_log()))

    def inject(self, sender, recipients, message, env=None):
        """Queues a message with qmail-queue (message on 0, envelope on 1); its exit code."""
        envelope = b"F" + sender.encode() + b"\0" + b"".join(b"T" + r.encode() + b"\0" for r in recipients) + b"\0"
        with tempfile.TemporaryFile() as f:
            f.write(envelope)
            f.seek(0)
            p = subprocess.run([tool("qmail-queue")], input=message, stdout=f, stderr=subprocess.PIPE,
                               env=env or self.env(), timeout=60)
        return p.returncode

    def maildir_messages(self, maildir):
        """The messages in new/ of a Maildir (path relative to QMAILHOME, or absolute), as bytes."""
        new = os.path.join(self.home.path(maildir), "new")
        if not os.path.isdir(new):
            return []
        out = []
        for name in sorted(os.listdir(new)):
            with open(os.path.join(new, name), "rb") as f:
                out.append(f.read())
        return out

    def mailbox(self, address):
        """The Maildir of a mailbox (from the store's record)."""
        user, domain = address.split("@")
        return os.path.join(self.home.user_record(domain, user)[5], "Maildir")

    def start(self, *smtpd_args, queued=True, env=None, concurrency=40):
        """qmail-smtpd under tcpserver -x etc/tcp.smtp.cdb on a free port (IndiMail's line)."""
        if queued and self.queued is None:
            self.start_queued()
        self.start_program(tool("qmail-smtpd"), *smtpd_args, env=env, concurrency=concurrency)

    def start_program(self, program, *args, env=None, concurrency=40):
        """`program` under tcpserver, as qmail-smtpd runs."""
        for attempt in range(5):
            self.port = free_port()
            # -H -R -l: no DNS or ident lookups (a test must not wait for the machine's resolver)
            argv = ["tcpserver", "-q", "-H", "-R", "-l", "mail.example.com", "-x", self.home.path("etc/tcp.smtp.cdb"),
                    "-c", str(concurrency), "127.0.0.1", str(self.port), program] + list(args)
            proc = Process(argv, env or self.env(), self.smtpd_log)
            try:
                wait_port(self.port, timeout=5)
                self.processes.append(proc)
                return
            except RuntimeError:
                proc.stop()
        raise RuntimeError("tcpserver did not start: " + open(self.smtpd_log).read())

    def stop(self):
        for p in reversed(self.processes):
            p.stop()
        self.processes = []
        self.queued = None

    def cleanup(self):
        self.stop()
        self.home.cleanup()

    def log(self):
        with open(self.smtpd_log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def queue(self):
        """The messages of `qmailctl queue list --json`."""
        p = self.run_ok("qmailctl", "queue", "list", "--json")
        return [json.loads(l) for l in p.stdout.splitlines()]

    def message_text(self, number):
        q = self.home.path("queue", "mess", str(number % 23), str(number))
        with open(q, "rb") as f:
            return f.read()

    def set_rules(self, text):
        self.home.write("etc/tcp.smtp", text)
        self.run_ok("qmailctl", "cdb", "--quiet")


class Sink:
    """A real SMTP server on a loopback address (aiosmtpd): keeps what it receives, with the client's
    address; `replies` maps a recipient to the replies its RCPT gets in turn (then 250)."""

    def __init__(self, host="127.0.0.1", tls_context=None):
        from aiosmtpd.controller import Controller
        self.messages = []
        self.replies = {}
        self.mail_reply = None
        sink = self

        class Handler:
            async def handle_MAIL(self, server, session, envelope, address, mail_options):
                if sink.mail_reply:
                    return sink.mail_reply
                envelope.mail_from = address
                return "250 OK"

            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                queue = sink.replies.get(address)
                if queue:
                    return queue.pop(0)
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                sink.messages.append({"peer": session.peer[0], "from": envelope.mail_from,
                                      "to": list(envelope.rcpt_tos), "data": envelope.original_content,
                                      "tls": session.ssl is not None})
                return "250 2.0.0 queued as %d" % len(sink.messages)

        self.port = free_port()
        kw = {"tls_context": tls_context, "require_starttls": False} if tls_context else {}
        self.controller = Controller(Handler(), hostname=host, port=self.port, **kw)
        self.controller.start()

    def stop(self):
        self.controller.stop()


class RawClient:
    """A bare SMTP conversation over a socket, for what smtplib will not send."""

    def __init__(self, port, timeout=30):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def reply(self):
        """One reply (all its lines): (code, text of the last line)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise EOFError("the server closed the connection; got %r" % self.buf)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    def command(self, line):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def closed(self):
        """Whether the server has closed the connection (reads what is left)."""
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False

    def close(self):
        self.s.close()
