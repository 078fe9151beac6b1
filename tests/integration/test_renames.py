"""vrenameuser and vrenamedomain on the store in use: everything that names the mailbox or the domain
follows it, in one change; refusals and a failure midway change nothing. (Mail after a rename, end to
end: test_delivery.)"""
import json
import os
import subprocess
import unittest

from qvtest import NOBODY, HomeTestCase, login


def read_lines(path):
    with open(path) as f:
        return f.read().splitlines()


class RenameCase(HomeTestCase):
    def setUp(self):
        super().setUp()
        h = self.home
        self.ok(h.run("vadddomain", "example.com", "-r", "10"))
        self.ok(h.run("vadddomain", "example.org", "-r", "10"))
        self.ok(h.run("vadduser", "joe@example.com", "--password-stdin", input=b"joe-secret-1\n"))
        self.ok(h.run("vadduser", "ann@example.org", "--password-stdin", input=b"ann-secret-1\n"))

    def stored_lines(self, alias, domain):
        h = self.home
        if h.backend == "mysql":
            return sorted(r[0] for r in h.rows("SELECT valias_line FROM valias WHERE alias = '%s' AND domain = '%s'"
                                               % (alias, domain)))
        p = h.path("domains", domain, ".qmail-" + alias)
        return sorted(read_lines(p)) if os.path.exists(p) else []

    def filters(self, address):
        return self.ok(self.home.run("vcfilter", "-s", address)).stdout.decode()

    def grants(self):
        h = self.home
        if h.backend == "mysql":
            return sorted((r[0], r[1]) for r in h.rows("SELECT email, ipaddr FROM relay"))
        p = h.path("etc/open-smtp")
        if not os.path.exists(p):
            return []
        return sorted((l.split("\t")[2], l.split(":")[0]) for l in read_lines(p) if l)

    def logins(self, user, domain):
        """{service: ip} of a mailbox's recorded logins."""
        h = self.home
        if h.backend == "mysql":
            return {r[0]: r[1] for r in h.rows("SELECT service, remote_ip FROM lastauth WHERE user = '%s' AND "
                                               "domain = '%s'" % (user, domain))}
        rec = h.user_record(domain, user)
        p = os.path.join(rec[5], "lastauth") if rec else None
        if not p or not os.path.exists(p):
            return {}
        return {l.split("\t")[0]: l.split("\t")[1] for l in read_lines(p)}


class RenameUser(RenameCase):
    def test_everything_follows_the_mailbox(self):
        h = self.home
        joe_home = h.user_record("example.com", "joe")[5]
        with open(os.path.join(joe_home, "Maildir/new/1.msg"), "w") as f:
            f.write("Subject: kept\n\nmail that must move\n")
        self.ok(h.run("vcfilter", "-i", "-t", "spam", "-h", "Subject", "-c", "0", "-k", "SPAM", "-f", "Junk",
                      "-b", "0", "joe@example.com"))
        self.ok(h.run("vaddaliasdomain", "alias.example", "example.com"))
        self.ok(h.run("valias", "-i", "&joe@example.com", "fans@example.org"))
        self.ok(h.run("valias", "-i", "&joe@alias.example", "club@example.org"))  # by its real domain
        self.ok(h.run("valias", "-i", "&ann@example.org", "fans@example.org"))
        self.ok(h.run("vmoduser", "-p", "-q", "5M", "joe@example.com"))
        self.assertEqual(login(h, "joe@example.com", "joe-secret-1", grant=True).returncode, 0)

        p = self.ok(h.run("vrenameuser", "joe@example.com", "jim@example.com"))
        self.assertEqual(p.stdout.decode().splitlines(),
                         ["renamed mailbox joe@example.com to jim@example.com",
                          "alias club@example.org now forwards to jim@example.com",
                          "alias fans@example.org now forwards to jim@example.com"])
        self.assertIsNone(h.user_record("example.com", "joe"))
        name, pw, uid, gid, gecos, home, quota = h.user_record("example.com", "jim")[:7]
        self.assertEqual((gid, quota), ("2", "5242880"))  # NO_POP and the quota came along
        self.assertEqual(home, h.path("home/F2K/example.com/jim"))
        self.assertFalse(os.path.exists(joe_home))
        with open(os.path.join(home, "Maildir/new/1.msg")) as f:
            self.assertIn("mail that must move", f.read())
        # the password is joe's; the old name is gone
        self.assertEqual(login(h, "jim@example.com", "joe-secret-1").returncode, 0)
        self.assertEqual(login(h, "joe@example.com", "joe-secret-1").returncode, 1)
        self.assertIn("spam", self.filters("jim@example.com"))
        self.assertEqual(h.run("vcfilter", "-s", "joe@example.com").returncode, 67)
        self.assertEqual(self.stored_lines("fans", "example.org"), ["&ann@example.org", "&jim@example.com"])
        self.assertEqual(self.stored_lines("club", "example.org"), ["&jim@example.com"])
        self.assertEqual(self.grants(), [("jim@example.com", "10.1.2.3")])
        self.assertEqual(self.logins("jim", "example.com").get("imap"), "10.1.2.3")
        self.assertEqual(self.logins("joe", "example.com"), {})

    def test_to_another_domain(self):
        h = self.home
        p = self.ok(h.run("vrenameuser", "--json", "joe@example.com", "joseph@example.org"))
        j = json.loads(p.stdout)
        self.assertEqual((j["from"], j["to"], j["status"]), ("joe@example.com", "joseph@example.org", "renamed"))
        self.assertEqual(j["home"], h.path("home/F2K/example.org/joseph"))
        self.assertTrue(os.path.isdir(h.path("home/F2K/example.org/joseph/Maildir/new")))
        self.assertEqual(login(h, "joseph@example.org", "joe-secret-1").returncode, 0)
        self.assertIsNone(h.user_record("example.com", "joe"))

    def test_an_inactive_mailbox_stays_inactive(self):
        h = self.home
        self.ok(h.run("vmoduser", "--inactive", "joe@example.com"))
        self.ok(h.run("vrenameuser", "joe@example.com", "jim@example.com"))
        self.assertIsNone(h.user_record("example.com", "jim"))
        info = json.loads(self.ok(h.run("vuserinfo", "--json", "jim@example.com")).stdout)
        self.assertEqual((info["active"], info["dir"]), (False, h.path("home/F2K/example.com/jim")))
        self.assertEqual(h.run("vuserinfo", "joe@example.com").returncode, 67)
        self.ok(h.run("vmoduser", "--active", "jim@example.com"))
        self.assertEqual(login(h, "jim@example.com", "joe-secret-1").returncode, 0)

    def test_refusals_change_nothing(self):
        h = self.home
        self.ok(h.run("valias", "-i", "&ann@example.org", "sales@example.com"))
        before = h.snapshot()
        for args, code, message in [
            (("joe@example.com", "postmaster@example.com"), 9, "mailbox postmaster@example.com already exists"),
            (("joe@example.com", "sales@example.com"), 9, "sales@example.com is an alias"),
            (("joe@example.com", "joe@example.com"), 65, "are the same mailbox"),
            (("ghost@example.com", "jim@example.com"), 67, "no mailbox ghost@example.com"),
            (("joe@example.com", "jim@nowhere.example"), 68, "no such domain nowhere.example"),
            (("joe@example.com", "j;m@example.com"), 65, ""),
            (("joe@example.com",), 64, ""),
        ]:
            p = h.run("vrenameuser", *args)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertIn(message.encode(), p.stderr)
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
            self.assertEqual(h.snapshot(), before, args)
        p = self.ok(h.run("vrenameuser", "--dry-run", "joe@example.com", "jim@example.com"))
        self.assertIn(b"move " + h.path("home/F2K/example.com/joe").encode(), p.stdout)
        self.assertEqual(h.snapshot(), before)

    def test_home_taken_by_hand_is_refused(self):
        h = self.home
        os.makedirs(h.path("home/F2K/example.com/jim"))
        before = h.snapshot()
        p = h.run("vrenameuser", "joe@example.com", "jim@example.com")
        self.assertEqual(p.returncode, 9)
        self.assertIn(b"its home " + h.path("home/F2K/example.com/jim").encode() + b" already exists", p.stderr)
        self.assertEqual(h.snapshot(), before)

    @unittest.skipUnless(os.geteuid() == 0, "runs vrenameuser as another user")
    def test_failed_move_undoes_the_whole_change(self):
        h = self.home
        self.ok(h.run("valias", "-i", "&joe@example.com", "fans@example.org"))
        subprocess.run(["chown", "-R", "%d:%d" % (NOBODY, NOBODY), h.root], check=True)
        # the new home's bucket cannot take it: the move, the change's last step, fails
        os.chmod(h.path("home/F2K/example.com"), 0o555)
        before = h.snapshot()
        p = h.run("vrenameuser", "joe@example.com", "jim@example.com", user=NOBODY)
        self.assertEqual(p.returncode, 73, p.stderr)
        self.assertIn(b"cannot move", p.stderr)
        self.assertEqual(h.snapshot(), before)


class RenameDomain(RenameCase):
    def test_everything_follows_the_domain(self):
        h = self.home
        self.ok(h.run("vaddaliasdomain", "alias.example", "example.com"))
        self.ok(h.run("vadduser", "-i", "-r", "10", "sleepy@example.com"))  # inactive: its home moves too
        self.ok(h.run("valias", "-i", "&joe@example.com", "fans@example.org"))
        self.ok(h.run("valias", "-i", "&joe@example.com", "team@example.com"))
        self.ok(h.run("vcfilter", "-i", "-t", "spam", "-h", "Subject", "-c", "0", "-k", "SPAM", "-f", "Junk",
                      "-b", "0", "joe@example.com"))
        self.assertEqual(login(h, "joe@example.com", "joe-secret-1", grant=True).returncode, 0)

        p = self.ok(h.run("vrenamedomain", "example.com", "example.net"))
        self.assertEqual(p.stdout.decode().splitlines(),
                         ["renamed domain example.com to example.net (2 mailbox(es))",
                          "alias abuse@example.net: its forwards to example.com now go to example.net",
                          "alias mailer-daemon@example.net: its forwards to example.com now go to example.net",
                          "alias team@example.net: its forwards to example.com now go to example.net",
                          "alias fans@example.org: its forwards to example.com now go to example.net"])
        self.assertEqual(h.run("vdominfo", "example.com").returncode, 68)
        self.assertFalse(os.path.exists(h.path("domains/example.com")))
        for b in ("A2E", "F2K", "L2P", "Q2S", "T2Zsym"):
            self.assertFalse(os.path.exists(h.path("home", b, "example.com")), b)
            self.assertTrue(os.path.isdir(h.path("home", b, "example.net")), b)
        self.assertIn("+example.net-:example.net:555:555:%s:-::" % h.path("domains/example.net"),
                      h.read("users/assign").decode().splitlines())
        self.assertNotIn(b"example.com", h.read("users/assign"))
        self.assertEqual(sorted(h.read("control/rcpthosts").decode().split()),
                         ["alias.example", "example.net", "example.org"])
        self.assertIn("example.net:example.net", h.read("control/virtualdomains").decode().split())
        self.assertNotIn(b"example.com", h.read("control/virtualdomains"))
        self.assertEqual(h.user_record("example.net", "joe")[5], h.path("home/F2K/example.net/joe"))
        self.assertEqual(h.user_record("example.net", "postmaster")[5], h.path("home/L2P/example.net/postmaster"))
        sleepy = json.loads(self.ok(h.run("vuserinfo", "--json", "sleepy@example.net")).stdout)
        self.assertEqual((sleepy["active"], sleepy["dir"], sleepy["dir_exists"]),
                         (False, h.path("home/Q2S/example.net/sleepy"), True))
        # logins by the new name, and through the alias domain, whose link follows
        self.assertEqual(login(h, "joe@example.net", "joe-secret-1").returncode, 0)
        self.assertEqual(login(h, "joe@alias.example", "joe-secret-1").returncode, 0)
        self.assertEqual(login(h, "joe@example.com", "joe-secret-1").returncode, 1)
        self.assertEqual(os.readlink(h.path("domains/alias.example")), "example.net")
        self.assertEqual(self.stored_lines("fans", "example.org"), ["&joe@example.net"])
        self.assertEqual(self.stored_lines("team", "example.net"), ["&joe@example.net"])
        self.assertEqual(self.stored_lines("abuse", "example.net"), ["&postmaster@example.net"])
        self.assertIn("spam", self.filters("joe@example.net"))
        self.assertEqual(self.grants(), [("joe@example.net", "10.1.2.3")])
        self.assertEqual(self.logins("joe", "example.net").get("imap"), "10.1.2.3")
        j = json.loads(self.ok(h.run("vdominfo", "--json", "example.net")).stdout)
        self.assertEqual((j["users"], j["alias_domains"]), (2, ["alias.example"]))
        self.ok(h.run("qmailctl", "check"))

    def test_an_alias_domain_renames_alone(self):
        h = self.home
        self.ok(h.run("vaddaliasdomain", "alias.example", "example.com"))
        p = self.ok(h.run("vrenamedomain", "alias.example", "other-alias.example"))
        self.assertEqual(p.stdout, b"renamed alias domain alias.example (of example.com) to other-alias.example\n")
        self.assertEqual(os.readlink(h.path("domains/other-alias.example")), "example.com")
        self.assertFalse(os.path.lexists(h.path("domains/alias.example")))
        self.assertEqual(h.read("domains/example.com/.aliasdomains"), b"other-alias.example\n")
        self.assertEqual(login(h, "joe@other-alias.example", "joe-secret-1").returncode, 0)
        self.assertEqual(login(h, "joe@alias.example", "joe-secret-1").returncode, 1)
        self.ok(h.run("qmailctl", "check"))

    def test_refusals_change_nothing(self):
        h = self.home
        h.write("control/virtualdomains", "example.com:example.com\nexample.org:example.org\nrouted.example:x\n")
        before = h.snapshot()
        for args, code, message in [
            (("example.com", "example.org"), 9, "domain example.org already exists"),
            (("example.com", "routed.example"), 9, "control/virtualdomains already routes it"),
            (("example.com", "example.com"), 65, "are the same domain"),
            (("nope.example", "new.example"), 68, "no such domain nope.example"),
            (("example.com", "bad_-.example."), 65, ""),
            (("example.com",), 64, ""),
        ]:
            p = h.run("vrenamedomain", *args)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertIn(message.encode(), p.stderr)
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
            self.assertEqual(h.snapshot(), before, args)
        os.makedirs(h.path("home/Q2S/new.example"))
        before = h.snapshot()
        p = h.run("vrenamedomain", "example.com", "new.example")
        self.assertEqual(p.returncode, 9)
        self.assertIn(h.path("home/Q2S/new.example").encode() + b" already exists", p.stderr)
        self.assertEqual(h.snapshot(), before)
        p = self.ok(h.run("vrenamedomain", "--dry-run", "example.com", "other.example"))
        self.assertIn(b"move " + h.path("domains/example.com").encode(), p.stdout)
        self.assertEqual(h.snapshot(), before)

    @unittest.skipUnless(os.geteuid() == 0, "runs vrenamedomain as another user")
    def test_failed_move_undoes_the_whole_change(self):
        h = self.home
        self.ok(h.run("valias", "-i", "&joe@example.com", "fans@example.org"))
        subprocess.run(["chown", "-R", "%d:%d" % (NOBODY, NOBODY), h.root], check=True)
        # the last tree to move cannot: every move and write before it is undone
        os.chmod(h.path("home/T2Zsym"), 0o555)
        before = h.snapshot()
        p = h.run("vrenamedomain", "example.com", "example.net", user=NOBODY)
        self.assertEqual(p.returncode, 73, p.stderr)
        self.assertIn(b"cannot move " + h.path("home/T2Zsym/example.com").encode(), p.stderr)
        self.assertEqual(h.snapshot(), before)
        self.assertEqual(login(h, "joe@example.com", "joe-secret-1").returncode, 0)


if __name__ == "__main__":
    unittest.main()
