"""Relay control: the six mechanisms through `qmailctl relay test`, the editing subcommands, the
POP/IMAP-before-SMTP grants, clearopensmtp and vchkpass. Runs against both stores (QV_BACKEND)."""
import fcntl
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from qvtest import BACKEND, BIN, NOBODY, SOURCE_DIR, Home, HomeTestCase, as_user, shared_bin, tool

MYSQL = BACKEND == "mysql"


class RelayCase(HomeTestCase):
    def setUp(self):
        super().setUp()
        self.ok(self.home.run("vadddomain", "example.com", "-r", "10"))

    def relay(self, *args, **kw):
        return self.home.run("qmailctl", "relay", *args, **kw)

    def decide(self, ip, *args):
        """(exit code, decision) of `qmailctl relay test IP ARGS --json`."""
        p = self.relay("test", ip, *args, "--json")
        self.assertIn(p.returncode, (0, 1), p.stderr.decode())
        d = json.loads(p.stdout)
        self.assertEqual(p.returncode == 0, d["allowed"])
        return d

    def assertRelays(self, ip, *args, mechanism):
        d = self.decide(ip, *args)
        self.assertEqual((d["verdict"], d["mechanism"]), ("relay", mechanism), d["trace"])
        return d

    def assertRefused(self, ip, *args):
        d = self.decide(ip, *args)
        self.assertEqual(d["verdict"], "refused", d["trace"])
        self.assertIsNone(d["mechanism"])
        return d

    def age_grants(self, seconds):
        """Makes every grant `seconds` older, as time passing would."""
        h = self.home
        if MYSQL:
            h.rows("UPDATE relay SET timestamp = timestamp - %d" % seconds)
            return
        lines = []
        for line in h.read("etc/open-smtp").decode().splitlines():
            rule, ts, email = line.split("\t")
            lines.append("%s\t%d\t%s" % (rule, int(ts) - seconds, email))
        h.write("etc/open-smtp", "".join(l + "\n" for l in lines))


class Matrix(RelayCase):
    """For each mechanism, a client it lets relay and one it does not."""

    def setUp(self):
        super().setUp()
        self.ok(self.home.run("vadduser", "tim@example.com", "--password-stdin", input=b"tim-password\n"))
        self.ok(self.home.run("vadduser", "norelay@example.com", "-r", "10"))
        self.ok(self.home.run("vmoduser", "-r", "norelay@example.com"))

    def test_tcp_smtp_rules(self):
        h = self.home
        h.write("etc/tcp.smtp", "# static rules\n127.0.0.1:allow,RELAYCLIENT=\"\"\n")
        self.ok(h.run("qmailctl", "cdb"))
        self.ok(self.relay("rules", "allow", "10.1.1.", "--env", "RELAYCLIENT="))
        self.ok(self.relay("rules", "allow", "172.16.0.10-20", "-e", "RELAYCLIENT="))
        self.ok(self.relay("rules", "allow", "=.partner.example", "-e", "RELAYCLIENT="))
        self.ok(self.relay("rules", "allow", "192.0.2.1", "-e", "GREETING=no relay here"))
        self.ok(self.relay("rules", "deny", "198.51.100.66"))
        # the file keeps its comment and order; tcprules reads it as we wrote it
        self.assertEqual(h.read("etc/tcp.smtp").decode().splitlines(), [
            "# static rules", '127.0.0.1:allow,RELAYCLIENT=""', '10.1.1.:allow,RELAYCLIENT=""',
            '172.16.0.10-20:allow,RELAYCLIENT=""', '=.partner.example:allow,RELAYCLIENT=""',
            '192.0.2.1:allow,GREETING="no relay here"', "198.51.100.66:deny"])
        ref = os.path.join(tempfile.mkdtemp(), "ref.cdb")
        self.addCleanup(shutil.rmtree, os.path.dirname(ref))
        with open(h.path("etc/tcp.smtp"), "rb") as src:
            subprocess.run(["tcprules", ref, ref + ".tmp"], stdin=src, check=True)
        with open(ref, "rb") as f:
            self.assertEqual(h.read("etc/tcp.smtp.cdb"), f.read())

        d = self.assertRelays("10.1.1.9", mechanism="tcp.smtp")
        self.assertEqual((d["source"], d["line"], d["text"]),
                         (h.path("etc/tcp.smtp"), 3, '10.1.1.:allow,RELAYCLIENT=""'))
        self.assertRelays("127.0.0.1", mechanism="tcp.smtp")
        self.assertRelays("172.16.0.15", mechanism="tcp.smtp")
        self.assertRelays("203.0.113.5", "--host", "mx1.partner.example", mechanism="tcp.smtp")
        self.assertRefused("10.1.2.9")                                   # another prefix
        self.assertRefused("10.1.10.9")                                  # 10.1.1. is not a text prefix of 10.1.10.
        self.assertRefused("172.16.0.21")                                # outside the range
        self.assertRefused("203.0.113.5", "--host", "mx1.partner.example.org")
        d = self.assertRefused("192.0.2.1")                              # allowed to connect, not to relay
        self.assertIn('tcp.smtp: rule "192.0.2.1" allows the connection, without RELAYCLIENT', d["trace"])
        d = self.decide("198.51.100.66")
        self.assertEqual(d["verdict"], "denied")
        # local recipients are accepted from anyone; relay probes from no one
        self.assertEqual(self.decide("10.1.2.9", "--rcpt", "tim@example.com")["verdict"], "local")
        self.assertEqual(self.decide("10.1.1.9", "--rcpt", "a%b@example.com")["verdict"], "rejected")
        self.assertEqual(self.decide("10.1.1.9", "--rcpt", "a@b@example.com")["verdict"], "rejected")

        # the human form names the file and line
        p = self.relay("test", "10.1.1.9")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout.decode().splitlines()[:2], [
            "10.1.1.9 may relay (tcp.smtp)", "  by %s:3: 10.1.1.:allow,RELAYCLIENT=\"\"" % h.path("etc/tcp.smtp")])
        p = self.relay("test", "10.1.2.9")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout.decode().splitlines()[0], "10.1.2.9 may not relay")

        # removal takes effect in the same step
        self.ok(self.relay("rules", "remove", "10.1.1."))
        self.assertRefused("10.1.1.9")

    def test_relayclients(self):
        h = self.home
        self.ok(self.relay("clients", "add", "192.168.5."))
        self.ok(self.relay("clients", "add", "192.168.7.1:@relay.example"))
        with open(h.path("control/relayclients"), "a") as f:
            f.write("# written by hand, without the colon\n192.168.6.7\n")
        self.assertEqual(h.read("control/relayclients").decode(),
                         "192.168.5.:\n192.168.7.1:@relay.example\n# written by hand, without the colon\n192.168.6.7\n")
        d = self.assertRelays("192.168.5.20", mechanism="relayclients")
        self.assertEqual((d["line"], d["text"], d["append"]), (1, "192.168.5.:", ""))
        d = self.assertRelays("192.168.7.1", mechanism="relayclients")
        self.assertEqual((d["line"], d["append"]), (2, "@relay.example"))
        d = self.assertRelays("192.168.6.7", mechanism="relayclients")
        self.assertEqual((d["line"], d["append"]), (4, ""))
        self.assertRefused("192.168.55.1")   # 192.168.5. is a prefix of octets, not of text
        self.assertRefused("192.168.7.10")   # an exact address is not a prefix
        self.assertRefused("192.168.6.8")
        # RELAYCLIENTS names another file
        h.write("control/relayclients.alt", "10.9.9.:\n")
        p = h.run("qmailctl", "relay", "test", "10.9.9.9", env=h.env(RELAYCLIENTS="relayclients.alt"))
        self.assertEqual(p.returncode, 0, p.stdout)
        self.ok(self.relay("clients", "remove", "192.168.5."))
        self.assertRefused("192.168.5.20")

    def test_relaydomains(self):
        self.ok(self.relay("domains", "add", ".Trusted.example"))
        self.ok(self.relay("domains", "add", "gw.partner.example:"))
        d = self.assertRelays("203.0.113.9", "--host", "a.b.trusted.example", mechanism="relaydomains")
        self.assertEqual(d["text"], ".trusted.example:")
        self.assertRelays("203.0.113.9", "--host", "GW.Partner.Example", mechanism="relaydomains")
        self.assertRefused("203.0.113.9", "--host", "untrusted.example")      # suffixes start at a dot
        self.assertRefused("203.0.113.9", "--host", "x.gw.partner.example")   # an exact name
        d = self.assertRefused("203.0.113.9")                                  # no host name known
        self.assertIn("relaydomains: the client's host name is not known", d["trace"])

    def test_smtp_auth(self):
        d = self.assertRelays("203.0.113.9", "--auth", "tim@example.com", mechanism="smtp-auth")
        self.assertEqual(d["text"], "tim@example.com")
        d = self.assertRefused("203.0.113.9", "--auth", "norelay@example.com")
        self.assertIn("smtp-auth: norelay@example.com has NO_RELAY: authenticated, may not relay", d["trace"])
        self.assertRefused("203.0.113.9", "--auth", "ghost@example.com")
        self.ok(self.home.run("vmoduser", "-s", "tim@example.com"))     # NO_SMTP: no SMTP AUTH at all
        d = self.assertRefused("203.0.113.9", "--auth", "tim@example.com")
        self.assertIn("smtp-auth: tim@example.com has NO_SMTP: vchkpass refuses its SMTP AUTH", d["trace"])
        # NO_RELAY still reaches local recipients
        self.assertEqual(self.decide("203.0.113.9", "--auth", "norelay@example.com", "--rcpt",
                                   "tim@example.com")["verdict"], "local")

    def test_relaymailfrom(self):
        h = self.home
        self.ok(self.relay("mailfrom", "add", "@Trusted.example"))
        self.ok(self.relay("mailfrom", "add", "boss@example.org"))
        self.assertEqual(h.read("control/relaymailfrom").decode(), "@trusted.example\nboss@example.org\n")
        self.assertTrue(os.path.exists(h.path("control/relaymailfrom.cdb")))
        self.assertRelays("203.0.113.9", "--sender", "anyone@trusted.example", mechanism="relaymailfrom")
        self.assertRelays("203.0.113.9", "--sender", "Boss@Example.ORG", mechanism="relaymailfrom")
        self.assertRefused("203.0.113.9", "--sender", "clerk@example.org")
        self.assertRefused("203.0.113.9", "--sender", "x@sub.trusted.example")
        self.assertRefused("203.0.113.9")
        self.ok(self.relay("mailfrom", "remove", "@trusted.example"))
        self.assertRefused("203.0.113.9", "--sender", "anyone@trusted.example")

    def test_relay_grants(self):
        h = self.home
        self.ok(self.relay("grant", "tim@example.com", "203.0.113.7"))
        d = self.assertRelays("203.0.113.7", "--sender", "tim@example.com", mechanism="relay-grant")
        self.assertEqual(d["text"], "tim@example.com 203.0.113.7")
        self.assertRefused("203.0.113.8", "--sender", "tim@example.com")
        if MYSQL:
            # IndiMail's CHECKRELAY: keyed on the sender and the IP
            self.assertEqual(d["source"], "table relay")
            self.assertRelays("203.0.113.7", "--sender", "TIM@example.com", mechanism="relay-grant")
            self.assertRefused("203.0.113.7", "--sender", "other@example.com")
            self.assertEqual(h.rows("SELECT email, ipaddr FROM relay"), [["tim@example.com", "203.0.113.7"]])
        else:
            # vpopmail's open-smtp: by IP, through tcp.smtp.cdb
            self.assertEqual(d["source"], h.path("etc/open-smtp"))
            self.assertRelays("203.0.113.7", "--sender", "other@example.com", mechanism="relay-grant")
            self.assertRegex(h.read("etc/open-smtp").decode(),
                             r'^203\.0\.113\.7:allow,RELAYCLIENT=""\t\d+\ttim@example\.com\n$')
        grants = [json.loads(l) for l in self.ok(self.relay("grants", "--json")).stdout.splitlines()]
        self.assertEqual([(g["email"], g["ip"], g["expired"]) for g in grants],
                         [("tim@example.com", "203.0.113.7", False)])
        self.assertLess(grants[0]["age_seconds"], 60)

        # an expired grant no longer counts (files: once clearopensmtp has rebuilt the cdb)
        self.age_grants(3 * 3600)
        self.assertEqual(self.ok(self.relay("grants")).stdout, b"")
        out = self.ok(self.relay("grants", "--all")).stdout.decode()
        self.assertRegex(out, r"^203\.0\.113\.7\ttim@example\.com\t3 h\texpired\n$")
        if not MYSQL:
            self.ok(h.run("qmailctl", "cdb"))
            d = self.assertRelays("203.0.113.7", mechanism="relay-grant")
            self.assertTrue(d["trace"][0].endswith("expired, but in effect until clearopensmtp runs"), d["trace"])
            self.ok(h.run("clearopensmtp"))
        d = self.assertRefused("203.0.113.7", "--sender", "tim@example.com")

        # revoke
        self.ok(self.relay("grant", "tim@example.com", "203.0.113.9"))
        self.assertRelays("203.0.113.9", "--sender", "tim@example.com", mechanism="relay-grant")
        self.ok(self.relay("revoke", "203.0.113.9"))
        self.assertRefused("203.0.113.9", "--sender", "tim@example.com")
        p = self.relay("revoke", "203.0.113.9")
        self.assertEqual(p.returncode, 6, p.stderr)

    def test_ipv6_grants(self):
        h = self.home
        if MYSQL:
            self.ok(self.relay("grant", "tim@example.com", "2001:db8::7"))
            self.assertRelays("2001:db8::7", "--sender", "tim@example.com", mechanism="relay-grant")
            self.ok(self.relay("revoke", "2001:db8::7"))
        else:
            # tcp.smtp rules hold IPv4 addresses only: refused, nothing written
            before = h.snapshot()
            p = self.relay("grant", "tim@example.com", "2001:db8::7")
            self.assertEqual(p.returncode, 65, p.stderr)
            self.assertIn(b"IPv4 addresses only", p.stderr)
            self.assertEqual(h.snapshot(), before)
            # an IPv4-mapped address is kept as IPv4
            self.ok(self.relay("grant", "tim@example.com", "::ffff:192.0.2.9"))
            self.assertRelays("192.0.2.9", mechanism="relay-grant")
            self.ok(h.run("qmailctl", "cdb"))

    def test_a_login_does_not_open_a_denied_client(self):
        h = self.home
        self.ok(self.relay("rules", "deny", "198.51.100."))
        if MYSQL:
            # CHECKRELAY runs after tcpserver: the client never gets as far as RCPT
            self.ok(self.relay("grant", "tim@example.com", "198.51.100.9"))
        else:
            before = h.snapshot()
            p = self.relay("grant", "tim@example.com", "198.51.100.9")
            self.assertEqual(p.returncode, 77, p.stderr)
            self.assertIn(b"denies 198.51.100.9", p.stderr)
            self.assertEqual(h.snapshot(), before)
            # a grant that was there before the deny rule is left out of the cdb
            h.write("etc/open-smtp", '198.51.100.9:allow,RELAYCLIENT=""\t%d\ttim@example.com\n' % time.time())
            self.ok(h.run("qmailctl", "cdb"))
        self.assertEqual(self.decide("198.51.100.9", "--sender", "tim@example.com")["verdict"], "denied")

    def test_grant_and_revoke_change_open_smtp_and_the_cdb_together(self):
        if MYSQL:
            self.skipTest("the files store's open-smtp")
        h = self.home
        self.ok(self.relay("grant", "tim@example.com", "192.0.2.50"))
        h.write("etc/tcp.smtp", "10.0.0.1:bogus\n")      # the next rebuild fails
        before = h.snapshot()
        for args in (("revoke", "192.0.2.50"), ("grant", "tim@example.com", "192.0.2.51")):
            p = self.relay(*args)
            self.assertEqual(p.returncode, 65, p.stderr)
            self.assertEqual(h.snapshot(), before)          # neither open-smtp nor the cdb changed
        self.assertRelays("192.0.2.50", mechanism="relay-grant")

    def test_a_denied_client_is_denied_before_the_probe_check(self):
        self.ok(self.relay("rules", "deny", "198.51.100.66"))
        self.assertEqual(self.decide("198.51.100.66", "--rcpt", "a%b@example.com")["verdict"], "denied")

    def test_tcp_smtp_wins_over_later_mechanisms(self):
        self.ok(self.relay("rules", "allow", "10.1.1.", "-e", "RELAYCLIENT="))
        self.ok(self.relay("clients", "add", "10.1.1.5"))
        d = self.assertRelays("10.1.1.5", mechanism="tcp.smtp")
        self.assertEqual(len(d["trace"]), 1)


class Editing(RelayCase):
    def test_bad_input_changes_nothing(self):
        h = self.home
        self.ok(self.relay("rules", "allow", "10.1.1.", "-e", "RELAYCLIENT="))
        self.ok(self.relay("clients", "add", "192.168.1."))
        self.ok(self.relay("mailfrom", "add", "@trusted.example"))
        before = h.snapshot()
        cases = [
            (("rules", "allow", "10.1.1."), 9, "a rule for 10.1.1. exists already"),
            (("rules", "allow", "10.1.1.50-1"), 65, "invalid tcp.smtp address '10.1.1.50-1'"),
            (("rules", "allow", "1.2.3.4", "-e", "NOEQUALS"), 64, "expected VAR=VALUE"),
            (("rules", "allow", "1.2.3.4", "-e", "1X=y"), 65, "invalid variable name '1X'"),
            (("rules", "deny", "1.2.3.4", "-e", "A=b"), 109, None),   # deny takes no --env at all
            (("rules", "remove", "10.9.9."), 6, "no rule for 10.9.9."),
            (("clients", "add", "192.168.1.:"), 9, "192.168.1. is listed already"),
            (("clients", "add", "300.1.1.1"), 65, "invalid relayclients entry '300.1.1.1'"),
            (("clients", "add", "10.1.1.1:a b"), 65, "must not contain blanks"),
            (("clients", "remove", "192.168.2."), 6, "no entry for 192.168.2."),
            (("domains", "add", "bad..example"), 65, "invalid relaydomains entry"),
            (("mailfrom", "add", "not-an-address"), 65, "invalid relaymailfrom entry"),
            (("mailfrom", "add", "@TRUSTED.example"), 9, "is listed already"),
            (("grant", "tim@example.com", "999.1.1.1"), 65, "invalid IP address '999.1.1.1'"),
            (("grant", "not an address", "10.1.1.1"), 65, None),
            (("test", "not-an-ip"), 65, "invalid IP address"),
        ]
        for args, code, text in cases:
            with self.subTest(args=args):
                p = self.relay(*args)
                err = p.stderr.decode()
                if code == 109:
                    self.assertEqual(p.returncode, 64, err)
                    continue
                self.assertEqual(p.returncode, code, err)
                self.assertEqual(err.count("\n"), 1, err)
                self.assertTrue(err.startswith("qmailctl: "), err)
                if text:
                    self.assertIn(text, err)
        self.assertEqual(h.snapshot(), before)

    def test_a_broken_tcp_smtp_is_named_and_kept(self):
        h = self.home
        h.write("etc/tcp.smtp", "127.0.0.1:allow\n10.0.0.1:bogus\n")
        before = h.snapshot()
        p = self.relay("rules", "allow", "10.1.1.", "-e", "RELAYCLIENT=")
        self.assertEqual(p.returncode, 65)
        self.assertIn("%s:2:" % h.path("etc/tcp.smtp"), p.stderr.decode())
        self.assertEqual(h.snapshot(), before)

    def test_dry_run_and_json(self):
        h = self.home
        before = h.snapshot()
        p = self.ok(self.relay("rules", "allow", "10.1.1.", "-e", "RELAYCLIENT=", "--dry-run", "--json"))
        j = json.loads(p.stdout)
        self.assertEqual(j["status"], "dry-run")
        self.assertEqual(j["rule"], '10.1.1.:allow,RELAYCLIENT=""')
        self.assertEqual(j["steps"], ["write " + h.path("etc/tcp.smtp"), "write " + h.path("etc/tcp.smtp.cdb")])
        self.ok(self.relay("clients", "add", "10.2.2.", "--dry-run"))
        self.ok(self.relay("grant", "tim@example.com", "10.3.3.3", "--dry-run"))
        self.assertEqual(h.snapshot(), before)
        if MYSQL:
            self.assertEqual(h.rows("SELECT COUNT(*) FROM relay"), [["0"]])
        j = json.loads(self.ok(self.relay("rules", "allow", "default", "--json")).stdout)
        self.assertEqual(j["rule"], ":allow")
        rules = [json.loads(l) for l in self.ok(self.relay("rules", "list", "--json")).stdout.splitlines()]
        self.assertEqual(rules, [{"line": 1, "address": "", "action": "allow", "env": {}, "text": ":allow"}])

    def test_lists(self):
        self.ok(self.relay("clients", "add", "10.1.1."))
        self.ok(self.relay("domains", "add", ".example.net"))
        self.assertEqual(self.ok(self.relay("clients", "list")).stdout, b"10.1.1.:\n")
        j = json.loads(self.ok(self.relay("domains", "list", "--json")).stdout)
        self.assertEqual(j, {"entry": ".example.net:", "file": self.home.path("control/relaydomains")})
        self.assertEqual(self.ok(self.relay("mailfrom", "list")).stdout, b"")


class ClearOpenSmtp(RelayCase):
    def setUp(self):
        super().setUp()
        self.home.write("etc/tcp.smtp", "127.0.0.1:allow,RELAYCLIENT=\"\"\n")

    def grants(self):
        return sorted((g["email"], g["ip"]) for g in
                      map(json.loads, self.ok(self.relay("grants", "--all", "--json")).stdout.splitlines()))

    def test_stale_grants_go_fresh_ones_stay(self):
        h = self.home
        for i in range(6):
            self.ok(self.relay("grant", "u%d@example.com" % i, "10.0.0.%d" % i))
        self.age_grants(3600)        # 60 min old: expired (not newer than the window)
        for i in range(6, 10):
            self.ok(self.relay("grant", "u%d@example.com" % i, "10.0.0.%d" % i))
        p = self.ok(h.run("clearopensmtp", "--json"))
        j = json.loads(p.stdout)
        self.assertEqual((j["deleted"], j["kept"], j["rules_rebuilt"], j["minutes"]), (6, 4, True, 60))
        self.assertEqual(self.grants(), [("u%d@example.com" % i, "10.0.0.%d" % i) for i in range(6, 10)])
        self.assertRefused("10.0.0.1", "--sender", "u1@example.com")
        self.assertRelays("10.0.0.7", "--sender", "u7@example.com", mechanism="relay-grant")
        # --minutes and RELAY_CLEAR_MINUTES set the window
        self.age_grants(600)
        j = json.loads(self.ok(h.run("clearopensmtp", "--json", "--minutes", "11")).stdout)
        self.assertEqual((j["deleted"], j["kept"]), (0, 4))
        j = json.loads(self.ok(h.run("clearopensmtp", "--json", env=h.env(RELAY_CLEAR_MINUTES="10"))).stdout)
        self.assertEqual((j["deleted"], j["kept"], j["minutes"]), (4, 0, 10))
        p = self.ok(h.run("clearopensmtp"))
        self.assertRegex(p.stdout.decode(),
                         r"^deleted 0 grant\(s\) older than 60 min, kept 0; rebuilt tcp\.smtp\.cdb in \d+\.\d{3} s\n$")
        p = h.run("clearopensmtp", env=h.env(RELAY_CLEAR_MINUTES="soon"))
        self.assertEqual(p.returncode, 78, p.stderr)

    def test_purge_only_and_rebuild_only(self):
        h = self.home
        self.ok(self.relay("grant", "a@example.com", "10.0.0.1"))
        self.age_grants(7200)
        h.write("etc/tcp.smtp", "127.0.0.1:allow,RELAYCLIENT=\"\"\n10.9.9.9:deny\n")  # not compiled yet
        p = self.ok(h.run("clearopensmtp", "-t"))
        self.assertEqual(len(self.grants()), 1)          # -t: nothing purged
        self.assertTrue(p.stdout.decode().startswith("rebuilt tcp.smtp.cdb"), p.stdout)
        self.assertEqual(self.decide("10.9.9.9")["verdict"], "denied")  # -t did rebuild
        j = json.loads(self.ok(h.run("clearopensmtp", "-s", "--json")).stdout)
        self.assertEqual((j["deleted"], j["rules_rebuilt"]), (1, False))
        self.assertEqual(self.grants(), [])
        if not MYSQL:
            # the purged grant stays in the cdb until a rebuild: -s alone leaves it
            self.assertEqual(self.decide("10.0.0.1")["mechanism"], "tcp.smtp")
            self.ok(h.run("clearopensmtp", "-t"))
            self.assertRefused("10.0.0.1")

    def test_second_instance_exits_75_at_once(self):
        h = self.home
        self.ok(h.run("clearopensmtp"))
        lock = h.path(".clearopensmtp.lock")
        with open(lock, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            before = h.snapshot()
            t = time.monotonic()
            p = h.run("clearopensmtp")
            self.assertLess(time.monotonic() - t, 2.0)
        self.assertEqual(p.returncode, 75)
        self.assertEqual(p.stderr.decode(), "clearopensmtp: another clearopensmtp is running (it holds %s); "
                                            "not started\n" % lock)
        self.assertEqual(h.snapshot(), before)


class Vchkpass(RelayCase):
    def setUp(self):
        super().setUp()
        self.ok(self.home.run("vadduser", "tim@example.com", "-C", "--password-stdin", input=b"tanstaaftanstaaf\n"))
        self.ok(self.home.run("vadduser", "joe@example.com", "--password-stdin", input=b"joe-password\n"))

    def check(self, data, *args, env=None, program=None, user=None):
        """Runs vchkpass with `data` on descriptor 3 (as the uid `user`, when given); returns the process."""
        r0, w = os.pipe()
        os.write(w, data)
        os.close(w)
        r = fcntl.fcntl(r0, fcntl.F_DUPFD, 4)  # 4-9 (dash reads one digit), not 3 itself
        os.close(r0)

        argv = [tool("vchkpass") if user is None else os.path.join(shared_bin(), "vchkpass")] + list(args)
        if program:
            argv += ["--"] + program
        if user is not None:
            argv = as_user(user, argv)
        # the shell puts the pipe on descriptor 3, as qmail-smtpd and Dovecot do
        argv = ["sh", "-c", 'exec "$@" 3<&%d %d<&-' % (r, r), "sh"] + argv
        try:
            return subprocess.run(argv, env=env or self.home.env(), capture_output=True, pass_fds=(r,), timeout=60)
        finally:
            os.close(r)

    def test_login_through_an_alias_domain(self):
        """vaddaliasdomain(8): a login as user@alias is user@domain's."""
        self.ok(self.home.run("vaddaliasdomain", "alias.example", "example.com"))
        self.assertEqual(self.check(b"tim@alias.example\0tanstaaftanstaaf\0\0", program=["true"]).returncode, 0)
        self.assertEqual(self.check(b"tim@alias.example\0wrong-password\0\0", program=["true"]).returncode, 1)

    def test_passwords(self):
        p = self.check(b"tim@example.com\0tanstaaftanstaaf\0\0", program=["sh", "-c", 'echo "$USER $HOME $PWD"'])
        self.assertEqual(p.returncode, 0, p.stderr)
        home = self.home.user_record("example.com", "tim")[5]
        self.assertEqual(p.stdout.decode(), "tim@example.com %s %s\n" % (home, home))
        p = self.check(b"tim@example.com\0wrong\0\0", program=["sh", "-c", "echo RAN"])
        self.assertEqual((p.returncode, p.stdout), (1, b""))
        self.assertIn(b"wrong password for tim@example.com", p.stderr)
        p = self.check(b"ghost@example.com\0tanstaaftanstaaf\0\0", program=["true"])
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"no mailbox ghost@example.com", p.stderr)
        p = self.check(b"tim@nowhere.example\0x\0\0")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(self.check(b"TIM@Example.COM\0tanstaaftanstaaf\0\0").returncode, 0)
        # PROGRAM's arguments reach it untouched, options or not, with or without --
        ok = b"tim@example.com\0tanstaaftanstaaf\0\0"
        p = self.check(ok, program=["sh", "-c", 'printf "%s|" "$@"', "x", "-c", "-v", "--json"])   # after --
        self.assertEqual((p.returncode, p.stdout), (0, b"-c|-v|--json|"), p.stderr)
        p = self.check(ok, "-s", "imap", "sh", "-c", 'printf "%s|" "$0" "$@"', "-s", "--grant", "--")  # no --
        self.assertEqual((p.returncode, p.stdout), (0, b"-s|--grant|--|"), p.stderr)
        # the program's own status is the result
        self.assertEqual(self.check(b"tim@example.com\0tanstaaftanstaaf\0\0", program=["sh", "-c", "exit 7"])
                         .returncode, 7)

    def test_cram_md5_rfc2195_vector(self):
        challenge = b"<1896.697170952@postoffice.reston.mci.net>"
        digest = b"b913a602c7eda7a495b4e6e7334d3890"
        self.assertEqual(self.check(b"tim@example.com\0" + challenge + b"\0" + digest + b"\0\3\0").returncode, 0)
        # without IndiMail's method field the data is a password, whatever it looks like
        self.assertEqual(self.check(b"tim@example.com\0" + challenge + b"\0" + digest + b"\0").returncode, 1)
        bad = b"b913a602c7eda7a495b4e6e7334d3891"
        self.assertEqual(self.check(b"tim@example.com\0" + challenge + b"\0" + bad + b"\0\3\0").returncode, 1)
        # joe was added without -C: no clear text, so CRAM-MD5 cannot work for him
        p = self.check(b"joe@example.com\0" + challenge + b"\0" + digest + b"\0\3\0")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"no clear-text credentials", p.stderr)
        # vadddomain -C does the same for the postmaster
        self.ok(self.home.run("vadddomain", "cram.example", "-C", "--password-stdin", input=b"pm-secret\n"))
        pm_digest = hmac.new(b"pm-secret", challenge, hashlib.md5).hexdigest().encode()
        p = self.check(b"postmaster@cram.example\0" + challenge + b"\0" + pm_digest + b"\0\3\0")
        self.assertEqual(p.returncode, 0, p.stderr)
        # vpasswd without -C drops the old clear text; with -C it keeps the new one
        self.ok(self.home.run("vpasswd", "tim@example.com", "--password-stdin", input=b"new-password\n"))
        self.assertEqual(self.check(b"tim@example.com\0" + challenge + b"\0" + digest + b"\0\3\0").returncode, 1)
        self.ok(self.home.run("vpasswd", "-C", "tim@example.com", "--password-stdin", input=b"tanstaaftanstaaf\n"))
        self.assertEqual(self.check(b"tim@example.com\0" + challenge + b"\0" + digest + b"\0\3\0").returncode, 0)

    def test_flags_per_service(self):
        h = self.home
        ok = b"joe@example.com\0joe-password\0\0"
        self.ok(h.run("vmoduser", "-s", "joe@example.com"))    # NO_SMTP
        self.assertEqual(self.check(ok).returncode, 1)
        self.assertEqual(self.check(ok, "--service", "pop3").returncode, 0)
        self.ok(h.run("vmoduser", "--clear", "no-smtp", "-p", "-i", "joe@example.com"))
        self.assertEqual(self.check(ok).returncode, 0)
        self.assertEqual(self.check(ok, "-s", "pop3").returncode, 1)
        self.assertEqual(self.check(ok, "-s", "imap").returncode, 1)
        p = self.check(b"joe@example.com\0wrong\0\0", "-s", "imap")
        self.assertIn(b"wrong password", p.stderr)     # the flag is not revealed before the password
        self.ok(h.run("vmoduser", "--clear", "no-pop", "--clear", "no-imap", "-r", "joe@example.com"))
        p = self.check(ok, program=["true"])
        self.assertEqual(p.returncode, 3, p.stderr)    # smtp: authenticated, may not relay
        # Dovecot's submission service would read 3 as "unknown user", and cannot hold it to local mail
        p = self.check(ok, env=h.env(SERVICE="submission"))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"NO_RELAY is set, and Dovecot's submission service cannot keep it to local recipients",
                      p.stderr)
        self.assertEqual(self.check(ok, "-s", "submission", env=h.env(SERVICE="submission")).returncode, 3)
        p = self.check(ok, "-s", "imap", "--grant", env=h.env(TCPREMOTEIP="10.4.4.4"))
        self.assertEqual(p.returncode, 0)
        self.assertEqual(self.ok(self.relay("grants")).stdout, b"")   # no grant for NO_RELAY

    def test_bad_input(self):
        self.assertEqual(self.check(b"").returncode, 2)
        self.assertEqual(self.check(b"only-a-user\0").returncode, 2)
        self.assertEqual(self.check(b"\0pw\0").returncode, 2)
        p = subprocess.run([tool("vchkpass")], env=self.home.env(), capture_output=True, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(b"cannot read the login from descriptor 3", p.stderr)
        p = self.check(b"tim@example.com\0tanstaaftanstaaf\0\0", "--service", "ftp")
        self.assertEqual(p.returncode, 64)
        p = self.check(b"tim@example.com\0tanstaaftanstaaf\0\0", program=["/nonexistent/program"])
        self.assertEqual(p.returncode, 111)

    def test_service_from_dovecots_environment(self):
        h = self.home
        ok = b"joe@example.com\0joe-password\0\0"
        self.ok(h.run("vmoduser", "-p", "joe@example.com"))    # NO_POP
        # one passdb serves IMAP and POP3: without -s, Dovecot's SERVICE says which login this is
        self.assertEqual(self.check(ok, env=h.env(SERVICE="pop3")).returncode, 1)
        self.assertEqual(self.check(ok, env=h.env(SERVICE="imap")).returncode, 0)
        self.assertEqual(self.check(ok, "-s", "imap", env=h.env(SERVICE="pop3")).returncode, 0)  # -s wins
        self.ok(h.run("vmoduser", "--clear", "no-pop", "-s", "joe@example.com"))  # NO_SMTP
        self.assertEqual(self.check(ok, env=h.env(SERVICE="submission")).returncode, 1)  # submission is SMTP
        self.assertEqual(self.check(ok).returncode, 1)                                   # no SERVICE: smtp
        self.assertEqual(self.check(ok, env=h.env(SERVICE="pop3")).returncode, 0)
        # a service vchkpass does not know has no flag to check: refused, and the log says why
        p = self.check(ok, env=h.env(SERVICE="sieve"), program=["sh", "-c", "echo RAN"])
        self.assertEqual((p.returncode, p.stdout), (1, b""))
        self.assertIn(b"SERVICE=sieve is not smtp, submission, pop3 or imap", p.stderr)

    def test_userdb_fields_for_dovecot(self):
        h = self.home
        show = ["sh", "-c", 'echo "$USER|$HOME|$userdb_uid|$userdb_gid|$userdb_mail|$EXTRA|${AUTHORIZED-unset}"']
        home = h.user_record("example.com", "joe")[5]
        owner = os.stat(h.path("domains", "example.com"))
        want = "joe@example.com|%s|%d|%d|maildir:%s/Maildir|" % (home, owner.st_uid, owner.st_gid, home)
        p = self.check(b"joe@example.com\0joe-password\0\0", env=h.env(SERVICE="imap", EXTRA="userdb_quota_rule"),
                       program=show)
        self.assertEqual(p.stdout.decode(), want + "userdb_quota_rule userdb_uid userdb_gid userdb_mail|unset\n",
                         p.stderr)
        # Dovecot's userdb lookup: AUTHORIZED=1 and no password; found: AUTHORIZED=2 for checkpassword-reply
        p = self.check(b"joe@example.com\0\0\0", env=h.env(SERVICE="lmtp", AUTHORIZED="1"), program=show)
        self.assertEqual((p.returncode, p.stdout.decode()), (0, want + "userdb_uid userdb_gid userdb_mail|2\n"),
                         p.stderr)
        # unknown: 3, Dovecot's "user unknown" (1 would be an internal failure to it); the flags do not apply
        p = self.check(b"ghost@example.com\0\0\0", env=h.env(SERVICE="lmtp", AUTHORIZED="1"), program=show)
        self.assertEqual((p.returncode, p.stdout), (3, b""))
        self.assertIn(b"userdb lookup refused: no mailbox ghost@example.com", p.stderr)
        self.ok(h.run("vmoduser", "-p", "-i", "joe@example.com"))
        self.assertEqual(self.check(b"joe@example.com\0\0\0", env=h.env(AUTHORIZED="1")).returncode, 0)
        # a lookup never checks a password, so one that comes with a password is refused
        p = self.check(b"joe@example.com\0joe-password\0\0", env=h.env(AUTHORIZED="1"), program=show)
        self.assertEqual((p.returncode, p.stdout), (3, b""))
        # stored credentials (for CRAM-MD5 through Dovecot) are not handed out: a temporary failure, logged
        p = self.check(b"joe@example.com\0\0\0", env=h.env(AUTHORIZED="1", CREDENTIALS_LOOKUP="1", SCHEME="CRAM-MD5"))
        self.assertEqual(p.returncode, 111)
        self.assertIn(b"stored credentials", p.stderr)
        # malformed data in a lookup is never 2, which would mean "found"
        self.assertEqual(self.check(b"", env=h.env(AUTHORIZED="1")).returncode, 111)

    @unittest.skipUnless(os.geteuid() == 0, "runs vchkpass as another user")
    def test_a_store_it_cannot_read_is_a_temporary_failure(self):
        h = self.home
        ok = b"joe@example.com\0joe-password\0\0"
        if MYSQL:
            os.chmod(h.path("control/host.mysql"), 0o600)      # not the files store instead
            unreadable = h.path("control/host.mysql")
        else:
            unreadable = h.path("domains/example.com")        # 0750, the domain's owner
        for env in (h.env(SERVICE="imap"), h.env(SERVICE="lmtp", AUTHORIZED="1")):
            p = self.check(ok if "AUTHORIZED" not in env else b"joe@example.com\0\0\0", env=env, user=NOBODY)
            self.assertEqual(p.returncode, 111, p.stderr)
            self.assertIn(b"temporary failure: ", p.stderr)
            self.assertIn(unreadable.encode(), p.stderr)
            self.assertIn(b"Permission denied", p.stderr)
            self.assertNotIn(b"no mailbox", p.stderr)

    def test_a_fresh_qmailhome_keeps_grants(self):
        h = self.home
        shutil.rmtree(h.path("etc"))       # vadddomain on an empty QMAILHOME makes no etc/
        p = self.check(b"joe@example.com\0joe-password\0\0", "-s", "pop3", "--grant",
                       env=h.env(TCPREMOTEIP="203.0.113.60"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, b"")
        self.assertRelays("203.0.113.60", "--sender", "joe@example.com", mechanism="relay-grant")
        if not MYSQL:
            self.assertEqual(oct(os.stat(h.path("etc")).st_mode & 0o7777), "0o755")
            self.assertIn(b"203.0.113.60:allow", h.read("etc/open-smtp"))

    def test_pop_login_records_a_grant(self):
        h = self.home
        # IndiMail's service files set OPEN_SMTP to their own file: it switches grants on, and they still
        # go where qmailctl and clearopensmtp look (beside tcp.smtp)
        indimail_file = "/etc/indimail/tcp/open-smtp"
        existed = os.path.exists(indimail_file)
        env = h.env(TCPREMOTEIP="203.0.113.44", OPEN_SMTP=indimail_file)
        self.assertRefused("203.0.113.44", "--sender", "joe@example.com")
        p = self.check(b"joe@example.com\0joe-password\0\0", "-s", "pop3", env=env, program=["true"])
        self.assertEqual(p.returncode, 0, p.stderr)
        d = self.assertRelays("203.0.113.44", "--sender", "joe@example.com", mechanism="relay-grant")
        self.assertEqual(d["text"], "joe@example.com 203.0.113.44")
        # NORELAY, --no-grant, SMTP logins and failed logins record nothing
        for env2, args, data in ((dict(env, TCPREMOTEIP="203.0.113.45", NORELAY="1"), ["-s", "pop3"], b"joe-password"),
                                 (dict(env, TCPREMOTEIP="203.0.113.46"), ["-s", "imap", "--no-grant"], b"joe-password"),
                                 (dict(env, TCPREMOTEIP="203.0.113.47"), [], b"joe-password"),
                                 (dict(env, TCPREMOTEIP="203.0.113.48"), ["-s", "pop3"], b"wrong")):
            self.check(b"joe@example.com\0" + data + b"\0\0", *args, env=env2)
        ips = [g["ip"] for g in map(json.loads, self.ok(self.relay("grants", "--json")).stdout.splitlines())]
        self.assertEqual(ips, ["203.0.113.44"])
        self.assertEqual(os.path.exists(indimail_file), existed)
        if not MYSQL:
            self.assertIn(b"203.0.113.44:allow", h.read("etc/open-smtp"))


class Packaging(unittest.TestCase):
    def test_cron_line(self):
        with open(os.path.join(SOURCE_DIR, "packaging", "cron.d", "qvmail")) as f:
            lines = [l for l in f.read().splitlines() if l and not l.startswith("#")]
        self.assertEqual(len(lines), 2)  # clearopensmtp, and qmailctl sync (test_shared_domains)
        fields = [l for l in lines if "clearopensmtp" in l][0].split(None, 6)
        self.assertEqual(fields[:6], ["5,35", "*", "*", "*", "*", "root"])
        # only where systemd does not run clearopensmtp.timer instead (never both)
        self.assertEqual(fields[6], "[ -d /run/systemd/system ] || /usr/sbin/clearopensmtp -q")
        # as cron's shell runs it, against a scratch home: it does the work unless systemd is init
        home = Home()
        self.addCleanup(home.cleanup)
        home.write("etc/tcp.smtp", "127.0.0.1:allow\n")
        p = subprocess.run(["sh", "-c", fields[6].replace("/usr/sbin/", BIN.rstrip("/") + "/")], env=home.env(),
                           capture_output=True)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, b"", b""))
        self.assertEqual(os.path.exists(home.path("etc/tcp.smtp.cdb")), not os.path.isdir("/run/systemd/system"))
        # qmailctl sync every minute, likewise; quiet on a host with nothing to sync (the files store)
        fields = [l for l in lines if "qmailctl sync" in l][0].split(None, 6)
        self.assertEqual(fields[:6], ["*", "*", "*", "*", "*", "root"])
        self.assertEqual(fields[6], "[ -d /run/systemd/system ] || /usr/sbin/qmailctl sync -q --lock-wait 30")
        p = subprocess.run(["sh", "-c", fields[6].replace("/usr/sbin/", BIN.rstrip("/") + "/")], env=home.env(),
                           capture_output=True)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, b"", b""))

    def test_systemd_units_verify(self):
        if shutil.which("systemd-analyze") is None:
            self.fail("systemd-analyze is missing (scripts/test installs systemd)")
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        src = os.path.join(SOURCE_DIR, "packaging", "systemd")
        for name in ("clearopensmtp.service", "clearopensmtp.timer"):
            with open(os.path.join(src, name)) as f:
                text = f.read()
            if name.endswith(".timer"):
                self.assertIn("OnCalendar=*:5,35\n", text)
                self.assertIn("Persistent=true\n", text)
            # verify needs ExecStart to exist: point it at the build
            with open(os.path.join(d, name), "w") as f:
                f.write(text.replace("/usr/sbin/", BIN.rstrip("/") + "/"))
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", os.path.join(d, "clearopensmtp.service"),
                            os.path.join(d, "clearopensmtp.timer")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run(["systemd-analyze", "calendar", "--iterations=3", "*:5,35"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        minutes = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ \S+ \d\d:(\d\d):00", p.stdout)
        self.assertEqual(len(minutes), 3, p.stdout)
        self.assertLessEqual(set(minutes), {"05", "35"})


if __name__ == "__main__":
    unittest.main()
