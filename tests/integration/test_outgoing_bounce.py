"""qmailctl outgoingip and qmailctl bounce: the files they edit, what they refuse, and the choices and
environments they explain."""
import json
import os
import stat
import unittest

from qvtest import HomeTestCase


class OutgoingIp(HomeTestCase):
    def qc(self, *args, **kw):
        return self.home.run("qmailctl", "outgoingip", *args, **kw)

    def test_add_list_remove(self):
        h = self.home
        p = self.ok(self.qc("add", "127.0.0.1", "192.0.2.10", "2001:DB8:0::1"))
        self.assertEqual(p.stdout.decode(),
                         "added 127.0.0.1, 192.0.2.10, 2001:db8::1 to %s\n" % h.path("control/outgoingip"))
        # addresses of no local interface are taken, with a warning
        self.assertIn(b"warning: 192.0.2.10 is not configured on any interface of this host", p.stderr)
        self.assertNotIn(b"127.0.0.1 is not", p.stderr)
        self.assertEqual(h.read("control/outgoingip"), b"127.0.0.1\n192.0.2.10\n2001:db8::1\n")
        rows = [json.loads(l) for l in self.ok(self.qc("list", "--json")).stdout.splitlines()]
        self.assertEqual([(r["ip"], r["local"]) for r in rows],
                         [("127.0.0.1", True), ("192.0.2.10", False), ("2001:db8::1", False)])
        # a second add of the same addresses, in another spelling, changes nothing
        before = h.snapshot()
        p = self.qc("add", "::ffff:127.0.0.1", "2001:db8::0:1")
        self.assertEqual(p.returncode, 9, p.stderr)
        self.assertEqual(h.snapshot(), before)
        # some new, some there: the new ones go in, the others are named
        p = self.ok(self.qc("add", "192.0.2.11", "192.0.2.10"))
        self.assertIn(b"192.0.2.10 is listed already", p.stderr)
        self.ok(self.qc("remove", "2001:db8::1", "192.0.2.11"))
        self.assertEqual(h.read("control/outgoingip"), b"127.0.0.1\n192.0.2.10\n")
        # per destination host
        self.ok(self.qc("add", "--host", "Gmail.COM", "198.51.100.7"))
        self.assertEqual(h.read("control/outgoingip.gmail.com"), b"198.51.100.7\n")
        self.assertEqual(self.ok(self.qc("list", "--host", "gmail.com")).stdout, b"198.51.100.7\t(not an address of this host)\n")
        self.ok(self.qc("remove", "--host", "gmail.com", "198.51.100.7"))
        self.assertFalse(os.path.exists(h.path("control/outgoingip.gmail.com")))  # nothing left: gone

    def test_bad_input_changes_nothing(self):
        h = self.home
        h.write("control/outgoingip", "# ours\n127.0.0.1\n")
        before = h.snapshot()
        for code, args, message in [
            (65, ["add", "300.1.1.1"], "invalid IP address '300.1.1.1'"),
            (65, ["add", "127.0.0.2", "not-an-ip"], "invalid IP address 'not-an-ip'"),  # all checked first
            (65, ["add", "--host", "../etc", "127.0.0.2"], "invalid host '../etc'"),
            (65, ["add", "--host", "a b", "127.0.0.2"], "invalid host"),
            (65, ["add", "--host", "a" * 245, "127.0.0.2"], "longer than 244 characters"),
            (6, ["remove", "192.0.2.99"], "does not list 192.0.2.99"),
            (9, ["add", "127.0.0.1"], "lists 127.0.0.1 already"),
            (64, ["add"], "IP is required"),
            (64, ["pick"], "HOST is required"),
            (64, ["pick", "gmail.com", "--count", "2000000"], "at most 1000000"),
        ]:
            with self.subTest(args=args):
                p = self.qc(*args)
                self.assertEqual(p.returncode, code, p.stderr)
                lines = p.stderr.decode().splitlines()
                self.assertEqual(len(lines), 1, lines)
                self.assertIn(message, lines[0])
                self.assertEqual(h.snapshot(), before)
        self.ok(self.qc("add", "-n", "127.0.0.2"))
        self.assertEqual(h.snapshot(), before)

    def test_pick(self):
        h = self.home
        h.write("control/outgoingip", "# three addresses\n192.0.2.1\n\n192.0.2.2\n#192.0.2.9\n192.0.2.3\n")
        d = json.loads(self.ok(self.qc("pick", "gmail.com", "--count", "30000", "--json")).stdout)
        self.assertEqual((d["source"], d["file"]), ("global file", h.path("control/outgoingip")))
        self.assertEqual(d["candidates"], ["192.0.2.1", "192.0.2.2", "192.0.2.3"])
        self.assertEqual(sorted(d["picks"]), ["192.0.2.1", "192.0.2.2", "192.0.2.3"])  # never a comment
        for ip, n in d["picks"].items():
            self.assertLess(abs(n - 10000), 500, (ip, n))  # within 5% of uniform
        # an empty host file falls through; a host file with addresses wins; OUTGOINGIP always wins
        h.write("control/outgoingip.gmail.com", "# none yet\n")
        self.assertEqual(json.loads(self.qc("pick", "gmail.com", "--json").stdout)["source"], "global file")
        h.write("control/outgoingip.gmail.com", "198.51.100.7\n")
        d = json.loads(self.qc("pick", "GMAIL.com", "--json").stdout)
        self.assertEqual((d["source"], d["ip"]), ("host file", "198.51.100.7"))
        env = h.env(OUTGOINGIP="203.0.113.5")
        d = json.loads(self.qc("pick", "gmail.com", "--json", env=env).stdout)
        self.assertEqual((d["source"], d["ip"]), ("OUTGOINGIP", "203.0.113.5"))
        h.write("service/qmail-send/variables/OUTGOINGIP", "203.0.113.6\n")  # qmail-remote inherits it
        p = self.ok(self.qc("pick", "gmail.com"))
        self.assertIn(b"OUTGOINGIP of qmail-send", p.stdout)
        self.assertIn(b"chosen: 203.0.113.6", p.stdout)
        os.remove(h.path("service/qmail-send/variables/OUTGOINGIP"))
        os.remove(h.path("control/outgoingip"))
        os.remove(h.path("control/outgoingip.gmail.com"))
        p = self.ok(self.qc("pick", "gmail.com"))
        self.assertEqual(p.stdout, b"delivery to gmail.com: no outgoingip file with an address: the kernel chooses\n")

    def test_check_reports_lines_that_are_not_addresses(self):
        h = self.home
        h.write("control/outgoingip.example.org", "192.0.2.1\n192.0.2.300\n")
        p = h.run("qmailctl", "check")
        self.assertEqual(p.returncode, 1)
        self.assertIn("problem: %s:2: invalid IP address '192.0.2.300'" % h.path("control/outgoingip.example.org"),
                      p.stdout.decode())


class BounceRules(HomeTestCase):
    def rules(self, *args, **kw):
        return self.home.run("qmailctl", "bounce", "rules", *args, **kw)

    def test_indimails_example_and_the_rest(self):
        h = self.home
        self.ok(self.rules("add", "answerme@save*", "CONTROLDIR=control2", "QMAILQUEUE="))
        self.ok(self.rules("add", "*@example.com", "QMAILQUEUE=/bin/one", "NOTE=a,b"))
        self.ok(self.rules("add", "joe@*", "NOTE=second"))
        self.ok(self.rules("add", "<>", "QMAILQUEUE=/var/indimail/bin/qmail-nullqueue"))
        self.assertEqual(h.read("control/bounce.envrules").decode(),
                         "answerme@save*:CONTROLDIR=control2,QMAILQUEUE=\n"
                         "*@example.com:QMAILQUEUE=/bin/one,NOTE=a\\,b\n"
                         "joe@*:NOTE=second\n"
                         "<>:QMAILQUEUE=/var/indimail/bin/qmail-nullqueue\n")
        self.assertEqual(self.ok(self.rules("list")).stdout.decode().splitlines()[1],
                         "2\t*@example.com:QMAILQUEUE=/bin/one,NOTE=a\\,b")
        # IndiMail's documented example: another control directory, and the default queue
        p = self.ok(self.rules("test", "answerme@save.example.org"))
        self.assertEqual(p.stdout.decode().splitlines()[-3:], ["    CONTROLDIR=control2", "    unset QMAILQUEUE",
                                                                "result: CONTROLDIR=control2; QMAILQUEUE unset"])
        # every matching line applies, in order
        d = json.loads(self.ok(self.rules("test", "joe@example.com", "--json")).stdout)
        self.assertEqual([m["line"] for m in d["matched"]], [2, 3])
        self.assertEqual(d["environment"], {"QMAILQUEUE": "/bin/one", "NOTE": "second"})
        # the null sender
        d = json.loads(self.ok(self.rules("test", "<>", "--json")).stdout)
        self.assertEqual(d["environment"], {"QMAILQUEUE": "/var/indimail/bin/qmail-nullqueue"})
        # wildmat is anchored and case-sensitive: no match, exit 1
        p = self.rules("test", "Answerme@save.example.org")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"no rule matches", p.stdout)
        self.ok(self.rules("remove", "2"))
        self.assertNotIn(b"example.com", h.read("control/bounce.envrules"))
        self.assertEqual(self.rules("remove", "9").returncode, 6)
        # a comment or a blank line is not a rule: nothing goes
        h.write("control/bounce.envrules", "# keep me\n\nx@*:A=1\n")
        before = h.snapshot()
        for line in ("1", "2"):
            p = self.rules("remove", line)
            self.assertEqual(p.returncode, 6, p.stderr)
            self.assertIn(b"is not a rule", p.stderr)
            self.assertEqual(h.snapshot(), before)
        self.ok(self.rules("remove", "3"))
        self.assertEqual(h.read("control/bounce.envrules"), b"# keep me\n\n")

    def test_qregex_patterns(self):
        h = self.home
        env = h.env(QREGEX="1")
        self.ok(self.rules("add", "EXAMPLE\\.COM$", "HIT=1", env=env))
        p = self.rules("add", "(unclosed", "X=1", env=env)
        self.assertEqual(p.returncode, 65)
        self.assertIn(b"invalid regular expression", p.stderr)
        d = json.loads(self.ok(self.rules("test", "joe@example.com", "--json", env=env)).stdout)
        self.assertEqual((d["patterns"], d["environment"]), ("regex (QREGEX)", {"HIT": "1"}))
        # an empty regular expression would take every sender: refused ('<>' is the null sender)
        p = self.rules("add", "", "QMAILQUEUE=/bin/qmail-nullqueue", env=env)
        self.assertEqual(p.returncode, 65)
        self.assertIn(b"write <> for the null sender", p.stderr)
        # QREGEX among qmail-send's variables is where it counts for bounces
        h.write("service/qmail-send/variables/QREGEX", "1\n")
        p = self.ok(self.rules("test", "joe@EXAMPLE.com"))  # caseless, unanchored
        self.assertIn(b"regex (QREGEX) patterns of %s (the default; QREGEX of qmail-send)"
                      % h.path("control/bounce.envrules").encode(), p.stdout)
        self.assertEqual(self.rules("add", "(", "A=1").returncode, 65)  # read as qmail-send reads it
        # a hand-written pattern that does not compile is reported with its line
        h.write("control/bounce.envrules", h.read("control/bounce.envrules").decode() + "x(:A=1\n")
        p = h.run("qmailctl", "check")
        self.assertEqual(p.returncode, 1)
        self.assertIn("bounce.envrules:2: the pattern: invalid regular expression 'x('", p.stdout.decode())

    def test_malformed_rules_refused_and_reported(self):
        h = self.home
        h.write("control/bounce.envrules", "# rules\nok@*:A=1\n")
        before = h.snapshot()
        for args, message in [(["bad[", "X=1"], "'[' at 4 is not closed"),
                              (["x:y", "X=1"], "cannot hold ':'"),
                              (["#x", "X=1"], "cannot start with '#'"),
                              (["x", "1X=2"], "'1X' is not a variable name"),
                              (["x", "NOEQUALS"], "is not VAR=VALUE"),
                              (["x", "A=ends\\"], "cannot end with '\\'"),
                              (["ok@*", "A=1"], "has this rule already")]:
            with self.subTest(args=args):
                p = self.rules("add", *args)
                self.assertEqual(p.returncode, 9 if "already" in message else 65, p.stderr)
                self.assertEqual(len(p.stderr.splitlines()), 1)
                self.assertIn(message, p.stderr.decode())
                self.assertEqual(h.snapshot(), before)
        h.write("control/bounce.envrules", "# rules\nok@*:A=1\nno colon here\nbad[:B=2\n")
        p = h.run("qmailctl", "check")
        out = p.stdout.decode()
        self.assertIn("bounce.envrules:3: no ':' between the pattern and the variables", out)
        self.assertIn("bounce.envrules:4: the pattern 'bad[': '[' at 4 is not closed by ']'", out)
        # the good line still applies; list shows it and warns of the others
        p = self.ok(self.rules("list"))
        self.assertEqual(p.stdout, b"2\tok@*:A=1\n")
        self.assertEqual(len(p.stderr.splitlines()), 2)
        # BOUNCERULES names another file, under control/ when relative; qmail-send's own counts too
        env = h.env(BOUNCERULES="bounce2.envrules")
        self.ok(self.rules("add", "*", "Y=1", env=env))
        self.assertEqual(h.read("control/bounce2.envrules"), b"*:Y=1\n")
        h.write("service/qmail-send/variables/BOUNCERULES", "bounce2.envrules\n")
        self.assertEqual(self.ok(self.rules("list")).stdout, b"1\t*:Y=1\n")
        p = self.rules("list", env=h.env(BOUNCERULES="../../etc/passwd"))
        self.assertEqual(p.returncode, 78)
        self.assertIn(b"cannot leave its directory", p.stderr)


class BounceVariables(HomeTestCase):
    def test_processor_and_queue(self):
        h = self.home
        prog = h.write("bin/bounce-processor", "#!/bin/sh\nexit 0\n", mode=0o755)
        for cmd, var in (("processor", "BOUNCEPROCESSOR"), ("queue", "BOUNCEQUEUE")):
            with self.subTest(cmd=cmd):
                p = h.run("qmailctl", "bounce", cmd, "show")
                self.assertEqual((p.returncode, p.stdout.decode()), (1, var + " is not set\n"))
                self.ok(h.run("qmailctl", "bounce", cmd, "set", prog))
                f = h.path("service/qmail-send/variables", var)
                self.assertEqual(h.read(f), (prog + "\n").encode())
                self.assertEqual(oct(os.stat(f).st_mode & 0o777), "0o644")
                d = json.loads(self.ok(h.run("qmailctl", "bounce", cmd, "show", "--json")).stdout)
                self.assertEqual((d["value"], d["problem"]), (prog, None))
                before = h.snapshot()
                for bad, message in [("bin/bounce-processor", "is not an absolute path"),
                                     ("/nonexistent/prog", "No such file or directory"),
                                     (h.path("bin"), "is not a regular file"),
                                     (h.write("bin/plain", "x\n", mode=0o644), "is not executable")]:
                    before = h.snapshot()
                    p = h.run("qmailctl", "bounce", cmd, "set", bad)
                    self.assertEqual(p.returncode, 65, p.stderr)
                    self.assertIn(message, p.stderr.decode())
                    self.assertEqual(h.snapshot(), before)
                self.ok(h.run("qmailctl", "bounce", cmd, "unset"))
                self.assertFalse(os.path.exists(f))
                self.assertEqual(h.run("qmailctl", "bounce", cmd, "unset").returncode, 6)
        # a program that went away is reported
        self.ok(h.run("qmailctl", "bounce", "queue", "set", prog))
        os.chmod(prog, 0o644)
        p = h.run("qmailctl", "check")
        self.assertEqual(p.returncode, 1)
        self.assertIn("BOUNCEQUEUE (%s): %s is not executable" % (h.path("service/qmail-send/variables/BOUNCEQUEUE"),
                                                                  prog), p.stdout.decode())
        self.assertIn(b"is not executable", h.run("qmailctl", "bounce", "queue", "show").stderr)


if __name__ == "__main__":
    unittest.main()
