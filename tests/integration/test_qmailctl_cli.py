"""qmailctl's help, version, man page and shell completions agree with each other."""
import os
import re
import shutil
import subprocess
import unittest

from qvtest import BIN, SOURCE_DIR, HomeTestCase, tool


RELAY = [["relay", "rules", "list"], ["relay", "rules", "allow"], ["relay", "rules", "deny"], ["relay", "rules", "remove"],
         ["relay", "clients", "add"], ["relay", "domains", "remove"], ["relay", "mailfrom", "list"],
         ["relay", "grant"], ["relay", "revoke"], ["relay", "grants"], ["relay", "test"],
         ["outgoingip", "list"], ["outgoingip", "add"], ["outgoingip", "remove"], ["outgoingip", "pick"],
         ["bounce", "rules", "list"], ["bounce", "rules", "add"], ["bounce", "rules", "remove"],
         ["bounce", "rules", "test"], ["bounce", "processor", "set"], ["bounce", "processor", "unset"],
         ["bounce", "processor", "show"], ["bounce", "queue", "set"], ["bounce", "queue", "show"],
         ["queue", "init"], ["queue", "stat"], ["queue", "list"]]
MTA = ["qmail-smtpd", "qmail-queue", "qmail-queued", "qmail-nullqueue", "qmail-send", "qmail-remote", "vdelivermail",
       "vfilter"]
COMMANDS = [("qmailctl", ["cdb"]), ("qmailctl", ["check"]), ("vadddomain", []), ("vdeldomain", []),
            ("vdominfo", []), ("vmoddomain", []), ("vadduser", []), ("vdeluser", []), ("vpasswd", []),
            ("vuserinfo", []), ("vmoduser", []), ("clearopensmtp", []), ("vchkpass", []), ("vcfilter", []),
            ("valias", []), ("vsetuserquota", []), ("vaddaliasdomain", []),
            ("vrenameuser", []), ("vrenamedomain", []), ("vdeloldusers", []), ("vlimit", [])] + \
           [("qmailctl", sub) for sub in RELAY]


def long_options(help_text):
    return sorted(set(re.findall(r"(--[a-z][a-z-]+)", help_text)) - {"--help"})


class HelpAndManPage(HomeTestCase):
    def test_help_and_version(self):
        p = self.home.run("qmailctl", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"cdb", p.stdout)
        p = self.home.run("qmailctl", "--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout.decode(), r"^\d+\.\d+\.\d+\n$")

    def test_no_subcommand_is_a_usage_error(self):
        p = self.home.run("qmailctl")
        self.assertEqual(p.returncode, 64)
        self.assertIn(b"Usage:", p.stderr)

    def test_man_pages_document_every_option(self):
        for cmd, sub in COMMANDS:
            with open(os.path.join(SOURCE_DIR, "docs", "man", cmd + ".8"), encoding="utf-8") as f:
                man = f.read().replace("\\-", "-")
            help_text = self.home.run(cmd, *sub, "--help").stdout.decode()
            opts = long_options(help_text)
            self.assertTrue(opts, cmd)
            for opt in opts:
                with self.subTest(command=cmd, option=opt):
                    self.assertTrue(opt in man, "%s is not documented in %s.8" % (opt, cmd))
        with open(os.path.join(SOURCE_DIR, "docs", "man", "qmailctl.8"), encoding="utf-8") as f:
            man = f.read().replace("\\-", "-")
        help_text = self.home.run("qmailctl", "cdb", "--help").stdout.decode()
        # and the exit codes the help footer promises are in the EXIT STATUS section
        section = man.split(".SH EXIT STATUS", 1)[1].split(".SH", 1)[0]
        documented = set(re.findall(r"\b\d+\b", section))
        promised = set(re.findall(r"\b(6[4-9]|7[0-8])\b", help_text))
        self.assertTrue(promised)
        self.assertLessEqual(promised, documented)


class Completion(HomeTestCase):
    def complete(self, *words):
        p = self.home.run("qmailctl", "__complete", "--", *words)
        self.assertEqual(p.returncode, 0)
        return p.stdout.decode().split("\n")[:-1]

    def test_subcommands_options_and_database_names(self):
        self.home.write("etc/tcp.smtp", ":allow\n")
        self.home.write("etc/tcp.imap", ":allow\n")
        self.assertEqual(self.complete("c"), ["cdb", "check"])
        self.assertEqual(self.complete("cdb", "--fo"), ["--force"])
        help_opts = long_options(self.home.run("qmailctl", "cdb", "--help").stdout.decode())
        self.assertEqual(sorted(set(self.complete("cdb", "--")) - {"--help"}), help_opts)
        self.assertEqual(self.complete("cdb", "tcp."), ["tcp.smtp", "tcp.imap"])
        self.assertEqual(self.complete("cdb", "--lookup", ""), [])  # a value is expected here
        self.assertIn("morercpthosts", self.complete("cdb", "--force", ""))

    def test_bash_completion_script(self):
        if shutil.which("bash") is None:
            self.skipTest("no bash")
        script = os.path.join(SOURCE_DIR, "completions", "qvmail.bash")
        snippet = ('source "%s"; COMP_WORDS=(qmailctl cdb --dry); COMP_CWORD=2; _qvmail_complete; '
                   'printf "%%s\\n" "${COMPREPLY[@]}"; complete -p qmailctl' % script)
        env = self.home.env(PATH=BIN + os.pathsep + os.environ["PATH"])
        p = subprocess.run(["bash", "-c", snippet], env=env, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines()[0], "--dry-run")
        names = sorted({cmd for cmd, _ in COMMANDS})
        p = subprocess.run(["bash", "-c", 'source "%s"; for c in %s; do complete -p "$c"; done' % (script, " ".join(names))],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines(), ["complete -o default -F _qvmail_complete " + c for c in names])

    def test_every_command_completes_itself(self):
        self.assertEqual(self.home.run("vadddomain", "example.com", "-r", "10").returncode, 0)
        self.assertEqual(self.home.run("vadduser", "joe@example.com", "-r", "10").returncode, 0)
        for cmd in sorted({cmd for cmd, _ in COMMANDS} - {"qmailctl"}):
            with self.subTest(command=cmd):
                p = self.home.run(cmd, "__complete", "--", "--he")
                self.assertEqual(p.stdout, b"--help\n--headers\n--header\n" if cmd == "vcfilter" else b"--help\n")
        self.assertEqual(self.home.run("vdominfo", "__complete", "--", "ex").stdout, b"example.com\n")
        self.assertEqual(self.home.run("vuserinfo", "__complete", "--", "jo").stdout, b"joe@example.com\n")
        self.assertEqual(self.home.run("vuserinfo", "__complete", "--", "joe@ex").stdout, b"joe@example.com\n")
        self.assertEqual(self.home.run("vuserinfo", "__complete", "--", "joe@other").stdout, b"")
        self.assertEqual(self.home.run("qmailctl", "__complete", "--", "ch").stdout, b"check\n")
        self.assertEqual(self.home.run("vchkpass", "__complete", "--", "-s", "").stdout,
                         b"smtp\nsubmission\npop3\nimap\n")
        self.assertEqual(self.home.run("qmailctl", "__complete", "--", "bounce", "").stdout,
                         b"rules\nprocessor\nqueue\n")
        self.home.write("control/outgoingip", "192.0.2.1\n")
        self.assertEqual(self.home.run("qmailctl", "__complete", "--", "outgoingip", "remove", "192").stdout,
                         b"192.0.2.1\n")
        # vcfilter: the pseudo-users, header names and comparisons
        self.assertEqual(self.home.run("vcfilter", "__complete", "--", "pre").stdout, b"prefilt@example.com\n")
        self.assertEqual(self.home.run("vcfilter", "__complete", "--", "-i", "-h", "X-Spam-S").stdout,
                         b"X-Spam-Status\n")
        self.assertEqual(self.home.run("vcfilter", "__complete", "--", "-c", "not").stdout,
                         b"not-contains\nnot-my-id\n")
        self.assertEqual(self.home.run("vcfilter", "__complete", "--", "-k", "").stdout, b"")

    def test_mta_programs_help_version_man_page_and_completion(self):
        for prog in MTA:
            with self.subTest(program=prog):
                p = self.home.run(prog, "--help")
                self.assertEqual(p.returncode, 0)
                self.assertIn(b"usage: " + prog.encode(), p.stdout)
                page = {"qmail-nullqueue": "qmail-queue", "vfilter": "vdelivermail"}.get(prog, prog)
                self.assertIn(b"See %s(8)" % page.encode(), p.stdout)
                self.assertTrue(os.path.exists(os.path.join(SOURCE_DIR, "docs", "man", page + ".8")))
                p = self.home.run(prog, "--version")
                self.assertRegex(p.stdout.decode(), r"^%s \d+\.\d+\.\d+\n$" % prog)
        script = os.path.join(SOURCE_DIR, "completions", "qvmail.bash")
        p = subprocess.run(["bash", "-c", 'source "%s"; COMP_WORDS=(qmail-queue --he); COMP_CWORD=1; '
                            '_qvmail_mta_complete; printf "%%s\n" "${COMPREPLY[@]}"; for c in %s; do complete -p $c; done'
                            % (script, " ".join(MTA))], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0], "--help")
        self.assertEqual(len(lines), 1 + len(MTA))
        # qmail's interface: anything but --help and --version as the only argument is qmail's
        p = self.home.run("qmail-queued", "extra")
        self.assertEqual(p.returncode, 64)

    def test_zsh_and_fish_scripts_parse(self):
        for shell, args, name in (("zsh", ["-n"], "_qvmail"), ("fish", ["--no-execute"], "qvmail.fish")):
            if shutil.which(shell) is None:
                continue
            with self.subTest(shell=shell):
                p = subprocess.run([shell] + args + [os.path.join(SOURCE_DIR, "completions", name)],
                                   capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
