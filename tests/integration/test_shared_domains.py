"""Two mail hosts (two QMAILHOMEs) on one MariaDB database: a domain added, changed, aliased, renamed or
removed on one host reaches the other through `qmailctl sync`; before it, the other host says why it does
not know the domain, and `qmailctl check` reports the drift. Concurrent adds of one name on both hosts:
exactly one wins, the other gets "already exists" with nothing changed. (MariaDB store only.)"""
import concurrent.futures
import json
import os
import unittest

from qvtest import BACKEND, Home, HomeTestCase, login, sql


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


if __name__ == "__main__":
    unittest.main()
