"""Two mail hosts (two QMAILHOMEs) on one MariaDB database: a domain added, changed, aliased, renamed or
removed on one host reaches the other through `qmailctl sync`; before it, the other host says why it does
not know the domain, and `qmailctl check` reports the drift. Concurrent adds of one name on both hosts:
exactly one wins, the other gets "already exists" with nothing changed. (MariaDB store only.)"""
import concurrent.futures
import json
import os
import smtplib
import subprocess
import unittest

from qvtest import BACKEND, Home, HomeTestCase, login, sql, tool
from smtptest import MailHost


@unittest.skipUnless(BACKEND == "mysql", "domains are shared through the MariaDB store only")
class SharedCase(HomeTestCase):
    def setUp(self):
        super().setUp()
        self.a = self.home
        self.b = Home()
        self.addCleanup(self.b.cleanup)
        sql("DROP DATABASE IF EXISTS %s" % self.b.database)
        self.b.database = self.a.database  # the second host, on the same database

    def sync(self, h, *args):
        return self.ok(h.run("qmailctl", "sync", *args)).stdout.decode().splitlines()

    def check(self, h):
        return h.run("qmailctl", "check")

    def assigned(self, h):
        """{domain: (uid, gid, dir)} of users/assign."""
        out = {}
        if not os.path.exists(h.path("users/assign")):
            return out
        for line in h.read("users/assign").decode().splitlines():
            if line.startswith("+"):
                f = line[1:].split(":")
                out[f[0][:-1]] = (f[2], f[3], f[4])
        return out

    def controls(self, h, name):
        p = h.path("control", name)
        return sorted(h.read("control/" + name).decode().split()) if os.path.exists(p) else []


class Sync(SharedCase):
    def test_a_domain_added_on_a_is_served_by_b_after_one_sync(self):
        a, b = self.a, self.b
        self.ok(a.run("vadddomain", "example.com", "-r", "10"))
        self.ok(a.run("vadduser", "joe@example.com", "--password-stdin", input=b"joe-secret-1\n"))
        # before the sync, B says why it does not know the domain, and check reports the drift
        p = b.run("vadduser", "ann@example.com", "--password-stdin", input=b"ann-secret-1\n")
        self.assertEqual(p.returncode, 68, p.stderr)
        self.assertIn(b"the database has it (added on another host); qmailctl sync lays it out here", p.stderr)
        p = self.check(b)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"example.com: not in step with the database: qmailctl sync would add it", p.stdout)
        before = b.snapshot()
        lines = self.sync(b, "--dry-run")
        self.assertEqual(lines[-1], "would add example.com")
        self.assertIn("would write %s" % b.path("users/assign"), lines)
        self.assertEqual(b.snapshot(), before)
        # one sync lays it out as vadddomain did on A, in B's own directories
        self.assertEqual(self.sync(b), ["add example.com"])
        self.assertEqual(self.sync(b), [])  # idempotent
        self.assertEqual(self.assigned(b)["example.com"][:2], self.assigned(a)["example.com"][:2])
        self.assertEqual(self.assigned(b)["example.com"][2], b.path("domains", "example.com"))
        for name in ("rcpthosts", "virtualdomains"):
            self.assertEqual(self.controls(b, name), self.controls(a, name), name)
        self.assertEqual(b.read("domains/example.com/.qmail-default"), a.read("domains/example.com/.qmail-default"))
        self.assertTrue(os.path.isfile(b.path("users/cdb")))
        # B serves it: a mailbox added there is A's too, logins work on both, check is clean on both
        self.ok(b.run("vadduser", "ann@example.com", "--password-stdin", input=b"ann-secret-1\n"))
        self.ok(a.run("vuserinfo", "ann@example.com"))
        self.assertEqual(login(b, "joe@example.com", "joe-secret-1").returncode, 0)
        self.assertEqual(login(a, "ann@example.com", "ann-secret-1").returncode, 0)
        for h in (a, b):
            p = self.check(h)
            self.assertEqual(p.returncode, 0, p.stdout)

    def test_changes_aliases_renames_and_removals_follow(self):
        a, b = self.a, self.b
        self.ok(a.run("vadddomain", "example.com", "-r", "10"))
        self.sync(b)
        # a change of handler and hash method made on B reaches A
        self.ok(b.run("vmoddomain", "-h", "delete", "-H", "MD5", "example.com"))
        self.assertEqual(self.check(a).returncode, 1)
        self.assertEqual(self.sync(a),
                         ["update example.com (handler vdelivermail '' delete, hash MD5)"])
        self.assertEqual(a.read("domains/example.com/.qmail-default"), b.read("domains/example.com/.qmail-default"))
        self.assertIn(b"delete", a.read("domains/example.com/.qmail-default"))
        self.assertEqual(a.read("domains/example.com/hash_method"), b"MD5\n")
        # an alias domain (IndiMail's aliasdomain table)
        self.ok(a.run("vaddaliasdomain", "alias.example", "example.com"))
        self.assertEqual(a.rows("SELECT alias, domain FROM aliasdomain"), [["alias.example", "example.com"]])
        self.assertEqual(self.sync(b), ["add-alias alias.example (alias of example.com)"])
        self.assertEqual(os.readlink(b.path("domains/alias.example")), "example.com")
        self.ok(a.run("vadduser", "joe@example.com", "--password-stdin", input=b"joe-secret-1\n"))
        self.assertEqual(login(b, "joe@alias.example", "joe-secret-1").returncode, 0)
        # a rename: B drops the old name and lays out the new one; its alias domain follows
        self.ok(a.run("vrenamedomain", "example.com", "example.net"))
        self.assertEqual(sorted(self.sync(b)), ["add example.net", "add-alias alias.example (alias of example.net)",
                                                "remove example.com (removed on another host)",
                                                "remove-alias alias.example (alias of example.com)"])
        self.assertEqual(sorted(self.assigned(b)), ["alias.example", "example.net"])
        self.assertEqual(self.controls(b, "rcpthosts"), ["alias.example", "example.net"])
        self.assertEqual(login(b, "joe@example.net", "joe-secret-1").returncode, 0)
        # removal on B reaches A; A keeps no trace of the domain
        self.ok(b.run("vdeldomain", "example.net"))
        self.assertEqual(a.rows("SELECT domain FROM qvdomain"), [])
        self.assertEqual(a.rows("SELECT alias FROM aliasdomain"), [])
        self.sync(a)
        self.assertEqual(self.assigned(a), {})
        self.assertEqual(self.controls(a, "rcpthosts"), [])
        self.assertFalse(os.path.exists(a.path("domains/example.net")))
        for h in (a, b):
            self.assertEqual(self.check(h).returncode, 0, self.check(h).stdout)

    def test_json_and_a_mailbox_tree_with_mail_is_kept(self):
        a, b = self.a, self.b
        self.ok(a.run("vadddomain", "example.com", "-r", "10"))
        j = [json.loads(l) for l in self.sync(b, "--json")]
        self.assertEqual([(x["action"], x["domain"], x["status"]) for x in j], [("add", "example.com", "done")])
        # mail B kept for a mailbox of the domain (its own home) stays when the domain goes elsewhere
        kept = b.path("home/A2E/example.com/dan/Maildir/new")
        os.makedirs(kept)
        with open(os.path.join(kept, "1.msg"), "w") as f:
            f.write("mail\n")
        self.ok(a.run("vdeldomain", "example.com"))
        lines = self.sync(b, "-v")
        self.assertIn("remove example.com (removed on another host)", lines)
        self.assertTrue(os.path.exists(os.path.join(kept, "1.msg")))
        self.assertFalse(os.path.exists(b.path("domains/example.com")))
        self.assertNotIn("example.com", self.assigned(b))


class Refusals(SharedCase):
    def test_a_name_the_database_has_is_refused_on_either_host(self):
        a, b = self.a, self.b
        self.ok(a.run("vadddomain", "example.com", "-r", "10"))
        before = b.snapshot()
        p = b.run("vadddomain", "example.com", "-r", "10")
        self.assertEqual(p.returncode, 9, p.stderr)
        self.assertIn(b"already exists (in the database)", p.stderr)
        self.assertEqual(b.snapshot(), before)  # B's files and the tables as they were
        # an alias domain cannot take a domain's name, nor a domain an alias domain's
        self.sync(b)
        self.ok(a.run("vadddomain", "example.org", "-r", "10"))
        p = b.run("vaddaliasdomain", "example.org", "example.com")
        self.assertEqual(p.returncode, 9, p.stderr)
        self.ok(a.run("vaddaliasdomain", "alias.example", "example.com"))
        p = b.run("vadddomain", "alias.example", "-r", "10")
        self.assertEqual(p.returncode, 9, p.stderr)

    def test_concurrent_adds_of_overlapping_names_one_wins_each(self):
        a, b = self.a, self.b
        names = ["d%02d.example" % i for i in range(24)]

        def add(host, name):
            return name, host.run("vadddomain", name, "-r", "10", "--lock-wait", "60").returncode

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            jobs = [pool.submit(add, h, n) for n in names for h in (a, b)]
            results = [j.result() for j in jobs]
        for n in names:
            codes = sorted(c for m, c in results if m == n)
            self.assertEqual(codes, [0, 9], n)
        self.assertEqual(sorted(r[0] for r in a.rows("SELECT domain FROM qvdomain")), names)
        self.assertEqual(sorted(r[0] for r in a.rows("SELECT pw_domain FROM indimail WHERE pw_name = 'postmaster'")),
                         names)
        for h in (a, b):
            self.sync(h)
        for h in (a, b):
            self.assertEqual(sorted(self.assigned(h)), names)
            p = self.check(h)
            self.assertEqual(p.returncode, 0, p.stdout)

    def test_hostile_rows_are_not_laid_out(self):
        a, b = self.a, self.b
        self.ok(a.run("vadddomain", "example.com", "-r", "10"))
        cols = "domain, owner, uid, gid, handler, program, hash_method, base_path, chkrcpt"
        a.rows("INSERT INTO qvdomain (%s) VALUES ('../../etc', ':', 555, 555, '', 'vdelivermail', '', '', 0), "
               "('evil.example', ':', 555, 555, '|rm -rf /', 'vdelivermail', '', '', 0), "
               "('deep.example', ':', 555, 555, '', 'vdelivermail', '', '/tmp/../etc', 0)" % cols)
        a.rows("INSERT INTO aliasdomain (alias, domain) VALUES ('UPPER.example', 'example.com')")
        before = b.snapshot()
        p = b.run("qmailctl", "sync")
        self.assertEqual(p.returncode, 65, p.stderr)
        for name in (b"../../etc", b"evil.example", b"deep.example", b"UPPER.example"):
            self.assertIn(b"the database's row for '" + name + b"' is not used", p.stderr)
        self.assertEqual(p.stdout, b"add example.com\n")  # the good row is laid out all the same
        made = set(b.snapshot()) - set(before)
        self.assertEqual([k for k in made if any(w in k.lower() for w in ("evil", "deep", "upper", "etc"))], [])
        self.assertFalse(os.path.exists(os.path.join(os.path.dirname(b.root), "etc", "bulk_mail")))

    def test_a_domain_the_database_lacks_is_reported_never_removed(self):
        a = self.a
        self.ok(a.run("vadddomain", "example.com", "-r", "10"))
        self.ok(a.run("vadddomain", "example.org", "-r", "10"))
        self.ok(a.run("vaddaliasdomain", "alias.example", "example.org"))
        # the rows lost (a wrong database, or one this host's domains were never recorded in): not removed
        a.rows("DELETE FROM qvdomain WHERE domain = 'example.org'; DELETE FROM aliasdomain")
        before = a.snapshot()
        p = a.run("qmailctl", "sync")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"domain example.org is on this host but not in the database", p.stderr)
        self.assertIn(b"alias domain alias.example (of example.org) is on this host but not in the database", p.stderr)
        self.assertEqual(a.snapshot(), before)
        self.assertIn(b"example.org is on this host but not in the database", self.check(a).stdout)
        # db init records them again; then the host is in step
        p = self.ok(a.run("qmailctl", "db", "init"))
        self.assertIn(b"recorded domain example.org", p.stdout)
        self.assertIn(b"recorded domain alias.example (alias of example.org)", p.stdout)
        self.assertEqual(self.sync(a), [])
        self.assertEqual(self.check(a).returncode, 0)


def vchkpass_env(home, address, password, service="imap"):
    """A Dovecot login through vchkpass whose program prints its environment: (exit code, {name: value})."""
    r, w = os.pipe()
    os.write(w, address.encode() + b"\0" + password.encode() + b"\0\0")
    os.close(w)
    try:
        p = subprocess.run(["sh", "-c", 'exec "$@" 3<&%d' % r, "sh", tool("vchkpass"), "-s", service, "--", "env"],
                           env=home.env(TCPREMOTEIP="10.1.2.3"), capture_output=True, pass_fds=(r,), timeout=60)
    finally:
        os.close(r)
    env = dict(l.split("=", 1) for l in p.stdout.decode().splitlines() if "=" in l)
    return p.returncode, env


class MailboxHosts(SharedCase):
    """Mailboxes belong to a host (IndiMail's hostcntrl): vadduser --host, the proxy fields of vchkpass,
    the homes sync makes."""

    def setUp(self):
        super().setUp()
        a, b = self.a, self.b
        a.write("control/me", "a.example.net\n")
        b.write("control/me", "b.example.net\n")
        a.write("control/clusteraddress", "127.0.0.1:2525\n")
        b.write("control/clusteraddress", "[::1]:2526\n")
        self.ok(a.run("vadddomain", "example.com", "-r", "10"))
        self.assertEqual(self.sync(a), ["register a.example.net (127.0.0.1 port 2525)"])
        self.assertEqual(self.sync(b), ["register b.example.net (::1 port 2526)", "add example.com"])

    def test_owner_proxy_fields_and_homes(self):
        a, b = self.a, self.b
        self.ok(a.run("vadduser", "amy@example.com", "--password-stdin", input=b"amy-secret-1\n"))
        self.ok(b.run("vadduser", "bob@example.com", "--password-stdin", input=b"bob-secret-1\n"))
        self.assertEqual(sorted(a.rows("SELECT pw_name, host FROM hostcntrl")),
                         [["amy", "a.example.net"], ["bob", "b.example.net"], ["postmaster", "a.example.net"]])
        info = json.loads(self.ok(b.run("vuserinfo", "--json", "amy@example.com")).stdout)
        self.assertEqual((info["host"], info["local"]), ("a.example.net", False))
        self.assertIn(b"(on host a.example.net)", self.ok(b.run("vuserinfo", "amy@example.com")).stdout)
        # a login on B for A's mailbox: B checks the password and tells Dovecot's proxy where it lives
        rc, env = vchkpass_env(b, "amy@example.com", "amy-secret-1")
        self.assertEqual(rc, 0)
        self.assertEqual((env.get("PROXY"), env.get("HOST")), ("y", "127.0.0.1"))
        self.assertIn("PROXY", env["EXTRA"].split())
        self.assertIn("HOST", env["EXTRA"].split())
        rc, env = vchkpass_env(a, "bob@example.com", "bob-secret-1", service="pop3")
        self.assertEqual((rc, env.get("HOST")), (0, "::1"))
        rc, env = vchkpass_env(a, "amy@example.com", "amy-secret-1")  # its own host: no proxy
        self.assertEqual((rc, "PROXY" in env), (0, False))
        self.assertEqual(vchkpass_env(b, "amy@example.com", "wrong-password")[0], 1)
        # a mailbox added on A for B: no home on A; B's sync makes it
        self.ok(a.run("vadduser", "cat@example.com", "--host", "b.example.net", "--password-stdin",
                      input=b"cat-secret-1\n"))
        home = a.user_record("example.com", "cat")[5]
        self.assertFalse(os.path.exists(home))
        self.assertEqual(self.sync(b), ["add-home cat@example.com (%s)" % home])
        self.assertTrue(os.path.isdir(os.path.join(home, "Maildir", "new")))
        self.assertEqual(self.sync(b), [])
        # renamed, it stays on its host; removed, its row goes
        self.ok(a.run("vrenameuser", "bob@example.com", "rob@example.com"))
        self.assertEqual(a.rows("SELECT host FROM hostcntrl WHERE pw_name = 'rob'"), [["b.example.net"]])
        self.ok(b.run("vdeluser", "rob@example.com"))
        self.assertEqual(a.rows("SELECT host FROM hostcntrl WHERE pw_name IN ('bob', 'rob')"), [])

    def test_a_mailbox_moves_to_another_host(self):
        a, b = self.a, self.b
        b.write("control/clusterhomes", "local\n")  # B's homes: on a file system A reaches (one machine here)
        self.assertEqual(self.sync(b), ["register b.example.net (::1 port 2526, homes local)"])
        self.ok(a.run("vadduser", "amy@example.com", "--password-stdin", input=b"amy-secret-1\n"))
        old = a.user_record("example.com", "amy")[5]
        mail = {"Maildir/new/1.a.example.net": b"Subject: one\n\nnew mail\n",
                "Maildir/cur/2.a.example.net:2,S": b"Subject: two\n\nread mail\n",
                "Maildir/.Sent/cur/3.a.example.net:2,S": b"Subject: three\n\nsent mail\n"}
        for name, text in mail.items():
            os.makedirs(os.path.dirname(os.path.join(old, name)), exist_ok=True)
            with open(os.path.join(old, name), "wb") as f:
                f.write(text)
        # refused, changing nothing: on B, which does not hold it; to an unknown host; to a host that says
        # nowhere how its homes are reached; a copy that fails
        sql("INSERT INTO qvhost (host, address, smtp_port, base_path, homes) VALUES "
            "('c.example.net', '127.0.0.3', 25, '/srv/c', ''), ('d.example.net', '127.0.0.4', 25, '/srv/d', "
            "'nosuch.invalid:')", a.database)
        before = a.snapshot()
        for h, host, code, text in (
                (b, "b.example.net", 65, b"amy@example.com lives on host a.example.net, which holds its Maildir"),
                (a, "nowhere.example.net", 68, b"no host nowhere.example.net shares this database"),
                (a, "c.example.net", 78, b"host c.example.net does not say how the other hosts reach its mailbox homes"),
                (a, "d.example.net", 74, b"rsync --archive --mkpath " + old.encode() + b"/ nosuch.invalid:/srv/d/")):
            p = h.run("vmoduser", "--host", host, "amy@example.com")
            self.assertEqual(p.returncode, code, p.stderr)
            self.assertIn(text, p.stderr)
            self.assertEqual(a.snapshot(), before)
        p = a.run("vmoduser", "--host", "b.example.net", "--dry-run", "amy@example.com")
        self.assertEqual(p.returncode, 0, p.stderr)
        new = os.path.join(b.root, "home", "A2E", "example.com", "amy")
        self.assertIn(("would copy %s/ to %s/" % (old, new)).encode(), p.stdout)
        self.assertEqual(a.snapshot(), before)

        # the move: the home copied to B's place, then the host and home changed, then the old copy removed
        out = self.ok(a.run("vmoduser", "--host", "b.example.net", "amy@example.com")).stdout.decode()
        self.assertEqual(out, "moved amy@example.com from host a.example.net to b.example.net (home %s)\n" % new)
        self.assertFalse(os.path.exists(old))
        for name, text in mail.items():
            with open(os.path.join(new, name), "rb") as f:
                self.assertEqual(f.read(), text)
        self.assertEqual(a.rows("SELECT host, (SELECT pw_dir FROM indimail WHERE pw_name = 'amy') FROM hostcntrl "
                                "WHERE pw_name = 'amy'"), [["b.example.net", new]])
        # logins: on B its own; on A handed to B
        rc, env = vchkpass_env(b, "amy@example.com", "amy-secret-1")
        self.assertEqual((rc, "PROXY" in env), (0, False))
        rc, env = vchkpass_env(a, "amy@example.com", "amy-secret-1")
        self.assertEqual((rc, env.get("HOST")), (0, "::1"))
        self.assertEqual(self.sync(b), [])  # its home is there: nothing to make
        # again: nothing to do; back from A, which no longer holds it: refused
        self.assertEqual(self.ok(a.run("vmoduser", "--host", "b.example.net", "amy@example.com")).stdout,
                         b"amy@example.com is on host b.example.net already\n")
        p = a.run("vmoduser", "--host", "a.example.net", "amy@example.com")
        self.assertEqual(p.returncode, 65, p.stderr)
        p = b.run("vmoduser", "--host", "a.example.net", "amy@example.com")
        self.assertEqual(p.returncode, 78, p.stderr)  # A has no control/clusterhomes
        p = a.run("vmoduser", "--host", "b.example.net", "-q", "5M", "amy@example.com")
        self.assertEqual(p.returncode, 64, p.stderr)
        # an inactive mailbox moves too, and stays inactive (--json)
        self.ok(a.run("vadduser", "ivy@example.com", "--password-stdin", input=b"ivy-secret-1\n"))
        self.ok(a.run("vmoduser", "--inactive", "ivy@example.com"))
        got = json.loads(self.ok(a.run("vmoduser", "--host", "b.example.net", "--json", "ivy@example.com")).stdout)
        self.assertEqual((got["status"], got["from_host"], got["host"]), ("moved", "a.example.net", "b.example.net"))
        self.assertTrue(got["dir"].startswith(os.path.join(b.root, "home") + "/"), got["dir"])
        self.assertTrue(os.path.isdir(os.path.join(got["dir"], "Maildir", "new")))
        self.assertEqual(a.rows("SELECT pw_dir FROM indibak WHERE pw_name = 'ivy'"), [[got["dir"]]])
        self.assertEqual(a.rows("SELECT host FROM hostcntrl WHERE pw_name = 'ivy'"), [["b.example.net"]])
        self.assertNotEqual(vchkpass_env(b, "ivy@example.com", "ivy-secret-1")[0], 0)

    def test_refusals(self):
        a = self.a
        before = a.snapshot()
        p = a.run("vadduser", "dan@example.com", "--host", "nowhere.example.net", "-r", "10")
        self.assertEqual(p.returncode, 68, p.stderr)
        self.assertIn(b"no host nowhere.example.net shares this database", p.stderr)
        self.assertEqual(a.snapshot(), before)
        a.write("control/clusteraddress", "not-an-address\n")
        p = a.run("qmailctl", "sync")
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(b"clusteraddress: 'not-an-address' is not an IP address", p.stderr)
        files = Home("files")
        self.addCleanup(files.cleanup)
        self.assertEqual(files.run("vadddomain", "example.org", "-r", "10").returncode, 0)
        p = files.run("vadduser", "dan@example.org", "--host", "b.example.net", "-r", "10")
        self.assertEqual(p.returncode, 64, p.stderr)


@unittest.skipUnless(BACKEND == "mysql", "domains are shared through the MariaDB store only")
class MailBetweenHosts(unittest.TestCase):
    """Any host takes mail for any mailbox and hands it to the mailbox's host over SMTP."""

    def setUp(self):
        self.a = MailHost()
        self.addCleanup(self.a.cleanup)
        self.b = MailHost(share=self.a, me="mail2.example.com")
        self.addCleanup(self.b.cleanup)
        self.second_host_made(self.b)
        for h in (self.a, self.b):
            h.start()
            h.home.write("control/clusteraddress", "127.0.0.1:%d\n" % h.port)
            h.run_ok("qmailctl", "sync")
            h.start_send()
        self.a.run_ok("vadduser", "amy@example.com", "--password-stdin", input=b"amy-secret-1\n")
        self.b.run_ok("vadduser", "bob@example.com", "--password-stdin", input=b"bob-secret-1\n")

    def second_host_made(self, b):
        """Where test_cluster points B at another node."""

    def send(self, host, rcpt, subject):
        with smtplib.SMTP("127.0.0.1", host.port, timeout=30) as s:
            s.sendmail("sender@remote.test", [rcpt], ("Subject: %s\r\n\r\nbody\r\n" % subject).encode())

    def test_mail_reaches_the_mailboxs_host_from_either(self):
        a, b = self.a, self.b
        self.send(b, "amy@example.com", "to amy through B")
        self.send(a, "bob@example.com", "to bob through A")
        self.send(a, "amy@example.com", "to amy through A")
        amy = a.mailbox("amy@example.com")
        got = a.wait_for(lambda: len(a.maildir_messages(amy)) == 2 and a.maildir_messages(amy), "amy's mail on A")
        self.assertEqual(sorted(m.split(b"Subject: ")[1].split(b"\n")[0] for m in got),
                         [b"to amy through A", b"to amy through B"])
        bob = b.mailbox("bob@example.com")
        got = b.wait_for(lambda: b.maildir_messages(bob), "bob's mail on B")
        self.assertIn(b"Subject: to bob through A", got[0])
        self.assertTrue(bob.startswith(b.home.root) and amy.startswith(a.home.root))
        b.wait_for(lambda: "on host mail.example.com: routed to example.com:127.0.0.1:%d" % a.port in b.send_log(),
                   "B's log line")

    def test_a_moved_mailbox_gets_its_mail_on_its_new_host(self):
        a, b = self.a, self.b
        self.send(b, "amy@example.com", "before the move")
        amy = a.mailbox("amy@example.com")
        a.wait_for(lambda: a.maildir_messages(amy), "amy's first mail on A")
        b.home.write("control/clusterhomes", "local\n")
        b.run_ok("qmailctl", "sync")
        a.run_ok("vmoduser", "--host", "mail2.example.com", "amy@example.com")
        moved = b.mailbox("amy@example.com")
        self.assertTrue(moved.startswith(b.home.root))
        self.assertFalse(os.path.exists(amy))
        self.assertIn(b"Subject: before the move", b.maildir_messages(moved)[0])
        self.send(a, "amy@example.com", "after the move, through A")
        self.send(b, "amy@example.com", "after the move, through B")
        got = b.wait_for(lambda: len(b.maildir_messages(moved)) == 3 and b.maildir_messages(moved), "amy's mail on B")
        self.assertEqual(sorted(m.split(b"Subject: ")[1].split(b"\n")[0] for m in got),
                         [b"after the move, through A", b"after the move, through B", b"before the move"])
        self.assertFalse(os.path.exists(amy))


if __name__ == "__main__":
    unittest.main()
