"""vadddomain, vdeldomain, vdominfo, vmoddomain and qmailctl check in a scratch QMAILHOME."""
import json
import os
import subprocess
import threading
import unittest
import warnings

from qvtest import BACKEND, NOBODY, HomeTestCase, sbindir, tool

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # noqa: E402  (Python 3.11's crypt(3) binding, to check stored hashes)

PW = ["--password-stdin"]



def removed_names(before, after):
    """Takes out of two snapshots the names the database lists as removed (for the other hosts' qmailctl
    sync: test_shared_domains) and returns those of `after`."""
    before.pop("db:qvdomain_removed", None)
    return [r[0] for r in after.pop("db:qvdomain_removed", [])]

class DomainTestCase(HomeTestCase):
    def add(self, domain, *args, pw=b"Secret-pw-1\n", env=None, user=None):
        return self.home.run("vadddomain", domain, *args, *(PW if pw is not None else []), input=pw, env=env,
                             user=user)

    def vpasswd_line(self, domain, user="postmaster"):
        return self.home.user_record(domain, user)


class AddDomain(DomainTestCase):
    def test_every_file_line_mode_and_owner(self):
        h = self.home
        self.ok(self.add("Example.COM"))  # names are lower-cased
        snap = h.snapshot()
        r = h.root
        d = "domains/example.com"
        pm = "home/L2P/example.com/postmaster"
        expected_dirs = {
            "etc": ("0o755", 0, 0), "domains": ("0o755", 0, 0), d: ("0o750", 555, 555), d + "/bulk_mail": ("0o750", 555, 555),
            "users": ("0o755", 0, 0), "control": ("0o755", 0, 0), "home": ("0o755", 0, 0),
            pm: ("0o750", 555, 555), pm + "/Maildir": ("0o750", 555, 555),
        }
        for b in ("A2E", "F2K", "L2P", "Q2S", "T2Zsym"):
            expected_dirs["home/" + b] = ("0o755", 0, 0)
            expected_dirs["home/%s/example.com" % b] = ("0o750", 555, 555)
        for sub in ("cur", "new", "tmp"):
            expected_dirs[pm + "/Maildir/" + sub] = ("0o750", 555, 555)
        expected_files = {
            d + "/.qmail-default": ("0o600", 555, 555,
                                    ("| %s/vdelivermail '' bounce-no-mailbox\n" % sbindir()).encode()),
            "users/assign": ("0o644", 0, 0, ("+example.com-:example.com:555:555:%s/%s:-::\n.\n" % (r, d)).encode()),
            "control/rcpthosts": ("0o644", 0, 0, b"example.com\n"),
            "control/virtualdomains": ("0o644", 0, 0, b"example.com:example.com\n"),
        }
        for rel, (mode, uid, gid) in expected_dirs.items():
            self.assertEqual(snap.get(rel), ("dir", mode, uid, gid), rel)
        for rel, (mode, uid, gid, content) in expected_files.items():
            self.assertEqual(snap.get(rel), ("file", mode, uid, gid, content), rel)
        # users/cdb, and the store: with files, vpasswd, its cdb and the aliases' .qmail files; with
        # MariaDB, host.mysql and rows
        others = {k for k in set(snap) - set(expected_dirs) - set(expected_files) if not k.startswith("db:")}
        if BACKEND == "files":
            self.assertEqual(others, {d + "/vpasswd", d + "/vpasswd.cdb", "users/cdb", d + "/.qmail-abuse",
                                      d + "/.qmail-mailer-daemon", pm + "/lastauth"})
            # IndiMail's "add" record of the postmaster's creation (vdeloldusers dates mailboxes by it)
            self.assertEqual(snap[pm + "/lastauth"][:4], ("file", "0o600", 555, 555))
            self.assertRegex(snap[pm + "/lastauth"][4], rb"^add\t\t\d{10}\n$")
            self.assertEqual(snap[d + "/vpasswd"][:4], ("file", "0o600", 555, 555))
            self.assertEqual(snap[d + "/vpasswd.cdb"][:4], ("file", "0o600", 555, 555))
            for alias in ("abuse", "mailer-daemon"):
                self.assertEqual(snap[d + "/.qmail-" + alias], ("file", "0o600", 555, 555, b"&postmaster@example.com\n"))
        else:
            self.assertEqual(others, {"users/cdb", "control/host.mysql"})
            self.assertEqual(len(snap["db:indimail"]), 1)
            self.assertEqual(snap["db:indibak"], [])
            self.assertEqual([r[:4] for r in snap["db:lastauth"]], [("postmaster", "example.com", "add", "")])
            self.assertEqual([r[:3] for r in snap["db:valias"]], [("abuse", "example.com", "&postmaster@example.com"),
                                                                  ("mailer-daemon", "example.com",
                                                                   "&postmaster@example.com")])
        name, pw, uid, gid, gecos, home, quota = self.vpasswd_line("example.com")
        self.assertEqual((name, uid, gid, gecos, home, quota),
                         ("postmaster", "1", "0", "Postmaster", os.path.join(r, pm), "NOQUOTA"))
        self.assertTrue(pw.startswith("$6$"))  # SHA-512 by default
        self.assertEqual(crypt.crypt("Secret-pw-1", pw), pw)
        # users/cdb in qmail-newu's format
        dump = subprocess.run(["cdb", "-d", h.path("users/cdb")], capture_output=True, check=True).stdout
        value = b"example.com\x00555\x00555\x00" + (r + "/" + d).encode() + b"\x00-\x00"
        self.assertEqual(dump, b"+13,%d:!example.com-->%s\n+0,1:->-\n\n" % (len(value), value))
        if BACKEND == "files":
            dump = subprocess.run(["cdb", "-q", h.path(d + "/vpasswd.cdb"), "postmaster"], capture_output=True).stdout
            self.assertTrue(dump.startswith(pw.encode() + b":1:0:Postmaster:"))

    def test_options(self):
        h = self.home
        os.makedirs(h.path("alt"))
        p = self.ok(self.add("opts.example", "-q", "50M", "-E", "postmaster@other.example", "-f", "-i", "1234", "-g",
                             "2345", "-d", h.path("alt"), "-B", h.path("mailhomes"), "-h", "YESCRYPT", "-R", "--json"))
        out = json.loads(p.stdout)
        self.assertEqual((out["uid"], out["gid"], out["handler"], out["program"]),
                         (1234, 2345, "postmaster@other.example", "vfilter"))
        d = "alt/domains/opts.example"
        self.assertEqual(h.read(d + "/.qmail-default"),
                         ("| %s/vfilter '' postmaster@other.example\n" % sbindir()).encode())
        self.assertEqual(h.read(d + "/hash_method"), b"YESCRYPT\n")
        self.assertEqual(h.read(d + "/.base_path"), (h.path("mailhomes") + "\n").encode())
        self.assertEqual(h.read("control/chkrcptdomains"), b"opts.example\n")
        line = self.home.user_record("opts.example", "postmaster")
        self.assertTrue(line[1].startswith("$y$"))
        self.assertEqual(line[5], h.path("mailhomes/L2P/opts.example/postmaster"))
        self.assertEqual(line[6], "52428800")
        st = os.stat(h.path("mailhomes/L2P/opts.example/postmaster/Maildir"))
        self.assertEqual((st.st_uid, st.st_gid), (1234, 2345))
        self.assertIn("+opts.example-:opts.example:1234:2345:%s:-::" % h.path(d), h.read("users/assign").decode())

    def test_user_option_and_root_refused(self):
        p = self.add("u.example", "-u", "nobody")
        self.ok(p)
        st = os.stat(self.home.path("domains/u.example"))
        self.assertEqual(st.st_uid, NOBODY)
        p = self.add("r.example", "-i", "0")
        self.assertEqual(p.returncode, 64)
        p = self.add("r.example", "-u", "no-such-user-here")
        self.assertEqual(p.returncode, 67)

    def test_hash_methods_and_prehashed(self):
        for method, prefix in (("MD5", "$1$"), ("SHA-256", "$5$"), ("sha512", "$6$"), ("yescrypt", "$y$")):
            dom = "h%s.example" % method.lower().replace("-", "")
            self.ok(self.add(dom, "-h", method))
            self.assertTrue(self.vpasswd_line(dom)[1].startswith(prefix), method)
        hashed = crypt.crypt("given", crypt.mksalt(crypt.METHOD_SHA512))
        self.ok(self.add("pre.example", "-e", pw=(hashed + "\n").encode()))
        self.assertEqual(self.vpasswd_line("pre.example")[1], hashed)
        before = self.home.snapshot()
        p = self.add("bad.example", "-e", pw=b"not a hash\n")
        self.assertEqual(p.returncode, 65)
        p = self.add("bad.example", "-h", "DES")
        self.assertEqual(p.returncode, 64)
        self.assertEqual(self.home.snapshot(), before)

    def test_password_sources(self):
        h = self.home
        p = self.add("pos.example", "positional-pw", pw=None)
        self.ok(p)
        self.assertIn(b"warning: a password on the command line", p.stderr)
        h.write("pwfile", "from-a-file\nsecond line ignored\n")
        self.ok(self.add("file.example", "--password-file", h.path("pwfile"), pw=None))
        self.assertEqual(crypt.crypt("from-a-file", self.vpasswd_line("file.example")[1]),
                         self.vpasswd_line("file.example")[1])
        p = self.ok(self.add("rnd.example", "-r", "14", pw=None))
        printed = p.stdout.decode().splitlines()[0]
        self.assertRegex(printed, r"^Password is [A-Za-z0-9]{14}$")
        pw = printed.split()[-1]
        self.assertEqual(crypt.crypt(pw, self.vpasswd_line("rnd.example")[1]), self.vpasswd_line("rnd.example")[1])
        p = self.ok(self.add("rndj.example", "-r", "10", "--json", pw=None))
        self.assertEqual(len(json.loads(p.stdout)["password"]), 10)
        before = h.snapshot()
        p = self.add("none.example", pw=None)  # no terminal, no password
        self.assertEqual(p.returncode, 64)
        self.assertIn(b"--password-stdin", p.stderr)
        p = self.add("two.example", "-r", "10")  # two sources
        self.assertEqual(p.returncode, 64)
        p = self.add("bad.example", pw=b"\n")  # empty
        self.assertEqual(p.returncode, 65)
        p = self.add("bad.example", "--password-file", h.path("missing"), pw=None)
        self.assertEqual(p.returncode, 66)
        self.assertEqual(h.snapshot(), before)

    def test_bad_names_change_nothing(self):
        self.ok(self.add("keep.example"))
        before = self.home.snapshot()
        for bad in ("localhost", "a..b.example", "x-.example", "x/y.example", "b\xfccher.example", "x" * 70 + ".com",
                    "ex ample.com", "x.123"):
            with self.subTest(name=bad):
                p = self.add(bad)
                self.assertEqual(p.returncode, 65, p.stderr)
                self.assertEqual(p.stderr.count(b"\n"), 1)
        p = self.add("b\xfccher.example")
        self.assertIn(b"punycode", p.stderr)
        self.assertEqual(self.home.snapshot(), before)

    def test_existing_domain_is_refused_with_9(self):
        self.ok(self.add("dup.example"))
        before = self.home.snapshot()
        p = self.add("DUP.example")
        self.assertEqual(p.returncode, 9)
        self.assertIn(b"already exists", p.stderr)
        self.assertEqual(self.home.snapshot(), before)

    def test_unsupported_options(self):
        before = self.home.snapshot()
        for args in (["-D", "db"], ["-H", "host"], ["-U", "u"], ["-P", "p"], ["-p", "3306"], ["-s", "1"], ["-c"],
                     ["-t"], ["-T", "1.2.3.4"], ["-l", "100"]):
            with self.subTest(args=args):
                p = self.add("x.example", *args)
                self.assertEqual(p.returncode, 64, p.stderr)
                self.assertIn(b"not supported", p.stderr)
        self.assertEqual(self.home.snapshot(), before)

    def test_dry_run(self):
        self.ok(self.add("keep.example"))
        before = self.home.snapshot()
        p = self.ok(self.add("dry.example", "--dry-run"))
        self.assertIn(b"would write " + self.home.path("users/assign").encode(), p.stdout)
        self.assertEqual(self.home.snapshot(), before)

    def test_fifty_domains_then_morercpthosts(self):
        h = self.home
        for i in range(50):
            self.ok(self.add("d%02d.example" % i))
        self.assertEqual(len(h.read("control/rcpthosts").splitlines()), 50)
        self.assertFalse(os.path.exists(h.path("control/morercpthosts")))
        self.ok(self.add("d50.example"))
        self.assertEqual(h.read("control/morercpthosts"), b"d50.example\n")
        dump = subprocess.run(["cdb", "-d", h.path("control/morercpthosts.cdb")], capture_output=True).stdout
        self.assertEqual(dump, b"+11,0:d50.example->\n\n")
        self.ok(h.run("vdeldomain", "d50.example"))
        self.assertEqual(h.read("control/morercpthosts"), b"")
        dump = subprocess.run(["cdb", "-d", h.path("control/morercpthosts.cdb")], capture_output=True).stdout
        self.assertEqual(dump, b"\n")

    def test_locals_loses_the_domain(self):
        self.home.write("control/locals", "localhost\nlocal.example\nlocal.example.org\n")
        self.ok(self.add("local.example"))
        self.assertEqual(self.home.read("control/locals"), b"localhost\nlocal.example.org\n")

    def test_bulk_defers_cdbs_to_qmailctl_cdb(self):
        h = self.home
        self.ok(self.add("first.example"))
        before_cdb = h.read("users/cdb")
        self.ok(self.add("bulk.example", "-O"))
        self.assertEqual(h.read("users/cdb"), before_cdb)
        self.assertFalse(os.path.exists(h.path("domains/bulk.example/vpasswd.cdb")))  # (files) or none (mysql)
        # the new domain is usable at once: the tools read users/assign
        self.ok(h.run("vadduser", "joe@bulk.example", "-r", "10"))
        self.assertEqual(h.run("qmailctl", "check").returncode, 1)
        self.ok(h.run("qmailctl", "cdb"))
        self.ok(h.run("qmailctl", "check"))
        self.assertIn(b"!bulk.example-", h.read("users/cdb"))


class HandlersAndVmoddomain(DomainTestCase):
    GOOD = ["delete", "bounce-no-mailbox", "/var/mail/catchall/Maildir/", "catchall@example.net",
            "example.net:192.0.2.1:25", "example.net:mx.example.net:2525", "example.net:[2001:db8::1]:25"]
    BAD = ["postmaster", "Maildir/", "./Maildir", "example.net:192.0.2.1", "example.net:192.0.2.1:99999",
           "example.net:2001:db8::1:25", "x;rm -rf /", "/path with space", "a'b@example.net"]

    def test_every_form_is_written_verbatim(self):
        for i, handler in enumerate(self.GOOD):
            with self.subTest(handler=handler):
                dom = "h%d.example" % i
                self.ok(self.add(dom, "-E", handler))
                self.assertEqual(self.home.read("domains/%s/.qmail-default" % dom),
                                 ("| %s/vdelivermail '' %s\n" % (sbindir(), handler)).encode())

    def test_bad_forms_are_refused_and_nothing_written(self):
        self.ok(self.add("keep.example"))
        before = self.home.snapshot()
        for handler in self.BAD:
            with self.subTest(handler=handler):
                p = self.add("bad.example", "-E", handler)
                self.assertEqual(p.returncode, 65, p.stderr)
                p = self.home.run("vmoddomain", "-h", handler, "keep.example")
                self.assertEqual(p.returncode, 65, p.stderr)
        self.assertEqual(self.home.snapshot(), before)

    def test_vmoddomain_rewrites_atomically_keeping_mode_and_owner(self):
        h = self.home
        self.ok(self.add("mod.example"))
        qd = "domains/mod.example/.qmail-default"
        for handler in self.GOOD:
            self.ok(h.run("vmoddomain", "-h", handler, "-f", "1", "mod.example"))
            self.assertEqual(h.read(qd), ("| %s/vfilter '' %s\n" % (sbindir(), handler)).encode())
        self.ok(h.run("vmoddomain", "-f", "0", "mod.example"))
        self.assertEqual(h.read(qd), ("| %s/vdelivermail '' %s\n" % (sbindir(), self.GOOD[-1])).encode())
        st = os.stat(h.path(qd))
        self.assertEqual((oct(st.st_mode & 0o7777), st.st_uid, st.st_gid), ("0o600", 555, 555))
        self.ok(h.run("vmoddomain", "-H", "MD5", "mod.example"))
        self.assertEqual(h.read("domains/mod.example/hash_method"), b"MD5\n")
        self.assertEqual(h.listing("domains/mod.example").count(".qmail-default"), 1)
        # -H alone leaves a hand-made .qmail-default as it is
        h.write(qd, "| /usr/local/bin/my-own-delivery\n")
        self.ok(h.run("vmoddomain", "-H", "SHA-512", "mod.example"))
        self.assertEqual(h.read(qd), b"| /usr/local/bin/my-own-delivery\n")
        self.assertEqual(h.read("domains/mod.example/hash_method"), b"SHA-512\n")
        self.assertEqual(h.run("vmoddomain", "mod.example").returncode, 64)
        self.assertEqual(h.run("vmoddomain", "-h", "delete", "nope.example").returncode, 68)


class DeleteAndRollback(DomainTestCase):
    def setUp(self):
        super().setUp()
        self.ok(self.add("existing.example"))
        self.home.write("control/locals", "localhost\n")

    def test_vdeldomain_leaves_the_tree_as_before_the_add(self):
        h = self.home
        before = h.snapshot()
        self.ok(self.add("gone.example", "-R", "-h", "MD5", "-E", "delete"))
        self.ok(h.run("vadduser", "alice@gone.example", "-r", "10"))
        self.ok(h.run("vadduser", "zed@gone.example", "-r", "10"))
        self.assertNotEqual(h.snapshot(), before)
        p = self.ok(h.run("vdeldomain", "gone.example"))
        self.assertEqual(p.stdout, b"removed domain gone.example\n")
        after = h.snapshot()
        self.assertEqual(removed_names(before, after), ["gone.example"] if h.database else [])
        self.assertEqual(set(after) ^ set(before), {"control/chkrcptdomains"})  # -R created it; it stays, empty
        self.assertEqual(after.pop("control/chkrcptdomains")[4], b"")
        self.assertEqual(after, before)

    def test_unknown_domain_is_68_and_changes_nothing(self):
        before = self.home.snapshot()
        p = self.home.run("vdeldomain", "nope.example")
        self.assertEqual(p.returncode, 68)
        self.assertEqual(p.stderr, b"vdeldomain: no such domain nope.example\n")
        self.assertEqual(self.home.snapshot(), before)

    def test_failure_while_publishing_leaves_no_trace(self):
        h = self.home
        # users/cdb cannot be replaced when it has turned into a directory: the add fails after
        # users/assign and .qmail-default were already put in place, and must undo them.
        os.unlink(h.path("users/cdb"))
        os.makedirs(h.path("users/cdb/blocker"))
        before = h.snapshot()
        p = self.add("fail.example")
        self.assertEqual(p.returncode, 73, p.stderr)
        self.assertEqual(h.snapshot(), before)
        self.assertFalse([f for f in os.listdir(h.path("users")) if f.startswith(".")])

    def test_failure_while_staging_leaves_no_trace(self):
        h = self.home
        # an unreadable control file stops the add after the directories were created
        os.unlink(h.path("control/rcpthosts"))
        os.makedirs(h.path("control/rcpthosts"))
        before = h.snapshot()
        p = self.add("fail.example")
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(h.snapshot(), before)

    def test_unwritable_control_directory_as_a_user(self):
        h = self.home
        subprocess.run(["chown", "-R", "%d:%d" % (NOBODY, NOBODY), h.root], check=True)
        os.chmod(h.path("control"), 0o555)
        before = h.snapshot()
        p = self.add("fail.example", "-i", str(NOBODY), "-g", str(NOBODY), user=NOBODY)
        self.assertEqual(p.returncode, 73, p.stderr)
        self.assertIn(h.path("control").encode(), p.stderr)
        self.assertEqual(h.snapshot(), before)


class InfoAndCheck(DomainTestCase):
    def test_vdominfo_block_fields_and_json(self):
        h = self.home
        self.ok(self.add("info.example", "-h", "SHA-256"))
        self.ok(h.run("vadduser", "joe@info.example", "-r", "10"))
        out = self.ok(h.run("vdominfo", "info.example")).stdout.decode().splitlines()
        self.assertEqual(out[0], "---- Domain info.example" + " " * 13 + " " + "-" * 31)
        self.assertIn("    domain: info.example", out)
        self.assertIn("       uid: 555", out)
        self.assertIn("Domain Dir: " + h.path("domains/info.example"), out)
        self.assertIn("  Base Dir: " + h.path("home"), out)
        self.assertIn("crypt Hash: SHA-256", out)
        self.assertIn("     Users: 2", out)
        out = self.ok(h.run("vdominfo", "-u", "-t", "info.example")).stdout.decode().splitlines()
        self.assertEqual(out, ["---- Domain info.example " + "-" * 16, "       uid: 555", "     Users: 2",
                               "   vlimits: disabled"])
        j = json.loads(self.ok(h.run("vdominfo", "--json", "info.example")).stdout)
        self.assertEqual((j["domain"], j["users"], j["hash"], j["handler"], j["store"]),
                         ("info.example", 2, "SHA-256", "bounce-no-mailbox", BACKEND))
        self.assertEqual(j["aliases"], ["abuse", "mailer-daemon"])
        self.ok(self.add("other.example"))
        lines = self.ok(h.run("vdominfo", "--json")).stdout.splitlines()
        self.assertEqual([json.loads(l)["domain"] for l in lines], ["info.example", "other.example"])
        self.assertEqual(h.run("vdominfo", "nope.example").returncode, 68)

    def test_check_finds_what_was_broken_by_hand(self):
        h = self.home
        self.ok(self.add("a.example"))
        self.ok(self.add("b.example"))
        self.ok(h.run("qmailctl", "check"))
        h.write("control/virtualdomains", "a.example:a.example\nghost.example:ghost.example\n")
        os.makedirs(h.path("domains/stray.example"))
        os.rename(h.path("home/L2P/a.example/postmaster/Maildir"), h.path("home/L2P/a.example/postmaster/gone"))
        p = h.run("qmailctl", "check", "--json")
        self.assertEqual(p.returncode, 1)
        found = {(j.get("domain"), j.get("check")) for j in map(json.loads, p.stdout.splitlines()) if "check" in j}
        self.assertEqual(found, {("b.example", "virtualdomains"), ("ghost.example", "virtualdomains"),
                                 ("stray.example", "directory"), ("a.example", "home")})
        summary = json.loads(p.stdout.splitlines()[-1])
        self.assertEqual((summary["domains"], summary["problems"], summary["store"]), (2, 4, BACKEND))


class Concurrency(DomainTestCase):
    def test_two_loops_of_200_adds(self):
        h = self.home
        errors = []

        def loop(prefix):
            for i in range(200):
                p = h.run("vadddomain", "%s%03d.example" % (prefix, i), "-r", "8", "--lock-wait", "120")
                if p.returncode != 0:
                    errors.append(p.stderr)

        threads = [threading.Thread(target=loop, args=(x,)) for x in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        names = {"%s%03d.example" % (x, i) for x in "ab" for i in range(200)}
        assign = h.read("users/assign").decode().splitlines()
        self.assertEqual(assign[-1], ".")
        self.assertEqual({l[1:].split("-:")[0] for l in assign[:-1]}, names)
        rcpt = set(h.read("control/rcpthosts").decode().split()) | set(h.read("control/morercpthosts").decode().split())
        self.assertEqual(rcpt, names)
        self.assertEqual(len(h.read("control/rcpthosts").splitlines()), 50)
        vd = set(h.read("control/virtualdomains").decode().split())
        self.assertEqual(vd, {"%s:%s" % (n, n) for n in names})
        keys = subprocess.run(["cdb", "-l", h.path("users/cdb")], capture_output=True, check=True).stdout.split()
        self.assertEqual(len(keys), 401)
        keys = subprocess.run(["cdb", "-l", h.path("control/morercpthosts.cdb")], capture_output=True,
                              check=True).stdout.split()
        self.assertEqual(len(keys), 350)
        p = h.run("qmailctl", "check", "--json")
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(json.loads(p.stdout.splitlines()[-1])["mailboxes"], 400)


class AliasDomains(DomainTestCase):
    def setUp(self):
        super().setUp()
        self.ok(self.add("example.com"))
        self.ok(self.home.run("vadduser", "joe@example.com", "--password-stdin", input=b"pw-joe-1\n"))

    def test_add_show_use_and_remove(self):
        h = self.home
        before = h.snapshot()
        p = self.ok(h.run("vaddaliasdomain", "Alias.Example", "example.com"))
        self.assertEqual(p.stdout, b"added alias domain alias.example of example.com\n")
        # IndiMail's layout
        self.assertEqual(os.readlink(h.path("domains/alias.example")), "example.com")
        assign = h.read("users/assign").decode().splitlines()
        real = [l for l in assign if l.startswith("+example.com-:")][0].split(":")
        self.assertIn("+alias.example-:alias.example:%s:%s:%s:-::" % (real[2], real[3], h.path("domains/alias.example")),
                      assign)
        self.assertIn("alias.example", h.read("control/rcpthosts").decode().splitlines())
        self.assertIn("alias.example:alias.example", h.read("control/virtualdomains").decode().splitlines())
        self.assertEqual(h.read("domains/example.com/.aliasdomains"), b"alias.example\n")
        # joe@alias.example is joe@example.com for every command, on either store
        j = json.loads(self.ok(h.run("vuserinfo", "--json", "joe@alias.example")).stdout)
        self.assertEqual((j["name"], j["domain"]), ("joe", "example.com"))
        info = json.loads(self.ok(h.run("vdominfo", "--json", "alias.example")).stdout)
        self.assertEqual((info["domain"], info["alias_of"]), ("alias.example", "example.com"))
        info = json.loads(self.ok(h.run("vdominfo", "--json", "example.com")).stdout)
        self.assertEqual((info["alias_of"], info["alias_domains"]), (None, ["alias.example"]))
        listed = [json.loads(l)["domain"] for l in self.ok(h.run("vdominfo", "--json")).stdout.splitlines()]
        self.assertEqual(listed, ["example.com"])  # the real domains; their alias domains inside
        self.ok(h.run("qmailctl", "check"))
        cdbs = self.ok(h.run("qmailctl", "cdb", "--force")).stdout.decode()
        if h.backend == "files":
            self.assertIn("vpasswd.example.com", cdbs)
        self.assertNotIn("vpasswd.alias.example", cdbs)  # the same file: compiled once
        # removing the alias domain leaves the real one as it was
        p = self.ok(h.run("vdeldomain", "alias.example"))
        self.assertEqual(p.stdout, b"removed alias domain alias.example (of example.com)\n")
        after = h.snapshot()
        self.assertEqual(removed_names(before, after), ["alias.example"] if h.database else [])
        self.assertEqual(set(after) ^ set(before), {"domains/example.com/.aliasdomains"})
        self.assertEqual(after.pop("domains/example.com/.aliasdomains")[4], b"")
        self.assertEqual(after, before)
        self.ok(h.run("vuserinfo", "joe@example.com"))
        self.assertEqual(h.run("vuserinfo", "joe@alias.example").returncode, 68)

    def test_removing_the_real_domain_removes_its_alias_domains(self):
        h = self.home
        self.ok(h.run("vaddaliasdomain", "one.example", "example.com"))
        self.ok(h.run("vaddaliasdomain", "two.example", "example.com"))
        self.ok(h.run("vdeldomain", "--yes", "example.com"))
        for name in ("one.example", "two.example", "example.com"):
            self.assertFalse(os.path.lexists(h.path("domains", name)), name)
            self.assertNotIn(name, h.read("control/rcpthosts").decode())
            self.assertNotIn(name, h.read("control/virtualdomains").decode())
            self.assertNotIn("+%s-" % name, h.read("users/assign").decode())
            self.assertEqual(h.run("vdominfo", name).returncode, 68)

    def test_refusals_change_nothing(self):
        h = self.home
        self.ok(h.run("vaddaliasdomain", "alias.example", "example.com"))
        self.ok(self.add("other.example"))
        before = h.snapshot()
        for args, code in [(("other.example", "example.com"), 9),  # a domain already
                           (("alias.example", "example.com"), 9),
                           (("new.example", "nowhere.example"), 68),
                           (("new.example", "alias.example"), 65),  # an alias of an alias
                           (("example.com", "example.com"), 65),
                           (("bad..name", "example.com"), 65),
                           (("-x.example", "example.com"), 64),
                           (("new.example",), 64)]:
            p = h.run("vaddaliasdomain", *args)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertEqual(h.snapshot(), before, args)
        os.symlink("example.com", h.path("domains/stray.example"))  # a file of that name: 9, nothing made
        before = h.snapshot()
        self.assertEqual(h.run("vaddaliasdomain", "stray.example", "example.com").returncode, 9)
        self.assertEqual(h.snapshot(), before)


if __name__ == "__main__":
    unittest.main()
