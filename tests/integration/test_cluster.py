"""Two qvmail hosts on a three-node MariaDB Galera cluster (scripts/galera-fixture, on loopback): host A
talks to node 1, host B to node 2. A domain added on A is served by B after one sync; adds of the same
names on both hosts at once end with each name once, the loser told "already exists"; a node killed with
-9 during a load on the other two loses no change and leaves no half change, and after it rejoins both
hosts agree with the database. (QV_GALERA_DIR names the fixture's directory; QV_MYSQL_DIR its node1.)"""
import concurrent.futures
import os
import random
import subprocess
import threading
import time
import unittest

import test_shared_domains
from qvtest import MYSQL_USER, MYSQL_PASSWORD, Home, login, sql

GALERA = os.environ.get("QV_GALERA_DIR")
SOURCE_DIR = os.environ.get("QV_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def node_socket(n):
    with open(os.path.join(GALERA, "node%d" % n, "socket")) as f:
        return f.read().strip()


def fixture(*args):
    subprocess.run([os.path.join(SOURCE_DIR, "scripts", "galera-fixture")] + list(args), check=True,
                   capture_output=True, timeout=300)


def on_node(n, statement, database):
    out = subprocess.run(["mariadb", "--no-defaults", "--socket=" + node_socket(n), "-u", MYSQL_USER,
                          "-p" + MYSQL_PASSWORD, "-N", "-B", database, "-e", statement],
                         capture_output=True, check=True).stdout.decode()
    return [l.split("\t") for l in out.splitlines()]


@unittest.skipUnless(GALERA, "needs the Galera fixture (QV_GALERA_DIR)")
class Cluster(unittest.TestCase):
    def setUp(self):
        self.a = Home("mysql")  # its database made through node 1 (QV_MYSQL_DIR)
        self.addCleanup(self.a.cleanup)
        self.b = Home("mysql")
        self.addCleanup(self.b.cleanup)
        sql("DROP DATABASE IF EXISTS %s" % self.b.database)
        self.b.database = self.a.database
        self.b.write("control/host.mysql", "localhost:%s:%s:%s\n" % (MYSQL_USER, MYSQL_PASSWORD, node_socket(2)))

    def ok(self, p):
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p

    def clean(self, h):
        p = h.run("qmailctl", "check")
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())

    def test_a_domain_added_through_node_1_is_served_by_b_on_node_2(self):
        a, b = self.a, self.b
        self.ok(a.run("vadddomain", "example.com", "-r", "10"))
        self.ok(a.run("vadduser", "joe@example.com", "--password-stdin", input=b"joe-secret-1\n"))
        p = b.run("vuserinfo", "joe@example.com")
        self.assertEqual(p.returncode, 68)
        self.assertIn(b"qmailctl sync lays it out here", p.stderr)
        self.assertEqual(self.ok(b.run("qmailctl", "sync")).stdout, b"add example.com\n")
        self.ok(b.run("vadduser", "ann@example.com", "--password-stdin", input=b"ann-secret-1\n"))
        self.assertEqual(login(b, "joe@example.com", "joe-secret-1").returncode, 0)
        self.assertEqual(login(a, "ann@example.com", "ann-secret-1").returncode, 0)
        # node 3, which neither host talks to, has every row
        self.assertEqual(on_node(3, "SELECT pw_name FROM indimail ORDER BY 1", a.database),
                         [["ann"], ["joe"], ["postmaster"]])
        for h in (a, b):
            self.clean(h)

    def test_concurrent_adds_of_the_same_names_on_two_nodes(self):
        """2 x 200 mailboxes and 2 x 20 domains of the same names, added on A and B at once: each name
        once, each loser told "already exists" (9), nothing half made; check clean on both."""
        a, b = self.a, self.b
        self.ok(a.run("vadddomain", "example.com", "-r", "10"))
        self.ok(b.run("qmailctl", "sync"))
        names = ["u%03d" % i for i in range(200)]
        domains = ["d%02d.example" % i for i in range(20)]

        def run(host, kind, name):
            if kind == "user":
                p = host.run("vadduser", name + "@example.com", "-r", "10", "--lock-wait", "120")
            else:
                p = host.run("vadddomain", name, "-r", "10", "--lock-wait", "120")
            return kind, name, p.returncode, p.stderr

        jobs = [(kind, n) for kind, ns in (("user", names), ("domain", domains)) for n in ns]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            # each host goes through the same names in the same order: most adds meet their twin
            futures = [pool.submit(run, h, kind, n) for kind, n in jobs for h in (a, b)]
            results = [f.result() for f in futures]
        for kind, n in jobs:
            got = sorted((rc, err) for k, m, rc, err in results if (k, m) == (kind, n))
            self.assertEqual([rc for rc, _ in got], [0, 9], (n, got))
            self.assertIn(b"already exists", got[1][1])
        rows = sorted(r[0] for r in on_node(1, "SELECT pw_name FROM indimail WHERE pw_domain = 'example.com'",
                                            a.database))
        self.assertEqual(rows, sorted(names + ["postmaster"]))
        self.assertEqual(sorted(r[0] for r in on_node(2, "SELECT domain FROM qvdomain", a.database)),
                         sorted(domains + ["example.com"]))
        # the winner's home is on its host; the loser made none
        for n in names:
            homes = [os.path.isdir(h.path("home", "T2Zsym", "example.com", n)) for h in (a, b)]
            self.assertEqual(homes.count(True), 1, n)
        for h in (a, b):
            self.ok(h.run("qmailctl", "sync"))
        for h in (a, b):
            self.clean(h)

    def test_a_node_killed_during_a_load_on_the_other_two(self):
        """500 changes through nodes 1 and 2 while node 3 is killed with -9 and rejoins: every command
        succeeded or failed with 69/75 having changed nothing; afterwards the hosts and all three nodes
        agree."""
        a, b = self.a, self.b
        self.ok(a.run("vadddomain", "example.com", "-r", "10"))
        self.ok(b.run("qmailctl", "sync"))
        results = []
        lock = threading.Lock()

        def load(host, tag, count):
            for i in range(count):
                name = "%s%03d" % (tag, i)
                if i % 5 == 4:  # a removal among the adds
                    p = host.run("vdeluser", "%s%03d@example.com" % (tag, i - 1), "--lock-wait", "120")
                    kind = "del"
                    name = "%s%03d" % (tag, i - 1)
                else:
                    p = host.run("vadduser", name + "@example.com", "-r", "10", "--lock-wait", "120")
                    kind = "add"
                with lock:
                    results.append((host, kind, name, p.returncode, p.stderr))

        threads = [threading.Thread(target=load, args=(a, "a", 250)), threading.Thread(target=load, args=(b, "b", 250))]
        for t in threads:
            t.start()
        time.sleep(2)
        fixture("kill", GALERA, "3")
        killed_after = len(results)
        for t in threads:
            t.join()
        fixture("rejoin", GALERA, "3")
        self.assertGreater(killed_after, 0)
        self.assertLess(killed_after, 500, "the kill came after the load")
        failed = [(k, n, rc, e) for _, k, n, rc, e in results if rc != 0]
        for k, n, rc, e in failed:
            self.assertIn(rc, (69, 75), (k, n, e))
        # what succeeded is in the database on every node, what failed changed nothing
        expect = set()
        for _, k, n, rc, _ in results:
            if rc == 0:
                (expect.add if k == "add" else expect.discard)(n)
        for node in (1, 2, 3):
            rows = {r[0] for r in on_node(node, "SELECT pw_name FROM indimail WHERE pw_domain = 'example.com'",
                                          a.database)}
            self.assertEqual(rows - {"postmaster"}, expect, "node %d" % node)
        for h, tag in ((a, "a"), (b, "b")):
            homes = set(os.listdir(h.path("home", "A2E", "example.com")))  # a* and b*: IndiMail's bucket A2E
            self.assertEqual({x for x in homes if x.startswith(tag)}, {n for n in expect if n.startswith(tag)})
            self.clean(h)

    def test_concurrent_changes_of_one_alias_and_one_mailbox_on_two_nodes(self):
        """2 x 30 lines added to one alias and 2 x 30 passwords set on one mailbox, on A and B at once: the
        changes that collide are rolled back by the cluster and run again, so every command succeeds and
        no line is lost."""
        a, b = self.a, self.b
        self.ok(a.run("vadddomain", "example.com", "-r", "10"))
        self.ok(a.run("vadduser", "joe@example.com", "--password-stdin", input=b"joe-secret-0\n"))
        self.ok(b.run("qmailctl", "sync"))

        def run(host, tag, i):
            if i % 2:
                p = host.run("vpasswd", "joe@example.com", "--password-stdin", "--lock-wait", "120",
                             input=("%s-secret-%d\n" % (tag, i)).encode())
            else:
                p = host.run("valias", "-i", "&%s%02d@example.org" % (tag, i), "sales@example.com",
                             "--lock-wait", "120")
            return p.returncode, p.stderr

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(run, h, tag, i) for i in range(60) for h, tag in ((a, "a"), (b, "b"))]
            results = [f.result() for f in futures]
        self.assertEqual([(rc, e) for rc, e in results if rc], [])
        lines = sorted(r[0] for r in on_node(3, "SELECT valias_line FROM valias WHERE alias = 'sales'", a.database))
        self.assertEqual(lines, sorted("&%s%02d@example.org" % (t, i) for t in "ab" for i in range(0, 60, 2)))
        # the password is one of those set, the same through either node
        for h in (a, b):
            self.assertTrue(any(login(h, "joe@example.com", "%s-secret-%d" % (t, i)).returncode == 0
                                for t in "ab" for i in range(1, 60, 2)))
        for h in (a, b):
            self.clean(h)


@unittest.skipUnless(GALERA, "needs the Galera fixture (QV_GALERA_DIR)")
class MailBetweenHostsOnTheCluster(test_shared_domains.MailBetweenHosts):
    """test_shared_domains' mail between hosts, with B on node 2: mail for A's mailbox sent to B's SMTP
    port arrives in A's Maildir, and the other way."""

    def second_host_made(self, b):
        b.home.write("control/host.mysql", "localhost:%s:%s:%s\n" % (MYSQL_USER, MYSQL_PASSWORD, node_socket(2)))


if __name__ == "__main__":
    unittest.main()
