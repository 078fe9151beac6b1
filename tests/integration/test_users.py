"""vadduser, vuserinfo, vpasswd, vmoduser and vdeluser: the mailbox round trip."""
import json
import os
import unittest
import warnings

from qvtest import BACKEND, HomeTestCase

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # noqa: E402


class Mailboxes(HomeTestCase):
    def setUp(self):
        super().setUp()
        self.ok(self.home.run("vadddomain", "example.com", "-r", "10"))

    def record(self, name):
        return self.home.user_record("example.com", name)

    def test_round_trip(self):
        h = self.home
        p = self.ok(h.run("vadduser", "John.Doe@Example.com", "--password-stdin", "-c", "John Doe", "-q", "100M,500",
                          input=b"first-pass\n"))
        self.assertEqual(p.stdout, b"added mailbox john.doe@example.com\n")
        home = h.path("home/F2K/example.com/john.doe")
        for sub in ("", "/Maildir", "/Maildir/cur", "/Maildir/new", "/Maildir/tmp"):
            st = os.stat(home + sub)
            self.assertEqual((oct(st.st_mode & 0o7777), st.st_uid, st.st_gid), ("0o750", 555, 555), sub)
        f = self.record("john.doe")
        self.assertEqual(f[2:], ["1", "0", "John Doe", home, "104857600S,500C"])
        self.assertEqual(crypt.crypt("first-pass", f[1]), f[1])

        h.write(home + "/Maildir/new/1.msg", "x" * 1000)
        info = self.ok(h.run("vuserinfo", "john.doe@example.com")).stdout.decode().splitlines()
        self.assertEqual(info[0], "name          : john.doe@example.com")
        self.assertTrue(info[1].startswith("passwd        : $6$") and info[1].endswith(" (SHA-512)"))
        self.assertIn("gid           : 0", info)
        self.assertIn("                -all services available", info)
        self.assertIn("gecos         : John Doe", info)
        self.assertIn("dir           : " + home, info)
        self.assertIn("quota         : 104857600S,500C [100.00 MiB]", info)
        self.assertIn("curr quota    : 1000S,1C", info)

        self.ok(h.run("vpasswd", "john.doe@example.com", "--password-stdin", input=b"second-pass\n"))
        f2 = self.record("john.doe")
        self.assertEqual(crypt.crypt("second-pass", f2[1]), f2[1])
        self.assertNotEqual(crypt.crypt("first-pass", f2[1]), f2[1])

        self.ok(h.run("vmoduser", "-p", "-s", "-r", "john.doe@example.com"))
        j = json.loads(self.ok(h.run("vuserinfo", "--json", "john.doe@example.com")).stdout)
        self.assertEqual(j["flags"], ["no-pop", "no-smtp", "no-relay"])
        self.assertEqual(j["gid"], 0x02 | 0x200 | 0x20)
        self.assertEqual((j["usage_bytes"], j["usage_count"], j["quota_bytes"], j["quota_count"]), (1000, 1, 104857600, 500))
        info = self.ok(h.run("vuserinfo", "-g", "john.doe@example.com")).stdout.decode().splitlines()
        self.assertEqual(info, ["gid           : 546", "                -pop access closed",
                                "                -smtp access closed", "                -user not allowed to relay mail"])
        self.ok(h.run("vmoduser", "-t", "-p", "-i", "john.doe@example.com"))  # toggle: pop off, imap on
        self.ok(h.run("vmoduser", "--clear", "no-relay", "--set", "bounce-mail", "john.doe@example.com"))
        self.assertEqual(json.loads(h.run("vuserinfo", "--json", "john.doe@example.com").stdout)["flags"],
                         ["no-imap", "no-smtp", "bounce-mail"])
        self.ok(h.run("vmoduser", "-x", "-c", "J. Doe", "-q", "NOQUOTA", "john.doe@example.com"))
        self.assertEqual(self.record("john.doe")[3:], ["0", "J. Doe", home, "NOQUOTA"])

        p = self.ok(h.run("vdeluser", "john.doe@example.com"))
        self.assertEqual(p.stdout, b"removed mailbox john.doe@example.com\n")
        self.assertFalse(os.path.exists(home))
        self.assertIsNone(self.record("john.doe"))
        self.assertEqual(h.run("vuserinfo", "john.doe@example.com").returncode, 67)

    def test_vsetuserquota_and_the_usage_deliveries_keep(self):
        h = self.home
        self.ok(h.run("vadduser", "joe@example.com", "--password-stdin", input=b"pw-joe\n"))
        maildir = h.path("home/F2K/example.com/joe/Maildir")
        h.write(maildir + "/new/1.msg", "x" * 1000)
        h.write(maildir + "/cur/2.msg:2,S", "y" * 500)
        p = self.ok(h.run("vsetuserquota", "joe@example.com", "10M,100"))
        self.assertEqual(p.stdout, b"usage 1500 bytes\n")
        self.assertEqual(self.record("joe")[6], "10485760S,100C")
        # maildirsize counted again under the new limit
        self.assertEqual(h.read(maildir + "/maildirsize"), b"10485760S,100C\n1500 2\n")
        # deliveries add a line each; vuserinfo shows the sums they keep (here, as a delivery would)
        with open(maildir + "/maildirsize", "a") as f:
            f.write("2000 1\n")
        j = json.loads(self.ok(h.run("vuserinfo", "--json", "joe@example.com")).stdout)
        self.assertEqual((j["usage_bytes"], j["usage_count"], j["quota_bytes"], j["quota_count"]),
                         (3500, 3, 10485760, 100))
        j = json.loads(self.ok(h.run("vsetuserquota", "--json", "--dry-run", "joe@example.com", "NOQUOTA")).stdout)
        self.assertEqual((j["status"], j["quota"], j["usage_bytes"]), ("would-change", "NOQUOTA", 3500))
        self.assertEqual(self.record("joe")[6], "10485760S,100C")
        before = h.snapshot()
        for args, code in [(("joe@example.com", "lots"), 65), (("joe@example.com", "-5"), 65),
                           (("joe@example.com", "5M,x"), 65), (("nobody@example.com", "5M"), 67),
                           (("joe@nowhere.example", "5M"), 68), (("joe@example.com",), 64)]:
            p = h.run("vsetuserquota", *args)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertEqual(h.snapshot(), before, args)
        self.assertEqual(self.ok(h.run("vsetuserquota", "joe@example.com", "NOQUOTA")).stdout, b"usage 1500 bytes\n")
        self.assertEqual(self.record("joe")[6], "NOQUOTA")

    def test_add_then_delete_restores_the_tree(self):
        h = self.home
        before = h.snapshot()
        self.ok(h.run("vadduser", "tmp@example.com", "-r", "10"))
        self.ok(h.run("vdeluser", "tmp@example.com"))
        self.assertEqual(h.snapshot(), before)

    def test_bad_addresses_change_nothing(self):
        h = self.home
        before = h.snapshot()
        for bad in ("no-at-sign", "@example.com", ".dot@example.com", "a..b@example.com", "sp ace@example.com",
                    "quote'@example.com", "dollar$@example.com", "x" * 41 + "@example.com", "ok@bad..domain"):
            with self.subTest(address=bad):
                p = h.run("vadduser", bad, "-r", "10")
                self.assertEqual(p.returncode, 65, p.stderr)
                self.assertEqual(p.stderr.count(b"\n"), 1)
        for args in (["-c", "colon:inside"], ["-q", "lots"]):
            p = h.run("vadduser", "fine@example.com", "-r", "10", *args)
            self.assertEqual(p.returncode, 65, p.stderr)
        self.assertEqual(h.snapshot(), before)

    def test_exit_codes_for_existing_and_unknown(self):
        h = self.home
        self.ok(h.run("vadduser", "joe@example.com", "-r", "10"))
        before = h.snapshot()
        self.assertEqual(h.run("vadduser", "joe@example.com", "-r", "10").returncode, 9)
        self.assertEqual(h.run("vadduser", "abuse@example.com", "-r", "10").returncode, 9)  # an alias
        self.assertEqual(h.run("vadduser", "joe@nowhere.example", "-r", "10").returncode, 68)
        self.assertEqual(h.run("vdeluser", "nobody@example.com").returncode, 67)
        self.assertEqual(h.run("vpasswd", "nobody@example.com", "-r", "10").returncode, 67)
        self.assertEqual(h.run("vmoduser", "-p", "nobody@example.com").returncode, 67)
        self.assertEqual(h.run("vmoduser", "joe@example.com").returncode, 64)  # nothing to change
        self.assertEqual(h.run("vmoduser", "--set", "no-such-flag", "joe@example.com").returncode, 64)
        self.assertEqual(h.run("vadduser", "x@example.com", "-l", "2", "-r", "10").returncode, 64)  # unsupported
        self.assertEqual(h.snapshot(), before)

    def test_role_accounts_need_yes_without_a_terminal(self):
        h = self.home
        p = h.run("vdeluser", "postmaster@example.com")
        self.assertEqual(p.returncode, 64)
        self.assertIn(b"--yes", p.stderr)
        self.ok(h.run("vdeluser", "--yes", "postmaster@example.com"))
        # the aliases that forwarded only to it are gone with it
        self.assertEqual(json.loads(h.run("vdominfo", "--json", "example.com").stdout)["aliases"], [])
        self.assertEqual(h.run("qmailctl", "check").returncode, 0)  # a warning, not a problem

    @unittest.skipIf(BACKEND != "files", "vpasswd.cdb belongs to the files store")
    def test_cdb_follows_every_change(self):
        h = self.home
        self.ok(h.run("vadduser", "joe@example.com", "-r", "10"))
        self.ok(h.run("vmoduser", "-p", "joe@example.com"))
        p = h.run("qmailctl", "cdb", "--check", "--json", "vpasswd.example.com")
        self.assertTrue(json.loads(p.stdout)["up_to_date"])
        import subprocess
        value = subprocess.run(["cdb", "-q", h.path("domains/example.com/vpasswd.cdb"), "joe"],
                               capture_output=True).stdout.decode()
        self.assertEqual(value.split(":")[1:3], ["1", "2"])



class DomainDefaultQuota(HomeTestCase):
    """vlimit -q/-m: the quota new mailboxes get without vadduser -q (vpopmail's .qmailadmin-limits)."""

    def setUp(self):
        super().setUp()
        self.ok(self.home.run("vadddomain", "example.com", "-r", "10"))

    def add(self, name, *args):
        return self.ok(self.home.run("vadduser", name + "@example.com", "-r", "10", *args))

    def test_default_quota_applies_to_new_mailboxes_only(self):
        h = self.home
        self.add("before")
        self.assertEqual(self.ok(h.run("vlimit", "-q", "100M", "-m", "5000", "example.com")).stdout,
                         b"limits of example.com changed\n")
        self.assertEqual(h.read("domains/example.com/.qmailadmin-limits"),
                         b"default_quota: 104857600\ndefault_maxmsgcount: 5000\n")
        self.add("after")
        self.add("own", "-q", "1M")
        self.assertEqual(h.user_record("example.com", "before")[6], "NOQUOTA")
        self.assertEqual(h.user_record("example.com", "after")[6], "104857600S,5000C")
        self.assertEqual(h.user_record("example.com", "own")[6], "1048576")
        shown = self.ok(h.run("vlimit", "example.com")).stdout.decode().splitlines()
        self.assertIn("Default User Quota       : 104857600", shown)
        j = json.loads(self.ok(h.run("vdominfo", "--json", "example.com")).stdout)
        self.assertEqual((j["vlimits"], j["default_quota"]), (True, "104857600S,5000C"))
        # other keys (qmailadmin's) are kept; -D takes ours out, and the file when nothing is left
        with open(h.path("domains/example.com/.qmailadmin-limits"), "a") as f:
            f.write("maxpopaccounts: 50\n")
        self.ok(h.run("vlimit", "-q", "NOQUOTA", "example.com"))
        self.assertEqual(h.read("domains/example.com/.qmailadmin-limits"),
                         b"maxpopaccounts: 50\ndefault_maxmsgcount: 5000\n")
        self.add("unlimited")
        self.assertEqual(h.user_record("example.com", "unlimited")[6], "NOQUOTA")  # a count needs a quota
        self.assertEqual(self.ok(h.run("vlimit", "-D", "example.com")).stdout, b"Limits deleted\n")
        self.assertEqual(h.read("domains/example.com/.qmailadmin-limits"), b"maxpopaccounts: 50\n")

    def test_bad_input_changes_nothing(self):
        h = self.home
        self.ok(h.run("vlimit", "-q", "10M", "example.com"))
        before = h.snapshot()
        for args, code in [(("-q", "12x", "example.com"), 65), (("-q", "10M,5", "example.com"), 65),
                           (("-m", "-3", "example.com"), 65), (("-Q", "1G", "example.com"), 64),
                           (("-D", "-q", "1M", "example.com"), 64), (("-q", "1M", "nope.example"), 68),
                           (("-q", "1M"), 64)]:
            p = h.run("vlimit", *args)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
            self.assertEqual(h.snapshot(), before, args)
        h.write("domains/example.com/.qmailadmin-limits", "default_quota: lots\n")
        p = h.run("vadduser", "x@example.com", "-r", "10")
        self.assertEqual(p.returncode, 65, p.stderr)
        self.assertIn(b".qmailadmin-limits:1: not a number", p.stderr)
        self.assertIsNone(h.user_record("example.com", "x"))

    def test_inactive_mailbox_added_and_shown(self):
        h = self.home
        p = self.add("sleepy", "-i")
        self.assertIn(b"added inactive mailbox sleepy@example.com", p.stdout)
        self.assertIsNone(h.user_record("example.com", "sleepy"))
        info = self.ok(h.run("vuserinfo", "sleepy@example.com")).stdout.decode().splitlines()
        self.assertIn("Account       : inactive (vmoduser --active)", info)
        self.assertFalse(json.loads(self.ok(h.run("vuserinfo", "--json", "sleepy@example.com")).stdout)["active"])
        self.assertEqual(h.run("vadduser", "sleepy@example.com", "-r", "10").returncode, 9)  # taken, inactive
        self.ok(h.run("vmoduser", "--active", "sleepy@example.com"))
        self.assertIsNotNone(h.user_record("example.com", "sleepy"))
        j = json.loads(self.ok(h.run("vuserinfo", "--json", "sleepy@example.com")).stdout)
        self.assertTrue(j["active"])
        self.assertEqual(list(j["logins"]), ["add"])
        self.ok(h.run("vmoduser", "--inactive", "sleepy@example.com"))
        self.ok(h.run("vdeluser", "sleepy@example.com"))  # an inactive mailbox is removed as any other
        self.assertEqual(h.run("vuserinfo", "sleepy@example.com").returncode, 67)


if __name__ == "__main__":
    unittest.main()
