"""qmail-remote against real SMTP servers on loopback: an aiosmtpd sink (run by this file as a separate
process: `test_remote.py sink CONFIG`), a scripted server for what aiosmtpd will not do (a refused
greeting, a connection that dies after the final dot, a broken STARTTLS), smtproutes and SMTPROUTE, the
outgoing address, STARTTLS, and, inside a network and mount namespace of the test's own (`test_remote.py
nsrun CONFIG` under `unshare --net --mount`), MX lookups against a real DNS server (dnsmasq) and SMTPS on
port 465. The reports are checked byte for byte against qmail's protocol."""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

from qvtest import Home, free_port, require_programs, scratch_dir, tool

try:
    import aiosmtpd  # noqa: F401
except ImportError:  # tests/CMakeLists.txt runs Debian's python3, which sees python3-aiosmtpd
    raise RuntimeError("missing Python's aiosmtpd (Debian: python3-aiosmtpd; scripts/test installs it)")

HERE = os.path.dirname(os.path.abspath(__file__))
REMOTE_ENV_DROP = ("OUTGOINGIP", "SMTPROUTE", "SMTPROUTESFILE", "CONTROLDIR")

MESSAGE = (b"From: alice@example.net\nTo: joe@example.com\nSubject: dots\n\n"
           b".hidden\n..two\n.\nmiddle\r\n. \nlast line without LF")
# what the server must receive: CRLF line ends, the last line completed
MESSAGE_CRLF = (b"From: alice@example.net\r\nTo: joe@example.com\r\nSubject: dots\r\n\r\n"
                b".hidden\r\n..two\r\n.\r\nmiddle\r\r\n. \r\nlast line without LF\r\n")


def reports(out):
    """qmail-remote's output as its reports (each without its NUL); the output must end with a NUL."""
    assert out.endswith(b"\0"), out
    return [r.decode("latin-1") for r in out[:-1].split(b"\0")]


# ---------------------------------------------------------------------------------------------------
# The aiosmtpd sink, in a process of its own

def sink_main(config_path):
    import ssl
    from aiosmtpd.controller import Controller

    with open(config_path) as f:
        cfg = json.load(f)
    counter = [0]

    class Handler:
        async def handle_MAIL(self, server, session, envelope, address, mail_options):
            if cfg.get("mail"):
                return cfg["mail"]
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            return "250 2.1.0 sender ok"

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address in cfg.get("rcpt", {}):
                return cfg["rcpt"][address]
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 recipient ok"

        async def handle_DATA(self, server, session, envelope):
            if cfg.get("data"):
                return cfg["data"]
            counter[0] += 1
            record = {"peer": session.peer[0], "helo": session.host_name, "mail_from": envelope.mail_from,
                      "mail_options": envelope.mail_options, "rcpt_tos": envelope.rcpt_tos,
                      # STARTTLS sets session.ssl; with TLS from the first byte, the transport says
                      "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
                      "data": base64.b64encode(envelope.original_content).decode()}
            tmp = os.path.join(cfg["dir"], ".%d.tmp" % counter[0])
            with open(tmp, "w") as f:
                json.dump(record, f)
            os.rename(tmp, os.path.join(cfg["dir"], "%06d.json" % counter[0]))
            return "250 2.0.0 queued as %d" % counter[0]

    kw = {}
    if cfg.get("tls"):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*cfg["tls"])
        kw["ssl_context" if cfg.get("smtps") else "tls_context"] = ctx
    controller = Controller(Handler(), hostname=cfg["host"], port=cfg["port"], server_hostname="sink.test", **kw)
    controller.start()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    with open(cfg["ready"], "w") as f:
        f.write("ready\n")
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


class Sink:
    """The aiosmtpd sink on host:port, offering STARTTLS with `tls` ([cert, key]), or speaking TLS from the
    first byte with `smtps` too; `mail`, `rcpt` ({address: reply}) and `data` make it refuse."""

    def __init__(self, workdir, host="127.0.0.1", port=None, tls=None, smtps=False, mail=None, rcpt=None,
                 data=None):
        self.dir = os.path.join(workdir, "sink.%d" % time.monotonic_ns())
        os.makedirs(self.dir)
        self.host, self.port = host, port or free_port()
        self.config = os.path.join(self.dir, "config.json")
        ready = os.path.join(self.dir, "ready")
        with open(self.config, "w") as f:
            json.dump({"host": self.host, "port": self.port, "dir": self.dir, "tls": tls, "smtps": smtps,
                       "mail": mail, "rcpt": rcpt or {}, "data": data, "ready": ready}, f)
        self.log = os.path.join(self.dir, "sink.log")
        with open(self.log, "wb") as err:
            self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "sink", self.config],
                                      stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the SMTP sink did not start: " + open(self.log).read())
            time.sleep(0.02)

    def messages(self):
        out = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".json") and name != "config.json":
                with open(os.path.join(self.dir, name)) as f:
                    m = json.load(f)
                m["data"] = base64.b64decode(m["data"])
                out.append(m)
        return out

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


class ScriptedServer:
    """A bare SMTP server in a thread, one connection at a time: `greeting`, then `replies` by verb
    (default 250; DATA 354); after the final dot, `after_dot` (None: close without a reply). Records the
    command lines (of every connection) and the data."""

    def __init__(self, greeting="220 scripted ESMTP", replies=None, after_dot="250 ok", close_after=()):
        self.greeting, self.replies, self.after_dot = greeting, replies or {}, after_dot
        self.close_after = close_after  # verbs after whose reply the connection is closed
        self.commands, self.data = [], b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed: the test is over
                return
            try:
                with conn, conn.makefile("rwb") as f:
                    self.talk(f)
            except OSError:  # the client went away first
                pass

    def talk(self, f):
        def say(line):
            f.write(line.encode() + b"\r\n")
            f.flush()
        say(self.greeting)
        if not self.greeting.startswith("220"):
            f.readline()  # QUIT
            return
        while True:
            line = f.readline()
            if not line:
                return
            self.commands.append(line.decode("latin-1").rstrip("\r\n"))
            verb = line.split()[0].decode("latin-1").upper() if line.split() else ""
            if verb == "QUIT":
                say("221 bye")
                return
            if verb == "DATA":
                say(self.replies.get("DATA", "354 go ahead"))
                if not self.replies.get("DATA", "354").startswith("354"):
                    continue
                while True:
                    data_line = f.readline()
                    if not data_line or data_line == b".\r\n":
                        break
                    self.data += data_line
                if self.after_dot is None:
                    return
                say(self.after_dot)
                continue
            say(self.replies.get(verb, "250 ok"))
            if verb in self.close_after:
                return

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------------------------------

class RemoteCase(unittest.TestCase):
    def setUp(self):
        require_programs("openssl")
        self.home = Home()
        self.addCleanup(self.home.cleanup)
        self.home.write("control/me", "mail.example.com\n")
        self.home.write("control/helohost", "helo.example.com\n")
        self.home.write("control/timeoutconnect", "10\n")
        self.home.write("control/timeoutremote", "30\n")

    def sink(self, **kw):
        s = Sink(self.home.root, **kw)
        self.addCleanup(s.stop)
        return s

    def route(self, text):
        self.home.write("control/smtproutes", text)

    def remote(self, host, sender, recipients, message=MESSAGE, qqeh="", size=None, env=None):
        """Runs qmail-remote; returns its reports (and checks that it exited 0 with nothing on stderr)."""
        e = self.home.env()
        for k in REMOTE_ENV_DROP:
            e.pop(k, None)
        e.update(env or {})
        size = str(len(message)) if size is None else size
        p = subprocess.run([tool("qmail-remote"), host, sender, qqeh, size] + list(recipients), input=message,
                           env=e, capture_output=True, timeout=120)
        self.assertEqual((p.returncode, p.stderr), (0, b""), p)
        return reports(p.stdout)


class Delivery(RemoteCase):
    def test_a_message_is_accepted_byte_for_byte(self):
        s = self.sink()
        self.route("# the test's relay\nexample.com:127.0.0.1:%d\n" % s.port)
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"], qqeh="X-Extra: yes\n")
        self.assertEqual(out, ["r", "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 queued as 1\n"])
        [m] = s.messages()
        self.assertEqual(m["data"], b"X-Extra: yes\r\n" + MESSAGE_CRLF)
        self.assertEqual((m["mail_from"], m["rcpt_tos"], m["helo"], m["tls"]),
                         ("alice@example.net", ["joe@example.com"], "helo.example.com", False))
        self.assertIn("SIZE=%d" % len(MESSAGE), m["mail_options"])  # aiosmtpd offers SIZE

    def test_an_empty_sender_and_several_recipients(self):
        s = self.sink()
        self.route("example.com:127.0.0.1:%d\n" % s.port)
        out = self.remote("EXAMPLE.com", "", ["joe@example.com", "tim@example.com"], message=b"Subject: x\n\nhi\n")
        self.assertEqual(out[:2], ["r", "r"])
        self.assertTrue(out[2].startswith("K127.0.0.1 accepted message."), out)
        [m] = s.messages()
        self.assertEqual((m["mail_from"], m["rcpt_tos"], m["data"]),
                         ("<>", ["joe@example.com", "tim@example.com"], b"Subject: x\r\n\r\nhi\r\n"))  # aiosmtpd's <>

    def test_one_recipient_of_two_refused(self):
        s = self.sink(rcpt={"bad@example.com": "550 5.1.1 no such user"})
        self.route("example.com:127.0.0.1:%d\n" % s.port)
        out = self.remote("example.com", "alice@example.net", ["bad@example.com", "joe@example.com"])
        self.assertEqual(out, ["h127.0.0.1 does not like recipient.\nRemote host said: 550 5.1.1 no such user\n",
                               "r",
                               "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 queued as 1\n"])
        self.assertEqual(s.messages()[0]["rcpt_tos"], ["joe@example.com"])

    def test_a_recipient_refused_for_now(self):
        s = self.sink(rcpt={"joe@example.com": "451 4.3.0 try later"})
        self.route("example.com:127.0.0.1:%d\n" % s.port)
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"])
        # qmail's words: no recipient left is "Giving up" (D); qmail-rspawn's folding makes it Z ('s' first)
        self.assertEqual(out, ["s127.0.0.1 does not like recipient.\nRemote host said: 451 4.3.0 try later\n",
                               "DGiving up on 127.0.0.1.\n"])
        self.assertEqual(s.messages(), [])

    def test_the_message_refused_for_now_after_data(self):
        s = self.sink(data="451 4.3.0 queue full")
        self.route("example.com:127.0.0.1:%d\n" % s.port)
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"])
        self.assertEqual(out, ["r", "Z127.0.0.1 failed after I sent the message.\n"
                                    "Remote host said: 451 4.3.0 queue full\n"])

    def test_the_sender_refused(self):
        s = self.sink(mail="553 5.7.1 sender refused")
        self.route("example.com:127.0.0.1:%d\n" % s.port)
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"])
        self.assertEqual(out, ["DConnected to 127.0.0.1 but sender was rejected.\n"
                               "Remote host said: 553 5.7.1 sender refused\n"])

    def test_nothing_listening(self):
        self.route("example.com:127.0.0.1:%d\n" % free_port())
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"])
        self.assertEqual(out, ["ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"])

    def test_smtproute_replaces_the_file_and_suffixes_match(self):
        s = self.sink()
        self.route("example.com:127.0.0.1:%d\n" % free_port())  # nothing listens there
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"],
                          env={"SMTPROUTE": "example.com:127.0.0.1:%d" % s.port})
        self.assertEqual(out[0], "r")
        self.assertTrue(out[1].startswith("K127.0.0.1 accepted"), out)
        # a subdomain through the ".example.com" line, from a file SMTPROUTESFILE names
        self.home.write("control/routes.other", ".example.com:[127.0.0.1]:%d\n" % s.port)
        out = self.remote("mx.sub.example.com", "alice@example.net", ["joe@mx.sub.example.com"],
                          env={"SMTPROUTESFILE": "routes.other"})
        self.assertTrue(out[1].startswith("K127.0.0.1 accepted"), out)
        self.assertEqual(len(s.messages()), 2)

    def test_the_null_sender_route(self):
        s = self.sink()
        self.route("!@:127.0.0.1:%d\nexample.com:127.0.0.1:%d\n" % (s.port, free_port()))
        out = self.remote("example.com", "", ["joe@example.com"])
        self.assertTrue(out[1].startswith("K127.0.0.1 accepted"), out)
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"])
        self.assertEqual(out, ["ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"])

    def test_ipv6_relay_in_brackets(self):
        try:
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback on this machine")
        s = self.sink(host="::1")
        self.route("example.com:[::1]:%d\n" % s.port)
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"])
        self.assertEqual(out, ["r", "K::1 accepted message.\nRemote host said: 250 2.0.0 queued as 1\n"])


class Conversation(RemoteCase):
    def server(self, **kw):
        s = ScriptedServer(**kw)
        self.addCleanup(s.close)
        self.route("example.com:127.0.0.1:%d\n" % s.port)
        return s

    def test_a_refused_greeting(self):
        self.server(greeting="421 4.3.2 busy, come back later")
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"])
        self.assertEqual(out, ["ZConnected to 127.0.0.1 but greeting failed.\n"
                               "Remote host said: 421 4.3.2 busy, come back later\n"])

    def test_helo_when_ehlo_is_refused_and_multiline_replies(self):
        s = self.server(replies={"EHLO": "502 5.5.2 no EHLO here", "RCPT": "250-first line\r\n250 second line"})
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"], message=b"a\n.b\n")
        self.assertEqual(out, ["r", "K127.0.0.1 accepted message.\nRemote host said: 250 ok\n"])
        self.assertEqual(s.commands[:5], ["EHLO helo.example.com", "HELO helo.example.com",
                                      "MAIL FROM:<alice@example.net>", "RCPT TO:<joe@example.com>", "DATA"])
        self.assertEqual(s.data, b"a\r\n..b\r\n")

    def test_a_multiline_refusal_is_reported_whole(self):
        self.server(replies={"RCPT": "550-5.1.1 first\r\n550 5.1.1 second"})
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"])
        self.assertEqual(out[0], "h127.0.0.1 does not like recipient.\n"
                                 "Remote host said: 550-5.1.1 first\n550 5.1.1 second\n")

    def test_name_refused_for_good(self):
        self.server(replies={"EHLO": "550 no", "HELO": "550 5.7.1 go away"})
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"])
        self.assertEqual(out, ["DConnected to 127.0.0.1 but my name was rejected.\n"
                               "Remote host said: 550 5.7.1 go away\n"])

    def test_data_refused(self):
        self.server(replies={"DATA": "554 5.6.0 no data for you"})
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"])
        self.assertEqual(out, ["r", "D127.0.0.1 failed on DATA command.\n"
                                    "Remote host said: 554 5.6.0 no data for you\n"])

    def test_a_connection_dying_after_the_dot_may_be_a_duplicate(self):
        self.server(after_dot=None)
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"])
        self.assertEqual(out, ["r", "ZConnected to 127.0.0.1 but connection died. Possible duplicate! (#4.4.2)\n"])

    def test_a_failed_starttls_handshake_is_retried_in_clear(self):
        s = self.server(replies={"EHLO": "250-scripted\r\n250 STARTTLS", "STARTTLS": "220 2.0.0 go ahead"},
                        close_after=("STARTTLS",))  # no handshake: the connection closes
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"], message=b"x\n")
        self.assertEqual(out, ["r", "K127.0.0.1 accepted message.\nRemote host said: 250 ok\n"])
        self.assertEqual(s.commands[:6], ["EHLO helo.example.com", "STARTTLS",  # the first connection
                                          "EHLO helo.example.com", "MAIL FROM:<alice@example.net>",
                                          "RCPT TO:<joe@example.com>", "DATA"])
        self.assertEqual(s.data, b"x\r\n")

    def test_starttls_refused_goes_on_in_clear(self):
        s = self.server(replies={"EHLO": "250-scripted\r\n250 STARTTLS", "STARTTLS": "454 4.7.0 TLS not available"})
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"], message=b"x\n")
        self.assertEqual(out[-1], "K127.0.0.1 accepted message.\nRemote host said: 250 ok\n")
        self.assertEqual(s.commands[:3], ["EHLO helo.example.com", "STARTTLS", "MAIL FROM:<alice@example.net>"])

    def test_no_size_parameter_unless_offered_and_quoted_local_parts(self):
        s = self.server()
        self.remote("example.com", "a b@example.net", ["joe@example.com"])
        self.assertEqual(s.commands[1:3], ['MAIL FROM:<"a b"@example.net>', "RCPT TO:<joe@example.com>"])


class OutgoingIp(RemoteCase):
    def test_the_source_address_is_drawn_from_outgoingip_host(self):
        s = self.sink()
        self.route("example.com:127.0.0.1:%d\n" % s.port)
        addresses = {"127.0.0.2", "127.0.0.3", "127.0.0.4"}
        self.home.write("control/outgoingip", "127.0.0.9\n")  # the host's own file comes first
        self.home.write("control/outgoingip.example.com", "# three\n127.0.0.2\n127.0.0.3\n\n127.0.0.4\n")
        for _ in range(20):
            out = self.remote("Example.COM", "alice@example.net", ["joe@example.com"], message=b"x\n")
            self.assertTrue(out[-1].startswith("K"), out)
        peers = [m["peer"] for m in s.messages()]
        self.assertEqual(len(peers), 20)
        self.assertLessEqual(set(peers), addresses)
        self.assertGreater(len(set(peers)), 1, peers)
        # OUTGOINGIP comes before the files
        self.remote("example.com", "alice@example.net", ["joe@example.com"], message=b"x\n",
                    env={"OUTGOINGIP": "127.0.0.7"})
        self.assertEqual(s.messages()[-1]["peer"], "127.0.0.7")

    def test_an_address_that_cannot_be_bound_defers(self):
        s = self.sink()
        self.route("example.com:127.0.0.1:%d\n" % s.port)
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"], env={"OUTGOINGIP": "192.0.2.1"})
        self.assertRegex(out[-1], r"^ZSorry, I couldn't bind to the outgoing address 192\.0\.2\.1: .*\(#4\.3\.0\)\n$")


def make_certificate(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=sink.test",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return [cert, key]


class StartTls(RemoteCase):
    def test_starttls_offered_is_used(self):
        s = self.sink(tls=make_certificate(self.home.root))
        self.route("example.com:127.0.0.1:%d\n" % s.port)
        out = self.remote("example.com", "alice@example.net", ["joe@example.com"])
        self.assertEqual(out, ["r", "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 queued as 1\n"])
        [m] = s.messages()
        self.assertTrue(m["tls"])
        self.assertEqual(m["data"], MESSAGE_CRLF)


# ---------------------------------------------------------------------------------------------------
# MX lookups: dnsmasq, the sink and qmail-remote in a network and mount namespace of their own

DNS_ZONE = [
    "--mx-host=example.test,mx0.example.test,5", "--host-record=mx0.example.test,127.0.0.6",  # nothing listens
    "--mx-host=example.test,mx1.example.test,10", "--host-record=mx1.example.test,127.0.0.5",
    "--host-record=plain.example.test,127.0.0.5",                                               # no MX: its A
    "--mx-host=self.example.test,me.example.test,10", "--host-record=me.example.test,127.0.0.1",  # an MX: us
]


def nsrun_main(config_path):
    """Inside `unshare --net --mount`: loopback up, /etc/resolv.conf pointing at a dnsmasq on 127.0.0.1
    serving DNS_ZONE, the sinks the configuration lists; runs qmail-remote for each case and prints the
    outputs and what each sink received, as JSON."""
    with open(config_path) as f:
        cfg = json.load(f)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    resolv = os.path.join(cfg["dir"], "resolv.conf")
    with open(resolv, "w") as f:
        f.write("# qvmail test namespace\nnameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
    subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"], check=True)
    dns_log = os.path.join(cfg["dir"], "dnsmasq.log")
    dns = subprocess.Popen(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                            "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53", "--user=root",
                            "--pid-file=", "--local=/example.test/", "--log-queries", "--log-facility=" + dns_log]
                           + DNS_ZONE, stdin=subprocess.DEVNULL)
    result = {"runs": [], "messages": []}
    sinks = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.getaddrinfo("mx1.example.test", 25)
                break
            except socket.gaierror:
                if time.monotonic() > deadline or dns.poll() is not None:
                    raise RuntimeError("dnsmasq does not answer")
                time.sleep(0.05)
        for kw in cfg["sinks"]:
            sinks.append(Sink(cfg["dir"], **kw))
        for host, recipient in cfg["runs"]:
            p = subprocess.run([os.path.join(cfg["bin"], "qmail-remote"), host, "alice@example.net", "", "3",
                                recipient], input=b"hi\n", env=cfg["env"], capture_output=True, timeout=120)
            result["runs"].append({"host": host, "status": p.returncode, "stdout": p.stdout.decode("latin-1"),
                                   "stderr": p.stderr.decode("latin-1")})
        result["messages"] = [[{"peer": m["peer"], "rcpt_tos": m["rcpt_tos"], "tls": m["tls"],
                                "data": m["data"].decode("latin-1")} for m in sink.messages()] for sink in sinks]
    finally:
        for sink in sinks:
            sink.stop()
        dns.terminate()
        dns.wait()
    with open(dns_log, errors="replace") as f:
        result["dns_log"] = f.read()
    json.dump(result, sys.stdout)


class Namespace(RemoteCase):
    """Runs qmail-remote, dnsmasq and sinks in a network and mount namespace of their own."""

    def in_namespace(self, sinks, runs):
        if os.geteuid() != 0:
            self.fail("this test needs root: it runs dnsmasq, SMTP sinks and qmail-remote in a network and mount "
                      "namespace of its own (unshare --net --mount); run the suite as root, as CI does")
        require_programs("unshare", "ip", "mount", "dnsmasq")
        work = scratch_dir("qvremote-ns.")
        self.addCleanup(shutil.rmtree, work, True)
        env = self.home.env()
        for k in REMOTE_ENV_DROP:
            env.pop(k, None)
        config = os.path.join(work, "config.json")
        with open(config, "w") as f:
            json.dump({"dir": work, "bin": os.path.dirname(tool("qmail-remote")), "env": env, "sinks": sinks,
                       "runs": runs}, f)
        p = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", sys.executable,
                            os.path.abspath(__file__), "nsrun", config], capture_output=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        r = json.loads(p.stdout)
        for run in r["runs"]:
            self.assertEqual((run["status"], run["stderr"]), (0, ""), run)
        # the outside world's resolver is untouched
        with open("/etc/resolv.conf") as f:
            self.assertNotIn("# qvmail test namespace", f.read())
        return {run["host"]: reports(run["stdout"].encode("latin-1")) for run in r["runs"]}, r


class MxLookup(Namespace):
    def test_mx_records_from_a_real_dns_server(self):
        runs = [["example.test", "joe@example.test"],              # MX 5 refuses connections, MX 10 takes it
                ["plain.example.test", "tim@plain.example.test"],  # no MX: the host's own address
                ["nosuch.example.test", "joe@nosuch.example.test"],  # NXDOMAIN
                ["self.example.test", "joe@self.example.test"],    # the best MX is this host
                ["elsewhere.invalid", "joe@elsewhere.invalid"]]    # the server refuses to answer
        out, r = self.in_namespace([{"host": "127.0.0.5", "port": 25}], runs)
        accepted = "K127.0.0.5 accepted message.\nRemote host said: 250 2.0.0 queued as %d\n"
        self.assertEqual(out["example.test"], ["r", accepted % 1], r["dns_log"])
        self.assertEqual(out["plain.example.test"], ["r", accepted % 2])
        self.assertEqual(out["nosuch.example.test"],
                         ["DSorry, I couldn't find any host named nosuch.example.test. (#5.1.2)\n"])
        self.assertEqual(out["self.example.test"],
                         ["DSorry. Although I'm listed as a best-preference MX or A for that host,\n"
                          "it isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n"])
        self.assertEqual(out["elsewhere.invalid"], ["ZSorry, I couldn't find any host by that name. (#4.1.2)\n"])
        self.assertEqual([(m["peer"], m["rcpt_tos"], m["data"]) for m in r["messages"][0]],
                         [("127.0.0.1", ["joe@example.test"], "hi\r\n"),
                          ("127.0.0.1", ["tim@plain.example.test"], "hi\r\n")])
        # the MX of preference 5 was asked for before the one of preference 10 was used
        self.assertIn("mx0.example.test", r["dns_log"])


class Smtps(Namespace):
    def test_port_465_is_tls_from_the_first_byte(self):
        cert = make_certificate(self.home.root)
        self.route("smtps.example.test:127.0.0.5:465\nsmtps-name.example.test:mx1.example.test:465\n")
        out, r = self.in_namespace([{"host": "127.0.0.5", "port": 465, "tls": cert, "smtps": True}],
                                   [["smtps.example.test", "joe@smtps.example.test"],
                                    ["smtps-name.example.test", "joe@smtps-name.example.test"]])
        accepted = "K127.0.0.5 accepted message.\nRemote host said: 250 2.0.0 queued as %d\n"
        self.assertEqual(out["smtps.example.test"], ["r", accepted % 1])
        self.assertEqual(out["smtps-name.example.test"], ["r", accepted % 2])
        self.assertEqual([(m["tls"], m["rcpt_tos"]) for m in r["messages"][0]],
                         [(True, ["joe@smtps.example.test"]), (True, ["joe@smtps-name.example.test"])])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "sink":
        sink_main(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "nsrun":
        nsrun_main(sys.argv[2])
    else:
        unittest.main()
