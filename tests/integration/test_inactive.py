"""Logins recorded (IndiMail's lastauth), inactive mailboxes (indibak) and vdeloldusers, on the store in
use. (An inactive mailbox's mail, end to end: test_delivery.)"""
import json
import os
import time
import unittest

from qvtest import HomeTestCase, login

DAY = 86400


class InactiveCase(HomeTestCase):
    def setUp(self):
        super().setUp()
        h = self.home
        self.ok(h.run("vadddomain", "example.com", "-r", "10"))
        for name in ("amy", "bob", "cat"):
            self.ok(h.run("vadduser", name + "@example.com", "--password-stdin", input=b"pw-%s-123\n" % name.encode()))

    def logins(self, user):
        """{service: (ip, unix time)} of a mailbox's recorded logins."""
        h = self.home
        if h.backend == "mysql":
            return {r[0]: (r[1], int(r[2])) for r in h.rows(
                "SELECT service, remote_ip, UNIX_TIMESTAMP(timestamp) FROM lastauth WHERE user = '%s' AND "
                "domain = 'example.com'" % user)}
        rec = h.user_record("example.com", user) or self.inactive_record(user)
        p = os.path.join(rec[5], "lastauth") if rec else None
        if not p or not os.path.exists(p):
            return {}
        with open(p) as f:
            return {l.split("\t")[0]: (l.split("\t")[1], int(l.split("\t")[2])) for l in f.read().splitlines()}

    def inactive_record(self, user):
        h = self.home
        if h.backend == "mysql":
            r = h.rows("SELECT pw_name, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell FROM indibak "
                       "WHERE pw_name = '%s' AND pw_domain = 'example.com'" % user)
            return r[0] if r else None
        p = h.path("domains/example.com/indibak")
        if not os.path.exists(p):
            return None
        with open(p) as f:
            for line in f.read().splitlines():
                if line.split(":")[0] == user:
                    return line.split(":")
        return None

    def backdate(self, days):
        """Every login record of the domain, as if made `days` days ago."""
        h = self.home
        when = int(time.time()) - days * DAY
        if h.backend == "mysql":
            h.rows("UPDATE lastauth SET timestamp = FROM_UNIXTIME(%d)" % when)
            return
        for name in ("postmaster", "amy", "bob", "cat"):
            rec = h.user_record("example.com", name) or self.inactive_record(name)
            p = os.path.join(rec[5], "lastauth")
            with open(p) as f:
                lines = [l.split("\t") for l in f.read().splitlines()]
            with open(p, "w") as f:
                f.write("".join("%s\t%s\t%d\n" % (l[0], l[1], when) for l in lines))

    def old(self, *args):
        return self.ok(self.home.run("vdeloldusers", *args)).stdout.decode().splitlines()


class Lastauth(InactiveCase):
    def test_logins_are_recorded_per_service(self):
        h = self.home
        made = self.logins("amy")
        self.assertEqual(list(made), ["add"])  # vadduser's record, as IndiMail's
        self.assertLessEqual(abs(made["add"][1] - time.time()), 60)
        self.assertEqual(login(h, "amy@example.com", "pw-amy-123", service="imap", ip="10.0.0.7").returncode, 0)
        self.assertEqual(login(h, "amy@example.com", "pw-amy-123", service="pop3", ip="2001:db8::5").returncode, 0)
        got = self.logins("amy")
        self.assertEqual(sorted(got), ["add", "imap", "pop3"])
        self.assertEqual((got["imap"][0], got["pop3"][0]), ("10.0.0.7", "2001:db8::5"))
        # a refused login and a lookup record nothing; NOLASTAUTH turns the record off
        self.assertEqual(login(h, "bob@example.com", "wrong-password").returncode, 1)
        self.assertEqual(list(self.logins("bob")), ["add"])
        self.assertEqual(login(h, "cat@example.com", "pw-cat-123", env={"NOLASTAUTH": "1"}).returncode, 0)
        self.assertEqual(list(self.logins("cat")), ["add"])


class Vdeloldusers(InactiveCase):
    def test_dry_run_lists_exactly_the_mailboxes_without_a_login_since_the_cut_off(self):
        h = self.home
        self.backdate(3)
        self.assertEqual(login(h, "bob@example.com", "pw-bob-123").returncode, 0)
        self.ok(h.run("vadduser", "dan@example.com", "--password-stdin", input=b"pw-dan-123\n"))  # made today
        before = h.snapshot()
        lines = self.old("--days", "0", "--dry-run")
        self.assertEqual([l.split(":")[0] for l in lines],
                         ["would make inactive amy@example.com", "would make inactive cat@example.com"])
        self.assertIn("idle 3 days (made ", lines[0])
        self.assertEqual(self.old("-a", "3", "-r"), [])  # 3 whole days is not more than 3
        self.assertEqual(len(self.old("-a", "2", "-d", "example.com", "--dry-run")), 2)
        j = [json.loads(l) for l in self.old("--days", "0", "--dry-run", "--json")]
        self.assertEqual([(x["address"], x["action"], x["status"], x["last_service"], x["idle_days"]) for x in j],
                         [("amy@example.com", "inactivate", "would-inactivate", "add", 3),
                          ("cat@example.com", "inactivate", "would-inactivate", "add", 3)])
        self.assertEqual(h.snapshot(), before)

    def test_inactive_first_then_removed_by_a_later_purge(self):
        h = self.home
        self.backdate(10)
        amy_home = h.user_record("example.com", "amy")[5]
        report = self.old("--days", "7", "-r")
        self.assertEqual([l.split(":")[0] for l in report], ["would make inactive %s@example.com" % n
                                                             for n in ("amy", "bob", "cat")])
        self.assertEqual(self.old("--days", "7"), [l.replace("would make", "made") for l in report])
        # amy, bob and cat are inactive now: no record, no login, their homes and mail kept
        for name in ("amy", "bob", "cat"):
            self.assertIsNone(h.user_record("example.com", name), name)
            self.assertIsNotNone(self.inactive_record(name), name)
        self.assertTrue(os.path.isdir(os.path.join(amy_home, "Maildir")))
        p = login(h, "amy@example.com", "pw-amy-123")
        self.assertEqual(p.returncode, 1)
        self.assertIsNotNone(h.user_record("example.com", "postmaster"))  # never touched
        # the admin brings amy back; a purge removes only what an earlier run left inactive
        self.ok(h.run("vmoduser", "--active", "amy@example.com"))
        self.assertEqual(login(h, "amy@example.com", "pw-amy-123").returncode, 0)
        self.backdate(10)
        lines = self.old("--days", "7", "--purge")
        self.assertEqual([l.split(":")[0] for l in lines],
                         ["made inactive amy@example.com", "removed bob@example.com", "removed cat@example.com"])
        for name in ("bob", "cat"):
            self.assertIsNone(self.inactive_record(name))
            self.assertFalse(os.path.exists(h.path("home/A2E/example.com", name)))
        self.assertIsNotNone(self.inactive_record("amy"))
        self.assertEqual(self.logins("bob"), {})
        self.ok(h.run("qmailctl", "check"))

    def test_bad_input_changes_nothing(self):
        h = self.home
        self.backdate(10)
        before = h.snapshot()
        for args, code in [(("--days", "-1"), 64), (("-d", "nope.example"), 68), (("-d", "bad..name"), 65),
                           (("--days", "x"), 64)]:
            p = h.run("vdeloldusers", *args)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
            self.assertEqual(h.snapshot(), before)
        for args, code in [(("--active", "amy@example.com"), 67), (("--active", "--inactive", "amy@example.com"), 64),
                           (("--inactive", "ghost@example.com"), 67)]:
            p = h.run("vmoduser", *args)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertEqual(h.snapshot(), before)


if __name__ == "__main__":
    unittest.main()
