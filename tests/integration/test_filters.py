"""vcfilter: the rules round trip on both stores (QV_BACKEND), IndiMail's checks, filter numbers, the
unique rule, --test on messages, and what vdeluser and vdeldomain leave behind."""
import json
import os
import subprocess
import time
import unittest

from qvtest import BACKEND, HomeTestCase, mysql_socket, tool

MYSQL = BACKEND == "mysql"

SPAM_MESSAGE = (
    "Return-Path: <offers@shop.example>\n"
    "From: =?UTF-8?B?U8O8cGVyIERlYWxz?= <offers@shop.example>\n"
    "To: someone@example.com\n"
    "Bcc: joe@example.com\n"
    "Subject: Cheap =?ISO-8859-1?Q?V=CDAGRA?= and\n"
    " more: VIAGRA today\n"
    "X-Spam-Rating: 8\n"
    "\n"
    "Buy now.\n")

BOSS_MESSAGE = (
    "From: The Boss <boss@example.com>\n"
    "To: Joe <joe@example.com>\n"
    "Subject: quarterly numbers\n"
    "X-Spam-Rating: 0\n"
    "\n"
    "See attached.\n")


class FilterCase(HomeTestCase):
    def setUp(self):
        super().setUp()
        h = self.home
        self.ok(h.run("vadddomain", "example.com", "-r", "10"))
        self.ok(h.run("vadduser", "joe@example.com", "-r", "10"))
        self.maildir = h.path("home/F2K/example.com/joe/Maildir")

    def vcfilter(self, *args, **kw):
        return self.home.run("vcfilter", *args, **kw)

    def add(self, address, *args):
        p = self.ok(self.vcfilter("-i", *args, address))
        return p.stdout.decode()

    def stored(self, address):
        """The rules as the store holds them: (number, name, header, comparison, keyword, folder, action)."""
        h = self.home
        if MYSQL:
            # HEX(): the client's batch output would escape backslashes
            rows = h.rows("SELECT filter_no, HEX(filter_name), header_name, comparision, HEX(keyword), "
                          "HEX(destination), HEX(bounce_action) FROM vfilter WHERE emailid = '%s' ORDER BY filter_no"
                          % address)
            text = lambda x: bytes.fromhex(x).decode()
            return [(int(r[0]), text(r[1]), int(r[2]), int(r[3]), text(r[4]), text(r[5]), text(r[6])) for r in rows]
        local, domain = address.split("@")
        path = h.path("domains", domain, "vfilter", local)
        if not os.path.exists(path):
            return []
        out = []
        for line in h.read(os.path.relpath(path, h.root)).decode().splitlines():
            if line.startswith("#"):
                continue
            f = line.split("\t")
            out.append((int(f[0]), f[1], int(f[2]), int(f[3]), f[4], f[5], f[6]))
        return out

    def show(self, address):
        p = self.ok(self.vcfilter("-s", "--json", address))
        return [json.loads(l) for l in p.stdout.decode().splitlines()]


class RoundTrip(FilterCase):
    def test_insert_show_update_delete(self):
        out = self.add("joe@example.com", "-t", "spam", "-h", "Subject", "-c", "Contains", "-k", "viagra", "-f", "Spam")
        self.assertEqual(out, "added filter 1 'spam' for joe@example.com\n")
        self.add("joe@example.com", "-t", "score", "-h", "31", "-c", "6", "-k", "%p > 5", "-f", "/nodeliver", "-b", "1")
        self.add("joe@example.com", "-t", "boss", "-h", "from", "-c", "starts-with", "-k", "The Boss", "-f", "inbox",
                 "-b", "2&archive@example.org")
        self.add("joe@example.com", "-t", "bcc", "-c", "My id not in To, CC, Bcc", "-f", "Bcc")
        self.assertEqual(self.stored("joe@example.com"), [
            (0, "bcc", -1, 5, "", "Bcc", "0"),
            (1, "spam", 2, 1, "viagra", "Spam", "0"),
            (2, "score", 31, 6, "%p > 5", "/NoDeliver", "1"),
            (3, "boss", 1, 3, "The Boss", "Inbox", "2&archive@example.org"),
        ])
        rules = self.show("joe@example.com")
        self.assertEqual([r["number"] for r in rules], [0, 1, 2, 3])
        self.assertEqual(rules[2]["header_name"], "X-Spam-Rating")
        self.assertEqual(rules[2]["comparison_name"], "Numerical Logical Expression")
        self.assertEqual(rules[3]["action_text"], "forward to archive@example.org")
        self.assertIsNone(rules[0]["header_name"])

        table = self.ok(self.vcfilter("-s", "joe@example.com")).stdout.decode().splitlines()
        self.assertEqual(table[0], "filters for joe@example.com (%s store):" % BACKEND)
        self.assertEqual(table[1].split(), ["No", "Name", "Header", "Comparison", "Keyword", "Folder", "Action"])
        self.assertEqual(table[3].split(), ["1", "spam", "Subject", "Contains", "viagra", "Spam", "deliver"])
        raw = self.ok(self.vcfilter("-s", "-r", "joe@example.com")).stdout.decode().splitlines()
        self.assertEqual(raw, ["0 joe@example.com bcc -1 5 N/A Bcc Deliver",
                               "1 joe@example.com spam 2 1 viagra Spam Deliver",
                               "2 joe@example.com score 31 6 %p~>~5 /NoDeliver Bounce",
                               "3 joe@example.com boss 1 3 The~Boss Inbox &archive@example.org"])

        # -u changes only what it is given; the number stays
        p = self.ok(self.vcfilter("-u", "1", "-k", "cialis", "-f", "Junk", "joe@example.com"))
        self.assertEqual(p.stdout, b"changed filter 1 'spam' for joe@example.com\n")
        self.ok(self.vcfilter("-u", "3", "-t", "renamed", "-c", "Equals", "joe@example.com"))
        self.assertEqual(self.stored("joe@example.com")[1], (1, "spam", 2, 1, "cialis", "Junk", "0"))
        self.assertEqual(self.stored("joe@example.com")[3][:4], (3, "renamed", 1, 0))

        p = self.ok(self.vcfilter("-d", "2", "joe@example.com"))
        self.assertEqual(p.stdout, b"removed filter 2 'score' for joe@example.com\n")
        self.assertEqual([r[0] for r in self.stored("joe@example.com")], [0, 1, 3])
        self.assertEqual(self.vcfilter("-d", "2", "joe@example.com").returncode, 6)

    def test_numbers_reuse_the_first_gap(self):
        for i in range(5):
            self.add("joe@example.com", "-t", "r%d" % i, "-h", "Subject", "-c", "1", "-k", "word%d" % i, "-f", "F")
        self.ok(self.vcfilter("-d", "2", "joe@example.com"))
        self.ok(self.vcfilter("-d", "4", "joe@example.com"))
        self.assertIn("added filter 2 ", self.add("joe@example.com", "-t", "a", "-h", "2", "-c", "1", "-k", "x", "-f", "F"))
        self.assertIn("added filter 4 ", self.add("joe@example.com", "-t", "b", "-h", "2", "-c", "1", "-k", "y", "-f", "F"))
        self.assertIn("added filter 6 ", self.add("joe@example.com", "-t", "c", "-h", "2", "-c", "1", "-k", "z", "-f", "F"))
        self.ok(self.vcfilter("-d", "1", "joe@example.com"))
        self.assertIn("added filter 1 ", self.add("joe@example.com", "-t", "d", "-h", "2", "-c", "1", "-k", "w", "-f", "F"))
        # comparison 5 is always filter 0, and there is one
        self.assertIn("added filter 0 ", self.add("joe@example.com", "-t", "me", "-c", "5", "-f", "F"))
        p = self.vcfilter("-i", "-t", "me2", "-c", "5", "-f", "G", "joe@example.com")
        self.assertEqual(p.returncode, 9, p.stderr)
        self.assertIn(b"filter 0", p.stderr)

    def test_the_unique_rule_is_a_clear_error_and_changes_nothing(self):
        h = self.home
        self.add("prefilt@example.com", "-t", "spam", "-h", "Subject", "-c", "Contains", "-k", "Viagra", "-f", "Spam")
        before = h.snapshot()
        # the same header, comparison, keyword (in any case) and folder: refused, whatever the name
        p = self.vcfilter("-i", "-t", "again", "-h", "2", "-c", "1", "-k", "VIAGRA", "-f", "spam", "prefilt@example.com")
        self.assertEqual(p.returncode, 9)
        self.assertEqual(p.stderr, b"vcfilter: filter 1 of prefilt@example.com already has this header, comparison, "
                                   b"keyword and folder\n")
        self.assertEqual(h.snapshot(), before)
        # another folder is another rule; updating it into the first one is refused too
        self.add("prefilt@example.com", "-t", "other", "-h", "2", "-c", "1", "-k", "viagra", "-f", "Junk")
        p = self.vcfilter("-u", "2", "-f", "SPAM", "prefilt@example.com")
        self.assertEqual(p.returncode, 9, p.stderr)
        self.assertEqual(self.stored("prefilt@example.com")[1][5], "Junk")

    def test_quotes_and_backslashes_are_stored_literally(self):
        name = "it's \"q\" \\ x"
        keyword = "a\\\"b'c\\\\ %d %s ;--"
        self.add("joe@example.com", "-t", name, "-h", "Subject", "-c", "Contains", "-k", keyword, "-f", "O'Brien \"x\"")
        self.add("joe@example.com", "-t", "re", "-h", "Subject", "-c", "RegExp", "-k", "^\\[SPAM\\] .*'$", "-f", "Spam")
        rules = self.stored("joe@example.com")
        self.assertEqual(rules[0][1], name)
        self.assertEqual(rules[0][4], keyword)
        self.assertEqual(rules[0][5], "O'Brien \"x\"")
        self.assertEqual(rules[1][4], "^\\[SPAM\\] .*'$")
        self.assertEqual(self.show("joe@example.com")[0]["keyword"], keyword)
        msg = "Subject: [SPAM] 'quoted'\n\n"
        d = json.loads(self.vcfilter("--test", "--json", "joe@example.com", input=msg.encode()).stdout)
        self.assertEqual(d["rule"]["name"], "re")

    def test_dry_run_changes_nothing(self):
        h = self.home
        self.add("joe@example.com", "-t", "one", "-h", "Subject", "-c", "1", "-k", "a", "-f", "A")
        before = h.snapshot()
        for args in (["-i", "-t", "two", "-h", "2", "-c", "1", "-k", "b", "-f", "B"], ["-u", "1", "-k", "z"], ["-d", "1"]):
            p = self.ok(self.vcfilter("-n", *args, "joe@example.com"))
            self.assertTrue(p.stdout.startswith(b"would "), p.stdout)
            self.assertEqual(h.snapshot(), before, args)
        j = json.loads(self.ok(self.vcfilter("-n", "--json", "-d", "1", "joe@example.com")).stdout)
        self.assertEqual(j["status"], "would-removed")

    def test_flag_file_for_indimails_vfilter(self):
        flag = os.path.join(self.maildir, "vfilter")
        self.add("joe@example.com", "-t", "one", "-h", "Subject", "-c", "1", "-k", "a", "-f", "A")
        self.assertTrue(os.path.exists(flag))
        st = os.stat(flag)
        self.assertEqual((st.st_uid, st.st_gid, st.st_size), (555, 555, 0))
        self.add("joe@example.com", "-t", "two", "-h", "Subject", "-c", "1", "-k", "b", "-f", "A")
        self.ok(self.vcfilter("-d", "1", "joe@example.com"))
        self.assertTrue(os.path.exists(flag))
        self.ok(self.vcfilter("-d", "2", "joe@example.com"))
        self.assertFalse(os.path.exists(flag))
        self.add("prefilt@example.com", "-t", "one", "-h", "Subject", "-c", "1", "-k", "a", "-f", "A")
        self.assertFalse(os.path.exists(flag))

    def test_vdeluser_and_vdeldomain_take_the_rules_along(self):
        h = self.home
        self.ok(h.run("vadduser", "ann@example.com", "-r", "10"))
        for who in ("joe", "ann", "prefilt", "postfilt"):
            self.add(who + "@example.com", "-t", "x", "-h", "Subject", "-c", "1", "-k", "x", "-f", "X")
        self.ok(h.run("vadddomain", "example.org", "-r", "10"))
        self.ok(h.run("vadduser", "joe@example.org", "-r", "10"))
        self.add("joe@example.org", "-t", "x", "-h", "Subject", "-c", "1", "-k", "x", "-f", "X")
        self.ok(h.run("vdeluser", "joe@example.com"))
        self.assertEqual(self.stored("joe@example.com"), [])
        self.assertEqual(len(self.stored("ann@example.com")), 1)
        self.ok(h.run("vdeldomain", "example.com"))
        for who in ("ann", "prefilt", "postfilt"):
            self.assertEqual(self.stored(who + "@example.com"), [])
        self.assertEqual(len(self.stored("joe@example.org")), 1)
        if MYSQL:
            self.assertEqual(h.rows("SELECT COUNT(*) FROM vfilter"), [["1"]])


class Resilience(FilterCase):
    def test_a_broken_rules_file_does_not_keep_a_mailbox_from_going(self):
        h = self.home
        self.add("joe@example.com", "-t", "x", "-h", "Subject", "-c", "1", "-k", "x", "-f", "X")
        if MYSQL:
            self.skipTest("the files store's rules file")
        h.write("domains/example.com/vfilter/joe", "not a rule\n")
        self.assertEqual(self.vcfilter("-s", "joe@example.com").returncode, 65)
        self.ok(h.run("vdeluser", "joe@example.com"))
        self.assertFalse(os.path.exists(h.path("domains/example.com/vfilter/joe")))

    @unittest.skipUnless(MYSQL, "IndiMail's vfilter table")
    def test_a_database_without_the_vfilter_table(self):
        # IndiMail creates vfilter when it first needs it: databases it made often lack it
        h = self.home
        h.rows("DROP TABLE IF EXISTS vfilter")
        self.assertEqual(self.ok(self.vcfilter("-s", "--json", "joe@example.com")).stdout, b"")
        d = json.loads(self.vcfilter("--test", "--json", "joe@example.com", input=BOSS_MESSAGE.encode()).stdout)
        self.assertFalse(d["matched"])
        self.ok(h.run("vdeluser", "joe@example.com"))  # nothing to remove, and no error
        self.ok(h.run("vadduser", "ann@example.com", "-r", "10"))
        h.rows("DROP TABLE IF EXISTS vfilter")
        self.add("ann@example.com", "-t", "x", "-h", "Subject", "-c", "1", "-k", "x", "-f", "X")  # made again
        self.assertEqual(len(self.stored("ann@example.com")), 1)
        h.rows("DROP TABLE IF EXISTS vfilter")
        self.ok(h.run("vdeldomain", "example.com"))


@unittest.skipUnless(MYSQL, "hosts that share one MariaDB database")
class SharedDatabase(FilterCase):
    def test_a_deadlock_with_another_writer_is_run_again(self):
        """Another host adds joe's first rule while vcfilter does: both hold the gap lock that keeps their
        numbers apart, both insert, and the server rolls one back. When vcfilter is the one, it runs its
        change again and takes the next number."""
        h = self.home
        insert = ("INSERT INTO vfilter (emailid, filter_no, filter_name, header_name, comparision, keyword, destination, "
                  "bounce_action) VALUES ")
        other = subprocess.Popen(["mariadb", "--no-defaults", "--unbuffered", "--socket=" + mysql_socket(), "-u", "root",
                                  "-N", "-B", h.database], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        self.addCleanup(other.kill)
        # the other writer has done more work (rows of ann): the server rolls back vcfilter, the lighter one
        other.stdin.write("BEGIN; " + insert + "('ann@example.com', 1, 'a', 2, 1, 'a', 'A', '0'), "
                          "('ann@example.com', 2, 'b', 2, 1, 'b', 'B', '0'); "
                          "SELECT filter_no FROM vfilter WHERE emailid = 'joe@example.com' FOR UPDATE; SELECT 'locked';\n")
        other.stdin.flush()
        self.assertEqual(other.stdout.readline(), "locked\n")
        p = subprocess.Popen([tool("vcfilter"), "-i", "-t", "mine", "-h", "Subject", "-c", "1", "-k", "x", "-f", "F",
                              "joe@example.com"], env=h.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        waiting = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO vfilter%%' " \
                  "AND DB = '%s'" % h.database
        deadline = time.time() + 30
        while h.rows(waiting) != [["1"]]:  # vcfilter's INSERT waits for the other's gap lock
            self.assertLess(time.time(), deadline, "vcfilter never reached its INSERT")
            time.sleep(0.05)
        other.stdin.write(insert + "('joe@example.com', 1, 'theirs', 2, 1, 'y', 'G', '0'); COMMIT;\n")
        other.stdin.flush()
        other.stdin.close()
        self.assertEqual(other.wait(timeout=60), 0, other.stderr.read())
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out, b"added filter 2 'mine' for joe@example.com\n")
        self.assertEqual([(r[0], r[1]) for r in self.stored("joe@example.com")], [(1, "theirs"), (2, "mine")])


class BadInput(FilterCase):
    def test_refused_with_one_line_and_nothing_changed(self):
        h = self.home
        HEADERS = len(self.ok(self.vcfilter("--headers")).stdout.splitlines())
        self.add("joe@example.com", "-t", "one", "-h", "Subject", "-c", "1", "-k", "a", "-f", "A")
        before = h.snapshot()
        rule = ["-t", "n", "-h", "Subject", "-c", "1", "-k", "k", "-f", "F"]
        cases = [
            (65, ["-i"] + rule + ["postmaster@example.com"], "postmaster is reserved"),
            (65, ["-i"] + rule + ["Abuse@Example.com"], "abuse is reserved"),
            (68, ["-i"] + rule + ["joe@nowhere.example"], "no such domain nowhere.example"),
            (67, ["-i"] + rule + ["nobody@example.com"], "no mailbox nobody@example.com"),
            (65, ["-i"] + rule + ["not-an-address"], ""),
            (65, ["-i", "-t", "n", "-h", "X-Nothing", "-c", "1", "-k", "k", "-f", "F", "joe@example.com"],
             "-h 'X-Nothing': not a header of the list"),
            (65, ["-i", "-t", "n", "-h", str(HEADERS), "-c", "1", "-k", "k", "-f", "F", "joe@example.com"],
             "-h %d: not in the header list (0-%d)" % (HEADERS, HEADERS - 1)),
            (65, ["-i", "-t", "n", "-h", "2", "-c", "1", "-k", b"caf\xe9", "-f", "F", "joe@example.com"],
             "not UTF-8 text"),
            (65, ["-i", "-t", "n", "-h", "2", "-c", "Sender Not in Address Book", "-k", "k", "-f", "F",
                  "joe@example.com"], "not a comparison"),
            (65, ["-i", "-t", "n", "-h", "2", "-c", "8", "-k", "k", "-f", "F", "joe@example.com"], "not a comparison"),
            (65, ["-i", "-t", "n", "-h", "31", "-c", "6", "-k", "%p >> > 5", "-f", "F", "joe@example.com"],
             "expected an operand"),
            (65, ["-i", "-t", "n", "-h", "31", "-c", "6", "-k", "7 > 5", "-f", "F", "joe@example.com"],
             "does not use %p"),
            (65, ["-i", "-t", "n", "-h", "2", "-c", "7", "-k", "(unclosed", "-f", "F", "joe@example.com"],
             "invalid regular expression"),
            (65, ["-i", "-t", "n", "-h", "2", "-c", "1", "-k", "k" * 65, "-f", "F", "joe@example.com"], "longer than 64"),
            (65, ["-i", "-t", "n" * 33, "-h", "2", "-c", "1", "-k", "k", "-f", "F", "joe@example.com"], "longer than 32"),
            (65, ["-i", "-t", "n", "-h", "2", "-c", "1", "-k", "k", "-f", ".Spam", "joe@example.com"],
             "cannot start with '.'"),
            (65, ["-i", "-t", "n", "-h", "2", "-c", "1", "-k", "k", "-f", "a/b", "joe@example.com"], "cannot contain '/'"),
            (65, ["-i", "-t", "n", "-h", "2", "-c", "1", "-k", "k", "-f", "F", "-b", "2&nobody", "joe@example.com"],
             "not an e-mail address"),
            (65, ["-i", "-t", "n", "-h", "2", "-c", "1", "-k", "k", "-f", "F", "-b", "5", "joe@example.com"],
             "not a bounce action"),
            (64, ["-i", "-h", "2", "-c", "1", "-k", "k", "-f", "F", "joe@example.com"], "-i needs -t NAME"),
            (64, ["-i", "-t", "n", "-c", "1", "-k", "k", "-f", "F", "joe@example.com"], "-h HEADER is needed"),
            (64, ["-s", "-i", "joe@example.com"], "give one of"),
            (64, ["joe@example.com"], "give one of"),
            (64, ["-r", "-d", "1", "joe@example.com"], "-r goes with -s"),
            (64, ["-s", "-k", "x", "joe@example.com"], "go with -i or -u"),
            (64, ["-d", "one", "joe@example.com"], ""),
            (64, ["-u", "1", "joe@example.com"], "nothing to change"),
            (64, ["-u", "1", "-c", "5", "joe@example.com"], "always filter 0"),
            (6, ["-d", "7", "joe@example.com"], "no filter 7 for joe@example.com"),
            (6, ["-u", "7", "-k", "x", "joe@example.com"], "no filter 7 for joe@example.com"),
        ]
        for code, args, message in cases:
            with self.subTest(args=args):
                p = self.vcfilter(*args)
                self.assertEqual(p.returncode, code, p.stderr)
                lines = p.stderr.decode().splitlines()
                self.assertEqual(len(lines), 1, p.stderr)
                self.assertTrue(lines[0].startswith("vcfilter: "), lines)
                self.assertIn(message, lines[0])
                self.assertEqual(p.stdout, b"")
                self.assertEqual(h.snapshot(), before)
        p = self.vcfilter("--json", "-d", "7", "joe@example.com")
        self.assertEqual(json.loads(p.stderr), {"program": "vcfilter", "error": "no filter 7 for joe@example.com",
                                                "exit": 6})

    def test_site_header_list(self):
        h = self.home
        shipped = self.ok(self.vcfilter("--headers")).stdout.decode().splitlines()
        self.assertGreaterEqual(len(shipped), 47)  # IndiMail's, and what later versions append
        self.assertEqual(shipped[42], "42\tDisposition-Notification-To")
        names = [l.split("\t")[1] for l in shipped]
        h.write("etc/headerlist", "".join(n + "\n" for n in names) + "X-Spam-Score\n")
        self.add("joe@example.com", "-t", "score", "-h", "X-Spam-Score", "-c", "6", "-k", "%p >= 5", "-f", "Spam")
        self.assertEqual(self.stored("joe@example.com")[0][2], len(shipped))
        d = json.loads(self.vcfilter("--test", "--json", "joe@example.com", input=b"X-Spam-Score: 5.5\n\n").stdout)
        self.assertTrue(d["matched"])
        h.write("etc/headerlist", "Return-Path\nSubject\n")  # renumbers From
        p = self.vcfilter("-s", "joe@example.com")
        self.assertEqual(p.returncode, 78)
        self.assertIn(b"headerlist:2: header 1 is 'Subject' here but 'From'", p.stderr)


class Check(FilterCase):
    def test_check_reports_rules_it_cannot_apply(self):
        h = self.home
        self.add("joe@example.com", "-t", "ok", "-h", "Subject", "-c", "1", "-k", "a", "-f", "A")
        self.assertEqual(self.ok(h.run("qmailctl", "check")).returncode, 0)
        # rows IndiMail wrote before its 2023 renumbering, and a pattern that does not compile
        if MYSQL:
            h.rows("INSERT INTO vfilter (emailid, filter_no, filter_name, header_name, comparision, keyword, "
                   "destination, bounce_action) VALUES ('joe@example.com', 2, 'old', 2, 8, '*x*', 'X', '0'), "
                   "('joe@example.com', 3, 're', 2, 7, '(', 'Y', '0'), ('gone@example.com', 1, 'n', 2, 1, 'k', 'Z', '0')")
        else:
            rules = h.read("domains/example.com/vfilter/joe").decode()
            h.write("domains/example.com/vfilter/joe", rules + "2\told\t2\t8\t*x*\tX\t0\n3\tre\t2\t7\t(\tY\t0\n")
            h.write("domains/example.com/vfilter/gone", "1\tn\t2\t1\tk\tZ\t0\n")
        p = h.run("qmailctl", "check")
        self.assertEqual(p.returncode, 1)
        out = p.stdout.decode()
        self.assertIn("problem: example.com: joe@example.com filter 2 cannot be applied: -c 8: not a comparison", out)
        self.assertIn("problem: example.com: joe@example.com filter 3 cannot be applied: -k: invalid regular expression",
                      out)
        self.assertIn("problem: example.com: gone@example.com has filter rules but is not a mailbox", out)
        # the engine skips them and goes on
        d = json.loads(self.vcfilter("--test", "--json", "joe@example.com", input=b"Subject: zzz\n\n").stdout)
        self.assertEqual([t["outcome"] for t in d["trace"]], ["no match", "skipped", "skipped"])
        if not MYSQL:
            h.write("domains/example.com/vfilter/joe", "1\tbroken line\n")
            p = h.run("qmailctl", "check")
            self.assertIn("vfilter/joe:1: expected 7 TAB-separated fields", p.stdout.decode())
            p = self.vcfilter("-s", "joe@example.com")
            self.assertEqual(p.returncode, 65)
            self.assertIn(b"vfilter/joe:1: expected 7 TAB-separated fields", p.stderr)


class TestMode(FilterCase):
    def setUp(self):
        super().setUp()
        self.add("prefilt@example.com", "-t", "spam", "-h", "Subject", "-c", "Contains", "-k", "viagra", "-f", "Spam")
        self.add("joe@example.com", "-t", "boss", "-h", "From", "-c", "Ends with", "-k", "<boss@example.com>",
                 "-f", "Boss", "-b", "2&joe@mobile.example")
        self.add("postfilt@example.com", "-t", "bcc", "-c", "5", "-f", "Bcc")

    def decide(self, message, *args):
        p = self.vcfilter("--test", "--json", *args, "joe@example.com", input=message.encode())
        self.assertIn(p.returncode, (0, 1), p.stderr)
        d = json.loads(p.stdout)
        self.assertEqual(p.returncode == 0, d["matched"])
        return d

    def test_decisions_and_trace(self):
        d = self.decide(SPAM_MESSAGE)
        self.assertEqual((d["delivery"], d["folder"]), ("folder", "Spam"))
        self.assertEqual(d["rule"]["address"], "prefilt@example.com")
        self.assertEqual(d["trace"][0]["outcome"], "matched")
        self.assertIn("VIAGRA today", d["trace"][0]["detail"])  # unfolded, the encoded word decoded

        d = self.decide(BOSS_MESSAGE)
        self.assertEqual([t["outcome"] for t in d["trace"]], ["no match", "matched"])
        self.assertEqual(d["forward"], {"kind": "address", "target": "joe@mobile.example"})
        self.assertEqual(d["decision"], "filter 1 'boss' of joe@example.com matched: deliver to folder Boss, then "
                                        "forward a copy to joe@mobile.example")

        # postfilt applies when joe's own rule does not match: joe is in none of To, Cc and Bcc
        d = self.decide("From: x@other.example\nTo: list@example.com\nSubject: hi\n\n")
        self.assertEqual(d["rule"]["address"], "postfilt@example.com")
        self.assertEqual((d["delivery"], d["folder"]), ("folder", "Bcc"))
        d = self.decide("From: x@other.example\nTo: joe@example.com\nSubject: hi\n\n")
        self.assertFalse(d["matched"])
        self.assertEqual(d["decision"], "no rule matched: deliver to Inbox")
        self.assertEqual(len(d["trace"]), 3)

    def test_flag_files_skip_domain_rules(self):
        open(os.path.join(self.maildir, "noprefilt"), "w").close()
        d = self.decide(SPAM_MESSAGE)
        self.assertEqual(d["notes"], ["prefilt@example.com: not applied, Maildir/noprefilt exists"])
        self.assertFalse(d["matched"])  # joe is in Bcc, so postfilt's rule 0 does not match either

    def test_human_output(self):
        p = self.vcfilter("--test", "joe@example.com", input=SPAM_MESSAGE.encode())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().splitlines(), [
            "message: 6 header fields, %d bytes" % len(SPAM_MESSAGE),
            "prefilt@example.com: 1 rule",
            "  filter 1 'spam': Subject Contains 'viagra': matched (Subject: Cheap VÍAGRA and more: VIAGRA today)",
            "joe@example.com: not reached",
            "postfilt@example.com: not reached",
            "result: filter 1 'spam' of prefilt@example.com matched: deliver to folder Spam",
        ])
        path = self.home.write("msg.eml", BOSS_MESSAGE)
        p = self.vcfilter("--test", "-v", "--message", path, "joe@example.com")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("  From: The Boss <boss@example.com>", p.stdout.decode().splitlines())


if __name__ == "__main__":
    unittest.main()
