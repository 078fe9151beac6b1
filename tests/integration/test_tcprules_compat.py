"""qmailctl cdb against ucspi-tcp's tcprules, tinycdb's cdb and tcprulescheck.

Every rules file tcprules accepts must give a byte-identical cdb; every line it rejects must be
rejected too; lookups must agree with tcprulescheck.
"""
import json
import os
import random
import subprocess
import unittest

from qvtest import Home, HomeTestCase, require_programs

require_programs("tcprules", "tcprulescheck", "cdb")

WORKED = (
    "# comment\n"
    "127.0.0.1:allow,RELAYCLIENT=\"\"\n"
    "10.1.1.:allow,RELAYCLIENT=\"\",QMAILQUEUE=\"/var/qmail/bin/qmail-scanner-queue\"\n"
    "1.2.3.4-6:deny\n"
    "=mail.example.com:allow,RELAYCLIENT=\"\"\n"
    "joe@192.168.0.5:allow,X=/a=b,c/\n"
    ":allow\n"
)

ACCEPTED = [
    ("worked example", WORKED),
    ("quoting with any delimiter", "a:allow,A=\"x\",B=/y/,C=|z|,D='w',E=:v:,F=,u,,G=aba,H=\x01q\x01\n"),
    ("empty values", "1.2.3.4:allow,RELAYCLIENT=\"\",X=\"\"\n"),
    ("no escapes inside quotes", "x:allow,X=/a=b,c/,Y=\"a\\\\\"\n"),
    ("ranges", "1.2.3.37-53:deny\n10.2-3.:allow\n192.168.1-2.5:deny\n"),
    ("reversed range gives nothing", "1.2.3.9-4:deny\n:allow\n"),
    ("clamped range", "1.2.3.250-300:deny\n1.2.3.254-99999999999:allow\n"),
    ("empty range numbers", "1.2.3.-5:deny\n-:allow\n7-:deny\n"),
    ("leading zeros in a range", "1.2.3.04-05:deny\n"),
    ("host rules", "=mail.example.com:allow\n=.example.com:deny\n=:allow,HOSTKNOWN=\"1\"\n"),
    ("ident rules", "joe@1.2.3.4:allow\njoe@=host.example:deny\n@1.2.3.4:allow\n"),
    ("dash in host and ident rules is literal", "=a-b.example:deny\nx-y@1.2.3.4:allow\n"),
    ("leading whitespace kept", "  1.2.3.4:allow\n\t5.6.7.8:deny\n"),
    ("trailing whitespace stripped", "1.2.3.4:allow   \t \n:deny\t\n"),
    ("comments and blank lines", "# c\n\n   \n#1.2.3.4:deny\n\t\n:allow\n"),
    ("duplicate keys, first wins", "5.5.5.5:allow,A=\"first\"\n5.5.5.5:deny\n5.5.5.4-6:allow\n"),
    ("deny with variables", "1.2.3.4:deny,X=\"y\"\n"),
    ("deny's D and empty allow", "1.2.3.4:deny\n:allow\n"),
    ("no final newline", "1.2.3.4:deny"),
    ("lines without a colon are skipped", "garbage\n1.2.3.4:allow\nmore garbage\n"),
    ("empty file", ""),
    ("only comments", "# nothing here\n"),
    ("high bytes", b"\xff\x80:allow,N=\"\xe9t\xe9\"\n"),
    ("NUL bytes in address and value", b"1.2\x00.3:allow,A=\"x\x00y\"\n"),
    ("NUL ends a range number", b"1.2.3.4\x00-6:deny\n"),
    ("odd variable names", "x:allow,A B:C=\"v\",=\"\",a=b=\"c\"b\n"),
    ("very long line", "x:allow,A=\"" + "v" * 100000 + "\"\n"),
    ("many variables", "x:allow" + "".join(",V%d=\"%d\"" % (i, i) for i in range(500)) + "\n"),
]

REJECTED = [
    "x:allow,A=abc",       # unquoted value: 'a' is taken as the quote and never closed
    "x:allowx",
    "x:permit",
    "::1:allow",           # the first ':' ends the address
    "1.2.3.4:foo:allow",
    "x:allow,",
    "x:allow,A",
    "x:allow,A=",
    "x:allow,A=\"v\"junk",
    "x:allow\r",           # CRLF line endings
    "a-b:deny",            # not a number in a range
    "1.2.3.4x-5:deny",
    ":deny,X",
    ":",
    "x:",
    "x:ALLOW",
]


def tcprules(home, text):
    src = home.write("ref.rules", text)
    with open(src, "rb") as f:
        p = subprocess.run(["tcprules", home.path("ref.cdb"), home.path("ref.tmp")], stdin=f, capture_output=True)
    data = home.read("ref.cdb") if p.returncode == 0 else None
    if os.path.exists(home.path("ref.cdb")):
        os.unlink(home.path("ref.cdb"))
    return p.returncode, data


def cdb_dump(path):
    return subprocess.run(["cdb", "-d", path], capture_output=True, check=True).stdout


class HandWrittenCases(HomeTestCase):
    def compile(self, text):
        self.home.write("etc/tcp.smtp", text)
        return self.home.run("qmailctl", "cdb", "--force", "tcp.smtp")

    def test_accepted_files_give_identical_cdbs(self):
        for name, text in ACCEPTED:
            with self.subTest(name):
                rc, ref = tcprules(self.home, text)
                self.assertEqual(rc, 0, "tcprules rejected a case listed as accepted")
                p = self.compile(text)
                self.assertEqual(p.returncode, 0, p.stderr)
                ours = self.home.read("etc/tcp.smtp.cdb")
                self.assertEqual(ours, ref)
                self.assertEqual(cdb_dump(self.home.path("etc/tcp.smtp.cdb")),
                                 cdb_dump(self.home.write("ref-again.cdb", ref)))

    def test_rejected_lines_are_rejected_and_the_old_cdb_stays(self):
        good = "127.0.0.1:allow,RELAYCLIENT=\"\"\n"
        self.assertEqual(self.compile(good).returncode, 0)
        before = self.home.read("etc/tcp.smtp.cdb")
        for line in REJECTED:
            with self.subTest(line=line):
                rc, _ = tcprules(self.home, good + line + "\n")
                self.assertEqual(rc, 100, "tcprules accepted a case listed as rejected")
                p = self.compile(good + line + "\n")
                self.assertEqual(p.returncode, 65, p.stderr)
                err = p.stderr.decode("latin-1")
                self.assertEqual(err.count("\n"), 1, err)
                self.assertIn(self.home.path("etc/tcp.smtp") + ":2:", err)
                self.assertEqual(self.home.read("etc/tcp.smtp.cdb"), before)
                self.assertEqual(self.home.listing("etc"), ["tcp.smtp", "tcp.smtp.cdb"])


# ---- generated rules ----

def rand_ip(rng, parts=4):
    return ".".join(str(rng.randrange(256)) for _ in range(parts))


def rand_address(rng):
    kind = rng.randrange(12)
    if kind == 0:
        return rand_ip(rng)
    if kind == 1:
        return rand_ip(rng, rng.randrange(1, 4)) + "."
    if kind == 2:  # a range in the last or a middle position, sometimes reversed or clamped
        a, b = rng.randrange(300), rng.randrange(300)
        if rng.random() < 0.5:
            return "%s.%d-%d" % (rand_ip(rng, 3), a, b)
        return "%s.%d-%d." % (rand_ip(rng, 1), a % 40, b % 40)
    if kind == 3:
        return "=" + rng.choice(["mail", "mx", "a-b", "smtp1"]) + "." + rng.choice(["example.com", "example.org"])
    if kind == 4:
        return "=." + rng.choice(["example.com", "com", "org", "example.org"])
    if kind == 5:
        return "="
    if kind == 6:
        return rng.choice(["joe", "ann", "x-y"]) + "@" + rand_ip(rng)
    if kind == 7:
        return rng.choice(["joe", "ann"]) + "@=" + rng.choice(["h.example.com", "mx.example.org"])
    if kind == 8:
        return ""
    if kind == 9:
        return rng.choice([" ", "\t", "  "]) + rand_ip(rng)
    if kind == 10:
        return "%s.%s-%s" % (rand_ip(rng, 3), rng.choice(["", "0", "007"]), rng.choice(["", "3", "255"]))
    return rand_ip(rng, 2) + "." + str(rng.randrange(256)) + "."


VALUE_CHARS = "abcxyz019 ,=:;/\"'|-_.@\x7f\xe9\xff"


def rand_rule(rng):
    s = rand_address(rng) + ":" + rng.choice(["allow", "deny"])
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        name = rng.choice(["RELAYCLIENT", "QMAILQUEUE", "X", "SPAMFILTER", "A_B"])
        value = "".join(rng.choice(VALUE_CHARS) for _ in range(rng.randrange(0, 12)))
        quotes = [q for q in "\"'/|%#!" if q not in value]
        q = rng.choice(quotes)
        s += ",%s=%s%s%s" % (name, q, value, q)
    return s + rng.choice(["", "", " ", "\t "])


def rand_file(rng, rules):
    lines = []
    for _ in range(rules):
        r = rng.random()
        if r < 0.03:
            lines.append("# " + rand_rule(rng))
        elif r < 0.05:
            lines.append("")
        elif r < 0.06:
            lines.append("no colon on this line")
        else:
            lines.append(rand_rule(rng))
    return "\n".join(lines) + ("\n" if rng.random() < 0.8 else "")


class GeneratedFiles(HomeTestCase):
    def test_random_rules_files_give_identical_cdbs(self):
        rng = random.Random(20261125)
        for n, rules in enumerate([10, 100, 1000, 3000, 3000, 5000, 20000]):
            text = rand_file(rng, rules)
            with self.subTest(file=n, rules=rules):
                rc, ref = tcprules(self.home, text)
                self.assertEqual(rc, 0)
                self.home.write("etc/tcp.smtp", text)
                p = self.home.run("qmailctl", "cdb", "--force")
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(self.home.read("etc/tcp.smtp.cdb"), ref)

    def test_random_lines_are_accepted_and_rejected_alike(self):
        rng = random.Random(7)
        atoms = ["allow", "deny", ":", ",", "=", "\"", "/", "-", ".", "1", "2", "255", "300", "a", "@", " ", "\t",
                 "#", "\r", "X", "RELAYCLIENT", "\x00", "\xff"]
        outcomes = {0: 0, 65: 0}
        for i in range(400):
            line = "".join(rng.choice(atoms) for _ in range(rng.randrange(1, 10)))
            text = line + "\n"
            rc, ref = tcprules(self.home, text)
            self.home.write("etc/tcp.smtp", text)
            p = self.home.run("qmailctl", "cdb", "--force", "-q")
            with self.subTest(line=repr(line)):
                self.assertIn(rc, (0, 100))
                self.assertEqual(p.returncode, 0 if rc == 0 else 65, p.stderr)
                if rc == 0:
                    self.assertEqual(self.home.read("etc/tcp.smtp.cdb"), ref)
            outcomes[p.returncode] = outcomes.get(p.returncode, 0) + 1
        # the generator must exercise both outcomes, or this test proves nothing
        self.assertGreater(outcomes[0], 40)
        self.assertGreater(outcomes[65], 40)


def tcprulescheck(cdb, ip, host, info):
    env = {"PATH": os.environ["PATH"], "TCPREMOTEIP": ip}
    if host is not None:
        env["TCPREMOTEHOST"] = host
    if info is not None:
        env["TCPREMOTEINFO"] = info
    out = subprocess.run(["tcprulescheck", cdb], env=env, capture_output=True, check=True).stdout.decode("latin-1")
    lines = out.splitlines()
    rule = None if lines[0] == "default:" else lines[0][len("rule "):-1]
    envs = [l[len("set environment variable "):] for l in lines if l.startswith("set environment variable ")]
    decision = "deny" if lines[-1] == "deny connection" else "allow"
    return rule, decision, envs


class LookupsAgreeWithTcprulescheck(HomeTestCase):
    def test_generated_clients(self):
        rng = random.Random(99)
        rules = []
        for _ in range(400):
            kind = rng.randrange(8)
            ip3 = "10.%d.%d" % (rng.randrange(3), rng.randrange(4))
            addr = [
                lambda: "%s.%d" % (ip3, rng.randrange(10)),
                lambda: ip3 + ".",
                lambda: "10.%d." % rng.randrange(3),
                lambda: "%s.%d-%d" % (ip3, rng.randrange(10), rng.randrange(10)),
                lambda: "=" + rng.choice(["a.example.com", "b.example.com", "mx.example.org"]),
                lambda: "=." + rng.choice(["example.com", "com", "org"]),
                lambda: rng.choice(["joe", "ann"]) + "@" + "%s.%d" % (ip3, rng.randrange(10)),
                lambda: rng.choice(["joe", "ann"]) + "@=" + rng.choice(["a.example.com", "mx.example.org"]),
            ][kind]()
            env = "".join(",V%d=\"%d\"" % (j, rng.randrange(100)) for j in range(rng.randrange(3)))
            rules.append("%s:%s%s" % (addr, rng.choice(["allow", "deny"]), env))
        with_default = "\n".join(rules) + "\n=:allow,KNOWN=\"1\"\n:deny\n"
        without_default = "\n".join(rules) + "\n"
        for text in (with_default, without_default):
            self.home.write("etc/tcp.smtp", text)
            self.assertEqual(self.home.run("qmailctl", "cdb", "--force").returncode, 0)
            cdb = self.home.path("etc/tcp.smtp.cdb")
            seen = set()
            for _ in range(150):
                ip = "10.%d.%d.%d" % (rng.randrange(3), rng.randrange(4), rng.randrange(12))
                host = rng.choice([None, "a.example.com", "b.example.com", "mx.example.org", "z.net"])
                info = rng.choice([None, None, "joe", "ann"])
                args = ["qmailctl", "cdb", "--json", "--lookup", ip]
                if host is not None:
                    args += ["--host", host]
                if info is not None:
                    args += ["--info", info]
                p = self.home.run(*args)
                self.assertIn(p.returncode, (0, 1), p.stderr)
                ours = json.loads(p.stdout)
                rule, decision, envs = tcprulescheck(cdb, ip, host, info)
                with self.subTest(ip=ip, host=host, info=info):
                    self.assertEqual(ours["rule"], rule)
                    self.assertEqual(ours["decision"], decision)
                    self.assertEqual(p.returncode, 1 if decision == "deny" else 0)
                    if decision == "allow":
                        self.assertEqual(["%s=%s" % (e["name"], e["value"]) for e in ours["env"]], envs)
                seen.add((rule is None, decision))
            # both decisions and both matched and unmatched clients must have come up
            self.assertIn(False, {k[0] for k in seen})
            self.assertEqual({k[1] for k in seen}, {"allow", "deny"})


if __name__ == "__main__":
    unittest.main()
