"""valias: aliases shown, inserted, replaced and deleted on the store in use; hostile lines and loops
refused with nothing changed. (Mail to an alias end to end: test_delivery.)"""
import json
import os
import unittest

from qvtest import HomeTestCase


class Aliases(HomeTestCase):
    def setUp(self):
        super().setUp()
        h = self.home
        self.ok(h.run("vadddomain", "example.com", "-r", "10"))
        self.ok(h.run("vadddomain", "example.org", "-r", "10"))
        self.ok(h.run("vadduser", "jane@example.com", "--password-stdin", input=b"pw-jane\n"))

    def show(self, *args):
        return self.ok(self.home.run("valias", *args)).stdout.decode().splitlines()

    def stored(self, alias, domain):
        """The lines of an alias as the store keeps them: the valias table, or .qmail-<alias>."""
        if self.home.backend == "mysql":
            return [r[0] for r in self.home.rows("SELECT valias_line FROM valias WHERE alias = '%s' AND domain = '%s' "
                                                 "ORDER BY valias_line" % (alias, domain))]
        p = self.home.path("domains", domain, ".qmail-" + alias.replace(".", ":"))
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return sorted(f.read().splitlines())

    def test_round_trip(self):
        h = self.home
        p = self.ok(h.run("valias", "-i", "&Jane@Example.COM", "sales@example.com"))
        self.assertEqual(p.stdout, b"added sales@example.com -> &jane@example.com\n")
        self.ok(h.run("valias", "-i", "bob@example.net", "sales@example.com"))  # a bare address is a forward
        self.ok(h.run("valias", "-i", "|/usr/bin/logger -t sales", "sales@example.com"))
        self.ok(h.run("valias", "--insert", "./archive/Maildir/", "sales@example.com"))
        self.assertEqual(self.stored("sales", "example.com"),
                         sorted(["&jane@example.com", "&bob@example.net", "|/usr/bin/logger -t sales", "./archive/Maildir/"]))
        # in the order written (files), or by line (IndiMail's valias table has no order of its own)
        self.assertEqual(sorted(self.show("sales@example.com")),
                         sorted(["sales@example.com -> &jane@example.com", "sales@example.com -> &bob@example.net",
                                 "sales@example.com -> |/usr/bin/logger -t sales",
                                 "sales@example.com -> ./archive/Maildir/"]))

        # a domain's aliases (vadddomain's abuse and mailer-daemon among them), and every domain's
        lines = self.show("-s", "example.com")
        self.assertIn("abuse@example.com -> &postmaster@example.com", lines)
        self.assertIn("sales@example.com -> &bob@example.net", lines)
        self.assertIn("mailer-daemon@example.org -> &postmaster@example.org", self.show())
        j = [json.loads(l) for l in self.show("--json", "sales@example.com")]
        self.assertEqual(len(j), 1)
        self.assertEqual((j[0]["alias"], sorted(j[0]["lines"])),
                         ("sales@example.com", sorted(["&jane@example.com", "&bob@example.net",
                                                       "|/usr/bin/logger -t sales", "./archive/Maildir/"])))
        # who forwards to jane
        self.assertEqual(self.show("-S", "jane@example.com"), ["sales@example.com -> jane@example.com"])

        # replace in place, delete, and the last line takes the alias with it
        self.ok(h.run("valias", "-u", "&bob@example.net", "-i", "&rob@example.net", "sales@example.com"))
        self.assertIn("sales@example.com -> &rob@example.net", self.show("sales@example.com"))
        self.assertNotIn("&bob@example.net", self.stored("sales", "example.com"))
        dry = json.loads(self.ok(h.run("valias", "--dry-run", "--json", "-d", "&rob@example.net", "sales@example.com")).stdout)
        self.assertEqual(dry["status"], "would-delete")
        self.assertIn("&rob@example.net", self.stored("sales", "example.com"))
        for line in ("&rob@example.net", "|/usr/bin/logger -t sales", "./archive/Maildir/"):
            self.ok(h.run("valias", "-d", line, "sales@example.com"))
        p = self.ok(h.run("valias", "-d", "jane@example.com", "sales@example.com"))
        self.assertIn(b"the alias is gone", p.stdout)
        self.assertEqual(self.stored("sales", "example.com"), [])
        self.assertEqual(h.run("valias", "sales@example.com").returncode, 6)

    def test_completion_offers_aliases_and_domains(self):
        h = self.home
        self.ok(h.run("valias", "-i", "&jane@example.com", "sales@example.com"))
        self.assertEqual(h.run("valias", "__complete", "--", "sa").stdout, b"sales@example.com\n")
        self.assertEqual(h.run("valias", "__complete", "--", "example.o").stdout, b"example.org\n")
        self.assertEqual(h.run("valias", "__complete", "--", "abuse@example.c").stdout, b"abuse@example.com\n")

    def test_refusals_change_nothing(self):
        h = self.home
        self.ok(h.run("valias", "-i", "&jane@example.com", "sales@example.com"))
        before = h.snapshot()
        for args, code in [
            (("-i", "", "sales@example.com"), 65),
            (("-i", "   ", "sales@example.com"), 65),
            (("-i", "&jane@example.com\n|/bin/sh -c evil", "sales@example.com"), 65),  # two lines in one
            (("-i", "&bob@", "sales@example.com"), 65),
            (("-i", "&bob@example.com;rm -rf /", "sales@example.com"), 65),
            (("-i", "|", "sales@example.com"), 65),
            (("-i", "/var/mail/sales", "sales@example.com"), 65),  # mbox: not delivered to
            (("-i", "./../../etc/Maildir/", "sales@example.com"), 65),
            (("-i", "# a comment", "sales@example.com"), 65),
            (("-i", "&bob@example.net", "sal es@example.com"), 65),
            (("-i", "&bob@example.net", "../x@example.com"), 65),
            (("-i", "&bob@example.net", "sales@nowhere.example"), 68),
            (("-i", "&bob@example.net", "example.com"), 64),  # a change needs an address
            (("-u", "&bob@example.net", "sales@example.com"), 64),  # -u without -i
            (("-d", "&jane@example.com", "-i", "&bob@example.net", "sales@example.com"), 64),
            (("-i", "&JANE@example.com", "sales@example.com"), 9),  # the same line, spelt otherwise
            (("-d", "&bob@example.net", "sales@example.com"), 6),
            (("-u", "&bob@example.net", "-i", "&rob@example.net", "sales@example.com"), 6),
            (("-s", "nobody@example.com"), 6),
        ]:
            p = h.run("valias", *args)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertEqual(len(p.stderr.decode().strip().splitlines()), 1, (args, p.stderr))
            self.assertEqual(h.snapshot(), before, args)

    def test_loops_refused(self):
        h = self.home
        self.ok(h.run("valias", "-i", "&b@example.com", "a@example.com"))
        self.ok(h.run("valias", "-i", "&c@example.org", "b@example.com"))
        before = h.snapshot()
        for args in [("-i", "&a@example.com", "c@example.org"),  # a -> b -> c -> a
                     ("-i", "&a@example.com", "a@example.com"),  # to itself
                     ("-u", "&c@example.org", "-i", "&a@example.com", "b@example.com")]:
            p = h.run("valias", *args)
            self.assertEqual(p.returncode, 65, (args, p.stderr))
            self.assertIn(b"mail would loop", p.stderr)
            self.assertEqual(h.snapshot(), before, args)
        p = h.run("valias", "-i", "&a@example.com", "c@example.org")
        self.assertIn(b"c@example.org -> a@example.com -> b@example.com -> c@example.org", p.stderr)
        # through an alias domain: a@alias.example is a@example.com
        self.ok(h.run("vaddaliasdomain", "alias.example", "example.com"))
        before = h.snapshot()
        p = h.run("valias", "-i", "&a@alias.example", "c@example.org")
        self.assertEqual(p.returncode, 65, p.stderr)
        self.assertEqual(h.snapshot(), before)
        # a mailbox stops the forwards: jane -> a is no loop even though a forwards to jane's domain
        self.ok(h.run("valias", "-i", "&jane@example.com", "c@example.org"))
        self.ok(h.run("vadduser", "d@example.com", "--password-stdin", input=b"pw-d\n"))
        self.ok(h.run("valias", "-i", "&d@example.com", "c@example.org"))
        # an alias named as a mailbox: allowed, with a warning that the mailbox takes the mail first
        p = self.ok(h.run("valias", "-i", "&a@example.com", "jane@example.com"))
        self.assertIn(b"takes its mail first", p.stderr)


if __name__ == "__main__":
    unittest.main()
